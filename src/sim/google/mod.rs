//! A simulated Google over real HTTP: the OAuth consent page and token endpoint (`oauth`) and the
//! Calendar API v3 events of every account (`calendar`), with the same JSON shapes and failures as
//! Google, switchable misbehaviour (rate limits, server errors, latency, raw replies), a journal
//! of calls, and helpers to arrange a linked user or change an event "as the phone would".
//!
//! Paths: `GET|POST /o/oauth2/v2/auth`, `POST /token`, `/calendar/v3/calendars/{id}/events[/{id}]`.

pub mod calendar;
pub mod oauth;

use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use oauth::{pkce_challenge, Consent, DEFAULT_ACCOUNT};

use crate::google::Event;
use crate::sim::{Reply, Server};
use calendar::Store;
use oauth::Auth;

/// Largest request body the simulator reads.
const MAX_REQUEST_BYTES: u64 = 16 * 1024 * 1024;
/// Where the Calendar API lives on the simulator, as on `www.googleapis.com`.
pub const API_PATH: &str = "/calendar/v3";
pub const AUTH_PATH: &str = "/o/oauth2/v2/auth";
pub const TOKEN_PATH: &str = "/token";
/// The OAuth client the simulator knows from the start.
pub const CLIENT_ID: &str = "dncs-sim.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "dncs-sim-secret";

/// A failure the simulator answers instead of serving a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 403 `rateLimitExceeded`.
    RateLimitExceeded,
    /// 403 `userRateLimitExceeded`.
    UserRateLimitExceeded,
    /// 429 `rateLimitExceeded`.
    TooManyRequests,
    /// 500 `backendError`.
    InternalError,
    /// 503 `backendError`.
    Unavailable,
}

/// How the simulator misbehaves; every switch is off by default. Failures and raw replies
/// answer the token endpoint and the Calendar API, never the consent page.
#[derive(Debug, Clone, Default)]
pub struct Quirks {
    /// Answer the next calls with these failures, one each, in order.
    pub fail_next: Vec<Failure>,
    /// `Retry-After` seconds sent with 429 and 503.
    pub retry_after: Option<u64>,
    /// Wait this long before answering.
    pub latency: Duration,
    /// Wait this long before handling a request: what changes meanwhile (a phone's edit) is what
    /// the request meets, as on a server far away.
    pub handling_delay: Duration,
    /// Answer the next calls with these bodies verbatim (status, body), as `application/json`.
    pub raw_replies: Vec<(u16, String)>,
}

impl Quirks {
    /// Answers the next `times` calls with `failure`.
    pub fn fail_next(&mut self, failure: Failure, times: usize) {
        self.fail_next.extend(std::iter::repeat_n(failure, times));
    }
}

/// One request and its answer, kept when recording is on (tests check them against the
/// discovery document).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    pub request: String,
    pub status: u16,
    pub response: String,
}

#[derive(Default)]
struct Journal {
    recording: bool,
    calls: Vec<String>,
    exchanges: Vec<Exchange>,
}

struct Shared {
    store: Mutex<Store>,
    auth: Mutex<Auth>,
    quirks: Mutex<Quirks>,
    journal: Mutex<Journal>,
}

/// An answer before it is sent.
pub(crate) struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    location: Option<String>,
}

impl Answer {
    fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json; charset=UTF-8",
            body: value.to_string(),
            location: None,
        }
    }

    fn html(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            body,
            location: None,
        }
    }

    fn redirect(location: &str) -> Self {
        Self {
            status: 302,
            content_type: "text/html; charset=utf-8",
            body: String::new(),
            location: Some(location.to_string()),
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: String::new(),
            location: None,
        }
    }
}

/// A running simulator; it stops when dropped.
pub struct GoogleSim {
    shared: Arc<Shared>,
    server: Server,
}

