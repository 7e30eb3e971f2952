//! The Redis store across instances and failures (`docs/domain.md`, "Deployments"): two stores on one Redis
//! share bindings, keys never hold a ticket in clear, TTLs are Redis's own, and a Redis
//! that is gone is a clear `Unavailable`, never a panic. Session updates racing across
//! two instances lose nothing, and one that loses every race says so. Values are sealed
//! under the store key: what a writer of the Redis plants, alters or moves is absent
//! and counted, a reader learns nothing, and keys rotate without losing an entry.
//! `rediss://` works, verified against a given CA.

use crate::session_support;

use std::sync::Arc;
use std::time::Duration;

use bonenfant::cas::{Assertion, Outcome, ServiceTicket};
use bonenfant::events::PinOutcome;
use bonenfant::pupil::{PupilKey, Uai};
use bonenfant::session::redis::RedisStore;
use bonenfant::session::redis::UPDATE_ATTEMPTS;
use bonenfant::session::{
    AnyStore, ObservedAssertion, SessionChange, SessionId, SessionState, SessionStore,
    StashedValidation, StoreConfig, StoreError, StoreKeys, TicketBinding,
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
    RedisStore::connect(&server.url(), &session_support::store_config())
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

    assert!(a
        .bind_ticket(&a.ticket_key(&ticket()), binding(session))
        .await
        .unwrap());
    assert!(!b
        .bind_ticket(&b.ticket_key(&ticket()), binding(SessionId::random()))
        .await
        .unwrap());
    assert_eq!(
        b.take_ticket(&b.ticket_key(&ticket())).await.unwrap(),
        Some(binding(session))
    );
    assert_eq!(a.take_ticket(&a.ticket_key(&ticket())).await.unwrap(), None);
    assert!(!a
        .bind_ticket(&a.ticket_key(&ticket()), binding(session))
        .await
        .unwrap());

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
    assert!(a
        .stash(&a.ticket_key(&ticket()), stashed.clone())
        .await
        .unwrap());
    assert_eq!(
        b.take_stash(&b.ticket_key(&ticket())).await.unwrap(),
        Some(stashed)
    );
    assert_eq!(a.take_stash(&a.ticket_key(&ticket())).await.unwrap(), None);

    let state = SessionState {
        principal: Some("p".to_owned()),
        updated_at_ms: 3,
        ..SessionState::default()
    };
    a.put_session(&session, state.clone()).await.unwrap();
    assert_eq!(b.session(&session).await.unwrap(), Some(state));

    // Single logout received by B ends what A validated.
    a.remember_validated(&a.ticket_key(&ticket()), session)
        .await
        .unwrap();
    assert_eq!(
        b.forget_ticket(&b.ticket_key(&ticket())).await.unwrap(),
        Some(session)
    );
    assert_eq!(
        a.forget_ticket(&a.ticket_key(&ticket())).await.unwrap(),
        None
    );
    b.drop_session(&session).await.unwrap();
    assert_eq!(a.session(&session).await.unwrap(), None);
}

