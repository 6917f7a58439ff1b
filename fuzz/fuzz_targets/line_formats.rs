//! Any line in every file format (auto — detection of times, levels and structure —, plain,
//! json, logfmt, docker, cri, nginx access and error), and any nginx `log_format`: an entry or a
//! partial line, never a panic.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use logflux_agent::detect::{DetectConfig, Detector};
use logflux_agent::parse::{Format, NGINX_COMBINED, NginxFormat, Parser};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (fmt_text, line) = text.split_once('\n').unwrap_or((NGINX_COMBINED, &text));
    let custom = NginxFormat::new(fmt_text).ok();
    let detector = Arc::new(
        Detector::new(&DetectConfig {
            time_zone: Some("UTC".into()),
            ..Default::default()
        })
        .expect("the default detector"),
    );
    for format in [
        Format::Auto,
        Format::Plain,
        Format::Json,
        Format::Logfmt,
        Format::Docker,
        Format::Cri,
        Format::NginxAccess,
        Format::NginxError,
    ] {
        let nginx = custom
            .clone()
            .or_else(|| NginxFormat::new(NGINX_COMBINED).ok());
        let p = Parser::new(
            format,
            nginx,
            detector.clone(),
            "fuzz".into(),
            logflux_proto::Metadata::new(),
        );
        let mut partial = String::new();
        let _ = p.parse(line.to_owned(), "/var/log/fuzz.log", &mut partial);
        let _ = p.parse(line.to_owned(), "/var/log/fuzz.log", &mut partial);
    }
});
