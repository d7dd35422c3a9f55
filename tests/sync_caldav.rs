//! End to end: the real `dncs-sync run --user takahashi` between the simulated Cybozu Office
//! (the demo company) and a real CalDAV calendar, the Google scenarios of `sync_google` again
//! with a CalDAV target. Every scenario runs on Radicale, on Xandikos and on Radicale without
//! `sync-collection` (`sync_caldav::radicale::…`, `::xandikos::…`, `::etags_only::…`): servers
//! that answer the same requests differently (ETags, sync tokens, what they store of a PUT,
//! how changes are found). After each pass both
//! sides are read back: the company of the simulator and the calendar's resources, parsed with
//! `dncs::ical::parse`. Each test is skipped (with a printed line) when its server is not
//! installed.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::{Duration, Instant};

use dncs::cybozu::{Event, PublicType};
use dncs::ical::{escape_text, Component, Property};
use dncs::sim::cybozu::CybozuSim;
use dncs::store::{open_data_folder, HistoryEntry, Store};

use crate::caldav_harness::{
    assert_read_back_as_recorded, caldav_install, calendar_events, on_each_server, sync_command,
    sync_command_at, sync_pass, sync_pass_output, DavServer, ServerKind, STORE_USER, USER,
};
use crate::sync_google::{
    own_weekly_series, timed_event, CALL, DEMO_EVENTS, HOLIDAY, KICKOFF, TAKAHASHI, TENTATIVE,
    TRIP, VISIT, WEEKLY,
};
use crate::util::{assert_one_copy_each, demo_sim, utc};

/// One resource of the calendar: where it is, its ETag, its text and its master VEVENT.
#[derive(Debug, Clone, PartialEq)]
struct Resource {
    href: String,
    etag: String,
    ics: String,
    vevent: Component,
}

impl Resource {
    fn value(&self, name: &str) -> Option<String> {
        self.vevent.property(name).map(|p| p.value.clone())
    }

    fn summary(&self) -> Option<String> {
        self.vevent.text("SUMMARY")
    }

    fn cybozu_id(&self) -> Option<u64> {
        self.value("X-DNCS-CYBOZU-ID")?.trim().parse().ok()
    }

    /// The text with the master VEVENT changed by `edit` (as another client would write it).
    fn edited(&self, edit: impl FnOnce(&mut Component)) -> String {
        let mut calendar = dncs::ical::parse(&self.ics).expect("parses");
        let vevent = calendar
            .children
            .iter_mut()
            .find(|c| c.name == "VEVENT")
            .expect("a VEVENT");
        edit(vevent);
        calendar.to_text()
    }
}

/// A CalDAV server, the demo company and an install folder whose takahashi syncs the two.
struct Dav {
    server: Box<dyn DavServer>,
    sim: CybozuSim,
    install: tempfile::TempDir,
}

impl Dav {
    /// `None` (after saying so) when the server is not installed; `ini` is added to dncs.ini.
    fn start(kind: ServerKind, ini: &str) -> Option<Self> {
        let server = kind.start()?;
        let sim = demo_sim();
        let install = caldav_install(server.as_ref(), &sim, ini);
        Some(Self {
            server,
            sim,
            install,
        })
    }

    fn store(&self) -> Store {
        open_data_folder(&self.install.path().join("data")).expect("data folder")
    }

    /// One pass that must say nothing on stderr.
    fn pass(&self) {
        sync_pass(&self.install);
    }

    /// One pass that may skip takahashi with a sentence.
    fn pass_output(&self) -> Output {
        sync_pass_output(&self.install)
    }

    /// takahashi's Cybozu events, by id.
    fn cybozu(&self) -> BTreeMap<u64, Event> {
        self.sim
            .company()
            .events_of(TAKAHASHI)
            .filter_map(|e| Some((e.id?, e.clone())))
            .collect()
    }

    /// The calendar's resources, by href.
    fn resources(&self) -> Vec<Resource> {
        let mut found: Vec<Resource> = calendar_events(self.server.as_ref())
            .into_iter()
            .map(|(href, etag, _, ics)| {
                let calendar = dncs::ical::parse(&ics)
                    .unwrap_or_else(|e| panic!("{href} does not parse: {e:?}\n{ics}"));
                let vevent = calendar
                    .children
                    .iter()
                    .find(|c| c.name == "VEVENT" && c.property("RECURRENCE-ID").is_none())
                    .cloned()
                    .unwrap_or_else(|| panic!("{href} has no VEVENT"));
                Resource {
                    href,
                    etag,
                    ics,
                    vevent,
                }
            })
            .collect();
        found.sort_by(|a, b| a.href.cmp(&b.href));
        found
    }

    /// The resource copying a Cybozu event; fails if there are several.
    fn copy_of(&self, cybozu_id: u64) -> Option<Resource> {
        let copies: Vec<Resource> = self
            .resources()
            .into_iter()
            .filter(|r| r.cybozu_id() == Some(cybozu_id))
            .collect();
        assert!(copies.len() <= 1, "{} copies of {cybozu_id}", copies.len());
        copies.into_iter().next()
    }

    /// Another client changes the SUMMARY of a resource.
    fn retitle(&self, resource: &Resource, summary: &str) {
        let text = resource.edited(|v| v.set(Property::new("SUMMARY", escape_text(summary))));
        self.server.put(&resource.href, &resource.etag, &text);
    }

    /// 同期履歴, newest first.
    fn history(&self) -> Vec<HistoryEntry> {
        self.store()
            .history_page(STORE_USER, 0, 100)
            .expect("history")
            .entries
    }

    fn newest_errors(&self) -> String {
        self.history()
            .into_iter()
            .next()
            .expect("a 同期履歴 entry")
            .errors
            .join("\n")
    }

    /// What both sides hold, to compare before and after a pass that must change nothing.
    fn both_sides(&self) -> (BTreeMap<u64, Event>, Vec<Resource>) {
        (self.cybozu(), self.resources())
    }

    fn assert_quiet_pass(&self) {
        let before = self.both_sides();
        self.pass();
        assert_eq!(self.both_sides(), before, "a quiet pass changes nothing");
    }

