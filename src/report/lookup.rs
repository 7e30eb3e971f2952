//! `bonenfant lookup`: one family's timeline, for the helpdesk (`docs/helpdesk.md`).
//!
//! A parent calls: "I got the wrong child at 19:40". The trace holds only pseudonyms,
//! so the DSI turns the parent's login into its pseudonym with the pseudonym key, which
//! stays on the DSI's machine, and reads that family's events from every instance's
//! trace, grouped into logins: the tickets the ENT issued (counted: no ticket is ever in
//! the trace), the verdicts, the re-logins, the chooser, and what the parent saw.
//!
//! Which events are the family's: those naming its principal, and those of a browser
//! session it used that name no principal (a redirect bonenfant let through without
//! validating it) when the session's next event naming a principal, else its previous
//! one, names this family. A shared computer's session that passes to another parent
//! is cut where the other parent's events begin.
//!
//! Two passes over the files ([`Lookup::scan`], then [`Lookup::collect`]): the first
//! learns the family's sessions, the second keeps their events, so memory holds one
//! family's events, not a month of trace.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{read_lines, Format, ReportError, Zone};
use crate::pages::verdict_label;
use crate::pages::{self, html, Css, Head, Markup, Printable};

/// A login's events further apart than this are two logins (a parent who left the
/// give-up page and came back later).
const LOGIN_GAP: time::Duration = time::Duration::minutes(30);

/// Who to look for, and how to name what the trace only gives as pseudonyms.
#[derive(Clone, Debug, Default)]
pub struct Family {
    /// The login the helpdesk was given (shown in the heading, never searched for).
    pub login: String,
    /// The principal's pseudonym under the trace's key.
    pub principal: String,
    /// Pupil pseudonym → how to name that child ("Léa, 4B"), from `--directory`.
    pub children: BTreeMap<String, String>,
    /// UAI → establishment name, from `--directory`.
    pub names: BTreeMap<String, String>,
}

/// The fields of a trace line the timeline reads.
#[derive(Clone, Debug, Default, Deserialize)]
struct Line {
    ts: String,
    event: String,
    principal: Option<String>,
    session: Option<String>,
    uai_expected: Option<String>,
    uai_asserted: Option<String>,
    uai: Option<String>,
    verdict: Option<String>,
    rule: Option<String>,
    pin: Option<String>,
    retries: Option<u32>,
    action: Option<String>,
    attempt: Option<u32>,
    reason: Option<String>,
    choice: Option<String>,
    children: Option<u32>,
    code: Option<String>,
    error: Option<String>,
    pupil: Option<String>,
    kind: Option<String>,
}

struct Entry {
    at: OffsetDateTime,
    /// Index of the trace it came from, and its line number there.
    source: usize,
    number: u64,
    line: Line,
}

/// Reads the traces of one family ([`Lookup::scan`] every file, then
/// [`Lookup::collect`] every file), then gives its [`Timeline`].
pub struct Lookup<'a> {
    family: &'a Family,
    zone: Zone,
    sessions: BTreeSet<String>,
    sources: Vec<String>,
    entries: Vec<Entry>,
    bad_lines: u64,
}

impl<'a> Lookup<'a> {
    pub fn new(family: &'a Family, zone: Zone) -> Self {
        Self {
            family,
            zone,
            sessions: BTreeSet::new(),
            sources: Vec::new(),
            entries: Vec::new(),
            bad_lines: 0,
        }
    }

    /// First pass over one trace: the browser sessions where the family appears.
    pub fn scan(&mut self, input: impl BufRead) -> Result<(), ReportError> {
        let principal = self.family.principal.as_str();
        let sessions = &mut self.sessions;
        read_lines(input, |_, line| {
            let Some(line) = line.and_then(|l| serde_json::from_slice::<Line>(l).ok()) else {
                return;
            };
            if line.principal.as_deref() == Some(principal) {
                if let Some(session) = line.session {
                    sessions.insert(session);
                }
            }
        })
    }

