//! The administrator's screens: 管理者ログイン, ライセンス管理, ユーザー設定 (利用ステータス),
//! any user's 同期履歴, and the effective `dncs.ini` with secrets masked.

use std::path::PathBuf;

use minijinja::context;

use super::app::{throttle_window, App, THROTTLE_MAX_FAILURES};
use super::cgi::Response;
use super::user::{history_page, local_time, login_page, LoginKind};
use crate::config::Config;
use crate::license::{self, Seats};
use crate::store::{User, SETTING_ADMIN_PASSWORD_HASH, SETTING_LAST_SCHEDULED_RUN};

/// Cron and the Task Scheduler start `dncs-sync run` every minute: a last start this old means
/// nothing starts it, and neither 「ただちに同期する」 left for later nor any full pass happens.
const SCHEDULE_SILENT_MINUTES: i64 = 10;

/// `?page=admin_login`.
pub fn login(app: &mut App<'_>) -> Response {
    let stored = match app.store.setting(SETTING_ADMIN_PASSWORD_HASH) {
        Ok(stored) => stored,
        Err(e) => return app.store_failure(&e),
    };
    let Some(stored) = stored else {
        // A login form, and a POST of one, could only ever fail: the page says how to set it.
        return no_password_page(app);
    };
    if !app.is_post() {
        if app.is_admin() {
            return Response::redirect(&app.page_url("admin"));
        }
        return login_page(app, 200, LoginKind::Admin, "", "", "");
    }
    if !app.login_csrf_ok() {
        return login_page(app, 403, LoginKind::Admin, "", "", &app.t("csrf.failed"));
    }
    let key = format!(
        "admin:{}",
        app.request.remote_addr.as_deref().unwrap_or("-")
    );
    match app
        .store
        .is_login_throttled(&key, THROTTLE_MAX_FAILURES, throttle_window(), app.now)
    {
        Ok(false) => {}
        Ok(true) => {
            return login_page(
                app,
                429,
                LoginKind::Admin,
                "",
                "",
                &app.t("login.throttled"),
            )
        }
        Err(e) => return app.store_failure(&e),
    }
    let password = app.request.form("password").unwrap_or("");
    if !crate::password::verify(password, &stored) {
        if let Err(e) = app
            .store
            .record_login_failure(&key, app.now, throttle_window())
        {
            return app.store_failure(&e);
        }
        return login_page(app, 401, LoginKind::Admin, "", "", &app.t("admin.failed"));
    }
    let _ = app.store.clear_login_failures(&key);
    let redirect = Response::redirect(&app.page_url("admin"));
    app.start_session(None, true, redirect)
        .unwrap_or_else(|e| app.store_failure(&e))
}

/// The page for anyone who is not the administrator.
fn refuse(app: &App<'_>) -> Response {
    if app.session.is_none() {
        // Before any password is set, the login form that would follow could never work.
        match app.store.setting(SETTING_ADMIN_PASSWORD_HASH) {
            Ok(Some(_)) => {}
            Ok(None) => return no_password_page(app),
            Err(e) => return app.store_failure(&e),
        }
        // An administrator whose session ran out is told so, like a user, not that the page is theirs.
        if app.session_expired {
            return login_page(
                app,
                401,
                LoginKind::Admin,
                "",
                &app.t("session.expired"),
                "",
            );
        }
        return login_page(app, 401, LoginKind::Admin, "", "", &app.t("admin.only"));
    }
    app.message(403, "admin.login_title", &app.t("admin.only"))
}

/// The notice that no administrator password is set yet, with the command that sets it.
fn no_password_page(app: &App<'_>) -> Response {
    app.message_with(
        503,
        "admin.login_title",
        &app.t("admin.no_password"),
        context! { command => admin_password_command(app.config) },
    )
}

