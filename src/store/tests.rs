//! Tests of the store as a whole: the file on disk, two processes at once, secrets at rest.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::*;

pub(super) fn memory_store() -> Store {
    Store::open_in_memory(SecretKey::generate().expect("OS RNG")).expect("in-memory database")
}

pub(super) fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("test time")
        .with_timezone(&Utc)
}

pub(super) fn count_rows(store: &Store, table: &str) -> i64 {
    store
        .conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("count rows")
}

#[test]
fn a_file_database_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("data/dncs.db"),
        SecretKey::generate().unwrap(),
    )
    .unwrap();
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: bool = store
        .conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert!(foreign_keys);
    let synchronous: i64 = store
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(synchronous, 1, "NORMAL");
}

#[test]
fn a_reading_web_connection_leaves_the_wal_files_a_writing_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dncs.db");
    let wal = dir.path().join("dncs.db-wal");
    let shm = dir.path().join("dncs.db-shm");
    let key = SecretKey::generate().unwrap();
    let now = at("2026-11-25T01:00:00Z");
    let setup = Store::open(&path, key.clone()).unwrap();
    setup.upsert_user(7, "takahashi", "高橋 健太", now).unwrap();
    setup.close().unwrap();
    assert!(
        !wal.exists(),
        "a normal close checkpoints and removes the WAL"
    );

    let reader = Store::open(&path, key.clone()).unwrap();
    reader.keep_wal_on_close().unwrap();
    assert!(reader.user_by_id(7).unwrap().is_some());
    reader.close().unwrap();
    assert!(wal.exists() && shm.exists(), "kept for the next request");
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "and empty");

    let writer = Store::open(&path, key.clone()).unwrap();
    writer.keep_wal_on_close().unwrap();
    writer.set_enabled(7, true, now).unwrap();
    writer.close().unwrap();
    assert!(!wal.exists(), "a writer checkpoints on close as usual");

    let again = Store::open(&path, key).unwrap();
    assert!(again.user_by_id(7).unwrap().is_some_and(|u| u.enabled));
}

#[test]
fn only_a_web_connection_that_has_not_written_counts_as_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dncs.db");
    let key = SecretKey::generate().unwrap();
    let now = at("2026-11-25T01:00:00Z");
    let setup = Store::open(&path, key.clone()).unwrap();
    setup.upsert_user(7, "takahashi", "高橋 健太", now).unwrap();
    assert!(!setup.has_only_read(), "it wrote");
    setup.close().unwrap();

    let plain = Store::open(&path, key.clone()).unwrap();
    plain.user_by_id(7).unwrap();
    assert!(
        !plain.has_only_read(),
        "without keep_wal_on_close its close checkpoints"
    );

    let page = Store::open(&path, key).unwrap();
    page.keep_wal_on_close().unwrap();
    assert!(page.user_by_id(7).unwrap().is_some());
    assert!(page.history_page(7, 0, 10).is_ok());
    assert!(page.has_only_read());
    page.set_enabled(7, true, now).unwrap();
    assert!(!page.has_only_read());
}

#[test]
fn two_stores_write_the_same_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dncs.db");
    let key = SecretKey::generate().unwrap();
    let now = at("2026-11-25T01:00:00Z");
    {
        let store = Store::open(&path, key.clone()).unwrap();
        store.upsert_user(1, "cgi", "", now).unwrap();
        store.upsert_user(2, "sync", "", now).unwrap();
    }
    const WRITES: i64 = 150;
    std::thread::scope(|scope| {
        for user_id in [1, 2] {
            let (path, key) = (&path, key.clone());
            scope.spawn(move || {
                let store = Store::open(path, key).unwrap();
                for n in 0..WRITES {
                    store
                        .put_mapping(
                            user_id,
                            &Mapping {
                                cybozu_id: n,
                                cybozu_version: n,
                                remote_id: format!("r{n}"),
                                remote_etag: None,
                                extra: serde_json::Value::Null,
                            },
                        )
                        .unwrap();
                    store
                        .set_cursor(user_id, Side::Cybozu, &n.to_string(), now)
                        .unwrap();
                    store
                        .append_history(user_id, now, now, &PassCounts::default(), &[])
                        .unwrap();
                    store.set_cybozu_password(user_id, "pw", now).unwrap();
                    store.enqueue_sync_request(user_id, now).unwrap();
                    store
                        .take_pending_sync_requests(now, chrono::Duration::minutes(1))
                        .unwrap();
                }
                store.close().unwrap();
            });
        }
    });
    let store = Store::open(&path, key).unwrap();
    for user_id in [1, 2] {
        assert_eq!(
            store.mappings_for_user(user_id).unwrap().len(),
            WRITES as usize
        );
        assert_eq!(
            store.history_page(user_id, 0, 1).unwrap().total,
            WRITES as u64
        );
    }
}

