//! Pupil keys by rule, principal kind and intent.

use bonenfant::cas::{
    parse_response, Assertion, Attributes, Outcome, ParseOptions, ResponseFormat,
};
use bonenfant::pupil::{
    designations, intent, principal_kind, DirectoryIndex, ExtractionRules, IntentSource,
    PrincipalKind, PupilKey, PupilRule, Uai,
};

fn assertion(principal: &str, attributes: &[(&str, &str)]) -> Assertion {
    Assertion {
        principal: principal.into(),
        attributes: attributes
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Attributes>(),
        ..Assertion::default()
    }
}

fn key(uai: &str, id: &str) -> PupilKey {
    PupilKey {
        uai: Uai::parse(uai).unwrap(),
        eleve_id: id.into(),
    }
}

fn keys(a: &Assertion, index: Option<&DirectoryIndex>) -> Vec<(PupilKey, PupilRule)> {
    designations(a, &ExtractionRules::default(), index)
        .0
        .into_iter()
        .map(|d| (d.key, d.rule))
        .collect()
}

#[test]
fn rule1_freduvecteur_values_in_assertion_order() {
    let a = assertion(
        "p",
        &[
            ("FrEduVecteur", "2|MARTIN|Zoé|701294|0330012A"),
            ("nom", "MARTIN"),
            ("FREDUVECTEUR", "2|MARTIN|Léa|701300|0330099Z"),
            ("FrEduVecteur", "2|MARTIN|Zoé|701294|0330012A"),
        ],
    );
    let d = designations(&a, &ExtractionRules::default(), None);
    let got: Vec<_> =
        d.0.iter()
            .map(|d| (d.key.clone(), d.first_name.as_deref()))
            .collect();
    // Two first names in one parent's values: they are the children's, not the holder's.
    assert_eq!(
        got,
        [
            (key("0330012A", "701294"), Some("Zoé")),
            (key("0330099Z", "701300"), Some("Léa"))
        ]
    );
    assert_eq!(d.designated().unwrap().rule, PupilRule::FrEduVecteur);
}

fn first_names(a: &Assertion) -> Vec<Option<String>> {
    designations(a, &ExtractionRules::default(), None)
        .0
        .into_iter()
        .map(|d| d.first_name)
        .collect()
}

/// The national chain and entcore put the parent's own names in each of a parent's
/// FrEduVecteur values (`2|MARTIN|Claire|…`, one per child): a chooser listing
/// "Claire" for every child would mislead. A vector's first name is a child's only
/// when the assertion shows it is not the holder's.
#[test]
fn rule1_first_names_are_the_childrens_only_when_not_the_holders() {
    // The holder's name in every value, as entcore and the sims write it.
    let holders = assertion(
        "claire",
        &[
            ("prenom", "Claire"),
            ("FrEduVecteur", "2|MARTIN|Claire|837001|0330101A"),
            ("FrEduVecteur", "2|MARTIN|Claire|837002|0330202B"),
        ],
    );
    assert_eq!(first_names(&holders), [None, None]);
    // OSE's bug: one value per ticket; the holder's `prenom` tells whose name it is.
    let one = assertion(
        "claire",
        &[
            ("prenom", "Claire"),
            ("FrEduVecteur", "2|MARTIN|Claire|837001|0330101A"),
        ],
    );
    assert_eq!(first_names(&one), [None]);
    // One value, no holder name to compare with: unknown, so none.
    let bare = assertion("x", &[("FrEduVecteur", "2|LEROY|Nina|700301|0330001A")]);
    assert_eq!(first_names(&bare), [None]);
    // A child's name, told apart from the holder's (`givenName`, any case).
    let child = assertion(
        "x",
        &[
            ("GIVENNAME", "Claire"),
            ("FrEduVecteur", "2|LEROY| Nina |700301|0330001A"),
        ],
    );
    assert_eq!(first_names(&child), [Some("Nina".to_owned())]);
    // Pupils' own values carry no name worth showing; blanks are none.
    let blank = assertion(
        "x",
        &[
            ("prenom", "Claire"),
            ("FrEduVecteur", "2|LEROY||700301|0330001A"),
        ],
    );
    assert_eq!(first_names(&blank), [None]);
    // A name is bounded (sessions hold ≤ 1 KiB).
    let long = format!("2|X|{}|1|0330001A", "é".repeat(300));
    let huge = assertion("x", &[("prenom", "Claire"), ("FrEduVecteur", &long)]);
    assert_eq!(first_names(&huge), [Some("é".repeat(40))]);
}

