//! Every answer format and attribute shape, read from our own fixtures
//! (`tests/fixtures/cas/`), into the one model.

use bonenfant::cas::{parse_response, Assertion, Failure, Outcome, ParseOptions, ResponseFormat};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/cas/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn success(format: ResponseFormat, path: &str) -> Assertion {
    match parse_response(format, &fixture(path), &ParseOptions::default()) {
        Ok(Outcome::Success(a)) => a,
        other => panic!("{path}: {other:?}"),
    }
}

fn failure(format: ResponseFormat, path: &str) -> Failure {
    match parse_response(format, &fixture(path), &ParseOptions::default()) {
        Ok(Outcome::Failure(f)) => f,
        other => panic!("{path}: {other:?}"),
    }
}

fn pairs(a: &Assertion) -> Vec<(&str, &str)> {
    a.attributes.iter().collect()
}

#[test]
fn reads_shape_a_with_metadata_proxies_and_pgt_iou() {
    let a = success(ResponseFormat::Xml, "xml/shape-a-p3.xml");
    assert_eq!(a.principal, "camille.durand");
    assert_eq!(a.pgt_iou.as_deref(), Some("PGTIOU-7-Qx8rTz0VbN2mKcLp4sWd"));
    assert_eq!(
        a.proxies,
        [
            "https://portail.example.invalid/pgtCallback",
            "https://relais.example.invalid/pgtCallback"
        ]
    );
    assert_eq!(
        a.auth.authentication_date.as_deref(),
        Some("2026-11-29T18:02:11.412Z")
    );
    assert_eq!(a.auth.long_term, Some(false));
    assert_eq!(a.auth.from_new_login, Some(true));
    assert_eq!(
        pairs(&a),
        [
            ("nom", "DURAND"),
            ("prenom", "Camille"),
            ("memberOf", "parents"),
            ("memberOf", "Conseil d'administration & CVC <2026>"),
            ("ville", "Bègles"),
        ]
    );
}

#[test]
fn reads_shape_b_rubycas_children_of_success() {
    let a = success(ResponseFormat::Xml, "xml/shape-b-rubycas.xml");
    assert_eq!(a.principal, "lmoreau");
    assert_eq!(a.pgt_iou.as_deref(), Some("PGTIOU-19-aa3b2c"));
    assert_eq!(
        a.attributes.values("memberOf").collect::<Vec<_>>(),
        ["enseignants", "professeurs-principaux"]
    );
    assert_eq!(a.attributes.first("givenName"), Some("Léo"));
    assert_eq!(a.attributes.len(), 5);
}

#[test]
fn reads_shape_c_name_value_under_success() {
    let a = success(ResponseFormat::Xml, "xml/shape-c-name-value.xml");
    assert_eq!(a.attributes.first("givenName"), Some("Léo"));
    assert_eq!(a.attributes.values("memberOf").count(), 2);
    assert_eq!(a.attributes.len(), 5);
}

#[test]
fn reads_shape_d_name_value_inside_attributes_keeping_line_feeds() {
    let a = success(ResponseFormat::Xml, "xml/shape-d-inline.xml");
    assert_eq!(
        a.attributes.first("adresse"),
        Some("12 rue des Lilas\n33130 Bègles")
    );
    assert_eq!(a.attributes.values("memberOf").count(), 2);
    assert_eq!(a.pgt_iou.as_deref(), Some("PGTIOU-2-zz"));
}

#[test]
fn reads_shape_e_open_ent_ng_unqualified_user_attributes() {
    let a = success(ResponseFormat::Xml, "xml/shape-e-open-ent-ng.xml");
    assert_eq!(a.principal, "sophie.bernard");
    assert_eq!(a.auth.long_term, Some(false));
    assert_eq!(a.auth.from_new_login, Some(false));
    assert_eq!(a.auth.authentication_date, None);
    assert_eq!(
        pairs(&a),
        [
            ("nom", "BERNARD"),
            ("prenom", "Sophie"),
            ("dateNaissance", "14/05/1981"),
            ("codePostal", "33000"),
            ("categories", "National_2"),
        ]
    );
}

#[test]
fn reads_laclasse_attributes_inside_and_outside_attributes() {
    let a = success(ResponseFormat::Xml, "xml/laclasse.xml");
    assert_eq!(a.principal, "VAA60123");
    // The `user` attribute repeats the principal: not a second identity.
    assert_eq!(a.attributes.first("user"), Some("VAA60123"));
    // Stated inside and outside `cas:attributes`: one value said twice (interop found
    // `--answer canonical` handing python-cas `['ROUX', 'ROUX']` when it counted two).
    assert_eq!(a.attributes.values("nom").count(), 1);
    assert_eq!(
        a.attributes.first("ENTPersonStructRattachRNE"),
        Some("0691234K")
    );
}

#[test]
fn reads_the_ose_like_answer_with_one_freduvecteur() {
    let a = success(ResponseFormat::Xml, "xml/ose-parent.xml");
    assert_eq!(a.principal, "AC-BORDEAUX$1986923");
    assert_eq!(
        a.attributes.values("FrEduVecteur").collect::<Vec<_>>(),
        ["2|LEFEBVRE|Lucas|701294|0330012A"]
    );
    assert_eq!(
        a.attributes.first("ENTPersonAdresse"),
        Some("4 allée des Pins & résidence Les Chênes")
    );
}

