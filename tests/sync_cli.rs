//! `dncs-sync check` and `dncs-sync run`, run as an administrator (or the 同期 button) would.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run_check(ini: &[u8]) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin folder");
    std::fs::write(bin.join("dncs.ini"), ini).expect("ini");
    let output = dncs_sync(&bin.join("dncs.ini"), &["check"]);
    (dir, output)
}

/// An install (bin/dncs.ini, data/ beside bin/) whose Cybozu Office is never reached.
fn install_without_office() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin folder");
    std::fs::write(
        bin.join("dncs.ini"),
        "CYBOZU_URL=http://127.0.0.1:9/cgi-bin/cbag/ag.cgi\r\n",
    )
    .expect("ini");
    let ini = bin.join("dncs.ini");
    (dir, ini)
}

/// [`install_without_office`] whose database knows takahashi (user 7), and that database.
fn install_with_takahashi() -> (tempfile::TempDir, PathBuf, dncs::store::Store) {
    let (dir, ini) = install_without_office();
    let store = dncs::store::open_data_folder(&dir.path().join("data")).expect("data folder");
    store
        .upsert_user(7, "takahashi", "高橋 健太", chrono::Utc::now())
        .expect("user");
    (dir, ini, store)
}

fn dncs_sync(ini: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dncs-sync"))
        .args(args)
        .env("DNCS_INI", ini)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("dncs-sync runs")
}

/// Everything the monthly logs in `data/log` hold.
fn logs(data: &Path) -> String {
    std::fs::read_dir(data.join("log"))
        .expect("the log folder")
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect()
}

#[test]
fn check_creates_the_data_folder_and_reports() {
    let sim = crate::util::demo_sim();
    let ini = format!("\u{feff}CYBOZU_URL={}\r\nUNKNOWN_KEY=1\r\n", sim.url());
    let (dir, output) = run_check(ini.as_bytes());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("line 2: unknown key UNKNOWN_KEY"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "CYBOZU_URL: {} (Cybozu Office answers)",
            sim.url()
        )),
        "{stdout}"
    );
    let schema = format!("schema version {}, 0 users", dncs::store::SCHEMA_VERSION);
    assert!(stdout.contains(&schema), "{stdout}");
    let data = dir.path().join("data");
    assert!(data.join("dncs.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("secret.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn check_names_the_line_and_key_of_a_bad_value() {
    let (_dir, output) = run_check(b"; comment\nCYBOZU_URL=http://x/ag.cgi\nSYNC_THREADS=many\n");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("SYNC_THREADS"),
        "{stderr}"
    );
}

#[test]
fn check_fails_when_cybozu_office_does_not_answer_after_reporting_the_rest() {
    let (dir, output) = run_check(b"CYBOZU_URL=http://127.0.0.1:1/cgi-bin/cbag/ag.cgi\n");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains(
            "CYBOZU_URL: http://127.0.0.1:1/cgi-bin/cbag/ag.cgi (NOT answering: could not reach"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("schema version"),
        "the rest is reported: {stdout}"
    );
    assert!(
        stderr.contains("Cybozu Office does not answer at CYBOZU_URL"),
        "{stderr}"
    );
    assert!(dir.path().join("data").join("dncs.db").exists());
}

#[test]
fn check_names_an_address_that_is_not_cybozu_office() {
    // A web server that answers, but not with SOAP: a wrong path in CYBOZU_URL looks like this.
    let server = tiny_http::Server::http("127.0.0.1:0").expect("a loopback server");
    let port = server.server_addr().to_ip().expect("an IP address").port();
    let answering = std::thread::spawn(move || {
        if let Ok(request) = server.recv() {
            let page =
                tiny_http::Response::from_string("<html>Not Found</html>").with_status_code(404);
            let _ = request.respond(page);
        }
    });
    let ini = format!("CYBOZU_URL=http://127.0.0.1:{port}/cgi-bin/cbag/nothing.cgi\n");
    let (_dir, output) = run_check(ini.as_bytes());
    answering.join().expect("the server thread");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("NOT answering: Cybozu Office answered UtilGetLoginUserId with HTTP 404"),
        "{stdout}"
    );
}

#[test]
fn run_that_fails_says_why_in_the_log_as_well_as_on_stderr() {
    let (dir, ini) = install_without_office();
    // A pass started by 「ただちに同期する」 has its stderr on the null device: the log is all
    // an administrator gets to read.
    let output = dncs_sync(&ini, &["run", "--user", "nosuchuser"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"nosuchuser\""), "{stderr}");
    let logs = logs(&dir.path().join("data"));
    assert!(
        logs.contains(
            "dncs-sync run --user nosuchuser: there is no user with the login name \"nosuchuser\""
        ),
        "{logs}"
    );
}

