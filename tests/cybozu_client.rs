//! Every Cybozu operation the product uses, round-tripped against the simulator.

use chrono::NaiveTime;
use dncs::cybozu::{
    ChangeKind, CybozuError, DateSpan, Event, EventType, Exclusion, FaultKind, ItemVersion, Member,
    PublicType, RepeatCondition, RepeatInfo, RepeatKind, RepeatScope, TimeSpan, When,
};

use crate::util::{client, date, demo_sim, empty_sim, utc};

const TZ: &str = "Asia/Tokyo";

fn timed(start: &str, end: &str) -> When {
    When::Times(vec![TimeSpan {
        start: utc(start),
        end: Some(utc(end)),
        facility_id: None,
    }])
}

fn meeting(detail: &str, members: Vec<Member>, when: When) -> Event {
    let mut event = Event::new(TZ);
    event.plan = "会議".into();
    event.detail = detail.into();
    event.members = members;
    event.when = when;
    event
}

fn weekly_series(members: Vec<Member>) -> Event {
    let mut event = meeting("週次", members, When::Unset);
    event.event_type = EventType::Repeat;
    event.repeat = Some(RepeatInfo {
        condition: RepeatCondition {
            kind: RepeatKind::Week,
            start_date: date("2026-11-02"),
            end_date: Some(date("2026-12-28")),
            start_time: NaiveTime::from_hms_opt(9, 0, 0),
            end_time: NaiveTime::from_hms_opt(10, 0, 0),
            day: None,
            week: Some(1),
        },
        exclusions: Vec::new(),
    });
    event
}

#[test]
fn login_user_id_checks_the_password() {
    let sim = demo_sim();
    assert_eq!(client(&sim, "sato").login_user_id().expect("login"), 2);
    let wrong = dncs::cybozu::Client::new(
        &sim.url(),
        crate::util::agent(),
        dncs::cybozu::Credentials {
            login: "sato".into(),
            password: "not-her-password".into(),
        },
    )
    .with_retry(dncs::http::RetryPolicy::quick());
    let err = wrong.login_user_id().expect_err("wrong password");
    assert!(err.is_login_failure(), "{err}");
}

#[test]
fn user_directory_lookups_and_versions() {
    let sim = demo_sim();
    let c = client(&sim, "takahashi");
    let found = c
        .users_by_login_name(&["sato", "nobody", "ito"])
        .expect("by login");
    let names: Vec<_> = found.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, vec!["佐藤 美咲", "伊藤 翔"]);
    assert_eq!(found[0].login_name.as_deref(), Some("sato"));
    assert_eq!(found[0].organizations, vec![1]);

    let by_id = c.users_by_id(&[3]).expect("by id");
    assert_eq!(by_id[0].name, "鈴木 大輔");

    let all = c.user_versions(&[]).expect("versions");
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|ch| ch.kind == ChangeKind::Add));

    let known: Vec<ItemVersion> = all
        .iter()
        .map(|ch| ItemVersion {
            id: ch.id,
            version: ch.version,
        })
        .chain([ItemVersion { id: 99, version: 1 }])
        .collect();
    {
        let mut company = sim.company();
        let bumped = company.next_version();
        company.accounts[1].user.name = "佐藤 美咲（旧姓）".into();
        company.accounts[1].user.version = bumped;
    }
    let changes = c.user_versions(&known).expect("versions");
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes
        .iter()
        .any(|ch| ch.id == 2 && ch.kind == ChangeKind::Modify));
    assert!(changes
        .iter()
        .any(|ch| ch.id == 99 && ch.kind == ChangeKind::Remove));
}

#[test]
fn organizations_facilities_and_profiles() {
    let sim = demo_sim();
    let c = client(&sim, "takahashi");
    let orgs = c.organization_versions(&[]).expect("org versions");
    assert_eq!(orgs.len(), 3);
    let sales = c.organizations_by_id(&[1]).expect("orgs");
    assert_eq!(sales[0].name, "営業部");
    assert_eq!(sales[0].members, vec![1, 2]);

    let facilities = c.facility_versions(&[]).expect("facility versions");
    assert_eq!(facilities.len(), 3);
    let rooms = c.facilities_by_id(&[1, 2]).expect("facilities");
    assert_eq!(rooms[0].name, "第一会議室");
    assert_eq!(rooms[1].name, "第二会議室");

    let profiles = c.profiles().expect("profiles");
    assert_eq!(
        profiles.plan_menu,
        vec!["会議", "来客", "外出", "出張", "往訪", "休み"]
    );
    assert_eq!(profiles.event_reserve_unit, Some(15));
}

