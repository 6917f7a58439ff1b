//! `logflux tui`: a terminal UI for live and historical logs, decrypted here.
//!
//! Panes each run a query (search's filters), follow live entries and load history
//! backwards as you scroll up. The loop waits on the terminal's events and the panes' data
//! under one `select!`; drawing is coalesced to at most one frame per [`FRAME`] however fast
//! entries arrive. The terminal is restored on exit, on error and on panic. See docs/tui.md.

pub(crate) mod highlight;
pub(crate) mod keys;
pub(crate) mod model;
pub(crate) mod source;
pub(crate) mod view;

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Args, Parser};
use crossterm::event::{Event, EventStream, KeyEventKind, KeyModifiers, MouseEventKind};
use futures_util::StreamExt as _;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::highlight::Highlighter;
use self::keys::{Action, action_for};
use self::model::{DEFAULT_SCROLLBACK, Effect, Model, Msg, Split};
use self::source::{Cmd, Source};
use crate::EXIT_OK;
use crate::config::Settings;
use crate::filter::{Filter, FilterArgs};
use crate::output::Zone;

/// The shortest time between two frames (about 60 per second at most).
pub(crate) const FRAME: Duration = Duration::from_millis(16);

/// Messages applied before a frame is drawn, at most (a burst cannot hold the keys off).
const MSGS_PER_TURN: usize = 4096;

/// `logflux tui`.
#[derive(Debug, Args)]
pub(crate) struct TuiArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Entries kept in memory per pane; older ones are dropped and fetched again when
    /// scrolled to [default: the config file's tui.scrollback, else 100000].
    #[arg(long, value_name = "N")]
    scrollback: Option<usize>,
    /// Another pane with its own query, in search's filter syntax as one argument
    /// (`--split '-a db -l warning'`); repeat for more.
    #[arg(long, value_name = "QUERY", allow_hyphen_values = true)]
    split: Vec<String>,
    /// Panes one above the other (default: side by side).
    #[arg(long)]
    stacked: bool,
    /// Times in UTC (default: local time).
    #[arg(long)]
    utc: bool,
}

/// A pane's query as a command line: search's filters.
#[derive(Debug, Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true
)]
struct QueryLine {
    #[command(flatten)]
    filter: FilterArgs,
}

/// Splits a query as a shell would: whitespace separates words, `'…'` and `"…"` quote,
/// `\` escapes the next character.
pub(crate) fn split_words(s: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(n) => cur.push(n),
                            None => bail!("a \\ at the end of the query"),
                        },
                        Some(x) => cur.push(x),
                        None => bail!("an unclosed {c} in the query"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => bail!("a \\ at the end of the query"),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Whether a query sets its own time range (`-S` or `-U`): the time range keys leave it be.
pub(crate) fn own_times(q: &str) -> bool {
    split_words(q)
        .ok()
        .and_then(|w| QueryLine::try_parse_from(w).ok())
        .is_some_and(|l| l.filter.since.is_some() || l.filter.until.is_some())
}

/// Parses a pane's query (and checks it: levels, times, expressions), with the time range
/// keys' `since` when the query sets no time of its own (`-S`, `-U`).
pub(crate) fn parse_query(q: &str, range: Option<&str>) -> anyhow::Result<FilterArgs> {
    let words = split_words(q)?;
    let mut args = QueryLine::try_parse_from(words)
        .map_err(|e| {
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_owned();
            anyhow::anyhow!("query {q:?}: {first}")
        })?
        .filter;
    if args.since.is_none()
        && args.until.is_none()
        && let Some(r) = range
    {
        args.since = Some(r.to_owned());
    }
    Filter::from_args(&args, logflux_proto::timefmt::now_ns(), &chrono::Local)
        .with_context(|| format!("query {q:?}"))?;
    Ok(args)
}

/// A word as a query writes it: quoted when it has spaces or quotes.
fn quote(w: &str) -> String {
    if !w.is_empty() && !w.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c)) {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The command line's filters as a query (what `:` edits).
pub(crate) fn query_of(a: &FilterArgs) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut opt = |flag: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.push(format!("{flag} {}", quote(v)));
        }
    };
    opt("-l", &a.level);
    opt("-p", &a.priority);
    opt("-S", &a.since);
    opt("-U", &a.until);
    opt("--contains", &a.contains);
    opt("--regex", &a.regex);
    opt("-g", &a.grep);
    opt("--source", &a.source);
    opt("-t", &a.entry_type);
    for m in &a.meta {
        out.push(format!("-m {}", quote(m)));
    }
    for app in &a.app {
        out.push(format!("-a {}", quote(app)));
    }
    for w in &a.words {
        out.push(quote(w));
    }
    out.join(" ")
}

