//! One request's context: the configuration, the database, the clock, the session and its CSRF
//! token, and rendering of the templates in `html/` with the shared layout.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use minijinja::{context, AutoEscape, Environment, Value};

use super::cgi::{Cookie, Method, Request, Response};
use super::error_page::error_page;
use super::i18n;
use crate::config::{Config, Lang};
use crate::http::{agent, AgentSettings, HttpError, RetryPolicy};
use crate::store::{Session, Store, User, UserId};

/// The session cookie; its value is a random token the database keeps only as a hash.
pub const SESSION_COOKIE: &str = "dncs_session";
/// The double-submit token of the login forms, which come before any session.
pub const LOGIN_CSRF_COOKIE: &str = "dncs_login";
/// A session idle this long is over.
pub const SESSION_IDLE_MINUTES: i64 = 60;
/// A session's last-seen time is refreshed at most this often.
const TOUCH_INTERVAL_SECONDS: i64 = 60;
/// Failed logins allowed per login name and per client address in [`THROTTLE_WINDOW_MINUTES`].
pub const THROTTLE_MAX_FAILURES: u32 = 5;
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;
/// A page that waits on another server (the login, the CalDAV check, the Google callback) must
/// answer before the web server gives up on the CGI (Apache's `Timeout` is 60 s by default), so
/// that the user reads why instead of a gateway error: each call is cut at these limits, whatever
/// `HTTP_TIMEOUT` allows the scheduled run, and tried at most twice.
pub const PAGE_CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(10);
pub const PAGE_CALL_TIMEOUT: StdDuration = StdDuration::from_secs(15);
pub const PAGE_RETRY: RetryPolicy = RetryPolicy {
    attempts: 2,
    base_delay: StdDuration::from_millis(250),
    max_delay: StdDuration::from_secs(1),
};

/// The templates of `html/` with their words written in by `build.rs`, by language, compiled into
/// the program: a CGI start reads no template file and localizes nothing.
mod localized {
    include!(concat!(env!("OUT_DIR"), "/localized_templates.rs"));
}

fn localized_templates(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Ja => localized::JA,
        Lang::En => localized::EN,
    }
}

/// The template every page is rendered in (`{% include page %}`).
const LAYOUT: &str = "layout.html";

/// The templates as written, which the tests compare with what `build.rs` made of them.
#[cfg(test)]
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../html/layout.html")),
    ("login.html", include_str!("../../html/login.html")),
    ("settings.html", include_str!("../../html/settings.html")),
    ("history.html", include_str!("../../html/history.html")),
    ("message.html", include_str!("../../html/message.html")),
    (
        "admin_license.html",
        include_str!("../../html/admin_license.html"),
    ),
    (
        "admin_users.html",
        include_str!("../../html/admin_users.html"),
    ),
    ("admin_ini.html", include_str!("../../html/admin_ini.html")),
];

pub const STYLESHEET: &str = include_str!("../../html/static/dncs.css");

/// A logged-in (or anonymous) session with the cookie token that names it.
pub struct ActiveSession {
    pub token: String,
    pub session: Session,
}

/// Everything a handler needs.
pub struct App<'r> {
    pub config: &'r Config,
    pub request: &'r Request,
    pub store: Store,
    pub now: DateTime<Utc>,
    pub session: Option<ActiveSession>,
    /// Set when a session cookie was sent but has expired: the login page says so.
    pub session_expired: bool,
    /// The name the layout shows for the logged-in user, once a handler has read the user: the
    /// page then does not read the same row twice (a query costs a CGI start measurably).
    shown_name: Option<String>,
}

