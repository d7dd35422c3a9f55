//! End to end: the real `dncs-sync run --user takahashi` between the simulated Cybozu Office
//! (the demo company) and the simulated Google Calendar, an install folder of its own per test.
//! After each pass both stores and 同期履歴 are read back: nothing duplicated, nothing lost,
//! whatever fails in between.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveTime, Utc};
use dncs::cybozu::{
    Event, EventType, Member, PublicType, RepeatCondition, RepeatInfo, RepeatKind, TimeSpan, When,
};
use dncs::google::{
    Event as GoogleEvent, EventDateTime, EventStatus, Transparency, Visibility as GoogleVisibility,
};
use dncs::sim::cybozu::{seed, CybozuSim};
use dncs::sim::google::GoogleSim;
use dncs::store::{open_data_folder, GoogleClient, HistoryEntry, Provenance, Store, Target};
use dncs::sync::google::PROP_CYBOZU_ID;

use crate::util::{assert_one_copy_each, date, google_event, utc};

/// The Google account of the linked user.
const ACCOUNT: &str = "takahashi@example.com";
/// takahashi's Cybozu user id (and the store's user id).
pub(crate) const TAKAHASHI: u64 = 1;
const USER: i64 = 1;
/// The pinned clock of every pass.
const NOW: &str = "2026-11-25T10:00:00+09:00";
/// The demo events takahashi takes part in (ids of `seed::demo`).
pub(crate) const KICKOFF: u64 = 1;
pub(crate) const VISIT: u64 = 2;
pub(crate) const HOLIDAY: u64 = 3;
pub(crate) const TRIP: u64 = 4;
pub(crate) const WEEKLY: u64 = 5;
pub(crate) const TENTATIVE: u64 = 6;
pub(crate) const CALL: u64 = 7;
pub(crate) const DEMO_EVENTS: usize = 7;

/// An install folder, both simulators and a user linked to Google.
struct Harness {
    dir: tempfile::TempDir,
    sim: CybozuSim,
    google: GoogleSim,
    refresh_token: String,
}

/// Extra ini lines and extra events for takahashi before anything runs.
#[derive(Default)]
struct Setup<'a> {
    ini: &'a str,
    extra_events: usize,
}

impl Harness {
    fn new() -> Self {
        Self::with(Setup::default())
    }

    fn with(setup: Setup<'_>) -> Self {
        let sim = CybozuSim::start(seed::demo(date("2026-11-25"))).expect("Cybozu simulator");
        for n in 0..setup.extra_events {
            sim.company().insert_event(timed_event(
                &format!("作業 {n:03}"),
                &[TAKAHASHI],
                utc("2026-11-30T00:00:00Z") + chrono::Duration::hours(n as i64 * 3),
                60,
            ));
        }
        let google = GoogleSim::start().expect("Google simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin folder");
        let ini = format!(
            "CYBOZU_URL={}\nDATA_DIR=../data\nGOOGLE_CLIENT_ID={}\nGOOGLE_CLIENT_SECRET={}\n\
             GOOGLE_AUTH_URL={}\nGOOGLE_TOKEN_URL={}\nGOOGLE_API_BASE={}\n{}\n",
            sim.url(),
            google.client_id(),
            google.client_secret(),
            google.auth_url(),
            google.token_url(),
            google.api_base(),
            setup.ini,
        );
        std::fs::write(bin.join("dncs.ini"), ini).expect("ini");
        let refresh_token = google.issue_refresh_token(ACCOUNT);
        let harness = Self {
            dir,
            sim,
            google,
            refresh_token,
        };
        let store = harness.store();
        let now = utc(NOW);
        store
            .upsert_user(USER, "takahashi", "高橋 健太", now)
            .expect("user");
        store
            .set_cybozu_password(USER, "takahashi", now)
            .expect("password");
        store.set_enabled(USER, true, now).expect("enabled");
        store.set_sync_on(USER, true, now).expect("sync on");
        store
            .set_target_and_calendar(USER, Target::Google, "", now)
            .expect("target");
        store
            .set_google_link(
                USER,
                &harness.refresh_token,
                Provenance::Relay,
                GoogleClient::Current,
                now,
            )
            .expect("link");
        harness
    }

