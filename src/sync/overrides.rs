//! One-occurrence overrides (`RECURRENCE-ID`, RFC 5545 §3.8.4.4) inside a series resource: which
//! occurrence of the master's rule each one stands for, and changing, cancelling or realigning
//! them in place, so that a series written back keeps what phones changed on single days.
//!
//! An occurrence is named by its local date in the series' zone: that is what Cybozu's
//! `type=this date=…` names, and it stays the same whether a client writes the `RECURRENCE-ID`
//! with a `TZID`, in UTC or as a `DATE`.

use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::convert::{line_is, RemoteEvent, RemoteWhen};
use super::icalendar::{fill_vevent, from_vevent, read_time, Moment, X_PLAN};
use super::rrule::from_rrule;
use crate::cybozu::repeat::{matches, occurrence_on, zone};
use crate::cybozu::RepeatCondition;
use crate::ical::{parse, Component, Property};

pub const RECURRENCE_ID: &str = "RECURRENCE-ID";

/// Properties an override that leaves them out takes from its master: some clients write only
/// what they changed, and a day must not lose its title because of that.
const INHERITED: &[&str] = &[
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "CLASS",
    "TRANSP",
    X_PLAN,
];

/// The rule of a series master as Cybozu would hold it: local dates and times in its zone.
#[derive(Debug, Clone)]
pub struct Rule {
    condition: RepeatCondition,
    tz: Tz,
}

impl Rule {
    /// `None` for a single event, or a rule Cybozu cannot hold (such a series is never paired
    /// with a Cybozu series, so its overrides have nothing to be mapped to).
    pub fn of(master: &RemoteEvent) -> Option<Self> {
        let tz = zone(&master.timezone);
        let line = master.recurrence.iter().find(|l| line_is(l, "RRULE"))?;
        let (date, start, end) = match master.when {
            RemoteWhen::Timed { start, end } => {
                let (s, e) = (start.with_timezone(&tz), end.with_timezone(&tz));
                (s.date_naive(), Some(s.time()), Some(e.time()))
            }
            RemoteWhen::AllDay { start, .. } => (start, None, None),
        };
        let condition = from_rrule(line, date, start, end, tz).ok()?;
        Some(Self { condition, tz })
    }

    fn all_day(&self) -> bool {
        self.condition.start_time.is_none()
    }

    /// Whether the rule puts an occurrence on this local date.
    pub fn occurs_on(&self, date: NaiveDate) -> bool {
        matches(&self.condition, date)
    }

    /// The date of the occurrence a `RECURRENCE-ID` or one `EXDATE` value names; `None` when it
    /// names none. A timed value must be the occurrence's start; a `DATE` names its day.
    pub fn date_of(&self, property: &Property) -> Option<NaiveDate> {
        let date = match read_time(property, self.tz)? {
            Moment::Date(date) => date,
            Moment::Instant(at) => {
                let date = at.with_timezone(&self.tz).date_naive();
                if !self.all_day() && occurrence_on(&self.condition, self.tz, date).start != at {
                    return None;
                }
                date
            }
        };
        self.occurs_on(date).then_some(date)
    }

    /// The occurrence on `date` as a `RECURRENCE-ID` or `EXDATE`, in the form of the master's
    /// `DTSTART` (RFC 5545 wants the same value type, and clients match them textually).
    fn property(&self, name: &str, master_start: Option<&Property>, date: NaiveDate) -> Property {
        if self.all_day() {
            return Property {
                name: name.into(),
                params: vec![("VALUE".into(), "DATE".into())],
                value: date.format("%Y%m%d").to_string(),
            };
        }
        let start = occurrence_on(&self.condition, self.tz, date).start;
        let zone_param = master_start
            .and_then(|p| p.param("TZID"))
            .and_then(|name| name.parse::<Tz>().ok().map(|tz| (name.to_string(), tz)));
        let floating = master_start.is_some_and(|p| {
            p.param("TZID").is_none() && !p.value.trim().to_ascii_uppercase().ends_with('Z')
        });
        match zone_param {
            Some((name_of_zone, tz)) => Property {
                name: name.into(),
                params: vec![("TZID".into(), name_of_zone)],
                value: start.with_timezone(&tz).format("%Y%m%dT%H%M%S").to_string(),
            },
            None if floating => Property::new(
                name,
                start
                    .with_timezone(&self.tz)
                    .format("%Y%m%dT%H%M%S")
                    .to_string(),
            ),
            None => Property::new(name, start.format("%Y%m%dT%H%M%SZ").to_string()),
        }
    }
}

