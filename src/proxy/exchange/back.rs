//! The back channel: Pronote validates a ticket. bonenfant answers from its stash (a
//! ticket it validated early), or asks the ENT once, parses the answer strictly, judges
//! it, and always ends in one `validate` summary. Failures are well-formed CAS failures,
//! never a success (I1c).

use std::time::Instant;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::{CasExchange, Handled};
use crate::cas::{
    self, AnswerContext, Assertion, Endpoint, Failure, Outcome, ParseLimits, ParseOptions,
    ResponseFormat, ValidationRequest,
};
use crate::code::Code;
use crate::config::AnswerMode;
use crate::events::{self, LatencyMs, PinOutcome, Pseudonym, TraceEvent};
use crate::pin::front::{self as plan, StashRefusal};
use crate::pin::{self, Inspection};
use crate::proxy::body::ProxyBody;
use crate::proxy::ConnInfo;
use crate::pupil::{PupilKey, Uai};
use crate::session::{
    SessionChange, SessionId, SessionStore, StashedValidation, TicketBinding, TicketKey,
};
use crate::verdict::{rule, Judgement, Verdict};

/// The fields of one validation's summary event, filled as the phase goes.
pub(super) struct ValidationSummary {
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
    pub error: Option<Code>,
}

impl ValidationSummary {
    pub fn new(endpoint: Endpoint, started: Instant) -> Self {
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

    /// The `validate` event, with the pupil and session already pseudonymised.
    pub fn into_event(self, pupil: Option<Pseudonym>, session: Option<Pseudonym>) -> TraceEvent {
        let judgement = self.judgement.unwrap_or_else(Judgement::no_assertion);
        TraceEvent::Validate(events::Validate {
            verdict: judgement.verdict,
            rule: judgement.rule,
            endpoint: self.endpoint,
            uai_expected: self.expected,
            uai_asserted: self.asserted,
            pin: self.pin,
            retries: self.retries,
            latency_ms: LatencyMs(self.started.elapsed()),
            principal: self.principal,
            pupil,
            session,
            error: self.error,
        })
    }
}

impl CasExchange {
    pub(super) async fn validation(
        &self,
        endpoint: Endpoint,
        fallback_format: ResponseFormat,
        req: Request<Incoming>,
        conn: ConnInfo,
        started: Instant,
    ) -> Handled {
        let mut summary = ValidationSummary::new(endpoint, started);
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
                return self.fail(
                    summary,
                    fallback_format,
                    "",
                    Failure::new(refused.code().cas_failure(), refused.to_string()),
                );
            }
        };
        // Whatever the outcome: failures count per establishment too.
        summary.expected = self.inspector.establishment.expected(&request.service);
        // A store outage degrades to observing, never to refusing logins: the ticket goes
        // to the ENT, which refuses it if bonenfant already validated it (a stash it can
        // no longer read), so no identity is made up either way.
        // The ticket's store key, once for every call below (a keyed digest each).
        let ticket = self.store.ticket_key(&request.ticket);
        match self.store.take_stash(&ticket).await {
            Ok(Some(stashed)) => {
                return self
                    .answer_stashed(summary, &request, &ticket, stashed)
                    .await
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                code = %e.code(),
                "session store unavailable; validation forwarded to the ENT"
            ),
        }
        let binding = match self.store.take_ticket(&ticket).await {
            Ok(binding) => binding,
            Err(e) => {
                tracing::warn!(
                    code = %e.code(),
                    "session store unavailable; validation uncorrelated"
                );
                None
            }
        };
        if binding.is_none() && self.config.strict_correlation {
            summary.error = Some(Code::ProxyUncorrelatedTicket);
            return self.fail(
                summary,
                request.format,
                &request.service,
                Failure::new("INVALID_TICKET", "ticket not issued through this proxy"),
            );
        }
        if binding.is_none() && !self.claim_unbound(&request, &ticket).await {
            summary.error = Some(Code::ProxyTicketReplayed);
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
                if refused.code() == Code::CasParseAmbiguousPrincipal {
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
        let upstream_type = answer_parts
            .headers
            .get(CONTENT_TYPE)
            .filter(|_| verbatim.is_some());
        match outcome {
            Outcome::Failure(failure) => {
                summary.error = Some(Code::of_cas_failure(&failure.code));
                let body = match verbatim {
                    Some(bytes) => bytes.clone(),
                    None => Bytes::from(cas::serialize(
                        &Outcome::Failure(failure),
                        request.format,
                        &self.answer_context(&request.service),
                    )),
                };
                self.validated(summary, cas_response(request.format, body, upstream_type))
            }
            Outcome::Success(assertion) => {
                let inspection = self
                    .observe_success(&mut summary, &request, &ticket, &assertion, session)
                    .await;
                let body = pin::success_answer(
                    &assertion,
                    request.format,
                    &self.answer_context(&request.service),
                    verbatim.map(|b| b.as_ref()),
                );
                summary.record(&inspection);
                let response = cas_response(request.format, Bytes::from(body), upstream_type);
                self.validated(summary, response)
            }
        }
    }

    /// Claims a ticket no front channel bound before it goes upstream. The claim fails
    /// for a ticket taken less than the ticket TTL ago — a replay, or a ticket the retry
    /// strategy validated itself — so the ENT is never asked twice about one ticket
    /// (I1d). A store outage lets the validation through, uncorrelated, as
    /// `take_ticket`'s does: the ENT still refuses a spent ticket.
    async fn claim_unbound(&self, request: &ValidationRequest, ticket: &TicketKey) -> bool {
        let claim = TicketBinding {
            session: None,
            service: request.service.clone(),
            issued_at_ms: self.now_ms(),
        };
        match self.store.bind_ticket(ticket, claim).await {
            Ok(true) => {
                // Taken at once: the tombstone it leaves is what refuses a replay.
                let _ = self.store.spend_ticket(ticket).await;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(code = %e.code(), "could not claim an unbound ticket");
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
        ticket: &TicketKey,
        stashed: StashedValidation,
    ) -> Handled {
        summary.session = stashed.session;
        summary.pin = stashed.pin;
        summary.retries = stashed.retries;
        if let Err(refused) = plan::check_stashed(&stashed, &request.service, request.renew) {
            let (code, failure) = match refused {
                StashRefusal::RenewNotPrimary => (
                    Code::ProxyRenewNotPrimary,
                    Failure::new(
                        "INVALID_TICKET",
                        "renew requested, but the ticket came from single sign-on",
                    ),
                ),
                StashRefusal::OtherService => (
                    Code::ProxyStashServiceMismatch,
                    Failure::new("INVALID_SERVICE", "ticket was issued for another service"),
                ),
            };
            summary.error = Some(code);
            return self.fail(summary, request.format, &request.service, failure);
        }
        let verbatim = plan::stashed_bytes(&stashed, self.config.answer, request.format)
            .map(|bytes| Bytes::from(bytes.to_owned()));
        match stashed.outcome {
            Outcome::Failure(failure) => {
                summary.error = Some(Code::of_cas_failure(&failure.code));
                match verbatim {
                    Some(body) => self.validated(summary, cas_response(request.format, body, None)),
                    None => self.fail(summary, request.format, &request.service, failure),
                }
            }
            Outcome::Success(assertion) => {
                let inspection = self
                    .observe_success(&mut summary, request, ticket, &assertion, stashed.session)
                    .await;
                let body = pin::success_answer(
                    &assertion,
                    request.format,
                    &self.answer_context(&request.service),
                    verbatim.as_deref(),
                );
                summary.record(&inspection);
                self.validated(
                    summary,
                    cas_response(request.format, Bytes::from(body), None),
                )
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
        ticket: &TicketKey,
        assertion: &Assertion,
        session: Option<SessionId>,
    ) -> Inspection {
        let now = self.now_ms();
        let pin_outcome = summary.pin;
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
                let place = first
                    .expected
                    .as_ref()
                    .map_or(request.service.as_str(), |uai| uai.as_str());
                let key = [principal.as_str(), "|", place].concat();
                let swapped = self.store.swap_last_pupil(&key, pupil.clone(), now).await;
                plan::flip_from(
                    swapped.ok().flatten(),
                    pupil,
                    now,
                    self.config.pin.flip_window,
                )
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
            // Applied to the state as it is now, not the copy read above: a pin or a
            // login on another instance meanwhile is kept. A session the store no longer
            // holds starts afresh from this assertion.
            let _ = self
                .store
                .update_session(&id, |state| {
                    let mut state = state.unwrap_or_default();
                    pin::remember(
                        &mut state,
                        assertion,
                        &request.service,
                        &inspection,
                        pin::rewrite_sources(&self.config.pin, pin_outcome),
                        now,
                    );
                    (SessionChange::Put(state), ())
                })
                .await;
            let _ = self.store.remember_validated(ticket, id).await;
        }
        summary.expected = inspection.expected.clone();
        inspection
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

    fn answer_context<'a>(&self, service: &'a str) -> AnswerContext<'a> {
        AnswerContext {
            service,
            now_unix: self.now_ms() / 1000,
        }
    }

    /// A well-formed CAS failure for Pronote (I1c), with the validation's summary.
    fn fail(
        &self,
        summary: ValidationSummary,
        format: ResponseFormat,
        service: &str,
        failure: Failure,
    ) -> Handled {
        let body = cas::serialize(
            &Outcome::Failure(failure),
            format,
            &self.answer_context(service),
        );
        self.validated(summary, cas_response(format, Bytes::from(body), None))
    }

    fn validated(&self, summary: ValidationSummary, response: Response<ProxyBody>) -> Handled {
        let pupil = self.pseudo_pupil(summary.pupil.as_ref());
        let session = self.pseudo_session(summary.session.as_ref());
        Handled::new(response, summary.into_event(pupil, session))
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
pub(super) fn cas_response(
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
