//! The simulators' directory: deterministic generation, the family mix, files.

use std::collections::HashSet;
use std::path::Path;

use bonenfant::sim::{Directory, DirectoryParams};

fn fixture() -> Directory {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sim/directory.toml");
    Directory::load(&path).expect("committed example directory loads")
}

#[test]
fn same_seed_gives_the_same_directory_and_another_seed_another() {
    let params = DirectoryParams::default();
    let a = Directory::generate(&params, 42);
    assert_eq!(a.data(), Directory::generate(&params, 42).data());
    assert_ne!(a.data(), Directory::generate(&params, 43).data());
}

#[test]
fn family_mix_matches_the_parameters() {
    let params = DirectoryParams {
        families: 5000,
        establishments: 10,
        ..DirectoryParams::default()
    };
    let directory = Directory::generate(&params, 1);
    let parents = directory.parents();
    assert_eq!(parents.len(), 5000);
    let share = |n: usize| {
        parents.iter().filter(|p| p.children.len() == n).count() as f64 / parents.len() as f64
    };
    for (children, expected) in [(1, 0.42), (2, 0.38), (3, 0.14), (4, 0.06)] {
        let got = share(children);
        assert!(
            (got - expected).abs() < 0.03,
            "{children} children: {got:.3}, expected ≈ {expected}"
        );
    }
    let multi: Vec<_> = parents.iter().filter(|p| p.children.len() > 1).collect();
    let spread = multi.iter().filter(|p| p.records.len() == 2).count() as f64 / multi.len() as f64;
    assert!(
        (spread - 0.40).abs() < 0.04,
        "two establishments: {spread:.3}"
    );
    assert!(multi.iter().all(|p| p.records.len() <= 2));
}

#[test]
fn one_record_per_establishment_and_one_vector_per_child() {
    let directory = Directory::generate(&DirectoryParams::default(), 5);
    for parent in directory.parents() {
        let uais: HashSet<&str> = parent.records.iter().map(|r| r.uai.as_str()).collect();
        assert_eq!(
            uais.len(),
            parent.records.len(),
            "one record per establishment"
        );
        for child in directory.children_of(parent) {
            let vector = directory.vector(parent, child);
            assert_eq!(
                vector,
                format!(
                    "2|{}|{}|{}|{}",
                    parent.last_name, parent.first_name, child.eleve_id, child.uai
                )
            );
            let record = directory.record_for(parent, &child.uai).expect("record");
            assert!(record.children.contains(&child.jointure));
        }
    }
}

#[test]
fn identifiers_have_the_aaf_shapes() {
    let directory = Directory::generate(&DirectoryParams::default(), 9);
    let uai = regex::Regex::new(r"^033\d{4}[A-Z]$").unwrap();
    assert!(directory
        .establishments()
        .iter()
        .all(|e| uai.is_match(&e.uai)));
    let date = regex::Regex::new(r"^\d{2}/\d{2}/\d{4}$").unwrap();
    for pupil in directory.pupils() {
        assert!(pupil.eleve_id.len() >= 6 && pupil.eleve_id.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(pupil.jointure.len(), 7);
        assert!(pupil.ine.starts_with("SIM"), "INE in the fake format");
        assert!(date.is_match(&pupil.birth_date));
    }
    let logins: HashSet<&str> = directory
        .parents()
        .iter()
        .map(|p| p.login.as_str())
        .collect();
    assert_eq!(logins.len(), directory.parents().len());
}

#[test]
fn saves_and_loads_toml_and_json() {
    let directory = Directory::generate(
        &DirectoryParams {
            families: 20,
            ..DirectoryParams::default()
        },
        3,
    );
    let dir = tempfile::tempdir().unwrap();
    for name in ["d.toml", "d.json"] {
        let path = dir.path().join(name);
        directory.save(&path).unwrap();
        assert_eq!(Directory::load(&path).unwrap().data(), directory.data());
    }
    let other = dir.path().join("d.yaml");
    assert_eq!(
        directory.save(&other).unwrap_err().code(),
        "sim.directory.format"
    );
}

#[test]
fn committed_example_describes_the_three_family_shapes() {
    let directory = fixture();
    assert_eq!(directory.parents().len(), 3);
    let claire = directory.parent("claire.martin").unwrap();
    assert_eq!(claire.records.len(), 2);
    let base = url::Url::parse("http://127.0.0.1:8080/").unwrap();
    let visits = directory.visits(&base);
    assert_eq!(visits.len(), 5, "one visit per (parent, child)");
    let first = &visits[0];
    assert_eq!(first.login, "claire.martin");
    assert_eq!(
        first.pronote_url.as_str(),
        "http://127.0.0.1:8080/0330101a/pronote/parent.html"
    );
    assert_eq!(first.intended.eleve_id, "837001");
    assert_eq!((first.children, first.establishments), (2, 2));
}

#[test]
fn rejects_a_file_naming_an_unknown_pupil() {
    let mut data = fixture().data().clone();
    data.parents[0].children.push("9999999".into());
    let error = Directory::from_data(data).unwrap_err();
    assert_eq!(error.code(), "sim.directory.inconsistent");
    assert!(!error.to_string().contains("claire"), "no names in errors");
}

#[test]
fn parse_errors_give_a_position_and_never_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("bad.toml");
    std::fs::write(
        &toml_path,
        "[[parents]]\nlogin = \"secret.person\"\npassword = 5\n",
    )
    .unwrap();
    let error = Directory::load(&toml_path).unwrap_err();
    assert_eq!(error.code(), "sim.directory.toml");
    assert!(!error.to_string().contains("secret"));
    let json_path = dir.path().join("bad.json");
    std::fs::write(
        &json_path,
        r#"{"parents": [{"login": "secret.person", "password": 5}]}"#,
    )
    .unwrap();
    let error = Directory::load(&json_path).unwrap_err();
    assert_eq!(error.code(), "sim.directory.json");
    assert!(!error.to_string().contains("secret"));
}
