//! Two bonenfant instances sharing one Redis (`docs/domain.md`, "Deployments"): the
//! browser's front channel goes through instance A, Pronote's back channel through
//! instance B, and they still correlate — with pinning (retry), B answers from the
//! stash A wrote. Whoever writes to that Redis between A and B cannot change the
//! identity Pronote gets, and whoever reads it finds no identity in clear.

use crate::session_support;

use std::net::SocketAddr;
use std::sync::Arc;

use bonenfant::config::{PinMode, RawConfig};
use bonenfant::events::{capture, LossCounter, Pseudonymizer, TraceLog};
use bonenfant::proxy::exchange::{self, RunningProxy};
use bonenfant::sim::browser::{parent_login, Browser, LoginResult};
use bonenfant::sim::{
    Directory, DirectoryParams, EntHandle, EntOptions, LandingOutcome, ParentVisit, PronoteOptions,
    Synthetic as _, TestEnt, TestPronote, SIM_SERVICE_PATTERN,
};
use session_support::RedisServer;
use tokio::net::TcpListener;
use url::Url;

async fn instance(
    ent: &Url,
    redis: &str,
    mode: PinMode,
    trace: TraceLog,
    tweak: impl FnOnce(&mut RawConfig),
) -> RunningProxy {
    let mut raw = RawConfig {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        upstream: Some(ent.clone()),
        pin: Some(mode),
        store: Some(redis.to_owned()),
        establishment_pattern: Some(SIM_SERVICE_PATTERN.to_owned()),
        ..RawConfig::default()
    };
    tweak(&mut raw);
    // The store key file every instance is given (read at validation).
    let keys = tempfile::tempdir().unwrap();
    raw.store_key_file
        .get_or_insert_with(|| session_support::store_key_file(keys.path()));
    let mut config = raw.validate().unwrap();
    // Shared key files in a real deployment.
    config.secrets.cookie_keys = vec![[42u8; 64]];
    exchange::spawn(Arc::new(config), trace).await.unwrap()
}

/// Instances A and B on one Redis, pinning by retry.
async fn two_pinning_instances(
    ent: &Url,
    redis: &str,
    trace: &TraceLog,
) -> (RunningProxy, RunningProxy) {
    // Enough re-logins that a parent of four never exhausts them against the ENT's
    // random pick (the default 8 ran out about one run in 30 while picks depended on the
    // port): what the tests check is not the retry budget.
    let generous = |raw: &mut RawConfig| raw.retry_max = Some(32);
    let a = instance(ent, redis, PinMode::Retry, trace.clone(), generous).await;
    let b = instance(ent, redis, PinMode::Retry, trace.clone(), generous).await;
    (a, b)
}

fn cas(addr: SocketAddr) -> Url {
    Url::parse(&format!("http://{addr}/cas")).unwrap()
}

/// `visit`'s parent logs in from a fresh browser.
async fn log_in(visit: &ParentVisit) -> LoginResult {
    parent_login(
        &mut Browser::new(),
        &visit.pronote_url,
        &visit.login,
        &visit.password,
    )
    .await
    .unwrap()
}

/// A shared trace log, a generated directory of 30 families and the sim ENT picking a
/// child at random, all from `seed`.
async fn random_ent(seed: u64) -> (TraceLog, Arc<Directory>, EntHandle) {
    let trace = TraceLog::new(
        Pseudonymizer::new(&[9u8; 32]).unwrap(),
        LossCounter::default(),
    );
    let directory = Arc::new(Directory::generate(
        &DirectoryParams {
            families: 30,
            ..DirectoryParams::default()
        },
        seed,
    ));
    let ent = TestEnt::spawn_local(Arc::clone(&directory), EntOptions::ose_random(seed))
        .await
        .unwrap();
    (trace, directory, ent)
}

