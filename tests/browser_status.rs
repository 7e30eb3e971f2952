//! The DSI's live status page (the admin server's `/`) in headless Chromium, served by a
//! real `bonenfant serve` process in front of the test ENT, with the figures of a
//! scripted run: the ENT's health, the validations and verdicts, the last hour per
//! collège with the directory's names, a pseudonymous incident, and nothing that names
//! a family. On a desktop and on a phone; it reloads itself in place and loads nothing
//! from elsewhere. Screenshots in `target/browser-screenshots/`.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bonenfant::sim::{
    browser as scripted, Directory, EntHandle, EntOptions, Pick, PronoteHandle, PronoteOptions,
    TestEnt, TestPronote, SIM_SERVICE_PATTERN,
};
use regex::Regex;
use url::Url;

use crate::admin_server::request;
use crate::browser_support::{self, Browser, Options, PHONE_WIDTH};
use crate::support::Serving;

const JEAN_MOULIN: &str = "0330101A";
const ROSA_BONHEUR: &str = "0330202B";
/// Léa at Jean Moulin, Hugo at Rosa Bonheur: an ENT that always asserts the first
/// child lands Claire on Léa in Rosa Bonheur's Pronote, a wrong establishment.
const CLAIRE: (&str, &str) = ("claire.martin", "demo-claire");
/// Zoé, her only child, at Rosa Bonheur.
const SOPHIE: (&str, &str) = ("sophie.petit", "demo-sophie");

/// How long the page may take to show a figure: past its 10 s reload.
const PATIENCE: Duration = Duration::from_secs(60);

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sim/directory.toml")
}

