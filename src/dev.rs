//! The loopback web server of `dncs-dev`: like `php -S`, it runs a CGI program once per request
//! with the CGI/1.1 environment a web server would give it, and relays its answer.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::sim::{Reply, Server};

/// Largest request body relayed to the CGI; the CGI applies its own, smaller limit.
const MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// What to run and with which fixed environment.
#[derive(Debug, Clone)]
pub struct CgiSettings {
    /// The CGI program (the real `dncs` binary).
    pub program: PathBuf,
    /// The path the CGI is served under, as an install puts it.
    pub script_name: String,
    /// Variables added to every run (e.g. `DNCS_INI`, `DNCS_NOW`).
    pub extra_env: Vec<(String, String)>,
}

/// A running dev server; stops when dropped.
pub struct CgiServer {
    server: Server,
    script_name: String,
}

impl CgiServer {
    pub fn start(address: &str, settings: CgiSettings) -> std::io::Result<Self> {
        let script_name = settings.script_name.clone();
        let settings = Arc::new(settings);
        let server = Server::start("dncs-dev", address, 4, move |request| {
            relay(&settings, request)
        })?;
        Ok(Self {
            server,
            script_name,
        })
    }

    /// The URL of the CGI.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.server.address(), self.script_name)
    }

    pub fn serve_forever(self) {
        self.server.wait();
    }
}

fn relay(settings: &CgiSettings, request: &mut tiny_http::Request) -> Reply {
    match run_cgi(settings, request) {
        Ok(response) => response,
        Err(message) => {
            log::warn!("dncs-dev: {message}");
            text_response(502, &format!("dncs-dev: the CGI failed: {message}\n"))
        }
    }
}

fn run_cgi(settings: &CgiSettings, request: &mut tiny_http::Request) -> Result<Reply, String> {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    if path != settings.script_name {
        if path == "/" {
            return Ok(redirect(&settings.script_name));
        }
        return Ok(text_response(404, "not found\n"));
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the request body: {e}"))?;
    let env = cgi_environment(settings, request, query, body.len());
    let mut child = Command::new(&settings.program)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", settings.program.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A CGI may answer without reading a body it refuses; a broken pipe is then expected.
        let _ = stdin.write_all(&body);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for the CGI: {e}"))?;
    parse_cgi_output(&output.stdout)
}

fn cgi_environment(
    settings: &CgiSettings,
    request: &tiny_http::Request,
    query: &str,
    body_length: usize,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |key: &str, value: String| {
        env.insert(key.to_string(), value);
    };
    set("GATEWAY_INTERFACE", "CGI/1.1".into());
    set("SERVER_PROTOCOL", "HTTP/1.1".into());
    set("SERVER_SOFTWARE", "dncs-dev".into());
    set("REQUEST_METHOD", request.method().as_str().to_string());
    set("QUERY_STRING", query.to_string());
    set("SCRIPT_NAME", settings.script_name.clone());
    set("PATH_INFO", String::new());
    if let Some(address) = request.remote_addr() {
        set("REMOTE_ADDR", address.ip().to_string());
    }
    if body_length > 0 || request.method() == &tiny_http::Method::Post {
        set("CONTENT_LENGTH", body_length.to_string());
    }
    for header in request.headers() {
        let name = header
            .field
            .as_str()
            .as_str()
            .to_ascii_uppercase()
            .replace('-', "_");
        let value = header.value.as_str().to_string();
        match name.as_str() {
            "CONTENT_TYPE" => set("CONTENT_TYPE", value),
            "CONTENT_LENGTH" => {}
            // Never pass a client's Proxy header on (the "httpoxy" hole); dncs ignores it anyway.
            "PROXY" => {}
            _ => set(&format!("HTTP_{name}"), value),
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        set("PATH", path);
    }
    #[cfg(windows)]
    if let Ok(root) = std::env::var("SystemRoot") {
        set("SystemRoot", root);
    }
    for (key, value) in &settings.extra_env {
        set(key, value.clone());
    }
    env
}

/// Turns a CGI's output (headers, blank line, body) into an HTTP response.
pub fn parse_cgi_output(output: &[u8]) -> Result<Reply, String> {
    let (head, body) = split_head(output).ok_or("the CGI printed no header block")?;
    let head = String::from_utf8_lossy(head);
    let mut status = 200u16;
    let mut headers = Vec::new();
    let mut has_location = false;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("the CGI printed a malformed header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("Status") {
            status = value
                .split_whitespace()
                .next()
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| format!("the CGI printed a malformed status {value:?}"))?;
            continue;
        }
        // The relay computes the length of what it sends itself.
        if name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        if name.eq_ignore_ascii_case("Location") {
            has_location = true;
        }
        headers.push((name.trim().to_string(), value.to_string()));
    }
    if has_location && status == 200 {
        status = 302;
    }
    let mut response = tiny_http::Response::from_data(body.to_vec()).with_status_code(status);
    for (name, value) in headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    Ok(response)
}

