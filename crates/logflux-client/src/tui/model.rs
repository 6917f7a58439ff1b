//! The terminal UI's state, without IO: panes with their scrollback, selection, follow mode,
//! filter, search, marks, histogram counts; the columns, wrap and horizontal scroll; prompts,
//! overlays and the status line. Keys become [`Action`]s and data becomes [`Msg`]s; both
//! change the model and may ask the loop for [`Effect`]s (fetch older entries, run a query,
//! copy, save, quit). Everything here is unit-tested without a terminal or a server.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use logflux_proto::{EntryView, Level};

use super::keys::Action;
use crate::output::Zone;

/// Entries kept in memory per pane unless configured otherwise.
pub(crate) const DEFAULT_SCROLLBACK: usize = 100_000;

/// Characters of a payload line per line of the detail pane's store (wrapped further to the
/// screen's width when drawn).
const DETAIL_CHUNK: usize = 200;

/// Lines scrolled by one turn of the mouse wheel.
pub(crate) const WHEEL_LINES: usize = 3;

/// Entries in a page of older entries, at most (the first page is the source's own).
pub(crate) const PAGE: usize = 2000;

/// Pages of older entries one scroll key may fetch while a filter is on (the filter may let
/// few of a page through; Esc stops earlier).
pub(crate) const FILTER_PAGES: usize = 3;

/// The status line while a filter searches older pages.
const SEARCHING: &str = "searching older entries… (Esc stops)";

/// One entry held by a pane. Its metadata is the entry's own sorted vector, shrunk to fit:
/// short keys and values are stored inline, so one or two pairs cost one allocation of 48
/// bytes each (a B-tree map's node was ~540 bytes, half of what an entry held: see
/// docs/benchmarks.md, "Terminal UI").
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The entry.
    pub(crate) entry: EntryView,
    /// Marked with `m`.
    pub(crate) marked: bool,
}

impl Item {
    /// Holds an entry.
    pub(crate) fn new(mut entry: EntryView) -> Item {
        entry.metadata.shrink_to_fit();
        Item {
            entry,
            marked: false,
        }
    }

    /// The entry whole (the detail pane, copy, save).
    pub(crate) fn full(&self) -> EntryView {
        self.entry.clone()
    }

    /// An estimate of what the item holds in memory (its slot, and each allocation rounded
    /// up to the allocator's 16 bytes plus 16 of overhead).
    pub(crate) fn approx_size(&self) -> usize {
        let alloc = |n: usize| if n == 0 { 0 } else { n.div_ceil(16) * 16 + 16 };
        let e = &self.entry;
        std::mem::size_of::<Item>()
            + alloc(e.source.len())
            + alloc(e.payload.len())
            + alloc(e.payload_type.len())
            + e.metadata.heap_size()
            + e.fields
                .iter()
                .map(|(k, v)| alloc(k.len()) + v.to_string().len() + 96)
                .sum::<usize>()
    }
}

/// Whether a level is an error or worse (what `e`/`E` jump to).
pub(crate) fn is_error(l: Level) -> bool {
    l.number() <= Level::Error.number()
}

/// Where a pane's query stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connecting, reading keys, opening the live stream.
    Opening,
    /// The first page of history is on its way.
    Loading,
    /// Entries shown (possibly none).
    Ready,
}

/// Counts of entries by level per second of their time, kept up to date as entries come and
/// go; the histogram strip sums them into buckets.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    pub(crate) by_second: BTreeMap<i64, [u32; 8]>,
    /// Changes on every update (the strip's cache key).
    pub(crate) version: u64,
}

impl Counts {
    fn add(&mut self, e: &EntryView, delta: i32) {
        let sec = e.timestamp_ns.div_euclid(1_000_000_000);
        let slot = usize::from(e.level.number().saturating_sub(1)).min(7);
        let c = self.by_second.entry(sec).or_insert([0; 8]);
        c[slot] = c[slot].saturating_add_signed(delta);
        if c.iter().all(|&n| n == 0) {
            self.by_second.remove(&sec);
        }
        self.version += 1;
    }

    /// Counts in `n` buckets over the seconds held: per bucket, errors and worse, warnings,
    /// and the rest; and the range covered (first and last second).
    pub(crate) fn buckets(&self, n: usize) -> (Vec<[u64; 3]>, Option<(i64, i64)>) {
        let mut out = vec![[0u64; 3]; n.max(1)];
        let (Some((&lo, _)), Some((&hi, _))) = (
            self.by_second.first_key_value(),
            self.by_second.last_key_value(),
        ) else {
            return (out, None);
        };
        let span = (hi - lo + 1) as u128;
        for (&sec, c) in &self.by_second {
            let b = (((sec - lo) as u128 * out.len() as u128) / span) as usize;
            let b = b.min(out.len() - 1);
            let errors: u32 = c[..4].iter().sum();
            out[b][0] += u64::from(errors);
            out[b][1] += u64::from(c[4]);
            out[b][2] += u64::from(c[5..].iter().sum::<u32>());
        }
        (out, Some((lo, hi)))
    }
}

/// A compiled filter or search pattern: a regular expression, case-insensitive unless it has
/// an upper-case letter (smart case, as `search --grep`); text that is not a valid
/// expression is looked for literally.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) text: String,
    pub(crate) re: regex::Regex,
}

impl Pattern {
    /// The pattern for `text`, or `None` for empty text.
    pub(crate) fn new(text: &str) -> Option<Pattern> {
        if text.is_empty() {
            return None;
        }
        let insensitive = !text.chars().any(char::is_uppercase);
        let build = |t: &str| {
            regex::RegexBuilder::new(t)
                .case_insensitive(insensitive)
                .size_limit(1 << 20)
                .build()
        };
        let re = build(text).or_else(|_| build(&regex::escape(text))).ok()?;
        Some(Pattern {
            text: text.to_owned(),
            re,
        })
    }

    /// Whether an entry matches: its payload or its source.
    pub(crate) fn matches(&self, e: &EntryView) -> bool {
        self.re.is_match(&e.payload) || self.re.is_match(&e.source)
    }
}

/// One pane: a query's entries, oldest at the top, and how they are viewed.
#[derive(Debug)]
pub(crate) struct Pane {
    /// The query as typed (search's filter syntax).
    pub(crate) query: String,
    /// The source generation whose data this pane shows.
    pub(crate) era: u64,
    /// A query being opened to replace this one: its generation and text.
    pub(crate) pending: Option<(u64, String)>,
    pub(crate) phase: Phase,
    entries: VecDeque<Item>,
    /// Sequence number of `entries[0]` (entries keep their numbers as others come and go).
    first_seq: i64,
    cap: usize,
    /// Sequence numbers of the entries the filter lets through, ascending (`None`: all).
    filtered: Option<VecDeque<i64>>,
    pub(crate) filter: Option<Pattern>,
    pub(crate) search: Option<Pattern>,
    /// The selected row (an index into the shown entries).
    pub(crate) cursor: usize,
    /// The first row shown.
    pub(crate) top: usize,
    /// Rows of the last frame.
    pub(crate) height: usize,
    pub(crate) follow: bool,
    /// No older entries exist for the query.
    pub(crate) history_done: bool,
    /// Older entries are being fetched.
    pub(crate) loading_older: bool,
    /// Pages of older entries the last scroll key may still fetch (more than one only while
    /// a filter is on).
    pub(crate) older_budget: usize,
    /// Older entries than the first held were dropped from memory (fetched again when
    /// scrolled to).
    pub(crate) older_dropped: bool,
    /// Newer entries than the last held were dropped (scrolled far back): live entries wait,
    /// and following again reloads the newest.
    pub(crate) newer_dropped: bool,
    /// Records that could not be opened (integrity failures), so far.
    pub(crate) failed_records: u64,
    pub(crate) counts: Counts,
    /// A time `t` asked to jump to, older than what is held: fetching goes on until it is.
    pub(crate) jump_target: Option<i64>,
    /// The entry selected when the filter last changed (kept through filters that match
    /// nothing).
    anchor: Option<i64>,
    /// Bytes held (estimate).
    pub(crate) bytes: usize,
}

