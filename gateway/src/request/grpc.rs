//! gRPC requests, recognised by their content type (`application/grpc`, `application/grpc+proto`,
//! ...). The gateway's own answers to them are gRPC errors, as Kong sends them: HTTP 200 with
//! `grpc-status` and `grpc-message` and no body (a "trailers-only" response), since a gRPC client
//! reads no HTML or JSON body.

use super::answer::Answer;
use bytes::Bytes;
use http::HeaderMap;

/// Whether a request is a gRPC call.
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.len() >= 16 && t[..16].eq_ignore_ascii_case("application/grpc"))
}

/// The gRPC status for an HTTP status: gRPC's own mapping (doc/http-grpc-status-mapping.md),
/// with the cases a gateway knows better named as such (401, 403, 413, 429, 504).
pub(crate) fn status_for(http: u16) -> u8 {
    match http {
        400 => 13,       // INTERNAL
        401 => 16,       // UNAUTHENTICATED
        403 => 7,        // PERMISSION_DENIED
        404 => 12,       // UNIMPLEMENTED
        408 | 504 => 4,  // DEADLINE_EXCEEDED
        413 | 429 => 8,  // RESOURCE_EXHAUSTED
        500 => 13,       // INTERNAL
        502 | 503 => 14, // UNAVAILABLE
        _ => 2,          // UNKNOWN
    }
}

/// `answer` as a gRPC error: its JSON `message` (or its body text) becomes `grpc-message`,
/// percent-encoded as the gRPC spec says; headers other than its content type are kept
/// (`WWW-Authenticate`, `Retry-After`, rate-limit headers).
pub(crate) fn error(answer: Answer) -> Answer {
    let text = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&answer.body).trim().to_string());
    let mut headers: Vec<(String, String)> =
        answer.headers.into_iter().filter(|(n, _)| !n.eq_ignore_ascii_case("content-type")).collect();
    headers.push(("content-type".into(), "application/grpc".into()));
    headers.push(("grpc-status".into(), status_for(answer.status).to_string()));
    if !text.is_empty() {
        headers.push(("grpc-message".into(), percent_encode(&text)));
    }
    Answer { status: 200, headers, body: Bytes::new() }
}

/// Moves `grpc-status` and `grpc-message` out of a response header, to be sent as trailers (an
/// HTTP/2 response header cannot end the stream through Pingora's proxy session).
pub(crate) fn take_status(resp: &mut pingora_http::ResponseHeader) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    for name in ["grpc-status", "grpc-message"] {
        if let Some(v) = resp.remove_header(name) {
            trailers.insert(name, v);
        }
    }
    resp.remove_header(&http::header::CONTENT_LENGTH);
    trailers
}

/// gRPC's percent-encoding of `grpc-message`: bytes outside printable ASCII, and `%`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_becomes_a_trailers_only_grpc_error() {
        let mut a = Answer::message(401, "No API key found in request");
        a.headers.push(("www-authenticate".into(), "Key realm=\"kong\"".into()));
        let g = error(a);
        assert_eq!(g.status, 200);
        assert!(g.body.is_empty());
        let get = |n: &str| g.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("grpc-status"), Some("16"));
        assert_eq!(get("grpc-message"), Some("No API key found in request"));
        assert_eq!(get("content-type"), Some("application/grpc"));
        assert_eq!(get("www-authenticate"), Some("Key realm=\"kong\""));
        assert_eq!(percent_encode("50% ü"), "50%25 %C3%BC");
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/grpc+proto".parse().unwrap());
        assert!(is_grpc(&h));
        h.insert("content-type", "application/json".parse().unwrap());
        assert!(!is_grpc(&h));
    }
}
