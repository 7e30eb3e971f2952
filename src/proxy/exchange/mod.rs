//! The CAS exchange: the phases of one request, in one direction, like Pingora's
//! filters: **classify** (which CAS endpoint) → **forward** → **inspect** (parse,
//! pupil key) → **decide** (verdict, pin) → **respond** → **log**.
//!
//! This module routes a request to the phase that owns it and is the **only place that
//! writes a summary event**: every phase returns its answer together with the summary
//! of what happened ([`Handled`]), and [`CasExchange::handle`] writes it, once, even
//! when the phase panicked. The phases do the I/O (upstream, session store) and carry
//! out plans; identity decisions are `crate::pin`'s pure functions, and a success
//! answer for Pronote is only ever made by [`pin::success_answer`].
//!
//! * [`forward`]: any request forwarded unchanged, and asking the ENT about a ticket.
//! * [`front`]: `/login` and its ticket redirect (binding, session rotation).
//! * [`retry`]: the retry/rewrite strategies on the front channel: early validation,
//!   the plan, the stash, server-side re-rolls ([`reroll`]: the browser's cookies at
//!   the ENT).
//! * [`back`]: Pronote's validations.
//! * [`logout`]: browser logout and the ENT's single logout.
//! * [`control`]: the chooser page and the pin POST; [`give_up`]: the give-up page's
//!   continue and try-again.

mod back;
mod control;
mod forward;
mod front;
mod give_up;
mod logout;
mod reroll;
mod retry;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::ProxyBody;
use super::error::{self, ProxyError};
use super::passthrough::Passthrough;
use super::{hygiene, ConnInfo, Handler};
use crate::admin::Metrics;
use crate::cas::{self, Endpoint, Failure, ResponseFormat, ValidationRequest};
use crate::code::Code;
use crate::config::{Config, PublicScheme};
use crate::events::{self, LatencyMs, Pseudonym, TraceEvent, TraceLog};
use crate::pin::Inspector;
use crate::pupil::{ExtractionRules, PupilKey};
use crate::session::cookie::{CookieKey, SessionCookies};
use crate::session::{AnyStore, Clock, SessionId, StoreError, SystemClock};

pub use super::serve::{serve, spawn, RunningProxy, ServeError};

/// The CAS-aware handler. One per worker, sharing everything but the upstream pool.
pub struct CasExchange {
    config: Arc<Config>,
    /// The upstream pool: one per worker thread (thread-per-core serving).
    passthrough: Passthrough,
    /// Shared by every worker: a ticket bound on one is taken on another.
    store: Arc<AnyStore>,
    cookies: SessionCookies,
    inspector: Inspector,
    trace: TraceLog,
    metrics: Arc<Metrics>,
    /// The same clock as the stores': timestamps and TTLs agree.
    clock: SystemClock,
    /// Server-side re-rolls in flight, across workers (`retry::MAX_CONCURRENT_REROLLS`).
    rerolls: Arc<tokio::sync::Semaphore>,
}

/// Why the exchange could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cookie-key-file: {0}")]
    CookieKey(String),
}

impl SetupError {
    pub fn code(&self) -> Code {
        match self {
            SetupError::Proxy(e) => e.code(),
            SetupError::Store(e) => e.code(),
            SetupError::CookieKey(_) => Code::ConfigCookieKey,
        }
    }
}

/// What a phase did: the answer, the one summary event that tells it, and the
/// details told before it (a retry, a refused rewrite).
pub(crate) struct Handled {
    response: Response<ProxyBody>,
    summary: TraceEvent,
    details: Vec<TraceEvent>,
}

impl Handled {
    fn new(response: Response<ProxyBody>, summary: TraceEvent) -> Self {
        Self {
            response,
            summary,
            details: Vec::new(),
        }
    }

    fn with_details(mut self, details: Vec<TraceEvent>) -> Self {
        self.details = details;
        self
    }

    /// A page bonenfant answers itself to refuse a request, with its `rejected` event.
    fn rejected(
        response: Response<ProxyBody>,
        code: Code,
        endpoint: Option<Endpoint>,
        started: Instant,
    ) -> Self {
        let status = response.status().as_u16();
        Self::new(
            response,
            TraceEvent::Rejected(events::Rejected {
                code,
                endpoint,
                status,
                latency_ms: LatencyMs(started.elapsed()),
            }),
        )
    }

    /// A forwarded answer, with its `passthrough` event.
    fn passthrough(
        response: Response<ProxyBody>,
        endpoint: Option<Endpoint>,
        started: Instant,
    ) -> Self {
        let status = response.status().as_u16();
        Self::new(
            response,
            TraceEvent::Passthrough(events::Passthrough {
                endpoint,
                status,
                latency_ms: LatencyMs(started.elapsed()),
            }),
        )
    }
}