#[test]
fn reading_the_window_gives_every_kind_of_event() {
    let sim = demo_sim();
    let c = client(&sim, "takahashi");
    let events = c
        .events(utc("2026-11-20T00:00:00Z"), utc("2026-12-10T00:00:00Z"))
        .expect("events");
    let titles: Vec<String> = events.iter().map(|e| e.display_title()).collect();
    assert!(
        titles.contains(&"会議:新製品キックオフ".to_string()),
        "{titles:?}"
    );
    assert!(
        !titles.iter().any(|t| t.contains("横浜")),
        "someone else's event"
    );
    let kickoff = events
        .iter()
        .find(|e| e.detail == "新製品キックオフ")
        .expect("kickoff");
    assert_eq!(
        kickoff.members,
        vec![
            Member::User(1),
            Member::User(2),
            Member::User(3),
            Member::Facility(1)
        ]
    );
    assert!(kickoff.description.contains("2. 役割分担 & 予算 <確認>"));
    assert_eq!(
        kickoff.when.first_time().map(|t| t.start),
        Some(utc("2026-11-23T01:00:00Z"))
    );
    let trip = events
        .iter()
        .find(|e| e.event_type == EventType::Banner)
        .expect("banner");
    assert_eq!(
        trip.when.first_date(),
        Some(&DateSpan {
            start: date("2026-11-25"),
            end: date("2026-11-27")
        })
    );
    let weekly = events
        .iter()
        .find(|e| e.event_type == EventType::Repeat)
        .expect("repeat");
    let rule = weekly.repeat.as_ref().expect("rule");
    assert_eq!(rule.condition.kind, RepeatKind::Week);
    assert_eq!(rule.exclusions.len(), 1);
    assert!(events
        .iter()
        .any(|e| e.start_only && e.when.first_time().is_some_and(|t| t.end.is_none())));
    assert!(events.iter().any(|e| e.allday));
    assert!(events.iter().any(|e| e.public_type == PublicType::Private));
    let tentative = events
        .iter()
        .find(|e| e.event_type == EventType::Temporary)
        .expect("temporary");
    assert!(matches!(&tentative.when, When::Times(spans) if spans.len() == 2));
}

#[test]
fn event_versions_report_adds_modifies_and_removes() {
    let sim = demo_sim();
    let c = client(&sim, "takahashi");
    let (start, end) = (utc("2026-11-20T00:00:00Z"), utc("2026-12-10T00:00:00Z"));
    let first = c.event_versions(start, end, &[]).expect("versions");
    assert!(first.iter().all(|ch| ch.kind == ChangeKind::Add));
    let known: Vec<ItemVersion> = first
        .iter()
        .map(|ch| ItemVersion {
            id: ch.id,
            version: ch.version,
        })
        .collect();
    assert!(
        c.event_versions(start, end, &known)
            .expect("versions")
            .is_empty(),
        "nothing changed"
    );

    sim.company()
        .edit_event(1, |e| e.detail = "キックオフ（変更）".into());
    sim.company().events.remove(&3);
    let changes = c.event_versions(start, end, &known).expect("versions");
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes
        .iter()
        .any(|ch| ch.id == 1 && ch.kind == ChangeKind::Modify));
    assert!(changes
        .iter()
        .any(|ch| ch.id == 3 && ch.kind == ChangeKind::Remove));
}

#[test]
fn events_by_id_in_one_batch_and_leniently() {
    let sim = demo_sim();
    let c = client(&sim, "takahashi");
    let events = c.events_by_id(&[1, 4, 5]).expect("batch");
    assert_eq!(
        events.iter().filter_map(|e| e.id).collect::<Vec<_>>(),
        vec![1, 4, 5]
    );
    let err = c.events_by_id(&[1, 4040]).expect_err("missing id");
    assert!(err.is_no_such_event(), "{err}");
    let (found, missing) = c
        .events_by_id_lenient(&[1, 4040, 4, 4041, 5])
        .expect("lenient");
    assert_eq!(found.len(), 3);
    assert_eq!(missing, vec![4040, 4041]);
}

