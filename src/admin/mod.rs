//! The admin server, on its own listener (`--admin ADDR`, keep it off the public
//! network: it has no authentication, `docs/security.md`): `/` (the live status page,
//! HTML), `/healthz` (the process answers), `/readyz` (it should get traffic),
//! `/metrics` (Prometheus text format 0.0.4) and `/status` (the page's figures as
//! JSON). `docs/operations.md` says what each means for a load balancer and a DSI.
//!
//! Nothing here names a person: figures only, labelled by closed lists, UAIs and
//! stable codes.

pub mod activity;
pub mod health;
mod metrics;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
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

pub use health::{Dependency, Health, State};
pub use metrics::{ConnectionGuard, Metrics, Snapshot};

use activity::{Counts, LastHour, UaiKey};
use health::{Change, DependencyView};

use crate::code::Code;
use crate::events::LossCounter;
use crate::pages;
use crate::pupil::{SharedIndex, Uai};
use crate::session::StoreStats;
use crate::verdict::Verdict;

/// A slow client may hold an admin connection this long before its headers are in.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// After an accept error (out of file descriptors…), wait this long before the next
/// accept instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Seconds between two reloads of the status page (its `Refresh` header).
const PAGE_REFRESH_S: u32 = 10;

/// The status page's Content-Security-Policy: nothing may load or run; its one inline
/// stylesheet is allowed by its hash.
static PAGE_CSP: LazyLock<String> = LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(pages::status::STATUS_STYLE.0.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

// === impl Readiness ===

/// Whether the proxy should receive traffic (`/readyz`): it is serving and, when the
/// configuration makes the store essential (`--strict-correlation`, which refuses
/// every validation it cannot correlate), the store answers. An ENT outage never fails
/// readiness: every instance shares the ENT, so taking them out of the load balancer
/// would only turn the ENT's own error answers into the balancer's
/// (`docs/operations.md`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

#[derive(Debug)]
struct ReadinessInner {
    /// Set once the proxy listens; cleared when it starts draining.
    serving: AtomicBool,
    health: Health,
    /// A store outage fails readiness (else it only degrades: invariant I6).
    store_required: bool,
}

impl Default for Readiness {
    /// Not serving yet, over a health of its own, the store not required.
    fn default() -> Self {
        Self::new(Health::default(), false)
    }
}

impl Readiness {
    /// Readiness over `health` (give it the metrics' own: [`Metrics::health`]).
    pub fn new(health: Health, store_required: bool) -> Self {
        Self {
            inner: Arc::new(ReadinessInner {
                serving: AtomicBool::new(false),
                health,
                store_required,
            }),
        }
    }

    pub fn set_serving(&self, serving: bool) {
        self.inner.serving.store(serving, Ordering::Release);
    }

    pub fn serving(&self) -> bool {
        self.inner.serving.load(Ordering::Acquire)
    }

    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready().is_empty()
    }

    /// Why the proxy should not get traffic: `not_serving`, `store_down`.
    pub fn not_ready(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if !self.serving() {
            reasons.push("not_serving");
        }
        if self.inner.store_required && self.down(Dependency::Store) {
            reasons.push("store_down");
        }
        reasons
    }

    /// What is failing without failing readiness: `ent_down`, and `store_down` when
    /// the store is not required.
    pub fn degraded(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if self.down(Dependency::Ent) {
            reasons.push("ent_down");
        }
        if !self.inner.store_required && self.down(Dependency::Store) {
            reasons.push("store_down");
        }
        reasons
    }

    fn down(&self, dependency: Dependency) -> bool {
        self.inner.health.state(dependency) == State::Down
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
    /// The directory `serve` runs with, for the status page's collège names; read at
    /// each request, so a reload (SIGHUP) renames too. Empty without `--directory`.
    pub directory: SharedIndex,
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
            directory: SharedIndex::default(),
        }
    }

    /// The same, naming collèges on the status page from `directory`.
    pub fn with_directory(mut self, directory: SharedIndex) -> Self {
        self.directory = directory;
        self
    }

    fn name(&self, uai: &str) -> Option<String> {
        let index = self.directory.load()?;
        index
            .establishment_name(&Uai::parse(uai)?)
            .map(str::to_owned)
    }

    fn status(&self) -> Status {
        let store = (self.store_stats)();
        let health = self.readiness.health();
        let now_ms = health.now_ms();
        let last_hour = self.metrics.last_hour();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            uptime_s: self.metrics.uptime().as_secs(),
            ready: self.readiness.is_ready(),
            serving: self.readiness.serving(),
            not_ready: self.readiness.not_ready(),
            degraded: self.readiness.degraded(),
            upstream_healthy: health.state(Dependency::Ent) != State::Down,
            store_healthy: health.state(Dependency::Store) != State::Down,
            health: HealthFigures {
                ent: DependencyFigures::from(health.view(Dependency::Ent)),
                store: DependencyFigures::from(health.view(Dependency::Store)),
            },
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
            last_hour: LastHourFigures::new(self, &last_hour, &health.changes()),
            now: Timestamp(Some(now_ms)),
        }
    }

    /// The status page's figures, from the same [`Status`] as `/status`.
    fn page(status: &Status) -> pages::status::StatusPage<'_> {
        use pages::status::{Dependency as Row, Establishment, Incident, StatusPage, Traffic};
        let last_hour = &status.last_hour;
        fn dependency<'a>(name: &'a str, figures: &DependencyFigures) -> Row<'a> {
            Row {
                name,
                state: figures.state.as_str(),
                since_ms: figures.since.0,
                last_success_ms: figures.last_success.0,
                last_failure_ms: figures.last_failure.0,
                last_error: figures.last_error.map(Code::as_str),
            }
        }
        let (recent, hour) = (&last_hour.recent.counts, &last_hour.hour.counts);
        let mut rows = vec![("validations", recent.validations, hour.validations)];
        rows.extend(
            Verdict::ALL
                .iter()
                .map(|&v| (v.as_str(), recent.verdict(v), hour.verdict(v))),
        );
        rows.extend([
            ("wrong_landings", recent.wrong_landings, hour.wrong_landings),
            ("corrected", recent.corrected, hour.corrected),
            ("chooser", recent.chooser, hour.chooser),
            ("gave_up", recent.gave_up, hour.gave_up),
            ("failed", recent.failed, hour.failed),
        ]);
        StatusPage {
            now_ms: status.now.0.unwrap_or_default(),
            version: status.version,
            uptime_s: status.uptime_s,
            refresh_s: PAGE_REFRESH_S,
            ready: status.ready,
            not_ready: status.not_ready.clone(),
            degraded: status.degraded.clone(),
            dependencies: vec![
                dependency("ent", &status.health.ent),
                dependency("store", &status.health.store),
            ],
            traffic: Traffic {
                recent_minutes: activity::RATE_MINUTES,
                validations_per_minute: last_hour.validations_per_minute,
                rows,
            },
            establishments: last_hour
                .establishments
                .iter()
                .map(|e| Establishment {
                    uai: e.uai.as_str(),
                    name: e.name.as_deref(),
                    validations: e.counts.validations,
                    wrong_landings: e.counts.wrong_landings,
                    corrected: e.counts.corrected,
                    chooser: e.counts.chooser,
                    gave_up: e.counts.gave_up,
                    failed: e.counts.failed,
                })
                .collect(),
            incidents: last_hour
                .incidents
                .iter()
                .map(|i| Incident {
                    what: i.what,
                    side: i.side,
                    uai: i.uai.as_ref().map(UaiKey::as_str),
                    name: i.name.as_deref(),
                    first_ms: i.first.0.unwrap_or_default(),
                    last_ms: i.last.0.unwrap_or_default(),
                    count: i.count,
                })
                .collect(),
        }
    }
}

