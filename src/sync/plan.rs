//! Planning one user's pass: from the mapping and what changed on each side, a [`Plan`] — a
//! plain value listing what to create, update or delete where, and why. Nothing here talks to a
//! server; `--dry-run` prints the plan and the tests inspect it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use super::convert::{exdates, line_is, split_title, RemoteEvent, RemoteWhen};
use crate::config::{Conflict, Lang};
use crate::cybozu::repeat::{excludes, matches, zone};
use crate::cybozu::{Event, EventType};

/// A pass that would delete more than this share of a user's mapped events stops…
const MASS_DELETION_SHARE: f64 = 0.5;
/// …when it would also delete more than this many.
const MASS_DELETION_MIN: usize = 10;

/// A pair the mapping knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub cybozu_id: u64,
    pub cybozu_version: u64,
    pub remote_id: String,
    pub remote_etag: Option<String>,
    /// For a day split off a series: the remote id of that series, whose resource (or whose
    /// instances) holds the day's copy, so that it goes when the series goes.
    pub series: Option<String>,
}

/// One remote event as the incremental listing reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteItem {
    pub id: String,
    pub etag: Option<String>,
    pub updated: Option<DateTime<Utc>>,
    /// Deleted (`cancelled`) on the remote side.
    pub deleted: bool,
    /// An event kind that never reaches Cybozu (birthdays, focus time, Gmail events…).
    pub foreign: bool,
    pub event: Option<RemoteEvent>,
    /// Set for one occurrence of a remote series changed or deleted on its own (a phone edit of
    /// "this event only").
    pub occurrence_of: Option<OccurrenceOf>,
}

/// Which occurrence of which remote series an item stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceOf {
    pub series_id: String,
    /// The occurrence's original local date.
    pub date: chrono::NaiveDate,
}

/// What the pass read: changed and deleted events on each side.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Cybozu events added or changed since the versions in the mapping, read whole.
    pub cybozu_changed: Vec<Event>,
    /// Mapped Cybozu ids that are gone for this user (checked: not merely out of the window).
    pub cybozu_deleted: Vec<u64>,
    /// Remote events changed since the cursor (all of them on a full listing).
    pub remote: Vec<RemoteItem>,
}

/// What to do. A plan is applied in this order (the variants' order), so `Forget` comes first:
/// a pair dropped to make way for a new copy must be gone before the new pair is recorded (the
/// mapping refuses a remote id paired twice, and a later `Forget` would drop the new pair).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Drop the pair: both sides are gone, or one side's copy is made again.
    Forget {
        cybozu_id: u64,
    },
    /// Take an existing pair into the mapping; `refresh` says which side is rewritten from the
    /// other because their fields differ (the newer side wins).
    Adopt {
        cybozu_id: u64,
        remote_id: String,
        refresh: Option<Direction>,
    },
    CreateRemote {
        cybozu_id: u64,
    },
    UpdateRemote {
        cybozu_id: u64,
        remote_id: String,
    },
    DeleteRemote {
        cybozu_id: u64,
        remote_id: String,
    },
    CreateCybozu {
        remote_id: String,
    },
    UpdateCybozu {
        cybozu_id: u64,
        remote_id: String,
    },
    /// Delete (or, for a shared event, leave) the Cybozu event.
    DeleteCybozu {
        cybozu_id: u64,
        remote_id: String,
    },
    /// One occurrence of a series changed on the phone: Cybozu splits it off
    /// (`ScheduleModifyRepeatEvents type=this`) and the new event is paired with that occurrence.
    DetachOccurrence {
        cybozu_id: u64,
        date: chrono::NaiveDate,
        remote_id: String,
    },
    /// One occurrence of a series deleted on the phone: Cybozu removes (or, for a shared series,
    /// leaves) that day only.
    ExcludeOccurrence {
        cybozu_id: u64,
        date: chrono::NaiveDate,
        remote_id: String,
    },
    /// Write the Cybozu id into a mapped remote event that lacks it (a pass killed between
    /// adding a phone event to Cybozu and tagging the phone's copy), its fields as they stand.
    TagRemote {
        cybozu_id: u64,
        remote_id: String,
    },
}

impl Action {
    /// The Cybozu event an action is about (`None` for one not in Cybozu yet).
    pub fn cybozu_id(&self) -> Option<u64> {
        match self {
            Self::Forget { cybozu_id }
            | Self::Adopt { cybozu_id, .. }
            | Self::CreateRemote { cybozu_id }
            | Self::UpdateRemote { cybozu_id, .. }
            | Self::DeleteRemote { cybozu_id, .. }
            | Self::UpdateCybozu { cybozu_id, .. }
            | Self::DeleteCybozu { cybozu_id, .. }
            | Self::DetachOccurrence { cybozu_id, .. }
            | Self::ExcludeOccurrence { cybozu_id, .. }
            | Self::TagRemote { cybozu_id, .. } => Some(*cybozu_id),
            Self::CreateCybozu { .. } => None,
        }
    }

    /// The remote copy an action is about (`None` for one not on the calendar yet).
    pub fn remote_id(&self) -> Option<&str> {
        match self {
            Self::Adopt { remote_id, .. }
            | Self::UpdateRemote { remote_id, .. }
            | Self::DeleteRemote { remote_id, .. }
            | Self::CreateCybozu { remote_id }
            | Self::UpdateCybozu { remote_id, .. }
            | Self::DeleteCybozu { remote_id, .. }
            | Self::DetachOccurrence { remote_id, .. }
            | Self::ExcludeOccurrence { remote_id, .. }
            | Self::TagRemote { remote_id, .. } => Some(remote_id),
            Self::Forget { .. } | Self::CreateRemote { .. } => None,
        }
    }
}

