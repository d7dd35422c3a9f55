//! `dncs-dev`: runs the product on loopback against the built-in simulators, for developers and
//! evaluators. `dncs-dev cybozu-sim` serves only the simulated Cybozu Office.

use std::io::Write as _;
use std::process::ExitCode;

/// Prints a line; a closed standard output (a caller that stopped reading) is no reason to stop serving.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use dncs::dev::{build_siblings_with_cargo, sibling_program, Demo};
use dncs::sim::cybozu::{seed, CybozuSim};

const USAGE: &str = "usage: dncs-dev [cybozu-sim] [--port N]

  (no command)  serve the dncs screens (the real dncs CGI) with a simulated Cybozu Office
  cybozu-sim    serve only the simulated Cybozu Office (SOAP 連携API) with a demo company
  --port N      listen on 127.0.0.1:N (default: 8180 for the screens, a free port for cybozu-sim)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut port = None;
    let mut command = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--port" => match rest.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = Some(p),
                None => return usage_error("--port needs a number"),
            },
            "-h" | "--help" => {
                say!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "cybozu-sim" if command.is_none() => command = Some(arg.as_str()),
            other => return usage_error(&format!("unknown argument {other:?}")),
        }
    }
    match command {
        Some(_) => serve_cybozu(port.unwrap_or(0)),
        None => serve_demo(port.unwrap_or(8180)),
    }
}

fn serve_demo(port: u16) -> ExitCode {
    let Some(program) = sibling_program("dncs") else {
        eprintln!("dncs-dev: cannot tell where this program lives");
        return ExitCode::FAILURE;
    };
    if let Some(dir) = program.parent() {
        if std::env::var_os("CARGO").is_some() {
            say!("Building the dncs CGI and dncs-sync (cargo build)…");
        }
        if let Err(e) = build_siblings_with_cargo(dir) {
            eprintln!("dncs-dev: {e}");
            return ExitCode::FAILURE;
        }
    }
    if !program.exists() {
        eprintln!(
            "dncs-dev: {} is missing; build it with `cargo build --bin dncs`",
            program.display()
        );
        return ExitCode::FAILURE;
    }
    let root = std::env::temp_dir().join(format!("dncs-dev-{}", std::process::id()));
    let demo = match Demo::start(program, port, root) {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("dncs-dev: {e}");
            return ExitCode::FAILURE;
        }
    };
    say!("dncs (demo): {}", demo.cgi.url());
    say!("Simulated Cybozu Office: CYBOZU_URL={}", demo.cybozu.url());
    say!(
        "Simulated Google: {} (press 認証 on the settings screen, then 許可)",
        demo.google.url()
    );
    say!("Install folder (dncs.ini, data): {}", demo.root.display());
    print_logins();
    say!("Press Ctrl+C to stop.");
    if let Some(sync) = sibling_program("dncs-sync").filter(|p| p.exists()) {
        dncs::dev::schedule_sync(sync, demo.root.join("bin").join("dncs.ini"));
        say!("dncs-sync run: every minute, as cron would");
    }
    let Demo {
        cybozu,
        google,
        cgi,
        ..
    } = demo;
    let _keep_running = (cybozu, google);
    cgi.serve_forever();
    ExitCode::SUCCESS
}

fn serve_cybozu(port: u16) -> ExitCode {
    let today = dncs::clock::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    let sim = match CybozuSim::start_on(&format!("127.0.0.1:{port}"), seed::demo(today)) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("dncs-dev: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    say!("Simulated Cybozu Office: CYBOZU_URL={}", sim.url());
    print_logins();
    say!("Press Ctrl+C to stop.");
    sim.serve_forever();
    ExitCode::SUCCESS
}

fn print_logins() {
    say!("Demo logins (login / password):");
    for (login, password, name) in seed::DEMO_USERS {
        say!("  {login} / {password}   {name}");
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("dncs-dev: {message}\n{USAGE}");
    ExitCode::from(2)
}
