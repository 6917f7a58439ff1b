//! Any line in every file format (plain, json, docker, cri, nginx access and error), and any
//! nginx `log_format`: an entry or a partial line, never a panic.
#![no_main]
use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use logflux_agent::parse::{Format, NGINX_COMBINED, NginxFormat, Parser};
use logflux_proto::Level;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (fmt_text, line) = text.split_once('\n').unwrap_or((NGINX_COMBINED, &text));
    let custom = NginxFormat::new(fmt_text).ok();
    for format in [
        Format::Plain,
        Format::Json,
        Format::Docker,
        Format::Cri,
        Format::NginxAccess,
        Format::NginxError,
    ] {
        let p = Parser {
            format,
            nginx: custom
                .clone()
                .or_else(|| NginxFormat::new(NGINX_COMBINED).ok()),
            level: Level::Info,
            source: "fuzz".into(),
            metadata: BTreeMap::new(),
        };
        let mut partial = String::new();
        let _ = p.parse(line.to_owned(), "/var/log/fuzz.log", &mut partial);
        let _ = p.parse(line.to_owned(), "/var/log/fuzz.log", &mut partial);
    }
});
