//! `--same-establishment ask|any`: whether landing on a sibling in the collège a parent
//! opens is wrong for pinning. Pronote's parent space lists all of a parent's children
//! of its own base, so some académies prefer `any`: no chooser, no re-roll for a
//! sibling there (the verdict is still traced). `ask`, the default, asks and re-rolls.
//! How often the chooser was shown is counted in `/metrics` either way.

use crate::pin_support;

use bonenfant::config::{PinMode, SameEstablishment};
use bonenfant::events::capture::{self, Captured};
use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::session::StoreStats;
use bonenfant::sim::{EntOptions, Pick};
use pin_support::{child_field, form, hidden, shown, Jar, Stack};

const JULIEN: (&str, &str) = ("julien.durand", "demo-julien");
/// Julien's two children, Chloé and Lucas, are both at this collège.
const COLLEGE: &str = "0330101A";

async fn start(same: SameEstablishment, pick: Pick) -> Stack {
    Stack::start(
        pin_support::fixture_directory(),
        EntOptions {
            pick,
            ..EntOptions::ose_random(7)
        },
        PinMode::Retry,
        |raw| {
            raw.same_establishment = Some(same);
            raw.retry_max = Some(4);
        },
    )
    .await
}

/// `bonenfant_requests_total{endpoint="login",outcome="chooser"}`: logins sent to the
/// chooser, as `/metrics` shows them.
fn choosers_counted(stack: &Stack) -> u64 {
    let text = stack
        .proxy
        .metrics
        .render(StoreStats::default(), 0, true)
        .expect("metrics render");
    let line = "bonenfant_requests_total{endpoint=\"login\",outcome=\"chooser\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(line))
        .map_or(0, |n| n.parse().expect("a count"))
}

fn actions(captured: &Captured) -> Vec<String> {
    captured
        .named("login_redirect")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn same_establishment_ask_shows_the_chooser_to_a_parent_of_two_in_one_college() {
    let (captured, _guard) = capture::capture();
    let stack = start(SameEstablishment::Ask, Pick::Random).await;
    let mut jar = Jar::new();
    let page = jar
        .login(&stack.pronote_page(COLLEGE), JULIEN.0, JULIEN.1)
        .await;
    assert!(form(&page, "csrf").is_some(), "the chooser: {}", page.body);
    assert_eq!(actions(&captured), ["chooser"]);
    assert_eq!(choosers_counted(&stack), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn same_establishment_any_lands_a_parent_of_two_in_one_college_without_asking() {
    let (captured, _guard) = capture::capture();
    let stack = start(SameEstablishment::Any, Pick::Random).await;
    let mut jar = Jar::new();
    let page = jar
        .login(&stack.pronote_page(COLLEGE), JULIEN.0, JULIEN.1)
        .await;
    let landed = shown(&page).expect("Pronote shows a child");
    assert_eq!(landed.uai, COLLEGE);
    assert_eq!(actions(&captured), ["delivered"]);
    let validate = captured.named("validate");
    assert_eq!(validate.len(), 1);
    assert_eq!(validate[0]["pin"], "none", "the ENT's own answer");
    assert_eq!(choosers_counted(&stack), 0);
    stack.stop().await;
}

/// Julien pins the child the ENT does not name first, then logs in again: how many
/// re-rolls that login took, and whom it landed on.
async fn login_after_pinning_the_second_child(
    same: SameEstablishment,
) -> (usize, String, Vec<String>) {
    let (captured, _guard) = capture::capture();
    let stack = start(same, Pick::First).await;
    let mut jar = Jar::new();
    let service = stack.pronote_page(COLLEGE);
    let first = jar.login(&service, JULIEN.0, JULIEN.1).await;
    // Under `ask` the first login is already the chooser; under `any` it landed.
    let chooser = match form(&first, "csrf") {
        Some(chooser) => chooser,
        None => form(&jar.get(&stack.chooser_url(&service)).await, "csrf").expect("chooser"),
    };
    let (action, mut fields) = chooser;
    let csrf = hidden(&fields, "csrf").expect("csrf");
    let first_child = stack.directory.parent(JULIEN.0).map(|p| {
        stack
            .directory
            .children_of(p)
            .next()
            .expect("a child")
            .eleve_id
            .clone()
    });
    let second = ["837003", "837004"]
        .into_iter()
        .find(|id| Some(*id) != first_child.as_deref())
        .expect("the other child");
    fields.push(child_field(
        &csrf,
        &PupilKey {
            uai: Uai::parse(COLLEGE).expect("UAI"),
            eleve_id: second.to_owned(),
        },
    ));
    let origin = action.origin().ascii_serialization();
    let pinned = jar.post(&action, &fields, Some(&origin), None).await;
    assert!(pinned.body.contains("Chloé") || pinned.body.contains("Lucas"));
    let before = captured.named("retry").len();
    // Pronote forgets its own session: the next visit is a CAS login again.
    jar.cookies.remove(bonenfant::sim::pronote::SESSION_COOKIE);
    let again = jar.get(&service).await;
    let retries = captured.named("retry").len() - before;
    let landed = shown(&again).map(|p| p.eleve_id).unwrap_or_default();
    let verdicts = captured
        .named("validate")
        .iter()
        .filter_map(|e| e["verdict"].as_str().map(str::to_owned))
        .collect();
    stack.stop().await;
    (retries, landed, verdicts)
}

#[tokio::test(flavor = "current_thread")]
async fn same_establishment_any_never_rerolls_a_sibling_of_the_pinned_child() {
    let (retries, landed, verdicts) =
        login_after_pinning_the_second_child(SameEstablishment::Any).await;
    assert_eq!(retries, 0, "no re-roll for a sibling in the collège");
    assert!(["837003", "837004"].contains(&landed.as_str()), "{landed}");
    assert_eq!(verdicts.last().map(String::as_str), Some("wrong_child"));
}

#[tokio::test(flavor = "current_thread")]
async fn same_establishment_ask_rerolls_a_sibling_of_the_pinned_child() {
    let (retries, _, _) = login_after_pinning_the_second_child(SameEstablishment::Ask).await;
    assert!(retries > 0, "the sibling was re-rolled");
}
