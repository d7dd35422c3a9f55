//! The stored secrets as a whole: whether any are stored, how many the key cannot open, and
//! forgetting them all when the key they were sealed with is lost for good.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{unix, Result, Store};

/// The sealed columns of `users`, with the column name each value is bound to (see `seal`).
const USER_COLUMNS: [&str; 4] = [
    "cybozu_password",
    "google_refresh_token",
    "google_access_token",
    "caldav_password",
];

/// What [`Store::forget_secrets`] removed, for the administrator to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForgottenSecrets {
    /// Users whose Cybozu password, Google link or CalDAV password was removed.
    pub users: usize,
    /// Google links imported from the earlier installation that were still waiting for a login.
    pub legacy_links: usize,
}

impl Store {
    /// Whether the database holds any value sealed with the data folder's key.
    pub fn holds_secrets(&self) -> Result<bool> {
        let any_user_column = USER_COLUMNS
            .iter()
            .map(|column| format!("{column} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM users WHERE {any_user_column})
                 OR EXISTS (SELECT 1 FROM oauth_flows)
                 OR EXISTS (SELECT 1 FROM legacy_links)
                 OR EXISTS (SELECT 1 FROM settings WHERE key IN ({}))",
            sealed_setting_list()
        );
        self.read("looking for stored secrets", |db| {
            Ok(db.query_row(&sql, [], |row| row.get(0))?)
        })
    }

    /// How many stored secrets the current key cannot open (0 when all can, or none is stored).
    pub fn unopenable_secrets(&self) -> Result<usize> {
        let mut sealed: Vec<(String, String)> = Vec::new();
        self.read("reading the stored secrets", |db| {
            for column in USER_COLUMNS {
                let mut statement = db.prepare(&format!(
                    "SELECT id, {column} FROM users WHERE {column} IS NOT NULL"
                ))?;
                let rows = statement.query_map([], |row| {
                    Ok((
                        format!("{column}:{}", row.get::<_, i64>(0)?),
                        row.get::<_, String>(1)?,
                    ))
                })?;
                for row in rows {
                    sealed.push(row?);
                }
            }
            let settings = format!(
                "SELECT key, value FROM settings WHERE key IN ({})",
                sealed_setting_list()
            );
            for (context, sql) in [
                (
                    super::oauth_flows::SEALED_VERIFIER,
                    "SELECT state_id, pkce_verifier FROM oauth_flows",
                ),
                (
                    super::legacy_links::SEALED_TOKEN,
                    "SELECT login_name, refresh_token FROM legacy_links",
                ),
                (super::settings::SEALED_SETTING, settings.as_str()),
            ] {
                let mut statement = db.prepare(sql)?;
                let rows = statement.query_map([], |row| {
                    Ok((
                        format!("{context}:{}", row.get::<_, String>(0)?),
                        row.get::<_, String>(1)?,
                    ))
                })?;
                for row in rows {
                    sealed.push(row?);
                }
            }
            Ok(())
        })?;
        Ok(sealed
            .iter()
            .filter(|(context, value)| self.key.open(context, value).is_err())
            .count())
    }

    /// Removes every stored secret: Cybozu passwords (stored again at each user's next login),
    /// Google links (未認証 until 認証 again), CalDAV passwords, Google consents under way and
    /// imported links still waiting. Settings, calendars and what the sync knows are kept.
    pub fn forget_secrets(&self, now: DateTime<Utc>) -> Result<ForgottenSecrets> {
        self.write("forgetting the stored secrets", |tx| {
            let users = tx.execute(
                "UPDATE users SET cybozu_password = NULL, google_refresh_token = NULL,
                     google_provenance = NULL, google_client = NULL, google_needs_relink = 0,
                     google_access_token = NULL, google_access_expires = NULL,
                     caldav_password = NULL, updated_at = ?1
                 WHERE cybozu_password IS NOT NULL OR google_refresh_token IS NOT NULL
                     OR google_access_token IS NOT NULL OR caldav_password IS NOT NULL",
                params![unix(now)],
            )?;
            tx.execute("DELETE FROM oauth_flows", [])?;
            tx.execute(
                &format!(
                    "DELETE FROM settings WHERE key IN ({})",
                    sealed_setting_list()
                ),
                [],
            )?;
            let legacy_links = tx.execute("DELETE FROM legacy_links", [])?;
            Ok(ForgottenSecrets {
                users,
                legacy_links,
            })
        })
    }
}

/// The sealed settings' keys as an SQL list (constants of this program, so no parameters).
fn sealed_setting_list() -> String {
    super::settings::SEALED_SETTING_KEYS
        .iter()
        .map(|key| format!("'{key}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;
    use crate::store::tests::{at, memory_store};
    use crate::store::{GoogleClient, Provenance};

    #[test]
    fn secrets_are_found_counted_when_unopenable_and_forgotten() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        assert!(!store.holds_secrets().unwrap());
        store.upsert_user(42, "takahashi", "", now).unwrap();
        store.upsert_user(43, "sato", "", now).unwrap();
        assert!(!store.holds_secrets().unwrap(), "a user without secrets");
        store.set_cybozu_password(42, "pw", now).unwrap();
        store
            .set_google_link(
                42,
                "refresh",
                Provenance::Direct,
                GoogleClient::Current,
                now,
            )
            .unwrap();
        store
            .set_caldav_account(43, "https://dav/", "sato", Some("dav-pw"), now)
            .unwrap();
        store
            .secret_setting_or_insert_with(crate::store::SETTING_OAUTH_STATE_KEY, || "k".into())
            .unwrap();
        assert!(store.holds_secrets().unwrap());
        assert_eq!(store.unopenable_secrets().unwrap(), 0);

        // The same database under another key: every value is sealed with the lost one.
        let other = store.with_key_for_tests(SecretKey::generate().unwrap());
        assert_eq!(other.unopenable_secrets().unwrap(), 4);

        let forgotten = other.forget_secrets(now).unwrap();
        assert_eq!(
            forgotten,
            ForgottenSecrets {
                users: 2,
                legacy_links: 0
            }
        );
        assert!(!other.holds_secrets().unwrap());
        assert_eq!(other.unopenable_secrets().unwrap(), 0);
        // The OAuth state key is made again, under the new key, when 認証 next needs it.
        assert_eq!(
            other
                .secret_setting_or_insert_with(crate::store::SETTING_OAUTH_STATE_KEY, || {
                    "new".into()
                })
                .unwrap(),
            "new"
        );
        let user = other.user_by_id(42).unwrap().unwrap();
        assert!(user.google.is_none(), "未認証");
        assert_eq!(user.login_name, "takahashi", "the user and settings stay");
        assert_eq!(
            other.user_by_id(43).unwrap().unwrap().caldav_url,
            "https://dav/"
        );
    }
}