    /// Each Cybozu event has exactly one resource and each resource a Cybozu event, and the
    /// mapping says the same.
    fn assert_in_step(&self) {
        let cybozu: BTreeSet<u64> = self.cybozu().keys().copied().collect();
        let copies = self.resources().into_iter().map(|resource| {
            resource
                .cybozu_id()
                .unwrap_or_else(|| panic!("a resource without a Cybozu id: {}", resource.ics))
        });
        assert_one_copy_each("CalDAV", copies, &cybozu, &self.store(), STORE_USER);
        assert_read_back_as_recorded(&self.install);
    }
}

on_each_server! {
    every_kind_of_event_is_mapped_as_designed,
    a_weekly_repeat_is_one_resource_with_its_exclusion_and_deletes_whole,
    a_conflict_under_conflict_cybozu_keeps_the_cybozu_edit,
    a_conflict_under_conflict_remote_keeps_the_other_clients_edit,
    a_shared_event_deleted_by_another_client_is_only_left,
    a_changed_cybozu_password_changes_nothing_and_says_so,
    the_first_pass_adopts_existing_copies_before_it_copies,
    the_mass_deletion_guard_stops_the_pass_and_the_calendar_keeps_everything,
    a_pass_killed_at_any_point_resumes_without_duplicates_or_losses,
    a_write_to_cybozu_that_failed_is_tried_again_on_the_next_pass,
    a_copy_made_by_an_unfinished_pass_then_deleted_by_another_client_is_deleted,
    an_event_that_leaves_the_window_is_not_deleted,
    an_edit_made_during_a_pass_is_not_deleted,
    a_copy_edited_elsewhere_is_deleted_when_cybozu_wins;
    not on xandikos:
    // Xandikos has no authentication of its own (it leaves that to a web server in front of
    // it): the Basic credentials are ignored, so a wrong password is never refused.
    a_wrong_caldav_password_skips_the_pass_and_says_so,
    under_lang_en_the_history_says_it_in_english,
}

