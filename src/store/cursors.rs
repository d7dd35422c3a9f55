//! The `cursors` table: per user and side, the opaque token that lets the next pass ask only for
//! what changed (a Google sync token, a CalDAV sync token or ctag, a Cybozu marker).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{unix, user_must_exist, Failure, Result, Store, UserId};

db_enum! {
    /// A side of a user's sync.
    pub enum Side {
        Cybozu = "cybozu",
        Google = "google",
        Caldav = "caldav",
    }
}

impl Store {
    pub fn cursor(&self, user_id: UserId, side: Side) -> Result<Option<String>> {
        self.read("reading a sync cursor", |db| {
            Ok(db
                .query_row(
                    "SELECT cursor FROM cursors WHERE user_id = ?1 AND side = ?2",
                    params![user_id, side],
                    |row| row.get(0),
                )
                .optional()?)
        })
    }

    pub fn set_cursor(
        &self,
        user_id: UserId,
        side: Side,
        cursor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write("saving a sync cursor", |tx| {
            tx.execute(
                "INSERT INTO cursors (user_id, side, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, side) DO UPDATE SET
                     cursor = excluded.cursor, updated_at = excluded.updated_at",
                params![user_id, side, cursor, unix(now)],
            )
            .map_err(|e| user_must_exist(Failure::from(e), user_id))?;
            Ok(())
        })
    }

    /// Forgets one side's cursor (e.g. after Google's `410 Gone`), so the next pass lists in full.
    pub fn clear_cursor(&self, user_id: UserId, side: Side) -> Result<bool> {
        self.write("clearing a sync cursor", |tx| {
            Ok(tx.execute(
                "DELETE FROM cursors WHERE user_id = ?1 AND side = ?2",
                params![user_id, side],
            )? > 0)
        })
    }

    pub fn clear_cursors(&self, user_id: UserId) -> Result<usize> {
        self.write("clearing sync cursors", |tx| {
            Ok(tx.execute("DELETE FROM cursors WHERE user_id = ?1", [user_id])?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at, memory_store};
    use crate::store::StoreError;

    #[test]
    fn cursors_are_per_user_and_side() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(1, "a", "", now).unwrap();
        store.upsert_user(2, "b", "", now).unwrap();
        store.set_cursor(1, Side::Google, "g1", now).unwrap();
        store.set_cursor(1, Side::Google, "g2", now).unwrap();
        store.set_cursor(1, Side::Cybozu, "c1", now).unwrap();
        store.set_cursor(2, Side::Google, "other", now).unwrap();
        assert_eq!(
            store.cursor(1, Side::Google).unwrap().as_deref(),
            Some("g2")
        );
        assert_eq!(store.cursor(1, Side::Caldav).unwrap(), None);

        assert!(store.clear_cursor(1, Side::Google).unwrap());
        assert_eq!(store.cursor(1, Side::Google).unwrap(), None);
        assert_eq!(
            store.cursor(1, Side::Cybozu).unwrap().as_deref(),
            Some("c1")
        );
        assert_eq!(store.clear_cursors(1).unwrap(), 1);
        assert_eq!(
            store.cursor(2, Side::Google).unwrap().as_deref(),
            Some("other")
        );
    }

    #[test]
    fn a_cursor_needs_its_user() {
        let store = memory_store();
        assert!(matches!(
            store.set_cursor(9, Side::Google, "x", at("2026-11-25T01:00:00Z")),
            Err(StoreError::NoSuchUser(9))
        ));
    }
}
