//! `bonenfant demo`: the wrong-child bug and its cure, on loopback, in one command.
//!
//! Starts a test ENT that picks a parent's child at random (the OSE bug), one test
//! Pronote per run, and bonenfant between them; then logs scripted parents in three
//! ways — straight to the ENT, through bonenfant observing, through bonenfant pinning
//! (retry) — and tells, per run and per establishment, how often a parent landed on
//! the wrong child, how often bonenfant flagged it, and what pinning cost.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;
use tokio::task::JoinSet;
use url::Url;

use crate::admin::Snapshot;
use crate::config::{PinMode, RawConfig};
use crate::events::{PinOutcome, TraceLog};
use crate::proxy::exchange::{self, RunningProxy};
use crate::pupil::directory::{self, Directory, DirectoryError};
use crate::pupil::DirectoryIndex;
use crate::sim::browser::{self, Browser, LoginResult};
use crate::sim::{
    expected_wrong_share_under_random_pick, DirectoryParams, EntHandle, EntOptions, Landing,
    LandingOutcome, ParentVisit, PronoteHandle, PronoteOptions, PupilRef, Synthetic as _, TestEnt,
    TestPronote, SIM_SERVICE_PATTERN,
};

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Families in the generated directory.
    pub families: usize,
    pub establishments: usize,
    /// Parent logins per run.
    pub logins: usize,
    /// Parents logging in at the same time.
    pub concurrency: usize,
    pub seed: u64,
    /// Where the trace log and the HTML report go.
    pub out_dir: PathBuf,
    /// Whether bonenfant gets the directory, as `--directory` gives it (the default).
    /// Without it the chooser can only say "Enfant n°1", and the scripted parents, who
    /// look for their child's first name, cannot answer it.
    pub proxy_directory: bool,
    /// Run on these directory files (AAF exports, or the simulator's TOML/JSON) instead
    /// of a generated directory: the simulators read them whole, bonenfant through
    /// `--directory`'s own loader.
    pub directory: Option<Vec<PathBuf>>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            families: 150,
            establishments: 6,
            logins: 300,
            concurrency: 16,
            seed: 2026,
            out_dir: std::env::temp_dir().join("bonenfant-demo"),
            proxy_directory: true,
            directory: None,
        }
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("starting a simulator: {0}")]
    Sim(#[from] std::io::Error),
    #[error("starting bonenfant: {0}")]
    Proxy(#[from] exchange::ServeError),
    #[error("configuring bonenfant: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("a scripted parent's browser failed: {0}")]
    Browser(#[from] browser::BrowserError),
    #[error("loading the directory: {0}")]
    Directory(#[from] DirectoryError),
}

/// One run's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFigures {
    pub logins: u64,
    /// Landed on the child the parent meant.
    pub right: u64,
    /// Landed on another child, or on "utilisateur inconnu".
    pub wrong: u64,
    /// Ended elsewhere (validation failure, retry gave up).
    pub not_landed: u64,
    /// Validations bonenfant judged other than `ok` (wrong child or establishment,
    /// ambiguous, another child than last time): the report's "flagged".
    pub flagged: u64,
    /// Validations bonenfant corrected (pin `retry`, `rewrite` or `reorder`).
    pub pinned: u64,
    /// Times a parent answered the "which child?" page.
    pub chosen: u64,
    /// Times a parent met the "which child?" page but found no label showing their
    /// child's first name (or more than one), and so could not answer it.
    pub failed_choices: u64,
    /// HTTP requests the parents' browsers sent.
    pub requests: u64,
    /// Per establishment: (logins, wrong).
    pub per_establishment: BTreeMap<String, (u64, u64)>,
}

/// The demo's outcome: one figure set per run.
#[derive(Clone, Debug)]
pub struct DemoReport {
    pub direct: RunFigures,
    pub observing: RunFigures,
    pub pinning: RunFigures,
    pub trace_log: PathBuf,
    pub establishments: BTreeMap<String, String>,
    /// The wrong-child share the family mix predicts for a random pick.
    pub expected_wrong_share: f64,
    /// Successful landings through the pinning proxy whose principal or pupil is not
    /// what the ENT asserted for that very ticket (invariant I1: must be 0).
    pub unverified_landings: u64,
}

/// A run's moving parts, started and stopped together (`demo --serve`).
struct Stack {
    ent: EntHandle,
    pronote_direct: PronoteHandle,
    observe: Proxied,
    pinning: Proxied,
}

/// One bonenfant in front of the test ENT, and the test Pronote behind it.
struct Proxied {
    proxy: RunningProxy,
    pronote: PronoteHandle,
}

impl Proxied {
    /// `index` is the directory bonenfant gets, when it gets one.
    async fn start(
        ent: &EntHandle,
        mode: PinMode,
        directory: &Arc<Directory>,
        index: Option<DirectoryIndex>,
        trace: TraceLog,
    ) -> Result<Self, DemoError> {
        // Pronote's port first: it is the one origin bonenfant may send a parent on to.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let proxy = proxy(ent, mode, index, listener.local_addr()?, trace).await?;
        let pronote = TestPronote::new(
            Arc::clone(directory),
            PronoteOptions::new(cas_base(proxy.addr)),
        )
        .spawn(listener)?;
        Ok(Self { proxy, pronote })
    }

    /// Stops both; bonenfant's `shutdown` event ends its run in the trace.
    async fn stop(self) {
        let _ = self.pronote.stop().await;
        let _ = self.proxy.stop().await;
    }
}

/// Runs the demo and writes its table to `out`. `trace` is where bonenfant's events go
/// (the binary points it at `out_dir/trace.jsonl`).
pub async fn run(
    options: &DemoOptions,
    trace: TraceLog,
    out: &mut (dyn Write + Send),
) -> Result<DemoReport, DemoError> {
    let directory = Arc::new(demo_directory(options)?);
    let index = proxy_index(&directory, options)?;
    let ent =
        TestEnt::spawn_local(Arc::clone(&directory), EntOptions::ose_random(options.seed)).await?;
    let pronote_direct =
        TestPronote::spawn_local(Arc::clone(&directory), PronoteOptions::new(ent.cas_base()))
            .await?;
    let visits = pick_visits(&directory, pronote_direct.base_url(), options);
    let _ = writeln!(
        out,
        "bonenfant demo: {} families over {} establishments, a test ENT that picks a parent's child at random,\n{} parent logins per run.\n",
        directory.parents().len(),
        directory.establishments().len(),
        visits.len()
    );
    let direct = run_logins(
        "straight to the ENT",
        &visits,
        pronote_direct.base_url(),
        None,
        options,
        out,
    )
    .await?;
    // Each bonenfant starts just before its run and stops after it: the trace then holds
    // one run after the other, each between its `startup` and its `shutdown`, as two
    // successive deployments would write it, and `bonenfant report` splits it by run.
    let observe = Proxied::start(
        &ent,
        PinMode::Observe,
        &directory,
        index.clone(),
        trace.clone(),
    )
    .await?;
    let mut observing = run_logins(
        "through bonenfant, observing",
        &visits,
        observe.pronote.base_url(),
        None,
        options,
        out,
    )
    .await?;
    observing.flagged = not_ok(&observe.proxy.metrics.snapshot());
    observe.stop().await;
    let pin = Proxied::start(&ent, PinMode::Retry, &directory, index, trace).await?;
    let mut pinning = run_logins(
        "through bonenfant, pinning (retry)",
        &visits,
        pin.pronote.base_url(),
        Some(&chooser_url(pin.proxy.addr)),
        options,
        out,
    )
    .await?;
    let pinned = pin.proxy.metrics.snapshot();
    pinning.pinned = [PinOutcome::Retry, PinOutcome::Rewrite, PinOutcome::Reorder]
        .iter()
        .map(|p| pinned.pins.get(p.as_str()).copied().unwrap_or(0))
        .sum();
    pinning.flagged = not_ok(&pinned);
    let unverified_landings = unverified_landings(&ent, &pin.pronote);
    pin.stop().await;
    let _ = pronote_direct.stop().await;
    let _ = ent.stop().await;
    let establishments = directory
        .establishments()
        .iter()
        .map(|e| (e.uai.clone(), e.name.clone()))
        .collect();
    let report = DemoReport {
        direct,
        observing,
        pinning,
        trace_log: options.out_dir.join("trace.jsonl"),
        establishments,
        expected_wrong_share: expected_wrong_share_under_random_pick(&visits),
        unverified_landings,
    };
    print_table(&report, out);
    Ok(report)
}

/// `demo --serve`: the same stack, left running for a person with a browser until
/// `shutdown`; prints where to go.
pub async fn serve(
    options: &DemoOptions,
    trace: TraceLog,
    out: &mut (dyn Write + Send),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DemoError> {
    let directory = Arc::new(demo_directory(options)?);
    let stack = start(&directory, options, trace).await?;
    let _ = writeln!(
        out,
        "bonenfant demo, serving on 127.0.0.1 until Ctrl-C. Each page lists the test parents \
         (login and password) with one link per child:\n\n\
         \x20 Pronote straight to the ENT (the bug):      {}\n\
         \x20 Pronote through bonenfant, observing:       {}\n\
         \x20 Pronote through bonenfant, pinning (retry): {}\n\n\
         The test ENT: {}   bonenfant's chooser (pinning): {}\n\
         Trace log: {}",
        stack.pronote_direct.base_url(),
        stack.observe.pronote.base_url(),
        stack.pinning.pronote.base_url(),
        stack.ent.cas_base(),
        chooser_url(stack.pinning.proxy.addr),
        options.out_dir.join("trace.jsonl").display(),
    );
    let _ = out.flush();
    shutdown.await;
    stop(stack).await;
    Ok(())
}

/// The directory the demo runs on: the files given, else a generated one.
fn demo_directory(options: &DemoOptions) -> Result<Directory, DemoError> {
    Ok(match &options.directory {
        Some(paths) => directory::load_directory(paths)?.0,
        None => {
            let params = DirectoryParams {
                families: options.families,
                establishments: options.establishments,
                ..DirectoryParams::default()
            };
            Directory::generate(&params, options.seed)
        }
    })
}

/// The index bonenfant gets, when it gets one: it reads the files as `serve
/// --directory` would, not the simulators' copy.
fn proxy_index(
    directory: &Directory,
    options: &DemoOptions,
) -> Result<Option<DirectoryIndex>, DemoError> {
    Ok(match (&options.directory, options.proxy_directory) {
        (_, false) => None,
        (Some(paths), true) => Some(directory::load_index(paths)?.0),
        (None, true) => Some(directory.index()),
    })
}

async fn start(
    directory: &Arc<Directory>,
    options: &DemoOptions,
    trace: TraceLog,
) -> Result<Stack, DemoError> {
    let ent =
        TestEnt::spawn_local(Arc::clone(directory), EntOptions::ose_random(options.seed)).await?;
    let index = proxy_index(directory, options)?;
    let observe = Proxied::start(
        &ent,
        PinMode::Observe,
        directory,
        index.clone(),
        trace.clone(),
    )
    .await?;
    let pinning = Proxied::start(&ent, PinMode::Retry, directory, index, trace).await?;
    let pronote_direct =
        TestPronote::spawn_local(Arc::clone(directory), PronoteOptions::new(ent.cas_base()))
            .await?;
    Ok(Stack {
        ent,
        pronote_direct,
        observe,
        pinning,
    })
}

async fn stop(stack: Stack) {
    let _ = stack.pronote_direct.stop().await;
    stack.observe.stop().await;
    stack.pinning.stop().await;
    let _ = stack.ent.stop().await;
}

/// bonenfant's chooser page (default control prefix).
fn chooser_url(addr: SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}/bonenfant/choose"))
        .unwrap_or_else(|_| unreachable!("socket addresses form URLs"))
}

fn cas_base(addr: SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}/cas"))
        .unwrap_or_else(|_| unreachable!("socket addresses form URLs"))
}

/// bonenfant in front of the test ENT, on an ephemeral port, sending parents on to the
/// test Pronote at `pronote` only, with the directory as its index when given (so it knows every parent's children and their first names, as an
/// AAF export would tell it).
async fn proxy(
    ent: &EntHandle,
    mode: PinMode,
    index: Option<DirectoryIndex>,
    pronote: SocketAddr,
    trace: TraceLog,
) -> Result<RunningProxy, DemoError> {
    let raw = RawConfig {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        upstream: Some(ent.base_url().clone()),
        pin: Some(mode),
        establishment_pattern: Some(SIM_SERVICE_PATTERN.to_owned()),
        service_origin: Some(vec![format!("http://{pronote}")]),
        ..RawConfig::default()
    };
    let mut config = raw.validate()?;
    config.directory_index = index.into();
    Ok(exchange::spawn(Arc::new(config), trace).await?)
}

/// Validations whose verdict was not `ok`, read by name as an operator reads
/// `/metrics` (`docs/events.md` lists the verdicts).
fn not_ok(snapshot: &Snapshot) -> u64 {
    snapshot
        .verdicts
        .iter()
        .filter(|(name, _)| **name != "ok")
        .map(|(_, n)| n)
        .sum()
}

/// `logins` visits, spread over every family, in a seeded order.
fn pick_visits(
    directory: &Directory,
    pronote_base: &Url,
    options: &DemoOptions,
) -> Vec<ParentVisit> {
    let mut all = directory.visits(pronote_base);
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    all.shuffle(&mut rng);
    all.into_iter()
        .cycle()
        .take(options.logins.max(1))
        .collect()
}

/// Runs every visit against the Pronote at `pronote_base`; each parent keeps one
/// browser (ENT single sign-on, bonenfant's session) across their visits.
async fn run_logins(
    name: &str,
    visits: &[ParentVisit],
    pronote_base: &Url,
    chooser: Option<&Url>,
    options: &DemoOptions,
    out: &mut (dyn Write + Send),
) -> Result<RunFigures, DemoError> {
    let mut by_parent: BTreeMap<String, Vec<ParentVisit>> = BTreeMap::new();
    for visit in visits {
        let mut visit = visit.clone();
        visit.pronote_url = retarget(&visit.pronote_url, pronote_base);
        by_parent
            .entry(visit.login.clone())
            .or_default()
            .push(visit);
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (_, parent_visits) in by_parent {
        let semaphore = Arc::clone(&semaphore);
        let chooser = chooser.cloned();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let mut browser = Browser::new();
            let mut last_landed = BTreeMap::new();
            let mut outcomes = Vec::with_capacity(parent_visits.len());
            for visit in parent_visits {
                let outcome =
                    visit_once(&mut browser, &visit, chooser.as_ref(), &mut last_landed).await;
                outcomes.push((visit, outcome));
            }
            outcomes
        });
    }
    let mut figures = RunFigures::default();
    let total = visits.len();
    let mut done = 0usize;
    let _ = write!(out, "  {name:<40}");
    while let Some(joined) = tasks.join_next().await {
        let Ok(outcomes) = joined else { continue };
        for (visit, outcome) in outcomes {
            let outcome = outcome?;
            tally(&mut figures, &visit, &outcome);
            done += 1;
            if done % (total / 10).max(1) == 0 {
                let _ = write!(out, ".");
                let _ = out.flush();
            }
        }
    }
    let _ = writeln!(out, " done");
    Ok(figures)
}