    fn ini(&self) -> PathBuf {
        self.dir.path().join("bin").join("dncs.ini")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn store(&self) -> Store {
        open_data_folder(&self.data()).expect("data folder")
    }

    fn command(&self, now: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dncs-sync"));
        command
            .arg("run")
            .args(args)
            .env("DNCS_INI", self.ini())
            .env("DNCS_NOW", now)
            .stdin(Stdio::null());
        command
    }

    /// `dncs-sync run --user takahashi` (plus `args`) at `now`; it must exit well.
    fn run_at(&self, now: &str, args: &[&str]) -> Output {
        let output = self
            .command(now, &[&["--user", "takahashi"], args].concat())
            .output()
            .expect("dncs-sync runs");
        assert!(
            output.status.success(),
            "dncs-sync failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// One pass at the pinned clock.
    fn pass(&self) -> Output {
        self.run_at(NOW, &[])
    }

    /// takahashi's Cybozu events, by id.
    fn cybozu(&self) -> BTreeMap<u64, Event> {
        self.sim
            .company()
            .events_of(TAKAHASHI)
            .filter_map(|e| Some((e.id?, e.clone())))
            .collect()
    }

    /// The primary calendar's events that are not cancelled.
    fn google_live(&self) -> Vec<GoogleEvent> {
        self.google_live_in("primary")
    }

    fn google_live_in(&self, calendar: &str) -> Vec<GoogleEvent> {
        self.google
            .events(ACCOUNT, calendar)
            .into_iter()
            .filter(|e| !e.is_cancelled())
            .collect()
    }

    /// The live Google copy of a Cybozu event; fails if there are several.
    fn copy_of(&self, cybozu_id: u64) -> Option<GoogleEvent> {
        let copies: Vec<GoogleEvent> = self
            .google_live()
            .into_iter()
            .filter(|e| cybozu_id_of(e) == Some(cybozu_id))
            .collect();
        assert!(copies.len() <= 1, "{} copies of {cybozu_id}", copies.len());
        copies.into_iter().next()
    }

    /// 同期履歴, newest first.
    fn history(&self) -> Vec<HistoryEntry> {
        self.store()
            .history_page(USER, 0, 100)
            .expect("history")
            .entries
    }

    fn newest_history(&self) -> HistoryEntry {
        self.history().into_iter().next().expect("a 同期履歴 entry")
    }

    /// What both sides hold, to compare before and after a pass that must change nothing.
    fn both_sides(&self) -> (BTreeMap<u64, Event>, Vec<GoogleEvent>) {
        (self.cybozu(), self.google.events(ACCOUNT, "primary"))
    }

    /// Another pass finds nothing to do: no write echoes back as a change.
    fn assert_quiet_pass(&self) {
        let before = self.both_sides();
        self.pass();
        assert_eq!(self.both_sides(), before, "a quiet pass changes nothing");
    }

    /// Each Cybozu event has exactly one live Google copy and each copy a Cybozu event, and the
    /// mapping says the same.
    fn assert_in_step(&self) {
        let cybozu: BTreeSet<u64> = self.cybozu().keys().copied().collect();
        let copies = self.google_live().into_iter().map(|event| {
            cybozu_id_of(&event)
                .unwrap_or_else(|| panic!("a Google event without a Cybozu id: {event:?}"))
        });
        assert_one_copy_each("Google", copies, &cybozu, &self.store(), USER);
    }
}

fn cybozu_id_of(event: &GoogleEvent) -> Option<u64> {
    event.private_property(PROP_CYBOZU_ID)?.parse().ok()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A weekly series (Tuesdays 8:00–8:30) that only takahashi attends.
pub(crate) fn own_weekly_series() -> Event {
    let mut own = Event::new("Asia/Tokyo");
    own.detail = "朝の個人作業".into();
    own.members = vec![Member::User(TAKAHASHI)];
    own.event_type = EventType::Repeat;
    own.repeat = Some(RepeatInfo {
        condition: RepeatCondition {
            kind: RepeatKind::Week,
            start_date: date("2026-11-24"),
            end_date: Some(date("2027-03-30")),
            start_time: NaiveTime::from_hms_opt(8, 0, 0),
            end_time: NaiveTime::from_hms_opt(8, 30, 0),
            day: None,
            week: Some(2),
        },
        exclusions: Vec::new(),
    });
    own
}

pub(crate) fn timed_event(
    detail: &str,
    users: &[u64],
    start: DateTime<Utc>,
    minutes: i64,
) -> Event {
    let mut event = Event::new("Asia/Tokyo");
    event.detail = detail.into();
    event.members = users.iter().map(|id| Member::User(*id)).collect();
    event.when = When::Times(vec![TimeSpan {
        start,
        end: Some(start + chrono::Duration::minutes(minutes)),
        facility_id: None,
    }]);
    event
}

fn errors_of(entry: &HistoryEntry) -> String {
    entry.errors.join("\n")
}

/// Office stamps a change with the UNIX time of the change. The simulator runs its stamps ahead
/// of the clock when many changes fall within one second (the demo company is made in one), so
/// where the time of an edit matters (`CONFLICT=newer`) the test stamps it with the clock.
fn stamp_with_clock(h: &Harness, id: u64) {
    let now = u64::try_from(Utc::now().timestamp()).expect("time");
    if let Some(event) = h.sim.company().events.get_mut(&id) {
        event.version = Some(now);
    }
}

// 1 ------------------------------------------------------------------------------------------

#[test]
fn the_first_pass_copies_the_window_once_and_a_quiet_pass_costs_one_call_per_side() {
    let h = Harness::new();
    h.pass();
    let cybozu = h.cybozu();
    assert_eq!(cybozu.len(), DEMO_EVENTS);
    assert_eq!(h.google_live().len(), DEMO_EVENTS);
    h.assert_in_step();
    for (id, event) in &cybozu {
        let copy = h.copy_of(*id).expect("a copy");
        assert_eq!(
            copy.summary.as_deref(),
            Some(event.display_title().as_str())
        );
    }
    let first = h.newest_history();
    assert_eq!(first.counts.remote_created as usize, DEMO_EVENTS);

    h.sim.take_calls();
    h.google.take_calls();
    h.google.record(true);
    let before = h.both_sides();
    let history_rows = h.history().len();
    h.pass();
    assert_eq!(h.sim.take_calls(), vec!["ScheduleGetEventVersions"]);
    let exchanges = h.google.take_exchanges();
    let calls: Vec<String> = exchanges
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    // The cached access token is used: no token request.
    assert_eq!(calls, vec!["GET /calendar/v3/calendars/primary/events"]);
    assert!(
        exchanges[0].query.iter().any(|(k, _)| k == "syncToken"),
        "{:?}",
        exchanges[0].query
    );
    assert_eq!(h.both_sides(), before, "a quiet pass changes nothing");
    assert_eq!(h.history().len(), history_rows, "and says nothing");
}

// 2 ------------------------------------------------------------------------------------------

#[test]
fn creates_edits_and_deletions_flow_both_ways() {
    let h = Harness::new();
    h.pass();
    // In Cybozu: a new event, an edit, a deletion.
    let lunch = h.sim.company().insert_event(timed_event(
        "ランチ会",
        &[TAKAHASHI],
        utc("2026-11-26T03:00:00Z"),
        60,
    ));
    h.sim.company().edit_event(VISIT, |e| {
        e.detail = "株式会社サンプル 山田様・佐々木様".into()
    });
    h.sim.company().events.remove(&HOLIDAY);
    h.pass();
    assert_eq!(
        h.copy_of(lunch).and_then(|e| e.summary).as_deref(),
        Some("ランチ会")
    );
    assert_eq!(
        h.copy_of(VISIT).and_then(|e| e.summary).as_deref(),
        Some("来客:株式会社サンプル 山田様・佐々木様")
    );
    assert!(h.copy_of(HOLIDAY).is_none(), "the deletion reached Google");
    h.assert_in_step();

    // On the phone: two new events, an edit, a deletion.
    h.google
        .phone_insert(
            ACCOUNT,
            "primary",
            google_event("歯医者", "2026-11-27T09:00:00Z", "2026-11-27T10:00:00Z"),
        )
        .expect("inserted");
    let mut public = google_event(
        "部署の忘年会",
        "2026-12-18T09:00:00Z",
        "2026-12-18T12:00:00Z",
    );
    public.visibility = Some(GoogleVisibility::Public);
    h.google
        .phone_insert(ACCOUNT, "primary", public)
        .expect("inserted");
    let call_copy = h.copy_of(CALL).and_then(|e| e.id).expect("copy");
    h.google
        .phone_edit(ACCOUNT, "primary", &call_copy, |e| {
            e.summary = Some("顧客へ電話（折り返し）".into());
        })
        .expect("edited");
    let visit_copy = h.copy_of(VISIT).and_then(|e| e.id).expect("copy");
    h.google
        .phone_delete(ACCOUNT, "primary", &visit_copy)
        .expect("deleted");
    h.pass();
    let cybozu = h.cybozu();
    let by_detail =
        |detail: &str| -> Vec<&Event> { cybozu.values().filter(|e| e.detail == detail).collect() };
    let dentist = by_detail("歯医者");
    assert_eq!(dentist.len(), 1, "{cybozu:?}");
    assert_eq!(
        dentist[0].public_type,
        PublicType::Private,
        "非公開 by default"
    );
    let party = by_detail("部署の忘年会");
    assert_eq!(party.len(), 1);
    assert_eq!(
        party[0].public_type,
        PublicType::Public,
        "visibility public"
    );
    assert_eq!(cybozu[&CALL].detail, "顧客へ電話（折り返し）");
    assert!(!cybozu.contains_key(&VISIT), "deleted on the phone");
    assert!(!h.sim.company().events.contains_key(&VISIT));
    h.assert_in_step();

    // Nothing echoes back.
    h.assert_quiet_pass();
}

// 3 ------------------------------------------------------------------------------------------

#[test]
fn every_kind_of_event_is_mapped_as_designed() {
    let h = Harness::new();
    let mut qualified = timed_event("人事面談", &[TAKAHASHI], utc("2026-11-26T06:00:00Z"), 30);
    qualified.public_type = PublicType::Qualified;
    let qualified = h.sim.company().insert_event(qualified);
    h.pass();

    let holiday = h.copy_of(HOLIDAY).expect("all-day copy");
    let day = |e: &Option<EventDateTime>| e.as_ref().and_then(EventDateTime::as_date);
    assert_eq!(day(&holiday.start), Some(date("2026-11-27")));
    assert_eq!(day(&holiday.end), Some(date("2026-11-28")), "end exclusive");

    let trip = h.copy_of(TRIP).expect("banner copy");
    assert_eq!(day(&trip.start), Some(date("2026-11-25")));
    assert_eq!(day(&trip.end), Some(date("2026-11-28")));
    assert_eq!(trip.transparency, Some(Transparency::Transparent));

    for id in [VISIT, qualified] {
        let copy = h.copy_of(id).expect("copy");
        assert_eq!(copy.visibility, Some(GoogleVisibility::Private), "{id}");
    }

    let tentative = h.copy_of(TENTATIVE).expect("仮予定 copy");
    assert_eq!(tentative.status, Some(EventStatus::Tentative));
    assert_eq!(tentative.transparency, Some(Transparency::Transparent));

    let call = h.copy_of(CALL).expect("start_only copy");
    let instant = |e: &Option<EventDateTime>| e.as_ref().and_then(EventDateTime::as_date_time);
    assert_eq!(instant(&call.start), Some(utc("2026-11-24T00:00:00Z")));
    assert_eq!(instant(&call.end), instant(&call.start), "end = start");

    // A phone edit of the 仮予定 is not written back, and 同期履歴 says so.
    let before = h.cybozu()[&TENTATIVE].clone();
    h.google
        .phone_edit(
            ACCOUNT,
            "primary",
            tentative.id.as_deref().expect("id"),
            |e| {
                e.summary = Some("会議:来期予算の検討（確定）".into());
            },
        )
        .expect("edited");
    h.pass();
    assert_eq!(h.cybozu()[&TENTATIVE], before);
    let errors = errors_of(&h.newest_history());
    assert!(errors.contains("仮予定"), "{errors}");
    assert!(errors.contains("反映しません"), "{errors}");
}

// 4 ------------------------------------------------------------------------------------------

#[test]
fn a_weekly_repeat_is_one_series_with_its_exclusion_and_deletes_whole() {
    let h = Harness::new();
    let own = h.sim.company().insert_event(own_weekly_series());
    h.pass();

    let weekly = h.copy_of(WEEKLY).expect("series copy");
    let series = h
        .google_live()
        .iter()
        .filter(|e| e.summary.as_deref() == Some("会議:週次定例"))
        .count();
    assert_eq!(series, 1, "one Google event for the whole series");
    assert!(
        weekly
            .recurrence
            .iter()
            .any(|l| l.starts_with("RRULE:FREQ=WEEKLY")),
        "{:?}",
        weekly.recurrence
    );
    assert!(
        weekly
            .recurrence
            .iter()
            .any(|l| l.starts_with("EXDATE") && l.contains("20261130")),
        "the skipped week: {:?}",
        weekly.recurrence
    );

    // Deleted in Cybozu (the whole series): gone from Google.
    h.sim.company().events.remove(&WEEKLY);
    h.pass();
    assert!(h.copy_of(WEEKLY).is_none());

    // Deleted on the phone (the whole series, takahashi's own): gone from Cybozu.
    let own_copy = h.copy_of(own).and_then(|e| e.id).expect("copy");
    h.google
        .phone_delete(ACCOUNT, "primary", &own_copy)
        .expect("deleted");
    h.pass();
    assert!(!h.sim.company().events.contains_key(&own));
    h.assert_in_step();
}

// 5 ------------------------------------------------------------------------------------------

/// Edits the visit on both sides between passes; `phone_first` orders the two edits.
fn conflict(policy: &str, phone_first: bool) -> (Harness, String) {
    let h = Harness::with(Setup {
        ini: &format!("CONFLICT={policy}"),
        ..Setup::default()
    });
    h.pass();
    let copy = h.copy_of(VISIT).and_then(|e| e.id).expect("copy");
    let edit_phone = || {
        h.google
            .phone_edit(ACCOUNT, "primary", &copy, |e| {
                e.summary = Some("来客:スマホで変更".into());
            })
            .expect("edited");
    };
    let edit_cybozu = || {
        h.sim
            .company()
            .edit_event(VISIT, |e| e.detail = "サイボウズで変更".into());
        stamp_with_clock(&h, VISIT);
    };
    if phone_first {
        edit_phone();
        // Versions count whole seconds.
        std::thread::sleep(Duration::from_millis(1100));
        edit_cybozu();
    } else {
        edit_cybozu();
        std::thread::sleep(Duration::from_millis(1100));
        edit_phone();
    }
    h.pass();
    let errors = errors_of(&h.newest_history());
    (h, errors)
}

fn assert_both_say(h: &Harness, detail: &str) {
    assert_eq!(h.cybozu()[&VISIT].detail, detail);
    assert_eq!(
        h.copy_of(VISIT).and_then(|e| e.summary),
        Some(format!("来客:{detail}"))
    );
}

#[test]
fn a_conflict_under_conflict_cybozu_keeps_the_cybozu_edit() {
    let (h, errors) = conflict("cybozu", false);
    assert_both_say(&h, "サイボウズで変更");
    assert!(
        errors.contains("サイボウズ Office の内容を優先しました"),
        "{errors}"
    );
    assert_eq!(h.newest_history().counts.conflicts, 1);
}

#[test]
fn a_conflict_under_conflict_remote_keeps_the_phone_edit() {
    let (h, errors) = conflict("remote", true);
    assert_both_say(&h, "スマホで変更");
    assert!(
        errors.contains("カレンダー側の内容を優先しました"),
        "{errors}"
    );
}

#[test]
fn a_conflict_under_conflict_newer_keeps_the_later_edit() {
    let (h, errors) = conflict("newer", false);
    assert_both_say(&h, "スマホで変更");
    assert!(
        errors.contains("カレンダー側の内容を優先しました"),
        "{errors}"
    );

    let (h, errors) = conflict("newer", true);
    assert_both_say(&h, "サイボウズで変更");
    assert!(
        errors.contains("サイボウズ Office の内容を優先しました"),
        "{errors}"
    );
}

// 6 ------------------------------------------------------------------------------------------

#[test]
fn a_shared_event_deleted_on_the_phone_is_only_left() {
    let h = Harness::new();
    h.pass();
    let copy = h.copy_of(KICKOFF).and_then(|e| e.id).expect("copy");
    h.google
        .phone_delete(ACCOUNT, "primary", &copy)
        .expect("deleted");
    h.pass();
    let kickoff = h
        .sim
        .company()
        .events
        .get(&KICKOFF)
        .cloned()
        .expect("the others keep it");
    assert!(!kickoff.has_user(1), "takahashi left it");
    assert!(
        kickoff.has_user(2) && kickoff.has_user(3),
        "sato and suzuki keep it"
    );
    assert!(
        kickoff.facility_ids().next().is_some(),
        "the room stays booked"
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}

// 7 ------------------------------------------------------------------------------------------

#[test]
fn a_changed_calendar_id_starts_over_in_the_new_calendar_adopting_copies() {
    const TEAM: &str = "team@group.calendar.google.com";
    let h = Harness::new();
    h.google.add_calendar(ACCOUNT, TEAM);
    h.pass();
    // The new calendar already holds a copy of the visit (say, made by hand from the old one).
    let mut copied = h.copy_of(VISIT).expect("copy");
    copied.id = None;
    copied.etag = None;
    let copied = h
        .google
        .phone_insert(ACCOUNT, TEAM, copied)
        .and_then(|e| e.id)
        .expect("inserted");
    let primary_before = h.google.events(ACCOUNT, "primary");
    let cybozu_before = h.cybozu();
    let store = h.store();
    assert!(store
        .set_target_and_calendar(USER, Target::Google, TEAM, utc(NOW))
        .expect("changed"));
    assert!(store.mappings_for_user(USER).expect("read").is_empty());
    h.pass();

    let team = h.google_live_in(TEAM);
    assert_eq!(team.len(), DEMO_EVENTS, "{team:?}");
    let ids: BTreeSet<u64> = team.iter().filter_map(cybozu_id_of).collect();
    assert_eq!(ids, cybozu_before.keys().copied().collect());
    assert!(
        team.iter()
            .any(|e| e.id.as_deref() == Some(copied.as_str())),
        "adopted"
    );
    assert_eq!(h.newest_history().counts.adopted, 1);
    assert_eq!(h.google.events(ACCOUNT, "primary"), primary_before);
    assert_eq!(h.cybozu(), cybozu_before);
    let mapped: BTreeSet<String> = store
        .mappings_for_user(USER)
        .expect("read")
        .into_iter()
        .map(|m| m.remote_id)
        .collect();
    assert_eq!(
        mapped,
        team.iter().filter_map(|e| e.id.clone()).collect(),
        "the mapping points into the new calendar"
    );
}

// 8 ------------------------------------------------------------------------------------------

#[test]
fn a_revoked_google_link_skips_the_user_and_asks_to_link_again() {
    // Two hours on: the cached access token has expired, the refresh is refused.
    a_revoked_link("2026-11-25T12:00:00+09:00");
}

#[test]
fn a_link_revoked_while_the_cached_token_seems_good_asks_to_link_again() {
    // Google drops the access tokens of a revoked grant at once: the 401 leads to one refresh,
    // which is refused.
    a_revoked_link(NOW);
}

fn a_revoked_link(now: &str) {
    let h = Harness::new();
    h.pass();
    h.sim
        .company()
        .edit_event(VISIT, |e| e.detail = "変更（同期されないはず）".into());
    let copy = h.copy_of(CALL).and_then(|e| e.id).expect("copy");
    h.google
        .phone_edit(ACCOUNT, "primary", &copy, |e| {
            e.summary = Some("スマホで変更（同期されないはず）".into());
        })
        .expect("edited");
    h.google.revoke(&h.refresh_token);
    h.google.expire_access_tokens();
    let before = h.both_sides();
    h.google.take_calls();
    h.run_at(now, &[]);
    let calls = h.google.take_calls();
    assert_eq!(
        calls.iter().filter(|c| c.as_str() == "POST /token").count(),
        1,
        "one refresh: {calls:?}"
    );
    assert_eq!(h.both_sides(), before);
    let errors = errors_of(&h.newest_history());
    assert!(errors.contains("認証"), "{errors}");
    let link = h
        .store()
        .user_by_id(USER)
        .expect("read")
        .and_then(|u| u.google)
        .expect("still linked");
    assert!(link.needs_relink, "認証済(再認証が必要です)");
    assert!(link.asks_for_relink());
}

// 9 ------------------------------------------------------------------------------------------

#[test]
fn a_changed_cybozu_password_changes_nothing_and_says_so() {
    let h = Harness::new();
    h.pass();
    let copy = h.copy_of(CALL).and_then(|e| e.id).expect("copy");
    h.google
        .phone_edit(ACCOUNT, "primary", &copy, |e| {
            e.summary = Some("スマホで変更（同期されないはず）".into());
        })
        .expect("edited");
    h.sim
        .company()
        .edit_event(VISIT, |e| e.detail = "変更（同期されないはず）".into());
    for account in &mut h.sim.company().accounts {
        if account.login == "takahashi" {
            account.password = "新しいパスワード".into();
        }
    }
    h.assert_quiet_pass();
    let errors = errors_of(&h.newest_history());
    assert!(
        errors.contains(
            "サイボウズ Office のパスワードが変更されました。同期設定画面に再ログインしてください"
        ),
        "{errors}"
    );
}

// 10 -----------------------------------------------------------------------------------------

/// Deletions waiting on both sides, then a pass whose Cybozu read fails: nothing is deleted
/// anywhere; the next good pass deletes them.
fn a_failed_read_deletes_nothing(break_the_read: impl FnOnce(&Harness)) {
    let h = Harness::new();
    h.pass();
    h.sim.company().events.remove(&HOLIDAY);
    let copy = h.copy_of(CALL).and_then(|e| e.id).expect("copy");
    h.google
        .phone_delete(ACCOUNT, "primary", &copy)
        .expect("deleted");
    let before = h.both_sides();
    let mappings = h.store().mappings_for_user(USER).expect("read").len();
    break_the_read(&h);
    h.pass();
    assert_eq!(h.both_sides(), before, "nothing deleted anywhere");
    assert_eq!(
        h.store().mappings_for_user(USER).expect("read").len(),
        mappings
    );
    let errors = errors_of(&h.newest_history());
    assert!(errors.contains("何も変更していません"), "{errors}");

    h.pass();
    assert!(h.copy_of(HOLIDAY).is_none());
    assert!(!h.cybozu().contains_key(&CALL));
    h.assert_in_step();
}

#[test]
fn a_failing_event_read_deletes_nothing() {
    a_failed_read_deletes_nothing(|h| {
        h.sim
            .quirks()
            .fail_next
            .push(("ScheduleGetEventsById".into(), 19106));
    });
}

#[test]
fn a_failing_version_read_deletes_nothing() {
    a_failed_read_deletes_nothing(|h| {
        h.sim
            .quirks()
            .fail_next
            .push(("ScheduleGetEventVersions".into(), 19106));
    });
}

#[test]
fn a_truncated_version_reply_deletes_nothing() {
    a_failed_read_deletes_nothing(|h| {
        h.sim.quirks().raw_replies.push((
            200,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope \
             xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body>\
             <schedule:ScheduleGetEventVersionsResponse \
             xmlns:schedule=\"http://wsdl.cybozu.co.jp/schedule/2008\"><returns>\
             <event_item id=\"1\" version=\"1\" operation=\"modify\"/><event_item id=\""
                .into(),
        ));
    });
}

// 11 -----------------------------------------------------------------------------------------

#[test]
fn the_mass_deletion_guard_stops_the_pass_and_google_keeps_everything() {
    let h = Harness::with(Setup {
        extra_events: 30,
        ..Setup::default()
    });
    h.pass();
    assert_eq!(h.google_live().len(), DEMO_EVENTS + 30);
    let doomed: Vec<u64> = h
        .cybozu()
        .values()
        .filter(|e| e.detail.starts_with("作業"))
        .filter_map(|e| e.id)
        .take(25)
        .collect();
    for id in &doomed {
        h.sim.company().events.remove(id);
    }
    let before = h.google.events(ACCOUNT, "primary");
    let output = h.pass();
    assert_eq!(
        h.google.events(ACCOUNT, "primary"),
        before,
        "Google keeps everything"
    );
    assert_eq!(
        h.store().mappings_for_user(USER).expect("read").len(),
        DEMO_EVENTS + 30
    );
    let errors = errors_of(&h.newest_history());
    assert!(
        errors.contains("安全のためこの同期を中止しました"),
        "{errors}"
    );
    assert!(stdout(&output).contains("中止"), "{}", stdout(&output));
}

// 12 -----------------------------------------------------------------------------------------

#[test]
fn the_first_pass_adopts_existing_copies_before_it_copies() {
    let h = Harness::new();
    // A copy an earlier installation made, with the Cybozu id…
    let mut by_id = google_event(
        "来客:株式会社サンプル 山田様",
        "2026-11-24T05:00:00Z",
        "2026-11-24T06:00:00Z",
    );
    by_id.set_private_property(PROP_CYBOZU_ID, &VISIT.to_string());
    // …copies that match only by time and title (one with a plan-menu title)…
    let kickoff = google_event(
        "会議:新製品キックオフ",
        "2026-11-23T01:00:00Z",
        "2026-11-23T02:30:00Z",
    );
    let call = google_event("顧客へ電話", "2026-11-24T00:00:00Z", "2026-11-24T00:00:00Z");
    // …and the user's own events.
    let personal = [
        google_event("ジム", "2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z"),
        google_event("家族と夕食", "2026-11-28T10:00:00Z", "2026-11-28T12:00:00Z"),
    ];
    for event in [by_id, kickoff, call].into_iter().chain(personal) {
        h.google
            .phone_insert(ACCOUNT, "primary", event)
            .expect("inserted");
    }
    h.pass();
    let cybozu = h.cybozu();
    assert_eq!(cybozu.len(), DEMO_EVENTS + 2, "{cybozu:?}");
    for title in ["ジム", "家族と夕食"] {
        assert_eq!(
            cybozu.values().filter(|e| e.detail == title).count(),
            1,
            "{title} reached Cybozu once"
        );
    }
    assert_eq!(h.google_live().len(), DEMO_EVENTS + 2);
    h.assert_in_step();
    let entry = h.newest_history();
    assert_eq!(entry.counts.adopted, 3);
    assert_eq!(entry.counts.remote_created as usize, DEMO_EVENTS - 3);
    assert_eq!(entry.counts.cybozu_created, 2);
    h.assert_quiet_pass();
}

// 13 -----------------------------------------------------------------------------------------

#[test]
fn a_pass_killed_at_any_point_resumes_without_duplicates_or_losses() {
    const CYBOZU_EVENTS: usize = 150;
    const PHONE_EVENTS: usize = 20;
    let h = Harness::with(Setup {
        extra_events: CYBOZU_EVENTS,
        ..Setup::default()
    });
    for n in 0..PHONE_EVENTS {
        let start = utc("2026-12-01T10:00:00Z") + chrono::Duration::days(n as i64);
        let end = start + chrono::Duration::hours(1);
        h.google
            .phone_insert(
                ACCOUNT,
                "primary",
                google_event(
                    &format!("私用 {n:02}"),
                    &start.to_rfc3339(),
                    &end.to_rfc3339(),
                ),
            )
            .expect("inserted");
    }
    h.sim.quirks().latency = Duration::from_millis(5);
    h.google.quirks().latency = Duration::from_millis(8);
    let started = Instant::now();
    let mut killed_mid_pass = 0;
    let mut progress = Vec::new();
    for run in 0..12u64 {
        let mut child = h
            .command(NOW, &["--user", "takahashi"])
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(60 + run * 110));
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            killed_mid_pass += 1;
        }
        child.wait().expect("reaped");
        progress.push(h.store().mappings_for_user(USER).expect("read").len());
    }
    h.sim.quirks().latency = Duration::ZERO;
    h.google.quirks().latency = Duration::ZERO;
    h.pass();
    eprintln!(
        "killed {killed_mid_pass} passes; mapped after each: {progress:?}; {:?}",
        started.elapsed()
    );
    assert!(killed_mid_pass >= 5, "the kills fell within passes");

    let cybozu = h.cybozu();
    assert_eq!(cybozu.len(), DEMO_EVENTS + CYBOZU_EVENTS + PHONE_EVENTS);
    let details: BTreeSet<String> = cybozu.values().map(Event::display_title).collect();
    assert_eq!(details.len(), cybozu.len(), "no duplicates in Cybozu");
    h.assert_in_step();
    h.assert_quiet_pass();
    assert!(started.elapsed() < Duration::from_secs(60));
}

// 14 -----------------------------------------------------------------------------------------

#[test]
fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let h = Harness::new();
    h.google
        .phone_insert(
            ACCOUNT,
            "primary",
            google_event("ジム", "2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z"),
        )
        .expect("inserted");
    let before = h.both_sides();
    let output = h.run_at(NOW, &["--dry-run"]);
    let text = stdout(&output);
    assert!(text.contains("takahashi: 8 action(s)"), "{text}");
    assert_eq!(
        text.matches("create  remote from cybozu").count(),
        DEMO_EVENTS
    );
    assert_eq!(text.matches("create  cybozu from remote").count(), 1);
    assert_eq!(h.both_sides(), before);
    assert!(h.history().is_empty());
    assert!(h.store().mappings_for_user(USER).expect("read").is_empty());
}

// 15 -----------------------------------------------------------------------------------------

#[test]
fn a_second_run_while_one_holds_the_lock_exits_at_once() {
    let h = Harness::new();
    let lock = std::fs::File::create(h.data().join("sync.lock")).expect("lock file");
    lock.lock().expect("locked");
    let started = Instant::now();
    let output = h.pass();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        stdout(&output).contains("another dncs-sync run is still in progress"),
        "{}",
        stdout(&output)
    );
    assert!(h.google_live().is_empty());
    assert!(h.history().is_empty());
    drop(lock);
    h.pass();
    assert_eq!(h.google_live().len(), DEMO_EVENTS);
}

// 8b ----------------------------------------------------------------------------------------

#[test]
fn an_access_token_google_dropped_early_is_refreshed_not_taken_for_a_revoked_link() {
    let h = Harness::new();
    h.pass();
    h.sim
        .company()
        .edit_event(VISIT, |e| e.detail = "時間変更".into());
    // The cached token is still good by its stored expiry, but Google no longer takes it.
    h.google.expire_access_tokens();
    h.pass();
    assert_eq!(
        h.copy_of(VISIT).and_then(|e| e.summary).as_deref(),
        Some("来客:時間変更")
    );
    let link = h
        .store()
        .user_by_id(USER)
        .expect("read")
        .and_then(|u| u.google)
        .expect("linked");
    assert!(!link.needs_relink);
    let errors = errors_of(&h.newest_history());
    assert!(!errors.contains("認証"), "{errors}");
}

// One occurrence --------------------------------------------------------------------------------

#[test]
fn one_occurrence_changed_in_cybozu_becomes_an_exdate_and_a_single_event() {
    let h = Harness::new();
    h.pass();
    // In the browser: 「この予定だけ変更」 on Monday 7 December.
    let cybozu = crate::util::client(&h.sim, "takahashi");
    cybozu
        .modify_repeat_event_with(
            WEEKLY,
            dncs::cybozu::RepeatScope::This(date("2026-12-07")),
            |e| {
                e.detail = "週次定例（12/7は第二会議室）".into();
            },
        )
        .expect("split in Cybozu");
    h.pass();
    let series = h.copy_of(WEEKLY).expect("series copy");
    assert!(
        series
            .recurrence
            .iter()
            .any(|l| l.starts_with("EXDATE") && l.contains("20261207")),
        "{:?}",
        series.recurrence
    );
    let single: Vec<_> = h
        .google_live()
        .into_iter()
        .filter(|e| e.summary.as_deref() == Some("会議:週次定例（12/7は第二会議室）"))
        .collect();
    assert_eq!(single.len(), 1, "the changed day is one event of its own");
    h.assert_in_step();
    h.assert_quiet_pass();
}

#[test]
fn one_occurrence_changed_or_deleted_on_the_phone_splits_the_cybozu_series() {
    let h = Harness::new();
    h.pass();
    let series = h.copy_of(WEEKLY).and_then(|e| e.id).expect("series copy");
    // 「この予定のみ」 on the phone: Google keeps the series and adds an exception instance.
    let mut moved = google_event(
        "会議:週次定例（この日は午後）",
        "2026-12-14T05:00:00Z",
        "2026-12-14T05:30:00Z",
    );
    moved.id = Some(format!("{series}_20261214T003000Z"));
    moved.recurring_event_id = Some(series.clone());
    moved.original_start_time = Some(EventDateTime::from_date_time(
        utc("2026-12-14T00:30:00Z"),
        Some("Asia/Tokyo"),
    ));
    h.google
        .phone_insert(ACCOUNT, "primary", moved)
        .expect("exception");
    let mut cancelled = google_event(
        "会議:週次定例",
        "2026-12-21T00:30:00Z",
        "2026-12-21T01:00:00Z",
    );
    cancelled.id = Some(format!("{series}_20261221T003000Z"));
    cancelled.recurring_event_id = Some(series.clone());
    cancelled.status = Some(EventStatus::Cancelled);
    cancelled.original_start_time = Some(EventDateTime::from_date_time(
        utc("2026-12-21T00:30:00Z"),
        Some("Asia/Tokyo"),
    ));
    h.google
        .phone_insert(ACCOUNT, "primary", cancelled)
        .expect("cancelled instance");
    h.pass();

    let company = h.sim.company();
    let weekly = company.events.get(&WEEKLY).expect("the series stays");
    let excluded: BTreeSet<_> = weekly
        .repeat
        .as_ref()
        .expect("rule")
        .exclusions
        .iter()
        .map(|x| x.start.with_timezone(&chrono_tz::Asia::Tokyo).date_naive())
        .collect();
    assert!(
        excluded.contains(&date("2026-12-14")) && excluded.contains(&date("2026-12-21")),
        "{excluded:?}"
    );
    let afternoon = company
        .events
        .values()
        .find(|e| e.detail == "週次定例（この日は午後）")
        .expect("the changed day, split off in Cybozu");
    assert!(
        afternoon.has_user(TAKAHASHI) && afternoon.has_user(2),
        "the series' members kept"
    );
    // The series is shared: takahashi leaves 21 December, the others keep that day.
    let others = company
        .events
        .values()
        .find(|e| e.detail == "週次定例" && e.event_type == EventType::Normal)
        .expect("the others' 21 December");
    assert!(!others.has_user(TAKAHASHI) && others.has_user(2));
    drop(company);
    // The changed instance is now the copy of the split-off event, and says so.
    h.assert_in_step();
    h.assert_quiet_pass();
}

// Operations ------------------------------------------------------------------------------------

#[test]
fn the_scheduled_run_serves_requests_writes_the_daily_backup_and_the_monthly_log() {
    let h = Harness::with(Setup {
        ini: "BACKUP_TIME=09:00\nBACKUP_DAYS=3\nSYNC_INTERVAL=5",
        extra_events: 0,
    });
    // An old backup folder beyond BACKUP_DAYS, and a request from 「ただちに同期する」.
    let old = h.data().join("backup").join("20261101");
    std::fs::create_dir_all(&old).expect("old backup");
    h.store()
        .enqueue_sync_request(USER, utc(NOW))
        .expect("request");
    let output = h.command(NOW, &[]).output().expect("dncs-sync runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The request was served by a pass (the calendar has the copies) and is no longer pending.
    assert_eq!(h.google_live().len(), DEMO_EVENTS);
    assert!(!h.store().has_pending_sync_request(USER).expect("read"));

    // Today's backup (10:00 JST is past BACKUP_TIME): the window as iCalendar, the old one gone.
    let backup = h
        .data()
        .join("backup")
        .join("20261125")
        .join(format!("{USER}.ics"));
    let ics = std::fs::read_to_string(&backup).expect("today's backup");
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), DEMO_EVENTS);
    assert!(ics.contains("SUMMARY:会議:新製品キックオフ"));
    assert!(ics.contains("RRULE:FREQ=WEEKLY;BYDAY=MO"));
    assert!(!old.exists(), "backups older than BACKUP_DAYS are removed");

