//! A CalDAV calendar as the engine's [`Remote`]: one event per resource with a deterministic
//! name and UID, `sync-collection` when the server offers it (else the ctag and the ETags of the
//! window, remembered in the cursor), and writes guarded by `If-None-Match` / `If-Match`. The
//! days of a series that a phone changed or deleted on their own (`RECURRENCE-ID` overrides,
//! `EXDATE`s) are items of their own, written in place inside the series' resource.
//!
//! A day changed in Cybozu itself (「この予定だけ変更」) is not made an override: Cybozu makes it
//! an event of its own and excludes its date from the series, so it goes out as an `EXDATE` in
//! the series and a resource of its own, as the Google target writes it too. Only a day changed
//! on the phone stays an override, paired with the event Cybozu split off for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::convert::{line_is, RemoteEvent, RemoteWhen, Visibility};
use super::engine::{Listing, Remote, RemoteError, Written};
use super::icalendar::resource;
use super::overrides;
use super::plan::{OccurrenceOf, RemoteItem};
use crate::caldav::{Account, CalDavError, CalendarInfo, Client};
use crate::config::Config;
use crate::google::calendar::event_id_for;
use crate::store::{Side, Store, UserId};

/// A user's CalDAV calendar.
pub struct CalDavRemote {
    client: Client,
    calendar: CalendarInfo,
    install_id: String,
    timezone: String,
    /// Resources read by the last listing: (etag, text), so an update keeps what the phone wrote.
    known: HashMap<String, (String, String)>,
    /// This pass's own writes: href → the ETag written, `None` for a deletion.
    own: BTreeMap<String, Option<String>>,
    /// The engine's etag of each master this pass wrote: what a later write of it expects.
    written_etags: HashMap<String, String>,
    /// The cursor this pass listed from, to be stored again with the copies it creates when the
    /// pass does not settle its cursor.
    listed_from: Option<Listed>,
    /// The hrefs of the copies this pass creates, named before they are written.
    creating: BTreeSet<String>,
    now: DateTime<Utc>,
}

/// The cursor a listing started from, parsed.
enum Listed {
    Token(TokenCursor),
    Etags(EtagCursor),
}

/// The engine's etag of a resource's master (the fingerprint of what it maps), as the pass
/// compares it with the one it knows.
fn master_etag(href: &str, ics: &str, zone: &str) -> Option<String> {
    items_of(href, "", ics, zone, false)
        .into_iter()
        .find(|item| item.id == href)
        .and_then(|item| item.etag)
}

fn remote_error(e: CalDavError) -> RemoteError {
    match e {
        CalDavError::Unauthorized => RemoteError::CaldavCredentialsRefused,
        CalDavError::SyncTokenInvalid => RemoteError::CursorExpired,
        CalDavError::NotFound { url } => RemoteError::CaldavNotFound(url),
        CalDavError::NoCalendar => RemoteError::CaldavNotFound("CalDAV URL".into()),
        CalDavError::Transport { .. } | CalDavError::InsufficientStorage => {
            RemoteError::Unavailable(e.to_string())
        }
        CalDavError::Http { status, .. } if status >= 500 => {
            RemoteError::Unavailable(e.to_string())
        }
        other => RemoteError::Failed(other.to_string()),
    }
}

