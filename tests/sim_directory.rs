//! The simulators' directory generator: deterministic, the family mix, the AAF shapes,
//! and files the proxy's `--directory` loads.

use std::collections::HashSet;
use std::path::Path;

use bonenfant::pupil::directory::Directory;
use bonenfant::sim::{DirectoryParams, Synthetic as _};

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

/// `bonenfant sim directory --out FILE` writes what `serve --directory FILE` loads: the
/// generator and the proxy share one file format, in both syntaxes.
#[test]
fn generated_files_load_as_the_proxy_directory() {
    let directory = Directory::generate(
        &DirectoryParams {
            families: 20,
            ..DirectoryParams::default()
        },
        3,
    );
    let expected = directory.index();
    let dir = tempfile::tempdir().unwrap();
    for name in ["d.toml", "d.json"] {
        let path = dir.path().join(name);
        directory.save(&path).unwrap();
        assert_eq!(Directory::load(&path).unwrap().data(), directory.data());
        let raw = bonenfant::config::RawConfig {
            listen: Some(([127, 0, 0, 1], 0).into()),
            upstream: Some(url::Url::parse("https://ent.example/").unwrap()),
            directory: Some(vec![path.clone()]),
            ..Default::default()
        };
        let index = raw
            .validate()
            .expect("configuration with the generated directory")
            .directory_index
            .load()
            .expect("an index");
        assert_eq!(*index, expected, "{name}");
    }
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
    assert_eq!(
        (first.first_name.as_str(), first.class.as_str()),
        ("Léa", "4B")
    );
    assert_eq!((first.children, first.establishments), (2, 2));
}
