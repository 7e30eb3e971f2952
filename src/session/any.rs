//! One concrete store type for the proxy, chosen by `--store`.

use super::memory::MemoryStore;
use super::redis::RedisStore;
use super::{
    SessionChange, SessionId, SessionState, SessionStore, SessionUpdate, StashedValidation,
    StoreConfig, StoreError, StoreStats, TicketBinding, TicketKey,
};
use crate::cas::ServiceTicket;
use crate::pupil::PupilKey;

/// The store `--store` names: `memory` (default), `redis://…` or `rediss://…`.
// One per process, held behind an `Arc`: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum AnyStore {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl AnyStore {
    /// Opens the store `url` names. A Redis store connects now, so a wrong URL or a
    /// Redis that is down is reported at startup rather than at the first login.
    pub async fn from_url(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        if url == "memory" {
            Ok(Self::Memory(MemoryStore::new(config)))
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(Self::Redis(RedisStore::connect(url, config).await?))
        } else {
            // Only the scheme is echoed: a URL may carry a password.
            let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
            Err(StoreError::InvalidUrl(format!(
                "unsupported scheme {scheme:?}"
            )))
        }
    }
}

/// Forwards one trait method to whichever store this is.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call.await,
            AnyStore::Redis($store) => $call.await,
        }
    };
}

impl SessionStore for AnyStore {
    fn ticket_key(&self, ticket: &ServiceTicket) -> TicketKey {
        match self {
            AnyStore::Memory(store) => store.ticket_key(ticket),
            AnyStore::Redis(store) => store.ticket_key(ticket),
        }
    }

    async fn bind_ticket(
        &self,
        ticket: &TicketKey,
        binding: TicketBinding,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.bind_ticket(ticket, binding))
    }

    async fn take_ticket(&self, ticket: &TicketKey) -> Result<Option<TicketBinding>, StoreError> {
        dispatch!(self, s => s.take_ticket(ticket))
    }

    async fn spend_ticket(&self, ticket: &TicketKey) -> Result<(), StoreError> {
        dispatch!(self, s => s.spend_ticket(ticket))
    }

    async fn stash(
        &self,
        ticket: &TicketKey,
        entry: StashedValidation,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.stash(ticket, entry))
    }

    async fn take_stash(
        &self,
        ticket: &TicketKey,
    ) -> Result<Option<StashedValidation>, StoreError> {
        dispatch!(self, s => s.take_stash(ticket))
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        dispatch!(self, s => s.session(id))
    }

    async fn put_session(&self, id: &SessionId, state: SessionState) -> Result<(), StoreError> {
        dispatch!(self, s => s.put_session(id, state))
    }

    async fn drop_session(&self, id: &SessionId) -> Result<(), StoreError> {
        dispatch!(self, s => s.drop_session(id))
    }

    async fn update_session<T, F>(
        &self,
        id: &SessionId,
        f: F,
    ) -> Result<SessionUpdate<T>, StoreError>
    where
        F: FnMut(Option<SessionState>) -> (SessionChange, T) + Send,
        T: Send,
    {
        dispatch!(self, s => s.update_session(id, f))
    }

    async fn remember_validated(
        &self,
        ticket: &TicketKey,
        session: SessionId,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.remember_validated(ticket, session))
    }

    async fn forget_ticket(&self, ticket: &TicketKey) -> Result<Option<SessionId>, StoreError> {
        dispatch!(self, s => s.forget_ticket(ticket))
    }

    async fn swap_last_pupil(
        &self,
        key: &str,
        pupil: PupilKey,
        now_ms: u64,
    ) -> Result<Option<(PupilKey, u64)>, StoreError> {
        dispatch!(self, s => s.swap_last_pupil(key, pupil, now_ms))
    }

    fn stats(&self) -> StoreStats {
        match self {
            AnyStore::Memory(s) => s.stats(),
            AnyStore::Redis(s) => s.stats(),
        }
    }
}
