//! The CAS exchange: the phases of one request, in one direction, like Pingora's
//! filters: **classify** (which CAS endpoint) → **forward** → **inspect** (parse,
//! pupil key) → **decide** (verdict, pin) → **respond** → **log** (exactly one summary
//! event, always).
//!
//! This file sequences the phases and does the I/O (upstream, session store, trace
//! log). It decides nothing about identity itself: inspection and decisions are
//! `crate::pin`'s, and a success answer for Pronote is only ever made by
//! [`pin::success_answer`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, SET_COOKIE,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::ProxyBody;
use super::error::{self, ProxyError, UpstreamError};
use super::hygiene;
use super::passthrough::Passthrough;
use super::{ConnInfo, Handler};
use crate::admin::Metrics;
use crate::cas::{
    self, AnswerContext, Assertion, Endpoint, Failure, LoginRedirect, Outcome, ParseLimits,
    ParseOptions, ResponseFormat, ServiceTicket, ValidationRequest,
};
use crate::config::{AnswerMode, Config, PinMode};
use crate::events::{self, LatencyMs, LogoutKind, PinOutcome, Pseudonym, TraceEvent, TraceLog};
use crate::pin::{self, chooser, Attempts, FrontDecision, Inspection, Inspector};
use crate::pupil::{ExtractionRules, PupilKey, Uai};
use crate::session::clock::duration_ms;
use crate::session::cookie::{CookieKey, SessionCookie, SessionCookies};
use crate::session::{
    AnyStore, Clock, RetryProgress, SessionId, SessionState, SessionStore, StashedValidation,
    StoreConfig, StoreError, SystemClock, TicketBinding,
};
use crate::verdict::{rule, Judgement, Verdict};

/// The CAS-aware handler. One per process, shared by every connection.
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
    pub fn code(&self) -> &'static str {
        match self {
            SetupError::Proxy(e) => e.code(),
            SetupError::Store(e) => e.code(),
            SetupError::CookieKey(_) => "config.cookie_key",
        }
    }
}

// === impl CasExchange ===

