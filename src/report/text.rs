//! The report as plain text, in French (the DSI's language), for a terminal or a mail.

use std::io::{self, Write};

use super::{Report, Row};

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "bonenfant — rapport des validations CAS")?;
    if let Some(period) = &report.period {
        writeln!(out, "Période : {} → {} (UTC)", period.from, period.to)?;
    }
    writeln!(out)?;
    writeln!(out, "Lignes lues            {:>10}", report.lines)?;
    writeln!(out, "Lignes ignorées        {:>10}", report.bad_lines.count)?;
    writeln!(out, "Validations            {:>10}", report.validations)?;
    writeln!(
        out,
        "  dont parents         {:>10}",
        report.parent_validations
    )?;
    writeln!(
        out,
        "Mauvais enfant         {:>10}  ({})",
        report.wrong_landings,
        percent(report.wrong_landing_rate)
    )?;
    writeln!(
        out,
        "Familles concernées    {:>10}  sur {}",
        report.families_affected, report.families_seen
    )?;
    writeln!(out, "Événements perdus      {:>10}", report.events_lost)?;

    section(out, "Verdicts")?;
    for (verdict, n) in report.verdicts_in_order() {
        writeln!(out, "  {verdict:<22}{n:>10}")?;
    }
    section(out, "Par établissement (UAI attendu)")?;
    rows(out, &report.by_establishment)?;
    section(out, "Par jour (UTC)")?;
    rows(out, &report.by_day)?;
    section(out, "Épinglage")?;
    for (pin, n) in report.pins_in_order() {
        writeln!(out, "  {pin:<22}{n:>10}")?;
    }
    section(out, "Nouvelles connexions par validation (retry)")?;
    for (retries, n) in &report.retries {
        writeln!(out, "  {retries:<22}{n:>10}")?;
    }
    if !report.errors.is_empty() {
        section(out, "Codes d'erreur")?;
        for (code, n) in &report.errors {
            writeln!(out, "  {:<40}{n:>10}", printable(code))?;
        }
    }
    if report.bad_lines.count > 0 {
        section(out, "Lignes ignorées")?;
        for (reason, n) in &report.bad_lines.by_reason {
            writeln!(out, "  {reason:<22}{n:>10}")?;
        }
        let first: Vec<String> = report.bad_lines.first.iter().map(u64::to_string).collect();
        writeln!(out, "  premières lignes : {}", first.join(", "))?;
    }
    Ok(())
}

fn section(out: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{title}")?;
    writeln!(out, "{}", "-".repeat(title.chars().count()))
}

fn rows(out: &mut dyn Write, rows: &[Row]) -> io::Result<()> {
    writeln!(
        out,
        "  {:<12}{:>12}{:>10}{:>10}{:>10}{:>8}{:>8}{:>8}{:>10}",
        "", "validations", "parents", "mauv.enf", "mauv.étab", "flip", "ambigu", "non rés", "taux"
    )?;
    for row in rows {
        writeln!(
            out,
            "  {:<12}{:>12}{:>10}{:>10}{:>10}{:>8}{:>8}{:>8}{:>10}",
            printable(&row.key),
            row.validations,
            row.parent_validations,
            row.wrong_child,
            row.wrong_establishment,
            row.flip,
            row.ambiguous,
            row.unresolved,
            percent(row.wrong_landing_rate)
        )?;
    }
    Ok(())
}

pub(super) fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// Keys and codes come from the log: no control character reaches the terminal.
fn printable(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
