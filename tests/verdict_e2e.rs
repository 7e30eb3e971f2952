//! Verdicts end to end: the sim ENT picks a child at random (the OSE bug), bonenfant
//! observes, the sim Pronote renders whichever child it was handed. Every `validate`
//! event is joined to the landing Pronote recorded (sequential run: same order; and the
//! same pseudonyms), and its verdict is predicted from what Pronote really rendered.

use crate::pin_support;

use std::collections::HashMap;

use bonenfant::config::PinMode;
use bonenfant::events::capture;
use bonenfant::pupil::PupilKey;
use bonenfant::sim::{
    self, expected_wrong_share_under_random_pick, Browser, Dialect, EntOptions, LandingOutcome,
    ParentVisit, Synthetic as _,
};
use pin_support::{children_per_establishment, generated, hidden, Stack};

/// What bonenfant must say about one validation, from the ground truth.
fn predicted_verdict(
    designated: &PupilKey,
    expected_uai: &str,
    intent: Option<&PupilKey>,
    children_here: usize,
    previous: Option<&PupilKey>,
) -> &'static str {
    if !designated.uai.as_str().eq_ignore_ascii_case(expected_uai) {
        "wrong_establishment"
    } else if intent.is_some_and(|i| i != designated) {
        "wrong_child"
    } else if intent.is_none() && children_here >= 2 {
        "ambiguous"
    } else if previous.is_some_and(|p| p != designated) {
        "flip"
    } else {
        "ok"
    }
}

/// One visit observed twice: a first login in a fresh browser (nothing tells bonenfant
/// whom the parent means but the family), then the parent pins the intended child on
/// the chooser page and opens Pronote again (the pin is the intent).
async fn visit(stack: &Stack, visit: &ParentVisit) -> bool {
    let mut browser = Browser::new().max_hops(50);
    sim::parent_login(
        &mut browser,
        &visit.pronote_url,
        &visit.login,
        &visit.password,
    )
    .await
    .expect("first login");
    let page = browser
        .get(&stack.chooser_url(&visit.pronote_url))
        .await
        .expect("chooser page");
    let form = sim::browser::form_with_field(&page, "csrf").expect("chooser form");
    let csrf = hidden(&form.fields, "csrf").expect("csrf field");
    let key = visit.intended.key().expect("intended pupil has a key");
    let mut fields = form.fields.clone();
    fields.push(pin_support::child_field(&csrf, &key));
    browser.clear_cookie(sim::pronote::SESSION_COOKIE);
    let landed = browser
        .post_form(&form.action, &fields)
        .await
        .expect("pin, then Pronote again");
    let (outcome, _) = sim::browser::landing(&landed);
    outcome.is_some()
}

#[tokio::test(flavor = "current_thread")]
async fn each_validate_verdict_matches_the_child_pronote_rendered() {
    run(Dialect::Ose, 120, 41).await;
}

#[tokio::test(flavor = "current_thread")]
async fn verdicts_match_landings_with_open_ent_ng_attributes() {
    run(Dialect::OpenEntNg, 60, 43).await;
}

/// Laclasse names the child only through the parent's record jointure: bonenfant and
/// Pronote both resolve it in the directory, to the record's first child.
#[tokio::test(flavor = "current_thread")]
async fn verdicts_match_landings_with_laclasse_jointures() {
    run(Dialect::Laclasse, 60, 47).await;
}

