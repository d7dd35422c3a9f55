//! The field mapping of DESIGN §7 between a Cybozu event and the engine's target-neutral
//! [`RemoteEvent`] (which the Google and CalDAV adapters translate to their own formats).

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

use super::rrule::{from_rrule, to_rrule, Inexpressible};
use crate::cybozu::repeat::{local_to_utc, occurrences, zone};
use crate::cybozu::{
    DateSpan, Event, EventType, Exclusion, Member, PublicType, RepeatInfo, TimeSpan, When,
};

/// Where the members list starts in a remote description: everything from here on is ours and is
/// cut off again when the phone sends the description back.
pub const MEMBERS_MARKER: &str = "\n\n――― 参加者 ―――\n";

/// When a remote event happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteWhen {
    Timed {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Whole days; `end` is exclusive, as Google and iCalendar keep it.
    AllDay { start: NaiveDate, end: NaiveDate },
}

/// `visibility` / `CLASS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// Not said: the calendar's default.
    #[default]
    Default,
    Public,
    Private,
}

/// An event as the engine sees the remote side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEvent {
    pub title: String,
    pub description: String,
    pub location: String,
    pub when: RemoteWhen,
    /// IANA zone of a timed or recurring event.
    pub timezone: String,
    /// `RRULE:` and `EXDATE…:` lines of a series.
    pub recurrence: Vec<String>,
    pub visibility: Visibility,
    pub transparent: bool,
    pub tentative: bool,
    /// The Cybozu event this is a copy of, and its version when written.
    pub cybozu_id: Option<u64>,
    pub cybozu_version: Option<u64>,
    /// The plan-menu entry the title begins with.
    pub plan: Option<String>,
}

/// Names of users, organizations and facilities, for the description and the location.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub users: HashMap<u64, String>,
    pub organizations: HashMap<u64, String>,
    pub facilities: HashMap<u64, String>,
}

impl Directory {
    fn name(&self, member: &Member) -> String {
        let (names, id) = match member {
            Member::User(id) => (&self.users, id),
            Member::Organization(id) => (&self.organizations, id),
            Member::Facility(id) => (&self.facilities, id),
        };
        names.get(id).cloned().unwrap_or_else(|| format!("#{id}"))
    }
}

/// The remote copy of a Cybozu event, as seen by `user_id` (the other members are listed in the
/// description, never as attendees: attendees would be mailed invitations).
pub fn to_remote(event: &Event, user_id: u64, directory: &Directory) -> RemoteEvent {
    let tz = zone(&event.timezone);
    let others: Vec<String> = event
        .members
        .iter()
        .filter(|m| !matches!(m, Member::Facility(_)) && **m != Member::User(user_id))
        .map(|m| directory.name(m))
        .collect();
    let mut description = event.description.clone();
    if !others.is_empty() {
        description.push_str(MEMBERS_MARKER);
        description.push_str(&others.join("、"));
    }
    let location = event
        .members
        .iter()
        .filter(|m| matches!(m, Member::Facility(_)))
        .map(|m| directory.name(m))
        .collect::<Vec<_>>()
        .join("、");
    let (when, recurrence) = match (&event.repeat, event.event_type) {
        (Some(repeat), EventType::Repeat) => series_when(event, repeat),
        _ => (single_when(event), Vec::new()),
    };
    RemoteEvent {
        title: event.display_title(),
        description,
        location,
        when,
        timezone: tz.name().to_string(),
        recurrence,
        visibility: if event.public_type.is_private() {
            Visibility::Private
        } else {
            Visibility::Default
        },
        transparent: matches!(event.event_type, EventType::Banner | EventType::Temporary),
        tentative: event.event_type == EventType::Temporary,
        cybozu_id: event.id,
        cybozu_version: event.version,
        plan: (!event.plan.is_empty()).then(|| event.plan.clone()),
    }
}

