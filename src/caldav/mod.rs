//! The CalDAV connector (RFC 4791, RFC 6578): discovery of a user's calendars from a server or
//! calendar URL, listing (`sync-collection`, else `calendar-query` ETags), reading
//! (`calendar-multiget`) and conditional writes (`PUT` with `If-None-Match`/`If-Match`, `DELETE`).
//!
//! Every failure becomes a [`CalDavError`] so the sync engine can react (ask for the password
//! again, list from scratch, re-read a changed event) rather than to a status code. Redirects are
//! never followed automatically: a server that moves a calendar elsewhere must not receive the
//! user's password on a host it chose, so only the `.well-known` redirect of discovery is followed,
//! once, and only on the same origin.

mod multistatus;

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ureq::http::{self, Method};

use crate::http::{retry, RetryPolicy};
use crate::xml::Writer;
use multistatus::{Entry, Multistatus};

/// Largest reply body read from a CalDAV server.
const MAX_REPLY_BYTES: u64 = 32 * 1024 * 1024;

/// Resources asked for in one `calendar-multiget`: large enough to be quick, small enough that
/// one reply stays far below [`MAX_REPLY_BYTES`].
pub const MULTIGET_BATCH: usize = 100;

/// A `sync-collection` that keeps answering "truncated, ask again" is broken past this many rounds.
const MAX_SYNC_ROUNDS: usize = 1_000;

const DAV: &str = "DAV:";
const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
const CALENDARSERVER: &str = "http://calendarserver.org/ns/";

/// Everything that can go wrong talking to a CalDAV server.
#[derive(Debug, thiserror::Error)]
pub enum CalDavError {
    #[error("the CalDAV server refused the user name or password (401)")]
    Unauthorized,
    #[error("the CalDAV server forbids this (403): {snippet}")]
    Forbidden { snippet: String },
    #[error("no such CalDAV calendar or event (404): {url}")]
    NotFound { url: String },
    /// 412: the event changed since it was read (`If-Match`), or already exists (`If-None-Match: *`).
    #[error(
        "the CalDAV event changed since it was read, or already exists (412 Precondition Failed)"
    )]
    PreconditionFailed,
    #[error("the CalDAV server is out of space or over quota (507 Insufficient Storage)")]
    InsufficientStorage,
    /// The server no longer knows the sync token (RFC 6578 `valid-sync-token`): list from scratch.
    #[error(
        "the CalDAV server no longer accepts the sync token; the calendar must be listed again"
    )]
    SyncTokenInvalid,
    #[error("the CalDAV server redirects {url} to {location}, which dncs does not follow; use that URL instead")]
    Redirect { url: String, location: String },
    #[error("the CalDAV server answered HTTP {status}: {snippet}")]
    Http { status: u16, snippet: String },
    #[error("could not reach the CalDAV server at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("the CalDAV server's reply is malformed: {0}")]
    Malformed(String),
    #[error("no calendar was found for this user on the CalDAV server")]
    NoCalendar,
}

impl CalDavError {
    /// Worth another try after a pause: the server is busy or briefly broken.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Http { status, .. } if matches!(status, 429 | 500 | 502 | 503 | 504))
    }
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Account {
    /// A server URL (`https://dav.example/`) or a calendar URL.
    pub base_url: String,
    pub username: String,
    pub password: String,
}

/// One calendar collection found by [`Client::discover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarInfo {
    /// Absolute URL of the collection.
    pub url: String,
    pub display_name: Option<String>,
    pub ctag: Option<String>,
    /// The collection offers `REPORT sync-collection` (RFC 6578).
    pub supports_sync: bool,
}

/// What changed since a sync token (or everything, without one).
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    /// Members added or changed: (href, etag).
    pub changed: Vec<(String, String)>,
    /// Members removed since the token.
    pub removed: Vec<String>,
    /// The token to give next time.
    pub token: String,
}

/// One calendar object resource read by [`Client::multiget`].
#[derive(Debug, Clone)]
pub struct Resource {
    pub href: String,
    pub etag: String,
    pub ics: String,
}

