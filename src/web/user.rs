//! The user's screens: ログイン with the Cybozu login, 同期設定, ただちに同期する, 同期履歴, ログアウト.

use chrono::{DateTime, Utc};
use minijinja::context;

use super::app::{throttle_window, App, LOGIN_CSRF_COOKIE, PAGE_RETRY, THROTTLE_MAX_FAILURES};
use super::cgi::{Cookie, Response};
use crate::config::Lang;
use crate::cybozu::{Client, Credentials, CybozuError};
use crate::store::{HistoryEntry, StoreError, Target, User};

/// Entries per page of 同期履歴.
pub const HISTORY_PER_PAGE: u32 = 20;

/// `?page=login`, and the front page of a visitor without a session.
pub fn login(app: &mut App<'_>) -> Response {
    if app.is_post() {
        return login_submit(app);
    }
    if app.user_id().is_some() {
        return Response::redirect(&app.page_url("settings"));
    }
    let notice = if app.session_expired {
        app.t("session.expired")
    } else {
        String::new()
    };
    login_form(app, 200, "", &notice, "")
}

/// Shows a login form (users and, through `admin`, the administrator) with a fresh
/// double-submit token in a cookie.
pub fn login_form(app: &App<'_>, status: u16, login: &str, notice: &str, error: &str) -> Response {
    login_page(app, status, LoginKind::User, login, notice, error)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    User,
    Admin,
}

pub fn login_page(
    app: &App<'_>,
    status: u16,
    kind: LoginKind,
    login: &str,
    notice: &str,
    error: &str,
) -> Response {
    let token = match crate::secret::random_token(24) {
        Ok(token) => token,
        Err(e) => return app.store_failure(&StoreError::Random(e)),
    };
    let (title_key, action, password_key, intro, other_link, other_label) = match kind {
        LoginKind::User => (
            "login.title",
            "login",
            "login.password",
            app.t("login.intro"),
            "admin_login",
            "login.admin_link",
        ),
        LoginKind::Admin => (
            "admin.login_title",
            "admin_login",
            "admin.password",
            String::new(),
            "login",
            "login.title",
        ),
    };
    app.render(
        status,
        "login.html",
        &app.t(title_key),
        context! {
            action, password_key, intro, other_link, other_label,
            ask_login => kind == LoginKind::User,
            login_csrf => token.clone(),
            login => login,
            notice => notice,
            error => error,
        },
    )
    .with_cookie(Cookie::new(LOGIN_CSRF_COOKIE, &token, app.request))
}

fn login_submit(app: &mut App<'_>) -> Response {
    let login = app.request.form("login").unwrap_or("").trim().to_string();
    let password = app.request.form("password").unwrap_or("").to_string();
    if !app.login_csrf_ok() {
        return login_form(app, 403, &login, "", &app.t("csrf.failed"));
    }
    if login.is_empty() || password.is_empty() {
        return login_form(app, 400, &login, "", &app.t("login.failed"));
    }
    let login_key = format!("login:{login}");
    let address_key = format!("addr:{}", app.request.remote_addr.as_deref().unwrap_or("-"));
    for key in [&login_key, &address_key] {
        match app
            .store
            .is_login_throttled(key, THROTTLE_MAX_FAILURES, throttle_window(), app.now)
        {
            Ok(false) => {}
            Ok(true) => return login_form(app, 429, &login, "", &app.t("login.throttled")),
            Err(e) => return app.store_failure(&e),
        }
    }
    let client = match cybozu_client(app, &login, &password) {
        Ok(client) => client,
        Err(message) => return login_form(app, 500, &login, "", &message),
    };
    let user_id = match client.login_user_id() {
        Ok(id) => id,
        Err(CybozuError::LoginFailed { .. }) => {
            for key in [&login_key, &address_key] {
                if let Err(e) = app
                    .store
                    .record_login_failure(key, app.now, throttle_window())
                {
                    return app.store_failure(&e);
                }
            }
            return login_form(app, 401, &login, "", &app.t("login.failed"));
        }
        Err(e) => {
            log::warn!("login of {login}: {e}");
            return login_form(app, 502, &login, "", &app.t("login.unreachable"));
        }
    };
    let Ok(user_id) = i64::try_from(user_id) else {
        return login_form(app, 502, &login, "", &app.t("login.unreachable"));
    };
    // The display name is a courtesy: a directory failure must not block the login.
    let display_name = client
        .users_by_login_name(&[login.as_str()])
        .ok()
        .and_then(|users| users.into_iter().next())
        .map(|u| u.name)
        .unwrap_or_default();
    match remember_user(app, user_id, &login, &display_name, &password) {
        Ok(()) => {}
        Err(e) => return app.store_failure(&e),
    }
    let _ = app.store.clear_login_failures(&login_key);
    let redirect = Response::redirect(&app.page_url("settings"));
    app.start_session(Some(user_id), false, redirect)
        .unwrap_or_else(|e| app.store_failure(&e))
}

