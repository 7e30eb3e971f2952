//! A sharded, bounded map of encoded values with one TTL per map: the memory store's
//! building block.
//!
//! Why hand-written rather than a cache crate: caches with admission policies (TinyLFU)
//! may refuse to admit a new entry, and a refused ticket binding is a lost correlation;
//! this map always admits and evicts the entry closest to expiry, and counts it.
//!
//! Each shard is a `std::sync::Mutex` held for a few hash-map operations, never across
//! an await. Expiry order is kept in a queue of `(expires_at, key)`: with one TTL per
//! map and a monotonic clock, insertion order is expiry order. A refreshed entry leaves
//! a stale queue element behind, recognised because the slot's expiry no longer matches,
//! and the queue is rebuilt when stale elements outnumber live ones.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::codec::within_bound;
use super::{MapLimits, StoreError};

/// Entries per shard below which a map keeps a single shard: small maps (tests, small
/// deployments) then get exact global bounds, large ones get parallelism.
const ENTRIES_PER_SHARD: usize = 4096;

/// Most shards: enough to keep two to eight cores from contending.
const MAX_SHARDS: usize = 16;

/// What [`ExpiringMap::insert_new`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    Inserted,
    /// A live entry (or the tombstone of a taken one) holds the key: nothing changed.
    Occupied,
}

/// What [`ExpiringMap::update`]'s closure decides for the key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Leave the value; a live one gets its TTL extended (sliding expiry, as a read).
    Keep,
    /// Insert or replace, restarting the TTL.
    Put(Vec<u8>),
    Remove,
}

pub(crate) struct ExpiringMap<K> {
    shards: Box<[Mutex<Shard<K>>]>,
    ttl_ms: u64,
    /// Bounds of one shard: the map's bounds divided by the shard count.
    shard_entries: usize,
    shard_bytes: usize,
    /// Largest value accepted.
    max_value_bytes: usize,
    evictions: AtomicU64,
}

struct Shard<K> {
    map: HashMap<K, Slot>,
    queue: VecDeque<(u64, K)>,
    /// Bytes held, [`Slot::cost`] summed.
    bytes: usize,
}

struct Slot {
    /// Encoded value; empty for a tombstone (a taken one-shot entry).
    value: Box<[u8]>,
    expires_at: u64,
}

// === impl ExpiringMap ===

