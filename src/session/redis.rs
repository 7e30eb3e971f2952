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
//! Requires Redis ≥ 6.2 (`GETEX`, `SET … GET`). Keys are `<prefix><map>:<hex digest>`,
//! the digest keyed by the store key: no ticket or session id appears in clear, and
//! nobody without the key can tell where a ticket's entry is. Every value is sealed
//! (`seal`): one that does not open is counted, logged as `store.unauthentic` and
//! treated as absent, so what a writer of the Redis plants never becomes a binding, a
//! stash entry or a session (`docs/security.md`, T56). TTLs are Redis's own, so entries
//! expire even when no instance is running.
//!
//! A sealed value also carries the time it was sealed: a binding, stash entry,
//! validated ticket or last pupil read after its TTL (plus the clock skew allowed
//! between instances) is a recorded value written back, and is refused the same way.
//! Within that time a writer of the Redis can still put back a value it recorded for
//! the same entry (a stash entry already taken, a session's earlier state): the seal
//! proves where a value belongs, not that it is the latest.
//!
//! During a key rotation an entry may sit under the digest of another accepted key (an
//! instance whose current key is another one wrote it): reads look under each, current
//! first; writes go under the current one. With one key (the usual case) every
//! operation is the single command above.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Cmd, ErrorKind, Pipeline, RedisError, Script, TlsCertificates, Value};
use rand::Rng as _;

use super::clock::{Clock as _, SystemClock};
use super::codec::{self, within_bound, Digest, Subject};
use super::{
    SessionChange, SessionId, SessionState, SessionStore, SessionUpdate, StashedValidation,
    StoreConfig, StoreError, StoreKeys, StoreStats, TicketBinding, TicketKey,
};
use crate::cas::ServiceTicket;
use crate::code::Code;
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

/// Bytes of the time stamp (Unix ms, big-endian) sealed before each value's encoding.
const STAMP_BYTES: usize = 8;

/// `KEYS[1]`: the session key under the current store key; `KEYS[2…]`: where the same
/// session may sit under older store keys. `ARGV[1]`: `1` when the caller read a value
/// at `KEYS[1]`, `0` when it read none there; `ARGV[2]`: the bytes read; `ARGV[3]`: `1`
/// to set `ARGV[4]` with a TTL of `ARGV[5]` ms, `0` to delete. Returns 1 when written
/// (the older copies deleted with it), 0 when `KEYS[1]` no longer holds what was read.
/// A script runs atomically in Redis: nothing lands between the compare and the write.
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
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
return 1
";

/// `SET KEYS[1] ARGV[1] PX ARGV[2] NX`, unless the entry already exists under an older
/// store key (`KEYS[2…]`): a ticket binds once, whichever key its first binding used.
/// Returns 1 when written.
const SET_NEW: &str = r"
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
return 0
";

/// A session map held in Redis. Clones share one multiplexed connection, which
/// reconnects by itself after Redis comes back, and one count of values that did not
/// open.
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
    /// Largest value written, as sealed (`StoreConfig::max_value_bytes`).
    max_value_bytes: usize,
    /// [`COMPARE_AND_SET`], sent by digest (`EVALSHA`) and loaded again by the client
    /// when Redis does not know it (after a restart).
    compare_and_set: Script,
    /// [`SET_NEW`], used only while several store keys are accepted.
    set_new: Script,
    /// Seals values and keys their digests (`--store-key-file`).
    keys: StoreKeys,
    /// Values read that did not open (`StoreStats::unauthentic`).
    unauthentic: Arc<AtomicU64>,
    /// Stamps each sealed value, so a recorded value written back later than its
    /// lifetime allows is refused.
    clock: SystemClock,
    /// How far instances' clocks may disagree (`StoreConfig::redis_clock_skew`).
    skew_ms: u64,
}

/// The maps, by the letter their keys carry and the name their values are sealed for.
#[derive(Clone, Copy)]
enum Map {
    Tickets,
    Stash,
    Sessions,
    Validated,
    LastPupils,
}

