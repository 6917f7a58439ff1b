//! The batch codec: decode never panics; what decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logflux_proto::batch;

fn check(data: &[u8]) {
    if let Ok(entries) = batch::decode(data) {
        let mut out = Vec::new();
        batch::encode(&entries, &mut out);
        assert_eq!(batch::decode(&out).expect("re-decode"), entries);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Past the header too, which random bytes rarely get right.
    let mut prefixed = b"LFB\x01".to_vec();
    prefixed.extend_from_slice(data);
    check(&prefixed);
});
