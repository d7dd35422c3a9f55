//! One user's pass: read both sides incrementally, plan, apply, and store the mapping after every
//! applied change so that a pass killed at any point resumes without duplicates. The remote side
//! is the [`Remote`] trait; Google and CalDAV implement it.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::convert::{line_is, to_cybozu, to_remote, Directory, InboundRules, RemoteEvent};
use super::plan::{plan, Action, Changes, Context, Direction, Note, Pair, Plan, RemoteItem};
use crate::config::{Config, Lang};
use crate::cybozu::repeat::{excludes, matches, zone};
use crate::cybozu::{ChangeKind, Client, CybozuError, Event, EventType, ItemVersion, RepeatScope};
use crate::store::{Mapping, PassCounts, Side, Store, StoreError, UserId};

/// Ids read from Cybozu per `ScheduleGetEventsById` request.
const READ_BATCH: usize = 100;

/// What the remote side reports of a listing.
#[derive(Debug, Clone)]
pub struct Listing {
    pub items: Vec<RemoteItem>,
    /// The cursor to list from next time (a sync token, a ctag…).
    pub cursor: String,
}

/// What a write on the remote side gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: String,
    pub etag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The Google link is refused (`invalid_grant`): skip the user until they press 認証 again.
    #[error("{0}")]
    NeedsRelink(String),
    /// The CalDAV server refuses the stored user name or password.
    #[error("the CalDAV server refuses the user name or password")]
    CaldavCredentialsRefused,
    /// No CalDAV password is stored for the user.
    #[error("no CalDAV password is stored")]
    CaldavPasswordMissing,
    /// The cursor is too old: list everything again.
    #[error("the remote listing must start over")]
    CursorExpired,
    /// The calendar itself is missing.
    #[error("{0}")]
    CalendarNotFound(String),
    /// The CalDAV calendar (or the event) at this URL is missing: deleted or moved on the server.
    #[error("no such CalDAV calendar or event at {0}")]
    CaldavNotFound(String),
    /// The event changed on the calendar after this pass listed it (a phone edit meanwhile):
    /// it is not written over. The next pass lists the change and settles both sides by
    /// `CONFLICT`, as for an edit made before the pass.
    #[error("the event changed on the calendar during the pass")]
    ChangedMeanwhile,
    /// The server cannot be reached or keeps failing (connection, 5xx, throttling) after the
    /// connector's retries: the rest of the pass would only fail the same way, one by one.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// The remote calendar of one user.
pub trait Remote {
    /// Changes since `cursor`; everything in `window` when `cursor` is `None`.
    fn list(
        &mut self,
        cursor: Option<&str>,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Listing, RemoteError>;
    /// Creates the copy of a Cybozu event; a retry after a crash must not make a second copy.
    fn create(&mut self, cybozu_id: u64, event: &RemoteEvent) -> Result<Written, RemoteError>;
    fn update(
        &mut self,
        id: &str,
        etag: Option<&str>,
        event: &RemoteEvent,
    ) -> Result<Written, RemoteError>;
    /// Deleting what is already gone succeeds.
    fn delete(&mut self, id: &str, etag: Option<&str>) -> Result<(), RemoteError>;
    /// Which `Side` its cursor is stored under.
    fn side(&self) -> Side;
    /// The cursor to store after this pass's writes, given the one `list` answered. A server
    /// whose cursor forgets what was created and deleted after it (a CalDAV sync token, an
    /// ETag list) moves it past our own writes here, so their later deletion is seen.
    fn settle_cursor(&mut self, listed: String) -> String {
        listed
    }
    /// Before this pass creates the copies of `cybozu_ids`: the cursor to store at once, for a
    /// pass that ends before [`Remote::settle_cursor`] (killed, or a write failed). It is the
    /// cursor listed from, which still precedes every change not yet applied, plus what the
    /// remote needs to see those copies deleted later. `None`: the stored cursor will do.
    fn cursor_before_creating(&mut self, _cybozu_ids: &[u64]) -> Option<String> {
        None
    }
}

/// This installation's id, made on first use: remote ids derived from it (Google event ids,
/// CalDAV resource names) stay the same across passes and never collide with another install's.
pub fn install_id(store: &Store, user_id: UserId) -> Result<String, RemoteError> {
    store
        .setting_or_insert_with(crate::store::SETTING_INSTALL_ID, || {
            crate::secret::random_token(16).unwrap_or_else(|_| user_id.to_string())
        })
        .map_err(|e| RemoteError::Failed(e.to_string()))
}

/// Why a pass could not run for a user.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("{0}")]
    Cybozu(#[from] CybozuError),
    #[error("{0}")]
    Remote(#[from] RemoteError),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A bug stopped the pass: a panic, caught by the run so that the other users still sync.
    /// The panic's message, when it had one.
    #[error("the pass panicked: {0}")]
    Panicked(String),
}

impl PassError {
    /// The sentence 同期履歴 shows, in `LANG`.
    pub fn sentence(&self, lang: Lang) -> String {
        match self {
            Self::Cybozu(e) if e.is_login_failure() => lang.pick(
                "サイボウズ Office のパスワードが変更されました。同期設定画面に再ログインしてください",
                "Your Cybozu Office password has changed. Please log in to the sync settings again",
            ).into(),
            Self::Cybozu(e) => lang.pick(
                format!("サイボウズ Office から読み込めなかったため、この同期では何も変更していません（{e}）"),
                format!("Cybozu Office could not be read, so this sync changed nothing ({e})"),
            ),
            // The CalDAV target says what to check there (no 「認証」 for it).
            Self::Remote(RemoteError::CaldavCredentialsRefused) => lang.pick(
                "CalDAV のユーザー名またはパスワードが受け付けられません。同期設定画面で確認してください",
                "The CalDAV server does not accept the user name or password. Please check them in the sync settings",
            ).into(),
            Self::Remote(RemoteError::CaldavPasswordMissing) => lang.pick(
                "CalDAV のパスワードが保存されていません。同期設定画面で入力してください",
                "No CalDAV password is stored. Please enter it in the sync settings",
            ).into(),
            Self::Remote(RemoteError::NeedsRelink(_)) => lang.pick(
                "Google カレンダーとの連携が取り消されています。同期設定画面で「認証」を押して連携し直してください",
                "The link to Google Calendar has been revoked. Please press Authorize in the sync settings to link it again",
            ).into(),
            Self::Remote(RemoteError::CaldavNotFound(url)) => lang.pick(
                format!("CalDAV カレンダー（{url}）が見つかりません。サーバーでカレンダーが削除または移動されていないか確認し、同期設定画面で CalDAV URL を確認してください"),
                format!("The CalDAV calendar ({url}) was not found. Please check that it was not deleted or moved on the server, and check the CalDAV URL in the sync settings"),
            ),
            Self::Remote(RemoteError::CalendarNotFound(id)) => lang.pick(
                format!("カレンダー「{id}」が見つかりません。同期設定画面でカレンダーIDを確認してください"),
                format!("The calendar \"{id}\" was not found. Please check the calendar ID in the sync settings"),
            ),
            Self::Remote(RemoteError::ChangedMeanwhile) => lang.pick(
                "同期の途中でカレンダー側でも変更されたため書き込まず、次回の同期で反映します",
                "The calendar changed during this sync, so nothing was written over it; the next sync takes the change in",
            ).into(),
            Self::Remote(e) => lang.pick(
                format!("カレンダーとの通信に失敗したため、この同期を中断しました（{e}）"),
                format!("Communication with the calendar failed, so this sync was stopped ({e})"),
            ),
            Self::Store(e) => lang.pick(
                format!("データベースの処理に失敗しました（{e}）"),
                format!("A database operation failed ({e})"),
            ),
            Self::Panicked(detail) => lang.pick(
                format!("dncs の内部エラーのため、この同期を中断しました。続く場合は管理者に連絡してください（{detail}）"),
                format!("An internal error of dncs stopped this sync. If it happens again, please contact your administrator ({detail})"),
            ),
        }
    }
}

/// Writes in a row that find the server unreachable before a pass stops.
const UNREACHABLE_WRITES_TO_STOP: u32 = 2;

/// What a pass did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub plan: Plan,
    pub counts: PassCounts,
    /// Sentences for 同期履歴: failed actions and notes.
    pub messages: Vec<String>,
    /// The sentence of an error that every later action would meet too, when one ended the
    /// pass early (the calendar or Cybozu Office unreachable, the link refused); what the pass
    /// did before it is counted and told all the same.
    pub stopped: Option<String>,
}

/// The pieces of a pass for one user.
pub struct Pass<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    pub user_id: UserId,
    pub cybozu: &'a Client,
    pub remote: &'a mut dyn Remote,
    pub now: DateTime<Utc>,
}

