//! The spool: a durable, append-only, segmented on-disk queue of sealed records. It only ever
//! holds ciphertext (records are sealed before they get here).
//!
//! ```text
//! DIR/segments/NNNNNNNNNNNNNNNNNNNN.spl   frames, appended in order
//! DIR/head                                "SEGMENT OFFSET\n": everything before is acknowledged
//! frame   = len:u32le crc32c(record):u32le record{len}
//! record  = record_id:str key_id:str nonce:[12] count:u32le min_ts:i64le max_ts:i64le
//!           sealed_ns:i64le tokens:varint token:u64le{tokens} body:bytes
//! ```
//!
//! Appends go to the newest segment (a new one starts past `segment_bytes`). The shipper reads
//! from the head and, once the server acknowledged, advances the head; segments entirely
//! before it are deleted. On open, the spool scans from the head: a torn or corrupt tail (a
//! crash mid-write) is cut, and damage in the middle of a segment (bit rot) is removed up to
//! the next whole frame, so nothing half-written or corrupt is ever shipped and one damaged
//! frame costs only itself. Removed bytes are counted (`spool_damaged_bytes_total`).
//!
//! Durability by fsync policy (what a power loss or kernel crash can lose; a crash of the agent
//! process alone loses nothing already appended, since written data lives in the page cache):
//!
//! | policy | an append returns when | loss window on power loss |
//! |---|---|---|
//! | `always` | the frame is fsynced | none |
//! | `interval` | the frame is written; fsync every interval | up to one interval |
//! | `never` | the frame is written | until the kernel writes back (typically ≤ 30 s) |

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use logflux_proto::codec::{Reader, put_str, put_varint};

/// Largest record the spool accepts (a sealed batch plus its tokens).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
const FRAME_HEADER: usize = 8;
/// A wholly acknowledged tail segment at least this large is replaced by a new one, freeing
/// the disk (a smaller one is kept: rolling costs a file and two fsyncs).
const ROLL_WHEN_IDLE: u64 = 1024 * 1024;
/// Bytes kept aside on the spool's file system (the file `reserve`, zeros) so that an
/// acknowledgement can always be recorded: the head file needs a block of its own, and once
/// appends have filled the disk, a spool that cannot record an acknowledgement can never delete
/// what was delivered, so a full disk would stay full for ever.
const RESERVE_BYTES: usize = 64 * 1024;

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    Always,
    Interval(Duration),
    Never,
}

/// Spool settings.
#[derive(Debug, Clone, Copy)]
pub struct SpoolConfig {
    /// Most bytes of unacknowledged records on disk.
    pub max_bytes: u64,
    /// A new segment file starts past this size.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_bytes: 1024 * 1024 * 1024,
            segment_bytes: 64 * 1024 * 1024,
            fsync: FsyncPolicy::Always,
        }
    }
}

/// Spool errors.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool is full ({used} of {max} bytes)")]
    Full { used: u64, max: u64 },
    #[error("record of {0} bytes is larger than the spool's limit")]
    TooLarge(usize),
    // The I/O error is in the message only: as a `source` too, a chain (`{:#}`) would print
    // it twice.
    #[error("spool I/O on {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("spool head file {0} is malformed")]
    Head(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |error| SpoolError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// A sealed record as the spool keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRecord {
    pub record_id: String,
    pub key_id: String,
    pub nonce: [u8; 12],
    pub count: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    /// When the batch was sealed (Unix ns), for delivery latency.
    pub sealed_ns: i64,
    /// Sorted, distinct blind tokens.
    pub tokens: Vec<u64>,
    /// `ciphertext ‖ tag`.
    pub body: Vec<u8>,
}

