//! The simulated company behind `sim::cybozu`: users, organizations, facilities, the plan menu
//! and events, and what each 連携API operation does to them (versions, repeat splits,
//! facility double-booking, leave versus delete).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::cybozu::model::{
    parse_date, parse_datetime, ChangeKind, Event, EventType, Exclusion, Facility, ItemChange,
    Member, Organization, User, When,
};
use crate::cybozu::repeat::{event_spans, occurrence_on, zone};
use crate::cybozu::{codes, Fault};
use crate::xml::{attr, child, children, text, Node, Writer};

/// A simulated login user with the password the simulator checks.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    pub login: String,
    pub password: String,
}

/// Everything the simulated Cybozu Office holds.
#[derive(Debug, Clone, Default)]
pub struct Company {
    pub accounts: Vec<Account>,
    pub organizations: Vec<Organization>,
    pub facilities: Vec<Facility>,
    pub plan_menu: Vec<String>,
    pub events: BTreeMap<u64, Event>,
    next_event_id: u64,
    last_version: u64,
}

/// How far ahead a repeat without end is checked for facility clashes.
const CLASH_HORIZON_DAYS: i64 = 400;

pub type OpResult = Result<Option<String>, Fault>;

impl Company {
    pub fn new() -> Self {
        Self {
            next_event_id: 1,
            ..Self::default()
        }
    }

    pub fn add_account(
        &mut self,
        id: u64,
        login: &str,
        password: &str,
        name: &str,
    ) -> &mut Account {
        let version = self.next_version();
        self.accounts.push(Account {
            user: User {
                id,
                version,
                name: name.into(),
                reading: String::new(),
                email: format!("{login}@example.jp"),
                status: Some(0),
                primary_organization: None,
                organizations: Vec::new(),
                login_name: Some(login.into()),
            },
            login: login.into(),
            password: password.into(),
        });
        let last = self.accounts.len() - 1;
        &mut self.accounts[last]
    }

