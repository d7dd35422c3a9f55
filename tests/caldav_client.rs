//! The CalDAV client against a real Radicale (from PyPI), started per test on a free loopback
//! port with its own storage, and the sync engine against Radicale and Xandikos; each skipped
//! with a message when its server is not installed.

use std::process::Command;

use dncs::caldav::{Account, CalDavError, Client};

use crate::caldav_harness::{
    caldav_install, calendar_events, event, python_has, sync_pass, DavServer, NoSyncProxy,
    Radicale, Xandikos, PASSWORD, USER,
};
use crate::util::{agent, utc};

#[test]
fn discovery_from_the_server_root_and_from_the_calendar() {
    let Some(server) = Radicale::start() else {
        return;
    };
    let found = server.client(&server.root()).discover().expect("from root");
    let work = found
        .iter()
        .find(|c| c.url.trim_end_matches('/') == server.calendar().trim_end_matches('/'))
        .expect("the Work calendar is listed");
    assert_eq!(work.display_name.as_deref(), Some("Work"));
    assert!(work.supports_sync);
    assert!(work.ctag.is_some());

    let direct = server
        .client(&server.calendar())
        .discover()
        .expect("from the calendar URL");
    assert_eq!(direct.len(), 1);
    assert_eq!(direct[0].display_name.as_deref(), Some("Work"));

    // A URL the server does not know: found again through /.well-known/caldav and its redirect.
    let unknown = format!("{}alice/nowhere/", server.root());
    let via_well_known = server.client(&unknown).discover().expect("via .well-known");
    assert!(via_well_known
        .iter()
        .any(|c| c.display_name.as_deref() == Some("Work")));
}

#[test]
fn a_redirect_to_another_host_is_not_followed() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("tiny_http");
    let port = server.server_addr().to_ip().expect("ip").port();
    let handle = std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok(request) = server.recv() else { return };
            let response = if request.url().starts_with("/.well-known/") {
                let location =
                    tiny_http::Header::from_bytes("Location", "https://elsewhere.example/dav/")
                        .expect("header");
                tiny_http::Response::from_string("")
                    .with_status_code(301)
                    .with_header(location)
            } else {
                tiny_http::Response::from_string("no").with_status_code(404)
            };
            let _ = request.respond(response);
        }
    });
    let client = Client::new(
        agent(),
        Account {
            base_url: format!("http://127.0.0.1:{port}/"),
            username: USER.into(),
            password: PASSWORD.into(),
        },
    );
    let found = client.discover();
    assert!(
        matches!(&found, Err(CalDavError::Redirect { location, .. }) if location.contains("elsewhere")),
        "{found:?}"
    );
    handle.join().expect("server thread");
}

#[test]
fn create_update_delete_with_preconditions() {
    let Some(server) = Radicale::start() else {
        return;
    };
    let client = server.client(&server.root());
    let cal = server.calendar();
    let ics = event("one@dncs", "First", "20261125T090000Z");
    let created = client.create(&cal, "one.ics", &ics).expect("create");
    assert_eq!(created.href, "/alice/work/one.ics");
    assert!(!created.etag.is_empty());
    let again = client.create(&cal, "one.ics", &ics);
    assert!(
        matches!(again, Err(CalDavError::PreconditionFailed)),
        "{again:?}"
    );

    let changed = event("one@dncs", "Changed", "20261125T090000Z");
    let updated = client
        .update(&created.href, &changed, &created.etag)
        .expect("update with the current etag");
    assert_ne!(updated.etag, created.etag);
    let stale = client.update(&created.href, &changed, &created.etag);
    assert!(
        matches!(stale, Err(CalDavError::PreconditionFailed)),
        "{stale:?}"
    );

    let stale_delete = client.delete(&created.href, Some(&created.etag));
    assert!(matches!(stale_delete, Err(CalDavError::PreconditionFailed)));
    client
        .delete(&created.href, Some(&updated.etag))
        .expect("delete");
    client.delete(&created.href, None).expect("delete again");
}

