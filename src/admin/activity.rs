//! The recent past, for the status page and `/status`: validations and verdicts per
//! minute over the last hour, the same per collège (UAI), and recent incidents.
//!
//! Fed from the summary events ([`super::Metrics::record`]), like the counters, so the
//! page never disagrees with the trace. Everything is bounded (I5): sixty minutes,
//! [`MAX_ESTABLISHMENTS`] UAIs per minute (a forged `service` could name any), and
//! [`MAX_INCIDENTS`] incidents, repeats of one incident folded into one row. Nothing
//! here names a person: UAIs, verdicts and stable codes only.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::code::{Code, Side};
use crate::events::{FrontAction, PinOutcome, TraceEvent};
use crate::pupil::Uai;
use crate::verdict::Verdict;

/// Minutes kept: the page's "last hour".
pub const MINUTES: u64 = 60;

/// The window of the "current rate", in minutes.
pub const RATE_MINUTES: u64 = 5;

/// Distinct UAIs counted per minute; the rest are counted under no UAI.
pub const MAX_ESTABLISHMENTS: usize = 256;

/// Incidents kept.
pub const MAX_INCIDENTS: usize = 50;

/// A repeat of an incident within this many milliseconds of its last occurrence is
/// counted on the same row (a burst of `proxy.upstream_connect` is one incident).
const FOLD_MS: u64 = 5 * 60 * 1000;

/// What happened to the validations and logins of one collège, or of all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Validations answered (successes and failures).
    pub validations: u64,
    /// Per verdict, in [`Verdict::ALL`]'s order (failed validations are `unresolved`).
    #[serde(skip)]
    pub verdicts: [u64; 6],
    /// Pronote got another child than the one meant: `wrong_child` or
    /// `wrong_establishment`, delivered.
    pub wrong_landings: u64,
    /// Delivered right thanks to pinning (`retry`, `rewrite`, `reorder`).
    pub corrected: u64,
    /// The chooser page was shown.
    pub chooser: u64,
    /// The retry strategy gave up (the give-up page).
    pub gave_up: u64,
    /// Validations that failed (the ENT refused or could not be reached, …).
    pub failed: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.validations += other.validations;
        for (mine, theirs) in self.verdicts.iter_mut().zip(other.verdicts) {
            *mine += theirs;
        }
        self.wrong_landings += other.wrong_landings;
        self.corrected += other.corrected;
        self.chooser += other.chooser;
        self.gave_up += other.gave_up;
        self.failed += other.failed;
    }

    pub fn verdict(&self, verdict: Verdict) -> u64 {
        Verdict::ALL
            .iter()
            .position(|&v| v == verdict)
            .map_or(0, |i| self.verdicts[i])
    }
}

/// One recent incident: a wrong landing, a give-up, or an error that was not the
/// client's. `what` is a verdict name, `retry_gave_up` or a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub what: &'static str,
    pub side: Side,
    /// The collège whose Pronote asked, when known.
    pub uai: Option<UaiKey>,
    pub first_ms: u64,
    pub last_ms: u64,
    pub count: u64,
}

/// A UAI as eight bytes: fixed size, so a minute's map holds no heap string per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UaiKey([u8; 8]);

impl UaiKey {
    fn new(uai: &Uai) -> Option<Self> {
        uai.as_str().as_bytes().try_into().ok().map(UaiKey)
    }

    pub fn as_str(&self) -> &str {
        // Built from a parsed UAI: seven digits and a letter.
        std::str::from_utf8(&self.0).unwrap_or("?")
    }
}

impl Serialize for UaiKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One minute of traffic.
#[derive(Debug)]
struct Minute {
    /// Unix minute.
    minute: u64,
    all: Counts,
    by_uai: BTreeMap<UaiKey, Counts>,
}

/// The rings. Behind the metrics' mutex; each event touches one minute and maybe one
/// incident.
#[derive(Debug, Default)]
pub(super) struct Activity {
    minutes: VecDeque<Minute>,
    incidents: VecDeque<Incident>,
}

/// The last hour, summed, as the page and `/status` show it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LastHour {
    /// Validations per minute over the last [`RATE_MINUTES`] minutes.
    pub validations_per_minute: f64,
    /// The last [`RATE_MINUTES`] minutes.
    pub recent: Counts,
    /// The last [`MINUTES`] minutes.
    pub hour: Counts,
    /// Per collège over the last hour, most validations first; logins with no UAI
    /// (or past [`MAX_ESTABLISHMENTS`]) are not listed.
    pub by_uai: Vec<(UaiKey, Counts)>,
    /// Most recent first.
    pub incidents: Vec<Incident>,
}

