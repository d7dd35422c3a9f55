//! Expands a repeat rule (`repeat_info`) into its occurrences, in the event's own time zone,
//! the way Cybozu Office draws them on its calendar.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use super::model::{Event, EventType, RepeatCondition, RepeatInfo, RepeatKind, When};

/// One occurrence of a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// The local date of the occurrence: what `type=this date=…` names.
    pub date: NaiveDate,
    /// Start and end in UTC; for an all-day series, local midnight to the next local midnight.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The event's zone, or Tokyo when a server sends a name this build does not know.
pub fn zone(name: &str) -> Tz {
    name.parse::<Tz>().unwrap_or(chrono_tz::Asia::Tokyo)
}

/// Local wall time to UTC; a time skipped by a DST jump moves forward an hour, an ambiguous one
/// takes the earlier instant (Japan has neither, but events may carry other zones).
pub fn local_to_utc(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(early, _) => early.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let later = naive + Duration::hours(1);
            tz.from_local_datetime(&later)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
        }
    }
}

/// Whether the rule puts an occurrence on this local date (exclusions not considered).
pub fn matches(condition: &RepeatCondition, date: NaiveDate) -> bool {
    if date < condition.start_date || condition.end_date.is_some_and(|end| date > end) {
        return false;
    }
    let weekday_wanted = || condition.week.map(weekday_from_cybozu);
    match condition.kind {
        RepeatKind::Day => true,
        RepeatKind::Weekday => !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        RepeatKind::Week => weekday_wanted() == Some(Some(date.weekday())),
        RepeatKind::NthWeek(n) => {
            weekday_wanted() == Some(Some(date.weekday())) && (date.day() - 1) / 7 + 1 == n as u32
        }
        RepeatKind::LastWeek => {
            weekday_wanted() == Some(Some(date.weekday()))
                && date
                    .checked_add_signed(Duration::days(7))
                    .map(|d| d.month())
                    != Some(date.month())
        }
        RepeatKind::Month => match condition.day {
            Some(0) => is_last_day_of_month(date),
            // A day the month lacks (31 in a 30-day month) falls on its last day, as Office does.
            Some(day) => date.day() == day || (is_last_day_of_month(date) && day > date.day()),
            None => date.day() == condition.start_date.day(),
        },
    }
}

fn is_last_day_of_month(date: NaiveDate) -> bool {
    date.succ_opt()
        .is_none_or(|next| next.month() != date.month())
}

/// `week` counts from Sunday = 0.
pub fn weekday_from_cybozu(week: u32) -> Option<Weekday> {
    Some(match week {
        0 => Weekday::Sun,
        1 => Weekday::Mon,
        2 => Weekday::Tue,
        3 => Weekday::Wed,
        4 => Weekday::Thu,
        5 => Weekday::Fri,
        6 => Weekday::Sat,
        _ => return None,
    })
}

pub fn weekday_to_cybozu(day: Weekday) -> u32 {
    day.num_days_from_sunday()
}