/// One occurrence a series resource says something about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub date: NaiveDate,
    /// The day as the override has it; `None` when the day is deleted (an `EXDATE`, or an
    /// override with `STATUS:CANCELLED`).
    pub event: Option<RemoteEvent>,
}

/// A resource read as the engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `None` when the resource holds no usable master (a VTODO, only overrides, a broken file).
    pub master: Option<RemoteEvent>,
    pub occurrences: Vec<Occurrence>,
    /// `RECURRENCE-ID` values that name no occurrence of the rule: kept in the resource, not
    /// mapped (the caller logs them).
    pub ignored: Vec<String>,
}

fn is_master(c: &Component) -> bool {
    c.name == "VEVENT" && c.property(RECURRENCE_ID).is_none()
}

fn is_override(c: &Component) -> bool {
    c.name == "VEVENT" && c.property(RECURRENCE_ID).is_some()
}

/// Each value of a property that may hold several (`EXDATE:a,b`), as a property of its own.
fn values(property: &Property) -> impl Iterator<Item = Property> + '_ {
    property.value.split(',').map(|value| Property {
        name: property.name.clone(),
        params: property.params.clone(),
        value: value.trim().to_string(),
    })
}

/// The master, and every occurrence the phone changed or deleted on its own.
pub fn read(calendar: &Component, default_zone: &str) -> Parsed {
    let Some(master_vevent) = calendar.children.iter().find(|c| is_master(c)) else {
        return Parsed::default();
    };
    let Some(master) = from_vevent(master_vevent, default_zone) else {
        return Parsed::default();
    };
    let mut parsed = Parsed {
        master: Some(master),
        ..Parsed::default()
    };
    // A series Cybozu cannot hold stays on the remote side whole (the planner says so in
    // 同期履歴), its days with it.
    let Some(rule) = parsed.master.as_ref().and_then(Rule::of) else {
        return parsed;
    };
    let excluded: Vec<NaiveDate> = master_vevent
        .properties_named("EXDATE")
        .flat_map(values)
        .filter_map(|value| rule.date_of(&value))
        .collect();
    for vevent in calendar.children.iter().filter(|c| is_override(c)) {
        let Some(id) = vevent.property(RECURRENCE_ID) else {
            continue;
        };
        let date = match rule.date_of(id) {
            Some(date) if !parsed.occurrences.iter().any(|o| o.date == date) => date,
            _ => {
                parsed.ignored.push(id.value.clone());
                continue;
            }
        };
        let cancelled = vevent
            .property("STATUS")
            .is_some_and(|p| p.value.trim().eq_ignore_ascii_case("CANCELLED"));
        // An EXDATE wins over an override of the same day: clients hide the day.
        let event = if cancelled || excluded.contains(&date) {
            None
        } else {
            from_vevent(&inherited(vevent, master_vevent), default_zone)
        };
        parsed.occurrences.push(Occurrence { date, event });
    }
    for date in excluded {
        if !parsed.occurrences.iter().any(|o| o.date == date) {
            parsed.occurrences.push(Occurrence { date, event: None });
        }
    }
    parsed.occurrences.sort_by_key(|o| o.date);
    parsed
}

/// The override with what it leaves out taken from the master.
fn inherited(vevent: &Component, master: &Component) -> Component {
    let mut full = vevent.clone();
    for name in INHERITED {
        if full.property(name).is_none() {
            full.properties
                .extend(master.properties_named(name).cloned());
        }
    }
    if full.property("DTSTART").is_none() {
        if let Some(id) = vevent.property(RECURRENCE_ID) {
            full.properties.push(Property {
                name: "DTSTART".into(),
                ..id.clone()
            });
        }
    }
    if full.property("DTEND").is_none() && full.property("DURATION").is_none() {
        if let Some(duration) = from_vevent(master, "UTC").map(|m| match m.when {
            RemoteWhen::Timed { start, end } => end - start,
            RemoteWhen::AllDay { start, end } => end - start,
        }) {
            full.properties
                .push(Property::new("DURATION", duration_text(duration)));
        }
    }
    full
}

/// `PT1800S`, `P1D`: what `DURATION` accepts.
fn duration_text(duration: Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    if seconds % 86_400 == 0 && seconds > 0 {
        format!("P{}D", seconds / 86_400)
    } else {
        format!("PT{seconds}S")
    }
}

