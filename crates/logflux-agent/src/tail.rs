//! The file tailer: which files match, what of them has been read, and what comes next.
//!
//! Synchronous and deterministic, so that a model-based test can drive it through writes,
//! rotations, truncations, deletions and restarts; the file input (`files.rs`) runs it on a
//! blocking thread and advances checkpoints once the entries are in the spool.
//!
//! - **Identity.** An open file is followed by its descriptor (device and inode), so a renamed
//!   file is read to its end under its new name. Across restarts a file is recognised by a
//!   fingerprint of its head: a 64-bit hash of its first bytes (up to 1 KiB, re-taken as the file
//!   grows), stored with the offset in the checkpoint file.
//! - **Rotation by rename.** The old inode keeps being read (it is "gone" once no pattern matches
//!   its path, and dropped after it stays at its end); the new file is read from its start.
//! - **Copytruncate.** A new file whose head is that of a followed file (which has shrunk, or
//!   whose head is a full 1 KiB) is its copy: it is read from where the followed file was, and
//!   the followed file, once truncated, from 0.
//! - **Truncation.** A file shorter than its read position was truncated: read from 0.
//! - **Deletion.** The descriptor stays open until the file has been read to its end.
//! - **gzip.** With `decompress_gzip`, `*.gz` files are read decompressed and fingerprinted on
//!   their decompressed head, so a rotated file compressed before it was read to its end is
//!   continued in its `.gz`; without it, `*.gz` files are skipped.
//! - **Long lines** beyond `max_line_bytes` are split into pieces of that size or skipped
//!   (counted either way); invalid UTF-8 is replaced with U+FFFD.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Bytes of a file's head that identify it.
pub const HEAD_MAX: usize = 1024;
/// Bytes read from one file per poll, so one busy file does not starve the others.
const READ_CHUNK: usize = 256 * 1024;
/// Scans during which a shrunk file's head and offset are remembered for its copy.
const TRUNCATION_MEMORY: u32 = 50;
/// Polls a gone file must stay at its end before it is closed.
const GONE_IDLE_POLLS: u32 = 2;

/// What to do with a line longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LongLines {
    /// Emit it in pieces of the maximum length.
    #[default]
    Split,
    /// Drop it.
    Skip,
}

/// Where to start in files found at the first scan that have no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    #[default]
    Beginning,
    End,
}

/// The tailer's settings.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Glob patterns of files to follow.
    pub include: Vec<String>,
    /// Glob patterns of files to leave alone.
    pub exclude: Vec<String>,
    pub read_from: ReadFrom,
    pub max_line_bytes: usize,
    pub long_lines: LongLines,
    pub decompress_gzip: bool,
}

/// A file's fingerprint: the hash of its first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Head {
    pub len: u32,
    pub hash: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Head {
    fn of(bytes: &[u8]) -> Head {
        let b = &bytes[..bytes.len().min(HEAD_MAX)];
        Head {
            len: b.len() as u32,
            hash: fnv1a(b),
        }
    }
}

/// One file's saved position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Where the file was last seen (for people; identity is the head).
    pub path: PathBuf,
    pub head: Head,
    /// Bytes (of the decompressed stream, for gzip) up to which every line is in the spool.
    pub offset: u64,
}

/// A line read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The tailer's id of the file (for [`Tailer::commit`]).
    pub file: u64,
    pub path: Arc<Path>,
    pub text: String,
    /// The offset just past this line (and its newline).
    pub end: u64,
    /// A piece of a line longer than the limit.
    pub split: bool,
}

/// Counters of what the tailer did, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailStats {
    pub lines: u64,
    pub bytes: u64,
    pub long_lines_split: u64,
    pub long_lines_skipped: u64,
    pub invalid_utf8: u64,
    pub truncations: u64,
    pub rotations: u64,
}

enum Reader {
    Plain(File),
    Gzip(Box<flate2::read::MultiGzDecoder<File>>),
}

