//! gRPC through the gateway with a real grpcio server and client (`grpc/server.py`,
//! `grpc/client.py`): all four kinds of call over h2c (`http2` on a plain listener, a `grpc`
//! service) and over TLS (`grpcs` both ways), trailers and deadlines passed through, key-auth
//! and rate-limiting on gRPC metadata, and the gateway's own answers as gRPC errors.

use crate::support::upstream::self_signed as certificate;
use crate::support::{Config, free_port};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/integration/grpc").join(name)
}

/// A grpcio server on a free port (TLS with `tls`); killed on drop.
struct GrpcServer {
    port: u16,
    child: Child,
}

impl GrpcServer {
    fn start(tls: Option<&(PathBuf, PathBuf)>) -> GrpcServer {
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(script("server.py")).arg(port.to_string());
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        GrpcServer { port, child: cmd.spawn().expect("python3") }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the client against `target` (with `tls`: trusting the certificate, for `api.test`).
fn client(target: &str, tls: Option<&Path>) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(script("client.py")).arg(target).arg("/test.Echo/");
    if let Some(ca) = tls {
        cmd.arg(ca).arg("api.test");
    }
    let out = cmd.output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// What the client gets; `scheme` is what a plugin saw (`grpc` or `grpcs`).
fn expected(scheme: &str) -> Value {
    json!({
        "unary": {"response": format!("unary:hi:alice:set:{scheme}"), "trailers": {"x-trailer": "kept"}},
        "no_deadline": format!("unary:hi:alice:none:{scheme}"),
        "many": ["item0", "item1", "item2"],
        "gather": "a+b+c",
        "chat": ["echo:x", "echo:y"],
        "deadline": {"code": "DEADLINE_EXCEEDED", "message": "Deadline Exceeded"},
        "aborted": {"code": "NOT_FOUND", "message": "no such thing"},
        "no_key": {"code": "UNAUTHENTICATED", "message": "No API key found in request"},
        "limited": ["UNIMPLEMENTED", "UNIMPLEMENTED", "RESOURCE_EXHAUSTED"],
    })
}

/// A gateway with an h2c listener and a TLS one, routes for the gRPC service `url` (key-auth
/// on `/test.Echo/`, rate-limiting at 2 a minute on `/test.Limited/`).
fn grpc_gateway(url: &str, service_fields: &str, tls: u16, cert: &(PathBuf, PathBuf)) -> Config {
    Config::new()
        .server(&format!("proxy_listen = [\"127.0.0.1:{{port}} http2\", \"127.0.0.1:{tls} ssl http2\"]"))
        .service("grpc", url)
        .set(service_fields)
        .route("echo", &["/test.Echo/"])
        .set("protocols = [\"grpc\", \"grpcs\"]")
        .route("limited", &["/test.Limited/"])
        .set("protocols = [\"grpc\", \"grpcs\"]")
        .consumer("alice")
        .key("secret")
        .raw(&format!("[[certificates]]\ncert_file = {:?}\nkey_file = {:?}\nsnis = [\"api.test\"]\n", cert.0, cert.1))
        .plugin("key-auth", "route = \"echo\"", "key_names = [\"apikey\"]")
        .plugin("rate-limiting", "route = \"limited\"", "minute = 2, limit_by = \"ip\"")
        .plugin("probe", "route = \"echo\"", "tag = \"t\"")
        .only_modules(&["key-auth", "rate-limiting", "probe"])
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_of_every_kind_pass_through_h2c_and_tls() {
    let certs = tempfile::tempdir().unwrap();
    let cert = certificate(certs.path(), "api", "api.test");
    let upstream = GrpcServer::start(None);
    let tls = free_port();
    let gw = grpc_gateway(&format!("grpc://127.0.0.1:{}", upstream.port), "", tls, &cert).start().await;
    let direct = format!("127.0.0.1:{}", upstream.port);
    crate::support::eventually("the gRPC server (a Python process) listening", async || {
        std::net::TcpStream::connect(&direct).is_ok()
    })
    .await;
    assert_eq!(client(&format!("127.0.0.1:{}", gw.port), None), expected("grpc"), "h2c: {}", gw.stderr());
    // The rate-limiting window is per minute and counts per client IP across listeners: a
    // second gateway serves the TLS run.
    let tls2 = free_port();
    let gw2 = grpc_gateway(&format!("grpc://127.0.0.1:{}", upstream.port), "", tls2, &cert).start().await;
    assert_eq!(client(&format!("127.0.0.1:{tls2}"), Some(&cert.0)), expected("grpcs"), "grpcs: {}", gw2.stderr());

    // A request that is not gRPC on a gRPC route: 415, as Kong answers.
    let plain = crate::support::request(gw.port, "POST", "/test.Echo/Unary", &[("apikey", "secret")], b"").await;
    assert_eq!((plain.status, plain.json()["message"].as_str()), (415, Some("Non-gRPC request matched gRPC route")));
    // The same listener takes HTTP/2 with prior knowledge from any client (h2c), beside HTTP/1.1.
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "--http2-prior-knowledge"])
        .arg(format!("http://127.0.0.1:{}/test.Echo/Unary", gw.port))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 415");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcs_services_speak_h2_over_tls_to_the_upstream() {
    let certs = tempfile::tempdir().unwrap();
    let cert = certificate(certs.path(), "api", "api.test");
    let upstream_cert = certificate(certs.path(), "upstream", "localhost");
    let upstream = GrpcServer::start(Some(&upstream_cert));
    let tls = free_port();
    let url = format!("grpcs://127.0.0.1:{}", upstream.port);
    let gw = grpc_gateway(&url, "tls_verify = false", tls, &cert).start().await;
    let direct = format!("127.0.0.1:{}", upstream.port);
    crate::support::eventually("the gRPC server (a Python process) listening", async || {
        std::net::TcpStream::connect(&direct).is_ok()
    })
    .await;
    assert_eq!(client(&format!("127.0.0.1:{}", gw.port), None), expected("grpc"), "{}", gw.stderr());
    // Down: a gRPC client gets UNAVAILABLE, not an HTML or JSON body.
    drop(upstream);
    let out = client(&format!("127.0.0.1:{}", gw.port), None);
    assert_eq!(out["unary"]["code"], "UNAVAILABLE", "{out}");
    assert_eq!(out["unary"]["message"], "An invalid response was received from the upstream server");
}

/// `http2 = true` on a plain `http` service: the gateway speaks h2c to an upstream that speaks
/// nothing else; without it, the same upstream is unreachable.
#[tokio::test(flavor = "multi_thread")]
async fn plain_services_may_speak_h2c_to_their_upstream() {
    let port = free_port();
    let mut server = Command::new("python3").arg(script("h2c_server.py")).arg(port.to_string()).spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let gw = Config::new()
        .service("h2", &url)
        .set("http2 = true")
        .route("h2", &["/h2"])
        .set("strip_path = false")
        .service("h1", &url)
        .route("h1", &["/h1"])
        .start()
        .await;
    let get = async |path: &str| crate::support::request(gw.port, "GET", path, &[], b"").await;
    crate::support::eventually("the h2c server (a Python process) answering", async || {
        get("/h2/x").await.status == 200
    })
    .await;
    assert_eq!(get("/h2/x").await.text(), "h2 /h2/x");
    assert_eq!(get("/h1").await.status, 502, "HTTP/1.1 to an h2-only upstream");
    let _ = server.kill();
    let _ = server.wait();
}