    /// Second pass over one trace, named `source`: keeps the family's events and those
    /// of its sessions.
    pub fn collect(&mut self, source: &str, input: impl BufRead) -> Result<(), ReportError> {
        let index = self.sources.len();
        self.sources.push(source.to_owned());
        let principal = self.family.principal.as_str();
        let (sessions, entries, bad) = (&self.sessions, &mut self.entries, &mut self.bad_lines);
        read_lines(input, |number, line| {
            let parsed = line.and_then(|l| serde_json::from_slice::<Line>(l).ok());
            let Some(line) = parsed else {
                *bad += 1;
                return;
            };
            let ours = line.principal.as_deref() == Some(principal)
                || line.session.as_ref().is_some_and(|s| sessions.contains(s));
            if !ours {
                return;
            }
            match OffsetDateTime::parse(&line.ts, &Rfc3339) {
                Ok(at) => entries.push(Entry {
                    at,
                    source: index,
                    number,
                    line,
                }),
                Err(_) => *bad += 1,
            }
        })
    }

    pub fn finish(mut self) -> Timeline {
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_by_key(|e| (e.at, e.source, e.number));
        let entries = attribute(entries, &self.family.principal);
        let describe = Describe {
            family: self.family,
        };
        let mut logins: Vec<Login> = Vec::new();
        let mut current: Vec<&Entry> = Vec::new();
        let mut previous: Option<&Entry> = None;
        for entry in &entries {
            if let Some(previous) = previous {
                if starts_a_login(previous, entry) && !current.is_empty() {
                    logins.push(self.login(&describe, logins.len() + 1, &current));
                    current.clear();
                }
            }
            current.push(entry);
            previous = Some(entry);
        }
        if !current.is_empty() {
            logins.push(self.login(&describe, logins.len() + 1, &current));
        }
        Timeline {
            login: self.family.login.clone(),
            principal: self.family.principal.clone(),
            time_zone: self.zone.to_string(),
            sources: self.sources,
            events: entries.len(),
            bad_lines: self.bad_lines,
            logins,
        }
    }

    fn login(&self, describe: &Describe<'_>, number: usize, entries: &[&Entry]) -> Login {
        let local = |at: OffsetDateTime| local_time(self.zone.local(at));
        let mut login = Login {
            number,
            from: entries.first().map(|e| local(e.at)).unwrap_or_default(),
            to: entries.last().map(|e| local(e.at)).unwrap_or_default(),
            ..Login::default()
        };
        let mut instances = BTreeSet::new();
        let mut validations = 0;
        for entry in entries {
            let line = &entry.line;
            instances.insert(entry.source);
            if login.establishment.is_none() {
                login.establishment = line.uai_expected.clone().or(line.uai.clone());
            }
            match line.event.as_str() {
                "login_redirect" => {
                    // A browser-driven re-login's ticket is its `retry` event's.
                    login.tickets += u32::from(line.action.as_deref() != Some("relogin"));
                }
                // One refused ticket each, re-rolled by bonenfant or by the browser.
                "retry" => {
                    login.tickets += 1;
                    login.relogins += 1;
                }
                "chooser" => login.chooser_pages += 1,
                "pin_set" => login.choices += 1,
                "validate" => {
                    validations += 1;
                    login.verdicts.push(match &line.error {
                        Some(code) => format!("error:{code}"),
                        None => line.verdict.clone().unwrap_or_default(),
                    });
                }
                _ => {}
            }
            let (text, alarming) = describe.step(line);
            login.steps.push(Step {
                at: local(entry.at),
                source: self.sources.get(entry.source).cloned().unwrap_or_default(),
                event: line.event.clone(),
                principal: line.principal.clone(),
                text,
                alarming,
            });
        }
        // Back channel only: no redirect seen, each validation is one ticket.
        if login.tickets == 0 {
            login.tickets = validations;
        }
        login.instances = instances
            .into_iter()
            .filter_map(|i| self.sources.get(i).cloned())
            .collect();
        login.establishment_name = login
            .establishment
            .as_ref()
            .and_then(|uai| self.family.names.get(uai).cloned());
        login.saw = describe.outcome(entries);
        login
    }
}

/// Keeps the entries that are the family's: those naming its principal, and those
/// naming none whose session's next principal (else previous) is the family's.
fn attribute(entries: Vec<Entry>, principal: &str) -> Vec<Entry> {
    let mut by_session: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(session) = &entry.line.session {
            by_session.entry(session).or_default().push(i);
        }
    }
    let mut keep = vec![false; entries.len()];
    for (i, entry) in entries.iter().enumerate() {
        keep[i] = entry.line.principal.as_deref() == Some(principal);
    }
    for indexes in by_session.values() {
        for (k, &i) in indexes.iter().enumerate() {
            if entries[i].line.principal.is_some() {
                continue;
            }
            let named = |j: &usize| entries[*j].line.principal.as_deref();
            let owner = indexes[k + 1..]
                .iter()
                .find_map(named)
                .or_else(|| indexes[..k].iter().rev().find_map(named));
            keep[i] = owner == Some(principal);
        }
    }
    entries
        .into_iter()
        .zip(keep)
        .filter_map(|(entry, keep)| keep.then_some(entry))
        .collect()
}

