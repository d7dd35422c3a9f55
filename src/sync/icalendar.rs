//! The engine's [`RemoteEvent`] as an iCalendar VEVENT and back: the backup files and the CalDAV
//! target. Written into an existing resource, only the properties this product maps are replaced;
//! alarms, attendees and everything else a phone wrote stay.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::convert::{RemoteEvent, RemoteWhen, Visibility};
use super::overrides;
use crate::ical::{escape_text, parse, unescape_text, vtimezone, Component, Property, PRODID};

pub const X_CYBOZU_ID: &str = "X-DNCS-CYBOZU-ID";
pub const X_CYBOZU_VERSION: &str = "X-DNCS-CYBOZU-VERSION";
pub const X_PLAN: &str = "X-DNCS-PLAN";

/// The properties this product owns in a VEVENT (everything else is kept as found).
const OWNED: &[&str] = &[
    "DTSTART",
    "DTEND",
    "DURATION",
    "RRULE",
    "EXDATE",
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "CLASS",
    "STATUS",
    "TRANSP",
    X_CYBOZU_ID,
    X_CYBOZU_VERSION,
    X_PLAN,
];

fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Writes `event` into `vevent` (a fresh one, or the one a server holds).
pub fn fill_vevent(vevent: &mut Component, uid: &str, event: &RemoteEvent, stamp: DateTime<Utc>) {
    vevent
        .properties
        .retain(|p| !OWNED.contains(&p.name.as_str()));
    vevent.set(Property::new("UID", escape_text(uid)));
    vevent.set(Property::new("DTSTAMP", utc_stamp(stamp)));
    let mut owned = Vec::new();
    match event.when {
        RemoteWhen::Timed { start, end } => {
            owned.push(Property::new("DTSTART", utc_stamp(start)));
            // An explicit end even when it equals the start (a start-only event).
            owned.push(Property::new("DTEND", utc_stamp(end.max(start))));
        }
        RemoteWhen::AllDay { start, end } => {
            let date = |d: NaiveDate| Property {
                name: String::new(),
                params: vec![("VALUE".into(), "DATE".into())],
                value: d.format("%Y%m%d").to_string(),
            };
            owned.push(Property {
                name: "DTSTART".into(),
                ..date(start)
            });
            owned.push(Property {
                name: "DTEND".into(),
                ..date(end)
            });
        }
    }
    for line in &event.recurrence {
        if let Some(property) = crate::ical::parse::parse_content_line(line) {
            owned.push(property);
        }
    }
    owned.push(Property::new("SUMMARY", escape_text(&event.title)));
    if !event.description.is_empty() {
        owned.push(Property::new(
            "DESCRIPTION",
            escape_text(&event.description),
        ));
    }
    if !event.location.is_empty() {
        owned.push(Property::new("LOCATION", escape_text(&event.location)));
    }
    match event.visibility {
        Visibility::Private => owned.push(Property::new("CLASS", "PRIVATE")),
        Visibility::Public => owned.push(Property::new("CLASS", "PUBLIC")),
        Visibility::Default => {}
    }
    if event.tentative {
        owned.push(Property::new("STATUS", "TENTATIVE"));
    }
    if event.transparent {
        owned.push(Property::new("TRANSP", "TRANSPARENT"));
    }
    if let Some(id) = event.cybozu_id {
        owned.push(Property::new(X_CYBOZU_ID, id.to_string()));
    }
    if let Some(version) = event.cybozu_version {
        owned.push(Property::new(X_CYBOZU_VERSION, version.to_string()));
    }
    if let Some(plan) = &event.plan {
        owned.push(Property::new(X_PLAN, escape_text(plan)));
    }
    vevent.properties.extend(owned);
}

/// A calendar object resource for one event: the server's version with our fields replaced in
/// its master, its one-day overrides kept on their days, or a new one.
pub fn resource(
    existing: Option<&str>,
    uid: &str,
    event: &RemoteEvent,
    stamp: DateTime<Utc>,
) -> String {
    let mut calendar = existing
        .and_then(|text| parse(text).ok())
        .unwrap_or_else(|| new_calendar(&[event.timezone.as_str()], stamp));
    let before = overrides::rule_in(&calendar, &event.timezone);
    let master = calendar
        .children
        .iter()
        .position(|c| c.name == "VEVENT" && c.property("RECURRENCE-ID").is_none());
    match master {
        Some(at) => fill_vevent(&mut calendar.children[at], uid, event, stamp),
        None => {
            let mut vevent = Component::new("VEVENT");
            fill_vevent(&mut vevent, uid, event, stamp);
            calendar.children.push(vevent);
        }
    }
    overrides::keep_overrides(&mut calendar, before.as_ref(), &event.timezone);
    calendar.to_text()
}

