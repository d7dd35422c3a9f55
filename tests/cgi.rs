//! The `dncs` binary run as Apache or IIS runs it: a clean environment of CGI variables, the body on
//! standard input, and the answer read back from standard output.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT_NAME: &str = "/cgi-bin/cbag/dncs/bin/dncs.cgi";

/// What the CGI printed, split at the blank line.
struct CgiAnswer {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl CgiAnswer {
    fn status(&self) -> u16 {
        self.status_line
            .strip_prefix("Status: ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {:?}", self.status_line))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// An install folder with a `dncs.ini`.
struct Install {
    _dir: tempfile::TempDir,
    ini: PathBuf,
}

fn install(ini_text: &str) -> Install {
    let dir = tempfile::tempdir().expect("temp dir");
    let ini = dir.path().join("dncs.ini");
    std::fs::write(&ini, ini_text).expect("write ini");
    Install { _dir: dir, ini }
}

/// Runs the CGI with `vars` (besides the usual ones) and `body`, failing if it takes longer than a
/// few seconds: a CGI that waits for a body it will never get hangs the web server's worker.
fn run_cgi(ini: &Path, vars: &[(&str, &str)], body: &[u8]) -> CgiAnswer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dncs"));
    command
        .env_clear()
        .env("DNCS_INI", ini)
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("SERVER_NAME", "cybozu.example.jp")
        .env("HTTP_HOST", "cybozu.example.jp")
        .env("SCRIPT_NAME", SCRIPT_NAME)
        .env("REMOTE_ADDR", "192.0.2.10")
        .env("REQUEST_METHOD", "GET")
        .env("QUERY_STRING", "");
    // Windows needs these to start any program.
    for name in ["SYSTEMROOT", "SystemRoot"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dncs starts");

    // Written from a thread: a CGI that refuses the body exits without reading it, and the write then
    // fails or would block on a full pipe; neither may stop the test.
    let mut stdin = child.stdin.take().expect("stdin");
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dncs did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut stdout)
        .expect("read stdout");
    assert!(status.success(), "dncs exited with {status}");
    parse_answer(&stdout)
}

fn parse_answer(output: &[u8]) -> CgiAnswer {
    let text = String::from_utf8(output.to_vec()).expect("UTF-8 answer");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no blank CRLF line in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("Name: value");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let answer = CgiAnswer {
        status_line,
        headers,
        body: body.to_owned(),
    };
    let length: usize = answer
        .header("Content-Length")
        .expect("Content-Length")
        .parse()
        .expect("a number");
    assert_eq!(length, answer.body.len(), "Content-Length matches the body");
    answer
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