struct Tracked {
    id: u64,
    path: Arc<Path>,
    reader: Reader,
    dev_ino: (u64, u64),
    head: Head,
    /// End of the last complete line handed out.
    offset: u64,
    /// Bytes read so far (`offset` + partial line, + bytes skipped in a long line).
    read_pos: u64,
    buf: Vec<u8>,
    skipping: bool,
    committed: u64,
    gone: bool,
    idle_polls: u32,
    /// A gzip stream read to its end.
    eof: bool,
    /// Shrunk or rewritten since read: to be read again from 0.
    rewritten: bool,
    /// Head and offset before the last reset to 0.
    reset_from: Option<(Head, u64)>,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("offset", &self.offset)
            .finish()
    }
}

/// Follows the files of one input.
#[derive(Debug)]
pub struct Tailer {
    cfg: TailConfig,
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
    files: Vec<Tracked>,
    /// Checkpoints loaded at start, until a file claims them (dropped after the first scan).
    saved: Vec<Checkpoint>,
    next_id: u64,
    first_scan: bool,
    /// Heads and offsets of files that shrank in the last scans (their copies may appear).
    truncated: Vec<(Head, u64, u32)>,
    pub stats: TailStats,
}

fn is_gz(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz")
}

fn read_head(path: &Path, gz: bool) -> std::io::Result<(File, Head, u64)> {
    let f = File::open(path)?;
    let size = f.metadata()?.len();
    let mut head = vec![0u8; HEAD_MAX];
    let n = if gz {
        let mut d = flate2::read::MultiGzDecoder::new(f.try_clone()?);
        let mut n = 0;
        while n < HEAD_MAX {
            match d.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                // A gzip file still being written: what could be read is the head.
                Err(_) => break,
            }
        }
        n
    } else {
        let mut n = 0;
        while n < HEAD_MAX {
            match f.read_at(&mut head[n..], n as u64)? {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    Ok((f, Head::of(&head[..n]), size))
}

/// The hash of a file's first `len` bytes, if it has that many.
fn head_matches(path: &Path, gz: bool, want: Head) -> bool {
    match read_head(path, gz) {
        Ok((_, _, _)) if want.len == 0 => false,
        Ok((f, h, _)) => {
            if h.len < want.len {
                return false;
            }
            if h.len == want.len {
                return h.hash == want.hash;
            }
            let mut b = vec![0u8; want.len as usize];
            let n = if gz {
                let mut d = flate2::read::MultiGzDecoder::new(f);
                d.read_exact(&mut b).map(|_| b.len()).unwrap_or(0)
            } else {
                f.read_at(&mut b, 0).unwrap_or(0)
            };
            n == b.len() && fnv1a(&b) == want.hash
        }
        Err(_) => false,
    }
}

impl Tailer {
    /// A tailer starting from `saved` checkpoints.
    pub fn new(cfg: TailConfig, saved: Vec<Checkpoint>) -> anyhow::Result<Tailer> {
        let pat = |p: &String| {
            glob::Pattern::new(p).map_err(|e| anyhow::anyhow!("the pattern {p:?}: {e}"))
        };
        Ok(Tailer {
            include: cfg.include.iter().map(pat).collect::<anyhow::Result<_>>()?,
            exclude: cfg.exclude.iter().map(pat).collect::<anyhow::Result<_>>()?,
            cfg,
            files: Vec::new(),
            saved,
            next_id: 1,
            first_scan: true,
            truncated: Vec::new(),
            stats: TailStats::default(),
        })
    }

    fn wanted(&self, p: &Path) -> bool {
        let opts = glob::MatchOptions {
            require_literal_separator: true,
            ..Default::default()
        };
        self.include.iter().any(|g| g.matches_path_with(p, opts))
            && !self.exclude.iter().any(|g| g.matches_path_with(p, opts))
            && (self.cfg.decompress_gzip || !is_gz(p))
    }

    /// Finds new files, notices renamed, deleted and copied ones.
    pub fn scan(&mut self) {
        let mut found: Vec<PathBuf> = Vec::new();
        for g in &self.cfg.include {
            if let Ok(paths) = glob::glob(g) {
                found.extend(paths.filter_map(Result::ok).filter(|p| p.is_file()));
            }
        }
        found.sort();
        found.dedup();
        found.retain(|p| self.wanted(p));
        let mut seen: HashMap<(u64, u64), PathBuf> = HashMap::new();
        for p in &found {
            if let Ok(m) = std::fs::metadata(p) {
                seen.insert((m.dev(), m.ino()), p.clone());
            }
        }
        // Followed files: renamed (new path), still there, or gone. A deleted file whose inode
        // number was given to a new file is gone, and the new file is new.
        for t in &mut self.files {
            if let Reader::Plain(f) = &t.reader {
                match f.metadata() {
                    Ok(m) if m.nlink() == 0 => {
                        t.gone = true;
                        continue;
                    }
                    Ok(m) => {
                        t.rewritten = m.len() < t.read_pos || !fd_head_ok(f, t.head);
                    }
                    Err(_) => {}
                }
            }
            match seen.remove(&t.dev_ino) {
                Some(p) => {
                    if *t.path != *p {
                        self.stats.rotations += 1;
                        t.path = p.into();
                    }
                    t.gone = false;
                }
                None => t.gone = true,
            }
        }
        // New files, in path order.
        let mut new: Vec<(PathBuf, (u64, u64))> = seen.into_iter().map(|(k, p)| (p, k)).collect();
        new.sort();
        for (p, dev_ino) in new {
            let gz = is_gz(&p);
            let Ok((file, head, size)) = read_head(&p, gz) else {
                continue;
            };
            // Copytruncate: a new file with the head of a followed file that shrank (now, or
            // in the last scans) is its copy: it is read from where the followed file was. A
            // file with the whole 1 KiB head of a followed file that has not shrunk is a copy in
            // the making (or a backup): nothing new is in it yet, so it waits.
            let truncated = self
                .files
                .iter()
                .filter(|t| t.rewritten)
                .map(|t| (t.head, t.offset))
                .chain(self.truncated.iter().map(|(h, o, _)| (*h, *o)))
                .find(|(h, _)| h.len > 0 && head_matches(&p, gz, *h));
            if truncated.is_none()
                && self
                    .files
                    .iter()
                    .any(|t| t.head.len as usize == HEAD_MAX && head_matches(&p, gz, t.head))
            {
                continue;
            }
            // The copy was complete before the truncation; if the original was read past its
            // end (lines appended between the copy and the truncation), nothing in it is new.
            let copy_of = truncated.map(|(_, off)| if gz { off } else { off.min(size) });
            let start = if let Some(off) = copy_of {
                self.stats.rotations += 1;
                off
            } else if let Some(i) = self.best_saved(&p, gz) {
                let ck = self.saved.swap_remove(i);
                if !gz && ck.offset > size {
                    0
                } else {
                    ck.offset
                }
            } else if self.first_scan && self.cfg.read_from == ReadFrom::End && !gz {
                // From the end, but at a line boundary: the last newline before the end.
                last_line_end(&file, size)
            } else {
                0
            };
            let reader = if gz {
                let mut d = flate2::read::MultiGzDecoder::new(file);
                // Skip what was already read, in the decompressed stream.
                let skipped =
                    std::io::copy(&mut (&mut d).take(start), &mut std::io::sink()).unwrap_or(0);
                if skipped < start {
                    continue;
                }
                Reader::Gzip(Box::new(d))
            } else {
                Reader::Plain(file)
            };
            let id = self.next_id;
            self.next_id += 1;
            self.files.push(Tracked {
                id,
                path: p.into(),
                reader,
                dev_ino,
                head,
                offset: start,
                read_pos: start,
                buf: Vec::new(),
                skipping: false,
                committed: start,
                gone: false,
                idle_polls: 0,
                eof: false,
                rewritten: false,
                reset_from: None,
            });
        }
        for t in &mut self.truncated {
            t.2 = t.2.saturating_sub(1);
        }
        self.truncated.retain(|t| t.2 > 0);
        if self.first_scan {
            // Checkpoints of files that no longer exist are forgotten.
            self.saved.clear();
            self.first_scan = false;
        }
    }

    /// The saved checkpoint this file continues (the longest matching head).
    fn best_saved(&self, p: &Path, gz: bool) -> Option<usize> {
        self.saved
            .iter()
            .enumerate()
            .filter(|(_, c)| c.head.len > 0 && head_matches(p, gz, c.head))
            .max_by_key(|(_, c)| c.head.len)
            .map(|(i, _)| i)
    }

    /// Reads what is new in every followed file: complete lines, at most `READ_CHUNK` bytes
    /// per file. Gone files read to their end are closed.
    pub fn read(&mut self) -> Vec<Line> {
        let mut out = Vec::new();
        let max = self.cfg.max_line_bytes.max(1);
        let long = self.cfg.long_lines;
        for t in &mut self.files {
            let grew = read_file(t, max, long, &mut self.stats, &mut out);
            if let Some((head, offset)) = t.reset_from.take()
                && head.len > 0
            {
                // Its copy may show up in the next scans.
                self.truncated.push((head, offset, TRUNCATION_MEMORY));
            }
            if !grew && t.gone {
                t.idle_polls += 1;
            } else {
                t.idle_polls = 0;
            }
            if t.gone && t.idle_polls >= GONE_IDLE_POLLS && !t.buf.is_empty() && !t.skipping {
                // Nobody will finish this line: hand out what there is.
                let text = utf8(std::mem::take(&mut t.buf), &mut self.stats);
                t.offset = t.read_pos;
                out.push(Line {
                    file: t.id,
                    path: t.path.clone(),
                    text,
                    end: t.offset,
                    split: false,
                });
            }
        }
        self.files.retain(|t| {
            !(t.gone && t.idle_polls >= GONE_IDLE_POLLS && (t.buf.is_empty() || t.skipping))
        });
        out
    }

    /// `scan` then `read`.
    pub fn poll(&mut self) -> Vec<Line> {
        self.scan();
        self.read()
    }

    /// Lines of `file` up to `end` are in the spool.
    pub fn commit(&mut self, file: u64, end: u64) {
        if let Some(t) = self.files.iter_mut().find(|t| t.id == file) {
            t.committed = t.committed.max(end);
        }
    }

    /// The checkpoints to save: every followed file's committed position, and saved ones not
    /// yet claimed.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        let mut v: Vec<Checkpoint> = self
            .files
            .iter()
            .filter(|t| t.head.len > 0)
            .map(|t| Checkpoint {
                path: t.path.to_path_buf(),
                head: t.head,
                offset: t.committed,
            })
            .collect();
        v.extend(self.saved.iter().cloned());
        v
    }

    /// Files being followed.
    pub fn followed(&self) -> usize {
        self.files.len()
    }
}

/// The offset just past the last newline before `size` (0 when there is none).
fn last_line_end(f: &File, size: u64) -> u64 {
    let mut pos = size;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let start = pos.saturating_sub(buf.len() as u64);
        let n = (pos - start) as usize;
        if f.read_exact_at(&mut buf[..n], start).is_err() {
            return 0;
        }
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return start + i as u64 + 1;
        }
        pos = start;
    }
    0
}

