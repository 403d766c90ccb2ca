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
//! finish before [`serve`] returns.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Serves one connection until it closes, or until shutdown is signalled and its request (if
/// any) is answered.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    signal_tx: watch::Sender<()>,
) {
    let phase = Arc::new(Phase::default());
    let io = TokioIo::new(Deadlined::new(stream, phase.clone(), limits));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        phase.busy.store(true, Ordering::Relaxed);
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
        let phase = phase.clone();
        async move {
            let response = app.oneshot(request).await;
            phase.busy.store(false, Ordering::Relaxed);
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    let mut connection = pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = signal_tx.closed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// What the request handling tells the connection's reader.
#[derive(Default)]
struct Phase {
    /// A request is being handled: no header or idle deadline applies.
    busy: AtomicBool,
    /// A request body missed its deadline: the connection is closed.
    body_expired: AtomicBool,
}

/// Which deadline the reader is under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Reading headers (or waiting for the first request).
    Headers,
    /// Between requests.
    Idle,
    /// A request is being handled; its body has its own deadline.
    Busy,
}

/// The connection's socket, failing reads once the header or idle deadline has passed.
/// Deadlines are plain instants; the timer is only armed when a read would wait.
struct Deadlined {
    inner: TcpStream,
    phase: Arc<Phase>,
    wait: Wait,
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
    limits: ConnectionLimits,
}

impl Deadlined {
    fn new(inner: TcpStream, phase: Arc<Phase>, limits: ConnectionLimits) -> Self {
        let deadline = Instant::now() + limits.header_read_timeout;
        Deadlined {
            inner,
            phase,
            wait: Wait::Headers,
            deadline,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            limits,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

impl AsyncRead for Deadlined {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.phase.body_expired.load(Ordering::Relaxed) {
            return Poll::Ready(Err(timed_out("reading the request body")));
        }
        if this.phase.busy.load(Ordering::Relaxed) {
            this.wait = Wait::Busy;
        } else if this.wait == Wait::Busy {
            this.wait = Wait::Idle;
            this.deadline = Instant::now() + this.limits.idle_timeout;
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.wait == Wait::Idle && buf.filled().len() > before {
                    this.wait = Wait::Headers;
                    this.deadline = Instant::now() + this.limits.header_read_timeout;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.wait != Wait::Busy => {
                if this.sleep.deadline() != this.deadline {
                    this.sleep.as_mut().reset(this.deadline);
                }
                if this.sleep.as_mut().poll(cx).is_ready() {
                    let what = match this.wait {
                        Wait::Idle => "waiting for the next request",
                        _ => "reading the request headers",
                    };
                    return Poll::Ready(Err(timed_out(what)));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for Deadlined {
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
                    this.phase.body_expired.store(true, Ordering::Relaxed);
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