#[test]
fn adding_every_kind_of_event_round_trips() {
    let sim = empty_sim();
    let c = client(&sim, "takahashi");
    let normal = meeting(
        "通常",
        vec![Member::User(1), Member::Facility(2)],
        timed("2026-12-01T01:00:00Z", "2026-12-01T02:00:00Z"),
    );
    let mut allday = meeting(
        "終日",
        vec![],
        When::Dates(vec![DateSpan {
            start: date("2026-12-02"),
            end: date("2026-12-02"),
        }]),
    );
    allday.allday = true;
    let mut banner = meeting(
        "期間",
        vec![Member::User(1), Member::User(3)],
        When::Dates(vec![DateSpan {
            start: date("2026-12-03"),
            end: date("2026-12-05"),
        }]),
    );
    banner.event_type = EventType::Banner;
    let mut temporary = meeting(
        "仮",
        vec![Member::User(1)],
        When::Times(vec![
            TimeSpan {
                start: utc("2026-12-07T01:00:00Z"),
                end: Some(utc("2026-12-07T02:00:00Z")),
                facility_id: None,
            },
            TimeSpan {
                start: utc("2026-12-08T01:00:00Z"),
                end: Some(utc("2026-12-08T02:00:00Z")),
                facility_id: None,
            },
        ]),
    );
    temporary.event_type = EventType::Temporary;
    let mut start_only = meeting(
        "開始のみ",
        vec![Member::User(1)],
        When::Times(vec![TimeSpan {
            start: utc("2026-12-09T00:00:00Z"),
            end: None,
            facility_id: None,
        }]),
    );
    start_only.start_only = true;
    let mut private = meeting(
        "非公開",
        vec![Member::User(1), Member::Organization(1)],
        timed("2026-12-10T01:00:00Z", "2026-12-10T02:00:00Z"),
    );
    private.public_type = PublicType::Private;
    private.description = "改行\nと & < > \" ' 記号".into();
    let mut series = weekly_series(vec![Member::User(1)]);
    if let Some(rule) = series.repeat.as_mut() {
        rule.exclusions.push(Exclusion {
            start: utc("2026-11-09T00:00:00Z"),
            end: utc("2026-11-09T01:00:00Z"),
        });
    }
    let sent = vec![
        normal, allday, banner, temporary, start_only, private, series,
    ];
    let added = c.add_events(&sent).expect("add");
    assert_eq!(added.len(), sent.len());
    for (mine, theirs) in sent.iter().zip(&added) {
        assert!(theirs.id.is_some() && theirs.version.is_some());
        let mut expected = mine.clone();
        expected.id = theirs.id;
        expected.version = theirs.version;
        if !expected
            .members
            .iter()
            .any(|m| matches!(m, Member::User(_)))
        {
            expected.members.insert(0, Member::User(1));
        }
        assert_eq!(theirs, &expected);
    }
    let read_back = c
        .events_by_id(&added.iter().filter_map(|e| e.id).collect::<Vec<_>>())
        .expect("read");
    assert_eq!(read_back, added);
}

#[test]
fn modify_with_keeps_what_it_does_not_touch() {
    let sim = demo_sim();
    let c = client(&sim, "takahashi");
    let before = c.event(1).expect("kickoff");
    let after = c
        .modify_event_with(1, |e| e.detail = "キックオフ（時間変更）".into())
        .expect("modify");
    assert_eq!(after.detail, "キックオフ（時間変更）");
    assert_eq!(after.members, before.members, "facility and members kept");
    assert!(after.version > before.version);

    // A bare modify that leaves the facility out frees it: the reason writes go through modify_event_with.
    let mut bare = after.clone();
    bare.members.retain(|m| !matches!(m, Member::Facility(_)));
    let written = c.modify_events(&[bare]).expect("modify");
    assert!(written[0].facility_ids().next().is_none());
}

