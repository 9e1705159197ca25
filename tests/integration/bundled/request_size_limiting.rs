//! request-size-limiting: by Content-Length before the body is read, and while a chunked body
//! streams.

use super::{on_route, start};
use crate::support::request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a chunked POST of `chunks` × 1 KiB by hand; the status line's code.
async fn chunked_post(port: u16, chunks: usize) -> u16 {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = "POST /up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    for _ in 0..chunks {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn by_length_and_while_streaming() {
    let (gw, up) =
        start(&on_route("request-size-limiting", r#"allowed_payload_size = 4, size_unit = "kilobytes""#)).await;
    let big = vec![b'x'; 5000];
    let resp = request(gw.port, "POST", "/", &[], &big).await;
    assert_eq!((resp.status, resp.json()), (413, serde_json::json!({"message": "Request size limit exceeded"})));
    let resp = request(gw.port, "POST", "/", &[("expect", "100-continue")], &big).await;
    assert_eq!(resp.status, 417);
    assert_eq!(request(gw.port, "POST", "/", &[], &big[..4096]).await.status, 200, "exactly the limit");
    assert_eq!(up.hits(), 1);
    assert_eq!(chunked_post(gw.port, 3).await, 200, "3 KiB chunked");
    assert_eq!(chunked_post(gw.port, 8).await, 413, "8 KiB chunked, refused as it streams");
}

#[tokio::test(flavor = "multi_thread")]
async fn require_content_length() {
    let (gw, _up) = start(&on_route("request-size-limiting", "require_content_length = true")).await;
    let resp = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(
        (resp.status, resp.json()["message"].as_str()),
        (411, Some("A valid Content-Length header is required"))
    );
    assert_eq!(request(gw.port, "POST", "/", &[], b"abc").await.status, 200);
    assert_eq!(chunked_post(gw.port, 1).await, 200, "chunked bodies are let through to be counted");
}
