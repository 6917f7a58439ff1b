//! HTTPS with rustls, the refusal of plain HTTP off loopback, and the configuration file.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use logflux_server::{Server, TlsFiles};

const BIN: &str = env!("CARGO_BIN_EXE_logflux-server");

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl binary is needed: apt-get install openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a server certificate it signed for localhost/127.0.0.1, made with the openssl
/// command. Returns (CA certificate, server certificate, server key).
fn test_pki(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=logflux-test-ca",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &p("key.pem"),
        "-out",
        &p("leaf.csr"),
    ]);
    std::fs::write(dir.join("leaf.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p("leaf.ext"),
        "-out",
        &p("cert.pem"),
    ]);
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

#[tokio::test]
async fn https_serves_http1_and_http2_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, cert, key) = test_pki(dir.path());
    let mut config = common::config_for(dir.path());
    config.tls = Some(TlsFiles {
        cert_file: cert.clone(),
        key_file: key.clone(),
    });
    let server = Server::start(config.clone()).await.unwrap();
    let addr = server.local_addr();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_file).unwrap()).unwrap();
    for http2 in [false, true] {
        let mut b = reqwest::Client::builder().tls_certs_only([ca.clone()]);
        if http2 {
            b = b.http2_prior_knowledge();
        } else {
            b = b.http1_only();
        }
        let client = b.build().unwrap();
        let r = client
            .get(format!("https://localhost:{}/health", addr.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.version(),
            if http2 {
                reqwest::Version::HTTP_2
            } else {
                reqwest::Version::HTTP_11
            }
        );
        assert_eq!(r.text().await.unwrap(), "OK");
    }
    // Plain HTTP to the TLS port gets no answer a client would accept.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/health"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    server.shutdown().await.unwrap();

    // A key file others can read is refused.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Server::start(config).await.unwrap_err().to_string();
    assert!(e.contains("chmod 600"), "{e}");
}

#[tokio::test]
async fn plain_http_off_loopback_needs_explicit_consent() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config_for(dir.path());
    config.listen = "0.0.0.0:0".parse().unwrap();
    let e = Server::start(config.clone()).await.unwrap_err().to_string();
    assert!(
        e.contains("refusing to serve plain HTTP on non-loopback address"),
        "{e}"
    );
    config.allow_insecure_http = true;
    Server::start(config)
        .await
        .unwrap()
        .shutdown()
        .await
        .unwrap();
}

#[test]
fn config_file_errors_name_the_field_and_flags_override() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.yaml");
    std::fs::write(&cfg, "listen: 127.0.0.1:9\nstore:\n  url: ${LOGFLUX_TEST_NO_SUCH_VAR:-/tmp/x}\n  buckett: typo\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store.buckett: unknown field `buckett`"),
        "{err}"
    );

    std::fs::write(&cfg, format!("listen: 127.0.0.1:9\ndata_dir: {}\ncatalog: postgres://u:hunter2@db/x\nstore:\n  url: s3://b/p\n  secret_access_key: ${{LOGFLUX_TEST_SECRET:-s3cr3t}}\n", dir.path().display())).unwrap();
    let out = Command::new(BIN)
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "127.0.0.1:7",
            "check-config",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("listen: 127.0.0.1:7"),
        "the flag wins: {text}"
    );
    assert!(text.contains("store: s3://b/p"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("s3cr3t"),
        "secrets are never printed: {text}"
    );

    std::fs::write(&cfg, "region: mars\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("region: must be one of"));
}

#[test]
fn operator_tenant_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(d)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["tenants", "create", "acme"]);
    assert_eq!(code, Some(0));
    assert!(out.lines().any(|l| l.starts_with("lf_pat_")));
    let (code, _, err) = run(&["tenants", "create", "acme"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("already exists"), "{err}");
    run(&["init", "--tenant", "globex"]);
    let (_, out, _) = run(&["tenants", "list"]);
    let names: Vec<&str> = out.lines().map(|l| l.split('\t').nth(1).unwrap()).collect();
    assert_eq!(names, ["acme", "globex"]);
    assert!(out.contains("no public key"));
    let (code, out, _) = run(&["tenants", "quota", "globex", "1000000"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("1000000 bytes"), "{out}");
    let (code, _, err) = run(&["tenants", "quota", "globex", "-5"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, out, _) = run(&["tenants", "token", "globex"]);
    assert_eq!(code, Some(0));
    assert!(out.lines().any(|l| l.starts_with("lf_pat_")));
    let (code, _, err) = run(&["tenants", "token", "nobody"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("nobody"), "{err}");
}
