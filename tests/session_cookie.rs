//! The proxy's session cookie against the threat cases T39–T42 of `docs/security.md`:
//! tampering, forging, renaming, expiry inside the sealed value, key rotation and
//! retirement, attributes and size.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bonenfant::session::cookie::{
    generate_key, CookieKey, CookieKeyError, SessionCookie, SessionCookies, PLAIN_NAME, SECURE_NAME,
};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000_000;
const HOUR_MS: u64 = 3_600_000;

fn key() -> CookieKey {
    CookieKey::from_bytes(&generate_key()).unwrap()
}

fn cookies(keys: Vec<CookieKey>, secure: bool) -> SessionCookies {
    SessionCookies::new(
        keys,
        secure,
        Duration::from_secs(2 * 3600),
        Duration::from_secs(3600),
    )
    .unwrap()
}

/// The `name=value` pair of a `Set-Cookie` value.
fn pair(set_cookie: &HeaderValue) -> String {
    set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn value_of(set_cookie: &HeaderValue) -> String {
    pair(set_cookie).split_once('=').unwrap().1.to_owned()
}

/// A request carrying `cookie` as its `Cookie` header.
fn request(cookie: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.insert(COOKIE, value);
    }
    headers
}

fn sealed(jar: &SessionCookies, now: u64) -> (SessionCookie, HeaderValue) {
    let cookie = SessionCookie::fresh(now);
    let header = jar.seal(&cookie, now);
    (cookie, header)
}

#[test]
fn opens_what_it_sealed() {
    let jar = cookies(vec![key()], true);
    let (cookie, header) = sealed(&jar, NOW);
    let opened = jar.open(&request(&pair(&header)), NOW + 1_000).unwrap();
    assert_eq!(opened.id, cookie.id);
    assert_eq!(opened.csrf, cookie.csrf);
    assert_eq!(opened.created_at_ms, NOW);
    assert_eq!(opened.last_seen_ms, NOW);
    assert!(!jar.needs_reseal(&opened, NOW + 1_000));
    assert!(jar.needs_reseal(&opened, NOW + 120_000));
}

#[test]
fn finds_its_cookie_among_others_and_across_cookie_headers() {
    let jar = cookies(vec![key()], false);
    let (cookie, header) = sealed(&jar, NOW);
    let mut headers = HeaderMap::new();
    headers.append(COOKIE, HeaderValue::from_static("PHPSESSID=abc; lang=fr"));
    headers.append(
        COOKIE,
        HeaderValue::from_str(&format!("x=1; {}", pair(&header))).unwrap(),
    );
    assert_eq!(jar.open(&headers, NOW).unwrap().id, cookie.id);
}

#[test]
fn tries_only_a_few_same_named_cookies() {
    let jar = cookies(vec![key()], true);
    let (cookie, header) = sealed(&jar, NOW);
    let decoy = format!("{SECURE_NAME}=AAAA");
    let stuffed = format!("{0}; {0}; {0}; {0}; {1}", decoy, pair(&header));
    assert!(jar.open(&request(&stuffed), NOW).is_none());
    let behind_one_decoy = format!("{decoy}; {}", pair(&header));
    assert_eq!(
        jar.open(&request(&behind_one_decoy), NOW).unwrap().id,
        cookie.id
    );
}

// === T39: tamper and forge ===

#[test]
fn rejects_plaintext_empty_and_garbage_values() {
    let jar = cookies(vec![key()], true);
    for value in [
        "",
        "x",
        "{\"id\":\"00\"}",
        "AAAA",
        "%%%",
        "====",
        &"A".repeat(5000),
    ] {
        assert!(
            jar.open(&request(&format!("{SECURE_NAME}={value}")), NOW)
                .is_none(),
            "{value:?}"
        );
    }
    assert!(jar.open(&HeaderMap::new(), NOW).is_none());
}

