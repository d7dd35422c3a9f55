//! `dncs-sync`: the scheduled side of dncs (cron / Task Scheduler) and the administrator's
//! commands. The work is in the library; this file parses arguments and reports.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use dncs::config::Config;
use dncs::store::{open_data_folder, Store, SETTING_ADMIN_PASSWORD_HASH};

const USAGE: &str = "usage: dncs-sync COMMAND

  run [--user LOGIN] [--dry-run]
                   one scheduled run (cron / Task Scheduler, every minute): serves
                   「ただちに同期する」 requests, and a full pass over every enabled user every
                   SYNC_INTERVAL minutes; --user syncs one user now; --dry-run prints each
                   user's plan and writes nothing
  check            read dncs.ini (next to this program, or DNCS_INI), open the data folder
                   (database and secret key, created when missing) and report what was found
  import-legacy FILE
                   import Google links from an earlier installation: a CSV of login name,
                   refresh token, calendar id, flow (oob|relay|direct) and optionally the Cybozu
                   password; users not known yet get their link at their first login
  admin-password   set the password of the administrator's screens; it is read from standard
                   input (one line), e.g.  echo 'new password' | dncs-sync admin-password
  new-key          when data/secret.key is lost for good: remove the stored passwords and
                   Google links and make a new key (users then log in again, press 認証 again
                   and enter their CalDAV password again; settings and sync information stay);
                   asks for confirmation, or pass --yes; refused while a run is in progress";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["check"] => check(),
        ["run", rest @ ..] => match parse_run(rest) {
            Some(options) => run(&options),
            None => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        },
        ["admin-password"] => admin_password(),
        ["new-key"] => new_key(false),
        ["new-key", "--yes"] => new_key(true),
        ["import-legacy", file] => import_legacy(std::path::Path::new(file)),
        ["-h" | "--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["-V" | "--version"] => {
            println!("dncs-sync {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Also in the log: a pass started by 「ただちに同期する」 has no terminal, and cron
            // mails stderr only where the administrator set that up.
            log::error!("dncs-sync {}: {e:#}", args.join(" "));
            eprintln!("dncs-sync: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `dncs.ini`, for a command that works in the data folder: refused as root in a folder that
/// belongs to the web server's account, before anything is created there (the log included).
fn load_config() -> anyhow::Result<Config> {
    let config = Config::locate_and_load()?;
    dncs::store::check_data_folder_owner(&config.data_dir)?;
    Ok(config)
}

fn open(config: &Config) -> anyhow::Result<Store> {
    open_data_folder(&config.data_dir).map_err(|e| anyhow!(e))
}

fn check() -> anyhow::Result<()> {
    let config = load_config()?;
    println!("dncs.ini: {}", config.ini_path.display());
    for warning in &config.warnings {
        println!("  warning: {warning}");
    }
    // Cybozu Office not answering is reported after the rest, which is still worth reading.
    let mut unreachable = None;
    match config.cybozu_url() {
        Ok(url) => {
            let agent = dncs::http::agent(&dncs::http::AgentSettings::from_config(&config))?;
            match dncs::cybozu::Client::probe(url, agent) {
                Ok(()) => println!("CYBOZU_URL: {url} (Cybozu Office answers)"),
                Err(e) => {
                    println!("CYBOZU_URL: {url} (NOT answering: {e})");
                    unreachable = Some(e);
                }
            }
        }
        Err(e) => println!("  warning: {e}"),
    }
    let store = open(&config)?;
    let users = store.list_users().context("reading the users")?;
    println!(
        "database: {} (schema version {}, {} {})",
        config.data_dir.join(dncs::store::DATABASE_FILE).display(),
        store
            .schema_version()
            .context("reading the schema version")?,
        users.len(),
        if users.len() == 1 { "user" } else { "users" }
    );
    let unopenable = store
        .unopenable_secrets()
        .context("reading the stored secrets")?;
    if unopenable > 0 {
        println!(
            "  warning: {unopenable} stored password(s) or token(s) cannot be opened with {}: \
             it is not the key they were sealed with. Restore the right key from a backup, or \
             run dncs-sync new-key to start the secrets over",
            config.data_dir.join(dncs::store::KEY_FILE).display()
        );
    }
    let admin = store.setting(SETTING_ADMIN_PASSWORD_HASH)?.is_some();
    println!(
        "administrator password: {}",
        if admin {
            "set"
        } else {
            "not set (run dncs-sync admin-password)"
        }
    );
    match unreachable {
        Some(e) => Err(anyhow!(e).context("Cybozu Office does not answer at CYBOZU_URL")),
        None => Ok(()),
    }
}

fn admin_password() -> anyhow::Result<()> {
    let config = load_config()?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        print!("New administrator password (shown as typed): ");
        std::io::stdout().flush()?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    let password = line.trim_end_matches(['\r', '\n']);
    let hash = dncs::password::hash(password)?;
    let store = open(&config)?;
    store
        .set_setting(SETTING_ADMIN_PASSWORD_HASH, &hash)
        .context("storing the password")?;
    // Sessions opened with the old password end now.
    store
        .delete_admin_sessions()
        .context("ending the administrator's sessions")?;
    println!("The administrator password is set.");
    Ok(())
}

fn new_key(confirmed: bool) -> anyhow::Result<()> {
    let config = load_config()?;
    if !confirmed {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(anyhow!(
                "new-key removes every stored password and Google link; run it on a terminal \
                 to confirm, or pass --yes"
            ));
        }
        print!(
            "This removes every stored password and Google link in {}; users must log in and \
             press 認証 again. Type yes to go on: ",
            config.data_dir.display()
        );
        std::io::stdout().flush()?;
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        if line.trim() != "yes" {
            println!("Nothing was changed.");
            return Ok(());
        }
    }
    // A pass running meanwhile would seal what it refreshes with the key being replaced.
    let Some(_lock) = dncs::sync::run::try_run_lock(&config.data_dir)? else {
        return Err(anyhow!(
            "a sync run is in progress ({} is locked); nothing was changed. Run new-key again \
             when it has finished",
            config.data_dir.join("sync.lock").display()
        ));
    };
    let (forgotten, kept) =
        dncs::store::replace_data_folder_key(&config.data_dir, dncs::clock::now())
            .map_err(|e| anyhow!(e))?;
    log::warn!(
        "dncs-sync new-key: the stored secrets of {} user(s) were removed and a new key made",
        forgotten.users
    );
    println!(
        "A new secret key is in place. The stored secrets of {} user(s) were removed: they \
         log in again (which stores their Cybozu password), press 認証 again for Google, and \
         enter their CalDAV password again.",
        forgotten.users
    );
    if forgotten.legacy_links > 0 {
        println!(
            "{} imported link(s) waiting for a first login were removed: run dncs-sync \
             import-legacy again with the earlier installation's file.",
            forgotten.legacy_links
        );
    }
    if let Some(kept) = kept {
        println!("The key file it replaces is kept as {}.", kept.display());
    }
    Ok(())
}

fn import_legacy(file: &std::path::Path) -> anyhow::Result<()> {
    let config = load_config()?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let (rows, mut problems) = dncs::legacy::parse_csv(&bytes, file).map_err(|e| anyhow!(e))?;
    let store = open(&config)?;
    let agent = dncs::http::agent(&dncs::http::AgentSettings::from_config(&config))?;
    let cybozu_url = config.cybozu_url().ok().map(str::to_string);
    let learn_user = |login: &str, password: &str| -> Result<(i64, String), String> {
        let url = cybozu_url.as_deref().ok_or("CYBOZU_URL is not set")?;
        let client = dncs::cybozu::Client::new(
            url,
            agent.clone(),
            dncs::cybozu::Credentials {
                login: login.into(),
                password: password.into(),
            },
        );
        let id = client.login_user_id().map_err(|e| e.to_string())?;
        let id = i64::try_from(id).map_err(|_| format!("user id {id} is out of range"))?;
        let name = client
            .users_by_login_name(&[login])
            .ok()
            .and_then(|users| users.into_iter().next())
            .map(|u| u.name)
            .unwrap_or_default();
        Ok((id, name))
    };
    let report = dncs::legacy::import(&store, &config, &rows, learn_user, dncs::clock::now())?;
    problems.extend(report.problems);
    println!("linked now: {}", report.applied.len());
    for login in &report.applied {
        println!("  {login}");
    }
    println!("waiting for their first login: {}", report.waiting.len());
    for login in &report.waiting {
        println!("  {login}");
    }
    for problem in &problems {
        eprintln!("  problem: {problem}");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(
            "{} line(s) had problems (see above)",
            problems.len()
        ))
    }
}

/// Logs `dncs.ini`'s warnings (an unknown key, an ignored line) when they differ from the last
/// ones logged; printed too on a terminal (not under cron, which would mail them every minute).
fn log_new_ini_warnings(config: &Config) {
    if std::io::stderr().is_terminal() {
        for warning in &config.warnings {
            eprintln!("dncs-sync: dncs.ini: {warning}");
        }
    }
    let Ok(store) = open(config) else {
        // The run itself reports a data folder that does not open.
        return;
    };
    match store.ini_warnings_are_new(&config.warnings) {
        Ok(true) => {
            for warning in &config.warnings {
                log::warn!("{}: {warning}", config.ini_path.display());
            }
        }
        Ok(false) => {}
        Err(e) => log::warn!("remembering the dncs.ini warnings: {e}"),
    }
}

fn parse_run(args: &[&str]) -> Option<dncs::sync::run::RunOptions> {
    let mut options = dncs::sync::run::RunOptions::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--user" => options.user = Some(rest.next()?.to_string()),
            "--dry-run" => options.dry_run = true,
            _ => return None,
        }
    }
    Some(options)
}

