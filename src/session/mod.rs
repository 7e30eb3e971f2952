//! The session map: what bonenfant remembers between a browser's `/login` and Pronote's
//! validation, and across logins of one browser.
//!
//! A trait with two stores: [`memory::MemoryStore`] (the embedded default) and
//! [`redis::RedisStore`] (several instances sharing state, `docs/domain.md`,
//! "Deployments"), and [`AnyStore`] so the proxy holds one concrete type whatever
//! `--store` says. TTLs and bounds are the store's job, so callers never see an expired
//! entry.
//!
//! # Layout
//!
//! * [`clock`]: where stores read the time, so tests can advance it.
//! * `codec`: the compact wire form of every stored value (shared by both stores), and
//!   the digests that stand for tickets in keys (no ticket is ever kept in clear).
//! * `seal`: the store key (`--store-key-file`): keyed digests for keys, and the AEAD
//!   that seals every Redis value, so a writer of the Redis can forge nothing.
//! * `expiring`: a sharded, bounded map with TTLs and one-shot take (memory store).
//! * [`memory`], [`redis`]: the two stores; [`AnyStore`] dispatches between them.
//! * [`cookie`]: the proxy's own encrypted browser-session cookie.
//!
//! # Invariants every store keeps
//!
//! * A ticket binds at most once: after a take, the ticket leaves a tombstone until its
//!   binding would have expired, so a replayed redirect cannot bind it again and a
//!   replayed validation finds nothing.
//! * Stash entries are one-shot the same way.
//! * Every entry has a TTL; the memory store also bounds entries and bytes per map and
//!   counts what it had to evict.
//! * [`SessionStore::update_session`] is a read-modify-write no other write to the same
//!   session can slip into: two requests (or two instances) changing one session both
//!   see their change kept.
//! * A value the store did not write for that very entry is never returned: Redis
//!   values are sealed, and one that does not open is absent (counted in
//!   [`StoreStats::unauthentic`], logged as `store.unauthentic`).

mod any;
pub mod clock;
mod codec;
pub mod cookie;
mod expiring;
pub mod memory;
pub mod redis;
mod seal;

use crate::code::Code;
use std::future::Future;
use std::time::Duration;

pub use any::AnyStore;
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::TicketKey;
pub use seal::{StoreKeyError, StoreKeys, MIN_KEY_BYTES};

use crate::cas::{Outcome, ServiceTicket};
use crate::events::PinOutcome;
use crate::pupil::PupilKey;

/// The proxy's own browser-session id (random, 128 bits). Sealed in the `__Host-`
/// cookie; never logged in clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// What the front channel saw for a ticket: the `/login` redirect that carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketBinding {
    /// The browser session that received the ticket (`None` when the browser had no
    /// bonenfant cookie and none could be set).
    pub session: Option<SessionId>,
    /// Service URL of the redirect (decoded), to check the validation's `service`.
    pub service: String,
    /// Unix milliseconds when the redirect passed.
    pub issued_at_ms: u64,
}

/// A validation answered early by the retry strategy, kept for Pronote's own
/// validation of that exact ticket and service, once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StashedValidation {
    pub service: String,
    /// What Pronote is to be told: the (possibly pinned) assertion, or the ENT's
    /// failure (the ticket is spent either way; the ENT is not asked twice).
    pub outcome: Outcome,
    pub session: Option<SessionId>,
    /// Unix milliseconds.
    pub stored_at_ms: u64,
    /// What the pinning strategy did to get `outcome`, for the `validate` event.
    pub pin: PinOutcome,
    /// New logins the retry strategy asked for before this ticket.
    pub retries: u32,
    /// Whether the ticket came from a primary authentication (the browser posted to
    /// `/login` and the ENT said the ticket came from a new login,
    /// `pin::front::primary_login`), not from single sign-on: a validation asking
    /// `renew=true` may be answered with success only then, as the ENT would.
    pub primary: bool,
    /// The ENT's own XML answer for this ticket, kept only when `outcome` is exactly
    /// what it says: `--answer verbatim` serves these bytes to a CAS 2/3 validation.
    pub ent_answer: Option<String>,
}

/// A pupil the ENT asserted in this session, with only what the chooser shows of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownChild {
    pub key: PupilKey,
    pub first_name: Option<String>,
    /// The class (`4B`), when the assertion named one for this pupil.
    pub class: Option<String>,
}

impl KnownChild {
    /// A child known by key alone.
    pub fn new(key: PupilKey) -> Self {
        Self {
            key,
            first_name: None,
            class: None,
        }
    }
}

/// Where a browser's login stands in the retry loop: kept in the session so that a
/// re-login served by another instance (shared Redis) continues the same count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryProgress {
    /// The service being logged into.
    pub service: String,
    /// Re-logins already sent.
    pub retries: u32,
    /// Unix milliseconds of the first ticket of this login.
    pub started_ms: u64,
}

