//! Counters the proxy feeds and `/metrics` renders in the Prometheus text format.
//!
//! The proxy records each request once, from its summary trace event
//! ([`Metrics::record`]), so the metrics and the trace log can never disagree. Label
//! values are `&'static str` names from closed lists (endpoints, verdicts, outcomes,
//! stable error codes), so cardinality is bounded and no identifier can become a label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::code::Code;
use crate::events::{FrontAction, PinOutcome, TraceEvent};
use crate::session::StoreStats;
use crate::verdict::Verdict;

/// Upper bounds of the latency buckets, in microseconds: from a proxy hop (sub-ms)
/// to the ENT's slowest answers (seconds).
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// The proxy's counters. One per process, shared behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    /// For `/status`'s uptime.
    started: Instant,
    /// Requests by (endpoint, outcome).
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Validations by verdict, in [`Verdict::ALL`] order.
    verdicts: [AtomicU64; Verdict::ALL.len()],
    /// Validations by pin outcome, in [`PinOutcome::ALL`] order.
    pins: [AtomicU64; PinOutcome::ALL.len()],
    /// Sum of `retries` over validations.
    retries: AtomicU64,
    /// Errors by stable code, with the side that failed (`upstream`, `downstream`).
    errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Latency of validations.
    validation_latency: Histogram,
    /// Latency of every other request.
    other_latency: Histogram,
    connections_open: Arc<AtomicU64>,
    connections_total: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            requests: Mutex::default(),
            verdicts: Default::default(),
            pins: Default::default(),
            retries: AtomicU64::new(0),
            errors: Mutex::default(),
            validation_latency: Histogram::default(),
            other_latency: Histogram::default(),
            connections_open: Arc::default(),
            connections_total: AtomicU64::new(0),
        }
    }

    /// Counts one request from its summary event (call it with the event you emit).
    /// `startup`, `shutdown` and `events_lost` are not requests and count nothing.
    pub fn record(&self, event: &TraceEvent) {
        let (endpoint, outcome, latency) = match event {
            TraceEvent::Validate(v) => {
                bump(
                    &self.verdicts,
                    Verdict::ALL.iter().position(|x| *x == v.verdict),
                );
                bump(&self.pins, PinOutcome::ALL.iter().position(|x| *x == v.pin));
                self.retries
                    .fetch_add(u64::from(v.retries), Ordering::Relaxed);
                if let Some(code) = v.error {
                    self.error(code);
                }
                self.validation_latency.observe(v.latency_ms.0);
                let outcome = if v.error.is_some() {
                    "validation_failed"
                } else {
                    "validated"
                };
                (v.endpoint.as_str(), outcome, None)
            }
            TraceEvent::LoginRedirect(e) => {
                let outcome = match e.action {
                    FrontAction::Forwarded | FrontAction::Delivered => "login_redirect",
                    FrontAction::Relogin => "retry",
                    FrontAction::GaveUp => "retry_gave_up",
                    FrontAction::Chooser => "chooser",
                };
                ("login", outcome, Some(e.latency_ms.0))
            }
            // Details of a login whose `login_redirect` counts the request.
            TraceEvent::Retry(_) | TraceEvent::RetryGaveUp(_) => return,
            TraceEvent::RewriteRefused(e) => {
                self.error(e.code);
                return;
            }
            TraceEvent::Chooser(_) => ("chooser", "chooser", None),
            TraceEvent::PinSet(_) => ("chooser", "pin_set", None),
            TraceEvent::PinRefused(e) => {
                self.error(e.code);
                ("chooser", "pin_refused", None)
            }
            TraceEvent::Logout(_) => ("logout", "logout", None),
            TraceEvent::Passthrough(e) => (
                endpoint_label(e.endpoint),
                "forwarded",
                Some(e.latency_ms.0),
            ),
            TraceEvent::Rejected(e) => {
                self.error(e.code);
                (endpoint_label(e.endpoint), "rejected", Some(e.latency_ms.0))
            }
            TraceEvent::UpstreamError(e) => {
                self.error(e.code);
                (
                    endpoint_label(e.endpoint),
                    "upstream_error",
                    Some(e.latency_ms.0),
                )
            }
            TraceEvent::Startup(_) | TraceEvent::Shutdown(_) | TraceEvent::EventsLost(_) => return,
        };
        if let Some(latency) = latency {
            self.other_latency.observe(latency);
        }
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests.entry((endpoint, outcome)).or_default() += 1;
    }

    /// Counts an accepted connection until the guard drops (pair increments and
    /// decrements in one place, as Sozu does).
    pub fn connection(&self) -> ConnectionGuard {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            open: Arc::clone(&self.connections_open),
        }
    }

    fn error(&self, code: Code) {
        let side = code.side().as_str();
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        *errors.entry((code.as_str(), side)).or_default() += 1;
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A consistent-enough copy for `/status` (each counter read once).
    pub fn snapshot(&self) -> Snapshot {
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        Snapshot {
            requests: requests.values().sum(),
            verdicts: Verdict::ALL
                .iter()
                .zip(&self.verdicts)
                .map(|(v, n)| (v.as_str(), n.load(Ordering::Relaxed)))
                .collect(),
            pins: PinOutcome::ALL
                .iter()
                .zip(&self.pins)
                .map(|(p, n)| (p.as_str(), n.load(Ordering::Relaxed)))
                .collect(),
            connections_open: self.connections_open.load(Ordering::Relaxed),
        }
    }

    /// Renders every metric, plus the store's and the trace writer's figures.
    pub fn render(&self, store: StoreStats, events_lost: u64, ready: bool) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "bonenfant_build_info",
            "gauge",
            "Always 1; the version as a label.",
        );
        sample(
            &mut out,
            "bonenfant_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        header(
            &mut out,
            "bonenfant_uptime_seconds",
            "gauge",
            "Seconds since the process started.",
        );
        sample(
            &mut out,
            "bonenfant_uptime_seconds",
            &[],
            self.uptime().as_secs(),
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        header(
            &mut out,
            "bonenfant_requests_total",
            "counter",
            "Requests by CAS endpoint and outcome.",
        );
        for ((endpoint, outcome), n) in &requests {
            sample(
                &mut out,
                "bonenfant_requests_total",
                &[("endpoint", endpoint), ("outcome", outcome)],
                *n,
            );
        }
        header(
            &mut out,
            "bonenfant_verdicts_total",
            "counter",
            "Validations by verdict.",
        );
        for (verdict, n) in Verdict::ALL.iter().zip(&self.verdicts) {
            sample(
                &mut out,
                "bonenfant_verdicts_total",
                &[("verdict", verdict.as_str())],
                n.load(Ordering::Relaxed),
            );
        }
        header(
            &mut out,
            "bonenfant_pin_total",
            "counter",
            "Validations by pinning outcome.",
        );
        for (pin, n) in PinOutcome::ALL.iter().zip(&self.pins) {
            sample(
                &mut out,
                "bonenfant_pin_total",
                &[("pin", pin.as_str())],
                n.load(Ordering::Relaxed),
            );
        }
        header(
            &mut out,
            "bonenfant_retries_total",
            "counter",
            "New logins asked by the retry strategy, over validations.",
        );
        sample(
            &mut out,
            "bonenfant_retries_total",
            &[],
            self.retries.load(Ordering::Relaxed),
        );
        let errors = self
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        header(
            &mut out,
            "bonenfant_errors_total",
            "counter",
            "Errors by stable code and failing side.",
        );
        for ((code, side), n) in &errors {
            sample(
                &mut out,
                "bonenfant_errors_total",
                &[("code", code), ("side", side)],
                *n,
            );
        }
        header(
            &mut out,
            "bonenfant_request_duration_seconds",
            "histogram",
            "Time from request to answer.",
        );
        self.validation_latency.render(
            &mut out,
            "bonenfant_request_duration_seconds",
            "validation",
        );
        self.other_latency
            .render(&mut out, "bonenfant_request_duration_seconds", "other");
        header(
            &mut out,
            "bonenfant_connections_open",
            "gauge",
            "Client connections open now.",
        );
        sample(
            &mut out,
            "bonenfant_connections_open",
            &[],
            self.connections_open.load(Ordering::Relaxed),
        );
        header(
            &mut out,
            "bonenfant_connections_total",
            "counter",
            "Client connections accepted.",
        );
        sample(
            &mut out,
            "bonenfant_connections_total",
            &[],
            self.connections_total.load(Ordering::Relaxed),
        );
        for (name, kind, help, value) in [
            (
                "bonenfant_store_tickets",
                "gauge",
                "Ticket bindings held by the session store.",
                store.tickets,
            ),
            (
                "bonenfant_store_sessions",
                "gauge",
                "Browser sessions held by the session store.",
                store.sessions,
            ),
            (
                "bonenfant_store_stash",
                "gauge",
                "Early validations stashed for Pronote.",
                store.stash,
            ),
            (
                "bonenfant_store_validated",
                "gauge",
                "Validated tickets kept for single logout.",
                store.validated,
            ),
            (
                "bonenfant_store_last_pupils",
                "gauge",
                "Last-pupil entries kept for flip detection.",
                store.last_pupils,
            ),
            (
                "bonenfant_store_bytes",
                "gauge",
                "Bytes held by the session store.",
                store.bytes,
            ),
            (
                "bonenfant_store_evictions_total",
                "counter",
                "Entries the store evicted to stay bounded.",
                store.evictions,
            ),
            (
                "bonenfant_trace_events_lost_total",
                "counter",
                "Trace events that could not be written.",
                events_lost,
            ),
            (
                "bonenfant_ready",
                "gauge",
                "1 when the proxy accepts traffic.",
                u64::from(ready),
            ),
        ] {
            header(&mut out, name, kind, help);
            sample(&mut out, name, &[], value);
        }
        out
    }
}

