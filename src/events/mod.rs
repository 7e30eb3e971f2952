//! The DSI's trace log: a closed list of events, one JSON object per line.
//!
//! * [`TraceEvent`] is the closed list (`docs/events.md` documents every event and
//!   field). Identifiers appear only as [`Pseudonym`]s, which only a [`Pseudonymizer`]
//!   makes; tickets, cookies and keys have no field to go in.
//! * [`TraceLog::emit`] stamps an event and hands it to `tracing` under
//!   [`TRACE_TARGET`]; [`layer`] renders exactly those events as JSON lines, and
//!   [`open_trace_file`] writes them to `--trace-log` through a non-lossy background
//!   writer that counts anything it could not write ([`LossCounter`]).
//! * [`capture`] gives tests the same lines in memory.
//!
//! Why through `tracing`: the binary has one subscriber; the trace layer and the
//! operational log are two layers of it, split by target.
//!
//! # Wiring
//!
//! ```no_run
//! use bonenfant::events::{self, Pseudonymizer, TraceLog};
//! use tracing_subscriber::{filter::filter_fn, prelude::*};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (key, path): (Vec<u8>, std::path::PathBuf) = (vec![0; 32], "trace.jsonl".into());
//! let (writer, guard) = events::open_trace_file(&path)?;
//! let trace = TraceLog::new(Pseudonymizer::new(&key)?, writer.losses());
//! tracing_subscriber::registry()
//!     .with(events::layer(writer))
//!     .with(tracing_subscriber::fmt::layer().with_filter(filter_fn(|m| !events::is_trace_event(m))))
//!     .init();
//! // … serve; each request ends with `metrics.record(&event); trace.emit(event);` …
//! // At exit: emit `shutdown` with `trace.losses().lost()`, then drop the guard (it
//! // waits for queued lines).
//! drop(guard);
//! # Ok(()) }
//! ```

pub mod capture;
mod pseudonym;
mod writer;

use std::time::Duration;

use serde::Serialize;

pub use pseudonym::{KeyTooShort, Pseudonym, Pseudonymizer};
pub use writer::{
    is_trace_event, layer, open_trace_file, LossCounter, TraceError, TraceGuard, TraceLog,
    TraceWriter, TRACE_TARGET,
};

use crate::cas::Endpoint;
use crate::code::Code;
use crate::pupil::Uai;
use crate::verdict::Verdict;

/// Every trace event. Serialised with its name in the `event` field
/// (`{"ts":…,"event":"validate",…}`); every field is always present (`null` when
/// unknown), so a DSI's `jq` filters never meet a missing key.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The proxy started.
    Startup(Startup),
    /// The proxy is stopping; the last event of a run.
    Shutdown(Shutdown),
    /// A back-channel validation (Pronote → ENT) and its verdict. The summary event of
    /// every validation request, whatever its outcome.
    Validate(Validate),
    /// A front-channel `/login` answered with a ticket for the service.
    LoginRedirect(LoginRedirect),
    /// The retry strategy refused the ticket it validated early and sent the browser
    /// back to `/login`.
    Retry(Retry),
    /// The retry strategy stopped trying (attempts or time budget spent).
    RetryGaveUp(RetryGaveUp),
    /// The chooser page was shown.
    Chooser(Chooser),
    /// A parent pinned a pupil on the chooser page.
    PinSet(PinSet),
    /// A pin request was refused.
    PinRefused(PinRefused),
    /// On the give-up page, the parent chose to go on unpinned once, or to try again.
    GiveUpChoice(GiveUpChoice),
    /// A guard of the rewrite strategy refused to borrow attributes (a detail of a
    /// front-channel login, told before its `login_redirect`).
    RewriteRefused(RewriteRefused),
    /// A browser logout or an ENT single-logout.
    Logout(Logout),
    /// Any other request, forwarded unchanged.
    Passthrough(Passthrough),
    /// A request refused by the proxy (not a validation).
    Rejected(Rejected),
    /// The ENT could not be reached or answered badly (not a validation).
    UpstreamError(UpstreamError),
    /// Events the writer could not write since the last such event.
    EventsLost(EventsLost),
}

