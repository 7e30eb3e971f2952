//! Threat cases T19–T30 of `docs/security.md` (the ENT's answer), one test per case
//! named after its id, plus one input per rejection code.

use bonenfant::cas::{
    parse_response, Outcome, ParseError, ParseLimits, ParseOptions, ResponseFormat,
};

const OPEN: &str =
    r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>"#;
const CLOSE: &str = "</cas:authenticationSuccess></cas:serviceResponse>";

fn success_with(inner: &str) -> String {
    format!("{OPEN}{inner}{CLOSE}")
}

fn parse(format: ResponseFormat, body: &[u8]) -> Result<Outcome, ParseError> {
    parse_response(format, body, &ParseOptions::default())
}

fn xml(body: &str) -> Result<Outcome, ParseError> {
    parse(ResponseFormat::Xml, body.as_bytes())
}

fn principal(body: &str) -> String {
    match xml(body) {
        Ok(Outcome::Success(a)) => a.principal,
        other => panic!("expected success for {body}: {other:?}"),
    }
}

#[track_caller]
fn rejects(result: Result<Outcome, ParseError>, code: &str) {
    match result {
        Err(e) => assert_eq!(e.code().as_str(), code, "{e}"),
        Ok(o) => panic!("accepted, wanted {code}: {o:?}"),
    }
}

#[test]
fn t19_two_principals_rejected() {
    let cases = [
        success_with("<cas:user>alice</cas:user><cas:user>alice</cas:user>"),
        success_with("<cas:user>alice</cas:user><cas:user>admin</cas:user>"),
        success_with(
            r#"<cas:user>alice</cas:user><cas:attributes><cas:user>admin</cas:user></cas:attributes>"#,
        ),
        success_with(r#"<cas:user>alice</cas:user><cas:attribute name="user" value="admin"/>"#),
    ];
    for body in &cases {
        rejects(xml(body), "cas.parse.ambiguous_principal");
    }
    // A second `user` in another namespace is not a CAS element at all.
    let other_ns =
        success_with(r#"<cas:user>alice</cas:user><x:user xmlns:x="urn:evil">admin</x:user>"#);
    rejects(xml(&other_ns), "cas.parse.wrong_namespace");
}

#[test]
fn t20_structural_choice_rejected() {
    let ns = r#"xmlns:cas="http://www.yale.edu/tp/cas""#;
    let both = format!(
        r#"<cas:serviceResponse {ns}><cas:authenticationFailure code="X">no</cas:authenticationFailure><cas:authenticationSuccess><cas:user>alice</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#
    );
    rejects(xml(&both), "cas.parse.not_one_outcome");
    let nested = format!(
        r#"<cas:serviceResponse {ns}><cas:authenticationFailure code="X"><cas:authenticationSuccess><cas:user>alice</cas:user></cas:authenticationSuccess></cas:authenticationFailure></cas:serviceResponse>"#
    );
    rejects(xml(&nested), "cas.parse.unexpected_element");
    let two_roots = format!(
        r#"<cas:serviceResponse {ns}><cas:authenticationFailure code="X"/></cas:serviceResponse><cas:serviceResponse {ns}><cas:authenticationSuccess><cas:user>alice</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#
    );
    rejects(xml(&two_roots), "cas.parse.two_roots");
    let proxy_success = format!(
        r#"<cas:serviceResponse {ns}><cas:proxySuccess><cas:proxyTicket>PT-1</cas:proxyTicket></cas:proxySuccess></cas:serviceResponse>"#
    );
    rejects(xml(&proxy_success), "cas.parse.unexpected_element");
    rejects(
        xml(&format!("<cas:serviceResponse {ns}/>")),
        "cas.parse.not_one_outcome",
    );
    rejects(
        xml(&format!(
            "<cas:serviceResponse {ns}>\n</cas:serviceResponse>"
        )),
        "cas.parse.not_one_outcome",
    );
}

#[test]
fn t21_dtd_and_entities_rejected() {
    let internal = r#"<!DOCTYPE r [<!ENTITY x "admin">]><cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>&x;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#;
    rejects(xml(internal), "cas.parse.doctype");
    let external = r#"<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>"#;
    rejects(xml(external), "cas.parse.doctype");
    let parameter = r#"<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x"> %p;]><r/>"#;
    rejects(xml(parameter), "cas.parse.doctype");
    let laughs = format!(
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]><lolz>&lol9;</lolz>",
        (1..10)
            .map(|i| format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&lol{};", i - 1).repeat(10)
            ))
            .collect::<String>()
    );
    rejects(xml(&laughs), "cas.parse.doctype");
    // Without a DOCTYPE an undeclared entity is still refused, never left as text.
    rejects(
        xml(&success_with("<cas:user>&x;</cas:user>")),
        "cas.parse.entity",
    );
}

