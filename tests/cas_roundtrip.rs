//! `parse(serialize(x)) == x` for every format, over generated assertions and
//! failures (each format compared on what it carries), and a differential check of
//! the XML reader against roxmltree on meaning-preserving and hostile mutations.

use bonenfant::cas::{
    parse_response, serialize, AnswerContext, Assertion, Attributes, AuthMeta, Failure, Outcome,
    ParseOptions, ResponseFormat,
};
use proptest::prelude::*;

const SERVICE: &str = "https://0330012a.index-education.net/pronote/parent.html?a=1&b=\"2\"";
const NOW: u64 = 1_795_975_340;
const UNSPECIFIED_METHOD: &str = "urn:oasis:names:tc:SAML:1.0:am:unspecified";
const RESERVED: [&str; 6] = [
    "user",
    "attribute",
    "userAttributes",
    "authenticationDate",
    "longTermAuthenticationRequestTokenUsed",
    "isFromNewLogin",
];

fn is_xml_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Text as the parser yields it: no control character, no XML whitespace at the ends.
fn text(max: usize, allow_inner_breaks: bool) -> impl Strategy<Value = String> {
    let chars = if allow_inner_breaks {
        "[a-zA-Z0-9 .&<>\"'|$;:/éÆ😀\u{200B}\u{A0}\t\n\r]"
    } else {
        "[a-zA-Z0-9 .&<>\"'|$;:/éÆ😀\u{200B}\u{A0}]"
    };
    proptest::collection::vec(proptest::string::string_regex(chars).unwrap(), 0..max)
        .prop_map(|parts| parts.concat())
        .prop_map(|s| s.trim_matches(is_xml_ws).to_owned())
}

fn identity() -> impl Strategy<Value = String> {
    text(24, false).prop_filter("non-empty", |s| !s.is_empty())
}

fn attribute_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z_][a-zA-Z0-9_.-]{0,12}",
        1 => "[a-z][a-z :é]{0,6}[a-z]",
    ]
    .prop_filter("not reserved", |n| {
        !RESERVED.contains(&n.as_str()) && !n.to_ascii_lowercase().starts_with("xml")
    })
}

fn assertion() -> impl Strategy<Value = Assertion> {
    (
        identity(),
        proptest::collection::vec((attribute_name(), text(12, true)), 0..12),
        proptest::option::of("PGTIOU-[A-Za-z0-9-]{1,30}"),
        proptest::collection::vec("https://[a-z]{1,8}\\.example/cb", 0..3),
        proptest::option::of("20[0-9]{2}-[01][0-9]-[0-2][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z"),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of("urn:oasis:names:tc:SAML:1\\.0:am:[a-z]{1,10}"),
    )
        .prop_map(
            |(principal, attributes, pgt_iou, proxies, date, long_term, new_login, method)| {
                Assertion {
                    principal,
                    attributes: attributes.into_iter().collect::<Attributes>(),
                    pgt_iou,
                    proxies,
                    auth: AuthMeta {
                        authentication_date: date,
                        long_term,
                        from_new_login: new_login,
                        method,
                    },
                }
            },
        )
}

fn failure() -> impl Strategy<Value = Failure> {
    ("[A-Z_]{1,20}", text(40, true)).prop_map(|(code, message)| Failure::new(code, message))
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![3 => assertion().prop_map(Outcome::Success), 1 => failure().prop_map(Outcome::Failure)]
}

/// What `format` can carry of `outcome`.
fn carried(outcome: &Outcome, format: ResponseFormat) -> Outcome {
    let Outcome::Success(a) = outcome else {
        return match format {
            ResponseFormat::Cas1Text => Outcome::Failure(Failure::new("INVALID_TICKET", "")),
            _ => outcome.clone(),
        };
    };
    let mut a = a.clone();
    match format {
        ResponseFormat::Cas1Text => {
            a = Assertion {
                principal: a.principal,
                ..Assertion::default()
            }
        }
        ResponseFormat::Xml => a.auth.method = None,
        ResponseFormat::Json => {
            a.auth.method = None;
            // A JSON object groups values by name, in order of first appearance.
            a.attributes = a
                .attributes
                .names()
                .iter()
                .flat_map(|n| {
                    a.attributes
                        .values(n)
                        .map(move |v| (n.to_string(), v.to_string()))
                })
                .collect();
        }
        ResponseFormat::Saml11 => {
            a.pgt_iou = None;
            a.proxies.clear();
            a.auth
                .authentication_date
                .get_or_insert_with(|| "2026-11-29T18:02:20Z".into());
            a.auth
                .method
                .get_or_insert_with(|| UNSPECIFIED_METHOD.into());
        }
    }
    Outcome::Success(a)
}