/// The master's rule as a resource holds it now (`None` without a usable series master).
pub fn rule_in(calendar: &Component, default_zone: &str) -> Option<Rule> {
    let master = calendar.children.iter().find(|c| is_master(c))?;
    Rule::of(&from_vevent(master, default_zone)?)
}

/// After the master of `calendar` was written: every override that named an occurrence of the
/// rule `before` names the same day's occurrence of the new rule (a series moved to another
/// time keeps its changed days; RFC 5545 wants a `RECURRENCE-ID` to be an occurrence's start),
/// and a day with an override loses its `EXDATE` — Cybozu excludes the days it split off, but
/// on the phone that day is the override, which an `EXDATE` would hide.
pub fn keep_overrides(calendar: &mut Component, before: Option<&Rule>, default_zone: &str) {
    let Some(at) = calendar.children.iter().position(is_master) else {
        return;
    };
    let Some(now) = from_vevent(&calendar.children[at], default_zone)
        .as_ref()
        .and_then(Rule::of)
    else {
        return;
    };
    let master_start = calendar.children[at].property("DTSTART").cloned();
    let mut kept = Vec::new();
    for child in calendar.children.iter_mut().filter(|c| is_override(c)) {
        let Some(id) = child.property(RECURRENCE_ID).cloned() else {
            continue;
        };
        if let Some(date) = now.date_of(&id) {
            kept.push(date);
            continue;
        }
        let Some(date) = before.and_then(|rule| rule.date_of(&id)) else {
            continue;
        };
        if now.occurs_on(date) {
            child.set(now.property(RECURRENCE_ID, master_start.as_ref(), date));
            kept.push(date);
        }
    }
    let master = &mut calendar.children[at];
    remove_exdates(master, &now, &kept);
}

/// Takes these dates out of the master's `EXDATE`s, dropping a property left empty.
fn remove_exdates(master: &mut Component, rule: &Rule, dates: &[NaiveDate]) {
    if dates.is_empty() {
        return;
    }
    let mut properties = Vec::with_capacity(master.properties.len());
    for property in std::mem::take(&mut master.properties) {
        if !property.name.eq_ignore_ascii_case("EXDATE") {
            properties.push(property);
            continue;
        }
        let left: Vec<String> = values(&property)
            .filter(|value| rule.date_of(value).is_none_or(|d| !dates.contains(&d)))
            .map(|value| value.value)
            .collect();
        if !left.is_empty() {
            properties.push(Property {
                value: left.join(","),
                ..property
            });
        }
    }
    master.properties = properties;
}

/// The resource with the day `date` of its series written from `event`: the day's override
/// replaced, or made when there is none (a day the phone had deleted comes back). `None` when the
/// resource holds no series with an occurrence that day.
pub fn write_occurrence(
    existing: &str,
    date: NaiveDate,
    event: &RemoteEvent,
    stamp: chrono::DateTime<Utc>,
    default_zone: &str,
) -> Option<String> {
    let mut calendar = parse(existing).ok()?;
    let rule = rule_in(&calendar, default_zone).filter(|r| r.occurs_on(date))?;
    let at = calendar.children.iter().position(is_master)?;
    let uid = calendar.children[at].text("UID").unwrap_or_default();
    let master_start = calendar.children[at].property("DTSTART").cloned();
    let mut day = event.clone();
    // A day is one event: the series' rule belongs to the master only.
    day.recurrence.clear();
    let found = calendar.children.iter_mut().find(|c| {
        is_override(c)
            && c.property(RECURRENCE_ID)
                .and_then(|id| rule.date_of(id))
                .is_some_and(|d| d == date)
    });
    match found {
        Some(vevent) => fill_vevent(vevent, &uid, &day, stamp),
        None => {
            let mut vevent = Component::new("VEVENT");
            vevent
                .properties
                .push(rule.property(RECURRENCE_ID, master_start.as_ref(), date));
            fill_vevent(&mut vevent, &uid, &day, stamp);
            calendar.children.push(vevent);
        }
    }
    remove_exdates(&mut calendar.children[at], &rule, &[date]);
    Some(calendar.to_text())
}

