//! A standalone server keeps its data private: the data directory 0700, the SQLite catalog
//! (with its -wal and -shm files) 0600, and it refuses to start in a directory that group or
//! others may write.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::config_for;
use logflux_server::Server;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn the_data_directory_and_catalog_are_private() {
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = parent.path().join("data");
    let config = config_for(&data);
    logflux_server::init_tenant(&config, "acme", 90)
        .await
        .unwrap();
    let server = Server::start(config).await.unwrap();
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&data.join("objects")), 0o700, "object directory");
    for f in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
        let p = data.join(f);
        if f == "catalog.db" || p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    assert!(data.join("catalog.db-wal").exists(), "WAL mode");
    server.shutdown().await.unwrap();

    // A catalog left readable by an earlier version is made private on start.
    std::fs::set_permissions(
        data.join("catalog.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let server = Server::start(config_for(&data)).await.unwrap();
    assert_eq!(mode(&data.join("catalog.db")), 0o600);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_group_or_world_writable_data_directory_is_refused() {
    for bad in [0o770, 0o777, 0o702] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(bad)).unwrap();
        let err = Server::start(config_for(dir.path()))
            .await
            .err()
            .unwrap_or_else(|| panic!("started in a {bad:o} directory"));
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&dir.path().display().to_string())
                && msg.contains(&format!("{bad:04o}"))
                && msg.contains("chmod 700"),
            "{msg}"
        );
        for f in ["catalog.db", "catalog.db.lock"] {
            assert!(
                !dir.path().join(f).exists(),
                "{f} created in a refused directory"
            );
        }
    }
}

#[tokio::test]
async fn a_server_starts_on_a_data_directory_that_does_not_exist_yet() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("new").join("data");
    let server = Server::start(config_for(&data)).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("catalog.db.lock")), 0o600);
    server.shutdown().await.unwrap();
}
