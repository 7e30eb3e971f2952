//! Every request bonenfant handles ends in exactly one summary event (`docs/events.md`),
//! in every mode: observe, retry (and its give-up), rewrite, reorder, the chooser, the
//! pin POST, logouts and an upstream failure. The count to match is the transport's own
//! (`RunningProxy::requests_handled`), not anything derived from the trace.
//!
//! Regression: with `--pin retry` and an ENT that always names the wrong child, 5
//! requests once wrote 9 summary events, and a pin POST for a session with no principal
//! yet wrote none.

use crate::pin_support;

use bonenfant::config::PinMode;
use bonenfant::events::capture::{self, Captured};
use bonenfant::proxy::exchange::RunningProxy;
use bonenfant::sim::{self, Browser, EntOptions, Pick, Synthetic as _};
use http::{Method, StatusCode};
use pin_support::{child_field, form, generated, hidden, Jar, Stack};

use crate::support::cas::logout_request;

/// The summary events of `docs/events.md`: one per request.
const SUMMARIES: [&str; 10] = [
    "give_up_choice",
    "validate",
    "login_redirect",
    "chooser",
    "pin_set",
    "pin_refused",
    "logout",
    "passthrough",
    "rejected",
    "upstream_error",
];

fn summaries(captured: &Captured) -> usize {
    captured
        .events()
        .iter()
        .filter(|e| SUMMARIES.iter().any(|name| e["event"] == *name))
        .count()
}

#[track_caller]
fn assert_one_summary_per_request(captured: &Captured, proxy: &RunningProxy) {
    let handled = proxy.requests_handled();
    assert!(handled > 0, "the scenario sent requests through bonenfant");
    let names: Vec<String> = captured
        .events()
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        summaries(captured) as u64,
        handled,
        "one summary event per request; events: {names:?}"
    );
}

