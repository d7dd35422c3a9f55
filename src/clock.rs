//! The one clock every binary reads: the real time, or `DNCS_NOW` (RFC 3339) when set,
//! so that tests of the sync window, token expiry and backups never depend on today's date.

use chrono::{DateTime, Utc};

/// The environment variable that pins the clock.
pub const NOW_VAR: &str = "DNCS_NOW";

/// The current time: `DNCS_NOW` when it is set and valid, else the system clock.
///
/// An unparsable `DNCS_NOW` is ignored with a warning rather than failing: it is a
/// test and diagnosis aid, and a typo in it must not stop a customer's sync.
pub fn now() -> DateTime<Utc> {
    match std::env::var(NOW_VAR) {
        Ok(text) if !text.trim().is_empty() => match parse_now(&text) {
            Some(pinned) => pinned,
            None => {
                log::warn!("{NOW_VAR}={text:?} is not an RFC 3339 time; using the system clock");
                Utc::now()
            }
        },
        _ => Utc::now(),
    }
}

fn parse_now(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_into_utc() {
        let t = parse_now("2026-11-25T10:00:00+09:00").expect("valid");
        assert_eq!(t.to_rfc3339(), "2026-11-25T01:00:00+00:00");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_now("yesterday").is_none());
    }
}
