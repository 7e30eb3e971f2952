//! `bonenfant report TRACE…`: trace logs → the figures a DSI acts on.
//!
//! [`Summary`] reads one or more trace logs line by line (bounded memory per line; a bad
//! line is counted with its reason, never fatal) into a [`Report`]:
//!
//! * **by run**: each `startup` event starts a run of its file, with the pin strategy it
//!   announced (events before a file's first `startup` form a run of unknown strategy);
//!   `--since`/`--until` keep a time window;
//! * per run, per establishment, per day and per hour of day (on the `--tz` clock):
//!   validations, verdicts, and each wrong landing counted once — as **harm** when
//!   Pronote got it, as **help given** when pinning corrected it;
//! * families affected, give-ups, chooser pages and choices, "continue anyway" clicks,
//!   re-logins per checked login (distribution and percentiles), error codes, events
//!   lost.
//!
//! [`Report`] renders as text, JSON or one self-contained HTML page ([`write`]).
//!
//! Definitions (also in `docs/events.md`, "`bonenfant report`"):
//! * *parent validations*: successful validations (`error` null) except those of staff
//!   and pupils (`rule` `not_a_parent`, `pupil_self`): the rate's denominator.
//! * *wrong landing* (harm): a `validate` whose verdict is `wrong_child` or
//!   `wrong_establishment` and whose `pin` is `none` or `gave_up`: Pronote was handed
//!   a child the parent did not mean.
//! * *corrected* (help given): a `validate` whose `pin` is `retry`, `rewrite` or
//!   `reorder`: the ENT named another child and Pronote got the intended one. A login
//!   re-logged in several times is one validation, so it counts once.
//! * *choices*: `pin_set` events: a parent said on the chooser page which child they
//!   mean.
//! * *families affected*: distinct principals with at least one wrong landing.

mod html;
pub mod lookup;
mod text;
mod zone;

pub use zone::{BadBound, UnknownZone, Zone};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::code::Code;
use crate::events::{PinOutcome, TraceEvent};
use crate::pupil::Uai;
use crate::verdict::{rule, Verdict};

/// Lines longer than this are not trace events (a `validate` line is ~500 bytes).
const MAX_LINE: usize = 64 * 1024;

/// Line numbers of bad lines kept for the report, so a DSI can look at them.
const BAD_LINE_SAMPLES: usize = 20;

/// The key of validations without an expected establishment.
pub const UNKNOWN_ESTABLISHMENT: &str = "unknown";

/// Output format of [`run`] and [`write`].
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

/// What a report covers and how it names things.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only events at or after this instant (run markers are always read, so a run that
    /// started before the window keeps its strategy).
    pub since: Option<OffsetDateTime>,
    /// Only events before this instant.
    pub until: Option<OffsetDateTime>,
    /// The clock of days and hours of day.
    pub zone: Zone,
    /// UAI → establishment name (`--directory`); rows show UAIs alone without it.
    pub names: BTreeMap<String, String>,
}

/// Reads one trace log with the default [`Options`], writes the report in `format` to
/// `out`, and returns it.
pub fn run(input: impl BufRead, format: Format, out: impl Write) -> Result<Report, ReportError> {
    let options = Options::default();
    let mut summary = Summary::new(&options);
    summary.read("-", input)?;
    let report = summary.finish();
    write(&report, format, out)?;
    Ok(report)
}

/// Writes `report` in `format` to `out`.
pub fn write(report: &Report, format: Format, mut out: impl Write) -> Result<(), ReportError> {
    match format {
        Format::Text => text::write(report, &mut out),
        Format::Json => serde_json::to_writer_pretty(&mut out, report)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n")),
        Format::Html => html::write(report, &mut out),
    }
    .and_then(|()| out.flush())
    .map_err(ReportError::Write)
}

/// Reads a whole trace log into a [`Report`] with the default [`Options`]. Only I/O
/// errors stop it.
pub fn summarize(input: impl BufRead) -> Result<Report, ReportError> {
    let options = Options::default();
    let mut summary = Summary::new(&options);
    summary.read("-", input)?;
    Ok(summary.finish())
}

// === Report ===

