//! `dncs-sync run`: one scheduled run — a lock so overlapping runs never sync a user twice,
//! 「ただちに同期する」 requests served first (and looked for again between users), a full pass
//! over every enabled user every `SYNC_INTERVAL` minutes, `SYNC_THREADS` users at once, and a
//! 同期履歴 entry per user. One user's failure never stops another's.

use std::collections::VecDeque;
use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::engine::{Outcome, Pass, PassError, Remote, RemoteError};
use super::google::GoogleRemote;
use crate::config::{Config, Lang};
use crate::cybozu::{Client, Credentials};
use crate::http::{agent, AgentSettings, Gate};
use crate::store::{open_data_folder, Store, Target, User, UserId, SETTING_LAST_SCHEDULED_RUN};

/// The settings key of the last full pass (UNIX seconds).
const LAST_FULL_PASS: &str = "last_full_pass";
/// How long 同期履歴 rows are kept.
const HISTORY_DAYS: i64 = 365;
/// A request claimed by a run that died is claimed again after this long.
const REQUEST_RETAKE_MINUTES: i64 = 30;

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only this login (`--user`).
    pub user: Option<String>,
    /// Print the plans, write nothing (`--dry-run`).
    pub dry_run: bool,
}

/// Why a run could not run at all (a user's failure is not one).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    DataFolder(String),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("the lock file {path} cannot be used: {reason}")]
    Lock { path: String, reason: String },
    #[error("{0}")]
    Http(#[from] crate::http::HttpError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("there is no user with the login name {0:?} (the user must log in to the settings screen once)")]
    NoSuchUser(String),
}

/// One user's result, as the run reports it.
#[derive(Debug, Clone)]
pub struct UserReport {
    pub login: String,
    pub outcome: Result<Outcome, String>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Another run holds the lock: nothing was done.
    pub locked: bool,
    pub users: Vec<UserReport>,
}

/// Progress for a terminal: (users done, users in all, errors so far).
pub type Progress<'a> = &'a (dyn Fn(usize, usize, usize) + Sync);

/// The lock of a run (`data/sync.lock`), held until the file is dropped; `None` while another
/// process holds it. Also taken by `new-key`, which must not replace the key under a running
/// pass that would seal a refreshed token with the old one.
pub fn try_run_lock(data_dir: &std::path::Path) -> Result<Option<File>, RunError> {
    let lock_path = data_dir.join("sync.lock");
    let failed = |e: std::io::Error| RunError::Lock {
        path: lock_path.display().to_string(),
        reason: e.to_string(),
    };
    let lock = File::create(&lock_path).map_err(failed)?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(failed(e)),
    }
}

/// One run.
pub fn run(
    config: &Config,
    options: &RunOptions,
    progress: Progress<'_>,
) -> Result<RunReport, RunError> {
    let store = open_data_folder(&config.data_dir).map_err(RunError::DataFolder)?;
    if options.user.is_none() && !options.dry_run {
        // Before the lock: a run that finds the previous one still going shows the schedule works.
        store.set_setting(
            SETTING_LAST_SCHEDULED_RUN,
            &crate::clock::now().timestamp().to_string(),
        )?;
    }
    let Some(lock) = try_run_lock(&config.data_dir)? else {
        return Ok(RunReport {
            locked: true,
            users: Vec::new(),
        });
    };
    let now = crate::clock::now();
    if !options.dry_run {
        crate::license::enforce(&store, config, now)?;
    }
    let users = store.list_users()?;
    let mut queue: VecDeque<UserId> = VecDeque::new();
    let mut served_requests = Vec::new();
    match &options.user {
        Some(login) => {
            let user = users
                .iter()
                .find(|u| &u.login_name == login)
                .ok_or_else(|| RunError::NoSuchUser(login.clone()))?;
            queue.push_back(user.id);
        }
        None => {
            if !options.dry_run {
                for request in store
                    .take_pending_sync_requests(now, Duration::minutes(REQUEST_RETAKE_MINUTES))?
                {
                    served_requests.push((request.id, request.user_id));
                    if !queue.contains(&request.user_id) {
                        queue.push_back(request.user_id);
                    }
                }
            }
            if options.dry_run || full_pass_due(&store, config, now)? {
                for user in users.iter().filter(|u| eligible(u)) {
                    if !queue.contains(&user.id) {
                        queue.push_back(user.id);
                    }
                }
                if !options.dry_run {
                    store.set_setting(LAST_FULL_PASS, &now.timestamp().to_string())?;
                }
            }
        }
    }
    let agent = agent(&AgentSettings::from_config(config))?;
    let gate = Arc::new(Gate::new(config.cybozu_parallel));
    let shared = Shared {
        queue: Mutex::new(queue),
        requests: Mutex::new(served_requests),
        reports: Mutex::new(Vec::new()),
        total: Mutex::new(0),
    };
    *lock_ignoring_poison(&shared.total) = lock_ignoring_poison(&shared.queue).len();
    let threads = config.sync_threads.max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| worker(config, options, &agent, &gate, &shared, progress));
        }
    });
    if !options.dry_run && options.user.is_none() {
        daily_chores(&store, config, &agent, crate::clock::now());
    }
    drop(lock);
    let mut reports = std::mem::take(&mut *lock_ignoring_poison(&shared.reports));
    reports.sort_by(|a, b| a.login.cmp(&b.login));
    Ok(RunReport {
        locked: false,
        users: reports,
    })
}

