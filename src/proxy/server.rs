//! The accept loop: connection cap, TLS termination, HTTP/1.1 and HTTP/2, timeouts and
//! graceful shutdown.
//!
//! * **Protocols.** Plain TCP speaks HTTP/1.1 only (no h2c: fewer states to defend).
//!   Over TLS, ALPN picks HTTP/2 (`h2`) or HTTP/1.1.
//! * **Connection cap** (`max-connections`). A connection over the cap is accepted and
//!   answered `503 Service Unavailable` with `Retry-After` and `Connection: close` (T55),
//!   instead of waiting in the kernel backlog: a client learns at once that it should
//!   come back. Those answers are themselves capped ([`SHED_MAX`]); beyond that a
//!   connection is closed straight away.
//! * **Timeouts.** The TLS handshake and each HTTP/1.1 request head must complete
//!   within `header-read-timeout` (hyper's `header_read_timeout`, which also runs while
//!   an HTTP/1.1 keep-alive connection waits for its next request, so such a connection
//!   is closed after `header-read-timeout` of silence). Any connection on which no byte
//!   moved in either direction for `idle-timeout`, with no request waiting for the
//!   upstream, is closed (HTTP/2 idle connections, stalled response streams, clients
//!   that stopped reading). A request waiting for the upstream is bounded by the
//!   upstream timeouts instead.
//! * **Graceful shutdown.** When `shutdown` completes: the listener is closed (new
//!   connections are refused), every connection is told to finish (HTTP/1.1: after the
//!   response in flight; HTTP/2: GOAWAY), and `serve` returns once all are done or
//!   `shutdown-grace` has passed, when the remaining ones are cut.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use http::{StatusCode, Version};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::error::{self, ProxyError};
use super::hygiene;
use super::tls::ALPN_H2;
use super::{ConnInfo, Handler};
use crate::config::Limits;

/// Largest HTTP/1.1 request head (bytes; hyper answers 431 beyond). nginx allows 4×8 KiB;
/// 64 KiB leaves room for the large cookie jars ENT portals accumulate.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most concurrent HTTP/2 streams per connection: a browser uses a few dozen.
const MAX_H2_STREAMS: u32 = 128;

/// Most over-the-cap connections being answered 503 at once; past it they are closed
/// without an answer, so shedding load costs a bounded amount of work.
pub const SHED_MAX: usize = 64;

/// Pending-connection queue of the listening socket (the kernel caps it at
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 1024;

/// Pause after a failed `accept` (out of file descriptors, …) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serves `handler` on `listener` until `shutdown` completes, then drains (module doc).
/// With `tls`, connections are TLS with ALPN; without, plain HTTP/1.1.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: &Limits,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let shared = Arc::new(Shared::new(tls, limits, handler));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let shedding = Arc::new(Semaphore::new(SHED_MAX));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(ended) = tasks.join_next(), if !tasks.is_empty() => {
                if ended.is_err_and(|e| e.is_panic()) {
                    tracing::error!("a connection task panicked");
                }
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                // Best effort: a socket that refuses NODELAY still works, only slower.
                let _ = stream.set_nodelay(true);
                if let Ok(permit) = connections.clone().try_acquire_owned() {
                    tasks.spawn(shared.clone().connection(stream, peer, permit, stop_rx.clone()));
                } else if let Ok(permit) = shedding.clone().try_acquire_owned() {
                    tasks.spawn(shared.clone().shed(stream, permit));
                }
            }
        }
    }
    drop(listener);
    drop(stop_tx);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "shutdown grace period over, closing the remaining connections"
        );
        tasks.abort_all();
    }
    Ok(())
}

/// Binds the proxy's listening socket on `addr`, once for all its workers, refusing an
/// address another process listens on (issue 11, finding 9: with `SO_REUSEPORT`, a
/// second `serve`, stale or started twice, bound the same port without error and the
/// kernel split the connections between two processes with separate memory stores).
///
/// `SO_REUSEADDR` only, which lets a restart bind while the previous run's connections
/// linger in `TIME_WAIT` but never lets two listeners share a port on Linux; no
/// `SO_REUSEPORT`, which would let any process of the same user join the port. The
/// workers share this one socket ([`serve_workers_on`]). Non-blocking, for tokio.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ProxyError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let listen = || -> io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        // On Windows the same option would let another socket steal the port.
        #[cfg(not(windows))]
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        Ok(socket.into())
    };
    listen().map_err(|source| ProxyError::Listen {
        addr,
        source: explain_in_use(source, "--listen"),
    })
}