impl GoogleSim {
    /// Starts on a free loopback port.
    pub fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0")
    }

    pub fn start_on(address: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            auth: Mutex::new(Auth::new(CLIENT_ID, CLIENT_SECRET)),
            quirks: Mutex::new(Quirks::default()),
            journal: Mutex::new(Journal::default()),
        });
        let handler_shared = shared.clone();
        let server = Server::start("google simulator", address, 4, move |request| {
            serve(&handler_shared, request)
        })?;
        Ok(Self { shared, server })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.address())
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.server.address()
    }

    /// `GOOGLE_AUTH_URL` for this simulator.
    pub fn auth_url(&self) -> String {
        format!("{}{AUTH_PATH}", self.url())
    }

    /// `GOOGLE_TOKEN_URL` for this simulator.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url())
    }

    /// `GOOGLE_API_BASE` for this simulator.
    pub fn api_base(&self) -> String {
        format!("{}{API_PATH}", self.url())
    }

    pub fn client_id(&self) -> &'static str {
        CLIENT_ID
    }

    pub fn client_secret(&self) -> &'static str {
        CLIENT_SECRET
    }

    /// Registers another OAuth client (e.g. the legacy one).
    pub fn add_client(&self, id: &str, secret: &str) {
        lock(&self.shared.auth).add_client(id, secret);
    }

    /// Creates an account (with its primary calendar, whose id is the address).
    pub fn add_account(&self, account: &str) {
        lock(&self.shared.store).add_account(account);
    }

    /// Adds a secondary calendar to an account (e.g. `…@group.calendar.google.com`).
    pub fn add_calendar(&self, account: &str, calendar_id: &str) {
        lock(&self.shared.store).add_calendar(account, calendar_id);
    }

    /// What the consent screen answers from now on.
    pub fn set_consent(&self, consent: Consent) {
        lock(&self.shared.auth).consent = consent;
    }

    /// A refresh token of the default client for `account`, as if the user had consented.
    pub fn issue_refresh_token(&self, account: &str) -> String {
        self.add_account(account);
        lock(&self.shared.auth).issue_refresh_token(CLIENT_ID, account)
    }

    /// A refresh token of another registered client (e.g. the legacy one).
    pub fn issue_refresh_token_for(&self, client_id: &str, account: &str) -> String {
        self.add_account(account);
        lock(&self.shared.auth).issue_refresh_token(client_id, account)
    }

    /// An access token for `account`, valid for an hour.
    pub fn issue_access_token(&self, account: &str) -> String {
        self.add_account(account);
        lock(&self.shared.auth).issue_access_token(account, None)
    }

    /// Revokes a refresh token (the user removed the app's access) and its access tokens.
    pub fn revoke(&self, refresh_token: &str) {
        lock(&self.shared.auth).revoke(refresh_token);
    }

    /// Makes every access token issued so far expired.
    pub fn expire_access_tokens(&self) {
        lock(&self.shared.auth).expire_access_tokens();
    }

    /// Makes every sync token issued so far answer 410 `fullSyncRequired`.
    pub fn expire_sync_tokens(&self) {
        lock(&self.shared.store).expire_sync_tokens();
    }

    /// The quirk switches.
    pub fn quirks(&self) -> MutexGuard<'_, Quirks> {
        lock(&self.shared.quirks)
    }

    /// Every event of a calendar (`primary` or an id), cancelled ones included.
    pub fn events(&self, account: &str, calendar_id: &str) -> Vec<Event> {
        lock(&self.shared.store).events(account, calendar_id)
    }

    /// One event, if it exists (cancelled included).
    pub fn event(&self, account: &str, calendar_id: &str, id: &str) -> Option<Event> {
        self.events(account, calendar_id)
            .into_iter()
            .find(|e| e.id.as_deref() == Some(id))
    }

    /// Creates an event as the phone would; Google fills in id, etag and the rest. The account
    /// is created when new; `None` when it has no such calendar.
    pub fn phone_insert(&self, account: &str, calendar_id: &str, event: Event) -> Option<Event> {
        let mut store = lock(&self.shared.store);
        store.add_account(account);
        store.create(account, calendar_id, event)
    }

    /// Changes an event as the phone would (a new etag and `updated`).
    pub fn phone_edit(
        &self,
        account: &str,
        calendar_id: &str,
        id: &str,
        change: impl FnOnce(&mut Event),
    ) -> Option<Event> {
        lock(&self.shared.store).edit(account, calendar_id, id, change)
    }

    /// Deletes an event as the phone would (it becomes `cancelled`).
    pub fn phone_delete(&self, account: &str, calendar_id: &str, id: &str) -> Option<Event> {
        self.phone_edit(account, calendar_id, id, |e| {
            e.status = Some(crate::google::EventStatus::Cancelled);
        })
    }

    /// Keeps every request and reply from now on.
    pub fn record(&self, on: bool) {
        lock(&self.shared.journal).recording = on;
    }

    /// The exchanges recorded so far, emptied.
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut lock(&self.shared.journal).exchanges)
    }

    /// The calls so far as `METHOD /path` (query left out), in order, emptied.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.shared.journal).calls)
    }

    /// Serves until the process ends.
    pub fn serve_forever(self) {
        self.server.wait();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

/// Decodes `%XX`; with `plus_as_space` also `+` (forms and queries, not paths).
fn decode(text: &str, plus_as_space: bool) -> String {
    let text = if plus_as_space {
        text.replace('+', " ")
    } else {
        text.to_string()
    };
    percent_encoding::percent_decode_str(&text)
        .decode_utf8_lossy()
        .into_owned()
}

fn pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name, true), decode(value, true))
        })
        .collect()
}

