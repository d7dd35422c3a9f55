//! The client survives every misbehaviour the simulator can show, and turns malformed replies
//! into typed errors, never a panic.

use std::time::Duration;

use dncs::cybozu::{Client, Credentials, CybozuError};
use dncs::http::{AgentSettings, RetryPolicy};

use crate::util::{client, demo_sim, utc};

fn window(c: &Client) -> Result<Vec<dncs::cybozu::Event>, CybozuError> {
    c.events(utc("2026-11-20T00:00:00Z"), utc("2026-12-10T00:00:00Z"))
}

#[test]
fn a_busy_server_is_retried_until_it_answers() {
    let sim = demo_sim();
    sim.quirks().busy_next = 3;
    let events = window(&client(&sim, "takahashi")).expect("answered after three busy faults");
    assert!(!events.is_empty());
    let calls = sim.take_calls();
    assert_eq!(
        calls.len(),
        4,
        "three busy answers and one real one: {calls:?}"
    );
}

#[test]
fn a_server_that_stays_busy_gives_a_busy_error() {
    let sim = demo_sim();
    sim.quirks().busy_next = 100;
    let err = window(&client(&sim, "takahashi")).expect_err("still busy");
    match err {
        CybozuError::Busy { attempts, .. } => assert_eq!(attempts, RetryPolicy::quick().attempts),
        other => panic!("expected Busy, got {other}"),
    }
}

#[test]
fn control_characters_in_text_are_stripped() {
    let sim = demo_sim();
    sim.quirks().control_chars = true;
    let events = window(&client(&sim, "takahashi")).expect("parsed despite control characters");
    let kickoff = events
        .iter()
        .find(|e| e.detail.contains("キックオフ"))
        .expect("kickoff");
    assert_eq!(kickoff.detail, "新製品キックオフ");
    assert!(events
        .iter()
        .all(|e| !e.description.chars().any(|c| c == '\u{1}' || c == '\u{b}')));
}

#[test]
fn repeats_listed_per_occurrence_are_folded_into_one_series() {
    let sim = demo_sim();
    sim.quirks().repeat_per_occurrence = true;
    let events = window(&client(&sim, "takahashi")).expect("events");
    let weekly: Vec<_> = events.iter().filter(|e| e.detail == "週次定例").collect();
    assert_eq!(weekly.len(), 1, "one series, not one per Monday");
    assert!(weekly[0].repeat.is_some());
    // The raw reply really did hold several copies.
    sim.record(true);
    window(&client(&sim, "takahashi")).expect("events");
    let reply = &sim.take_exchanges()[0].response;
    assert!(reply.matches("週次定例").count() >= 2);
}

#[test]
fn faults_are_typed_whatever_status_and_content_type_carry_them() {
    for (status, text_xml) in [(500, false), (200, false), (500, true), (200, true)] {
        let sim = demo_sim();
        {
            let mut q = sim.quirks();
            q.fault_status = status;
            q.fault_as_text_xml = text_xml;
        }
        let err = client(&sim, "takahashi").event(4040).expect_err("missing");
        assert!(
            err.is_no_such_event(),
            "status {status}, text/xml {text_xml}: {err}"
        );
    }
}

#[test]
fn office_10_8_login_failures_are_login_failures() {
    let sim = demo_sim();
    sim.quirks().login_failed_code = 10101;
    let c = Client::new(
        &sim.url(),
        crate::util::agent(),
        Credentials {
            login: "sato".into(),
            password: "wrong".into(),
        },
    );
    assert!(c.login_user_id().expect_err("refused").is_login_failure());
}

#[test]
fn injected_faults_reach_the_caller() {
    let sim = demo_sim();
    sim.quirks()
        .fail_next
        .push(("ScheduleGetEvents".into(), 19106));
    let err = window(&client(&sim, "takahashi")).expect_err("injected");
    assert_eq!(err.fault_kind(), Some(dncs::cybozu::FaultKind::BadValue));
    assert!(
        window(&client(&sim, "takahashi")).is_ok(),
        "only the next call fails"
    );
}

#[test]
fn latency_is_tolerated_and_a_hung_server_times_out() {
    let sim = demo_sim();
    sim.quirks().latency = Duration::from_millis(300);
    assert!(window(&client(&sim, "takahashi")).is_ok());

    sim.quirks().latency = Duration::from_secs(3);
    let impatient = dncs::http::agent(&AgentSettings {
        connect_timeout: Duration::from_secs(1),
        call_timeout: Duration::from_millis(500),
        proxy: None,
    })
    .expect("agent");
    let c = Client::new(
        &sim.url(),
        impatient,
        Credentials {
            login: "takahashi".into(),
            password: "takahashi".into(),
        },
    )
    .with_retry(RetryPolicy {
        attempts: 1,
        ..RetryPolicy::quick()
    });
    assert!(matches!(window(&c), Err(CybozuError::Transport { .. })));
}

