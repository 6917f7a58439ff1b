use super::*;
use proptest::prelude::*;

const NOW: i64 = 1_900_000_000_000_000_000;
const AUG20: i64 = 1_755_684_000_000_000_000; // 2025-08-20T10:00:00Z

fn entries(line: &str) -> EntriesMessage {
    match parse_line(line.as_bytes(), NOW) {
        Ok(Message::Entries(m)) => m,
        other => panic!("expected entries from {line}, got {other:?}"),
    }
}

fn one(line: &str) -> Entry {
    let m = entries(line);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    assert_eq!(m.entries.len(), 1);
    m.entries.into_iter().next().unwrap()
}

fn err(line: &str) -> ProtocolError {
    match parse_line(line.as_bytes(), NOW) {
        Err(e) => e,
        Ok(Message::Entries(m)) if m.entries.is_empty() && m.rejected.len() == 1 => {
            m.error_reply().unwrap()
        }
        other => panic!("expected an error from {line}, got {other:?}"),
    }
}

fn assert_err(line: &str, code: ErrorCode, needle: &str) {
    let e = err(line);
    assert_eq!(e.code, code, "{line}: {e}");
    assert!(
        e.message.contains(needle),
        "{line}: {:?} lacks {needle:?}",
        e.message
    );
}

#[test]
fn protocol_single_entry_example() {
    let e = one(
        r#"{"version":"1.0","payload":"Hello","source":"my-app","timestamp":"2025-08-20T10:00:00Z","payloadType":"generic","entryType":1,"logLevel":7,"metadata":{"k":"v"}}"#,
    );
    assert_eq!(e.payload, "Hello");
    assert_eq!(e.source, "my-app");
    assert_eq!(e.timestamp_ns, AUG20);
    assert_eq!(e.payload_type, "generic");
    assert_eq!(e.entry_type, EntryType::Log);
    assert_eq!(e.level, Level::Info);
    assert_eq!(e.metadata.get("k"), Some("v"));
}

#[test]
fn protocol_batch_example_with_and_without_version() {
    for prefix in [r#"{"version":"1.0","#, "{"] {
        let line = format!(
            r#"{prefix}"entries":[{{"payload":"a","source":"s","entryType":1,"logLevel":4}},{{"payload":"b","source":"s","entryType":2,"logLevel":8}}]}}"#
        );
        let m = entries(&line);
        assert!(m.rejected.is_empty());
        let payloads: Vec<_> = m.entries.iter().map(|e| e.payload.as_str()).collect();
        assert_eq!(payloads, ["a", "b"]);
        assert_eq!(m.entries[1].entry_type, EntryType::Metric);
        assert_eq!(m.entries[1].level, Level::Debug);
    }
}

