//! The CAS exchange under test: bonenfant's `exchange` in front of the sim ENT or of a
//! scripted CAS, with a fixed pseudonym key (so a test can compute the pseudonyms it
//! expects), and the two channels of a CAS login driven one request at a time, so a
//! test sees every ticket, cookie and answer body.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use bonenfant::cas::{self, Outcome, ParseOptions, ResponseFormat};
use bonenfant::config::RawConfig;
use bonenfant::events::{LossCounter, Pseudonymizer, TraceLog};
use bonenfant::proxy::exchange::{self, RunningProxy};
use bonenfant::sim::{Directory, SIM_SERVICE_PATTERN};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use url::Url;

use crate::support::client::http_client;
use crate::support::PATIENCE;

/// A parent of the committed sim directory with a child in each of two collèges.
pub const CLAIRE: (&str, &str) = ("claire.martin", "demo-claire");
/// Claire's child Léa: establishment and ELEVE_ID.
pub const LEA: (&str, &str) = ("0330101A", "837001");
/// Claire's child Hugo.
pub const HUGO: (&str, &str) = ("0330202B", "837002");

/// The pseudonym key of every proxy started here.
const PSEUDONYM_KEY: &[u8] = b"exchange tests: a pseudonym key of 32+ bytes";

/// The committed example directory (`tests/fixtures/sim/directory.toml`).
pub fn directory() -> Arc<Directory> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sim/directory.toml");
    Arc::new(Directory::load(&path).expect("committed example directory loads"))
}

/// A trace log whose pseudonyms a test can recompute with [`pseudonyms`].
pub fn trace_log() -> TraceLog {
    TraceLog::new(pseudonyms(), LossCounter::default())
}

pub fn pseudonyms() -> Pseudonymizer {
    Pseudonymizer::new(PSEUDONYM_KEY).expect("key is long enough")
}

/// `principal`'s pseudonym as trace events carry it.
pub fn principal_pseudonym(principal: &str) -> serde_json::Value {
    serde_json::to_value(pseudonyms().principal(principal)).expect("pseudonyms serialise")
}

/// bonenfant's CAS exchange in front of `upstream` (observe mode, the sim service
/// pattern, `directory` as its index), after `tweak`.
pub async fn bonenfant(
    upstream: &str,
    directory: Option<&Directory>,
    tweak: impl FnOnce(&mut RawConfig),
) -> RunningProxy {
    let mut raw = RawConfig {
        listen: Some("127.0.0.1:0".parse().expect("socket address")),
        upstream: Some(upstream.parse().expect("upstream URL")),
        establishment_pattern: Some(SIM_SERVICE_PATTERN.to_owned()),
        ..RawConfig::default()
    };
    tweak(&mut raw);
    let mut config = raw.validate().expect("test configuration is valid");
    config.directory_index = directory.map(Directory::index).into();
    exchange::spawn(Arc::new(config), trace_log())
        .await
        .expect("bonenfant starts")
}

/// `http://ADDR/cas`, the CAS base Pronote and browsers are given.
pub fn cas_base(proxy: &RunningProxy) -> Url {
    proxy.base_url(false).join("cas").expect("CAS base URL")
}

/// `<base>/<endpoint>` (`serviceValidate`, `p3/serviceValidate`, …).
pub fn endpoint_url(proxy: &RunningProxy, endpoint: &str) -> Url {
    proxy
        .base_url(false)
        .join(&format!("cas/{endpoint}"))
        .expect("endpoint URL")
}

/// A path-style Pronote service URL of establishment `uai` (nobody listens on port 9).
pub fn service(uai: &str) -> String {
    format!(
        "http://127.0.0.1:9/{}/pronote/parent.html",
        uai.to_ascii_lowercase()
    )
}

// === HTTP, one request at a time ===

/// One answer, read whole.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// `name=value` of every `Set-Cookie` (attributes dropped), as a `Cookie` header
    /// would send them back.
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(|pair| pair.trim().to_owned())
            .filter(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
            .collect()
    }

    /// The body as the CAS client of `format` reads it.
    pub fn outcome(&self, format: ResponseFormat) -> Outcome {
        cas::parse_response(format, self.body.as_bytes(), &ParseOptions::default()).unwrap_or_else(
            |e| {
                panic!(
                    "answer is not well-formed CAS ({}): {}",
                    e.code(),
                    self.body
                )
            },
        )
    }
}

/// GETs `url` with `cookies`, without following a redirect.
pub async fn get(url: &str, cookies: &[String]) -> Answer {
    send(Method::GET, url, None, cookies, &[]).await
}

/// GETs `url` with extra `headers`.
pub async fn get_with(url: &str, headers: &[(&str, &str)]) -> Answer {
    send(Method::GET, url, None, &[], headers).await
}

/// POSTs `body` as `content_type`.
pub async fn post(url: &str, content_type: &str, body: &str, cookies: &[String]) -> Answer {
    send(
        Method::POST,
        url,
        Some((content_type, body.to_owned())),
        cookies,
        &[],
    )
    .await
}

async fn send(
    method: Method,
    url: &str,
    body: Option<(&str, String)>,
    cookies: &[String],
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder().method(method).uri(url);
    if !cookies.is_empty() {
        request = request.header(COOKIE, cookies.join("; "));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = match body {
        Some((content_type, body)) => request
            .header(CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body))),
        None => request.body(Full::new(Bytes::new())),
    }
    .expect("request builds");
    let response = tokio::time::timeout(PATIENCE, http_client().request(request))
        .await
        .expect("answered in time")
        .expect("request goes through");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body reads").to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

