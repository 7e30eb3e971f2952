//! The report as plain text, in French (the DSI's language), for a terminal or a mail.
//! Columns are as wide as their widest cell: establishment names are never cut.

use std::io::{self, Write};

use super::{Figures, Report, Row, Run};

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "bonenfant — rapport des validations CAS")?;
    if !report.sources.is_empty() {
        let sources: Vec<String> = report.sources.iter().map(|s| printable(s)).collect();
        writeln!(out, "Journaux : {}", sources.join(", "))?;
    }
    if let Some(period) = &report.period {
        writeln!(
            out,
            "Période : {} → {} (UTC)",
            short_ts(&period.from),
            short_ts(&period.to)
        )?;
    }
    let window = &report.window;
    if window.since.is_some() || window.until.is_some() {
        writeln!(
            out,
            "Fenêtre : {} → {} ({} événement(s) hors fenêtre, non comptés)",
            window.since.as_deref().unwrap_or("début"),
            window.until.as_deref().unwrap_or("fin"),
            window.outside
        )?;
    }
    writeln!(out, "Jours et heures : {}", report.time_zone)?;

    for group in &report.by_strategy {
        let runs: Vec<String> = group.runs.iter().map(usize::to_string).collect();
        section(
            out,
            &format!(
                "Stratégie {} — exécution(s) {}",
                group
                    .pin_strategy
                    .as_deref()
                    .map_or_else(|| "inconnue".to_owned(), printable),
                runs.join(", ")
            ),
        )?;
        figures(out, &group.figures)?;
        writeln!(out)?;
        rows(out, "UAI", &group.by_establishment)?;
    }

    section(out, "Toutes exécutions (stratégies mélangées)")?;
    writeln!(out, "  Lignes lues             {:>10}", report.lines)?;
    writeln!(
        out,
        "  Lignes ignorées         {:>10}",
        report.bad_lines.count
    )?;
    figures(out, &report.totals)?;
    writeln!(out, "  Événements perdus       {:>10}", report.events_lost)?;

    section(out, "Exécutions (un démarrage de bonenfant chacune)")?;
    runs(out, &report.runs)?;

    section(out, &format!("Par jour ({})", report.time_zone))?;
    rows(out, "jour", &report.by_day)?;
    section(
        out,
        &format!("Par heure de la journée ({})", report.time_zone),
    )?;
    let hours: Vec<Row> = report
        .by_hour
        .iter()
        .filter(|row| row.validations + row.give_ups + row.choices > 0)
        .cloned()
        .collect();
    rows(out, "heure", &hours)?;

    let totals = &report.totals;
    section(out, "Épinglage : issue de chaque validation")?;
    for (pin, n) in totals.pins_in_order() {
        writeln!(out, "  {pin:<22}{n:>10}")?;
    }
    section(out, "Nouvelles connexions par connexion vérifiée")?;
    relogins(out, totals)?;
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
    writeln!(out)?;
    writeln!(
        out,
        "Mauvais enfant : Pronote a reçu un autre enfant que celui voulu, sans correction. \
         Corrigées : l'ENT proposait un autre enfant, bonenfant a obtenu le bon. \
         Signalées : verdict autre que « correct » (dont ambigu, changement d'enfant)."
    )?;
    Ok(())
}

fn figures(out: &mut dyn Write, f: &Figures) -> io::Result<()> {
    writeln!(out, "  Validations             {:>10}", f.validations)?;
    writeln!(
        out,
        "    dont parents          {:>10}",
        f.parent_validations
    )?;
    writeln!(
        out,
        "  Mauvais enfant reçu     {:>10}  ({} des validations de parents)",
        f.wrong_landings,
        percent(f.wrong_landing_rate)
    )?;
    writeln!(
        out,
        "  Corrigées               {:>10}  (nouvelle connexion {}, réécriture {}, réordonnancement {})",
        f.corrected.total, f.corrected.retry, f.corrected.rewrite, f.corrected.reorder
    )?;
    writeln!(
        out,
        "  Choix d'un enfant       {:>10}  ({} page(s) « quel enfant ? » affichée(s), {} demandée(s) par bonenfant)",
        f.choices, f.chooser_pages, f.chooser_asked
    )?;
    writeln!(
        out,
        "  Abandons                {:>10}  ({} clic(s) « continuer quand même », {} « réessayer »)",
        f.give_ups, f.continued_anyway, f.tried_again
    )?;
    writeln!(out, "  Signalées               {:>10}", f.flagged)?;
    writeln!(
        out,
        "  Familles concernées     {:>10}  sur {} (aidées : {})",
        f.families_affected, f.families_seen, f.families_helped
    )?;
    Ok(())
}

