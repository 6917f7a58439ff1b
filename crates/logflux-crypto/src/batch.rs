use logflux_proto::batch;
use logflux_proto::{Entry, Metadata, limits};

use crate::aead::{NONCE_LEN, RecordBinding, SealingKey};
use crate::error::CryptoError;

/// Largest decompressed batch accepted when opening, in bytes: bounds what a hostile record
/// can make a client allocate (see `limits::MAX_BATCH_PLAINTEXT_BYTES`).
pub const MAX_BATCH_PLAINTEXT: usize = limits::MAX_BATCH_PLAINTEXT_BYTES;

/// The length Padmé padding gives a message of `len` bytes: `len` rounded up so that only its
/// top `⌊log2 ⌊log2 len⌋⌋ + 1` bits may be non-zero. The padded length reveals O(log log n)
/// bits of the true one, at most about 12 % more bytes (less for longer messages).
pub fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = len.ilog2();
    let s = e.ilog2() + 1;
    let mask = (1usize << (e - s)) - 1;
    (len + mask) & !mask
}

/// A sealed batch: `AES-256-GCM(zstd(batch v2, or v1 before it) ‖ skippable frame of zeros)` with the record
/// binding as associated data; the two frames fill `padme(frame length + 8)` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBatch {
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
    pub count: u32,
    /// Earliest and latest entry timestamp, Unix nanoseconds.
    pub time_range: (i64, i64),
    /// Size of the encoded batch before compression.
    pub plaintext_len: usize,
    /// Size of the zstd frame, before padding.
    pub compressed_len: usize,
}

/// Seals batches, reusing its compression context and buffer between calls.
pub struct BatchSealer {
    compressor: zstd::bulk::Compressor<'static>,
    plain: Vec<u8>,
    /// The batch encoding version written.
    format: u8,
}

impl std::fmt::Debug for BatchSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchSealer")
    }
}

impl BatchSealer {
    /// A sealer compressing at zstd `level` (1 fastest … 19; 3 is zstd's default).
    pub fn new(level: i32) -> Self {
        let mut compressor = zstd::bulk::Compressor::new(level).expect("zstd context");
        // The frame records its content size, which bounds decompression when opening.
        compressor
            .include_contentsize(true)
            .expect("zstd parameter");
        compressor.include_checksum(false).expect("zstd parameter");
        BatchSealer {
            compressor,
            plain: Vec::new(),
            format: batch::VERSION,
        }
    }

    /// Writes batch format `version` instead of the newest: 1 for readers older than version 2
    /// (an agent upgraded before the clients that read it). Any other value writes the newest.
    pub fn with_format(mut self, version: u8) -> Self {
        self.format = if version == batch::VERSION_1 {
            batch::VERSION_1
        } else {
            batch::VERSION
        };
        self
    }

    /// Encodes, compresses and seals `entries` under a fresh nonce.
    pub fn seal(
        &mut self,
        key: &SealingKey,
        binding: &RecordBinding<'_>,
        entries: &[Entry],
    ) -> Result<SealedBatch, CryptoError> {
        self.seal_inner(key, binding, entries, &Metadata::new(), None)
    }

    /// [`BatchSealer::seal`] of `entries` as if each carried the pairs of `defaults` whose keys
    /// it lacks (the agent's enrichment): the same plaintext as inserting them into every
    /// entry first (`batch::encode_with`).
    pub fn seal_with_defaults(
        &mut self,
        key: &SealingKey,
        binding: &RecordBinding<'_>,
        entries: &[Entry],
        defaults: &Metadata,
    ) -> Result<SealedBatch, CryptoError> {
        self.seal_inner(key, binding, entries, defaults, None)
    }

    /// As [`BatchSealer::seal`] with a chosen nonce, for golden files only.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &mut self,
        key: &SealingKey,
        binding: &RecordBinding<'_>,
        entries: &[Entry],
        nonce: [u8; NONCE_LEN],
    ) -> Result<SealedBatch, CryptoError> {
        self.seal_inner(key, binding, entries, &Metadata::new(), Some(nonce))
    }

    fn seal_inner(
        &mut self,
        key: &SealingKey,
        binding: &RecordBinding<'_>,
        entries: &[Entry],
        defaults: &Metadata,
        nonce: Option<[u8; NONCE_LEN]>,
    ) -> Result<SealedBatch, CryptoError> {
        let count = u32::try_from(entries.len())
            .map_err(|_| CryptoError::Format("too many entries in one batch".into()))?;
        let time_range = entries.iter().fold((i64::MAX, i64::MIN), |(lo, hi), e| {
            (lo.min(e.timestamp_ns), hi.max(e.timestamp_ns))
        });
        let time_range = if entries.is_empty() {
            (0, 0)
        } else {
            time_range
        };
        // Readers refuse a batch whose entries, written one by one (as version 1), would exceed
        // the limit, however small its version 2 encoding: the same bound as before version 2.
        if !batch::expanded_len_at_most(entries, defaults, MAX_BATCH_PLAINTEXT) {
            return Err(CryptoError::TooLarge {
                limit: MAX_BATCH_PLAINTEXT,
            });
        }
        self.plain.clear();
        if self.format == batch::VERSION_1 {
            batch::encode_v1_with(entries, defaults, &mut self.plain);
        } else {
            batch::encode_with(entries, defaults, &mut self.plain);
        }
        if self.plain.len() > MAX_BATCH_PLAINTEXT {
            return Err(CryptoError::TooLarge {
                limit: MAX_BATCH_PLAINTEXT,
            });
        }
        // zstd writes into the vector's spare room (no zero-filling of a buffer the size of the
        // batch first); the room includes Padmé's padding (under 1/16 from 256 bytes on, under 64
        // bytes below), the skippable frame's header and the tag, so it seldom moves.
        let bound = zstd::zstd_safe::compress_bound(self.plain.len());
        let mut buf = Vec::with_capacity(bound + bound / 16 + 64);
        let n = self
            .compressor
            .compress_to_buffer(&self.plain, &mut buf)
            .map_err(|e| CryptoError::Format(format!("zstd: {e}")))?;
        // A zstd skippable frame of zeros after the content's frame, so the ciphertext's length
        // stops tracking the content's. Any zstd decoder skips it: clients from before padding
        // open padded batches too.
        debug_assert_eq!(buf.len(), n);
        let padded = padme(n + SKIPPABLE_HEADER);
        let pad = u32::try_from(padded - n - SKIPPABLE_HEADER)
            .map_err(|_| CryptoError::Format("padding longer than a skippable frame".into()))?;
        buf.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        buf.extend_from_slice(&pad.to_le_bytes());
        buf.resize(padded, 0);
        let aad = binding.aad();
        let nonce = match nonce {
            Some(n) => {
                key.seal_with_nonce(n, &aad, &mut buf)?;
                n
            }
            None => key.seal(&aad, &mut buf)?,
        };
        Ok(SealedBatch {
            nonce,
            ciphertext: buf,
            count,
            time_range,
            plaintext_len: self.plain.len(),
            compressed_len: n,
        })
    }
}

