//! What pinning does with tickets it cannot tie to a browser session or whose own
//! validation fails: an un-correlated ticket is never pinned (T10: passed through as
//! the ENT answered it, or refused in strict mode without asking the ENT), and nothing
//! is ever substituted for a failed validation (T03).

use crate::pin_support;

use std::time::Duration;

use bonenfant::config::PinMode;
use bonenfant::events::capture;
use bonenfant::sim::{EntOptions, LandingOutcome};
use http::Method;
use pin_support::{Jar, Stack};

const CLAIRE: (&str, &str) = ("claire.martin", "demo-claire");
/// Léa's collège; Claire's other child, Hugo, is elsewhere: a random ENT is wrong half
/// the time.
const COLLEGE: &str = "0330101A";

async fn validate(stack: &Stack, ticket: &str, service: &str) -> String {
    let mut url = stack.proxy_url("/cas/serviceValidate");
    url.query_pairs_mut()
        .append_pair("service", service)
        .append_pair("ticket", ticket);
    Jar::new().send(Method::GET, &url, None, &[]).await.body
}

#[tokio::test(flavor = "current_thread")]
async fn uncorrelated_ticket_is_passed_through_never_pinned() {
    let (captured, _guard) = capture::capture();
    for mode in [PinMode::Retry, PinMode::Rewrite] {
        let stack = Stack::start(
            pin_support::fixture_directory(),
            EntOptions::ose_random(13),
            mode,
            |_| {},
        )
        .await;
        let service = stack.pronote_page(COLLEGE).to_string();
        for _ in 0..8 {
            let ticket = stack
                .ent
                .ent
                .issue_ticket(CLAIRE.0, &service)
                .expect("known login");
            let answer = validate(&stack, &ticket, &service).await;
            let info = stack.ent.ent.ticket(&ticket).expect("issued");
            assert_eq!(info.validations, 1, "forwarded once");
            let picked = info.picked.first().expect("a child");
            assert!(
                answer.contains("<cas:user>claire.martin</cas:user>"),
                "{answer}"
            );
            assert!(
                answer.contains(&format!("|{}|{}", picked.eleve_id, picked.uai)),
                "the ENT's own pick, right or wrong: {answer}"
            );
        }
        stack.stop().await;
    }
    let events = captured.named("validate");
    assert_eq!(events.len(), 16);
    assert!(events
        .iter()
        .all(|e| e["pin"] == "none" && e["session"].is_null()));
    assert!(captured.named("retry").is_empty());
    assert!(captured.named("pin_refused").is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn uncorrelated_ticket_is_refused_in_strict_mode_without_asking_the_ent() {
    let (captured, _guard) = capture::capture();
    let stack = Stack::start(
        pin_support::fixture_directory(),
        EntOptions::ose_random(13),
        PinMode::Retry,
        |raw| raw.strict_correlation = Some(true),
    )
    .await;
    let service = stack.pronote_page(COLLEGE).to_string();
    let ticket = stack
        .ent
        .ent
        .issue_ticket(CLAIRE.0, &service)
        .expect("known login");
    let answer = validate(&stack, &ticket, &service).await;
    assert!(
        answer.contains("authenticationFailure") && answer.contains("INVALID_TICKET"),
        "{answer}"
    );
    assert!(!answer.contains("authenticationSuccess"));
    assert_eq!(
        stack.ent.ent.ticket(&ticket).expect("issued").validations,
        0,
        "the ENT was not asked"
    );
    let events = captured.named("validate");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["error"], "proxy.uncorrelated_ticket");
    stack.stop().await;
}

/// T03: every ticket fails at the ENT (expired at once); whatever the session holds,
/// Pronote gets the failure, never a success built from something else.
#[tokio::test(flavor = "current_thread")]
async fn failed_validation_is_never_turned_into_a_success() {
    let (captured, _guard) = capture::capture();
    for mode in [PinMode::Retry, PinMode::Rewrite] {
        let stack = Stack::start(
            pin_support::fixture_directory(),
            EntOptions {
                ticket_ttl: Duration::ZERO,
                ..EntOptions::ose_random(13)
            },
            mode,
            |_| {},
        )
        .await;
        let mut jar = Jar::new();
        for _ in 0..3 {
            jar.cookies.remove(bonenfant::sim::pronote::SESSION_COOKIE);
            jar.login(&stack.pronote_page(COLLEGE), CLAIRE.0, CLAIRE.1)
                .await;
        }
        let landings = stack.landings();
        assert_eq!(landings.len(), 3);
        for landing in &landings {
            assert_eq!(landing.outcome, LandingOutcome::Failure);
            assert_eq!(landing.principal, None);
            assert_eq!(landing.failure.as_deref(), Some("INVALID_TICKET"));
            let info = stack.ent.ent.ticket(&landing.ticket).expect("issued");
            assert_eq!(info.validations, 1, "asked once, by bonenfant");
        }
        stack.stop().await;
    }
    let events = captured.named("validate");
    assert_eq!(events.len(), 6);
    assert!(events
        .iter()
        .all(|e| e["verdict"] == "unresolved" && e["principal"].is_null()));
}
