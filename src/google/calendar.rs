//! A client for the events of one Google calendar: `events.list` (full, then incremental with a
//! sync token), `insert` with a client-chosen id, `get`, `update` with `If-Match`, `delete`.
//!
//! Rate limits (403 `rateLimitExceeded`/`userRateLimitExceeded`, 429) and server errors (5xx) are
//! retried with backoff and jitter, honouring `Retry-After`; every other refusal is returned at once
//! as a typed [`GoogleError`].

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use super::event::{Event, EventStatus};
use super::{encode_component, read_reply, snippet, GoogleError, Reply};
use crate::http::{retry, RetryPolicy};

/// `maxResults` of a list page when not set otherwise (Google's own default).
pub const DEFAULT_PAGE_SIZE: u32 = 250;

/// A list that ends with a sanity stop: a server that hands out page tokens forever is broken.
const MAX_PAGES: usize = 10_000;

/// The id this product gives the Google copy of a Cybozu event: the same for the same install and
/// event, so that a retried insert answers 409 instead of making a duplicate.
///
/// base32hex (`0-9a-v`) of the first 160 bits of SHA-256, 32 characters: within the 5–1024 the
/// discovery document allows for client-chosen ids.
pub fn event_id_for(install_id: &str, cybozu_event_id: u64) -> String {
    let input = format!("dncs\u{0}{install_id}\u{0}{cybozu_event_id}");
    let hash = crate::hash::sha256(input.as_bytes());
    base32hex(&hash[..20])
}