/// A resource as another client writes it: times as iCalendar values (`20261124T050000Z`).
fn vevent(uid: &str, summary: &str, start: &str, end: &str, extra: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//dncs tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n\
         {extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn date_param(resource: &Resource, name: &str) -> (Option<String>, Option<String>) {
    let property = resource.vevent.property(name);
    (
        property.and_then(|p| p.param("VALUE").map(str::to_string)),
        property.map(|p| p.value.clone()),
    )
}

// 1 ------------------------------------------------------------------------------------------

fn every_kind_of_event_is_mapped_as_designed(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    let mut qualified = timed_event("人事面談", &[TAKAHASHI], utc("2026-11-26T06:00:00Z"), 30);
    qualified.public_type = PublicType::Qualified;
    let qualified = h.sim.company().insert_event(qualified);
    h.pass();
    h.assert_in_step();

    let day = |d: &str| (Some("DATE".to_string()), Some(d.to_string()));
    let holiday = h.copy_of(HOLIDAY).expect("all-day copy");
    assert_eq!(date_param(&holiday, "DTSTART"), day("20261127"));
    assert_eq!(
        date_param(&holiday, "DTEND"),
        day("20261128"),
        "end exclusive"
    );

    let trip = h.copy_of(TRIP).expect("banner copy");
    assert_eq!(date_param(&trip, "DTSTART"), day("20261125"));
    assert_eq!(date_param(&trip, "DTEND"), day("20261128"));
    assert_eq!(trip.value("TRANSP").as_deref(), Some("TRANSPARENT"));

    for id in [VISIT, qualified] {
        let copy = h.copy_of(id).expect("copy");
        assert_eq!(copy.value("CLASS").as_deref(), Some("PRIVATE"), "{id}");
    }
    assert_eq!(
        h.sim.company().events[&qualified].public_type,
        PublicType::Qualified,
        "the Cybozu side keeps its 公開先"
    );

    let tentative = h.copy_of(TENTATIVE).expect("仮予定 copy");
    assert_eq!(tentative.value("STATUS").as_deref(), Some("TENTATIVE"));
    assert_eq!(tentative.value("TRANSP").as_deref(), Some("TRANSPARENT"));

    let call = h.copy_of(CALL).expect("start_only copy");
    assert_eq!(call.value("DTSTART").as_deref(), Some("20261124T000000Z"));
    assert_eq!(call.value("DTEND"), call.value("DTSTART"), "end = start");

    // Another client's edit of the 仮予定 is not written back, and 同期履歴 says so.
    let before = h.cybozu()[&TENTATIVE].clone();
    h.retitle(&tentative, "会議:来期予算の検討（確定）");
    h.pass();
    assert_eq!(h.cybozu()[&TENTATIVE], before);
    let errors = h.newest_errors();
    assert!(errors.contains("仮予定"), "{errors}");
    assert!(errors.contains("反映しません"), "{errors}");
}

// 2 ------------------------------------------------------------------------------------------

fn a_weekly_repeat_is_one_resource_with_its_exclusion_and_deletes_whole(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    let own = h.sim.company().insert_event(own_weekly_series());
    h.pass();
    h.assert_in_step();

    let weekly = h.copy_of(WEEKLY).expect("series copy");
    let series = h
        .resources()
        .iter()
        .filter(|r| r.summary().as_deref() == Some("会議:週次定例"))
        .count();
    assert_eq!(series, 1, "one resource for the whole series");
    let rrule = weekly.value("RRULE").unwrap_or_default();
    assert!(rrule.starts_with("FREQ=WEEKLY"), "{}", weekly.ics);
    let exdates: Vec<String> = weekly
        .vevent
        .properties_named("EXDATE")
        .map(|p| p.value.clone())
        .collect();
    assert!(
        exdates.iter().any(|v| v.contains("20261130")),
        "the skipped week: {}",
        weekly.ics
    );

    // Deleted in Cybozu (the whole series): gone from the calendar.
    h.sim.company().events.remove(&WEEKLY);
    h.pass();
    assert!(h.copy_of(WEEKLY).is_none());

    // Deleted by another client (the whole series, takahashi's own): gone from Cybozu.
    let own_copy = h.copy_of(own).expect("copy");
    assert!(own_copy.value("RRULE").is_some(), "{}", own_copy.ics);
    h.server.delete(&own_copy.href);
    h.pass();
    assert!(!h.sim.company().events.contains_key(&own));
    h.assert_in_step();
    h.assert_quiet_pass();
}

// 3 ------------------------------------------------------------------------------------------

/// Edits the visit on both sides between passes under `CONFLICT=policy`; answers 同期履歴.
fn conflict(server: ServerKind, policy: &str) -> Option<(Dav, String)> {
    let h = Dav::start(server, &format!("CONFLICT={policy}\n"))?;
    h.pass();
    let copy = h.copy_of(VISIT).expect("copy");
    h.retitle(&copy, "来客:スマホで変更");
    h.sim
        .company()
        .edit_event(VISIT, |e| e.detail = "サイボウズで変更".into());
    h.pass();
    let errors = h.newest_errors();
    Some((h, errors))
}

fn assert_both_say(h: &Dav, detail: &str) {
    assert_eq!(h.cybozu()[&VISIT].detail, detail);
    assert_eq!(
        h.copy_of(VISIT).and_then(|r| r.summary()),
        Some(format!("来客:{detail}"))
    );
}

fn a_conflict_under_conflict_cybozu_keeps_the_cybozu_edit(server: ServerKind) {
    let Some((h, errors)) = conflict(server, "cybozu") else {
        return;
    };
    assert_both_say(&h, "サイボウズで変更");
    assert!(
        errors.contains("サイボウズ Office の内容を優先しました"),
        "{errors}"
    );
    assert_eq!(h.history()[0].counts.conflicts, 1);
    h.assert_in_step();
    h.assert_quiet_pass();
}

fn a_conflict_under_conflict_remote_keeps_the_other_clients_edit(server: ServerKind) {
    let Some((h, errors)) = conflict(server, "remote") else {
        return;
    };
    assert_both_say(&h, "スマホで変更");
    assert!(
        errors.contains("カレンダー側の内容を優先しました"),
        "{errors}"
    );
    assert_eq!(h.history()[0].counts.conflicts, 1);
    h.assert_in_step();
    h.assert_quiet_pass();
}

// 4 ------------------------------------------------------------------------------------------

fn a_shared_event_deleted_by_another_client_is_only_left(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    h.pass();
    let copy = h.copy_of(KICKOFF).expect("copy");
    h.server.delete(&copy.href);
    h.pass();
    let kickoff = h
        .sim
        .company()
        .events
        .get(&KICKOFF)
        .cloned()
        .expect("the others keep it");
    assert!(!kickoff.has_user(TAKAHASHI), "takahashi left it");
    assert!(
        kickoff.has_user(2) && kickoff.has_user(3),
        "sato and suzuki keep it"
    );
    assert!(
        kickoff.facility_ids().next().is_some(),
        "the room stays booked"
    );
    assert!(h.copy_of(KICKOFF).is_none(), "not copied back");
    h.assert_in_step();
    h.assert_quiet_pass();
}

// 5 ------------------------------------------------------------------------------------------

/// Changes waiting on both sides that a skipped pass must not carry over.
fn changes_on_both_sides(h: &Dav) {
    let copy = h.copy_of(CALL).expect("copy");
    h.retitle(&copy, "スマホで変更（同期されないはず）");
    h.sim
        .company()
        .edit_event(VISIT, |e| e.detail = "変更（同期されないはず）".into());
}

fn a_changed_cybozu_password_changes_nothing_and_says_so(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    h.pass();
    changes_on_both_sides(&h);
    for account in &mut h.sim.company().accounts {
        if account.login == "takahashi" {
            account.password = "新しいパスワード".into();
        }
    }
    let before = h.both_sides();
    h.pass_output();
    assert_eq!(h.both_sides(), before, "nothing changed on either side");
    let errors = h.newest_errors();
    assert!(
        errors.contains(
            "サイボウズ Office のパスワードが変更されました。同期設定画面に再ログインしてください"
        ),
        "{errors}"
    );
}

/// 同期履歴 is written in the `LANG` of dncs.ini, as the screens that show it are.
fn under_lang_en_the_history_says_it_in_english(server: ServerKind) {
    let Some(h) = Dav::start(server, "LANG=en\n") else {
        return;
    };
    h.pass();
    h.store()
        .set_caldav_account(
            STORE_USER,
            &h.server.calendar(),
            USER,
            Some("not the password"),
            utc("2026-11-25T01:00:00Z"),
        )
        .expect("changed");
    h.pass_output();
    let errors = h.newest_errors();
    assert_eq!(
        errors,
        "The CalDAV server does not accept the user name or password. Please check them in the \
         sync settings"
    );
    let user = h
        .store()
        .user_by_id(STORE_USER)
        .expect("read")
        .expect("user");
    assert_eq!(user.last_error.as_deref(), Some(errors.as_str()));
}

fn a_wrong_caldav_password_skips_the_pass_and_says_so(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    h.pass();
    changes_on_both_sides(&h);
    h.store()
        .set_caldav_account(
            STORE_USER,
            &h.server.calendar(),
            USER,
            Some("not the password"),
            utc("2026-11-25T01:00:00Z"),
        )
        .expect("changed");
    let before = h.both_sides();
    let mappings = h.store().mappings_for_user(STORE_USER).expect("read");
    let output = h.pass_output();
    assert_eq!(h.both_sides(), before, "nothing changed on either side");
    assert_eq!(
        h.store().mappings_for_user(STORE_USER).expect("read"),
        mappings
    );
    let said = format!(
        "{}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        h.newest_errors()
    );
    assert!(
        said.contains("CalDAV のユーザー名またはパスワードが受け付けられません"),
        "{said}"
    );
    // Not the Google sentence (「認証」 is no button of a CalDAV user).
    assert!(!said.contains("Google"), "{said}");
}

// 6 ------------------------------------------------------------------------------------------

fn the_first_pass_adopts_existing_copies_before_it_copies(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    // A copy an earlier installation made, with the Cybozu id…
    h.server.put_new(
        "old-visit.ics",
        &vevent(
            "old-visit",
            "来客:株式会社サンプル 山田様",
            "20261124T050000Z",
            "20261124T060000Z",
            &format!("X-DNCS-CYBOZU-ID:{VISIT}\r\n"),
        ),
    );
    // …a copy that matches only by time and title…
    h.server.put_new(
        "old-kickoff.ics",
        &vevent(
            "old-kickoff",
            "会議:新製品キックオフ",
            "20261123T010000Z",
            "20261123T023000Z",
            "",
        ),
    );
    // …and the user's own event.
    h.server.put_new(
        "gym.ics",
        &vevent("gym", "ジム", "20261126T100000Z", "20261126T110000Z", ""),
    );
    h.pass();

    let cybozu = h.cybozu();
    assert_eq!(cybozu.len(), DEMO_EVENTS + 1, "{cybozu:?}");
    assert_eq!(
        cybozu.values().filter(|e| e.detail == "ジム").count(),
        1,
        "the personal event reached Cybozu once"
    );
    let resources = h.resources();
    assert_eq!(resources.len(), DEMO_EVENTS + 1, "{resources:#?}");
    h.assert_in_step();
    let adopted: BTreeSet<String> = [VISIT, KICKOFF]
        .iter()
        .map(|id| h.copy_of(*id).expect("copy").href)
        .collect();
    assert!(
        adopted.iter().any(|href| href.ends_with("/old-visit.ics"))
            && adopted
                .iter()
                .any(|href| href.ends_with("/old-kickoff.ics")),
        "the existing copies were taken, not copied again: {adopted:?}"
    );
    let entry = &h.history()[0];
    assert_eq!(entry.counts.adopted, 2);
    assert_eq!(entry.counts.remote_created as usize, DEMO_EVENTS - 2);
    assert_eq!(entry.counts.cybozu_created, 1);
    h.assert_quiet_pass();
}

// 7 ------------------------------------------------------------------------------------------

fn the_mass_deletion_guard_stops_the_pass_and_the_calendar_keeps_everything(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    for n in 0..30 {
        h.sim.company().insert_event(timed_event(
            &format!("作業 {n:03}"),
            &[TAKAHASHI],
            utc("2026-11-30T00:00:00Z") + chrono::Duration::hours(n * 3),
            60,
        ));
    }
    h.pass();
    assert_eq!(h.resources().len(), DEMO_EVENTS + 30);
    h.assert_in_step();
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
    let before = h.resources();
    let output = h.pass_output();
    assert_eq!(h.resources(), before, "the calendar keeps everything");
    assert_eq!(
        h.store().mappings_for_user(STORE_USER).expect("read").len(),
        DEMO_EVENTS + 30
    );
    assert_eq!(
        h.cybozu().len(),
        DEMO_EVENTS + 5,
        "nothing came back to Cybozu"
    );
    let errors = h.newest_errors();
    assert!(
        errors.contains("安全のためこの同期を中止しました"),
        "{errors}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("中止"), "{stdout}");
}

// 8 ------------------------------------------------------------------------------------------

/// What a killed pass may have written: each Cybozu event's version, each resource's ETag.
type Progress = (BTreeMap<u64, Option<u64>>, BTreeMap<String, String>);

fn progress(h: &Dav) -> Progress {
    let cybozu = h
        .cybozu()
        .into_iter()
        .map(|(id, event)| (id, event.version))
        .collect();
    let calendar = h
        .server
        .client(&h.server.calendar())
        .list_etags(&h.server.calendar(), None)
        .expect("listing")
        .into_iter()
        .collect();
    (cybozu, calendar)
}

fn a_pass_killed_at_any_point_resumes_without_duplicates_or_losses(server: ServerKind) {
    const MAPPED: usize = 30;
    const CYBOZU_NEW: usize = 60;
    const PHONE_NEW: usize = 20;
    // Each side edits 5 and deletes 5 of the mapped events; with the fresh copies deleted below,
    // the deletions stay far below half of the mapped events (the mass-deletion guard).
    const EDITS: usize = 5;
    const WRITES_PER_KILL: usize = 8;
    const MAX_RUNS: usize = 100;
    // Copies made by a killed pass and deleted by another client before the next one.
    const FRESH_DELETIONS: usize = 3;
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    let started = Instant::now();
    let work: Vec<u64> = (0..MAPPED)
        .map(|n| {
            h.sim.company().insert_event(timed_event(
                &format!("作業 {n:03}"),
                &[TAKAHASHI],
                utc("2026-11-30T00:00:00Z") + chrono::Duration::hours(n as i64 * 3),
                60,
            ))
        })
        .collect();
    // An undisturbed pass and a quiet one: how long reading takes, and each write.
    let clock = Instant::now();
    h.pass();
    let first = clock.elapsed();
    let clock = Instant::now();
    h.pass();
    let reading = clock.elapsed();
    let per_write = first.saturating_sub(reading) / (DEMO_EVENTS + MAPPED) as u32;
    h.assert_in_step();

    // Changes waiting on both sides: new, edited and deleted events in Cybozu…
    let cybozu_new: Vec<u64> = (0..CYBOZU_NEW)
        .map(|n| {
            h.sim.company().insert_event(timed_event(
                &format!("新規 {n:03}"),
                &[TAKAHASHI],
                utc("2026-12-20T00:00:00Z") + chrono::Duration::hours(n as i64 * 3),
                30,
            ))
        })
        .collect();
    let (cybozu_edited, rest) = work.split_at(EDITS);
    let (cybozu_deleted, rest) = rest.split_at(EDITS);
    let (phone_edited, rest) = rest.split_at(EDITS);
    let phone_deleted = &rest[..EDITS];
    for id in cybozu_edited {
        h.sim.company().edit_event(*id, |e| {
            e.detail = format!("{}（サイボウズで変更）", e.detail)
        });
    }
    for id in cybozu_deleted {
        h.sim.company().events.remove(id);
    }
    // …and in the calendar, by another client.
    for n in 0..PHONE_NEW {
        let start = utc("2026-12-01T10:00:00Z") + chrono::Duration::days(n as i64);
        let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        h.server.put_new(
            &format!("phone-{n:02}.ics"),
            &vevent(
                &format!("phone-{n:02}"),
                &format!("私用 {n:02}"),
                &time(start),
                &time(start + chrono::Duration::hours(1)),
                "",
            ),
        );
    }
    for id in phone_edited {
        let copy = h.copy_of(*id).expect("copy");
        let title = copy.summary().expect("title");
        h.retitle(&copy, &format!("{title}（スマホで変更）"));
    }
    for id in phone_deleted {
        h.server.delete(&h.copy_of(*id).expect("copy").href);
    }

    // Each run is killed a little after a few more of its writes were recorded (none up to
    // WRITES_PER_KILL, then up to one write's time more): the kills fall all along the pass,
    // between and within the writes to both sides, however busy the machine is. After some
    // kills another client deletes a copy just made, which the next run must see deleted.
    let store = h.store();
    let mapping = || store.mappings_for_user(STORE_USER).expect("mappings");
    let (mut runs, mut kills, mut wrote_cybozu, mut wrote_calendar) = (0, 0, 0, 0);
    let mut fresh_deleted = Vec::new();
    let mut before = progress(&h);
    for run in 0..MAX_RUNS {
        runs += 1;
        let at_start = mapping();
        let target = run % (WRITES_PER_KILL + 1);
        let mut child = sync_command(&h.install).spawn().expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(30);
        let finished = loop {
            if child.try_wait().expect("wait").is_some() {
                break true;
            }
            let now = mapping();
            let recorded = now.iter().filter(|m| !at_start.contains(m)).count()
                + at_start
                    .iter()
                    .filter(|m| !now.iter().any(|n| n.cybozu_id == m.cybozu_id))
                    .count();
            if recorded >= target {
                break false;
            }
            assert!(Instant::now() < deadline, "run {run} makes no progress");
            std::thread::sleep(Duration::from_millis(2));
        };
        if finished {
            break;
        }
        std::thread::sleep(if target == 0 {
            reading * (run % 3 + 1) as u32 / 2
        } else {
            per_write * (run % 4) as u32 / 3
        });
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let after = progress(&h);
        let (cybozu, calendar) = (after.0 != before.0, after.1 != before.1);
        kills += usize::from(cybozu || calendar);
        wrote_cybozu += usize::from(cybozu);
        wrote_calendar += usize::from(calendar);
        before = after;
        if run % 5 == 4 && fresh_deleted.len() < FRESH_DELETIONS {
            let recorded = mapping();
            let resources = h.resources();
            let fresh = cybozu_new
                .iter()
                .rev()
                .filter(|id| !fresh_deleted.contains(*id))
                .find_map(|id| {
                    let copy = resources.iter().find(|r| r.cybozu_id() == Some(*id))?;
                    recorded
                        .iter()
                        .any(|m| m.cybozu_id as u64 == *id && m.remote_id == copy.href)
                        .then_some((*id, copy.href.clone()))
                });
            if let Some((id, href)) = fresh {
                h.server.delete(&href);
                fresh_deleted.push(id);
                before = progress(&h);
            }
        }
    }
    h.pass();
    eprintln!(
        "{server:?}: reading {reading:?}, {per_write:?} a write; {runs} runs, {kills} killed \
         after writes ({wrote_calendar} in the calendar, {wrote_cybozu} in Cybozu), {} fresh \
         copies deleted; {:?}",
        fresh_deleted.len(),
        started.elapsed()
    );
    assert!(kills >= 10, "the kills fell between writes: {kills}");
    assert!(
        wrote_calendar >= 3 && wrote_cybozu >= 3,
        "kills while writing each side: calendar {wrote_calendar}, Cybozu {wrote_cybozu}"
    );
    assert!(!fresh_deleted.is_empty(), "a fresh copy was deleted");

    h.assert_in_step();
    let cybozu = h.cybozu();
    let titles: Vec<String> = cybozu.values().map(Event::display_title).collect();
    for n in 0..PHONE_NEW {
        let title = format!("私用 {n:02}");
        let arrived = titles.iter().filter(|t| **t == title).count();
        assert_eq!(arrived, 1, "{title} reached Cybozu once");
    }
    assert_eq!(
        cybozu.len(),
        DEMO_EVENTS + MAPPED + CYBOZU_NEW + PHONE_NEW - 2 * EDITS - fresh_deleted.len(),
        "{titles:?}"
    );
    let resources = h.resources();
    let copied: BTreeSet<u64> = resources.iter().filter_map(Resource::cybozu_id).collect();
    for id in cybozu_new.iter().filter(|id| !fresh_deleted.contains(id)) {
        assert!(copied.contains(id), "{id} copied");
    }
    for id in cybozu_deleted
        .iter()
        .chain(phone_deleted)
        .chain(&fresh_deleted)
    {
        assert!(!cybozu.contains_key(id), "{id} stays deleted");
    }
    for id in cybozu_edited {
        let detail = &cybozu[id].detail;
        assert!(detail.ends_with("（サイボウズで変更）"), "{detail}");
        let copy = resources.iter().find(|r| r.cybozu_id() == Some(*id));
        assert_eq!(copy.and_then(Resource::summary).as_ref(), Some(detail));
    }
    for id in phone_edited {
        let detail = &cybozu[id].detail;
        assert!(detail.ends_with("（スマホで変更）"), "{detail}");
    }
    h.assert_quiet_pass();
}

// 9 ------------------------------------------------------------------------------------------

fn a_write_to_cybozu_that_failed_is_tried_again_on_the_next_pass(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    h.pass();
    h.server.put_new(
        "dentist.ics",
        &vevent(
            "dentist",
            "歯医者",
            "20261127T000000Z",
            "20261127T010000Z",
            "",
        ),
    );
    h.retitle(&h.copy_of(VISIT).expect("copy"), "来客:スマホで変更");
    h.server.delete(&h.copy_of(CALL).expect("copy").href);
    let before = h.cybozu();
    for operation in [
        "ScheduleAddEvents",
        "ScheduleModifyEvents",
        "ScheduleRemoveEvents",
    ] {
        h.sim.quirks().fail_next.push((operation.into(), 19106));
    }
    h.pass();
    assert_eq!(h.cybozu(), before, "every write to Cybozu failed");
    let errors = h.newest_errors();
    assert_eq!(errors.lines().count(), 3, "{errors}");

    h.pass();
    let cybozu = h.cybozu();
    assert_eq!(
        cybozu.values().filter(|e| e.detail == "歯医者").count(),
        1,
        "the new event arrived once"
    );
    assert_eq!(cybozu[&VISIT].detail, "スマホで変更");
    assert!(!cybozu.contains_key(&CALL), "the deletion arrived");
    h.assert_in_step();
    h.assert_quiet_pass();
}

// 10 -----------------------------------------------------------------------------------------

/// A pass that does not finish (here: one write to Cybozu fails, so the pass keeps its cursor to
/// read that change again) has created copies after its cursor; one deleted by another client
/// before the next pass must still be seen as deleted. RFC 6578 lets a server leave out of
/// `sync-collection` a member created and removed since the token, and Xandikos does.
fn a_copy_made_by_an_unfinished_pass_then_deleted_by_another_client_is_deleted(server: ServerKind) {
    let Some(h) = Dav::start(server, "") else {
        return;
    };
    h.pass();
    let lunch = h.sim.company().insert_event(timed_event(
        "ランチ",
        &[TAKAHASHI],
        utc("2026-11-26T03:00:00Z"),
        60,
    ));
    h.server.put_new(
        "dentist.ics",
        &vevent(
            "dentist",
            "歯医者",
            "20261127T000000Z",
            "20261127T010000Z",
            "",
        ),
    );
    h.sim
        .quirks()
        .fail_next
        .push(("ScheduleAddEvents".into(), 19106));
    h.pass();
    let copy = h.copy_of(lunch).expect("copied");
    h.server.delete(&copy.href);

    h.pass();
    let cybozu = h.cybozu();
    assert!(!cybozu.contains_key(&lunch), "the deletion reached Cybozu");
    assert_eq!(
        cybozu.values().filter(|e| e.detail == "歯医者").count(),
        1,
        "the new event arrived once"
    );
    h.assert_in_step();
    h.assert_quiet_pass();
}

// 11 -----------------------------------------------------------------------------------------

/// Days later the window has moved on: events that left it are kept on both sides, not taken
/// for deletions.
fn an_event_that_leaves_the_window_is_not_deleted(server: ServerKind) {
    let Some(h) = Dav::start(server, "SYNC_PAST_DAYS=0\n") else {
        return;
    };
    h.pass();
    let copies: Vec<Resource> = [HOLIDAY, TRIP]
        .iter()
        .map(|id| h.copy_of(*id).expect("copied"))
        .collect();
    let later = "2026-11-30T10:00:00+09:00";
    for _ in 0..2 {
        let output = sync_command_at(&h.install, later)
            .output()
            .expect("dncs-sync runs");
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{output:?}"
        );
    }
    let cybozu = h.cybozu();
    assert!(cybozu.contains_key(&HOLIDAY) && cybozu.contains_key(&TRIP));
    for copy in copies {
        let id = copy.cybozu_id().expect("tagged");
        assert_eq!(h.copy_of(id), Some(copy), "the copy stays as it was");
    }
}

/// The real CalDAV remote with something happening just before each update reaches the
/// server: another client's edit (the moment a phone's edit lands inside a pass), or the
/// server failing.
struct Meddled<'a> {
    inner: dncs::sync::caldav::CalDavRemote,
    before_update: Box<BeforeUpdate<'a>>,
    /// `before_update` also runs before a delete.
    meddles_with_deletes: bool,
}

/// What happens before an update of the copy `id`; an error is the update's answer.
type BeforeUpdate<'a> = dyn FnMut(&str) -> Result<(), dncs::sync::engine::RemoteError> + 'a;

impl<'a> Meddled<'a> {
    /// Another client replaces `edit.0` by `edit.1` in a resource just before the pass's first
    /// update of it (of one of its days, with `days_only`), and sets `edited`.
    fn edit_before_the_first_update(
        h: &'a Dav,
        days_only: bool,
        edit: (&'static str, &'static str),
        edited: &'a std::cell::Cell<bool>,
    ) -> Self {
        let server = h.server.as_ref();
        Self {
            inner: crate::caldav_harness::caldav_remote(&h.install),
            before_update: Box::new(move |id: &str| {
                let (resource, day) = match id.split_once('#') {
                    Some((resource, _)) => (resource, true),
                    None => (id, false),
                };
                if !edited.get() && (day || !days_only) {
                    edited.set(true);
                    let (href, server_etag, _, ics) = calendar_events(server)
                        .into_iter()
                        .find(|(href, ..)| href == resource)
                        .expect("the resource");
                    let phone = ics.replace(edit.0, edit.1);
                    assert_ne!(phone, ics, "the edit changes the resource");
                    server.put(&href, &server_etag, &phone);
                }
                Ok(())
            }),
            meddles_with_deletes: false,
        }
    }

    /// The same edit, just before the pass deletes the resource.
    fn edit_before_the_first_delete(
        h: &'a Dav,
        edit: (&'static str, &'static str),
        edited: &'a std::cell::Cell<bool>,
    ) -> Self {
        Self {
            meddles_with_deletes: true,
            ..Self::edit_before_the_first_update(h, false, edit, edited)
        }
    }

    /// The server answers "unreachable" to every update after the first `fine_updates`.
    fn unreachable_after(h: &Dav, fine_updates: usize) -> Self {
        let mut updates = 0;
        Self::failing(h, move |_| {
            updates += 1;
            updates > fine_updates
        })
    }

    /// The server answers "unreachable" to every update of `href`, and to nothing else.
    fn unreachable_for(h: &Dav, href: &str) -> Self {
        let href = href.to_string();
        Self::failing(h, move |id| id == href)
    }

    fn failing(h: &Dav, mut fails: impl FnMut(&str) -> bool + 'a) -> Self {
        Self {
            inner: crate::caldav_harness::caldav_remote(&h.install),
            before_update: Box::new(move |id: &str| match fails(id) {
                true => Err(dncs::sync::engine::RemoteError::Unavailable(
                    "the CalDAV server answered HTTP 503".into(),
                )),
                false => Ok(()),
            }),
            meddles_with_deletes: false,
        }
    }
}

impl dncs::sync::engine::Remote for Meddled<'_> {
    fn list(
        &mut self,
        cursor: Option<&str>,
        window: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    ) -> Result<dncs::sync::engine::Listing, dncs::sync::engine::RemoteError> {
        self.inner.list(cursor, window)
    }

    fn create(
        &mut self,
        cybozu_id: u64,
        event: &dncs::sync::convert::RemoteEvent,
    ) -> Result<dncs::sync::engine::Written, dncs::sync::engine::RemoteError> {
        self.inner.create(cybozu_id, event)
    }

    fn update(
        &mut self,
        id: &str,
        etag: Option<&str>,
        event: &dncs::sync::convert::RemoteEvent,
    ) -> Result<dncs::sync::engine::Written, dncs::sync::engine::RemoteError> {
        (self.before_update)(id)?;
        self.inner.update(id, etag, event)
    }

    fn delete(
        &mut self,
        id: &str,
        etag: Option<&str>,
    ) -> Result<(), dncs::sync::engine::RemoteError> {
        if self.meddles_with_deletes {
            (self.before_update)(id)?;
        }
        self.inner.delete(id, etag)
    }

    fn side(&self) -> dncs::store::Side {
        self.inner.side()
    }

    fn settle_cursor(&mut self, listed: String) -> String {
        self.inner.settle_cursor(listed)
    }

    fn cursor_before_creating(&mut self, cybozu_ids: &[u64]) -> Option<String> {
        self.inner.cursor_before_creating(cybozu_ids)
    }
}

