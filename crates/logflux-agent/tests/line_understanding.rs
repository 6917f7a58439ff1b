//! Line understanding on the project's labelled corpus (`testdata/corpus`): every line goes
//! through the `Parser` a file input uses (format `auto`, zone UTC as the corpus README says,
//! read at the system's `read_time`), and the detected level and time are compared with the
//! labels. Prints the figures per system (`--nocapture`) and asserts the goals: ≥ 99 % of the
//! lines that carry a level/time get it right, < 0.5 % false levels on lines that carry none.

mod labelled;

use std::path::PathBuf;

use logflux_proto::timefmt;
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus")
}

fn run_system(name: &str, read_time: i64, misses: &mut Vec<String>) -> labelled::Tally {
    let dir = corpus_dir();
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).expect("corpus log");
    let labels = std::fs::read_to_string(dir.join(format!("{name}.labels.jsonl"))).expect("labels");
    let parser = labelled::parser(name);
    let mut t = labelled::Tally::default();
    for (line, label) in log.lines().zip(labels.lines()) {
        let label: Value = serde_json::from_str(label).expect("label line");
        labelled::check(&parser, read_time, name, line, &label, &mut t, misses);
    }
    t
}

#[test]
fn corpus_levels_and_times_are_detected() {
    let systems: Value = serde_json::from_str(
        &std::fs::read_to_string(corpus_dir().join("systems.json")).expect("systems.json"),
    )
    .expect("systems.json is JSON");
    let systems = systems.as_object().expect("an object");
    let mut rows = Vec::new();
    let mut misses = Vec::new();
    for (name, info) in systems {
        let read_time = timefmt::parse_rfc3339(info["read_time"].as_str().expect("read_time"))
            .expect("read_time is RFC 3339");
        rows.push((name.clone(), run_system(name, read_time, &mut misses)));
    }
    let all = labelled::print_table("system", &rows, &misses);
    assert!(systems.len() >= 10, "at least 10 formats");
    assert_eq!(all.lines, rows.iter().map(|(_, t)| t.lines).sum::<usize>());
    all.assert_goals();
}
