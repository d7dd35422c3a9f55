//! 認証: linking a user's Google account. `google_auth` starts the authorization (relay or direct
//! mode), `google_callback` finishes it: the state must be signed by this install, unexpired,
//! unused and started by this browser session, and nothing is stored unless all of that holds.

use super::app::App;
use super::cgi::Response;
use crate::config::AuthMode;
use crate::google::oauth::{sign_state, verify_state, OAuthClient, OAuthError, Pkce};
use crate::store::{GoogleClient, Provenance, SETTING_OAUTH_STATE_KEY};

/// The route Google's answer comes back to (directly, or through the relay page).
pub const CALLBACK_PAGE: &str = "google_callback";

/// Whether `dncs.ini` holds what 認証 needs (the OAuth client id and secret).
pub(super) fn is_configured(app: &App<'_>) -> bool {
    oauth_client(app).is_some()
}

fn oauth_client(app: &App<'_>) -> Option<OAuthClient> {
    let config = app.config;
    Some(OAuthClient {
        client_id: config.google_client_id.clone()?,
        client_secret: config.google_client_secret.clone()?,
        auth_url: config.google_auth_url.clone(),
        token_url: config.google_token_url.clone(),
    })
}

fn state_key(app: &App<'_>) -> Result<Vec<u8>, Response> {
    app.store
        .secret_setting_or_insert_with(SETTING_OAUTH_STATE_KEY, || {
            crate::secret::random_token(32).unwrap_or_default()
        })
        .map(String::into_bytes)
        .map_err(|e| app.store_failure(&e))
}

/// `?page=google_auth` (POST from 同期設定): sends the browser to Google.
pub fn authorize(app: &mut App<'_>) -> Response {
    let (Some(user_id), Some(active)) = (app.user_id(), app.session.as_ref()) else {
        return super::user::not_a_user(app);
    };
    let token = active.token.clone();
    if !app.is_post() || !app.csrf_ok() {
        return app.message(403, "settings.google_auth", &app.t("csrf.failed"));
    }
    if let Err(page) = super::user::save_before_linking(app) {
        return page;
    }
    let Some(client) = oauth_client(app) else {
        return app.message(503, "settings.google_auth", &app.t("google.not_configured"));
    };
    let callback = match app.request.script_url(app.config.callback_scheme.as_str()) {
        Ok(url) => format!("{url}?page={CALLBACK_PAGE}"),
        Err(e) => return app.message(400, "settings.google_auth", &e.to_string()),
    };
    let redirect_uri = match (app.config.google_auth_mode, &app.config.google_redirect_uri) {
        (AuthMode::Relay, Some(relay)) => relay.clone(),
        (AuthMode::Relay, None) => {
            return app.message(503, "settings.google_auth", &app.t("google.no_relay"))
        }
        (AuthMode::Direct, Some(registered)) => registered.clone(),
        (AuthMode::Direct, None) => callback.clone(),
    };
    let key = match state_key(app) {
        Ok(key) => key,
        Err(page) => return page,
    };
    let pkce = Pkce::new();
    let flow = app
        .store
        .begin_oauth_flow(&token, user_id, &pkce.verifier, &redirect_uri, app.now);
    let flow_id = match flow {
        Ok(id) => id,
        Err(e) => return app.store_failure(&e),
    };
    let state = sign_state(&key, &flow_id, &callback, app.now);
    let url = match client.authorization_url(&redirect_uri, state, pkce) {
        Ok(url) => url,
        Err(e) => return app.message(503, "settings.google_auth", &e.to_string()),
    };
    Response::redirect(&url)
}

/// `?page=google_callback`: Google's answer, directly or through the relay page.
pub fn callback(app: &mut App<'_>) -> Response {
    let fail = |app: &App<'_>, status: u16, key: &str| {
        app.message(status, "settings.google_auth", &app.t(key))
    };
    let (Some(user_id), Some(active)) = (app.user_id(), app.session.as_ref()) else {
        // A callback in a browser without the session that started it is refused: a link
        // mailed to someone else must not link their calendar to another account.
        return fail(app, 403, "google.foreign_session");
    };
    let token = active.token.clone();
    let key = match state_key(app) {
        Ok(key) => key,
        Err(page) => return page,
    };
    let state = app.request.query("state").unwrap_or("");
    let payload = match verify_state(&key, state, app.now) {
        Ok(payload) => payload,
        Err(crate::google::oauth::StateError::Expired) => return fail(app, 400, "google.expired"),
        Err(_) => return fail(app, 400, "google.bad_state"),
    };
    let max_age = chrono::Duration::minutes(crate::google::oauth::STATE_LIFETIME_MINUTES);
    let flow = match app
        .store
        .take_oauth_flow(&payload.sid, &token, app.now, max_age)
    {
        Ok(Some(flow)) if flow.user_id == user_id => flow,
        Ok(_) => return fail(app, 400, "google.bad_state"),
        Err(e) => return app.store_failure(&e),
    };
    if let Some(error) = app.request.query("error") {
        let key = match error {
            "access_denied" => "google.access_denied",
            "admin_policy_enforced" => "google.admin_policy_enforced",
            "org_internal" => "google.org_internal",
            _ => "google.refused",
        };
        log::info!("Google authorization of user {user_id} ended with error={error}");
        return fail(app, 400, key);
    }
    let Some(code) = app.request.query("code").filter(|c| !c.is_empty()) else {
        return fail(app, 400, "google.bad_state");
    };
    let Some(client) = oauth_client(app) else {
        return fail(app, 503, "google.not_configured");
    };
    let agent = match app.outbound_agent() {
        Ok(agent) => agent,
        Err(e) => return app.message(503, "settings.google_auth", &e.to_string()),
    };
    let tokens = match client.exchange_code(
        &agent,
        code,
        &flow.redirect_uri,
        &flow.pkce_verifier,
        app.now,
    ) {
        Ok(tokens) => tokens,
        Err(OAuthError::InvalidGrant) => return fail(app, 400, "google.invalid_grant"),
        Err(OAuthError::InvalidClient) => return fail(app, 503, "google.invalid_client"),
        Err(e) => {
            log::warn!("Google code exchange for user {user_id}: {e}");
            return app.message(
                502,
                "settings.google_auth",
                &format!("{} ({e})", app.t("google.exchange_failed")),
            );
        }
    };
    let provenance = match app.config.google_auth_mode {
        AuthMode::Relay => Provenance::Relay,
        AuthMode::Direct => Provenance::Direct,
    };
    let stored = app
        .store
        .set_google_link(
            user_id,
            &tokens.refresh_token,
            provenance,
            GoogleClient::Current,
            app.now,
        )
        .and_then(|()| {
            app.store.set_google_access_token(
                user_id,
                &tokens.access_token,
                tokens.expires_at,
                app.now,
            )
        });
    match stored {
        Ok(()) => Response::redirect(&format!("{}&done=linked", app.page_url("settings"))),
        Err(e) => app.store_failure(&e),
    }
}
