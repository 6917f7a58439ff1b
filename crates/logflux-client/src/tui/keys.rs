//! Every key of the terminal UI, in one table: it maps keys to [`Action`]s and is what the
//! help overlay lists, so the help cannot miss a key. Keys follow less, lnav and k9s where the
//! issue does not name them: `/` filters (lnav's filter-in, as you type), `\` searches with
//! `n`/`N` (`?` is help, as in k9s), `e`/`E` jump between errors (lnav), `1`…`6` choose a
//! time range (k9s).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Quit,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Follow,
    Filter,
    Search,
    NextMatch,
    PrevMatch,
    NextError,
    PrevError,
    Mark,
    NextMark,
    PrevMark,
    Detail,
    Copy,
    CopyJson,
    Save,
    Help,
    Wrap,
    ToggleTime,
    ToggleLevel,
    ToggleSource,
    Left,
    Right,
    LineStart,
    NextPane,
    PrevPane,
    EditQuery,
    NewPane,
    ClosePane,
    SplitLayout,
    JumpTime,
    /// A time range: index into [`super::model::RANGES`].
    Range(u8),
    AllTime,
    Histogram,
    Escape,
    WheelDown,
    WheelUp,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The log view (and, for keys the detail pane does not take, the detail pane too).
    Log,
    /// The detail pane.
    Detail,
    /// A prompt at the bottom line.
    Prompt,
}

/// One row of the key table.
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) keys: &'static [(KeyCode, KeyModifiers)],
    /// The keys as the help shows them.
    pub(crate) label: &'static str,
    pub(crate) action: Option<Action>,
    pub(crate) scope: Scope,
    pub(crate) help: &'static str,
}

const N: KeyModifiers = KeyModifiers::NONE;
const C: KeyModifiers = KeyModifiers::CONTROL;
const S: KeyModifiers = KeyModifiers::SHIFT;

const fn ch(c: char) -> (KeyCode, KeyModifiers) {
    (KeyCode::Char(c), N)
}

macro_rules! bind {
    ($scope:ident, $label:literal, $action:expr, $help:literal, [$($k:expr),* $(,)?]) => {
        Binding {
            keys: &[$($k),*],
            label: $label,
            action: $action,
            scope: Scope::$scope,
            help: $help,
        }
    };
}

