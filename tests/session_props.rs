//! The session map against a reference model, under random interleavings of login
//! redirects (bind), validations (take), replays, clock advances, single logouts,
//! stash and session operations over a handful of tickets and sessions.
//!
//! Checked: a ticket binds to at most one session; a take returns the binding only to
//! the first taker and only within the TTL, and with the session that received the
//! ticket; a replayed ticket never attaches twice; the stash is one-shot; bounds hold;
//! a session update sees the state the model holds and leaves what it decided.
//! The same model runs against Redis (a `redis-server` this test starts).
//!
//! Concurrent session updates (many tasks, each adding its own children to shared
//! sessions) lose none of them; the same on Redis across two instances is in
//! `session_redis`.

use crate::session_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bonenfant::cas::{Assertion, Outcome, ServiceTicket};
use bonenfant::events::PinOutcome;
use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::session::memory::MemoryStore;
use bonenfant::session::redis::RedisStore;
use bonenfant::session::{
    KnownChild, ManualClock, MapLimits, SessionChange, SessionId, SessionState, SessionStore,
    StashedValidation, StoreConfig, TicketBinding,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use session_support::RedisServer;

const TICKETS: usize = 6;
const SESSIONS: usize = 3;
const PUPILS: usize = 3;
const LAST_PUPIL_KEYS: usize = 2;
const TICKET_TTL_MS: u64 = 30_000;
const SESSION_TTL_MS: u64 = 120_000;

#[derive(Clone, Debug)]
enum Op {
    /// The front channel's `/login` redirect carrying ticket `ticket` (replays included).
    Login {
        ticket: usize,
        session: Option<usize>,
        service: usize,
    },
    /// A validation of `ticket` (replays included).
    Validate {
        ticket: usize,
    },
    /// The claim's take of `ticket`: only the tombstone is wanted (`spend_ticket`).
    Spend {
        ticket: usize,
    },
    Stash {
        ticket: usize,
        session: Option<usize>,
        service: usize,
    },
    TakeStash {
        ticket: usize,
    },
    Remember {
        ticket: usize,
        session: usize,
    },
    /// Single logout naming `ticket`.
    Logout {
        ticket: usize,
    },
    PutSession {
        session: usize,
        pupil: usize,
    },
    GetSession {
        session: usize,
    },
    DropSession {
        session: usize,
    },
    SwapPupil {
        key: usize,
        pupil: usize,
    },
    /// A read-modify-write of one session.
    Update {
        session: usize,
        update: Update,
    },
    Advance {
        ms: u64,
    },
}

/// What a session update does: the three kinds callers need, and dropping.
#[derive(Clone, Copy, Debug)]
enum Update {
    /// Create if absent; learn `pupil` unless already known (then leave it alone).
    Learn(usize),
    /// Pin `pupil`, only in a session that exists.
    PinIfPresent(usize),
    /// Drop the session if it knows `pupil`.
    DropIfKnows(usize),
}

impl Update {
    /// The pure function handed to `update_session`.
    fn apply(self, current: Option<SessionState>, at: u64) -> SessionChange {
        match (self, current) {
            (Update::Learn(p), current) => {
                let mut state = current.unwrap_or_default();
                if state.known.iter().any(|k| k.key == pupil(p)) {
                    return SessionChange::Keep;
                }
                state.known.push(KnownChild::new(pupil(p)));
                state.updated_at_ms = at;
                SessionChange::Put(state)
            }
            (Update::PinIfPresent(_), None) => SessionChange::Keep,
            (Update::PinIfPresent(p), Some(mut state)) => {
                state.pin = Some(pupil(p));
                state.updated_at_ms = at;
                SessionChange::Put(state)
            }
            (Update::DropIfKnows(p), Some(state))
                if state.known.iter().any(|k| k.key == pupil(p)) =>
            {
                SessionChange::Drop
            }
            (Update::DropIfKnows(_), _) => SessionChange::Keep,
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let ticket = 0..TICKETS;
    let session = 0..SESSIONS;
    prop_oneof![
        4 => (ticket.clone(), proptest::option::of(session.clone()), 0..2usize)
            .prop_map(|(ticket, session, service)| Op::Login { ticket, session, service }),
        4 => ticket.clone().prop_map(|ticket| Op::Validate { ticket }),
        1 => ticket.clone().prop_map(|ticket| Op::Spend { ticket }),
        2 => (ticket.clone(), proptest::option::of(session.clone()), 0..2usize)
            .prop_map(|(ticket, session, service)| Op::Stash { ticket, session, service }),
        2 => ticket.clone().prop_map(|ticket| Op::TakeStash { ticket }),
        1 => (ticket.clone(), session.clone()).prop_map(|(ticket, session)| Op::Remember { ticket, session }),
        1 => ticket.prop_map(|ticket| Op::Logout { ticket }),
        1 => (session.clone(), 0..PUPILS).prop_map(|(session, pupil)| Op::PutSession { session, pupil }),
        1 => session.clone().prop_map(|session| Op::GetSession { session }),
        1 => session.clone().prop_map(|session| Op::DropSession { session }),
        1 => (0..LAST_PUPIL_KEYS, 0..PUPILS).prop_map(|(key, pupil)| Op::SwapPupil { key, pupil }),
        3 => (session, prop_oneof![
                3 => (0..PUPILS).prop_map(Update::Learn),
                1 => (0..PUPILS).prop_map(Update::PinIfPresent),
                1 => (0..PUPILS).prop_map(Update::DropIfKnows),
            ]).prop_map(|(session, update)| Op::Update { session, update }),
        2 => prop_oneof![1..5_000u64, 29_000..31_000u64, 100_000..200_000u64]
            .prop_map(|ms| Op::Advance { ms }),
    ]
}

// === fixtures ===

fn ticket(i: usize) -> ServiceTicket {
    ServiceTicket::parse(&format!("ST-{i}-q8Zt3xVbLm0PnR5s-cas.example")).unwrap()
}

fn session(i: usize) -> SessionId {
    SessionId([i as u8 + 1; 16])
}

fn service(i: usize) -> String {
    format!("https://033001{i}a.index-education.net/pronote/parent.html")
}

fn pupil(i: usize) -> PupilKey {
    PupilKey {
        uai: Uai::parse(&format!("033001{i}A")).unwrap(),
        eleve_id: format!("70129{i}"),
    }
}

fn stashed(service_index: usize, session_index: Option<usize>, at: u64) -> StashedValidation {
    let mut assertion = Assertion {
        principal: "AC-BORDEAUX$1234567".to_owned(),
        ..Assertion::default()
    };
    assertion.attributes.push(
        "FrEduVecteur",
        format!("2|DUPONT|Léa|70129{service_index}|033001{service_index}A"),
    );
    StashedValidation {
        service: service(service_index),
        outcome: Outcome::Success(assertion),
        session: session_index.map(session),
        stored_at_ms: at,
        pin: PinOutcome::None,
        retries: 0,
        primary: false,
        ent_answer: None,
    }
}

fn config(ticket_ttl_ms: u64, entries: usize, bytes: usize) -> StoreConfig {
    let limits = |ttl_ms| MapLimits {
        ttl: Duration::from_millis(ttl_ms),
        max_entries: entries,
        max_bytes: bytes,
    };
    StoreConfig {
        tickets: limits(ticket_ttl_ms),
        stash: limits(ticket_ttl_ms),
        sessions: limits(SESSION_TTL_MS),
        validated: limits(SESSION_TTL_MS),
        last_pupils: limits(SESSION_TTL_MS),
        ..session_support::store_config()
    }
}

// === the reference model ===

/// One entry: `None` is the tombstone a take leaves behind.
struct Entry<V> {
    value: Option<V>,
    expires: u64,
}

#[derive(Default)]
struct Model {
    now: u64,
    tickets: HashMap<usize, Entry<TicketBinding>>,
    stash: HashMap<usize, Entry<StashedValidation>>,
    validated: HashMap<usize, Entry<SessionId>>,
    sessions: HashMap<usize, Entry<SessionState>>,
    pupils: HashMap<usize, Entry<(PupilKey, u64)>>,
}

fn live<V>(map: &HashMap<usize, Entry<V>>, key: usize, now: u64) -> bool {
    map.get(&key).is_some_and(|e| e.expires > now)
}

fn insert_new<V>(
    map: &mut HashMap<usize, Entry<V>>,
    key: usize,
    value: V,
    now: u64,
    ttl: u64,
) -> bool {
    if live(map, key, now) {
        return false;
    }
    map.insert(
        key,
        Entry {
            value: Some(value),
            expires: now + ttl,
        },
    );
    true
}

fn take<V>(map: &mut HashMap<usize, Entry<V>>, key: usize, now: u64) -> Option<V> {
    map.get_mut(&key).filter(|e| e.expires > now)?.value.take()
}

fn put<V>(
    map: &mut HashMap<usize, Entry<V>>,
    key: usize,
    value: V,
    now: u64,
    ttl: u64,
) -> Option<V> {
    let old = map
        .remove(&key)
        .filter(|e| e.expires > now)
        .and_then(|e| e.value);
    map.insert(
        key,
        Entry {
            value: Some(value),
            expires: now + ttl,
        },
    );
    old
}

/// Runs `ops` against `store` and the model, asserting each answer is the model's.
/// `clock` is advanced on `Advance`; without one (Redis: real time, long TTLs) the
/// advances are skipped.
async fn run_model<S: SessionStore>(store: &S, clock: Option<&ManualClock>, ops: &[Op]) {
    let mut m = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let at = step as u64;
        let now = m.now;
        match *op {
            Op::Login {
                ticket: t,
                session: s,
                service: v,
            } => {
                let binding = TicketBinding {
                    session: s.map(session),
                    service: service(v),
                    issued_at_ms: at,
                };
                let got = store
                    .bind_ticket(&store.ticket_key(&ticket(t)), binding.clone())
                    .await
                    .unwrap();
                let want = insert_new(&mut m.tickets, t, binding, now, TICKET_TTL_MS);
                assert_eq!(got, want, "step {step}: bind {op:?}");
            }
            Op::Validate { ticket: t } => {
                let got = store
                    .take_ticket(&store.ticket_key(&ticket(t)))
                    .await
                    .unwrap();
                let want = take(&mut m.tickets, t, now);
                assert_eq!(got, want, "step {step}: take {op:?}");
            }
            Op::Spend { ticket: t } => {
                store
                    .spend_ticket(&store.ticket_key(&ticket(t)))
                    .await
                    .unwrap();
                take(&mut m.tickets, t, now);
            }
            Op::Stash {
                ticket: t,
                session: s,
                service: v,
            } => {
                let entry = stashed(v, s, at);
                let got = store
                    .stash(&store.ticket_key(&ticket(t)), entry.clone())
                    .await
                    .unwrap();
                let want = insert_new(&mut m.stash, t, entry, now, TICKET_TTL_MS);
                assert_eq!(got, want, "step {step}: stash {op:?}");
            }
            Op::TakeStash { ticket: t } => {
                let got = store
                    .take_stash(&store.ticket_key(&ticket(t)))
                    .await
                    .unwrap();
                assert_eq!(got, take(&mut m.stash, t, now), "step {step}: {op:?}");
            }
            Op::Remember {
                ticket: t,
                session: s,
            } => {
                store
                    .remember_validated(&store.ticket_key(&ticket(t)), session(s))
                    .await
                    .unwrap();
                put(&mut m.validated, t, session(s), now, SESSION_TTL_MS);
            }
            Op::Logout { ticket: t } => {
                let got = store
                    .forget_ticket(&store.ticket_key(&ticket(t)))
                    .await
                    .unwrap();
                take(&mut m.tickets, t, now);
                take(&mut m.stash, t, now);
                let want = m
                    .validated
                    .remove(&t)
                    .filter(|e| e.expires > now)
                    .and_then(|e| e.value);
                assert_eq!(got, want, "step {step}: {op:?}");
            }
            Op::PutSession {
                session: s,
                pupil: p,
            } => {
                let state = SessionState {
                    principal: Some("AC-BORDEAUX$1234567".to_owned()),
                    landed: vec![pupil(p)],
                    known: vec![KnownChild {
                        key: pupil(p),
                        first_name: Some("Léa".to_owned()),
                        class: None,
                    }],
                    updated_at_ms: at,
                    ..SessionState::default()
                };
                store.put_session(&session(s), state.clone()).await.unwrap();
                put(&mut m.sessions, s, state, now, SESSION_TTL_MS);
            }
            Op::GetSession { session: s } => {
                let got = store.session(&session(s)).await.unwrap();
                let want = m
                    .sessions
                    .get_mut(&s)
                    .filter(|e| e.expires > now)
                    .and_then(|e| {
                        e.expires = now + SESSION_TTL_MS;
                        e.value.clone()
                    });
                assert_eq!(got, want, "step {step}: {op:?}");
            }
            Op::DropSession { session: s } => {
                store.drop_session(&session(s)).await.unwrap();
                m.sessions.remove(&s);
            }
            Op::SwapPupil { key, pupil: p } => {
                let got = store
                    .swap_last_pupil(&format!("pseudonym-{key}"), pupil(p), at)
                    .await
                    .unwrap();
                let want = put(&mut m.pupils, key, (pupil(p), at), now, SESSION_TTL_MS);
                assert_eq!(got, want, "step {step}: {op:?}");
            }
            Op::Update { session: s, update } => {
                // The closure hands back what it saw, to check it against the model.
                let got = store
                    .update_session(&session(s), |current| {
                        (update.apply(current.clone(), at), current)
                    })
                    .await
                    .unwrap();
                let before = m
                    .sessions
                    .get(&s)
                    .filter(|e| e.expires > now)
                    .and_then(|e| e.value.clone());
                assert_eq!(got.output, before, "step {step}: {op:?} saw");
                let after = match update.apply(before.clone(), at) {
                    SessionChange::Keep => {
                        if let Some(e) = m.sessions.get_mut(&s).filter(|e| e.expires > now) {
                            e.expires = now + SESSION_TTL_MS;
                        }
                        before
                    }
                    SessionChange::Put(state) => {
                        put(&mut m.sessions, s, state.clone(), now, SESSION_TTL_MS);
                        Some(state)
                    }
                    SessionChange::Drop => {
                        m.sessions.remove(&s);
                        None
                    }
                };
                assert_eq!(got.state, after, "step {step}: {op:?} left");
            }
            Op::Advance { ms } => {
                if let Some(clock) = clock {
                    clock.advance(Duration::from_millis(ms));
                    m.now += ms;
                }
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(RunnerConfig { cases: 256, ..RunnerConfig::default() })]

    #[test]
    fn memory_store_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = MemoryStore::with_clock(
            &config(TICKET_TTL_MS, 1_000, 1 << 20),
            Arc::new(clock.clone()),
        );
        runtime().block_on(run_model(&store, Some(&clock), &ops));
    }

    /// With bounds far below the working set, entries get evicted, but nothing is
    /// ever returned twice, late, or to another session, and the bounds hold.
    #[test]
    fn memory_store_stays_sound_and_bounded_when_full(ops in proptest::collection::vec(op(), 1..120)) {
        const ENTRIES: usize = 2;
        const BYTES: usize = 600;
        let clock = ManualClock::new(0);
        let store = MemoryStore::with_clock(&config(TICKET_TTL_MS, ENTRIES, BYTES), Arc::new(clock.clone()));
        // Per ticket: the last binding accepted, when, and whether it was taken.
        let mut bound: HashMap<usize, (TicketBinding, u64, bool)> = HashMap::new();
        let mut now = 0u64;
        runtime().block_on(async {
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    Op::Login { ticket: t, session: s, service: v } => {
                        let binding = TicketBinding { session: s.map(session), service: service(v), issued_at_ms: step as u64 };
                        if store.bind_ticket(&store.ticket_key(&ticket(t)), binding.clone()).await.unwrap() {
                            if let Some((_, at, taken)) = bound.get(&t) {
                                // Rebinding a live ticket is refused unless it was evicted.
                                prop_assert!(*taken || now >= at + TICKET_TTL_MS || store.stats().evictions > 0);
                            }
                            bound.insert(t, (binding, now, false));
                        }
                    }
                    Op::Validate { ticket: t } => {
                        if let Some(got) = store.take_ticket(&store.ticket_key(&ticket(t))).await.unwrap() {
                            let (want, at, taken) = bound.get_mut(&t).expect("taken ticket was bound");
                            prop_assert_eq!(&got, &*want);
                            prop_assert!(!*taken, "ticket attached twice");
                            prop_assert!(now < *at + TICKET_TTL_MS, "binding returned after its TTL");
                            *taken = true;
                        }
                    }
                    Op::Spend { ticket: t } => {
                        store.spend_ticket(&store.ticket_key(&ticket(t))).await.unwrap();
                        // Whatever was bound is spent: a later take must not return it.
                        if let Some((_, _, taken)) = bound.get_mut(&t) {
                            *taken = true;
                        }
                    }
                    Op::PutSession { session: s, pupil: p } => {
                        let state = SessionState { landed: vec![pupil(p)], ..SessionState::default() };
                        store.put_session(&session(s), state).await.unwrap();
                    }
                    Op::Advance { ms } => {
                        clock.advance(Duration::from_millis(ms));
                        now += ms;
                    }
                    _ => {}
                }
                let stats = store.stats();
                prop_assert!(stats.tickets as usize <= ENTRIES && stats.sessions as usize <= ENTRIES);
                prop_assert!(stats.bytes as usize <= 5 * BYTES);
            }
            Ok(())
        })?;
    }
}

/// Runs `updaters` tasks on a multi-threaded runtime, each applying `updates`
/// commutative changes spread over `sessions` shared sessions, then checks every
/// session holds every change.
fn concurrent_updates_on_memory(updaters: usize, updates: usize, sessions: usize) {
    let store = Arc::new(MemoryStore::new(&StoreConfig::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..updaters)
            .map(|u| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut added = Vec::new();
                    for n in 0..updates {
                        let s = (u + n) % sessions;
                        let child = session_support::child(&format!("task{u}"), n);
                        let learn = session_support::learn_and_count(child.clone());
                        store.update_session(&session(s), learn).await.unwrap();
                        added.push((s, child));
                        tokio::task::yield_now().await;
                    }
                    added
                })
            })
            .collect();
        let mut added = vec![Vec::new(); sessions];
        for task in tasks {
            for (s, child) in task.await.unwrap() {
                added[s].push(child);
            }
        }
        for (s, children) in added.into_iter().enumerate() {
            let state = store.session(&session(s)).await.unwrap();
            session_support::assert_holds_exactly(state.as_ref(), children);
        }
    });
}