fn single_when(event: &Event) -> RemoteWhen {
    let tz = zone(&event.timezone);
    match &event.when {
        When::Dates(spans) => {
            let start = spans.iter().map(|s| s.start).min();
            let end = spans.iter().map(|s| s.end).max();
            match (start, end) {
                (Some(start), Some(end)) => RemoteWhen::AllDay {
                    start,
                    end: end + Duration::days(1),
                },
                _ => fallback_when(),
            }
        }
        // A temporary event shows its first candidate.
        When::Times(spans) => match spans.first() {
            Some(span) if event.allday => {
                let day = span.start.with_timezone(&tz).date_naive();
                RemoteWhen::AllDay {
                    start: day,
                    end: day + Duration::days(1),
                }
            }
            Some(span) => RemoteWhen::Timed {
                start: span.start,
                // start_only: end = start (DESIGN §7).
                end: span.end.filter(|_| !event.start_only).unwrap_or(span.start),
            },
            None => fallback_when(),
        },
        When::Unset => fallback_when(),
    }
}

/// A series: the first occurrence's time, the rule and the exclusions.
fn series_when(event: &Event, repeat: &RepeatInfo) -> (RemoteWhen, Vec<String>) {
    let tz = zone(&event.timezone);
    let condition = &repeat.condition;
    // DTSTART must be an occurrence; the rule's start date need not be one.
    let horizon = condition.start_date + Duration::days(400);
    let first = occurrences(
        &RepeatInfo {
            condition: condition.clone(),
            exclusions: Vec::new(),
        },
        &event.timezone,
        condition.start_date,
        condition.end_date.unwrap_or(horizon).min(horizon),
    )
    .into_iter()
    .next();
    let first_date = first.as_ref().map_or(condition.start_date, |o| o.date);
    let when = match (condition.start_time, &first) {
        (Some(_), Some(occurrence)) => RemoteWhen::Timed {
            start: occurrence.start,
            end: if event.start_only {
                occurrence.start
            } else {
                occurrence.end
            },
        },
        _ => RemoteWhen::AllDay {
            start: first_date,
            end: first_date + Duration::days(1),
        },
    };
    let mut recurrence = vec![to_rrule(condition, tz)];
    for exclusion in &repeat.exclusions {
        let local = exclusion.start.with_timezone(&tz);
        recurrence.push(match condition.start_time {
            Some(start_time) => format!(
                "EXDATE;TZID={}:{}",
                tz.name(),
                local
                    .date_naive()
                    .and_time(start_time)
                    .format("%Y%m%dT%H%M%S")
            ),
            None => format!("EXDATE;VALUE=DATE:{}", local.date_naive().format("%Y%m%d")),
        });
    }
    (when, recurrence)
}

/// An event without usable times (a server quirk): an all-day event today keeps it visible.
fn fallback_when() -> RemoteWhen {
    let today = crate::clock::now().date_naive();
    RemoteWhen::AllDay {
        start: today,
        end: today + Duration::days(1),
    }
}

/// Splits a remote title back into plan and detail, only when it starts with a plan-menu entry
/// and `:` (never guessed from free text).
pub fn split_title(title: &str, plan_menu: &[String]) -> (String, String) {
    for plan in plan_menu {
        if let Some(rest) = title
            .strip_prefix(plan.as_str())
            .and_then(|r| r.strip_prefix(':'))
        {
            return (plan.clone(), rest.to_string());
        }
    }
    (String::new(), title.to_string())
}

/// The description the user wrote, without the members list this product appended.
pub fn strip_members(description: &str) -> &str {
    description
        .split_once(MEMBERS_MARKER)
        .map_or(description, |(own, _)| own)
}

/// How an event made or changed on the phone is written to Cybozu.
pub struct InboundRules<'a> {
    pub plan_menu: &'a [String],
    /// `INBOUND_PUBLIC`: events from the phone arrive public unless marked private.
    pub inbound_public: bool,
    pub timezone: &'a str,
}

