//! The `users` table: each Cybozu user's switches, link to Google or CalDAV, sealed credentials
//! and the state of their last pass.

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::{
    read_optional_time, read_time, require_user, unix, Failure, Result, Store, StoreError, UserId,
};

db_enum! {
    /// The calendar a user syncs with (同期対象).
    pub enum Target {
        Google = "google",
        Caldav = "caldav",
    }
}

db_enum! {
    /// How a Google refresh token was obtained.
    pub enum Provenance {
        /// Imported from the old product's out-of-band flow, which Google no longer offers.
        Oob = "oob",
        Relay = "relay",
        Direct = "direct",
    }
}

db_enum! {
    /// Which OAuth client a refresh token belongs to (a token refreshes only with its own client).
    pub enum GoogleClient {
        Current = "current",
        Legacy = "legacy",
    }
}

/// A user as the screens and the sync engine see them; secrets are read with their own calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub login_name: String,
    pub display_name: String,
    /// 利用ステータス 有効, set by the administrator.
    pub enabled: bool,
    /// 同期状態 同期, set by the user.
    pub sync_on: bool,
    pub target: Target,
    pub calendar_id: String,
    pub has_cybozu_password: bool,
    /// Present while a Google refresh token is stored.
    pub google: Option<GoogleLink>,
    pub caldav_url: String,
    pub caldav_user: String,
    pub has_caldav_password: bool,
    pub last_pass_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Set while a pass for this user runs (状態: 同期処理中).
    pub syncing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What is known about a user's stored Google authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoogleLink {
    pub provenance: Provenance,
    pub client: GoogleClient,
    /// Google refused the refresh token (`invalid_grant`): passes skip the user until they link again.
    pub needs_relink: bool,
    pub access_expires_at: Option<DateTime<Utc>>,
}

impl GoogleLink {
    /// Whether the screen says 認証済(再認証が必要です): a refused token, or a legacy OOB token
    /// that still works but cannot be renewed once Google retires the legacy client.
    pub fn asks_for_relink(&self) -> bool {
        self.needs_relink || self.provenance == Provenance::Oob
    }
}

/// A Google access token and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Declares [`UserColumn`] and [`USER_COLUMNS`], the select list it numbers, in one order.
macro_rules! user_columns {
    ($first:ident = $first_sql:literal $(, $column:ident = $sql:literal)* $(,)?) => {
        /// A column of [`USER_COLUMNS`] by position. A user is read on every page view, and
        /// rusqlite finds a column by name by comparing the name with each column's in turn.
        #[derive(Clone, Copy)]
        enum UserColumn {
            $first $(, $column)*
        }

        const USER_COLUMNS: &str = concat!($first_sql $(, ", ", $sql)*);
    };
}

user_columns! {
    Id = "id",
    LoginName = "login_name",
    DisplayName = "display_name",
    Enabled = "enabled",
    SyncOn = "sync_on",
    Target = "target",
    CalendarId = "calendar_id",
    HasCybozuPassword = "cybozu_password IS NOT NULL",
    HasGoogleLink = "google_refresh_token IS NOT NULL",
    GoogleProvenance = "google_provenance",
    GoogleClient = "google_client",
    GoogleNeedsRelink = "google_needs_relink",
    GoogleAccessExpires = "google_access_expires",
    CaldavUrl = "caldav_url",
    CaldavUser = "caldav_user",
    HasCaldavPassword = "caldav_password IS NOT NULL",
    LastPassAt = "last_pass_at",
    LastError = "last_error",
    SyncingSince = "syncing_since",
    CreatedAt = "created_at",
    UpdatedAt = "updated_at",
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    use UserColumn as C;
    let at = |column: C| column as usize;
    let google = if row.get(at(C::HasGoogleLink))? {
        let missing = |column: &str| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                Type::Null,
                format!("a Google refresh token without {column}").into(),
            )
        };
        Some(GoogleLink {
            provenance: row
                .get::<_, Option<Provenance>>(at(C::GoogleProvenance))?
                .ok_or_else(|| missing("google_provenance"))?,
            client: row
                .get::<_, Option<GoogleClient>>(at(C::GoogleClient))?
                .ok_or_else(|| missing("google_client"))?,
            needs_relink: row.get(at(C::GoogleNeedsRelink))?,
            access_expires_at: read_optional_time(row, at(C::GoogleAccessExpires))?,
        })
    } else {
        None
    };
    Ok(User {
        id: row.get(at(C::Id))?,
        login_name: row.get(at(C::LoginName))?,
        display_name: row.get(at(C::DisplayName))?,
        enabled: row.get(at(C::Enabled))?,
        sync_on: row.get(at(C::SyncOn))?,
        target: row.get(at(C::Target))?,
        calendar_id: row.get(at(C::CalendarId))?,
        has_cybozu_password: row.get(at(C::HasCybozuPassword))?,
        google,
        caldav_url: row.get(at(C::CaldavUrl))?,
        caldav_user: row.get(at(C::CaldavUser))?,
        has_caldav_password: row.get(at(C::HasCaldavPassword))?,
        last_pass_at: read_optional_time(row, at(C::LastPassAt))?,
        last_error: row.get(at(C::LastError))?,
        syncing_since: read_optional_time(row, at(C::SyncingSince))?,
        created_at: read_time(row, at(C::CreatedAt))?,
        updated_at: read_time(row, at(C::UpdatedAt))?,
    })
}

