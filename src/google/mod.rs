//! The Google connector: the OAuth token endpoint (`token`), the Calendar API v3 event model
//! (`event`) and a client for the events of one calendar (`calendar`).
//!
//! Every failure becomes a [`GoogleError`] built from Google's own error bodies, so that the sync
//! engine can react to what happened (re-link, full list again, re-read) rather than to a status code.

pub mod calendar;
pub mod event;
pub mod oauth;
pub mod token;

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

pub use calendar::{event_id_for, Calendar, Listing};
pub use event::{
    Event, EventDateTime, EventStatus, EventType, ExtendedProperties, Transparency, Visibility,
};
pub use token::{AccessToken, TokenSet};

/// `GOOGLE_API_BASE` when the ini does not set it.
pub const DEFAULT_API_BASE: &str = "https://www.googleapis.com/calendar/v3";
/// `GOOGLE_AUTH_URL` when the ini does not set it.
pub const DEFAULT_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
/// `GOOGLE_TOKEN_URL` when the ini does not set it.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The one scope the product asks for.
pub const CALENDAR_SCOPE: &str = "https://www.googleapis.com/auth/calendar";

/// Largest reply body read from Google.
const MAX_REPLY_BYTES: u64 = 32 * 1024 * 1024;

/// Everything that can go wrong talking to Google.
#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    /// The refresh token was revoked or expired (`invalid_grant`): the user must press 認証 again.
    /// Never retried.
    #[error("Google no longer accepts this user's authorization (invalid_grant: {description}); the user must link Google again (認証)")]
    InvalidGrant { description: String },
    /// The access token was refused (401): refresh it and try again.
    #[error("Google refused the access token (401: {message})")]
    Unauthorized { message: String },
    #[error("Google kept answering \"too many requests\" ({reason}) through {attempts} tries")]
    RateLimited { reason: String, attempts: u32 },
    #[error("Google has no such calendar or event (404: {message})")]
    NotFound { message: String },
    /// 410: a sync token expired (list from scratch), or the event is already deleted.
    #[error("Google answered 410 Gone ({reason}): {message}")]
    Gone { reason: String, message: String },
    #[error("Google answered 409 Conflict ({reason}): {message}")]
    Conflict { reason: String, message: String },
    /// 412: the event changed since it was read (`If-Match`): read it again and re-apply.
    #[error("the Google event changed since it was read (412 Precondition Failed)")]
    PreconditionFailed,
    #[error("Google refused the request (403 {reason}): {message}")]
    Forbidden { reason: String, message: String },
    #[error("Google answered HTTP {status} ({reason}): {message}")]
    Http {
        status: u16,
        reason: String,
        message: String,
    },
    #[error("could not reach Google at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("Google's reply is malformed: {what}")]
    Malformed { what: String },
    /// A caller mistake caught before anything was sent (an update without an event id).
    #[error("invalid request: {what}")]
    Invalid { what: String },
}

impl GoogleError {
    /// Whether the user must link Google again before anything can sync.
    pub fn needs_relink(&self) -> bool {
        matches!(self, Self::InvalidGrant { .. })
    }

    /// Builds the error for a non-2xx reply of the Calendar API from its body.
    pub fn from_api_reply(status: u16, body: &str) -> Self {
        let (reason, message) = match serde_json::from_str::<ApiErrorBody>(body) {
            Ok(parsed) => {
                let first = parsed.error.errors.into_iter().next();
                let reason = first
                    .as_ref()
                    .and_then(|e| e.reason.clone())
                    .or(parsed.error.status)
                    .unwrap_or_default();
                let message = parsed
                    .error
                    .message
                    .or_else(|| first.and_then(|e| e.message))
                    .unwrap_or_default();
                (reason, message)
            }
            Err(_) => (String::new(), snippet(body)),
        };
        match status {
            401 => Self::Unauthorized { message },
            403 => Self::Forbidden { reason, message },
            404 => Self::NotFound { message },
            409 => Self::Conflict { reason, message },
            410 => Self::Gone { reason, message },
            412 => Self::PreconditionFailed,
            _ => Self::Http {
                status,
                reason,
                message,
            },
        }
    }

    /// Builds the error for a non-2xx reply of the token endpoint from its body.
    pub fn from_token_reply(status: u16, body: &str) -> Self {
        match serde_json::from_str::<TokenErrorBody>(body) {
            Ok(parsed) if parsed.error == "invalid_grant" => Self::InvalidGrant {
                description: parsed.error_description.unwrap_or_default(),
            },
            Ok(parsed) => Self::Http {
                status,
                reason: parsed.error,
                message: parsed.error_description.unwrap_or_default(),
            },
            Err(_) => Self::Http {
                status,
                reason: String::new(),
                message: snippet(body),
            },
        }
    }

