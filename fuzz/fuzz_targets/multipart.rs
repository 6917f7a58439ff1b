//! Any body: parts or an error, never a panic; part ranges stay inside the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logflux_proto::multipart::{IngestPart, Limits, parse};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_parts: 64,
        max_part_bytes: 1 << 16,
        max_header_bytes: 4096,
        max_headers: 16,
    };
    // A one-letter boundary, so the fuzzer reaches past it; and a real SDK one.
    for boundary in ["b", "0793c1f2a5b44e2d8f9a0b1c2d3e4f50"] {
        if let Ok(parts) = parse(data, boundary, &limits) {
            for (i, p) in parts.iter().enumerate() {
                assert!(p.body.start <= p.body.end && p.body.end <= data.len());
                let _ = IngestPart::from_raw(p, i);
            }
        }
    }
});