#[test]
fn repeat_operations_split_series() {
    let sim = empty_sim();
    let c = client(&sim, "takahashi");
    let series = c
        .add_events(&[weekly_series(vec![Member::User(1), Member::User(2)])])
        .expect("add")
        .remove(0);
    let id = series.id.expect("id");

    // One occurrence changed: the series excludes that day, a single event takes its place.
    let mut changed = series.clone();
    changed.detail = "週次（この日だけ会議室B）".into();
    let split = c
        .modify_repeat_event(RepeatScope::This(date("2026-11-16")), &changed)
        .expect("this");
    assert_eq!(split.original.id, Some(id));
    assert_eq!(
        split.original.repeat.as_ref().map(|r| r.exclusions.len()),
        Some(1)
    );
    assert_eq!(split.modified.event_type, EventType::Normal);
    assert_eq!(split.modified.detail, "週次（この日だけ会議室B）");
    assert_eq!(
        split.modified.when.first_time().map(|t| t.start),
        Some(utc("2026-11-16T00:00:00Z"))
    );

    // From a date on: the series ends the day before, a new series starts.
    let mut later = c.event(id).expect("series");
    later.detail = "週次（12月から）".into();
    let split = c
        .modify_repeat_event(RepeatScope::After(date("2026-12-07")), &later)
        .expect("after");
    assert_eq!(
        split
            .original
            .repeat
            .as_ref()
            .and_then(|r| r.condition.end_date),
        Some(date("2026-12-06"))
    );
    assert_eq!(
        split
            .modified
            .repeat
            .as_ref()
            .map(|r| r.condition.start_date),
        Some(date("2026-12-07"))
    );
    assert_ne!(split.modified.id, Some(id));

    // All of it, read and written back whole.
    let split = c
        .modify_repeat_event_with(id, RepeatScope::All, |e| {
            e.description = "全体に追記".into()
        })
        .expect("all");
    assert_eq!(
        split.modified.members,
        vec![Member::User(1), Member::User(2)]
    );
    assert_eq!(split.modified.description, "全体に追記");
    assert_eq!(split.modified.id, Some(id));

    // Removing one occurrence, then the rest, then all.
    let removed = c
        .remove_from_repeat(id, RepeatScope::This(date("2026-11-23")))
        .expect("remove this");
    assert_eq!(
        removed.original.repeat.as_ref().map(|r| r.exclusions.len()),
        Some(2)
    );
    let cut = c
        .remove_from_repeat(id, RepeatScope::After(date("2026-11-30")))
        .expect("remove after");
    assert_eq!(
        cut.original
            .repeat
            .as_ref()
            .and_then(|r| r.condition.end_date),
        Some(date("2026-11-29"))
    );
    c.remove_from_repeat(id, RepeatScope::All)
        .expect("remove all");
    assert!(c.event(id).expect_err("gone").is_no_such_event());
}

#[test]
fn leaving_a_shared_event_keeps_it_for_the_others() {
    let sim = demo_sim();
    let me = client(&sim, "takahashi");
    let left = me.leave_events(&[1]).expect("leave");
    assert!(!left[0].has_user(1));
    assert!(me.event(1).is_ok(), "a public event stays readable");
    let sato = client(&sim, "sato");
    assert!(sato.event(1).expect("still hers").has_user(2));

    // Leaving an event nobody else takes part in deletes it.
    me.leave_events(&[7]).expect("leave my own");
    assert!(!sim.company().events.contains_key(&7));

    // One occurrence of a shared series: the others keep that day as a single event.
    let split = me
        .leave_from_repeat(5, RepeatScope::This(date("2026-12-07")))
        .expect("leave one");
    assert!(split.original.has_user(1));
    assert!(!split.modified.has_user(1));
    assert_eq!(split.modified.event_type, EventType::Normal);
}

#[test]
fn remove_deletes_for_everyone() {
    let sim = demo_sim();
    let c = client(&sim, "takahashi");
    c.remove_events(&[1]).expect("remove");
    assert!(client(&sim, "sato")
        .event(1)
        .expect_err("gone")
        .is_no_such_event());
}

#[test]
fn server_side_validation_is_typed() {
    let sim = demo_sim();
    let c = client(&sim, "takahashi");
    // 第一会議室 is booked by the kickoff on Monday 10:00–11:30 JST.
    let clash = meeting(
        "重複",
        vec![Member::User(1), Member::Facility(1)],
        timed("2026-11-23T02:00:00Z", "2026-11-23T03:00:00Z"),
    );
    let err = c.add_events(&[clash]).expect_err("double booking");
    assert_eq!(
        err.fault_kind(),
        Some(FaultKind::FacilityDoubleBooked),
        "{err}"
    );

    let backwards = meeting(
        "逆",
        vec![Member::User(1)],
        timed("2026-11-23T03:00:00Z", "2026-11-23T02:00:00Z"),
    );
    let err = c.add_events(&[backwards]).expect_err("end before start");
    assert_eq!(err.fault_kind(), Some(FaultKind::EndBeforeStart), "{err}");

    let err = c
        .modify_event_with(4040, |_| {})
        .expect_err("no such event");
    assert!(err.is_no_such_event());
    assert!(matches!(err, CybozuError::Fault { .. }));
}

#[test]
fn the_gate_bounds_calls_in_flight_across_threads() {
    let sim = demo_sim();
    sim.quirks().latency = std::time::Duration::from_millis(300);
    let gate = std::sync::Arc::new(dncs::http::Gate::new(2));
    let threads: Vec<_> = ["takahashi", "sato", "suzuki", "tanaka", "ito", "takahashi"]
        .into_iter()
        .map(|login| {
            let c = client(&sim, login).with_gate(gate.clone());
            std::thread::spawn(move || c.login_user_id())
        })
        .collect();
    for t in threads {
        t.join().expect("thread").expect("login");
    }
    assert_eq!(
        sim.peak_in_flight(),
        2,
        "CYBOZU_PARALLEL=2 holds across threads"
    );
}
