//! Cybozu repeat conditions ↔ RFC 5545 recurrence rules, both ways where the rule can be
//! expressed; a rule Cybozu cannot hold stays on the remote side (the caller reports it).

use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::cybozu::repeat::{local_to_utc, weekday_from_cybozu, weekday_to_cybozu};
use crate::cybozu::{RepeatCondition, RepeatKind};

const DAYS: [(&str, Weekday); 7] = [
    ("SU", Weekday::Sun),
    ("MO", Weekday::Mon),
    ("TU", Weekday::Tue),
    ("WE", Weekday::Wed),
    ("TH", Weekday::Thu),
    ("FR", Weekday::Fri),
    ("SA", Weekday::Sat),
];

fn day_code(day: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, d)| *d == day)
        .map(|(code, _)| *code)
        .unwrap_or("MO")
}

fn day_of(code: &str) -> Option<Weekday> {
    DAYS.iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|(_, d)| *d)
}

/// The `RRULE:` line for a condition. `UNTIL` is the last occurrence's start in UTC for a timed
/// series and the last date for an all-day one, as RFC 5545 requires for each DTSTART kind.
pub fn to_rrule(condition: &RepeatCondition, tz: Tz) -> String {
    let weekday = || {
        condition
            .week
            .and_then(weekday_from_cybozu)
            .unwrap_or_else(|| condition.start_date.weekday())
    };
    let mut rule = match condition.kind {
        RepeatKind::Day => "FREQ=DAILY".to_string(),
        RepeatKind::Weekday => "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".to_string(),
        RepeatKind::Week => format!("FREQ=WEEKLY;BYDAY={}", day_code(weekday())),
        RepeatKind::NthWeek(n) => format!("FREQ=MONTHLY;BYDAY={n}{}", day_code(weekday())),
        RepeatKind::LastWeek => format!("FREQ=MONTHLY;BYDAY=-1{}", day_code(weekday())),
        RepeatKind::Month => match condition.day.unwrap_or(condition.start_date.day()) {
            0 => "FREQ=MONTHLY;BYMONTHDAY=-1".to_string(),
            day => format!("FREQ=MONTHLY;BYMONTHDAY={day}"),
        },
    };
    if let Some(end) = condition.end_date {
        match condition.start_time {
            Some(start_time) => {
                let until = local_to_utc(tz, end, start_time);
                rule.push_str(&format!(";UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
            }
            None => rule.push_str(&format!(";UNTIL={}", end.format("%Y%m%d"))),
        }
    }
    format!("RRULE:{rule}")
}

/// Why a remote rule stays on the remote side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inexpressible {
    #[error("the repeat rule {0:?} cannot be expressed in Cybozu Office")]
    Rule(String),
}

/// Reads an `RRULE` back into a condition for a series starting on `start_date` (local) with
/// these local times. Only the shapes Cybozu Office has are accepted: every day, weekdays,
/// weekly on one day, monthly on the n-th or last weekday, monthly on a day of the month;
/// no INTERVAL other than 1, no COUNT (an end date is used instead when known).
pub fn from_rrule(
    line: &str,
    start_date: NaiveDate,
    start_time: Option<NaiveTime>,
    end_time: Option<NaiveTime>,
    tz: Tz,
) -> Result<RepeatCondition, Inexpressible> {
    let refuse = || Inexpressible::Rule(line.to_string());
    let body = line
        .trim()
        .strip_prefix("RRULE:")
        .or_else(|| line.trim().strip_prefix("rrule:"))
        .ok_or_else(refuse)?;
    let mut freq = None;
    let mut by_day: Vec<String> = Vec::new();
    let mut by_month_day = None;
    let mut until = None;
    for part in body.split(';') {
        let (key, value) = part.split_once('=').ok_or_else(refuse)?;
        match key.to_ascii_uppercase().as_str() {
            "FREQ" => freq = Some(value.to_ascii_uppercase()),
            "BYDAY" => {
                by_day = value
                    .split(',')
                    .map(|d| d.trim().to_ascii_uppercase())
                    .collect()
            }
            "BYMONTHDAY" => by_month_day = Some(value.parse::<i32>().map_err(|_| refuse())?),
            "UNTIL" => until = Some(parse_until(value, tz).ok_or_else(refuse)?),
            "INTERVAL" if value == "1" => {}
            "WKST" => {}
            _ => return Err(refuse()),
        }
    }
    let single_day = |spec: &str| -> Option<(i32, Weekday)> {
        // The split is by bytes: a day code is two ASCII letters, and anything else is refused.
        if !spec.is_ascii() {
            return None;
        }
        let split = spec.len().checked_sub(2)?;
        let (ordinal, code) = spec.split_at(split);
        let n = if ordinal.is_empty() {
            0
        } else {
            ordinal.parse().ok()?
        };
        Some((n, day_of(code)?))
    };
    let (kind, week, day) = match (freq.as_deref(), by_day.as_slice(), by_month_day) {
        (Some("DAILY"), [], None) => (RepeatKind::Day, None, None),
        (Some("WEEKLY"), days, None) if is_weekdays(days) => (RepeatKind::Weekday, None, None),
        (Some("WEEKLY"), [one], None) => match single_day(one) {
            Some((0, day)) => (RepeatKind::Week, Some(weekday_to_cybozu(day)), None),
            _ => return Err(refuse()),
        },
        (Some("WEEKLY"), [], None) => (
            RepeatKind::Week,
            Some(weekday_to_cybozu(start_date.weekday())),
            None,
        ),
        (Some("MONTHLY"), [one], None) => match single_day(one) {
            Some((n @ 1..=4, day)) => (
                RepeatKind::NthWeek(n as u8),
                Some(weekday_to_cybozu(day)),
                None,
            ),
            Some((-1, day)) => (RepeatKind::LastWeek, Some(weekday_to_cybozu(day)), None),
            _ => return Err(refuse()),
        },
        (Some("MONTHLY"), [], Some(-1)) => (RepeatKind::Month, None, Some(0)),
        (Some("MONTHLY"), [], Some(d @ 1..=31)) => (RepeatKind::Month, None, Some(d as u32)),
        (Some("MONTHLY"), [], None) => (RepeatKind::Month, None, Some(start_date.day())),
        _ => return Err(refuse()),
    };
    Ok(RepeatCondition {
        kind,
        start_date,
        end_date: until,
        start_time,
        end_time,
        day,
        week,
    })
}

fn is_weekdays(days: &[String]) -> bool {
    let mut sorted: Vec<&str> = days.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted == ["FR", "MO", "TH", "TU", "WE"]
}

/// `UNTIL` as a local date: a UTC date-time is taken in `tz`.
fn parse_until(value: &str, tz: Tz) -> Option<NaiveDate> {
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y%m%d") {
        return Some(date);
    }
    let utc =
        chrono::NaiveDateTime::parse_from_str(value.trim_end_matches('Z'), "%Y%m%dT%H%M%S").ok()?;
    Some(utc.and_utc().with_timezone(&tz).date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    fn condition(kind: RepeatKind, week: Option<u32>, day: Option<u32>) -> RepeatCondition {
        RepeatCondition {
            kind,
            start_date: d("2026-11-02"),
            end_date: Some(d("2027-03-29")),
            start_time: NaiveTime::from_hms_opt(9, 30, 0),
            end_time: NaiveTime::from_hms_opt(10, 0, 0),
            day,
            week,
        }
    }

    #[test]
    fn every_cybozu_kind_round_trips() {
        let tz = chrono_tz::Asia::Tokyo;
        for c in [
            condition(RepeatKind::Day, None, None),
            condition(RepeatKind::Weekday, None, None),
            condition(RepeatKind::Week, Some(1), None),
            condition(RepeatKind::NthWeek(2), Some(3), None),
            condition(RepeatKind::LastWeek, Some(5), None),
            condition(RepeatKind::Month, None, Some(0)),
            condition(RepeatKind::Month, None, Some(15)),
        ] {
            let line = to_rrule(&c, tz);
            let back = from_rrule(&line, c.start_date, c.start_time, c.end_time, tz).expect(&line);
            assert_eq!(back.kind, c.kind, "{line}");
            assert_eq!(back.end_date, c.end_date, "{line}");
            if matches!(
                c.kind,
                RepeatKind::Week | RepeatKind::NthWeek(_) | RepeatKind::LastWeek
            ) {
                assert_eq!(back.week, c.week, "{line}");
            }
            if c.kind == RepeatKind::Month {
                assert_eq!(back.day, c.day, "{line}");
            }
        }
    }

    #[test]
    fn lastweek_is_byday_minus_one_and_until_is_utc() {
        let line = to_rrule(
            &condition(RepeatKind::LastWeek, Some(5), None),
            chrono_tz::Asia::Tokyo,
        );
        assert_eq!(line, "RRULE:FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20270329T003000Z");
    }

    #[test]
    fn rules_cybozu_cannot_hold_are_refused() {
        let tz = chrono_tz::Asia::Tokyo;
        for line in [
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
            "RRULE:FREQ=YEARLY",
            "RRULE:FREQ=DAILY;COUNT=5",
            "RRULE:FREQ=MONTHLY;BYDAY=5MO",
            "RRULE:FREQ=WEEKLY;BYDAY=月",
            "RRULE:FREQ=MONTHLY;BYDAY=1月",
            "RRULE:FREQ=WEEKLY;BYDAY=éX",
            "EXDATE:20261109",
        ] {
            assert!(
                from_rrule(line, d("2026-11-02"), None, None, tz).is_err(),
                "{line}"
            );
        }
    }
}