/// The phone's edit of a title, for [`Meddled::edit_before_the_first_update`].
const SUMMARY_EDIT: (&str, &str) = ("SUMMARY:", "SUMMARY:スマホで変更 ");

/// One pass of takahashi through `remote`, in this process (to put a misbehaving calendar in
/// the way); 同期履歴 is not written, the outcome says what the pass did.
fn pass_through(
    h: &Dav,
    remote: &mut dyn dncs::sync::engine::Remote,
) -> Result<dncs::sync::engine::Outcome, dncs::sync::engine::PassError> {
    let store = h.store();
    let config = dncs::config::Config::load(&h.install.path().join("bin").join("dncs.ini"))
        .expect("dncs.ini");
    let cybozu = dncs::cybozu::Client::new(
        config.cybozu_url().expect("CYBOZU_URL"),
        crate::util::agent(),
        dncs::cybozu::Credentials {
            login: "takahashi".into(),
            password: "takahashi".into(),
        },
    );
    dncs::sync::engine::Pass {
        store: &store,
        config: &config,
        user_id: STORE_USER,
        cybozu: &cybozu,
        remote,
        now: utc(crate::caldav_harness::NOW),
    }
    .run()
}

/// A first pass; Cybozu then edits VISIT, and the next pass, run here, meets another client's
/// edit of VISIT's copy made just before it writes Cybozu's change there.
fn pass_meeting_an_edit_made_meanwhile(h: &Dav) -> dncs::sync::engine::Outcome {
    h.pass();
    h.sim
        .company()
        .edit_event(VISIT, |e| e.description = "Cybozu のメモ".into());
    let edited = std::cell::Cell::new(false);
    let mut remote = Meddled::edit_before_the_first_update(h, false, SUMMARY_EDIT, &edited);
    let outcome = pass_through(h, &mut remote).expect("the pass");
    assert!(edited.get(), "the pass updated the copy");
    outcome
}

