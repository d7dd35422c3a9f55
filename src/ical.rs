//! Writing iCalendar (RFC 5545) text: escaping, line folding, and a VEVENT for the engine's
//! [`RemoteEvent`]. Used by the daily backup (and the CalDAV target).

use std::fmt::Write as _;

use chrono::{DateTime, Offset, TimeZone, Utc};

use crate::sync::convert::{RemoteEvent, RemoteWhen, Visibility};

/// The product identifier of files this program writes.
pub const PRODID: &str = "-//dncs//Cybozu Office sync//JA";

/// Escapes a TEXT value: backslash, semicolon, comma and line breaks.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets without splitting a UTF-8 character, with CRLF endings.
pub fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A `VTIMEZONE` with the zone's current standard offset. Zones of this product's users (Japan)
/// have no daylight saving time; for others the offset is the one in force at `at`.
pub fn vtimezone(name: &str, at: DateTime<Utc>, out: &mut String) {
    let Ok(tz) = name.parse::<chrono_tz::Tz>() else {
        return;
    };
    let seconds = tz
        .offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc();
    let sign = if seconds < 0 { '-' } else { '+' };
    let offset = format!(
        "{sign}{:02}{:02}",
        seconds.abs() / 3600,
        (seconds.abs() % 3600) / 60
    );
    for line in [
        "BEGIN:VTIMEZONE".to_string(),
        format!("TZID:{name}"),
        "BEGIN:STANDARD".to_string(),
        "DTSTART:19700101T000000".to_string(),
        format!("TZOFFSETFROM:{offset}"),
        format!("TZOFFSETTO:{offset}"),
        "END:STANDARD".to_string(),
        "END:VTIMEZONE".to_string(),
    ] {
        fold(&line, out);
    }
}

/// One VEVENT. `uid` is stable per event so a restore never doubles it.
pub fn vevent(uid: &str, event: &RemoteEvent, stamp: DateTime<Utc>, out: &mut String) {
    let mut lines = vec![
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}", escape_text(uid)),
        format!("DTSTAMP:{}", utc_stamp(stamp)),
    ];
    match event.when {
        RemoteWhen::Timed { start, end } => {
            lines.push(format!("DTSTART:{}", utc_stamp(start)));
            // An explicit end even when it equals the start (a start-only event).
            lines.push(format!("DTEND:{}", utc_stamp(end.max(start))));
        }
        RemoteWhen::AllDay { start, end } => {
            lines.push(format!("DTSTART;VALUE=DATE:{}", start.format("%Y%m%d")));
            lines.push(format!("DTEND;VALUE=DATE:{}", end.format("%Y%m%d")));
        }
    }
    lines.extend(event.recurrence.iter().cloned());
    lines.push(format!("SUMMARY:{}", escape_text(&event.title)));
    if !event.description.is_empty() {
        lines.push(format!("DESCRIPTION:{}", escape_text(&event.description)));
    }
    if !event.location.is_empty() {
        lines.push(format!("LOCATION:{}", escape_text(&event.location)));
    }
    match event.visibility {
        Visibility::Private => lines.push("CLASS:PRIVATE".into()),
        Visibility::Public => lines.push("CLASS:PUBLIC".into()),
        Visibility::Default => {}
    }
    if event.tentative {
        lines.push("STATUS:TENTATIVE".into());
    }
    if event.transparent {
        lines.push("TRANSP:TRANSPARENT".into());
    }
    if let Some(id) = event.cybozu_id {
        lines.push(format!("X-DNCS-CYBOZU-ID:{id}"));
    }
    if let Some(version) = event.cybozu_version {
        lines.push(format!("X-DNCS-CYBOZU-VERSION:{version}"));
    }
    if let Some(plan) = &event.plan {
        lines.push(format!("X-DNCS-PLAN:{}", escape_text(plan)));
    }
    lines.push("END:VEVENT".into());
    for line in lines {
        fold(&line, out);
    }
}

/// A whole calendar file.
pub fn calendar(events: &[(String, RemoteEvent)], stamp: DateTime<Utc>) -> String {
    let mut out = String::new();
    fold("BEGIN:VCALENDAR", &mut out);
    fold("VERSION:2.0", &mut out);
    fold(&format!("PRODID:{PRODID}"), &mut out);
    let mut zones: Vec<&str> = events.iter().map(|(_, e)| e.timezone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    for zone in zones {
        vtimezone(zone, stamp, &mut out);
    }
    for (uid, event) in events {
        vevent(uid, event, stamp, &mut out);
    }
    let _ = write!(out, "END:VCALENDAR\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape_text("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
    }

    #[test]
    fn long_lines_fold_on_character_boundaries() {
        let mut out = String::new();
        fold(&format!("SUMMARY:{}", "あ".repeat(60)), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets", line.len());
        }
        let unfolded = out.replace("\r\n ", "").replace("\r\n", "");
        assert_eq!(unfolded, format!("SUMMARY:{}", "あ".repeat(60)));
    }
}
