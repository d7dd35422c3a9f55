//! Google account linking (認証 on 同期設定) end to end: the real `dncs` CGI (through the `harness`
//! browser), the simulated Cybozu Office for the login and the simulated Google for the consent
//! page and the token endpoint. In relay mode the test plays the relay page's part (it takes `code`
//! and `state` from Google's redirect and opens the CGI's callback in the same browser); the page
//! itself is checked statically, and under node when node is installed.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use dncs::google::oauth::CALENDAR_SCOPE;
use dncs::sim::google::{Consent, GoogleSim};
use dncs::store::{GoogleClient, Provenance};

use crate::harness::{
    at, csrf, form_encode, html, text_after, Browser, GoogleIni, Site, RELAY_URI, SATO, T0,
    TAKAHASHI,
};
use crate::util::{
    agent, location, press_consent, query_pairs, query_value, redirect_agent, utc, CgiAnswer,
    SCRIPT_NAME,
};

/// The CGI's callback as the web server's `HTTP_HOST` and `SCRIPT_NAME` (set by the harness) name it.
fn callback_url(scheme: &str) -> String {
    format!("{scheme}://cybozu.example.jp{SCRIPT_NAME}?page=google_callback")
}

/// The JSON inside a state's first (unsigned, readable) part.
fn state_payload(state: &str) -> serde_json::Value {
    let (body, _) = state.split_once('.').expect("body.signature");
    let json = URL_SAFE_NO_PAD.decode(body).expect("base64url");
    serde_json::from_slice(&json).expect("JSON")
}

/// `Google 認証` on the settings page.
fn google_state(page: &CgiAnswer) -> String {
    text_after(page, "id=\"google-state\">").to_owned()
}

/// Presses 認証 on 同期設定 (the form's CSRF token included) and returns the URL of Google's
/// authorization page the CGI sends the browser to.
fn press_authorize(browser: &mut Browser<'_>, sim: &GoogleSim) -> String {
    let answer = browser.submit("page=settings", "page=google_auth", &[]);
    assert_eq!(answer.status(), 303, "{}", answer.body);
    let location = answer.header("Location").expect("Location").to_owned();
    assert!(
        location.starts_with(&format!("{}?", sim.auth_url())),
        "sent to {location}"
    );
    location
}

/// Google's answer when the consent is decided without a page (`set_consent`): the `Location`
/// of its redirect back to `redirect_uri`.
fn google_answers(auth_url: &str) -> String {
    let answer = redirect_agent().get(auth_url).call().expect("Google");
    assert_eq!(answer.status(), 302, "Google's answer");
    location(&answer)
}

/// Plays the relay page: takes what Google sent to it and opens the CGI's callback with the same
/// `code` (or `error`) and `state` in the same browser.
fn relay(browser: &mut Browser<'_>, google_redirect: &str) -> CgiAnswer {
    assert!(
        google_redirect.starts_with(&format!("{RELAY_URI}?")),
        "Google returned to {google_redirect}"
    );
    let state = query_value(google_redirect, "state").expect("state");
    let mut fields = vec![("page", "google_callback".to_owned())];
    match query_value(google_redirect, "error") {
        Some(error) => fields.push(("error", error)),
        None => fields.push(("code", query_value(google_redirect, "code").expect("code"))),
    }
    fields.push(("state", state));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.get(&form_encode(&fields))
}

/// A site in relay mode whose Google answers the consent with 許可 at once.
fn relay_site(sim: &GoogleSim) -> Site {
    sim.set_consent(Consent::Allow);
    Site::with_google(&GoogleIni::relay(sim))
}

/// Starts an authorization and lets Google allow it: the redirect back to the relay page.
fn authorized(browser: &mut Browser<'_>, sim: &GoogleSim) -> String {
    google_answers(&press_authorize(browser, sim))
}

fn assert_linked(page: &CgiAnswer, site: &Site, provenance: Provenance) {
    assert_eq!(page.status(), 303, "{}", page.body);
    let location = page.header("Location").expect("Location");
    assert_eq!(location, format!("{SCRIPT_NAME}?page=settings&done=linked"));
    let store = site.store();
    let user = store.user_by_id(TAKAHASHI).expect("read").expect("user");
    let link = user.google.expect("a Google link");
    assert_eq!(link.provenance, provenance);
    assert_eq!(link.client, GoogleClient::Current);
    assert!(!link.asks_for_relink());
    let refresh = store
        .google_refresh_token(TAKAHASHI)
        .expect("read")
        .expect("a refresh token");
    assert!(refresh.starts_with("1//sim-"), "{refresh}");
    let access = store
        .google_access_token(TAKAHASHI)
        .expect("read")
        .expect("an access token");
    assert!(access.token.starts_with("ya29.sim-"), "{}", access.token);
}