impl Map {
    fn letter(self) -> &'static str {
        match self {
            Map::Tickets => "t",
            Map::Stash => "x",
            Map::Sessions => "s",
            Map::Validated => "v",
            Map::LastPupils => "p",
        }
    }

    /// Part of every sealed value's associated data: a value cannot move between maps.
    fn name(self) -> &'static str {
        match self {
            Map::Tickets => "tickets",
            Map::Stash => "stash",
            Map::Sessions => "sessions",
            Map::Validated => "validated",
            Map::LastPupils => "last_pupils",
        }
    }
}

/// Where one entry may be: its Redis key and digest under each accepted store key,
/// current first (one place unless keys are rotating).
type Places = Vec<(String, Digest)>;

// === impl RedisStore ===

impl RedisStore {
    /// Connects to the Redis `url` names (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://…` for TLS, verified against the webpki roots or `config.redis_ca`).
    /// Refuses to start without store keys: instances sharing a Redis must share them.
    /// Fails with `Unavailable` when Redis does not answer within `redis_timeout`.
    pub async fn connect(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        let config = config.clone().clamped();
        let keys = config.keys.clone().ok_or_else(|| {
            StoreError::Setup(
                "a Redis store needs --store-key-file (the same key file on every instance)"
                    .to_owned(),
            )
        })?;
        let client = client(url, config.redis_ca.as_deref())?;
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
            set_new: Script::new(SET_NEW),
            keys,
            unauthentic: Arc::new(AtomicU64::new(0)),
            clock: SystemClock::new(),
            skew_ms: super::clock::duration_ms(config.redis_clock_skew),
        })
    }

    /// How long after its sealing a value of `map` may be read: its TTL, plus the clock
    /// skew allowed between instances. Sessions have none: a read extends their TTL
    /// without rewriting them.
    fn lifetime_ms(&self, map: Map) -> Option<u64> {
        let ttl = match map {
            Map::Tickets => self.ticket_ttl_ms,
            Map::Stash => self.stash_ttl_ms,
            Map::Validated => self.validated_ttl_ms,
            Map::LastPupils => self.last_pupil_ttl_ms,
            Map::Sessions => return None,
        };
        Some(ttl.saturating_add(self.skew_ms))
    }

    fn key(&self, map: Map, digest: &Digest) -> String {
        format!("{}{}:{}", self.prefix, map.letter(), hex::encode(digest))
    }

    /// Where the entry of `subject` in `map` may be, current store key first.
    fn places(&self, map: Map, subject: Subject<'_>) -> Places {
        subject
            .digests(&self.keys)
            .into_iter()
            .map(|digest| (self.key(map, &digest), digest))
            .collect()
    }

    /// Where a new entry of `subject` in `map` goes.
    fn place(&self, map: Map, subject: Subject<'_>) -> (String, Digest) {
        let digest = subject.digest(&self.keys);
        (self.key(map, &digest), digest)
    }

    /// `plain`, stamped with the time, sealed for the entry `digest` of `map`, within
    /// the value bound.
    fn seal(&self, map: Map, digest: &Digest, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut stamped = Vec::with_capacity(STAMP_BYTES + plain.len());
        stamped.extend_from_slice(&self.clock.now_ms().to_be_bytes());
        stamped.extend_from_slice(plain);
        let sealed = self
            .keys
            .seal(map.name(), digest, &stamped)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        within_bound(sealed, self.max_value_bytes)
    }

    /// The plain text of a value read from the entry `digest` of `map`, or `None` when
    /// it does not open, or was sealed longer ago than its map's lifetime (a recorded
    /// value written back: the seal says where a value belongs, not that it is still
    /// the current one). Either is counted and logged (never its bytes), then treated
    /// as absent.
    fn open(&self, map: Map, digest: &Digest, value: &[u8]) -> Option<Vec<u8>> {
        let refused = |why: &'static str| {
            self.unauthentic.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                code = %Code::StoreUnauthentic,
                map = map.name(),
                "a session store value {why}; treated as absent"
            );
        };
        let Some(stamped) = self.keys.open(map.name(), digest, value) else {
            refused(
                "did not open (forged, altered, moved, or sealed under a key not in \
                 --store-key-file)",
            );
            return None;
        };
        let Some((stamp, plain)) = stamped.split_at_checked(STAMP_BYTES) else {
            refused("has no time stamp");
            return None;
        };
        let sealed_at = u64::from_be_bytes(stamp.try_into().unwrap_or_default());
        let outlived = self
            .lifetime_ms(map)
            .is_some_and(|lifetime| sealed_at.saturating_add(lifetime) < self.clock.now_ms());
        if outlived {
            refused(
                "was sealed longer ago than its lifetime (written back after it was \
                 used, or the instances' clocks disagree)",
            );
            return None;
        }
        Some(plain.to_vec())
    }

    /// The first value among `replies` (one per place) that opens. Empty values are
    /// tombstones, not values.
    fn first_open(
        &self,
        map: Map,
        places: &Places,
        replies: Vec<Option<Vec<u8>>>,
    ) -> Option<Vec<u8>> {
        places
            .iter()
            .zip(replies)
            .filter_map(|((_, digest), reply)| reply.filter(|v| !v.is_empty()).map(|v| (digest, v)))
            .find_map(|(digest, value)| self.open(map, digest, &value))
    }

    async fn query<T: ::redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        cmd.query_async(&mut connection).await.map_err(unavailable)
    }

    async fn query_pipe<T: ::redis::FromRedisValue>(
        &self,
        pipe: &Pipeline,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        pipe.query_async(&mut connection).await.map_err(unavailable)
    }

    /// One command per place (one command, or one atomic `MULTI` block): the replies.
    async fn each_place(
        &self,
        places: &Places,
        command: impl Fn(&str) -> Cmd,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if let [(key, _)] = places.as_slice() {
            return Ok(vec![self.query(&command(key)).await?]);
        }
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for (key, _) in places {
            pipe.add_command(command(key));
        }
        self.query_pipe(&pipe).await
    }

    /// A new entry (`SET … NX`): whether the entry was free under every accepted key.
    async fn set_new(
        &self,
        map: Map,
        subject: Subject<'_>,
        plain: &[u8],
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        let places = self.places(map, subject);
        let Some((key, digest)) = places.first() else {
            return Ok(false);
        };
        let value = self.seal(map, digest, plain)?;
        if places.len() == 1 {
            let mut cmd = ::redis::cmd("SET");
            cmd.arg(key).arg(value).arg("PX").arg(ttl_ms).arg("NX");
            let reply: Value = self.query(&cmd).await?;
            return Ok(!matches!(reply, Value::Nil));
        }
        let mut invocation = self.set_new.prepare_invoke();
        for (key, _) in &places {
            invocation.key(key);
        }
        invocation.arg(value).arg(ttl_ms);
        let mut connection = self.connection.clone();
        let written: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(written == 1)
    }

    /// `SET key "" XX KEEPTTL GET` at every place: the value, once, if it opens; a
    /// tombstone stays behind either way.
    async fn take(&self, map: Map, subject: Subject<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        let places = self.places(map, subject);
        let replies = self
            .each_place(&places, |key| {
                let mut cmd = tombstone_cmd(key);
                cmd.arg("GET");
                cmd
            })
            .await?;
        Ok(self.first_open(map, &places, replies))
    }

    /// `GETEX key PX ttl` at every place: the first session value found (raw), with the
    /// index of its place; its idle TTL extended.
    async fn read_session(&self, places: &Places) -> Result<Option<(usize, Vec<u8>)>, StoreError> {
        let replies = self
            .each_place(places, |key| {
                let mut cmd = ::redis::cmd("GETEX");
                cmd.arg(key).arg("PX").arg(self.session_ttl_ms);
                cmd
            })
            .await?;
        Ok(replies
            .into_iter()
            .enumerate()
            .find_map(|(index, reply)| reply.map(|value| (index, value))))
    }

    /// Writes `new` (`None`: deletes) at `places[0]` if it still holds `read` (`None`:
    /// nothing), deleting the copies at the other places; whether it did.
    async fn compare_and_set(
        &self,
        places: &Places,
        read: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.compare_and_set.prepare_invoke();
        for (key, _) in places {
            invocation.key(key);
        }
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
}