async fn run(dialect: Dialect, families: usize, seed: u64) {
    let (captured, _guard) = capture::capture();
    let directory = generated(families, 4, seed);
    let stack = Stack::start(
        directory.clone(),
        EntOptions {
            dialect,
            ..EntOptions::ose_random(seed)
        },
        PinMode::Observe,
        |_| {},
    )
    .await;
    let visits = directory.visits(stack.pronote.base_url());
    assert!(visits.len() >= families, "enough visits: {}", visits.len());
    for v in &visits {
        assert!(
            visit(&stack, v).await,
            "the pinned visit ends on a Pronote page"
        );
    }

    let landings = stack.landings();
    let events = captured.named("validate");
    assert_eq!(landings.len(), 2 * visits.len(), "two landings per visit");
    assert_eq!(
        events.len(),
        landings.len(),
        "exactly one validate event per validation"
    );
    let pseudonyms = stack.trace.pseudonyms();
    let mut previous: HashMap<(String, String), PupilKey> = HashMap::new();
    let mut first_wrong = 0usize;
    let mut flagged_second = 0usize;
    let mut wrong_second = 0usize;
    let mut verdicts: HashMap<String, usize> = HashMap::new();
    for (n, (landing, event)) in landings.iter().zip(&events).enumerate() {
        let visit = &visits[n / 2];
        let pinned = n % 2 == 1;
        if dialect == Dialect::Laclasse {
            // The record jointure names the establishment, not which of its children.
            let info = stack.ent.ent.ticket(&landing.ticket).expect("issued");
            assert_eq!(landing.principal.as_deref(), Some(info.login.as_str()));
            assert_eq!(
                landing
                    .designated
                    .as_ref()
                    .map(|k| k.uai.as_str().to_owned()),
                info.picked.first().map(|p| p.uai.clone())
            );
        } else {
            stack.assert_landing_was_asserted_for_its_ticket(landing);
        }
        let principal = landing.principal.as_deref().expect("a success");
        let designated = landing.designated.clone().expect("a designated pupil");
        assert_eq!(
            event["principal"].as_str(),
            Some(pseudonyms.principal(principal).as_str()),
            "event {n} is about the landing's principal"
        );
        assert_eq!(
            event["pupil"].as_str(),
            Some(pseudonyms.pupil(&designated).as_str()),
            "event {n} is about the child Pronote rendered"
        );
        assert_eq!(event["uai_expected"].as_str(), Some(landing.uai.as_str()));
        assert_eq!(event["pin"], "none", "observing never pins");
        let intended = visit.intended.key().expect("key");
        let here = children_per_establishment(&directory, principal)
            .get(&visit.intended.uai)
            .copied()
            .unwrap_or(0);
        // The pin, else the only child in the establishment (a fresh session has no sticky).
        let intent = (pinned || here == 1).then_some(&intended);
        let slot = (principal.to_owned(), landing.uai.to_ascii_uppercase());
        let expected =
            predicted_verdict(&designated, &landing.uai, intent, here, previous.get(&slot));
        assert_eq!(
            event["verdict"].as_str(),
            Some(expected),
            "event {n} ({}): {event}",
            if pinned { "pinned" } else { "first" }
        );
        assert_eq!(
            landing.outcome == LandingOutcome::UnknownUser,
            expected == "wrong_establishment",
            "Pronote says 'utilisateur inconnu' exactly when the child is elsewhere"
        );
        previous.insert(slot, designated.clone());
        *verdicts.entry(expected.to_owned()).or_default() += 1;
        let wrong = designated != intended;
        if pinned {
            wrong_second += usize::from(wrong);
            flagged_second +=
                usize::from(matches!(expected, "wrong_child" | "wrong_establishment"));
        } else if dialect == Dialect::Laclasse {
            // Which sibling is shown depends on the record, not on the ENT's pick.
            first_wrong += usize::from(
                !designated
                    .uai
                    .as_str()
                    .eq_ignore_ascii_case(&visit.intended.uai),
            );
        } else {
            first_wrong += usize::from(wrong);
        }
    }
    assert_eq!(
        flagged_second, wrong_second,
        "with the intent known, bonenfant flags every wrong landing and nothing else"
    );
    assert!(
        verdicts.get("wrong_child").copied().unwrap_or(0) > 0
            && verdicts.get("wrong_establishment").copied().unwrap_or(0) > 0
            && verdicts.get("ambiguous").copied().unwrap_or(0) > 0,
        "the run exercises the verdicts: {verdicts:?}"
    );

    // The share of first landings on another child is what the family mix predicts for
    // a uniformly random pick: each visit is a Bernoulli trial with p = 1 - 1/k (with
    // Laclasse, only a pick in another establishment shows: p = 1 - here/k).
    let expected = if dialect == Dialect::Laclasse {
        visits
            .iter()
            .map(|v| {
                let here = children_per_establishment(&directory, &v.login)[&v.intended.uai];
                1.0 - here as f64 / v.children.max(1) as f64
            })
            .sum::<f64>()
            / visits.len() as f64
    } else {
        expected_wrong_share_under_random_pick(&visits)
    };
    let variance: f64 = visits
        .iter()
        .map(|v| {
            let here = if dialect == Dialect::Laclasse {
                children_per_establishment(&directory, &v.login)[&v.intended.uai]
            } else {
                1
            };
            let p = 1.0 - here as f64 / v.children.max(1) as f64;
            p * (1.0 - p)
        })
        .sum();
    let n = visits.len() as f64;
    let tolerance = 4.0 * variance.sqrt() / n;
    let observed = first_wrong as f64 / n;
    assert!(
        (observed - expected).abs() <= tolerance,
        "wrong-child share {observed:.3} vs {expected:.3} predicted (± {tolerance:.3})"
    );
    let logins: Vec<&str> = visits
        .iter()
        .flat_map(|v| [v.login.as_str(), v.password.as_str()])
        .collect();
    captured.assert_no_leaks(&logins);
    stack.stop().await;
}
