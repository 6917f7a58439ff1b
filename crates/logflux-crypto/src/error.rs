use std::path::PathBuf;

/// What went wrong, coarsely, for callers that map errors to statuses or exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A key could not be read or has the wrong shape.
    Key,
    /// A key file is readable by others, or unreadable.
    File,
    /// Authentication failed: the data was changed, or the key or binding is wrong.
    Integrity,
    /// The data decrypted but is malformed or too large.
    Format,
    /// The system's random generator failed.
    Random,
}

/// Errors of the cryptographic core. Messages say what was wrong and what to do; they never
/// contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("not a usable RSA key: {0}")]
    Key(String),
    #[error(
        "{what} file {path} is accessible by group or others (mode {mode:04o}); \
         fix it with: chmod 600 {path}"
    )]
    Permissions {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    // The I/O error is in the message only: as a `source` too, a chain (`{:#}`) would print
    // "No such file or directory" twice.
    #[error("{what} file {path}: {error}")]
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("integrity check failed: the data was modified, or the key or record binding is wrong")]
    Integrity,
    #[error("the data key does not unwrap with this private key")]
    Unwrap,
    #[error("decrypted data is malformed: {0}")]
    Format(String),
    #[error("decrypted data is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the system's random generator failed")]
    Random,
}

impl CryptoError {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CryptoError::Key(_) => ErrorKind::Key,
            CryptoError::Permissions { .. } | CryptoError::Io { .. } => ErrorKind::File,
            CryptoError::Integrity | CryptoError::Unwrap => ErrorKind::Integrity,
            CryptoError::Format(_) | CryptoError::TooLarge { .. } => ErrorKind::Format,
            CryptoError::Random => ErrorKind::Random,
        }
    }
}
