//! Shared set-up for the simulator tests: the committed example directory, a running
//! ENT, and the raw CAS steps (ticket, validation) a test wants to see one by one.
#![allow(dead_code)] // each test crate uses a different part

use std::path::Path;
use std::sync::Arc;

use bonenfant::cas::{self, Outcome, ParseOptions, ResponseFormat};
use bonenfant::sim::{Browser, Directory, EntHandle, EntOptions, Page, TestEnt};
use url::Url;

pub const CLAIRE: (&str, &str) = ("claire.martin", "demo-claire");
pub const JULIEN: (&str, &str) = ("julien.durand", "demo-julien");
/// Claire's children: Léa at 0330101A, Hugo at 0330202B.
pub const LEA: (&str, &str) = ("0330101A", "837001");
pub const HUGO: (&str, &str) = ("0330202B", "837002");

pub fn directory() -> Arc<Directory> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sim/directory.toml");
    Arc::new(Directory::load(&path).expect("committed example directory loads"))
}

pub async fn ent(options: EntOptions) -> EntHandle {
    TestEnt::spawn_local(directory(), options)
        .await
        .expect("ENT starts")
}

/// A path-style Pronote service URL nobody listens on (port 9, discard).
pub fn service(uai: &str) -> String {
    format!(
        "http://127.0.0.1:9/{}/pronote/parent.html",
        uai.to_ascii_lowercase()
    )
}

pub fn cas_url(ent: &EntHandle, endpoint: &str) -> Url {
    let mut url = ent.cas_base();
    url.set_path(&format!("/cas/{endpoint}"));
    url
}

/// Logs in at the ENT for `service` (form the first time, SSO after) and returns the
/// ticket the ENT redirected with.
pub async fn ticket(
    browser: &mut Browser,
    ent: &EntHandle,
    (login, password): (&str, &str),
    service: &str,
) -> String {
    let mut url = cas_url(ent, "login");
    url.query_pairs_mut().append_pair("service", service);
    let mut page = browser.fetch(&url).await.expect("login page");
    if page.location.is_none() {
        let fields = [
            ("service", service),
            ("username", login),
            ("password", password),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        page = browser
            .submit(&cas_url(ent, "login"), &fields)
            .await
            .expect("login post");
    }
    let location = page.location.expect("redirect to the service");
    assert!(
        location.as_str().starts_with(service),
        "redirect goes to the service"
    );
    location
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
        .expect("ticket in the redirect")
}

/// GETs `endpoint?service=…&ticket=…` (plus `extra` parameters).
pub async fn validate(
    browser: &mut Browser,
    ent: &EntHandle,
    endpoint: &str,
    service: &str,
    ticket: &str,
    extra: &[(&str, &str)],
) -> Page {
    let mut url = cas_url(ent, endpoint);
    url.query_pairs_mut()
        .append_pair("service", service)
        .append_pair("ticket", ticket)
        .extend_pairs(extra);
    browser.fetch(&url).await.expect("validation answer")
}

pub fn parse(format: ResponseFormat, page: &Page) -> Outcome {
    cas::parse_response(format, page.body.as_bytes(), &ParseOptions::default())
        .expect("the ENT's answer parses")
}

pub fn failure_code(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Failure(f) => Some(f.code.as_str()),
        Outcome::Success(_) => None,
    }
}