impl Pass<'_> {
    fn cybozu_user(&self) -> u64 {
        u64::try_from(self.user_id).unwrap_or_default()
    }

    /// `today − SYNC_PAST_DAYS` to `today + SYNC_FUTURE_DAYS`.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let past = chrono::Duration::days(i64::from(self.config.sync_past_days));
        let future = chrono::Duration::days(i64::from(self.config.sync_future_days));
        (self.now - past, self.now + future)
    }

    /// Reads both sides and plans; nothing is written.
    pub fn read_and_plan(&mut self) -> Result<(Plan, Snapshot), PassError> {
        let window = self.window();
        let mappings = self.store.mappings_for_user(self.user_id)?;
        let pairs: Vec<Pair> = mappings.iter().filter_map(pair_of).collect();
        let mut snapshot = Snapshot::default();
        let mut changes = Changes::default();
        if pairs.is_empty() {
            // First pass: the whole window, so existing copies can be adopted.
            snapshot.window_events = self.cybozu.events(window.0, window.1)?;
        } else {
            let known: Vec<ItemVersion> = pairs
                .iter()
                .map(|p| ItemVersion {
                    id: p.cybozu_id,
                    version: p.cybozu_version,
                })
                .collect();
            let reported = self.cybozu.event_versions(window.0, window.1, &known)?;
            let mut wanted = Vec::new();
            let mut removed = Vec::new();
            for change in reported {
                match change.kind {
                    ChangeKind::Add | ChangeKind::Modify => wanted.push(change.id),
                    ChangeKind::Remove => removed.push(change.id),
                }
            }
            let (events, _) = self.read_events(&wanted)?;
            changes.cybozu_changed = events;
            // "Removed" may only mean "left the window" or "no longer yours": look before deleting.
            let (still_there, missing) = self.read_events(&removed)?;
            let user = self.cybozu_user();
            changes.cybozu_deleted = missing;
            changes.cybozu_deleted.extend(
                still_there
                    .iter()
                    .filter(|e| !e.has_user(user))
                    .filter_map(|e| e.id),
            );
        }
        let cursor = self.store.cursor(self.user_id, self.remote.side())?;
        let listing = match self.remote.list(cursor.as_deref(), window) {
            Err(RemoteError::CursorExpired) => self.remote.list(None, window)?,
            other => other?,
        };
        snapshot.cursor = Some(listing.cursor);
        changes.remote = listing.items;
        if !pairs.is_empty() {
            // Days of paired series changed on their own are checked against the Cybozu series
            // as it stands (which days it has, which it excludes already).
            let series = series_to_read(&pairs, &changes);
            let (events, _) = self.read_events(&series)?;
            snapshot.window_events.extend(events);
        }
        // Titles are split on the plan menu only where events may be paired: a quiet pass asks
        // Cybozu nothing more.
        let mapped: BTreeSet<&str> = pairs.iter().map(|p| p.remote_id.as_str()).collect();
        let plan_menu = if changes
            .remote
            .iter()
            .any(|r| !mapped.contains(r.id.as_str()))
        {
            self.cybozu.profiles()?.plan_menu
        } else {
            Vec::new()
        };
        let ctx = Context {
            pairs: &pairs,
            conflict: self.config.conflict,
            lang: self.config.lang,
            plan_menu: &plan_menu,
            window,
            cybozu_window: &snapshot.window_events,
        };
        let planned = plan(&ctx, &changes);
        snapshot.cybozu = changes
            .cybozu_changed
            .iter()
            .chain(snapshot.window_events.iter())
            .filter_map(|e| Some((e.id?, e.clone())))
            .collect();
        snapshot.remote = changes
            .remote
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        snapshot.pairs = pairs.into_iter().map(|p| (p.cybozu_id, p)).collect();
        Ok((planned, snapshot))
    }

    /// Reads events in batches; ids that no longer exist are returned apart.
    fn read_events(&self, ids: &[u64]) -> Result<(Vec<Event>, Vec<u64>), CybozuError> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for batch in ids.chunks(READ_BATCH) {
            let (events, gone) = self.cybozu.events_by_id_lenient(batch)?;
            found.extend(events);
            missing.extend(gone);
        }
        Ok((found, missing))
    }

    /// A whole pass: read, plan, apply, store the cursor.
    pub fn run(&mut self) -> Result<Outcome, PassError> {
        let (planned, snapshot) = self.read_and_plan()?;
        let mut outcome = Outcome {
            plan: planned.clone(),
            ..Outcome::default()
        };
        if let Some(blocked) = &planned.blocked {
            outcome.messages.push(blocked.clone());
            return Ok(outcome);
        }
        let creating: Vec<u64> = planned
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateRemote { cybozu_id } => Some(*cybozu_id),
                _ => None,
            })
            .collect();
        if !creating.is_empty() {
            if let Some(cursor) = self.remote.cursor_before_creating(&creating) {
                self.store
                    .set_cursor(self.user_id, self.remote.side(), &cursor, self.now)?;
            }
        }
        let mut applier = Applier::new(self, &snapshot);
        let mut any_failed = false;
        let mut stopped = None;
        // Writes in a row that found the server unreachable.
        let mut unreachable_in_a_row = 0;
        // The Cybozu events an action failed for, or was never tried for: their conflicts are
        // planned again, and told, by the next pass.
        let mut not_done: BTreeSet<u64> = BTreeSet::new();
        for (index, action) in planned.actions.iter().enumerate() {
            let result = applier.apply(action);
            if result.is_ok() {
                unreachable_in_a_row = 0;
            }
            if let Err(e) = result {
                not_done.extend(action.cybozu_id());
                any_failed = true;
                // The account refused (the run may refresh a Google token and pass again) or
                // the database failing: the pass ends as an error.
                let account_refused = match &e {
                    PassError::Remote(remote) => matches!(
                        remote,
                        RemoteError::NeedsRelink(_)
                            | RemoteError::CaldavCredentialsRefused
                            | RemoteError::CaldavPasswordMissing
                    ),
                    PassError::Cybozu(c) => c.is_login_failure(),
                    PassError::Store(_) => true,
                    _ => false,
                };
                if account_refused {
                    return Err(e);
                }
                if matches!(e, PassError::Remote(RemoteError::ChangedMeanwhile)) {
                    applier.distrust_remote_etag(action)?;
                }
                // A server that every later action would find unreachable too ends the pass
                // with one sentence; what the pass did so far is still counted and told, and
                // the cursor stays. Two writes in a row tell a server that is down from one
                // copy it keeps refusing (a 500 on one resource, a proxy's 413), which must not
                // hold back every later write, pass after pass.
                let unreachable = match &e {
                    PassError::Remote(remote) => matches!(remote, RemoteError::Unavailable(_)),
                    PassError::Cybozu(c) => c.is_unavailable(),
                    _ => false,
                };
                if unreachable {
                    unreachable_in_a_row += 1;
                    if unreachable_in_a_row >= UNREACHABLE_WRITES_TO_STOP {
                        not_done.extend(
                            planned.actions[index..]
                                .iter()
                                .filter_map(Action::cybozu_id),
                        );
                        stopped = Some(e);
                        break;
                    }
                } else {
                    unreachable_in_a_row = 0;
                }
                outcome
                    .messages
                    .push(applier.action_failed_sentence(action, &e));
            }
        }
        outcome.counts = applier.counts;
        outcome.messages.extend(applier.messages);
        // Told when their writes went through, also in a pass that stopped early (the next
        // pass sees only their echo); the others are told by the pass that settles them.
        for note in &planned.notes {
            if matches!(note, Note::Conflict { cybozu_id, .. } if not_done.contains(cybozu_id)) {
                continue;
            }
            outcome.messages.push(note_sentence(note, self.config.lang));
            if matches!(note, Note::Conflict { .. }) {
                outcome.counts.conflicts += 1;
            }
        }
        if let Some(error) = stopped {
            let sentence = error.sentence(self.config.lang);
            outcome.messages.insert(0, sentence.clone());
            outcome.stopped = Some(sentence);
            return Ok(outcome);
        }
        // A remote change is listed once: if its write to Cybozu failed, a cursor moved past it
        // would lose it for good. The stored cursor stays, so the next pass lists it again (its
        // successful writes come back as their own echoes, which the mapping recognises).
        if any_failed {
            return Ok(outcome);
        }
        if let Some(cursor) = snapshot.cursor.clone() {
            let cursor = self.remote.settle_cursor(cursor);
            self.store
                .set_cursor(self.user_id, self.remote.side(), &cursor, self.now)?;
        }
        Ok(outcome)
    }
}

