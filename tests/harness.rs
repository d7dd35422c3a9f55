//! The CGI harness of the screen tests: an install folder (`bin/dncs.ini`, `data/`) in a temporary
//! folder beside the simulated Cybozu Office, and a small [`Browser`] that runs the real `dncs`
//! binary as Apache or IIS does and keeps the cookies. Shared by `screens` and `google_link`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::Duration;
use dncs::sim::cybozu::{seed, CybozuSim};
use dncs::sim::google::GoogleSim;
use dncs::store::Store;

use crate::util::{run_cgi_program, utc, CgiAnswer, SCRIPT_NAME};

/// The first demo user (Cybozu user id 1); the password equals the login.
pub const TAKAHASHI: i64 = 1;
pub const SATO: i64 = 2;
pub const ADMIN_PASSWORD: &str = "kanri-password-2026";
/// A pinned moment for the tests whose outcome depends on the time.
pub const T0: &str = "2026-11-25T10:00:00+09:00";

/// An install folder beside a running simulated Cybozu Office.
pub struct Site {
    pub root: tempfile::TempDir,
    pub ini: PathBuf,
    pub sim: CybozuSim,
    /// The `dncs` binary the web server runs: the one cargo built, beside `dncs-sync`, unless a
    /// test installs another copy.
    pub cgi: PathBuf,
}

impl Site {
    pub fn new() -> Site {
        Site::with_ini("")
    }

    /// An install whose `dncs.ini` has `extra` lines after `CYBOZU_URL` and `DATA_DIR`.
    pub fn with_ini(extra: &str) -> Site {
        let sim = CybozuSim::start(seed::staff()).expect("simulator starts");
        let root = tempfile::tempdir().expect("temp dir");
        let bin = root.path().join("bin");
        std::fs::create_dir(&bin).expect("bin folder");
        let ini = bin.join("dncs.ini");
        let text = format!(
            "; written by tests/harness.rs\r\nCYBOZU_URL={}\r\nDATA_DIR=../data\r\n{extra}",
            sim.url()
        );
        std::fs::write(&ini, text).expect("write dncs.ini");
        Site {
            root,
            ini,
            sim,
            cgi: PathBuf::from(env!("CARGO_BIN_EXE_dncs")),
        }
    }

    /// An install whose `dncs.ini` also carries the Google lines of `google`.
    pub fn with_google(google: &GoogleIni) -> Site {
        Site::with_ini(&google.lines())
    }

    /// The install's database, as `dncs-sync` opens it.
    pub fn store(&self) -> Store {
        dncs::store::open_data_folder(&self.root.path().join("data")).expect("data folder")
    }

    /// The user `id` as stored now; panics when there is none.
    pub fn stored_user(&self, id: i64) -> dncs::store::User {
        self.store()
            .user_by_id(id)
            .expect("read the user")
            .unwrap_or_else(|| panic!("no user {id}"))
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            site: self,
            cookies: BTreeMap::new(),
            https: false,
            now: None,
        }
    }

    /// `dncs-sync admin-password`, run as the installer does, with the password on standard input.
    pub fn set_admin_password(&self, password: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dncs-sync"))
            .arg("admin-password")
            .env("DNCS_INI", &self.ini)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dncs-sync starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("password written");
        let output = child.wait_with_output().expect("dncs-sync ends");
        assert!(
            output.status.success(),
            "dncs-sync admin-password: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A browser logged in as the administrator (the password set first).
    pub fn admin(&self) -> Browser<'_> {
        self.set_admin_password(ADMIN_PASSWORD);
        let mut admin = self.browser();
        let answer = admin.admin_login(ADMIN_PASSWORD);
        assert_eq!(answer.status(), 303, "{}", answer.body);
        admin
    }

    /// A browser logged in as `login` (whose password is the login).
    pub fn user(&self, login: &str) -> Browser<'_> {
        let mut browser = self.browser();
        let answer = browser.login(login, login);
        assert_eq!(answer.status(), 303, "login of {login}: {}", answer.body);
        browser
    }
}