/// One parent login, as a person would do it: open Pronote, log in at the ENT if
/// asked, and on bonenfant's "which child?" page pick the child they mean by the first
/// name it shows. Through a pinning bonenfant, a parent who now means another child of
/// the same establishment than last time says so first on the chooser page (`chooser`),
/// as the ENT portal's "changer d'enfant" link would let them.
async fn visit_once(
    browser: &mut Browser,
    visit: &ParentVisit,
    chooser: Option<&Url>,
    last_landed: &mut BTreeMap<String, PupilRef>,
) -> Result<VisitOutcome, DemoError> {
    // Each visit is a new Pronote session (the previous one ended); the ENT's single
    // sign-on and bonenfant's own cookie stay, as in a real browser.
    browser.clear_cookie(crate::sim::pronote::SESSION_COOKIE);
    let switching = last_landed
        .get(&visit.intended.uai)
        .is_some_and(|last| !same_pupil(last, &visit.intended));
    let mut chosen = 0;
    let mut failed_choices = 0;
    let mut result = match (chooser, switching) {
        (Some(chooser), true) => {
            let mut url = chooser.clone();
            url.query_pairs_mut()
                .append_pair("service", visit.pronote_url.as_str());
            let page = browser.get(&url).await?;
            let mut result = login_result(page, 1);
            match choose(browser, &result, visit).await? {
                Choice::Made(landed) => {
                    chosen += 1;
                    result = *landed;
                }
                Choice::NotShown => failed_choices += 1,
                Choice::NoChooser => {}
            }
            if result.outcome.is_none() {
                browser::parent_login(browser, &visit.pronote_url, &visit.login, &visit.password)
                    .await?
            } else {
                result
            }
        }
        _ => {
            browser::parent_login(browser, &visit.pronote_url, &visit.login, &visit.password)
                .await?
        }
    };
    while result.outcome.is_none() && chosen < 2 {
        match choose(browser, &result, visit).await? {
            Choice::Made(landed) => {
                chosen += 1;
                result = *landed;
            }
            Choice::NotShown => {
                failed_choices += 1;
                break;
            }
            Choice::NoChooser => break,
        }
    }
    // What bonenfant now believes this parent means here: the child chosen, else the
    // child landed on.
    if chosen > 0 {
        last_landed.insert(visit.intended.uai.clone(), visit.intended.clone());
    } else if let (Some(LandingOutcome::Landed), Some(pupil)) = (result.outcome, &result.pupil) {
        last_landed.insert(pupil.uai.clone(), pupil.clone());
    }
    Ok(VisitOutcome {
        result,
        chosen,
        failed_choices,
    })
}

