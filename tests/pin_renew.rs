//! A `renew=true` validation asks for a password typed for this very ticket (invariant
//! I1d). bonenfant answers Pronote's validation of an early-validated ticket from its
//! stash, so it must not take a `/login` POST for a password: some CAS servers issue a
//! ticket from the SSO session to a bare POST. The stash answers a renew validation
//! only when the ENT itself said the ticket came from a new login (`isFromNewLogin`, or
//! a fresh `authenticationDate`); else the validation fails, as the ENT's would.

use crate::pin_support;

use bonenfant::config::PinMode;
use bonenfant::events::capture;
use bonenfant::sim::http as web;
use bonenfant::sim::EntOptions;
use http::header::ORIGIN;
use http::{Method, Request};
use pin_support::{Jar, Stack};
use url::Url;

const SOPHIE: (&str, &str) = ("sophie.petit", "demo-sophie");
/// Sophie's only child, Zoé, is at this collège: her logins land at once.
const COLLEGE: &str = "0330202B";

/// `--pin retry` in front of an ENT that answers a bare `/login` POST from its SSO
/// session, and says `isFromNewLogin` when `tells_new_login`.
async fn start(tells_new_login: bool) -> Stack {
    Stack::start(
        pin_support::fixture_directory(),
        EntOptions {
            sso_on_post: true,
            tells_new_login,
            ..EntOptions::ose_random(5)
        },
        PinMode::Retry,
        |_| {},
    )
    .await
}

/// The ticket and service of a ticket redirect.
fn ticket_of(location: &Url) -> (String, String) {
    let text = location.as_str();
    let (service, ticket) = text
        .split_once("?ticket=")
        .or_else(|| text.split_once("&ticket="))
        .expect("a ticket redirect");
    (ticket.to_owned(), service.to_owned())
}

/// A bare `/login` POST (no credentials) from Sophie's browser, already signed in at
/// the ENT: the ENT answers it from its SSO session.
async fn bare_post(stack: &Stack, jar: &mut Jar) -> (String, String) {
    let service = stack.pronote_page(COLLEGE);
    let mut login = stack.proxy_url("/cas/login");
    login
        .query_pairs_mut()
        .append_pair("service", service.as_str());
    let origin = login.origin().ascii_serialization();
    let answer = jar
        .send(
            Method::POST,
            &login,
            Some(String::new()),
            &[(ORIGIN, origin)],
        )
        .await;
    assert!(answer.status.is_redirection(), "{}", answer.body);
    ticket_of(answer.location.as_ref().expect("a ticket redirect"))
}

/// Pronote's `renew=true` validation of `ticket`: the answer's body.
async fn validate_renew(stack: &Stack, ticket: &str, service: &str) -> String {
    let mut url = stack.proxy_url("/cas/p3/serviceValidate");
    url.query_pairs_mut()
        .append_pair("service", service)
        .append_pair("ticket", ticket)
        .append_pair("renew", "true");
    let request = Request::get(url.as_str())
        .body(web::Body::default())
        .expect("request");
    let response = web::client()
        .request(request)
        .await
        .expect("bonenfant answers");
    let body = web::read_body(response.into_body()).await.expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test(flavor = "current_thread")]
async fn renew_validation_of_a_ticket_from_a_bare_post_is_not_answered_from_the_stash() {
    let (captured, _guard) = capture::capture();
    let stack = start(false).await;
    let mut jar = Jar::new();
    let landed = jar
        .login(&stack.pronote_page(COLLEGE), SOPHIE.0, SOPHIE.1)
        .await;
    assert!(landed.status.is_success(), "{}", landed.body);
    let (ticket, service) = bare_post(&stack, &mut jar).await;
    let logins = stack.ent.ent.counters();
    assert!(
        logins.silent_logins >= 1,
        "the ENT answered from single sign-on"
    );
    let body = validate_renew(&stack, &ticket, &service).await;
    assert!(body.contains("authenticationFailure"), "{body}");
    assert!(!body.contains("sophie.petit"), "{body}");
    let validate = captured.named("validate");
    assert_eq!(
        validate.last().expect("validate")["error"],
        "proxy.renew_not_primary"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn renew_validation_follows_the_ents_own_is_from_new_login() {
    let (_captured, _guard) = capture::capture();
    let stack = start(true).await;
    let mut jar = Jar::new();
    // The password typed: the ENT says isFromNewLogin=true, the stash may answer.
    let signed_in = jar
        .sign_in(&stack.pronote_page(COLLEGE), SOPHIE.0, SOPHIE.1)
        .await;
    let (ticket, service) = ticket_of(signed_in.location.as_ref().expect("a ticket"));
    let body = validate_renew(&stack, &ticket, &service).await;
    assert!(body.contains("authenticationSuccess"), "{body}");
    assert!(body.contains("sophie.petit"), "{body}");
    // A bare POST in the same browser: the ENT says isFromNewLogin=false.
    let (ticket, service) = bare_post(&stack, &mut jar).await;
    let body = validate_renew(&stack, &ticket, &service).await;
    assert!(body.contains("authenticationFailure"), "{body}");
    stack.stop().await;
}
