//! `logflux tui` in a real terminal: tmux runs it against a `logflux up` stack, `send-keys`
//! types and `capture-pane` reads the screen. A live entry appears within 2 s, `/` filters,
//! `e` jumps to an error, a split pane shows its own query (and edits it in place), `q` exits
//! and restores the terminal; escape sequences in entries, a 1 MB payload and a burst of
//! 10 000 entries per second neither corrupt the screen nor stop it answering keys.
//!
//! Skipped with a message when tmux is missing; a failure instead with
//! `LOGFLUX_REQUIRE_PROGRAMS=1` (CI).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Stack};
use serde_json::json;

fn have_tmux() -> bool {
    if Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    assert!(
        std::env::var("LOGFLUX_REQUIRE_PROGRAMS").as_deref() != Ok("1"),
        "tmux is required (LOGFLUX_REQUIRE_PROGRAMS=1; Debian package tmux)"
    );
    eprintln!("SKIPPED: tmux not found (Debian package tmux)");
    false
}

/// A tmux server of its own (its own socket) with one window running `logflux tui`.
struct Tmux {
    sock: PathBuf,
    /// The socket's directory, its own: the server is killed through the socket when this is
    /// dropped, which a stack dropped first (a test that restarts its stack) must not prevent
    /// by removing the directory (the server, left running, kept its inherited descriptors).
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts `logflux tui ARGS` in a `w`×`h` terminal, with the stack's client settings
    /// only. After it exits, the shell prints `EXITED` and the terminal's modes.
    fn start(stack: &Stack, args: &[&str], w: u16, h: u16) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("tmux.sock");
        let quoted: Vec<String> = args
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let script = format!(
            "{BIN} tui --utc {}; echo EXITED $?; stty -a | tr ';' '\\n' | grep -w -e icanon -e echo; sleep 600",
            quoted.join(" ")
        );
        let out = Command::new("tmux")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", stack.tmp.path())
            .env("TERM", "xterm-256color")
            .env("LOGFLUX_CONFIG", stack.dir.join("client.yaml"))
            .arg("-S")
            .arg(&sock)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "t"])
            .args(["-x", &w.to_string(), "-y", &h.to_string()])
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmux { sock, _dir: dir }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Presses keys (tmux key names: `Enter`, `Escape`, `Tab`, `C-u`).
    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "t"];
        a.extend_from_slice(keys);
        self.tmux(&a);
    }

    /// Types text as it is.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", "--", text]);
    }

    /// The screen as text.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the screen satisfies `ok`, at most `within`; fails with the screen.
    async fn wait(&self, what: &str, within: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not on screen within {within:?}:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .arg("kill-server")
            .output();
    }
}