impl SpoolRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.record_id);
        put_str(out, &self.key_id);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.min_ts.to_le_bytes());
        out.extend_from_slice(&self.max_ts.to_le_bytes());
        out.extend_from_slice(&self.sealed_ns.to_le_bytes());
        put_varint(out, self.tokens.len() as u64);
        for t in &self.tokens {
            out.extend_from_slice(&t.to_le_bytes());
        }
        put_varint(out, self.body.len() as u64);
        out.extend_from_slice(&self.body);
    }

    fn decode(buf: &[u8]) -> Option<SpoolRecord> {
        let mut r = Reader::new(buf);
        let rec = SpoolRecord {
            record_id: r.string().ok()?,
            key_id: r.string().ok()?,
            nonce: r.array::<12>().ok()?,
            count: u32::from_le_bytes(r.array().ok()?),
            min_ts: i64::from_le_bytes(r.array().ok()?),
            max_ts: i64::from_le_bytes(r.array().ok()?),
            sealed_ns: i64::from_le_bytes(r.array().ok()?),
            tokens: {
                let n = usize::try_from(r.varint().ok()?).ok()?;
                if n > r.remaining() / 8 {
                    return None;
                }
                (0..n)
                    .map(|_| r.array().ok().map(u64::from_le_bytes))
                    .collect::<Option<Vec<_>>>()?
            },
            body: r.bytes().ok()?.to_vec(),
        };
        (r.remaining() == 0).then_some(rec)
    }

    /// Bytes this record takes on disk.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER
            + 64
            + self.record_id.len()
            + self.key_id.len()
            + self.tokens.len() * 8
            + self.body.len()
    }
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// What the spool holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub records: u64,
    pub bytes: u64,
    /// `min_ts` of the oldest unacknowledged record.
    pub oldest_ts: Option<i64>,
}