impl Pane {
    /// An empty pane for `query`, keeping `cap` entries at most.
    pub(crate) fn new(query: &str, cap: usize, era: u64) -> Pane {
        Pane {
            query: query.trim().to_owned(),
            era,
            pending: None,
            phase: Phase::Opening,
            entries: VecDeque::new(),
            first_seq: 0,
            cap: cap.max(1),
            filtered: None,
            filter: None,
            search: None,
            cursor: 0,
            top: 0,
            height: 20,
            follow: true,
            history_done: false,
            loading_older: false,
            older_budget: 0,
            older_dropped: false,
            newer_dropped: false,
            failed_records: 0,
            counts: Counts::default(),
            jump_target: None,
            anchor: None,
            bytes: 0,
        }
    }

    /// Entries held.
    pub(crate) fn held(&self) -> usize {
        self.entries.len()
    }

    /// Rows shown (entries the filter lets through).
    pub(crate) fn len(&self) -> usize {
        self.filtered
            .as_ref()
            .map_or(self.entries.len(), VecDeque::len)
    }

    /// Whether no row is shown.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shown row `i`.
    pub(crate) fn row(&self, i: usize) -> Option<&Item> {
        let idx = match &self.filtered {
            None => i,
            Some(f) => usize::try_from(*f.get(i)? - self.first_seq).ok()?,
        };
        self.entries.get(idx)
    }

    fn row_mut(&mut self, i: usize) -> Option<&mut Item> {
        let idx = match &self.filtered {
            None => i,
            Some(f) => usize::try_from(*f.get(i)? - self.first_seq).ok()?,
        };
        self.entries.get_mut(idx)
    }

    /// The selected entry.
    pub(crate) fn selected(&self) -> Option<&Item> {
        self.row(self.cursor)
    }

    /// The oldest entry's time, when older entries were dropped (where fetching resumes).
    pub(crate) fn resume_before(&self) -> Option<i64> {
        if self.older_dropped {
            self.entries.front().map(|i| i.entry.timestamp_ns)
        } else {
            None
        }
    }

    fn passes(&self, e: &EntryView) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(e))
    }

    /// Empties the pane (a new query, a reload).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.filtered = self.filter.as_ref().map(|_| VecDeque::new());
        self.first_seq = 0;
        self.cursor = 0;
        self.top = 0;
        self.follow = true;
        self.history_done = false;
        self.loading_older = false;
        self.older_budget = 0;
        self.older_dropped = false;
        self.newer_dropped = false;
        self.failed_records = 0;
        self.counts = Counts::default();
        self.jump_target = None;
        self.anchor = None;
        self.bytes = 0;
        self.phase = Phase::Loading;
    }

    /// Adds live entries at the bottom (oldest first). Past the scrollback, the oldest are
    /// dropped. Ignored while newer entries are dropped (following again reloads them).
    pub(crate) fn push_live(&mut self, entries: Vec<EntryView>) {
        if self.newer_dropped {
            return;
        }
        for e in entries {
            let seq = self.first_seq + self.entries.len() as i64;
            if self.filtered.is_some()
                && self.passes(&e)
                && let Some(f) = self.filtered.as_mut()
            {
                f.push_back(seq);
            }
            self.counts.add(&e, 1);
            let item = Item::new(e);
            self.bytes += item.approx_size();
            self.entries.push_back(item);
        }
        while self.entries.len() > self.cap {
            self.drop_front();
        }
        if self.follow {
            self.select_last();
        }
    }

    /// Adds a page of older entries at the top (newest first, as fetched). Past the
    /// scrollback: on the first page or while following, the oldest are dropped again;
    /// else (scrolled back) the newest are dropped, and following stops.
    pub(crate) fn push_older(&mut self, entries: Vec<EntryView>, done: bool) {
        self.loading_older = false;
        self.history_done = done;
        self.phase = Phase::Ready;
        let was_empty = self.is_empty();
        let keep_newest = self.entries.is_empty() || self.follow;
        let mut added = 0usize;
        for e in entries {
            self.first_seq -= 1;
            if self.filtered.is_some() && self.passes(&e) {
                if let Some(f) = self.filtered.as_mut() {
                    f.push_front(self.first_seq);
                }
                added += 1;
            } else if self.filtered.is_none() {
                added += 1;
            }
            self.counts.add(&e, 1);
            let item = Item::new(e);
            self.bytes += item.approx_size();
            self.entries.push_front(item);
        }
        if keep_newest {
            while self.entries.len() > self.cap {
                self.drop_front();
            }
            self.select_last();
        } else {
            if was_empty {
                self.select_last();
            } else {
                self.cursor += added;
                self.top += added;
            }
            while self.entries.len() > self.cap {
                self.drop_back();
            }
        }
        self.clamp();
    }

    /// Entries to ask for in the next page of older ones: the room left in the scrollback,
    /// but at least half of it (scrolling back past the scrollback drops the newest half).
    pub(crate) fn page_size(&self) -> usize {
        let room = self.cap.saturating_sub(self.entries.len());
        PAGE.min(room.max(self.cap / 2)).max(1)
    }

    /// Drops the oldest entry, with every other entry of the same time (so that fetching
    /// again before that time finds exactly what was dropped).
    fn drop_front(&mut self) {
        let Some(ts) = self.entries.front().map(|i| i.entry.timestamp_ns) else {
            return;
        };
        while self
            .entries
            .front()
            .is_some_and(|i| i.entry.timestamp_ns == ts)
            && !self.entries.is_empty()
        {
            if let Some(item) = self.entries.pop_front() {
                self.forget(&item);
            }
            let seq = self.first_seq;
            self.first_seq += 1;
            let shown = match self.filtered.as_mut() {
                Some(f) if f.front() == Some(&seq) => {
                    f.pop_front();
                    true
                }
                Some(_) => false,
                None => true,
            };
            if shown {
                self.cursor = self.cursor.saturating_sub(1);
                self.top = self.top.saturating_sub(1);
            }
        }
        self.older_dropped = true;
        self.history_done = false;
    }

    fn drop_back(&mut self) {
        if let Some(item) = self.entries.pop_back() {
            self.forget(&item);
            let seq = self.first_seq + self.entries.len() as i64;
            if let Some(f) = self.filtered.as_mut()
                && f.back() == Some(&seq)
            {
                f.pop_back();
            }
            self.newer_dropped = true;
            self.follow = false;
        }
    }

    fn forget(&mut self, item: &Item) {
        self.counts.add(&item.entry, -1);
        self.bytes = self.bytes.saturating_sub(item.approx_size());
    }

    /// Sets the filter (`None` shows everything) and rebuilds the rows it lets through,
    /// keeping the selected entry selected when it still shows (else the nearest after it).
    pub(crate) fn set_filter(&mut self, filter: Option<Pattern>) {
        // The entry selected before a filter that matches nothing stays the anchor (typing a
        // letter too many and deleting it again comes back to the same place).
        let selected_seq = self.seq_of(self.cursor).or(self.anchor);
        self.anchor = selected_seq;
        self.filter = filter;
        self.filtered = self.filter.as_ref().map(|f| {
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, i)| f.matches(&i.entry))
                .map(|(n, _)| self.first_seq + n as i64)
                .collect()
        });
        self.cursor = match (selected_seq, &self.filtered) {
            (Some(s), Some(f)) => f.partition_point(|&x| x < s),
            (Some(s), None) => usize::try_from(s - self.first_seq).unwrap_or(0),
            (None, _) => 0,
        };
        if self.follow {
            self.select_last();
        }
        self.clamp();
        self.scroll_into_view();
    }

    fn seq_of(&self, row: usize) -> Option<i64> {
        match &self.filtered {
            None => (row < self.entries.len()).then(|| self.first_seq + row as i64),
            Some(f) => f.get(row).copied(),
        }
    }

    fn clamp(&mut self) {
        let last = self.len().saturating_sub(1);
        self.cursor = self.cursor.min(last);
        self.top = self.top.min(last);
    }

    /// Moves the first row so that the selected one shows.
    pub(crate) fn scroll_into_view(&mut self) {
        let h = self.height.max(1);
        if self.cursor < self.top {
            self.top = self.cursor;
        } else if self.cursor >= self.top + h {
            self.top = self.cursor + 1 - h;
        }
    }

    /// Selects the last row, showing it at the bottom.
    pub(crate) fn select_last(&mut self) {
        self.cursor = self.len().saturating_sub(1);
        self.top = self.len().saturating_sub(self.height.max(1));
    }

    /// Moves the selection by `delta` rows; moving up stops following.
    pub(crate) fn move_by(&mut self, delta: isize) {
        if delta < 0 {
            self.follow = false;
            self.cursor = self.cursor.saturating_sub(delta.unsigned_abs());
        } else {
            self.cursor = (self.cursor + delta as usize).min(self.len().saturating_sub(1));
        }
        self.scroll_into_view();
    }

    /// Whether the view is near the top of what is held and older entries may exist.
    pub(crate) fn wants_older(&self) -> bool {
        !self.history_done
            && !self.loading_older
            && self.phase == Phase::Ready
            && self.top <= self.height
    }

    /// Selects the next (or previous) row after the cursor that satisfies `hit`, if any.
    fn jump(&mut self, forward: bool, hit: impl Fn(&Item) -> bool) -> bool {
        let n = self.len();
        let found = if forward {
            (self.cursor + 1..n).find(|&i| self.row(i).is_some_and(&hit))
        } else {
            (0..self.cursor)
                .rev()
                .find(|&i| self.row(i).is_some_and(&hit))
        };
        match found {
            Some(i) => {
                if i < self.cursor {
                    self.follow = false;
                }
                self.cursor = i;
                self.scroll_into_view();
                true
            }
            None => false,
        }
    }

    /// Selects the first row at or after `ns` (the last row when all are older).
    pub(crate) fn jump_to_time(&mut self, ns: i64) {
        let n = self.len();
        let mut lo = 0;
        let mut hi = n;
        // Rows are in time order except for late live arrivals: a binary search is close
        // enough and costs the same with 100 000 rows as with 100.
        while lo < hi {
            let mid = (lo + hi) / 2;
            let t = self.row(mid).map_or(i64::MAX, |i| i.entry.timestamp_ns);
            if t < ns {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.follow = false;
        self.cursor = lo.min(n.saturating_sub(1));
        self.scroll_into_view();
    }
}

/// How panes share the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// Side by side.
    Columns,
    /// One above the other.
    Stacked,
}

