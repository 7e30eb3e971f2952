//! What bonenfant knows of the two things it depends on, the ENT and the session store:
//! for each, the state its latest observation left (`up`, `down`, or `unknown` before
//! the first), when that state began, the last success, the last failure and its code.
//!
//! Observations come from real traffic (every upstream exchange reports through
//! [`crate::proxy::Upstream`]; a summary event with `store.unavailable` reports the
//! store) and from a light periodic probe (`crate::proxy::serve`), so an idle proxy
//! still notices an outage. `docs/operations.md` says what readiness makes of them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::code::Code;
use crate::session::{Clock, SystemClock};

/// State changes kept for the status page's incidents (both dependencies together).
const CHANGES_KEPT: usize = 32;

/// A dependency bonenfant watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dependency {
    /// The upstream CAS server.
    Ent,
    /// The session store (memory never fails; Redis may).
    Store,
}

impl Dependency {
    pub const ALL: [Dependency; 2] = [Dependency::Ent, Dependency::Store];

    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::Ent => "ent",
            Dependency::Store => "store",
        }
    }
}

/// What the latest observation of a dependency said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Nothing observed yet.
    Unknown,
    Up,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => State::Up,
            2 => State::Down,
            _ => State::Unknown,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            State::Unknown => 0,
            State::Up => 1,
            State::Down => 2,
        }
    }
}

/// A copy of one dependency's figures. Times are Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DependencyView {
    pub dependency: Dependency,
    pub state: State,
    /// When the current state began (the first observation that gave it).
    pub since_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    /// The code of the last failure.
    pub last_error: Option<Code>,
}

/// A dependency going down or coming back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub at_ms: u64,
    pub dependency: Dependency,
    pub state: State,
    /// Why it went down.
    pub code: Option<Code>,
}

/// The health of the ENT and the store. Cheap to clone (shared inside); fed from any
/// thread without blocking but for the rare failure.
#[derive(Clone, Debug, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    clock: SystemClock,
    ent: Tracker,
    store: Tracker,
    changes: Mutex<VecDeque<Change>>,
}

/// One dependency. 0 in a time field means "never".
#[derive(Debug, Default)]
struct Tracker {
    state: AtomicU8,
    since_ms: AtomicU64,
    last_success_ms: AtomicU64,
    last_failure_ms: AtomicU64,
    last_error: Mutex<Option<Code>>,
}

// === impl Health ===

impl Health {
    /// `dependency` answered as it should.
    pub fn succeeded(&self, dependency: Dependency) {
        let now = self.inner.clock.now_ms();
        let tracker = self.tracker(dependency);
        // Every request reports: write only what changed, so the hot path mostly reads.
        if tracker.last_success_ms.load(Ordering::Relaxed) != now {
            tracker.last_success_ms.store(now, Ordering::Relaxed);
        }
        if State::from_u8(tracker.state.load(Ordering::Acquire)) != State::Up {
            self.enter(dependency, State::Up, None, now);
        }
    }

    /// `dependency` failed with `code`.
    pub fn failed(&self, dependency: Dependency, code: Code) {
        let now = self.inner.clock.now_ms();
        let tracker = self.tracker(dependency);
        tracker.last_failure_ms.store(now, Ordering::Relaxed);
        *tracker
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(code);
        if State::from_u8(tracker.state.load(Ordering::Acquire)) != State::Down {
            self.enter(dependency, State::Down, Some(code), now);
        }
    }

    /// The latest state of `dependency`.
    pub fn state(&self, dependency: Dependency) -> State {
        State::from_u8(self.tracker(dependency).state.load(Ordering::Acquire))
    }

    /// When `dependency` was last observed, success or failure (Unix ms; 0: never).
    pub fn last_observed_ms(&self, dependency: Dependency) -> u64 {
        let tracker = self.tracker(dependency);
        tracker
            .last_success_ms
            .load(Ordering::Relaxed)
            .max(tracker.last_failure_ms.load(Ordering::Relaxed))
    }