/// Records the user and the password the sync will use; a first-time user is enabled while
/// licensed seats remain (the administrator can disable them later) and gets any link imported
/// from the earlier installation.
fn remember_user(
    app: &App<'_>,
    user_id: i64,
    login: &str,
    display_name: &str,
    password: &str,
) -> Result<(), StoreError> {
    let is_new = app.store.user_by_id(user_id)?.is_none();
    app.store
        .upsert_user(user_id, login, display_name, app.now)?;
    app.store.set_cybozu_password(user_id, password, app.now)?;
    if is_new && crate::license::seat_available(&app.store, app.config)? {
        app.store.set_enabled(user_id, true, app.now)?;
    }
    // A link imported from the earlier installation waited for this first login.
    if let Some(link) = app.store.take_legacy_link(login)? {
        crate::legacy::apply(&app.store, app.config, user_id, &link, app.now)?;
    }
    Ok(())
}

fn cybozu_client(app: &App<'_>, login: &str, password: &str) -> Result<Client, String> {
    let url = app.config.cybozu_url().map_err(|e| e.to_string())?;
    let agent = app.outbound_agent().map_err(|e| e.to_string())?;
    Ok(Client::new(
        url,
        agent,
        Credentials {
            login: login.into(),
            password: password.into(),
        },
    )
    .with_retry(PAGE_RETRY))
}

/// `?page=logout` (POST).
pub fn logout(app: &mut App<'_>) -> Response {
    if app.session.is_none() {
        // Already logged out (another tab did it, or the session ran out): nothing to end.
        return Response::redirect(&app.request.script_name);
    }
    if !app.is_post() || !app.csrf_ok() {
        return app.message(403, "nav.logout", &app.t("csrf.failed"));
    }
    let redirect = Response::redirect(&app.request.script_name);
    app.end_session(redirect)
        .unwrap_or_else(|e| app.store_failure(&e))
}

/// The page for a visitor without a user session who opens a user's page: the administrator is
/// told the screen is a user's; anyone else gets the login form, saying why only when their
/// session did run out.
pub(super) fn not_a_user(app: &App<'_>) -> Response {
    if app.is_admin() {
        return app.message(403, "nav.settings", &app.t("user.only"));
    }
    let notice = if app.session_expired {
        app.t("session.expired")
    } else {
        String::new()
    };
    login_form(app, 401, "", &notice, "")
}

/// The logged-in user, or the page that sends a visitor to log in.
fn current_user(app: &mut App<'_>) -> Result<User, Response> {
    let Some(user_id) = app.user_id() else {
        return Err(not_a_user(app));
    };
    match app.store.user_by_id(user_id) {
        Ok(Some(user)) => {
            app.remember_user(&user);
            Ok(user)
        }
        Ok(None) => Err(login_form(app, 401, "", "", "")),
        Err(e) => Err(app.store_failure(&e)),
    }
}

/// `?page=settings`: 同期設定, and saving it.
pub fn settings(app: &mut App<'_>) -> Response {
    let user = match current_user(app) {
        Ok(user) => user,
        Err(page) => return page,
    };
    if app.is_post() {
        if !app.csrf_ok() {
            return settings_page(app, &user, 403, "", &app.t("csrf.failed"));
        }
        return save_settings(app, user);
    }
    let notice = match app.request.query("done") {
        Some("saved") => app.t("settings.saved"),
        Some("dropped") => format!(
            "{} {}",
            app.t("settings.saved"),
            app.t("settings.sync_info_dropped")
        ),
        Some("started") => app.t("settings.sync_started"),
        Some("queued") => app.t("settings.sync_queued"),
        Some("linked") => app.t("google.linked_now"),
        _ => String::new(),
    };
    let calendar = app.request.query("calendar").filter(|name| {
        !name.is_empty() && app.session_tag_ok(name, app.request.query("tag").unwrap_or(""))
    });
    let notice = match calendar {
        Some(name) => format!(
            "{notice} {}",
            app.t("caldav.connected").replace("{name}", name)
        ),
        None => notice,
    };
    settings_page(app, &user, 200, &notice, "")
}

