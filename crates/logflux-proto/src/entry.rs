use std::fmt;
use std::str::FromStr;

use compact_str::CompactString;

use crate::metadata::Metadata;

/// Limits of PROTOCOL.md §1 that every producer and the agent enforce.
pub mod limits {
    /// Largest payload, in bytes.
    pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
    /// Longest source, in characters.
    pub const MAX_SOURCE_CHARS: usize = 256;
    /// Longest metadata value, in characters.
    pub const MAX_METADATA_VALUE_CHARS: usize = 1024;
    /// Longest metadata key, in characters.
    pub const MAX_METADATA_KEY_CHARS: usize = 128;
    /// Most metadata pairs on one entry.
    pub const MAX_METADATA_PAIRS: usize = 128;
    /// Longest payload type name, in bytes.
    pub const MAX_PAYLOAD_TYPE_BYTES: usize = 64;
    /// Most entries in one NDJSON batch message.
    pub const MAX_BATCH_ENTRIES: usize = 100;
    /// Longest NDJSON line: a full payload plus room for the envelope and JSON escaping.
    pub const MAX_LINE_BYTES: usize = MAX_PAYLOAD_BYTES + 64 * 1024;

    /// Widest time range one stored record may declare (last minus first timestamp): an agent
    /// batch covers seconds to hours, never more. The server refuses wider records; the agent
    /// cuts a batch before its entries' times (rounded outward) would exceed it.
    pub const MAX_RECORD_SPAN_NS: i64 = 3600 * 1_000_000_000;
    /// How far beyond the server's clock a record's times may reach: room for clock skew
    /// between producers and the server, not for dates in the future.
    pub const MAX_FUTURE_NS: i64 = 15 * 60 * 1_000_000_000;
    /// Largest `batch.max_bytes` an agent may be configured with.
    pub const MAX_AGENT_BATCH_BYTES: usize = 8 * 1024 * 1024;
    /// Largest decompressed batch a client opens: the agent's largest batch (it is cut once it
    /// reaches `batch.max_bytes`, so it can exceed it by one entry of at most ~2 MiB) with room
    /// to spare. A record whose content claims more is refused before it is decompressed.
    pub const MAX_BATCH_PLAINTEXT_BYTES: usize = 16 * 1024 * 1024;
}

/// Syslog-style severity, 1 (emergency) to 8 (debug) as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    Emergency = 1,
    Alert = 2,
    Critical = 3,
    Error = 4,
    Warning = 5,
    Notice = 6,
    Info = 7,
    Debug = 8,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Level; 8] = [
        Level::Emergency,
        Level::Alert,
        Level::Critical,
        Level::Error,
        Level::Warning,
        Level::Notice,
        Level::Info,
        Level::Debug,
    ];

    /// The level with wire number `n` (1..=8).
    pub fn from_number(n: i64) -> Option<Level> {
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The wire number, 1..=8.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The canonical lower-case name (`error`, `warning`, …).
    pub fn name(self) -> &'static str {
        match self {
            Level::Emergency => "emergency",
            Level::Alert => "alert",
            Level::Critical => "critical",
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the accepted spellings, with the accepted ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}; expected one of: {expected}")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl FromStr for Level {
    type Err = UnknownName;

    /// Accepts names as journalctl and syslog spell them (`err`, `warn`, `crit`, …) and numbers.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let level = match lower.as_str() {
            "1" | "emerg" | "emergency" | "panic" => Level::Emergency,
            "2" | "alert" => Level::Alert,
            "3" | "crit" | "critical" => Level::Critical,
            "4" | "err" | "error" => Level::Error,
            "5" | "warn" | "warning" => Level::Warning,
            "6" | "notice" => Level::Notice,
            "7" | "info" | "informational" => Level::Info,
            "8" | "debug" => Level::Debug,
            _ => {
                return Err(UnknownName {
                    what: "level",
                    given: s.to_owned(),
                    expected: "emergency, alert, critical, error, warning, notice, info, debug or 1..8",
                });
            }
        };
        Ok(level)
    }
}

/// The kind of an entry, 1..=7 as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum EntryType {
    Log = 1,
    Metric = 2,
    Trace = 3,
    Event = 4,
    Audit = 5,
    /// Sent by v3 SDKs (encrypted).
    Telemetry = 6,
    /// Sent by v3 SDKs (gzip only, payload type 3).
    TelemetryManaged = 7,
}

impl EntryType {
    /// Every entry type in wire order.
    pub const ALL: [EntryType; 7] = [
        EntryType::Log,
        EntryType::Metric,
        EntryType::Trace,
        EntryType::Event,
        EntryType::Audit,
        EntryType::Telemetry,
        EntryType::TelemetryManaged,
    ];