impl<'r> App<'r> {
    /// Opens the data folder and finds the session; a failure is a page naming the problem.
    pub fn open(config: &'r Config, request: &'r Request) -> Result<Self, Response> {
        let lang = config.lang;
        let data_failure = |what: String| {
            error_page(
                500,
                match lang {
                    Lang::Ja => "データフォルダーを開けません",
                    Lang::En => "The data folder cannot be opened",
                },
                &what,
                lang,
            )
        };
        let store = crate::store::open_data_folder(&config.data_dir).map_err(data_failure)?;
        if let Err(e) = store.keep_wal_on_close() {
            // Only speed depends on it: the files are then removed on close as usual.
            log::warn!("{e}");
        }
        let now = crate::clock::now();
        let mut app = Self {
            config,
            request,
            store,
            now,
            session: None,
            session_expired: false,
            shown_name: None,
        };
        if let Some(token) = request.cookie(SESSION_COOKIE).filter(|t| !t.is_empty()) {
            match app.store.active_session(token, now, idle()) {
                Ok(Some(session)) => {
                    // Keep an active session alive, at most once a minute: a page view then
                    // usually writes nothing. A failure here costs only an earlier expiry.
                    if now - session.last_seen_at >= Duration::seconds(TOUCH_INTERVAL_SECONDS) {
                        let _ = app.store.touch_session(token, now);
                    }
                    app.session = Some(ActiveSession {
                        token: token.to_string(),
                        session,
                    });
                }
                Ok(None) => app.session_expired = true,
                Err(e) => return Err(data_failure(e.to_string())),
            }
        }
        Ok(app)
    }

    pub fn lang(&self) -> Lang {
        self.config.lang
    }

    pub fn t(&self, key: &str) -> String {
        i18n::text(self.lang(), key).to_string()
    }

    /// The logged-in Cybozu user, if this is a user session.
    pub fn user_id(&self) -> Option<UserId> {
        self.session
            .as_ref()
            .filter(|s| !s.session.is_admin)
            .and_then(|s| s.session.user_id)
    }

