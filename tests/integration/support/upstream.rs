//! Upstream HTTP servers for tests. The default one echoes the request it received as JSON:
//! `{"server", "method", "path", "headers", "body"}` (`path` is the raw request target). A request
//! header `x-test-delay-ms` delays the answer; `x-test-status` sets its status.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What an echo upstream received, parsed from its answer.
#[derive(Debug, Clone)]
pub struct Echo {
    pub method: String,
    pub path: String,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub body: String,
}

impl Echo {
    /// Parses an echo answer.
    pub fn from(resp: &super::Response) -> Echo {
        let v = resp.json();
        Echo {
            method: v["method"].as_str().unwrap_or_default().into(),
            path: v["path"].as_str().unwrap_or_default().into(),
            headers: v["headers"].as_object().cloned().unwrap_or_default(),
            body: v["body"].as_str().unwrap_or_default().into(),
        }
    }

    /// A header the upstream received (repeated ones joined by ", "), lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.as_str())
    }
}

/// A running upstream server; stops when dropped.
pub struct Upstream {
    pub port: u16,
    hits: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Starts an echo server called `name` on an ephemeral port.
    pub async fn start(name: &str) -> Upstream {
        Upstream::serve(name, false).await
    }

    /// Starts a server that plays walkthrough 1's replica: `/` answers "Hello from my service",
    /// `/profile` answers 401 "Unauthorized" without X-Consumer-ID and the consumer as JSON with
    /// one; other paths echo.
    pub async fn start_replica(name: &str) -> Upstream {
        Upstream::serve(name, true).await
    }

    /// An echo server on a given port (to bring a stopped target back).
    pub async fn start_on(name: &str, port: u16) -> Upstream {
        Upstream::serve_on(name, false, Duration::ZERO, port).await
    }

    /// An echo server that takes `delay` over every answer.
    pub async fn start_slow(name: &str, delay: Duration) -> Upstream {
        Upstream::serve_on(name, false, delay, 0).await
    }

    async fn serve(name: &str, replica: bool) -> Upstream {
        Upstream::serve_on(name, replica, Duration::ZERO, 0).await
    }

