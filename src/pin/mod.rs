//! The identity decision: what Pronote is told about who logged in.
//!
//! The only module that builds a success answer for Pronote (invariant I1): everything
//! that leaves bonenfant as a CAS success goes through [`success_answer`]. Strategies:
//! observe (change nothing), retry (the automated refresh, on the front channel),
//! rewrite (guarded, opt-in) and its gentle form reorder. The chooser page where a
//! parent states the intent lives here too.

pub mod chooser;
pub mod front;
pub mod rewrite;
pub mod target;

use crate::cas::{self, AnswerContext, Assertion, ResponseFormat};
use crate::config::{PinMode, PinSettings};
use crate::events::PinOutcome;
use crate::pupil::{
    self, Designations, EstablishmentPattern, ExtractionRules, Intent, PrincipalChildren,
    PrincipalKind, PupilKey, SharedIndex, Uai,
};
use crate::session::clock::duration_ms;
use crate::session::{KnownChild, ObservedAssertion, SessionState};
use crate::verdict::{self, Judgement, Verdict, VerdictInput};

use self::rewrite::{RewriteGuard, RewriteRefusal};

/// Bounds on what one session remembers (≤ 1 KiB per session, `docs/performance.md`).
const MAX_KNOWN: usize = 8;
const MAX_LANDED: usize = 8;
const MAX_OBSERVED: usize = 4;

/// Everything learnt from one assertion: where the parent was going, whom the
/// assertion designates, whom the parent meant, and the verdict.
#[derive(Clone, Debug)]
pub struct Inspection {
    pub expected: Option<Uai>,
    pub designations: Designations,
    pub kind: PrincipalKind,
    pub intent: Option<Intent>,
    pub judgement: Judgement,
}

impl Inspection {
    /// The designated pupil's UAI, for the `uai_asserted` event field.
    pub fn uai_asserted(&self) -> Option<&Uai> {
        self.designations.designated().map(|d| &d.key.uai)
    }

    pub fn designated(&self) -> Option<&PupilKey> {
        self.designations.designated().map(|d| &d.key)
    }
}

/// Reads assertions: the establishment pattern, the extraction rules and the optional
/// directory index.
#[derive(Clone, Debug)]
pub struct Inspector {
    pub establishment: EstablishmentPattern,
    pub rules: ExtractionRules,
    /// Swapped whole by a directory reload: load it once per decision.
    pub index: SharedIndex,
}

impl Inspector {
    /// Judges `assertion` for `service`, given what this browser session knows (if the
    /// ticket was correlated) and the pupil this principal had last time (flip window).
    pub fn inspect(
        &self,
        assertion: &Assertion,
        service: &str,
        session: Option<&SessionState>,
        previous: Option<&PupilKey>,
    ) -> Inspection {
        let expected = self.establishment.expected(service);
        let index = self.index.load();
        let designations = pupil::designations(assertion, &self.rules, index.as_deref());
        let kind = pupil::principal_kind(assertion, service);
        // A session's memory counts only for the principal it belongs to (T05: a cookie
        // carried to another person's login says nothing about their children).
        let session = session.filter(|s| s.principal.as_deref() == Some(&assertion.principal));
        let directory = index.and_then(|i| i.principal(&assertion.principal));
        let known = known_children(
            directory.as_ref(),
            designations.0.iter().map(|d| &d.key),
            session,
        );
        // A pin made for a sibling's school says nothing about this one: here the
        // intent falls back to the only child in the establishment (else reorder and
        // rewrite would aim at a pupil Pronote cannot show).
        let pin = session
            .and_then(|s| s.pin.as_ref())
            .filter(|p| expected.as_ref().map_or(true, |e| &p.uai == e));
        let sticky = session.and_then(|s| {
            s.landed
                .iter()
                .find(|k| expected.as_ref().is_some_and(|e| &k.uai == e))
        });
        let intent = pupil::intent(pin, &known, expected.as_ref(), sticky);
        let judgement = verdict::judge(&VerdictInput {
            kind,
            expected: expected.as_ref(),
            designations: &designations,
            intent: intent.as_ref(),
            known: &known,
            previous,
            directory: directory.as_ref(),
        });
        Inspection {
            expected,
            designations,
            kind,
            intent,
            judgement,
        }
    }
}

impl Inspector {
    /// Every child known for `principal`: `first` (the current assertion's), then what
    /// the ENT asserted earlier in this session, then the directory index; no repeats.
    pub fn known_children<'a>(
        &self,
        principal: &str,
        first: impl IntoIterator<Item = &'a PupilKey>,
        session: Option<&SessionState>,
    ) -> Vec<PupilKey> {
        let index = self.index.load();
        let listed = index.as_ref().and_then(|i| i.principal(principal));
        known_children(listed.as_ref(), first, session)
    }
}