/// Which side is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    ToRemote,
    ToCybozu,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Adopt {
                cybozu_id,
                remote_id,
                refresh,
            } => {
                write!(f, "adopt   cybozu {cybozu_id} = remote {remote_id}")?;
                match refresh {
                    Some(Direction::ToRemote) => write!(f, " (rewrite remote)"),
                    Some(Direction::ToCybozu) => write!(f, " (rewrite cybozu)"),
                    None => Ok(()),
                }
            }
            Self::CreateRemote { cybozu_id } => write!(f, "create  remote from cybozu {cybozu_id}"),
            Self::UpdateRemote {
                cybozu_id,
                remote_id,
            } => {
                write!(f, "update  remote {remote_id} from cybozu {cybozu_id}")
            }
            Self::DeleteRemote {
                cybozu_id,
                remote_id,
            } => {
                write!(f, "delete  remote {remote_id} (cybozu {cybozu_id} deleted)")
            }
            Self::CreateCybozu { remote_id } => write!(f, "create  cybozu from remote {remote_id}"),
            Self::UpdateCybozu {
                cybozu_id,
                remote_id,
            } => {
                write!(f, "update  cybozu {cybozu_id} from remote {remote_id}")
            }
            Self::DeleteCybozu {
                cybozu_id,
                remote_id,
            } => {
                write!(f, "delete  cybozu {cybozu_id} (remote {remote_id} deleted)")
            }
            Self::Forget { cybozu_id } => {
                write!(f, "forget  pair of cybozu {cybozu_id} (gone on both sides)")
            }
            Self::DetachOccurrence {
                cybozu_id,
                date,
                remote_id,
            } => {
                write!(
                    f,
                    "split   cybozu {cybozu_id} on {date} from remote {remote_id}"
                )
            }
            Self::ExcludeOccurrence {
                cybozu_id,
                date,
                remote_id,
            } => {
                write!(
                    f,
                    "exclude cybozu {cybozu_id} on {date} (remote {remote_id} deleted)"
                )
            }
            Self::TagRemote {
                cybozu_id,
                remote_id,
            } => {
                write!(f, "tag     remote {remote_id} with cybozu {cybozu_id}")
            }
        }
    }
}

/// Something the user should read in 同期履歴 that is not an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Both sides changed; `CONFLICT` chose the winner.
    Conflict {
        cybozu_id: u64,
        title: String,
        winner: Direction,
    },
    /// A phone edit of a 仮予定 is not written back.
    TemporaryNotWritten { title: String },
    /// A remote series Cybozu cannot express stays on the remote side.
    Inexpressible { title: String },
    /// A copy this product once made of a Cybozu event that is no longer there (the pairing was
    /// lost meanwhile): it is neither brought back into Cybozu nor deleted.
    StaleCopy { title: String },
}

/// The plan for one user's pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub notes: Vec<Note>,
    /// Set when the mass-deletion guard stopped the pass: the sentence for 同期履歴.
    pub blocked: Option<String>,
}

/// Everything planning needs besides the changes.
pub struct Context<'a> {
    pub pairs: &'a [Pair],
    pub conflict: Conflict,
    /// The language of the sentence that stops a mass deletion.
    pub lang: Lang,
    pub plan_menu: &'a [String],
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// Cybozu events read as they stand besides the changed ones: on a first pass (no pairs yet)
    /// every event of the window, for adoption; later the paired series whose days the remote
    /// side changed or deleted on their own, to check those days against.
    pub cybozu_window: &'a [Event],
}