#[test]
fn sync_collection_follows_other_clients() {
    let Some(server) = Radicale::start() else {
        return;
    };
    let client = server.client(&server.calendar());
    let cal = server.calendar();
    let a = client
        .create(&cal, "a.ics", &event("a@dncs", "A", "20261125T090000Z"))
        .expect("a");
    let b = client
        .create(&cal, "b.ics", &event("b@dncs", "B", "20261126T090000Z"))
        .expect("b");

    let first = client.sync_collection(&cal, None).expect("from scratch");
    let mut hrefs: Vec<&str> = first.changed.iter().map(|(h, _)| h.as_str()).collect();
    hrefs.sort();
    assert_eq!(hrefs, [a.href.as_str(), b.href.as_str()]);
    assert!(first.removed.is_empty());
    assert!(!first.token.is_empty());

    // Another client changes A and deletes B.
    let put = server.raw(
        "PUT",
        &a.href,
        &[("Content-Type", "text/calendar")],
        &event("a@dncs", "A changed", "20261125T100000Z"),
    );
    assert!((200..300).contains(&put), "{put}");
    assert_eq!(server.raw("DELETE", &b.href, &[], ""), 200);

    let next = client
        .sync_collection(&cal, Some(&first.token))
        .expect("incremental");
    assert_eq!(next.changed.len(), 1);
    assert_eq!(next.changed[0].0, a.href);
    assert_ne!(next.changed[0].1, a.etag);
    assert_eq!(next.removed, std::slice::from_ref(&b.href));
    assert_ne!(next.token, first.token);

    let garbage = client.sync_collection(&cal, Some("http://radicale.org/ns/sync/nonsense"));
    assert!(
        matches!(garbage, Err(CalDavError::SyncTokenInvalid)),
        "{garbage:?}"
    );
}

#[test]
fn list_etags_in_a_window_and_multiget() {
    let Some(server) = Radicale::start() else {
        return;
    };
    let client = server.client(&server.calendar());
    let cal = server.calendar();
    let inside = client
        .create(
            &cal,
            "in.ics",
            &event("in@dncs", "Inside", "20261125T090000Z"),
        )
        .expect("inside");
    let outside = client
        .create(
            &cal,
            "out.ics",
            &event("out@dncs", "Outside", "20270301T090000Z"),
        )
        .expect("outside");

    let all = client.list_etags(&cal, None).expect("all");
    assert_eq!(all.len(), 2);
    let window = (utc("2026-11-01T00:00:00Z"), utc("2026-12-01T00:00:00Z"));
    let listed = client.list_etags(&cal, Some(window)).expect("window");
    assert_eq!(listed, [(inside.href.clone(), inside.etag.clone())]);

    let hrefs = [
        inside.href.clone(),
        outside.href.clone(),
        "/alice/work/missing.ics".into(),
    ];
    let mut read = client.multiget(&cal, &hrefs).expect("multiget");
    read.sort_by(|x, y| x.href.cmp(&y.href));
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].href, inside.href);
    assert_eq!(read[0].etag, inside.etag);
    assert!(read[0].ics.contains("SUMMARY:Inside"));
    assert!(read[1].ics.contains("UID:out@dncs"));
}

#[test]
fn refusals_are_typed() {
    let Some(server) = Radicale::start() else {
        return;
    };
    let wrong = server
        .client_with(&server.calendar(), "not the password")
        .discover();
    assert!(matches!(wrong, Err(CalDavError::Unauthorized)), "{wrong:?}");

    let client = server.client(&server.root());
    let missing = format!("{}alice/nowhere/", server.root());
    let ctag = client.ctag(&missing);
    assert!(
        matches!(ctag, Err(CalDavError::NotFound { .. })),
        "{ctag:?}"
    );
    let listed = client.list_etags(&missing, None);
    assert!(
        matches!(listed, Err(CalDavError::NotFound { .. })),
        "{listed:?}"
    );
}

#[test]
fn a_malformed_multistatus_is_malformed() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("tiny_http");
    let port = server.server_addr().to_ip().expect("ip").port();
    let handle = std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok(request) = server.recv() else { return };
            let body = if request.url().contains("cut") {
                "<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>/x"
            } else {
                "<html><body>Welcome</body></html>"
            };
            let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(207));
        }
    });
    let client = Client::new(
        agent(),
        Account {
            base_url: format!("http://127.0.0.1:{port}/cal/"),
            username: USER.into(),
            password: PASSWORD.into(),
        },
    );
    let cut = client.sync_collection(&format!("http://127.0.0.1:{port}/cut/"), None);
    assert!(matches!(cut, Err(CalDavError::Malformed(_))), "{cut:?}");
    let html = client.ctag(&format!("http://127.0.0.1:{port}/cal/"));
    assert!(matches!(html, Err(CalDavError::Malformed(_))), "{html:?}");
    handle.join().expect("server thread");
}

