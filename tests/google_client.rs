//! Every Calendar API call and token endpoint call the product makes, against the simulated
//! Google over real HTTP, each failure included.

use std::cell::Cell;

use dncs::google::{
    event_id_for, token, EventDateTime, EventStatus, GoogleError, Visibility, CALENDAR_SCOPE,
};
use dncs::sim::google::{pkce_challenge, Consent, Failure, GoogleSim};

use crate::util::{
    agent, google_calendar, google_event, location, press_consent, query_value, redirect_agent, utc,
};

const ME: &str = "taro@example.com";
const HOLIDAYS: &str = "ja.japanese#holiday@group.v.calendar.google.com";

fn sim() -> GoogleSim {
    GoogleSim::start().expect("google simulator starts")
}

fn window() -> Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    Some((utc("2026-11-01T00:00:00Z"), utc("2026-12-01T00:00:00Z")))
}

/// A one-hour event titled "A" on 2026-11-25.
fn event_a() -> dncs::google::Event {
    google_event("A", "2026-11-25T01:00:00Z", "2026-11-25T02:00:00Z")
}

fn id(event: &dncs::google::Event) -> String {
    event.id.clone().expect("event id")
}

fn count(calls: &[String], prefix: &str) -> usize {
    calls.iter().filter(|c| c.starts_with(prefix)).count()
}

#[test]
fn full_list_pages_through_small_pages_within_the_window() {
    let sim = sim();
    for day in 21..26 {
        let start = format!("2026-11-{day}T01:00:00Z");
        let end = format!("2026-11-{day}T02:00:00Z");
        sim.phone_insert(
            ME,
            "primary",
            google_event(&format!("予定{day}"), &start, &end),
        )
        .expect("arranged");
    }
    sim.phone_insert(
        ME,
        "primary",
        google_event("ずっと先", "2027-03-01T01:00:00Z", "2027-03-01T02:00:00Z"),
    )
    .expect("arranged");
    let calendar = google_calendar(&sim, ME, "primary").with_page_size(2);
    sim.take_calls();
    let listing = calendar.list_changes(None, window()).expect("full list");
    let mut titles: Vec<_> = listing
        .events
        .iter()
        .filter_map(|e| e.summary.clone())
        .collect();
    titles.sort();
    assert_eq!(titles, ["予定21", "予定22", "予定23", "予定24", "予定25"]);
    assert!(!listing.next_sync_token.is_empty());
    assert_eq!(
        sim.take_calls(),
        vec![format!("GET /calendar/v3/calendars/primary/events"); 3]
    );
}

#[test]
fn incremental_list_sees_a_phone_edit_and_a_deletion() {
    let sim = sim();
    let a = sim.phone_insert(ME, "primary", event_a()).expect("a");
    let b = sim
        .phone_insert(
            ME,
            "primary",
            google_event("B", "2026-11-26T01:00:00Z", "2026-11-26T02:00:00Z"),
        )
        .expect("b");
    let calendar = google_calendar(&sim, ME, "primary");
    let first = calendar.list_changes(None, window()).expect("full list");
    assert_eq!(first.events.len(), 2);

    let quiet = calendar
        .list_changes(Some(&first.next_sync_token), None)
        .expect("nothing changed");
    assert!(quiet.events.is_empty());

    sim.phone_edit(ME, "primary", &id(&a), |e| e.summary = Some("A'".into()))
        .expect("edited");
    sim.phone_delete(ME, "primary", &id(&b)).expect("deleted");
    let changes = calendar
        .list_changes(Some(&quiet.next_sync_token), None)
        .expect("incremental list");
    assert_eq!(changes.events.len(), 2);
    let edited = changes.events.iter().find(|e| e.id == a.id).expect("a");
    assert_eq!(edited.summary.as_deref(), Some("A'"));
    assert_ne!(edited.etag, a.etag);
    let deleted = changes.events.iter().find(|e| e.id == b.id).expect("b");
    assert_eq!(deleted.status, Some(EventStatus::Cancelled));
    assert_ne!(changes.next_sync_token, quiet.next_sync_token);

    // The full list leaves deleted events in with showDeleted=true, as cancelled.
    let again = calendar.list_changes(None, window()).expect("full list");
    assert!(again
        .events
        .iter()
        .any(|e| e.id == b.id && e.is_cancelled()));
}

