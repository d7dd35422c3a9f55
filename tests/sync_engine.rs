//! The engine against the simulated Cybozu Office and an in-memory remote calendar: each pass
//! checked on both stores afterwards.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use dncs::config::Config;
use dncs::cybozu::{Event, Member, TimeSpan, When};
use dncs::store::{Side, Store};
use dncs::sync::convert::{RemoteEvent, RemoteWhen, Visibility};
use dncs::sync::engine::{Listing, Outcome, Pass, Remote, RemoteError, Written};
use dncs::sync::plan::{OccurrenceOf, RemoteItem};

use crate::util::{client, demo_sim, utc};

/// A remote calendar in memory with a change log, like Google's sync tokens.
#[derive(Default)]
struct MemoryRemote {
    events: BTreeMap<String, (RemoteEvent, u64, bool)>,
    /// Items standing for one occurrence of a series: id → (series id, date).
    occurrences: BTreeMap<String, (String, chrono::NaiveDate)>,
    log: Vec<String>,
    clock: u64,
    calls: usize,
}

impl MemoryRemote {
    fn bump(&mut self, id: &str) {
        self.clock += 1;
        self.log.push(id.to_string());
    }

    /// A change made on the phone.
    fn phone_edit(&mut self, id: &str, change: impl FnOnce(&mut RemoteEvent)) {
        let clock = self.clock + 1;
        if let Some((event, etag, _)) = self.events.get_mut(id) {
            change(event);
            *etag = clock;
        }
        self.bump(id);
    }

    fn phone_add(&mut self, id: &str, event: RemoteEvent) {
        let clock = self.clock + 1;
        self.events.insert(id.into(), (event, clock, false));
        self.bump(id);
    }

    fn phone_delete(&mut self, id: &str) {
        if let Some(entry) = self.events.get_mut(id) {
            entry.2 = true;
        }
        self.bump(id);
    }

    /// "This event only" on the phone: one occurrence changed (or deleted) on its own.
    fn phone_occurrence(
        &mut self,
        id: &str,
        series: &str,
        date: chrono::NaiveDate,
        event: RemoteEvent,
        deleted: bool,
    ) {
        self.occurrences.insert(id.into(), (series.into(), date));
        let clock = self.clock + 1;
        self.events.insert(id.into(), (event, clock, deleted));
        self.bump(id);
    }

    fn live(&self) -> Vec<&RemoteEvent> {
        self.events
            .values()
            .filter(|(_, _, deleted)| !deleted)
            .map(|(e, _, _)| e)
            .collect()
    }

    fn item(&self, id: &str) -> RemoteItem {
        let (event, etag, deleted) = &self.events[id];
        RemoteItem {
            id: id.into(),
            etag: Some(etag.to_string()),
            updated: Some(utc("2026-11-25T00:00:00Z") + chrono::Duration::seconds(*etag as i64)),
            deleted: *deleted,
            foreign: false,
            event: Some(event.clone()),
            occurrence_of: self
                .occurrences
                .get(id)
                .map(|(series_id, date)| OccurrenceOf {
                    series_id: series_id.clone(),
                    date: *date,
                }),
        }
    }
}

