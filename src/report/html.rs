//! The report as one self-contained HTML page, in French: inline CSS, SVG bar charts,
//! no script and no external asset, so it opens offline, prints, and goes in a slide.
//! Every value from the log is escaped.

use std::fmt::Write as _;
use std::io::{self, Write};

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

const STYLE: &str = "
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
";

pub(super) fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut page = String::with_capacity(64 * 1024);
    render(report, &mut page);
    out.write_all(page.as_bytes())
}

fn render(report: &Report, page: &mut String) {
    page.push_str("<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<title>bonenfant — rapport des validations CAS</title>\n<style>");
    page.push_str(STYLE);
    page.push_str("</style>\n</head>\n<body>\n<main>\n");
    page.push_str("<h1>Connexions ENT → Pronote : le bon enfant ?</h1>\n");
    match &report.period {
        Some(period) => {
            let _ = writeln!(
                page,
                "<p class=\"sub\">Journal bonenfant du {} au {} (heure UTC).</p>",
                esc(&short_ts(&period.from)),
                esc(&short_ts(&period.to))
            );
        }
        None => page.push_str("<p class=\"sub\">Journal bonenfant vide.</p>\n"),
    }
    cards(report, page);

    heading(page, "Verdicts", "Une validation Pronote = un verdict.");
    let verdicts: Vec<Bar> = report
        .verdicts_in_order()
        .map(|(verdict, n)| Bar {
            label: verdict_label(verdict).to_owned(),
            value: n as f64,
            text: count(n),
            color: if matches!(verdict, "wrong_child" | "wrong_establishment") {
                RED
            } else {
                BLUE
            },
        })
        .collect();
    hbars(page, "Validations par verdict", &verdicts);
    page.push_str("</section>\n");

    heading(
        page,
        "Par établissement",
        "Part des validations de parents où Pronote a reçu un autre enfant que celui voulu \
         (mauvais enfant ou mauvais établissement), par UAI attendu.",
    );
    let mut by_rate: Vec<&Row> = report.by_establishment.iter().collect();
    by_rate.sort_by(|a, b| b.wrong_landing_rate.total_cmp(&a.wrong_landing_rate));
    let bars: Vec<Bar> = by_rate.iter().map(|row| rate_bar(row)).collect();
    hbars(page, "Taux de mauvais enfant par établissement", &bars);
    table(page, "UAI", &report.by_establishment);
    page.push_str("</section>\n");

    heading(page, "Par jour", "Jours en UTC.");
    columns(page, "Taux de mauvais enfant par jour", &report.by_day);
    table(page, "Jour", &report.by_day);
    page.push_str("</section>\n");

    heading(
        page,
        "Épinglage",
        "Ce que la stratégie d'épinglage a fait pour chaque validation.",
    );
    let pins: Vec<Bar> = report
        .pins_in_order()
        .map(|(pin, n)| Bar {
            label: pin_label(pin).to_owned(),
            value: n as f64,
            text: count(n),
            color: if pin == "gave_up" { RED } else { BLUE },
        })
        .collect();
    hbars(page, "Validations par issue d'épinglage", &pins);
    let retries: Vec<Bar> = report
        .retries
        .iter()
        .map(|(retries, n)| Bar {
            label: retries.to_string(),
            value: *n as f64,
            text: count(*n),
            color: GREY,
        })
        .collect();
    hbars(
        page,
        "Répartition des nouvelles connexions (retry)",
        &retries,
    );
    page.push_str("</section>\n");

    if !report.errors.is_empty() || report.bad_lines.count > 0 || report.events_lost > 0 {
        heading(page, "Erreurs et qualité du journal", "");
        if !report.errors.is_empty() {
            page.push_str("<table><tr><th>Code d'erreur</th><th>Nombre</th></tr>\n");
            for (code, n) in &report.errors {
                let _ = writeln!(
                    page,
                    "<tr><td><code>{}</code></td><td>{}</td></tr>",
                    esc(code),
                    count(*n)
                );
            }
            page.push_str("</table>\n");
        }
        let _ = writeln!(
            page,
            "<p>{} ligne(s) ignorée(s) sur {} ; {} événement(s) perdu(s) par l'écrivain du journal.</p>",
            count(report.bad_lines.count),
            count(report.lines),
            count(report.events_lost)
        );
        if !report.bad_lines.first.is_empty() {
            let reasons: Vec<String> = report
                .bad_lines
                .by_reason
                .iter()
                .map(|(reason, n)| format!("{} : {}", esc(reason), count(*n)))
                .collect();
            let first: Vec<String> = report.bad_lines.first.iter().map(u64::to_string).collect();
            let _ = writeln!(
                page,
                "<p>Motifs : {}. Premières lignes : {}.</p>",
                reasons.join(", "),
                first.join(", ")
            );
        }
        page.push_str("</section>\n");
    }

    page.push_str(
        "<footer><p><strong>Lecture.</strong> <em>Mauvais enfant</em> : Pronote a reçu un autre \
         enfant que celui voulu par le parent (enfant épinglé, seul enfant connu dans \
         l'établissement, ou enfant de la session). <em>Mauvais établissement</em> : l'enfant \
         reçu n'est pas scolarisé dans l'établissement dont le Pronote a demandé la connexion. \
         Le taux porte sur les validations de parents réussies (personnels et élèves exclus). \
         <em>Familles concernées</em> : comptes parents distincts ayant eu au moins un verdict \
         autre que « correct ».</p><p>Les identifiants (comptes, élèves, sessions) ne figurent \
         dans le journal que sous forme de pseudonymes (HMAC à clé secrète) ; aucun nom, \
         ticket ni cookie n'y apparaît.</p></footer>\n",
    );
    page.push_str("</main>\n</body>\n</html>\n");
}

