//! The CalDAV servers the tests start (a Radicale or a Xandikos per test, on a free loopback port
//! with its own storage, or a Radicale behind a proxy that hides `sync-collection`), an install
//! folder syncing the demo company with one, and what its
//! calendar holds: shared by the CalDAV client tests and the CalDAV sync scenarios.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dncs::caldav::{Account, Client};
use dncs::http::RetryPolicy;
use ureq::http;

use crate::util::{agent, utc};

pub(crate) const USER: &str = "alice";
pub(crate) const PASSWORD: &str = "wonder land";
/// The store's id of takahashi in the install folder of [`caldav_install`].
pub(crate) const STORE_USER: i64 = 1;

/// A CalDAV server started by a test: where it listens and where its calendar is.
pub(crate) trait DavServer {
    fn port(&self) -> u16;

    /// The calendar's path, with a trailing slash.
    fn calendar_path(&self) -> String;

    fn root(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port())
    }

    fn calendar(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port(), self.calendar_path())
    }

    fn client(&self, base_url: &str) -> Client {
        self.client_with(base_url, PASSWORD)
    }

    fn client_with(&self, base_url: &str, password: &str) -> Client {
        Client::new(
            agent(),
            Account {
                base_url: base_url.into(),
                username: USER.into(),
                password: password.into(),
            },
        )
        .with_retry(RetryPolicy::quick())
    }

    /// Another client's request, straight through ureq; answers the status.
    fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let mut builder = http::Request::builder()
            .method(http::Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(format!("http://127.0.0.1:{}{path}", self.port()))
            .header("Authorization", format!("Basic {auth}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let agent = agent();
        let request = agent
            .configure_request(builder.body(body.as_bytes()).expect("request"))
            .allow_non_standard_methods(true)
            .build();
        agent.run(request).expect("raw request").status().as_u16()
    }

    /// Another client writes `ics` over `href`, guarded by the ETag it read there.
    fn put(&self, href: &str, etag: &str, ics: &str) {
        let status = self.raw(
            "PUT",
            href,
            &[
                ("Content-Type", "text/calendar; charset=utf-8"),
                ("If-Match", etag),
            ],
            ics,
        );
        assert!(matches!(status, 200 | 201 | 204), "PUT {href}: {status}");
    }

    /// Another client adds the resource `name` to the calendar.
    fn put_new(&self, name: &str, ics: &str) {
        let status = self.raw(
            "PUT",
            &format!("{}{name}", self.calendar_path()),
            &[
                ("Content-Type", "text/calendar; charset=utf-8"),
                ("If-None-Match", "*"),
            ],
            ics,
        );
        assert_eq!(status, 201, "PUT {name}");
    }

    /// Another client deletes a resource.
    fn delete(&self, href: &str) {
        let status = self.raw("DELETE", href, &[], "");
        assert!(matches!(status, 200 | 204), "DELETE {href}: {status}");
    }
}

/// Whether python3 can import `module`; says so (with how to install it) when not.
pub(crate) fn python_has(module: &str, package: &str) -> bool {
    let installed = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("skipped: {package} is not installed (python3 -m pip install {package})");
    }
    installed
}

