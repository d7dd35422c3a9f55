//! End to end: one day of a repeating event changed or deleted on its own by another CalDAV
//! client — a `RECURRENCE-ID` override in the series' resource, an `EXDATE`, a cancelled
//! override — between the simulated Cybozu Office and a real CalDAV server, with the real
//! `dncs-sync run`. Cybozu splits a changed day off its series (a new event, paired with the
//! override) and removes a deleted one; later changes flow between that event and the override.
//! Every scenario runs on Radicale, on Xandikos and on Radicale without `sync-collection`
//! (`sync_caldav_overrides::radicale::…`, `::xandikos::…`, `::etags_only::…`); each test is
//! skipped (with a printed line) when its server is not installed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveTime};
use dncs::cybozu::{
    DateSpan, Event, EventType, Member, RepeatCondition, RepeatInfo, RepeatKind, TimeSpan, When,
};
use dncs::ical::{Component, Property};
use dncs::sim::cybozu::CybozuSim;

use crate::caldav_harness::{
    assert_read_back_as_recorded, caldav_install, caldav_remote, calendar_events, on_each_server,
    sync_pass, DavServer, ServerKind,
};
use crate::sync_google::{own_weekly_series, TAKAHASHI, WEEKLY};
use crate::util::{date, demo_sim, utc};

const TOKYO: chrono_tz::Tz = chrono_tz::Asia::Tokyo;
const CYBOZU_ID: &str = "X-DNCS-CYBOZU-ID";

/// One resource of the calendar, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Resource {
    href: String,
    etag: String,
    ics: String,
    calendar: Component,
}

impl Resource {
    fn master(&self) -> &Component {
        self.calendar
            .children
            .iter()
            .find(|c| c.name == "VEVENT" && c.property("RECURRENCE-ID").is_none())
            .unwrap_or_else(|| panic!("{} has no master: {}", self.href, self.ics))
    }

    fn overrides(&self) -> Vec<&Component> {
        self.calendar
            .children
            .iter()
            .filter(|c| c.name == "VEVENT" && c.property("RECURRENCE-ID").is_some())
            .collect()
    }

    /// The override whose `RECURRENCE-ID` value contains `day` (`YYYYMMDD`).
    fn override_on(&self, day: &str) -> Option<&Component> {
        self.overrides().into_iter().find(|c| {
            c.property("RECURRENCE-ID")
                .is_some_and(|p| p.value.contains(day))
        })
    }

    /// The Cybozu ids of the events this resource copies: its master's and its days'.
    fn cybozu_ids(&self) -> Vec<u64> {
        std::iter::once(self.master())
            .chain(self.overrides())
            .filter(|c| {
                c.property("STATUS")
                    .is_none_or(|s| !s.value.eq_ignore_ascii_case("CANCELLED"))
            })
            .filter_map(|c| c.property(CYBOZU_ID)?.value.trim().parse().ok())
            .collect()
    }

