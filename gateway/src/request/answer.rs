//! Answers the gateway gives itself (no route, no service, upstream errors, plugin early answers),
//! with Kong's status codes and JSON messages.

use bytes::Bytes;
use pingora_error::{Error, ErrorSource, ErrorType};

/// A complete response produced by the gateway instead of an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Status code.
    pub(crate) status: u16,
    /// Headers, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// Body.
    pub(crate) body: Bytes,
}

impl Answer {
    /// `{"message": ...}` with a JSON content type.
    pub(crate) fn message(status: u16, message: &str) -> Answer {
        let body = serde_json::json!({ "message": message }).to_string();
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
            body: Bytes::from(body),
        }
    }
}

/// Messages for the gateway's own answers, as Kong words them.
pub(crate) mod messages {
    /// 404 when no route matches.
    pub(crate) const NO_ROUTE: &str = "no Route matched with those values";
    /// 503 when the route has no service.
    pub(crate) const NO_SERVICE: &str = "no Service found with those values";
    /// 426 when the route does not accept plain HTTP.
    pub(crate) const USE_HTTPS: &str = "Please use HTTPS protocol";
    /// 415 when a request that is not gRPC matches a gRPC-only route.
    pub(crate) const NOT_GRPC: &str = "Non-gRPC request matched gRPC route";
    /// 502 when the upstream cannot be reached or answers garbage.
    pub(crate) const BAD_GATEWAY: &str = "An invalid response was received from the upstream server";
    /// 503 when the upstream has no usable target.
    pub(crate) const NO_PEER: &str = "failure to get a peer from the ring-balancer";
    /// 503 when a host name does not resolve.
    pub(crate) const DNS_FAILED: &str = "name resolution failed";
    /// 504 on upstream timeouts.
    pub(crate) const TIMEOUT: &str = "The upstream server is timing out";
    /// 500 for internal errors and failing fail-closed plugins.
    pub(crate) const UNEXPECTED: &str = "An unexpected error occurred";
    /// 400 for requests that cannot be parsed.
    pub(crate) const BAD_REQUEST: &str = "Bad request";
    /// 413: the request body grew past a plugin's limit (request-size-limiting).
    pub(crate) const BODY_TOO_LARGE: &str = "Request size limit exceeded";
    /// 408: the client did not send its body within `client_body_timeout`.
    pub(crate) const CLIENT_TIMEOUT: &str = "Request timeout";
}

/// Maps a proxy error to the answer for the client; `None` when the client is gone.
pub(crate) fn for_error(e: &Error, message_hint: Option<&'static str>) -> Option<Answer> {
    use ErrorType::*;
    let (status, default_msg) = match e.etype() {
        HTTPStatus(code) => (*code, messages::UNEXPECTED),
        ReadTimedout if *e.esource() == ErrorSource::Downstream => (408, messages::CLIENT_TIMEOUT),
        WriteTimedout if *e.esource() == ErrorSource::Downstream => return None,
        ConnectTimedout | ReadTimedout | WriteTimedout => (504, messages::TIMEOUT),
        _ => match e.esource() {
            ErrorSource::Upstream => (502, messages::BAD_GATEWAY),
            ErrorSource::Downstream => match e.etype() {
                WriteError | ReadError | ConnectionClosed => return None,
                _ => (400, messages::BAD_REQUEST),
            },
            ErrorSource::Internal | ErrorSource::Unset => (500, messages::UNEXPECTED),
        },
    };
    Some(Answer::message(status, message_hint.unwrap_or(default_msg)))
}

/// An error that makes the proxy answer `status` with `message` (via `fail_to_proxy`).
pub(crate) fn status_error(status: u16, message: &'static str) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(status), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_errors_like_kong() {
        let timeout = Error::new(ErrorType::ConnectTimedout);
        assert_eq!(for_error(&timeout, None).unwrap().status, 504);
        let slow_client = Error::new_down(ErrorType::ReadTimedout);
        assert_eq!(for_error(&slow_client, None).unwrap().status, 408);
        let refused = Error::new_up(ErrorType::ConnectRefused);
        let a = for_error(&refused, None).unwrap();
        assert_eq!(
            (a.status, a.body.as_ref()),
            (502, br#"{"message":"An invalid response was received from the upstream server"}"#.as_ref())
        );
        let no_peer = status_error(503, messages::NO_PEER);
        assert_eq!(for_error(&no_peer, Some(messages::NO_PEER)).unwrap().status, 503);
        let gone = Error::new_down(ErrorType::WriteError);
        assert!(for_error(&gone, None).is_none());
    }
}