// The sync engine with CalDAV as the target ------------------------------------------------------

/// The real `dncs-sync run --user takahashi` between the demo company and `server`'s calendar:
/// the first pass copies every Cybozu event once; another client's new event, edit and deletion
/// reach Cybozu on the second; a third finds nothing to do.
fn copies_both_ways_and_then_rests(server: &dyn DavServer) {
    let cybozu = crate::util::demo_sim();
    let install = caldav_install(server, &cybozu, "");
    sync_pass(&install);
    let mut mine: Vec<String> = cybozu
        .company()
        .events_of(1)
        .map(dncs::cybozu::Event::display_title)
        .collect();
    mine.sort();
    let mut copied: Vec<String> = calendar_events(server).into_iter().map(|e| e.2).collect();
    copied.sort();
    assert_eq!(
        copied, mine,
        "each Cybozu event once in the CalDAV calendar"
    );

    // Another client: a new event, an edit of a copy, a deletion of a copy.
    server.put_new(
        "phone-1.ics",
        &event("phone-1", "歯医者", "20261127T000000Z"),
    );
    let events = calendar_events(server);
    let kickoff = events
        .iter()
        .find(|e| e.2 == "会議:新製品キックオフ")
        .expect("kickoff copy");
    let edited = kickoff.3.replace(
        "SUMMARY:会議:新製品キックオフ",
        "SUMMARY:会議:新製品キックオフ（延期）",
    );
    server.put(&kickoff.0, &kickoff.1, &edited);
    let call = events
        .iter()
        .find(|e| e.2 == "顧客へ電話")
        .expect("call copy");
    server.delete(&call.0);

    sync_pass(&install);
    let company = cybozu.company();
    let titles: Vec<String> = company
        .events_of(1)
        .map(dncs::cybozu::Event::display_title)
        .collect();
    assert!(titles.contains(&"歯医者".to_string()), "{titles:?}");
    assert!(
        titles.contains(&"会議:新製品キックオフ（延期）".to_string()),
        "{titles:?}"
    );
    assert!(!titles.contains(&"顧客へ電話".to_string()), "{titles:?}");
    let dentist = company
        .events_of(1)
        .find(|e| e.detail == "歯医者")
        .expect("arrived");
    assert!(dentist.public_type.is_private());
    drop(company);

    // A third pass finds nothing to do: no new 同期履歴 row.
    let store = dncs::store::open_data_folder(&install.path().join("data")).expect("data");
    let before = store.history_page(1, 0, 50).expect("history").total;
    sync_pass(&install);
    assert_eq!(store.history_page(1, 0, 50).expect("history").total, before);
}

#[test]
fn sync_with_radicale_copies_both_ways_and_then_rests() {
    let Some(radicale) = Radicale::start() else {
        return;
    };
    copies_both_ways_and_then_rests(&radicale);
}

#[test]
fn the_settings_screen_checks_a_caldav_calendar_before_saving_it() {
    let Some(radicale) = Radicale::start() else {
        return;
    };
    let site = crate::harness::Site::new();
    let mut browser = site.user("takahashi");
    let refused = browser.save_settings(&[
        ("target", "caldav"),
        ("caldav_url", &radicale.calendar()),
        ("caldav_user", USER),
        ("caldav_password", "not the password"),
    ]);
    assert_eq!(refused.status(), 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("ユーザー名またはパスワードを受け付けませんでした"),
        "{}",
        refused.body
    );
    let saved = browser.save_settings(&[
        ("target", "caldav"),
        ("caldav_url", &radicale.calendar()),
        ("caldav_user", USER),
        ("caldav_password", PASSWORD),
    ]);
    assert_eq!(saved.status(), 303, "{}", saved.body);
    let page = browser.follow(&saved);
    assert!(
        page.body
            .contains("CalDAV カレンダー「Work」に接続できました。"),
        "{}",
        page.body
    );
    let user = site.store().user_by_id(1).expect("read").expect("user");
    assert_eq!(user.target, dncs::store::Target::Caldav);
    assert!(user.has_caldav_password);
}

// Xandikos --------------------------------------------------------------------------------------

#[test]
fn xandikos_is_found_from_its_root() {
    let Some(server) = Xandikos::start() else {
        return;
    };
    let found = server.client(&server.root()).discover().expect("from root");
    assert!(
        found
            .iter()
            .any(|c| c.url.ends_with(&server.calendar_path())),
        "{found:?}"
    );
}

