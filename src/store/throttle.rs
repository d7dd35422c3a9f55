//! The `login_throttle` table: failed logins counted per login name or client address in a fixed
//! window, so that password guessing through the login screen slows to a crawl.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, OptionalExtension};

use super::{unix, unix_before, Result, Store};

impl Store {
    /// Counts a failed login for `key`; a window older than `window` starts over. Returns the
    /// failures in the current window.
    pub fn record_login_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<u32> {
        self.write("recording a failed login", |tx| {
            // Every SET expression sees the row as it was, so both CASEs test the old window.
            Ok(tx.query_row(
                "INSERT INTO login_throttle (key, failures, window_start) VALUES (?1, 1, ?2)
                 ON CONFLICT (key) DO UPDATE SET
                     failures = CASE WHEN window_start <= ?3 THEN 1 ELSE failures + 1 END,
                     window_start = CASE WHEN window_start <= ?3 THEN excluded.window_start
                                         ELSE window_start END
                 RETURNING failures",
                params![key, unix(now), unix_before(now, window)],
                |row| row.get(0),
            )?)
        })
    }

    /// Forgets the failures of `key` (after a successful login).
    pub fn clear_login_failures(&self, key: &str) -> Result<()> {
        self.write("clearing failed logins", |tx| {
            tx.execute("DELETE FROM login_throttle WHERE key = ?1", [key])?;
            Ok(())
        })
    }

    /// Whether `key` has failed `max_failures` times or more in a window still running.
    pub fn is_login_throttled(
        &self,
        key: &str,
        max_failures: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let failures: Option<u32> = self.read("reading failed logins", |db| {
            Ok(db
                .query_row(
                    "SELECT failures FROM login_throttle WHERE key = ?1 AND window_start > ?2",
                    params![key, unix_before(now, window)],
                    |row| row.get(0),
                )
                .optional()?)
        })?;
        Ok(failures.is_some_and(|failures| failures >= max_failures))
    }

    /// Deletes counts whose window has ended; returns how many.
    pub fn prune_login_throttle(&self, now: DateTime<Utc>, window: Duration) -> Result<usize> {
        self.write("pruning failed logins", |tx| {
            Ok(tx.execute(
                "DELETE FROM login_throttle WHERE window_start <= ?1",
                [unix_before(now, window)],
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at, memory_store};

    #[test]
    fn throttles_after_max_failures_within_the_window() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        let window = Duration::minutes(15);
        for n in 1..=4 {
            let now = t0 + Duration::minutes(n);
            assert_eq!(
                store
                    .record_login_failure("takahashi", now, window)
                    .unwrap(),
                n as u32
            );
            assert!(!store
                .is_login_throttled("takahashi", 5, window, now)
                .unwrap());
        }
        let now = t0 + Duration::minutes(5);
        assert_eq!(
            store
                .record_login_failure("takahashi", now, window)
                .unwrap(),
            5
        );
        assert!(store
            .is_login_throttled("takahashi", 5, window, now)
            .unwrap());
        assert!(!store
            .is_login_throttled("192.0.2.1", 5, window, now)
            .unwrap());

        // The window runs from the first failure; once it has passed the key is free again.
        let after = t0 + Duration::minutes(1) + window;
        assert!(!store
            .is_login_throttled("takahashi", 5, window, after)
            .unwrap());
        assert_eq!(
            store
                .record_login_failure("takahashi", after, window)
                .unwrap(),
            1
        );
    }

    #[test]
    fn a_successful_login_clears_the_count() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        let window = Duration::minutes(15);
        for _ in 0..5 {
            store.record_login_failure("k", now, window).unwrap();
        }
        assert!(store.is_login_throttled("k", 5, window, now).unwrap());
        store.clear_login_failures("k").unwrap();
        assert!(!store.is_login_throttled("k", 5, window, now).unwrap());
    }

    #[test]
    fn prune_removes_ended_windows() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        let window = Duration::minutes(15);
        store.record_login_failure("old", t0, window).unwrap();
        store
            .record_login_failure("new", t0 + Duration::minutes(10), window)
            .unwrap();
        let now = t0 + Duration::minutes(20);
        assert_eq!(store.prune_login_throttle(now, window).unwrap(), 1);
        assert_eq!(store.record_login_failure("new", now, window).unwrap(), 2);
    }
}
