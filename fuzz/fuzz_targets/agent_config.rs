//! Any configuration text: loaded and validated, or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logflux_agent::config::AgentConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = logflux_config::from_str::<AgentConfig>(text, "fuzz") {
        let _ = c.validate();
    }
});
