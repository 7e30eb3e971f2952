//! The académie's AAF exports as `--directory` reads them: generated files load to the
//! generator's own truth, the committed real-shaped export reads as written, every kind
//! of problem is counted and located without naming anyone, `directory check` exits by
//! usability, a reload swaps the index (and keeps it when the new one is broken), the
//! chooser lists every child from the index on a first visit, and a child the
//! directory does not give the parent is flagged and never rewritten.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bonenfant::cas::{Assertion, Attributes};
use bonenfant::config::{PinMode, PinSettings, RawConfig};
use bonenfant::events::PinOutcome;
use bonenfant::pin::{self, Attempts, FrontDecision, Inspector};
use bonenfant::pupil::aaf::Problem;
use bonenfant::pupil::directory::{self, Directory, DirectoryData, DirectoryError};
use bonenfant::pupil::{EstablishmentPattern, ExtractionRules, PupilKey, SharedIndex, Uai};
use bonenfant::session::SessionState;

#[cfg(target_os = "linux")]
use crate::support::Serving;
use bonenfant::sim::browser::{self, Browser};
use bonenfant::sim::{
    write_aaf, AafOptions, DirectoryParams, EntOptions, Pick, PronoteOptions, Synthetic as _,
    TestEnt, TestPronote, SIM_SERVICE_PATTERN,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn key(uai: &str, id: &str) -> PupilKey {
    PupilKey {
        uai: Uai::parse(uai).unwrap(),
        eleve_id: id.to_owned(),
    }
}

fn key_of(pupil: &bonenfant::sim::Pupil) -> PupilKey {
    key(&pupil.uai, &pupil.eleve_id)
}

/// A directory with every family shape: siblings in one or two collèges, two legal
/// representatives.
fn generated() -> Directory {
    let params = DirectoryParams {
        families: 300,
        establishments: 5,
        two_establishments: 0.5,
        second_parent: 0.5,
        ..DirectoryParams::default()
    };
    Directory::generate(&params, 7)
}

fn written(directory: &Directory, options: &AafOptions) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = write_aaf(directory, dir.path(), options).unwrap();
    assert_eq!(files.len(), 3 * directory.establishments().len());
    dir
}

fn load(
    paths: &[&Path],
) -> (
    bonenfant::pupil::DirectoryIndex,
    bonenfant::pupil::aaf::LoadReport,
) {
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    directory::load_index(&paths).unwrap()
}

#[test]
fn generated_aaf_files_load_to_the_generators_truth() {
    let truth = generated();
    let dir = written(&truth, &AafOptions::default());
    let (index, report) = load(&[dir.path()]);
    assert_eq!(report.problems, BTreeMap::new(), "{report}");
    assert_eq!(report.establishments, truth.establishments().len());
    assert_eq!(report.pupils, truth.pupils().len());
    let records: usize = truth.parents().iter().map(|p| p.records.len()).sum();
    assert_eq!(report.parent_records, records);
    assert_eq!(report.logins, truth.parents().len());
    assert_eq!(
        report.parents_in_several_establishments,
        truth
            .parents()
            .iter()
            .filter(|p| p.records.len() > 1)
            .count()
    );
    assert!(report.parents_in_several_establishments > 10);

    for pupil in truth.pupils() {
        let key = key_of(pupil);
        assert_eq!(index.jointure(&pupil.jointure), Some(&key));
        let label = index.label(&key).expect("a label");
        assert_eq!(label.first_name, pupil.first_name);
        assert_eq!(label.class.as_deref(), Some(pupil.class.as_str()));
    }
    for establishment in truth.establishments() {
        let uai = Uai::parse(&establishment.uai).unwrap();
        assert_eq!(
            index.establishment_name(&uai),
            Some(establishment.name.as_str())
        );
    }
    for parent in truth.parents() {
        let expected: BTreeSet<PupilKey> = truth.children_of(parent).map(key_of).collect();
        let known = index.principal(&parent.login).expect("every parent");
        assert!(known.complete, "records grouped by login");
        assert_eq!(
            known.children.iter().cloned().collect::<BTreeSet<_>>(),
            expected
        );
        for record in &parent.records {
            // The record's jointure as the principal: the whole parent.
            assert_eq!(index.principal(&record.jointure).as_ref(), Some(&known));
            let first = truth.pupil_by_jointure(&record.children[0]).unwrap();
            assert_eq!(index.jointure(&record.jointure), Some(&key_of(first)));
        }
    }

    // The simulators' whole copy: the same directory, but for the test passwords.
    let (copy, _) = directory::load_directory(&[dir.path().to_owned()]).unwrap();
    assert_eq!(comparable(copy.data()), comparable(truth.data()));
}