/// Everything the report shows. Serialised as is for `--format json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The trace logs read, in order (`-` for standard input).
    pub sources: Vec<String>,
    /// Non-empty lines read.
    pub lines: u64,
    /// Valid events by name (run markers, and the other events inside the window).
    pub events: BTreeMap<String, u64>,
    pub bad_lines: BadLines,
    /// First and last `ts` counted.
    pub period: Option<Period>,
    pub window: Window,
    /// The clock of days and hours (`Europe/Paris`, `UTC`, `+04:00`).
    pub time_zone: String,
    /// Every run together.
    #[serde(flatten)]
    pub totals: Figures,
    /// One entry per pin strategy, in the order first seen: the runs of one strategy
    /// together (figures of different strategies are never blended but in `totals`).
    pub by_strategy: Vec<StrategyGroup>,
    /// One entry per run, in the order read.
    pub runs: Vec<Run>,
    /// One row per expected establishment, sorted by UAI (`unknown` last), every run.
    pub by_establishment: Vec<Row>,
    /// One row per day, in date order.
    pub by_day: Vec<Row>,
    /// 24 rows, `00` to `23`: the hour of day on the report's clock.
    pub by_hour: Vec<Row>,
    /// Error codes from `validate`, `rejected`, `upstream_error`, `pin_refused` and
    /// `rewrite_refused`.
    pub errors: BTreeMap<String, u64>,
    /// Events the writer reported lost (`events_lost` counts).
    pub events_lost: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BadLines {
    pub count: u64,
    pub by_reason: BTreeMap<&'static str, u64>,
    /// Line numbers (1-based, counted per file) of the first bad lines.
    pub first: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: String,
    pub to: String,
}

/// The time window asked for, and what it left out.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Window {
    pub since: Option<String>,
    pub until: Option<String>,
    /// Events outside the window, not counted.
    pub outside: u64,
}

/// One run: a process start (its `startup` event) to its `shutdown`, in one file.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Run {
    /// 1 for the first run read.
    pub number: usize,
    pub source: String,
    /// The `startup` event's `pin_strategy`; `None` for events before a file's first
    /// `startup` (a log rotated while the proxy ran).
    pub pin_strategy: Option<String>,
    pub store: Option<String>,
    pub version: Option<String>,
    pub started: Option<String>,
    pub stopped: Option<String>,
    pub shutdown_reason: Option<String>,
    /// First and last event of the run counted.
    pub period: Option<Period>,
    pub figures: Figures,
    /// One row per expected establishment, as [`Report::by_establishment`].
    pub by_establishment: Vec<Row>,
}

/// The runs of one pin strategy, together.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StrategyGroup {
    /// As [`Run::pin_strategy`].
    pub pin_strategy: Option<String>,
    /// The numbers of its runs.
    pub runs: Vec<usize>,
    pub figures: Figures,
    pub by_establishment: Vec<Row>,
}

/// The figures of a run, or of every run together.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figures {
    /// Every `validate` event.
    pub validations: u64,
    pub parent_validations: u64,
    /// Validations by verdict (every verdict present, zeros included).
    pub verdicts: BTreeMap<&'static str, u64>,
    /// Validations judged other than `ok`.
    pub flagged: u64,
    /// Wrong landings Pronote got (harm), each counted once.
    pub wrong_landings: u64,
    /// `wrong_landings / parent_validations`; 0 when there is none.
    pub wrong_landing_rate: f64,
    /// Landings pinning corrected (help given).
    pub corrected: Corrected,
    /// `pin_set` events: a parent chose a child on the chooser page.
    pub choices: u64,
    /// Chooser pages shown: `chooser` events.
    pub chooser_pages: u64,
    /// Logins bonenfant sent to the chooser page: `login_redirect` with `action`
    /// `chooser`.
    pub chooser_asked: u64,
    /// `pin_refused` events.
    pub pins_refused: u64,
    /// `retry_gave_up` events: the give-up page was shown.
    pub give_ups: u64,
    /// Give-ups by `reason` (`attempts`, `time_budget`).
    pub give_ups_by_reason: BTreeMap<String, u64>,
    /// "Continue anyway" clicks on the give-up page: `give_up_choice` events with
    /// `choice` `continue` (and, in traces of older versions, validations with `pin`
    /// `gave_up`).
    pub continued_anyway: u64,
    /// "Try again" clicks on the give-up page (`give_up_choice` with `choice` `retry`).
    pub tried_again: u64,
    /// Distinct principals in validations.
    pub families_seen: u64,
    /// Distinct principals with at least one wrong landing.
    pub families_affected: u64,
    /// Distinct principals with a corrected landing or a choice.
    pub families_helped: u64,
    /// Validations by pin outcome (every outcome present).
    pub pin: BTreeMap<&'static str, u64>,
    /// Validations by their `retries` field.
    pub retries: BTreeMap<u32, u64>,
    /// Re-logins per login the front channel checked.
    pub relogins: Relogins,
}

