//! `bonenfant report TRACE.jsonl`: a trace log → the figures a DSI acts on.
//!
//! [`summarize`] reads the log line by line (bounded memory per line; a bad line is
//! counted with its reason, never fatal) into a [`Report`]: totals, verdicts, the
//! wrong-landing rate per establishment and per day, families affected (distinct
//! pseudonymous principals), pin outcomes, the retry distribution and error codes.
//! [`Report`] renders as text, JSON or one self-contained HTML page ([`run`]).
//!
//! Definitions (also in `docs/events.md`):
//! * *wrong landing*: a `validate` whose verdict is `wrong_child` or
//!   `wrong_establishment`: Pronote was handed a child the parent did not mean.
//! * *parent validations*: successful validations (`error` null) except those of
//!   staff and pupils (`rule` `not_a_parent`, `pupil_self`): the rate's denominator.
//! * *day*: the UTC date of `ts`.

mod html;
mod text;

use crate::code::Code;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};

use crate::events::{PinOutcome, TraceEvent};
use crate::pupil::Uai;
use crate::verdict::{rule, Verdict};

/// Lines longer than this are not trace events (a `validate` line is ~500 bytes).
const MAX_LINE: usize = 64 * 1024;

/// Line numbers of bad lines kept for the report, so a DSI can look at them.
const BAD_LINE_SAMPLES: usize = 20;

/// The key of validations without an expected establishment.
pub const UNKNOWN_ESTABLISHMENT: &str = "unknown";

/// Output format of [`run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
}

/// Why a report could not be produced (bad lines are not errors).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the trace log: {0}")]
    Read(#[source] io::Error),
    #[error("cannot write the report: {0}")]
    Write(#[source] io::Error),
}

impl ReportError {
    pub fn code(&self) -> Code {
        match self {
            ReportError::Read(_) => Code::ReportRead,
            ReportError::Write(_) => Code::ReportWrite,
        }
    }
}

/// Reads `input`, writes the report in `format` to `out`, and returns it (the CLI
/// prints the bad-line count on stderr).
pub fn run(
    input: impl BufRead,
    format: Format,
    mut out: impl Write,
) -> Result<Report, ReportError> {
    let report = summarize(input)?;
    match format {
        Format::Text => text::write(&report, &mut out),
        Format::Json => serde_json::to_writer_pretty(&mut out, &report)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n")),
        Format::Html => html::write(&report, &mut out),
    }
    .and_then(|()| out.flush())
    .map_err(ReportError::Write)?;
    Ok(report)
}

// === Report ===

/// Everything the report shows. Serialised as is for `--format json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Non-empty lines read.
    pub lines: u64,
    /// Valid events by name.
    pub events: BTreeMap<String, u64>,
    pub bad_lines: BadLines,
    /// First and last `ts` seen.
    pub period: Option<Period>,
    /// Every `validate` event.
    pub validations: u64,
    pub parent_validations: u64,
    /// Validations by verdict (every verdict present, zeros included).
    pub verdicts: BTreeMap<&'static str, u64>,
    pub wrong_landings: u64,
    /// `wrong_landings / parent_validations`; 0 when there is none.
    pub wrong_landing_rate: f64,
    /// Distinct principals in validations.
    pub families_seen: u64,
    /// Distinct principals with at least one non-`ok` verdict.
    pub families_affected: u64,
    /// One row per expected establishment, sorted by UAI (`unknown` last).
    pub by_establishment: Vec<Row>,
    /// One row per UTC day, in date order.
    pub by_day: Vec<Row>,
    /// Validations by pin outcome (every outcome present).
    pub pin: BTreeMap<&'static str, u64>,
    /// Validations by number of retries.
    pub retries: BTreeMap<u32, u64>,
    /// Error codes from `validate`, `rejected`, `upstream_error` and `pin_refused`.
    pub errors: BTreeMap<String, u64>,
    /// Events the writer reported lost (`events_lost` counts).
    pub events_lost: u64,
}

impl Report {
    /// Verdict counts in [`Verdict::ALL`] order (`ok` first), for display.
    pub fn verdicts_in_order(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Verdict::ALL.into_iter().map(|v| {
            (
                v.as_str(),
                self.verdicts.get(v.as_str()).copied().unwrap_or(0),
            )
        })
    }