#[test]
fn ping_and_authenticate() {
    assert_eq!(
        parse_line(br#"{"version":"1.0","action":"ping"}"#, NOW),
        Ok(Message::Ping)
    );
    assert_eq!(parse_line(br#"{"action":"ping"}"#, NOW), Ok(Message::Ping));
    assert_eq!(
        parse_line(br#"{"action":"flush"}"#, NOW),
        Ok(Message::Flush)
    );
    match parse_line(
        br#"{"version":"1.0","action":"authenticate","shared_secret":"s3cret"}"#,
        NOW,
    ) {
        Ok(Message::Authenticate { shared_secret }) => assert_eq!(shared_secret.expose(), "s3cret"),
        other => panic!("{other:?}"),
    }
    assert_err(
        r#"{"action":"authenticate"}"#,
        ErrorCode::AuthFailed,
        "needs shared_secret",
    );
    assert_err(
        r#"{"action":"authenticate","shared_secret":5}"#,
        ErrorCode::AuthFailed,
        "must be a string",
    );
    assert_err(
        r#"{"action":"dance"}"#,
        ErrorCode::UnknownAction,
        "\"dance\"",
    );
    assert_err(
        r#"{"action":1}"#,
        ErrorCode::UnknownAction,
        "must be a string",
    );
}

#[test]
fn replies_are_exactly_one_line() {
    assert_eq!(PONG_LINE, b"{\"status\":\"pong\"}\n");
    assert_eq!(
        AUTHENTICATED_LINE,
        b"{\"status\":\"success\",\"message\":\"authenticated\"}\n"
    );
    let line = ProtocolError::new(ErrorCode::InvalidEntry, "logLevel must be 1..8").to_line();
    assert_eq!(
        String::from_utf8(line).unwrap(),
        "{\"status\":\"error\",\"error\":{\"code\":\"invalid_entry\",\"message\":\"logLevel must be 1..8\"}}\n"
    );
    let auth = ProtocolError::new(ErrorCode::AuthFailed, "wrong shared secret").to_line();
    let v: serde_json::Value = serde_json::from_slice(&auth).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["message"], "wrong shared secret");
    assert_eq!(v["error"]["code"], "auth_failed");
    assert_eq!(auth.iter().filter(|&&b| b == b'\n').count(), 1);
}

#[test]
fn timestamp_precisions_and_default() {
    let base = r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"timestamp":"#;
    for (ts, want) in [
        ("\"2025-08-20T10:00:00Z\"", AUG20),
        ("\"2025-08-20T10:00:00.250Z\"", AUG20 + 250_000_000),
        ("\"2025-08-20T10:00:00.250001Z\"", AUG20 + 250_001_000),
        ("\"2025-08-20T12:00:00.5+02:00\"", AUG20 + 500_000_000),
        ("null", NOW),
    ] {
        assert_eq!(one(&format!("{base}{ts}}}")).timestamp_ns, want, "{ts}");
    }
    let missing = one(r#"{"payload":"x","source":"s","entryType":1,"logLevel":7}"#);
    assert_eq!(missing.timestamp_ns, NOW);
    assert_err(
        &format!("{base}\"yesterday\"}}"),
        ErrorCode::InvalidEntry,
        "timestamp must be RFC 3339",
    );
    assert_err(
        &format!("{base}1724083200}}"),
        ErrorCode::InvalidEntry,
        "timestamp must be an RFC 3339 string",
    );
}

#[test]
fn optional_fields_default_and_empty_metadata_is_accepted() {
    let e = one(r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"metadata":{}}"#);
    assert_eq!(e.payload_type, "generic");
    assert!(e.metadata.is_empty());
    let e = one(
        r#"{"payload":"","source":"s","entryType":7,"logLevel":1,"payloadType":"systemd_journal"}"#,
    );
    assert_eq!(e.payload, "");
    assert_eq!(e.entry_type, EntryType::TelemetryManaged);
    assert_eq!(e.payload_type, "systemd_journal");
}

#[test]
fn each_malformed_current_field_has_its_error() {
    let ok = r#""payload":"x","source":"s","entryType":1,"logLevel":7"#;
    let cases: &[(&str, ErrorCode, &str)] = &[
        (
            r#"{"source":"s","entryType":1,"logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "payload is required",
        ),
        (
            r#"{"payload":5,"source":"s","entryType":1,"logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "payload must be a string, got an integer",
        ),
        (
            r#"{"payload":null,"source":"s","entryType":1,"logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "payload must be a string, got null",
        ),
        (
            r#"{"payload":"x","entryType":1,"logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "source is required",
        ),
        (
            r#"{"payload":"x","source":"","entryType":1,"logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "source must not be empty",
        ),
        (
            r#"{"payload":"x","source":["a"],"entryType":1,"logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "source must be a string, got an array",
        ),
        (
            r#"{"payload":"x","source":"s","logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "entryType is required",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":0,"logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "entryType must be an integer 1..7, got 0",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":8,"logLevel":7}"#,
            ErrorCode::InvalidEntry,
            "entryType must be an integer 1..7, got 8",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1}"#,
            ErrorCode::InvalidEntry,
            "logLevel is required",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":9}"#,
            ErrorCode::InvalidEntry,
            "logLevel must be an integer 1..8, got 9",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":0}"#,
            ErrorCode::InvalidEntry,
            "logLevel must be an integer 1..8, got 0",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":"7"}"#,
            ErrorCode::InvalidEntry,
            "logLevel must be an integer 1..8, got the string \"7\"",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":7.5}"#,
            ErrorCode::InvalidEntry,
            "logLevel must be an integer 1..8, got 7.5",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":-3}"#,
            ErrorCode::InvalidEntry,
            "got -3",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"payloadType":"no spaces"}"#,
            ErrorCode::InvalidEntry,
            "payloadType must be",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"payloadType":3}"#,
            ErrorCode::InvalidEntry,
            "payloadType must be a string",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"metadata":"k=v"}"#,
            ErrorCode::InvalidEntry,
            "metadata must be an object",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"metadata":{"n":1}}"#,
            ErrorCode::InvalidEntry,
            "metadata.n must be a string, got an integer",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"metadata":{"n":{"deep":"x"}}}"#,
            ErrorCode::InvalidEntry,
            "metadata.n must be a string, got an object",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"metadata":{"":"v"}}"#,
            ErrorCode::InvalidEntry,
            "keys must be 1..128",
        ),
        (
            r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"version":1}"#,
            ErrorCode::InvalidEntry,
            "version must be a string",
        ),
    ];
    for (line, code, needle) in cases {
        assert_err(line, *code, needle);
    }
    // The valid base really is valid, so each case above fails for its own field.
    one(&format!("{{{ok}}}"));
}

