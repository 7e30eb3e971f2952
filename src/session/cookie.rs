//! The proxy's own browser-session cookie: which [`SessionId`] a browser holds, its
//! CSRF token, and when the session started and was last seen.
//!
//! Sealed with the `cookie` crate's `PrivateJar` (AES-256-GCM, the cookie name as
//! associated data, so a value moved under another name does not open). The browser's
//! `Max-Age` is not authenticated, so the absolute and idle limits are checked against
//! the timestamps inside the sealed value (`docs/security.md`, T40).
//!
//! Keys rotate: the first key seals, every key opens, and a cookie opened with an older
//! key asks to be re-sealed under the current one ([`SessionCookies::needs_reseal`]).
//! Dropping a key from the list retires it: its cookies then open as "no session".
//!
//! Everything that is not a valid, live cookie of ours opens as `None`, never an error
//! and never a panic: the caller simply starts a new session.

use crate::code::Code;
use std::time::Duration;

use ::cookie::{Cookie, CookieJar, Key, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use sha2::{Digest as _, Sha256};

use super::clock::duration_ms;
use super::SessionId;

/// The cookie's name over TLS: the `__Host-` prefix makes the browser refuse one set by
/// a sibling subdomain or without `Secure` (`docs/security.md`, T42 and T44).
pub const SECURE_NAME: &str = "__Host-bonenfant";

/// The cookie's name on plain HTTP (loopback tests, demo), where `__Host-` is refused.
pub const PLAIN_NAME: &str = "bonenfant";

/// Bytes of key material per key (`cookie::Key` needs 64).
pub const KEY_LEN: usize = 64;

/// How far in the future a timestamp may be (clock skew between instances).
const MAX_SKEW_MS: u64 = 60_000;

/// How stale `last_seen` may get before a response re-seals the cookie: the idle limit
/// is then exact to within this, without a `Set-Cookie` on every response.
const RESEAL_AFTER_MS: u64 = 60_000;

/// Most cookies bearing our name tried per request: each costs one AES-GCM attempt per
/// key, and a request stuffed with copies must not buy unbounded work.
const MAX_CANDIDATES: usize = 4;

/// Version byte of the sealed payload layout.
const PAYLOAD_VERSION: u8 = 1;

/// version (1) ‖ key id (4) ‖ session id (16) ‖ csrf (16) ‖ created (8) ‖ last seen (8).
const PAYLOAD_LEN: usize = 1 + 4 + 16 + 16 + 8 + 8;

/// One sealing key and the id sealed alongside the values it protects.
#[derive(Clone)]
pub struct CookieKey {
    key: Key,
    /// First four bytes of SHA-256 of the key material: tells which key sealed a value
    /// without revealing the key.
    id: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieKeyError {
    #[error("cookie key has {len} bytes, needs at least {min}")]
    TooShort { len: usize, min: usize },
    #[error("no cookie key configured")]
    NoKey,
}

impl CookieKeyError {
    pub fn code(&self) -> Code {
        match self {
            CookieKeyError::TooShort { .. } => Code::CookieKeyTooShort,
            CookieKeyError::NoKey => Code::CookieNoKey,
        }
    }
}

/// What the cookie carries, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCookie {
    pub id: SessionId,
    /// Synchronizer token for the chooser page's POST (T43).
    pub csrf: [u8; 16],
    /// Unix milliseconds when the session started (absolute limit).
    pub created_at_ms: u64,
    /// Unix milliseconds when the cookie was last sealed (idle limit).
    pub last_seen_ms: u64,
    /// Id of the key that sealed the value this was opened from; `None` when fresh.
    sealed_with: Option<u32>,
}

/// Seals and opens the session cookie with the configured keys and limits.
#[derive(Clone)]
pub struct SessionCookies {
    /// First = current (seals); all open.
    keys: Vec<CookieKey>,
    /// Served over TLS: `__Host-` name and `Secure`.
    secure: bool,
    max_age_ms: u64,
    idle_ms: u64,
}

/// 64 random bytes for a new cookie key (`bonenfant` prints them for the config).
pub fn generate_key() -> Vec<u8> {
    Key::generate().master().to_vec()
}

// === impl CookieKey ===

impl CookieKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CookieKeyError> {
        let key = Key::try_from(bytes).map_err(|_| CookieKeyError::TooShort {
            len: bytes.len(),
            min: KEY_LEN,
        })?;
        let digest = Sha256::digest(key.master());
        let id = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        Ok(Self { key, id })
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CookieKey({:08x})", self.id)
    }
}

// === impl SessionCookie ===

impl SessionCookie {
    /// A new session: random id and CSRF token. Also what to issue when the principal
    /// is first established or changes (fixation, T44).
    pub fn fresh(now_ms: u64) -> Self {
        Self {
            id: SessionId::random(),
            csrf: rand::random(),
            created_at_ms: now_ms,
            last_seen_ms: now_ms,
            sealed_with: None,
        }
    }

