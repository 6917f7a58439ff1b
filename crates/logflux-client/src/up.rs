//! `logflux up`: the whole system on one machine with its embedded defaults — keys, a tenant,
//! an application and credentials (made once, reused after), an embedded server and an agent —
//! with a self-test that sends an entry through the agent and decrypts it back here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::Args;
use logflux_crypto::{RecordBinding, SealingKey, keyfile, open_batch, unwrap_dek};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Where keys, data, the spool and credentials live.
    #[arg(long, default_value = "./logflux-up")]
    dir: PathBuf,
    /// The agent's Unix socket.
    #[arg(long, default_value = "/tmp/logflux-agent.sock")]
    socket: PathBuf,
    /// The agent's TCP address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:9999")]
    tcp: SocketAddr,
    /// The server's address (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Where `logflux serve` (Loki's HTTP API, decrypted here, for Grafana) listens; `off`:
    /// not started (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:3100", value_name = "ADDR|off")]
    serve: ServeAddr,
}

/// `--serve`: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServeAddr {
    Off,
    At(SocketAddr),
}

impl std::str::FromStr for ServeAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(ServeAddr::Off);
        }
        s.parse()
            .map(ServeAddr::At)
            .map_err(|_| format!("{s:?} is not an address (127.0.0.1:3100) or off"))
    }
}

/// The environment `up` resolves its own client.yaml in: the home directory only, so the
/// stack's service uses the stack's token and keys whatever LOGFLUX_* the shell has.
struct StackEnv;

impl crate::config::Env for StackEnv {
    fn var(&self, name: &str) -> Option<String> {
        (name == "HOME")
            .then(|| std::env::var("HOME").ok())
            .flatten()
    }
}

/// What the first run created, kept in DIR/up.json (mode 0600).
#[derive(Debug, Serialize, Deserialize)]
struct State {
    tenant_id: String,
    admin_token: String,
    application_id: String,
    api_key: String,
    shared_secret: String,
}

async fn ok_json(r: reqwest::Response) -> anyhow::Result<Value> {
    let status = r.status();
    let v: Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("server answered {status}: {}", v["error"]["message"]);
    }
    Ok(v)
}

/// The first run: tenant, public key, application, ingest key, shared secret.
async fn provision(
    base: &str,
    admin_token: String,
    tenant_id: String,
    keys: &Path,
) -> anyhow::Result<State> {
    let http = reqwest::Client::new();
    let pem = std::fs::read_to_string(keys.join("public_key.pem"))?;
    ok_json(
        http.put(format!("{base}/v1/admin/public-key"))
            .bearer_auth(&admin_token)
            .json(&json!({"public_key_pem": pem}))
            .send()
            .await?,
    )
    .await?;
    let app = ok_json(
        http.post(format!("{base}/v1/admin/applications"))
            .bearer_auth(&admin_token)
            .json(&json!({"name": "default"}))
            .send()
            .await?,
    )
    .await?;
    let key = ok_json(
        http.post(format!("{base}/v1/admin/api-keys"))
            .bearer_auth(&admin_token)
            .json(&json!({"application": "default", "name": "logflux-up"}))
            .send()
            .await?,
    )
    .await?;
    let mut secret = [0u8; 24];
    logflux_crypto::random_bytes(&mut secret)?;
    Ok(State {
        tenant_id,
        admin_token,
        application_id: app["id"].as_str().context("application id")?.to_owned(),
        api_key: key["api_key"].as_str().context("api key")?.to_owned(),
        shared_secret: hex::encode(secret),
    })
}