/// `/status`'s body.
#[derive(serde::Serialize)]
struct Status {
    version: &'static str,
    /// When the figures were taken.
    now: Timestamp,
    uptime_s: u64,
    ready: bool,
    serving: bool,
    /// Why `/readyz` fails (empty when ready).
    not_ready: Vec<&'static str>,
    /// What fails without failing readiness.
    degraded: Vec<&'static str>,
    /// The ENT is not known to be down (kept from before `health`).
    upstream_healthy: bool,
    /// The store is not known to be down.
    store_healthy: bool,
    health: HealthFigures,
    store: StoreFigures,
    trace_events_lost: u64,
    traffic: Snapshot,
    last_hour: LastHourFigures,
}

#[derive(serde::Serialize)]
struct HealthFigures {
    ent: DependencyFigures,
    store: DependencyFigures,
}

#[derive(serde::Serialize)]
struct DependencyFigures {
    state: State,
    since: Timestamp,
    last_success: Timestamp,
    last_failure: Timestamp,
    last_error: Option<Code>,
}

impl From<DependencyView> for DependencyFigures {
    fn from(view: DependencyView) -> Self {
        Self {
            state: view.state,
            since: Timestamp(view.since_ms),
            last_success: Timestamp(view.last_success_ms),
            last_failure: Timestamp(view.last_failure_ms),
            last_error: view.last_error,
        }
    }
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

/// The last hour as `/status` shows it: the same figures as the page.
#[derive(serde::Serialize)]
struct LastHourFigures {
    validations_per_minute: f64,
    /// The window of `recent`, in minutes.
    recent_minutes: u64,
    recent: CountFigures,
    hour: CountFigures,
    establishments: Vec<EstablishmentFigures>,
    /// Most recent first: the activity's incidents and the dependencies' state
    /// changes.
    incidents: Vec<IncidentFigures>,
}

impl LastHourFigures {
    fn new(state: &AdminState, hour: &LastHour, changes: &[Change]) -> Self {
        let name = |uai: &UaiKey| state.name(uai.as_str());
        let mut incidents: Vec<IncidentFigures> = hour
            .incidents
            .iter()
            .map(|i| IncidentFigures {
                what: i.what,
                side: i.side.as_str(),
                uai: i.uai,
                name: i.uai.as_ref().and_then(name),
                first: Timestamp(Some(i.first_ms)),
                last: Timestamp(Some(i.last_ms)),
                count: i.count,
            })
            .collect();
        incidents.extend(changes.iter().map(|c| IncidentFigures {
            what: match (c.dependency, c.state) {
                (Dependency::Ent, State::Down) => "ent_down",
                (Dependency::Ent, _) => "ent_up",
                (Dependency::Store, State::Down) => "store_down",
                (Dependency::Store, _) => "store_up",
            },
            side: c.dependency.as_str(),
            uai: None,
            name: None,
            first: Timestamp(Some(c.at_ms)),
            last: Timestamp(Some(c.at_ms)),
            count: 1,
        }));
        incidents.sort_by(|a, b| b.last.0.cmp(&a.last.0).then(a.what.cmp(b.what)));
        incidents.truncate(activity::MAX_INCIDENTS);
        Self {
            validations_per_minute: hour.validations_per_minute,
            recent_minutes: activity::RATE_MINUTES,
            recent: hour.recent.into(),
            hour: hour.hour.into(),
            establishments: hour
                .by_uai
                .iter()
                .map(|(uai, counts)| EstablishmentFigures {
                    uai: *uai,
                    name: name(uai),
                    counts: *counts,
                })
                .collect(),
            incidents,
        }
    }
}

#[derive(serde::Serialize)]
struct CountFigures {
    #[serde(flatten)]
    counts: Counts,
    verdicts: BTreeMap<&'static str, u64>,
}

impl From<Counts> for CountFigures {
    fn from(counts: Counts) -> Self {
        Self {
            verdicts: Verdict::ALL
                .iter()
                .map(|&v| (v.as_str(), counts.verdict(v)))
                .collect(),
            counts,
        }
    }
}

#[derive(serde::Serialize)]
struct EstablishmentFigures {
    uai: UaiKey,
    name: Option<String>,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(serde::Serialize)]
struct IncidentFigures {
    what: &'static str,
    side: &'static str,
    uai: Option<UaiKey>,
    name: Option<String>,
    first: Timestamp,
    last: Timestamp,
    count: u64,
}

/// Unix milliseconds, written as RFC 3339 (UTC), or null for "never".
#[derive(Clone, Copy, Debug)]
struct Timestamp(Option<u64>);

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.0.and_then(|ms| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
        match text {
            Some(text) => s.serialize_str(&text),
            None => s.serialize_none(),
        }
    }
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
        "/" => status_page(state),
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

/// 200 `ready` (naming what is degraded, if anything), or 503 naming what is not.
fn readyz(readiness: &Readiness) -> Response<Full<Bytes>> {
    let not_ready = readiness.not_ready();
    let degraded = readiness.degraded();
    let (status, mut body) = match (not_ready.is_empty(), degraded.is_empty()) {
        (true, true) => return text(StatusCode::OK, "ready\n"),
        (true, false) => (
            StatusCode::OK,
            format!("ready; degraded: {}", degraded.join(" ")),
        ),
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", not_ready.join(" ")),
        ),
    };
    body.push('\n');
    respond(status, "text/plain; charset=utf-8", body)
}

/// The live status page: the figures of `/status`, reloaded every
/// [`PAGE_REFRESH_S`] s, under a CSP that lets nothing load or run.
fn status_page(state: &AdminState) -> Response<Full<Bytes>> {
    let status = state.status();
    let body = pages::status(&AdminState::page(&status));
    let mut response = respond(StatusCode::OK, "text/html; charset=utf-8", body);
    let headers = response.headers_mut();
    headers.insert(header::REFRESH, header::HeaderValue::from(PAGE_REFRESH_S));
    if let Ok(csp) = header::HeaderValue::from_str(&PAGE_CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
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
