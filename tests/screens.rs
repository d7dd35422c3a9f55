//! Every screen and every form, through the real `dncs` binary run as a CGI process the way Apache
//! or IIS runs it: an install folder (`bin/dncs.ini`, `data/`) in a temporary folder, the simulated
//! Cybozu Office behind `CYBOZU_URL`, and a small [`Browser`] that keeps the cookies (both in
//! `harness`). The database is arranged and checked through `dncs::store`, as `dncs-sync` would
//! see it.

use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use dncs::store::{
    GoogleClient, Mapping, PassCounts, Provenance, Target, SETTING_ADMIN_PASSWORD_HASH,
};

use crate::harness::{
    assert_redirect_to, at, csrf, form_encode, html, text_after, Browser, Site, ADMIN_PASSWORD,
    SATO, T0, TAKAHASHI,
};
use crate::util::{utc, CgiAnswer, SCRIPT_NAME};

/// 状態 on the settings page.
fn state(page: &CgiAnswer) -> &str {
    text_after(page, "id=\"state\">")
}

/// The notice paragraph (after a save), empty when there is none.
fn notice(page: &CgiAnswer) -> &str {
    if page.body.contains("<p class=\"notice\">") {
        text_after(page, "<p class=\"notice\">")
    } else {
        ""
    }
}

/// The whole `<input …>` tag of the radio button `name` = `value`.
fn radio<'a>(page: &'a CgiAnswer, name: &str, value: &str) -> &'a str {
    let marker = format!("name=\"{name}\" value=\"{value}\"");
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in {}", page.body));
    let start = page.body[..at].rfind("<input").expect("an input tag");
    let end = at + page.body[at..].find('>').expect("the tag ends");
    &page.body[start..=end]
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The session cookie's `Set-Cookie` header of a login answer.
fn session_cookie(answer: &CgiAnswer) -> &str {
    answer
        .headers_named("Set-Cookie")
        .into_iter()
        .find(|h| h.starts_with("dncs_session=") && !h.contains("Max-Age=0"))
        .unwrap_or_else(|| panic!("no session cookie in {:?}", answer.headers))
}

// ---------------------------------------------------------------- login and 状態

#[test]
fn screens_login_over_http_starts_a_session_and_shows_stopped() {
    let site = Site::new();
    let mut browser = site.browser();
    let form = browser.get("");
    assert_eq!(form.status(), 200);
    assert!(form.body.contains("ログイン名"), "{}", form.body);
    let answer = browser.login("takahashi", "takahashi");
    assert_redirect_to(&answer, "settings");
    let cookie = session_cookie(&answer);
    assert!(
        cookie.contains("; Path=/cgi-bin/cbag/dncs/bin/;"),
        "{cookie}"
    );
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "no Secure over http: {cookie}");
    // The login form's own token is spent.
    assert!(!browser.cookies.contains_key("dncs_login"));

    let page = browser.get("page=settings");
    assert_eq!(page.status(), 200);
    assert_eq!(state(&page), "停止中");
    assert!(page.body.contains("高橋 健太"), "the name in the header");
    assert!(!radio(&page, "sync_on", "on").contains("disabled"));

    let user = site.stored_user(TAKAHASHI);
    assert_eq!(user.login_name, "takahashi");
    assert!(user.enabled, "a first user is enabled while seats remain");
    assert!(!user.sync_on);
    assert_eq!(
        site.store()
            .cybozu_password(TAKAHASHI)
            .expect("read")
            .as_deref(),
        Some("takahashi"),
        "the sync's Cybozu password is stored"
    );
}

#[test]
fn screens_login_over_https_sets_a_secure_cookie() {
    let site = Site::new();
    let mut browser = site.browser();
    browser.https = true;
    let form = browser.get("page=login");
    let login_cookie = form
        .headers_named("Set-Cookie")
        .into_iter()
        .find(|h| h.starts_with("dncs_login="))
        .expect("the login form's cookie");
    assert!(login_cookie.contains("; Secure"), "{login_cookie}");
    let answer = browser.login("takahashi", "takahashi");
    assert_redirect_to(&answer, "settings");
    let cookie = session_cookie(&answer);
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("; HttpOnly; SameSite=Lax"), "{cookie}");
}

#[test]
fn screens_state_follows_sync_on_and_sync_now() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let saved = browser.save_settings(&[("target", "google"), ("sync_on", "on")]);
    assert_redirect_to(&saved, "settings");
    let page = browser.get("page=settings");
    assert_eq!(state(&page), "同期中");
    assert!(radio(&page, "sync_on", "on").contains("checked"));
    assert!(site.stored_user(TAKAHASHI).sync_on);
    assert!(!site
        .store()
        .has_pending_sync_request(TAKAHASHI)
        .expect("read"));

    // A scheduled run holds the lock, so the pass started by the button waits its turn and the
    // request stays pending while the page is read (otherwise the pass may finish first).
    let lock =
        std::fs::File::create(site.root.path().join("data").join("sync.lock")).expect("lock file");
    lock.lock().expect("lock");
    let answer = browser.submit("page=settings", "page=sync_now", &[]);
    assert_redirect_to(&answer, "settings");
    assert!(
        site.store()
            .has_pending_sync_request(TAKAHASHI)
            .expect("read"),
        "「ただちに同期する」 records a request row"
    );
    let page = browser.follow(&answer);
    assert_eq!(page.status(), 200);
    assert_eq!(state(&page), "同期中 – 同期処理中");
    // dncs-sync sits beside the CGI, so the pass was started (and waits for the lock).
    assert_eq!(notice(&page), "同期を開始しました。");

    drop(lock);

    // 停止 again: the state says so.
    browser.save_settings(&[("target", "google"), ("sync_on", "off")]);
    let page = browser.get("page=settings");
    assert_eq!(state(&page), "停止中");
}

#[test]
fn screens_sync_now_without_dncs_sync_beside_the_cgi_records_the_request_and_says_so() {
    let mut site = Site::new();
    // Installed without its sibling: the pass cannot be started from the page.
    let alone = site
        .root
        .path()
        .join("bin")
        .join(format!("dncs{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(&site.cgi, &alone).expect("copy the CGI");
    site.cgi = alone;
    let mut browser = site.user("takahashi");
    browser.save_settings(&[("target", "google"), ("sync_on", "on")]);
    let answer = browser.submit("page=settings", "page=sync_now", &[]);
    assert_eq!(
        answer.header("Location"),
        Some(format!("{SCRIPT_NAME}?page=settings&done=queued").as_str()),
        "{}",
        answer.body
    );
    let page = browser.follow(&answer);
    assert_eq!(
        notice(&page),
        "同期をすぐに開始できなかったため、次の定期実行（1分以内）で同期します。"
    );
    assert_eq!(state(&page), "同期中 – 同期処理中");
    assert!(
        site.store()
            .has_pending_sync_request(TAKAHASHI)
            .expect("read"),
        "the next scheduled run serves the request"
    );
}

#[test]
fn screens_a_disabled_user_sees_the_admin_state_and_no_sync_switch() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    site.store()
        .set_enabled(TAKAHASHI, false, now())
        .expect("disable");
    let page = browser.get("page=settings");
    assert_eq!(page.status(), 200);
    assert_eq!(state(&page), "管理者により無効とされています");
    assert!(radio(&page, "sync_on", "on").contains(" disabled"));
    assert!(radio(&page, "sync_on", "off").contains(" disabled"));
    assert!(page.body.contains("管理者により利用が許可されていないため"));
}

#[test]
fn screens_a_disabled_user_cannot_switch_sync_on() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    site.store()
        .set_enabled(TAKAHASHI, false, now())
        .expect("disable");
    let answer = browser.save_settings(&[
        ("target", "google"),
        ("sync_on", "on"),
        ("calendar_id", "team@group.calendar.google.com"),
    ]);
    assert_eq!(answer.status(), 403, "{}", answer.body);
    assert!(answer
        .body
        .contains("管理者により利用が許可されていないため"));
    let user = site.stored_user(TAKAHASHI);
    assert!(!user.sync_on, "同期状態 stays 停止");
    assert!(!user.enabled);
    assert_eq!(user.calendar_id, "", "nothing of the refused form is saved");
    assert!(
        answer
            .body
            .contains("value=\"team@group.calendar.google.com\""),
        "the typed calendar id stays on the page: {}",
        answer.body
    );
    // Nor can they ask for a pass.
    let answer = browser.submit("page=settings", "page=sync_now", &[]);
    assert_eq!(answer.status(), 409, "{}", answer.body);
    assert!(!site
        .store()
        .has_pending_sync_request(TAKAHASHI)
        .expect("read"));
}