/// Landings corrected, by how.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Corrected {
    /// Re-logged in until the ENT named the intended child (`pin` `retry`).
    pub retry: u64,
    pub rewrite: u64,
    pub reorder: u64,
    pub total: u64,
}

/// Re-logins ("re-rolls") per checked login: `login_redirect` events with `action`
/// `delivered` (the login got through) or `gave_up`, by their `retries`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Relogins {
    pub logins: u64,
    /// Re-logins in all.
    pub total: u64,
    /// Logins by number of re-logins.
    pub distribution: BTreeMap<u32, u64>,
    pub p50: u32,
    pub p90: u32,
    pub p99: u32,
    pub max: u32,
}

/// Figures for one establishment, one day or one hour of day.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// UAI (or `unknown`), `YYYY-MM-DD` day, or `HH` hour.
    pub key: String,
    /// The establishment's name, when a directory gave it.
    pub name: Option<String>,
    pub validations: u64,
    pub parent_validations: u64,
    /// Verdict counts (`wrong_child` and `wrong_establishment` whatever the pin).
    pub wrong_child: u64,
    pub wrong_establishment: u64,
    pub flip: u64,
    pub ambiguous: u64,
    pub unresolved: u64,
    pub flagged: u64,
    /// Wrong landings Pronote got (harm).
    pub wrong_landings: u64,
    pub wrong_landing_rate: f64,
    /// Landings corrected (help given).
    pub corrected: u64,
    pub choices: u64,
    pub give_ups: u64,
    pub families_affected: u64,
}

impl Figures {
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

// === Reading ===

/// The fields of a trace line the report reads; every one optional here, each event
/// checks the ones it needs. A field of the wrong type makes the line a bad one.
#[derive(Deserialize)]
struct Line {
    ts: String,
    verdict: Option<String>,
    rule: Option<String>,
    uai_expected: Option<String>,
    uai: Option<String>,
    pin: Option<String>,
    retries: Option<u32>,
    principal: Option<String>,
    error: Option<String>,
    code: Option<String>,
    count: Option<u64>,
    action: Option<String>,
    reason: Option<String>,
    choice: Option<String>,
    pin_strategy: Option<String>,
    store: Option<String>,
    version: Option<String>,
}

/// What an event tells the tallies.
enum Fact {
    Validation(Validation),
    /// A `login_redirect`: `relogins` is set when the front channel checked the login
    /// to its end (`delivered` or `gave_up`); `chooser` when it sent the parent to the
    /// chooser.
    Front {
        relogins: Option<u32>,
        chooser: bool,
    },
    GiveUp {
        reason: String,
    },
    /// A click on the give-up page: go on unpinned once (`continue`), or try again.
    GiveUpChoice {
        go_on: bool,
    },
    ChooserPage,
    Choice {
        principal: Option<String>,
    },
    PinRefused,
    /// Counted as an event, nothing more.
    Other,
}

struct Validation {
    verdict: Verdict,
    pin: PinOutcome,
    retries: u32,
    parent: bool,
    principal: Option<String>,
}

impl Validation {
    fn is_harm(&self) -> bool {
        self.verdict.is_wrong_landing() && matches!(self.pin, PinOutcome::None | PinOutcome::GaveUp)
    }

    fn is_corrected(&self) -> bool {
        matches!(
            self.pin,
            PinOutcome::Retry | PinOutcome::Rewrite | PinOutcome::Reorder
        )
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

/// Builds a [`Report`] from trace logs read one after the other ([`Summary::read`]).
pub struct Summary<'o> {
    options: &'o Options,
    report: Report,
    totals: FiguresTally,
    runs: Vec<RunTally>,
    strategies: Vec<StrategyTally>,
    /// The run events of the file being read go to.
    current: Option<usize>,
    source: String,
    by_establishment: BTreeMap<String, RowTally>,
    by_day: BTreeMap<String, RowTally>,
    by_hour: Vec<RowTally>,
}

impl<'o> Summary<'o> {
    pub fn new(options: &'o Options) -> Self {
        Self {
            options,
            report: Report::default(),
            totals: FiguresTally::default(),
            runs: Vec::new(),
            strategies: Vec::new(),
            current: None,
            source: String::new(),
            by_establishment: BTreeMap::new(),
            by_day: BTreeMap::new(),
            by_hour: (0..24).map(|_| RowTally::default()).collect(),
        }
    }

