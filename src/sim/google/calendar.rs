//! The simulated calendars: accounts, their calendars and events, and the Calendar API v3 event
//! methods over them with Google's semantics (sync tokens, paging, cancelled events, etags,
//! client-chosen ids, `If-Match`).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::Answer;
use crate::google::calendar::is_valid_event_id;
use crate::google::event::{Event, EventDateTime, EventStatus, EventType};

/// Largest `maxResults` Google accepts.
const MAX_PAGE_SIZE: usize = 2500;
const DEFAULT_PAGE_SIZE: usize = 250;

/// One stored event and the change number that last touched it.
#[derive(Debug, Clone)]
struct Stored {
    event: Event,
    change: u64,
}

#[derive(Debug, Default)]
struct CalendarData {
    events: BTreeMap<String, Stored>,
    /// The last change number handed out in this calendar.
    changes: u64,
}

#[derive(Debug, Default)]
struct Account {
    /// Calendar id → data; the primary calendar's id is the account's address.
    calendars: BTreeMap<String, CalendarData>,
}

/// Every account's calendars.
#[derive(Debug)]
pub(super) struct Store {
    accounts: BTreeMap<String, Account>,
    /// Raised by `expire_sync_tokens`: tokens of an older epoch answer 410.
    sync_epoch: u64,
    last_etag: u64,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            accounts: BTreeMap::new(),
            sync_epoch: 1,
            // The size of the numbers real etags carry.
            last_etag: 3_374_825_283_052_000,
        }
    }
}

/// A query of `events.list` and the other methods, decoded.
pub(super) type Query = [(String, String)];

fn param<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn api_error(status: u16, domain: &str, reason: &str, message: &str) -> Answer {
    Answer::json(
        status,
        &json!({"error": {"errors": [{"domain": domain, "reason": reason, "message": message}],
                "code": status, "message": message}}),
    )
}

fn not_found() -> Answer {
    api_error(404, "global", "notFound", "Not Found")
}

fn invalid(message: &str) -> Answer {
    api_error(400, "global", "invalid", message)
}

