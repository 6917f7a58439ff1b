//! Log templates (`logflux patterns`, Loki's `/loki/api/v1/patterns`): lines grouped by the
//! template they were written from, with a Drain-style online algorithm (He et al., "Drain: An
//! Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017). Pure: no I/O.
//!
//! Each line is split into tokens at whitespace. A token is *masked* piece by piece: it is cut
//! at punctuation (`/ : = , ; | [ ] ( ) { } < > @ # " '`) and every piece holding a digit (a
//! number, hex, an IP, a UUID, a time, a path segment with digits) or a month or weekday
//! abbreviation (`Dec`, `Sun`) becomes `<*>`; a token left with nothing but `<*>` and
//! punctuation (`10.0.0.1:5432`, `[Sun`) is a wildcard. (So words with a digit, `ssh2`, are
//! variable too: the price of not knowing the format.)
//! Masking is what takes a leading timestamp/level header apart without knowing its format:
//! its times, dates, pids and host numbers become wildcards, its constant words (a level, a
//! logger) stay. Lines are then routed through a fixed-depth tree (token count, then the
//! first [`Config::depth`] tokens) to a leaf of candidate clusters; the most similar
//! template (share of equal tokens among the template's non-wildcard positions) takes the
//! line if its similarity reaches [`Config::similarity`], and its differing positions become
//! wildcards; otherwise the line starts a new cluster.
//!
//! Memory is bounded: at most [`Config::max_clusters`] clusters per shard (when the cap is
//! reached the less used half is dropped and its lines counted in [`Patterns::dropped`]) and
//! at most [`MAX_TOKENS`] tokens per line; the tree has at most `MAX_TOKENS` ×
//! `max_children`^`depth` leaves.
//!
//! [`Tally`] adds what `logflux patterns` and `/loki/api/v1/patterns` show per template:
//! counts, levels, first and last time, and counts per step.
//!
//! [`Patterns`] runs two independent shards (lines with an even and an odd token count:
//! clusters never span token counts, so the grouping does not depend on the sharding) and
//! [`Patterns::add_batch`] runs them on two threads.
//!
//! ```
//! use logflux_query::patterns::Patterns;
//!
//! let mut p = Patterns::default();
//! let ids = p.add_batch(&[
//!     "2024-05-01 10:00:00 INFO connected to 10.0.0.1:5432 in 12 ms",
//!     "2024-05-01 10:00:02 INFO connected to 10.0.0.2:5432 in 9 ms",
//!     "2024-05-01 10:00:03 WARN disk almost full on /var",
//! ]);
//! assert_eq!(ids[0].id, ids[1].id);
//! assert_ne!(ids[0].id, ids[2].id);
//! assert_eq!(p.template(ids[0].id, "<*>").unwrap(), "<*> <*> INFO connected to <*> in <*> ms");
//! ```

use std::collections::BTreeMap;

use logflux_proto::Level;
use rustc_hash::FxHashMap;

/// Tokens kept per line: the rest of a longer line is one wildcard token.
pub const MAX_TOKENS: usize = 256;
/// Distinct masked tokens remembered per shard; past it, unseen tokens are wildcards.
pub const MAX_DISTINCT_TOKENS: usize = 1 << 20;
/// The number of shards of [`Patterns`].
const SHARDS: usize = 2;
/// The wildcard token.
const WILD: u32 = 0;

/// Tuning of the algorithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Leading tokens that route a line in the tree (after its token count).
    pub depth: usize,
    /// Least similarity (0..=1) for a line to join a cluster.
    pub similarity: f64,
    /// Children of a tree node before further tokens go to its wildcard child.
    pub max_children: usize,
    /// Clusters per shard before the less used half is dropped.
    pub max_clusters: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            depth: 2,
            similarity: 0.8,
            max_children: 100,
            max_clusters: 20_000,
        }
    }
}

/// Which cluster a line joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Assigned {
    /// The cluster; ids of dropped clusters are used again, so `new` says when an id
    /// starts over.
    pub id: ClusterId,
    /// The line started this cluster.
    pub new: bool,
}

/// A cluster of [`Patterns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(u32);