/// What a parent did on a page that may be bonenfant's chooser.
enum Choice {
    /// Picked their child and posted the form; where that led.
    Made(Box<LoginResult>),
    /// A chooser, but no label shows the child's first name: the parent cannot answer.
    NotShown,
    /// Not a chooser page.
    NoChooser,
}

/// Answers bonenfant's chooser page, when `result` ended on one, as a person does: reads
/// the labels, picks the one showing the child's first name (and class, should two
/// siblings share a name), and posts the form with its own fields; follows the
/// redirects to wherever that leads.
async fn choose(
    browser: &mut Browser,
    result: &LoginResult,
    visit: &ParentVisit,
) -> Result<Choice, DemoError> {
    let Some((form, choices)) = browser::choices(&result.page, "child") else {
        return Ok(Choice::NoChooser);
    };
    let Some(choice) = browser::choice_showing(&choices, &visit.first_name, &visit.class) else {
        return Ok(Choice::NotShown);
    };
    let mut fields = form.fields.clone();
    fields.push(("child".to_owned(), choice.value.clone()));
    let page = browser.post_form(&form.action, &fields).await?;
    let mut landed = login_result(page, 0);
    landed.requests += result.requests + 1;
    landed.hops += result.hops;
    Ok(Choice::Made(Box::new(landed)))
}