fn required(message: &str) -> Answer {
    api_error(400, "global", "required", message)
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Store {
    pub(super) fn add_account(&mut self, email: &str) {
        self.accounts
            .entry(email.to_string())
            .or_default()
            .calendars
            .entry(email.to_string())
            .or_default();
    }

    pub(super) fn add_calendar(&mut self, email: &str, calendar_id: &str) {
        self.add_account(email);
        if let Some(account) = self.accounts.get_mut(email) {
            account
                .calendars
                .entry(calendar_id.to_string())
                .or_default();
        }
    }

    pub(super) fn expire_sync_tokens(&mut self) {
        self.sync_epoch += 1;
    }

    fn calendar_mut(&mut self, email: &str, calendar_id: &str) -> Option<&mut CalendarData> {
        let id = if calendar_id == "primary" {
            email
        } else {
            calendar_id
        };
        self.accounts.get_mut(email)?.calendars.get_mut(id)
    }

    fn next_etag(&mut self) -> String {
        let micros = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        self.last_etag = micros.max(self.last_etag + 1);
        format!("\"{}\"", self.last_etag)
    }

    /// Every event of a calendar, cancelled ones included, in id order.
    pub(super) fn events(&mut self, email: &str, calendar_id: &str) -> Vec<Event> {
        self.calendar_mut(email, calendar_id)
            .map(|c| c.events.values().map(|s| s.event.clone()).collect())
            .unwrap_or_default()
    }

    /// Stores a change: a new etag, `updated`, and change number.
    fn touch(&mut self, email: &str, calendar_id: &str, mut event: Event) -> Option<Event> {
        let etag = self.next_etag();
        let calendar = self.calendar_mut(email, calendar_id)?;
        let id = event.id.clone()?;
        calendar.changes += 1;
        event.etag = Some(etag);
        event.updated = Some(now_text());
        calendar.events.insert(
            id,
            Stored {
                event: event.clone(),
                change: calendar.changes,
            },
        );
        Some(event)
    }

    /// Changes an event as another client (the phone) would. `None` when there is no such event.
    pub(super) fn edit(
        &mut self,
        email: &str,
        calendar_id: &str,
        id: &str,
        change: impl FnOnce(&mut Event),
    ) -> Option<Event> {
        let mut event = self
            .calendar_mut(email, calendar_id)?
            .events
            .get(id)?
            .event
            .clone();
        change(&mut event);
        event.id = Some(id.to_string());
        self.touch(email, calendar_id, event)
    }

    /// Creates an event as another client would (an id is made up when it has none).
    pub(super) fn create(
        &mut self,
        email: &str,
        calendar_id: &str,
        mut event: Event,
    ) -> Option<Event> {
        let id = event.id.clone().unwrap_or_else(random_id);
        fill_new(email, &id, &mut event);
        self.touch(email, calendar_id, event)
    }

    /// Serves `calendars/{calendarId}/events[/{eventId}]`.
    pub(super) fn serve(
        &mut self,
        email: &str,
        method: &str,
        segments: &[String],
        query: &Query,
        if_match: Option<&str>,
        body: &str,
    ) -> Answer {
        let (calendar_id, event_id) = match segments {
            [calendars, calendar, events] if calendars == "calendars" && events == "events" => {
                (calendar.as_str(), None)
            }
            [calendars, calendar, events, id] if calendars == "calendars" && events == "events" => {
                (calendar.as_str(), Some(id.as_str()))
            }
            _ => return not_found(),
        };
        if self.calendar_mut(email, calendar_id).is_none() {
            return not_found();
        }
        match (method, event_id) {
            ("GET", None) => self.list(email, calendar_id, query),
            ("POST", None) => self.insert(email, calendar_id, body),
            ("GET", Some(id)) => match self.stored(email, calendar_id, id) {
                Some(stored) => event_answer(200, &stored.event),
                None => not_found(),
            },
            ("PUT", Some(id)) => self.update(email, calendar_id, id, if_match, body),
            ("DELETE", Some(id)) => self.delete(email, calendar_id, id, if_match),
            _ => api_error(405, "global", "httpMethodNotAllowed", "Method Not Allowed"),
        }
    }

    fn stored(&mut self, email: &str, calendar_id: &str, id: &str) -> Option<Stored> {
        self.calendar_mut(email, calendar_id)?
            .events
            .get(id)
            .cloned()
    }

    fn insert(&mut self, email: &str, calendar_id: &str, body: &str) -> Answer {
        let mut event: Event = match serde_json::from_str(body) {
            Ok(event) => event,
            Err(_) => return api_error(400, "global", "parseError", "Parse Error"),
        };
        let id = match event.id.clone() {
            Some(id) if !is_valid_event_id(&id) => return invalid("Invalid resource id value."),
            Some(id) => id,
            None => random_id(),
        };
        if self.stored(email, calendar_id, &id).is_some() {
            return api_error(
                409,
                "global",
                "duplicate",
                "The requested identifier already exists.",
            );
        }
        if let Some(refusal) = check_times(&event) {
            return refusal;
        }
        fill_new(email, &id, &mut event);
        match self.touch(email, calendar_id, event) {
            Some(stored) => event_answer(200, &stored),
            None => not_found(),
        }
    }

    fn update(
        &mut self,
        email: &str,
        calendar_id: &str,
        id: &str,
        if_match: Option<&str>,
        body: &str,
    ) -> Answer {
        let Some(current) = self.stored(email, calendar_id, id) else {
            return not_found();
        };
        if if_match.is_some_and(|etag| Some(etag) != current.event.etag.as_deref()) {
            return api_error(412, "global", "conditionNotMet", "Precondition Failed");
        }
        let mut event: Event = match serde_json::from_str(body) {
            Ok(event) => event,
            Err(_) => return api_error(400, "global", "parseError", "Parse Error"),
        };
        if let Some(refusal) = check_times(&event) {
            return refusal;
        }
        // What the server owns stays; everything else is replaced, as PUT does.
        event.id = Some(id.to_string());
        event.status = Some(event.status.unwrap_or(EventStatus::Confirmed));
        event.ical_uid = current.event.ical_uid.clone();
        event.event_type = current.event.event_type;
        for key in ["kind", "created", "htmlLink", "creator", "organizer"] {
            match current.event.preserved.get(key) {
                Some(value) => event.preserved.insert(key.into(), value.clone()),
                None => event.preserved.remove(key),
            };
        }
        let sequence = current
            .event
            .preserved
            .get("sequence")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        event
            .preserved
            .insert("sequence".into(), json!(sequence + 1));
        match self.touch(email, calendar_id, event) {
            Some(stored) => event_answer(200, &stored),
            None => not_found(),
        }
    }

    fn delete(
        &mut self,
        email: &str,
        calendar_id: &str,
        id: &str,
        if_match: Option<&str>,
    ) -> Answer {
        let Some(current) = self.stored(email, calendar_id, id) else {
            return not_found();
        };
        if current.event.is_cancelled() {
            return api_error(410, "global", "deleted", "Resource has been deleted");
        }
        if if_match.is_some_and(|etag| Some(etag) != current.event.etag.as_deref()) {
            return api_error(412, "global", "conditionNotMet", "Precondition Failed");
        }
        let mut event = current.event;
        event.status = Some(EventStatus::Cancelled);
        match self.touch(email, calendar_id, event) {
            Some(_) => Answer::empty(204),
            None => not_found(),
        }
    }

    fn list(&mut self, email: &str, calendar_id: &str, query: &Query) -> Answer {
        let page_size = match param(query, "maxResults").map(str::parse::<usize>) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if n >= 1 => n.min(MAX_PAGE_SIZE),
            Some(_) => return invalid("Invalid value for: maxResults"),
        };
        let flag = |name: &str| param(query, name) == Some("true");
        if flag("singleEvents") {
            return invalid("singleEvents=true (instance expansion) is not simulated");
        }
        let sync_token = param(query, "syncToken");
        let bound = |name: &str| -> Result<Option<DateTime<Utc>>, Answer> {
            match param(query, name) {
                None => Ok(None),
                Some(text) => DateTime::parse_from_rfc3339(text)
                    .map(|t| Some(t.with_timezone(&Utc)))
                    .map_err(|_| invalid(&format!("Bad Request: {name}"))),
            }
        };
        let (time_min, time_max) = match (bound("timeMin"), bound("timeMax")) {
            (Ok(min), Ok(max)) => (min, max),
            (Err(answer), _) | (_, Err(answer)) => return answer,
        };
        let epoch = self.sync_epoch;
        let Some(calendar) = self.calendar_mut(email, calendar_id) else {
            return not_found();
        };
        let since = match sync_token {
            Some(_)
                if time_min.is_some()
                    || time_max.is_some()
                    || param(query, "orderBy").is_some()
                    || param(query, "q").is_some() =>
            {
                return invalid(
                    "Sync token cannot be combined with timeMin, timeMax, orderBy or q.",
                )
            }
            Some(token) => match decode_sync_token(token, email, calendar_id, epoch) {
                Some(since) if since <= calendar.changes => Some(since),
                _ => {
                    return api_error(
                        410,
                        "calendar",
                        "fullSyncRequired",
                        "Sync token is no longer valid, a full sync is required.",
                    )
                }
            },
            None => None,
        };
        let (as_of, after) = match param(query, "pageToken") {
            None => (calendar.changes, 0),
            Some(token) => match decode_page_token(token) {
                Some(position) => position,
                None => return invalid("Invalid page token value."),
            },
        };
        let show_deleted = since.is_some() || flag("showDeleted");
        let mut matching: Vec<&Stored> = calendar
            .events
            .values()
            .filter(|s| s.change > after)
            .filter(|s| match since {
                Some(since) => s.change > since,
                None => {
                    (show_deleted || !s.event.is_cancelled())
                        && overlaps(&s.event, time_min, time_max)
                }
            })
            .collect();
        matching.sort_by_key(|s| s.change);
        let more = matching.len() > page_size;
        matching.truncate(page_size);
        let items: Vec<serde_json::Value> = matching
            .iter()
            .map(|s| serde_json::to_value(&s.event).unwrap_or_default())
            .collect();
        let mut reply = json!({
            "kind": "calendar#events",
            "etag": format!("\"p{as_of}\""),
            "summary": if calendar_id == "primary" { email } else { calendar_id },
            "updated": now_text(),
            "timeZone": "Asia/Tokyo",
            "accessRole": "owner",
            "defaultReminders": [{"method": "popup", "minutes": 10}],
            "items": items,
        });
        match matching.last() {
            Some(last) if more => {
                reply["nextPageToken"] = json!(encode_page_token(as_of, last.change));
            }
            _ => {
                reply["nextSyncToken"] = json!(encode_sync_token(email, calendar_id, epoch, as_of));
            }
        }
        Answer::json(200, &reply)
    }
}