/// The spool. Methods do blocking file I/O: call them from a blocking thread.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    config: SpoolConfig,
    head: Position,
    /// The segment being appended to, its id and its length.
    tail: (u64, File, u64),
    /// Segment ids on disk, oldest first, with their sizes.
    segments: Vec<(u64, u64)>,
    records: u64,
    oldest_ts: Option<i64>,
    /// How much of the tail segment is known durable (fsynced): under `FsyncPolicy::Always`
    /// the shipper reads no further, and a failed fsync cuts the tail back to it.
    synced: u64,
    /// Records appended to the tail segment after `synced`.
    unsynced_records: u64,
    /// A failed fsync's cut that could not be made yet: made before the next write.
    cut_pending: bool,
    /// How many times appended records were cut after a failed fsync (see
    /// [`Spool::rewinds`]).
    rewinds: u64,
    /// Fsyncs to fail (tests: the fault a dying disk gives).
    #[cfg(test)]
    fail_syncs: u32,
    /// Bytes of torn or corrupt frames removed when the spool was opened.
    damaged_bytes: u64,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join("segments").join(format!("{id:020}.spl"))
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, recovering from a crash: frames after
    /// the head are checked, and the first torn or corrupt one and all after it are cut off.
    pub fn open(dir: &Path, config: SpoolConfig) -> Result<Spool, SpoolError> {
        let seg_dir = dir.join("segments");
        fs::create_dir_all(&seg_dir).map_err(io_err(&seg_dir))?;
        let head_path = dir.join("head");
        let head = match fs::read_to_string(&head_path) {
            Ok(text) => {
                let mut it = text.split_whitespace().map(str::parse::<u64>);
                match (it.next(), it.next()) {
                    (Some(Ok(segment)), Some(Ok(offset))) => Position { segment, offset },
                    _ => return Err(SpoolError::Head(head_path)),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Position {
                segment: 1,
                offset: 0,
            },
            Err(e) => return Err(io_err(&head_path)(e)),
        };
        let mut ids: Vec<u64> = fs::read_dir(&seg_dir)
            .map_err(io_err(&seg_dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".spl")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        // Segments wholly before the head were acknowledged: remove leftovers.
        for id in ids.iter().filter(|&&id| id < head.segment) {
            let p = segment_path(dir, *id);
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        ids.retain(|&id| id >= head.segment);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            config,
            head,
            tail: (
                0,
                File::open("/dev/null").map_err(io_err(Path::new("/dev/null")))?,
                0,
            ),
            segments: Vec::new(),
            records: 0,
            oldest_ts: None,
            synced: 0,
            unsynced_records: 0,
            cut_pending: false,
            rewinds: 0,
            #[cfg(test)]
            fail_syncs: 0,
            damaged_bytes: 0,
        };
        // Scan every frame after the head. Damage is handled per segment: a torn or corrupt
        // tail (a crash mid-write) is cut; damage followed by whole frames (bit rot, a stray
        // write) is removed and the scan resynchronises on the next whole frame, so one bad
        // frame never costs the records after it.
        for &id in &ids {
            let p = segment_path(dir, id);
            let data = fs::read(&p).map_err(io_err(&p))?;
            let start = if id == head.segment {
                (head.offset as usize).min(data.len())
            } else {
                0
            };
            let scan = scan_segment(&data, start);
            spool.records += scan.records;
            if spool.oldest_ts.is_none() {
                spool.oldest_ts = scan.oldest_ts;
            }
            let len = if scan.damaged.is_empty() {
                data.len() as u64
            } else {
                let kept: usize = scan.kept.iter().map(|r| r.end - r.start).sum();
                let dropped = data.len() - start - kept;
                tracing::warn!(
                    segment = id,
                    at = scan.damaged[0],
                    regions = scan.damaged.len(),
                    dropped,
                    "spool: removing torn or corrupt bytes"
                );
                spool.damaged_bytes += dropped as u64;
                let mut whole = data[..start].to_vec();
                for r in &scan.kept {
                    whole.extend_from_slice(&data[r.clone()]);
                }
                let tmp = p.with_extension("spl.tmp");
                {
                    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
                    f.write_all(&whole).map_err(io_err(&tmp))?;
                    f.sync_all().map_err(io_err(&tmp))?;
                }
                fs::rename(&tmp, &p).map_err(io_err(&p))?;
                sync_dir(&seg_dir)?;
                whole.len() as u64
            };
            spool.segments.push((id, len));
        }
        let tail_id = spool.segments.last().map_or(head.segment, |s| s.0);
        if spool.segments.is_empty() {
            spool.segments.push((tail_id, 0));
        }
        let p = segment_path(dir, tail_id);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io_err(&p))?;
        let len = f.metadata().map_err(io_err(&p))?.len();
        // What a crash of the process (not of the machine) left in the page cache is made
        // durable before anything is read from it.
        f.sync_data().map_err(io_err(&p))?;
        spool.tail = (tail_id, f, len);
        spool.synced = len;
        sync_dir(&seg_dir)?;
        // A power loss can leave the head (fsynced on every acknowledgement) past the end of
        // its segment when the acknowledged records had not reached the disk (possible under
        // `interval` and `never`): the head comes back to the segment's end, or new records
        // would land behind it, never to be shipped.
        let head_len = spool
            .segments
            .iter()
            .find(|s| s.0 == spool.head.segment)
            .map_or(0, |s| s.1);
        if spool.head.offset > head_len {
            tracing::warn!(
                segment = spool.head.segment,
                head = spool.head.offset,
                end = head_len,
                "spool: the head was past its segment's end (records lost in a power loss); moved back"
            );
            spool.head.offset = head_len;
            spool.write_head(spool.head)?;
        }
        spool.keep_reserve();
        Ok(spool)
    }

    /// Makes sure the reserve exists and is whole; best effort (on a full disk it waits for the
    /// next acknowledgement that frees space).
    fn keep_reserve(&self) {
        let p = self.dir.join("reserve");
        if fs::metadata(&p).is_ok_and(|m| m.len() >= RESERVE_BYTES as u64) {
            return;
        }
        let made = File::create(&p).and_then(|mut f| {
            f.write_all(&[0u8; RESERVE_BYTES])
                .and_then(|()| f.sync_all())
        });
        if made.is_err() {
            let _ = fs::remove_file(&p);
        }
    }

    /// Records `head` durably: a new file renamed over `head`.
    fn write_head(&self, head: Position) -> Result<(), SpoolError> {
        let tmp = self.dir.join("head.tmp");
        let path = self.dir.join("head");
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            writeln!(f, "{} {}", head.segment, head.offset).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir)
    }

    /// Everything before this position is acknowledged.
    pub fn head(&self) -> Position {
        self.head
    }

    /// Just after the last record appended: the head reaches it once everything in the spool
    /// is acknowledged.
    pub fn end(&self) -> Position {
        Position {
            segment: self.tail.0,
            offset: self.tail.2,
        }
    }

    /// Bytes of unacknowledged records on disk.
    pub fn used_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|&(id, len)| {
                if id == self.head.segment {
                    len.saturating_sub(self.head.offset)
                } else {
                    len
                }
            })
            .sum()
    }

    /// What the spool holds.
    /// Bytes of torn or corrupt frames removed when the spool was opened (0 after a clean
    /// shutdown); the agent reports them as a metric.
    pub fn damaged_bytes(&self) -> u64 {
        self.damaged_bytes
    }

    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            records: self.records,
            bytes: self.used_bytes(),
            oldest_ts: self.oldest_ts,
        }
    }

    /// Appends a record; durable on return under `FsyncPolicy::Always`.
    pub fn append(&mut self, rec: &SpoolRecord) -> Result<(), SpoolError> {
        self.append_inner(rec, self.config.fsync == FsyncPolicy::Always)
    }

    /// Appends a record without the fsync of `FsyncPolicy::Always`: several records appended
    /// so are made durable by one [`Spool::sync_appended`] (a group commit). Nobody may be
    /// told a record is spooled before that returns.
    pub fn append_deferred(&mut self, rec: &SpoolRecord) -> Result<(), SpoolError> {
        self.append_inner(rec, false)
    }

    /// Makes the records appended by [`Spool::append_deferred`] durable under
    /// `FsyncPolicy::Always` (one fsync for all of them); under the other policies they are
    /// left to the policy, as [`Spool::append`] leaves them.
    pub fn sync_appended(&mut self) -> Result<(), SpoolError> {
        if self.config.fsync == FsyncPolicy::Always {
            self.sync()
        } else {
            Ok(())
        }
    }

    fn append_inner(&mut self, rec: &SpoolRecord, fsync: bool) -> Result<(), SpoolError> {
        self.make_pending_cut()?;
        let mut payload = Vec::with_capacity(rec.encoded_len());
        rec.encode(&mut payload);
        if payload.len() > MAX_RECORD_BYTES {
            return Err(SpoolError::TooLarge(payload.len()));
        }
        let frame_len = (FRAME_HEADER + payload.len()) as u64;
        let used = self.used_bytes();
        if used + frame_len > self.config.max_bytes {
            return Err(SpoolError::Full {
                used,
                max: self.config.max_bytes,
            });
        }
        if self.tail.2 > 0 && self.tail.2 + frame_len > self.config.segment_bytes {
            self.roll()?;
        }
        let mut frame = Vec::with_capacity(frame_len as usize);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        let p = segment_path(&self.dir, self.tail.0);
        if let Err(e) = self.tail.1.write_all(&frame) {
            // A partial frame may be on disk (disk full): cut it so the segment stays whole.
            let _ = self.tail.1.set_len(self.tail.2);
            return Err(io_err(&p)(e));
        }
        self.tail.2 += frame_len;
        if let Some(last) = self.segments.last_mut() {
            last.1 = self.tail.2;
        }
        self.records += 1;
        self.unsynced_records += 1;
        if self.oldest_ts.is_none() {
            self.oldest_ts = Some(rec.min_ts);
        }
        if fsync {
            self.sync()?;
        }
        Ok(())
    }

    /// Fsyncs appended data (the `interval` policy's timer calls this).
    ///
    /// Under `FsyncPolicy::Always` a failed fsync cuts the tail back to what the last good
    /// one made durable, and counts a rewind ([`Spool::rewinds`]): after a failed writeback
    /// Linux may drop the dirty pages and mark them clean, so a later fsync that succeeds does
    /// not prove they reached the disk. Whoever appended them must append them again. Under
    /// the other policies, where nobody waited for the fsync, the data is left as it is.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.make_pending_cut()?;
        if self.dirty() {
            let p = segment_path(&self.dir, self.tail.0);
            if let Err(e) = self.sync_tail() {
                if self.config.fsync == FsyncPolicy::Always {
                    self.cut_pending = true;
                    self.rewinds += 1;
                    // Best now; if this fails too, the next write or fsync tries again first.
                    let _ = self.make_pending_cut();
                }
                return Err(io_err(&p)(e));
            }
            self.synced = self.tail.2;
            self.unsynced_records = 0;
        }
        Ok(())
    }

    /// Whether the tail holds appended bytes no fsync has covered yet.
    fn dirty(&self) -> bool {
        self.tail.2 > self.synced
    }

    /// Makes the next `n` fsyncs fail (tests).
    #[cfg(test)]
    pub(crate) fn fail_next_syncs(&mut self, n: u32) {
        self.fail_syncs = n;
    }

    fn sync_tail(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_syncs > 0 {
            self.fail_syncs -= 1;
            return Err(io::Error::other("injected fsync failure"));
        }
        self.tail.1.sync_data()
    }

    /// Cuts the tail segment back to `synced` after a failed fsync (see [`Spool::sync`]).
    fn make_pending_cut(&mut self) -> Result<(), SpoolError> {
        if !self.cut_pending {
            return Ok(());
        }
        let p = segment_path(&self.dir, self.tail.0);
        self.tail.1.set_len(self.synced).map_err(io_err(&p))?;
        self.cut_pending = false;
        self.tail.2 = self.synced;
        if let Some(last) = self.segments.last_mut() {
            last.1 = self.synced;
        }
        self.records = self.records.saturating_sub(self.unsynced_records);
        self.unsynced_records = 0;
        if self.records == 0 {
            self.oldest_ts = None;
        }
        Ok(())
    }

    /// Cuts the records appended since the last good fsync (under `FsyncPolicy::Always`; a
    /// no-op otherwise): a writer whose group saw a rewind appends the whole group again from
    /// a clean tail.
    pub fn discard_unsynced(&mut self) -> Result<(), SpoolError> {
        if self.config.fsync == FsyncPolicy::Always && self.dirty() {
            self.cut_pending = true;
        }
        self.make_pending_cut()
    }

    /// How many times records appended were cut again after a failed fsync (under
    /// `FsyncPolicy::Always`): a writer that sees it change between its appends and its
    /// [`Spool::sync_appended`] appends its records again.
    pub fn rewinds(&self) -> u64 {
        self.rewinds
    }

    fn roll(&mut self) -> Result<(), SpoolError> {
        self.sync()?;
        let id = self.tail.0 + 1;
        let p = segment_path(&self.dir, id);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io_err(&p))?;
        sync_dir(&self.dir.join("segments"))?;
        self.tail = (id, f, 0);
        self.synced = 0;
        self.segments.push((id, 0));
        Ok(())
    }

    /// Up to `max_records` records (and about `max_bytes`) from the head, with the position
    /// just after each. Does not move the head.
    pub fn peek(
        &self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<(SpoolRecord, Position)>, SpoolError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for &(id, len) in &self.segments {
            if out.len() >= max_records || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            let start = if id == self.head.segment {
                self.head.offset
            } else {
                0
            };
            // Under `always`, nothing is shipped before it is durable.
            let len = if id == self.tail.0 && self.config.fsync == FsyncPolicy::Always {
                len.min(self.synced)
            } else {
                len
            };
            if start >= len {
                continue;
            }
            let p = segment_path(&self.dir, id);
            let mut f = File::open(&p).map_err(io_err(&p))?;
            f.seek(SeekFrom::Start(start)).map_err(io_err(&p))?;
            let mut off = start;
            while off < len && out.len() < max_records && (bytes < max_bytes || out.is_empty()) {
                let mut header = [0u8; FRAME_HEADER];
                f.read_exact(&mut header).map_err(io_err(&p))?;
                let n = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
                if n > MAX_RECORD_BYTES || off + (FRAME_HEADER + n) as u64 > len {
                    return Err(io_err(&p)(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "corrupt frame length",
                    )));
                }
                let mut payload = vec![0u8; n];
                f.read_exact(&mut payload).map_err(io_err(&p))?;
                let rec = (crc32c::crc32c(&payload) == crc)
                    .then(|| SpoolRecord::decode(&payload))
                    .flatten()
                    .ok_or_else(|| {
                        io_err(&p)(io::Error::new(io::ErrorKind::InvalidData, "corrupt frame"))
                    })?;
                off += (FRAME_HEADER + n) as u64;
                bytes += n;
                out.push((
                    rec,
                    Position {
                        segment: id,
                        offset: off,
                    },
                ));
            }
        }
        Ok(out)
    }

    /// Acknowledges every record before `upto`: persists the head (fsynced) and deletes
    /// segments that are wholly acknowledged.
    pub fn ack(&mut self, upto: Position, acked_records: u64) -> Result<(), SpoolError> {
        if upto <= self.head {
            return Ok(());
        }
        // Move to the start of the next segment when this one is done and not the tail.
        let mut head = upto;
        if let Some(&(_, len)) = self.segments.iter().find(|s| s.0 == head.segment)
            && head.offset >= len
            && head.segment < self.tail.0
        {
            head = Position {
                segment: head.segment + 1,
                offset: 0,
            };
        }
        // Everything acknowledged, in a tail segment of some size: start a new tail so the old
        // file can be deleted. Otherwise a spool that caught up keeps its tail's bytes on disk
        // until the next roll, and a full disk would stay full after the backlog was delivered.
        if head.segment == self.tail.0
            && head.offset >= self.tail.2
            && self.tail.2 >= ROLL_WHEN_IDLE
        {
            self.roll()?;
            head = Position {
                segment: self.tail.0,
                offset: 0,
            };
        }
        if let Err(e) = self.write_head(head) {
            // A full disk: give up the reserve for this one write, then try again.
            if fs::remove_file(self.dir.join("reserve")).is_err() {
                return Err(e);
            }
            self.write_head(head)?;
        }
        self.head = head;
        self.records = self.records.saturating_sub(acked_records);
        let before: Vec<u64> = self
            .segments
            .iter()
            .filter(|s| s.0 < head.segment)
            .map(|s| s.0)
            .collect();
        for id in before {
            let p = segment_path(&self.dir, id);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&p)(e)),
            }
        }
        self.segments.retain(|s| s.0 >= head.segment);
        self.keep_reserve();
        self.oldest_ts = if self.records == 0 {
            None
        } else {
            self.peek(1, 0)?.first().map(|(r, _)| r.min_ts)
        };
        Ok(())
    }
}

