//! Instants computed from waits that may come from outside (provider headers, settings):
//! saturating, never a panic on an absurd value.

use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// `start + wait`, or the latest representable instant when that overflows.
pub fn saturating_add(start: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(wait)
        .ok()
        .and_then(|wait| start.checked_add_signed(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_wait_saturates_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(
            saturating_add(now, Duration::from_secs(2)),
            now + TimeDelta::seconds(2)
        );
        assert_eq!(saturating_add(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            saturating_add(now, Duration::from_secs(100_000_000_000_000)),
            DateTime::<Utc>::MAX_UTC
        );
    }
}