/// Where the tests pretend the relay page (`install/relay/`) is hosted.
pub const RELAY_URI: &str = "https://relay.example/dncs/";

/// The Google keys of a `dncs.ini` whose endpoints and client are a running [`GoogleSim`]'s; a
/// `None` key is left out of the file.
#[derive(Debug, Clone)]
pub struct GoogleIni {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub auth_url: String,
    pub token_url: String,
    pub api_base: String,
    /// `GOOGLE_AUTH_MODE`: `relay` or `direct`.
    pub auth_mode: &'static str,
    pub redirect_uri: Option<String>,
    /// `CALLBACK_SCHEME`: `http` or `https`.
    pub callback_scheme: &'static str,
}

impl GoogleIni {
    /// Relay mode for screens reached over http: Google returns to [`RELAY_URI`].
    pub fn relay(sim: &GoogleSim) -> GoogleIni {
        GoogleIni {
            client_id: Some(sim.client_id().to_owned()),
            client_secret: Some(sim.client_secret().to_owned()),
            auth_url: sim.auth_url(),
            token_url: sim.token_url(),
            api_base: sim.api_base(),
            auth_mode: "relay",
            redirect_uri: Some(RELAY_URI.to_owned()),
            callback_scheme: "http",
        }
    }

    /// Direct mode over https: Google returns to the CGI's own URL (no `GOOGLE_REDIRECT_URI`).
    pub fn direct(sim: &GoogleSim) -> GoogleIni {
        GoogleIni {
            auth_mode: "direct",
            redirect_uri: None,
            callback_scheme: "https",
            ..GoogleIni::relay(sim)
        }
    }

    /// The `KEY=VALUE` lines, CRLF-ended as an administrator's Windows editor writes them.
    pub fn lines(&self) -> String {
        let keys = [
            ("GOOGLE_CLIENT_ID", self.client_id.as_deref()),
            ("GOOGLE_CLIENT_SECRET", self.client_secret.as_deref()),
            ("GOOGLE_AUTH_URL", Some(self.auth_url.as_str())),
            ("GOOGLE_TOKEN_URL", Some(self.token_url.as_str())),
            ("GOOGLE_API_BASE", Some(self.api_base.as_str())),
            ("GOOGLE_AUTH_MODE", Some(self.auth_mode)),
            ("GOOGLE_REDIRECT_URI", self.redirect_uri.as_deref()),
            ("CALLBACK_SCHEME", Some(self.callback_scheme)),
        ];
        keys.iter()
            .filter_map(|(key, value)| value.map(|value| format!("{key}={value}\r\n")))
            .collect()
    }
}

/// One visitor: a cookie jar, and whether they come over https or at a pinned time.
pub struct Browser<'s> {
    pub site: &'s Site,
    pub cookies: BTreeMap<String, String>,
    pub https: bool,
    pub now: Option<String>,
}