#[test]
fn screens_wrong_password_is_401_and_stores_nothing() {
    let site = Site::new();
    let mut browser = site.browser();
    let answer = browser.login("takahashi", "not-the-password");
    assert_eq!(
        answer.status_line, "Status: 401 Unauthorized",
        "{}",
        answer.body
    );
    assert!(answer
        .body
        .contains("ログイン名またはパスワードが正しくありません"));
    assert!(
        answer.body.contains("value=\"takahashi\""),
        "the name is kept"
    );
    assert!(browser.session_token().is_none());
    assert!(site.store().list_users().expect("users").is_empty());
    // Still a login page afterwards.
    let page = browser.get("page=settings");
    assert_eq!(page.status(), 401);
    assert!(!page.body.contains("id=\"state\""));
}

#[test]
fn screens_six_failed_logins_throttle_even_the_right_password() {
    let site = Site::new();
    let mut browser = site.browser();
    for attempt in 1..=5 {
        let answer = browser.login("takahashi", "guess");
        assert_eq!(answer.status(), 401, "attempt {attempt}: {}", answer.body);
    }
    let answer = browser.login("takahashi", "guess");
    assert_eq!(answer.status(), 429, "{}", answer.body);
    let answer = browser.login("takahashi", "takahashi");
    assert_eq!(
        answer.status_line, "Status: 429 Too Many Requests",
        "{}",
        answer.body
    );
    assert!(answer.body.contains("しばらくログインできません"));
    assert!(browser.session_token().is_none());
    assert!(site.store().list_users().expect("users").is_empty());
}

#[test]
fn screens_login_while_cybozu_fails_says_so_and_counts_no_failure() {
    let site = Site::new();
    let mut browser = site.browser();
    let unavailable = (
        503,
        "<html><body>Service Unavailable</body></html>".to_owned(),
    );
    // More than a page tries: the login gives up after two, where the scheduled run would go on.
    site.sim.quirks().raw_replies = vec![unavailable.clone(); 5];
    let answer = browser.login("takahashi", "takahashi");
    assert_eq!(
        answer.status_line, "Status: 502 Bad Gateway",
        "{}",
        answer.body
    );
    assert!(answer.body.contains("サイボウズ Office に接続できません"));
    assert!(
        answer.body.contains("value=\"takahashi\""),
        "the name is kept"
    );
    assert_eq!(site.sim.quirks().raw_replies.len(), 3, "tried twice");
    assert!(browser.session_token().is_none());
    assert!(site.store().list_users().expect("users").is_empty());
    // The administrator finds the cause in the log, where the web server may keep no stderr.
    let log_folder = site.root.path().join("data").join("log");
    let logged: String = std::fs::read_dir(&log_folder)
        .expect("the CGI made the log folder")
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect();
    assert!(
        logged.contains("[WARN]") && logged.contains("login of takahashi"),
        "{logged}"
    );

    // A reply that is not SOAP at all is the same sentence, not an error page or a panic.
    site.sim.quirks().raw_replies = vec![(200, "<html>maintenance</html>".to_owned())];
    let answer = browser.login("takahashi", "takahashi");
    assert_eq!(answer.status(), 502, "{}", answer.body);
    assert!(answer.body.contains("サイボウズ Office に接続できません"));

    // An outage is not a wrong password: six of them do not throttle the login.
    for attempt in 1..=6 {
        site.sim.quirks().raw_replies = vec![unavailable.clone(); 2];
        let answer = browser.login("takahashi", "takahashi");
        assert_eq!(answer.status(), 502, "attempt {attempt}: {}", answer.body);
    }
    site.sim.quirks().raw_replies.clear();
    let answer = browser.login("takahashi", "takahashi");
    assert_eq!(answer.status(), 303, "{}", answer.body);
    assert!(browser.session_token().is_some());
}

// ---------------------------------------------------------------- CSRF

/// Posts `fields` to `action` twice, without a token and with a wrong one; both are refused.
fn assert_csrf_refused(browser: &mut Browser<'_>, action: &str, fields: &[(&str, &str)]) {
    let missing = browser.post(action, fields);
    assert_eq!(
        missing.status(),
        403,
        "{action} without a token: {}",
        missing.body
    );
    assert!(missing.body.contains("不正な送信です"), "{}", missing.body);
    let mut wrong = vec![("csrf", "not-the-token")];
    wrong.extend_from_slice(fields);
    let answer = browser.post(action, &wrong);
    assert_eq!(
        answer.status(),
        403,
        "{action} with a wrong token: {}",
        answer.body
    );
    assert!(answer.body.contains("不正な送信です"), "{}", answer.body);
}

#[test]
fn screens_login_without_its_token_is_refused() {
    let site = Site::new();
    let mut browser = site.browser();
    browser.get("page=login"); // the token's cookie is in the jar
    assert_csrf_refused(
        &mut browser,
        "page=login",
        &[("login", "takahashi"), ("password", "takahashi")],
    );
    assert!(browser.session_token().is_none());
    assert!(site.store().list_users().expect("users").is_empty());
}

#[test]
fn screens_user_forms_without_the_token_change_nothing() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    assert_csrf_refused(
        &mut browser,
        "page=settings",
        &[
            ("target", "caldav"),
            ("sync_on", "on"),
            ("calendar_id", "x@group.calendar.google.com"),
            ("caldav_url", "https://dav.example.jp/"),
            ("caldav_password", "pw"),
        ],
    );
    let user = site.stored_user(TAKAHASHI);
    assert!(!user.sync_on);
    assert_eq!(user.target, Target::Google);
    assert_eq!(user.calendar_id, "");
    assert_eq!(user.caldav_url, "");
    assert!(!user.has_caldav_password);

    site.store()
        .set_sync_on(TAKAHASHI, true, now())
        .expect("sync on");
    assert_csrf_refused(&mut browser, "page=sync_now", &[]);
    // A GET is no way around it.
    assert_eq!(browser.get("page=sync_now").status(), 403);
    assert!(!site
        .store()
        .has_pending_sync_request(TAKAHASHI)
        .expect("read"));

    let token = browser.session_token().expect("logged in");
    assert_csrf_refused(&mut browser, "page=logout", &[]);
    assert_eq!(browser.session_token(), Some(token));
    let page = browser.get("page=settings");
    assert_eq!(page.status(), 200, "still logged in: {}", page.body);
    assert!(page.body.contains("id=\"state\""));
}

