//! Counters the proxy feeds and `/metrics` renders, through `prometheus-client`.
//!
//! The proxy records each request once, from its summary trace event
//! ([`Metrics::record`]), so the metrics and the trace log can never disagree. That
//! mapping from events to counters is this module's own logic; the exposition format is
//! the crate's. Every label is a typed set whose values come from closed lists
//! (endpoints, outcomes, verdicts, pin outcomes, sides, stable error codes), so
//! cardinality is bounded and no identifier can become a label.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{
    prometheus_text, EncodeLabelSet, EncodeLabelValue, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::activity::{self, Activity, LastHour};
use super::health::{Dependency, Health, State};
use crate::cas::Endpoint;
use crate::code::{Code, Side};
use crate::events::{FrontAction, PinOutcome, TraceEvent};
use crate::session::StoreStats;
use crate::verdict::Verdict;

/// The `Content-Type` of what [`Metrics::render`] writes: the Prometheus text format
/// 0.0.4, which every scraper reads (no `# EOF` line, unlike OpenMetrics).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency buckets, in seconds: from a proxy hop (sub-ms) to the
/// ENT's slowest answers (seconds).
const BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

// === labels ===

/// `bonenfant_requests_total`'s labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: EndpointLabel,
    outcome: Outcome,
}

/// A CAS endpoint, the chooser, or any other path.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum EndpointLabel {
    Cas(Endpoint),
    Chooser,
    Other,
}

impl From<Option<Endpoint>> for EndpointLabel {
    fn from(endpoint: Option<Endpoint>) -> Self {
        endpoint.map_or(EndpointLabel::Other, EndpointLabel::Cas)
    }
}

impl EndpointLabel {
    fn as_str(self) -> &'static str {
        match self {
            EndpointLabel::Cas(endpoint) => endpoint.as_str(),
            EndpointLabel::Chooser => "chooser",
            EndpointLabel::Other => "other",
        }
    }
}

/// Types that already have a stable name (`as_str`) are label values by that name.
macro_rules! label_value_by_name {
    ($($label:ty),* $(,)?) => {$(
        impl EncodeLabelValue for $label {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }
    )*};
}

label_value_by_name!(EndpointLabel, Verdict, PinOutcome, Code, Side, Dependency);

/// How a request ended. The derive writes variant names verbatim, so they are the
/// label values `docs/events.md` lists.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
enum Outcome {
    validated,
    validation_failed,
    login_redirect,
    retry,
    retry_gave_up,
    chooser,
    pin_set,
    give_up_choice,
    pin_refused,
    logout,
    forwarded,
    rejected,
    upstream_error,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    verdict: Verdict,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PinLabels {
    pin: PinOutcome,
}

/// `bonenfant_errors_total`'s labels: a stable code (`docs/events.md`) and the side
/// that failed, which the code itself carries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    code: Code,
    side: Side,
}

/// `bonenfant_request_duration_seconds`'s label: validations apart, as they wait on
/// the ENT's back channel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    kind: Kind,
}

#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
enum Kind {
    validation,
    other,
}

/// `bonenfant_dependency_up`'s label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabels {
    dependency: Dependency,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS_S)
}

// === impl Metrics ===

/// The proxy's counters. One per process, shared behind an `Arc`. Each metric is a
/// cheap handle (an `Arc` inside), so a scrape registers clones of them.
#[derive(Debug)]
pub struct Metrics {
    /// For `/status`'s uptime.
    started: Instant,
    requests: Family<RequestLabels, Counter>,
    /// Every request counted, for `/status` (a family cannot be summed).
    requests_seen: Counter,
    verdicts: Family<VerdictLabels, Counter>,
    pins: Family<PinLabels, Counter>,
    /// Sum of `retries` over validations.
    retries: Counter,
    /// Tickets the retry strategy refused and asked the ENT again for (`retry` events):
    /// its rate is the load re-rolls put on the ENT.
    rerolls: Counter,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<DurationLabels, Histogram, fn() -> Histogram>,
    /// The series of the closed lists above, created at start: recorded through these
    /// handles, an event skips the families' lock and label hashing.
    preset: Preset,
    connections_open: Gauge,
    connections_total: Counter,
    /// The ENT's and the store's health, which the upstream client and the probes
    /// feed too.
    health: Health,
    /// The last hour, for the status page.
    activity: Mutex<Activity>,
}