/// Whether [`Activity::record`] would count `event`: the metrics take the lock only
/// then, so pass-through traffic (most requests) never waits on it.
pub(super) fn concerns(event: &TraceEvent) -> bool {
    let not_the_client = |code: Code| code.side() != Side::Client;
    match event {
        TraceEvent::Validate(_) | TraceEvent::Chooser(_) => true,
        TraceEvent::LoginRedirect(e) => {
            matches!(e.action, FrontAction::Chooser | FrontAction::GaveUp)
        }
        TraceEvent::Rejected(e) => not_the_client(e.code),
        TraceEvent::UpstreamError(e) => not_the_client(e.code),
        TraceEvent::PinRefused(e) => not_the_client(e.code),
        TraceEvent::RewriteRefused(e) => not_the_client(e.code),
        _ => false,
    }
}

// === impl Activity ===

impl Activity {
    /// Counts `event`, which happened at `now_ms`.
    pub(super) fn record(&mut self, event: &TraceEvent, now_ms: u64) {
        let mut counts = Counts::default();
        let uai = match event {
            TraceEvent::Validate(v) => {
                counts.validations = 1;
                if let Some(i) = Verdict::ALL.iter().position(|&x| x == v.verdict) {
                    counts.verdicts[i] = 1;
                }
                if let Some(code) = v.error {
                    counts.failed = 1;
                    self.error(code, v.uai_expected.as_ref(), now_ms);
                } else if matches!(v.verdict, Verdict::WrongChild | Verdict::WrongEstablishment) {
                    counts.wrong_landings = 1;
                    self.incident(
                        v.verdict.as_str(),
                        Side::Ent,
                        v.uai_expected.as_ref(),
                        now_ms,
                    );
                } else if matches!(
                    v.pin,
                    PinOutcome::Retry | PinOutcome::Rewrite | PinOutcome::Reorder
                ) {
                    counts.corrected = 1;
                }
                v.uai_expected.as_ref()
            }
            TraceEvent::LoginRedirect(e) => match e.action {
                FrontAction::Chooser => {
                    counts.chooser = 1;
                    e.uai_expected.as_ref()
                }
                FrontAction::GaveUp => {
                    counts.gave_up = 1;
                    self.incident("retry_gave_up", Side::Ent, e.uai_expected.as_ref(), now_ms);
                    e.uai_expected.as_ref()
                }
                _ => return,
            },
            TraceEvent::Chooser(e) => {
                counts.chooser = 1;
                e.uai_expected.as_ref()
            }
            TraceEvent::Rejected(e) => return self.error(e.code, None, now_ms),
            TraceEvent::UpstreamError(e) => return self.error(e.code, None, now_ms),
            TraceEvent::PinRefused(e) => return self.error(e.code, None, now_ms),
            TraceEvent::RewriteRefused(e) => return self.error(e.code, None, now_ms),
            _ => return,
        };
        let Some(minute) = self.minute(now_ms) else {
            return;
        };
        minute.all.add(&counts);
        if let Some(key) = uai.and_then(UaiKey::new) {
            let room = minute.by_uai.len() < MAX_ESTABLISHMENTS;
            if let Some(entry) = minute.by_uai.get_mut(&key) {
                entry.add(&counts);
            } else if room {
                minute.by_uai.insert(key, counts);
            }
        }
    }

    /// An error is an incident unless the client caused it (those are scanners and
    /// stale bookmarks: counted in the metrics, not paged).
    fn error(&mut self, code: Code, uai: Option<&Uai>, now_ms: u64) {
        if code.side() != Side::Client {
            self.incident(code.as_str(), code.side(), uai, now_ms);
        }
    }

    fn incident(&mut self, what: &'static str, side: Side, uai: Option<&Uai>, now_ms: u64) {
        let uai = uai.and_then(UaiKey::new);
        let repeat = self.incidents.iter_mut().find(|i| {
            i.what == what && i.uai == uai && now_ms.saturating_sub(i.last_ms) <= FOLD_MS
        });
        if let Some(incident) = repeat {
            incident.count += 1;
            incident.last_ms = incident.last_ms.max(now_ms);
            return;
        }
        if self.incidents.len() == MAX_INCIDENTS {
            // The one seen least recently goes.
            if let Some(oldest) =
                (0..self.incidents.len()).min_by_key(|&i| self.incidents[i].last_ms)
            {
                self.incidents.remove(oldest);
            }
        }
        self.incidents.push_back(Incident {
            what,
            side,
            uai,
            first_ms: now_ms,
            last_ms: now_ms,
            count: 1,
        });
    }