#[test]
fn screens_admin_forms_without_the_token_change_nothing() {
    let site = Site::new();
    site.user("takahashi");
    site.set_admin_password(ADMIN_PASSWORD);
    let mut browser = site.browser();
    browser.get("page=admin_login");
    assert_csrf_refused(
        &mut browser,
        "page=admin_login",
        &[("password", ADMIN_PASSWORD)],
    );
    assert!(browser.session_token().is_none());
    assert_ne!(browser.get("page=admin").status(), 200);

    let mut admin = site.admin();
    assert_csrf_refused(
        &mut admin,
        "page=admin_users",
        &[("action", "disable"), ("user_1", "1")],
    );
    let user = site.stored_user(TAKAHASHI);
    assert!(user.enabled, "the refused bulk action changed nothing");
}

// ---------------------------------------------------------------- sessions

#[test]
fn screens_an_idle_session_expires_after_60_minutes() {
    let site = Site::new();
    let mut browser = site.browser();
    browser.now = Some(at(T0, 0));
    assert_eq!(browser.login("takahashi", "takahashi").status(), 303);
    // Each request keeps it alive.
    browser.now = Some(at(T0, 59));
    let page = browser.get("page=settings");
    assert_eq!(page.status(), 200, "{}", page.body);
    browser.now = Some(at(T0, 59 + 61));
    assert_logged_out_for_idleness(&browser.get("page=settings"), "id=\"state\"");
}

/// The login page that answers a request on an idle session: 401, the notice, and not `hidden`.
fn assert_logged_out_for_idleness(page: &CgiAnswer, hidden: &str) {
    assert_eq!(page.status(), 401, "{}", page.body);
    assert!(
        page.body.contains("一定時間操作がなかったため"),
        "{}",
        page.body
    );
    assert!(page.body.contains("name=\"password\""), "the login form");
    assert!(!page.body.contains(hidden), "{hidden} in {}", page.body);
}

#[test]
fn screens_an_idle_admin_session_expires_after_60_minutes() {
    let site = Site::new();
    site.set_admin_password(ADMIN_PASSWORD);
    let mut admin = site.browser();
    admin.now = Some(at(T0, 0));
    assert_eq!(admin.admin_login(ADMIN_PASSWORD).status(), 303);
    assert_eq!(admin.get("page=admin").status(), 200);
    admin.now = Some(at(T0, 61));
    assert_logged_out_for_idleness(&admin.get("page=admin_users"), "利用ステータス");
}

#[test]
fn screens_logout_ends_the_session_and_clears_the_cookie() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let token = browser.session_token().expect("logged in");
    let answer = browser.submit("page=settings", "page=logout", &[]);
    assert_eq!(answer.status(), 303, "{}", answer.body);
    let removal = answer
        .headers_named("Set-Cookie")
        .into_iter()
        .find(|h| h.starts_with("dncs_session="))
        .expect("the cookie is cleared");
    assert!(removal.starts_with("dncs_session=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(browser.session_token().is_none());
    assert!(site
        .store()
        .active_session(&token, now(), Duration::minutes(60))
        .expect("read")
        .is_none());

    let page = browser.get("");
    assert_eq!(page.status(), 200);
    assert!(page.body.contains("name=\"login\""), "the login page");
    // The old cookie replayed opens nothing either.
    browser.cookies.insert("dncs_session".into(), token);
    let page = browser.get("page=settings");
    assert_eq!(page.status(), 401);
    assert!(!page.body.contains("id=\"state\""));
    // ログアウト pressed again in another tab finds nothing to end: it goes to the login page.
    browser.cookies.remove("dncs_session");
    let again = browser.post("page=logout", &[("csrf", "the-other-tab's-token")]);
    assert_eq!(again.status(), 303, "{}", again.body);
}

// ---------------------------------------------------------------- 同期設定

#[test]
fn screens_changing_the_calendar_drops_the_mappings() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let store = site.store();
    store
        .set_target_and_calendar(
            TAKAHASHI,
            Target::Google,
            "old@group.calendar.google.com",
            now(),
        )
        .expect("calendar");
    let mapping = Mapping {
        cybozu_id: 42,
        cybozu_version: 1_700_000_000,
        remote_id: "evt42".into(),
        remote_etag: Some("\"1\"".into()),
        extra: serde_json::json!({}),
    };
    store.put_mapping(TAKAHASHI, &mapping).expect("mapping");

    // Saving the same calendar keeps them.
    let answer = browser.save_settings(&[
        ("target", "google"),
        ("calendar_id", "old@group.calendar.google.com"),
    ]);
    assert_redirect_to(&answer, "settings");
    let page = browser.follow(&answer);
    assert_eq!(notice(&page), "設定を保存しました。");
    assert_eq!(store.mappings_for_user(TAKAHASHI).expect("read").len(), 1);

    let answer = browser.save_settings(&[
        ("target", "google"),
        ("calendar_id", "new@group.calendar.google.com"),
    ]);
    assert_redirect_to(&answer, "settings");
    let page = browser.follow(&answer);
    assert!(
        notice(&page).contains("それまでの同期情報は失われ新規に同期し直します"),
        "{}",
        notice(&page)
    );
    assert!(store.mappings_for_user(TAKAHASHI).expect("read").is_empty());
    assert!(page
        .body
        .contains("value=\"new@group.calendar.google.com\""));

    // So does a change of target.
    store.put_mapping(TAKAHASHI, &mapping).expect("mapping");
    let answer = browser.save_settings(&[
        ("target", "caldav"),
        ("calendar_id", "new@group.calendar.google.com"),
    ]);
    assert!(answer
        .header("Location")
        .expect("Location")
        .ends_with("done=dropped"));
    assert!(store.mappings_for_user(TAKAHASHI).expect("read").is_empty());
    let user = store.user_by_id(TAKAHASHI).expect("read").expect("user");
    assert_eq!(user.target, Target::Caldav);
}

#[test]
fn screens_a_caldav_password_is_stored_sealed_and_never_shown() {
    const SECRET: &str = "Caldav-Pw-7391";
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let answer = browser.save_settings(&[
        // Google stays the target: the CalDAV fields are kept for later without a server check.
        ("target", "google"),
        ("sync_on", "on"),
        ("caldav_url", "https://dav.example.jp/calendars/takahashi/"),
        ("caldav_user", "takahashi"),
        ("caldav_password", SECRET),
    ]);
    assert_redirect_to(&answer, "settings");
    assert!(!answer.body.contains(SECRET));
    assert_eq!(
        site.store()
            .caldav_password(TAKAHASHI)
            .expect("read")
            .as_deref(),
        Some(SECRET)
    );
    // Sealed: the database files never hold it in the clear.
    for file in ["dncs.db", "dncs.db-wal"] {
        let path = site.root.path().join("data").join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{file} holds the password in the clear"
            );
        }
    }
    let page = browser.get("page=settings");
    assert!(page.body.contains("パスワードは保存されています。"));
    for query in [
        "page=settings",
        "page=history",
        "",
        "page=settings&done=saved",
    ] {
        let page = browser.get(query);
        assert!(!page.body.contains(SECRET), "{query} shows the password");
    }
    // Saving without typing it keeps it.
    browser.save_settings(&[
        ("target", "google"),
        ("sync_on", "on"),
        ("caldav_url", "https://dav.example.jp/calendars/takahashi/"),
        ("caldav_user", "takahashi"),
        ("caldav_password", ""),
    ]);
    assert_eq!(
        site.store()
            .caldav_password(TAKAHASHI)
            .expect("read")
            .as_deref(),
        Some(SECRET)
    );
    // It is never sent to another server, or over plain http, without being typed again.
    for other_server in [
        "https://evil.example/calendars/takahashi/",
        "http://dav.example.jp/calendars/takahashi/",
    ] {
        let answer = browser.save_settings(&[
            ("target", "google"),
            ("caldav_url", other_server),
            ("caldav_user", "takahashi"),
            ("caldav_password", ""),
        ]);
        assert_eq!(answer.status(), 400, "{other_server}: {}", answer.body);
        assert!(
            answer
                .body
                .contains("CalDAV パスワードをもう一度入力してください"),
            "{}",
            answer.body
        );
    }
    let user = site.stored_user(TAKAHASHI);
    assert_eq!(
        user.caldav_url,
        "https://dav.example.jp/calendars/takahashi/"
    );
    let mut admin = site.admin();
    for query in [
        "page=admin_users",
        "page=admin_history&user=1",
        "page=admin_ini",
    ] {
        let page = admin.get(query);
        assert_eq!(page.status(), 200, "{query}");
        assert!(!page.body.contains(SECRET), "{query} shows the password");
    }
}