fn utf8(bytes: Vec<u8>, stats: &mut TailStats) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            stats.invalid_utf8 += 1;
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    }
}

/// Reads new bytes of one file into lines; whether anything was read.
fn read_file(
    t: &mut Tracked,
    max: usize,
    long: LongLines,
    stats: &mut TailStats,
    out: &mut Vec<Line>,
) -> bool {
    let mut chunk = vec![0u8; READ_CHUNK];
    let n = match &mut t.reader {
        Reader::Plain(f) => {
            let size = match f.metadata() {
                Ok(m) => m.len(),
                Err(_) => return false,
            };
            if size < t.read_pos || t.rewritten {
                // Truncated (copytruncate, or `> file`) or rewritten: start over.
                t.rewritten = false;
                t.reset_from = Some((t.head, t.offset));
                // The old head no longer describes the file: re-taken from the new content.
                t.head = Head::of(&[]);
                stats.truncations += 1;
                t.offset = 0;
                t.read_pos = 0;
                t.committed = 0;
                t.buf.clear();
                t.skipping = false;
            }
            if size == t.read_pos {
                if t.head.len < HEAD_MAX as u32 || size == 0 {
                    refresh_head(t);
                }
                return false;
            }
            match f.read_at(&mut chunk, t.read_pos) {
                Ok(n) => n,
                Err(_) => return false,
            }
        }
        Reader::Gzip(d) => {
            if t.eof {
                return false;
            }
            let mut n = 0;
            while n < chunk.len() {
                match d.read(&mut chunk[n..]) {
                    Ok(0) => {
                        t.eof = true;
                        break;
                    }
                    Ok(k) => n += k,
                    Err(_) => {
                        t.eof = true;
                        break;
                    }
                }
            }
            n
        }
    };
    if n == 0 {
        return false;
    }
    let data = &chunk[..n];
    t.read_pos += n as u64;
    stats.bytes += n as u64;
    let mut rest = data;
    while !rest.is_empty() {
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                let (piece, after) = rest.split_at(i);
                rest = &after[1..];
                if t.skipping {
                    t.skipping = false;
                    t.buf.clear();
                    t.offset = t.read_pos - rest.len() as u64;
                    continue;
                }
                t.buf.extend_from_slice(piece);
                let end = t.read_pos - rest.len() as u64;
                let mut bytes = std::mem::take(&mut t.buf);
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
                emit_pieces(t, bytes, end, max, long, stats, out);
                t.offset = end;
            }
            None => {
                if !t.skipping {
                    t.buf.extend_from_slice(rest);
                    if t.buf.len() > max {
                        match long {
                            LongLines::Split => {
                                // Whole pieces now; the remainder waits for its newline.
                                let keep = t.buf.len() % max;
                                let full: Vec<u8> = t.buf.drain(..t.buf.len() - keep).collect();
                                let end = t.read_pos - keep as u64;
                                push_pieces(t, &full, end, max, stats, out);
                                t.offset = end;
                            }
                            LongLines::Skip => {
                                stats.long_lines_skipped += 1;
                                t.skipping = true;
                                t.buf.clear();
                            }
                        }
                    }
                }
                rest = &[];
            }
        }
    }
    if t.head.len < HEAD_MAX as u32 {
        refresh_head(t);
    }
    true
}

