//! How long one `dncs` CGI request takes and how much memory it needs, beside a trivial Rust CGI.
//!
//! `cargo bench --bench cgi` times `GET ?page=settings` of a logged-in user: the whole CGI process
//! as a web server sees it, from spawn to exit with its output read. The floor is
//! `benches/cgi-floor.rs` (example `cgi-floor`), a Rust CGI that prints a fixed page; the bench
//! builds it with `cargo build --profile bench --example cgi-floor` (the optimized profile that
//! `cargo bench` built `dncs` with, so both share one build and land in `target/release`).
//!
//! On x86_64 Linux it also builds both programs the way `install/build-release.sh` builds the
//! release (statically linked, in `target/x86_64-unknown-linux-gnu/release`), and compares each
//! `dncs` with the floor linked the same way. It prints a table with the targets of the
//! performance issue (median within 2× the floor and under 10 ms, peak RSS under 16 MB) as
//! PASS/FAIL, and exits 0.
//!
//! When valgrind is installed it also counts the instructions of one request of each program
//! (callgrind): unlike wall time, the count does not move with the machine's load, so it shows
//! what a change saved even when the times of two runs overlap.
//!
//! The install folder and the session are made through the library, so no Cybozu server is needed.
//!
//! `DNCS_BENCH_HOT_CODE=1` also rewrites `src/bin/dncs-hot-code.txt`, the functions that
//! `build.rs` lays out first, from callgrind profiles of the pages a user opens (the settings, the
//! history, the login page and its style sheet).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;

/// Timed runs per program, after [`WARM_UP`] untimed ones (page cache, SQLite files).
const RUNS: usize = 200;
const WARM_UP: usize = 10;
/// Runs under GNU time for the peak RSS; the largest is reported.
const RSS_RUNS: usize = 20;
const SCRIPT_NAME: &str = "/cgi-bin/cbag/dncs/bin/dncs.cgi";
/// GNU time: reports a child's peak RSS (`%M`, KiB).
const GNU_TIME: &str = "/usr/bin/time";

const TARGET_RATIO: f64 = 2.0;
const TARGET_MEDIAN: Duration = Duration::from_millis(10);
const TARGET_RSS_KIB: u64 = 16 * 1024;

/// A CGI program and the environment of one request to it.
struct Cgi {
    name: &'static str,
    program: PathBuf,
    vars: Vec<(String, String)>,
}

