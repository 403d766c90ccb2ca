//! The HTTP accept loop: the router on hyper's HTTP/1 connections, with the limits
//! `axum::serve` does not have.
//!
//! - **Header read timeout**: a request's headers must arrive within it, counted from the
//!   connection's accept (a connection that sends nothing) or from a request's first byte.
//! - **Body read timeout**: a request's whole body must arrive within it, counted from the end
//!   of its headers; a body still arriving then fails the request and closes the connection.
//! - **Idle timeout**: a keep-alive connection waiting for its next request is closed after it.
//! - **Connection cap**: at most this many connections are served at once. The next one is
//!   not accepted until one closes: it waits in the listen backlog (the kernel completes its
//!   handshake; the request is answered once a slot frees), and clients see latency rather
//!   than errors.
//!
//! Shutdown is graceful: the listener closes, idle connections close, and in-flight requests
//! finish before [`serve`] returns, still bound by the header, body and idle deadlines.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The connection limits (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Connections wait for `signal_tx.closed()` (dropping `signal_rx` starts their graceful
    // shutdown) and hold a `closed_rx` until they end.
    let (signal_tx, signal_rx) = watch::channel(());
    let (closed_tx, closed_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let signal_tx = signal_tx.clone();
        let closed_rx = closed_rx.clone();
        let app = app.clone();
        tokio::spawn(async move {
            serve_connection(stream, app, limits, signal_tx).await;
            drop((slot, closed_rx));
        });
    }
    drop(listener);
    drop(signal_rx);
    drop(closed_rx);
    closed_tx.closed().await;
    Ok(())
}

/// Errors of `accept` that concern one connection are skipped; others (out of file
/// descriptors) are logged and retried after a pause, as `axum::serve` does.
async fn accept_error(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until it closes, its watchdog finds a deadline passed, or shutdown
/// is signalled and its request (if any) is answered within the same deadlines.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    signal_tx: watch::Sender<()>,
) {
    let phase = Arc::new(Phase::new(limits.header_read_timeout));
    let io = TokioIo::new(Watched {
        inner: stream,
        phase: phase.clone(),
        header_read_timeout: limits.header_read_timeout,
    });
    let service_phase = phase.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let phase = service_phase.clone();
        phase.state.store(BUSY, Ordering::Release);
        let deadline = Instant::now() + limits.body_read_timeout;
        let request = request.map(|inner| {
            Body::new(TimedBody {
                inner,
                deadline,
                sleep: None,
                phase: phase.clone(),
            })
        });
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await;
            phase.set_deadline(limits.idle_timeout);
            phase.state.store(IDLE, Ordering::Release);
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    let mut connection = pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        reason = watchdog(&phase, limits) => {
            tracing::debug!(reason, "closing a connection");
            return;
        }
        () = signal_tx.closed() => {
            connection.as_mut().graceful_shutdown();
            // hyper still finishes a request it has started reading: the deadlines must keep
            // applying, or one slow client would hold `serve` (and the shutdown) forever.
            tokio::select! {
                result = connection.as_mut() => result,
                reason = watchdog(&phase, limits) => {
                    tracing::debug!(reason, "closing a connection during shutdown");
                    return;
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Resolves when the connection must be closed: its header or idle deadline passed, or a
/// request body missed its own. Requests only store instants; the watchdog looks at them at
/// the current deadline and at least every `min(header, idle)` timeout. Every deadline is set
/// at least that far ahead, so none is overslept, and no timer is reset per request.
async fn watchdog(phase: &Phase, limits: ConnectionLimits) -> &'static str {
    let period = limits.header_read_timeout.min(limits.idle_timeout);
    loop {
        if phase.body_expired.load(Ordering::Acquire) {
            return "the request body timed out";
        }
        match phase.state.load(Ordering::Acquire) {
            BUSY => tokio::time::sleep(period).await,
            state => {
                let (deadline, now) = (phase.deadline(), Instant::now());
                if now >= deadline {
                    return if state == IDLE {
                        "idle timeout"
                    } else {
                        "header read timeout"
                    };
                }
                tokio::time::sleep_until(deadline.min(now + period)).await;
            }
        }
    }
}

/// Reading headers (or waiting for the first request): the header deadline applies.
const HEADERS: u8 = 0;
/// Between requests: the idle deadline applies.
const IDLE: u8 = 1;
/// A request is being handled; its body has its own deadline.
const BUSY: u8 = 2;

/// Where a connection is, shared by its socket, its requests and its watchdog.
struct Phase {
    /// `HEADERS`, `IDLE` or `BUSY`.
    state: AtomicU8,
    /// The header or idle deadline, in milliseconds after `epoch`.
    deadline_ms: AtomicU64,
    /// A request body missed its deadline.
    body_expired: AtomicBool,
    epoch: Instant,
}

impl Phase {
    fn new(header_read_timeout: Duration) -> Self {
        let phase = Phase {
            state: AtomicU8::new(HEADERS),
            deadline_ms: AtomicU64::new(0),
            body_expired: AtomicBool::new(false),
            epoch: Instant::now(),
        };
        phase.set_deadline(header_read_timeout);
        phase
    }

    /// Sets the deadline to `after` from now.
    fn set_deadline(&self, after: Duration) {
        let at = (Instant::now() + after).duration_since(self.epoch);
        let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        self.deadline_ms.store(ms, Ordering::Release);
    }

    fn deadline(&self) -> Instant {
        self.epoch + Duration::from_millis(self.deadline_ms.load(Ordering::Acquire))
    }
}

/// The connection's socket: the first bytes after an idle wait start the header deadline, and
/// a request whose body timed out ends the connection at the next read.
struct Watched {
    inner: TcpStream,
    phase: Arc<Phase>,
    header_read_timeout: Duration,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.phase.body_expired.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "reading the request body timed out",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before && this.phase.state.load(Ordering::Acquire) == IDLE {
            this.phase.set_deadline(this.header_read_timeout);
            this.phase.state.store(HEADERS, Ordering::Release);
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that must be complete by `deadline`. The timer is created only if the body
/// is not already buffered when the handler reads it (the common small JSON body is).
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    phase: Arc<Phase>,
}

/// The body-read timeout, as the error a handler's body read fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body read timeout")]
struct BodyTimeout;

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.phase.body_expired.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(BodyTimeout.into())));
                }
                Poll::Pending
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