/// A pass that met another client's edit of VISIT's copy left the copy as that client wrote it,
/// and said that the next pass takes the change in.
fn assert_edit_left_for_the_next_pass(
    h: &Dav,
    outcome: &dncs::sync::engine::Outcome,
    server: &str,
) {
    assert!(
        outcome
            .messages
            .iter()
            .any(|m| m.contains("同期の途中でカレンダー側でも変更されたため")),
        "{server}: {:?}",
        outcome.messages
    );
    let summary = h
        .copy_of(VISIT)
        .and_then(|r| r.summary())
        .unwrap_or_default();
    assert!(
        summary.contains("スマホで変更"),
        "{server}: the edit is gone: {summary}"
    );
}

/// A resource edited by another client after the pass read it is not written over: the next
/// pass weighs that edit against Cybozu's by `CONFLICT` (here the calendar's side wins).
#[test]
fn caldav_an_edit_made_during_a_pass_is_not_written_over() {
    let Some(h) = Dav::start(ServerKind::Radicale, "CONFLICT=remote\n") else {
        return;
    };
    let outcome = pass_meeting_an_edit_made_meanwhile(&h);
    assert_edit_left_for_the_next_pass(&h, &outcome, "Radicale");

    h.pass();
    assert!(
        h.cybozu()[&VISIT].detail.contains("スマホで変更"),
        "{:?}",
        h.cybozu()[&VISIT]
    );
    assert!(
        h.history().iter().any(|e| e.counts.conflicts >= 1),
        "{:?}",
        h.history()
    );
}

