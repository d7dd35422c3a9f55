//! Holds both ends of the SOAP conversation to the contract: every request the client builds and
//! every reply the simulator gives is validated with `xmllint` against the WSDL types and XSDs a
//! real Office 10.6 server serves (copies under tests/data/cybozu-api).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveTime;
use dncs::cybozu::{
    DateSpan, Event, EventType, ItemVersion, Member, RepeatCondition, RepeatInfo, RepeatKind,
    RepeatScope, TimeSpan, When,
};
use dncs::sim::cybozu::Exchange;
use dncs::xml;

use crate::util::{client, date, demo_sim, utc};

fn api_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cybozu-api")
}

/// The types schema and namespace of an operation's service.
fn types_schema(operation: &str) -> (&'static str, &'static str) {
    if operation.starts_with("Schedule") {
        (
            "schedule-types.xsd",
            "http://wsdl.cybozu.co.jp/schedule/2008/types",
        )
    } else if operation.starts_with("Base") {
        ("base-types.xsd", "http://wsdl.cybozu.co.jp/base/2008/types")
    } else {
        (
            "util_api-types.xsd",
            "http://wsdl.cybozu.co.jp/util_api/2008/types",
        )
    }
}

/// Operations whose WSDL output message has no part: their reply element must be empty.
fn empty_replies() -> Vec<String> {
    let wsdl = std::fs::read_to_string(api_dir().join("wsdl/schedule.wsdl")).expect("wsdl");
    let doc = xml::parse(&wsdl).expect("wsdl parses");
    doc.descendants()
        .filter(|n| {
            n.tag_name().name() == "operation"
                && n.parent()
                    .is_some_and(|p| p.tag_name().name() == "portType")
        })
        .filter(|op| {
            xml::child(*op, "output")
                .and_then(|o| xml::attr(o, "message"))
                .is_some_and(|m| m.ends_with("EmptyResponse"))
        })
        .filter_map(|op| xml::attr(op, "name").map(str::to_string))
        .collect()
}

/// What to validate: (types schema file, namespace, type name, element name) → fragments.
type Batches = BTreeMap<(&'static str, &'static str, String, &'static str), Vec<String>>;

fn collect(
    exchange: &Exchange,
    empty: &[String],
    batches: &mut Batches,
    problems: &mut Vec<String>,
) {
    let op = &exchange.operation;
    // The request: headers as the API requires, and its <parameters>.
    let doc = xml::parse(&exchange.request).expect("the client's request is well-formed");
    let envelope = doc.root_element();
    assert_eq!(
        envelope.tag_name().namespace(),
        Some("http://www.w3.org/2003/05/soap-envelope")
    );
    let header = xml::child(envelope, "Header").expect("request header");
    let action = xml::descendant(header, "Action").map(xml::text);
    if action.as_deref() != Some(op.as_str()) {
        problems.push(format!("{op}: Action header is {action:?}"));
    }
    for needed in [
        "UsernameToken",
        "Username",
        "Password",
        "Created",
        "Expires",
    ] {
        if xml::descendant(header, needed).is_none() {
            problems.push(format!("{op}: request header lacks {needed}"));
        }
    }
    let body = xml::child(envelope, "Body").expect("body");
    let call = xml::elements(body).next().expect("call");
    let (schema, ns) = types_schema(op);
    match xml::child(call, "parameters") {
        Some(params) if params.tag_name().namespace().unwrap_or("").is_empty() => {
            batches
                .entry((schema, ns, format!("{op}RequestType"), "parameters"))
                .or_default()
                .push(exchange.request[params.range()].to_string());
        }
        _ => problems.push(format!("{op}: no unqualified <parameters>")),
    }

    // The reply: a fault with a numeric code, an empty element, or a valid <returns>.
    let doc = xml::parse(&exchange.response).expect("the simulator's reply is well-formed");
    let body = xml::child(doc.root_element(), "Body").expect("reply body");
    let answer = xml::elements(body).next().expect("reply content");
    if answer.tag_name().name() == "Fault" {
        let code = xml::descendant(answer, "Detail")
            .and_then(|d| xml::child(d, "code"))
            .map(xml::text);
        if !code.is_some_and(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit())) {
            problems.push(format!("{op}: fault without a numeric Detail/code"));
        }
        return;
    }
    if answer.tag_name().name() != format!("{op}Response") {
        problems.push(format!(
            "{op}: reply element is {}",
            answer.tag_name().name()
        ));
    }
    if empty.contains(op) {
        if xml::elements(answer).next().is_some() {
            problems.push(format!("{op}: reply should be empty"));
        }
        return;
    }
    match xml::child(answer, "returns") {
        Some(returns) => batches
            .entry((schema, ns, format!("{op}ResponseType"), "returns"))
            .or_default()
            .push(exchange.response[returns.range()].to_string()),
        None => problems.push(format!("{op}: reply without <returns>")),
    }
}