#[tokio::test]
async fn keys_are_prefixed_digests_and_never_hold_the_ticket() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let session = SessionId::random();
    store
        .bind_ticket(&store.ticket_key(&ticket()), binding(session))
        .await
        .unwrap();
    store
        .remember_validated(&store.ticket_key(&ticket()), session)
        .await
        .unwrap();
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
        ..session_support::store_config()
    };
    let store = RedisStore::connect(&server.url(), &config).await.unwrap();
    store
        .bind_ticket(&store.ticket_key(&ticket()), binding(SessionId::random()))
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
    assert_eq!(
        store
            .take_ticket(&store.ticket_key(&ticket()))
            .await
            .unwrap(),
        None
    );
    assert!(store
        .bind_ticket(&store.ticket_key(&ticket()), binding(SessionId::random()))
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
            .bind_ticket(&stores[0].ticket_key(&t), binding(SessionId::random()))
            .await
            .unwrap();
        let winners = session_support::ticket_take_winners(&stores, 16, &t).await;
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_redis_that_goes_away_is_unavailable_not_a_panic() {
    let mut server = RedisServer::start();
    let config = StoreConfig {
        redis_timeout: Duration::from_millis(500),
        ..session_support::store_config()
    };
    let store = RedisStore::connect(&server.url(), &config).await.unwrap();
    server.kill();
    let session = SessionId::random();
    let errors = [
        store
            .bind_ticket(&store.ticket_key(&ticket()), binding(session))
            .await
            .err(),
        store.take_ticket(&store.ticket_key(&ticket())).await.err(),
        store.session(&session).await.err(),
        store
            .forget_ticket(&store.ticket_key(&ticket()))
            .await
            .err(),
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
        ..session_support::store_config()
    };
    let url = format!("redis://user:hunter2secret@127.0.0.1:{port}/");
    let error = AnyStore::from_url(&url, &config).await.err().unwrap();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    assert!(!error.to_string().contains("hunter2secret"));
}

#[tokio::test]
async fn store_urls_choose_the_store() {
    let server = RedisServer::start();
    let config = session_support::store_config();
    assert!(matches!(
        AnyStore::from_url("memory", &config).await,
        Ok(AnyStore::Memory(_))
    ));
    let redis = AnyStore::from_url(&server.url(), &config).await.unwrap();
    assert!(matches!(redis, AnyStore::Redis(_)));
    assert!(redis
        .bind_ticket(&redis.ticket_key(&ticket()), binding(SessionId::random()))
        .await
        .unwrap());
    for bad in [
        "",
        "memcached://x",
        "http://secret@host/",
        "redis:/broken",
        "rediss://secret@127.0.0.1:1/#insecure",
    ] {
        let error = AnyStore::from_url(bad, &config).await.err().unwrap();
        assert_eq!(error.code().as_str(), "store.invalid_url", "{bad:?}");
        assert!(!error.to_string().contains("secret"));
    }
}

/// The Redis key the store wrote `session` under (found by looking, not by computing:
/// the digest is keyed).
async fn session_key(store: &RedisStore, server: &RedisServer, session: &SessionId) -> String {
    let mut conn = raw(server).await;
    let before = all_keys(&mut conn).await;
    store
        .put_session(session, SessionState::default())
        .await
        .unwrap();
    let after = all_keys(&mut conn).await;
    let mut new: Vec<String> = after.into_iter().filter(|k| !before.contains(k)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new.pop().unwrap()
}

async fn all_keys(conn: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    redis::cmd("KEYS").arg("*").query_async(conn).await.unwrap()
}

async fn get(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<u8> {
    redis::cmd("GET").arg(key).query_async(conn).await.unwrap()
}

async fn set(conn: &mut redis::aio::MultiplexedConnection, key: &str, value: &[u8]) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async(conn)
        .await
        .unwrap();
}

/// The attack: a writer of the Redis replaces a session's value with one of its own
/// (plain JSON naming another principal, as the store wrote before values were sealed).
/// Before the fix the session came back with that principal. Now it is absent, counted,
/// and an update decides on nothing and replaces it.
#[tokio::test]
async fn a_session_value_planted_by_a_redis_writer_is_absent_and_counted() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let session = SessionId([9; 16]);
    let key = session_key(&store, &server, &session).await;
    let mut conn = raw(&server).await;
    set(&mut conn, &key, br#"{"u":"attacker","t":1}"#).await;
    assert_eq!(store.session(&session).await.unwrap(), None);
    assert_eq!(store.stats().unauthentic, 1);
    let updated = store
        .update_session(&session, |current| {
            assert_eq!(current, None, "the planted state is never decided on");
            let state = SessionState {
                principal: Some("parent".to_owned()),
                ..SessionState::default()
            };
            (SessionChange::Put(state), ())
        })
        .await
        .unwrap();
    assert_eq!(store.session(&session).await.unwrap(), updated.state);
    assert_eq!(store.stats().unauthentic, 2);
}

/// Every kind of value a writer can put under a real entry: forged in the old format,
/// garbage, truncated, one bit flipped, moved from another entry or another map.
/// None becomes a binding, a stash entry, a session, a logout target or a last pupil;
/// each is counted and logged as `store.unauthentic`, with no value in the log.
#[tokio::test]
async fn altered_moved_or_forged_values_never_open() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut conn = raw(&server).await;
    let (session, other) = (SessionId([1; 16]), SessionId([2; 16]));
    let other_ticket = ServiceTicket::parse("ST-43-another-ticket-of-the-same-length").unwrap();
    let logs = LogCapture::start();

    // Real entries of every map for `ticket()` and `session`, and of `other_ticket`.
    let write_all = || async {
        store
            .bind_ticket(&store.ticket_key(&ticket()), binding(session))
            .await
            .unwrap();
        store
            .bind_ticket(&store.ticket_key(&other_ticket), binding(other))
            .await
            .unwrap();
        store
            .stash(&store.ticket_key(&ticket()), stashed(session, "parent"))
            .await
            .unwrap();
        store
            .stash(&store.ticket_key(&other_ticket), stashed(other, "attacker"))
            .await
            .unwrap();
        store
            .remember_validated(&store.ticket_key(&ticket()), session)
            .await
            .unwrap();
        store
            .remember_validated(&store.ticket_key(&other_ticket), other)
            .await
            .unwrap();
        store.put_session(&session, parent_state()).await.unwrap();
        store
            .swap_last_pupil("k", pupil("701294"), 1)
            .await
            .unwrap();
    };
    write_all().await;
    let keys = all_keys(&mut conn).await;
    let mut originals = Vec::new();
    for key in &keys {
        originals.push((key.clone(), get(&mut conn, key).await));
    }

    let attacks: Vec<(&str, Box<Rewrite<'_>>)> = vec![
        (
            "old-format forgery",
            Box::new(|_, _| {
                br#"{"v":"https://s/","a":{"u":"attacker"},"t":1,"p":"none"}"#.to_vec()
            }),
        ),
        ("garbage", Box::new(|_, _| b"\x01garbage".to_vec())),
        ("truncated", Box::new(|_, v| v[..v.len() - 1].to_vec())),
        (
            "bit flipped",
            Box::new(|_, v| {
                let mut v = v.to_vec();
                let last = v.len() - 1;
                v[last] ^= 0x40;
                v
            }),
        ),
        (
            "moved from another entry",
            Box::new(|key, _| {
                // The value of the same map's other entry (another ticket, another
                // session), or of another map when the map has one entry.
                originals
                    .iter()
                    .find(|(k, _)| k != key && k[..12] == key[..12])
                    .or_else(|| originals.iter().find(|(k, _)| k != key))
                    .map(|(_, v)| v.clone())
                    .unwrap()
            }),
        ),
    ];
    let mut expected = 0;
    for (attack, rewrite) in &attacks {
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        write_all().await;
        let mut count = 0;
        for key in all_keys(&mut conn).await {
            let value = get(&mut conn, &key).await;
            set(&mut conn, &key, &rewrite(&key, &value)).await;
            count += 1;
        }
        assert_eq!(count, 8, "{attack}");
        let key = store.ticket_key(&ticket());
        assert_eq!(store.take_ticket(&key).await.unwrap(), None, "{attack}");
        assert_eq!(store.take_stash(&key).await.unwrap(), None, "{attack}");
        assert_eq!(store.session(&session).await.unwrap(), None, "{attack}");
        assert_eq!(store.forget_ticket(&key).await.unwrap(), None, "{attack}");
        assert_eq!(
            store.swap_last_pupil("k", pupil("1"), 2).await.unwrap(),
            None,
            "{attack}"
        );
        expected += 5;
        assert_eq!(store.stats().unauthentic, expected, "{attack}");
    }
    let logged = logs.text();
    assert_eq!(
        logged.matches("store.unauthentic").count() as u64,
        expected,
        "{logged}"
    );
    assert!(
        !logged.contains("attacker") && !logged.contains("garbage"),
        "{logged}"
    );
}

/// What a writer of the Redis puts under a key, given the key and its value.
type Rewrite<'a> = dyn Fn(&str, &[u8]) -> Vec<u8> + 'a;

fn stashed(session: SessionId, principal: &str) -> StashedValidation {
    StashedValidation {
        service: "https://0330012a.index-education.net/pronote/parent.html".to_owned(),
        outcome: Outcome::Success(Assertion {
            principal: principal.to_owned(),
            ..Assertion::default()
        }),
        session: Some(session),
        stored_at_ms: 2,
        pin: PinOutcome::Retry,
        retries: 1,
        primary: true,
        ent_answer: None,
    }
}

fn pupil(id: &str) -> PupilKey {
    PupilKey {
        uai: Uai::parse("0330012A").unwrap(),
        eleve_id: id.to_owned(),
    }
}

fn parent_state() -> SessionState {
    SessionState {
        principal: Some("AC-BORDEAUX$parent.durand".to_owned()),
        pin: Some(pupil("701294")),
        landed: vec![pupil("701294")],
        known: vec![bonenfant::session::KnownChild {
            key: pupil("701294"),
            first_name: Some("Clémentine".to_owned()),
            class: Some("4B".to_owned()),
        }],
        observed: vec![ObservedAssertion {
            principal: "AC-BORDEAUX$parent.durand".to_owned(),
            service: "https://0330012a.index-education.net/pronote/parent.html".to_owned(),
            at_ms: 1,
            attributes: vec![(
                "FrEduVecteur".to_owned(),
                "2|DURAND|Clémentine|701294|0330012A".to_owned(),
            )],
        }],
        updated_at_ms: 1,
        ..SessionState::default()
    }
}

/// A reader of the Redis (a replica, a backup, `MONITOR`) sees digests and sealed bytes:
/// no principal, pupil id, UAI, first name, service or ticket, in any key or value.
#[tokio::test]
async fn a_reader_of_redis_finds_no_identity_in_clear() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let session = SessionId([3; 16]);
    let mut entry = stashed(session, "AC-BORDEAUX$parent.durand");
    if let Outcome::Success(assertion) = &mut entry.outcome {
        assertion
            .attributes
            .push("FrEduVecteur", "2|DURAND|Clémentine|701294|0330012A");
    }
    entry.ent_answer = Some("<cas:user>AC-BORDEAUX$parent.durand</cas:user>".to_owned());
    store
        .bind_ticket(&store.ticket_key(&ticket()), binding(session))
        .await
        .unwrap();
    store
        .stash(&store.ticket_key(&ticket()), entry)
        .await
        .unwrap();
    store.put_session(&session, parent_state()).await.unwrap();
    store
        .remember_validated(&store.ticket_key(&ticket()), session)
        .await
        .unwrap();
    store
        .swap_last_pupil("pseudonym", pupil("701294"), 1)
        .await
        .unwrap();

    let mut conn = raw(&server).await;
    let keys = all_keys(&mut conn).await;
    assert_eq!(keys.len(), 5);
    let mut dump = Vec::new();
    for key in &keys {
        dump.extend_from_slice(key.as_bytes());
        dump.push(b'\n');
        dump.extend_from_slice(&get(&mut conn, key).await);
        dump.push(b'\n');
    }
    for clear in [
        "parent.durand",
        "DURAND",
        "Clémentine",
        "701294",
        "0330012A",
        "0330012a",
        "index-education",
        "FrEduVecteur",
        "pseudonym",
        TICKET,
        &hex::encode(session.0),
    ] {
        assert!(
            !dump.windows(clear.len()).any(|w| w == clear.as_bytes()),
            "{clear} readable in Redis"
        );
    }
}

