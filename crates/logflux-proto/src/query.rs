//! The query API's request bodies (`POST /v1/query`, `POST /v1/tail`) and their validation, in
//! one place for the server, the client and the fuzz target. Tokens stay opaque strings here:
//! the server maps them to its 64-bit index keys.

use serde::{Deserialize, Serialize};

/// Most records in one response.
pub const MAX_LIMIT: usize = 10_000;
/// Records in a response when the request names no limit.
pub const DEFAULT_LIMIT: usize = 1000;
/// Most records one `POST /v1/records` request names.
pub const MAX_RECORDS_PER_REQUEST: usize = 1000;
/// Most token groups in a request.
pub const MAX_TOKEN_GROUPS: usize = 64;
/// Room for every level of a range, for each application of the tenant, in one group.
pub const MAX_TOKENS_PER_GROUP: usize = 4096;

/// A time bound: Unix nanoseconds or RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TimeBound {
    Nanos(i64),
    Text(String),
}

impl TimeBound {
    /// Nanoseconds since the epoch; `what` names the field in the error.
    pub fn ns(&self, what: &str) -> Result<i64, String> {
        match self {
            TimeBound::Nanos(n) => Ok(*n),
            TimeBound::Text(s) => {
                crate::timefmt::parse_rfc3339(s).map_err(|e| format!("{what} {s:?}: {e}"))
            }
        }
    }
}

/// The body of `POST /v1/query`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<TimeBound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<TimeBound>,
    /// Application ids or names; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    /// SDK entry types to keep (agent batches, which mix types, always pass: filter them by
    /// their type tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_types: Vec<u8>,
    /// Token groups: a record matches when it carries at least one token of every group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Whether record lines carry their ciphertext (`body`); absent: yes. With `false` the
    /// server lists records from their segments' footers alone, and a client fetches the
    /// bodies it lacks with `POST /v1/records`. Serialized only when `Some(false)`, so a
    /// request that wants bodies is the one servers without this field accept.
    #[serde(default, skip_serializing_if = "wants_bodies")]
    pub bodies: Option<bool>,
}

/// Whether `bodies` asks for bodies (absent or `true`): then the field is left out.
fn wants_bodies(bodies: &Option<bool>) -> bool {
    *bodies != Some(false)
}

/// One record named by `POST /v1/records`: the segment and record id of a query's record line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRef {
    pub segment_id: i64,
    pub record_id: String,
}

/// The body of `POST /v1/records`: records (with their bodies) by segment and id, answered in
/// the request's order.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsRequest {
    pub records: Vec<RecordRef>,
}

impl RecordsRequest {
    /// Validates the request: at most [`MAX_RECORDS_PER_REQUEST`] records. The error is the
    /// message of a 400 answer.
    pub fn check(&self) -> Result<(), String> {
        if self.records.len() > MAX_RECORDS_PER_REQUEST {
            return Err(format!(
                "records: at most {MAX_RECORDS_PER_REQUEST} in one request, got {}; split it",
                self.records.len()
            ));
        }
        Ok(())
    }
}

/// The body of `POST /v1/tail`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TailRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_types: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Vec<String>>,
    /// Start after this segment id (a `segment_id` from an earlier line); default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_segment: Option<i64>,
}

impl TailRequest {
    /// Validates the request (entry types, token groups) as `openapi.json` constrains it. The
    /// error is the message of a 400 answer.
    pub fn check(&self) -> Result<(), String> {
        check_entry_types(&self.entry_types)?;
        check_token_groups(&self.tokens)
    }
}

/// Where a listing stopped: the segment's order key (max_ts newest first, min_ts oldest first),
/// its id and the next selected record index. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub ts: i64,
    pub segment_id: i64,
    pub next: usize,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.ts, self.segment_id, self.next)
    }

    pub fn decode(s: &str) -> Result<Cursor, String> {
        let bad = || format!("cursor {s:?} is not one this server issued");
        let mut it = s.split('.');
        let c = Cursor {
            ts: it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?,
            segment_id: it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?,
            next: it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?,
        };
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(c)
    }
}

/// A validated query: what the server executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPlan {
    pub from: i64,
    pub to: i64,
    pub newest_first: bool,
    /// In `1..=MAX_LIMIT`; the request's limit, never clamped.
    pub limit: usize,
    pub cursor: Option<Cursor>,
    /// Whether record lines carry their ciphertext.
    pub bodies: bool,
}

/// Checks `entry_types`: each a wire number 1..=7 (`openapi.json`'s `minimum`/`maximum`).
pub fn check_entry_types(entry_types: &[u8]) -> Result<(), String> {
    match entry_types
        .iter()
        .find(|&&t| crate::EntryType::from_number(i64::from(t)).is_none())
    {
        Some(t) => Err(format!("entry_types: each must be 1..7, got {t}")),
        None => Ok(()),
    }
}

/// Checks the number and size of token groups.
pub fn check_token_groups(tokens: &[Vec<String>]) -> Result<(), String> {
    if tokens.len() > MAX_TOKEN_GROUPS
        || tokens
            .iter()
            .any(|g| g.is_empty() || g.len() > MAX_TOKENS_PER_GROUP)
    {
        return Err(format!(
            "tokens: at most {MAX_TOKEN_GROUPS} groups of 1..{MAX_TOKENS_PER_GROUP} tokens"
        ));
    }
    Ok(())
}

