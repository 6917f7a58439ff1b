//! Primitives shared by LogFlux's binary formats (the batch, the server's segments, the agent's
//! spool): LEB128 varints, zigzag integers, length-prefixed strings, and a bounds-checked reader
//! that never panics and never allocates more than its input.

/// Appends `v` as an unsigned LEB128 varint (at most 10 bytes).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a varint length and the string's bytes.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Signed to unsigned, small magnitudes to small numbers.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Why a read failed, and at which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The input ended at this byte.
    Truncated(usize),
    /// The varint starting at this byte is longer than 10 bytes or overflows 64 bits.
    Varint(usize),
    /// The string starting at this byte is not UTF-8.
    Utf8(usize),
}

/// A cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(ReadError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    pub fn byte(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    pub fn varint(&mut self) -> Result<u64, ReadError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(ReadError::Varint(start));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ReadError::Varint(start))
    }

    /// A varint length and that many bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], ReadError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| ReadError::Truncated(self.pos))?;
        self.take(n)
    }

    /// A varint length and that many bytes of UTF-8.
    pub fn string(&mut self) -> Result<String, ReadError> {
        let start = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| ReadError::Utf8(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn errors_say_where() {
        assert_eq!(
            Reader::new(b"\x05ab").string(),
            Err(ReadError::Truncated(1))
        );
        assert_eq!(
            Reader::new(b"\x02\xff\xfe").string(),
            Err(ReadError::Utf8(0))
        );
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(ReadError::Varint(0)));
        assert_eq!(
            Reader::new(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02").varint(),
            Err(ReadError::Varint(0))
        );
        assert_eq!(
            Reader::new(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").varint(),
            Ok(u64::MAX)
        );
    }

    proptest! {
        #[test]
        fn round_trips(v in any::<u64>(), i in any::<i64>(), s in ".{0,40}") {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            put_varint(&mut out, zigzag(i));
            put_str(&mut out, &s);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.varint(), Ok(v));
            prop_assert_eq!(r.varint().map(unzigzag), Ok(i));
            prop_assert_eq!(r.string(), Ok(s));
            prop_assert_eq!(r.remaining(), 0);
        }
    }
}
