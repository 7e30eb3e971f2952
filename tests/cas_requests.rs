//! Request side: validation parameters, login redirects, single-logout bodies.

use bonenfant::cas::{
    login_redirect, logout_session_index, Endpoint, ResponseFormat, ValidationRequest,
};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/cas/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const SERVICE_Q: &str =
    "service=https%3A%2F%2F0330012a.index-education.net%2Fpronote%2Fparent.html";
const SERVICE: &str = "https://0330012a.index-education.net/pronote/parent.html";

fn code(endpoint: Endpoint, query: &str) -> &'static str {
    ValidationRequest::parse(endpoint, Some(query), b"")
        .unwrap_err()
        .code()
        .as_str()
}

#[test]
fn reads_validation_parameters() {
    let q =
        format!("{SERVICE_Q}&ticket=ST-1-abc&pgtUrl=https%3A%2F%2Fp%2Fcb&renew=true&format=JSON");
    let r = ValidationRequest::parse(Endpoint::P3ServiceValidate, Some(&q), b"").unwrap();
    assert_eq!(r.service, SERVICE);
    assert_eq!(r.ticket.expose(), "ST-1-abc");
    assert_eq!(r.pgt_url.as_deref(), Some("https://p/cb"));
    assert!(r.renew);
    assert_eq!(r.format, ResponseFormat::Json);
    let r = ValidationRequest::parse(
        Endpoint::ServiceValidate,
        Some(&format!("ticket=ST-1&{SERVICE_Q}")),
        b"",
    )
    .unwrap();
    assert_eq!(r.format, ResponseFormat::Xml);
    assert!(!r.renew);
    let r = ValidationRequest::parse(
        Endpoint::Validate,
        Some(&format!("ticket=ST-1&{SERVICE_Q}&format=JSON")),
        b"",
    )
    .unwrap();
    assert_eq!(r.format, ResponseFormat::Cas1Text);
    let r = ValidationRequest::parse(
        Endpoint::ProxyValidate,
        Some(&format!("ticket=PT-1&{SERVICE_Q}&format=xml")),
        b"",
    )
    .unwrap();
    assert!(r.ticket.is_proxy_ticket());
}

#[test]
fn rejects_each_bad_validation_request_with_its_code() {
    let s = SERVICE_Q;
    assert_eq!(
        code(
            Endpoint::ServiceValidate,
            &format!("{s}&ticket=ST-1&ticket=ST-2")
        ),
        "cas.request.duplicate_param"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, &format!("{s}&{s}&ticket=ST-1")),
        "cas.request.duplicate_param"
    );
    assert_eq!(
        code(
            Endpoint::ServiceValidate,
            &format!("{s}&ticket=ST-1&ti%63ket=ST-2")
        ),
        "cas.request.duplicate_param"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, s),
        "cas.request.missing_param"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, "ticket=ST-1"),
        "cas.request.missing_param"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, &format!("{s}&ticket=PT-1")),
        "cas.request.proxy_ticket_refused"
    );
    assert_eq!(
        code(Endpoint::P3ServiceValidate, &format!("{s}&ticket=PT-1")),
        "cas.request.proxy_ticket_refused"
    );
    assert_eq!(
        code(
            Endpoint::ServiceValidate,
            &format!("{s}&ticket=ST-1&format=HTML")
        ),
        "cas.request.bad_format"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, &format!("{s}&ticket=PGT-1")),
        "cas.ticket.prefix"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, &format!("{s}&ticket=ST-a%20b")),
        "cas.ticket.charset"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, &format!("{s}&ticket=")),
        "cas.ticket.empty"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, "service=%FF&ticket=ST-1"),
        "cas.request.bad_encoding"
    );
    assert_eq!(
        code(Endpoint::Login, "service=x"),
        "cas.request.not_validation"
    );
}