struct Shared {
    queue: Mutex<VecDeque<UserId>>,
    /// Claimed requests (id, user) to mark served once their user's pass ends.
    requests: Mutex<Vec<(i64, UserId)>>,
    reports: Mutex<Vec<UserReport>>,
    total: Mutex<usize>,
}

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a user takes part in scheduled passes.
pub fn eligible(user: &User) -> bool {
    user.enabled
        && user.sync_on
        && user.has_cybozu_password
        && match user.target {
            Target::Google => user.google.is_some_and(|g| !g.needs_relink),
            Target::Caldav => user.has_caldav_password && !user.caldav_url.is_empty(),
        }
}

fn full_pass_due(store: &Store, config: &Config, now: DateTime<Utc>) -> Result<bool, RunError> {
    let last = store
        .setting(LAST_FULL_PASS)?
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|t| DateTime::from_timestamp(t, 0));
    Ok(match last {
        Some(last) => now - last >= Duration::minutes(i64::from(config.sync_interval_minutes)),
        None => true,
    })
}

fn worker(
    config: &Config,
    options: &RunOptions,
    agent: &ureq::Agent,
    gate: &Arc<Gate>,
    shared: &Shared,
    progress: Progress<'_>,
) {
    // Each thread its own connection: SQLite connections are not shared between threads.
    let store = match open_data_folder(&config.data_dir) {
        Ok(store) => store,
        Err(e) => {
            log::error!("a sync thread cannot open the data folder: {e}");
            return;
        }
    };
    loop {
        // Between users, look for 「ただちに同期する」 requests that arrived meanwhile.
        if options.user.is_none() && !options.dry_run {
            let now = crate::clock::now();
            if let Ok(requests) =
                store.take_pending_sync_requests(now, Duration::minutes(REQUEST_RETAKE_MINUTES))
            {
                let mut queue = lock_ignoring_poison(&shared.queue);
                for request in requests {
                    lock_ignoring_poison(&shared.requests).push((request.id, request.user_id));
                    if !queue.contains(&request.user_id) {
                        queue.push_front(request.user_id);
                        *lock_ignoring_poison(&shared.total) += 1;
                    }
                }
            }
        }
        let Some(user_id) = lock_ignoring_poison(&shared.queue).pop_front() else {
            return;
        };
        let report = sync_user(&store, config, options, agent, gate, user_id);
        if options.user.is_some() && !options.dry_run {
            // `run --user` (「ただちに同期する」) served whatever that user had asked for.
            let _ = store.serve_sync_requests_of(user_id, crate::clock::now());
        }
        if !options.dry_run {
            let served: Vec<i64> = {
                let mut requests = lock_ignoring_poison(&shared.requests);
                let (mine, rest): (Vec<_>, Vec<_>) =
                    requests.drain(..).partition(|(_, u)| *u == user_id);
                *requests = rest;
                mine.into_iter().map(|(id, _)| id).collect()
            };
            if !served.is_empty() {
                let _ = store.mark_sync_requests_served(&served, crate::clock::now());
            }
        }
        let mut reports = lock_ignoring_poison(&shared.reports);
        reports.push(report);
        let errors = reports.iter().filter(|r| r.outcome.is_err()).count();
        progress(reports.len(), *lock_ignoring_poison(&shared.total), errors);
    }
}

/// One user's pass, recorded in 同期履歴.
fn sync_user(
    store: &Store,
    config: &Config,
    options: &RunOptions,
    agent: &ureq::Agent,
    gate: &Arc<Gate>,
    user_id: UserId,
) -> UserReport {
    recorded_pass(store, options, config.lang, user_id, |user, started| {
        pass_for(store, config, options, agent, gate, user, started)
    })
}

