//! Where the chooser and the give-up page may send a parent (T16): an allowed Pronote
//! origin only (`--service-origin`, or the `https` host the establishment pattern pins),
//! never a host, user part or scheme a form or a link slipped in. A refused chooser
//! target still notes the pin ("C'est noté") and traces `pin.service_target` in
//! `pin_set`; a refused give-up link is a 400 with that code. Each attack is one the
//! outside review sent through a loose `--establishment-pattern`.

use crate::pin_support;

use bonenfant::config::PinMode;
use bonenfant::events::capture::{self, Captured};
use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::sim::{EntOptions, Pick};
use http::{Method, StatusCode};
use pin_support::{child_field, form, hidden, Answer, Jar, Stack};
use url::Url;

const JULIEN: (&str, &str) = ("julien.durand", "demo-julien");
/// Julien's two children are both at this collège: his login ends on the chooser.
const COLLEGE: &str = "0330101A";

fn chloe() -> PupilKey {
    PupilKey {
        uai: Uai::parse(COLLEGE).expect("UAI"),
        eleve_id: "837003".to_owned(),
    }
}

/// The fixture families behind `--pin retry`, Pronote's loopback origin allowed (the
/// stack's own `--service-origin`), then `tweak`.
async fn start(tweak: impl FnOnce(&mut bonenfant::config::RawConfig)) -> Stack {
    Stack::start(
        pin_support::fixture_directory(),
        EntOptions {
            pick: Pick::Random,
            ..EntOptions::ose_random(3)
        },
        PinMode::Retry,
        tweak,
    )
    .await
}

/// Julien logs in, then pins Chloé with the chooser form's `service` set to `service`.
async fn pin_with_service(stack: &Stack, service: &str) -> Answer {
    let mut jar = Jar::new();
    let page = jar
        .login(&stack.pronote_page(COLLEGE), JULIEN.0, JULIEN.1)
        .await;
    let (action, mut fields) = form(&page, "csrf").expect("the chooser page");
    let csrf = hidden(&fields, "csrf").expect("csrf");
    fields.retain(|(k, _)| k != "service");
    fields.push(("service".to_owned(), service.to_owned()));
    fields.push(child_field(&csrf, &chloe()));
    let origin = action.origin().ascii_serialization();
    jar.post(&action, &fields, Some(&origin), None).await
}

/// The pin was noted and the parent sent nowhere; the trace says why.
fn assert_noted_not_sent_on(answer: &Answer, captured: &Captured, service: &str) {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(
        !answer.sends_on(),
        "{service} was followed: {:?}",
        answer.location
    );
    assert!(answer.body.contains("C'est noté"), "{}", answer.body);
    assert!(!answer.body.contains("refresh"), "{}", answer.body);
    let set = captured.named("pin_set");
    let last = set.last().expect("the pin is noted");
    assert_eq!(last["code"], "pin.service_target", "{service}");
}

/// `http://127.0.0.1:PORT`, Pronote's allowed origin in the stack.
fn pronote_origin(stack: &Stack) -> String {
    stack.pronote.base_url().origin().ascii_serialization()
}