/// Whether `entry` starts a new login after `previous`: Pronote validated (or the
/// parent logged out), the give-up page was left for something else than "continue
/// anyway", the chooser page for something else than a choice, or a long pause.
fn starts_a_login(previous: &Entry, entry: &Entry) -> bool {
    if entry.at - previous.at > LOGIN_GAP {
        return true;
    }
    let line = &previous.line;
    match line.event.as_str() {
        "validate" | "logout" => true,
        // The give-up page's answer is a click (`give_up_choice`), or, in traces of older
        // versions, a validation of the last ticket (`pin` `gave_up`).
        "login_redirect" if line.action.as_deref() == Some("gave_up") => {
            let next = &entry.line;
            !(next.event == "give_up_choice"
                || (next.event == "validate" && next.pin.as_deref() == Some("gave_up")))
        }
        // Sent to the chooser, the browser asks for its page; the page is answered (or
        // refused) by a POST. Anything else means the parent left it.
        "login_redirect" if line.action.as_deref() == Some("chooser") => !matches!(
            entry.line.event.as_str(),
            "chooser" | "pin_set" | "pin_refused"
        ),
        "chooser" => !matches!(entry.line.event.as_str(), "pin_set" | "pin_refused"),
        _ => false,
    }
}

/// `2026-03-09 19:40:02`.
fn local_time(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.format(&format).unwrap_or_default()
}

/// Turns events into what the helpdesk reads, in French.
struct Describe<'a> {
    family: &'a Family,
}