#[test]
fn rule1_reads_values_joined_with_semicolons_and_pupil_profiles() {
    let a = assertion("p", &[("vecteurs", "2|A|B|11|0330012A;2|A|C|22|0330099Z")]);
    assert_eq!(
        keys(&a, None),
        [
            (key("0330012A", "11"), PupilRule::FrEduVecteur),
            (key("0330099Z", "22"), PupilRule::FrEduVecteur)
        ]
    );
    let pupil = assertion("p", &[("FrEduVecteur", "4|||701294|0790031E")]);
    let d = designations(&pupil, &ExtractionRules::default(), None);
    assert_eq!(d.designated().unwrap().key, key("0790031E", "701294"));
    assert_eq!(d.designated().unwrap().first_name, None);
    for bad in [
        "5|A|B|1|0330012A",
        "2|A|B|x|0330012A",
        "2|A|B|1|0330012a",
        "2|A|B|1|0330012A|",
        "2|A|1|0330012A",
    ] {
        assert!(
            keys(&assertion("p", &[("FrEduVecteur", bad)]), None).is_empty(),
            "{bad}"
        );
    }
}

#[test]
fn rule2_struct_rattach_id_with_a_uai_attribute() {
    let a = assertion(
        "p",
        &[("ENTEleveStructRattachId", "701294"), ("uai", "0330012a")],
    );
    assert_eq!(
        keys(&a, None),
        [(key("0330012A", "701294"), PupilRule::StructRattachId)]
    );
    let rne_first = assertion(
        "p",
        &[
            ("ESCOUAICourant", "0330099Z"),
            ("ENTPersonStructRattachRNE", "0330012A"),
            ("ENTELEVESTRUCTRATTACHID", "5"),
        ],
    );
    assert_eq!(
        keys(&rne_first, None),
        [(key("0330012A", "5"), PupilRule::StructRattachId)]
    );
    assert!(keys(
        &assertion("p", &[("ENTEleveStructRattachId", "701294")]),
        None
    )
    .is_empty());
}

#[test]
fn rule1_wins_over_rule2() {
    let a = assertion(
        "p",
        &[
            ("ENTEleveStructRattachId", "1"),
            ("uai", "0330012A"),
            ("FrEduVecteur", "2|A|B|2|0330099Z"),
        ],
    );
    assert_eq!(
        keys(&a, None),
        [(key("0330099Z", "2"), PupilRule::FrEduVecteur)]
    );
}

#[test]
fn rule3_jointure_with_prefixes_stripped_through_the_index() {
    let mut index = DirectoryIndex::default();
    index.add_jointure("1986923", key("0330012A", "701294"));
    index.add_jointure("2212345", key("0330099Z", "9"));
    for principal in ["AC-BORDEAUX$1986923", "BORDEAUX-1986923", "1986923"] {
        assert_eq!(
            keys(&assertion(principal, &[]), Some(&index)),
            [(key("0330012A", "701294"), PupilRule::Jointure)],
            "{principal}"
        );
    }
    let a = assertion("someone", &[("ENTPersonJointure", "{AAF}04|x|2212345")]);
    assert_eq!(
        keys(&a, Some(&index)),
        [(key("0330099Z", "9"), PupilRule::Jointure)]
    );
    assert!(keys(&assertion("AC-BORDEAUX$1986923", &[]), None).is_empty());
    assert!(keys(&assertion("unknown", &[]), Some(&index)).is_empty());
}