impl ClusterId {
    /// A dense index (shard-interleaved), for side tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    fn new(shard: usize, local: u32) -> Self {
        ClusterId(local * SHARDS as u32 + shard as u32)
    }

    fn shard(self) -> usize {
        self.0 as usize % SHARDS
    }

    fn local(self) -> u32 {
        self.0 / SHARDS as u32
    }
}

/// Templates of a stream of lines, on [`SHARDS`] shards.
#[derive(Debug)]
pub struct Patterns {
    shards: Vec<Drain>,
}

impl Default for Patterns {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Patterns {
    /// Empty, with `config`.
    pub fn new(config: Config) -> Self {
        Patterns {
            shards: (0..SHARDS).map(|_| Drain::new(config)).collect(),
        }
    }

    /// Adds one line.
    pub fn add(&mut self, line: &str) -> Assigned {
        let shard = shard_of(line);
        let (local, new) = self.shards[shard].add(line);
        Assigned {
            id: ClusterId::new(shard, local),
            new,
        }
    }

    /// Adds lines in order, the shards on their own threads; the result is the same as
    /// adding them one by one.
    pub fn add_batch(&mut self, lines: &[&str]) -> Vec<Assigned> {
        let shard: Vec<u8> = lines.iter().map(|l| shard_of(l) as u8).collect();
        let results: Vec<Vec<u32>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .shards
                .iter_mut()
                .enumerate()
                .map(|(i, drain)| {
                    let shard = &shard;
                    let mut run = move || {
                        lines
                            .iter()
                            .zip(shard)
                            .filter(|(_, s)| usize::from(**s) == i)
                            .map(|(l, _)| {
                                let (local, new) = drain.add(l);
                                local << 1 | u32::from(new)
                            })
                            .collect::<Vec<u32>>()
                    };
                    if lines.len() < 4096 {
                        Err(run())
                    } else {
                        Ok(s.spawn(run))
                    }
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                    Err(done) => done,
                })
                .collect()
        });
        let mut next = [0usize; SHARDS];
        shard
            .iter()
            .map(|&s| {
                let s = usize::from(s);
                let v = results[s][next[s]];
                next[s] += 1;
                Assigned {
                    id: ClusterId::new(s, v >> 1),
                    new: v & 1 == 1,
                }
            })
            .collect()
    }

    /// The template of a live cluster, `wildcard` standing for each variable token.
    pub fn template(&self, id: ClusterId, wildcard: &str) -> Option<String> {
        self.shards[id.shard()].template(id.local(), wildcard)
    }

    /// Lines a live cluster holds.
    pub fn count(&self, id: ClusterId) -> Option<u64> {
        self.shards[id.shard()].count(id.local())
    }

    /// Live clusters with their line counts.
    pub fn clusters(&self) -> impl Iterator<Item = (ClusterId, u64)> + '_ {
        self.shards.iter().enumerate().flat_map(|(s, d)| {
            d.clusters.iter().enumerate().filter_map(move |(i, c)| {
                c.as_ref().map(|c| (ClusterId::new(s, i as u32), c.count))
            })
        })
    }

    /// Lines whose clusters were dropped to keep within [`Config::max_clusters`].
    pub fn dropped(&self) -> u64 {
        self.shards.iter().map(|d| d.dropped).sum()
    }
}

/// Most (template, level, step) cells a [`Tally`] with steps keeps (Loki's samples).
pub const MAX_CELLS: usize = 1_000_000;

/// One entry for a [`Tally`]: its time, level and line.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub ts_ns: i64,
    pub level: Level,
    pub line: &'a str,
}

/// What a template holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Entries.
    pub count: u64,
    /// Entries per level, most severe first (as [`Level::ALL`]).
    pub levels: [u64; 8],
    pub first_ns: i64,
    pub last_ns: i64,
    /// With steps: entries per (level number, step start), in order.
    pub samples: BTreeMap<(u8, i64), u64>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            count: 0,
            levels: [0; 8],
            first_ns: i64::MAX,
            last_ns: i64::MIN,
            samples: BTreeMap::new(),
        }
    }
}

/// A template and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub template: String,
    pub stats: Stats,
}

/// Templates of entries with their counts, levels, first and last times and, optionally,
/// counts per step: what `logflux patterns` prints and `/loki/api/v1/patterns` answers.
#[derive(Debug)]
pub struct Tally {
    patterns: Patterns,
    stats: Vec<Option<Stats>>,
    /// (start, step) of the steps counted, if any.
    steps: Option<(i64, i64)>,
    cells: usize,
    /// Entries whose step cell was not counted ([`MAX_CELLS`]).
    pub cells_dropped: u64,
}

