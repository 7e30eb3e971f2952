//! The Redis store across instances and failures (`docs/domain.md`, "Deployments"): two stores on one Redis
//! share bindings, keys never hold a ticket in clear, TTLs are Redis's own, and a Redis
//! that is gone is a clear `Unavailable`, never a panic. Session updates racing across
//! two instances lose nothing, and one that loses every race says so.

use crate::session_support;

use std::sync::Arc;
use std::time::Duration;

use bonenfant::cas::{Assertion, Outcome, ServiceTicket};
use bonenfant::events::PinOutcome;
use bonenfant::session::redis::RedisStore;
use bonenfant::session::redis::UPDATE_ATTEMPTS;
use bonenfant::session::{
    AnyStore, SessionChange, SessionId, SessionState, SessionStore, StashedValidation, StoreConfig,
    StoreError, TicketBinding,
};
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use session_support::RedisServer;
use sha2::{Digest as _, Sha256};

const TICKET: &str = "ST-42-Zq8t3xVbLm0PnR5sWk-cas.example";

fn ticket() -> ServiceTicket {
    ServiceTicket::parse(TICKET).unwrap()
}

fn binding(session: SessionId) -> TicketBinding {
    TicketBinding {
        session: Some(session),
        service: "https://0330012a.index-education.net/pronote/parent.html".to_owned(),
        issued_at_ms: 1,
    }
}

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url(), &StoreConfig::default())
        .await
        .unwrap()
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn front_channel_on_one_instance_correlates_with_back_channel_on_another() {
    let server = RedisServer::start();
    let (a, b) = (store(&server).await, store(&server).await);
    let session = SessionId::random();

    assert!(a.bind_ticket(&ticket(), binding(session)).await.unwrap());
    assert!(!b
        .bind_ticket(&ticket(), binding(SessionId::random()))
        .await
        .unwrap());
    assert_eq!(
        b.take_ticket(&ticket()).await.unwrap(),
        Some(binding(session))
    );
    assert_eq!(a.take_ticket(&ticket()).await.unwrap(), None);
    assert!(!a.bind_ticket(&ticket(), binding(session)).await.unwrap());

    let stashed = StashedValidation {
        service: "https://s/".to_owned(),
        outcome: Outcome::Success(Assertion {
            principal: "p".to_owned(),
            ..Assertion::default()
        }),
        session: Some(session),
        stored_at_ms: 2,
        pin: PinOutcome::None,
        retries: 0,
        primary: false,
        ent_answer: None,
    };
    assert!(a.stash(&ticket(), stashed.clone()).await.unwrap());
    assert_eq!(b.take_stash(&ticket()).await.unwrap(), Some(stashed));
    assert_eq!(a.take_stash(&ticket()).await.unwrap(), None);

    let state = SessionState {
        principal: Some("p".to_owned()),
        updated_at_ms: 3,
        ..SessionState::default()
    };
    a.put_session(&session, state.clone()).await.unwrap();
    assert_eq!(b.session(&session).await.unwrap(), Some(state));

    // Single logout received by B ends what A validated.
    a.remember_validated(&ticket(), session).await.unwrap();
    assert_eq!(b.forget_ticket(&ticket()).await.unwrap(), Some(session));
    assert_eq!(a.forget_ticket(&ticket()).await.unwrap(), None);
    b.drop_session(&session).await.unwrap();
    assert_eq!(a.session(&session).await.unwrap(), None);
}

#[tokio::test]
async fn keys_are_prefixed_digests_and_never_hold_the_ticket() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let session = SessionId::random();
    store
        .bind_ticket(&ticket(), binding(session))
        .await
        .unwrap();
    store.remember_validated(&ticket(), session).await.unwrap();
    store
        .put_session(&session, SessionState::default())
        .await
        .unwrap();

    let mut conn = raw(&server).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 3);
    let session_hex = hex::encode(session.0);
    for key in &keys {
        assert!(key.starts_with("bonenfant:"), "{key}");
        assert!(!key.contains(TICKET) && !key.contains("ST-"), "{key}");
        assert!(!key.contains(&session_hex), "{key}");
        let value: Vec<u8> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&value).contains(TICKET));
    }
}