fn serve(shared: &Shared, request: &mut tiny_http::Request) -> Reply {
    let mut raw = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut raw);
    let body = String::from_utf8_lossy(&raw).into_owned();
    let method = request.method().as_str().to_uppercase();
    let (raw_path, raw_query) = request.url().split_once('?').unwrap_or((request.url(), ""));
    let segments: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| decode(s, false))
        .collect();
    let path = format!("/{}", segments.join("/"));
    let query = pairs(raw_query);
    let handling_delay = lock(&shared.quirks).handling_delay;
    if !handling_delay.is_zero() {
        std::thread::sleep(handling_delay);
    }
    let answer = match read {
        Err(e) => Answer::html(400, format!("could not read the request: {e}")),
        Ok(_) => route(shared, request, &method, raw_path, &segments, &query, &body),
    };
    let latency = lock(&shared.quirks).latency;
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    {
        let mut journal = lock(&shared.journal);
        journal.calls.push(format!("{method} {path}"));
        if journal.recording {
            journal.exchanges.push(Exchange {
                method: method.clone(),
                path,
                query,
                request: body,
                status: answer.status,
                response: answer.body.clone(),
            });
        }
    }
    reply(shared, answer)
}

fn reply(shared: &Shared, answer: Answer) -> Reply {
    let mut response =
        tiny_http::Response::from_string(answer.body).with_status_code(answer.status);
    let mut headers = vec![("Content-Type", answer.content_type.to_string())];
    if let Some(location) = answer.location {
        headers.push(("Location", location));
    }
    if matches!(answer.status, 429 | 503) {
        if let Some(seconds) = lock(&shared.quirks).retry_after {
            headers.push(("Retry-After", seconds.to_string()));
        }
    }
    for (name, value) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    response
}

fn route(
    shared: &Shared,
    request: &tiny_http::Request,
    method: &str,
    raw_path: &str,
    segments: &[String],
    query: &[(String, String)],
    body: &str,
) -> Answer {
    if raw_path == AUTH_PATH {
        let mut auth = lock(&shared.auth);
        return match method {
            "GET" => auth.authorize(query),
            "POST" => auth.decide(&pairs(body)),
            _ => Answer::html(405, "Method Not Allowed".into()),
        };
    }
    if let Some(answer) = injected(shared) {
        return answer;
    }
    if raw_path == TOKEN_PATH {
        if method != "POST" {
            return Answer::html(405, "Method Not Allowed".into());
        }
        let basic = header(request, "Authorization");
        return lock(&shared.auth).token(&pairs(body), basic.as_deref());
    }
    let api_segments: Vec<&str> = API_PATH.split('/').filter(|s| !s.is_empty()).collect();
    let under_api = segments.len() > api_segments.len()
        && segments
            .iter()
            .zip(&api_segments)
            .all(|(a, b)| a.as_str() == *b);
    if !under_api {
        return Answer::html(404, "Not Found".into());
    }
    let authorization = header(request, "Authorization");
    let Some(account) = lock(&shared.auth).account_of(authorization.as_deref()) else {
        return unauthorized();
    };
    let if_match = header(request, "If-Match");
    let mut store = lock(&shared.store);
    store.add_account(&account);
    store.serve(
        &account,
        method,
        &segments[api_segments.len()..],
        query,
        if_match.as_deref(),
        body,
    )
}

fn unauthorized() -> Answer {
    Answer::json(
        401,
        &serde_json::json!({"error": {"errors": [{"domain": "global", "reason": "authError",
            "message": "Invalid Credentials", "locationType": "header", "location": "Authorization"}],
            "code": 401, "message": "Invalid Credentials"}}),
    )
}

/// The next injected failure or raw reply, if any.
fn injected(shared: &Shared) -> Option<Answer> {
    let mut quirks = lock(&shared.quirks);
    if !quirks.raw_replies.is_empty() {
        let (status, body) = quirks.raw_replies.remove(0);
        return Some(Answer {
            status,
            content_type: "application/json; charset=UTF-8",
            body,
            location: None,
        });
    }
    if quirks.fail_next.is_empty() {
        return None;
    }
    let answer = match quirks.fail_next.remove(0) {
        Failure::RateLimitExceeded => calendar::api_error(
            403,
            "usageLimits",
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        ),
        Failure::UserRateLimitExceeded => calendar::api_error(
            403,
            "usageLimits",
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
        ),
        Failure::TooManyRequests => calendar::api_error(
            429,
            "usageLimits",
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        ),
        Failure::InternalError => {
            calendar::api_error(500, "global", "backendError", "Backend Error")
        }
        Failure::Unavailable => calendar::api_error(
            503,
            "global",
            "backendError",
            "The service is currently unavailable.",
        ),
    };
    Some(answer)
}
