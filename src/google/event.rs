//! The Calendar API v3 `Event` resource, with the fields the sync reads and writes named exactly
//! as Google's discovery document names them.
//!
//! Fields the sync does not read (reminders, attendees, colours, conference data…) are kept in
//! [`Event::preserved`] as Google sent them, so that an update written back — `events.update`
//! replaces the whole event — does not erase what the phone's user set. Enum values Google may add
//! later are read as `Other` and never sent back.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// `confirmed`, `tentative` or `cancelled` (deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventStatus {
    Confirmed,
    Tentative,
    Cancelled,
    #[serde(other)]
    Other,
}

/// `default`, `public`, `private` or `confidential`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Visibility {
    Default,
    Public,
    Private,
    Confidential,
    #[serde(other)]
    Other,
}

/// Whether the event blocks time: `opaque` (busy) or `transparent` (free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Transparency {
    Opaque,
    Transparent,
    #[serde(other)]
    Other,
}

/// The kind of event; only `default` and `outOfOffice` reach Cybozu (DESIGN §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventType {
    Default,
    OutOfOffice,
    FocusTime,
    WorkingLocation,
    FromGmail,
    Birthday,
    #[serde(other)]
    Other,
}

/// Values serialized only when known: an `Other` read from Google is not echoed back.
trait Known {
    fn is_other(&self) -> bool;
}

macro_rules! known {
    ($($t:ty),*) => {$(
        impl Known for $t {
            fn is_other(&self) -> bool {
                matches!(self, Self::Other)
            }
        }
    )*};
}
known!(EventStatus, Visibility, Transparency, EventType);

fn absent_or_other<T: Known>(value: &Option<T>) -> bool {
    value.as_ref().is_none_or(Known::is_other)
}

/// A start or end: `{date}` for all-day events (end exclusive), or `{dateTime, timeZone}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDateTime {
    /// `yyyy-mm-dd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// RFC 3339 with an offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
    /// IANA zone name; required for recurring events (the zone the RRULE expands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl EventDateTime {
    /// An all-day boundary.
    pub fn from_date(date: NaiveDate) -> Self {
        Self {
            date: Some(date.format("%Y-%m-%d").to_string()),
            ..Self::default()
        }
    }

    /// A timed boundary, written in UTC, with the zone the event belongs to.
    pub fn from_date_time(at: DateTime<Utc>, time_zone: Option<&str>) -> Self {
        Self {
            date_time: Some(at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            time_zone: time_zone.map(str::to_string),
            ..Self::default()
        }
    }

    /// The all-day date, when this is one and it parses.
    /// The day, when this is an all-day boundary and it parses to a year of four digits (chrono
    /// also reads `+262142-12-31`, where the day after could not be computed).
    pub fn as_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(self.date.as_deref()?, "%Y-%m-%d")
            .ok()
            .filter(|date| (1..=9999).contains(&date.year()))
    }

    /// The instant, when this is a timed boundary and it parses.
    pub fn as_date_time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(self.date_time.as_deref()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// `extendedProperties`: string maps, `private` to this calendar's copy, `shared` with attendees'.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedProperties {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub private: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shared: BTreeMap<String, String>,
}