/// Puts the terminal back as it was: raw mode off, the main screen, no mouse capture.
fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::event::DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped (on return and on error).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Runs `logflux tui`.
pub(crate) async fn run(settings: &Settings, args: TuiArgs) -> anyhow::Result<i32> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("logflux tui needs a terminal (for a pipe, use logflux search or tail -f)");
    }
    let cfg = &settings.tui;
    let hl = Highlighter::new(&cfg.highlight, cfg.default_highlights.unwrap_or(true))
        .context("the config file's tui section")?;
    let cap = args
        .scrollback
        .or(cfg.scrollback)
        .unwrap_or(DEFAULT_SCROLLBACK);
    if cap == 0 {
        bail!("--scrollback must be at least 1");
    }
    // Every query is checked before the screen is taken.
    let mut queries = vec![query_of(&args.filter)];
    Filter::from_args(
        &args.filter,
        logflux_proto::timefmt::now_ns(),
        &chrono::Local,
    )?;
    for q in &args.split {
        parse_query(q, None).context("--split")?;
        queries.push(q.clone());
    }
    let mut model = Model::new(&queries, cap, Zone::new(args.utc));
    if args.stacked {
        model.split = Split::Stacked;
    }
    if settings.search_key_file.is_none() {
        model.say(
            "no search key configured: every record in the time range is fetched and filtered here",
            false,
        );
    }
    // Notices go to the status line from now on: the terminal is the screen.
    crate::fetch::set_stderr_notes(false);
    crossterm::terminal::enable_raw_mode().context("the terminal's raw mode")?;
    let guard = TerminalGuard;
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev(info);
    }));
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::event::EnableMouseCapture
    )?;
    let mut terminal = Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    let settings = Arc::new(settings.clone());
    let (tx, rx) = mpsc::channel(1024);
    let mut sources = HashMap::new();
    for (i, q) in queries.iter().enumerate() {
        let a = if i == 0 {
            args.filter.clone()
        } else {
            parse_query(q, None)?
        };
        let era = model.panes[i].era;
        sources.insert(era, source::spawn(settings.clone(), a, era, tx.clone()));
    }
    let events = EventStream::new();
    let mut signals = Signals::new()?;
    let spawn = |a, g| source::spawn(settings.clone(), a, g, tx.clone());
    let r = tokio::select! {
        r = event_loop(
            &mut terminal,
            &mut model,
            &hl,
            events,
            rx,
            &mut sources,
            &spawn,
        ) => r.map(|()| EXIT_OK),
        // SIGTERM, SIGHUP: leave through the guard, the terminal restored (128 + the
        // signal's number, as a shell reports a process it ended).
        code = signals.next() => Ok(code),
    };
    drop(sources);
    drop(guard);
    crate::fetch::set_stderr_notes(true);
    r
}

/// The signals that end the UI (SIGTERM, SIGHUP): it leaves as on `q`, the terminal
/// restored, rather than being killed with the terminal raw and on the alternate screen.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("listening for SIGHUP")?,
        })
    }

    /// The exit code for the next signal: 143 for SIGTERM, 129 for SIGHUP.
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => 128 + 15,
            _ = self.hup.recv() => 128 + 1,
        }
    }
}

/// Starts a pane's source (the loop needs no settings of its own).
type Spawner<'a> = dyn Fn(FilterArgs, u64) -> Source + 'a;

