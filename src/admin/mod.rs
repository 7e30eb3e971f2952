//! The admin server, on its own listener (`--admin ADDR`, keep it off the public
//! network: it has no authentication, `docs/security.md`): `/healthz` (the process
//! answers), `/readyz` (it should get traffic), `/metrics` (Prometheus text format
//! 0.0.4) and `/status` (a JSON summary).
//!
//! Nothing here names a person: figures only, labelled by closed lists.

mod metrics;

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use metrics::{ConnectionGuard, Metrics, Snapshot};

use crate::events::LossCounter;
use crate::session::StoreStats;

/// A slow client may hold an admin connection this long before its headers are in.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// After an accept error (out of file descriptors…), wait this long before the next
/// accept instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

// === impl Readiness ===

/// Whether the proxy should receive traffic: it is serving, and neither the ENT nor
/// the session store is known to be failing. The proxy flips the flags; the admin
/// server only reads them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Readiness {
    inner: Arc<ReadinessFlags>,
}

#[derive(Debug)]
struct ReadinessFlags {
    /// Set once the proxy listens; cleared when it starts draining.
    serving: AtomicBool,
    /// Cleared when the ENT cannot be reached, set again on its next answer.
    upstream: AtomicBool,
    /// Cleared when the session store fails, set again when it answers.
    store: AtomicBool,
}

impl Default for Readiness {
    /// Not serving yet; upstream and store presumed healthy until shown otherwise.
    fn default() -> Self {
        Self {
            inner: Arc::new(ReadinessFlags {
                serving: AtomicBool::new(false),
                upstream: AtomicBool::new(true),
                store: AtomicBool::new(true),
            }),
        }
    }
}

impl Readiness {
    pub fn set_serving(&self, serving: bool) {
        self.inner.serving.store(serving, Ordering::Release);
    }

    pub fn set_upstream_healthy(&self, healthy: bool) {
        self.inner.upstream.store(healthy, Ordering::Release);
    }

    pub fn set_store_healthy(&self, healthy: bool) {
        self.inner.store.store(healthy, Ordering::Release);
    }

    pub fn serving(&self) -> bool {
        self.inner.serving.load(Ordering::Acquire)
    }

    pub fn upstream_healthy(&self) -> bool {
        self.inner.upstream.load(Ordering::Acquire)
    }

    pub fn store_healthy(&self) -> bool {
        self.inner.store.load(Ordering::Acquire)
    }

    pub fn is_ready(&self) -> bool {
        self.serving() && self.upstream_healthy() && self.store_healthy()
    }
}

// === impl AdminState ===

/// What the admin server reads. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    /// The trace writer's counters (a fresh counter when there is no trace log).
    pub trace_losses: LossCounter,
    /// The session store's figures (the store trait is not object-safe: a closure is).
    pub store_stats: Arc<dyn Fn() -> StoreStats + Send + Sync>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("readiness", &self.readiness)
            .finish_non_exhaustive()
    }
}

impl AdminState {
    pub fn new(
        metrics: Arc<Metrics>,
        readiness: Readiness,
        trace_losses: LossCounter,
        store_stats: impl Fn() -> StoreStats + Send + Sync + 'static,
    ) -> Self {
        Self {
            metrics,
            readiness,
            trace_losses,
            store_stats: Arc::new(store_stats),
        }
    }

    fn status(&self) -> Status {
        let store = (self.store_stats)();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            uptime_s: self.metrics.uptime().as_secs(),
            ready: self.readiness.is_ready(),
            serving: self.readiness.serving(),
            upstream_healthy: self.readiness.upstream_healthy(),
            store_healthy: self.readiness.store_healthy(),
            store: StoreFigures {
                tickets: store.tickets,
                sessions: store.sessions,
                stash: store.stash,
                validated: store.validated,
                last_pupils: store.last_pupils,
                bytes: store.bytes,
                evictions: store.evictions,
            },
            trace_events_lost: self.trace_losses.lost(),
            traffic: self.metrics.snapshot(),
        }
    }
}

/// `/status`'s body.
#[derive(serde::Serialize)]
struct Status {
    version: &'static str,
    uptime_s: u64,
    ready: bool,
    serving: bool,
    upstream_healthy: bool,
    store_healthy: bool,
    store: StoreFigures,
    trace_events_lost: u64,
    traffic: Snapshot,
}

#[derive(serde::Serialize)]
struct StoreFigures {
    tickets: u64,
    sessions: u64,
    stash: u64,
    validated: u64,
    last_pupils: u64,
    bytes: u64,
    evictions: u64,
}

// === serve ===

/// Serves the admin endpoints on `listener` until `shutdown` completes, then lets the
/// open connections finish their current request and returns.
pub async fn serve(listener: TcpListener, state: AdminState, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, &request)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => log_connection_error(result),
                // The watch guard must not live across the drain below (it is not Send).
                () = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                    connection.as_mut().graceful_shutdown();
                    log_connection_error(connection.await);
                }
            }
        });
        // Reap finished connections so the set stays small on a long run.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

fn log_connection_error(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        tracing::debug!(%error, "admin: connection ended with an error");
    }
}

/// Answers one admin request. GET and HEAD only.
fn route(state: &AdminState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => readyz(&state.readiness),
        "/metrics" => match state.metrics.render(
            (state.store_stats)(),
            state.trace_losses.lost(),
            state.readiness.is_ready(),
        ) {
            Ok(body) => respond(StatusCode::OK, metrics::CONTENT_TYPE, body),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n"),
        },
        "/status" => match serde_json::to_string_pretty(&state.status()) {
            Ok(body) => respond(StatusCode::OK, "application/json", body),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "status unavailable\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// 200 `ready`, or 503 naming what is not.
fn readyz(readiness: &Readiness) -> Response<Full<Bytes>> {
    if readiness.is_ready() {
        return text(StatusCode::OK, "ready\n");
    }
    let mut body = String::from("not ready:");
    for (ok, what) in [
        (readiness.serving(), " not_serving"),
        (readiness.upstream_healthy(), " upstream_unhealthy"),
        (readiness.store_healthy(), " store_unhealthy"),
    ] {
        if !ok {
            body.push_str(what);
        }
    }
    body.push('\n');
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        body,
    )
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body)
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