fn login_result(page: browser::Page, requests: usize) -> LoginResult {
    let (outcome, pupil) = browser::landing(&page);
    LoginResult {
        outcome,
        pupil,
        hops: page.hops,
        requests: requests + page.hops,
        page,
    }
}

struct VisitOutcome {
    result: LoginResult,
    chosen: u64,
    failed_choices: u64,
}

fn tally(figures: &mut RunFigures, visit: &ParentVisit, outcome: &VisitOutcome) {
    figures.logins += 1;
    figures.requests += outcome.result.requests as u64;
    figures.chosen += outcome.chosen;
    figures.failed_choices += outcome.failed_choices;
    let entry = figures
        .per_establishment
        .entry(visit.intended.uai.clone())
        .or_default();
    entry.0 += 1;
    match (outcome.result.outcome, &outcome.result.pupil) {
        (Some(LandingOutcome::Landed), Some(pupil)) if same_pupil(pupil, &visit.intended) => {
            figures.right += 1;
        }
        (Some(LandingOutcome::Landed | LandingOutcome::UnknownUser), _) => {
            figures.wrong += 1;
            entry.1 += 1;
        }
        _ => figures.not_landed += 1,
    }
}

fn same_pupil(a: &PupilRef, b: &PupilRef) -> bool {
    a.eleve_id == b.eleve_id && a.uai.eq_ignore_ascii_case(&b.uai)
}

