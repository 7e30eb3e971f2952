//! The retry and rewrite strategies on the front channel: bonenfant validates the
//! redirect's ticket itself, asks `pin::front::plan_front` what to do, and carries the
//! plan out: the session written, the stash filled for Pronote's validation, and the
//! browser let through, sent back to `/login`, asked to choose, or told it gave up.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::code::Code;

use super::control::Label;
use super::forward::EntRefusal;
use super::front::{Checked, FrontChannel};
use super::reroll;
use super::CasExchange;
use crate::cas::{
    self, Failure, LoginRedirect, Outcome, ParseLimits, ParseOptions, ResponseFormat,
};
use crate::events::{self, FrontAction, LatencyMs, Pseudonym, TraceEvent};
use crate::pages;
use crate::pin::front::{self as plan, EarlyValidation, FrontEvent, FrontResponse, FrontTicket};
use crate::proxy::body::ProxyBody;
use crate::proxy::error;
use crate::pupil::PupilKey;
use crate::session::cookie::SessionCookie;
use crate::session::{
    SessionState, SessionStore, StashedValidation, StoreError, TicketBinding, TicketKey,
};

/// Re-rolls in flight across the process: each holds an ENT login and validation
/// open, so their number is bounded whatever the number of parents (the ENT's load).
/// Past it, a login falls back to browser-driven re-login.
pub(super) const MAX_CONCURRENT_REROLLS: usize = 64;

/// Browsers give up after about 20 redirects in one navigation (Safari 16), Pronote's
/// own included: a browser-driven re-login breaks the chain with a page that reloads
/// itself after this many.
const MAX_REDIRECTS_PER_NAVIGATION: u32 = 12;

/// One ticket redirect of the ENT being checked: the first, streamed to the browser
/// unchanged when it is let through, or one bonenfant asked for itself (re-roll).
enum EntAnswer {
    First(Response<Incoming>),
    Reroll { location: String },
}

impl CasExchange {
    /// Validates a ticket redirect's ticket now and carries out the plan for it. When
    /// the plan is a re-login, bonenfant asks the ENT's `/login` again itself, with the
    /// browser's cookies as the ENT has updated them (its single sign-on makes it
    /// silent), until the ENT names the intended child or the budget runs out: the
    /// browser sees one redirect whatever the number of re-rolls.
    pub(super) async fn check_ticket(
        &self,
        upstream: Response<Incoming>,
        first: LoginRedirect,
        session: &SessionCookie,
        state: Option<SessionState>,
        front: &FrontChannel,
    ) -> Checked {
        let mut jar = reroll::EntCookies::from_request(front.cookie.as_deref());
        let mut set_cookies: Vec<HeaderValue> = upstream
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        jar.absorb(&set_cookies);
        let permit = Arc::clone(&self.rerolls).try_acquire_owned().ok();
        let mut answer = EntAnswer::First(upstream);
        let mut redirect = first;
        // The current ticket's store key, once per ticket (a keyed digest per store key)
        // for its take, its stash and, after a re-roll, the next ticket's binding.
        let mut ticket_key = self.store.ticket_key(&redirect.ticket);
        let mut state = state.unwrap_or_default();
        let mut details = Vec::new();
        let checked = loop {
            // Ours now: Pronote's validation of this ticket is answered from the stash,
            // so the ENT is asked about it exactly once (I1d).
            let _ = self.store.spend_ticket(&ticket_key).await;
            let early = self.early_validation(&redirect, front).await;
            let ticket = FrontTicket {
                service: &redirect.service,
                session: session.id,
                posted: front.posted,
                now_ms: self.now_ms(),
            };
            let plan = plan::plan_front(
                &self.config.pin,
                self.config.answer,
                &self.inspector,
                ticket,
                early,
                state,
            );
            if let Some(entry) = plan.stash.clone() {
                self.stash(&ticket_key, entry).await;
            }
            let principal = self.pseudo_principal(plan.principal.as_deref());
            details.extend(self.front_details(&plan, principal.as_ref(), session, front));
            state = plan.session;
            if plan.response == FrontResponse::Relogin && permit.is_some() {
                let reroll = self.reroll(front, &redirect.service, &jar).await;
                if let Some((location, cookies)) = reroll {
                    if let Some(Ok(next)) = cas::login_redirect(&location) {
                        if next.service == redirect.service {
                            // Bound like the first ticket, so that taking it below leaves
                            // the tombstone that refuses it on any other path (I1d).
                            let binding = TicketBinding {
                                session: Some(session.id),
                                service: next.service.clone(),
                                issued_at_ms: self.now_ms(),
                            };
                            ticket_key = self.store.ticket_key(&next.ticket);
                            let _ = self.store.bind_ticket(&ticket_key, binding).await;
                            jar.absorb(&cookies);
                            set_cookies.extend(cookies);
                            answer = EntAnswer::Reroll { location };
                            redirect = next;
                            continue;
                        }
                    }
                }
                // The ENT answered otherwise (a form, another host): the browser goes
                // itself, as the ENT's own flow wants.
            }
            let (response, action) = match (plan.response, answer) {
                (FrontResponse::Forward, answer) => {
                    let action = if plan.stash.is_some() {
                        FrontAction::Delivered
                    } else {
                        FrontAction::Forwarded
                    };
                    let response = match answer {
                        EntAnswer::First(upstream) => self.stream_back(upstream),
                        EntAnswer::Reroll { location } => with_cookies(
                            super::redirect(StatusCode::FOUND, &location),
                            &set_cookies,
                        ),
                    };
                    (response, action)
                }
                (FrontResponse::Relogin, _) => {
                    let retries = plan.retries + 1;
                    let page = if retries % MAX_REDIRECTS_PER_NAVIGATION == 0 {
                        searching_page(&self.config.brand, front, &redirect.service)
                    } else {
                        relogin(front, &redirect.service)
                    };
                    (with_cookies(page, &set_cookies), FrontAction::Relogin)
                }
                (FrontResponse::Ask, _) => {
                    // A redirect, not the page itself: reloading the chooser must never
                    // post the parent's password again.
                    let chooser =
                        pages::chooser_href(&self.config.control_prefix, &redirect.service);
                    (
                        with_cookies(
                            super::redirect(StatusCode::SEE_OTHER, &chooser),
                            &set_cookies,
                        ),
                        FrontAction::Chooser,
                    )
                }
                (FrontResponse::GiveUp, _) => {
                    let page = self.gave_up_page(&state, session, front, &redirect.service);
                    (with_cookies(page, &set_cookies), FrontAction::GaveUp)
                }
            };
            let _ = self.store.put_session(&session.id, state).await;
            break Checked {
                response,
                action,
                retries: plan.retries,
                principal,
                details,
            };
        };
        checked
    }

