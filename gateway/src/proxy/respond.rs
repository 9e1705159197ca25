//! The gateway's own answers (404, 426, 503, plugin early answers, errors), which go through the
//! header and body filters as in Kong, and the request body read for plugins that need it.

use super::{Gateway, MAX_BUFFERED_BODY, RequestCtx, SERVER_TOKEN};
use crate::plugins::phases::{self, Verdict};
use crate::request::answer::{Answer, messages};
use crate::request::grpc;
use crate::request::{Phase, Source};
use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use std::time::Duration;

impl Gateway {
    /// Acts on a rewrite/access verdict: `Some(true)` when the request was answered.
    pub(super) async fn settle(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        verdict: Verdict,
    ) -> Result<Option<bool>> {
        match verdict {
            Verdict::Continue => Ok(None),
            Verdict::Respond(a) => self.answer(session, ctx, a, Source::Exit).await.map(Some),
            Verdict::Unavailable(a) => self.answer(session, ctx, a, Source::Error).await.map(Some),
            Verdict::Fail => {
                ctx.plugin_failed = true;
                self.answer(session, ctx, Answer::message(500, messages::UNEXPECTED), Source::Error).await.map(Some)
            }
        }
    }

    /// Sends a gateway answer and ends the request (`Ok(true)` for `request_filter`).
    pub(super) async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        answer: Answer,
        source: Source,
    ) -> Result<bool> {
        ctx.state.set_source(source);
        self.write_answer(session, ctx, answer).await?;
        Ok(true)
    }

    /// Writes a gateway answer, through the header and body filters unless a plugin failed. A
    /// gRPC client gets it as a gRPC error.
    pub(super) async fn write_answer(&self, session: &mut Session, ctx: &mut RequestCtx, answer: Answer) -> Result<()> {
        let is_grpc = grpc::is_grpc(&session.req_header().headers);
        let answer = if is_grpc { grpc::error(answer) } else { answer };
        let mut resp = ResponseHeader::build(answer.status, Some(answer.headers.len() + 3))?;
        for (name, value) in &answer.headers {
            resp.append_header(name.clone(), value.as_str())?;
        }
        let settings = &ctx.entities().settings;
        if settings.server_tokens {
            resp.insert_header(http::header::SERVER, SERVER_TOKEN)?;
        }
        if settings.latency_tokens {
            resp.insert_header("x-gateway-response-latency", millis(ctx.started.elapsed()))?;
        }
        let mut body = Some(answer.body);
        if !ctx.plugin_failed
            && self.filter_response(session, ctx, &mut resp).await == Verdict::Continue
            && ctx.chain.filters_body
        {
            let chain = ctx.chain.clone();
            let mut kept = ctx.response.take();
            phases::body_filter(&chain, &mut scope!(session, ctx, Phase::BodyFilter, kept.as_mut()), &mut body, true);
            ctx.response = kept;
        }
        let body = body.unwrap_or_default();
        resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
        let trailers = (is_grpc && session.as_ref().is_http2()).then(|| grpc::take_status(&mut resp));
        let has_body = !body.is_empty() && session.req_header().method != http::Method::HEAD;
        session.write_response_header(Box::new(resp), !has_body && trailers.is_none()).await?;
        if has_body {
            session.write_response_body(Some(body), trailers.is_none()).await?;
        }
        if let Some(trailers) = trailers {
            session.as_mut().write_response_trailers(trailers).await?;
        }
        Ok(())
    }

    /// Header writes plugins made in rewrite and access, then HEADER_FILTER plugins, on a
    /// response; keeps a copy for body-filter and log plugins.
    pub(super) async fn filter_response(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        resp: &mut ResponseHeader,
    ) -> Verdict {
        ctx.state.apply_response_headers(resp);
        if ctx.chain.plugins.is_empty() {
            return Verdict::Continue;
        }
        let chain = ctx.chain.clone();
        let verdict = phases::header_filter(&chain, &mut scope!(session, ctx, Phase::HeaderFilter, Some(resp))).await;
        if chain.filters_body {
            // The body may change length: an HTTP/1.1 client gets it chunked (without a length
            // or chunks it could only read to the connection's end).
            let had_length = resp.remove_header(&http::header::CONTENT_LENGTH).is_some();
            if had_length && session.req_header().version == http::Version::HTTP_11 {
                resp.insert_header(http::header::TRANSFER_ENCODING, "chunked").expect("static header");
            }
            if ctx.state.wants_whole_body() {
                ctx.held_body = Some(BytesMut::new());
            }
        }
        if chain.filters_body || chain.logs {
            ctx.response = Some(resp.clone());
        }
        verdict
    }

    /// Reads the whole request body (up to 64 KiB) for plugins that declared they need it; it is
    /// still sent upstream. `Some(true)` when the request was answered (too large).
    pub(super) async fn buffer_request_body(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Option<bool>> {
        session.enable_retry_buffering();
        let mut buf = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            buf.extend_from_slice(&chunk);
            if buf.len() > MAX_BUFFERED_BODY {
                let a = Answer::message(413, "Request size limit exceeded");
                return self.answer(session, ctx, a, Source::Error).await.map(Some);
            }
        }
        ctx.state.set_body(buf.freeze());
        Ok(None)
    }
}

/// A duration as a header value in whole milliseconds.
pub(super) fn millis(d: Duration) -> HeaderValue {
    HeaderValue::from(d.as_millis() as u64)
}

/// Most response body bytes held for body filters that want the body whole; past this it streams.
const MAX_HELD_BODY: usize = 16 << 20;

impl RequestCtx {
    /// Holds response body chunks for body filters that asked for the whole body: false while
    /// it holds them; true when `body` is what the filters get (all of it at the end, or what was
    /// held and this chunk once past [`MAX_HELD_BODY`], after which the body streams).
    pub(super) fn hold_body(&mut self, body: &mut Option<Bytes>, end: bool) -> bool {
        let Some(held) = self.held_body.as_mut() else { return true };
        if let Some(chunk) = body.take() {
            held.extend_from_slice(&chunk);
        }
        if !end && held.len() <= MAX_HELD_BODY {
            return false;
        }
        *body = self.held_body.take().map(BytesMut::freeze);
        true
    }
}