impl CasExchange {
    pub async fn new(
        config: Arc<Config>,
        trace: TraceLog,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SetupError> {
        let passthrough = Passthrough::new(&config)?;
        let mut store_config = StoreConfig::default();
        store_config.sessions.ttl = config.limits.session_ttl;
        store_config.sessions.max_entries = config.limits.max_sessions;
        store_config.last_pupils.ttl = config.pin.flip_window.max(store_config.last_pupils.ttl);
        let store = open_store(&config.store, &store_config.clamped()).await?;
        let keys = config
            .secrets
            .cookie_keys
            .iter()
            .map(|k| CookieKey::from_bytes(k).map_err(|e| SetupError::CookieKey(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let cookies = SessionCookies::new(
            keys,
            config.tls.is_some(),
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
            store: Arc::new(store),
            cookies,
            inspector,
            trace,
            metrics,
            clock: SystemClock::new(),
        })
    }

    /// Another handler for a worker thread: its own upstream pool, everything else
    /// (session map, keys, trace log, metrics) shared.
    pub fn for_worker(&self) -> Result<Self, ProxyError> {
        Ok(Self {
            config: Arc::clone(&self.config),
            passthrough: Passthrough::new(&self.config)?,
            store: Arc::clone(&self.store),
            cookies: self.cookies.clone(),
            inspector: self.inspector.clone(),
            trace: self.trace.clone(),
            metrics: Arc::clone(&self.metrics),
            clock: self.clock,
        })
    }

    /// Unix milliseconds. The pure modules take time as an argument; it is read here.
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A request body bonenfant must read (samlValidate, logout, chooser), bounded by
    /// `max-request-body` and in time; the error is its stable code.
    async fn read_request_body(&self, body: Incoming) -> Result<Bytes, &'static str> {
        hygiene::read_body(
            body,
            self.config.limits.max_request_body,
            self.config.limits.header_read_timeout,
        )
        .await
        .map_err(|refused| refused.code())
    }

    /// The session store, for the admin server's figures.
    pub fn store(&self) -> &AnyStore {
        &self.store
    }

    /// Logs a trace event and counts it in the metrics.
    fn emit(&self, event: TraceEvent) {
        self.metrics.record(&event);
        self.trace.emit(event);
    }

    fn pseudo_session(&self, id: Option<&SessionId>) -> Option<Pseudonym> {
        id.map(|id| self.trace.pseudonyms().session(id))
    }

    fn pseudo_principal(&self, assertion: Option<&Assertion>) -> Option<Pseudonym> {
        assertion.map(|a| self.trace.pseudonyms().principal(&a.principal))
    }

    fn pseudo_pupil(&self, pupil: Option<&PupilKey>) -> Option<Pseudonym> {
        pupil.map(|p| self.trace.pseudonyms().pupil(p))
    }

    // --- classify ---

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

    async fn handle(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let started = Instant::now();
        if let Err(refused) = hygiene::check_front_door(&req) {
            self.emit(TraceEvent::Rejected(events::Rejected {
                code: refused.code(),
                endpoint: None,
                status: refused.status().as_u16(),
                latency_ms: LatencyMs(started.elapsed()),
            }));
            return refused.to_response();
        }
        let path = req.uri().path();
        if self.is_control(path) {
            return self.control(req, started).await;
        }
        match self.classify(path) {
            Some(Endpoint::Login) => self.login(req, conn, started).await,
            Some(endpoint) if endpoint.is_validation() => {
                self.validation(endpoint, req, conn, started).await
            }
            Some(Endpoint::Logout) => self.browser_logout(req, conn).await,
            endpoint if is_single_logout_candidate(&req, self.config.limits.max_request_body) => {
                self.single_logout(endpoint, req, conn, started).await
            }
            endpoint => self.passthrough(endpoint, req, conn, started).await,
        }
    }

    // --- forward ---

    /// Forwards a request unchanged (but for hygiene) and streams the answer back.
    async fn passthrough(
        &self,
        endpoint: Option<Endpoint>,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Response<ProxyBody> {
        match self.forward_streaming(req.map(ProxyBody::new), &conn).await {
            Ok(response) => {
                let response = self.stream_back(response);
                self.emit(TraceEvent::Passthrough(events::Passthrough {
                    endpoint,
                    status: response.status().as_u16(),
                    latency_ms: LatencyMs(started.elapsed()),
                }));
                response
            }
            Err(refusal) => self.refuse(endpoint, refusal, started),
        }
    }

    /// Answers a request the proxy could not forward, with its summary event.
    fn refuse(
        &self,
        endpoint: Option<Endpoint>,
        refusal: Refusal,
        started: Instant,
    ) -> Response<ProxyBody> {
        let status = refusal.response.status().as_u16();
        let latency_ms = LatencyMs(started.elapsed());
        self.emit(if refusal.upstream {
            TraceEvent::UpstreamError(events::UpstreamError {
                code: refusal.code,
                endpoint,
                status,
                latency_ms,
            })
        } else {
            TraceEvent::Rejected(events::Rejected {
                code: refusal.code,
                endpoint,
                status,
                latency_ms,
            })
        });
        refusal.response
    }

    /// Sends a request to the upstream and returns the answer head with its body still
    /// streaming, or why it could not be and the page to answer instead.
    async fn forward_streaming(
        &self,
        req: Request<ProxyBody>,
        conn: &ConnInfo,
    ) -> Result<Response<Incoming>, Refusal> {
        let req = self
            .passthrough
            .policy()
            .upstream_request(req, conn)
            .map_err(|refused| Refusal {
                code: refused.code(),
                upstream: false,
                response: refused.to_response(),
            })?;
        self.passthrough
            .upstream()
            .forward(req)
            .await
            .map_err(|failed| Refusal {
                code: failed.code(),
                upstream: true,
                response: failed.to_response(),
            })
    }

    fn stream_back(&self, response: Response<Incoming>) -> Response<ProxyBody> {
        hygiene::downstream_response(response)
            .map(|body| self.passthrough.upstream().stream_body(body))
    }

    // --- front channel ---

    async fn login(
        &self,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Response<ProxyBody> {
        let now = self.now_ms();
        let cookie = self.cookies.open(req.headers(), now);
        let login_path = req.uri().path().to_owned();
        let login_query = req.uri().query().map(str::to_owned);
        let renew = req.uri().query().is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "renew" && v != "false")
        });
        let primary = req.method() == Method::POST;
        let renew_service = renew.then(|| login_service(req.uri().query())).flatten();
        let host = req.headers().get(HOST).cloned();
        let upstream = match self.forward_streaming(req.map(ProxyBody::new), &conn).await {
            Ok(response) => response,
            Err(refusal) => return self.refuse(Some(Endpoint::Login), refusal, started),
        };
        let redirect = match upstream.status() {
            StatusCode::FOUND | StatusCode::SEE_OTHER => upstream
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(cas::login_redirect),
            _ => None,
        };
        match redirect {
            Some(Ok(redirect)) => {
                let front = FrontChannel {
                    login_path,
                    login_query,
                    renew,
                    primary,
                    host,
                    conn,
                    started,
                    now,
                };
                self.ticket_redirect(upstream, redirect, cookie, front)
                    .await
            }
            Some(Err(refused)) => {
                // The ENT's own redirect: not ours to block, but it carries a ticket
                // the gate refuses, so nothing is bound and the DSI hears of it.
                self.emit(TraceEvent::Rejected(events::Rejected {
                    code: refused.code(),
                    endpoint: Some(Endpoint::Login),
                    status: upstream.status().as_u16(),
                    latency_ms: LatencyMs(started.elapsed()),
                }));
                self.stream_back(upstream)
            }
            None => {
                let mut response = self.stream_back(upstream);
                if let Some(service) = renew_service {
                    self.remember_renew(&mut response, cookie, service, now)
                        .await;
                }
                self.emit(TraceEvent::Passthrough(events::Passthrough {
                    endpoint: Some(Endpoint::Login),
                    status: response.status().as_u16(),
                    latency_ms: LatencyMs(started.elapsed()),
                }));
                response
            }
        }
    }

    /// A `/login?renew=true` answered with the login form: the credentials POST that
    /// follows will not say `renew` again, so the browser session remembers it.
    async fn remember_renew(
        &self,
        response: &mut Response<ProxyBody>,
        cookie: Option<SessionCookie>,
        service: String,
        now: u64,
    ) {
        let session = cookie.unwrap_or_else(|| SessionCookie::fresh(now));
        let mut state = self
            .store
            .session(&session.id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        state.renew_for = Some(service);
        state.updated_at_ms = now;
        if self.store.put_session(&session.id, state).await.is_ok() {
            self.set_cookie(response, &session, now);
        }
    }

    /// A `/login` answer redirects the browser to its service with a ticket: bind the
    /// ticket to the browser session (rotated, T44), and with pinning on, check it.
    async fn ticket_redirect(
        &self,
        upstream: Response<Incoming>,
        redirect: LoginRedirect,
        cookie: Option<SessionCookie>,
        front: FrontChannel,
    ) -> Response<ProxyBody> {
        let now = front.now;
        let session = SessionCookie::fresh(now);
        let mut state = match &cookie {
            Some(old) => self.rotate_session(old, &session).await,
            None => None,
        };
        // A renewed login is a forced primary authentication: a silent re-login would
        // defeat it, so bonenfant only observes it.
        let renewed = front.renew
            || state
                .as_mut()
                .and_then(|s| s.renew_for.take())
                .is_some_and(|service| service == redirect.service);
        if renewed {
            if let Some(state) = &state {
                let _ = self.store.put_session(&session.id, state.clone()).await;
            }
        }
        let binding = TicketBinding {
            session: Some(session.id),
            service: redirect.service.clone(),
            issued_at_ms: now,
        };
        let bound = match self.store.bind_ticket(&redirect.ticket, binding).await {
            Ok(bound) => bound,
            Err(e) => {
                tracing::warn!(code = e.code(), "could not bind a ticket to its session");
                false
            }
        };
        let expected = self.inspector.establishment.expected(&redirect.service);
        let pinning = self.config.pin.mode != PinMode::Observe && expected.is_some() && !renewed;
        let mut response = if pinning && bound {
            self.pin_front(
                upstream,
                &redirect,
                &session,
                state,
                &front,
                expected.clone(),
            )
            .await
        } else {
            self.stream_back(upstream)
        };
        self.set_cookie(&mut response, &session, now);
        self.emit(TraceEvent::LoginRedirect(events::LoginRedirect {
            uai_expected: expected,
            session: self.pseudo_session(Some(&session.id)),
            bound,
            latency_ms: LatencyMs(front.started.elapsed()),
        }));
        response
    }

    /// Moves a session's state to a fresh id: a cookie planted before authentication
    /// must not see what the session learns after (session fixation, T44).
    async fn rotate_session(
        &self,
        old: &SessionCookie,
        new: &SessionCookie,
    ) -> Option<SessionState> {
        let state = self.store.session(&old.id).await.ok().flatten()?;
        if self.store.put_session(&new.id, state.clone()).await.is_ok() {
            let _ = self.store.drop_session(&old.id).await;
        }
        Some(state)
    }

    fn set_cookie(&self, response: &mut Response<ProxyBody>, session: &SessionCookie, now: u64) {
        response
            .headers_mut()
            .append(SET_COOKIE, self.cookies.seal(session, now));
    }

    /// The retry/rewrite strategies on the front channel: validate the ticket now, and
    /// either let the browser go on (the assertion waits in the stash for Pronote) or
    /// send it back to `/login` for another ticket.
    async fn pin_front(
        &self,
        upstream: Response<Incoming>,
        redirect: &LoginRedirect,
        session: &SessionCookie,
        state: Option<SessionState>,
        front: &FrontChannel,
        expected: Option<Uai>,
    ) -> Response<ProxyBody> {
        let now = front.now;
        // Ours now: Pronote's validation of this ticket is answered from the stash,
        // so the ENT is asked about it exactly once (I1d).
        let _ = self.store.take_ticket(&redirect.ticket).await;
        let (outcome, ent_answer) = self.early_validation(redirect, front).await;
        let mut state = state.unwrap_or_default();
        let progress = state
            .retry
            .take()
            .filter(|p| p.service == redirect.service)
            .filter(|p| {
                now.saturating_sub(p.started_ms) <= duration_ms(self.config.pin.retry_budget) * 2
            })
            .unwrap_or(RetryProgress {
                service: redirect.service.clone(),
                retries: 0,
                started_ms: now,
            });
        let attempts = Attempts {
            retries: progress.retries,
            elapsed_ms: now.saturating_sub(progress.started_ms),
        };
        let assertion = match outcome {
            Outcome::Success(assertion) => assertion,
            failure @ Outcome::Failure(_) => {
                self.stash(
                    redirect,
                    (failure, ent_answer),
                    session,
                    PinOutcome::None,
                    attempts.retries,
                    front,
                )
                .await;
                let _ = self.store.put_session(&session.id, state).await;
                return self.stream_back(upstream);
            }
        };
        // A loop another person left unfinished on a shared computer is theirs: this
        // principal's login starts its own count.
        let (progress, attempts) = if state.principal.as_deref() == Some(&assertion.principal) {
            (progress, attempts)
        } else {
            let fresh = RetryProgress {
                service: redirect.service.clone(),
                retries: 0,
                started_ms: now,
            };
            (fresh, Attempts::default())
        };
        let inspection = self
            .inspector
            .inspect(&assertion, &redirect.service, Some(&state), None);
        let decision = pin::decide_front(
            &self.config.pin,
            &inspection,
            &assertion,
            Some(&state),
            &redirect.service,
            attempts,
            now,
        );
        let principal = self.pseudo_principal(Some(&assertion));
        let session_pseudo = self.pseudo_session(Some(&session.id));
        match decision {
            FrontDecision::Deliver {
                assertion: delivered,
                action,
                refused,
            } => {
                if let Some(refusal) = refused {
                    self.refused_rewrite(refusal.code(), principal.clone(), session_pseudo.clone());
                }
                let delivered_inspection =
                    self.inspector
                        .inspect(&delivered, &redirect.service, Some(&state), None);
                pin::remember(
                    &mut state,
                    &delivered,
                    &redirect.service,
                    &delivered_inspection,
                    &self.config.pin.rewrite_allow,
                    now,
                );
                let unchanged = pin::delivers_the_ents_own(action);
                self.stash(
                    redirect,
                    (
                        Outcome::Success(delivered),
                        ent_answer.filter(|_| unchanged),
                    ),
                    session,
                    action,
                    attempts.retries,
                    front,
                )
                .await;
                let _ = self.store.put_session(&session.id, state).await;
                self.stream_back(upstream)
            }
            FrontDecision::Relogin { refused } => {
                if let Some(refusal) = refused {
                    self.refused_rewrite(refusal.code(), principal.clone(), session_pseudo.clone());
                }
                self.emit(TraceEvent::Retry(events::Retry {
                    attempt: attempts.retries + 1,
                    verdict: inspection.judgement.verdict,
                    rule: inspection.judgement.rule,
                    uai_expected: expected,
                    uai_asserted: inspection.uai_asserted().cloned(),
                    principal,
                    pupil: self.pseudo_pupil(inspection.designated()),
                    session: session_pseudo,
                    latency_ms: LatencyMs(front.started.elapsed()),
                }));
                pin::learn_children(&mut state, &assertion, &inspection, now);
                state.retry = Some(RetryProgress {
                    retries: attempts.retries + 1,
                    ..progress
                });
                let _ = self.store.put_session(&session.id, state).await;
                // The refused ticket was validated by us; nobody else may use it.
                with_upstream_cookies(relogin(front, &redirect.service), &upstream)
            }
            FrontDecision::Ask => {
                pin::learn_children(&mut state, &assertion, &inspection, now);
                let (html, children) = self.chooser_html(
                    Some(&state),
                    Some(session),
                    &redirect.service,
                    expected.as_ref(),
                );
                self.emit(TraceEvent::Chooser(events::Chooser {
                    uai_expected: expected,
                    children,
                    principal,
                    session: session_pseudo,
                }));
                let _ = self.store.put_session(&session.id, state).await;
                with_upstream_cookies(error::html(StatusCode::OK, html), &upstream)
            }
            FrontDecision::GiveUp { assertion } => {
                let budget = duration_ms(self.config.pin.retry_budget);
                self.emit(TraceEvent::RetryGaveUp(events::RetryGaveUp {
                    retries: attempts.retries,
                    reason: if attempts.elapsed_ms >= budget {
                        "time_budget"
                    } else {
                        "attempts"
                    },
                    uai_expected: expected,
                    principal,
                    session: session_pseudo,
                    latency_ms: LatencyMs(front.started.elapsed()),
                }));
                pin::learn_children(&mut state, &assertion, &inspection, now);
                self.stash(
                    redirect,
                    (Outcome::Success(assertion), ent_answer),
                    session,
                    PinOutcome::GaveUp,
                    attempts.retries,
                    front,
                )
                .await;
                let _ = self.store.put_session(&session.id, state).await;
                let location = upstream
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                with_upstream_cookies(
                    gave_up_page(&location, &self.config.control_prefix, &redirect.service),
                    &upstream,
                )
            }
        }
    }

    fn refused_rewrite(
        &self,
        code: &'static str,
        principal: Option<Pseudonym>,
        session: Option<Pseudonym>,
    ) {
        self.emit(TraceEvent::PinRefused(events::PinRefused {
            code,
            principal,
            session,
        }));
    }

    /// bonenfant validates a front-channel ticket itself (retry strategy), with the
    /// same service, beside the `/login` path: at `p3/serviceValidate`, because many
    /// ENTs (Apereo CAS by default) release attributes only over CAS 3 and Pronote needs
    /// them; then at `serviceValidate` if the ENT answered 404 there (no such endpoint:
    /// CAS never read the ticket). Asked afresh for every ticket, so one 404 (an ENT
    /// being redeployed, an odd login path) changes nothing for the next. Returns the
    /// outcome and, under `--answer verbatim`, the ENT's own bytes.
    async fn early_validation(
        &self,
        redirect: &LoginRedirect,
        front: &FrontChannel,
    ) -> (Outcome, Option<String>) {
        let login = front.login_path.trim_end_matches('/');
        let base = login.strip_suffix("login").unwrap_or(login);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("service", &redirect.service)
            .append_pair("ticket", redirect.ticket.expose())
            .finish();
        let answer = match self
            .ask_ent_at(format!("{base}p3/serviceValidate?{query}"), front)
            .await
        {
            Err(refused) if refused.status == Some(StatusCode::NOT_FOUND) => {
                tracing::debug!(
                    "no p3/serviceValidate at the ENT: early validation at serviceValidate"
                );
                self.ask_ent_at(format!("{base}serviceValidate?{query}"), front)
                    .await
            }
            answer => answer,
        };
        let body = match answer {
            Ok((_, body)) => body,
            Err(refused) => {
                tracing::warn!(code = refused.code, "early validation failed upstream");
                return (Outcome::Failure(Failure::internal(refused.code)), None);
            }
        };
        let options = self.parse_options(&redirect.service);
        match cas::parse_response(ResponseFormat::Xml, &body, &options) {
            Ok(outcome) => {
                let verbatim = self.config.answer == AnswerMode::Verbatim;
                let bytes = verbatim.then(|| String::from_utf8(body.to_vec()).ok());
                (outcome, bytes.flatten())
            }
            Err(refused) => {
                tracing::warn!(code = refused.code(), "early validation answer refused");
                (Outcome::Failure(Failure::internal(refused.code())), None)
            }
        }
    }

    /// [`Self::ask_ent`] for a validation bonenfant makes itself, at `target` on the ENT,
    /// under the browser's `Host`.
    async fn ask_ent_at(
        &self,
        target: String,
        front: &FrontChannel,
    ) -> Result<(http::response::Parts, Bytes), EntRefusal> {
        let mut builder = Request::get(target);
        if let Some(host) = &front.host {
            builder = builder.header(HOST, host.clone());
        }
        let req = builder.body(ProxyBody::empty()).map_err(|_| EntRefusal {
            code: "proxy.internal",
            failure: Failure::internal("could not build the validation request"),
            status: None,
        })?;
        self.ask_ent(req, &front.conn).await
    }

    /// Asks the ENT about a ticket: the request rewritten for the upstream, the answer
    /// read whole (bounded), an HTTP error status refused. Both the back channel and
    /// the retry strategy's early validation go through here.
    async fn ask_ent(
        &self,
        mut req: Request<ProxyBody>,
        conn: &ConnInfo,
    ) -> Result<(http::response::Parts, Bytes), EntRefusal> {
        // The answer is parsed here: a compressed one could not be, and would fail every
        // validation of a client that asks for compression (python-cas, curl).
        req.headers_mut()
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let req = self
            .passthrough
            .policy()
            .upstream_request(req, conn)
            .map_err(|refused| EntRefusal {
                code: refused.code(),
                failure: Failure::new("INVALID_REQUEST", "malformed request"),
                status: None,
            })?;
        let (parts, body) = self
            .passthrough
            .upstream()
            .fetch(req, self.config.limits.max_validation_body)
            .await
            .map_err(|failed| EntRefusal {
                code: failed.code(),
                failure: upstream_failure(&failed),
                status: None,
            })?;
        if !parts.status.is_success() {
            return Err(EntRefusal {
                code: "proxy.upstream_status",
                failure: Failure::internal("the ENT answered with an HTTP error"),
                status: Some(parts.status),
            });
        }
        Ok((parts, body))
    }

    /// Keeps an early validation for Pronote's: the outcome to answer and, when it is
    /// exactly what the ENT said, the ENT's own bytes.
    async fn stash(
        &self,
        redirect: &LoginRedirect,
        (outcome, ent_answer): (Outcome, Option<String>),
        session: &SessionCookie,
        pin: PinOutcome,
        retries: u32,
        front: &FrontChannel,
    ) {
        let entry = StashedValidation {
            service: redirect.service.clone(),
            outcome,
            session: Some(session.id),
            stored_at_ms: front.now,
            pin,
            retries,
            primary: front.primary,
            ent_answer,
        };
        let stashed = match self.store.stash(&redirect.ticket, entry.clone()).await {
            // The bytes are a courtesy: an answer too large to keep twice is kept parsed.
            Err(StoreError::TooLarge { .. }) if entry.ent_answer.is_some() => {
                let parsed = StashedValidation {
                    ent_answer: None,
                    ..entry
                };
                self.store.stash(&redirect.ticket, parsed).await
            }
            stashed => stashed,
        };
        if let Err(e) = stashed {
            // Pronote's validation then finds no stash and fails closed.
            tracing::warn!(code = e.code(), "could not stash an early validation");
        }
    }

    fn parse_options<'a>(&self, service: &'a str) -> ParseOptions<'a> {
        ParseOptions {
            limits: ParseLimits {
                max_bytes: self.config.limits.max_validation_body,
                ..ParseLimits::default()
            },
            now_unix: Some(self.now_ms() / 1000),
            service: Some(service),
        }
    }

