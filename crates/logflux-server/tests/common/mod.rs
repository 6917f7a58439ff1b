//! A real server on a loopback port with a fresh data directory, and helpers that talk to it
//! over HTTP as clients, SDKs and agents do.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_crypto::PrivateKey;
use logflux_server::{Server, ServerConfig};
use serde_json::{Value, json};

pub struct TestServer {
    pub server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
    pub config: ServerConfig,
}

/// One RSA key for all tests (generation is slow).
pub fn tenant_key() -> &'static PrivateKey {
    static K: OnceLock<PrivateKey> = OnceLock::new();
    K.get_or_init(|| PrivateKey::generate(2048).unwrap())
}

pub fn config_for(dir: &std::path::Path) -> ServerConfig {
    let mut c = ServerConfig::embedded(dir.to_path_buf());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.commit_linger = Duration::from_millis(2);
    c
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let config = config_for(dir.path());
        Self::start_with(dir, config).await
    }

    pub async fn start_with(dir: tempfile::TempDir, config: ServerConfig) -> TestServer {
        let init = logflux_server::init_tenant(&config, "acme", 90)
            .await
            .unwrap();
        let server = Server::start(config.clone()).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let t = TestServer {
            server: Some(server),
            dir,
            base,
            admin: init.admin_token,
            http: reqwest::Client::new(),
            config,
        };
        t.admin_put(
            "/v1/admin/public-key",
            json!({"public_key_pem": tenant_key().public_key().to_pem()}),
        )
        .await;
        t
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{path}: {} {}",
            r.status(),
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    pub async fn admin_put(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{path}: {} {}",
            r.status(),
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    /// Creates an application and an API key for it; returns (application id, api key).
    pub async fn app_with_key(&self, name: &str) -> (String, String) {
        let app = self
            .admin_post("/v1/admin/applications", json!({"name": name}))
            .await;
        let key = self
            .admin_post(
                "/v1/admin/api-keys",
                json!({"application": name, "name": "test"}),
            )
            .await;
        (
            app["id"].as_str().unwrap().into(),
            key["api_key"].as_str().unwrap().into(),
        )
    }

    /// An application `name` with an API key and a data key registered for it, as an SDK
    /// makes one: (api key, key id, data key).
    pub async fn producer(&self, name: &str) -> (String, String, logflux_crypto::Dek) {
        let (_, api_key) = self.app_with_key(name).await;
        let dek = logflux_crypto::Dek::generate().unwrap();
        let key_id = self
            .register_key(
                &api_key,
                &logflux_crypto::wrap_dek(&tenant_key().public_key(), &dek).unwrap(),
            )
            .await;
        (api_key, key_id, dek)
    }

    /// POSTs the parts of `w` to `/v1/ingest` with `api_key`; fails the test unless they are
    /// accepted (202).
    pub async fn ingest_accepted(&self, api_key: &str, w: logflux_proto::multipart::Writer) {
        let r = self
            .http
            .post(format!("{}/v1/ingest", self.base))
            .bearer_auth(api_key)
            .header("content-type", w.content_type())
            .body(w.finish())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }

    /// The text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of the metric line `name` (with its labels, if any) on `/metrics`; 0 when
    /// there is none yet (a family member not yet created).
    pub async fn metric(&self, name: &str) -> u64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Handshake as an SDK: returns the key id for `wrapped`.
    pub async fn register_key(&self, api_key: &str, wrapped: &[u8]) -> String {
        let init = self
            .http
            .post(format!("{}/v1/handshake/init", self.base))
            .bearer_auth(api_key)
            .json(&json!({"api_key": api_key}))
            .send()
            .await
            .unwrap();
        assert_eq!(init.status(), 200);
        let r = self
            .http
            .post(format!("{}/v1/handshake/complete", self.base))
            .bearer_auth(api_key)
            .json(&json!({"api_key": api_key, "encrypted_secret": B64.encode(wrapped)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["data"]["key_id"].as_str().unwrap().into()
    }

    /// Runs a query; returns the record lines and the end line.
    pub async fn query(&self, token: &str, body: Value) -> (Vec<Value>, Value) {
        let r = self
            .http
            .post(format!("{}/v1/query", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let text = r.text().await.unwrap();
        let mut lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let end = lines.pop().unwrap();
        assert_eq!(end["type"], "end");
        (lines, end)
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

/// Decrypts one SDK record line of a query answer: fetches its wrapped data key with `token`,
/// unwraps it with `sk` and opens the part. Returns the SDK's JSON payload.
pub async fn open_sdk_record(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    sk: &PrivateKey,
    r: &Value,
) -> Value {
    let plain = open_sdk_plaintext(http, base, token, sk, r).await;
    serde_json::from_slice(&plain).unwrap()
}

/// As [`open_sdk_record`], returning the plaintext as it was sealed (gunzipped): the JSON
/// object of most SDKs, the bare message text of the Go SDK's `Info`/`Warn`/… methods.
pub async fn open_sdk_plaintext(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    sk: &PrivateKey,
    r: &Value,
) -> Vec<u8> {
    let key_id = r["key_id"].as_str().unwrap();
    let k: Value = http
        .get(format!("{base}/v1/keys/{key_id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wrapped = B64.decode(k["wrapped_key"].as_str().unwrap()).unwrap();
    let dek = logflux_crypto::unwrap_dek(sk, &wrapped).unwrap();
    let nonce: [u8; 12] = B64
        .decode(r["nonce"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let body = B64.decode(r["body"].as_str().unwrap()).unwrap();
    logflux_crypto::open_sdk_part(
        &logflux_crypto::SealingKey::new(&dek),
        &nonce,
        &body,
        r["crlf_stripped"].as_bool().unwrap(),
    )
    .unwrap()
}
