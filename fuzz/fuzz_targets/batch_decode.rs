//! The batch codec, versions 1 and 2: decode never panics; what decodes re-encodes (as the
//! current version, and as version 1) to bytes that decode the same; the borrowed view agrees
//! with the owned decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logflux_proto::batch;

fn check(data: &[u8]) {
    let view = batch::BatchView::parse(data);
    let decoded = batch::decode(data);
    assert_eq!(view.is_ok(), decoded.is_ok());
    if let (Ok(view), Ok(entries)) = (view, decoded) {
        assert_eq!(view.len(), entries.len());
        for (r, e) in view.iter().zip(&entries) {
            assert_eq!(&r.to_entry(), e);
        }
        let mut out = Vec::new();
        batch::encode(&entries, &mut out);
        assert_eq!(batch::decode(&out).expect("re-decode"), entries);
        out.clear();
        batch::encode_v1(&entries, &mut out);
        assert_eq!(batch::decode(&out).expect("re-decode v1"), entries);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Past the header too, which random bytes rarely get right.
    for version in [1u8, 2] {
        let mut prefixed = vec![b'L', b'F', b'B', version];
        prefixed.extend_from_slice(data);
        check(&prefixed);
    }
});
