//! What pinning costs a parent when the ENT names the wrong child, measured end to end on
//! loopback: the test ENT (random child, `ENT_MS` milliseconds per request, 20 by
//! default), bonenfant `--pin retry`, the test Pronote and a scripted browser. Each
//! login is a parent of several children, one per collège, opening one child's collège
//! in a fresh browser (password form, then re-rolls until the ENT names that child).
//!
//! Two rows, the same logins:
//! * **server-side**: bonenfant asks the ENT's `/login` again itself; the browser sees
//!   one redirect whatever the number of re-rolls;
//! * **browser-driven**: an ENT whose silent `/login` answers through another host
//!   (`EntOptions::login_via_other_host`), so bonenfant falls back to sending the
//!   browser back to the ENT for each re-roll.
//!
//! `cargo bench --bench reroll_cost` (`LOGINS`, `ENT_MS` to change them). A browser's
//! own network round trip is ~0 here: on a phone each browser request of the second row
//! costs one more. The second row's ENT requests include the other host's hop (one per
//! re-roll), which an ENT that simply answers the browser would not have.
#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark prints its figures

use std::sync::Arc;
use std::time::{Duration, Instant};

use bonenfant::config::{PinMode, RawConfig};
use bonenfant::events::{LossCounter, Pseudonymizer, TraceLog};
use bonenfant::proxy::exchange;
use bonenfant::sim::{
    parent_login, Browser, Directory, DirectoryParams, EntCounters, EntOptions, ParentVisit,
    PronoteOptions, Synthetic as _, TestEnt, TestPronote, SIM_SERVICE_PATTERN,
};
use url::Url;

/// One row's figures.
struct Row {
    landed_right: usize,
    wall_ms: Vec<f64>,
    browser_requests: usize,
    ent_requests: u64,
    tickets: u64,
}

fn ent_requests(c: &EntCounters) -> u64 {
    c.login_forms + c.logins + c.failed_logins + c.silent_logins + c.validations + c.hops
}

async fn run(
    directory: &Arc<Directory>,
    visits: &[ParentVisit],
    browser_driven: bool,
    latency: Duration,
) -> Row {
    let ent = TestEnt::spawn_local(
        Arc::clone(directory),
        EntOptions {
            login_via_other_host: browser_driven,
            latency,
            ..EntOptions::ose_random(2026)
        },
    )
    .await
    .unwrap();
    let config = RawConfig {
        listen: Some(([127, 0, 0, 1], 0).into()),
        upstream: Some(ent.base_url().clone()),
        pin: Some(PinMode::Retry),
        establishment_pattern: Some(SIM_SERVICE_PATTERN.to_owned()),
        ..RawConfig::default()
    }
    .validate()
    .unwrap();
    let trace = TraceLog::new(
        Pseudonymizer::new(&[7; 32]).unwrap(),
        LossCounter::default(),
    );
    let proxy = exchange::spawn(Arc::new(config), trace).await.unwrap();
    let cas = Url::parse(&format!("http://{}/cas", proxy.addr)).unwrap();
    let pronote = TestPronote::spawn_local(Arc::clone(directory), PronoteOptions::new(cas))
        .await
        .unwrap();
    let before = ent.ent.counters();
    let mut row = Row {
        landed_right: 0,
        wall_ms: Vec::new(),
        browser_requests: 0,
        ent_requests: 0,
        tickets: 0,
    };
    for visit in visits {
        let page = bonenfant::sim::pronote_url(pronote.base_url(), &visit.intended.uai).unwrap();
        let mut browser = Browser::new().max_hops(400);
        let started = Instant::now();
        let result = parent_login(&mut browser, &page, &visit.login, &visit.password)
            .await
            .unwrap();
        row.wall_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        row.browser_requests += result.requests;
        if result.pupil.as_ref() == Some(&visit.intended) {
            row.landed_right += 1;
        }
    }
    let after = ent.ent.counters();
    row.ent_requests = ent_requests(&after) - ent_requests(&before);
    row.tickets = after.tickets_issued - before.tickets_issued;
    let _ = pronote.stop().await;
    let _ = proxy.stop().await;
    let _ = ent.stop().await;
    row
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or(0.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let logins = env("LOGINS", 100) as usize;
    let latency = Duration::from_millis(env("ENT_MS", 20));
    let params = DirectoryParams {
        families: 600,
        establishments: 6,
        ..DirectoryParams::default()
    };
    let directory = Arc::new(Directory::generate(&params, 2026));
    // Parents with one child in each of several collèges: no chooser, only re-rolls.
    let base = Url::parse("http://127.0.0.1/").unwrap();
    let visits: Vec<ParentVisit> = directory
        .visits(&base)
        .into_iter()
        .filter(|v| v.children >= 2 && v.children == v.establishments)
        .take(logins)
        .collect();
    let children: f64 =
        visits.iter().map(|v| v.children as f64).sum::<f64>() / visits.len().max(1) as f64;
    println!(
        "{} logins, {children:.2} children per family (one per collège), ENT {} ms per request",
        visits.len(),
        latency.as_millis()
    );
    println!("| re-rolls | landed right | tickets/login | ENT requests/login | browser requests/login | wall p50 | wall p90 | wall p99 |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, browser_driven) in [("server-side", false), ("browser-driven", true)] {
        let row = run(&directory, &visits, browser_driven, latency).await;
        let n = visits.len().max(1) as f64;
        let mut wall = row.wall_ms.clone();
        wall.sort_by(f64::total_cmp);
        println!(
            "| {name} | {}/{} | {:.2} | {:.1} | {:.1} | {:.0} ms | {:.0} ms | {:.0} ms |",
            row.landed_right,
            visits.len(),
            row.tickets as f64 / n,
            row.ent_requests as f64 / n,
            row.browser_requests as f64 / n,
            percentile(&wall, 0.5),
            percentile(&wall, 0.9),
            percentile(&wall, 0.99),
        );
    }
}