impl<K: Hash + Eq + Copy> ExpiringMap<K> {
    pub(crate) fn new(limits: &MapLimits, max_value_bytes: usize) -> Self {
        let max_entries = limits.max_entries.max(1);
        let shards = (max_entries / ENTRIES_PER_SHARD).clamp(1, MAX_SHARDS);
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::new())).collect(),
            ttl_ms: u64::try_from(limits.ttl.as_millis()).unwrap_or(u64::MAX),
            shard_entries: max_entries / shards,
            shard_bytes: limits.max_bytes / shards,
            max_value_bytes,
            evictions: AtomicU64::new(0),
        }
    }

    /// Inserts unless the key holds a live entry or tombstone.
    pub(crate) fn insert_new(
        &self,
        key: K,
        value: Vec<u8>,
        now: u64,
    ) -> Result<Insert, StoreError> {
        let value = self.admissible(value)?;
        let mut shard = self.shard(&key);
        shard.purge_expired(now);
        if shard.live(&key, now).is_some() {
            return Ok(Insert::Occupied);
        }
        self.insert_locked(&mut shard, key, value, now);
        Ok(Insert::Inserted)
    }

    /// Inserts or replaces, restarting the TTL.
    pub(crate) fn put(&self, key: K, value: Vec<u8>, now: u64) -> Result<(), StoreError> {
        self.swap(key, value, now).map(drop)
    }

    /// Inserts or replaces, restarting the TTL; returns the live value replaced.
    pub(crate) fn swap(
        &self,
        key: K,
        value: Vec<u8>,
        now: u64,
    ) -> Result<Option<Box<[u8]>>, StoreError> {
        let value = self.admissible(value)?;
        let mut shard = self.shard(&key);
        shard.purge_expired(now);
        let old = shard.remove(&key).filter(|slot| slot.expires_at > now);
        self.insert_locked(&mut shard, key, value, now);
        Ok(old.map(|slot| slot.value).filter(|v| !v.is_empty()))
    }

    /// Takes the live value, leaving a tombstone until the entry would have expired, so
    /// the key can neither be taken again nor inserted anew within its TTL.
    pub(crate) fn take(&self, key: &K, now: u64) -> Option<Box<[u8]>> {
        let mut guard = self.shard(key);
        let shard = &mut *guard;
        let slot = shard
            .map
            .get_mut(key)
            .filter(|slot| slot.expires_at > now)?;
        if slot.value.is_empty() {
            return None;
        }
        let value = std::mem::take(&mut slot.value);
        shard.bytes -= value.len();
        Some(value)
    }

    /// A copy of the live value, extending its TTL (sliding expiry).
    pub(crate) fn get_refresh(&self, key: &K, now: u64) -> Option<Box<[u8]>> {
        let mut shard = self.shard(key);
        let value = shard.live_value(key, now)?.into();
        shard.refresh(key, now.saturating_add(self.ttl_ms));
        Some(value)
    }

    /// Read-modify-write under the shard lock: `decide` sees the live value (`None` when
    /// absent, expired or a tombstone) and says what to do with it; its output is
    /// returned. Meant for maps without one-shot entries (sessions): a `Put` replaces a
    /// tombstone like any other entry.
    pub(crate) fn update<T>(
        &self,
        key: K,
        now: u64,
        decide: impl FnOnce(Option<&[u8]>) -> Result<(Change, T), StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.shard(&key);
        let shard = &mut *guard;
        shard.purge_expired(now);
        // Decided before anything changes: an error (or a panic) in `decide`, or a
        // value over the bounds, leaves the shard as it was.
        let (change, output) = decide(shard.live_value(&key, now))?;
        match change {
            Change::Keep => {
                if shard.live_value(&key, now).is_some() {
                    shard.refresh(&key, now.saturating_add(self.ttl_ms));
                }
            }
            Change::Put(value) => {
                let value = self.admissible(value)?;
                self.insert_locked(shard, key, value, now);
            }
            Change::Remove => {
                shard.remove(&key);
            }
        }
        Ok(output)
    }

    /// Removes the entry (tombstone included); returns the live value.
    pub(crate) fn remove(&self, key: &K, now: u64) -> Option<Box<[u8]>> {
        let mut shard = self.shard(key);
        let slot = shard.remove(key)?;
        (slot.expires_at > now && !slot.value.is_empty()).then_some(slot.value)
    }

    /// Turns a live entry into a tombstone (single logout of a ticket not yet validated:
    /// it must not validate later).
    pub(crate) fn tombstone(&self, key: &K, now: u64) {
        let _ = self.take(key, now);
    }

    /// Entries held (tombstones and not yet purged expired entries included).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(s).bytes).sum()
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    fn admissible(&self, value: Vec<u8>) -> Result<Box<[u8]>, StoreError> {
        let value = within_bound(value, self.max_value_bytes)?;
        let cost = Slot::cost::<K>(value.len());
        if cost > self.shard_bytes {
            return Err(StoreError::TooLarge {
                bytes: cost,
                limit: self.shard_bytes,
            });
        }
        Ok(value.into_boxed_slice())
    }

    /// Makes room (expired first, then closest to expiry, counted) and inserts.
    fn insert_locked(&self, shard: &mut Shard<K>, key: K, value: Box<[u8]>, now: u64) {
        // An expired entry still under the key gives its bytes back first.
        shard.remove(&key);
        let cost = Slot::cost::<K>(value.len());
        while shard.map.len() >= self.shard_entries || shard.bytes + cost > self.shard_bytes {
            match shard.pop_oldest() {
                Some(slot) if slot.expires_at > now => {
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
                None => break,
            }
        }
        let expires_at = now.saturating_add(self.ttl_ms);
        shard.bytes += cost;
        shard.map.insert(key, Slot { value, expires_at });
        shard.queue.push_back((expires_at, key));
        shard.compact_queue();
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K>> {
        let index = if self.shards.len() == 1 {
            0
        } else {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut hasher);
            // Truncation is the point: any bits of the hash pick a shard.
            (hasher.finish() as usize) % self.shards.len()
        };
        // In range: reduced modulo the (non-zero) shard count.
        lock(&self.shards[index])
    }
}

/// A poisoned shard still holds consistent data (no critical section can panic midway
/// through an update), so poisoning is ignored rather than turned into a panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// === impl Shard ===