impl CalDavRemote {
    pub fn open(
        store: &Store,
        config: &Config,
        agent: &ureq::Agent,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Self, RemoteError> {
        let failed = |e: crate::store::StoreError| RemoteError::Failed(e.to_string());
        let user = store
            .user_by_id(user_id)
            .map_err(failed)?
            .ok_or_else(|| RemoteError::Failed(format!("no user {user_id}")))?;
        let password = store
            .caldav_password(user_id)
            .map_err(failed)?
            .ok_or(RemoteError::CaldavPasswordMissing)?;
        let client = Client::new(
            agent.clone(),
            Account {
                base_url: user.caldav_url.clone(),
                username: user.caldav_user.clone(),
                password,
            },
        );
        let calendar = client
            .find_calendar(&user.caldav_url)
            .map_err(remote_error)?;
        let install_id = super::engine::install_id(store, user_id)?;
        Ok(Self {
            client,
            calendar,
            install_id,
            timezone: config.timezone.name().to_string(),
            known: HashMap::new(),
            own: BTreeMap::new(),
            written_etags: HashMap::new(),
            listed_from: None,
            creating: BTreeSet::new(),
            now,
        })
    }

    fn read(&mut self, hrefs: &[String]) -> Result<Vec<RemoteItem>, RemoteError> {
        if hrefs.is_empty() {
            return Ok(Vec::new());
        }
        let resources = self
            .client
            .multiget(&self.calendar.url, hrefs)
            .map_err(remote_error)?;
        let mut items = Vec::new();
        for found in resources {
            items.extend(items_of(
                &found.href,
                &found.etag,
                &found.ics,
                &self.timezone,
                true,
            ));
            self.known.insert(found.href, (found.etag, found.ics));
        }
        Ok(items)
    }

    /// The engine's etag of `id` in a resource text this product just wrote.
    fn etag_in(&self, href: &str, text: &str, id: &str) -> Option<String> {
        items_of(href, "", text, &self.timezone, false)
            .into_iter()
            .find(|item| item.id == id)
            .and_then(|item| item.etag)
    }

    fn removed(href: String) -> RemoteItem {
        RemoteItem {
            id: href,
            etag: None,
            updated: None,
            deleted: true,
            foreign: false,
            event: None,
            occurrence_of: None,
        }
    }

    /// Without `sync-collection`: the ctag says whether anything changed; the ETags of the
    /// window, compared with the ones the cursor remembers, say what.
    fn list_by_etags(
        &mut self,
        cursor: Option<&str>,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Listing, RemoteError> {
        let ctag = self.client.ctag(&self.calendar.url).map_err(remote_error)?;
        let previous = cursor.map(EtagCursor::parse);
        self.listed_from = Some(Listed::Etags(
            previous.clone().unwrap_or_else(EtagCursor::empty),
        ));
        if let (Some(previous), Some(ctag)) = (&previous, &ctag) {
            if &previous.ctag == ctag {
                return Ok(Listing {
                    items: Vec::new(),
                    cursor: previous.text(),
                });
            }
        }
        let now: BTreeMap<String, String> = self
            .client
            .list_etags(&self.calendar.url, Some(window))
            .map_err(remote_error)?
            .into_iter()
            .collect();
        let before = previous.map(|p| p.etags).unwrap_or_default();
        let changed: Vec<String> = now
            .iter()
            .filter(|(href, etag)| before.get(*href) != Some(etag))
            .map(|(href, _)| href.clone())
            .collect();
        let mut items = self.read(&changed)?;
        items.extend(self.gone(&before, &now)?.into_iter().map(Self::removed));
        let cursor = EtagCursor {
            ctag: ctag.unwrap_or_default(),
            etags: now,
        };
        Ok(Listing {
            items,
            cursor: cursor.text(),
        })
    }

    /// The hrefs of the last window that the server no longer has. One missing from this
    /// window may only have left it as the days went by (a past event): it is asked for by
    /// name, and only one the server cannot find any more is a deletion.
    fn gone(
        &self,
        before: &BTreeMap<String, String>,
        now: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, RemoteError> {
        let missing: Vec<String> = before
            .keys()
            .filter(|href| !now.contains_key(*href))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(missing);
        }
        // Compared as paths, percent-decoded: a server may spell an href of its multiget reply
        // otherwise than in its listing (a full URL, `%40` for `@`), and a resource taken for
        // gone is deleted from Cybozu Office.
        let still_there: BTreeSet<String> = self
            .client
            .multiget(&self.calendar.url, &missing)
            .map_err(remote_error)?
            .iter()
            .map(|r| href_key(&r.href))
            .collect();
        Ok(missing
            .into_iter()
            .filter(|href| !still_there.contains(&href_key(href)))
            .collect())
    }

    /// The resource as last read or written (ETag, text); `None` when the server has it no more.
    fn current(&mut self, href: &str) -> Result<Option<(String, String)>, RemoteError> {
        if let Some(found) = self.known.get(href) {
            return Ok(Some(found.clone()));
        }
        self.read(&[href.to_string()])?;
        Ok(self.known.get(href).cloned())
    }

    fn uid_of(ics: &str, fallback: &str) -> String {
        crate::ical::parse(ics)
            .ok()
            .and_then(|c| {
                c.children
                    .iter()
                    .find(|v| v.name == "VEVENT")
                    .and_then(|v| v.text("UID"))
            })
            .unwrap_or_else(|| fallback.to_string())
    }

    /// The href of the copy of `cybozu_id`: its name is derived from the id, so it is known
    /// before the copy is written.
    fn name_and_href(&self, cybozu_id: u64) -> (String, String) {
        let name = format!("dncs-{}.ics", event_id_for(&self.install_id, cybozu_id));
        let href = path_of(&format!(
            "{}/{name}",
            self.calendar.url.trim_end_matches('/')
        ));
        (name, href)
    }

    /// Reads the resource, changes it, and writes it back if it still has the ETag read. A phone
    /// edit in between answers 412: with `reapply`, it is read and the change made again on it,
    /// once (a day's override or a tag, which leave the phone's fields alone); without, the
    /// write is left to the next pass ([`RemoteError::ChangedMeanwhile`]), which weighs the
    /// phone's edit against Cybozu's by `CONFLICT` instead of writing over it. `change` answers
    /// `None` when there is nothing to write; a resource gone answers `None` too.
    fn rewrite(
        &mut self,
        href: &str,
        reapply: bool,
        change: impl Fn(&str) -> Result<Option<String>, RemoteError>,
    ) -> Result<Option<(String, String)>, RemoteError> {
        for _ in 0..2 {
            let Some((etag, ics)) = self.current(href)? else {
                return Ok(None);
            };
            let Some(text) = change(&ics)? else {
                return Ok(None);
            };
            match self.client.update(href, &text, &etag) {
                Ok(written) => {
                    self.own
                        .insert(written.href.clone(), Some(written.etag.clone()));
                    self.known
                        .insert(written.href.clone(), (written.etag, text.clone()));
                    return Ok(Some((written.href, text)));
                }
                Err(CalDavError::PreconditionFailed) if !reapply => {
                    self.known.remove(href);
                    return Err(RemoteError::ChangedMeanwhile);
                }
                Err(CalDavError::PreconditionFailed) => {
                    self.known.remove(href);
                }
                Err(e) => return Err(remote_error(e)),
            }
        }
        Err(RemoteError::Failed(format!(
            "{href} kept changing while it was written"
        )))
    }

    /// Writes the master of a resource, its overrides kept. With `expected`, the engine's etag of
    /// the master as this pass knows it (listed now, or as last synced): a master whose mapped
    /// fields no longer match it was edited meanwhile and is not written over
    /// ([`RemoteError::ChangedMeanwhile`]; a 412 on the write says the same). Without, the
    /// change is made on whatever the resource holds (see [`Self::rewrite`]).
    fn put_over(
        &mut self,
        href: &str,
        event: &RemoteEvent,
        expected: Option<&str>,
    ) -> Result<Written, RemoteError> {
        let now = self.now;
        let zone = self.timezone.clone();
        let written = self.rewrite(href, expected.is_none(), |ics| {
            if let Some(expected) = expected {
                if master_etag(href, ics, &zone).as_deref() != Some(expected) {
                    return Err(RemoteError::ChangedMeanwhile);
                }
            }
            let uid = Self::uid_of(ics, href);
            Ok(Some(resource(Some(ics), &uid, event, now)))
        })?;
        let (href, text) =
            written.ok_or_else(|| RemoteError::Failed(format!("{href} cannot be read")))?;
        Ok(Written {
            etag: self.etag_in(&href, &text, &href),
            id: href,
        })
    }

    /// Writes one day of a series into its override (made when there is none). With `expected`
    /// (the engine's etag of that day as this pass knows it), a day edited meanwhile is left to
    /// the next pass, as a master is in [`Self::put_over`].
    fn put_day(
        &mut self,
        href: &str,
        date: NaiveDate,
        event: &RemoteEvent,
        expected: Option<&str>,
    ) -> Result<Written, RemoteError> {
        let (now, zone) = (self.now, self.timezone.clone());
        let id = occurrence_id(href, date);
        let written = self.rewrite(href, expected.is_none(), |ics| {
            if let Some(expected) = expected {
                let current = items_of(href, "", ics, &zone, false)
                    .into_iter()
                    .find(|item| item.id == id)
                    .and_then(|item| item.etag);
                if current.as_deref() != Some(expected) {
                    return Err(RemoteError::ChangedMeanwhile);
                }
            }
            overrides::write_occurrence(ics, date, event, now, &zone)
                .map(Some)
                .ok_or_else(|| {
                    RemoteError::Failed(format!("{href} holds no series with a day on {date}"))
                })
        })?;
        let (href, text) =
            written.ok_or_else(|| RemoteError::Failed(format!("{href} cannot be read")))?;
        let id = occurrence_id(&href, date);
        Ok(Written {
            etag: self.etag_in(&href, &text, &id),
            id,
        })
    }
}

impl Remote for CalDavRemote {
    fn list(
        &mut self,
        cursor: Option<&str>,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Listing, RemoteError> {
        if !self.calendar.supports_sync {
            return self.list_by_etags(cursor, window);
        }
        let mut stored = TokenCursor::parse(cursor.unwrap_or_default());
        let result = match self
            .client
            .sync_collection(&self.calendar.url, stored.token())
        {
            // A token the server forgot: everything again, still minding the copies created
            // after it.
            Err(CalDavError::SyncTokenInvalid) if stored.token().is_some() => {
                stored.token.clear();
                self.client.sync_collection(&self.calendar.url, None)
            }
            other => other,
        }
        .map_err(remote_error)?;
        let listed: BTreeSet<&str> = result
            .changed
            .iter()
            .map(|(href, _)| href.as_str())
            .chain(result.removed.iter().map(String::as_str))
            .collect();
        // A copy created after the token and deleted since may be left out of the answer
        // (RFC 6578 allows it; Xandikos does): not listed means gone.
        let omitted: Vec<String> = stored
            .created
            .iter()
            .filter(|href| !listed.contains(href.as_str()))
            .cloned()
            .collect();
        let changed: Vec<String> = result.changed.into_iter().map(|(href, _)| href).collect();
        let mut items = self.read(&changed)?;
        items.extend(result.removed.into_iter().chain(omitted).map(Self::removed));
        self.listed_from = Some(Listed::Token(stored));
        Ok(Listing {
            items,
            cursor: result.token,
        })
    }

    fn create(&mut self, cybozu_id: u64, event: &RemoteEvent) -> Result<Written, RemoteError> {
        let (name, href) = self.name_and_href(cybozu_id);
        let uid = format!("{}@dncs", name.trim_end_matches(".ics"));
        let text = resource(None, &uid, event, self.now);
        match self.client.create(&self.calendar.url, &name, &text) {
            Ok(written) => {
                self.own
                    .insert(written.href.clone(), Some(written.etag.clone()));
                let etag = self.etag_in(&written.href, &text, &written.href);
                self.known
                    .insert(written.href.clone(), (written.etag, text));
                Ok(Written {
                    id: written.href,
                    etag,
                })
            }
            // Already there: an earlier pass wrote it and died before recording it.
            Err(CalDavError::PreconditionFailed) => self.put_over(&href, event, None),
            Err(e) => Err(remote_error(e)),
        }
    }

    fn update(
        &mut self,
        id: &str,
        etag: Option<&str>,
        event: &RemoteEvent,
    ) -> Result<Written, RemoteError> {
        match split_occurrence_id(id) {
            Some((href, date)) => {
                // A day of a series this pass wrote the master of is written as it stands.
                let expected = match self.own.contains_key(href) {
                    true => None,
                    false => etag,
                };
                self.put_day(href, date, event, expected)
            }
            None => {
                // A master this pass wrote already is expected as written.
                let expected = self
                    .written_etags
                    .get(id)
                    .cloned()
                    .or(etag.map(str::to_string));
                let written = self.put_over(id, event, expected.as_deref())?;
                if let Some(etag) = &written.etag {
                    self.written_etags.insert(id.to_string(), etag.clone());
                }
                Ok(written)
            }
        }
    }

    /// A day of a series is deleted inside its resource: its override goes and its date joins
    /// the master's `EXDATE`s, as a phone deleting "this event only" writes it. A resource is
    /// deleted only as this pass knows it (`etag`, the engine's, as in [`Self::put_over`]) and
    /// under `If-Match`: one a phone edited meanwhile is left to the next pass to weigh.
    fn delete(&mut self, id: &str, etag: Option<&str>) -> Result<(), RemoteError> {
        if let Some((href, date)) = split_occurrence_id(id) {
            let zone = self.timezone.clone();
            self.rewrite(href, true, |ics| {
                Ok(overrides::remove_occurrence(ics, date, &zone))
            })?;
            return Ok(());
        }
        let expected = self
            .written_etags
            .get(id)
            .cloned()
            .or(etag.map(str::to_string));
        let current = match expected {
            Some(_) => self.current(id)?,
            None => None,
        };
        let if_match = match (expected, current) {
            (Some(expected), Some((server_etag, ics))) => {
                if master_etag(id, &ics, &self.timezone) != Some(expected) {
                    return Err(RemoteError::ChangedMeanwhile);
                }
                Some(server_etag)
            }
            // Gone already (the delete answers 404, done), or nothing to expect.
            _ => None,
        };
        match self.client.delete(id, if_match.as_deref()) {
            Ok(()) => {}
            Err(CalDavError::PreconditionFailed) => {
                self.known.remove(id);
                return Err(RemoteError::ChangedMeanwhile);
            }
            Err(e) => return Err(remote_error(e)),
        }
        self.own.insert(id.to_string(), None);
        self.known.remove(id);
        Ok(())
    }

    fn side(&self) -> Side {
        Side::Caldav
    }

    /// A sync token taken before our writes would never report the deletion of an event we
    /// created after it (RFC 6578 lets a server leave out what was created and removed since the
    /// token; Xandikos does), and an ETag cursor would not know it: move the cursor past them.
    fn settle_cursor(&mut self, listed: String) -> String {
        if self.own.is_empty() {
            return listed;
        }
        if !self.calendar.supports_sync {
            // The old ctag stays, so the next pass lists again; the ETags we wrote are known.
            let mut cursor = EtagCursor::parse(&listed);
            for (href, etag) in &self.own {
                match etag {
                    Some(etag) => cursor.etags.insert(href.clone(), etag.clone()),
                    None => cursor.etags.remove(href),
                };
            }
            return cursor.text();
        }
        // The changes since the listed token must be exactly our writes; anything else (another
        // client meanwhile) keeps the listed token, to be read next time, with the copies created
        // after it.
        let keep_listed = TokenCursor {
            token: listed.clone(),
            created: self.creating.clone(),
        }
        .text();
        match self
            .client
            .sync_collection(&self.calendar.url, Some(&listed))
        {
            Ok(result)
                if result
                    .changed
                    .iter()
                    .all(|(href, etag)| self.own.get(href) == Some(&Some(etag.clone())))
                    && result
                        .removed
                        .iter()
                        .all(|href| self.own.get(href) == Some(&None)) =>
            {
                result.token
            }
            _ => keep_listed,
        }
    }

    fn cursor_before_creating(&mut self, cybozu_ids: &[u64]) -> Option<String> {
        for id in cybozu_ids {
            let (_, href) = self.name_and_href(*id);
            self.creating.insert(href);
        }
        match self.listed_from.as_ref()? {
            Listed::Token(from) => {
                let mut cursor = from.clone();
                cursor.created.extend(self.creating.iter().cloned());
                Some(cursor.text())
            }
            // An ETag no server gives: the next listing reads the copy, or finds it gone.
            Listed::Etags(from) => {
                let mut cursor = from.clone();
                for href in &self.creating {
                    cursor
                        .etags
                        .entry(href.clone())
                        .or_insert_with(|| UNKNOWN_ETAG.to_string());
                }
                Some(cursor.text())
            }
        }
    }
}

/// What the engine sees of one resource: its master, and each day of its series that a
/// client changed (an override) or deleted (a cancelled override, an `EXDATE`) on its own.
///
/// Every `EXDATE` is reported as a deleted day, not only the ones a phone added: which ones
/// are new is decided against the Cybozu series' exclusions by the planner. Comparing with
/// what this product last wrote would need that kept per pair, would be lost with the mapping,
/// and would try a day again after a pass that died between Cybozu's removal and the record;
/// Cybozu's exclusions are the truth and make a repeated pass harmless.
fn items_of(href: &str, etag: &str, ics: &str, zone: &str, log_ignored: bool) -> Vec<RemoteItem> {
    let parsed = crate::ical::parse(ics)
        .map(|calendar| overrides::read(&calendar, zone))
        .unwrap_or_default();
    if log_ignored {
        for value in &parsed.ignored {
            log::info!(
                "{href}: the override RECURRENCE-ID {value} names no day of its series; it stays as it is and is not synced"
            );
        }
    }
    let master = RemoteItem {
        id: href.to_string(),
        etag: Some(
            parsed
                .master
                .as_ref()
                .map_or_else(|| etag.to_string(), fingerprint),
        ),
        updated: None,
        deleted: false,
        // A resource without a usable event (a VTODO, a broken file) is not ours to take.
        foreign: parsed.master.is_none(),
        event: parsed.master,
        occurrence_of: None,
    };
    let days = parsed.occurrences.into_iter().map(|day| RemoteItem {
        id: occurrence_id(href, day.date),
        etag: day.event.as_ref().map(fingerprint),
        updated: None,
        deleted: day.event.is_none(),
        foreign: false,
        event: day.event,
        occurrence_of: Some(OccurrenceOf {
            series_id: href.to_string(),
            date: day.date,
        }),
    });
    std::iter::once(master).chain(days).collect()
}

/// The id of one day of the series in the resource `href`: the href, `#`, the day (`YYYYMMDD`).
/// An href never holds a `#` (it would end the path), so this can never be a resource's id; and
/// the day, rather than the `RECURRENCE-ID` as written, keeps the id when a client rewrites that
/// in another form (with a `TZID`, in UTC).
fn occurrence_id(href: &str, date: NaiveDate) -> String {
    format!("{href}#{}", date.format("%Y%m%d"))
}

fn split_occurrence_id(id: &str) -> Option<(&str, NaiveDate)> {
    let (href, day) = id.rsplit_once('#')?;
    Some((href, NaiveDate::parse_from_str(day, "%Y%m%d").ok()?))
}

/// What the engine keeps as the etag of a CalDAV event: a digest of the fields it maps, taken
/// per VEVENT. The resource's ETag changes with any of its parts (a day's override, an alarm),
/// and would make the series and each of its days look changed whenever one of them is. The
/// `EXDATE`s are left out: a deleted day reaches Cybozu as a day of its own (see `items_of`),
/// never as a change of the whole series, and this product's own `EXDATE` for a day Cybozu
/// deleted must not make the series look changed either.
fn fingerprint(event: &RemoteEvent) -> String {
    let when = match event.when {
        RemoteWhen::Timed { start, end } => format!("{}/{}", start.to_rfc3339(), end.to_rfc3339()),
        RemoteWhen::AllDay { start, end } => format!("{start}/{end}"),
    };
    let rule: Vec<String> = event
        .recurrence
        .iter()
        .filter(|line| !line_is(line, "EXDATE"))
        .map(|line| rule_parts_in_order(line))
        .collect();
    let visibility = match event.visibility {
        Visibility::Default => "",
        Visibility::Public => "public",
        Visibility::Private => "private",
    };
    let fields = [
        event.title.as_str(),
        &event.description,
        &event.location,
        &when,
        &event.timezone,
        &rule.join("\n"),
        visibility,
        if event.transparent { "transparent" } else { "" },
        if event.tentative { "tentative" } else { "" },
        &event.cybozu_id.map(|id| id.to_string()).unwrap_or_default(),
        &event
            .cybozu_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
        event.plan.as_deref().unwrap_or("\u{0}"),
    ];
    let digest = crate::hash::sha256(fields.join("\u{1f}").as_bytes());
    format!("dncs:{}", crate::hash::hex(&digest[..16]))
}

/// An `RRULE` line with its parts in one order. RFC 5545 lets them come in any, and a server
/// may store them in another than this product wrote (Xandikos rewrites
/// `FREQ=WEEKLY;BYDAY=TU;UNTIL=…` as `FREQ=WEEKLY;UNTIL=…;BYDAY=TU`): read back, the series must
/// not look changed, or the next pass that reads it writes it to Cybozu again (and takes a
/// Cybozu edit of it for a conflict). The order is the one this product writes (`FREQ`, the
/// others, `UNTIL` or `COUNT` last), so the etags stored before it was chosen still match.
fn rule_parts_in_order(line: &str) -> String {
    match line.split_once(':') {
        Some((name, rule)) if line_is(line, "RRULE") => {
            let mut parts: Vec<&str> = rule.split(';').filter(|p| !p.is_empty()).collect();
            parts.sort_by_key(|part| {
                let rank = if line_is(part, "FREQ=") {
                    0
                } else if line_is(part, "UNTIL=") || line_is(part, "COUNT=") {
                    2
                } else {
                    1
                };
                (rank, *part)
            });
            format!("{name}:{}", parts.join(";"))
        }
        _ => line.to_string(),
    }
}

/// The path of an absolute URL (servers name resources by path).
fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".to_string(), |at| rest[at..].to_string()),
        None => url.to_string(),
    }
}

/// The ETag an [`EtagCursor`] holds for a copy named before it was written.
const UNKNOWN_ETAG: &str = "-";

/// The cursor of a server with `sync-collection`: the sync token, then the hrefs of the copies
/// created after it by a pass that did not settle its cursor (killed, or a write failed), one per
/// line. An empty token lists from scratch.
#[derive(Debug, Clone, Default, PartialEq)]
struct TokenCursor {
    token: String,
    created: BTreeSet<String>,
}

impl TokenCursor {
    fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let token = lines.next().unwrap_or_default().to_string();
        let created = lines
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        Self { token, created }
    }

