//! `dncs-sync check`, run as an administrator would after installing.

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
    let (dir, output) = run_check(
        b"\xef\xbb\xbfCYBOZU_URL=http://127.0.0.1:1/cgi-bin/cbag/ag.cgi\r\nUNKNOWN_KEY=1\r\n",
    );
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
    assert!(stdout.contains("schema version"), "{stdout}");
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