    /// The trace's details of one plan: retries, a give-up, refused rewrites.
    fn front_details(
        &self,
        plan: &plan::FrontPlan,
        principal: Option<&Pseudonym>,
        session: &SessionCookie,
        front: &FrontChannel,
    ) -> Vec<TraceEvent> {
        let session_pseudo = self.pseudo_session(Some(&session.id));
        plan.events
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
                    principal: principal.cloned(),
                    pupil: self.pseudo_pupil(pupil.as_ref()),
                    session: session_pseudo.clone(),
                    latency_ms: LatencyMs(front.started.elapsed()),
                }),
                FrontEvent::GaveUp { retries, reason } => {
                    TraceEvent::RetryGaveUp(events::RetryGaveUp {
                        retries: *retries,
                        reason: reason.as_str(),
                        uai_expected: plan.expected.clone(),
                        principal: principal.cloned(),
                        session: session_pseudo.clone(),
                        latency_ms: LatencyMs(front.started.elapsed()),
                    })
                }
                FrontEvent::RewriteRefused(refusal) => {
                    TraceEvent::RewriteRefused(events::RewriteRefused {
                        code: refusal.code(),
                        principal: principal.cloned(),
                        session: session_pseudo.clone(),
                    })
                }
            })
            .collect()
    }

    /// Asks the ENT's `/login` again, as the browser would, with the browser's cookies
    /// as the ENT left them. Returns the ENT's `Location` and `Set-Cookie`s when it
    /// answered with a redirect, `None` otherwise (the caller falls back).
    async fn reroll(
        &self,
        front: &FrontChannel,
        service: &str,
        jar: &reroll::EntCookies,
    ) -> Option<(String, Vec<HeaderValue>)> {
        let target = relogin_target(front, service);
        let mut builder = Request::get(target);
        if let Some(host) = &front.host {
            builder = builder.header(HOST, host.clone());
        }
        if let Some(cookie) = jar.header() {
            builder = builder.header(COOKIE, cookie);
        }
        for (name, value) in &front.browser_headers {
            builder = builder.header(name, value.clone());
        }
        let req = builder.body(ProxyBody::empty()).ok()?;
        let req = self
            .passthrough
            .policy()
            .upstream_request(req, &front.conn)
            .ok()?;
        let (parts, _) = match self
            .passthrough
            .upstream()
            .fetch(req, self.config.limits.max_validation_body)
            .await
        {
            Ok(answer) => answer,
            Err(failed) => {
                tracing::warn!(code = %failed.code(), "re-roll at the ENT failed; the browser goes itself");
                return None;
            }
        };
        if !matches!(parts.status, StatusCode::FOUND | StatusCode::SEE_OTHER) {
            return None;
        }
        let location = parts.headers.get(LOCATION)?.to_str().ok()?.to_owned();
        let cookies = parts.headers.get_all(SET_COOKIE).iter().cloned().collect();
        Some((location, cookies))
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
    async fn stash(&self, ticket: &TicketKey, entry: StashedValidation) {
        let stashed = match self.store.stash(ticket, entry.clone()).await {
            Err(StoreError::TooLarge { .. }) if entry.ent_answer.is_some() => {
                let parsed = StashedValidation {
                    ent_answer: None,
                    ..entry
                };
                self.store.stash(ticket, parsed).await
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
fn with_cookies(mut response: Response<ProxyBody>, cookies: &[HeaderValue]) -> Response<ProxyBody> {
    for cookie in cookies {
        response.headers_mut().append(SET_COOKIE, cookie.clone());
    }
    response
}

/// The ENT's `/login` again, as the browser first came, for the service the ticket was
/// for. Every other parameter of the first login stays: dropping `gateway` would let
/// the ENT show a login form to a request that must never get one. The path is the
/// canonical login path checked when the login came in, never anything else.
fn relogin_target(front: &FrontChannel, service: &str) -> String {
    login_again(&front.login_path, front.login_query.as_deref(), service)
}

fn login_again(login_path: &str, login_query: Option<&str>, service: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("service", service);
    if let Some(first) = login_query {
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
    format!("{login_path}?{}", query.finish())
}

/// Sends the browser back to the ENT's `/login` (browser-driven re-login).
fn relogin(front: &FrontChannel, service: &str) -> Response<ProxyBody> {
    super::redirect(StatusCode::FOUND, &relogin_target(front, service))
}

/// Ends a long chain of redirects with a page that starts a new navigation to the
/// ENT's `/login` by itself (no script needed), so no browser stops on "too many
/// redirects".
fn searching_page(
    brand: &pages::Brand,
    front: &FrontChannel,
    service: &str,
) -> Response<ProxyBody> {
    error::html(
        StatusCode::OK,
        pages::searching(brand, &relogin_target(front, service)),
    )
}

impl CasExchange {
    /// The first name of the child this session means for `service` (the pin, else the
    /// only child known in the service's establishment; from the directory when it
    /// names the child, else from what the ENT asserted in this session), and how many
    /// children are known there.
    fn intended_child(&self, state: &SessionState, service: &str) -> (Option<String>, usize) {
        let Some(expected) = self.inspector.establishment.expected(service) else {
            return (None, 0);
        };
        let known: Vec<PupilKey> = self
            .known_children(state)
            .into_iter()
            .filter(|key| key.uai == expected)
            .collect();
        let intended = match &state.pin {
            Some(pin) if pin.uai == expected => pin,
            _ if known.len() == 1 => &known[0],
            _ => return (None, known.len()),
        };
        let index = self.inspector.index.load();
        let name = Label::of(index.as_deref(), Some(state), intended)
            .first_name
            .map(str::to_owned);
        (name, known.len())
    }

    /// The retry strategy ran out: tell the parent which child it looked for, and let
    /// them go on unpinned once, try again, or choose.
    fn gave_up_page(
        &self,
        state: &SessionState,
        session: &SessionCookie,
        front: &FrontChannel,
        service: &str,
    ) -> Response<ProxyBody> {
        let (child, known_here) = self.intended_child(state, service);
        let choice = |choice: &str| {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("choice", choice)
                .append_pair("service", service)
                .append_pair("login", &front.login_path)
                .append_pair("csrf", &session.csrf_token())
                .finish();
            format!("{}/give-up?{query}", self.config.control_prefix)
        };
        // The chooser is a way out only when it has another child of this collège to
        // offer: listing just the child the ENT would not give helps nobody.
        let choose = pages::chooser_href(&self.config.control_prefix, service);
        let choose = (known_here > 1).then_some(choose.as_str());
        let (again, go_on) = (choice("retry"), choice("continue"));
        error::html(
            StatusCode::OK,
            pages::give_up(
                &self.config.brand,
                &pages::GiveUp {
                    child: child.as_deref(),
                    retry_href: Some(&again),
                    continue_href: Some(&go_on),
                    choose_href: choose,
                },
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (phpCAS interop): a retried gateway login lost `gateway=true`, so if
    /// the ENT's single sign-on ended meanwhile, it showed a login form to a request that
    /// must never get one. The re-login repeats the first login's query, the ENT's own
    /// parameters included, but not what names another target or ticket, nor `renew`.
    #[test]
    fn retry_relogin_keeps_gateway_and_the_ents_own_parameters() {
        let again = login_again(
            "/cas/login",
            Some("service=https%3A%2F%2Fold%2F&gateway=true&renew=false&TARGET=https%3A%2F%2Felsewhere%2F&ticket=ST-1&SAMLart=x&locale=fr"),
            "https://0330202b.index-education.net/pronote/parent.html",
        );
        assert_eq!(
            again,
            "/cas/login?service=https%3A%2F%2F0330202b.index-education.net%2Fpronote%2Fparent.html&gateway=true&locale=fr"
        );
    }
}