/// The test ENT (always the first child), `bonenfant serve` observing in front of it
/// with the committed directory and an admin address, the test Pronote behind.
struct Run {
    ent: EntHandle,
    serve: Serving,
    pronote: PronoteHandle,
    admin: SocketAddr,
    _dir: tempfile::TempDir,
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

impl Run {
    async fn start() -> Self {
        let directory = Arc::new(Directory::load(&fixture()).unwrap());
        let ent = TestEnt::spawn_local(
            Arc::clone(&directory),
            EntOptions {
                pick: Pick::First,
                ..EntOptions::default()
            },
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (listen, admin) = (free_addr(), free_addr());
        let mut serve = Serving(
            Command::new(env!("CARGO_BIN_EXE_bonenfant"))
                .arg("serve")
                .args(["--listen", &listen.to_string()])
                .args(["--admin", &admin.to_string()])
                .args(["--upstream", ent.base_url().as_str()])
                .args(["--establishment-pattern", SIM_SERVICE_PATTERN])
                .arg("--directory")
                .arg(fixture())
                .arg("--trace-log")
                .arg(dir.path().join("trace.jsonl"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + PATIENCE;
        while !(TcpStream::connect(admin).is_ok()
            && request(admin, "GET", "/readyz").await.0 == 200)
        {
            assert!(serve.0.try_wait().unwrap().is_none(), "serve exited");
            assert!(Instant::now() < deadline, "serve never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cas = Url::parse(&format!("http://{listen}/cas")).unwrap();
        let pronote = TestPronote::spawn_local(directory, PronoteOptions::new(cas))
            .await
            .unwrap();
        Self {
            ent,
            serve,
            pronote,
            admin,
            _dir: dir,
        }
    }

    /// A parent, in a fresh scripted browser, opens `uai`'s Pronote and logs in at the
    /// ENT through bonenfant; the UAI of the child Pronote shows, `None` when it says
    /// "utilisateur inconnu" (no pupil of its own in the assertion).
    async fn login(&self, (login, password): (&str, &str), uai: &str) -> Option<String> {
        let page = self.pronote.parent_page(uai).unwrap();
        let mut browser = scripted::Browser::new();
        let result = scripted::parent_login(&mut browser, &page, login, password)
            .await
            .unwrap();
        assert!(
            result.outcome.is_some(),
            "{login} at {uai}: not on a Pronote page:\n{}",
            result.page.body
        );
        result.pupil.map(|pupil| pupil.uai)
    }

    fn page(&self) -> Url {
        Url::parse(&format!("http://{}/", self.admin)).unwrap()
    }

    async fn stop(self) {
        let _ = self.pronote.stop().await;
        drop(self.serve);
        let _ = self.ent.stop().await;
    }
}

/// The scripted run: five logins, one of them a wrong landing (Claire at Rosa Bonheur,
/// given Léa, whom that Pronote does not know), checked by what the test Pronote
/// showed.
async fn scripted_run(run: &Run) {
    for (parent, uai, landed) in [
        (CLAIRE, JEAN_MOULIN, Some(JEAN_MOULIN)),
        (CLAIRE, JEAN_MOULIN, Some(JEAN_MOULIN)),
        (SOPHIE, ROSA_BONHEUR, Some(ROSA_BONHEUR)),
        (SOPHIE, ROSA_BONHEUR, Some(ROSA_BONHEUR)),
        (CLAIRE, ROSA_BONHEUR, None),
    ] {
        assert_eq!(
            run.login(parent, uai).await.as_deref(),
            landed,
            "{parent:?} at {uai}"
        );
    }
}

/// The page as the browser holds it, read in one WebDriver call (the page may reload
/// between two calls, which would leave element references stale): the text of each
/// table row, of the state cards, and of the "Relevé à" line that changes at every
/// reload, plus the raw HTML.
struct Shown {
    rows: Vec<String>,
    cards: String,
    taken_at: String,
    html: String,
}

/// `html`'s text, tags dropped (each a space), entities decoded, blanks collapsed.
fn text_of(html: &str) -> String {
    static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new("<[^>]*>").unwrap());
    let text = TAG.replace_all(html, " ");
    let text = [
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&nbsp;", " "),
    ]
    .iter()
    .fold(text.into_owned(), |t, (entity, c)| t.replace(entity, c))
    .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn shown(browser: &Browser) -> Shown {
    static ROW: LazyLock<Regex> = LazyLock::new(|| Regex::new("(?s)<tr[^>]*>(.*?)</tr>").unwrap());
    static CARDS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(?s)<div class="cards">(.*?)</div>\s*<section"#).unwrap());
    static TAKEN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"Relevé à ([0-9:]+)").unwrap());
    let html = browser.source().await;
    let first = |re: &Regex| {
        re.captures(&html)
            .map(|c| text_of(&c[1]))
            .unwrap_or_default()
    };
    Shown {
        rows: ROW.captures_iter(&html).map(|c| text_of(&c[1])).collect(),
        cards: first(&CARDS),
        taken_at: first(&TAKEN),
        html: html.clone(),
    }
}

/// A row's trailing whole numbers (its figures); what precedes them is its label.
fn split_row(row: &str) -> (&str, Vec<u64>) {
    let mut figures = Vec::new();
    let mut label = row;
    while let Some((rest, last)) = label.rsplit_once(' ') {
        let Ok(n) = last.parse() else { break };
        figures.insert(0, n);
        label = rest;
    }
    (label, figures)
}

impl Shown {
    /// The figures of the row labelled exactly `label` (a traffic row) or, for a
    /// collège, ending with its UAI.
    fn figures(&self, label: &str) -> Option<Vec<u64>> {
        self.rows
            .iter()
            .map(|r| split_row(r))
            .find_map(|(l, f)| (l == label || l.ends_with(&format!(" {label}"))).then_some(f))
    }

    fn row(&self, starting: &str) -> &str {
        self.rows
            .iter()
            .find(|r| r.starts_with(starting))
            .unwrap_or_else(|| panic!("no row {starting:?} in {:#?}", self.rows))
    }
}

/// Waits, without reloading the page itself, until it shows `expected`; returns what
/// it shows then, just loaded when `reloaded_since` is the "Relevé à" time of an
/// earlier load.
async fn wait_until_shown(
    browser: &Browser,
    expected: &[(&str, Vec<u64>)],
    reloaded_since: Option<&str>,
) -> Shown {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let shown = shown(browser).await;
        let reloaded = reloaded_since != Some(shown.taken_at.as_str());
        if reloaded
            && expected
                .iter()
                .all(|(label, want)| shown.figures(label).as_ref() == Some(want))
        {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {expected:?} (reloaded since {reloaded_since:?}); \
             it shows {:#?}",
            shown.rows
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The figures after the script's logins at each collège, `wrong` of them Claire's at
/// Rosa Bonheur: traffic over the last 5 minutes and over the hour, then each collège
/// (validations, wrong landings, corrected, chooser, give-ups, failures).
fn expected(jean_moulin: u64, rosa_bonheur: u64, wrong: u64) -> Vec<(&'static str, Vec<u64>)> {
    let all = jean_moulin + rosa_bonheur;
    vec![
        ("validations", vec![all, all]),
        ("correct", vec![all - wrong, all - wrong]),
        ("mauvais établissement", vec![wrong, wrong]),
        ("mauvais enfant", vec![0, 0]),
        ("mauvais enfant ou établissement", vec![wrong, wrong]),
        ("validations en échec", vec![0, 0]),
        (JEAN_MOULIN, vec![jean_moulin, 0, 0, 0, 0, 0]),
        (ROSA_BONHEUR, vec![rosa_bonheur, wrong, 0, 0, 0, 0]),
    ]
}

/// What the page must show whatever the viewport: ready, the ENT answering, the
/// collèges by name, the wrong landing as a pseudonymous incident, and nothing that
/// names a family, carries a ticket or loads from elsewhere.
fn check_page(shown: &Shown, wrong: u64) {
    assert!(shown.cards.starts_with("prêt "), "{}", shown.cards);
    assert!(
        shown.cards.contains("répond ENT (serveur CAS)"),
        "{}",
        shown.cards
    );
    let ent = shown.row("ENT (serveur CAS)");
    assert!(ent.starts_with("ENT (serveur CAS) répond "), "{ent}");
    assert!(ent.ends_with(" — —"), "no failure, no code: {ent}");
    assert!(shown
        .row("Collège Jean Moulin (Pessac) 0330101A")
        .starts_with("Collège"));
    let incident = shown
        .rows
        .iter()
        .find(|r| r.contains("wrong_establishment"))
        .expect("the wrong landing is an incident");
    assert!(
        incident.contains(" wrong_establishment ent Collège Rosa Bonheur (Talence) 0330202B "),
        "{incident}"
    );
    // Repeats folded into one row: the count, then when it first happened.
    let count = incident.split(' ').rev().nth(1);
    assert_eq!(count, Some(wrong.to_string().as_str()), "{incident}");
    for secret in [
        "claire", "Claire", "sophie", "MARTIN", "PETIT", "Léa", "Hugo", "Zoé", "837001", "2605001",
        "2867002", "ST-", "TGC-",
    ] {
        assert!(
            !shown.html.contains(secret),
            "{secret} on the page:\n{}",
            shown.html
        );
    }
    // Nothing to load: no script, no stylesheet, image or font by URL.
    for asset in [
        "<script", "<link", "<img", "src=", "url(", "@import", "http:", "https:",
    ] {
        assert!(
            !shown.html.contains(asset),
            "{asset} on the page:\n{}",
            shown.html
        );
    }
}

/// Issue 13: the status page, in Chromium, shows the figures of a scripted run on a
/// desktop and on a phone, reloads itself with the next login's figures, loads
/// nothing from elsewhere and breaks no Content-Security-Policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_a_scripted_run_in_chromium_and_refreshes_in_place() {
    const TEST: &str = "status_page_shows_a_scripted_run_in_chromium_and_refreshes_in_place";
    let Some(mut desktop) = browser_support::open(TEST, Options::DESKTOP).await else {
        return;
    };
    let run = Run::start().await;
    let (status, head, _) = request(run.admin, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'; style-src 'sha256-"),
        "{head}"
    );
    scripted_run(&run).await;

    desktop.goto(&run.page()).await;
    let first = wait_until_shown(&desktop, &expected(2, 3, 1), None).await;
    check_page(&first, 1);
    desktop.screenshot("desktop").await;

    // Another wrong landing: the page shows it after its own reload, the browser left
    // where it was.
    assert_eq!(run.login(CLAIRE, ROSA_BONHEUR).await, None);
    let after = wait_until_shown(&desktop, &expected(2, 4, 2), Some(&first.taken_at)).await;
    check_page(&after, 2);
    desktop.screenshot("desktop-refreshed").await;
    assert_eq!(desktop.current_url().await, run.page());
    desktop.assert_no_csp_violation().await;
    desktop.quit().await;

    let Some(mut phone) = browser_support::open(TEST, Options::PHONE).await else {
        return;
    };
    phone.goto(&run.page()).await;
    // Just loaded: the next reload is 10 s away, time to measure the layout.
    check_phone_layout(&phone).await;
    phone.screenshot("phone").await;
    check_page(&wait_until_shown(&phone, &expected(2, 4, 2), None).await, 2);
    phone.assert_no_csp_violation().await;
    phone.quit().await;
    run.stop().await;
}

/// On a phone, the page is laid out for its width: nothing sticks out sideways, the
/// state cards are on the first screen, and the wide tables scroll inside their box
/// with what matters in view. Regression: the labels did not wrap, so the traffic
/// table's figures and everything after a collège's name were off to the right.
async fn check_phone_layout(browser: &Browser) {
    let html = browser.wait_for("html").await;
    let (_, _, width, _) = browser.rect(&html).await;
    assert!(width <= PHONE_WIDTH as f64, "the page is {width} px wide");
    let mut right_edge = PHONE_WIDTH as f64;
    for selector in ["h1", "p.sub", ".card", "section", ".scroll"] {
        for element in browser.find_all(selector).await {
            let (x, _, width, _) = browser.rect(&element).await;
            assert!(
                x >= 0.0 && x + width <= PHONE_WIDTH as f64 + 0.5,
                "{selector} spans {x}..{} on a {PHONE_WIDTH}-pixel phone",
                x + width
            );
            if selector == ".scroll" {
                right_edge = right_edge.min(x + width);
            }
        }
    }
    let cards = browser.wait_for(".cards").await;
    let (_, y, _, height) = browser.rect(&cards).await;
    assert!(
        y + height <= 844.0,
        "the state cards end at {} px",
        y + height
    );
    // Every column of the traffic table, and the first three of the others (the
    // dependency and its state; a collège, its validations and wrong landings; when,
    // what and which side), without scrolling. A column is as wide as its header.
    for selector in [
        "section:nth-of-type(2) tr:first-child > *",
        ".scroll tr:first-child > :nth-child(-n+3)",
    ] {
        for header in browser.find_all(selector).await {
            let (x, _, width, _) = browser.rect(&header).await;
            let text = browser.text(&header).await;
            assert!(
                x + width <= right_edge + 0.5,
                "column {text:?} ends at {} px, past the box's {right_edge} px",
                x + width
            );
        }
    }
}

/// Regression: `serve --directory` read the collèges' names but never gave them to the
/// admin server, so the status page showed bare UAIs. Without a browser, so that it
/// runs wherever `cargo test` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_names_the_directorys_collèges_on_the_status_page() {
    let run = Run::start().await;
    assert_eq!(
        run.login(SOPHIE, ROSA_BONHEUR).await.as_deref(),
        Some(ROSA_BONHEUR)
    );
    let (_, _, page) = request(run.admin, "GET", "/").await;
    assert!(
        page.contains("Collège Rosa Bonheur (Talence) <code>0330202B</code>"),
        "{page}"
    );
    let (_, _, status) = request(run.admin, "GET", "/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let establishment = &status["last_hour"]["establishments"][0];
    assert_eq!(establishment["uai"], ROSA_BONHEUR);
    assert_eq!(establishment["name"], "Collège Rosa Bonheur (Talence)");
    run.stop().await;
}