    /// The local dates the master's `EXDATE`s name.
    fn exdates(&self) -> BTreeSet<NaiveDate> {
        self.master()
            .properties_named("EXDATE")
            .flat_map(|p| {
                let tz = p
                    .param("TZID")
                    .and_then(|z| z.parse::<chrono_tz::Tz>().ok());
                p.value
                    .split(',')
                    .filter_map(|v| local_date(v.trim(), tz.unwrap_or(TOKYO)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The text with `vevent` added (as another client writes a day of the series).
    fn with_override(&self, vevent: &str) -> String {
        self.ics
            .replace("END:VCALENDAR", &format!("{vevent}END:VCALENDAR"))
    }

    /// The text with the override of `day` changed by `edit` (as another client edits that day).
    fn with_override_edited(&self, day: &str, edit: impl FnOnce(&mut Component)) -> String {
        let mut calendar = self.calendar.clone();
        let vevent = calendar
            .children
            .iter_mut()
            .find(|c| {
                c.name == "VEVENT"
                    && c.property("RECURRENCE-ID")
                        .is_some_and(|p| p.value.contains(day))
            })
            .expect("the override");
        edit(vevent);
        calendar.to_text()
    }

    /// The text with `line` added to the master (as another client deletes a day).
    fn with_master_line(&self, line: &str) -> String {
        let mut calendar = self.calendar.clone();
        let master = calendar
            .children
            .iter_mut()
            .find(|c| c.name == "VEVENT" && c.property("RECURRENCE-ID").is_none())
            .expect("a master");
        master
            .properties
            .push(dncs::ical::parse::parse_content_line(line).expect("a content line"));
        calendar.to_text()
    }
}

/// A `DATE`, a UTC time or a local time, as a local date.
fn local_date(value: &str, tz: chrono_tz::Tz) -> Option<NaiveDate> {
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y%m%d") {
        return Some(day);
    }
    let naive =
        chrono::NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y%m%dT%H%M%S").ok()?;
    Some(if value.ends_with('Z') {
        naive.and_utc().with_timezone(&tz).date_naive()
    } else {
        naive.date()
    })
}

/// A CalDAV server, the demo company and an install folder whose takahashi syncs the two.
struct Overrides {
    server: Box<dyn DavServer>,
    sim: CybozuSim,
    install: tempfile::TempDir,
}

impl Overrides {
    /// `None` (after saying so) when the server is not installed.
    fn start(kind: ServerKind) -> Option<Self> {
        let server = kind.start()?;
        let sim = demo_sim();
        let install = caldav_install(server.as_ref(), &sim, "");
        Some(Self {
            server,
            sim,
            install,
        })
    }

    /// Started with takahashi's own weekly series (Tuesdays 8:00–8:30) added and synced once.
    fn with_own_series(kind: ServerKind) -> Option<(Self, u64)> {
        let h = Self::start(kind)?;
        let own = h.sim.company().insert_event(own_weekly_series());
        h.pass();
        Some((h, own))
    }

    fn pass(&self) {
        sync_pass(&self.install);
    }

    /// takahashi's Cybozu events, by id.
    fn cybozu(&self) -> BTreeMap<u64, Event> {
        self.sim
            .company()
            .events_of(TAKAHASHI)
            .filter_map(|e| Some((e.id?, e.clone())))
            .collect()
    }

    fn event(&self, id: u64) -> Event {
        self.sim
            .company()
            .events
            .get(&id)
            .cloned()
            .unwrap_or_else(|| panic!("no Cybozu event {id}"))
    }

    /// takahashi's events with this title.
    fn titled(&self, detail: &str) -> Vec<Event> {
        self.cybozu()
            .into_values()
            .filter(|e| e.detail == detail)
            .collect()
    }

    fn resources(&self) -> Vec<Resource> {
        let mut found: Vec<Resource> = calendar_events(self.server.as_ref())
            .into_iter()
            .map(|(href, etag, _, ics)| {
                let calendar = dncs::ical::parse(&ics)
                    .unwrap_or_else(|e| panic!("{href} does not parse: {e:?}\n{ics}"));
                Resource {
                    href,
                    etag,
                    ics,
                    calendar,
                }
            })
            .collect();
        found.sort_by(|a, b| a.href.cmp(&b.href));
        found
    }

    /// The one resource holding the copy of a Cybozu event (as its master or as a day).
    fn holding(&self, cybozu_id: u64) -> Resource {
        let mut holding: Vec<Resource> = self
            .resources()
            .into_iter()
            .filter(|r| r.cybozu_ids().contains(&cybozu_id))
            .collect();
        assert_eq!(holding.len(), 1, "copies of {cybozu_id}: {holding:#?}");
        holding.remove(0)
    }

    /// Another client writes over a resource (guarded by the ETag it read).
    fn put(&self, resource: &Resource, ics: &str) {
        self.server.put(&resource.href, &resource.etag, ics);
    }

    /// Everything the monthly log files say.
    fn log(&self) -> String {
        let dir = self.install.path().join("data").join("log");
        let mut text = String::new();
        for entry in std::fs::read_dir(dir).expect("log folder").flatten() {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        text
    }

    fn both_sides(&self) -> (BTreeMap<u64, Event>, Vec<Resource>) {
        (self.cybozu(), self.resources())
    }

    /// A pass that changes nothing on either side.
    fn assert_quiet_pass(&self) {
        let before = self.both_sides();
        self.pass();
        assert!(self.both_sides() == before, "a quiet pass changes nothing");
    }

    /// Each Cybozu event of takahashi has exactly one copy (a resource, or a day inside a
    /// series' resource), and each copy a Cybozu event.
    fn assert_in_step(&self) {
        let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
        for resource in self.resources() {
            for id in resource.cybozu_ids() {
                *copies.entry(id).or_default() += 1;
            }
        }
        let duplicated: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
        assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
        assert_eq!(
            copies.keys().copied().collect::<BTreeSet<_>>(),
            self.cybozu().keys().copied().collect::<BTreeSet<_>>(),
            "copies ↔ Cybozu events"
        );
        assert_read_back_as_recorded(&self.install);
    }
}

on_each_server! {
    a_day_another_client_changes_is_split_off_in_cybozu_and_stays_paired_with_it,
    a_day_another_client_deletes_with_an_exdate_is_removed_in_cybozu_that_day_only,
    a_cancelled_override_is_a_deleted_day,
    a_day_of_an_all_day_series_is_named_by_a_date,
    a_phone_series_with_days_of_its_own_arrives_whole_on_the_first_pass,
    a_day_written_while_another_client_changes_the_resource_keeps_both_changes,
    a_series_gone_on_either_side_takes_care_of_its_split_off_days,
}

/// The local dates a Cybozu series excludes.
fn excluded(series: &Event) -> Vec<NaiveDate> {
    let tz: chrono_tz::Tz = series.timezone.parse().unwrap_or(TOKYO);
    series
        .repeat
        .as_ref()
        .expect("a series")
        .exclusions
        .iter()
        .map(|x| x.start.with_timezone(&tz).date_naive())
        .collect()
}

/// One day of a series as another client writes it (UID, RECURRENCE-ID, then `lines`).
fn override_vevent(uid: &str, recurrence_id: &str, lines: &str) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T000000Z\r\n{recurrence_id}\r\n{lines}\
         SEQUENCE:1\r\nEND:VEVENT\r\n"
    )
}

fn uid_of(resource: &Resource) -> String {
    resource.master().text("UID").expect("a UID")
}

fn timed(event: &Event) -> Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let span = event.when.first_time()?;
    Some((span.start, span.end?))
}

fn a_day_another_client_changes_is_split_off_in_cybozu_and_stays_paired_with_it(
    server: ServerKind,
) {
    let Some((h, own)) = Overrides::with_own_series(server) else {
        return;
    };
    h.assert_in_step();
    let series = h.holding(own);
    assert!(series.overrides().is_empty());

    // Another client moves Tuesday 8 December to 13:00–13:45 with its own title, as iOS writes
    // it: the series' properties copied into the override, with an alarm of its own.
    let moved = override_vevent(
        &uid_of(&series),
        "RECURRENCE-ID;TZID=Asia/Tokyo:20261208T080000",
        &format!(
            "DTSTART;TZID=Asia/Tokyo:20261208T130000\r\nDTEND;TZID=Asia/Tokyo:20261208T134500\r\n\
             SUMMARY:朝の個人作業（この日は午後）\r\n{CYBOZU_ID}:{own}\r\n\
             BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
        ),
    );
    h.put(&series, &series.with_override(&moved));
    h.pass();

    // Cybozu: the day is split off the series, with the new time and title, once.
    assert!(excluded(&h.event(own)).contains(&date("2026-12-08")));
    let split = h.titled("朝の個人作業（この日は午後）");
    assert_eq!(split.len(), 1, "{split:#?}");
    let split = split[0].clone();
    let split_id = split.id.expect("id");
    assert_eq!(split.event_type, EventType::Normal);
    assert_eq!(
        timed(&split),
        Some((utc("2026-12-08T04:00:00Z"), utc("2026-12-08T04:45:00Z")))
    );
    assert!(split.has_user(TAKAHASHI));
    // The calendar: still one resource, whose override now copies the split-off event; the
    // master does not hide that day.
    let series = h.holding(split_id);
    assert_eq!(series.cybozu_ids(), vec![own, split_id]);
    assert!(
        !series.exdates().contains(&date("2026-12-08")),
        "{}",
        series.ics
    );
    let day = series.override_on("20261208").expect("the override stays");
    assert_eq!(day.children_named("VALARM").count(), 1, "its alarm kept");
    h.assert_in_step();
    h.assert_quiet_pass();

    // The split-off event edited in Cybozu: the override follows, inside the series' resource.
    h.sim.company().edit_event(split_id, |e| {
        e.detail = "朝の個人作業（15時から）".into();
        e.when = When::Times(vec![TimeSpan {
            start: utc("2026-12-08T06:00:00Z"),
            end: Some(utc("2026-12-08T06:30:00Z")),
            facility_id: None,
        }]);
    });
    h.pass();
    let series = h.holding(split_id);
    let day = series.override_on("20261208").expect("the override");
    assert_eq!(
        day.text("SUMMARY").as_deref(),
        Some("朝の個人作業（15時から）")
    );
    assert_eq!(
        day.property("DTSTART").map(|p| p.value.as_str()),
        Some("20261208T060000Z")
    );
    assert_eq!(day.children_named("VALARM").count(), 1, "its alarm kept");
    assert_eq!(
        h.resources().len(),
        h.cybozu().len() - 1,
        "no resource of its own for the split-off event"
    );
    h.assert_in_step();
    h.assert_quiet_pass();

    // The series edited in Cybozu: the master is written back and the day keeps its override.
    h.sim
        .company()
        .edit_event(own, |e| e.detail = "朝の個人作業（全体）".into());
    h.pass();
    let series = h.holding(own);
    assert_eq!(
        series.master().text("SUMMARY").as_deref(),
        Some("朝の個人作業（全体）")
    );
    assert_eq!(
        series
            .override_on("20261208")
            .and_then(|d| d.text("SUMMARY"))
            .as_deref(),
        Some("朝の個人作業（15時から）")
    );
    assert!(
        !series.exdates().contains(&date("2026-12-08")),
        "{}",
        series.ics
    );
    h.assert_in_step();
    h.assert_quiet_pass();

    // Another client edits that day again: the split-off event follows, the series stays.
    let series_before = h.event(own);
    let series = h.holding(split_id);
    h.put(
        &series,
        &series.with_override_edited("20261208", |day| {
            day.set(Property::new("SUMMARY", "朝の個人作業（16時から）"));
            day.set(Property::new("DTSTART", "20261208T070000Z"));
            day.set(Property::new("DTEND", "20261208T073000Z"));
        }),
    );
    h.pass();
    let split = h.event(split_id);
    assert_eq!(split.detail, "朝の個人作業（16時から）");
    assert_eq!(
        timed(&split),
        Some((utc("2026-12-08T07:00:00Z"), utc("2026-12-08T07:30:00Z")))
    );
    assert_eq!(h.event(own), series_before, "the series is not written");
    h.assert_in_step();
    h.assert_quiet_pass();

    // The split-off event deleted in Cybozu: the override goes and the day is excluded.
    h.sim.company().events.remove(&split_id);
    h.pass();
    let series = h.holding(own);
    assert!(series.overrides().is_empty(), "{}", series.ics);
    assert!(
        series.exdates().contains(&date("2026-12-08")),
        "{}",
        series.ics
    );
    assert_eq!(
        excluded(&h.event(own))
            .iter()
            .filter(|d| **d == date("2026-12-08"))
            .count(),
        1,
        "the series in Cybozu is left as it was"
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}

fn a_day_another_client_deletes_with_an_exdate_is_removed_in_cybozu_that_day_only(
    server: ServerKind,
) {
    let Some((h, own)) = Overrides::with_own_series(server) else {
        return;
    };
    let before = h.cybozu();

    // Tuesday 15 December of takahashi's own series, and Monday 14 December of the weekly
    // meeting he shares with four others.
    let series = h.holding(own);
    h.put(
        &series,
        &series.with_master_line("EXDATE;TZID=Asia/Tokyo:20261215T080000"),
    );
    let shared = h.holding(WEEKLY);
    h.put(&shared, &shared.with_master_line("EXDATE:20261214T003000Z"));
    h.pass();

    let mine = h.event(own);
    assert_eq!(excluded(&mine), vec![date("2026-12-15")]);
    assert_eq!(
        mine.repeat.as_ref().map(|r| &r.condition),
        before[&own].repeat.as_ref().map(|r| &r.condition),
        "the rule stays"
    );
    let weekly = h.event(WEEKLY);
    assert!(excluded(&weekly).contains(&date("2026-12-14")));
    // takahashi leaves that day; the others keep it as a single event.
    let company = h.sim.company();
    let others = company
        .events
        .values()
        .find(|e| e.detail == "週次定例" && e.event_type == EventType::Normal)
        .cloned()
        .expect("the others' 14 December");
    drop(company);
    assert!(!others.has_user(TAKAHASHI) && others.has_user(2));
    assert_eq!(
        h.cybozu().len(),
        before.len(),
        "nothing else added or removed"
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}

fn a_cancelled_override_is_a_deleted_day(server: ServerKind) {
    let Some((h, own)) = Overrides::with_own_series(server) else {
        return;
    };
    let before = h.cybozu();
    let series = h.holding(own);
    let cancelled = override_vevent(
        &uid_of(&series),
        "RECURRENCE-ID:20261221T230000Z",
        "DTSTART:20261221T230000Z\r\nDTEND:20261221T233000Z\r\nSUMMARY:朝の個人作業\r\n\
         STATUS:CANCELLED\r\n",
    );
    h.put(&series, &series.with_override(&cancelled));
    h.pass();
    assert_eq!(excluded(&h.event(own)), vec![date("2026-12-22")]);
    assert_eq!(h.cybozu().len(), before.len(), "nothing added or removed");
    assert!(
        h.holding(own).override_on("20261221").is_some(),
        "the other client's override is kept"
    );
    h.assert_in_step();
    h.assert_quiet_pass();

    // A day moved by another client, then cancelled there: the split-off event goes again.
    let series = h.holding(own);
    let later = override_vevent(
        &uid_of(&series),
        "RECURRENCE-ID:20261228T230000Z",
        "DTSTART:20261229T010000Z\r\nDTEND:20261229T013000Z\r\nSUMMARY:朝の個人作業（遅め）\r\n",
    );
    h.put(&series, &series.with_override(&later));
    h.pass();
    let split = h.titled("朝の個人作業（遅め）");
    assert_eq!(split.len(), 1, "{split:#?}");
    let split_id = split[0].id.expect("id");
    let series = h.holding(split_id);
    h.put(
        &series,
        &series.with_override_edited("20261228", |day| {
            day.set(Property::new("STATUS", "CANCELLED"));
        }),
    );
    h.pass();
    assert!(
        !h.cybozu().contains_key(&split_id),
        "the split-off event is deleted"
    );
    assert_eq!(
        excluded(&h.event(own)),
        vec![date("2026-12-22"), date("2026-12-29")]
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}

/// Fridays, all day, from 27 November, takahashi alone.
fn all_day_series() -> Event {
    let mut series = Event::new("Asia/Tokyo");
    series.detail = "在宅勤務".into();
    series.members = vec![Member::User(TAKAHASHI)];
    series.event_type = EventType::Repeat;
    series.allday = true;
    series.repeat = Some(RepeatInfo {
        condition: RepeatCondition {
            kind: RepeatKind::Week,
            start_date: date("2026-11-27"),
            end_date: Some(date("2027-03-26")),
            start_time: None,
            end_time: None,
            day: None,
            week: Some(5),
        },
        exclusions: Vec::new(),
    });
    series
}

fn a_day_of_an_all_day_series_is_named_by_a_date(server: ServerKind) {
    let Some(h) = Overrides::start(server) else {
        return;
    };
    let home = h.sim.company().insert_event(all_day_series());
    h.pass();
    let series = h.holding(home);
    assert_eq!(
        series
            .master()
            .property("DTSTART")
            .and_then(|p| p.param("VALUE")),
        Some("DATE"),
        "{}",
        series.ics
    );
    let office = override_vevent(
        &uid_of(&series),
        "RECURRENCE-ID;VALUE=DATE:20261211",
        "DTSTART;VALUE=DATE:20261211\r\nDTEND;VALUE=DATE:20261212\r\nSUMMARY:在宅勤務（この日は出社）\r\n",
    );
    h.put(&series, &series.with_override(&office));
    h.pass();

    assert_eq!(excluded(&h.event(home)), vec![date("2026-12-11")]);
    let split = h.titled("在宅勤務（この日は出社）");
    assert_eq!(split.len(), 1, "{split:#?}");
    assert_eq!(
        split[0].when,
        When::Dates(vec![DateSpan {
            start: date("2026-12-11"),
            end: date("2026-12-11")
        }])
    );
    assert!(split[0].allday);
    let series = h.holding(split[0].id.expect("id"));
    assert!(series.exdates().is_empty(), "{}", series.ics);
    h.assert_in_step();
    h.assert_quiet_pass();

    // A date EXDATE deletes a day as well.
    let series = h.holding(home);
    h.put(
        &series,
        &series.with_master_line("EXDATE;VALUE=DATE:20261218"),
    );
    h.pass();
    assert_eq!(
        excluded(&h.event(home)),
        vec![date("2026-12-11"), date("2026-12-18")]
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}

fn a_phone_series_with_days_of_its_own_arrives_whole_on_the_first_pass(server: ServerKind) {
    let Some(h) = Overrides::start(server) else {
        return;
    };
    // Before the first pass, another client's series (Thursdays 19:00–20:00) with 10 December
    // moved an hour later, 17 December cancelled, 24 December excluded, and an override that
    // names no day of the rule (a Wednesday).
    let zone =
        "BEGIN:VTIMEZONE\r\nTZID:Asia/Tokyo\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n\
                TZOFFSETFROM:+0900\r\nTZOFFSETTO:+0900\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";
    let master = "BEGIN:VEVENT\r\nUID:english@phone\r\nDTSTAMP:20261101T000000Z\r\n\
                  DTSTART;TZID=Asia/Tokyo:20261126T190000\r\nDTEND;TZID=Asia/Tokyo:20261126T200000\r\n\
                  RRULE:FREQ=WEEKLY;BYDAY=TH;UNTIL=20270325T100000Z\r\n\
                  EXDATE;TZID=Asia/Tokyo:20261224T190000\r\nSUMMARY:英会話\r\nEND:VEVENT\r\n";
    let days = [
        override_vevent(
            "english@phone",
            "RECURRENCE-ID;TZID=Asia/Tokyo:20261210T190000",
            "DTSTART;TZID=Asia/Tokyo:20261210T200000\r\nDTEND;TZID=Asia/Tokyo:20261210T210000\r\n\
             SUMMARY:英会話（振替）\r\n",
        ),
        override_vevent(
            "english@phone",
            "RECURRENCE-ID;TZID=Asia/Tokyo:20261217T190000",
            "DTSTART;TZID=Asia/Tokyo:20261217T190000\r\nDTEND;TZID=Asia/Tokyo:20261217T200000\r\n\
             SUMMARY:英会話\r\nSTATUS:CANCELLED\r\n",
        ),
        override_vevent(
            "english@phone",
            "RECURRENCE-ID;TZID=Asia/Tokyo:20261209T190000",
            "DTSTART;TZID=Asia/Tokyo:20261209T190000\r\nDTEND;TZID=Asia/Tokyo:20261209T200000\r\n\
             SUMMARY:英会話（どの回でもない）\r\n",
        ),
    ];
    h.server.put_new(
        "english.ics",
        &format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//dncs tests//EN\r\n{zone}{master}{}\
             END:VCALENDAR\r\n",
            days.concat()
        ),
    );
    h.pass();

    let series = h.titled("英会話");
    assert_eq!(series.len(), 1, "{series:#?}");
    let series = series[0].clone();
    assert_eq!(series.event_type, EventType::Repeat);
    let mut gone = excluded(&series);
    gone.sort();
    assert_eq!(
        gone,
        vec![date("2026-12-10"), date("2026-12-17"), date("2026-12-24")]
    );
    let moved = h.titled("英会話（振替）");
    assert_eq!(moved.len(), 1, "{moved:#?}");
    assert_eq!(
        timed(&moved[0]),
        Some((utc("2026-12-10T11:00:00Z"), utc("2026-12-10T12:00:00Z")))
    );
    assert!(h.titled("英会話（どの回でもない）").is_empty());
    let log = h.log();
    assert!(
        log.contains("english.ics: the override RECURRENCE-ID 20261209T190000 names no day"),
        "the ignored override is logged: {log}"
    );
    // Nothing lost: the resource keeps every day the other client wrote.
    let resource = h.holding(series.id.expect("id"));
    assert!(resource.href.ends_with("/english.ics"));
    assert_eq!(resource.overrides().len(), 3, "{}", resource.ics);
    assert!(resource.override_on("20261209").is_some());
    let start = NaiveTime::from_hms_opt(19, 0, 0);
    assert_eq!(
        series.repeat.as_ref().and_then(|r| r.condition.start_time),
        start
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}

fn a_day_written_while_another_client_changes_the_resource_keeps_both_changes(server: ServerKind) {
    use dncs::sync::engine::Remote;
    let Some((h, own)) = Overrides::with_own_series(server) else {
        return;
    };
    let series = h.holding(own);
    let moved = override_vevent(
        &uid_of(&series),
        "RECURRENCE-ID:20261207T230000Z",
        "DTSTART:20261208T040000Z\r\nDTEND:20261208T044500Z\r\nSUMMARY:午後\r\n",
    );
    h.put(&series, &series.with_override(&moved));

    // The engine's remote reads the calendar…
    let mut remote = caldav_remote(&h.install);
    let listing = remote
        .list(
            None,
            (utc("2026-10-26T00:00:00Z"), utc("2027-05-24T00:00:00Z")),
        )
        .expect("lists");
    let day = listing
        .items
        .iter()
        .find(|i| i.occurrence_of.is_some() && !i.deleted)
        .cloned()
        .expect("the changed day");
    let of = day.occurrence_of.clone().expect("a day");
    assert_eq!(
        (of.series_id.as_str(), of.date),
        (series.href.as_str(), date("2026-12-08"))
    );
    assert_ne!(day.id, series.href);
    // …another client then adds an alarm to the series…
    let series = h.holding(own);
    let with_alarm = series.ics.replacen(
        "END:VEVENT",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT",
        1,
    );
    h.put(&series, &with_alarm);
    // …and the day is written (412 on the ETag read: read again and written on top).
    let mut event = day.event.clone().expect("the day");
    event.title = "午後（サイボウズで変更）".into();
    remote.update(&day.id, None, &event).expect("written");
    let after = h.holding(own);
    assert_eq!(
        after.master().children_named("VALARM").count(),
        1,
        "{}",
        after.ics
    );
    assert_eq!(
        after
            .override_on("20261207T230000Z")
            .and_then(|o| o.text("SUMMARY"))
            .as_deref(),
        Some("午後（サイボウズで変更）")
    );
    // The same for deleting that day.
    let with_two_alarms = after.ics.replacen(
        "END:VEVENT",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT30M\r\nEND:VALARM\r\nEND:VEVENT",
        1,
    );
    h.put(&after, &with_two_alarms);
    remote.delete(&day.id, None).expect("deleted");
    let after = h.holding(own);
    assert_eq!(
        after.master().children_named("VALARM").count(),
        2,
        "{}",
        after.ics
    );
    assert!(after.overrides().is_empty(), "{}", after.ics);
    assert!(
        after.exdates().contains(&date("2026-12-08")),
        "{}",
        after.ics
    );
}

fn a_series_gone_on_either_side_takes_care_of_its_split_off_days(server: ServerKind) {
    let Some((h, own)) = Overrides::with_own_series(server) else {
        return;
    };
    let home = h.sim.company().insert_event(all_day_series());
    h.pass();
    let series = h.holding(own);
    let moved = override_vevent(
        &uid_of(&series),
        "RECURRENCE-ID:20261207T230000Z",
        "DTSTART:20261208T040000Z\r\nDTEND:20261208T043000Z\r\nSUMMARY:朝の個人作業（午後）\r\n",
    );
    h.put(&series, &series.with_override(&moved));
    let all_day = h.holding(home);
    let office = override_vevent(
        &uid_of(&all_day),
        "RECURRENCE-ID;VALUE=DATE:20261211",
        "DTSTART;VALUE=DATE:20261211\r\nDTEND;VALUE=DATE:20261212\r\nSUMMARY:在宅勤務（出社）\r\n",
    );
    h.put(&all_day, &all_day.with_override(&office));
    h.pass();
    let split_own = h.titled("朝の個人作業（午後）")[0].id.expect("id");
    let split_home = h.titled("在宅勤務（出社）")[0].id.expect("id");
    let series_href = h.holding(own).href;
    h.assert_in_step();

    // The weekly series deleted in Cybozu (its split-off day stays there), and the all-day one
    // deleted by another client (with the day it had changed).
    h.sim.company().events.remove(&own);
    let all_day = h.holding(home);
    h.server.delete(&all_day.href);
    h.pass();

    let cybozu = h.cybozu();
    assert!(cybozu.contains_key(&split_own));
    assert!(!cybozu.contains_key(&home) && !cybozu.contains_key(&split_home));
    let copy = h.holding(split_own);
    assert_ne!(copy.href, series_href, "a resource of its own");
    assert!(copy.overrides().is_empty());
    assert_eq!(
        copy.master().text("SUMMARY").as_deref(),
        Some("朝の個人作業（午後）")
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}