#[test]
fn an_expired_sync_token_is_gone_and_a_full_list_starts_over() {
    let sim = sim();
    sim.phone_insert(ME, "primary", event_a()).expect("a");
    let calendar = google_calendar(&sim, ME, "primary");
    let first = calendar.list_changes(None, window()).expect("full list");
    sim.expire_sync_tokens();
    let err = calendar
        .list_changes(Some(&first.next_sync_token), None)
        .expect_err("expired");
    assert!(
        matches!(&err, GoogleError::Gone { reason, .. } if reason == "fullSyncRequired"),
        "{err:?}"
    );
    let unknown = calendar
        .list_changes(Some("not-a-token"), None)
        .expect_err("unknown");
    assert!(matches!(unknown, GoogleError::Gone { .. }));
    let restart = calendar.list_changes(None, window()).expect("full list");
    assert_eq!(restart.events.len(), 1);
    calendar
        .list_changes(Some(&restart.next_sync_token), None)
        .expect("the new token works");
}

#[test]
fn insert_keeps_the_client_chosen_id_and_a_second_insert_updates_it() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    let mut event = google_event("会議:定例", "2026-11-25T01:00:00Z", "2026-11-25T02:00:00Z");
    event.id = Some(event_id_for("install-1", 42));
    event.visibility = Some(Visibility::Private);
    event.set_private_property("cybozuId", "42");
    let created = calendar.insert(&event).expect("inserted");
    assert_eq!(created.id, event.id);
    assert_eq!(created.status, Some(EventStatus::Confirmed));
    assert_eq!(created.private_property("cybozuId"), Some("42"));
    assert!(created.etag.as_deref().is_some_and(|t| t.starts_with('"')));

    // A retried insert (the first answer was lost) meets 409 and updates the existing event.
    event.summary = Some("会議:定例(変更)".into());
    sim.take_calls();
    let again = calendar.insert(&event).expect("409 resolved");
    assert_eq!(again.id, event.id);
    assert_eq!(again.summary.as_deref(), Some("会議:定例(変更)"));
    assert_ne!(again.etag, created.etag);
    let path = format!("/calendar/v3/calendars/primary/events/{}", id(&event));
    assert_eq!(
        sim.take_calls(),
        vec![
            "POST /calendar/v3/calendars/primary/events".to_string(),
            format!("GET {path}"),
            format!("PUT {path}"),
        ]
    );
    assert_eq!(sim.events(ME, "primary").len(), 1, "never a duplicate");
}

#[test]
fn insert_over_an_event_deleted_on_the_phone_revives_it() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    let mut event = event_a();
    event.id = Some(event_id_for("install-1", 7));
    calendar.insert(&event).expect("inserted");
    sim.phone_delete(ME, "primary", &id(&event))
        .expect("deleted");
    assert_eq!(
        calendar.get(&id(&event)).expect("get").status,
        Some(EventStatus::Cancelled)
    );
    let revived = calendar.insert(&event).expect("revived");
    assert_eq!(revived.status, Some(EventStatus::Confirmed));
    let stored = sim.event(ME, "primary", &id(&event)).expect("stored");
    assert!(!stored.is_cancelled());
}

#[test]
fn insert_refuses_an_invalid_client_id() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    let mut event = event_a();
    event.id = Some("Not-Base32hex!".into());
    let err = calendar.insert(&event).expect_err("invalid id");
    assert!(
        matches!(&err, GoogleError::Http { status: 400, reason, .. } if reason == "invalid"),
        "{err:?}"
    );
}

#[test]
fn a_stale_etag_fails_and_update_latest_reapplies_the_change() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    let created = calendar.insert(&event_a()).expect("inserted");
    let stale = created.etag.clone().expect("etag");
    sim.phone_edit(ME, "primary", &id(&created), |e| {
        e.location = Some("会議室".into())
    })
    .expect("phone edit");
    let mut change = created.clone();
    change.summary = Some("B".into());
    let err = calendar.update(&change, &stale).expect_err("stale etag");
    assert!(matches!(err, GoogleError::PreconditionFailed), "{err:?}");

    // The phone edits again between update_latest's read and write: one re-read settles it.
    let applied = Cell::new(0);
    let updated = calendar
        .update_latest(&id(&created), |event| {
            applied.set(applied.get() + 1);
            if applied.get() == 1 {
                sim.phone_edit(ME, "primary", &id(&created), |e| {
                    e.description = Some("phone".into())
                })
                .expect("racing edit");
            }
            event.summary = Some("B".into());
        })
        .expect("updated");
    assert_eq!(applied.get(), 2);
    assert_eq!(updated.summary.as_deref(), Some("B"));
    assert_eq!(
        updated.location.as_deref(),
        Some("会議室"),
        "the phone's edit kept"
    );
    assert_eq!(updated.description.as_deref(), Some("phone"));

    let current = calendar.get(&id(&created)).expect("get");
    let mut write = current.clone();
    write.summary = Some("C".into());
    let fresh = calendar
        .update(&write, current.etag.as_deref().expect("etag"))
        .expect("fresh etag");
    assert_eq!(fresh.summary.as_deref(), Some("C"));
}