impl Cgi {
    fn command(&self, wrapper: Option<(&Path, &Path)>) -> Command {
        let mut command = match wrapper {
            Some((time, report)) => {
                let mut command = Command::new(time);
                command
                    .args(["-f", "%M", "-o"])
                    .arg(report)
                    .arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        command
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command
    }

    /// One request: spawn, read the whole answer, wait for the exit. Panics on a wrong answer, so a
    /// broken setup cannot pass for a fast one.
    fn run(&self, wrapper: Option<(&Path, &Path)>) -> Duration {
        let start = Instant::now();
        let mut child = self.command(wrapper).spawn().expect("the CGI starts");
        let mut answer = Vec::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_end(&mut answer)
            .expect("read the answer");
        let status = child.wait().expect("wait for the CGI");
        let elapsed = start.elapsed();
        assert!(status.success(), "{} exited with {status}", self.name);
        assert!(
            answer.starts_with(b"Status: 200"),
            "{} answered {}",
            self.name,
            String::from_utf8_lossy(&answer)
        );
        elapsed
    }

    /// The largest peak RSS over [`RSS_RUNS`] runs, in KiB.
    ///
    /// Why GNU time and not `wait4`/`getrusage(RUSAGE_CHILDREN)` here: Linux counts in a child's
    /// `ru_maxrss` the memory of the process it was forked or vforked from, up to its `exec`
    /// (a 300 MB parent makes `/bin/true` report 300 MB), so the bench's own memory would be
    /// measured. GNU time is a small program that forks; the pages its child inherits are far
    /// fewer than any Rust program's own, so `%M` is the CGI's peak. Reading `VmHWM` from
    /// `/proc/<pid>/status` instead races with the exit.
    fn peak_rss_kib(&self, time: &Path, report: &Path) -> Option<u64> {
        let mut peak = 0;
        for _ in 0..RSS_RUNS {
            self.run(Some((time, report)));
            let text = std::fs::read_to_string(report).ok()?;
            peak = peak.max(text.trim().lines().last()?.trim().parse().ok()?);
        }
        Some(peak)
    }

    /// The instructions of one request, counted by valgrind's callgrind; `None` without valgrind.
    /// The fewer of two runs: a page view that refreshes the session's last-seen time (at most
    /// once a minute) writes, and the bench may have taken longer than that.
    fn instructions(&self) -> Option<u64> {
        let first = self.instructions_once()?;
        Some(
            self.instructions_once()
                .map_or(first, |second| first.min(second)),
        )
    }

    fn instructions_once(&self) -> Option<u64> {
        let mut command = Command::new("valgrind");
        command
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&self.program)
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let output = command.output().ok()?;
        if !output.status.success() {
            return None;
        }
        // "==123== Collected : 1467456"
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .find_map(|line| line.split_once("Collected :"))
            .and_then(|(_, count)| count.trim().parse().ok())
    }
}

struct Numbers {
    median: Duration,
    p95: Duration,
    rss_kib: Option<u64>,
    instructions: Option<u64>,
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Builds the floor program with the profile `cargo bench` used for `dncs`, and finds both.
fn programs() -> (PathBuf, PathBuf) {
    let dncs = PathBuf::from(env!("CARGO_BIN_EXE_dncs"));
    let status = cargo()
        .args([
            "build",
            "--quiet",
            "--profile",
            "bench",
            "--example",
            "cgi-floor",
        ])
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo build --profile bench --example cgi-floor failed"
    );
    let profile_dir = dncs.parent().expect("the profile folder");
    let floor = profile_dir
        .join("examples")
        .join(format!("cgi-floor{}", std::env::consts::EXE_SUFFIX));
    assert!(floor.is_file(), "{} was not built", floor.display());
    (dncs, floor)
}

/// The target and flags of the static Linux release (`install/build-release.sh`, keep in step).
const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";

/// Builds `dncs` and the floor as the Linux release is built, on x86_64 Linux; `None` elsewhere
/// or when that build fails (the bench then measures the default build only, and says so).
fn static_programs() -> Option<(PathBuf, PathBuf)> {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        return None;
    }
    let status = cargo()
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        .args(["build", "--quiet", "--release", "--target", STATIC_TARGET])
        .args(["--bin", "dncs", "--example", "cgi-floor"])
        .status();
    if !status.is_ok_and(|s| s.success()) {
        println!("the static release build failed; measuring the default build only");
        return None;
    }
    // The target folder of this build (CARGO_TARGET_DIR included): above `release/` of `dncs`.
    let target_dir = Path::new(env!("CARGO_BIN_EXE_dncs")).parent()?.parent()?;
    let release = target_dir.join(STATIC_TARGET).join("release");
    Some((
        release.join("dncs"),
        release.join("examples").join("cgi-floor"),
    ))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// An install as on a customer's server: every program measured copied into `bin/` (a fresh copy,
/// as `install.sh` makes: a file the linker wrote in place can start measurably slower) with
/// `dncs.ini` beside them, and `data/` holding a user with a session. Returns the copies and the
/// session cookie.
fn install(root: &Path, programs: &[(&str, &Path)]) -> (Vec<PathBuf>, String) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    let copies = programs
        .iter()
        .map(|(name, program)| {
            let copy = bin.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            std::fs::copy(program, &copy).expect("copy a program");
            copy
        })
        .collect();
    std::fs::write(
        bin.join("dncs.ini"),
        "CYBOZU_URL=http://127.0.0.1:9/cgi-bin/cbag/ag.cgi\r\nDATA_DIR=../data\r\nLANG=ja\r\n",
    )
    .expect("write dncs.ini");
    let store = dncs::store::open_data_folder(&root.join("data")).expect("data folder");
    let now = Utc::now();
    store
        .upsert_user(7, "takahashi", "高橋 健太", now)
        .expect("user");
    store
        .set_cybozu_password(7, "takahashi", now)
        .expect("password");
    store.set_enabled(7, true, now).expect("enabled");
    let session = store.create_session(Some(7), false, now).expect("session");
    store.close().expect("close the database");
    (copies, format!("dncs_session={}", session.token))
}

fn cgi_vars(cookie: &str) -> Vec<(String, String)> {
    request_vars("page=settings", cookie)
}

