//! The in-memory session store (embedded default): five bounded maps with TTLs, keyed
//! by digests, holding encoded values (see `codec` for why).
//!
//! Its values are not sealed, unlike Redis's: they live in this process's memory only,
//! and whoever can read or write that memory also holds the store key and every other
//! secret of the process (the host is out of scope, `docs/security.md`). Sealing would
//! add 41 bytes and a cipher pass per entry against the 1 KiB per session budget
//! (`docs/performance.md`) for no protection. The digests are keyed all the same (a
//! random key for this process when none is configured), so both stores name entries
//! the one way.

use std::sync::Arc;

use super::codec::{self, Digest, Subject};
use super::expiring::{Change, ExpiringMap, Insert};
use super::{
    Clock, SessionChange, SessionId, SessionState, SessionStore, SessionUpdate, StashedValidation,
    StoreConfig, StoreError, StoreKeys, StoreStats, SystemClock, TicketBinding, TicketKey,
};
use crate::cas::ServiceTicket;
use crate::pupil::PupilKey;

/// The embedded store. Cheap to share behind an `Arc`; every method is a few hash-map
/// operations under one shard lock, so the futures complete on first poll.
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    /// Keys the digests only (see the module's comment).
    keys: StoreKeys,
    /// Front-channel ticket → binding (one-shot).
    tickets: ExpiringMap<Digest>,
    /// Early validations for Pronote's own (one-shot).
    stash: ExpiringMap<Digest>,
    /// Browser session → state (sliding TTL).
    sessions: ExpiringMap<Digest>,
    /// Validated ticket → session, for single logout.
    validated: ExpiringMap<Digest>,
    /// (principal pseudonym, establishment) → last pupil.
    last_pupils: ExpiringMap<Digest>,
}

// === impl MemoryStore ===

