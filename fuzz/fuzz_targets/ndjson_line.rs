//! Any line: a message or an error, never a panic; accepted entries re-encode and parse back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logflux_proto::ndjson::{Message, encode_entry, parse_line};

fuzz_target!(|data: &[u8]| {
    if let Ok(Message::Entries(m)) = parse_line(data, 0) {
        for e in &m.entries {
            let again = parse_line(encode_entry(e).as_bytes(), 1);
            match again {
                Ok(Message::Entries(m2)) => assert_eq!(&m2.entries[0], e),
                other => panic!("re-encoded entry did not parse: {other:?}"),
            }
        }
    }
});