/// A directory's content, ordered, passwords left out (AAF carries none).
fn comparable(data: &DirectoryData) -> String {
    let mut data = data.clone();
    data.establishments.sort_by(|a, b| a.uai.cmp(&b.uai));
    data.pupils.sort_by(|a, b| a.jointure.cmp(&b.jointure));
    for parent in &mut data.parents {
        parent.password.clear();
        parent.children.sort();
        parent.records.sort_by(|a, b| a.jointure.cmp(&b.jointure));
        for record in &mut parent.records {
            record.children.sort();
        }
    }
    data.parents.sort_by(|a, b| a.login.cmp(&b.login));
    format!("{data:#?}")
}

#[test]
fn without_logins_each_record_stands_alone() {
    let truth = generated();
    let options = AafOptions {
        logins: false,
        ..AafOptions::default()
    };
    let dir = written(&truth, &options);
    let (index, report) = load(&[dir.path()]);
    assert_eq!(report.logins, 0);
    assert_eq!(report.records_without_login, report.parent_records);
    assert_eq!(report.parents_in_several_establishments, 0);
    let parent = truth
        .parents()
        .iter()
        .find(|p| p.records.len() == 2)
        .unwrap();
    assert!(index.principal(&parent.login).is_none());
    for record in &parent.records {
        let known = index.principal(&record.jointure).unwrap();
        assert!(
            !known.complete,
            "one establishment's record speaks for it only"
        );
        assert!(known.children.iter().all(|k| k.uai.as_str() == record.uai));
    }
}

#[test]
fn the_committed_export_reads_as_written() {
    let (index, report) = load(&[&fixture("aaf/export")]);
    assert_eq!(report.problems, BTreeMap::new(), "{report}");
    assert_eq!(report.files, 6, "the file named like nothing is read too");
    let ignored: BTreeSet<String> = report
        .ignored_files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        ignored,
        BTreeSet::from(["LISEZMOI.txt".to_owned(), "ficAlimMENESR.dtd".to_owned()])
    );
    assert_eq!(report.ignored_entries.get("PersEducNat"), Some(&1));
    assert_eq!(
        (report.establishments, report.pupils, report.parent_records),
        (2, 6, 5)
    );
    assert_eq!(report.parents_in_several_establishments, 1, "Claire");
    assert_eq!(report.records_without_login, 1, "Anne");

    let lea = key("0330101A", "837001");
    let hugo = key("0330202B", "837002");
    let claire = index.principal("claire.martin").unwrap();
    assert_eq!(claire.children, [lea.clone(), hugo.clone()]);
    let label = |k: &PupilKey| {
        let l = index.label(k).unwrap();
        (l.first_name.clone(), l.class.clone().unwrap_or_default())
    };
    assert_eq!(label(&lea), ("Léa".into(), "4B".into()), "ISO-8859-15");
    assert_eq!(label(&hugo), ("Hugo".into(), "6A".into()), "UTF-8");
    // Julien's children are named only on their own side.
    let julien: Vec<&PupilKey> = index.children_of("julien.durand").collect();
    assert_eq!(
        julien,
        [&key("0330101A", "837003"), &key("0330101A", "837004")]
    );
    // A character reference, and a child given as an LDAP DN.
    let noel = key("0330101A", "837006");
    assert_eq!(label(&noel).0, "Noël");
    assert_eq!(index.principal("3605006").unwrap().children, [noel]);
    assert_eq!(
        index.establishment_name(&lea.uai),
        Some("COLLÈGE JEAN MOULIN")
    );
    assert_eq!(
        index.establishment_name(&hugo.uai),
        Some("COLLÈGE ROSA BONHEUR")
    );
}