    /// The bucket of `now_ms`'s minute, dropping those older than an hour. Events
    /// come in time order but for a few racing threads: a late one goes to its own
    /// minute; one older than the hour is dropped.
    fn minute(&mut self, now_ms: u64) -> Option<&mut Minute> {
        let minute = now_ms / 60_000;
        self.expire(minute);
        if self
            .minutes
            .back()
            .is_some_and(|newest| minute + MINUTES <= newest.minute)
        {
            return None;
        }
        let at = self.minutes.partition_point(|m| m.minute < minute);
        if self.minutes.get(at).map_or(true, |m| m.minute != minute) {
            self.minutes.insert(
                at,
                Minute {
                    minute,
                    all: Counts::default(),
                    by_uai: BTreeMap::new(),
                },
            );
        }
        self.minutes.get_mut(at)
    }

    fn expire(&mut self, minute: u64) {
        while self
            .minutes
            .front()
            .is_some_and(|m| m.minute + MINUTES <= minute)
        {
            self.minutes.pop_front();
        }
    }

    /// The last hour as of `now_ms`.
    pub(super) fn last_hour(&self, now_ms: u64) -> LastHour {
        let minute = now_ms / 60_000;
        let mut hour = LastHour::default();
        let mut by_uai: BTreeMap<UaiKey, Counts> = BTreeMap::new();
        for m in &self.minutes {
            if m.minute + MINUTES <= minute {
                continue;
            }
            hour.hour.add(&m.all);
            if m.minute + RATE_MINUTES > minute {
                hour.recent.add(&m.all);
            }
            for (uai, counts) in &m.by_uai {
                if by_uai.len() < MAX_ESTABLISHMENTS || by_uai.contains_key(uai) {
                    by_uai.entry(*uai).or_default().add(counts);
                }
            }
        }
        hour.validations_per_minute = hour.recent.validations as f64 / RATE_MINUTES as f64;
        hour.by_uai = by_uai.into_iter().collect();
        hour.by_uai
            .sort_by(|a, b| b.1.validations.cmp(&a.1.validations).then(a.0.cmp(&b.0)));
        hour.incidents = self.incidents.iter().copied().collect();
        hour.incidents
            .sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then(a.what.cmp(b.what)));
        hour
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cas::Endpoint;
    use crate::events::{LatencyMs, LoginRedirect, UpstreamError, Validate};

    const T0: u64 = 1_700_000_000_000;
    const MINUTE: u64 = 60_000;

    fn validate(uai: &str, verdict: Verdict, pin: PinOutcome, error: Option<Code>) -> TraceEvent {
        TraceEvent::Validate(Validate {
            verdict,
            rule: crate::verdict::rule::NO_INTENT,
            endpoint: Endpoint::ServiceValidate,
            uai_expected: Uai::parse(uai),
            uai_asserted: None,
            pin,
            retries: 0,
            latency_ms: LatencyMs(Duration::ZERO),
            principal: None,
            pupil: None,
            session: None,
            error,
        })
    }

    fn login(uai: &str, action: FrontAction) -> TraceEvent {
        TraceEvent::LoginRedirect(LoginRedirect {
            uai_expected: Uai::parse(uai),
            session: None,
            bound: true,
            action,
            retries: 0,
            principal: None,
            latency_ms: LatencyMs(Duration::ZERO),
        })
    }

    #[test]
    fn counts_per_collège_over_the_hour_and_the_rate_over_five_minutes() {
        let mut a = Activity::default();
        a.record(
            &validate("0330101A", Verdict::Ok, PinOutcome::None, None),
            T0,
        );
        a.record(
            &validate("0330101A", Verdict::WrongChild, PinOutcome::None, None),
            T0 + MINUTE,
        );
        a.record(
            &validate("0330202B", Verdict::Ok, PinOutcome::Retry, None),
            T0 + 10 * MINUTE,
        );
        a.record(&login("0330202B", FrontAction::GaveUp), T0 + 10 * MINUTE);
        a.record(&login("0330202B", FrontAction::Chooser), T0 + 10 * MINUTE);
        a.record(&login("0330202B", FrontAction::Relogin), T0 + 10 * MINUTE);

        let hour = a.last_hour(T0 + 11 * MINUTE);
        assert_eq!(hour.hour.validations, 3);
        assert_eq!(hour.hour.verdict(Verdict::Ok), 2);
        assert_eq!(hour.hour.wrong_landings, 1);
        assert_eq!(hour.recent.validations, 1, "only minute 10 is within 5 min");
        assert!((hour.validations_per_minute - 0.2).abs() < 1e-9);
        let rows: Vec<(&str, Counts)> = hour.by_uai.iter().map(|(u, c)| (u.as_str(), *c)).collect();
        assert_eq!(rows[0].0, "0330101A");
        assert_eq!(rows[0].1.wrong_landings, 1);
        assert_eq!(rows[1].0, "0330202B");
        assert_eq!(
            (rows[1].1.corrected, rows[1].1.gave_up, rows[1].1.chooser),
            (1, 1, 1)
        );

        // An hour later, the first two minutes are gone.
        let later = a.last_hour(T0 + 61 * MINUTE + 1);
        assert_eq!(later.hour.validations, 1);
    }