fn new_calendar(zones: &[&str], stamp: DateTime<Utc>) -> Component {
    let mut calendar = Component::new("VCALENDAR");
    calendar.properties.push(Property::new("VERSION", "2.0"));
    calendar.properties.push(Property::new("PRODID", PRODID));
    let mut zones: Vec<&str> = zones.to_vec();
    zones.sort_unstable();
    zones.dedup();
    for zone in zones {
        let mut text = String::new();
        vtimezone(zone, stamp, &mut text);
        if let Some(component) = parse(&format!("BEGIN:VCALENDAR\r\n{text}END:VCALENDAR\r\n"))
            .ok()
            .and_then(|c| c.children.into_iter().next())
        {
            calendar.children.push(component);
        }
    }
    calendar
}

/// A whole calendar file of events (the daily backup).
pub fn calendar(events: &[(String, RemoteEvent)], stamp: DateTime<Utc>) -> String {
    let zones: Vec<&str> = events.iter().map(|(_, e)| e.timezone.as_str()).collect();
    let mut calendar = new_calendar(&zones, stamp);
    for (uid, event) in events {
        let mut vevent = Component::new("VEVENT");
        fill_vevent(&mut vevent, uid, event, stamp);
        calendar.children.push(vevent);
    }
    calendar.to_text()
}

/// The master VEVENT of a resource as the engine sees it; `None` when it has no usable start.
pub fn from_vevent(vevent: &Component, default_zone: &str) -> Option<RemoteEvent> {
    let default_tz: Tz = default_zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
    let start = vevent.property("DTSTART")?;
    let zone_name = start
        .param("TZID")
        .filter(|name| name.parse::<Tz>().is_ok())
        .unwrap_or(default_tz.name())
        .to_string();
    let when = match read_time(start, default_tz)? {
        Moment::Date(first) => {
            let end = vevent
                .property("DTEND")
                .and_then(|p| read_time(p, default_tz))
                .and_then(|m| match m {
                    Moment::Date(d) => Some(d),
                    Moment::Instant(_) => None,
                })
                .filter(|end| *end > first)
                .unwrap_or(first + Duration::days(1));
            RemoteWhen::AllDay { start: first, end }
        }
        Moment::Instant(first) => {
            let end = match vevent
                .property("DTEND")
                .and_then(|p| read_time(p, default_tz))
            {
                Some(Moment::Instant(end)) => end,
                _ => vevent
                    .property("DURATION")
                    .and_then(|p| parse_duration(&p.value))
                    .and_then(|d| first.checked_add_signed(d))
                    .unwrap_or(first),
            };
            RemoteWhen::Timed {
                start: first,
                end: end.max(first),
            }
        }
    };
    let recurrence = vevent
        .properties
        .iter()
        .filter(|p| p.name == "RRULE" || p.name == "EXDATE")
        .map(Property::to_line)
        .collect();
    let class = vevent
        .property("CLASS")
        .map(|p| p.value.trim().to_ascii_uppercase());
    Some(RemoteEvent {
        title: vevent.text("SUMMARY").unwrap_or_default(),
        description: vevent.text("DESCRIPTION").unwrap_or_default(),
        location: vevent.text("LOCATION").unwrap_or_default(),
        when,
        timezone: zone_name,
        recurrence,
        visibility: match class.as_deref() {
            Some("PRIVATE" | "CONFIDENTIAL") => Visibility::Private,
            Some("PUBLIC") => Visibility::Public,
            _ => Visibility::Default,
        },
        transparent: vevent
            .property("TRANSP")
            .is_some_and(|p| p.value.trim().eq_ignore_ascii_case("TRANSPARENT")),
        tentative: vevent
            .property("STATUS")
            .is_some_and(|p| p.value.trim().eq_ignore_ascii_case("TENTATIVE")),
        cybozu_id: vevent
            .property(X_CYBOZU_ID)
            .and_then(|p| p.value.trim().parse().ok()),
        cybozu_version: vevent
            .property(X_CYBOZU_VERSION)
            .and_then(|p| p.value.trim().parse().ok()),
        plan: vevent.property(X_PLAN).map(|p| unescape_text(&p.value)),
    })
}

