//! Model-based test of the file tailer: random sequences of writes, rename rotations,
//! copytruncate rotations, truncations, deletions, restarts (from saved checkpoints) and polls,
//! on real files; at the end every line written has been delivered exactly once.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use logflux_agent::tail::{Checkpoint, LongLines, ReadFrom, TailConfig, Tailer};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Append `n` lines to app.log (created if missing).
    Write(u8),
    /// logrotate's default: app.log → app.log.N; the next write creates a new app.log.
    Rename,
    /// logrotate's copytruncate: copy app.log to app.log.N, then truncate app.log.
    CopyTruncate,
    /// `> app.log` after everything in it was read.
    Truncate,
    /// Delete the oldest rotated file (its lines may still be unread: it stays open).
    DeleteOldest,
    /// Stop and start again from the saved checkpoints.
    Restart,
    Poll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..30).prop_map(Op::Write),
        2 => Just(Op::Rename),
        2 => Just(Op::CopyTruncate),
        1 => Just(Op::Truncate),
        1 => Just(Op::DeleteOldest),
        2 => Just(Op::Restart),
        4 => Just(Op::Poll),
    ]
}

struct World {
    dir: PathBuf,
    tailer: Option<Tailer>,
    written: Vec<String>,
    delivered: HashMap<String, usize>,
    next_line: usize,
    next_rotation: usize,
    rotated: Vec<PathBuf>,
    /// Deleted files possibly not read to their end: a restart would lose them (the tailer
    /// keeps them open only while it runs), so the model drains first.
    unread_deleted: bool,
}

impl World {
    fn cfg(&self) -> TailConfig {
        TailConfig {
            include: vec![format!("{}/app.log*", self.dir.display())],
            exclude: vec![],
            read_from: ReadFrom::Beginning,
            max_line_bytes: 4096,
            long_lines: LongLines::Split,
            decompress_gzip: false,
        }
    }

    fn active(&self) -> PathBuf {
        self.dir.join("app.log")
    }

    fn poll(&mut self) -> usize {
        let t = self.tailer.as_mut().unwrap();
        let lines = t.poll();
        let n = lines.len();
        for l in lines {
            *self.delivered.entry(l.text).or_default() += 1;
            t.commit(l.file, l.end);
        }
        n
    }

    /// Polls until nothing more comes (gone files are closed after two idle polls).
    fn drain(&mut self) {
        let mut idle = 0;
        let mut polls = 0;
        while idle < 4 {
            if self.poll() == 0 {
                idle += 1;
            } else {
                idle = 0;
            }
            polls += 1;
            // Everything written fits in far fewer polls: more means lines keep coming back.
            assert!(polls < 10_000, "the tailer never runs dry");
        }
        self.unread_deleted = false;
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Write(n) => {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.active())
                    .unwrap();
                let mut buf = String::new();
                for _ in 0..*n {
                    let line = format!(
                        "line-{:06} {}",
                        self.next_line,
                        "x".repeat(self.next_line % 97)
                    );
                    self.next_line += 1;
                    buf.push_str(&line);
                    buf.push('\n');
                    self.written.push(line);
                }
                f.write_all(buf.as_bytes()).unwrap();
            }
            Op::Rename => {
                if self.active().exists() {
                    let to = self.rotation_path();
                    std::fs::rename(self.active(), &to).unwrap();
                    self.rotated.push(to);
                }
            }
            Op::CopyTruncate => {
                if self.active().exists() {
                    let to = self.rotation_path();
                    std::fs::copy(self.active(), &to).unwrap();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(self.active())
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                    self.rotated.push(to);
                }
            }
            Op::Truncate => {
                if self.active().exists() {
                    // Whatever was in it is read first (a truncation loses unread lines by
                    // definition, so the model only truncates read files).
                    self.drain();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(self.active())
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
            }
            Op::DeleteOldest => {
                if !self.rotated.is_empty() {
                    // Only files the tailer has found can be read after deletion.
                    self.poll();
                    let p = self.rotated.remove(0);
                    std::fs::remove_file(p).unwrap();
                    self.unread_deleted = true;
                }
            }
            Op::Restart => {
                if self.unread_deleted {
                    self.drain();
                }
                let saved: Vec<Checkpoint> = self.tailer.take().unwrap().checkpoints();
                // Through the file format, as the agent does.
                let f = self.dir.join("checkpoints.json");
                logflux_agent::tail::save_checkpoints(&f, &saved).unwrap();
                let loaded = logflux_agent::tail::load_checkpoints(&f).unwrap();
                assert_eq!(loaded, saved);
                self.tailer = Some(Tailer::new(self.cfg(), loaded).unwrap());
            }
            Op::Poll => {
                self.poll();
            }
        }
    }

    fn rotation_path(&mut self) -> PathBuf {
        self.next_rotation += 1;
        self.dir.join(format!("app.log.{}", self.next_rotation))
    }
}

fn run(ops: &[Op], dir: &Path) -> Result<(), TestCaseError> {
    let mut w = World {
        dir: dir.to_path_buf(),
        tailer: None,
        written: Vec::new(),
        delivered: HashMap::new(),
        next_line: 0,
        next_rotation: 0,
        rotated: Vec::new(),
        unread_deleted: false,
    };
    w.tailer = Some(Tailer::new(w.cfg(), Vec::new()).unwrap());
    for op in ops {
        w.apply(op);
    }
    w.drain();
    for line in &w.written {
        let n = w.delivered.get(line).copied().unwrap_or(0);
        prop_assert_eq!(n, 1, "{:?} delivered {} times after {:?}", line, n, ops);
    }
    prop_assert_eq!(
        w.delivered.values().sum::<usize>(),
        w.written.len(),
        "lines delivered that were never written"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_line_is_delivered_exactly_once(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        run(&ops, dir.path())?;
    }
}

#[test]
fn a_rotation_between_polls_loses_nothing() {
    use Op::*;
    for ops in [
        vec![Write(3), Poll, Write(2), Rename, Write(2), Poll],
        vec![Write(3), Poll, Write(2), CopyTruncate, Write(2), Poll],
        vec![
            Write(3),
            Poll,
            Write(2),
            CopyTruncate,
            Restart,
            Write(1),
            Poll,
        ],
        vec![Write(3), Poll, Write(2), Rename, DeleteOldest, Poll],
        vec![Write(3), Poll, Truncate, Write(5), Poll, Restart, Write(1)],
    ] {
        let dir = tempfile::tempdir().unwrap();
        run(&ops, dir.path()).unwrap();
    }
}