    /// Pin outcome counts in [`PinOutcome::ALL`] order (`none` first), for display.
    pub fn pins_in_order(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        PinOutcome::ALL
            .into_iter()
            .map(|p| (p.as_str(), self.pin.get(p.as_str()).copied().unwrap_or(0)))
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BadLines {
    pub count: u64,
    pub by_reason: BTreeMap<&'static str, u64>,
    /// Line numbers (1-based) of the first bad lines.
    pub first: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: String,
    pub to: String,
}

/// Figures for one establishment or one day.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// UAI, `unknown`, or a `YYYY-MM-DD` day.
    pub key: String,
    pub validations: u64,
    pub parent_validations: u64,
    pub wrong_child: u64,
    pub wrong_establishment: u64,
    pub flip: u64,
    pub ambiguous: u64,
    pub unresolved: u64,
    pub wrong_landing_rate: f64,
    pub families_affected: u64,
}

// === summarize ===

/// The fields of a `validate` line the report needs; the rest is ignored.
#[derive(Deserialize)]
struct ValidateLine {
    ts: String,
    verdict: String,
    rule: String,
    uai_expected: Option<String>,
    pin: String,
    retries: u32,
    principal: Option<String>,
    error: Option<String>,
}

/// The fields of the other lines the report reads.
#[derive(Deserialize)]
struct OtherLine {
    ts: String,
    code: Option<String>,
    count: Option<u64>,
}

/// A validation reduced to what the tallies need.
struct Judged {
    day: String,
    establishment: String,
    verdict: Verdict,
    parent: bool,
    principal: Option<String>,
}

#[derive(Default)]
struct Tally {
    row: Row,
    affected: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, v: &Judged) {
        let row = &mut self.row;
        row.validations += 1;
        row.parent_validations += u64::from(v.parent);
        match v.verdict {
            Verdict::WrongChild => row.wrong_child += 1,
            Verdict::WrongEstablishment => row.wrong_establishment += 1,
            Verdict::Flip => row.flip += 1,
            Verdict::Ambiguous => row.ambiguous += 1,
            Verdict::Unresolved => row.unresolved += 1,
            Verdict::Ok => {}
        }
        if v.verdict != Verdict::Ok {
            if let Some(principal) = &v.principal {
                self.affected.insert(principal.clone());
            }
        }
    }

    fn finish(mut self, key: String) -> Row {
        self.row.key = key;
        self.row.families_affected = self.affected.len() as u64;
        self.row.wrong_landing_rate = rate(
            self.row.wrong_child + self.row.wrong_establishment,
            self.row.parent_validations,
        );
        self.row
    }
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Why a line was not counted as an event.
#[derive(Clone, Copy, Debug)]
enum Skip {
    TooLong,
    NotJson,
    NoEvent,
    UnknownEvent,
    BadField,
}

impl Skip {
    fn as_str(self) -> &'static str {
        match self {
            Skip::TooLong => "too_long",
            Skip::NotJson => "not_json",
            Skip::NoEvent => "no_event",
            Skip::UnknownEvent => "unknown_event",
            Skip::BadField => "bad_field",
        }
    }
}

/// Reads a whole trace log into a [`Report`]. Only I/O errors stop it.
pub fn summarize(mut input: impl BufRead) -> Result<Report, ReportError> {
    let mut builder = Builder::default();
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let read = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(ReportError::Read)?;
        if read == 0 {
            break;
        }
        number += 1;
        let complete = buf.last() == Some(&b'\n');
        if buf.len() > MAX_LINE && !complete {
            skip_rest_of_line(&mut input)?;
            builder.bad(number, Skip::TooLong);
            continue;
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        builder.line(number, line);
    }
    Ok(builder.finish())
}

fn skip_rest_of_line(input: &mut impl BufRead) -> Result<(), ReportError> {
    loop {
        let chunk = input.fill_buf().map_err(ReportError::Read)?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                input.consume(n);
            }
        }
    }
}

#[derive(Default)]
struct Builder {
    report: Report,
    by_establishment: BTreeMap<String, Tally>,
    by_day: BTreeMap<String, Tally>,
    seen: BTreeSet<String>,
    affected: BTreeSet<String>,
}

impl Builder {
    fn bad(&mut self, number: u64, why: Skip) {
        let bad = &mut self.report.bad_lines;
        bad.count += 1;
        *bad.by_reason.entry(why.as_str()).or_default() += 1;
        if bad.first.len() < BAD_LINE_SAMPLES {
            bad.first.push(number);
        }
    }