fn event_answer(status: u16, event: &Event) -> Answer {
    Answer::json(status, &serde_json::to_value(event).unwrap_or_default())
}

/// What Google fills in on a new event.
fn fill_new(email: &str, id: &str, event: &mut Event) {
    event.id = Some(id.to_string());
    event.status = Some(event.status.unwrap_or(EventStatus::Confirmed));
    event.event_type = Some(event.event_type.unwrap_or(EventType::Default));
    if event.ical_uid.is_none() {
        event.ical_uid = Some(format!("{id}@google.com"));
    }
    let person = json!({"email": email, "self": true});
    let fields = [
        ("kind", json!("calendar#event")),
        ("created", json!(now_text())),
        (
            "htmlLink",
            json!(format!(
                "https://www.google.com/calendar/event?eid={}",
                URL_SAFE_NO_PAD.encode(format!("{id} {email}"))
            )),
        ),
        ("creator", person.clone()),
        ("organizer", person),
        ("sequence", json!(0)),
        ("reminders", json!({"useDefault": true})),
    ];
    for (key, value) in fields {
        event.preserved.entry(key).or_insert(value);
    }
}

/// Google's checks of `start` and `end`.
fn check_times(event: &Event) -> Option<Answer> {
    let (Some(start), Some(end)) = (&event.start, &event.end) else {
        return Some(required(if event.start.is_none() {
            "Missing start time."
        } else {
            "Missing end time."
        }));
    };
    let recurring = !event.recurrence.is_empty();
    for (boundary, name) in [(start, "start"), (end, "end")] {
        match (boundary.as_date(), boundary.as_date_time()) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Some(invalid(&format!("Invalid {name} time."))),
        }
        if recurring && boundary.date_time.is_some() && boundary.time_zone.is_none() {
            return Some(required(&format!(
                "Missing time zone definition for {name} time."
            )));
        }
    }
    let (Some(from), Some(to)) = (instant(start), instant(end)) else {
        return Some(invalid("Invalid start or end time."));
    };
    if to < from || (start.date.is_some() != end.date.is_some()) {
        return Some(api_error(
            400,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty.",
        ));
    }
    None
}