/// What identifies the calendar a user syncs with: a change of it starts the sync over.
struct CalendarIdentity {
    target: Target,
    calendar_id: String,
    caldav_url: String,
}

/// The Google calendar an id names: an empty one is the account's `primary` calendar.
fn google_calendar(id: &str) -> &str {
    match id.trim() {
        "" => "primary",
        named => named,
    }
}

fn current_calendar(tx: &Transaction<'_>, id: UserId) -> Result<CalendarIdentity, Failure> {
    tx.query_row(
        "SELECT target, calendar_id, caldav_url FROM users WHERE id = ?1",
        [id],
        |row| {
            Ok(CalendarIdentity {
                target: row.get(0)?,
                calendar_id: row.get(1)?,
                caldav_url: row.get(2)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| StoreError::NoSuchUser(id).into())
}

/// The sealed columns of `users`, each opened under the context `<column>:<user id>`.
#[derive(Clone, Copy)]
enum SealedColumn {
    CybozuPassword,
    GoogleRefreshToken,
    GoogleAccessToken,
    CaldavPassword,
}

impl SealedColumn {
    fn name(self) -> &'static str {
        match self {
            SealedColumn::CybozuPassword => "cybozu_password",
            SealedColumn::GoogleRefreshToken => "google_refresh_token",
            SealedColumn::GoogleAccessToken => "google_access_token",
            SealedColumn::CaldavPassword => "caldav_password",
        }
    }
}

impl Store {
    /// Records a Cybozu user (from the directory or a first login), keeping their settings.
    ///
    /// An empty `display_name` keeps the stored one. Cybozu login names are unique only at any
    /// one moment, so a row still holding this login name under another id (a renamed user not
    /// yet refreshed) is renamed to `#<id>` until its own refresh.
    pub fn upsert_user(
        &self,
        id: UserId,
        login_name: &str,
        display_name: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write("saving a user", |tx| {
            tx.execute(
                "UPDATE users SET login_name = '#' || id, updated_at = ?3
                 WHERE login_name = ?1 AND id <> ?2",
                params![login_name, id, unix(now)],
            )?;
            tx.execute(
                "INSERT INTO users (id, login_name, display_name, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (id) DO UPDATE SET
                     login_name = excluded.login_name,
                     display_name = CASE WHEN excluded.display_name = '' THEN display_name
                                         ELSE excluded.display_name END,
                     updated_at = excluded.updated_at
                 WHERE login_name <> excluded.login_name
                    OR (excluded.display_name <> '' AND display_name <> excluded.display_name)",
                params![id, login_name, display_name, unix(now)],
            )?;
            Ok(())
        })
    }

    pub fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.read("reading a user", |db| {
            Ok(db
                .query_row(
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                    [id],
                    user_from_row,
                )
                .optional()?)
        })
    }

    pub fn user_by_login(&self, login_name: &str) -> Result<Option<User>> {
        self.read("reading a user", |db| {
            Ok(db
                .query_row(
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE login_name = ?1"),
                    [login_name],
                    user_from_row,
                )
                .optional()?)
        })
    }

    /// Every user, by Cybozu id.
    pub fn list_users(&self) -> Result<Vec<User>> {
        self.read("listing users", |db| {
            let mut statement =
                db.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
            let users = statement
                .query_map([], user_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(users)
        })
    }

    /// Removes a user and, through the foreign keys, everything that belongs to them.
    pub fn delete_user(&self, id: UserId) -> Result<bool> {
        self.write("deleting a user", |tx| {
            Ok(tx.execute("DELETE FROM users WHERE id = ?1", [id])? > 0)
        })
    }

    /// 利用ステータス (administrator). The user's own 同期状態 is kept, so re-enabling a user
    /// restores what they chose; a pass syncs only users who are both enabled and on.
    pub fn set_enabled(&self, id: UserId, enabled: bool, now: DateTime<Utc>) -> Result<()> {
        self.update_user(
            "changing a user's 利用ステータス",
            id,
            "UPDATE users SET enabled = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, enabled, unix(now)],
        )
    }

    /// 同期状態 (the user). The caller checks that the administrator enabled the user.
    pub fn set_sync_on(&self, id: UserId, sync_on: bool, now: DateTime<Utc>) -> Result<()> {
        self.update_user(
            "changing a user's 同期状態",
            id,
            "UPDATE users SET sync_on = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, sync_on, unix(now)],
        )
    }

    /// Every user becomes 無効 and 停止, links and calendar ids kept (more users than seats).
    pub fn disable_all_users(&self, now: DateTime<Utc>) -> Result<usize> {
        self.write("disabling every user", |tx| {
            Ok(tx.execute(
                "UPDATE users SET enabled = 0, sync_on = 0, updated_at = ?1
                 WHERE enabled = 1 OR sync_on = 1",
                [unix(now)],
            )?)
        })
    }

    /// Sets 同期対象 and カレンダーID. A change of either drops the user's mappings and cursors
    /// (「それまでの同期情報は失われ新規に同期し直します」); returns whether it did.
    pub fn set_target_and_calendar(
        &self,
        id: UserId,
        target: Target,
        calendar_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.write("changing a user's calendar", |tx| {
            let old = current_calendar(tx, id)?;
            if old.target == target && old.calendar_id == calendar_id {
                return Ok(false);
            }
            tx.execute(
                "UPDATE users SET target = ?2, calendar_id = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, target, calendar_id, unix(now)],
            )?;
            // The same calendar under another spelling keeps what the sync knows: for Google an
            // empty id is `primary`; a CalDAV user's calendar is its URL, not the Google field.
            let same_calendar = old.target == target
                && match target {
                    Target::Google => {
                        google_calendar(&old.calendar_id) == google_calendar(calendar_id)
                    }
                    Target::Caldav => true,
                };
            if same_calendar {
                return Ok(false);
            }
            // True only when sync information was really lost (not for a first choice).
            Ok(super::mappings::drop_sync_state(tx, id)? > 0)
        })
    }

    pub fn set_cybozu_password(
        &self,
        id: UserId,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.set_sealed(id, SealedColumn::CybozuPassword, password, now)
    }

    pub fn cybozu_password(&self, id: UserId) -> Result<Option<String>> {
        self.sealed(id, SealedColumn::CybozuPassword)
    }

    /// Stores a new Google authorization; it replaces any earlier one, its access token included.
    pub fn set_google_link(
        &self,
        id: UserId,
        refresh_token: &str,
        provenance: Provenance,
        client: GoogleClient,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = self.seal(SealedColumn::GoogleRefreshToken.name(), id, refresh_token);
        self.update_user(
            "saving a Google authorization",
            id,
            "UPDATE users SET google_refresh_token = ?2, google_provenance = ?3,
                 google_client = ?4, google_needs_relink = 0, google_access_token = NULL,
                 google_access_expires = NULL, updated_at = ?5
             WHERE id = ?1",
            params![id, sealed, provenance, client, unix(now)],
        )
    }

    pub fn google_refresh_token(&self, id: UserId) -> Result<Option<String>> {
        self.sealed(id, SealedColumn::GoogleRefreshToken)
    }

    pub fn set_google_access_token(
        &self,
        id: UserId,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = self.seal(SealedColumn::GoogleAccessToken.name(), id, token);
        self.update_user(
            "saving a Google access token",
            id,
            "UPDATE users SET google_access_token = ?2, google_access_expires = ?3, updated_at = ?4
             WHERE id = ?1",
            params![id, sealed, unix(expires_at), unix(now)],
        )
    }

    pub fn google_access_token(&self, id: UserId) -> Result<Option<AccessToken>> {
        let stored: Option<(Option<String>, Option<DateTime<Utc>>)> =
            self.read("reading a Google access token", |db| {
                Ok(db
                    .query_row(
                        "SELECT google_access_token, google_access_expires FROM users WHERE id = ?1",
                        [id],
                        |row| {
                            Ok((
                                row.get("google_access_token")?,
                                read_optional_time(row, "google_access_expires")?,
                            ))
                        },
                    )
                    .optional()?)
            })?;
        let Some((Some(sealed), Some(expires_at))) = stored else {
            return Ok(None);
        };
        let token = self.open_sealed(SealedColumn::GoogleAccessToken.name(), id, &sealed)?;
        Ok(Some(AccessToken { token, expires_at }))
    }

    /// Google answered `invalid_grant`: the user must link again, and passes skip them until then.
    pub fn mark_google_needs_relink(&self, id: UserId, now: DateTime<Utc>) -> Result<()> {
        self.update_user(
            "marking a Google link as refused",
            id,
            "UPDATE users SET google_needs_relink = 1, google_access_token = NULL,
                 google_access_expires = NULL, updated_at = ?2
             WHERE id = ?1",
            params![id, unix(now)],
        )
    }

    /// Forgets the user's Google authorization (未認証).
    pub fn clear_google_link(&self, id: UserId, now: DateTime<Utc>) -> Result<()> {
        self.update_user(
            "removing a Google authorization",
            id,
            "UPDATE users SET google_refresh_token = NULL, google_provenance = NULL,
                 google_client = NULL, google_needs_relink = 0, google_access_token = NULL,
                 google_access_expires = NULL, updated_at = ?2
             WHERE id = ?1",
            params![id, unix(now)],
        )
    }

    /// Sets the CalDAV account; `password: None` keeps the stored one (the form never shows it
    /// back). A changed URL while CalDAV is the target is a different calendar, so it drops the
    /// user's mappings and cursors like a changed カレンダーID; returns whether it did.
    pub fn set_caldav_account(
        &self,
        id: UserId,
        url: &str,
        username: &str,
        password: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sealed = password.map(|p| self.seal(SealedColumn::CaldavPassword.name(), id, p));
        self.write("saving a CalDAV account", |tx| {
            let old = current_calendar(tx, id)?;
            tx.execute(
                "UPDATE users SET caldav_url = ?2, caldav_user = ?3,
                     caldav_password = coalesce(?4, caldav_password), updated_at = ?5
                 WHERE id = ?1",
                params![id, url, username, sealed, unix(now)],
            )?;
            let calendar_changed = old.target == Target::Caldav && old.caldav_url != url;
            if calendar_changed {
                return Ok(super::mappings::drop_sync_state(tx, id)? > 0);
            }
            Ok(false)
        })
    }

    pub fn caldav_password(&self, id: UserId) -> Result<Option<String>> {
        self.sealed(id, SealedColumn::CaldavPassword)
    }

    /// Marks the user as being synced now (状態: 同期処理中).
    pub fn begin_pass(&self, id: UserId, now: DateTime<Utc>) -> Result<()> {
        self.update_user(
            "recording the start of a pass",
            id,
            "UPDATE users SET syncing_since = ?2 WHERE id = ?1",
            params![id, unix(now)],
        )
    }

    /// Records the end of a pass and its error for the user list (`None`: it went well).
    pub fn finish_pass(&self, id: UserId, now: DateTime<Utc>, error: Option<&str>) -> Result<()> {
        self.update_user(
            "recording the end of a pass",
            id,
            "UPDATE users SET syncing_since = NULL, last_pass_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, unix(now), error],
        )
    }

    fn update_user(
        &self,
        doing: &'static str,
        id: UserId,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<()> {
        self.write(doing, |tx| require_user(tx.execute(sql, params)?, id))
    }

    fn set_sealed(
        &self,
        id: UserId,
        column: SealedColumn,
        plaintext: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = self.seal(column.name(), id, plaintext);
        self.update_user(
            "saving a credential",
            id,
            &format!(
                "UPDATE users SET {} = ?2, updated_at = ?3 WHERE id = ?1",
                column.name()
            ),
            params![id, sealed, unix(now)],
        )
    }

    /// The opened value of a sealed column; `None` when the user or the value is absent.
    fn sealed(&self, id: UserId, column: SealedColumn) -> Result<Option<String>> {
        let stored: Option<Option<String>> = self.read("reading a credential", |db| {
            Ok(db
                .query_row(
                    &format!("SELECT {} FROM users WHERE id = ?1", column.name()),
                    [id],
                    |row| row.get(0),
                )
                .optional()?)
        })?;
        stored
            .flatten()
            .map(|sealed| self.open_sealed(column.name(), id, &sealed))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at, count_rows, memory_store};
    use crate::store::{Mapping, Side};

    #[test]
    fn upsert_creates_then_updates_names_only() {
        let store = memory_store();
        let t0 = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "takahashi", "高橋", t0).unwrap();
        store.set_enabled(42, true, t0).unwrap();
        store.set_sync_on(42, true, t0).unwrap();

        let t1 = at("2026-11-25T02:00:00Z");
        store.upsert_user(42, "takahashi2", "", t1).unwrap();
        let user = store.user_by_login("takahashi2").unwrap().unwrap();
        assert_eq!(user.id, 42);
        assert_eq!(user.display_name, "高橋");
        assert!(user.enabled && user.sync_on);
        assert_eq!(user.created_at, t0);
        assert_eq!(user.updated_at, t1);
        assert!(store.user_by_login("takahashi").unwrap().is_none());
    }

    #[test]
    fn a_login_name_taken_over_by_another_id_displaces_the_stale_row() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(1, "sato", "佐藤", now).unwrap();
        store.upsert_user(2, "sato", "佐藤 二郎", now).unwrap();
        assert_eq!(store.user_by_login("sato").unwrap().unwrap().id, 2);
        assert_eq!(store.user_by_id(1).unwrap().unwrap().login_name, "#1");
    }

    #[test]
    fn new_users_start_disabled_and_unlinked() {
        let store = memory_store();
        store
            .upsert_user(5, "suzuki", "鈴木", at("2026-11-25T01:00:00Z"))
            .unwrap();
        let user = store.user_by_id(5).unwrap().unwrap();
        assert!(!user.enabled && !user.sync_on);
        assert_eq!(user.target, Target::Google);
        assert!(user.google.is_none());
        assert!(!user.has_cybozu_password && !user.has_caldav_password);
        assert!(store.cybozu_password(5).unwrap().is_none());
        assert!(store.google_access_token(5).unwrap().is_none());
    }

    #[test]
    fn disabling_a_user_keeps_their_own_choice() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(5, "suzuki", "", now).unwrap();
        store.set_enabled(5, true, now).unwrap();
        store.set_sync_on(5, true, now).unwrap();
        store.set_enabled(5, false, now).unwrap();
        let user = store.user_by_id(5).unwrap().unwrap();
        assert!(!user.enabled && user.sync_on);
    }

    #[test]
    fn disable_all_users_keeps_links() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        for id in 1..=3 {
            store.upsert_user(id, &format!("u{id}"), "", now).unwrap();
            store.set_enabled(id, true, now).unwrap();
            store.set_sync_on(id, true, now).unwrap();
            store
                .set_target_and_calendar(id, Target::Google, "primary", now)
                .unwrap();
        }
        assert_eq!(store.disable_all_users(now).unwrap(), 3);
        for user in store.list_users().unwrap() {
            assert!(!user.enabled && !user.sync_on);
            assert_eq!(user.calendar_id, "primary");
        }
    }

    #[test]
    fn changes_to_a_missing_user_are_typed_errors() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        assert!(matches!(
            store.set_enabled(9, true, now),
            Err(StoreError::NoSuchUser(9))
        ));
        assert!(matches!(
            store.set_cybozu_password(9, "x", now),
            Err(StoreError::NoSuchUser(9))
        ));
        assert!(matches!(
            store.set_target_and_calendar(9, Target::Caldav, "x", now),
            Err(StoreError::NoSuchUser(9))
        ));
    }

    #[test]
    fn changing_calendar_or_target_drops_mappings_and_cursors() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "takahashi", "", now).unwrap();
        store.upsert_user(43, "other", "", now).unwrap();
        let fill = |user| {
            store
                .put_mapping(
                    user,
                    &Mapping {
                        cybozu_id: 1,
                        cybozu_version: 10,
                        remote_id: "r1".into(),
                        remote_etag: None,
                        extra: serde_json::Value::Null,
                    },
                )
                .unwrap();
            store.set_cursor(user, Side::Google, "token", now).unwrap();
            store.set_cursor(user, Side::Cybozu, "c", now).unwrap();
        };
        for user in [42, 43] {
            // A first choice loses nothing, so it reports nothing dropped.
            assert!(!store
                .set_target_and_calendar(user, Target::Google, "primary", now)
                .unwrap());
            fill(user);
        }

        assert!(!store
            .set_target_and_calendar(42, Target::Google, "primary", now)
            .unwrap());
        assert_eq!(store.mappings_for_user(42).unwrap().len(), 1);
        // An empty id is the primary calendar too: written as typed, nothing dropped.
        assert!(!store
            .set_target_and_calendar(42, Target::Google, "", now)
            .unwrap());
        assert_eq!(store.user_by_id(42).unwrap().unwrap().calendar_id, "");
        assert_eq!(store.mappings_for_user(42).unwrap().len(), 1);
        assert!(!store
            .set_target_and_calendar(42, Target::Google, "primary", now)
            .unwrap());
        assert_eq!(store.mappings_for_user(42).unwrap().len(), 1);

        assert!(store
            .set_target_and_calendar(42, Target::Google, "work@example.com", now)
            .unwrap());
        assert!(store.mappings_for_user(42).unwrap().is_empty());
        assert!(store.cursor(42, Side::Google).unwrap().is_none());
        assert!(store.cursor(42, Side::Cybozu).unwrap().is_none());

        fill(42);
        assert!(store
            .set_target_and_calendar(42, Target::Caldav, "work@example.com", now)
            .unwrap());
        assert!(store.mappings_for_user(42).unwrap().is_empty());

        assert_eq!(store.mappings_for_user(43).unwrap().len(), 1);
        assert!(store.cursor(43, Side::Google).unwrap().is_some());
    }

    #[test]
    fn changing_the_caldav_url_of_a_caldav_user_drops_sync_state() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "takahashi", "", now).unwrap();
        store
            .set_target_and_calendar(42, Target::Caldav, "", now)
            .unwrap();
        assert!(!store
            .set_caldav_account(42, "https://dav/a/", "taka", Some("pw1"), now)
            .unwrap());
        store.set_cursor(42, Side::Caldav, "ctag", now).unwrap();
        // The Google field does not name a CalDAV user's calendar: editing it drops nothing.
        assert!(!store
            .set_target_and_calendar(42, Target::Caldav, "someone@example.com", now)
            .unwrap());
        assert!(store.cursor(42, Side::Caldav).unwrap().is_some());

        assert!(!store
            .set_caldav_account(42, "https://dav/a/", "taka2", None, now)
            .unwrap());
        assert_eq!(store.caldav_password(42).unwrap().as_deref(), Some("pw1"));
        assert!(store.cursor(42, Side::Caldav).unwrap().is_some());
        let user = store.user_by_id(42).unwrap().unwrap();
        assert_eq!(user.caldav_user, "taka2");
        assert!(user.has_caldav_password);

        assert!(store
            .set_caldav_account(42, "https://dav/b/", "taka2", Some("pw2"), now)
            .unwrap());
        assert!(store.cursor(42, Side::Caldav).unwrap().is_none());
        assert_eq!(store.caldav_password(42).unwrap().as_deref(), Some("pw2"));
    }

    #[test]
    fn google_link_lifecycle() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "takahashi", "", now).unwrap();
        store
            .set_google_link(42, "1//legacy", Provenance::Oob, GoogleClient::Legacy, now)
            .unwrap();
        let link = store.user_by_id(42).unwrap().unwrap().google.unwrap();
        assert_eq!(link.provenance, Provenance::Oob);
        assert_eq!(link.client, GoogleClient::Legacy);
        assert!(!link.needs_relink && link.asks_for_relink());

        let expiry = at("2026-11-25T02:00:00Z");
        store
            .set_google_access_token(42, "ya29.access", expiry, now)
            .unwrap();
        let access = store.google_access_token(42).unwrap().unwrap();
        assert_eq!(
            (access.token.as_str(), access.expires_at),
            ("ya29.access", expiry)
        );
        assert!(!format!("{access:?}").contains("ya29"));

        store.mark_google_needs_relink(42, now).unwrap();
        let link = store.user_by_id(42).unwrap().unwrap().google.unwrap();
        assert!(link.needs_relink);
        assert!(store.google_access_token(42).unwrap().is_none());
        assert_eq!(
            store.google_refresh_token(42).unwrap().as_deref(),
            Some("1//legacy")
        );

        store
            .set_google_link(
                42,
                "1//fresh",
                Provenance::Relay,
                GoogleClient::Current,
                now,
            )
            .unwrap();
        let link = store.user_by_id(42).unwrap().unwrap().google.unwrap();
        assert!(!link.asks_for_relink());
        assert_eq!(
            store.google_refresh_token(42).unwrap().as_deref(),
            Some("1//fresh")
        );

        store.clear_google_link(42, now).unwrap();
        assert!(store.user_by_id(42).unwrap().unwrap().google.is_none());
        assert!(store.google_refresh_token(42).unwrap().is_none());
    }

    #[test]
    fn a_secret_copied_to_another_user_does_not_open() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(1, "a", "", now).unwrap();
        store.upsert_user(2, "b", "", now).unwrap();
        store.set_cybozu_password(1, "only-for-1", now).unwrap();
        store
            .conn
            .execute(
                "UPDATE users SET cybozu_password = (SELECT cybozu_password FROM users WHERE id = 1)
                 WHERE id = 2",
                [],
            )
            .unwrap();
        assert!(matches!(
            store.cybozu_password(2),
            Err(StoreError::Secret { .. })
        ));
    }

    #[test]
    fn an_unknown_target_in_the_file_is_reported_as_corrupt() {
        let store = memory_store();
        store
            .upsert_user(1, "a", "", at("2026-11-25T01:00:00Z"))
            .unwrap();
        store
            .conn
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 UPDATE users SET target = 'outlook' WHERE id = 1;",
            )
            .unwrap();
        let err = store.user_by_id(1).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn pass_bookkeeping() {
        let store = memory_store();
        let start = at("2026-11-25T01:00:00Z");
        let end = at("2026-11-25T01:01:00Z");
        store.upsert_user(42, "takahashi", "", start).unwrap();
        store.begin_pass(42, start).unwrap();
        assert_eq!(
            store.user_by_id(42).unwrap().unwrap().syncing_since,
            Some(start)
        );
        store
            .finish_pass(42, end, Some("Cybozu のパスワードが違います。"))
            .unwrap();
        let user = store.user_by_id(42).unwrap().unwrap();
        assert_eq!(user.syncing_since, None);
        assert_eq!(user.last_pass_at, Some(end));
        assert_eq!(
            user.last_error.as_deref(),
            Some("Cybozu のパスワードが違います。")
        );
    }

    #[test]
    fn deleting_a_user_removes_what_belongs_to_them() {
        let store = memory_store();
        let now = at("2026-11-25T01:00:00Z");
        store.upsert_user(42, "takahashi", "", now).unwrap();
        store.set_cursor(42, Side::Cybozu, "c", now).unwrap();
        store.create_session(Some(42), false, now).unwrap();
        assert!(store.delete_user(42).unwrap());
        assert!(!store.delete_user(42).unwrap());
        assert_eq!(count_rows(&store, "cursors"), 0);
        assert_eq!(count_rows(&store, "sessions"), 0);
    }
}