impl Describe<'_> {
    fn child(&self, pupil: Option<&str>) -> String {
        match pupil {
            Some(pupil) => match self.family.children.get(pupil) {
                Some(label) => label.clone(),
                None => format!("l'enfant {}", pupil.get(..8).unwrap_or(pupil)),
            },
            None => "un enfant non identifié".to_owned(),
        }
    }

    /// A step's text, and whether it is bad news for the parent.
    fn step(&self, line: &Line) -> (String, bool) {
        let child = || self.child(line.pupil.as_deref());
        let n = |n: u32, one: &str, many: &str| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {many}")
            }
        };
        let relogins = |r: u32| n(r, "nouvelle connexion", "nouvelles connexions");
        match line.event.as_str() {
            "validate" => {
                if let Some(code) = &line.error {
                    return (
                        format!("validation échouée ({code}) : Pronote affiche une erreur"),
                        true,
                    );
                }
                let verdict = line.verdict.as_deref().unwrap_or("");
                let (mut text, bad) = match verdict {
                    "ok" => (format!("Pronote ouvre la session de {} : correct", child()), false),
                    "wrong_child" => (
                        format!("Pronote ouvre la session de {} : mauvais enfant", child()),
                        true,
                    ),
                    "wrong_establishment" => (
                        format!(
                            "Pronote reçoit {}, d'un autre établissement ({}) : « utilisateur inconnu »",
                            child(),
                            line.uai_asserted.as_deref().unwrap_or("?")
                        ),
                        true,
                    ),
                    "flip" => (
                        format!(
                            "Pronote ouvre la session de {} : un autre enfant que la fois précédente",
                            child()
                        ),
                        false,
                    ),
                    "ambiguous" => (
                        format!(
                            "Pronote ouvre la session de {} : ambigu (plusieurs enfants ici, aucun choisi)",
                            child()
                        ),
                        false,
                    ),
                    _ => (
                        format!(
                            "Pronote : enfant non déterminé ({})",
                            line.rule.as_deref().unwrap_or("?")
                        ),
                        false,
                    ),
                };
                match line.pin.as_deref() {
                    Some("retry") => text.push_str(&format!(
                        " — corrigé après {}",
                        relogins(line.retries.unwrap_or(0))
                    )),
                    Some("rewrite") => text.push_str(" — corrigé par réécriture"),
                    Some("reorder") => text.push_str(" — corrigé par réordonnancement"),
                    Some("gave_up") => {
                        text.push_str(" — après l'abandon, « continuer quand même »")
                    }
                    _ => {}
                }
                (text, bad)
            }
            "login_redirect" => {
                let retries = line.retries.unwrap_or(0);
                match line.action.as_deref() {
                    Some("forwarded") => (
                        "l'ENT délivre un ticket ; transmis à Pronote sans contrôle".to_owned(),
                        false,
                    ),
                    Some("delivered") if retries > 0 => (
                        format!(
                            "l'ENT délivre un ticket, vérifié : transmis à Pronote après {}",
                            relogins(retries)
                        ),
                        false,
                    ),
                    Some("delivered") => (
                        "l'ENT délivre un ticket, vérifié : transmis à Pronote".to_owned(),
                        false,
                    ),
                    Some("relogin") => (
                        "l'ENT délivre un ticket pour un autre enfant : refusé, nouvelle connexion demandée"
                            .to_owned(),
                        false,
                    ),
                    Some("chooser") => (
                        "l'ENT délivre un ticket ; plusieurs enfants possibles : bonenfant envoie le parent sur la page « quel enfant ? »"
                            .to_owned(),
                        false,
                    ),
                    Some("gave_up") => (
                        format!(
                            "après {}, page « l'ENT n'a pas ouvert la session de l'enfant attendu » (continuer quand même, ou choisir)",
                            relogins(retries)
                        ),
                        true,
                    ),
                    _ => ("l'ENT délivre un ticket".to_owned(), false),
                }
            }
            "retry" => (
                format!(
                    "ticket refusé : {} pour {} (tentative {})",
                    verdict_label(line.verdict.as_deref().unwrap_or("")),
                    child(),
                    line.attempt.unwrap_or(0)
                ),
                false,
            ),
            "retry_gave_up" => (
                format!(
                    "bonenfant cesse de redemander après {} ({})",
                    relogins(line.retries.unwrap_or(0)),
                    match line.reason.as_deref() {
                        Some("time_budget") => "délai épuisé",
                        _ => "essais épuisés",
                    }
                ),
                true,
            ),
            "chooser" => (
                format!(
                    "page « quel enfant ? » affichée ({})",
                    n(line.children.unwrap_or(0), "enfant", "enfants")
                ),
                false,
            ),
            "pin_set" => (
                format!(
                    "le parent choisit {} ({})",
                    child(),
                    line.uai.as_deref().unwrap_or("?")
                ),
                false,
            ),
            "give_up_choice" => match line.choice.as_deref() {
                Some("continue") => (
                    "le parent choisit « continuer quand même » : la connexion suivante passe sans correction"
                        .to_owned(),
                    false,
                ),
                _ => ("le parent choisit de réessayer".to_owned(), false),
            },
            "pin_refused" => (
                format!(
                    "choix refusé ({}) : page d'erreur",
                    line.code.as_deref().unwrap_or("?")
                ),
                true,
            ),
            "rewrite_refused" => (
                format!(
                    "réécriture refusée ({}) : réponse de l'ENT transmise telle quelle",
                    line.code.as_deref().unwrap_or("?")
                ),
                false,
            ),
            "logout" => (
                match line.kind.as_deref() {
                    Some("single_logout") => "déconnexion (par l'ENT)".to_owned(),
                    _ => "déconnexion (navigateur)".to_owned(),
                },
                false,
            ),
            other => (other.to_owned(), false),
        }
    }

    /// What the parent saw at the end of a login.
    fn outcome(&self, entries: &[&Entry]) -> String {
        let Some(last) = entries.iter().rev().find(|e| {
            matches!(
                e.line.event.as_str(),
                "validate" | "login_redirect" | "chooser" | "pin_refused"
            )
        }) else {
            return "rien que bonenfant ait vu".to_owned();
        };
        let line = &last.line;
        let child = self.child(line.pupil.as_deref());
        match (line.event.as_str(), line.action.as_deref()) {
            ("validate", _) if line.error.is_some() => "une erreur de Pronote".to_owned(),
            ("validate", _) => match line.verdict.as_deref() {
                Some("wrong_child") => {
                    format!("Pronote, sur la session d'un autre enfant : {child}")
                }
                Some("wrong_establishment") => "Pronote : « utilisateur inconnu »".to_owned(),
                Some("unresolved") => "Pronote (enfant non déterminé)".to_owned(),
                _ => format!("Pronote, sur la session de {child}"),
            },
            ("login_redirect", Some("gave_up")) => {
                "la page « l'ENT n'a pas ouvert la session de l'enfant attendu »".to_owned()
            }
            ("login_redirect", Some("chooser")) | ("chooser", _) => {
                "la page « quel enfant ? », sans choisir".to_owned()
            }
            ("login_redirect", Some("relogin")) => {
                "une nouvelle connexion en cours, sans suite dans ces journaux".to_owned()
            }
            ("login_redirect", _) => {
                "Pronote (sa validation n'est pas dans ces journaux)".to_owned()
            }
            _ => "une page d'erreur de bonenfant".to_owned(),
        }
    }
}

