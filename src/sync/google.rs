//! Google Calendar as the engine's [`Remote`]: Calendar API events ↔ [`RemoteEvent`], the Cybozu
//! id and version in `extendedProperties.private`, client-chosen event ids, and the user's access
//! token kept (sealed) until it is about to expire.

use chrono::{DateTime, Duration, Utc};

use super::convert::{RemoteEvent, RemoteWhen, Visibility};
use super::engine::{Listing, Remote, RemoteError, Written};
use super::plan::{OccurrenceOf, RemoteItem};
use crate::config::Config;
use crate::google::calendar::{event_id_for, Calendar};
use crate::google::event::{
    Event as GoogleEvent, EventDateTime, EventStatus, EventType, Transparency,
    Visibility as GoogleVisibility,
};
use crate::google::{token, GoogleError};
use crate::store::{GoogleClient, Side, Store, StoreError, UserId};

pub const PROP_CYBOZU_ID: &str = "dncsCybozuId";
pub const PROP_CYBOZU_VERSION: &str = "dncsCybozuVersion";
pub const PROP_PLAN: &str = "dncsPlan";

/// An access token this close to expiry is refreshed before the pass.
const REFRESH_MARGIN_MINUTES: i64 = 5;

/// A user's Google calendar.
pub struct GoogleRemote {
    calendar: Calendar,
    install_id: String,
    /// The access token came from the cache rather than a refresh during this pass.
    cached_token: bool,
    /// The etag of each event this pass wrote: the one a later write of it expects.
    written: std::collections::HashMap<String, String>,
}

impl GoogleRemote {
    /// The etag a copy must still have for this pass to write over it or delete it: the one this
    /// pass's own write gave it, none when this pass wrote its series' master (which may restamp
    /// the series' days), else the one the pass knows it by.
    fn expected_etag(&self, id: &str, known: Option<&str>) -> Option<String> {
        let master_written =
            instance_master(id).is_some_and(|master| self.written.contains_key(master));
        match self.written.get(id) {
            Some(own) => Some(own.clone()),
            None if master_written => None,
            None => known.map(str::to_string),
        }
    }

    pub fn new(calendar: Calendar, install_id: String) -> Self {
        Self {
            calendar,
            install_id,
            cached_token: false,
            written: std::collections::HashMap::new(),
        }
    }

    /// Whether the access token was the cached one: a 401 then means Google dropped it before
    /// its time (revoked, rotated), and one refresh tells whether the link itself still holds.
    pub fn used_cached_token(&self) -> bool {
        self.cached_token
    }

