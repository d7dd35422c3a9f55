//! The OAuth 2.0 token endpoint: refreshing an access token, and exchanging an authorization code
//! (with its PKCE verifier) for a refresh token.
//!
//! Both are one form POST (`application/x-www-form-urlencoded`, client credentials in the body, as
//! Google documents). "Now" is a parameter, so expiry follows `DNCS_NOW` in tests.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::{form_body, read_reply, GoogleError};

/// An access token and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// Whether it must be refreshed before use: expired, or expiring within `margin`.
    pub fn expires_within(&self, now: DateTime<Utc>, margin: TimeDelta) -> bool {
        self.expires_at <= now + margin
    }
}

/// What a code exchange yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access: AccessToken,
    pub refresh_token: String,
}

/// The token endpoint's success body; unknown fields (`id_token`…) are ignored.
#[derive(Debug, Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
}

/// Google's access tokens live an hour; assumed when a reply leaves `expires_in` out.
const DEFAULT_LIFETIME_SECONDS: i64 = 3600;

/// Trades a refresh token for a fresh access token. `invalid_grant` → [`GoogleError::InvalidGrant`].
pub fn refresh(
    agent: &ureq::Agent,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    refresh_token: &str,
    now: DateTime<Utc>,
) -> Result<AccessToken, GoogleError> {
    let reply = post(
        agent,
        token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("refresh_token", refresh_token),
        ],
    )?;
    Ok(access_token(&reply, now))
}

/// Trades an authorization code for tokens. `redirect_uri` must be the one of the authorization
/// request; `pkce_verifier` the secret whose S256 hash went out as `code_challenge`.
#[allow(clippy::too_many_arguments)]
pub fn exchange_code(
    agent: &ureq::Agent,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    code: &str,
    redirect_uri: &str,
    pkce_verifier: &str,
    now: DateTime<Utc>,
) -> Result<TokenSet, GoogleError> {
    let reply = post(
        agent,
        token_url,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("code_verifier", pkce_verifier),
        ],
    )?;
    let refresh_token = reply
        .refresh_token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GoogleError::Malformed {
            what: "the token reply has no refresh_token (was access_type=offline&prompt=consent sent?)"
                .into(),
        })?;
    Ok(TokenSet {
        access: access_token(&reply, now),
        refresh_token,
    })
}

fn access_token(reply: &TokenReply, now: DateTime<Utc>) -> AccessToken {
    let seconds = reply
        .expires_in
        .unwrap_or(DEFAULT_LIFETIME_SECONDS)
        .clamp(0, 365 * 24 * 3600);
    AccessToken {
        token: reply.access_token.clone(),
        expires_at: now + TimeDelta::seconds(seconds),
    }
}

fn post(
    agent: &ureq::Agent,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<TokenReply, GoogleError> {
    let response = agent
        .post(token_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .send(form_body(form).as_bytes())
        .map_err(|e| GoogleError::Transport {
            url: token_url.into(),
            reason: e.to_string(),
        })?;
    let reply = read_reply(token_url, response)?;
    if !(200..300).contains(&reply.status) {
        return Err(GoogleError::from_token_reply(reply.status, &reply.body));
    }
    let parsed: TokenReply =
        serde_json::from_str(&reply.body).map_err(|e| GoogleError::Malformed {
            what: format!("token reply: {e}"),
        })?;
    if parsed.access_token.is_empty() {
        return Err(GoogleError::Malformed {
            what: "token reply: empty access_token".into(),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_the_clock_given() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T01:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let reply: TokenReply = serde_json::from_str(
            r#"{"access_token":"ya29.x","expires_in":3599,"scope":"s","token_type":"Bearer"}"#,
        )
        .expect("parses");
        let token = access_token(&reply, now);
        assert_eq!(token.expires_at.to_rfc3339(), "2026-11-25T01:59:59+00:00");
        assert!(!token.expires_within(now, TimeDelta::minutes(5)));
        assert!(token.expires_within(now + TimeDelta::minutes(56), TimeDelta::minutes(5)));
    }
}
