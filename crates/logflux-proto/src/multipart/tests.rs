use super::*;
use proptest::prelude::*;

const JS_BOUNDARY: &str = "0793c1f2a5b44e2d8f9a0b1c2d3e4f50";
const JAVA_BOUNDARY: &str = "logflux-5d41402abc4b2a76b9719d911017c592";

fn sdk_headers<'a>(nonce: &'a str, ts: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("Content-Type", "application/octet-stream"),
        ("X-LF-Entry-Type", "1"),
        ("X-LF-Payload-Type", "1"),
        ("X-LF-Timestamp", ts),
        ("X-LF-Key-ID", "key-1"),
        ("X-LF-Nonce", nonce),
    ]
}

/// A body as the JavaScript SDK writes it: no CRLF between a part's ciphertext and the next
/// delimiter; only the closing delimiter is preceded by CRLF.
fn js_body(bodies: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in bodies {
        out.extend_from_slice(format!("--{JS_BOUNDARY}\r\n").as_bytes());
        for (n, v) in sdk_headers("AAECAwQFBgcICQoL", "2026-11-20T21:49:06.545Z") {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(b);
    }
    out.extend_from_slice(format!("\r\n--{JS_BOUNDARY}--\r\n").as_bytes());
    out
}

#[test]
fn content_type_boundary() {
    assert_eq!(
        boundary_from_content_type(&format!("multipart/mixed; boundary={JS_BOUNDARY}")),
        Ok(JS_BOUNDARY)
    );
    assert_eq!(
        boundary_from_content_type(&format!("Multipart/Mixed;boundary=\"{JAVA_BOUNDARY}\"")),
        Ok(JAVA_BOUNDARY)
    );
    assert!(matches!(
        boundary_from_content_type("application/json"),
        Err(MultipartError::ContentType(_))
    ));
    assert!(matches!(
        boundary_from_content_type("multipart/mixed"),
        Err(MultipartError::ContentType(_))
    ));
    assert_eq!(
        boundary_from_content_type(&format!("multipart/mixed; boundary={}", "a".repeat(71))),
        Err(MultipartError::Boundary(71))
    );
}

#[test]
fn javascript_missing_crlf_quirk() {
    // The observed bytes: `…c3 54 2d 2d 30 37 39 33…` — ciphertext, then `--0793…` at once.
    let first: &[u8] = &[0x01, 0x02, 0xc3, 0x54];
    let second: &[u8] = &[0xaa, 0xbb, 0xcc];
    let body = js_body(&[first, second]);
    let needle = [&[0xc3u8, 0x54, 0x2d, 0x2d, 0x30, 0x37, 0x39, 0x33][..]].concat();
    assert!(
        memchr::memmem::find(&body, &needle).is_some(),
        "fixture has the observed bytes"
    );
    let parts = parse(&body, JS_BOUNDARY, &Limits::default()).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(&body[parts[0].body.clone()], first);
    assert!(!parts[0].crlf_stripped);
    assert_eq!(&body[parts[1].body.clone()], second);
    assert!(
        parts[1].crlf_stripped,
        "the closing delimiter's CRLF was removed"
    );
    let typed = IngestPart::from_raw(&parts[0], 0).unwrap();
    assert_eq!(typed.payload, PartPayload::SdkEncrypted);
    assert_eq!(typed.entry_type, Some(EntryType::Log));
    assert_eq!(typed.key_id, Some("key-1"));
    assert_eq!(typed.nonce, Some([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
    assert_eq!(
        typed.timestamp_ns,
        Some(timefmt::parse_rfc3339("2026-11-20T21:49:06.545Z").unwrap())
    );
}

#[test]
fn javascript_ciphertext_ending_in_crlf_is_flagged() {
    // One JS part in 65 536 ends in 0d 0a: it is stripped and flagged, so a client can restore it.
    let first: &[u8] = &[0x10, 0x20, b'\r', b'\n'];
    let body = js_body(&[first, b"zz"]);
    let parts = parse(&body, JS_BOUNDARY, &Limits::default()).unwrap();
    assert_eq!(&body[parts[0].body.clone()], &first[..2]);
    assert!(parts[0].crlf_stripped);
}

#[test]
fn java_body_with_crlf_everywhere() {
    let mut w = Writer::new(JAVA_BOUNDARY);
    let ts = "2026-11-20T21:49:06.545123456Z";
    w.part(
        &sdk_headers("AAECAwQFBgcICQoL", ts),
        b"\x00\x01ciphertext-1",
    );
    w.part(&sdk_headers("AAECAwQFBgcICQoL", ts), b"ciphertext-2\r\n");
    let ct = w.content_type();
    let body = w.finish();
    assert!(body.ends_with(format!("\r\n--{JAVA_BOUNDARY}--\r\n").as_bytes()));
    let boundary = boundary_from_content_type(&ct).unwrap();
    let parts = parse(&body, boundary, &Limits::default()).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(&body[parts[0].body.clone()], b"\x00\x01ciphertext-1");
    assert!(parts[0].crlf_stripped);
    // A body that itself ends in CRLF keeps it: only the delimiter's CRLF is removed.
    assert_eq!(&body[parts[1].body.clone()], b"ciphertext-2\r\n");
    let typed = IngestPart::from_raw(&parts[1], 1).unwrap();
    assert_eq!(typed.timestamp_ns.unwrap() % 1_000_000_000, 545_123_456);
}

#[test]
fn preamble_padding_and_lf_only_are_tolerated() {
    let body = "preamble text\r\n--b  \nX-LF-Payload-Type: 3\nX-LF-Entry-Type: 7\n\nhello\n--b--"
        .to_string();
    let parts = parse(body.as_bytes(), "b", &Limits::default()).unwrap();
    assert_eq!(&body.as_bytes()[parts[0].body.clone()], b"hello\n");
    let typed = IngestPart::from_raw(&parts[0], 0).unwrap();
    assert_eq!(typed.payload, PartPayload::SdkGzip);
    assert_eq!(typed.entry_type, Some(EntryType::TelemetryManaged));
    assert_eq!(typed.key_id, None);
}

#[test]
fn a_part_without_headers_is_read() {
    let body = b"--b\r\n\r\nbody\r\n--b--\r\n";
    let parts = parse(body, "b", &Limits::default()).unwrap();
    assert!(parts[0].headers.is_empty());
    assert_eq!(&body[parts[0].body.clone()], b"body");
}

#[test]
fn malformed_bodies_have_specific_errors() {
    let lim = Limits::default();
    assert_eq!(
        parse(b"no boundary here", "b", &lim),
        Err(MultipartError::NoOpening)
    );
    assert_eq!(parse(b"--b--\r\n", "b", &lim), Err(MultipartError::Empty));
    let e = parse(b"--b\r\nX-LF-Payload-Type: 1\r\n\r\ntruncated", "b", &lim).unwrap_err();
    assert_eq!(
        e.to_string(),
        "part 0: body is not terminated by a boundary"
    );
    let e = parse(b"--b\r\nX-LF-Payload-Type: 1\r\ntruncated", "b", &lim).unwrap_err();
    assert_eq!(
        e.to_string(),
        "part 0: headers are not followed by a blank line"
    );
    let e = parse(b"--b\r\nno colon\r\n\r\nx\r\n--b--", "b", &lim).unwrap_err();
    assert!(e.to_string().contains("header line without a colon"), "{e}");
    let e = parse(b"--bX\r\n\r\nx\r\n--b--", "b", &lim).unwrap_err();
    assert_eq!(
        e.to_string(),
        "part 0: boundary is not followed by a line break"
    );
    let e = parse(b"--b", "b", &lim).unwrap_err();
    assert!(e.to_string().contains("no closing delimiter"), "{e}");
    assert_eq!(parse(b"--", "", &lim), Err(MultipartError::Boundary(0)));
}

#[test]
fn limits_are_enforced() {
    let lim = Limits {
        max_parts: 2,
        max_part_bytes: 8,
        max_header_bytes: 64,
        max_headers: 2,
    };
    let mut w = Writer::new("b");
    for _ in 0..3 {
        w.part(&[], b"x");
    }
    assert_eq!(
        parse(&w.finish(), "b", &lim),
        Err(MultipartError::TooManyParts(2))
    );

    let mut w = Writer::new("b");
    w.part(&[], b"123456789");
    let e = parse(&w.finish(), "b", &lim).unwrap_err();
    assert_eq!(e.to_string(), "part 0: body is larger than 8 bytes");
    // The limit is found without scanning a huge body to its end.
    let mut huge = b"--b\r\n\r\n".to_vec();
    huge.resize(10_000_000, b'x');
    assert_eq!(
        parse(&huge, "b", &lim).unwrap_err().to_string(),
        "part 0: body is larger than 8 bytes"
    );

    let mut w = Writer::new("b");
    w.part(&[("A", "1"), ("B", "2"), ("C", "3")], b"x");
    let e = parse(&w.finish(), "b", &lim).unwrap_err();
    assert_eq!(e.to_string(), "part 0: more than 2 header lines");

    let long = "v".repeat(100);
    let mut w = Writer::new("b");
    w.part(&[("A", &long)], b"x");
    let e = parse(&w.finish(), "b", &lim).unwrap_err();
    assert_eq!(e.to_string(), "part 0: headers are larger than 64 bytes");
}

fn typed_err(headers: &[(&str, &str)]) -> String {
    let mut w = Writer::new("b");
    w.part(headers, b"x");
    let body = w.finish();
    let parts = parse(&body, "b", &Limits::default()).unwrap();
    IngestPart::from_raw(&parts[0], 0).unwrap_err().to_string()
}

#[test]
fn header_errors_name_part_and_header() {
    let base = [
        ("X-LF-Entry-Type", "1"),
        ("X-LF-Payload-Type", "1"),
        ("X-LF-Key-ID", "k"),
        ("X-LF-Nonce", "AAECAwQFBgcICQoL"),
    ];
    let with = |name: &str, value: &'static str| {
        let mut h: Vec<(&str, &str)> = base.iter().filter(|(n, _)| *n != name).copied().collect();
        if !value.is_empty() {
            h.push((name, value));
        }
        typed_err(&h)
    };
    assert_eq!(
        with("X-LF-Payload-Type", ""),
        "part 0: X-LF-Payload-Type is required (1, 3 or 4)"
    );
    assert_eq!(
        with("X-LF-Payload-Type", "2"),
        "part 0: X-LF-Payload-Type must be 1, 3 or 4, got \"2\""
    );
    assert_eq!(
        with("X-LF-Entry-Type", ""),
        "part 0: X-LF-Entry-Type is required (1..7)"
    );
    assert_eq!(
        with("X-LF-Entry-Type", "9"),
        "part 0: X-LF-Entry-Type must be 1..7, got \"9\""
    );
    assert_eq!(
        with("X-LF-Nonce", "AAEC"),
        "part 0: X-LF-Nonce must be base64 of 12 bytes"
    );
    assert_eq!(
        with("X-LF-Nonce", ""),
        "part 0: encrypted parts need X-LF-Key-ID and X-LF-Nonce"
    );
    assert!(with("X-LF-Key-ID", "bad id!").contains("X-LF-Key-ID must be 1..128"));
    assert!(
        with("X-LF-Timestamp", "yesterday").starts_with("part 0: X-LF-Timestamp \"yesterday\"")
    );
    assert!(with("X-LF-Count", "0").contains("X-LF-Count must be a positive integer"));
    assert!(with("X-LF-Time-Range", "2026-01-01T00:00:00Z").contains("START/END"));
    assert!(
        with(
            "X-LF-Time-Range",
            "2026-01-02T00:00:00Z/2026-01-01T00:00:00Z"
        )
        .contains("starts after it ends")
    );
    let agent = [
        ("X-LF-Payload-Type", "4"),
        ("X-LF-Key-ID", "k"),
        ("X-LF-Nonce", "AAECAwQFBgcICQoL"),
    ];
    assert!(typed_err(&agent).contains("agent batches need X-LF-Record-ID"));
}

#[test]
fn agent_batch_part_headers() {
    let range = format_time_range(1_000_000_000, 2_000_000_123);
    let tokens = "0123456789abcdef, fedcba9876543210";
    let headers = [
        ("X-LF-Payload-Type", "4"),
        ("X-LF-Key-ID", "dek-7"),
        ("X-LF-Nonce", "AAECAwQFBgcICQoL"),
        ("X-LF-Record-ID", "01hzx3k9a7b6c5d4e3f2g1h0jk"),
        ("X-LF-Count", "250"),
        ("X-LF-Time-Range", range.as_str()),
        ("X-LF-Search-Tokens", tokens),
    ];
    let mut w = Writer::new("b");
    w.part(&headers, b"sealed");
    let body = w.finish();
    let parts = parse(&body, "b", &Limits::default()).unwrap();
    let p = IngestPart::from_raw(&parts[0], 0).unwrap();
    assert_eq!(p.payload, PartPayload::AgentBatch);
    assert_eq!(p.entry_type, None);
    assert_eq!(p.count, Some(250));
    assert_eq!(p.time_range, Some((1_000_000_000, 2_000_000_123)));
    assert_eq!(p.search_tokens, ["0123456789abcdef", "fedcba9876543210"]);
    assert_eq!(p.record_id, Some("01hzx3k9a7b6c5d4e3f2g1h0jk"));
}

proptest! {
    #[test]
    fn writer_then_parser_round_trips(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..12),
        boundary in "[0-9a-f]{32}",
    ) {
        let mut w = Writer::new(boundary.clone());
        for b in &bodies {
            w.part(&[("X-LF-Payload-Type", "3"), ("X-LF-Entry-Type", "7")], b);
        }
        let buf = w.finish();
        let parts = parse(&buf, &boundary, &Limits::default()).unwrap();
        prop_assert_eq!(parts.len(), bodies.len());
        for (p, b) in parts.iter().zip(&bodies) {
            prop_assert_eq!(&buf[p.body.clone()], b.as_slice());
            prop_assert!(p.crlf_stripped);
        }
    }

    #[test]
    fn js_layout_round_trips(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 1..12),
    ) {
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let buf = js_body(&refs);
        let parts = parse(&buf, JS_BOUNDARY, &Limits::default()).unwrap();
        prop_assert_eq!(parts.len(), bodies.len());
        for (p, b) in parts.iter().zip(&bodies) {
            let got = &buf[p.body.clone()];
            if p.crlf_stripped {
                // Either the delimiter's CRLF (last part) or one that was the body's own.
                prop_assert!(got == b.as_slice() || [got, b"\r\n"].concat() == *b);
            } else {
                prop_assert_eq!(got, b.as_slice());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(parts) = parse(&bytes, "b", &Limits::default()) {
            for (i, p) in parts.iter().enumerate() {
                let _ = IngestPart::from_raw(p, i);
            }
        }
    }
}