#[test]
fn every_problem_is_counted_and_located_without_naming_anyone() {
    let (index, report) = load(&[&fixture("aaf/problems")]);
    let expected = [
        (Problem::DuplicateEstablishment, 1),
        (Problem::MissingParentRecord, 1),
        (Problem::DuplicateJointure, 2),
        (Problem::DuplicatePupil, 1),
        (Problem::MissingAttribute("ENTEleveStructRattachId"), 1),
        (Problem::BadValue("ENTEleveStructRattachId"), 1),
        (Problem::UnknownEstablishment, 1),
        (Problem::MalformedEntry, 2),
        (Problem::DeltaEntry, 1),
        (Problem::BrokenXml, 1),
        (Problem::UnknownChild, 1),
        (Problem::UnsupportedEncoding, 1),
    ];
    let counts: BTreeMap<Problem, u64> = report
        .problems
        .iter()
        .map(|(p, found)| (*p, found.count))
        .collect();
    assert_eq!(counts, BTreeMap::from(expected), "{report}");
    // What survives: the two good pupils, Claire's record with both.
    assert_eq!(index.pupil_count(), 2);
    let claire = index.principal("claire.martin").unwrap();
    assert_eq!(
        claire.children,
        [key("0330101A", "837001"), key("0330101A", "837010")]
    );
    let printed = report.to_string();
    assert!(
        printed.contains("1 × missing_parent_record: pupil names a parent record no PersRelEleve entry has: that link is skipped (first: "),
        "{printed}"
    );
    assert!(printed.contains("Eleve_0000.xml entry 2"), "{printed}");
    for secret in [
        "Léa",
        "MARTIN",
        "Claire",
        "claire.martin",
        "2605001",
        "837001",
        "3605999",
        "2699999",
        "SIM0000001A",
    ] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
}

#[test]
fn nothing_usable_is_an_error_that_carries_the_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("aaf/export/ficAlimMENESR.dtd"),
        dir.path().join("ficAlimMENESR.dtd"),
    )
    .unwrap();
    std::fs::write(dir.path().join("export.zip"), b"PK\x03\x04 not really").unwrap();
    match directory::load_index(&[dir.path().to_owned()]) {
        Err(DirectoryError::NothingUsable(report)) => {
            assert_eq!(report.ignored_files.len(), 2, "{report}");
            assert!(report.to_string().contains("unpack it first"), "{report}");
        }
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("not-there");
    assert!(matches!(
        directory::load_index(&[missing]),
        Err(DirectoryError::NothingUsable(_))
    ));
}

#[test]
fn the_simulator_format_still_loads_alone() {
    let toml = fixture("sim/directory.toml");
    let (index, report) = directory::load_index(std::slice::from_ref(&toml)).unwrap();
    assert_eq!(report.pupils, 5);
    assert_eq!(index.children_of("claire.martin").count(), 2);
    let mixed = directory::load_index(&[toml, fixture("aaf/export")]);
    assert!(matches!(mixed, Err(DirectoryError::MixedFormats)));
    // In the configuration too: one path as a string, several as a list.
    let raw: RawConfig = toml::from_str(&format!(
        "directory = [{:?}, {:?}]",
        fixture("aaf/export/ENT_0330101A_Complet_20260115_EtabEducNat_0000.xml"),
        fixture("aaf/export/ENT_0330101A_Complet_20260115_Eleve_0000.xml"),
    ))
    .unwrap();
    assert_eq!(raw.directory.as_ref().map(Vec::len), Some(2));
}