    /// The reason word of Google's error (`rateLimitExceeded`, `fullSyncRequired`…), if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Forbidden { reason, .. }
            | Self::Gone { reason, .. }
            | Self::Conflict { reason, .. }
            | Self::Http { reason, .. }
            | Self::RateLimited { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// `{"error":{"errors":[{"domain","reason","message"}],"code":N,"message":…}}`
#[derive(Debug, Deserialize)]
struct ApiErrorBody {
    error: ApiError,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    errors: Vec<ApiErrorItem>,
    message: Option<String>,
    /// Newer front ends add a gRPC-style status (`PERMISSION_DENIED`).
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiErrorItem {
    reason: Option<String>,
    message: Option<String>,
}

/// `{"error":"invalid_grant","error_description":…}`
#[derive(Debug, Deserialize)]
struct TokenErrorBody {
    error: String,
    error_description: Option<String>,
}

/// What a reply looked like, enough to classify it and to honour `Retry-After`.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
    retry_after: Option<Duration>,
}

/// Reads the status, `Retry-After` and body of a reply.
fn read_reply(
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<Reply, GoogleError> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let raw = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .read_to_vec()
        .map_err(|e| GoogleError::Transport {
            url: url.into(),
            reason: format!("reading the reply failed: {e}"),
        })?;
    Ok(Reply {
        status,
        body: String::from_utf8_lossy(&raw).into_owned(),
        retry_after,
    })
}

/// The first characters of a body that is not the JSON we expected, for error messages.
fn snippet(body: &str) -> String {
    let trimmed = body.trim();
    let mut out: String = trimmed.chars().take(200).collect();
    if trimmed.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Everything but RFC 3986 unreserved characters, for one path segment or query value
/// (calendar ids carry `@` and `#`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one URL component.
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// `application/x-www-form-urlencoded` of name/value pairs.
fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode_component(name), encode_component(value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_bodies_become_typed_errors() {
        let body = r#"{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":403,"message":"Rate Limit Exceeded"}}"#;
        let err = GoogleError::from_api_reply(403, body);
        assert!(
            matches!(&err, GoogleError::Forbidden { reason, .. } if reason == "rateLimitExceeded"),
            "{err:?}"
        );
        let gone = r#"{"error":{"errors":[{"domain":"global","reason":"fullSyncRequired","message":"Sync token is no longer valid, a full sync is required."}],"code":410,"message":"Sync token is no longer valid, a full sync is required."}}"#;
        let err = GoogleError::from_api_reply(410, gone);
        assert_eq!(err.reason(), Some("fullSyncRequired"));
        assert!(matches!(
            GoogleError::from_api_reply(412, "{}"),
            GoogleError::PreconditionFailed
        ));
        assert!(matches!(
            GoogleError::from_api_reply(404, "not json"),
            GoogleError::NotFound { .. }
        ));
        // Unknown fields are ignored.
        let extra = r#"{"error":{"errors":[{"reason":"backendError","extendedHelp":"x"}],"code":503,"status":"UNAVAILABLE","details":[]}}"#;
        let err = GoogleError::from_api_reply(503, extra);
        assert!(
            matches!(&err, GoogleError::Http { status: 503, reason, .. } if reason == "backendError")
        );
    }

    #[test]
    fn token_error_bodies_become_typed_errors() {
        let err = GoogleError::from_token_reply(
            400,
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        );
        assert!(err.needs_relink());
        assert!(err.to_string().contains("expired or revoked"));
        let err = GoogleError::from_token_reply(401, r#"{"error":"invalid_client"}"#);
        assert!(
            matches!(&err, GoogleError::Http { status: 401, reason, .. } if reason == "invalid_client")
        );
        assert!(!err.needs_relink());
        let err = GoogleError::from_token_reply(502, "<html>bad gateway</html>");
        assert!(matches!(err, GoogleError::Http { status: 502, .. }));
    }

    #[test]
    fn components_are_fully_encoded() {
        assert_eq!(
            encode_component("ja.japanese#holiday@group.v.calendar.google.com"),
            "ja.japanese%23holiday%40group.v.calendar.google.com"
        );
        assert_eq!(encode_component("a b/c+d"), "a%20b%2Fc%2Bd");
        assert_eq!(
            form_body(&[("grant_type", "refresh_token"), ("x", "a&b=c")]),
            "grant_type=refresh_token&x=a%26b%3Dc"
        );
    }
}