/// Per browser session state. Kept small: ≤ 1 KiB per live session
/// (`docs/performance.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    /// The principal last asserted for this session (raw; compared byte-exact).
    pub principal: Option<String>,
    /// The pupil the parent pinned on the chooser page.
    pub pin: Option<PupilKey>,
    /// The pupil this session last landed on, per establishment (sticky intent).
    pub landed: Vec<PupilKey>,
    /// Every pupil the ENT asserted for this principal in this session (chooser page),
    /// with the first name and class when the assertion carried them.
    pub known: Vec<KnownChild>,
    /// Pupil-designating attributes of the last assertion per service, for the guarded
    /// rewrite: (service, unix ms, allow-listed (name, value) pairs).
    pub observed: Vec<ObservedAssertion>,
    /// The retry loop in progress, if any.
    pub retry: Option<RetryProgress>,
    /// A service whose `/login` asked `renew=true` and whose ticket has not come yet:
    /// the credentials POST that follows carries no `renew` of its own.
    pub renew_for: Option<String>,
    /// A service the parent chose, on the give-up page, to reach once without pinning.
    pub pass_once: Option<String>,
    /// Unix milliseconds of the last update.
    pub updated_at_ms: u64,
}

/// What the rewrite strategy may take from an earlier assertion (invariant I1b).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedAssertion {
    pub principal: String,
    pub service: String,
    pub at_ms: u64,
    pub attributes: Vec<(String, String)>,
}

/// What an update decides for a session, given its current state.
// Built once and consumed at once by the store: boxing the state would only add an
// allocation per update.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// Leave the session as it is (absent stays absent). Like a read, this extends a
    /// live session's idle TTL.
    Keep,
    /// Store this state, creating the session if absent, and restart its TTL.
    Put(SessionState),
    /// Remove the session (nothing happens if it is absent).
    Drop,
}

/// What [`SessionStore::update_session`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUpdate<T> {
    /// The session's state once the update is done: what was written, or what was kept;
    /// `None` when it was dropped, or was absent and left so.
    pub state: Option<SessionState>,
    /// What the closure returned alongside the change that was applied (from its last
    /// call, when it was called more than once).
    pub output: T,
}

/// Store errors. The memory store fails only on an entry larger than its bounds; Redis
/// can fail at any time. Messages never carry a ticket, a key or a URL password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    #[error("session store entry corrupt: {0}")]
    Corrupt(String),
    /// One value is larger than the store's byte bound for its map (invariant I5).
    #[error("session store entry of {bytes} bytes exceeds the bound of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    /// `--store` is neither `memory` nor a `redis://`/`rediss://` URL, or asks for
    /// TLS without certificate checks.
    #[error("session store URL must be \"memory\" or redis://…: {0}")]
    InvalidUrl(String),
    /// An update of one session lost the race to concurrent writers of that session on
    /// every attempt; nothing was written.
    #[error("session store entry kept changing under concurrent updates ({attempts} attempts)")]
    Contention { attempts: u32 },
    /// The store cannot be set up as configured (a Redis store without store keys, an
    /// unreadable `--store-ca`): the message names the setting.
    #[error("session store set-up: {0}")]
    Setup(String),
}

impl StoreError {
    pub fn code(&self) -> Code {
        match self {
            StoreError::Unavailable(_) => Code::StoreUnavailable,
            StoreError::Corrupt(_) => Code::StoreCorrupt,
            StoreError::TooLarge { .. } => Code::StoreTooLarge,
            StoreError::InvalidUrl(_) => Code::StoreInvalidUrl,
            StoreError::Contention { .. } => Code::StoreContention,
            StoreError::Setup(_) => Code::StoreSetup,
        }
    }
}

/// Counters for `/metrics`. The gauges (`tickets` … `bytes`) are what this instance
/// holds; a Redis store holds nothing locally and reports them as zero (Redis's own
/// `INFO keyspace` has the figures).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Live ticket bindings, tombstones of consumed tickets included.
    pub tickets: u64,
    pub sessions: u64,
    pub stash: u64,
    /// Entries dropped before their TTL because a map was full (entries or bytes).
    pub evictions: u64,
    /// Validated ticket → session entries kept for single logout.
    pub validated: u64,
    /// Last-pupil entries (back-channel correlation, flip detection).
    pub last_pupils: u64,
    /// Bytes held by all maps, entry overhead included.
    pub bytes: u64,
    /// Values read that did not open (forged, altered, truncated, moved from another
    /// entry, in the old unsealed format, or sealed under a key not accepted): each was
    /// treated as absent and logged as `store.unauthentic`.
    pub unauthentic: u64,
}