    // --- back channel ---

    async fn validation(
        &self,
        endpoint: Endpoint,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Response<ProxyBody> {
        let mut summary = ValidationSummary::new(endpoint, started);
        let fallback_format = fallback_format(endpoint, req.uri().query());
        let (parts, body) = req.into_parts();
        let body = match self.read_request_body(body).await {
            Ok(body) => body,
            Err(code) => {
                summary.error = Some(code);
                return self.fail(
                    summary,
                    fallback_format,
                    "",
                    Failure::new("INVALID_REQUEST", "unreadable request body"),
                );
            }
        };
        let request = match ValidationRequest::parse(endpoint, parts.uri.query(), &body) {
            Ok(request) => request,
            Err(refused) => {
                summary.error = Some(refused.code());
                let code = if refused.code().starts_with("cas.ticket") {
                    "INVALID_TICKET"
                } else {
                    "INVALID_REQUEST"
                };
                return self.fail(
                    summary,
                    fallback_format,
                    "",
                    Failure::new(code, refused.to_string()),
                );
            }
        };
        // Whatever the outcome: failures count per establishment too.
        summary.expected = self.inspector.establishment.expected(&request.service);
        // A store outage degrades to observing, never to refusing logins: the ticket goes
        // to the ENT, which refuses it if bonenfant already validated it (a stash it can
        // no longer read), so no identity is made up either way.
        match self.store.take_stash(&request.ticket).await {
            Ok(Some(stashed)) => return self.answer_stashed(summary, &request, stashed).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(
                code = e.code(),
                "session store unavailable; validation forwarded to the ENT"
            ),
        }
        let binding = match self.store.take_ticket(&request.ticket).await {
            Ok(binding) => binding,
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "session store unavailable; validation uncorrelated"
                );
                None
            }
        };
        if binding.is_none() && self.config.strict_correlation {
            summary.error = Some("proxy.uncorrelated_ticket");
            return self.fail(
                summary,
                request.format,
                &request.service,
                Failure::new("INVALID_TICKET", "ticket not issued through this proxy"),
            );
        }
        if binding.is_none() && !self.claim_unbound(&request).await {
            summary.error = Some("proxy.ticket_replayed");
            return self.fail(
                summary,
                request.format,
                &request.service,
                Failure::new("INVALID_TICKET", "ticket already presented"),
            );
        }
        let session = binding.as_ref().and_then(|b| b.session);
        summary.session = session;
        let upstream_req = Request::from_parts(parts, ProxyBody::full(body));
        let (answer_parts, answer) = match self.ask_ent(upstream_req, &conn).await {
            Ok(answer) => answer,
            Err(refused) => {
                summary.error = Some(refused.code);
                return self.fail(summary, request.format, &request.service, refused.failure);
            }
        };
        let outcome = match cas::parse_response(
            request.format,
            &answer,
            &self.parse_options(&request.service),
        ) {
            Ok(outcome) => outcome,
            Err(refused) => {
                summary.error = Some(refused.code());
                if refused.code() == "cas.parse.ambiguous_principal" {
                    summary.judgement = Some(Judgement {
                        verdict: Verdict::Ambiguous,
                        rule: rule::NO_PUPIL_KEY,
                    });
                }
                return self.fail(
                    summary,
                    request.format,
                    &request.service,
                    Failure::internal("the ENT's answer could not be read unambiguously"),
                );
            }
        };
        let verbatim = (self.config.answer == AnswerMode::Verbatim).then_some(&answer);
        match outcome {
            Outcome::Failure(failure) => {
                summary.error = Some(events::cas_failure_code(&failure.code));
                let body = match verbatim {
                    Some(bytes) => bytes.clone(),
                    None => Bytes::from(cas::serialize(
                        &Outcome::Failure(failure),
                        request.format,
                        &self.answer_context(&request.service),
                    )),
                };
                self.summary_validate(summary);
                cas_response(request.format, body, answer_parts.headers.get(CONTENT_TYPE))
            }
            Outcome::Success(assertion) => {
                let inspection = self
                    .observe_success(&mut summary, &request, &assertion, session)
                    .await;
                let body = pin::success_answer(
                    &assertion,
                    request.format,
                    &self.answer_context(&request.service),
                    verbatim.map(|b| b.as_ref()),
                );
                summary.record(&inspection);
                self.summary_validate(summary);
                cas_response(
                    request.format,
                    Bytes::from(body),
                    answer_parts
                        .headers
                        .get(CONTENT_TYPE)
                        .filter(|_| verbatim.is_some()),
                )
            }
        }
    }

    /// Claims a ticket no front channel bound before it goes upstream. The claim fails
    /// for a ticket taken less than the ticket TTL ago — a replay, or a ticket the retry
    /// strategy validated itself — so the ENT is never asked twice about one ticket
    /// (I1d). A store outage lets the validation through, uncorrelated, as
    /// `take_ticket`'s does: the ENT still refuses a spent ticket.
    async fn claim_unbound(&self, request: &ValidationRequest) -> bool {
        let claim = TicketBinding {
            session: None,
            service: request.service.clone(),
            issued_at_ms: self.now_ms(),
        };
        match self.store.bind_ticket(&request.ticket, claim).await {
            Ok(true) => {
                // Taken at once: the tombstone it leaves is what refuses a replay.
                let _ = self.store.take_ticket(&request.ticket).await;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(code = e.code(), "could not claim an unbound ticket");
                true
            }
        }
    }

    /// Pronote validates a ticket bonenfant validated early: answered from the stash,
    /// once, for that exact ticket and service; never asked of the ENT again.
    async fn answer_stashed(
        &self,
        mut summary: ValidationSummary,
        request: &ValidationRequest,
        stashed: StashedValidation,
    ) -> Response<ProxyBody> {
        summary.session = stashed.session;
        summary.pin = stashed.pin;
        summary.retries = stashed.retries;
        if request.renew && !(stashed.primary && stashed.retries == 0) {
            // The ENT refuses a single-sign-on ticket when `renew` is asked; so does
            // bonenfant for a ticket it knows did not come from a password.
            summary.error = Some("proxy.renew_not_primary");
            return self.fail(
                summary,
                request.format,
                &request.service,
                Failure::new(
                    "INVALID_TICKET",
                    "renew requested, but the ticket came from single sign-on",
                ),
            );
        }
        if stashed.service != request.service {
            summary.error = Some("proxy.stash_service_mismatch");
            return self.fail(
                summary,
                request.format,
                &request.service,
                Failure::new("INVALID_SERVICE", "ticket was issued for another service"),
            );
        }
        // The ENT's own answer, as the back channel serves it, for a CAS 2/3 validation.
        let verbatim = stashed
            .ent_answer
            .filter(|_| {
                self.config.answer == AnswerMode::Verbatim && request.format == ResponseFormat::Xml
            })
            .map(Bytes::from);
        match stashed.outcome {
            Outcome::Failure(failure) => {
                summary.error = Some(events::cas_failure_code(&failure.code));
                match verbatim {
                    Some(body) => {
                        self.summary_validate(summary);
                        cas_response(request.format, body, None)
                    }
                    None => self.fail(summary, request.format, &request.service, failure),
                }
            }
            Outcome::Success(assertion) => {
                let inspection = self
                    .observe_success(&mut summary, request, &assertion, stashed.session)
                    .await;
                let body = pin::success_answer(
                    &assertion,
                    request.format,
                    &self.answer_context(&request.service),
                    verbatim.as_deref(),
                );
                summary.record(&inspection);
                self.summary_validate(summary);
                cas_response(request.format, Bytes::from(body), None)
            }
        }
    }

    /// Inspects a success Pronote is about to receive and updates what bonenfant
    /// remembers: the last pupil per (principal, establishment) for flips, the browser
    /// session's memory, and ticket → session for single logout.
    async fn observe_success(
        &self,
        summary: &mut ValidationSummary,
        request: &ValidationRequest,
        assertion: &Assertion,
        session: Option<SessionId>,
    ) -> Inspection {
        let now = self.now_ms();
        let state = match &session {
            Some(id) => self.store.session(id).await.ok().flatten(),
            None => None,
        };
        // One pseudonym for the last-pupil key and the summary event.
        let principal = self.trace.pseudonyms().principal(&assertion.principal);
        let first = self
            .inspector
            .inspect(assertion, &request.service, state.as_ref(), None);
        // Only another pupil than this one can be a flip: the same previous pupil
        // would judge exactly as `first`, so it is not inspected again.
        let previous = match first.designated() {
            Some(pupil) => {
                let key = format!(
                    "{}|{}",
                    principal,
                    first
                        .expected
                        .as_ref()
                        .map_or(request.service.as_str(), |uai| uai.as_str())
                );
                match self.store.swap_last_pupil(&key, pupil.clone(), now).await {
                    Ok(Some((previous, at)))
                        if now.saturating_sub(at) <= duration_ms(self.config.pin.flip_window)
                            && previous != *pupil =>
                    {
                        Some(previous)
                    }
                    _ => None,
                }
            }
            None => None,
        };
        summary.principal = Some(principal);
        let inspection = match &previous {
            Some(previous) => {
                self.inspector
                    .inspect(assertion, &request.service, state.as_ref(), Some(previous))
            }
            None => first,
        };
        if let Some(id) = session {
            // A session the store no longer holds starts afresh from this assertion.
            let mut state = state.unwrap_or_default();
            pin::remember(
                &mut state,
                assertion,
                &request.service,
                &inspection,
                &self.config.pin.rewrite_allow,
                now,
            );
            let _ = self.store.put_session(&id, state).await;
            let _ = self.store.remember_validated(&request.ticket, id).await;
        }
        summary.expected = inspection.expected.clone();
        inspection
    }

    fn answer_context<'a>(&self, service: &'a str) -> AnswerContext<'a> {
        AnswerContext {
            service,
            now_unix: self.now_ms() / 1000,
        }
    }

    /// A well-formed CAS failure for Pronote (I1c) and the validation's summary event.
    fn fail(
        &self,
        summary: ValidationSummary,
        format: ResponseFormat,
        service: &str,
        failure: Failure,
    ) -> Response<ProxyBody> {
        self.summary_validate(summary);
        let body = cas::serialize(
            &Outcome::Failure(failure),
            format,
            &self.answer_context(service),
        );
        cas_response(format, Bytes::from(body), None)
    }

    fn summary_validate(&self, summary: ValidationSummary) {
        let judgement = summary.judgement.unwrap_or_else(Judgement::no_assertion);
        self.emit(TraceEvent::Validate(events::Validate {
            verdict: judgement.verdict,
            rule: judgement.rule,
            endpoint: summary.endpoint,
            uai_expected: summary.expected,
            uai_asserted: summary.asserted,
            pin: summary.pin,
            retries: summary.retries,
            latency_ms: LatencyMs(summary.started.elapsed()),
            principal: summary.principal,
            pupil: self.pseudo_pupil(summary.pupil.as_ref()),
            session: self.pseudo_session(summary.session.as_ref()),
            error: summary.error,
        }));
    }

    // --- logouts ---

    /// The browser leaves the ENT: forward, and forget this browser's session (a shared
    /// computer's next user must inherit nothing).
    async fn browser_logout(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let cookie = self.cookies.open(req.headers(), self.now_ms());
        // Forgotten first: the person asked to leave, whether or not the ENT answers.
        let dropped = match &cookie {
            Some(cookie) => self.store.drop_session(&cookie.id).await.is_ok(),
            None => false,
        };
        let mut response = match self.forward_streaming(req.map(ProxyBody::new), &conn).await {
            Ok(response) => self.stream_back(response),
            Err(refusal) => refusal.response,
        };
        if cookie.is_some() {
            response
                .headers_mut()
                .append(SET_COOKIE, self.cookies.clear());
        }
        self.emit(TraceEvent::Logout(events::Logout {
            kind: LogoutKind::Browser,
            session: self.pseudo_session(cookie.as_ref().map(|c| &c.id)),
            dropped,
        }));
        response
    }

    /// A POST that may be a single-logout request: read it (bounded), drop the state
    /// of the ticket it names, forward it unchanged.
    async fn single_logout(
        &self,
        endpoint: Option<Endpoint>,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Response<ProxyBody> {
        let (parts, body) = req.into_parts();
        let body = match self.read_request_body(body).await {
            Ok(body) => body,
            Err(code) => {
                let page = error::page(StatusCode::BAD_REQUEST, code);
                self.emit(TraceEvent::Rejected(events::Rejected {
                    code,
                    endpoint,
                    status: page.status().as_u16(),
                    latency_ms: LatencyMs(started.elapsed()),
                }));
                return page;
            }
        };
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ticket = cas::logout_session_index(content_type.as_deref(), &body);
        let req = Request::from_parts(parts, ProxyBody::full(body));
        // The state goes whatever the client's answer: the ENT has ended the session.
        let session = match &ticket {
            Some(ticket) => self.forget(ticket).await,
            None => None,
        };
        let response = match self.forward_streaming(req, &conn).await {
            Ok(response) => self.stream_back(response),
            Err(refusal) if ticket.is_none() => return self.refuse(endpoint, refusal, started),
            Err(refusal) => refusal.response,
        };
        match ticket {
            Some(_) => self.emit(TraceEvent::Logout(events::Logout {
                kind: LogoutKind::SingleLogout,
                session: self.pseudo_session(session.as_ref()),
                dropped: session.is_some(),
            })),
            None => self.emit(TraceEvent::Passthrough(events::Passthrough {
                endpoint,
                status: response.status().as_u16(),
                latency_ms: LatencyMs(started.elapsed()),
            })),
        }
        response
    }

    async fn forget(&self, ticket: &ServiceTicket) -> Option<SessionId> {
        let session = self.store.forget_ticket(ticket).await.ok().flatten()?;
        let _ = self.store.drop_session(&session).await;
        Some(session)
    }

    // --- the chooser page ---

    async fn control(&self, req: Request<Incoming>, started: Instant) -> Response<ProxyBody> {
        let path = &req.uri().path()[self.config.control_prefix.len()..];
        if path != "/choose" {
            let page = error::page(StatusCode::NOT_FOUND, "proxy.not_found");
            self.emit(TraceEvent::Rejected(events::Rejected {
                code: "proxy.not_found",
                endpoint: None,
                status: 404,
                latency_ms: LatencyMs(started.elapsed()),
            }));
            return page;
        }
        let result = match *req.method() {
            Method::GET | Method::HEAD => Ok(self.chooser_page(&req).await),
            Method::POST => self.pin_post(req).await,
            _ => Err((chooser::ChooserError::Method, None, None)),
        };
        match result {
            Ok(response) => response,
            Err((refused, principal, session)) => {
                self.emit(TraceEvent::PinRefused(events::PinRefused {
                    code: refused.code(),
                    principal,
                    session,
                }));
                error::page(refused.status(), refused.code())
            }
        }
    }

    async fn chooser_page(&self, req: &Request<Incoming>) -> Response<ProxyBody> {
        let now = self.now_ms();
        let service = login_service(req.uri().query()).unwrap_or_default();
        let cookie = self.cookies.open(req.headers(), now);
        let state = match &cookie {
            Some(c) => self.store.session(&c.id).await.ok().flatten(),
            None => None,
        };
        let expected = self.inspector.establishment.expected(&service);
        let (html, children) =
            self.chooser_html(state.as_ref(), cookie.as_ref(), &service, expected.as_ref());
        self.emit(TraceEvent::Chooser(events::Chooser {
            uai_expected: expected,
            children,
            principal: state
                .as_ref()
                .and_then(|s| s.principal.as_deref())
                .map(|p| self.trace.pseudonyms().principal(p)),
            session: self.pseudo_session(cookie.as_ref().map(|c| &c.id)),
        }));
        error::html(StatusCode::OK, html)
    }

    /// Every child known for the session's principal: what the ENT asserted in this
    /// session, and what the directory index says.
    fn known_children(&self, state: &SessionState) -> Vec<PupilKey> {
        match &state.principal {
            Some(principal) => self.inspector.known_children(principal, [], Some(state)),
            None => state.known.iter().map(|(k, _)| k.clone()).collect(),
        }
    }

    /// The chooser page for a session, listing the known children of the service's
    /// establishment (all of them when the service names none), and how many it lists.
    fn chooser_html(
        &self,
        state: Option<&SessionState>,
        cookie: Option<&SessionCookie>,
        service: &str,
        expected: Option<&Uai>,
    ) -> (String, u32) {
        let known: Vec<PupilKey> = state
            .map(|s| self.known_children(s))
            .unwrap_or_default()
            .into_iter()
            .filter(|k| expected.map_or(true, |e| &k.uai == e))
            .collect();
        let pinned = state.and_then(|s| s.pin.as_ref());
        let labels: Vec<Option<&crate::pupil::PupilLabel>> = known
            .iter()
            .map(|k| self.inspector.index.as_ref().and_then(|i| i.label(k)))
            .collect();
        let children: Vec<chooser::ChooserChild<'_>> = known
            .iter()
            .zip(&labels)
            .map(|(key, label)| chooser::ChooserChild {
                key,
                first_name: label.map(|l| l.first_name.as_str()),
                class: label.and_then(|l| l.class.as_deref()),
                pinned: pinned == Some(key),
            })
            .collect();
        let csrf = cookie.map(SessionCookie::csrf_token).unwrap_or_default();
        let action = format!("{}/choose", self.config.control_prefix);
        let count = u32::try_from(children.len()).unwrap_or(u32::MAX);
        (chooser::render(&children, service, &csrf, &action), count)
    }

    async fn pin_post(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, (chooser::ChooserError, Option<Pseudonym>, Option<Pseudonym>)>
    {
        use chooser::ChooserError;
        let now = self.now_ms();
        let cookie = self.cookies.open(req.headers(), now);
        let session = self.pseudo_session(cookie.as_ref().map(|c| &c.id));
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        chooser::same_origin(req.headers(), &host).map_err(|e| (e, None, session.clone()))?;
        let Some(cookie) = cookie else {
            return Err((ChooserError::NoSession, None, session));
        };
        let body = self
            .read_request_body(req.into_body())
            .await
            .map_err(|_| (ChooserError::MissingField("child"), None, session.clone()))?;
        let form = chooser::parse_form(&body).map_err(|e| (e, None, session.clone()))?;
        if !cookie.verify_csrf(&form.csrf) {
            return Err((ChooserError::Csrf, None, session));
        }
        let mut state = self.store.session(&cookie.id).await.ok().flatten().ok_or((
            ChooserError::NoSession,
            None,
            session.clone(),
        ))?;
        let principal = state
            .principal
            .as_deref()
            .map(|p| self.trace.pseudonyms().principal(p));
        let csrf = cookie.csrf_token();
        let chosen = self
            .known_children(&state)
            .into_iter()
            .find(|k| chooser::child_token(&csrf, k) == form.child)
            .ok_or((
                ChooserError::UnknownChild,
                principal.clone(),
                session.clone(),
            ))?;
        // The parent goes on to Pronote; only a service the establishment pattern
        // recognises is a redirect target (no open redirect, T16).
        let target = self
            .inspector
            .establishment
            .expected(&form.service)
            .map(|_| form.service.clone());
        state.pin = Some(chosen.clone());
        state.updated_at_ms = now;
        self.store
            .put_session(&cookie.id, state)
            .await
            .map_err(|_| (ChooserError::NoSession, principal.clone(), session.clone()))?;
        if let (Some(principal), Some(session)) = (principal, session) {
            self.emit(TraceEvent::PinSet(events::PinSet {
                uai: chosen.uai.clone(),
                pupil: self.trace.pseudonyms().pupil(&chosen),
                principal,
                session,
            }));
        }
        Ok(match target {
            Some(service) => redirect(StatusCode::SEE_OTHER, &service),
            None => error::html(
                StatusCode::OK,
                "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Enfant choisi</title></head>\
                 <body><main><h1>C'est noté</h1><p>Votre prochaine connexion à Pronote ouvrira la session de cet enfant.</p></main></body></html>\n"
                    .to_owned(),
            ),
        })
    }
}

impl Handler for CasExchange {
    async fn call(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        self.handle(req, conn).await
    }
}

/// Why the ENT gave no answer bonenfant can read: the stable code and the CAS failure
/// that stands for it.
struct EntRefusal {
    code: &'static str,
    failure: Failure,
    /// The ENT's HTTP error status, when it answered with one.
    status: Option<StatusCode>,
}

/// A request the proxy answers itself because it could not forward it.
struct Refusal {
    code: &'static str,
    /// The upstream failed (else the request was refused at the front door).
    upstream: bool,
    response: Response<ProxyBody>,
}

/// What the front channel knows about the `/login` request being answered.
struct FrontChannel {
    /// The browser's `/login` path (the re-login target, and the base of the ENT's
    /// validation endpoints).
    login_path: String,
    /// The browser's `/login` query: a re-login repeats it (`gateway`, `method` and the
    /// ENT's own parameters must survive a retry).
    login_query: Option<String>,
    /// The login asked for `renew`: a forced primary authentication, which a silent
    /// re-login would defeat, so bonenfant only observes it.
    renew: bool,
    /// The browser posted its credentials (else the ticket came from single sign-on).
    primary: bool,
    host: Option<HeaderValue>,
    conn: ConnInfo,
    started: Instant,
    now: u64,
}

/// The fields of one validation's summary event, filled as the phases go.
struct ValidationSummary {
    endpoint: Endpoint,
    started: Instant,
    judgement: Option<Judgement>,
    expected: Option<Uai>,
    asserted: Option<Uai>,
    pin: PinOutcome,
    retries: u32,
    principal: Option<Pseudonym>,
    pupil: Option<PupilKey>,
    session: Option<SessionId>,
    error: Option<&'static str>,
}

impl ValidationSummary {
    fn new(endpoint: Endpoint, started: Instant) -> Self {
        Self {
            endpoint,
            started,
            judgement: None,
            expected: None,
            asserted: None,
            pin: PinOutcome::None,
            retries: 0,
            principal: None,
            pupil: None,
            session: None,
            error: None,
        }
    }

    fn record(&mut self, inspection: &Inspection) {
        self.judgement = Some(inspection.judgement);
        self.expected.clone_from(&inspection.expected);
        self.asserted = inspection.uai_asserted().cloned();
        self.pupil = inspection.designated().cloned();
    }
}

/// The `service` (or SAML `TARGET`) of a `/login` query, decoded.
fn login_service(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "service" || k == "TARGET")
        .map(|(_, v)| v.into_owned())
}

