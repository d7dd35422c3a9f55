//! Google account linking with the `oauth2` crate: the authorization URL (PKCE S256, offline access,
//! forced consent), the code exchange through the project's ureq agent, and the signed `state`
//! that carries the CGI's callback URL through the relay page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};

/// The one scope this product asks for.
pub const CALENDAR_SCOPE: &str = "https://www.googleapis.com/auth/calendar";
/// How long a started authorization may take.
pub const STATE_LIFETIME_MINUTES: i64 = 10;
/// Largest token endpoint reply read.
const MAX_TOKEN_REPLY_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{what} in dncs.ini is not a usable URL: {reason}")]
    BadUrl { what: &'static str, reason: String },
    #[error(
        "Google refused the authorization code (invalid_grant): it is invalid, used or expired"
    )]
    InvalidGrant,
    #[error("Google refused the OAuth client (invalid_client): check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET")]
    InvalidClient,
    #[error("Google answered {error}: {description}")]
    Refused { error: String, description: String },
    #[error("Google did not return a refresh token")]
    NoRefreshToken,
    #[error("could not reach Google's token endpoint: {0}")]
    Transport(String),
    #[error("Google's token reply is malformed: {0}")]
    Malformed(String),
}

/// The OAuth client from `dncs.ini`.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: String,
    pub token_url: String,
}

/// A PKCE pair (S256): the challenge goes to Google, the verifier stays on the server.
pub struct Pkce {
    challenge: PkceCodeChallenge,
    pub verifier: String,
}

impl Pkce {
    pub fn new() -> Self {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        Self {
            challenge,
            verifier: verifier.secret().clone(),
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// What the token endpoint gave for a code.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
}

type ConfiguredClient = BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

impl OAuthClient {
    fn configured(&self, redirect_uri: &str) -> Result<ConfiguredClient, OAuthError> {
        let bad = |what: &'static str| {
            move |e: oauth2::url::ParseError| OAuthError::BadUrl {
                what,
                reason: e.to_string(),
            }
        };
        Ok(BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            .set_auth_uri(AuthUrl::new(self.auth_url.clone()).map_err(bad("GOOGLE_AUTH_URL"))?)
            .set_token_uri(TokenUrl::new(self.token_url.clone()).map_err(bad("GOOGLE_TOKEN_URL"))?)
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_string()).map_err(bad("GOOGLE_REDIRECT_URI"))?,
            ))
    }

    /// The URL to send the browser to; `pkce` is made first so that its verifier can be stored
    /// with the flow whose id the state carries.
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        state: String,
        pkce: Pkce,
    ) -> Result<String, OAuthError> {
        let (url, _) = self
            .configured(redirect_uri)?
            .authorize_url(|| CsrfToken::new(state))
            .add_scope(Scope::new(CALENDAR_SCOPE.into()))
            .set_pkce_challenge(pkce.challenge)
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent")
            .url();
        Ok(url.to_string())
    }

    /// Exchanges an authorization code, sending the same `redirect_uri` and the PKCE verifier.
    pub fn exchange_code(
        &self,
        agent: &ureq::Agent,
        code: &str,
        redirect_uri: &str,
        pkce_verifier: &str,
        now: DateTime<Utc>,
    ) -> Result<Tokens, OAuthError> {
        let http = |request: oauth2::HttpRequest| -> Result<oauth2::HttpResponse, ureq::Error> {
            // No redirects: a token endpoint that redirects is not one to follow with a code.
            let response = agent.configure_request(request).max_redirects(0).build();
            let (parts, mut body) = agent.run(response)?.into_parts();
            let bytes = body
                .with_config()
                .limit(MAX_TOKEN_REPLY_BYTES)
                .read_to_vec()?;
            Ok(oauth2::HttpResponse::from_parts(parts, bytes))
        };
        let reply = self
            .configured(redirect_uri)?
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request(&http)
            .map_err(classify)?;
        let refresh_token = reply
            .refresh_token()
            .map(|t| t.secret().clone())
            .ok_or(OAuthError::NoRefreshToken)?;
        Ok(Tokens {
            access_token: reply.access_token().secret().clone(),
            expires_at: now + access_token_lifetime(reply.expires_in()),
            refresh_token,
        })
    }
}

/// How long a new access token lives: the reply's `expires_in`, an hour when it is left out, and
/// at most a year, as in `token.rs` (a reply of 10^13 seconds would overflow the expiry time).
fn access_token_lifetime(expires_in: Option<std::time::Duration>) -> Duration {
    expires_in
        .map_or(Duration::hours(1), |d| {
            Duration::from_std(d).unwrap_or(Duration::MAX)
        })
        .min(Duration::days(365))
}