    // A second run the same day writes no second backup and, within SYNC_INTERVAL, no full pass.
    std::fs::remove_file(&backup).expect("remove");
    h.command(NOW, &[]).output().expect("dncs-sync runs");
    assert!(!backup.exists());

    // The run logged to this month's file.
    assert!(h.data().join("log").join("dncs-2026-11.log").exists());
}

/// A pass whose writes meet the phone's retitling of `copy`, made just after the pass listed the
/// calendar: every request waits before it is handled, so the phone's edit lands first.
fn pass_meeting_a_phone_edit(h: &Harness, copy: &str, summary: &str) {
    h.google.quirks().handling_delay = Duration::from_millis(300);
    let (mut child, _) = pass_after_listing(h);
    h.google
        .phone_edit(ACCOUNT, "primary", copy, |e| {
            e.summary = Some(summary.into())
        })
        .expect("edited");
    assert!(child.wait().expect("the pass ends").success());
    h.google.quirks().handling_delay = Duration::ZERO;
}

/// Starts `dncs-sync run --user takahashi` and returns once it has listed the calendar, with
/// every Google call seen so far; the pass goes on in the returned child.
fn pass_after_listing(h: &Harness) -> (std::process::Child, Vec<String>) {
    h.google.take_calls();
    let child = h
        .command(NOW, &["--user", "takahashi"])
        .stdout(Stdio::null())
        .spawn()
        .expect("dncs-sync starts");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen
        .iter()
        .any(|call: &String| call.starts_with("GET") && call.ends_with("/events"))
    {
        assert!(Instant::now() < deadline, "no listing: {seen:?}");
        std::thread::sleep(Duration::from_millis(2));
        seen.extend(h.google.take_calls());
    }
    (child, seen)
}

