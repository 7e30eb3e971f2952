//! The CAS exchange end to end on loopback: a browser's `/login` and Pronote's
//! validation of the same ticket, through a real bonenfant, against the sim ENT and sim
//! Pronote — or a scripted CAS where the ENT must misbehave.
//!
//! What each test pins: the ticket is correlated for every validation endpoint and
//! format; back-channel-only validations still get verdicts (and are refused under
//! strict correlation without asking the ENT); a replay never attaches twice nor reaches
//! the ENT twice; every upstream failure is a well-formed CAS failure (I1c); single
//! logout drops the session; the ticket gate refuses before any upstream request; and
//! no trace line or error body carries a ticket, a principal or a cookie value (I4):
//! every test ends with that check.
//!
//! Tests run on a current-thread runtime so the proxy's tasks emit on the thread whose
//! trace is captured.

use crate::support;
use crate::support::cas;

use bonenfant::cas::{Outcome, ResponseFormat};
use bonenfant::config::{AnswerMode, PinMode};
use bonenfant::events::capture::{self, capture, Captured};
use bonenfant::proxy::exchange::RunningProxy;
use bonenfant::sim::{
    EntHandle, EntOptions, LandingOutcome, Pick, PronoteHandle, PronoteOptions, TestEnt,
    TestPronote, ValidationMode,
};
use serde_json::Value;
use support::upstream::Framing;
use support::{Recorded, Reply, ScriptedUpstream};

use cas::*;

// === set-up ===

/// The sim ENT picking the child of the service's establishment (a correct ENT): every
/// login here lands on Léa, so verdicts are predictable.
async fn sim_ent() -> EntHandle {
    let options = EntOptions {
        pick: Pick::Correct,
        seed: 3,
        ..EntOptions::default()
    };
    TestEnt::spawn_local(directory(), options)
        .await
        .expect("ENT starts")
}

/// The sim ENT, bonenfant in front of it (after `tweak`), and a sim Pronote validating
/// through bonenfant in `mode`.
async fn sim_stack(
    mode: ValidationMode,
    tweak: impl FnOnce(&mut bonenfant::config::RawConfig),
) -> (EntHandle, RunningProxy, PronoteHandle) {
    let ent = sim_ent().await;
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), tweak).await;
    let options = PronoteOptions {
        cas_base: cas_base(&proxy),
        validation: mode,
    };
    let pronote = TestPronote::spawn_local(directory(), options)
        .await
        .expect("Pronote starts");
    (ent, proxy, pronote)
}

/// A scripted CAS: `/cas/login` redirects to the service with `ticket`, validations get
/// `validation`, anything else a plain `200 ok`.
async fn scripted_cas(
    ticket: &'static str,
    validation: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> ScriptedUpstream {
    scripted_cas_redirecting("ticket", ticket, validation).await
}

/// [`scripted_cas`], the ticket in the redirect's `param` (`ticket`, `SAMLart`).
async fn scripted_cas_redirecting(
    param: &'static str,
    ticket: &'static str,
    validation: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> ScriptedUpstream {
    ScriptedUpstream::start(move |req| {
        if req.target.starts_with("/cas/login") {
            let service = query_param(&req.target, "service").unwrap_or_default();
            Reply::status(302).header("Location", &format!("{service}?{param}={ticket}"))
        } else if req.target.contains("Validate") || req.target.starts_with("/cas/validate") {
            validation(req)
        } else {
            Reply::ok("ok\n").header("Content-Type", "text/plain")
        }
    })
    .await
}

const FORM: &str = "application/x-www-form-urlencoded";

/// `body` answered as XML (whatever it holds).
fn xml(body: impl Into<Vec<u8>>) -> Reply {
    Reply::ok(body).header("Content-Type", "application/xml; charset=UTF-8")
}

/// A base URL where nothing listens (a port just released).
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}/")
}

// === trace checks ===

/// The only event named `name`.
fn only(trace: &Captured, name: &str) -> Value {
    let events = trace.named(name);
    assert_eq!(events.len(), 1, "exactly one {name} event: {events:#?}");
    events.into_iter().next().unwrap_or_default()
}

/// The ticket was correlated: one `login_redirect` that bound it, one `validate` for
/// `endpoint` in the same session, about Claire going to Léa's establishment.
fn assert_correlated(trace: &Captured, endpoint: &str) -> Value {
    let redirect = only(trace, "login_redirect");
    assert_eq!(redirect["bound"], true);
    assert_eq!(redirect["uai_expected"], LEA.0);
    assert!(redirect["session"].is_string(), "{redirect}");
    let validate = only(trace, "validate");
    assert_eq!(
        validate["session"], redirect["session"],
        "ticket correlated"
    );
    assert_eq!(validate["endpoint"], endpoint);
    assert_eq!(validate["uai_expected"], LEA.0);
    assert_eq!(validate["principal"], principal_pseudonym(CLAIRE.0));
    assert_eq!(validate["error"], Value::Null, "{validate}");
    validate
}

/// No trace line holds a ticket, Claire's login or password, or any of `secrets`
/// (cookie values, tickets); nor does any of `bodies` (answers bonenfant wrote).
fn assert_no_leaks(trace: &Captured, secrets: &[&str], bodies: &[&str]) {
    let mut all = vec![CLAIRE.0, CLAIRE.1];
    all.extend_from_slice(secrets);
    trace.assert_no_leaks(&all);
    for body in bodies {
        capture::assert_no_leaks(body, &all);
    }
}

// === 1. correlation, every endpoint and format ===

