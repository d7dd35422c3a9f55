//! Helpers shared by the integration tests.

use std::time::Duration;

use dncs::cybozu::{Client, Credentials};
use dncs::http::{AgentSettings, RetryPolicy};
use dncs::sim::cybozu::{seed, CybozuSim};

/// A simulator with the demo company around a fixed week.
pub fn demo_sim() -> CybozuSim {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    CybozuSim::start(seed::demo(today)).expect("simulator starts")
}

/// A simulator with the staff but no events.
pub fn empty_sim() -> CybozuSim {
    CybozuSim::start(seed::staff()).expect("simulator starts")
}

pub fn agent() -> ureq::Agent {
    dncs::http::agent(&AgentSettings {
        connect_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(20),
        proxy: None,
    })
    .expect("agent")
}

/// A client for a demo login (the password equals the login) with quick retries.
pub fn client(sim: &CybozuSim, login: &str) -> Client {
    Client::new(
        &sim.url(),
        agent(),
        Credentials {
            login: login.into(),
            password: login.into(),
        },
    )
    .with_retry(RetryPolicy::quick())
}

pub fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("test time")
        .with_timezone(&chrono::Utc)
}

pub fn date(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

/// A Google simulator and a Calendar client on `account`'s `calendar_id`, with quick retries.
pub fn google_calendar(
    sim: &dncs::sim::google::GoogleSim,
    account: &str,
    calendar_id: &str,
) -> dncs::google::Calendar {
    let token = sim.issue_access_token(account);
    dncs::google::Calendar::new(agent(), &sim.api_base(), calendar_id, &token)
        .with_retry(RetryPolicy::quick())
}

/// A timed Google event in Asia/Tokyo.
pub fn google_event(summary: &str, start: &str, end: &str) -> dncs::google::Event {
    dncs::google::Event {
        summary: Some(summary.into()),
        start: Some(dncs::google::EventDateTime::from_date_time(
            utc(start),
            Some("Asia/Tokyo"),
        )),
        end: Some(dncs::google::EventDateTime::from_date_time(
            utc(end),
            Some("Asia/Tokyo"),
        )),
        ..dncs::google::Event::default()
    }
}