/// The phone edits a copy after the pass listed the calendar and before the pass writes
/// Cybozu's change into it: the write does not go over the phone's edit. The next pass sees
/// both changes and settles them by `CONFLICT` (here the phone's side wins), with the conflict
/// in 同期履歴: nothing vanishes without a trace.
#[test]
fn a_phone_edit_made_during_a_pass_is_not_written_over() {
    let h = Harness::with(Setup {
        ini: "CONFLICT=remote",
        ..Setup::default()
    });
    h.pass();
    h.sim
        .company()
        .edit_event(VISIT, |e| e.description = "Cybozu のメモ".into());
    let copy = h.copy_of(VISIT).and_then(|e| e.id).expect("copy");
    pass_meeting_a_phone_edit(&h, &copy, "スマホで変えた件名");
    assert_eq!(
        h.copy_of(VISIT).and_then(|e| e.summary).as_deref(),
        Some("スマホで変えた件名"),
        "the phone's edit is still there"
    );
    let deferred = h.newest_history();
    assert!(
        deferred
            .errors
            .iter()
            .any(|e| e.contains("同期の途中でカレンダー側でも変更されたため")
                && e.contains("来客")),
        "{:?}",
        deferred.errors
    );

    h.pass();
    h.assert_in_step();
    assert_eq!(h.cybozu()[&VISIT].detail, "スマホで変えた件名");
    assert!(
        h.newest_history().counts.conflicts >= 1,
        "{:?}",
        h.newest_history()
    );
    h.assert_quiet_pass();
}