pub(super) enum Moment {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

/// A DATE, a UTC time (`…Z`), a time in its TZID, or a floating time (in `default_tz`).
pub(super) fn read_time(property: &Property, default_tz: Tz) -> Option<Moment> {
    let value = property.value.trim();
    if property
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
        || value.len() == 8
    {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .ok()
            .map(Moment::Date);
    }
    let naive = NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y%m%dT%H%M%S").ok()?;
    if value.ends_with('Z') {
        return Some(Moment::Instant(naive.and_utc()));
    }
    let tz = property
        .param("TZID")
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(default_tz);
    let local = tz.from_local_datetime(&naive).earliest()?;
    Some(Moment::Instant(local.with_timezone(&Utc)))
}

/// `PT1H30M`, `P1D`, `-PT15M`…; `None` for a malformed one or one beyond chrono's range.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut rest = text.strip_prefix('P')?;
    let mut total = Duration::zero();
    let mut in_time = false;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('T') {
            in_time = true;
            rest = after;
            continue;
        }
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let amount: i64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let part = match (unit, in_time) {
            ('W', _) => Duration::try_weeks(amount),
            ('D', _) => Duration::try_days(amount),
            ('H', true) => Duration::try_hours(amount),
            ('M', true) => Duration::try_minutes(amount),
            ('S', true) => Duration::try_seconds(amount),
            _ => return None,
        };
        total = total.checked_add(&part?)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn sample() -> RemoteEvent {
        RemoteEvent {
            title: "会議:定例, 週次; 重要".into(),
            description: "一行目\n二行目".into(),
            location: "第一会議室".into(),
            when: RemoteWhen::Timed {
                start: utc("2026-11-25T01:00:00Z"),
                end: utc("2026-11-25T02:00:00Z"),
            },
            timezone: "Asia/Tokyo".into(),
            recurrence: vec![
                "RRULE:FREQ=WEEKLY;BYDAY=WE".into(),
                "EXDATE;TZID=Asia/Tokyo:20261202T100000".into(),
            ],
            visibility: Visibility::Private,
            transparent: true,
            tentative: true,
            cybozu_id: Some(42),
            cybozu_version: Some(1_795_568_400),
            plan: Some("会議".into()),
        }
    }

    fn master(text: &str) -> Component {
        parse(text)
            .expect("parses")
            .children
            .into_iter()
            .find(|c| c.name == "VEVENT")
            .expect("vevent")
    }

    #[test]
    fn an_event_round_trips_through_a_resource() {
        let text = resource(
            None,
            "cybozu-42@dncs",
            &sample(),
            utc("2026-11-25T00:00:00Z"),
        );
        assert_eq!(from_vevent(&master(&text), "Asia/Tokyo"), Some(sample()));
    }

    #[test]
    fn writing_into_a_phone_resource_keeps_alarms_and_attendees() {
        let phone = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple//EN\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTART;TZID=Asia/Tokyo:20261125T100000\r\nDTEND;TZID=Asia/Tokyo:20261125T110000\r\nSUMMARY:old\r\nATTENDEE:mailto:a@example.jp\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let text = resource(Some(phone), "u1", &sample(), utc("2026-11-25T00:00:00Z"));
        let vevent = master(&text);
        assert!(vevent.property("ATTENDEE").is_some());
        assert_eq!(vevent.children_named("VALARM").count(), 1);
        assert_eq!(
            vevent.text("SUMMARY").as_deref(),
            Some("会議:定例, 週次; 重要")
        );
        assert_eq!(vevent.properties_named("DTSTART").count(), 1);
    }