/// Builds the plan.
pub fn plan(ctx: &Context<'_>, changes: &Changes) -> Plan {
    let mut out = Plan::default();
    let by_cybozu: HashMap<u64, &Pair> = ctx.pairs.iter().map(|p| (p.cybozu_id, p)).collect();
    let by_remote: HashMap<&str, &Pair> = ctx
        .pairs
        .iter()
        .map(|p| (p.remote_id.as_str(), p))
        .collect();
    // Echo suppression: a side's own last write (same version / etag) is not a change.
    let cybozu_changed: BTreeMap<u64, &Event> = changes
        .cybozu_changed
        .iter()
        .filter_map(|e| Some((e.id?, e)))
        .filter(|(id, e)| {
            by_cybozu
                .get(id)
                .is_none_or(|p| e.version != Some(p.cybozu_version))
        })
        .collect();
    let cybozu_deleted: BTreeSet<u64> = changes.cybozu_deleted.iter().copied().collect();
    let remote_changed: BTreeMap<&str, &RemoteItem> = changes
        .remote
        .iter()
        .filter(|r| {
            by_remote
                .get(r.id.as_str())
                .is_none_or(|p| r.deleted || r.etag.is_none() || r.etag != p.remote_etag)
        })
        .map(|r| (r.id.as_str(), r))
        .collect();

    let listed: HashMap<&str, &RemoteItem> =
        changes.remote.iter().map(|r| (r.id.as_str(), r)).collect();

    // Pairs the mapping knows.
    for pair in ctx.pairs {
        let untagged = listed.get(pair.remote_id.as_str()).is_some_and(|r| {
            !r.deleted
                && r.event
                    .as_ref()
                    .is_some_and(|e| e.cybozu_id != Some(pair.cybozu_id))
        });
        let planned_before = out.actions.len();
        let c_changed = cybozu_changed.get(&pair.cybozu_id).copied();
        let c_deleted = cybozu_deleted.contains(&pair.cybozu_id);
        let r = remote_changed.get(pair.remote_id.as_str()).copied();
        // A day split off a series has no copy once the phone deleted the whole series.
        let series_gone = !listed.contains_key(pair.remote_id.as_str())
            && pair
                .series
                .as_deref()
                .and_then(|series| listed.get(series))
                .is_some_and(|r| r.deleted);
        let r_deleted = r.is_some_and(|r| r.deleted) || series_gone;
        let r_changed = r.filter(|r| !r.deleted);
        let (cid, rid) = (pair.cybozu_id, pair.remote_id.clone());
        let title = || {
            c_changed
                .map(Event::display_title)
                .or_else(|| {
                    r_changed
                        .and_then(|r| r.event.as_ref())
                        .map(|e| e.title.clone())
                })
                .unwrap_or_default()
        };
        match (c_changed, c_deleted, r_changed, r_deleted) {
            (_, true, _, true) => out.actions.push(Action::Forget { cybozu_id: cid }),
            (_, true, None, false) => out.actions.push(Action::DeleteRemote {
                cybozu_id: cid,
                remote_id: rid,
            }),
            (_, true, Some(_), false) => {
                // Deleted in Cybozu, edited on the phone.
                let winner = decide(ctx.conflict, None, r_changed.and_then(|r| r.updated));
                out.notes.push(Note::Conflict {
                    cybozu_id: cid,
                    title: title(),
                    winner,
                });
                match winner {
                    Direction::ToRemote => out.actions.push(Action::DeleteRemote {
                        cybozu_id: cid,
                        remote_id: rid,
                    }),
                    Direction::ToCybozu => {
                        out.actions.push(Action::Forget { cybozu_id: cid });
                        out.actions.push(Action::CreateCybozu { remote_id: rid });
                    }
                }
            }
            (None, false, _, true) => out.actions.push(Action::DeleteCybozu {
                cybozu_id: cid,
                remote_id: rid,
            }),
            (Some(event), false, _, true) => {
                // Edited in Cybozu, deleted on the phone.
                let winner = decide(ctx.conflict, version_time(event), None);
                out.notes.push(Note::Conflict {
                    cybozu_id: cid,
                    title: title(),
                    winner,
                });
                match winner {
                    Direction::ToRemote => {
                        out.actions.push(Action::Forget { cybozu_id: cid });
                        out.actions.push(Action::CreateRemote { cybozu_id: cid });
                    }
                    Direction::ToCybozu => out.actions.push(Action::DeleteCybozu {
                        cybozu_id: cid,
                        remote_id: rid,
                    }),
                }
            }
            (Some(event), false, Some(remote), false) => {
                let winner = decide(ctx.conflict, version_time(event), remote.updated);
                out.notes.push(Note::Conflict {
                    cybozu_id: cid,
                    title: title(),
                    winner,
                });
                match winner {
                    Direction::ToRemote => out.actions.push(Action::UpdateRemote {
                        cybozu_id: cid,
                        remote_id: rid,
                    }),
                    Direction::ToCybozu => push_inbound_update(&mut out, event, remote, cid, rid),
                }
            }
            (Some(_), false, None, false) => out.actions.push(Action::UpdateRemote {
                cybozu_id: cid,
                remote_id: rid,
            }),
            (None, false, Some(remote), false) => {
                let base = ctx.cybozu_window.iter().find(|e| e.id == Some(cid));
                match base {
                    Some(base) => push_inbound_update(&mut out, base, remote, cid, rid),
                    None => out.actions.push(Action::UpdateCybozu {
                        cybozu_id: cid,
                        remote_id: rid,
                    }),
                }
            }
            (None, false, None, false) => {}
        }
        let rewrites_remote = out.actions[planned_before..]
            .iter()
            .any(|a| !matches!(a, Action::UpdateCybozu { .. }));
        if untagged && !rewrites_remote {
            out.actions.push(Action::TagRemote {
                cybozu_id: pair.cybozu_id,
                remote_id: pair.remote_id.clone(),
            });
        }
    }

    series_dropped(&mut out, ctx, &cybozu_deleted);

    // Events no pair knows: adopt what already is a copy, copy the rest.
    let first_pass = ctx.pairs.is_empty();
    let mut claimed = Claimed {
        remote: BTreeSet::new(),
        cybozu: by_cybozu.keys().copied().collect(),
    };
    let unmapped_remote: Vec<&RemoteItem> = changes
        .remote
        .iter()
        .filter(|r| !r.deleted && !r.foreign && r.occurrence_of.is_none())
        .filter(|r| !by_remote.contains_key(r.id.as_str()))
        .filter(|r| r.event.as_ref().is_some_and(|e| in_window(e, ctx.window)))
        .collect();
    let candidates: Vec<&Event> = if first_pass {
        ctx.cybozu_window.iter().collect()
    } else {
        cybozu_changed
            .values()
            .copied()
            .chain(ctx.cybozu_window.iter())
            .filter(|e| e.id.is_some_and(|id| !by_cybozu.contains_key(&id)))
            .collect()
    };
    adopt_unpaired(&mut out, ctx, &unmapped_remote, &candidates, &mut claimed);
    // Days of a series changed or deleted on their own, the series paired before this pass or
    // adopted just now; a day Cybozu has split off already is adopted like any other copy.
    let settled = plan_days(&mut out, ctx, changes, &cybozu_changed, &cybozu_deleted);
    adopt_unpaired(&mut out, ctx, &settled, &candidates, &mut claimed);
    for event in &candidates {
        if let Some(cid) = event.id.filter(|id| !claimed.cybozu.contains(id)) {
            claimed.cybozu.insert(cid);
            out.actions.push(Action::CreateRemote { cybozu_id: cid });
        }
    }
    for remote in unmapped_remote {
        if claimed.remote.contains(remote.id.as_str()) {
            continue;
        }
        let is_series_we_cannot_hold = remote
            .event
            .as_ref()
            .is_some_and(|e| !e.recurrence.is_empty() && !expressible(e));
        let title = || {
            remote
                .event
                .as_ref()
                .map(|e| e.title.clone())
                .unwrap_or_default()
        };
        if is_series_we_cannot_hold {
            out.notes.push(Note::Inexpressible { title: title() });
            continue;
        }
        // Our own copy whose Cybozu event is gone: bringing it back would resurrect a deletion.
        if remote.event.as_ref().is_some_and(|e| e.cybozu_id.is_some()) {
            out.notes.push(Note::StaleCopy { title: title() });
            continue;
        }
        out.actions.push(Action::CreateCybozu {
            remote_id: remote.id.clone(),
        });
    }

    guard_mass_deletion(&mut out, ctx.pairs.len(), ctx.lang);
    out.actions.sort();
    out.actions.dedup();
    out
}

/// Remote and Cybozu events taken by a pair in this plan.
struct Claimed<'a> {
    remote: BTreeSet<&'a str>,
    cybozu: BTreeSet<u64>,
}

/// Pairs unpaired remote events with unpaired Cybozu events: first by the Cybozu id this product
/// writes into the remote copy, then by the same start, end and title. On a first pass this adopts
/// the copies an earlier installation made; later it pairs an event this product added to Cybozu
/// just before a crash with the remote event it came from, so that the retry does not add it
/// twice.
fn adopt_unpaired<'a>(
    out: &mut Plan,
    ctx: &Context<'_>,
    remote: &[&'a RemoteItem],
    candidates: &[&Event],
    claimed: &mut Claimed<'a>,
) {
    for remote in remote {
        let Some(cid) = remote.event.as_ref().and_then(|e| e.cybozu_id) else {
            continue;
        };
        if claimed.cybozu.contains(&cid) || claimed.remote.contains(remote.id.as_str()) {
            continue;
        }
        if let Some(event) = candidates.iter().find(|e| e.id == Some(cid)) {
            claimed.cybozu.insert(cid);
            claimed.remote.insert(remote.id.as_str());
            out.actions.push(adopt(event, remote, ctx));
        }
    }
    for remote in remote {
        if claimed.remote.contains(remote.id.as_str()) {
            continue;
        }
        let Some(remote_event) = remote.event.as_ref() else {
            continue;
        };
        let twin = candidates.iter().find(|e| {
            e.id.is_some_and(|id| !claimed.cybozu.contains(&id))
                && same_time_and_title(e, remote_event, ctx.plan_menu)
        });
        if let Some(cid) = twin.and_then(|event| event.id) {
            claimed.cybozu.insert(cid);
            claimed.remote.insert(remote.id.as_str());
            if let Some(event) = twin {
                out.actions.push(adopt(event, remote, ctx));
            }
        }
    }
}

