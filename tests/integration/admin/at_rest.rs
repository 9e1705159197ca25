//! Secrets at rest: the embedded database holds credentials, so its directory is 0700 and the
//! database with its WAL 0600, also when they existed with looser modes before.

use super::call;
use crate::support::Gateway;
use std::os::unix::fs::PermissionsExt;

#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_and_the_database_are_private() {
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let mut gw = Gateway::builder("").embedded().start().await;
    assert_eq!(call(&gw, "POST", "/consumers", "username=alice").await.status, 201);
    let data = gw.dir.path().join("data");
    assert_eq!(mode(&data), 0o700);
    for file in ["wasmgate.db", "wasmgate.db-wal"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    gw.stop().await;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("wasmgate.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    gw.resume().await;
    assert_eq!((mode(&data), mode(&data.join("wasmgate.db"))), (0o700, 0o600), "tightened at start");
}