/// Sends one entry through the agent, waits for the server to acknowledge it, reads it back
/// and decrypts it with the private key: the whole path, checked.
async fn self_test(
    agent: &logflux_agent::Agent,
    socket: &Path,
    base: &str,
    state: &State,
    keys: &Path,
) -> anyhow::Result<String> {
    let marker = format!("hello from logflux up {}", hex::encode(rand_bytes()));
    let mut s = tokio::net::UnixStream::connect(socket)
        .await
        .context("connecting to the agent's socket")?;
    let line = json!({"payload": marker, "source": "logflux-up", "entryType": 1, "logLevel": 6});
    s.write_all(format!("{line}\n").as_bytes()).await?;
    drop(s);
    // The spool may hold entries from before a restart, shipped first: look for this entry after
    // every acknowledgement, until it is there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let private = keyfile::read_private_key(&keys.join("private_key.pem"))?;
    let http = reqwest::Client::new();
    loop {
        let seen = agent.shipped_count();
        if let Some(found) = find(&http, base, state, &private, &marker).await? {
            return Ok(found);
        }
        tokio::time::timeout_at(deadline, agent.wait_shipped(seen + 1))
            .await
            .context("the agent did not deliver the test entry within 60 s")?;
    }
}

/// The entry whose payload is `marker`, among the newest records, decrypted here.
async fn find(
    http: &reqwest::Client,
    base: &str,
    state: &State,
    private: &logflux_crypto::PrivateKey,
    marker: &str,
) -> anyhow::Result<Option<String>> {
    let text = http
        .post(format!("{base}/v1/query"))
        .bearer_auth(&state.admin_token)
        .json(&json!({"limit": 10}))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    for l in text.lines() {
        let r: Value = serde_json::from_str(l)?;
        if r["type"] != "record" || r["payload_type"] != 4 {
            continue;
        }
        let key_id = r["key_id"].as_str().context("key id")?;
        let k = ok_json(
            http.get(format!("{base}/v1/keys/{key_id}"))
                .bearer_auth(&state.admin_token)
                .send()
                .await?,
        )
        .await?;
        let dek = unwrap_dek(
            private,
            &B64.decode(k["wrapped_key"].as_str().context("wrapped key")?)?,
        )?;
        let record_id = r["record_id"]
            .as_str()
            .context("record id")?
            .trim_start_matches("agent-");
        let binding = RecordBinding {
            tenant: &state.tenant_id,
            application: &state.application_id,
            key_id,
            record_id,
        };
        let nonce: [u8; 12] = B64
            .decode(r["nonce"].as_str().context("nonce")?)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let entries = open_batch(
            &SealingKey::new(&dek),
            &binding,
            &nonce,
            &B64.decode(r["body"].as_str().context("body")?)?,
        )?;
        if let Some(e) = entries.iter().find(|e| e.payload == marker) {
            return Ok(Some(e.payload.clone()));
        }
    }
    Ok(None)
}

/// up.env's PATH line: the directory of the running `logflux` first, whatever the PATH of the
/// shell `up` runs in (the shell that sources up.env may have another).
fn path_line(exe: Option<&Path>) -> String {
    match exe.and_then(Path::parent) {
        Some(d) => format!(
            "export PATH={}:\"$PATH\"\n",
            sh_quote(&d.display().to_string())
        ),
        None => String::new(),
    }
}

