//! The `legacy_links` table: Google links imported from an earlier installation
//! (`dncs-sync import-legacy`) for users this database does not know yet. The old installation
//! names users by login name; the link is taken and applied at the user's first login, when the
//! Cybozu id becomes known.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{read_time, unix, Provenance, Result, Store};

pub(super) const SEALED_TOKEN: &str = "legacy_refresh_token";

/// An imported link waiting for its user.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacyLink {
    pub login_name: String,
    pub refresh_token: String,
    pub calendar_id: String,
    pub provenance: Provenance,
    pub imported_at: DateTime<Utc>,
}

impl std::fmt::Debug for LegacyLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyLink")
            .field("login_name", &self.login_name)
            .field("calendar_id", &self.calendar_id)
            .field("provenance", &self.provenance)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Keeps a link for a login name until that user first logs in; a second import replaces it.
    pub fn put_legacy_link(
        &self,
        login_name: &str,
        refresh_token: &str,
        calendar_id: &str,
        provenance: Provenance,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = self.seal(SEALED_TOKEN, login_name, refresh_token);
        self.write("keeping an imported Google link", |tx| {
            tx.execute(
                "INSERT INTO legacy_links (login_name, refresh_token, calendar_id, provenance, imported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (login_name) DO UPDATE SET refresh_token = excluded.refresh_token,
                     calendar_id = excluded.calendar_id, provenance = excluded.provenance,
                     imported_at = excluded.imported_at",
                params![login_name, sealed, calendar_id, provenance.as_str(), unix(now)],
            )?;
            Ok(())
        })
    }

    /// Takes (and removes) the imported link of a login name.
    pub fn take_legacy_link(&self, login_name: &str) -> Result<Option<LegacyLink>> {
        let row = self.write("taking an imported Google link", |tx| {
            Ok(tx
                .query_row(
                    "DELETE FROM legacy_links WHERE login_name = ?1
                     RETURNING refresh_token, calendar_id, provenance, imported_at",
                    [login_name],
                    |row| {
                        Ok((
                            row.get::<_, String>("refresh_token")?,
                            row.get::<_, String>("calendar_id")?,
                            row.get::<_, String>("provenance")?,
                            read_time(row, "imported_at")?,
                        ))
                    },
                )
                .optional()?)
        })?;
        let Some((sealed, calendar_id, provenance, imported_at)) = row else {
            return Ok(None);
        };
        Ok(Some(LegacyLink {
            login_name: login_name.to_string(),
            refresh_token: self.open_sealed(SEALED_TOKEN, login_name, &sealed)?,
            calendar_id,
            provenance: Provenance::parse(&provenance).unwrap_or(Provenance::Oob),
            imported_at,
        }))
    }

    /// How many imported links still wait for their users.
    pub fn pending_legacy_links(&self) -> Result<u64> {
        self.read("counting imported Google links", |db| {
            Ok(db.query_row("SELECT count(*) FROM legacy_links", [], |row| row.get(0))?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    #[test]
    fn a_link_waits_and_is_taken_once() {
        let store = Store::open_in_memory(SecretKey::generate().expect("key")).expect("store");
        let now = Utc::now();
        store
            .put_legacy_link(
                "sato",
                "1//old-token",
                "sato@example.jp",
                Provenance::Oob,
                now,
            )
            .expect("put");
        assert_eq!(store.pending_legacy_links().expect("count"), 1);
        let link = store
            .take_legacy_link("sato")
            .expect("take")
            .expect("found");
        assert_eq!(link.refresh_token, "1//old-token");
        assert_eq!(link.provenance, Provenance::Oob);
        assert!(store.take_legacy_link("sato").expect("take").is_none());
    }
}