fn request_vars(query: &str, cookie: &str) -> Vec<(String, String)> {
    [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "cybozu.example.jp"),
        ("HTTP_HOST", "cybozu.example.jp"),
        ("SCRIPT_NAME", SCRIPT_NAME),
        ("REMOTE_ADDR", "192.0.2.10"),
        ("REQUEST_METHOD", "GET"),
        ("QUERY_STRING", query),
        ("HTTP_COOKIE", cookie),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |kib| format!("{:.1} MB", kib as f64 / 1024.0))
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to choose, so arguments are ignored.
    let (dncs, floor) = programs();
    let static_builds = static_programs();
    let root = tempfile::tempdir().expect("temp dir");
    // DNCS_BENCH_KEEP=folder leaves the install there, to profile one request by hand.
    let kept = std::env::var_os("DNCS_BENCH_KEEP").map(PathBuf::from);
    let install_root = kept.as_deref().unwrap_or(root.path());
    // Pairs of a dncs build and the floor linked the same way, by name in the table and in bin/.
    let mut builds = vec![
        ("dncs", "dncs.cgi", dncs.as_path()),
        ("floor", "floor.cgi", floor.as_path()),
    ];
    if let Some((dncs, floor)) = &static_builds {
        builds.push(("dncs, static (release)", "dncs-static.cgi", dncs.as_path()));
        builds.push(("floor, static", "floor-static.cgi", floor.as_path()));
    }
    let files: Vec<(&str, &Path)> = builds
        .iter()
        .map(|(_, file, path)| (*file, *path))
        .collect();
    let (copies, cookie) = install(install_root, &files);
    if kept.is_some() {
        println!("kept in {}; HTTP_COOKIE={cookie}", install_root.display());
    }
    let vars = cgi_vars(&cookie);
    if std::env::var_os("DNCS_BENCH_HOT_CODE").is_some_and(|v| !v.is_empty() && v != "0") {
        // The build customers install when there is one; the names are the same in both.
        write_hot_code_list(&copies[copies.len() - 2], &cookie);
    }
    let programs: Vec<Cgi> = builds
        .iter()
        .zip(copies)
        .map(|((name, _, _), program)| Cgi {
            name,
            program,
            vars: vars.clone(),
        })
        .collect();

    // The settings page, once per build: a bench of the login page would be a wrong measurement.
    for cgi in programs.iter().step_by(2) {
        let probe = cgi.command(None).output().expect("dncs runs");
        let text = String::from_utf8_lossy(&probe.stdout);
        assert!(
            text.contains("id=\"state\""),
            "GET ?page=settings ({}) did not show the settings of the session's user:\n{text}",
            cgi.name
        );
    }

    for cgi in &programs {
        for _ in 0..WARM_UP {
            cgi.run(None);
        }
    }
    // Interleaved, so that a change in machine load weighs on all alike.
    let mut times: Vec<Vec<Duration>> = programs.iter().map(|_| Vec::with_capacity(RUNS)).collect();
    for _ in 0..RUNS {
        for (cgi, samples) in programs.iter().zip(times.iter_mut()) {
            samples.push(cgi.run(None));
        }
    }
    let time = Path::new(GNU_TIME);
    let report = root.path().join("time.txt");
    let numbers: Vec<Numbers> = programs
        .iter()
        .zip(times.iter_mut())
        .map(|(cgi, samples)| {
            samples.sort();
            Numbers {
                median: percentile(samples, 0.5),
                p95: percentile(samples, 0.95),
                rss_kib: time
                    .is_file()
                    .then(|| cgi.peak_rss_kib(time, &report))
                    .flatten(),
                instructions: cgi.instructions(),
            }
        })
        .collect();

    println!();
    println!("GET ?page=settings (logged in), {RUNS} runs each, spawn → exit with the answer read");
    println!();
    println!("| program | median | p95 | peak RSS | instructions |");
    println!("|---|---|---|---|---|");
    for (cgi, n) in programs.iter().zip(&numbers) {
        println!(
            "| {} | {} | {} | {} | {} |",
            cgi.name,
            ms(n.median),
            ms(n.p95),
            mib(n.rss_kib),
            n.instructions
                .map_or("n/a: needs valgrind".into(), |count| {
                    format!("{:.2} M", count as f64 / 1e6)
                })
        );
    }
    println!();
    println!("| target | build | measured | result |");
    println!("|---|---|---|---|");
    for (pair, n) in programs.chunks(2).zip(numbers.chunks(2)) {
        let (build, dncs, floor) = (pair[0].name, &n[0], &n[1]);
        let ratio = dncs.median.as_secs_f64() / floor.median.as_secs_f64();
        println!(
            "| median ≤ {TARGET_RATIO}× the floor linked alike | {build} | {ratio:.2}× | {} |",
            pass(ratio <= TARGET_RATIO)
        );
        println!(
            "| median < {} | {build} | {} | {} |",
            ms(TARGET_MEDIAN),
            ms(dncs.median),
            pass(dncs.median < TARGET_MEDIAN)
        );
        match dncs.rss_kib {
            Some(kib) => println!(
                "| peak RSS < {} | {build} | {} | {} |",
                mib(Some(TARGET_RSS_KIB)),
                mib(Some(kib)),
                pass(kib < TARGET_RSS_KIB)
            ),
            None => println!(
                "| peak RSS < {} | {build} | n/a: needs GNU time at {GNU_TIME} (Debian package `time`) | - |",
                mib(Some(TARGET_RSS_KIB))
            ),
        }
    }
}