    fn token(&self) -> Option<&str> {
        (!self.token.is_empty()).then_some(self.token.as_str())
    }

    fn text(&self) -> String {
        let mut out = self.token.clone();
        for href in &self.created {
            out.push('\n');
            out.push_str(href);
        }
        out
    }
}

/// The cursor of a server without `sync-collection`: the ctag, then `href etag` per line.
#[derive(Debug, Clone, PartialEq)]
struct EtagCursor {
    ctag: String,
    etags: BTreeMap<String, String>,
}

impl EtagCursor {
    fn empty() -> Self {
        Self {
            ctag: String::new(),
            etags: BTreeMap::new(),
        }
    }

    fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let ctag = lines.next().unwrap_or_default().to_string();
        let etags = lines
            .filter_map(|line| line.split_once(' '))
            .map(|(href, etag)| (href.to_string(), etag.to_string()))
            .collect();
        Self { ctag, etags }
    }

    fn text(&self) -> String {
        let mut out = self.ctag.clone();
        for (href, etag) in &self.etags {
            out.push('\n');
            out.push_str(href);
            out.push(' ');
            out.push_str(etag);
        }
        out
    }
}

/// An href as a path, percent-decoded: the form two spellings of one resource share.
fn href_key(href: &str) -> String {
    let path = match href.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => href,
    };
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_spellings_of_one_href_are_one_resource() {
        let path = "/dav/calendars/sato@example.jp/work/a%20b.ics";
        for other in [
            "/dav/calendars/sato%40example.jp/work/a%20b.ics",
            "https://dav.example.jp/dav/calendars/sato@example.jp/work/a b.ics",
        ] {
            assert_eq!(href_key(path), href_key(other), "{other}");
        }
        assert_ne!(
            href_key(path),
            href_key("/dav/calendars/sato@example.jp/work/c.ics")
        );
    }

    const HREF: &str = "/alice/work/dncs-abc.ics";

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    /// A weekly series (Tuesdays 8:00 JST) with one week excluded, one day moved by a phone and
    /// one day cancelled by another.
    const SERIES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:s1\r\n\
        DTSTART:20261123T230000Z\r\nDTEND:20261123T233000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=TU\r\n\
        EXDATE;TZID=Asia/Tokyo:20261201T080000\r\nSUMMARY:朝の個人作業\r\nX-DNCS-CYBOZU-ID:8\r\n\
        END:VEVENT\r\nBEGIN:VEVENT\r\nUID:s1\r\nRECURRENCE-ID;TZID=Asia/Tokyo:20261208T080000\r\n\
        DTSTART:20261208T050000Z\r\nDTEND:20261208T053000Z\r\nSUMMARY:午後に変更\r\n\
        X-DNCS-CYBOZU-ID:8\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:s1\r\n\
        RECURRENCE-ID:20261214T230000Z\r\nDTSTART:20261214T230000Z\r\nDTEND:20261214T233000Z\r\n\
        STATUS:CANCELLED\r\nSUMMARY:朝の個人作業\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn a_series_resource_is_its_master_and_its_days() {
        let items = items_of(HREF, "\"e1\"", SERIES, "Asia/Tokyo", false);
        let seen: Vec<(&str, bool, Option<NaiveDate>)> = items
            .iter()
            .map(|i| {
                (
                    i.id.as_str(),
                    i.deleted,
                    i.occurrence_of.as_ref().map(|o| o.date),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (HREF, false, None),
                (
                    "/alice/work/dncs-abc.ics#20261201",
                    true,
                    Some(d("2026-12-01"))
                ),
                (
                    "/alice/work/dncs-abc.ics#20261208",
                    false,
                    Some(d("2026-12-08"))
                ),
                (
                    "/alice/work/dncs-abc.ics#20261215",
                    true,
                    Some(d("2026-12-15"))
                ),
            ]
        );
        assert!(items[1..]
            .iter()
            .all(|i| i.occurrence_of.as_ref().map(|o| o.series_id.as_str()) == Some(HREF)));
        assert_eq!(
            items[2].event.as_ref().map(|e| e.title.as_str()),
            Some("午後に変更")
        );
        // Each part has an etag of its own, none the resource's.
        assert!(items[0]
            .etag
            .as_deref()
            .is_some_and(|e| e.starts_with("dncs:")));
        assert_ne!(items[0].etag, items[2].etag);
        assert_eq!(items[1].etag, None);
    }

    #[test]
    fn a_days_id_is_never_a_resources_and_reads_back() {
        let id = occurrence_id(HREF, d("2026-12-08"));
        assert_eq!(split_occurrence_id(&id), Some((HREF, d("2026-12-08"))));
        assert_eq!(split_occurrence_id(HREF), None);
        // A percent-encoded `#` in a name is part of the path, not a day.
        assert_eq!(split_occurrence_id("/alice/work/a%2320261208.ics"), None);
    }

    #[test]
    fn a_series_etag_changes_with_its_fields_but_not_with_its_days() {
        let items = items_of(HREF, "\"e1\"", SERIES, "Asia/Tokyo", false);
        let master = items[0].event.clone().expect("master");
        let mut more_exdates = master.clone();
        more_exdates
            .recurrence
            .push("EXDATE;TZID=Asia/Tokyo:20261222T080000".into());
        assert_eq!(fingerprint(&master), fingerprint(&more_exdates));
        let mut retitled = master.clone();
        retitled.title = "朝の作業".into();
        assert_ne!(fingerprint(&master), fingerprint(&retitled));
        let mut other_rule = master.clone();
        other_rule.recurrence[0] = "RRULE:FREQ=WEEKLY;BYDAY=WE".into();
        assert_ne!(fingerprint(&master), fingerprint(&other_rule));
        // Another day's override changing leaves the master and the other days as they were.
        let edited = SERIES.replace("SUMMARY:午後に変更", "SUMMARY:夕方に変更");
        let again = items_of(HREF, "\"e2\"", &edited, "Asia/Tokyo", false);
        assert_eq!(again[0].etag, items[0].etag);
        assert_ne!(again[2].etag, items[2].etag);
    }

    #[test]
    fn a_series_read_back_with_its_rule_parts_reordered_is_unchanged() {
        let rule = |parts: &str| {
            let text = SERIES.replace("RRULE:FREQ=WEEKLY;BYDAY=TU", &format!("RRULE:{parts}"));
            items_of(HREF, "\"e1\"", &text, "Asia/Tokyo", false)[0]
                .etag
                .clone()
        };
        let written = rule("FREQ=WEEKLY;BYDAY=TU;UNTIL=20270329T230000Z");
        assert_eq!(rule("FREQ=WEEKLY;UNTIL=20270329T230000Z;BYDAY=TU"), written);
        assert_eq!(rule("UNTIL=20270329T230000Z;BYDAY=TU;FREQ=WEEKLY"), written);
        assert_ne!(rule("FREQ=WEEKLY;UNTIL=20270322T230000Z;BYDAY=TU"), written);
        assert_ne!(rule("FREQ=WEEKLY;BYDAY=TU"), written);
        // The etag of a rule as this product writes it is the one it had before (and stored).
        let mut master = items_of(HREF, "\"e1\"", SERIES, "Asia/Tokyo", false)[0]
            .event
            .clone()
            .expect("master");
        master.recurrence = vec!["RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270329T230000Z".into()];
        assert_eq!(
            fingerprint(&master),
            "dncs:ba9ed42f8503a86412dd48c7a0fcf188"
        );
    }

    #[test]
    fn a_resource_without_a_usable_event_is_foreign() {
        let todo = "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        let items = items_of(HREF, "\"e1\"", todo, "Asia/Tokyo", false);
        assert_eq!(items.len(), 1);
        assert!(items[0].foreign);
        assert_eq!(items[0].etag.as_deref(), Some("\"e1\""));
    }

    use std::sync::Arc;

    /// A CalDAV server on loopback that answers every request 207 with the multistatus `answer`
    /// makes of its method and body.
    struct Fake {
        url: String,
        server: Arc<tiny_http::Server>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Fake {
        fn start(answer: impl Fn(&str, &str) -> String + Send + 'static) -> Self {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("listens"));
            let port = server.server_addr().to_ip().expect("ip").port();
            let serving = server.clone();
            let thread = std::thread::spawn(move || {
                while let Ok(mut request) = serving.recv() {
                    let mut body = String::new();
                    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
                    let reply = answer(request.method().as_str(), &body);
                    let _ = request
                        .respond(tiny_http::Response::from_string(reply).with_status_code(207));
                }
            });
            Self {
                url: format!("http://127.0.0.1:{port}/cal/"),
                server,
                thread: Some(thread),
            }
        }

        fn remote(&self, supports_sync: bool) -> CalDavRemote {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            CalDavRemote {
                client: Client::new(
                    agent,
                    Account {
                        base_url: self.url.clone(),
                        username: "u".into(),
                        password: "p".into(),
                    },
                ),
                calendar: CalendarInfo {
                    url: self.url.clone(),
                    display_name: None,
                    ctag: None,
                    supports_sync,
                },
                install_id: "install".into(),
                timezone: "Asia/Tokyo".into(),
                known: HashMap::new(),
                own: BTreeMap::new(),
                written_etags: HashMap::new(),
                listed_from: None,
                creating: BTreeSet::new(),
                now: DateTime::from_timestamp(0, 0).expect("epoch"),
            }
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// A multistatus of (href, etag) members, with the event's text when `data` is set, and a
    /// sync token when given.
    fn multistatus(members: &[(&str, &str)], data: bool, token: Option<&str>) -> String {
        let mut out = String::from(
            r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/">"#,
        );
        for (href, etag) in members {
            let text = if data {
                format!(
                    "<c:calendar-data>BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:{href}\r\n\
                     DTSTART:20261125T000000Z\r\nDTEND:20261125T010000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\n\
                     END:VCALENDAR\r\n</c:calendar-data>"
                )
            } else {
                String::new()
            };
            out.push_str(&format!(
                "<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>{etag}</d:getetag>\
                 <cs:getctag>ctag-2</cs:getctag>{text}</d:prop><d:status>HTTP/1.1 200 OK</d:status>\
                 </d:propstat></d:response>"
            ));
        }
        if let Some(token) = token {
            out.push_str(&format!("<d:sync-token>{token}</d:sync-token>"));
        }
        out.push_str("</d:multistatus>");
        out
    }

    fn window() -> (DateTime<Utc>, DateTime<Utc>) {
        let at = |s| DateTime::from_timestamp(s, 0).expect("time");
        (at(1_790_000_000), at(1_800_000_000))
    }

    fn removed(listing: &Listing) -> Vec<&str> {
        listing
            .items
            .iter()
            .filter(|i| i.deleted)
            .map(|i| i.id.as_str())
            .collect()
    }

    #[test]
    fn a_copy_created_after_the_token_that_the_answer_leaves_out_is_gone() {
        // Both copies were created after token t1 by a pass that did not settle; the server
        // reports the one still there and, as RFC 6578 allows, nothing of the deleted one.
        let fake = Fake::start(|_, body| {
            if body.contains("sync-collection") {
                assert!(body.contains(">t1<"), "{body}");
                multistatus(&[("/cal/kept.ics", "\"2\"")], false, Some("t2"))
            } else {
                multistatus(&[("/cal/kept.ics", "\"2\"")], true, None)
            }
        });
        let mut remote = fake.remote(true);
        let cursor = "t1\n/cal/kept.ics\n/cal/deleted.ics";
        let listing = remote.list(Some(cursor), window()).expect("listed");
        assert_eq!(removed(&listing), ["/cal/deleted.ics"]);
        assert_eq!(listing.cursor, "t2");
        assert_eq!(TokenCursor::parse("t1").created, BTreeSet::new());
    }

    #[test]
    fn the_copies_about_to_be_created_are_stored_with_the_cursor_listed_from() {
        let fake = Fake::start(|_, body| {
            if body.contains("sync-collection") {
                multistatus(&[], false, Some("t2"))
            } else {
                multistatus(&[], true, None)
            }
        });
        let mut remote = fake.remote(true);
        remote
            .list(Some("t1\n/cal/earlier.ics"), window())
            .expect("listed");
        let cursor = remote.cursor_before_creating(&[7]).expect("a cursor");
        let (_, href) = remote.name_and_href(7);
        assert!(
            href.starts_with("/cal/dncs-") && href.ends_with(".ics"),
            "{href}"
        );
        let parsed = TokenCursor::parse(&cursor);
        assert_eq!(
            parsed.token, "t1",
            "still before every change not yet applied"
        );
        assert_eq!(
            parsed.created,
            ["/cal/earlier.ics".to_string(), href].into_iter().collect()
        );
    }

    #[test]
    fn an_event_that_left_the_window_is_no_deletion() {
        // The last listing saw a.ics, old.ics and gone.ics; the window now holds only a.ics.
        // old.ics is still on the server (a past event), gone.ics is not.
        let fake = Fake::start(|method, body| match method {
            "PROPFIND" => multistatus(&[("/cal/", "\"c\"")], false, None),
            _ if body.contains("calendar-query") => {
                multistatus(&[("/cal/a.ics", "\"1\"")], false, None)
            }
            _ => {
                let asked: Vec<&str> = ["/cal/old.ics", "/cal/gone.ics"]
                    .into_iter()
                    .filter(|h| body.contains(h))
                    .collect();
                assert!(!body.contains("a.ics"), "{body}");
                let found: Vec<(&str, &str)> = asked
                    .into_iter()
                    .filter(|h| *h == "/cal/old.ics")
                    .map(|h| (h, "\"1\""))
                    .collect();
                multistatus(&found, true, None)
            }
        });
        let mut remote = fake.remote(false);
        let cursor = EtagCursor {
            ctag: "ctag-1".into(),
            etags: [
                ("/cal/a.ics", "\"1\""),
                ("/cal/old.ics", "\"1\""),
                ("/cal/gone.ics", "\"1\""),
            ]
            .into_iter()
            .map(|(h, e)| (h.to_string(), e.to_string()))
            .collect(),
        };
        let listing = remote.list(Some(&cursor.text()), window()).expect("listed");
        assert_eq!(removed(&listing), ["/cal/gone.ics"]);
        assert!(listing.items.iter().all(|i| i.deleted), "nothing changed");
        assert_eq!(
            EtagCursor::parse(&listing.cursor)
                .etags
                .keys()
                .collect::<Vec<_>>(),
            ["/cal/a.ics"]
        );
    }
}