/// One event of a calendar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "absent_or_other")]
    pub status: Option<EventStatus>,
    /// Changes with every change of the event; echo suppression compares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Last modification, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<EventDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EventDateTime>,
    /// `RRULE:`, `EXRULE:`, `RDATE:` and `EXDATE:` lines of a recurring event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recurrence: Vec<String>,
    /// For an instance (exception) of a recurring event: the series' id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurring_event_id: Option<String>,
    /// For an instance: where the series would have put it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_start_time: Option<EventDateTime>,
    #[serde(default, skip_serializing_if = "absent_or_other")]
    pub visibility: Option<Visibility>,
    #[serde(default, skip_serializing_if = "absent_or_other")]
    pub transparency: Option<Transparency>,
    #[serde(default, skip_serializing_if = "absent_or_other")]
    pub event_type: Option<EventType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_properties: Option<ExtendedProperties>,
    #[serde(rename = "iCalUID", default, skip_serializing_if = "Option::is_none")]
    pub ical_uid: Option<String>,
    /// Every other field as Google sent it (all of them defined by the discovery document), sent
    /// back unchanged on update.
    #[serde(flatten)]
    pub preserved: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// Whether the event was deleted.
    pub fn is_cancelled(&self) -> bool {
        self.status == Some(EventStatus::Cancelled)
    }

    /// `updated` as a time, when present and valid.
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(self.updated.as_deref()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// A value of `extendedProperties.private`.
    pub fn private_property(&self, name: &str) -> Option<&str> {
        self.extended_properties
            .as_ref()?
            .private
            .get(name)
            .map(String::as_str)
    }

    /// Sets a value of `extendedProperties.private`.
    pub fn set_private_property(&mut self, name: &str, value: &str) {
        self.extended_properties
            .get_or_insert_with(ExtendedProperties::default)
            .private
            .insert(name.into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_all_day_boundary_past_year_9999_is_not_a_date() {
        let day = |text: &str| EventDateTime {
            date: Some(text.into()),
            ..EventDateTime::default()
        };
        assert_eq!(
            day("2026-11-25").as_date(),
            NaiveDate::from_ymd_opt(2026, 11, 25)
        );
        assert_eq!(day("+262142-12-31").as_date(), None);
    }

    #[test]
    fn reads_google_json_and_keeps_unread_fields() {
        let json = r#"{
            "kind": "calendar#event", "etag": "\"3374825283052000\"", "id": "abc123def",
            "status": "confirmed", "htmlLink": "https://www.google.com/calendar/event?eid=x",
            "created": "2026-11-20T01:00:00.000Z", "updated": "2026-11-20T01:02:03.456Z",
            "summary": "会議:定例", "start": {"dateTime": "2026-11-25T10:00:00+09:00", "timeZone": "Asia/Tokyo"},
            "end": {"dateTime": "2026-11-25T11:00:00+09:00", "timeZone": "Asia/Tokyo"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=-1MO"], "iCalUID": "abc123def@google.com",
            "reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 10}]},
            "eventType": "someFutureKind", "visibility": "private",
            "extendedProperties": {"private": {"cybozuId": "42"}}
        }"#;
        let event: Event = serde_json::from_str(json).expect("parses");
        assert_eq!(event.status, Some(EventStatus::Confirmed));
        assert_eq!(event.event_type, Some(EventType::Other));
        assert_eq!(event.visibility, Some(Visibility::Private));
        assert_eq!(event.ical_uid.as_deref(), Some("abc123def@google.com"));
        assert_eq!(event.private_property("cybozuId"), Some("42"));
        assert_eq!(
            event.start.as_ref().and_then(EventDateTime::as_date_time),
            Some(
                DateTime::parse_from_rfc3339("2026-11-25T01:00:00Z")
                    .expect("time")
                    .with_timezone(&Utc)
            )
        );
        assert!(event.updated_at().is_some());
        assert!(event.preserved.contains_key("reminders"));
        let back = serde_json::to_value(&event).expect("serializes");
        assert!(back.get("eventType").is_none(), "unknown values not echoed");
        assert_eq!(back["reminders"]["overrides"][0]["minutes"], 10);
        assert_eq!(back["iCalUID"], "abc123def@google.com");
        assert_eq!(back["start"]["timeZone"], "Asia/Tokyo");
    }

    #[test]
    fn a_new_event_sends_only_what_is_set() {
        let mut event = Event {
            summary: Some("x".into()),
            start: Some(EventDateTime::from_date(
                NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"),
            )),
            ..Event::default()
        };
        event.set_private_property("cybozuVersion", "7");
        let json = serde_json::to_string(&event).expect("serializes");
        assert_eq!(
            json,
            r#"{"summary":"x","start":{"date":"2026-11-25"},"extendedProperties":{"private":{"cybozuVersion":"7"}}}"#
        );
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        assert!(serde_json::from_str::<Event>(r#"{"summary": 5}"#).is_err());
        assert!(serde_json::from_str::<Event>("[").is_err());
    }
}
