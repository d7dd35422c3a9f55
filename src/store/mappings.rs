//! The `mappings` table: which remote event each Cybozu event of a user is paired with, and the
//! versions last seen or written on each side (echo suppression and change detection).

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::{constraint_violation, user_must_exist, Failure, Result, Store, StoreError, UserId};

/// One paired event.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub cybozu_id: i64,
    /// The Cybozu `version` (UNIX time of the last change) last seen or written.
    pub cybozu_version: i64,
    pub remote_id: String,
    /// The Google `etag` or CalDAV `ETag` last seen or written.
    pub remote_etag: Option<String>,
    /// Whatever else the engine keeps per pair (JSON).
    pub extra: serde_json::Value,
}

const MAPPING_COLUMNS: &str = "cybozu_id, cybozu_version, remote_id, remote_etag, extra";

fn mapping_from_row(row: &Row<'_>) -> rusqlite::Result<Mapping> {
    let extra: String = row.get("extra")?;
    let extra = serde_json::from_str(&extra).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(Mapping {
        cybozu_id: row.get("cybozu_id")?,
        cybozu_version: row.get("cybozu_version")?,
        remote_id: row.get("remote_id")?,
        remote_etag: row.get("remote_etag")?,
        extra,
    })
}

/// Drops a user's mappings and cursors, so the next pass starts over (and adopts before it copies).
/// Deletes a user's pairs and cursors; returns how many rows went (0: there was nothing to lose).
pub(super) fn drop_sync_state(tx: &Transaction<'_>, user_id: UserId) -> rusqlite::Result<usize> {
    let mappings = tx.execute("DELETE FROM mappings WHERE user_id = ?1", [user_id])?;
    let cursors = tx.execute("DELETE FROM cursors WHERE user_id = ?1", [user_id])?;
    Ok(mappings + cursors)
}

impl Store {
    pub fn mapping_for_cybozu(&self, user_id: UserId, cybozu_id: i64) -> Result<Option<Mapping>> {
        self.read("reading a mapping", |db| {
            Ok(db
                .query_row(
                    &format!(
                        "SELECT {MAPPING_COLUMNS} FROM mappings WHERE user_id = ?1 AND cybozu_id = ?2"
                    ),
                    params![user_id, cybozu_id],
                    mapping_from_row,
                )
                .optional()?)
        })
    }

    pub fn mapping_for_remote(&self, user_id: UserId, remote_id: &str) -> Result<Option<Mapping>> {
        self.read("reading a mapping", |db| {
            Ok(db
                .query_row(
                    &format!(
                        "SELECT {MAPPING_COLUMNS} FROM mappings WHERE user_id = ?1 AND remote_id = ?2"
                    ),
                    params![user_id, remote_id],
                    mapping_from_row,
                )
                .optional()?)
        })
    }

    /// Every mapping of the user, by Cybozu id.
    pub fn mappings_for_user(&self, user_id: UserId) -> Result<Vec<Mapping>> {
        self.read("listing mappings", |db| {
            let mut statement = db.prepare(&format!(
                "SELECT {MAPPING_COLUMNS} FROM mappings WHERE user_id = ?1 ORDER BY cybozu_id"
            ))?;
            let mappings = statement
                .query_map([user_id], mapping_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(mappings)
        })
    }

    /// Inserts or replaces the mapping of `mapping.cybozu_id`. A remote id already paired with
    /// another Cybozu event of the user is refused ([`StoreError::RemoteIdTaken`]): pairs are one-to-one.
    pub fn put_mapping(&self, user_id: UserId, mapping: &Mapping) -> Result<()> {
        let extra = mapping.extra.to_string();
        self.write("saving a mapping", |tx| {
            tx.execute(
                "INSERT INTO mappings (user_id, cybozu_id, cybozu_version, remote_id, remote_etag, extra)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (user_id, cybozu_id) DO UPDATE SET
                     cybozu_version = excluded.cybozu_version,
                     remote_id = excluded.remote_id,
                     remote_etag = excluded.remote_etag,
                     extra = excluded.extra",
                params![
                    user_id,
                    mapping.cybozu_id,
                    mapping.cybozu_version,
                    mapping.remote_id,
                    mapping.remote_etag,
                    extra
                ],
            )
            .map_err(Failure::from)
            .map_err(|failure| {
                if constraint_violation(&failure) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE) {
                    StoreError::RemoteIdTaken {
                        user_id,
                        remote_id: mapping.remote_id.clone(),
                    }
                    .into()
                } else {
                    user_must_exist(failure, user_id)
                }
            })?;
            Ok(())
        })
    }

