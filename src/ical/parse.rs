//! Reading iCalendar text into components and properties, keeping everything — unknown
//! properties, parameters and components such as VALARM — so that a resource written back loses
//! nothing this product does not map.

use super::fold;

/// One content line: `NAME;PARAM=V:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Upper case.
    pub name: String,
    /// (upper-case name, value without quotes).
    pub params: Vec<(String, String)>,
    /// Raw, still escaped.
    pub value: String,
}

impl Property {
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_ascii_uppercase(),
            params: Vec::new(),
            value: value.into(),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The unfolded content line; a parameter value holding `:`, `;` or `,` is quoted, so that
    /// a zone such as `"(UTC+09:00) Osaka, Sapporo, Tokyo"` reads back whole.
    pub fn to_line(&self) -> String {
        let mut line = self.name.clone();
        for (name, value) in &self.params {
            let needs_quotes = value.contains([':', ';', ',']);
            if needs_quotes {
                line.push_str(&format!(";{name}=\"{value}\""));
            } else {
                line.push_str(&format!(";{name}={value}"));
            }
        }
        line.push(':');
        line.push_str(&self.value);
        line
    }

    fn write(&self, out: &mut String) {
        fold(&self.to_line(), out);
    }
}

/// `BEGIN:NAME … END:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Component {
    pub name: String,
    pub properties: Vec<Property>,
    pub children: Vec<Component>,
}

