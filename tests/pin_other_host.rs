//! An ENT whose silent `/login` answers through another host first
//! (`EntOptions::login_via_other_host`: `localhost:PORT/cas/hop`, then back to the
//! public `/login` with a one-time token). bonenfant's server-side re-roll never gets a
//! ticket there and never follows the other host itself: it falls back to the
//! browser-driven re-login, and the parent still lands on the child meant.

use crate::pin_support;

use bonenfant::config::PinMode;
use bonenfant::events::capture;
use bonenfant::sim::{EntOptions, Pick};
use http::Method;
use pin_support::{shown, Jar, Stack};

const CLAIRE: (&str, &str) = ("claire.martin", "demo-claire");

/// What one login of Claire at her second child's collège did.
struct Run {
    /// The child Pronote showed, and the one meant.
    landed: Option<String>,
    meant: String,
    /// Requests the browser sent to the other host, and those the ENT's other host got.
    browser_hops: u64,
    ent_hops: u64,
    relogins: usize,
}

async fn login_through_the_other_host(seed: u64) -> Run {
    let (captured, _guard) = capture::capture();
    let stack = Stack::start(
        pin_support::fixture_directory(),
        EntOptions {
            pick: Pick::Random,
            login_via_other_host: true,
            ..EntOptions::ose_random(seed)
        },
        PinMode::Retry,
        |_| {},
    )
    .await;
    let parent = stack.directory.parent(CLAIRE.0).expect("Claire");
    let meant = stack
        .directory
        .children_of(parent)
        .nth(1)
        .expect("Hugo")
        .clone();
    let mut jar = Jar::new();
    let mut answer = jar
        .sign_in(&stack.pronote_page(&meant.uai), CLAIRE.0, CLAIRE.1)
        .await;
    let mut browser_hops = 0;
    for _ in 0..200 {
        let Some(next) = answer.location.clone().filter(|_| answer.sends_on()) else {
            break;
        };
        if next.host_str() == Some("localhost") {
            browser_hops += 1;
        }
        answer = jar.send(Method::GET, &next, None, &[]).await;
    }
    let run = Run {
        landed: shown(&answer).map(|p| p.eleve_id),
        meant: meant.eleve_id.clone(),
        browser_hops,
        ent_hops: stack.ent.ent.counters().hops,
        relogins: captured
            .named("login_redirect")
            .iter()
            .filter(|e| e["action"] == "relogin")
            .count(),
    };
    stack.stop().await;
    run
}

#[tokio::test(flavor = "current_thread")]
async fn reroll_at_an_ent_that_answers_through_another_host_falls_back_to_the_browser() {
    let mut fell_back = 0;
    for seed in 1..=6 {
        let run = login_through_the_other_host(seed).await;
        assert_eq!(
            run.landed.as_deref(),
            Some(run.meant.as_str()),
            "seed {seed}"
        );
        assert_eq!(
            run.ent_hops, run.browser_hops,
            "seed {seed}: only the browser went to the other host, never bonenfant"
        );
        assert_eq!(run.browser_hops as usize, run.relogins, "seed {seed}");
        fell_back += run.relogins;
    }
    assert!(fell_back > 0, "some login needed a re-roll");
}
