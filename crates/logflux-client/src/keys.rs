use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use logflux_crypto::{PrivateKey, SearchKey, keyfile};

/// File names inside a key directory.
pub(crate) const PRIVATE_KEY_FILE: &str = "private_key.pem";
pub(crate) const PUBLIC_KEY_FILE: &str = "public_key.pem";
pub(crate) const SEARCH_KEY_FILE: &str = "search.key";

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate an RSA-4096 key pair and a 256-bit search key.
    ///
    /// Writes private_key.pem (0600), public_key.pem (0644) and search.key (0600) into DIR,
    /// created with mode 0700. Refuses to overwrite existing keys.
    Generate {
        /// Where to write the keys [default: $XDG_CONFIG_HOME/logflux/keys, or
        /// ~/.config/logflux/keys].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// RSA modulus size: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 4096)]
        bits: usize,
    },
    /// Print the SHA256 fingerprint of a public or private key file.
    ///
    /// The same value as `openssl pkey -pubin -in FILE -outform DER | sha256sum`; pin it in
    /// the agent's `public_key_fingerprint`.
    Fingerprint {
        /// A PEM public key, or a private key (mode 0600).
        file: PathBuf,
    },
}

pub(crate) fn run(cmd: KeysCommand) -> anyhow::Result<i32> {
    match cmd {
        KeysCommand::Generate { dir, bits } => {
            let dir = match dir {
                Some(d) => d,
                None => default_key_dir()?,
            };
            let paths = generate(&dir, bits)?;
            let public = keyfile::read_public_key(&paths.public)?;
            println!("wrote {} (mode 0600)", paths.private.display());
            println!("wrote {} (mode 0644)", paths.public.display());
            println!("wrote {} (mode 0600)", paths.search.display());
            println!("fingerprint {}", public.fingerprint());
            println!(
                "keep the private key and the search key on machines that read logs; \
                 give the server and agents only the public key (and agents the search key)"
            );
            Ok(crate::EXIT_OK)
        }
        KeysCommand::Fingerprint { file } => {
            let text = fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let public = if text.contains("PRIVATE KEY") {
                keyfile::read_private_key(&file)?.public_key()
            } else {
                keyfile::read_public_key(&file)?
            };
            println!("{}", public.fingerprint());
            Ok(crate::EXIT_OK)
        }
    }
}

fn default_key_dir() -> anyhow::Result<PathBuf> {
    // The same directory the client looks in for keys not configured (config.rs).
    crate::config::default_key_dir(&crate::config::ProcessEnv)
        .context("neither XDG_CONFIG_HOME nor HOME is set; pass --dir")
}

/// Where `generate` wrote the three files.
#[derive(Debug)]
pub(crate) struct KeyPaths {
    pub(crate) private: PathBuf,
    pub(crate) public: PathBuf,
    pub(crate) search: PathBuf,
}

/// Generates the keys into `dir`: never overwrites, never loosens permissions.
pub(crate) fn generate(dir: &Path, bits: usize) -> anyhow::Result<KeyPaths> {
    ensure_private_dir(dir)?;
    let paths = KeyPaths {
        private: dir.join(PRIVATE_KEY_FILE),
        public: dir.join(PUBLIC_KEY_FILE),
        search: dir.join(SEARCH_KEY_FILE),
    };
    for p in [&paths.private, &paths.public, &paths.search] {
        if p.exists() {
            bail!(
                "{} already exists; refusing to overwrite keys (move them away first, or use another --dir)",
                p.display()
            );
        }
    }
    let private = PrivateKey::generate(bits)?;
    let search = SearchKey::generate()?;
    keyfile::write_new_file(
        "private key",
        &paths.private,
        private.to_pem().as_bytes(),
        0o600,
    )?;
    keyfile::write_new_file(
        "public key",
        &paths.public,
        private.public_key().to_pem().as_bytes(),
        0o644,
    )?;
    keyfile::write_new_file(
        "search key",
        &paths.search,
        search.to_text().as_bytes(),
        0o600,
    )?;
    Ok(paths)
}

/// Creates `dir` with mode 0700 (parents as usual), or checks that an existing one is private.
fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta =
                fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
            if !meta.is_dir() {
                bail!("{} exists and is not a directory", dir.display());
            }
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                bail!(
                    "key directory {} is accessible by group or others (mode {mode:04o}); \
                     fix it with: chmod 700 {}",
                    dir.display(),
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
}