#[tokio::test]
async fn ttls_are_set_on_every_key_and_done_by_redis() {
    let server = RedisServer::start();
    let config = StoreConfig {
        tickets: bonenfant::session::MapLimits {
            ttl: Duration::from_millis(300),
            ..StoreConfig::default().tickets
        },
        ..StoreConfig::default()
    };
    let store = RedisStore::connect(&server.url(), &config).await.unwrap();
    store
        .bind_ticket(&ticket(), binding(SessionId::random()))
        .await
        .unwrap();
    store
        .swap_last_pupil(
            "pseudonym",
            bonenfant::pupil::PupilKey {
                uai: bonenfant::pupil::Uai::parse("0330012A").unwrap(),
                eleve_id: "701294".to_owned(),
            },
            5,
        )
        .await
        .unwrap();

    let mut conn = raw(&server).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL");
    }
    // One direction only (no timed assertion): once the TTL has passed, it is gone.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.take_ticket(&ticket()).await.unwrap(), None);
    assert!(store
        .bind_ticket(&ticket(), binding(SessionId::random()))
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takers_across_instances_get_a_ticket_exactly_once() {
    let server = RedisServer::start();
    let stores = [
        Arc::new(store(&server).await),
        Arc::new(store(&server).await),
    ];
    for round in 0..20 {
        let t = ServiceTicket::parse(&format!("ST-{round}-concurrent")).unwrap();
        stores[0]
            .bind_ticket(&t, binding(SessionId::random()))
            .await
            .unwrap();
        let takers: Vec<_> = (0..16)
            .map(|i| {
                let store = Arc::clone(&stores[i % 2]);
                let t = t.clone();
                tokio::spawn(async move { store.take_ticket(&t).await.unwrap().is_some() })
            })
            .collect();
        let mut winners = 0;
        for taker in takers {
            winners += usize::from(taker.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_redis_that_goes_away_is_unavailable_not_a_panic() {
    let mut server = RedisServer::start();
    let config = StoreConfig {
        redis_timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    };
    let store = RedisStore::connect(&server.url(), &config).await.unwrap();
    server.kill();
    let session = SessionId::random();
    let errors = [
        store.bind_ticket(&ticket(), binding(session)).await.err(),
        store.take_ticket(&ticket()).await.err(),
        store.session(&session).await.err(),
        store.forget_ticket(&ticket()).await.err(),
    ];
    for error in errors {
        let error = error.expect("an operation on a dead Redis fails");
        assert_eq!(error.code().as_str(), "store.unavailable", "{error}");
    }
}

#[tokio::test]
async fn connecting_to_no_redis_is_unavailable_and_hides_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = StoreConfig {
        redis_timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    };
    let url = format!("redis://user:hunter2secret@127.0.0.1:{port}/");
    let error = AnyStore::from_url(&url, &config).await.err().unwrap();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert!(!error.to_string().contains("hunter2secret"));
}

#[tokio::test]
async fn store_urls_choose_the_store() {
    let server = RedisServer::start();
    let config = StoreConfig::default();
    assert!(matches!(
        AnyStore::from_url("memory", &config).await,
        Ok(AnyStore::Memory(_))
    ));
    let redis = AnyStore::from_url(&server.url(), &config).await.unwrap();
    assert!(matches!(redis, AnyStore::Redis(_)));
    assert!(redis
        .bind_ticket(&ticket(), binding(SessionId::random()))
        .await
        .unwrap());
    for bad in [
        "",
        "memcached://x",
        "http://secret@host/",
        "redis:/broken",
        "rediss://h/",
    ] {
        let error = AnyStore::from_url(bad, &config).await.err().unwrap();
        assert_eq!(error.code().as_str(), "store.invalid_url", "{bad:?}");
        assert!(!error.to_string().contains("secret"));
    }
}

/// The Redis key of `session` under the default prefix, derived independently.
fn session_key(session: &SessionId) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"bonenfant.session\0");
    hasher.update(session.0);
    format!("bonenfant:s:{}", hex::encode(&hasher.finalize()[..16]))
}

#[tokio::test]
async fn a_foreign_value_under_our_key_is_corrupt() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let session = SessionId([9; 16]);
    let key = session_key(&session);
    let mut conn = raw(&server).await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    let error = store.session(&session).await.err().unwrap();
    assert_eq!(error.code().as_str(), "store.corrupt");
    // An update neither decides on nor overwrites what it cannot read.
    let error = store
        .update_session(&session, |_| -> (SessionChange, ()) {
            panic!("called on an undecodable state")
        })
        .await
        .err()
        .unwrap();
    assert_eq!(error.code().as_str(), "store.corrupt");
    let value: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, "not json");
}

