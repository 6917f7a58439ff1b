//! Snapshot tests of rendered screens (ratatui's `TestBackend`, `insta`): every view and
//! state — empty, loading, following, filtered, searched, split, detail, help, error — and
//! hostile content (escape sequences, a 1 MB payload).
#![allow(clippy::unwrap_used)]

use logflux_proto::{Entry, EntryView, Level};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::highlight::Highlighter;
use super::keys::Action;
use super::model::{Model, Msg, Phase};
use crate::output::Zone;

const T0: i64 = 1_796_000_000_000_000_000;

fn entry(i: i64, level: Level, source: &str, payload: &str) -> EntryView {
    let mut e = Entry::new(T0 + i * 1_500_000_000, level, source, payload);
    e.metadata.insert("host", "web-1");
    e.into()
}

/// Ten entries of two sources, one error, one warning.
fn sample() -> Vec<EntryView> {
    (0..10)
        .map(|i| {
            let (level, text) = match i {
                4 => (
                    Level::Error,
                    "payment failed: card declined for order 4711".to_owned(),
                ),
                7 => (
                    Level::Warning,
                    "slow query took 1520 ms on 10.0.0.7".to_owned(),
                ),
                _ => (
                    Level::Info,
                    format!("GET /v2/orders/{i} 200 in {} ms", 10 + i),
                ),
            };
            entry(i, level, if i % 2 == 0 { "api" } else { "db" }, &text)
        })
        .collect()
}

fn model(queries: &[&str]) -> Model {
    let q: Vec<String> = queries.iter().map(|s| (*s).to_owned()).collect();
    Model::new(&q, 1000, Zone::Utc)
}

/// A model whose pane `era` holds `entries` (oldest first).
fn loaded(m: &mut Model, era: u64, entries: Vec<EntryView>) {
    m.apply(Msg::Opened { era });
    m.apply(Msg::Older {
        era,
        entries: entries.into_iter().rev().collect(),
        done: true,
        failed: vec![],
    });
}

fn screen(m: &mut Model, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let hl = Highlighter::new(&[], true).unwrap();
    t.draw(|f| super::view::draw(f, m, &hl)).unwrap();
    t.backend().to_string()
}

#[test]
fn connecting_and_loading() {
    let mut m = model(&[""]);
    insta::assert_snapshot!("connecting", screen(&mut m, 80, 10));
    m.apply(Msg::Opened { era: 1 });
    assert_eq!(m.pane().phase, Phase::Loading);
    insta::assert_snapshot!("loading", screen(&mut m, 80, 10));
}

#[test]
fn empty() {
    let mut m = model(&["-a api"]);
    loaded(&mut m, 1, vec![]);
    insta::assert_snapshot!("empty", screen(&mut m, 80, 10));
}

#[test]
fn following() {
    let mut m = model(&[""]);
    loaded(&mut m, 1, sample());
    m.apply(Msg::Live {
        era: 1,
        entries: vec![entry(11, Level::Critical, "api", "live: out of memory")],
        failed: vec![],
    });
    let s = screen(&mut m, 100, 22);
    assert!(s.contains("FOLLOW"));
    insta::assert_snapshot!("following", s);
}

#[test]
fn paused_with_columns_hidden_and_wrap() {
    let mut m = model(&[""]);
    let mut entries = sample();
    entries.push(entry(10, Level::Info, "api", &"long line ".repeat(20)));
    loaded(&mut m, 1, entries);
    m.act(Action::Up);
    m.act(Action::ToggleTime);
    m.act(Action::ToggleSource);
    m.act(Action::Wrap);
    m.act(Action::Histogram);
    insta::assert_snapshot!("paused_wrapped", screen(&mut m, 60, 16));
}

#[test]
fn filtered_and_searched() {
    let mut m = model(&[""]);
    loaded(&mut m, 1, sample());
    m.act(Action::Filter);
    for c in "orders".chars() {
        m.prompt_char(c);
    }
    insta::assert_snapshot!("filter_prompt", screen(&mut m, 100, 20));
    m.prompt_enter();
    m.act(Action::Search);
    for c in "ms".chars() {
        m.prompt_char(c);
    }
    m.prompt_enter();
    insta::assert_snapshot!("filtered", screen(&mut m, 100, 20));
}

#[test]
fn error_jump() {
    let mut m = model(&[""]);
    loaded(&mut m, 1, sample());
    m.act(Action::PrevError);
    let s = screen(&mut m, 100, 20);
    insta::assert_snapshot!("error_jump", s);
    assert_eq!(m.pane().selected().unwrap().entry.level, Level::Error);
}

#[test]
fn split() {
    let mut m = model(&["-a api -l err", "-a db"]);
    loaded(
        &mut m,
        1,
        sample()
            .into_iter()
            .filter(|e| e.level == Level::Error)
            .collect(),
    );
    loaded(
        &mut m,
        2,
        sample().into_iter().filter(|e| e.source == "db").collect(),
    );
    m.act(Action::NextPane);
    insta::assert_snapshot!("split_columns", screen(&mut m, 120, 16));
    m.act(Action::SplitLayout);
    insta::assert_snapshot!("split_stacked", screen(&mut m, 100, 24));
}