    /// Reads one trace log named `name` (its runs are its own: a second file starts
    /// with no run until its first `startup`).
    pub fn read(&mut self, name: &str, input: impl BufRead) -> Result<(), ReportError> {
        self.report.sources.push(name.to_owned());
        self.source = name.to_owned();
        self.current = None;
        read_lines(input, |number, line| match line {
            None => self.bad(number, Skip::TooLong),
            Some(line) => {
                self.report.lines += 1;
                if let Err(why) = self.event(line) {
                    self.bad(number, why);
                }
            }
        })
    }

    fn bad(&mut self, number: u64, why: Skip) {
        let bad = &mut self.report.bad_lines;
        bad.count += 1;
        *bad.by_reason.entry(why.as_str()).or_default() += 1;
        if bad.first.len() < BAD_LINE_SAMPLES {
            bad.first.push(number);
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
        let line: Line = serde_json::from_value(value).map_err(|_| Skip::BadField)?;
        let at = OffsetDateTime::parse(&line.ts, &Rfc3339).map_err(|_| Skip::BadField)?;
        match name {
            // Run markers are read whatever the window: a run that started before it
            // keeps its strategy.
            "startup" => {
                self.runs.push(RunTally {
                    run: Run {
                        number: self.runs.len() + 1,
                        source: self.source.clone(),
                        pin_strategy: Some(line.pin_strategy.unwrap_or_default()),
                        store: line.store,
                        version: line.version,
                        started: Some(line.ts.clone()),
                        ..Run::default()
                    },
                    ..RunTally::default()
                });
                self.current = Some(self.runs.len() - 1);
                self.count(name, &line.ts);
                return Ok(());
            }
            "shutdown" => {
                if let Some(run) = self.current.and_then(|i| self.runs.get_mut(i)) {
                    run.run.stopped = Some(line.ts.clone());
                    run.run.shutdown_reason = line.reason;
                }
                self.count(name, &line.ts);
                return Ok(());
            }
            _ => {}
        }
        let fact = fact(name, &line)?;
        let establishment = establishment(&line)?;
        if !self.in_window(at) {
            self.report.window.outside += 1;
            return Ok(());
        }
        self.count(name, &line.ts);
        if let Some(code) = line.code.clone().or_else(|| line.error.clone()) {
            *self.report.errors.entry(code).or_default() += 1;
        }
        if name == "events_lost" {
            self.report.events_lost += line.count.unwrap_or(0);
            return Ok(());
        }
        let local = self.options.zone.local(at);
        let day = format!(
            "{:04}-{:02}-{:02}",
            local.year(),
            u8::from(local.month()),
            local.day()
        );
        let run = self.current_run();
        run.events += 1;
        run.run.period = Some(widen(run.run.period.take(), &line.ts));
        run.figures.add(&fact);
        run.by_establishment
            .entry(establishment.clone())
            .or_default()
            .add(&fact);
        let (number, strategy) = (run.run.number, run.run.pin_strategy.clone());
        let group = match self
            .strategies
            .iter()
            .position(|g| g.group.pin_strategy == strategy)
        {
            Some(index) => &mut self.strategies[index],
            None => {
                self.strategies.push(StrategyTally {
                    group: StrategyGroup {
                        pin_strategy: strategy,
                        ..StrategyGroup::default()
                    },
                    ..StrategyTally::default()
                });
                let last = self.strategies.len() - 1;
                &mut self.strategies[last]
            }
        };
        if !group.group.runs.contains(&number) {
            group.group.runs.push(number);
        }
        group.figures.add(&fact);
        group
            .by_establishment
            .entry(establishment.clone())
            .or_default()
            .add(&fact);
        self.totals.add(&fact);
        self.by_establishment
            .entry(establishment)
            .or_default()
            .add(&fact);
        self.by_day.entry(day).or_default().add(&fact);
        if let Some(hour) = self.by_hour.get_mut(usize::from(local.hour())) {
            hour.add(&fact);
        }
        Ok(())
    }

    fn in_window(&self, at: OffsetDateTime) -> bool {
        self.options.since.map_or(true, |since| at >= since)
            && self.options.until.map_or(true, |until| at < until)
    }

    fn count(&mut self, name: &str, ts: &str) {
        *self.report.events.entry(name.to_owned()).or_default() += 1;
        self.report.period = Some(widen(self.report.period.take(), ts));
    }

    /// The run of the file being read; events before its first `startup` open a run
    /// of unknown strategy.
    fn current_run(&mut self) -> &mut RunTally {
        let index = match self.current {
            Some(index) => index,
            None => {
                self.runs.push(RunTally {
                    run: Run {
                        number: self.runs.len() + 1,
                        source: self.source.clone(),
                        ..Run::default()
                    },
                    ..RunTally::default()
                });
                let index = self.runs.len() - 1;
                self.current = Some(index);
                index
            }
        };
        &mut self.runs[index]
    }

    pub fn finish(self) -> Report {
        let names = &self.options.names;
        let mut report = self.report;
        report.time_zone = self.options.zone.to_string();
        let bound = |at: Option<OffsetDateTime>| {
            at.and_then(|at| at.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok())
        };
        report.window.since = bound(self.options.since);
        report.window.until = bound(self.options.until);
        report.totals = self.totals.finish();
        let windowed = self.options.since.is_some() || self.options.until.is_some();
        report.runs = self
            .runs
            .into_iter()
            // A window keeps the runs it saw something of.
            .filter(|run| !windowed || run.events > 0)
            .map(|run| {
                let mut out = run.run;
                out.figures = run.figures.finish();
                out.by_establishment = establishment_rows(run.by_establishment, names);
                out
            })
            .collect();
        report.by_strategy = self
            .strategies
            .into_iter()
            .map(|tally| {
                let mut group = tally.group;
                group.figures = tally.figures.finish();
                group.by_establishment = establishment_rows(tally.by_establishment, names);
                group
            })
            .collect();
        report.by_establishment = establishment_rows(self.by_establishment, names);
        report.by_day = self
            .by_day
            .into_iter()
            .filter(|(_, tally)| !tally.is_empty())
            .map(|(key, tally)| tally.finish(key, None))
            .collect();
        report.by_hour = self
            .by_hour
            .into_iter()
            .enumerate()
            .map(|(hour, tally)| tally.finish(format!("{hour:02}"), None))
            .collect();
        report
    }
}

/// The tallies' reading of one event.
fn fact(name: &str, line: &Line) -> Result<Fact, Skip> {
    Ok(match name {
        "validate" => {
            let verdict = line
                .verdict
                .as_deref()
                .and_then(Verdict::parse)
                .ok_or(Skip::BadField)?;
            let pin = line
                .pin
                .as_deref()
                .and_then(PinOutcome::parse)
                .ok_or(Skip::BadField)?;
            let rule = line.rule.as_deref().ok_or(Skip::BadField)?;
            let retries = line.retries.ok_or(Skip::BadField)?;
            Fact::Validation(Validation {
                verdict,
                pin,
                retries,
                parent: line.error.is_none() && !rule::NOT_PARENT_RULES.contains(&rule),
                principal: line.principal.clone(),
            })
        }
        "login_redirect" => {
            let action = line.action.as_deref();
            Fact::Front {
                relogins: matches!(action, Some("delivered" | "gave_up"))
                    .then(|| line.retries.unwrap_or(0)),
                chooser: action == Some("chooser"),
            }
        }
        "retry_gave_up" => Fact::GiveUp {
            reason: line.reason.clone().unwrap_or_default(),
        },
        "give_up_choice" => Fact::GiveUpChoice {
            go_on: line.choice.as_deref() == Some("continue"),
        },
        "chooser" => Fact::ChooserPage,
        "pin_set" => Fact::Choice {
            principal: line.principal.clone(),
        },
        "pin_refused" => Fact::PinRefused,
        _ => Fact::Other,
    })
}

/// The row key of an event: its expected establishment (`uai` for `pin_set`),
/// checked, or [`UNKNOWN_ESTABLISHMENT`].
fn establishment(line: &Line) -> Result<String, Skip> {
    match line.uai_expected.as_deref().or(line.uai.as_deref()) {
        Some(uai) => Ok(Uai::parse(uai).ok_or(Skip::BadField)?.as_str().to_owned()),
        None => Ok(UNKNOWN_ESTABLISHMENT.to_owned()),
    }
}

fn establishment_rows(
    rows: BTreeMap<String, RowTally>,
    names: &BTreeMap<String, String>,
) -> Vec<Row> {
    let mut rows = rows;
    let unknown = rows.remove(UNKNOWN_ESTABLISHMENT);
    rows.into_iter()
        .chain(unknown.map(|t| (UNKNOWN_ESTABLISHMENT.to_owned(), t)))
        // Only rows where something happened (a `passthrough` has no establishment).
        .filter(|(_, tally)| !tally.is_empty())
        .map(|(key, tally)| {
            let name = names.get(&key).cloned();
            tally.finish(key, name)
        })
        .collect()
}

fn widen(period: Option<Period>, ts: &str) -> Period {
    match period {
        Some(mut period) => {
            if ts < period.from.as_str() {
                period.from = ts.to_owned();
            }
            if ts > period.to.as_str() {
                period.to = ts.to_owned();
            }
            period
        }
        None => Period {
            from: ts.to_owned(),
            to: ts.to_owned(),
        },
    }
}

/// Calls `each` with every non-empty line of `input` and its number (1-based), trimmed;
/// `None` for a line over [`MAX_LINE`], which is skipped without being held in memory.
fn read_lines(
    mut input: impl BufRead,
    mut each: impl FnMut(u64, Option<&[u8]>),
) -> Result<(), ReportError> {
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let read = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(ReportError::Read)?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let complete = buf.last() == Some(&b'\n');
        if buf.len() > MAX_LINE && !complete {
            skip_rest_of_line(&mut input)?;
            each(number, None);
            continue;
        }
        let line = buf.trim_ascii();
        if !line.is_empty() {
            each(number, Some(line));
        }
    }
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

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

// === Tallies ===

#[derive(Default)]
struct RunTally {
    run: Run,
    /// Events counted in the run (inside the window).
    events: u64,
    figures: FiguresTally,
    by_establishment: BTreeMap<String, RowTally>,
}

#[derive(Default)]
struct StrategyTally {
    group: StrategyGroup,
    figures: FiguresTally,
    by_establishment: BTreeMap<String, RowTally>,
}

#[derive(Default)]
struct FiguresTally {
    figures: Figures,
    seen: BTreeSet<String>,
    affected: BTreeSet<String>,
    helped: BTreeSet<String>,
}

impl FiguresTally {
    fn add(&mut self, fact: &Fact) {
        let f = &mut self.figures;
        match fact {
            Fact::Validation(v) => {
                f.validations += 1;
                f.parent_validations += u64::from(v.parent);
                *f.verdicts.entry(v.verdict.as_str()).or_default() += 1;
                *f.pin.entry(v.pin.as_str()).or_default() += 1;
                *f.retries.entry(v.retries).or_default() += 1;
                f.flagged += u64::from(v.verdict != Verdict::Ok);
                f.continued_anyway += u64::from(v.pin == PinOutcome::GaveUp);
                if v.is_harm() {
                    f.wrong_landings += 1;
                }
                if v.is_corrected() {
                    let corrected = &mut f.corrected;
                    corrected.total += 1;
                    match v.pin {
                        PinOutcome::Retry => corrected.retry += 1,
                        PinOutcome::Rewrite => corrected.rewrite += 1,
                        _ => corrected.reorder += 1,
                    }
                }
                if let Some(principal) = &v.principal {
                    self.seen.insert(principal.clone());
                    if v.is_harm() {
                        self.affected.insert(principal.clone());
                    }
                    if v.is_corrected() {
                        self.helped.insert(principal.clone());
                    }
                }
            }
            Fact::Front { relogins, chooser } => {
                if let Some(n) = relogins {
                    let relogins = &mut f.relogins;
                    relogins.logins += 1;
                    relogins.total += u64::from(*n);
                    *relogins.distribution.entry(*n).or_default() += 1;
                }
                f.chooser_asked += u64::from(*chooser);
            }
            Fact::GiveUp { reason } => {
                f.give_ups += 1;
                *f.give_ups_by_reason.entry(reason.clone()).or_default() += 1;
            }
            Fact::GiveUpChoice { go_on } => {
                f.continued_anyway += u64::from(*go_on);
                f.tried_again += u64::from(!*go_on);
            }
            Fact::ChooserPage => f.chooser_pages += 1,
            Fact::Choice { principal } => {
                f.choices += 1;
                if let Some(principal) = principal {
                    self.helped.insert(principal.clone());
                }
            }
            Fact::PinRefused => f.pins_refused += 1,
            Fact::Other => {}
        }
    }