#[tokio::test(flavor = "current_thread")]
async fn front_channel_on_one_instance_back_channel_on_the_other_correlate() {
    let redis = RedisServer::start();
    let (captured, _guard) = capture::capture();
    let (trace, directory, ent) = random_ent(11).await;
    let upstream = ent.base_url().clone();
    let (a, b) = two_pinning_instances(&upstream, &redis.url(), &trace).await;
    let pronote = TestPronote::with_back_channel(
        Arc::clone(&directory),
        PronoteOptions::new(cas(a.addr)),
        cas(b.addr),
    )
    .spawn(TcpListener::bind("127.0.0.1:0").await.unwrap())
    .unwrap();

    // Parents whose children attend two establishments: the establishment alone tells
    // the intent, so retry needs no chooser.
    let visits: Vec<_> = directory
        .visits(pronote.base_url())
        .into_iter()
        .filter(|v| v.establishments == v.children && v.children > 1)
        .take(12)
        .collect();
    assert!(
        visits.len() >= 6,
        "the directory has parents over two establishments"
    );
    for visit in &visits {
        let landed = log_in(visit).await;
        assert_eq!(
            landed.outcome,
            Some(LandingOutcome::Landed),
            "{}",
            landed.page.body
        );
        assert_eq!(landed.pupil.as_ref(), Some(&visit.intended));
    }

    // Every validation reached B and was correlated with A's front channel.
    let validations = captured.named("validate");
    assert_eq!(validations.len(), visits.len());
    for event in &validations {
        assert!(event["session"].is_string(), "{event}");
        assert_eq!(event["verdict"], "ok", "{event}");
        assert!(event["error"].is_null(), "{event}");
    }
    let redirects = captured.named("login_redirect");
    for event in &validations {
        assert!(
            redirects.iter().any(|r| r["session"] == event["session"]),
            "validation on B ties to a front channel seen on A: {event}"
        );
    }
    assert!(
        b.metrics
            .snapshot()
            .verdicts
            .get("ok")
            .copied()
            .unwrap_or(0)
            >= visits.len() as u64
    );
    captured.assert_no_leaks(&[]);

    // A reader of the Redis (a replica, a backup, `MONITOR`) finds no principal, pupil
    // id, UAI or first name of these families in any key or value.
    let dump = redis_dump(&redis.url()).await;
    assert!(
        dump.len() > visits.len(),
        "the logins left entries in Redis"
    );
    let mut identities: Vec<String> = Vec::new();
    for parent in directory.parents() {
        identities.push(parent.login.clone());
    }
    for pupil in directory.pupils() {
        identities.push(pupil.eleve_id.clone());
        identities.push(pupil.uai.clone());
        identities.push(pupil.uai.to_lowercase());
        identities.push(pupil.first_name.clone());
    }
    for clear in identities.iter().filter(|c| c.len() >= 5) {
        for (key, value) in &dump {
            assert!(!key.contains(clear.as_str()), "{clear} in the key {key}");
            assert!(
                !value.windows(clear.len()).any(|w| w == clear.as_bytes()),
                "{clear} readable in the value of {key}"
            );
        }
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    pronote.stop().await.unwrap();
    ent.stop().await.unwrap();
}

/// Every key and value under bonenfant's prefix.
async fn redis_dump(url: &str) -> Vec<(String, Vec<u8>)> {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis_dump_on(&mut conn).await
}

/// What the writer of the Redis does between a login through A and its validation
/// through B (`docs/security.md`, T56).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    /// Plants a stash entry and a binding naming another principal under the keys
    /// anyone could compute before keys were keyed: SHA-256 of the ticket.
    PlantUnderOldKeys,
    /// Rewrites every value (tombstones included) with forged plain JSON: a stash entry,
    /// a binding or a session naming another principal, in the old unsealed format.
    ForgeEveryValue,
    /// Moves every value to another key (values rotate among the keys).
    SwapValues,
    /// Flips one bit of every value.
    FlipABit,
    /// Cuts every value short.
    Truncate,
    /// Writes a stash entry of an earlier login (another parent's sealed assertion)
    /// over this ticket's.
    ReplayAnotherParentsStash,
}

/// The attacker's principal: Pronote must never see it.
const ATTACKER: &str = "attacker.parent";

