use super::*;
use serde_json::json;

const PART_TS: i64 = 42;

fn view(ty: EntryType, v: Value) -> EntryView {
    to_view(ty, PART_TS, parse(v.to_string().as_bytes()).unwrap())
}

#[test]
fn javascript_log_with_attributes_and_meta() {
    let v = view(
        EntryType::Log,
        json!({"v":"2.0","type":"log","source":"web","level":4,"ts":"2026-11-20T21:49:06.545Z",
               "message":"payment failed","attributes":{"user":"u1","retries":3},
               "meta":{"environment":"prod","release":"1.2.3"}}),
    );
    assert_eq!(v.payload, "payment failed");
    assert_eq!(v.level, Level::Error);
    assert_eq!(v.source, "web");
    assert_eq!(
        v.timestamp_ns,
        timefmt::parse_rfc3339("2026-11-20T21:49:06.545Z").unwrap()
    );
    assert_eq!(v.metadata["user"], "u1");
    assert_eq!(v.metadata["retries"], "3");
    assert_eq!(v.fields.len(), 1, "{:?}", v.fields);
    assert_eq!(v.fields["meta"]["release"], "1.2.3");
    let out = v.to_json();
    assert_eq!(out["timestamp"], "2026-11-20T21:49:06.545Z");
    assert_eq!(out["logLevel"], 4);
    assert_eq!(out["entryType"], 1);
    assert_eq!(out["payloadType"], "application");
    assert_eq!(out["meta"]["environment"], "prod");
}

#[test]
fn java_nanosecond_ts_and_logger_kept() {
    let v = view(
        EntryType::Log,
        json!({"v":"2.0","type":"log","source":"svc","level":7,"ts":"2026-11-20T21:49:06.545123456Z","message":"m","logger":"com.acme.Main"}),
    );
    assert_eq!(v.timestamp_ns % 1_000_000_000, 545_123_456);
    assert_eq!(v.fields["logger"], "com.acme.Main");
}

#[test]
fn metric_java_integer_and_js_float() {
    let v = view(
        EntryType::Metric,
        json!({"v":"2.0","type":"metric","source":"s","level":7,"ts":"2026-11-20T21:49:06Z","name":"requests","value":42,"metric_type":"counter"}),
    );
    assert_eq!(v.payload, "requests = 42 (counter)");
    assert_eq!(v.fields["value"], 42);
    let v = view(
        EntryType::Metric,
        json!({"type":"metric","name":"latency","value":1.5,"metric_type":"gauge","unit":"ms"}),
    );
    assert_eq!(v.payload, "latency = 1.5 ms (gauge)");
    assert_eq!(v.source, "unknown");
    assert_eq!(v.timestamp_ns, PART_TS, "falls back to the part timestamp");
}

#[test]
fn trace_with_and_without_parent() {
    let v = view(
        EntryType::Trace,
        json!({"type":"trace","trace_id":"t1","span_id":"s1","operation":"GET /","description":"index","start_time":"a","end_time":"b","duration_ms":12,"status":"ok"}),
    );
    assert_eq!(v.payload, "GET /: index (12 ms, ok)");
    assert!(!v.fields.contains_key("parent_span_id"));
    let v = view(
        EntryType::Trace,
        json!({"type":"trace","trace_id":"t1","span_id":"s2","parent_span_id":"s1","operation":"db","duration_ms":3,"status":"error"}),
    );
    assert_eq!(v.payload, "db (3 ms, error)");
    assert_eq!(v.fields["parent_span_id"], "s1");
}

#[test]
fn event_audit_telemetry() {
    assert_eq!(
        view(EntryType::Event, json!({"type":"event","event":"signup"})).payload,
        "signup"
    );
    let v = view(
        EntryType::Audit,
        json!({"type":"audit","action":"delete","actor":"alice","resource":"doc","resource_id":"42","outcome":"success"}),
    );
    assert_eq!(v.payload, "alice delete doc/42 (success)");
    let v = view(
        EntryType::Audit,
        json!({"type":"audit","action":"login","actor":"bob","resource":"session","resource_id":"9"}),
    );
    assert_eq!(v.payload, "bob login session/9");
    let v = view(
        EntryType::Telemetry,
        json!({"type":"telemetry","device_id":"d1","readings":[{"name":"temp","value":21.5,"unit":"C"},{"name":"hum","value":40}]}),
    );
    assert_eq!(v.payload, "d1: temp=21.5 C, hum=40");
    let v = view(
        EntryType::TelemetryManaged,
        json!({"type":"telemetry","device_id":"d2","readings":[]}),
    );
    assert_eq!(v.payload, "d2: ");
}