    #[test]
    fn incidents_fold_repeats_and_skip_client_errors() {
        let mut a = Activity::default();
        let down = TraceEvent::UpstreamError(UpstreamError {
            code: Code::ProxyUpstreamConnect,
            endpoint: None,
            status: 502,
            latency_ms: LatencyMs(Duration::ZERO),
        });
        for n in 0..5 {
            a.record(&down, T0 + n * 1000);
        }
        a.record(
            &TraceEvent::Rejected(crate::events::Rejected {
                code: Code::CasTicketPrefix,
                endpoint: None,
                status: 400,
                latency_ms: LatencyMs(Duration::ZERO),
            }),
            T0,
        );
        a.record(
            &validate(
                "0330101A",
                Verdict::WrongEstablishment,
                PinOutcome::None,
                None,
            ),
            T0 + 9000,
        );
        let incidents = a.last_hour(T0 + 10_000).incidents;
        assert_eq!(incidents.len(), 2, "{incidents:?}");
        assert_eq!(incidents[0].what, "wrong_establishment");
        assert_eq!(
            incidents[0].uai.map(|u| u.as_str().to_owned()),
            Some("0330101A".into())
        );
        assert_eq!(incidents[1].what, "proxy.upstream_connect");
        assert_eq!(incidents[1].count, 5);
        assert_eq!(
            (incidents[1].first_ms, incidents[1].last_ms),
            (T0, T0 + 4000)
        );
        // Long after, the same code is a new incident.
        a.record(&down, T0 + FOLD_MS + 10_000);
        assert_eq!(a.last_hour(T0 + FOLD_MS + 10_000).incidents.len(), 3);
    }

    #[test]
    fn the_lock_is_skipped_only_for_what_counts_nothing() {
        let passthrough = TraceEvent::Passthrough(crate::events::Passthrough {
            endpoint: None,
            status: 200,
            latency_ms: LatencyMs(Duration::ZERO),
        });
        let client_error = TraceEvent::Rejected(crate::events::Rejected {
            code: Code::CasTicketPrefix,
            endpoint: None,
            status: 400,
            latency_ms: LatencyMs(Duration::ZERO),
        });
        let relogin = login("0330101A", FrontAction::Relogin);
        for skipped in [&passthrough, &client_error, &relogin] {
            assert!(!concerns(skipped));
            let mut a = Activity::default();
            a.record(skipped, T0);
            let hour = a.last_hour(T0);
            assert_eq!(hour.hour, Counts::default());
            assert!(hour.incidents.is_empty());
        }
        assert!(concerns(&validate(
            "0330101A",
            Verdict::Ok,
            PinOutcome::None,
            None
        )));
        assert!(concerns(&login("0330101A", FrontAction::GaveUp)));
    }

    #[test]
    fn everything_stays_bounded() {
        let mut a = Activity::default();
        for n in 0..(MAX_ESTABLISHMENTS as u64 + 10) {
            let uai = format!("{:07}A", 3_300_000 + n);
            a.record(
                &validate(&uai, Verdict::WrongChild, PinOutcome::None, None),
                T0,
            );
        }
        let hour = a.last_hour(T0);
        assert_eq!(hour.by_uai.len(), MAX_ESTABLISHMENTS);
        assert_eq!(hour.hour.validations, MAX_ESTABLISHMENTS as u64 + 10);
        assert_eq!(hour.incidents.len(), MAX_INCIDENTS);
        for n in 0..(2 * MINUTES) {
            a.record(
                &validate("0330101A", Verdict::Ok, PinOutcome::None, None),
                T0 + n * MINUTE,
            );
        }
        assert!(a.minutes.len() <= MINUTES as usize);
    }
}