fn round_trip(outcome: &Outcome, format: ResponseFormat) -> Result<(), TestCaseError> {
    let context = AnswerContext {
        service: SERVICE,
        now_unix: NOW,
    };
    let bytes = serialize(outcome, format, &context);
    let options = ParseOptions {
        now_unix: Some(NOW),
        service: Some(SERVICE),
        ..ParseOptions::default()
    };
    let parsed = parse_response(format, &bytes, &options);
    prop_assert_eq!(
        parsed.as_ref().ok(),
        Some(&carried(outcome, format)),
        "{:?} {}",
        parsed,
        String::from_utf8_lossy(&bytes)
    );
    // Canonical: serialising what was read gives the same bytes.
    if let Ok(parsed) = parsed {
        prop_assert_eq!(serialize(&parsed, format, &context), bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn xml_round_trips(o in outcome()) { round_trip(&o, ResponseFormat::Xml)?; }

    #[test]
    fn json_round_trips(o in outcome()) { round_trip(&o, ResponseFormat::Json)?; }

    #[test]
    fn saml_round_trips(o in outcome()) { round_trip(&o, ResponseFormat::Saml11)?; }

    #[test]
    fn cas1_round_trips_the_principal(o in outcome()) { round_trip(&o, ResponseFormat::Cas1Text)?; }
}

// === differential oracle ===

const CAS: &str = "http://www.yale.edu/tp/cas";

/// The principal as a roxmltree schema walk reads it: `serviceResponse` →
/// `authenticationSuccess` → exactly one `user` whose children are all text (never
/// `Node::text()`, which stops at the first comment).
fn oracle_principal(body: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(body).ok()?;
    let root = doc.root_element();
    if !root.has_tag_name((CAS, "serviceResponse")) {
        return None;
    }
    let mut outcomes = root.children().filter(|n| n.is_element());
    let success = outcomes.next()?;
    if outcomes.next().is_some() || !success.has_tag_name((CAS, "authenticationSuccess")) {
        return None;
    }
    let mut users = success.children().filter(|n| n.has_tag_name((CAS, "user")));
    let user = users.next()?;
    if users.next().is_some() || user.children().any(|c| !c.is_text()) {
        return None;
    }
    let text: String = user.children().filter_map(|c| c.text()).collect();
    let text = text.trim_matches(is_xml_ws).to_owned();
    (!text.is_empty()).then_some(text)
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Meaning-preserving.
    Prefix(String),
    DefaultNamespace,
    CommentsBetweenElements,
    CharRefs,
    /// Hostile.
    CommentInUser,
    SecondUser,
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        "[a-z][a-z0-9]{0,5}"
            .prop_filter("not xml", |p| !p.starts_with("xml"))
            .prop_map(Mutation::Prefix),
        Just(Mutation::DefaultNamespace),
        Just(Mutation::CommentsBetweenElements),
        Just(Mutation::CharRefs),
        Just(Mutation::CommentInUser),
        Just(Mutation::SecondUser),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(xml: &str, principal: &str, mutation: &Mutation) -> String {
    match mutation {
        Mutation::Prefix(p) => xml
            .replace("cas:", &format!("{p}:"))
            .replace("xmlns:cas=", &format!("xmlns:{p}=")),
        Mutation::DefaultNamespace => xml.replace("cas:", "").replace("xmlns:cas=", "xmlns="),
        Mutation::CommentsBetweenElements => xml.replace(">\n", "><!-- c -->\n"),
        Mutation::CharRefs => xml
            .replace("a</cas:user>", "&#97;</cas:user>")
            .replace(">a", ">&#x61;"),
        Mutation::CommentInUser => {
            let mid = principal
                .char_indices()
                .nth(principal.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            xml.replacen(
                &format!("<cas:user>{}", escape(&principal[..mid])),
                &format!("<cas:user>{}<!---->", escape(&principal[..mid])),
                1,
            )
        }
        Mutation::SecondUser => xml.replace("</cas:user>", "</cas:user><cas:user>admin</cas:user>"),
        Mutation::Truncate(n) => {
            let mut cut = n % xml.len().max(1);
            while !xml.is_char_boundary(cut) {
                cut -= 1;
            }
            xml[..cut].to_owned()
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whenever both readers accept, they read the same principal; and we never
    /// accept what the schema-walking oracle refuses.
    #[test]
    fn xml_reader_agrees_with_roxmltree(a in assertion(), m in mutation()) {
        let context = AnswerContext { service: SERVICE, now_unix: NOW };
        let canonical = String::from_utf8(serialize(&Outcome::Success(a.clone()), ResponseFormat::Xml, &context)).unwrap();
        // A value containing `cas:` would itself be rewritten by the prefix mutations.
        prop_assume!(!a.principal.contains("cas:")
            && a.attributes.iter().all(|(n, v)| !n.contains("cas:") && !v.contains("cas:")));
        let mutated = apply(&canonical, &a.principal, &m);
        let ours = match parse_response(ResponseFormat::Xml, mutated.as_bytes(), &ParseOptions::default()) {
            Ok(Outcome::Success(s)) => Some(s.principal),
            _ => None,
        };
        let theirs = oracle_principal(&mutated);
        if let Some(ours) = &ours {
            prop_assert_eq!(Some(ours), theirs.as_ref(), "{:?}: {}", m, mutated);
        }
        match m {
            Mutation::Prefix(_) | Mutation::DefaultNamespace | Mutation::CommentsBetweenElements | Mutation::CharRefs => {
                prop_assert_eq!(ours.as_deref(), Some(a.principal.as_str()), "{}", mutated);
            }
            Mutation::CommentInUser | Mutation::SecondUser => prop_assert_eq!(ours, None),
            // Cutting only the final line feed leaves a complete document.
            Mutation::Truncate(_) if mutated.trim_end() == canonical.trim_end() => {
                prop_assert_eq!(ours.as_deref(), Some(a.principal.as_str()));
            }
            Mutation::Truncate(_) => prop_assert_eq!(ours, None),
        }
    }
}
