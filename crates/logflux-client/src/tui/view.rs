//! Drawing the model with ratatui: panes (a bordered log view each, the focused one's detail
//! below its rows), the histogram strip, the status line or prompt, and the help overlay.
//!
//! Only the rows on screen are formatted, each cut to what the screen can show before it is
//! escaped and highlighted: a frame costs the same with 100 000 entries held as with 100,
//! and a 1 MB payload costs a screen's width of it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use logflux_proto::Level;

use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};

use super::highlight::Highlighter;
use super::keys::help_lines;
use super::model::{Item, Model, Pane, Pattern, Phase, Split};
use crate::output::{Zone, level_label, zoned_time};

/// Rows of the histogram strip.
const STRIP_ROWS: u16 = 4;
/// Most screen lines one entry takes with wrap on.
const MAX_WRAPPED: usize = 12;
/// Width of the source column.
const SOURCE_WIDTH: usize = 14;

/// The colour of a level.
pub(crate) fn level_style(l: Level) -> Style {
    match l {
        Level::Emergency | Level::Alert | Level::Critical => {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        }
        Level::Error => Style::new().fg(Color::Red),
        Level::Warning => Style::new().fg(Color::Yellow),
        Level::Notice => Style::new().fg(Color::Cyan),
        Level::Info => Style::new().fg(Color::Green),
        Level::Debug => Style::new().fg(Color::DarkGray),
    }
}

/// Draws the whole screen; records each pane's height in rows (for paging).
pub(crate) fn draw(f: &mut Frame<'_>, m: &mut Model, hl: &Highlighter) {
    let area = f.area();
    let strip = if m.histogram && area.height > 12 {
        STRIP_ROWS
    } else {
        0
    };
    let [panes, hist, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(strip),
        Constraint::Length(1),
    ])
    .areas(area);
    let n = m.panes.len() as u32;
    let constraints = (0..n).map(|_| Constraint::Ratio(1, n));
    let rects = match m.split {
        Split::Columns => Layout::horizontal(constraints).split(panes),
        Split::Stacked => Layout::vertical(constraints).split(panes),
    };
    for i in 0..m.panes.len() {
        draw_pane(f, m, i, rects[i], hl);
    }
    if strip > 0 {
        draw_strip(f, m, hist);
    }
    draw_status(f, m, status);
    if m.help {
        draw_help(f, m, area);
    }
}

fn draw_pane(f: &mut Frame<'_>, m: &mut Model, i: usize, area: Rect, hl: &Highlighter) {
    let focused = i == m.focus;
    let p = &m.panes[i];
    let mut title = vec![Span::raw(format!(
        " {}: {} ",
        i + 1,
        if p.query.trim().is_empty() {
            "everything".to_owned()
        } else {
            crate::output::clean(&p.query)
        }
    ))];
    let mut info = format!("· {} entries ", thousands(p.held() as u64));
    if let Some(flt) = &p.filter {
        info.push_str(&format!(
            "· /{} ({} shown) ",
            crate::output::clean(&flt.text),
            thousands(p.len() as u64)
        ));
    }
    if let Some(r) = pane_range(m, i) {
        info.push_str(&format!("· {r} "));
    }
    title.push(Span::styled(info, Style::new().fg(Color::Gray)));
    title.push(if p.follow && !p.newer_dropped {
        Span::styled(" FOLLOW ", Style::new().fg(Color::Black).bg(Color::Green))
    } else {
        Span::styled(" PAUSED ", Style::new().fg(Color::Black).bg(Color::Yellow))
    });
    let border = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(border);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let (list, detail) = if focused && m.detail.is_some() && inner.height > 6 {
        let [a, b] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(inner);
        (a, Some(b))
    } else {
        (inner, None)
    };
    m.panes[i].height = usize::from(list.height).max(1);
    draw_rows(f, m, i, list, hl, focused);
    if let Some(d) = detail {
        draw_detail(f, m, d);
    }
}

