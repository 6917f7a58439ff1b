//! Any datagram: an entry (with `parse_error` when it is not syslog), never a panic; an entry
//! forwarded as RFC 5424 parses back with its level and payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logflux_agent::{forward::format_5424, syslog::parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let e = parse(&text, 1_800_000_000_000_000_000);
    if !e.payload.contains(['\n', '\r', '\0']) {
        let back = parse(&format_5424(&e, "host"), 0);
        assert_eq!(back.level, e.level);
        let sent = e.payload.strip_prefix('\u{feff}').unwrap_or(&e.payload);
        assert_eq!(back.payload, sent);
    }
});
