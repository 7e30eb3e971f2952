//! The report as one self-contained HTML page, in French: inline CSS, SVG bar charts,
//! no script and no external asset, so it opens offline, prints, and goes in a slide.
//! Written with the `pages` templates, which escape every value; text from the log goes
//! through [`Printable`], which also drops control characters.

use std::io::{self, Write};

use crate::pages::{self, html, Css, Head, Markup, Printable};

use super::{Report, Row};

/// Chart geometry, in SVG user units (the SVG scales to the page width).
const CHART_WIDTH: f64 = 720.0;
const LABEL_WIDTH: f64 = 150.0;
const VALUE_WIDTH: f64 = 150.0;
const ROW_HEIGHT: f64 = 24.0;
const COLUMN_CHART_HEIGHT: f64 = 200.0;

const BLUE: &str = "#2f5d9b";
const RED: &str = "#c0392b";
const GREY: &str = "#7f8c8d";

const STYLE: Css = Css("
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0;color:#1d2733;background:#f5f6f8}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px}
h2{font-size:1.15rem;margin:8px 0 8px;border-bottom:2px solid #d9dee5;padding-bottom:4px}
p.sub{color:#55606e;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:12px 16px;min-width:140px;flex:1}
.card .n{font-size:1.6rem;font-weight:600}
.card .l{color:#55606e;font-size:.85rem}
.card.alert .n{color:#c0392b}
section{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:8px 16px 16px;margin-top:16px}
svg{width:100%;height:auto;display:block}
svg text{font-size:12px;fill:#1d2733}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin-top:8px}
th,td{padding:4px 8px;text-align:right;border-bottom:1px solid #e6e9ee}
th:first-child,td:first-child{text-align:left}
th{background:#eef1f5}
td{white-space:nowrap}
td.bad{color:#c0392b;font-weight:600}
footer{color:#55606e;font-size:.8rem;margin-top:32px}
@media print{body{background:#fff}section{break-inside:avoid}}
");

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(report).as_bytes())
}

fn render(report: &Report) -> String {
    let body = html! {
        main {
            h1 { "Connexions ENT → Pronote : le bon enfant ?" }
            @match &report.period {
                Some(period) => {
                    p.sub {
                        "Journal bonenfant du " (Printable(&short_ts(&period.from)))
                        " au " (Printable(&short_ts(&period.to))) " (heure UTC)."
                    }
                }
                None => { p.sub { "Journal bonenfant vide." } }
            }
            (cards(report))
            (section("Verdicts", "Une validation Pronote = un verdict.", html! {
                (hbars("Validations par verdict", &verdict_bars(report)))
            }))
            (section(
                "Par établissement",
                "Part des validations de parents où Pronote a reçu un autre enfant que celui \
                 voulu (mauvais enfant ou mauvais établissement), par UAI attendu.",
                html! {
                    (hbars("Taux de mauvais enfant par établissement", &establishment_bars(report)))
                    (table("UAI", &report.by_establishment))
                },
            ))
            (section("Par jour", "Jours en UTC.", html! {
                (columns("Taux de mauvais enfant par jour", &report.by_day))
                (table("Jour", &report.by_day))
            }))
            (section(
                "Épinglage",
                "Ce que la stratégie d'épinglage a fait pour chaque validation.",
                html! {
                    (hbars("Validations par issue d'épinglage", &pin_bars(report)))
                    (hbars("Répartition des nouvelles connexions (retry)", &retry_bars(report)))
                },
            ))
            @if !report.errors.is_empty() || report.bad_lines.count > 0 || report.events_lost > 0 {
                (section("Erreurs et qualité du journal", "", log_quality(report)))
            }
            footer {
                p {
                    strong { "Lecture." } " " em { "Mauvais enfant" } " : Pronote a reçu un \
                    autre enfant que celui voulu par le parent (enfant épinglé, seul enfant \
                    connu dans l'établissement, ou enfant de la session). "
                    em { "Mauvais établissement" } " : l'enfant reçu n'est pas scolarisé dans \
                    l'établissement dont le Pronote a demandé la connexion. Le taux porte sur \
                    les validations de parents réussies (personnels et élèves exclus). "
                    em { "Familles concernées" } " : comptes parents distincts ayant eu au \
                    moins un verdict autre que « correct »."
                }
                p {
                    "Les identifiants (comptes, élèves, sessions) ne figurent dans le journal \
                     que sous forme de pseudonymes (HMAC à clé secrète) ; aucun nom, ticket ni \
                     cookie n'y apparaît."
                }
            }
        }
    };
    pages::document(
        &Head {
            title: "bonenfant — rapport des validations CAS",
            viewport: true,
            style: Some(STYLE),
        },
        body,
    )
}

fn cards(report: &Report) -> Markup {
    let retried = report.pin.get("retry").copied().unwrap_or(0);
    let wrong = format!(
        "{} fois mauvais enfant ou établissement",
        count(report.wrong_landings)
    );
    let families = format!(
        "{} / {}",
        count(report.families_affected),
        count(report.families_seen)
    );
    let cards = [
        (
            count(report.validations),
            "validations Pronote".to_owned(),
            false,
        ),
        (
            rate(report.wrong_landing_rate),
            wrong,
            report.wrong_landings > 0,
        ),
        (
            families,
            "familles concernées".to_owned(),
            report.families_affected > 0,
        ),
        (count(retried), "corrigées par retry".to_owned(), false),
        (
            count(report.events_lost),
            "événements perdus".to_owned(),
            report.events_lost > 0,
        ),
    ];
    html! {
        div.cards {
            @for (value, label, alert) in &cards {
                div.card.alert[*alert] {
                    div.n { (value) }
                    div.l { (label) }
                }
            }
        }
    }
}

/// A titled section of the report; `lead` is left out when empty.
fn section(title: &str, lead: &str, content: Markup) -> Markup {
    html! {
        section {
            h2 { (title) }
            @if !lead.is_empty() {
                p.sub { (lead) }
            }
            (content)
        }
    }
}

fn log_quality(report: &Report) -> Markup {
    html! {
        @if !report.errors.is_empty() {
            table {
                tr { th { "Code d'erreur" } th { "Nombre" } }
                @for (code, n) in &report.errors {
                    tr { td { code { (Printable(code)) } } td { (count(*n)) } }
                }
            }
        }
        p {
            (count(report.bad_lines.count)) " ligne(s) ignorée(s) sur " (count(report.lines))
            " ; " (count(report.events_lost)) " événement(s) perdu(s) par l'écrivain du journal."
        }
        @if !report.bad_lines.first.is_empty() {
            p {
                "Motifs : "
                @for (i, (reason, n)) in report.bad_lines.by_reason.iter().enumerate() {
                    @if i > 0 { ", " }
                    (Printable(reason)) " : " (count(*n))
                }
                ". Premières lignes : "
                @for (i, line) in report.bad_lines.first.iter().enumerate() {
                    @if i > 0 { ", " }
                    (line)
                }
                "."
            }
        }
    }
}

struct Bar {
    label: String,
    value: f64,
    text: String,
    color: &'static str,
}

fn verdict_bars(report: &Report) -> Vec<Bar> {
    count_bars(report.verdicts_in_order(), verdict_label, |verdict| {
        matches!(verdict, "wrong_child" | "wrong_establishment")
    })
}

/// Establishments, highest wrong-landing rate first.
fn establishment_bars(report: &Report) -> Vec<Bar> {
    let mut by_rate: Vec<&Row> = report.by_establishment.iter().collect();
    by_rate.sort_by(|a, b| b.wrong_landing_rate.total_cmp(&a.wrong_landing_rate));
    by_rate.into_iter().map(rate_bar).collect()
}

fn pin_bars(report: &Report) -> Vec<Bar> {
    count_bars(report.pins_in_order(), pin_label, |pin| pin == "gave_up")
}

/// One bar per counted name, red where `alarming` says the name is bad news.
fn count_bars(
    counts: impl Iterator<Item = (&'static str, u64)>,
    label: fn(&str) -> &'static str,
    alarming: fn(&str) -> bool,
) -> Vec<Bar> {
    counts
        .map(|(name, n)| Bar {
            label: label(name).to_owned(),
            value: n as f64,
            text: count(n),
            color: if alarming(name) { RED } else { BLUE },
        })
        .collect()
}

fn retry_bars(report: &Report) -> Vec<Bar> {
    report
        .retries
        .iter()
        .map(|(retries, n)| Bar {
            label: retries.to_string(),
            value: *n as f64,
            text: count(*n),
            color: GREY,
        })
        .collect()
}

fn rate_bar(row: &Row) -> Bar {
    let wrong = row.wrong_child + row.wrong_establishment;
    Bar {
        label: row.key.clone(),
        value: row.wrong_landing_rate,
        text: format!(
            "{} ({}/{})",
            rate(row.wrong_landing_rate),
            count(wrong),
            count(row.parent_validations)
        ),
        color: if wrong > 0 { RED } else { BLUE },
    }
}

/// The `<svg>` of a chart `height` units high, titled for screen readers.
fn chart(title: &str, height: f64, content: Markup) -> Markup {
    html! {
        svg viewBox={ "0 0 " (CHART_WIDTH) " " (height) } role="img" aria-label=(title) {
            title { (title) }
            (content)
        }
    }
}

/// A horizontal bar chart: one labelled row per bar.
fn hbars(title: &str, bars: &[Bar]) -> Markup {
    let height = ROW_HEIGHT * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let span = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    chart(
        title,
        height,
        html! {
            @if bars.is_empty() {
                text x="0" y="16" { "Aucune donnée." }
            }
            @for (i, bar) in bars.iter().enumerate() {
                @let y = ROW_HEIGHT * i as f64 + 4.0;
                @let width = if max > 0.0 { span * bar.value / max } else { 0.0 };
                text x=(LABEL_WIDTH - 8.0) y=(y + 13.0) text-anchor="end" { (Printable(&bar.label)) }
                rect x=(LABEL_WIDTH) y=(y) width=(tenths(width)) height=(ROW_HEIGHT - 8.0)
                    fill=(bar.color) {}
                text x=(tenths(LABEL_WIDTH + width + 6.0)) y=(y + 13.0) { (bar.text) }
            }
        },
    )
}

/// A column chart of the wrong-landing rate, one column per row (days).
fn columns(title: &str, rows: &[Row]) -> Markup {
    let top = 16.0;
    let bottom = 28.0;
    let left = 44.0;
    let base = top + COLUMN_CHART_HEIGHT;
    let plot = CHART_WIDTH - left;
    let max = rows
        .iter()
        .map(|r| r.wrong_landing_rate)
        .fold(0.0, f64::max)
        .max(0.01);
    let slot = plot / rows.len().max(1) as f64;
    // At most about ten date labels, whatever the period.
    let label_every = rows.len().div_ceil(10).max(1);
    chart(
        title,
        COLUMN_CHART_HEIGHT + top + bottom,
        html! {
            line x1=(left) y1=(base) x2=(CHART_WIDTH) y2=(base) stroke="#9aa5b1" {}
            text x=(left - 4.0) y=(top + 4.0) text-anchor="end" { (rate(max)) }
            text x=(left - 4.0) y=(base) text-anchor="end" { "0" }
            @if rows.is_empty() {
                text x=(left) y=(top + 20.0) { "Aucune donnée." }
            }
            @for (i, row) in rows.iter().enumerate() {
                @let h = COLUMN_CHART_HEIGHT * row.wrong_landing_rate / max;
                @let x = tenths(left + slot * i as f64);
                rect x=(x) y=(tenths(base - h)) width=(tenths((slot * 0.8).max(1.0)))
                    height=(tenths(h)) fill=(RED) {
                    title { (Printable(&row.key)) " : " (rate(row.wrong_landing_rate)) }
                }
                @if i % label_every == 0 {
                    text x=(x) y=(base + 16.0) { (Printable(&row.key)) }
                }
            }
        },
    )
}

fn table(first: &str, rows: &[Row]) -> Markup {
    html! {
        table {
            tr {
                th { (first) } th { "Validations" } th { "Parents" } th { "Mauvais enfant" }
                th { "Mauvais étab." } th { "Changement" } th { "Ambigu" } th { "Non résolu" }
                th { "Taux" } th { "Familles" }
            }
            @for row in rows {
                tr {
                    td { (Printable(&row.key)) }
                    td { (count(row.validations)) }
                    td { (count(row.parent_validations)) }
                    td { (count(row.wrong_child)) }
                    td { (count(row.wrong_establishment)) }
                    td { (count(row.flip)) }
                    td { (count(row.ambiguous)) }
                    td { (count(row.unresolved)) }
                    td.bad[row.wrong_child + row.wrong_establishment > 0] {
                        (rate(row.wrong_landing_rate))
                    }
                    td { (count(row.families_affected)) }
                }
            }
        }
    }
}

/// An SVG coordinate to a tenth of a unit: enough for a chart, and short.
fn tenths(value: f64) -> String {
    format!("{value:.1}")
}

fn verdict_label(verdict: &str) -> &'static str {
    match verdict {
        "ok" => "correct",
        "wrong_establishment" => "mauvais établissement",
        "wrong_child" => "mauvais enfant",
        "flip" => "changement d'enfant",
        "ambiguous" => "ambigu",
        "unresolved" => "non résolu",
        _ => "autre",
    }
}

fn pin_label(pin: &str) -> &'static str {
    match pin {
        "none" => "aucune action",
        "retry" => "nouvelle connexion",
        "rewrite" => "réécriture",
        "reorder" => "réordonnancement",
        "gave_up" => "abandon",
        _ => "autre",
    }
}

/// `12,3 %`, French style (no-break space before the sign).
fn rate(rate: f64) -> String {
    format!("{:.1}\u{a0}%", rate * 100.0).replace('.', ",")
}

/// `2026-03-09T17:02:00.123Z` → `2026-03-09 17:02` (timestamps were checked when read).
fn short_ts(ts: &str) -> String {
    ts.get(..16)
        .map_or_else(|| ts.to_owned(), |t| t.replace('T', " "))
}

/// `12 345`, French style (narrow no-break space between thousands).
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::testing::{escaped, skeleton, HOSTILE};
    use crate::report::{Period, Report, Row};

    /// A report whose every string from the log is `value`, with one row of each kind.
    fn report_with(value: &str) -> Report {
        let row = |key: &str| Row {
            key: key.to_owned(),
            validations: 3,
            parent_validations: 2,
            wrong_child: 1,
            wrong_landing_rate: 0.5,
            ..Row::default()
        };
        let mut report = Report {
            lines: 10,
            validations: 3,
            period: Some(Period {
                from: value.to_owned(),
                to: value.to_owned(),
            }),
            by_establishment: vec![row(value)],
            by_day: vec![row(value)],
            ..Report::default()
        };
        report.errors.insert(value.to_owned(), 1);
        report.bad_lines.count = 1;
        report.bad_lines.first.push(7);
        report.bad_lines.by_reason.insert("not_json", 1);
        report
    }

    #[test]
    fn hostile_uais_days_and_error_codes_are_text() {
        let reference = skeleton(&render(&report_with("0330012A")));
        for hostile in HOSTILE {
            let page = render(&report_with(hostile));
            assert_eq!(skeleton(&page), reference, "{hostile}: {page}");
            // Timestamps are cut to 16 characters; the rest appears whole.
            assert!(page.contains(&format!("<code>{}</code>", escaped(hostile))));
            assert!(page.contains(&format!("<td>{}</td>", escaped(hostile))));
            assert!(
                !page.contains("<script") && !page.contains("<img"),
                "{page}"
            );
        }
    }

    #[test]
    fn control_characters_from_the_log_are_replaced() {
        let page = render(&report_with("0330012A\u{1b}[2J\u{0}"));
        assert!(page.contains("0330012A\u{fffd}[2J\u{fffd}"));
        assert!(!page.contains('\u{1b}') && !page.contains('\u{0}'));
    }

    #[test]
    fn page_is_self_contained() {
        let page = render(&report_with("0330012A"));
        assert!(
            page.starts_with("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">")
        );
        assert!(page.contains("<style>\nbody{font-family:system-ui"));
        for forbidden in ["<script", "src=", "href=", "@import", "url("] {
            assert!(!page.contains(forbidden), "{forbidden}");
        }
        // SVG shapes are closed explicitly: an HTML parser nests whatever follows an
        // unclosed `<rect>` inside it, and the chart's text would not show.
        assert_eq!(
            page.matches("<rect").count(),
            page.matches("</rect>").count()
        );
        assert_eq!(
            page.matches("<line").count(),
            page.matches("</line>").count()
        );
    }

    #[test]
    fn french_number_formats() {
        assert_eq!(count(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(count(12), "12");
        assert_eq!(rate(0.1234), "12,3\u{a0}%");
        assert_eq!(short_ts("2026-03-09T17:02:00.123Z"), "2026-03-09 17:02");
    }
}
