//! The front channel's identity decisions, as pure functions of (settings, what the ENT
//! asserted, the browser session, the clock): whether a login is checked at all, what
//! happens to an early-validated ticket, whether a stashed answer may go to Pronote, and
//! which earlier pupil makes a flip. `proxy::exchange` carries the returned plans out
//! (store writes, the answer, the trace) and decides none of this itself.

use crate::cas::{AuthMeta, Outcome, ResponseFormat};
use crate::config::{AnswerMode, PinMode, PinSettings, SameEstablishment};
use crate::events::PinOutcome;
use crate::pupil::{PupilKey, Uai};
use crate::session::clock::duration_ms;
use crate::session::{RetryProgress, SessionId, SessionState, StashedValidation};
use crate::verdict::{rule, Judgement, Verdict};

use super::rewrite::RewriteRefusal;
use super::{decide_front, delivers_the_ents_own, Attempts, FrontDecision, Inspection, Inspector};

/// Whether a `/login` answered with a ticket is a renewed (forced primary) login. The
/// credentials POST after a `renew=true` form carries no `renew` of its own, so the
/// session remembers it until the ticket comes; this consumes that memory.
pub fn renewed_login(renew_asked: bool, state: Option<&mut SessionState>, service: &str) -> bool {
    let remembered = state
        .and_then(|s| s.renew_for.take())
        .is_some_and(|for_service| for_service == service);
    renew_asked || remembered
}

/// How long after the ENT's `authenticationDate` a ticket still counts as from a
/// password typed for this very login (clock skew between the ENT and bonenfant
/// included, either way).
const PRIMARY_WINDOW_MS: u64 = 2 * 60 * 1000;

/// Whether a front-channel ticket came from credentials typed for this login, so that a
/// `renew=true` validation may be answered from the stash. The `/login` must have been a
/// POST, and the ENT must say so itself: `isFromNewLogin=true` (and no
/// `authenticationDate` outside [`PRIMARY_WINDOW_MS`]), or, when it does not say, an
/// `authenticationDate` within that window. A POST alone proves nothing: some CAS
/// servers answer a bare POST from the SSO session, and a renew validation answered
/// from the stash would then skip the password the service asked for (invariant I1d).
pub fn primary_login(posted: bool, auth: &AuthMeta, now_ms: u64) -> bool {
    let recent = auth.authentication_date.as_deref().map(|date| {
        authenticated_at_ms(date).is_some_and(|at| at.abs_diff(now_ms) <= PRIMARY_WINDOW_MS)
    });
    posted
        && match auth.from_new_login {
            Some(true) => recent != Some(false),
            Some(false) => false,
            None => recent == Some(true),
        }
}

/// Unix milliseconds of an RFC 3339 date, Apereo's `[Zone/Id]` suffix allowed.
fn authenticated_at_ms(date: &str) -> Option<u64> {
    let date = date.split_once('[').map_or(date, |(date, _)| date).trim();
    let at =
        time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Whether bonenfant validates a front-channel ticket itself. Only with a pinning
/// strategy, for a service that names an establishment (else no intent could be
/// checked), for a ticket bound to this browser session (else Pronote's validation
/// could not find the stash), and never for a renewed login: a silent re-login would
/// defeat the forced primary authentication.
pub fn checks_front_channel(
    mode: PinMode,
    expected: Option<&Uai>,
    renewed: bool,
    bound: bool,
) -> bool {
    mode != PinMode::Observe && expected.is_some() && !renewed && bound
}

/// Whether `--same-establishment any` lets a landing through as the ENT gave it: the
/// ENT named one of the parent's children in the collège the service opens, only not
/// the one meant (`wrong_child` from an intent) or not one the parent said
/// (`ambiguous`). Never a child the directory says is not theirs, never another
/// collège. The verdict is traced as it is; only pinning accepts it.
pub fn accepts_sibling(same: SameEstablishment, inspection: &Inspection) -> bool {
    let judgement = &inspection.judgement;
    same == SameEstablishment::Any
        && inspection.designated().is_some()
        && match judgement.verdict {
            Verdict::Ambiguous => true,
            Verdict::WrongChild => judgement.rule != rule::NOT_A_CHILD_OF_PRINCIPAL,
            _ => false,
        }
}

/// Whether the parent asked, on the give-up page, to go on to `service` unpinned once:
/// consumes that wish, so only the next login for that service passes unchecked.
pub fn passes_once(state: Option<&mut SessionState>, service: &str) -> bool {
    state
        .and_then(|s| s.pass_once.take_if(|for_service| for_service == service))
        .is_some()
}

/// What bonenfant learnt by validating a front-channel ticket itself.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyValidation {
    pub outcome: Outcome,
    /// The ENT's own bytes for this ticket (a CAS 2/3 XML answer), when read.
    pub ent_answer: Option<String>,
}