    pub fn is_admin(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.session.is_admin)
    }

    pub fn is_post(&self) -> bool {
        self.request.method == Method::Post
    }

    /// Whether a POST carries this session's CSRF token.
    pub fn csrf_ok(&self) -> bool {
        match (&self.session, self.request.form("csrf")) {
            (Some(active), Some(sent)) => constant_time_eq(&active.session.csrf_token, sent),
            _ => false,
        }
    }

    /// A tag binding `text` to this session: a value a redirect carries to the next page
    /// (`&calendar=NAME&tag=…`) is shown only with its tag, so a link made elsewhere cannot put
    /// words of its own into a notice of this product. `None` without a session.
    pub fn session_tag(&self, text: &str) -> Option<String> {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        let active = self.session.as_ref()?;
        let tag = crate::hash::hmac_sha256(active.session.csrf_token.as_bytes(), text.as_bytes());
        Some(URL_SAFE_NO_PAD.encode(&tag[..16]))
    }

    /// Whether `tag` is this session's [`session_tag`](Self::session_tag) of `text`.
    pub fn session_tag_ok(&self, text: &str, tag: &str) -> bool {
        self.session_tag(text)
            .is_some_and(|expected| constant_time_eq(&expected, tag))
    }

    /// Whether a login POST carries the token of its own form (double-submit cookie).
    pub fn login_csrf_ok(&self) -> bool {
        match (
            self.request.cookie(LOGIN_CSRF_COOKIE),
            self.request.form("csrf"),
        ) {
            (Some(cookie), Some(sent)) if !cookie.is_empty() => constant_time_eq(cookie, sent),
            _ => false,
        }
    }

    /// The HTTP agent of a page's outbound calls: `dncs.ini`'s proxy and timeouts, the timeouts
    /// cut to [`PAGE_CONNECT_TIMEOUT`] and [`PAGE_CALL_TIMEOUT`].
    pub fn outbound_agent(&self) -> Result<ureq::Agent, HttpError> {
        agent(
            &AgentSettings::from_config(self.config)
                .limited_to(PAGE_CONNECT_TIMEOUT, PAGE_CALL_TIMEOUT),
        )
    }

    /// A relative URL of a page of this CGI.
    pub fn page_url(&self, page: &str) -> String {
        format!("{}?page={page}", self.request.script_name)
    }

    /// Renders `template` inside the layout, under `title`, with the shared context and `extra`.
    ///
    /// The layout includes the page rather than the page extending the layout: a template of
    /// blocks compiles each block on its own, which costs a CGI process, compiling both templates
    /// for every page view, a fiftieth of its instructions and eight pages of memory.
    pub fn render(&self, status: u16, template: &str, title: &str, extra: Value) -> Response {
        let lang = self.lang();
        // An empty environment: the templates use no built-in filter, test or global, and a CGI
        // process would set up every one of them for each request. Everything is HTML, escaped.
        let mut env = Environment::empty();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        // The page ends with the layout's last line, newline included, so that it goes out in one
        // write (`Response::write_cgi`).
        env.set_keep_trailing_newline(true);
        // Templates are parsed when a page asks for them (a page needs two or three of them).
        let templates = localized_templates(lang);
        env.set_loader(move |name| {
            Ok(templates
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, source)| source.to_string()))
        });
        env.add_function("t", move |key: &str| i18n::text(lang, key).to_string());
        let who = self.who();
        let csrf = self
            .session
            .as_ref()
            .map(|s| s.session.csrf_token.clone())
            .unwrap_or_default();
        let ctx = context! {
            page => template,
            title => title,
            lang => match lang { Lang::Ja => "ja", Lang::En => "en" },
            script => self.request.script_name.clone(),
            version => env!("CARGO_PKG_VERSION"),
            who => who,
            is_admin => self.is_admin(),
            csrf => csrf,
            ..extra
        };
        match env.get_template(LAYOUT).and_then(|t| t.render(ctx)) {
            Ok(html) => Response::html(status, html),
            Err(e) => template_failure(lang, template, &e),
        }
    }

    /// A page with one message and a link back to the front page.
    pub fn message(&self, status: u16, title_key: &str, text: &str) -> Response {
        self.message_with(status, title_key, text, context! {})
    }

    /// [`App::message`] with more for `message.html`: `back_url` and `back_label` for a link
    /// to the page the visitor came from instead of the front page, `command` for a command
    /// to run on the server.
    pub fn message_with(&self, status: u16, title_key: &str, text: &str, extra: Value) -> Response {
        self.render(
            status,
            "message.html",
            &self.t(title_key),
            context! { text => text, ..extra },
        )
    }

    /// Starts a new session (after a login), replacing any earlier one, and sets its cookie.
    pub fn start_session(
        &mut self,
        user_id: Option<UserId>,
        is_admin: bool,
        response: Response,
    ) -> Result<Response, crate::store::StoreError> {
        if let Some(old) = self.session.take() {
            self.store.delete_session(&old.token)?;
        }
        let fresh = self.store.create_session(user_id, is_admin, self.now)?;
        let cookie = Cookie::new(SESSION_COOKIE, &fresh.token, self.request);
        self.session = Some(ActiveSession {
            token: fresh.token,
            session: fresh.session,
        });
        Ok(response
            .with_cookie(cookie)
            .with_cookie(Cookie::removal(LOGIN_CSRF_COOKIE, self.request)))
    }

    /// Ends the session and clears its cookie.
    pub fn end_session(
        &mut self,
        response: Response,
    ) -> Result<Response, crate::store::StoreError> {
        if let Some(old) = self.session.take() {
            self.store.delete_session(&old.token)?;
        }
        Ok(response.with_cookie(Cookie::removal(SESSION_COOKIE, self.request)))
    }

    /// A page for a database failure in the middle of a request.
    pub fn store_failure(&self, error: &crate::store::StoreError) -> Response {
        error_page(
            500,
            match self.lang() {
                Lang::Ja => "データベースの処理に失敗しました",
                Lang::En => "A database operation failed",
            },
            &error.to_string(),
            self.lang(),
        )
    }

    /// Remembers the logged-in user's row, read by a handler, for the layout.
    pub fn remember_user(&mut self, user: &User) {
        if self.user_id() == Some(user.id) {
            self.shown_name = Some(shown_name(user).to_string());
        }
    }

    fn who(&self) -> String {
        if self.is_admin() {
            return match self.lang() {
                Lang::Ja => "管理者".into(),
                Lang::En => "Administrator".into(),
            };
        }
        if let Some(name) = &self.shown_name {
            return name.clone();
        }
        match self.user_id().map(|id| self.store.user_by_id(id)) {
            Some(Ok(Some(user))) => shown_name(&user).to_string(),
            _ => String::new(),
        }
    }
}

