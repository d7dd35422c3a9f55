//! The typed client: one method per 連携API operation this product needs, each sending the exact
//! request shape of the WSDL and decoding the reply by local name into the model.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::model::{
    format_datetime, DecodeError, Event, EventType, Facility, ItemChange, ItemVersion,
    Organization, Profiles, User, When,
};
use super::soap::{self, Parameters, Reply, Service};
use super::{codes, CybozuError, FaultKind};
use crate::http::{retry, Gate, RetryPolicy};
use crate::xml::{self, child, children, text, Node, Writer};

/// Largest reply accepted: a year of a busy user's schedule is a few megabytes.
const MAX_REPLY_BYTES: u64 = 64 * 1024 * 1024;

/// A Cybozu login: every call is made as this user.
#[derive(Clone)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("password", &"********")
            .finish()
    }
}

/// Which part of a series a repeat operation touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatScope {
    /// Only the occurrence on this local date.
    This(NaiveDate),
    /// This occurrence and every later one.
    After(NaiveDate),
    All,
}

impl RepeatScope {
    fn attrs(self) -> Vec<(&'static str, String)> {
        match self {
            Self::This(date) => vec![("type", "this".into()), ("date", date.to_string())],
            Self::After(date) => vec![("type", "after".into()), ("date", date.to_string())],
            Self::All => vec![("type", "all".into())],
        }
    }
}

/// What a repeat operation returns: the series as it now stands and the event it split off
/// (for `this`/`after`; for `all` both are the same series).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatSplit {
    pub original: Event,
    pub modified: Event,
}

/// The SOAP client for one Cybozu user.
#[derive(Clone)]
pub struct Client {
    endpoint: String,
    agent: ureq::Agent,
    credentials: Credentials,
    retry: RetryPolicy,
    gate: Option<Arc<Gate>>,
}

impl Client {
    /// `endpoint` is `CYBOZU_URL`, e.g. `http://server/cgi-bin/cbag/ag.cgi`.
    pub fn new(endpoint: &str, agent: ureq::Agent, credentials: Credentials) -> Self {
        Self {
            endpoint: endpoint.trim().to_string(),
            agent,
            credentials,
            retry: RetryPolicy::default(),
            gate: None,
        }
    }

