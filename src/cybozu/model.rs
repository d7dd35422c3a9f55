//! The typed Cybozu Office schedule model (events, repeats, members, users, organizations,
//! facilities, profiles) and its exact XML form in the 2008 schemas, read by local name.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};

use crate::xml::{self, attr, child, children, Node, Writer};

/// Namespace of `members`, `repeat_info` and `when` inside a `schedule_event`.
pub const SCHEDULE_NS: &str = "http://schemas.cybozu.co.jp/schedule/2008";
/// Namespace of the children of a `user` or `organization` record.
pub const BASE_NS: &str = "http://schemas.cybozu.co.jp/base/2008";

/// A reply that does not have the shape the schema promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct DecodeError {
    pub what: String,
}

impl DecodeError {
    pub fn new(what: impl Into<String>) -> Self {
        Self { what: what.into() }
    }
}

type Decoded<T> = Result<T, DecodeError>;

/// `event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Repeat,
    /// 仮予定: candidates not yet decided.
    Temporary,
    /// 期間予定: a multi-day span of dates.
    Banner,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Repeat => "repeat",
            Self::Temporary => "temporary",
            Self::Banner => "banner",
        }
    }

    fn parse(text: &str) -> Decoded<Self> {
        Ok(match text {
            "normal" => Self::Normal,
            "repeat" => Self::Repeat,
            "temporary" => Self::Temporary,
            "banner" => Self::Banner,
            other => return Err(DecodeError::new(format!("unknown event_type {other:?}"))),
        })
    }
}

/// `public_type`; `qualified` (公開先指定) is shown to a chosen few, so the sync treats it as private.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PublicType {
    #[default]
    Public,
    Private,
    Qualified,
}

impl PublicType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Qualified => "qualified",
        }
    }

    pub fn is_private(self) -> bool {
        self != Self::Public
    }

    fn parse(text: &str) -> Decoded<Self> {
        Ok(match text {
            "public" => Self::Public,
            "private" => Self::Private,
            "qualified" => Self::Qualified,
            other => return Err(DecodeError::new(format!("unknown public_type {other:?}"))),
        })
    }
}

/// A participant of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member {
    User(u64),
    Organization(u64),
    Facility(u64),
}

/// One timed span; a temporary event has several (its candidates), a facility booking names the facility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSpan {
    pub start: DateTime<Utc>,
    /// Absent for a `start_only` event.
    pub end: Option<DateTime<Utc>>,
    pub facility_id: Option<u64>,
}

/// An inclusive span of dates, as Cybozu Office keeps all-day and banner events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSpan {
    pub start: NaiveDate,
    /// Inclusive: a one-day event has `end == start`.
    pub end: NaiveDate,
}

/// `when`: either timed spans or date spans (the schema's choice), or nothing (a repeat series
/// described only by its rule).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum When {
    #[default]
    Unset,
    Times(Vec<TimeSpan>),
    Dates(Vec<DateSpan>),
}

impl When {
    pub fn first_time(&self) -> Option<&TimeSpan> {
        match self {
            Self::Times(spans) => spans.first(),
            _ => None,
        }
    }

    pub fn first_date(&self) -> Option<&DateSpan> {
        match self {
            Self::Dates(spans) => spans.first(),
            _ => None,
        }
    }
}

/// `repeat_info/condition/@type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepeatKind {
    /// Every day.
    Day,
    /// Monday to Friday.
    Weekday,
    /// Every week on `week`.
    Week,
    /// The n-th (1–4) `week` day of each month.
    NthWeek(u8),
    /// The last `week` day of each month.
    LastWeek,
    /// Every month on `day` (0 = the last day).
    Month,
}

impl RepeatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Weekday => "weekday",
            Self::Week => "week",
            Self::NthWeek(1) => "1stweek",
            Self::NthWeek(2) => "2ndweek",
            Self::NthWeek(3) => "3rdweek",
            Self::NthWeek(_) => "4thweek",
            Self::LastWeek => "lastweek",
            Self::Month => "month",
        }
    }

    fn parse(text: &str) -> Decoded<Self> {
        Ok(match text {
            "day" => Self::Day,
            "weekday" => Self::Weekday,
            "week" => Self::Week,
            "1stweek" => Self::NthWeek(1),
            "2ndweek" => Self::NthWeek(2),
            "3rdweek" => Self::NthWeek(3),
            "4thweek" => Self::NthWeek(4),
            "lastweek" => Self::LastWeek,
            "month" => Self::Month,
            other => return Err(DecodeError::new(format!("unknown repeat type {other:?}"))),
        })
    }
}