/// The resource with the day `date` of its series deleted: its override removed and the day
/// added to the master's `EXDATE`s. `None` when the resource holds no series with that day.
pub fn remove_occurrence(existing: &str, date: NaiveDate, default_zone: &str) -> Option<String> {
    let mut calendar = parse(existing).ok()?;
    let rule = rule_in(&calendar, default_zone).filter(|r| r.occurs_on(date))?;
    calendar.children.retain(|c| {
        !(is_override(c)
            && c.property(RECURRENCE_ID)
                .and_then(|id| rule.date_of(id))
                .is_some_and(|d| d == date))
    });
    let at = calendar.children.iter().position(is_master)?;
    let master = &mut calendar.children[at];
    let already = master
        .properties_named("EXDATE")
        .flat_map(values)
        .any(|value| rule.date_of(&value) == Some(date));
    if !already {
        let exdate = rule.property("EXDATE", master.property("DTSTART"), date);
        // After the rule and the other EXDATEs, where clients put them.
        let after = master
            .properties
            .iter()
            .rposition(|p| p.name == "EXDATE" || p.name == "RRULE")
            .map_or(master.properties.len(), |i| i + 1);
        master.properties.insert(after, exdate);
    }
    Some(calendar.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "Asia/Tokyo";

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn utc(text: &str) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    /// A weekly series on Tuesdays 8:00–8:30 JST as this product writes it, with `extra` lines
    /// in the master and `rest` after it.
    fn series(extra: &str, rest: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:s1\r\n\
             DTSTAMP:20261101T000000Z\r\nDTSTART:20261123T230000Z\r\nDTEND:20261123T233000Z\r\n\
             RRULE:FREQ=WEEKLY;BYDAY=TU\r\n{extra}SUMMARY:朝の個人作業\r\nX-DNCS-CYBOZU-ID:8\r\n\
             BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\n\
             {rest}END:VCALENDAR\r\n"
        )
    }

    fn override_vevent(id: &str, lines: &str) -> String {
        format!(
            "BEGIN:VEVENT\r\nUID:s1\r\nDTSTAMP:20261201T000000Z\r\n{id}\r\n{lines}END:VEVENT\r\n"
        )
    }

    fn read_text(text: &str) -> Parsed {
        read(&parse(text).expect("parses"), ZONE)
    }

    #[test]
    fn an_override_names_its_day_whatever_form_its_recurrence_id_takes() {
        let lines = "DTSTART:20261208T050000Z\r\nDTEND:20261208T053000Z\r\nSUMMARY:午後に変更\r\n";
        for id in [
            "RECURRENCE-ID;TZID=Asia/Tokyo:20261208T080000",
            "RECURRENCE-ID:20261207T230000Z",
            "RECURRENCE-ID;TZID=Europe/Berlin:20261208T000000",
            "RECURRENCE-ID;VALUE=DATE:20261208",
        ] {
            let parsed = read_text(&series("", &override_vevent(id, lines)));
            assert_eq!(parsed.occurrences.len(), 1, "{id}");
            let day = &parsed.occurrences[0];
            assert_eq!(day.date, d("2026-12-08"), "{id}");
            let event = day.event.as_ref().expect("changed, not deleted");
            assert_eq!(event.title, "午後に変更");
            assert!(event.recurrence.is_empty());
            assert_eq!(
                event.when,
                RemoteWhen::Timed {
                    start: utc("2026-12-08T05:00:00Z"),
                    end: utc("2026-12-08T05:30:00Z")
                }
            );
            assert!(parsed.ignored.is_empty(), "{id}");
        }
    }

    #[test]
    fn cancelled_overrides_and_exdates_are_deleted_days() {
        let text = series(
            "EXDATE;TZID=Asia/Tokyo:20261201T080000,20261215T080000\r\nEXDATE:20261221T230000Z\r\n",
            &override_vevent(
                "RECURRENCE-ID:20261228T230000Z",
                "DTSTART:20261228T230000Z\r\nDTEND:20261228T233000Z\r\nSTATUS:CANCELLED\r\n",
            ),
        );
        let parsed = read_text(&text);
        let days: Vec<(NaiveDate, bool)> = parsed
            .occurrences
            .iter()
            .map(|o| (o.date, o.event.is_some()))
            .collect();
        assert_eq!(
            days,
            vec![
                (d("2026-12-01"), false),
                (d("2026-12-15"), false),
                (d("2026-12-22"), false),
                (d("2026-12-29"), false),
            ]
        );
    }

    #[test]
    fn an_override_of_no_occurrence_is_ignored_and_kept() {
        for id in [
            // A Thursday: the rule is on Tuesdays.
            "RECURRENCE-ID:20261209T230000Z",
            // The right day at the wrong time.
            "RECURRENCE-ID:20261207T220000Z",
            // Before the series starts.
            "RECURRENCE-ID;VALUE=DATE:20261117",
        ] {
            let text = series("", &override_vevent(id, "SUMMARY:x\r\n"));
            let parsed = read_text(&text);
            assert!(parsed.occurrences.is_empty(), "{id}");
            assert_eq!(parsed.ignored.len(), 1, "{id}");
            // Writing the master back keeps it.
            let mut calendar = parse(&text).expect("parses");
            let before = rule_in(&calendar, ZONE);
            keep_overrides(&mut calendar, before.as_ref(), ZONE);
            assert_eq!(calendar, parse(&text).expect("parses"), "{id}");
        }
    }

    #[test]
    fn the_days_of_a_series_cybozu_cannot_hold_stay_with_it() {
        let text = series("", "").replace("FREQ=WEEKLY;BYDAY=TU", "FREQ=WEEKLY;INTERVAL=2");
        let text = text.replace(
            "END:VCALENDAR",
            &format!(
                "{}END:VCALENDAR",
                override_vevent("RECURRENCE-ID:20261207T230000Z", "SUMMARY:x\r\n")
            ),
        );
        let parsed = read_text(&text);
        assert!(parsed.master.is_some());
        assert!(parsed.occurrences.is_empty());
        assert!(parsed.ignored.is_empty(), "not a day the rule lacks");
    }

    #[test]
    fn an_all_day_series_reads_date_recurrence_ids() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a1\r\nDTSTART;VALUE=DATE:20261127\r\n\
                    DTEND;VALUE=DATE:20261128\r\nRRULE:FREQ=WEEKLY;BYDAY=FR\r\nSUMMARY:在宅勤務\r\n\
                    END:VEVENT\r\nBEGIN:VEVENT\r\nUID:a1\r\nRECURRENCE-ID;VALUE=DATE:20261211\r\n\
                    DTSTART;VALUE=DATE:20261211\r\nDTEND;VALUE=DATE:20261212\r\nSUMMARY:出社\r\n\
                    END:VEVENT\r\nEND:VCALENDAR\r\n";
        let parsed = read_text(text);
        assert_eq!(parsed.occurrences.len(), 1);
        assert_eq!(parsed.occurrences[0].date, d("2026-12-11"));
        assert_eq!(
            parsed.occurrences[0].event.as_ref().map(|e| e.when.clone()),
            Some(RemoteWhen::AllDay {
                start: d("2026-12-11"),
                end: d("2026-12-12")
            })
        );
    }

    #[test]
    fn an_override_that_leaves_fields_out_takes_them_from_the_master() {
        let text = series(
            "DESCRIPTION:メモ\r\n",
            &override_vevent(
                "RECURRENCE-ID:20261207T230000Z",
                "DTSTART:20261208T000000Z\r\n",
            ),
        );
        let parsed = read_text(&text);
        let event = parsed.occurrences[0].event.clone().expect("changed");
        assert_eq!(event.title, "朝の個人作業");
        assert_eq!(event.description, "メモ");
        assert_eq!(
            event.when,
            RemoteWhen::Timed {
                start: utc("2026-12-08T00:00:00Z"),
                end: utc("2026-12-08T00:30:00Z")
            }
        );
    }

    #[test]
    fn a_day_is_written_into_its_override_or_made_and_deleted_with_an_exdate() {
        let text = series(
            "EXDATE:20261214T230000Z\r\n",
            &override_vevent(
                "RECURRENCE-ID;TZID=Asia/Tokyo:20261208T080000",
                "DTSTART:20261208T050000Z\r\nDTEND:20261208T053000Z\r\nSUMMARY:午後\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n",
            ),
        );
        let parsed = read_text(&text);
        let mut day = parsed.occurrences[0].event.clone().expect("changed");
        day.title = "午後（サイボウズで変更）".into();
        let stamp = utc("2026-12-01T00:00:00Z");
        let written = write_occurrence(&text, d("2026-12-08"), &day, stamp, ZONE).expect("series");
        let again = read_text(&written);
        assert_eq!(
            again.occurrences[0]
                .event
                .as_ref()
                .map(|e| e.title.as_str()),
            Some("午後（サイボウズで変更）")
        );
        let calendar = parse(&written).expect("parses");
        let overrides: Vec<&Component> = calendar
            .children
            .iter()
            .filter(|c| is_override(c))
            .collect();
        assert_eq!(overrides.len(), 1);
        assert_eq!(
            overrides[0].children_named("VALARM").count(),
            1,
            "alarm kept"
        );
        assert_eq!(
            overrides[0]
                .property(RECURRENCE_ID)
                .map(|p| p.value.as_str()),
            Some("20261208T080000"),
            "the phone's RECURRENCE-ID kept as written"
        );
        assert_eq!(overrides[0].text("UID").as_deref(), Some("s1"));

        // A deleted day written again comes back as an override, its EXDATE gone.
        let back = write_occurrence(&written, d("2026-12-15"), &day, stamp, ZONE).expect("series");
        let again = read_text(&back);
        assert_eq!(again.occurrences.len(), 2);
        assert!(again.occurrences.iter().all(|o| o.event.is_some()));
        assert!(!back.contains("EXDATE"), "{back}");

        // Deleting a day removes its override and adds the EXDATE in DTSTART's form.
        let removed = remove_occurrence(&back, d("2026-12-08"), ZONE).expect("series");
        assert!(removed.contains("EXDATE:20261207T230000Z\r\n"), "{removed}");
        let again = read_text(&removed);
        assert_eq!(
            again
                .occurrences
                .iter()
                .map(|o| (o.date, o.event.is_some()))
                .collect::<Vec<_>>(),
            vec![(d("2026-12-08"), false), (d("2026-12-15"), true)]
        );
        // Twice is once.
        assert_eq!(
            remove_occurrence(&removed, d("2026-12-08"), ZONE).as_deref(),
            Some(removed.as_str())
        );
        // A day the rule does not have is refused.
        assert!(write_occurrence(&text, d("2026-12-10"), &day, stamp, ZONE).is_none());
        assert!(remove_occurrence(&text, d("2026-12-10"), ZONE).is_none());
    }

    #[test]
    fn a_date_exdate_is_added_to_an_all_day_series() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a1\r\nDTSTART;VALUE=DATE:20261127\r\n\
                    DTEND;VALUE=DATE:20261128\r\nRRULE:FREQ=WEEKLY;BYDAY=FR\r\nSUMMARY:在宅勤務\r\n\
                    END:VEVENT\r\nEND:VCALENDAR\r\n";
        let removed = remove_occurrence(text, d("2026-12-04"), ZONE).expect("series");
        assert!(
            removed.contains("EXDATE;VALUE=DATE:20261204\r\n"),
            "{removed}"
        );
    }

    #[test]
    fn a_master_moved_to_another_time_keeps_its_overrides_on_their_days() {
        let text = series(
            "",
            &override_vevent(
                "RECURRENCE-ID;TZID=Asia/Tokyo:20261208T080000",
                "DTSTART:20261208T050000Z\r\nDTEND:20261208T053000Z\r\nSUMMARY:午後\r\n",
            ),
        );
        let mut calendar = parse(&text).expect("parses");
        let before = rule_in(&calendar, ZONE);
        // The master now starts at 9:00 JST, with the day Cybozu split off excluded.
        let at = calendar
            .children
            .iter()
            .position(is_master)
            .expect("master");
        let master = &mut calendar.children[at];
        master.set(Property::new("DTSTART", "20261124T000000Z"));
        master.set(Property::new("DTEND", "20261124T003000Z"));
        master.set(Property {
            name: "EXDATE".into(),
            params: vec![("TZID".into(), "Asia/Tokyo".into())],
            value: "20261208T090000".into(),
        });
        keep_overrides(&mut calendar, before.as_ref(), ZONE);
        let parsed = read(&calendar, ZONE);
        assert_eq!(parsed.occurrences.len(), 1, "{}", calendar.to_text());
        assert_eq!(parsed.occurrences[0].date, d("2026-12-08"));
        assert!(parsed.occurrences[0].event.is_some(), "no EXDATE hides it");
        assert!(!calendar.to_text().contains("EXDATE"));
        let overridden = calendar
            .children
            .iter()
            .find(|c| is_override(c))
            .and_then(|c| c.property(RECURRENCE_ID))
            .cloned()
            .expect("override");
        assert_eq!(overridden.value, "20261208T000000Z");
    }
}
