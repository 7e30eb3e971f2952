//! The clock a report reads days and hours of day on. The trace is in UTC; the evening
//! peak a DSI looks for is in local time, so the report converts (`--tz`).

use std::fmt;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// A time zone a report can use without a time-zone database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Zone {
    /// Metropolitan France: UTC+1, and UTC+2 from the last Sunday of March to the last
    /// Sunday of October, both at 01:00 UTC (the EU rule).
    #[default]
    Paris,
    Utc,
    /// A fixed offset (overseas académies: `+04:00` for La Réunion, `-03:00` for Guyane).
    Fixed(UtcOffset),
}

/// A `--tz` value that is not a zone the report knows.
#[derive(Debug, thiserror::Error)]
#[error("unknown time zone {0:?}: give Europe/Paris, UTC or an offset such as +04:00")]
pub struct UnknownZone(String);

impl FromStr for Zone {
    type Err = UnknownZone;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownZone(text.to_owned());
        match text {
            "Europe/Paris" | "paris" | "Paris" => return Ok(Zone::Paris),
            "UTC" | "utc" | "Z" => return Ok(Zone::Utc),
            _ => {}
        }
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1, &text[1..]),
            Some(b'-') => (-1, &text[1..]),
            _ => return Err(unknown()),
        };
        let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
        let hours: i8 = hours.parse().map_err(|_| unknown())?;
        let minutes: i8 = minutes.parse().map_err(|_| unknown())?;
        // Real offsets run from -12:00 to +14:00.
        if !(0..=14).contains(&hours) || !(0..60).contains(&minutes) {
            return Err(unknown());
        }
        UtcOffset::from_hms(sign * hours, sign * minutes, 0)
            .map(Zone::Fixed)
            .map_err(|_| unknown())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Paris => f.write_str("Europe/Paris"),
            Zone::Utc => f.write_str("UTC"),
            Zone::Fixed(offset) => {
                let sign = if offset.is_negative() { '-' } else { '+' };
                write!(
                    f,
                    "{sign}{:02}:{:02}",
                    offset.whole_hours().unsigned_abs(),
                    offset.minutes_past_hour().unsigned_abs()
                )
            }
        }
    }
}

impl Zone {
    /// The offset from UTC in this zone at `at`.
    pub fn offset_at(self, at: OffsetDateTime) -> UtcOffset {
        match self {
            Zone::Utc => UtcOffset::UTC,
            Zone::Fixed(offset) => offset,
            Zone::Paris => {
                let at = at.to_offset(UtcOffset::UTC);
                let year = at.year();
                let summer = last_sunday_at_one_utc(year, Month::March)
                    ..last_sunday_at_one_utc(year, Month::October);
                let hours = if summer.contains(&at) { 2 } else { 1 };
                UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
            }
        }
    }

    /// `at` on this zone's clock.
    pub fn local(self, at: OffsetDateTime) -> OffsetDateTime {
        at.to_offset(self.offset_at(at))
    }

    /// Midnight starting `date` in this zone.
    fn midnight(self, date: Date) -> OffsetDateTime {
        let naive = PrimitiveDateTime::new(date, Time::MIDNIGHT);
        // The offset at that instant: read it at the UTC reading, then correct once (the
        // Paris switches happen at 01:00 UTC, never near local midnight).
        let guess = naive.assume_utc();
        naive.assume_offset(self.offset_at(guess))
    }

    /// A `--since`/`--until` bound: an RFC 3339 instant, or a `YYYY-MM-DD` day, which
    /// starts at midnight in this zone.
    pub fn parse_bound(self, text: &str) -> Result<OffsetDateTime, BadBound> {
        if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
            return Ok(at);
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(text, &format)
            .map(|date| self.midnight(date))
            .map_err(|_| BadBound(text.to_owned()))
    }
}

/// A `--since`/`--until` value that is neither a day nor an RFC 3339 instant.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is neither a day (2026-03-09) nor an instant (2026-03-09T17:00:00+01:00)")]
pub struct BadBound(String);

/// 01:00 UTC on the last Sunday of `month` of `year`: when EU clocks change.
fn last_sunday_at_one_utc(year: i32, month: Month) -> OffsetDateTime {
    let last_day = month.length(year);
    let last = Date::from_calendar_date(year, month, last_day).unwrap_or(Date::MIN);
    let back = last.weekday().number_days_from_sunday();
    let sunday = last - time::Duration::days(i64::from(back));
    debug_assert_eq!(sunday.weekday(), Weekday::Sunday);
    PrimitiveDateTime::new(sunday, Time::from_hms(1, 0, 0).unwrap_or(Time::MIDNIGHT)).assume_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn paris_follows_the_eu_summer_time_rule() {
        // 2026: summer time from 29 March to 25 October, 01:00 UTC.
        let hour = |ts| Zone::Paris.local(at(ts)).hour();
        assert_eq!(hour("2026-03-29T00:59:00Z"), 1);
        assert_eq!(hour("2026-03-29T01:00:00Z"), 3);
        assert_eq!(hour("2026-10-25T00:59:00Z"), 2);
        assert_eq!(hour("2026-10-25T01:00:00Z"), 2);
        assert_eq!(hour("2026-01-15T18:40:00Z"), 19);
        assert_eq!(hour("2026-06-15T17:40:00Z"), 19);
    }

    #[test]
    fn zones_parse_and_print() {
        for (text, printed) in [
            ("Europe/Paris", "Europe/Paris"),
            ("UTC", "UTC"),
            ("+04:00", "+04:00"),
            ("-03:00", "-03:00"),
            ("+05:30", "+05:30"),
        ] {
            assert_eq!(text.parse::<Zone>().unwrap().to_string(), printed);
        }
        for bad in ["", "Mars/Olympus", "+25:00", "+15", "-1:75", "4", "+x"] {
            assert!(bad.parse::<Zone>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_day_bound_starts_at_local_midnight() {
        let since = Zone::Paris.parse_bound("2026-03-09").unwrap();
        assert_eq!(since, at("2026-03-08T23:00:00Z"));
        let since = Zone::Paris.parse_bound("2026-07-01").unwrap();
        assert_eq!(since, at("2026-06-30T22:00:00Z"));
        let instant = Zone::Paris.parse_bound("2026-03-09T17:00:00Z").unwrap();
        assert_eq!(instant, at("2026-03-09T17:00:00Z"));
        assert!(Zone::Utc.parse_bound("yesterday").is_err());
    }
}