/// Bounds of one map of the memory store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLimits {
    /// Time to live of an entry, from its last write (sessions: last read or write).
    pub ttl: Duration,
    /// Most entries held at once; beyond it the entry closest to expiry is evicted.
    pub max_entries: usize,
    /// Most bytes held at once, entry overhead included.
    pub max_bytes: usize,
}

/// TTLs and bounds of every map, and the store keys. Redis uses the TTLs (and the key
/// prefix); the memory store uses everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Front-channel ticket bindings. Clamped to [`StoreConfig::MAX_TICKET_TTL`]: a CAS
    /// ticket is validated within seconds of its redirect or not at all.
    pub tickets: MapLimits,
    /// Early validations kept for Pronote's own (retry strategy): short.
    pub stash: MapLimits,
    /// Browser sessions (idle TTL: a read or a write extends it).
    pub sessions: MapLimits,
    /// Validated ticket → session, for single logout: as long as a session lives.
    pub validated: MapLimits,
    /// Last pupil per (principal pseudonym, establishment): flip detection horizon.
    pub last_pupils: MapLimits,
    /// Largest encoded value either store accepts (`TooLarge` beyond): bounds the
    /// state one session can hold (invariant I5), in Redis too.
    pub max_value_bytes: usize,
    /// Prefix of every Redis key, so bonenfant can share a Redis with others.
    pub redis_prefix: String,
    /// Redis connect and per-command timeout: past it a call fails as `Unavailable`
    /// instead of holding a request.
    pub redis_timeout: Duration,
    /// The store keys (`--store-key-file`), current first: they key the digests that
    /// stand for tickets and sessions and seal every Redis value. A Redis store refuses
    /// to start without them (instances must share them); the memory store takes a
    /// random key when there are none.
    pub keys: Option<StoreKeys>,
    /// CA bundle (PEM) that verifies a `rediss://` server instead of the webpki roots
    /// (`--store-ca`).
    pub redis_ca: Option<std::path::PathBuf>,
    /// How far the clocks of instances sharing a Redis may disagree. A sealed value
    /// carries when it was sealed; a ticket binding, stash entry, validated ticket or
    /// last pupil read later than its TTL plus this is a recorded value written back,
    /// and is refused like a forged one.
    pub redis_clock_skew: Duration,
}

impl StoreConfig {
    /// Upper bound on the ticket TTL (`docs/security.md`, T15: ticket entries ≤ 30 s).
    pub const MAX_TICKET_TTL: Duration = Duration::from_secs(30);

    /// The same config with the ticket TTL clamped to its bound.
    pub fn clamped(mut self) -> Self {
        self.tickets.ttl = self.tickets.ttl.min(Self::MAX_TICKET_TTL);
        self
    }
}

impl Default for StoreConfig {
    /// Sized for one academy many times over (`docs/performance.md`): a million
    /// sessions in well under 1 GiB; ticket and stash maps sized for bursts of 500
    /// logins/s over a TTL.
    fn default() -> Self {
        const MIB: usize = 1024 * 1024;
        Self {
            tickets: MapLimits {
                ttl: Duration::from_secs(30),
                max_entries: 100_000,
                max_bytes: 64 * MIB,
            },
            stash: MapLimits {
                ttl: Duration::from_secs(30),
                max_entries: 20_000,
                max_bytes: 64 * MIB,
            },
            sessions: MapLimits {
                ttl: Duration::from_secs(2 * 3600),
                max_entries: 1_000_000,
                max_bytes: 768 * MIB,
            },
            validated: MapLimits {
                ttl: Duration::from_secs(2 * 3600),
                max_entries: 1_000_000,
                max_bytes: 128 * MIB,
            },
            last_pupils: MapLimits {
                ttl: Duration::from_secs(7 * 24 * 3600),
                max_entries: 1_000_000,
                max_bytes: 128 * MIB,
            },
            // A realistic session encodes to about 400 bytes; this leaves room for a
            // family of many children and several observed assertions.
            max_value_bytes: 16 * 1024,
            redis_prefix: "bonenfant:".to_owned(),
            redis_timeout: Duration::from_secs(2),
            keys: None,
            redis_ca: None,
            // NTP keeps servers within milliseconds; a clock off by more breaks
            // correlation between instances, visibly (`store.unauthentic`).
            redis_clock_skew: Duration::from_secs(10),
        }
    }
}