// === Timeline ===

/// One family's logins, oldest first. Serialised as is for `--format json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    pub login: String,
    pub principal: String,
    /// The clock of every time shown.
    pub time_zone: String,
    pub sources: Vec<String>,
    /// The family's events found.
    pub events: usize,
    /// Lines of the traces that could not be read.
    pub bad_lines: u64,
    pub logins: Vec<Login>,
}

/// One login, from the first event to Pronote (or to the page the parent stopped on).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Login {
    pub number: usize,
    pub from: String,
    pub to: String,
    /// The traces (instances) it appears in.
    pub instances: Vec<String>,
    pub establishment: Option<String>,
    pub establishment_name: Option<String>,
    /// Tickets the ENT issued for it (counted; tickets are never in the trace).
    pub tickets: u32,
    pub relogins: u32,
    pub chooser_pages: u32,
    pub choices: u32,
    /// Verdicts of its validations (`error:CODE` for a failed one).
    pub verdicts: Vec<String>,
    /// What the parent saw at the end.
    pub saw: String,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Step {
    pub at: String,
    pub source: String,
    pub event: String,
    /// The principal the event names: the family's, or `None` for an event of one of
    /// its browser sessions that names nobody (attributed by its session).
    pub principal: Option<String>,
    pub text: String,
    /// Bad news for the parent (a wrong child, a give-up, an error).
    pub alarming: bool,
}

/// Writes `timeline` in `format` to `out`.
pub fn write(timeline: &Timeline, format: Format, mut out: impl Write) -> Result<(), ReportError> {
    match format {
        Format::Text => write_text(timeline, &mut out),
        Format::Json => serde_json::to_writer_pretty(&mut out, timeline)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n")),
        Format::Html => out.write_all(render(timeline).as_bytes()),
    }
    .and_then(|()| out.flush())
    .map_err(ReportError::Write)
}

fn write_text(t: &Timeline, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "bonenfant — chronologie d'une famille")?;
    writeln!(
        out,
        "Compte : {} (pseudonyme {})",
        printable(&t.login),
        t.principal
    )?;
    writeln!(
        out,
        "Journaux : {} ; {} événement(s), {} connexion(s) ; heures {}",
        t.sources
            .iter()
            .map(|s| printable(s))
            .collect::<Vec<_>>()
            .join(", "),
        t.events,
        t.logins.len(),
        t.time_zone
    )?;
    writeln!(
        out,
        "Les tickets ne sont jamais dans le journal : ils sont seulement comptés."
    )?;
    if t.logins.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "Aucun événement de ce compte dans ces journaux (vérifiez la clé : ce doit être celle des instances)."
        )?;
    }
    for login in &t.logins {
        writeln!(out)?;
        writeln!(
            out,
            "Connexion {} — {} → {} — {}",
            login.number,
            login.from,
            login.to.get(11..).unwrap_or(&login.to),
            establishment(login)
        )?;
        for step in &login.steps {
            writeln!(
                out,
                "  {} {} [{}] {}",
                step.at.get(11..).unwrap_or(&step.at),
                if step.alarming { "!" } else { " " },
                printable(&step.source),
                printable(&step.text)
            )?;
        }
        writeln!(
            out,
            "  Tickets : {} · nouvelles connexions : {} · pages « quel enfant ? » : {} · choix : {}",
            login.tickets, login.relogins, login.chooser_pages, login.choices
        )?;
        writeln!(out, "  Le parent a vu : {}", printable(&login.saw))?;
    }
    if t.bad_lines > 0 {
        writeln!(out)?;
        writeln!(out, "{} ligne(s) illisible(s) ignorée(s).", t.bad_lines)?;
    }
    Ok(())
}

