//! Any body of `POST /v1/query`, `POST /v1/tail` or `POST /v1/records`: parsed and validated
//! exactly as the server does, or refused with a message, never a panic; what validates stays
//! within the limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logflux_proto::query::{self, Cursor, QueryRequest, RecordsRequest, TailRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<QueryRequest>(data) {
        match req.plan() {
            Ok(plan) => {
                assert!(plan.from <= plan.to);
                assert!((1..=query::MAX_LIMIT).contains(&plan.limit));
                assert_eq!(plan.limit, req.limit.unwrap_or(query::DEFAULT_LIMIT));
                assert!(req.entry_types.iter().all(|t| (1..=7).contains(t)));
                assert!(req.tokens.len() <= query::MAX_TOKEN_GROUPS);
                if let Some(c) = plan.cursor {
                    // A cursor that decodes is one the server could have issued.
                    assert_eq!(Cursor::decode(&c.encode()), Ok(c));
                }
                // The request survives a round trip through its own serialisation.
                let again: QueryRequest =
                    serde_json::from_slice(&serde_json::to_vec(&req).expect("serialises"))
                        .expect("re-parses");
                assert_eq!(again.plan(), Ok(plan));
            }
            Err(msg) => assert!(!msg.is_empty()),
        }
    }
    if let Ok(req) = serde_json::from_slice::<TailRequest>(data)
        && req.check().is_ok()
    {
        assert!(req.entry_types.iter().all(|t| (1..=7).contains(t)));
        assert!(req.tokens.len() <= query::MAX_TOKEN_GROUPS);
    }
    if let Ok(req) = serde_json::from_slice::<RecordsRequest>(data) {
        match req.check() {
            Ok(()) => {
                assert!(req.records.len() <= query::MAX_RECORDS_PER_REQUEST);
                let again: RecordsRequest =
                    serde_json::from_slice(&serde_json::to_vec(&req).expect("serialises"))
                        .expect("re-parses");
                assert_eq!(again.records, req.records);
            }
            Err(msg) => assert!(!msg.is_empty()),
        }
    }
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(c) = Cursor::decode(s)
    {
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
    }
});