    /// Whether `endpoint` is a Cybozu Office that answers, for `dncs-sync check`: a login with no
    /// user name is one call that any Office refuses with a SOAP fault, which shows that the URL,
    /// the network (and `PROXY`) and the SOAP API all work, without any user's password.
    pub fn probe(endpoint: &str, agent: ureq::Agent) -> Result<(), CybozuError> {
        let nobody = Credentials {
            login: String::new(),
            password: String::new(),
        };
        let once = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        match Client::new(endpoint, agent, nobody)
            .with_retry(once)
            .login_user_id()
        {
            Ok(_)
            | Err(CybozuError::LoginFailed { .. })
            | Err(CybozuError::Busy { .. })
            | Err(CybozuError::Fault { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Overrides the backoff (tests use millisecond waits).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Shares a gate with the other users' clients: `CYBOZU_PARALLEL` calls in flight at most.
    pub fn with_gate(mut self, gate: Arc<Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    pub fn login(&self) -> &str {
        &self.credentials.login
    }

    // ---- Util ----

    /// The numeric id of the credentials' user; fails with `LoginFailed` on a wrong password.
    pub fn login_user_id(&self) -> Result<u64, CybozuError> {
        self.call("UtilGetLoginUserId", &Parameters::default(), |returns| {
            let node = returns
                .and_then(|r| child(r, "user_id"))
                .ok_or_else(|| DecodeError::new("no user_id in the reply"))?;
            super::model::parse_u64_text(&text(node))
        })
    }

    // ---- Base: the user directory ----

    pub fn users_by_login_name(&self, login_names: &[&str]) -> Result<Vec<User>, CybozuError> {
        let mut w = Writer::new();
        for name in login_names {
            w.text_element("login_name", name);
        }
        self.call("BaseGetUsersByLoginName", &body(w), |returns| {
            decode_all(returns, "user", User::from_xml)
        })
    }

    pub fn users_by_id(&self, ids: &[u64]) -> Result<Vec<User>, CybozuError> {
        self.call("BaseGetUsersById", &id_list("user_id", ids), |returns| {
            decode_all(returns, "user", User::from_xml)
        })
    }

    /// Which users were added, changed or removed since the versions the caller knows.
    pub fn user_versions(&self, known: &[ItemVersion]) -> Result<Vec<ItemChange>, CybozuError> {
        self.call(
            "BaseGetUserVersions",
            &versions("user_item", known),
            |returns| decode_all(returns, "user_item", ItemChange::from_xml),
        )
    }

    pub fn organization_versions(
        &self,
        known: &[ItemVersion],
    ) -> Result<Vec<ItemChange>, CybozuError> {
        let params = versions("organization_item", known);
        self.call("BaseGetOrganizationVersions", &params, |returns| {
            decode_all(returns, "organization_item", ItemChange::from_xml)
        })
    }

    pub fn organizations_by_id(&self, ids: &[u64]) -> Result<Vec<Organization>, CybozuError> {
        let params = id_list("organization_id", ids);
        self.call("BaseGetOrganizationsById", &params, |returns| {
            decode_all(returns, "organization", Organization::from_xml)
        })
    }

    // ---- Schedule: facilities and profiles ----

    pub fn facility_versions(&self, known: &[ItemVersion]) -> Result<Vec<ItemChange>, CybozuError> {
        let params = versions("facility_item", known);
        self.call("ScheduleGetFacilityVersions", &params, |returns| {
            decode_all(returns, "facility_item", ItemChange::from_xml)
        })
    }

    pub fn facilities_by_id(&self, ids: &[u64]) -> Result<Vec<Facility>, CybozuError> {
        let params = id_list("facility_id", ids);
        self.call("ScheduleGetFacilitiesById", &params, |returns| {
            decode_all(returns, "facility", Facility::from_xml)
        })
    }

    /// The plan menu (予定メニュー) and system limits.
    pub fn profiles(&self) -> Result<Profiles, CybozuError> {
        let params = Parameters {
            attrs: vec![("include_system_profile", "true".into())],
            body: String::new(),
        };
        self.call("ScheduleGetProfiles", &params, |returns| {
            Profiles::from_xml(returns.ok_or_else(|| DecodeError::new("no returns"))?)
        })
    }

    // ---- Schedule: reading events ----

    /// Every event of the user overlapping `start..end`, one per series: servers that list a
    /// repeat once per occurrence are folded back into one event per id.
    pub fn events(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Event>, CybozuError> {
        let params = Parameters {
            attrs: vec![
                ("start", format_datetime(start)),
                ("end", format_datetime(end)),
            ],
            body: String::new(),
        };
        let events = self.call("ScheduleGetEvents", &params, |returns| {
            decode_all(returns, "schedule_event", Event::from_xml)
        })?;
        Ok(fold_occurrences(events))
    }

    /// What changed in `start..end` relative to the `known` id/version pairs.
    pub fn event_versions(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        known: &[ItemVersion],
    ) -> Result<Vec<ItemChange>, CybozuError> {
        let mut params = versions("event_item", known);
        params.attrs = vec![
            ("start", format_datetime(start)),
            ("end", format_datetime(end)),
        ];
        self.call("ScheduleGetEventVersions", &params, |returns| {
            decode_all(returns, "event_item", ItemChange::from_xml)
        })
    }

    /// The events with these ids, in one request. Fails with fault 501 if any id is gone.
    pub fn events_by_id(&self, ids: &[u64]) -> Result<Vec<Event>, CybozuError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let events = self.call(
            "ScheduleGetEventsById",
            &id_list("event_id", ids),
            |returns| decode_all(returns, "schedule_event", Event::from_xml),
        )?;
        Ok(fold_occurrences(events))
    }

    /// Like [`events_by_id`](Self::events_by_id), but an id that no longer exists is reported
    /// instead of failing the batch: the batch is halved until the missing ids are isolated.
    pub fn events_by_id_lenient(&self, ids: &[u64]) -> Result<(Vec<Event>, Vec<u64>), CybozuError> {
        match self.events_by_id(ids) {
            Ok(events) => Ok((events, Vec::new())),
            Err(e) if e.is_no_such_event() && ids.len() == 1 => Ok((Vec::new(), ids.to_vec())),
            Err(e) if e.is_no_such_event() => {
                let (left, right) = ids.split_at(ids.len() / 2);
                let (mut found, mut missing) = self.events_by_id_lenient(left)?;
                let (more_found, more_missing) = self.events_by_id_lenient(right)?;
                found.extend(more_found);
                missing.extend(more_missing);
                Ok((found, missing))
            }
            Err(e) => Err(e),
        }
    }

    /// One event by id.
    pub fn event(&self, id: u64) -> Result<Event, CybozuError> {
        self.events_by_id(&[id])?
            .into_iter()
            .find(|e| e.id == Some(id))
            .ok_or_else(|| CybozuError::Malformed {
                operation: "ScheduleGetEventsById".into(),
                what: format!("the reply does not contain event {id}"),
            })
    }

    // ---- Schedule: writing events ----

    /// Adds events; returns them with the ids and versions the server gave.
    pub fn add_events(&self, events: &[Event]) -> Result<Vec<Event>, CybozuError> {
        let mut w = Writer::new();
        for event in events {
            event.write_xml(&mut w, "schedule_event");
        }
        self.call("ScheduleAddEvents", &body(w), |returns| {
            decode_all(returns, "schedule_event", Event::from_xml)
        })
    }

    /// Replaces events whole. Anything left out (a facility, a member) is removed by the
    /// server, so callers should use [`modify_event_with`](Self::modify_event_with).
    pub fn modify_events(&self, events: &[Event]) -> Result<Vec<Event>, CybozuError> {
        let mut w = Writer::new();
        for event in events {
            event.write_xml(&mut w, "schedule_event");
        }
        self.call("ScheduleModifyEvents", &body(w), |returns| {
            decode_all(returns, "schedule_event", Event::from_xml)
        })
    }

    /// Reads the event as it stands now, lets `change` edit it, and writes it back whole,
    /// so that members, facilities and fields this product does not map survive the write.
    pub fn modify_event_with(
        &self,
        id: u64,
        change: impl FnOnce(&mut Event),
    ) -> Result<Event, CybozuError> {
        let mut event = self.event(id)?;
        change(&mut event);
        event.id = Some(id);
        self.modify_events(std::slice::from_ref(&event))?
            .into_iter()
            .next()
            .ok_or_else(|| CybozuError::Malformed {
                operation: "ScheduleModifyEvents".into(),
                what: "the reply holds no event".into(),
            })
    }

    /// Changes one occurrence, the rest of the series, or all of it.
    pub fn modify_repeat_event(
        &self,
        scope: RepeatScope,
        event: &Event,
    ) -> Result<RepeatSplit, CybozuError> {
        let mut w = Writer::new();
        let attrs = scope.attrs();
        let attr_refs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        w.open("operation", &attr_refs);
        event.write_xml(&mut w, "schedule_event");
        w.close("operation");
        self.call("ScheduleModifyRepeatEvents", &body(w), decode_split)
    }

    /// Reads the series as it stands now, lets `change` edit it, and writes it back whole for
    /// the given scope (the same care as [`modify_event_with`](Self::modify_event_with)).
    pub fn modify_repeat_event_with(
        &self,
        id: u64,
        scope: RepeatScope,
        change: impl FnOnce(&mut Event),
    ) -> Result<RepeatSplit, CybozuError> {
        let mut event = self.event(id)?;
        change(&mut event);
        event.id = Some(id);
        self.modify_repeat_event(scope, &event)
    }

    /// Deletes events for every participant.
    pub fn remove_events(&self, ids: &[u64]) -> Result<(), CybozuError> {
        self.call(
            "ScheduleRemoveEvents",
            &id_list("event_id", ids),
            |_| Ok(()),
        )
    }

    /// Deletes one occurrence, the rest of a series, or all of it.
    pub fn remove_from_repeat(
        &self,
        id: u64,
        scope: RepeatScope,
    ) -> Result<RepeatSplit, CybozuError> {
        self.repeat_operation("ScheduleRemoveEventsFromRepeatEvent", id, scope)
    }

    /// Takes the user out of shared events; the other participants keep them.
    pub fn leave_events(&self, ids: &[u64]) -> Result<Vec<Event>, CybozuError> {
        self.call(
            "ScheduleLeaveEvents",
            &id_list("event_id", ids),
            |returns| decode_all(returns, "schedule_event", Event::from_xml),
        )
    }

    /// Takes the user out of one occurrence (or the rest, or all) of a shared series.
    pub fn leave_from_repeat(
        &self,
        id: u64,
        scope: RepeatScope,
    ) -> Result<RepeatSplit, CybozuError> {
        self.repeat_operation("ScheduleLeaveEventsFromRepeatEvent", id, scope)
    }

    fn repeat_operation(
        &self,
        operation: &'static str,
        id: u64,
        scope: RepeatScope,
    ) -> Result<RepeatSplit, CybozuError> {
        let mut attrs = vec![("event_id", id.to_string())];
        attrs.extend(scope.attrs());
        let attr_refs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut w = Writer::new();
        w.empty("operation", &attr_refs);
        self.call(operation, &body(w), decode_split)
    }

    // ---- the transport ----

    /// Sends one operation, retrying while Office is busy, and decodes its `returns`.
    fn call<T>(
        &self,
        operation: &'static str,
        params: &Parameters<'_>,
        decode: impl Fn(Option<Node<'_, '_>>) -> Result<T, DecodeError>,
    ) -> Result<T, CybozuError> {
        // A write that timed out may have been done: only reads are retried after transport errors.
        let is_read = operation.contains("Get");
        let outcome = retry(
            &self.retry,
            |e: &CybozuError| match e {
                CybozuError::Busy { .. } => true,
                CybozuError::Transport { .. } => is_read,
                CybozuError::Http { status, .. } => is_read && matches!(status, 502..=504),
                _ => false,
            },
            |_| None,
            |_| self.call_once(operation, params, &decode),
        );
        match outcome.result {
            Err(CybozuError::Busy { operation, .. }) => Err(CybozuError::Busy {
                operation,
                attempts: outcome.attempts,
            }),
            other => other,
        }
    }

    fn call_once<T>(
        &self,
        operation: &'static str,
        params: &Parameters<'_>,
        decode: &impl Fn(Option<Node<'_, '_>>) -> Result<T, DecodeError>,
    ) -> Result<T, CybozuError> {
        let service = Service::of(operation).unwrap_or(Service::Schedule);
        let url = self.url_for(service);
        // The Timestamp is about the server's own clock, so it uses real time even when
        // DNCS_NOW pins the product's clock for tests.
        let envelope = soap::request(
            operation,
            &self.credentials.login,
            &self.credentials.password,
            Utc::now(),
            params,
        );
        let _in_flight = self.gate.as_ref().map(|g| g.enter());
        let transport = |reason: String| CybozuError::Transport {
            operation: operation.into(),
            url: self.endpoint.clone(),
            reason,
        };
        let mut response = self
            .agent
            .post(&url)
            .header(
                "Content-Type",
                format!("application/soap+xml; charset=utf-8; action=\"{operation}\""),
            )
            .send(envelope.as_bytes())
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let raw = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| transport(format!("reading the reply failed: {e}")))?;
        let reply_text = String::from_utf8_lossy(&raw);
        let cleaned = xml::clean(&reply_text);
        let malformed = |what: String| CybozuError::Malformed {
            operation: operation.into(),
            what,
        };
        let doc = match xml::parse(&cleaned) {
            Ok(doc) => doc,
            // A proxy's or web server's error page is not a malformed SOAP reply.
            Err(_) if !(200..300).contains(&status) => {
                return Err(CybozuError::Http {
                    operation: operation.into(),
                    status,
                    snippet: snippet(&reply_text),
                })
            }
            Err(e) => return Err(malformed(e.to_string())),
        };
        match soap::read_reply(&doc, operation) {
            Ok(Reply::Fault(fault)) => Err(classify_fault(operation, fault)),
            Ok(Reply::Returns(returns)) if (200..300).contains(&status) => {
                decode(returns).map_err(|e| malformed(e.what))
            }
            Ok(Reply::Returns(_)) => Err(CybozuError::Http {
                operation: operation.into(),
                status,
                snippet: snippet(&reply_text),
            }),
            Err(what) if !(200..300).contains(&status) => Err(CybozuError::Http {
                operation: operation.into(),
                status,
                snippet: format!("{what}: {}", snippet(&reply_text)),
            }),
            Err(what) => Err(malformed(what)),
        }
    }

    fn url_for(&self, service: Service) -> String {
        let separator = if self.endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}page={}", self.endpoint, service.page())
    }
}

fn classify_fault(operation: &str, fault: soap::Fault) -> CybozuError {
    match fault.number() {
        Some(code @ (codes::LOGIN_FAILED | codes::LOGIN_FAILED_10_8)) => {
            CybozuError::LoginFailed { code }
        }
        Some(codes::BUSY) => CybozuError::Busy {
            operation: operation.into(),
            attempts: 1,
        },
        _ => CybozuError::Fault {
            operation: operation.into(),
            kind: FaultKind::of(&fault),
            fault: Box::new(fault),
        },
    }
}

/// Folds per-occurrence copies of a repeat into one event per id, keeping first-seen order.
fn fold_occurrences(events: Vec<Event>) -> Vec<Event> {
    let mut seen = std::collections::HashSet::new();
    events
        .into_iter()
        .filter(|e| e.id.is_none_or(|id| seen.insert(id)))
        .map(|mut e| {
            if e.event_type == EventType::Repeat && e.repeat.is_some() {
                // The rule is the truth; an occurrence's `when` would pin the series to one day.
                e.when = When::Unset;
            }
            e
        })
        .collect()
}

fn decode_all<T>(
    returns: Option<Node<'_, '_>>,
    element: &str,
    decode: impl Fn(Node<'_, '_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    match returns {
        Some(returns) => children(returns, element).map(decode).collect(),
        None => Ok(Vec::new()),
    }
}

fn decode_split(returns: Option<Node<'_, '_>>) -> Result<RepeatSplit, DecodeError> {
    let result = returns
        .and_then(|r| child(r, "result"))
        .ok_or_else(|| DecodeError::new("no result in the reply"))?;
    let part = |name: &str| {
        child(result, name)
            .ok_or_else(|| DecodeError::new(format!("no {name} in the result")))
            .and_then(Event::from_xml)
    };
    Ok(RepeatSplit {
        original: part("original")?,
        modified: part("modified")?,
    })
}

fn body(w: Writer) -> Parameters<'static> {
    Parameters {
        attrs: Vec::new(),
        body: w.finish(),
    }
}

fn id_list(element: &str, ids: &[u64]) -> Parameters<'static> {
    let mut w = Writer::new();
    for id in ids {
        w.text_element(element, &id.to_string());
    }
    body(w)
}

fn versions(element: &str, known: &[ItemVersion]) -> Parameters<'static> {
    let mut w = Writer::new();
    for item in known {
        w.empty(
            element,
            &[
                ("id", &item.id.to_string()),
                ("version", &item.version.to_string()),
            ],
        );
    }
    body(w)
}

/// The start of an unexpected body, for an error message.
fn snippet(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = flat.chars().take(200).collect();
    if flat.chars().count() > 200 {
        cut.push('…');
    }
    cut
}