/// Handles to series the families hold from the start (the same counters: a
/// family's metric is an `Arc` inside), in the order of the closed lists.
#[derive(Debug)]
struct Preset {
    verdicts: [Counter; Verdict::ALL.len()],
    pins: [Counter; PinOutcome::ALL.len()],
    validation_durations: Histogram,
    other_durations: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        // Closed lists are shown at zero from the start, so a rate over the first
        // occurrence is not lost.
        let verdicts: Family<VerdictLabels, Counter> = Family::default();
        let pins: Family<PinLabels, Counter> = Family::default();
        let durations: Family<DurationLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let duration = |kind| durations.get_or_create(&DurationLabels { kind }).clone();
        let preset = Preset {
            verdicts: Verdict::ALL
                .map(|verdict| verdicts.get_or_create(&VerdictLabels { verdict }).clone()),
            pins: PinOutcome::ALL.map(|pin| pins.get_or_create(&PinLabels { pin }).clone()),
            validation_durations: duration(Kind::validation),
            other_durations: duration(Kind::other),
        };
        Self {
            started: Instant::now(),
            requests: Family::default(),
            requests_seen: Counter::default(),
            verdicts,
            pins,
            retries: Counter::default(),
            rerolls: Counter::default(),
            errors: Family::default(),
            durations,
            preset,
            connections_open: Gauge::default(),
            connections_total: Counter::default(),
            health: Health::default(),
            activity: Mutex::default(),
        }
    }

    /// Counts one request from its summary event (call it with the event you emit).
    /// `startup`, `shutdown` and `events_lost` are not requests and count nothing.
    pub fn record(&self, event: &TraceEvent) {
        if event_code(event) == Some(Code::StoreUnavailable) {
            self.health
                .failed(Dependency::Store, Code::StoreUnavailable);
        }
        if activity::concerns(event) {
            self.activity
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(event, self.health.now_ms());
        }
        let (endpoint, outcome, latency) = match event {
            TraceEvent::Validate(v) => {
                let verdict = Verdict::ALL.iter().position(|&known| known == v.verdict);
                if let Some(counter) = verdict.and_then(|i| self.preset.verdicts.get(i)) {
                    counter.inc();
                }
                let pin = PinOutcome::ALL.iter().position(|&known| known == v.pin);
                if let Some(counter) = pin.and_then(|i| self.preset.pins.get(i)) {
                    counter.inc();
                }
                self.retries.inc_by(u64::from(v.retries));
                if let Some(code) = v.error {
                    self.error(code);
                }
                self.observe(Kind::validation, v.latency_ms.0);
                let outcome = if v.error.is_some() {
                    Outcome::validation_failed
                } else {
                    Outcome::validated
                };
                (EndpointLabel::Cas(v.endpoint), outcome, None)
            }
            TraceEvent::LoginRedirect(e) => {
                let outcome = match e.action {
                    FrontAction::Forwarded | FrontAction::Delivered => Outcome::login_redirect,
                    FrontAction::Relogin => Outcome::retry,
                    FrontAction::GaveUp => Outcome::retry_gave_up,
                    FrontAction::Chooser => Outcome::chooser,
                };
                (
                    EndpointLabel::Cas(Endpoint::Login),
                    outcome,
                    Some(e.latency_ms.0),
                )
            }
            // Details of a login whose `login_redirect` counts the request.
            TraceEvent::Retry(_) => {
                self.rerolls.inc();
                return;
            }
            TraceEvent::RetryGaveUp(_) => return,
            TraceEvent::RewriteRefused(e) => {
                self.error(e.code);
                return;
            }
            TraceEvent::Chooser(_) => (EndpointLabel::Chooser, Outcome::chooser, None),
            TraceEvent::GiveUpChoice(_) => (EndpointLabel::Chooser, Outcome::give_up_choice, None),
            TraceEvent::PinSet(_) => (EndpointLabel::Chooser, Outcome::pin_set, None),
            TraceEvent::PinRefused(e) => {
                self.error(e.code);
                (EndpointLabel::Chooser, Outcome::pin_refused, None)
            }
            TraceEvent::Logout(_) => (EndpointLabel::Cas(Endpoint::Logout), Outcome::logout, None),
            TraceEvent::Passthrough(e) => {
                (e.endpoint.into(), Outcome::forwarded, Some(e.latency_ms.0))
            }
            TraceEvent::Rejected(e) => {
                self.error(e.code);
                (e.endpoint.into(), Outcome::rejected, Some(e.latency_ms.0))
            }
            TraceEvent::UpstreamError(e) => {
                self.error(e.code);
                (
                    e.endpoint.into(),
                    Outcome::upstream_error,
                    Some(e.latency_ms.0),
                )
            }
            TraceEvent::Startup(_) | TraceEvent::Shutdown(_) | TraceEvent::EventsLost(_) => return,
        };
        if let Some(latency) = latency {
            self.observe(Kind::other, latency);
        }
        self.requests
            .get_or_create(&RequestLabels { endpoint, outcome })
            .inc();
        self.requests_seen.inc();
    }

    /// Counts an accepted connection until the guard drops (pair increments and
    /// decrements in one place, as Sozu does).
    pub fn connection(&self) -> ConnectionGuard {
        self.connections_total.inc();
        self.connections_open.inc();
        ConnectionGuard {
            open: self.connections_open.clone(),
        }
    }

    fn error(&self, code: Code) {
        self.errors
            .get_or_create(&ErrorLabels {
                code,
                side: code.side(),
            })
            .inc();
    }

    fn observe(&self, kind: Kind, latency: Duration) {
        let histogram = match kind {
            Kind::validation => &self.preset.validation_durations,
            Kind::other => &self.preset.other_durations,
        };
        histogram.observe(latency.as_secs_f64());
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The ENT's and the store's health: the upstream client, the probes and the
    /// summary events feed it; readiness and the status page read it.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The last hour of validations, verdicts and incidents, as of now.
    pub fn last_hour(&self) -> LastHour {
        self.activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_hour(self.health.now_ms())
    }

    /// A consistent-enough copy for `/status` (each counter read once).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests_seen.get(),
            verdicts: Verdict::ALL
                .iter()
                .map(|&verdict| {
                    let n = self
                        .verdicts
                        .get_or_create(&VerdictLabels { verdict })
                        .get();
                    (verdict.as_str(), n)
                })
                .collect(),
            pins: PinOutcome::ALL
                .iter()
                .map(|&pin| {
                    (
                        pin.as_str(),
                        self.pins.get_or_create(&PinLabels { pin }).get(),
                    )
                })
                .collect(),
            connections_open: u64::try_from(self.connections_open.get()).unwrap_or(0),
        }
    }

    /// Renders every metric, plus the figures sampled now: uptime, the store's, the
    /// trace writer's losses and readiness. Served with [`CONTENT_TYPE`].
    pub fn render(
        &self,
        store: StoreStats,
        events_lost: u64,
        ready: bool,
    ) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(4096);
        prometheus_text::encode(&mut out, &self.registry(store, events_lost, ready))?;
        Ok(out)
    }

    /// One registry per scrape: handles to the live metrics, in the order
    /// `docs/events.md` lists them, plus constants for what is sampled now. Built
    /// afresh so that concurrent scrapes never see each other's samples.
    fn registry(&self, store: StoreStats, events_lost: u64, ready: bool) -> Registry {
        let mut r = Registry::with_prefix("bonenfant");
        r.register(
            "build",
            "Always 1; the version as a label",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        r.register_with_unit(
            "uptime",
            "Seconds since the process started",
            Unit::Seconds,
            ConstGauge::new(self.uptime().as_secs()),
        );
        r.register(
            "requests",
            "Requests by CAS endpoint and outcome",
            self.requests.clone(),
        );
        r.register("verdicts", "Validations by verdict", self.verdicts.clone());
        r.register("pin", "Validations by pinning outcome", self.pins.clone());
        r.register(
            "retries",
            "New logins asked by the retry strategy, over validations",
            self.retries.clone(),
        );
        r.register(
            "rerolls",
            "Refused tickets the retry strategy asked the ENT again for",
            self.rerolls.clone(),
        );
        r.register(
            "errors",
            "Errors by stable code and failing side",
            self.errors.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time from request to answer",
            Unit::Seconds,
            self.durations.clone(),
        );
        r.register(
            "connections_open",
            "Client connections open now",
            self.connections_open.clone(),
        );
        r.register(
            "connections",
            "Client connections accepted",
            self.connections_total.clone(),
        );
        for (name, help, value) in [
            (
                "store_tickets",
                "Ticket bindings held by the session store",
                store.tickets,
            ),
            (
                "store_sessions",
                "Browser sessions held by the session store",
                store.sessions,
            ),
            (
                "store_stash",
                "Early validations stashed for Pronote",
                store.stash,
            ),
            (
                "store_validated",
                "Validated tickets kept for single logout",
                store.validated,
            ),
            (
                "store_last_pupils",
                "Last-pupil entries kept for flip detection",
                store.last_pupils,
            ),
        ] {
            r.register(name, help, ConstGauge::new(value));
        }
        r.register_with_unit(
            "store",
            "Bytes held by the session store",
            Unit::Bytes,
            ConstGauge::new(store.bytes),
        );
        r.register(
            "store_evictions",
            "Entries the store evicted to stay bounded",
            ConstCounter::new(store.evictions),
        );
        r.register(
            "store_unauthentic",
            "Store values that did not open under the store keys, treated as absent",
            ConstCounter::new(store.unauthentic),
        );
        r.register(
            "trace_events_lost",
            "Trace events that could not be written",
            ConstCounter::new(events_lost),
        );
        r.register(
            "ready",
            "1 when the proxy accepts traffic",
            ConstGauge::new(u64::from(ready)),
        );
        let up = Family::<DependencyLabels, Gauge>::default();
        for dependency in Dependency::ALL {
            let down = self.health.state(dependency) == State::Down;
            up.get_or_create(&DependencyLabels { dependency })
                .set(i64::from(!down));
        }
        r.register(
            "dependency_up",
            "0 while the latest observation of the ENT or the store failed, else 1",
            up,
        );
        r
    }
}

