//! The test ENT against the protocol core: tickets, picks, dialects.

use crate::sim_support;

use std::collections::HashSet;
use std::time::Duration;

use bonenfant::cas::{Outcome, ResponseFormat};
use bonenfant::pupil::{designations, ExtractionRules, PupilKey, Uai};
use bonenfant::sim::{Browser, Dialect, EntOptions, Pick};
use sim_support::*;

fn options(pick: Pick, dialect: Dialect) -> EntOptions {
    EntOptions {
        pick,
        dialect,
        seed: 11,
        ..EntOptions::default()
    }
}

fn key((uai, eleve_id): (&str, &str)) -> PupilKey {
    PupilKey {
        uai: Uai::parse(uai).unwrap(),
        eleve_id: eleve_id.to_owned(),
    }
}

/// The pupil the assertion designates, as the proxy would read it.
fn designated(outcome: &Outcome) -> Option<PupilKey> {
    let Outcome::Success(assertion) = outcome else {
        return None;
    };
    let index = directory().index();
    designations(assertion, &ExtractionRules::default(), Some(&index))
        .designated()
        .map(|d| d.key.clone())
}

#[tokio::test]
async fn ticket_is_single_use() {
    let ent = ent(EntOptions::default()).await;
    let mut browser = Browser::new();
    let service = service(LEA.0);
    let st = ticket(&mut browser, &ent, CLAIRE, &service).await;
    assert!(st.starts_with("ST-"));
    let first = parse(
        ResponseFormat::Xml,
        &validate(&mut browser, &ent, "serviceValidate", &service, &st, &[]).await,
    );
    assert!(matches!(&first, Outcome::Success(a) if a.principal == "claire.martin"));
    let again = parse(
        ResponseFormat::Xml,
        &validate(&mut browser, &ent, "serviceValidate", &service, &st, &[]).await,
    );
    assert_eq!(failure_code(&again), Some("INVALID_TICKET"));
    assert_eq!(ent.ent.ticket(&st).unwrap().validations, 2);
    assert_eq!(ent.ent.counters().tickets_issued, 1);
}

#[tokio::test]
async fn service_mismatch_is_invalid_service_and_burns_the_ticket() {
    let ent = ent(EntOptions::default()).await;
    let mut browser = Browser::new();
    let st = ticket(&mut browser, &ent, CLAIRE, &service(LEA.0)).await;
    let other = parse(
        ResponseFormat::Xml,
        &validate(
            &mut browser,
            &ent,
            "serviceValidate",
            &service(HUGO.0),
            &st,
            &[],
        )
        .await,
    );
    assert_eq!(failure_code(&other), Some("INVALID_SERVICE"));
    let right = parse(
        ResponseFormat::Xml,
        &validate(
            &mut browser,
            &ent,
            "serviceValidate",
            &service(LEA.0),
            &st,
            &[],
        )
        .await,
    );
    assert_eq!(failure_code(&right), Some("INVALID_TICKET"));
}

#[tokio::test]
async fn expired_ticket_is_refused() {
    let ent = ent(EntOptions {
        ticket_ttl: Duration::ZERO,
        ..EntOptions::default()
    })
    .await;
    let mut browser = Browser::new();
    let service = service(LEA.0);
    let st = ticket(&mut browser, &ent, CLAIRE, &service).await;
    let outcome = parse(
        ResponseFormat::Xml,
        &validate(&mut browser, &ent, "serviceValidate", &service, &st, &[]).await,
    );
    assert_eq!(failure_code(&outcome), Some("INVALID_TICKET"));
}

#[tokio::test]
async fn unknown_ticket_is_refused() {
    let ent = ent(EntOptions::default()).await;
    let mut browser = Browser::new();
    let outcome = parse(
        ResponseFormat::Xml,
        &validate(
            &mut browser,
            &ent,
            "serviceValidate",
            &service(LEA.0),
            "ST-never-issued",
            &[],
        )
        .await,
    );
    assert_eq!(failure_code(&outcome), Some("INVALID_TICKET"));
}