    fn finish(self) -> Figures {
        let mut f = self.figures;
        for verdict in Verdict::ALL {
            f.verdicts.entry(verdict.as_str()).or_default();
        }
        for pin in PinOutcome::ALL {
            f.pin.entry(pin.as_str()).or_default();
        }
        f.families_seen = self.seen.len() as u64;
        f.families_affected = self.affected.len() as u64;
        f.families_helped = self.helped.len() as u64;
        f.wrong_landing_rate = rate(f.wrong_landings, f.parent_validations);
        let r = &mut f.relogins;
        r.p50 = percentile(&r.distribution, r.logins, 50);
        r.p90 = percentile(&r.distribution, r.logins, 90);
        r.p99 = percentile(&r.distribution, r.logins, 99);
        r.max = r.distribution.keys().next_back().copied().unwrap_or(0);
        f
    }
}

/// The nearest-rank `p`th percentile of `count` values given as value → how many.
fn percentile(distribution: &BTreeMap<u32, u64>, count: u64, p: u64) -> u32 {
    let rank = (count * p).div_ceil(100).max(1);
    let mut seen = 0;
    for (value, n) in distribution {
        seen += n;
        if seen >= rank {
            return *value;
        }
    }
    0
}

#[derive(Default)]
struct RowTally {
    row: Row,
    affected: BTreeSet<String>,
    /// Anything counted (rows only appear when something happened there).
    any: bool,
}

impl RowTally {
    fn add(&mut self, fact: &Fact) {
        let row = &mut self.row;
        match fact {
            Fact::Validation(v) => {
                self.any = true;
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
                row.flagged += u64::from(v.verdict != Verdict::Ok);
                row.corrected += u64::from(v.is_corrected());
                if v.is_harm() {
                    row.wrong_landings += 1;
                    if let Some(principal) = &v.principal {
                        self.affected.insert(principal.clone());
                    }
                }
            }
            Fact::GiveUp { .. } => {
                self.any = true;
                row.give_ups += 1;
            }
            Fact::Choice { .. } => {
                self.any = true;
                row.choices += 1;
            }
            Fact::Front { .. }
            | Fact::GiveUpChoice { .. }
            | Fact::ChooserPage
            | Fact::PinRefused
            | Fact::Other => {}
        }
    }