    fn line(&mut self, number: u64, line: &[u8]) {
        self.report.lines += 1;
        if let Err(why) = self.event(line) {
            self.bad(number, why);
        }
    }

    fn event(&mut self, line: &[u8]) -> Result<(), Skip> {
        let value: serde_json::Value = serde_json::from_slice(line).map_err(|_| Skip::NotJson)?;
        let name = value
            .get("event")
            .and_then(serde_json::Value::as_str)
            .ok_or(Skip::NoEvent)?;
        let name = *TraceEvent::NAMES
            .iter()
            .find(|n| **n == name)
            .ok_or(Skip::UnknownEvent)?;
        if name == "validate" {
            let line: ValidateLine = serde_json::from_value(value).map_err(|_| Skip::BadField)?;
            self.validate(line)?;
        } else {
            let line: OtherLine = serde_json::from_value(value).map_err(|_| Skip::BadField)?;
            day_of(&line.ts)?;
            self.period(&line.ts);
            if let Some(code) = line.code {
                *self.report.errors.entry(code).or_default() += 1;
            }
            if name == "events_lost" {
                self.report.events_lost += line.count.unwrap_or(0);
            }
        }
        *self.report.events.entry(name.to_owned()).or_default() += 1;
        Ok(())
    }

    fn validate(&mut self, line: ValidateLine) -> Result<(), Skip> {
        let verdict = Verdict::parse(&line.verdict).ok_or(Skip::BadField)?;
        let pin = PinOutcome::parse(&line.pin).ok_or(Skip::BadField)?;
        let day = day_of(&line.ts)?;
        let establishment = match &line.uai_expected {
            Some(uai) => Uai::parse(uai).ok_or(Skip::BadField)?.as_str().to_owned(),
            None => UNKNOWN_ESTABLISHMENT.to_owned(),
        };
        self.period(&line.ts);
        let report = &mut self.report;
        report.validations += 1;
        *report.verdicts.entry(verdict.as_str()).or_default() += 1;
        *report.pin.entry(pin.as_str()).or_default() += 1;
        *report.retries.entry(line.retries).or_default() += 1;
        if let Some(code) = line.error.clone() {
            *report.errors.entry(code).or_default() += 1;
        }
        let parent = line.error.is_none() && !rule::NOT_PARENT_RULES.contains(&line.rule.as_str());
        let judged = Judged {
            day,
            establishment,
            verdict,
            parent,
            principal: line.principal,
        };
        report.parent_validations += u64::from(parent);
        report.wrong_landings += u64::from(verdict.is_wrong_landing());
        if let Some(principal) = &judged.principal {
            self.seen.insert(principal.clone());
            if verdict != Verdict::Ok {
                self.affected.insert(principal.clone());
            }
        }
        self.by_establishment
            .entry(judged.establishment.clone())
            .or_default()
            .add(&judged);
        self.by_day
            .entry(judged.day.clone())
            .or_default()
            .add(&judged);
        Ok(())
    }

    fn period(&mut self, ts: &str) {
        match &mut self.report.period {
            Some(period) => {
                if ts < period.from.as_str() {
                    period.from = ts.to_owned();
                }
                if ts > period.to.as_str() {
                    period.to = ts.to_owned();
                }
            }
            None => {
                self.report.period = Some(Period {
                    from: ts.to_owned(),
                    to: ts.to_owned(),
                })
            }
        }
    }

    fn finish(mut self) -> Report {
        let mut report = self.report;
        for verdict in Verdict::ALL {
            report.verdicts.entry(verdict.as_str()).or_default();
        }
        for pin in PinOutcome::ALL {
            report.pin.entry(pin.as_str()).or_default();
        }
        report.families_seen = self.seen.len() as u64;
        report.families_affected = self.affected.len() as u64;
        report.wrong_landing_rate = rate(report.wrong_landings, report.parent_validations);
        let unknown = self.by_establishment.remove(UNKNOWN_ESTABLISHMENT);
        report.by_establishment = self
            .by_establishment
            .into_iter()
            .chain(unknown.map(|t| (UNKNOWN_ESTABLISHMENT.to_owned(), t)))
            .map(|(key, tally)| tally.finish(key))
            .collect();
        report.by_day = self
            .by_day
            .into_iter()
            .map(|(key, tally)| tally.finish(key))
            .collect();
        report
    }
}

