//! The `oauth_flows` table: Google authorizations in progress. The CGI forgets everything between
//! requests, so the PKCE verifier (sealed; it never leaves the server) waits here for the
//! callback, bound to the browser session that started it, and is taken exactly once.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, OptionalExtension};

use super::sessions::{new_token, token_hash};
use super::{read_time, unix, user_must_exist, Failure, Result, Store, StoreError, UserId};

pub(super) const SEALED_VERIFIER: &str = "pkce_verifier";

/// An authorization waiting for Google's callback.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthFlow {
    pub user_id: UserId,
    pub pkce_verifier: String,
    /// The token exchange must send the same `redirect_uri` as the authorization request.
    pub redirect_uri: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for OAuthFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthFlow")
            .field("user_id", &self.user_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Records an authorization started from the session `session_token`; returns the random
    /// state id to carry (signed by the caller) in OAuth `state`.
    pub fn begin_oauth_flow(
        &self,
        session_token: &str,
        user_id: UserId,
        pkce_verifier: &str,
        redirect_uri: &str,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let state_id = new_token()?;
        let sealed = self.seal(SEALED_VERIFIER, &state_id, pkce_verifier);
        let session_hash = token_hash(session_token);
        self.write("starting a Google authorization", |tx| {
            let session_exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE token_hash = ?1)",
                [&session_hash],
                |row| row.get(0),
            )?;
            if !session_exists {
                return Err(StoreError::NoSuchSession.into());
            }
            tx.execute(
                "INSERT INTO oauth_flows
                     (state_id, session_hash, user_id, pkce_verifier, redirect_uri, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    state_id,
                    session_hash,
                    user_id,
                    sealed,
                    redirect_uri,
                    unix(now)
                ],
            )
            .map_err(|e| user_must_exist(Failure::from(e), user_id))?;
            Ok(())
        })?;
        Ok(state_id)
    }

    /// Takes the authorization `state_id` for the callback: `None` when it is unknown, was
    /// started by another session, or is older than `max_age`. A found flow of this session is
    /// deleted whatever its age, so a state is never used twice.
    pub fn take_oauth_flow(
        &self,
        state_id: &str,
        session_token: &str,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> Result<Option<OAuthFlow>> {
        let taken = self.write("finishing a Google authorization", |tx| {
            let found = tx
                .query_row(
                    "DELETE FROM oauth_flows WHERE state_id = ?1 AND session_hash = ?2
                     RETURNING user_id, pkce_verifier, redirect_uri, created_at",
                    params![state_id, token_hash(session_token)],
                    |row| {
                        Ok((
                            row.get::<_, UserId>("user_id")?,
                            row.get::<_, String>("pkce_verifier")?,
                            row.get::<_, String>("redirect_uri")?,
                            read_time(row, "created_at")?,
                        ))
                    },
                )
                .optional()?;
            Ok(found)
        })?;
        let Some((user_id, sealed, redirect_uri, created_at)) = taken else {
            return Ok(None);
        };
        if now - created_at > max_age {
            return Ok(None);
        }
        Ok(Some(OAuthFlow {
            user_id,
            pkce_verifier: self.open_sealed(SEALED_VERIFIER, state_id, &sealed)?,
            redirect_uri,
            created_at,
        }))
    }

    /// Deletes authorizations started before `started_before` that no callback took.
    pub fn prune_oauth_flows(&self, started_before: DateTime<Utc>) -> Result<usize> {
        self.write("pruning Google authorizations", |tx| {
            Ok(tx.execute(
                "DELETE FROM oauth_flows WHERE created_at < ?1",
                [unix(started_before)],
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at, count_rows, memory_store};

    const REDIRECT: &str = "https://relay.example/dncs-relay.html";

    #[test]
    fn a_flow_is_taken_once_by_its_session() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        let max_age = Duration::minutes(10);
        store.upsert_user(42, "t", "", t0).unwrap();
        let mine = store.create_session(Some(42), false, t0).unwrap();
        let other = store.create_session(Some(42), false, t0).unwrap();
        let state = store
            .begin_oauth_flow(&mine.token, 42, "verifier-123", REDIRECT, t0)
            .unwrap();

        let raw: String = store
            .conn
            .query_row("SELECT pkce_verifier FROM oauth_flows", [], |r| r.get(0))
            .unwrap();
        assert!(!raw.contains("verifier-123"));

        let now = t0 + Duration::minutes(3);
        assert!(store
            .take_oauth_flow(&state, &other.token, now, max_age)
            .unwrap()
            .is_none());
        let flow = store
            .take_oauth_flow(&state, &mine.token, now, max_age)
            .unwrap()
            .unwrap();
        assert_eq!(flow.user_id, 42);
        assert_eq!(flow.pkce_verifier, "verifier-123");
        assert_eq!(flow.redirect_uri, REDIRECT);
        assert!(!format!("{flow:?}").contains("verifier-123"));
        assert!(store
            .take_oauth_flow(&state, &mine.token, now, max_age)
            .unwrap()
            .is_none());
    }

    #[test]
    fn an_expired_flow_is_refused_and_gone() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        let max_age = Duration::minutes(10);
        store.upsert_user(42, "t", "", t0).unwrap();
        let session = store.create_session(Some(42), false, t0).unwrap();
        let state = store
            .begin_oauth_flow(&session.token, 42, "v", REDIRECT, t0)
            .unwrap();
        let late = t0 + Duration::minutes(11);
        assert!(store
            .take_oauth_flow(&state, &session.token, late, max_age)
            .unwrap()
            .is_none());
        assert_eq!(count_rows(&store, "oauth_flows"), 0);
    }

    #[test]
    fn flows_end_with_their_session_or_by_pruning() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", t0).unwrap();
        let session = store.create_session(Some(42), false, t0).unwrap();
        let state = store
            .begin_oauth_flow(&session.token, 42, "v", REDIRECT, t0)
            .unwrap();
        store
            .begin_oauth_flow(&session.token, 42, "w", REDIRECT, t0 + Duration::hours(2))
            .unwrap();
        assert_eq!(store.prune_oauth_flows(t0 + Duration::hours(1)).unwrap(), 1);
        assert!(store
            .take_oauth_flow(&state, &session.token, t0, Duration::minutes(10))
            .unwrap()
            .is_none());
        store.delete_session(&session.token).unwrap();
        assert_eq!(count_rows(&store, "oauth_flows"), 0);
    }

    #[test]
    fn a_flow_needs_a_live_session() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "t", "", t0).unwrap();
        assert!(matches!(
            store.begin_oauth_flow("no-such-session", 42, "v", REDIRECT, t0),
            Err(StoreError::NoSuchSession)
        ));
    }
}