/// Which phase owns a request, decided from its head alone (so that a phase that
/// panics can still be told apart: a validation gets a CAS failure, a browser a page).
#[derive(Clone, Copy, Debug)]
enum Route {
    Control,
    Login,
    Validation(Endpoint, ResponseFormat),
    Logout,
    SingleLogout(Option<Endpoint>),
    Passthrough(Option<Endpoint>),
}

// === impl CasExchange ===

impl CasExchange {
    pub async fn new(
        config: Arc<Config>,
        store: Arc<AnyStore>,
        trace: TraceLog,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SetupError> {
        let passthrough = Passthrough::new(&config)?.reporting_to(metrics.health().clone());
        let keys = config
            .secrets
            .cookie_keys
            .iter()
            .map(|k| CookieKey::from_bytes(k).map_err(|e| SetupError::CookieKey(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let cookies = SessionCookies::new(
            keys,
            config.public_scheme == PublicScheme::Https,
            config.limits.session_ttl,
            config.limits.session_ttl,
        )
        .map_err(|e| SetupError::CookieKey(e.to_string()))?;
        let inspector = Inspector {
            establishment: config.establishment.clone(),
            rules: ExtractionRules::default(),
            index: config.directory_index.clone(),
        };
        Ok(Self {
            config,
            passthrough,
            store,
            cookies,
            inspector,
            trace,
            metrics,
            clock: SystemClock::new(),
            rerolls: Arc::new(tokio::sync::Semaphore::new(retry::MAX_CONCURRENT_REROLLS)),
        })
    }

    /// Another handler for a worker thread: its own upstream pool, everything else
    /// (session map, keys, trace log, metrics) shared.
    pub fn for_worker(&self) -> Result<Self, ProxyError> {
        Ok(Self {
            config: Arc::clone(&self.config),
            passthrough: Passthrough::new(&self.config)?
                .reporting_to(self.metrics.health().clone()),
            store: Arc::clone(&self.store),
            cookies: self.cookies.clone(),
            inspector: self.inspector.clone(),
            trace: self.trace.clone(),
            metrics: Arc::clone(&self.metrics),
            clock: self.clock,
            rerolls: Arc::clone(&self.rerolls),
        })
    }

    /// The session store, for the admin server's figures.
    pub fn store(&self) -> &Arc<AnyStore> {
        &self.store
    }

    /// Unix milliseconds. The pure modules take time as an argument; it is read here.
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Writes one trace event and counts it in the metrics. Called by
    /// [`Self::handle`] only: phases return their events.
    fn emit(&self, event: TraceEvent) {
        self.metrics.record(&event);
        self.trace.emit(event);
    }

    fn pseudo_session(&self, id: Option<&SessionId>) -> Option<Pseudonym> {
        id.map(|id| self.trace.pseudonyms().session(id))
    }

    fn pseudo_principal(&self, principal: Option<&str>) -> Option<Pseudonym> {
        principal.map(|p| self.trace.pseudonyms().principal(p))
    }

    fn pseudo_pupil(&self, pupil: Option<&PupilKey>) -> Option<Pseudonym> {
        pupil.map(|p| self.trace.pseudonyms().pupil(p))
    }

    /// The CAS endpoint a path names, honouring `cas-prefix`.
    fn classify(&self, path: &str) -> Option<Endpoint> {
        if let Some(prefix) = &self.config.cas_prefix {
            let under = path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
            if !under {
                return None;
            }
        }
        cas::classify(path)
    }

    fn is_control(&self, path: &str) -> bool {
        path.strip_prefix(self.config.control_prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    fn route<B>(&self, req: &Request<B>) -> Route {
        let path = req.uri().path();
        if self.is_control(path) {
            return Route::Control;
        }
        match self.classify(path) {
            Some(Endpoint::Login) => Route::Login,
            Some(endpoint) if endpoint.is_validation() => Route::Validation(
                endpoint,
                ValidationRequest::fallback_format(endpoint, req.uri().query()),
            ),
            Some(Endpoint::Logout) => Route::Logout,
            endpoint
                if logout::is_single_logout_candidate(req, self.config.limits.max_request_body) =>
            {
                Route::SingleLogout(endpoint)
            }
            endpoint => Route::Passthrough(endpoint),
        }
    }

    /// Every request goes through here: routed to its phase, and its summary event
    /// written on this one line — also when the phase panicked (the answer is then a
    /// 500 page, or a CAS failure for a validation; the connection lives on).
    async fn handle(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let started = Instant::now();
        let handled = match hygiene::check_front_door(&req) {
            Err(refused) => self.refuse(refused.status(), refused.code(), None, started),
            Ok(()) => {
                let route = self.route(&req);
                guarded(route, started, self.dispatch(route, req, conn, started)).await
            }
        };
        debug_assert!(handled.summary.is_summary());
        debug_assert!(handled.details.iter().all(|d| !d.is_summary()));
        for detail in handled.details {
            self.emit(detail);
        }
        self.emit(handled.summary);
        handled.response
    }

    /// Each phase's future is boxed: held inline, the largest (the front channel's
    /// re-rolls) set the size of every request's future, tens of KiB copied each time
    /// hyper and the wrappers above move it (`docs/performance.md`, "Proxy").
    async fn dispatch(
        &self,
        route: Route,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Handled {
        match route {
            Route::Control => Box::pin(self.control(req, started)).await,
            Route::Login => Box::pin(self.login(req, conn, started)).await,
            Route::Validation(endpoint, fallback) => {
                Box::pin(self.validation(endpoint, fallback, req, conn, started)).await
            }
            Route::Logout => Box::pin(self.browser_logout(req, conn)).await,
            Route::SingleLogout(endpoint) => {
                Box::pin(self.single_logout(endpoint, req, conn, started)).await
            }
            Route::Passthrough(endpoint) => {
                Box::pin(self.passthrough(endpoint, req, conn, started)).await
            }
        }
    }
}

/// Runs a phase; if it panics, the request still gets its answer and its summary.
async fn guarded(route: Route, started: Instant, phase: impl Future<Output = Handled>) -> Handled {
    AssertUnwindSafe(phase)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| panicked(route, started))
}

/// The answer and summary of a request whose phase panicked (a bug): a validation still
/// gets a well-formed CAS failure and its `validate` event; anything else a 500 page.
fn panicked(route: Route, started: Instant) -> Handled {
    tracing::error!(code = %error::INTERNAL, "request handler panicked");
    match route {
        Route::Validation(endpoint, format) => {
            let mut summary = back::ValidationSummary::new(endpoint, started);
            summary.error = Some(error::INTERNAL);
            let failure = Failure::internal("bonenfant failed to handle the validation");
            let context = cas::AnswerContext {
                service: "",
                now_unix: 0,
            };
            let body = cas::serialize(&cas::Outcome::Failure(failure), format, &context);
            Handled::new(
                back::cas_response(format, body.into(), None),
                summary.into_event(None, None),
            )
        }
        Route::Control => internal_error(None, started),
        Route::Login => internal_error(Some(Endpoint::Login), started),
        Route::Logout => internal_error(Some(Endpoint::Logout), started),
        Route::SingleLogout(endpoint) | Route::Passthrough(endpoint) => {
            internal_error(endpoint, started)
        }
    }
}

fn internal_error(endpoint: Option<Endpoint>, started: Instant) -> Handled {
    Handled::rejected(
        error::page(StatusCode::INTERNAL_SERVER_ERROR, error::INTERNAL),
        error::INTERNAL,
        endpoint,
        started,
    )
}

impl Handler for CasExchange {
    async fn call(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        self.handle(req, conn).await
    }
}

/// The `service` (or SAML `TARGET`) of a `/login` query, decoded.
fn login_service(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "service" || k == "TARGET")
        .map(|(_, v)| v.into_owned())
}

fn is_post<B>(req: &Request<B>) -> bool {
    req.method() == Method::POST
}

fn redirect(status: StatusCode, location: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_text(response: Response<ProxyBody>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_validation_still_ends_in_one_validate_event_and_a_cas_failure() {
        let route = Route::Validation(Endpoint::ServiceValidate, ResponseFormat::Xml);
        let handled = guarded(route, Instant::now(), async { panic!("a bug in a phase") }).await;
        let TraceEvent::Validate(summary) = &handled.summary else {
            panic!("a validate summary, got {:?}", handled.summary);
        };
        assert_eq!(summary.error, Some(error::INTERNAL));
        assert!(handled.details.is_empty());
        assert_eq!(handled.response.status(), StatusCode::OK);
        let body = body_text(handled.response).await;
        assert!(body.contains("authenticationFailure"), "{body}");
        assert!(body.contains("INTERNAL_ERROR"), "{body}");
    }

    #[tokio::test]
    async fn a_panicking_browser_request_still_ends_in_one_rejected_event_and_a_500() {
        let route = Route::Passthrough(None);
        let handled = guarded(route, Instant::now(), async { panic!("a bug in a phase") }).await;
        let TraceEvent::Rejected(summary) = &handled.summary else {
            panic!("a rejected summary, got {:?}", handled.summary);
        };
        assert_eq!(summary.code, error::INTERNAL);
        assert_eq!(summary.status, 500);
        assert_eq!(handled.response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
