//! A whole stack for client tests, through real processes: `logflux up` (server and agent),
//! entries sent over the agent's Unix socket and TCP and over the SDK-compatible ingest API,
//! and the `logflux` binary run as a user runs it.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

pub const BIN: &str = env!("CARGO_BIN_EXE_logflux");

/// A running `logflux up` and what it wrote.
pub struct Stack {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub child: tokio::process::Child,
    /// up.env as a map.
    pub env: HashMap<String, String>,
}

/// A value of up.env as the shell reads it: bare, or in single quotes (`'\''` for a quote).
fn sh_unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("'\\''", "'"),
        None => v.to_owned(),
    }
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_inner(None, "127.0.0.1:0").await
    }

    /// As [`Stack::start`], the server listening on `http` (a fixed address, so that a
    /// restart on it is the same server to its clients).
    pub async fn start_on(http: &str) -> Stack {
        Stack::start_inner(None, http).await
    }

    /// As [`Stack::start`], with every log line (debug level) of the server and the agent
    /// written to `log`.
    pub async fn start_logged(log: &Path) -> Stack {
        Stack::start_inner(Some(log), "127.0.0.1:0").await
    }

    /// `logflux up` again on the directory a stopped stack left.
    pub async fn restart(tmp: tempfile::TempDir, dir: PathBuf) -> Stack {
        Stack::launch(tmp, dir, None, "127.0.0.1:0").await
    }

    /// As [`Stack::restart`], the server listening on `http`.
    pub async fn restart_on(tmp: tempfile::TempDir, dir: PathBuf, http: &str) -> Stack {
        Stack::launch(tmp, dir, None, http).await
    }

    /// Stops `logflux up` as Ctrl-C does (it flushes and ends its live streams) and waits for
    /// it; the directory stays for [`Stack::restart`].
    pub async fn stop(self) -> (tempfile::TempDir, PathBuf) {
        let mut child = self.child;
        let pid = child.id().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("logflux up stops within 60 s of SIGINT")
            .unwrap();
        (self.tmp, self.dir)
    }

    async fn start_inner(log: Option<&Path>, http: &str) -> Stack {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("stack");
        // 2048-bit keys made ahead to keep tests fast; `up` makes RSA-4096 ones when absent.
        let out = std::process::Command::new(BIN)
            .args(["keys", "generate", "--bits", "2048", "--dir"])
            .arg(dir.join("keys"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Stack::launch(tmp, dir, log, http).await
    }

    async fn launch(tmp: tempfile::TempDir, dir: PathBuf, log: Option<&Path>, http: &str) -> Stack {
        let mut cmd = tokio::process::Command::new(BIN);
        match log {
            Some(path) => {
                cmd.env("LOGFLUX_LOG", "debug")
                    .stderr(std::fs::File::create(path).unwrap());
            }
            None => {
                cmd.stderr(Stdio::inherit());
            }
        }
        let mut child = cmd
            .arg("up")
            .arg("--dir")
            .arg(&dir)
            .arg("--socket")
            .arg(dir.join("agent.sock"))
            .args([
                "--tcp",
                "127.0.0.1:0",
                "--http",
                http,
                "--serve",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
                .await
                .expect("logflux up ready within 120 s")
                .unwrap()
                .expect("logflux up exited before ready");
            if line.starts_with("ready") {
                break;
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let env = std::fs::read_to_string(dir.join("up.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), sh_unquote(v)))
            .collect();
        Stack {
            tmp,
            dir,
            child,
            env,
        }
    }

    pub fn var(&self, k: &str) -> &str {
        &self.env[k]
    }

    /// A `logflux` command configured by this stack's client.yaml only (no LOGFLUX_* from the
    /// test's own environment, a private HOME).
    pub fn command(&self) -> std::process::Command {
        self.command_of(BIN)
    }

    /// As [`Stack::command`], running `program` (a wrapper such as `script`) with the same
    /// environment.
    pub fn command_of(&self, program: &str) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("LOGFLUX_") || k.ends_with("_PROXY") || k.ends_with("_proxy") {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.tmp.path())
            .env("LOGFLUX_CONFIG", self.dir.join("client.yaml"))
            .env("NO_COLOR", "1");
        c
    }

    /// Runs `logflux ARGS`: exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `logflux search ARGS --format ndjson --limit 0`, parsed; panics on exit status 2.
    pub fn search(&self, args: &[&str]) -> (i32, Vec<Value>) {
        let mut all = vec!["search", "--format", "ndjson", "--limit", "0"];
        all.extend_from_slice(args);
        let (code, out, err) = self.run(&all);
        assert!(
            code == 0 || code == 1,
            "logflux {all:?}: exit {code}: {err}"
        );
        let v: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            code == 1,
            v.is_empty(),
            "exit status 1 exactly when nothing matched"
        );
        (code, v)
    }

    /// Sends one intact entry, then flips a byte of the oldest segment — it holds `up`'s
    /// self-test entry (segment names are ULIDs) — so that record fails its integrity check.
    /// Returns the self-test entry's payload, which must never be shown.
    pub async fn damage_selftest_record(&self) -> String {
        self.send_unix(&[
            json!({"payload": "an intact entry", "source": "t", "entryType": 1, "logLevel": 6}),
        ])
        .await;
        self.wait_for_entries(2).await;
        self.damage_oldest_segment()
    }

    /// Flips a byte of the oldest segment, which holds `up`'s self-test entry (`up` sends and
    /// flushes it before it is ready; segment names are ULIDs), whatever was sent after it.
    /// Returns the self-test entry's payload, which must never be shown.
    pub fn damage_oldest_segment(&self) -> String {
        let (_, found) = self.search(&["--source", "logflux-up"]);
        assert_eq!(found.len(), 1, "up's self-test entry: {found:?}");
        let selftest = found[0]["payload"].as_str().unwrap().to_owned();
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|e| e == "lfs") {
                    out.push(p);
                }
            }
        }
        let mut segments = Vec::new();
        walk(&self.dir.join("server/objects"), &mut segments);
        segments.sort_by_key(|p| p.file_name().unwrap().to_owned());
        let mut bytes = std::fs::read(&segments[0]).unwrap();
        bytes[5] ^= 0x01;
        std::fs::write(&segments[0], bytes).unwrap();
        selftest
    }

    /// Runs `logflux ARGS` on the stack's client config until it prints `serving`: the process
    /// (its later output drained) and the lines before.
    pub async fn until_serving(
        &self,
        args: &[&std::ffi::OsStr],
    ) -> (tokio::process::Child, Vec<String>) {
        let mut child = tokio::process::Command::from(self.command())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        use tokio::io::AsyncBufReadExt as _;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        loop {
            let l = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
                .await
                .expect("it printed its settings within 60 s")
                .unwrap()
                .expect("it printed its settings");
            if l.starts_with("serving") {
                break;
            }
            printed.push(l);
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, printed)
    }

    /// A `logflux serve` of its own on the stack's client config (token in `token_file`): the
    /// process, its URL and the lines it printed before `serving`.
    pub async fn own_serve(
        &self,
        token_file: &std::path::Path,
    ) -> (tokio::process::Child, String, Vec<String>) {
        self.own_serve_with(token_file, &[]).await
    }

    /// As [`Stack::own_serve`], with more arguments (`--rules DIR`, say).
    pub async fn own_serve_with(
        &self,
        token_file: &std::path::Path,
        more: &[&std::ffi::OsStr],
    ) -> (tokio::process::Child, String, Vec<String>) {
        let mut args = ["serve", "--listen", "127.0.0.1:0", "--token-file"]
            .map(std::ffi::OsStr::new)
            .to_vec();
        args.push(token_file.as_os_str());
        args.extend_from_slice(more);
        let (child, printed) = self.until_serving(&args).await;
        let url = printed
            .iter()
            .find_map(|l| l.strip_prefix("serve   "))
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
            .to_owned();
        (child, url, printed)
    }

    /// Waits (bounded) until a search for everything returns `n` entries.
    pub async fn wait_for_entries(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let (_, v) = self.search(&[]);
            if v.len() >= n {
                assert_eq!(v.len(), n, "more entries than were sent");
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} entries arrived within 90 s",
                v.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends NDJSON lines over the agent's Unix socket.
    pub async fn send_unix(&self, lines: &[Value]) {
        let mut s = tokio::net::UnixStream::connect(self.var("LOGFLUX_AGENT_SOCKET"))
            .await
            .unwrap();
        for l in lines {
            s.write_all(format!("{l}\n").as_bytes()).await.unwrap();
        }
        s.shutdown().await.unwrap();
        // The agent replies to nothing on success: EOF means every line was taken.
        let mut rest = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest)
            .await
            .unwrap();
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }

    /// Sends NDJSON lines over the agent's TCP port, after authenticating.
    pub async fn send_tcp(&self, lines: &[Value]) {
        let s = tokio::net::TcpStream::connect(self.var("LOGFLUX_AGENT_TCP"))
            .await
            .unwrap();
        let (r, mut w) = s.into_split();
        let mut r = tokio::io::BufReader::new(r);
        let auth = json!({"version":"1.0","action":"authenticate","shared_secret": self.var("LOGFLUX_SHARED_SECRET")});
        w.write_all(format!("{auth}\n").as_bytes()).await.unwrap();
        let mut reply = String::new();
        r.read_line(&mut reply).await.unwrap();
        assert!(reply.contains("authenticated"), "{reply}");
        for l in lines {
            w.write_all(format!("{l}\n").as_bytes()).await.unwrap();
        }
        w.shutdown().await.unwrap();
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut r, &mut rest)
            .await
            .unwrap();
        assert!(rest.is_empty(), "{rest}");
    }

    /// Sends SDK entries as the v3 SDKs do: handshake (data key wrapped to the tenant's public
    /// key), then one multipart request, one sealed part per entry (`(entry type, JSON)`).
    pub async fn send_sdk(&self, entries: &[(u8, Value)], gzip: bool) {
        let parts: Vec<SdkPart> = entries
            .iter()
            .map(|(t, json)| SdkPart {
                entry_type: *t,
                plaintext: json.to_string().into_bytes(),
                gzip,
                timestamp: json["ts"].as_str().unwrap().to_owned(),
            })
            .collect();
        self.send_sdk_parts(SdkStyle::Js, &parts).await;
    }

    /// Sends sealed parts as the SDK `style` writes them: its User-Agents, boundary and header
    /// spellings.
    pub async fn send_sdk_parts(&self, style: SdkStyle, parts: &[SdkPart]) {
        let http = reqwest::Client::new();
        let base = self.var("LOGFLUX_SERVER");
        let api_key = self.var("LOGFLUX_API_KEY");
        let (handshake_ua, ingest_ua, boundary, h) = match style {
            SdkStyle::Js => (
                "logflux-js-sdk/3.0.0",
                "logflux-js-sdk/3.0.0",
                "0793c1f2a5b44e2d8f9a0b1c2d3e4f5a",
                [
                    "X-LF-Entry-Type",
                    "X-LF-Payload-Type",
                    "X-LF-Timestamp",
                    "X-LF-Key-ID",
                    "X-LF-Nonce",
                ],
            ),
            SdkStyle::Go => (
                "Go-http-client/1.1",
                "logflux-go-sdk/3.0.0",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f0",
                [
                    "X-Lf-Entry-Type",
                    "X-Lf-Payload-Type",
                    "X-Lf-Timestamp",
                    "X-Lf-Key-Id",
                    "X-Lf-Nonce",
                ],
            ),
        };
        let init: Value = http
            .post(format!("{base}/v1/handshake/init"))
            .bearer_auth(api_key)
            .header("user-agent", handshake_ua)
            .json(&json!({"api_key": api_key}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let public =
            logflux_crypto::PublicKey::from_pem(init["data"]["public_key"].as_str().unwrap())
                .unwrap();
        let dek = logflux_crypto::Dek::generate().unwrap();
        let wrapped = logflux_crypto::wrap_dek(&public, &dek).unwrap();
        let done: Value = http
            .post(format!("{base}/v1/handshake/complete"))
            .bearer_auth(api_key)
            .header("user-agent", handshake_ua)
            .json(&json!({"api_key": api_key, "encrypted_secret": B64.encode(wrapped)}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key_id = done["data"]["key_id"].as_str().unwrap().to_owned();
        let key = logflux_crypto::SealingKey::new(&dek);
        let mut w = logflux_proto::multipart::Writer::new(boundary);
        for p in parts {
            let (nonce, body) = logflux_crypto::seal_sdk_part(&key, &p.plaintext, p.gzip).unwrap();
            w.part(
                &[
                    ("Content-Type", "application/octet-stream"),
                    (h[0], &p.entry_type.to_string()),
                    (h[1], "1"),
                    (h[2], &p.timestamp),
                    (h[3], &key_id),
                    (h[4], &B64.encode(nonce)),
                ],
                &body,
            );
        }
        let r = http
            .post(format!("{base}/v1/ingest"))
            .bearer_auth(api_key)
            .header("user-agent", ingest_ua)
            .header("content-type", w.content_type())
            .body(w.finish())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
}

/// Which SDK's way of writing requests [`Stack::send_sdk_parts`] imitates (PROTOCOL.md §2).
#[derive(Debug, Clone, Copy)]
pub enum SdkStyle {
    /// 32-hex boundary, `X-LF-…` headers, the SDK's User-Agent everywhere.
    Js,
    /// The Go SDK: `Go-http-client/1.1` on the handshake, a 60-hex boundary, `X-Lf-…` headers.
    Go,
}

/// One SDK part to seal: its plaintext (a v2 JSON object, or the Go SDK's bare text), whether
/// it is gzipped before sealing, and its `X-LF-Timestamp`.
#[derive(Debug, Clone)]
pub struct SdkPart {
    pub entry_type: u8,
    pub plaintext: Vec<u8>,
    pub gzip: bool,
    pub timestamp: String,
}

/// A relay between the client and the server that records every byte the client sends.
pub struct Capture {
    pub addr: std::net::SocketAddr,
    pub sent: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Capture {
    /// Relays to `target` (host:port). With `stall_on`, a connection whose request contains
    /// that text gets no reply bytes from then on (a server gone silent mid-answer).
    pub async fn start(target: String, stall_on: Option<&'static str>) -> Capture {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tap = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                let server = tokio::net::TcpStream::connect(&target).await.unwrap();
                let tap = tap.clone();
                let conn = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
                let conn_up = conn.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt as _;
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            tap.lock().unwrap().extend_from_slice(&buf[..n]);
                            conn_up.lock().unwrap().extend_from_slice(&buf[..n]);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = sr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            let stall = stall_on.is_some_and(|p| {
                                conn.lock()
                                    .unwrap()
                                    .windows(p.len())
                                    .any(|w| w == p.as_bytes())
                            });
                            if stall {
                                std::future::pending::<()>().await;
                            }
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Capture { addr, sent }
    }

    pub fn sent(&self) -> Vec<u8> {
        self.sent.lock().unwrap().clone()
    }
}

/// Nanoseconds of an RFC 3339 time.
pub fn ns(ts: &str) -> i64 {
    logflux_proto::timefmt::parse_rfc3339(ts).unwrap()
}

/// A file's mode bits.
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Metadata of an ndjson entry as a map.
pub fn meta(v: &Value) -> BTreeMap<String, String> {
    v["metadata"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// Reads a starting `logflux serve`'s standard output up to its `serving` line and returns the
/// URL of its `serve   URL …` line.
pub async fn serve_url<R>(lines: &mut tokio::io::Lines<R>) -> String
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    let mut url = None;
    loop {
        let l = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("serve printed its settings within 60 s")
            .unwrap()
            .expect("serve printed its settings");
        if let Some(rest) = l.strip_prefix("serve   ") {
            url = rest.split_whitespace().next().map(str::to_owned);
        }
        if l.starts_with("serving") {
            return url.expect("a `serve   URL` line before `serving`");
        }
    }
}
