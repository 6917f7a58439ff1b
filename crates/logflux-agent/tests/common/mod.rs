//! A real server and a real agent, in this process, talking over loopback.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_agent::Agent;
use logflux_agent::config::AgentConfig;
use logflux_crypto::{PrivateKey, RecordBinding, SealingKey, SearchKey, open_batch, unwrap_dek};
use logflux_proto::Entry;
use logflux_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

pub fn tenant_key() -> &'static PrivateKey {
    static K: OnceLock<PrivateKey> = OnceLock::new();
    K.get_or_init(|| PrivateKey::generate(2048).unwrap())
}

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub server: Option<Server>,
    pub server_config: ServerConfig,
    pub base: String,
    pub admin: String,
    pub api_key: String,
    pub http: reqwest::Client,
    pub search_key: SearchKey,
    pub agent_config: AgentConfig,
    pub agent: Option<Agent>,
}

pub fn write_keys(dir: &Path) -> (PathBuf, PathBuf, SearchKey) {
    use std::os::unix::fs::PermissionsExt as _;
    let pk = dir.join("public_key.pem");
    std::fs::write(&pk, tenant_key().public_key().to_pem()).unwrap();
    let sk = SearchKey::generate().unwrap();
    let skp = dir.join("search.key");
    std::fs::write(&skp, sk.to_text().as_bytes()).unwrap();
    std::fs::set_permissions(&skp, std::fs::Permissions::from_mode(0o600)).unwrap();
    (pk, skp, sk)
}