    /// Forgets the remote etag a pair is known by (its copy was found changed meanwhile): the
    /// next write of the copy expects nothing, and any listing of it counts as a change.
    pub fn clear_remote_etag(&self, user_id: UserId, cybozu_id: i64) -> Result<bool> {
        self.write("forgetting a remote etag", |tx| {
            Ok(tx.execute(
                "UPDATE mappings SET remote_etag = NULL WHERE user_id = ?1 AND cybozu_id = ?2",
                params![user_id, cybozu_id],
            )? > 0)
        })
    }

    pub fn delete_mapping(&self, user_id: UserId, cybozu_id: i64) -> Result<bool> {
        self.write("deleting a mapping", |tx| {
            Ok(tx.execute(
                "DELETE FROM mappings WHERE user_id = ?1 AND cybozu_id = ?2",
                params![user_id, cybozu_id],
            )? > 0)
        })
    }

    /// Forgets every mapping and cursor of the user (a reset from the admin tools).
    pub fn clear_sync_state(&self, user_id: UserId) -> Result<()> {
        self.write("clearing a user's sync state", |tx| {
            drop_sync_state(tx, user_id)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at, memory_store};
    use crate::store::Side;

    fn mapping(cybozu_id: i64, remote_id: &str) -> Mapping {
        Mapping {
            cybozu_id,
            cybozu_version: 1_700_000_000 + cybozu_id,
            remote_id: remote_id.to_string(),
            remote_etag: Some(format!("\"etag-{cybozu_id}\"")),
            extra: serde_json::json!({"plan": "会議"}),
        }
    }

    #[test]
    fn put_get_update_delete() {
        let store = memory_store();
        store
            .upsert_user(42, "t", "", at("2026-11-25T01:00:00Z"))
            .unwrap();
        store.put_mapping(42, &mapping(7, "r7")).unwrap();
        store.put_mapping(42, &mapping(3, "r3")).unwrap();
        assert_eq!(
            store.mapping_for_cybozu(42, 7).unwrap(),
            Some(mapping(7, "r7"))
        );
        assert_eq!(
            store.mapping_for_remote(42, "r3").unwrap(),
            Some(mapping(3, "r3"))
        );
        assert_eq!(store.mapping_for_remote(43, "r3").unwrap(), None);

        let mut changed = mapping(7, "r7");
        changed.cybozu_version += 5;
        changed.remote_etag = None;
        changed.extra = serde_json::Value::Null;
        store.put_mapping(42, &changed).unwrap();
        let ids: Vec<i64> = store
            .mappings_for_user(42)
            .unwrap()
            .iter()
            .map(|m| m.cybozu_id)
            .collect();
        assert_eq!(ids, [3, 7]);
        assert_eq!(store.mapping_for_cybozu(42, 7).unwrap(), Some(changed));

        assert!(store.delete_mapping(42, 7).unwrap());
        assert!(!store.delete_mapping(42, 7).unwrap());
        assert_eq!(store.mapping_for_remote(42, "r7").unwrap(), None);
    }

    #[test]
    fn a_remote_id_pairs_with_one_cybozu_event_only() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", now).unwrap();
        store.upsert_user(43, "u", "", now).unwrap();
        store.put_mapping(42, &mapping(1, "same")).unwrap();
        let err = store.put_mapping(42, &mapping(2, "same")).unwrap_err();
        assert!(
            matches!(err, StoreError::RemoteIdTaken { user_id: 42, .. }),
            "{err}"
        );
        store.put_mapping(43, &mapping(2, "same")).unwrap();
    }

    #[test]
    fn a_mapping_needs_its_user() {
        let store = memory_store();
        assert!(matches!(
            store.put_mapping(9, &mapping(1, "r")),
            Err(StoreError::NoSuchUser(9))
        ));
    }

    #[test]
    fn clear_sync_state_forgets_mappings_and_cursors() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", now).unwrap();
        store.put_mapping(42, &mapping(1, "r")).unwrap();
        store.set_cursor(42, Side::Cybozu, "c", now).unwrap();
        store.clear_sync_state(42).unwrap();
        assert!(store.mappings_for_user(42).unwrap().is_empty());
        assert!(store.cursor(42, Side::Cybozu).unwrap().is_none());
    }
}
