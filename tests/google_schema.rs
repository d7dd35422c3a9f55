//! Holds both ends of the Calendar API conversation to Google's discovery document (copy under
//! tests/data): every event JSON the client sends and the simulator answers uses only properties the
//! `Event` schema defines (recursively, following `$ref`), with the right JSON types and enum values,
//! and every query parameter the client sends is a parameter of its method.

use std::path::Path;

use dncs::google::{event_id_for, EventDateTime, EventStatus, EventType, Transparency, Visibility};
use dncs::sim::google::{Exchange, GoogleSim};
use serde_json::{json, Value};

use crate::util::{date, google_calendar, google_event, utc};

const ME: &str = "taro@example.com";

struct Discovery {
    doc: Value,
}

impl Discovery {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/google-calendar-v3.discovery.json");
        let text = std::fs::read_to_string(path).expect("discovery document");
        Self {
            doc: serde_json::from_str(&text).expect("discovery JSON"),
        }
    }

    fn schema(&self, name: &str) -> &Value {
        let schema = &self.doc["schemas"][name];
        assert!(schema.is_object(), "no schema {name}");
        schema
    }

    /// Checks `value` against a schema (or property) description.
    fn check(&self, spec: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        if let Some(name) = spec.get("$ref").and_then(Value::as_str) {
            return self.check(self.schema(name), value, at, problems);
        }
        let kind = spec.get("type").and_then(Value::as_str).unwrap_or("any");
        let type_ok = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => true,
        };
        if !type_ok {
            problems.push(format!("{at}: expected {kind}, found {value}"));
            return;
        }
        match value {
            Value::Object(map) => {
                let properties = spec.get("properties").and_then(Value::as_object);
                let additional = spec.get("additionalProperties");
                for (key, inner) in map {
                    let path = format!("{at}.{key}");
                    match (properties.and_then(|p| p.get(key)), additional) {
                        (Some(property), _) => self.check(property, inner, &path, problems),
                        (None, Some(additional)) => self.check(additional, inner, &path, problems),
                        (None, None) if properties.is_some() => {
                            problems.push(format!("{path}: not a property of the schema"))
                        }
                        (None, None) => {}
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_spec) = spec.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.check(item_spec, item, &format!("{at}[{index}]"), problems);
                    }
                }
            }
            Value::String(text) => {
                let allowed = enum_values(spec);
                if !allowed.is_empty() && !allowed.iter().any(|a| a == text) {
                    problems.push(format!("{at}: {text:?} is not one of {allowed:?}"));
                }
            }
            _ => {}
        }
    }

    /// The `events` method a request is for.
    fn method(&self, exchange: &Exchange) -> Option<(&'static str, &Value)> {
        let segments: Vec<&str> = exchange.path.trim_start_matches('/').split('/').collect();
        let name = match (exchange.method.as_str(), segments.as_slice()) {
            ("GET", ["calendar", "v3", "calendars", _, "events"]) => "list",
            ("POST", ["calendar", "v3", "calendars", _, "events"]) => "insert",
            ("GET", ["calendar", "v3", "calendars", _, "events", _]) => "get",
            ("PUT", ["calendar", "v3", "calendars", _, "events", _]) => "update",
            ("DELETE", ["calendar", "v3", "calendars", _, "events", _]) => "delete",
            _ => return None,
        };
        let method = &self.doc["resources"]["events"]["methods"][name];
        (method["httpMethod"] == exchange.method).then_some((name, method))
    }

    /// Every problem of one recorded exchange; `checked` counts the JSON bodies looked at.
    fn check_exchange(&self, exchange: &Exchange, checked: &mut usize) -> Vec<String> {
        let mut problems = Vec::new();
        let label = format!("{} {}", exchange.method, exchange.path);
        let Some((name, method)) = self.method(exchange) else {
            if exchange.path.starts_with("/calendar/") {
                problems.push(format!("{label}: no such method in the discovery document"));
            }
            return problems;
        };
        for (key, value) in &exchange.query {
            let spec = method["parameters"]
                .get(key)
                .or_else(|| self.doc["parameters"].get(key));
            match spec {
                None => problems.push(format!(
                    "{label}: ?{key} is not a parameter of events.{name}"
                )),
                Some(spec) => {
                    let typed = match spec["type"].as_str() {
                        Some("boolean") => json!(value == "true" || value == "false"),
                        Some("integer") => json!(value.parse::<i64>().is_ok()),
                        _ => json!(true),
                    };
                    if typed != json!(true) {
                        problems.push(format!("{label}: ?{key}={value} is not a {}", spec["type"]));
                    }
                }
            }
        }
        if let Some(request) = method.get("request").and_then(|r| r["$ref"].as_str()) {
            match serde_json::from_str::<Value>(&exchange.request) {
                Ok(body) => {
                    *checked += 1;
                    self.check(
                        self.schema(request),
                        &body,
                        &format!("{label} request"),
                        &mut problems,
                    );
                }
                Err(e) => problems.push(format!("{label}: request body is not JSON: {e}")),
            }
        }
        if (200..300).contains(&exchange.status) && !exchange.response.is_empty() {
            let response = method["response"]["$ref"].as_str().unwrap_or("Event");
            match serde_json::from_str::<Value>(&exchange.response) {
                Ok(body) => {
                    *checked += 1;
                    self.check(
                        self.schema(response),
                        &body,
                        &format!("{label} response"),
                        &mut problems,
                    );
                }
                Err(e) => problems.push(format!("{label}: response is not JSON: {e}")),
            }
        } else if !(200..300).contains(&exchange.status) {
            let body: Value = serde_json::from_str(&exchange.response).unwrap_or_default();
            let error = &body["error"];
            if error["code"] != json!(exchange.status) || !error["errors"][0]["reason"].is_string()
            {
                problems.push(format!(
                    "{label}: error body is not Google's shape: {}",
                    exchange.response
                ));
            }
        }
        problems
    }
}