/// A resource edited by another client after the pass read it is not deleted for Cybozu's
/// deletion: the next pass weighs that edit against the deletion by `CONFLICT` (here the
/// calendar's side wins, which brings the event back into Cybozu Office).
fn an_edit_made_during_a_pass_is_not_deleted(server: ServerKind) {
    let Some(h) = Dav::start(server, "CONFLICT=remote\n") else {
        return;
    };
    h.pass();
    h.sim.company().events.remove(&VISIT);
    let edited = std::cell::Cell::new(false);
    let mut remote = Meddled::edit_before_the_first_delete(&h, SUMMARY_EDIT, &edited);
    let outcome = pass_through(&h, &mut remote).expect("the pass");
    assert!(edited.get(), "the pass deleted the copy");
    assert_edit_left_for_the_next_pass(&h, &outcome, &format!("{server:?}"));

    h.pass();
    assert!(
        h.cybozu()
            .values()
            .any(|e| e.detail.contains("スマホで変更")),
        "the phone's event is not back in Cybozu: {:?}",
        h.cybozu()
    );
    h.assert_in_step();
}

/// A copy another client edited before the pass, whose Cybozu event was deleted: under
/// `CONFLICT=cybozu` the pass deletes it as listed, not as last synced (which would fail at
/// every pass).
fn a_copy_edited_elsewhere_is_deleted_when_cybozu_wins(server: ServerKind) {
    let Some(h) = Dav::start(server, "CONFLICT=cybozu\n") else {
        return;
    };
    h.pass();
    let copy = h.copy_of(VISIT).expect("copy");
    h.retitle(&copy, "スマホで変更");
    h.sim.company().events.remove(&VISIT);
    h.pass();
    assert!(h.copy_of(VISIT).is_none(), "the copy is still there");
    h.assert_in_step();
    h.assert_quiet_pass();
}