impl Component {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_ascii_uppercase(),
            ..Self::default()
        }
    }

    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn properties_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Property> + 'a {
        self.properties
            .iter()
            .filter(move |p| p.name.eq_ignore_ascii_case(name))
    }

    /// The unescaped text of a property.
    pub fn text(&self, name: &str) -> Option<String> {
        self.property(name).map(|p| unescape_text(&p.value))
    }

    pub fn remove(&mut self, name: &str) {
        self.properties
            .retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// Replaces every property of that name with this one.
    pub fn set(&mut self, property: Property) {
        let at = self
            .properties
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(&property.name));
        self.remove(&property.name);
        match at {
            Some(at) => self
                .properties
                .insert(at.min(self.properties.len()), property),
            None => self.properties.push(property),
        }
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Component> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    pub fn write(&self, out: &mut String) {
        fold(&format!("BEGIN:{}", self.name), out);
        for property in &self.properties {
            property.write(out);
        }
        for child in &self.children {
            child.write(out);
        }
        fold(&format!("END:{}", self.name), out);
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcalError {
    #[error("line {line}: {what}")]
    Syntax { line: usize, what: String },
    #[error("the text holds no VCALENDAR")]
    NoCalendar,
}

/// Undoes TEXT escaping.
pub fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// How deep components may nest. Real objects go three deep (VCALENDAR, VEVENT, VALARM); the
/// limit is there because dropping, cloning and writing a component recurse, so a server's reply
/// of thousands of nested BEGINs would otherwise overflow the stack and abort the whole run.
const MAX_NESTING: usize = 16;

/// Parses a calendar object; lines are unfolded first (CRLF or LF, a leading space or tab).
pub fn parse(text: &str) -> Result<Component, IcalError> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = raw.strip_prefix([' ', '\t']) {
            if let Some((_, last)) = lines.last_mut() {
                last.push_str(rest);
                continue;
            }
        }
        if !raw.trim().is_empty() {
            lines.push((index + 1, raw.to_string()));
        }
    }
    let mut stack: Vec<Component> = Vec::new();
    let mut root: Option<Component> = None;
    for (line, text) in lines {
        let property = parse_content_line(&text).ok_or_else(|| IcalError::Syntax {
            line,
            what: format!(
                "not a content line: {:?}",
                text.chars().take(60).collect::<String>()
            ),
        })?;
        match property.name.as_str() {
            "BEGIN" if stack.len() >= MAX_NESTING => {
                return Err(IcalError::Syntax {
                    line,
                    what: format!("components nest deeper than {MAX_NESTING}"),
                })
            }
            "BEGIN" => stack.push(Component::new(property.value.trim())),
            "END" => {
                let done = stack.pop().ok_or_else(|| IcalError::Syntax {
                    line,
                    what: "END without BEGIN".into(),
                })?;
                if !done.name.eq_ignore_ascii_case(property.value.trim()) {
                    return Err(IcalError::Syntax {
                        line,
                        what: format!("END:{} closes {}", property.value, done.name),
                    });
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            _ => match stack.last_mut() {
                Some(current) => current.properties.push(property),
                None => {
                    return Err(IcalError::Syntax {
                        line,
                        what: "a property outside any component".into(),
                    })
                }
            },
        }
    }
    if let Some(open) = stack.last() {
        return Err(IcalError::Syntax {
            line: 0,
            what: format!("BEGIN:{} is never closed", open.name),
        });
    }
    root.filter(|r| r.name == "VCALENDAR")
        .ok_or(IcalError::NoCalendar)
}

/// `NAME;P=V;Q="a:b":value`; quoted parameter values may hold `:` and `;`.
/// One unfolded content line as a property (`None` when it has no name or no `:`).
pub fn parse_content_line(line: &str) -> Option<Property> {
    let mut in_quotes = false;
    let mut colon = None;
    for (at, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => {
                colon = Some(at);
                break;
            }
            _ => {}
        }
    }
    let colon = colon?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = split_unquoted(head, ';').into_iter();
    let name = parts.next()?.trim().to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_uppercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect();
    Some(Property {
        name,
        params,
        value: value.to_string(),
    })
}

fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if c == separator && !in_quotes => {
                parts.push(&text[start..at]);
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPLE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//iOS 17//EN\r\nBEGIN:VEVENT\r\nUID:abc\r\nDTSTART;TZID=Asia/Tokyo:20261125T100000\r\nDTEND;TZID=Asia/Tokyo:20261125T110000\r\nSUMMARY:会議:長いタイトルが折り返される\r\n ことがあります\r\nDESCRIPTION:一行目\\n二行目\\, カンマ\r\nATTENDEE;CN=\"Sato, Misaki\";ROLE=REQ-PARTICIPANT:mailto:sato@example.jp\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn folded_lines_params_and_nested_components_are_read() {
        let calendar = parse(APPLE).expect("parses");
        let event = calendar.children_named("VEVENT").next().expect("event");
        assert_eq!(
            event.text("SUMMARY").as_deref(),
            Some("会議:長いタイトルが折り返されることがあります")
        );
        assert_eq!(
            event.text("DESCRIPTION").as_deref(),
            Some("一行目\n二行目, カンマ")
        );
        assert_eq!(
            event.property("DTSTART").and_then(|p| p.param("TZID")),
            Some("Asia/Tokyo")
        );
        let attendee = event.property("ATTENDEE").expect("attendee");
        assert_eq!(attendee.param("CN"), Some("Sato, Misaki"));
        assert_eq!(attendee.value, "mailto:sato@example.jp");
        assert_eq!(event.children_named("VALARM").count(), 1);
    }

    #[test]
    fn writing_back_keeps_what_is_not_mapped() {
        let calendar = parse(APPLE).expect("parses");
        let again = parse(&calendar.to_text()).expect("reparses");
        assert_eq!(again, calendar);
    }

    #[test]
    fn broken_text_is_an_error_not_a_panic() {
        for text in [
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",
            "BEGIN:VCALENDAR\r\n",
            "no colon here\r\n",
            "SUMMARY:orphan\r\n",
            "BEGIN:VEVENT\r\nEND:VEVENT\r\n",
            "",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_it_can_overflow_the_stack() {
        let depth = 20_000;
        let text = format!(
            "BEGIN:VCALENDAR\r\n{}{}END:VCALENDAR\r\n",
            "BEGIN:X\r\n".repeat(depth),
            "END:X\r\n".repeat(depth)
        );
        let error = parse(&text).expect_err("refused");
        assert!(error.to_string().contains("nest deeper"), "{error}");
        let three_deep = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert!(parse(three_deep).is_ok());
    }

    #[test]
    fn a_begin_with_trailing_blanks_still_names_its_component() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT \r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let calendar = parse(text).expect("parses");
        assert_eq!(calendar.children_named("VEVENT").count(), 1);
    }
}