/// An "address in use" error that says what it means and what to do; `flag` is the
/// option that chose the address. Any other error as it was.
pub(crate) fn explain_in_use(error: io::Error, flag: &str) -> io::Error {
    if error.kind() != io::ErrorKind::AddrInUse {
        return error;
    }
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "address already in use: another process listens there (a second \
             `bonenfant serve`?); stop it, or choose another {flag}"
        ),
    )
}

/// [`serve_workers_on`] a socket freshly bound on `addr` ([`bind`]).
pub fn serve_workers<H, M>(
    addr: SocketAddr,
    workers: std::num::NonZeroUsize,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: &Limits,
    make_handler: M,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = Result<(), ProxyError>>), ProxyError>
where
    H: Handler,
    M: FnMut() -> Result<Arc<H>, ProxyError>,
{
    serve_workers_on(bind(addr)?, workers, tls, limits, make_handler, shutdown)
}

/// Serves with `workers` threads, each running its own single-threaded runtime with its
/// own handle on `listener` (a duplicate of the one socket: no other process can
/// join it, see [`bind`]) and its own handler from `make_handler` (called once per
/// worker, here, so a setup error is returned at once; each handler has its own
/// upstream pool). Each worker accepts from the shared queue when it is free, and a
/// request is handled start to end on one thread, with no cross-thread wake-ups
/// (nginx's worker model). In the bare hyper proxy on the 2-vCPU test machine this shape
/// did at least as well as one multi-thread runtime and as one `SO_REUSEPORT` socket
/// per worker, measured side by side
/// (`bench/results/2026-12-06-runtime-shapes.txt`).
/// The connection cap is split evenly between the workers.
///
/// Returns the bound address, and a future that completes when all workers have
/// drained after `shutdown`.
pub fn serve_workers_on<H, M>(
    listener: std::net::TcpListener,
    workers: std::num::NonZeroUsize,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: &Limits,
    mut make_handler: M,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = Result<(), ProxyError>>), ProxyError>
where
    H: Handler,
    M: FnMut() -> Result<Arc<H>, ProxyError>,
{
    let bound = listener.local_addr().map_err(|source| ProxyError::Listen {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    // Copy: each worker thread takes its own.
    let listen_error = move |source| ProxyError::Listen {
        addr: bound,
        source,
    };
    let mut listeners = Vec::with_capacity(workers.get());
    for _ in 1..workers.get() {
        listeners.push(listener.try_clone().map_err(listen_error)?);
    }
    listeners.push(listener);
    let handlers = (0..workers.get())
        .map(|_| make_handler())
        .collect::<Result<Vec<_>, _>>()?;
    let mut limits = limits.clone();
    limits.max_connections = limits.max_connections.div_ceil(workers.get());
    let (stop_tx, stop_rx) = watch::channel(());
    let mut done = Vec::with_capacity(workers.get());
    for (n, (listener, handler)) in listeners.into_iter().zip(handlers).enumerate() {
        let (finished, result) = tokio::sync::oneshot::channel();
        let (tls, limits) = (tls.clone(), limits.clone());
        let mut stop = stop_rx.clone();
        let worker = move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(listen_error)
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        let listener = TcpListener::from_std(listener).map_err(listen_error)?;
                        let stopped = async move {
                            let _ = stop.changed().await;
                        };
                        serve(listener, tls, &limits, handler, stopped).await
                    })
                });
            let _ = finished.send(outcome);
        };
        std::thread::Builder::new()
            .name(format!("bonenfant-worker-{n}"))
            .spawn(worker)
            .map_err(listen_error)?;
        done.push(result);
    }
    let drained = async move {
        shutdown.await;
        drop(stop_tx);
        let mut outcome = Ok(());
        for worker in done {
            match worker.await {
                Ok(Err(e)) if outcome.is_ok() => outcome = Err(e),
                _ => {}
            }
        }
        outcome
    };
    Ok((bound, drained))
}

/// What every connection task needs, built once.
struct Shared<H> {
    handler: Arc<H>,
    acceptor: Option<TlsAcceptor>,
    /// HTTP/1.1 only (plain TCP, or ALPN chose `http/1.1` or nothing).
    http1: auto::Builder<TokioExecutor>,
    /// HTTP/2 only (ALPN chose `h2`).
    http2: auto::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

// === impl Shared ===

impl<H: Handler> Shared<H> {
    fn new(tls: Option<Arc<rustls::ServerConfig>>, limits: &Limits, handler: Arc<H>) -> Self {
        let mut http1 = auto::Builder::new(TokioExecutor::new()).http1_only();
        http1
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        let mut http2 = auto::Builder::new(TokioExecutor::new()).http2_only();
        http2
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_H2_STREAMS)
            .max_header_list_size(MAX_HEAD_BYTES as u32);
        Shared {
            handler,
            acceptor: tls.map(TlsAcceptor::from),
            http1,
            http2,
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
        }
    }