/// Removes what the screens leave behind: sessions idle past their limit and old login failures.
/// `dncs-sync run` calls it, so the CGI never pays for it.
pub fn housekeeping(store: &Store, now: DateTime<Utc>) -> Result<(), crate::store::StoreError> {
    store.expire_idle_sessions(now, idle())?;
    store.prune_login_throttle(now, throttle_window())?;
    Ok(())
}

/// A user's name in the header: the display name, or the login name when Cybozu has none.
fn shown_name(user: &User) -> &str {
    if user.display_name.is_empty() {
        &user.login_name
    } else {
        &user.display_name
    }
}

pub fn idle() -> Duration {
    Duration::minutes(SESSION_IDLE_MINUTES)
}

pub fn throttle_window() -> Duration {
    Duration::minutes(THROTTLE_WINDOW_MINUTES)
}

/// Compares secrets without leaking through timing where they first differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn template_failure(lang: Lang, name: &str, error: &minijinja::Error) -> Response {
    log::error!("template {name}: {error:#}");
    error_page(
        500,
        match lang {
            Lang::Ja => "画面を表示できません",
            Lang::En => "The page cannot be shown",
        },
        &format!("{name}: {error}"),
        lang,
    )
}

/// How long a browser may keep the stylesheet (it changes with the version in its URL).
pub const STYLESHEET_MAX_AGE: StdDuration = StdDuration::from_secs(7 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!(!constant_time_eq("", "a"));
    }

    /// Every template renders the same localized as with a call of `t` for each text, in both
    /// languages, in each branch the layout has.
    #[test]
    fn localized_templates_render_as_the_calls_would() {
        fn environment(lang: Lang, localized: bool) -> Environment<'static> {
            let mut env = Environment::new();
            env.set_auto_escape_callback(|_| AutoEscape::Html);
            let templates = match localized {
                true => localized_templates(lang),
                false => TEMPLATES,
            };
            env.set_loader(move |name| {
                Ok(templates
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, source)| source.to_string()))
            });
            // Keys the contexts here leave undefined (`t(password_key)`) render empty.
            env.add_function("t", move |key: Option<String>| {
                key.map(|key| i18n::text(lang, &key).to_string())
                    .unwrap_or_default()
            });
            env
        }
        // The layout includes the page the context names.
        let contexts = [
            context! {
                page => "settings.html", title => "t",
                who => "高橋", is_admin => false, notice => "n", error => "e",
            },
            context! {
                page => "message.html", title => "t",
                who => "管理者", is_admin => true, enabled => true, sync_on => true,
                back_url => "?page=admin_users", back_label => "b", command => "c",
            },
            context! { page => "login.html" },
        ];
        assert!(TEMPLATES.iter().any(|(_, s)| s.contains("{{ t(\"")));
        for lang in [Lang::Ja, Lang::En] {
            let (calls, localized) = (environment(lang, false), environment(lang, true));
            let built: Vec<&str> = localized_templates(lang).iter().map(|(n, _)| *n).collect();
            let mut written: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
            written.sort();
            assert_eq!(
                built, written,
                "build.rs localized every template, and only those"
            );
            for (name, source) in localized_templates(lang) {
                assert_eq!(
                    *source,
                    i18n::localize_template(
                        TEMPLATES.iter().find(|(n, _)| n == name).expect(name).1,
                        lang
                    ),
                    "{name} as build.rs wrote it"
                );
                assert!(
                    !source.contains("{{ t(\""),
                    "{name} keeps a plain call of t"
                );
                for ctx in &contexts {
                    let render = |env: &Environment<'_>| {
                        env.get_template(name)
                            .and_then(|t| t.render(ctx))
                            .expect(name)
                    };
                    assert_eq!(render(&localized), render(&calls), "{name} ({lang:?})");
                }
            }
        }
    }

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect(name);
        }
    }
}
