//! The demo company `dncs-dev` serves: a few users with Japanese names, organizations,
//! facilities, a plan menu and a week of varied events around a given day.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime};

use super::company::{users, Company};
use crate::cybozu::model::Facility;
use crate::cybozu::model::{
    DateSpan, Event, EventType, Exclusion, Member, Organization, PublicType, RepeatCondition,
    RepeatInfo, RepeatKind, TimeSpan, When,
};
use crate::cybozu::repeat::{local_to_utc, zone};

/// Logins of the demo company: (login, password, name).
pub const DEMO_USERS: &[(&str, &str, &str)] = &[
    ("takahashi", "takahashi", "高橋 健太"),
    ("sato", "sato", "佐藤 美咲"),
    ("suzuki", "suzuki", "鈴木 大輔"),
    ("tanaka", "tanaka", "田中 陽子"),
    ("ito", "ito", "伊藤 翔"),
];

pub const PLAN_MENU: &[&str] = &["会議", "来客", "外出", "出張", "往訪", "休み"];

const TZ: &str = "Asia/Tokyo";

/// A company with users, organizations, facilities and the plan menu, but no events.
pub fn staff() -> Company {
    let mut company = Company::new();
    for (index, (login, password, name)) in DEMO_USERS.iter().enumerate() {
        let id = index as u64 + 1;
        let account = company.add_account(id, login, password, name);
        account.user.primary_organization = Some(if id <= 2 { 1 } else { 2 });
        account.user.organizations = vec![if id <= 2 { 1 } else { 2 }];
    }
    let version = company.next_version();
    company.organizations = vec![
        Organization {
            id: 1,
            version,
            name: "営業部".into(),
            parent: None,
            members: vec![1, 2],
        },
        Organization {
            id: 2,
            version,
            name: "開発部".into(),
            parent: None,
            members: vec![3, 4, 5],
        },
        Organization {
            id: 3,
            version,
            name: "総務部".into(),
            parent: None,
            members: Vec::new(),
        },
    ];
    company.facilities = vec![
        Facility {
            id: 1,
            version,
            name: "第一会議室".into(),
            description: "12名・プロジェクターあり".into(),
        },
        Facility {
            id: 2,
            version,
            name: "第二会議室".into(),
            description: "6名".into(),
        },
        Facility {
            id: 3,
            version,
            name: "社用車（品川 300 あ 12-34）".into(),
            description: String::new(),
        },
    ];
    company.plan_menu = PLAN_MENU.iter().map(|s| s.to_string()).collect();
    company
}

/// The demo company with a week of events starting on the Monday of `today`'s week.
pub fn demo(today: NaiveDate) -> Company {
    let mut company = staff();
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let day = |offset: i64| monday + Duration::days(offset);
    let tz = zone(TZ);
    let at = |date: NaiveDate, h: u32, m: u32| {
        local_to_utc(
            tz,
            date,
            NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN),
        )
    };
    let timed = |date: NaiveDate, (h1, m1): (u32, u32), (h2, m2): (u32, u32)| {
        When::Times(vec![TimeSpan {
            start: at(date, h1, m1),
            end: Some(at(date, h2, m2)),
            facility_id: None,
        }])
    };
    let event = |plan: &str, detail: &str, members: Vec<Member>, when: When| {
        let mut e = Event::new(TZ);
        e.plan = plan.into();
        e.detail = detail.into();
        e.members = members;
        e.when = when;
        e
    };

    // A shared meeting with a facility.
    let mut kickoff = event(
        "会議",
        "新製品キックオフ",
        users(&[1, 2, 3]),
        timed(day(0), (10, 0), (11, 30)),
    );
    kickoff.members.push(Member::Facility(1));
    kickoff.description = "議題:\n1. スケジュール\n2. 役割分担 & 予算 <確認>".into();
    company.insert_event(kickoff);

    // A visitor, private.
    let mut visit = event(
        "来客",
        "株式会社サンプル 山田様",
        users(&[1]),
        timed(day(1), (14, 0), (15, 0)),
    );
    visit.public_type = PublicType::Private;
    visit.members.push(Member::Facility(2));
    company.insert_event(visit);

    // An all-day event.
    let mut holiday = event(
        "休み",
        "有給休暇",
        users(&[1]),
        When::Dates(vec![DateSpan {
            start: day(4),
            end: day(4),
        }]),
    );
    holiday.allday = true;
    company.insert_event(holiday);

    // A business trip over three days (banner).
    let mut trip = event(
        "出張",
        "大阪支社",
        users(&[1, 3]),
        When::Dates(vec![DateSpan {
            start: day(2),
            end: day(4),
        }]),
    );
    trip.event_type = EventType::Banner;
    company.insert_event(trip);

    // A weekly meeting with one week skipped.
    let mut weekly = event("会議", "週次定例", users(&[1, 2, 3, 4, 5]), When::Unset);
    weekly.event_type = EventType::Repeat;
    let weekly_start = day(0) - Duration::days(28);
    weekly.repeat = Some(RepeatInfo {
        condition: RepeatCondition {
            kind: RepeatKind::Week,
            start_date: weekly_start,
            end_date: Some(day(0) + Duration::days(180)),
            start_time: NaiveTime::from_hms_opt(9, 30, 0),
            end_time: NaiveTime::from_hms_opt(10, 0, 0),
            day: None,
            week: Some(1),
        },
        exclusions: vec![Exclusion {
            start: at(day(7), 9, 30),
            end: at(day(7), 10, 0),
        }],
    });
    company.insert_event(weekly);

    // A tentative event with two candidates.
    let mut tentative = event(
        "会議",
        "来期予算の検討（候補）",
        users(&[1, 2]),
        When::Times(vec![
            TimeSpan {
                start: at(day(3), 13, 0),
                end: Some(at(day(3), 14, 0)),
                facility_id: None,
            },
            TimeSpan {
                start: at(day(4), 13, 0),
                end: Some(at(day(4), 14, 0)),
                facility_id: None,
            },
        ]),
    );
    tentative.event_type = EventType::Temporary;
    company.insert_event(tentative);

    // A reminder with only a start time.
    let mut call = event(
        "",
        "顧客へ電話",
        users(&[1]),
        When::Times(vec![TimeSpan {
            start: at(day(1), 9, 0),
            end: None,
            facility_id: None,
        }]),
    );
    call.start_only = true;
    company.insert_event(call);

    // Other users' days.
    let mut car = event(
        "外出",
        "顧客訪問（横浜）",
        users(&[2]),
        timed(day(1), (13, 0), (17, 0)),
    );
    car.members.push(Member::Facility(3));
    company.insert_event(car);
    company.insert_event(event(
        "往訪",
        "パートナー打合せ",
        users(&[3, 4]),
        timed(day(2), (15, 0), (16, 0)),
    ));
    company.insert_event(event(
        "",
        "コードレビュー",
        users(&[4, 5]),
        timed(day(3), (16, 0), (17, 0)),
    ));
    company
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_week_has_every_kind_of_event() {
        let company = demo(NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"));
        let mine: Vec<_> = company.events_of(1).collect();
        for kind in [
            EventType::Normal,
            EventType::Repeat,
            EventType::Banner,
            EventType::Temporary,
        ] {
            assert!(
                mine.iter().any(|e| e.event_type == kind),
                "no {kind:?} event"
            );
        }
        assert!(mine.iter().any(|e| e.allday));
        assert!(mine.iter().any(|e| e.start_only));
        assert!(mine.iter().any(|e| e.public_type == PublicType::Private));
        assert!(mine.iter().any(|e| e.facility_ids().next().is_some()));
    }
}