impl<K: Hash + Eq + Copy> Shard<K> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
            queue: VecDeque::new(),
            bytes: 0,
        }
    }

    /// The slot if it is live (tombstones count as live: they hold the key).
    fn live(&self, key: &K, now: u64) -> Option<&Slot> {
        self.map.get(key).filter(|slot| slot.expires_at > now)
    }

    /// The value of the live, non-tombstone entry under `key`.
    fn live_value(&self, key: &K, now: u64) -> Option<&[u8]> {
        self.live(key, now)
            .map(|slot| &*slot.value)
            .filter(|value| !value.is_empty())
    }

    /// Moves the entry's expiry to `expires_at` (the entry must exist).
    fn refresh(&mut self, key: &K, expires_at: u64) {
        if let Some(slot) = self.map.get_mut(key) {
            slot.expires_at = expires_at;
            self.queue.push_back((expires_at, *key));
            self.compact_queue();
        }
    }

    fn remove(&mut self, key: &K) -> Option<Slot> {
        let slot = self.map.remove(key)?;
        self.bytes -= Slot::cost::<K>(slot.value.len());
        Some(slot)
    }

    /// Drops expired entries at the front of the queue. Pops one element at a time: a
    /// stale element must not lead to removing the live entry queued behind it.
    fn purge_expired(&mut self, now: u64) {
        while let Some(&(expires_at, key)) = self.queue.front() {
            if expires_at > now {
                break;
            }
            self.queue.pop_front();
            if self
                .map
                .get(&key)
                .is_some_and(|slot| slot.expires_at == expires_at)
            {
                self.remove(&key);
            }
        }
    }

    /// Removes the entry closest to expiry, skipping stale queue elements.
    fn pop_oldest(&mut self) -> Option<Slot> {
        while let Some((expires_at, key)) = self.queue.pop_front() {
            if self
                .map
                .get(&key)
                .is_some_and(|slot| slot.expires_at == expires_at)
            {
                return self.remove(&key);
            }
        }
        None
    }

    /// Rebuilds the queue from the map once stale elements dominate, so refreshes
    /// cannot grow it without bound.
    fn compact_queue(&mut self) {
        if self.queue.len() <= 2 * self.map.len() + 64 {
            return;
        }
        let mut live: Vec<(u64, K)> = self.map.iter().map(|(k, s)| (s.expires_at, *k)).collect();
        live.sort_unstable_by_key(|&(expires_at, _)| expires_at);
        self.queue = live.into();
    }
}

// === impl Slot ===