impl TraceEvent {
    /// Every event name, as in the `event` field: the closed list.
    pub const NAMES: [&'static str; 16] = [
        "startup",
        "shutdown",
        "validate",
        "login_redirect",
        "retry",
        "retry_gave_up",
        "chooser",
        "pin_set",
        "pin_refused",
        "rewrite_refused",
        "give_up_choice",
        "logout",
        "passthrough",
        "rejected",
        "upstream_error",
        "events_lost",
    ];

    /// The event's name, as in the `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            TraceEvent::Startup(_) => "startup",
            TraceEvent::Shutdown(_) => "shutdown",
            TraceEvent::Validate(_) => "validate",
            TraceEvent::LoginRedirect(_) => "login_redirect",
            TraceEvent::Retry(_) => "retry",
            TraceEvent::RetryGaveUp(_) => "retry_gave_up",
            TraceEvent::Chooser(_) => "chooser",
            TraceEvent::PinSet(_) => "pin_set",
            TraceEvent::PinRefused(_) => "pin_refused",
            TraceEvent::RewriteRefused(_) => "rewrite_refused",
            TraceEvent::GiveUpChoice(_) => "give_up_choice",
            TraceEvent::Logout(_) => "logout",
            TraceEvent::Passthrough(_) => "passthrough",
            TraceEvent::Rejected(_) => "rejected",
            TraceEvent::UpstreamError(_) => "upstream_error",
            TraceEvent::EventsLost(_) => "events_lost",
        }
    }

    /// Whether this event is the one summary of a request (`docs/events.md`): every
    /// request the proxy handles ends in exactly one of these. The others are run
    /// markers (`startup`, `shutdown`, `events_lost`) or details of a request told
    /// before its summary (`retry`, `retry_gave_up`, `rewrite_refused`).
    pub fn is_summary(&self) -> bool {
        !matches!(
            self,
            TraceEvent::Startup(_)
                | TraceEvent::Shutdown(_)
                | TraceEvent::EventsLost(_)
                | TraceEvent::Retry(_)
                | TraceEvent::RetryGaveUp(_)
                | TraceEvent::RewriteRefused(_)
        )
    }
}

// === Field types ===

/// What the pinning strategy did for a validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinOutcome {
    /// Passed as the ENT answered (observe mode, or the first answer was right).
    None,
    /// The retry strategy got the intended pupil after one or more new logins.
    Retry,
    /// Pupil attributes replaced from an earlier assertion (guarded rewrite).
    Rewrite,
    /// The intended pupil's values moved first; nothing added.
    Reorder,
    /// The retry strategy spent its budget; the last answer passed unchanged.
    GaveUp,
}

impl PinOutcome {
    pub const ALL: [PinOutcome; 5] = [
        PinOutcome::None,
        PinOutcome::Retry,
        PinOutcome::Rewrite,
        PinOutcome::Reorder,
        PinOutcome::GaveUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PinOutcome::None => "none",
            PinOutcome::Retry => "retry",
            PinOutcome::Rewrite => "rewrite",
            PinOutcome::Reorder => "reorder",
            PinOutcome::GaveUp => "gave_up",
        }
    }

    pub fn parse(name: &str) -> Option<PinOutcome> {
        PinOutcome::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// A duration rendered as milliseconds with microsecond precision (`0.412`): proxy
/// hops are well under a millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LatencyMs(pub Duration);

impl Serialize for LatencyMs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let micros = u64::try_from(self.0.as_micros()).unwrap_or(u64::MAX);
        // Exact to the microsecond for any latency below 2^53 µs (285 years).
        serializer.serialize_f64(micros as f64 / 1000.0)
    }
}

/// How a logout reached the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogoutKind {
    /// The browser went to the ENT's `/logout`.
    Browser,
    /// The ENT's back-channel single-logout POST.
    SingleLogout,
}

/// Where the pseudonym key came from (a random key means pseudonyms change per run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    File,
    Random,
}

/// Serialisers for fields whose type lives in another module.
mod ser {
    use serde::Serializer;

    use crate::cas::Endpoint;
    use crate::pupil::Uai;

    pub fn endpoint<S: Serializer>(e: &Endpoint, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(e.as_str())
    }

