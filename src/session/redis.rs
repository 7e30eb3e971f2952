//! The Redis store: several bonenfant instances share one session map
//! (`docs/domain.md`, "Deployments"), so a front channel seen by instance A correlates
//! with a back channel seen by instance B.
//!
//! Every operation is one Redis command (or one `MULTI` block), so atomicity is Redis's:
//! * bind and stash: `SET key value PX ttl NX`;
//! * take: `SET key "" XX KEEPTTL GET`, which returns the value and leaves an empty
//!   tombstone until the entry would have expired (like `GETDEL`, plus the guarantee
//!   that the ticket cannot be bound again within its TTL — same as the memory store);
//! * sessions: `GETEX key PX ttl` (sliding expiry), `SET … PX`;
//! * last pupil: `SET key value PX ttl GET`.
//!
//! Requires Redis ≥ 6.2 (`GETEX`, `SET … GET`). Keys are `<prefix><map>:<hex digest>`:
//! no ticket or session id appears in clear. TTLs are Redis's own, so entries expire
//! even when no instance is running.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, ErrorKind, RedisError, Value};

use super::codec::{self, within_bound, Digest};
use super::{
    SessionId, SessionState, SessionStore, StashedValidation, StoreConfig, StoreError, StoreStats,
    TicketBinding,
};
use crate::cas::ServiceTicket;
use crate::pupil::PupilKey;

/// A session map held in Redis. Clones share one multiplexed connection, which
/// reconnects by itself after Redis comes back.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    /// `redis_prefix` from the config (`bonenfant:`).
    prefix: String,
    ticket_ttl_ms: u64,
    stash_ttl_ms: u64,
    session_ttl_ms: u64,
    validated_ttl_ms: u64,
    last_pupil_ttl_ms: u64,
    /// Largest encoded value written (`StoreConfig::max_value_bytes`).
    max_value_bytes: usize,
}

/// The maps, by the letter their keys carry.
#[derive(Clone, Copy)]
enum Map {
    Tickets,
    Stash,
    Sessions,
    Validated,
    LastPupils,
}

// === impl RedisStore ===

impl RedisStore {
    /// Connects to the Redis `url` names (`redis://[user:password@]host[:port][/db]`).
    /// Fails with `Unavailable` when Redis does not answer within `redis_timeout`.
    pub async fn connect(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        let config = config.clone().clamped();
        let client = ::redis::Client::open(url)
            .map_err(|_| StoreError::InvalidUrl("unparsable redis URL".to_owned()))?;
        // No retry inside one call: a request must not wait out a backoff (the crate's
        // first retry comes after about a second). A failed call reports `Unavailable`
        // at once and the next call tries a fresh connection.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(config.redis_timeout)
            .set_response_timeout(config.redis_timeout)
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            connection,
            prefix: config.redis_prefix.clone(),
            ticket_ttl_ms: millis(config.tickets.ttl),
            stash_ttl_ms: millis(config.stash.ttl),
            session_ttl_ms: millis(config.sessions.ttl),
            validated_ttl_ms: millis(config.validated.ttl),
            last_pupil_ttl_ms: millis(config.last_pupils.ttl),
            max_value_bytes: config.max_value_bytes,
        })
    }

    fn key(&self, map: Map, digest: &Digest) -> String {
        let letter = match map {
            Map::Tickets => "t",
            Map::Stash => "x",
            Map::Sessions => "s",
            Map::Validated => "v",
            Map::LastPupils => "p",
        };
        format!("{}{letter}:{}", self.prefix, hex::encode(digest))
    }

    async fn query<T: ::redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        cmd.query_async(&mut connection).await.map_err(unavailable)
    }

    /// `SET key value PX ttl NX`: whether the key was free.
    async fn set_new(&self, key: String, value: Vec<u8>, ttl_ms: u64) -> Result<bool, StoreError> {
        let value = within_bound(value, self.max_value_bytes)?;
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(ttl_ms).arg("NX");
        let reply: Value = self.query(&cmd).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    /// `SET key "" XX KEEPTTL GET`: the value, once; a tombstone stays behind.
    async fn take(&self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        let reply: Option<Vec<u8>> = self.query(&tombstone_cmd(key).arg("GET").clone()).await?;
        Ok(reply.filter(|value| !value.is_empty()))
    }
}

/// `SET key "" XX KEEPTTL`: turns a live entry into a tombstone, leaves a free key free.
fn tombstone_cmd(key: String) -> Cmd {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(key).arg("").arg("XX").arg("KEEPTTL");
    cmd
}

