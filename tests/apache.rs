//! The real `dncs` binary installed under a real Apache httpd with `mod_cgid`, as a Linux customer
//! runs it: a user logs in with their Cybozu password, turns the sync on, links Google, presses
//! 「ただちに同期する」 (the pass runs on after the CGI, as Apache's account) and reads 同期履歴.
//!
//! The test installs nothing. When no Apache httpd is found it says so and passes; `.ci/run`
//! installs Apache, so CI always runs it. Apache gets a minimal configuration of its own in a
//! temporary folder, listens on a free loopback port and runs in the foreground as a child of the
//! test, which stops it when done (also on a failed assertion).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use dncs::store::PassCounts;

const SCRIPT_PATH: &str = "cgi-bin/cbag/dncs/bin/dncs.cgi";

/// Where distributions put the server binary.
const HTTPD_CANDIDATES: &[&str] = &[
    "/usr/sbin/apache2",
    "/usr/sbin/httpd",
    "/usr/local/sbin/httpd",
    "/usr/local/apache2/bin/httpd",
];

/// Where distributions put the loadable modules (Debian, Fedora/RHEL, Arch, the Apache default).
const MODULE_DIR_CANDIDATES: &[&str] = &[
    "/usr/lib/apache2/modules",
    "/usr/lib64/httpd/modules",
    "/usr/lib/httpd/modules",
    "/usr/local/apache2/modules",
];

/// Accounts Apache may switch to when started as root, which it refuses to serve as.
const APACHE_USER_CANDIDATES: &[&str] = &["www-data", "apache", "http", "daemon", "nobody"];

struct Httpd {
    binary: PathBuf,
    modules: PathBuf,
}

fn find_httpd() -> Option<Httpd> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|dir| [dir.join("apache2"), dir.join("httpd")]);
    let binary = HTTPD_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .find(|path| path.is_file())?;
    let modules = MODULE_DIR_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("mod_cgid.so").is_file())?;
    Some(Httpd { binary, modules })
}

/// A running Apache; stopped (with its workers and the cgid daemon) when dropped.
struct RunningHttpd {
    child: Child,
    error_log: PathBuf,
    stderr_log: PathBuf,
}

impl RunningHttpd {
    /// Apache's own words, for assertion messages.
    fn logs(&self) -> String {
        let read = |path: &Path| fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
        format!(
            "\n--- Apache error log ---\n{}\n--- Apache stderr ---\n{}",
            read(&self.error_log),
            read(&self.stderr_log)
        )
    }
}