    pub fn view(&self, dependency: Dependency) -> DependencyView {
        let tracker = self.tracker(dependency);
        let time = |field: &AtomicU64| Some(field.load(Ordering::Relaxed)).filter(|&t| t != 0);
        DependencyView {
            dependency,
            state: self.state(dependency),
            since_ms: time(&tracker.since_ms),
            last_success_ms: time(&tracker.last_success_ms),
            last_failure_ms: time(&tracker.last_failure_ms),
            last_error: *tracker
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// The latest state changes, oldest first (at most [`CHANGES_KEPT`]).
    pub fn changes(&self) -> Vec<Change> {
        self.inner
            .changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Unix milliseconds by the clock the observations are stamped with.
    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    fn tracker(&self, dependency: Dependency) -> &Tracker {
        match dependency {
            Dependency::Ent => &self.inner.ent,
            Dependency::Store => &self.inner.store,
        }
    }

    /// Moves to `state` unless a concurrent observation already did, and tells it once.
    fn enter(&self, dependency: Dependency, state: State, code: Option<Code>, now: u64) {
        let tracker = self.tracker(dependency);
        let before = State::from_u8(tracker.state.swap(state.to_u8(), Ordering::AcqRel));
        if before == state {
            return;
        }
        tracker.since_ms.store(now, Ordering::Relaxed);
        match (state, code) {
            (State::Down, Some(code)) => {
                tracing::warn!(dependency = dependency.as_str(), %code, "dependency down");
            }
            _ if before == State::Down => {
                tracing::info!(dependency = dependency.as_str(), "dependency back up");
            }
            // Unknown → up at startup is no news.
            _ => return,
        }
        let mut changes = self
            .inner
            .changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if changes.len() == CHANGES_KEPT {
            changes.pop_front();
        }
        changes.push_back(Change {
            at_ms: now,
            dependency,
            state,
            code,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_the_latest_observation_and_keeps_both_times() {
        let health = Health::default();
        assert_eq!(health.state(Dependency::Ent), State::Unknown);
        assert_eq!(health.view(Dependency::Ent).last_success_ms, None);

        health.succeeded(Dependency::Ent);
        assert_eq!(health.state(Dependency::Ent), State::Up);
        health.failed(Dependency::Ent, Code::ProxyUpstreamConnect);
        let view = health.view(Dependency::Ent);
        assert_eq!(view.state, State::Down);
        assert!(view.last_success_ms.is_some() && view.last_failure_ms.is_some());
        assert_eq!(view.last_error, Some(Code::ProxyUpstreamConnect));
        assert_eq!(health.state(Dependency::Store), State::Unknown);

        health.succeeded(Dependency::Ent);
        let view = health.view(Dependency::Ent);
        assert_eq!(view.state, State::Up);
        // The failure stays on record after the recovery.
        assert_eq!(view.last_error, Some(Code::ProxyUpstreamConnect));
    }

    #[test]
    fn changes_are_told_once_each_and_bounded() {
        let health = Health::default();
        health.succeeded(Dependency::Store);
        assert!(health.changes().is_empty(), "unknown → up is no change");
        health.failed(Dependency::Store, Code::StoreUnavailable);
        health.failed(Dependency::Store, Code::StoreUnavailable);
        health.succeeded(Dependency::Store);
        let changes = health.changes();
        assert_eq!(
            changes
                .iter()
                .map(|c| (c.dependency, c.state, c.code))
                .collect::<Vec<_>>(),
            [
                (Dependency::Store, State::Down, Some(Code::StoreUnavailable)),
                (Dependency::Store, State::Up, None),
            ]
        );
        for _ in 0..CHANGES_KEPT {
            health.failed(Dependency::Ent, Code::ProxyUpstreamTimeout);
            health.succeeded(Dependency::Ent);
        }
        assert_eq!(health.changes().len(), CHANGES_KEPT);
    }
}