/// The paired Cybozu series not read yet whose remote side lists days changed or deleted on
/// their own, or whose changed master has `EXDATE`s.
fn series_to_read(pairs: &[Pair], changes: &Changes) -> Vec<u64> {
    let read: BTreeSet<u64> = changes.cybozu_changed.iter().filter_map(|e| e.id).collect();
    let paired: BTreeSet<&str> = pairs.iter().map(|p| p.remote_id.as_str()).collect();
    let mut wanted = BTreeSet::new();
    for item in &changes.remote {
        let series_id = match &item.occurrence_of {
            Some(of) if !paired.contains(item.id.as_str()) => of.series_id.as_str(),
            Some(_) => continue,
            None => {
                let changed_series = item
                    .event
                    .as_ref()
                    .is_some_and(|e| e.recurrence.iter().any(|l| line_is(l, "EXDATE")));
                if !changed_series {
                    continue;
                }
                item.id.as_str()
            }
        };
        if let Some(pair) = pairs.iter().find(|p| p.remote_id == series_id) {
            let changed = item.occurrence_of.is_some() || item.etag != pair.remote_etag;
            if changed && !read.contains(&pair.cybozu_id) {
                wanted.insert(pair.cybozu_id);
            }
        }
    }
    wanted.into_iter().collect()
}

