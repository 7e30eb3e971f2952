//! `bonenfant lookup`, the helpdesk's view of one family: two bonenfant instances, each
//! writing its own trace, see scripted parents log in; the binary, given the pseudonym
//! key and one parent's login, finds every event naming that family in both traces,
//! and none of any other family.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use bonenfant::config::PinMode;
use bonenfant::events::{capture, Pseudonymizer};
use bonenfant::sim::browser::{self, Browser};
use bonenfant::sim::{
    write_aaf, AafOptions, Directory, DirectoryParams, EntOptions, Synthetic as _,
};

use crate::pin_support::{Stack, PSEUDONYM_KEY};

/// Every scripted parent's visits through one instance, its trace as written.
async fn instance_trace(directory: &Arc<Directory>, parents: &[&str], seed: u64) -> String {
    let (captured, guard) = capture::capture();
    let stack = Stack::start(
        Arc::clone(directory),
        EntOptions::ose_random(seed),
        PinMode::Retry,
        |_| {},
    )
    .await;
    let mut browsers: BTreeMap<String, Browser> = BTreeMap::new();
    for visit in directory.visits(stack.pronote.base_url()) {
        if !parents.contains(&visit.login.as_str()) {
            continue;
        }
        let browser = browsers.entry(visit.login.clone()).or_default();
        browser::parent_login(browser, &visit.pronote_url, &visit.login, &visit.password)
            .await
            .unwrap();
    }
    stack.stop().await;
    drop(guard);
    captured.text()
}

#[tokio::test(flavor = "current_thread")]
async fn lookup_finds_one_family_in_two_instances_traces_and_nobody_else() {
    let directory = Arc::new(Directory::generate(
        &DirectoryParams {
            families: 12,
            establishments: 3,
            ..DirectoryParams::default()
        },
        5,
    ));
    // The family the helpdesk looks for has children in two collèges: the ENT's random
    // pick makes bonenfant re-log in (one child per collège: no chooser to answer).
    let probe = url::Url::parse("http://pronote.invalid/").unwrap();
    let family = directory
        .parents()
        .iter()
        .find(|p| {
            directory
                .visits(&probe)
                .iter()
                .any(|v| v.login == p.login && v.children >= 2 && v.children == v.establishments)
        })
        .expect("a family with one child in each of two collèges");
    let others: Vec<&str> = directory
        .parents()
        .iter()
        .filter(|p| p.login != family.login)
        .map(|p| p.login.as_str())
        .take(5)
        .collect();
    let mut everyone = others.clone();
    everyone.push(&family.login);
    let a = instance_trace(&directory, &everyone, 1).await;
    let b = instance_trace(&directory, &everyone, 2).await;

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pseudonym.key");
    std::fs::write(&key, PSEUDONYM_KEY).unwrap();
    let (trace_a, trace_b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&trace_a, &a).unwrap();
    std::fs::write(&trace_b, &b).unwrap();
    // The directory as the DSI holds it: the académie's nightly AAF exports.
    let directory_file = dir.path().join("aaf");
    write_aaf(&directory, &directory_file, &AafOptions::default()).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_bonenfant"))
        .args(["lookup", "--format", "json", "--login", &family.login])
        .arg("--pseudonym-key-file")
        .arg(&key)
        .arg("--directory")
        .arg(&directory_file)
        .args([&trace_a, &trace_b])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let timeline: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let pseudonyms = Pseudonymizer::new(PSEUDONYM_KEY).unwrap();
    let ours = pseudonyms.principal(&family.login).as_str().to_owned();
    assert_eq!(timeline["principal"], ours.as_str());
    let steps: Vec<&serde_json::Value> = timeline["logins"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|login| login["steps"].as_array().unwrap())
        .collect();
    // Every event naming the family, in both traces, and nothing naming anyone else.
    let named = |trace: &str| {
        trace
            .lines()
            .filter(|line| line.contains(&format!("\"principal\":\"{ours}\"")))
            .count()
    };
    let found = steps
        .iter()
        .filter(|s| s["principal"] == ours.as_str())
        .count();
    assert_eq!(found, named(&a) + named(&b), "{timeline:#}");
    assert!(
        steps
            .iter()
            .all(|s| s["principal"] == ours.as_str() || s["principal"].is_null()),
        "{timeline:#}"
    );
    for other in &others {
        let theirs = pseudonyms.principal(other);
        assert!(!String::from_utf8_lossy(&out.stdout).contains(theirs.as_str()));
    }
    // Both instances, each visit's landing, and the children named from the directory.
    let validations = steps.iter().filter(|s| s["event"] == "validate").count();
    let visits = directory
        .visits(&probe)
        .iter()
        .filter(|v| v.login == family.login)
        .count();
    assert_eq!(validations, 2 * visits, "{timeline:#}");
    let sources: std::collections::BTreeSet<&str> =
        steps.iter().filter_map(|s| s["source"].as_str()).collect();
    assert_eq!(sources.len(), 2);
    let child = directory
        .children_of(family)
        .next()
        .map(|c| c.first_name.clone())
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&child),
        "{timeline:#}"
    );
    // The trace holds no ticket, and neither does the timeline.
    capture::assert_no_leaks(&String::from_utf8_lossy(&out.stdout), &[]);

    // Text for the helpdesk: one block per login.
    let text = Command::new(env!("CARGO_BIN_EXE_bonenfant"))
        .args(["lookup", "--login", &family.login])
        .arg("--pseudonym-key-file")
        .arg(&key)
        .args([&trace_a, &trace_b])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Connexion 1 — "), "{text}");
    assert!(text.contains("Le parent a vu : "), "{text}");
}