/// Which columns are shown before the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Columns {
    pub(crate) time: bool,
    pub(crate) level: bool,
    pub(crate) source: bool,
}

/// What a prompt at the bottom line edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PromptKind {
    /// `/`: the focused pane's filter, applied as you type.
    Filter,
    /// `\`: a search that highlights and jumps (`n`/`N`).
    Search,
    /// `:`: the focused pane's query.
    Query,
    /// `t`: a time to jump to.
    Time,
    /// `w` in the detail pane: a file to save the entry to.
    Save,
}

impl PromptKind {
    /// The prompt's label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            PromptKind::Filter => "/",
            PromptKind::Search => "\\",
            PromptKind::Query => "query: ",
            PromptKind::Time => "jump to time (-15m, 10:42, 2026-11-20 10:42): ",
            PromptKind::Save => "save entry to: ",
        }
    }
}

/// A prompt being typed into.
#[derive(Debug, Clone)]
pub(crate) struct Prompt {
    pub(crate) kind: PromptKind,
    pub(crate) text: String,
    /// The filter before `/` was pressed (Esc restores it).
    pub(crate) before: Option<Pattern>,
}

/// The detail pane: the selected entry's every field, formatted once when opened.
#[derive(Debug, Clone)]
pub(crate) struct Detail {
    pub(crate) lines: Vec<String>,
    pub(crate) scroll: usize,
    pub(crate) height: usize,
    /// The entry as JSON (copy and save).
    pub(crate) json: String,
    /// The entry's time (the file name the save prompt suggests).
    pub(crate) ts: i64,
    pub(crate) payload: String,
}

/// The status line's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) text: String,
    pub(crate) error: bool,
}

/// Data from a pane's source (tagged with the pane and the source's generation).
#[derive(Debug)]
pub(crate) enum Msg {
    /// The query was accepted: the pane shows its data from now on.
    Opened { era: u64 },
    /// The query could not be opened; the pane keeps its old one.
    Failed { era: u64, error: String },
    /// A page of older entries, newest first; `done`: no older ones exist.
    Older {
        era: u64,
        entries: Vec<EntryView>,
        done: bool,
        failed: Vec<String>,
    },
    /// New entries, oldest first.
    Live {
        era: u64,
        entries: Vec<EntryView>,
        failed: Vec<String>,
    },
    /// Something to tell (reconnecting, an error that did not stop the source).
    Notice { era: u64, text: String, error: bool },
}

/// What the loop must do after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    Quit,
    /// Fetch a page of at most `max` older entries for a pane (before a time, when entries
    /// were dropped).
    LoadOlder {
        pane: usize,
        before: Option<i64>,
        max: usize,
    },
    /// Run a new query in a pane (generation `era`).
    Query {
        pane: usize,
        era: u64,
        query: String,
    },
    /// Copy text to the clipboard (OSC 52).
    Copy(String),
    /// Write text to a file.
    Save(PathBuf, String),
    /// Parse a time typed at the `t` prompt and jump to it.
    JumpTime(String),
}

/// The whole UI's state.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) panes: Vec<Pane>,
    pub(crate) focus: usize,
    pub(crate) split: Split,
    pub(crate) columns: Columns,
    pub(crate) wrap: bool,
    pub(crate) hscroll: usize,
    pub(crate) help: bool,
    pub(crate) help_scroll: usize,
    pub(crate) detail: Option<Detail>,
    pub(crate) prompt: Option<Prompt>,
    pub(crate) status: Option<Status>,
    /// The time range keys' choice (label and the `--since` it sets), if any.
    pub(crate) range: Option<&'static str>,
    pub(crate) histogram: bool,
    pub(crate) zone: Zone,
    /// The status line answers a key (cleared by the next one).
    key_status: bool,
    /// Following paused by opening the detail on (pane, row): resumed when it closes there.
    detail_paused: Option<(usize, usize)>,
    next_era: u64,
    cap: usize,
}

/// The time ranges of keys `1`…`6`.
pub(crate) const RANGES: [&str; 6] = ["1m", "5m", "15m", "30m", "1h", "24h"];

impl Model {
    /// A model with one pane per query, each keeping `cap` entries at most.
    pub(crate) fn new(queries: &[String], cap: usize, zone: Zone) -> Model {
        let panes = queries
            .iter()
            .enumerate()
            .map(|(i, q)| Pane::new(q, cap, i as u64 + 1))
            .collect();
        Model {
            panes,
            focus: 0,
            split: Split::Columns,
            columns: Columns {
                time: true,
                level: true,
                source: true,
            },
            wrap: false,
            hscroll: 0,
            help: false,
            help_scroll: 0,
            detail: None,
            prompt: None,
            status: None,
            range: None,
            histogram: true,
            zone,
            key_status: false,
            detail_paused: None,
            next_era: queries.len() as u64 + 1,
            cap,
        }
    }

    /// The focused pane.
    pub(crate) fn pane(&self) -> &Pane {
        &self.panes[self.focus.min(self.panes.len() - 1)]
    }

    fn pane_mut(&mut self) -> &mut Pane {
        let i = self.focus.min(self.panes.len() - 1);
        &mut self.panes[i]
    }