/// The loop: terminal events and pane data under one `select!`; at most one frame per
/// [`FRAME`].
async fn event_loop<B: Backend + std::io::Write>(
    terminal: &mut Terminal<B>,
    model: &mut Model,
    hl: &Highlighter,
    mut events: impl futures_util::Stream<Item = std::io::Result<Event>> + Unpin,
    mut rx: mpsc::Receiver<Msg>,
    sources: &mut HashMap<u64, Source>,
    spawn: &Spawner<'_>,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            terminal.draw(|f| view::draw(f, model, hl))?;
            last_draw = Instant::now();
            dirty = false;
        }
        let next_frame = last_draw + FRAME;
        let effects = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ev)) => {
                    dirty = true;
                    on_event(model, ev)
                }
                Some(Err(e)) => return Err(anyhow::Error::new(e).context("reading the terminal")),
                None => return Ok(()),
            },
            msg = rx.recv() => {
                let Some(msg) = msg else { return Ok(()) };
                dirty = true;
                let mut fx = model.apply(msg);
                // Everything waiting goes into the same frame.
                for _ in 0..MSGS_PER_TURN {
                    match rx.try_recv() {
                        Ok(m) => fx.extend(model.apply(m)),
                        Err(_) => break,
                    }
                }
                fx
            },
            _ = tokio::time::sleep_until(next_frame), if dirty => Vec::new(),
        };
        for fx in effects {
            if !run_effect(terminal, model, sources, spawn, fx)? {
                return Ok(());
            }
        }
        // Sources of panes closed or replaced stop.
        sources.retain(|era, _| {
            model
                .panes
                .iter()
                .any(|p| p.era == *era || p.pending.as_ref().is_some_and(|x| x.0 == *era))
        });
    }
}

/// A terminal event as model changes.
fn on_event(model: &mut Model, ev: Event) -> Vec<Effect> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => {
            if model.prompt.is_some() {
                use crossterm::event::KeyCode;
                match k.code {
                    KeyCode::Enter => return model.prompt_enter(),
                    KeyCode::Esc => model.prompt_cancel(),
                    KeyCode::Backspace => model.prompt_backspace(false),
                    KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        model.prompt_backspace(true);
                    }
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        model.prompt_cancel();
                    }
                    KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                        model.prompt_char(c);
                    }
                    _ => {}
                }
                return Vec::new();
            }
            match action_for(k, model.detail.is_some()) {
                Some(a) => model.act(a),
                None => Vec::new(),
            }
        }
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollDown => model.act(Action::WheelDown),
            MouseEventKind::ScrollUp => model.act(Action::WheelUp),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Does what the model asked; `false` to quit.
fn run_effect<B: Backend + std::io::Write>(
    terminal: &mut Terminal<B>,
    model: &mut Model,
    sources: &mut HashMap<u64, Source>,
    spawn: &Spawner<'_>,
    fx: Effect,
) -> anyhow::Result<bool> {
    match fx {
        Effect::Quit => return Ok(false),
        Effect::LoadOlder { pane, before, max } => {
            if let Some(s) = model.panes.get(pane).and_then(|p| sources.get(&p.era)) {
                let _ = s.cmd.send(Cmd::Older { before, max });
            }
        }
        Effect::Query { era, query, .. } => match parse_query(&query, model.range) {
            Ok(args) => {
                sources.insert(era, spawn(args, era));
            }
            Err(e) => {
                model.apply(Msg::Failed {
                    era,
                    error: format!("{e:#}"),
                });
            }
        },
        Effect::Copy(text) => {
            // OSC 52: the terminal (also over ssh and in tmux with set-clipboard) copies it.
            let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            let w = terminal.backend_mut();
            write!(w, "\x1b]52;c;{b64}\x07")?;
            std::io::Write::flush(w)?;
            model.tell(
                format!("copied {} bytes to the clipboard (OSC 52)", text.len()),
                false,
            );
        }
        Effect::Save(path, text) => match save(&path, &text) {
            Ok(()) => model.tell(format!("saved to {}", path.display()), false),
            Err(e) => model.tell(format!("{e:#}"), true),
        },
        Effect::JumpTime(text) => {
            match crate::when::parse_when(
                text.trim(),
                logflux_proto::timefmt::now_ns(),
                &chrono::Local,
            ) {
                Ok(ns) => {
                    for fx in model.jump_to(ns) {
                        run_effect(terminal, model, sources, spawn, fx)?;
                    }
                }
                Err(e) => model.tell(format!("{text:?}: {e:#}"), true),
            }
        }
    }
    Ok(true)
}

