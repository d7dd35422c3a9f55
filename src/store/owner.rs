//! Who may work in the data folder: a command run as root in a folder the web server's account
//! owns is refused before it creates anything there.

use std::path::{Path, PathBuf};

/// Why this process must not work in the data folder.
#[derive(Debug, thiserror::Error)]
#[error(
    "this command runs as root, but the data folder {folder} belongs to {owner}, the account of \
     the web server: files root created there (the run lock, the log, the secret key, a backup) \
     could not be used by the CGI and the scheduled run. Run it as that account, e.g. \
     sudo -u {owner} dncs-sync …"
)]
pub struct ForeignOwner {
    pub folder: PathBuf,
    /// The owner's account name, or `uid N` when the system has no name for it.
    pub owner: String,
}

/// Refuses root in a data folder that belongs to another account.
///
/// install.sh gives `data/` to the web server's account, which both the CGI and cron's
/// `dncs-sync run` use. What root would create there stays root's: the next scheduled run could
/// not open the lock, and a page view could not read a new secret key. SQLite hands the files it
/// creates to the database's owner, but only an instant after creating them, and a page view
/// opening one in that instant finds the database read-only. A folder that does not exist yet, or
/// that root owns, is left to whoever runs. Only Linux tells a process its user this simply; on
/// other systems nothing is checked.
pub fn check_data_folder_owner(data_dir: &Path) -> Result<(), ForeignOwner> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user.
        let runs_as_root = std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0);
        let folder_owner = std::fs::metadata(data_dir).map(|folder| folder.uid());
        if let (true, Ok(uid)) = (runs_as_root, folder_owner) {
            if uid != 0 {
                return Err(ForeignOwner {
                    folder: data_dir.to_path_buf(),
                    owner: account_name(
                        uid,
                        &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
                    )
                    .unwrap_or_else(|| format!("uid {uid}")),
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = data_dir;
    Ok(())
}

/// The web server's account, as `sudo -u` takes it: the account this process runs as (the CGI
/// runs as the web server's account), else the owner of the data folder, which install.sh gives
/// that account; by name when `/etc/passwd` has one, else `#uid`. `None` where neither can be
/// told (not Unix, or no data folder yet on a Unix system without `/proc`).
pub fn web_server_account(data_dir: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self")
            .or_else(|_| std::fs::metadata(data_dir))
            .ok()?
            .uid();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        Some(account_name(uid, &passwd).unwrap_or_else(|| format!("#{uid}")))
    }
    #[cfg(not(unix))]
    {
        let _ = data_dir;
        None
    }
}

/// The name of account `uid` in the text of `/etc/passwd` (`name:password:uid:…`).
#[cfg(any(unix, test))]
fn account_name(uid: u32, passwd: &str) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_come_from_the_passwd_text() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # a comment\n\
                      www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
                      broken line\n";
        assert_eq!(account_name(33, passwd).as_deref(), Some("www-data"));
        assert_eq!(account_name(0, passwd).as_deref(), Some("root"));
        assert_eq!(account_name(48, passwd), None);
    }

    #[cfg(unix)]
    #[test]
    fn root_is_refused_in_a_folder_another_account_owns() {
        use std::os::unix::fs::MetadataExt;
        let folder = tempfile::tempdir().expect("temp dir");
        // Whoever runs this may use a folder of its own.
        assert!(check_data_folder_owner(folder.path()).is_ok());
        assert!(check_data_folder_owner(&folder.path().join("not yet")).is_ok());
        let root = std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0);
        if !root {
            println!("root_is_refused_in_a_folder_another_account_owns: the refusal needs root");
            return;
        }
        std::os::unix::fs::chown(folder.path(), Some(1), Some(1)).expect("chown");
        let refusal = check_data_folder_owner(folder.path()).expect_err("root is refused");
        let text = refusal.to_string();
        assert!(
            text.contains(&folder.path().display().to_string()),
            "{text}"
        );
        let name = account_name(
            1,
            &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
        )
        .unwrap_or_else(|| "uid 1".into());
        assert!(
            text.contains(&format!("sudo -u {name} dncs-sync")),
            "{text}"
        );
    }
}
