//! The `history` table (同期履歴): one entry per user per pass, newest first, with counts and
//! every error in words a user can act on.

use chrono::{DateTime, Utc};
use rusqlite::{params, Row};
use serde::{Deserialize, Serialize};

use super::{read_time, unix, user_must_exist, Failure, Result, Store, UserId};

/// What a pass did. Stored as JSON, so a count added later reads as 0 from older entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PassCounts {
    /// Written to Cybozu.
    pub cybozu_created: u32,
    pub cybozu_updated: u32,
    pub cybozu_deleted: u32,
    /// Written to Google or CalDAV.
    pub remote_created: u32,
    pub remote_updated: u32,
    pub remote_deleted: u32,
    /// Existing pairs taken into the mapping instead of being copied.
    pub adopted: u32,
    /// Both sides changed; `CONFLICT` chose the winner.
    pub conflicts: u32,
}

/// One pass of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: i64,
    pub user_id: UserId,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub counts: PassCounts,
    /// One sentence each.
    pub errors: Vec<String>,
}

/// A page of a user's history and how many entries there are in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    pub total: u64,
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<HistoryEntry> {
    let counts: String = row.get("counts")?;
    let counts = serde_json::from_str(&counts).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
    })?;
    let errors: String = row.get("errors")?;
    Ok(HistoryEntry {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        started_at: read_time(row, "started_at")?,
        finished_at: read_time(row, "finished_at")?,
        counts,
        errors: errors
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// One sentence per line: a line break inside a sentence would split it in two when read back.
fn errors_as_lines(errors: &[String]) -> String {
    errors
        .iter()
        .map(|sentence| sentence.replace(['\r', '\n'], " ").trim().to_string())
        .filter(|sentence| !sentence.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Store {
    /// Records a finished pass; returns the entry's id.
    pub fn append_history(
        &self,
        user_id: UserId,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        counts: &PassCounts,
        errors: &[String],
    ) -> Result<i64> {
        let counts = serde_json::to_string(counts).map_err(|e| super::StoreError::Corrupt {
            doing: "recording a pass in the history",
            detail: e.to_string(),
        })?;
        let errors = errors_as_lines(errors);
        self.write("recording a pass in the history", |tx| {
            tx.execute(
                "INSERT INTO history (user_id, started_at, finished_at, counts, errors)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user_id, unix(started_at), unix(finished_at), counts, errors],
            )
            .map_err(|e| user_must_exist(Failure::from(e), user_id))?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Page `page` (0 = the newest entries) of `per_page` entries, newest first.
    pub fn history_page(&self, user_id: UserId, page: u32, per_page: u32) -> Result<HistoryPage> {
        self.read_snapshot("reading the history", |tx| {
            let total: i64 = tx.query_row(
                "SELECT count(*) FROM history WHERE user_id = ?1",
                [user_id],
                |row| row.get(0),
            )?;
            let mut statement = tx.prepare(
                "SELECT id, user_id, started_at, finished_at, counts, errors FROM history
                 WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
            )?;
            let offset = i64::from(page) * i64::from(per_page);
            let entries = statement
                .query_map(params![user_id, per_page, offset], entry_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(HistoryPage {
                entries,
                total: u64::try_from(total).unwrap_or(0),
            })
        })
    }

    /// Deletes entries of passes that finished before `finished_before`; returns how many.
    pub fn prune_history(&self, finished_before: DateTime<Utc>) -> Result<usize> {
        self.write("pruning the history", |tx| {
            Ok(tx.execute(
                "DELETE FROM history WHERE finished_at < ?1",
                [unix(finished_before)],
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::store::tests::{at, memory_store};

    #[test]
    fn pages_are_newest_first_with_a_total() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", t0).unwrap();
        store.upsert_user(43, "u", "", t0).unwrap();
        for pass in 0..7u32 {
            let started = t0 + Duration::minutes(5 * i64::from(pass));
            let counts = PassCounts {
                remote_created: pass,
                ..PassCounts::default()
            };
            store
                .append_history(42, started, started + Duration::seconds(30), &counts, &[])
                .unwrap();
        }
        store
            .append_history(43, t0, t0, &PassCounts::default(), &[])
            .unwrap();

        let first = store.history_page(42, 0, 3).unwrap();
        assert_eq!(first.total, 7);
        let created: Vec<u32> = first
            .entries
            .iter()
            .map(|e| e.counts.remote_created)
            .collect();
        assert_eq!(created, [6, 5, 4]);
        assert_eq!(first.entries[0].started_at, t0 + Duration::minutes(30));
        assert!(first.entries.iter().all(|e| e.user_id == 42));

        let last = store.history_page(42, 2, 3).unwrap();
        let created: Vec<u32> = last
            .entries
            .iter()
            .map(|e| e.counts.remote_created)
            .collect();
        assert_eq!(created, [0]);
        assert!(store.history_page(42, 3, 3).unwrap().entries.is_empty());
    }

    #[test]
    fn errors_keep_one_sentence_per_line() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", now).unwrap();
        let errors = vec![
            "Google の認証が切れています。\nもう一度「認証」を押してください。".to_string(),
            String::new(),
            "施設が重複しています。".to_string(),
        ];
        store
            .append_history(42, now, now, &PassCounts::default(), &errors)
            .unwrap();
        let entry = &store.history_page(42, 0, 1).unwrap().entries[0];
        assert_eq!(
            entry.errors,
            [
                "Google の認証が切れています。 もう一度「認証」を押してください。",
                "施設が重複しています。"
            ]
        );
    }

    #[test]
    fn counts_missing_from_older_entries_read_as_zero() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", now).unwrap();
        store
            .conn
            .execute(
                "INSERT INTO history (user_id, started_at, finished_at, counts) VALUES (42, 0, 0, '{\"adopted\":2}')",
                [],
            )
            .unwrap();
        let entry = &store.history_page(42, 0, 1).unwrap().entries[0];
        assert_eq!(
            entry.counts,
            PassCounts {
                adopted: 2,
                ..PassCounts::default()
            }
        );
    }

    #[test]
    fn prune_removes_only_old_entries() {
        let store = memory_store();
        let old = at("2026-01-01T00:00:00Z");
        let recent = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", old).unwrap();
        store
            .append_history(42, old, old, &PassCounts::default(), &[])
            .unwrap();
        store
            .append_history(42, recent, recent, &PassCounts::default(), &[])
            .unwrap();
        assert_eq!(store.prune_history(at("2026-06-01T00:00:00Z")).unwrap(), 1);
        assert_eq!(store.history_page(42, 0, 10).unwrap().total, 1);
    }
}