proptest! {
    #![proptest_config(RunnerConfig { cases: 32, ..RunnerConfig::default() })]

    /// The lost-update race, on one instance: concurrent requests updating shared
    /// sessions keep every update.
    #[test]
    fn memory_store_concurrent_updaters_lose_no_update(
        updaters in 2..8usize,
        updates in 1..40usize,
        sessions in 1..=2usize,
    ) {
        concurrent_updates_on_memory(updaters, updates, sessions);
    }
}

/// An update on an expired session starts from nothing, the clock advanced rather than
/// slept through.
#[test]
fn an_update_after_the_idle_ttl_starts_from_an_empty_session() {
    let clock = ManualClock::new(0);
    let store = MemoryStore::with_clock(
        &config(TICKET_TTL_MS, 1_000, 1 << 20),
        Arc::new(clock.clone()),
    );
    let rt = runtime();
    let id = session(0);
    let learn = |n| session_support::learn_and_count(session_support::child("a", n));
    rt.block_on(store.update_session(&id, learn(0))).unwrap();
    // A keep is a read: it extends the idle TTL.
    clock.advance(Duration::from_millis(SESSION_TTL_MS - 1));
    let kept = rt
        .block_on(store.update_session(&id, |_| (SessionChange::Keep, ())))
        .unwrap();
    assert!(kept.state.is_some());
    clock.advance(Duration::from_millis(SESSION_TTL_MS - 1));
    let state = rt
        .block_on(store.update_session(&id, learn(1)))
        .unwrap()
        .state;
    session_support::assert_holds_exactly(
        state.as_ref(),
        vec![
            session_support::child("a", 0),
            session_support::child("a", 1),
        ],
    );
    clock.advance(Duration::from_millis(SESSION_TTL_MS));
    let state = rt
        .block_on(store.update_session(&id, learn(2)))
        .unwrap()
        .state;
    session_support::assert_holds_exactly(state.as_ref(), vec![session_support::child("a", 2)]);
}

