//! The `dncs` binary run as Apache or IIS runs it: a clean environment of CGI variables, the body on
//! standard input, and the answer read back from standard output.

use std::path::PathBuf;

use crate::util::run_cgi;

/// An install folder with `bin/dncs.ini`. The ini sits one level down, as installed, so that the
/// default `DATA_DIR=../data` stays inside the temporary folder instead of the shared `/tmp/data`.
struct Install {
    _dir: tempfile::TempDir,
    ini: PathBuf,
}

fn install(ini_text: &str) -> Install {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin folder");
    let ini = bin.join("dncs.ini");
    std::fs::write(&ini, ini_text).expect("write ini");
    Install { _dir: dir, ini }
}

#[test]
fn cgi_good_request_answers_200() {
    let install = install("LANG=ja\r\nSYNC_THREADS=2\r\n");
    let answer = run_cgi(&install.ini, &[], b"");
    assert_eq!(answer.status_line, "Status: 200 OK");
    assert_eq!(
        answer.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(answer.header("Cache-Control"), Some("no-store"));
    assert_eq!(answer.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(answer.header("X-Frame-Options"), Some("DENY"));
    assert_eq!(answer.header("Referrer-Policy"), Some("same-origin"));
    assert!(
        answer.body.contains("ログイン名"),
        "the login page: {}",
        answer.body
    );
}

#[test]
fn cgi_head_answers_the_head_without_the_body() {
    let install = install("");
    let answer = run_cgi(&install.ini, &[("REQUEST_METHOD", "HEAD")], b"");
    assert_eq!(answer.status_line, "Status: 200 OK");
    assert!(answer.body.is_empty(), "{}", answer.body);
    let length: usize = answer
        .header("Content-Length")
        .and_then(|n| n.parse().ok())
        .expect("the length of the GET's body");
    assert!(length > 0);
}

#[test]
fn cgi_a_broken_line_in_dncs_ini_is_named_without_its_password() {
    let no_equals = install("LANG=ja\nPROXY http://admin:S3cret@proxy:8080\n");
    let answer = run_cgi(&no_equals.ini, &[], b"");
    assert_eq!(answer.status(), 500);
    assert!(answer.body.contains("line 2"), "{}", answer.body);
    assert!(answer.body.contains("PROXY"), "{}", answer.body);
    assert!(!answer.body.contains("S3cret"), "{}", answer.body);
    let no_scheme = install("PROXY=admin:S3cret@proxy:8080\n");
    let answer = run_cgi(&no_scheme.ini, &[], b"");
    assert_eq!(answer.status(), 500, "{}", answer.body);
    assert!(answer.body.contains("PROXY"), "{}", answer.body);
    assert!(!answer.body.contains("S3cret"), "{}", answer.body);
}

#[test]
fn cgi_broken_ini_answers_500_naming_line_and_key() {
    let install = install("; dncs.ini\nLANG=ja\nSYNC_THREADS=many\n");
    let answer = run_cgi(&install.ini, &[], b"");
    assert_eq!(answer.status(), 500);
    assert!(answer.body.contains("line 3"), "{}", answer.body);
    assert!(answer.body.contains("SYNC_THREADS"));
    assert!(answer.body.contains("many"));
}

#[test]
fn cgi_missing_ini_answers_500_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let answer = run_cgi(&dir.path().join("dncs.ini"), &[], b"");
    assert_eq!(answer.status(), 500);
    assert!(answer.body.contains("dncs.ini"), "{}", answer.body);
    assert!(answer.body.contains("not found"));
}

#[test]
fn cgi_oversized_post_answers_413_without_reading_the_body() {
    let install = install("");
    // More than a pipe holds, so a CGI that tried to read it all would need the writer to finish,
    // and one that waited for more than was sent would hang.
    let body = vec![b'a'; 300 * 1024];
    let length = (10 * 1024 * 1024).to_string();
    let answer = run_cgi(
        &install.ini,
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("CONTENT_LENGTH", &length),
        ],
        &body,
    );
    assert_eq!(answer.status(), 413);
    assert!(answer.body.contains("送信されたデータが大きすぎます"));
}

