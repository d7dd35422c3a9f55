//! iCalendar (RFC 5545) text: escaping, line folding, time zones, and reading a calendar object
//! into components ([`parse`]) without losing what is not understood.

pub mod parse;

use chrono::{DateTime, Offset, TimeZone, Utc};

pub use parse::{parse, unescape_text, Component, IcalError, Property};

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