// === the front channel ===

/// What a browser took away from `/login`: the ticket, where it was sent, and every
/// cookie it was given (the ENT's single sign-on, bonenfant's session).
#[derive(Clone, Debug)]
pub struct FrontChannel {
    pub ticket: String,
    /// `service?ticket=…`, as the redirect said.
    pub location: String,
    pub cookies: Vec<String>,
}

impl FrontChannel {
    /// The value of every cookie, for leak checks.
    pub fn cookie_values(&self) -> Vec<&str> {
        self.cookies
            .iter()
            .filter_map(|c| c.split_once('=').map(|(_, v)| v))
            .collect()
    }
}

/// Logs in through `proxy` for `service`: the login form and the credentials (sim
/// ENT), or straight to the redirect (a scripted CAS).
pub async fn login(
    proxy: &RunningProxy,
    service: &str,
    (user, password): (&str, &str),
) -> FrontChannel {
    let mut url = endpoint_url(proxy, "login");
    url.query_pairs_mut().append_pair("service", service);
    let mut answer = get(url.as_str(), &[]).await;
    let mut cookies = answer.cookies();
    if answer.location().is_none() {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("service", service)
            .append_pair("username", user)
            .append_pair("password", password)
            .finish();
        answer = post(
            url.as_str(),
            "application/x-www-form-urlencoded",
            &form,
            &cookies,
        )
        .await;
        cookies.extend(answer.cookies());
    }
    assert!(
        matches!(answer.status, 302 | 303),
        "login ends in a redirect, got {}: {}",
        answer.status,
        answer.body
    );
    let location = answer
        .location()
        .expect("redirect has a Location")
        .to_owned();
    assert!(
        location.starts_with(service),
        "redirect goes to the service"
    );
    let ticket = Url::parse(&location)
        .expect("Location is a URL")
        .query_pairs()
        .find(|(k, _)| k == "ticket" || k == "SAMLart")
        .map(|(_, v)| v.into_owned())
        .expect("ticket in the redirect");
    FrontChannel {
        ticket,
        location,
        cookies,
    }
}

// === the back channel ===

/// `GET <endpoint>?service=…&ticket=…` (plus `extra`), as a CAS client asks.
pub async fn validate(
    proxy: &RunningProxy,
    endpoint: &str,
    service: &str,
    ticket: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let mut url = endpoint_url(proxy, endpoint);
    url.query_pairs_mut()
        .append_pair("service", service)
        .append_pair("ticket", ticket)
        .extend_pairs(extra);
    get(url.as_str(), &[]).await
}

/// `POST samlValidate?TARGET=…` with a SOAP body naming `ticket`.
pub async fn saml_validate(proxy: &RunningProxy, service: &str, ticket: &str) -> Answer {
    let mut url = endpoint_url(proxy, "samlValidate");
    url.query_pairs_mut().append_pair("TARGET", service);
    post(
        url.as_str(),
        "text/xml; charset=utf-8",
        &saml_request(ticket),
        &[],
    )
    .await
}

/// A SAML 1.1 validation request (java-cas-client's shape).
pub fn saml_request(ticket: &str) -> String {
    format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <SOAP-ENV:Header/><SOAP-ENV:Body>\
         <samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" MajorVersion=\"1\" \
         MinorVersion=\"1\" RequestID=\"_1\" IssueInstant=\"2026-01-01T00:00:00Z\">\
         <samlp:AssertionArtifact>{ticket}</samlp:AssertionArtifact></samlp:Request>\
         </SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

/// A CAS single-logout request naming `ticket`.
pub fn logout_request(ticket: &str) -> String {
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"LR-1\" \
         Version=\"2.0\" IssueInstant=\"2026-01-01T00:00:00Z\">\
         <saml:NameID xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">@NOT_USED@</saml:NameID>\
         <samlp:SessionIndex>{ticket}</samlp:SessionIndex></samlp:LogoutRequest>"
    )
}

/// The CAS failure code of `outcome`, `None` for a success.
pub fn failure_code(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Failure(f) => Some(f.code.as_str()),
        Outcome::Success(_) => None,
    }
}

// === a scripted CAS ===

/// The OSE-style CAS 2 success for Claire designating Léa (FrEduVecteur).
pub fn claire_success() -> String {
    format!(
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\
         <cas:authenticationSuccess><cas:user>{}</cas:user><cas:attributes>\
         <cas:FrEduVecteur>2|MARTIN|Léa|{}|{}</cas:FrEduVecteur>\
         </cas:attributes></cas:authenticationSuccess></cas:serviceResponse>",
        CLAIRE.0, LEA.1, LEA.0
    )
}

/// Claire's success designating Léa in `format`, for `service`, as an ENT writes it.
pub fn claire_success_in(format: ResponseFormat, service: &str) -> String {
    let mut attributes = bonenfant::cas::Attributes::new();
    attributes.push("FrEduVecteur", format!("2|MARTIN|Léa|{}|{}", LEA.1, LEA.0));
    let assertion = bonenfant::cas::Assertion {
        principal: CLAIRE.0.to_owned(),
        attributes,
        ..bonenfant::cas::Assertion::default()
    };
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let context = bonenfant::cas::AnswerContext { service, now_unix };
    String::from_utf8(cas::serialize(
        &Outcome::Success(assertion),
        format,
        &context,
    ))
    .expect("answers are UTF-8")
}

/// The query parameter `name` of a request target, decoded.
pub fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