/// `repeat_info/condition`: dates and times are local to the event's `timezone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatCondition {
    pub kind: RepeatKind,
    pub start_date: NaiveDate,
    /// Inclusive last date; `None` repeats without end.
    pub end_date: Option<NaiveDate>,
    /// Absent for an all-day repeat.
    pub start_time: Option<NaiveTime>,
    pub end_time: Option<NaiveTime>,
    /// Day of month for `month` (0 = last day).
    pub day: Option<u32>,
    /// Day of week for the week kinds (0 = Sunday).
    pub week: Option<u32>,
}

/// An occurrence taken out of a series (`exclusive_datetime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatInfo {
    pub condition: RepeatCondition,
    pub exclusions: Vec<Exclusion>,
}

/// One schedule event (`schedule_event`) as Cybozu Office holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `None` for an event not yet added (written as the schema's placeholder).
    pub id: Option<u64>,
    /// UNIX time of the last change; `None` before the first add.
    pub version: Option<u64>,
    pub event_type: EventType,
    pub public_type: PublicType,
    /// 予定メニュー entry, e.g. 「会議」.
    pub plan: String,
    /// The title.
    pub detail: String,
    /// メモ.
    pub description: String,
    /// IANA zone the event was entered in (repeat rules and all-day dates are local to it).
    pub timezone: String,
    pub allday: bool,
    pub start_only: bool,
    pub members: Vec<Member>,
    pub observers: Vec<u64>,
    pub repeat: Option<RepeatInfo>,
    pub when: When,
}

/// Placeholder the API expects in `id`/`version` of an event being added.
const NEW_ITEM_PLACEHOLDER: &str = "dummy";

impl Event {
    /// A fresh normal event with no members and no time.
    pub fn new(timezone: &str) -> Self {
        Self {
            id: None,
            version: None,
            event_type: EventType::Normal,
            public_type: PublicType::Public,
            plan: String::new(),
            detail: String::new(),
            description: String::new(),
            timezone: timezone.to_string(),
            allday: false,
            start_only: false,
            members: Vec::new(),
            observers: Vec::new(),
            repeat: None,
            when: When::Unset,
        }
    }

    /// The title as Cybozu shows it: 「会議: 定例」, or the bare detail without a plan.
    pub fn display_title(&self) -> String {
        match (self.plan.is_empty(), self.detail.is_empty()) {
            (true, _) => self.detail.clone(),
            (false, true) => self.plan.clone(),
            (false, false) => format!("{}:{}", self.plan, self.detail),
        }
    }

