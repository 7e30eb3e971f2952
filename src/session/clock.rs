//! Where the stores read the time. Injected so tests advance it instead of sleeping
//! (no timed assertions: the machine is noisy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A duration in whole milliseconds, saturating (the unit of every timestamp and TTL
/// bonenfant keeps).
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A source of Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// Wall time read once, then advanced by a monotonic clock: expiry never runs backwards
/// when the system clock is stepped, and timestamps stay close to Unix time.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    start_unix_ms: u64,
    start: Instant,
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

// === impl SystemClock ===

impl SystemClock {
    pub fn new() -> Self {
        let start_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, duration_ms);
        Self {
            start_unix_ms,
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.start_unix_ms
            .saturating_add(duration_ms(self.start.elapsed()))
    }
}

// === impl ManualClock ===

impl ManualClock {
    /// A clock reading `start_ms`; clones share the same time.
    pub fn new(start_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start_ms)))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(duration_ms(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new(1_000);
        let other = clock.clone();
        clock.advance(Duration::from_millis(500));
        assert_eq!(other.now_ms(), 1_500);
    }

    #[test]
    fn system_clock_is_near_unix_time_and_monotonic() {
        let clock = SystemClock::new();
        let a = clock.now_ms();
        let b = clock.now_ms();
        assert!(b >= a);
        assert!(a > 1_600_000_000_000);
    }
}
