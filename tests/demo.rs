//! The demo's figures, asserted with honest tolerances (README.md): observing leaves the
//! wrong-child share near what the family mix predicts; pinning leaves none, and every
//! success Pronote accepted through it is what the ENT asserted for that ticket.

use bonenfant::demo::{self, DemoOptions};
use bonenfant::events::{capture, TraceLog};
use bonenfant::sim::Synthetic;

#[tokio::test(flavor = "current_thread")]
async fn demo_pins_every_login_and_observing_matches_the_family_mix() {
    let (captured, _guard) = capture::capture();
    let trace = TraceLog::new(
        bonenfant::events::Pseudonymizer::new(&[7u8; 32]).unwrap(),
        bonenfant::events::LossCounter::default(),
    );
    let options = DemoOptions {
        families: 60,
        logins: 120,
        concurrency: 8,
        seed: 7,
        ..DemoOptions::default()
    };
    let mut out = Vec::new();
    let report = demo::run(&options, trace, &mut out).await.unwrap();
    let table = String::from_utf8(out).unwrap();

    for run in [&report.direct, &report.observing, &report.pinning] {
        assert_eq!(run.logins, 120, "{table}");
    }
    // A random pick among k children lands wrong with probability (k-1)/k: over 120
    // logins the observed share stays within 15 points of the expectation.
    for run in [&report.direct, &report.observing] {
        let share = run.wrong as f64 / run.logins as f64;
        assert!(
            (share - report.expected_wrong_share).abs() < 0.15,
            "wrong share {share:.2} vs expected {:.2}\n{table}",
            report.expected_wrong_share
        );
        assert_eq!(run.right + run.wrong + run.not_landed, run.logins);
    }
    // Observing changes nothing but sees: at least every wrong landing is flagged.
    assert!(
        report.observing.flagged >= report.observing.wrong,
        "{table}"
    );
    assert_eq!(report.observing.pinned, 0);
    // Pinning: no wrong child, ever; what did not land is the retry budget giving up.
    assert_eq!(report.pinning.wrong, 0, "{table}");
    assert!(report.pinning.right >= 110, "{table}");
    assert!(report.pinning.pinned > 0, "{table}");
    assert_eq!(report.unverified_landings, 0, "{table}");
    // The proxy has the directory, so every chooser shows first names.
    assert_eq!(report.pinning.failed_choices, 0, "{table}");

    // One validate event per back-channel validation of both proxies, and no ticket in
    // the trace.
    let validations = captured.named("validate").len() as u64;
    assert!(
        validations >= report.observing.logins + report.pinning.right,
        "{validations}"
    );
    let directory = <bonenfant::pupil::directory::Directory as Synthetic>::generate(
        &bonenfant::sim::DirectoryParams {
            families: options.families,
            establishments: options.establishments,
            ..Default::default()
        },
        options.seed,
    );
    let logins: Vec<&str> = directory
        .parents()
        .iter()
        .map(|p| p.login.as_str())
        .collect();
    captured.assert_no_leaks(&logins);
}

/// The scripted parents answer bonenfant's chooser by the first name it shows, never by
/// anything the proxy computes: without the directory the chooser names no child
/// ("Enfant n°1"), so every chooser they meet counts as a failed choice and none is
/// answered.
#[tokio::test(flavor = "current_thread")]
async fn without_the_directory_the_scripted_parents_cannot_answer_the_chooser() {
    let (_captured, _guard) = capture::capture();
    let trace = TraceLog::new(
        bonenfant::events::Pseudonymizer::new(&[7u8; 32]).unwrap(),
        bonenfant::events::LossCounter::default(),
    );
    let options = DemoOptions {
        proxy_directory: false,
        ..DemoOptions::default()
    };
    let mut out = Vec::new();
    let report = demo::run(&options, trace, &mut out).await.unwrap();
    let table = String::from_utf8(out).unwrap();
    assert_eq!(report.pinning.chosen, 0, "{table}");
    assert!(report.pinning.failed_choices > 0, "{table}");
    assert!(
        table.contains("found no label with their child's first name"),
        "{table}"
    );
    assert_eq!(report.unverified_landings, 0, "{table}");
}
