//! The re-roll budget table of `docs/performance.md`: for each family shape (2 to 5
//! children, 1 to k−1 of them in the collège opened), 10⁵ logins through the real
//! front-channel plan against an ENT picking uniformly, with the default `--retry-max`:
//! the give-up rate `P` (simulated and exact), the mean and 99th percentile of tickets
//! per login, and the added latency for an ENT taking `ENT_MS` per login + validation.
//!
//! `cargo bench --bench reroll_budget` (set `LOGINS` and `ENT_MS` to change them).
#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark prints its figures

#[path = "../tests/support/reroll.rs"]
mod reroll;

use bonenfant::config::DEFAULT_RETRY_MAX;
use reroll::{exact_give_up_rate, simulate, Shape};

fn main() {
    let logins: usize = std::env::var("LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let ent_ms: f64 = std::env::var("ENT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40.0);
    println!(
        "retry-max {DEFAULT_RETRY_MAX}, {logins} logins per shape, ENT {ent_ms} ms per re-roll"
    );
    println!("| children | in the collège | P simulated | P exact | tickets mean | tickets p99 | added latency mean | p99 |");
    println!("|---|---|---|---|---|---|---|---|");
    for children in 2..=5 {
        for in_target in 1..children {
            let shape = Shape {
                children,
                in_target,
            };
            let figures = simulate(shape, DEFAULT_RETRY_MAX, logins, 2026);
            let mean = figures.mean_tickets();
            let p99 = figures.tickets_p99();
            println!(
                "| {children} | {in_target} | {:.1e} | {:.1e} | {mean:.2} | {p99} | {:.0} ms | {:.0} ms |",
                figures.give_up_rate(),
                exact_give_up_rate(children, DEFAULT_RETRY_MAX),
                (mean - 1.0) * ent_ms,
                f64::from(p99.saturating_sub(1)) * ent_ms,
            );
        }
    }
}