/// The Cybozu event for a remote one. With `base` (the Cybozu event it updates), the members,
/// facilities and fields the remote side cannot carry are kept, since a modify replaces the event
/// whole; without it, a new event for `user_id` alone.
pub fn to_cybozu(
    remote: &RemoteEvent,
    base: Option<&Event>,
    user_id: u64,
    rules: &InboundRules<'_>,
) -> Result<Event, Inexpressible> {
    let mut event = match base {
        Some(base) => base.clone(),
        None => {
            let mut fresh = Event::new(rules.timezone);
            fresh.members = vec![Member::User(user_id)];
            fresh
        }
    };
    let (plan, detail) = split_title(&remote.title, rules.plan_menu);
    event.plan = plan;
    event.detail = detail;
    event.description = strip_members(&remote.description).to_string();
    event.public_type = match (remote.visibility, base) {
        (Visibility::Private, Some(b)) if b.public_type.is_private() => b.public_type,
        (Visibility::Private, _) => PublicType::Private,
        (Visibility::Public, _) => PublicType::Public,
        (Visibility::Default, Some(b)) => b.public_type,
        (Visibility::Default, None) if rules.inbound_public => PublicType::Public,
        (Visibility::Default, None) => PublicType::Private,
    };
    let tz = zone(&event.timezone);
    let series = remote.recurrence.iter().find(|line| line_is(line, "RRULE"));
    match (&remote.when, series) {
        (RemoteWhen::Timed { start, end }, None) => {
            event.event_type = EventType::Normal;
            event.repeat = None;
            event.allday = false;
            event.start_only = start == end && base.is_some_and(|b| b.start_only);
            let facility = base
                .and_then(|b| b.when.first_time())
                .and_then(|t| t.facility_id);
            event.when = When::Times(vec![TimeSpan {
                start: *start,
                end: (!event.start_only).then_some(*end),
                facility_id: facility,
            }]);
        }
        (RemoteWhen::AllDay { start, end }, None) => {
            let last = (*end - Duration::days(1)).max(*start);
            if last > *start {
                event.event_type = EventType::Banner;
                event.allday = false;
            } else {
                event.event_type = EventType::Normal;
                event.allday = true;
            }
            event.repeat = None;
            event.start_only = false;
            event.when = When::Dates(vec![DateSpan {
                start: *start,
                end: last,
            }]);
        }
        (when, Some(rule)) => {
            let (start_date, start_time, end_time) = match when {
                RemoteWhen::Timed { start, end } => {
                    let (s, e) = (start.with_timezone(&tz), end.with_timezone(&tz));
                    (s.date_naive(), Some(s.time()), Some(e.time()))
                }
                RemoteWhen::AllDay { start, .. } => (*start, None, None),
            };
            let condition = from_rrule(rule, start_date, start_time, end_time, tz)?;
            let exclusions = remote
                .recurrence
                .iter()
                .filter(|line| line_is(line, "EXDATE"))
                .flat_map(|line| exdates(line, tz))
                .map(|date| {
                    let start = local_to_utc(tz, date, start_time.unwrap_or(NaiveTime::MIN));
                    let end = match end_time {
                        Some(end_time) => local_to_utc(tz, date, end_time),
                        None => local_to_utc(tz, date + Duration::days(1), NaiveTime::MIN),
                    };
                    Exclusion { start, end }
                })
                .collect();
            event.event_type = EventType::Repeat;
            event.allday = start_time.is_none();
            event.start_only = false;
            event.repeat = Some(RepeatInfo {
                condition,
                exclusions,
            });
            event.when = When::Unset;
        }
    }
    Ok(event)
}

/// Whether a recurrence line (`RRULE:…`, `EXDATE;TZID=…:…`) is of the property `name`.
pub fn line_is(line: &str, name: &str) -> bool {
    line.trim_start()
        .get(..name.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(name))
}