/// The key table.
pub(crate) static BINDINGS: &[Binding] = &[
    bind!(
        Log,
        "q  Ctrl-C",
        Some(Action::Quit),
        "quit (the terminal is restored)",
        [ch('q'), (KeyCode::Char('c'), C)]
    ),
    bind!(
        Log,
        "?  F1",
        Some(Action::Help),
        "this help (any key closes it; j/k scroll it)",
        [ch('?'), (KeyCode::F(1), N)]
    ),
    bind!(
        Log,
        "j  ↓",
        Some(Action::Down),
        "next entry",
        [ch('j'), (KeyCode::Down, N)]
    ),
    bind!(
        Log,
        "k  ↑",
        Some(Action::Up),
        "previous entry (stops following)",
        [ch('k'), (KeyCode::Up, N)]
    ),
    bind!(
        Log,
        "PgDn Space Ctrl-F Ctrl-D",
        Some(Action::PageDown),
        "page down",
        [
            (KeyCode::PageDown, N),
            ch(' '),
            (KeyCode::Char('f'), C),
            (KeyCode::Char('d'), C)
        ]
    ),
    bind!(
        Log,
        "PgUp b Ctrl-B Ctrl-U",
        Some(Action::PageUp),
        "page up (older entries are fetched as you reach the top; with a filter, up to 3 pages)",
        [
            (KeyCode::PageUp, N),
            ch('b'),
            (KeyCode::Char('b'), C),
            (KeyCode::Char('u'), C)
        ]
    ),
    bind!(
        Log,
        "g  Home",
        Some(Action::Top),
        "first entry held (fetches older ones)",
        [ch('g'), (KeyCode::Home, N)]
    ),
    bind!(
        Log,
        "G  End",
        Some(Action::Bottom),
        "newest entry, and follow",
        [ch('G'), (KeyCode::Char('G'), S), (KeyCode::End, N)]
    ),
    bind!(
        Log,
        "f",
        Some(Action::Follow),
        "follow new entries on/off",
        [ch('f')]
    ),
    bind!(
        Log,
        "/",
        Some(Action::Filter),
        "filter as you type (regex, smart case; Esc clears)",
        [ch('/')]
    ),
    bind!(
        Log,
        "\\",
        Some(Action::Search),
        "search: highlight and jump as you type",
        [ch('\\')]
    ),
    bind!(Log, "n  N", None, "next / previous search match", []),
    bind!(Log, "", Some(Action::NextMatch), "", [ch('n')]),
    bind!(
        Log,
        "",
        Some(Action::PrevMatch),
        "",
        [ch('N'), (KeyCode::Char('N'), S)]
    ),
    bind!(
        Log,
        "e  E",
        None,
        "next / previous error (err and worse)",
        []
    ),
    bind!(Log, "", Some(Action::NextError), "", [ch('e')]),
    bind!(
        Log,
        "",
        Some(Action::PrevError),
        "",
        [ch('E'), (KeyCode::Char('E'), S)]
    ),
    bind!(
        Log,
        "m",
        Some(Action::Mark),
        "mark / unmark the entry",
        [ch('m')]
    ),
    bind!(Log, "'  \"", None, "next / previous mark", []),
    bind!(Log, "", Some(Action::NextMark), "", [ch('\'')]),
    bind!(
        Log,
        "",
        Some(Action::PrevMark),
        "",
        [ch('"'), (KeyCode::Char('"'), S)]
    ),
    bind!(
        Log,
        "Enter",
        Some(Action::Detail),
        "detail of the entry (every field, JSON pretty)",
        [(KeyCode::Enter, N)]
    ),
    bind!(
        Log,
        "t",
        Some(Action::JumpTime),
        "jump to a time (-15m, 10:42, 2026-11-20 10:42)",
        [ch('t')]
    ),
    bind!(
        Log,
        "1 … 6",
        None,
        "time range 1m 5m 15m 30m 1h 24h (panes reload)",
        []
    ),
    bind!(Log, "", Some(Action::Range(0)), "", [ch('1')]),
    bind!(Log, "", Some(Action::Range(1)), "", [ch('2')]),
    bind!(Log, "", Some(Action::Range(2)), "", [ch('3')]),
    bind!(Log, "", Some(Action::Range(3)), "", [ch('4')]),
    bind!(Log, "", Some(Action::Range(4)), "", [ch('5')]),
    bind!(Log, "", Some(Action::Range(5)), "", [ch('6')]),
    bind!(
        Log,
        "0",
        Some(Action::AllTime),
        "no time range (the query's own)",
        [ch('0')]
    ),
    bind!(
        Log,
        "w",
        Some(Action::Wrap),
        "wrap long lines on/off",
        [ch('w')]
    ),
    bind!(Log, "←  →", None, "scroll the message left / right", []),
    bind!(Log, "", Some(Action::Left), "", [(KeyCode::Left, N)]),
    bind!(Log, "", Some(Action::Right), "", [(KeyCode::Right, N)]),
    bind!(
        Log,
        "^",
        Some(Action::LineStart),
        "back to the start of the message",
        [ch('^')]
    ),
    bind!(
        Log,
        "T  L  S",
        None,
        "hide / show the time, level, source column",
        []
    ),
    bind!(
        Log,
        "",
        Some(Action::ToggleTime),
        "",
        [ch('T'), (KeyCode::Char('T'), S)]
    ),
    bind!(
        Log,
        "",
        Some(Action::ToggleLevel),
        "",
        [ch('L'), (KeyCode::Char('L'), S)]
    ),
    bind!(
        Log,
        "",
        Some(Action::ToggleSource),
        "",
        [ch('S'), (KeyCode::Char('S'), S)]
    ),
    bind!(
        Log,
        "H",
        Some(Action::Histogram),
        "histogram strip on/off",
        [ch('H'), (KeyCode::Char('H'), S)]
    ),
    bind!(Log, "Tab  Shift-Tab", None, "next / previous pane", []),
    bind!(Log, "", Some(Action::NextPane), "", [(KeyCode::Tab, N)]),
    bind!(
        Log,
        "",
        Some(Action::PrevPane),
        "",
        [(KeyCode::BackTab, S), (KeyCode::BackTab, N)]
    ),
    bind!(
        Log,
        ":",
        Some(Action::EditQuery),
        "edit the pane's query (search's filters: -a api -l err timeout)",
        [ch(':')]
    ),
    bind!(
        Log,
        "s",
        Some(Action::NewPane),
        "split: a new pane (its query is asked for)",
        [ch('s')]
    ),
    bind!(
        Log,
        "x",
        Some(Action::ClosePane),
        "close the pane",
        [ch('x')]
    ),
    bind!(
        Log,
        "|",
        Some(Action::SplitLayout),
        "panes side by side / stacked",
        [ch('|')]
    ),
    bind!(
        Log,
        "Esc",
        Some(Action::Escape),
        "stop fetching older entries; else clear the search, then the filter, and the message",
        [(KeyCode::Esc, N)]
    ),
    bind!(Log, "wheel", None, "mouse wheel scrolls", []),
    bind!(
        Detail,
        "j k ↓ ↑ PgUp PgDn g G",
        None,
        "scroll the detail",
        []
    ),
    bind!(
        Detail,
        "y",
        Some(Action::Copy),
        "copy the payload to the clipboard (OSC 52)",
        [ch('y')]
    ),
    bind!(
        Detail,
        "Y",
        Some(Action::CopyJson),
        "copy the whole entry as JSON",
        [ch('Y'), (KeyCode::Char('Y'), S)]
    ),
    bind!(
        Detail,
        "w",
        Some(Action::Save),
        "save the entry (JSON) to a file",
        []
    ),
    bind!(Detail, "Enter  Esc", None, "close the detail", []),
    bind!(
        Prompt,
        "Enter",
        None,
        "apply (a query: run it; a bad one keeps the old)",
        []
    ),
    bind!(
        Prompt,
        "Esc",
        None,
        "cancel (the filter goes back to what it was)",
        []
    ),
    bind!(
        Prompt,
        "Backspace  Ctrl-U",
        None,
        "delete a character / everything",
        []
    ),
];

