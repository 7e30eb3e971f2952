//! The front channel: the browser's `/login`, and the ENT's answer redirecting it to
//! its service with a ticket. The ticket is bound to the browser session (rotated at
//! every ticket, threat T44) and, with pinning on, checked by [`super::retry`].

use std::time::Instant;

use http::header::{ACCEPT_LANGUAGE, COOKIE, HOST, LOCATION, SET_COOKIE, USER_AGENT};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{login_service, CasExchange, Handled};
use crate::cas::{self, Endpoint, LoginRedirect};
use crate::code::Code;
use crate::config::PinMode;
use crate::events::{self, FrontAction, LatencyMs, Pseudonym, TraceEvent};
use crate::pin::front as plan;
use crate::proxy::body::ProxyBody;
use crate::proxy::ConnInfo;
use crate::session::cookie::SessionCookie;
use crate::session::{SessionChange, SessionState, SessionStore, TicketBinding};

/// What the front channel knows about the `/login` request being answered.
pub(super) struct FrontChannel {
    /// The browser's `/login` path (the re-login target, and the base of the ENT's
    /// validation endpoints).
    pub login_path: String,
    /// The browser's `/login` query: a re-login repeats it (`gateway`, `method` and the
    /// ENT's own parameters must survive a retry).
    pub login_query: Option<String>,
    /// The login asked for `renew`: a forced primary authentication.
    pub renew: bool,
    /// The `/login` was a POST (a credentials form, or a bare POST some ENTs answer
    /// from single sign-on: `pin::front::primary_login` asks the ENT which).
    pub posted: bool,
    pub host: Option<HeaderValue>,
    /// The browser's cookies (joined): a server-side re-roll carries them to the ENT.
    pub cookie: Option<String>,
    /// What a re-roll repeats of the browser's request besides cookies (the ENT may
    /// tie its single sign-on to them).
    pub browser_headers: Vec<(http::HeaderName, HeaderValue)>,
    pub conn: ConnInfo,
    pub started: Instant,
    pub now: u64,
}

/// What checking a ticket redirect did, for the login's summary.
pub(super) struct Checked {
    pub response: Response<ProxyBody>,
    pub action: FrontAction,
    pub retries: u32,
    pub principal: Option<Pseudonym>,
    pub details: Vec<TraceEvent>,
}