#[test]
fn reads_saml_artifact_in_any_prefix_or_default_namespace() {
    let q = "TARGET=https%3A%2F%2F0330012a.index-education.net%2Fpronote%2Fparent.html";
    for body in [
        "requests/saml-prefixed.xml",
        "requests/saml-default-namespace.xml",
    ] {
        let r = ValidationRequest::parse(Endpoint::SamlValidate, Some(q), &fixture(body)).unwrap();
        assert_eq!(r.ticket.expose(), "ST-42-k3J9dLq0Zx", "{body}");
        assert_eq!(r.service, SERVICE);
        assert_eq!(r.format, ResponseFormat::Saml11);
    }
    let missing = ValidationRequest::parse(
        Endpoint::SamlValidate,
        None,
        &fixture("requests/saml-prefixed.xml"),
    );
    assert_eq!(
        missing.unwrap_err().code().as_str(),
        "cas.request.missing_param"
    );
    let two = String::from_utf8(fixture("requests/saml-prefixed.xml"))
        .unwrap()
        .replace(
            "</samlp:Request>",
            "<samlp:AssertionArtifact>ST-9</samlp:AssertionArtifact></samlp:Request>",
        );
    let err =
        ValidationRequest::parse(Endpoint::SamlValidate, Some(q), two.as_bytes()).unwrap_err();
    assert_eq!(err.code().as_str(), "cas.request.saml_body");
    let doctype = format!(
        "<!DOCTYPE x>{}",
        String::from_utf8(fixture("requests/saml-prefixed.xml"))
            .unwrap()
            .replace("<?xml version=\"1.0\" encoding=\"utf-8\"?>", "")
    );
    let err =
        ValidationRequest::parse(Endpoint::SamlValidate, Some(q), doctype.as_bytes()).unwrap_err();
    assert_eq!(err.code().as_str(), "cas.request.saml_body");
}

#[test]
fn login_redirect_takes_the_ticket_and_keeps_the_rest_byte_exact() {
    let r =
        login_redirect("https://0330012a.index-education.net/pronote/parent.html?ticket=ST-1-abc")
            .unwrap()
            .unwrap();
    assert_eq!(r.ticket.expose(), "ST-1-abc");
    assert_eq!(r.service, SERVICE);
    let r = login_redirect("https://h/p?a=%2F&ticket=ST-2&b=c+d#frag")
        .unwrap()
        .unwrap();
    assert_eq!(r.ticket.expose(), "ST-2");
    assert_eq!(r.service, "https://h/p?a=%2F&b=c+d#frag");
    let r = login_redirect("https://h/p?TARGET=x&SAMLart=ST-3")
        .unwrap()
        .unwrap();
    assert_eq!(r.ticket.expose(), "ST-3");
    assert_eq!(r.service, "https://h/p?TARGET=x");
    assert!(login_redirect("https://h/p?a=1").is_none());
    assert!(login_redirect("https://h/p").is_none());
    assert!(login_redirect("https://h/p#ticket=ST-1").is_none());
    let dup = login_redirect("https://h/p?ticket=ST-1&ticket=ST-2")
        .unwrap()
        .unwrap_err();
    assert_eq!(dup.code().as_str(), "cas.request.duplicate_param");
    let bad = login_redirect("https://h/p?ticket=PGT-1")
        .unwrap()
        .unwrap_err();
    assert_eq!(bad.code().as_str(), "cas.ticket.prefix");
}

#[test]
fn logout_session_index_from_form_or_raw_xml() {
    let want = "ST-0d6a7c1e-1f2b-4c3d-9e8f-7a6b5c4d3e2f";
    let form = fixture("requests/slo-form.txt");
    let t = logout_session_index(
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        &form,
    )
    .unwrap();
    assert_eq!(t.expose(), want);
    assert_eq!(logout_session_index(None, &form).unwrap().expose(), want);
    let raw = fixture("requests/slo-raw.xml");
    assert_eq!(logout_session_index(None, &raw).unwrap().expose(), want);
    assert_eq!(
        logout_session_index(Some("text/xml"), &raw)
            .unwrap()
            .expose(),
        want
    );
    // A PGT as SessionIndex, garbage, and two indexes give nothing.
    let pgt = String::from_utf8(raw.clone())
        .unwrap()
        .replace("ST-0d6a", "PGT-0d6a");
    assert!(logout_session_index(None, pgt.as_bytes()).is_none());
    assert!(logout_session_index(None, b"hello").is_none());
    let two = String::from_utf8(raw).unwrap().replace(
        "</samlp:LogoutRequest>",
        "<samlp:SessionIndex>ST-2</samlp:SessionIndex></samlp:LogoutRequest>",
    );
    assert!(logout_session_index(None, two.as_bytes()).is_none());
}