#[test]
fn reload_swaps_keeps_the_index_when_broken_and_refuses_a_truncated_export() {
    let truth = generated();
    let full = written(&truth, &AafOptions::default());
    let shared = SharedIndex::from(load(&[full.path()]).0);
    let before = shared.load().unwrap();

    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join("Eleve.xml"),
        b"<ficAlimMENESR><addRequest>",
    )
    .unwrap();
    let error = directory::reload(&shared, &[broken.path().to_owned()]).unwrap_err();
    assert_eq!(error.code(), "directory.nothing_usable");
    assert!(Arc::ptr_eq(&before, &shared.load().unwrap()), "kept");

    // One establishment's files out of five: most likely a copy in progress.
    let partial = tempfile::tempdir().unwrap();
    let uai = &truth.establishments()[0].uai;
    for entry in std::fs::read_dir(full.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains(uai.as_str()) {
            std::fs::copy(&path, partial.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let error = directory::reload(&shared, &[partial.path().to_owned()]).unwrap_err();
    assert_eq!(error.code(), "directory.shrunk", "{error}");
    assert!(Arc::ptr_eq(&before, &shared.load().unwrap()), "kept");

    let report = directory::reload(&shared, &[full.path().to_owned()]).unwrap();
    assert_eq!(report.pupils, truth.pupils().len());
    assert!(!Arc::ptr_eq(&before, &shared.load().unwrap()), "swapped");
}

fn settings(mode: PinMode) -> PinSettings {
    PinSettings {
        mode,
        retry_max: 3,
        retry_budget: std::time::Duration::from_secs(10),
        rewrite_max_age: std::time::Duration::from_secs(60),
        rewrite_allow: vec!["FrEduVecteur".to_owned()],
        same_establishment: bonenfant::config::SameEstablishment::Ask,
        flip_window: std::time::Duration::from_secs(600),
    }
}

#[test]
fn a_child_the_directory_does_not_give_the_parent_is_flagged_and_never_rewritten() {
    let (index, _) = load(&[&fixture("aaf/export")]);
    let inspector = Inspector {
        establishment: EstablishmentPattern::default(),
        rules: ExtractionRules::default(),
        index: index.into(),
    };
    let service = "https://0330101a.index-education.net/pronote/parent.html";
    // The ENT hands Claire Julien's Chloé, then her own Léa: reorder could "fix" it.
    let mut attributes = Attributes::new();
    attributes.push("categories", "National_2");
    attributes.push("FrEduVecteur", "2|MARTIN|Claire|837003|0330101A");
    attributes.push("FrEduVecteur", "2|MARTIN|Claire|837001|0330101A");
    let assertion = Assertion {
        principal: "claire.martin".to_owned(),
        attributes,
        ..Assertion::default()
    };
    // Claire pinned Léa on the chooser: reorder would have the value to move first.
    let session = SessionState {
        principal: Some("claire.martin".to_owned()),
        pin: Some(key("0330101A", "837001")),
        ..SessionState::default()
    };
    let inspection = inspector.inspect(&assertion, service, Some(&session), None);
    assert_eq!(
        (
            inspection.judgement.verdict.as_str(),
            inspection.judgement.rule
        ),
        ("wrong_child", "not_a_child_of_principal")
    );
    assert!(inspection.intent.is_some(), "Léa, pinned");
    let decide = |inspection, assertion| {
        pin::decide_front(
            &settings(PinMode::Rewrite),
            inspection,
            assertion,
            Some(&session),
            service,
            Attempts::default(),
            0,
        )
    };
    let decision = decide(&inspection, &assertion);
    assert!(
        matches!(decision, FrontDecision::Relogin { refused: None }),
        "{decision:?}"
    );
    // Her own child, second in the list, is a sibling mix-up, which reorder may fix.
    let mut attributes = Attributes::new();
    attributes.push("categories", "National_2");
    attributes.push("FrEduVecteur", "2|MARTIN|Claire|837002|0330202B");
    attributes.push("FrEduVecteur", "2|MARTIN|Claire|837001|0330101A");
    let own = Assertion {
        principal: "claire.martin".to_owned(),
        attributes,
        ..Assertion::default()
    };
    let inspection = inspector.inspect(&own, service, Some(&session), None);
    assert_eq!(inspection.judgement.rule, "uai_mismatch");
    let decision = decide(&inspection, &own);
    assert!(
        matches!(
            decision,
            FrontDecision::Deliver {
                action: PinOutcome::Reorder,
                ..
            }
        ),
        "{decision:?}"
    );
}

/// A test ENT that always asserts a parent's first child.
async fn first_child_ent(directory: &Arc<Directory>) -> bonenfant::sim::EntHandle {
    let options = EntOptions {
        pick: Pick::First,
        ..EntOptions::ose_random(1)
    };
    TestEnt::spawn_local(Arc::clone(directory), options)
        .await
        .unwrap()
}

/// bonenfant (`--pin retry`) with the directory read from the AAF files in `dir`, in
/// front of a test ENT that always asserts a parent's first child in `ent_view`, and a
/// test Pronote behind.
async fn aaf_stack(
    ent_view: Arc<Directory>,
    dir: &tempfile::TempDir,
    tweak: impl FnOnce(&mut RawConfig),
) -> crate::pin_support::Stack {
    let aaf = dir.path().to_owned();
    crate::pin_support::Stack::start_without_index(
        ent_view,
        EntOptions {
            pick: Pick::First,
            ..EntOptions::ose_random(1)
        },
        PinMode::Retry,
        |raw| {
            raw.directory = Some(vec![aaf]);
            tweak(raw);
        },
    )
    .await
}

/// bonenfant in front of a test ENT (always asserting the first child) and a test
/// Pronote, with the directory index loaded from AAF files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chooser_lists_every_child_from_the_index_on_a_first_visit() {
    let truth =
        Arc::new(Directory::load(&fixture("sim/directory.toml")).expect("committed directory"));
    let dir = written(&truth, &AafOptions::default());
    let stack = aaf_stack(truth, &dir, |_| {}).await;
    let pronote = &stack.pronote;
    // Julien: Chloé and Lucas at 0330101A; the ENT asserts Chloé and nothing else.
    let page = pronote.parent_page("0330101A").unwrap();
    let mut browser = Browser::new();
    let login = browser::parent_login(&mut browser, &page, "julien.durand", "demo-julien")
        .await
        .unwrap();
    let (_, choices) = browser::choices(&login.page, "child").expect("the chooser");
    let labels: Vec<&str> = choices.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(
        labels[0].contains("Chloé") && labels[0].contains("3C"),
        "{labels:?}"
    );
    assert!(
        labels[1].contains("Lucas") && labels[1].contains("5A"),
        "{labels:?}"
    );
    stack.stop().await;
}

/// An ENT that asserts another family's child (Léa) for Julien: bonenfant's index,
/// loaded from the académie's files, says she is not his. The verdict names it, and the
/// chooser offers only his own children: a parent is never pinned to a stranger's child.
#[tokio::test(flavor = "current_thread")]
async fn a_stranger_the_ent_asserts_is_never_offered_on_the_chooser() {
    let truth =
        Arc::new(Directory::load(&fixture("sim/directory.toml")).expect("committed directory"));
    let dir = written(&truth, &AafOptions::default());
    // The ENT's own (broken) view: Léa first among Julien's children.
    let mut broken = truth.data().clone();
    let julien = broken
        .parents
        .iter_mut()
        .find(|p| p.login == "julien.durand")
        .unwrap();
    julien.children.insert(0, "2605001".to_owned());
    julien.records[0].children.insert(0, "2605001".to_owned());
    let (captured, _guard) = bonenfant::events::capture::capture();
    let broken = Arc::new(Directory::from_data(broken).unwrap());
    let stack = aaf_stack(broken, &dir, |raw| raw.retry_max = Some(2)).await;
    let (pronote, proxy) = (&stack.pronote, &stack.proxy);
    let page = pronote.parent_page("0330101A").unwrap();
    let mut browser = Browser::new();
    let _ = browser::parent_login(&mut browser, &page, "julien.durand", "demo-julien").await;
    let chooser = url::Url::parse(&format!(
        "http://{}/bonenfant/choose?service={}",
        proxy.addr,
        url::form_urlencoded::byte_serialize(page.as_str().as_bytes()).collect::<String>()
    ))
    .unwrap();
    let shown = browser.get(&chooser).await.unwrap();
    let (_, choices) = browser::choices(&shown, "child").expect("the chooser");
    let labels: Vec<&str> = choices.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(labels.iter().all(|l| !l.contains("Léa")), "{labels:?}");
    assert!(
        captured.text().contains("not_a_child_of_principal"),
        "{}",
        captured.text()
    );
    stack.stop().await;
}

/// `demo --directory DIR`: the simulators read the AAF files whole, bonenfant through
/// its own loader; pinning still leaves no wrong child and every chooser shows names.
#[tokio::test(flavor = "current_thread")]
async fn the_demo_runs_from_aaf_files() {
    let params = DirectoryParams {
        families: 30,
        establishments: 3,
        ..DirectoryParams::default()
    };
    let dir = written(&Directory::generate(&params, 11), &AafOptions::default());
    let out_dir = tempfile::tempdir().unwrap();
    let options = bonenfant::demo::DemoOptions {
        logins: 40,
        concurrency: 4,
        seed: 11,
        out_dir: out_dir.path().to_owned(),
        directory: Some(vec![dir.path().to_owned()]),
        ..bonenfant::demo::DemoOptions::default()
    };
    let trace = bonenfant::events::TraceLog::new(
        bonenfant::events::Pseudonymizer::new(&[7; 32]).unwrap(),
        bonenfant::events::LossCounter::default(),
    );
    let mut out = Vec::new();
    let report = bonenfant::demo::run(&options, trace, &mut out)
        .await
        .unwrap();
    let table = String::from_utf8(out).unwrap();
    assert!(
        table.contains("30 families over 3 establishments"),
        "{table}"
    );
    assert_eq!(report.pinning.logins, 40, "{table}");
    assert_eq!(report.pinning.wrong, 0, "{table}");
    assert_eq!(report.pinning.failed_choices, 0, "{table}");
    assert_eq!(report.unverified_landings, 0, "{table}");
    assert!(
        report.observing.flagged >= report.observing.wrong,
        "{table}"
    );
}

/// `bonenfant directory check` on the committed exports and a generated set.
#[test]
fn directory_check_prints_the_figures_and_exits_by_usability() {
    let check = |path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_bonenfant"))
            .args(["directory", "check"])
            .arg(path)
            .output()
            .unwrap()
    };
    let out = check(&fixture("aaf/export"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for line in [
        "establishments: 2\n",
        "pupils: 6\n",
        "parent records: 5 (3 ENT logins, 1 records without a login)\n",
        "parents with children in several establishments: 1\n",
        "problems: none\n",
    ] {
        assert!(stdout.contains(line), "{line:?} in:\n{stdout}");
    }
    let out = check(&fixture("aaf/problems"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "loaded despite problems:\n{stdout}");
    assert!(stdout.contains("problems: 14\n"), "{stdout}");
    assert!(stdout.contains("2 × duplicate_jointure"), "{stdout}");

    let empty = tempfile::tempdir().unwrap();
    let out = check(empty.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing usable"));

    let generated = tempfile::tempdir().unwrap();
    let folder = generated.path().join("aaf");
    let made = Command::new(env!("CARGO_BIN_EXE_bonenfant"))
        .args([
            "sim",
            "directory",
            "--families",
            "60",
            "--establishments",
            "3",
            "--out",
        ])
        .arg(&folder)
        .output()
        .unwrap();
    assert!(made.status.success());
    let out = check(&folder);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("establishments: 3\n"), "{stdout}");
    assert!(stdout.contains("problems: none\n"), "{stdout}");
}

/// A real `bonenfant serve` process: SIGHUP reloads the folder (a new child shows on
/// the chooser) and a broken folder keeps the previous index, saying why.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_directory_and_a_broken_one_keeps_the_previous() {
    let truth =
        Arc::new(Directory::load(&fixture("sim/directory.toml")).expect("committed directory"));
    // Tonight's export, before Lucas was linked to his father.
    let mut before = truth.data().clone();
    for parent in &mut before.parents {
        parent.children.retain(|c| c != "2605004");
        for record in &mut parent.records {
            record.children.retain(|c| c != "2605004");
        }
    }
    let before = Directory::from_data(before).unwrap();
    let folder = tempfile::tempdir().unwrap();
    write_aaf(&before, folder.path(), &AafOptions::default()).unwrap();

    let ent = first_child_ent(&truth).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bonenfant"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", ent.base_url().as_str()])
        .args([
            "--pin",
            "retry",
            "--establishment-pattern",
            SIM_SERVICE_PATTERN,
        ])
        .arg("--directory")
        .arg(folder.path())
        .env("RUST_LOG", "info")
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let serving = Serving(child);
    let cas = url::Url::parse(&format!("http://127.0.0.1:{port}/cas")).unwrap();
    let pronote = TestPronote::spawn_local(Arc::clone(&truth), PronoteOptions::new(cas))
        .await
        .unwrap();
    let page = pronote.parent_page("0330101A").unwrap();
    let log = || std::fs::read_to_string(stderr.path()).unwrap_or_default();
    wait_for("bonenfant serves", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;

    // Julien's first visit: the index knows only Chloé, whom the ENT asserts.
    assert_eq!(
        julien_visits(&page).await,
        None,
        "straight to Pronote: {}",
        log()
    );

    // The nightly export arrives: Lucas is his child too.
    for entry in std::fs::read_dir(folder.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    write_aaf(&truth, folder.path(), &AafOptions::default()).unwrap();
    hangup(&serving);
    wait_for("the reload is logged", || {
        log().contains("directory reloaded")
    })
    .await;
    let labels = julien_visits(&page).await.expect("now the chooser");
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("Lucas")), "{labels:?}");

    // A broken export: the previous index stays, and the log says why.
    for entry in std::fs::read_dir(folder.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"<ficAlimMENESR><addRequest>").unwrap();
    }
    hangup(&serving);
    wait_for("the failure is logged", || {
        log().contains("directory reload failed, the previous index stays")
    })
    .await;
    assert!(log().contains("directory.nothing_usable"), "{}", log());
    let labels = julien_visits(&page).await.expect("still the chooser");
    assert!(labels.iter().any(|l| l.contains("Lucas")), "{labels:?}");
    assert!(alive(&serving), "{}", log());

    let _ = pronote.stop().await;
    let _ = ent.stop().await;
}

