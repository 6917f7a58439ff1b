use logflux_proto::Entry;
use logflux_proto::batch;

use crate::aead::{NONCE_LEN, RecordBinding, SealingKey};
use crate::error::CryptoError;

/// Largest decompressed batch accepted when opening, in bytes: bounds what a hostile record
/// can make a client allocate.
pub const MAX_BATCH_PLAINTEXT: usize = 256 * 1024 * 1024;

/// A sealed batch: `AES-256-GCM(zstd(batch v1))` with the record binding as associated data.
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
}

/// Seals batches, reusing its compression context and buffer between calls.
pub struct BatchSealer {
    compressor: zstd::bulk::Compressor<'static>,
    plain: Vec<u8>,
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
        }
    }

    /// Encodes, compresses and seals `entries` under a fresh nonce.
    pub fn seal(
        &mut self,
        key: &SealingKey,
        binding: &RecordBinding<'_>,
        entries: &[Entry],
    ) -> Result<SealedBatch, CryptoError> {
        self.seal_inner(key, binding, entries, None)
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
        self.seal_inner(key, binding, entries, Some(nonce))
    }

    fn seal_inner(
        &mut self,
        key: &SealingKey,
        binding: &RecordBinding<'_>,
        entries: &[Entry],
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
        self.plain.clear();
        batch::encode(entries, &mut self.plain);
        if self.plain.len() > MAX_BATCH_PLAINTEXT {
            return Err(CryptoError::TooLarge {
                limit: MAX_BATCH_PLAINTEXT,
            });
        }
        let mut buf = Vec::with_capacity(zstd::zstd_safe::compress_bound(self.plain.len()) + 16);
        buf.resize(zstd::zstd_safe::compress_bound(self.plain.len()), 0);
        let n = self
            .compressor
            .compress_to_buffer(&self.plain, &mut buf)
            .map_err(|e| CryptoError::Format(format!("zstd: {e}")))?;
        buf.truncate(n);
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
        })
    }
}

/// Opens a sealed batch back into exactly the entries that were sealed.
pub fn open_batch(
    key: &SealingKey,
    binding: &RecordBinding<'_>,
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Result<Vec<Entry>, CryptoError> {
    let mut buf = ciphertext.to_vec();
    let compressed = key.open(nonce, &binding.aad(), &mut buf)?;
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
    let plain = zstd::bulk::decompress(compressed, size)
        .map_err(|e| CryptoError::Format(format!("zstd: {e}")))?;
    batch::decode(&plain).map_err(|e| CryptoError::Format(e.to_string()))
}