#[test]
fn ose_like_fixture_designates_its_one_child() {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/cas/xml/ose-parent.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let Ok(Outcome::Success(a)) =
        parse_response(ResponseFormat::Xml, &body, &ParseOptions::default())
    else {
        panic!("fixture must parse");
    };
    let d = designations(&a, &ExtractionRules::default(), None);
    assert_eq!(d.0.len(), 1);
    assert_eq!(d.designated().unwrap().key, key("0330012A", "701294"));
    // The value's first name is not the holder's (`prenom` Marie): it is the child's.
    assert_eq!(d.designated().unwrap().first_name.as_deref(), Some("Lucas"));
    assert_eq!(
        principal_kind(
            &a,
            "https://0330012a.index-education.net/pronote/parent.html"
        ),
        PrincipalKind::Parent
    );
}

#[test]
fn principal_kind_from_categories_vector_or_page() {
    let service = "https://0330012a.index-education.net/pronote/";
    assert_eq!(
        principal_kind(&assertion("p", &[("categories", "National_2")]), service),
        PrincipalKind::Parent
    );
    assert_eq!(
        principal_kind(&assertion("p", &[("categories", "National_1")]), service),
        PrincipalKind::Pupil
    );
    assert_eq!(
        principal_kind(&assertion("p", &[("categories", "National_3")]), service),
        PrincipalKind::Staff
    );
    let both = assertion("p", &[("categories", "National_1;National_2")]);
    assert_eq!(
        principal_kind(&both, &format!("{service}parent.html")),
        PrincipalKind::Parent
    );
    assert_eq!(
        principal_kind(&both, &format!("{service}eleve.html")),
        PrincipalKind::Pupil
    );
    assert_eq!(principal_kind(&both, service), PrincipalKind::Pupil);
    assert_eq!(
        principal_kind(&assertion("p", &[("v", "3|||1|0330012A")]), service),
        PrincipalKind::Pupil
    );
    assert_eq!(
        principal_kind(&assertion("p", &[("v", "1|A|B|1|0330012A")]), service),
        PrincipalKind::Parent
    );
    assert_eq!(
        principal_kind(
            &assertion("p", &[]),
            &format!("{service}mobile.parent.html?x=1")
        ),
        PrincipalKind::Parent
    );
    assert_eq!(
        principal_kind(&assertion("p", &[]), &format!("{service}eleve.html")),
        PrincipalKind::Pupil
    );
    assert_eq!(
        principal_kind(&assertion("p", &[]), &format!("{service}professeur.html")),
        PrincipalKind::Staff
    );
    assert_eq!(
        principal_kind(&assertion("p", &[]), service),
        PrincipalKind::Unknown
    );
}

#[test]
fn intent_pin_then_only_child_in_establishment_then_sticky() {
    let here = Uai::parse("0330012A").unwrap();
    let a = key("0330012A", "1");
    let b = key("0330099Z", "2");
    let c = key("0330012A", "3");
    let pinned = intent(Some(&b), std::slice::from_ref(&a), Some(&here), Some(&a)).unwrap();
    assert_eq!(
        (pinned.pupil, pinned.source),
        (b.clone(), IntentSource::Pin)
    );
    let only = intent(None, &[a.clone(), b.clone()], Some(&here), Some(&c)).unwrap();
    assert_eq!(
        (only.pupil, only.source),
        (a.clone(), IntentSource::OnlyInEstablishment)
    );
    let sticky = intent(None, &[a.clone(), c.clone()], Some(&here), Some(&c)).unwrap();
    assert_eq!(
        (sticky.pupil, sticky.source),
        (c.clone(), IntentSource::Sticky)
    );
    // A sticky pupil from another establishment is no intent here.
    assert!(intent(None, &[a.clone(), c.clone()], Some(&here), Some(&b)).is_none());
    assert!(intent(None, &[], None, None).is_none());
    let no_expected = intent(None, std::slice::from_ref(&a), None, Some(&b)).unwrap();
    assert_eq!(no_expected.source, IntentSource::Sticky);
}