/// Redis refuses a `PX` of 0.
fn millis(duration: Duration) -> u64 {
    super::clock::duration_ms(duration).max(1)
}

/// Redis errors carry no key or value, but are reduced to their kind anyway: a store
/// error may reach a log.
fn unavailable(error: RedisError) -> StoreError {
    match error.kind() {
        ErrorKind::TypeError => StoreError::Corrupt("unexpected redis reply type".to_owned()),
        kind => StoreError::Unavailable(format!("redis error ({kind:?})")),
    }
}

impl SessionStore for RedisStore {
    async fn bind_ticket(
        &self,
        ticket: &ServiceTicket,
        binding: TicketBinding,
    ) -> Result<bool, StoreError> {
        let key = self.key(Map::Tickets, &codec::ticket_digest(ticket));
        self.set_new(key, codec::encode_binding(&binding), self.ticket_ttl_ms)
            .await
    }

    async fn take_ticket(
        &self,
        ticket: &ServiceTicket,
    ) -> Result<Option<TicketBinding>, StoreError> {
        let key = self.key(Map::Tickets, &codec::ticket_digest(ticket));
        self.take(key)
            .await?
            .map(|bytes| codec::decode_binding(&bytes))
            .transpose()
    }

    async fn stash(
        &self,
        ticket: &ServiceTicket,
        entry: StashedValidation,
    ) -> Result<bool, StoreError> {
        let key = self.key(Map::Stash, &codec::ticket_digest(ticket));
        self.set_new(key, codec::encode_stash(&entry), self.stash_ttl_ms)
            .await
    }

    async fn take_stash(
        &self,
        ticket: &ServiceTicket,
    ) -> Result<Option<StashedValidation>, StoreError> {
        let key = self.key(Map::Stash, &codec::ticket_digest(ticket));
        self.take(key)
            .await?
            .map(|bytes| codec::decode_stash(&bytes))
            .transpose()
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        let mut cmd = ::redis::cmd("GETEX");
        cmd.arg(self.key(Map::Sessions, &codec::session_digest(id)))
            .arg("PX")
            .arg(self.session_ttl_ms);
        let reply: Option<Vec<u8>> = self.query(&cmd).await?;
        reply.map(|bytes| codec::decode_state(&bytes)).transpose()
    }

    async fn put_session(&self, id: &SessionId, state: SessionState) -> Result<(), StoreError> {
        let value = within_bound(codec::encode_state(&state), self.max_value_bytes)?;
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key(Map::Sessions, &codec::session_digest(id)))
            .arg(value)
            .arg("PX")
            .arg(self.session_ttl_ms);
        self.query::<()>(&cmd).await
    }

    async fn drop_session(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(self.key(Map::Sessions, &codec::session_digest(id)));
        self.query::<()>(&cmd).await
    }

    async fn remember_validated(
        &self,
        ticket: &ServiceTicket,
        session: SessionId,
    ) -> Result<(), StoreError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key(Map::Validated, &codec::ticket_digest(ticket)))
            .arg(codec::encode_session_id(&session))
            .arg("PX")
            .arg(self.validated_ttl_ms);
        self.query::<()>(&cmd).await
    }

    async fn forget_ticket(&self, ticket: &ServiceTicket) -> Result<Option<SessionId>, StoreError> {
        let digest = codec::ticket_digest(ticket);
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .add_command(tombstone_cmd(self.key(Map::Tickets, &digest)))
            .ignore()
            .add_command(tombstone_cmd(self.key(Map::Stash, &digest)))
            .ignore()
            .cmd("GETDEL")
            .arg(self.key(Map::Validated, &digest));
        let mut connection = self.connection.clone();
        let (session,): (Option<Vec<u8>>,) = pipe
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        session
            .map(|bytes| codec::decode_session_id(&bytes))
            .transpose()
    }

    async fn swap_last_pupil(
        &self,
        key: &str,
        pupil: PupilKey,
        now_ms: u64,
    ) -> Result<Option<(PupilKey, u64)>, StoreError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key(Map::LastPupils, &codec::caller_key_digest(key)))
            .arg(codec::encode_last_pupil(&pupil, now_ms))
            .arg("PX")
            .arg(self.last_pupil_ttl_ms)
            .arg("GET");
        let reply: Option<Vec<u8>> = self.query(&cmd).await?;
        reply
            .map(|bytes| codec::decode_last_pupil(&bytes))
            .transpose()
    }

    /// Redis holds the entries and does the expiry: nothing to count locally.
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
}