    /// The entry type with wire number `n` (1..=7).
    pub fn from_number(n: i64) -> Option<EntryType> {
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The wire number, 1..=7.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The lower-case name, as SDK payloads spell it in `type`.
    pub fn name(self) -> &'static str {
        match self {
            EntryType::Log => "log",
            EntryType::Metric => "metric",
            EntryType::Trace => "trace",
            EntryType::Event => "event",
            EntryType::Audit => "audit",
            EntryType::Telemetry => "telemetry",
            EntryType::TelemetryManaged => "telemetry_managed",
        }
    }
}

impl fmt::Display for EntryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EntryType {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        EntryType::ALL
            .iter()
            .copied()
            .find(|t| t.name() == lower || t.number().to_string() == lower)
            .ok_or_else(|| UnknownName {
                what: "entry type",
                given: s.to_owned(),
                expected: "log, metric, trace, event, audit, telemetry, telemetry_managed or 1..7",
            })
    }
}

/// One normalized log entry, as the agent keeps it between parsing and sealing.
///
/// The short strings (source, payload type, metadata keys and values) are [`CompactString`]s:
/// up to 24 bytes they are stored inline, so most entries allocate only their payload and one
/// vector of metadata pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Nanoseconds since the Unix epoch, UTC.
    pub timestamp_ns: i64,
    pub level: Level,
    pub entry_type: EntryType,
    pub source: CompactString,
    pub payload: String,
    /// `generic`, `syslog`, `systemd_journal`, … (see PROTOCOL.md §1).
    pub payload_type: CompactString,
    /// Flat string map; sorted, so encodings are deterministic.
    pub metadata: Metadata,
}

impl Entry {
    /// The default payload type.
    pub const DEFAULT_PAYLOAD_TYPE: &'static str = "generic";

    /// [`Entry::DEFAULT_PAYLOAD_TYPE`] as a string that costs no allocation.
    pub const fn default_payload_type() -> CompactString {
        CompactString::const_new(Self::DEFAULT_PAYLOAD_TYPE)
    }

    /// A log entry with default type, payload type and no metadata.
    pub fn new(timestamp_ns: i64, level: Level, source: &str, payload: &str) -> Self {
        Self::with_payload(timestamp_ns, level, source, payload.to_owned())
    }

    /// [`Entry::new`] taking the payload as it is (no copy).
    pub fn with_payload(timestamp_ns: i64, level: Level, source: &str, payload: String) -> Self {
        Entry {
            timestamp_ns,
            level,
            entry_type: EntryType::Log,
            source: CompactString::from(source),
            payload,
            payload_type: Self::default_payload_type(),
            metadata: Metadata::new(),
        }
    }

    /// An estimate of the entry's size in memory, used for batch limits and memory budgets.
    /// It is the estimate made when the strings were `String`s and the metadata a `BTreeMap`
    /// (their headers, allocator overhead and the map's nodes): kept as it was so that batches
    /// are cut where they always were, and so that it stays a bound on what an entry costs.
    pub fn approx_size(&self) -> usize {
        128 + self.source.len()
            + self.payload.len()
            + self.payload_type.len()
            + self
                .metadata
                .iter()
                .map(|(k, v)| k.len() + v.len() + 96)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_by_name_alias_and_number() {
        assert_eq!("err".parse::<Level>(), Ok(Level::Error));
        assert_eq!("WARNING".parse::<Level>(), Ok(Level::Warning));
        assert_eq!("3".parse::<Level>(), Ok(Level::Critical));
        let err = "loud".parse::<Level>().unwrap_err().to_string();
        assert!(err.contains("\"loud\""), "{err}");
        for l in Level::ALL {
            assert_eq!(Level::from_number(i64::from(l.number())), Some(l));
            assert_eq!(l.name().parse::<Level>(), Ok(l));
        }
        assert_eq!(Level::from_number(0), None);
        assert_eq!(Level::from_number(9), None);
        assert_eq!(Level::from_number(-1), None);
    }

    #[test]
    fn entry_types_parse_by_name_and_number() {
        for t in EntryType::ALL {
            assert_eq!(EntryType::from_number(i64::from(t.number())), Some(t));
            assert_eq!(t.name().parse::<EntryType>(), Ok(t));
        }
        assert_eq!("2".parse::<EntryType>(), Ok(EntryType::Metric));
        assert!("span".parse::<EntryType>().is_err());
        assert_eq!(EntryType::from_number(8), None);
    }
}