/// A long line's pieces of `max` bytes, each ending at `end` for the checkpoint.
fn push_pieces(
    t: &Tracked,
    bytes: &[u8],
    end: u64,
    max: usize,
    stats: &mut TailStats,
    out: &mut Vec<Line>,
) {
    for piece in bytes.chunks(max) {
        stats.long_lines_split += 1;
        out.push(Line {
            file: t.id,
            path: t.path.clone(),
            text: utf8(piece.to_vec(), stats),
            end,
            split: true,
        });
    }
}

/// Emits one complete line, in pieces when it is too long (or not at all, when skipping).
fn emit_pieces(
    t: &Tracked,
    bytes: Vec<u8>,
    end: u64,
    max: usize,
    long: LongLines,
    stats: &mut TailStats,
    out: &mut Vec<Line>,
) {
    if bytes.len() <= max {
        stats.lines += 1;
        out.push(Line {
            file: t.id,
            path: t.path.clone(),
            text: utf8(bytes, stats),
            end,
            split: false,
        });
        return;
    }
    match long {
        LongLines::Skip => stats.long_lines_skipped += 1,
        LongLines::Split => push_pieces(t, &bytes, end, max, stats, out),
    }
}

/// Whether the file behind `f` still starts with `head`.
fn fd_head_ok(f: &File, head: Head) -> bool {
    if head.len == 0 {
        return true;
    }
    let mut b = vec![0u8; head.len as usize];
    matches!(f.read_exact_at(&mut b, 0), Ok(()) if fnv1a(&b) == head.hash)
}

/// Re-takes the head of a plain file that was shorter than `HEAD_MAX`.
fn refresh_head(t: &mut Tracked) {
    if let Reader::Plain(f) = &t.reader {
        let mut b = vec![0u8; HEAD_MAX];
        if let Ok(n) = f.read_at(&mut b, 0) {
            t.head = Head::of(&b[..n]);
        }
    }
}

/// Writes a file atomically: a temporary file, fsync, rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        std::io::Write::write_all(&mut f, data)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    // The rename itself durable too (else a power loss may bring the older file back).
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// Saves checkpoints atomically.
pub fn save_checkpoints(path: &Path, cks: &[Checkpoint]) -> std::io::Result<()> {
    write_atomic(
        path,
        &serde_json::to_vec(cks).map_err(std::io::Error::other)?,
    )
}

/// Loads checkpoints (none when the file does not exist).
pub fn load_checkpoints(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    match std::fs::read(path) {
        Ok(b) => Ok(serde_json::from_slice(&b)
            .map_err(|e| anyhow::anyhow!("checkpoint file {}: {e}", path.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}
