//! The LogFlux agent: takes logs from applications, seals them with the customer's keys where
//! they are produced, keeps them on disk as ciphertext only, and ships them to the server.
#![forbid(unsafe_code)]

pub mod spool;