/// Waits until `port` accepts connections (or `child` exits, or 20 s pass).
pub(crate) fn wait_listening(name: &str, child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{name} did not listen");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A Radicale server with one user and one calendar (`/alice/work/`, named "Work").
pub(crate) struct Radicale {
    child: Child,
    pub(crate) port: u16,
    _storage: tempfile::TempDir,
}

impl Radicale {
    /// `None` (after saying so) when Radicale is not installed here.
    pub(crate) fn start() -> Option<Self> {
        if !python_has("radicale", "radicale") {
            return None;
        }
        let storage = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let users = storage.path().join("users");
        std::fs::write(&users, format!("{USER}:{PASSWORD}\n")).expect("htpasswd");
        let config = storage.path().join("config");
        std::fs::write(
            &config,
            format!(
                "[server]\nhosts = 127.0.0.1:{port}\n\
                 [auth]\ntype = htpasswd\nhtpasswd_filename = {}\nhtpasswd_encryption = plain\ndelay = 0\n\
                 [storage]\nfilesystem_folder = {}\n\
                 [web]\ntype = none\n\
                 [logging]\nlevel = warning\n",
                users.display(),
                storage.path().join("collections").display()
            ),
        )
        .expect("config");
        let child = Command::new("python3")
            .args(["-m", "radicale", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("radicale starts");
        let mut server = Radicale {
            child,
            port,
            _storage: storage,
        };
        wait_listening("Radicale", &mut server.child, port);
        let mkcalendar = r#"<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop><D:displayname>Work</D:displayname></D:prop></D:set>
</C:mkcalendar>"#;
        let status = server.raw("MKCALENDAR", "/alice/work/", &[], mkcalendar);
        assert_eq!(status, 201, "MKCALENDAR");
        Some(server)
    }
}

impl DavServer for Radicale {
    fn port(&self) -> u16 {
        self.port
    }

    fn calendar_path(&self) -> String {
        "/alice/work/".into()
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Xandikos server (from PyPI) with its default calendar `/user/calendars/calendar/`. It has no
/// authentication of its own: the Basic credentials are sent and ignored.
pub(crate) struct Xandikos {
    child: Child,
    port: u16,
    _storage: tempfile::TempDir,
}

impl Xandikos {
    /// `None` (after saying so) when Xandikos is not installed here.
    pub(crate) fn start() -> Option<Self> {
        if !python_has("xandikos", "xandikos") {
            return None;
        }
        let storage = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "xandikos.web",
                "--defaults",
                "--no-detect-systemd",
                "-d",
            ])
            .arg(storage.path())
            .args(["-l", "127.0.0.1", "-p", &port.to_string()])
            .env("XDG_DATA_HOME", storage.path().join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xandikos starts");
        let mut server = Xandikos {
            child,
            port,
            _storage: storage,
        };
        wait_listening("Xandikos", &mut server.child, port);
        Some(server)
    }
}

impl DavServer for Xandikos {
    fn port(&self) -> u16 {
        self.port
    }

    fn calendar_path(&self) -> String {
        "/user/calendars/calendar/".into()
    }
}

impl Drop for Xandikos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback proxy in front of Radicale that hides `sync-collection`: it is taken out of
/// `supported-report-set` and refused (501) if asked anyway; everything else passes unchanged.
pub(crate) struct NoSyncProxy {
    radicale: Radicale,
    server: std::sync::Arc<tiny_http::Server>,
    port: u16,
    pub(crate) calendar_queries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub(crate) refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NoSyncProxy {
    /// `None` (after saying so) when Radicale is not installed here.
    pub(crate) fn start() -> Option<Self> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let radicale = Radicale::start()?;
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("tiny_http"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let calendar_queries = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let upstream = format!("http://127.0.0.1:{}", radicale.port);
        let (srv, queries, refusals) = (server.clone(), calendar_queries.clone(), refused.clone());
        let thread = std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .allow_non_standard_methods(true)
                .build()
                .into();
            while let Ok(mut request) = srv.recv() {
                let mut body = Vec::new();
                let _ = std::io::Read::read_to_end(request.as_reader(), &mut body);
                let method = request.method().as_str().to_string();
                let text = String::from_utf8_lossy(&body);
                if method == "REPORT" && text.contains("sync-collection") {
                    refusals.fetch_add(1, Ordering::SeqCst);
                    let _ = request.respond(
                        tiny_http::Response::from_string("no sync-collection here")
                            .with_status_code(501),
                    );
                    continue;
                }
                if method == "REPORT" && text.contains("calendar-query") {
                    queries.fetch_add(1, Ordering::SeqCst);
                }
                let mut builder = http::Request::builder()
                    .method(http::Method::from_bytes(method.as_bytes()).expect("method"))
                    .uri(format!("{upstream}{}", request.url()));
                for header in request.headers() {
                    let name = header.field.as_str().as_str();
                    if !["host", "content-length", "transfer-encoding", "connection"]
                        .iter()
                        .any(|h| name.eq_ignore_ascii_case(h))
                    {
                        builder = builder.header(name, header.value.as_str());
                    }
                }
                let forwarded = agent
                    .run(builder.body(body).expect("request"))
                    .expect("Radicale answers");
                let status = forwarded.status().as_u16();
                let headers: Vec<tiny_http::Header> = forwarded
                    .headers()
                    .iter()
                    .filter(|(name, _)| {
                        ![
                            "content-length",
                            "transfer-encoding",
                            "connection",
                            "content-encoding",
                        ]
                        .contains(&name.as_str())
                    })
                    .filter_map(|(name, value)| {
                        tiny_http::Header::from_bytes(name.as_str(), value.as_bytes()).ok()
                    })
                    .collect();
                let mut answer = forwarded.into_body().read_to_vec().unwrap_or_default();
                if method == "PROPFIND" {
                    // `<report><sync-collection/></report>` becomes a report nobody uses here.
                    answer = String::from_utf8_lossy(&answer)
                        .replace("sync-collection", "expand-property")
                        .into_bytes();
                }
                let mut response = tiny_http::Response::from_data(answer).with_status_code(status);
                for header in headers {
                    response.add_header(header);
                }
                let _ = request.respond(response);
            }
        });
        Some(Self {
            radicale,
            server,
            port,
            calendar_queries,
            refused,
            thread: Some(thread),
        })
    }
}

impl DavServer for NoSyncProxy {
    fn port(&self) -> u16 {
        self.port
    }

    fn calendar_path(&self) -> String {
        self.radicale.calendar_path()
    }
}

impl Drop for NoSyncProxy {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Which server a test runs against; the scenarios run once on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerKind {
    Radicale,
    Xandikos,
    /// Radicale behind [`NoSyncProxy`]: changes are found by the ctag and the window's ETags.
    EtagsOnly,
}

impl ServerKind {
    /// `None` (after saying so) when this server is not installed here.
    pub(crate) fn start(self) -> Option<Box<dyn DavServer>> {
        fn boxed(server: impl DavServer + 'static) -> Box<dyn DavServer> {
            Box::new(server)
        }
        match self {
            ServerKind::Radicale => Radicale::start().map(boxed),
            ServerKind::Xandikos => Xandikos::start().map(boxed),
            ServerKind::EtagsOnly => NoSyncProxy::start().map(boxed),
        }
    }
}

/// Each scenario, a function of the calling module taking a [`ServerKind`], as one test per
/// server: `radicale::NAME`, `xandikos::NAME` and `etags_only::NAME` (Radicale without
/// `sync-collection`). The scenarios after `not on xandikos:` cannot hold there, for the reason
/// given where they are listed.
macro_rules! on_each_server {
    (
        $($scenario:ident),* $(,)?
        $(; not on xandikos: $($not_xandikos:ident),* $(,)?)?
    ) => {
        $crate::caldav_harness::scenarios_on!(
            radicale, Radicale: $($scenario,)* $($($not_xandikos,)*)?
        );
        $crate::caldav_harness::scenarios_on!(xandikos, Xandikos: $($scenario,)*);
        $crate::caldav_harness::scenarios_on!(
            etags_only, EtagsOnly: $($scenario,)* $($($not_xandikos,)*)?
        );
    };
}

macro_rules! scenarios_on {
    ($module:ident, $kind:ident: $($scenario:ident,)*) => {
        mod $module {
            use $crate::caldav_harness::ServerKind;
            $(#[test]
            fn $scenario() {
                super::$scenario(ServerKind::$kind);
            })*
        }
    };
}

pub(crate) use {on_each_server, scenarios_on};

pub(crate) fn event(uid: &str, summary: &str, start: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//dncs tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// An install folder whose takahashi syncs the demo company with the server's calendar; `ini`
/// is added to dncs.ini as it is (say `CONFLICT=remote\n`).
pub(crate) fn caldav_install(
    server: &dyn DavServer,
    cybozu: &dncs::sim::cybozu::CybozuSim,
    ini: &str,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("install folder");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    std::fs::write(
        bin.join("dncs.ini"),
        format!("CYBOZU_URL={}\nDATA_DIR=../data\n{ini}", cybozu.url()),
    )
    .expect("ini");
    let store = dncs::store::open_data_folder(&dir.path().join("data")).expect("data");
    let now = utc("2026-11-25T01:00:00Z");
    store
        .upsert_user(STORE_USER, "takahashi", "高橋 健太", now)
        .expect("user");
    store
        .set_cybozu_password(STORE_USER, "takahashi", now)
        .expect("password");
    store.set_enabled(STORE_USER, true, now).expect("enabled");
    store.set_sync_on(STORE_USER, true, now).expect("sync on");
    store
        .set_target_and_calendar(STORE_USER, dncs::store::Target::Caldav, "", now)
        .expect("target");
    store
        .set_caldav_account(STORE_USER, &server.calendar(), USER, Some(PASSWORD), now)
        .expect("caldav account");
    dir
}

/// The clock of every pass unless a test moves it.
pub(crate) const NOW: &str = "2026-11-25T10:00:00+09:00";

/// `dncs-sync run --user takahashi` at the pinned clock, not started yet.
pub(crate) fn sync_command(install: &tempfile::TempDir) -> Command {
    sync_command_at(install, NOW)
}

/// The same at `now` (RFC 3339).
pub(crate) fn sync_command_at(install: &tempfile::TempDir, now: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dncs-sync"));
    command
        .args(["run", "--user", "takahashi"])
        .env("DNCS_INI", install.path().join("bin").join("dncs.ini"))
        .env("DNCS_NOW", now)
        .stdin(Stdio::null());
    command
}

/// The same pass, run to its end: it must exit well and say nothing on stderr.
pub(crate) fn sync_pass(install: &tempfile::TempDir) {
    let output = sync_pass_output(install);
    assert!(
        output.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The same pass, which may say why it skipped the user (on stderr); it must exit well.
pub(crate) fn sync_pass_output(install: &tempfile::TempDir) -> Output {
    let output = sync_command(install).output().expect("dncs-sync runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The engine's CalDAV remote of takahashi in `install`, at the pinned clock.
pub(crate) fn caldav_remote(install: &tempfile::TempDir) -> dncs::sync::caldav::CalDavRemote {
    let store = dncs::store::open_data_folder(&install.path().join("data")).expect("data");
    let config =
        dncs::config::Config::load(&install.path().join("bin").join("dncs.ini")).expect("dncs.ini");
    dncs::sync::caldav::CalDavRemote::open(&store, &config, &agent(), STORE_USER, utc(NOW))
        .expect("the calendar opens")
}

/// Every copy the mapping records is read back from the server with the etag recorded for it.
/// Otherwise the first pass that reads its resource again (another client changing one day of a
/// series, say) takes it for changed there too; a quiet pass reads nothing and would not tell.
pub(crate) fn assert_read_back_as_recorded(install: &tempfile::TempDir) {
    use dncs::sync::engine::Remote;
    let mut remote = caldav_remote(install);
    let read: std::collections::BTreeMap<String, Option<String>> = remote
        .list(
            None,
            (utc("2020-01-01T00:00:00Z"), utc("2030-01-01T00:00:00Z")),
        )
        .expect("the calendar lists")
        .items
        .into_iter()
        .map(|item| (item.id, item.etag))
        .collect();
    let differing: Vec<_> = dncs::store::open_data_folder(&install.path().join("data"))
        .expect("data")
        .mappings_for_user(STORE_USER)
        .expect("mappings")
        .into_iter()
        .filter_map(|m| {
            let now = read.get(&m.remote_id)?;
            (*now != m.remote_etag).then_some((m.remote_id, m.remote_etag, now.clone()))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "read back otherwise than recorded (id, recorded, read): {differing:#?}"
    );
}

/// The calendar's events by href: (etag, SUMMARY, text).
pub(crate) fn calendar_events(server: &dyn DavServer) -> Vec<(String, String, String, String)> {
    let client = server.client(&server.calendar());
    let hrefs: Vec<String> = client
        .list_etags(&server.calendar(), None)
        .expect("listing")
        .into_iter()
        .map(|(href, _)| href)
        .collect();
    client
        .multiget(&server.calendar(), &hrefs)
        .expect("multiget")
        .into_iter()
        .map(|r| {
            let summary = dncs::ical::parse(&r.ics)
                .ok()
                .and_then(|c| {
                    c.children
                        .iter()
                        .find(|v| v.name == "VEVENT")
                        .and_then(|v| v.text("SUMMARY"))
                })
                .unwrap_or_default();
            (r.href, r.etag, summary, r.ics)
        })
        .collect()
}
