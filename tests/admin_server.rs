//! The admin server on a real socket: health, readiness, metrics, status and the live
//! status page.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use bonenfant::admin::{self, AdminState, Dependency, Metrics, Readiness};
use bonenfant::cas::Endpoint;
use bonenfant::code::Code;
use bonenfant::events::{
    FrontAction, LatencyMs, LoginRedirect, LossCounter, Passthrough, PinOutcome, Rejected,
    TraceEvent, UpstreamError, Validate,
};
use bonenfant::pupil::{DirectoryIndex, Uai};
use bonenfant::session::StoreStats;
use bonenfant::verdict::Verdict;
use openmetrics_parser::{
    prometheus, HistogramValue, MetricsExposition, PrometheusType, PrometheusValue,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Admin {
    addr: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Admin {
    async fn start() -> Self {
        Self::start_with(HashMap::new(), false).await
    }

    /// With collège names, and the store required for readiness or not.
    /// `names` is what the directory calls each collège (UAI → name).
    async fn start_with(names: HashMap<String, String>, store_required: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        let readiness = Readiness::new(metrics.health().clone(), store_required);
        let state = AdminState::new(
            Arc::clone(&metrics),
            readiness.clone(),
            LossCounter::default(),
            || StoreStats {
                sessions: 7,
                ..StoreStats::default()
            },
        )
        .with_directory(directory_naming(names).into());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(admin::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Admin {
            addr,
            metrics,
            readiness,
            stop: Some(stop),
            server,
        }
    }

    /// One request on a fresh connection; returns (status, body).
    async fn get(&self, method: &str, path: &str) -> (u16, String) {
        let (status, _head, body) = self.exchange(method, path).await;
        (status, body)
    }

    /// One request on a fresh connection; returns (status, head, body).
    async fn exchange(&self, method: &str, path: &str) -> (u16, String, String) {
        request(self.addr, method, path).await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("admin server stops after shutdown")
            .unwrap();
    }
}

/// One request to an admin server on a fresh connection: (status, head, body).
pub(crate) async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn healthz_answers_while_not_ready() {
    let admin = Admin::start().await;
    assert_eq!(admin.get("GET", "/healthz").await, (200, "ok\n".into()));
    let (status, body) = admin.get("GET", "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("not_serving"));
    admin.stop().await;
}

#[tokio::test]
async fn readyz_follows_serving_and_the_dependencies() {
    let admin = Admin::start().await;
    let health = admin.metrics.health();
    admin.readiness.set_serving(true);
    assert_eq!(admin.get("GET", "/readyz").await, (200, "ready\n".into()));
    // An ENT outage degrades but never fails readiness (docs/operations.md); so does a
    // store outage when the store is not required.
    health.failed(Dependency::Ent, Code::ProxyUpstreamTimeout);
    health.failed(Dependency::Store, Code::StoreUnavailable);
    assert_eq!(
        admin.get("GET", "/readyz").await,
        (200, "ready; degraded: ent_down store_down\n".into())
    );
    health.succeeded(Dependency::Ent);
    health.succeeded(Dependency::Store);
    assert_eq!(admin.get("GET", "/readyz").await, (200, "ready\n".into()));
    admin.readiness.set_serving(false);
    assert_eq!(
        admin.get("GET", "/readyz").await,
        (503, "not ready: not_serving\n".into())
    );
    admin.stop().await;
}

#[tokio::test]
async fn readyz_fails_on_a_store_outage_when_the_store_is_required() {
    let admin = Admin::start_with(HashMap::new(), true).await;
    let health = admin.metrics.health();
    admin.readiness.set_serving(true);
    health.failed(Dependency::Store, Code::StoreUnavailable);
    assert_eq!(
        admin.get("GET", "/readyz").await,
        (503, "not ready: store_down\n".into())
    );
    let metrics = admin.get("GET", "/metrics").await.1;
    assert!(metrics.contains("bonenfant_ready 0\n"), "{metrics}");
    assert!(
        metrics.contains("bonenfant_dependency_up{dependency=\"store\"} 0\n"),
        "{metrics}"
    );
    // The summary events tell a store outage too.
    health.succeeded(Dependency::Store);
    admin.metrics.record(&validation(
        Verdict::Unresolved,
        PinOutcome::None,
        1,
        Some(Code::StoreUnavailable),
    ));
    assert_eq!(admin.get("GET", "/readyz").await.0, 503);
    admin.stop().await;
}

fn validation(verdict: Verdict, pin: PinOutcome, ms: u64, error: Option<Code>) -> TraceEvent {
    TraceEvent::Validate(Validate {
        verdict,
        rule: bonenfant::verdict::rule::INTENT_PIN,
        endpoint: Endpoint::ServiceValidate,
        uai_expected: None,
        uai_asserted: None,
        pin,
        retries: 8,
        latency_ms: LatencyMs(Duration::from_millis(ms)),
        principal: None,
        pupil: None,
        session: None,
        error,
    })
}

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

/// The value of the sample of `family` whose labels are exactly `labels`.
fn sample<'a>(
    metrics: &'a Exposition,
    family: &str,
    labels: &[(&str, &str)],
) -> &'a PrometheusValue {
    let family = metrics
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    family
        .iter_samples()
        .find(|sample| {
            let set = sample.get_labelset().unwrap();
            set.iter().count() == labels.len()
                && labels
                    .iter()
                    .all(|(name, value)| set.get_label_value(name) == Some(value))
        })
        .map(|sample| &sample.value)
        .unwrap_or_else(|| panic!("no sample {family:?}{labels:?}"))
}

/// A counter's or a gauge's value.
fn value(metrics: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(metrics, family, labels) {
        PrometheusValue::Counter(counter) => counter.value.as_f64(),
        PrometheusValue::Gauge(gauge) => gauge.as_f64(),
        other => panic!("{family} is neither a counter nor a gauge: {other:?}"),
    }
}

/// `bonenfant_request_duration_seconds{kind}`.
fn durations<'a>(metrics: &'a Exposition, kind: &str) -> &'a HistogramValue {
    let family = "bonenfant_request_duration_seconds";
    match sample(metrics, family, &[("kind", kind)]) {
        PrometheusValue::Histogram(histogram) => histogram,
        other => panic!("{family} is not a histogram: {other:?}"),
    }
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_recorded_events() {
    let admin = Admin::start().await;
    admin.readiness.set_serving(true);
    let m = &admin.metrics;
    m.record(&validation(
        Verdict::WrongChild,
        PinOutcome::GaveUp,
        3,
        None,
    ));
    m.record(&validation(
        Verdict::Unresolved,
        PinOutcome::None,
        40,
        Some(Code::CasFailureInvalidTicket),
    ));
    m.record(&TraceEvent::Rejected(Rejected {
        code: Code::CasTicketPrefix,
        endpoint: Some(Endpoint::Login),
        status: 400,
        latency_ms: LatencyMs(Duration::from_millis(1)),
    }));
    m.record(&TraceEvent::UpstreamError(UpstreamError {
        code: Code::ProxyUpstreamTimeout,
        endpoint: None,
        status: 504,
        latency_ms: LatencyMs(Duration::from_secs(11)),
    }));
    m.record(&TraceEvent::Passthrough(Passthrough {
        endpoint: None,
        status: 200,
        latency_ms: LatencyMs(Duration::from_millis(2)),
    }));

    let (status, head, body) = admin.exchange("GET", "/metrics").await;
    assert_eq!(status, 200);
    // Prometheus's classic text format, which every scraper reads: no `# EOF` line.
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(!body.contains("# EOF"), "{body}");
    let metrics = prometheus::parse_prometheus(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));

    // Every family docs/events.md lists, with its type.
    for (family, kind) in [
        ("bonenfant_build_info", PrometheusType::Gauge),
        ("bonenfant_uptime_seconds", PrometheusType::Gauge),
        ("bonenfant_requests_total", PrometheusType::Counter),
        ("bonenfant_verdicts_total", PrometheusType::Counter),
        ("bonenfant_pin_total", PrometheusType::Counter),
        ("bonenfant_retries_total", PrometheusType::Counter),
        ("bonenfant_errors_total", PrometheusType::Counter),
        (
            "bonenfant_request_duration_seconds",
            PrometheusType::Histogram,
        ),
        ("bonenfant_connections_open", PrometheusType::Gauge),
        ("bonenfant_connections_total", PrometheusType::Counter),
        ("bonenfant_store_tickets", PrometheusType::Gauge),
        ("bonenfant_store_sessions", PrometheusType::Gauge),
        ("bonenfant_store_stash", PrometheusType::Gauge),
        ("bonenfant_store_validated", PrometheusType::Gauge),
        ("bonenfant_store_last_pupils", PrometheusType::Gauge),
        ("bonenfant_store_bytes", PrometheusType::Gauge),
        ("bonenfant_store_evictions_total", PrometheusType::Counter),
        ("bonenfant_store_unauthentic_total", PrometheusType::Counter),
        ("bonenfant_rerolls_total", PrometheusType::Counter),
        ("bonenfant_trace_events_lost_total", PrometheusType::Counter),
        ("bonenfant_ready", PrometheusType::Gauge),
        ("bonenfant_dependency_up", PrometheusType::Gauge),
    ] {
        let found = metrics.families.get(family).map(|f| &f.family_type);
        assert_eq!(found, Some(&kind), "{family}");
    }
    assert_eq!(metrics.families.len(), 22, "{body}");

    let requests = "bonenfant_requests_total";
    for (endpoint, outcome) in [
        ("serviceValidate", "validated"),
        ("serviceValidate", "validation_failed"),
        ("login", "rejected"),
        ("other", "upstream_error"),
        ("other", "forwarded"),
    ] {
        let labels = [("endpoint", endpoint), ("outcome", outcome)];
        assert_eq!(value(&metrics, requests, &labels), 1.0, "{labels:?}");
    }
    let verdicts = "bonenfant_verdicts_total";
    assert_eq!(
        value(&metrics, verdicts, &[("verdict", "wrong_child")]),
        1.0
    );
    assert_eq!(value(&metrics, verdicts, &[("verdict", "unresolved")]), 1.0);
    assert_eq!(value(&metrics, verdicts, &[("verdict", "flip")]), 0.0);
    assert_eq!(
        value(&metrics, "bonenfant_pin_total", &[("pin", "gave_up")]),
        1.0
    );
    assert_eq!(value(&metrics, "bonenfant_retries_total", &[]), 16.0);
    let errors = "bonenfant_errors_total";
    for (code, side) in [
        ("cas.ticket.prefix", "client"),
        ("cas.failure.invalid_ticket", "ent"),
        ("proxy.upstream_timeout", "ent"),
    ] {
        let labels = [("code", code), ("side", side)];
        assert_eq!(value(&metrics, errors, &labels), 1.0, "{labels:?}");
    }
    assert_eq!(metrics.families[errors].iter_samples().count(), 3);

    // Validations (3 ms and 40 ms) apart from the other requests.
    let validations = durations(&metrics, "validation");
    let cumulative: Vec<(f64, f64)> = validations
        .buckets
        .iter()
        .map(|b| (b.upper_bound, b.count.as_f64()))
        .collect();
    assert_eq!(cumulative.len(), 15, "14 bounds and +Inf: {cumulative:?}");
    for (bound, count) in [
        (0.0025, 0.0),
        (0.005, 1.0),
        (0.025, 1.0),
        (0.05, 2.0),
        (f64::INFINITY, 2.0),
    ] {
        assert!(
            cumulative.contains(&(bound, count)),
            "le={bound}: {cumulative:?}"
        );
    }
    assert_eq!(validations.count, Some(2));
    let sum = validations.sum.map(|s| s.as_f64()).unwrap_or_default();
    assert!((sum - 0.043).abs() < 1e-9, "{sum}");
    let others = durations(&metrics, "other");
    // 1 ms, 2 ms and an 11 s upstream timeout, over the last bound.
    assert_eq!(others.count, Some(3));
    let ten_seconds = others
        .buckets
        .iter()
        .find(|b| b.upper_bound == 10.0)
        .unwrap();
    assert_eq!(ten_seconds.count.as_f64(), 2.0);

    assert_eq!(value(&metrics, "bonenfant_store_sessions", &[]), 7.0);
    assert_eq!(
        value(&metrics, "bonenfant_trace_events_lost_total", &[]),
        0.0
    );
    assert_eq!(value(&metrics, "bonenfant_ready", &[]), 1.0);
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(value(&metrics, "bonenfant_build_info", &version), 1.0);
    admin.stop().await;
}