#[test]
fn detail() {
    let mut m = model(&[""]);
    let mut entries = sample();
    entries.push(entry(
        10,
        Level::Notice,
        "api",
        r#"{"user":"bob","cart":{"items":3,"total":42.5},"note":"evil \u001b]0;pwned\u0007"}"#,
    ));
    loaded(&mut m, 1, entries);
    m.act(Action::Detail);
    let s = screen(&mut m, 100, 30);
    assert!(!s.contains('\x1b') && !s.contains('\x07'));
    insta::assert_snapshot!("detail", s);
}

#[test]
fn help() {
    let mut m = model(&[""]);
    loaded(&mut m, 1, sample());
    m.act(Action::Help);
    insta::assert_snapshot!("help", screen(&mut m, 100, 40));
    m.act(Action::Down);
    assert!(m.help);
    m.act(Action::Wrap);
    assert!(!m.help, "any other key closes the help");
    assert!(!m.wrap, "and does nothing else");
}

#[test]
fn errors_in_the_status_line() {
    let mut m = model(&[""]);
    loaded(&mut m, 1, sample());
    m.apply(Msg::Notice {
        era: 1,
        text: "live stream interrupted (error sending request: connection refused); reconnecting"
            .into(),
        error: true,
    });
    insta::assert_snapshot!("error_status", screen(&mut m, 100, 16));
    m.apply(Msg::Live {
        era: 1,
        entries: vec![],
        failed: vec!["record 01J… of application web: integrity check failed".into()],
    });
    let s = screen(&mut m, 100, 16);
    assert!(s.contains("1 record(s) could not be opened"), "{s}");
}

#[test]
fn hostile_content_never_reaches_the_terminal_raw() {
    let mut m = model(&[""]);
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(1 << 20));
    loaded(
        &mut m,
        1,
        vec![
            entry(
                0,
                Level::Info,
                "evil\x1b[31m",
                "clear \x1b[2J\x1b[H title \x1b]0;pwned\x07 bell \x07 cr\rlf\nnext",
            ),
            entry(1, Level::Info, "api", &big),
            entry(2, Level::Info, "api", "after the big one"),
        ],
    );
    let started = std::time::Instant::now();
    let s = screen(&mut m, 100, 12);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(!s.contains('\x1b') && !s.contains('\x07') && !s.contains('\r'));
    insta::assert_snapshot!("hostile", s);
    // The detail pages through the 1 MB payload.
    m.act(Action::Up);
    m.act(Action::Detail);
    let d = m.detail.as_ref().unwrap();
    assert!(d.lines.len() > 5000, "{}", d.lines.len());
    assert!(d.lines.iter().all(|l| l.chars().count() <= 200));
    m.act(Action::PageDown);
    let s = screen(&mut m, 100, 30);
    assert!(s.contains("xxxxxxxx"));
}