/// A boundary as an instant; a date counts from its midnight UTC (close enough for windows).
fn instant(boundary: &EventDateTime) -> Option<DateTime<Utc>> {
    boundary.as_date_time().or_else(|| {
        boundary
            .as_date()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    })
}

/// Whether an event meets `[time_min, time_max)` as `events.list` filters: its end after
/// `timeMin`, its start before `timeMax`. A series counts from its first start onwards.
fn overlaps(
    event: &Event,
    time_min: Option<DateTime<Utc>>,
    time_max: Option<DateTime<Utc>>,
) -> bool {
    let start = event.start.as_ref().and_then(instant);
    let end = event.end.as_ref().and_then(instant);
    let before_max = match (time_max, start) {
        (Some(max), Some(start)) => start < max,
        _ => true,
    };
    let after_min = match (time_min, end) {
        _ if !event.recurrence.is_empty() => true,
        (Some(min), Some(end)) => end > min,
        _ => true,
    };
    before_max && after_min
}

fn random_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut rng = rand::thread_rng();
    (0..26)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..32)]))
        .collect()
}

fn encode_sync_token(email: &str, calendar_id: &str, epoch: u64, as_of: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{email}\n{calendar_id}\n{epoch}\n{as_of}"))
}

fn decode_sync_token(token: &str, email: &str, calendar_id: &str, epoch: u64) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let parts: Vec<&str> = text.split('\n').collect();
    match parts.as_slice() {
        [e, c, ep, as_of] if *e == email && *c == calendar_id && ep.parse() == Ok(epoch) => {
            as_of.parse().ok()
        }
        _ => None,
    }
}

fn encode_page_token(as_of: u64, after: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("page\n{as_of}\n{after}"))
}

fn decode_page_token(token: &str) -> Option<(u64, u64)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    match text.split('\n').collect::<Vec<_>>().as_slice() {
        ["page", as_of, after] => Some((as_of.parse().ok()?, after.parse().ok()?)),
        _ => None,
    }
}