/// Nothing stored: no refresh token, and the screen still says 未認証.
fn assert_not_linked(site: &Site, browser: &mut Browser<'_>, user_id: i64) {
    let store = site.store();
    assert_eq!(store.google_refresh_token(user_id).expect("read"), None);
    assert_eq!(store.google_access_token(user_id).expect("read"), None);
    assert!(store
        .user_by_id(user_id)
        .expect("read")
        .expect("user")
        .google
        .is_none());
    let page = browser.get("page=settings");
    assert_eq!(page.status(), 200, "{}", page.body);
    assert_eq!(google_state(&page), "未認証");
}

/// A refusal page: status `status` with the sentence of i18n `text`.
fn assert_refused(answer: &CgiAnswer, status: u16, text: &str) {
    assert_eq!(answer.status(), status, "{}", answer.body);
    assert!(
        answer.body.contains(&html(text)),
        "{text:?} missing from {}",
        answer.body
    );
    assert!(answer.header("Location").is_none());
}

const BAD_STATE: &str = "この認証の応答は無効です";

/// The code exchange the simulator recorded (recording on).
fn token_request(sim: &GoogleSim) -> dncs::sim::google::Exchange {
    sim.take_exchanges()
        .into_iter()
        .find(|e| e.path == "/token")
        .expect("a token request")
}

/// Authorizations waiting for their callback, read from the database file.
fn pending_flows(site: &Site) -> i64 {
    let path = site
        .root
        .path()
        .join("data")
        .join(dncs::store::DATABASE_FILE);
    let db = rusqlite::Connection::open(path).expect("database");
    db.query_row("SELECT COUNT(*) FROM oauth_flows", [], |row| row.get(0))
        .expect("count")
}

// ---------------------------------------------------------------- linking

#[test]
fn google_link_relay_mode_over_http_links_through_the_consent_page() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = Site::with_google(&GoogleIni::relay(&sim));
    let mut browser = site.user("takahashi");
    assert_eq!(google_state(&browser.get("page=settings")), "未認証");

    let auth_url = press_authorize(&mut browser, &sim);
    let expect = |name: &str, value: &str| {
        assert_eq!(
            query_value(&auth_url, name).as_deref(),
            Some(value),
            "{name} in {auth_url}"
        );
    };
    expect("client_id", sim.client_id());
    expect("response_type", "code");
    expect("redirect_uri", RELAY_URI);
    expect("code_challenge_method", "S256");
    expect("access_type", "offline");
    expect("prompt", "consent");
    expect("scope", CALENDAR_SCOPE);
    let challenge = query_value(&auth_url, "code_challenge").expect("code_challenge");
    assert_eq!(challenge.len(), 43, "a SHA-256 in base64url: {challenge}");
    assert!(query_value(&auth_url, "code_verifier").is_none());
    let state = query_value(&auth_url, "state").expect("state");
    let payload = state_payload(&state);
    assert_eq!(payload["cb"], callback_url("http"), "{payload}");
    assert!(payload["sid"].as_str().is_some_and(|sid| !sid.is_empty()));
    assert_eq!(pending_flows(&site), 1);

    // Google's consent page over real HTTP, and its 許可 button.
    let back = press_consent(&sim, &auth_url, "allow");
    assert_eq!(query_value(&back, "state").as_deref(), Some(state.as_str()));

    let linked = relay(&mut browser, &back);
    assert_linked(&linked, &site, Provenance::Relay);
    assert_eq!(pending_flows(&site), 0, "the flow is used up");
    let settings = browser.follow(&linked);
    assert_eq!(settings.status(), 200);
    assert!(
        settings.body.contains("Google の認証が完了しました。"),
        "{}",
        settings.body
    );
    assert_eq!(google_state(&settings), "認証済です");
    let refresh = site
        .store()
        .google_refresh_token(TAKAHASHI)
        .expect("read")
        .expect("a refresh token");
    assert!(
        !settings.body.contains(&refresh),
        "the token is never shown"
    );
    // What was stored is a grant Google knows for this client, as the sync pass will use it.
    dncs::google::token::refresh(
        &agent(),
        &sim.token_url(),
        sim.client_id(),
        sim.client_secret(),
        &refresh,
        utc("2026-11-25T01:00:00Z"),
    )
    .expect("the stored refresh token works");
}

