//! `bonenfant report` over fixture traces whose figures were counted by hand:
//! `tests/fixtures/trace/sample.jsonl` (two days, two establishments and an unknown
//! one, staff and pupil logins, a failed validation, four bad lines) and
//! `tests/fixtures/trace/runs.jsonl` (three runs: events before the file's first
//! `startup`, an observing run, a pinning run with re-logins, the chooser, a give-up
//! and a "continue anyway").

use bonenfant::report::{self, Format, Options, Report, Summary, Zone};

const SAMPLE: &str = include_str!("fixtures/trace/sample.jsonl");
const RUNS: &str = include_str!("fixtures/trace/runs.jsonl");

fn sample() -> Report {
    report::summarize(SAMPLE.as_bytes()).unwrap()
}

fn render(format: Format) -> String {
    let mut out = Vec::new();
    report::run(SAMPLE.as_bytes(), format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn counts_validations_and_verdicts() {
    let report = sample();
    assert_eq!(report.lines, 27);
    let r = &report.totals;
    assert_eq!(r.validations, 12);
    assert_eq!(r.parent_validations, 9);
    assert_eq!(r.verdicts["ok"], 5);
    assert_eq!(r.verdicts["wrong_child"], 2);
    assert_eq!(r.verdicts["wrong_establishment"], 1);
    assert_eq!(r.verdicts["flip"], 1);
    assert_eq!(r.verdicts["ambiguous"], 1);
    assert_eq!(r.verdicts["unresolved"], 2);
    assert_eq!(r.wrong_landings, 3);
    assert!((r.wrong_landing_rate - 1.0 / 3.0).abs() < 1e-9);
}

#[test]
fn counts_families_by_pseudonym() {
    let r = sample().totals;
    assert_eq!(r.families_seen, 8);
    // Only the three families Pronote handed a wrong child; the flip and the ambiguous
    // validation alert, but harmed nobody for sure.
    assert_eq!(r.families_affected, 3);
    // The retried login, and the parent who chose on the chooser page.
    assert_eq!(r.families_helped, 2);
    assert_eq!(r.flagged, 7);
}

#[test]
fn splits_by_establishment() {
    let r = sample();
    let keys: Vec<_> = r
        .by_establishment
        .iter()
        .map(|row| row.key.as_str())
        .collect();
    assert_eq!(keys, ["0330012A", "0330099Z", "unknown"]);
    let a = &r.by_establishment[0];
    assert_eq!(
        (a.validations, a.parent_validations, a.wrong_child),
        (7, 5, 1)
    );
    assert_eq!((a.ambiguous, a.families_affected), (1, 1));
    assert!((a.wrong_landing_rate - 0.2).abs() < 1e-9);
    let z = &r.by_establishment[1];
    assert_eq!((z.validations, z.parent_validations), (4, 3));
    assert_eq!(
        (z.wrong_child, z.wrong_establishment, z.flip, z.unresolved),
        (1, 1, 1, 1)
    );
    assert!((z.wrong_landing_rate - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(r.by_establishment[2].unresolved, 1);
}

#[test]
fn splits_by_day() {
    let r = sample();
    let days: Vec<_> = r
        .by_day
        .iter()
        .map(|row| (row.key.as_str(), row.validations, row.parent_validations))
        .collect();
    // Days on the Paris clock (UTC+1 in March): nothing crosses midnight here.
    assert_eq!(days, [("2026-03-09", 6, 5), ("2026-03-10", 6, 4)]);
    assert!((r.by_day[0].wrong_landing_rate - 0.4).abs() < 1e-9);
    assert!((r.by_day[1].wrong_landing_rate - 0.25).abs() < 1e-9);
}

#[test]
fn counts_pin_outcomes_retries_and_errors() {
    let report = sample();
    let r = &report.totals;
    assert_eq!(
        (r.pin["none"], r.pin["retry"], r.pin["gave_up"]),
        (10, 1, 1)
    );
    assert_eq!(r.pin["rewrite"], 0);
    let retries: Vec<_> = r.retries.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(retries, [(0, 10), (2, 1), (8, 1)]);
    assert_eq!(
        (r.corrected.total, r.give_ups, r.continued_anyway, r.choices),
        (1, 1, 1, 1)
    );
    let errors: Vec<_> = report
        .errors
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        errors,
        [
            ("cas.ticket.malformed", 1),
            ("pin.csrf", 1),
            ("proxy.upstream_connect", 1),
            ("proxy.upstream_timeout", 1)
        ]
    );
    assert_eq!(report.events_lost, 2);
    assert_eq!(report.events["retry"], 1);
    assert_eq!(report.events["shutdown"], 1);
}

#[test]
fn reports_bad_lines_with_their_numbers() {
    let r = sample();
    assert_eq!(r.bad_lines.count, 4);
    assert_eq!(r.bad_lines.first, [6, 13, 17, 23]);
    assert_eq!(r.bad_lines.by_reason["not_json"], 2);
    assert_eq!(r.bad_lines.by_reason["unknown_event"], 1);
    assert_eq!(r.bad_lines.by_reason["bad_field"], 1);
}

#[test]
fn json_format_round_trips_the_figures() {
    let value: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
    assert_eq!(value["validations"], 12);
    assert_eq!(value["by_establishment"][0]["key"], "0330012A");
    assert_eq!(value["bad_lines"]["count"], 4);
}

#[test]
fn text_format_shows_the_headline_figures() {
    let text = render(Format::Text);
    assert!(
        text.contains("  Validations                     12"),
        "{text}"
    );
    assert!(text.contains("33.3 %"));
    assert!(text.contains("0330099Z"));
    assert!(!text.contains('\u{1b}'));
}

#[test]
fn html_is_self_contained_and_escaped() {
    let html = render(Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("class=\"bars\""));
    assert!(html.contains("33,3\u{a0}%"));
    for forbidden in ["<script", "src=", "href=", "@import", "url("] {
        assert!(
            !html.contains(forbidden),
            "HTML must not contain {forbidden}"
        );
    }
}

#[test]
fn markup_in_the_log_is_escaped_in_html() {
    let log = r#"{"ts":"2026-03-09T17:00:00Z","event":"rejected","code":"<script>alert(1)</script>","endpoint":null,"status":400,"latency_ms":1}"#;
    let mut out = Vec::new();
    report::run(log.as_bytes(), Format::Html, &mut out).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

/// A forged or corrupted log names hostile error codes in every event that carries one.
#[test]
fn hostile_error_codes_in_every_event_are_escaped_in_html() {
    let hostile = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "' onmouseover='alert(1)",
        "a&b",
    ];
    let mut log = String::new();
    for (i, code) in hostile.iter().enumerate() {
        let code = serde_json::to_string(code).unwrap();
        log.push_str(&format!(
            r#"{{"ts":"2026-03-09T17:0{i}:00Z","event":"rejected","code":{code},"endpoint":null,"status":400,"latency_ms":1}}
{{"ts":"2026-03-09T17:0{i}:01Z","event":"upstream_error","code":{code},"endpoint":"login","status":502,"latency_ms":1}}
{{"ts":"2026-03-09T17:0{i}:02Z","event":"pin_refused","code":{code},"principal":null,"session":null}}
{{"ts":"2026-03-09T17:0{i}:03Z","event":"validate","verdict":"unresolved","rule":"no_expected_establishment","endpoint":"serviceValidate","uai_expected":null,"uai_asserted":null,"pin":"none","retries":0,"latency_ms":1,"principal":null,"pupil":null,"session":null,"error":{code}}}
"#
        ));
    }
    let mut out = Vec::new();
    let r = report::run(log.as_bytes(), Format::Html, &mut out).unwrap();
    assert_eq!(r.bad_lines.count, 0, "{:?}", r.bad_lines);
    let html = String::from_utf8(out).unwrap();
    for code in hostile {
        assert_eq!(r.errors[code], 4);
        let shown = code
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        assert!(html.contains(&format!("<code>{shown}</code>")), "{code}");
    }
    for injected in ["<script", "<img"] {
        assert!(!html.contains(injected), "{injected} in the page");
    }
}

/// A UAI is checked when read: markup in `uai_expected` is a bad line, never a row.
#[test]
fn hostile_uai_is_a_bad_line_not_a_row() {
    let log = r#"{"ts":"2026-03-09T17:01:00.000Z","event":"validate","verdict":"ok","rule":"intent.pin","endpoint":"serviceValidate","uai_expected":"<img src=x onerror=alert(1)>","uai_asserted":"0330012A","pin":"none","retries":0,"latency_ms":1,"principal":"p","pupil":"q","session":null,"error":null}"#;
    let mut out = Vec::new();
    let r = report::run(log.as_bytes(), Format::Html, &mut out).unwrap();
    assert_eq!(r.bad_lines.by_reason["bad_field"], 1);
    assert!(r.by_establishment.is_empty());
    let html = String::from_utf8(out).unwrap();
    assert!(!html.contains("<img") && !html.contains("onerror"));
}

#[test]
fn empty_log_gives_an_empty_report() {
    let r = report::summarize(&b""[..]).unwrap();
    assert_eq!(
        (r.totals.validations, r.totals.wrong_landing_rate),
        (0, 0.0)
    );
    let mut out = Vec::new();
    report::run(&b""[..], Format::Html, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("Aucune donnée"));
}

fn runs_with(options: &Options, copies: usize) -> Report {
    let mut summary = Summary::new(options);
    for n in 0..copies {
        summary
            .read(&format!("instance-{n}.jsonl"), RUNS.as_bytes())
            .unwrap();
    }
    summary.finish()
}

fn runs() -> Report {
    runs_with(&Options::default(), 1)
}

#[test]
fn each_startup_starts_a_run_with_its_strategy() {
    let r = runs();
    let summary: Vec<_> = r
        .runs
        .iter()
        .map(|run| {
            (
                run.number,
                run.pin_strategy.as_deref(),
                run.figures.validations,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(1, None, 1), (2, Some("observe"), 2), (3, Some("retry"), 4)]
    );
    let observe = &r.runs[1];
    assert_eq!(observe.store.as_deref(), Some("memory"));
    assert_eq!(observe.stopped.as_deref(), Some("2026-03-09T19:00:00.000Z"));
    assert_eq!(observe.shutdown_reason.as_deref(), Some("signal"));
    assert_eq!(r.runs[2].store.as_deref(), Some("redis"));
    assert_eq!(r.runs[2].stopped, None);
}

#[test]
fn runs_of_one_strategy_are_grouped_never_blended_with_another() {
    let r = runs_with(&Options::default(), 2);
    let groups: Vec<_> = r
        .by_strategy
        .iter()
        .map(|g| {
            (
                g.pin_strategy.as_deref(),
                g.runs.clone(),
                g.figures.validations,
                g.figures.wrong_landings,
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            (None, vec![1, 4], 2, 0),
            (Some("observe"), vec![2, 5], 4, 2),
            (Some("retry"), vec![3, 6], 8, 2),
        ]
    );
    let retry = &r.by_strategy[2];
    assert_eq!(retry.by_establishment[1].give_ups, 2);
}

#[test]
fn observing_run_counts_its_wrong_landing_as_harm() {
    let f = &runs().runs[1].figures;
    assert_eq!((f.parent_validations, f.wrong_landings), (2, 1));
    assert!((f.wrong_landing_rate - 0.5).abs() < 1e-9);
    assert_eq!(
        (f.families_seen, f.families_affected, f.families_helped),
        (2, 1, 0)
    );
    assert_eq!((f.flagged, f.corrected.total, f.relogins.logins), (1, 0, 0));
}

#[test]
fn pinning_run_counts_help_give_ups_choices_and_relogins() {
    let f = &runs().runs[2].figures;
    // The give-up the parent went past with "continue anyway" is the one harm.
    assert_eq!((f.validations, f.wrong_landings), (4, 1));
    assert_eq!((f.corrected.total, f.corrected.retry), (2, 2));
    assert_eq!((f.choices, f.chooser_pages, f.chooser_asked), (2, 1, 1));
    assert_eq!((f.give_ups, f.give_ups_by_reason["attempts"]), (1, 1));
    assert_eq!(f.continued_anyway, 1);
    assert_eq!(f.flagged, 2);
    assert_eq!(
        (f.families_seen, f.families_affected, f.families_helped),
        (3, 1, 3)
    );
    let r = &f.relogins;
    let distribution: Vec<_> = r.distribution.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(distribution, [(0, 1), (1, 1), (3, 1), (8, 1)]);
    assert_eq!((r.logins, r.total), (4, 12));
    assert_eq!((r.p50, r.p90, r.p99, r.max), (1, 8, 8, 8));
}

#[test]
fn totals_add_the_runs_up_and_count_each_family_once() {
    let t = runs().totals;
    assert_eq!((t.validations, t.wrong_landings), (7, 2));
    assert_eq!(
        (t.families_seen, t.families_affected, t.families_helped),
        (5, 2, 3)
    );
}

#[test]
fn establishments_carry_help_choices_give_ups_and_names() {
    let options = Options {
        names: [("0330012A".to_owned(), "Collège Montaigne".to_owned())].into(),
        ..Options::default()
    };
    let r = runs_with(&options, 1);
    let rows: Vec<_> = r
        .by_establishment
        .iter()
        .map(|row| {
            (
                row.key.as_str(),
                row.name.as_deref(),
                row.validations,
                row.wrong_landings,
                row.corrected,
                row.choices,
                row.give_ups,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("0330012A", Some("Collège Montaigne"), 4, 1, 1, 1, 0),
            ("0330099Z", None, 3, 1, 1, 1, 1),
        ]
    );
    let text = {
        let mut out = Vec::new();
        report::write(&r, Format::Text, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert!(text.contains("0330012A Collège Montaigne"), "{text}");
    let mut out = Vec::new();
    report::write(&r, Format::Html, &mut out).unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("<td class=\"name\">Collège Montaigne</td>"));
}

#[test]
fn hours_of_day_are_on_the_paris_clock_by_default() {
    let r = runs();
    let hours: Vec<_> = r
        .by_hour
        .iter()
        .filter(|h| h.validations > 0)
        .map(|h| (h.key.as_str(), h.validations, h.wrong_landings))
        .collect();
    // UTC+1 in March: 16:59Z is 17 h in Paris, 19:11Z is 20 h.
    assert_eq!(
        hours,
        [("17", 1, 0), ("18", 1, 1), ("19", 3, 0), ("20", 2, 1)]
    );
    let utc = runs_with(
        &Options {
            zone: Zone::Utc,
            ..Options::default()
        },
        1,
    );
    assert_eq!(utc.by_hour[16].validations, 1);
    assert_eq!(utc.time_zone, "UTC");
}

#[test]
fn a_window_keeps_the_runs_it_saw_with_their_strategy() {
    let options = Options {
        since: Some(Zone::Paris.parse_bound("2026-03-10").unwrap()),
        ..Options::default()
    };
    let r = runs_with(&options, 1);
    assert_eq!(r.runs.len(), 1);
    assert_eq!(r.runs[0].pin_strategy.as_deref(), Some("retry"));
    assert_eq!(r.totals.validations, 4);
    // The first run's validation, the observing run's redirect and two validations.
    assert_eq!(r.window.outside, 4);
    assert_eq!(r.window.since.as_deref(), Some("2026-03-09T23:00:00Z"));
}

#[test]
fn two_instances_traces_keep_their_own_runs() {
    let r = runs_with(&Options::default(), 2);
    assert_eq!(r.runs.len(), 6);
    assert_eq!(r.runs[3].source, "instance-1.jsonl");
    // The second file's first events belong to no run of the first file.
    assert_eq!(r.runs[3].pin_strategy, None);
    assert_eq!(r.runs[3].figures.validations, 1);
    assert_eq!(r.totals.validations, 14);
    // Same pseudonyms in both: the same families, counted once.
    assert_eq!(r.totals.families_seen, 5);
}

#[test]
fn json_has_the_runs_and_the_totals_at_the_top() {
    let mut out = Vec::new();
    report::write(&runs(), Format::Json, &mut out).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["validations"], 7);
    assert_eq!(value["runs"][2]["pin_strategy"], "retry");
    assert_eq!(value["runs"][2]["figures"]["relogins"]["p90"], 8);
    assert_eq!(value["by_hour"].as_array().unwrap().len(), 24);
}