/// The phone edits a copy after the pass listed the calendar and before the pass deletes it for
/// Cybozu's deletion: the delete does not take the phone's edit with it (`If-Match`). The next
/// pass sees both changes and settles them by `CONFLICT`, here the phone's side, which brings the
/// event back into Cybozu.
#[test]
fn a_phone_edit_made_during_a_pass_is_not_deleted() {
    let h = Harness::with(Setup {
        ini: "CONFLICT=remote",
        ..Setup::default()
    });
    h.pass();
    let copy = h.copy_of(VISIT).and_then(|e| e.id).expect("copy");
    h.sim.company().events.remove(&VISIT);
    pass_meeting_a_phone_edit(&h, &copy, "スマホで残した予定");
    let kept = h
        .google
        .event(ACCOUNT, "primary", &copy)
        .expect("the copy is still there");
    assert_eq!(kept.summary.as_deref(), Some("スマホで残した予定"));
    assert!(
        h.newest_history()
            .errors
            .iter()
            .any(|e| e.contains("同期の途中でカレンダー側でも変更されたため")),
        "{:?}",
        h.newest_history().errors
    );

    h.pass();
    h.assert_in_step();
    assert!(
        h.cybozu()
            .values()
            .any(|e| e.detail == "スマホで残した予定"),
        "the phone's event is back in Cybozu"
    );
    h.assert_quiet_pass();
}