#[test]
fn google_link_direct_mode_returns_to_the_cgis_own_https_url() {
    let sim = GoogleSim::start().expect("Google simulator");
    sim.set_consent(Consent::Allow);
    sim.record(true);
    let site = Site::with_google(&GoogleIni::direct(&sim));
    let mut browser = site.browser();
    browser.https = true;
    let login = browser.login("takahashi", "takahashi");
    assert_eq!(login.status(), 303, "{}", login.body);

    let auth_url = press_authorize(&mut browser, &sim);
    let own = callback_url("https");
    assert_eq!(
        query_value(&auth_url, "redirect_uri").as_deref(),
        Some(own.as_str())
    );
    let state = query_value(&auth_url, "state").expect("state");
    assert_eq!(state_payload(&state)["cb"], own);

    // Google redirects the browser straight to the CGI.
    let back = google_answers(&auth_url);
    let query = back
        .strip_prefix(&format!("https://cybozu.example.jp{SCRIPT_NAME}?"))
        .unwrap_or_else(|| panic!("Google returned to {back}"));
    let linked = browser.get(query);
    assert_linked(&linked, &site, Provenance::Direct);
    assert_eq!(google_state(&browser.follow(&linked)), "認証済です");

    // The code exchange sent the same redirect_uri (the simulator refuses a mismatch anyway).
    let exchange = token_request(&sim);
    assert_eq!(exchange.status, 200, "{}", exchange.response);
    let sent = query_pairs(&format!("?{}", exchange.request));
    assert!(
        sent.contains(&("redirect_uri".to_owned(), own.clone())),
        "{sent:?}"
    );
    assert!(sent.iter().any(|(k, _)| k == "code_verifier"), "{sent:?}");
}

// ---------------------------------------------------------------- refused callbacks

#[test]
fn google_link_a_tampered_state_is_refused_and_stores_nothing() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut browser = site.user("takahashi");
    let back = authorized(&mut browser, &sim);
    let state = query_value(&back, "state").expect("state");
    let code = query_value(&back, "code").expect("code");
    let callback = |state: &str| {
        form_encode(&[
            ("page", "google_callback"),
            ("code", code.as_str()),
            ("state", state),
        ])
    };

    // One character of the signature flipped (in the middle: the last one carries spare bits).
    let (body, signature) = state.split_once('.').expect("two parts");
    let mut flipped: Vec<char> = signature.chars().collect();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    let answer = browser.get(&callback(&format!("{body}.{flipped}")));
    assert_refused(&answer, 400, BAD_STATE);
    assert_not_linked(&site, &mut browser, TAKAHASHI);

    // The JSON edited (the callback sent elsewhere) and signed again with another key.
    let mut payload = state_payload(&state);
    payload["cb"] = "http://evil.example/dncs.cgi?page=google_callback".into();
    let forged_body = URL_SAFE_NO_PAD.encode(payload.to_string());
    let forged_signature =
        dncs::hash::hmac_sha256(b"another install's key", forged_body.as_bytes());
    let forged = format!("{forged_body}.{}", URL_SAFE_NO_PAD.encode(forged_signature));
    let answer = browser.get(&callback(&forged));
    assert_refused(&answer, 400, BAD_STATE);
    // And the edited JSON with the genuine signature.
    let answer = browser.get(&callback(&format!("{forged_body}.{signature}")));
    assert_refused(&answer, 400, BAD_STATE);
    assert_not_linked(&site, &mut browser, TAKAHASHI);

    // The refusals were the tampering alone: the genuine answer still links.
    assert_linked(&browser.get(&callback(&state)), &site, Provenance::Relay);
}

#[test]
fn google_link_a_replayed_state_is_refused_and_the_first_link_stays() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut browser = site.user("takahashi");
    let back = authorized(&mut browser, &sim);
    assert_linked(&relay(&mut browser, &back), &site, Provenance::Relay);
    let store = site.store();
    let first = store.google_refresh_token(TAKAHASHI).expect("read");

    let again = relay(&mut browser, &back);
    assert_refused(&again, 400, BAD_STATE);
    assert_eq!(store.google_refresh_token(TAKAHASHI).expect("read"), first);
    assert_eq!(google_state(&browser.get("page=settings")), "認証済です");
}