impl Remote for MemoryRemote {
    fn list(
        &mut self,
        cursor: Option<&str>,
        _window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Listing, RemoteError> {
        self.calls += 1;
        let ids: Vec<String> = match cursor {
            None => self
                .events
                .iter()
                .filter(|(_, v)| !v.2)
                .map(|(k, _)| k.clone())
                .collect(),
            Some(cursor) => {
                let from: usize = cursor.parse().map_err(|_| RemoteError::CursorExpired)?;
                let mut ids: Vec<String> = self.log[from.min(self.log.len())..].to_vec();
                ids.sort();
                ids.dedup();
                ids
            }
        };
        Ok(Listing {
            items: ids.iter().map(|id| self.item(id)).collect(),
            cursor: self.log.len().to_string(),
        })
    }

    fn create(&mut self, cybozu_id: u64, event: &RemoteEvent) -> Result<Written, RemoteError> {
        self.calls += 1;
        let id = format!("c{cybozu_id}");
        let clock = self.clock + 1;
        self.events
            .insert(id.clone(), (event.clone(), clock, false));
        self.bump(&id);
        Ok(Written {
            id,
            etag: Some(clock.to_string()),
        })
    }

    fn update(
        &mut self,
        id: &str,
        _etag: Option<&str>,
        event: &RemoteEvent,
    ) -> Result<Written, RemoteError> {
        self.calls += 1;
        let clock = self.clock + 1;
        self.events.insert(id.into(), (event.clone(), clock, false));
        self.bump(id);
        Ok(Written {
            id: id.into(),
            etag: Some(clock.to_string()),
        })
    }

    fn delete(&mut self, id: &str, _etag: Option<&str>) -> Result<(), RemoteError> {
        self.calls += 1;
        if let Some(entry) = self.events.get_mut(id) {
            entry.2 = true;
        }
        self.bump(id);
        Ok(())
    }

    fn side(&self) -> Side {
        Side::Google
    }
}

struct Setup {
    sim: dncs::sim::cybozu::CybozuSim,
    store: Store,
    config: Config,
    remote: MemoryRemote,
}

const TAKAHASHI: i64 = 1;

fn setup() -> Setup {
    setup_with("")
}

/// A setup whose dncs.ini also holds `ini` (say `CONFLICT=remote\n`).
fn setup_with(ini: &str) -> Setup {
    let sim = demo_sim();
    let store =
        Store::open_in_memory(dncs::secret::SecretKey::generate().expect("key")).expect("store");
    let now = utc("2026-11-25T00:00:00Z");
    store
        .upsert_user(TAKAHASHI, "takahashi", "高橋", now)
        .expect("user");
    let config = Config::from_bytes(
        format!("SYNC_PAST_DAYS=30\nSYNC_FUTURE_DAYS=180\n{ini}").as_bytes(),
        std::path::Path::new("/tmp/dncs.ini"),
    )
    .expect("ini");
    Setup {
        sim,
        store,
        config,
        remote: MemoryRemote::default(),
    }
}

fn pass(s: &mut Setup) -> Outcome {
    let cybozu = client(&s.sim, "takahashi");
    let mut pass = Pass {
        store: &s.store,
        config: &s.config,
        user_id: TAKAHASHI,
        cybozu: &cybozu,
        remote: &mut s.remote,
        now: utc("2026-11-25T00:00:00Z"),
    };
    pass.run().expect("the pass runs")
}

fn my_titles(s: &Setup) -> Vec<String> {
    let mut titles: Vec<String> = s
        .sim
        .company()
        .events_of(1)
        .map(Event::display_title)
        .collect();
    titles.sort();
    titles
}

fn remote_titles(s: &Setup) -> Vec<String> {
    let mut titles: Vec<String> = s.remote.live().iter().map(|e| e.title.clone()).collect();
    titles.sort();
    titles
}

#[test]
fn the_first_pass_copies_everything_and_the_next_is_quiet() {
    let mut s = setup();
    let first = pass(&mut s);
    assert!(first.messages.is_empty(), "{:?}", first.messages);
    assert_eq!(remote_titles(&s), my_titles(&s));
    assert_eq!(first.counts.remote_created as usize, my_titles(&s).len());

    s.sim.take_calls();
    s.remote.calls = 0;
    let second = pass(&mut s);
    assert!(second.plan.actions.is_empty(), "{:?}", second.plan.actions);
    // The protocol floor: one request per side.
    assert_eq!(s.sim.take_calls(), vec!["ScheduleGetEventVersions"]);
    assert_eq!(s.remote.calls, 1);
}

#[test]
fn changes_flow_both_ways_and_are_not_echoed() {
    let mut s = setup();
    pass(&mut s);
    // Cybozu side: an edit and a new event.
    s.sim
        .company()
        .edit_event(1, |e| e.detail = "キックオフ（会場変更）".into());
    let mut lunch = Event::new("Asia/Tokyo");
    lunch.detail = "ランチ".into();
    lunch.members = vec![Member::User(1)];
    lunch.when = When::Times(vec![TimeSpan {
        start: utc("2026-11-26T03:00:00Z"),
        end: Some(utc("2026-11-26T04:00:00Z")),
        facility_id: None,
    }]);
    s.sim.company().insert_event(lunch);
    // Phone side: an edit, a new event and a deletion.
    let call_id = "c7".to_string();
    s.remote
        .phone_edit(&call_id, |e| e.title = "顧客へ電話（折り返し）".into());
    s.remote.phone_add(
        "phone1",
        RemoteEvent {
            title: "歯医者".into(),
            description: String::new(),
            location: String::new(),
            when: RemoteWhen::Timed {
                start: utc("2026-11-27T09:00:00Z"),
                end: utc("2026-11-27T10:00:00Z"),
            },
            timezone: "Asia/Tokyo".into(),
            recurrence: vec![],
            visibility: Visibility::Default,
            transparent: false,
            tentative: false,
            cybozu_id: None,
            cybozu_version: None,
            plan: None,
        },
    );
    s.remote.phone_delete("c3");
    let outcome = pass(&mut s);
    assert!(outcome.messages.is_empty(), "{:?}", outcome.messages);
    let titles = my_titles(&s);
    assert!(
        titles.contains(&"顧客へ電話（折り返し）".to_string()),
        "{titles:?}"
    );
    assert!(titles.contains(&"歯医者".to_string()));
    assert!(
        !titles.iter().any(|t| t.contains("有給休暇")),
        "deleted on the phone: {titles:?}"
    );
    let dentist = s
        .sim
        .company()
        .events_of(1)
        .find(|e| e.detail == "歯医者")
        .cloned()
        .expect("arrived");
    assert!(
        dentist.public_type.is_private(),
        "phone events arrive private"
    );
    assert_eq!(remote_titles(&s), my_titles(&s));
    // The next pass sees only its own writes: nothing to do.
    let quiet = pass(&mut s);
    assert!(quiet.plan.actions.is_empty(), "{:?}", quiet.plan.actions);
}

#[test]
fn a_shared_event_deleted_on_the_phone_is_left_not_deleted() {
    let mut s = setup();
    pass(&mut s);
    s.remote.phone_delete("c1");
    pass(&mut s);
    let company = s.sim.company();
    let kickoff = company.events.get(&1).expect("the others keep it");
    assert!(!kickoff.has_user(1));
    assert!(kickoff.has_user(2));
}

/// Deleted on one side, edited on the other: the edit wins and the event comes back once, its
/// pair kept (the old pair is forgotten before the new copy is recorded).
#[test]
fn a_deletion_that_loses_its_conflict_brings_the_event_back_once() {
    // Deleted in Cybozu, edited on the phone, the phone wins.
    let mut s = setup_with("CONFLICT=remote\n");
    pass(&mut s);
    s.sim.company().events.remove(&7);
    s.remote
        .phone_edit("c7", |e| e.title = "顧客へ電話（スマホで変更）".into());
    let outcome = pass(&mut s);
    assert!(
        outcome.messages.iter().all(|m| !m.contains("データベース")),
        "{:?}",
        outcome.messages
    );
    let back: Vec<_> = my_titles(&s)
        .into_iter()
        .filter(|t| t == "顧客へ電話（スマホで変更）")
        .collect();
    assert_eq!(back.len(), 1, "{:?}", my_titles(&s));
    let quiet = pass(&mut s);
    assert!(quiet.plan.actions.is_empty(), "{:?}", quiet.plan.actions);
    assert_eq!(my_titles(&s), remote_titles(&s));

    // Edited in Cybozu, deleted on the phone, Cybozu wins: a new copy, and its pair.
    let mut s = setup();
    pass(&mut s);
    s.sim
        .company()
        .edit_event(7, |e| e.detail = "顧客へ電話（サイボウズで変更）".into());
    s.remote.phone_delete("c7");
    pass(&mut s);
    assert_eq!(remote_titles(&s), my_titles(&s));
    let mapped = s
        .store
        .mapping_for_cybozu(TAKAHASHI, 7)
        .expect("read")
        .expect("the new copy is paired");
    assert_eq!(mapped.remote_id, "c7");
}

#[test]
fn a_failing_cybozu_read_changes_nothing_anywhere() {
    let mut s = setup();
    pass(&mut s);
    let before = remote_titles(&s);
    s.sim
        .quirks()
        .fail_next
        .push(("ScheduleGetEventVersions".into(), 19106));
    let cybozu = client(&s.sim, "takahashi");
    let result = Pass {
        store: &s.store,
        config: &s.config,
        user_id: TAKAHASHI,
        cybozu: &cybozu,
        remote: &mut s.remote,
        now: utc("2026-11-25T00:00:00Z"),
    }
    .run();
    assert!(result.is_err());
    assert_eq!(remote_titles(&s), before);
    assert_eq!(
        s.store.mappings_for_user(TAKAHASHI).expect("read").len(),
        before.len()
    );
}

#[test]
fn the_cursor_is_stored_after_the_pass() {
    let mut s = setup();
    pass(&mut s);
    assert!(s
        .store
        .cursor(TAKAHASHI, Side::Google)
        .expect("read")
        .is_some());
}

#[test]
fn a_phone_change_whose_cybozu_write_failed_is_read_again_by_the_next_pass() {
    let mut s = setup();
    pass(&mut s);
    let cursor = s.store.cursor(TAKAHASHI, Side::Google).expect("read");
    s.remote
        .phone_edit("c7", |e| e.title = "顧客へ電話（折り返し）".into());
    s.sim
        .quirks()
        .fail_next
        .push(("ScheduleModifyEvents".into(), 19106));
    let failed = pass(&mut s);
    assert_eq!(failed.messages.len(), 1, "{:?}", failed.messages);
    assert_eq!(
        s.store.cursor(TAKAHASHI, Side::Google).expect("read"),
        cursor,
        "the cursor stays before the change"
    );
    let retried = pass(&mut s);
    assert!(retried.messages.is_empty(), "{:?}", retried.messages);
    assert!(my_titles(&s).contains(&"顧客へ電話（折り返し）".to_string()));
    let quiet = pass(&mut s);
    assert!(quiet.plan.actions.is_empty(), "{:?}", quiet.plan.actions);
}

#[test]
fn one_occurrence_changed_or_deleted_on_the_phone_splits_the_cybozu_series() {
    let mut s = setup();
    pass(&mut s);
    let series_remote = "c5".to_string(); // 週次定例, Mondays 9:30–10:00 JST, users 1–5.
                                          // 30 November is excluded in the demo, so the edit is on 7 December.
    let edited_day = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).expect("date");
    let mut moved = s.remote.events[&series_remote].0.clone();
    moved.recurrence.clear();
    moved.title = "週次定例（この日は午後）".into();
    moved.when = RemoteWhen::Timed {
        start: utc("2026-12-07T05:00:00Z"),
        end: utc("2026-12-07T05:30:00Z"),
    };
    s.remote
        .phone_occurrence("c5_20261207", &series_remote, edited_day, moved, false);
    let cancelled = s.remote.events[&series_remote].0.clone();
    s.remote.phone_occurrence(
        "c5_20261214",
        &series_remote,
        edited_day + chrono::Duration::days(7),
        cancelled,
        true,
    );
    let outcome = pass(&mut s);
    assert!(outcome.messages.is_empty(), "{:?}", outcome.messages);
    let company = s.sim.company();
    let series = company.events.get(&5).expect("series");
    let excluded: Vec<_> = series
        .repeat
        .as_ref()
        .expect("rule")
        .exclusions
        .iter()
        .map(|e| e.start.with_timezone(&chrono_tz::Asia::Tokyo).date_naive())
        .collect();
    assert!(excluded.contains(&edited_day), "{excluded:?}");
    // The deleted day: the series is shared, so takahashi left that day; the others keep it.
    let others_day = company
        .events
        .values()
        .find(|e| e.detail == "週次定例" && e.event_type == dncs::cybozu::EventType::Normal)
        .expect("the others keep 14 December as a single event");
    assert!(!others_day.has_user(1));
    let single = company
        .events
        .values()
        .find(|e| e.detail == "週次定例（この日は午後）")
        .expect("split off");
    assert!(
        single.has_user(1) && single.has_user(2),
        "the day keeps the series' members"
    );
    assert_eq!(
        single.when.first_time().map(|t| t.start),
        Some(utc("2026-12-07T05:00:00Z"))
    );
    drop(company);
    let quiet = pass(&mut s);
    assert!(
        quiet.plan.actions.is_empty(),
        "no echo: {:?}",
        quiet.plan.actions
    );
}