/// [`Inspector::known_children`], given what the directory says of the principal.
fn known_children<'a>(
    listed: Option<&PrincipalChildren>,
    first: impl IntoIterator<Item = &'a PupilKey>,
    session: Option<&SessionState>,
) -> Vec<PupilKey> {
    let mut known: Vec<PupilKey> = Vec::new();
    let mut add = |key: &PupilKey| {
        // A child the directory says is another family's is never offered, nor aimed
        // at: the ENT asserting it does not make it this parent's.
        let stranger = listed.is_some_and(|l| l.rules_out(key));
        if !stranger && !known.contains(key) {
            known.push(key.clone());
        }
    };
    first.into_iter().for_each(&mut add);
    for known in session.iter().flat_map(|s| &s.known) {
        add(&known.key);
    }
    for key in listed.iter().flat_map(|l| &l.children) {
        add(key);
    }
    known
}

/// The front-channel decision of the retry and rewrite strategies, after bonenfant
/// validated the redirect's ticket itself.
#[derive(Clone, Debug, PartialEq)]
pub enum FrontDecision {
    /// Stash this assertion for Pronote's validation of the ticket and let the browser
    /// go on to Pronote.
    Deliver {
        assertion: Assertion,
        action: PinOutcome,
        /// A rewrite that was tried and refused on the way (logged).
        refused: Option<RewriteRefusal>,
    },
    /// Send the browser back to `/login` for another ticket (the ENT's SSO makes it
    /// silent).
    Relogin { refused: Option<RewriteRefusal> },
    /// Out of attempts or time: deliver what the ENT asserted and say so.
    GiveUp { assertion: Assertion },
    /// Several children of the parent could be meant and nothing tells which: ask the
    /// parent on the chooser page (what correct ENTs do, e.g. ESCO's `ESCOUAICourant`).
    Ask,
}

/// Where a login stands in its retry loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Re-logins already sent for this login.
    pub retries: u32,
    /// Milliseconds since the first ticket of this login.
    pub elapsed_ms: u64,
}

/// Whether an assertion `decide_front` delivered with `action` is the ENT's own, as it
/// came for that ticket (not rewritten, not reordered): only then may the ENT's own
/// bytes answer Pronote.
pub fn delivers_the_ents_own(action: PinOutcome) -> bool {
    matches!(action, PinOutcome::None | PinOutcome::Retry)
}

/// Decides what the front channel does with an early-validated assertion.
pub fn decide_front(
    settings: &PinSettings,
    inspection: &Inspection,
    assertion: &Assertion,
    session: Option<&SessionState>,
    service: &str,
    attempts: Attempts,
    now_ms: u64,
) -> FrontDecision {
    let settled = if attempts.retries > 0 {
        PinOutcome::Retry
    } else {
        PinOutcome::None
    };
    let sibling = front::accepts_sibling(settings.same_establishment, inspection);
    if settings.mode != PinMode::Observe
        && inspection.judgement.verdict == Verdict::Ambiguous
        && !sibling
    {
        return FrontDecision::Ask;
    }
    if settings.mode == PinMode::Observe
        || !inspection.judgement.verdict.is_wrong_landing()
        || sibling
    {
        return FrontDecision::Deliver {
            assertion: assertion.clone(),
            action: settled,
            refused: None,
        };
    }
    let mut refused = None;
    if settings.mode == PinMode::Rewrite && inspection.judgement.may_rewrite() {
        if let Some(intent) = &inspection.intent {
            if let Some(reordered) =
                rewrite::reorder(assertion, &intent.pupil, &settings.rewrite_allow)
            {
                return FrontDecision::Deliver {
                    assertion: reordered,
                    action: PinOutcome::Reorder,
                    refused: None,
                };
            }
            let source = rewrite_source(session, assertion, service, &intent.pupil);
            let guard = RewriteGuard {
                service,
                has_session: session.is_some(),
                now_ms,
                max_age_ms: duration_ms(settings.rewrite_max_age),
                allow: &settings.rewrite_allow,
            };
            match rewrite::rewrite(assertion, source, &guard) {
                Ok(rewritten) => {
                    return FrontDecision::Deliver {
                        assertion: rewritten,
                        action: PinOutcome::Rewrite,
                        refused: None,
                    }
                }
                Err(refusal) => refused = Some(refusal),
            }
        }
    }
    let budget_ms = duration_ms(settings.retry_budget);
    if attempts.retries < settings.retry_max && attempts.elapsed_ms < budget_ms {
        FrontDecision::Relogin { refused }
    } else {
        FrontDecision::GiveUp {
            assertion: assertion.clone(),
        }
    }
}