    /// Opens the user's calendar: the cached access token when still good, else one refresh.
    /// A refused refresh token marks the user as needing to link again.
    pub fn open(
        store: &Store,
        config: &Config,
        agent: &ureq::Agent,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Self, RemoteError> {
        Self::open_with(store, config, agent, user_id, now, false)
    }

    /// Opens the user's calendar with a freshly refreshed access token, the cached one ignored.
    pub fn open_refreshed(
        store: &Store,
        config: &Config,
        agent: &ureq::Agent,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Self, RemoteError> {
        Self::open_with(store, config, agent, user_id, now, true)
    }

    fn open_with(
        store: &Store,
        config: &Config,
        agent: &ureq::Agent,
        user_id: UserId,
        now: DateTime<Utc>,
        refresh_anyway: bool,
    ) -> Result<Self, RemoteError> {
        let failed = |e: StoreError| RemoteError::Failed(e.to_string());
        let user = store
            .user_by_id(user_id)
            .map_err(failed)?
            .ok_or_else(|| RemoteError::Failed(format!("no user {user_id}")))?;
        let link = user
            .google
            .ok_or_else(|| RemoteError::NeedsRelink("Google is not linked".into()))?;
        if link.needs_relink {
            return Err(RemoteError::NeedsRelink(
                "Google refused the link earlier".into(),
            ));
        }
        let cached = store.google_access_token(user_id).map_err(failed)?;
        let margin = Duration::minutes(REFRESH_MARGIN_MINUTES);
        let mut cached_token = false;
        let access = match cached {
            Some(token) if !refresh_anyway && token.expires_at - margin > now => {
                cached_token = true;
                token.token
            }
            _ => {
                let (client_id, client_secret) = match link.client {
                    GoogleClient::Current => {
                        (&config.google_client_id, &config.google_client_secret)
                    }
                    GoogleClient::Legacy => (
                        &config.legacy_google_client_id,
                        &config.legacy_google_client_secret,
                    ),
                };
                let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
                    return Err(RemoteError::NeedsRelink(
                        "the OAuth client of this link is not in dncs.ini".into(),
                    ));
                };
                let refresh = store
                    .google_refresh_token(user_id)
                    .map_err(failed)?
                    .ok_or_else(|| RemoteError::NeedsRelink("no refresh token".into()))?;
                match token::refresh(
                    agent,
                    &config.google_token_url,
                    client_id,
                    client_secret,
                    &refresh,
                    now,
                ) {
                    Ok(fresh) => {
                        store
                            .set_google_access_token(user_id, &fresh.token, fresh.expires_at, now)
                            .map_err(failed)?;
                        fresh.token
                    }
                    Err(e) if e.needs_relink() => {
                        store
                            .mark_google_needs_relink(user_id, now)
                            .map_err(failed)?;
                        return Err(RemoteError::NeedsRelink(e.to_string()));
                    }
                    Err(e) => return Err(RemoteError::Failed(e.to_string())),
                }
            }
        };
        let calendar_id = if user.calendar_id.trim().is_empty() {
            "primary".to_string()
        } else {
            user.calendar_id.trim().to_string()
        };
        let install_id = super::engine::install_id(store, user_id)?;
        let calendar = Calendar::new(
            agent.clone(),
            &config.google_api_base,
            &calendar_id,
            &access,
        );
        Ok(Self {
            cached_token,
            ..Self::new(calendar, install_id)
        })
    }
}

fn remote_error(e: GoogleError) -> RemoteError {
    match e {
        GoogleError::Gone { ref reason, .. } if reason == "fullSyncRequired" => {
            RemoteError::CursorExpired
        }
        GoogleError::InvalidGrant { .. } | GoogleError::Unauthorized { .. } => {
            RemoteError::NeedsRelink(e.to_string())
        }
        GoogleError::NotFound { message } => RemoteError::CalendarNotFound(message),
        GoogleError::PreconditionFailed => RemoteError::ChangedMeanwhile,
        GoogleError::Transport { .. } | GoogleError::RateLimited { .. } => {
            RemoteError::Unavailable(e.to_string())
        }
        GoogleError::Http { status, .. } if status >= 500 => {
            RemoteError::Unavailable(e.to_string())
        }
        other => RemoteError::Failed(other.to_string()),
    }
}

impl Remote for GoogleRemote {
    fn list(
        &mut self,
        cursor: Option<&str>,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Listing, RemoteError> {
        let listing = match cursor {
            Some(token) => self.calendar.list_changes(Some(token), None),
            None => self.calendar.list_changes(None, Some(window)),
        };
        let listing = match listing {
            Err(GoogleError::NotFound { .. }) => {
                return Err(RemoteError::CalendarNotFound(
                    self.calendar.calendar_id().to_string(),
                ))
            }
            other => other.map_err(remote_error)?,
        };
        Ok(Listing {
            items: listing.events.iter().map(item_of).collect(),
            cursor: listing.next_sync_token,
        })
    }

    fn create(&mut self, cybozu_id: u64, event: &RemoteEvent) -> Result<Written, RemoteError> {
        let mut google = GoogleEvent {
            id: Some(event_id_for(&self.install_id, cybozu_id)),
            ..GoogleEvent::default()
        };
        fill(&mut google, event);
        let inserted = self.calendar.insert(&google).map_err(remote_error)?;
        written(inserted)
    }

    fn update(
        &mut self,
        id: &str,
        etag: Option<&str>,
        event: &RemoteEvent,
    ) -> Result<Written, RemoteError> {
        // Read, change, write: the phone's reminders, colour and other fields are kept. A copy
        // that no longer has the etag the pass knows it by was edited meanwhile: it is left for
        // the next pass to weigh, not written over (the `If-Match` guards the write itself).
        // A day of a series whose master this pass wrote may have a new etag from that write
        // alone (Google can restamp a series' exceptions): it is written as read.
        let expected = self.expected_etag(id, etag);
        let mut google = self.calendar.get(id).map_err(remote_error)?;
        if let Some(expected) = expected {
            if google.etag.as_deref() != Some(expected.as_str()) {
                return Err(RemoteError::ChangedMeanwhile);
            }
        }
        let read_etag = google.etag.clone().ok_or_else(|| {
            RemoteError::Failed(format!("Google sent event {id} without an etag"))
        })?;
        fill(&mut google, event);
        google.id = Some(id.to_string());
        let updated = self
            .calendar
            .update(&google, &read_etag)
            .map_err(remote_error)?;
        if let Some(new_etag) = &updated.etag {
            self.written.insert(id.to_string(), new_etag.clone());
        }
        written(updated)
    }

    /// Under the same `If-Match` as a write: a copy the phone edited after the listing is not
    /// deleted but left for the next pass to weigh by `CONFLICT`.
    fn delete(&mut self, id: &str, etag: Option<&str>) -> Result<(), RemoteError> {
        let expected = self.expected_etag(id, etag);
        self.calendar
            .delete(id, expected.as_deref())
            .map_err(remote_error)
    }

    fn side(&self) -> Side {
        Side::Google
    }
}

/// The series an instance id names (`{master}_20261125T010000Z`, `{master}_20261125`).
fn instance_master(id: &str) -> Option<&str> {
    let (master, day) = id.rsplit_once('_')?;
    let date = day.get(..8)?;
    (date.bytes().all(|b| b.is_ascii_digit()) && !master.is_empty()).then_some(master)
}

fn written(event: GoogleEvent) -> Result<Written, RemoteError> {
    let id = event
        .id
        .ok_or_else(|| RemoteError::Failed("Google returned an event without an id".into()))?;
    Ok(Written {
        id,
        etag: event.etag,
    })
}

/// Writes the engine's fields into a Google event, leaving the others as they are.
fn fill(google: &mut GoogleEvent, event: &RemoteEvent) {
    google.summary = Some(event.title.clone());
    google.description = Some(event.description.clone()).filter(|d| !d.is_empty());
    google.location = Some(event.location.clone()).filter(|l| !l.is_empty());
    let zone = Some(event.timezone.as_str());
    match event.when {
        RemoteWhen::Timed { start, end } => {
            google.start = Some(EventDateTime::from_date_time(start, zone));
            google.end = Some(EventDateTime::from_date_time(end.max(start), zone));
        }
        RemoteWhen::AllDay { start, end } => {
            google.start = Some(EventDateTime::from_date(start));
            google.end = Some(EventDateTime::from_date(end));
        }
    }
    google.recurrence = event.recurrence.clone();
    google.visibility = Some(match event.visibility {
        Visibility::Private => GoogleVisibility::Private,
        Visibility::Public => GoogleVisibility::Public,
        Visibility::Default => GoogleVisibility::Default,
    });
    google.transparency = Some(if event.transparent {
        Transparency::Transparent
    } else {
        Transparency::Opaque
    });
    google.status = Some(if event.tentative {
        EventStatus::Tentative
    } else {
        EventStatus::Confirmed
    });
    if let Some(id) = event.cybozu_id {
        google.set_private_property(PROP_CYBOZU_ID, &id.to_string());
    }
    if let Some(version) = event.cybozu_version {
        google.set_private_property(PROP_CYBOZU_VERSION, &version.to_string());
    }
    if let Some(plan) = &event.plan {
        google.set_private_property(PROP_PLAN, plan);
    }
}

/// What the engine sees of a listed Google event.
fn item_of(google: &GoogleEvent) -> RemoteItem {
    let foreign = !matches!(
        google.event_type,
        None | Some(EventType::Default) | Some(EventType::OutOfOffice)
    );
    let occurrence_of = google.recurring_event_id.as_ref().and_then(|series_id| {
        let original = google.original_start_time.as_ref()?;
        let zone = original
            .time_zone
            .as_deref()
            .or_else(|| google.start.as_ref().and_then(|s| s.time_zone.as_deref()))
            .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
            .unwrap_or(chrono_tz::Asia::Tokyo);
        let date = original.as_date().or_else(|| {
            original
                .as_date_time()
                .map(|t| t.with_timezone(&zone).date_naive())
        })?;
        Some(OccurrenceOf {
            series_id: series_id.clone(),
            date,
        })
    });
    RemoteItem {
        id: google.id.clone().unwrap_or_default(),
        etag: google.etag.clone(),
        updated: google.updated_at(),
        deleted: google.is_cancelled(),
        // An occurrence whose series is not ours is someone else's.
        foreign: foreign || (google.recurring_event_id.is_some() && occurrence_of.is_none()),
        event: remote_event(google),
        occurrence_of,
    }
}

fn remote_event(google: &GoogleEvent) -> Option<RemoteEvent> {
    let start = google.start.as_ref()?;
    let end = google.end.as_ref().unwrap_or(start);
    let when = match (
        start.as_date(),
        end.as_date(),
        start.as_date_time(),
        end.as_date_time(),
    ) {
        (Some(s), Some(e), _, _) => RemoteWhen::AllDay {
            start: s,
            end: e.max(s.succ_opt().unwrap_or(s)),
        },
        (_, _, Some(s), Some(e)) => RemoteWhen::Timed {
            start: s,
            end: e.max(s),
        },
        (_, _, Some(s), None) => RemoteWhen::Timed { start: s, end: s },
        _ => return None,
    };
    let property = |name: &str| google.private_property(name).map(str::to_string);
    Some(RemoteEvent {
        title: google.summary.clone().unwrap_or_default(),
        description: google.description.clone().unwrap_or_default(),
        location: google.location.clone().unwrap_or_default(),
        when,
        timezone: start
            .time_zone
            .clone()
            .unwrap_or_else(|| "Asia/Tokyo".into()),
        recurrence: google.recurrence.clone(),
        visibility: match google.visibility {
            Some(GoogleVisibility::Private) | Some(GoogleVisibility::Confidential) => {
                Visibility::Private
            }
            Some(GoogleVisibility::Public) => Visibility::Public,
            _ => Visibility::Default,
        },
        transparent: google.transparency == Some(Transparency::Transparent),
        tentative: google.status == Some(EventStatus::Tentative),
        cybozu_id: property(PROP_CYBOZU_ID).and_then(|v| v.parse().ok()),
        cybozu_version: property(PROP_CYBOZU_VERSION).and_then(|v| v.parse().ok()),
        plan: property(PROP_PLAN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_name_their_series() {
        assert_eq!(instance_master("abc123_20261125T010000Z"), Some("abc123"));
        assert_eq!(instance_master("abc123_20261125"), Some("abc123"));
        assert_eq!(instance_master("dncs0a1b2c3d"), None);
        assert_eq!(instance_master("some_name"), None);
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn sample() -> RemoteEvent {
        RemoteEvent {
            title: "会議:定例".into(),
            description: "メモ".into(),
            location: "第一会議室".into(),
            when: RemoteWhen::Timed {
                start: utc("2026-11-25T01:00:00Z"),
                end: utc("2026-11-25T02:00:00Z"),
            },
            timezone: "Asia/Tokyo".into(),
            recurrence: vec!["RRULE:FREQ=WEEKLY;BYDAY=WE".into()],
            visibility: Visibility::Private,
            transparent: true,
            tentative: true,
            cybozu_id: Some(42),
            cybozu_version: Some(1_795_568_400),
            plan: Some("会議".into()),
        }
    }

    #[test]
    fn fields_round_trip_through_a_google_event() {
        let mut google = GoogleEvent {
            id: Some("abcde".into()),
            ..GoogleEvent::default()
        };
        fill(&mut google, &sample());
        assert_eq!(remote_event(&google), Some(sample()));
        assert_eq!(google.private_property(PROP_CYBOZU_ID), Some("42"));
        assert_eq!(google.status, Some(EventStatus::Tentative));
    }

    #[test]
    fn all_day_events_use_dates() {
        let mut event = sample();
        event.when = RemoteWhen::AllDay {
            start: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"),
            end: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"),
        };
        let mut google = GoogleEvent::default();
        fill(&mut google, &event);
        assert_eq!(
            google
                .start
                .as_ref()
                .and_then(|s| s.date.clone())
                .as_deref(),
            Some("2026-11-25")
        );
        assert_eq!(
            google.end.as_ref().and_then(|s| s.date.clone()).as_deref(),
            Some("2026-11-28")
        );
        assert_eq!(remote_event(&google).map(|e| e.when), Some(event.when));
    }

    #[test]
    fn only_default_and_out_of_office_events_reach_cybozu() {
        let mut google = GoogleEvent::default();
        fill(&mut google, &sample());
        for (kind, foreign) in [
            (None, false),
            (Some(EventType::Default), false),
            (Some(EventType::OutOfOffice), false),
            (Some(EventType::Birthday), true),
            (Some(EventType::FocusTime), true),
            (Some(EventType::FromGmail), true),
            (Some(EventType::WorkingLocation), true),
        ] {
            google.event_type = kind;
            assert_eq!(item_of(&google).foreign, foreign, "{kind:?}");
        }
    }
}