fn classify(
    error: RequestTokenError<ureq::Error, StandardErrorResponse<BasicErrorResponseType>>,
) -> OAuthError {
    match error {
        RequestTokenError::ServerResponse(response) => match response.error() {
            BasicErrorResponseType::InvalidGrant => OAuthError::InvalidGrant,
            BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                OAuthError::InvalidClient
            }
            other => OAuthError::Refused {
                error: other.to_string(),
                description: response.error_description().cloned().unwrap_or_default(),
            },
        },
        RequestTokenError::Request(e) => OAuthError::Transport(e.to_string()),
        RequestTokenError::Parse(e, _) => OAuthError::Malformed(e.to_string()),
        RequestTokenError::Other(e) => OAuthError::Malformed(e),
    }
}

/// What the signed `state` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePayload {
    /// The server-side flow (PKCE verifier, session binding) it belongs to.
    pub sid: String,
    /// The CGI's callback URL, read by the relay page.
    pub cb: String,
    /// Expiry, UNIX seconds.
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is not one this server signed")]
    BadSignature,
    #[error("the state is malformed")]
    Malformed,
    #[error("the state has expired")]
    Expired,
}

/// `base64url(json) + "." + base64url(HMAC-SHA256(key, json-part))`: readable by the relay page,
/// unforgeable without the per-install key.
pub fn sign_state(key: &[u8], sid: &str, callback: &str, now: DateTime<Utc>) -> String {
    let payload = StatePayload {
        sid: sid.to_string(),
        cb: callback.to_string(),
        exp: (now + Duration::minutes(STATE_LIFETIME_MINUTES)).timestamp(),
    };
    // Serialising a struct of strings and an integer cannot fail.
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let body = URL_SAFE_NO_PAD.encode(json);
    let tag = crate::hash::hmac_sha256(key, body.as_bytes());
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Checks the signature and the expiry; the single use and the session binding are the
/// store's flow record.
pub fn verify_state(
    key: &[u8],
    state: &str,
    now: DateTime<Utc>,
) -> Result<StatePayload, StateError> {
    let (body, tag) = state.split_once('.').ok_or(StateError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| StateError::Malformed)?;
    if !crate::hash::hmac_sha256_verify(key, body.as_bytes(), &tag) {
        return Err(StateError::BadSignature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| StateError::Malformed)?;
    let payload: StatePayload = serde_json::from_slice(&json).map_err(|_| StateError::Malformed)?;
    if payload.exp < now.timestamp() {
        return Err(StateError::Expired);
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T01:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn an_access_token_lives_as_long_as_the_reply_says_but_at_most_a_year() {
        use std::time::Duration as Std;
        assert_eq!(access_token_lifetime(None), Duration::hours(1));
        assert_eq!(
            access_token_lifetime(Some(Std::from_secs(3599))),
            Duration::seconds(3599)
        );
        for huge in [Std::from_secs(10_000_000_000_000), Std::MAX] {
            assert_eq!(access_token_lifetime(Some(huge)), Duration::days(365));
        }
    }

    #[test]
    fn a_signed_state_verifies_and_carries_the_callback() {
        let state = sign_state(
            b"key",
            "flow1",
            "http://intra/dncs.cgi?page=google_callback",
            now(),
        );
        let payload = verify_state(b"key", &state, now()).expect("valid");
        assert_eq!(payload.sid, "flow1");
        assert_eq!(payload.cb, "http://intra/dncs.cgi?page=google_callback");
    }

    #[test]
    fn tampered_foreign_and_expired_states_are_refused() {
        let state = sign_state(
            b"key",
            "flow1",
            "http://intra/dncs.cgi?page=google_callback",
            now(),
        );
        assert_eq!(
            verify_state(b"other key", &state, now()),
            Err(StateError::BadSignature)
        );
        let (body, tag) = state.split_once('.').expect("two parts");
        let forged_body = URL_SAFE_NO_PAD.encode(
            br#"{"sid":"flow2","cb":"http://evil/dncs.cgi?page=google_callback","exp":9999999999}"#,
        );
        assert_eq!(
            verify_state(b"key", &format!("{forged_body}.{tag}"), now()),
            Err(StateError::BadSignature)
        );
        assert_eq!(
            verify_state(b"key", body, now()),
            Err(StateError::Malformed)
        );
        let later = now() + Duration::minutes(STATE_LIFETIME_MINUTES + 1);
        assert_eq!(
            verify_state(b"key", &state, later),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn the_authorization_url_asks_for_offline_access_with_pkce() {
        let client = OAuthClient {
            client_id: "id.apps.googleusercontent.com".into(),
            client_secret: "secret".into(),
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
        };
        let pkce = Pkce::new();
        let verifier = pkce.verifier.clone();
        let url = client
            .authorization_url("https://relay.example/", "the-state".into(), pkce)
            .expect("url");
        for part in [
            "access_type=offline",
            "prompt=consent",
            "code_challenge_method=S256",
            "state=the-state",
            "redirect_uri=https%3A%2F%2Frelay.example%2F",
            "scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcalendar",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert!(
            !url.contains(&verifier),
            "the verifier never leaves the server"
        );
        assert!(verifier.len() >= 43);
    }
}