/// The session's earlier assertion a rewrite would borrow from for `pupil`: the latest
/// one that passes the principal and service guards, else the latest of any principal
/// and service, so that [`rewrite::rewrite`] refuses it and the `pin_refused` event
/// names the guard that failed (T01: another principal on a shared browser; a sibling
/// Pronote page) rather than "no source".
fn rewrite_source<'s>(
    session: Option<&'s SessionState>,
    current: &Assertion,
    service: &str,
    pupil: &PupilKey,
) -> Option<&'s ObservedAssertion> {
    let candidates = || {
        session
            .into_iter()
            .flat_map(|s| s.observed.iter().rev())
            .filter(|o| observed_designates(o, pupil))
    };
    candidates()
        .find(|o| o.principal == current.principal && o.service == service)
        .or_else(|| candidates().next())
}

fn observed_designates(observed: &ObservedAssertion, pupil: &PupilKey) -> bool {
    let as_assertion = Assertion {
        principal: observed.principal.clone(),
        attributes: observed.attributes.iter().cloned().collect(),
        ..Assertion::default()
    };
    pupil::designations(&as_assertion, &ExtractionRules::default(), None)
        .designated()
        .is_some_and(|d| &d.key == pupil)
}

/// What of an assertion a later rewrite may borrow (`remember`'s `allow`): the
/// allow-listed attributes under `--pin rewrite`, and only from an assertion that is
/// the ENT's own. A rewritten assertion kept as a source would let attributes be
/// borrowed again and again, each time stamped anew, past `--rewrite-max-age`; and
/// outside `rewrite` nothing is kept at all (data minimisation).
pub fn rewrite_sources(settings: &PinSettings, action: PinOutcome) -> &[String] {
    if settings.mode == PinMode::Rewrite && delivers_the_ents_own(action) {
        &settings.rewrite_allow
    } else {
        &[]
    }
}

/// Updates a browser session with an assertion Pronote is about to receive: who the
/// principal is, which children are known, where the session landed, and (when the
/// landing was the intended one and `allow` is not empty) what a later rewrite may
/// borrow ([`rewrite_sources`] says what `allow` is).
pub fn remember(
    state: &mut SessionState,
    assertion: &Assertion,
    service: &str,
    inspection: &Inspection,
    allow: &[String],
    now_ms: u64,
) {
    if state.principal.as_deref() != Some(&assertion.principal) {
        // Another person on this browser: nothing of the previous one carries over.
        *state = SessionState::default();
        state.principal = Some(assertion.principal.clone());
    }
    // The class only for the designated pupil: that is whom the attribute describes.
    let class = pupil::asserted_class(assertion);
    for (i, d) in inspection.designations.0.iter().enumerate() {
        let class = class.as_ref().filter(|_| i == 0);
        if let Some(entry) = state.known.iter_mut().find(|k| k.key == d.key) {
            if entry.first_name.is_none() {
                entry.first_name.clone_from(&d.first_name);
            }
            if let Some(class) = class {
                entry.class = Some(class.clone());
            }
        } else {
            push_bounded(
                &mut state.known,
                KnownChild {
                    key: d.key.clone(),
                    first_name: d.first_name.clone(),
                    class: class.cloned(),
                },
                MAX_KNOWN,
            );
        }
    }
    let landed_well = !inspection.judgement.verdict.is_wrong_landing();
    if let (Some(pupil), true) = (inspection.designated(), landed_well) {
        state.landed.retain(|k| k.uai != pupil.uai);
        push_bounded(&mut state.landed, pupil.clone(), MAX_LANDED);
        if inspection.judgement.verdict == Verdict::Ok && !allow.is_empty() {
            state.observed.retain(|o| o.service != service);
            push_bounded(
                &mut state.observed,
                rewrite::observe(assertion, service, now_ms, allow),
                MAX_OBSERVED,
            );
        }
    }
    state.updated_at_ms = now_ms;
}

/// What a session learns from an assertion bonenfant refused on the front channel
/// (a re-login follows): the children it names, not a landing.
pub fn learn_children(
    state: &mut SessionState,
    assertion: &Assertion,
    inspection: &Inspection,
    now_ms: u64,
) {
    let landed = std::mem::take(&mut state.landed);
    let observed = std::mem::take(&mut state.observed);
    let same_principal = state.principal.as_deref() == Some(&assertion.principal);
    remember(state, assertion, "", inspection, &[], now_ms);
    if same_principal {
        state.landed = landed;
        state.observed = observed;
    } else {
        state.landed.clear();
        state.observed.clear();
    }
}

fn push_bounded<T>(list: &mut Vec<T>, item: T, max: usize) {
    if list.len() >= max {
        list.remove(0);
    }
    list.push(item);
}

/// The bytes of a success answer for Pronote. `verbatim` is the ENT's own answer to
/// this very validation, already accepted by the strict parser, and is used only when
/// `assertion` is exactly what it says; anything else is serialised canonically.
pub fn success_answer(
    assertion: &Assertion,
    format: ResponseFormat,
    context: &AnswerContext<'_>,
    verbatim: Option<&[u8]>,
) -> Vec<u8> {
    match verbatim {
        Some(bytes) => bytes.to_vec(),
        None => cas::serialize(&cas::Outcome::Success(assertion.clone()), format, context),
    }
}