/// Runs `pass` for one user and records it: 同期履歴, the user's last error, the end of the pass.
/// A panic in `pass` is recorded as its failure like any other.
fn recorded_pass(
    store: &Store,
    options: &RunOptions,
    lang: Lang,
    user_id: UserId,
    pass: impl FnOnce(&User, DateTime<Utc>) -> Result<Outcome, PassError>,
) -> UserReport {
    let started = crate::clock::now();
    // A pass that ends before it began leaves no history row: the log is where it is told.
    let not_begun = |login: String, sentence: String| {
        log::error!("the pass of {login} could not begin: {sentence}");
        UserReport {
            login,
            outcome: Err(sentence),
        }
    };
    let user = match store.user_by_id(user_id) {
        Ok(Some(user)) => user,
        Ok(None) => return not_begun(format!("#{user_id}"), "the user no longer exists".into()),
        Err(e) => return not_begun(format!("#{user_id}"), e.to_string()),
    };
    let login = user.login_name.clone();
    if !options.dry_run {
        if let Err(e) = store.begin_pass(user_id, started) {
            return not_begun(login, e.to_string());
        }
    }
    let result = contained(&login, || pass(&user, started));
    let finished = crate::clock::now();
    if options.dry_run {
        return UserReport {
            login,
            outcome: result.map_err(|e| e.sentence(lang)),
        };
    }
    let (counts, messages, error) = match &result {
        Ok(outcome) => (
            outcome.counts,
            outcome.messages.clone(),
            outcome
                .plan
                .blocked
                .clone()
                .or_else(|| outcome.stopped.clone()),
        ),
        Err(e) => (
            Default::default(),
            vec![e.sentence(lang)],
            Some(e.sentence(lang)),
        ),
    };
    let quiet = error.is_none() && messages.is_empty() && counts == Default::default();
    // A pass that changed nothing and had nothing to say leaves no history row; the user list
    // still shows its time.
    if !quiet {
        if let Err(e) = store.append_history(user_id, started, finished, &counts, &messages) {
            log::error!("recording the history of {login}: {e}");
        }
    }
    if let Err(e) = store.finish_pass(user_id, finished, error.as_deref()) {
        log::error!("recording the end of the pass of {login}: {e}");
    }
    UserReport {
        login,
        outcome: result.map_err(|e| e.sentence(lang)),
    }
}

/// `pass`, with a panic in it turned into its error. A bug that odd remote data reaches would
/// otherwise unwind the run's thread scope: the other users skipped, the daily chores not run,
/// the pass never finished in the database, and the same panic again at every run.
fn contained(
    login: &str,
    pass: impl FnOnce() -> Result<Outcome, PassError>,
) -> Result<Outcome, PassError> {
    // Unwind safety: a write the panic interrupts is a transaction, rolled back as it drops;
    // what the pass held in memory is dropped with it; the gate's mutex is read ignoring poison.
    std::panic::catch_unwind(AssertUnwindSafe(pass)).unwrap_or_else(|payload| {
        let detail = crate::panics::message(&*payload).unwrap_or("a panic without a message");
        // The panic hook wrote where it happened to stderr, which a pass started from the page
        // does not keep; the log names the user too.
        log::error!("the pass of {login} panicked: {detail}");
        Err(PassError::Panicked(detail.to_string()))
    })
}

fn pass_for(
    store: &Store,
    config: &Config,
    options: &RunOptions,
    agent: &ureq::Agent,
    gate: &Arc<Gate>,
    user: &User,
    now: DateTime<Utc>,
) -> Result<Outcome, PassError> {
    let cybozu_url = config
        .cybozu_url()
        .map_err(|e| PassError::Remote(RemoteError::Failed(e.to_string())))?;
    let password = store
        .cybozu_password(user.id)?
        .ok_or(crate::cybozu::CybozuError::LoginFailed { code: 0 })?;
    let cybozu = Client::new(
        cybozu_url,
        agent.clone(),
        Credentials {
            login: user.login_name.clone(),
            password,
        },
    )
    .with_gate(gate.clone());
    match user.target {
        Target::Google => {
            let mut remote = GoogleRemote::open(store, config, agent, user.id, now)?;
            let result = one_pass(store, config, options, user, &cybozu, &mut remote, now);
            match result {
                // A 401 on the cached access token: Google dropped it before its time. One
                // refresh tells a dropped token (the pass runs again; every applied change is
                // already in the mapping) from a revoked link (`invalid_grant` marks the user).
                Err(PassError::Remote(RemoteError::NeedsRelink(_)))
                    if remote.used_cached_token() =>
                {
                    let mut remote =
                        GoogleRemote::open_refreshed(store, config, agent, user.id, now)?;
                    one_pass(store, config, options, user, &cybozu, &mut remote, now)
                }
                other => other,
            }
        }
        Target::Caldav => {
            let mut remote = super::caldav::CalDavRemote::open(store, config, agent, user.id, now)?;
            one_pass(store, config, options, user, &cybozu, &mut remote, now)
        }
    }
}