/// The stable code an event carries, if any.
fn event_code(event: &TraceEvent) -> Option<Code> {
    match event {
        TraceEvent::Validate(v) => v.error,
        TraceEvent::Rejected(e) => Some(e.code),
        TraceEvent::UpstreamError(e) => Some(e.code),
        TraceEvent::PinRefused(e) => Some(e.code),
        TraceEvent::RewriteRefused(e) => Some(e.code),
        _ => None,
    }
}

/// What `/status` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Snapshot {
    pub requests: u64,
    pub verdicts: BTreeMap<&'static str, u64>,
    pub pins: BTreeMap<&'static str, u64>,
    pub connections_open: u64,
}

// === impl ConnectionGuard ===

/// Decrements the open-connections gauge when the connection ends.
#[derive(Debug)]
pub struct ConnectionGuard {
    open: Gauge,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{LatencyMs, Passthrough, Rejected, Validate};

    fn validate(verdict: Verdict, pin: PinOutcome, retries: u32, ms: u64) -> TraceEvent {
        TraceEvent::Validate(Validate {
            verdict,
            rule: crate::verdict::rule::NO_INTENT,
            endpoint: Endpoint::ServiceValidate,
            uai_expected: None,
            uai_asserted: None,
            pin,
            retries,
            latency_ms: LatencyMs(Duration::from_millis(ms)),
            principal: None,
            pupil: None,
            session: None,
            error: None,
        })
    }