    async fn serve_on(name: &str, replica: bool, delay: Duration, port: u16) -> Upstream {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (server_name, counter, accepted) = (name.to_string(), hits.clone(), connections.clone());
        let task = tokio::spawn(async move {
            // Connections belong to this task: stopping the server closes them too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                accepted.fetch_add(1, Ordering::Relaxed);
                while connections.try_join_next().is_some() {}
                let (name, counter) = (server_name.clone(), counter.clone());
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let name = name.clone();
                        async move {
                            tokio::time::sleep(delay).await;
                            answer(name, replica, req).await
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { port, hits, connections, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

async fn answer(
    server: String,
    replica: bool,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let consumer = req.headers().get("x-consumer-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = |status: u16, body: String| {
        let resp = hyper::Response::builder().status(status).header("x-upstream", server.as_str());
        Ok(resp.body(Full::new(Bytes::from(body))).unwrap())
    };
    match (replica, req.uri().path(), consumer) {
        (true, "/", _) => text(200, "Hello from my service".into()),
        (true, "/profile", None) => text(401, "Unauthorized".into()),
        (true, "/profile", Some(id)) => {
            let username = req.headers().get("x-consumer-username").and_then(|v| v.to_str().ok()).unwrap_or_default();
            text(200, serde_json::json!({ "id": id, "username": username }).to_string())
        }
        _ => echo(server, req).await,
    }
}

async fn echo(
    server: String,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for (k, v) in &parts.headers {
        let v = v.to_str().unwrap_or("");
        let joined = match headers.get(k.as_str()).and_then(|p| p.as_str()) {
            Some(prev) => format!("{prev}, {v}"),
            None => v.to_string(),
        };
        headers.insert(k.as_str().to_string(), serde_json::Value::String(joined));
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = header("x-test-delay-ms") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = header("x-test-status").unwrap_or(200) as u16;
    let json = serde_json::json!({
        "server": server,
        "method": parts.method.as_str(),
        "path": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let resp = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-upstream", server.as_str())
        .body(Full::new(Bytes::from(json.to_string())))
        .unwrap();
    Ok(resp)
}

/// A TLS server with a self-signed certificate (openssl and Python's `ssl`), killed when dropped.
pub struct TlsServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    /// Starts one on a free port; it answers every GET with 200 `ok`.
    pub fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "server", "localhost");
        TlsServer::serve(dir, &cert, &key, None)
    }

    /// Starts one serving `pki`'s server chain, and requiring a client certificate that the
    /// root signed.
    pub fn start_mutual(pki: &Pki) -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        TlsServer::serve(dir, &pki.server_chain, &pki.server_key, Some(&pki.root))
    }

    fn serve(dir: tempfile::TempDir, cert: &Path, key: &Path, client_ca: Option<&Path>) -> TlsServer {
        let port = super::free_port();
        let script = "import http.server, ssl, sys\n\
            class H(http.server.BaseHTTPRequestHandler):\n\
            \x20   def do_GET(self):\n\
            \x20       self.send_response(200); self.send_header('content-length', '2'); self.end_headers(); self.wfile.write(b'ok')\n\
            \x20   def log_message(self, *a): pass\n\
            srv = http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H)\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
            if len(sys.argv) > 4: ctx.verify_mode = ssl.CERT_REQUIRED; ctx.load_verify_locations(sys.argv[4])\n\
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
            srv.serve_forever()\n";
        let child = std::process::Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .arg(cert)
            .arg(key)
            .args(client_ca)
            .spawn()
            .expect("python3");
        TlsServer { port, child, _dir: dir }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed ECDSA certificate for `name`, made by openssl in `dir`: (certificate, key).
pub fn self_signed(dir: &Path, file: &str, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{file}.crt")), dir.join(format!("{file}.key")));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={name}"), "-addext", &format!("subjectAltName=DNS:{name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// A root CA, an intermediate it signed, and leaf certificates: a server chain for `localhost`
/// (leaf + intermediate) and a client certificate, both from the intermediate's line.
pub struct Pki {
    /// The root CA certificate.
    pub root: PathBuf,
    /// The server's certificate, then the intermediate.
    pub server_chain: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// The client's certificate, then the intermediate.
    pub client_chain: PathBuf,
    /// The client's key.
    pub client_key: PathBuf,
}

impl Pki {
    /// Makes them with openssl in `dir`.
    pub fn new(dir: &Path) -> Pki {
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        std::fs::write(
            dir.join("ca.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        let root_args = ["req", "-x509", "-days", "2", "-subj", "/CN=wasmgate test root", "-keyout", "root.key"];
        openssl(
            &[&root_args[..], &key[..], &["-out", "root.crt", "-addext", "basicConstraints=critical,CA:TRUE"]].concat(),
        );
        let sign = |name: &str, subject: &str, issuer: &str, ext: &str| {
            openssl(
                &[
                    &["req", "-new", "-subj", subject, "-keyout", &format!("{name}.key")][..],
                    &key[..],
                    &["-out", &format!("{name}.csr")],
                ]
                .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{issuer}.crt"),
                "-CAkey",
                &format!("{issuer}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}.crt"),
            ]);
        };
        sign("inter", "/CN=wasmgate test intermediate", "root", "ca.ext");
        sign("server", "/CN=localhost", "inter", "server.ext");
        sign("client", "/CN=wasmgate test client", "inter", "client.ext");
        let chain = |leaf: &str| {
            let path = dir.join(format!("{leaf}-chain.pem"));
            let pem = [
                std::fs::read(dir.join(format!("{leaf}.crt"))).unwrap(),
                std::fs::read(dir.join("inter.crt")).unwrap(),
            ];
            std::fs::write(&path, pem.concat()).unwrap();
            path
        };
        Pki {
            root: dir.join("root.crt"),
            server_chain: chain("server"),
            server_key: dir.join("server.key"),
            client_chain: chain("client"),
            client_key: dir.join("client.key"),
        }
    }
}