    fn is_empty(&self) -> bool {
        !self.any
    }

    fn finish(mut self, key: String, name: Option<String>) -> Row {
        self.row.key = key;
        self.row.name = name;
        self.row.families_affected = self.affected.len() as u64;
        self.row.wrong_landing_rate = rate(self.row.wrong_landings, self.row.parent_validations);
        self.row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(ts: &str, uai: &str, verdict: &str, rule: &str, principal: &str) -> String {
        validate_pinned(ts, uai, verdict, rule, principal, "none")
    }

    fn validate_pinned(
        ts: &str,
        uai: &str,
        verdict: &str,
        rule: &str,
        principal: &str,
        pin: &str,
    ) -> String {
        format!(
            r#"{{"ts":"{ts}","event":"validate","verdict":"{verdict}","rule":"{rule}","endpoint":"serviceValidate","uai_expected":"{uai}","uai_asserted":"{uai}","pin":"{pin}","retries":0,"latency_ms":1.5,"principal":"{principal}","pupil":"p","session":null,"error":null}}"#
        )
    }

    fn startup(ts: &str, strategy: &str) -> String {
        format!(
            r#"{{"ts":"{ts}","event":"startup","version":"0.1.0","pin_strategy":"{strategy}","store":"memory","pseudonym_key":"file"}}"#
        )
    }

    fn summarize_with(log: &str, options: &Options) -> Report {
        let mut summary = Summary::new(options);
        summary.read("test", log.as_bytes()).unwrap();
        summary.finish()
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
        assert_eq!(report.totals.validations, 1);
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
        assert_eq!(report.totals.validations, 1);
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
        let t = &report.totals;
        assert_eq!(t.validations, 4);
        assert_eq!(t.parent_validations, 2);
        assert_eq!(t.wrong_landing_rate, 0.5);
        assert_eq!(t.families_affected, 1);
        assert_eq!(t.families_seen, 4);
    }

    #[test]
    fn a_corrected_landing_is_help_given_not_harm() {
        let log = [
            validate_pinned(
                "2026-01-01T10:00:00Z",
                "0330012A",
                "flip",
                "previous_pupil",
                "a",
                "retry",
            ),
            validate_pinned(
                "2026-01-01T10:00:00Z",
                "0330012A",
                "wrong_child",
                "intent.pin",
                "b",
                "gave_up",
            ),
            validate_pinned(
                "2026-01-01T10:00:00Z",
                "0330012A",
                "ok",
                "intent.pin",
                "c",
                "rewrite",
            ),
        ]
        .join("\n");
        let t = summarize(log.as_bytes()).unwrap().totals;
        assert_eq!((t.wrong_landings, t.families_affected), (1, 1));
        assert_eq!((t.corrected.total, t.corrected.retry), (2, 1));
        assert_eq!(
            (t.families_helped, t.flagged, t.continued_anyway),
            (2, 2, 1)
        );
    }

    #[test]
    fn give_up_page_clicks_are_counted() {
        let click = |choice: &str| {
            format!(
                r#"{{"ts":"2026-01-01T10:00:00Z","event":"give_up_choice","choice":"{choice}","uai_expected":"0330012A","principal":"a","session":"s"}}"#
            )
        };
        let log = [click("continue"), click("retry"), click("retry")].join("\n");
        let t = summarize(log.as_bytes()).unwrap().totals;
        assert_eq!((t.continued_anyway, t.tried_again), (1, 2));
    }

    #[test]
    fn days_and_hours_are_on_the_report_clock() {
        let log = validate(
            "2026-01-01T23:30:00-02:00",
            "0330012A",
            "ok",
            "no_intent",
            "a",
        );
        let utc = summarize_with(
            &log,
            &Options {
                zone: Zone::Utc,
                ..Options::default()
            },
        );
        assert_eq!(utc.by_day[0].key, "2026-01-02");
        assert_eq!(utc.by_hour[1].validations, 1);
        let paris = summarize(log.as_bytes()).unwrap();
        assert_eq!(paris.time_zone, "Europe/Paris");
        assert_eq!(paris.by_hour[2].validations, 1);
        assert_eq!(paris.by_hour.len(), 24);
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

    #[test]
    fn each_startup_starts_a_run_and_a_window_keeps_its_strategy() {
        let log = [
            validate("2026-01-01T09:00:00Z", "0330012A", "ok", "no_intent", "a"),
            startup("2026-01-01T10:00:00Z", "observe"),
            validate(
                "2026-01-01T10:01:00Z",
                "0330012A",
                "wrong_child",
                "intent.sticky",
                "a",
            ),
            startup("2026-01-02T10:00:00Z", "retry"),
            validate("2026-01-02T10:01:00Z", "0330012A", "ok", "no_intent", "a"),
            validate("2026-01-03T10:01:00Z", "0330012A", "ok", "no_intent", "b"),
        ]
        .join("\n");
        let all = summarize(log.as_bytes()).unwrap();
        let runs: Vec<_> = all
            .runs
            .iter()
            .map(|r| (r.pin_strategy.as_deref(), r.figures.validations))
            .collect();
        assert_eq!(runs, [(None, 1), (Some("observe"), 1), (Some("retry"), 2)]);
        assert_eq!(all.runs[1].figures.wrong_landings, 1);
        assert_eq!(all.runs[2].figures.wrong_landings, 0);

        let options = Options {
            since: Some(Zone::Utc.parse_bound("2026-01-02").unwrap()),
            until: Some(Zone::Utc.parse_bound("2026-01-03").unwrap()),
            zone: Zone::Utc,
            ..Options::default()
        };
        let day = summarize_with(&log, &options);
        assert_eq!(day.runs.len(), 1);
        assert_eq!(day.runs[0].pin_strategy.as_deref(), Some("retry"));
        assert_eq!(day.runs[0].figures.validations, 1);
        assert_eq!(day.window.outside, 3);
        assert_eq!(day.window.since.as_deref(), Some("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let distribution: BTreeMap<u32, u64> = [(0, 50), (1, 40), (5, 9), (8, 1)].into();
        assert_eq!(percentile(&distribution, 100, 50), 0);
        assert_eq!(percentile(&distribution, 100, 51), 1);
        assert_eq!(percentile(&distribution, 100, 90), 1);
        assert_eq!(percentile(&distribution, 100, 99), 5);
        assert_eq!(percentile(&distribution, 100, 100), 8);
        assert_eq!(percentile(&BTreeMap::new(), 0, 50), 0);
    }
}