    /// One admitted connection: TLS handshake if any, then HTTP until the client
    /// leaves, the connection idles out, or shutdown drains it.
    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        _permit: OwnedSemaphorePermit,
        stop: watch::Receiver<()>,
    ) {
        let local = stream.local_addr().unwrap_or(peer);
        let activity = Arc::new(Activity::default());
        match &self.acceptor {
            None => {
                let conn = ConnInfo {
                    peer,
                    local,
                    tls: false,
                    version: Version::HTTP_11,
                };
                let io = TokioIo::new(Tracked::new(stream, activity.clone()));
                self.drive(&self.http1, io, conn, activity, stop).await;
            }
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(self.header_read_timeout, acceptor.accept(stream));
                let Ok(Ok(stream)) = handshake.await else {
                    return;
                };
                let h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
                let conn = ConnInfo {
                    peer,
                    local,
                    tls: true,
                    version: if h2 {
                        Version::HTTP_2
                    } else {
                        Version::HTTP_11
                    },
                };
                let builder = if h2 { &self.http2 } else { &self.http1 };
                let io = TokioIo::new(Tracked::new(stream, activity.clone()));
                self.drive(builder, io, conn, activity, stop).await;
            }
        }
    }

    async fn drive<I>(
        &self,
        builder: &auto::Builder<TokioExecutor>,
        io: I,
        conn: ConnInfo,
        activity: Arc<Activity>,
        mut stop: watch::Receiver<()>,
    ) where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let handler = self.handler.clone();
        let in_flight = activity.clone();
        let service = service_fn(move |req| {
            let handler = handler.clone();
            let guard = InFlight::new(in_flight.clone());
            let method = req.method().clone();
            async move {
                // A handler that panics still answers (I2, I3): a 500 with its code, and
                // the connection lives on.
                let mut response = AssertUnwindSafe(handler.call(req, conn))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        tracing::error!(code = %error::INTERNAL, "request handler panicked");
                        error::page(StatusCode::INTERNAL_SERVER_ERROR, error::INTERNAL)
                    });
                drop(guard);
                hygiene::align_content_length(&mut response, &method);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let mut draining = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "client connection ended with an error");
                    }
                    return;
                }
                _ = stop.changed(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = activity.idle(self.idle_timeout) => {
                    tracing::debug!("closing idle client connection");
                    return;
                }
            }
        }
    }

    /// A connection over the cap: one 503 with `Retry-After`, then close, all within
    /// the header-read timeout.
    async fn shed(self: Arc<Self>, stream: TcpStream, _permit: OwnedSemaphorePermit) {
        let service = service_fn(|_req| async { Ok::<_, Infallible>(error::overloaded()) });
        let answer = async {
            match &self.acceptor {
                None => {
                    let _ = self
                        .http1
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
                    let builder = if h2 { &self.http2 } else { &self.http1 };
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        };
        let _ = tokio::time::timeout(self.header_read_timeout, answer).await;
    }
}

/// What the idle watchdog of one connection looks at.
#[derive(Debug, Default)]
struct Activity {
    /// Set by every read or write that moved bytes; cleared by the watchdog.
    moved: AtomicBool,
    /// Requests whose handler has not produced a response head yet.
    in_flight: AtomicUsize,
}

// === impl Activity ===

impl Activity {
    /// Completes once a whole `period` passed with no byte moved and no request in
    /// flight (so between one and two periods after the last activity).
    async fn idle(&self, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            let moved = self.moved.swap(false, Ordering::Relaxed);
            if !moved && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
        }
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

// === impl InFlight ===

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.moved.store(true, Ordering::Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// A stream that notes in [`Activity`] whenever bytes move.
    struct Tracked<S> {
        #[pin]
        inner: S,
        activity: Arc<Activity>,
    }
}

// === impl Tracked ===

impl<S> Tracked<S> {
    fn new(inner: S, activity: Arc<Activity>) -> Self {
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.moved.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl<S: AsyncWrite> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.moved.store(true, Ordering::Relaxed);
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.moved.store(true, Ordering::Relaxed);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