impl MemoryStore {
    /// A store reading the system clock.
    pub fn new(config: &StoreConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock::new()))
    }

    /// A store reading `clock` (tests advance a [`super::ManualClock`]).
    pub fn with_clock(config: &StoreConfig, clock: Arc<dyn Clock>) -> Self {
        let config = config.clone().clamped();
        Self {
            clock,
            keys: config.keys.clone().unwrap_or_else(StoreKeys::random),
            tickets: ExpiringMap::new(&config.tickets, config.max_value_bytes),
            stash: ExpiringMap::new(&config.stash, config.max_value_bytes),
            sessions: ExpiringMap::new(&config.sessions, config.max_value_bytes),
            validated: ExpiringMap::new(&config.validated, config.max_value_bytes),
            last_pupils: ExpiringMap::new(&config.last_pupils, config.max_value_bytes),
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn ticket(&self, ticket: &TicketKey) -> Digest {
        Subject::Ticket(ticket).digest(&self.keys)
    }

    fn session_key(&self, id: &SessionId) -> Digest {
        Subject::Session(id).digest(&self.keys)
    }

    fn maps(&self) -> [&ExpiringMap<Digest>; 5] {
        [
            &self.tickets,
            &self.stash,
            &self.sessions,
            &self.validated,
            &self.last_pupils,
        ]
    }
}

impl SessionStore for MemoryStore {
    fn ticket_key(&self, ticket: &ServiceTicket) -> TicketKey {
        TicketKey::new(&self.keys, ticket)
    }

    async fn bind_ticket(
        &self,
        ticket: &TicketKey,
        binding: TicketBinding,
    ) -> Result<bool, StoreError> {
        let inserted = self.tickets.insert_new(
            self.ticket(ticket),
            codec::encode_binding(&binding),
            self.now(),
        )?;
        Ok(inserted == Insert::Inserted)
    }

    async fn take_ticket(&self, ticket: &TicketKey) -> Result<Option<TicketBinding>, StoreError> {
        self.tickets
            .take(&self.ticket(ticket), self.now())
            .map(|bytes| codec::decode_binding(&bytes))
            .transpose()
    }

    async fn spend_ticket(&self, ticket: &TicketKey) -> Result<(), StoreError> {
        self.tickets.take(&self.ticket(ticket), self.now());
        Ok(())
    }

    async fn stash(
        &self,
        ticket: &TicketKey,
        entry: StashedValidation,
    ) -> Result<bool, StoreError> {
        let inserted =
            self.stash
                .insert_new(self.ticket(ticket), codec::encode_stash(&entry), self.now())?;
        Ok(inserted == Insert::Inserted)
    }

    async fn take_stash(
        &self,
        ticket: &TicketKey,
    ) -> Result<Option<StashedValidation>, StoreError> {
        self.stash
            .take(&self.ticket(ticket), self.now())
            .map(|bytes| codec::decode_stash(&bytes))
            .transpose()
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        self.sessions
            .get_refresh(&self.session_key(id), self.now())
            .map(|bytes| codec::decode_state(&bytes))
            .transpose()
    }

    async fn put_session(&self, id: &SessionId, state: SessionState) -> Result<(), StoreError> {
        self.sessions.put(
            self.session_key(id),
            codec::encode_state(&state),
            self.now(),
        )
    }

    async fn drop_session(&self, id: &SessionId) -> Result<(), StoreError> {
        self.sessions.remove(&self.session_key(id), self.now());
        Ok(())
    }

    /// `f` runs once, under the session's shard lock: nothing else can write the
    /// session between its read and its write.
    async fn update_session<T, F>(
        &self,
        id: &SessionId,
        mut f: F,
    ) -> Result<SessionUpdate<T>, StoreError>
    where
        F: FnMut(Option<SessionState>) -> (SessionChange, T) + Send,
        T: Send,
    {
        self.sessions
            .update(self.session_key(id), self.now(), |current| {
                let decoded = current.map(codec::decode_state).transpose()?;
                let (change, output) = f(decoded);
                Ok(match change {
                    SessionChange::Keep => {
                        // Decoded again rather than cloned up front: `Put` is the
                        // common case, and it needs no copy.
                        let state = current.map(codec::decode_state).transpose()?;
                        (Change::Keep, SessionUpdate { state, output })
                    }
                    SessionChange::Put(state) => (
                        Change::Put(codec::encode_state(&state)),
                        SessionUpdate {
                            state: Some(state),
                            output,
                        },
                    ),
                    SessionChange::Drop => (
                        Change::Remove,
                        SessionUpdate {
                            state: None,
                            output,
                        },
                    ),
                })
            })
    }

    async fn remember_validated(
        &self,
        ticket: &TicketKey,
        session: SessionId,
    ) -> Result<(), StoreError> {
        self.validated.put(
            self.ticket(ticket),
            codec::encode_session_id(&session),
            self.now(),
        )
    }

    async fn forget_ticket(&self, ticket: &TicketKey) -> Result<Option<SessionId>, StoreError> {
        let key = self.ticket(ticket);
        let now = self.now();
        self.tickets.tombstone(&key, now);
        self.stash.tombstone(&key, now);
        self.validated
            .remove(&key, now)
            .map(|bytes| codec::decode_session_id(&bytes))
            .transpose()
    }

    async fn swap_last_pupil(
        &self,
        key: &str,
        pupil: PupilKey,
        now_ms: u64,
    ) -> Result<Option<(PupilKey, u64)>, StoreError> {
        self.last_pupils
            .swap(
                Subject::CallerKey(key).digest(&self.keys),
                codec::encode_last_pupil(&pupil, now_ms),
                self.now(),
            )?
            .map(|bytes| codec::decode_last_pupil(&bytes))
            .transpose()
    }

    fn stats(&self) -> StoreStats {
        let count = |map: &ExpiringMap<Digest>| map.len() as u64;
        StoreStats {
            tickets: count(&self.tickets),
            sessions: count(&self.sessions),
            stash: count(&self.stash),
            evictions: self.maps().iter().map(|m| m.evictions()).sum(),
            validated: count(&self.validated),
            last_pupils: count(&self.last_pupils),
            bytes: self.maps().iter().map(|m| m.bytes() as u64).sum(),
            // Nothing is sealed here (see the module's comment): nothing fails to open.
            unauthentic: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ManualClock;

    fn store(max_value_bytes: usize) -> MemoryStore {
        let config = StoreConfig {
            max_value_bytes,
            ..StoreConfig::default()
        };
        MemoryStore::with_clock(&config, Arc::new(ManualClock::new(0)))
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn refuses_a_session_state_over_the_value_bound_and_keeps_nothing() {
        let store = store(256);
        let id = SessionId([1; 16]);
        let state = SessionState {
            principal: Some("x".repeat(300)),
            ..SessionState::default()
        };
        let error = run(store.put_session(&id, state)).unwrap_err();
        assert_eq!(error.code().as_str(), "store.too_large");
        assert_eq!(run(store.session(&id)).unwrap(), None);
        assert_eq!(store.stats().bytes, 0);
    }

    #[test]
    fn an_update_over_the_value_bound_is_refused_and_keeps_the_old_state() {
        let store = store(256);
        let id = SessionId([2; 16]);
        let small = SessionState {
            principal: Some("p".to_owned()),
            ..SessionState::default()
        };
        run(store.put_session(&id, small.clone())).unwrap();
        let error = run(store.update_session(&id, |current| {
            let mut state = current.unwrap_or_default();
            state.principal = Some("x".repeat(300));
            (SessionChange::Put(state), ())
        }))
        .unwrap_err();
        assert_eq!(error.code().as_str(), "store.too_large");
        assert_eq!(run(store.session(&id)).unwrap(), Some(small));
    }

    #[test]
    fn ticket_ttl_is_clamped_to_thirty_seconds() {
        let clock = ManualClock::new(0);
        let mut config = StoreConfig::default();
        config.tickets.ttl = std::time::Duration::from_secs(3600);
        let store = MemoryStore::with_clock(&config, Arc::new(clock.clone()));
        let ticket = ServiceTicket::parse("ST-1-clamp").unwrap();
        let binding = TicketBinding {
            session: None,
            service: "https://s/".to_owned(),
            issued_at_ms: 0,
        };
        let ticket = store.ticket_key(&ticket);
        assert!(run(store.bind_ticket(&ticket, binding)).unwrap());
        clock.advance(StoreConfig::MAX_TICKET_TTL);
        assert_eq!(run(store.take_ticket(&ticket)).unwrap(), None);
    }
}