/// A copy the phone edited before the pass, whose Cybozu event was deleted: under
/// `CONFLICT=cybozu` the pass deletes it, expecting the etag it listed, not the one it last
/// synced (which would fail at every pass).
#[test]
fn a_copy_edited_on_the_phone_is_deleted_when_cybozu_wins() {
    let h = Harness::with(Setup {
        ini: "CONFLICT=cybozu",
        ..Setup::default()
    });
    h.pass();
    let copy = h.copy_of(VISIT).and_then(|e| e.id).expect("copy");
    h.sim.company().events.remove(&VISIT);
    h.google
        .phone_edit(ACCOUNT, "primary", &copy, |e| {
            e.summary = Some("スマホで変えた件名".into());
        })
        .expect("edited");
    h.pass();
    assert!(
        h.google
            .event(ACCOUNT, "primary", &copy)
            .is_none_or(|e| e.is_cancelled()),
        "the copy is deleted"
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}

/// Google failing on every call after the listing stops the pass after two writes in a row
/// failed, with one sentence for the stop, instead of trying (and retrying) each of the
/// remaining writes; the next pass, with Google back, does them all.
#[test]
fn a_pass_stops_once_google_fails_two_writes_in_a_row() {
    let h = Harness::new();
    h.pass();
    for n in 0..8 {
        h.sim.company().insert_event(timed_event(
            &format!("追加 {n}"),
            &[TAKAHASHI],
            utc("2026-12-02T00:00:00Z") + chrono::Duration::hours(n * 3),
            60,
        ));
    }
    let (child, _) = pass_after_listing(&h);
    h.google.quirks().fail_next = vec![dncs::sim::google::Failure::Unavailable; 1000];
    child.wait_with_output().expect("the pass ends");
    let left = h.google.quirks().fail_next.len();
    h.google.quirks().fail_next.clear();
    let failed_calls = 1000 - left;
    assert!(
        failed_calls <= 12,
        "{failed_calls} calls were failed: the pass went on writing"
    );
    let stopped = h.newest_history();
    assert_eq!(stopped.errors.len(), 2, "{:?}", stopped.errors);
    assert!(stopped.errors[0].contains("中断"), "{:?}", stopped.errors);
    assert!(
        stopped.errors[1].contains("追加"),
        "the first write that failed is named: {:?}",
        stopped.errors
    );

    h.pass();
    h.assert_in_step();
    assert_eq!(h.cybozu().len(), DEMO_EVENTS + 8);
}