/// The values a string property may take: `enum`, or the `- "value"` list of a description
/// that says "Possible values are:".
fn enum_values(spec: &Value) -> Vec<String> {
    if let Some(values) = spec.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
    }
    let description = spec
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some((_, list)) = description.split_once("Possible values are:") else {
        return Vec::new();
    };
    list.lines()
        .filter_map(|line| line.trim().strip_prefix("- \""))
        .filter_map(|rest| rest.split_once('"').map(|(value, _)| value.to_string()))
        .collect()
}

fn check_all(discovery: &Discovery, exchanges: &[Exchange]) -> (Vec<String>, usize) {
    let mut checked = 0;
    let problems = exchanges
        .iter()
        .flat_map(|e| discovery.check_exchange(e, &mut checked))
        .collect();
    (problems, checked)
}

#[test]
fn every_event_json_both_ways_matches_the_discovery_document() {
    let discovery = Discovery::load();
    let sim = GoogleSim::start().expect("simulator");
    sim.record(true);
    // What a phone makes: reminders, attendees-free, a colour.
    let mut phone = google_event("電話で", "2026-11-24T01:00:00Z", "2026-11-24T02:00:00Z");
    phone.preserved.insert(
        "reminders".into(),
        json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 30}]}),
    );
    phone.preserved.insert("colorId".into(), json!("5"));
    let phone = sim.phone_insert(ME, "primary", phone).expect("phone event");

    let calendar = google_calendar(&sim, ME, "primary").with_page_size(1);
    let first = calendar
        .list_changes(
            None,
            Some((utc("2026-11-01T00:00:00Z"), utc("2026-12-01T00:00:00Z"))),
        )
        .expect("full list");

    let mut timed = google_event("会議:定例", "2026-11-25T01:00:00Z", "2026-11-25T02:00:00Z");
    timed.id = Some(event_id_for("install", 1));
    timed.description = Some("メモ\n参加者: 佐藤".into());
    timed.location = Some("第1会議室".into());
    timed.visibility = Some(Visibility::Private);
    timed.transparency = Some(Transparency::Opaque);
    timed.event_type = Some(EventType::Default);
    timed.recurrence = vec![
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR".into(),
        "EXDATE;TZID=Asia/Tokyo:20261225T100000".into(),
    ];
    timed.set_private_property("cybozuId", "1");
    timed.set_private_property("cybozuVersion", "1732500000");
    calendar.insert(&timed).expect("timed");
    calendar.insert(&timed).expect("409 then update");

    let mut banner = google_event("出張", "2026-11-26T00:00:00Z", "2026-11-28T00:00:00Z");
    banner.id = Some(event_id_for("install", 2));
    banner.start = Some(EventDateTime::from_date(date("2026-11-26")));
    banner.end = Some(EventDateTime::from_date(date("2026-11-28")));
    banner.transparency = Some(Transparency::Transparent);
    banner.status = Some(EventStatus::Tentative);
    calendar.insert(&banner).expect("banner");

    let stale = calendar.get(&phone.id.clone().expect("id")).expect("get");
    sim.phone_edit(ME, "primary", stale.id.as_deref().expect("id"), |e| {
        e.summary = Some("電話で(変更)".into())
    });
    calendar
        .update_latest(stale.id.as_deref().expect("id"), |e| {
            e.description = Some("dncs".into())
        })
        .expect("update_latest");
    assert!(calendar
        .update(&stale, stale.etag.as_deref().expect("etag"))
        .is_err());
    calendar
        .delete(banner.id.as_deref().expect("id"), None)
        .expect("delete");
    calendar
        .delete(banner.id.as_deref().expect("id"), None)
        .expect("delete again");
    calendar
        .list_changes(Some(&first.next_sync_token), None)
        .expect("incremental");

    let exchanges = sim.take_exchanges();
    let (problems, checked) = check_all(&discovery, &exchanges);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(checked >= 12, "only {checked} bodies checked");
    let methods: std::collections::BTreeSet<_> = exchanges
        .iter()
        .filter_map(|e| discovery.method(e).map(|(name, _)| name))
        .collect();
    assert_eq!(
        methods.into_iter().collect::<Vec<_>>(),
        ["delete", "get", "insert", "list", "update"]
    );
}