#[test]
fn t22_comment_pi_cdata_split_in_identity_rejected() {
    for inner in [
        "alice<!---->.evil",
        "ali<?pi?>ce",
        "<![CDATA[ali]]>ce",
        "<!-- x -->alice",
    ] {
        let body = success_with(&format!("<cas:user>{inner}</cas:user>"));
        rejects(xml(&body), "cas.parse.split_text");
    }
    // Attribute values follow the same rule: no value is ever read as part of its text.
    let attr = success_with("<cas:user>alice</cas:user><cas:attributes><cas:uai>0330012A<!---->0330099Z</cas:uai></cas:attributes>");
    rejects(xml(&attr), "cas.parse.split_text");
    // Comments between elements are harmless.
    assert_eq!(
        principal(&success_with(
            "<!-- c --><cas:user>alice</cas:user><!-- c -->"
        )),
        "alice"
    );
}

#[test]
fn t23_entity_and_char_refs_decoded_once_or_rejected() {
    let p = |v: &str| principal(&success_with(&format!("<cas:user>{v}</cas:user>")));
    assert_eq!(p("al&#105;ce"), "alice");
    assert_eq!(p("&#x61;lice"), "alice");
    assert_eq!(p("a&amp;b"), "a&b");
    assert_eq!(p("a&amp;lt;b"), "a&lt;b");
    rejects(
        xml(&success_with("<cas:user>&unknown;</cas:user>")),
        "cas.parse.entity",
    );
    for bad in ["&#0;", "&#xD800;", "&#x110000;", "&#1;", "&#xZZ;"] {
        rejects(
            xml(&success_with(&format!("<cas:user>a{bad}</cas:user>"))),
            "cas.parse.char_ref",
        );
    }
}