fn establishment(login: &Login) -> String {
    match (&login.establishment, &login.establishment_name) {
        (Some(uai), Some(name)) => format!("{} {}", printable(uai), printable(name)),
        (Some(uai), None) => printable(uai),
        (None, _) => "établissement inconnu".to_owned(),
    }
}

const STYLE: Css = Css("
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0;color:#1d2733;background:#f5f6f8;line-height:1.4}
main{max-width:980px;margin:0 auto;padding:16px}
h1{font-size:1.4rem;margin:0 0 4px}
h2{font-size:1.05rem;margin:0 0 4px}
p.sub{color:#55606e;margin:0 0 12px}
section{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:8px 12px;margin-top:12px}
section.bad{border-left:4px solid #c0392b}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.85rem}
td{padding:3px 6px;border-bottom:1px solid #e6e9ee;vertical-align:top}
td.t{white-space:nowrap;font-variant-numeric:tabular-nums;color:#55606e}
tr.bad td{color:#c0392b;font-weight:600}
p.saw{margin:6px 0 0}
");

fn render(t: &Timeline) -> String {
    let body = html! {
        main {
            h1 { "Chronologie de " (Printable(&t.login)) }
            p.sub {
                "Pseudonyme " code { (t.principal) } " ; journaux : "
                @for (i, source) in t.sources.iter().enumerate() {
                    @if i > 0 { ", " }
                    (Printable(source))
                }
                " ; " (t.events) " événement(s), " (t.logins.len()) " connexion(s) ; heures "
                (t.time_zone) ". Les tickets ne sont jamais dans le journal : ils sont comptés."
            }
            @if t.logins.is_empty() {
                section { p { "Aucun événement de ce compte dans ces journaux." } }
            }
            @for login in &t.logins {
                (login_section(login))
            }
        }
    };
    pages::document(
        &Head {
            title: "bonenfant — chronologie d'une famille",
            viewport: true,
            style: Some(STYLE),
        },
        body,
    )
}

fn login_section(login: &Login) -> Markup {
    let bad = login.steps.iter().any(|s| s.alarming);
    html! {
        section.bad[bad] {
            h2 {
                "Connexion " (login.number) " — " (login.from) " — " (establishment(login))
            }
            div.scroll {
                table {
                    @for step in &login.steps {
                        tr.bad[step.alarming] {
                            td.t { (step.at.get(11..).unwrap_or(&step.at)) }
                            td.t { (Printable(&step.source)) }
                            td { (Printable(&step.text)) }
                        }
                    }
                }
            }
            p.saw {
                "Tickets : " (login.tickets) " · nouvelles connexions : " (login.relogins)
                " · pages « quel enfant ? » : " (login.chooser_pages) " · choix : " (login.choices)
                br;
                strong { "Le parent a vu : " } (Printable(&login.saw))
            }
        }
    }
}

/// Text from the trace or the directory: no control character reaches the terminal.
fn printable(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILY: &str = "11111111111111111111111111111111";
    const OTHER: &str = "22222222222222222222222222222222";
    const SESSION: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn family() -> Family {
        Family {
            login: "parent.x".to_owned(),
            principal: FAMILY.to_owned(),
            children: [("c".repeat(32), "Léa (4B)".to_owned())].into(),
            names: [("0330012A".to_owned(), "Collège Montaigne".to_owned())].into(),
        }
    }

    fn timeline(traces: &[(&str, &str)]) -> Timeline {
        let family = family();
        let mut lookup = Lookup::new(&family, Zone::Paris);
        for (_, text) in traces {
            lookup.scan(text.as_bytes()).unwrap();
        }
        for (name, text) in traces {
            lookup.collect(name, text.as_bytes()).unwrap();
        }
        lookup.finish()
    }

    fn redirect(ts: &str, session: &str, action: &str, principal: Option<&str>) -> String {
        let principal = principal.map_or("null".to_owned(), |p| format!("\"{p}\""));
        format!(
            r#"{{"ts":"{ts}","event":"login_redirect","uai_expected":"0330012A","session":"{session}","bound":true,"action":"{action}","retries":0,"principal":{principal},"latency_ms":1}}"#
        )
    }

    fn validate(ts: &str, session: &str, principal: &str, verdict: &str) -> String {
        format!(
            r#"{{"ts":"{ts}","event":"validate","verdict":"{verdict}","rule":"intent.sticky","endpoint":"serviceValidate","uai_expected":"0330012A","uai_asserted":"0330012A","pin":"none","retries":0,"latency_ms":1,"principal":"{principal}","pupil":"{}","session":"{session}","error":null}}"#,
            "c".repeat(32)
        )
    }

    #[test]
    fn follows_a_family_across_days_and_instances_and_nobody_else() {
        let a = [
            redirect("2026-03-09T18:40:00Z", SESSION, "forwarded", None),
            validate("2026-03-09T18:40:01Z", SESSION, FAMILY, "wrong_child"),
            // Another parent on the same computer, later: their redirect is theirs.
            redirect("2026-03-09T20:00:00Z", SESSION, "forwarded", None),
            validate("2026-03-09T20:00:01Z", SESSION, OTHER, "ok"),
        ]
        .join("\n");
        let b = [
            validate(
                "2026-03-10T17:00:00Z",
                "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                OTHER,
                "ok",
            ),
            redirect("2026-03-10T18:00:00Z", "cccc", "forwarded", None),
            validate("2026-03-10T18:00:01Z", "cccc", FAMILY, "ok"),
            "not json".to_owned(),
        ]
        .join("\n");
        let t = timeline(&[("a.jsonl", &a), ("b.jsonl", &b)]);
        assert_eq!(t.logins.len(), 2, "{t:#?}");
        assert_eq!(t.events, 4);
        let first = &t.logins[0];
        assert_eq!(first.from, "2026-03-09 19:40:00");
        assert_eq!(first.tickets, 1);
        assert_eq!(first.verdicts, ["wrong_child"]);
        assert_eq!(
            first.establishment_name.as_deref(),
            Some("Collège Montaigne")
        );
        assert_eq!(
            first.saw,
            "Pronote, sur la session d'un autre enfant : Léa (4B)"
        );
        assert!(first.steps[1].alarming);
        let second = &t.logins[1];
        assert_eq!(second.instances, ["b.jsonl"]);
        assert_eq!(second.from, "2026-03-10 19:00:00");
        assert_eq!(t.bad_lines, 1);
    }

    #[test]
    fn a_retried_login_is_one_login_with_its_tickets_counted() {
        let retry = format!(
            r#"{{"ts":"2026-03-09T18:40:00Z","event":"retry","attempt":1,"verdict":"wrong_child","rule":"intent.pin","uai_expected":"0330012A","uai_asserted":"0330012A","principal":"{FAMILY}","pupil":"{}","session":"{SESSION}","latency_ms":1}}"#,
            "d".repeat(32)
        );
        let log = [
            retry,
            redirect("2026-03-09T18:40:00.001Z", SESSION, "relogin", Some(FAMILY)),
            redirect("2026-03-09T18:40:01Z", SESSION, "delivered", Some(FAMILY)),
            validate("2026-03-09T18:40:02Z", SESSION, FAMILY, "ok"),
        ]
        .join("\n");
        let t = timeline(&[("a.jsonl", &log)]);
        assert_eq!(t.logins.len(), 1);
        let login = &t.logins[0];
        assert_eq!((login.tickets, login.relogins), (2, 1));
        assert!(
            login.steps[0].text.contains("l'enfant dddddddd"),
            "{login:#?}"
        );
        assert_eq!(login.saw, "Pronote, sur la session de Léa (4B)");
        let mut html = Vec::new();
        write(&t, Format::Html, &mut html).unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("Connexion 1"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_give_up_left_for_a_new_login_ends_the_first() {
        let gave_up = redirect("2026-03-09T18:40:00Z", SESSION, "gave_up", Some(FAMILY));
        let log = [
            gave_up,
            redirect("2026-03-09T18:41:00Z", SESSION, "delivered", Some(FAMILY)),
            validate("2026-03-09T18:41:01Z", SESSION, FAMILY, "ok"),
        ]
        .join("\n");
        let t = timeline(&[("a.jsonl", &log)]);
        assert_eq!(t.logins.len(), 2);
        assert_eq!(
            t.logins[0].saw,
            "la page « l'ENT n'a pas ouvert la session de l'enfant attendu »"
        );
    }
}