fn exchange(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    request: Value,
    response: Value,
) -> Exchange {
    Exchange {
        method: method.into(),
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        request: if request.is_null() {
            String::new()
        } else {
            request.to_string()
        },
        status: 200,
        response: response.to_string(),
    }
}

#[test]
fn the_checker_rejects_wrong_shapes() {
    let discovery = Discovery::load();
    let good = json!({"summary": "x", "start": {"date": "2026-11-25"}, "end": {"date": "2026-11-26"},
        "status": "confirmed", "extendedProperties": {"private": {"a": "b"}},
        "reminders": {"overrides": [{"method": "popup", "minutes": 5}]}});
    let path = "/calendar/v3/calendars/primary/events";
    let (problems, checked) = check_all(
        &discovery,
        &[exchange("POST", path, &[], good.clone(), good.clone())],
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(checked, 2);

    let cases = [
        (json!({"title": "x"}), "title"),
        (json!({"summary": 5}), "summary"),
        (json!({"status": "deleted"}), "status"),
        (json!({"visibility": "secret"}), "visibility"),
        (json!({"transparency": "busy"}), "transparency"),
        (json!({"eventType": "meeting"}), "eventType"),
        (
            json!({"start": {"date": "2026-11-25", "allDay": true}}),
            "allDay",
        ),
        (
            json!({"extendedProperties": {"private": {"a": 1}}}),
            "private.a",
        ),
        (
            json!({"reminders": {"overrides": [{"minutes": "ten"}]}}),
            "minutes",
        ),
        (json!({"recurrence": "RRULE:FREQ=DAILY"}), "recurrence"),
        (
            json!({"attendees": [{"email": "a@example.com", "responseStatus": "maybe"}]}),
            "responseStatus",
        ),
    ];
    for (body, word) in cases {
        let (problems, _) = check_all(
            &discovery,
            &[exchange(
                "PUT",
                &format!("{path}/abcdefgh"),
                &[],
                body.clone(),
                good.clone(),
            )],
        );
        assert!(
            problems.iter().any(|p| p.contains(word)),
            "{body} not rejected: {problems:?}"
        );
    }
    let (problems, _) = check_all(
        &discovery,
        &[exchange(
            "GET",
            path,
            &[("updatedSince", "x"), ("maxResults", "many")],
            Value::Null,
            json!({"items": []}),
        )],
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    let (problems, _) = check_all(
        &discovery,
        &[exchange(
            "PATCH",
            &format!("{path}/abcdefgh"),
            &[],
            Value::Null,
            json!({}),
        )],
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
}