#[test]
fn update_keeps_the_fields_the_sync_does_not_read() {
    let sim = sim();
    let mut phone = event_a();
    phone.preserved.insert(
        "reminders".into(),
        serde_json::json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 30}]}),
    );
    let created = sim.phone_insert(ME, "primary", phone).expect("phone");
    let calendar = google_calendar(&sim, ME, "primary");
    let updated = calendar
        .update_latest(&id(&created), |e| e.summary = Some("B".into()))
        .expect("updated");
    assert_eq!(
        updated.preserved["reminders"]["overrides"][0]["minutes"],
        30
    );
}

#[test]
fn delete_then_delete_again_is_fine_and_a_stale_etag_is_refused() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    let created = calendar.insert(&event_a()).expect("inserted");
    sim.phone_edit(ME, "primary", &id(&created), |e| {
        e.summary = Some("B".into())
    })
    .expect("edit");
    let err = calendar
        .delete(&id(&created), created.etag.as_deref())
        .expect_err("stale etag");
    assert!(matches!(err, GoogleError::PreconditionFailed));
    sim.take_calls();
    calendar.delete(&id(&created), None).expect("deleted");
    calendar
        .delete(&id(&created), None)
        .expect("410 counts as deleted");
    calendar
        .delete("nosuchevent1", None)
        .expect("404 counts as deleted");
    assert_eq!(count(&sim.take_calls(), "DELETE "), 3);
    assert!(sim
        .event(ME, "primary", &id(&created))
        .expect("kept")
        .is_cancelled());
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    for failure in [
        Failure::RateLimitExceeded,
        Failure::UserRateLimitExceeded,
        Failure::TooManyRequests,
        Failure::InternalError,
        Failure::Unavailable,
    ] {
        sim.quirks().fail_next(failure, 2);
        sim.quirks().retry_after = Some(1);
        sim.take_calls();
        calendar
            .list_changes(None, window())
            .unwrap_or_else(|e| panic!("{failure:?} retried: {e}"));
        assert_eq!(sim.take_calls().len(), 3, "{failure:?}");
    }
}

#[test]
fn persistent_rate_limits_and_server_errors_give_up() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    sim.quirks().fail_next(Failure::UserRateLimitExceeded, 10);
    let err = calendar.get("abcdefgh").expect_err("persistent");
    assert!(
        matches!(&err, GoogleError::RateLimited { reason, attempts: 5 } if reason == "userRateLimitExceeded"),
        "{err:?}"
    );
    sim.quirks().fail_next.clear();
    sim.quirks().fail_next(Failure::TooManyRequests, 10);
    assert!(matches!(
        calendar.get("abcdefgh"),
        Err(GoogleError::RateLimited { .. })
    ));
    sim.quirks().fail_next.clear();
    sim.quirks().fail_next(Failure::Unavailable, 10);
    let err = calendar.get("abcdefgh").expect_err("persistent");
    assert!(
        matches!(err, GoogleError::Http { status: 503, .. }),
        "{err:?}"
    );
    sim.quirks().fail_next.clear();
}

