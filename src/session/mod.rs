//! The session map: what bonenfant remembers between a browser's `/login` and Pronote's
//! validation, and across logins of one browser.
//!
//! A trait with two stores: [`memory::MemoryStore`] (the embedded default) and
//! `redis::RedisStore` (several instances sharing state). TTLs and bounds are the
//! store's job, so callers never see an expired entry.

pub mod memory;

use std::future::Future;

use crate::cas::{Assertion, ServiceTicket};
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
    pub assertion: Assertion,
    pub session: Option<SessionId>,
    /// Unix milliseconds.
    pub stored_at_ms: u64,
}

/// Per browser session state. Kept small: ≤ 1 KiB per live session (DESIGN §8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    /// The principal last asserted for this session (raw; compared byte-exact).
    pub principal: Option<String>,
    /// The pupil the parent pinned on the chooser page.
    pub pin: Option<PupilKey>,
    /// The pupil this session last landed on, per establishment (sticky intent).
    pub landed: Vec<PupilKey>,
    /// Every pupil the ENT asserted for this principal in this session (chooser page),
    /// with the first name when the assertion carried one.
    pub known: Vec<(PupilKey, Option<String>)>,
    /// Pupil-designating attributes of the last assertion per service, for the guarded
    /// rewrite: (service, unix ms, allow-listed (name, value) pairs).
    pub observed: Vec<ObservedAssertion>,
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

/// Store errors. The memory store never fails; Redis can.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    #[error("session store entry corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "store.unavailable",
            StoreError::Corrupt(_) => "store.corrupt",
        }
    }
}

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub tickets: u64,
    pub sessions: u64,
    pub stash: u64,
    pub evictions: u64,
}

/// The session map. Every method is atomic with respect to the others.
pub trait SessionStore: Send + Sync + 'static {
    /// Records the front channel's ticket → binding. A ticket binds at most once:
    /// returns `false` (and changes nothing) when it is already bound.
    fn bind_ticket(
        &self,
        ticket: &ServiceTicket,
        binding: TicketBinding,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Atomically removes and returns the binding (a replay finds nothing).
    fn take_ticket(
        &self,
        ticket: &ServiceTicket,
    ) -> impl Future<Output = Result<Option<TicketBinding>, StoreError>> + Send;

    /// One-shot stash for a ticket validated early (retry strategy).
    fn stash(
        &self,
        ticket: &ServiceTicket,
        entry: StashedValidation,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Atomically removes and returns the stash entry.
    fn take_stash(
        &self,
        ticket: &ServiceTicket,
    ) -> impl Future<Output = Result<Option<StashedValidation>, StoreError>> + Send;

    fn session(
        &self,
        id: &SessionId,
    ) -> impl Future<Output = Result<Option<SessionState>, StoreError>> + Send;

    fn put_session(
        &self,
        id: &SessionId,
        state: SessionState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn drop_session(&self, id: &SessionId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Remembers which session a validated ticket belonged to, so a single-logout
    /// naming that ticket can drop the session's state.
    fn remember_validated(
        &self,
        ticket: &ServiceTicket,
        session: SessionId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Single logout: forgets everything about `ticket`; returns the session it was
    /// validated for, if known.
    fn forget_ticket(
        &self,
        ticket: &ServiceTicket,
    ) -> impl Future<Output = Result<Option<SessionId>, StoreError>> + Send;

    /// Back-channel-only correlation and flip detection: the last pupil asserted for a
    /// (principal, expected establishment) pair, replaced by `pupil`. Keys are opaque
    /// strings built by the caller (pseudonyms, never raw principals).
    fn swap_last_pupil(
        &self,
        key: &str,
        pupil: PupilKey,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<(PupilKey, u64)>, StoreError>> + Send;

    fn stats(&self) -> StoreStats;
}