#[test]
fn captured_error_keeps_every_field() {
    let v = view(
        EntryType::Log,
        json!({"v":"2.0","type":"log","source":"app","level":4,"ts":"2026-11-20T21:49:06.545Z",
               "message":"TypeError: x is undefined","error_type":"TypeError","error_message":"x is undefined",
               "stack_trace":[{"function":"f","file":"a.js","line":3}],
               "error_chain":[{"type":"TypeError","message":"x"},{"type":"Error","message":"y"}],
               "breadcrumbs":[{"timestamp":"t","category":"nav","message":"to /","level":"info","data":{"k":1}}]}),
    );
    assert_eq!(v.payload, "TypeError: x is undefined");
    for k in [
        "error_type",
        "error_message",
        "stack_trace",
        "error_chain",
        "breadcrumbs",
    ] {
        assert!(v.fields.contains_key(k), "{k} kept");
    }
    let without_message = view(
        EntryType::Log,
        json!({"error_type":"E","error_message":"boom"}),
    );
    assert_eq!(without_message.payload, "E: boom");
}

#[test]
fn odd_values_are_kept_not_dropped() {
    let v = view(
        EntryType::Log,
        json!({"type":"metric","level":"high","source":5,"attributes":[1],"future_field":{"x":1}}),
    );
    assert_eq!(v.level, Level::Info);
    assert_eq!(v.fields["level"], "high");
    assert_eq!(v.fields["source"], 5);
    assert_eq!(v.fields["attributes"], json!([1]));
    assert_eq!(
        v.fields["type"], "metric",
        "a type that disagrees with the part header is kept"
    );
    assert_eq!(v.fields["future_field"]["x"], 1);
    // No message: the payload shows the object rather than nothing.
    assert!(v.payload.contains("future_field"), "{}", v.payload);
}

#[test]
fn non_objects_are_errors() {
    assert_eq!(parse(b"[1]"), Err(SdkError::NotObject));
    assert!(matches!(parse(b"{bad"), Err(SdkError::Json(_))));
}

#[test]
fn agent_entries_view_has_no_fields() {
    let mut e = crate::Entry::new(7, Level::Warning, "s", "p");
    e.metadata.insert("k", "v");
    let v = EntryView::from(e);
    let out = v.to_json();
    assert_eq!(
        out,
        json!({"timestamp":"1970-01-01T00:00:00.000000007Z","logLevel":5,"entryType":1,"source":"s","payload":"p","payloadType":"generic","metadata":{"k":"v"}})
    );
}

#[test]
fn go_sdk_raw_message_text_is_a_plain_log_line() {
    // The Go SDK's Info/Warn/… and its logrus, zap, zerolog and stdlib adapters seal the bare
    // text, not a JSON object.
    let v = view_of(EntryType::Log, PART_TS, b"user alice logged in\n");
    assert_eq!(v.payload, "user alice logged in");
    assert_eq!(v.level, Level::Info);
    assert_eq!(v.entry_type, EntryType::Log);
    assert_eq!(v.timestamp_ns, PART_TS, "time from the part header");
    assert_eq!(v.payload_type, PAYLOAD_TYPE);
    assert!(v.fields.is_empty() && v.metadata.is_empty());
    // Text that happens to be JSON, but not an object, is text too.
    assert_eq!(view_of(EntryType::Event, PART_TS, b"42").payload, "42");
    assert_eq!(
        view_of(EntryType::Log, PART_TS, b"[not json").payload,
        "[not json"
    );
    // Invalid UTF-8 is shown, not refused.
    assert_eq!(
        view_of(EntryType::Log, PART_TS, b"caf\xe9").payload,
        "caf\u{fffd}"
    );
    // A line that is itself a JSON object (a zap/logrus/zerolog JSON formatter behind the Go
    // SDK's adapters) is shown as written: its `ts` and `msg` are not the payload's fields.
    let zap = br#"{"level":"error","ts":1796026520.5,"msg":"db down","source":"x"}"#;
    let v = view_of(EntryType::Log, PART_TS, zap);
    assert_eq!(v.payload.as_bytes(), zap);
    assert_eq!(v.timestamp_ns, PART_TS);
    assert_eq!(v.source, "unknown");
    // Nor is a line whose own `type` is not an entry type's name.
    let access = br#"{"level":"info","msg":"GET /","type":"access"}"#;
    assert_eq!(
        view_of(EntryType::Log, PART_TS, access).payload.as_bytes(),
        access
    );
    // A v2 object still goes through to_view.
    let v = view_of(
        EntryType::Log,
        PART_TS,
        br#"{"v":"2.0","type":"log","source":"go","level":5,"message":"hi"}"#,
    );
    assert_eq!((v.payload.as_str(), v.level), ("hi", Level::Warning));
}

#[test]
fn go_sdk_kind_and_span_name() {
    let v = view(
        EntryType::Metric,
        json!({"v":"2.0","type":"metric","source":"go","level":7,"ts":"2026-11-20T21:49:06.5451Z","name":"requests","value":42,"kind":"counter"}),
    );
    assert_eq!(v.payload, "requests = 42 (counter)");
    assert_eq!(v.fields["kind"], "counter", "kept as sent");
    assert_eq!(v.timestamp_ns % 1_000_000_000, 545_100_000);
    let v = view(
        EntryType::Trace,
        json!({"v":"2.0","type":"trace","source":"go","trace_id":"t","span_id":"s","operation":"GET /","name":"index","start_time":"a","end_time":"b","duration_ms":12,"status":"ok"}),
    );
    assert_eq!(v.payload, "GET /: index (12 ms, ok)");
    assert_eq!(v.fields["name"], "index");
}
