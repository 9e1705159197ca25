//! A demo upstream for `make run`, playing the replica from walkthrough 1:
//! `/` answers "Hello from my service"; `/profile` answers 401 without an X-Consumer-ID header and
//! the consumer as JSON with one; any other path echoes the request as JSON.
//!
//! `cargo run --example demo_upstream -- 127.0.0.1:9001 replica-1`

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
    let name: &'static str = Box::leak(args.next().unwrap_or_else(|| addr.clone()).into_boxed_str());
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    eprintln!("demo upstream {name} listening on {addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(name, req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn answer(
    name: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, content_type, body) = match req.uri().path() {
        "/" => (200, "text/plain", format!("Hello from my service ({name})\n")),
        "/profile" => match header("x-consumer-id") {
            None => (401, "text/plain", "Unauthorized\n".to_string()),
            Some(id) => {
                let json =
                    serde_json::json!({ "id": id, "username": header("x-consumer-username"), "served_by": name });
                (200, "application/json", json.to_string())
            }
        },
        _ => {
            let headers: serde_json::Map<String, serde_json::Value> =
                req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().into())).collect();
            let json = serde_json::json!({ "served_by": name, "method": req.method().as_str(), "path": req.uri().to_string(), "headers": headers });
            (200, "application/json", json.to_string())
        }
    };
    let resp = hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)));
    Ok(resp.expect("valid response"))
}