/// Claire logs in through bonenfant; sim Pronote validates the ticket through it in
/// `mode` and lands on Léa; the trace ties the validation to the login.
async fn pronote_lands_correlated(mode: ValidationMode, endpoint: &str) {
    let (trace, _guard) = capture();
    let (ent, proxy, pronote) = sim_stack(mode, |_| {}).await;
    let service = pronote.parent_page(LEA.0).expect("Léa's Pronote");
    let front = login(&proxy, service.as_str(), CLAIRE).await;
    let page = get(&front.location, &[]).await;
    assert_eq!(page.status, 200);
    let landings = pronote.landings();
    assert_eq!(landings.len(), 1);
    assert_eq!(
        landings[0].outcome,
        LandingOutcome::Landed,
        "{:?}",
        landings[0].failure
    );
    assert_eq!(landings[0].principal.as_deref(), Some(CLAIRE.0));
    let validate = assert_correlated(&trace, endpoint);
    assert_eq!(validate["uai_asserted"], LEA.0);
    assert_eq!(validate["verdict"], "ok");
    let names: Vec<Value> = trace.events().iter().map(|e| e["event"].clone()).collect();
    assert_eq!(
        names,
        ["startup", "passthrough", "login_redirect", "validate"],
        "one summary event per request: the login form, the credentials, the validation"
    );
    assert_eq!(
        ent.ent.ticket(&front.ticket).map(|t| t.validations),
        Some(1)
    );
    let mut secrets = front.cookie_values();
    secrets.push(&front.ticket);
    assert_no_leaks(&trace, &secrets, &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn correlates_service_validate_and_pronote_lands() {
    pronote_lands_correlated(ValidationMode::ServiceValidate, "serviceValidate").await;
}

#[tokio::test(flavor = "current_thread")]
async fn correlates_p3_service_validate_and_pronote_lands() {
    pronote_lands_correlated(ValidationMode::P3ServiceValidate, "p3/serviceValidate").await;
}

#[tokio::test(flavor = "current_thread")]
async fn correlates_json_format_and_pronote_lands() {
    pronote_lands_correlated(ValidationMode::Json, "serviceValidate").await;
}

#[tokio::test(flavor = "current_thread")]
async fn correlates_saml_validate_and_pronote_lands() {
    pronote_lands_correlated(ValidationMode::SamlValidate, "samlValidate").await;
}

/// Endpoints sim Pronote does not use: the test plays the CAS client.
async fn client_reads_correlated(endpoint: &str, format: ResponseFormat) -> Value {
    let (trace, _guard) = capture();
    let ent = sim_ent().await;
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), |_| {}).await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    let answer = validate(&proxy, endpoint, &service, &front.ticket, &[]).await;
    assert_eq!(answer.status, 200);
    match answer.outcome(format) {
        Outcome::Success(assertion) => assert_eq!(assertion.principal, CLAIRE.0),
        Outcome::Failure(failure) => panic!("validation failed: {failure:?}"),
    }
    let validate = assert_correlated(&trace, endpoint);
    let mut secrets = front.cookie_values();
    secrets.push(&front.ticket);
    assert_no_leaks(&trace, &secrets, &[]);
    validate
}

#[tokio::test(flavor = "current_thread")]
async fn correlates_proxy_validate() {
    let validate = client_reads_correlated("proxyValidate", ResponseFormat::Xml).await;
    assert_eq!(validate["uai_asserted"], LEA.0);
    assert_eq!(validate["verdict"], "ok");
}

#[tokio::test(flavor = "current_thread")]
async fn correlates_p3_proxy_validate() {
    let validate = client_reads_correlated("p3/proxyValidate", ResponseFormat::Xml).await;
    assert_eq!(validate["uai_asserted"], LEA.0);
}

#[tokio::test(flavor = "current_thread")]
async fn correlates_cas1_validate_though_it_names_no_pupil() {
    // CAS 1 carries the principal alone: no pupil to read, so no establishment asserted.
    let validate = client_reads_correlated("validate", ResponseFormat::Cas1Text).await;
    assert_eq!(validate["uai_asserted"], Value::Null);
    assert_eq!(validate["verdict"], "unresolved");
}

#[tokio::test(flavor = "current_thread")]
async fn correlates_a_saml_artifact_redirect() {
    let (trace, _guard) = capture();
    let artifact = "ST-artifact0123456789";
    let upstream = scripted_cas_redirecting("SAMLart", artifact, |req| {
        let target = query_param(&req.target, "TARGET").unwrap_or_default();
        Reply::ok(claire_success_in(ResponseFormat::Saml11, &target))
            .header("Content-Type", "text/xml")
    })
    .await;
    let proxy = bonenfant(&upstream.url(), Some(&directory()), |_| {}).await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    assert_eq!(front.ticket, artifact);
    let answer = saml_validate(&proxy, &service, artifact).await;
    match answer.outcome(ResponseFormat::Saml11) {
        Outcome::Success(assertion) => assert_eq!(assertion.principal, CLAIRE.0),
        Outcome::Failure(failure) => panic!("validation failed: {failure:?}"),
    }
    let validate = assert_correlated(&trace, "samlValidate");
    assert_eq!(validate["uai_asserted"], LEA.0);
    let mut secrets = front.cookie_values();
    secrets.push(artifact);
    assert_no_leaks(&trace, &secrets, &[]);
}

