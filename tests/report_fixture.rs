//! `bonenfant report` over a fixture trace whose figures were counted by hand
//! (`tests/fixtures/trace/sample.jsonl`: two days, two establishments and an unknown
//! one, staff and pupil logins, a failed validation, four bad lines).

use bonenfant::report::{self, Format, Report};

const SAMPLE: &str = include_str!("fixtures/trace/sample.jsonl");

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
    let r = sample();
    assert_eq!(r.lines, 27);
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
    let r = sample();
    assert_eq!(r.families_seen, 8);
    assert_eq!(r.families_affected, 5);
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
    assert_eq!((a.ambiguous, a.families_affected), (1, 2));
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
    assert_eq!(days, [("2026-03-09", 6, 5), ("2026-03-10", 6, 4)]);
    assert!((r.by_day[0].wrong_landing_rate - 0.4).abs() < 1e-9);
    assert!((r.by_day[1].wrong_landing_rate - 0.25).abs() < 1e-9);
}

#[test]
fn counts_pin_outcomes_retries_and_errors() {
    let r = sample();
    assert_eq!(
        (r.pin["none"], r.pin["retry"], r.pin["gave_up"]),
        (10, 1, 1)
    );
    assert_eq!(r.pin["rewrite"], 0);
    let retries: Vec<_> = r.retries.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(retries, [(0, 10), (2, 1), (8, 1)]);
    let errors: Vec<_> = r.errors.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        errors,
        [
            ("cas.ticket.malformed", 1),
            ("pin.csrf", 1),
            ("proxy.upstream_connect", 1),
            ("proxy.upstream_timeout", 1)
        ]
    );
    assert_eq!(r.events_lost, 2);
    assert_eq!(r.events["retry"], 1);
    assert_eq!(r.events["shutdown"], 1);
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
    assert!(text.contains("Validations                    12"));
    assert!(text.contains("33.3 %"));
    assert!(text.contains("0330099Z"));
    assert!(!text.contains('\u{1b}'));
}

#[test]
fn html_is_self_contained_and_escaped() {
    let html = render(Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"));
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
    assert_eq!((r.validations, r.wrong_landing_rate), (0, 0.0));
    let mut out = Vec::new();
    report::run(&b""[..], Format::Html, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("Aucune donnée"));
}
