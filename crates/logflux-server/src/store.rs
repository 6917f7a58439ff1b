//! Object storage for segments: a local directory (embedded) or any S3-compatible store.
//!
//! Both sit behind [`BlobStore`]; one conformance suite runs against every backend. A `put`
//! returns only once the object is durable: on the local directory the file is written to a
//! temporary name, fsynced, renamed into place and its directory fsynced; on S3 the PUT has
//! completed (S3 acknowledges only durable writes).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore as _, ObjectStoreExt as _};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("object key {0:?} is not valid")]
    Key(String),
    // The I/O error is said in the message only (not also as a `source`), so a printed
    // chain does not repeat it.
    #[error("storage I/O on {key}: {err}")]
    Io { key: String, err: std::io::Error },
    #[error("object store: {0}")]
    Remote(#[from] object_store::Error),
    #[error("store URL {0:?}: {1}")]
    Url(String, String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// Where segments live.
#[derive(Debug, Clone)]
pub enum BlobStore {
    Local(LocalStore),
    Remote(RemoteStore),
}

impl BlobStore {
    /// A local directory.
    pub fn local(root: impl Into<PathBuf>) -> Result<BlobStore> {
        Ok(BlobStore::Local(LocalStore::new(root.into())?))
    }

    /// An S3-compatible bucket: `s3://bucket[/prefix]`. Endpoint, region and credentials come
    /// from the usual `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` for a local test server)
    /// and from `options` (`endpoint`, `region`, `access_key_id`, `secret_access_key`,
    /// `allow_http`), which win.
    pub fn s3(url: &str, options: &[(String, String)]) -> Result<BlobStore> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| StoreError::Url(url.into(), "expected s3://bucket[/prefix]".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::Url(url.into(), "no bucket".into()));
        }
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in options {
            builder = match k.as_str() {
                "endpoint" => builder.with_endpoint(v),
                "region" => builder.with_region(v),
                "access_key_id" => builder.with_access_key_id(v),
                "secret_access_key" => builder.with_secret_access_key(v),
                "allow_http" => builder.with_allow_http(v == "true"),
                other => {
                    return Err(StoreError::Url(
                        url.into(),
                        format!("unknown option {other:?}"),
                    ));
                }
            };
        }
        let store = builder
            .build()
            .map_err(|e| StoreError::Url(url.into(), e.to_string()))?;
        Ok(BlobStore::Remote(RemoteStore {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_owned(),
        }))
    }

    /// Writes `data` at `key`; returns once it is durable.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        match self {
            BlobStore::Local(s) => s.put(key, data).await,
            BlobStore::Remote(s) => {
                s.store
                    .put(&s.path(key)?, data.into())
                    .await
                    .map_err(|e| not_found(key, e))?;
                Ok(())
            }
        }
    }

    /// The bytes of `range` of object `key`: exactly that many, or an error (a range past the
    /// end is an error on every backend; HTTP range reads would silently return fewer).
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            return if range.start == range.end {
                Ok(Bytes::new())
            } else {
                Err(short_read(key, &range, 0))
            };
        }
        match self {
            BlobStore::Local(s) => s.get_range(key, range).await,
            BlobStore::Remote(s) => {
                let data = s
                    .store
                    .get_range(&s.path(key)?, range.clone())
                    .await
                    .map_err(|e| not_found(key, e))?;
                if data.len() as u64 != range.end - range.start {
                    return Err(short_read(key, &range, data.len()));
                }
                Ok(data)
            }
        }
    }

    /// The whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        match self {
            BlobStore::Local(s) => s.get(key).await,
            BlobStore::Remote(s) => {
                let r = s
                    .store
                    .get(&s.path(key)?)
                    .await
                    .map_err(|e| not_found(key, e))?;
                Ok(r.bytes().await?)
            }
        }
    }

    /// The object's size in bytes.
    pub async fn size(&self, key: &str) -> Result<u64> {
        match self {
            BlobStore::Local(s) => s.size(key).await,
            BlobStore::Remote(s) => {
                let m = s
                    .store
                    .head(&s.path(key)?)
                    .await
                    .map_err(|e| not_found(key, e))?;
                Ok(m.size)
            }
        }
    }

    /// Deletes `key`; deleting an absent object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            BlobStore::Local(s) => s.delete(key).await,
            BlobStore::Remote(s) => match s.store.delete(&s.path(key)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Moves object `from` to `to` (replacing `to`); returns once the move is durable. On the
    /// local directory a rename; on S3 a copy, then the delete of `from`.
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        match self {
            BlobStore::Local(s) => s.rename(from, to).await,
            BlobStore::Remote(s) => {
                s.store
                    .copy(&s.path(from)?, &s.path(to)?)
                    .await
                    .map_err(|e| not_found(from, e))?;
                self.delete(from).await
            }
        }
    }

    /// Every object key under `prefix` (`""` for all), with its last-modified time in Unix
    /// seconds.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        match self {
            BlobStore::Local(s) => s.list(prefix).await,
            BlobStore::Remote(s) => {
                use futures_util::TryStreamExt as _;
                let full = if s.prefix.is_empty() {
                    prefix.to_owned()
                } else {
                    format!("{}/{prefix}", s.prefix)
                };
                let p = if full.is_empty() {
                    None
                } else {
                    Some(ObjectPath::from(full.trim_end_matches('/')))
                };
                let metas: Vec<_> = s.store.list(p.as_ref()).try_collect().await?;
                Ok(metas
                    .into_iter()
                    .map(|m| {
                        let k = m.location.to_string();
                        let k = if s.prefix.is_empty() {
                            k
                        } else {
                            k.strip_prefix(&format!("{}/", s.prefix))
                                .unwrap_or(&k)
                                .to_owned()
                        };
                        (k, m.last_modified.timestamp())
                    })
                    .collect())
            }
        }
    }
}

