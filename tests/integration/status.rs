//! The status listener and `/metrics`: read from the live gateway, in the Prometheus text format.

use crate::support::{Gateway, Upstream, free_port, request};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_configuration_plugins_and_target_health() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let status = free_port();
    let config = format!(
        "[[upstreams]]\nname = \"pool\"\n[[upstreams.targets]]\ntarget = \"{}\"\n[[upstreams.targets]]\ntarget = \"{}\"\n\
         [[services]]\nname = \"s\"\nhost = \"pool\"\n[[services.routes]]\npaths = [\"/\"]\n",
        a.addr(),
        b.addr()
    );
    let gw =
        Gateway::builder(&config).server(&format!("status_listen = \"127.0.0.1:{status}\"")).plugins("").start().await;
    let marked = request(gw.admin, "PUT", &format!("/upstreams/pool/targets/{}/unhealthy", b.addr()), &[], b"").await;
    assert_eq!(marked.status, 204);
    gw.write_config("[[services]]\nname = \"broken\"\n");
    gw.signal(libc::SIGHUP);
    gw.wait_for_log("configuration rejected", 1).await;

    let scraped = request(status, "GET", "/metrics", &[], b"").await;
    assert_eq!((scraped.status, scraped.header("content-type")), (200, Some("text/plain; version=0.0.4")));
    let text = scraped.text();
    for line in [
        "wasmgate_config_version 1".to_string(),
        "wasmgate_config_reloads_total{result=\"failure\"} 1".to_string(),
        "wasmgate_config_reloads_total{result=\"success\"} 0".to_string(),
        format!("wasmgate_upstream_target_health{{upstream=\"pool\",target=\"{}\",state=\"unhealthy\"}} 1", b.addr()),
        format!(
            "wasmgate_upstream_target_health{{upstream=\"pool\",target=\"{}\",state=\"healthchecks_off\"}} 1",
            a.addr()
        ),
        "# TYPE wasmgate_plugin_modules_loaded gauge".to_string(),
        "wasmgate_plugin_module_info{plugin=\"key-auth\",version=".to_string(),
    ] {
        assert!(text.contains(&line), "{line:?} in:\n{text}");
    }
    let modules = text.lines().find_map(|l| l.strip_prefix("wasmgate_plugin_modules_loaded ")).unwrap();
    assert!(modules.parse::<u32>().unwrap() >= 9, "{modules}");
    assert_eq!(request(gw.admin, "GET", "/metrics", &[], b"").await.text().lines().next(), text.lines().next());
    assert_eq!(request(status, "GET", "/status", &[], b"").await.json()["configuration_version"], 1);
    assert_eq!(request(status, "GET", "/nope", &[], b"").await.status, 404);
}