/// The answer format a validation expects, before its parameters are checked (for the
/// failure answering a malformed request).
fn fallback_format(endpoint: Endpoint, query: Option<&str>) -> ResponseFormat {
    match endpoint {
        Endpoint::Validate => ResponseFormat::Cas1Text,
        Endpoint::SamlValidate => ResponseFormat::Saml11,
        _ => {
            let json = query.is_some_and(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .any(|(k, v)| k == "format" && v.eq_ignore_ascii_case("json"))
            });
            if json {
                ResponseFormat::Json
            } else {
                ResponseFormat::Xml
            }
        }
    }
}

fn content_type(format: ResponseFormat) -> &'static str {
    match format {
        ResponseFormat::Cas1Text => "text/plain; charset=UTF-8",
        ResponseFormat::Xml => "application/xml; charset=UTF-8",
        ResponseFormat::Json => "application/json; charset=UTF-8",
        ResponseFormat::Saml11 => "text/xml; charset=UTF-8",
    }
}

/// A CAS answer (200, as CAS servers answer failures too).
fn cas_response(
    format: ResponseFormat,
    body: Bytes,
    upstream_type: Option<&HeaderValue>,
) -> Response<ProxyBody> {
    let content_type = upstream_type
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(content_type(format)));
    let mut response = Response::new(ProxyBody::full(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn upstream_failure(failed: &UpstreamError) -> Failure {
    Failure::internal(format!(
        "the ENT could not be reached or answered badly ({})",
        failed.code()
    ))
}

/// Whether a request may be a single-logout POST worth reading: small, and form or XML.
fn is_single_logout_candidate<B>(req: &Request<B>, max_body: usize) -> bool {
    if req.method() != Method::POST {
        return false;
    }
    let small = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len <= max_body);
    let kind = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    let shaped = match kind.as_deref() {
        None => true,
        Some(t) => {
            t.starts_with("application/x-www-form-urlencoded")
                || t.starts_with("text/xml")
                || t.starts_with("application/xml")
        }
    };
    small && shaped
}

/// Carries the ENT's `Set-Cookie` headers over to an answer bonenfant writes in place
/// of the ENT's redirect: its single sign-on cookie is what makes the next `/login`
/// silent.
fn with_upstream_cookies(
    mut response: Response<ProxyBody>,
    upstream: &Response<Incoming>,
) -> Response<ProxyBody> {
    for cookie in upstream.headers().get_all(SET_COOKIE) {
        response.headers_mut().append(SET_COOKIE, cookie.clone());
    }
    response
}

/// Sends the browser back to the ENT's `/login` as it first came, for the service the
/// ticket was for. Every other parameter of the first login stays: dropping `gateway`
/// would let the ENT show a login form to a request that must never get one.
fn relogin(front: &FrontChannel, service: &str) -> Response<ProxyBody> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("service", service);
    if let Some(first) = &front.login_query {
        // Not what names this login's target or ticket, nor `renew` (never retried).
        query.extend_pairs(
            form_urlencoded::parse(first.as_bytes()).filter(|(name, _)| {
                !matches!(
                    name.as_ref(),
                    "service" | "TARGET" | "ticket" | "SAMLart" | "renew"
                )
            }),
        );
    }
    redirect(
        StatusCode::FOUND,
        &format!("{}?{}", front.login_path, query.finish()),
    )
}