/// Sits between Pronote and instance B: before each validation reaches B, does its
/// attack on the Redis. A man in the middle of nothing but timing: the request and the
/// answer pass unchanged.
#[derive(Clone)]
struct RedisWriter {
    redis: redis::aio::MultiplexedConnection,
    b: SocketAddr,
    client: bonenfant::sim::http::HttpClient,
    attack: Arc<std::sync::Mutex<Attack>>,
    /// Sealed stash values seen at earlier validations, before any attack.
    recorded: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl RedisWriter {
    async fn handle(
        self,
        request: http::Request<hyper::body::Incoming>,
    ) -> http::Response<bonenfant::sim::http::Body> {
        let query = request.uri().query().unwrap_or_default().to_owned();
        let ticket = bonenfant::sim::http::param(query.as_bytes(), "ticket").unwrap();
        // Service URLs are no secret: the forged entries name the real one, so before
        // values were sealed they passed every check but the ENT's.
        let service = bonenfant::sim::http::param(query.as_bytes(), "service").unwrap();
        let attack = *self.attack.lock().unwrap();
        self.clone().attack(attack, &ticket, &service).await;
        let target = format!(
            "http://{}{}",
            self.b,
            request.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        let forwarded = http::Request::get(target)
            .body(bonenfant::sim::http::Body::default())
            .unwrap();
        let answer = self.client.request(forwarded).await.unwrap();
        let (parts, body) = answer.into_parts();
        let body = bonenfant::sim::http::read_body(body).await.unwrap();
        http::Response::from_parts(parts, bonenfant::sim::http::Body::new(body))
    }

    async fn attack(mut self, attack: Attack, ticket: &str, service: &str) {
        let dump = redis_dump_on(&mut self.redis).await;
        // What a patient attacker keeps: every live stash entry, sealed as it is.
        let live_stash: Vec<&(String, Vec<u8>)> = dump
            .iter()
            .filter(|(key, value)| key.starts_with("bonenfant:x:") && !value.is_empty())
            .collect();
        assert!(!live_stash.is_empty(), "retry mode stashed this ticket");
        let replayed = self.recorded.lock().unwrap().first().cloned();
        self.recorded
            .lock()
            .unwrap()
            .extend(live_stash.iter().map(|(_, value)| value.clone()));
        let service = serde_json::to_string(service).unwrap();
        let forged = |key: &str| -> Vec<u8> {
            match &key["bonenfant:".len()..][..1] {
                "x" => format!(
                    r#"{{"v":{service},"a":{{"u":"{ATTACKER}"}},"t":1,"p":"none","n":true}}"#
                ),
                "t" => format!(r#"{{"v":{service},"t":1}}"#),
                _ => format!(r#"{{"u":"{ATTACKER}","t":1}}"#),
            }
            .into_bytes()
        };
        let mut writes: Vec<(String, Vec<u8>)> = Vec::new();
        match attack {
            Attack::PlantUnderOldKeys => {
                for letter in ["x", "t"] {
                    let key = format!("bonenfant:{letter}:{}", old_ticket_digest(ticket));
                    let value = forged(&key);
                    writes.push((key, value));
                }
            }
            Attack::ForgeEveryValue => {
                for (key, _) in &dump {
                    writes.push((key.clone(), forged(key)));
                }
            }
            Attack::SwapValues => {
                for (i, (key, _)) in dump.iter().enumerate() {
                    let (_, value) = &dump[(i + 1) % dump.len()];
                    writes.push((key.clone(), value.clone()));
                }
            }
            Attack::FlipABit => {
                for (key, value) in &dump {
                    let mut value = value.clone();
                    match value.last_mut() {
                        Some(last) => *last ^= 0x01,
                        None => value.push(0x01),
                    }
                    writes.push((key.clone(), value));
                }
            }
            Attack::Truncate => {
                for (key, value) in &dump {
                    let half = value.len() / 2;
                    writes.push((key.clone(), value[..half].to_vec()));
                }
            }
            Attack::ReplayAnotherParentsStash => {
                let replayed = replayed.expect("an earlier login was recorded");
                for (key, _) in &live_stash {
                    writes.push((key.clone(), replayed.clone()));
                }
            }
        }
        for (key, value) in writes {
            let _: () = redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(60_000)
                .query_async(&mut self.redis)
                .await
                .unwrap();
        }
    }
}

async fn redis_dump_on(conn: &mut redis::aio::MultiplexedConnection) -> Vec<(String, Vec<u8>)> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("bonenfant:*")
        .query_async(conn)
        .await
        .unwrap();
    let mut dump = Vec::new();
    for key in keys {
        let value: Vec<u8> = redis::cmd("GET").arg(&key).query_async(conn).await.unwrap();
        dump.push((key, value));
    }
    dump
}

/// The store key of a ticket as bonenfant computed it before keys were keyed.
fn old_ticket_digest(ticket: &str) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"bonenfant.ticket\0");
    hasher.update(ticket.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// The attack of issue 11, finding 1: with write access to the shared Redis, anyone
/// could plant a stash entry for a ticket, or rewrite a real login's values between
/// `/login` through A and Pronote's validation through B, and Pronote logged in as
/// whoever they named, without the ENT being asked. Now every value is sealed under the
/// store key and keys are keyed digests: whatever the writer does, Pronote gets the
/// ENT's own principal and pupil for that ticket, or a clean CAS failure.
#[tokio::test(flavor = "current_thread")]
async fn a_redis_writer_between_login_on_a_and_validation_on_b_never_changes_the_identity() {
    let redis = RedisServer::start();
    let (captured, _guard) = capture::capture();
    let (trace, directory, ent) = random_ent(14).await;
    let upstream = ent.base_url().clone();
    let (a, b) = two_pinning_instances(&upstream, &redis.url(), &trace).await;
    let writer = RedisWriter {
        redis: redis::Client::open(redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap(),
        b: b.addr,
        client: bonenfant::sim::http::client(),
        attack: Arc::new(std::sync::Mutex::new(Attack::PlantUnderOldKeys)),
        recorded: Arc::default(),
    };
    let attack = Arc::clone(&writer.attack);
    let in_between = bonenfant::sim::http::Server::spawn(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        move |listener, shutdown| {
            bonenfant::sim::http::serve(
                listener,
                move |request| writer.clone().handle(request),
                shutdown,
            )
        },
    )
    .unwrap();
    let pronote = TestPronote::with_back_channel(
        Arc::clone(&directory),
        PronoteOptions::new(cas(a.addr)),
        in_between.base_url().join("cas").unwrap(),
    )
    .spawn(TcpListener::bind("127.0.0.1:0").await.unwrap())
    .unwrap();

    let attacks = [
        Attack::PlantUnderOldKeys,
        Attack::ForgeEveryValue,
        Attack::SwapValues,
        Attack::FlipABit,
        Attack::Truncate,
        Attack::ReplayAnotherParentsStash,
    ];
    let visits: Vec<_> = directory
        .visits(pronote.base_url())
        .into_iter()
        .filter(|v| v.establishments == v.children && v.children > 1)
        .take(2 * attacks.len())
        .collect();
    assert!(
        visits.len() >= attacks.len(),
        "enough parents over two establishments"
    );
    for (round, visit) in visits.iter().enumerate() {
        let this = attacks[round % attacks.len()];
        *attack.lock().unwrap() = this;
        let landed = log_in(visit).await;
        let landing = pronote
            .landings()
            .pop()
            .expect("Pronote validated a ticket");
        let asserted = ent
            .ent
            .ticket(&landing.ticket)
            .expect("a ticket of the ENT");
        match this {
            // Nothing bonenfant reads was touched: the real parent lands.
            Attack::PlantUnderOldKeys => {
                assert_eq!(landed.outcome, Some(LandingOutcome::Landed), "{this:?}");
                assert_eq!(landed.pupil.as_ref(), Some(&visit.intended), "{this:?}");
            }
            // What bonenfant wrote no longer opens: a clean CAS failure, without the
            // ENT being asked again (it would refuse the spent ticket anyway).
            _ => {
                assert_eq!(landed.outcome, Some(LandingOutcome::Failure), "{this:?}");
                assert_eq!(
                    landing.failure.as_deref(),
                    Some("INVALID_TICKET"),
                    "{this:?}"
                );
                assert_eq!(asserted.validations, 1, "{this:?}: the ENT was asked once");
            }
        }
        // Whatever happened, a success is the ENT's own for that very ticket.
        if landing.outcome != LandingOutcome::Failure {
            assert_eq!(landing.principal.as_deref(), Some(asserted.login.as_str()));
            assert_eq!(asserted.login, visit.login, "{this:?}");
            let designated = landing.designated.as_ref().unwrap();
            assert!(
                asserted
                    .picked
                    .iter()
                    .any(|p| p.key().as_ref() == Some(designated)),
                "{this:?}: Pronote got a pupil the ENT did not assert for that ticket"
            );
        }
    }
    // Every landing, of every round: never the attacker, never another parent.
    for landing in pronote.landings() {
        let asserted = ent.ent.ticket(&landing.ticket).unwrap();
        assert_ne!(landing.principal.as_deref(), Some(ATTACKER));
        if let Some(principal) = &landing.principal {
            assert_eq!(principal, &asserted.login);
        }
    }
    let attacker = Pseudonymizer::new(&[9u8; 32]).unwrap().principal(ATTACKER);
    for event in captured.named("validate") {
        assert_ne!(
            event["principal"].as_str(),
            Some(attacker.as_str()),
            "{event}"
        );
    }
    captured.assert_no_leaks(&[]);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    in_between.stop().await.unwrap();
    pronote.stop().await.unwrap();
    ent.stop().await.unwrap();
}

/// Regression: with Redis down, every validation failed with `INTERNAL_ERROR` (the stash
/// lookup refused instead of degrading), so a Redis outage locked every parent out of
/// Pronote. Now bonenfant falls back to observing: the ticket goes to the ENT, Pronote
/// gets the ENT's answer, and correlation and pinning resume once Redis is back.
#[tokio::test(flavor = "current_thread")]
async fn redis_outage_degrades_to_observing_and_recovers_after_restart() {
    let mut redis = RedisServer::start();
    let (captured, _guard) = capture::capture();
    let (trace, directory, ent) = random_ent(12).await;
    // Enough re-logins that the ENT's random pick never exhausts them here: pinning
    // after the restart is what is checked, not the retry budget.
    let proxy = instance(ent.base_url(), &redis.url(), PinMode::Retry, trace, |raw| {
        raw.retry_max = Some(32);
    })
    .await;
    let pronote =
        TestPronote::spawn_local(Arc::clone(&directory), PronoteOptions::new(cas(proxy.addr)))
            .await
            .unwrap();
    let visits: Vec<_> = directory
        .visits(pronote.base_url())
        .into_iter()
        .filter(|v| v.establishments == 2 && v.children == 2)
        .take(6)
        .collect();
    assert!(
        visits.len() >= 4,
        "the directory has parents over two establishments"
    );

    // One login while Redis is up: the proxy is serving (it connects to the store first).
    let first = &visits[0];
    let landed = log_in(first).await;
    assert_eq!(landed.pupil.as_ref(), Some(&first.intended));
    let before = captured.named("validate").len();

    redis.kill();
    for visit in &visits {
        let landed = log_in(visit).await;
        // Observing: the ENT's random child, right or wrong, but never a refused login.
        assert_ne!(
            landed.outcome,
            Some(LandingOutcome::Failure),
            "{}",
            landed.page.body
        );
        assert!(landed.outcome.is_some(), "{}", landed.page.body);
    }
    let during = captured.named("validate").split_off(before);
    assert_eq!(during.len(), visits.len());
    for event in &during {
        assert!(event["verdict"].is_string(), "{event}");
        assert!(
            event["session"].is_null(),
            "uncorrelated while Redis is down: {event}"
        );
        assert_eq!(event["pin"], "none", "{event}");
    }

    // The store reconnects on the first call that finds its connection broken, so the
    // first login after the restart may still be observed only: log in until one is
    // correlated again (bounded), then every login is pinned.
    redis.restart();
    let seen = captured.named("validate").len();
    let mut reconnected = false;
    for _ in 0..5 {
        log_in(first).await;
        if captured.named("validate")[seen..]
            .iter()
            .any(|e| e["session"].is_string())
        {
            reconnected = true;
            break;
        }
    }
    assert!(reconnected, "bonenfant correlates again once Redis is back");
    let seen = captured.named("validate").len();
    for visit in &visits {
        let landed = log_in(visit).await;
        assert_eq!(
            landed.outcome,
            Some(LandingOutcome::Landed),
            "{}",
            landed.page.body
        );
        assert_eq!(landed.pupil.as_ref(), Some(&visit.intended), "pinned again");
    }
    let after = &captured.named("validate")[seen..];
    assert!(
        after
            .iter()
            .all(|e| e["session"].is_string() && e["error"].is_null()),
        "correlated again once Redis is back: {after:?}"
    );
    captured.assert_no_leaks(&[]);
    proxy.stop().await.unwrap();
    pronote.stop().await.unwrap();
    ent.stop().await.unwrap();
}

/// Redis started in the same breath as bonenfant (or restarting): bonenfant waits for it
/// at startup instead of exiting, then serves correlated logins.
#[tokio::test(flavor = "current_thread")]
async fn serve_waits_for_a_redis_that_is_not_up_yet() {
    let mut redis = RedisServer::start();
    redis.kill();
    let (captured, _guard) = capture::capture();
    let (trace, directory, ent) = random_ent(13).await;
    let proxy = instance(
        ent.base_url(),
        &redis.url(),
        PinMode::Observe,
        trace,
        |_| {},
    )
    .await;
    // Lets the proxy try, find no Redis and start waiting (a sequencing pause only: the
    // test passes however long the wait takes).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    redis.restart();
    let pronote =
        TestPronote::spawn_local(Arc::clone(&directory), PronoteOptions::new(cas(proxy.addr)))
            .await
            .unwrap();
    let visit = directory
        .visits(pronote.base_url())
        .into_iter()
        .next()
        .expect("a parent");
    let landed = log_in(&visit).await;
    assert!(landed.outcome.is_some(), "{}", landed.page.body);
    let validate = captured.named("validate");
    assert_eq!(validate.len(), 1);
    assert!(
        validate[0]["session"].is_string(),
        "correlated through Redis: {}",
        validate[0]
    );
    proxy.stop().await.unwrap();
    pronote.stop().await.unwrap();
    ent.stop().await.unwrap();
}

/// The bug this guards against: instance A read a session, instance B updated it, and
/// A's write (the state it had read, plus its own change) wiped out B's update. The
/// interleaving is forced: B's whole update runs between A's read and A's write.
#[test]
fn two_instances_updating_one_session_lost_an_update() {
    use bonenfant::session::redis::RedisStore;
    use bonenfant::session::{SessionId, SessionStore};

    // Each instance drives its own connection on its own runtime, as two processes do.
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let redis = RedisServer::start();
    let url = redis.url();
    // Instance B: its own connection, on its own thread, as another process would be.
    let instance_b_learns = |session: SessionId, child: &str| {
        let (url, child) = (url.clone(), session_support::child(child, 0));
        std::thread::spawn(move || {
            runtime().block_on(async {
                let b = RedisStore::connect(&url, &session_support::store_config())
                    .await
                    .unwrap();
                let learn = session_support::learn_and_count(child);
                b.update_session(&session, learn).await.unwrap();
            });
        })
        .join()
        .unwrap();
    };
    runtime().block_on(async {
        let a = RedisStore::connect(&url, &session_support::store_config())
            .await
            .unwrap();

        // Before: read, change, put back. B's child is lost.
        let session = SessionId::random();
        let mut read = a.session(&session).await.unwrap().unwrap_or_default();
        instance_b_learns(session, "b");
        read.known
            .push(bonenfant::session::KnownChild::new(session_support::child(
                "a", 0,
            )));
        a.put_session(&session, read).await.unwrap();
        let state = a.session(&session).await.unwrap().unwrap();
        assert_eq!(state.known.len(), 1, "the race was not reproduced");

        // Now: one atomic update. A's change is decided again on B's state.
        let session = SessionId::random();
        let mut learn = session_support::learn_and_count(session_support::child("a", 0));
        let mut calls = 0;
        let updated = a
            .update_session(&session, |current| {
                calls += 1;
                if calls == 1 {
                    instance_b_learns(session, "b");
                }
                learn(current)
            })
            .await
            .unwrap();
        assert_eq!(calls, 2, "A's first write should have lost the race");
        session_support::assert_holds_exactly(
            updated.state.as_ref(),
            vec![
                session_support::child("a", 0),
                session_support::child("b", 0),
            ],
        );
        assert_eq!(a.session(&session).await.unwrap(), updated.state);
    });
}
