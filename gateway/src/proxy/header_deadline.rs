//! The proxy listener's app: Pingora's HTTP/1 handling plus a deadline for reading each request
//! header (`client_header_timeout`, nginx's name and default).
//!
//! Pingora bounds every single read of a header, but not the header as a whole, so a client that
//! trickles a line every few seconds (slowloris) would keep its connection for ever. Here each
//! connection gets a [`HeaderClock`]:
//! - on a new connection it runs from the accept;
//! - on a kept-alive one it starts with the first bytes of the next request that do not already
//!   hold the whole header (the idle time before them is `keepalive_timeout`'s business);
//! - [`header_read`] stops it (called from `early_request_filter`), and the connection waits
//!   for a header again when the next request's read begins: the HTTP/1 loop is this app's own
//!   (Pingora's, for HTTP/1 only), so that bytes of a request body Pingora drains after an early
//!   answer never count as the next header.
//!
//! When it runs out, the connection is dropped quietly: the client never sent a request, so
//! there is nothing to answer and nothing to log above debug.

use super::Gateway;
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use atomic_waker::AtomicWaker;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::{SslDigest, TlsRef};
use pingora_core::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream, TimingDigest,
    UniqueID, UniqueIDType,
};
use pingora_core::server::ShutdownWatch;
use pingora_proxy::HttpProxy;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

tokio::task_local! {
    /// The clock of the connection that the current task serves (HTTP/1: one task per connection).
    static CLOCK: Arc<HeaderClock>;
}

/// Stops the header clock: the request header is complete.
pub(crate) fn header_read() {
    let _ = CLOCK.try_with(|c| c.stop());
}

/// The deadline for reading one request header on one connection.
#[derive(Debug)]
struct HeaderClock {
    limit: Duration,
    origin: Instant,
    /// True between requests: bytes read now belong to a request header.
    waiting: AtomicBool,
    /// When the header must be complete, in µs after `origin`; 0 while the clock is stopped.
    deadline_us: AtomicU64,
    /// Wakes the watcher ([`Expiry`]) when the clock starts.
    started: AtomicWaker,
}

impl HeaderClock {
    /// A clock for a new connection, already running.
    fn new(limit: Duration) -> HeaderClock {
        let clock = HeaderClock {
            limit,
            origin: Instant::now(),
            waiting: AtomicBool::new(true),
            deadline_us: AtomicU64::new(0),
            started: AtomicWaker::new(),
        };
        clock.start();
        clock
    }

    fn start(&self) {
        let deadline = self.origin.elapsed() + self.limit;
        self.deadline_us.store((deadline.as_micros() as u64).max(1), Ordering::Relaxed);
        self.started.wake();
    }

    fn stop(&self) {
        self.waiting.store(false, Ordering::Relaxed);
        self.deadline_us.store(0, Ordering::Relaxed);
    }

    /// Bytes read from the client. Between requests, the first bytes that do not end a header
    /// start the clock; a header that arrives whole in one read never does. Empty lines before a
    /// request (which parsers skip) start it too, so they cannot hold a connection open.
    fn saw(&self, bytes: &[u8]) {
        if bytes.is_empty() || !self.waiting.load(Ordering::Relaxed) || self.deadline_us.load(Ordering::Relaxed) != 0 {
            return;
        }
        let request = &bytes[bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(bytes.len())..];
        let ends_header =
            memchr::memmem::find(request, b"\n\r\n").is_some() || memchr::memmem::find(request, b"\n\n").is_some();
        if request.is_empty() || !ends_header {
            self.start();
        }
    }

    /// The next request's read begins: its header is awaited (the clock starts with its bytes).
    fn await_header(&self) {
        self.deadline_us.store(0, Ordering::Relaxed);
        self.waiting.store(true, Ordering::Relaxed);
    }

    /// Resolves when a running clock reaches its deadline without having been stopped.
    fn expired(self: &Arc<Self>) -> Expiry {
        Expiry { clock: self.clone(), timer: None }
    }
}

/// The watcher of a [`HeaderClock`]. It is polled each time its connection's task wakes, so an
/// idle poll is one load and a waker registration; a timer exists only while the clock runs.
struct Expiry {
    clock: Arc<HeaderClock>,
    /// The deadline being timed, and its timer.
    timer: Option<(u64, Pin<Box<tokio::time::Sleep>>)>,
}

impl Future for Expiry {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let deadline = self.clock.deadline_us.load(Ordering::Relaxed);
            if deadline == 0 {
                self.timer = None;
                self.clock.started.register(cx.waker());
                if self.clock.deadline_us.load(Ordering::Relaxed) == 0 {
                    return Poll::Pending;
                }
                continue;
            }
            if self.timer.as_ref().is_none_or(|(timed, _)| *timed != deadline) {
                let at = self.clock.origin + Duration::from_micros(deadline);
                self.timer = Some((deadline, Box::pin(tokio::time::sleep_until(at.into()))));
            }
            let (_, timer) = self.timer.as_mut().expect("set above");
            ready!(timer.as_mut().poll(cx));
            if self.clock.deadline_us.load(Ordering::Relaxed) == deadline {
                return Poll::Ready(());
            }
        }
    }
}

/// The listener app: Pingora's HTTP proxy, each HTTP/1 connection under a [`HeaderClock`].
pub(crate) struct ProxyApp {
    proxy: Arc<HttpProxy<Gateway>>,
    config: Arc<ArcSwap<Snapshot>>,
    /// Plain listeners with `http2`: they take h2c with prior knowledge too.
    h2c: Vec<SocketAddr>,
}