/// Opens a sealed batch back into exactly the entries that were sealed. Padded batches and
/// older unpadded ones alike; a frame whose content claims more than [`MAX_BATCH_PLAINTEXT`]
/// is refused before anything is decompressed.
pub fn open_batch(
    key: &SealingKey,
    binding: &RecordBinding<'_>,
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Result<Vec<Entry>, CryptoError> {
    let opened = open_batch_plain(key, binding, nonce, ciphertext)?;
    batch::decode(&opened.plain).map_err(|e| CryptoError::Format(e.to_string()))
}

/// A sealed batch opened and decompressed but not decoded: the batch's bytes, which
/// `logflux_proto::batch::BatchView::parse` reads without copying its strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedBatch {
    /// The encoded batch (any version).
    pub plain: Vec<u8>,
    /// Length of the zstd frame that held it.
    pub frame_len: usize,
    /// Length of the padding after the frame (the skippable frame with its header; 0 for
    /// batches sealed before padding).
    pub padding_len: usize,
}

/// Opens and decompresses a sealed batch, as [`open_batch`] does, without decoding it.
pub fn open_batch_plain(
    key: &SealingKey,
    binding: &RecordBinding<'_>,
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Result<OpenedBatch, CryptoError> {
    let mut buf = ciphertext.to_vec();
    let opened = key.open(nonce, &binding.aad(), &mut buf)?;
    let opened_len = opened.len();
    let compressed = unpad(opened)?;
    let size = match zstd::zstd_safe::get_frame_content_size(compressed) {
        Ok(Some(n)) => usize::try_from(n).unwrap_or(usize::MAX),
        _ => {
            return Err(CryptoError::Format(
                "zstd frame without a content size".into(),
            ));
        }
    };
    if size > MAX_BATCH_PLAINTEXT {
        return Err(CryptoError::TooLarge {
            limit: MAX_BATCH_PLAINTEXT,
        });
    }
    let plain = DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        let d = match &mut *d {
            Some(d) => d,
            none => none.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| CryptoError::Format(format!("zstd: {e}")))?,
            ),
        };
        d.decompress(compressed, size)
            .map_err(|e| CryptoError::Format(format!("zstd: {e}")))
    })?;
    Ok(OpenedBatch {
        plain,
        frame_len: compressed.len(),
        padding_len: opened_len - compressed.len(),
    })
}

thread_local! {
    /// One decompression context per thread, reused from record to record.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Magic number of the zstd skippable frame that pads a sealed batch (RFC 8878 §3.1.2: any of
/// `0x184D2A50..=0x184D2A5F`; we write the first).
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// A skippable frame's header: its magic number and its content length, little-endian.
const SKIPPABLE_HEADER: usize = 8;

/// The zstd frame at the start of a sealed batch's plaintext, without its padding: nothing (as
/// sealed before padding) or exactly one skippable frame of zeros that ends the plaintext.
fn unpad(opened: &[u8]) -> Result<&[u8], CryptoError> {
    let frame = zstd::zstd_safe::find_frame_compressed_size(opened)
        .map_err(|_| CryptoError::Format("not a complete zstd frame".into()))?;
    let (frame, padding) = opened.split_at(frame.min(opened.len()));
    if padding.is_empty() {
        return Ok(frame);
    }
    let bad = || CryptoError::Format("bytes after the zstd frame are not its padding".into());
    let (header, zeros) = padding.split_at_checked(SKIPPABLE_HEADER).ok_or_else(bad)?;
    let magic = u32::from_le_bytes(header[..4].try_into().map_err(|_| bad())?);
    let len = u32::from_le_bytes(header[4..].try_into().map_err(|_| bad())?);
    if magic != SKIPPABLE_MAGIC
        || usize::try_from(len).ok() != Some(zeros.len())
        || zeros.iter().any(|&b| b != 0)
    {
        return Err(bad());
    }
    Ok(frame)
}