#[test]
fn t24_namespace_tricks() {
    let body = |decl: &str, prefix: &str| {
        format!(
            "<{prefix}serviceResponse {decl}><{prefix}authenticationSuccess><{prefix}user>alice</{prefix}user></{prefix}authenticationSuccess></{prefix}serviceResponse>"
        )
    };
    rejects(xml(&body("", "cas:")), "cas.parse.unbound_prefix");
    rejects(
        xml(&body(r#"xmlns:cas="urn:evil""#, "cas:")),
        "cas.parse.wrong_namespace",
    );
    rejects(
        xml(&body(r#"xmlns:cas="""#, "cas:")),
        "cas.parse.unbound_prefix",
    );
    assert_eq!(
        principal(&body(r#"xmlns:x="http://www.yale.edu/tp/cas""#, "x:")),
        "alice"
    );
    assert_eq!(
        principal(&body(r#"xmlns="http://www.yale.edu/tp/cas""#, "")),
        "alice"
    );
    // An inner re-binding of `cas:` to another namespace is a foreign element.
    let rebound = success_with(r#"<cas:user xmlns:cas="urn:evil">admin</cas:user>"#);
    rejects(xml(&rebound), "cas.parse.wrong_namespace");
    // No namespace at all.
    rejects(xml(&body("", "")), "cas.parse.wrong_namespace");
}

#[test]
fn t25_depth_size_and_count_limits() {
    let limits = ParseLimits::default();
    let options = ParseOptions {
        limits: ParseLimits {
            max_bytes: usize::MAX,
            ..limits.clone()
        },
        ..ParseOptions::default()
    };
    // 100 000 nested elements where the walk skips a subtree: the depth bound stops it.
    let deep = format!(
        r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header>{}{}</S:Header></S:Envelope>"#,
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    let e = parse_response(ResponseFormat::Saml11, deep.as_bytes(), &options).unwrap_err();
    assert_eq!(e.code().as_str(), "cas.parse.too_deep");
    // Where the schema wants a leaf, nesting is refused at the first child.
    let nested = success_with(&format!(
        "<cas:user>a</cas:user><cas:attributes>{}</cas:attributes>",
        "<cas:a>".repeat(100_000)
    ));
    let e = parse_response(ResponseFormat::Xml, nested.as_bytes(), &options).unwrap_err();
    assert_eq!(e.code().as_str(), "cas.parse.unexpected_element");
    let huge_user = success_with(&format!("<cas:user>{}</cas:user>", "a".repeat(10 << 20)));
    rejects(xml(&huge_user), "cas.parse.too_large");
    let e = parse_response(ResponseFormat::Xml, huge_user.as_bytes(), &options).unwrap_err();
    assert_eq!(e.code().as_str(), "cas.parse.value_too_long");
    let many_xml_attributes = success_with(&format!(
        "<cas:user {}>alice</cas:user>",
        (0..100_000)
            .map(|i| format!("a{i}=\"\" "))
            .collect::<String>()
    ));
    let e = parse_response(
        ResponseFormat::Xml,
        many_xml_attributes.as_bytes(),
        &options,
    )
    .unwrap_err();
    assert_eq!(e.code().as_str(), "cas.parse.too_many_attributes");
    let many_children = success_with(&format!(
        "<cas:user>alice</cas:user><cas:attributes>{}</cas:attributes>",
        "<cas:a>1</cas:a>".repeat(1_000_000 / 16)
    ));
    let e = parse_response(ResponseFormat::Xml, many_children.as_bytes(), &options).unwrap_err();
    assert_eq!(e.code().as_str(), "cas.parse.too_many_attributes");
    rejects(xml(&many_children), "cas.parse.too_large");
}

#[test]
fn t26_unclosed_truncated_trailing_rejected() {
    let full = success_with("<cas:user>alice</cas:user>");
    rejects(
        xml(&format!("{OPEN}<cas:user>alice</cas:user>")),
        "cas.parse.unclosed",
    );
    // Every truncation of a valid answer is refused, never read as a success.
    for cut in 1..full.len() {
        assert!(xml(&full[..cut]).is_err(), "accepted a truncation at {cut}");
    }
    rejects(xml(&format!("{full}garbage")), "cas.parse.trailing_content");
    rejects(xml(&format!("{full}<x/>")), "cas.parse.two_roots");
    assert_eq!(principal(&format!("{full}\n  <!-- end -->\n")), "alice");
}

#[test]
fn t27_whitespace_and_unicode_in_principal() {
    let p = |v: &str| principal(&success_with(&format!("<cas:user>{v}</cas:user>")));
    assert_eq!(p(" alice\n"), "alice");
    assert_eq!(p("\t\r\nalice \n"), "alice");
    // Only XML whitespace is trimmed; no case folding, no normalisation.
    assert_eq!(p("alice\u{200B}"), "alice\u{200B}");
    assert_eq!(p("\u{A0}alice"), "\u{A0}alice");
    assert_eq!(p("Alice"), "Alice");
    assert_eq!(p("e\u{301}"), "e\u{301}");
    assert_ne!(p("\u{E9}"), p("e\u{301}"));
    for inner in ["ali\tce", "ali\nce", "ali&#10;ce", "ali\u{85}ce"] {
        rejects(
            xml(&success_with(&format!("<cas:user>{inner}</cas:user>"))),
            "cas.parse.control_char",
        );
    }
    rejects(
        xml(&success_with("<cas:user> </cas:user>")),
        "cas.parse.missing_principal",
    );
}

#[test]
fn t28_encoding_other_than_utf8_rejected() {
    let latin1 = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}",
        success_with("<cas:user>alice</cas:user>")
    );
    rejects(xml(&latin1), "cas.parse.encoding");
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in success_with("<cas:user>alice</cas:user>").encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    rejects(parse(ResponseFormat::Xml, &utf16), "cas.parse.not_utf8");
    let mut invalid = success_with("<cas:user>alice</cas:user>").into_bytes();
    invalid.insert(OPEN.len() + 12, 0xE9);
    rejects(parse(ResponseFormat::Xml, &invalid), "cas.parse.not_utf8");
    let declared = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>{}",
        success_with("<cas:user>alice</cas:user>")
    );
    assert_eq!(principal(&declared), "alice");
}

#[test]
fn t29_json_format_rejections() {
    let json = |s: &str| parse(ResponseFormat::Json, s.as_bytes());
    rejects(
        json(r#"{"serviceResponse":{"authenticationSuccess":{"user":"alice","user":"admin"}}}"#),
        "cas.parse.json_duplicate_key",
    );
    rejects(
        json(
            r#"{"serviceResponse":{"authenticationSuccess":{"user":"alice","attributes":{"a":"1","a":"2"}}}}"#,
        ),
        "cas.parse.json_duplicate_key",
    );
    for user in ["5", "[\"alice\"]", "{\"name\":\"alice\"}", "null", "true"] {
        let body =
            format!(r#"{{"serviceResponse":{{"authenticationSuccess":{{"user":{user}}}}}}}"#);
        rejects(json(&body), "cas.parse.json");
    }
    rejects(
        json(
            r#"{"serviceResponse":{"authenticationSuccess":{"user":"alice"},"authenticationFailure":{"code":"X"}}}"#,
        ),
        "cas.parse.not_one_outcome",
    );
    rejects(
        json(r#"{"serviceResponse":{}}"#),
        "cas.parse.not_one_outcome",
    );
    let nested = format!(
        r#"{{"serviceResponse":{{"authenticationSuccess":{{"user":"alice","attributes":{{"a":{}1{}}}}}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    rejects(json(&nested), "cas.parse.json");
    let big = format!(
        r#"{{"serviceResponse":{{"authenticationSuccess":{{"user":"{}"}}}}}}"#,
        "a".repeat(5 << 20)
    );
    rejects(json(&big), "cas.parse.too_large");
    rejects(
        json(
            r#"{"serviceResponse":{"authenticationSuccess":{"user":"alice","attributes":{"a":5}}}}"#,
        ),
        "cas.parse.json",
    );
    rejects(
        json(r#"{"serviceResponse":{"authenticationSuccess":{"user":"alice","extra":1}}}"#),
        "cas.parse.json",
    );
}

/// A SAML 1.1 answer with the pieces T30 varies.
fn saml(
    status: &str,
    conditions: &str,
    subject_a: &str,
    subject_b: &str,
    extra_assertion: bool,
) -> String {
    let assertion = saml_assertion(conditions, subject_a, subject_b);
    let second = if extra_assertion {
        saml_assertion(conditions, "admin", "admin")
    } else {
        String::new()
    };
    format!(
        r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" IssueInstant="2026-11-29T18:02:12Z" MajorVersion="1" MinorVersion="1" Recipient="https://s/" ResponseID="_r"><samlp:Status>{status}</samlp:Status>{assertion}{second}</samlp:Response></S:Body></S:Envelope>"#
    )
}

fn saml_assertion(conditions: &str, subject_a: &str, subject_b: &str) -> String {
    format!(
        r#"<saml:Assertion AssertionID="_a" IssueInstant="2026-11-29T18:02:12Z" Issuer="x" MajorVersion="1" MinorVersion="1">{conditions}<saml:AttributeStatement><saml:Subject><saml:NameIdentifier>{subject_a}</saml:NameIdentifier></saml:Subject><saml:Attribute AttributeName="nom" AttributeNamespace="http://www.ja-sig.org/products/cas/"><saml:AttributeValue>DURAND</saml:AttributeValue></saml:Attribute></saml:AttributeStatement><saml:AuthenticationStatement AuthenticationInstant="2026-11-29T18:02:11Z" AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password"><saml:Subject><saml:NameIdentifier>{subject_b}</saml:NameIdentifier></saml:Subject></saml:AuthenticationStatement></saml:Assertion>"#
    )
}

const OK_STATUS: &str = r#"<samlp:StatusCode Value="samlp:Success"/>"#;
const CONDITIONS: &str = r#"<saml:Conditions NotBefore="2026-11-29T18:02:12Z" NotOnOrAfter="2026-11-29T18:02:42Z"><saml:AudienceRestrictionCondition><saml:Audience>https://s/</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions>"#;
/// 2026-11-29T18:02:20Z.
const NOW: u64 = 1_795_975_340;

#[test]
fn t30_saml_consistency() {
    let checked = ParseOptions {
        now_unix: Some(NOW),
        service: Some("https://s/"),
        ..ParseOptions::default()
    };
    let run = |body: &str| parse_response(ResponseFormat::Saml11, body.as_bytes(), &checked);
    // The baseline is accepted.
    match run(&saml(OK_STATUS, CONDITIONS, "alice", "alice", false)) {
        Ok(Outcome::Success(a)) => assert_eq!(a.principal, "alice"),
        other => panic!("{other:?}"),
    }
    rejects(
        run(&saml(OK_STATUS, CONDITIONS, "alice", "admin", false)),
        "cas.parse.saml_subject",
    );
    rejects(
        run(&saml(OK_STATUS, CONDITIONS, "alice", "alice", true)),
        "cas.parse.saml_assertion_count",
    );
    let rebound = r#"<StatusCode xmlns="urn:oasis:names:tc:SAML:1.0:protocol" xmlns:samlp="urn:evil" Value="samlp:Success"/>"#;
    rejects(
        run(&saml(rebound, CONDITIONS, "alice", "alice", false)),
        "cas.parse.saml_status",
    );
    let unbound = r#"<samlp:StatusCode Value="nope:Success"/>"#;
    rejects(
        run(&saml(unbound, CONDITIONS, "alice", "alice", false)),
        "cas.parse.saml_status",
    );
    let expired = CONDITIONS
        .replace("18:02:42Z", "18:00:00Z")
        .replace("18:02:12Z", "17:59:00Z");
    rejects(
        run(&saml(OK_STATUS, &expired, "alice", "alice", false)),
        "cas.parse.saml_expired",
    );
    let wrong_audience = CONDITIONS.replace("https://s/", "https://other/");
    rejects(
        run(&saml(OK_STATUS, &wrong_audience, "alice", "alice", false)),
        "cas.parse.saml_audience",
    );
    rejects(
        run(&saml(OK_STATUS, "", "alice", "alice", false)),
        "cas.parse.saml_expired",
    );
    let bad_time = CONDITIONS.replace("2026-11-29T18:02:12Z", "yesterday");
    rejects(
        run(&saml(OK_STATUS, &bad_time, "alice", "alice", false)),
        "cas.parse.saml_time",
    );
    // Split subject text is refused like the CAS principal.
    rejects(
        run(&saml(OK_STATUS, CONDITIONS, "ali<!---->ce", "alice", false)),
        "cas.parse.split_text",
    );
}

/// One input per rejection code: every code in `ParseError::CODES` is reachable.
#[test]
fn every_rejection_code_is_exercised() {
    let ns = r#"xmlns:cas="http://www.yale.edu/tp/cas""#;
    let tiny = ParseOptions {
        limits: ParseLimits {
            max_bytes: 64,
            ..ParseLimits::default()
        },
        ..ParseOptions::default()
    };
    let few = ParseOptions {
        limits: ParseLimits {
            max_attributes: 1,
            ..ParseLimits::default()
        },
        ..ParseOptions::default()
    };
    let shallow = ParseOptions {
        limits: ParseLimits {
            max_depth: 3,
            ..ParseLimits::default()
        },
        ..ParseOptions::default()
    };
    let now = ParseOptions {
        now_unix: Some(NOW),
        ..ParseOptions::default()
    };
    let audience = ParseOptions {
        service: Some("https://other/"),
        ..ParseOptions::default()
    };
    let default = ParseOptions::default();
    let x = ResponseFormat::Xml;
    let cases: Vec<(ResponseFormat, Vec<u8>, &ParseOptions<'_>, &str)> = vec![
        (x, success_with(&"a".repeat(100)).into_bytes(), &tiny, "cas.parse.too_large"),
        (x, b"<a>\xff</a>".to_vec(), &default, "cas.parse.not_utf8"),
        (x, b"<?xml version='1.0' encoding='latin1'?><a/>".to_vec(), &default, "cas.parse.encoding"),
        (x, b"<!DOCTYPE a><a/>".to_vec(), &default, "cas.parse.doctype"),
        (x, success_with("<cas:user>&e;</cas:user>").into_bytes(), &default, "cas.parse.entity"),
        (x, success_with("<cas:user>&#0;</cas:user>").into_bytes(), &default, "cas.parse.char_ref"),
        (x, success_with("<cas:user>a\u{1}</cas:user>").into_bytes(), &default, "cas.parse.control_char"),
        (x, success_with("<cas:user>a</cas:usr>").into_bytes(), &default, "cas.parse.malformed"),
        (x, OPEN.as_bytes().to_vec(), &default, "cas.parse.unclosed"),
        (x, b"  ".to_vec(), &default, "cas.parse.empty"),
        (x, format!("{}<a/>", success_with("<cas:user>a</cas:user>")).into_bytes(), &default, "cas.parse.two_roots"),
        (x, format!("{}x", success_with("<cas:user>a</cas:user>")).into_bytes(), &default, "cas.parse.trailing_content"),
        (x, b"<cas:serviceResponse/>".to_vec(), &default, "cas.parse.unbound_prefix"),
        (x, b"<serviceResponse/>".to_vec(), &default, "cas.parse.wrong_namespace"),
        (x, format!("<cas:other {ns}/>").into_bytes(), &default, "cas.parse.wrong_root"),
        (x, format!("<cas:serviceResponse {ns}/>").into_bytes(), &default, "cas.parse.not_one_outcome"),
        (x, success_with("<cas:user>a</cas:user><cas:user>b</cas:user>").into_bytes(), &default, "cas.parse.ambiguous_principal"),
        (x, success_with("").into_bytes(), &default, "cas.parse.missing_principal"),
        (x, success_with("<cas:user><![CDATA[a]]></cas:user>").into_bytes(), &default, "cas.parse.split_text"),
        (x, success_with("text<cas:user>a</cas:user>").into_bytes(), &default, "cas.parse.unexpected_text"),
        (x, success_with("<cas:user><cas:b/></cas:user>").into_bytes(), &default, "cas.parse.unexpected_element"),
        (x, success_with("<cas:user>a</cas:user><cas:proxies/><cas:proxies/>").into_bytes(), &default, "cas.parse.duplicate_element"),
        (x, format!(r#"<cas:serviceResponse {ns}><cas:authenticationFailure code="A" code="B"/></cas:serviceResponse>"#).into_bytes(), &default, "cas.parse.duplicate_attribute"),
        (x, format!(r#"<cas:serviceResponse {ns}><cas:authenticationFailure/></cas:serviceResponse>"#).into_bytes(), &default, "cas.parse.missing_attribute"),
        (x, success_with("<cas:user>a</cas:user><cas:attributes><cas:a>1</cas:a></cas:attributes>").into_bytes(), &shallow, "cas.parse.too_deep"),
        (x, success_with("<cas:user>a</cas:user><cas:b>1</cas:b><cas:b>2</cas:b>").into_bytes(), &few, "cas.parse.too_many_attributes"),
        (x, success_with(&format!("<cas:user>{}</cas:user>", "a".repeat(5000))).into_bytes(), &default, "cas.parse.value_too_long"),
        (x, success_with("<cas:user>a</cas:user><cas:isFromNewLogin>maybe</cas:isFromNewLogin>").into_bytes(), &default, "cas.parse.bad_boolean"),
        (ResponseFormat::Cas1Text, b"maybe\n".to_vec(), &default, "cas.parse.cas1_format"),
        (ResponseFormat::Json, b"{".to_vec(), &default, "cas.parse.json"),
        (ResponseFormat::Json, br#"{"serviceResponse":{},"serviceResponse":{}}"#.to_vec(), &default, "cas.parse.json_duplicate_key"),
        (ResponseFormat::Saml11, saml(OK_STATUS, CONDITIONS, "a", "b", false).into_bytes(), &default, "cas.parse.saml_subject"),
        (ResponseFormat::Saml11, saml(r#"<samlp:StatusCode Value="x:Success"/>"#, CONDITIONS, "a", "a", false).into_bytes(), &default, "cas.parse.saml_status"),
        (ResponseFormat::Saml11, saml(OK_STATUS, CONDITIONS, "a", "a", true).into_bytes(), &default, "cas.parse.saml_assertion_count"),
        (ResponseFormat::Saml11, saml(OK_STATUS, &CONDITIONS.replace("18:02:42", "18:00:00"), "a", "a", false).into_bytes(), &now, "cas.parse.saml_expired"),
        (ResponseFormat::Saml11, saml(OK_STATUS, &CONDITIONS.replace("18:02:42Z", "soon"), "a", "a", false).into_bytes(), &default, "cas.parse.saml_time"),
        (ResponseFormat::Saml11, saml(OK_STATUS, CONDITIONS, "a", "a", false).into_bytes(), &audience, "cas.parse.saml_audience"),
    ];
    let mut seen = Vec::new();
    for (format, body, options, code) in &cases {
        match parse_response(*format, body, options) {
            Err(e) => assert_eq!(
                e.code().as_str(),
                *code,
                "{}",
                String::from_utf8_lossy(body)
            ),
            Ok(o) => panic!("accepted, wanted {code}: {o:?}"),
        }
        seen.push(*code);
    }
    for code in ParseError::CODES {
        assert!(seen.contains(code), "no test input for {code}");
    }
}
