//! `dncs-sync check` and `dncs-sync run`, run as an administrator (or the 同期 button) would.

use std::process::Command;

fn run_check(ini: &[u8]) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin folder");
    std::fs::write(bin.join("dncs.ini"), ini).expect("ini");
    let output = Command::new(env!("CARGO_BIN_EXE_dncs-sync"))
        .arg("check")
        .env("DNCS_INI", bin.join("dncs.ini"))
        .output()
        .expect("dncs-sync runs");
    (dir, output)
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
    assert!(stdout.contains("schema version 4, 0 users"), "{stdout}");
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
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin folder");
    std::fs::write(
        bin.join("dncs.ini"),
        "CYBOZU_URL=http://127.0.0.1:9/cgi-bin/cbag/ag.cgi\r\n",
    )
    .expect("ini");
    // A pass started by 「ただちに同期する」 has its stderr on the null device: the log is all
    // an administrator gets to read.
    let output = Command::new(env!("CARGO_BIN_EXE_dncs-sync"))
        .args(["run", "--user", "nosuchuser"])
        .env("DNCS_INI", bin.join("dncs.ini"))
        .output()
        .expect("dncs-sync runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"nosuchuser\""), "{stderr}");
    let logs: String = std::fs::read_dir(dir.path().join("data").join("log"))
        .expect("the log folder")
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect();
    assert!(
        logs.contains(
            "dncs-sync run --user nosuchuser: there is no user with the login name \"nosuchuser\""
        ),
        "{logs}"
    );
}