/// One day of a paired series that the remote side changed or deleted on its own.
struct Day<'a> {
    cybozu_id: u64,
    date: NaiveDate,
    remote_id: &'a str,
    /// `None`: deleted.
    item: Option<&'a RemoteItem>,
}

/// Plans the days of paired series changed or deleted on the phone: a changed day is split off
/// in Cybozu, a deleted one removed (or left). Deleted days are the occurrences listed as
/// deleted and the `EXDATE`s of a series whose phone edit goes to Cybozu, since a rewrite of the
/// whole Cybozu series keeps Cybozu's own exclusions (a shared series must lose a day only for
/// this user). Each day is checked against the Cybozu series as read: a day it does not have is
/// skipped, a day it excludes already is done — and a changed one of those is answered for
/// adoption (a split-off event paired before the pass that split it died, or a lost mapping).
fn plan_days<'a>(
    out: &mut Plan,
    ctx: &Context<'_>,
    changes: &'a Changes,
    cybozu_changed: &BTreeMap<u64, &Event>,
    cybozu_deleted: &BTreeSet<u64>,
) -> Vec<&'a RemoteItem> {
    // The series paired before this pass, or adopted just now.
    let mut series: HashMap<&str, u64> = ctx
        .pairs
        .iter()
        .map(|p| (p.remote_id.as_str(), p.cybozu_id))
        .collect();
    for action in &out.actions {
        if let Action::Adopt {
            cybozu_id,
            remote_id,
            ..
        } = action
        {
            if let Some(item) = changes.remote.iter().find(|r| &r.id == remote_id) {
                series.insert(item.id.as_str(), *cybozu_id);
            }
        }
    }
    let paired: BTreeSet<&str> = ctx.pairs.iter().map(|p| p.remote_id.as_str()).collect();
    // A series whose own pair is dropped or rewritten from the other side this pass is left:
    // its days go with it.
    let left_alone: BTreeSet<u64> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteRemote { cybozu_id, .. }
            | Action::DeleteCybozu { cybozu_id, .. }
            | Action::Forget { cybozu_id } => Some(*cybozu_id),
            _ => None,
        })
        .chain(cybozu_deleted.iter().copied())
        .collect();
    let inbound: BTreeSet<u64> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::UpdateCybozu { cybozu_id, .. } => Some(*cybozu_id),
            _ => None,
        })
        .collect();
    let base_of = |cid: u64| {
        cybozu_changed
            .get(&cid)
            .copied()
            .or_else(|| ctx.cybozu_window.iter().find(|e| e.id == Some(cid)))
    };
    let mut days: Vec<Day<'a>> = Vec::new();
    for item in &changes.remote {
        let Some(occurrence) = &item.occurrence_of else {
            continue;
        };
        if paired.contains(item.id.as_str()) {
            continue;
        }
        if let Some(&cybozu_id) = series.get(occurrence.series_id.as_str()) {
            days.push(Day {
                cybozu_id,
                date: occurrence.date,
                remote_id: &item.id,
                item: (!item.deleted).then_some(item),
            });
        }
    }
    for item in &changes.remote {
        let Some(&cybozu_id) = series.get(item.id.as_str()) else {
            continue;
        };
        let (Some(event), Some(base)) = (item.event.as_ref(), base_of(cybozu_id)) else {
            continue;
        };
        if !inbound.contains(&cybozu_id) {
            continue;
        }
        let tz = zone(&base.timezone);
        for line in &event.recurrence {
            if line_is(line, "EXDATE") {
                for date in exdates(line, tz) {
                    days.push(Day {
                        cybozu_id,
                        date,
                        remote_id: &item.id,
                        item: None,
                    });
                }
            }
        }
    }
    let mut seen: BTreeSet<(u64, NaiveDate)> = BTreeSet::new();
    let mut settled = Vec::new();
    for day in days {
        if left_alone.contains(&day.cybozu_id) || !seen.insert((day.cybozu_id, day.date)) {
            continue;
        }
        let repeat = base_of(day.cybozu_id)
            .and_then(|base| base.repeat.as_ref().map(|r| (r, zone(&base.timezone))));
        if let Some((repeat, tz)) = repeat {
            if !matches(&repeat.condition, day.date) {
                continue;
            }
            if excludes(repeat, tz, day.date) {
                settled.extend(day.item);
                continue;
            }
        }
        let (cybozu_id, date, remote_id) = (day.cybozu_id, day.date, day.remote_id.to_string());
        out.actions.push(match day.item {
            None => Action::ExcludeOccurrence {
                cybozu_id,
                date,
                remote_id,
            },
            Some(_) => Action::DetachOccurrence {
                cybozu_id,
                date,
                remote_id,
            },
        });
    }
    settled
}

