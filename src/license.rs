//! Licensed seats (`MAX_USERS`): how many users may be enabled, and the downgrade rule — when
//! more users are enabled than the license allows, every user becomes 無効 and 停止, with links
//! and calendar ids kept, until the administrator chooses whom to enable.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::store::{Store, StoreError};

/// Seats in use and the limit (`None` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seats {
    pub used: usize,
    pub max: Option<usize>,
}

impl Seats {
    pub fn count(store: &Store, config: &Config) -> Result<Self, StoreError> {
        let used = store.list_users()?.iter().filter(|u| u.enabled).count();
        let max = (config.max_users > 0).then_some(config.max_users as usize);
        Ok(Self { used, max })
    }

    /// Whether `more` further users could be enabled.
    pub fn room_for(&self, more: usize) -> bool {
        self.max.is_none_or(|max| self.used + more <= max)
    }

    pub fn exceeded(&self) -> bool {
        self.max.is_some_and(|max| self.used > max)
    }
}

/// Whether one more user may be enabled.
pub fn seat_available(store: &Store, config: &Config) -> Result<bool, StoreError> {
    Ok(Seats::count(store, config)?.room_for(1))
}

/// Applies the downgrade rule; returns true when it had to disable everyone.
pub fn enforce(store: &Store, config: &Config, now: DateTime<Utc>) -> Result<bool, StoreError> {
    if Seats::count(store, config)?.exceeded() {
        store.disable_all_users(now)?;
        log::warn!(
            "more users enabled than MAX_USERS={} allows: every user disabled",
            config.max_users
        );
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    fn setup(max_users: u32, enabled: usize) -> (Store, Config) {
        let store = Store::open_in_memory(SecretKey::generate().expect("key")).expect("store");
        let now = Utc::now();
        for id in 1..=4 {
            store
                .upsert_user(id, &format!("u{id}"), "", now)
                .expect("user");
            store.set_cybozu_password(id, "pw", now).expect("pw");
            store
                .set_target_and_calendar(id, crate::store::Target::Google, "cal", now)
                .expect("cal");
            if (id as usize) <= enabled {
                store.set_enabled(id, true, now).expect("enable");
                store.set_sync_on(id, true, now).expect("sync");
            }
        }
        let ini = format!("MAX_USERS={max_users}\n");
        let config =
            Config::from_bytes(ini.as_bytes(), std::path::Path::new("/tmp/dncs.ini")).expect("ini");
        (store, config)
    }

    #[test]
    fn unlimited_always_has_room() {
        let (store, config) = setup(0, 4);
        assert!(seat_available(&store, &config).expect("seats"));
        assert!(!enforce(&store, &config, Utc::now()).expect("enforce"));
    }

    #[test]
    fn a_full_license_has_no_room() {
        let (store, config) = setup(2, 2);
        assert!(!seat_available(&store, &config).expect("seats"));
        assert!(!enforce(&store, &config, Utc::now()).expect("within the license"));
    }

    #[test]
    fn a_downgrade_disables_and_stops_everyone_but_keeps_their_links() {
        let (store, config) = setup(2, 3);
        assert!(enforce(&store, &config, Utc::now()).expect("enforce"));
        for user in store.list_users().expect("users") {
            assert!(
                !user.enabled && !user.sync_on,
                "{} still on",
                user.login_name
            );
            assert_eq!(user.calendar_id, "cal");
            assert!(user.has_cybozu_password);
        }
    }
}