#[test]
fn google_link_an_expired_state_is_refused() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut browser = site.browser();
    browser.now = Some(at(T0, 0));
    let login = browser.login("takahashi", "takahashi");
    assert_eq!(login.status(), 303, "{}", login.body);
    let back = authorized(&mut browser, &sim);

    browser.now = Some(at(T0, 11));
    let late = relay(&mut browser, &back);
    assert_refused(&late, 400, "認証の有効期限（10分）が切れました。");
    assert_not_linked(&site, &mut browser, TAKAHASHI);

    // Only the time made the difference: the same answer within the 10 minutes links.
    browser.now = Some(at(T0, 9));
    assert_linked(&relay(&mut browser, &back), &site, Provenance::Relay);
}

#[test]
fn google_link_a_state_from_another_session_is_refused() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut takahashi = site.user("takahashi");
    let back = authorized(&mut takahashi, &sim);

    // Another user's browser: the state is genuine but not this session's.
    let mut sato = site.user("sato");
    assert_refused(&relay(&mut sato, &back), 400, BAD_STATE);
    assert_not_linked(&site, &mut sato, SATO);
    assert_not_linked(&site, &mut takahashi, TAKAHASHI);

    // A browser with no session at all (a mailed link).
    let mut stranger = site.browser();
    assert_refused(
        &relay(&mut stranger, &back),
        403,
        "認証を始めたときのログインが見つかりません。",
    );
    assert_not_linked(&site, &mut takahashi, TAKAHASHI);
    assert_not_linked(&site, &mut sato, SATO);

    // The foreign attempts did not use the flow up: its own session still finishes it.
    assert_linked(&relay(&mut takahashi, &back), &site, Provenance::Relay);
    assert_not_linked(&site, &mut sato, SATO);
}

#[test]
fn google_link_a_code_answered_with_another_flows_verifier_is_refused() {
    // The verifier is sealed in `oauth_flows` and never leaves the server, so the test cannot
    // edit it. Instead it makes Google see a wrong one: two authorizations in one session, and
    // the first flow's state answered with the second flow's code. The CGI then exchanges code B
    // (issued for challenge B) with verifier A. Both flows share client and redirect_uri, so the
    // PKCE check is the only one that can fail — the recorded token reply confirms it.
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut browser = site.user("takahashi");
    let first = authorized(&mut browser, &sim);
    let second = authorized(&mut browser, &sim);
    assert_eq!(pending_flows(&site), 2);
    let mixed = format!(
        "{RELAY_URI}?code={}&state={}",
        dncs::google::encode_component(&query_value(&second, "code").expect("code")),
        dncs::google::encode_component(&query_value(&first, "state").expect("state")),
    );
    sim.record(true);
    let answer = relay(&mut browser, &mixed);
    assert_refused(&answer, 400, "認証コードが無効か期限切れです。");
    let exchange = token_request(&sim);
    assert_eq!(exchange.status, 400);
    assert!(
        exchange.response.contains("Invalid code verifier"),
        "{}",
        exchange.response
    );
    assert_not_linked(&site, &mut browser, TAKAHASHI);
}

#[test]
fn google_link_refusals_at_google_show_their_sentences() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut browser = site.user("takahashi");

    // 拒否: Google returns to the relay page with error=access_denied.
    sim.set_consent(Consent::Deny);
    let denied = authorized(&mut browser, &sim);
    assert_eq!(
        query_value(&denied, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_value(&denied, "code"), None);
    assert_refused(
        &relay(&mut browser, &denied),
        400,
        "Google での許可が拒否されました。",
    );
    assert_not_linked(&site, &mut browser, TAKAHASHI);

    // Workspace refusals, as the error a callback carries with a genuine state.
    for (consent, error, sentence) in [
        (
            Consent::AdminPolicyEnforced,
            "admin_policy_enforced",
            "Google Workspace の管理者が、このアプリによるカレンダーへのアクセスを制限しています。",
        ),
        (
            Consent::OrgInternal,
            "org_internal",
            "この OAuth クライアントは別の組織の内部向けに設定されているため",
        ),
    ] {
        sim.set_consent(consent);
        let auth_url = press_authorize(&mut browser, &sim);
        let mut google_page = redirect_agent().get(&auth_url).call().expect("Google");
        assert!(google_page.status().is_client_error());
        let text = google_page.body_mut().read_to_string().expect("html");
        assert!(text.contains(error), "{text}");
        let state = query_value(&auth_url, "state").expect("state");
        let answer = relay(
            &mut browser,
            &format!("{RELAY_URI}?error={error}&state={state}"),
        );
        assert_refused(&answer, 400, sentence);
        assert_not_linked(&site, &mut browser, TAKAHASHI);
    }
    assert_eq!(pending_flows(&site), 0, "every refused flow is used up");
}