impl Drop for RunningHttpd {
    fn drop(&mut self) {
        // SIGTERM lets the parent stop its workers and the cgid daemon; SIGKILL would orphan them.
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if terminated {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The account Apache switches to when started as root.
struct Account {
    user: String,
    group: String,
    uid: u32,
    gid: u32,
}

fn apache_account() -> Option<Account> {
    APACHE_USER_CANDIDATES.iter().find_map(|name| {
        let id = |flag: &str| -> Option<String> {
            let output = Command::new("id").args([flag, name]).output().ok()?;
            let text = String::from_utf8(output.stdout).ok()?;
            (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
        };
        Some(Account {
            user: name.to_string(),
            group: id("-gn")?,
            uid: id("-u")?.parse().ok()?,
            gid: id("-g")?.parse().ok()?,
        })
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn httpd_conf(httpd: &Httpd, root: &Path, port: u16, account: Option<&Account>) -> String {
    let mpm = if httpd.modules.join("mod_mpm_event.so").is_file() {
        "mpm_event"
    } else {
        "mpm_prefork"
    };
    let mut modules = vec![mpm, "authz_core", "mime", "dir", "cgid", "alias", "env"];
    // Built into Debian's binary; a module elsewhere. User/Group need it.
    if httpd.modules.join("mod_unixd.so").is_file() {
        modules.push("unixd");
    }
    let mut conf = String::new();
    for module in modules {
        conf.push_str(&format!(
            "LoadModule {module}_module {}\n",
            httpd.modules.join(format!("mod_{module}.so")).display()
        ));
    }
    let root = root.display();
    conf.push_str(&format!(
        "ServerRoot \"{root}\"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile \"{root}/httpd.pid\"
DefaultRuntimeDir \"{root}\"
ErrorLog \"{root}/error.log\"
LogLevel info
TypesConfig \"{root}/mime.types\"
ScriptSock \"{root}/cgid.sock\"
ScriptAlias /cgi-bin/ \"{root}/cgi-bin/\"
<Directory \"{root}/cgi-bin\">
    Require all granted
</Directory>
"
    ));
    if let Some(account) = account {
        conf.push_str(&format!("User {}\nGroup {}\n", account.user, account.group));
    }
    // The snippet administrators are given, for this install's folder.
    conf.push_str(
        &include_str!("../install/apache.conf")
            .replace("/var/www/cgi-bin", &format!("{root}/cgi-bin")),
    );
    conf
}

/// `name=value` of every `Set-Cookie`, merged into `jar` (a later value replaces an earlier one).
fn take_cookies(response: &ureq::http::Response<ureq::Body>, jar: &mut Vec<(String, String)>) {
    for header in response.headers().get_all("set-cookie") {
        let text = header.to_str().unwrap_or("");
        let pair = text.split(';').next().unwrap_or("");
        if let Some((name, value)) = pair.split_once('=') {
            jar.retain(|(known, _)| known != name.trim());
            jar.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
}

fn cookie_header(jar: &[(String, String)]) -> String {
    jar.iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What dncs and dncs-sync wrote to their monthly logs in `data/log/` (for a failure's message).
fn dncs_logs(data: &Path) -> String {
    let mut logs = String::new();
    for entry in fs::read_dir(data.join("log"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "log") {
            logs += &fs::read_to_string(&path).unwrap_or_default();
        }
    }
    logs
}

/// The processes still running a program of the install under `root`, each with its threads'
/// states and kernel wait channels (alive, and waiting on what); empty when there are none.
fn processes_of(root: &Path) -> String {
    let root = root.to_string_lossy().into_owned();
    let mut found = String::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir = entry.path();
        let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        // The program's own path, not an argument (Apache's names the install's httpd.conf).
        let program = Path::new(cmdline.split(' ').next().unwrap_or(""));
        let of_the_install = program.starts_with(&root)
            && program
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("dncs"));
        if !of_the_install {
            continue;
        }
        found += &format!("process {}: {}\n", dir.display(), cmdline.trim());
        for task in fs::read_dir(dir.join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let read = |name| fs::read_to_string(task.path().join(name)).unwrap_or_default();
            let stat = read("stat");
            // The state follows the command name in parentheses.
            let state = stat.rsplit(") ").next().unwrap_or("").split(' ').next();
            found += &format!(
                "  thread {}: state {}, waiting in {:?}\n{}",
                task.file_name().to_string_lossy(),
                state.unwrap_or("?"),
                read("wchan"),
                read("stack")
            );
        }
    }
    found
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_field(page: &str) -> Option<String> {
    let start = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let length = page[start..].find('"')?;
    Some(page[start..start + length].to_string())
}

struct Page {
    status: u16,
    location: String,
    body: String,
}

/// A browser without redirects or cookies of its own: the test follows both by hand.
struct Browser {
    agent: ureq::Agent,
    base: String,
    jar: Vec<(String, String)>,
}

impl Browser {
    fn get(&mut self, query: &str) -> Result<Page, ureq::Error> {
        let url = format!("{}{query}", self.base);
        let mut request = self.agent.get(&url);
        if !self.jar.is_empty() {
            request = request.header("Cookie", &cookie_header(&self.jar));
        }
        self.read(request.call()?)
    }

    fn post(&mut self, query: &str, form: &[(&str, &str)]) -> Result<Page, ureq::Error> {
        let url = format!("{}{query}", self.base);
        let mut request = self.agent.post(&url);
        if !self.jar.is_empty() {
            request = request.header("Cookie", &cookie_header(&self.jar));
        }
        self.read(request.send_form(form.iter().copied())?)
    }

    fn read(
        &mut self,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<Page, ureq::Error> {
        take_cookies(&response, &mut self.jar);
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_string();
        Ok(Page {
            status: response.status().as_u16(),
            location,
            body: response.body_mut().read_to_string()?,
        })
    }
}

#[test]
fn apache_cgi_login_settings_and_history() {
    let Some(httpd) = find_httpd() else {
        println!(
            "apache_cgi_login_settings_and_history: SKIPPED because Apache httpd is not installed \
             (no apache2 or httpd with mod_cgid.so found); .ci/run installs it"
        );
        return;
    };
    let sim = crate::util::demo_sim();
    let google = dncs::sim::google::GoogleSim::start().expect("Google simulator");
    google.set_consent(dncs::sim::google::Consent::Allow);

    // The install: the CGI where a Cybozu CGI folder keeps it, dncs.ini beside it, data/ beside bin/.
    let root = tempfile::tempdir().expect("temp dir");
    let root_path = root.path();
    let bin = root_path.join("cgi-bin/cbag/dncs/bin");
    let data = root_path.join("cgi-bin/cbag/dncs/data");
    fs::create_dir_all(&bin).expect("bin folder");
    fs::create_dir_all(&data).expect("data folder");
    let cgi = root_path.join(SCRIPT_PATH);
    fs::copy(env!("CARGO_BIN_EXE_dncs"), &cgi).expect("copy dncs");
    // 「ただちに同期する」 starts the dncs-sync beside the CGI.
    let sync_program = bin.join("dncs-sync");
    fs::copy(env!("CARGO_BIN_EXE_dncs-sync"), &sync_program).expect("copy dncs-sync");
    fs::write(
        bin.join("dncs.ini"),
        format!(
            "CYBOZU_URL={}\r\nDATA_DIR=../data\r\nLANG=ja\r\n{}",
            sim.url(),
            crate::harness::GoogleIni::relay(&google).lines()
        ),
    )
    .expect("write dncs.ini");
    fs::write(root_path.join("mime.types"), "").expect("mime.types");

    // Apache will not serve as root: it switches to an unprivileged account, which must reach
    // the install (the temporary folder is private to its owner) and write data/.
    for path in [
        root_path,
        &root_path.join("cgi-bin/cbag/dncs"),
        &bin,
        &cgi,
        &sync_program,
    ] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let running_as_root = fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
    let account =
        running_as_root.then(|| apache_account().expect("an unprivileged account for Apache"));
    if let Some(account) = &account {
        std::os::unix::fs::chown(&data, Some(account.uid), Some(account.gid)).expect("chown data");
    }

    let port = free_port();
    let conf = root_path.join("httpd.conf");
    fs::write(&conf, httpd_conf(&httpd, root_path, port, account.as_ref()))
        .expect("write httpd.conf");
    let stderr_log = root_path.join("httpd.stderr");
    let child = Command::new(&httpd.binary)
        .arg("-f")
        .arg(&conf)
        .arg("-DFOREGROUND")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_log).expect("stderr file"))
        .spawn()
        .expect("Apache starts");
    let mut apache = RunningHttpd {
        child,
        error_log: root_path.join("error.log"),
        stderr_log,
    };

    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = apache.child.try_wait() {
            panic!("Apache exited with {status} at start{}", apache.logs());
        }
        assert!(
            Instant::now() < deadline,
            "Apache did not listen on port {port} within 20 s{}",
            apache.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut browser = Browser {
        agent: ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into(),
        base: format!("http://127.0.0.1:{port}/{SCRIPT_PATH}"),
        jar: Vec::new(),
    };
    // Every step's failure carries Apache's logs, where a CGI that did not start says why.
    let check = |apache: &RunningHttpd, ok: bool, what: &str, page: &Page| {
        assert!(
            ok,
            "{what}: status {} location {:?}\n{}{}",
            page.status,
            page.location,
            page.body,
            apache.logs()
        );
    };
    let fetch = |result: Result<Page, ureq::Error>, apache: &RunningHttpd| {
        result.unwrap_or_else(|e| panic!("request failed: {e}{}", apache.logs()))
    };

    // The login page, with its double-submit token in a field and a cookie.
    let page = fetch(browser.get("?page=login"), &apache);
    check(&apache, page.status == 200, "the login page", &page);
    check(
        &apache,
        page.body.contains("ログイン名"),
        "the login form",
        &page,
    );
    let token = csrf_field(&page.body).expect("the login form's csrf field");
    assert!(
        browser.jar.iter().any(|(name, _)| name == "dncs_login"),
        "the login cookie: {:?}",
        browser.jar
    );

    let page = fetch(
        browser.post(
            "?page=login",
            &[
                ("csrf", &token),
                ("login", "takahashi"),
                ("password", "takahashi"),
            ],
        ),
        &apache,
    );
    let to_settings = page.status == 303 && page.location.contains("page=settings");
    check(&apache, to_settings, "the login", &page);
    assert!(
        browser.jar.iter().any(|(name, _)| name == "dncs_session"),
        "the session cookie: {:?}",
        browser.jar
    );

    let page = fetch(browser.get("?page=settings"), &apache);
    check(&apache, page.status == 200, "the settings page", &page);
    check(
        &apache,
        page.body.contains("id=\"state\">停止中<"),
        "a new user's sync is stopped",
        &page,
    );
    let token = csrf_field(&page.body).expect("the settings form's csrf field");

    let page = fetch(
        browser.post(
            "?page=settings",
            &[
                ("csrf", &token),
                ("target", "google"),
                ("sync_on", "on"),
                ("calendar_id", "primary"),
            ],
        ),
        &apache,
    );
    // `done=dropped` when the calendar changed (here from none to `primary`), else `done=saved`.
    let saved = page.status == 303 && page.location.contains("page=settings&done=");
    check(&apache, saved, "saving the settings", &page);

    let page = fetch(browser.get("?page=settings"), &apache);
    check(
        &apache,
        page.status == 200 && page.body.contains("id=\"state\">同期中<"),
        "the sync is on",
        &page,
    );
    check(
        &apache,
        page.body.contains("value=\"primary\""),
        "the calendar id is kept",
        &page,
    );

    // A pass recorded as dncs-sync records it, then read through Apache. (Opened as root, SQLite
    // gives any file it creates the owner of the database, so the CGI can still write.)
    let store = dncs::store::open_data_folder(&data).expect("the data folder the CGI made");
    let user = store
        .user_by_login("takahashi")
        .expect("read the user")
        .expect("the login recorded the user");
    let now = Utc::now();
    let counts = PassCounts {
        remote_created: 3,
        ..PassCounts::default()
    };
    let error = "予定「Apache 経由の確認」を Google に書き込めませんでした。";
    store
        .append_history(user.id, now, now, &counts, &[error.to_string()])
        .expect("append history");
    store.close().expect("close the database");

    let page = fetch(browser.get("?page=history"), &apache);
    check(&apache, page.status == 200, "the history page", &page);
    check(
        &apache,
        page.body.contains(error) && page.body.contains("追加 3 "),
        "the history shows the pass",
        &page,
    );

    // 認証: Google's consent (allowed at once), then its code and state brought back to the CGI as
    // the relay page does.
    let page = fetch(browser.get("?page=settings"), &apache);
    let token = csrf_field(&page.body).expect("the settings form's csrf field");
    let page = fetch(
        browser.post("?page=google_auth", &[("csrf", &token)]),
        &apache,
    );
    check(&apache, page.status == 303, "認証", &page);
    let consent = browser
        .agent
        .get(&page.location)
        .call()
        .unwrap_or_else(|e| panic!("Google's consent: {e}"));
    let back = crate::util::location(&consent);
    let value = |name| crate::util::query_value(&back, name).expect(name);
    let callback = format!(
        "?{}",
        crate::harness::form_encode(&[
            ("page", "google_callback"),
            ("code", &value("code")),
            ("state", &value("state")),
        ])
    );
    let page = fetch(browser.get(&callback), &apache);
    check(
        &apache,
        page.status == 303 && page.location.contains("done=linked"),
        "the link",
        &page,
    );

    // 「ただちに同期する」: the page answers at once, the pass goes on in dncs-sync after the CGI
    // has exited, with Apache's account, and leaves its entry in 同期履歴.
    let page = fetch(browser.get("?page=settings"), &apache);
    let token = csrf_field(&page.body).expect("the settings form's csrf field");
    // From here on, what the simulators are asked is the pass's (for a failure's message).
    sim.take_calls();
    google.take_calls();
    let page = fetch(browser.post("?page=sync_now", &[("csrf", &token)]), &apache);
    check(
        &apache,
        page.status == 303 && page.location.contains("done=started"),
        "「ただちに同期する」 starts a pass",
        &page,
    );
    // Watched as the user would, through the settings page, and in the process table: this test
    // runs as root, and a root connection that creates the database's -wal and -shm files while
    // the pass (Apache's account) opens them would make the database read-only to the pass for
    // that instant. The store is read once the pass has ended.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = fetch(browser.get("?page=settings"), &apache);
        let running = processes_of(root_path);
        if page.body.contains("id=\"state\">同期中<") && running.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "the pass started under Apache did not finish within 60 s.\nThe settings page: \
                 {}\nCybozu Office was asked: {:?}\nGoogle was asked: {:?}\n{running}\
                 the logs of dncs:\n{}{}",
                page.body,
                sim.take_calls(),
                google.take_calls(),
                dncs_logs(&data),
                apache.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let store = dncs::store::open_data_folder(&data).expect("the data folder");
    let pending = store.has_pending_sync_request(user.id).expect("read");
    let history = store.history_page(user.id, 0, 20).expect("history");
    store.close().expect("close the database");
    assert!(!pending, "the request is served");
    assert_eq!(
        history.total,
        2,
        "{:?}{}",
        history.entries,
        dncs_logs(&data)
    );
    let pass = history.entries[0].clone();
    assert!(pass.errors.is_empty(), "{:?}{}", pass.errors, apache.logs());
    let copies = google.events(dncs::sim::google::DEFAULT_ACCOUNT, "primary");
    assert!(
        !copies.is_empty(),
        "takahashi's demo schedule reaches Google"
    );
    assert_eq!(
        pass.counts.remote_created as usize,
        copies.len(),
        "{copies:?}"
    );
    let page = fetch(browser.get("?page=history"), &apache);
    let created = format!("追加 {} ", copies.len());
    check(
        &apache,
        page.status == 200 && page.body.contains(&created),
        "the history shows the pass to Google",
        &page,
    );

    // The secrets beside the CGI are never served: data/ and dncs.ini are refused.
    for file in ["data/dncs.db", "data/secret.key", "bin/dncs.ini"] {
        assert!(
            root_path.join("cgi-bin/cbag/dncs").join(file).is_file(),
            "{file} exists"
        );
        let url = format!("http://127.0.0.1:{port}/cgi-bin/cbag/dncs/{file}");
        let mut response = browser
            .agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("request failed: {e}{}", apache.logs()));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().unwrap_or_default();
        assert_eq!(status, 403, "{file} must be refused{}", apache.logs());
        assert!(!body.starts_with(b"SQLite format 3") && !body.starts_with(b"CYBOZU_URL"));
    }
}