fn cards(report: &Report, page: &mut String) {
    page.push_str("<div class=\"cards\">\n");
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
    for (value, label, alert) in [
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
    ] {
        let _ = writeln!(
            page,
            "<div class=\"card{}\"><div class=\"n\">{}</div><div class=\"l\">{}</div></div>",
            if alert { " alert" } else { "" },
            esc(&value),
            esc(&label)
        );
    }
    page.push_str("</div>\n");
}

fn heading(page: &mut String, title: &str, lead: &str) {
    let _ = writeln!(page, "<section>\n<h2>{}</h2>", esc(title));
    if !lead.is_empty() {
        let _ = writeln!(page, "<p class=\"sub\">{}</p>", esc(lead));
    }
}

struct Bar {
    label: String,
    value: f64,
    text: String,
    color: &'static str,
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

/// A horizontal bar chart: one labelled row per bar.
fn hbars(page: &mut String, title: &str, bars: &[Bar]) {
    let height = ROW_HEIGHT * bars.len().max(1) as f64 + 8.0;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let span = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let _ = writeln!(
        page,
        "<svg viewBox=\"0 0 {CHART_WIDTH} {height}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = esc(title)
    );
    if bars.is_empty() {
        let _ = writeln!(page, "<text x=\"0\" y=\"16\">Aucune donnée.</text>");
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = ROW_HEIGHT * i as f64 + 4.0;
        let width = if max > 0.0 {
            span * bar.value / max
        } else {
            0.0
        };
        let _ = writeln!(
            page,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{LABEL_WIDTH}\" y=\"{y}\" width=\"{width:.1}\" height=\"{h}\" fill=\"{color}\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{text}</text>",
            lx = LABEL_WIDTH - 8.0,
            ty = y + 13.0,
            label = esc(&bar.label),
            h = ROW_HEIGHT - 8.0,
            color = bar.color,
            vx = LABEL_WIDTH + width + 6.0,
            text = esc(&bar.text),
        );
    }
    page.push_str("</svg>\n");
}

/// A column chart of the wrong-landing rate, one column per row (days).
fn columns(page: &mut String, title: &str, rows: &[Row]) {
    let top = 16.0;
    let bottom = 28.0;
    let left = 44.0;
    let height = COLUMN_CHART_HEIGHT + top + bottom;
    let plot = CHART_WIDTH - left;
    let max = rows
        .iter()
        .map(|r| r.wrong_landing_rate)
        .fold(0.0, f64::max)
        .max(0.01);
    let _ = writeln!(
        page,
        "<svg viewBox=\"0 0 {CHART_WIDTH} {height}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = esc(title)
    );
    let _ = writeln!(
        page,
        "<line x1=\"{left}\" y1=\"{y0}\" x2=\"{CHART_WIDTH}\" y2=\"{y0}\" stroke=\"#9aa5b1\"/>\
         <text x=\"{lx}\" y=\"{yt}\" text-anchor=\"end\">{max}</text>\
         <text x=\"{lx}\" y=\"{y0}\" text-anchor=\"end\">0</text>",
        y0 = top + COLUMN_CHART_HEIGHT,
        lx = left - 4.0,
        yt = top + 4.0,
        max = esc(&rate(max)),
    );
    if rows.is_empty() {
        let _ = writeln!(
            page,
            "<text x=\"{left}\" y=\"{}\">Aucune donnée.</text>",
            top + 20.0
        );
    }
    let slot = plot / rows.len().max(1) as f64;
    // At most about ten date labels, whatever the period.
    let label_every = rows.len().div_ceil(10).max(1);
    for (i, row) in rows.iter().enumerate() {
        let h = COLUMN_CHART_HEIGHT * row.wrong_landing_rate / max;
        let x = left + slot * i as f64;
        let _ = writeln!(
            page,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{RED}\">\
             <title>{key} : {text}</title></rect>",
            y = top + COLUMN_CHART_HEIGHT - h,
            w = (slot * 0.8).max(1.0),
            key = esc(&row.key),
            text = esc(&rate(row.wrong_landing_rate)),
        );
        if i % label_every == 0 {
            let _ = writeln!(
                page,
                "<text x=\"{x:.1}\" y=\"{y}\">{key}</text>",
                y = top + COLUMN_CHART_HEIGHT + 16.0,
                key = esc(&row.key),
            );
        }
    }
    page.push_str("</svg>\n");
}

fn table(page: &mut String, first: &str, rows: &[Row]) {
    let _ = writeln!(
        page,
        "<table><tr><th>{}</th><th>Validations</th><th>Parents</th><th>Mauvais enfant</th>\
         <th>Mauvais étab.</th><th>Changement</th><th>Ambigu</th><th>Non résolu</th>\
         <th>Taux</th><th>Familles</th></tr>",
        esc(first)
    );
    for row in rows {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            esc(&row.key),
            count(row.validations),
            count(row.parent_validations),
            count(row.wrong_child),
            count(row.wrong_establishment),
            count(row.flip),
            count(row.ambiguous),
            count(row.unresolved),
            if row.wrong_child + row.wrong_establishment > 0 {
                "bad"
            } else {
                ""
            },
            rate(row.wrong_landing_rate),
            count(row.families_affected),
        );
    }
    page.push_str("</table>\n");
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

/// HTML text and attribute escaping.
fn esc(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
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