impl Tally {
    /// Empty; with `steps` = `Some((start, step))` counts per step of `step` ns from `start`.
    pub fn new(config: Config, steps: Option<(i64, i64)>) -> Self {
        Tally {
            patterns: Patterns::new(config),
            stats: Vec::new(),
            steps: steps.filter(|(_, step)| *step > 0),
            cells: 0,
            cells_dropped: 0,
        }
    }

    /// Adds owned entries (time, level, line) with [`Tally::add_batch`], then empties `batch`
    /// for the next ones: what a caller collecting decrypted entries hands over.
    pub fn drain_owned(&mut self, batch: &mut Vec<(i64, Level, String)>) {
        let items: Vec<Item<'_>> = batch
            .iter()
            .map(|(ts_ns, level, line)| Item {
                ts_ns: *ts_ns,
                level: *level,
                line,
            })
            .collect();
        self.add_batch(&items);
        batch.clear();
    }

    /// Adds entries (their lines grouped on two threads).
    pub fn add_batch(&mut self, items: &[Item<'_>]) {
        let lines: Vec<&str> = items.iter().map(|i| i.line).collect();
        let assigned = self.patterns.add_batch(&lines);
        for (item, a) in items.iter().zip(assigned) {
            let i = a.id.index();
            if i >= self.stats.len() {
                self.stats.resize_with(i + 1, || None);
            }
            if a.new || self.stats[i].is_none() {
                if let Some(old) = self.stats[i].take() {
                    self.cells -= old.samples.len();
                }
                self.stats[i] = Some(Stats::new());
            }
            let Some(s) = self.stats[i].as_mut() else {
                continue;
            };
            s.count += 1;
            s.levels[usize::from(item.level.number() - 1)] += 1;
            s.first_ns = s.first_ns.min(item.ts_ns);
            s.last_ns = s.last_ns.max(item.ts_ns);
            if let Some((start, step)) = self.steps {
                let bucket = start + (item.ts_ns - start).div_euclid(step) * step;
                let key = (item.level.number(), bucket);
                match s.samples.get_mut(&key) {
                    Some(n) => *n += 1,
                    None if self.cells < MAX_CELLS => {
                        s.samples.insert(key, 1);
                        self.cells += 1;
                    }
                    None => self.cells_dropped += 1,
                }
            }
        }
    }

    /// Entries added, in live templates.
    pub fn entries(&self) -> u64 {
        self.patterns.clusters().map(|(_, n)| n).sum()
    }

    /// Entries whose templates were dropped to keep within [`Config::max_clusters`].
    pub fn dropped(&self) -> u64 {
        self.patterns.dropped()
    }

    /// The templates, most entries first (then the earliest first, then by text),
    /// `wildcard` standing for each variable part.
    pub fn templates(&self, wildcard: &str) -> Vec<Template> {
        let mut out: Vec<Template> = self
            .patterns
            .clusters()
            .filter_map(|(id, _)| {
                let stats = self.stats.get(id.index())?.as_ref()?.clone();
                Some(Template {
                    template: self.patterns.template(id, wildcard)?,
                    stats,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.stats
                .count
                .cmp(&a.stats.count)
                .then(a.stats.first_ns.cmp(&b.stats.first_ns))
                .then_with(|| a.template.cmp(&b.template))
        });
        out
    }
}

/// The shard of a line: its token count modulo [`SHARDS`].
fn shard_of(line: &str) -> usize {
    tokens(line).take(MAX_TOKENS).count() % SHARDS
}

fn tokens(line: &str) -> impl Iterator<Item = &[u8]> {
    line.as_bytes()
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
}

/// One shard: the tree, the clusters and the token interner.
#[derive(Debug)]
struct Drain {
    config: Config,
    /// Masked token → id (0 is the wildcard).
    interner: FxHashMap<Box<[u8]>, u32>,
    /// Id → masked token.
    names: Vec<Box<[u8]>>,
    /// Token count → first tree node.
    roots: FxHashMap<u32, u32>,
    nodes: Vec<Node>,
    clusters: Vec<Option<Cluster>>,
    /// Ids of dropped clusters, to use again.
    free: Vec<u32>,
    live: usize,
    dropped: u64,
    /// Scratch: the current line's token ids.
    line: Vec<u32>,
    /// Scratch: the masked form of the current token.
    buf: Vec<u8>,
}

#[derive(Debug)]
enum Node {
    Inner(FxHashMap<u32, u32>),
    /// Cluster ids.
    Leaf(Vec<u32>),
}

#[derive(Debug, Clone)]
struct Cluster {
    tokens: Vec<u32>,
    wildcards: usize,
    count: u64,
    /// The leaf node that lists this cluster.
    leaf: u32,
}

impl Drain {
    fn new(config: Config) -> Self {
        Drain {
            config,
            interner: FxHashMap::default(),
            names: vec![b"<*>".to_vec().into_boxed_slice()],
            roots: FxHashMap::default(),
            nodes: Vec::new(),
            clusters: Vec::new(),
            free: Vec::new(),
            live: 0,
            dropped: 0,
            line: Vec::new(),
            buf: Vec::new(),
        }
    }

    fn add(&mut self, line: &str) -> (u32, bool) {
        self.tokenize(line);
        let leaf = self.leaf();
        if let Some(id) = self.best_match(leaf) {
            self.merge(id);
            return (id, false);
        }
        if self.live >= self.config.max_clusters.max(2) {
            self.drop_less_used();
        }
        (self.create(leaf), true)
    }

    /// Fills `self.line` with the masked token ids of `line`.
    fn tokenize(&mut self, line: &str) {
        self.line.clear();
        let mut it = tokens(line);
        for t in it.by_ref().take(MAX_TOKENS - 1) {
            let id = self.token_id(t);
            self.line.push(id);
        }
        if let Some(t) = it.next() {
            // One more token: the last kept one; more than that: a wildcard for the rest.
            let id = match it.next() {
                None => self.token_id(t),
                Some(_) => WILD,
            };
            self.line.push(id);
        }
    }

    fn token_id(&mut self, token: &[u8]) -> u32 {
        let masked: &[u8] = if needs_mask(token) {
            if mask_into(token, &mut self.buf) {
                return WILD;
            }
            &self.buf
        } else {
            token
        };
        if let Some(&id) = self.interner.get(masked) {
            return id;
        }
        if self.names.len() >= MAX_DISTINCT_TOKENS {
            return WILD;
        }
        let id = self.names.len() as u32;
        let owned: Box<[u8]> = masked.into();
        self.names.push(owned.clone());
        self.interner.insert(owned, id);
        id
    }

    /// The leaf for the current line, creating the path.
    fn leaf(&mut self) -> u32 {
        let n = self.line.len() as u32;
        let depth = self.config.depth.min(self.line.len());
        let mut node = match self.roots.get(&n) {
            Some(&r) => r,
            None => {
                let r = self.push_node(depth == 0);
                self.roots.insert(n, r);
                r
            }
        };
        for i in 0..depth {
            let tok = self.line[i];
            let last = i + 1 == depth;
            let Node::Inner(children) = &self.nodes[node as usize] else {
                break;
            };
            // A new token gets a child while there is room (one place is kept for the
            // wildcard child); past that, it goes with the wildcards.
            let room = children.len() + 1 < self.config.max_children;
            let key = if tok == WILD || room || children.contains_key(&tok) {
                tok
            } else {
                WILD
            };
            node = match children.get(&key) {
                Some(&c) => c,
                None => {
                    let c = self.push_node(last);
                    if let Node::Inner(children) = &mut self.nodes[node as usize] {
                        children.insert(key, c);
                    }
                    c
                }
            };
        }
        node
    }

    fn push_node(&mut self, leaf: bool) -> u32 {
        self.nodes.push(if leaf {
            Node::Leaf(Vec::new())
        } else {
            Node::Inner(FxHashMap::default())
        });
        (self.nodes.len() - 1) as u32
    }

    /// The most similar cluster of `leaf` if similar enough.
    fn best_match(&self, leaf: u32) -> Option<u32> {
        let Node::Leaf(ids) = &self.nodes[leaf as usize] else {
            return None;
        };
        let mut best: Option<(f64, usize, u32)> = None;
        for &id in ids {
            let Some(c) = &self.clusters[id as usize] else {
                continue;
            };
            let sim = similarity(&c.tokens, c.wildcards, &self.line);
            let better = match best {
                None => true,
                Some((s, w, _)) => sim > s || (sim == s && c.wildcards > w),
            };
            if better {
                best = Some((sim, c.wildcards, id));
            }
        }
        best.filter(|(s, _, _)| *s >= self.config.similarity)
            .map(|(_, _, id)| id)
    }

    fn merge(&mut self, id: u32) {
        let Some(c) = self.clusters[id as usize].as_mut() else {
            return;
        };
        for (t, &l) in c.tokens.iter_mut().zip(&self.line) {
            if *t != l && *t != WILD {
                *t = WILD;
                c.wildcards += 1;
            }
        }
        c.count += 1;
    }

    fn create(&mut self, leaf: u32) -> u32 {
        let cluster = Cluster {
            tokens: self.line.clone(),
            wildcards: self.line.iter().filter(|&&t| t == WILD).count(),
            count: 1,
            leaf,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.clusters[id as usize] = Some(cluster);
                id
            }
            None => {
                self.clusters.push(Some(cluster));
                (self.clusters.len() - 1) as u32
            }
        };
        if let Node::Leaf(ids) = &mut self.nodes[leaf as usize] {
            ids.push(id);
        }
        self.live += 1;
        id
    }

    /// Drops the less used half of the clusters, counting their lines.
    fn drop_less_used(&mut self) {
        let mut by_count: Vec<(u64, u32)> = self
            .clusters
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (c.count, i as u32)))
            .collect();
        by_count.sort_unstable();
        for &(count, id) in &by_count[..by_count.len() / 2] {
            if let Some(c) = self.clusters[id as usize].take() {
                if let Node::Leaf(ids) = &mut self.nodes[c.leaf as usize] {
                    ids.retain(|&i| i != id);
                }
                self.free.push(id);
                self.live -= 1;
                self.dropped += count;
            }
        }
    }