/// The seal proves where a value belongs, not when: a writer of the Redis who recorded
/// a stash entry writes it back after Pronote took it, to have the same ticket answered
/// a second time. Within the entry's lifetime that still works (documented in
/// `docs/security.md`, T56); past it, the value's sealed time stamp gives it away.
#[tokio::test]
async fn a_stash_entry_written_back_after_its_lifetime_is_refused() {
    let server = RedisServer::start();
    let config = StoreConfig {
        stash: bonenfant::session::MapLimits {
            ttl: Duration::from_millis(200),
            ..session_support::store_config().stash
        },
        redis_clock_skew: Duration::ZERO,
        ..session_support::store_config()
    };
    let store = RedisStore::connect(&server.url(), &config).await.unwrap();
    let mut conn = raw(&server).await;
    let session = SessionId([8; 16]);
    store
        .stash(&store.ticket_key(&ticket()), stashed(session, "parent"))
        .await
        .unwrap();
    let keys = all_keys(&mut conn).await;
    let recorded = get(&mut conn, &keys[0]).await;
    assert!(store
        .take_stash(&store.ticket_key(&ticket()))
        .await
        .unwrap()
        .is_some());
    // Sequencing only: the entry's lifetime passes (the assertion holds however late).
    tokio::time::sleep(Duration::from_millis(300)).await;
    set(&mut conn, &keys[0], &recorded).await;
    assert_eq!(
        store
            .take_stash(&store.ticket_key(&ticket()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.stats().unauthentic, 1);
}

/// The old store keys were unkeyed SHA-256 digests anyone could compute from a ticket.
/// A value planted there is never looked at; the keyed digests are elsewhere.
#[tokio::test]
async fn a_value_planted_under_the_old_unkeyed_key_is_never_read() {
    let server = RedisServer::start();
    let store = store(&server).await;
    let mut conn = raw(&server).await;
    let old = |letter: &str| {
        let mut hasher = Sha256::new();
        hasher.update(b"bonenfant.ticket\0");
        hasher.update(TICKET.as_bytes());
        format!(
            "bonenfant:{letter}:{}",
            hex::encode(&hasher.finalize()[..16])
        )
    };
    set(
        &mut conn,
        &old("x"),
        br#"{"v":"https://s/","a":{"u":"attacker"},"t":1,"p":"none"}"#,
    )
    .await;
    set(&mut conn, &old("t"), br#"{"v":"https://s/","t":1}"#).await;
    assert_eq!(
        store
            .take_stash(&store.ticket_key(&ticket()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_ticket(&store.ticket_key(&ticket()))
            .await
            .unwrap(),
        None
    );
    assert!(store
        .bind_ticket(&store.ticket_key(&ticket()), binding(SessionId([4; 16])))
        .await
        .unwrap());
    // The new binding went to a key of its own, beside the two planted ones.
    let keys = all_keys(&mut conn).await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys.contains(&old("x")) && keys.contains(&old("t")),
        "{keys:?}"
    );
    // Never even opened: the store looked only where its keyed digests point.
    assert_eq!(store.stats().unauthentic, 0);
}

#[tokio::test]
async fn a_redis_store_refuses_to_start_without_store_keys() {
    let server = RedisServer::start();
    for url in [server.url(), format!("rediss://127.0.0.1:{}/", server.port)] {
        let error = AnyStore::from_url(&url, &StoreConfig::default())
            .await
            .err()
            .unwrap();
        assert_eq!(error.code().as_str(), "store.setup", "{error}");
        assert!(error.to_string().contains("--store-key-file"), "{error}");
    }
    // The memory store takes a random key of its own.
    assert!(AnyStore::from_url("memory", &StoreConfig::default())
        .await
        .is_ok());
}

/// Key rotation, as `--store-key-file` does it: a new key is added first with the old
/// one second. Every entry the old key wrote is still found and opens; new entries use
/// the new key; once the old key is dropped, what it sealed opens no more.
#[tokio::test]
async fn entries_written_under_the_old_key_are_read_while_it_is_second_in_the_list() {
    let server = RedisServer::start();
    let (old_key, new_key) = ([0x11u8; 32], [0x22u8; 32]);
    let with = |keys: &[[u8; 32]]| StoreConfig {
        keys: Some(StoreKeys::new(keys.iter()).unwrap()),
        ..StoreConfig::default()
    };
    let before = RedisStore::connect(&server.url(), &with(&[old_key]))
        .await
        .unwrap();
    let during = RedisStore::connect(&server.url(), &with(&[new_key, old_key]))
        .await
        .unwrap();
    let after = RedisStore::connect(&server.url(), &with(&[new_key]))
        .await
        .unwrap();
    let (session, t2) = (
        SessionId([5; 16]),
        ServiceTicket::parse("ST-2-rotation").unwrap(),
    );

    before
        .bind_ticket(&before.ticket_key(&ticket()), binding(session))
        .await
        .unwrap();
    before
        .bind_ticket(&before.ticket_key(&t2), binding(session))
        .await
        .unwrap();
    before
        .stash(&before.ticket_key(&ticket()), stashed(session, "parent"))
        .await
        .unwrap();
    before.put_session(&session, parent_state()).await.unwrap();
    before
        .remember_validated(&before.ticket_key(&ticket()), session)
        .await
        .unwrap();
    before
        .swap_last_pupil("k", pupil("701294"), 7)
        .await
        .unwrap();

    // A ticket binds once, whichever key its first binding used.
    assert!(!during
        .bind_ticket(&during.ticket_key(&t2), binding(session))
        .await
        .unwrap());
    assert_eq!(
        during.take_ticket(&during.ticket_key(&t2)).await.unwrap(),
        Some(binding(session))
    );
    assert_eq!(
        during
            .take_stash(&during.ticket_key(&ticket()))
            .await
            .unwrap(),
        Some(stashed(session, "parent"))
    );
    assert_eq!(
        during.session(&session).await.unwrap(),
        Some(parent_state())
    );
    assert_eq!(
        during
            .forget_ticket(&during.ticket_key(&ticket()))
            .await
            .unwrap(),
        Some(session)
    );
    assert_eq!(
        during.swap_last_pupil("k", pupil("2"), 8).await.unwrap(),
        Some((pupil("701294"), 7))
    );
    // An update moves the session under the new key: the new-key-only store finds it.
    let mut renewed = parent_state();
    renewed.updated_at_ms = 2;
    let update = renewed.clone();
    during
        .update_session(&session, move |current| {
            assert_eq!(current, Some(parent_state()));
            (SessionChange::Put(update.clone()), ())
        })
        .await
        .unwrap();
    assert_eq!(after.session(&session).await.unwrap(), Some(renewed));
    assert_eq!(
        before.session(&session).await.unwrap(),
        None,
        "the old copy is gone"
    );
    assert_eq!(during.stats().unauthentic, 0);

    // Once the old key is dropped, an entry it sealed is not found (nor opened).
    let late = SessionId([6; 16]);
    before.put_session(&late, parent_state()).await.unwrap();
    assert_eq!(during.session(&late).await.unwrap(), Some(parent_state()));
    assert_eq!(after.session(&late).await.unwrap(), None);
}

/// The ACL user `docs/deploy.md` gives bonenfant: its own key prefix and the commands
/// it uses, nothing else. Every operation works under it, the rotation paths (scripts,
/// atomic blocks) included, and it can read nothing outside the prefix.
#[tokio::test]
async fn an_acl_user_limited_to_bonenfants_prefix_is_enough() {
    let server = RedisServer::start();
    let mut admin = raw(&server).await;
    let acl = "reset on >an-acl-test-password ~bonenfant:* resetchannels \
               +get +set +getex +getdel +del +exists +eval +evalsha +script|load \
               +multi +exec +discard +select +ping";
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("bonenfant")
        .arg(acl.split_whitespace().collect::<Vec<_>>())
        .query_async(&mut admin)
        .await
        .unwrap();
    set(&mut admin, "other-app:secret", b"not bonenfant's").await;
    let url = format!(
        "redis://bonenfant:an-acl-test-password@127.0.0.1:{}/",
        server.port
    );
    let rotating = StoreConfig {
        keys: Some(StoreKeys::new([[0x33u8; 32], session_support::STORE_KEY]).unwrap()),
        ..session_support::store_config()
    };
    for config in [session_support::store_config(), rotating] {
        let store = RedisStore::connect(&url, &config).await.unwrap();
        let session = SessionId::random();
        assert!(store
            .bind_ticket(&store.ticket_key(&ticket()), binding(session))
            .await
            .unwrap());
        assert!(store
            .take_ticket(&store.ticket_key(&ticket()))
            .await
            .unwrap()
            .is_some());
        assert!(store
            .stash(&store.ticket_key(&ticket()), stashed(session, "p"))
            .await
            .unwrap());
        assert!(store
            .take_stash(&store.ticket_key(&ticket()))
            .await
            .unwrap()
            .is_some());
        store.put_session(&session, parent_state()).await.unwrap();
        assert!(store.session(&session).await.unwrap().is_some());
        let learn = session_support::learn_and_count(session_support::child("acl", 0));
        store.update_session(&session, learn).await.unwrap();
        store
            .remember_validated(&store.ticket_key(&ticket()), session)
            .await
            .unwrap();
        assert_eq!(
            store
                .forget_ticket(&store.ticket_key(&ticket()))
                .await
                .unwrap(),
            Some(session)
        );
        store.swap_last_pupil("k", pupil("1"), 1).await.unwrap();
        store.drop_session(&session).await.unwrap();
        let _: () = redis::cmd("FLUSHDB").query_async(&mut admin).await.unwrap();
        set(&mut admin, "other-app:secret", b"not bonenfant's").await;
    }
    let mut limited = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let refused: redis::RedisResult<Vec<u8>> = redis::cmd("GET")
        .arg("other-app:secret")
        .query_async(&mut limited)
        .await;
    assert!(refused.is_err(), "the ACL user reads outside its prefix");
}

/// `rediss://`: the store talks TLS to a Redis whose certificate a given CA signed, and
/// refuses one it cannot verify.
#[tokio::test]
async fn rediss_connects_through_tls_verified_against_the_given_ca() {
    let pki = crate::support::pki::TestPki::new();
    let (cert, key) = pki.leaf("redis", &["127.0.0.1"]);
    let server = RedisServer::start_tls(&cert, &key, pki.ca_path());
    let config = StoreConfig {
        redis_ca: Some(pki.ca_path().to_owned()),
        redis_timeout: Duration::from_secs(5),
        ..session_support::store_config()
    };
    let store = AnyStore::from_url(&server.url(), &config).await.unwrap();
    assert!(store
        .bind_ticket(&store.ticket_key(&ticket()), binding(SessionId([7; 16])))
        .await
        .unwrap());
    assert_eq!(
        store
            .take_ticket(&store.ticket_key(&ticket()))
            .await
            .unwrap(),
        Some(binding(SessionId([7; 16])))
    );

    // Without the CA (the webpki roots do not know it), the server is not trusted.
    let untrusted = StoreConfig {
        redis_ca: None,
        redis_timeout: Duration::from_millis(500),
        ..config.clone()
    };
    let error = AnyStore::from_url(&server.url(), &untrusted)
        .await
        .err()
        .unwrap();
    assert_eq!(error.code().as_str(), "store.unavailable", "{error}");
    // A CA for a plain redis:// URL is a set-up error, named.
    let error = AnyStore::from_url(&format!("redis://127.0.0.1:{}/", server.port), &config)
        .await
        .err()
        .unwrap();
    assert_eq!(error.code().as_str(), "store.setup", "{error}");
    assert!(error.to_string().contains("--store-ca"), "{error}");
}

/// What `tracing` writes while it lives (this thread only), as text.
struct LogCapture {
    buffer: Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    fn start() -> Self {
        let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .with_ansi(false)
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_store_works_again_once_redis_is_back() {
    let mut server = RedisServer::start();
    let config = StoreConfig {
        redis_timeout: Duration::from_millis(500),
        ..session_support::store_config()
    };
    let store = RedisStore::connect(&server.url(), &config).await.unwrap();
    server.kill();
    assert!(store
        .take_ticket(&store.ticket_key(&ticket()))
        .await
        .is_err());
    server.restart();
    // The connection comes back on its own; a few calls may still see the old one fail.
    let mut bound = None;
    for _ in 0..20 {
        match store
            .bind_ticket(&store.ticket_key(&ticket()), binding(SessionId::random()))
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
        ..session_support::store_config()
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
                ..session_support::store_config()
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
    let key = session_key(&store, &server, &session).await;
    // The other writer's values, sealed by an instance sharing the key: states whose
    // `t` (update time) numbers the write.
    let mut conn = raw(&server).await;
    let mut writes = Vec::new();
    for n in 1..=u64::from(UPDATE_ATTEMPTS) {
        let state = SessionState {
            updated_at_ms: n,
            ..SessionState::default()
        };
        store.put_session(&session, state).await.unwrap();
        writes.push(get(&mut conn, &key).await);
    }
    store.drop_session(&session).await.unwrap();
    let mut interferer = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut calls = 0usize;
    let error = store
        .update_session(&session, |current| {
            calls += 1;
            // Another writer lands right after this read (a test-only impurity).
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(&writes[calls - 1])
                .query(&mut interferer)
                .unwrap();
            let mut state = current.unwrap_or_default();
            state.principal = Some("never written".to_owned());
            (SessionChange::Put(state), ())
        })
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "store.contention", "{error}");
    assert_eq!(calls, UPDATE_ATTEMPTS as usize);
    let state = store.session(&session).await.unwrap().unwrap();
    assert_eq!(state.principal, None);
    assert_eq!(state.updated_at_ms, calls as u64);
}