/// The pane's rows, from its first shown row down; the selection is kept on screen.
fn draw_rows(
    f: &mut Frame<'_>,
    m: &mut Model,
    i: usize,
    area: Rect,
    hl: &Highlighter,
    focused: bool,
) {
    let width = usize::from(area.width);
    let height = usize::from(area.height);
    if m.panes[i].is_empty() {
        let p = &m.panes[i];
        let text = match (p.phase, &p.filter) {
            (Phase::Opening, _) => "connecting…".to_owned(),
            (Phase::Loading, _) => "loading…".to_owned(),
            (Phase::Ready, Some(flt)) if p.held() > 0 => format!(
                "no entry held matches /{} (Esc clears the filter)",
                crate::output::clean(&flt.text)
            ),
            (Phase::Ready, _) => "no entries yet: new ones appear here as they arrive".to_owned(),
        };
        f.render_widget(
            Paragraph::new(Line::styled(text, Style::new().fg(Color::DarkGray))),
            area,
        );
        return;
    }
    let ctx = RowCtx {
        columns: m.columns,
        zone: m.zone,
        hscroll: m.hscroll,
        wrap: m.wrap,
        width,
        hl,
    };
    // With wrap, an entry can take several lines: move the first row down until the
    // selection fits (bounded by the screen's height).
    let mut lines: Vec<Line<'static>>;
    loop {
        let p = &m.panes[i];
        lines = Vec::with_capacity(height);
        let mut cursor_end = None;
        let mut r = p.top;
        while lines.len() < height {
            let Some(item) = p.row(r) else { break };
            let selected = r == p.cursor;
            let mut rows = ctx.row(item, p.search.as_ref());
            if selected {
                let sel = if focused {
                    Style::new().bg(Color::DarkGray)
                } else {
                    Style::new().add_modifier(Modifier::UNDERLINED)
                };
                rows = rows.into_iter().map(|l| l.patch_style(sel)).collect();
            }
            lines.extend(rows);
            if selected {
                cursor_end = Some(lines.len());
            }
            r += 1;
        }
        let p = &mut m.panes[i];
        match cursor_end {
            Some(end) if end > height && p.top < p.cursor => p.top += 1,
            None if p.cursor >= r && p.top < p.cursor => p.top += 1,
            _ => break,
        }
    }
    lines.truncate(height);
    f.render_widget(Paragraph::new(lines), area);
}

/// What formatting a row needs.
struct RowCtx<'a> {
    columns: super::model::Columns,
    zone: Zone,
    hscroll: usize,
    wrap: bool,
    width: usize,
    hl: &'a Highlighter,
}

impl RowCtx<'_> {
    /// An entry's screen lines: mark, time, level, source, then the message (cut to the
    /// screen, escaped, highlighted; wrapped when wrap is on).
    fn row(&self, item: &Item, search: Option<&Pattern>) -> Vec<Line<'static>> {
        let e = &item.entry;
        let mut spans = Vec::with_capacity(8);
        spans.push(if item.marked {
            Span::styled("▌", Style::new().fg(Color::Magenta))
        } else {
            Span::raw(" ")
        });
        let mut prefix = 1;
        if self.columns.time {
            let t = zoned_time(e.timestamp_ns, self.zone);
            // HH:MM:SS.mmm of the RFC 3339 time (the date is in the detail and the strip).
            let hms = t.get(11..23).unwrap_or(&t).to_owned();
            prefix += hms.chars().count() + 1;
            spans.push(Span::styled(hms, Style::new().fg(Color::DarkGray)));
            spans.push(Span::raw(" "));
        }
        if self.columns.level {
            spans.push(Span::styled(
                format!("{:<6}", level_label(e.level)),
                level_style(e.level),
            ));
            spans.push(Span::raw(" "));
            prefix += 7;
        }
        if self.columns.source {
            let src = cut(&screen_text(&e.source, SOURCE_WIDTH + 1), SOURCE_WIDTH);
            let pad = SOURCE_WIDTH.saturating_sub(src.width());
            spans.push(Span::styled(
                format!("{src}{}", " ".repeat(pad)),
                Style::new().fg(Color::Blue),
            ));
            spans.push(Span::raw(" "));
            prefix += SOURCE_WIDTH + 1;
        }
        let room = self.width.saturating_sub(prefix).max(1);
        let lines = if self.wrap { MAX_WRAPPED } else { 1 };
        let budget = self.hscroll + room * lines;
        let text = screen_text(&e.payload, budget);
        let text = take_cells(text.chars().skip(self.hscroll), room * lines);
        spans.extend(styled(&text, self.hl, search));
        let line = Line::from(spans);
        if self.wrap {
            wrap(line, self.width, prefix)
        } else {
            vec![line]
        }
    }
}