/// What a recovery scan of one segment found.
struct SegmentScan {
    records: u64,
    oldest_ts: Option<i64>,
    /// Byte ranges of whole frames, in order.
    kept: Vec<std::ops::Range<usize>>,
    /// Offsets where a damaged region starts.
    damaged: Vec<usize>,
}

/// Walks the frames of `data` from `start`. At a bad frame it looks for the next place where
/// two whole frames follow each other (or one whole frame ends the segment): first where the
/// bad frame's own length points, then byte by byte. A CRC-32C match by chance at a wrong
/// place is about 2^-32 per candidate, and two in a row are required.
fn scan_segment(data: &[u8], start: usize) -> SegmentScan {
    let mut scan = SegmentScan {
        records: 0,
        oldest_ts: None,
        kept: Vec::new(),
        damaged: Vec::new(),
    };
    // Where a frame starting at `at` would end, if its length fits the segment (cheap: most
    // wrong places fail here, before any checksum is computed).
    let fits = |at: usize| {
        let n = u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize;
        let end = at + FRAME_HEADER + n;
        (n <= MAX_RECORD_BYTES && end <= data.len()).then_some(end)
    };
    let resumes_at = |at: usize| {
        let Some(next) = fits(at) else { return false };
        if next != data.len() && fits(next).is_none() {
            return false;
        }
        match frame_at(data, at) {
            Some(_) => next == data.len() || frame_at(data, next).is_some(),
            None => false,
        }
    };
    let mut off = start;
    while off < data.len() {
        if let Some((rec, next)) = frame_at(data, off) {
            scan.records += 1;
            scan.oldest_ts.get_or_insert(rec.min_ts);
            match scan.kept.last_mut() {
                Some(r) if r.end == off => r.end = next,
                _ => scan.kept.push(off..next),
            }
            off = next;
            continue;
        }
        scan.damaged.push(off);
        let by_length = data
            .get(off..off + 4)
            .and_then(|b| b.try_into().ok())
            .map(|b| off + FRAME_HEADER + u32::from_le_bytes(b) as usize)
            .filter(|&at| at < data.len() && resumes_at(at));
        match by_length.or_else(|| (off + 1..data.len()).find(|&at| resumes_at(at))) {
            Some(at) => off = at,
            None => break,
        }
    }
    scan
}

/// The frame at `off`, and where the next one starts; `None` if torn or corrupt.
fn frame_at(data: &[u8], off: usize) -> Option<(SpoolRecord, usize)> {
    let header = data.get(off..off + FRAME_HEADER)?;
    let n = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if n > MAX_RECORD_BYTES {
        return None;
    }
    let payload = data.get(off + FRAME_HEADER..off + FRAME_HEADER + n)?;
    if crc32c::crc32c(payload) != crc {
        return None;
    }
    Some((SpoolRecord::decode(payload)?, off + FRAME_HEADER + n))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests;