#[tokio::test]
async fn second_login_is_silent_and_wrong_password_shows_the_form() {
    let ent = ent(EntOptions::default()).await;
    let mut browser = Browser::new();
    let mut login = cas_url(&ent, "login");
    login
        .query_pairs_mut()
        .append_pair("service", &service(LEA.0));
    let fields = [
        ("service", service(LEA.0)),
        ("username", "claire.martin".into()),
        ("password", "nope".into()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let refused = browser
        .submit(&cas_url(&ent, "login"), &fields)
        .await
        .unwrap();
    assert_eq!(refused.status, http::StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("name=\"password\""));
    ticket(&mut browser, &ent, CLAIRE, &service(LEA.0)).await;
    ticket(&mut browser, &ent, CLAIRE, &service(HUGO.0)).await;
    let counters = ent.ent.counters();
    assert_eq!(
        (
            counters.failed_logins,
            counters.logins,
            counters.silent_logins
        ),
        (1, 1, 1)
    );
}

/// Designated pupils of `n` tickets for Claire at Léa's establishment.
async fn designated_over(pick: Pick, n: usize) -> Vec<PupilKey> {
    let ent = ent(options(pick, Dialect::Ose)).await;
    let mut browser = Browser::new();
    let service = service(LEA.0);
    let mut seen = Vec::new();
    for _ in 0..n {
        let st = ticket(&mut browser, &ent, CLAIRE, &service).await;
        let outcome = parse(
            ResponseFormat::Xml,
            &validate(&mut browser, &ent, "serviceValidate", &service, &st, &[]).await,
        );
        let key = designated(&outcome).expect("a designated pupil");
        let picked = &ent.ent.ticket(&st).unwrap().picked[0];
        assert_eq!(
            (key.uai.as_str(), key.eleve_id.as_str()),
            (picked.uai.as_str(), picked.eleve_id.as_str())
        );
        seen.push(key);
    }
    seen
}

#[tokio::test]
async fn random_pick_lands_on_either_child() {
    let seen: HashSet<PupilKey> = designated_over(Pick::Random, 30)
        .await
        .into_iter()
        .collect();
    assert_eq!(seen, HashSet::from([key(LEA), key(HUGO)]));
}

#[tokio::test]
async fn correct_pick_always_names_the_service_child() {
    assert!(designated_over(Pick::Correct, 10)
        .await
        .iter()
        .all(|k| *k == key(LEA)));
    let ent = ent(options(Pick::Correct, Dialect::Ose)).await;
    let mut browser = Browser::new();
    let st = ticket(&mut browser, &ent, CLAIRE, &service(HUGO.0)).await;
    assert_eq!(ent.ent.ticket(&st).unwrap().picked[0].eleve_id, HUGO.1);
}

#[tokio::test]
async fn first_pick_always_names_the_first_child() {
    let ent = ent(options(Pick::First, Dialect::Ose)).await;
    let mut browser = Browser::new();
    for _ in 0..5 {
        let st = ticket(&mut browser, &ent, CLAIRE, &service(HUGO.0)).await;
        assert_eq!(ent.ent.ticket(&st).unwrap().picked[0].eleve_id, LEA.1);
    }
}

#[tokio::test]
async fn shuffled_pick_names_every_child_in_varying_order() {
    let ent = ent(options(Pick::Shuffled, Dialect::Ose)).await;
    let mut browser = Browser::new();
    let service = service(LEA.0);
    let mut firsts = HashSet::new();
    for _ in 0..20 {
        let st = ticket(&mut browser, &ent, CLAIRE, &service).await;
        let outcome = parse(
            ResponseFormat::Xml,
            &validate(&mut browser, &ent, "serviceValidate", &service, &st, &[]).await,
        );
        let Outcome::Success(assertion) = &outcome else {
            panic!("success expected")
        };
        let vectors: Vec<&str> = assertion.attributes.values("FrEduVecteur").collect();
        assert_eq!(vectors.len(), 2);
        firsts.insert(vectors[0].to_owned());
    }
    assert_eq!(firsts.len(), 2, "both orders occur");
}

/// An endpoint, its extra parameters and the format it answers in.
type Validation = (
    &'static str,
    &'static [(&'static str, &'static str)],
    ResponseFormat,
);

#[tokio::test]
async fn every_dialect_and_format_designates_the_picked_child() {
    for dialect in [Dialect::Ose, Dialect::OpenEntNg, Dialect::Laclasse] {
        let ent = ent(options(Pick::Random, dialect)).await;
        let mut browser = Browser::new();
        let service = service(HUGO.0);
        let formats: [Validation; 4] = [
            ("serviceValidate", &[], ResponseFormat::Xml),
            ("p3/serviceValidate", &[], ResponseFormat::Xml),
            ("proxyValidate", &[], ResponseFormat::Xml),
            (
                "p3/serviceValidate",
                &[("format", "JSON")],
                ResponseFormat::Json,
            ),
        ];
        for (endpoint, extra, format) in formats {
            let st = ticket(&mut browser, &ent, CLAIRE, &service).await;
            let page = validate(&mut browser, &ent, endpoint, &service, &st, extra).await;
            let outcome = parse(format, &page);
            let picked = &ent.ent.ticket(&st).unwrap().picked[0];
            let got = designated(&outcome)
                .unwrap_or_else(|| panic!("{dialect:?} {endpoint} designates nobody"));
            assert_eq!(
                (got.uai.as_str(), got.eleve_id.as_str()),
                (picked.uai.as_str(), picked.eleve_id.as_str()),
                "{dialect:?} {endpoint} {format:?}"
            );
        }
        let st = ticket(&mut browser, &ent, CLAIRE, &service).await;
        let page = validate(&mut browser, &ent, "validate", &service, &st, &[]).await;
        let outcome = parse(ResponseFormat::Cas1Text, &page);
        assert!(matches!(outcome, Outcome::Success(a) if a.principal == "claire.martin"));
    }
}

#[tokio::test]
async fn ose_dialect_carries_the_record_jointure_of_the_designated_child() {
    let ent = ent(options(Pick::Correct, Dialect::Ose)).await;
    let mut browser = Browser::new();
    let service = service(HUGO.0);
    let st = ticket(&mut browser, &ent, CLAIRE, &service).await;
    let page = validate(&mut browser, &ent, "serviceValidate", &service, &st, &[]).await;
    let Outcome::Success(assertion) = parse(ResponseFormat::Xml, &page) else {
        panic!("success expected")
    };
    assert_eq!(
        assertion.attributes.first("ENTPersonJointure"),
        Some("2867002")
    );
    assert_eq!(assertion.attributes.first("categories"), Some("National_2"));
    assert_eq!(
        assertion.attributes.first("FrEduVecteur"),
        Some("2|MARTIN|Claire|837002|0330202B")
    );
}

async fn picks(seed: u64) -> Vec<String> {
    let ent = ent(EntOptions::ose_random(seed)).await;
    let mut browser = Browser::new();
    let mut picked = Vec::new();
    for _ in 0..20 {
        let st = ticket(&mut browser, &ent, CLAIRE, &service(LEA.0)).await;
        picked.push(ent.ent.ticket(&st).unwrap().picked[0].eleve_id.clone());
    }
    picked
}

#[tokio::test]
async fn random_picks_repeat_with_the_seed() {
    assert_eq!(picks(7).await, picks(7).await);
    assert_ne!(picks(7).await, picks(8).await);
}

#[tokio::test]
async fn renew_refuses_a_single_sign_on_ticket() {
    let ent = ent(EntOptions::default()).await;
    let mut browser = Browser::new();
    let service = service(LEA.0);
    let fresh = ticket(&mut browser, &ent, CLAIRE, &service).await;
    let sso = ticket(&mut browser, &ent, CLAIRE, &service).await;
    let renew = [("renew", "true")];
    let fresh = parse(
        ResponseFormat::Xml,
        &validate(
            &mut browser,
            &ent,
            "serviceValidate",
            &service,
            &fresh,
            &renew,
        )
        .await,
    );
    assert!(matches!(fresh, Outcome::Success(_)));
    let sso = parse(
        ResponseFormat::Xml,
        &validate(
            &mut browser,
            &ent,
            "serviceValidate",
            &service,
            &sso,
            &renew,
        )
        .await,
    );
    assert_eq!(failure_code(&sso), Some("INVALID_TICKET"));
}

#[tokio::test]
async fn tickets_minted_without_a_browser_validate_once() {
    let ent = ent(EntOptions::default()).await;
    let mut browser = Browser::new();
    let service = service(HUGO.0);
    assert_eq!(ent.ent.issue_ticket("nobody", &service), None);
    let st = ent.ent.issue_ticket(CLAIRE.0, &service).unwrap();
    let first = parse(
        ResponseFormat::Xml,
        &validate(&mut browser, &ent, "serviceValidate", &service, &st, &[]).await,
    );
    assert!(matches!(first, Outcome::Success(_)));
    let again = parse(
        ResponseFormat::Xml,
        &validate(&mut browser, &ent, "serviceValidate", &service, &st, &[]).await,
    );
    assert_eq!(failure_code(&again), Some("INVALID_TICKET"));
}
