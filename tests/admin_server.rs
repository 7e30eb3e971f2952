//! The admin server on a real socket: health, readiness, metrics and status.

use std::sync::Arc;
use std::time::Duration;

use bonenfant::admin::{self, AdminState, Metrics, Readiness};
use bonenfant::cas::Endpoint;
use bonenfant::events::{LatencyMs, LossCounter, PinOutcome, TraceEvent, Validate};
use bonenfant::session::StoreStats;
use bonenfant::verdict::Verdict;
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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        let readiness = Readiness::default();
        let state = AdminState::new(
            Arc::clone(&metrics),
            readiness.clone(),
            LossCounter::default(),
            || StoreStats {
                sessions: 7,
                ..StoreStats::default()
            },
        );
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
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
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
async fn readyz_follows_the_proxy_flags() {
    let admin = Admin::start().await;
    admin.readiness.set_serving(true);
    assert_eq!(admin.get("GET", "/readyz").await, (200, "ready\n".into()));
    admin.readiness.set_upstream_healthy(false);
    let (status, body) = admin.get("GET", "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("upstream_unhealthy"));
    admin.readiness.set_upstream_healthy(true);
    admin.readiness.set_store_healthy(false);
    let (status, body) = admin.get("GET", "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("store_unhealthy"));
    admin.stop().await;
}

#[tokio::test]
async fn metrics_show_recorded_validations() {
    let admin = Admin::start().await;
    admin.metrics.record(&TraceEvent::Validate(Validate {
        verdict: Verdict::WrongChild,
        rule: bonenfant::verdict::rule::INTENT_PIN,
        endpoint: Endpoint::ServiceValidate,
        uai_expected: None,
        uai_asserted: None,
        pin: PinOutcome::GaveUp,
        retries: 8,
        latency_ms: LatencyMs(Duration::from_millis(3)),
        principal: None,
        pupil: None,
        session: None,
        error: None,
    }));
    let (status, body) = admin.get("GET", "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("bonenfant_verdicts_total{verdict=\"wrong_child\"} 1\n"));
    assert!(body.contains("bonenfant_pin_total{pin=\"gave_up\"} 1\n"));
    assert!(body.contains("bonenfant_store_sessions 7\n"));
    assert!(body.contains("bonenfant_trace_events_lost_total 0\n"));
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
    admin.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let admin = Admin::start().await;
    assert_eq!(admin.get("GET", "/nope").await.0, 404);
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