#[test]
fn rejects_a_value_moved_under_another_name() {
    let secure = cookies(vec![key()], true);
    let (_, header) = sealed(&secure, NOW);
    let value = value_of(&header);
    assert!(secure
        .open(&request(&format!("bonenfant={value}")), NOW)
        .is_none());
    assert!(secure
        .open(&request(&format!("__Host-other={value}")), NOW)
        .is_none());
}

#[test]
fn rejects_a_plain_http_cookie_on_tls_and_the_reverse() {
    let k = key();
    let plain = cookies(vec![k.clone()], false);
    let secure = cookies(vec![k], true);
    let (_, plain_header) = sealed(&plain, NOW);
    let (_, secure_header) = sealed(&secure, NOW);
    assert!(secure.open(&request(&pair(&plain_header)), NOW).is_none());
    assert!(plain.open(&request(&pair(&secure_header)), NOW).is_none());
}

#[test]
fn rejects_a_cookie_sealed_under_an_unknown_key() {
    let (_, header) = sealed(&cookies(vec![key()], true), NOW);
    assert!(cookies(vec![key()], true)
        .open(&request(&pair(&header)), NOW)
        .is_none());
}

proptest! {
    #[test]
    fn rejects_every_bit_flip(bit in 0usize..(8 * 200)) {
        let jar = cookies(vec![key()], true);
        let (_, header) = sealed(&jar, NOW);
        let mut raw = STANDARD.decode(value_of(&header)).unwrap();
        let bit = bit % (8 * raw.len());
        raw[bit / 8] ^= 1 << (bit % 8);
        let forged = format!("{SECURE_NAME}={}", STANDARD.encode(&raw));
        prop_assert!(jar.open(&request(&forged), NOW).is_none());
    }

    #[test]
    fn rejects_every_truncation(cut in 0usize..200) {
        let jar = cookies(vec![key()], true);
        let (_, header) = sealed(&jar, NOW);
        let value = value_of(&header);
        let cut = cut % value.len();
        let truncated = format!("{SECURE_NAME}={}", &value[..cut]);
        prop_assert!(jar.open(&request(&truncated), NOW).is_none());
    }

    #[test]
    fn never_panics_on_arbitrary_cookie_headers(header in ".{0,300}", now in any::<u64>()) {
        let jar = cookies(vec![key()], true);
        let _ = jar.open(&request(&header), now);
    }
}

// === T40: expiry inside the sealed value ===

#[test]
fn rejects_a_cookie_resent_past_its_absolute_lifetime() {
    let jar = cookies(vec![key()], true);
    let mut cookie = SessionCookie::fresh(NOW);
    // Kept alive by regular requests, the session still ends two hours after it began.
    let mut now = NOW;
    while now < NOW + 2 * HOUR_MS - 1_800_000 {
        now += 1_800_000;
        let header = jar.seal(&cookie, now);
        cookie = jar
            .open(&request(&pair(&header)), now)
            .expect("live within the limits");
    }
    let header = jar.seal(&cookie, now);
    assert!(jar
        .open(&request(&pair(&header)), NOW + 2 * HOUR_MS)
        .is_none());
}

#[test]
fn rejects_a_cookie_idle_past_its_limit() {
    let jar = cookies(vec![key()], true);
    let (_, header) = sealed(&jar, NOW);
    assert!(jar
        .open(&request(&pair(&header)), NOW + HOUR_MS - 1)
        .is_some());
    assert!(jar.open(&request(&pair(&header)), NOW + HOUR_MS).is_none());
}

#[test]
fn rejects_a_cookie_from_the_future() {
    let jar = cookies(vec![key()], true);
    let (_, header) = sealed(&jar, NOW + HOUR_MS);
    assert!(jar.open(&request(&pair(&header)), NOW).is_none());
}

// === T41: key rotation and retirement ===