#[test]
fn redis_store_matches_the_model() {
    let server = RedisServer::start();
    let rt = runtime();
    let case = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 48,
        ..RunnerConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..60), |ops| {
            case.set(case.get() + 1);
            // A fresh key space per case: Redis keeps what earlier cases wrote.
            let config = StoreConfig {
                redis_prefix: format!("bonenfant-test:{}:", case.get()),
                ..config(TICKET_TTL_MS, 1_000, 1 << 20)
            };
            rt.block_on(async {
                let store = RedisStore::connect(&server.url(), &config).await.unwrap();
                run_model(&store, None, &ops).await;
            });
            Ok(())
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takers_of_one_ticket_get_it_exactly_once() {
    let store = Arc::new(MemoryStore::new(&StoreConfig::default()));
    for round in 0..50 {
        let t = ticket(round);
        let binding = TicketBinding {
            session: Some(session(1)),
            service: service(0),
            issued_at_ms: 0,
        };
        assert!(store
            .bind_ticket(&store.ticket_key(&t), binding)
            .await
            .unwrap());
        let winners =
            session_support::ticket_take_winners(std::slice::from_ref(&store), 32, &t).await;
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_binders_of_one_ticket_bind_it_once() {
    let store = Arc::new(MemoryStore::new(&StoreConfig::default()));
    let binders: Vec<_> = (0..SESSIONS * 10)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let binding = TicketBinding {
                    session: Some(session(i % SESSIONS)),
                    service: service(0),
                    issued_at_ms: 0,
                };
                store
                    .bind_ticket(&store.ticket_key(&ticket(0)), binding)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut bound = 0;
    for binder in binders {
        bound += usize::from(binder.await.unwrap());
    }
    assert_eq!(bound, 1);
}

/// Browsers log in while validators (replayers among them) race over every ticket:
/// each ticket attaches exactly once, and to the session that received it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sessions_each_get_their_own_tickets_once() {
    const BROWSERS: usize = 8;
    const LOGINS: usize = 50;
    const VALIDATORS: usize = 4;
    const TOTAL: usize = BROWSERS * LOGINS;
    let store = Arc::new(MemoryStore::new(&StoreConfig::default()));
    let taken = Arc::new(std::sync::Mutex::new(
        Vec::<(usize, Option<SessionId>)>::new(),
    ));

    let browsers: Vec<_> = (0..BROWSERS)
        .map(|b| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in 0..LOGINS {
                    let binding = TicketBinding {
                        session: Some(SessionId([b as u8; 16])),
                        service: service(0),
                        issued_at_ms: n as u64,
                    };
                    assert!(store
                        .bind_ticket(&store.ticket_key(&ticket(b * LOGINS + n)), binding)
                        .await
                        .unwrap());
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let validators: Vec<_> = (0..VALIDATORS)
        .map(|v| {
            let store = Arc::clone(&store);
            let taken = Arc::clone(&taken);
            tokio::spawn(async move {
                // Bounded passes: a lost binding fails the test instead of hanging it.
                for _pass in 0..10_000 {
                    if taken.lock().unwrap().len() >= TOTAL {
                        break;
                    }
                    for i in 0..TOTAL {
                        // Each validator walks the tickets in its own order.
                        let t = (i * (2 * v + 1) + v) % TOTAL;
                        if let Some(binding) = store
                            .take_ticket(&store.ticket_key(&ticket(t)))
                            .await
                            .unwrap()
                        {
                            taken.lock().unwrap().push((t, binding.session));
                        }
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in browsers.into_iter().chain(validators) {
        task.await.unwrap();
    }

    let mut taken = taken.lock().unwrap().clone();
    taken.sort_by_key(|&(t, _)| t);
    assert_eq!(taken.len(), TOTAL, "a ticket attached twice or never");
    for (i, (t, session)) in taken.into_iter().enumerate() {
        assert_eq!(t, i, "ticket {i} attached twice or never");
        assert_eq!(
            session,
            Some(SessionId([(t / LOGINS) as u8; 16])),
            "ticket {t}"
        );
    }
}