    /// Says something in the status line (news from a source: it stays until replaced or
    /// Esc).
    pub(crate) fn say(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status {
            text: text.into(),
            error,
        });
        self.key_status = false;
    }

    /// Answers a key in the status line: the next key clears it (no stale "no other mark"
    /// after a mark was found, no save error after the next action).
    pub(crate) fn tell(&mut self, text: impl Into<String>, error: bool) {
        self.say(text, error);
        self.key_status = true;
    }

    /// A new generation for a pane's source.
    pub(crate) fn new_era(&mut self) -> u64 {
        self.next_era += 1;
        self.next_era
    }

    /// Reloads every pane (time range changed): a new generation for each.
    fn reload_all(&mut self) -> Vec<Effect> {
        (0..self.panes.len()).map(|i| self.reload(i)).collect()
    }

    /// Reloads a pane with its own query.
    fn reload(&mut self, pane: usize) -> Effect {
        let era = self.new_era();
        let query = self.panes[pane].query.clone();
        self.panes[pane].pending = Some((era, query.clone()));
        Effect::Query { pane, era, query }
    }

    /// Applies an action (from a key); returns what the loop must do.
    pub(crate) fn act(&mut self, a: Action) -> Vec<Effect> {
        if self.help && !matches!(a, Action::Quit) {
            match a {
                Action::Down => self.help_scroll += 1,
                Action::Up => self.help_scroll = self.help_scroll.saturating_sub(1),
                _ => self.help = false,
            }
            return Vec::new();
        }
        if self.key_status {
            self.status = None;
            self.key_status = false;
        }
        if self.detail.is_some() && self.detail_act(a) {
            return self.detail_effects(a);
        }
        let page = self.pane().height.max(2) - 1;
        let was = (self.focus, self.pane().cursor);
        match a {
            Action::Quit => return vec![Effect::Quit],
            Action::Down => self.pane_mut().move_by(1),
            Action::Up => self.pane_mut().move_by(-1),
            Action::PageDown => self.pane_mut().move_by(page as isize),
            Action::PageUp => self.pane_mut().move_by(-(page as isize)),
            Action::Top => {
                let p = self.pane_mut();
                p.follow = false;
                p.cursor = 0;
                p.top = 0;
            }
            Action::Bottom => return self.follow(true),
            Action::Follow => {
                let on = !self.pane().follow;
                return self.follow(on);
            }
            Action::Filter => self.open_prompt(PromptKind::Filter),
            Action::Search => self.open_prompt(PromptKind::Search),
            Action::EditQuery => {
                self.open_prompt(PromptKind::Query);
                if let Some(p) = self.prompt.as_mut() {
                    p.text = self.panes[self.focus].query.clone();
                }
            }
            Action::JumpTime => self.open_prompt(PromptKind::Time),
            Action::NextMatch | Action::PrevMatch => {
                let forward = a == Action::NextMatch;
                let p = self.pane_mut();
                match p.search.clone() {
                    Some(s) => {
                        if !p.jump(forward, |i| s.matches(&i.entry)) {
                            self.tell(format!("no more matches of {:?}", s.text), false);
                        }
                    }
                    None => self.tell("no search: \\ starts one", false),
                }
            }
            Action::NextError | Action::PrevError => {
                let forward = a == Action::NextError;
                if !self.pane_mut().jump(forward, |i| is_error(i.entry.level)) {
                    let which = if forward { "after" } else { "before" };
                    self.tell(format!("no error {which} the selected entry"), false);
                }
            }
            Action::Mark => {
                let p = self.pane_mut();
                let c = p.cursor;
                if let Some(i) = p.row_mut(c) {
                    i.marked = !i.marked;
                }
            }
            Action::NextMark | Action::PrevMark => {
                let forward = a == Action::NextMark;
                if !self.pane_mut().jump(forward, |i| i.marked) {
                    self.tell("no other mark (m marks an entry)", false);
                }
            }
            Action::Detail => {
                // Live entries would move the selection away from the entry shown: following
                // pauses, and resumes when the detail closes on the same entry.
                let p = self.pane_mut();
                let resume = p.follow.then_some(p.cursor);
                p.follow = false;
                self.open_detail();
                self.detail_paused = resume.map(|c| (self.focus, c));
            }
            Action::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            Action::Wrap => self.wrap = !self.wrap,
            Action::ToggleTime => self.columns.time = !self.columns.time,
            Action::ToggleLevel => self.columns.level = !self.columns.level,
            Action::ToggleSource => self.columns.source = !self.columns.source,
            Action::Left => self.hscroll = self.hscroll.saturating_sub(8),
            Action::Right => self.hscroll += 8,
            Action::LineStart => self.hscroll = 0,
            Action::NextPane => self.focus = (self.focus + 1) % self.panes.len(),
            Action::PrevPane => {
                self.focus = (self.focus + self.panes.len() - 1) % self.panes.len();
            }
            Action::SplitLayout => {
                self.split = match self.split {
                    Split::Columns => Split::Stacked,
                    Split::Stacked => Split::Columns,
                }
            }
            Action::NewPane => {
                let era = self.new_era();
                let query = self.pane().query.clone();
                self.panes.push(Pane::new(&query, self.cap, era));
                self.focus = self.panes.len() - 1;
                let pane = self.focus;
                self.panes[pane].pending = Some((era, query.clone()));
                self.open_prompt(PromptKind::Query);
                if let Some(p) = self.prompt.as_mut() {
                    p.text = query.clone();
                }
                return vec![Effect::Query { pane, era, query }];
            }
            Action::ClosePane => {
                if self.panes.len() > 1 {
                    self.panes.remove(self.focus);
                    // The detail was the closed pane's entry.
                    self.detail = None;
                    self.detail_paused = None;
                    self.focus = self.focus.min(self.panes.len() - 1);
                } else {
                    self.tell("the last pane stays (q quits)", false);
                }
            }
            Action::Range(n) => {
                self.range = RANGES.get(usize::from(n)).copied();
                return self.reload_all();
            }
            Action::AllTime => {
                self.range = None;
                return self.reload_all();
            }
            Action::Histogram => self.histogram = !self.histogram,
            Action::Escape => {
                self.status = None;
                let p = self.pane_mut();
                if p.older_budget > 0 || p.jump_target.is_some() {
                    // Stops a search of older pages (what is on its way still arrives).
                    p.older_budget = 0;
                    p.jump_target = None;
                    self.tell("stopped fetching older entries", false);
                } else if p.search.is_some() {
                    p.search = None;
                } else if p.filter.is_some() {
                    p.set_filter(None);
                }
            }
            Action::WheelDown => self.pane_mut().move_by(WHEEL_LINES as isize),
            Action::WheelUp => self.pane_mut().move_by(-(WHEEL_LINES as isize)),
            Action::Copy | Action::CopyJson | Action::Save => {
                self.tell("select an entry and open it with Enter first", false);
            }
        }
        // The detail pane follows the selection (n, e, ' move it while it is open).
        if self.detail.is_some() && was != (self.focus, self.pane().cursor) {
            self.open_detail();
        }
        // Only keys that scroll up fetch older entries.
        if matches!(
            a,
            Action::Up | Action::PageUp | Action::Top | Action::WheelUp
        ) {
            return self.more_if_near_top();
        }
        Vec::new()
    }

    /// Follow on (to the newest, reloading when newer entries were dropped) or off.
    fn follow(&mut self, on: bool) -> Vec<Effect> {
        let f = self.focus;
        if on && self.panes[f].newer_dropped {
            self.panes[f].follow = true;
            return vec![self.reload(f)];
        }
        let p = &mut self.panes[f];
        p.follow = on;
        if on {
            p.select_last();
        }
        Vec::new()
    }

    /// Asks for older entries when the focused pane shows its first rows (after a scroll
    /// key: pages that arrive never ask for more on their own, but with a filter on a key
    /// may fetch up to [`FILTER_PAGES`] pages while the filter lets too few through).
    fn more_if_near_top(&mut self) -> Vec<Effect> {
        let f = self.focus;
        let p = &mut self.panes[f];
        if !p.wants_older() {
            return Vec::new();
        }
        let filtering = p.filter.is_some();
        p.older_budget = if filtering { FILTER_PAGES } else { 1 };
        let fx = vec![Self::load_older(p, f)];
        if filtering {
            self.say(SEARCHING, false);
        }
        fx
    }

    /// The effect that fetches a pane's next page of older entries.
    fn load_older(p: &mut Pane, pane: usize) -> Effect {
        p.loading_older = true;
        Effect::LoadOlder {
            pane,
            before: p.resume_before(),
            max: p.page_size(),
        }
    }

    /// A page of older entries arrived in pane `i` (no jump going on): with a filter on and
    /// pages left for the last scroll key, the next one while the filter shows too few.
    fn older_arrived(&mut self, i: usize) -> Vec<Effect> {
        let p = &mut self.panes[i];
        p.older_budget = p.older_budget.saturating_sub(1);
        if p.filter.is_some() && p.older_budget > 0 && p.wants_older() {
            return vec![Self::load_older(p, i)];
        }
        let more = p.filter.is_some() && p.wants_older();
        if self.status.as_ref().is_some_and(|s| s.text == SEARCHING) {
            if more {
                self.say(
                    "no more matches in the pages searched: k, PgUp or g searches further",
                    false,
                );
            } else {
                self.status = None;
            }
        }
        Vec::new()
    }

    fn open_prompt(&mut self, kind: PromptKind) {
        self.prompt = Some(Prompt {
            kind,
            text: String::new(),
            before: self.pane().filter.clone(),
        });
        if kind == PromptKind::Filter {
            let text = self
                .pane()
                .filter
                .as_ref()
                .map(|f| f.text.clone())
                .unwrap_or_default();
            if let Some(p) = self.prompt.as_mut() {
                p.text = text;
            }
        }
    }

    /// Types a character into the prompt (the filter applies at once; the search jumps to
    /// its first match from the selection).
    pub(crate) fn prompt_char(&mut self, c: char) {
        if let Some(p) = self.prompt.as_mut() {
            p.text.push(c);
        }
        self.prompt_changed();
    }

    /// Deletes the prompt's last character (Ctrl-U: everything).
    pub(crate) fn prompt_backspace(&mut self, all: bool) {
        if let Some(p) = self.prompt.as_mut() {
            if all {
                p.text.clear();
            } else {
                p.text.pop();
            }
        }
        self.prompt_changed();
    }

    fn prompt_changed(&mut self) {
        let Some(p) = self.prompt.clone() else {
            return;
        };
        match p.kind {
            PromptKind::Filter => self.pane_mut().set_filter(Pattern::new(&p.text)),
            PromptKind::Search => {
                let s = Pattern::new(&p.text);
                let pane = self.pane_mut();
                pane.search = s.clone();
                if let Some(s) = s {
                    let here = pane.selected().is_some_and(|i| s.matches(&i.entry));
                    if !here && !pane.jump(true, |i| s.matches(&i.entry)) {
                        pane.jump(false, |i| s.matches(&i.entry));
                    }
                }
            }
            _ => {}
        }
    }

    /// Enter at the prompt.
    pub(crate) fn prompt_enter(&mut self) -> Vec<Effect> {
        let Some(p) = self.prompt.take() else {
            return Vec::new();
        };
        match p.kind {
            PromptKind::Filter => {
                let p = self.pane();
                if p.filter.is_some() && p.wants_older() && p.len() < p.height {
                    self.tell("k, PgUp or g searches older entries", false);
                }
                Vec::new()
            }
            PromptKind::Search => Vec::new(),
            PromptKind::Query => {
                let pane = self.focus;
                let era = self.new_era();
                self.panes[pane].pending = Some((era, p.text.clone()));
                vec![Effect::Query {
                    pane,
                    era,
                    query: p.text,
                }]
            }
            PromptKind::Time => vec![Effect::JumpTime(p.text)],
            PromptKind::Save => match &self.detail {
                Some(d) if !p.text.trim().is_empty() => {
                    let home = std::env::var_os("HOME").map(PathBuf::from);
                    let path = expand_home(p.text.trim(), home.as_deref());
                    vec![Effect::Save(path, d.json.clone())]
                }
                _ => Vec::new(),
            },
        }
    }

    /// Esc at the prompt: the filter goes back to what it was.
    pub(crate) fn prompt_cancel(&mut self) {
        if let Some(p) = self.prompt.take() {
            match p.kind {
                PromptKind::Filter => self.pane_mut().set_filter(p.before),
                PromptKind::Search => self.pane_mut().search = None,
                _ => {}
            }
        }
    }

    /// The detail pane's keys; `false` for keys it leaves to the log view.
    fn detail_act(&mut self, a: Action) -> bool {
        let Some(d) = self.detail.as_mut() else {
            return false;
        };
        let page = d.height.max(2) - 1;
        let last = d.lines.len().saturating_sub(1);
        match a {
            Action::Down | Action::WheelDown => d.scroll = (d.scroll + 1).min(last),
            Action::Up | Action::WheelUp => d.scroll = d.scroll.saturating_sub(1),
            Action::PageDown => d.scroll = (d.scroll + page).min(last),
            Action::PageUp => d.scroll = d.scroll.saturating_sub(page),
            Action::Top => d.scroll = 0,
            Action::Bottom => d.scroll = last,
            Action::Detail | Action::Escape => {
                self.detail = None;
                if let Some((pane, cursor)) = self.detail_paused.take()
                    && let Some(p) = self.panes.get_mut(pane)
                    && p.cursor == cursor
                    && !p.newer_dropped
                {
                    p.follow = true;
                    p.select_last();
                }
            }
            Action::Copy | Action::CopyJson => {}
            Action::Save => {
                let text = save_name(d.ts);
                self.prompt = Some(Prompt {
                    kind: PromptKind::Save,
                    text,
                    before: None,
                });
            }
            _ => return false,
        }
        true
    }

    fn detail_effects(&mut self, a: Action) -> Vec<Effect> {
        match (a, &self.detail) {
            (Action::Copy, Some(d)) => vec![Effect::Copy(d.payload.clone())],
            (Action::CopyJson, Some(d)) => vec![Effect::Copy(d.json.clone())],
            _ => Vec::new(),
        }
    }

    fn open_detail(&mut self) {
        let zone = self.zone;
        match self.pane().selected() {
            Some(i) => self.detail = Some(detail_of(&i.full(), zone)),
            None => self.tell("no entry selected", false),
        }
    }

    /// The pane a source generation belongs to (its data, or a query replacing it).
    fn pane_of(&self, era: u64) -> Option<usize> {
        self.panes
            .iter()
            .position(|p| p.era == era || p.pending.as_ref().is_some_and(|x| x.0 == era))
    }

    /// Selects the first entry at or after `ns` in the focused pane; older than what is held,
    /// older entries are fetched until it is reached.
    pub(crate) fn jump_to(&mut self, ns: i64) -> Vec<Effect> {
        let f = self.focus;
        let p = &mut self.panes[f];
        p.jump_to_time(ns);
        let oldest = p.row(0).map(|i| i.entry.timestamp_ns);
        if oldest.is_some_and(|o| o > ns) && !p.history_done {
            p.jump_target = Some(ns);
            let fx = if p.loading_older {
                Vec::new()
            } else {
                vec![Self::load_older(p, f)]
            };
            self.say("fetching older entries to reach that time…", false);
            return fx;
        }
        Vec::new()
    }

    /// Applies data from a source; returns what the loop must do next. Data is matched to
    /// its pane by the source's generation (panes come and go; stale data is dropped).
    pub(crate) fn apply(&mut self, m: Msg) -> Vec<Effect> {
        match m {
            Msg::Opened { era, .. } => {
                let Some(p) = self.pane_of(era).map(|i| &mut self.panes[i]) else {
                    return Vec::new();
                };
                if let Some((g, q)) = p.pending.take_if(|(g, _)| *g == era) {
                    p.era = g;
                    p.query = q.trim().to_owned();
                    p.clear();
                } else if p.phase == Phase::Opening {
                    p.phase = Phase::Loading;
                }
            }
            Msg::Failed { era, error, .. } => {
                let Some(i) = self.pane_of(era) else {
                    return Vec::new();
                };
                let p = &mut self.panes[i];
                let kept = if p.pending.take_if(|(g, _)| *g == era).is_some() && p.era != era {
                    format!(" (pane {} keeps {:?})", i + 1, p.query)
                } else {
                    String::new()
                };
                self.say(format!("{error}{kept}"), true);
            }
            Msg::Older {
                era,
                entries,
                done,
                failed,
                ..
            } => {
                if let Some(i) = self.pane_of(era).filter(|&i| self.panes[i].era == era) {
                    let p = &mut self.panes[i];
                    p.push_older(entries, done);
                    self.failed(i, &failed);
                    let p = &mut self.panes[i];
                    if let Some(t) = p.jump_target {
                        p.jump_to_time(t);
                        let short = p.row(0).is_some_and(|r| r.entry.timestamp_ns > t);
                        if short && !p.history_done && !p.newer_dropped {
                            return vec![Self::load_older(p, i)];
                        }
                        p.jump_target = None;
                        p.older_budget = 0;
                        if short && p.newer_dropped {
                            let held = p.held();
                            self.say(
                                format!(
                                    "stopped at the scrollback ({} entries): the time is older \
                                     than what the pane can hold",
                                    super::view::thousands(held as u64)
                                ),
                                false,
                            );
                        } else if short {
                            self.say("no entries that old: the oldest is selected", false);
                        } else {
                            self.status = None;
                        }
                        return Vec::new();
                    }
                    return self.older_arrived(i);
                }
            }
            Msg::Live {
                era,
                entries,
                failed,
                ..
            } => {
                if let Some(i) = self.pane_of(era).filter(|&i| self.panes[i].era == era) {
                    self.panes[i].push_live(entries);
                    self.failed(i, &failed);
                }
            }
            Msg::Notice {
                era, text, error, ..
            } => {
                if let Some(i) = self.pane_of(era) {
                    if error {
                        self.panes[i].loading_older = false;
                    }
                    let prefix = if self.panes.len() > 1 {
                        format!("pane {}: ", i + 1)
                    } else {
                        String::new()
                    };
                    self.say(format!("{prefix}{text}"), error);
                }
            }
        }
        Vec::new()
    }

    fn failed(&mut self, pane: usize, failed: &[String]) {
        if let Some(first) = failed.first() {
            self.panes[pane].failed_records += failed.len() as u64;
            let n = self.panes[pane].failed_records;
            self.say(
                format!("{n} record(s) could not be opened and are not shown: {first}"),
                true,
            );
        }
    }
}