#[test]
fn cgi_small_post_is_read_to_its_length() {
    let install = install("");
    let answer = run_cgi(
        &install.ini,
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("CONTENT_LENGTH", "10"),
            ("QUERY_STRING", "page=login"),
        ],
        b"login=taro",
    );
    // Without the form's token the login is refused, but the name typed is kept: the body was read.
    assert_eq!(answer.status(), 403);
    assert!(answer.body.contains("value=\"taro\""), "{}", answer.body);
}

#[test]
fn cgi_post_of_another_encoding_answers_415() {
    let install = install("");
    let body = b"--x\r\nContent-Disposition: form-data; name=\"login\"\r\n\r\ntaro\r\n--x--\r\n";
    let length = body.len().to_string();
    let answer = run_cgi(
        &install.ini,
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "multipart/form-data; boundary=x"),
            ("CONTENT_LENGTH", &length),
            ("QUERY_STRING", "page=login"),
        ],
        body,
    );
    assert_eq!(answer.status_line, "Status: 415 Unsupported Media Type");
    assert!(
        answer.body.contains("この形式のデータは受け付けません"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("multipart/form-data"),
        "{}",
        answer.body
    );
}

#[test]
fn cgi_length_beyond_any_integer_answers_413() {
    let install = install("");
    let answer = run_cgi(
        &install.ini,
        &[
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
            ("CONTENT_LENGTH", "123456789012345678901234567890"),
        ],
        b"login=taro",
    );
    assert_eq!(answer.status(), 413);
    assert!(
        answer.body.contains("123456789012345678901234567890"),
        "{}",
        answer.body
    );
}

#[test]
fn cgi_unknown_page_answers_404() {
    let install = install("");
    let answer = run_cgi(&install.ini, &[("QUERY_STRING", "page=nosuchpage")], b"");
    assert_eq!(answer.status_line, "Status: 404 Not Found");
    assert!(answer.body.contains("nosuchpage"));
}

#[test]
fn cgi_xss_in_page_is_rendered_escaped() {
    let install = install("");
    let answer = run_cgi(
        &install.ini,
        &[("QUERY_STRING", "page=<script>alert(1)</script>")],
        b"",
    );
    assert_eq!(answer.status(), 404);
    assert!(answer
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!answer.body.contains("<script>"));
}

#[test]
fn cgi_bad_host_answers_400() {
    let install = install("LANG=en\n");
    let answer = run_cgi(&install.ini, &[("HTTP_HOST", "evil.example/<x>")], b"");
    assert_eq!(answer.status(), 400);
    assert!(answer.body.contains("Bad request"));
    assert!(!answer.body.contains("<x>"));
}

/// `build.rs` gathers the functions a page view runs at the start of the code, apart from the
/// code a page view never runs (README, "Performance"). Skipped without binutils.
#[cfg(target_os = "linux")]
#[test]
fn cgi_the_code_of_a_page_view_is_laid_out_first() {
    if std::env::var_os("DNCS_HOT_CODE").is_some_and(|v| v == "0") {
        eprintln!("skipped: built with DNCS_HOT_CODE=0");
        return;
    }
    let binary = env!("CARGO_BIN_EXE_dncs");
    let (Some(sections), Some(symbols)) = (
        tool_output("readelf", &["-SW", binary]),
        tool_output("nm", &[binary]),
    ) else {
        eprintln!("skipped: readelf and nm (binutils) are not installed");
        return;
    };
    let hot = section_range(&sections, ".text.hot").expect("a .text.hot section");
    let text = section_range(&sections, ".text").expect("a .text section");
    assert!(hot.end <= text.start, "{hot:x?} comes before {text:x?}");
    let address = |prefix: &str| {
        symbols
            .lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(_, rest)| rest.get(2..).is_some_and(|name| name.starts_with(prefix)))
            .and_then(|(address, _)| u64::from_str_radix(address, 16).ok())
            .unwrap_or_else(|| panic!("no symbol {prefix}… in {binary}"))
    };
    // The SQL parser, and the request's own entry point (a Rust name, matched without its hash).
    for run in ["sqlite3RunParser", "_ZN4dncs3web6answer17h"] {
        assert!(hot.contains(&address(run)), "{run} is not in {hot:x?}");
    }
    // The standard library's functions, mangled the v0 way, are matched without their crates' hashes.
    let std_in_hot = symbols
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            let name = fields.nth(1)?;
            (name.starts_with("_R") && name.contains("3std")).then_some(address)
        })
        .any(|address| hot.contains(&address));
    assert!(std_in_hot, "no function of std is in {hot:x?}");
    // The CalDAV client: a page view never reads a CalDAV reply.
    let cold = address("_ZN4dncs6caldav10read_reply17h");
    assert!(!hot.contains(&cold), "a CalDAV function is in {hot:x?}");
}

