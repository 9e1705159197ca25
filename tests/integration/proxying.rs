//! Forwarding headers, gateway headers, upstream errors, timeouts, retries and keepalive.

use crate::support::{Config, Echo, Upstream, free_port, one_route, pool, request};

/// Service `s` on `up` (with `extra` fields), route `r` on `/api`.
fn service(up: &Upstream, extra: &str) -> Config {
    Config::new().service("s", &up.url()).set(extra).route("r", &["/api"])
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_headers_from_an_untrusted_client() {
    let up = Upstream::start("up").await;
    let gw = service(&up, "").start().await;
    let headers = [("host", "example.com:9999"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")];
    let resp = request(gw.port, "GET", "/api/users?id=1", &headers, b"").await;
    let echo = Echo::from(&resp);
    assert_eq!(echo.path, "/users?id=1");
    assert_eq!(echo.header("x-real-ip"), Some("127.0.0.1"), "an untrusted peer is the client");
    assert_eq!(echo.header("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"), "untrusted X-Forwarded-Proto is replaced");
    assert_eq!(echo.header("x-forwarded-host"), Some("example.com"));
    assert_eq!(echo.header("x-forwarded-port"), Some(gw.port.to_string().as_str()));
    assert_eq!(echo.header("x-forwarded-path"), Some("/api/users"));
    assert_eq!(echo.header("x-forwarded-prefix"), Some("/api"));
    assert_eq!(echo.header("host"), Some(up.addr().as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_headers_from_a_trusted_proxy() {
    let up = Upstream::start("up").await;
    let gw = service(&up, "").gateway().server("trusted_ips = [\"127.0.0.0/8\"]").start().await;
    let headers = [
        ("x-forwarded-for", "198.51.100.7, 10.9.9.9"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "public.example"),
        ("x-forwarded-prefix", "/outer"),
    ];
    let echo = Echo::from(&request(gw.port, "GET", "/api/x", &headers, b"").await);
    assert_eq!(echo.header("x-real-ip"), Some("10.9.9.9"), "rightmost untrusted address");
    assert_eq!(echo.header("x-forwarded-for"), Some("198.51.100.7, 10.9.9.9, 127.0.0.1"));
    assert_eq!(echo.header("x-forwarded-proto"), Some("https"));
    assert_eq!(echo.header("x-forwarded-host"), Some("public.example"));
    assert_eq!(echo.header("x-forwarded-prefix"), Some("/outer"));
}

#[tokio::test(flavor = "multi_thread")]
async fn via_and_latency_headers_and_switching_them_off() {
    let up = Upstream::start("up").await;
    let gw = service(&up, "").start().await;
    let resp = request(gw.port, "GET", "/api", &[], b"").await;
    assert_eq!(resp.status, 200);
    assert!(resp.header("via").unwrap().contains("wasmgate/"), "{:?}", resp.headers);
    assert!(resp.header("x-gateway-upstream-latency").unwrap().parse::<u64>().is_ok());
    assert!(resp.header("x-gateway-proxy-latency").unwrap().parse::<u64>().is_ok());
    let own = request(gw.port, "GET", "/nowhere", &[], b"").await;
    assert_eq!(own.status, 404);
    assert!(own.header("server").unwrap().starts_with("wasmgate/"));
    assert!(own.header("x-gateway-response-latency").is_some());

    let quiet = service(&up, "").gateway().server("headers = [\"off\"]").start().await;
    let resp = request(quiet.port, "GET", "/api", &[], b"").await;
    assert_eq!(resp.status, 200);
    for h in ["via", "x-gateway-upstream-latency", "x-gateway-proxy-latency"] {
        assert!(resp.header(h).is_none(), "{h} should be off");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_upstream_is_502_json_after_retries() {
    let dead = free_port();
    let gw = Config::new()
        .service("dead", &format!("http://127.0.0.1:{dead}"))
        .set("retries = 2")
        .route("r", &["/"])
        .start()
        .await;
    let resp = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(resp.status, 502);
    assert_eq!(resp.json()["message"], "An invalid response was received from the upstream server");
    gw.wait_for_access_log("1 try + 2 retries", |log| log.contains("tries=3")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_timeout_is_504_json() {
    let up = Upstream::start("slow").await;
    let gw = service(&up, "read_timeout = 200\nretries = 0").start().await;
    let started = std::time::Instant::now();
    let resp = request(gw.port, "GET", "/api", &[("x-test-delay-ms", "3000")], b"").await;
    assert_eq!(resp.status, 504);
    assert_eq!(resp.json()["message"], "The upstream server is timing out");
    assert!(started.elapsed() < std::time::Duration::from_millis(2500));
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_failure_retries_on_another_target() {
    let live = Upstream::start("live").await;
    let dead = free_port();
    let gw = pool(&[(&format!("127.0.0.1:{dead}"), 100), (&live.addr(), 100)], "retries = 1").start().await;
    for i in 0..10 {
        let resp = request(gw.port, "GET", "/", &[], b"").await;
        assert_eq!(resp.status, 200, "request {i}: {}", resp.text());
        assert_eq!(resp.header("x-upstream"), Some("live"));
    }
    gw.wait_for_access_log("a request that went to the dead target first", |log| log.contains("tries=2")).await;
    assert_eq!(live.hits(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_names_resolve() {
    let up = Upstream::start("named").await;
    let gw = Config::new().service("s", &format!("http://localhost:{}/base", up.port)).route("", &["/"]).start().await;
    let resp = request(gw.port, "GET", "/x", &[], b"").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let echo = Echo::from(&resp);
    assert_eq!(echo.path, "/base/x");
    assert_eq!(echo.header("host"), Some(format!("localhost:{}", up.port).as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_are_kept_alive() {
    let up = Upstream::start("pooled").await;
    let gw = service(&up, "").gateway().server("worker_threads = 1").start().await;
    for _ in 0..20 {
        assert_eq!(request(gw.port, "GET", "/api", &[], b"").await.status, 200);
    }
    assert_eq!(up.hits(), 20);
    assert!(up.connections() <= 2, "20 requests used {} upstream connections", up.connections());
}

/// Client connections stay open as the request says: HTTP/1.0 without `Connection: keep-alive`
/// is closed after its answer (such a client reads to the end of the connection), HTTP/1.0 with
/// it and HTTP/1.1 stay open.
#[tokio::test(flavor = "multi_thread")]
async fn client_connections_stay_open_only_when_the_request_asks() {
    use std::io::{Read, Write};
    let up = Upstream::start("up").await;
    let gw = service(&up, "").start().await;
    let exchange = |request: &str| {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(3))).unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        let closed = conn.read_to_end(&mut got).is_ok();
        (String::from_utf8_lossy(&got).into_owned(), closed)
    };
    let (answer, closed) = exchange("GET /api HTTP/1.0\r\nHost: a\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "HTTP/1.0: closed after the answer");
    let (_, closed) = exchange("GET /api HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
    assert!(!closed, "HTTP/1.0 with keep-alive: kept open");
    let (_, closed) = exchange("GET /api HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(!closed, "HTTP/1.1: kept open");
}

#[tokio::test(flavor = "multi_thread")]
async fn access_log_has_one_line_per_request() {
    let up = Upstream::start("up").await;
    let gw = service(&up, "").gateway().server("access_log = \"json\"").start().await;
    request(gw.port, "POST", "/api/orders", &[], b"{}").await;
    request(gw.port, "GET", "/missing", &[], b"").await;
    gw.wait_for_access_log("two lines", |log| log.lines().count() == 2).await;
    let mut lines: Vec<serde_json::Value> =
        gw.stdout().lines().map(|l| serde_json::from_str(l).expect("JSON access log line")).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Each line is the request's log record (as log plugins send it), written when the request
    // ends, which is after its client has the answer: in either order.
    lines.sort_by_key(|l| l["request"]["uri"].as_str().map(str::to_string));
    let (ok, missing) = (&lines[0], &lines[1]);
    assert_eq!(
        (ok["request"]["method"].as_str(), ok["request"]["uri"].as_str(), ok["response"]["status"].as_u64()),
        (Some("POST"), Some("/api/orders"), Some(200))
    );
    assert_eq!((ok["route"]["name"].as_str(), ok["service"]["name"].as_str()), (Some("r"), Some("s")));
    assert_eq!(ok["tries"], serde_json::json!([{"ip": "127.0.0.1", "port": up.port}]));
    // Request line, `host` and `content-length` fields, and the 2-byte body.
    let size = ok["request"]["size"].as_u64().unwrap() as usize;
    assert!(size > "POST /api/orders HTTP/1.1\r\nhost: localhost\r\n\r\n{}".len() && size < 200, "{size}");
    assert!(ok["latencies"]["request"].as_u64().is_some() && ok["latencies"]["proxy"].as_i64().unwrap() >= 0);
    assert_eq!((missing["response"]["status"].as_u64(), missing["source"].as_str()), (Some(404), Some("error")));
    assert!(missing.get("route").is_none());
    let ids: Vec<&str> = lines.iter().map(|l| l["request"]["id"].as_str().unwrap_or_default()).collect();
    assert!(ids.iter().all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())), "{ids:?}");
    assert_ne!(ids[0], ids[1], "one per request");
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_headers_a_client_sends_never_reach_the_upstream_unless_trusted() {
    let up = Upstream::start("up").await;
    let spoofed = [
        ("x-consumer-id", "8d2b7c7e-4f4e-4b8e-9a55-3a1d2c3b4a01"),
        ("x-consumer-username", "admin"),
        ("x-consumer-groups", "admins"),
        ("x-credential-identifier", "k"),
        ("x-anonymous-consumer", "false"),
        ("x-authenticated-groups", "admins"),
        ("x-other", "kept"),
    ];
    let gw = service(&up, "").start().await;
    let echo = Echo::from(&request(gw.port, "GET", "/api", &spoofed, b"").await);
    for (name, _) in &spoofed[..6] {
        assert_eq!(echo.header(name), None, "{name} is the gateway's to set");
    }
    assert_eq!(echo.header("x-other"), Some("kept"));

    let behind_a_trusted_hop = service(&up, "").server("trust_identity_headers = true").start().await;
    let echo = Echo::from(&request(behind_a_trusted_hop.port, "GET", "/api", &spoofed, b"").await);
    assert_eq!(echo.header("x-consumer-username"), Some("admin"), "kept when the hop in front is trusted");
}

/// What is forwarded is what was matched: a Tomcat or Spring backend reads `/public/..;/admin`
/// as `/admin`, and many read `%2F` or `\` as a separator, so such paths never reach it.
#[tokio::test(flavor = "multi_thread")]
async fn path_tricks_never_reach_the_upstream_behind_an_open_prefix() {
    let up = Upstream::start("up").await;
    let path = async |gw: &crate::support::Gateway, target: &str| {
        let resp = request(gw.port, "GET", target, &[], b"").await;
        (resp.status, resp.header("x-upstream").is_some().then(|| Echo::from(&resp).path))
    };
    let gw = one_route(&up, "/public").start().await;
    for trick in ["/public/..;/admin", "/public/x/..;/admin", "/public/a%2Fb", "/public/a%5Cb"] {
        assert_eq!(path(&gw, trick).await, (400, None), "{trick}");
    }
    assert_eq!(up.hits(), 0, "none reached the upstream");
    let session = path(&gw, "/public/x;jsessionid=1").await;
    assert_eq!(session, (200, Some("/x;jsessionid=1".to_string())), "path parameters themselves pass");

    let decoding = one_route(&up, "/public").server("path_escaped_slashes = \"decode\"").start().await;
    assert_eq!(path(&decoding, "/public/a%2Fb").await, (200, Some("/a/b".to_string())), "decoded, and forwarded so");
    assert_eq!(path(&decoding, "/public/..%2F..%2Fadmin").await, (404, None), "decoded before matching");
    let keeping = one_route(&up, "/public").server("path_escaped_slashes = \"keep\"").start().await;
    assert_eq!(path(&keeping, "/public/a%2Fb").await, (200, Some("/a%2Fb".to_string())), "Kong's behaviour");
}

/// RFC 9110's hop-by-hop headers stay on the client's hop: what `Connection` lists,
/// `Keep-Alive`, `Proxy-Connection`, `TE` but for `trailers`, and `Upgrade`, so an
/// `Upgrade: h2c` never reaches the upstream (h2c smuggling); a WebSocket `Upgrade` does.
#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_headers_and_h2c_upgrades_are_not_forwarded() {
    let up = Upstream::start("up").await;
    let gw = one_route(&up, "/").start().await;
    let smuggle = [
        ("connection", "Upgrade, HTTP2-Settings, x-private"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAAQCAAAAAAIAAAAA"),
        ("x-private", "hop secret"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers, deflate"),
        ("x-kept", "end to end"),
    ];
    let echo = Echo::from(&request(gw.port, "GET", "/", &smuggle, b"").await);
    for gone in ["upgrade", "http2-settings", "x-private", "keep-alive", "proxy-connection"] {
        assert_eq!(echo.header(gone), None, "{gone} reached the upstream: {:?}", echo.headers);
    }
    assert!(matches!(echo.header("te"), None | Some("trailers")), "only trailers may pass: {:?}", echo.header("te"));
    assert_eq!(echo.header("x-kept"), Some("end to end"));
    assert_ne!(echo.header("connection").map(str::to_ascii_lowercase).as_deref(), Some("upgrade"));
}

/// A WebSocket echo server (Python's `websockets`) on `port`, killed when dropped.
struct WebSocketEcho(std::process::Child);

impl WebSocketEcho {
    fn start(port: u16) -> WebSocketEcho {
        let script = "import asyncio, sys, websockets\n\
            async def echo(ws):\n\
            \x20   async for m in ws:\n\
            \x20       await ws.send('echo:' + m)\n\
            async def main():\n\
            \x20   async with websockets.serve(echo, '127.0.0.1', int(sys.argv[1])):\n\
            \x20       await asyncio.Future()\n\
            asyncio.run(main())\n";
        WebSocketEcho(std::process::Command::new("python3").args(["-c", script, &port.to_string()]).spawn().unwrap())
    }
}

impl Drop for WebSocketEcho {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebSocket client (Python's `websockets`) sending two messages to `url` with `headers`:
/// what it received, one line each, or why the handshake failed.
fn websocket_client(url: &str, apikey: Option<&str>) -> String {
    let script = "import asyncio, sys, websockets\n\
        async def main():\n\
        \x20   headers = [('apikey', sys.argv[2])] if len(sys.argv) > 2 else []\n\
        \x20   try:\n\
        \x20       async with websockets.connect(sys.argv[1], additional_headers=headers) as ws:\n\
        \x20           for m in ['one', 'two']:\n\
        \x20               await ws.send(m); print(await ws.recv())\n\
        \x20   except websockets.exceptions.InvalidStatus as e:\n\
        \x20       print('refused', e.response.status_code)\n\
        asyncio.run(main())\n";
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script, url]).args(apikey);
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// WebSocket through the gateway: the handshake runs the route's plugins (key-auth here), then
/// messages go both ways; the access log records the 101.
#[tokio::test(flavor = "multi_thread")]
async fn websocket_handshakes_are_guarded_by_the_plugins_then_tunnelled() {
    let port = free_port();
    let _server = WebSocketEcho::start(port);
    let gw = Config::new()
        .service("ws", &format!("http://127.0.0.1:{port}"))
        .route("ws", &["/ws"])
        .consumer("alice")
        .key("k-alice")
        .plugin("key-auth", "route = \"ws\"", "")
        .only_modules(&["key-auth"])
        .start()
        .await;
    let url = format!("ws://127.0.0.1:{}/ws", gw.port);
    let listening = async || websocket_client(&url, Some("k-alice")) == "echo:one\necho:two";
    crate::support::eventually("the WebSocket echo through the gateway", listening).await;
    assert_eq!(websocket_client(&url, None), "refused 401", "no key, no tunnel");
    gw.wait_for_access_log("the handshake", |out| out.contains("status=101")).await;
}

/// A WebSocket client that holds its tunnel open: it prints `open` after one echo, then waits
/// for a line on stdin (close) or, with `idle`, for the gateway to close the idle tunnel.
fn held_websocket(url: &str, idle: bool) -> std::process::Child {
    let script = "import asyncio, sys, time, websockets\n\
        async def main():\n\
        \x20   async with websockets.connect(sys.argv[1]) as ws:\n\
        \x20       await ws.send('one'); await ws.recv(); print('open', flush=True)\n\
        \x20       if sys.argv[2] == 'idle':\n\
        \x20           started = time.monotonic()\n\
        \x20           try:\n\
        \x20               await asyncio.wait_for(ws.recv(), 10)\n\
        \x20           except websockets.exceptions.ConnectionClosed:\n\
        \x20               print('closed after %.1f s' % (time.monotonic() - started), flush=True)\n\
        \x20       else:\n\
        \x20           await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)\n\
        asyncio.run(main())\n";
    std::process::Command::new("python3")
        .args(["-c", script, url, if idle { "idle" } else { "hold" }])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Open tunnels show in `wasmgate_connections{state="websocket"}`; a tunnel that neither side
/// uses for the service's `read_timeout` is closed; each tunnel is one access log line, written
/// when it ends.
#[tokio::test(flavor = "multi_thread")]
async fn websocket_tunnels_are_counted_closed_when_idle_and_logged_once() {
    use std::io::{BufRead, BufReader, Write};
    let port = free_port();
    let _server = WebSocketEcho::start(port);
    let gw = Config::new()
        .service("ws", &format!("http://127.0.0.1:{port}"))
        .set("read_timeout = 700")
        .route("ws", &["/ws"])
        .start()
        .await;
    let url = format!("ws://127.0.0.1:{}/ws", gw.port);
    let listening = async || websocket_client(&url, None) == "echo:one\necho:two";
    crate::support::eventually("the WebSocket echo through the gateway", listening).await;
    let logged = || gw.stdout().matches("status=101").count();
    let before = logged();
    let tunnels = async || {
        let text = crate::support::admin::call(&gw, "GET", "/metrics", "").await.text();
        let line =
            text.lines().find(|l| l.starts_with("wasmgate_connections{state=\"websocket\"}")).map(str::to_string);
        line.and_then(|l| l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok())).expect("the tunnel gauge")
    };

    let mut held = held_websocket(&url, false);
    let mut out = BufReader::new(held.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "open");
    assert_eq!(tunnels().await, 1, "one tunnel open");
    assert_eq!(logged(), before, "not logged while open");
    held.stdin.take().unwrap().write_all(b"close\n").unwrap();
    held.wait().unwrap();
    crate::support::eventually("the tunnel counted closed", async || tunnels().await == 0).await;
    gw.wait_for_access_log("the tunnel's line", |out| out.matches("status=101").count() == before + 1).await;

    let idle = held_websocket(&url, true).wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&idle.stdout);
    let secs: f64 = said.lines().nth(1).and_then(|l| l.split(' ').nth(2)).and_then(|s| s.parse().ok()).unwrap_or(99.0);
    assert!(secs < 5.0, "the idle tunnel is closed after read_timeout: {said}");
    crate::support::eventually("the idle tunnel counted closed", async || tunnels().await == 0).await;
}