/// The action of a key in the log view or detail pane.
pub(crate) fn action_for(k: KeyEvent, detail: bool) -> Option<Action> {
    // `w` saves in the detail pane and wraps in the log view.
    if detail && k.code == KeyCode::Char('w') && !k.modifiers.contains(C) {
        return Some(Action::Save);
    }
    if detail && k.code == KeyCode::Char('q') {
        return Some(Action::Escape);
    }
    let mods = k.modifiers & (C | S | KeyModifiers::ALT);
    BINDINGS
        .iter()
        .filter(|b| b.scope == Scope::Log || (detail && b.scope == Scope::Detail))
        .find(|b| {
            b.keys.iter().any(|&(code, m)| {
                code == k.code && (m == mods || (m == N && mods == S && is_char(code)))
            })
        })
        .and_then(|b| b.action)
}

/// Shifted characters arrive as the character, with or without SHIFT (by terminal).
fn is_char(c: KeyCode) -> bool {
    matches!(c, KeyCode::Char(_))
}

/// The help overlay's lines: scope headings, then key and what it does.
pub(crate) fn help_lines() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut scope = None;
    for b in BINDINGS.iter().filter(|b| !b.label.is_empty()) {
        if scope != Some(b.scope) {
            scope = Some(b.scope);
            let title = match b.scope {
                Scope::Log => "Log view",
                Scope::Detail => "Detail pane",
                Scope::Prompt => "Prompts (/ \\ : t w)",
            };
            if !out.is_empty() {
                out.push((String::new(), String::new()));
            }
            out.push((title.to_owned(), String::new()));
        }
        out.push((b.label.to_owned(), b.help.to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_key_and_every_key_is_in_the_help() {
        let help = help_lines();
        for b in BINDINGS {
            if b.action.is_some() {
                assert!(
                    !b.keys.is_empty() || b.action == Some(Action::Save),
                    "{:?} has no key",
                    b.action
                );
            }
            // Rows without a label are listed under the row above (`n  N`).
            if !b.label.is_empty() {
                assert!(help.iter().any(|(k, _)| k == b.label));
                // Every Ctrl key is named in its row (Ctrl-D and Ctrl-U were left out).
                for &(code, m) in b.keys {
                    if let (KeyCode::Char(c), true) = (code, m.contains(C)) {
                        let name = format!("Ctrl-{}", c.to_ascii_uppercase());
                        assert!(b.label.contains(&name), "{name} not in {:?}", b.label);
                    }
                }
            }
        }
        let key = |c| KeyEvent::new(KeyCode::Char(c), N);
        assert_eq!(action_for(key('e'), false), Some(Action::NextError));
        assert_eq!(
            action_for(KeyEvent::new(KeyCode::Char('E'), S), false),
            Some(Action::PrevError)
        );
        assert_eq!(action_for(key('w'), false), Some(Action::Wrap));
        assert_eq!(action_for(key('w'), true), Some(Action::Save));
        assert_eq!(action_for(key('y'), false), None);
        assert_eq!(action_for(key('3'), false), Some(Action::Range(2)));
        assert_eq!(
            action_for(KeyEvent::new(KeyCode::Char('c'), C), false),
            Some(Action::Quit)
        );
    }

    #[test]
    fn no_key_does_two_things_in_one_place() {
        let mut seen: Vec<(Scope, KeyCode, KeyModifiers)> = Vec::new();
        for b in BINDINGS {
            for &(code, m) in b.keys {
                assert!(
                    !seen.contains(&(b.scope, code, m)),
                    "{code:?} {m:?} bound twice"
                );
                seen.push((b.scope, code, m));
            }
        }
    }
}