fn short_read(key: &str, range: &Range<u64>, got: usize) -> StoreError {
    StoreError::Io {
        key: key.to_owned(),
        err: std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("range {range:?} gave {got} bytes"),
        ),
    }
}

fn not_found(key: &str, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } => StoreError::NotFound(key.to_owned()),
        other => StoreError::Remote(other),
    }
}

/// Checks a key: `/`-separated segments of `[A-Za-z0-9._=-]`, none empty, `.` or `..`.
fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'='))
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::Key(key.to_owned()))
    }
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct RemoteStore {
    store: Arc<object_store::aws::AmazonS3>,
    prefix: String,
}

impl RemoteStore {
    fn path(&self, key: &str) -> Result<ObjectPath> {
        check_key(key)?;
        Ok(if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        })
    }
}

/// A local directory, with fsync on every write.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    fn new(root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&root).map_err(|err| StoreError::Io {
            key: root.display().to_string(),
            err,
        })?;
        Ok(LocalStore { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        let path = self.path(key)?;
        let key = key.to_owned();
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || write_durably(&root, &path, &data))
            .await
            .map_err(|e| StoreError::Io {
                key: key.clone(),
                err: std::io::Error::other(e),
            })?
            .map_err(|err| StoreError::Io { key, err })
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key)?;
        let k = key.to_owned();
        tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
            use std::io::{Read as _, Seek as _};
            let mut f = std::fs::File::open(&path)?;
            let len = f.metadata()?.len();
            if range.start > range.end || range.end > len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("range {range:?} outside an object of {len} bytes"),
                ));
            }
            f.seek(std::io::SeekFrom::Start(range.start))?;
            // Read into spare capacity: no zeroing of a buffer the read overwrites anyway (a
            // scan's reads are megabytes each).
            let want = (range.end - range.start) as usize;
            let mut buf = Vec::with_capacity(want);
            f.take(want as u64).read_to_end(&mut buf)?;
            if buf.len() != want {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "range {range:?}: the object ended after {} bytes",
                        buf.len()
                    ),
                ));
            }
            Ok(buf.into())
        })
        .await
        .map_err(|e| StoreError::Io {
            key: k.clone(),
            err: std::io::Error::other(e),
        })?
        .map_err(|e| io_err(&k, e))
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key)?;
        tokio::fs::read(&path)
            .await
            .map(Bytes::from)
            .map_err(|e| io_err(key, e))
    }

    async fn size(&self, key: &str) -> Result<u64> {
        let path = self.path(key)?;
        tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .map_err(|e| io_err(key, e))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(key, e)),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (src, dst) = (self.path(from)?, self.path(to)?);
        let root = self.root.clone();
        let key = from.to_owned();
        tokio::task::spawn_blocking(move || rename_durably(&root, &src, &dst))
            .await
            .map_err(|e| StoreError::Io {
                key: key.clone(),
                err: std::io::Error::other(e),
            })?
            .map_err(|e| io_err(&key, e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let rd = match std::fs::read_dir(&dir) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&dir.display().to_string(), e)),
                };
                for entry in rd {
                    let entry = entry.map_err(|e| io_err(&dir.display().to_string(), e))?;
                    let p = entry.path();
                    let ft = entry
                        .file_type()
                        .map_err(|e| io_err(&p.display().to_string(), e))?;
                    if ft.is_dir() {
                        stack.push(p);
                    } else if ft.is_file() {
                        let rel = p
                            .strip_prefix(&root)
                            .expect("under root")
                            .to_string_lossy()
                            .into_owned();
                        // Temporary files of interrupted writes are not objects.
                        if rel.ends_with(".tmp") || !rel.starts_with(&prefix) {
                            continue;
                        }
                        let mtime = entry
                            .metadata()
                            .ok()
                            .and_then(|m| m.modified().ok())
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .map_or(0, |d| d.as_secs() as i64);
                        out.push((rel, mtime));
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Io {
            key: String::new(),
            err: std::io::Error::other(e),
        })?
    }
}

fn io_err(key: &str, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(key.to_owned())
    } else {
        StoreError::Io {
            key: key.to_owned(),
            err: e,
        }
    }
}

/// Renames `src` to `dst`, creating `dst`'s directories, and fsyncs both directories (and
/// every directory created up to `root`).
fn rename_durably(root: &Path, src: &Path, dst: &Path) -> std::io::Result<()> {
    let dir = dst.parent().expect("keys have a parent");
    let created = !dir.exists();
    if created {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::rename(src, dst)?;
    std::fs::File::open(dir)?.sync_all()?;
    if let Some(src_dir) = src.parent() {
        std::fs::File::open(src_dir)?.sync_all()?;
    }
    if created {
        let mut d = dir;
        while d != root {
            let Some(parent) = d.parent() else { break };
            std::fs::File::open(parent)?.sync_all()?;
            d = parent;
        }
    }
    Ok(())
}

/// Writes `data` to `path` so that after a crash the file is either absent or complete:
/// temporary file, fsync, rename, fsync of the directory — and of every directory up to `root`
/// when new ones were created.
fn write_durably(root: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().expect("keys have a parent");
    let created = !dir.exists();
    if created {
        std::fs::create_dir_all(dir)?;
    }
    // Unique per write: two writers of one key at once (housekeeping republishing a metadata
    // object while an admin request publishes it) must not share a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    if created {
        let mut d = dir;
        while d != root {
            let Some(parent) = d.parent() else { break };
            std::fs::File::open(parent)?.sync_all()?;
            d = parent;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