    pub fn opt_endpoint<S: Serializer>(e: &Option<Endpoint>, s: S) -> Result<S::Ok, S::Error> {
        match e {
            Some(e) => s.serialize_str(e.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn opt_uai<S: Serializer>(u: &Option<Uai>, s: S) -> Result<S::Ok, S::Error> {
        match u {
            Some(u) => s.serialize_str(u.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn uai<S: Serializer>(u: &Uai, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(u.as_str())
    }
}

// === Events ===

#[derive(Clone, Debug, Serialize)]
pub struct Startup {
    /// `CARGO_PKG_VERSION`.
    pub version: &'static str,
    /// Pinning strategy (`off`, `observe`, `retry`, `rewrite`).
    pub pin_strategy: &'static str,
    /// Session store kind (`memory`, `redis`); never its URL, which may hold a password.
    pub store: &'static str,
    pub pseudonym_key: KeySource,
}

#[derive(Clone, Debug, Serialize)]
pub struct Shutdown {
    /// Why (`signal`, `error`, …): a short fixed word.
    pub reason: &'static str,
    /// Trace events lost during the run (0 when every event was written).
    pub events_lost: u64,
}

/// The per-validation summary (`docs/events.md`, "`validate`").
#[derive(Clone, Debug, Serialize)]
pub struct Validate {
    pub verdict: Verdict,
    /// The verdict rule that fired (`crate::verdict::rule`).
    pub rule: &'static str,
    #[serde(serialize_with = "ser::endpoint")]
    pub endpoint: Endpoint,
    /// The establishment the service URL names.
    #[serde(serialize_with = "ser::opt_uai")]
    pub uai_expected: Option<Uai>,
    /// The designated pupil's establishment, as Pronote receives it.
    #[serde(serialize_with = "ser::opt_uai")]
    pub uai_asserted: Option<Uai>,
    pub pin: PinOutcome,
    /// New logins the retry strategy asked for this ticket's browser session.
    pub retries: u32,
    pub latency_ms: LatencyMs,
    pub principal: Option<Pseudonym>,
    /// The designated pupil, as Pronote receives it.
    pub pupil: Option<Pseudonym>,
    pub session: Option<Pseudonym>,
    /// Stable code when the validation did not succeed (ENT failure, refused answer,
    /// upstream error); `null` on success.
    pub error: Option<Code>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoginRedirect {
    #[serde(serialize_with = "ser::opt_uai")]
    pub uai_expected: Option<Uai>,
    pub session: Option<Pseudonym>,
    /// Whether the ticket was bound to the browser session (front-channel correlation).
    pub bound: bool,
    /// What the front channel did with the ticket.
    pub action: FrontAction,
    /// Re-logins the retry strategy had already sent for this login.
    pub retries: u32,
    /// The principal the ENT asserted, when bonenfant validated the ticket itself.
    pub principal: Option<Pseudonym>,
    pub latency_ms: LatencyMs,
}

/// What the front channel did with a ticket redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontAction {
    /// Passed to the browser unchecked (observe, no establishment, renewed login,
    /// ticket not bound).
    Forwarded,
    /// Validated early and let through; Pronote's validation is answered from the stash.
    Delivered,
    /// Refused: the browser was sent back to `/login` (a `retry` event precedes).
    Relogin,
    /// Several children could be meant: the chooser page was shown.
    Chooser,
    /// The retry budget was spent: the give-up page was shown (a `retry_gave_up`
    /// event precedes).
    GaveUp,
}

#[derive(Clone, Debug, Serialize)]
pub struct Retry {
    /// 1 for the first new login.
    pub attempt: u32,
    /// The verdict on the refused ticket.
    pub verdict: Verdict,
    pub rule: &'static str,
    #[serde(serialize_with = "ser::opt_uai")]
    pub uai_expected: Option<Uai>,
    #[serde(serialize_with = "ser::opt_uai")]
    pub uai_asserted: Option<Uai>,
    pub principal: Option<Pseudonym>,
    pub pupil: Option<Pseudonym>,
    pub session: Option<Pseudonym>,
    pub latency_ms: LatencyMs,
}

#[derive(Clone, Debug, Serialize)]
pub struct RetryGaveUp {
    pub retries: u32,
    /// `attempts` or `time_budget`.
    pub reason: &'static str,
    #[serde(serialize_with = "ser::opt_uai")]
    pub uai_expected: Option<Uai>,
    pub principal: Option<Pseudonym>,
    pub session: Option<Pseudonym>,
    pub latency_ms: LatencyMs,
}

#[derive(Clone, Debug, Serialize)]
pub struct Chooser {
    #[serde(serialize_with = "ser::opt_uai")]
    pub uai_expected: Option<Uai>,
    /// Children listed on the page.
    pub children: u32,
    pub principal: Option<Pseudonym>,
    pub session: Option<Pseudonym>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PinSet {
    #[serde(serialize_with = "ser::uai")]
    pub uai: Uai,
    pub pupil: Pseudonym,
    /// `null` when the session has seen no assertion yet (a child known only from the
    /// directory).
    pub principal: Option<Pseudonym>,
    pub session: Pseudonym,
    /// `pin.service_target` when the form's service was no allowed target (the pin is
    /// noted, the parent is not sent on).
    pub code: Option<Code>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GiveUpChoice {
    /// `continue` (once, unpinned) or `retry` (another round of re-rolls).
    pub choice: &'static str,
    #[serde(serialize_with = "ser::opt_uai")]
    pub uai_expected: Option<Uai>,
    pub principal: Option<Pseudonym>,
    pub session: Option<Pseudonym>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RewriteRefused {
    /// Stable code (`pin.rewrite.*`).
    pub code: Code,
    pub principal: Option<Pseudonym>,
    pub session: Option<Pseudonym>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PinRefused {
    /// Stable code (`pin.csrf`, `pin.origin`, `pin.unknown_pupil`, …).
    pub code: Code,
    pub principal: Option<Pseudonym>,
    pub session: Option<Pseudonym>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Logout {
    pub kind: LogoutKind,
    pub session: Option<Pseudonym>,
    /// Whether bonenfant's state for the session was dropped.
    pub dropped: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Passthrough {
    /// The CAS endpoint, `null` for any other path.
    #[serde(serialize_with = "ser::opt_endpoint")]
    pub endpoint: Option<Endpoint>,
    pub status: u16,
    pub latency_ms: LatencyMs,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    /// Stable error code (`docs/events.md`).
    pub code: Code,
    #[serde(serialize_with = "ser::opt_endpoint")]
    pub endpoint: Option<Endpoint>,
    /// HTTP status sent to the client.
    pub status: u16,
    pub latency_ms: LatencyMs,
}

#[derive(Clone, Debug, Serialize)]
pub struct UpstreamError {
    /// Stable error code (`proxy.upstream_timeout`, …).
    pub code: Code,
    #[serde(serialize_with = "ser::opt_endpoint")]
    pub endpoint: Option<Endpoint>,
    /// HTTP status sent to the client.
    pub status: u16,
    pub latency_ms: LatencyMs,
}

#[derive(Clone, Debug, Serialize)]
pub struct EventsLost {
    /// Lost since the previous `events_lost` event.
    pub count: u64,
    /// Lost since startup.
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_in_json(event: &TraceEvent) -> String {
        let value = serde_json::to_value(event).unwrap();
        value["event"].as_str().unwrap().to_owned()
    }

    #[test]
    fn event_names_match_the_closed_list() {
        let events = [
            TraceEvent::EventsLost(EventsLost { count: 1, total: 2 }),
            TraceEvent::Passthrough(Passthrough {
                endpoint: None,
                status: 200,
                latency_ms: LatencyMs(Duration::from_micros(1500)),
            }),
            TraceEvent::Shutdown(Shutdown {
                reason: "signal",
                events_lost: 0,
            }),
        ];
        for event in &events {
            assert_eq!(name_in_json(event), event.name());
            assert!(TraceEvent::NAMES.contains(&event.name()));
        }
    }

    #[test]
    fn latency_renders_in_milliseconds() {
        let json = serde_json::to_string(&LatencyMs(Duration::from_micros(1234))).unwrap();
        assert_eq!(json, "1.234");
    }

    #[test]
    fn pin_outcome_names_round_trip() {
        for p in PinOutcome::ALL {
            assert_eq!(PinOutcome::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }
}