/// What the reading step saw, for the applying step.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// See [`Context::cybozu_window`].
    pub window_events: Vec<Event>,
    pub cybozu: HashMap<u64, Event>,
    pub remote: HashMap<String, RemoteItem>,
    pub pairs: HashMap<u64, Pair>,
    pub cursor: Option<String>,
}

/// Where a mapping's `extra` keeps the series a split-off day belongs to.
const EXTRA_SERIES: &str = "series";

fn pair_of(mapping: &Mapping) -> Option<Pair> {
    Some(Pair {
        cybozu_id: u64::try_from(mapping.cybozu_id).ok()?,
        cybozu_version: u64::try_from(mapping.cybozu_version).ok()?,
        remote_id: mapping.remote_id.clone(),
        remote_etag: mapping.remote_etag.clone(),
        series: mapping
            .extra
            .get(EXTRA_SERIES)
            .and_then(|s| s.as_str())
            .map(str::to_string),
    })
}

fn note_sentence(note: &Note, lang: Lang) -> String {
    match note {
        Note::Conflict {
            title,
            winner: Direction::ToRemote,
            ..
        } => lang.pick(
            format!("「{title}」は両方で変更されていたため、サイボウズ Office の内容を優先しました"),
            format!("\"{title}\" was changed on both sides; the Cybozu Office version was kept"),
        ),
        Note::Conflict {
            title,
            winner: Direction::ToCybozu,
            ..
        } => lang.pick(
            format!("「{title}」は両方で変更されていたため、カレンダー側の内容を優先しました"),
            format!("\"{title}\" was changed on both sides; the calendar's version was kept"),
        ),
        Note::TemporaryNotWritten { title } => lang.pick(
            format!("仮予定「{title}」のカレンダー側での変更は、サイボウズ Office に反映しません"),
            format!("Changes on the calendar to the tentative event \"{title}\" are not written to Cybozu Office"),
        ),
        Note::Inexpressible { title } => lang.pick(
            format!("「{title}」の繰り返しはサイボウズ Office で表せないため、カレンダー側だけに残しています"),
            format!("The repetition of \"{title}\" cannot be expressed in Cybozu Office, so it stays on the calendar only"),
        ),
        Note::StaleCopy { title } => lang.pick(
            format!("「{title}」はサイボウズ Office で削除済みの予定のコピーのため、サイボウズ Office には戻さず、カレンダー側にそのまま残しています"),
            format!("\"{title}\" is a copy of an event deleted in Cybozu Office, so it is not put back into Cybozu Office and stays on the calendar as it is"),
        ),
    }
}

/// Applies actions one by one, recording the mapping after each.
struct Applier<'p, 'a> {
    pass: &'p mut Pass<'a>,
    snapshot: &'p Snapshot,
    counts: PassCounts,
    messages: Vec<String>,
    directory: Option<Directory>,
    plan_menu: Option<Vec<String>>,
    done: BTreeSet<u64>,
}

impl<'p, 'a> Applier<'p, 'a> {
    fn new(pass: &'p mut Pass<'a>, snapshot: &'p Snapshot) -> Self {
        Self {
            pass,
            snapshot,
            counts: PassCounts::default(),
            messages: Vec::new(),
            directory: None,
            plan_menu: None,
            done: BTreeSet::new(),
        }
    }

