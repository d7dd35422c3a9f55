//! The daily backup: at `BACKUP_TIME`, each enabled user's window as
//! `data/backup/YYYYMMDD/<cybozu user id>.ics`, folders older than `BACKUP_DAYS` removed.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::convert::{to_remote, Directory};
use crate::config::Config;
use crate::cybozu::{Client, Credentials};
use crate::store::Store;

/// The settings key of the last day a backup was written (local date).
const LAST_BACKUP_DAY: &str = "last_backup_day";

/// Whether today's backup is due: `BACKUP_TIME` has passed and today has none yet.
pub fn due(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<bool, crate::store::StoreError> {
    let local = now.with_timezone(&config.timezone);
    if local.time() < config.backup_time {
        return Ok(false);
    }
    let today = local.date_naive().to_string();
    Ok(store.setting(LAST_BACKUP_DAY)?.as_deref() != Some(today.as_str()))
}

/// The folder of one day's backup.
pub fn folder(config: &Config, day: NaiveDate) -> PathBuf {
    config
        .data_dir
        .join("backup")
        .join(day.format("%Y%m%d").to_string())
}

/// Writes today's backup of every enabled user with a stored password; returns the files written
/// and the sentences of users that could not be backed up.
pub fn write(
    store: &Store,
    config: &Config,
    agent: &ureq::Agent,
    now: DateTime<Utc>,
) -> Result<(Vec<PathBuf>, Vec<String>), crate::store::StoreError> {
    let today = now.with_timezone(&config.timezone).date_naive();
    let dir = folder(config, today);
    let mut written = Vec::new();
    let mut problems = Vec::new();
    let Ok(url) = config.cybozu_url() else {
        return Ok((written, vec!["CYBOZU_URL is not set".into()]));
    };
    let window = (
        now - Duration::days(i64::from(config.sync_past_days)),
        now + Duration::days(i64::from(config.sync_future_days)),
    );
    for user in store.list_users()?.into_iter().filter(|u| u.enabled) {
        let Some(password) = store.cybozu_password(user.id)? else {
            continue;
        };
        let client = Client::new(
            url,
            agent.clone(),
            Credentials {
                login: user.login_name.clone(),
                password,
            },
        );
        let cybozu_user = u64::try_from(user.id).unwrap_or_default();
        match client.events(window.0, window.1) {
            Ok(events) => {
                let items: Vec<(String, _)> = events
                    .iter()
                    .map(|e| {
                        let uid = format!("cybozu-{}@dncs", e.id.unwrap_or_default());
                        (uid, to_remote(e, cybozu_user, &Directory::default()))
                    })
                    .collect();
                let path = dir.join(format!("{}.ics", user.id));
                match write_file(&path, &super::icalendar::calendar(&items, now)) {
                    Ok(()) => written.push(path),
                    Err(e) => problems.push(format!("{}: {e}", user.login_name)),
                }
            }
            Err(e) => problems.push(format!("{}: {e}", user.login_name)),
        }
    }
    store.set_setting(LAST_BACKUP_DAY, &today.to_string())?;
    prune(&config.data_dir.join("backup"), today, config.backup_days);
    Ok((written, problems))
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Written beside and renamed: a reader never sees half a backup.
    let partial = path.with_extension("ics.partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// Removes day folders older than `keep_days` (folders not named like a day are left alone).
pub fn prune(backup_dir: &Path, today: NaiveDate, keep_days: u32) {
    let Ok(entries) = std::fs::read_dir(backup_dir) else {
        return;
    };
    let oldest_kept = today - Duration::days(i64::from(keep_days));
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(day) = name
            .to_str()
            .and_then(|n| NaiveDate::parse_from_str(n, "%Y%m%d").ok())
        else {
            continue;
        };
        if day < oldest_kept {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                log::warn!("removing the old backup {}: {e}", entry.path().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_day_folders_are_pruned_and_others_kept() {
        let dir = tempfile::tempdir().expect("dir");
        for name in ["20261001", "20261020", "20261125", "notes"] {
            std::fs::create_dir(dir.path().join(name)).expect("folder");
        }
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        prune(dir.path(), today, 40);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read")
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(left, vec!["20261020", "20261125", "notes"]);
    }
}
