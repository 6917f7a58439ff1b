//! Wire formats of LogFlux, with no I/O and no runtime.
//!
//! - [`Entry`]: one normalized log entry, whichever way it arrived.
//! - [`ndjson`]: the agent's local API (PROTOCOL.md §1), both the current camelCase schema and
//!   the legacy snake_case schema, with ping, authenticate and batches.
//! - [`multipart`]: the `/v1/ingest` body (PROTOCOL.md §2), tolerant of the JavaScript SDK's
//!   missing CRLF, and a writer for the agent.
//! - [`sdk`]: the decrypted SDK payload v2.0 JSON of all seven entry types.
//! - [`frames`]: the binary record stream of query and tail responses.
//! - [`batch`]: the binary encoding of a batch of entries that the agent compresses and seals.
//! - [`Metadata`]: an entry's flat string map, one sorted vector of inline short strings.
//! - [`EntryView`]: what clients display, for agent entries and SDK entries alike.
//!
//! ```
//! use logflux_proto::ndjson::{parse_line, Message};
//!
//! let line = br#"{"payload":"Hello","source":"my-app","entryType":1,"logLevel":7}"#;
//! match parse_line(line, 0).unwrap() {
//!     Message::Entries(m) => assert_eq!(m.entries[0].payload, "Hello"),
//!     _ => unreachable!(),
//! }
//! ```
#![forbid(unsafe_code)]

pub mod batch;
mod bytes;
pub mod codec;
mod entry;
pub mod frames;
mod metadata;
pub mod multipart;
pub mod ndjson;
pub mod query;
pub mod sdk;
mod secret;
pub mod timefmt;
mod view;

pub use bytes::{order_bytes, same_bytes};
pub use compact_str::{CompactString, ToCompactString, format_compact};
pub use entry::{Entry, EntryType, Level, UnknownName, limits};
pub use metadata::{Iter as MetadataIter, Metadata};
pub use secret::Secret;

/// The reserved token that the server gives every record not sealed by an agent (SDK entries
/// carry no blind tokens of their own). A query adds it to each token group so that such
/// records, which no token can prune, are still returned and filtered after decryption.
/// It tells the server nothing it did not know: it follows from the record's payload type.
pub const UNTOKENIZED: &str = "0000000000000000";
pub use view::EntryView;