    pub fn account_by_login(&self, login: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.login == login)
    }

    pub fn user_id(&self, login: &str) -> Option<u64> {
        self.account_by_login(login).map(|a| a.user.id)
    }

    /// A version stamp: the UNIX time, but strictly increasing so that two changes within one
    /// second still differ, as a client comparing versions needs.
    pub fn next_version(&mut self) -> u64 {
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        self.last_version = now.max(self.last_version + 1);
        self.last_version
    }

    /// Stores a new event as if someone entered it in the browser; returns its id.
    pub fn insert_event(&mut self, mut event: Event) -> u64 {
        let id = self.next_event_id.max(1);
        self.next_event_id = id + 1;
        event.id = Some(id);
        event.version = Some(self.next_version());
        self.events.insert(id, event);
        id
    }

    /// Changes a stored event as if someone edited it in the browser, bumping its version.
    pub fn edit_event(&mut self, id: u64, change: impl FnOnce(&mut Event)) -> Option<u64> {
        let version = self.next_version();
        let event = self.events.get_mut(&id)?;
        change(event);
        event.id = Some(id);
        event.version = Some(version);
        Some(version)
    }

    /// The events `user_id` takes part in.
    pub fn events_of(&self, user_id: u64) -> impl Iterator<Item = &Event> {
        self.events.values().filter(move |e| e.has_user(user_id))
    }

    /// Runs one operation for the logged-in user, giving the inner XML of `returns`
    /// (`None` for an empty response) or a fault.
    pub fn perform(
        &mut self,
        operation: &str,
        user_id: u64,
        params: Option<Node<'_, '_>>,
    ) -> OpResult {
        let need_params = || params.ok_or_else(|| missing("parameters"));
        match operation {
            "UtilGetLoginUserId" => Ok(Some(format!("<user_id>{user_id}</user_id>"))),
            "BaseGetUsersByLoginName" => {
                let wanted: Vec<String> =
                    children(need_params()?, "login_name").map(text).collect();
                let users = wanted
                    .iter()
                    .filter_map(|login| self.account_by_login(login.trim()))
                    .map(|a| a.user.clone())
                    .collect::<Vec<_>>();
                Ok(Some(write_all(&users, |u, w| u.write_xml(w, "user"))))
            }
            "BaseGetUsersById" => {
                let ids = ids(need_params()?, "user_id")?;
                let users: Vec<User> = ids
                    .iter()
                    .filter_map(|id| self.accounts.iter().find(|a| a.user.id == *id))
                    .map(|a| a.user.clone())
                    .collect();
                Ok(Some(write_all(&users, |u, w| u.write_xml(w, "user"))))
            }
            "BaseGetUserVersions" => {
                let current = self.accounts.iter().map(|a| (a.user.id, a.user.version));
                versions_reply(need_params()?, "user_item", current)
            }
            "BaseGetOrganizationVersions" => {
                let current = self.organizations.iter().map(|o| (o.id, o.version));
                versions_reply(need_params()?, "organization_item", current)
            }
            "BaseGetOrganizationsById" => {
                let ids = ids(need_params()?, "organization_id")?;
                let found: Vec<&Organization> = self
                    .organizations
                    .iter()
                    .filter(|o| ids.contains(&o.id))
                    .collect();
                Ok(Some(write_all(&found, |o, w| {
                    o.write_xml(w, "organization")
                })))
            }
            "ScheduleGetFacilityVersions" => {
                let current = self.facilities.iter().map(|f| (f.id, f.version));
                versions_reply(need_params()?, "facility_item", current)
            }
            "ScheduleGetFacilitiesById" => {
                let ids = ids(need_params()?, "facility_id")?;
                let found: Vec<&Facility> = self
                    .facilities
                    .iter()
                    .filter(|f| ids.contains(&f.id))
                    .collect();
                Ok(Some(write_all(&found, |f, w| f.write_xml(w, "facility"))))
            }
            "ScheduleGetProfiles" => Ok(Some(self.profiles_xml())),
            "ScheduleGetEvents" => {
                let (start, end) = window(need_params()?, true)?;
                Ok(Some(self.events_reply(user_id, start, end)))
            }
            "ScheduleGetEventVersions" => self.event_versions(user_id, need_params()?),
            "ScheduleGetEventsById" => {
                let ids = ids(need_params()?, "event_id")?;
                let mut found = Vec::new();
                for id in ids {
                    found.push(self.visible(user_id, id)?.clone());
                }
                Ok(Some(write_all(&found, |e, w| {
                    e.write_xml(w, "schedule_event")
                })))
            }
            "ScheduleAddEvents" => self.add_events(user_id, need_params()?),
            "ScheduleModifyEvents" => self.modify_events(user_id, need_params()?),
            "ScheduleModifyRepeatEvents" => self.modify_repeat(user_id, need_params()?),
            "ScheduleRemoveEvents" => {
                let ids = ids(need_params()?, "event_id")?;
                for id in &ids {
                    self.visible(user_id, *id)?;
                }
                for id in ids {
                    self.events.remove(&id);
                }
                Ok(None)
            }
            "ScheduleRemoveEventsFromRepeatEvent" => {
                self.repeat_operations(user_id, need_params()?, RepeatAction::Remove)
            }
            "ScheduleLeaveEvents" => {
                let ids = ids(need_params()?, "event_id")?;
                for id in &ids {
                    self.visible(user_id, *id)?;
                }
                let mut left = Vec::new();
                for id in ids {
                    if let Some(event) = self.leave(user_id, id) {
                        left.push(event);
                    }
                }
                Ok(Some(write_all(&left, |e, w| {
                    e.write_xml(w, "schedule_event")
                })))
            }
            "ScheduleLeaveEventsFromRepeatEvent" => {
                self.repeat_operations(user_id, need_params()?, RepeatAction::Leave)
            }
            _ => Err(Fault::new(
                codes::NO_SUCH_API,
                "指定されたAPIは存在しません。",
                &format!("{operation} is not provided by this server"),
            )),
        }
    }

    fn profiles_xml(&self) -> String {
        let mut w = Writer::new();
        w.empty(
            "personal_profile",
            &[
                ("start_time_in_dayview", "8"),
                ("end_time_in_dayview", "19"),
                ("show_sunday", "true"),
                ("show_end_time", "true"),
                ("notify_mail", "false"),
            ],
        )
        .empty(
            "system_profile",
            &[
                ("plan_menu", &self.plan_menu.join("\n")),
                ("event_reserve_unit", "15"),
                ("event_repeat_max_time", "5"),
                ("register_private_event", "true"),
                ("show_memo", "true"),
                ("show_private_event", "true"),
                ("show_group_event", "true"),
                ("show_holiday", "true"),
            ],
        );
        w.finish()
    }

    /// Events of the user overlapping the window, one per series (the quirk layer may expand).
    pub fn window_events(
        &self,
        user_id: u64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<&Event> {
        self.events_of(user_id)
            .filter(|e| !event_spans(e, start, end).is_empty())
            .collect()
    }

    fn events_reply(&self, user_id: u64, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        let events = self.window_events(user_id, start, end);
        write_all(&events, |e, w| e.write_xml(w, "schedule_event"))
    }

    fn event_versions(&self, user_id: u64, params: Node<'_, '_>) -> OpResult {
        let (start, end) = window(params, false)?;
        let current = self
            .window_events(user_id, start, end)
            .into_iter()
            .filter_map(|e| Some((e.id?, e.version?)));
        versions_reply(params, "event_item", current)
    }

    /// The event if it exists and the user may see it; fault 501 otherwise, as Office answers.
    fn visible(&self, user_id: u64, id: u64) -> Result<&Event, Fault> {
        match self.events.get(&id) {
            Some(event) if event.has_user(user_id) || !event.public_type.is_private() => Ok(event),
            _ => Err(no_such_event(id)),
        }
    }

    fn add_events(&mut self, user_id: u64, params: Node<'_, '_>) -> OpResult {
        let mut incoming = Vec::new();
        for node in children(params, "schedule_event") {
            let mut event = decode_event(node)?;
            if !event.members.iter().any(|m| matches!(m, Member::User(_))) {
                event.members.insert(0, Member::User(user_id));
            }
            self.validate(&event, None)?;
            incoming.push(event);
        }
        if incoming.is_empty() {
            return Err(missing("schedule_event"));
        }
        let mut added = Vec::new();
        for event in incoming {
            let id = self.insert_event(event);
            added.extend(self.events.get(&id).cloned());
        }
        Ok(Some(write_all(&added, |e, w| {
            e.write_xml(w, "schedule_event")
        })))
    }

    fn modify_events(&mut self, user_id: u64, params: Node<'_, '_>) -> OpResult {
        let mut incoming = Vec::new();
        for node in children(params, "schedule_event") {
            let event = decode_event(node)?;
            let id = event
                .id
                .ok_or_else(|| bad_value("schedule_event id", "dummy"))?;
            let stored = self.visible(user_id, id)?;
            if stored.event_type == EventType::Repeat && event.event_type != EventType::Repeat {
                return Err(bad_value("event_type", event.event_type.as_str()));
            }
            self.validate(&event, Some(id))?;
            incoming.push((id, event));
        }
        if incoming.is_empty() {
            return Err(missing("schedule_event"));
        }
        let mut modified = Vec::new();
        for (id, mut event) in incoming {
            // The write replaces the event whole: what the request leaves out is gone.
            if !event.members.iter().any(|m| matches!(m, Member::User(_))) {
                event.members.insert(0, Member::User(user_id));
            }
            self.edit_event(id, |stored| *stored = event);
            modified.extend(self.events.get(&id).cloned());
        }
        Ok(Some(write_all(&modified, |e, w| {
            e.write_xml(w, "schedule_event")
        })))
    }

    fn modify_repeat(&mut self, user_id: u64, params: Node<'_, '_>) -> OpResult {
        let mut results = Vec::new();
        for operation in children(params, "operation") {
            let scope = Scope::read(operation)?;
            let node =
                child(operation, "schedule_event").ok_or_else(|| missing("schedule_event"))?;
            let mut event = decode_event(node)?;
            let id = event
                .id
                .ok_or_else(|| bad_value("schedule_event id", "dummy"))?;
            let series = self.visible(user_id, id)?.clone();
            if series.event_type != EventType::Repeat || series.repeat.is_none() {
                return Err(bad_value("event_id", &id.to_string()));
            }
            if event.members.is_empty() {
                event.members = series.members.clone();
            }
            results.push(match scope {
                Scope::All => {
                    event.event_type = EventType::Repeat;
                    self.validate(&event, Some(id))?;
                    self.edit_event(id, |stored| *stored = event);
                    let now = self
                        .events
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| no_such_event(id))?;
                    (now.clone(), now)
                }
                Scope::This(date) => {
                    let occurrence = self.occurrence(&series, date)?;
                    let mut single = event;
                    single.id = None;
                    single.event_type = EventType::Normal;
                    single.repeat = None;
                    if single.when == When::Unset {
                        single.when = occurrence_when(&series, &occurrence);
                    }
                    self.validate(&single, Some(id))?;
                    self.edit_event(id, |stored| exclude(stored, &occurrence));
                    let new_id = self.insert_event(single);
                    (self.clone_event(id)?, self.clone_event(new_id)?)
                }
                Scope::After(date) => {
                    let Some(series_rule) = series.repeat.as_ref() else {
                        return Err(bad_value("event_id", &id.to_string()));
                    };
                    if date <= series_rule.condition.start_date {
                        event.event_type = EventType::Repeat;
                        self.validate(&event, Some(id))?;
                        self.edit_event(id, |stored| *stored = event);
                        let now = self.clone_event(id)?;
                        (now.clone(), now)
                    } else {
                        let mut tail = event;
                        tail.id = None;
                        tail.event_type = EventType::Repeat;
                        if let Some(rule) = tail.repeat.as_mut() {
                            rule.condition.start_date = date;
                            if rule.condition.end_date.is_none() {
                                rule.condition.end_date = series_rule.condition.end_date;
                            }
                        }
                        self.validate(&tail, Some(id))?;
                        self.edit_event(id, |stored| truncate_before(stored, date));
                        let new_id = self.insert_event(tail);
                        (self.clone_event(id)?, self.clone_event(new_id)?)
                    }
                }
            });
        }
        if results.is_empty() {
            return Err(missing("operation"));
        }
        Ok(Some(write_results(&results)))
    }

    fn repeat_operations(
        &mut self,
        user_id: u64,
        params: Node<'_, '_>,
        action: RepeatAction,
    ) -> OpResult {
        let mut results = Vec::new();
        for operation in children(params, "operation") {
            let id = number(operation, "event_id")?;
            let scope = Scope::read(operation)?;
            let series = self.visible(user_id, id)?.clone();
            if series.event_type != EventType::Repeat || series.repeat.is_none() {
                return Err(bad_value("event_id", &id.to_string()));
            }
            let others_remain = series.user_ids().any(|u| u != user_id);
            let result = match (action, scope) {
                (RepeatAction::Remove, Scope::All) => {
                    self.events.remove(&id);
                    (series.clone(), series)
                }
                (RepeatAction::Leave, Scope::All) => match self.leave(user_id, id) {
                    Some(now) => (now.clone(), now),
                    None => (series.clone(), series),
                },
                (_, Scope::This(date)) => {
                    let occurrence = self.occurrence(&series, date)?;
                    self.edit_event(id, |stored| exclude(stored, &occurrence));
                    let original = self.clone_event(id)?;
                    let modified = if action == RepeatAction::Leave && others_remain {
                        // The others keep that day as a single event without the user.
                        let mut single = series.clone();
                        single.event_type = EventType::Normal;
                        single.repeat = None;
                        single.when = occurrence_when(&series, &occurrence);
                        single.members.retain(|m| *m != Member::User(user_id));
                        let new_id = self.insert_event(single);
                        self.clone_event(new_id)?
                    } else {
                        original.clone()
                    };
                    (original, modified)
                }
                (_, Scope::After(date)) => {
                    let starts_at_date = series
                        .repeat
                        .as_ref()
                        .is_some_and(|r| date <= r.condition.start_date);
                    let kept_part = if starts_at_date {
                        self.events.remove(&id);
                        series.clone()
                    } else {
                        self.edit_event(id, |stored| truncate_before(stored, date));
                        self.clone_event(id)?
                    };
                    let modified = if action == RepeatAction::Leave && others_remain {
                        let mut tail = series.clone();
                        if let Some(rule) = tail.repeat.as_mut() {
                            rule.condition.start_date = date;
                        }
                        tail.members.retain(|m| *m != Member::User(user_id));
                        let new_id = self.insert_event(tail);
                        self.clone_event(new_id)?
                    } else {
                        kept_part.clone()
                    };
                    (kept_part, modified)
                }
            };
            results.push(result);
        }
        if results.is_empty() {
            return Err(missing("operation"));
        }
        Ok(Some(write_results(&results)))
    }

    /// Takes the user out; an event nobody takes part in any more is deleted.
    fn leave(&mut self, user_id: u64, id: u64) -> Option<Event> {
        let version = self.next_version();
        let event = self.events.get_mut(&id)?;
        event.members.retain(|m| *m != Member::User(user_id));
        if event.user_ids().next().is_none() {
            self.events.remove(&id);
            return None;
        }
        event.version = Some(version);
        Some(event.clone())
    }

    fn clone_event(&self, id: u64) -> Result<Event, Fault> {
        self.events
            .get(&id)
            .cloned()
            .ok_or_else(|| no_such_event(id))
    }

    fn occurrence(
        &self,
        series: &Event,
        date: NaiveDate,
    ) -> Result<crate::cybozu::repeat::Occurrence, Fault> {
        let rule = series
            .repeat
            .as_ref()
            .ok_or_else(|| missing("repeat_info"))?;
        if !crate::cybozu::repeat::matches(&rule.condition, date) {
            return Err(bad_value("date", &date.to_string()));
        }
        Ok(occurrence_on(&rule.condition, zone(&series.timezone), date))
    }

    /// What Office checks before storing: required parts present, the end after the start,
    /// and no facility booked twice at once.
    fn validate(&self, event: &Event, replacing: Option<u64>) -> Result<(), Fault> {
        match event.event_type {
            EventType::Repeat => {
                let rule = event
                    .repeat
                    .as_ref()
                    .ok_or_else(|| missing("repeat_info"))?;
                let c = &rule.condition;
                if c.end_date.is_some_and(|end| end < c.start_date) {
                    return Err(end_before_start());
                }
            }
            EventType::Banner => {
                if !matches!(event.when, When::Dates(_)) {
                    return Err(missing("when/date"));
                }
            }
            EventType::Normal | EventType::Temporary => {
                if event.when == When::Unset {
                    return Err(missing("when"));
                }
            }
        }
        match &event.when {
            When::Times(spans) => {
                if spans.iter().any(|s| s.end.is_some_and(|end| end < s.start)) {
                    return Err(end_before_start());
                }
            }
            When::Dates(spans) => {
                if spans.iter().any(|s| s.end < s.start) {
                    return Err(end_before_start());
                }
            }
            When::Unset => {}
        }
        if event.event_type != EventType::Temporary {
            self.check_facilities(event, replacing)?;
        }
        Ok(())
    }

    fn check_facilities(&self, event: &Event, replacing: Option<u64>) -> Result<(), Fault> {
        let facilities: Vec<u64> = event.facility_ids().collect();
        if facilities.is_empty() {
            return Ok(());
        }
        let (from, to) = horizon(event);
        let mine = event_spans(event, from, to);
        for other in self.events.values() {
            if other.id == replacing
                || other.id.is_none()
                || other.event_type == EventType::Temporary
            {
                continue;
            }
            if !other.facility_ids().any(|f| facilities.contains(&f)) {
                continue;
            }
            let theirs = event_spans(other, from, to);
            let clash = mine
                .iter()
                .any(|a| theirs.iter().any(|b| a.0 < b.1 && b.0 < a.1));
            if clash {
                return Err(Fault::new(
                    codes::FACILITY_DOUBLE_BOOKED,
                    "指定した時間帯はすでに設備が予約されています。",
                    &format!("facility already booked by event {}", other.id.unwrap_or(0)),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RepeatAction {
    Remove,
    Leave,
}

#[derive(Debug, Clone, Copy)]
enum Scope {
    This(NaiveDate),
    After(NaiveDate),
    All,
}

impl Scope {
    fn read(node: Node<'_, '_>) -> Result<Self, Fault> {
        let date = || {
            attr(node, "date")
                .ok_or_else(|| missing("date"))
                .and_then(|d| parse_date(d).map_err(|_| bad_value("date", d)))
        };
        match attr(node, "type") {
            Some("this") => Ok(Self::This(date()?)),
            Some("after") => Ok(Self::After(date()?)),
            Some("all") => Ok(Self::All),
            Some(other) => Err(bad_value("type", other)),
            None => Err(missing("type")),
        }
    }
}

/// The span checked for facility clashes: the event's own extent, bounded for endless repeats.
fn horizon(event: &Event) -> (DateTime<Utc>, DateTime<Utc>) {
    let tz = zone(&event.timezone);
    let day = |d: NaiveDate| crate::cybozu::repeat::local_to_utc(tz, d, chrono::NaiveTime::MIN);
    match (&event.repeat, &event.when) {
        (Some(rule), _) => {
            let start = rule.condition.start_date;
            let end = rule
                .condition
                .end_date
                .unwrap_or(start + Duration::days(CLASH_HORIZON_DAYS));
            (day(start), day(end + Duration::days(1)))
        }
        (None, When::Times(spans)) => {
            let start = spans.iter().map(|s| s.start).min().unwrap_or_else(Utc::now);
            let end = spans
                .iter()
                .map(|s| s.end.unwrap_or(s.start))
                .max()
                .unwrap_or(start);
            (start, end + Duration::seconds(1))
        }
        (None, When::Dates(spans)) => {
            let start = spans.iter().map(|s| s.start).min();
            let end = spans.iter().map(|s| s.end).max();
            match (start, end) {
                (Some(start), Some(end)) => (day(start), day(end + Duration::days(1))),
                _ => (Utc::now(), Utc::now()),
            }
        }
        (None, When::Unset) => (Utc::now(), Utc::now()),
    }
}

fn exclude(event: &mut Event, occurrence: &crate::cybozu::repeat::Occurrence) {
    if let Some(rule) = event.repeat.as_mut() {
        rule.exclusions.push(Exclusion {
            start: occurrence.start,
            end: occurrence.end,
        });
    }
}

fn truncate_before(event: &mut Event, date: NaiveDate) {
    if let Some(rule) = event.repeat.as_mut() {
        rule.condition.end_date = date.pred_opt();
    }
}

fn occurrence_when(series: &Event, occurrence: &crate::cybozu::repeat::Occurrence) -> When {
    let all_day = series
        .repeat
        .as_ref()
        .is_some_and(|r| r.condition.start_time.is_none());
    if all_day {
        When::Dates(vec![crate::cybozu::model::DateSpan {
            start: occurrence.date,
            end: occurrence.date,
        }])
    } else {
        When::Times(vec![crate::cybozu::model::TimeSpan {
            start: occurrence.start,
            end: (!series.start_only).then_some(occurrence.end),
            facility_id: None,
        }])
    }
}

fn decode_event(node: Node<'_, '_>) -> Result<Event, Fault> {
    Event::from_xml(node)
        .map_err(|e| Fault::new(codes::BAD_VALUE, "パラメータの値が不正です。", &e.what))
}

fn window(
    params: Node<'_, '_>,
    end_required: bool,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Fault> {
    let start_text = attr(params, "start").ok_or_else(|| missing("start"))?;
    let start = parse_datetime(start_text).map_err(|_| bad_value("start", start_text))?;
    let end = match attr(params, "end") {
        Some(text) => parse_datetime(text).map_err(|_| bad_value("end", text))?,
        None if end_required => return Err(missing("end")),
        None => start + Duration::days(365 * 10),
    };
    if end < start {
        return Err(end_before_start());
    }
    Ok((start, end))
}

fn ids(params: Node<'_, '_>, element: &str) -> Result<Vec<u64>, Fault> {
    let ids: Vec<u64> = children(params, element)
        .map(|n| {
            let value = text(n);
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| bad_value(element, &value))
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(missing(element));
    }
    Ok(ids)
}

fn number(node: Node<'_, '_>, name: &str) -> Result<u64, Fault> {
    let value = attr(node, name).ok_or_else(|| missing(name))?;
    value.trim().parse().map_err(|_| bad_value(name, value))
}

fn versions_reply(
    params: Node<'_, '_>,
    element: &str,
    current: impl Iterator<Item = (u64, u64)>,
) -> OpResult {
    let mut known = BTreeMap::new();
    for item in children(params, element) {
        known.insert(number(item, "id")?, number(item, "version")?);
    }
    let current: BTreeMap<u64, u64> = current.collect();
    let mut changes = Vec::new();
    for (&id, &version) in &current {
        match known.get(&id) {
            None => changes.push(ItemChange {
                id,
                version,
                kind: ChangeKind::Add,
            }),
            Some(&old) if old != version => changes.push(ItemChange {
                id,
                version,
                kind: ChangeKind::Modify,
            }),
            Some(_) => {}
        }
    }
    for (&id, &version) in &known {
        if !current.contains_key(&id) {
            changes.push(ItemChange {
                id,
                version,
                kind: ChangeKind::Remove,
            });
        }
    }
    Ok(Some(write_changes(element, &changes)))
}

fn write_changes(element: &str, changes: &[ItemChange]) -> String {
    write_all(changes, |c, w| {
        w.empty(
            element,
            &[
                ("id", &c.id.to_string()),
                ("version", &c.version.to_string()),
                ("operation", c.kind.as_str()),
            ],
        );
    })
}

fn write_results(results: &[(Event, Event)]) -> String {
    write_all(results, |(original, modified), w| {
        w.open("result", &[]);
        original.write_xml(w, "original");
        modified.write_xml(w, "modified");
        w.close("result");
    })
}

fn write_all<T>(items: &[T], write: impl Fn(&T, &mut Writer)) -> String {
    let mut w = Writer::new();
    for item in items {
        write(item, &mut w);
    }
    w.finish()
}

pub fn missing(what: &str) -> Fault {
    Fault::new(
        codes::MISSING_PARAMETER,
        "必須パラメータが指定されていません。",
        &format!("{what} is required"),
    )
}

pub fn bad_value(what: &str, value: &str) -> Fault {
    let shown: String = value.chars().take(40).collect();
    Fault::new(
        codes::BAD_VALUE,
        "パラメータの値が不正です。",
        &format!("{what} = {shown:?} is not acceptable"),
    )
}

fn end_before_start() -> Fault {
    Fault::new(
        codes::END_BEFORE_START,
        "終了日時が開始日時より前に設定されています。",
        "the end is before the start",
    )
}

fn no_such_event(id: u64) -> Fault {
    Fault::new(
        codes::NO_SUCH_EVENT,
        "指定された予定は存在しません。",
        &format!("event {id} does not exist or is not visible"),
    )
}

/// A member list with the user first, for seeding.
pub fn users(ids: &[u64]) -> Vec<Member> {
    ids.iter().map(|id| Member::User(*id)).collect()
}

/// The occurrences-per-series expansion of the "repeats returned once per occurrence" quirk:
/// each occurrence in the window as its own copy with that day's `when`.
pub fn expand_occurrences(event: &Event, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Event> {
    if event.event_type != EventType::Repeat {
        return vec![event.clone()];
    }
    event_spans(event, start, end)
        .into_iter()
        .map(|(s, e)| {
            let mut copy = event.clone();
            copy.when = When::Times(vec![crate::cybozu::model::TimeSpan {
                start: s,
                end: Some(e),
                facility_id: None,
            }]);
            copy
        })
        .collect()
}

/// The element name a reply's events go in, for the quirk layer that rewrites `ScheduleGetEvents`.
pub fn events_xml(events: &[Event]) -> String {
    write_all(events, |e, w| e.write_xml(w, "schedule_event"))
}