fn save_settings(app: &mut App<'_>, user: User) -> Response {
    match apply_settings_form(app, user) {
        Ok(saved) => {
            let done = if saved.dropped { "dropped" } else { "saved" };
            let mut url = format!("{}&done={done}", app.page_url("settings"));
            if let Some((name, tag)) = saved
                .calendar_name
                .and_then(|name| app.session_tag(&name).map(|tag| (name, tag)))
            {
                url.push_str(&format!("&calendar={}&tag={tag}", percent_encode(&name)));
            }
            Response::redirect(&url)
        }
        Err(page) => page,
    }
}

/// The longest カレンダーID, CalDAV URL or user name the form takes; real ones are far shorter,
/// and the value travels to the calendar and into every pass.
const MAX_FIELD_CHARS: usize = 2048;

/// What saving 同期設定 did.
struct Saved {
    /// The target or the calendar changed, so the sync information was dropped.
    dropped: bool,
    /// The name of the CalDAV calendar the form's account reaches, when one was checked.
    calendar_name: Option<String>,
}

/// 認証 sits inside the 同期設定 form: before the browser leaves for Google, what the user chose
/// on the page (同期対象, 同期状態, カレンダーID) is saved as 保存 would save it, so that coming
/// back linked does not find those choices undone. A POST without the form's fields (not from
/// the page) saves nothing. `Err` is the page to show instead of going to Google.
pub(super) fn save_before_linking(app: &mut App<'_>) -> Result<(), Response> {
    if app.request.form("target").is_none() {
        return Ok(());
    }
    let user = current_user(app)?;
    apply_settings_form(app, user).map(|_| ())
}

/// Checks and stores the 同期設定 form; `Err` is the settings page with what is wrong and the
/// typed values kept, so that nothing has to be typed again.
fn apply_settings_form(app: &mut App<'_>, user: User) -> Result<Saved, Response> {
    let form = |name: &str| app.request.form(name).unwrap_or("").trim().to_string();
    let target = match form("target").as_str() {
        "caldav" => Target::Caldav,
        _ => Target::Google,
    };
    let wants_sync = form("sync_on") == "on";
    let calendar_id = form("calendar_id");
    // A scheme is case-blind (RFC 3986), but servers and the client compare it as written.
    let caldav_url = match form("caldav_url").split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
        None => form("caldav_url"),
    };
    let caldav_user = form("caldav_user");
    let caldav_password = app.request.form("caldav_password").unwrap_or("");
    // The form as typed (the password aside, which is never shown), for the page of an error.
    let mut typed = user.clone();
    typed.target = target;
    typed.sync_on = wants_sync && user.enabled;
    typed.calendar_id = calendar_id.clone();
    typed.caldav_url = caldav_url.clone();
    typed.caldav_user = caldav_user.clone();
    let refuse = |status: u16, message: &str| settings_page(app, &typed, status, "", message);
    if wants_sync && !user.enabled {
        return Err(refuse(403, &app.t("settings.not_permitted")));
    }
    if [&calendar_id, &caldav_url, &caldav_user]
        .iter()
        .any(|field| field.chars().count() > MAX_FIELD_CHARS)
    {
        return Err(refuse(400, &app.t("settings.too_long")));
    }
    let is_web_url = caldav_url.starts_with("http://") || caldav_url.starts_with("https://");
    if !caldav_url.is_empty() && !is_web_url {
        return Err(refuse(400, &app.t("settings.bad_url")));
    }
    if target == Target::Caldav && wants_sync && caldav_url.is_empty() {
        return Err(refuse(400, &app.t("settings.caldav_url_missing")));
    }
    // The stored password goes only to the server it was typed for: another host, or plain
    // http where it was https, must be given the password again.
    let same_server = crate::caldav::origin_of(&user.caldav_url)
        .eq_ignore_ascii_case(&crate::caldav::origin_of(&caldav_url));
    if !caldav_url.is_empty()
        && caldav_password.is_empty()
        && user.has_caldav_password
        && !same_server
    {
        return Err(refuse(400, &app.t("settings.caldav_password_again")));
    }
    // A CalDAV calendar is checked before it is saved: the URL, the user and the password must
    // reach a calendar, whose name the page then shows.
    let mut calendar_name = None;
    if target == Target::Caldav && !caldav_url.is_empty() {
        let stored = match app.store.caldav_password(user.id) {
            Ok(stored) => stored,
            Err(e) => return Err(app.store_failure(&e)),
        };
        let password = if caldav_password.is_empty() {
            stored.unwrap_or_default()
        } else {
            caldav_password.to_string()
        };
        match check_caldav(app, &caldav_url, &caldav_user, &password) {
            Ok(name) => calendar_name = Some(name),
            Err(message) => return Err(refuse(400, &message)),
        }
    }
    let id = user.id;
    let saved = (|| -> Result<bool, StoreError> {
        let mut dropped = app
            .store
            .set_target_and_calendar(id, target, &calendar_id, app.now)?;
        let password = (!caldav_password.is_empty()).then_some(caldav_password);
        dropped |=
            app.store
                .set_caldav_account(id, &caldav_url, &caldav_user, password, app.now)?;
        // 停止 is always allowed; a disabled user keeps 停止 whatever the form says.
        app.store
            .set_sync_on(id, wants_sync && user.enabled, app.now)?;
        Ok(dropped)
    })();
    match saved {
        Ok(dropped) => Ok(Saved {
            dropped,
            calendar_name,
        }),
        Err(e) => Err(app.store_failure(&e)),
    }
}