/// The same four Pronote modes with pinning on (retry) or canonical answers: the
/// answer Pronote reads is bonenfant's own serialisation (from the retry stash, or
/// re-written), and it still lands, correlated, the ENT asked once per ticket.
async fn every_pronote_mode_lands(tweak: impl Fn(&mut bonenfant::config::RawConfig)) {
    let modes = [
        (ValidationMode::ServiceValidate, "serviceValidate"),
        (ValidationMode::P3ServiceValidate, "p3/serviceValidate"),
        (ValidationMode::Json, "serviceValidate"),
        (ValidationMode::SamlValidate, "samlValidate"),
    ];
    for (mode, endpoint) in modes {
        let (trace, _guard) = capture();
        let (ent, proxy, pronote) = sim_stack(mode, &tweak).await;
        let service = pronote.parent_page(LEA.0).expect("Léa's Pronote");
        let front = login(&proxy, service.as_str(), CLAIRE).await;
        get(&front.location, &[]).await;
        let landing = &pronote.landings()[0];
        assert_eq!(
            landing.outcome,
            LandingOutcome::Landed,
            "{mode:?}: {:?}",
            landing.failure
        );
        assert_eq!(landing.principal.as_deref(), Some(CLAIRE.0));
        let validate = assert_correlated(&trace, endpoint);
        assert_eq!(validate["uai_asserted"], LEA.0, "{mode:?}");
        assert_eq!(
            ent.ent.ticket(&front.ticket).map(|t| t.validations),
            Some(1)
        );
        let mut secrets = front.cookie_values();
        secrets.push(&front.ticket);
        assert_no_leaks(&trace, &secrets, &[]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn retry_mode_answers_every_pronote_format_from_the_stash() {
    every_pronote_mode_lands(|raw| raw.pin = Some(PinMode::Retry)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn canonical_answers_land_in_every_pronote_format() {
    every_pronote_mode_lands(|raw| raw.answer = Some(AnswerMode::Canonical)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn interleaved_logins_correlate_each_ticket_to_its_own_session() {
    let (trace, _guard) = capture();
    let ent = sim_ent().await;
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), |_| {}).await;
    let lea = service(LEA.0);
    let hugo = service(HUGO.0);
    let first = login(&proxy, &lea, CLAIRE).await;
    let second = login(&proxy, &hugo, CLAIRE).await;
    // Validated in the other order.
    for (front, service) in [(&second, &hugo), (&first, &lea)] {
        let answer = validate(&proxy, "serviceValidate", service, &front.ticket, &[]).await;
        assert!(matches!(
            answer.outcome(ResponseFormat::Xml),
            Outcome::Success(_)
        ));
    }
    let redirects = trace.named("login_redirect");
    let validates = trace.named("validate");
    assert_eq!((redirects.len(), validates.len()), (2, 2));
    assert_ne!(redirects[0]["session"], redirects[1]["session"]);
    assert_eq!(validates[0]["session"], redirects[1]["session"]);
    assert_eq!(validates[0]["uai_asserted"], HUGO.0);
    assert_eq!(validates[1]["session"], redirects[0]["session"]);
    assert_eq!(validates[1]["uai_asserted"], LEA.0);
    let mut secrets = first.cookie_values();
    secrets.extend(second.cookie_values());
    secrets.extend([first.ticket.as_str(), second.ticket.as_str()]);
    assert_no_leaks(&trace, &secrets, &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_second_login_rotates_the_session_and_correlates_to_the_new_one() {
    let (trace, _guard) = capture();
    let ent = sim_ent().await;
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), |_| {}).await;
    let service = service(LEA.0);
    let first = login(&proxy, &service, CLAIRE).await;
    validate(&proxy, "serviceValidate", &service, &first.ticket, &[]).await;
    // The same browser comes back with its cookies (ENT single sign-on, bonenfant's).
    let mut url = endpoint_url(&proxy, "login");
    url.query_pairs_mut().append_pair("service", &service);
    let again = get(url.as_str(), &first.cookies).await;
    assert_eq!(again.status, 302, "silent login: {}", again.body);
    let location = again.location().expect("redirect").to_owned();
    let ticket = url::Url::parse(&location)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
        .expect("ticket");
    let answer = validate(&proxy, "serviceValidate", &service, &ticket, &[]).await;
    assert!(matches!(
        answer.outcome(ResponseFormat::Xml),
        Outcome::Success(_)
    ));
    let redirects = trace.named("login_redirect");
    let validates = trace.named("validate");
    assert_eq!((redirects.len(), validates.len()), (2, 2));
    assert_ne!(
        redirects[0]["session"], redirects[1]["session"],
        "a new ticket gets a new session id (T44)"
    );
    assert_eq!(validates[1]["session"], redirects[1]["session"]);
    let rotated = again.cookies();
    let mut secrets = first.cookie_values();
    secrets.extend(
        rotated
            .iter()
            .filter_map(|c| c.split_once('=').map(|(_, v)| v)),
    );
    secrets.extend([first.ticket.as_str(), ticket.as_str()]);
    assert_no_leaks(&trace, &secrets, &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn wrong_establishment_is_flagged_on_the_correlated_validation() {
    let (trace, _guard) = capture();
    // An ENT that always names the first child: Léa, though Claire goes to Hugo's
    // collège.
    let options = EntOptions {
        pick: Pick::First,
        ..EntOptions::default()
    };
    let ent = TestEnt::spawn_local(directory(), options)
        .await
        .expect("ENT starts");
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), |_| {}).await;
    let pronote = TestPronote::spawn_local(directory(), PronoteOptions::new(cas_base(&proxy)))
        .await
        .expect("Pronote starts");
    let service = pronote.parent_page(HUGO.0).expect("Hugo's Pronote");
    let front = login(&proxy, service.as_str(), CLAIRE).await;
    get(&front.location, &[]).await;
    assert_eq!(
        pronote.landings()[0].outcome,
        LandingOutcome::UnknownUser,
        "observe mode changes nothing"
    );
    let redirect = only(&trace, "login_redirect");
    let validate = only(&trace, "validate");
    assert_eq!(validate["session"], redirect["session"]);
    assert_eq!(validate["uai_expected"], HUGO.0);
    assert_eq!(validate["uai_asserted"], LEA.0);
    assert_eq!(validate["verdict"], "wrong_establishment");
    let mut secrets = front.cookie_values();
    secrets.push(&front.ticket);
    assert_no_leaks(&trace, &secrets, &[]);
}

// === 2. back channel only ===

/// Claire logs in at the ENT directly; only Pronote's validation goes through bonenfant
/// (deployment mode 2). Returns the ticket Pronote validated.
async fn back_channel_only(
    tweak: impl FnOnce(&mut bonenfant::config::RawConfig),
) -> (EntHandle, RunningProxy, PronoteHandle, String) {
    let ent = sim_ent().await;
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), tweak).await;
    let pronote = TestPronote::with_back_channel(
        directory(),
        PronoteOptions::new(ent.cas_base()),
        cas_base(&proxy),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let pronote = pronote.spawn(listener).expect("Pronote starts");
    let mut browser = bonenfant::sim::Browser::new();
    let url = pronote.parent_page(LEA.0).expect("Léa's Pronote");
    let result = bonenfant::sim::parent_login(&mut browser, &url, CLAIRE.0, CLAIRE.1)
        .await
        .expect("login runs");
    assert!(result.outcome.is_some(), "ended on a Pronote page");
    let ticket = pronote.landings()[0].ticket.clone();
    (ent, proxy, pronote, ticket)
}

#[tokio::test(flavor = "current_thread")]
async fn back_channel_only_validation_is_forwarded_uncorrelated_with_a_verdict() {
    let (trace, _guard) = capture();
    let (ent, _proxy, pronote, ticket) = back_channel_only(|_| {}).await;
    assert_eq!(pronote.landings()[0].outcome, LandingOutcome::Landed);
    assert!(trace.named("login_redirect").is_empty());
    let validate = only(&trace, "validate");
    assert_eq!(validate["session"], Value::Null);
    assert_eq!(validate["endpoint"], "serviceValidate");
    assert_eq!(validate["uai_expected"], LEA.0);
    assert_eq!(validate["uai_asserted"], LEA.0);
    assert_eq!(validate["verdict"], "ok");
    assert_eq!(validate["principal"], principal_pseudonym(CLAIRE.0));
    assert_eq!(validate["error"], Value::Null);
    assert_eq!(ent.ent.ticket(&ticket).map(|t| t.validations), Some(1));
    assert_no_leaks(&trace, &[&ticket], &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn strict_correlation_refuses_an_unseen_ticket_without_asking_the_ent() {
    let (trace, _guard) = capture();
    let (ent, _proxy, pronote, ticket) =
        back_channel_only(|raw| raw.strict_correlation = Some(true)).await;
    let landing = &pronote.landings()[0];
    assert_eq!(landing.outcome, LandingOutcome::Failure);
    assert_eq!(landing.failure.as_deref(), Some("INVALID_TICKET"));
    assert_eq!(ent.ent.ticket(&ticket).map(|t| t.validations), Some(0));
    let validate = only(&trace, "validate");
    assert_eq!(validate["error"], "proxy.uncorrelated_ticket");
    assert_eq!(validate["uai_expected"], LEA.0);
    assert_eq!(validate["session"], Value::Null);
    assert_no_leaks(&trace, &[&ticket], &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn strict_correlation_accepts_a_ticket_seen_on_the_front_channel() {
    let (trace, _guard) = capture();
    let (ent, proxy, pronote) = sim_stack(ValidationMode::ServiceValidate, |raw| {
        raw.strict_correlation = Some(true);
    })
    .await;
    let service = pronote.parent_page(LEA.0).expect("Léa's Pronote");
    let front = login(&proxy, service.as_str(), CLAIRE).await;
    get(&front.location, &[]).await;
    assert_eq!(pronote.landings()[0].outcome, LandingOutcome::Landed);
    assert_correlated(&trace, "serviceValidate");
    assert_eq!(
        ent.ent.ticket(&front.ticket).map(|t| t.validations),
        Some(1)
    );
    let mut secrets = front.cookie_values();
    secrets.push(&front.ticket);
    assert_no_leaks(&trace, &secrets, &[]);
}

// === 3. replay ===

/// Claire's ticket validated twice through bonenfant in `mode`: the first succeeds, the
/// replay fails, only the first attaches to her session, and the ENT hears of the
/// ticket once.
async fn replay_fails_once_attached(mode: PinMode) {
    let (trace, _guard) = capture();
    let ent = sim_ent().await;
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), |raw| {
        raw.pin = Some(mode);
    })
    .await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    let first = validate(&proxy, "serviceValidate", &service, &front.ticket, &[]).await;
    assert!(matches!(
        first.outcome(ResponseFormat::Xml),
        Outcome::Success(_)
    ));
    let replay = validate(&proxy, "serviceValidate", &service, &front.ticket, &[]).await;
    assert_eq!(
        failure_code(&replay.outcome(ResponseFormat::Xml)),
        Some("INVALID_TICKET")
    );
    let validates = trace.named("validate");
    assert_eq!(validates.len(), 2);
    let attached: Vec<&Value> = validates
        .iter()
        .filter(|v| v["session"].is_string())
        .collect();
    assert_eq!(attached.len(), 1, "attached once: {validates:#?}");
    assert_eq!(attached[0]["error"], Value::Null);
    assert_eq!(validates[1]["error"], "proxy.ticket_replayed");
    assert_eq!(validates[1]["uai_expected"], LEA.0);
    assert_eq!(
        ent.ent.ticket(&front.ticket).map(|t| t.validations),
        Some(1),
        "the ENT is asked about a ticket once"
    );
    let mut secrets = front.cookie_values();
    secrets.push(&front.ticket);
    assert_no_leaks(&trace, &secrets, &[&replay.body]);
}

#[tokio::test(flavor = "current_thread")]
async fn replayed_ticket_fails_and_never_attaches_twice() {
    replay_fails_once_attached(PinMode::Observe).await;
}

#[tokio::test(flavor = "current_thread")]
async fn replayed_ticket_in_retry_mode_reaches_the_ent_once() {
    replay_fails_once_attached(PinMode::Retry).await;
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_validations_of_one_ticket_succeed_once() {
    let (trace, _guard) = capture();
    let ent = sim_ent().await;
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), |_| {}).await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    let racing = (0..6).map(|_| validate(&proxy, "serviceValidate", &service, &front.ticket, &[]));
    let answers = futures_util::future::join_all(racing).await;
    let successes = answers
        .iter()
        .filter(|a| matches!(a.outcome(ResponseFormat::Xml), Outcome::Success(_)))
        .count();
    assert_eq!(successes, 1);
    assert_eq!(
        ent.ent.ticket(&front.ticket).map(|t| t.validations),
        Some(1)
    );
    let validates = trace.named("validate");
    assert_eq!(validates.len(), 6);
    assert_eq!(
        validates
            .iter()
            .filter(|v| v["session"].is_string())
            .count(),
        1,
        "attached once"
    );
    let mut secrets = front.cookie_values();
    secrets.push(&front.ticket);
    let bodies: Vec<&str> = answers.iter().map(|a| a.body.as_str()).collect();
    assert_no_leaks(&trace, &secrets, &bodies[1..]);
}

#[tokio::test(flavor = "current_thread")]
async fn retry_stash_refuses_another_service_and_spends_the_ticket() {
    let (trace, _guard) = capture();
    let ent = sim_ent().await;
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), |raw| {
        raw.pin = Some(PinMode::Retry);
    })
    .await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    let elsewhere = service.replace("parent.html", "eleve.html");
    let wrong = validate(&proxy, "serviceValidate", &elsewhere, &front.ticket, &[]).await;
    assert_eq!(
        failure_code(&wrong.outcome(ResponseFormat::Xml)),
        Some("INVALID_SERVICE")
    );
    let right = validate(&proxy, "serviceValidate", &service, &front.ticket, &[]).await;
    assert_eq!(
        failure_code(&right.outcome(ResponseFormat::Xml)),
        Some("INVALID_TICKET"),
        "a ticket presented for another service is spent, as at the ENT"
    );
    assert_eq!(
        ent.ent.ticket(&front.ticket).map(|t| t.validations),
        Some(1)
    );
    let validates = trace.named("validate");
    assert_eq!(validates[0]["error"], "proxy.stash_service_mismatch");
    let mut secrets = front.cookie_values();
    secrets.push(&front.ticket);
    assert_no_leaks(&trace, &secrets, &[&wrong.body, &right.body]);
}

/// Claire's CAS 2 answer without attributes (what Apereo CAS releases by default).
fn claire_bare() -> String {
    format!(
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\
         <cas:authenticationSuccess><cas:user>{}</cas:user>\
         </cas:authenticationSuccess></cas:serviceResponse>",
        CLAIRE.0
    )
}

/// The paths of the validations the scripted ENT was asked, in order.
fn validation_paths(upstream: &ScriptedUpstream) -> Vec<String> {
    upstream
        .requests()
        .iter()
        .map(|r| r.target.split('?').next().unwrap_or_default().to_owned())
        .filter(|path| path.ends_with("Validate"))
        .collect()
}

/// Regression (django-cas-server interop): bonenfant's early validation asked
/// `serviceValidate`, so behind an ENT that releases attributes only over CAS 3, the
/// retry strategy handed Pronote a bare user and could pin nothing. It asks
/// `p3/serviceValidate`, and under `--answer verbatim` Pronote gets the ENT's own
/// bytes, as on the back channel.
#[tokio::test(flavor = "current_thread")]
async fn retry_validates_early_over_cas3_and_answers_the_ents_own_bytes() {
    let (trace, _guard) = capture();
    // A comment no serialiser would write: only a verbatim answer carries it.
    let cas3 = claire_success().replace(
        "<cas:authenticationSuccess>",
        "<cas:authenticationSuccess><!-- from the ENT -->",
    );
    let answer = cas3.clone();
    let upstream = scripted_cas("ST-cas3only0001", move |req| {
        if req.target.starts_with("/cas/p3/serviceValidate") {
            xml(answer.clone())
        } else {
            xml(claire_bare())
        }
    })
    .await;
    let proxy = bonenfant(&upstream.url(), Some(&directory()), |raw| {
        raw.pin = Some(PinMode::Retry);
    })
    .await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    let pronote = validate(&proxy, "serviceValidate", &service, &front.ticket, &[]).await;
    assert_eq!(pronote.body, cas3, "the ENT's CAS 3 answer, byte for byte");
    let validate = only(&trace, "validate");
    assert_eq!(validate["verdict"], "ok", "{validate}");
    assert_eq!(validate["uai_asserted"], LEA.0);
    let asked = validation_paths(&upstream);
    assert_eq!(asked, ["/cas/p3/serviceValidate"], "the ENT is asked once");
}

/// An ENT without CAS 3 answers 404 at `p3/serviceValidate` (no ticket read there):
/// the early validation asks `serviceValidate` instead, for that ticket only.
#[tokio::test(flavor = "current_thread")]
async fn retry_falls_back_to_service_validate_when_the_ent_has_no_cas3() {
    let (trace, _guard) = capture();
    let issued = std::sync::atomic::AtomicUsize::new(0);
    let upstream = ScriptedUpstream::start(move |req| {
        if req.target.starts_with("/cas/login") {
            let n = issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let service = query_param(&req.target, "service").unwrap_or_default();
            Reply::status(302).header("Location", &format!("{service}?ticket=ST-cas2only{n:04}"))
        } else if req.target.starts_with("/cas/p3/") {
            Reply::status(404)
        } else {
            xml(claire_success())
        }
    })
    .await;
    let proxy = bonenfant(&upstream.url(), Some(&directory()), |raw| {
        raw.pin = Some(PinMode::Retry);
    })
    .await;
    let service = service(LEA.0);
    for _ in 0..2 {
        let front = login(&proxy, &service, CLAIRE).await;
        let pronote = validate(&proxy, "serviceValidate", &service, &front.ticket, &[]).await;
        assert!(
            matches!(pronote.outcome(ResponseFormat::Xml), Outcome::Success(_)),
            "{}",
            pronote.body
        );
    }
    let asked = validation_paths(&upstream);
    assert_eq!(
        asked,
        [
            "/cas/p3/serviceValidate",
            "/cas/serviceValidate",
            "/cas/p3/serviceValidate",
            "/cas/serviceValidate"
        ],
        "asked afresh for every ticket: one 404 decides nothing for the next"
    );
    assert!(trace
        .named("validate")
        .iter()
        .all(|e| e["verdict"] == "ok" && e["error"].is_null()));
}

/// Regression (review): the stash kept the ENT's bytes beside the parsed assertion, so an
/// answer over half the stash bound failed to stash and Pronote got `INVALID_TICKET`. An
/// answer too large to keep twice is kept parsed, and Pronote still logs in.
#[tokio::test(flavor = "current_thread")]
async fn retry_stashes_a_large_answer_parsed_when_its_bytes_do_not_fit() {
    let (trace, _guard) = capture();
    let mut attributes = String::new();
    for n in 0..200 {
        attributes.push_str(&format!(
            "<cas:groupe>classe-{n:03}-option-longue</cas:groupe>"
        ));
    }
    let large = claire_success().replace(
        "</cas:attributes>",
        &format!("{attributes}</cas:attributes>"),
    );
    assert!(large.len() > 9 * 1024, "{} bytes", large.len());
    let answer = large.clone();
    let upstream = scripted_cas("ST-largeanswer01", move |_| xml(answer.clone())).await;
    let proxy = bonenfant(&upstream.url(), Some(&directory()), |raw| {
        raw.pin = Some(PinMode::Retry);
    })
    .await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    let pronote = validate(&proxy, "serviceValidate", &service, &front.ticket, &[]).await;
    match pronote.outcome(ResponseFormat::Xml) {
        Outcome::Success(assertion) => {
            assert_eq!(assertion.attributes.values("groupe").count(), 200)
        }
        failure => panic!("Pronote was refused: {failure:?}"),
    }
    assert_eq!(only(&trace, "validate")["verdict"], "ok");
}

// === 4. reading the ENT's answer, failing closed (I1c) ===

/// The scripted ENT frames its success as `framing`; the client still reads Claire.
async fn framed_answer_is_read_whole(framing: Framing) {
    let (trace, _guard) = capture();
    let upstream = scripted_cas("ST-unused0000", move |_| {
        xml(claire_success()).framing(framing)
    })
    .await;
    let proxy = bonenfant(&upstream.url(), None, |_| {}).await;
    let answer = validate(
        &proxy,
        "serviceValidate",
        &service(LEA.0),
        "ST-framed01",
        &[],
    )
    .await;
    match answer.outcome(ResponseFormat::Xml) {
        Outcome::Success(assertion) => assert_eq!(assertion.principal, CLAIRE.0),
        Outcome::Failure(failure) => panic!("{framing:?}: {failure:?}"),
    }
    assert_eq!(only(&trace, "validate")["error"], Value::Null);
    assert_no_leaks(&trace, &["ST-framed01"], &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn chunked_answer_from_the_ent_is_read_whole() {
    framed_answer_is_read_whole(Framing::Chunked).await;
}

#[tokio::test(flavor = "current_thread")]
async fn close_delimited_answer_from_the_ent_is_read_whole() {
    framed_answer_is_read_whole(Framing::Close).await;
}

#[tokio::test(flavor = "current_thread")]
async fn ent_down_fails_closed_in_every_format() {
    let (trace, _guard) = capture();
    let proxy = bonenfant(&closed_port().await, None, |_| {}).await;
    let service = service(LEA.0);
    // One ticket per format: a second request naming the same ticket is a replay.
    let tickets = ["ST-down0001", "ST-down0002", "ST-down0003", "ST-down0004"];
    let answers = [
        (
            validate(&proxy, "serviceValidate", &service, tickets[0], &[]).await,
            ResponseFormat::Xml,
        ),
        (
            validate(
                &proxy,
                "p3/serviceValidate",
                &service,
                tickets[1],
                &[("format", "JSON")],
            )
            .await,
            ResponseFormat::Json,
        ),
        (
            validate(&proxy, "validate", &service, tickets[2], &[]).await,
            ResponseFormat::Cas1Text,
        ),
        (
            saml_validate(&proxy, &service, tickets[3]).await,
            ResponseFormat::Saml11,
        ),
    ];
    for (answer, format) in &answers {
        assert_eq!(answer.status, 200, "{format:?}");
        let outcome = answer.outcome(*format);
        if *format == ResponseFormat::Cas1Text {
            // CAS 1 has no failure codes: `no`.
            assert_eq!(answer.body, "no\n");
        } else {
            assert_eq!(
                failure_code(&outcome),
                Some("INTERNAL_ERROR"),
                "{}",
                answer.body
            );
        }
    }
    let validates = trace.named("validate");
    assert_eq!(validates.len(), 4);
    for event in &validates {
        let code = event["error"].as_str().unwrap_or_default();
        assert!(code.starts_with("proxy.upstream"), "{event}");
        assert_eq!(event["uai_expected"], LEA.0, "named by the service URL");
        assert_eq!(event["verdict"], "unresolved");
        assert_eq!(event["rule"], "no_assertion");
    }
    let bodies: Vec<&str> = answers.iter().map(|(a, _)| a.body.as_str()).collect();
    assert_no_leaks(&trace, &tickets, &bodies);
}

#[tokio::test(flavor = "current_thread")]
async fn failed_validations_still_name_the_expected_establishment() {
    let (trace, _guard) = capture();
    let refusal = "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\
        <cas:authenticationFailure code=\"INVALID_TICKET\">not recognized</cas:authenticationFailure>\
        </cas:serviceResponse>";
    let upstream = scripted_cas("ST-unused0000", move |_| xml(refusal)).await;
    let proxy = bonenfant(&upstream.url(), None, |_| {}).await;
    let service = service(LEA.0);
    let answer = validate(&proxy, "serviceValidate", &service, "ST-refused0001", &[]).await;
    assert_eq!(answer.body, refusal, "the ENT's own failure, verbatim");
    let validate = only(&trace, "validate");
    assert_eq!(validate["error"], "cas.failure.invalid_ticket");
    assert_eq!(validate["uai_expected"], LEA.0);
    assert_no_leaks(&trace, &["ST-refused0001"], &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn oversized_saml_request_is_refused_without_asking_the_ent() {
    let (trace, _guard) = capture();
    let upstream = scripted_cas("ST-unused0000", |_| xml(claire_success())).await;
    let proxy = bonenfant(&upstream.url(), None, |raw| {
        raw.max_request_body = Some(1024);
    })
    .await;
    let service = service(LEA.0);
    let padded = saml_request("ST-big0001").replace(
        "<SOAP-ENV:Header/>",
        &format!("<SOAP-ENV:Header>{}</SOAP-ENV:Header>", " ".repeat(4096)),
    );
    let mut url = endpoint_url(&proxy, "samlValidate");
    url.query_pairs_mut().append_pair("TARGET", &service);
    let answer = post(url.as_str(), "text/xml", &padded, &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        failure_code(&answer.outcome(ResponseFormat::Saml11)),
        Some("INVALID_REQUEST")
    );
    assert!(upstream.requests().is_empty(), "nothing reached the ENT");
    assert_eq!(
        only(&trace, "validate")["error"],
        "proxy.request_body_too_large"
    );
    assert_no_leaks(&trace, &["ST-big0001"], &[&answer.body]);
}

#[tokio::test(flavor = "current_thread")]
async fn validation_asks_the_ent_for_an_answer_it_can_inspect() {
    let (trace, _guard) = capture();
    let upstream = scripted_cas("ST-unused0000", |_| xml(claire_success())).await;
    let proxy = bonenfant(&upstream.url(), None, |_| {}).await;
    let mut url = endpoint_url(&proxy, "serviceValidate");
    url.query_pairs_mut()
        .append_pair("service", &service(LEA.0))
        .append_pair("ticket", "ST-gzip0001");
    // python-cas (requests) and curl --compressed ask for compressed answers; a
    // compressed answer could not be parsed, and every validation would fail.
    let answer = get_with(url.as_str(), &[("accept-encoding", "gzip, deflate, br")]).await;
    assert!(matches!(
        answer.outcome(ResponseFormat::Xml),
        Outcome::Success(_)
    ));
    let asked = &upstream.requests()[0];
    // No Accept-Encoding at all would let the ENT pick any coding (RFC 9110 §12.5.3).
    assert_eq!(
        asked.all("accept-encoding"),
        ["identity"],
        "the ENT may not compress the answer"
    );
    assert_no_leaks(&trace, &["ST-gzip0001"], &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn early_validation_asks_the_ent_for_an_answer_it_can_inspect() {
    let (trace, _guard) = capture();
    let ticket = "ST-early0001";
    let upstream = scripted_cas(ticket, |_| xml(claire_success())).await;
    let proxy = bonenfant(&upstream.url(), Some(&directory()), |raw| {
        raw.pin = Some(PinMode::Retry);
    })
    .await;
    let front = login(&proxy, &service(LEA.0), CLAIRE).await;
    let early = upstream
        .requests()
        .into_iter()
        .find(|r| r.target.contains("serviceValidate"))
        .expect("the retry strategy validated the ticket itself");
    assert_eq!(early.all("accept-encoding"), ["identity"]);
    let mut secrets = front.cookie_values();
    secrets.push(ticket);
    assert_no_leaks(&trace, &secrets, &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn compressed_answer_from_the_ent_fails_closed() {
    fails_closed(
        xml(vec![
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
        ])
        .header("Content-Encoding", "gzip"),
        |_| {},
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn trailing_garbage_after_the_answer_fails_closed() {
    fails_closed(xml(format!("{}<x/>", claire_success())), |_| {}).await;
}

/// A scripted ENT answers a validation with `reply`; Pronote must get a well-formed
/// `INTERNAL_ERROR`, never a success. Returns the `validate` event.
async fn fails_closed(
    reply: Reply,
    tweak: impl FnOnce(&mut bonenfant::config::RawConfig),
) -> Value {
    let (trace, _guard) = capture();
    let upstream = scripted_cas("ST-scripted0001", move |_| reply.clone()).await;
    let proxy = bonenfant(&upstream.url(), None, tweak).await;
    let service = service(LEA.0);
    let answer = validate(&proxy, "serviceValidate", &service, "ST-scripted0001", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        failure_code(&answer.outcome(ResponseFormat::Xml)),
        Some("INTERNAL_ERROR"),
        "{}",
        answer.body
    );
    assert_eq!(upstream.requests().len(), 1, "asked the ENT once");
    let validate = only(&trace, "validate");
    assert!(validate["error"].is_string(), "{validate}");
    assert_eq!(validate["uai_asserted"], Value::Null);
    assert_no_leaks(&trace, &["ST-scripted0001"], &[&answer.body]);
    validate
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_from_the_ent_fails_closed() {
    fails_closed(xml("HTTP garbage, not CAS"), |_| {}).await;
}

#[tokio::test(flavor = "current_thread")]
async fn two_principals_from_the_ent_fail_closed_as_ambiguous() {
    let two = format!(
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\
         <cas:authenticationSuccess><cas:user>{}</cas:user><cas:user>julien.durand</cas:user>\
         </cas:authenticationSuccess></cas:serviceResponse>",
        CLAIRE.0
    );
    let validate = fails_closed(xml(two), |_| {}).await;
    assert_eq!(validate["verdict"], "ambiguous");
}

#[tokio::test(flavor = "current_thread")]
async fn doctype_from_the_ent_fails_closed() {
    let body = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY u \"{}\">]>{}",
        CLAIRE.0,
        claire_success()
    );
    fails_closed(xml(body), |_| {}).await;
}

#[tokio::test(flavor = "current_thread")]
async fn truncated_answer_from_the_ent_fails_closed() {
    let success = claire_success();
    let cut = &success.as_bytes()[..success.len() / 2];
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
        success.len()
    )
    .into_bytes();
    raw.extend_from_slice(cut);
    fails_closed(Reply::Raw(raw), |_| {}).await;
}

#[tokio::test(flavor = "current_thread")]
async fn answer_over_the_body_cap_fails_closed() {
    let padded = claire_success().replace(
        "</cas:attributes>",
        &format!(
            "<cas:padding>{}</cas:padding></cas:attributes>",
            "x".repeat(8192)
        ),
    );
    let validate = fails_closed(xml(padded), |raw| raw.max_validation_body = Some(4096)).await;
    assert_eq!(validate["principal"], Value::Null);
}

#[tokio::test(flavor = "current_thread")]
async fn http_error_from_the_ent_fails_closed() {
    let validate = fails_closed(Reply::status(500).body(claire_success()), |_| {}).await;
    assert_eq!(validate["error"], "proxy.upstream_status");
}

#[tokio::test(flavor = "current_thread")]
async fn silent_ent_fails_closed() {
    fails_closed(Reply::Silent, |raw| {
        raw.upstream_timeout = Some("200ms".to_owned());
    })
    .await;
}

/// An ENT that restarts: while it is down, a browser gets a 502 page and Pronote a CAS
/// `INTERNAL_ERROR` (never a success); once it is back on the same address, the very
/// next login and validation work: no pooled connection to the dead ENT is reused.
/// Regression: the sim ENT drew its tickets from its seed, so once restarted it issued
/// the tickets bonenfant had already seen, and bonenfant refused them as replays.
#[tokio::test(flavor = "current_thread")]
async fn an_ent_that_restarts_is_used_again_at_once() {
    let (trace, _guard) = capture();
    let correct = || EntOptions {
        pick: Pick::Correct,
        seed: 3,
        ..EntOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    let ent = TestEnt::new(directory(), correct())
        .spawn(listener)
        .expect("ENT starts");
    let proxy = bonenfant(ent.base_url().as_str(), Some(&directory()), |_| {}).await;
    let service = service(LEA.0);
    let logs_in = || async {
        let front = login(&proxy, &service, CLAIRE).await;
        let answer = validate(&proxy, "serviceValidate", &service, &front.ticket, &[]).await;
        matches!(answer.outcome(ResponseFormat::Xml), Outcome::Success(_))
    };
    // Keep-alive connections to the ENT wait in the pool.
    for _ in 0..3 {
        assert!(logs_in().await, "logs in while the ENT is up");
    }

    ent.stop().await.expect("ENT stops");
    let mut login_url = endpoint_url(&proxy, "login");
    login_url.query_pairs_mut().append_pair("service", &service);
    assert_eq!(get(login_url.as_str(), &[]).await.status, 502);
    let answer = validate(&proxy, "serviceValidate", &service, "ST-1-while-down", &[]).await;
    assert_eq!(
        failure_code(&answer.outcome(ResponseFormat::Xml)),
        Some("INTERNAL_ERROR")
    );

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the ENT's address is free again");
    let ent = TestEnt::new(directory(), correct())
        .spawn(listener)
        .expect("ENT restarts");
    assert!(logs_in().await, "the first login after the restart works");
    assert!(logs_in().await);
    assert_eq!(
        trace
            .named("validate")
            .iter()
            .filter(|e| e["verdict"] == "ok")
            .count(),
        5
    );
    proxy.stop().await.expect("bonenfant stops");
    ent.stop().await.expect("ENT stops");
}

// === 5. single logout ===

/// Claire logs in and validates through bonenfant in `mode` (scripted CAS); the ENT's
/// logout request for her ticket, posted as `content_type` `body`, drops her session's
/// state, is logged, and reaches the upstream unchanged.
async fn single_logout_drops_the_session(
    mode: PinMode,
    content_type: &str,
    body: impl Fn(&str) -> String,
) {
    let (trace, _guard) = capture();
    let ticket = "ST-slo0123456789";
    let upstream = scripted_cas(ticket, |_| xml(claire_success())).await;
    let proxy = bonenfant(&upstream.url(), Some(&directory()), |raw| {
        raw.pin = Some(mode);
    })
    .await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    let answer = validate(&proxy, "serviceValidate", &service, ticket, &[]).await;
    assert!(matches!(
        answer.outcome(ResponseFormat::Xml),
        Outcome::Success(_)
    ));
    let mut chooser = proxy
        .base_url(false)
        .join("bonenfant/choose")
        .expect("chooser URL");
    chooser.query_pairs_mut().append_pair("service", &service);
    let before = get(chooser.as_str(), &front.cookies).await;
    assert_eq!(before.status, 200);

    let slo = body(ticket);
    let url = format!("{}pronote/slo", proxy.base_url(false));
    let answered = post(&url, content_type, &slo, &[]).await;
    assert_eq!(answered.status, 200, "the upstream's answer comes back");
    let forwarded = upstream
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the logout request reached the upstream");
    assert_eq!(forwarded.target, "/pronote/slo");
    assert_eq!(forwarded.body, slo.as_bytes(), "forwarded unchanged");
    assert_eq!(forwarded.header("content-type"), Some(content_type));

    let after = get(chooser.as_str(), &front.cookies).await;
    assert_eq!(after.status, 200);
    let redirect = only(&trace, "login_redirect");
    let logout = only(&trace, "logout");
    assert_eq!(logout["kind"], "single_logout");
    assert_eq!(logout["dropped"], true);
    assert_eq!(logout["session"], redirect["session"]);
    let choosers = trace.named("chooser");
    assert_eq!(choosers.len(), 2);
    assert!(choosers[0]["children"].as_u64() >= Some(1), "{choosers:#?}");
    assert_eq!(choosers[0]["session"], redirect["session"]);
    assert_eq!(
        choosers[1]["children"], 0,
        "the session's children are forgotten"
    );
    let mut secrets = front.cookie_values();
    secrets.push(ticket);
    assert_no_leaks(&trace, &secrets, &[]);
}

#[tokio::test(flavor = "current_thread")]
async fn single_logout_form_drops_the_session_and_is_forwarded_unchanged() {
    single_logout_drops_the_session(PinMode::Observe, FORM, |ticket| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("logoutRequest", &logout_request(ticket))
            .finish()
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn single_logout_raw_xml_drops_the_session_and_is_forwarded_unchanged() {
    single_logout_drops_the_session(PinMode::Observe, "text/xml; charset=utf-8", logout_request)
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn single_logout_in_retry_mode_drops_the_session() {
    single_logout_drops_the_session(PinMode::Retry, "text/xml", logout_request).await;
}

#[tokio::test(flavor = "current_thread")]
async fn single_logout_before_validation_spends_the_ticket() {
    let (trace, _guard) = capture();
    let ticket = "ST-early0123456789";
    let upstream = scripted_cas(ticket, |_| xml(claire_success())).await;
    let proxy = bonenfant(&upstream.url(), None, |_| {}).await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    let url = format!("{}pronote/slo", proxy.base_url(false));
    post(&url, "text/xml", &logout_request(ticket), &[]).await;
    let answer = validate(&proxy, "serviceValidate", &service, ticket, &[]).await;
    assert_eq!(
        failure_code(&answer.outcome(ResponseFormat::Xml)),
        Some("INVALID_TICKET")
    );
    assert!(
        upstream
            .requests()
            .iter()
            .all(|r| !r.target.contains("Validate")),
        "the ENT is not asked about a logged-out ticket"
    );
    let logout = only(&trace, "logout");
    assert_eq!(logout["dropped"], false, "nothing validated yet");
    let mut secrets = front.cookie_values();
    secrets.push(ticket);
    assert_no_leaks(&trace, &secrets, &[&answer.body]);
}

#[tokio::test(flavor = "current_thread")]
async fn browser_logout_forgets_the_session_and_clears_the_cookie() {
    let (trace, _guard) = capture();
    let ticket = "ST-bye0123456789";
    let upstream = scripted_cas(ticket, |_| xml(claire_success())).await;
    let proxy = bonenfant(&upstream.url(), Some(&directory()), |_| {}).await;
    let service = service(LEA.0);
    let front = login(&proxy, &service, CLAIRE).await;
    validate(&proxy, "serviceValidate", &service, ticket, &[]).await;
    let bye = get(endpoint_url(&proxy, "logout").as_str(), &front.cookies).await;
    assert_eq!(bye.status, 200, "the ENT's logout page comes back");
    assert!(
        upstream
            .requests()
            .iter()
            .any(|r| r.target == "/cas/logout"),
        "forwarded"
    );
    let cleared = bye
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("bonenfant=") && v.contains("Max-Age=0"));
    assert!(cleared, "bonenfant's cookie is cleared: {:?}", bye.headers);
    let logout = only(&trace, "logout");
    assert_eq!(logout["kind"], "browser");
    assert_eq!(logout["dropped"], true);
    assert_eq!(logout["session"], only(&trace, "login_redirect")["session"]);
    let mut secrets = front.cookie_values();
    secrets.push(ticket);
    assert_no_leaks(&trace, &secrets, &[]);
}

// === 6. the ticket gate (T17/T18) ===

/// `query` on `serviceValidate` is refused with `code` and nothing reaches the ENT.
async fn gate_refuses(query: &str, code: &str) {
    let (trace, _guard) = capture();
    let upstream = scripted_cas("ST-unused0000", |_| xml(claire_success())).await;
    let proxy = bonenfant(&upstream.url(), None, |_| {}).await;
    let url = format!("{}cas/serviceValidate?{query}", proxy.base_url(false));
    let answer = get(&url, &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        failure_code(&answer.outcome(ResponseFormat::Xml)),
        Some(code),
        "{}",
        answer.body
    );
    assert!(upstream.requests().is_empty(), "nothing reached the ENT");
    let validate = only(&trace, "validate");
    assert!(validate["error"].is_string(), "{validate}");
    assert_no_leaks(&trace, &["evil"], &[&answer.body]);
}

fn service_query() -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("service", &service(LEA.0))
        .finish()
}

#[tokio::test(flavor = "current_thread")]
async fn gate_refuses_a_ticket_smuggling_a_service() {
    let query = format!(
        "{}&ticket=ST-1%26service%3Dhttps%3A%2F%2Fevil",
        service_query()
    );
    gate_refuses(&query, "INVALID_TICKET").await;
}

#[tokio::test(flavor = "current_thread")]
async fn gate_refuses_two_ticket_parameters() {
    let query = format!("{}&ticket=ST-1abc&ticket=ST-2abc", service_query());
    gate_refuses(&query, "INVALID_REQUEST").await;
}

#[tokio::test(flavor = "current_thread")]
async fn gate_refuses_a_lowercase_ticket_prefix() {
    let query = format!("{}&ticket=st-1abcdef", service_query());
    gate_refuses(&query, "INVALID_TICKET").await;
}