/// The client for `url`: plain, or TLS through rustls verified against the webpki roots
/// or the CA bundle `ca`. The crate's `#insecure` (no certificate check) is refused.
fn client(url: &str, ca: Option<&Path>) -> Result<Client, StoreError> {
    // Only the scheme is ever echoed: a URL may carry a password.
    let client =
        Client::open(url).map_err(|_| StoreError::InvalidUrl("unparsable redis URL".to_owned()))?;
    let tls = url.starts_with("rediss://");
    if tls && url::Url::parse(url).is_ok_and(|parsed| parsed.fragment().is_some()) {
        return Err(StoreError::InvalidUrl(
            "rediss:// URL with a fragment (#insecure): the certificate is always verified; \
             give the CA with --store-ca"
                .to_owned(),
        ));
    }
    let Some(ca) = ca else {
        return Ok(client);
    };
    if !tls {
        return Err(StoreError::Setup(
            "--store-ca is given, but the store URL is not rediss://".to_owned(),
        ));
    }
    let pem = std::fs::read(ca)
        .map_err(|e| StoreError::Setup(format!("--store-ca {}: {e}", ca.display())))?;
    Client::build_with_tls(
        url,
        TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )
    .map_err(|_| {
        StoreError::Setup(format!(
            "--store-ca {}: not a PEM certificate bundle",
            ca.display()
        ))
    })
}