// ---------------------------------------------------------------- configuration and CSRF

#[test]
fn google_link_without_a_client_id_is_503_naming_the_keys() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = Site::with_google(&GoogleIni {
        client_id: None,
        ..GoogleIni::relay(&sim)
    });
    let mut browser = site.user("takahashi");
    let answer = browser.submit("page=settings", "page=google_auth", &[]);
    assert_eq!(answer.status(), 503, "{}", answer.body);
    assert!(answer.body.contains("GOOGLE_CLIENT_ID"), "{}", answer.body);
    assert!(
        answer.body.contains("GOOGLE_CLIENT_SECRET"),
        "{}",
        answer.body
    );
    assert_eq!(pending_flows(&site), 0);
    assert_not_linked(&site, &mut browser, TAKAHASHI);
}

#[test]
fn google_link_relay_mode_without_the_relay_address_is_503() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = Site::with_google(&GoogleIni {
        redirect_uri: None,
        ..GoogleIni::relay(&sim)
    });
    let mut browser = site.user("takahashi");
    let answer = browser.submit("page=settings", "page=google_auth", &[]);
    assert_eq!(answer.status(), 503, "{}", answer.body);
    assert!(
        answer.body.contains("GOOGLE_REDIRECT_URI"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("GOOGLE_AUTH_MODE=relay"),
        "{}",
        answer.body
    );
    assert_eq!(pending_flows(&site), 0);
    assert_not_linked(&site, &mut browser, TAKAHASHI);
}

#[test]
fn google_link_authorize_without_the_csrf_token_starts_nothing() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut browser = site.user("takahashi");
    let settings = browser.get("page=settings");
    let token = csrf(&settings);
    for answer in [
        browser.post("page=google_auth", &[]),
        browser.post("page=google_auth", &[("csrf", "not-the-token")]),
        // A link or an image pointing at the route is a GET: refused too.
        browser.get(&format!("page=google_auth&csrf={token}")),
    ] {
        assert_refused(&answer, 403, "画面の有効期限が切れたか、不正な送信です。");
    }
    assert_eq!(pending_flows(&site), 0, "no authorization started");
    assert_not_linked(&site, &mut browser, TAKAHASHI);
    // The same form with its token does start one.
    press_authorize(&mut browser, &sim);
    assert_eq!(pending_flows(&site), 1);
}

#[test]
fn google_link_keeps_what_the_user_chose_on_the_page_before_pressing_authorize() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut browser = site.user("takahashi");
    // 同期 and a calendar chosen, then 認証 pressed instead of 保存: the same form.
    let calendar = "team@group.calendar.google.com";
    let answer = browser.submit(
        "page=settings",
        "page=google_auth",
        &[
            ("target", "google"),
            ("sync_on", "on"),
            ("calendar_id", calendar),
        ],
    );
    assert_eq!(answer.status(), 303, "{}", answer.body);
    let back = google_answers(answer.header("Location").expect("Location"));
    let linked = relay(&mut browser, &back);
    assert_linked(&linked, &site, Provenance::Relay);
    let settings = browser.follow(&linked);
    assert_eq!(text_after(&settings, "id=\"state\">"), "同期中");
    assert!(
        settings.body.contains(&format!("value=\"{calendar}\"")),
        "{}",
        settings.body
    );
    let user = site
        .store()
        .user_by_id(TAKAHASHI)
        .expect("read")
        .expect("user");
    assert!(user.sync_on);
    assert_eq!(user.calendar_id, calendar);
}

#[test]
fn google_link_a_form_that_cannot_be_saved_stays_on_the_page_and_starts_nothing() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    let mut browser = site.user("takahashi");
    let answer = browser.submit(
        "page=settings",
        "page=google_auth",
        &[
            ("target", "google"),
            ("sync_on", "on"),
            ("caldav_url", "ftp://calendar.example.jp/"),
        ],
    );
    assert_eq!(answer.status(), 400, "{}", answer.body);
    assert!(answer.header("Location").is_none(), "not sent to Google");
    assert!(answer.body.contains("id=\"state\""), "the settings page");
    assert_eq!(pending_flows(&site), 0, "no authorization started");
    let user = site
        .store()
        .user_by_id(TAKAHASHI)
        .expect("read")
        .expect("user");
    assert!(!user.sync_on, "nothing of the refused form is saved");
    assert_not_linked(&site, &mut browser, TAKAHASHI);
}