    fn apply(&mut self, action: &Action) -> Result<(), PassError> {
        match action {
            Action::Forget { cybozu_id } => self.forget(*cybozu_id),
            Action::Adopt {
                cybozu_id,
                remote_id,
                refresh,
            } => {
                let version = self.cybozu_event(*cybozu_id)?.version.unwrap_or_default();
                let etag = self.remote_item(remote_id).and_then(|r| r.etag.clone());
                self.record(*cybozu_id, version, remote_id, etag)?;
                self.counts.adopted += 1;
                match refresh {
                    Some(Direction::ToRemote) => self.update_remote(*cybozu_id, remote_id),
                    Some(Direction::ToCybozu) => {
                        self.update_cybozu(*cybozu_id, remote_id)?;
                        self.tag_remote(*cybozu_id, remote_id)
                    }
                    None => self.tag_remote(*cybozu_id, remote_id),
                }
            }
            Action::CreateRemote { cybozu_id } => {
                let event = self.cybozu_event(*cybozu_id)?;
                let remote_event = self.remote_copy(&event)?;
                let written = self.pass.remote.create(*cybozu_id, &remote_event)?;
                self.record(
                    *cybozu_id,
                    event.version.unwrap_or_default(),
                    &written.id,
                    written.etag,
                )?;
                self.counts.remote_created += 1;
                Ok(())
            }
            Action::UpdateRemote {
                cybozu_id,
                remote_id,
            } => {
                self.update_remote(*cybozu_id, remote_id)?;
                self.counts.remote_updated += 1;
                Ok(())
            }
            Action::DeleteRemote {
                cybozu_id,
                remote_id,
            } => {
                let etag = self.known_etag(*cybozu_id, remote_id);
                self.pass.remote.delete(remote_id, etag.as_deref())?;
                self.forget(*cybozu_id)?;
                self.counts.remote_deleted += 1;
                Ok(())
            }
            Action::CreateCybozu { remote_id } => self.create_cybozu(remote_id),
            Action::UpdateCybozu {
                cybozu_id,
                remote_id,
            } => {
                self.update_cybozu(*cybozu_id, remote_id)?;
                Ok(())
            }
            Action::DeleteCybozu {
                cybozu_id,
                remote_id: _,
            } => self.delete_cybozu(*cybozu_id),
            Action::DetachOccurrence {
                cybozu_id,
                date,
                remote_id,
            } => self.detach_occurrence(*cybozu_id, *date, remote_id),
            Action::ExcludeOccurrence {
                cybozu_id, date, ..
            } => self.exclude_occurrence(*cybozu_id, *date),
            Action::TagRemote {
                cybozu_id,
                remote_id,
            } => self.tag_remote(*cybozu_id, remote_id),
        }
    }

    /// After [`RemoteError::ChangedMeanwhile`] on a copy this pass did not list: the etag the
    /// mapping knew it by is forgotten. The edit made meanwhile is listed by the next pass as
    /// a change all the same; and should the etag have been wrong instead (a format an earlier
    /// version wrote), the next write no longer expects it, so the pair cannot stay stuck.
    fn distrust_remote_etag(&self, action: &Action) -> Result<(), PassError> {
        let (Some(cybozu_id), Some(remote_id)) = (action.cybozu_id(), action.remote_id()) else {
            return Ok(());
        };
        if self.remote_item(remote_id).is_some() {
            return Ok(());
        }
        self.pass.store.clear_remote_etag(
            self.pass.user_id,
            i64::try_from(cybozu_id).unwrap_or_default(),
        )?;
        Ok(())
    }

    /// The sentence of 同期履歴 for one action that failed while the pass went on: which event,
    /// what could not be done, that the next pass tries again, and the technical reason.
    fn action_failed_sentence(&self, action: &Action, error: &PassError) -> String {
        let lang = self.pass.config.lang;
        let title = action
            .cybozu_id()
            .and_then(|id| self.snapshot.cybozu.get(&id))
            .map(Event::display_title)
            .or_else(|| {
                action
                    .remote_id()
                    .and_then(|id| self.remote_item(id))
                    .and_then(|item| item.event.as_ref())
                    .map(|event| event.title.clone())
            })
            .filter(|title| !title.trim().is_empty())
            .unwrap_or_else(|| lang.pick("（件名なし）", "(no title)").into());
        if matches!(error, PassError::Remote(RemoteError::ChangedMeanwhile)) {
            return lang.pick(
                format!("予定「{title}」は同期の途中でカレンダー側でも変更されたため書き込まず、次回の同期で反映します"),
                format!("The event \"{title}\" changed on the calendar during this sync, so it was not written; the next sync takes the change in"),
            );
        }
        let (ja, en) = match action {
            Action::CreateRemote { .. } => (
                "をカレンダーに追加できませんでした",
                "could not be added to the calendar",
            ),
            Action::UpdateRemote { .. } | Action::TagRemote { .. } => (
                "をカレンダー側で更新できませんでした",
                "could not be updated on the calendar",
            ),
            Action::DeleteRemote { .. } => (
                "をカレンダーから削除できませんでした",
                "could not be deleted from the calendar",
            ),
            Action::CreateCybozu { .. } => (
                "をサイボウズ Office に追加できませんでした",
                "could not be added to Cybozu Office",
            ),
            Action::UpdateCybozu { .. } | Action::DetachOccurrence { .. } => (
                "をサイボウズ Office 側で更新できませんでした",
                "could not be updated in Cybozu Office",
            ),
            Action::DeleteCybozu { .. } | Action::ExcludeOccurrence { .. } => (
                "をサイボウズ Office から削除できませんでした",
                "could not be deleted from Cybozu Office",
            ),
            Action::Adopt { .. } | Action::Forget { .. } => (
                "の同期情報を更新できませんでした",
                "could not have its sync information updated",
            ),
        };
        lang.pick(
            format!("予定「{title}」{ja}。次回の同期でもう一度試みます（{error}）"),
            format!("The event \"{title}\" {en}; the next sync tries again ({error})"),
        )
    }

    fn cybozu_event(&self, id: u64) -> Result<Event, PassError> {
        match self.snapshot.cybozu.get(&id) {
            Some(event) => Ok(event.clone()),
            None => Ok(self.pass.cybozu.event(id)?),
        }
    }

    fn remote_item(&self, id: &str) -> Option<&RemoteItem> {
        self.snapshot.remote.get(id)
    }

    fn record(
        &self,
        cybozu_id: u64,
        version: u64,
        remote_id: &str,
        etag: Option<String>,
    ) -> Result<(), PassError> {
        // A split-off day remembers its series: the listing says so while it is read, the pair
        // afterwards.
        let series = self
            .remote_item(remote_id)
            .and_then(|r| r.occurrence_of.as_ref())
            .map(|o| o.series_id.clone())
            .or_else(|| {
                self.snapshot
                    .pairs
                    .get(&cybozu_id)
                    .filter(|p| p.remote_id == remote_id)
                    .and_then(|p| p.series.clone())
            });
        let mapping = Mapping {
            cybozu_id: i64::try_from(cybozu_id).unwrap_or_default(),
            cybozu_version: i64::try_from(version).unwrap_or_default(),
            remote_id: remote_id.to_string(),
            remote_etag: etag,
            extra: series.map_or(
                serde_json::Value::Null,
                |series| serde_json::json!({ EXTRA_SERIES: series }),
            ),
        };
        Ok(self.pass.store.put_mapping(self.pass.user_id, &mapping)?)
    }