#[test]
fn size_limits_name_the_limit() {
    let big = "x".repeat(limits::MAX_PAYLOAD_BYTES + 1);
    assert_err(
        &format!(r#"{{"payload":"{big}","source":"s","entryType":1,"logLevel":7}}"#),
        ErrorCode::InvalidEntry,
        "payload is 1048577 bytes, the limit is 1048576 bytes",
    );
    let exact = "x".repeat(limits::MAX_PAYLOAD_BYTES);
    assert_eq!(
        one(&format!(
            r#"{{"payload":"{exact}","source":"s","entryType":1,"logLevel":7}}"#
        ))
        .payload
        .len(),
        limits::MAX_PAYLOAD_BYTES
    );
    let src = "é".repeat(257);
    assert_err(
        &format!(r#"{{"payload":"x","source":"{src}","entryType":1,"logLevel":7}}"#),
        ErrorCode::InvalidEntry,
        "source is 257 characters, the limit is 256",
    );
    let src = "é".repeat(256);
    one(&format!(
        r#"{{"payload":"x","source":"{src}","entryType":1,"logLevel":7}}"#
    ));
    let val = "v".repeat(1025);
    assert_err(
        &format!(
            r#"{{"payload":"x","source":"s","entryType":1,"logLevel":7,"metadata":{{"k":"{val}"}}}}"#
        ),
        ErrorCode::InvalidEntry,
        "value of \"k\" is 1025 characters, the limit is 1024",
    );
    // Limits count characters, not bytes: two-byte characters up to each limit pass.
    let (key, val) = ("é".repeat(128), "é".repeat(1024));
    let e = one(&format!(
        r#"{{"payload":"x","source":"s","entryType":1,"logLevel":7,"metadata":{{"{key}":"{val}"}}}}"#
    ));
    assert_eq!(e.metadata.get(&key), Some(val.as_str()));
    let key = "k".repeat(129);
    assert_err(
        &format!(
            r#"{{"payload":"x","source":"s","entryType":1,"logLevel":7,"metadata":{{"{key}":"v"}}}}"#
        ),
        ErrorCode::InvalidEntry,
        "keys must be 1..128 characters",
    );
    let huge = vec![b' '; limits::MAX_LINE_BYTES + 1];
    let mut line = b"{\"payload\":\"x\"".to_vec();
    line.extend_from_slice(&huge);
    line.push(b'}');
    assert_eq!(
        parse_line(&line, NOW).unwrap_err().code,
        ErrorCode::LineTooLong
    );
}

#[test]
fn invalid_json_is_an_error_reply_not_a_crash() {
    for line in [
        "{",
        "{\"payload\":\"x\"",
        "not json",
        "[1,2,3]",
        "\"string\"",
        "",
        "   ",
        "{\"payload\":\"unterminated}",
        "{\"payload\":\"x\"}}",
        "{\"a\":1,}",
        "{\"payload\":\"\\ud800\"}",
    ] {
        let e = parse_line(line.as_bytes(), NOW).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson, "{line:?}: {e}");
    }
    let e = err(r#"{"payload":"x","payload":"y","source":"s","entryType":1,"logLevel":7}"#);
    assert!(e.message.contains("duplicate field"), "{e}");
}

#[test]
fn windows_line_endings_and_padding_are_ignored() {
    let e = one("  {\"payload\":\"x\",\"source\":\"s\",\"entryType\":1,\"logLevel\":7}\r");
    assert_eq!(e.payload, "x");
}

#[test]
fn escaped_strings_decode() {
    let e = one(
        r#"{"payload":"line1\nline2 \"quoted\" \u00e9\ud83d\ude00","source":"s\/x","entryType":1,"logLevel":7}"#,
    );
    assert_eq!(e.payload, "line1\nline2 \"quoted\" é😀");
    assert_eq!(e.source, "s/x");
}

#[test]
fn unknown_fields_are_ignored() {
    let e = one(
        r#"{"payload":"x","source":"s","entryType":1,"logLevel":7,"extra":{"a":[1,2]},"trace":true}"#,
    );
    assert_eq!(e.payload, "x");
}

#[test]
fn legacy_c_sdk_example() {
    let e = one(
        r#"{"id":"5f0c6a43-6f7b-4a52-9d1e-0e1c7f3c9a11","message":"hello","source":"c-sdk","entry_type":1,"level":6,"timestamp":1724083200,"labels":{"payload_type":"generic"}}"#,
    );
    assert_eq!(e.payload, "hello");
    assert_eq!(e.source, "c-sdk");
    assert_eq!(
        e.level,
        Level::Info,
        "legacy level 6 (info) maps to logLevel 7"
    );
    assert_eq!(e.timestamp_ns, 1_724_083_200_000_000_000);
    assert_eq!(e.payload_type, "generic");
    assert_eq!(e.metadata.len(), 1);
    assert_eq!(e.metadata["id"], "5f0c6a43-6f7b-4a52-9d1e-0e1c7f3c9a11");
}

#[test]
fn legacy_levels_map_zero_to_seven() {
    for level in 0..=7 {
        let e = one(&format!(
            r#"{{"message":"m","source":"s","entry_type":1,"level":{level}}}"#
        ));
        assert_eq!(i64::from(e.level.number()), level + 1);
    }
    assert_err(
        r#"{"message":"m","source":"s","entry_type":1,"level":8}"#,
        ErrorCode::InvalidEntry,
        "level must be an integer 0..7, got 8",
    );
}

#[test]
fn legacy_labels_variants() {
    // PHP's empty array.
    assert!(
        one(r#"{"message":"m","source":"php","entry_type":1,"level":3,"labels":[]}"#)
            .metadata
            .is_empty()
    );
    // Missing labels.
    assert!(
        one(r#"{"message":"m","source":"rb","entry_type":1,"level":3}"#)
            .metadata
            .is_empty()
    );
    // Other labels become metadata; payload_type is taken out.
    let e = one(
        r#"{"message":"m","source":"j","entry_type":1,"level":3,"labels":{"payload_type":"syslog","env":"prod"}}"#,
    );
    assert_eq!(e.payload_type, "syslog");
    assert_eq!(e.metadata.len(), 1);
    assert_eq!(e.metadata["env"], "prod");
    assert_err(
        r#"{"message":"m","source":"j","level":3,"labels":[1]}"#,
        ErrorCode::InvalidEntry,
        "labels must be an object",
    );
    assert_err(
        r#"{"message":"m","source":"j","level":3,"labels":{"n":2}}"#,
        ErrorCode::InvalidEntry,
        "labels.n must be a string",
    );
}

#[test]
fn legacy_defaults_and_timestamp_forms() {
    let e = one(r#"{"message":"m","level":4}"#);
    assert_eq!(e.source, "unknown");
    assert_eq!(e.entry_type, EntryType::Log);
    assert_eq!(e.timestamp_ns, NOW);
    let e = one(r#"{"message":"m","timestamp":1724083200.25}"#);
    assert_eq!(e.level, Level::Info);
    assert_eq!(e.timestamp_ns, 1_724_083_200_250_000_000);
    let e = one(r#"{"message":"m","timestamp":"2025-08-20T10:00:00Z"}"#);
    assert_eq!(e.timestamp_ns, AUG20);
    assert_err(
        r#"{"message":"m","timestamp":true}"#,
        ErrorCode::InvalidEntry,
        "timestamp must be Unix seconds",
    );
    assert_err(
        r#"{"message":7,"level":4}"#,
        ErrorCode::InvalidEntry,
        "message must be a string",
    );
    assert_err(
        r#"{"level":4,"source":"s"}"#,
        ErrorCode::InvalidEntry,
        "message is required",
    );
    assert_err(
        r#"{"message":"m","id":7}"#,
        ErrorCode::InvalidEntry,
        "id must be a string",
    );
}

#[test]
fn c_sdk_in_entry_shared_secret_is_returned_and_stripped() {
    let m = entries(
        r#"{"message":"m","source":"c-sdk","entry_type":1,"level":6,"timestamp":1724083200,"shared_secret":"abc"}"#,
    );
    assert_eq!(m.shared_secret.as_ref().map(Secret::expose), Some("abc"));
    assert!(m.entries[0].metadata.is_empty());
    assert!(
        !format!("{:?}", m).contains("abc"),
        "the secret must not appear in Debug output"
    );
}

#[test]
fn c_sdk_truncated_unescaped_lines_get_an_error_reply() {
    // The C SDK builds JSON by hand, without escaping, and cuts at 4096 bytes.
    let unescaped = r#"{"message":"he said "hi"","source":"c-sdk","entry_type":1,"level":6}"#;
    assert_eq!(err(unescaped).code, ErrorCode::InvalidJson);
    let long = format!(
        r#"{{"message":"{}","source":"c-sdk","entry_type":1,"level":6}}"#,
        "a".repeat(5000)
    );
    assert_eq!(err(&long[..4096]).code, ErrorCode::InvalidJson);
}

#[test]
fn batch_limits_and_partial_acceptance() {
    let entry = r#"{"payload":"x","source":"s","entryType":1,"logLevel":7}"#;
    let make = |n: usize| format!(r#"{{"entries":[{}]}}"#, vec![entry; n].join(","));
    assert_eq!(entries(&make(100)).entries.len(), 100);
    assert_err(
        &make(101),
        ErrorCode::InvalidBatch,
        "entries must hold 1..100 entries, got 101",
    );
    assert_err(r#"{"entries":[]}"#, ErrorCode::InvalidBatch, "got 0");
    assert_err(
        r#"{"entries":{"payload":"x"}}"#,
        ErrorCode::InvalidBatch,
        "must be an array",
    );
    assert_err(r#"{"entries":null}"#, ErrorCode::InvalidBatch, "got null");

    let m = entries(&format!(
        r#"{{"entries":[{entry},{{"payload":"x","source":"s","entryType":1,"logLevel":99}},{entry},5]}}"#
    ));
    assert_eq!(m.entries.len(), 2, "valid entries of a batch are kept");
    assert_eq!(m.rejected.len(), 2);
    assert_eq!(m.rejected[0].0, 1);
    assert_eq!(
        m.rejected[1].1.message,
        "entries[3] must be an object, got a number"
    );
    let reply = m.error_reply().unwrap();
    assert_eq!(reply.code, ErrorCode::InvalidEntry);
    assert_eq!(
        reply.message,
        "entries[1].logLevel must be an integer 1..8, got 99 (2 of 4 entries rejected)"
    );
    assert_err(
        &format!(r#"{{"entries":[{{"entries":[{entry}]}}]}}"#),
        ErrorCode::InvalidBatch,
        "cannot be nested",
    );
    // Legacy entries inside a batch.
    let m = entries(
        r#"{"entries":[{"message":"old","level":2},{"payload":"new","source":"s","entryType":1,"logLevel":2}]}"#,
    );
    assert_eq!(m.entries[0].level, Level::Critical);
    assert_eq!(m.entries[1].level, Level::Alert);
}

#[test]
fn a_huge_batch_does_not_grow_memory_past_the_limit() {
    let entry = r#"{"payload":"x","source":"s","entryType":1,"logLevel":7}"#;
    let line = format!(r#"{{"entries":[{}]}}"#, vec![entry; 10_000].join(","));
    assert_err(&line, ErrorCode::InvalidBatch, "got 101");
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        -4_000_000_000_000_000_000i64..4_000_000_000_000_000_000,
        1i64..=8,
        1i64..=7,
        "[^\\x00]{1,40}",
        any::<String>(),
        "[a-z_]{1,20}",
        proptest::collection::btree_map("[a-zA-Z0-9_.]{1,20}", any::<String>(), 0..5),
    )
        .prop_map(
            |(ts, level, ty, source, payload, payload_type, metadata)| Entry {
                timestamp_ns: ts,
                level: Level::from_number(level).unwrap(),
                entry_type: EntryType::from_number(ty).unwrap(),
                source: source.into(),
                payload,
                payload_type: payload_type.into(),
                metadata: metadata.into(),
            },
        )
}

proptest! {
    #[test]
    fn encode_then_parse_round_trips(entry in arb_entry()) {
        let line = encode_entry(&entry);
        let parsed = match parse_line(line.as_bytes(), NOW) {
            Ok(Message::Entries(m)) => m,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert!(parsed.rejected.is_empty());
        prop_assert_eq!(&parsed.entries[0], &entry);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_line(&bytes, NOW);
    }

    #[test]
    fn arbitrary_json_objects_never_panic(v in arb_json()) {
        let _ = parse_line(v.to_string().as_bytes(), NOW);
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let field = prop_oneof![
        Just("payload"),
        Just("message"),
        Just("source"),
        Just("entryType"),
        Just("entry_type"),
        Just("logLevel"),
        Just("level"),
        Just("timestamp"),
        Just("metadata"),
        Just("labels"),
        Just("entries"),
        Just("action"),
        Just("shared_secret"),
        Just("id"),
        Just("payloadType"),
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (0i64..10).prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,10}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    proptest::collection::btree_map(field, value, 0..8).prop_map(|m| {
        serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    })
}

/// Parses `line` with and without the fast path and requires the same result — the same
/// entries, or the same error code and message; where the fast path reads the line, it must
/// also read exactly what serde_json reads.
fn same_both_ways(line: &[u8]) -> Result<(), TestCaseError> {
    let shown = String::from_utf8_lossy(line);
    let fast_way = parse_line_with(line, NOW, true);
    let serde_way = parse_line_with(line, NOW, false);
    prop_assert_eq!(&fast_way, &serde_way, "line {:?}", shown);
    let trimmed = trim_ascii(line);
    if let Some(raw) = fast::raw_object(trimmed) {
        let by_serde = serde_json::from_slice::<RawObject<'_>>(trimmed);
        prop_assert!(
            matches!(&by_serde, Ok(r) if *r == raw),
            "line {:?}: fast path read {:?}, serde_json {:?}",
            shown,
            raw,
            by_serde.map_err(|e| e.to_string())
        );
    }
    Ok(())
}

fn reads_fast(line: &str) -> bool {
    fast::raw_object(line.as_bytes()).is_some()
}

#[test]
fn the_fast_path_reads_the_common_lines_and_leaves_the_rest_to_serde() {
    let common = [
        // What the agent benchmark and the SDKs send.
        r#"{"entryType":1,"logLevel":7,"metadata":{"region":"eu-west-1"},"payload":"GET /api/v1/orders/1 completed in 1ms user=u7 status=200","source":"checkout-service","version":"1.0"}"#,
        r#"{"version":"1.0","payload":"Hello","source":"my-app","timestamp":"2025-08-20T10:00:00Z","payloadType":"generic","entryType":1,"logLevel":7,"metadata":{"k":"v"}}"#,
        r#" { "payload" : "a \"quoted\" word\\n\ttab \/" , "source":"s", "entryType":1, "logLevel":8, "metadata":{} } "#,
        r#"{"message":"legacy","level":3,"entry_type":1,"timestamp":1755684000,"labels":[],"id":"x","shared_secret":"s3"}"#,
        r#"{"message":"legacy","labels":{"payload_type":"syslog","a":"b","a":"c"},"other":true,"n":null}"#,
        r#"{"action":"ping"}"#,
        r#"{"action":"authenticate","shared_secret":"secret"}"#,
        r#"{"payload":"ünïcödé 😀","source":"s","entryType":1,"logLevel":1,"version":null}"#,
        r#"{}"#,
    ];
    for line in common {
        assert!(reads_fast(line), "{line}");
        same_both_ways(line.as_bytes()).unwrap();
    }
    let for_serde = [
        // An unknown field holding an object or array: serde_json skips it without building it.
        r#"{"message":"legacy","unknown":{"x":[],"y":null},"other":true}"#,
        r#"{"payload":"a","source":"s","entryType":1,"logLevel":7,"extra":[1,2]}"#,
        r#"{"entries":[{"payload":"a","source":"s","entryType":1,"logLevel":4}]}"#,
        r#"{"payload":"\u0041","source":"s","entryType":1,"logLevel":7}"#,
        r#"{"payload":"a","source":"s","entryType":1.0,"logLevel":7}"#,
        r#"{"payload":"a","source":"s","entryType":-1,"logLevel":7}"#,
        r#"{"payload":"a","source":"s","entryType":1234567890123456789,"logLevel":7}"#,
        r#"{"payload":"a","payload":"b","source":"s","entryType":1,"logLevel":7}"#,
        r#"{"payload":"a","source":"s","entryType":1,"logLevel":7,"metadata":{"k":{"n":1}}}"#,
        r#"{"payload":"a","source":"s","entryType":1,"logLevel":7,"labels":[1]}"#,
        r#"{"payload":"a","source":"s","entryType":01,"logLevel":7}"#,
        r#"{"payload":"a","source":"s","entryType":1,"logLevel":7,}"#,
        r#"{"payload":"a","source":"s","entryType":1,"logLevel":7} x"#,
        "{\"payload\":\"a\u{1}\",\"source\":\"s\",\"entryType\":1,\"logLevel\":7}",
        "{\"payload\":\"a\",\u{c}\"source\":\"s\",\"entryType\":1,\"logLevel\":7}",
        r#"{"payload":"a","source":"s","entryType":1,"logLevel":7"#,
        r#"{"payload":nul,"source":"s","entryType":1,"logLevel":7}"#,
    ];
    for line in for_serde {
        assert!(!reads_fast(line), "{line}");
        same_both_ways(line.as_bytes()).unwrap();
    }
    // Invalid UTF-8 inside a string.
    let mut bad = br#"{"payload":"ab","source":"s","entryType":1,"logLevel":7}"#.to_vec();
    bad[12] = 0xff;
    assert!(fast::raw_object(&bad).is_none());
    same_both_ways(&bad).unwrap();
}

/// JSON white space, sometimes none, sometimes a character JSON does not allow.
fn arb_ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        12 => Just(""),
        2 => Just(" "),
        1 => Just("\t\r\n "),
        1 => Just("\u{c}"),
    ]
}

/// A string token, quoted: plain, escaped by serde_json, or pieced together from escapes,
/// quotes and control characters, valid or not.
fn arb_string_token() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a"),
        Just("Z9 -_.:/"),
        Just("é"),
        Just("😀"),
        Just("\\\""),
        Just("\\\\"),
        Just("\\/"),
        Just("\\b\\f\\n\\r\\t"),
        Just("\\u0041"),
        Just("\\ud83d\\ude00"),
        Just("\\ud800"),
        Just("\\x"),
        Just("\\"),
        Just("\""),
        Just("\u{1}"),
        Just("\t"),
    ];
    prop_oneof![
        4 => "[a-zA-Z0-9 _.:/-]{0,16}".prop_map(|s| format!("\"{s}\"")),
        2 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        2 => proptest::collection::vec(piece, 0..6).prop_map(|v| format!("\"{}\"", v.concat())),
    ]
}

fn arb_number_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..10).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop_oneof![
            Just("-0"), Just("0"), Just("01"), Just("00"), Just("1.5"), Just("1e3"), Just("2E-1"),
            Just("123456789012345678"), Just("999999999999999999"), Just("1234567890123456789"),
            Just("99999999999999999999999"), Just("1."), Just("-"), Just("0x10"),
        ]
        .prop_map(str::to_owned),
    ]
}

fn arb_scalar_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => arb_string_token(),
        3 => arb_number_token(),
        1 => prop_oneof![Just("null"), Just("true"), Just("false"), Just("nul"), Just("tru"), Just("fals")]
            .prop_map(str::to_owned),
    ]
}

fn arb_object_token<V: Strategy<Value = String>>(
    key: impl Strategy<Value = String>,
    value: V,
    max: usize,
) -> impl Strategy<Value = String> {
    proptest::collection::vec((arb_ws(), key, arb_ws(), value, arb_ws()), 0..max).prop_map(
        |pairs| {
            let body = pairs
                .iter()
                .map(|(w1, k, w2, v, w3)| format!("{w1}{k}{w2}:{w2}{v}{w3}"))
                .collect::<Vec<_>>()
                .join(",");
            format!("{{{body}}}")
        },
    )
}

fn arb_value_token() -> impl Strategy<Value = String> {
    let flat = arb_object_token(arb_string_token(), arb_scalar_token(), 4);
    let nested = arb_object_token(
        arb_string_token(),
        prop_oneof![
            arb_scalar_token(),
            Just("{}".to_owned()),
            Just("[\"x\"]".to_owned())
        ],
        3,
    );
    prop_oneof![
        8 => arb_scalar_token(),
        3 => flat,
        1 => nested,
        1 => prop_oneof![Just("[]"), Just("[ ]"), Just("[1]"), Just("[{}]"), Just("[")]
            .prop_map(str::to_owned),
    ]
}

fn arb_line() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("payload"),
        Just("message"),
        Just("source"),
        Just("entryType"),
        Just("entry_type"),
        Just("logLevel"),
        Just("level"),
        Just("timestamp"),
        Just("metadata"),
        Just("labels"),
        Just("entries"),
        Just("action"),
        Just("shared_secret"),
        Just("id"),
        Just("payloadType"),
        Just("version"),
        Just("other"),
        Just("pay\\u006coad"),
        Just("pay\\/load"),
    ]
    .prop_map(|k| format!("\"{k}\""));
    let object = arb_object_token(key, arb_value_token(), 9);
    let mutation = prop_oneof![
        6 => Just(None),
        1 => (any::<prop::sample::Index>(), Just(None)).prop_map(Some),
        2 => (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![b'"', b'\\', b',', b'}', b'{', b':', b' ', b'x', b'0', b'-', 0x80, 0xff, 0x01])
                .prop_map(Some)
        )
            .prop_map(Some),
    ];
    (arb_ws(), object, arb_ws(), mutation).prop_map(|(w1, object, w2, mutation)| {
        let mut line = format!("{w1}{object}{w2}").into_bytes();
        match mutation {
            None => {}
            Some((at, None)) => {
                line.remove(at.index(line.len()));
            }
            Some((at, Some(b))) => {
                line.insert(at.index(line.len() + 1), b);
            }
        }
        line
    })
}

/// A line of one entry, mostly valid, fields in any order: what clients send.
fn arb_entry_line() -> impl Strategy<Value = Vec<u8>> {
    let text = prop_oneof![
        3 => "[a-zA-Z0-9 _.:/=-]{0,40}".prop_map(|s| format!("\"{s}\"")),
        1 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => "[a-z \"\\\\/\n\t]{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    let small = (0u64..10).prop_map(|n| n.to_string());
    let time = prop_oneof![
        Just("\"2025-08-20T10:00:00Z\"".to_owned()),
        Just("\"2025-08-20T10:00:00.123456789+02:00\"".to_owned()),
        Just("\"yesterday\"".to_owned()),
        Just("1755684000".to_owned()),
        Just("null".to_owned()),
    ];
    let map = proptest::collection::vec(
        (
            "[a-z_]{0,12}".prop_map(|k| format!("\"{k}\"")),
            text.clone(),
        ),
        0..4,
    )
    .prop_map(|pairs| {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", body.join(","))
    });
    let fields = (
        prop_oneof![Just("payload"), Just("message")],
        text.clone(),
        text,
        small.clone(),
        small,
        proptest::option::of(time),
        prop_oneof![Just("metadata"), Just("labels")],
        map,
        proptest::option::of(prop_oneof![Just("\"1.0\""), Just("null"), Just("1")]),
    )
        .prop_map(|(pk, payload, source, ty, level, time, mk, map, version)| {
            let mut f = vec![
                format!("\"{pk}\":{payload}"),
                format!("\"source\":{source}"),
                format!("\"entryType\":{ty}"),
                format!("\"logLevel\":{level}"),
                format!("\"{mk}\":{map}"),
            ];
            f.extend(time.map(|t| format!("\"timestamp\":{t}")));
            f.extend(version.map(|v| format!("\"version\":{v}")));
            f
        })
        .prop_shuffle();
    (fields, arb_ws()).prop_map(|(f, ws)| format!("{{{}}}", f.join(&format!(",{ws}"))).into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn fast_path_reads_entry_lines_as_serde_does(line in arb_entry_line()) {
        same_both_ways(&line)?;
    }

    #[test]
    fn fast_path_reads_what_serde_reads(line in arb_line()) {
        same_both_ways(&line)?;
    }

    #[test]
    fn fast_path_reads_encoded_entries_as_serde_does(entry in arb_entry()) {
        same_both_ways(encode_entry(&entry).as_bytes())?;
    }

    #[test]
    fn fast_path_agrees_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        same_both_ways(&bytes)?;
    }

    #[test]
    fn fast_path_agrees_on_arbitrary_json_objects(v in arb_json()) {
        same_both_ways(v.to_string().as_bytes())?;
    }
}
