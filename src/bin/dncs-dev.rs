//! `dncs-dev`: runs the product on loopback against the built-in simulators, for developers and
//! evaluators. `dncs-dev cybozu-sim [--port N]` serves only the simulated Cybozu Office.

use std::process::ExitCode;

use dncs::sim::cybozu::{seed, CybozuSim};

const USAGE: &str = "usage: dncs-dev [cybozu-sim] [--port N]

  cybozu-sim   serve the simulated Cybozu Office (SOAP 連携API) with a demo company
  --port N     listen on 127.0.0.1:N (default: a free port)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut port = 0u16;
    let mut command = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--port" => match rest.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => return usage_error("--port needs a number"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "cybozu-sim" if command.is_none() => command = Some(arg.as_str()),
            other => return usage_error(&format!("unknown argument {other:?}")),
        }
    }
    match command {
        Some("cybozu-sim") | None => serve_cybozu(port),
        Some(_) => usage_error("unknown command"),
    }
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
    println!("Simulated Cybozu Office: CYBOZU_URL={}", sim.url());
    println!("Demo logins (login / password):");
    for (login, password, name) in seed::DEMO_USERS {
        println!("  {login} / {password}   {name}");
    }
    println!("Press Ctrl+C to stop.");
    sim.serve_forever();
    ExitCode::SUCCESS
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("dncs-dev: {message}\n{USAGE}");
    ExitCode::from(2)
}