fn split_head(output: &[u8]) -> Option<(&[u8], &[u8])> {
    let crlf = find(output, b"\r\n\r\n").map(|at| (at, 4));
    let lf = find(output, b"\n\n").map(|at| (at, 2));
    let (at, len) = match (crlf, lf) {
        (Some(a), Some(b)) => {
            if a.0 <= b.0 {
                a
            } else {
                b
            }
        }
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => return None,
    };
    Some((&output[..at], &output[at + len..]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn text_response(status: u16, text: &str) -> Reply {
    let mut response =
        tiny_http::Response::from_data(text.as_bytes().to_vec()).with_status_code(status);
    if let Ok(header) =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/plain; charset=utf-8"[..])
    {
        response.add_header(header);
    }
    response
}

fn redirect(location: &str) -> Reply {
    let mut response = tiny_http::Response::from_data(Vec::new()).with_status_code(302);
    if let Ok(header) = tiny_http::Header::from_bytes(&b"Location"[..], location.as_bytes()) {
        response.add_header(header);
    }
    response
}

/// The `dncs` binary beside this program (`dncs.exe` on Windows).
pub fn sibling_program(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    Some(dir.join(file))
}

/// Under `cargo run`, builds the sibling binaries first so that the CGI served is the current code
/// (`cargo run --bin dncs-dev` builds only `dncs-dev` itself).
pub fn build_siblings_with_cargo(exe_dir: &Path) -> Result<(), String> {
    let Ok(cargo) = std::env::var("CARGO") else {
        return Ok(());
    };
    let release = exe_dir.file_name().is_some_and(|n| n == "release");
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--bin", "dncs", "--bin", "dncs-sync"]);
    if release {
        command.arg("--release");
    }
    let status = command
        .status()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("cargo build of dncs failed".into())
    }
}

/// Where an install puts the CGI; the demo serves it under the same path.
pub const DEMO_SCRIPT_NAME: &str = "/cgi-bin/cbag/dncs/bin/dncs.cgi";

/// The whole product on loopback: the simulated Cybozu Office, a throw-away install folder
/// (`bin/dncs.ini`, `data/`) and the real `dncs` CGI served per request.
pub struct Demo {
    pub cybozu: crate::sim::cybozu::CybozuSim,
    pub google: crate::sim::google::GoogleSim,
    pub cgi: CgiServer,
    /// The install folder (holds `bin/dncs.ini` and `data/`).
    pub root: PathBuf,
}

impl Demo {
    /// Starts everything. `cgi_program` is the `dncs` binary; `port` 0 picks a free one.
    pub fn start(cgi_program: PathBuf, port: u16, root: PathBuf) -> Result<Self, String> {
        let today = crate::clock::now()
            .with_timezone(&chrono_tz::Asia::Tokyo)
            .date_naive();
        let cybozu = crate::sim::cybozu::CybozuSim::start(crate::sim::cybozu::seed::demo(today))
            .map_err(|e| format!("starting the Cybozu simulator: {e}"))?;
        let google = crate::sim::google::GoogleSim::start()
            .map_err(|e| format!("starting the Google simulator: {e}"))?;
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| format!("creating {}: {e}", bin.display()))?;
        let ini = bin.join("dncs.ini");
        // Google's real endpoints want https redirects; the simulator takes the CGI's own
        // http URL, so the demo links in `direct` mode.
        let text = format!(
            "; dncs-dev: a throw-away configuration for the demo\r\n\
             CYBOZU_URL={}\r\n\
             DATA_DIR=../data\r\n\
             CALLBACK_SCHEME=http\r\n\
             GOOGLE_AUTH_MODE=direct\r\n\
             GOOGLE_CLIENT_ID={}\r\n\
             GOOGLE_CLIENT_SECRET={}\r\n\
             GOOGLE_AUTH_URL={}\r\n\
             GOOGLE_TOKEN_URL={}\r\n\
             GOOGLE_API_BASE={}\r\n\
             SYNC_INTERVAL=1\r\n\
             LANG=ja\r\n",
            cybozu.url(),
            google.client_id(),
            google.client_secret(),
            google.auth_url(),
            google.token_url(),
            google.api_base(),
        );
        std::fs::write(&ini, text).map_err(|e| format!("writing {}: {e}", ini.display()))?;
        let mut extra_env = vec![("DNCS_INI".to_string(), ini.display().to_string())];
        if let Ok(now) = std::env::var(crate::clock::NOW_VAR) {
            extra_env.push((crate::clock::NOW_VAR.to_string(), now));
        }
        let settings = CgiSettings {
            program: cgi_program,
            script_name: DEMO_SCRIPT_NAME.into(),
            extra_env,
        };
        let cgi = CgiServer::start(&format!("127.0.0.1:{port}"), settings.clone())
            .or_else(|_| CgiServer::start("127.0.0.1:0", settings))
            .map_err(|e| format!("listening on loopback: {e}"))?;
        Ok(Self {
            cybozu,
            google,
            cgi,
            root,
        })
    }
}

/// Runs `dncs-sync run` every minute against the demo's `dncs.ini`, as cron would.
pub fn schedule_sync(program: PathBuf, ini: PathBuf) {
    std::thread::spawn(move || loop {
        let status = Command::new(&program)
            .arg("run")
            .env("DNCS_INI", &ini)
            .stdin(Stdio::null())
            .status();
        if let Err(e) = status {
            log::warn!("dncs-dev: running {}: {e}", program.display());
        }
        std::thread::sleep(std::time::Duration::from_secs(60));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(output: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let response = parse_cgi_output(output).expect("parses");
        let status = response.status_code().0;
        let headers = response
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_string(),
                    h.value.as_str().to_string(),
                )
            })
            .collect();
        let mut body = Vec::new();
        response.into_reader().read_to_end(&mut body).expect("body");
        (status, headers, body)
    }

    #[test]
    fn status_headers_and_body_are_relayed() {
        let (status, headers, body) =
            parts(b"Status: 413 Payload Too Large\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n<p>big</p>");
        assert_eq!(status, 413);
        assert_eq!(body, b"<p>big</p>");
        assert_eq!(headers.iter().filter(|(n, _)| n == "Set-Cookie").count(), 2);
    }

    #[test]
    fn a_location_without_status_redirects() {
        let (status, _, _) = parts(b"Location: /x\n\n");
        assert_eq!(status, 302);
    }

    #[test]
    fn output_without_headers_is_an_error() {
        assert!(parse_cgi_output(b"hello").is_err());
        assert!(parse_cgi_output(b"no colon here\n\nbody").is_err());
    }
}
