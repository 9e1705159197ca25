//! TLS termination with real clients (curl, openssl): the certificate each server name gets
//! (exact, wildcard, the default), HTTP/2 through ALPN, `X-Forwarded-Proto: https`, and
//! certificates changed by a reload, from the next handshake on, while a bad one is refused.

use crate::support::upstream::self_signed as certificate;
use crate::support::{Config, Gateway, TlsServer, Upstream, free_port};
use std::path::{Path, PathBuf};
use std::process::Command;

/// curl to `https://{host}:{port}/` resolved to 127.0.0.1, trusting `ca`: (exit code, HTTP
/// version and status, body).
fn curl(port: u16, host: &str, ca: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--resolve", &format!("{host}:{port}:127.0.0.1"), "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_version} %{http_code}"])
        .args(extra)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (out.status.code().unwrap_or(-1), status.to_string(), body.to_string())
}

/// A plain listener on the test's port and a TLS one (with h2) on `tls`, a route to `up`, and
/// `cert` for `api.test`.
fn api_over_tls(up: &Upstream, cert: &(PathBuf, PathBuf), tls: u16) -> Config {
    Config::new()
        .server(&format!("proxy_listen = [\"127.0.0.1:{{port}}\", \"127.0.0.1:{tls} ssl http2\"]"))
        .service("s", &up.url())
        .route("r", &["/"])
        .raw(&format!("[[certificates]]\ncert_file = {:?}\nkey_file = {:?}\nsnis = [\"api.test\"]\n", cert.0, cert.1))
}