// ---------------------------------------------------------------- the relay page

const RELAY_PAGE: &str = include_str!("../install/relay/index.html");
const RELAY_README: &str = include_str!("../install/relay/README.md");

/// The text of the page's one inline script, exactly as the browser hashes it.
fn relay_script() -> &'static str {
    let start = RELAY_PAGE.find("<script>").expect("a script") + "<script>".len();
    let end = RELAY_PAGE.find("</script>").expect("the script ends");
    assert_eq!(RELAY_PAGE.matches("<script").count(), 1, "one script only");
    &RELAY_PAGE[start..end]
}

#[test]
fn google_link_relay_page_sends_no_referrer_and_runs_only_its_own_script() {
    assert!(RELAY_PAGE.contains(r#"<meta name="referrer" content="no-referrer">"#));
    let csp_start = RELAY_PAGE
        .find(r#"<meta http-equiv="Content-Security-Policy" content=""#)
        .expect("a Content-Security-Policy");
    let csp = &RELAY_PAGE[csp_start..];
    let csp = &csp[..csp.find('>').expect("the tag ends")];
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let hashes: Vec<&str> = csp
        .split("'sha256-")
        .skip(1)
        .map(|rest| &rest[..rest.find('\'').expect("the hash ends")])
        .collect();
    let digest = dncs::hash::sha256(relay_script().as_bytes());
    assert_eq!(
        hashes,
        vec![STANDARD.encode(digest)],
        "the CSP hash is the script's (see install/relay/README.md)"
    );
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|directive| directive.starts_with("script-src"))
        .expect("a script-src");
    assert_eq!(
        script_src.split_whitespace().count(),
        2,
        "only the hash may run: {script_src}"
    );
}

#[test]
fn google_link_relay_page_forwards_only_to_the_cgis_callback() {
    let script = relay_script();
    for check in [
        r#"var CALLBACK_PAGE = "google_callback";"#,
        r#"var CGI_NAMES = ["dncs.cgi", "dncs.exe"];"#,
        r#"CGI_NAMES.indexOf(file) >= 0"#,
        r#"target.search === "?page=" + CALLBACK_PAGE"#,
        r#"!target.hash"#,
        r#"target.username || target.password"#,
        r#"document.getElementById("host").textContent = target.host;"#,
    ] {
        assert!(script.contains(check), "the relay script lacks {check}");
    }
    assert!(RELAY_README.contains("## Hosting it"));
    for topic in [
        "https",
        "GOOGLE_REDIRECT_URI",
        "GOOGLE_AUTH_MODE=relay",
        "sha256",
    ] {
        assert!(
            RELAY_README.contains(topic),
            "README.md says nothing of {topic}"
        );
    }
}

/// Runs the relay script under node with a tiny `window`/`document`, for each case a line of
/// JSON: what the page shows and where its form would go.
const NODE_DRIVER: &str = r#"
const fs = require("fs");
const script = fs.readFileSync(process.argv[2], "utf8");
const cases = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
for (const search of cases) {
  const elements = {};
  const document = {
    getElementById(id) {
      if (!elements[id]) elements[id] = { id, hidden: id === "forward" || id === "problem", disabled: id === "error-field", value: "", textContent: "…", action: "" };
      return elements[id];
    },
  };
  const window = { location: { search } };
  new Function("window", "document", script)(window, document);
  const form = document.getElementById("forward");
  const fields = [["page", "google_callback"]];
  for (const [name, id] of [["code", "code"], ["state", "state"], ["error", "error-field"]]) {
    const field = document.getElementById(id);
    if (!field.disabled) fields.push([name, field.value]);
  }
  const problem = document.getElementById("problem");
  console.log(JSON.stringify({
    forwarded: form.hidden ? null : form.action + "?" + new URLSearchParams(fields).toString(),
    host: document.getElementById("host").textContent,
    problem: problem.hidden ? null : problem.textContent,
  }));
}
"#;

#[test]
fn google_link_relay_page_script_under_node() {
    let node_found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !node_found {
        println!("node is not installed: the relay page's script was checked statically only");
        return;
    }
    let state = |cb: &str| {
        let body = URL_SAFE_NO_PAD
            .encode(serde_json::json!({"sid": "flow", "cb": cb, "exp": 1}).to_string());
        format!("{body}.c2lnbmF0dXJl")
    };
    let search = |pairs: &[(&str, &str)]| format!("?{}", form_encode(pairs));
    let good = state(&callback_url("http"));
    let iis = state("https://intra.example/scripts/dncs/bin/dncs.exe?page=google_callback");
    let cases = [
        search(&[
            ("code", "4/abc"),
            ("state", &good),
            ("scope", CALENDAR_SCOPE),
        ]),
        search(&[("error", "access_denied"), ("state", &good)]),
        search(&[("code", "4/abc"), ("state", &iis)]),
        search(&[
            ("code", "4/abc"),
            (
                "state",
                &state("https://evil.example/steal?page=google_callback"),
            ),
        ]),
        search(&[
            ("code", "4/abc"),
            (
                "state",
                &state("https://evil.example/dncs.cgi?page=google_callback&x=1"),
            ),
        ]),
        search(&[
            ("code", "4/abc"),
            (
                "state",
                &state("https://evil.example/dncs.cgi?page=google_callback#x"),
            ),
        ]),
        search(&[
            ("code", "4/abc"),
            (
                "state",
                &state("https://me:pw@evil.example/dncs.cgi?page=google_callback"),
            ),
        ]),
        search(&[
            ("code", "4/abc"),
            (
                "state",
                &state("javascript:alert(1)//dncs.cgi?page=google_callback"),
            ),
        ]),
        search(&[("code", "4/abc"), ("state", "not-base64!.x")]),
    ];
    let folder = tempfile::tempdir().expect("temp dir");
    let script = folder.path().join("relay.js");
    let driver = folder.path().join("driver.js");
    let cases_file = folder.path().join("cases.json");
    std::fs::write(&script, relay_script()).expect("script");
    std::fs::write(&driver, NODE_DRIVER).expect("driver");
    std::fs::write(&cases_file, serde_json::json!(cases).to_string()).expect("cases");
    let output = std::process::Command::new("node")
        .arg(&driver)
        .arg(&script)
        .arg(&cases_file)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(results.len(), cases.len(), "{results:?}");

    let cgi = format!("http://cybozu.example.jp{SCRIPT_NAME}");
    let forwarded = |i: usize| results[i]["forwarded"].as_str().map(str::to_owned);
    let to_cgi = forwarded(0).expect("forwarded");
    assert!(
        to_cgi.starts_with(&format!("{cgi}?page=google_callback&")),
        "{to_cgi}"
    );
    assert_eq!(query_value(&to_cgi, "code").as_deref(), Some("4/abc"));
    assert_eq!(
        query_value(&to_cgi, "state").as_deref(),
        Some(good.as_str())
    );
    assert_eq!(query_value(&to_cgi, "error"), None);
    assert_eq!(results[0]["host"], "cybozu.example.jp");

    let denied = forwarded(1).expect("an error is forwarded too");
    assert_eq!(
        query_value(&denied, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_value(&denied, "code"), None);

    let to_iis = forwarded(2).expect("dncs.exe is a CGI too");
    assert!(
        to_iis.starts_with("https://intra.example/scripts/dncs/bin/dncs.exe?page=google_callback&")
    );

    for (i, result) in results.iter().enumerate().skip(3) {
        assert_eq!(
            result["forwarded"],
            serde_json::Value::Null,
            "case {i}: {result}"
        );
        assert!(result["problem"].is_string(), "case {i}: {result}");
        assert_ne!(result["host"], "evil.example", "case {i}: {result}");
    }
}

/// `dncs-sync` with the site's `dncs.ini`, as cron or an administrator runs it.
fn dncs_sync(site: &Site, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dncs-sync"))
        .args(args)
        .env("DNCS_INI", &site.ini)
        .env("DNCS_NOW", T0)
        .output()
        .expect("dncs-sync runs")
}

#[test]
fn google_link_a_legacy_oob_link_syncs_until_the_user_links_again() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    // A meeting in Cybozu Office, to see the legacy link sync.
    let mut meeting = dncs::cybozu::Event::new("Asia/Tokyo");
    meeting.detail = "移行後の初同期".into();
    meeting.members = vec![dncs::cybozu::Member::User(1)];
    meeting.when = dncs::cybozu::When::Times(vec![dncs::cybozu::TimeSpan {
        start: utc("2026-11-26T01:00:00Z"),
        end: Some(utc("2026-11-26T02:00:00Z")),
        facility_id: None,
    }]);
    site.sim.company().insert_event(meeting);

    // The earlier installation linked takahashi with the retired OOB flow.
    let legacy_token = sim.issue_refresh_token("takahashi@example.com");
    let csv = site.root.path().join("links.csv");
    std::fs::write(&csv, format!("takahashi,{legacy_token},,oob\r\n")).expect("csv");
    let imported = dncs_sync(&site, &["import-legacy", csv.to_str().expect("path")]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    // The first login applies the link: it syncs, and the screen asks to link again.
    let mut browser = site.user("takahashi");
    let page = browser.get("page=settings");
    assert_eq!(google_state(&page), "認証済(再認証が必要です)");
    let ran = dncs_sync(&site, &["run", "--user", "takahashi"]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let copies = sim.events("takahashi@example.com", "primary");
    assert!(
        copies
            .iter()
            .any(|e| e.summary.as_deref() == Some("移行後の初同期")),
        "the legacy link synced: {copies:?}"
    );

    // Pressing 認証 replaces the legacy link with a current one.
    let google_redirect = authorized(&mut browser, &sim);
    let answer = relay(&mut browser, &google_redirect);
    assert_linked(&answer, &site, Provenance::Relay);
    let page = browser.get("page=settings");
    assert_eq!(google_state(&page), "認証済です");
    let again = dncs_sync(&site, &["run", "--user", "takahashi"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let copies = sim.events("takahashi@example.com", "primary");
    assert_eq!(
        copies
            .iter()
            .filter(|e| e.summary.as_deref() == Some("移行後の初同期"))
            .count(),
        1,
        "re-linking never doubles the calendar"
    );
}

#[test]
fn google_link_then_sync_now_runs_the_pass_behind_the_page() {
    let sim = GoogleSim::start().expect("Google simulator");
    let site = relay_site(&sim);
    // A meeting tomorrow (the sync window is around the real clock: the pass runs on it).
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let mut meeting = dncs::cybozu::Event::new("Asia/Tokyo");
    meeting.detail = "ただちに同期する の確認".into();
    meeting.members = vec![dncs::cybozu::Member::User(TAKAHASHI as u64)];
    meeting.when = dncs::cybozu::When::Times(vec![dncs::cybozu::TimeSpan {
        start: tomorrow,
        end: Some(tomorrow + chrono::Duration::hours(1)),
        facility_id: None,
    }]);
    site.sim.company().insert_event(meeting);

    // What a new user does: 同期 on, 認証, then 「ただちに同期する」.
    let mut browser = site.user("takahashi");
    let saved = browser.save_settings(&[("target", "google"), ("sync_on", "on")]);
    assert_eq!(saved.status(), 303, "{}", saved.body);
    let google_redirect = authorized(&mut browser, &sim);
    assert_linked(
        &relay(&mut browser, &google_redirect),
        &site,
        Provenance::Relay,
    );
    let answer = browser.submit("page=settings", "page=sync_now", &[]);
    assert_eq!(
        answer.header("Location"),
        Some(format!("{SCRIPT_NAME}?page=settings&done=started").as_str()),
        "{}",
        answer.body
    );

    // The page has answered; the pass runs on in its own process and leaves its history.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let entry = loop {
        let store = site.store();
        let done = !store.has_pending_sync_request(TAKAHASHI).expect("read");
        let history = store.history_page(TAKAHASHI, 0, 20).expect("history");
        if let (true, Some(entry)) = (done, history.entries.first()) {
            break entry.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pass started by the button did not finish within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(entry.errors.is_empty(), "{:?}", entry.errors);
    assert_eq!(entry.counts.remote_created, 1, "{:?}", entry.counts);
    let copies = sim.events(dncs::sim::google::DEFAULT_ACCOUNT, "primary");
    assert_eq!(
        copies
            .iter()
            .filter(|e| e.summary.as_deref() == Some("ただちに同期する の確認"))
            .count(),
        1,
        "the meeting is on the phone's calendar: {copies:?}"
    );

    // The screens say so: no pass pending any more, and the pass in 同期履歴.
    let page = browser.get("page=settings");
    assert_eq!(text_after(&page, "id=\"state\">"), "同期中");
    let history = browser.get("page=history");
    assert_eq!(history.status(), 200);
    assert!(history.body.contains("追加 1 "), "{}", history.body);
}
