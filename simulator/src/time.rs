//! Timestamp formats used in provider responses.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

/// `2024-11-26T11:49:00Z`: post and comment times.
pub(crate) fn iso_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2024-06-06T00:54:28.102Z`: message times, `lastUpdated`, `nextUpdate`, ledger entries.
pub(crate) fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A duration in (possibly fractional) seconds as a chrono delta, saturating on overflow.
pub(crate) fn delta_secs(seconds: f64) -> TimeDelta {
    TimeDelta::try_milliseconds((seconds * 1000.0) as i64).unwrap_or(TimeDelta::MAX)
}