#[test]
fn screens_a_bad_caldav_url_is_400_and_not_saved() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let answer = browser.save_settings(&[
        ("target", "caldav"),
        ("sync_on", "on"),
        ("calendar_id", "team@group.calendar.google.com"),
        ("caldav_url", "javascript:alert(1)"),
        ("caldav_user", "taka"),
        ("caldav_password", "pw-not-saved"),
    ]);
    assert_eq!(answer.status(), 400, "{}", answer.body);
    assert!(answer.body.contains(&html(
        "CalDAV URL は http:// または https:// で始まる URL を入力してください。"
    )));
    // What was typed stays on the page, the password aside.
    for kept in [
        "value=\"caldav\" checked",
        "value=\"on\" checked",
        "value=\"team@group.calendar.google.com\"",
        "value=\"javascript:alert(1)\"",
        "value=\"taka\"",
    ] {
        assert!(
            answer.body.contains(kept),
            "{kept} missing: {}",
            answer.body
        );
    }
    assert!(!answer.body.contains("pw-not-saved"));
    let user = site.stored_user(TAKAHASHI);
    assert_eq!(user.caldav_url, "");
    assert_eq!(user.target, Target::Google);
    assert!(!user.has_caldav_password);
}

#[test]
fn screens_settings_fields_have_a_length_limit_and_url_schemes_any_case() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let long = "a".repeat(2049);
    let answer = browser.save_settings(&[("target", "google"), ("calendar_id", &long)]);
    assert_eq!(answer.status(), 400, "{}", answer.body);
    assert!(answer.body.contains("入力が長すぎます"), "{}", answer.body);
    let user = site.stored_user(TAKAHASHI);
    assert_eq!(user.calendar_id, "");
    // An upper-case scheme is a web URL too (Google stays the target: no server check).
    let answer = browser.save_settings(&[
        ("target", "google"),
        ("caldav_url", "HTTPS://dav.example.jp/calendars/takahashi/"),
    ]);
    assert_eq!(answer.status(), 303, "{}", answer.body);
    assert_eq!(
        site.stored_user(TAKAHASHI).caldav_url,
        "https://dav.example.jp/calendars/takahashi/",
        "stored as every client compares it"
    );
}

#[test]
fn screens_caldav_with_sync_on_needs_a_url() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let answer =
        browser.save_settings(&[("target", "caldav"), ("sync_on", "on"), ("caldav_url", "")]);
    assert_eq!(answer.status(), 400, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("CalDAV と同期するには CalDAV URL を入力してください。"),
        "{}",
        answer.body
    );
    let user = site.stored_user(TAKAHASHI);
    assert_eq!(user.target, Target::Google, "nothing is saved");
    assert!(!user.sync_on);
    // Without 同期, the choice may be saved first and the URL filled in later.
    let answer = browser.save_settings(&[("target", "caldav"), ("sync_on", "off")]);
    assert_eq!(answer.status(), 303, "{}", answer.body);
}

#[test]
fn screens_a_notice_cannot_be_written_by_a_link() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let planted = "」。https://evil.example/ でパスワードを再入力してください「";
    for query in [
        format!("page=settings&done=saved&calendar={planted}"),
        format!("page=settings&done=saved&calendar={planted}&tag=AAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let page = browser.get(&query);
        assert_eq!(page.status(), 200, "{}", page.body);
        assert_eq!(notice(&page), "設定を保存しました。", "{query}");
        assert!(!page.body.contains("evil.example"), "{}", page.body);
    }
}

#[test]
fn screens_google_block_shows_the_link_state() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let google_state = |page: &CgiAnswer| text_after(page, "id=\"google-state\">").to_owned();
    assert_eq!(google_state(&browser.get("page=settings")), "未認証");
    let store = site.store();
    store
        .set_google_link(
            TAKAHASHI,
            "1//legacy-refresh",
            Provenance::Oob,
            GoogleClient::Legacy,
            now(),
        )
        .expect("link");
    assert_eq!(
        google_state(&browser.get("page=settings")),
        "認証済(再認証が必要です)"
    );
    store
        .set_google_link(
            TAKAHASHI,
            "1//relay-refresh",
            Provenance::Relay,
            GoogleClient::Current,
            now(),
        )
        .expect("link");
    let page = browser.get("page=settings");
    assert_eq!(google_state(&page), "認証済です");
    assert!(
        !page.body.contains("relay-refresh"),
        "the token is never shown"
    );
}

/// 状態 stays 同期中 (the screen's fixed words) while the schedule cannot sync the user; the
/// page says why and what to press.
#[test]
fn screens_a_sync_that_cannot_run_says_why_under_the_state() {
    let paused = |page: &CgiAnswer| {
        page.body
            .contains("id=\"paused\"")
            .then(|| text_after(page, "id=\"paused\">").to_owned())
    };
    // Without Google's client in dncs.ini, 認証 cannot help: the administrator is named.
    let unconfigured = Site::new();
    let mut browser = unconfigured.user("takahashi");
    unconfigured
        .store()
        .set_sync_on(TAKAHASHI, true, now())
        .expect("sync on");
    let page = browser.get("page=settings");
    assert!(
        paused(&page).is_some_and(|p| p.contains("GOOGLE_CLIENT_ID")),
        "{}",
        page.body
    );

    let site = Site::with_ini("GOOGLE_CLIENT_ID=id.example\r\nGOOGLE_CLIENT_SECRET=secret\r\n");
    let mut browser = site.user("takahashi");
    let store = site.store();
    store.set_sync_on(TAKAHASHI, true, now()).expect("sync on");
    let page = browser.get("page=settings");
    assert_eq!(state(&page), "同期中");
    assert!(
        paused(&page).is_some_and(|p| p.contains("連携していないため")),
        "{}",
        page.body
    );
    store
        .set_google_link(
            TAKAHASHI,
            "1//refresh",
            Provenance::Direct,
            GoogleClient::Current,
            now(),
        )
        .expect("link");
    assert_eq!(paused(&browser.get("page=settings")), None);
    store
        .mark_google_needs_relink(TAKAHASHI, now())
        .expect("revoked");
    let page = browser.get("page=settings");
    assert!(
        paused(&page).is_some_and(|p| p.contains("取り消されているため")),
        "{}",
        page.body
    );
    // 停止 needs no explanation.
    store
        .set_sync_on(TAKAHASHI, false, now())
        .expect("sync off");
    assert_eq!(paused(&browser.get("page=settings")), None);
}

// ---------------------------------------------------------------- 同期履歴

/// The start of the first pass [`hourly_passes`] records.
const FIRST_PASS: &str = "2026-11-01T00:00:00Z";

/// `count` passes of `user`, an hour apart from [`FIRST_PASS`], pass `hour` adding `hour` events.
fn hourly_passes(site: &Site, user: i64, count: i64) {
    let store = site.store();
    for hour in 0..count {
        let started = utc(FIRST_PASS) + Duration::hours(hour);
        let counts = PassCounts {
            remote_created: hour as u32,
            ..PassCounts::default()
        };
        store
            .append_history(user, started, started + Duration::seconds(5), &counts, &[])
            .expect("history");
    }
}