/// The display name of the CalDAV calendar these credentials reach, or what went wrong in words.
fn check_caldav(app: &App<'_>, url: &str, user: &str, password: &str) -> Result<String, String> {
    use crate::caldav::{Account, CalDavError, Client};
    let agent = app.outbound_agent().map_err(|e| e.to_string())?;
    let client = Client::new(
        agent,
        Account {
            base_url: url.to_string(),
            username: user.to_string(),
            password: password.to_string(),
        },
    )
    .with_retry(PAGE_RETRY);
    match client.find_calendar(url) {
        Ok(found) => Ok(found.display_name.unwrap_or(found.url)),
        Err(CalDavError::Unauthorized) => Err(app.t("caldav.unauthorized")),
        Err(CalDavError::NoCalendar | CalDavError::NotFound { .. }) => {
            Err(app.t("caldav.no_calendar"))
        }
        Err(e) => Err(format!("{} ({e})", app.t("caldav.unreachable"))),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn settings_page(app: &App<'_>, user: &User, status: u16, notice: &str, error: &str) -> Response {
    let pending = app.store.has_pending_sync_request(user.id).unwrap_or(false);
    let (state_key, state_class) = state_of(user, pending);
    let google_state = match &user.google {
        None => app.t("google.none"),
        Some(link) if link.asks_for_relink() => app.t("google.relink"),
        Some(_) => app.t("google.linked"),
    };
    app.render(
        status,
        "settings.html",
        &app.t("settings.title"),
        context! {
            state => app.t(state_key),
            paused => paused_because(user, super::google_link::is_configured(app))
                .map(|key| app.t(key)),
            state_class,
            last_pass => user.last_pass_at.map(|t| local_time(app, t)),
            last_error => user.last_error.clone(),
            can_sync => user.enabled && user.sync_on,
            target => user.target.as_str(),
            enabled => user.enabled,
            sync_on => user.sync_on,
            calendar_id => user.calendar_id.clone(),
            google_state,
            caldav_url => user.caldav_url.clone(),
            caldav_user => user.caldav_user.clone(),
            caldav_password_stored => user.has_caldav_password,
            notice, error,
        },
    )
}

/// Why a user whose 状態 is 同期中 is skipped by the schedule all the same (the i18n key), so
/// that the page does not promise a sync that cannot happen.
fn paused_because(user: &User, google_configured: bool) -> Option<&'static str> {
    if !(user.enabled && user.sync_on) || crate::sync::run::eligible(user) {
        return None;
    }
    Some(if !user.has_cybozu_password {
        "settings.paused_cybozu"
    } else {
        match (&user.target, &user.google) {
            // 認証 could not work either: the administrator has to act first.
            (Target::Google, None) if !google_configured => "settings.paused_google_not_configured",
            (Target::Google, None) => "settings.paused_google_unlinked",
            (Target::Google, Some(_)) => "settings.paused_google_relink",
            (Target::Caldav, _) => "settings.paused_caldav",
        }
    })
}

/// 状態 as the screen names it (DESIGN §8).
pub fn state_of(user: &User, pending_request: bool) -> (&'static str, &'static str) {
    if !user.enabled {
        ("state.disabled", "disabled")
    } else if !user.sync_on {
        ("state.stopped", "off")
    } else if user.syncing_since.is_some() || pending_request {
        ("state.running_now", "on")
    } else {
        ("state.running", "on")
    }
}

/// `?page=sync_now` (POST): records the request, then tries to start the pass at once.
pub fn sync_now(app: &mut App<'_>) -> Response {
    let user = match current_user(app) {
        Ok(user) => user,
        Err(page) => return page,
    };
    if !app.is_post() || !app.csrf_ok() {
        return settings_page(app, &user, 403, "", &app.t("csrf.failed"));
    }
    if !(user.enabled && user.sync_on) {
        return settings_page(app, &user, 409, "", &app.t("settings.not_permitted"));
    }
    if let Err(e) = app.store.enqueue_sync_request(user.id, app.now) {
        return app.store_failure(&e);
    }
    let done = match super::detach::start_sync_for(&user.login_name) {
        Ok(()) => "started",
        Err(e) => {
            log::warn!(
                "could not start dncs-sync for {}: {e}; the next scheduled run serves it",
                user.login_name
            );
            "queued"
        }
    };
    Response::redirect(&format!("{}&done={done}", app.page_url("settings")))
}

/// `?page=history`: the user's 同期履歴, newest first.
pub fn history(app: &mut App<'_>) -> Response {
    let user = match current_user(app) {
        Ok(user) => user,
        Err(page) => return page,
    };
    let heading = app.t("history.title");
    history_page(app, &user, heading, "history")
}

/// A page of a user's history; shared with the administrator's view of any user.
pub fn history_page(app: &App<'_>, user: &User, heading: String, page_name: &str) -> Response {
    let mut page: u32 = app
        .request
        .query("p")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
        .min(100_000);
    let mut result = match app.store.history_page(user.id, page, HISTORY_PER_PAGE) {
        Ok(result) => result,
        Err(e) => return app.store_failure(&e),
    };
    // A page past the last one is reached by a link or bookmark made while there were more
    // entries (the scheduled run prunes the oldest) or by an edited URL: whoever asks for it
    // wants the oldest entries, and the last page holds them. It is shown, with its own pager,
    // rather than a "no history yet" that is not true, or a message to click past.
    if result.entries.is_empty() && result.total > 0 {
        let last_page = (result.total - 1) / u64::from(HISTORY_PER_PAGE);
        page = u32::try_from(last_page).unwrap_or(0).min(page);
        result = match app.store.history_page(user.id, page, HISTORY_PER_PAGE) {
            Ok(result) => result,
            Err(e) => return app.store_failure(&e),
        };
    }
    let base = if page_name == "history" {
        app.page_url("history")
    } else {
        format!("{}&user={}", app.page_url(page_name), user.id)
    };
    let shown = u64::from(page + 1) * u64::from(HISTORY_PER_PAGE);
    let older_url = (result.total > shown).then(|| format!("{base}&p={}", page + 1));
    let newer_url = (page > 0).then(|| format!("{base}&p={}", page - 1));
    let entries: Vec<_> = result.entries.iter().map(|e| history_row(app, e)).collect();
    app.render(
        200,
        "history.html",
        &heading,
        context! { entries, older_url, newer_url },
    )
}

fn history_row(app: &App<'_>, entry: &HistoryEntry) -> minijinja::Value {
    let c = &entry.counts;
    let counts = |created: u32, updated: u32, deleted: u32| {
        app.t("history.counts")
            .replace("{created}", &created.to_string())
            .replace("{updated}", &updated.to_string())
            .replace("{deleted}", &deleted.to_string())
    };
    context! {
        time => local_time(app, entry.started_at),
        to_remote => counts(c.remote_created, c.remote_updated, c.remote_deleted),
        to_cybozu => counts(c.cybozu_created, c.cybozu_updated, c.cybozu_deleted),
        adopted => c.adopted,
        conflicts => c.conflicts,
        errors => entry.errors.clone(),
    }
}

/// A time as the office reads it, in `TIMEZONE`.
pub fn local_time(app: &App<'_>, time: DateTime<Utc>) -> String {
    let local = time.with_timezone(&app.config.timezone);
    match app.lang() {
        Lang::Ja => local.format("%Y/%m/%d %H:%M").to_string(),
        Lang::En => local.format("%Y-%m-%d %H:%M").to_string(),
    }
}