    #[test]
    fn a_quoted_zone_name_in_an_exdate_survives_reading_and_writing_back() {
        let zone = "(UTC+09:00) Osaka, Sapporo, Tokyo";
        let text = format!("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20250106T000000Z\r\nDTEND:20250106T010000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\nEXDATE;TZID=\"{zone}\":20250113T090000\r\nSUMMARY:定例\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
        let event = from_vevent(&master(&text), "Asia/Tokyo").expect("event");
        let exdate = event
            .recurrence
            .iter()
            .find(|line| line.starts_with("EXDATE"))
            .expect("the EXDATE is kept");
        assert_eq!(
            crate::sync::convert::exdates(exdate, chrono_tz::Asia::Tokyo),
            vec![NaiveDate::from_ymd_opt(2025, 1, 13).expect("date")],
            "the day deleted on the phone is excluded"
        );
        let written = resource(None, "x", &event, utc("2025-01-01T00:00:00Z"));
        let again = master(&written);
        let property = again.property("EXDATE").expect("written back");
        assert_eq!(property.param("TZID"), Some(zone));
        assert_eq!(property.value, "20250113T090000");
    }

    #[test]
    fn writing_a_series_master_keeps_the_phones_overrides_on_their_days() {
        // The phone changed Wednesday 9 December on its own; Cybozu has split that day off, so
        // the series it writes back excludes it.
        let phone = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTART:20261125T010000Z\r\nDTEND:20261125T020000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=WE\r\nSUMMARY:old\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:u1\r\nRECURRENCE-ID:20261209T010000Z\r\nDTSTART:20261209T050000Z\r\nDTEND:20261209T060000Z\r\nSUMMARY:この日だけ午後\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let mut event = sample();
        event.recurrence = vec![
            "RRULE:FREQ=WEEKLY;BYDAY=WE".into(),
            "EXDATE;TZID=Asia/Tokyo:20261202T100000".into(),
            "EXDATE;TZID=Asia/Tokyo:20261209T100000".into(),
        ];
        let text = resource(Some(phone), "u1", &event, utc("2026-11-25T00:00:00Z"));
        let calendar = parse(&text).expect("parses");
        let day = calendar
            .children
            .iter()
            .find(|c| c.property("RECURRENCE-ID").is_some())
            .expect("the override is kept");
        assert_eq!(day.text("SUMMARY").as_deref(), Some("この日だけ午後"));
        assert_eq!(day.children_named("VALARM").count(), 1);
        let written = master(&text);
        let exdates: Vec<&str> = written
            .properties_named("EXDATE")
            .map(|p| p.value.as_str())
            .collect();
        assert_eq!(
            exdates,
            vec!["20261202T100000"],
            "the overridden day is not hidden"
        );
    }

    #[test]
    fn times_in_other_zones_floating_dates_and_durations_are_read() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Europe/Berlin:20261125T100000\r\nDURATION:PT1H30M\r\nSUMMARY:Berlin\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let event = from_vevent(&master(text), "Asia/Tokyo").expect("event");
        assert_eq!(
            event.when,
            RemoteWhen::Timed {
                start: utc("2026-11-25T09:00:00Z"),
                end: utc("2026-11-25T10:30:00Z")
            }
        );
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:y\r\nDTSTART;VALUE=DATE:20261127\r\nSUMMARY:休み\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let event = from_vevent(&master(text), "Asia/Tokyo").expect("event");
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).expect("date");
        assert_eq!(
            event.when,
            RemoteWhen::AllDay {
                start: day(27),
                end: day(28)
            }
        );
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:z\r\nDTSTART:20261125T100000\r\nSUMMARY:floating\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let event = from_vevent(&master(text), "Asia/Tokyo").expect("event");
        assert_eq!(
            event.when,
            RemoteWhen::Timed {
                start: utc("2026-11-25T01:00:00Z"),
                end: utc("2026-11-25T01:00:00Z")
            }
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("P1DT2H"), Some(Duration::hours(26)));
        assert_eq!(parse_duration("-PT15M"), Some(Duration::minutes(-15)));
        assert_eq!(parse_duration("1H"), None);
        for beyond_range in ["P99999999999W", "P15000000000WT9000000000000000S"] {
            assert_eq!(parse_duration(beyond_range), None, "{beyond_range}");
        }
    }

    #[test]
    fn a_duration_past_the_end_of_time_ends_the_event_at_its_start() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20261125T100000Z\r\nDURATION:P999999999D\r\nSUMMARY:forever\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let event = from_vevent(&master(text), "Asia/Tokyo").expect("event");
        assert_eq!(
            event.when,
            RemoteWhen::Timed {
                start: utc("2026-11-25T10:00:00Z"),
                end: utc("2026-11-25T10:00:00Z")
            }
        );
    }
}