impl Slot {
    /// Bytes an entry costs: its value plus the key, slot and queue element, and an
    /// estimate of the hash table's control bytes and spare capacity.
    fn cost<K>(value_len: usize) -> usize {
        const TABLE_SLACK: usize = 16;
        value_len + 2 * size_of::<K>() + size_of::<Slot>() + size_of::<u64>() + TABLE_SLACK
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn map(entries: usize, bytes: usize) -> ExpiringMap<u32> {
        ExpiringMap::new(
            &MapLimits {
                ttl: Duration::from_millis(100),
                max_entries: entries,
                max_bytes: bytes,
            },
            usize::MAX,
        )
    }

    #[test]
    fn take_is_one_shot_and_blocks_reinsertion_within_ttl() {
        let m = map(10, 10_000);
        assert_eq!(m.insert_new(1, b"a".to_vec(), 0).unwrap(), Insert::Inserted);
        assert_eq!(m.insert_new(1, b"b".to_vec(), 1).unwrap(), Insert::Occupied);
        assert_eq!(m.take(&1, 2).as_deref(), Some(&b"a"[..]));
        assert_eq!(m.take(&1, 3), None);
        assert_eq!(m.insert_new(1, b"c".to_vec(), 4).unwrap(), Insert::Occupied);
        // Past the TTL the key is free again.
        assert_eq!(
            m.insert_new(1, b"d".to_vec(), 100).unwrap(),
            Insert::Inserted
        );
    }

    #[test]
    fn expired_entries_are_never_returned() {
        let m = map(10, 10_000);
        m.insert_new(1, b"a".to_vec(), 0).unwrap();
        assert_eq!(m.take(&1, 100), None);
        m.put(2, b"b".to_vec(), 0).unwrap();
        assert_eq!(m.get_refresh(&2, 100), None);
        assert_eq!(m.swap(2, b"c".to_vec(), 100).unwrap(), None);
    }

    #[test]
    fn evicts_closest_to_expiry_when_full_and_counts_it() {
        let m = map(3, 10_000);
        for k in 0..5u32 {
            m.insert_new(k, vec![1], u64::from(k)).unwrap();
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.evictions(), 2);
        assert_eq!(m.take(&0, 5), None);
        assert!(m.take(&4, 5).is_some());
    }

    #[test]
    fn expired_entries_make_room_without_counting_evictions() {
        let m = map(2, 10_000);
        m.insert_new(1, vec![1], 0).unwrap();
        m.insert_new(2, vec![1], 0).unwrap();
        m.insert_new(3, vec![1], 200).unwrap();
        assert_eq!(m.evictions(), 0);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn byte_bound_holds_and_oversized_values_are_refused() {
        let per_entry = Slot::cost::<u32>(100);
        let m = map(1000, per_entry * 4);
        for k in 0..10u32 {
            m.insert_new(k, vec![0; 100], 0).unwrap();
        }
        assert!(m.bytes() <= per_entry * 4);
        assert_eq!(m.len(), 4);
        assert!(matches!(
            m.insert_new(99, vec![0; per_entry * 4], 0),
            Err(StoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn refresh_extends_life_and_queue_stays_bounded() {
        let m = map(10, 10_000);
        m.put(1, b"s".to_vec(), 0).unwrap();
        for now in 1..1000 {
            assert!(m.get_refresh(&1, now).is_some());
        }
        assert!(m.get_refresh(&1, 1050).is_some());
        let queue_len = lock(&m.shards[0]).queue.len();
        assert!(queue_len <= 2 + 64 + 1, "queue grew to {queue_len}");
    }

    #[test]
    fn purge_skips_stale_queue_elements_without_dropping_live_entries() {
        let m = map(10, 10_000);
        m.put(1, b"a".to_vec(), 0).unwrap();
        m.put(1, b"b".to_vec(), 50).unwrap();
        // The first queue element (expiry 100) is stale; the entry lives until 150.
        assert_eq!(
            m.swap(1, b"c".to_vec(), 120).unwrap().as_deref(),
            Some(&b"b"[..])
        );
    }

    #[test]
    fn reinserting_over_an_expired_entry_keeps_byte_count_exact() {
        let m = map(10, 10_000);
        m.insert_new(1, vec![0; 10], 0).unwrap();
        m.insert_new(1, vec![0; 20], 500).unwrap();
        assert_eq!(m.bytes(), Slot::cost::<u32>(20));
    }

    /// Runs `update` with a closure that records what it saw and returns `change`.
    fn update(m: &ExpiringMap<u32>, key: u32, now: u64, change: Change) -> Option<Vec<u8>> {
        m.update(key, now, |seen| Ok((change, seen.map(<[u8]>::to_vec))))
            .unwrap()
    }

    #[test]
    fn update_sees_the_live_value_and_applies_the_change() {
        let m = map(10, 10_000);
        assert_eq!(update(&m, 1, 0, Change::Keep), None);
        assert_eq!(m.len(), 0, "keeping an absent key creates nothing");
        assert_eq!(update(&m, 1, 0, Change::Put(b"a".to_vec())), None);
        assert_eq!(
            update(&m, 1, 10, Change::Put(b"b".to_vec())),
            Some(b"a".to_vec())
        );
        assert_eq!(update(&m, 1, 20, Change::Remove), Some(b"b".to_vec()));
        assert_eq!(update(&m, 1, 30, Change::Keep), None);
        assert_eq!(m.bytes(), 0);
    }

    #[test]
    fn update_keep_extends_the_ttl_and_expired_values_are_unseen() {
        let m = map(10, 10_000);
        update(&m, 1, 0, Change::Put(b"a".to_vec()));
        // Kept at 90: lives until 190.
        assert_eq!(update(&m, 1, 90, Change::Keep), Some(b"a".to_vec()));
        assert_eq!(update(&m, 1, 150, Change::Keep), Some(b"a".to_vec()));
        assert_eq!(update(&m, 1, 250, Change::Keep), None);
        assert_eq!(m.len(), 0, "the expired entry was purged");
    }

    #[test]
    fn update_leaves_the_map_unchanged_on_error_or_oversized_put() {
        let per_entry = Slot::cost::<u32>(1);
        let m = map(10, per_entry * 4);
        update(&m, 1, 0, Change::Put(b"a".to_vec()));
        let failed = m.update(1, 1, |_| -> Result<(Change, ()), _> {
            Err(StoreError::Corrupt("test".to_owned()))
        });
        assert!(failed.is_err());
        let oversized = m.update(1, 1, |_| Ok((Change::Put(vec![0; per_entry * 4]), ())));
        assert!(matches!(oversized, Err(StoreError::TooLarge { .. })));
        assert_eq!(m.get_refresh(&1, 2).as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn update_put_respects_bounds_and_counts_evictions() {
        let m = map(2, 10_000);
        for k in 0..4u32 {
            update(&m, k, u64::from(k), Change::Put(vec![1]));
        }
        assert_eq!(m.len(), 2);
        assert_eq!(m.evictions(), 2);
        // Replacing a present key evicts nothing.
        update(&m, 3, 5, Change::Put(vec![2]));
        assert_eq!(m.evictions(), 2);
    }

    #[test]
    fn bytes_return_to_zero_after_removals() {
        let m = map(10, 10_000);
        m.put(1, b"abc".to_vec(), 0).unwrap();
        m.insert_new(2, b"de".to_vec(), 0).unwrap();
        m.take(&2, 1);
        m.remove(&1, 1);
        m.remove(&2, 1);
        assert_eq!(m.bytes(), 0);
        assert_eq!(m.len(), 0);
    }
}