/// Julien logs in in a fresh browser: the chooser's labels, or `None` when he lands
/// straight on Pronote.
#[cfg(target_os = "linux")]
async fn julien_visits(page: &url::Url) -> Option<Vec<String>> {
    let mut browser = Browser::new();
    let login = browser::parent_login(&mut browser, page, "julien.durand", "demo-julien")
        .await
        .unwrap();
    browser::choices(&login.page, "child")
        .map(|(_, choices)| choices.into_iter().map(|c| c.label).collect())
}

#[cfg(target_os = "linux")]
fn alive(serving: &Serving) -> bool {
    Path::new(&format!("/proc/{}", serving.0.id())).exists()
}

#[cfg(target_os = "linux")]
fn hangup(serving: &Serving) {
    let status = Command::new("kill")
        .args(["-HUP", &serving.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `condition` until it holds; the deadline only turns a hang into a failure.
#[cfg(target_os = "linux")]
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Issue 12: the chooser, in Chromium, lists both of Julien's children with the class
/// and the collège name the académie's AAF files give, on his very first visit (the ENT
/// asserts first names only), and a tap on one lands on that child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chooser_names_every_child_from_aaf_files_in_chromium() {
    let Some(mut browser) = crate::browser_support::open(
        "the_chooser_names_every_child_from_aaf_files_in_chromium",
        crate::browser_support::Options::PHONE,
    )
    .await
    else {
        return;
    };
    let truth =
        Arc::new(Directory::load(&fixture("sim/directory.toml")).expect("committed directory"));
    let dir = written(&truth, &AafOptions::default());
    let stack = crate::pin_support::Stack::start_without_index(
        Arc::clone(&truth),
        EntOptions::ose_random(11),
        PinMode::Retry,
        |raw| raw.directory = Some(vec![dir.path().to_owned()]),
    )
    .await;
    browser.goto(&stack.pronote_page("0330101A")).await;
    browser.sign_in("julien.durand", "demo-julien").await;
    browser.wait_for("form button[name=child]").await;
    browser.screenshot("chooser-from-aaf").await;
    let buttons = browser.find_all("form button[name=child]").await;
    assert_eq!(buttons.len(), 2, "one button per child");
    for (name, class) in [("Chloé", "3C"), ("Lucas", "5A")] {
        let button = browser
            .find_by_text("form button[name=child]", name)
            .await
            .unwrap_or_else(|| panic!("{name} is offered by name"));
        let text = browser.text(&button).await;
        assert!(text.contains(class), "{text}");
        assert!(text.contains("Collège Jean Moulin"), "{text}");
    }
    let lucas = browser
        .find_by_text("form button[name=child]", "Lucas")
        .await
        .unwrap();
    browser.click(&lucas).await;
    let landed = browser.landed().await;
    assert_eq!(landed.eleve_id, "837004", "landed on {landed:?}");
    browser.quit().await;
    stack.stop().await;
}
