//! The database schema as an ordered list of migrations, tracked in `PRAGMA user_version`.
//!
//! A migration, once released, never changes: a later need is a new entry at the end. Tables are
//! created without `IF NOT EXISTS` so that a file that is not ours fails loudly instead of being
//! half adopted.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{Doing, Result, StoreError};

/// Migration `i` takes the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: users, their sync state, sessions and settings.
    "
    CREATE TABLE users (
        id                    INTEGER PRIMARY KEY,          -- Cybozu user id
        login_name            TEXT NOT NULL UNIQUE,
        display_name          TEXT NOT NULL DEFAULT '',
        enabled               INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
        sync_on               INTEGER NOT NULL DEFAULT 0 CHECK (sync_on IN (0, 1)),
        target                TEXT NOT NULL DEFAULT 'google' CHECK (target IN ('google', 'caldav')),
        calendar_id           TEXT NOT NULL DEFAULT '',
        cybozu_password       TEXT,                         -- sealed
        google_refresh_token  TEXT,                         -- sealed
        google_provenance     TEXT CHECK (google_provenance IN ('oob', 'relay', 'direct')),
        google_client         TEXT CHECK (google_client IN ('current', 'legacy')),
        google_needs_relink   INTEGER NOT NULL DEFAULT 0 CHECK (google_needs_relink IN (0, 1)),
        google_access_token   TEXT,                         -- sealed
        google_access_expires INTEGER,
        caldav_url            TEXT NOT NULL DEFAULT '',
        caldav_user           TEXT NOT NULL DEFAULT '',
        caldav_password       TEXT,                         -- sealed
        last_pass_at          INTEGER,
        last_error            TEXT,
        syncing_since         INTEGER,
        created_at            INTEGER NOT NULL,
        updated_at            INTEGER NOT NULL
    );

    CREATE TABLE sessions (
        token_hash   TEXT PRIMARY KEY,                      -- hex SHA-256 of the cookie value
        user_id      INTEGER REFERENCES users (id) ON DELETE CASCADE,
        is_admin     INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
        csrf_token   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);
    CREATE INDEX sessions_by_user ON sessions (user_id);

    CREATE TABLE mappings (
        user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        cybozu_id      INTEGER NOT NULL,
        cybozu_version INTEGER NOT NULL,
        remote_id      TEXT NOT NULL,
        remote_etag    TEXT,
        extra          TEXT NOT NULL DEFAULT 'null',        -- JSON
        PRIMARY KEY (user_id, cybozu_id),
        UNIQUE (user_id, remote_id)
    ) WITHOUT ROWID;

    CREATE TABLE cursors (
        user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        side       TEXT NOT NULL CHECK (side IN ('cybozu', 'google', 'caldav')),
        cursor     TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, side)
    ) WITHOUT ROWID;

    CREATE TABLE history (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        counts      TEXT NOT NULL DEFAULT '{}',             -- JSON PassCounts
        errors      TEXT NOT NULL DEFAULT ''                -- one sentence per line
    );
    CREATE INDEX history_by_user ON history (user_id, id);
    CREATE INDEX history_by_finished ON history (finished_at);

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    ",
    // 2: the 「ただちに同期する」 queue and the login throttle.
    "
    CREATE TABLE sync_requests (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        requested_at INTEGER NOT NULL,
        taken_at     INTEGER,
        served_at    INTEGER
    );
    CREATE INDEX sync_requests_pending ON sync_requests (served_at, user_id);

    CREATE TABLE login_throttle (
        key          TEXT PRIMARY KEY,                      -- a login name or a client address
        failures     INTEGER NOT NULL,
        window_start INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 3: pending Google authorizations (the CGI keeps no memory between requests).
    "
    CREATE TABLE oauth_flows (
        state_id      TEXT PRIMARY KEY,
        session_hash  TEXT NOT NULL REFERENCES sessions (token_hash) ON DELETE CASCADE,
        user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        pkce_verifier TEXT NOT NULL,                        -- sealed
        redirect_uri  TEXT NOT NULL,
        created_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX oauth_flows_by_session ON oauth_flows (session_hash);
    ",
    // 4: Google links imported from an earlier installation, waiting for the user's first login
    //    (the old installation knows login names, not Cybozu ids).
    "
    CREATE TABLE legacy_links (
        login_name    TEXT PRIMARY KEY,
        refresh_token TEXT NOT NULL,                        -- sealed
        calendar_id   TEXT NOT NULL DEFAULT '',
        provenance    TEXT NOT NULL CHECK (provenance IN ('oob', 'relay', 'direct')),
        imported_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 5: no indexes on the tables whose rows live an idle timeout (sessions) or minutes (pending
    //    Google authorizations). They stay small, so their scans are cheap, while every process
    //    parses each index with the schema (a CGI process per page view) and every write keeps it.
    "
    DROP INDEX sessions_by_last_seen;
    DROP INDEX sessions_by_user;
    DROP INDEX oauth_flows_by_session;
    ",
];

/// The schema version this program writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn user_version(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .doing("reading the schema version")
}

/// Brings the database to `target` (≤ [`SCHEMA_VERSION`]); one `user_version` read when it is there.
pub(super) fn migrate(conn: &Connection, target: i64) -> Result<()> {
    let found = checked_version(conn)?;
    if found >= target {
        return Ok(());
    }
    for version in found..target {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .doing("starting a schema migration")?;
        // Another process may have migrated while this one waited for the write lock.
        if checked_version(&tx)? > version {
            continue;
        }
        let index = usize::try_from(version).map_err(|_| StoreError::Corrupt {
            doing: "migrating the schema",
            detail: format!("schema version {version}"),
        })?;
        log::info!("migrating the database to schema version {}", version + 1);
        tx.execute_batch(MIGRATIONS[index])
            .doing("applying a schema migration")?;
        tx.pragma_update(None, "user_version", version + 1)
            .doing("recording the schema version")?;
        tx.commit().doing("committing a schema migration")?;
    }
    Ok(())
}

fn checked_version(conn: &Connection) -> Result<i64> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found < 0 {
        return Err(StoreError::Corrupt {
            doing: "reading the schema version",
            detail: format!("negative schema version {found}"),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::params;

    use super::*;
    use crate::secret::SecretKey;
    use crate::store::sessions::token_hash;
    use crate::store::tests::at;
    use crate::store::{Side, Store};

    const FIXTURE_SESSION_TOKEN: &str = "fixture-session-token";

    /// Rows for the tables that migration `index` created, written with the schema of that time.
    fn insert_fixture_rows(conn: &Connection, key: &SecretKey, index: usize) {
        match index {
            0 => {
                conn.execute(
                    "INSERT INTO users (id, login_name, display_name, enabled, sync_on, target,
                         calendar_id, cybozu_password, created_at, updated_at)
                     VALUES (42, 'takahashi', '高橋', 1, 1, 'google', 'primary', ?1, 100, 100)",
                    [key.seal("cybozu_password:42", "fixture password")],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO sessions VALUES (?1, 42, 0, 'csrf', 100, 100)",
                    [token_hash(FIXTURE_SESSION_TOKEN)],
                )
                .unwrap();
                conn.execute_batch(
                    "INSERT INTO mappings VALUES (42, 7, 1700000000, 'remote-7', 'etag-7', '{\"a\":1}');
                     INSERT INTO cursors VALUES (42, 'google', 'sync-token', 100);
                     INSERT INTO history (user_id, started_at, finished_at, counts, errors)
                         VALUES (42, 100, 110, '{\"remote_created\":3}', 'first line');
                     INSERT INTO settings VALUES ('install_id', 'fixture-install');",
                )
                .unwrap();
            }
            1 => conn
                .execute_batch(
                    "INSERT INTO sync_requests (user_id, requested_at) VALUES (42, 120);
                     INSERT INTO login_throttle VALUES ('takahashi', 2, 100);",
                )
                .unwrap(),
            2 => {
                conn.execute(
                    "INSERT INTO oauth_flows VALUES ('state-1', ?1, 42, ?2, 'https://relay/cb', 130)",
                    params![
                        token_hash(FIXTURE_SESSION_TOKEN),
                        key.seal("pkce_verifier:state-1", "verifier")
                    ],
                )
                .unwrap();
            }
            3 => {
                conn.execute(
                    "INSERT INTO legacy_links VALUES ('sato', ?1, 'sato@example.jp', 'oob', 140)",
                    params![key.seal("legacy_refresh_token:sato", "legacy token")],
                )
                .unwrap();
            }
            // Indexes dropped: no table to fill.
            4 => {}
            _ => panic!("migration {} has no fixture rows: add them here", index + 1),
        }
    }

    fn database_at_version(path: &Path, key: &SecretKey, version: i64) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrate(&conn, version).unwrap();
        assert_eq!(user_version(&conn).unwrap(), version);
        for index in 0..version as usize {
            insert_fixture_rows(&conn, key, index);
        }
        conn.close().unwrap();
    }

    #[test]
    fn opens_a_database_from_every_earlier_version() {
        for version in 0..=SCHEMA_VERSION {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("dncs.db");
            let key = SecretKey::generate().unwrap();
            database_at_version(&path, &key, version);

            let store = Store::open(&path, key).unwrap();
            assert_eq!(
                store.schema_version().unwrap(),
                SCHEMA_VERSION,
                "from {version}"
            );
            if version >= 1 {
                let user = store.user_by_id(42).unwrap().expect("user kept");
                assert_eq!(user.login_name, "takahashi");
                assert_eq!(user.display_name, "高橋");
                assert!(user.enabled && user.sync_on);
                assert_eq!(
                    store.cybozu_password(42).unwrap().as_deref(),
                    Some("fixture password")
                );
                let mapping = store.mapping_for_cybozu(42, 7).unwrap().expect("mapping");
                assert_eq!(mapping.remote_id, "remote-7");
                assert_eq!(mapping.extra, serde_json::json!({"a": 1}));
                assert_eq!(
                    store.cursor(42, Side::Google).unwrap().as_deref(),
                    Some("sync-token")
                );
                let history = store.history_page(42, 0, 10).unwrap();
                assert_eq!(history.total, 1);
                assert_eq!(history.entries[0].counts.remote_created, 3);
                assert_eq!(
                    store.setting("install_id").unwrap().as_deref(),
                    Some("fixture-install")
                );
                let session = store
                    .active_session(
                        FIXTURE_SESSION_TOKEN,
                        at("1970-01-01T00:02:00Z"),
                        chrono::Duration::hours(1),
                    )
                    .unwrap()
                    .expect("session");
                assert_eq!(session.user_id, Some(42));
            }
            if version >= 2 {
                assert!(store.has_pending_sync_request(42).unwrap());
                assert!(store
                    .is_login_throttled(
                        "takahashi",
                        2,
                        chrono::Duration::hours(1),
                        at("1970-01-01T00:03:00Z")
                    )
                    .unwrap());
            }
            if version >= 3 {
                let flow = store
                    .take_oauth_flow(
                        "state-1",
                        FIXTURE_SESSION_TOKEN,
                        at("1970-01-01T00:03:00Z"),
                        chrono::Duration::minutes(10),
                    )
                    .unwrap()
                    .expect("flow");
                assert_eq!(flow.pkce_verifier, "verifier");
            }
            if version >= 4 {
                let link = store
                    .take_legacy_link("sato")
                    .unwrap()
                    .expect("legacy link");
                assert_eq!(link.refresh_token, "legacy token");
                assert_eq!(link.calendar_id, "sato@example.jp");
            }
            store.close().unwrap();
        }
    }

    #[test]
    fn the_short_lived_tables_keep_no_index_and_still_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dncs.db");
        let key = SecretKey::generate().unwrap();
        database_at_version(&path, &key, 4);
        let store = Store::open(&path, key).unwrap();
        let indexes: Vec<String> = store
            .conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL
                 AND tbl_name IN ('sessions', 'oauth_flows')",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(indexes, Vec::<String>::new());

        assert!(store.delete_user(42).unwrap());
        let left: i64 = store
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM oauth_flows)",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            left, 0,
            "the user's session and authorization went with them"
        );
    }

    #[test]
    fn every_migration_has_fixture_rows() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn, SCHEMA_VERSION).unwrap();
        let key = SecretKey::generate().unwrap();
        for index in 0..MIGRATIONS.len() {
            insert_fixture_rows(&conn, &key, index);
        }
    }

    #[test]
    fn a_newer_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dncs.db");
        let newer = SCHEMA_VERSION + 1;
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
        conn.close().unwrap();

        let err = Store::open(&path, SecretKey::generate().unwrap()).unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found, known } if found == newer && known == SCHEMA_VERSION),
            "{err}"
        );
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), newer);
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn processes_migrating_at_once_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dncs.db");
        let key = SecretKey::generate().unwrap();
        database_at_version(&path, &key, 1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| Store::open(&path, key.clone()).map(|s| s.close())))
                .collect();
            for handle in handles {
                handle.join().unwrap().unwrap().unwrap();
            }
        });
        let store = Store::open(&path, key).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(!store.has_pending_sync_request(42).unwrap());
    }
}