/// Profiles the pages a user opens and writes the functions they ran to `src/bin/dncs-hot-code.txt`
/// as section-name patterns (`build.rs` reads them), sorted: where each lands within the hot
/// section matters little, and a new profile then shows as a small change.
fn write_hot_code_list(dncs: &Path, cookie: &str) {
    let requests = [
        request_vars("page=settings", cookie),
        request_vars("page=history", cookie),
        request_vars("", ""),
        request_vars("page=css&v=1", ""),
    ];
    let profile = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut patterns: Vec<String> = Vec::new();
    for vars in &requests {
        let status = Command::new("valgrind")
            .args(["--tool=callgrind", "--demangle=no", "--quiet"])
            .arg(format!("--callgrind-out-file={}", profile.path().display()))
            .arg(dncs)
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("DNCS_BENCH_HOT_CODE needs valgrind");
        assert!(
            status.success(),
            "dncs under callgrind exited with {status}"
        );
        let text = std::fs::read_to_string(profile.path()).expect("the callgrind profile");
        patterns.extend(profiled_functions(&text).filter_map(section_pattern));
    }
    patterns.sort();
    patterns.dedup();
    let mut list = String::from(
        "# The functions the dncs CGI runs for the pages a user opens, as ELF section names without\n\
         # `.text.`; build.rs lays them out first (README, \"Performance\"). Rust symbols' hashes are\n\
         # left out (`17h*`, `Cs*_`). Written by `DNCS_BENCH_HOT_CODE=1 cargo bench --bench cgi`.\n",
    );
    for pattern in &patterns {
        list.push_str(pattern);
        list.push('\n');
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/dncs-hot-code.txt");
    std::fs::write(&path, list).expect("write the hot code list");
    println!("wrote {} ({} functions)", path.display(), patterns.len());
}

/// The (mangled) names of the functions in a callgrind profile: each is named once, on the first
/// `fn=(id) name` or `cfn=(id) name` line that refers to it.
fn profiled_functions(profile: &str) -> impl Iterator<Item = &str> {
    profile.lines().filter_map(|line| {
        let rest = line
            .strip_prefix("fn=(")
            .or_else(|| line.strip_prefix("cfn=("))?;
        let (_, name) = rest.split_once(") ")?;
        // A recursive call's cycle mark: `name'2`.
        Some(name.split_once('\'').map_or(name, |(name, _)| name))
    })
}

/// The part of a function's section name after `.text.`, with a Rust hash replaced by `*`; `None`
/// for what is no symbol (`0x…`, `(below main)`).
fn section_pattern(symbol: &str) -> Option<String> {
    // Clang/LLVM's suffix for a local symbol made global, numbered anew by every build.
    let symbol = symbol.split_once(".llvm.").map_or(symbol, |(name, _)| name);
    if symbol.starts_with("0x")
        || !symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
    {
        return None;
    }
    // Rust's legacy mangling ends a path with `17h`, 16 hex digits and `E`.
    let hashless = symbol.strip_suffix('E').and_then(|body| {
        let (path, hash) = body.split_at_checked(body.len().checked_sub(16)?)?;
        (path.ends_with("17h") && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("{path}*"))
    });
    Some(match hashless {
        Some(pattern) => pattern,
        None if symbol.starts_with("_R") => without_crate_disambiguators(symbol),
        None => symbol.to_string(),
    })
}

/// A v0-mangled name (the standard library's) with each crate's disambiguator, `Cs<base 62>_`,
/// as `Cs*_`: a new compiler changes them.
fn without_crate_disambiguators(symbol: &str) -> String {
    let mut pattern = String::with_capacity(symbol.len());
    let mut rest = symbol;
    while let Some(at) = rest.find("Cs") {
        pattern.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if digits > 0 && rest[digits..].starts_with('_') {
            pattern.push('*');
            rest = &rest[digits..];
        }
    }
    pattern.push_str(rest);
    pattern
}