/// The time of pass `hour` of [`hourly_passes`] as 同期履歴 shows it.
fn pass_time(hour: i64) -> String {
    (utc(FIRST_PASS) + Duration::hours(hour))
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .format("%Y/%m/%d %H:%M")
        .to_string()
}

#[test]
fn screens_history_is_newest_first_in_pages_of_20() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let page = browser.get("page=history");
    assert_eq!(page.status(), 200);
    assert!(page.body.contains("同期履歴はまだありません。"));

    hourly_passes(&site, TAKAHASHI, 25);
    let page = browser.get("page=history");
    assert_eq!(page.status(), 200);
    assert!(!page.body.contains("同期履歴はまだありません。"));
    let positions: Vec<usize> = (5..25)
        .rev()
        .map(|hour| {
            page.body
                .find(&format!("<td>{}</td>", html(&pass_time(hour))))
                .unwrap_or_else(|| panic!("hour {hour} on the first page"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "newest first");
    assert!(
        !page.body.contains(&html(&pass_time(4))),
        "only 20 on a page"
    );
    assert!(page.body.contains(&html("追加 24 / 変更 0 / 削除 0")));
    assert!(page.body.contains("page=history&amp;p=1\">古い履歴"));
    assert!(!page.body.contains("新しい履歴"));

    let older = browser.get("page=history&p=1");
    assert_eq!(older.status(), 200);
    for hour in 0..5 {
        assert!(
            older.body.contains(&html(&pass_time(hour))),
            "hour {hour} on page 2"
        );
    }
    assert!(!older.body.contains(&html(&pass_time(5))));
    let (four, zero) = (
        older.body.find(&html(&pass_time(4))),
        older.body.find(&html(&pass_time(0))),
    );
    assert!(four.is_some() && four < zero, "newest first");
    assert!(older.body.contains("page=history&amp;p=0\">新しい履歴"));
    assert!(!older.body.contains("古い履歴"));
}

#[test]
fn screens_history_past_the_last_page_shows_the_last_page() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    hourly_passes(&site, TAKAHASHI, 25);
    let mut admin = site.admin();
    // Pages 0 and 1 exist (20 + 5 entries); a link kept from before a prune, or a typed URL,
    // asks for a later one.
    let asked = [
        ("page=history&p=2", "page=history&amp;p=0"),
        (
            "page=admin_history&user=1&p=7",
            "page=admin_history&amp;user=1&amp;p=0",
        ),
        (
            "page=admin_history&user=1&p=4294967295",
            "page=admin_history&amp;user=1&amp;p=0",
        ),
    ];
    for (query, newer) in asked {
        let page = match query.starts_with("page=history") {
            true => browser.get(query),
            false => admin.get(query),
        };
        assert_eq!(page.status(), 200, "{query}: {}", page.body);
        assert!(
            !page.body.contains("同期履歴はまだありません。"),
            "{query}: {}",
            page.body
        );
        for hour in 0..5 {
            assert!(
                page.body.contains(&html(&pass_time(hour))),
                "{query}: the oldest pass {hour} is on the last page"
            );
        }
        assert!(!page.body.contains(&html(&pass_time(5))), "{query}");
        assert!(
            page.body.contains(&format!("{newer}\">新しい履歴")),
            "{query}: the pager of the last page: {}",
            page.body
        );
        assert!(!page.body.contains("古い履歴"), "{query}");
    }
}

// ---------------------------------------------------------------- the administrator

#[test]
fn screens_the_administrator_and_a_visitor_are_told_why_a_user_page_is_closed() {
    let site = Site::new();
    site.set_admin_password(ADMIN_PASSWORD);
    let mut admin = site.admin();
    let token = csrf(&admin.get("page=admin"));
    for page in [
        admin.get("page=settings"),
        admin.get("page=history"),
        admin.post("page=google_auth", &[("csrf", &token)]),
        admin.post("page=sync_now", &[("csrf", &token)]),
    ] {
        assert_eq!(page.status(), 403, "{}", page.body);
        assert!(
            page.body.contains("管理者としてログインしています。"),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("一定時間操作がなかったため"),
            "{}",
            page.body
        );
    }
    // Someone who never logged in is asked to, not told a session ran out.
    let mut visitor = site.browser();
    for page in [
        visitor.get("page=settings"),
        visitor.post("page=google_auth", &[]),
    ] {
        assert_eq!(page.status(), 401, "{}", page.body);
        assert!(page.body.contains("name=\"password\""), "{}", page.body);
        assert!(
            !page.body.contains("一定時間操作がなかったため"),
            "{}",
            page.body
        );
    }
}

#[test]
fn screens_a_user_cannot_open_admin_pages() {
    let site = Site::new();
    site.user("sato");
    site.set_admin_password(ADMIN_PASSWORD);
    let mut browser = site.user("takahashi");
    for query in [
        "page=admin",
        "page=admin_users",
        "page=admin_history&user=2",
        "page=admin_ini",
    ] {
        let page = browser.get(query);
        assert_eq!(page.status(), 403, "{query}: {}", page.body);
        assert!(
            page.body.contains("このページは管理者のみが利用できます"),
            "{query}"
        );
        for admin_only in [
            "利用ユーザー数",
            "利用ステータス",
            "CYBOZU_URL",
            "sato",
            "佐藤",
        ] {
            assert!(
                !page.body.contains(admin_only),
                "{query} shows {admin_only}"
            );
        }
    }
    let token = csrf(&browser.get("page=settings"));
    let page = browser.post(
        "page=admin_users",
        &[("csrf", &token), ("action", "disable"), ("user_2", "1")],
    );
    assert_eq!(page.status(), 403);
    assert!(site.stored_user(SATO).enabled);
}

#[test]
fn screens_admin_login_needs_the_password_set_by_dncs_sync() {
    let site = Site::new();
    site.user("takahashi");
    let mut browser = site.browser();
    let page = browser.get("page=admin_login");
    assert_eq!(page.status(), 503, "{}", page.body);
    assert!(page.body.contains("dncs-sync admin-password"));
    assert!(!page.body.contains("name=\"password\""));

    site.set_admin_password(ADMIN_PASSWORD);
    let hash = site
        .store()
        .setting(SETTING_ADMIN_PASSWORD_HASH)
        .expect("read")
        .expect("a hash is stored");
    assert!(!hash.contains(ADMIN_PASSWORD));

    let answer = browser.admin_login("wrong-password-1");
    assert_eq!(answer.status(), 401, "{}", answer.body);
    assert!(answer.body.contains("パスワードが正しくありません。"));
    assert!(browser.session_token().is_none());

    let answer = browser.admin_login(ADMIN_PASSWORD);
    assert_redirect_to(&answer, "admin");
    session_cookie(&answer);
    let page = browser.get("page=admin");
    assert_eq!(page.status(), 200, "{}", page.body);
    assert!(page.body.contains("ご利用中のバージョン"));
    assert!(page
        .body
        .contains(&format!("id=\"version\">{}<", env!("CARGO_PKG_VERSION"))));
    assert_eq!(text_after(&page, "id=\"seats\">"), "1 / 無制限");
    // The front page of an administrator is the license page.
    assert_redirect_to(&browser.get(""), "admin");
}

/// `text` as the page wrote it, minijinja's escaping undone.
fn unescape_html(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn screens_admin_pages_before_any_password_say_how_to_set_it() {
    const NOT_SET: &str =
        "管理者パスワードがまだ設定されていないため、管理者ログインはできません。";
    let site = Site::new();
    site.user("takahashi");
    let mut browser = site.browser();
    let mut commands = Vec::new();
    for query in [
        "page=admin",
        "page=admin_login",
        "page=admin_users",
        "page=admin_history&user=1",
        "page=admin_ini",
    ] {
        let page = browser.get(query);
        assert_eq!(page.status(), 503, "{query}: {}", page.body);
        assert!(page.body.contains(NOT_SET), "{query}: {}", page.body);
        assert!(
            !page.body.contains("name=\"password\""),
            "{query}: a login form"
        );
        commands.push(unescape_html(text_after(&page, "<code id=\"command\">")));
    }
    let command = commands[0].clone();
    assert!(commands.iter().all(|c| *c == command), "{commands:?}");

    // A login POST in this state gets the same notice, not "wrong password".
    let answer = browser.post(
        "page=admin_login",
        &[("csrf", "anything"), ("password", ADMIN_PASSWORD)],
    );
    assert_eq!(answer.status(), 503, "{}", answer.body);
    assert!(answer.body.contains(NOT_SET), "{}", answer.body);
    assert!(!answer.body.contains("パスワードが正しくありません"));

    #[cfg(unix)]
    {
        // dncs-sync beside the CGI, told where this install's dncs.ini is, as the CGI's account.
        let sync = PathBuf::from(env!("CARGO_BIN_EXE_dncs-sync"));
        assert!(
            command.ends_with(&format!(
                "env DNCS_INI={} {} admin-password",
                site.ini.display(),
                sync.display()
            )),
            "{command}"
        );
        let id = |flag: &str| {
            let output = Command::new("id").arg(flag).output().expect("id runs");
            let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
            output.status.success().then_some(text)
        };
        let account = id("-un").unwrap_or_else(|| format!("'#{}'", id("-u").expect("a uid")));
        let as_account = format!("sudo -u {account} ");
        assert!(command.starts_with(&as_account), "{command}");

        // The command works as shown (this test already runs as that account, so without sudo).
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command[as_account.len()..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh starts");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{ADMIN_PASSWORD}\n").as_bytes())
            .expect("password written");
        let output = child.wait_with_output().expect("the command ends");
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_redirect_to(&browser.admin_login(ADMIN_PASSWORD), "admin");
    }

    let site = Site::with_ini("LANG=en\r\n");
    let page = site.browser().get("page=admin");
    assert_eq!(page.status(), 503, "{}", page.body);
    assert!(
        page.body.contains(&html(
            "No administrator password has been set yet, so the administrator cannot log in."
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("admin-password</code>"), "{}", page.body);
}

#[test]
fn screens_license_downgrade_disables_and_stops_everyone() {
    let site = Site::with_ini("MAX_USERS=1\r\n");
    site.user("takahashi");
    site.user("sato");
    let store = site.store();
    assert!(
        !store.user_by_id(SATO).expect("read").expect("user").enabled,
        "no seat left for a second user"
    );
    for (id, calendar) in [(TAKAHASHI, "t@example.jp"), (SATO, "s@example.jp")] {
        store.set_enabled(id, true, now()).expect("enable");
        store.set_sync_on(id, true, now()).expect("sync");
        store
            .set_target_and_calendar(id, Target::Google, calendar, now())
            .expect("calendar");
    }
    let mut admin = site.admin();
    let page = admin.get("page=admin");
    assert_eq!(page.status(), 200, "{}", page.body);
    assert!(page.body.contains("すべてのユーザーを無効・停止にしました"));
    assert_eq!(text_after(&page, "id=\"seats\">"), "0 / 1");
    for (id, calendar) in [(TAKAHASHI, "t@example.jp"), (SATO, "s@example.jp")] {
        let user = store.user_by_id(id).expect("read").expect("user");
        assert!(
            !user.enabled && !user.sync_on,
            "{} still on",
            user.login_name
        );
        assert_eq!(user.calendar_id, calendar, "calendar ids are kept");
        assert!(user.has_cybozu_password);
    }
    let users = admin.get("page=admin_users");
    assert_eq!(users.body.matches("<td>無効</td>").count(), 2);
}

#[test]
fn screens_admin_license_page_says_when_the_schedule_does_not_run() {
    const SILENT: &str = "dncs-sync run が 10 分以上起動されていません";
    let site = Site::new();
    site.set_admin_password(ADMIN_PASSWORD);
    let mut admin = site.browser();
    admin.now = Some(T0.to_string());
    assert_eq!(admin.admin_login(ADMIN_PASSWORD).status(), 303);
    let page = admin.get("page=admin");
    assert_eq!(page.status(), 200, "{}", page.body);
    assert_eq!(
        text_after(&page, "id=\"last-run\">"),
        "まだ実行されていません"
    );
    assert!(page.body.contains(SILENT), "{}", page.body);

    // Cron starts it (nobody to sync yet): the page says when, and warns no more.
    let run = |args: &[&str], now: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_dncs-sync"))
            .args(args)
            .env("DNCS_INI", &site.ini)
            .env("DNCS_NOW", now)
            .output()
            .expect("dncs-sync runs");
        assert!(
            output.status.success(),
            "dncs-sync {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&["run"], T0);
    admin.now = Some(at(T0, 1));
    let page = admin.get("page=admin");
    assert_eq!(
        text_after(&page, "id=\"last-run\">"),
        html("2026/11/25 10:00")
    );
    assert!(!page.body.contains(SILENT), "{}", page.body);

    // A pass the button started for one user is not the schedule.
    site.user("takahashi");
    run(&["run", "--user", "takahashi"], &at(T0, 10));
    admin.now = Some(at(T0, 11));
    let page = admin.get("page=admin");
    assert_eq!(
        text_after(&page, "id=\"last-run\">"),
        html("2026/11/25 10:00")
    );
    assert!(
        page.body.contains(SILENT),
        "ten minutes without a start: {}",
        page.body
    );
}

#[test]
fn screens_admin_users_lists_and_changes_status_within_the_license() {
    let site = Site::with_ini("MAX_USERS=1\r\n");
    site.user("takahashi");
    site.user("sato");
    site.store()
        .set_sync_on(TAKAHASHI, true, now())
        .expect("sync on");
    let mut admin = site.admin();
    let page = admin.get("page=admin_users");
    assert_eq!(page.status(), 200, "{}", page.body);
    for shown in [
        "takahashi",
        "高橋 健太",
        "sato",
        "佐藤 美咲",
        "<td>有効</td>",
        "<td>無効</td>",
    ] {
        assert!(page.body.contains(shown), "{shown} in {}", page.body);
    }
    assert!(page.body.contains("page=admin_history&amp;user=2"));

    let answer = admin.submit(
        "page=admin_users",
        "page=admin_users",
        &[("action", "disable"), ("user_1", "1")],
    );
    assert_eq!(answer.status(), 200, "{}", answer.body);
    assert!(answer.body.contains("利用ステータスを変更しました。"));
    let takahashi = site.stored_user(TAKAHASHI);
    assert!(!takahashi.enabled && !takahashi.sync_on, "無効 and 停止");

    let answer = admin.submit(
        "page=admin_users",
        "page=admin_users",
        &[("action", "enable"), ("user_1", "1"), ("user_2", "1")],
    );
    assert_eq!(answer.status(), 400, "{}", answer.body);
    assert!(answer
        .body
        .contains("ライセンス数を超えるため、有効にできません。"));
    let store = site.store();
    assert!(
        !store
            .user_by_id(TAKAHASHI)
            .expect("read")
            .expect("user")
            .enabled
    );
    assert!(!store.user_by_id(SATO).expect("read").expect("user").enabled);

    let answer = admin.submit(
        "page=admin_users",
        "page=admin_users",
        &[("action", "enable"), ("user_2", "1")],
    );
    assert_eq!(answer.status(), 200, "{}", answer.body);
    assert!(store.user_by_id(SATO).expect("read").expect("user").enabled);
    assert_eq!(
        text_after(&admin.get("page=admin"), "id=\"seats\">"),
        "1 / 1"
    );
}

#[test]
fn screens_admin_sees_any_users_history() {
    let site = Site::new();
    site.user("takahashi");
    site.user("sato");
    let started = utc("2026-11-20T01:00:00Z");
    site.store()
        .append_history(
            SATO,
            started,
            started + Duration::seconds(3),
            &PassCounts {
                cybozu_created: 2,
                ..PassCounts::default()
            },
            &["Googleカレンダーに接続できませんでした。".into()],
        )
        .expect("history");
    let mut admin = site.admin();
    let page = admin.get("page=admin_history&user=2");
    assert_eq!(page.status(), 200, "{}", page.body);
    assert!(page.body.contains("佐藤 美咲 さんの同期履歴"));
    assert!(page.body.contains(&html("2026/11/20 10:00")));
    assert!(page
        .body
        .contains("Googleカレンダーに接続できませんでした。"));
    let other = admin.get("page=admin_history&user=1");
    assert!(other.body.contains("同期履歴はまだありません。"));
    assert_eq!(admin.get("page=admin_history&user=99").status(), 404);
}

#[test]
fn screens_admin_history_of_an_unknown_or_malformed_user_says_so_and_links_to_users() {
    struct Words {
        ini: &'static str,
        not_found: &'static str,
        bad_id: &'static str,
        no_users: &'static str,
        users: &'static str,
    }
    let languages = [
        Words {
            ini: "",
            not_found: "ID 999 のユーザーは見つかりません。",
            bad_id: "表示するユーザーの指定（user=）が正しくありません。",
            no_users: "まだユーザーがいません",
            users: "ユーザー設定",
        },
        Words {
            ini: "LANG=en\r\n",
            not_found: "There is no user with ID 999.",
            bad_id: "The user to show (user=) is missing or not a user ID.",
            no_users: "No users yet",
            users: "Users",
        },
    ];
    for words in languages {
        let site = Site::with_ini(words.ini);
        site.user("takahashi");
        let mut admin = site.admin();
        let link_to_users = format!(
            "<a href=\"{}\">{}</a>",
            html(&format!("{SCRIPT_NAME}?page=admin_users")),
            words.users
        );
        for (query, status, text) in [
            ("page=admin_history&user=999", 404, words.not_found),
            ("page=admin_history&user=abc", 400, words.bad_id),
            ("page=admin_history&user=", 400, words.bad_id),
            ("page=admin_history", 400, words.bad_id),
        ] {
            let page = admin.get(query);
            assert_eq!(page.status(), status, "{query}: {}", page.body);
            assert!(page.body.contains(&html(text)), "{query}: {}", page.body);
            assert!(
                !page.body.contains(words.no_users),
                "{query}: {}",
                page.body
            );
            assert!(page.body.contains(&link_to_users), "{query}: {}", page.body);
        }
    }
}

#[test]
fn screens_admin_bulk_status_without_users_or_an_action_changes_nothing() {
    let site = Site::new();
    site.user("takahashi");
    site.user("sato");
    let mut admin = site.admin();
    let enabled = |id: i64| site.stored_user(id).enabled;
    const NONE_SELECTED: &str = "ユーザーが選択されていないため、何も変更していません。";
    const NO_ACTION: &str =
        "操作（有効にする・無効にする）が指定されていないため、何も変更していません。";
    let refused: [(&[(&str, &str)], &str); 5] = [
        (&[("action", "disable")], NONE_SELECTED),
        (&[("action", "disable"), ("user_999", "1")], NONE_SELECTED),
        (&[("action", "disable"), ("user_1", "0")], NONE_SELECTED),
        (&[("user_1", "1"), ("user_2", "1")], NO_ACTION),
        (&[("action", "delete"), ("user_1", "1")], NO_ACTION),
    ];
    for (fields, message) in refused {
        let answer = admin.submit("page=admin_users", "page=admin_users", fields);
        assert_eq!(answer.status(), 400, "{fields:?}: {}", answer.body);
        assert!(
            answer.body.contains(&html(message)),
            "{fields:?}: {}",
            answer.body
        );
        assert!(
            !answer.body.contains("利用ステータスを変更しました。"),
            "{fields:?}: {}",
            answer.body
        );
        assert!(
            enabled(TAKAHASHI) && enabled(SATO),
            "{fields:?} changed a user"
        );
    }

    // Enabling users who are enabled changes nothing, and says so.
    let answer = admin.submit(
        "page=admin_users",
        "page=admin_users",
        &[("action", "enable"), ("user_1", "1")],
    );
    assert_eq!(answer.status(), 200, "{}", answer.body);
    assert_eq!(
        notice(&answer),
        "選択したユーザーはすでにその利用ステータスのため、何も変更していません。"
    );
    assert!(enabled(TAKAHASHI));
}

#[test]
fn screens_admin_ini_masks_secrets() {
    let site = Site::with_ini(
        "GOOGLE_CLIENT_ID=client-id-visible.apps.googleusercontent.com\r\n\
         GOOGLE_CLIENT_SECRET=GOCSPX-very-secret-value\r\n\
         PROXY=http://proxyuser:Proxy-Pass-8841@proxy.example.jp:3128\r\n\
         SYNC_THREADS=3\r\n",
    );
    let mut admin = site.admin();
    let page = admin.get("page=admin_ini");
    assert_eq!(page.status(), 200, "{}", page.body);
    for shown in [
        "<th>CYBOZU_URL</th>",
        &html(&site.sim.url()),
        "<th>GOOGLE_CLIENT_ID</th>",
        "client-id-visible.apps.googleusercontent.com",
        "<th>GOOGLE_CLIENT_SECRET</th>",
        "<th>PROXY</th>",
        "proxy.example.jp:3128",
        "<th>SYNC_THREADS</th><td>3</td>",
        "<th>MAX_USERS</th><td>0</td>",
    ] {
        assert!(page.body.contains(shown), "{shown} in {}", page.body);
    }
    assert!(!page.body.contains("GOCSPX-very-secret-value"));
    assert!(!page.body.contains("Proxy-Pass-8841"));
    assert!(!text_after(&page, "<th>GOOGLE_CLIENT_SECRET</th><td>").is_empty());
}

// ---------------------------------------------------------------- escaping and limits

#[test]
fn screens_cybozu_names_history_errors_and_typed_logins_are_escaped() {
    let site = Site::new();
    let payload = "<script>alert(1)</script>";
    site.sim
        .company()
        .accounts
        .iter_mut()
        .find(|account| account.login == "takahashi")
        .expect("takahashi")
        .user
        .name = payload.into();
    let mut browser = site.user("takahashi");
    let started = utc("2026-11-20T01:00:00Z");
    site.store()
        .append_history(
            TAKAHASHI,
            started,
            started,
            &PassCounts::default(),
            &["予定「<script>alert(2)</script>」を書き込めませんでした。".into()],
        )
        .expect("history");
    let mut pages = vec![
        ("settings", browser.get("page=settings")),
        ("history", browser.get("page=history")),
    ];
    let mut admin = site.admin();
    pages.push(("admin_users", admin.get("page=admin_users")));
    pages.push(("admin_history", admin.get("page=admin_history&user=1")));
    for (name, page) in &pages {
        assert_eq!(page.status(), 200, "{name}");
        assert!(!page.body.contains("<script"), "{name}: {}", page.body);
    }
    assert!(pages[0].1.body.contains(&html("<script>alert(1)</script>")));
    assert!(pages[1].1.body.contains(&html("<script>alert(2)</script>")));
    assert!(pages[2].1.body.contains(&html("<script>alert(1)</script>")));

    let mut visitor = site.browser();
    let answer = visitor.login("\"><script>alert(3)</script>", "x");
    assert_eq!(answer.status(), 401, "{}", answer.body);
    assert!(!answer.body.contains("<script"), "{}", answer.body);
    // Echoed inside the field, which the quote cannot close.
    assert!(answer.body.contains(&format!(
        "name=\"login\" value=\"{}\"",
        html("\"><script>alert(3)</script>")
    )));
}

#[test]
fn screens_an_oversized_settings_post_is_413() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let token = csrf(&browser.get("page=settings"));
    let mut body = form_encode(&[("csrf", &token), ("sync_on", "on"), ("calendar_id", "x")]);
    body.push_str("&filler=");
    body.push_str(&"a".repeat(65 * 1024));
    let answer = browser.send(
        "POST",
        "page=settings",
        Some("application/x-www-form-urlencoded"),
        body.as_bytes(),
    );
    assert_eq!(answer.status(), 413, "{}", answer.body);
    assert!(answer.body.contains("送信されたデータが大きすぎます"));
    let user = site.stored_user(TAKAHASHI);
    assert!(!user.sync_on && user.calendar_id.is_empty());
}

// ---------------------------------------------------------------- language, stylesheet, dncs-dev

#[test]
fn screens_lang_en_shows_the_login_page_in_english() {
    let site = Site::with_ini("LANG=en\r\n");
    let mut browser = site.browser();
    let page = browser.get("");
    assert_eq!(page.status(), 200);
    assert!(page.body.contains("<html lang=\"en\">"));
    assert!(page
        .body
        .contains("Log in with your Cybozu Office login name and password."));
    assert!(page.body.contains("Login name"));
    assert!(!page.body.contains("ログイン名"));
    let answer = browser.login("takahashi", "wrong");
    assert!(answer
        .body
        .contains("The login name or password is not correct."));
}

#[test]
fn screens_the_stylesheet_is_css_and_cacheable() {
    let site = Site::new();
    let answer = site.browser().get("page=css&v=0.1.0");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.header("Content-Type"),
        Some("text/css; charset=utf-8")
    );
    let cache = answer.header("Cache-Control").expect("Cache-Control");
    assert!(cache.starts_with("public, max-age="), "{cache}");
    assert!(!cache.contains("no-store"));
    assert!(answer.body.contains('{'), "a stylesheet: {}", answer.body);
}

#[test]
fn screens_dncs_dev_serves_the_login_and_settings_over_http() {
    let root = tempfile::tempdir().expect("temp dir");
    let demo = dncs::dev::Demo::start(
        PathBuf::from(env!("CARGO_BIN_EXE_dncs")),
        0,
        root.path().to_path_buf(),
    )
    .expect("the demo starts");
    let url = demo.cgi.url();
    assert!(url.ends_with(SCRIPT_NAME), "{url}");
    let agent = crate::util::agent();

    let mut form = agent.get(&url).call().expect("the login page");
    assert_eq!(form.status().as_u16(), 200);
    let login_cookie = cookie_pair(form.headers(), "dncs_login");
    let body = form.body_mut().read_to_string().expect("body");
    assert!(body.contains("ログイン名"), "{body}");
    let token = csrf(&CgiAnswer {
        status_line: "Status: 200 OK".into(),
        headers: Vec::new(),
        body,
    });

    let answer = agent
        .post(&format!("{url}?page=login"))
        .config()
        .max_redirects(0)
        .build()
        .header("Cookie", &login_cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form_encode(&[
            ("csrf", &token),
            ("login", "takahashi"),
            ("password", "takahashi"),
        ]))
        .expect("the login answers");
    assert_eq!(answer.status().as_u16(), 303);
    let session = cookie_pair(answer.headers(), "dncs_session");

    let mut page = agent
        .get(&format!("{url}?page=settings"))
        .header("Cookie", &session)
        .call()
        .expect("the settings page");
    assert_eq!(page.status().as_u16(), 200);
    let body = page.body_mut().read_to_string().expect("body");
    assert!(body.contains("id=\"state\""), "{body}");
    assert!(body.contains("高橋 健太"), "{body}");
}

/// `name=value` of the `Set-Cookie` header for `name`.
fn cookie_pair(headers: &ureq::http::HeaderMap, name: &str) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .and_then(|value| value.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
        .to_owned()
}

/// `dncs-sync import-legacy`, run as an administrator does after an overwrite install.
fn import_legacy(site: &Site, csv: &str) -> std::process::Output {
    let file = site.root.path().join("links.csv");
    std::fs::write(&file, csv).expect("csv written");
    Command::new(env!("CARGO_BIN_EXE_dncs-sync"))
        .arg("import-legacy")
        .arg(&file)
        .env("DNCS_INI", &site.ini)
        .output()
        .expect("dncs-sync runs")
}

#[test]
fn screens_imported_legacy_links_keep_users_linked_after_an_overwrite_install() {
    let site = Site::new();
    let output = import_legacy(
        &site,
        "login_name,refresh_token,calendar_id,flow,password\r\n\
         takahashi,1//legacy-oob-token,takahashi@example.jp,oob\r\n\
         sato,1//legacy-relay-token,,relay,sato\r\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("linked now: 1") && stdout.contains("waiting for their first login: 1"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("legacy-oob-token"),
        "tokens are never printed"
    );

    // sato's password was exported: linked at once, and syncing.
    let store = site.store();
    let sato = store
        .user_by_id(SATO)
        .expect("read")
        .expect("sato is known now");
    assert!(sato.enabled && sato.sync_on);
    assert_eq!(
        store.google_refresh_token(SATO).expect("read").as_deref(),
        Some("1//legacy-relay-token")
    );

    // takahashi's link waited for the first login, which applies it.
    assert!(store.user_by_id(TAKAHASHI).expect("read").is_none());
    let mut takahashi = site.user("takahashi");
    let page = takahashi.get("page=settings");
    assert!(
        page.body.contains("認証済(再認証が必要です)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("takahashi@example.jp"));
    assert_eq!(state(&page), "同期中");
    let mut sato_browser = site.user("sato");
    let page = sato_browser.get("page=settings");
    assert!(page.body.contains("認証済です"), "{}", page.body);
}

#[test]
fn screens_a_broken_legacy_file_names_its_lines() {
    let site = Site::new();
    let output = import_legacy(
        &site,
        "takahashi,1//tok,cal,magic\nsato,1//tok,,oob,wrong-password\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 1") && stderr.contains("magic"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 2") && stderr.contains("sato"),
        "{stderr}"
    );
    // The refused password leaves sato's link waiting for the first login instead.
    assert!(site
        .store()
        .take_legacy_link("sato")
        .expect("read")
        .is_some());
}

#[test]
fn screens_a_caldav_calendar_that_cannot_be_reached_is_not_saved() {
    let site = Site::new();
    let mut browser = site.user("takahashi");
    let answer = browser.save_settings(&[
        ("target", "caldav"),
        ("caldav_url", "http://127.0.0.1:9/calendars/takahashi/"),
        ("caldav_user", "takahashi"),
        ("caldav_password", "pw"),
    ]);
    assert_eq!(answer.status(), 400, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("CalDAV サーバーに接続できませんでした"),
        "{}",
        answer.body
    );
    // What was typed stays on the page; nothing was stored.
    assert!(
        answer
            .body
            .contains("http:&#x2f;&#x2f;127.0.0.1:9&#x2f;calendars&#x2f;takahashi&#x2f;"),
        "{}",
        answer.body
    );
    let user = site.stored_user(TAKAHASHI);
    assert_eq!(user.target, dncs::store::Target::Google);
    assert!(user.caldav_url.is_empty() && !user.has_caldav_password);
}