    fn template(&self, id: u32, wildcard: &str) -> Option<String> {
        let c = self.clusters.get(id as usize)?.as_ref()?;
        let mut out = String::new();
        for (i, &t) in c.tokens.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if t == WILD {
                out.push_str(wildcard);
            } else {
                let name = String::from_utf8_lossy(&self.names[t as usize]);
                out.push_str(&name.replace("<*>", wildcard));
            }
        }
        Some(out)
    }

    fn count(&self, id: u32) -> Option<u64> {
        Some(self.clusters.get(id as usize)?.as_ref()?.count)
    }
}

/// Share of the template's non-wildcard positions where the line has the same token.
fn similarity(template: &[u32], wildcards: usize, line: &[u32]) -> f64 {
    let fixed = template.len() - wildcards;
    if fixed == 0 {
        return 1.0;
    }
    let same = template
        .iter()
        .zip(line)
        .filter(|(t, l)| **t != WILD && t == l)
        .count();
    same as f64 / fixed as f64
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'/' | b':'
            | b'='
            | b','
            | b';'
            | b'|'
            | b'['
            | b']'
            | b'('
            | b')'
            | b'{'
            | b'}'
            | b'<'
            | b'>'
            | b'@'
            | b'#'
            | b'"'
            | b'\''
    )
}

