//! A CalDAV calendar as the engine's [`Remote`]: one VEVENT per resource with a deterministic
//! name and UID, `sync-collection` when the server offers it (else the ctag and the ETags of the
//! window, remembered in the cursor), and writes guarded by `If-None-Match` / `If-Match`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::convert::RemoteEvent;
use super::engine::{Listing, Remote, RemoteError, Written};
use super::icalendar::{from_vevent, resource};
use super::plan::RemoteItem;
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
    now: DateTime<Utc>,
}

fn remote_error(e: CalDavError) -> RemoteError {
    match e {
        CalDavError::Unauthorized => RemoteError::CredentialsRefused(
            "CalDAV のユーザー名またはパスワードが受け付けられません。同期設定画面で確認してください".into(),
        ),
        CalDavError::SyncTokenInvalid => RemoteError::CursorExpired,
        CalDavError::NotFound { url } => RemoteError::CalendarNotFound(url),
        CalDavError::NoCalendar => RemoteError::CalendarNotFound("CalDAV".into()),
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
            .ok_or_else(|| {
                RemoteError::CredentialsRefused(
                    "CalDAV のパスワードが保存されていません。同期設定画面で入力してください"
                        .into(),
                )
            })?;
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
            let event = crate::ical::parse(&found.ics).ok().and_then(|calendar| {
                calendar
                    .children
                    .iter()
                    .find(|c| c.name == "VEVENT" && c.property("RECURRENCE-ID").is_none())
                    .and_then(|vevent| from_vevent(vevent, &self.timezone))
            });
            items.push(RemoteItem {
                id: found.href.clone(),
                etag: Some(found.etag.clone()),
                updated: None,
                deleted: false,
                // A resource without a usable event (a VTODO, a broken file) is not ours to take.
                foreign: event.is_none(),
                event,
                occurrence_of: None,
            });
            self.known.insert(found.href, (found.etag, found.ics));
        }
        Ok(items)
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
        items.extend(
            before
                .keys()
                .filter(|href| !now.contains_key(*href))
                .cloned()
                .map(Self::removed),
        );
        let cursor = EtagCursor {
            ctag: ctag.unwrap_or_default(),
            etags: now,
        };
        Ok(Listing {
            items,
            cursor: cursor.text(),
        })
    }

    fn current(&mut self, href: &str) -> Result<(String, String), RemoteError> {
        if let Some(found) = self.known.get(href) {
            return Ok(found.clone());
        }
        self.read(&[href.to_string()])?;
        self.known
            .get(href)
            .cloned()
            .ok_or_else(|| RemoteError::Failed(format!("{href} cannot be read")))
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

    fn put_over(&mut self, href: &str, event: &RemoteEvent) -> Result<Written, RemoteError> {
        // One retry: a phone edit between the read and the write (412) is read and kept.
        for _ in 0..2 {
            let (etag, ics) = self.current(href)?;
            let uid = Self::uid_of(&ics, href);
            let text = resource(Some(&ics), &uid, event, self.now);
            match self.client.update(href, &text, &etag) {
                Ok(written) => {
                    self.own
                        .insert(written.href.clone(), Some(written.etag.clone()));
                    self.known
                        .insert(written.href.clone(), (written.etag.clone(), text));
                    return Ok(Written {
                        id: written.href,
                        etag: Some(written.etag),
                    });
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
        let result = self
            .client
            .sync_collection(&self.calendar.url, cursor)
            .map_err(remote_error)?;
        let changed: Vec<String> = result.changed.into_iter().map(|(href, _)| href).collect();
        let mut items = self.read(&changed)?;
        items.extend(result.removed.into_iter().map(Self::removed));
        Ok(Listing {
            items,
            cursor: result.token,
        })
    }

    fn create(&mut self, cybozu_id: u64, event: &RemoteEvent) -> Result<Written, RemoteError> {
        let stem = format!("dncs-{}", event_id_for(&self.install_id, cybozu_id));
        let name = format!("{stem}.ics");
        let uid = format!("{stem}@dncs");
        let text = resource(None, &uid, event, self.now);
        match self.client.create(&self.calendar.url, &name, &text) {
            Ok(written) => {
                self.own
                    .insert(written.href.clone(), Some(written.etag.clone()));
                self.known
                    .insert(written.href.clone(), (written.etag.clone(), text));
                Ok(Written {
                    id: written.href,
                    etag: Some(written.etag),
                })
            }
            // Already there: an earlier pass wrote it and died before recording it.
            Err(CalDavError::PreconditionFailed) => {
                let href = path_of(&format!(
                    "{}/{name}",
                    self.calendar.url.trim_end_matches('/')
                ));
                self.put_over(&href, event)
            }
            Err(e) => Err(remote_error(e)),
        }
    }

    fn update(
        &mut self,
        id: &str,
        _etag: Option<&str>,
        event: &RemoteEvent,
    ) -> Result<Written, RemoteError> {
        self.put_over(id, event)
    }

    fn delete(&mut self, id: &str, _etag: Option<&str>) -> Result<(), RemoteError> {
        self.client.delete(id, None).map_err(remote_error)?;
        self.own.insert(id.to_string(), None);
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
        // client meanwhile) keeps the listed token, to be read next time.
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
            _ => listed,
        }
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

/// The cursor of a server without `sync-collection`: the ctag, then `href etag` per line.
struct EtagCursor {
    ctag: String,
    etags: BTreeMap<String, String>,
}

impl EtagCursor {
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