/// A calendar deleted on the server stops the pass with a sentence about the CalDAV URL (a
/// CalDAV user has no カレンダーID), and Cybozu Office keeps every event.
#[test]
fn caldav_a_calendar_deleted_on_the_server_is_named_and_nothing_is_deleted() {
    let Some(h) = Dav::start(ServerKind::Radicale, "") else {
        return;
    };
    h.pass();
    let before = h.cybozu();
    h.server.raw("DELETE", &h.server.calendar_path(), &[], "");
    h.pass_output();
    assert_eq!(h.cybozu(), before, "Cybozu keeps everything");
    let newest = h.history().into_iter().next().expect("a 同期履歴 entry");
    assert!(
        newest
            .errors
            .iter()
            .any(|e| e.contains("CalDAV カレンダー") && e.contains("CalDAV URL を確認")),
        "{:?}",
        newest.errors
    );
    assert!(!newest.errors.iter().any(|e| e.contains("カレンダーID")));
}

/// After a pass that left an edit made meanwhile alone, the cursor it listed from still holds:
/// a phone deletion made before the next pass reaches Cybozu Office on every kind of server.
#[test]
fn caldav_a_deletion_after_an_edit_made_meanwhile_still_reaches_cybozu() {
    for kind in [
        ServerKind::Radicale,
        ServerKind::Xandikos,
        ServerKind::EtagsOnly,
    ] {
        let Some(h) = Dav::start(kind, "CONFLICT=remote\n") else {
            continue;
        };
        pass_meeting_an_edit_made_meanwhile(&h);
        let call = h.copy_of(CALL).expect("the copy of CALL");
        h.server.delete(&call.href);
        h.pass();
        h.pass();
        assert!(
            !h.cybozu().contains_key(&CALL),
            "{kind:?}: the phone's deletion was lost"
        );
    }
}

