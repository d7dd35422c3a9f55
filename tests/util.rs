//! Helpers shared by the integration tests.

use std::time::Duration;

use dncs::cybozu::{Client, Credentials};
use dncs::http::{AgentSettings, RetryPolicy};
use dncs::sim::cybozu::{seed, CybozuSim};

/// A simulator with the demo company around a fixed week.
pub fn demo_sim() -> CybozuSim {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    CybozuSim::start(seed::demo(today)).expect("simulator starts")
}

/// A simulator with the staff but no events.
pub fn empty_sim() -> CybozuSim {
    CybozuSim::start(seed::staff()).expect("simulator starts")
}

pub fn agent() -> ureq::Agent {
    dncs::http::agent(&AgentSettings {
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(20),
        proxy: None,
    })
    .expect("agent")
}

/// A client for a demo login (the password equals the login) with quick retries.
pub fn client(sim: &CybozuSim, login: &str) -> Client {
    Client::new(
        &sim.url(),
        agent(),
        Credentials {
            login: login.into(),
            password: login.into(),
        },
    )
    .with_retry(RetryPolicy::quick())
}

pub fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&chrono::Utc)
}

pub fn date(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

/// Where an install puts the CGI, as the web server names it in `SCRIPT_NAME`.
pub const SCRIPT_NAME: &str = "/cgi-bin/cbag/dncs/bin/dncs.cgi";

/// What the CGI printed, split at the blank line.
pub struct CgiAnswer {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl CgiAnswer {
    pub fn status(&self) -> u16 {
        self.status_line
            .strip_prefix("Status: ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {:?}", self.status_line))
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every header called `name` (any case), in order: `Set-Cookie` comes once per cookie.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// Runs the `dncs` binary as Apache or IIS does: a cleared environment with the CGI variables
/// (`vars` add to or replace the usual ones) and `body` on standard input. It fails if the CGI
/// takes longer than a few seconds: one that waits for a body it will never get hangs the web
/// server's worker.
pub fn run_cgi(ini: &std::path::Path, vars: &[(&str, &str)], body: &[u8]) -> CgiAnswer {
    run_cgi_program(
        std::path::Path::new(env!("CARGO_BIN_EXE_dncs")),
        ini,
        vars,
        body,
    )
}

/// [`run_cgi`] with another copy of the `dncs` binary (one installed without its siblings).
pub fn run_cgi_program(
    program: &std::path::Path,
    ini: &std::path::Path,
    vars: &[(&str, &str)],
    body: &[u8],
) -> CgiAnswer {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let mut command = Command::new(program);
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
        std::thread::sleep(Duration::from_millis(5));
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
    let is_head = vars
        .iter()
        .any(|(name, value)| *name == "REQUEST_METHOD" && *value == "HEAD");
    parse_cgi_answer(&stdout, is_head)
}

fn parse_cgi_answer(output: &[u8], is_head: bool) -> CgiAnswer {
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
    if is_head {
        assert!(answer.body.is_empty(), "a HEAD answer has no body");
    } else {
        assert_eq!(length, answer.body.len(), "Content-Length matches the body");
    }
    answer
}

/// A Google simulator and a Calendar client on `account`'s `calendar_id`, with quick retries.
pub fn google_calendar(
    sim: &dncs::sim::google::GoogleSim,
    account: &str,
    calendar_id: &str,
) -> dncs::google::Calendar {
    let token = sim.issue_access_token(account);
    dncs::google::Calendar::new(agent(), &sim.api_base(), calendar_id, &token)
        .with_retry(RetryPolicy::quick())
}

/// A timed Google event in Asia/Tokyo.
pub fn google_event(summary: &str, start: &str, end: &str) -> dncs::google::Event {
    dncs::google::Event {
        summary: Some(summary.into()),
        start: Some(dncs::google::EventDateTime::from_date_time(
            utc(start),
            Some("Asia/Tokyo"),
        )),
        end: Some(dncs::google::EventDateTime::from_date_time(
            utc(end),
            Some("Asia/Tokyo"),
        )),
        ..dncs::google::Event::default()
    }
}

/// An agent that shows redirects instead of following them, as a test browser on Google's pages.
pub fn redirect_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// The decoded `name=value` pairs after the `?` of a URL (`+` is a space, as in forms).
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// The first query parameter `name` of a URL, decoded.
pub fn query_value(url: &str, name: &str) -> Option<String> {
    query_pairs(url)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// The `Location` of a redirect.
pub fn location(reply: &ureq::http::Response<ureq::Body>) -> String {
    reply
        .headers()
        .get("Location")
        .and_then(|value| value.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

/// Opens the simulated Google's consent page at `auth_url` over HTTP, presses 許可 (`allow`) or
/// 拒否 (`deny`) with the account the page proposes, and returns where Google redirects to.
pub fn press_consent(sim: &dncs::sim::google::GoogleSim, auth_url: &str, decision: &str) -> String {
    let mut page = redirect_agent().get(auth_url).call().expect("consent page");
    assert_eq!(page.status(), 200);
    let html = page.body_mut().read_to_string().expect("html");
    assert!(html.contains("許可") && html.contains("拒否"), "{html}");
    let field = |name: &str| {
        html.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} field in {html}"))
            .to_owned()
    };
    let q = dncs::google::encode_component;
    let form = format!(
        "request={}&account={}&decision={decision}",
        q(&field("request")),
        q(&field("account"))
    );
    let reply = redirect_agent()
        .post(&sim.auth_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form.as_bytes())
        .expect("decision");
    assert_eq!(reply.status(), 302);
    location(&reply)
}

/// Each Cybozu event has exactly one copy on the other side (`side` names it in a failure), each
/// copy a Cybozu event, and the store's pairs say the same; `copies` are the Cybozu ids the copies
/// carry, one per copy.
pub fn assert_one_copy_each(
    side: &str,
    copies: impl IntoIterator<Item = u64>,
    cybozu: &std::collections::BTreeSet<u64>,
    store: &dncs::store::Store,
    user: i64,
) {
    let mut counted: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
    for id in copies {
        *counted.entry(id).or_default() += 1;
    }
    let duplicated: Vec<_> = counted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "duplicated on {side}: {duplicated:?}"
    );
    assert_eq!(
        &counted
            .keys()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        cybozu,
        "{side} copies ↔ Cybozu events"
    );
    let mapped: std::collections::BTreeSet<u64> = store
        .mappings_for_user(user)
        .expect("mappings")
        .iter()
        .map(|m| m.cybozu_id as u64)
        .collect();
    assert_eq!(&mapped, cybozu, "the mapping");
}