/// The occurrences of `repeat` whose local date lies in `from..=to`, exclusions removed.
///
/// Bounded by the range, so an endless rule costs only the window asked for.
pub fn occurrences(
    repeat: &RepeatInfo,
    timezone: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Occurrence> {
    let tz = zone(timezone);
    let condition = &repeat.condition;
    let first = from.max(condition.start_date);
    let last = condition.end_date.map_or(to, |end| end.min(to));
    let mut found = Vec::new();
    let mut date = first;
    while date <= last {
        if matches(condition, date) && !excludes(repeat, tz, date) {
            found.push(occurrence_on(condition, tz, date));
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    found
}

/// Whether the series' exclusions take out the occurrence on this local date.
pub fn excludes(repeat: &RepeatInfo, tz: Tz, date: NaiveDate) -> bool {
    repeat
        .exclusions
        .iter()
        .any(|ex| ex.start.with_timezone(&tz).date_naive() == date)
}

/// The occurrence the rule would put on `date` (whether or not it does).
pub fn occurrence_on(condition: &RepeatCondition, tz: Tz, date: NaiveDate) -> Occurrence {
    match condition.start_time {
        Some(start_time) => {
            let start = local_to_utc(tz, date, start_time);
            let end = match condition.end_time {
                Some(end_time) if end_time >= start_time => local_to_utc(tz, date, end_time),
                // An end before the start runs past midnight.
                Some(end_time) => local_to_utc(tz, date + Duration::days(1), end_time),
                None => start,
            };
            Occurrence { date, start, end }
        }
        None => Occurrence {
            date,
            start: local_to_utc(tz, date, NaiveTime::MIN),
            end: local_to_utc(tz, date + Duration::days(1), NaiveTime::MIN),
        },
    }
}

/// The spans of `event` that touch `from..to`: its timed spans, its date spans as local
/// midnight to midnight, or its repeat occurrences. A `start_only` event is a point in time.
pub fn event_spans(
    event: &Event,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let tz = zone(&event.timezone);
    let all: Vec<(DateTime<Utc>, DateTime<Utc>)> = match (&event.repeat, &event.when) {
        (Some(repeat), _) if event.event_type == EventType::Repeat => {
            // A day of margin each side: the window is in UTC, the rule in local dates.
            let first = from.with_timezone(&tz).date_naive() - Duration::days(1);
            let last = to.with_timezone(&tz).date_naive() + Duration::days(1);
            occurrences(repeat, &event.timezone, first, last)
                .into_iter()
                .map(|o| (o.start, o.end))
                .collect()
        }
        (_, When::Times(spans)) => spans
            .iter()
            .map(|s| (s.start, s.end.unwrap_or(s.start)))
            .collect(),
        (_, When::Dates(spans)) => spans
            .iter()
            .map(|s| {
                (
                    local_to_utc(tz, s.start, NaiveTime::MIN),
                    local_to_utc(tz, s.end + Duration::days(1), NaiveTime::MIN),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    all.into_iter()
        .filter(|&(start, end)| {
            if end <= start {
                start >= from && start < to
            } else {
                start < to && end > from
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cybozu::model::Exclusion;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    fn rule(kind: RepeatKind, week: Option<u32>, day: Option<u32>) -> RepeatInfo {
        RepeatInfo {
            condition: RepeatCondition {
                kind,
                start_date: d(2026, 1, 1),
                end_date: Some(d(2026, 12, 31)),
                start_time: NaiveTime::from_hms_opt(10, 0, 0),
                end_time: NaiveTime::from_hms_opt(11, 0, 0),
                day,
                week,
            },
            exclusions: Vec::new(),
        }
    }

    fn dates(repeat: &RepeatInfo, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        occurrences(repeat, "Asia/Tokyo", from, to)
            .into_iter()
            .map(|o| o.date)
            .collect()
    }

    #[test]
    fn every_kind_lands_on_the_right_days() {
        let nov = (d(2026, 11, 1), d(2026, 11, 30));
        assert_eq!(
            dates(&rule(RepeatKind::Day, None, None), nov.0, nov.1).len(),
            30
        );
        assert_eq!(
            dates(&rule(RepeatKind::Weekday, None, None), nov.0, nov.1).len(),
            21
        );
        // Wednesdays of November 2026: 4, 11, 18, 25.
        assert_eq!(
            dates(&rule(RepeatKind::Week, Some(3), None), nov.0, nov.1),
            vec![
                d(2026, 11, 4),
                d(2026, 11, 11),
                d(2026, 11, 18),
                d(2026, 11, 25)
            ]
        );
        assert_eq!(
            dates(&rule(RepeatKind::NthWeek(2), Some(3), None), nov.0, nov.1),
            vec![d(2026, 11, 11)]
        );
        assert_eq!(
            dates(&rule(RepeatKind::LastWeek, Some(3), None), nov.0, nov.1),
            vec![d(2026, 11, 25)]
        );
        assert_eq!(
            dates(&rule(RepeatKind::Month, None, Some(0)), nov.0, nov.1),
            vec![d(2026, 11, 30)]
        );
        assert_eq!(
            dates(&rule(RepeatKind::Month, None, Some(31)), nov.0, nov.1),
            vec![d(2026, 11, 30)]
        );
        assert_eq!(
            dates(&rule(RepeatKind::Month, None, Some(15)), nov.0, nov.1),
            vec![d(2026, 11, 15)]
        );
    }

    #[test]
    fn exclusions_and_bounds_are_respected() {
        let mut weekly = rule(RepeatKind::Week, Some(3), None);
        weekly.exclusions.push(Exclusion {
            start: local_to_utc(zone("Asia/Tokyo"), d(2026, 11, 11), NaiveTime::MIN),
            end: local_to_utc(zone("Asia/Tokyo"), d(2026, 11, 11), NaiveTime::MIN),
        });
        weekly.condition.end_date = Some(d(2026, 11, 20));
        assert_eq!(
            dates(&weekly, d(2026, 11, 1), d(2026, 11, 30)),
            vec![d(2026, 11, 4), d(2026, 11, 18)]
        );
    }

    #[test]
    fn times_are_local_to_the_event_zone() {
        let weekly = rule(RepeatKind::Week, Some(3), None);
        let occ = occurrences(&weekly, "Asia/Tokyo", d(2026, 11, 4), d(2026, 11, 4));
        assert_eq!(occ[0].start.to_rfc3339(), "2026-11-04T01:00:00+00:00");
        assert_eq!(occ[0].end.to_rfc3339(), "2026-11-04T02:00:00+00:00");
    }

    #[test]
    fn endless_rules_stop_at_the_window() {
        let mut daily = rule(RepeatKind::Day, None, None);
        daily.condition.end_date = None;
        assert_eq!(dates(&daily, d(2030, 1, 1), d(2030, 1, 10)).len(), 10);
    }
}
