//! Readiness tells the truth (issue 11, finding 7: `/readyz` never failed and `/status`
//! said `upstream_healthy: true` with the ENT stopped): `/readyz`, `/status` and the
//! status page follow the ENT and Redis going away and coming back, from real traffic
//! and from the periodic probe. Polled with bounded loops; the bound only turns a hang
//! into a failure.

use std::net::SocketAddr;
use std::time::Duration;

use bonenfant::proxy::exchange::RunningProxy;
use http::StatusCode;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::admin_server::request;
use crate::session_support::RedisServer;
use crate::support::cas::{bonenfant, claire_success, service, validate, HUGO, LEA};
use crate::support::{Reply, ScriptedUpstream, PATIENCE};

/// An ENT that answers every request `200`, on a port it keeps across restarts.
struct Ent {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Ent {
    async fn start() -> Self {
        let mut ent = Ent {
            addr: "127.0.0.1:0".parse().unwrap(),
            task: None,
        };
        ent.listen().await;
        ent
    }

    async fn listen(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.addr = listener.local_addr().unwrap();
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(async move {
                    let service = service_fn(|_request| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    fn url(&self) -> String {
        format!("http://{}/cas", self.addr)
    }

    /// Gone: the listener and every connection closed.
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        self.listen().await;
    }
}

/// One GET on the admin server: (status, body).
async fn admin_get(proxy: &RunningProxy, path: &str) -> (u16, String) {
    let (status, _head, body) =
        request(proxy.admin.expect("the admin server is on"), "GET", path).await;
    (status, body)
}

async fn status(proxy: &RunningProxy) -> serde_json::Value {
    let (code, body) = admin_get(proxy, "/status").await;
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}

/// Polls `probe` until it gives a value; the bound only turns a hang into a failure.
async fn poll<T, F>(what: &str, mut probe: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(tokio::time::Instant::now() < deadline, "{what}: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `/status` until `what` (e.g. `ent`) is in `state`, and returns that status.
async fn until_state(proxy: &RunningProxy, what: &str, state: &str) -> serde_json::Value {
    poll(&format!("{what} never became {state}"), || async {
        let status = status(proxy).await;
        if status["health"][what]["state"] == state {
            Ok(status)
        } else {
            Err(format!("{status:#}"))
        }
    })
    .await
}

/// Polls `/readyz` until it answers `code`, and returns its body.
async fn until_readyz(proxy: &RunningProxy, code: u16) -> String {
    poll(&format!("/readyz never answered {code}"), || async {
        match admin_get(proxy, "/readyz").await {
            (status, body) if status == code => Ok(body),
            (status, body) => Err(format!("{status} {body}")),
        }
    })
    .await
}

/// bonenfant in front of `ent`, its admin server on.
async fn with_admin(ent: &Ent) -> RunningProxy {
    bonenfant(&ent.url(), None, |raw| {
        raw.admin = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
}

#[tokio::test]
async fn the_ent_going_away_and_coming_back_shows_within_seconds() {
    let mut ent = Ent::start().await;
    let proxy = with_admin(&ent).await;

    // The probe finds the ENT with no traffic at all.
    let up = until_state(&proxy, "ent", "up").await;
    assert!(up["health"]["ent"]["last_success"].is_string(), "{up:#}");
    assert_eq!(admin_get(&proxy, "/readyz").await, (200, "ready\n".into()));

    ent.stop().await;
    let down = until_state(&proxy, "ent", "down").await;
    assert_eq!(down["upstream_healthy"], false);
    assert_eq!(
        down["health"]["ent"]["last_error"], "proxy.upstream_connect",
        "{down:#}"
    );
    assert!(down["health"]["ent"]["last_failure"].is_string());
    assert_eq!(down["degraded"], serde_json::json!(["ent_down"]));
    // Every instance shares the ENT: readiness says degraded but stays up
    // (docs/operations.md).
    assert_eq!(
        admin_get(&proxy, "/readyz").await,
        (200, "ready; degraded: ent_down\n".into())
    );
    let (code, page) = admin_get(&proxy, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("en panne"), "{page}");
    let metrics = admin_get(&proxy, "/metrics").await.1;
    assert!(
        metrics.contains("bonenfant_dependency_up{dependency=\"ent\"} 0\n"),
        "{metrics}"
    );

    ent.restart().await;
    let back = until_state(&proxy, "ent", "up").await;
    assert_eq!(back["upstream_healthy"], true);
    assert_eq!(back["degraded"], serde_json::json!([]));
    // The outage stays on record, and among the incidents.
    assert_eq!(
        back["health"]["ent"]["last_error"],
        "proxy.upstream_connect"
    );
    let incidents = back["last_hour"]["incidents"].as_array().unwrap();
    for what in ["ent_down", "ent_up"] {
        assert!(
            incidents.iter().any(|i| i["what"] == what),
            "{what}: {incidents:#?}"
        );
    }
    assert_eq!(admin_get(&proxy, "/readyz").await, (200, "ready\n".into()));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn one_failed_exchange_marks_the_ent_down_at_once() {
    let mut ent = Ent::start().await;
    let proxy = with_admin(&ent).await;
    until_state(&proxy, "ent", "up").await;
    ent.stop().await;

    // Real traffic reports before it answers: no probe needed.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /cas/some-page HTTP/1.1\r\nHost: cas.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    let status = status(&proxy).await;
    assert_eq!(status["health"]["ent"]["state"], "down", "{status:#}");
    let incidents = status["last_hour"]["incidents"].as_array().unwrap();
    assert!(
        incidents
            .iter()
            .any(|i| i["what"] == "proxy.upstream_connect" && i["side"] == "ent"),
        "{incidents:#?}"
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn redis_going_away_fails_readiness_only_under_strict_correlation() {
    let mut redis = RedisServer::start();
    let ent = Ent::start().await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = crate::session_support::store_key_file(keys.path());
    let start = |strict: bool| {
        let (url, store, key_file) = (ent.url(), redis.url(), key_file.clone());
        async move {
            bonenfant(&url, None, move |raw| {
                raw.admin = Some("127.0.0.1:0".parse().unwrap());
                raw.store = Some(store);
                raw.store_key_file = Some(key_file);
                raw.strict_correlation = Some(strict);
            })
            .await
        }
    };
    let strict = start(true).await;
    let lenient = start(false).await;
    for proxy in [&strict, &lenient] {
        until_state(proxy, "store", "up").await;
        assert_eq!(until_readyz(proxy, 200).await, "ready\n");
    }

    redis.kill();
    // --strict-correlation refuses every validation it cannot correlate: out of the
    // load balancer. Without it, logins pass uncorrelated (I6): degraded, still ready.
    let body = until_readyz(&strict, StatusCode::SERVICE_UNAVAILABLE.as_u16()).await;
    assert_eq!(body, "not ready: store_down\n");
    let down = until_state(&lenient, "store", "down").await;
    assert_eq!(down["store_healthy"], false);
    assert_eq!(down["ready"], true);
    assert_eq!(down["health"]["store"]["last_error"], "store.unavailable");
    assert_eq!(
        admin_get(&lenient, "/readyz").await,
        (200, "ready; degraded: store_down\n".into())
    );
    let strict_status = status(&strict).await;
    assert_eq!(strict_status["ready"], false);
    assert_eq!(
        strict_status["not_ready"],
        serde_json::json!(["store_down"])
    );

    redis.restart();
    assert_eq!(until_readyz(&strict, 200).await, "ready\n");
    let back = until_state(&lenient, "store", "up").await;
    assert_eq!(back["degraded"], serde_json::json!([]));
    strict.stop().await.unwrap();
    lenient.stop().await.unwrap();
}

/// The status page of a running proxy after a scripted run of validations: the ENT
/// asserts Léa (0330101A) for every ticket, so the 0330202B service gets a wrong
/// establishment, and one ticket is refused.
#[tokio::test]
async fn the_status_page_counts_a_scripted_run_per_collège() {
    let refusal = "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\
        <cas:authenticationFailure code=\"INVALID_TICKET\">no</cas:authenticationFailure>\
        </cas:serviceResponse>";
    let ent = ScriptedUpstream::start(move |req| {
        let body = if req.target.contains("ST-refused") {
            refusal.to_owned()
        } else {
            claire_success()
        };
        Reply::ok(body).header("Content-Type", "application/xml; charset=UTF-8")
    })
    .await;
    let proxy = bonenfant(&ent.url(), None, |raw| {
        raw.admin = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (lea, hugo) = (service(LEA.0), service(HUGO.0));
    for (n, (service, ticket)) in [
        (&lea, "ST-lea"),
        (&lea, "ST-lea"),
        (&lea, "ST-lea"),
        (&hugo, "ST-hugo"),
        (&hugo, "ST-hugo"),
        (&lea, "ST-refused"),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = validate(
            &proxy,
            "serviceValidate",
            service,
            &format!("{ticket}{n}"),
            &[],
        )
        .await;
        assert_eq!(answer.status, 200);
    }

    let (code, page) = admin_get(&proxy, "/").await;
    assert_eq!(code, 200);
    for part in [
        // 0330101A: 4 validations, none wrong, 1 failed.
        "<td><code>0330101A</code></td><td>4</td><td>0</td><td>0</td><td>0</td><td>0</td><td class=\"bad\">1</td>",
        // 0330202B: 2 validations, both the wrong establishment.
        "<td><code>0330202B</code></td><td>2</td><td class=\"bad\">2</td>",
        "<code>wrong_establishment</code>",
        "<code>cas.failure.invalid_ticket</code>",
    ] {
        assert!(page.contains(part), "{part}\n{page}");
    }
    let status = status(&proxy).await;
    let hour = &status["last_hour"]["hour"];
    assert_eq!(hour["validations"], 6, "{status:#}");
    assert_eq!(hour["verdicts"]["ok"], 3);
    assert_eq!(hour["verdicts"]["wrong_establishment"], 2);
    assert_eq!(hour["failed"], 1);
    proxy.stop().await.unwrap();
}