#[test]
fn prefix_does_not_matter_only_the_namespace() {
    let expected = success(ResponseFormat::Xml, "xml/default-namespace.xml");
    assert_eq!(expected.principal, "camille.durand");
    assert_eq!(
        success(ResponseFormat::Xml, "xml/other-prefix.xml"),
        expected
    );
}

#[test]
fn reads_failures_and_trims_their_message() {
    let f = failure(ResponseFormat::Xml, "xml/failure-invalid-ticket.xml");
    assert_eq!(f.code, "INVALID_TICKET");
    assert_eq!(
        f.message,
        "Ticket ST-1856339-aA5Yuvrxzpv8Tau1cYQ7 not recognized"
    );
    let f = failure(ResponseFormat::Xml, "xml/proxy-failure.xml");
    assert_eq!(f.code, "INVALID_REQUEST");
}

#[test]
fn reads_json_success_in_document_order() {
    let a = success(ResponseFormat::Json, "json/success.json");
    assert_eq!(a.principal, "camille.durand");
    assert_eq!(a.pgt_iou.as_deref(), Some("PGTIOU-7-Qx8rTz0VbN2mKcLp4sWd"));
    assert_eq!(a.proxies.len(), 1);
    assert_eq!(a.auth.from_new_login, Some(true));
    assert_eq!(a.auth.long_term, Some(false));
    assert_eq!(
        a.auth.authentication_date.as_deref(),
        Some("2026-11-29T18:02:11.412Z")
    );
    assert_eq!(
        pairs(&a),
        [
            ("nom", "DURAND"),
            ("memberOf", "parents"),
            ("memberOf", "CVC"),
            ("ville", "Bègles")
        ]
    );
}

#[test]
fn json_answer_is_recognised_whatever_format_was_asked() {
    // Servers ignore `format=JSON` and vice versa: the body decides.
    let a = success(ResponseFormat::Xml, "json/success.json");
    assert_eq!(a.principal, "camille.durand");
    let f = failure(ResponseFormat::Json, "xml/failure-invalid-ticket.xml");
    assert_eq!(f.code, "INVALID_TICKET");
}

#[test]
fn reads_json_failure() {
    let f = failure(ResponseFormat::Json, "json/failure.json");
    assert_eq!(f, Failure::new("INVALID_TICKET", "Ticket not recognized"));
}

#[test]
fn reads_cas1_text() {
    let a = success(ResponseFormat::Cas1Text, "cas1/success.txt");
    assert_eq!(a.principal, "camille.durand");
    assert!(a.attributes.is_empty());
    let f = failure(ResponseFormat::Cas1Text, "cas1/failure.txt");
    assert_eq!(f.code, "INVALID_TICKET");
}

#[test]
fn reads_saml_with_repeated_attribute_values() {
    let a = success(ResponseFormat::Saml11, "saml/success-repeated-values.xml");
    assert_eq!(a.principal, "camille.durand");
    assert_eq!(
        pairs(&a),
        [
            ("nom", "DURAND"),
            ("memberOf", "parents"),
            ("memberOf", "CVC")
        ]
    );
    assert_eq!(
        a.auth.authentication_date.as_deref(),
        Some("2026-11-29T18:02:11Z")
    );
    assert_eq!(
        a.auth.method.as_deref(),
        Some("urn:oasis:names:tc:SAML:1.0:am:password")
    );
}

#[test]
fn reads_saml_with_repeated_attributes_and_default_namespaces() {
    let a = success(
        ResponseFormat::Saml11,
        "saml/success-repeated-attributes.xml",
    );
    assert_eq!(pairs(&a), [("enfants", "E1001"), ("enfants", "E1002")]);
    assert_eq!(a.auth.from_new_login, Some(false));
    // The instant comes from the AuthenticationStatement, not the coarser attribute.
    assert_eq!(
        a.auth.authentication_date.as_deref(),
        Some("2026-11-29T18:02:11.5+00:00")
    );
}

#[test]
fn checks_saml_conditions_and_audience_when_asked() {
    let body = fixture("saml/success-repeated-attributes.xml");
    let service = "https://0330012a.index-education.net/pronote/parent.html";
    // 2026-11-29T18:02:20Z, inside the window.
    let inside = ParseOptions {
        now_unix: Some(1_795_975_340),
        service: Some(service),
        ..ParseOptions::default()
    };
    assert!(matches!(
        parse_response(ResponseFormat::Saml11, &body, &inside),
        Ok(Outcome::Success(_))
    ));
    let late = ParseOptions {
        now_unix: Some(1_795_975_340 + 3600),
        ..ParseOptions::default()
    };
    let err = parse_response(ResponseFormat::Saml11, &body, &late).unwrap_err();
    assert_eq!(err.code().as_str(), "cas.parse.saml_expired");
    let other = ParseOptions {
        service: Some("https://0330099z.index-education.net/pronote/parent.html"),
        ..ParseOptions::default()
    };
    let err = parse_response(ResponseFormat::Saml11, &body, &other).unwrap_err();
    assert_eq!(err.code().as_str(), "cas.parse.saml_audience");
}

#[test]
fn reads_saml_failures() {
    let f = failure(ResponseFormat::Saml11, "saml/failure-responder.xml");
    assert_eq!(f, Failure::new("Responder", "Ticket not recognized"));
    let f = failure(ResponseFormat::Saml11, "saml/failure-message-in-code.xml");
    assert_eq!(f, Failure::new("AuthnFailed", "ticket not found"));
}
