//! `dncs-sync`: the scheduled side of dncs (cron / Task Scheduler) and the administrator's
//! commands. `dncs-sync check` reads `dncs.ini`, opens the data folder and reports what it found.

use std::process::ExitCode;

use anyhow::Context;
use dncs::config::Config;
use dncs::secret::SecretKey;
use dncs::store::Store;

const USAGE: &str = "usage: dncs-sync check

  check    read dncs.ini (next to this program, or DNCS_INI), open the data folder
           (database and secret key, created when missing) and report what was found";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") if args.len() == 1 => match check() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dncs-sync: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("dncs-sync {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check() -> anyhow::Result<()> {
    let config = Config::locate_and_load()?;
    println!("dncs.ini: {}", config.ini_path.display());
    for warning in &config.warnings {
        println!("  warning: {warning}");
    }
    match config.cybozu_url() {
        Ok(url) => println!("CYBOZU_URL: {url}"),
        Err(e) => println!("  warning: {e}"),
    }
    let key_path = config.data_dir.join("secret.key");
    let key = SecretKey::load_or_create(&key_path)
        .with_context(|| format!("secret key {}", key_path.display()))?;
    let db_path = config.data_dir.join("dncs.db");
    let store =
        Store::open(&db_path, key).with_context(|| format!("database {}", db_path.display()))?;
    let users = store.list_users().context("reading the users")?;
    println!(
        "database: {} (schema version {}, {} users)",
        db_path.display(),
        store
            .schema_version()
            .context("reading the schema version")?,
        users.len()
    );
    Ok(())
}
