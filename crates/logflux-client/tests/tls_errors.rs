//! A server certificate the client refuses is explained in plain words, with what to do; the
//! certificate recipe of docs/server.md (a CA and a server certificate it signed, with
//! subjectAltName) works.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use logflux_server::{Server, ServerConfig, TlsFiles};

const BIN: &str = env!("CARGO_BIN_EXE_logflux");

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl binary is needed: apt-get install openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a newcomer makes first: one self-signed certificate (`openssl req -x509`, which marks
/// it CA:TRUE), even with the right subjectAltName. Returns (certificate, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            "self.key",
            "-out",
            "self.pem",
        ],
    );
    (dir.join("self.pem"), dir.join("self.key"))
}

/// docs/server.md's recipe, command for command. Returns (CA, server certificate, key).
fn docs_recipe(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=LogFlux test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

async fn https_server(data: &Path, cert: PathBuf, key: PathBuf) -> Server {
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut c = ServerConfig::embedded(data.to_path_buf());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.tls = Some(TlsFiles {
        cert_file: cert,
        key_file: key,
    });
    logflux_server::init_tenant(&c, "acme", 90).await.unwrap();
    Server::start(c).await.unwrap()
}

/// `logflux admin tenant` (a first request, no keys needed) against `server` with `ca_file`
/// (if any): exit status and stderr.
fn first_request(dir: &Path, server: &Server, ca_file: Option<&Path>) -> (i32, String) {
    let cfg = dir.join("client.yaml");
    let mut yaml = format!("server: https://localhost:{}\n", server.local_addr().port());
    if let Some(ca) = ca_file {
        yaml.push_str(&format!("ca_file: {}\n", ca.display()));
    }
    std::fs::write(&cfg, yaml).unwrap();
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("LOGFLUX_") || k.ends_with("_PROXY") || k.ends_with("_proxy") {
            c.env_remove(k);
        }
    }
    let out = c
        .env("HOME", dir)
        .env("LOGFLUX_CONFIG", &cfg)
        .env("LOGFLUX_PAT", "lf_pat_not_a_real_token")
        .args(["admin", "tenant"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_ca_certificate_is_explained_and_the_documented_one_works() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("a")).unwrap();
    std::fs::create_dir(dir.join("b")).unwrap();
    let (cert, key) = self_signed(dir);
    let server = https_server(&dir.join("a"), cert.clone(), key).await;

    // Trusted as ca_file, the CA:TRUE certificate is still refused as the server's own.
    let (code, err) = first_request(dir, &server, Some(&cert));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("CaUsedAsEndEntity"),
        "the TLS detail is kept: {err}"
    );
    assert!(
        err.contains("the server's certificate is a CA certificate")
            && err.contains("make a CA and a server certificate signed by it")
            && err.contains("docs/server.md"),
        "explained, with what to do: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "one message, no log lines around it: {err}"
    );
    server.shutdown().await.unwrap();

    // The documented recipe: the TLS handshake succeeds and the server itself answers (here,
    // refusing the made-up token).
    let (ca, cert, key) = docs_recipe(dir);
    let server = https_server(&dir.join("b"), cert, key).await;
    // Its CA not given as ca_file: the issuer is unknown.
    let (code, err) = first_request(dir, &server, None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("UnknownIssuer")
            && err.contains("not signed by an authority this machine trusts")
            && err.contains("`ca_file`"),
        "{err}"
    );
    let (code, err) = first_request(dir, &server, Some(&ca));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("401"),
        "past TLS, refused by the server: {err}"
    );
    assert!(!err.contains("certificate"), "{err}");
    server.shutdown().await.unwrap();
}
