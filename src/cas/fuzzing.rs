//! The properties each fuzz target checks, shared by `fuzz/` (libFuzzer, nightly) and
//! `tests/fuzz_seeds.rs` (the committed seed corpus replayed under stable `cargo test`).
//!
//! Each function takes arbitrary bytes and panics only when a property fails: no
//! parser may panic, and what a parser accepts must survive canonical serialisation.

use super::{
    login_redirect as read_login_redirect, parse_response, serialize, AnswerContext, Endpoint,
    Outcome, ParseOptions, ResponseFormat, ServiceTicket, ValidationRequest,
};

const CONTEXT: AnswerContext<'static> = AnswerContext {
    service: "https://0330012a.index-education.net/pronote/parent.html",
    now_unix: 1_795_975_340,
};

/// `parse`, then `parse(serialize(·))` twice: the second and third readings agree and
/// serialise to the same bytes. With `exact`, the first reading survives unchanged
/// (formats that carry everything they read).
fn stable(format: ResponseFormat, data: &[u8], exact: bool) {
    let options = ParseOptions::default();
    let Ok(first) = parse_response(format, data, &options) else {
        return;
    };
    let reread = |outcome: &Outcome| -> (Vec<u8>, Outcome) {
        let bytes = serialize(outcome, format, &CONTEXT);
        match parse_response(format, &bytes, &options) {
            Ok(again) => (bytes, again),
            Err(e) => panic!("canonical {format:?} answer refused: {e}"),
        }
    };
    let (bytes, second) = reread(&first);
    if exact {
        assert_eq!(
            first, second,
            "{format:?} reading changed through serialisation"
        );
    }
    let (bytes_again, third) = reread(&second);
    assert_eq!(second, third, "{format:?} serialisation is not stable");
    assert_eq!(bytes, bytes_again, "{format:?} canonical bytes differ");
}

/// Target `cas_xml`: CAS 2/3 XML answers.
pub fn cas_xml(data: &[u8]) {
    stable(ResponseFormat::Xml, data, true);
}

/// Target `cas_json`: JSON answers (values regroup by name, so not `exact`).
pub fn cas_json(data: &[u8]) {
    stable(ResponseFormat::Json, data, false);
}

/// Target `saml11`: SAML 1.1 answers (a missing instant or method is filled in).
pub fn saml11(data: &[u8]) {
    stable(ResponseFormat::Saml11, data, false);
}

/// Target `validation_request`: the first byte picks the endpoint, the bytes up to a
/// NUL are the query, the rest the body. An accepted request holds a gated ticket.
pub fn validation_request(data: &[u8]) {
    const ENDPOINTS: [Endpoint; 6] = [
        Endpoint::Validate,
        Endpoint::ServiceValidate,
        Endpoint::ProxyValidate,
        Endpoint::P3ServiceValidate,
        Endpoint::P3ProxyValidate,
        Endpoint::SamlValidate,
    ];
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(&endpoint) = ENDPOINTS.get(usize::from(selector) % ENDPOINTS.len()) else {
        return;
    };
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (query, body) = rest.split_at(split);
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    if let Ok(request) =
        ValidationRequest::parse(endpoint, Some(query), body.get(1..).unwrap_or(&[]))
    {
        assert!(ServiceTicket::parse(request.ticket.expose()).is_ok());
        assert!(!(request.ticket.is_proxy_ticket() && endpoint.refuses_proxy_tickets()));
    }
}

/// Target `login_redirect`: an accepted redirect's service carries no ticket left.
pub fn login_redirect(data: &[u8]) {
    let Ok(location) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(Ok(redirect)) = read_login_redirect(location) {
        assert!(ServiceTicket::parse(redirect.ticket.expose()).is_ok());
        assert!(
            read_login_redirect(&redirect.service).is_none(),
            "a ticket survived in the service URL"
        );
    }
}