/// The columns `from..to` of every screen line (one pane of a split).
fn columns(screen: &str, from: usize, to: usize) -> String {
    screen
        .lines()
        .map(|l| l.chars().skip(from).take(to - from).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn line(payload: &str, source: &str, level: u8) -> serde_json::Value {
    json!({"payload": payload, "source": source, "entryType": 1, "logLevel": level})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_filters_jumps_to_errors_splits_and_restores_the_terminal() {
    if !have_tmux() {
        return;
    }
    let stack = Stack::start().await;
    let (_, before) = stack.search(&[]);
    let mut history = Vec::new();
    for i in 0..30 {
        history.push(line(&format!("history line {i}"), "api", 6));
    }
    history.push(line("checkout failed for cart 77", "api", 4));
    history.push(line("cache nearly full", "db", 5));
    stack.send_unix(&history).await;
    stack.wait_for_entries(before.len() + history.len()).await;

    let t = Tmux::start(&stack, &["--split", "-l err"], 200, 50);
    // Both panes load on their own: wait for each one's results, not only the left's.
    let s = t
        .wait("history and the split pane", Duration::from_secs(30), |s| {
            s.contains("history line 29")
                && s.contains("2: -l err")
                && columns(s, 100, 200).contains("checkout failed for cart 77")
        })
        .await;
    // The split pane (right half) shows its own query: the error only.
    let right = columns(&s, 100, 200);
    assert!(right.contains("checkout failed for cart 77"), "{right}");
    assert!(!right.contains("history line"), "{right}");

    // A live entry appears within 2 s.
    stack.send_unix(&[line("live entry 4242", "api", 6)]).await;
    let sent = Instant::now();
    t.wait("the live entry", Duration::from_secs(2), |s| {
        s.contains("live entry 4242")
    })
    .await;
    eprintln!("live entry shown {:?} after it was sent", sent.elapsed());

    // `/` filters what is loaded, as typed.
    t.keys(&["/"]);
    t.type_text("checkout");
    let s = t
        .wait("the filter", Duration::from_secs(5), |s| {
            columns(s, 0, 100).contains("/checkout (1 shown)")
        })
        .await;
    let left = columns(&s, 0, 100);
    assert!(!left.contains("history line"), "{left}");
    t.keys(&["Enter"]);
    t.keys(&["Escape"]);
    t.wait("the filter cleared", Duration::from_secs(5), |s| {
        !s.contains("/checkout") && columns(s, 0, 100).contains("history line 29")
    })
    .await;

    // `g` then `e`: the first error after the top; Enter shows it in the detail pane.
    t.keys(&["g"]);
    t.keys(&["e"]);
    t.keys(&["Enter"]);
    let s = t
        .wait("the error's detail", Duration::from_secs(5), |s| {
            s.contains("level        error (4)")
        })
        .await;
    assert!(s.contains("checkout failed for cart 77"), "{s}");
    t.keys(&["Enter"]);

    // The split pane's query, edited in place with `:`.
    t.keys(&["Tab"]);
    t.keys(&[":"]);
    t.keys(&["C-u"]);
    t.type_text("--source db");
    t.keys(&["Enter"]);
    let s = t
        .wait("the edited query", Duration::from_secs(15), |s| {
            s.contains("2: --source db") && columns(s, 100, 200).contains("cache nearly full")
        })
        .await;
    assert!(!columns(&s, 100, 200).contains("checkout failed"), "{s}");
    // A bad one is refused in the status line; the pane keeps its query.
    t.keys(&[":"]);
    t.keys(&["C-u"]);
    t.type_text("--level nonsense");
    t.keys(&["Enter"]);
    let s = t
        .wait("the refusal", Duration::from_secs(5), |s| {
            s.contains("nonsense") && s.contains("keeps")
        })
        .await;
    assert!(s.contains("2: --source db"), "{s}");

    // `q` exits, and the terminal is back: not raw, echoing, off the alternate screen.
    t.keys(&["q"]);
    let s = t
        .wait("the shell after exit", Duration::from_secs(10), |s| {
            s.contains("EXITED") && s.contains("icanon")
        })
        .await;
    assert!(s.contains("EXITED 0"), "{s}");
    assert!(!s.contains("-icanon") && !s.contains("-echo "), "{s}");
    assert!(!s.contains("history line"), "the UI's screen is gone: {s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_entries_and_a_burst_neither_corrupt_the_screen_nor_stall_it() {
    if !have_tmux() {
        return;
    }
    let stack = Stack::start().await;
    let t = Tmux::start(&stack, &[], 160, 40);
    t.wait("the UI", Duration::from_secs(30), |s| {
        s.contains("1: everything")
    })
    .await;
    // Escape sequences that would clear the screen, move the cursor, set the title and ring.
    stack
        .send_unix(&[line(
            "evil \u{1b}[2J\u{1b}[H\u{1b}]0;pwned\u{7} \u{1b}[31mred\u{1b}[0m end",
            "sneaky\u{1b}[5m",
            6,
        )])
        .await;
    let s = t
        .wait("the escaped entry", Duration::from_secs(10), |s| {
            s.contains("evil \\u{1b}[2J\\u{1b}[H\\u{1b}]0;pwned\\u{7}")
        })
        .await;
    assert!(s.lines().next().unwrap().starts_with('┌'), "{s}");
    assert!(
        s.contains("1: everything"),
        "the screen was not cleared: {s}"
    );

    // A 1 MB payload: one row of it, and the detail pages through it.
    let big = format!("big {} end", "x".repeat(1_000_000));
    stack.send_unix(&[line(&big, "api", 6)]).await;
    t.wait("the 1 MB entry", Duration::from_secs(20), |s| {
        s.contains("big xxxxxxxx")
    })
    .await;
    t.keys(&["Enter"]);
    t.wait("its detail", Duration::from_secs(5), |s| {
        s.contains("payload (1000008 bytes)")
    })
    .await;
    t.keys(&["G"]);
    t.wait("the end of it", Duration::from_secs(5), |s| {
        s.contains("x end")
    })
    .await;
    t.keys(&["Escape"]);

    // 10 000 entries per second for 2 s, while keys are pressed.
    let stack_ref = &stack;
    let burst = async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for b in 0..200 {
            tick.tick().await;
            let lines: Vec<_> = (0..100)
                .map(|i| line(&format!("burst {}", b * 100 + i), "load", 6))
                .collect();
            stack_ref.send_unix(&lines).await;
        }
    };
    let keys = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        t.keys(&["?"]);
        let pressed = Instant::now();
        t.wait("the help during the burst", Duration::from_secs(2), |s| {
            s.contains("keys · j/k scroll")
        })
        .await;
        let answered = pressed.elapsed();
        t.keys(&["Escape"]);
        answered
    };
    let started = Instant::now();
    let ((), answered) = tokio::join!(burst, keys);
    let sent = started.elapsed();
    eprintln!("help shown {answered:?} after `?` during the burst");
    let s = t
        .wait("the last of the burst", Duration::from_secs(60), |s| {
            s.contains("burst 19999")
        })
        .await;
    eprintln!(
        "20 000 entries sent in {sent:?}; the last on screen {:?} after the first was sent",
        started.elapsed()
    );
    assert!(s.lines().next().unwrap().starts_with('┌'), "{s}");
    assert!(s.contains("FOLLOW"), "{s}");
    t.keys(&["q"]);
    t.wait("the shell after exit", Duration::from_secs(10), |s| {
        s.contains("EXITED 0")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_is_said_in_the_status_line_and_the_ui_reconnects() {
    if !have_tmux() {
        return;
    }
    // A fixed address, so that the restarted server is the one the client is configured for.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let stack = Stack::start_on(&addr).await;
    stack
        .send_unix(&[line("before the restart", "api", 6)])
        .await;
    let t = Tmux::start(&stack, &[], 160, 30);
    t.wait("the entry", Duration::from_secs(30), |s| {
        s.contains("before the restart")
    })
    .await;
    let (tmp, dir) = stack.stop().await;
    // The UI stays, saying what happened in its status line.
    let s = t
        .wait("the interruption", Duration::from_secs(60), |s| {
            s.contains("reconnecting") || s.contains("retrying in")
        })
        .await;
    assert!(s.contains("before the restart"), "{s}");
    eprintln!("{}", s.lines().last().unwrap_or(""));
    let stack = Stack::restart_on(tmp, dir, &addr).await;
    t.wait("the stream resumed", Duration::from_secs(60), |s| {
        s.contains("live stream resumed")
    })
    .await;
    stack
        .send_unix(&[line("after the restart", "api", 6)])
        .await;
    let s = t
        .wait("an entry after the restart", Duration::from_secs(30), |s| {
            s.contains("after the restart")
        })
        .await;
    assert!(s.contains("before the restart"), "{s}");
    t.keys(&["q"]);
    t.wait("the shell after exit", Duration::from_secs(10), |s| {
        s.contains("EXITED 0")
    })
    .await;
}

/// The `gap NNN` numbers of the rows on screen, top to bottom.
fn gap_rows(screen: &str) -> Vec<u32> {
    screen
        .lines()
        .filter_map(|l| {
            let at = l.rfind("gap ")?;
            l.get(at + 4..at + 7)?.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_entries_past_the_scrollback_are_fetched_again_and_sigterm_restores_the_terminal() {
    if !have_tmux() {
        return;
    }
    let stack = Stack::start().await;
    let t = Tmux::start(&stack, &["--scrollback", "50", "--source", "gap"], 160, 40);
    t.wait("the UI", Duration::from_secs(30), |s| s.contains("FOLLOW"))
        .await;
    // 120 live entries in 3 batches: the pane keeps the newest 50.
    for batch in 0..3u32 {
        let lines: Vec<_> = (batch * 40..batch * 40 + 40)
            .map(|i| line(&format!("gap {i:03}"), "gap", 6))
            .collect();
        stack.send_unix(&lines).await;
        let last = format!("gap {:03}", batch * 40 + 39);
        t.wait("the batch", Duration::from_secs(20), |s| s.contains(&last))
            .await;
    }
    let s = t.screen();
    assert!(s.contains("50 entries"), "{s}");
    // `g` fetches what was dropped again, from before the oldest held: down to the first.
    let s = t
        .wait("the first entry", Duration::from_secs(30), |s| {
            if !s.contains("gap 000") {
                t.keys(&["g"]);
            }
            s.contains("gap 000")
        })
        .await;
    let rows = gap_rows(&s);
    assert_eq!(rows[0], 0, "{s}");
    assert!(
        rows.windows(2).all(|w| w[1] == w[0] + 1),
        "every entry once, in order: {rows:?}\n{s}"
    );

    // SIGTERM: the UI leaves as on `q`, the terminal restored.
    let shell = t.tmux(&["display", "-p", "-t", "t", "#{pane_pid}"]);
    let shell = shell.trim();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let tui = children.split_whitespace().next().unwrap().to_owned();
    let killed = Command::new("kill").args(["-TERM", &tui]).status().unwrap();
    assert!(killed.success());
    let s = t
        .wait("the shell after SIGTERM", Duration::from_secs(10), |s| {
            s.contains("EXITED") && s.contains("icanon")
        })
        .await;
    assert!(s.contains("EXITED 143"), "{s}");
    assert!(!s.contains("-icanon") && !s.contains("-echo "), "{s}");
    assert!(!s.contains("gap 0"), "the UI's screen is gone: {s}");
}