/// The ticket redirect being planned for.
#[derive(Clone, Copy, Debug)]
pub struct FrontTicket<'a> {
    /// The service the ticket was issued for.
    pub service: &'a str,
    /// The browser session the ticket is bound to (rotated at this redirect).
    pub session: SessionId,
    /// The `/login` was a POST: a credentials form, or a bare POST that some ENTs
    /// answer from single sign-on (see [`primary_login`]).
    pub posted: bool,
    pub now_ms: u64,
}

/// The answer the browser gets in place of (or as) the ENT's ticket redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontResponse {
    /// The ENT's redirect, unchanged: the ticket goes on to Pronote.
    Forward,
    /// Back to the ENT's `/login` for another ticket.
    Relogin,
    /// The chooser page: several children could be meant.
    Ask,
    /// The give-up page: the retry budget is spent.
    GiveUp,
}

/// Why the retry strategy stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUpReason {
    Attempts,
    TimeBudget,
}

impl GiveUpReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::Attempts => "attempts",
            GiveUpReason::TimeBudget => "time_budget",
        }
    }
}

/// Something the front channel did that the trace tells beside the login's summary.
#[derive(Clone, Debug, PartialEq)]
pub enum FrontEvent {
    /// The ticket missed the intent; the browser is sent back to `/login`.
    Retry {
        /// 1 for the first re-login.
        attempt: u32,
        judgement: Judgement,
        uai_asserted: Option<Uai>,
        pupil: Option<PupilKey>,
    },
    /// The retry budget is spent; the ENT's answer goes through as it is.
    GaveUp { retries: u32, reason: GiveUpReason },
    /// A rewrite was tried and one of its guards refused it.
    RewriteRefused(RewriteRefusal),
}

/// What to do with an early-validated ticket: carried out by `proxy::exchange`.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontPlan {
    pub response: FrontResponse,
    /// The browser session's new state, to be written.
    pub session: SessionState,
    /// What Pronote's validation of this ticket will be answered with.
    pub stash: Option<StashedValidation>,
    /// In the order they happened.
    pub events: Vec<FrontEvent>,
    /// Re-logins already sent for this login before this ticket.
    pub retries: u32,
    /// The principal the ENT asserted for this ticket, if it asserted one.
    pub principal: Option<String>,
    /// The establishment the service URL names.
    pub expected: Option<Uai>,
}