/// The same Pronote page under another base (each run has its own Pronote).
fn retarget(url: &Url, base: &Url) -> Url {
    let mut moved = base.clone();
    moved.set_path(url.path());
    moved
}

/// Checks every success Pronote accepted through the pinning proxy against the ENT's
/// own record of that ticket: same principal, and a pupil the ENT asserted for it.
fn unverified_landings(ent: &EntHandle, pronote: &PronoteHandle) -> u64 {
    let landings = pronote.landings();
    let verified = |landing: &Landing| {
        let Some(issued) = ent.ent.ticket(&landing.ticket) else {
            return false;
        };
        let pupil_asserted = landing
            .designated
            .as_ref()
            .is_some_and(|d| issued.picked.iter().any(|p| p.key().as_ref() == Some(d)));
        landing.principal.as_deref() == Some(issued.login.as_str()) && pupil_asserted
    };
    landings
        .iter()
        .filter(|l| l.outcome == LandingOutcome::Landed)
        .filter(|l| !verified(l))
        .count() as u64
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

/// What each column of the table means, one line each: the table is read by people
/// who never saw the code.
const COLUMNS: [(&str, &str); 7] = [
    ("logins", "parent visits to Pronote (the same visits in each run)"),
    (
        "right/wrong child",
        "the child Pronote opened, as the parent saw it (\"utilisateur inconnu\" counts as wrong)",
    ),
    (
        "flagged",
        "Pronote logins bonenfant judged other than ok: wrong child or collège, ambiguous, another child than last time",
    ),
    (
        "pinned",
        "logins bonenfant corrected by logging the browser in again until the ENT named the child meant",
    ),
    (
        "chosen",
        "times a parent answered bonenfant's \"which child?\" page (asked when two children of one collège could be meant)",
    ),
    (
        "requests/login",
        "HTTP requests a parent's browser sent per visit (re-logins and the chooser cost some)",
    ),
    ("–", "not applicable: straight to the ENT, bonenfant sees nothing"),
];

fn print_table(report: &DemoReport, out: &mut (dyn Write + Send)) {
    let runs = [
        ("straight to the ENT", &report.direct, false),
        ("through bonenfant, observing", &report.observing, true),
        ("through bonenfant, pinning", &report.pinning, true),
    ];
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<30} {:>7} {:>13} {:>13} {:>9} {:>8} {:>8} {:>14}",
        "run",
        "logins",
        "right child",
        "wrong child",
        "flagged",
        "pinned",
        "chosen",
        "requests/login"
    );
    for (name, f, through_proxy) in runs {
        let dash = |v: u64| {
            if through_proxy {
                v.to_string()
            } else {
                "–".to_owned()
            }
        };
        let _ = writeln!(
            out,
            "{:<30} {:>7} {:>13} {:>13} {:>9} {:>8} {:>8} {:>14.1}",
            name,
            f.logins,
            f.right,
            format!("{} ({})", f.wrong, percent(f.wrong, f.logins)),
            dash(f.flagged),
            dash(f.pinned),
            dash(f.chosen),
            f.requests as f64 / f.logins.max(1) as f64,
        );
    }
    let _ = writeln!(out);
    let width = COLUMNS.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    for (column, meaning) in COLUMNS {
        let _ = writeln!(out, "  {column:<width$}  {meaning}");
    }
    let _ = writeln!(
        out,
        "\nThe family mix predicts {:.1} % wrong-child landings for a random pick.",
        report.expected_wrong_share * 100.0
    );
    // Said even when it is 0: that no parent met the give-up page is a result.
    let _ = writeln!(
        out,
        "Pinning gave up (retry budget spent, bonenfant's page instead of a child) on {} of {} logins.",
        report.pinning.not_landed, report.pinning.logins
    );
    if report.pinning.failed_choices > 0 {
        let _ = writeln!(
            out,
            "On bonenfant's chooser page, {} times a parent found no label with their child's first name and could not answer.",
            report.pinning.failed_choices
        );
    }
    let _ = writeln!(
        out,
        "Every success Pronote accepted through the pinning proxy was what the ENT asserted for that ticket: {}",
        if report.unverified_landings == 0 { "yes".to_owned() } else { format!("NO ({} landings)", report.unverified_landings) }
    );
    let _ = writeln!(
        out,
        "\nWrong-child landings per establishment, as the parents saw them:"
    );
    // As wide as the longest name: a collège is never cut.
    let names = report.establishments.values().map(|n| n.chars().count());
    let name_width = names.max().unwrap_or(0).max("name".len());
    let _ = writeln!(
        out,
        "{:<10} {:<name_width$} {:>7} {:>8} {:>10} {:>8}",
        "UAI", "name", "logins", "direct", "observing", "pinning"
    );
    for (uai, (logins, wrong)) in &report.observing.per_establishment {
        let name = report
            .establishments
            .get(uai)
            .map(String::as_str)
            .unwrap_or("");
        let direct = report.direct.per_establishment.get(uai).map_or(0, |e| e.1);
        let pinned = report.pinning.per_establishment.get(uai).map_or(0, |e| e.1);
        let _ = writeln!(
            out,
            "{:<10} {:<name_width$} {:>7} {:>8} {:>10} {:>8}",
            uai, name, logins, direct, wrong, pinned
        );
    }
    let _ = writeln!(
        out,
        "(bonenfant's own report counts what the trace can tell: while observing, a parent with two children \
         in one collège who never chose is \"ambiguous\", not wrong.)"
    );
    let _ = writeln!(
        out,
        "\nTrace log (JSON lines, pseudonymised): {}\nSummarise it: bonenfant report {} --format html --out report.html",
        report.trace_log.display(),
        report.trace_log.display()
    );
}