/// The first `max` characters of `s` as the screen may show them: control and bidi
/// characters escaped (`\u{1b}`, a lone `\r` as `\u{d}`), line breaks (`\n`, `\r\n`) as
/// `⏎`, tabs as a space. Never looks past `max` characters of the input.
pub(crate) fn screen_text(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(max.min(s.len()) + 8);
    let mut chars = s.chars().take(max).peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push('⏎'),
            // The \r of a CRLF is part of the line break.
            '\r' if chars.peek() == Some(&'\n') => {}
            '\t' => out.push(' '),
            c if crate::output::unsafe_char(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Cells a character takes on the screen (wide characters two, combining ones none).
fn cells(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// The leading characters of `chars` that fit in `n` cells.
fn take_cells(chars: impl Iterator<Item = char>, n: usize) -> String {
    let mut used = 0;
    chars
        .take_while(|&c| {
            used += cells(c);
            used <= n
        })
        .collect()
}

/// `s` in at most `n` cells: cut with `…` when longer.
fn cut(s: &str, n: usize) -> String {
    if s.width() > n {
        let mut t = take_cells(s.chars(), n.saturating_sub(1));
        t.push('…');
        t
    } else {
        s.to_owned()
    }
}

/// `s` in pieces of at most `width` cells each (at least one character each).
pub(crate) fn split_cells(s: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = cells(c);
        if used + w > width && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        cur.push(c);
        used += w;
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// `text` in spans: highlight rules, then search matches over them.
fn styled(text: &str, hl: &Highlighter, search: Option<&Pattern>) -> Vec<Span<'static>> {
    let marks = hl.spans(text);
    let found: Vec<std::ops::Range<usize>> = search
        .map(|s| {
            s.re.find_iter(text)
                .map(|m| m.range())
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut cuts: Vec<usize> = vec![0, text.len()];
    for (r, _) in &marks {
        cuts.extend([r.start, r.end]);
    }
    for r in &found {
        cuts.extend([r.start, r.end]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let hit = Style::new().fg(Color::Black).bg(Color::Yellow);
    // Both lists are sorted and not overlapping: one pass over each as the pieces go by.
    let (mut fi, mut mi) = (0, 0);
    cuts.windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0], w[1]);
            let piece = text.get(a..b)?;
            while found.get(fi).is_some_and(|r| r.end <= a) {
                fi += 1;
            }
            while marks.get(mi).is_some_and(|(r, _)| r.end <= a) {
                mi += 1;
            }
            let style = if found.get(fi).is_some_and(|r| r.start <= a && b <= r.end) {
                hit
            } else {
                marks
                    .get(mi)
                    .filter(|(r, _)| r.start <= a && b <= r.end)
                    .map_or(Style::new(), |(_, s)| *s)
            };
            Some(Span::styled(piece.to_owned(), style))
        })
        .collect()
}

/// Splits a line into screen lines of `width` cells, continuation lines indented by
/// `indent`.
fn wrap(line: Line<'static>, width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(indent + 8);
    let mut out = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in line.spans {
        let style = span.style;
        let mut piece = String::new();
        for c in span.content.chars() {
            if used + cells(c) > width && used > indent {
                if !piece.is_empty() {
                    cur.push(Span::styled(std::mem::take(&mut piece), style));
                }
                out.push(Line::from(std::mem::take(&mut cur)));
                cur.push(Span::raw(" ".repeat(indent)));
                used = indent;
            }
            piece.push(c);
            used += cells(c);
        }
        if !piece.is_empty() {
            cur.push(Span::styled(piece, style));
        }
    }
    if !cur.is_empty() {
        out.push(Line::from(cur));
    }
    out.truncate(MAX_WRAPPED);
    out
}

fn draw_detail(f: &mut Frame<'_>, m: &mut Model, area: Rect) {
    let Some(d) = m.detail.as_mut() else { return };
    let block = Block::bordered()
        .title(" entry · y copy payload · Y copy JSON · w save · Enter/Esc close ")
        .border_style(Style::new().fg(Color::Cyan));
    let inner = block.inner(area);
    f.render_widget(Clear, area);
    f.render_widget(block, area);
    d.height = usize::from(inner.height);
    let width = usize::from(inner.width).max(1);
    let mut lines = Vec::new();
    for l in d.lines.iter().skip(d.scroll) {
        if lines.len() >= d.height {
            break;
        }
        // Each stored line is at most a chunk long: wrapping it costs little.
        for piece in split_cells(l, width) {
            lines.push(Line::raw(piece));
        }
    }
    lines.truncate(d.height);
    f.render_widget(Paragraph::new(lines), inner);
}

/// The histogram strip: entries held by the focused pane, counted by level in buckets over
/// their time range.
fn draw_strip(f: &mut Frame<'_>, m: &Model, area: Rect) {
    let p: &Pane = m.pane();
    let label = 7usize;
    let n = usize::from(area.width).saturating_sub(label).max(1);
    let (buckets, range) = p.counts.buckets(n);
    let total = |k: usize| buckets.iter().map(|b| b[k]).sum::<u64>();
    let head = match range {
        Some((lo, hi)) => format!(
            "{} … {}   errors {}  warnings {}  other {}",
            zoned_time(lo.saturating_mul(1_000_000_000), m.zone),
            zoned_time(hi.saturating_mul(1_000_000_000), m.zone),
            thousands(total(0)),
            thousands(total(1)),
            thousands(total(2)),
        ),
        None => "no entries held".to_owned(),
    };
    let mut lines = vec![Line::styled(
        format!("{:<label$}{head}", "levels"),
        Style::new().fg(Color::Gray),
    )];
    for (k, (name, color)) in [
        ("err", Color::Red),
        ("warn", Color::Yellow),
        ("other", Color::Green),
    ]
    .into_iter()
    .enumerate()
    {
        let max = buckets.iter().map(|b| b[k]).max().unwrap_or(0).max(1);
        let bars: String = buckets.iter().map(|b| bar(b[k], max)).collect();
        lines.push(Line::from(vec![
            Span::styled(format!("{name:<label$}"), Style::new().fg(Color::Gray)),
            Span::styled(bars, Style::new().fg(color)),
        ]));
    }
    f.render_widget(Paragraph::new(lines), area);
}

/// One column of a bar chart: eighths of a cell.
fn bar(v: u64, max: u64) -> char {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if v == 0 {
        return ' ';
    }
    let i = (v * 8).div_ceil(max).clamp(1, 8);
    BARS[i as usize]
}

/// The time range pane `i` shows, when the range keys chose one: `last 1m`, or `its own
/// -S/-U` when its query sets times (the keys leave those be).
fn pane_range(m: &Model, i: usize) -> Option<String> {
    let r = m.range?;
    let q = &m.panes.get(i)?.query;
    Some(if super::own_times(q) {
        "its own -S/-U".to_owned()
    } else {
        format!("last {r}")
    })
}

fn draw_status(f: &mut Frame<'_>, m: &Model, area: Rect) {
    let right = format!(
        " pane {}/{} · {} · ? help ",
        m.focus + 1,
        m.panes.len(),
        pane_range(m, m.focus).unwrap_or_else(|| "all time".to_owned())
    );
    let rw = (right.chars().count() as u16).min(area.width / 2);
    let [left_a, right_a] =
        Layout::horizontal([Constraint::Min(1), Constraint::Length(rw)]).areas(area);
    let left = match (&m.prompt, &m.status) {
        (Some(p), _) => Line::from(vec![
            Span::styled(p.kind.label(), Style::new().fg(Color::Cyan)),
            Span::raw(screen_text(&p.text, 4096)),
            Span::styled("█", Style::new().fg(Color::Gray)),
        ]),
        (None, Some(s)) => Line::styled(
            screen_text(&s.text, usize::from(area.width) * 2),
            if s.error {
                Style::new().fg(Color::White).bg(Color::Red)
            } else {
                Style::new().fg(Color::Yellow)
            },
        ),
        (None, None) => Line::styled(
            "q quit · / filter · \\ search · e error · Enter detail · : query · Tab pane",
            Style::new().fg(Color::DarkGray),
        ),
    };
    f.render_widget(Paragraph::new(left), left_a);
    f.render_widget(
        Paragraph::new(Line::styled(right, Style::new().fg(Color::Gray))),
        right_a,
    );
}

fn draw_help(f: &mut Frame<'_>, m: &Model, area: Rect) {
    // Wide enough for the longest line on most terminals; longer lines wrap, not cut.
    let w = area.width.min(120);
    let h = area.height.saturating_sub(2).max(3);
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + 1,
        width: w,
        height: h,
    };
    // Descriptions wrap under themselves rather than being cut at the overlay's edge.
    let room = usize::from(w.saturating_sub(2)).saturating_sub(28).max(10);
    let lines: Vec<Line<'static>> = help_lines()
        .into_iter()
        .flat_map(|(k, d)| {
            if d.is_empty() {
                return vec![Line::styled(k, Style::new().add_modifier(Modifier::BOLD))];
            }
            word_wrap(&d, room)
                .into_iter()
                .enumerate()
                .map(|(n, piece)| {
                    let key = if n == 0 { k.as_str() } else { "" };
                    Line::from(vec![
                        Span::styled(format!("  {key:<26}"), Style::new().fg(Color::Cyan)),
                        Span::raw(piece),
                    ])
                })
                .collect()
        })
        .skip(m.help_scroll)
        .collect();
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" keys · j/k scroll · any other key closes ")
                .border_style(Style::new().fg(Color::Cyan)),
        ),
        rect,
    );
}

/// `text` in lines of at most `width` cells, broken between words (a longer word on a line
/// of its own, cut by cells).
fn word_wrap(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && cur.width() + 1 + word.width() > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    out.push(cur);
    out.into_iter()
        .flat_map(|l| split_cells(&l, width))
        .collect()
}

/// 12345 → "12,345".
pub(crate) fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