    pub fn user_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.members.iter().filter_map(|m| match m {
            Member::User(id) => Some(*id),
            _ => None,
        })
    }

    pub fn facility_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.members.iter().filter_map(|m| match m {
            Member::Facility(id) => Some(*id),
            _ => None,
        })
    }

    pub fn has_user(&self, user_id: u64) -> bool {
        self.user_ids().any(|id| id == user_id)
    }

    /// Reads a `schedule_event` (or any element of `EventType`).
    pub fn from_xml(node: Node<'_, '_>) -> Decoded<Self> {
        let id = parse_id_or_placeholder(node, "id")?;
        let version = parse_id_or_placeholder(node, "version")?;
        let event_type = EventType::parse(required(node, "event_type")?)?;
        let public_type = attr(node, "public_type")
            .map(PublicType::parse)
            .transpose()?
            .unwrap_or_default();
        let members = match child(node, "members") {
            Some(list) => children(list, "member")
                .map(parse_member)
                .collect::<Decoded<Vec<_>>>()?,
            None => Vec::new(),
        };
        let observers = match child(node, "observers") {
            Some(list) => children(list, "observer")
                .map(|o| parse_u64(o, "id"))
                .collect::<Decoded<Vec<_>>>()?,
            None => Vec::new(),
        };
        let repeat = child(node, "repeat_info").map(parse_repeat).transpose()?;
        let when = child(node, "when")
            .map(parse_when)
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            id,
            version,
            event_type,
            public_type,
            plan: attr(node, "plan").unwrap_or_default().to_string(),
            detail: attr(node, "detail").unwrap_or_default().to_string(),
            description: attr(node, "description").unwrap_or_default().to_string(),
            // The schema requires it; an old server that leaves it out gets the product's default.
            timezone: attr(node, "timezone").unwrap_or("Asia/Tokyo").to_string(),
            allday: parse_bool(node, "allday")?.unwrap_or(false),
            start_only: parse_bool(node, "start_only")?.unwrap_or(false),
            members,
            observers,
            repeat,
            when,
        })
    }

    /// Writes the event as `<tag …>` in the exact element order of `schedule:EventType`.
    pub fn write_xml(&self, w: &mut Writer, tag: &str) {
        let id = self.id.map(|v| v.to_string());
        let version = self.version.map(|v| v.to_string());
        let mut attrs: Vec<(&str, &str)> = vec![
            ("id", id.as_deref().unwrap_or(NEW_ITEM_PLACEHOLDER)),
            ("event_type", self.event_type.as_str()),
            (
                "version",
                version.as_deref().unwrap_or(NEW_ITEM_PLACEHOLDER),
            ),
            ("public_type", self.public_type.as_str()),
            ("plan", &self.plan),
            ("detail", &self.detail),
            ("description", &self.description),
            ("timezone", &self.timezone),
        ];
        if self.allday {
            attrs.push(("allday", "true"));
        }
        if self.start_only {
            attrs.push(("start_only", "true"));
        }
        w.open(tag, &attrs);
        if !self.members.is_empty() {
            w.open("members", &[("xmlns", SCHEDULE_NS)]);
            for member in &self.members {
                let (kind, id) = match member {
                    Member::User(id) => ("user", id),
                    Member::Organization(id) => ("organization", id),
                    Member::Facility(id) => ("facility", id),
                };
                w.open("member", &[])
                    .empty(kind, &[("id", &id.to_string())])
                    .close("member");
            }
            w.close("members");
        }
        if !self.observers.is_empty() {
            w.open("observers", &[("xmlns", SCHEDULE_NS)]);
            for id in &self.observers {
                w.empty("observer", &[("id", &id.to_string())]);
            }
            w.close("observers");
        }
        if let Some(repeat) = &self.repeat {
            write_repeat(w, repeat);
        }
        write_when(w, &self.when);
        w.close(tag);
    }
}

fn write_repeat(w: &mut Writer, repeat: &RepeatInfo) {
    let c = &repeat.condition;
    let start_date = c.start_date.to_string();
    let end_date = c.end_date.map(|d| d.to_string());
    let start_time = c.start_time.map(format_time);
    let end_time = c.end_time.map(format_time);
    let day = c.day.map(|d| d.to_string());
    let week = c.week.map(|d| d.to_string());
    let mut attrs: Vec<(&str, &str)> = vec![("type", c.kind.as_str()), ("start_date", &start_date)];
    let optional = [
        ("end_date", &end_date),
        ("start_time", &start_time),
        ("end_time", &end_time),
        ("day", &day),
        ("week", &week),
    ];
    attrs.extend(
        optional
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))),
    );
    w.open("repeat_info", &[("xmlns", SCHEDULE_NS)])
        .empty("condition", &attrs);
    if !repeat.exclusions.is_empty() {
        w.open("exclusive_datetimes", &[]);
        for ex in &repeat.exclusions {
            w.empty(
                "exclusive_datetime",
                &[
                    ("start", &format_datetime(ex.start)),
                    ("end", &format_datetime(ex.end)),
                ],
            );
        }
        w.close("exclusive_datetimes");
    }
    w.close("repeat_info");
}

fn write_when(w: &mut Writer, when: &When) {
    match when {
        When::Unset => {}
        When::Times(spans) if spans.is_empty() => {}
        When::Dates(spans) if spans.is_empty() => {}
        When::Times(spans) => {
            w.open("when", &[("xmlns", SCHEDULE_NS)]);
            for span in spans {
                let start = format_datetime(span.start);
                let end = span.end.map(format_datetime);
                let facility = span.facility_id.map(|f| f.to_string());
                let mut attrs = vec![("start", start.as_str())];
                if let Some(end) = &end {
                    attrs.push(("end", end));
                }
                if let Some(facility) = &facility {
                    attrs.push(("facility_id", facility));
                }
                w.empty("datetime", &attrs);
            }
            w.close("when");
        }
        When::Dates(spans) => {
            w.open("when", &[("xmlns", SCHEDULE_NS)]);
            for span in spans {
                w.empty(
                    "date",
                    &[
                        ("start", &span.start.to_string()),
                        ("end", &span.end.to_string()),
                    ],
                );
            }
            w.close("when");
        }
    }
}