    /// The CSRF token as it goes into a form (URL-safe base64).
    pub fn csrf_token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.csrf)
    }

    /// Whether `presented` is this session's CSRF token (constant time in its content).
    pub fn verify_csrf(&self, presented: &str) -> bool {
        let mut decoded = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(presented, &mut decoded) {
            Ok(16) => {
                decoded
                    .iter()
                    .zip(self.csrf.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
            _ => false,
        }
    }

    fn to_payload(&self, key_id: u32, now_ms: u64) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        let parts: [&[u8]; 6] = [
            &[PAYLOAD_VERSION],
            &key_id.to_be_bytes(),
            &self.id.0,
            &self.csrf,
            &self.created_at_ms.to_be_bytes(),
            &now_ms.to_be_bytes(),
        ];
        let mut at = 0;
        for part in parts {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        out
    }

    /// Parses a payload; `None` unless it has exactly our layout and version.
    fn from_payload(bytes: &[u8]) -> Option<(Self, u32)> {
        let (&version, rest) = bytes.split_first()?;
        if version != PAYLOAD_VERSION || rest.len() != PAYLOAD_LEN - 1 {
            return None;
        }
        let (key_id, rest) = rest.split_first_chunk::<4>()?;
        let (id, rest) = rest.split_first_chunk::<16>()?;
        let (csrf, rest) = rest.split_first_chunk::<16>()?;
        let (created, rest) = rest.split_first_chunk::<8>()?;
        let (last_seen, _) = rest.split_first_chunk::<8>()?;
        let key_id = u32::from_be_bytes(*key_id);
        let cookie = Self {
            id: SessionId(*id),
            csrf: *csrf,
            created_at_ms: u64::from_be_bytes(*created),
            last_seen_ms: u64::from_be_bytes(*last_seen),
            sealed_with: Some(key_id),
        };
        Some((cookie, key_id))
    }
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookie")
            .field("id", &self.id)
            .field("csrf", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .finish()
    }
}

// === impl SessionCookies ===

impl SessionCookies {
    /// `keys`: current first, then keys still accepted for opening. `max_age`: absolute
    /// session lifetime; `idle`: longest gap between two requests.
    pub fn new(
        keys: Vec<CookieKey>,
        secure: bool,
        max_age: Duration,
        idle: Duration,
    ) -> Result<Self, CookieKeyError> {
        if keys.is_empty() {
            return Err(CookieKeyError::NoKey);
        }
        Ok(Self {
            keys,
            secure,
            max_age_ms: duration_ms(max_age),
            idle_ms: duration_ms(idle),
        })
    }

    /// The cookie name this deployment uses.
    pub fn name(&self) -> &'static str {
        if self.secure {
            SECURE_NAME
        } else {
            PLAIN_NAME
        }
    }

    /// The live session cookie in a request's `Cookie` headers, if any. Forged,
    /// tampered, truncated, renamed, expired or retired-key cookies are `None`.
    pub fn open(&self, headers: &HeaderMap, now_ms: u64) -> Option<SessionCookie> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == self.name())
            .take(MAX_CANDIDATES)
            .find_map(|cookie| self.open_value(cookie.value(), now_ms))
    }

    /// A `Set-Cookie` value carrying `cookie`, sealed under the current key, with
    /// `last_seen` set to `now_ms`.
    pub fn seal(&self, cookie: &SessionCookie, now_ms: u64) -> HeaderValue {
        let Some(current) = self.keys.first() else {
            // `new` refuses an empty key list.
            return self.clear();
        };
        let payload = URL_SAFE_NO_PAD.encode(cookie.to_payload(current.id, now_ms));
        let mut jar = CookieJar::new();
        jar.private_mut(&current.key)
            .add(Cookie::new(self.name(), payload));
        let sealed = jar
            .get(self.name())
            .map_or_else(String::new, |c| c.value().to_owned());
        let remaining_ms = cookie
            .created_at_ms
            .saturating_add(self.max_age_ms)
            .saturating_sub(now_ms);
        let max_age = ::cookie::time::Duration::seconds(
            i64::try_from(remaining_ms / 1000).unwrap_or(i64::MAX),
        );
        self.header(Cookie::build((self.name(), sealed)).max_age(max_age))
    }

    /// A `Set-Cookie` value that deletes the cookie (logout).
    pub fn clear(&self) -> HeaderValue {
        self.header(Cookie::build((self.name(), "")).max_age(::cookie::time::Duration::ZERO))
    }

    /// Whether a response should re-seal `cookie`: opened with a key that is no longer
    /// current, or `last_seen` older than a minute.
    pub fn needs_reseal(&self, cookie: &SessionCookie, now_ms: u64) -> bool {
        let current = self.keys.first().map(|k| k.id);
        cookie.sealed_with != current
            || now_ms.saturating_sub(cookie.last_seen_ms) >= RESEAL_AFTER_MS
    }

    fn open_value(&self, value: &str, now_ms: u64) -> Option<SessionCookie> {
        self.keys.iter().find_map(|key| {
            let jar = CookieJar::new();
            let opened = jar
                .private(&key.key)
                .decrypt(Cookie::new(self.name(), value.to_owned()))?;
            let bytes = URL_SAFE_NO_PAD.decode(opened.value()).ok()?;
            let (cookie, key_id) = SessionCookie::from_payload(&bytes)?;
            (key_id == key.id && self.is_live(&cookie, now_ms)).then_some(cookie)
        })
    }

    fn is_live(&self, cookie: &SessionCookie, now_ms: u64) -> bool {
        let skewed_now = now_ms.saturating_add(MAX_SKEW_MS);
        cookie.created_at_ms <= cookie.last_seen_ms
            && cookie.last_seen_ms <= skewed_now
            && now_ms < cookie.created_at_ms.saturating_add(self.max_age_ms)
            && now_ms < cookie.last_seen_ms.saturating_add(self.idle_ms)
    }

    fn header(&self, builder: ::cookie::CookieBuilder<'_>) -> HeaderValue {
        let cookie = builder
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .build();
        // Name, base64 value and fixed attributes: always visible ASCII.
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}