fn redirect(status: StatusCode, location: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The retry strategy ran out: tell the parent, and let them go on or choose.
fn gave_up_page(location: &str, control_prefix: &str, service: &str) -> Response<ProxyBody> {
    use quick_xml::escape::escape;
    let choose = format!(
        "{control_prefix}/choose?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("service", service)
            .finish()
    );
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Pronote — enfant non obtenu</title></head><body><main>\
         <h1>L'ENT n'a pas ouvert la session de l'enfant attendu</h1>\
         <p>Après plusieurs essais, l'ENT propose toujours un autre enfant.</p>\
         <p><a href=\"{location}\">Continuer vers Pronote quand même</a></p>\
         <p><a href=\"{choose}\">Choisir un autre enfant</a></p></main></body></html>\n",
        location = escape(location),
        choose = escape(&choose),
    );
    error::html(StatusCode::OK, html)
}

// === serve ===

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A proxy serving in the background (the demo, tests): where it listens and how to
/// stop it.
pub struct RunningProxy {
    pub addr: std::net::SocketAddr,
    pub metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl RunningProxy {
    /// `http://ADDR` (or https when TLS is configured).
    pub fn base_url(&self, tls: bool) -> url::Url {
        let scheme = if tls { "https" } else { "http" };
        url::Url::parse(&format!("{scheme}://{}/", self.addr))
            .unwrap_or_else(|_| unreachable!("socket addresses form valid URLs"))
    }

    /// Stops accepting, drains in-flight requests, and waits for the end.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }
}

/// Binds `config.listen` (port 0 picks one) and serves in the background.
/// How long startup waits for a Redis store that does not answer yet: Redis started in
/// the same breath as bonenfant, or restarting. A wrong URL is reported after it.
const STORE_STARTUP_WAIT: Duration = Duration::from_secs(30);

/// Opens the session store, waiting up to [`STORE_STARTUP_WAIT`] for one that is
/// unavailable (and saying so), failing at once on any other error.
async fn open_store(url: &str, config: &StoreConfig) -> Result<AnyStore, StoreError> {
    let deadline = tokio::time::Instant::now() + STORE_STARTUP_WAIT;
    let mut warned = false;
    loop {
        match AnyStore::from_url(url, config).await {
            Err(StoreError::Unavailable(reason)) if tokio::time::Instant::now() < deadline => {
                if !warned {
                    tracing::warn!(
                        %reason,
                        wait_s = STORE_STARTUP_WAIT.as_secs(),
                        "session store unavailable; waiting for it before serving"
                    );
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            opened => return opened,
        }
    }
}

pub async fn spawn(config: Arc<Config>, trace: TraceLog) -> Result<RunningProxy, ServeError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let metrics = Arc::new(Metrics::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(
        listener,
        config,
        trace,
        Arc::clone(&metrics),
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(RunningProxy {
        addr,
        metrics,
        stop: Some(stop),
        task,
    })
}

/// `bonenfant serve`: one worker thread per core (each with its own runtime and
/// upstream pool, sharing the session map: `bench/results/` shows why), serving until
/// `shutdown`, draining, and saying so in the trace.
pub async fn serve(
    config: Arc<Config>,
    trace: TraceLog,
    workers: std::num::NonZeroUsize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new());
    let exchange =
        CasExchange::new(Arc::clone(&config), trace.clone(), Arc::clone(&metrics)).await?;
    let readiness = crate::admin::Readiness::default();
    let admin = start_admin(&config, &exchange, &metrics, &trace, &readiness).await?;
    startup_event(&config, &trace);
    let drained = readiness.clone();
    let result = super::passthrough::run_workers(
        &config,
        workers,
        || exchange.for_worker().map(Arc::new),
        async move {
            shutdown.await;
            drained.set_serving(false);
        },
    );
    readiness.set_serving(true);
    let result = result.await;
    finish(admin, &trace, result.is_ok());
    result.map_err(ServeError::from)
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    config: Arc<Config>,
    trace: TraceLog,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let tls = match &config.tls {
        Some((cert, key)) => Some(super::tls::server_config(cert, key)?),
        None => None,
    };
    let exchange =
        CasExchange::new(Arc::clone(&config), trace.clone(), Arc::clone(&metrics)).await?;
    let readiness = crate::admin::Readiness::default();
    let admin = start_admin(&config, &exchange, &metrics, &trace, &readiness).await?;
    startup_event(&config, &trace);
    readiness.set_serving(true);
    let drained = readiness.clone();
    let result = super::server::serve(
        listener,
        tls,
        &config.limits,
        Arc::new(exchange),
        async move {
            shutdown.await;
            drained.set_serving(false);
        },
    )
    .await;
    finish(admin, &trace, result.is_ok());
    result.map_err(ServeError::from)
}

/// Starts the admin server when `--admin` is set; the sender stops it.
async fn start_admin(
    config: &Config,
    exchange: &CasExchange,
    metrics: &Arc<Metrics>,
    trace: &TraceLog,
    readiness: &crate::admin::Readiness,
) -> Result<tokio::sync::watch::Sender<bool>, ServeError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if let Some(addr) = config.admin {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let store = Arc::clone(&exchange.store);
        let state = crate::admin::AdminState::new(
            Arc::clone(metrics),
            readiness.clone(),
            trace.losses().clone(),
            move || store.stats(),
        );
        let mut stopped = stopped;
        tokio::spawn(crate::admin::serve(listener, state, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
    }
    Ok(stop)
}

fn startup_event(config: &Config, trace: &TraceLog) {
    trace.emit(TraceEvent::Startup(events::Startup {
        version: env!("CARGO_PKG_VERSION"),
        pin_strategy: config.pin.mode.as_str(),
        store: if config.store == "memory" {
            "memory"
        } else {
            "redis"
        },
        pseudonym_key: if config.raw.pseudonym_key_file.is_some() {
            events::KeySource::File
        } else {
            events::KeySource::Random
        },
    }));
}

/// Stops the admin server and writes the last event of the run.
fn finish(admin: tokio::sync::watch::Sender<bool>, trace: &TraceLog, ok: bool) {
    let _ = admin.send(true);
    trace.emit(TraceEvent::Shutdown(events::Shutdown {
        reason: if ok { "signal" } else { "error" },
        events_lost: trace.losses().lost(),
    }));
}