    fn render(m: &Metrics, store: StoreStats, lost: u64, ready: bool) -> String {
        m.render(store, lost, ready).expect("rendering to a String")
    }

    #[test]
    fn validations_count_verdicts_pins_and_retries() {
        let m = Metrics::new();
        m.record(&validate(Verdict::Ok, PinOutcome::Retry, 3, 2));
        m.record(&validate(Verdict::WrongChild, PinOutcome::None, 0, 2000));
        let text = render(&m, StoreStats::default(), 0, true);
        assert!(text.contains("bonenfant_verdicts_total{verdict=\"ok\"} 1\n"));
        assert!(text.contains("bonenfant_verdicts_total{verdict=\"wrong_child\"} 1\n"));
        assert!(text.contains("bonenfant_verdicts_total{verdict=\"flip\"} 0\n"));
        assert!(text.contains("bonenfant_pin_total{pin=\"retry\"} 1\n"));
        assert!(text.contains("bonenfant_retries_total 3\n"));
        assert!(text.contains(
            "bonenfant_requests_total{endpoint=\"serviceValidate\",outcome=\"validated\"} 2\n"
        ));
        assert!(text.contains(
            "bonenfant_request_duration_seconds_bucket{kind=\"validation\",le=\"0.0025\"} 1\n"
        ));
        assert!(text.contains(
            "bonenfant_request_duration_seconds_bucket{kind=\"validation\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("bonenfant_request_duration_seconds_count{kind=\"validation\"} 2\n"));
        assert_eq!(m.snapshot().requests, 2);
        assert_eq!(m.snapshot().verdicts["wrong_child"], 1);
    }

    #[test]
    fn errors_are_counted_by_code_and_side() {
        let m = Metrics::new();
        m.record(&TraceEvent::Rejected(Rejected {
            code: Code::CasTicketPrefix,
            endpoint: Some(Endpoint::Login),
            status: 400,
            latency_ms: LatencyMs(Duration::ZERO),
        }));
        let text = render(&m, StoreStats::default(), 0, false);
        assert!(
            text.contains("bonenfant_errors_total{code=\"cas.ticket.prefix\",side=\"client\"} 1\n")
        );
        assert!(
            text.contains("bonenfant_requests_total{endpoint=\"login\",outcome=\"rejected\"} 1\n")
        );
        assert!(text.contains("bonenfant_ready 0\n"));
    }

    #[test]
    fn connection_gauge_follows_guards() {
        let m = Metrics::new();
        let a = m.connection();
        let b = m.connection();
        drop(a);
        assert_eq!(m.snapshot().connections_open, 1);
        drop(b);
        assert_eq!(m.snapshot().connections_open, 0);
        let text = render(&m, StoreStats::default(), 0, true);
        assert!(text.contains("bonenfant_connections_total 2\n"));
        assert!(text.contains("bonenfant_connections_open 0\n"));
    }

    #[test]
    fn scrape_time_figures_are_rendered() {
        let m = Metrics::new();
        m.record(&TraceEvent::Passthrough(Passthrough {
            endpoint: None,
            status: 200,
            latency_ms: LatencyMs(Duration::from_secs(60)),
        }));
        let store = StoreStats {
            sessions: 2,
            bytes: 300,
            evictions: 4,
            unauthentic: 6,
            ..StoreStats::default()
        };
        let text = render(&m, store, 5, true);
        assert!(text.contains("bonenfant_store_unauthentic_total 6\n"));
        assert!(text.contains("bonenfant_trace_events_lost_total 5\n"));
        assert!(text.contains("bonenfant_store_sessions 2\n"));
        assert!(text.contains("bonenfant_store_bytes 300\n"));
        assert!(text.contains("bonenfant_store_evictions_total 4\n"));
        assert!(text.contains("bonenfant_ready 1\n"));
        assert!(text.contains(&format!(
            "bonenfant_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(
            text.contains("bonenfant_requests_total{endpoint=\"other\",outcome=\"forwarded\"} 1\n")
        );
        assert!(text
            .contains("bonenfant_request_duration_seconds_bucket{kind=\"other\",le=\"10\"} 0\n"));
    }
}
