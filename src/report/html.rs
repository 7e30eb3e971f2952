//! The report as one self-contained HTML page, in French: inline CSS, no script and no
//! external asset, so it opens offline, prints, and goes in a slide. Charts are HTML
//! boxes sized in percent, so their labels keep the page's font size on a phone (an
//! SVG scaled down to a phone's width shrank them to a few pixels); wide tables scroll
//! sideways inside their section instead of widening the page.
//!
//! Written with the `pages` templates, which escape every value; text from the log or
//! the directory goes through [`Printable`], which also drops control characters.

use std::io::{self, Write};

use crate::pages::{self, html, Css, Head, Markup, Printable};

use super::{Figures, Report, Row, Run, StrategyGroup};
use crate::pages::verdict_label;

const STYLE: Css = Css("
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0;color:#1d2733;background:#f5f6f8;line-height:1.4}
main{max-width:980px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:0 0 4px}
h2{font-size:1.15rem;margin:8px 0;border-bottom:2px solid #d9dee5;padding-bottom:4px}
h3{font-size:1rem;margin:12px 0 4px}
p.sub{color:#55606e;margin:0 0 12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:8px}
.card{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:8px 12px}
.card .n{font-size:1.4rem;font-weight:600}
.card .l{color:#55606e;font-size:.85rem}
.card.alert .n{color:#c0392b}
.card.good .n{color:#1e7b4a}
section{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:8px 12px 12px;margin-top:12px}
details{border-top:1px solid #e6e9ee;padding:6px 0}
summary{cursor:pointer;font-weight:600}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin-top:8px}
th,td{padding:4px 8px;text-align:right;border-bottom:1px solid #e6e9ee;white-space:nowrap}
th:first-child,td:first-child,td.name{text-align:left}
td.name{white-space:normal;min-width:10em}
th{background:#eef1f5}
td.bad,.bad{color:#c0392b;font-weight:600}
.bars{margin:8px 0}
.bar{display:grid;grid-template-columns:minmax(5em,32%) 1fr auto;gap:8px;align-items:center;margin:3px 0;font-size:.85rem}
.bar .bl{overflow-wrap:anywhere}
.bar .bt{background:#eef1f5;height:14px;border-radius:2px}
.bar .bf{display:block;height:100%;border-radius:2px}
.bar .bv{white-space:nowrap}
.blue{background:#2f5d9b}.red{background:#c0392b}.grey{background:#7f8c8d}.green{background:#1e7b4a}
.cols{display:flex;gap:2px;height:180px;margin:8px 0 0}
.col{flex:1;display:flex;flex-direction:column;min-width:0}
.col .cb{flex:1;display:flex;flex-direction:column;justify-content:flex-end}
.col .ct{display:flex;flex-direction:column;justify-content:flex-end;min-height:1px}
.col .cl{font-size:.7rem;text-align:center;height:1.3em;overflow:hidden;color:#55606e}
.legend{font-size:.8rem;color:#55606e}
.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 8px}
footer{color:#55606e;font-size:.8rem;margin-top:24px}
@media print{body{background:#fff}section{break-inside:avoid}details{display:block}}
");

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(report).as_bytes())
}

fn render(report: &Report) -> String {
    let totals = &report.totals;
    let body = html! {
        main {
            h1 { "Connexions ENT → Pronote : le bon enfant ?" }
            p.sub {
                @match &report.period {
                    Some(period) => {
                        "Journal bonenfant du " (Printable(&short_ts(&period.from)))
                        " au " (Printable(&short_ts(&period.to))) " (UTC)"
                    }
                    None => { "Journal bonenfant vide" }
                }
                @if report.window.since.is_some() || report.window.until.is_some() {
                    " ; fenêtre "
                    (Printable(report.window.since.as_deref().unwrap_or("début"))) " → "
                    (Printable(report.window.until.as_deref().unwrap_or("fin")))
                    " (" (count(report.window.outside)) " événement(s) hors fenêtre)"
                }
                ". Jours et heures : " (report.time_zone) "."
            }
            @if report.by_strategy.is_empty() {
                (cards(totals))
            }
            @for group in &report.by_strategy {
                h3 { (group_title(group)) }
                (cards(&group.figures))
            }
            @if report.events_lost > 0 {
                p.sub.bad { (count(report.events_lost)) " événement(s) perdu(s) par l'écrivain du journal." }
            }
            (section(
                "Exécutions",
                "Chaque démarrage de bonenfant, avec sa stratégie d'épinglage : observer \
                 (observe) ne change rien, épingler (retry, rewrite) corrige.",
                runs(&report.runs),
            ))
            (section(
                "Par établissement",
                "Part des validations de parents où Pronote a reçu un autre enfant que celui \
                 voulu, sans correction, pour chaque stratégie.",
                html! {
                    @for group in &report.by_strategy {
                        h3 { (group_title(group)) }
                        (hbars("Taux de mauvais enfant par établissement", &establishment_bars(&group.by_establishment)))
                        (table("Établissement", true, &group.by_establishment))
                    }
                    @if report.by_strategy.is_empty() {
                        p { "Aucune donnée." }
                    }
                },
            ))
            (section(
                "Par heure de la journée",
                "Validations (bleu) et mauvais enfant reçu (rouge), par heure : le pic du soir.",
                html! {
                    (columns("Validations par heure de la journée", &report.by_hour, 3))
                    (legend())
                    (table("Heure", false, &active(&report.by_hour)))
                },
            ))
            (section("Par jour", "", html! {
                (columns("Validations par jour", &report.by_day, report.by_day.len().div_ceil(10)))
                (legend())
                (table("Jour", false, &report.by_day))
            }))
            (section(
                "Épinglage",
                "Ce que bonenfant a fait pour chaque validation, et combien de nouvelles \
                 connexions il a demandées avant d'obtenir le bon enfant (ou d'abandonner).",
                html! {
                    (hbars("Validations par issue d'épinglage", &pin_bars(totals)))
                    h3 { "Nouvelles connexions par connexion vérifiée" }
                    p {
                        (count(totals.relogins.logins)) " connexion(s) vérifiée(s), "
                        (count(totals.relogins.total)) " nouvelle(s) connexion(s) ; médiane "
                        (totals.relogins.p50) ", 90e centile " (totals.relogins.p90)
                        ", 99e centile " (totals.relogins.p99) ", maximum "
                        (totals.relogins.max) "."
                    }
                    (hbars("Répartition des nouvelles connexions", &relogin_bars(totals)))
                    @if totals.give_ups > 0 {
                        p {
                            "Abandons : " (count(totals.give_ups))
                            @for (reason, n) in &totals.give_ups_by_reason {
                                " ; " (give_up_label(reason)) " " (count(*n))
                            }
                            ". Clics « continuer quand même » : " (count(totals.continued_anyway))
                            ", « réessayer » : " (count(totals.tried_again)) "."
                        }
                    }
                },
            ))
            (section("Verdicts", "Une validation Pronote = un verdict.", html! {
                (hbars("Validations par verdict", &verdict_bars(totals)))
            }))
            @if !report.errors.is_empty() || report.bad_lines.count > 0 || report.events_lost > 0 {
                (section("Erreurs et qualité du journal", "", log_quality(report)))
            }
            footer {
                p {
                    strong { "Lecture." } " " em { "Mauvais enfant" } " : Pronote a reçu un \
                    autre enfant que celui voulu par le parent (enfant choisi, seul enfant \
                    connu dans l'établissement, ou enfant de la session) ou un enfant d'un \
                    autre établissement, sans que bonenfant le corrige ; chaque connexion \
                    compte une fois. "
                    em { "Corrigées" } " : l'ENT proposait un autre enfant et bonenfant a \
                    obtenu le bon (nouvelle connexion, réécriture ou réordonnancement). "
                    em { "Choix" } " : un parent a indiqué son enfant sur la page « quel \
                    enfant ? ». "
                    em { "Abandons" } " : bonenfant a cessé de redemander et a affiché sa page \
                    « continuer quand même ». "
                    em { "Signalées" } " : validations au verdict autre que « correct » \
                    (mauvais enfant, ambigu, changement d'enfant, non résolu). Le taux porte \
                    sur les validations de parents réussies (personnels et élèves exclus). "
                    em { "Familles concernées" } " : comptes parents distincts ayant reçu au \
                    moins une fois un mauvais enfant."
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

fn cards(f: &Figures) -> Markup {
    let cards = [
        (count(f.validations), "validations Pronote".to_owned(), ""),
        (
            rate(f.wrong_landing_rate),
            format!("mauvais enfant reçu ({} fois)", count(f.wrong_landings)),
            if f.wrong_landings > 0 { "alert" } else { "" },
        ),
        (
            count(f.corrected.total),
            "corrigées par l'épinglage".to_owned(),
            if f.corrected.total > 0 { "good" } else { "" },
        ),
        (
            count(f.choices),
            format!(
                "choix d'un enfant ({} page(s) affichée(s))",
                count(f.chooser_pages)
            ),
            "",
        ),
        (
            count(f.give_ups),
            "abandons (page « continuer quand même »)".to_owned(),
            if f.give_ups > 0 { "alert" } else { "" },
        ),
        (
            format!(
                "{} / {}",
                count(f.families_affected),
                count(f.families_seen)
            ),
            "familles concernées".to_owned(),
            if f.families_affected > 0 { "alert" } else { "" },
        ),
    ];
    html! {
        div.cards {
            @for (value, label, class) in &cards {
                div class={ "card " (class) } {
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

fn runs(runs: &[Run]) -> Markup {
    html! {
        @if runs.is_empty() {
            p { "Aucune donnée." }
        } @else {
            div.scroll {
                table {
                    tr {
                        th { "N°" } th { "Début" } th { "Stratégie" } th { "Validations" }
                        th { "Mauvais enfant" } th { "Corrigées" } th { "Choix" }
                        th { "Abandons" } th { "Familles concernées" }
                    }
                    @for run in runs {
                        @let f = &run.figures;
                        tr {
                            td { (run.number) }
                            td { (Printable(&short_ts(run_start(run)))) }
                            td { (strategy(run)) }
                            td { (count(f.validations)) }
                            td.bad[f.wrong_landings > 0] {
                                (count(f.wrong_landings)) " (" (rate(f.wrong_landing_rate)) ")"
                            }
                            td { (count(f.corrected.total)) }
                            td { (count(f.choices)) }
                            td { (count(f.give_ups)) }
                            td { (count(f.families_affected)) }
                        }
                    }
                }
            }
            @for run in runs {
                details {
                    summary {
                        "Exécution " (run.number) " : " (strategy(run)) ", "
                        (Printable(&short_ts(run_start(run))))
                        @if let Some(stopped) = &run.stopped {
                            " → " (Printable(&short_ts(stopped)))
                        }
                        " (" (Printable(&run.source)) ")"
                    }
                    (cards(&run.figures))
                    (table("Établissement", true, &run.by_establishment))
                }
            }
        }
    }
}

fn strategy(run: &Run) -> Markup {
    strategy_name(run.pin_strategy.as_deref())
}

/// A strategy as the DSI reads it, its name in the trace beside.
fn strategy_name(name: Option<&str>) -> Markup {
    let meaning = match name {
        Some("observe") => "observer",
        Some("retry") => "épingler par nouvelle connexion",
        Some("rewrite") => "épingler par réécriture",
        Some("off") => "inspection désactivée",
        Some(_) => "stratégie",
        None => "stratégie inconnue (avant le premier démarrage du fichier)",
    };
    html! {
        (meaning)
        @if let Some(name) = name {
            " (" code { (Printable(name)) } ")"
        }
    }
}

fn group_title(group: &StrategyGroup) -> Markup {
    html! {
        (strategy_name(group.pin_strategy.as_deref())) " — "
        @if group.runs.len() == 1 { "exécution " } @else { "exécutions " }
        @for (i, number) in group.runs.iter().enumerate() {
            @if i > 0 { ", " }
            (number)
        }
    }
}

/// The rows where something happened (hours of day without a login say nothing).
fn active(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .filter(|row| row.validations + row.give_ups + row.choices > 0)
        .cloned()
        .collect()
}

fn run_start(run: &Run) -> &str {
    run.started
        .as_deref()
        .or(run.period.as_ref().map(|p| p.from.as_str()))
        .unwrap_or("?")
}

fn legend() -> Markup {
    html! {
        p.legend { i.blue {} "validations" i.red {} "mauvais enfant reçu" }
    }
}

fn log_quality(report: &Report) -> Markup {
    html! {
        @if !report.errors.is_empty() {
            div.scroll {
                table {
                    tr { th { "Code d'erreur" } th { "Nombre" } }
                    @for (code, n) in &report.errors {
                        tr { td { code { (Printable(code)) } } td { (count(*n)) } }
                    }
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

fn verdict_bars(f: &Figures) -> Vec<Bar> {
    count_bars(f.verdicts_in_order(), verdict_label, |verdict| {
        matches!(verdict, "wrong_child" | "wrong_establishment")
    })
}

/// Establishments, highest wrong-landing rate first, by name when the directory gave
/// one.
fn establishment_bars(rows: &[Row]) -> Vec<Bar> {
    let mut by_rate: Vec<&Row> = rows.iter().collect();
    by_rate.sort_by(|a, b| b.wrong_landing_rate.total_cmp(&a.wrong_landing_rate));
    by_rate
        .into_iter()
        .map(|row| Bar {
            label: row.name.clone().unwrap_or_else(|| row.key.clone()),
            value: row.wrong_landing_rate,
            text: format!(
                "{} ({}/{})",
                rate(row.wrong_landing_rate),
                count(row.wrong_landings),
                count(row.parent_validations)
            ),
            color: if row.wrong_landings > 0 {
                "red"
            } else {
                "blue"
            },
        })
        .collect()
}

fn pin_bars(f: &Figures) -> Vec<Bar> {
    count_bars(f.pins_in_order(), pin_label, |pin| pin == "gave_up")
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
            color: if alarming(name) { "red" } else { "blue" },
        })
        .collect()
}

fn relogin_bars(f: &Figures) -> Vec<Bar> {
    f.relogins
        .distribution
        .iter()
        .map(|(relogins, n)| Bar {
            label: format!("{relogins} nouvelle(s) connexion(s)"),
            value: *n as f64,
            text: count(*n),
            color: "grey",
        })
        .collect()
}

/// A horizontal bar chart: one labelled row per bar, lengths in percent of the largest.
fn hbars(title: &str, bars: &[Bar]) -> Markup {
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    html! {
        div.bars role="img" aria-label=(title) {
            @if bars.is_empty() {
                p { "Aucune donnée." }
            }
            @for bar in bars {
                @let width = if max > 0.0 { 100.0 * bar.value / max } else { 0.0 };
                div.bar {
                    span.bl { (Printable(&bar.label)) }
                    span.bt { span class={ "bf " (bar.color) } style=(percent_style("width", width)) {} }
                    span.bv { (bar.text) }
                }
            }
        }
    }
}

/// A column chart of validations per row (hours, days), the wrong landings in red at
/// the foot of each column; a label under every `label_every`th column.
fn columns(title: &str, rows: &[Row], label_every: usize) -> Markup {
    let max = rows.iter().map(|r| r.validations).max().unwrap_or(0);
    let label_every = label_every.max(1);
    html! {
        @if rows.is_empty() {
            p { "Aucune donnée." }
        } @else {
            div.cols role="img" aria-label=(title) {
                @for (i, row) in rows.iter().enumerate() {
                    @let height = if max > 0 { 100.0 * row.validations as f64 / max as f64 } else { 0.0 };
                    @let wrong = if row.validations > 0 {
                        100.0 * row.wrong_landings as f64 / row.validations as f64
                    } else {
                        0.0
                    };
                    div.col title={
                        (Printable(&row.key)) " : " (count(row.validations)) " validation(s), "
                        (count(row.wrong_landings)) " mauvais enfant"
                    } {
                        span.cb {
                            span.ct.blue style=(percent_style("height", height)) {
                                span.red style=(percent_style("height", wrong)) {}
                            }
                        }
                        span.cl {
                            @if i % label_every == 0 { (Printable(&row.key)) }
                        }
                    }
                }
            }
        }
    }
}

/// A table of rows; `named` adds the establishment's name beside its UAI, when the
/// directory named any.
fn table(first: &str, named: bool, rows: &[Row]) -> Markup {
    let named = named && rows.iter().any(|row| row.name.is_some());
    html! {
        div.scroll {
            table {
                tr {
                    th { (first) }
                    @if named { th { "Nom" } }
                    th { "Validations" } th { "Parents" } th { "Mauvais enfant" } th { "Taux" }
                    th { "Corrigées" } th { "Choix" } th { "Abandons" } th { "Signalées" }
                    th { "Familles" }
                }
                @for row in rows {
                    tr {
                        td { (Printable(&row.key)) }
                        @if named {
                            td.name { (Printable(row.name.as_deref().unwrap_or(""))) }
                        }
                        td { (count(row.validations)) }
                        td { (count(row.parent_validations)) }
                        td { (count(row.wrong_landings)) }
                        td.bad[row.wrong_landings > 0] { (rate(row.wrong_landing_rate)) }
                        td { (count(row.corrected)) }
                        td { (count(row.choices)) }
                        td { (count(row.give_ups)) }
                        td { (count(row.flagged)) }
                        td { (count(row.families_affected)) }
                    }
                }
            }
        }
    }
}

/// `width:42.0%`: a computed number, never text from the log.
fn percent_style(property: &'static str, value: f64) -> String {
    format!("{property}:{:.1}%", value.clamp(0.0, 100.0))
}

fn pin_label(pin: &str) -> &'static str {
    match pin {
        "none" => "aucune action",
        "retry" => "nouvelle connexion",
        "rewrite" => "réécriture",
        "reorder" => "réordonnancement",
        "gave_up" => "abandon, puis « continuer »",
        _ => "autre",
    }
}

fn give_up_label(reason: &str) -> &'static str {
    match reason {
        "attempts" => "essais épuisés",
        "time_budget" => "délai épuisé",
        _ => "autre motif",
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
    use crate::report::{Period, Report, Row, Run, StrategyGroup};

    /// A report whose every string from the log or the directory is `value`, with one
    /// row of each kind and one run.
    fn report_with(value: &str) -> Report {
        let row = |key: &str| Row {
            key: key.to_owned(),
            name: Some(value.to_owned()),
            validations: 3,
            parent_validations: 2,
            wrong_child: 1,
            wrong_landings: 1,
            wrong_landing_rate: 0.5,
            ..Row::default()
        };
        let period = Some(Period {
            from: value.to_owned(),
            to: value.to_owned(),
        });
        let mut report = Report {
            lines: 10,
            period: period.clone(),
            by_establishment: vec![row(value)],
            by_day: vec![row(value)],
            by_hour: vec![row(value)],
            by_strategy: vec![StrategyGroup {
                pin_strategy: Some(value.to_owned()),
                runs: vec![1],
                by_establishment: vec![row(value)],
                ..StrategyGroup::default()
            }],
            runs: vec![Run {
                number: 1,
                source: value.to_owned(),
                pin_strategy: Some(value.to_owned()),
                started: Some(value.to_owned()),
                stopped: Some(value.to_owned()),
                period,
                by_establishment: vec![row(value)],
                ..Run::default()
            }],
            ..Report::default()
        };
        report.totals.validations = 3;
        report.errors.insert(value.to_owned(), 1);
        report.bad_lines.count = 1;
        report.bad_lines.first.push(7);
        report.bad_lines.by_reason.insert("not_json", 1);
        report
    }

    #[test]
    fn hostile_uais_days_names_and_error_codes_are_text() {
        let reference = skeleton(&render(&report_with("0330012A")));
        for hostile in HOSTILE {
            let page = render(&report_with(hostile));
            assert_eq!(skeleton(&page), reference, "{hostile}: {page}");
            // Timestamps are cut to 16 characters; the rest appears whole.
            assert!(page.contains(&format!("<code>{}</code>", escaped(hostile))));
            assert!(page.contains(&format!("<td>{}</td>", escaped(hostile))));
            assert!(page.contains(&format!("<td class=\"name\">{}</td>", escaped(hostile))));
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
    fn page_is_self_contained_and_reads_on_a_phone() {
        let page = render(&report_with("0330012A"));
        assert!(page.starts_with(
            "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><meta name=\"viewport\""
        ));
        assert!(page.contains("<style>\nbody{font-family:system-ui"));
        for forbidden in ["<script", "src=", "href=", "@import", "url(", "<svg"] {
            assert!(!page.contains(forbidden), "{forbidden}");
        }
        // Every table scrolls inside its own box rather than widening the page.
        assert_eq!(
            page.matches("<table>").count(),
            page.matches("<div class=\"scroll\"><table>").count()
        );
    }

    #[test]
    fn bar_lengths_are_percentages_of_the_largest() {
        let bars = [
            Bar {
                label: "a".to_owned(),
                value: 2.0,
                text: "2".to_owned(),
                color: "blue",
            },
            Bar {
                label: "b".to_owned(),
                value: 1.0,
                text: "1".to_owned(),
                color: "red",
            },
        ];
        let chart = hbars("t", &bars).into_string();
        assert!(chart.contains("style=\"width:100.0%\""), "{chart}");
        assert!(chart.contains("style=\"width:50.0%\""), "{chart}");
    }

    #[test]
    fn french_number_formats() {
        assert_eq!(count(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(count(12), "12");
        assert_eq!(rate(0.1234), "12,3\u{a0}%");
        assert_eq!(short_ts("2026-03-09T17:02:00.123Z"), "2026-03-09 17:02");
    }
}