/// The command that sets the administrator's password on this server, as install.sh and
/// install.ps1 print it: the `dncs-sync` beside this CGI, on Linux run as the web server's
/// account through `sudo` (what root would create in the data folder, the CGI could not use),
/// on Windows from PowerShell. `DNCS_INI` is added when this CGI reads a `dncs.ini` that
/// `dncs-sync` would not find beside itself.
fn admin_password_command(config: &Config) -> String {
    let program = crate::dev::sibling_program("dncs-sync")
        .unwrap_or_else(|| PathBuf::from(format!("dncs-sync{}", std::env::consts::EXE_SUFFIX)));
    let ini_beside = program
        .parent()
        .is_some_and(|folder| folder.join(crate::config::INI_FILE_NAME) == config.ini_path);
    let ini = config.ini_path.display().to_string();
    let program = program.display().to_string();
    if cfg!(windows) {
        let set_ini = match ini_beside {
            true => String::new(),
            false => format!("$env:DNCS_INI = {}; ", powershell_quoted(&ini)),
        };
        // PowerShell runs a quoted path only after its call operator.
        format!("{set_ini}& {} admin-password", powershell_quoted(&program))
    } else {
        let mut command = match crate::store::web_server_account(&config.data_dir) {
            Some(account) => format!("sudo -u {} ", shell_quoted(&account)),
            None => String::new(),
        };
        if !ini_beside {
            // sudo refuses VAR=value for a variable its policy does not keep; env sets it after.
            command.push_str(&format!("env DNCS_INI={} ", shell_quoted(&ini)));
        }
        command.push_str(&shell_quoted(&program));
        command.push_str(" admin-password");
        command
    }
}

/// `text` as one word of a POSIX shell: as it is when nothing in it is special, else quoted.
fn shell_quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    match plain {
        true => text.to_string(),
        false => format!("'{}'", text.replace('\'', "'\\''")),
    }
}

/// `text` as a single-quoted PowerShell string, in which only `'` is special (written twice).
fn powershell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `?page=admin`: ライセンス管理.
pub fn license_page(app: &mut App<'_>) -> Response {
    if !app.is_admin() {
        return refuse(app);
    }
    let downgraded = match license::enforce(&app.store, app.config, app.now) {
        Ok(downgraded) => downgraded,
        Err(e) => return app.store_failure(&e),
    };
    let seats = match Seats::count(&app.store, app.config) {
        Ok(seats) => seats,
        Err(e) => return app.store_failure(&e),
    };
    let seats_max = seats
        .max
        .map(|m| m.to_string())
        .unwrap_or_else(|| app.t("license.unlimited"));
    let last_run = match app.store.setting(SETTING_LAST_SCHEDULED_RUN) {
        Ok(value) => value
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
        Err(e) => return app.store_failure(&e),
    };
    let schedule_silent =
        last_run.is_none_or(|t| app.now - t > chrono::Duration::minutes(SCHEDULE_SILENT_MINUTES));
    let mut problems = Vec::new();
    if downgraded {
        problems.push(app.t("license.over"));
    }
    if schedule_silent {
        problems.push(app.t("license.schedule_silent"));
    }
    app.render(
        200,
        "admin_license.html",
        &app.t("license.title"),
        context! {
            seats_used => seats.used,
            seats_max,
            last_run => last_run.map(|t| local_time(app, t)),
            error => problems.join(" "),
        },
    )
}

/// `?page=admin_users`: every known user and their 利用ステータス, with bulk enable/disable.
pub fn users(app: &mut App<'_>) -> Response {
    if !app.is_admin() {
        return refuse(app);
    }
    let mut notice = String::new();
    let mut error = String::new();
    let mut status = 200;
    if app.is_post() {
        if !app.csrf_ok() {
            // Refused like every other form without its token, not as a bad choice of users.
            (status, error) = (403, app.t("csrf.failed"));
        } else {
            match change_status(app) {
                Ok(StatusChange::Changed) => notice = app.t("users.updated"),
                Ok(StatusChange::Unchanged) => notice = app.t("users.unchanged"),
                Ok(StatusChange::NoneChosen) => {
                    (status, error) = (400, app.t("users.none_selected"))
                }
                Ok(StatusChange::NoAction) => (status, error) = (400, app.t("users.bad_action")),
                Ok(StatusChange::OverLicense) => {
                    (status, error) = (400, app.t("users.over_license"))
                }
                Err(e) => return app.store_failure(&e),
            }
        }
    }
    let list = match app.store.list_users() {
        Ok(list) => list,
        Err(e) => return app.store_failure(&e),
    };
    let rows: Vec<_> = list.iter().map(|u| user_row(app, u)).collect();
    app.render(
        status,
        "admin_users.html",
        &app.t("users.title"),
        context! { users => rows, notice, error },
    )
}

/// What the bulk action of ユーザー設定 did.
enum StatusChange {
    Changed,
    /// Every chosen user had the status already.
    Unchanged,
    /// No known user was ticked: nothing changed.
    NoneChosen,
    /// The POST named neither button: nothing changed, rather than guessing which was meant.
    NoAction,
    /// Enabling would exceed the license: nothing changed.
    OverLicense,
}