/// The UTC day of an RFC 3339 timestamp, or a bad field.
fn day_of(ts: &str) -> Result<String, Skip> {
    let at = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .map_err(|_| Skip::BadField)?;
    let date = at.to_offset(time::UtcOffset::UTC).date();
    Ok(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(ts: &str, uai: &str, verdict: &str, rule: &str, principal: &str) -> String {
        format!(
            r#"{{"ts":"{ts}","event":"validate","verdict":"{verdict}","rule":"{rule}","endpoint":"serviceValidate","uai_expected":"{uai}","uai_asserted":"{uai}","pin":"none","retries":0,"latency_ms":1.5,"principal":"{principal}","pupil":"p","session":null,"error":null}}"#
        )
    }

    #[test]
    fn counts_bad_lines_without_stopping() {
        let log = [
            "not json".to_owned(),
            "{\"event\":\"nope\",\"ts\":\"2026-01-01T00:00:00Z\"}".to_owned(),
            "[1,2]".to_owned(),
            "{\"event\":\"validate\",\"ts\":\"2026-01-01T00:00:00Z\"}".to_owned(),
            validate("2026-01-01T00:00:00Z", "0330012A", "ok", "no_intent", "a"),
            String::new(),
        ]
        .join("\n");
        let report = summarize(log.as_bytes()).unwrap();
        assert_eq!(report.validations, 1);
        assert_eq!(report.bad_lines.count, 4);
        assert_eq!(report.bad_lines.first, [1, 2, 3, 4]);
        assert_eq!(report.bad_lines.by_reason["not_json"], 1);
        assert_eq!(report.bad_lines.by_reason["unknown_event"], 1);
        assert_eq!(report.bad_lines.by_reason["no_event"], 1);
        assert_eq!(report.bad_lines.by_reason["bad_field"], 1);
    }

    #[test]
    fn overlong_line_is_skipped_and_the_next_one_read() {
        let mut log = "x".repeat(MAX_LINE * 2);
        log.push('\n');
        log.push_str(&validate(
            "2026-01-01T00:00:00Z",
            "0330012A",
            "ok",
            "no_intent",
            "a",
        ));
        let report = summarize(log.as_bytes()).unwrap();
        assert_eq!(report.bad_lines.by_reason["too_long"], 1);
        assert_eq!(report.validations, 1);
    }

    #[test]
    fn wrong_landing_rate_leaves_staff_and_pupils_out() {
        let log = [
            validate(
                "2026-01-01T10:00:00Z",
                "0330012A",
                "wrong_child",
                "intent.pin",
                "a",
            ),
            validate("2026-01-01T10:00:00Z", "0330012A", "ok", "intent.pin", "b"),
            validate(
                "2026-01-01T10:00:00Z",
                "0330012A",
                "ok",
                "not_a_parent",
                "c",
            ),
            validate("2026-01-01T10:00:00Z", "0330012A", "ok", "pupil_self", "d"),
        ]
        .join("\n");
        let report = summarize(log.as_bytes()).unwrap();
        assert_eq!(report.validations, 4);
        assert_eq!(report.parent_validations, 2);
        assert_eq!(report.wrong_landing_rate, 0.5);
        assert_eq!(report.families_affected, 1);
        assert_eq!(report.families_seen, 4);
    }

    #[test]
    fn days_are_utc() {
        let log = validate(
            "2026-01-01T23:30:00-02:00",
            "0330012A",
            "ok",
            "no_intent",
            "a",
        );
        let report = summarize(log.as_bytes()).unwrap();
        assert_eq!(report.by_day[0].key, "2026-01-02");
    }

    #[test]
    fn unknown_establishment_sorts_last() {
        let log = [
            r#"{"ts":"2026-01-01T00:00:00Z","event":"validate","verdict":"unresolved","rule":"no_expected_establishment","endpoint":"serviceValidate","uai_expected":null,"uai_asserted":null,"pin":"none","retries":0,"latency_ms":1,"principal":null,"pupil":null,"session":null,"error":null}"#.to_owned(),
            validate("2026-01-01T00:00:00Z", "0330099Z", "ok", "no_intent", "a"),
        ]
        .join("\n");
        let report = summarize(log.as_bytes()).unwrap();
        let keys: Vec<_> = report
            .by_establishment
            .iter()
            .map(|r| r.key.as_str())
            .collect();
        assert_eq!(keys, ["0330099Z", UNKNOWN_ESTABLISHMENT]);
    }
}
