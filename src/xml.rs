//! Small XML helpers shared by the SOAP client, the simulators and (later) CalDAV: escaping, a
//! forgiving-but-safe parse (control characters stripped, no DTDs, node limit) and lookups by
//! local name, because servers choose their own namespace prefixes.

use std::borrow::Cow;
use std::fmt::Write as _;

pub use roxmltree::{Document, Node};

/// Upper bound on nodes in one parsed document: a defence against replies crafted to exhaust memory.
const MAX_NODES: u32 = 2_000_000;

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("the reply is not well-formed XML: {0}")]
    Syntax(String),
}

/// Parses XML text after removing the control characters some servers emit raw.
///
/// The caller keeps the cleaned text alive ([`clean`]) because the document borrows it.
pub fn parse(clean_text: &str) -> Result<Document<'_>, XmlError> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    Document::parse_with_options(clean_text, options).map_err(|e| XmlError::Syntax(e.to_string()))
}

/// Removes characters XML 1.0 forbids: raw C0 controls other than tab, CR and LF, DEL, and
/// character references to them (`&#1;`), which Cybozu Office sends when a user pasted them.
pub fn clean(text: &str) -> Cow<'_, str> {
    let needs_work = text.chars().any(is_forbidden) || text.contains("&#");
    if !needs_work {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(|c: char| c == '&' || is_forbidden(c)) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after_amp) = tail.strip_prefix('&') {
            match forbidden_char_ref_len(tail) {
                Some(len) => rest = &tail[len..],
                None => {
                    out.push('&');
                    rest = after_amp;
                }
            }
        } else {
            // A forbidden raw character: skip it (all are one byte long).
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn is_forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}')
}

/// If `tail` starts with a numeric character reference to a forbidden character, its length.
fn forbidden_char_ref_len(tail: &str) -> Option<usize> {
    let body = tail.strip_prefix("&#")?;
    let end = body.find(';')?;
    if end == 0 || end > 8 {
        return None;
    }
    let digits = &body[..end];
    let value = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u32>().ok()?,
    };
    let forbidden = char::from_u32(value).is_none_or(is_forbidden);
    forbidden.then_some(2 + end + 1)
}

/// Escapes text for use inside an element or a double-quoted attribute.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'', '\r', '\n', '\t']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Attribute values are normalised by parsers: line breaks in a memo survive only as references.
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if is_forbidden(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The first child element with this local name.
pub fn child<'a, 'i>(node: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == local)
}

/// Every child element with this local name.
pub fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    local: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == local)
}

/// Every child element.
pub fn elements<'a, 'i: 'a>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(|c| c.is_element())
}

/// The first descendant element (or the node itself) with this local name.
pub fn descendant<'a, 'i>(node: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    node.descendants()
        .find(|c| c.is_element() && c.tag_name().name() == local)
}

/// An attribute by local name, whatever its namespace.
pub fn attr<'a>(node: Node<'a, '_>, local: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == local)
        .map(|a| a.value())
}

/// The concatenated text of a node's direct text children.
pub fn text(node: Node<'_, '_>) -> String {
    node.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

/// Builds XML text element by element; every attribute value and text is escaped here, once.
#[derive(Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raw markup the caller vouches for (fixed envelope parts).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push('>');
        self
    }

    /// `<name a="…"/>`; attributes whose value is `None` are left out.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push_str("/>");
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "</{name}>");
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape(text));
        self
    }

    /// `<name>text</name>`.
    pub fn text_element(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name, &[]).text(text).close(name)
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let _ = write!(self.out, "<{name}");
        for (key, value) in attrs {
            let _ = write!(self.out, " {key}=\"{}\"", escape(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_raw_controls_and_their_references() {
        let dirty = "<a t=\"x\u{1}y&#2;z&#x1F;\">ok&amp;&#10;\u{7f}</a>";
        let cleaned = clean(dirty);
        assert_eq!(cleaned, "<a t=\"xyz\">ok&amp;&#10;</a>");
        let doc = parse(&cleaned).expect("clean text parses");
        assert_eq!(attr(doc.root_element(), "t"), Some("xyz"));
    }

    #[test]
    fn clean_leaves_ordinary_text_borrowed() {
        assert!(matches!(clean("<a>日本語</a>"), Cow::Borrowed(_)));
    }

    #[test]
    fn lookups_ignore_prefixes() {
        let text = r#"<s:Env xmlns:s="urn:a"><s:Body><x:Op xmlns:x="urn:b" x:k="v"><returns/></x:Op></s:Body></s:Env>"#;
        let doc = parse(text).expect("parses");
        let op = descendant(doc.root_element(), "Op").expect("found");
        assert_eq!(attr(op, "k"), Some("v"));
        assert!(child(op, "returns").is_some());
    }

    #[test]
    fn escaped_values_round_trip() {
        let nasty = "a&b<c>\"d'\ne\tf";
        let mut w = Writer::new();
        w.empty("x", &[("v", nasty)]);
        let xml = w.finish();
        let doc = parse(&xml).expect("parses");
        assert_eq!(attr(doc.root_element(), "v"), Some(nasty));
    }

    #[test]
    fn dtds_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbbbbbb">]><a>&b;</a>"#;
        assert!(parse(bomb).is_err());
    }

    #[test]
    fn truncated_text_is_an_error() {
        assert!(parse("<a><b>").is_err());
    }
}
