//! The administrator's screens: 管理者ログイン, ライセンス管理, ユーザー設定 (利用ステータス),
//! any user's 同期履歴, and the effective `dncs.ini` with secrets masked.

use minijinja::context;

use super::app::{throttle_window, App, THROTTLE_MAX_FAILURES};
use super::cgi::Response;
use super::user::{history_page, local_time, login_page, LoginKind};
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
        return app.message(503, "admin.login_title", &app.t("admin.no_password"));
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
                Ok(true) => notice = app.t("users.updated"),
                Ok(false) => (status, error) = (400, app.t("users.over_license")),
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
        context! { users => rows, notice, error },
    )
}

/// Applies the bulk action; false when enabling would exceed the license (nothing changed).
fn change_status(app: &App<'_>) -> Result<bool, crate::store::StoreError> {
    let enable = app.request.form("action") == Some("enable");
    let users = app.store.list_users()?;
    let chosen: Vec<&User> = users
        .iter()
        .filter(|u| app.request.form(&format!("user_{}", u.id)) == Some("1"))
        .collect();
    if enable {
        let newly = chosen.iter().filter(|u| !u.enabled).count();
        if !Seats::count(&app.store, app.config)?.room_for(newly) {
            return Ok(false);
        }
    }
    for user in chosen {
        app.store.set_enabled(user.id, enable, app.now)?;
        if !enable {
            // A disabled user must not go on syncing (DESIGN §8: 無効 and 停止).
            app.store.set_sync_on(user.id, false, app.now)?;
        }
    }
    Ok(true)
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
    let user = app
        .request
        .query("user")
        .and_then(|id| id.parse::<i64>().ok())
        .map(|id| app.store.user_by_id(id));
    match user {
        Some(Ok(Some(user))) => {
            let name = if user.display_name.is_empty() {
                user.login_name.clone()
            } else {
                user.display_name.clone()
            };
            let heading = app.t("history.of").replace("{name}", &name);
            history_page(app, &user, heading, "admin_history")
        }
        Some(Err(e)) => app.store_failure(&e),
        _ => app.message(404, "history.title", &app.t("users.none")),
    }
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
        context! { entries, ini_path => app.config.ini_path.display().to_string() },
    )
}