#[test]
fn accepts_an_old_key_during_overlap_and_reseals_under_the_new() {
    let old = key();
    let new = key();
    let before = cookies(vec![old.clone()], true);
    let during = cookies(vec![new.clone(), old], true);
    let after = cookies(vec![new], true);

    let (cookie, header) = sealed(&before, NOW);
    let opened = during.open(&request(&pair(&header)), NOW + 1_000).unwrap();
    assert_eq!(opened.id, cookie.id);
    assert!(during.needs_reseal(&opened, NOW + 1_000));

    let resealed = during.seal(&opened, NOW + 1_000);
    let reopened = after.open(&request(&pair(&resealed)), NOW + 2_000).unwrap();
    assert_eq!(reopened.id, cookie.id);
    assert!(!after.needs_reseal(&reopened, NOW + 2_000));

    // Once the old key is retired, a cookie it sealed is no session.
    assert!(after.open(&request(&pair(&header)), NOW + 2_000).is_none());
}

#[test]
fn refuses_short_keys_and_an_empty_key_list() {
    assert_eq!(
        CookieKey::from_bytes(&[0; 32]).unwrap_err(),
        CookieKeyError::TooShort { len: 32, min: 64 }
    );
    let err = SessionCookies::new(vec![], true, Duration::from_secs(1), Duration::from_secs(1));
    assert_eq!(err.err(), Some(CookieKeyError::NoKey));
}

// === T42: attributes and size ===

#[test]
fn sets_host_prefixed_secure_httponly_lax_cookie_without_domain_over_tls() {
    let jar = cookies(vec![key()], true);
    let (_, header) = sealed(&jar, NOW);
    let text = header.to_str().unwrap();
    let attrs: Vec<&str> = text.split("; ").collect();
    assert!(text.starts_with(&format!("{SECURE_NAME}=")));
    for wanted in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attrs.contains(&wanted), "missing {wanted} in {text}");
    }
    assert!(!text.to_ascii_lowercase().contains("domain="));
    assert!(attrs.contains(&"Max-Age=7200"));
    assert!(text.len() < 4096);
}

#[test]
fn uses_the_plain_name_without_secure_on_http() {
    let jar = cookies(vec![key()], false);
    let text = sealed(&jar, NOW).1.to_str().unwrap().to_owned();
    assert!(text.starts_with(&format!("{PLAIN_NAME}=")));
    assert!(!text.split("; ").any(|a| a == "Secure"));
    assert!(text.contains("HttpOnly") && text.contains("SameSite=Lax"));
}

#[test]
fn max_age_counts_down_to_the_absolute_limit() {
    let jar = cookies(vec![key()], true);
    let cookie = SessionCookie::fresh(NOW);
    let text = jar
        .seal(&cookie, NOW + HOUR_MS)
        .to_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("Max-Age=3600"), "{text}");
}

#[test]
fn clear_deletes_the_cookie() {
    let jar = cookies(vec![key()], true);
    let text = jar.clear().to_str().unwrap().to_owned();
    assert!(
        text.starts_with(&format!("{SECURE_NAME}=;")) && text.contains("Max-Age=0"),
        "{text}"
    );
}

// === CSRF token and fixation (T43–T44 building blocks) ===

#[test]
fn csrf_token_verifies_only_itself() {
    let a = SessionCookie::fresh(NOW);
    let b = SessionCookie::fresh(NOW);
    assert!(a.verify_csrf(&a.csrf_token()));
    assert!(!a.verify_csrf(&b.csrf_token()));
    assert!(!a.verify_csrf(""));
    assert!(!a.verify_csrf("not base64 at all!"));
    assert!(!a.verify_csrf(&format!("{}AA", a.csrf_token())));
}

#[test]
fn fresh_sessions_never_share_ids_or_tokens() {
    let a = SessionCookie::fresh(NOW);
    let b = SessionCookie::fresh(NOW);
    assert_ne!(a.id, b.id);
    assert_ne!(a.csrf, b.csrf);
}