    fn forget(&self, cybozu_id: u64) -> Result<(), PassError> {
        self.pass.store.delete_mapping(
            self.pass.user_id,
            i64::try_from(cybozu_id).unwrap_or_default(),
        )?;
        Ok(())
    }

    fn directory(&mut self, event: &Event) -> Result<&Directory, PassError> {
        let directory = self.directory.get_or_insert_with(Directory::default);
        let users: Vec<u64> = event
            .user_ids()
            .filter(|id| !directory.users.contains_key(id))
            .collect();
        let orgs: Vec<u64> = event
            .members
            .iter()
            .filter_map(|m| match m {
                crate::cybozu::Member::Organization(id)
                    if !directory.organizations.contains_key(id) =>
                {
                    Some(*id)
                }
                _ => None,
            })
            .collect();
        let facilities: Vec<u64> = event
            .facility_ids()
            .filter(|id| !directory.facilities.contains_key(id))
            .collect();
        let cybozu = self.pass.cybozu;
        if !users.is_empty() {
            for user in cybozu.users_by_id(&users)? {
                directory.users.insert(user.id, user.name);
            }
        }
        if !orgs.is_empty() {
            for org in cybozu.organizations_by_id(&orgs)? {
                directory.organizations.insert(org.id, org.name);
            }
        }
        if !facilities.is_empty() {
            for facility in cybozu.facilities_by_id(&facilities)? {
                directory.facilities.insert(facility.id, facility.name);
            }
        }
        Ok(directory)
    }

    fn remote_copy(&mut self, event: &Event) -> Result<RemoteEvent, PassError> {
        let user = self.pass.cybozu_user();
        let directory = self.directory(event)?;
        Ok(to_remote(event, user, directory))
    }