/// Applies the bulk action of ユーザー設定.
fn change_status(app: &App<'_>) -> Result<StatusChange, crate::store::StoreError> {
    let enable = match app.request.form("action") {
        Some("enable") => true,
        Some("disable") => false,
        _ => return Ok(StatusChange::NoAction),
    };
    let users = app.store.list_users()?;
    let chosen: Vec<&User> = users
        .iter()
        .filter(|u| app.request.form(&format!("user_{}", u.id)) == Some("1"))
        .collect();
    if chosen.is_empty() {
        return Ok(StatusChange::NoneChosen);
    }
    // Disabling also stops (DESIGN §8): a disabled user still syncing is changed too.
    let changing: Vec<&User> = chosen
        .into_iter()
        .filter(|u| u.enabled != enable || (!enable && u.sync_on))
        .collect();
    if changing.is_empty() {
        return Ok(StatusChange::Unchanged);
    }
    if enable && !Seats::count(&app.store, app.config)?.room_for(changing.len()) {
        return Ok(StatusChange::OverLicense);
    }
    for user in changing {
        app.store.set_enabled(user.id, enable, app.now)?;
        if !enable {
            // A disabled user must not go on syncing (DESIGN §8: 無効 and 停止).
            app.store.set_sync_on(user.id, false, app.now)?;
        }
    }
    Ok(StatusChange::Changed)
}

fn user_row(app: &App<'_>, user: &User) -> minijinja::Value {
    let link = match (&user.target, &user.google) {
        (crate::store::Target::Caldav, _) if user.has_caldav_password => user.caldav_url.clone(),
        (crate::store::Target::Caldav, _) => String::new(),
        (_, None) => app.t("google.none"),
        (_, Some(link)) if link.asks_for_relink() => app.t("google.relink"),
        (_, Some(_)) => app.t("google.linked"),
    };
    let target_key = match user.target {
        crate::store::Target::Google => "target.google",
        crate::store::Target::Caldav => "target.caldav",
    };
    context! {
        id => user.id,
        login => user.login_name.clone(),
        name => user.display_name.clone(),
        status => app.t(if user.enabled { "users.enabled" } else { "users.disabled" }),
        target => app.t(target_key),
        link,
        last_pass => user.last_pass_at.map(|t| local_time(app, t)).unwrap_or_default(),
        last_error => user.last_error.clone().unwrap_or_default(),
    }
}

/// `?page=admin_history&user=ID`: any user's 同期履歴.
pub fn history(app: &mut App<'_>) -> Response {
    if !app.is_admin() {
        return refuse(app);
    }
    // The links of ユーザー設定 carry the id; anything else was typed or kept from elsewhere,
    // and is answered as the other pages answer a bad parameter (400) or a missing thing (404).
    let Some(id) = app
        .request
        .query("user")
        .and_then(|id| id.parse::<i64>().ok())
    else {
        return back_to_users(app, 400, app.t("users.bad_id"));
    };
    match app.store.user_by_id(id) {
        Ok(Some(user)) => {
            let name = if user.display_name.is_empty() {
                user.login_name.clone()
            } else {
                user.display_name.clone()
            };
            let heading = app.t("history.of").replace("{name}", &name);
            history_page(app, &user, heading, "admin_history")
        }
        Ok(None) => back_to_users(
            app,
            404,
            app.t("users.not_found").replace("{id}", &id.to_string()),
        ),
        Err(e) => app.store_failure(&e),
    }
}

/// A 同期履歴 that cannot be shown, with the way back to the list it is chosen from.
fn back_to_users(app: &App<'_>, status: u16, text: String) -> Response {
    app.message_with(
        status,
        "history.title",
        &text,
        context! {
            back_url => app.page_url("admin_users"),
            back_label => app.t("nav.admin_users"),
        },
    )
}

/// `?page=admin_ini`: the effective configuration, secrets masked.
pub fn ini(app: &mut App<'_>) -> Response {
    if !app.is_admin() {
        return refuse(app);
    }
    let entries: Vec<(String, String)> = app
        .config
        .effective_entries()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    app.render(
        200,
        "admin_ini.html",
        &app.t("ini.title"),
        context! { entries, ini_path => app.config.ini_path.display().to_string() },
    )
}