/// The local dates of an `EXDATE` line (`EXDATE;TZID=…:20261109T093000,…`, `EXDATE;VALUE=DATE:…`,
/// or UTC `…Z` values).
pub fn exdates(line: &str, tz: chrono_tz::Tz) -> Vec<NaiveDate> {
    // Parsed as a content line: a quoted TZID (`"(UTC+09:00) Osaka, Sapporo, Tokyo"`) holds `:`.
    let Some(property) = crate::ical::parse::parse_content_line(line) else {
        return Vec::new();
    };
    property
        .value
        .split(',')
        .filter_map(|value| {
            let value = value.trim();
            if let Ok(date) = NaiveDate::parse_from_str(value, "%Y%m%d") {
                return Some(date);
            }
            let naive =
                chrono::NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y%m%dT%H%M%S")
                    .ok()?;
            if value.ends_with('Z') {
                Some(naive.and_utc().with_timezone(&tz).date_naive())
            } else {
                // A floating or TZID time names its local date directly.
                Some(naive.date())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cybozu::{RepeatCondition, RepeatKind};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn directory() -> Directory {
        Directory {
            users: [(1, "高橋".to_string()), (2, "佐藤".to_string())].into(),
            organizations: [(5, "営業部".to_string())].into(),
            facilities: [(7, "第一会議室".to_string())].into(),
        }
    }

    fn meeting() -> Event {
        let mut e = Event::new("Asia/Tokyo");
        e.id = Some(10);
        e.version = Some(100);
        e.plan = "会議".into();
        e.detail = "定例".into();
        e.description = "議題あり".into();
        e.members = vec![
            Member::User(1),
            Member::User(2),
            Member::Organization(5),
            Member::Facility(7),
        ];
        e.when = When::Times(vec![TimeSpan {
            start: utc("2026-11-25T01:00:00Z"),
            end: Some(utc("2026-11-25T02:00:00Z")),
            facility_id: None,
        }]);
        e
    }

    fn rules(plan_menu: &[String]) -> InboundRules<'_> {
        InboundRules {
            plan_menu,
            inbound_public: false,
            timezone: "Asia/Tokyo",
        }
    }

    #[test]
    fn a_meeting_maps_title_members_facility_and_ids() {
        let remote = to_remote(&meeting(), 1, &directory());
        assert_eq!(remote.title, "会議:定例");
        assert_eq!(
            remote.description,
            format!("議題あり{MEMBERS_MARKER}佐藤、営業部")
        );
        assert_eq!(remote.location, "第一会議室");
        assert_eq!(remote.cybozu_id, Some(10));
        assert_eq!(remote.plan.as_deref(), Some("会議"));
        assert_eq!(remote.visibility, Visibility::Default);
    }

    #[test]
    fn an_edit_from_the_phone_keeps_members_and_facilities() {
        let base = meeting();
        let mut remote = to_remote(&base, 1, &directory());
        remote.title = "会議:定例（延長）".into();
        remote.description = format!("議題を追加{MEMBERS_MARKER}佐藤、営業部");
        remote.location = "どこか別の場所".into();
        remote.when = RemoteWhen::Timed {
            start: utc("2026-11-25T01:00:00Z"),
            end: utc("2026-11-25T03:00:00Z"),
        };
        let menu = vec!["会議".to_string()];
        let back = to_cybozu(&remote, Some(&base), 1, &rules(&menu)).expect("maps");
        assert_eq!(
            (back.plan.as_str(), back.detail.as_str()),
            ("会議", "定例（延長）")
        );
        assert_eq!(back.description, "議題を追加");
        assert_eq!(
            back.members, base.members,
            "facility kept, not booked or freed"
        );
        assert_eq!(
            back.when.first_time().and_then(|t| t.end),
            Some(utc("2026-11-25T03:00:00Z"))
        );
    }

    #[test]
    fn titles_split_only_on_plan_menu_entries() {
        let menu = vec!["会議".to_string(), "来客".to_string()];
        assert_eq!(
            split_title("来客:山田様", &menu),
            ("来客".into(), "山田様".into())
        );
        assert_eq!(
            split_title("打合せ:山田様", &menu),
            (String::new(), "打合せ:山田様".into())
        );
        assert_eq!(split_title("会議", &menu), (String::new(), "会議".into()));
    }

    #[test]
    fn all_day_and_banner_dates_become_exclusive() {
        let mut allday = meeting();
        allday.allday = true;
        allday.when = When::Dates(vec![DateSpan {
            start: d("2026-11-27"),
            end: d("2026-11-27"),
        }]);
        assert_eq!(
            to_remote(&allday, 1, &directory()).when,
            RemoteWhen::AllDay {
                start: d("2026-11-27"),
                end: d("2026-11-28")
            }
        );
        let mut banner = allday.clone();
        banner.event_type = EventType::Banner;
        banner.allday = false;
        banner.when = When::Dates(vec![DateSpan {
            start: d("2026-11-25"),
            end: d("2026-11-27"),
        }]);
        let remote = to_remote(&banner, 1, &directory());
        assert_eq!(
            remote.when,
            RemoteWhen::AllDay {
                start: d("2026-11-25"),
                end: d("2026-11-28")
            }
        );
        assert!(remote.transparent);
        let back = to_cybozu(&remote, None, 1, &rules(&[])).expect("maps");
        assert_eq!(back.event_type, EventType::Banner);
        assert_eq!(back.when, banner.when);
    }

    #[test]
    fn temporary_is_tentative_and_private_stays_private() {
        let mut temporary = meeting();
        temporary.event_type = EventType::Temporary;
        temporary.public_type = PublicType::Qualified;
        let remote = to_remote(&temporary, 1, &directory());
        assert!(remote.tentative && remote.transparent);
        assert_eq!(remote.visibility, Visibility::Private);
    }

    #[test]
    fn start_only_has_end_equal_to_start() {
        let mut reminder = meeting();
        reminder.start_only = true;
        reminder.when = When::Times(vec![TimeSpan {
            start: utc("2026-11-25T00:00:00Z"),
            end: None,
            facility_id: None,
        }]);
        let remote = to_remote(&reminder, 1, &directory());
        assert_eq!(
            remote.when,
            RemoteWhen::Timed {
                start: utc("2026-11-25T00:00:00Z"),
                end: utc("2026-11-25T00:00:00Z")
            }
        );
        let back = to_cybozu(&remote, Some(&reminder), 1, &rules(&[])).expect("maps");
        assert!(back.start_only);
        assert_eq!(back.when, reminder.when);
    }

    #[test]
    fn new_events_from_the_phone_are_private_unless_marked_public() {
        let mut remote = to_remote(&meeting(), 1, &directory());
        remote.visibility = Visibility::Default;
        let private = to_cybozu(&remote, None, 1, &rules(&[])).expect("maps");
        assert_eq!(private.public_type, PublicType::Private);
        assert_eq!(private.members, vec![Member::User(1)]);
        remote.visibility = Visibility::Public;
        assert_eq!(
            to_cybozu(&remote, None, 1, &rules(&[]))
                .expect("maps")
                .public_type,
            PublicType::Public
        );
        let mut open = rules(&[]);
        open.inbound_public = true;
        remote.visibility = Visibility::Default;
        assert_eq!(
            to_cybozu(&remote, None, 1, &open)
                .expect("maps")
                .public_type,
            PublicType::Public
        );
    }

    #[test]
    fn a_weekly_series_with_an_exclusion_round_trips() {
        let mut series = meeting();
        series.event_type = EventType::Repeat;
        series.when = When::Unset;
        series.repeat = Some(RepeatInfo {
            condition: RepeatCondition {
                kind: RepeatKind::Week,
                start_date: d("2026-11-01"),
                end_date: Some(d("2026-12-31")),
                start_time: NaiveTime::from_hms_opt(9, 30, 0),
                end_time: NaiveTime::from_hms_opt(10, 0, 0),
                day: None,
                week: Some(1),
            },
            exclusions: vec![Exclusion {
                start: utc("2026-11-09T00:30:00Z"),
                end: utc("2026-11-09T01:00:00Z"),
            }],
        });
        let remote = to_remote(&series, 1, &directory());
        // The first Monday on or after 1 November.
        assert_eq!(
            remote.when,
            RemoteWhen::Timed {
                start: utc("2026-11-02T00:30:00Z"),
                end: utc("2026-11-02T01:00:00Z")
            }
        );
        assert_eq!(
            remote.recurrence[0],
            "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20261231T003000Z"
        );
        assert_eq!(
            remote.recurrence[1],
            "EXDATE;TZID=Asia/Tokyo:20261109T093000"
        );
        let back = to_cybozu(&remote, Some(&series), 1, &rules(&[])).expect("maps");
        let rule = back.repeat.expect("series");
        assert_eq!(rule.condition.kind, RepeatKind::Week);
        assert_eq!(rule.condition.week, Some(1));
        assert_eq!(rule.condition.end_date, Some(d("2026-12-31")));
        assert_eq!(rule.exclusions.len(), 1);
        assert_eq!(rule.exclusions[0].start, utc("2026-11-09T00:30:00Z"));
    }

    #[test]
    fn an_inexpressible_remote_series_is_refused() {
        let mut remote = to_remote(&meeting(), 1, &directory());
        remote.recurrence = vec!["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO".into()];
        assert!(to_cybozu(&remote, None, 1, &rules(&[])).is_err());
    }
}
