//! The retry and rewrite strategies on the front channel: bonenfant validates the
//! redirect's ticket itself, asks `pin::front::plan_front` what to do, and carries the
//! plan out: the session written, the stash filled for Pronote's validation, and the
//! browser let through, sent back to `/login`, asked to choose, or told it gave up.

use crate::code::Code;
use bytes::Bytes;
use http::header::{HOST, LOCATION, SET_COOKIE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::forward::EntRefusal;
use super::front::{Checked, FrontChannel};
use super::CasExchange;
use crate::cas::{
    self, Failure, LoginRedirect, Outcome, ParseLimits, ParseOptions, ResponseFormat,
};
use crate::events::{self, FrontAction, LatencyMs, TraceEvent};
use crate::pages;
use crate::pin::front::{self as plan, EarlyValidation, FrontEvent, FrontResponse, FrontTicket};
use crate::proxy::body::ProxyBody;
use crate::proxy::error;
use crate::session::cookie::SessionCookie;
use crate::session::{SessionState, SessionStore, StashedValidation, StoreError};

impl CasExchange {
    /// Validates a ticket redirect's ticket now and carries out the plan for it.
    pub(super) async fn check_ticket(
        &self,
        upstream: Response<Incoming>,
        redirect: &LoginRedirect,
        session: &SessionCookie,
        state: Option<SessionState>,
        front: &FrontChannel,
    ) -> Checked {
        // Ours now: Pronote's validation of this ticket is answered from the stash,
        // so the ENT is asked about it exactly once (I1d).
        let _ = self.store.take_ticket(&redirect.ticket).await;
        let early = self.early_validation(redirect, front).await;
        let ticket = FrontTicket {
            service: &redirect.service,
            session: session.id,
            primary: front.primary,
            now_ms: front.now,
        };
        let plan = plan::plan_front(
            &self.config.pin,
            self.config.answer,
            &self.inspector,
            ticket,
            early,
            state.unwrap_or_default(),
        );
        if let Some(entry) = plan.stash.clone() {
            self.stash(redirect, entry).await;
        }
        let principal = self.pseudo_principal(plan.principal.as_deref());
        let session_pseudo = self.pseudo_session(Some(&session.id));
        let details = plan
            .events
            .iter()
            .map(|event| match event {
                FrontEvent::Retry {
                    attempt,
                    judgement,
                    uai_asserted,
                    pupil,
                } => TraceEvent::Retry(events::Retry {
                    attempt: *attempt,
                    verdict: judgement.verdict,
                    rule: judgement.rule,
                    uai_expected: plan.expected.clone(),
                    uai_asserted: uai_asserted.clone(),
                    principal: principal.clone(),
                    pupil: self.pseudo_pupil(pupil.as_ref()),
                    session: session_pseudo.clone(),
                    latency_ms: LatencyMs(front.started.elapsed()),
                }),
                FrontEvent::GaveUp { retries, reason } => {
                    TraceEvent::RetryGaveUp(events::RetryGaveUp {
                        retries: *retries,
                        reason: reason.as_str(),
                        uai_expected: plan.expected.clone(),
                        principal: principal.clone(),
                        session: session_pseudo.clone(),
                        latency_ms: LatencyMs(front.started.elapsed()),
                    })
                }
                FrontEvent::RewriteRefused(refusal) => {
                    TraceEvent::RewriteRefused(events::RewriteRefused {
                        code: refusal.code(),
                        principal: principal.clone(),
                        session: session_pseudo.clone(),
                    })
                }
            })
            .collect();
        let (response, action) = match plan.response {
            FrontResponse::Forward if plan.stash.is_some() => {
                (self.stream_back(upstream), FrontAction::Delivered)
            }
            FrontResponse::Forward => (self.stream_back(upstream), FrontAction::Forwarded),
            FrontResponse::Relogin => (
                // The refused ticket was validated by us; nobody else may use it.
                with_upstream_cookies(relogin(front, &redirect.service), &upstream),
                FrontAction::Relogin,
            ),
            FrontResponse::Ask => {
                let (html, _) = self.chooser_html(
                    Some(&plan.session),
                    Some(session),
                    &redirect.service,
                    plan.expected.as_ref(),
                );
                (
                    with_upstream_cookies(error::html(StatusCode::OK, html), &upstream),
                    FrontAction::Chooser,
                )
            }
            FrontResponse::GiveUp => {
                let location = upstream
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let page = gave_up_page(&location, &self.config.control_prefix, &redirect.service);
                (with_upstream_cookies(page, &upstream), FrontAction::GaveUp)
            }
        };
        let _ = self.store.put_session(&session.id, plan.session).await;
        Checked {
            response,
            action,
            retries: plan.retries,
            principal,
            details,
        }
    }

    /// bonenfant validates a front-channel ticket itself (retry strategy), with the
    /// same service, beside the `/login` path: at `p3/serviceValidate`, because many
    /// ENTs (Apereo CAS by default) release attributes only over CAS 3 and Pronote needs
    /// them; then at `serviceValidate` if the ENT answered 404 there (no such endpoint:
    /// CAS never read the ticket). Asked afresh for every ticket, so one 404 (an ENT
    /// being redeployed, an odd login path) changes nothing for the next.
    async fn early_validation(
        &self,
        redirect: &LoginRedirect,
        front: &FrontChannel,
    ) -> EarlyValidation {
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
        let failed = |code: Code| EarlyValidation {
            outcome: Outcome::Failure(Failure::internal(code.as_str())),
            ent_answer: None,
        };
        let body = match answer {
            Ok((_, body)) => body,
            Err(refused) => {
                tracing::warn!(code = %refused.code, "early validation failed upstream");
                return failed(refused.code);
            }
        };
        let options = ParseOptions {
            limits: ParseLimits {
                max_bytes: self.config.limits.max_validation_body,
                ..ParseLimits::default()
            },
            now_unix: Some(front.now / 1000),
            service: Some(&redirect.service),
        };
        match cas::parse_response(ResponseFormat::Xml, &body, &options) {
            Ok(outcome) => EarlyValidation {
                outcome,
                ent_answer: String::from_utf8(body.to_vec()).ok(),
            },
            Err(refused) => {
                tracing::warn!(code = %refused.code(), "early validation answer refused");
                failed(refused.code())
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
            code: Code::ProxyInternal,
            failure: Failure::internal("could not build the validation request"),
            status: None,
        })?;
        self.ask_ent(req, &front.conn).await
    }

    /// Keeps an early validation for Pronote's. The ENT's bytes are a courtesy: an
    /// answer too large to keep twice is kept parsed.
    async fn stash(&self, redirect: &LoginRedirect, entry: StashedValidation) {
        let stashed = match self.store.stash(&redirect.ticket, entry.clone()).await {
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
            tracing::warn!(code = %e.code(), "could not stash an early validation");
        }
    }
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
    super::redirect(
        StatusCode::FOUND,
        &format!("{}?{}", front.login_path, query.finish()),
    )
}

/// The retry strategy ran out: tell the parent, and let them go on or choose.
fn gave_up_page(location: &str, control_prefix: &str, service: &str) -> Response<ProxyBody> {
    let choose = pages::chooser_href(control_prefix, service);
    error::html(StatusCode::OK, pages::gave_up(location, &choose))
}
