//! Session map: bytes per live browser session (target ≤ 1 KiB, a million in 1 GiB:
//! `docs/performance.md`) and throughput of the hot operations. Figures go to
//! `docs/performance.md`.
//!
//! Memory is measured two ways: the resident-set growth of this process while it fills
//! a store (what the operator pays, allocator overhead included), and the store's own
//! accounting (`StoreStats::bytes`, what the bounds are enforced on).
//!
//! `cargo bench --bench session` runs both; `cargo bench --bench session -- --memory-only`
//! skips the criterion part.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark prints its figures

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bonenfant::cas::ServiceTicket;
use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::session::memory::MemoryStore;
use bonenfant::session::{
    ObservedAssertion, SessionChange, SessionId, SessionState, SessionStore, StoreConfig,
    TicketBinding,
};
use criterion::{criterion_group, Criterion, Throughput};
use futures_util::FutureExt as _;

// The allocator `bonenfant serve` runs with (src/main.rs): resident memory per session
// depends on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Live sessions in the memory measurement: enough for the per-session figure to
/// dwarf the fixed costs.
const SESSIONS: usize = 200_000;

const SERVICE: &str = "https://0330012a.index-education.net/pronote/parent.html";

fn pupil(uai: &str, id: &str) -> PupilKey {
    PupilKey {
        uai: Uai::parse(uai).expect("fixture UAI"),
        eleve_id: id.to_owned(),
    }
}

/// A parent with two children in two collèges, one pinned, after one validation: the
/// state a live session carries (sizes as in the AAF: 7-digit pupil ids, one
/// FrEduVecteur value per child).
fn realistic_state(i: usize) -> SessionState {
    let first = pupil("0330012A", &format!("{:07}", 1_000_000 + i));
    let second = pupil("0330099B", &format!("{:07}", 2_000_000 + i));
    SessionState {
        principal: Some(format!("AC-BORDEAUX${:08}", i)),
        pin: Some(first.clone()),
        landed: vec![first.clone()],
        known: vec![
            bonenfant::session::KnownChild {
                key: first.clone(),
                first_name: Some("Léa".to_owned()),
                class: Some("4B".to_owned()),
            },
            bonenfant::session::KnownChild {
                key: second.clone(),
                first_name: Some("Tom".to_owned()),
                class: None,
            },
        ],
        observed: vec![ObservedAssertion {
            principal: format!("AC-BORDEAUX${:08}", i),
            service: SERVICE.to_owned(),
            at_ms: 1_700_000_000_000,
            attributes: vec![
                (
                    "FrEduVecteur".to_owned(),
                    format!("2|DUPONT|Léa|{}|0330012A", first.eleve_id),
                ),
                (
                    "FrEduVecteur".to_owned(),
                    format!("2|DUPONT|Tom|{}|0330099B", second.eleve_id),
                ),
            ],
        }],
        retry: None,
        renew_for: None,
        pass_once: None,
        updated_at_ms: 1_700_000_000_000,
    }
}

fn ticket(i: usize) -> ServiceTicket {
    ServiceTicket::parse(&format!("ST-{i}-Zq8t3xVbLm0PnR5sWkYc2-cas.ent.example"))
        .expect("fixture ticket")
}

/// Runs a memory-store future, which completes on its first poll.
fn now<T>(future: impl std::future::Future<Output = T>) -> T {
    future
        .now_or_never()
        .expect("memory store futures are ready at once")
}

fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches(" kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Fills a store with `SESSIONS` live browser sessions, each with its state, the
/// validated ticket kept for single logout and its principal's last pupil, and prints
/// the cost per session.
fn memory_report() {
    let store = MemoryStore::new(&StoreConfig::default());
    let states: Vec<SessionState> = (0..SESSIONS).map(realistic_state).collect();
    let ids: Vec<SessionId> = (0..SESSIONS).map(|_| SessionId::random()).collect();

    let before = resident_bytes();
    for (id, state) in ids.iter().zip(states.iter()) {
        now(store.put_session(id, state.clone())).expect("within bounds");
    }
    let after_sessions = resident_bytes();
    let sessions_accounted = store.stats().bytes;
    for (i, id) in ids.iter().enumerate() {
        now(store.remember_validated(&store.ticket_key(&ticket(i)), *id)).expect("within bounds");
        now(store.swap_last_pupil(
            &format!("principal-pseudonym-{i:016x}|0330012A"),
            states[i].landed[0].clone(),
            1_700_000_000_000,
        ))
        .expect("within bounds");
    }
    let after_all = resident_bytes();
    let stats = store.stats();
    black_box(&states);

    let per = |bytes: usize| bytes as f64 / SESSIONS as f64;
    println!("session map memory, {SESSIONS} live sessions (realistic state: 2 children, 1 pin, 1 observed assertion)");
    println!(
        "  session state only:   RSS {:>7.0} B/session   accounted {:>7.0} B/session",
        per(after_sessions.saturating_sub(before)),
        per(sessions_accounted as usize)
    );
    println!(
        "  + validated ticket + last pupil: RSS {:>7.0} B/session   accounted {:>7.0} B/session",
        per(after_all.saturating_sub(before)),
        per(stats.bytes as usize)
    );
    println!(
        "  one million sessions ≈ {:.0} MiB (RSS-based)",
        per(after_all.saturating_sub(before)) * 1e6 / (1024.0 * 1024.0)
    );
}

/// Bind + take pairs per second from `threads` threads on one store.
fn parallel_report(threads: usize) {
    const PAIRS: usize = 400_000;
    let store = Arc::new(MemoryStore::new(&StoreConfig::default()));
    let tickets: Arc<Vec<ServiceTicket>> = Arc::new((0..PAIRS).map(ticket).collect());
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store);
            let tickets = Arc::clone(&tickets);
            std::thread::spawn(move || {
                for ticket in tickets.iter().skip(t).step_by(threads) {
                    let binding = TicketBinding {
                        session: Some(SessionId([7; 16])),
                        service: SERVICE.to_owned(),
                        issued_at_ms: 1,
                    };
                    let key = store.ticket_key(ticket);
                    assert!(now(store.bind_ticket(&key, binding)).expect("bind"));
                    assert!(now(store.take_ticket(&key)).expect("take").is_some());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let elapsed = start.elapsed();
    println!(
        "  bind+take, {threads} thread(s): {:.0} pairs/s ({:.2} µs/pair)",
        PAIRS as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / PAIRS as f64
    );
}

fn hot_paths(c: &mut Criterion) {
    let store = MemoryStore::new(&StoreConfig::default());
    let mut group = c.benchmark_group("session_map");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));

    let tickets: Vec<ServiceTicket> = (0..4096).map(ticket).collect();
    let mut i = 0usize;
    group.bench_function("bind_then_take_ticket", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let ticket = &tickets[i % tickets.len()];
            let binding = TicketBinding {
                session: Some(SessionId([7; 16])),
                service: SERVICE.to_owned(),
                issued_at_ms: 1,
            };
            // Tombstones block a rebind within the TTL: forget first so every
            // iteration binds.
            let key = store.ticket_key(ticket);
            let _ = now(store.forget_ticket(&key));
            black_box(now(store.bind_ticket(&key, binding)).expect("bind"));
            black_box(now(store.take_ticket(&key)).expect("take"));
        })
    });

    let id = SessionId::random();
    let state = realistic_state(1);
    group.bench_function("put_session", |b| {
        b.iter(|| now(store.put_session(&id, black_box(state.clone()))).expect("put"))
    });
    group.bench_function("get_session", |b| {
        b.iter(|| black_box(now(store.session(&id)).expect("get")))
    });
    // What replaces a get then a put: one decode, one encode, under one lock.
    group.bench_function("update_session", |b| {
        b.iter(|| {
            let touch = |current: Option<SessionState>| {
                let mut state = current.unwrap_or_default();
                state.updated_at_ms += 1;
                (SessionChange::Put(state), ())
            };
            black_box(now(store.update_session(&id, touch)).expect("update"))
        })
    });
    group.finish();
}

criterion_group!(benches, hot_paths);

fn main() {
    memory_report();
    println!("session map throughput (memory store, this machine)");
    parallel_report(1);
    parallel_report(2);
    if std::env::args().any(|a| a == "--memory-only") {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