/// Where a `PUT` left the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The href (absolute path) of the resource.
    pub href: String,
    pub etag: String,
}

/// A reply, read whole.
#[derive(Debug)]
struct Reply {
    status: u16,
    etag: Option<String>,
    location: Option<String>,
    body: String,
}

/// A client for one CalDAV account.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    account: Account,
    /// `scheme://host[:port]` of `base_url`; hrefs (absolute paths) are resolved against it.
    origin: String,
    authorization: String,
    retry: RetryPolicy,
}

impl Client {
    pub fn new(agent: ureq::Agent, account: Account) -> Self {
        let origin = origin_of(&account.base_url);
        let credentials = format!("{}:{}", account.username, account.password);
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        Self {
            agent,
            account,
            origin,
            authorization,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The calendars of the account's URL: that collection itself when it is a calendar, else
    /// every calendar in the user's calendar home (found through `current-user-principal`, from
    /// the URL or from `/.well-known/caldav`, then `calendar-home-set`).
    pub fn discover(&self) -> Result<Vec<CalendarInfo>, CalDavError> {
        let base = self.account.base_url.clone();
        let start = self.propfind(&base, 0, &discovery_props());
        let principal = match start {
            Ok(found) => {
                let entry = found.responses.first();
                if let Some(entry) = entry.filter(|e| e.has_inner("resourcetype", "calendar")) {
                    return Ok(vec![self.calendar_info(entry)]);
                }
                if let Some(home) = entry.and_then(|e| e.href_in("calendar-home-set")) {
                    return self.calendars_in(&self.resolve(home));
                }
                entry
                    .and_then(|e| e.href_in("current-user-principal"))
                    .map(|p| self.resolve(p))
            }
            // A URL the server does not know as DAV may still be its host: try `.well-known`.
            Err(CalDavError::NotFound { .. } | CalDavError::Http { .. }) => None,
            Err(e) => return Err(e),
        };
        let principal = match principal {
            Some(principal) => principal,
            None => self.principal_from_well_known()?,
        };
        let found = self.propfind(&principal, 0, &discovery_props())?;
        let home = found
            .responses
            .first()
            .and_then(|e| e.href_in("calendar-home-set"))
            .map(|h| self.resolve(h))
            .ok_or(CalDavError::NoCalendar)?;
        self.calendars_in(&home)
    }

    /// `current-user-principal` from `/.well-known/caldav`, following one same-origin redirect.
    fn principal_from_well_known(&self) -> Result<String, CalDavError> {
        let mut url = format!("{}/.well-known/caldav", self.origin);
        let body = propfind_body(&discovery_props());
        let mut reply = self.send("PROPFIND", &url, &[("Depth", "0")], Some(&body))?;
        if (300..400).contains(&reply.status) {
            let location = reply.location.take().unwrap_or_default();
            let next = self.resolve(&location);
            // The password goes with the request: never to a host the server picked.
            if location.is_empty() || !next.starts_with(&format!("{}/", self.origin)) {
                return Err(CalDavError::Redirect { url, location });
            }
            url = next;
            reply = self.send("PROPFIND", &url, &[("Depth", "0")], Some(&body))?;
        }
        let found = multistatus::parse(&check(&url, reply)?.body)?;
        found
            .responses
            .first()
            .and_then(|e| e.href_in("current-user-principal"))
            .map(|p| self.resolve(p))
            .ok_or(CalDavError::NoCalendar)
    }

    /// The calendar collections directly inside a calendar home.
    fn calendars_in(&self, home: &str) -> Result<Vec<CalendarInfo>, CalDavError> {
        let found = self.propfind(home, 1, &discovery_props())?;
        let calendars: Vec<CalendarInfo> = found
            .responses
            .iter()
            .filter(|e| e.has_inner("resourcetype", "calendar"))
            .map(|e| self.calendar_info(e))
            .collect();
        if calendars.is_empty() {
            return Err(CalDavError::NoCalendar);
        }
        Ok(calendars)
    }

    fn calendar_info(&self, entry: &Entry) -> CalendarInfo {
        CalendarInfo {
            url: self.resolve(&entry.href),
            display_name: entry.text("displayname"),
            ctag: entry.text("getctag"),
            supports_sync: entry.has_inner("supported-report-set", "sync-collection"),
        }
    }

    /// The collection's CalendarServer `getctag`, if the server keeps one.
    /// The calendar to sync: the one at `url` when it is a calendar, else the account's first.
    pub fn find_calendar(&self, url: &str) -> Result<CalendarInfo, CalDavError> {
        let calendars = self.discover()?;
        let wanted = url.trim_end_matches('/');
        calendars
            .iter()
            .find(|c| c.url.trim_end_matches('/') == wanted)
            .or_else(|| calendars.first())
            .cloned()
            .ok_or(CalDavError::NoCalendar)
    }

    pub fn ctag(&self, calendar_url: &str) -> Result<Option<String>, CalDavError> {
        let found = self.propfind(calendar_url, 0, &[(CALENDARSERVER, "getctag")])?;
        Ok(found.responses.first().and_then(|e| e.text("getctag")))
    }

    /// RFC 6578 `sync-collection`: every member with its ETag (no token), or what changed since
    /// `token`. A token the server forgot is [`CalDavError::SyncTokenInvalid`].
    pub fn sync_collection(
        &self,
        calendar_url: &str,
        token: Option<&str>,
    ) -> Result<SyncResult, CalDavError> {
        let url = self.resolve(calendar_url);
        let mut result = SyncResult {
            token: token.unwrap_or_default().to_string(),
            ..SyncResult::default()
        };
        // A server may truncate a long answer (507 on the collection itself): ask again from the
        // token it gave until the answer is whole.
        for _ in 0..MAX_SYNC_ROUNDS {
            let body = sync_collection_body(&result.token);
            let reply = self.send("REPORT", &url, &[("Depth", "1")], Some(&body))?;
            if matches!(reply.status, 403 | 409) && reply.body.contains("valid-sync-token") {
                return Err(CalDavError::SyncTokenInvalid);
            }
            let found = multistatus::parse(&check(&url, reply)?.body)?;
            let mut truncated = false;
            for entry in &found.responses {
                if self.same_resource(&entry.href, &url) {
                    truncated |= entry.status == Some(507);
                    continue;
                }
                match (entry.status, entry.text("getetag")) {
                    (Some(404 | 410), _) => {
                        result.changed.retain(|(h, _)| h != &entry.href);
                        result.removed.push(entry.href.clone());
                    }
                    (_, Some(etag)) => {
                        result.removed.retain(|h| h != &entry.href);
                        result.changed.push((entry.href.clone(), etag));
                    }
                    _ => {}
                }
            }
            let next = found.sync_token.ok_or_else(|| {
                CalDavError::Malformed("a sync-collection reply without a sync-token".into())
            })?;
            let stalled = next == result.token;
            result.token = next;
            if !truncated || stalled {
                return Ok(result);
            }
        }
        Err(CalDavError::Malformed(
            "sync-collection never stopped truncating".into(),
        ))
    }

    /// Every event's (href, etag) by `calendar-query`, for servers without `sync-collection`;
    /// with `window`, only events overlapping it.
    pub fn list_etags(
        &self,
        calendar_url: &str,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<Vec<(String, String)>, CalDavError> {
        let url = self.resolve(calendar_url);
        let body = calendar_query_body(window);
        let reply = self.send("REPORT", &url, &[("Depth", "1")], Some(&body))?;
        let found = multistatus::parse(&check(&url, reply)?.body)?;
        Ok(found
            .responses
            .iter()
            .filter(|e| !self.same_resource(&e.href, &url))
            .filter_map(|e| e.text("getetag").map(|etag| (e.href.clone(), etag)))
            .collect())
    }

    /// The bodies and ETags of these members, by `calendar-multiget` in batches; hrefs the
    /// server no longer has are left out.
    pub fn multiget(
        &self,
        calendar_url: &str,
        hrefs: &[String],
    ) -> Result<Vec<Resource>, CalDavError> {
        let url = self.resolve(calendar_url);
        let mut out = Vec::with_capacity(hrefs.len());
        for batch in hrefs.chunks(MULTIGET_BATCH) {
            let paths: Vec<String> = batch.iter().map(|h| self.path_of(h)).collect();
            let body = multiget_body(&paths);
            let reply = self.send("REPORT", &url, &[("Depth", "1")], Some(&body))?;
            let found = multistatus::parse(&check(&url, reply)?.body)?;
            for entry in found.responses {
                if let (Some(etag), Some(ics)) =
                    (entry.text("getetag"), entry.text("calendar-data"))
                {
                    out.push(Resource {
                        href: entry.href,
                        etag,
                        ics,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Creates `name` in the calendar; an existing one answers [`CalDavError::PreconditionFailed`]
    /// (`If-None-Match: *`), so a retried create never overwrites.
    pub fn create(
        &self,
        calendar_url: &str,
        name: &str,
        ics: &str,
    ) -> Result<Written, CalDavError> {
        let mut url = self.resolve(calendar_url);
        if !url.ends_with('/') {
            url.push('/');
        }
        url.push_str(&utf8_percent_encode(name, SEGMENT).to_string());
        self.put(&url, ics, ("If-None-Match", "*"))
    }

    /// Replaces the resource if it still has `if_match` as its ETag.
    pub fn update(&self, href: &str, ics: &str, if_match: &str) -> Result<Written, CalDavError> {
        self.put(&self.resolve(href), ics, ("If-Match", if_match))
    }

    /// Deletes the resource (if it still has `if_match`); one already gone is not an error.
    pub fn delete(&self, href: &str, if_match: Option<&str>) -> Result<(), CalDavError> {
        let url = self.resolve(href);
        let headers: Vec<(&str, &str)> = if_match.map(|e| ("If-Match", e)).into_iter().collect();
        let reply = self.send("DELETE", &url, &headers, None)?;
        if matches!(reply.status, 404 | 410) {
            return Ok(());
        }
        check(&url, reply).map(|_| ())
    }

    fn put(&self, url: &str, ics: &str, condition: (&str, &str)) -> Result<Written, CalDavError> {
        let headers = [("Content-Type", "text/calendar; charset=utf-8"), condition];
        let reply = check(url, self.send("PUT", url, &headers, Some(ics))?)?;
        let etag = match reply.etag.filter(|e| !e.is_empty()) {
            Some(etag) => etag,
            // Servers that change the data they store may leave out the ETag (RFC 4791 §5.3.4).
            None => self
                .propfind(url, 0, &[(DAV, "getetag")])?
                .responses
                .first()
                .and_then(|e| e.text("getetag"))
                .ok_or_else(|| CalDavError::Malformed(format!("no ETag for {url}")))?,
        };
        Ok(Written {
            href: self.path_of(url),
            etag,
        })
    }

    fn propfind(
        &self,
        url: &str,
        depth: u8,
        props: &[(&str, &str)],
    ) -> Result<Multistatus, CalDavError> {
        let url = self.resolve(url);
        let body = propfind_body(props);
        let depth = depth.to_string();
        let reply = self.send("PROPFIND", &url, &[("Depth", &depth)], Some(&body))?;
        multistatus::parse(&check(&url, reply)?.body)
    }

    /// Sends one request (retrying busy servers) and reads the reply whatever its status.
    /// `body` is XML, unless `headers` name another `Content-Type`.
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, CalDavError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|e| CalDavError::Malformed(format!("method {method}: {e}")))?;
        let outcome = retry(
            &self.retry,
            CalDavError::is_transient,
            |_| None::<Duration>,
            |_| {
                let mut builder = http::Request::builder()
                    .method(method.clone())
                    .uri(url)
                    .header("Authorization", &self.authorization);
                if body.is_some() && !headers.iter().any(|(k, _)| k == &"Content-Type") {
                    builder = builder.header("Content-Type", "application/xml; charset=utf-8");
                }
                for (name, value) in headers {
                    builder = builder.header(*name, *value);
                }
                let bad_request = |e: http::Error| CalDavError::Transport {
                    url: url.into(),
                    reason: format!("invalid request: {e}"),
                };
                let response = match body {
                    Some(text) => self.run(builder.body(text.as_bytes()).map_err(bad_request)?),
                    None => self.run(builder.body(()).map_err(bad_request)?),
                };
                let reply = read_reply(url, response)?;
                // Busy answers go back to the retry loop as errors; the rest to the caller.
                match reply.status {
                    429 | 500 | 502 | 503 | 504 => Err(CalDavError::Http {
                        status: reply.status,
                        snippet: snippet(&reply.body),
                    }),
                    _ => Ok(reply),
                }
            },
        );
        outcome.result
    }

    fn run<S: ureq::AsSendBody>(
        &self,
        request: http::Request<S>,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        // WebDAV methods are not in ureq's list, and redirects are ours to judge.
        let request = self
            .agent
            .configure_request(request)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .build();
        self.agent.run(request)
    }

    /// An absolute URL for an href: kept when absolute, else against the origin (absolute paths)
    /// or the account's URL (relative ones).
    fn resolve(&self, href: &str) -> String {
        if href.starts_with("http://") || href.starts_with("https://") {
            href.to_string()
        } else if href.starts_with('/') {
            format!("{}{href}", self.origin)
        } else {
            let base = &self.account.base_url;
            let dir = base.rfind('/').map_or(base.as_str(), |i| &base[..=i]);
            format!("{dir}{href}")
        }
    }

    /// The absolute path of a URL on our origin, as hrefs in listings are written.
    fn path_of(&self, url: &str) -> String {
        match url.strip_prefix(&self.origin) {
            Some(path) if path.starts_with('/') => path.to_string(),
            Some("") => "/".into(),
            _ => url.to_string(),
        }
    }

    /// Whether an href names this URL (the collection itself, listed among its members).
    fn same_resource(&self, href: &str, url: &str) -> bool {
        self.resolve(href).trim_end_matches('/') == url.trim_end_matches('/')
    }
}

/// Turns a non-2xx reply into its error.
fn check(url: &str, reply: Reply) -> Result<Reply, CalDavError> {
    match reply.status {
        200..=299 => Ok(reply),
        300..=399 => Err(CalDavError::Redirect {
            url: url.into(),
            location: reply.location.unwrap_or_default(),
        }),
        401 => Err(CalDavError::Unauthorized),
        403 => Err(CalDavError::Forbidden {
            snippet: snippet(&reply.body),
        }),
        404 | 410 => Err(CalDavError::NotFound { url: url.into() }),
        412 => Err(CalDavError::PreconditionFailed),
        507 => Err(CalDavError::InsufficientStorage),
        status => Err(CalDavError::Http {
            status,
            snippet: snippet(&reply.body),
        }),
    }
}

fn read_reply(
    url: &str,
    response: Result<http::Response<ureq::Body>, ureq::Error>,
) -> Result<Reply, CalDavError> {
    let transport = |e: ureq::Error| CalDavError::Transport {
        url: url.into(),
        reason: e.to_string(),
    };
    let mut response = response.map_err(transport)?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    };
    let (etag, location) = (header("ETag"), header("Location"));
    let raw = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .read_to_vec()
        .map_err(transport)?;
    Ok(Reply {
        status: response.status().as_u16(),
        etag,
        location,
        body: String::from_utf8_lossy(&raw).into_owned(),
    })
}

/// The first characters of an error body, for messages.
fn snippet(body: &str) -> String {
    let trimmed = body.trim();
    let mut out: String = trimmed.chars().take(200).collect();
    if trimmed.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// `scheme://host[:port]` of a URL (the URL itself when it has no path).
pub fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url[..after_scheme + i].to_string(),
        None => url.trim_end_matches('/').to_string(),
    }
}

/// Everything but RFC 3986 unreserved characters, for one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The properties discovery asks for at every step.
fn discovery_props() -> Vec<(&'static str, &'static str)> {
    vec![
        (DAV, "resourcetype"),
        (DAV, "displayname"),
        (DAV, "current-user-principal"),
        (DAV, "supported-report-set"),
        (CALDAV, "calendar-home-set"),
        (CALENDARSERVER, "getctag"),
    ]
}

/// `<d:propfind><d:prop>…</d:prop></d:propfind>` with the namespaces the props name.
fn propfind_body(props: &[(&str, &str)]) -> String {
    let mut w = root("d:propfind");
    w.open("d:prop", &[]);
    prop_list(&mut w, props);
    w.close("d:prop").close("d:propfind");
    w.finish()
}

fn sync_collection_body(token: &str) -> String {
    let mut w = root("d:sync-collection");
    w.text_element("d:sync-token", token)
        .text_element("d:sync-level", "1")
        .open("d:prop", &[])
        .empty("d:getetag", &[])
        .close("d:prop")
        .close("d:sync-collection");
    w.finish()
}

fn calendar_query_body(window: Option<(DateTime<Utc>, DateTime<Utc>)>) -> String {
    let mut w = root("c:calendar-query");
    w.open("d:prop", &[])
        .empty("d:getetag", &[])
        .close("d:prop")
        .open("c:filter", &[])
        .open("c:comp-filter", &[("name", "VCALENDAR")]);
    match window {
        Some((start, end)) => {
            let (start, end) = (caldav_time(start), caldav_time(end));
            w.open("c:comp-filter", &[("name", "VEVENT")])
                .empty("c:time-range", &[("start", &start), ("end", &end)])
                .close("c:comp-filter");
        }
        None => {
            w.empty("c:comp-filter", &[("name", "VEVENT")]);
        }
    }
    w.close("c:comp-filter")
        .close("c:filter")
        .close("c:calendar-query");
    w.finish()
}

fn multiget_body(paths: &[String]) -> String {
    let mut w = root("c:calendar-multiget");
    w.open("d:prop", &[])
        .empty("d:getetag", &[])
        .empty("c:calendar-data", &[])
        .close("d:prop");
    for path in paths {
        w.text_element("d:href", path);
    }
    w.close("c:calendar-multiget");
    w.finish()
}

/// A document whose root declares the three namespaces as `d`, `c` and `cs`.
fn root(name: &str) -> Writer {
    let mut w = Writer::new();
    w.raw(r#"<?xml version="1.0" encoding="utf-8"?>"#).open(
        name,
        &[
            ("xmlns:d", DAV),
            ("xmlns:c", CALDAV),
            ("xmlns:cs", CALENDARSERVER),
        ],
    );
    w
}

fn prop_list(w: &mut Writer, props: &[(&str, &str)]) {
    for (namespace, local) in props {
        let prefix = match *namespace {
            CALDAV => "c",
            CALENDARSERVER => "cs",
            _ => "d",
        };
        w.empty(&format!("{prefix}:{local}"), &[]);
    }
}

/// RFC 5545 UTC date-time, as `time-range` wants it.
fn caldav_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_hrefs_resolve() {
        assert_eq!(origin_of("https://h:8443/dav/cal/"), "https://h:8443");
        assert_eq!(origin_of("http://h"), "http://h");
        let client = Client::new(
            ureq::Agent::new_with_defaults(),
            Account {
                base_url: "https://h/dav/u/cal/".into(),
                username: "u".into(),
                password: "p".into(),
            },
        );
        assert_eq!(client.resolve("/dav/u/x.ics"), "https://h/dav/u/x.ics");
        assert_eq!(client.resolve("x.ics"), "https://h/dav/u/cal/x.ics");
        assert_eq!(client.resolve("http://o/y"), "http://o/y");
        assert_eq!(client.path_of("https://h/dav/u/x.ics"), "/dav/u/x.ics");
        assert!(client.same_resource("/dav/u/cal", "https://h/dav/u/cal/"));
    }

    #[test]
    fn request_bodies_are_well_formed() {
        let start = DateTime::from_timestamp(0, 0).expect("epoch");
        for body in [
            propfind_body(&discovery_props()),
            sync_collection_body("a<&b"),
            calendar_query_body(Some((start, start))),
            calendar_query_body(None),
            multiget_body(&["/a b&.ics".into()]),
        ] {
            crate::xml::parse(&body).expect("well-formed");
        }
        assert!(calendar_query_body(Some((start, start))).contains("19700101T000000Z"));
    }
}