fn parse_member(node: Node<'_, '_>) -> Decoded<Member> {
    let inner = xml::elements(node)
        .next()
        .ok_or_else(|| DecodeError::new("a member without user, organization or facility"))?;
    let id = parse_u64(inner, "id")?;
    match inner.tag_name().name() {
        "user" => Ok(Member::User(id)),
        "organization" => Ok(Member::Organization(id)),
        "facility" => Ok(Member::Facility(id)),
        other => Err(DecodeError::new(format!("unknown member kind {other:?}"))),
    }
}

fn parse_repeat(node: Node<'_, '_>) -> Decoded<RepeatInfo> {
    let cond = child(node, "condition")
        .ok_or_else(|| DecodeError::new("repeat_info without condition"))?;
    let condition = RepeatCondition {
        kind: RepeatKind::parse(required(cond, "type")?)?,
        start_date: parse_date(required(cond, "start_date")?)?,
        end_date: attr(cond, "end_date").map(parse_date).transpose()?,
        start_time: attr(cond, "start_time").map(parse_time).transpose()?,
        end_time: attr(cond, "end_time").map(parse_time).transpose()?,
        day: parse_u32_attr(cond, "day")?,
        week: parse_u32_attr(cond, "week")?,
    };
    let exclusions = match child(node, "exclusive_datetimes") {
        Some(list) => children(list, "exclusive_datetime")
            .map(|ex| {
                Ok(Exclusion {
                    start: parse_datetime(required(ex, "start")?)?,
                    end: parse_datetime(required(ex, "end")?)?,
                })
            })
            .collect::<Decoded<Vec<_>>>()?,
        None => Vec::new(),
    };
    Ok(RepeatInfo {
        condition,
        exclusions,
    })
}

fn parse_when(node: Node<'_, '_>) -> Decoded<When> {
    let times = children(node, "datetime")
        .map(|dt| {
            Ok(TimeSpan {
                start: parse_datetime(required(dt, "start")?)?,
                end: attr(dt, "end").map(parse_datetime).transpose()?,
                facility_id: attr(dt, "facility_id").map(parse_u64_text).transpose()?,
            })
        })
        .collect::<Decoded<Vec<_>>>()?;
    if !times.is_empty() {
        return Ok(When::Times(times));
    }
    let dates = children(node, "date")
        .map(|d| {
            let start = parse_date(required(d, "start")?)?;
            let end = parse_date(required(d, "end")?)?;
            if end < start {
                return Err(DecodeError::new(format!(
                    "date span ends {end} before {start}"
                )));
            }
            Ok(DateSpan { start, end })
        })
        .collect::<Decoded<Vec<_>>>()?;
    Ok(if dates.is_empty() {
        When::Unset
    } else {
        When::Dates(dates)
    })
}

/// A login user as `BaseGetUsersBy…` return it (`base:UserType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub version: u64,
    pub name: String,
    pub reading: String,
    pub email: String,
    pub status: Option<i8>,
    pub primary_organization: Option<u64>,
    pub organizations: Vec<u64>,
    /// Not in the schema's attribute list; servers add it, and the simulator does.
    pub login_name: Option<String>,
}

impl User {
    pub fn from_xml(node: Node<'_, '_>) -> Decoded<Self> {
        Ok(Self {
            id: parse_u64(node, "key")?,
            version: parse_u64(node, "version")?,
            name: attr(node, "name").unwrap_or_default().to_string(),
            reading: attr(node, "reading").unwrap_or_default().to_string(),
            email: attr(node, "email").unwrap_or_default().to_string(),
            status: attr(node, "status")
                .map(|s| {
                    s.trim()
                        .parse::<i8>()
                        .map_err(|_| DecodeError::new(format!("user status {s:?} is not a byte")))
                })
                .transpose()?,
            primary_organization: attr(node, "primary_organization")
                .map(parse_u64_text)
                .transpose()?,
            organizations: children(node, "organization")
                .map(|o| parse_u64(o, "id"))
                .collect::<Decoded<Vec<_>>>()?,
            login_name: attr(node, "login_name").map(str::to_string),
        })
    }