/// Lowercase base32hex without padding (RFC 4648 §7).
fn base32hex(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Whether `id` is an id Google accepts from a client: base32hex, 5 to 1024 characters.
pub fn is_valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

/// What a list yields: the events (deleted ones as `cancelled`) and the token for the next
/// incremental list.
#[derive(Debug, Clone)]
pub struct Listing {
    pub events: Vec<Event>,
    pub next_sync_token: String,
}

/// One page of `events.list`; unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsPage {
    #[serde(default)]
    items: Vec<Event>,
    next_page_token: Option<String>,
    next_sync_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    /// `idempotent`: the new event carries its id, so a repeat answers 409 rather than copying it.
    Post {
        idempotent: bool,
    },
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post { .. } => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// One failed try, with what the retry loop needs to know about it.
#[derive(Debug)]
struct Failed {
    error: GoogleError,
    /// A rate limit (403 rate reasons, 429): reported as `RateLimited` when it persists.
    rate_limited: bool,
    transient: bool,
    retry_after: Option<Duration>,
}

impl From<GoogleError> for Failed {
    fn from(error: GoogleError) -> Self {
        Self {
            error,
            rate_limited: false,
            transient: false,
            retry_after: None,
        }
    }
}

/// The events of one calendar, as one user (one access token).
#[derive(Debug, Clone)]
pub struct Calendar {
    agent: ureq::Agent,
    api_base: String,
    calendar_id: String,
    access_token: String,
    retry: RetryPolicy,
    page_size: u32,
}

impl Calendar {
    /// `api_base` is `GOOGLE_API_BASE` (e.g. `https://www.googleapis.com/calendar/v3`);
    /// `calendar_id` is `primary` or the user's カレンダーID.
    pub fn new(agent: ureq::Agent, api_base: &str, calendar_id: &str, access_token: &str) -> Self {
        Self {
            agent,
            api_base: api_base.trim_end_matches('/').to_string(),
            calendar_id: calendar_id.to_string(),
            access_token: access_token.to_string(),
            retry: RetryPolicy::default(),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// `maxResults` of each list page (1–2500).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, 2500);
        self
    }

    pub fn calendar_id(&self) -> &str {
        &self.calendar_id
    }

    /// Lists the calendar, following every page.
    ///
    /// Without a sync token: every event overlapping `window` (deleted ones included), the series
    /// of recurring events unexpanded. With one: whatever changed since it was issued, deletions as
    /// `cancelled`; Google refuses time bounds then, so `window` is not sent. An expired sync token
    /// answers [`GoogleError::Gone`]: list again without one.
    pub fn list_changes(
        &self,
        sync_token: Option<&str>,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<Listing, GoogleError> {
        let mut base_query = vec![("maxResults", self.page_size.to_string())];
        match sync_token {
            Some(token) => base_query.push(("syncToken", token.to_string())),
            None => {
                base_query.push(("showDeleted", "true".into()));
                base_query.push(("singleEvents", "false".into()));
                if let Some((min, max)) = window {
                    base_query.push(("timeMin", min.to_rfc3339_opts(SecondsFormat::Secs, true)));
                    base_query.push(("timeMax", max.to_rfc3339_opts(SecondsFormat::Secs, true)));
                }
            }
        }
        let path = self.events_path();
        let mut events = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = base_query.clone();
            if let Some(token) = &page_token {
                query.push(("pageToken", token.clone()));
            }
            let reply = self.call(Method::Get, &path, &query, None, None)?;
            let page: EventsPage = parse(&reply.body, "events.list")?;
            events.extend(page.items);
            match (page.next_page_token, page.next_sync_token) {
                (Some(next), _) if !next.is_empty() => {
                    if page_token.as_deref() == Some(next.as_str()) {
                        return Err(GoogleError::Malformed {
                            what: "events.list repeated its page token".into(),
                        });
                    }
                    page_token = Some(next);
                }
                (_, Some(next_sync_token)) => {
                    return Ok(Listing {
                        events,
                        next_sync_token,
                    })
                }
                (_, None) => {
                    return Err(GoogleError::Malformed {
                        what: "the last page of events.list has no nextSyncToken".into(),
                    })
                }
            }
        }
        Err(GoogleError::Malformed {
            what: format!("events.list did not end within {MAX_PAGES} pages"),
        })
    }

    /// Reads one event; a deleted one comes back `cancelled`.
    pub fn get(&self, id: &str) -> Result<Event, GoogleError> {
        let reply = self.call(Method::Get, &self.event_path(id), &[], None, None)?;
        parse(&reply.body, "events.get")
    }

    /// Creates an event, with the id it carries (see [`event_id_for`]) or one Google chooses.
    ///
    /// When the id is taken (409: an earlier try went through, or the event was deleted on the
    /// phone), the existing event is read and overwritten with this content, revived if cancelled.
    pub fn insert(&self, event: &Event) -> Result<Event, GoogleError> {
        let body = to_json(event)?;
        let result = self.call(
            Method::Post {
                idempotent: event.id.is_some(),
            },
            &self.events_path(),
            &[],
            Some(&body),
            None,
        );
        match (result, event.id.as_deref()) {
            (Ok(reply), _) => parse(&reply.body, "events.insert"),
            (Err(GoogleError::Conflict { .. }), Some(id)) => {
                let existing = self.get(id)?;
                let mut revived = event.clone();
                if revived.status.is_none_or(|s| s == EventStatus::Cancelled) {
                    revived.status = Some(EventStatus::Confirmed);
                }
                log::debug!("event {id} exists already; updating it in place");
                self.put(id, &revived, existing.etag.as_deref())
            }
            (Err(error), _) => Err(error),
        }
    }

    /// Replaces an event whole, only if it still has the etag `if_match`
    /// (else [`GoogleError::PreconditionFailed`]).
    pub fn update(&self, event: &Event, if_match: &str) -> Result<Event, GoogleError> {
        let id = event.id.as_deref().ok_or_else(|| GoogleError::Invalid {
            what: "an event without an id cannot be updated".into(),
        })?;
        self.put(id, event, Some(if_match))
    }

    /// Reads an event, applies `change` and writes it back; when the event changed in between
    /// (412), reads it once more and applies `change` again.
    pub fn update_latest(
        &self,
        id: &str,
        change: impl Fn(&mut Event),
    ) -> Result<Event, GoogleError> {
        let mut tries_left = 2;
        loop {
            let mut event = self.get(id)?;
            let etag = event.etag.clone();
            change(&mut event);
            event.id = Some(id.to_string());
            match self.put(id, &event, etag.as_deref()) {
                Err(GoogleError::PreconditionFailed) if tries_left > 1 => {
                    log::debug!("event {id} changed while it was updated; reading it again");
                    tries_left -= 1;
                }
                other => return other,
            }
        }
    }

    /// Deletes an event; one that is already gone (404, 410) counts as deleted.
    pub fn delete(&self, id: &str, if_match: Option<&str>) -> Result<(), GoogleError> {
        match self.call(Method::Delete, &self.event_path(id), &[], None, if_match) {
            Ok(_) | Err(GoogleError::Gone { .. }) | Err(GoogleError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn put(&self, id: &str, event: &Event, if_match: Option<&str>) -> Result<Event, GoogleError> {
        let body = to_json(event)?;
        let reply = self.call(
            Method::Put,
            &self.event_path(id),
            &[],
            Some(&body),
            if_match,
        )?;
        parse(&reply.body, "events.update")
    }

    fn events_path(&self) -> String {
        format!(
            "{}/calendars/{}/events",
            self.api_base,
            encode_component(&self.calendar_id)
        )
    }

    fn event_path(&self, id: &str) -> String {
        format!("{}/{}", self.events_path(), encode_component(id))
    }

    /// One API call with retries on rate limits and server errors.
    fn call(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<Reply, GoogleError> {
        let url = with_query(url, query);
        let outcome = retry(
            &self.retry,
            |failed: &Failed| failed.transient,
            |failed| failed.retry_after,
            |_| self.call_once(method, &url, body, if_match),
        );
        match outcome.result {
            Ok(reply) => Ok(reply),
            Err(failed) if failed.rate_limited => Err(GoogleError::RateLimited {
                reason: failed.error.reason().unwrap_or("rateLimitExceeded").into(),
                attempts: outcome.attempts,
            }),
            Err(failed) => Err(failed.error),
        }
    }

    fn call_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<Reply, Failed> {
        let bearer = format!("Bearer {}", self.access_token);
        let sent = match method {
            Method::Get | Method::Delete => {
                let builder = if method == Method::Get {
                    self.agent.get(url)
                } else {
                    self.agent.delete(url)
                };
                let builder = builder
                    .header("Authorization", &bearer)
                    .header("Accept", "application/json");
                match if_match {
                    Some(etag) => builder.header("If-Match", etag).call(),
                    None => builder.call(),
                }
            }
            Method::Post { .. } | Method::Put => {
                let builder = if matches!(method, Method::Post { .. }) {
                    self.agent.post(url)
                } else {
                    self.agent.put(url)
                };
                let builder = builder
                    .header("Authorization", &bearer)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json; charset=utf-8");
                let body = body.unwrap_or("{}").as_bytes();
                match if_match {
                    Some(etag) => builder.header("If-Match", etag).send(body),
                    None => builder.send(body),
                }
            }
        };
        let response = sent.map_err(|e| Failed {
            error: GoogleError::Transport {
                url: strip_query(url).into(),
                reason: e.to_string(),
            },
            rate_limited: false,
            // A POST that timed out may have been done: repeated with its id it answers 409 and
            // is resolved, but without one it would make a copy.
            transient: !matches!(method, Method::Post { idempotent: false }),
            retry_after: None,
        })?;
        let reply = read_reply(strip_query(url), response)?;
        if (200..300).contains(&reply.status) {
            return Ok(reply);
        }
        let error = GoogleError::from_api_reply(reply.status, &reply.body);
        let rate_limited = reply.status == 429
            || matches!(&error, GoogleError::Forbidden { reason, .. }
                if reason == "rateLimitExceeded" || reason == "userRateLimitExceeded");
        log::debug!(
            "Google {} {} answered {}: {}",
            method.as_str(),
            strip_query(url),
            reply.status,
            snippet(&reply.body)
        );
        Err(Failed {
            transient: rate_limited || reply.status >= 500,
            rate_limited,
            retry_after: reply.retry_after,
            error,
        })
    }
}

fn with_query(url: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return url.to_string();
    }
    let pairs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect();
    format!("{url}?{}", pairs.join("&"))
}

/// A URL without its query, for messages (page and sync tokens are long and say nothing).
fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

fn parse<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> Result<T, GoogleError> {
    serde_json::from_str(body).map_err(|e| GoogleError::Malformed {
        what: format!("{what}: {e}: {}", snippet(body)),
    })
}

fn to_json(event: &Event) -> Result<String, GoogleError> {
    serde_json::to_string(event).map_err(|e| GoogleError::Invalid {
        what: format!("the event cannot be written as JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_deterministic_base32hex() {
        let a = event_id_for("install-1", 42);
        assert_eq!(a, event_id_for("install-1", 42));
        assert_ne!(a, event_id_for("install-1", 43));
        assert_ne!(a, event_id_for("install-2", 42));
        assert_eq!(a.len(), 32);
        assert!(is_valid_event_id(&a), "{a}");
        for n in 0..200 {
            assert!(is_valid_event_id(&event_id_for("x", n)));
        }
    }

    #[test]
    fn base32hex_matches_rfc4648_vectors() {
        // RFC 4648 §10, lowercased and unpadded.
        assert_eq!(base32hex(b""), "");
        assert_eq!(base32hex(b"f"), "co");
        assert_eq!(base32hex(b"fo"), "cpng");
        assert_eq!(base32hex(b"foo"), "cpnmu");
        assert_eq!(base32hex(b"foob"), "cpnmuog");
        assert_eq!(base32hex(b"fooba"), "cpnmuoj1");
        assert_eq!(base32hex(b"foobar"), "cpnmuoj1e8");
    }

    #[test]
    fn id_validity_follows_the_discovery_rules() {
        assert!(!is_valid_event_id("abcd"));
        assert!(is_valid_event_id("abcde"));
        assert!(!is_valid_event_id("abcdw"));
        assert!(!is_valid_event_id("ABCDE"));
        assert!(!is_valid_event_id(&"a".repeat(1025)));
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            with_query(
                "http://x/events",
                &[("timeMin", "2026-11-25T00:00:00Z".into())]
            ),
            "http://x/events?timeMin=2026-11-25T00%3A00%3A00Z"
        );
        assert_eq!(strip_query("http://x/e?syncToken=abc"), "http://x/e");
    }
}