/// The file name the save prompt suggests for an entry of time `ns`:
/// `entry-20261120T104200.123Z.json` (UTC, sortable, no `:` for other systems' sake).
pub(crate) fn save_name(ns: i64) -> String {
    let t = crate::output::short_time(ns).replace(['-', ':'], "");
    format!("entry-{t}.json")
}

/// A path typed at the save prompt, `~` and `~/…` meaning the home directory `home`.
pub(crate) fn expand_home(typed: &str, home: Option<&std::path::Path>) -> PathBuf {
    match (typed.strip_prefix('~'), home) {
        (Some(""), Some(h)) => h.to_path_buf(),
        (Some(rest), Some(h)) if rest.starts_with('/') => h.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(typed),
    }
}

/// The detail pane's lines for an entry: every field, metadata, and the payload (JSON
/// pretty-printed), control characters escaped.
pub(crate) fn detail_of(e: &EntryView, zone: Zone) -> Detail {
    use crate::output::clean;
    let mut lines = vec![
        format!(
            "time         {}",
            crate::output::zoned_time(e.timestamp_ns, zone)
        ),
        format!("level        {} ({})", e.level.name(), e.level.number()),
        format!("type         {}", e.entry_type.name()),
        format!("source       {}", clean(&e.source)),
        format!("payload_type {}", clean(&e.payload_type)),
    ];
    for (k, v) in &e.metadata {
        lines.push(format!("metadata.{} = {}", clean(k), clean(v)));
    }
    for (k, v) in &e.fields {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        lines.push(format!("fields.{} = {}", clean(k), clean(&v)));
    }
    lines.push(String::new());
    lines.push(format!("payload ({} bytes):", e.payload.len()));
    let pretty = match serde_json::from_str::<serde_json::Value>(&e.payload) {
        Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            serde_json::to_string_pretty(&v).ok()
        }
        _ => None,
    };
    let body = pretty.as_deref().unwrap_or(&e.payload);
    // Long lines in chunks: the pane pages through a 1 MB payload a screen at a time.
    for l in body.split('\n') {
        let l = clean(l.trim_end_matches('\r'));
        let chars: Vec<char> = l.chars().collect();
        if chars.is_empty() {
            lines.push(String::new());
        }
        for c in chars.chunks(DETAIL_CHUNK) {
            lines.push(c.iter().collect());
        }
    }
    Detail {
        lines,
        scroll: 0,
        height: 10,
        json: serde_json::to_string_pretty(&e.to_json()).unwrap_or_default(),
        ts: e.timestamp_ns,
        payload: e.payload.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_proto::Entry;

    pub(crate) fn entry(ts: i64, level: Level, payload: &str) -> EntryView {
        Entry::new(ts, level, "api", payload).into()
    }

    fn pane_with(n: i64, cap: usize) -> Pane {
        let mut p = Pane::new("", cap, 1);
        p.height = 10;
        p.push_older(
            (0..n)
                .rev()
                .map(|i| entry(i * 1_000_000_000, Level::Info, &format!("m{i}")))
                .collect(),
            true,
        );
        p
    }

    fn payloads(p: &Pane) -> Vec<String> {
        (0..p.len())
            .filter_map(|i| p.row(i).map(|r| r.entry.payload.clone()))
            .collect()
    }

    #[test]
    fn history_pages_go_on_top_and_live_entries_at_the_bottom() {
        let mut p = pane_with(3, 100);
        assert_eq!(payloads(&p), ["m0", "m1", "m2"]);
        assert_eq!(p.cursor, 2, "the newest is selected while following");
        p.push_live(vec![entry(5_000_000_000, Level::Info, "live")]);
        assert_eq!(p.cursor, 3);
        p.move_by(-2);
        assert!(!p.follow, "scrolling up pauses following");
        p.push_older(vec![entry(-1, Level::Info, "older")], false);
        assert_eq!(payloads(&p)[0], "older");
        // The same entry stays selected when a page goes on top.
        assert_eq!(p.selected().unwrap().entry.payload, "m1");
        p.push_live(vec![entry(6_000_000_000, Level::Info, "later")]);
        assert_eq!(p.selected().unwrap().entry.payload, "m1");
    }

    #[test]
    fn the_scrollback_drops_the_oldest_and_remembers_where_to_fetch_again() {
        let mut p = pane_with(5, 5);
        assert!(!p.older_dropped);
        p.push_live(vec![
            entry(10_000_000_000, Level::Info, "a"),
            entry(11_000_000_000, Level::Info, "b"),
        ]);
        assert_eq!(p.held(), 5);
        assert_eq!(payloads(&p), ["m2", "m3", "m4", "a", "b"]);
        assert!(p.older_dropped);
        assert_eq!(p.resume_before(), Some(2_000_000_000));
        // Scrolling back past the scrollback drops the newest instead.
        p.move_by(-10);
        p.push_older(vec![entry(1_000_000_000, Level::Info, "m1")], false);
        assert_eq!(payloads(&p), ["m1", "m2", "m3", "m4", "a"]);
        assert!(p.newer_dropped && !p.follow);
        p.push_live(vec![entry(12_000_000_000, Level::Info, "c")]);
        assert_eq!(
            p.held(),
            5,
            "live entries wait while newer ones are dropped"
        );
    }

    #[test]
    fn dropping_takes_every_entry_of_the_boundary_time() {
        let mut p = Pane::new("", 2, 1);
        p.push_live(vec![
            entry(1, Level::Info, "a"),
            entry(1, Level::Info, "b"),
            entry(2, Level::Info, "c"),
        ]);
        assert_eq!(payloads(&p), ["c"]);
        assert_eq!(p.resume_before(), Some(2));
    }

    #[test]
    fn the_filter_applies_to_what_is_held_and_to_new_entries_and_keeps_the_selection() {
        let mut p = pane_with(20, 100);
        p.move_by(-5); // m14
        p.set_filter(Pattern::new("M1"));
        // Smart case: upper case makes it case-sensitive; nothing matches.
        assert!(p.is_empty());
        p.set_filter(Pattern::new("m1"));
        assert_eq!(payloads(&p).len(), 11); // m1, m10..m19
        assert_eq!(p.selected().unwrap().entry.payload, "m14");
        p.push_live(vec![
            entry(100, Level::Info, "m100"),
            entry(101, Level::Info, "x"),
        ]);
        assert_eq!(payloads(&p).last().unwrap(), "m100");
        p.set_filter(None);
        assert_eq!(p.len(), 22);
        assert_eq!(p.selected().unwrap().entry.payload, "m14");
        // Not a valid expression: taken literally.
        p.set_filter(Pattern::new("m1("));
        assert!(p.is_empty());
    }

    #[test]
    fn error_jumps_and_marks_move_between_entries() {
        let mut m = Model::new(&[String::new()], 100, Zone::Utc);
        m.panes[0].height = 5;
        m.apply(Msg::Older {
            era: 1,
            entries: vec![
                entry(4, Level::Info, "d"),
                entry(3, Level::Error, "c"),
                entry(2, Level::Info, "b"),
                entry(1, Level::Critical, "a"),
            ],
            done: true,
            failed: vec![],
        });
        assert_eq!(m.pane().cursor, 3);
        m.act(Action::PrevError);
        assert_eq!(m.pane().selected().unwrap().entry.payload, "c");
        assert!(!m.pane().follow);
        m.act(Action::PrevError);
        assert_eq!(m.pane().selected().unwrap().entry.payload, "a");
        m.act(Action::PrevError);
        assert!(m.status.as_ref().unwrap().text.contains("no error before"));
        m.act(Action::NextError);
        assert_eq!(m.pane().selected().unwrap().entry.payload, "c");
        m.act(Action::Mark);
        m.act(Action::Top);
        m.act(Action::Mark);
        m.act(Action::NextMark);
        assert_eq!(m.pane().selected().unwrap().entry.payload, "c");
        m.act(Action::PrevMark);
        assert_eq!(m.pane().selected().unwrap().entry.payload, "a");
    }

    #[test]
    fn a_key_s_answer_is_cleared_by_the_next_key() {
        let mut m = model_with(10, 100, 5);
        m.act(Action::NextMark);
        assert!(m.status.as_ref().unwrap().text.contains("no other mark"));
        m.act(Action::Mark);
        m.act(Action::Up);
        m.act(Action::NextMark);
        assert_eq!(m.status, None, "the mark was found: no stale message");
        m.tell("saving to /nope/x.json: No such file or directory", true);
        m.act(Action::Down);
        assert_eq!(m.status, None, "the save error goes with the next action");
        // News from a source stays.
        m.say("live stream interrupted; reconnecting", true);
        m.act(Action::Down);
        assert!(m.status.is_some());
    }

    #[test]
    fn the_detail_pauses_following_and_saves_to_a_suggested_name() {
        let mut m = model_with(10, 100, 5);
        assert!(m.pane().follow);
        m.act(Action::Detail);
        assert!(!m.pane().follow, "the detail's entry stays selected");
        m.apply(Msg::Live {
            era: 1,
            entries: vec![entry(100_000_000_000, Level::Info, "live")],
            failed: vec![],
        });
        assert_eq!(m.pane().selected().unwrap().entry.payload, "m9");
        // Closed on the same entry, following resumes (to the newest).
        m.act(Action::Escape);
        assert!(m.pane().follow);
        assert_eq!(m.pane().selected().unwrap().entry.payload, "live");
        // Moved to another entry meanwhile: it stays paused.
        if let Some(i) = m.panes[0].row_mut(3) {
            i.marked = true;
        }
        m.act(Action::Detail);
        m.act(Action::PrevMark);
        m.act(Action::Detail);
        assert_eq!(m.pane().selected().unwrap().entry.payload, "m3");
        assert!(!m.pane().follow);
        m.act(Action::Detail);
        m.act(Action::Save);
        assert_eq!(
            m.prompt.as_ref().unwrap().text,
            "entry-19700101T000003.000Z.json"
        );
        let home = std::path::Path::new("/home/u");
        assert_eq!(
            expand_home("~/logs/e.json", Some(home)),
            home.join("logs/e.json")
        );
        assert_eq!(expand_home("~", Some(home)), home);
        assert_eq!(
            expand_home("~other/x", Some(home)),
            PathBuf::from("~other/x")
        );
        assert_eq!(expand_home("e.json", Some(home)), PathBuf::from("e.json"));
    }

    #[test]
    fn titles_are_trimmed_and_closing_a_pane_closes_its_detail() {
        let mut m = Model::new(&[String::new(), " -l err ".to_owned()], 100, Zone::Utc);
        assert_eq!(m.panes[1].query, "-l err");
        m.focus = 1;
        m.apply(Msg::Older {
            era: 2,
            entries: vec![entry(1, Level::Error, "x")],
            done: true,
            failed: vec![],
        });
        m.act(Action::Detail);
        assert!(m.detail.is_some());
        m.act(Action::ClosePane);
        assert!(m.detail.is_none());
    }

    #[test]
    fn search_jumps_as_typed_and_n_goes_on() {
        let mut m = Model::new(&[String::new()], 100, Zone::Utc);
        let entries = (0..10)
            .rev()
            .map(|i| entry(i, Level::Info, if i % 3 == 0 { "hit" } else { "miss" }))
            .collect();
        m.apply(Msg::Older {
            era: 1,
            entries,
            done: true,
            failed: vec![],
        });
        m.act(Action::Top);
        m.act(Action::Search);
        for c in "hit".chars() {
            m.prompt_char(c);
        }
        m.prompt_enter();
        assert_eq!(m.pane().cursor, 0);
        m.act(Action::NextMatch);
        assert_eq!(m.pane().cursor, 3);
        m.act(Action::NextMatch);
        assert_eq!(m.pane().cursor, 6);
        m.act(Action::PrevMatch);
        assert_eq!(m.pane().cursor, 3);
    }

    #[test]
    fn a_query_replaces_a_pane_only_once_opened_and_a_failure_keeps_the_old_one() {
        let mut m = Model::new(&["-a api".to_owned()], 100, Zone::Utc);
        m.apply(Msg::Opened { era: 1 });
        m.act(Action::EditQuery);
        assert_eq!(m.prompt.as_ref().unwrap().text, "-a api");
        m.prompt_backspace(true);
        for c in "-a nope".chars() {
            m.prompt_char(c);
        }
        let fx = m.prompt_enter();
        let Effect::Query { era, .. } = fx[0].clone() else {
            panic!("{fx:?}")
        };
        m.apply(Msg::Failed {
            era,
            error: "no application \"nope\"".into(),
        });
        assert_eq!(m.pane().query, "-a api");
        assert!(m.status.as_ref().unwrap().error);
        // Data of the old generation still counts; of an unknown one, not.
        m.apply(Msg::Live {
            era: 1,
            entries: vec![entry(1, Level::Info, "x")],
            failed: vec![],
        });
        m.apply(Msg::Live {
            era: 99,
            entries: vec![entry(1, Level::Info, "y")],
            failed: vec![],
        });
        assert_eq!(m.pane().held(), 1);
    }

    #[test]
    fn scrolling_to_the_top_asks_for_older_entries_once() {
        let mut m = Model::new(&[String::new()], 100, Zone::Utc);
        m.panes[0].height = 5;
        m.apply(Msg::Older {
            era: 1,
            entries: (0..20).rev().map(|i| entry(i, Level::Info, "x")).collect(),
            done: false,
            failed: vec![],
        });
        assert!(m.act(Action::Up).is_empty());
        let fx = m.act(Action::Top);
        assert_eq!(
            fx,
            [Effect::LoadOlder {
                pane: 0,
                before: None,
                max: 80,
            }]
        );
        assert!(m.act(Action::Down).is_empty(), "one request at a time");
    }

    /// A model with one pane of `height` rows, keeping `cap`, that received `n` entries
    /// (m0 … m{n-1}, a second apart) as its first page, with older ones left.
    fn model_with(n: i64, cap: usize, height: usize) -> Model {
        let mut m = Model::new(&[String::new()], cap, Zone::Utc);
        m.panes[0].height = height;
        m.apply(Msg::Older {
            era: 1,
            entries: (0..n)
                .rev()
                .map(|i| entry(i * 1_000_000_000, Level::Info, &format!("m{i}")))
                .collect(),
            done: false,
            failed: vec![],
        });
        m
    }

    fn older_page(from: i64, to: i64, payload: &str) -> Msg {
        Msg::Older {
            era: 1,
            entries: (from..to)
                .rev()
                .map(|i| entry(i * 1_000_000_000, Level::Info, payload))
                .collect(),
            done: false,
            failed: vec![],
        }
    }

    #[test]
    fn a_filter_fetches_older_pages_only_on_scroll_keys_and_a_few_at_a_time() {
        let mut m = model_with(100, 400, 10);
        m.act(Action::Filter);
        for c in "RARE".chars() {
            m.prompt_char(c);
        }
        // Enter fetches nothing (a rare filter would read the whole history), it says how.
        assert!(m.prompt_enter().is_empty());
        assert!(m.status.as_ref().unwrap().text.contains("searches older"));
        // Pages arriving ask for no more on their own, even with nothing shown.
        assert!(m.apply(older_page(-50, 0, "x")).is_empty());
        // A scroll key asks for a page, and with the filter on up to FILTER_PAGES of them.
        let fx = m.act(Action::Up);
        assert!(matches!(fx[..], [Effect::LoadOlder { .. }]), "{fx:?}");
        assert!(m.status.as_ref().unwrap().text.contains("Esc stops"));
        let mut pages = 1;
        let mut start = -50;
        while !m.apply(older_page(start - 10, start, "x")).is_empty() {
            start -= 10;
            pages += 1;
        }
        assert_eq!(pages, FILTER_PAGES);
        assert!(m.status.as_ref().unwrap().text.contains("no more matches"));
        // Esc stops a search on its way.
        m.act(Action::PageUp);
        m.act(Action::Escape);
        assert!(m.apply(older_page(start - 20, start - 10, "x")).is_empty());
        assert_eq!(
            m.pane().filter.as_ref().unwrap().text,
            "RARE",
            "the filter stays"
        );
    }

    #[test]
    fn following_never_drops_the_newest_entries() {
        // The repro: scrollback 400, a filter matching one entry held, then a live match.
        let mut m = model_with(400, 400, 10);
        m.apply(Msg::Live {
            era: 1,
            entries: vec![entry(500_000_000_000, Level::Info, "LIVE-WHILE one")],
            failed: vec![],
        });
        m.act(Action::Filter);
        for c in "LIVE-WHILE".chars() {
            m.prompt_char(c);
        }
        assert!(m.prompt_enter().is_empty());
        // A page that arrives while following (asked before) trims the oldest instead.
        m.apply(older_page(-300, -1, "old"));
        let p = m.pane();
        assert!(p.follow && !p.newer_dropped);
        assert_eq!(p.held(), 400);
        m.apply(Msg::Live {
            era: 1,
            entries: vec![entry(501_000_000_000, Level::Info, "LIVE-WHILE two")],
            failed: vec![],
        });
        assert_eq!(payloads(m.pane()), ["LIVE-WHILE one", "LIVE-WHILE two"]);
    }

    #[test]
    fn a_small_scrollback_still_follows_and_scrolls_back_a_page_at_a_time() {
        // The first page (300) is larger than the scrollback (100): the newest stay.
        let mut m = model_with(300, 100, 10);
        let p = m.pane();
        assert!(p.follow && !p.newer_dropped);
        assert_eq!(payloads(p).last().unwrap(), "m299");
        assert_eq!(p.held(), 100);
        assert_eq!(p.resume_before(), Some(200_000_000_000));
        m.apply(Msg::Live {
            era: 1,
            entries: vec![entry(400_000_000_000, Level::Info, "live")],
            failed: vec![],
        });
        assert_eq!(payloads(m.pane()).last().unwrap(), "live");
        // Scrolling back asks for half the scrollback, not a page that replaces it all.
        let fx = m.act(Action::Top);
        assert_eq!(
            fx,
            [Effect::LoadOlder {
                pane: 0,
                before: Some(201_000_000_000),
                max: 50
            }]
        );
        m.apply(older_page(151, 201, "older"));
        let p = m.pane();
        assert_eq!(p.held(), 100);
        assert_eq!(payloads(p)[0], "older");
        assert_eq!(payloads(p)[99], "m250", "the newer half is kept");
        assert!(p.newer_dropped && !p.follow);
    }

    #[test]
    fn t_says_when_it_stops_at_the_scrollback() {
        let mut m = model_with(100, 150, 10);
        let fx = m.jump_to(-1_000_000_000_000);
        assert!(
            matches!(fx[..], [Effect::LoadOlder { max: 75, .. }]),
            "{fx:?}"
        );
        // The first page fits; the second drops the newest: the jump stops there.
        let fx = m.apply(older_page(-50, 0, "a"));
        assert!(matches!(fx[..], [Effect::LoadOlder { .. }]), "{fx:?}");
        assert!(m.apply(older_page(-125, -50, "b")).is_empty());
        let s = m.status.clone().unwrap();
        assert!(
            s.text.contains("stopped at the scrollback (150 entries)"),
            "{s:?}"
        );
        assert!(m.pane().jump_target.is_none());
    }

    #[test]
    fn histogram_counts_follow_entries_in_and_out() {
        let mut p = pane_with(0, 3);
        p.push_live(vec![
            entry(0, Level::Error, "a"),
            entry(1_000_000_000, Level::Warning, "b"),
            entry(2_000_000_000, Level::Info, "c"),
            entry(3_000_000_000, Level::Debug, "d"),
        ]);
        let (b, range) = p.counts.buckets(3);
        assert_eq!(range, Some((1, 3)));
        assert_eq!(b, [[0, 1, 0], [0, 0, 1], [0, 0, 1]]);
    }

    #[test]
    fn the_detail_escapes_control_characters_and_pretty_prints_json() {
        let d = detail_of(
            &entry(0, Level::Info, "{\"a\":\"\\u001b[2J\",\"b\":1}"),
            Zone::Utc,
        );
        let text = d.lines.join("\n");
        assert!(text.contains("  \"b\": 1"), "{text}");
        assert!(!text.contains('\x1b'));
        let d = detail_of(&entry(0, Level::Info, "red \x1b[31m\x07 text"), Zone::Utc);
        let text = d.lines.join("\n");
        assert!(text.contains("red \\u{1b}[31m\\u{7} text"), "{text}");
    }
}