#[tokio::test]
async fn status_is_json() {
    let admin = Admin::start().await;
    admin.readiness.set_serving(true);
    let (status, body) = admin.get("GET", "/status").await;
    assert_eq!(status, 200);
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["ready"], true);
    assert_eq!(value["store"]["sessions"], 7);
    assert_eq!(value["traffic"]["verdicts"]["ok"], 0);
    assert_eq!(value["health"]["ent"]["state"], "unknown");
    assert_eq!(
        value["health"]["ent"]["last_success"],
        serde_json::Value::Null
    );
    assert_eq!(value["last_hour"]["hour"]["validations"], 0);
    admin.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let admin = Admin::start().await;
    assert_eq!(admin.get("GET", "/nope").await.0, 404);
    assert_eq!(admin.get("POST", "/").await.0, 405);
    assert_eq!(admin.get("POST", "/metrics").await.0, 405);
    assert_eq!(admin.get("HEAD", "/healthz").await.0, 200);
    admin.stop().await;
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let admin = Admin::start().await;
    let mut idle = TcpStream::connect(admin.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    admin.stop().await;
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

fn at(uai: &str, verdict: Verdict, pin: PinOutcome, error: Option<Code>) -> TraceEvent {
    let TraceEvent::Validate(mut v) = validation(verdict, pin, 2, error) else {
        unreachable!()
    };
    v.uai_expected = Uai::parse(uai);
    TraceEvent::Validate(v)
}

fn login(uai: &str, action: FrontAction) -> TraceEvent {
    TraceEvent::LoginRedirect(LoginRedirect {
        uai_expected: Uai::parse(uai),
        session: None,
        bound: true,
        action,
        retries: 3,
        principal: None,
        latency_ms: LatencyMs(Duration::from_millis(5)),
    })
}

/// The status page, over a socket: the figures of a scripted run, per collège with the
/// directory's names, escaped whatever those names hold; strict headers; no script.
#[tokio::test]
async fn status_page_shows_the_run_per_collège_and_escapes_names() {
    let hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(1)>";
    let names = HashMap::from([
        ("0330101A".to_owned(), "Collège Jean Moulin".to_owned()),
        ("0330202B".to_owned(), hostile.to_owned()),
    ]);
    let admin = Admin::start_with(names, false).await;
    admin.readiness.set_serving(true);
    let m = &admin.metrics;
    for _ in 0..4 {
        m.record(&at("0330101A", Verdict::Ok, PinOutcome::None, None));
    }
    m.record(&at("0330101A", Verdict::Ok, PinOutcome::Retry, None));
    m.record(&at("0330202B", Verdict::WrongChild, PinOutcome::None, None));
    m.record(&at("0330202B", Verdict::WrongChild, PinOutcome::None, None));
    m.record(&at(
        "0330202B",
        Verdict::Unresolved,
        PinOutcome::None,
        Some(Code::ProxyUpstreamTimeout),
    ));
    m.record(&login("0330202B", FrontAction::GaveUp));
    m.record(&login("0330101A", FrontAction::Chooser));
    m.health().succeeded(Dependency::Store);
    m.health()
        .failed(Dependency::Ent, Code::ProxyUpstreamConnect);

    let (status, head, page) = admin.exchange("GET", "/").await;
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    for header in [
        "content-type: text/html; charset=utf-8",
        "refresh: 10",
        "content-security-policy: default-src 'none'; style-src 'sha256-",
        "x-content-type-options: nosniff",
        "cache-control: no-store",
    ] {
        assert!(head.contains(header), "{header}: {head}");
    }
    for part in [
        "Collège Jean Moulin <code>0330101A</code>",
        // 0330101A: 5 validations, 0 wrong, 1 corrected, 1 chooser, 0 gave up, 0 failed.
        "<td>5</td><td>0</td><td>1</td><td>1</td><td>0</td><td>0</td>",
        // 0330202B: 3 validations, 2 wrong, 0 corrected, 0 chooser, 1 gave up, 1 failed.
        "<td>3</td><td class=\"bad\">2</td><td>0</td><td>0</td><td class=\"bad\">1</td><td class=\"bad\">1</td>",
        "<code>proxy.upstream_connect</code>",
        "<code>wrong_child</code>",
        "<code>retry_gave_up</code>",
        "<code>proxy.upstream_timeout</code>",
        "en panne",
    ] {
        assert!(page.contains(part), "{part}\n{page}");
    }
    assert!(!page.contains(hostile), "{page}");
    assert!(
        page.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        ),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");

    // `/status` holds the same figures, as JSON.
    let status: serde_json::Value =
        serde_json::from_str(&admin.get("GET", "/status").await.1).unwrap();
    let hour = &status["last_hour"];
    assert_eq!(hour["hour"]["validations"], 8);
    assert_eq!(hour["hour"]["wrong_landings"], 2);
    assert_eq!(hour["hour"]["verdicts"]["wrong_child"], 2);
    assert_eq!(hour["establishments"][0]["uai"], "0330101A");
    assert_eq!(hour["establishments"][0]["name"], "Collège Jean Moulin");
    assert_eq!(hour["establishments"][1]["name"], hostile);
    assert_eq!(hour["establishments"][1]["failed"], 1);
    assert_eq!(status["health"]["ent"]["state"], "down");
    assert_eq!(
        status["health"]["ent"]["last_error"],
        "proxy.upstream_connect"
    );
    // Pseudonymous: no principal, pupil or session field anywhere.
    let text = status.to_string();
    for field in ["\"principal\"", "\"pupil\"", "\"session\""] {
        assert!(!text.contains(field), "{field}: {text}");
    }
    admin.stop().await;
}

/// A directory index that names these collèges and holds nothing else.
fn directory_naming(names: HashMap<String, String>) -> DirectoryIndex {
    let mut index = DirectoryIndex::default();
    for (uai, name) in names {
        index.add_establishment(Uai::parse(&uai).unwrap(), &name);
    }
    index
}