    pub fn write_xml(&self, w: &mut Writer, tag: &str) {
        let (id, version) = (self.id.to_string(), self.version.to_string());
        let status = self.status.map(|s| s.to_string());
        let primary = self.primary_organization.map(|p| p.to_string());
        let mut attrs: Vec<(&str, &str)> = vec![
            ("key", &id),
            ("version", &version),
            ("name", &self.name),
            ("reading", &self.reading),
            ("email", &self.email),
        ];
        if let Some(status) = &status {
            attrs.push(("status", status));
        }
        if let Some(primary) = &primary {
            attrs.push(("primary_organization", primary));
        }
        if let Some(login) = &self.login_name {
            attrs.push(("login_name", login));
        }
        if self.organizations.is_empty() {
            w.empty(tag, &attrs);
            return;
        }
        w.open(tag, &attrs);
        for org in &self.organizations {
            w.empty(
                "organization",
                &[("xmlns", BASE_NS), ("id", &org.to_string())],
            );
        }
        w.close(tag);
    }
}

/// An organization (`base:OrganizationType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: u64,
    pub version: u64,
    pub name: String,
    pub parent: Option<u64>,
    pub members: Vec<u64>,
}

impl Organization {
    pub fn from_xml(node: Node<'_, '_>) -> Decoded<Self> {
        let members = match child(node, "members") {
            Some(list) => children(list, "user")
                .map(|u| parse_u64(u, "id"))
                .collect::<Decoded<Vec<_>>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            id: parse_u64(node, "key")?,
            version: parse_u64(node, "version")?,
            name: attr(node, "name").unwrap_or_default().to_string(),
            parent: attr(node, "parent_organization")
                .map(parse_u64_text)
                .transpose()?,
            members,
        })
    }

    pub fn write_xml(&self, w: &mut Writer, tag: &str) {
        let (id, version) = (self.id.to_string(), self.version.to_string());
        let parent = self.parent.map(|p| p.to_string());
        let mut attrs: Vec<(&str, &str)> =
            vec![("key", &id), ("name", &self.name), ("version", &version)];
        if let Some(parent) = &parent {
            attrs.push(("parent_organization", parent));
        }
        w.open(tag, &attrs);
        if !self.members.is_empty() {
            w.open("members", &[("xmlns", BASE_NS)]);
            for user in &self.members {
                w.empty("user", &[("id", &user.to_string())]);
            }
            w.close("members");
        }
        w.close(tag);
    }
}

/// A facility (設備, `schedule:FacilityType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facility {
    pub id: u64,
    pub version: u64,
    pub name: String,
    pub description: String,
}

impl Facility {
    pub fn from_xml(node: Node<'_, '_>) -> Decoded<Self> {
        Ok(Self {
            id: parse_u64(node, "key")?,
            version: parse_u64(node, "version")?,
            name: attr(node, "name").unwrap_or_default().to_string(),
            description: attr(node, "description").unwrap_or_default().to_string(),
        })
    }

    pub fn write_xml(&self, w: &mut Writer, tag: &str) {
        w.empty(
            tag,
            &[
                ("key", &self.id.to_string()),
                ("name", &self.name),
                ("version", &self.version.to_string()),
                ("description", &self.description),
            ],
        );
    }
}

/// What `ScheduleGetProfiles` tells: the plan menu and the system limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profiles {
    /// 予定メニュー entries, in order.
    pub plan_menu: Vec<String>,
    /// Minutes a time snaps to in the Office UI (予定の時間単位).
    pub event_reserve_unit: Option<u32>,
    /// Longest repeat in years (0 = unlimited).
    pub event_repeat_max_time: Option<u32>,
}