async fn log_in_everyone(stack: &Stack, directory: &sim::Directory, limit: usize) {
    for visit in directory
        .visits(stack.pronote.base_url())
        .into_iter()
        .take(limit)
    {
        let mut browser = Browser::new().max_hops(100);
        sim::parent_login(
            &mut browser,
            &visit.pronote_url,
            &visit.login,
            &visit.password,
        )
        .await
        .expect("login");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn observe_writes_one_summary_per_request() {
    let (captured, _guard) = capture::capture();
    let directory = generated(12, 3, 5);
    let stack = Stack::start(
        directory.clone(),
        EntOptions::ose_random(5),
        PinMode::Observe,
        |_| {},
    )
    .await;
    log_in_everyone(&stack, &directory, 12).await;
    assert!(!captured.named("validate").is_empty());
    assert_one_summary_per_request(&captured, &stack.proxy);
    stack.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn retry_writes_one_summary_per_request() {
    let (captured, _guard) = capture::capture();
    let directory = generated(12, 3, 6);
    let stack = Stack::start(
        directory.clone(),
        EntOptions::ose_random(6),
        PinMode::Retry,
        |raw| raw.retry_max = Some(32),
    )
    .await;
    log_in_everyone(&stack, &directory, 12).await;
    assert!(
        !captured.named("retry").is_empty(),
        "some logins were retried"
    );
    assert_one_summary_per_request(&captured, &stack.proxy);
    stack.stop().await;
}

/// The case the reviewer found: an ENT that always names the wrong child and
/// `--retry-max 3`. The re-rolls happen at the ENT within the one password POST: one
/// `login_redirect` (`gave_up`), the `retry` and `retry_gave_up` details before it.
#[tokio::test(flavor = "current_thread")]
async fn retry_give_up_writes_one_summary_per_request() {
    let (captured, _guard) = capture::capture();
    let (stack, visit) = pin_support::gave_up_stack().await;
    let mut browser = Browser::new().max_hops(100);
    sim::parent_login(
        &mut browser,
        &visit.pronote_url,
        &visit.login,
        &visit.password,
    )
    .await
    .expect("login");
    let actions: Vec<String> = captured
        .named("login_redirect")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(actions, ["gave_up"]);
    assert_eq!(captured.named("retry").len(), 3);
    assert_eq!(captured.named("retry_gave_up").len(), 1);
    assert_one_summary_per_request(&captured, &stack.proxy);
    stack.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn rewrite_and_reorder_write_one_summary_per_request() {
    for pick in [Pick::Random, Pick::Shuffled] {
        let (captured, _guard) = capture::capture();
        let directory = generated(12, 2, 7);
        let stack = Stack::start(
            directory.clone(),
            EntOptions {
                pick,
                ..EntOptions::ose_random(7)
            },
            PinMode::Rewrite,
            |raw| raw.retry_max = Some(32),
        )
        .await;
        // Twice each: the second login of a session may borrow from the first.
        log_in_everyone(&stack, &directory, 12).await;
        log_in_everyone(&stack, &directory, 12).await;
        assert_one_summary_per_request(&captured, &stack.proxy);
        stack.stop().await;
    }
}

/// The chooser page, a pin POST refused, a pin POST accepted, and both logouts.
#[tokio::test(flavor = "current_thread")]
async fn chooser_pin_and_logouts_write_one_summary_per_request() {
    let (captured, _guard) = capture::capture();
    let stack = Stack::start(
        pin_support::fixture_directory(),
        EntOptions {
            pick: Pick::Random,
            ..EntOptions::ose_random(3)
        },
        PinMode::Retry,
        |raw| raw.retry_max = Some(32),
    )
    .await;
    let college = stack.pronote_page("0330101A");
    let mut jar = Jar::new();
    let page = jar.login(&college, "julien.durand", "demo-julien").await;
    let (action, fields) = form(&page, "csrf").expect("the chooser page");
    let origin = action.origin().ascii_serialization();
    let csrf = hidden(&fields, "csrf").expect("csrf");
    let mut forged = fields.clone();
    forged.push(("child".to_owned(), "not-a-child".to_owned()));
    let refused = jar.post(&action, &forged, Some(&origin), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let chosen = {
        let directory = &stack.directory;
        let parent = directory.parent("julien.durand").expect("Julien");
        let child = directory.children_of(parent).next().expect("a child");
        child_field(
            &csrf,
            &bonenfant::pupil::PupilKey {
                uai: bonenfant::pupil::Uai::parse(&child.uai).expect("UAI"),
                eleve_id: child.eleve_id.clone(),
            },
        )
    };
    let mut good = fields.clone();
    good.push(chosen);
    let accepted = jar.post(&action, &good, Some(&origin), None).await;
    assert!(accepted.status.is_redirection() || accepted.status == StatusCode::OK);
    assert_eq!(captured.named("pin_set").len(), 1);
    jar.get(&stack.chooser_url(&college)).await;
    jar.send(Method::GET, &stack.proxy_url("/cas/logout"), None, &[])
        .await;
    let logout_body = form_urlencoded::Serializer::new(String::new())
        .append_pair("logoutRequest", &logout_request("ST-1-unknown"))
        .finish();
    Jar::new()
        .send(
            Method::POST,
            &stack.proxy_url("/pronote/"),
            Some(logout_body),
            &[],
        )
        .await;
    assert!(!captured.named("logout").is_empty());
    assert_one_summary_per_request(&captured, &stack.proxy);
    stack.stop().await;
}

/// The ENT is gone: logins and validations still end in one summary each
/// (`upstream_error`, and `validate` with its error).
#[tokio::test(flavor = "current_thread")]
async fn upstream_failure_writes_one_summary_per_request() {
    let (captured, _guard) = capture::capture();
    let stack = Stack::start(
        pin_support::fixture_directory(),
        EntOptions::ose_random(4),
        PinMode::Retry,
        |_| {},
    )
    .await;
    let Stack {
        ent,
        proxy,
        pronote,
        ..
    } = stack;
    ent.stop().await.expect("the ENT stops");
    let base = |path: &str| url::Url::parse(&format!("http://{}{path}", proxy.addr)).expect("URL");
    let mut jar = Jar::new();
    let login = jar.send(Method::GET, &base("/cas/login"), None, &[]).await;
    assert_eq!(login.status, StatusCode::BAD_GATEWAY);
    let mut validate = base("/cas/serviceValidate");
    validate
        .query_pairs_mut()
        .append_pair("service", "http://x/")
        .append_pair("ticket", "ST-1-abc");
    jar.send(Method::GET, &validate, None, &[]).await;
    assert_eq!(captured.named("upstream_error").len(), 1);
    assert_eq!(
        captured.named("validate")[0]["error"],
        "proxy.upstream_connect"
    );
    assert_one_summary_per_request(&captured, &proxy);
    let _ = pronote.stop().await;
    let _ = proxy.stop().await;
}

/// A client whose chunked upload breaks mid-way is the client's error: `rejected` with
/// `proxy.request_body_broken` (side `client`), never an `upstream_error` that would let
/// any client inflate the DSI's "ENT failing" figures.
#[tokio::test(flavor = "current_thread")]
async fn a_clients_broken_upload_is_not_counted_as_the_ent_failing() {
    use crate::support::{RawClient, Reply, ScriptedUpstream};
    let (captured, _guard) = capture::capture();
    let upstream = ScriptedUpstream::start(|_| Reply::ok("stored")).await;
    let proxy = crate::support::cas::bonenfant(&upstream.url(), None, |_| {}).await;
    let mut client = RawClient::connect(proxy.addr).await;
    client
        .send(
            b"POST /pronote/upload HTTP/1.1\r\nHost: cas.test\r\nContent-Type: application/octet-stream\r\n\
              Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz-not-a-size\r\n",
        )
        .await;
    let response = client.read_response().await.expect("an answer");
    assert_eq!(response.status, 400);
    assert_eq!(
        response.header("x-bonenfant-error"),
        Some("proxy.request_body_broken")
    );
    assert!(captured.named("upstream_error").is_empty());
    let rejected = captured.named("rejected");
    assert_eq!(rejected.len(), 1, "{:?}", captured.events());
    assert_eq!(rejected[0]["code"], "proxy.request_body_broken");
    let text = proxy
        .metrics
        .render(Default::default(), 0, true)
        .expect("metrics render");
    assert!(
        text.contains(r#"code="proxy.request_body_broken",side="client""#)
            || text.contains(r#"side="client",code="proxy.request_body_broken""#),
        "{text}"
    );
    let _ = proxy.stop().await;
}
