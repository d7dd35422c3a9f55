//! The `sessions` table: screen logins. Only a SHA-256 hash of each session cookie is stored, so
//! a copy of the database does not let anyone act as a logged-in user.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, OptionalExtension};

use super::{
    read_time, unix, unix_before, user_must_exist, Failure, Result, Store, StoreError, UserId,
};
use crate::secret::random_token;

/// 256 bits: session ids and CSRF tokens cannot be guessed.
const TOKEN_BYTES: usize = 32;

/// A logged-in (or admin) browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: Option<UserId>,
    pub is_admin: bool,
    /// Every form carries it; it is compared with the submitted one.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A session just created, with the cookie value that the store keeps only as a hash.
#[derive(Clone)]
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// The hex SHA-256 of a session cookie value, the key under which its session is stored.
pub(super) fn token_hash(token: &str) -> String {
    crate::hash::hex(&crate::hash::sha256(token.as_bytes()))
}

pub(super) fn new_token() -> Result<String> {
    random_token(TOKEN_BYTES).map_err(StoreError::Random)
}

impl Store {
    /// Starts a session; the returned token goes into the cookie and is not stored.
    pub fn create_session(
        &self,
        user_id: Option<UserId>,
        is_admin: bool,
        now: DateTime<Utc>,
    ) -> Result<NewSession> {
        let token = new_token()?;
        let session = Session {
            user_id,
            is_admin,
            csrf_token: new_token()?,
            created_at: now,
            last_seen_at: now,
        };
        self.write("creating a session", |tx| {
            tx.execute(
                "INSERT INTO sessions (token_hash, user_id, is_admin, csrf_token, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![token_hash(&token), user_id, is_admin, session.csrf_token, unix(now)],
            )
            .map_err(|e| match user_id {
                Some(user_id) => user_must_exist(Failure::from(e), user_id),
                None => Failure::from(e),
            })?;
            Ok(())
        })?;
        Ok(NewSession { token, session })
    }

    /// The session of a cookie value, unless it is unknown or has been idle longer than `max_idle`.
    pub fn active_session(
        &self,
        token: &str,
        now: DateTime<Utc>,
        max_idle: Duration,
    ) -> Result<Option<Session>> {
        self.read("reading a session", |db| {
            Ok(db
                .query_row(
                    "SELECT user_id, is_admin, csrf_token, created_at, last_seen_at FROM sessions
                     WHERE token_hash = ?1 AND last_seen_at >= ?2",
                    params![token_hash(token), unix_before(now, max_idle)],
                    // By position, as the select lists them: every page view reads its session.
                    |row| {
                        Ok(Session {
                            user_id: row.get(0)?,
                            is_admin: row.get(1)?,
                            csrf_token: row.get(2)?,
                            created_at: read_time(row, 3)?,
                            last_seen_at: read_time(row, 4)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    /// Records activity, which keeps the session from expiring; false when it no longer exists.
    pub fn touch_session(&self, token: &str, now: DateTime<Utc>) -> Result<bool> {
        self.write("recording session activity", |tx| {
            Ok(tx.execute(
                "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE token_hash = ?1",
                params![token_hash(token), unix(now)],
            )? > 0)
        })
    }

    /// Logs a session out.
    pub fn delete_session(&self, token: &str) -> Result<bool> {
        self.write("deleting a session", |tx| {
            Ok(tx.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                [token_hash(token)],
            )? > 0)
        })
    }

    /// Logs the user out everywhere (e.g. when the administrator disables them).
    pub fn delete_sessions_of_user(&self, user_id: UserId) -> Result<usize> {
        self.write("deleting a user's sessions", |tx| {
            Ok(tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?)
        })
    }

    /// Logs the administrator out everywhere (e.g. after a new administrator password).
    pub fn delete_admin_sessions(&self) -> Result<usize> {
        self.write("deleting the administrator's sessions", |tx| {
            Ok(tx.execute("DELETE FROM sessions WHERE is_admin = 1", [])?)
        })
    }

    /// Deletes sessions idle longer than `max_idle` (and their pending Google authorizations).
    pub fn expire_idle_sessions(&self, now: DateTime<Utc>, max_idle: Duration) -> Result<usize> {
        self.write("expiring idle sessions", |tx| {
            Ok(tx.execute(
                "DELETE FROM sessions WHERE last_seen_at < ?1",
                [unix_before(now, max_idle)],
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at, memory_store};

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn create_find_touch_delete() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", t0).unwrap();
        let new = store.create_session(Some(42), false, t0).unwrap();
        assert!(new.token.len() >= 43);
        assert!(!format!("{new:?}").contains(&new.token));

        let idle = Duration::minutes(30);
        let found = store.active_session(&new.token, t0, idle).unwrap().unwrap();
        assert_eq!(found, new.session);
        assert_ne!(found.csrf_token, new.token);
        assert!(store.active_session("forged", t0, idle).unwrap().is_none());

        let stored_ids: Vec<String> = store
            .conn
            .prepare("SELECT token_hash FROM sessions")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(stored_ids, [token_hash(&new.token)]);

        let t1 = t0 + Duration::minutes(20);
        assert!(store.touch_session(&new.token, t1).unwrap());
        let later = t0 + Duration::minutes(45);
        let found = store
            .active_session(&new.token, later, idle)
            .unwrap()
            .unwrap();
        assert_eq!(found.last_seen_at, t1);

        assert!(store.delete_session(&new.token).unwrap());
        assert!(store
            .active_session(&new.token, later, idle)
            .unwrap()
            .is_none());
        assert!(!store.touch_session(&new.token, later).unwrap());
    }

    #[test]
    fn idle_sessions_expire() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        let idle = Duration::minutes(30);
        let admin = store.create_session(None, true, t0).unwrap();
        let fresh = store
            .create_session(None, false, t0 + Duration::minutes(20))
            .unwrap();

        let now = t0 + Duration::minutes(31);
        assert!(store
            .active_session(&admin.token, now, idle)
            .unwrap()
            .is_none());
        assert!(store
            .active_session(&fresh.token, now, idle)
            .unwrap()
            .is_some());
        let at_the_limit = t0 + Duration::minutes(30);
        assert!(store
            .active_session(&admin.token, at_the_limit, idle)
            .unwrap()
            .is_some());

        assert_eq!(store.expire_idle_sessions(now, idle).unwrap(), 1);
        assert!(store
            .active_session(&fresh.token, now, idle)
            .unwrap()
            .is_some());
    }

    #[test]
    fn sessions_of_a_user_can_be_ended_together() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", now).unwrap();
        store.create_session(Some(42), false, now).unwrap();
        store.create_session(Some(42), false, now).unwrap();
        let admin = store.create_session(None, true, now).unwrap();
        assert_eq!(store.delete_sessions_of_user(42).unwrap(), 2);
        assert!(store
            .active_session(&admin.token, now, Duration::hours(1))
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_session_for_a_missing_user_is_refused() {
        let store = memory_store();
        assert!(matches!(
            store.create_session(Some(9), false, at("2026-11-25T01:00:00Z")),
            Err(StoreError::NoSuchUser(9))
        ));
    }
}