/// Decides what the front channel does with a ticket bonenfant validated itself: the
/// retry counting and window, the principal reset, the strategy's decision, what the
/// session learns, and what goes into the stash (with the ENT's bytes only while the
/// assertion is the ENT's own and `--answer verbatim` asks for them).
pub fn plan_front(
    settings: &PinSettings,
    answer: AnswerMode,
    inspector: &Inspector,
    ticket: FrontTicket<'_>,
    early: EarlyValidation,
    mut state: SessionState,
) -> FrontPlan {
    let now = ticket.now_ms;
    let budget_ms = duration_ms(settings.retry_budget);
    let fresh = || RetryProgress {
        service: ticket.service.to_owned(),
        retries: 0,
        started_ms: now,
    };
    // A loop is continued only for the same service and while it is young: an old one
    // (a parent who walked away) must not eat a new login's budget.
    let progress = state
        .retry
        .take()
        .filter(|p| p.service == ticket.service)
        .filter(|p| now.saturating_sub(p.started_ms) <= budget_ms.saturating_mul(2))
        .unwrap_or_else(fresh);
    let ent_answer = early.ent_answer.filter(|_| answer == AnswerMode::Verbatim);
    let primary = match &early.outcome {
        Outcome::Success(assertion) => primary_login(ticket.posted, &assertion.auth, now),
        Outcome::Failure(_) => false,
    };
    let stash = |outcome: Outcome, ent_answer: Option<String>, pin, retries| StashedValidation {
        service: ticket.service.to_owned(),
        outcome,
        session: Some(ticket.session),
        stored_at_ms: now,
        pin,
        retries,
        primary,
        ent_answer,
    };
    let expected = inspector.establishment.expected(ticket.service);
    let assertion = match early.outcome {
        Outcome::Success(assertion) => assertion,
        failure @ Outcome::Failure(_) => {
            // The ENT refused its own ticket: Pronote will hear the same, from the stash.
            return FrontPlan {
                response: FrontResponse::Forward,
                session: state,
                stash: Some(stash(
                    failure,
                    ent_answer,
                    PinOutcome::None,
                    progress.retries,
                )),
                events: Vec::new(),
                retries: progress.retries,
                principal: None,
                expected,
            };
        }
    };
    // A loop another person left unfinished on a shared computer is theirs: this
    // principal's login starts its own count.
    let progress = if state.principal.as_deref() == Some(&assertion.principal) {
        progress
    } else {
        fresh()
    };
    let attempts = Attempts {
        retries: progress.retries,
        elapsed_ms: now.saturating_sub(progress.started_ms),
    };
    let inspection = inspector.inspect(&assertion, ticket.service, Some(&state), None);
    let decision = decide_front(
        settings,
        &inspection,
        &assertion,
        Some(&state),
        ticket.service,
        attempts,
        now,
    );
    let mut events = Vec::new();
    let principal = Some(assertion.principal.clone());
    let plan = |response, session, stash, events| FrontPlan {
        response,
        session,
        stash,
        events,
        retries: attempts.retries,
        principal: principal.clone(),
        expected: expected.clone(),
    };
    match decision {
        FrontDecision::Deliver {
            assertion: delivered,
            action,
            refused,
        } => {
            events.extend(refused.map(FrontEvent::RewriteRefused));
            let delivered_inspection =
                inspector.inspect(&delivered, ticket.service, Some(&state), None);
            super::remember(
                &mut state,
                &delivered,
                ticket.service,
                &delivered_inspection,
                super::rewrite_sources(settings, action),
                now,
            );
            let bytes = ent_answer.filter(|_| delivers_the_ents_own(action));
            let entry = stash(Outcome::Success(delivered), bytes, action, attempts.retries);
            plan(FrontResponse::Forward, state, Some(entry), events)
        }
        FrontDecision::Relogin { refused } => {
            events.extend(refused.map(FrontEvent::RewriteRefused));
            events.push(FrontEvent::Retry {
                attempt: attempts.retries + 1,
                judgement: inspection.judgement,
                uai_asserted: inspection.uai_asserted().cloned(),
                pupil: inspection.designated().cloned(),
            });
            super::learn_children(&mut state, &assertion, &inspection, now);
            state.retry = Some(RetryProgress {
                retries: attempts.retries + 1,
                ..progress
            });
            plan(FrontResponse::Relogin, state, None, events)
        }
        FrontDecision::Ask => {
            super::learn_children(&mut state, &assertion, &inspection, now);
            plan(FrontResponse::Ask, state, None, events)
        }
        FrontDecision::GiveUp { assertion } => {
            let reason = if attempts.elapsed_ms >= budget_ms {
                GiveUpReason::TimeBudget
            } else {
                GiveUpReason::Attempts
            };
            events.push(FrontEvent::GaveUp {
                retries: attempts.retries,
                reason,
            });
            super::learn_children(&mut state, &assertion, &inspection, now);
            // Nothing is stashed: the give-up page carries no ticket (it would be dead
            // when the parent clicks), and the loop is over, so "try again" starts a
            // fresh one.
            state.retry = None;
            plan(FrontResponse::GiveUp, state, None, events)
        }
    }
}

