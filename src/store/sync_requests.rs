//! The `sync_requests` table, the 「ただちに同期する」 queue: the CGI records a request, and
//! whichever `dncs-sync` run comes first claims and serves it.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, OptionalExtension};

use super::{read_time, unix, unix_before, user_must_exist, Failure, Result, Store, UserId};

/// A user's request for a pass now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub id: i64,
    pub user_id: UserId,
    pub requested_at: DateTime<Utc>,
}

impl Store {
    /// Queues a request; a request of the user that no run has claimed yet is reused, so
    /// pressing the button twice asks for one pass. Returns the request's id.
    pub fn enqueue_sync_request(&self, user_id: UserId, now: DateTime<Utc>) -> Result<i64> {
        self.write("queueing a sync request", |tx| {
            let waiting: Option<i64> = tx
                .query_row(
                    "SELECT id FROM sync_requests
                     WHERE user_id = ?1 AND served_at IS NULL AND taken_at IS NULL
                     ORDER BY id LIMIT 1",
                    [user_id],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(id) = waiting {
                return Ok(id);
            }
            tx.execute(
                "INSERT INTO sync_requests (user_id, requested_at) VALUES (?1, ?2)",
                params![user_id, unix(now)],
            )
            .map_err(|e| user_must_exist(Failure::from(e), user_id))?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Marks every unserved request of one user served (a pass for that user just ran).
    pub fn serve_sync_requests_of(&self, user_id: UserId, now: DateTime<Utc>) -> Result<usize> {
        self.write("serving a user's sync requests", |tx| {
            Ok(tx.execute(
                "UPDATE sync_requests SET served_at = ?2 WHERE user_id = ?1 AND served_at IS NULL",
                params![user_id, unix(now)],
            )?)
        })
    }

    /// Claims every unserved request, oldest first. A request claimed by a run that has not
    /// served it within `retake_after` (the run died) is claimed again.
    pub fn take_pending_sync_requests(
        &self,
        now: DateTime<Utc>,
        retake_after: Duration,
    ) -> Result<Vec<SyncRequest>> {
        let mut taken = self.write("claiming sync requests", |tx| {
            let mut statement = tx.prepare(
                "UPDATE sync_requests SET taken_at = ?1
                 WHERE served_at IS NULL AND (taken_at IS NULL OR taken_at <= ?2)
                 RETURNING id, user_id, requested_at",
            )?;
            let taken = statement
                .query_map(params![unix(now), unix_before(now, retake_after)], |row| {
                    Ok(SyncRequest {
                        id: row.get("id")?,
                        user_id: row.get("user_id")?,
                        requested_at: read_time(row, "requested_at")?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(taken)
        })?;
        taken.sort_by_key(|request| request.id);
        Ok(taken)
    }

    /// Marks claimed requests as served once their user's pass has finished.
    pub fn mark_sync_requests_served(&self, ids: &[i64], now: DateTime<Utc>) -> Result<usize> {
        self.write("marking sync requests served", |tx| {
            let mut statement = tx.prepare(
                "UPDATE sync_requests SET served_at = ?2 WHERE id = ?1 AND served_at IS NULL",
            )?;
            let mut served = 0;
            for id in ids {
                served += statement.execute(params![id, unix(now)])?;
            }
            Ok(served)
        })
    }

    /// Whether a pass the user asked for has not finished yet.
    pub fn has_pending_sync_request(&self, user_id: UserId) -> Result<bool> {
        self.read("reading sync requests", |db| {
            Ok(db
                .query_row(
                    "SELECT 1 FROM sync_requests WHERE served_at IS NULL AND user_id = ?1 LIMIT 1",
                    [user_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
    }

    /// Deletes requests served before `served_before`; returns how many.
    pub fn prune_sync_requests(&self, served_before: DateTime<Utc>) -> Result<usize> {
        self.write("pruning sync requests", |tx| {
            Ok(tx.execute(
                "DELETE FROM sync_requests WHERE served_at < ?1",
                [unix(served_before)],
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at, memory_store};
    use crate::store::StoreError;

    #[test]
    fn enqueue_take_serve() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        let retake = Duration::minutes(10);
        store.upsert_user(1, "a", "", t0).unwrap();
        store.upsert_user(2, "b", "", t0).unwrap();

        let first = store.enqueue_sync_request(1, t0).unwrap();
        assert_eq!(store.enqueue_sync_request(1, t0).unwrap(), first);
        store.enqueue_sync_request(2, t0).unwrap();
        assert!(store.has_pending_sync_request(1).unwrap());

        let taken = store.take_pending_sync_requests(t0, retake).unwrap();
        let users: Vec<UserId> = taken.iter().map(|r| r.user_id).collect();
        assert_eq!(users, [1, 2]);
        assert_eq!(taken[0].requested_at, t0);
        assert!(store
            .take_pending_sync_requests(t0, retake)
            .unwrap()
            .is_empty());

        // A press while the pass runs is a new request, not folded into the claimed one.
        let during = store.enqueue_sync_request(1, t0).unwrap();
        assert_ne!(during, first);

        let ids: Vec<i64> = taken.iter().map(|r| r.id).collect();
        assert_eq!(store.mark_sync_requests_served(&ids, t0).unwrap(), 2);
        assert!(!store.has_pending_sync_request(2).unwrap());
        assert!(store.has_pending_sync_request(1).unwrap());
        let next = store.take_pending_sync_requests(t0, retake).unwrap();
        assert_eq!(next.iter().map(|r| r.id).collect::<Vec<_>>(), [during]);
    }

    #[test]
    fn a_claim_never_served_is_taken_again_later() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        let retake = Duration::minutes(10);
        store.upsert_user(1, "a", "", t0).unwrap();
        store.enqueue_sync_request(1, t0).unwrap();
        assert_eq!(
            store.take_pending_sync_requests(t0, retake).unwrap().len(),
            1
        );
        let soon = t0 + Duration::minutes(5);
        assert!(store
            .take_pending_sync_requests(soon, retake)
            .unwrap()
            .is_empty());
        let later = t0 + Duration::minutes(10);
        assert_eq!(
            store
                .take_pending_sync_requests(later, retake)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn prune_keeps_pending_requests() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        store.upsert_user(1, "a", "", t0).unwrap();
        store.upsert_user(2, "b", "", t0).unwrap();
        let served = store.enqueue_sync_request(1, t0).unwrap();
        store.enqueue_sync_request(2, t0).unwrap();
        store.mark_sync_requests_served(&[served], t0).unwrap();
        let later = t0 + Duration::days(2);
        assert_eq!(store.prune_sync_requests(later).unwrap(), 1);
        assert!(store.has_pending_sync_request(2).unwrap());
    }

    #[test]
    fn a_request_needs_its_user() {
        let store = memory_store();
        assert!(matches!(
            store.enqueue_sync_request(9, at("2026-11-25T01:00:00Z")),
            Err(StoreError::NoSuchUser(9))
        ));
    }
}