impl Browser<'_> {
    pub fn get(&mut self, query: &str) -> CgiAnswer {
        self.send("GET", query, None, b"")
    }

    /// A form POST of `fields`, urlencoded as a browser sends them.
    pub fn post(&mut self, query: &str, fields: &[(&str, &str)]) -> CgiAnswer {
        let body = form_encode(fields);
        self.send(
            "POST",
            query,
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
        )
    }

    /// Opens `form_page`, takes its CSRF token and posts `fields` with it to `action`, as a person
    /// filling in the form would.
    pub fn submit(&mut self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> CgiAnswer {
        let form = self.get(form_page);
        let token = csrf(&form);
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all)
    }

    pub fn login(&mut self, login: &str, password: &str) -> CgiAnswer {
        self.submit(
            "page=login",
            "page=login",
            &[("login", login), ("password", password)],
        )
    }

    pub fn admin_login(&mut self, password: &str) -> CgiAnswer {
        self.submit(
            "page=admin_login",
            "page=admin_login",
            &[("password", password)],
        )
    }

    /// Saves 同期設定 with exactly `fields` (besides the token).
    pub fn save_settings(&mut self, fields: &[(&str, &str)]) -> CgiAnswer {
        self.submit("page=settings", "page=settings", fields)
    }

    pub fn send(
        &mut self,
        method: &str,
        query: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> CgiAnswer {
        let cookie_header = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let length = body.len().to_string();
        let mut vars = vec![
            ("REQUEST_METHOD", method),
            ("QUERY_STRING", query),
            ("SCRIPT_NAME", SCRIPT_NAME),
            ("HTTP_HOST", "cybozu.example.jp"),
            ("REMOTE_ADDR", "192.0.2.10"),
        ];
        if !cookie_header.is_empty() {
            vars.push(("HTTP_COOKIE", &cookie_header));
        }
        if let Some(content_type) = content_type {
            vars.push(("CONTENT_TYPE", content_type));
            vars.push(("CONTENT_LENGTH", &length));
        }
        if self.https {
            vars.push(("HTTPS", "on"));
        }
        if let Some(now) = &self.now {
            vars.push(("DNCS_NOW", now));
        }
        let answer = run_cgi_program(&self.site.cgi, &self.site.ini, &vars, body);
        self.keep_cookies(&answer);
        answer
    }

    /// Takes the answer's `Set-Cookie` headers into the jar; `Max-Age=0` removes a cookie.
    pub fn keep_cookies(&mut self, answer: &CgiAnswer) {
        for header in answer.headers_named("Set-Cookie") {
            let mut parts = header.split(';').map(str::trim);
            let (name, value) = parts
                .next()
                .and_then(|pair| pair.split_once('='))
                .unwrap_or_else(|| panic!("a cookie without a value: {header}"));
            if parts.any(|attribute| attribute.eq_ignore_ascii_case("Max-Age=0")) {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// The page a 303 points to, fetched with a GET as a browser does.
    pub fn follow(&mut self, answer: &CgiAnswer) -> CgiAnswer {
        let location = answer.header("Location").expect("Location");
        let query = location
            .strip_prefix(SCRIPT_NAME)
            .map(|rest| rest.trim_start_matches('?'))
            .unwrap_or_else(|| panic!("a redirect away from the CGI: {location}"));
        self.get(query)
    }

    pub fn session_token(&self) -> Option<String> {
        self.cookies.get("dncs_session").cloned()
    }
}

/// `name=value&…`, percent-encoded as `application/x-www-form-urlencoded`.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(byte).to_string()
                }
                b' ' => "+".to_owned(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf(page: &CgiAnswer) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {}", page.body))
        + marker.len();
    let token = &page.body[start..];
    let token = &token[..token.find('"').expect("the value ends")];
    assert!(!token.is_empty(), "an empty csrf field in {}", page.body);
    token.to_owned()
}

/// The text right after `marker` up to the next tag.
pub fn text_after<'a>(page: &'a CgiAnswer, marker: &str) -> &'a str {
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {}", page.body))
        + marker.len();
    let rest = &page.body[start..];
    &rest[..rest.find('<').unwrap_or(rest.len())]
}

/// `text` as the templates write it: minijinja's HTML escaping, which escapes `/` too.
pub fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

pub fn assert_redirect_to(answer: &CgiAnswer, page: &str) {
    assert_eq!(answer.status(), 303, "{}", answer.body);
    let location = answer.header("Location").expect("Location");
    assert!(
        location.starts_with(&format!("{SCRIPT_NAME}?page={page}")),
        "redirected to {location}"
    );
}

pub fn at(base: &str, minutes: i64) -> String {
    (utc(base) + Duration::minutes(minutes)).to_rfc3339()
}