#[test]
fn other_refusals_are_not_retried() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    sim.quirks().raw_replies.push((
        403,
        r#"{"error":{"errors":[{"domain":"calendar","reason":"forbiddenForNonOrganizer","message":"Forbidden"}],"code":403,"message":"Forbidden"}}"#.into(),
    ));
    sim.take_calls();
    let err = calendar.get("abcdefgh").expect_err("forbidden");
    assert!(
        matches!(&err, GoogleError::Forbidden { reason, .. } if reason == "forbiddenForNonOrganizer"),
        "{err:?}"
    );
    assert_eq!(sim.take_calls().len(), 1);
    assert!(matches!(
        calendar.get("abcdefgh"),
        Err(GoogleError::NotFound { .. })
    ));
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    sim.quirks().raw_replies.push((200, "{\"items\": [".into()));
    let err = calendar
        .list_changes(None, window())
        .expect_err("malformed");
    assert!(matches!(err, GoogleError::Malformed { .. }), "{err:?}");
    sim.quirks()
        .raw_replies
        .push((200, r#"{"items": [], "nextPageToken": ""}"#.into()));
    let err = calendar
        .list_changes(None, window())
        .expect_err("no sync token");
    assert!(matches!(err, GoogleError::Malformed { .. }), "{err:?}");
    sim.quirks()
        .raw_replies
        .push((200, r#"{"id": 5, "summary": []}"#.into()));
    assert!(matches!(
        calendar.get("abcdefgh"),
        Err(GoogleError::Malformed { .. })
    ));
    sim.quirks()
        .raw_replies
        .push((200, "<html>captive portal</html>".into()));
    let err = token::refresh(
        &agent(),
        &sim.token_url(),
        sim.client_id(),
        sim.client_secret(),
        "x",
        utc("2026-11-25T00:00:00Z"),
    )
    .expect_err("malformed token reply");
    assert!(matches!(err, GoogleError::Malformed { .. }), "{err:?}");
}

#[test]
fn calendar_ids_with_at_and_hash_and_unknown_calendars() {
    let sim = sim();
    sim.add_calendar(ME, HOLIDAYS);
    let holidays = google_calendar(&sim, ME, HOLIDAYS);
    let mut event = google_event("祝日", "2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z");
    event.start = Some(EventDateTime::from_date(crate::util::date("2026-11-23")));
    event.end = Some(EventDateTime::from_date(crate::util::date("2026-11-24")));
    let created = holidays
        .insert(&event)
        .expect("inserted in a calendar id with # and @");
    assert_eq!(sim.events(ME, HOLIDAYS).len(), 1);
    assert_eq!(
        holidays.get(&id(&created)).expect("get").summary,
        event.summary
    );

    // `primary` and the account's address are one calendar.
    let by_address = google_calendar(&sim, ME, ME);
    let primary = google_calendar(&sim, ME, "primary");
    primary.insert(&event_a()).expect("inserted");
    assert_eq!(
        by_address
            .list_changes(None, window())
            .expect("list")
            .events
            .len(),
        1
    );

    let other = google_calendar(&sim, "hanako@example.com", HOLIDAYS);
    assert!(matches!(
        other.list_changes(None, window()),
        Err(GoogleError::NotFound { .. })
    ));
}

#[test]
fn an_expired_or_unknown_access_token_is_unauthorized() {
    let sim = sim();
    let calendar = google_calendar(&sim, ME, "primary");
    sim.expire_access_tokens();
    let err = calendar.list_changes(None, window()).expect_err("expired");
    assert!(matches!(err, GoogleError::Unauthorized { .. }), "{err:?}");
    let stranger = dncs::google::Calendar::new(agent(), &sim.api_base(), "primary", "ya29.fake");
    assert!(matches!(
        stranger.get("abcdefgh"),
        Err(GoogleError::Unauthorized { .. })
    ));
}

#[test]
fn refresh_gives_a_working_access_token_until_revoked() {
    let sim = sim();
    let refresh_token = sim.issue_refresh_token(ME);
    let now = utc("2026-11-25T01:00:00Z");
    let access = token::refresh(
        &agent(),
        &sim.token_url(),
        sim.client_id(),
        sim.client_secret(),
        &refresh_token,
        now,
    )
    .expect("refreshed");
    assert_eq!(access.expires_at, utc("2026-11-25T01:59:59Z"));
    let calendar = dncs::google::Calendar::new(agent(), &sim.api_base(), "primary", &access.token);
    calendar
        .list_changes(None, window())
        .expect("the token works");

    let wrong_client = token::refresh(
        &agent(),
        &sim.token_url(),
        sim.client_id(),
        "wrong-secret",
        &refresh_token,
        now,
    )
    .expect_err("wrong secret");
    assert!(
        matches!(&wrong_client, GoogleError::Http { status: 401, reason, .. } if reason == "invalid_client"),
        "{wrong_client:?}"
    );
    assert!(!wrong_client.needs_relink());

    sim.revoke(&refresh_token);
    let err = token::refresh(
        &agent(),
        &sim.token_url(),
        sim.client_id(),
        sim.client_secret(),
        &refresh_token,
        now,
    )
    .expect_err("revoked");
    assert!(err.needs_relink(), "{err:?}");
    assert!(matches!(
        calendar.list_changes(None, window()),
        Err(GoogleError::Unauthorized { .. })
    ));
}

const REDIRECT: &str = "https://relay.example.com/dncs-relay.html";
const VERIFIER: &str = "a-pkce-verifier-of-forty-three-characters-or-more-0123";

fn auth_request_url(sim: &GoogleSim) -> String {
    let q = dncs::google::encode_component;
    format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&scope={}&state={}&code_challenge={}&code_challenge_method=S256&access_type=offline&prompt=consent&login_hint={}",
        sim.auth_url(),
        q(sim.client_id()),
        q(REDIRECT),
        q(CALENDAR_SCOPE),
        q("signed.state"),
        q(&pkce_challenge(VERIFIER)),
        q(ME),
    )
}

/// Opens the consent page, presses a button, and returns the redirect's `Location`.
fn consent(sim: &GoogleSim, decision: &str) -> String {
    press_consent(sim, &auth_request_url(sim), decision)
}

fn exchange(
    sim: &GoogleSim,
    code: &str,
    redirect: &str,
    verifier: &str,
) -> Result<token::TokenSet, GoogleError> {
    token::exchange_code(
        &agent(),
        &sim.token_url(),
        sim.client_id(),
        sim.client_secret(),
        code,
        redirect,
        verifier,
        utc("2026-11-25T01:00:00Z"),
    )
}

#[test]
fn consent_then_code_exchange_with_pkce() {
    let sim = sim();
    let location = consent(&sim, "allow");
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    assert_eq!(
        query_value(&location, "state").as_deref(),
        Some("signed.state")
    );
    let code = query_value(&location, "code").expect("code");
    let tokens = exchange(&sim, &code, REDIRECT, VERIFIER).expect("exchanged");
    assert!(!tokens.refresh_token.is_empty());
    let calendar =
        dncs::google::Calendar::new(agent(), &sim.api_base(), "primary", &tokens.access.token);
    calendar.list_changes(None, window()).expect("works");
    // The refresh token belongs to the account that consented.
    token::refresh(
        &agent(),
        &sim.token_url(),
        sim.client_id(),
        sim.client_secret(),
        &tokens.refresh_token,
        utc("2026-11-25T02:00:00Z"),
    )
    .expect("refresh");
    // A code is single-use.
    let reused = exchange(&sim, &code, REDIRECT, VERIFIER).expect_err("reused");
    assert!(reused.needs_relink(), "{reused:?}");
}

#[test]
fn code_exchange_with_a_wrong_verifier_or_redirect_uri_fails() {
    let sim = sim();
    let code = query_value(&consent(&sim, "allow"), "code").expect("code");
    let err = exchange(
        &sim,
        &code,
        REDIRECT,
        "not-the-verifier-used-for-the-challenge-xx",
    )
    .expect_err("wrong verifier");
    assert!(matches!(err, GoogleError::InvalidGrant { .. }), "{err:?}");

    let code = query_value(&consent(&sim, "allow"), "code").expect("code");
    let err =
        exchange(&sim, &code, "https://evil.example.com/cb", VERIFIER).expect_err("wrong redirect");
    assert!(
        matches!(&err, GoogleError::Http { status: 400, reason, .. } if reason == "redirect_uri_mismatch"),
        "{err:?}"
    );
}

#[test]
fn consent_denied_or_blocked_by_policy() {
    let sim = sim();
    let denied = consent(&sim, "deny");
    assert_eq!(
        query_value(&denied, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_value(&denied, "state").as_deref(),
        Some("signed.state")
    );
    assert!(query_value(&denied, "code").is_none());

    for (policy, status, word) in [
        (Consent::AdminPolicyEnforced, 400, "admin_policy_enforced"),
        (Consent::OrgInternal, 403, "org_internal"),
    ] {
        sim.set_consent(policy);
        let mut page = redirect_agent()
            .get(&auth_request_url(&sim))
            .call()
            .expect("page");
        assert_eq!(page.status(), status);
        assert!(page
            .body_mut()
            .read_to_string()
            .expect("html")
            .contains(word));
    }

    sim.set_consent(Consent::Allow);
    let reply = redirect_agent()
        .get(&auth_request_url(&sim))
        .call()
        .expect("redirect");
    assert_eq!(reply.status(), 302);
    assert!(query_value(&location(&reply), "code").is_some());
}