fn bump(counters: &[AtomicU64], index: Option<usize>) {
    if let Some(counter) = index.and_then(|i| counters.get(i)) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn endpoint_label(endpoint: Option<crate::cas::Endpoint>) -> &'static str {
    endpoint.map_or("other", |e| e.as_str())
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Prometheus label escaping: backslash, double quote, newline.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
    open: Arc<AtomicU64>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

// === impl Histogram ===

/// A fixed-bucket latency histogram (per-bucket counts; cumulated when rendered).
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    /// Observations above the last bucket.
    overflow: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        match BUCKETS_US.iter().position(|bound| us <= *bound) {
            Some(i) => bump(&self.buckets, Some(i)),
            None => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, kind: &str) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS_US.iter().zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let le = format!("{}", *bound as f64 / 1e6);
            sample(
                out,
                &format!("{name}_bucket"),
                &[("kind", kind), ("le", &le)],
                cumulative,
            );
        }
        cumulative += self.overflow.load(Ordering::Relaxed);
        sample(
            out,
            &format!("{name}_bucket"),
            &[("kind", kind), ("le", "+Inf")],
            cumulative,
        );
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{kind=\"{kind}\"}} {sum}");
        sample(out, &format!("{name}_count"), &[("kind", kind)], cumulative);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cas::Endpoint;
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

    #[test]
    fn validations_count_verdicts_pins_and_retries() {
        let m = Metrics::new();
        m.record(&validate(Verdict::Ok, PinOutcome::Retry, 3, 2));
        m.record(&validate(Verdict::WrongChild, PinOutcome::None, 0, 2000));
        let text = m.render(StoreStats::default(), 0, true);
        assert!(text.contains("bonenfant_verdicts_total{verdict=\"ok\"} 1\n"));
        assert!(text.contains("bonenfant_verdicts_total{verdict=\"wrong_child\"} 1\n"));
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
        let text = m.render(StoreStats::default(), 0, false);
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
        assert!(m
            .render(StoreStats::default(), 0, true)
            .contains("bonenfant_connections_total 2\n"));
    }

    #[test]
    fn every_sample_line_is_well_formed() {
        let m = Metrics::new();
        m.record(&TraceEvent::Passthrough(Passthrough {
            endpoint: None,
            status: 200,
            latency_ms: LatencyMs(Duration::from_secs(60)),
        }));
        let text = m.render(
            StoreStats {
                sessions: 2,
                ..StoreStats::default()
            },
            5,
            true,
        );
        let sample =
            regex::Regex::new(r#"^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$"#)
                .unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(sample.is_match(line), "bad sample line: {line}");
        }
        assert!(text.contains("bonenfant_trace_events_lost_total 5\n"));
        assert!(text.contains("bonenfant_store_sessions 2\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
