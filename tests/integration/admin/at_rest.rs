//! Secrets at rest: the embedded database holds credentials, so its directory is 0700 and the
//! database with its WAL 0600, also when they existed with looser modes before; basic-auth
//! passwords are kept only as argon2id hashes.

use super::call;
use crate::support::{Echo, Gateway, Upstream, one_route, request};
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

/// Basic-auth passwords are argon2id hashes whatever path brought them in (the file, the Admin
/// API, `POST /config`, `config import`); a ready hash in a file is kept; the database and the
/// Admin API never hold a password; the hashes verify through the host.
#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_passwords_are_argon2id_hashes_on_every_path_and_verify() {
    let up = Upstream::start("up").await;
    let ready = wasmgate::passwords::hash("ready-pass-4").unwrap();
    let credential = |user: &str, password: &str| {
        format!("[[consumers.basicauth_credentials]]\nusername = {user:?}\npassword = {password:?}\n")
    };
    let files = one_route(&up, "/")
        .consumer("alice")
        .raw(&credential("alice-user", "file-pass-1"))
        .consumer("bob")
        .raw(&credential("bob-user", &ready))
        .plugin("probe", "", "tag = \"b\"")
        .start()
        .await;
    let passwords = |gw: &Gateway| {
        let (admin, path) = (gw.admin, "/basic-auths");
        async move {
            let listed = request(admin, "GET", path, &[], b"").await.json();
            let data = listed["data"].as_array().cloned().unwrap_or_default();
            data.iter().map(|c| c["password"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>()
        }
    };
    let shown = passwords(&files).await;
    assert_eq!(shown.len(), 2);
    assert!(shown.iter().all(|p| p.starts_with("$argon2id$v=19$")), "{shown:?}");
    assert!(shown.contains(&ready), "a ready hash is kept as written: {shown:?}");
    let exported = request(files.admin, "GET", "/config", &[], b"").await.text();
    assert!(!exported.contains("file-pass-1"), "{exported}");
    let basic = |who: &'static str| async move {
        Echo::from(&request(files.port, "GET", "/", &[("x-probe-basic", who)], b"").await)
    };
    for (who, verified) in
        [("alice-user:file-pass-1", "true"), ("alice-user:file-pass-1", "true"), ("bob-user:ready-pass-4", "true")]
    {
        let echo = basic(who).await;
        assert_eq!(echo.header("x-probe-basic"), Some(verified), "{who}");
        assert_eq!(echo.header("x-consumer-username"), Some(&who[..who.find('-').unwrap()]), "{who}");
    }
    for who in ["alice-user:wrong", "nobody:file-pass-1", "alice-user:"] {
        let echo = basic(who).await;
        assert_eq!((echo.header("x-probe-basic"), echo.header("x-consumer-username")), (Some("false"), None), "{who}");
    }

    // The embedded database: the Admin API, POST /config and config import.
    let mut db = Gateway::builder("").embedded().start().await;
    assert_eq!(call(&db, "POST", "/consumers", "username=carol").await.status, 201);
    let made = call(&db, "POST", "/consumers/carol/basic-auth", "username=carol-user&password=admin-pass-2").await;
    assert_eq!(made.status, 201, "{}", made.text());
    let empty = call(&db, "POST", "/consumers/carol/basic-auth", "username=carol-2&password=").await;
    assert_eq!(empty.status, 400, "{}", empty.text());
    assert!(empty.json()["fields"]["password"].is_string(), "{}", empty.text());
    let posted = format!("[[consumers]]\nusername = \"dave\"\n{}", credential("dave-user", "posted-pass-3"));
    let resp = request(db.admin, "POST", "/config", &[("content-type", "text/plain")], posted.as_bytes()).await;
    assert!(resp.status < 300, "{}", resp.text());
    let shown = passwords(&db).await;
    assert!(shown.len() == 1 && shown[0].starts_with("$argon2id$"), "{shown:?}");
    db.stop().await;
    let import = db.dir.path().join("import.toml");
    std::fs::write(
        &import,
        format!("[[consumers]]\nusername = \"erin\"\n{}", credential("erin-user", "import-pass-5")),
    )
    .unwrap();
    let conf = db.config_path();
    let args = ["config", "import", import.to_str().unwrap(), "-c", conf.to_str().unwrap()];
    let (code, _, stderr) = crate::support::gateway::run_cli(&args, db.dir.path());
    assert_eq!(code, 0, "{stderr}");
    let stored: Vec<u8> = ["wasmgate.db", "wasmgate.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(db.dir.path().join("data").join(f)).unwrap_or_default())
        .collect();
    for plain in ["admin-pass-2", "posted-pass-3", "import-pass-5"] {
        assert!(!stored.windows(plain.len()).any(|w| w == plain.as_bytes()), "{plain} is in the database");
    }
    assert!(stored.windows(10).any(|w| w == b"$argon2id$"), "the hashes are");
    db.resume().await;
    let shown = passwords(&db).await;
    assert!(shown.len() == 1 && shown[0].starts_with("$argon2id$"), "after import: {shown:?}");
}