/// A series whose remote copy is deleted or made again takes its split-off days' copies with it
/// (they live inside it, or are its instances): each of those days that Cybozu keeps gets a copy
/// of its own instead.
fn series_dropped(out: &mut Plan, ctx: &Context<'_>, cybozu_deleted: &BTreeSet<u64>) {
    let recreated = |cid: u64| {
        out.actions
            .iter()
            .any(|a| matches!(a, Action::CreateRemote { cybozu_id } if *cybozu_id == cid))
    };
    let dropped: BTreeSet<&str> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteRemote { cybozu_id, .. } => Some(*cybozu_id),
            Action::Forget { cybozu_id } if recreated(*cybozu_id) => Some(*cybozu_id),
            _ => None,
        })
        .filter_map(|cid| ctx.pairs.iter().find(|p| p.cybozu_id == cid))
        .map(|p| p.remote_id.as_str())
        .collect();
    for pair in ctx.pairs {
        let Some(series) = pair.series.as_deref() else {
            continue;
        };
        if !dropped.contains(series) || cybozu_deleted.contains(&pair.cybozu_id) {
            continue;
        }
        // Deleted on the phone meanwhile: it goes in Cybozu too, nothing to copy.
        if out.actions.iter().any(
            |a| matches!(a, Action::DeleteCybozu { cybozu_id, .. } if *cybozu_id == pair.cybozu_id),
        ) {
            continue;
        }
        // Whatever else was planned for the day is covered by its fresh copy.
        out.actions
            .retain(|a| a.cybozu_id() != Some(pair.cybozu_id));
        out.actions.push(Action::Forget {
            cybozu_id: pair.cybozu_id,
        });
        out.actions.push(Action::CreateRemote {
            cybozu_id: pair.cybozu_id,
        });
    }
}

fn push_inbound_update(out: &mut Plan, base: &Event, remote: &RemoteItem, cid: u64, rid: String) {
    let title = remote
        .event
        .as_ref()
        .map(|e| e.title.clone())
        .unwrap_or_default();
    if base.event_type == EventType::Temporary {
        out.notes.push(Note::TemporaryNotWritten { title });
    } else if remote
        .event
        .as_ref()
        .is_some_and(|e| !e.recurrence.is_empty() && !expressible(e))
    {
        out.notes.push(Note::Inexpressible { title });
    } else {
        out.actions.push(Action::UpdateCybozu {
            cybozu_id: cid,
            remote_id: rid,
        });
    }
}

fn adopt(event: &Event, remote: &RemoteItem, ctx: &Context<'_>) -> Action {
    let cybozu_id = event.id.unwrap_or_default();
    let differs = remote
        .event
        .as_ref()
        .is_some_and(|r| !same_time_and_title(event, r, ctx.plan_menu));
    let refresh = differs.then(|| decide(Conflict::Newer, version_time(event), remote.updated));
    Action::Adopt {
        cybozu_id,
        remote_id: remote.id.clone(),
        refresh,
    }
}

/// Who wins when both sides changed.
fn decide(
    policy: Conflict,
    cybozu_time: Option<DateTime<Utc>>,
    remote_time: Option<DateTime<Utc>>,
) -> Direction {
    match policy {
        Conflict::Cybozu => Direction::ToRemote,
        Conflict::Remote => Direction::ToCybozu,
        Conflict::Newer => match (cybozu_time, remote_time) {
            (Some(c), Some(r)) if r > c => Direction::ToCybozu,
            (None, Some(_)) => Direction::ToCybozu,
            _ => Direction::ToRemote,
        },
    }
}

/// A Cybozu version is the UNIX time of the last change.
fn version_time(event: &Event) -> Option<DateTime<Utc>> {
    event
        .version
        .and_then(|v| i64::try_from(v).ok())
        .and_then(|v| DateTime::from_timestamp(v, 0))
}

fn same_time_and_title(event: &Event, remote: &RemoteEvent, plan_menu: &[String]) -> bool {
    let mine = super::convert::to_remote(event, 0, &Default::default());
    let (plan, detail) = split_title(&remote.title, plan_menu);
    mine.when == remote.when && event.plan == plan && event.detail == detail
}

fn expressible(remote: &RemoteEvent) -> bool {
    let rules = super::convert::InboundRules {
        plan_menu: &[],
        inbound_public: false,
        timezone: &remote.timezone,
    };
    super::convert::to_cybozu(remote, None, 0, &rules).is_ok()
}