fn certificates(api: &(PathBuf, PathBuf), wild: &(PathBuf, PathBuf)) -> String {
    format!(
        "[[certificates]]\ncert_file = {:?}\nkey_file = {:?}\nsnis = [\"api.test\"]\n\
         [[certificates]]\ncert_file = {:?}\nkey_file = {:?}\nsnis = [\"*.wild.test\"]\n",
        api.0, api.1, wild.0, wild.1
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_are_chosen_by_server_name_and_change_on_reload() {
    let up = Upstream::start("up").await;
    let certs = tempfile::tempdir().unwrap();
    let api = certificate(certs.path(), "api", "api.test");
    let wild = certificate(certs.path(), "wild", "*.wild.test");
    let tls = free_port();
    let cfg = Config::new()
        .server(&format!("proxy_listen = [\"127.0.0.1:{{port}}\", \"127.0.0.1:{tls} ssl http2\"]"))
        .service("s", &up.url())
        .route("r", &["/"])
        .raw(&certificates(&api, &wild));
    let gw: Gateway = cfg.start().await;
    assert!(gw.stderr().contains("self-signed"), "no default certificate: a warning says so");

    let (code, status, body) = curl(tls, "api.test", &api.0, &["--http1.1"]);
    assert_eq!((code, status.as_str()), (0, "1.1 200"), "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
    assert_eq!(echo["headers"]["x-forwarded-port"], tls.to_string());
    let (code, status, _) = curl(tls, "API.test", &api.0, &[]);
    assert_eq!((code, status.as_str()), (0, "2 200"), "HTTP/2 through ALPN; the name in any case");
    assert_eq!(curl(tls, "x.wild.test", &wild.0, &[]).1, "2 200", "the leading wildcard");
    let (code, _, _) = curl(tls, "other.test", &api.0, &[]);
    assert_eq!(code, 60, "another name gets the default certificate, which the client does not trust");
    let (code, status, _) = curl(tls, "other.test", &api.0, &["--insecure", "--verbose"]);
    assert_eq!((code, status.as_str()), (0, "2 200"));
    let plain = crate::support::request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(plain.status, 200, "plain HTTP on the other listener");

    // A new certificate for api.test, read at the reload, serves the next handshake.
    let renewed = certificate(certs.path(), "api2", "api.test");
    std::fs::copy(&renewed.0, &api.0).unwrap();
    std::fs::copy(&renewed.1, &api.1).unwrap();
    assert!(gw.reload(&cfg).await, "{}", gw.stderr());
    assert_eq!(curl(tls, "api.test", &renewed.0, &[]).1, "2 200", "the renewed certificate");

    // A key that is not the certificate's is refused, naming it; the served set stays.
    std::fs::copy(&wild.1, &api.1).unwrap();
    assert!(!gw.reload(&cfg).await);
    assert!(
        gw.stderr().contains("certificates[0]: cert: the key does not belong to the certificate"),
        "{}",
        gw.stderr()
    );
    assert_eq!(curl(tls, "api.test", &renewed.0, &[]).1, "2 200", "the last good set keeps serving");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_upstreams_verify_their_certificate_unless_told_not_to() {
    let upstream = TlsServer::start();
    let url = format!("https://127.0.0.1:{}", upstream.port);
    let gw = Config::new()
        .service("checked", &url)
        .route("checked", &["/checked"])
        .service("unchecked", &url)
        .set("tls_verify = false")
        .route("unchecked", &["/unchecked"])
        .start()
        .await;
    let up = async || crate::support::request(gw.port, "GET", "/unchecked", &[], b"").await.status == 200;
    crate::support::eventually("the TLS upstream (a Python process) listening", up).await;
    let unchecked = crate::support::request(gw.port, "GET", "/unchecked", &[], b"").await;
    assert_eq!((unchecked.status, unchecked.text()), (200, "ok".to_string()), "over TLS, not verified");
    let checked = crate::support::request(gw.port, "GET", "/checked", &[], b"").await;
    assert_eq!(checked.status, 502, "a self-signed certificate is not trusted: {}", checked.text());
    let (code, _) = Config::new().service("s", "ftp://127.0.0.1:21").check();
    assert_ne!(code, 0);
    let (code, out) = Config::new().service("s", "http://127.0.0.1:1").set("tls_verify = true").check();
    assert!(code != 0 && out.contains("tls_verify: applies to protocols \"https\" and \"grpcs\" only"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_only_routes_answer_plain_requests_with_426_or_a_redirect() {
    let up = Upstream::start("up").await;
    let gw = Config::new()
        .service("s", &up.url())
        .route("upgrade", &["/upgrade"])
        .set("protocols = [\"https\"]")
        .route("moved", &["/moved"])
        .set("protocols = [\"https\"]\nhttps_redirect_status_code = 308")
        .start()
        .await;
    let upgrade = crate::support::request(gw.port, "GET", "/upgrade", &[], b"").await;
    assert_eq!(upgrade.status, 426);
    assert_eq!(upgrade.json()["message"], "Please use HTTPS protocol");
    let moved = crate::support::request(gw.port, "GET", "/moved/x?a=1", &[("host", "api.test:8000")], b"").await;
    assert_eq!((moved.status, moved.header("location")), (308, Some("https://api.test/moved/x?a=1")));
    let (code, out) =
        Config::new().service("s", &up.url()).route("r", &["/"]).set("https_redirect_status_code = 303").check();
    assert!(code != 0 && out.contains("https_redirect_status_code: 303 is not one of"), "{out}");
    let (code, out) = Config::new().service("s", &up.url()).route("r", &["/"]).set("protocols = []").check();
    assert!(code != 0 && out.contains("protocols: give at least one"), "{out}");
}

/// A raw HTTP/2 client (Python's `h2`) over TLS that opens and at once resets `streams` streams
/// (CVE-2023-44487, "rapid reset"): how the connection ended.
fn rapid_reset(port: u16, streams: u32) -> String {
    let script = "import socket, ssl, sys, h2.connection, h2.config, h2.events\n\
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
        ctx.set_alpn_protocols(['h2'])\n\
        s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='api.test')\n\
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True)); c.initiate_connection()\n\
        s.sendall(c.data_to_send())\n\
        headers = [(':method', 'GET'), (':path', '/'), (':scheme', 'https'), (':authority', 'api.test')]\n\
        sent = 0\n\
        try:\n\
        \x20   for i in range(int(sys.argv[2])):\n\
        \x20       sid = c.get_next_available_stream_id(); c.send_headers(sid, headers, end_stream=True); c.reset_stream(sid)\n\
        \x20       s.sendall(c.data_to_send()); sent += 1\n\
        \x20   s.settimeout(5); ended = 'open'\n\
        \x20   while True:\n\
        \x20       data = s.recv(65536)\n\
        \x20       if not data: ended = 'closed'; break\n\
        \x20       if any(isinstance(e, h2.events.ConnectionTerminated) for e in c.receive_data(data)): ended = 'goaway'; break\n\
        except (OSError, h2.exceptions.ProtocolError) as e:\n\
        \x20   ended = 'closed'\n\
        print(ended, sent)\n";
    let out = Command::new("python3").args(["-c", script, &port.to_string(), &streams.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rapid_reset_client_is_cut_off_and_others_are_served() {
    let up = Upstream::start("up").await;
    let certs = tempfile::tempdir().unwrap();
    let api = certificate(certs.path(), "api", "api.test");
    let tls = free_port();
    let gw = api_over_tls(&up, &api, tls).start().await;
    let ended = tokio::task::spawn_blocking(move || rapid_reset(tls, 10_000)).await.unwrap();
    assert!(ended.starts_with("goaway") || ended.starts_with("closed"), "the attacker's connection stayed: {ended}");
    let (code, status, _) = curl(tls, "api.test", &api.0, &[]);
    assert_eq!((code, status.as_str()), (0, "2 200"), "others are served after it");
    assert!(gw.stderr().lines().filter(|l| l.contains("ERROR")).count() < 100, "{}", gw.stderr());
}

/// Certificates replaced 50 times through the Admin API (`PATCH /certificates/{name}`) while a
/// client keeps making new TLS connections: no handshake and no request fails, and every answer
/// came with one of the two certificates (curl trusts both).
#[tokio::test(flavor = "multi_thread")]
async fn certificates_rotate_under_load_without_a_failed_handshake() {
    use crate::support::admin::{call, call_json, id};
    let up = Upstream::start("up").await;
    let certs = tempfile::tempdir().unwrap();
    let (a, b) = (certificate(certs.path(), "a", "api.test"), certificate(certs.path(), "b", "api.test"));
    let both = certs.path().join("both.pem");
    std::fs::write(&both, [std::fs::read(&a.0).unwrap(), std::fs::read(&b.0).unwrap()].concat()).unwrap();
    let tls = free_port();
    let gw = Gateway::builder("")
        .embedded()
        .server(&format!("proxy_listen = [\"127.0.0.1:{{port}}\", \"127.0.0.1:{tls} ssl\"]"))
        .start()
        .await;
    id(&call(&gw, "POST", "/services", &format!("name=s&url={}", up.url())).await, 201);
    id(&call(&gw, "POST", "/services/s/routes", "paths[]=/").await, 201);
    let body = |pair: &(PathBuf, PathBuf)| serde_json::json!({"cert": pem(&pair.0), "key": pem(&pair.1), "snis": ["api.test"]});
    id(&call_json(&gw, "POST", "/certificates", body(&a)).await, 201);

    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let client = {
        let (running, both) = (running.clone(), both.clone());
        tokio::task::spawn_blocking(move || {
            let (mut ok, mut failed) = (0, Vec::new());
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                // One connection per request: each is a new handshake.
                match curl(tls, "api.test", &both, &["--http1.1"]) {
                    (0, status, _) if status == "1.1 200" => ok += 1,
                    other => failed.push(other),
                }
            }
            (ok, failed)
        })
    };
    for i in 0..50 {
        let next = if i % 2 == 0 { &b } else { &a };
        let replaced = call_json(&gw, "PATCH", "/certificates/api.test", body(next)).await;
        assert_eq!(replaced.status, 200, "replacement {i}: {}", replaced.text());
    }
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = client.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(ok >= 20, "only {ok} requests during the rotation");
}

/// Plugins see how the client spoke: the scheme, the HTTP version and the TLS server name.
#[tokio::test(flavor = "multi_thread")]
async fn plugins_see_the_scheme_the_http_version_and_the_server_name() {
    let up = Upstream::start("up").await;
    let certs = tempfile::tempdir().unwrap();
    let api = certificate(certs.path(), "api", "api.test");
    let tls = free_port();
    let _gw = api_over_tls(&up, &api, tls).plugin("probe", "", "tag = \"t\"").only_modules(&["probe"]).start().await;
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let (code, _, body) = curl(tls, "API.test", &api.0, &[flag]);
        assert_eq!(code, 0, "{body}");
        let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
        let seen = |h: &str| echo["headers"][format!("x-probe-{h}")].as_str().unwrap_or_default().to_string();
        assert_eq!(
            (seen("scheme"), seen("http-version"), seen("sni")),
            ("https".into(), version.into(), "api.test".into())
        );
    }
}

fn pem(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Certificates and their names as Admin API entities (embedded mode): the `snis` shorthand,
/// `/snis`, `/certificates/{c}/snis`, a certificate found by one of its names, refusals that
/// name the field, and every change served from the next handshake.
#[tokio::test(flavor = "multi_thread")]
async fn certificates_and_snis_are_admin_api_entities() {
    use crate::support::admin::{call, call_json, id};
    let up = Upstream::start("up").await;
    let certs = tempfile::tempdir().unwrap();
    let (a, b) = (certificate(certs.path(), "a", "api.test"), certificate(certs.path(), "b", "api.test"));
    let wild = certificate(certs.path(), "wild", "*.wild.test");
    let tls = free_port();
    let gw = Gateway::builder("")
        .embedded()
        .server(&format!("proxy_listen = [\"127.0.0.1:{{port}}\", \"127.0.0.1:{tls} ssl http2\"]"))
        .start()
        .await;
    id(&call(&gw, "POST", "/services", &format!("name=s&url={}", up.url())).await, 201);
    id(&call(&gw, "POST", "/services/s/routes", "paths[]=/").await, 201);

    let created = call_json(
        &gw,
        "POST",
        "/certificates",
        serde_json::json!({"cert": pem(&a.0), "key": pem(&a.1), "snis": ["api.test"]}),
    )
    .await;
    let cert_id = id(&created, 201);
    assert_eq!(created.json()["snis"], serde_json::json!(["api.test"]));
    assert_eq!(curl(tls, "api.test", &a.0, &[]).1, "2 200", "served from the next handshake");
    let snis = call(&gw, "GET", "/snis", "").await.json();
    assert_eq!(
        (snis["data"][0]["name"].as_str(), snis["data"][0]["certificate"]["id"].as_str()),
        (Some("api.test"), Some(cert_id.as_str()))
    );
    assert_eq!(call(&gw, "GET", "/certificates/api.test", "").await.json()["id"], cert_id, "found by its name");

    // A second certificate, named through /certificates/{c}/snis (a form, as curl sends it).
    let wild_id = id(
        &call_json(&gw, "POST", "/certificates", serde_json::json!({"cert": pem(&wild.0), "key": pem(&wild.1)})).await,
        201,
    );
    id(&call(&gw, "POST", &format!("/certificates/{wild_id}/snis"), "name=*.wild.test").await, 201);
    assert_eq!(curl(tls, "x.wild.test", &wild.0, &[]).1, "2 200");
    let listed = call(&gw, "GET", &format!("/certificates/{wild_id}/snis"), "").await.json();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));

    // Replaced by name: the next handshake gets the new one.
    let patched =
        call_json(&gw, "PATCH", "/certificates/api.test", serde_json::json!({"cert": pem(&b.0), "key": pem(&b.1)}))
            .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["snis"], serde_json::json!(["api.test"]), "its names stay");
    assert_eq!(curl(tls, "api.test", &b.0, &[]).1, "2 200");

    // Refusals name the field; nothing changes.
    let refusals = [
        (serde_json::json!({"cert": pem(&a.0), "key": pem(&b.1)}), 400, "cert", "the key does not belong"),
        (
            serde_json::json!({"cert": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----", "key": pem(&a.1)}),
            400,
            "cert",
            "not a PEM certificate",
        ),
        (serde_json::json!({"cert": pem(&a.0)}), 400, "key", "required with cert"),
        (serde_json::json!({"cert_file": "/etc/passwd", "key": pem(&a.1)}), 400, "cert_file", "gateway.toml only"),
        (
            serde_json::json!({"cert": pem(&a.0), "key": pem(&a.1), "snis": ["bad name"]}),
            400,
            "snis[0].name",
            "not a server name",
        ),
        (serde_json::json!({"cert": pem(&a.0), "key": pem(&a.1), "snis": ["api.test"]}), 409, "snis[0].name", ""),
    ];
    for (body, status, field, says) in refusals {
        let refused = call_json(&gw, "POST", "/certificates", body).await;
        assert_eq!(refused.status, status, "{}", refused.text());
        let fields = &refused.json()["fields"];
        assert!(
            fields[field].as_str().is_some_and(|m| m.contains(says)) || status == 409 && !fields[field].is_null(),
            "{field}: {}",
            refused.text()
        );
    }
    assert_eq!(call(&gw, "GET", "/certificates", "").await.json()["data"].as_array().map(Vec::len), Some(2));

    // A service that presents a certificate keeps it from being deleted.
    let svc = call_json(&gw, "PATCH", "/services/s", serde_json::json!({"client_certificate": {"id": cert_id}})).await;
    assert_eq!(svc.status, 400, "client_certificate applies to https only: {}", svc.text());
    // Deleting a certificate deletes its names: the default is served again.
    assert_eq!(call(&gw, "DELETE", &format!("/certificates/{wild_id}"), "").await.status, 204);
    assert_eq!(call(&gw, "GET", "/snis/%2A.wild.test", "").await.status, 404);
    assert_eq!(curl(tls, "x.wild.test", &wild.0, &[]).0, 60, "the default certificate, which curl does not trust");

    // They survive a restart (the database), and a declarative gateway shows file certificates
    // but refuses writes.
    let mut gw = gw;
    gw.restart().await;
    assert_eq!(curl(tls, "api.test", &b.0, &[]).1, "2 200", "{}", gw.stderr());
    let file = api_over_tls(&up, &a, free_port()).start().await;
    let shown = call(&file, "GET", "/certificates", "").await.json();
    assert_eq!(shown["data"][0]["snis"], serde_json::json!(["api.test"]));
    assert!(
        shown["data"][0]["cert"].as_str().is_some_and(|c| c.contains("BEGIN CERTIFICATE")),
        "the PEM, as Kong shows it"
    );
    assert_eq!(call(&file, "POST", "/certificates", "cert=x").await.status, 405);
}

/// An HTTPS upstream that requires a client certificate and is signed through an intermediate:
/// `ca_certificates`, `client_certificate`, `tls_verify_depth`, and `preserve_host` sending the
/// client's host as the server name.
#[tokio::test(flavor = "multi_thread")]
async fn https_upstreams_with_a_private_ca_and_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::upstream::Pki::new(dir.path());
    let upstream = TlsServer::start_mutual(&pki);
    let url = format!("https://127.0.0.1:{}", upstream.port);
    let client_id = "0b7a2d6e-1c39-4f0e-9a57-6c2b8d1e4f30";
    let ca_id = "5d1e8f2a-7b44-4c1d-8e6a-2f9c0b3a7d15";
    let service = |name: &str, fields: &str| {
        format!(
            "[[services]]\nname = \"{name}\"\nurl = \"{url}\"\n{fields}\n[[services.routes]]\npaths = [\"/{name}\"]\npreserve_host = true\n"
        )
    };
    let trusted = format!("ca_certificates = [\"{ca_id}\"]\nclient_certificate = \"{client_id}\"");
    let cfg = Config::new().raw(&format!(
        "[[ca_certificates]]\nid = \"{ca_id}\"\ncert_file = {:?}\n\
         [[certificates]]\nid = \"{client_id}\"\ncert_file = {:?}\nkey_file = {:?}\n{}{}{}{}{}",
        pki.root,
        pki.client_chain,
        pki.client_key,
        service("mutual", &trusted),
        service("no-client", &format!("ca_certificates = [\"{ca_id}\"]")),
        service("system-trust", &format!("client_certificate = \"{client_id}\"")),
        service("shallow", &format!("{trusted}\ntls_verify_depth = 0")),
        service("deep-enough", &format!("{trusted}\ntls_verify_depth = 1")),
    ));
    let gw = cfg.start().await;
    let get =
        async |path: &str, host: &str| crate::support::request(gw.port, "GET", path, &[("host", host)], b"").await;
    crate::support::eventually("the TLS upstream (a Python process) listening", async || {
        get("/mutual", "localhost").await.status == 200
    })
    .await;
    for (path, host, status) in [
        ("/mutual", "localhost", 200),
        ("/mutual", "127.0.0.1", 502),
        ("/no-client", "localhost", 502),
        ("/system-trust", "localhost", 502),
        ("/shallow", "localhost", 502),
        ("/deep-enough", "localhost", 200),
    ] {
        assert_eq!(get(path, host).await.status, status, "{path} with Host {host}");
    }
    assert!(gw.stderr().contains("tls_verify_depth = 0 allows 2"), "{}", gw.stderr());
    // A client that sends no host leaves the service's name to verify, never an empty one
    // (which would verify nothing).
    let no_host = {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        conn.write_all(b"GET /mutual HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        answer
    };
    assert!(no_host.starts_with("HTTP/1.0 502") || no_host.starts_with("HTTP/1.1 502"), "{no_host}");
    let cas = crate::support::admin::call(&gw, "GET", "/ca_certificates", "").await.json();
    assert_eq!(cas["data"][0]["id"], ca_id);

    let (code, out) = Config::new().raw("[[ca_certificates]]\ncert = \"x\"\n").check();
    assert!(code != 0 && out.contains("ca_certificates[0]: cert: not a PEM certificate"), "{out}");
    let leaf = format!("[[ca_certificates]]\ncert_file = {:?}\n", dir.path().join("server.crt"));
    let (code, out) = Config::new().raw(&leaf).check();
    assert!(code != 0 && out.contains("not a CA certificate"), "{out}");
    let (code, out) =
        Config::new().service("s", &url).set("ca_certificates = [\"00000000-0000-0000-0000-000000000001\"]").check();
    assert!(code != 0 && out.contains("ca_certificates[0]: no CA certificate has id"), "{out}");
}

/// openssl s_client to `api.test` on `port` with `args`: its output.
fn s_client(port: u16, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "api.test"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ssl_protocols` and `ssl_cipher_suite` decide what a client may negotiate, and a session
/// ticket resumes a session.
#[tokio::test(flavor = "multi_thread")]
async fn tls_versions_follow_the_policy_and_sessions_resume() {
    let up = Upstream::start("up").await;
    let certs = tempfile::tempdir().unwrap();
    let api = certificate(certs.path(), "api", "api.test");
    let (tls, strict_tls) = (free_port(), free_port());
    let _gw = api_over_tls(&up, &api, tls).start().await;
    let (code, status, _) = curl(tls, "api.test", &api.0, &["--tls-max", "1.2"]);
    assert_eq!((code, status.as_str()), (0, "2 200"), "TLS 1.2 by default");
    let session = certs.path().join("session.pem");
    let first = s_client(tls, &["-tls1_2", "-sess_out", session.to_str().unwrap()]);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    let again = s_client(tls, &["-tls1_2", "-sess_in", session.to_str().unwrap()]);
    assert!(again.contains("Reused, TLSv1.2"), "the ticket resumes the session: {again}");

    let _strict = api_over_tls(&up, &api, strict_tls).server("ssl_cipher_suite = \"modern\"").start().await;
    assert_eq!(curl(strict_tls, "api.test", &api.0, &["--tls-max", "1.2"]).0, 35, "modern: TLS 1.3 only");
    assert_eq!(curl(strict_tls, "api.test", &api.0, &[]).1, "2 200");
    let (code, out) = crate::support::config::check_files("[server]\nssl_protocols = \"TLSv1.1 TLSv1.3\"\n", None);
    assert!(code != 0 && out.contains("ssl_protocols: give a range without gaps"), "{out}");
}

/// Mutual TLS to the gateway: with `ssl_client_ca`, a client may present a certificate that one
/// of those CAs signed, and plugins see its subject and fingerprint; an untrusted one fails the
/// handshake; with `ssl_verify_client = "on"` a client without one does too.
#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_are_verified_and_plugins_see_them() {
    let up = Upstream::start("up").await;
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::upstream::Pki::new(dir.path());
    let api = certificate(dir.path(), "api", "api.test");
    let stranger = certificate(dir.path(), "stranger", "stranger");
    let (tls, strict_tls) = (free_port(), free_port());
    let ca = format!("ssl_client_ca = {:?}", pki.root);
    let probe = |port: u16, extra: &str| {
        api_over_tls(&up, &api, port)
            .server(&format!("{ca}\n{extra}"))
            .plugin("probe", "", "tag = \"t\"")
            .only_modules(&["probe"])
    };
    let _gw = probe(tls, "").start().await;
    let client_cert = ["--cert", pki.client_chain.to_str().unwrap(), "--key", pki.client_key.to_str().unwrap()];
    let seen = |body: &str, what: &str| {
        let echo: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        echo["headers"][format!("x-probe-{what}")].as_str().unwrap_or_default().to_string()
    };
    let (code, _, body) = curl(tls, "api.test", &api.0, &client_cert);
    assert_eq!(code, 0, "{body}");
    assert_eq!(seen(&body, "client-subject"), "CN=wasmgate test client");
    let fingerprint = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(dir.path().join("client.crt"))
        .output()
        .unwrap();
    let fingerprint =
        String::from_utf8_lossy(&fingerprint.stdout).split('=').nth(1).unwrap().trim().replace(':', "").to_lowercase();
    assert_eq!(seen(&body, "client-fingerprint"), fingerprint);
    let (code, _, body) = curl(tls, "api.test", &api.0, &[]);
    assert_eq!((code, seen(&body, "client-subject")), (0, "-".to_string()), "optional: none presented");
    let untrusted = ["--cert", stranger.0.to_str().unwrap(), "--key", stranger.1.to_str().unwrap()];
    assert_ne!(curl(tls, "api.test", &api.0, &untrusted).0, 0, "a certificate no CA signed fails the handshake");

    let _strict = probe(strict_tls, "ssl_verify_client = \"on\"").start().await;
    assert_ne!(curl(strict_tls, "api.test", &api.0, &[]).0, 0, "on: a client without a certificate is refused");
    assert_eq!(curl(strict_tls, "api.test", &api.0, &client_cert).0, 0);
    let (code, out) = crate::support::config::check_files("[server]\nssl_client_ca = \"missing.pem\"\n", None);
    assert!(code != 0 && out.contains("ssl_client_ca: cannot read"), "{out}");
}

/// An RSA certificate with an ECDSA one beside it (`cert_alt`): each client gets the one its
/// cipher suites can use. An expired certificate is served, with a warning naming it.
#[tokio::test(flavor = "multi_thread")]
async fn rsa_and_ecdsa_pairs_and_an_expired_certificate() {
    let up = Upstream::start("up").await;
    let dir = tempfile::tempdir().unwrap();
    let ecdsa = certificate(dir.path(), "ecdsa", "api.test");
    let (rsa_cert, rsa_key) = (dir.path().join("rsa.crt"), dir.path().join("rsa.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=api.test"])
        .args(["-addext", "subjectAltName=DNS:api.test", "-keyout"])
        .arg(&rsa_key)
        .arg("-out")
        .arg(&rsa_cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    // An expired one, made with Python's cryptography (openssl's command line cannot backdate).
    let (old_cert, old_key) = (dir.path().join("old.crt"), dir.path().join("old.key"));
    let script = "import datetime, sys\n\
        from cryptography import x509\n\
        from cryptography.hazmat.primitives import hashes, serialization\n\
        from cryptography.hazmat.primitives.asymmetric import ec\n\
        from cryptography.x509.oid import NameOID\n\
        key = ec.generate_private_key(ec.SECP256R1())\n\
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'old.test')])\n\
        now = datetime.datetime.now(datetime.timezone.utc)\n\
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())\n\
        \x20   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=30))\n\
        \x20   .not_valid_after(now - datetime.timedelta(days=1)).sign(key, hashes.SHA256()))\n\
        open(sys.argv[1], 'wb').write(cert.public_bytes(serialization.Encoding.PEM))\n\
        open(sys.argv[2], 'wb').write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))\n";
    let made = Command::new("python3").args(["-c", script]).arg(&old_cert).arg(&old_key).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let tls = free_port();
    let gw = Config::new()
        .server(&format!("proxy_listen = [\"127.0.0.1:{{port}}\", \"127.0.0.1:{tls} ssl\"]"))
        .service("s", &up.url())
        .route("r", &["/"])
        .raw(&format!(
            "[[certificates]]\ncert = '''{}'''\nkey = '''{}'''\ncert_alt = '''{}'''\nkey_alt = '''{}'''\nsnis = [\"api.test\"]\n\
             [[certificates]]\ncert_file = {:?}\nkey_file = {:?}\nsnis = [\"old.test\"]\n",
            pem(&rsa_cert),
            pem(&rsa_key),
            pem(&ecdsa.0),
            pem(&ecdsa.1),
            old_cert,
            old_key
        ))
        .start()
        .await;
    let rsa_client = ["--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256"];
    let ecdsa_client = ["--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"];
    assert_eq!(
        curl(tls, "api.test", &rsa_cert, &rsa_client).1,
        "1.1 200",
        "an RSA-only client gets the RSA certificate"
    );
    assert_eq!(curl(tls, "api.test", &ecdsa.0, &ecdsa_client).1, "1.1 200", "an ECDSA-only client gets the ECDSA one");
    assert_eq!(curl(tls, "api.test", &ecdsa.0, &rsa_client).0, 60, "and not the other");
    assert!(gw.stderr().contains("the certificate has expired"), "{}", gw.stderr());
    let served = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{tls}"), "-servername", "old.test"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let served = String::from_utf8_lossy(&served.stdout);
    assert!(served.contains("subject=CN = old.test"), "an expired certificate is still served: {served}");
}

/// Ticket keys rotate every `ssl_session_ticket_rotation`: a ticket resumes under the current
/// key and the one before it (and is then renewed), and one under an older key gets a full
/// handshake, not an error.
#[tokio::test(flavor = "multi_thread")]
async fn session_ticket_keys_rotate() {
    let up = Upstream::start("up").await;
    let certs = tempfile::tempdir().unwrap();
    let api = certificate(certs.path(), "api", "api.test");
    let tls = free_port();
    let _gw = api_over_tls(&up, &api, tls).server("ssl_session_ticket_rotation = 2").start().await;
    let session = |name: &str| certs.path().join(name).to_str().unwrap().to_string();
    let (first, second) = (session("first.pem"), session("second.pem"));
    let start = std::time::Instant::now();
    let at = |seconds: f64| async move {
        tokio::time::sleep(std::time::Duration::from_secs_f64(seconds).saturating_sub(start.elapsed())).await
    };
    assert!(s_client(tls, &["-tls1_2", "-sess_out", &first]).contains("New, TLSv1.2"));
    assert!(s_client(tls, &["-tls1_2", "-sess_in", &first]).contains("Reused, TLSv1.2"));
    // In the second period the first key is still accepted; a new session gets a new key.
    at(2.5).await;
    let renewed = s_client(tls, &["-tls1_2", "-sess_in", &first]);
    assert!(renewed.contains("Reused, TLSv1.2"), "the previous key still resumes: {renewed}");
    assert!(s_client(tls, &["-tls1_2", "-sess_out", &second]).contains("New, TLSv1.2"));
    // Two periods after it was replaced, the first key is gone: a full handshake, no error;
    // the second ticket's key is the previous one now, and still resumes.
    at(5.0).await;
    let expired = s_client(tls, &["-tls1_2", "-sess_in", &first]);
    assert!(expired.contains("New, TLSv1.2"), "a full handshake: {expired}");
    let previous = s_client(tls, &["-tls1_2", "-sess_in", &second]);
    assert!(previous.contains("Reused, TLSv1.2"), "{previous}");

    let (code, out) = crate::support::config::check_files("[server]\nssl_session_ticket_rotation = 0\n", None);
    assert!(code != 0 && out.contains("ssl_session_ticket_rotation: give seconds, at least 1"), "{out}");
}