impl Profiles {
    /// Reads the `returns` of `ScheduleGetProfilesResponse`.
    pub fn from_xml(returns: Node<'_, '_>) -> Decoded<Self> {
        let system = child(returns, "system_profile")
            .ok_or_else(|| DecodeError::new("ScheduleGetProfiles reply without system_profile"))?;
        Ok(Self {
            plan_menu: split_plan_menu(attr(system, "plan_menu").unwrap_or_default()),
            event_reserve_unit: parse_u32_attr(system, "event_reserve_unit")?,
            event_repeat_max_time: parse_u32_attr(system, "event_repeat_max_time")?,
        })
    }
}

/// The plan menu comes as one attribute, one entry per line.
pub fn split_plan_menu(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// A known item and its version, as sent to the `…Versions` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemVersion {
    pub id: u64,
    pub version: u64,
}

/// What a `…Versions` operation reports for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Add,
    Modify,
    Remove,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Modify => "modify",
            Self::Remove => "remove",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemChange {
    pub id: u64,
    pub version: u64,
    pub kind: ChangeKind,
}

impl ItemChange {
    pub fn from_xml(node: Node<'_, '_>) -> Decoded<Self> {
        let kind = match required(node, "operation")? {
            "add" => ChangeKind::Add,
            "modify" => ChangeKind::Modify,
            "remove" => ChangeKind::Remove,
            other => return Err(DecodeError::new(format!("unknown operation {other:?}"))),
        };
        Ok(Self {
            id: parse_u64(node, "id")?,
            version: parse_u64(node, "version")?,
            kind,
        })
    }
}

// ---- value parsing shared with the SOAP layer and the simulator ----

pub(crate) fn required<'a>(node: Node<'a, '_>, name: &str) -> Decoded<&'a str> {
    attr(node, name).ok_or_else(|| {
        DecodeError::new(format!(
            "<{}> lacks the required attribute {name}",
            node.tag_name().name()
        ))
    })
}

pub(crate) fn parse_u64(node: Node<'_, '_>, name: &str) -> Decoded<u64> {
    parse_u64_text(required(node, name)?)
}

pub(crate) fn parse_u64_text(text: &str) -> Decoded<u64> {
    let trimmed = text.trim();
    trimmed
        .parse::<u64>()
        .map_err(|_| DecodeError::new(format!("{:?} is not a numeric id", shorten(trimmed))))
}

fn parse_id_or_placeholder(node: Node<'_, '_>, name: &str) -> Decoded<Option<u64>> {
    match required(node, name)?.trim() {
        NEW_ITEM_PLACEHOLDER => Ok(None),
        text => parse_u64_text(text).map(Some),
    }
}

fn parse_u32_attr(node: Node<'_, '_>, name: &str) -> Decoded<Option<u32>> {
    attr(node, name)
        .map(|text| {
            text.trim().parse::<u32>().map_err(|_| {
                DecodeError::new(format!("{name}={:?} is not a whole number", shorten(text)))
            })
        })
        .transpose()
}

pub(crate) fn parse_bool(node: Node<'_, '_>, name: &str) -> Decoded<Option<bool>> {
    attr(node, name)
        .map(|text| match text.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(DecodeError::new(format!(
                "{name}={:?} is not a boolean",
                shorten(other)
            ))),
        })
        .transpose()
}

pub fn parse_datetime(text: &str) -> Decoded<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DecodeError::new(format!("{:?} is not a date and time", shorten(text))))
}

/// A `YYYY-MM-DD` date. Years past 9999 are refused although chrono reads them (`+262142-12-31`):
/// at the end of chrono's range, the day after an event's last one could not be computed.
pub fn parse_date(text: &str) -> Decoded<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .filter(|date| (1..=9999).contains(&date.year()))
        .ok_or_else(|| DecodeError::new(format!("{:?} is not a date", shorten(text))))
}