#[tokio::test]
async fn the_store_works_again_once_redis_is_back() {
    let mut server = RedisServer::start();
    let config = StoreConfig {
        redis_timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    };
    let store = RedisStore::connect(&server.url(), &config).await.unwrap();
    server.kill();
    assert!(store.take_ticket(&ticket()).await.is_err());
    server.restart();
    // The connection comes back on its own; a few calls may still see the old one fail.
    let mut bound = None;
    for _ in 0..20 {
        match store
            .bind_ticket(&ticket(), binding(SessionId::random()))
            .await
        {
            Ok(result) => {
                bound = Some(result);
                break;
            }
            Err(error) => assert_eq!(error.code().as_str(), "store.unavailable"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bound, Some(true), "the store did not reconnect");
    // The restarted Redis has forgotten the update script: the store loads it again.
    let learn = session_support::learn_and_count(session_support::child("after", 0));
    let session = SessionId::random();
    let state = store.update_session(&session, learn).await.unwrap().state;
    assert_eq!(store.session(&session).await.unwrap(), state);
}

#[tokio::test]
async fn refuses_a_value_over_the_bound() {
    let server = RedisServer::start();
    let config = StoreConfig {
        max_value_bytes: 256,
        ..StoreConfig::default()
    };
    let store = RedisStore::connect(&server.url(), &config).await.unwrap();
    let state = SessionState {
        principal: Some("x".repeat(300)),
        ..SessionState::default()
    };
    let session = SessionId::random();
    let error = store
        .put_session(&session, state.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "store.too_large");
    assert_eq!(store.session(&session).await.unwrap(), None);
    let error = store
        .update_session(&session, |_| (SessionChange::Put(state.clone()), ()))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "store.too_large");
    assert_eq!(store.session(&session).await.unwrap(), None);
}

/// Two instances, several tasks on each, updating shared sessions with commutative
/// changes: every update that succeeded is in the final state, once; one that failed
/// (only ever for contention) left nothing.
#[test]
fn two_instances_concurrent_updaters_lose_no_update() {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let case = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 12,
        ..RunnerConfig::default()
    });
    let strategy = (1..4usize, 1..16usize, 1..=2usize);
    runner
        .run(&strategy, |(per_instance, updates, sessions)| {
            case.set(case.get() + 1);
            let config = StoreConfig {
                redis_prefix: format!("bonenfant-test:{}:", case.get()),
                ..StoreConfig::default()
            };
            rt.block_on(concurrent_updates(
                &server,
                &config,
                per_instance,
                updates,
                sessions,
            ));
            Ok(())
        })
        .unwrap();
}

async fn concurrent_updates(
    server: &RedisServer,
    config: &StoreConfig,
    per_instance: usize,
    updates: usize,
    sessions: usize,
) {
    let instances = [
        Arc::new(RedisStore::connect(&server.url(), config).await.unwrap()),
        Arc::new(RedisStore::connect(&server.url(), config).await.unwrap()),
    ];
    let ids: Vec<SessionId> = (0..sessions).map(|s| SessionId([s as u8; 16])).collect();
    let mut tasks = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        for t in 0..per_instance {
            let store = Arc::clone(instance);
            let ids = ids.clone();
            tasks.push(tokio::spawn(async move {
                let updater = format!("instance{i}-task{t}");
                let mut added = Vec::new();
                for n in 0..updates {
                    let s = (t + n) % ids.len();
                    let child = session_support::child(&updater, n);
                    let learn = session_support::learn_and_count(child.clone());
                    match store.update_session(&ids[s], learn).await {
                        Ok(_) => added.push((s, child)),
                        Err(error) => {
                            assert_eq!(error.code().as_str(), "store.contention", "{error}")
                        }
                    }
                }
                added
            }));
        }
    }
    let mut added = vec![Vec::new(); sessions];
    for task in tasks {
        for (s, child) in task.await.unwrap() {
            added[s].push(child);
        }
    }
    for (id, children) in ids.iter().zip(added) {
        let state = instances[0].session(id).await.unwrap();
        session_support::assert_holds_exactly(state.as_ref(), children);
    }
}

/// A writer that always gets in between the read and the write: the update retries a
/// bounded number of times, then fails with `store.contention` and writes nothing.
#[tokio::test]
async fn an_update_that_loses_every_race_fails_with_contention_and_writes_nothing() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let session = SessionId::random();
    let key = session_key(&session);
    let mut interferer = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut calls = 0u64;
    let error = store
        .update_session(&session, |current| {
            calls += 1;
            // Another writer lands right after this read (a test-only impurity). The
            // value is a valid state in the stored form: `t` is its update time.
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(format!("{{\"t\":{calls}}}"))
                .query(&mut interferer)
                .unwrap();
            let mut state = current.unwrap_or_default();
            state.principal = Some("never written".to_owned());
            (SessionChange::Put(state), ())
        })
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "store.contention", "{error}");
    assert_eq!(calls, u64::from(UPDATE_ATTEMPTS));
    let state = store.session(&session).await.unwrap().unwrap();
    assert_eq!(state.principal, None);
    assert_eq!(state.updated_at_ms, calls);
}