/// The session map. Every method is atomic with respect to the others.
pub trait SessionStore: Send + Sync + 'static {
    /// How this store names `ticket`: computed once and passed to every call about it
    /// (each computation is a keyed digest per accepted store key).
    fn ticket_key(&self, ticket: &ServiceTicket) -> TicketKey;

    /// Records the front channel's ticket → binding. A ticket binds at most once:
    /// returns `false` (and changes nothing) when it is already bound, or was taken or
    /// forgotten less than the ticket TTL ago.
    fn bind_ticket(
        &self,
        ticket: &TicketKey,
        binding: TicketBinding,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Atomically removes and returns the binding (a replay finds nothing; an expired
    /// binding is never returned). Exactly one of concurrent takers gets it.
    fn take_ticket(
        &self,
        ticket: &TicketKey,
    ) -> impl Future<Output = Result<Option<TicketBinding>, StoreError>> + Send;

    /// [`Self::take_ticket`] for a caller that wants only the tombstone it leaves (a
    /// claimed ticket): the binding is removed the same way, and not decoded.
    fn spend_ticket(
        &self,
        ticket: &TicketKey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One-shot stash for a ticket validated early (retry strategy).
    fn stash(
        &self,
        ticket: &TicketKey,
        entry: StashedValidation,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Atomically removes and returns the stash entry (one-shot, like `take_ticket`).
    fn take_stash(
        &self,
        ticket: &TicketKey,
    ) -> impl Future<Output = Result<Option<StashedValidation>, StoreError>> + Send;

    /// The session's state; a read extends its idle TTL.
    fn session(
        &self,
        id: &SessionId,
    ) -> impl Future<Output = Result<Option<SessionState>, StoreError>> + Send;

    /// Replaces the session's state and restarts its TTL.
    fn put_session(
        &self,
        id: &SessionId,
        state: SessionState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn drop_session(&self, id: &SessionId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomic read-modify-write of a session: `f` gets the current state (`None` when
    /// absent or expired) and returns what to do with it, plus any value the caller
    /// wants back (the decision it took, the state it replaced…). No other write to
    /// this session lands between the state `f` saw and the change it returned, across
    /// instances too; so two requests each adding a child to one session keep both.
    ///
    /// `f` must be pure, a function of the state it is given only: the Redis store
    /// calls it again with the fresh state when another writer got there first (up to a
    /// bounded number of times, then `Contention`), and the memory store calls it once
    /// under a shard lock, so it must not call the store either.
    ///
    /// Create if absent, change, leave alone, or take:
    ///
    /// ```
    /// # use bonenfant::session::{memory::MemoryStore, *};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(&StoreConfig::default());
    /// let id = SessionId::random();
    /// // Create if absent, or change: the state written comes back.
    /// let renew = |current: Option<SessionState>| {
    ///     let mut state = current.unwrap_or_default();
    ///     state.renew_for = Some("https://pronote.example/".to_owned());
    ///     (SessionChange::Put(state), ())
    /// };
    /// let written = store.update_session(&id, renew).await?.state;
    /// assert!(written.is_some_and(|s| s.renew_for.is_some()));
    /// // Change only if present, and say which it was.
    /// let pinned = store
    ///     .update_session(&id, |current| match current {
    ///         None => (SessionChange::Keep, false),
    ///         Some(mut state) => {
    ///             state.renew_for = None;
    ///             (SessionChange::Put(state), true)
    ///         }
    ///     })
    ///     .await?
    ///     .output;
    /// assert!(pinned);
    /// // Take: remove and hand back the state it held.
    /// let taken = store
    ///     .update_session(&id, |current| (SessionChange::Drop, current))
    ///     .await?
    ///     .output;
    /// assert_eq!(taken, Some(SessionState::default()));
    /// # Ok::<(), StoreError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// A stored value that does not open (Redis: not sealed by the store keys for this
    /// session) is absent to `f`, and a write replaces it. One that opens but does not
    /// decode is `Corrupt`, `f` is not called and nothing is written (a caller may
    /// `drop_session` and start afresh); a `Put` over the value bound is `TooLarge`, and
    /// nothing is written either.
    fn update_session<T, F>(
        &self,
        id: &SessionId,
        f: F,
    ) -> impl Future<Output = Result<SessionUpdate<T>, StoreError>> + Send
    where
        F: FnMut(Option<SessionState>) -> (SessionChange, T) + Send,
        T: Send;

    /// Remembers which session a validated ticket belonged to, so a single-logout
    /// naming that ticket can drop the session's state.
    fn remember_validated(
        &self,
        ticket: &TicketKey,
        session: SessionId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Single logout: forgets everything about `ticket` (a binding or stash entry not
    /// yet taken can no longer be); returns the session it was validated for, if known.
    /// The caller drops that session's state.
    fn forget_ticket(
        &self,
        ticket: &TicketKey,
    ) -> impl Future<Output = Result<Option<SessionId>, StoreError>> + Send;

    /// Back-channel-only correlation and flip detection: the last pupil asserted for a
    /// (principal, expected establishment) pair, replaced by `pupil`. Keys are opaque
    /// strings built by the caller (pseudonyms, never raw principals). `now_ms` is
    /// stored with the pupil and returned by the next swap.
    fn swap_last_pupil(
        &self,
        key: &str,
        pupil: PupilKey,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<(PupilKey, u64)>, StoreError>> + Send;

    fn stats(&self) -> StoreStats;
}