/// Why a stashed (early-validated) answer may not go to the validation asking for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StashRefusal {
    /// `renew=true` asked, but the ticket came from single sign-on or a re-login: the
    /// ENT would refuse it, so bonenfant does too.
    RenewNotPrimary,
    /// The ticket was issued for another service.
    OtherService,
}

/// Whether Pronote's validation (`service`, `renew`) may be answered from `stashed`.
pub fn check_stashed(
    stashed: &StashedValidation,
    service: &str,
    renew: bool,
) -> Result<(), StashRefusal> {
    if renew && !(stashed.primary && stashed.retries == 0) {
        return Err(StashRefusal::RenewNotPrimary);
    }
    if stashed.service != service {
        return Err(StashRefusal::OtherService);
    }
    Ok(())
}

/// The ENT's own bytes a stashed answer may be served as: only under `--answer
/// verbatim`, and only to a CAS 2/3 XML validation (the bytes are the ENT's XML).
pub fn stashed_bytes(
    stashed: &StashedValidation,
    answer: AnswerMode,
    format: ResponseFormat,
) -> Option<&str> {
    stashed
        .ent_answer
        .as_deref()
        .filter(|_| answer == AnswerMode::Verbatim && format == ResponseFormat::Xml)
}

/// The earlier pupil that makes this validation a flip: another pupil than the one this
/// principal last had for the same establishment, within the flip window.
pub fn flip_from(
    previous: Option<(PupilKey, u64)>,
    pupil: &PupilKey,
    now_ms: u64,
    window: std::time::Duration,
) -> Option<PupilKey> {
    previous
        .filter(|(previous, at)| {
            now_ms.saturating_sub(*at) <= duration_ms(window) && previous != pupil
        })
        .map(|(previous, _)| previous)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cas::{Assertion, Attributes, Failure};
    use crate::pupil::{EstablishmentPattern, ExtractionRules};
    use crate::session::KnownChild;

    const LEA: &str = "2|MARTIN|Léa|1001|0330012A";
    const HUGO: &str = "2|MARTIN|Hugo|1002|0330012A";
    const SERVICE: &str = "https://0330012a.index-education.net/pronote/parent.html";
    const ENT_BYTES: &str = "<cas:serviceResponse/>";

    fn settings(mode: PinMode) -> PinSettings {
        PinSettings {
            mode,
            retry_max: 3,
            retry_budget: Duration::from_secs(10),
            rewrite_max_age: Duration::from_secs(60),
            rewrite_allow: vec!["FrEduVecteur".to_owned()],
            same_establishment: SameEstablishment::Ask,
            flip_window: Duration::from_secs(600),
        }
    }

    fn inspector() -> Inspector {
        Inspector {
            establishment: EstablishmentPattern::new(EstablishmentPattern::DEFAULT).unwrap(),
            rules: ExtractionRules::default(),
            index: Default::default(),
        }
    }

    fn assertion(principal: &str, vector: &str) -> Assertion {
        let mut attributes = Attributes::new();
        attributes.push("FrEduVecteur", vector);
        Assertion {
            principal: principal.to_owned(),
            attributes,
            ..Assertion::default()
        }
    }

    fn key(id: &str) -> PupilKey {
        PupilKey {
            uai: Uai::parse("0330012A").unwrap(),
            eleve_id: id.to_owned(),
        }
    }

    /// A session of `principal` pinned to Hugo.
    fn pinned_to_hugo(principal: &str) -> SessionState {
        SessionState {
            principal: Some(principal.to_owned()),
            pin: Some(key("1002")),
            known: vec![KnownChild::new(key("1001")), KnownChild::new(key("1002"))],
            ..SessionState::default()
        }
    }

    fn plan(mode: PinMode, early: Assertion, state: SessionState, now_ms: u64) -> FrontPlan {
        plan_front(
            &settings(mode),
            AnswerMode::Verbatim,
            &inspector(),
            FrontTicket {
                service: SERVICE,
                session: SessionId([7; 16]),
                posted: true,
                now_ms,
            },
            EarlyValidation {
                outcome: Outcome::Success(early),
                ent_answer: Some(ENT_BYTES.to_owned()),
            },
            state,
        )
    }

    #[test]
    fn a_wrong_child_is_sent_back_to_login_and_counted() {
        let plan = plan(
            PinMode::Retry,
            assertion("claire", LEA),
            pinned_to_hugo("claire"),
            1_000,
        );
        assert_eq!(plan.response, FrontResponse::Relogin);
        assert!(
            plan.stash.is_none(),
            "nothing for Pronote from a refused ticket"
        );
        assert_eq!(plan.session.retry.as_ref().map(|r| r.retries), Some(1));
        assert!(matches!(
            plan.events[..],
            [FrontEvent::Retry { attempt: 1, .. }]
        ));
    }

    #[test]
    fn the_intended_child_is_stashed_with_the_ents_own_bytes() {
        let mut state = pinned_to_hugo("claire");
        state.retry = Some(RetryProgress {
            service: SERVICE.to_owned(),
            retries: 2,
            started_ms: 1_000,
        });
        let plan = plan(PinMode::Retry, assertion("claire", HUGO), state, 2_000);
        assert_eq!(plan.response, FrontResponse::Forward);
        let stash = plan.stash.expect("stashed for Pronote");
        assert_eq!(stash.pin, PinOutcome::Retry);
        assert_eq!(stash.retries, 2);
        assert_eq!(stash.ent_answer.as_deref(), Some(ENT_BYTES));
        assert!(plan.session.retry.is_none(), "the loop is over");
    }

    #[test]
    fn the_budget_spent_gives_up_and_ends_the_loop() {
        let mut state = pinned_to_hugo("claire");
        state.retry = Some(RetryProgress {
            service: SERVICE.to_owned(),
            retries: 3,
            started_ms: 1_000,
        });
        let plan = plan(PinMode::Retry, assertion("claire", LEA), state, 2_000);
        assert_eq!(plan.response, FrontResponse::GiveUp);
        assert!(plan.stash.is_none(), "the give-up page carries no ticket");
        assert!(
            plan.session.retry.is_none(),
            "trying again starts a new round"
        );
        assert_eq!(
            plan.events,
            [FrontEvent::GaveUp {
                retries: 3,
                reason: GiveUpReason::Attempts
            }]
        );
    }

    #[test]
    fn continue_anyway_passes_one_login_for_that_service_only() {
        let mut state = SessionState {
            pass_once: Some(SERVICE.to_owned()),
            ..SessionState::default()
        };
        assert!(!passes_once(
            Some(&mut state),
            "https://0330099z.index-education.net/"
        ));
        assert!(passes_once(Some(&mut state), SERVICE));
        assert!(!passes_once(Some(&mut state), SERVICE), "once");
        assert!(!passes_once(None, SERVICE));
    }

    #[test]
    fn the_time_budget_spent_gives_up_for_time() {
        let mut state = pinned_to_hugo("claire");
        state.retry = Some(RetryProgress {
            service: SERVICE.to_owned(),
            retries: 1,
            started_ms: 1_000,
        });
        let plan = plan(PinMode::Retry, assertion("claire", LEA), state, 12_000);
        assert_eq!(plan.response, FrontResponse::GiveUp);
        assert!(matches!(
            plan.events[..],
            [FrontEvent::GaveUp {
                reason: GiveUpReason::TimeBudget,
                ..
            }]
        ));
    }

    #[test]
    fn an_old_loop_does_not_eat_a_new_logins_budget() {
        let mut state = pinned_to_hugo("claire");
        state.retry = Some(RetryProgress {
            service: SERVICE.to_owned(),
            retries: 3,
            started_ms: 1_000,
        });
        // Past twice the budget: a new login, counted afresh.
        let plan = plan(
            PinMode::Retry,
            assertion("claire", LEA),
            state,
            1_000 + 20_001,
        );
        assert_eq!(plan.response, FrontResponse::Relogin);
        assert_eq!(plan.session.retry.as_ref().map(|r| r.retries), Some(1));
    }

    #[test]
    fn another_parent_on_a_shared_browser_starts_their_own_count() {
        let mut state = pinned_to_hugo("claire");
        state.retry = Some(RetryProgress {
            service: SERVICE.to_owned(),
            retries: 3,
            started_ms: 1_000,
        });
        let plan = plan(PinMode::Retry, assertion("marc", LEA), state, 2_000);
        assert_eq!(plan.retries, 0, "Claire's attempts are hers");
        assert_eq!(plan.session.principal.as_deref(), Some("marc"));
        assert_eq!(plan.session.pin, None, "nothing of Claire's carries over");
    }

    #[test]
    fn a_rewritten_assertion_never_carries_the_ents_bytes() {
        let mut state = pinned_to_hugo("claire");
        state.observed = vec![super::super::rewrite::observe(
            &assertion("claire", HUGO),
            SERVICE,
            1_000,
            &["FrEduVecteur".to_owned()],
        )];
        let plan = plan(PinMode::Rewrite, assertion("claire", LEA), state, 2_000);
        let stash = plan.stash.expect("delivered");
        assert_eq!(stash.pin, PinOutcome::Rewrite);
        assert_eq!(
            stash.ent_answer, None,
            "the bytes say Léa; Pronote gets Hugo"
        );
        let Outcome::Success(delivered) = stash.outcome else {
            panic!("a success")
        };
        assert_eq!(delivered.principal, "claire", "the ticket's principal");
    }

    /// Regression (chained rewrite): a rewritten assertion was kept as a new source
    /// stamped "now", so with a 3 s bound and a login every 2 s, attributes were borrowed
    /// long after the last genuine assertion. Sources are the ENT's own, aged from when
    /// the ENT made them.
    #[test]
    fn a_rewritten_assertion_is_never_the_source_of_the_next_rewrite() {
        let mut settings = settings(PinMode::Rewrite);
        settings.rewrite_max_age = Duration::from_secs(3);
        let mut state = pinned_to_hugo("claire");
        state.observed = vec![super::super::rewrite::observe(
            &assertion("claire", HUGO),
            SERVICE,
            1_000,
            &["FrEduVecteur".to_owned()],
        )];
        let mut pins = Vec::new();
        for now in [3_000, 5_000, 7_000] {
            let plan = plan_front(
                &settings,
                AnswerMode::Verbatim,
                &inspector(),
                FrontTicket {
                    service: SERVICE,
                    session: SessionId([7; 16]),
                    posted: false,
                    now_ms: now,
                },
                EarlyValidation {
                    outcome: Outcome::Success(assertion("claire", LEA)),
                    ent_answer: None,
                },
                state,
            );
            pins.push(plan.stash.as_ref().map(|s| s.pin));
            assert!(
                plan.session.observed.iter().all(|o| o.at_ms == 1_000),
                "only the ENT's own assertion, with its own age"
            );
            state = plan.session;
        }
        assert_eq!(pins[0], Some(PinOutcome::Rewrite), "within the bound");
        assert!(
            !matches!(pins[2], Some(PinOutcome::Rewrite)),
            "6 s after the genuine assertion, nothing is borrowed: {pins:?}"
        );
    }

    #[test]
    fn nothing_is_kept_for_a_rewrite_outside_the_rewrite_strategy() {
        let plan = plan(
            PinMode::Retry,
            assertion("claire", HUGO),
            pinned_to_hugo("claire"),
            1_000,
        );
        assert_eq!(plan.response, FrontResponse::Forward);
        assert!(plan.session.observed.is_empty(), "data minimisation");
    }

    #[test]
    fn an_ent_failure_is_stashed_as_the_ents_failure() {
        let failure = Outcome::Failure(Failure::new("INVALID_TICKET", "spent"));
        let plan = plan_front(
            &settings(PinMode::Retry),
            AnswerMode::Canonical,
            &inspector(),
            FrontTicket {
                service: SERVICE,
                session: SessionId([7; 16]),
                posted: false,
                now_ms: 1,
            },
            EarlyValidation {
                outcome: failure.clone(),
                ent_answer: Some(ENT_BYTES.to_owned()),
            },
            SessionState::default(),
        );
        assert_eq!(plan.response, FrontResponse::Forward);
        let stash = plan.stash.expect("Pronote hears the same");
        assert_eq!(stash.outcome, failure);
        assert_eq!(stash.ent_answer, None, "--answer canonical keeps no bytes");
    }

    #[test]
    fn renew_is_answered_only_from_a_password_login_without_retries() {
        let stashed = |primary, retries| StashedValidation {
            service: SERVICE.to_owned(),
            outcome: Outcome::Success(assertion("claire", HUGO)),
            session: None,
            stored_at_ms: 0,
            pin: PinOutcome::None,
            retries,
            primary,
            ent_answer: None,
        };
        assert_eq!(check_stashed(&stashed(true, 0), SERVICE, true), Ok(()));
        assert_eq!(
            check_stashed(&stashed(false, 0), SERVICE, true),
            Err(StashRefusal::RenewNotPrimary)
        );
        assert_eq!(
            check_stashed(&stashed(true, 1), SERVICE, true),
            Err(StashRefusal::RenewNotPrimary)
        );
        assert_eq!(check_stashed(&stashed(false, 2), SERVICE, false), Ok(()));
        assert_eq!(
            check_stashed(&stashed(true, 0), "https://elsewhere/", false),
            Err(StashRefusal::OtherService)
        );
    }

    #[test]
    fn stashed_bytes_go_only_to_a_verbatim_xml_validation() {
        let stashed = StashedValidation {
            service: SERVICE.to_owned(),
            outcome: Outcome::Success(assertion("claire", HUGO)),
            session: None,
            stored_at_ms: 0,
            pin: PinOutcome::None,
            retries: 0,
            primary: true,
            ent_answer: Some(ENT_BYTES.to_owned()),
        };
        assert_eq!(
            stashed_bytes(&stashed, AnswerMode::Verbatim, ResponseFormat::Xml),
            Some(ENT_BYTES)
        );
        assert_eq!(
            stashed_bytes(&stashed, AnswerMode::Verbatim, ResponseFormat::Json),
            None
        );
        assert_eq!(
            stashed_bytes(&stashed, AnswerMode::Canonical, ResponseFormat::Xml),
            None
        );
    }

    #[test]
    fn a_flip_is_another_pupil_within_the_window() {
        let window = Duration::from_secs(60);
        let hugo = key("1002");
        let lea = key("1001");
        assert_eq!(
            flip_from(Some((lea.clone(), 1_000)), &hugo, 2_000, window),
            Some(lea.clone())
        );
        assert_eq!(
            flip_from(Some((hugo.clone(), 1_000)), &hugo, 2_000, window),
            None
        );
        assert_eq!(flip_from(Some((lea, 1_000)), &hugo, 61_001, window), None);
        assert_eq!(flip_from(None, &hugo, 2_000, window), None);
    }

    /// Regression (issue 11, finding 10): an ENT that issues a ticket to a bare POST
    /// from its SSO session made the login look primary, so a `renew=true` validation
    /// was answered from the stash without the password the service asked for.
    #[test]
    fn a_post_is_primary_only_when_the_ent_says_so() {
        let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let meta = |new_login, date: Option<&str>| AuthMeta {
            from_new_login: new_login,
            authentication_date: date.map(str::to_owned),
            ..AuthMeta::default()
        };
        assert!(primary_login(true, &meta(Some(true), None), now));
        assert!(!primary_login(false, &meta(Some(true), None), now));
        assert!(!primary_login(true, &meta(Some(false), None), now));
        assert!(
            !primary_login(true, &meta(None, None), now),
            "the ENT said nothing"
        );
        let fresh = Some("2026-01-01T01:00:30.123+01:00[Europe/Paris]");
        let stale = Some("2025-12-31T23:50:00Z");
        assert!(primary_login(true, &meta(None, fresh), now));
        assert!(!primary_login(true, &meta(None, stale), now));
        assert!(!primary_login(true, &meta(Some(true), stale), now));
        assert!(!primary_login(true, &meta(None, Some("yesterday")), now));
    }

    #[test]
    fn any_accepts_a_sibling_but_never_a_child_of_someone_else() {
        use crate::pupil::{Designation, Designations, PrincipalKind, PupilRule};
        let inspection = |verdict, rule| Inspection {
            expected: Uai::parse("0330012A"),
            designations: Designations(vec![Designation {
                key: key("1001"),
                rule: PupilRule::FrEduVecteur,
                first_name: None,
            }]),
            kind: PrincipalKind::Parent,
            intent: None,
            judgement: Judgement { verdict, rule },
        };
        let any = SameEstablishment::Any;
        assert!(accepts_sibling(
            any,
            &inspection(Verdict::Ambiguous, rule::SEVERAL_CHILDREN)
        ));
        assert!(accepts_sibling(
            any,
            &inspection(Verdict::WrongChild, rule::INTENT_PIN)
        ));
        assert!(!accepts_sibling(
            any,
            &inspection(Verdict::WrongChild, rule::NOT_A_CHILD_OF_PRINCIPAL)
        ));
        assert!(!accepts_sibling(
            any,
            &inspection(Verdict::WrongEstablishment, rule::UAI_MISMATCH)
        ));
        assert!(!accepts_sibling(
            SameEstablishment::Ask,
            &inspection(Verdict::Ambiguous, rule::SEVERAL_CHILDREN)
        ));
    }

    #[test]
    fn a_renewed_login_is_never_checked() {
        let uai = Uai::parse("0330012A").unwrap();
        let mut state = SessionState {
            renew_for: Some(SERVICE.to_owned()),
            ..SessionState::default()
        };
        assert!(renewed_login(false, Some(&mut state), SERVICE));
        assert_eq!(state.renew_for, None, "remembered once");
        assert!(!renewed_login(false, Some(&mut state), SERVICE));
        assert!(renewed_login(true, None, SERVICE));
        assert!(!checks_front_channel(
            PinMode::Retry,
            Some(&uai),
            true,
            true
        ));
        assert!(checks_front_channel(
            PinMode::Retry,
            Some(&uai),
            false,
            true
        ));
        assert!(!checks_front_channel(PinMode::Retry, None, false, true));
        assert!(!checks_front_channel(
            PinMode::Retry,
            Some(&uai),
            false,
            false
        ));
        assert!(!checks_front_channel(
            PinMode::Observe,
            Some(&uai),
            false,
            true
        ));
    }
}