    /// How phone events are written to Cybozu for this install.
    fn inbound_rules<'m>(&self, plan_menu: &'m [String]) -> InboundRules<'m> {
        InboundRules {
            plan_menu,
            inbound_public: self.pass.config.inbound_public,
            timezone: self.pass.config.timezone.name(),
        }
    }

    fn plan_menu(&mut self) -> Result<Vec<String>, PassError> {
        if self.plan_menu.is_none() {
            self.plan_menu = Some(self.pass.cybozu.profiles()?.plan_menu);
        }
        Ok(self.plan_menu.clone().unwrap_or_default())
    }

    /// The etag this pass knows a copy by, which a write or delete of it expects: as listed now
    /// when it changed since the last pass (the plan weighed that change), else as the mapping
    /// remembers it.
    fn known_etag(&self, cybozu_id: u64, remote_id: &str) -> Option<String> {
        self.remote_item(remote_id)
            .and_then(|r| r.etag.clone())
            .or_else(|| {
                self.snapshot
                    .pairs
                    .get(&cybozu_id)
                    .and_then(|p| p.remote_etag.clone())
            })
    }

    fn update_remote(&mut self, cybozu_id: u64, remote_id: &str) -> Result<(), PassError> {
        let event = self.cybozu_event(cybozu_id)?;
        let remote_event = self.remote_copy(&event)?;
        let etag = self.known_etag(cybozu_id, remote_id);
        let written = self
            .pass
            .remote
            .update(remote_id, etag.as_deref(), &remote_event)?;
        self.record(
            cybozu_id,
            event.version.unwrap_or_default(),
            &written.id,
            written.etag,
        )
    }

    /// Writes the Cybozu id into an adopted remote event that lacks it, its other fields as they
    /// stand: a pair matched by time and title (an earlier installation's copy, or a phone event
    /// whose Cybozu twin was added just before a crash) must be found by id the next time the
    /// mapping is lost, even after the phone has changed its time or title.
    fn tag_remote(&mut self, cybozu_id: u64, remote_id: &str) -> Result<(), PassError> {
        let Some(mut tagged) = self.inbound_event(remote_id)? else {
            return Ok(());
        };
        if tagged.cybozu_id == Some(cybozu_id) {
            return Ok(());
        }
        let stored = self.pass.store.mapping_for_cybozu(
            self.pass.user_id,
            i64::try_from(cybozu_id).unwrap_or_default(),
        )?;
        let version = stored
            .as_ref()
            .and_then(|m| u64::try_from(m.cybozu_version).ok())
            .unwrap_or_default();
        let etag = self
            .remote_item(remote_id)
            .and_then(|r| r.etag.clone())
            .or_else(|| stored.and_then(|m| m.remote_etag));
        tagged.cybozu_id = Some(cybozu_id);
        tagged.cybozu_version = Some(version);
        if tagged.plan.is_none() {
            let plan = self.cybozu_event(cybozu_id)?.plan;
            tagged.plan = (!plan.is_empty()).then_some(plan);
        }
        let written = self
            .pass
            .remote
            .update(remote_id, etag.as_deref(), &tagged)?;
        self.record(cybozu_id, version, &written.id, written.etag)
    }

    fn inbound_event(&mut self, remote_id: &str) -> Result<Option<RemoteEvent>, PassError> {
        Ok(self.remote_item(remote_id).and_then(|r| r.event.clone()))
    }

    fn create_cybozu(&mut self, remote_id: &str) -> Result<(), PassError> {
        let Some(remote_event) = self.inbound_event(remote_id)? else {
            return Ok(());
        };
        let plan_menu = self.plan_menu()?;
        let rules = self.inbound_rules(&plan_menu);
        let user = self.pass.cybozu_user();
        let event = match to_cybozu(&remote_event, None, user, &rules) {
            Ok(event) => event,
            Err(e) => {
                self.messages
                    .push(format!("「{}」: {e}", remote_event.title));
                return Ok(());
            }
        };
        let added = self
            .pass
            .cybozu
            .add_events(&[event])?
            .into_iter()
            .next()
            .ok_or_else(|| CybozuError::Malformed {
                operation: "ScheduleAddEvents".into(),
                what: "the reply holds no event".into(),
            })?;
        let cybozu_id = added.id.unwrap_or_default();
        let etag = self.remote_item(remote_id).and_then(|r| r.etag.clone());
        // The pair first, so that a crash now leaves a mapped pair, not an orphan.
        self.record(
            cybozu_id,
            added.version.unwrap_or_default(),
            remote_id,
            etag.clone(),
        )?;
        self.counts.cybozu_created += 1;
        // Then the remote copy learns its Cybozu id (and its echo is recorded).
        let mut tagged = remote_event;
        tagged.cybozu_id = Some(cybozu_id);
        tagged.cybozu_version = added.version;
        let written = self
            .pass
            .remote
            .update(remote_id, etag.as_deref(), &tagged)?;
        self.record(
            cybozu_id,
            added.version.unwrap_or_default(),
            &written.id,
            written.etag,
        )?;
        self.new_series_days(&added, remote_id)
    }

    /// A series that came from the phone with days changed or deleted on their own: Cybozu has
    /// the series now, so those days are split off or removed at once (they were not planned, as
    /// the series had no Cybozu id then, and the next listing may not show them again).
    fn new_series_days(&mut self, added: &Event, remote_id: &str) -> Result<(), PassError> {
        let (Some(cybozu_id), Some(repeat)) = (added.id, added.repeat.as_ref()) else {
            return Ok(());
        };
        let tz = zone(&added.timezone);
        let paired: BTreeSet<&str> = self
            .snapshot
            .pairs
            .values()
            .map(|p| p.remote_id.as_str())
            .collect();
        let mut days: Vec<(chrono::NaiveDate, String, bool)> = self
            .snapshot
            .remote
            .values()
            .filter(|r| !paired.contains(r.id.as_str()))
            .filter_map(|r| {
                let of = r
                    .occurrence_of
                    .as_ref()
                    .filter(|o| o.series_id == remote_id)?;
                Some((of.date, r.id.clone(), r.deleted))
            })
            .filter(|(date, _, _)| {
                matches(&repeat.condition, *date) && !excludes(repeat, tz, *date)
            })
            .collect();
        days.sort();
        for (date, day_id, deleted) in days {
            if deleted {
                self.exclude_occurrence(cybozu_id, date)?;
            } else {
                self.detach_occurrence(cybozu_id, date, &day_id)?;
            }
        }
        Ok(())
    }

    fn update_cybozu(&mut self, cybozu_id: u64, remote_id: &str) -> Result<(), PassError> {
        let Some(remote_event) = self.inbound_event(remote_id)? else {
            return Ok(());
        };
        let plan_menu = self.plan_menu()?;
        let rules = self.inbound_rules(&plan_menu);
        let user = self.pass.cybozu_user();
        // Read the event as it stands now and write it back whole.
        let current = self.pass.cybozu.event(cybozu_id)?;
        if current.event_type == EventType::Temporary {
            let note = Note::TemporaryNotWritten {
                title: remote_event.title,
            };
            self.messages
                .push(note_sentence(&note, self.pass.config.lang));
            return Ok(());
        }
        let mut updated = match to_cybozu(&remote_event, Some(&current), user, &rules) {
            Ok(updated) => updated,
            Err(e) => {
                self.messages
                    .push(format!("「{}」: {e}", remote_event.title));
                return Ok(());
            }
        };
        // A series keeps Cybozu's own exclusions: the days it split off (which the remote side
        // shows as overrides, not EXDATEs) must not come back, and a day deleted on the phone
        // is removed on its own (`ExcludeOccurrence`), only for this user when others share it.
        if let (Some(rule), Some(current_rule)) = (updated.repeat.as_mut(), current.repeat.as_ref())
        {
            rule.exclusions = current_rule.exclusions.clone();
        }
        let written = if current.event_type == EventType::Repeat {
            self.pass
                .cybozu
                .modify_repeat_event(RepeatScope::All, &updated)?
                .modified
        } else {
            self.pass
                .cybozu
                .modify_events(std::slice::from_ref(&updated))?
                .into_iter()
                .next()
                .unwrap_or(updated)
        };
        let etag = self.remote_item(remote_id).and_then(|r| r.etag.clone());
        self.record(
            cybozu_id,
            written.version.unwrap_or_default(),
            remote_id,
            etag,
        )?;
        self.counts.cybozu_updated += 1;
        Ok(())
    }

    /// Keeps the series' pair, with the version this write gave it (so it is not an echo). The
    /// pair as stored now, not as read: an earlier action of this pass may have rewritten the
    /// series on either side (its etag), or adopted it.
    fn record_series(&self, cybozu_id: u64, version: Option<u64>) -> Result<(), PassError> {
        let stored = self.pass.store.mapping_for_cybozu(
            self.pass.user_id,
            i64::try_from(cybozu_id).unwrap_or_default(),
        )?;
        if let Some(pair) = stored.as_ref().and_then(pair_of) {
            self.record(
                cybozu_id,
                version.unwrap_or(pair.cybozu_version),
                &pair.remote_id,
                pair.remote_etag,
            )?;
        }
        Ok(())
    }

    fn detach_occurrence(
        &mut self,
        cybozu_id: u64,
        date: chrono::NaiveDate,
        remote_id: &str,
    ) -> Result<(), PassError> {
        let Some(remote_event) = self.inbound_event(remote_id)? else {
            return Ok(());
        };
        let plan_menu = self.plan_menu()?;
        let rules = self.inbound_rules(&plan_menu);
        let user = self.pass.cybozu_user();
        let series = self.pass.cybozu.event(cybozu_id)?;
        // The day's own content, with the series' members and facilities.
        let mut single = series.clone();
        single.repeat = None;
        single.event_type = EventType::Normal;
        let mut day = match to_cybozu(&remote_event, Some(&single), user, &rules) {
            Ok(day) => day,
            Err(e) => {
                self.messages
                    .push(format!("「{}」: {e}", remote_event.title));
                return Ok(());
            }
        };
        day.id = Some(cybozu_id);
        day.repeat = series.repeat.clone();
        let split = self
            .pass
            .cybozu
            .modify_repeat_event(RepeatScope::This(date), &day)?;
        self.record_series(cybozu_id, split.original.version)?;
        let etag = self.remote_item(remote_id).and_then(|r| r.etag.clone());
        self.counts.cybozu_updated += 1;
        let Some(new_id) = split.modified.id.filter(|id| *id != cybozu_id) else {
            return Ok(());
        };
        let version = split.modified.version.unwrap_or_default();
        self.record(new_id, version, remote_id, etag.clone())?;
        // The day's copy learns which Cybozu event it is now (phones copy the series' id into
        // it), so that a lost mapping pairs it again with that event, not with the series.
        let mut tagged = remote_event;
        tagged.cybozu_id = Some(new_id);
        tagged.cybozu_version = split.modified.version;
        if tagged.plan.is_none() && !split.modified.plan.is_empty() {
            tagged.plan = Some(split.modified.plan.clone());
        }
        let written = self
            .pass
            .remote
            .update(remote_id, etag.as_deref(), &tagged)?;
        self.record(new_id, version, &written.id, written.etag)
    }

    fn exclude_occurrence(
        &mut self,
        cybozu_id: u64,
        date: chrono::NaiveDate,
    ) -> Result<(), PassError> {
        let user = self.pass.cybozu_user();
        let series = self.pass.cybozu.event(cybozu_id)?;
        let shared = series.user_ids().any(|id| id != user);
        let split = if shared {
            self.pass
                .cybozu
                .leave_from_repeat(cybozu_id, RepeatScope::This(date))?
        } else {
            self.pass
                .cybozu
                .remove_from_repeat(cybozu_id, RepeatScope::This(date))?
        };
        self.record_series(cybozu_id, split.original.version)?;
        self.counts.cybozu_deleted += 1;
        Ok(())
    }

    fn delete_cybozu(&mut self, cybozu_id: u64) -> Result<(), PassError> {
        if !self.done.insert(cybozu_id) {
            return Ok(());
        }
        let user = self.pass.cybozu_user();
        match self.pass.cybozu.event(cybozu_id) {
            Ok(event) => {
                let shared = event.user_ids().any(|id| id != user);
                // Others keep a shared event: the user only leaves it.
                if shared {
                    self.pass.cybozu.leave_events(&[cybozu_id])?;
                } else if event.event_type == EventType::Repeat {
                    self.pass
                        .cybozu
                        .remove_from_repeat(cybozu_id, RepeatScope::All)?;
                } else {
                    self.pass.cybozu.remove_events(&[cybozu_id])?;
                }
            }
            Err(e) if e.is_no_such_event() => {}
            Err(e) => return Err(e.into()),
        }
        self.forget(cybozu_id)?;
        self.counts.cybozu_deleted += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_japanese(text: &str) -> bool {
        text.chars()
            .any(|c| matches!(c, '\u{3040}'..='\u{30ff}' | '\u{4e00}'..='\u{9fff}' | '（' | '「'))
    }

    /// 同期履歴 is written in `LANG`: every sentence a pass can end with, and every note, has both.
    #[test]
    fn sentences_follow_lang() {
        let errors = [
            PassError::Remote(RemoteError::CaldavCredentialsRefused),
            PassError::Remote(RemoteError::CaldavPasswordMissing),
            PassError::Remote(RemoteError::NeedsRelink("invalid_grant".into())),
            PassError::Remote(RemoteError::CaldavNotFound(
                "https://dav.example/cal/".into(),
            )),
            PassError::Remote(RemoteError::CalendarNotFound("team@example.com".into())),
            PassError::Remote(RemoteError::ChangedMeanwhile),
            PassError::Remote(RemoteError::Unavailable("connection refused".into())),
            PassError::Panicked("index out of bounds".into()),
        ];
        let notes = [
            Note::Conflict {
                cybozu_id: 1,
                title: "Weekly".into(),
                winner: Direction::ToRemote,
            },
            Note::Conflict {
                cybozu_id: 1,
                title: "Weekly".into(),
                winner: Direction::ToCybozu,
            },
            Note::TemporaryNotWritten {
                title: "Weekly".into(),
            },
            Note::Inexpressible {
                title: "Weekly".into(),
            },
            Note::StaleCopy {
                title: "Weekly".into(),
            },
        ];
        let sentences = errors
            .iter()
            .map(|e| (e.sentence(Lang::Ja), e.sentence(Lang::En)))
            .chain(
                notes
                    .iter()
                    .map(|n| (note_sentence(n, Lang::Ja), note_sentence(n, Lang::En))),
            );
        for (japanese, english) in sentences {
            assert!(has_japanese(&japanese), "{japanese}");
            assert!(!has_japanese(&english), "{english}");
        }
        // What the sentence is about is kept in both.
        let missing = PassError::Remote(RemoteError::CalendarNotFound("team@example.com".into()));
        assert_eq!(
            missing.sentence(Lang::En),
            "The calendar \"team@example.com\" was not found. Please check the calendar ID in the \
             sync settings"
        );
        assert!(missing.sentence(Lang::Ja).contains("「team@example.com」"));
    }
}
