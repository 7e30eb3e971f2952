//! Data minimisation (issue 11, finding 8), checked through a real proxy on loopback
//! whose store is a Redis the test opens with the same store key: session state keeps
//! the ENT's pupil attributes (FrEduVecteur, jointure) for a later rewrite only under
//! `--pin rewrite`, and a stash entry keeps the ENT's raw answer only under `--answer
//! verbatim`, which serves those bytes. Each test has its control: the same login in
//! the mode that needs the data does keep it, so an empty inspection means something.

use crate::{pin_support, session_support};

use std::time::Duration;

use bonenfant::cas::{Outcome, ServiceTicket};
use bonenfant::config::{AnswerMode, PinMode};
use bonenfant::session::cookie::{CookieKey, SessionCookies};
use bonenfant::session::redis::RedisStore;
use bonenfant::session::{SessionState, SessionStore as _};
use bonenfant::sim::{EntOptions, Pick};
use pin_support::{shown, Jar, Stack};
use session_support::RedisServer;

const CLAIRE: (&str, &str) = ("claire.martin", "demo-claire");
/// Claire's daughter, the only child of hers at this collège.
const LEA_UAI: &str = "0330101A";
/// The cookie key the proxy is given, so that the test finds the session id.
const COOKIE_KEY: [u8; 64] = [42; 64];

/// The sim ENT (asserting the child of the service's collège), bonenfant in `mode` and
/// `answer`, on `redis`, with the test's store and cookie keys.
async fn start(
    redis: &RedisServer,
    keys: &std::path::Path,
    mode: PinMode,
    answer: AnswerMode,
) -> Stack {
    let store_key_file = session_support::store_key_file(keys);
    let cookie_key_file = keys.join("cookie.keys");
    std::fs::write(&cookie_key_file, format!("{}\n", hex::encode(COOKIE_KEY))).unwrap();
    let redis = redis.url();
    Stack::start(
        pin_support::fixture_directory(),
        EntOptions {
            pick: Pick::Correct,
            ..EntOptions::ose_random(11)
        },
        mode,
        move |raw| {
            raw.store = Some(redis);
            raw.store_key_file = Some(store_key_file);
            raw.cookie_key_file = Some(cookie_key_file);
            raw.answer = Some(answer);
        },
    )
    .await
}

/// The test's own view of the proxy's store.
async fn store(redis: &RedisServer) -> RedisStore {
    RedisStore::connect(&redis.url(), &session_support::store_config())
        .await
        .unwrap()
}

/// The session state behind the jar's bonenfant cookie, as the proxy stored it.
async fn session_of(jar: &Jar, store: &RedisStore) -> SessionState {
    let cookies = SessionCookies::new(
        vec![CookieKey::from_bytes(&COOKIE_KEY).unwrap()],
        false,
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    )
    .unwrap();
    let value = jar.session_cookie().expect("a bonenfant cookie");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::COOKIE,
        format!("{}={value}", cookies.name()).parse().unwrap(),
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let cookie = cookies.open(&headers, now_ms).expect("the cookie opens");
    store
        .session(&cookie.id)
        .await
        .unwrap()
        .expect("the session is stored")
}

/// Under `--pin observe` and `--pin retry` a login leaves no observed assertion in the
/// session: nothing of the ENT's pupil attributes is kept that no rewrite will use.
/// Under `--pin rewrite` (the control) the same login keeps its allow-listed ones.
#[tokio::test(flavor = "current_thread")]
async fn session_state_holds_no_observed_assertion_outside_pin_rewrite() {
    let redis = RedisServer::start();
    let keys = tempfile::tempdir().unwrap();
    for mode in [PinMode::Observe, PinMode::Retry, PinMode::Rewrite] {
        let stack = start(&redis, keys.path(), mode, AnswerMode::Verbatim).await;
        let mut jar = Jar::new();
        let page = jar
            .login(&stack.pronote_page(LEA_UAI), CLAIRE.0, CLAIRE.1)
            .await;
        assert_eq!(
            shown(&page).map(|p| p.uai),
            Some(LEA_UAI.to_owned()),
            "{mode:?}"
        );
        let state = session_of(&jar, &store(&redis).await).await;
        assert_eq!(state.principal.as_deref(), Some(CLAIRE.0), "{mode:?}");
        assert!(!state.known.is_empty(), "{mode:?}: the session was updated");
        if mode == PinMode::Rewrite {
            assert!(
                state
                    .observed
                    .iter()
                    .any(|o| o.attributes.iter().any(|(name, _)| name == "FrEduVecteur")),
                "rewrite keeps its source: {:?}",
                state.observed
            );
        } else {
            assert!(
                state.observed.is_empty(),
                "{mode:?} keeps {:?}",
                state.observed
            );
        }
        stack.stop().await;
    }
}

/// Under `--answer canonical` Pronote is sent bonenfant's own serialisation, so the
/// stash entry the retry strategy writes for Pronote's validation holds no raw ENT
/// answer. Under `--answer verbatim` (the control) it holds the ENT's bytes.
#[tokio::test(flavor = "current_thread")]
async fn stash_holds_no_raw_ent_answer_under_answer_canonical() {
    let redis = RedisServer::start();
    let keys = tempfile::tempdir().unwrap();
    for answer in [AnswerMode::Canonical, AnswerMode::Verbatim] {
        let stack = start(&redis, keys.path(), PinMode::Retry, answer).await;
        let mut jar = Jar::new();
        // The answer to the password POST: bonenfant's redirect to Pronote with the
        // ticket it validated early and stashed, not followed.
        let redirect = jar
            .sign_in(&stack.pronote_page(LEA_UAI), CLAIRE.0, CLAIRE.1)
            .await;
        let location = redirect.location.expect("the ticket redirect");
        let ticket = location
            .query_pairs()
            .find(|(k, _)| k == "ticket")
            .map(|(_, v)| v.into_owned())
            .expect("a ticket");
        let store = store(&redis).await;
        let entry = store
            .take_stash(&store.ticket_key(&ServiceTicket::parse(&ticket).unwrap()))
            .await
            .unwrap()
            .expect("retry stashed the ticket");
        let Outcome::Success(assertion) = &entry.outcome else {
            panic!("{answer:?}: a success, got {:?}", entry.outcome)
        };
        assert_eq!(assertion.principal, CLAIRE.0);
        match answer {
            AnswerMode::Canonical => assert_eq!(entry.ent_answer, None),
            AnswerMode::Verbatim => assert!(
                entry
                    .ent_answer
                    .as_deref()
                    .is_some_and(|bytes| bytes.contains(CLAIRE.0)),
                "verbatim keeps the ENT's bytes: {:?}",
                entry.ent_answer
            ),
        }
        stack.stop().await;
    }
}