/// `SET key "" XX KEEPTTL`: turns a live entry into a tombstone, leaves a free key free.
fn tombstone_cmd(key: &str) -> Cmd {
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
    fn ticket_key(&self, ticket: &ServiceTicket) -> TicketKey {
        TicketKey::new(&self.keys, ticket)
    }

    async fn bind_ticket(
        &self,
        ticket: &TicketKey,
        binding: TicketBinding,
    ) -> Result<bool, StoreError> {
        let plain = codec::encode_binding(&binding);
        self.set_new(
            Map::Tickets,
            Subject::Ticket(ticket),
            &plain,
            self.ticket_ttl_ms,
        )
        .await
    }

    async fn take_ticket(&self, ticket: &TicketKey) -> Result<Option<TicketBinding>, StoreError> {
        self.take(Map::Tickets, Subject::Ticket(ticket))
            .await?
            .map(|plain| codec::decode_binding(&plain))
            .transpose()
    }

    async fn spend_ticket(&self, ticket: &TicketKey) -> Result<(), StoreError> {
        self.take(Map::Tickets, Subject::Ticket(ticket)).await?;
        Ok(())
    }

    async fn stash(
        &self,
        ticket: &TicketKey,
        entry: StashedValidation,
    ) -> Result<bool, StoreError> {
        let plain = codec::encode_stash(&entry);
        self.set_new(
            Map::Stash,
            Subject::Ticket(ticket),
            &plain,
            self.stash_ttl_ms,
        )
        .await
    }

    async fn take_stash(
        &self,
        ticket: &TicketKey,
    ) -> Result<Option<StashedValidation>, StoreError> {
        self.take(Map::Stash, Subject::Ticket(ticket))
            .await?
            .map(|plain| codec::decode_stash(&plain))
            .transpose()
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        let places = self.places(Map::Sessions, Subject::Session(id));
        let Some((index, value)) = self.read_session(&places).await? else {
            return Ok(None);
        };
        self.open(Map::Sessions, &places[index].1, &value)
            .map(|plain| codec::decode_state(&plain))
            .transpose()
    }

    async fn put_session(&self, id: &SessionId, state: SessionState) -> Result<(), StoreError> {
        let (key, digest) = self.place(Map::Sessions, Subject::Session(id));
        let value = self.seal(Map::Sessions, &digest, &codec::encode_state(&state))?;
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(self.session_ttl_ms);
        self.query::<()>(&cmd).await
    }

    async fn drop_session(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut cmd = ::redis::cmd("DEL");
        for (key, _) in self.places(Map::Sessions, Subject::Session(id)) {
            cmd.arg(key);
        }
        self.query::<()>(&cmd).await
    }

    /// Optimistic: read, decide in Rust, compare-and-set; on a lost race, read the
    /// winner's state and decide again. A value that does not open is decided on as
    /// absent, and the write replaces it.
    async fn update_session<T, F>(
        &self,
        id: &SessionId,
        mut f: F,
    ) -> Result<SessionUpdate<T>, StoreError>
    where
        F: FnMut(Option<SessionState>) -> (SessionChange, T) + Send,
        T: Send,
    {
        let places = self.places(Map::Sessions, Subject::Session(id));
        let Some((_, digest)) = places.first() else {
            return Err(StoreError::Corrupt("no store key".to_owned()));
        };
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let read = self.read_session(&places).await?;
            let plain = read
                .as_ref()
                .and_then(|(index, value)| self.open(Map::Sessions, &places[*index].1, value));
            let decode = || plain.as_deref().map(codec::decode_state).transpose();
            let (change, output) = f(decode()?);
            // The compare is at the current key's place: a value read at an older key's
            // place counts as nothing there, and the write moves it.
            let compared = match &read {
                Some((0, value)) => Some(value.as_slice()),
                _ => None,
            };
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
                    let sealed = self.seal(Map::Sessions, digest, &codec::encode_state(&state))?;
                    (Some(sealed), Some(state))
                }
            };
            if self
                .compare_and_set(&places, compared, new.as_deref())
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
        ticket: &TicketKey,
        session: SessionId,
    ) -> Result<(), StoreError> {
        let (key, digest) = self.place(Map::Validated, Subject::Ticket(ticket));
        let value = self.seal(Map::Validated, &digest, &codec::encode_session_id(&session))?;
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(self.validated_ttl_ms);
        self.query::<()>(&cmd).await
    }

    async fn forget_ticket(&self, ticket: &TicketKey) -> Result<Option<SessionId>, StoreError> {
        let subject = Subject::Ticket(ticket);
        let validated = self.places(Map::Validated, subject);
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for map in [Map::Tickets, Map::Stash] {
            for (key, _) in self.places(map, subject) {
                pipe.add_command(tombstone_cmd(&key)).ignore();
            }
        }
        for (key, _) in &validated {
            pipe.cmd("GETDEL").arg(key);
        }
        let replies: Vec<Option<Vec<u8>>> = self.query_pipe(&pipe).await?;
        self.first_open(Map::Validated, &validated, replies)
            .map(|plain| codec::decode_session_id(&plain))
            .transpose()
    }

    async fn swap_last_pupil(
        &self,
        key: &str,
        pupil: PupilKey,
        now_ms: u64,
    ) -> Result<Option<(PupilKey, u64)>, StoreError> {
        let places = self.places(Map::LastPupils, Subject::CallerKey(key));
        let Some((current, digest)) = places.first() else {
            return Ok(None);
        };
        let value = self.seal(
            Map::LastPupils,
            digest,
            &codec::encode_last_pupil(&pupil, now_ms),
        )?;
        let mut set = ::redis::cmd("SET");
        set.arg(current)
            .arg(value)
            .arg("PX")
            .arg(self.last_pupil_ttl_ms)
            .arg("GET");
        // The previous pupil, wherever it was: copies under older keys go.
        let replies: Vec<Option<Vec<u8>>> = if places.len() == 1 {
            vec![self.query(&set).await?]
        } else {
            let mut pipe = ::redis::pipe();
            pipe.atomic().add_command(set);
            for (key, _) in &places[1..] {
                pipe.cmd("GETDEL").arg(key);
            }
            self.query_pipe(&pipe).await?
        };
        self.first_open(Map::LastPupils, &places, replies)
            .map(|plain| codec::decode_last_pupil(&plain))
            .transpose()
    }

    /// Redis holds the entries and does the expiry: nothing to count locally but the
    /// values that did not open.
    fn stats(&self) -> StoreStats {
        StoreStats {
            unauthentic: self.unauthentic.load(Ordering::Relaxed),
            ..StoreStats::default()
        }
    }
}
