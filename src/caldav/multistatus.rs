//! WebDAV `multistatus` replies (RFC 4918 §13) read into owned values: one entry per `response`
//! with its href, its own status if it has one, and the properties a `propstat` answered 200 for.
//!
//! Properties are kept by local name only, because servers choose their own prefixes and the
//! handful of names CalDAV needs do not clash across the DAV:, CalDAV and CalendarServer spaces.

use super::CalDavError;
use crate::xml;

/// A parsed `multistatus`.
#[derive(Debug, Default)]
pub(crate) struct Multistatus {
    pub responses: Vec<Entry>,
    /// The top-level `sync-token` of a `sync-collection` reply.
    pub sync_token: Option<String>,
}

/// One `response` element.
#[derive(Debug)]
pub(crate) struct Entry {
    pub href: String,
    /// A status on the response itself (`404` for a member removed since a sync token).
    pub status: Option<u16>,
    /// The properties found (`200` propstats); those the server lacks are left out.
    pub props: Vec<Prop>,
}

/// One property the server returned.
#[derive(Debug)]
pub(crate) struct Prop {
    pub name: String,
    /// Its direct text, trimmed (an ETag, a display name, a calendar's data).
    pub text: String,
    /// The texts of the `href` elements below it (principal and home-set URLs).
    pub hrefs: Vec<String>,
    /// Local names of every element below it (`calendar` in a `resourcetype`, `sync-collection`
    /// in a `supported-report-set`).
    pub inner: Vec<String>,
}

impl Entry {
    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.name == name)
    }

    /// The trimmed text of a property, when present and not empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.prop(name)
            .map(|p| p.text.clone())
            .filter(|t| !t.is_empty())
    }

    /// Whether a property holds an element with this local name.
    pub fn has_inner(&self, name: &str, inner: &str) -> bool {
        self.prop(name)
            .is_some_and(|p| p.inner.iter().any(|n| n == inner))
    }

    /// The first `href` inside a property.
    pub fn href_in(&self, name: &str) -> Option<&str> {
        self.prop(name)
            .and_then(|p| p.hrefs.first())
            .map(String::as_str)
    }
}

/// Reads a multistatus body; anything else is [`CalDavError::Malformed`].
pub(crate) fn parse(body: &str) -> Result<Multistatus, CalDavError> {
    let cleaned = xml::clean(body);
    let doc =
        xml::parse(&cleaned).map_err(|e| CalDavError::Malformed(format!("multistatus: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "multistatus" {
        return Err(CalDavError::Malformed(format!(
            "expected a multistatus, got <{}>",
            root.tag_name().name()
        )));
    }
    let mut out = Multistatus {
        sync_token: xml::child(root, "sync-token")
            .map(|n| xml::text(n).trim().to_string())
            .filter(|t| !t.is_empty()),
        ..Multistatus::default()
    };
    for response in xml::children(root, "response") {
        let href = xml::child(response, "href")
            .map(|n| xml::text(n).trim().to_string())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| CalDavError::Malformed("a response without an href".into()))?;
        let status = xml::child(response, "status").and_then(|n| status_code(&xml::text(n)));
        let mut props = Vec::new();
        for propstat in xml::children(response, "propstat") {
            let ok = xml::child(propstat, "status")
                .and_then(|n| status_code(&xml::text(n)))
                .is_some_and(|code| (200..300).contains(&code));
            let Some(prop) = xml::child(propstat, "prop").filter(|_| ok) else {
                continue;
            };
            for element in xml::elements(prop) {
                props.push(Prop {
                    name: element.tag_name().name().to_string(),
                    text: xml::text(element).trim().to_string(),
                    hrefs: element
                        .descendants()
                        .filter(|n| n.is_element() && n.tag_name().name() == "href")
                        .map(|n| xml::text(n).trim().to_string())
                        .collect(),
                    inner: element
                        .descendants()
                        .skip(1)
                        .filter(|n| n.is_element())
                        .map(|n| n.tag_name().name().to_string())
                        .collect(),
                });
            }
        }
        out.responses.push(Entry {
            href,
            status,
            props,
        });
    }
    Ok(out)
}

/// The code of a status line, `HTTP/1.1 404 Not Found` → 404.
fn status_code(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_props_by_local_name_and_skips_missing_ones() {
        let body = r#"<?xml version="1.0"?>
<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/">
  <D:response><D:href>/u/cal/</D:href>
    <D:propstat><D:prop>
      <D:resourcetype><D:collection/><C:calendar/></D:resourcetype>
      <D:displayname>Work</D:displayname><CS:getctag>"c1"</CS:getctag>
      <D:supported-report-set><D:supported-report><D:report><D:sync-collection/></D:report></D:supported-report></D:supported-report-set>
    </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
    <D:propstat><D:prop><D:owner/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
  </D:response>
  <D:response><D:href>/u/cal/gone.ics</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>
  <D:sync-token>tok</D:sync-token>
</D:multistatus>"#;
        let parsed = parse(body).expect("parses");
        assert_eq!(parsed.sync_token.as_deref(), Some("tok"));
        let cal = &parsed.responses[0];
        assert!(cal.has_inner("resourcetype", "calendar"));
        assert!(cal.has_inner("supported-report-set", "sync-collection"));
        assert_eq!(cal.text("displayname").as_deref(), Some("Work"));
        assert_eq!(cal.text("getctag").as_deref(), Some("\"c1\""));
        assert!(cal.prop("owner").is_none());
        assert_eq!(parsed.responses[1].status, Some(404));
    }

    #[test]
    fn other_documents_are_malformed() {
        assert!(matches!(parse("<a/>"), Err(CalDavError::Malformed(_))));
        assert!(matches!(parse("<html>"), Err(CalDavError::Malformed(_))));
        let no_href = r#"<multistatus xmlns="DAV:"><response/></multistatus>"#;
        assert!(matches!(parse(no_href), Err(CalDavError::Malformed(_))));
    }
}