fn validate(batches: &Batches) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut problems = Vec::new();
    for (index, ((schema, ns, type_name, element), fragments)) in batches.iter().enumerate() {
        let wrapper = dir.path().join(format!("wrapper{index}.xsd"));
        let location = api_dir().join("xsd").join(schema);
        std::fs::write(
            &wrapper,
            format!(
                r#"<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:t="{ns}"><xsd:import namespace="{ns}" schemaLocation="{}"/><xsd:element name="{element}" type="t:{type_name}"/></xsd:schema>"#,
                location.display()
            ),
        )
        .expect("write wrapper");
        let files: Vec<PathBuf> = fragments
            .iter()
            .enumerate()
            .map(|(n, fragment)| {
                let path = dir.path().join(format!("doc{index}-{n}.xml"));
                std::fs::write(&path, fragment).expect("write fragment");
                path
            })
            .collect();
        let output = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&wrapper)
            .args(&files)
            .output()
            .expect(
                "xmllint must be installed (Debian package libxml2-utils); .ci/run installs it",
            );
        if !output.status.success() {
            problems.push(format!(
                "{type_name}: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .filter(|l| !l.ends_with("validates"))
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
    }
    problems
}

/// Drives every operation, successes and faults, with the recorder on.
fn scenario() -> Vec<Exchange> {
    let sim = demo_sim();
    sim.record(true);
    let c = client(&sim, "takahashi");
    let (start, end) = (utc("2026-11-20T00:00:00Z"), utc("2026-12-10T00:00:00Z"));
    c.login_user_id().expect("login");
    c.users_by_login_name(&["sato", "suzuki"]).expect("users");
    c.users_by_id(&[1, 2]).expect("users");
    let users = c.user_versions(&[]).expect("user versions");
    c.user_versions(&[ItemVersion {
        id: users[0].id,
        version: 1,
    }])
    .expect("user versions");
    c.organization_versions(&[]).expect("orgs");
    c.organizations_by_id(&[1, 2]).expect("orgs");
    c.facility_versions(&[]).expect("facilities");
    c.facilities_by_id(&[1, 3]).expect("facilities");
    c.profiles().expect("profiles");
    c.events(start, end).expect("events");
    let versions = c.event_versions(start, end, &[]).expect("versions");
    let known: Vec<ItemVersion> = versions
        .iter()
        .map(|v| ItemVersion {
            id: v.id,
            version: v.version - 1,
        })
        .collect();
    c.event_versions(start, end, &known).expect("versions");
    c.events_by_id(&[1, 2, 3, 4, 5, 6, 7]).expect("by id");

    let mut banner = Event::new("Asia/Tokyo");
    banner.event_type = EventType::Banner;
    banner.detail = "展示会 & 説明会 <東京>".into();
    banner.members = vec![Member::User(1), Member::Organization(2)];
    banner.when = When::Dates(vec![DateSpan {
        start: date("2026-12-01"),
        end: date("2026-12-03"),
    }]);
    let mut timed = Event::new("Asia/Tokyo");
    timed.plan = "会議".into();
    timed.detail = "設備つき".into();
    timed.members = vec![Member::User(1), Member::Facility(2)];
    timed.when = When::Times(vec![TimeSpan {
        start: utc("2026-12-04T01:00:00Z"),
        end: Some(utc("2026-12-04T02:00:00Z")),
        facility_id: Some(2),
    }]);
    let mut series = Event::new("Asia/Tokyo");
    series.event_type = EventType::Repeat;
    series.detail = "月末締め".into();
    series.members = vec![Member::User(1), Member::User(2)];
    series.repeat = Some(RepeatInfo {
        condition: RepeatCondition {
            kind: RepeatKind::Month,
            start_date: date("2026-11-01"),
            end_date: Some(date("2027-03-31")),
            start_time: NaiveTime::from_hms_opt(17, 0, 0),
            end_time: NaiveTime::from_hms_opt(18, 0, 0),
            day: Some(0),
            week: None,
        },
        exclusions: Vec::new(),
    });
    let added = c.add_events(&[banner, timed, series]).expect("add");
    let series_id = added[2].id.expect("id");
    c.modify_event_with(added[0].id.expect("id"), |e| e.description = "追記".into())
        .expect("modify");
    c.modify_repeat_event(RepeatScope::This(date("2026-12-31")), &added[2])
        .expect("this");
    c.modify_repeat_event(RepeatScope::After(date("2027-02-28")), &added[2])
        .expect("after");
    c.modify_repeat_event(RepeatScope::All, &c.event(series_id).expect("series"))
        .expect("all");
    c.remove_from_repeat(series_id, RepeatScope::This(date("2026-11-30")))
        .expect("remove this");
    c.leave_from_repeat(5, RepeatScope::This(date("2026-12-07")))
        .expect("leave this");
    c.leave_events(&[1]).expect("leave");
    c.remove_events(&[added[1].id.expect("id")])
        .expect("remove");
    // Faults.
    let _ = c.event(4040);
    let _ = c.add_events(&[added[1].clone()]);
    sim.quirks().busy_next = 1;
    let _ = c.profiles();
    let exchanges = sim.take_exchanges();
    assert!(exchanges.len() > 25);
    exchanges
}

#[test]
fn every_request_and_reply_matches_the_office_schemas() {
    let exchanges = scenario();
    let operations: std::collections::BTreeSet<&str> =
        exchanges.iter().map(|e| e.operation.as_str()).collect();
    for needed in [
        "UtilGetLoginUserId",
        "BaseGetUsersByLoginName",
        "BaseGetUsersById",
        "BaseGetUserVersions",
        "BaseGetOrganizationVersions",
        "BaseGetOrganizationsById",
        "ScheduleGetFacilityVersions",
        "ScheduleGetFacilitiesById",
        "ScheduleGetProfiles",
        "ScheduleGetEvents",
        "ScheduleGetEventVersions",
        "ScheduleGetEventsById",
        "ScheduleAddEvents",
        "ScheduleModifyEvents",
        "ScheduleModifyRepeatEvents",
        "ScheduleRemoveEvents",
        "ScheduleRemoveEventsFromRepeatEvent",
        "ScheduleLeaveEvents",
        "ScheduleLeaveEventsFromRepeatEvent",
    ] {
        assert!(
            operations.contains(needed),
            "the scenario never called {needed}"
        );
    }
    let empty = empty_replies();
    assert!(empty.contains(&"ScheduleRemoveEvents".to_string()));
    let mut batches = Batches::new();
    let mut problems = Vec::new();
    for exchange in &exchanges {
        collect(exchange, &empty, &mut batches, &mut problems);
    }
    problems.extend(validate(&batches));
    assert!(
        problems.is_empty(),
        "schema problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_validator_catches_a_wrong_shape() {
    // A guard against a validation that passes everything: a schedule_event without its
    // required timezone and with an unknown event_type must fail.
    let mut batches = Batches::new();
    batches.insert(
        (
            "schedule-types.xsd",
            "http://wsdl.cybozu.co.jp/schedule/2008/types",
            "ScheduleGetEventsResponseType".into(),
            "returns",
        ),
        vec![
            r#"<returns><schedule_event id="1" event_type="party" version="1"/></returns>"#.into(),
        ],
    );
    assert_eq!(validate(&batches).len(), 1);
}