#[test]
fn sync_with_xandikos_copies_both_ways_and_then_rests() {
    let Some(server) = Xandikos::start() else {
        return;
    };
    copies_both_ways_and_then_rests(&server);
}

// A server without sync-collection ---------------------------------------------------------------

#[test]
fn sync_without_sync_collection_uses_the_etags_of_the_window() {
    use std::sync::atomic::Ordering;
    let Some(proxy) = NoSyncProxy::start() else {
        return;
    };
    let found = proxy
        .client(&proxy.calendar())
        .discover()
        .expect("through the proxy");
    assert_eq!(found.len(), 1);
    assert!(!found[0].supports_sync, "{found:?}");
    // The scenario's deletion by another client is only seen by comparing the window's ETags.
    copies_both_ways_and_then_rests(&proxy);
    assert!(proxy.calendar_queries.load(Ordering::SeqCst) > 0);
    assert_eq!(proxy.refused.load(Ordering::SeqCst), 0);
}

// Interop with a client nobody here wrote ----------------------------------------------------------

/// Runs tests/data/caldav_interop.py (the python `caldav` library) against the calendar.
fn python_caldav(server: &dyn DavServer, args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/caldav_interop.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(args[0])
        .args([server.calendar().as_str(), USER, PASSWORD])
        .args(&args[1..])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// What the python client should see for a Cybozu event: (title, start, end), UTC or dates,
/// the end of a date event exclusive; `None` times for a repeat (its first date is the rule's).
fn seen_as(event: &dncs::cybozu::Event) -> (String, Option<String>, Option<String>) {
    use dncs::cybozu::When;
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (start, end) = match &event.when {
        When::Times(spans) => (
            Some(time(spans[0].start)),
            Some(time(spans[0].end.unwrap_or(spans[0].start))),
        ),
        When::Dates(spans) => (
            Some(spans[0].start.to_string()),
            Some((spans[0].end + chrono::Duration::days(1)).to_string()),
        ),
        When::Unset => (None, None),
    };
    (event.display_title(), start, end)
}

#[test]
fn the_python_caldav_client_sees_our_copies_and_its_changes_reach_cybozu() {
    if !python_has("caldav", "caldav") {
        return;
    }
    let Some(radicale) = Radicale::start() else {
        return;
    };
    let cybozu = crate::util::demo_sim();
    let install = caldav_install(&radicale, &cybozu, "");
    sync_pass(&install);

    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&python_caldav(&radicale, &["list"])).expect("JSON");
    let mut seen: Vec<(String, Option<String>, Option<String>)> = listed
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str().map(str::to_string);
            let repeat = cybozu
                .company()
                .events_of(1)
                .any(|c| c.repeat.is_some() && Some(c.display_title()) == text("summary"));
            if repeat {
                (text("summary").unwrap_or_default(), None, None)
            } else {
                (
                    text("summary").unwrap_or_default(),
                    text("dtstart"),
                    text("dtend"),
                )
            }
        })
        .collect();
    seen.sort();
    let mut expected: Vec<_> = cybozu.company().events_of(1).map(seen_as).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(listed
        .iter()
        .all(|e| e["uid"].as_str().is_some_and(|u| u.ends_with("@dncs"))));

    python_caldav(
        &radicale,
        &[
            "change",
            "python からの予定",
            "会議:新製品キックオフ",
            "会議:新製品キックオフ（python）",
            "顧客へ電話",
        ],
    );
    sync_pass(&install);
    let titles: Vec<String> = cybozu
        .company()
        .events_of(1)
        .map(dncs::cybozu::Event::display_title)
        .collect();
    assert!(
        titles.contains(&"python からの予定".to_string()),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"会議:新製品キックオフ（python）".to_string()),
        "{titles:?}"
    );
    assert!(
        !titles.contains(&"会議:新製品キックオフ".to_string()),
        "{titles:?}"
    );
    assert!(!titles.contains(&"顧客へ電話".to_string()), "{titles:?}");
    let company = cybozu.company();
    let new = company
        .events_of(1)
        .find(|e| e.detail == "python からの予定")
        .expect("arrived");
    assert_eq!(
        seen_as(new).1.as_deref(),
        Some("2026-11-27T13:00:00Z"),
        "{new:?}"
    );
}