#[test]
fn a_new_database_opened_by_many_at_once_is_created_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("dncs.db");
    let key = SecretKey::generate().unwrap();
    let now = at("2026-11-25T01:00:00Z");
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|n| {
                let (path, key) = (&path, key.clone());
                scope.spawn(move || {
                    let store = Store::open(path, key)?;
                    store.setting_or_insert_with(SETTING_INSTALL_ID, || format!("install-{n}"))
                })
            })
            .collect();
        let ids: Vec<String> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    });
    let store = Store::open(&path, key).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    store.upsert_user(1, "a", "", now).unwrap();
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn secrets_never_reach_the_database_file_in_plaintext() {
    const CYBOZU_PASSWORD: &str = "Cybozu-Pa55-4b1e9f";
    const REFRESH_TOKEN: &str = "1//0gRefresh-7c2d8a";
    const ACCESS_TOKEN: &str = "ya29.Access-91f3e0";
    const CALDAV_PASSWORD: &str = "CalDAV-Pa55-e6d402";
    const VERIFIER: &str = "pkce-Verifier-5a0b77";
    const SESSION_SECRET: &str = "oauth-state-key-3f9c";
    let secrets = [
        CYBOZU_PASSWORD,
        REFRESH_TOKEN,
        ACCESS_TOKEN,
        CALDAV_PASSWORD,
        VERIFIER,
        SESSION_SECRET,
    ];

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dncs.db");
    let wal = dir.path().join("dncs.db-wal");
    let key = SecretKey::generate().unwrap();
    let now = at("2026-11-25T01:00:00Z");
    let session_token = {
        let store = Store::open(&path, key.clone()).unwrap();
        store.upsert_user(42, "takahashi", "高橋", now).unwrap();
        store.set_cybozu_password(42, CYBOZU_PASSWORD, now).unwrap();
        store
            .set_google_link(
                42,
                REFRESH_TOKEN,
                Provenance::Relay,
                GoogleClient::Current,
                now,
            )
            .unwrap();
        store
            .set_google_access_token(42, ACCESS_TOKEN, now + chrono::Duration::hours(1), now)
            .unwrap();
        store
            .set_caldav_account(
                42,
                "https://dav.example/cal/",
                "taka",
                Some(CALDAV_PASSWORD),
                now,
            )
            .unwrap();
        store
            .set_secret_setting(SETTING_OAUTH_STATE_KEY, SESSION_SECRET)
            .unwrap();
        let session = store.create_session(Some(42), false, now).unwrap();
        store
            .begin_oauth_flow(&session.token, 42, VERIFIER, "https://relay/", now)
            .unwrap();

        // While open, the newest pages live in the WAL file.
        let (db, wal_bytes) = (file_bytes(&path), file_bytes(&wal));
        assert!(!wal_bytes.is_empty(), "the writes went through the WAL");
        for secret in secrets.iter().chain([&session.token.as_str()]) {
            assert!(!contains(&db, secret), "{secret} in dncs.db");
            assert!(!contains(&wal_bytes, secret), "{secret} in dncs.db-wal");
        }
        store.close().unwrap();
        session.token
    };

    let db = file_bytes(&path);
    assert!(contains(&db, "takahashi"), "the scan reads the file's text");
    for secret in secrets.iter().chain([&session_token.as_str()]) {
        assert!(!contains(&db, secret), "{secret} in dncs.db after close");
        assert!(!contains(&file_bytes(&wal), secret));
    }

    let store = Store::open(&path, key).unwrap();
    assert_eq!(
        store.cybozu_password(42).unwrap().as_deref(),
        Some(CYBOZU_PASSWORD)
    );
    assert_eq!(
        store.google_refresh_token(42).unwrap().as_deref(),
        Some(REFRESH_TOKEN)
    );
    assert_eq!(
        store
            .google_access_token(42)
            .unwrap()
            .map(|a| a.token)
            .as_deref(),
        Some(ACCESS_TOKEN)
    );
    assert_eq!(
        store.caldav_password(42).unwrap().as_deref(),
        Some(CALDAV_PASSWORD)
    );
    assert_eq!(
        store
            .secret_setting(SETTING_OAUTH_STATE_KEY)
            .unwrap()
            .as_deref(),
        Some(SESSION_SECRET)
    );
}

#[test]
fn another_key_cannot_open_the_stored_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dncs.db");
    let now = at("2026-11-25T01:00:00Z");
    {
        let store = Store::open(&path, SecretKey::generate().unwrap()).unwrap();
        store.upsert_user(42, "t", "", now).unwrap();
        store.set_cybozu_password(42, "pw", now).unwrap();
    }
    let store = Store::open(&path, SecretKey::generate().unwrap()).unwrap();
    let err = store.cybozu_password(42).unwrap_err();
    assert!(
        matches!(&err, StoreError::Secret { what, .. } if what == "cybozu_password:42"),
        "{err}"
    );
    assert!(store.user_by_id(42).unwrap().unwrap().has_cybozu_password);
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dncs.db");
    std::fs::write(
        &path,
        b"this is not an SQLite file, just some text padding it out",
    )
    .unwrap();
    let err = Store::open(&path, SecretKey::generate().unwrap()).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
}