fn runs(out: &mut dyn Write, runs: &[Run]) -> io::Result<()> {
    let header = [
        "n°",
        "début (UTC)",
        "fichier",
        "stratégie",
        "validations",
        "mauvais enfant",
        "corrigées",
        "choix",
        "abandons",
        "familles",
    ];
    let cells: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let f = &run.figures;
            vec![
                run.number.to_string(),
                short_ts(
                    run.started
                        .as_deref()
                        .or(run.period.as_ref().map(|p| p.from.as_str()))
                        .unwrap_or("?"),
                ),
                printable(&run.source),
                run.pin_strategy
                    .as_deref()
                    .map_or_else(|| "?".to_owned(), printable),
                f.validations.to_string(),
                format!("{} ({})", f.wrong_landings, percent(f.wrong_landing_rate)),
                f.corrected.total.to_string(),
                f.choices.to_string(),
                f.give_ups.to_string(),
                f.families_affected.to_string(),
            ]
        })
        .collect();
    table(out, &header, 4, &cells)
}

/// A table of rows; a name column when the directory named any of them.
fn rows(out: &mut dyn Write, first: &str, rows: &[Row]) -> io::Result<()> {
    let named = rows.iter().any(|row| row.name.is_some());
    let mut header = vec![first];
    if named {
        header.push("nom");
    }
    header.extend([
        "validations",
        "parents",
        "mauv.enfant",
        "taux",
        "corrigées",
        "choix",
        "abandons",
        "signalées",
        "familles",
    ]);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![printable(&row.key)];
            if named {
                cells.push(row.name.as_deref().map(printable).unwrap_or_default());
            }
            cells.extend([
                row.validations.to_string(),
                row.parent_validations.to_string(),
                row.wrong_landings.to_string(),
                percent(row.wrong_landing_rate),
                row.corrected.to_string(),
                row.choices.to_string(),
                row.give_ups.to_string(),
                row.flagged.to_string(),
                row.families_affected.to_string(),
            ]);
            cells
        })
        .collect();
    table(out, &header, if named { 2 } else { 1 }, &cells)
}

fn relogins(out: &mut dyn Write, f: &Figures) -> io::Result<()> {
    let r = &f.relogins;
    writeln!(
        out,
        "  {} connexion(s) vérifiée(s), {} nouvelle(s) connexion(s) ; médiane {}, 90e centile {}, 99e centile {}, max {}",
        r.logins, r.total, r.p50, r.p90, r.p99, r.max
    )?;
    for (relogins, n) in &r.distribution {
        writeln!(out, "  {relogins:<22}{n:>10}")?;
    }
    Ok(())
}

/// A table whose first `left` columns are left-aligned and the others right-aligned,
/// each as wide as its widest cell.
fn table(
    out: &mut dyn Write,
    header: &[&str],
    left: usize,
    cells: &[Vec<String>],
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut line = String::from(" ");
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(width - cell.chars().count());
            line.push(' ');
            if i < left {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        line.trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in cells {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn section(out: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{title}")?;
    writeln!(out, "{}", "-".repeat(title.chars().count()))
}

pub(super) fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// `2026-03-09T17:02:00.123Z` → `2026-03-09 17:02`, printable.
fn short_ts(ts: &str) -> String {
    printable(
        &ts.get(..16)
            .map_or_else(|| ts.to_owned(), |t| t.replace('T', " ")),
    )
}

/// Keys, names and codes come from the log: no control character reaches the terminal.
fn printable(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
