//! Interoperability with OpenSSL's command line, as customers make and use keys.
//!
//! Needs the `openssl` binary (Debian package `openssl`; `.ci/run` installs it).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use logflux_crypto::{Dek, PrivateKey, PublicKey, keyfile, unwrap_dek, wrap_dek};

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl binary is needed for these tests: apt-get install openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

struct Keys {
    _dir: tempfile::TempDir,
    private_pkcs8: PathBuf,
    private_pkcs1: PathBuf,
    public_spki: PathBuf,
    public_pkcs1: PathBuf,
}

/// One `openssl genrsa 4096` key, written in every form OpenSSL writes (made once: slow).
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let private_pkcs8 = dir.path().join("private_key.pem");
        let private_pkcs1 = dir.path().join("private_pkcs1.pem");
        let public_spki = dir.path().join("public_key.pem");
        let public_pkcs1 = dir.path().join("public_pkcs1.pem");
        openssl(&["genrsa", "-out", p(&private_pkcs8), "4096"]);
        openssl(&[
            "rsa",
            "-in",
            p(&private_pkcs8),
            "-traditional",
            "-out",
            p(&private_pkcs1),
        ]);
        openssl(&[
            "rsa",
            "-in",
            p(&private_pkcs8),
            "-pubout",
            "-out",
            p(&public_spki),
        ]);
        openssl(&[
            "rsa",
            "-in",
            p(&private_pkcs8),
            "-RSAPublicKey_out",
            "-out",
            p(&public_pkcs1),
        ]);
        for f in [&private_pkcs8, &private_pkcs1] {
            chmod(f, 0o600);
        }
        Keys {
            _dir: dir,
            private_pkcs8,
            private_pkcs1,
            public_spki,
            public_pkcs1,
        }
    })
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn openssl_genrsa_4096_keys_load_in_every_encoding() {
    let k = keys();
    let text = std::fs::read_to_string(&k.private_pkcs8).unwrap();
    assert!(
        text.starts_with("-----BEGIN PRIVATE KEY-----"),
        "OpenSSL 3 writes PKCS#8"
    );
    let pkcs1 = std::fs::read_to_string(&k.private_pkcs1).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));

    let a = keyfile::read_private_key(&k.private_pkcs8).unwrap();
    let b = keyfile::read_private_key(&k.private_pkcs1).unwrap();
    assert_eq!(a.bits(), 4096);
    let spki = keyfile::read_public_key(&k.public_spki).unwrap();
    let pkcs1_pub = keyfile::read_public_key(&k.public_pkcs1).unwrap();
    assert_eq!(a.public_key(), spki);
    assert_eq!(b.public_key(), spki);
    assert_eq!(pkcs1_pub, spki);
    // Our PEM output is what `openssl rsa -pubout` wrote.
    assert_eq!(
        spki.to_pem().trim(),
        std::fs::read_to_string(&k.public_spki).unwrap().trim()
    );
}

#[test]
fn fingerprint_equals_openssl_der_sha256() {
    let k = keys();
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        p(&k.public_spki),
        "-outform",
        "DER",
    ]);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    let fp = keyfile::read_public_key(&k.public_spki)
        .unwrap()
        .fingerprint();
    assert_eq!(
        fp.to_string(),
        format!("SHA256:{}", hex::encode(digest.as_ref()))
    );
    // And the same through sha256sum, exactly as a person would check it.
    let shell = format!(
        "openssl pkey -pubin -in '{}' -outform DER | sha256sum",
        p(&k.public_spki)
    );
    let out = Command::new("sh").args(["-c", &shell]).output().unwrap();
    let sum = String::from_utf8(out.stdout).unwrap();
    let hex_sum = sum.split_whitespace().next().unwrap();
    assert_eq!(fp.to_string(), format!("SHA256:{hex_sum}"));
    assert_eq!(hex_sum.parse::<logflux_crypto::Fingerprint>().unwrap(), fp);
}

fn openssl_wrap(dek: &[u8], extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dek.bin");
    let output = dir.path().join("dek.wrapped");
    std::fs::write(&input, dek).unwrap();
    let mut args = vec![
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        p(&keys().public_spki),
        "-in",
        p(&input),
        "-out",
        p(&output),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
    ];
    args.extend_from_slice(extra);
    openssl(&args);
    std::fs::read(&output).unwrap()
}

#[test]
fn dek_wrapped_by_openssl_oaep_sha256_unwraps() {
    let sk = keyfile::read_private_key(&keys().private_pkcs8).unwrap();
    let dek = Dek::generate().unwrap();
    let wrapped = openssl_wrap(dek.expose(), &[]);
    assert_eq!(wrapped.len(), 512);
    assert_eq!(unwrap_dek(&sk, &wrapped).unwrap().expose(), dek.expose());
}

#[test]
fn dek_wrapped_with_mgf1_sha1_like_java_unwraps() {
    let sk = keyfile::read_private_key(&keys().private_pkcs1).unwrap();
    let dek = Dek::generate().unwrap();
    let wrapped = openssl_wrap(dek.expose(), &["-pkeyopt", "rsa_mgf1_md:sha1"]);
    assert_eq!(unwrap_dek(&sk, &wrapped).unwrap().expose(), dek.expose());
}

#[test]
fn our_wrapped_dek_unwraps_with_openssl() {
    let k = keys();
    let pk = keyfile::read_public_key(&k.public_spki).unwrap();
    let dek = Dek::generate().unwrap();
    let wrapped = wrap_dek(&pk, &dek).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("w");
    std::fs::write(&input, &wrapped).unwrap();
    let plain = openssl(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        p(&k.private_pkcs8),
        "-in",
        p(&input),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
    ]);
    assert_eq!(plain, dek.expose());
}

#[test]
fn group_or_world_readable_private_key_is_refused() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("loose.pem");
    std::fs::copy(&k.private_pkcs8, &copy).unwrap();
    for mode in [0o640, 0o604, 0o644, 0o660] {
        chmod(&copy, mode);
        let e = keyfile::read_private_key(&copy).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(p(&copy)), "{msg}");
        assert!(msg.contains(&format!("chmod 600 {}", p(&copy))), "{msg}");
        assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
        assert_eq!(e.kind(), logflux_crypto::ErrorKind::File);
    }
    chmod(&copy, 0o400);
    keyfile::read_private_key(&copy).unwrap();
}

#[test]
fn missing_or_wrong_files_name_the_file() {
    let e = keyfile::read_private_key(Path::new("/nonexistent/key.pem")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/key.pem"), "{e}");
    let e = keyfile::read_private_key(&keys().public_spki).unwrap_err();
    // The public key file is 0644, so the permission check speaks first.
    assert!(e.to_string().contains("chmod 600"), "{e}");
    let e = keyfile::read_public_key(&keys().private_pkcs8).unwrap_err();
    assert!(e.to_string().contains("this is a private key"), "{e}");
    assert!(e.to_string().contains(p(&keys().private_pkcs8)), "{e}");
}

#[test]
fn a_small_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.pem");
    openssl(&["genrsa", "-out", p(&small), "1024"]);
    chmod(&small, 0o600);
    let e = keyfile::read_private_key(&small).unwrap_err();
    assert!(
        e.to_string().contains("too small; use at least 2048 bits"),
        "{e}"
    );
    let text = std::fs::read_to_string(&small).unwrap();
    assert!(PrivateKey::from_pem(&text).is_err());
    let pubkey = openssl(&["rsa", "-in", p(&small), "-pubout"]);
    assert!(PublicKey::from_pem(std::str::from_utf8(&pubkey).unwrap()).is_err());
}