/// Whether a piece (between delimiters) is variable: it holds a digit or is a month or
/// weekday abbreviation.
fn variable_piece(piece: &[u8]) -> bool {
    const CALENDAR: [&[u8]; 19] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun",
    ];
    piece.iter().any(u8::is_ascii_digit) || (piece.len() == 3 && CALENDAR.contains(&piece))
}

/// Whether masking changes a token (tested without writing anything: most tokens are plain
/// words).
fn needs_mask(token: &[u8]) -> bool {
    token.iter().any(u8::is_ascii_digit) || token.split(|&b| is_delimiter(b)).any(variable_piece)
}

/// Writes `token` with its variable pieces replaced by `<*>` into `out`; true when nothing
/// else than variable pieces and punctuation is left (the token is a wildcard).
fn mask_into(token: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut start = 0;
    let mut constant = false;
    for i in 0..=token.len() {
        if i == token.len() || is_delimiter(token[i]) {
            let piece = &token[start..i];
            if variable_piece(piece) {
                out.extend_from_slice(b"<*>");
            } else {
                constant |= !piece.is_empty();
                out.extend_from_slice(piece);
            }
            if i < token.len() {
                out.push(token[i]);
            }
            start = i + 1;
        }
    }
    !constant
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(t: &str) -> String {
        let mut out = Vec::new();
        mask_into(t.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn masking_replaces_pieces_with_digits_and_calendar_words() {
        assert_eq!(masked("sshd[24200]:"), "sshd[<*>]:");
        assert_eq!(masked("/10.1.2.3:50010"), "/<*>:<*>");
        assert_eq!(masked("blk_-1608999687919862906"), "<*>");
        assert_eq!(masked("[Sun"), "[<*>");
        assert_eq!(masked("user=root"), "user=root");
        assert_eq!(masked("(uid=0)"), "(uid=<*>)");
        assert_eq!(masked("Monday"), "Monday");
        assert!(!needs_mask(b"connected"));
    }

    #[test]
    fn lines_of_one_template_share_a_cluster_and_its_template_generalises() {
        let mut p = Patterns::default();
        let a = p.add("Accepted password for root from 1.2.3.4 port 22 via ssh");
        let b = p.add("Accepted password for alice from 5.6.7.8 port 2222 via ssh");
        let c = p.add("Connection closed by 1.2.3.4 port 22");
        assert!(a.new && !b.new && c.new);
        assert_eq!(a.id, b.id);
        assert_eq!(
            p.template(a.id, "<_>").unwrap(),
            "Accepted password for <_> from <_> port <_> via ssh"
        );
        assert_eq!(p.count(a.id), Some(2));
    }

    #[test]
    fn batches_group_as_single_adds_do() {
        let lines: Vec<String> = (0..10_000)
            .map(|i| match i % 3 {
                0 => format!("job {i} done in {} ms", i % 97),
                1 => format!("user u{} logged in from host{}", i % 13, i % 5),
                _ => format!("cache miss for key k{i} shard {} of {}", i % 4, i % 7),
            })
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut one = Patterns::default();
        let singles: Vec<Assigned> = refs.iter().map(|l| one.add(l)).collect();
        let mut two = Patterns::default();
        assert_eq!(two.add_batch(&refs), singles);
    }

    #[test]
    fn the_cluster_cap_drops_the_less_used_half_and_counts_its_lines() {
        let mut p = Patterns::new(Config {
            max_clusters: 4,
            ..Config::default()
        });
        for _ in 0..10 {
            p.add("steady line one");
        }
        let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"];
        for w in words {
            p.add(&format!("{w} {w} {w}"));
        }
        assert!(p.clusters().count() <= 4);
        assert!(p.dropped() > 0);
        let total: u64 = p.clusters().map(|(_, n)| n).sum::<u64>() + p.dropped();
        assert_eq!(total, 17);
        assert!(p.clusters().any(|(_, n)| n == 10));
    }

    #[test]
    fn a_tally_counts_levels_times_and_steps_per_template() {
        let mut t = Tally::new(Config::default(), Some((0, 10)));
        let item = |ts_ns, level, line| Item { ts_ns, level, line };
        t.add_batch(&[
            item(5, Level::Error, "disk full on sda1"),
            item(12, Level::Info, "user alice logged in"),
            item(15, Level::Error, "disk full on sdb2"),
            item(3, Level::Warning, "disk full on sdc3"),
        ]);
        let ts = t.templates("<_>");
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0].template, "disk full on <_>");
        let s = &ts[0].stats;
        assert_eq!((s.count, s.first_ns, s.last_ns), (3, 3, 15));
        assert_eq!(s.levels[3], 2);
        assert_eq!(s.levels[4], 1);
        let samples: Vec<_> = s.samples.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(samples, [((4, 0), 1), ((4, 10), 1), ((5, 0), 1)]);
        assert_eq!(t.entries(), 4);
    }

    #[test]
    fn very_long_lines_keep_a_bounded_number_of_tokens() {
        let mut p = Patterns::default();
        let long = "x ".repeat(10_000);
        let a = p.add(&long);
        let t = p.template(a.id, "<*>").unwrap();
        assert_eq!(t.split(' ').count(), MAX_TOKENS);
        assert!(t.ends_with("<*>"));
    }
}