impl Stack {
    /// A server with a tenant, an application and an API key, and an agent configured for it
    /// (not started: tests may change the configuration first).
    pub async fn new() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let mut sc = ServerConfig::embedded(dir.path().join("server"));
        sc.listen = "127.0.0.1:0".parse().unwrap();
        sc.commit_linger = Duration::from_millis(2);
        let init = logflux_server::init_tenant(&sc, "acme", 90).await.unwrap();
        let server = Server::start(sc.clone()).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let http = reqwest::Client::new();
        let admin = init.admin_token;
        let put = http
            .put(format!("{base}/v1/admin/public-key"))
            .bearer_auth(&admin)
            .json(&json!({"public_key_pem": tenant_key().public_key().to_pem()}))
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success());
        http.post(format!("{base}/v1/admin/applications"))
            .bearer_auth(&admin)
            .json(&json!({"name": "web"}))
            .send()
            .await
            .unwrap();
        let key: Value = http
            .post(format!("{base}/v1/admin/api-keys"))
            .bearer_auth(&admin)
            .json(&json!({"application": "web", "name": "agent"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let api_key = key["api_key"].as_str().unwrap().to_owned();
        let (pk, skp, search_key) = write_keys(dir.path());
        let yaml = format!(
            "server: {{urls: ['{base}'], api_key: '{api_key}'}}\n\
             keys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
             inputs:\n  unix_socket: {{path: '{}', mode: '0600'}}\n  tcp: {{listen: '127.0.0.1:0', shared_secret: '{SECRET}'}}\n\
             batch: {{max_wait_ms: 50}}\n\
             spool: {{dir: '{}', fsync: always}}\n\
             shipper: {{backoff_initial_ms: 20, backoff_max_ms: 500}}\n\
             metrics: {{listen: '127.0.0.1:0'}}\n",
            pk.display(),
            skp.display(),
            dir.path().join("agent.sock").display(),
            dir.path().join("spool").display(),
        );
        let agent_config: AgentConfig = logflux_config::from_str(&yaml, "test").unwrap();
        agent_config.validate().unwrap();
        Stack {
            dir,
            server: Some(server),
            server_config: sc,
            base,
            admin,
            api_key,
            http,
            search_key,
            agent_config,
            agent: None,
        }
    }

    pub async fn start_agent(&mut self) {
        self.agent = Some(Agent::start(self.agent_config.clone()).await.unwrap());
    }

    /// Waits (at most two minutes, then fails with the agent's status) until the server has
    /// acknowledged `n` entries.
    pub async fn shipped(&self, n: u64) {
        let agent = self.agent.as_ref().unwrap();
        if tokio::time::timeout(Duration::from_secs(120), agent.wait_shipped(n))
            .await
            .is_err()
        {
            panic!("{n} entries not delivered within 120 s: {}", agent.status());
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    pub fn tcp(&self) -> std::net::SocketAddr {
        self.agent.as_ref().unwrap().tcp_addr().unwrap()
    }

    /// Every entry stored on the server, decrypted here with the tenant's private key.
    pub async fn stored_entries(&self) -> Vec<Entry> {
        self.stored_records(json!({"order": "oldest"}))
            .await
            .into_iter()
            .flat_map(|(_, entries)| entries)
            .collect()
    }

    /// The records a query (`POST /v1/query` body, all pages) returns, each as the server
    /// sent it and decrypted here with the tenant's private key.
    pub async fn stored_records(&self, mut query: Value) -> Vec<(Value, Vec<Entry>)> {
        let identity: Value = serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join("spool/identity.json")).unwrap(),
        )
        .unwrap();
        let tenant = identity["tenant_id"].as_str().unwrap();
        let mut out = Vec::new();
        loop {
            let text = self
                .http
                .post(format!("{}/v1/query", self.base))
                .bearer_auth(&self.admin)
                .json(&query)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let mut end = Value::Null;
            for line in text.lines() {
                let r: Value = serde_json::from_str(line).unwrap();
                if r["type"] != "record" {
                    end = r;
                    continue;
                }
                let key_id = r["key_id"].as_str().unwrap();
                let k: Value = self
                    .http
                    .get(format!("{}/v1/keys/{key_id}", self.base))
                    .bearer_auth(&self.admin)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let dek = unwrap_dek(
                    tenant_key(),
                    &B64.decode(k["wrapped_key"].as_str().unwrap()).unwrap(),
                )
                .unwrap();
                let record_id = r["record_id"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("agent-");
                let binding = RecordBinding {
                    tenant,
                    application: r["application_id"].as_str().unwrap(),
                    key_id,
                    record_id,
                };
                let nonce: [u8; 12] = B64
                    .decode(r["nonce"].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap();
                let entries = open_batch(
                    &SealingKey::new(&dek),
                    &binding,
                    &nonce,
                    &B64.decode(r["body"].as_str().unwrap()).unwrap(),
                )
                .unwrap();
                out.push((r, entries));
            }
            if end["cursor"].is_null() {
                return out;
            }
            query["cursor"] = end["cursor"].clone();
        }
    }

    pub async fn stop(&mut self) {
        if let Some(a) = self.agent.take() {
            a.shutdown().await.unwrap();
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

/// A line-oriented client of the local API.
pub struct Client<S> {
    pub reader: tokio::io::BufReader<tokio::io::ReadHalf<S>>,
    pub writer: tokio::io::WriteHalf<S>,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite> Client<S> {
    pub fn new(s: S) -> Self {
        let (r, w) = tokio::io::split(s);
        Client {
            reader: tokio::io::BufReader::new(r),
            writer: w,
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.unwrap();
        self.writer.write_all(b"\n").await.unwrap();
    }

    /// The next reply line (`None` at end of stream).
    pub async fn reply(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(30), self.reader.read_line(&mut line))
            .await
            .expect("reply timed out")
            .unwrap();
        if n == 0 {
            None
        } else {
            Some(serde_json::from_str(&line).unwrap())
        }
    }
}

pub fn entry_line(payload: &str) -> String {
    json!({"version": "1.0", "payload": payload, "source": "test-app", "entryType": 1, "logLevel": 4, "metadata": {"k": "v"}}).to_string()
}

/// The sum of a counter's series in the agent's metrics.
pub fn counter(agent: &logflux_agent::Agent, name: &str) -> u64 {
    agent
        .metrics_text()
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
