//! The `settings` table: install-wide values (install id, admin password hash, OAuth
//! state-signing key), some of them sealed.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, Store};

/// Names Google event ids; fixed at the first start and never changed (see DESIGN §5).
pub const SETTING_INSTALL_ID: &str = "install_id";
/// The administrator password's hash, as `dncs-sync admin-password` writes it.
pub const SETTING_ADMIN_PASSWORD_HASH: &str = "admin_password_hash";
/// The HMAC key that signs OAuth `state`; keep it with [`Store::secret_setting_or_insert_with`].
pub const SETTING_OAUTH_STATE_KEY: &str = "oauth_state_key";

/// When `dncs-sync run` was last started by the schedule (UNIX seconds), locked out or not: the
/// administrator's screen tells from it whether cron or the Task Scheduler runs it at all.
pub const SETTING_LAST_SCHEDULED_RUN: &str = "last_scheduled_run";

/// The `dncs.ini` warnings last written to the log, one per line.
const SETTING_LOGGED_INI_WARNINGS: &str = "logged_ini_warnings";

pub(super) const SEALED_SETTING: &str = "setting";
/// The settings stored sealed: what forgetting the secrets removes (each is made again when
/// first needed).
pub(super) const SEALED_SETTING_KEYS: [&str; 1] = [SETTING_OAUTH_STATE_KEY];

fn read_setting(db: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    db.query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

impl Store {
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.read("reading a setting", |db| Ok(read_setting(db, key)?))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.write("saving a setting", |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// Whether `warnings` (of `dncs.ini`) differ from those last reported, remembering them:
    /// the scheduled run logs them when they change, not once a minute for as long as the
    /// mistyped line stays.
    pub fn ini_warnings_are_new(&self, warnings: &[String]) -> Result<bool> {
        let text = warnings.join("\n");
        self.write("remembering the dncs.ini warnings", |tx| {
            let last = read_setting(tx, SETTING_LOGGED_INI_WARNINGS)?.unwrap_or_default();
            if last == text {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![SETTING_LOGGED_INI_WARNINGS, text],
            )?;
            Ok(!warnings.is_empty())
        })
    }

    pub fn delete_setting(&self, key: &str) -> Result<bool> {
        self.write("deleting a setting", |tx| {
            Ok(tx.execute("DELETE FROM settings WHERE key = ?1", [key])? > 0)
        })
    }

    /// The stored value, or `make()` stored and returned. Two processes starting at once agree
    /// on one value, which matters for values that must never change, like the install id.
    pub fn setting_or_insert_with(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String> {
        self.write("creating a setting", |tx| {
            if let Some(value) = read_setting(tx, key)? {
                return Ok(value);
            }
            let value = make();
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok(value)
        })
    }

    /// Like [`Store::setting`] for a value kept sealed.
    pub fn secret_setting(&self, key: &str) -> Result<Option<String>> {
        self.setting(key)?
            .map(|sealed| self.open_sealed(SEALED_SETTING, key, &sealed))
            .transpose()
    }

    pub fn set_secret_setting(&self, key: &str, value: &str) -> Result<()> {
        self.set_setting(key, &self.seal(SEALED_SETTING, key, value))
    }

    /// Like [`Store::setting_or_insert_with`] for a value kept sealed.
    pub fn secret_setting_or_insert_with(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String> {
        let sealed =
            self.setting_or_insert_with(key, || self.seal(SEALED_SETTING, key, &make()))?;
        self.open_sealed(SEALED_SETTING, key, &sealed)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::memory_store;

    use super::*;

    #[test]
    fn ini_warnings_are_new_once_and_again_when_they_change() {
        let store = crate::store::tests::memory_store();
        let warnings = vec!["line 3: unknown key SYNC_INTRVAL".to_string()];
        assert!(!store.ini_warnings_are_new(&[]).unwrap(), "none to report");
        assert!(store.ini_warnings_are_new(&warnings).unwrap());
        assert!(
            !store.ini_warnings_are_new(&warnings).unwrap(),
            "already logged"
        );
        assert!(
            !store.ini_warnings_are_new(&[]).unwrap(),
            "mended: nothing to log"
        );
        assert!(store.ini_warnings_are_new(&warnings).unwrap(), "back again");
    }

    #[test]
    fn plain_settings() {
        let store = memory_store();
        assert_eq!(store.setting("k").unwrap(), None);
        store.set_setting("k", "1").unwrap();
        store.set_setting("k", "2").unwrap();
        assert_eq!(store.setting("k").unwrap().as_deref(), Some("2"));
        assert!(store.delete_setting("k").unwrap());
        assert_eq!(store.setting("k").unwrap(), None);
    }

    #[test]
    fn insert_with_keeps_the_first_value() {
        let store = memory_store();
        let first = store
            .setting_or_insert_with(SETTING_INSTALL_ID, || "one".into())
            .unwrap();
        let second = store
            .setting_or_insert_with(SETTING_INSTALL_ID, || "two".into())
            .unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    }

    #[test]
    fn secret_settings_are_sealed() {
        let store = memory_store();
        let key = store
            .secret_setting_or_insert_with(SETTING_OAUTH_STATE_KEY, || "hmac-key".into())
            .unwrap();
        assert_eq!(key, "hmac-key");
        let again = store
            .secret_setting_or_insert_with(SETTING_OAUTH_STATE_KEY, || "other".into())
            .unwrap();
        assert_eq!(again, "hmac-key");
        let raw = store.setting(SETTING_OAUTH_STATE_KEY).unwrap().unwrap();
        assert!(raw.starts_with("v1.") && !raw.contains("hmac-key"));

        store.set_secret_setting("smtp", "pw").unwrap();
        assert_eq!(store.secret_setting("smtp").unwrap().as_deref(), Some("pw"));
        assert_eq!(store.secret_setting("absent").unwrap(), None);
    }
}
