//! The live status page the admin server answers at `/`, in French: is bonenfant
//! ready, are the ENT and the store answering, how many validations and which verdicts
//! now and over the last hour, per collège, and the recent incidents.
//!
//! No script and no external asset: the admin server reloads it with a `Refresh`
//! header, under a Content-Security-Policy that allows only this page's own style.
//! A pure function of [`StatusPage`], so the same figures always give the same page
//! (tests, screenshots). Nothing here names a person: UAIs, verdicts, stable codes.

use maud::{html, Markup};
use time::macros::format_description;
use time::OffsetDateTime;

use super::{document, Css, Head, Printable};

/// The page's stylesheet; the admin server's CSP allows it by its hash.
pub const STATUS_STYLE: Css = Css("
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0;color:#1d2733;background:#f5f6f8}
main{max-width:980px;margin:0 auto;padding:12px}
h1{font-size:1.4rem;margin:4px 0}
h2{font-size:1.05rem;margin:4px 0 8px}
p.sub{color:#55606e;margin:0 0 12px;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:8px 12px;min-width:120px;flex:1}
.card .n{font-size:1.4rem;font-weight:600}
.card .l{color:#55606e;font-size:.85rem}
.card.bad .n{color:#c0392b}
.card.good .n{color:#1e7d46}
section{background:#fff;border:1px solid #d9dee5;border-radius:6px;padding:8px 12px 12px;margin-top:12px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{padding:4px 8px;text-align:right;border-bottom:1px solid #e6e9ee}
td{white-space:nowrap}
td:first-child,td.t{white-space:normal}
th:first-child,td:first-child,td.t,th.t{text-align:left}
th{background:#eef1f5}
td.bad{color:#c0392b;font-weight:600}
td.good{color:#1e7d46;font-weight:600}
p.none{color:#55606e;margin:4px 0}
");

/// Everything the page shows. Times are Unix milliseconds, shown in UTC.
#[derive(Clone, Debug)]
pub struct StatusPage<'a> {
    /// When the figures were taken.
    pub now_ms: u64,
    pub version: &'a str,
    pub uptime_s: u64,
    /// Seconds between reloads, said on the page.
    pub refresh_s: u32,
    pub ready: bool,
    /// Why not ready (`not_serving`, `store_down`).
    pub not_ready: Vec<&'a str>,
    /// What fails without failing readiness (`ent_down`, `store_down`).
    pub degraded: Vec<&'a str>,
    pub dependencies: Vec<Dependency<'a>>,
    pub traffic: Traffic<'a>,
    /// Over the last hour, most validations first.
    pub establishments: Vec<Establishment<'a>>,
    /// Most recent first.
    pub incidents: Vec<Incident<'a>>,
}

/// The ENT or the store.
#[derive(Clone, Debug)]
pub struct Dependency<'a> {
    /// `ent` or `store`.
    pub name: &'a str,
    /// `up`, `down` or `unknown`.
    pub state: &'a str,
    pub since_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    /// The stable code of the last failure.
    pub last_error: Option<&'a str>,
}

/// Validations now and over the hour.
#[derive(Clone, Debug, Default)]
pub struct Traffic<'a> {
    /// The window of the current rate, in minutes.
    pub recent_minutes: u64,
    pub validations_per_minute: f64,
    /// Rows: a verdict name (`ok`, …) or `wrong_landings`, `corrected`, `chooser`,
    /// `gave_up`, `failed`; over the recent window; over the hour.
    pub rows: Vec<(&'a str, u64, u64)>,
}

/// One collège over the last hour.
#[derive(Clone, Debug)]
pub struct Establishment<'a> {
    pub uai: &'a str,
    /// From the directory, when it names the collège.
    pub name: Option<&'a str>,
    pub validations: u64,
    pub wrong_landings: u64,
    pub corrected: u64,
    pub chooser: u64,
    pub gave_up: u64,
    pub failed: u64,
}

/// A recent incident, repeats folded.
#[derive(Clone, Debug)]
pub struct Incident<'a> {
    /// A verdict name, `retry_gave_up`, `ent_down`/`ent_up`, `store_down`/`store_up`, or
    /// a stable code.
    pub what: &'a str,
    /// The side that failed (`ent`, `store`, `bonenfant`).
    pub side: &'a str,
    pub uai: Option<&'a str>,
    pub name: Option<&'a str>,
    pub first_ms: u64,
    pub last_ms: u64,
    pub count: u64,
}

/// The whole page.
pub fn status(page: &StatusPage<'_>) -> String {
    let body = html! {
        main {
            h1 { "bonenfant — état en direct" }
            p.sub {
                "Relevé à " (when(page.now_ms, page.now_ms)) " UTC, rechargé toutes les "
                (page.refresh_s) " s. Version " (page.version) ", en service depuis "
                (uptime(page.uptime_s)) "."
            }
            (cards(page))
            section {
                h2 { "ENT et stockage des sessions" }
                div.scroll { (dependencies(page.now_ms, &page.dependencies)) }
            }
            section {
                h2 { "Validations et verdicts" }
                p.sub {
                    (format!("{:.1}", page.traffic.validations_per_minute).replace('.', ","))
                    " validations par minute sur les " (page.traffic.recent_minutes)
                    " dernières minutes."
                }
                div.scroll { (traffic(&page.traffic)) }
            }
            section {
                h2 { "Dernière heure par collège" }
                (establishments(&page.establishments))
            }
            section {
                h2 { "Incidents récents" }
                (incidents(page.now_ms, &page.incidents))
            }
        }
    };
    document(
        &Head {
            title: "bonenfant — état",
            viewport: true,
            style: Some(STATUS_STYLE),
        },
        body,
    )
}

fn cards(page: &StatusPage<'_>) -> Markup {
    let readiness = if page.ready {
        "prêt".to_owned()
    } else {
        format!("pas prêt ({})", page.not_ready.join(", "))
    };
    let wrong: u64 = page
        .traffic
        .rows
        .iter()
        .find(|(what, _, _)| *what == "wrong_landings")
        .map_or(0, |row| row.2);
    html! {
        div.cards {
            div.card.good[page.ready].bad[!page.ready] {
                div.n { (readiness) }
                div.l { "pour le répartiteur de charge (/readyz)" }
            }
            @for dependency in &page.dependencies {
                div.card.good[dependency.state == "up"].bad[dependency.state == "down"] {
                    div.n { (state_label(dependency.state)) }
                    div.l { (dependency_label(dependency.name)) }
                }
            }
            div.card.bad[wrong > 0] {
                div.n { (wrong) }
                div.l { "mauvais enfant ou établissement (1 h)" }
            }
        }
    }
}

fn dependencies(now_ms: u64, rows: &[Dependency<'_>]) -> Markup {
    html! {
        table {
            tr {
                th.t { "" } th.t { "État" } th { "Depuis" } th { "Dernier succès" }
                th { "Dernier échec" } th.t { "Code" }
            }
            @for row in rows {
                tr {
                    td { (dependency_label(row.name)) }
                    td.t.good[row.state == "up"].bad[row.state == "down"] {
                        (state_label(row.state))
                    }
                    td { (time_or_dash(now_ms, row.since_ms)) }
                    td { (time_or_dash(now_ms, row.last_success_ms)) }
                    td { (time_or_dash(now_ms, row.last_failure_ms)) }
                    td.t {
                        @if let Some(code) = row.last_error { code { (Printable(code)) } } @else { "—" }
                    }
                }
            }
        }
    }
}

fn traffic(traffic: &Traffic<'_>) -> Markup {
    html! {
        table {
            tr {
                th.t { "" }
                th { (traffic.recent_minutes) " dernières min" }
                th { "Dernière heure" }
            }
            @for (what, recent, hour) in &traffic.rows {
                @let harmful = matches!(*what, "wrong_landings" | "wrong_child" | "wrong_establishment");
                tr {
                    td { (row_label(what)) }
                    td class=[bad(harmful && *recent > 0)] { (recent) }
                    td class=[bad(harmful && *hour > 0)] { (hour) }
                }
            }
        }
    }
}

fn establishments(rows: &[Establishment<'_>]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.none { "Aucune validation depuis une heure." }
        } @else {
            div.scroll {
                table {
                    tr {
                        th.t { "Collège" } th { "Validations" } th { "Mauvais enfant" }
                        th { "Corrigées" } th { "Choix proposé" } th { "Abandons" }
                        th { "Échecs" }
                    }
                    @for row in rows {
                        tr {
                            td { (establishment_name(row.uai, row.name)) }
                            td { (row.validations) }
                            td class=[bad(row.wrong_landings > 0)] { (row.wrong_landings) }
                            td { (row.corrected) }
                            td { (row.chooser) }
                            td class=[bad(row.gave_up > 0)] { (row.gave_up) }
                            td class=[bad(row.failed > 0)] { (row.failed) }
                        }
                    }
                }
            }
        }
    }
}

fn incidents(now_ms: u64, rows: &[Incident<'_>]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.none { "Aucun incident récent." }
        } @else {
            div.scroll {
                table {
                    tr {
                        th.t { "Dernière fois" } th.t { "Quoi" } th.t { "Côté" }
                        th.t { "Collège" } th { "Fois" } th { "Première fois" }
                    }
                    @for row in rows {
                        tr {
                            td { (when(now_ms, row.last_ms)) }
                            td.t { code { (Printable(row.what)) } }
                            td.t { (Printable(row.side)) }
                            td.t {
                                @if let Some(uai) = row.uai {
                                    (establishment_name(uai, row.name))
                                } @else { "—" }
                            }
                            td { (row.count) }
                            td { (when(now_ms, row.first_ms)) }
                        }
                    }
                }
            }
        }
    }
}

fn establishment_name(uai: &str, name: Option<&str>) -> Markup {
    html! {
        @if let Some(name) = name {
            (Printable(name)) " " code { (Printable(uai)) }
        } @else {
            code { (Printable(uai)) }
        }
    }
}

/// The `bad` class when `flag` holds (no empty `class=""` otherwise).
fn bad(flag: bool) -> Option<&'static str> {
    flag.then_some("bad")
}

fn dependency_label(name: &str) -> &'static str {
    match name {
        "ent" => "ENT (serveur CAS)",
        "store" => "Stockage des sessions",
        _ => "autre",
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        "up" => "répond",
        "down" => "en panne",
        _ => "pas encore observé",
    }
}

fn row_label(what: &str) -> &'static str {
    match what {
        "validations" => "validations",
        "wrong_landings" => "mauvais enfant ou établissement",
        "corrected" => "corrigées par l'épinglage",
        "chooser" => "choix proposé au parent",
        "gave_up" => "abandons (retry)",
        "failed" => "validations en échec",
        verdict => super::verdict_label(verdict),
    }
}

/// `HH:MM:SS` (UTC), with the date when not the day of `now_ms`: relative to the
/// figures' own time, so the same figures give the same page.
fn when(now_ms: u64, unix_ms: u64) -> String {
    let at = |ms: u64| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000);
    let (Ok(now), Ok(then)) = (at(now_ms), at(unix_ms)) else {
        return "—".to_owned();
    };
    let formatted = if then.date() == now.date() {
        then.format(format_description!("[hour]:[minute]:[second]"))
    } else {
        then.format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
    };
    formatted.unwrap_or_default()
}

fn time_or_dash(now_ms: u64, unix_ms: Option<u64>) -> String {
    unix_ms.map_or_else(|| "—".to_owned(), |t| when(now_ms, t))
}

fn uptime(seconds: u64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} min"),
        (0, _) => format!("{hours} h {minutes:02} min"),
        _ => format!("{days} j {hours} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{escaped, skeleton, HOSTILE};
    use super::*;

    /// 2023-11-14 22:13:20 UTC.
    const T0: u64 = 1_700_000_000_000;

    fn page(name: &str) -> StatusPage<'_> {
        StatusPage {
            now_ms: T0,
            version: "0.1.0",
            uptime_s: 3 * 3600 + 12 * 60,
            refresh_s: 10,
            ready: true,
            not_ready: vec![],
            degraded: vec!["ent_down"],
            dependencies: vec![
                Dependency {
                    name: "ent",
                    state: "down",
                    since_ms: Some(T0 - 5000),
                    last_success_ms: Some(T0 - 6000),
                    last_failure_ms: Some(T0 - 1000),
                    last_error: Some("proxy.upstream_connect"),
                },
                Dependency {
                    name: "store",
                    state: "up",
                    since_ms: Some(T0 - 2 * 86_400_000),
                    last_success_ms: Some(T0 - 1000),
                    last_failure_ms: None,
                    last_error: None,
                },
            ],
            traffic: Traffic {
                recent_minutes: 5,
                validations_per_minute: 2.4,
                rows: vec![("ok", 11, 120), ("wrong_landings", 1, 7)],
            },
            establishments: vec![Establishment {
                uai: "0330101A",
                name: Some(name),
                validations: 120,
                wrong_landings: 7,
                corrected: 3,
                chooser: 2,
                gave_up: 1,
                failed: 0,
            }],
            incidents: vec![Incident {
                what: "wrong_child",
                side: "ent",
                uai: Some("0330101A"),
                name: Some(name),
                first_ms: T0 - 120_000,
                last_ms: T0 - 60_000,
                count: 2,
            }],
        }
    }

    #[test]
    fn shows_health_rates_collèges_and_incidents() {
        let html = status(&page("Collège Jean Moulin"));
        for part in [
            "<title>bonenfant — état</title>",
            "Relevé à 22:13:20 UTC",
            "<td>22:13:15</td>",
            "<td>2023-11-12 22:13:20</td>",
            "en service depuis 3 h 12 min",
            "<div class=\"n\">prêt</div>",
            "en panne",
            "<code>proxy.upstream_connect</code>",
            "2,4 validations par minute",
            "Collège Jean Moulin <code>0330101A</code>",
            "<td class=\"bad\">7</td>",
            "<code>wrong_child</code>",
            "name=\"viewport\"",
        ] {
            assert!(html.contains(part), "{part}\n{html}");
        }
        assert!(!html.contains("<script"), "no script");
        assert!(!html.contains("http"), "no external asset: {html}");
    }

    #[test]
    fn the_same_figures_give_the_same_page() {
        assert_eq!(status(&page("x")), status(&page("x")));
    }

    #[test]
    fn hostile_names_are_text() {
        let reference = skeleton(&status(&page("Collège")));
        for hostile in HOSTILE {
            let html = status(&page(hostile));
            assert!(html.contains(&escaped(hostile)), "{html}");
            assert_eq!(skeleton(&html), reference, "{hostile}");
        }
    }

    #[test]
    fn empty_sections_say_so() {
        let mut empty = page("x");
        empty.establishments.clear();
        empty.incidents.clear();
        let html = status(&empty);
        assert!(html.contains("Aucune validation depuis une heure."));
        assert!(html.contains("Aucun incident récent."));
    }
}