#[tokio::test(flavor = "current_thread")]
async fn chooser_pin_goes_on_to_the_allowed_pronote_origin_only() {
    let (captured, _guard) = capture::capture();
    let stack = start(|_| {}).await;
    let good = stack.pronote_page(COLLEGE);
    let answer = pin_with_service(&stack, good.as_str()).await;
    assert_eq!(answer.location.as_ref(), Some(&good), "{}", answer.body);
    assert_eq!(
        captured.named("pin_set")[0]["code"],
        serde_json::Value::Null
    );
    stack.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn chooser_pin_to_another_host_with_the_uai_in_its_path_is_only_noted() {
    let (captured, _guard) = capture::capture();
    let stack = start(|_| {}).await;
    let hostile = "https://evil.example/0330101a/x";
    let answer = pin_with_service(&stack, hostile).await;
    assert_noted_not_sent_on(&answer, &captured, hostile);
    stack.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn chooser_pin_to_a_host_named_after_the_uai_is_only_noted() {
    let (captured, _guard) = capture::capture();
    let stack = start(|_| {}).await;
    let hostile = "http://0330101a.evil.example/";
    let answer = pin_with_service(&stack, hostile).await;
    assert_noted_not_sent_on(&answer, &captured, hostile);
    stack.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn chooser_pin_to_a_backslash_userinfo_url_is_only_noted() {
    let (captured, _guard) = capture::capture();
    let stack = start(|_| {}).await;
    let authority = stack.pronote.base_url().authority().to_owned();
    for hostile in [
        format!("http://evil.example\\@{authority}/0330101a/"),
        format!("http://evil.example@{authority}/0330101a/"),
    ] {
        let answer = pin_with_service(&stack, &hostile).await;
        assert_noted_not_sent_on(&answer, &captured, &hostile);
    }
    stack.stop().await;
}

/// The reviewer's `https?` pattern let `http` through where Pronote is `https`: an
/// `https` origin admits no `http` URL of the same host.
#[tokio::test(flavor = "current_thread")]
async fn chooser_pin_to_http_where_pronote_is_https_is_only_noted() {
    let (captured, _guard) = capture::capture();
    let stack = start(|raw| {
        raw.service_origin = Some(vec!["https://*.index-education.net".to_owned()]);
    })
    .await;
    let secure = "https://0330101a.index-education.net/pronote/parent.html";
    let answer = pin_with_service(&stack, secure).await;
    assert_eq!(answer.location.as_ref().map(Url::as_str), Some(secure));
    let plain = "http://0330101a.index-education.net/pronote/parent.html";
    let answer = pin_with_service(&stack, plain).await;
    assert_noted_not_sent_on(&answer, &captured, plain);
    stack.stop().await;
}

/// With a pattern whose text does not pin the host and no `--service-origin`, nothing
/// is a target: the real Pronote URL is noted too (and `serve` warns at start-up).
#[tokio::test(flavor = "current_thread")]
async fn chooser_pin_under_a_loose_pattern_without_service_origin_sends_nobody_on() {
    let (captured, _guard) = capture::capture();
    let stack = start(|raw| raw.service_origin = None).await;
    let good = stack.pronote_page(COLLEGE);
    let answer = pin_with_service(&stack, good.as_str()).await;
    assert_noted_not_sent_on(&answer, &captured, good.as_str());
    stack.stop().await;
}

/// The give-up page's "continue" link, its `service` replaced by `service`, clicked.
async fn give_up_with_service(service: impl Fn(&Stack) -> String) -> (Answer, Captured) {
    let (captured, guard) = capture::capture();
    let (stack, visit) = pin_support::gave_up_stack().await;
    let mut jar = Jar::new();
    let page = jar
        .login(&visit.pronote_url, &visit.login, &visit.password)
        .await;
    let href = page
        .body
        .split("Continuer vers Pronote")
        .next()
        .and_then(|before| before.rsplit("<a href=\"").next())
        .and_then(|rest| rest.split('"').next())
        .expect("the give-up page's continue link");
    let href = quick_xml::escape::unescape(href).expect("escaped");
    let mut link = page.url.join(&href).expect("URL");
    let pairs: Vec<(String, String)> = link
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            let v = if k == "service" { service(&stack) } else { v };
            (k, v)
        })
        .collect();
    link.query_pairs_mut().clear().extend_pairs(&pairs);
    let answer = jar.send(Method::GET, &link, None, &[]).await;
    stack.stop().await;
    drop(guard);
    (answer, captured)
}

fn assert_give_up_refused(answer: &Answer, captured: &Captured) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(answer.location.is_none(), "{:?}", answer.location);
    assert!(
        answer.body.contains("pin.service_target"),
        "{}",
        answer.body
    );
    assert!(captured.named("give_up_choice").is_empty());
    let rejected = captured.named("rejected");
    assert_eq!(
        rejected.last().expect("rejected")["code"],
        "pin.service_target"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn give_up_continue_to_the_allowed_pronote_origin_goes_back_to_the_ent() {
    let (answer, captured) = give_up_with_service(|stack| stack.pronote_page(COLLEGE).into()).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(captured.named("give_up_choice").len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn give_up_continue_to_another_host_with_the_uai_in_its_path_is_refused() {
    let (answer, captured) =
        give_up_with_service(|_| "https://evil.example/0330101a/x".into()).await;
    assert_give_up_refused(&answer, &captured);
}

#[tokio::test(flavor = "current_thread")]
async fn give_up_continue_to_a_host_named_after_the_uai_is_refused() {
    let (answer, captured) = give_up_with_service(|_| "http://0330101a.evil.example/".into()).await;
    assert_give_up_refused(&answer, &captured);
}

#[tokio::test(flavor = "current_thread")]
async fn give_up_continue_to_a_backslash_userinfo_url_is_refused() {
    let (answer, captured) = give_up_with_service(|stack| {
        let authority = stack.pronote.base_url().authority().to_owned();
        format!("http://evil.example\\@{authority}/0330101a/")
    })
    .await;
    assert_give_up_refused(&answer, &captured);
}

#[tokio::test(flavor = "current_thread")]
async fn give_up_continue_to_https_where_only_http_is_allowed_is_refused() {
    let (answer, captured) = give_up_with_service(|stack| {
        format!(
            "{}/0330101a/",
            pronote_origin(stack).replacen("http:", "https:", 1)
        )
    })
    .await;
    assert_give_up_refused(&answer, &captured);
}

/// Issue 11, finding 2: behind a front server that normalises paths,
/// `//evil.example/..%2fcas/login` reached the ENT's real login form, and after the
/// password POST the retry loop answered `302 Location: //evil.example/…`, a phishing
/// redirect. Such a login path is now refused (400, `proxy.login_path`) before the ENT
/// sees it, for the GET and for the credentials POST, and no answer points off-site.
#[tokio::test(flavor = "current_thread")]
async fn relogin_path_normalised_off_site_is_refused_before_the_password_post() {
    let (captured, _guard) = capture::capture();
    let stack = start(|_| {}).await;
    let service = stack.pronote_page(COLLEGE);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("service", service.as_str())
        .finish();
    for path in [
        "//evil.example/..%2fcas/login",
        "/cas/..%2f..%2fevil.example/cas/login",
        "/cas\\..\\evil/login",
        "/cas/;evil/login",
        "/cas/./login",
    ] {
        for method in ["GET", "POST"] {
            let body = if method == "POST" {
                "username=julien.durand&password=demo-julien"
            } else {
                ""
            };
            let mut client = crate::support::client::RawClient::connect(stack.proxy.addr).await;
            client
                .send(
                    format!(
                        "{method} {path}?{query} HTTP/1.1\r\nHost: {}\r\n\
                         Content-Type: application/x-www-form-urlencoded\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        stack.proxy.addr,
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            let answer = client.read_response().await.expect("an answer");
            assert_eq!(answer.status, 400, "{method} {path}");
            assert!(answer.header("location").is_none(), "{method} {path}");
        }
    }
    let refused = captured
        .events()
        .iter()
        .filter(|e| e["event"] == "rejected" && e["code"] == "proxy.login_path")
        .count();
    assert_eq!(refused, 10, "{}", captured.text());
    let ent = stack.ent.ent.counters();
    assert_eq!(
        (ent.login_forms, ent.logins, ent.failed_logins),
        (0, 0, 0),
        "the ENT saw none of them"
    );
    stack.stop().await;
}