impl QueryRequest {
    /// Validates the request: time bounds, order, limit, entry types, token groups, cursor,
    /// exactly as `openapi.json` constrains them (a value outside a documented bound is
    /// refused, never clamped). The error is the message of a 400 answer.
    pub fn plan(&self) -> Result<QueryPlan, String> {
        let from = self
            .from
            .as_ref()
            .map(|b| b.ns("from"))
            .transpose()?
            .unwrap_or(i64::MIN);
        let to = self
            .to
            .as_ref()
            .map(|b| b.ns("to"))
            .transpose()?
            .unwrap_or(i64::MAX);
        if from > to {
            return Err("from is after to".into());
        }
        let newest_first = match self.order.as_deref() {
            None | Some("newest") => true,
            Some("oldest") => false,
            Some(o) => return Err(format!("order must be newest or oldest, got {o:?}")),
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(format!("limit must be 1..{MAX_LIMIT}, got {limit}"));
        }
        check_entry_types(&self.entry_types)?;
        check_token_groups(&self.tokens)?;
        Ok(QueryPlan {
            from,
            to,
            newest_first,
            limit,
            cursor: self.cursor.as_deref().map(Cursor::decode).transpose()?,
            bodies: self.bodies.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            ts: -5,
            segment_id: 42,
            next: 7,
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "1.2", "1.2.3.4", "a.b.c", "1.2.-1"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plans_and_refusals() {
        let q: QueryRequest = serde_json::from_str(
            r#"{"from":"2026-11-21T00:00:00Z","to":1900000000000000000,"limit":1,"order":"oldest","tokens":[["a","b"]],"entry_types":[1,7]}"#,
        )
        .unwrap();
        let p = q.plan().unwrap();
        assert_eq!(p.from, 1_795_219_200_000_000_000);
        assert_eq!(
            (p.to, p.limit, p.newest_first),
            (1_900_000_000_000_000_000, 1, false)
        );
        let e = |j: &str| {
            serde_json::from_str::<QueryRequest>(j)
                .unwrap()
                .plan()
                .unwrap_err()
        };
        assert_eq!(e(r#"{"from":10,"to":5}"#), "from is after to");
        assert!(e(r#"{"order":"sideways"}"#).contains("newest or oldest"));
        assert!(e(r#"{"tokens":[[]]}"#).contains("groups"));
        assert!(e(r#"{"cursor":"x"}"#).contains("cursor"));
        assert!(e(r#"{"from":"yesterday"}"#).starts_with("from \"yesterday\""));
        assert!(serde_json::from_str::<QueryRequest>(r#"{"form":1}"#).is_err());
    }

    #[test]
    fn out_of_range_limits_and_entry_types_are_refused_not_clamped() {
        let e = |j: &str| {
            serde_json::from_str::<QueryRequest>(j)
                .unwrap()
                .plan()
                .unwrap_err()
        };
        for limit in ["0", "10001", "9223372036854775808"] {
            let msg = e(&format!(r#"{{"limit":{limit}}}"#));
            assert_eq!(msg, format!("limit must be 1..10000, got {limit}"));
        }
        for limit in [1, 10_000] {
            let q: QueryRequest = serde_json::from_str(&format!(r#"{{"limit":{limit}}}"#)).unwrap();
            assert_eq!(q.plan().unwrap().limit, limit);
        }
        assert_eq!(
            e(r#"{"entry_types":[0]}"#),
            "entry_types: each must be 1..7, got 0"
        );
        assert!(e(r#"{"entry_types":[1,8]}"#).contains("got 8"));
        let tail = |j: &str| serde_json::from_str::<TailRequest>(j).unwrap().check();
        assert!(tail(r#"{"entry_types":[0]}"#).unwrap_err().contains("1..7"));
        assert!(tail(r#"{"tokens":[[]]}"#).unwrap_err().contains("groups"));
        assert_eq!(tail(r#"{"entry_types":[7],"tokens":[["a"]]}"#), Ok(()));
    }

    #[test]
    fn bodies_default_to_true_and_only_false_is_sent() {
        let parse = |j: &str| serde_json::from_str::<QueryRequest>(j).unwrap();
        assert!(parse("{}").plan().unwrap().bodies);
        assert!(parse(r#"{"bodies":true}"#).plan().unwrap().bodies);
        assert!(!parse(r#"{"bodies":false}"#).plan().unwrap().bodies);
        assert!(serde_json::from_str::<QueryRequest>(r#"{"bodies":"no"}"#).is_err());
        let json = |bodies| {
            serde_json::to_string(&QueryRequest {
                bodies,
                ..QueryRequest::default()
            })
            .unwrap()
        };
        // What an older server (which refuses unknown fields) accepts, unless bodies are off.
        assert_eq!(json(None), "{}");
        assert_eq!(json(Some(true)), "{}");
        assert_eq!(json(Some(false)), r#"{"bodies":false}"#);
    }

    #[test]
    fn records_requests_are_bounded_and_strict() {
        let refs = |n: usize| RecordsRequest {
            records: (0..n)
                .map(|i| RecordRef {
                    segment_id: 1,
                    record_id: format!("r{i}"),
                })
                .collect(),
        };
        assert_eq!(refs(MAX_RECORDS_PER_REQUEST).check(), Ok(()));
        assert_eq!(refs(0).check(), Ok(()));
        let e = refs(MAX_RECORDS_PER_REQUEST + 1).check().unwrap_err();
        assert!(e.contains("at most 1000") && e.contains("1001"), "{e}");
        let parse = |j: &str| serde_json::from_str::<RecordsRequest>(j);
        assert_eq!(
            parse(r#"{"records":[{"segment_id":3,"record_id":"a"}]}"#)
                .unwrap()
                .records,
            [RecordRef {
                segment_id: 3,
                record_id: "a".into()
            }]
        );
        assert!(parse(r#"{"records":[],"more":1}"#).is_err());
        assert!(parse(r#"{"records":[{"segment_id":3,"record_id":"a","x":1}]}"#).is_err());
        assert!(parse("{}").is_err());
    }
}
