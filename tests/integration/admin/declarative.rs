//! The two storage modes: an empty embedded gateway whose writes survive a restart; declarative
//! mode, where the API reads, refuses entity writes (405) and takes a whole `POST /config`; and
//! `wasmgate config export` / `import` between them.

use super::{call, id};
use crate::support::gateway::run_cli;
use crate::support::{Config, Upstream, request};

#[tokio::test(flavor = "multi_thread")]
async fn an_embedded_gateway_keeps_its_entities_across_a_restart() {
    let up = Upstream::start("kept").await;
    let mut gw = super::embedded().await;
    assert_eq!(request(gw.admin, "GET", "/services", &[], b"").await.json()["data"], serde_json::json!([]));
    let service = id(&call(&gw, "POST", "/services", &format!("name=kept&url={}", up.url())).await, 201);
    assert_eq!(call(&gw, "POST", "/services/kept/routes", "name=kept&paths[]=/kept").await.status, 201);
    assert_eq!(call(&gw, "POST", "/routes/kept/plugins", "name=key-auth").await.status, 201);
    assert_eq!(call(&gw, "POST", "/consumers", "username=u").await.status, 201);
    assert_eq!(call(&gw, "POST", "/consumers/u/key-auth", "key=kept-key").await.status, 201);
    assert!(gw.dir.path().join("data/wasmgate.db").exists(), "under data_dir");

    gw.restart().await;
    let found = request(gw.admin, "GET", "/services/kept", &[], b"").await;
    assert_eq!((found.status, found.json()["id"].as_str()), (200, Some(service.as_str())));
    assert_eq!(request(gw.port, "GET", "/kept", &[], b"").await.status, 401, "the plugin is back");
    assert_eq!(request(gw.port, "GET", "/kept", &[("apikey", "kept-key")], b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn declarative_mode_reads_refuses_entity_writes_and_takes_a_whole_config() {
    let up = Upstream::start("files").await;
    let gw = Config::new().service("files", &up.url()).route("old", &["/old"]).start().await;
    let listed = request(gw.admin, "GET", "/routes", &[], b"").await.json();
    assert_eq!(listed["data"][0]["name"], "old");
    let service = request(gw.admin, "GET", "/services/files", &[], b"").await.json();
    assert_eq!(listed["data"][0]["service"]["id"], service["id"]);
    assert_eq!(service["port"], up.port, "url expanded");

    let refused = call(&gw, "POST", "/services", "name=x&host=h").await;
    assert_eq!(refused.status, 405);
    assert!(refused.json()["message"].as_str().unwrap().contains("not using a database"), "{}", refused.text());
    assert_eq!(call(&gw, "DELETE", "/routes/old", "").await.status, 405);

    let exported = request(gw.admin, "GET", "/config", &[], b"").await;
    assert_eq!(exported.status, 200);
    let replaced = exported.text().replace("\"/old\"", "\"/new\"");
    let posted = request(gw.admin, "POST", "/config", &[], replaced.as_bytes()).await;
    assert_eq!(posted.status, 201, "{}", posted.text());
    assert_eq!(request(gw.port, "GET", "/new", &[], b"").await.status, 200);
    assert_eq!(request(gw.port, "GET", "/old", &[], b"").await.status, 404);

    let broken = replaced.replace("\"/new\"", "\"~/(\"");
    let refused = request(gw.admin, "POST", "/config", &[], broken.as_bytes()).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(request(gw.port, "GET", "/new", &[], b"").await.status, 200, "the last good config serves");
    let with_server = format!("[server]\nworker_threads = 1\n{replaced}");
    assert_eq!(request(gw.admin, "POST", "/config", &[], with_server.as_bytes()).await.status, 400);

    gw.signal(libc::SIGHUP);
    gw.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(request(gw.port, "GET", "/old", &[], b"").await.status, 200, "the files are the source again");
}

#[tokio::test(flavor = "multi_thread")]
async fn config_export_and_import_move_a_configuration_into_the_database() {
    let up = Upstream::start("moved").await;
    let files = Config::new()
        .service("moved", &up.url())
        .route("m", &["/m"])
        .consumer("u")
        .key("moved-key")
        .plugin("key-auth", "route = \"m\"", "")
        .start()
        .await;
    let conf = files.config_path();
    let (code, exported, stderr) = run_cli(&["config", "export", "-c", conf.to_str().unwrap()], files.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(exported.contains("name = \"key-auth\""), "plugins.toml's instances are exported too:\n{exported}");

    let mut db = super::embedded().await;
    db.stop().await;
    let export_file = db.dir.path().join("export.toml");
    std::fs::write(&export_file, exported.replace("moved-key", "")).unwrap();
    let db_conf = db.config_path();
    let args = ["config", "import", export_file.to_str().unwrap(), "-c", db_conf.to_str().unwrap()];
    let (code, _, stderr) = run_cli(&args, db.dir.path());
    assert_eq!(code, 1, "an empty key is refused before anything is written");
    assert!(stderr.contains("key"), "{stderr}");

    std::fs::write(&export_file, &exported).unwrap();
    let (code, stdout, stderr) = run_cli(&args, db.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("imported"), "{stdout}");
    db.resume().await;
    assert_eq!(request(db.port, "GET", "/m", &[], b"").await.status, 401);
    assert_eq!(request(db.port, "GET", "/m", &[("apikey", "moved-key")], b"").await.status, 200);
    let route = request(db.admin, "GET", "/routes/m", &[], b"").await.json();
    let original = request(files.admin, "GET", "/routes/m", &[], b"").await.json();
    assert_eq!(route["id"], original["id"], "ids move with the entities");
}