#[cfg(target_os = "linux")]
fn tool_output(tool: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(tool).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The addresses of a section, from `readelf -SW`: `[Nr] Name Type Address Off Size …`.
#[cfg(target_os = "linux")]
fn section_range(readelf: &str, name: &str) -> Option<std::ops::Range<u64>> {
    readelf.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_once(']')?.1.split_whitespace().collect();
        if fields.first() != Some(&name) {
            return None;
        }
        let start = u64::from_str_radix(fields.get(2)?, 16).ok()?;
        let size = u64::from_str_radix(fields.get(4)?, 16).ok()?;
        Some(start..start + size)
    })
}

/// A CGI started with stdout closed (by hand, or by a server that misbehaves) completes the request
/// and writes its page into none of its files: the first file it opens must not take stdout's place.
#[cfg(unix)]
#[test]
fn cgi_started_without_stdout_writes_its_page_into_no_file() {
    let install = install("LANG=en\n");
    // A session cookie makes the request open (and, being the first, create) the database, which
    // the log records in data/log: files opened while stdout is closed.
    let status = cgi_command(&install, "sh")
        .args(["-c", r#"exec "$0" >&-"#])
        .arg(env!("CARGO_BIN_EXE_dncs"))
        .env("HTTP_COOKIE", "dncs_session=unknown")
        .status()
        .expect("sh runs");
    assert!(status.success(), "dncs exited with {status}");

    let data = install.ini.parent().expect("bin").join("../data");
    let log = data.join("log");
    let mut files: Vec<PathBuf> = ["dncs.db", "dncs.db-wal", "secret.key"]
        .iter()
        .map(|name| data.join(name))
        .collect();
    files.extend(
        std::fs::read_dir(&log)
            .expect("the log folder")
            .map(|e| e.expect("a log").path()),
    );
    let mut logged = false;
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("Status: "),
            "the page went into {}",
            file.display()
        );
        logged |= text.contains("schema version");
    }
    assert!(
        logged,
        "the log records the new database, so a file was opened"
    );
}

/// A client that goes away before the answer: the CGI ends with a failure status, as a write error,
/// and is not killed by `SIGPIPE` (which the web server would log as a crash).
#[cfg(unix)]
#[test]
fn cgi_whose_client_went_away_exits_with_a_status() {
    let install = install("LANG=en\n");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let status = cgi_command(&install, env!("CARGO_BIN_EXE_dncs"))
        .stdout(writer)
        .status()
        .expect("dncs runs");
    assert_eq!(status.code(), Some(1), "dncs ended with {status}");
}

/// The CGI's environment for a GET of the settings page, with stdin empty and stderr dropped.
#[cfg(unix)]
fn cgi_command(install: &Install, program: &str) -> std::process::Command {
    use std::process::Stdio;
    let mut command = std::process::Command::new(program);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("DNCS_INI", &install.ini)
        .env("REQUEST_METHOD", "GET")
        .env("QUERY_STRING", "page=settings")
        .env("HTTP_HOST", "cybozu.example.jp")
        .env("SCRIPT_NAME", crate::util::SCRIPT_NAME)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}
