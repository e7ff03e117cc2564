//! Opaque keyset cursors for newest-first lists ordered by (`created_at`, `id`).
//!
//! A cursor is `<created_at in unix microseconds>.<id in simple hex>` (1 to 16 digits, a dot
//! and 32 lower-case hex digits, as the document says): clients treat it as opaque text and
//! send back what `meta.nextCursor` gave them.

use crate::error::ApiError;
use chrono::{DateTime, FixedOffset};
use uuid::Uuid;

/// The cursor after a row with this `created_at` and `id`.
pub fn encode(created_at: DateTime<FixedOffset>, id: Uuid) -> String {
    format!("{}.{}", created_at.timestamp_micros(), id.simple())
}

/// The position a cursor points after; 422 naming `cursor` when it is not one of ours.
pub fn decode<I: From<Uuid>>(text: &str) -> Result<(DateTime<FixedOffset>, I), ApiError> {
    let invalid = || ApiError::invalid("cursor", "cursor: not a cursor given by this API");
    let (micros, id) = text.split_once('.').ok_or_else(invalid)?;
    let well_formed = (1..=16).contains(&micros.len())
        && micros.bytes().all(|b| b.is_ascii_digit())
        && id.len() == 32
        && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(invalid());
    }
    let created_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let id = Uuid::try_parse(id).map_err(|_| invalid())?;
    Ok((created_at.fixed_offset(), id.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_to_the_microsecond() {
        let at = DateTime::parse_from_rfc3339("2026-11-29T10:11:12.345678+02:00").expect("time");
        let id = Uuid::now_v7();
        assert_eq!(decode::<Uuid>(&encode(at, id)).expect("decodes"), (at, id));
        assert!(decode::<Uuid>("garbage").is_err());
    }
}