fn conflicts_told(messages: &[String]) -> usize {
    messages.iter().filter(|m| m.contains("両方で変更")).count()
}

/// A pass that stops because the server stopped answering tells the conflict it settled
/// before the stop, and only that one: the others are told (and counted) by the pass that
/// settles them, so none is told twice.
#[test]
fn caldav_a_pass_stopped_by_the_server_tells_the_conflicts_it_settled() {
    let Some(h) = Dav::start(ServerKind::Radicale, "CONFLICT=cybozu\n") else {
        return;
    };
    h.pass();
    for id in [VISIT, CALL, KICKOFF] {
        let copy = h.copy_of(id).expect("copy");
        h.retitle(&copy, "スマホで変更");
        h.sim
            .company()
            .edit_event(id, |e| e.detail = "サイボウズで変更".into());
    }
    let mut remote = Meddled::unreachable_after(&h, 1);
    let outcome = pass_through(&h, &mut remote).expect("a stopped pass is an outcome");
    assert!(
        outcome
            .stopped
            .as_deref()
            .is_some_and(|s| s.contains("中断")),
        "{:?}",
        outcome.stopped
    );
    assert_eq!(outcome.counts.remote_updated, 1, "{:?}", outcome.counts);
    assert_eq!(
        conflicts_told(&outcome.messages),
        1,
        "{:?}",
        outcome.messages
    );
    assert_eq!(outcome.counts.conflicts, 1);
    h.pass();
    let next: Vec<String> = h.history().into_iter().flat_map(|e| e.errors).collect();
    assert_eq!(conflicts_told(&next), 2, "{next:?}");
    h.assert_in_step();
    assert!(
        h.cybozu()[&VISIT].detail.contains("サイボウズで変更"),
        "CONFLICT=cybozu"
    );
}

/// One copy the server keeps refusing (a 500 on that resource alone) does not hold back the
/// other writes: each pass names it, and writes the rest.
#[test]
fn caldav_one_copy_the_server_keeps_refusing_does_not_block_the_others() {
    let Some(h) = Dav::start(ServerKind::Radicale, "") else {
        return;
    };
    h.pass();
    // The first of the pass's updates, whichever event it is.
    let refused = h.copy_of(KICKOFF).expect("copy").href;
    for id in [KICKOFF, VISIT, CALL] {
        h.sim
            .company()
            .edit_event(id, |e| e.description = "サイボウズで変更".into());
    }
    // The first pass writes the two others; the next tries the refused one again, and names it.
    for written in [2, 0] {
        let mut remote = Meddled::unreachable_for(&h, &refused);
        let outcome = pass_through(&h, &mut remote).expect("the pass");
        assert_eq!(outcome.stopped, None, "{:?}", outcome.messages);
        assert_eq!(outcome.counts.remote_updated, written, "{outcome:?}");
        assert!(
            outcome.messages.iter().any(|m| m.contains("キックオフ")),
            "{:?}",
            outcome.messages
        );
    }
    for id in [VISIT, CALL] {
        let copy = h.copy_of(id).expect("copy");
        assert!(
            copy.ics.contains("サイボウズで変更"),
            "{id} was held back by {refused}"
        );
    }
}

/// The same for one day of a series: the phone's edit of the day (its override) made during
/// a pass is not written over by Cybozu's edit of the split-off event.
#[test]
fn caldav_an_edit_of_a_day_made_during_a_pass_is_not_written_over() {
    let Some(h) = Dav::start(ServerKind::Radicale, "CONFLICT=remote\n") else {
        return;
    };
    let own = h.sim.company().insert_event(own_weekly_series());
    h.pass();
    // The phone moves one day: Cybozu splits it off.
    let series = h.copy_of(own).expect("the series' copy");
    let uid = series.value("UID").expect("uid");
    let moved = format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T000000Z\r\n\
         RECURRENCE-ID;TZID=Asia/Tokyo:20261208T080000\r\n\
         DTSTART;TZID=Asia/Tokyo:20261208T130000\r\nDTEND;TZID=Asia/Tokyo:20261208T134500\r\n\
         SUMMARY:午後の作業\r\nX-DNCS-CYBOZU-ID:{own}\r\nSEQUENCE:1\r\nEND:VEVENT\r\n"
    );
    let text = series
        .ics
        .replace("END:VCALENDAR", &format!("{moved}END:VCALENDAR"));
    h.server.put(&series.href, &series.etag, &text);
    h.pass();
    let split = h
        .cybozu()
        .into_values()
        .find(|e| e.detail == "午後の作業")
        .and_then(|e| e.id)
        .expect("the day is split off");
    h.sim
        .company()
        .edit_event(split, |e| e.description = "Cybozu のメモ".into());
    let edited = std::cell::Cell::new(false);
    let mut remote = Meddled::edit_before_the_first_update(
        &h,
        true,
        ("SUMMARY:午後の作業", "SUMMARY:スマホで変更した日"),
        &edited,
    );
    pass_through(&h, &mut remote).expect("the pass");
    assert!(edited.get(), "the pass updated the day");
    let after = h.copy_of(own).expect("the series' copy");
    assert!(
        after.ics.contains("スマホで変更した日"),
        "the phone's edit of the day was written over"
    );
}