fn one_pass(
    store: &Store,
    config: &Config,
    options: &RunOptions,
    user: &User,
    cybozu: &Client,
    remote: &mut dyn Remote,
    now: DateTime<Utc>,
) -> Result<Outcome, PassError> {
    let mut pass = Pass {
        store,
        config,
        user_id: user.id,
        cybozu,
        remote,
        now,
    };
    if options.dry_run {
        let (plan, _) = pass.read_and_plan()?;
        return Ok(Outcome {
            plan,
            ..Outcome::default()
        });
    }
    pass.run()
}

/// The backup at `BACKUP_TIME`, and pruning of history, old requests and logs; failures are
/// logged, never fatal to the run.
fn daily_chores(store: &Store, config: &Config, agent: &ureq::Agent, now: DateTime<Utc>) {
    match super::backup::due(store, config, now) {
        Ok(true) => match super::backup::write(store, config, agent, now) {
            Ok((files, problems)) => {
                log::info!("backup: {} file(s) written", files.len());
                for problem in problems {
                    log::warn!("backup: {problem}");
                }
            }
            Err(e) => log::error!("backup: {e}"),
        },
        Ok(false) => {}
        Err(e) => log::error!("backup: {e}"),
    }
    // Quiet passes leave no row, so a year of 同期履歴 stays small.
    if let Err(e) = store.prune_history(now - Duration::days(HISTORY_DAYS)) {
        log::warn!("pruning the history: {e}");
    }
    let _ = store.prune_sync_requests(now - Duration::days(7));
    let _ = store
        .prune_oauth_flows(now - Duration::minutes(crate::google::oauth::STATE_LIFETIME_MINUTES));
    crate::logfile::prune(&config.data_dir, now, config.log_months);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    fn store_with_user(login: &str) -> Store {
        let store = Store::open_in_memory(SecretKey::generate().expect("OS RNG")).expect("store");
        store
            .upsert_user(42, login, "", crate::clock::now())
            .expect("user");
        store
    }

    #[test]
    fn a_panic_in_a_pass_is_recorded_as_its_failure_and_clears_the_pass() {
        let store = store_with_user("takahashi");
        let syncing_during_the_pass = std::cell::Cell::new(None);
        let report = recorded_pass(&store, &RunOptions::default(), Lang::Ja, 42, |_, _| {
            let user = store.user_by_id(42).ok().flatten();
            syncing_during_the_pass.set(user.and_then(|u| u.syncing_since));
            let index = 3;
            panic!("index out of bounds: the len is 0 but the index is {index}")
        });
        assert!(syncing_during_the_pass.get().is_some());
        assert_eq!(report.login, "takahashi");
        let sentence = report.outcome.expect_err("the pass failed");
        assert!(sentence.contains("内部エラー"), "{sentence}");
        assert!(
            sentence.contains("the len is 0 but the index is 3"),
            "{sentence}"
        );
        let user = store.user_by_id(42).expect("read").expect("user");
        assert_eq!(user.syncing_since, None);
        assert!(user.last_pass_at.is_some());
        assert_eq!(user.last_error.as_deref(), Some(sentence.as_str()));
        let history = store.history_page(42, 0, 10).expect("history");
        assert_eq!(history.total, 1);
        assert_eq!(history.entries[0].errors, [sentence]);
    }

    #[test]
    fn a_panic_without_a_message_is_still_recorded() {
        let store = store_with_user("sato");
        let report = recorded_pass(&store, &RunOptions::default(), Lang::Ja, 42, |_, _| {
            std::panic::panic_any(7_u8)
        });
        let sentence = report.outcome.expect_err("the pass failed");
        assert!(sentence.contains("a panic without a message"), "{sentence}");
        let user = store.user_by_id(42).expect("read").expect("user");
        assert_eq!(user.syncing_since, None);
        assert_eq!(user.last_error.as_deref(), Some(sentence.as_str()));
    }

    #[test]
    fn the_pass_after_a_panicking_one_runs_and_clears_the_error() {
        let store = store_with_user("takahashi");
        recorded_pass(&store, &RunOptions::default(), Lang::Ja, 42, |_, _| {
            panic!("odd data")
        });
        let report = recorded_pass(&store, &RunOptions::default(), Lang::Ja, 42, |_, _| {
            Ok(Outcome::default())
        });
        assert!(report.outcome.is_ok());
        let user = store.user_by_id(42).expect("read").expect("user");
        assert_eq!(user.last_error, None);
    }
}