fn in_window(remote: &RemoteEvent, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> bool {
    if !remote.recurrence.is_empty() {
        return true;
    }
    match remote.when {
        RemoteWhen::Timed { start, end } => start < to && end.max(start) >= from,
        RemoteWhen::AllDay { start, end } => {
            let start = start.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
            let end = end.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
            matches!((start, end), (Some(s), Some(e)) if s < to && e > from)
        }
    }
}

fn guard_mass_deletion(out: &mut Plan, mapped: usize, lang: Lang) {
    let deletions = out
        .actions
        .iter()
        .filter(|a| matches!(a, Action::DeleteRemote { .. } | Action::DeleteCybozu { .. }))
        .count();
    if deletions > MASS_DELETION_MIN && deletions as f64 > mapped as f64 * MASS_DELETION_SHARE {
        out.blocked = Some(lang.pick(
            format!("同期済みの予定 {mapped} 件のうち {deletions} 件を削除することになるため、安全のためこの同期を中止しました。意図した削除であれば、管理者に連絡してください。"),
            format!("This sync was stopped for safety: it would have deleted {deletions} of the {mapped} synced events. If the deletions are intended, please contact your administrator."),
        ));
        out.actions.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cybozu::{Member, TimeSpan, When};
    use crate::sync::convert::{to_remote, Directory, Visibility};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn event(id: u64, version: u64, detail: &str, hour: u32) -> Event {
        let mut e = Event::new("Asia/Tokyo");
        e.id = Some(id);
        e.version = Some(version);
        e.detail = detail.into();
        e.members = vec![Member::User(1)];
        let start = utc(&format!("2026-11-25T{hour:02}:00:00Z"));
        e.when = When::Times(vec![TimeSpan {
            start,
            end: Some(start + chrono::Duration::hours(1)),
            facility_id: None,
        }]);
        e
    }

    fn remote_of(e: &Event, id: &str, etag: &str, with_cybozu_id: bool) -> RemoteItem {
        let mut r = to_remote(e, 1, &Directory::default());
        if !with_cybozu_id {
            r.cybozu_id = None;
            r.cybozu_version = None;
        }
        RemoteItem {
            id: id.into(),
            etag: Some(etag.into()),
            updated: Some(utc("2026-11-25T00:00:00Z")),
            deleted: false,
            foreign: false,
            event: Some(r),
            occurrence_of: None,
        }
    }

    fn pair(cid: u64, version: u64, rid: &str, etag: &str) -> Pair {
        Pair {
            cybozu_id: cid,
            cybozu_version: version,
            remote_id: rid.into(),
            remote_etag: Some(etag.into()),
            series: None,
        }
    }

    fn ctx<'a>(pairs: &'a [Pair], window_events: &'a [Event], conflict: Conflict) -> Context<'a> {
        Context {
            pairs,
            conflict,
            lang: Lang::Ja,
            plan_menu: &[],
            window: (utc("2026-11-01T00:00:00Z"), utc("2027-05-01T00:00:00Z")),
            cybozu_window: window_events,
        }
    }

    #[test]
    fn a_quiet_pass_plans_nothing_and_echoes_are_ignored() {
        let pairs = [pair(1, 100, "r1", "e1")];
        let e = event(1, 100, "会議", 1);
        let changes = Changes {
            cybozu_changed: vec![e.clone()],
            cybozu_deleted: vec![],
            remote: vec![remote_of(&e, "r1", "e1", true)],
        };
        assert_eq!(
            plan(&ctx(&pairs, &[], Conflict::Cybozu), &changes),
            Plan::default()
        );
    }

    #[test]
    fn one_sided_changes_flow_to_the_other_side() {
        let pairs = [
            pair(1, 100, "r1", "e1"),
            pair(2, 100, "r2", "e2"),
            pair(3, 100, "r3", "e3"),
            pair(4, 100, "r4", "e4"),
        ];
        let e1 = event(1, 101, "変更", 1);
        let e2 = event(2, 100, "会議", 2);
        let mut r4 = remote_of(&event(4, 100, "x", 4), "r4", "e4", true);
        r4.deleted = true;
        let changes = Changes {
            cybozu_changed: vec![e1],
            cybozu_deleted: vec![3],
            remote: vec![remote_of(&e2, "r2", "e2-new", true), r4],
        };
        let window = [event(2, 100, "会議", 2)];
        let p = plan(&ctx(&pairs, &window, Conflict::Cybozu), &changes);
        assert_eq!(
            p.actions,
            vec![
                Action::UpdateRemote {
                    cybozu_id: 1,
                    remote_id: "r1".into()
                },
                Action::DeleteRemote {
                    cybozu_id: 3,
                    remote_id: "r3".into()
                },
                Action::UpdateCybozu {
                    cybozu_id: 2,
                    remote_id: "r2".into()
                },
                Action::DeleteCybozu {
                    cybozu_id: 4,
                    remote_id: "r4".into()
                },
            ]
        );
        assert!(p.notes.is_empty());
    }

    #[test]
    fn conflicts_follow_the_policy() {
        let pairs = [pair(1, 100, "r1", "e1")];
        let cybozu_edit = event(1, 1_795_568_400, "サイボウズで変更", 1); // 2026-11-25T01:00Z
        let mut phone_edit = remote_of(&event(1, 100, "スマホで変更", 1), "r1", "e2", true);
        for (policy, phone_time, expected) in [
            (
                Conflict::Cybozu,
                "2026-11-25T02:00:00Z",
                Action::UpdateRemote {
                    cybozu_id: 1,
                    remote_id: "r1".into(),
                },
            ),
            (
                Conflict::Remote,
                "2026-11-25T00:00:00Z",
                Action::UpdateCybozu {
                    cybozu_id: 1,
                    remote_id: "r1".into(),
                },
            ),
            (
                Conflict::Newer,
                "2026-11-25T02:00:00Z",
                Action::UpdateCybozu {
                    cybozu_id: 1,
                    remote_id: "r1".into(),
                },
            ),
            (
                Conflict::Newer,
                "2026-11-25T00:30:00Z",
                Action::UpdateRemote {
                    cybozu_id: 1,
                    remote_id: "r1".into(),
                },
            ),
        ] {
            phone_edit.updated = Some(utc(phone_time));
            let changes = Changes {
                cybozu_changed: vec![cybozu_edit.clone()],
                cybozu_deleted: vec![],
                remote: vec![phone_edit.clone()],
            };
            let p = plan(&ctx(&pairs, &[], policy), &changes);
            assert_eq!(p.actions, vec![expected.clone()], "{policy:?} {phone_time}");
            assert!(matches!(p.notes[0], Note::Conflict { .. }));
        }
    }

    #[test]
    fn the_first_pass_adopts_before_it_copies() {
        let window = [
            event(1, 100, "IDつき", 1),
            event(2, 100, "時刻とタイトルが同じ", 2),
            event(3, 100, "新規", 3),
        ];
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![
                remote_of(&window[0], "r1", "e1", true),
                remote_of(&window[1], "r2", "e2", false),
                remote_of(&event(9, 1, "スマホの私用", 5), "r9", "e9", false),
            ],
        };
        let p = plan(&ctx(&[], &window, Conflict::Cybozu), &changes);
        assert_eq!(
            p.actions,
            vec![
                Action::Adopt {
                    cybozu_id: 1,
                    remote_id: "r1".into(),
                    refresh: None
                },
                Action::Adopt {
                    cybozu_id: 2,
                    remote_id: "r2".into(),
                    refresh: None
                },
                Action::CreateRemote { cybozu_id: 3 },
                Action::CreateCybozu {
                    remote_id: "r9".into()
                },
            ]
        );
    }

    #[test]
    fn foreign_kinds_and_events_outside_the_window_stay_remote() {
        let mut birthday = remote_of(&event(9, 1, "誕生日", 5), "b1", "e", false);
        birthday.foreign = true;
        let mut far = remote_of(&event(9, 1, "来年", 5), "f1", "e", false);
        if let Some(e) = far.event.as_mut() {
            e.when = RemoteWhen::Timed {
                start: utc("2030-01-01T00:00:00Z"),
                end: utc("2030-01-01T01:00:00Z"),
            };
        }
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![birthday, far],
        };
        assert!(plan(
            &ctx(&[pair(5, 1, "x", "y")], &[], Conflict::Cybozu),
            &changes
        )
        .actions
        .is_empty());
    }

    #[test]
    fn temporary_edits_and_inexpressible_series_are_noted_not_written() {
        let pairs = [pair(1, 100, "r1", "e1"), pair(2, 100, "r2", "e2")];
        let mut temporary = event(1, 100, "仮", 1);
        temporary.event_type = EventType::Temporary;
        let mut weird = remote_of(&event(2, 100, "隔週", 2), "r2", "e2-new", true);
        if let Some(e) = weird.event.as_mut() {
            e.recurrence = vec!["RRULE:FREQ=WEEKLY;INTERVAL=2".into()];
        }
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![remote_of(&temporary, "r1", "e1-new", true), weird],
        };
        let window = [temporary.clone(), event(2, 100, "隔週", 2)];
        let p = plan(&ctx(&pairs, &window, Conflict::Cybozu), &changes);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(p
            .notes
            .iter()
            .any(|n| matches!(n, Note::TemporaryNotWritten { .. })));
        assert!(p
            .notes
            .iter()
            .any(|n| matches!(n, Note::Inexpressible { .. })));
    }

    #[test]
    fn single_occurrences_of_a_mapped_series_are_split_or_excluded() {
        let pairs = [pair(5, 100, "series", "e5")];
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).expect("date");
        let mut edited = remote_of(
            &event(9, 1, "週次（この日だけ）", 1),
            "series_20261130",
            "e9",
            false,
        );
        edited.occurrence_of = Some(OccurrenceOf {
            series_id: "series".into(),
            date: day,
        });
        let mut deleted = remote_of(&event(9, 1, "週次", 1), "series_20261207", "e10", false);
        deleted.deleted = true;
        deleted.occurrence_of = Some(OccurrenceOf {
            series_id: "series".into(),
            date: day + chrono::Duration::days(7),
        });
        let mut orphan = edited.clone();
        orphan.id = "other_20261130".into();
        orphan.occurrence_of = Some(OccurrenceOf {
            series_id: "unmapped".into(),
            date: day,
        });
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![edited, deleted, orphan],
        };
        let p = plan(&ctx(&pairs, &[], Conflict::Cybozu), &changes);
        assert_eq!(
            p.actions,
            vec![
                Action::DetachOccurrence {
                    cybozu_id: 5,
                    date: day,
                    remote_id: "series_20261130".into()
                },
                Action::ExcludeOccurrence {
                    cybozu_id: 5,
                    date: day + chrono::Duration::days(7),
                    remote_id: "series_20261207".into()
                },
            ]
        );
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    /// Cybozu series 5: Tuesdays 8:00–8:30 JST from 24 November, without the `excluded` days.
    fn series(excluded: &[&str]) -> Event {
        let tz = chrono_tz::Asia::Tokyo;
        let at = |d: &str, h: u32, m: u32| {
            crate::cybozu::repeat::local_to_utc(
                tz,
                day(d),
                chrono::NaiveTime::from_hms_opt(h, m, 0).expect("time"),
            )
        };
        let mut e = Event::new("Asia/Tokyo");
        e.id = Some(5);
        e.version = Some(100);
        e.detail = "朝の個人作業".into();
        e.members = vec![Member::User(1)];
        e.event_type = EventType::Repeat;
        e.repeat = Some(crate::cybozu::RepeatInfo {
            condition: crate::cybozu::RepeatCondition {
                kind: crate::cybozu::RepeatKind::Week,
                start_date: day("2026-11-24"),
                end_date: None,
                start_time: chrono::NaiveTime::from_hms_opt(8, 0, 0),
                end_time: chrono::NaiveTime::from_hms_opt(8, 30, 0),
                day: None,
                week: Some(2),
            },
            exclusions: excluded
                .iter()
                .map(|d| crate::cybozu::Exclusion {
                    start: at(d, 8, 0),
                    end: at(d, 8, 30),
                })
                .collect(),
        });
        e.when = When::Unset;
        e
    }

    /// A day of the remote series "series" on `date`, changed (to `detail` at 14:00) or deleted.
    fn series_day(id: &str, date: &str, changed: Option<&str>) -> RemoteItem {
        let mut item = remote_of(&event(9, 1, changed.unwrap_or("x"), 5), id, id, false);
        if let Some(e) = item.event.as_mut() {
            let start = crate::cybozu::repeat::local_to_utc(
                chrono_tz::Asia::Tokyo,
                day(date),
                chrono::NaiveTime::from_hms_opt(14, 0, 0).expect("time"),
            );
            e.when = RemoteWhen::Timed {
                start,
                end: start + chrono::Duration::minutes(30),
            };
        }
        item.deleted = changed.is_none();
        item.occurrence_of = Some(OccurrenceOf {
            series_id: "series".into(),
            date: day(date),
        });
        item
    }

    #[test]
    fn days_are_checked_against_the_cybozu_series_as_it_stands() {
        let pairs = [pair(5, 100, "series", "e5")];
        // Cybozu excludes 1 December (its own change) and 22 December (split off earlier, by a
        // pass that died before it recorded the new event 9).
        let window = [series(&["2026-12-01", "2026-12-22"])];
        let mut split_off = event(9, 200, "午後に変更", 5);
        let start = crate::cybozu::repeat::local_to_utc(
            chrono_tz::Asia::Tokyo,
            day("2026-12-22"),
            chrono::NaiveTime::from_hms_opt(14, 0, 0).expect("time"),
        );
        split_off.when = When::Times(vec![TimeSpan {
            start,
            end: Some(start + chrono::Duration::minutes(30)),
            facility_id: None,
        }]);
        let changes = Changes {
            cybozu_changed: vec![split_off],
            cybozu_deleted: vec![],
            remote: vec![
                series_day("series#20261201", "2026-12-01", None),
                series_day("series#20261208", "2026-12-08", Some("午後に変更")),
                series_day("series#20261215", "2026-12-15", None),
                series_day("other#20261215", "2026-12-15", None),
                // A Wednesday: not a day of the series.
                series_day("series#20261216", "2026-12-16", None),
                series_day("series#20261222", "2026-12-22", Some("午後に変更")),
            ],
        };
        let p = plan(&ctx(&pairs, &window, Conflict::Cybozu), &changes);
        assert_eq!(
            p.actions,
            vec![
                Action::Adopt {
                    cybozu_id: 9,
                    remote_id: "series#20261222".into(),
                    refresh: None
                },
                Action::DetachOccurrence {
                    cybozu_id: 5,
                    date: day("2026-12-08"),
                    remote_id: "series#20261208".into()
                },
                Action::ExcludeOccurrence {
                    cybozu_id: 5,
                    date: day("2026-12-15"),
                    remote_id: "series#20261215".into()
                },
            ]
        );
    }

    #[test]
    fn exdates_a_phone_added_to_a_series_delete_those_days_only() {
        let pairs = [pair(5, 100, "series", "e5")];
        let window = [series(&["2026-12-01"])];
        let mut master = remote_of(&window[0], "series", "e5-new", true);
        if let Some(e) = master.event.as_mut() {
            e.title = "朝の作業".into();
            e.recurrence
                .push("EXDATE;TZID=Asia/Tokyo:20261215T080000".into());
        }
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![master],
        };
        let p = plan(&ctx(&pairs, &window, Conflict::Cybozu), &changes);
        assert_eq!(
            p.actions,
            vec![
                Action::UpdateCybozu {
                    cybozu_id: 5,
                    remote_id: "series".into()
                },
                Action::ExcludeOccurrence {
                    cybozu_id: 5,
                    date: day("2026-12-15"),
                    remote_id: "series".into()
                },
            ]
        );
    }

    #[test]
    fn a_series_gone_takes_the_copies_of_its_split_off_days_along() {
        let split = Pair {
            series: Some("series".into()),
            ..pair(9, 200, "series#20261208", "e9")
        };
        let pairs = [pair(5, 100, "series", "e5"), split];
        // Deleted on the phone, the whole series: the split-off day goes too.
        let mut gone = remote_of(&series(&[]), "series", "e5", true);
        gone.deleted = true;
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![gone],
        };
        assert_eq!(
            plan(&ctx(&pairs, &[], Conflict::Cybozu), &changes).actions,
            vec![
                Action::DeleteCybozu {
                    cybozu_id: 5,
                    remote_id: "series".into()
                },
                Action::DeleteCybozu {
                    cybozu_id: 9,
                    remote_id: "series#20261208".into()
                },
            ]
        );
        // Deleted in Cybozu, the series only: the split-off day stays, with a copy of its own.
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![5],
            remote: vec![],
        };
        assert_eq!(
            plan(&ctx(&pairs, &[], Conflict::Cybozu), &changes).actions,
            vec![
                Action::Forget { cybozu_id: 9 },
                Action::CreateRemote { cybozu_id: 9 },
                Action::DeleteRemote {
                    cybozu_id: 5,
                    remote_id: "series".into()
                },
            ]
        );
    }

    #[test]
    fn the_first_pass_splits_the_changed_days_of_a_series_it_adopts() {
        let window = [series(&[])];
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![
                remote_of(&window[0], "series", "e5", true),
                series_day("series#20261208", "2026-12-08", Some("午後に変更")),
                series_day("series#20261215", "2026-12-15", None),
            ],
        };
        let p = plan(&ctx(&[], &window, Conflict::Cybozu), &changes);
        assert_eq!(
            p.actions,
            vec![
                Action::Adopt {
                    cybozu_id: 5,
                    remote_id: "series".into(),
                    refresh: None
                },
                Action::DetachOccurrence {
                    cybozu_id: 5,
                    date: day("2026-12-08"),
                    remote_id: "series#20261208".into()
                },
                Action::ExcludeOccurrence {
                    cybozu_id: 5,
                    date: day("2026-12-15"),
                    remote_id: "series#20261215".into()
                },
            ]
        );
    }

    #[test]
    fn a_copy_of_a_deleted_cybozu_event_is_not_brought_back() {
        // First pass after a lost mapping: Cybozu no longer has event 9, of which the calendar
        // still holds this product's copy.
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![remote_of(&event(9, 1, "削除済み", 5), "r9", "e9", true)],
        };
        let p = plan(&ctx(&[], &[], Conflict::Cybozu), &changes);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(matches!(p.notes[0], Note::StaleCopy { .. }));
    }

    #[test]
    fn the_mass_deletion_guard_stops_the_pass() {
        let pairs: Vec<Pair> = (1..=20)
            .map(|i| pair(i, 1, &format!("r{i}"), "e"))
            .collect();
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: (1..=11).collect(),
            remote: vec![],
        };
        let p = plan(&ctx(&pairs, &[], Conflict::Cybozu), &changes);
        assert!(p.actions.is_empty());
        assert!(p.blocked.as_deref().is_some_and(|b| b.contains("11 件")));
        // The sentence follows LANG.
        let english = Context {
            lang: Lang::En,
            ..ctx(&pairs, &[], Conflict::Cybozu)
        };
        assert_eq!(
            plan(&english, &changes).blocked.as_deref(),
            Some(
                "This sync was stopped for safety: it would have deleted 11 of the 20 synced \
                 events. If the deletions are intended, please contact your administrator."
            )
        );
        // Ten deletions of twenty is within the limits.
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: (1..=10).collect(),
            remote: vec![],
        };
        assert_eq!(
            plan(&ctx(&pairs, &[], Conflict::Cybozu), &changes)
                .actions
                .len(),
            10
        );
    }

    #[test]
    fn a_mapped_remote_event_without_the_cybozu_id_is_tagged() {
        // A pass killed after adding a phone event to Cybozu and recording the pair, before it
        // wrote the Cybozu id into the phone's copy.
        let pairs = [pair(1, 100, "r1", "e1")];
        let e = event(1, 100, "スマホで作成", 1);
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![remote_of(&e, "r1", "e1", false)],
        };
        assert_eq!(
            plan(&ctx(&pairs, &[], Conflict::Cybozu), &changes).actions,
            vec![Action::TagRemote {
                cybozu_id: 1,
                remote_id: "r1".into()
            }]
        );
        // A tagged copy needs nothing.
        let changes = Changes {
            remote: vec![remote_of(&e, "r1", "e1", true)],
            ..changes
        };
        assert!(plan(&ctx(&pairs, &[], Conflict::Cybozu), &changes)
            .actions
            .is_empty());
    }

    #[test]
    fn private_visibility_does_not_block_adoption() {
        let mut e = event(1, 100, "私用", 1);
        e.public_type = crate::cybozu::PublicType::Private;
        let mut r = remote_of(&e, "r1", "e1", false);
        if let Some(ev) = r.event.as_mut() {
            ev.visibility = Visibility::Default;
        }
        let changes = Changes {
            cybozu_changed: vec![],
            cybozu_deleted: vec![],
            remote: vec![r],
        };
        let window = [e];
        let p = plan(&ctx(&[], &window, Conflict::Cybozu), &changes);
        assert_eq!(
            p.actions,
            vec![Action::Adopt {
                cybozu_id: 1,
                remote_id: "r1".into(),
                refresh: None
            }]
        );
    }
}