fn reply_with(status: u16, body: String) -> CybozuError {
    let sim = demo_sim();
    sim.quirks().raw_replies.push((status, body));
    let c = client(&sim, "takahashi").with_retry(RetryPolicy {
        attempts: 1,
        ..RetryPolicy::quick()
    });
    window(&c).expect_err("a malformed reply must fail")
}

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><schedule:ScheduleGetEventsResponse xmlns:schedule="http://wsdl.cybozu.co.jp/schedule/2008"><returns>"#;
const TAIL: &str = "</returns></schedule:ScheduleGetEventsResponse></soap:Body></soap:Envelope>";

#[test]
fn truncated_xml_is_malformed() {
    let body = format!("{HEAD}<schedule_event id=\"1\" event_type=\"normal\" vers");
    assert!(matches!(
        reply_with(200, body),
        CybozuError::Malformed { .. }
    ));
}

#[test]
fn wrong_types_are_malformed() {
    for event in [
        r#"<schedule_event id="one" event_type="normal" version="1" timezone="Asia/Tokyo"/>"#,
        r#"<schedule_event id="1" event_type="party" version="1" timezone="Asia/Tokyo"/>"#,
        r#"<schedule_event id="1" event_type="normal" version="1" timezone="Asia/Tokyo"><when xmlns="http://schemas.cybozu.co.jp/schedule/2008"><datetime start="tomorrow"/></when></schedule_event>"#,
        r#"<schedule_event id="1" event_type="normal" version="1" timezone="Asia/Tokyo" allday="maybe"/>"#,
        r#"<schedule_event id="1" event_type="repeat" version="1" timezone="Asia/Tokyo"><repeat_info xmlns="http://schemas.cybozu.co.jp/schedule/2008"><condition type="week" start_date="2026-13-40"/></repeat_info></schedule_event>"#,
        r#"<schedule_event event_type="normal" version="1" timezone="Asia/Tokyo"/>"#,
    ] {
        let err = reply_with(200, format!("{HEAD}{event}{TAIL}"));
        assert!(
            matches!(err, CybozuError::Malformed { .. }),
            "{event}: {err}"
        );
    }
}

#[test]
fn huge_attributes_do_not_break_the_client() {
    let huge = "あ".repeat(2_000_000);
    let event = format!(
        r#"<schedule_event id="1" event_type="normal" version="1" timezone="Asia/Tokyo" detail="{huge}"><when xmlns="http://schemas.cybozu.co.jp/schedule/2008"><datetime start="2026-11-25T01:00:00Z" end="2026-11-25T02:00:00Z"/></when></schedule_event>"#
    );
    let sim = demo_sim();
    sim.quirks()
        .raw_replies
        .push((200, format!("{HEAD}{event}{TAIL}")));
    let events = window(&client(&sim, "takahashi")).expect("a long title is still a title");
    assert_eq!(events[0].detail.chars().count(), 2_000_000);

    let huge_id = "9".repeat(1_000_000);
    let event = format!(
        r#"<schedule_event id="{huge_id}" event_type="normal" version="1" timezone="Asia/Tokyo"/>"#
    );
    let err = reply_with(200, format!("{HEAD}{event}{TAIL}"));
    assert!(matches!(err, CybozuError::Malformed { .. }));
    assert!(err.to_string().len() < 500, "the message stays readable");
}

#[test]
fn other_bodies_are_typed_errors() {
    assert!(matches!(
        reply_with(502, "<html><body>Bad Gateway".into()),
        CybozuError::Http { status: 502, .. }
    ));
    assert!(matches!(
        reply_with(200, String::new()),
        CybozuError::Malformed { .. }
    ));
    assert!(matches!(
        reply_with(200, "not xml at all".into()),
        CybozuError::Malformed { .. }
    ));
    let wrong_operation = format!(
        "{}{TAIL}",
        HEAD.replace("ScheduleGetEventsResponse", "ScheduleAddEventsResponse")
    )
    .replace(
        "</schedule:ScheduleGetEventsResponse>",
        "</schedule:ScheduleAddEventsResponse>",
    );
    assert!(matches!(
        reply_with(200, wrong_operation),
        CybozuError::Malformed { .. }
    ));
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbbbbbbbb"><!ENTITY c "&b;&b;&b;&b;&b;&b;">]><a>&c;</a>"#;
    assert!(matches!(
        reply_with(200, bomb.into()),
        CybozuError::Malformed { .. }
    ));
    let fault_without_code = r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault><soap:Reason><soap:Text>?</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>"#;
    assert!(matches!(
        reply_with(500, fault_without_code.into()),
        CybozuError::Fault { .. }
    ));
}

#[test]
fn an_unreachable_server_is_a_transport_error() {
    let c = Client::new(
        "http://127.0.0.1:9/cgi-bin/cbag/ag.cgi",
        crate::util::agent(),
        Credentials {
            login: "x".into(),
            password: "y".into(),
        },
    )
    .with_retry(RetryPolicy::quick());
    assert!(matches!(
        c.login_user_id(),
        Err(CybozuError::Transport { .. })
    ));
}