#[test]
fn queries_split_as_a_shell_would_and_round_trip() {
    use super::{parse_query, query_of, split_words};
    assert_eq!(
        split_words(r#"-a api "db-1 down" 'it''s' a\ b"#).unwrap(),
        ["-a", "api", "db-1 down", "its", "a b"]
    );
    assert!(split_words("'open").is_err());
    let a = parse_query("-a api -l err --grep 'took [0-9]+ms' timeout", Some("15m")).unwrap();
    assert_eq!(a.app, ["api"]);
    assert_eq!(a.level.as_deref(), Some("err"));
    assert_eq!(a.since.as_deref(), Some("15m"), "the time range applies");
    assert_eq!(a.words, ["timeout"]);
    let q = query_of(&a);
    let b = parse_query(&q, None).unwrap();
    assert_eq!(query_of(&b), q);
    // A query's own --since wins over the time range keys.
    let a = parse_query("-S 2h", Some("1m")).unwrap();
    assert_eq!(a.since.as_deref(), Some("2h"));
    // And so does its own --until (no `--since is after --until` for a --since not typed).
    let a = parse_query("-U 10m", Some("1m")).unwrap();
    assert_eq!((a.since, a.until.as_deref()), (None, Some("10m")));
    let e = parse_query("--level nonsense", None).unwrap_err();
    assert!(format!("{e:#}").contains("nonsense"), "{e:#}");
    let e = parse_query("--bogus", None).unwrap_err();
    assert!(format!("{e:#}").contains("--bogus"), "{e:#}");
}

#[test]
fn each_pane_says_its_own_time_range() {
    let mut m = model(&["-S 30m", "-a api"]);
    loaded(&mut m, 1, sample());
    loaded(&mut m, 2, sample());
    m.act(Action::Range(0));
    let s = screen(&mut m, 160, 20);
    let title = s.lines().next().unwrap();
    assert!(
        title.contains("1: -S 30m · 10 entries · its own -S/-U"),
        "{s}"
    );
    assert!(title.contains("2: -a api · 10 entries · last 1m"), "{s}");
    let status = s.lines().last().unwrap();
    assert!(status.contains("its own -S/-U"), "the focused pane's: {s}");
}

#[test]
fn the_detail_follows_the_selection() {
    let mut m = model(&[""]);
    loaded(&mut m, 1, sample());
    m.act(Action::Detail);
    m.act(Action::PrevError);
    let d = m.detail.as_ref().unwrap();
    assert!(d.payload.contains("payment failed"), "{}", d.payload);
}

/// Every screen of a pane whose entries have `times`: list, strip, detail, a jump to `to`.
fn draw_at_times(times: &[i64], to: i64) {
    let mut m = model(&[""]);
    let entries = times
        .iter()
        .map(|&t| Entry::new(t, Level::Error, "api", "x").into())
        .collect();
    loaded(&mut m, 1, entries);
    let hl = Highlighter::none();
    let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
    t.draw(|f| super::view::draw(f, &mut m, &hl)).unwrap();
    m.act(Action::Detail);
    t.draw(|f| super::view::draw(f, &mut m, &hl)).unwrap();
    m.act(Action::Detail);
    let _ = m.jump_to(to);
    let mut local = model(&[""]);
    local.zone = Zone::Fixed(-12 * 3600);
    loaded(
        &mut local,
        1,
        times
            .iter()
            .map(|&t| Entry::new(t, Level::Info, "a", "y").into())
            .collect(),
    );
    t.draw(|f| super::view::draw(f, &mut local, &hl)).unwrap();
}

#[test]
fn extreme_timestamps_draw_without_overflow() {
    // Regression: 1677-09-21T00:12:43.2Z (the agent accepts it) overflowed the strip.
    let t1677 = logflux_proto::timefmt::parse_rfc3339("1677-09-21T00:12:43.2Z").unwrap();
    draw_at_times(&[t1677, 0, i64::MAX], i64::MIN);
    draw_at_times(&[i64::MIN, i64::MIN + 1, i64::MAX], i64::MAX);
}

proptest::proptest! {
    #[test]
    fn any_timestamps_draw(times in proptest::collection::vec(proptest::num::i64::ANY, 1..6), to: i64) {
        let mut times = times;
        times.sort_unstable();
        draw_at_times(&times, to);
    }
}

#[test]
fn wide_characters_are_counted_in_cells() {
    let mut m = model(&[""]);
    let wide = "中".repeat(150);
    loaded(
        &mut m,
        1,
        vec![
            entry(
                0,
                Level::Info,
                "数据库服务器日志收集",
                "after a wide source",
            ),
            entry(1, Level::Info, "api", &wide),
        ],
    );
    m.act(Action::Wrap);
    let s = screen(&mut m, 100, 30);
    // Wrapped, nothing of the line is lost (it was cut in the middle when characters were
    // counted instead of cells).
    assert_eq!(s.matches('中').count(), 150, "{s}");
    // The source column is cut and padded in cells: the message starts where it does for
    // a narrow source.
    let src_row = s.lines().find(|l| l.contains("after a wide")).unwrap();
    assert!(src_row.contains("数据库服务器…"), "{s}");
    let narrow = s.lines().find(|l| l.contains(" api ")).unwrap();
    let col =
        |l: &str, what: &str| unicode_width::UnicodeWidthStr::width(&l[..l.find(what).unwrap()]);
    assert_eq!(col(src_row, "after"), col(narrow, "中"), "{s}");
}

#[test]
fn a_lone_carriage_return_and_bidi_controls_are_escaped() {
    use super::view::screen_text;
    assert_eq!(screen_text("a\rb", 100), "a\\u{d}b");
    assert_eq!(screen_text("a\r\nb", 100), "a⏎b");
    assert_eq!(
        screen_text("user \u{202e}gnp.exe\u{202c} \u{2066}x\u{2069}", 100),
        "user \\u{202e}gnp.exe\\u{202c} \\u{2066}x\\u{2069}"
    );
    // search's text output escapes them too.
    assert_eq!(
        crate::output::clean("a\u{202e}b\u{2067}"),
        "a\\u{202e}b\\u{2067}"
    );
}

#[test]
fn the_help_wraps_long_lines_instead_of_cutting_them() {
    let mut m = model(&[""]);
    loaded(&mut m, 1, sample());
    m.act(Action::Help);
    let s = screen(&mut m, 70, 60);
    assert!(s.contains("Ctrl-D") && s.contains("Ctrl-U"), "{s}");
    // The page-up row's description goes on under itself.
    let at = s.lines().position(|l| l.contains("Ctrl-U")).unwrap();
    let next = s.lines().nth(at + 1).unwrap();
    assert!(next.starts_with("\"│                            "), "{s}");
}