/// Writes an entry to a new file, readable by this user only (decrypted logs).
fn save(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("saving to {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .with_context(|| format!("saving to {}", path.display()))
}

/// What benchmarks need of the TUI (not an API).
#[doc(hidden)]
pub mod bench {
    use logflux_proto::{Entry, EntryView, Level};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::highlight::Highlighter;
    use super::keys::action_for;
    use super::model::{Model, Msg};
    use crate::output::Zone;

    /// A model with one pane holding `n` entries (a mix of levels and payloads, every 50th
    /// an error), and the default highlight rules.
    #[derive(Debug)]
    pub struct Bench {
        model: Model,
        hl: Highlighter,
    }

    /// A realistic entry number `i`.
    pub fn entry(i: u64) -> EntryView {
        let level = match i % 50 {
            0 => Level::Error,
            1..=4 => Level::Warning,
            5..=9 => Level::Debug,
            _ => Level::Info,
        };
        let mut e = Entry::new(
            1_796_000_000_000_000_000 + i as i64 * 10_000_000,
            level,
            if i.is_multiple_of(3) { "api" } else { "db" },
            format!(
                "GET /v2/orders/{i} from 10.1.{}.{} took {} ms user=\"u{}\" trace 123e4567-e89b-12d3-a456-42661417{:04}",
                i % 256,
                i % 200,
                i % 997,
                i % 1000,
                i % 10_000
            )
            .as_str(),
        );
        e.metadata.insert("host", format!("web-{}", i % 8));
        e.into()
    }

    impl Bench {
        /// `n` entries loaded.
        pub fn new(n: u64, scrollback: usize) -> Bench {
            let mut model = Model::new(&[String::new()], scrollback, Zone::Utc);
            model.apply(Msg::Opened { era: 1 });
            // In pages, newest first, as the source sends them.
            let page = super::model::PAGE as u64;
            let mut next = n;
            while next > 0 {
                let from = next.saturating_sub(page);
                let entries: Vec<EntryView> = (from..next).rev().map(entry).collect();
                next = from;
                model.apply(Msg::Older {
                    era: 1,
                    entries,
                    done: next == 0,
                    failed: Vec::new(),
                });
            }
            Bench {
                model,
                hl: Highlighter::new(&[], true).unwrap_or_else(|_| Highlighter::none()),
            }
        }

        /// Presses a key (as the terminal reports it).
        pub fn key(&mut self, k: crossterm::event::KeyEvent) {
            if self.model.prompt.is_some() {
                match k.code {
                    crossterm::event::KeyCode::Char(c) => self.model.prompt_char(c),
                    crossterm::event::KeyCode::Backspace => self.model.prompt_backspace(false),
                    _ => {}
                }
                return;
            }
            if let Some(a) = action_for(k, self.model.detail.is_some()) {
                self.model.act(a);
            }
        }

        /// Live entries arrive.
        pub fn live(&mut self, entries: Vec<EntryView>) {
            self.model.apply(Msg::Live {
                era: 1,
                entries,
                failed: Vec::new(),
            });
        }

        /// Draws a frame.
        pub fn draw(&mut self, t: &mut Terminal<TestBackend>) {
            let _ = t.draw(|f| super::view::draw(f, &mut self.model, &self.hl));
        }

        /// Bytes the pane's entries hold (estimate) and how many it holds.
        pub fn held(&self) -> (usize, usize) {
            let p = &self.model.panes[0];
            (p.bytes, p.held())
        }
    }
}

#[cfg(test)]
mod tests;