impl CasExchange {
    pub(super) async fn login(
        &self,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Handled {
        let now = self.now_ms();
        let cookie = self.cookies.open(req.headers(), now);
        let query = req.uri().query();
        let renew = query.is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "renew" && v != "false")
        });
        let front = FrontChannel {
            login_path: req.uri().path().to_owned(),
            login_query: query.map(str::to_owned),
            renew,
            posted: super::is_post(&req),
            // HTTP/2 names the host in `:authority`: bonenfant's own requests to the
            // ENT need it as a `Host` (else every early validation fails locally).
            host: req.headers().get(HOST).cloned().or_else(|| {
                let authority = req.uri().authority()?;
                HeaderValue::from_str(authority.as_str()).ok()
            }),
            cookie: browser_cookies(req.headers()),
            browser_headers: [USER_AGENT, ACCEPT_LANGUAGE]
                .into_iter()
                .filter_map(|name| Some((name.clone(), req.headers().get(&name)?.clone())))
                .collect(),
            conn,
            started,
            now,
        };
        // bonenfant builds redirects to this path only when it pins: then a path it
        // could not send a browser back to safely is refused before anything happens.
        if self.config.pin.mode != PinMode::Observe
            && canonical_login_path(&front.login_path, self.config.cas_prefix.as_deref()).is_none()
        {
            let code = Code::ProxyLoginPath;
            return self.refuse(code.status(), code, Some(Endpoint::Login), started);
        }
        let renew_service = renew.then(|| login_service(query)).flatten();
        let upstream = match self
            .forward_streaming(req.map(ProxyBody::from_client), &conn)
            .await
        {
            Ok(response) => response,
            Err(refusal) => return refusal.handled(Some(Endpoint::Login), started),
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
                self.ticket_redirect(upstream, redirect, cookie, front)
                    .await
            }
            Some(Err(refused)) => {
                // The ENT's own redirect: not ours to block, but it carries a ticket
                // the gate refuses, so nothing is bound and the DSI hears of it.
                let status = upstream.status().as_u16();
                Handled::new(
                    self.stream_back(upstream),
                    TraceEvent::Rejected(events::Rejected {
                        code: refused.code(),
                        endpoint: Some(Endpoint::Login),
                        status,
                        latency_ms: LatencyMs(started.elapsed()),
                    }),
                )
            }
            None => {
                let mut response = self.stream_back(upstream);
                if let Some(service) = renew_service {
                    self.remember_renew(&mut response, cookie, service, now)
                        .await;
                }
                Handled::passthrough(response, Some(Endpoint::Login), started)
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
        let remembered = self
            .store
            .update_session(&session.id, |state| {
                let mut state = state.unwrap_or_default();
                state.renew_for = Some(service.clone());
                state.updated_at_ms = now;
                (SessionChange::Put(state), ())
            })
            .await;
        if remembered.is_ok() {
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
    ) -> Handled {
        let now = front.now;
        let session = SessionCookie::fresh(now);
        let mut state = match &cookie {
            Some(old) => self.rotate_session(old, &session).await,
            None => None,
        };
        let renewed = plan::renewed_login(front.renew, state.as_mut(), &redirect.service);
        let passing = plan::passes_once(state.as_mut(), &redirect.service);
        if renewed || passing {
            if let Some(state) = &state {
                let _ = self.store.put_session(&session.id, state.clone()).await;
            }
        }
        let binding = TicketBinding {
            session: Some(session.id),
            service: redirect.service.clone(),
            issued_at_ms: now,
        };
        let bound = match self
            .store
            .bind_ticket(&self.store.ticket_key(&redirect.ticket), binding)
            .await
        {
            Ok(bound) => bound,
            Err(e) => {
                tracing::warn!(code = %e.code(), "could not bind a ticket to its session");
                false
            }
        };
        let expected = self.inspector.establishment.expected(&redirect.service);
        let checked = if plan::checks_front_channel(
            self.config.pin.mode,
            expected.as_ref(),
            renewed || passing,
            bound,
        ) {
            self.check_ticket(upstream, redirect, &session, state, &front)
                .await
        } else {
            Checked {
                response: self.stream_back(upstream),
                action: FrontAction::Forwarded,
                retries: 0,
                principal: None,
                details: Vec::new(),
            }
        };
        let mut response = checked.response;
        self.set_cookie(&mut response, &session, now);
        let summary = TraceEvent::LoginRedirect(events::LoginRedirect {
            uai_expected: expected,
            session: self.pseudo_session(Some(&session.id)),
            bound,
            action: checked.action,
            retries: checked.retries,
            principal: checked.principal,
            latency_ms: LatencyMs(front.started.elapsed()),
        });
        Handled::new(response, summary).with_details(checked.details)
    }

    /// Moves a session's state to a fresh id: a cookie planted before authentication
    /// must not see what the session learns after (session fixation, T44).
    async fn rotate_session(
        &self,
        old: &SessionCookie,
        new: &SessionCookie,
    ) -> Option<SessionState> {
        // Taken atomically: two requests carrying one old cookie cannot both inherit it.
        let taken = self
            .store
            .update_session(&old.id, |state| (SessionChange::Drop, state))
            .await
            .ok()?
            .output?;
        let _ = self.store.put_session(&new.id, taken.clone()).await;
        Some(taken)
    }

    pub(super) fn set_cookie(
        &self,
        response: &mut Response<ProxyBody>,
        session: &SessionCookie,
        now: u64,
    ) {
        response
            .headers_mut()
            .append(SET_COOKIE, self.cookies.seal(session, now));
    }
}

/// Every `Cookie` header of a request, joined (HTTP/2 sends one per cookie).
fn browser_cookies(headers: &http::HeaderMap) -> Option<String> {
    let joined: Vec<&str> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!joined.is_empty()).then(|| joined.join("; "))
}

/// The ENT's login path as bonenfant may send a browser back to it: `/login` under the
/// CAS prefix (or any plain path ending in `/login` without one), made only of plain
/// segments. A path with `//`, `\`, `%` (encoded slashes or dots), `..` or `;` could
/// be read by a browser, or by a front server that normalises paths, as another place
/// (threat T16): it is refused.
pub(super) fn canonical_login_path<'p>(path: &'p str, cas_prefix: Option<&str>) -> Option<&'p str> {
    let plain = path.starts_with('/')
        && !path.contains("//")
        && !path.contains(['\\', '%', ';'])
        && !path
            .split('/')
            .any(|segment| segment == ".." || segment == ".");
    let under_prefix = cas_prefix.map_or(true, |prefix| path == format!("{prefix}/login"));
    (plain && under_prefix && path.ends_with("/login")).then_some(path)
}