/// What an HTTP/2 client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl ProxyApp {
    /// Wraps `proxy`; `client_header_timeout` is read from `config` at each accept; `h2c` lists
    /// the plain listeners that accept HTTP/2 with prior knowledge (`proxy` must allow h2c).
    pub(crate) fn new(proxy: HttpProxy<Gateway>, config: Arc<ArcSwap<Snapshot>>, h2c: Vec<SocketAddr>) -> ProxyApp {
        ProxyApp { proxy: Arc::new(proxy), config, h2c }
    }

    /// Whether a plain connection opens with HTTP/2's preface, on a listener that takes h2c. The
    /// peeked bytes stay in the stream. A client that sends less than a preface within
    /// `client_header_timeout` is dropped.
    async fn opens_h2c(&self, stream: &mut Stream) -> Option<bool> {
        if self.h2c.is_empty() || stream.selected_alpn_proto().is_some() {
            return Some(false);
        }
        let local = stream.get_socket_digest().and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied());
        let listening = |l: &SocketAddr| {
            local.is_some_and(|a| a.port() == l.port() && (l.ip().is_unspecified() || l.ip() == a.ip()))
        };
        if !self.h2c.iter().any(listening) {
            return Some(false);
        }
        let mut buf = [0u8; H2_PREFACE.len()];
        let limit = self.config.load().entities.settings.client_header_timeout;
        match tokio::time::timeout(limit, stream.try_peek(&mut buf)).await {
            Ok(Ok(peeked)) => Some(peeked && buf == H2_PREFACE),
            _ => None,
        }
    }
}

#[async_trait]
impl ServerApp for ProxyApp {
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let _open = crate::metrics::connection_opened();
        let h2c = self.opens_h2c(&mut stream).await?;
        if h2c || stream.selected_alpn_proto() == Some(ALPN::H2) {
            // HTTP/2, negotiated in the TLS handshake or spoken from the start (h2c): Pingora's
            // own h2 server runs the streams (each through the same proxy phases); the
            // `[server] http2_*` settings bound what a client may open.
            return <HttpProxy<Gateway> as ServerApp>::process_new(&self.proxy, stream, shutdown).await;
        }
        let clock = Arc::new(HeaderClock::new(self.config.load().entities.settings.client_header_timeout));
        let stream: Stream = Box::new(ClockedStream { inner: stream, clock: clock.clone() });
        let serve = CLOCK.scope(clock.clone(), self.serve_http1(stream, &clock, shutdown));
        tokio::select! {
            biased;
            _ = serve => {}
            _ = clock.expired() => tracing::debug!(timeout = ?clock.limit, "client_header_timeout: connection closed"),
        }
        None
    }

    async fn cleanup(&self) {
        self.proxy.cleanup().await
    }
}

impl ProxyApp {
    /// Pingora's HTTP/1 connection loop (`HttpServerApp`'s `process_new` for HTTP/1, over TCP or
    /// TLS), with the clock waiting for each reused request's header.
    async fn serve_http1(self: &Arc<Self>, stream: Stream, clock: &HeaderClock, shutdown: &ShutdownWatch) {
        let mut session = ServerSession::new_http1(stream);
        session.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        let limit = self.proxy.server_options().and_then(|o| o.keepalive_request_limit);
        session.set_keepalive_reuses_remaining(limit);
        let mut reused = self.proxy.process_new_http(session, shutdown).await;
        while let Some((stream, settings)) = reused.map(|r| r.consume()) {
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            clock.await_header();
            reused = self.proxy.process_new_http(session, shutdown).await;
        }
    }
}

/// The client's stream, showing what it reads to the connection's clock.
#[derive(Debug)]
struct ClockedStream {
    inner: Stream,
    clock: Arc<HeaderClock>,
}

impl AsyncRead for ClockedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.clock.saw(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for ClockedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for ClockedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for ClockedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for ClockedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for ClockedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for ClockedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for ClockedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for ClockedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_that_arrives_whole_does_not_start_the_clock() {
        let clock = HeaderClock::new(Duration::from_secs(1));
        clock.stop();
        clock.await_header();
        clock.saw(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(clock.deadline_us.load(Ordering::Relaxed), 0);
        clock.saw(b"GET / HTTP/1.1\r\n");
        assert_ne!(clock.deadline_us.load(Ordering::Relaxed), 0, "a partial header starts it");
        clock.await_header();
        clock.saw(b"\r\n\r\n");
        assert_ne!(clock.deadline_us.load(Ordering::Relaxed), 0, "empty lines start it");
    }

    #[test]
    fn body_bytes_do_not_start_the_clock() {
        let clock = HeaderClock::new(Duration::from_secs(1));
        clock.stop();
        clock.saw(b"partial body");
        assert_eq!(clock.deadline_us.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_running_clock_expires_and_a_stopped_one_does_not() {
        let clock = Arc::new(HeaderClock::new(Duration::from_millis(50)));
        clock.stop();
        let stopped = tokio::time::timeout(Duration::from_millis(200), clock.expired()).await;
        assert!(stopped.is_err(), "a stopped clock never expires");
        clock.await_header();
        clock.saw(b"GET");
        let running = tokio::time::timeout(Duration::from_secs(2), clock.expired()).await;
        assert!(running.is_ok(), "a running clock expires at its deadline");
    }
}
