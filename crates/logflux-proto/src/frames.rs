//! The binary record stream (`application/vnd.logflux.records`): what `/v1/query`,
//! `/v1/records` and `/v1/tail` send a client that asks for it in `Accept`, instead of NDJSON.
//! Each NDJSON line becomes one frame whose header is that line's JSON object without its
//! `body`, and the record's ciphertext follows the header as raw bytes: no base64, no JSON
//! string to scan for the body.
//!
//! ```text
//! stream := MAGIC frame*
//! MAGIC  := "LFR" 0x01                       (format version 1)
//! frame  := header_len:u32le body_len:u32le header body
//!           header_len ≤ MAX_HEADER; body_len = NO_BODY (0xFFFF_FFFF) when the frame has no
//!           body (every frame but a record with its ciphertext), else the body's length
//! header := a JSON object, as the NDJSON line without "body"
//! ```

use bytes::{Buf as _, Bytes, BytesMut};

/// The media type of the binary record stream.
pub const CONTENT_TYPE: &str = "application/vnd.logflux.records";
/// The media type of the NDJSON form (kept for scripts and the OpenAPI document).
pub const NDJSON: &str = "application/x-ndjson";
/// First bytes of a stream: "LFR" and the format version.
pub const MAGIC: [u8; 4] = *b"LFR\x01";
/// `body_len` of a frame without a body.
pub const NO_BODY: u32 = u32::MAX;
/// Largest header accepted.
pub const MAX_HEADER: usize = 1024 * 1024;
/// Bytes before a frame's header.
pub const PREFIX_LEN: usize = 8;

/// A frame's length prefix and header, ready to send; its body (if any, of `body_len`
/// bytes) is sent after it as it is.
pub fn frame_head(header: &[u8], body_len: Option<usize>) -> Vec<u8> {
    let body = body_len.map_or(NO_BODY, |n| {
        u32::try_from(n)
            .ok()
            .filter(|&n| n != NO_BODY)
            .expect("a record body is at most a few tens of MiB")
    });
    let header_len = u32::try_from(header.len()).expect("a header is small");
    let mut out = Vec::with_capacity(PREFIX_LEN + header.len());
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&body.to_le_bytes());
    out.extend_from_slice(header);
    out
}

/// One whole frame as one buffer (prefix, header, body).
pub fn frame(header: &[u8], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = frame_head(header, body.map(<[u8]>::len));
    if let Some(b) = body {
        out.extend_from_slice(b);
    }
    out
}

/// One decoded frame: its JSON header and, for a record with its ciphertext, the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Bytes,
    pub body: Option<Bytes>,
}

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the stream does not begin with the record-stream magic (version 1)")]
    Magic,
    #[error("a frame header of {0} bytes is larger than {MAX_HEADER}")]
    HeaderTooLong(usize),
    #[error("a frame body of {0} bytes is larger than {1}")]
    BodyTooLong(usize, usize),
    #[error("the stream ended inside a frame")]
    Truncated,
}

/// Decodes a stream given in chunks as they arrive; memory is bounded by one frame (at most
/// [`MAX_HEADER`] plus the body bound) and the chunk being read.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    magic: bool,
    max_body: usize,
}

impl Decoder {
    /// A decoder refusing bodies over `max_body` bytes.
    pub fn new(max_body: usize) -> Decoder {
        Decoder {
            buf: BytesMut::new(),
            magic: false,
            max_body,
        }
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Adds received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if !self.magic {
            let n = self.buf.len().min(MAGIC.len());
            if self.buf[..n] != MAGIC[..n] {
                return Err(FrameError::Magic);
            }
            if n < MAGIC.len() {
                return Ok(None);
            }
            self.buf.advance(MAGIC.len());
            self.magic = true;
        }
        if self.buf.len() < PREFIX_LEN {
            return Ok(None);
        }
        let header_len = u32::from_le_bytes(self.buf[0..4].try_into().expect("4 bytes")) as usize;
        let body_len = u32::from_le_bytes(self.buf[4..8].try_into().expect("4 bytes"));
        if header_len > MAX_HEADER {
            return Err(FrameError::HeaderTooLong(header_len));
        }
        let body_len = (body_len != NO_BODY).then_some(body_len as usize);
        if let Some(b) = body_len
            && b > self.max_body
        {
            return Err(FrameError::BodyTooLong(b, self.max_body));
        }
        let total = PREFIX_LEN + header_len + body_len.unwrap_or(0);
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let mut whole = self.buf.split_to(total).freeze();
        whole.advance(PREFIX_LEN);
        let header = whole.split_to(header_len);
        Ok(Some(Frame {
            header,
            body: body_len.map(|_| whole),
        }))
    }

    /// Checks the stream ended between frames.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() && self.magic {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of a short stream, checked in: a change to the layout must change the version.
    #[test]
    fn golden_stream() {
        let mut s = MAGIC.to_vec();
        s.extend(frame(br#"{"type":"record"}"#, Some(b"\x00\x01\x02")));
        s.extend(frame(br#"{"type":"end"}"#, None));
        let golden = include_bytes!("../testdata/records-stream-v1.bin");
        assert_eq!(s, golden.as_slice());
        let mut d = Decoder::new(1 << 20);
        d.push(golden);
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!(&f.header[..], br#"{"type":"record"}"#);
        assert_eq!(f.body.as_deref(), Some(&b"\x00\x01\x02"[..]));
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!(&f.header[..], br#"{"type":"end"}"#);
        assert_eq!(f.body, None);
        assert_eq!(d.next_frame().unwrap(), None);
        d.finish().unwrap();
    }

    #[test]
    fn frames_split_anywhere_decode_the_same() {
        let mut s = MAGIC.to_vec();
        s.extend(frame(b"{}", Some(b"")));
        s.extend(frame(br#"{"a":1}"#, Some(&[7u8; 1000])));
        s.extend(frame(br#"{"b":2}"#, None));
        for step in [1, 2, 3, 7, 64, 5000] {
            let mut d = Decoder::new(4096);
            let mut got = Vec::new();
            for c in s.chunks(step) {
                d.push(c);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            d.finish().unwrap();
            assert_eq!(got.len(), 3, "step {step}");
            assert_eq!(got[0].body.as_deref(), Some(&b""[..]));
            assert_eq!(got[1].body.as_ref().unwrap().len(), 1000);
            assert_eq!(&got[2].header[..], br#"{"b":2}"#);
            assert_eq!(got[2].body, None);
        }
    }

    #[test]
    fn bad_streams_are_errors_not_panics() {
        let mut d = Decoder::new(10);
        d.push(b"{\"type\"");
        assert_eq!(d.next_frame(), Err(FrameError::Magic));

        let mut d = Decoder::new(10);
        d.push(&MAGIC);
        d.push(&frame(b"{}", Some(&[0u8; 11])));
        assert_eq!(d.next_frame(), Err(FrameError::BodyTooLong(11, 10)));

        let mut d = Decoder::new(10);
        d.push(&MAGIC);
        d.push(&u32::MAX.to_le_bytes());
        d.push(&NO_BODY.to_le_bytes());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::HeaderTooLong(u32::MAX as usize))
        );

        let mut d = Decoder::new(10);
        d.push(&MAGIC);
        d.push(&frame(b"{}", Some(b"abc"))[..9]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish(), Err(FrameError::Truncated));

        // An empty reply is not a stream either.
        assert_eq!(Decoder::new(10).finish(), Err(FrameError::Truncated));
    }
}