/// An administrator who runs dncs-sync as root in an install whose data folder belongs to the
/// web server's account is told to run it as that account, and nothing is created there.
#[cfg(unix)]
#[test]
fn root_is_sent_to_the_web_servers_account_and_creates_nothing() {
    use std::os::unix::fs::MetadataExt;
    if !std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0) {
        println!(
            "root_is_sent_to_the_web_servers_account_and_creates_nothing: SKIPPED (needs root)"
        );
        return;
    }
    let (dir, ini) = install_without_office();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data folder");
    // As install.sh leaves it: the data folder is the web server's (here the account with uid 1).
    std::os::unix::fs::chown(&data, Some(1), Some(1)).expect("chown data");
    for command in [&["run"][..], &["check"], &["admin-password"]] {
        let output = dncs_sync(&ini, command);
        assert!(!output.status.success(), "{command:?} ran as root");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("runs as root"), "{command:?}: {stderr}");
        assert!(stderr.contains("sudo -u "), "{command:?}: {stderr}");
        let created: Vec<_> = std::fs::read_dir(&data)
            .expect("the data folder")
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert!(created.is_empty(), "{command:?} created {created:?}");
    }
    // Once the folder is root's, root may use it.
    std::os::unix::fs::chown(&data, Some(0), Some(0)).expect("chown data back");
    let output = dncs_sync(&ini, &["run", "--dry-run"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A pass that fails before it begins (here the database refuses to mark it begun) has no
/// history row to hold its error, so the log says it.
#[test]
fn a_pass_that_cannot_begin_is_told_in_the_log() {
    let (dir, ini, store) = install_with_takahashi();
    let data = dir.path().join("data");
    store.close().expect("close");
    let db = rusqlite::Connection::open(data.join(dncs::store::DATABASE_FILE)).expect("open");
    db.execute_batch(
        "CREATE TRIGGER no_pass BEFORE UPDATE OF syncing_since ON users
         BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
    )
    .expect("trigger");
    drop(db);

    let output = dncs_sync(&ini, &["run", "--user", "takahashi"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the disk is full"), "{stderr}");
    let logs = logs(&data);
    assert!(
        logs.contains("the pass of takahashi could not begin") && logs.contains("the disk is full"),
        "{logs}"
    );
}

/// A mistyped key reaches the log, once: the scheduled run starts every minute.
#[test]
fn ini_warnings_are_logged_when_they_appear_not_every_run() {
    let (dir, ini) = install_without_office();
    let typo = "CYBOZU_URL=http://127.0.0.1:9/cgi-bin/cbag/ag.cgi\r\nSYNC_INTRVAL=5\r\n";
    std::fs::write(&ini, typo).expect("ini");
    for _ in 0..3 {
        let output = dncs_sync(&ini, &["run"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let logs = logs(&dir.path().join("data"));
    assert_eq!(
        logs.matches("unknown key SYNC_INTRVAL").count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("line 2"), "{logs}");
}

/// A data folder whose secret.key was lost (a copy of dncs.db alone) is not given a new key in
/// silence: every stored secret would be unreadable while the pages still show the links made.
/// `new-key` starts the secrets over, and keeps the users, their settings and the key it replaces.
#[test]
fn a_lost_key_is_refused_until_new_key_starts_the_secrets_over() {
    let (dir, ini, store) = install_with_takahashi();
    let data = dir.path().join("data");
    let now = chrono::Utc::now();
    store
        .set_cybozu_password(7, "takahashi-pw", now)
        .expect("password");
    store
        .set_target_and_calendar(7, dncs::store::Target::Google, "team@example.com", now)
        .expect("calendar");
    store
        .secret_setting_or_insert_with(dncs::store::SETTING_OAUTH_STATE_KEY, || "hmac".into())
        .expect("the key 認証 signs with");
    store.close().expect("close");
    let key = data.join(dncs::store::KEY_FILE);
    std::fs::remove_file(&key).expect("lose the key");

    for command in [&["run"][..], &["check"]] {
        let output = dncs_sync(&ini, command);
        assert!(!output.status.success(), "{command:?} ran without the key");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("secret key file is missing") && stderr.contains("dncs-sync new-key"),
            "{command:?}: {stderr}"
        );
        assert!(!key.exists(), "{command:?} made a new key");
    }
    assert!(
        dncs::store::open_data_folder(&data).is_err(),
        "nor does the CGI"
    );

    // Without a terminal to confirm on, new-key wants --yes.
    let output = dncs_sync(&ini, &["new-key"]);
    assert!(!output.status.success());
    assert!(!key.exists());
    // Nor while a run holds its lock: a pass could seal a refreshed token with the old key.
    let run = dncs::sync::run::try_run_lock(&data)
        .expect("the lock file")
        .expect("no run holds it");
    let output = dncs_sync(&ini, &["new-key", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "new-key ran under a running pass");
    assert!(stderr.contains("a sync run is in progress"), "{stderr}");
    assert!(!key.exists());
    drop(run);
    let output = dncs_sync(&ini, &["new-key", "--yes"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 user(s)"), "{stdout}");
    assert!(key.exists());
    let store = dncs::store::open_data_folder(&data).expect("opens with the new key");
    assert_eq!(store.cybozu_password(7).expect("read"), None);
    let user = store.user_by_id(7).expect("read").expect("the user stays");
    assert_eq!(user.calendar_id, "team@example.com");
    // 認証 works again: its signing key is made anew under the new key.
    store
        .secret_setting_or_insert_with(dncs::store::SETTING_OAUTH_STATE_KEY, || "new".into())
        .expect("the signing key opens");
    store.close().expect("close");

    // A key that is there but wrong is reported by check, and new-key keeps it aside.
    let store = dncs::store::open_data_folder(&data).expect("data folder");
    store
        .set_cybozu_password(7, "takahashi-pw", now)
        .expect("password");
    store.close().expect("close");
    std::fs::remove_file(&key).expect("remove");
    dncs::secret::SecretKey::load_or_create(&key).expect("another key");
    let wrong_key = std::fs::read(&key).expect("key");
    let output = dncs_sync(&ini, &["check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("2 stored password(s) or token(s) cannot be opened"),
        "{stdout}"
    );
    let output = dncs_sync(&ini, &["new-key", "--yes"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let kept: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("data")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("secret.key.replaced-"))
        })
        .collect();
    assert_eq!(kept.len(), 1, "{stdout}");
    assert_eq!(std::fs::read(&kept[0]).expect("kept"), wrong_key);
    assert!(stdout.contains("kept as"), "{stdout}");
}