fn run(options: &dncs::sync::run::RunOptions) -> anyhow::Result<()> {
    let config = load_config()?;
    if let Err(e) = dncs::logfile::init(&config.data_dir, config.log_level, dncs::clock::now()) {
        eprintln!("dncs-sync: the log file cannot be written: {e}");
    }
    log_new_ini_warnings(&config);
    let terminal = std::io::stderr().is_terminal();
    // A progress line on a terminal; nothing under cron.
    let progress = move |done: usize, total: usize, errors: usize| {
        if terminal {
            eprint!("\r{done}/{total} users synced, {errors} with errors ");
        }
    };
    let report = dncs::sync::run::run(&config, options, &progress)?;
    if !report.locked && !options.dry_run {
        let store = open(&config)?;
        if let Err(e) = dncs::web::app::housekeeping(&store, dncs::clock::now()) {
            eprintln!("dncs-sync: cleaning up sessions: {e}");
        }
    }
    if terminal && !report.users.is_empty() {
        eprintln!();
    }
    if report.locked {
        println!("another dncs-sync run is still in progress; this one exits without syncing");
        return Ok(());
    }
    for user in &report.users {
        match &user.outcome {
            Ok(outcome) if options.dry_run => {
                println!("{}: {} action(s)", user.login, outcome.plan.actions.len());
                for action in &outcome.plan.actions {
                    println!("  {action}");
                }
                if let Some(blocked) = &outcome.plan.blocked {
                    println!("  stopped: {blocked}");
                }
            }
            Ok(outcome) => {
                for message in &outcome.messages {
                    println!("{}: {message}", user.login);
                }
            }
            Err(sentence) => eprintln!("{}: {sentence}", user.login),
        }
    }
    Ok(())
}
