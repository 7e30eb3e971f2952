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
//! A session's read-modify-write ([`SessionStore::update_session`]) is optimistic:
//! `GETEX`, the new value computed in Rust, then a Lua script that writes it only if the
//! key still holds the bytes read (compare-and-set), retried with a jittered backoff
//! when another writer got there first. Not `WATCH`/`MULTI`/`EXEC`: a `WATCH` belongs
//! to a connection, and this store's one connection is multiplexed between every task
//! of the process, so another task's `EXEC` could consume or clear it. The compare is
//! on the raw stored bytes, so it holds whatever the value's encoding.
//!
//! Requires Redis ≥ 6.2 (`GETEX`, `SET … GET`). Keys are `<prefix><map>:<hex digest>`:
//! no ticket or session id appears in clear. TTLs are Redis's own, so entries expire
//! even when no instance is running.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, ErrorKind, RedisError, Script, Value};
use rand::Rng as _;

use super::codec::{self, within_bound, Digest};
use super::{
    SessionChange, SessionId, SessionState, SessionStore, SessionUpdate, StashedValidation,
    StoreConfig, StoreError, StoreStats, TicketBinding,
};
use crate::cas::ServiceTicket;
use crate::pupil::PupilKey;

/// Attempts of one session update before it fails with `Contention`. The writers of one
/// session are one browser's concurrent requests, a handful at most: losing this many
/// races in a row means something is wrong, and the request should not wait longer.
pub const UPDATE_ATTEMPTS: u32 = 10;

/// Most milliseconds of jittered backoff after a lost race (the bound doubles per
/// attempt from 1 ms up to this): spreads writers that collided so one of them wins
/// the next round, while an update that loses every race still ends within about
/// 100 ms plus its round trips.
const MAX_BACKOFF_MS: u64 = 16;

/// `KEYS[1]`: the session key. `ARGV[1]`: `1` when the caller read a value, `0` when
/// it read none; `ARGV[2]`: the bytes read; `ARGV[3]`: `1` to set `ARGV[4]` with a TTL
/// of `ARGV[5]` ms, `0` to delete. Returns 1 when written, 0 when the key no longer
/// holds what was read. A script runs atomically in Redis: nothing lands between the
/// compare and the write.
const COMPARE_AND_SET: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
else
  redis.call('DEL', KEYS[1])
end
return 1
";

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
    /// [`COMPARE_AND_SET`], sent by digest (`EVALSHA`) and loaded again by the client
    /// when Redis does not know it (after a restart).
    compare_and_set: Script,
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
            compare_and_set: Script::new(COMPARE_AND_SET),
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

    /// `GETEX key PX ttl`: a session's stored bytes, its idle TTL extended.
    async fn session_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut cmd = ::redis::cmd("GETEX");
        cmd.arg(key).arg("PX").arg(self.session_ttl_ms);
        self.query(&cmd).await
    }

    /// Writes `new` (`None`: deletes) if `key` still holds `read`; whether it did.
    async fn compare_and_set(
        &self,
        key: &str,
        read: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.compare_and_set.key(key);
        invocation
            .arg(flag(read.is_some()))
            .arg(read.unwrap_or_default())
            .arg(flag(new.is_some()))
            .arg(new.unwrap_or_default())
            .arg(self.session_ttl_ms);
        let mut connection = self.connection.clone();
        let written: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(written == 1)
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

/// A script's boolean argument.
fn flag(set: bool) -> &'static str {
    if set {
        "1"
    } else {
        "0"
    }
}

/// Waits a random time below a bound that doubles with each lost race (1 ms after the
/// first), so writers that collided do not collide again in step.
async fn backoff(lost_races: u32) {
    let bound_ms = (1u64 << lost_races.saturating_sub(1).min(8)).min(MAX_BACKOFF_MS);
    let ms = rand::thread_rng().gen_range(0..=bound_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
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
        let key = self.key(Map::Sessions, &codec::session_digest(id));
        self.session_bytes(&key)
            .await?
            .map(|bytes| codec::decode_state(&bytes))
            .transpose()
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

    /// Optimistic: read, decide in Rust, compare-and-set; on a lost race, read the
    /// winner's state and decide again.
    async fn update_session<T, F>(
        &self,
        id: &SessionId,
        mut f: F,
    ) -> Result<SessionUpdate<T>, StoreError>
    where
        F: FnMut(Option<SessionState>) -> (SessionChange, T) + Send,
        T: Send,
    {
        let key = self.key(Map::Sessions, &codec::session_digest(id));
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let read = self.session_bytes(&key).await?;
            let decode = || read.as_deref().map(codec::decode_state).transpose();
            let (change, output) = f(decode()?);
            let (new, state) = match change {
                // Nothing to write: what was read is the outcome (a read is atomic).
                SessionChange::Keep => {
                    return Ok(SessionUpdate {
                        state: decode()?,
                        output,
                    })
                }
                SessionChange::Drop if read.is_none() => {
                    return Ok(SessionUpdate {
                        state: None,
                        output,
                    })
                }
                SessionChange::Drop => (None, None),
                SessionChange::Put(state) => {
                    let bytes = within_bound(codec::encode_state(&state), self.max_value_bytes)?;
                    (Some(bytes), Some(state))
                }
            };
            if self
                .compare_and_set(&key, read.as_deref(), new.as_deref())
                .await?
            {
                return Ok(SessionUpdate { state, output });
            }
        }
        Err(StoreError::Contention {
            attempts: UPDATE_ATTEMPTS,
        })
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