/// `text` as one shell word: single-quoted, a `'` in it written `'\''`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn rand_bytes() -> [u8; 4] {
    let mut b = [0u8; 4];
    let _ = logflux_crypto::random_bytes(&mut b);
    b
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<i32> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let dir = dir.canonicalize()?;
    // One `up` per directory, for its whole life: a second one would share the catalog, the
    // objects and the agent's spool with this one, and rewrite up.env.
    let _lock = logflux_config::dir_lock::lock_dir(
        &dir,
        "up.lock",
        "the directory",
        "stop that `logflux up` first, or give this one another --dir",
    )?;
    let keys = dir.join("keys");
    if !keys.join("private_key.pem").exists() {
        println!(
            "creating an RSA-4096 key pair and a search key in {} …",
            args.dir.join("keys").display()
        );
        crate::keys::generate(&keys, 4096)?;
    }
    let mut server_config = logflux_server::ServerConfig::embedded(dir.join("server"));
    server_config.listen = args.http;
    let state_path = dir.join("up.json");
    let existing: Option<State> = match std::fs::read_to_string(&state_path) {
        Ok(t) => Some(serde_json::from_str(&t).context("up.json is malformed")?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let init = if existing.is_none() {
        Some(logflux_server::init_tenant(&server_config, "default", 90).await?)
    } else {
        None
    };
    let server = logflux_server::Server::start(server_config).await?;
    let base = format!("http://{}", server.local_addr());
    let state = match (existing, init) {
        (Some(s), _) => s,
        (None, Some(init)) => {
            let s = provision(&base, init.admin_token, init.tenant_id, &keys).await?;
            crate::private_files::write_atomic(&state_path, &serde_json::to_vec_pretty(&s)?)?;
            s
        }
        (None, None) => unreachable!(),
    };
    let agent_yaml = format!(
        "server: {{urls: ['{base}'], api_key: '{}'}}\nkeys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
         inputs:\n  unix_socket: {{path: '{}', mode: '0600'}}\n  tcp: {{listen: '{}', shared_secret: '{}'}}\n\
         batch: {{max_wait_ms: 200}}\nspool: {{dir: '{}'}}\nmetrics: {{listen: null}}\n",
        state.api_key,
        keys.join("public_key.pem").display(),
        keys.join("search.key").display(),
        args.socket.display(),
        args.tcp,
        state.shared_secret,
        dir.join("agent-spool").display(),
    );
    let agent_config: logflux_agent::config::AgentConfig =
        logflux_config::from_str(&agent_yaml, "logflux up")?;
    let agent = logflux_agent::Agent::start(agent_config).await?;
    let tcp = agent.tcp_addr().context("tcp address")?;
    let decrypted = self_test(&agent, &args.socket, &base, &state, &keys).await?;
    // `logflux search` in a shell that sourced up.env, even when this binary is not on that
    // shell's PATH (it may be on this one's only): its directory always comes first.
    let path_line = path_line(std::env::current_exe().ok().as_deref());
    let client_yaml_path = dir.join("client.yaml");
    let client_yaml = format!(
        "# The logflux client's configuration for this stack (logflux --config FILE, or LOGFLUX_CONFIG).\n\
         server: {base}\ntoken_file: {}\nprivate_key_file: {}\nsearch_key_file: {}\n",
        dir.join("token").display(),
        keys.join("private_key.pem").display(),
        keys.join("search.key").display()
    );
    crate::private_files::write_atomic(
        &dir.join("token"),
        format!("{}\n", state.admin_token).as_bytes(),
    )?;
    crate::private_files::write_atomic(&client_yaml_path, client_yaml.as_bytes())?;
    let serve = match args.serve {
        ServeAddr::Off => None,
        ServeAddr::At(addr) => {
            let settings =
                crate::config::Settings::resolve(Some(&client_yaml_path), None, &StackEnv)?;
            let serve_args = crate::serve::ServeArgs::for_up(addr, dir.join("serve.token"));
            match crate::serve::start(&settings, &serve_args).await {
                Ok(r) => Some(r),
                // Another service on the port (a Loki of its own on 3100): the stack runs
                // without serve, and says how to have it.
                Err(e)
                    if e.chain().any(|c| {
                        c.downcast_ref::<std::io::Error>()
                            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
                    }) =>
                {
                    eprintln!(
                        "logflux: warning: logflux serve not started: {addr} is in use by another process; run with --serve 127.0.0.1:PORT (or --serve off)"
                    );
                    None
                }
                Err(e) => {
                    return Err(e.context(format!(
                        "starting logflux serve on {addr} (--serve ADDR, or --serve off)"
                    )));
                }
            }
        }
    };
    let serve_env = serve
        .as_ref()
        .map(|r| {
            format!(
                "export LOGFLUX_SERVE_URL={}\nexport LOGFLUX_SERVE_TOKEN={}\n",
                r.url, r.token
            )
        })
        .unwrap_or_default();
    let env = format!(
        "export LOGFLUX_SERVER={base}\nexport LOGFLUX_API_KEY={}\nexport LOGFLUX_AGENT_SOCKET={}\nexport LOGFLUX_AGENT_TCP={tcp}\n\
         export LOGFLUX_SHARED_SECRET={}\nexport LOGFLUX_CONFIG={}\nexport LOGFLUX_PAT={}\n\
         export LOGFLUX_PRIVATE_KEY_FILE={}\nexport LOGFLUX_SEARCH_KEY_FILE={}\n{serve_env}{path_line}",
        state.api_key,
        sh_quote(&args.socket.display().to_string()),
        state.shared_secret,
        sh_quote(&dir.join("client.yaml").display().to_string()),
        state.admin_token,
        sh_quote(&keys.join("private_key.pem").display().to_string()),
        sh_quote(&keys.join("search.key").display().to_string()),
    );
    crate::private_files::write_atomic(&dir.join("up.env"), env.as_bytes())?;
    println!(
        "self-test: an entry went app → agent (sealed) → server (stored encrypted) → here (decrypted): {decrypted:?}"
    );
    println!();
    println!(
        "server  {base}   (embedded: SQLite catalog and objects in {})",
        dir.join("server").display()
    );
    println!("agent   unix socket {}   tcp {tcp}", args.socket.display());
    if let Some(r) = &serve {
        crate::serve::print_settings(r);
        println!("                       (also $LOGFLUX_SERVE_TOKEN in up.env)");
    }
    println!();
    println!("In another shell:  source {}", dir.join("up.env").display());
    println!("Send a log line to the agent (Unix socket, or TCP after authenticating):");
    println!(
        "  echo '{{\"payload\":\"Hello, LogFlux\",\"source\":\"my-app\",\"entryType\":1,\"logLevel\":7}}' | nc -U -q0 $LOGFLUX_AGENT_SOCKET"
    );
    println!(
        "  echo '{{\"payload\":\"disk almost full\",\"source\":\"my-app\",\"entryType\":1,\"logLevel\":4}}' | socat - UNIX-CONNECT:$LOGFLUX_AGENT_SOCKET"
    );
    println!(
        "  printf '{{\"version\":\"1.0\",\"action\":\"authenticate\",\"shared_secret\":\"%s\"}}\\n{{\"payload\":\"over tcp\",\"source\":\"my-app\",\"entryType\":1,\"logLevel\":6}}\\n' \"$LOGFLUX_SHARED_SECRET\" | nc -q1 ${{LOGFLUX_AGENT_TCP%:*}} ${{LOGFLUX_AGENT_TCP##*:}}"
    );
    println!(
        "Wait until the agent has delivered what it received (it batches for up to 200 ms first):"
    );
    println!("  echo '{{\"action\":\"flush\"}}' | nc -U -N $LOGFLUX_AGENT_SOCKET");
    println!("Search (decrypted here; exit status 1 when nothing matches):");
    println!("  logflux search --since 1h");
    println!(
        "  logflux search --level err disk          # error and worse, with the word \"disk\""
    );
    println!("  logflux search --source my-app --format ndjson");
    println!("Tail:      logflux tail -f");
    println!("Counts:    logflux stats --since 1h");
    println!("SDKs:      endpoint $LOGFLUX_SERVER, API key $LOGFLUX_API_KEY");
    let signals = crate::serve::stop_signals()?;
    println!(
        "ready (Ctrl-C stops; credentials and keys stay in {})",
        args.dir.display()
    );
    signals.await;
    // stdout may be gone by now (a closed pipe): say it if possible, never panic over it.
    let _ = std::io::Write::write_all(
        &mut std::io::stdout(),
        b"stopping: sealing and spooling what the agent holds, finishing server commits\n",
    );
    if let Some(r) = serve {
        r.shutdown().await;
    }
    agent.shutdown().await?;
    server.shutdown().await?;
    Ok(crate::EXIT_OK)
}
