//! The demo's figures, asserted with honest tolerances (README.md): observing leaves the
//! wrong-child share near what the family mix predicts; pinning leaves none, and every
//! success Pronote accepted through it is what the ENT asserted for that ticket. And
//! `bonenfant report`, reading the demo's own trace, tells the demo's table again, run
//! by run and collège by collège.

use bonenfant::demo::{self, DemoOptions, DemoReport};
use bonenfant::events::{capture, TraceLog};
use bonenfant::report::{Options, Summary};
use bonenfant::sim::Synthetic;

fn trace() -> TraceLog {
    TraceLog::new(
        bonenfant::events::Pseudonymizer::new(&[7u8; 32]).unwrap(),
        bonenfant::events::LossCounter::default(),
    )
}

/// Runs the demo; its report, its printed table, and the trace it wrote.
async fn run_demo(options: &DemoOptions) -> (DemoReport, String, capture::Captured) {
    let (captured, guard) = capture::capture();
    let mut out = Vec::new();
    let report = demo::run(options, trace(), &mut out).await.unwrap();
    drop(guard);
    (report, String::from_utf8(out).unwrap(), captured)
}

#[tokio::test(flavor = "current_thread")]
async fn demo_pins_every_login_and_observing_matches_the_family_mix() {
    let options = DemoOptions {
        families: 60,
        logins: 120,
        concurrency: 8,
        seed: 7,
        ..DemoOptions::default()
    };
    let (report, table, captured) = run_demo(&options).await;

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
    // Every collège is named in full, and the columns are explained, one line each.
    for name in report.establishments.values() {
        assert!(table.contains(name.as_str()), "{name} cut:\n{table}");
    }
    for column in ["flagged ", "pinned ", "chosen ", "requests/login "] {
        let explained = table
            .lines()
            .filter(|line| line.trim_start().starts_with(column))
            .count();
        assert_eq!(explained, 1, "{column}:\n{table}");
    }
}

/// The demo knows what each scripted parent meant and saw; bonenfant's trace knows
/// what bonenfant judged and did. Where both can tell, they agree exactly: Pronote
/// logins, flagged, pinned and chosen per run; logins and wrong children per collège
/// while pinning, logins per collège while observing. While observing, the trace cannot
/// know which of two children of one collège a parent meant, so its "mauvais enfant" is
/// what bonenfant could tell, not the table's "wrong child".
#[tokio::test(flavor = "current_thread")]
async fn the_report_of_the_demo_trace_reconciles_with_its_table() {
    let options = DemoOptions {
        families: 60,
        logins: 120,
        concurrency: 8,
        seed: 11,
        ..DemoOptions::default()
    };
    let (demo, table, captured) = run_demo(&options).await;
    let report_options = Options {
        names: demo.establishments.clone(),
        ..Options::default()
    };
    let mut summary = Summary::new(&report_options);
    summary
        .read("demo.jsonl", captured.text().as_bytes())
        .unwrap();
    let report = summary.finish();
    assert_eq!(report.bad_lines.count, 0, "{:?}", report.bad_lines);

    // One run per bonenfant, in the demo's order, each with its strategy.
    let strategies: Vec<_> = report
        .runs
        .iter()
        .map(|run| run.pin_strategy.as_deref())
        .collect();
    assert_eq!(strategies, [Some("observe"), Some("retry")], "{table}");
    let (observing, pinning) = (&report.runs[0], &report.runs[1]);

    for (figures, run) in [(&demo.observing, observing), (&demo.pinning, pinning)] {
        let f = &run.figures;
        let context = format!("run {}\n{table}", run.number);
        // Each login that reached Pronote is one validation, counted in its run only.
        assert_eq!(f.validations, figures.right + figures.wrong, "{context}");
        assert_eq!(f.flagged, figures.flagged, "{context}");
        assert_eq!(f.corrected.total, figures.pinned, "{context}");
        assert_eq!(f.choices, figures.chosen, "{context}");
        // The scripted parents answer every chooser page they meet.
        assert_eq!(f.chooser_pages, figures.chosen, "{context}");
        // A login that did not land ended on the give-up page (others went past one).
        assert!(f.give_ups >= figures.not_landed, "{context}");
        for (uai, name) in &demo.establishments {
            let row = run.by_establishment.iter().find(|row| &row.key == uai);
            let row = row.unwrap_or_else(|| panic!("{uai} missing from run {}", run.number));
            assert_eq!(row.name.as_ref(), Some(name), "{context}");
        }
    }

    // Observing: every login landed, so each collège's logins are its validations.
    for (uai, (logins, _wrong)) in &demo.observing.per_establishment {
        let row = observing.by_establishment.iter().find(|r| &r.key == uai);
        assert_eq!(row.map(|r| r.validations), Some(*logins), "{uai}\n{table}");
    }
    assert!(observing.figures.wrong_landings > 0, "{table}");
    assert_eq!(observing.figures.corrected.total, 0);

    // Pinning: no wrong child in the table, no harm in the report, collège by collège;
    // the logins a collège lost are the give-ups that ended a visit.
    assert_eq!(
        pinning.figures.wrong_landings, demo.pinning.wrong,
        "{table}"
    );
    assert_eq!(pinning.figures.families_affected, 0);
    let mut not_landed = 0;
    for (uai, (logins, wrong)) in &demo.pinning.per_establishment {
        let row = pinning.by_establishment.iter().find(|r| &r.key == uai);
        let row = row.unwrap_or_else(|| panic!("{uai}\n{table}"));
        assert_eq!(row.wrong_landings, *wrong, "{uai}\n{table}");
        assert!(row.validations <= *logins, "{uai}\n{table}");
        not_landed += logins - row.validations;
    }
    assert_eq!(not_landed, demo.pinning.not_landed, "{table}");

    // Every run together: each family harmed is one the observing run harmed.
    assert_eq!(
        report.totals.families_affected,
        observing.figures.families_affected
    );
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