pub fn parse_time(text: &str) -> Decoded<NaiveTime> {
    let text = text.trim();
    NaiveTime::parse_from_str(text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .map_err(|_| DecodeError::new(format!("{:?} is not a time of day", shorten(text))))
}

/// UTC in the API's form: `2026-11-25T01:00:00Z`.
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn format_time(t: NaiveTime) -> String {
    t.format("%H:%M:%S").to_string()
}

/// Keeps error messages short when a reply carries a huge value.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 40;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let head: String = text.chars().take(LIMIT).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut event = Event::new("Asia/Tokyo");
        event.id = Some(42);
        event.version = Some(1_764_000_000);
        event.event_type = EventType::Repeat;
        event.public_type = PublicType::Qualified;
        event.plan = "会議".into();
        event.detail = "定例 <週次> & \"確認\"".into();
        event.description = "一行目\n二行目".into();
        event.members = vec![
            Member::User(1),
            Member::Organization(3),
            Member::Facility(7),
        ];
        event.observers = vec![9];
        event.repeat = Some(RepeatInfo {
            condition: RepeatCondition {
                kind: RepeatKind::NthWeek(2),
                start_date: NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"),
                end_date: Some(NaiveDate::from_ymd_opt(2027, 3, 31).expect("date")),
                start_time: NaiveTime::from_hms_opt(10, 0, 0),
                end_time: NaiveTime::from_hms_opt(11, 30, 0),
                day: None,
                week: Some(2),
            },
            exclusions: vec![Exclusion {
                start: parse_datetime("2026-12-08T01:00:00Z").expect("time"),
                end: parse_datetime("2026-12-08T02:30:00Z").expect("time"),
            }],
        });
        event
    }

    fn round_trip(event: &Event) -> Event {
        let mut w = Writer::new();
        event.write_xml(&mut w, "schedule_event");
        let text = w.finish();
        let doc = xml::parse(&text).expect("own output parses");
        Event::from_xml(doc.root_element()).expect("own output decodes")
    }

    #[test]
    fn events_round_trip_through_xml() {
        let event = sample();
        assert_eq!(round_trip(&event), event);
    }

    #[test]
    fn new_events_use_the_placeholder_and_come_back_as_none() {
        let mut event = Event::new("Asia/Tokyo");
        event.when = When::Dates(vec![DateSpan {
            start: NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"),
            end: NaiveDate::from_ymd_opt(2026, 11, 27).expect("date"),
        }]);
        event.event_type = EventType::Banner;
        let back = round_trip(&event);
        assert_eq!(back.id, None);
        assert_eq!(back, event);
    }

    #[test]
    fn dates_beyond_four_digit_years_are_decode_errors() {
        assert_eq!(
            parse_date("2026-11-25").ok(),
            NaiveDate::from_ymd_opt(2026, 11, 25)
        );
        for text in ["+262142-12-31", "+10000-01-01", "0000-12-31", "-0001-01-01"] {
            assert!(parse_date(text).is_err(), "{text}");
        }
    }

    #[test]
    fn offsets_are_read_as_utc() {
        let t = parse_datetime("2026-11-25T10:00:00+09:00").expect("time");
        assert_eq!(format_datetime(t), "2026-11-25T01:00:00Z");
    }

    #[test]
    fn wrong_types_are_decode_errors() {
        let doc = xml::parse(
            r#"<schedule_event id="abc" event_type="normal" version="1" timezone="Asia/Tokyo"/>"#,
        )
        .expect("xml");
        assert!(Event::from_xml(doc.root_element()).is_err());
        let doc = xml::parse(
            r#"<schedule_event id="1" event_type="meeting" version="1" timezone="Asia/Tokyo"/>"#,
        )
        .expect("xml");
        assert!(Event::from_xml(doc.root_element()).is_err());
        let doc = xml::parse(
            r#"<schedule_event id="1" event_type="normal" version="1" allday="perhaps" timezone="x"/>"#,
        )
        .expect("xml");
        assert!(Event::from_xml(doc.root_element()).is_err());
    }

    #[test]
    fn huge_values_give_short_messages() {
        let huge = "9".repeat(100_000);
        let text = format!(
            r#"<schedule_event id="{huge}" event_type="normal" version="1" timezone="x"/>"#
        );
        let doc = xml::parse(&text).expect("xml");
        let err = Event::from_xml(doc.root_element()).expect_err("overflow");
        assert!(err.to_string().len() < 200);
    }

    #[test]
    fn display_title_joins_plan_and_detail() {
        let mut event = Event::new("Asia/Tokyo");
        event.detail = "定例".into();
        assert_eq!(event.display_title(), "定例");
        event.plan = "会議".into();
        assert_eq!(event.display_title(), "会議:定例");
    }

    #[test]
    fn plan_menu_splits_on_lines() {
        assert_eq!(
            split_plan_menu("会議\r\n来客\n\n 外出 \n"),
            vec!["会議", "来客", "外出"]
        );
    }
}
