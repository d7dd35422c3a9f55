//! SOAP 1.2 envelopes of the 連携API: requests with WS-Security, replies and faults, in the
//! rpc/literal shapes of the Office 10.6 WSDL. Shared by the client and the simulator so that both
//! speak one wire format, which the tests hold against the WSDL's schemas.

use chrono::{DateTime, Duration, Utc};

use super::model::format_datetime;
use crate::xml::{self, attr, child, descendant, text, Node, Writer};

pub const SOAP_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
const ADDRESSING_NS: &str = "http://schemas.xmlsoap.org/ws/2003/03/addressing";
const SECEXT_NS: &str = "http://schemas.xmlsoap.org/ws/2002/12/secext";
const UTILITY_NS: &str = "http://schemas.xmlsoap.org/ws/2002/07/utility";

/// How long a request stays valid: Office answers 19104 to one past its `Expires`.
const REQUEST_LIFETIME_MINUTES: i64 = 60;

/// The three services this product calls; each is a `page=` of the Cybozu CGI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Base,
    Schedule,
    Util,
}

impl Service {
    /// The service an operation belongs to, from its name's prefix.
    pub fn of(operation: &str) -> Option<Self> {
        if operation.starts_with("Schedule") {
            Some(Self::Schedule)
        } else if operation.starts_with("Base") {
            Some(Self::Base)
        } else if operation.starts_with("Util") {
            Some(Self::Util)
        } else {
            None
        }
    }

    /// The `page=` value of the CGI that serves it.
    pub fn page(self) -> &'static str {
        match self {
            Self::Base => "PApiBase",
            Self::Schedule => "PApiSchedule",
            Self::Util => "PApiUtil",
        }
    }

    pub fn from_page(page: &str) -> Option<Self> {
        [Self::Base, Self::Schedule, Self::Util]
            .into_iter()
            .find(|s| s.page().eq_ignore_ascii_case(page))
    }

    /// The WSDL namespace of its operation elements.
    pub fn namespace(self) -> &'static str {
        match self {
            Self::Base => "http://wsdl.cybozu.co.jp/base/2008",
            Self::Schedule => "http://wsdl.cybozu.co.jp/schedule/2008",
            Self::Util => "http://wsdl.cybozu.co.jp/util_api/2008",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Schedule => "schedule",
            Self::Util => "util",
        }
    }
}

/// The `<parameters>` of a request: attributes and already-escaped child markup.
#[derive(Debug, Default)]
pub struct Parameters<'a> {
    pub attrs: Vec<(&'a str, String)>,
    pub body: String,
}

/// A complete request envelope for `operation` on behalf of `login`/`password`.
pub fn request(
    operation: &str,
    login: &str,
    password: &str,
    now: DateTime<Utc>,
    params: &Parameters<'_>,
) -> String {
    let service = Service::of(operation).unwrap_or(Service::Schedule);
    let created = format_datetime(now);
    let expires = format_datetime(now + Duration::minutes(REQUEST_LIFETIME_MINUTES));
    let mut w = Writer::new();
    w.raw(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
        .open("soap:Envelope", &[("xmlns:soap", SOAP_NS)])
        .open("soap:Header", &[])
        .open(
            "Action",
            &[("soap:mustUnderstand", "1"), ("xmlns", ADDRESSING_NS)],
        )
        .text(operation)
        .close("Action")
        .open(
            "Security",
            &[("soap:mustUnderstand", "1"), ("xmlns", SECEXT_NS)],
        )
        .open("UsernameToken", &[])
        .text_element("Username", login)
        .text_element("Password", password)
        .close("UsernameToken")
        .close("Security")
        .open(
            "Timestamp",
            &[("soap:mustUnderstand", "1"), ("xmlns", UTILITY_NS)],
        )
        .text_element("Created", &created)
        .text_element("Expires", &expires)
        .close("Timestamp")
        .close("soap:Header")
        .open("soap:Body", &[])
        .open(operation, &[("xmlns", service.namespace())]);
    let mut attrs: Vec<(&str, &str)> = vec![("xmlns", "")];
    attrs.extend(params.attrs.iter().map(|(k, v)| (*k, v.as_str())));
    if params.body.is_empty() {
        w.empty("parameters", &attrs);
    } else {
        w.open("parameters", &attrs)
            .raw(&params.body)
            .close("parameters");
    }
    w.close(operation).close("soap:Body").close("soap:Envelope");
    w.finish()
}

/// A reply envelope: `<svc:OpResponse><returns>…</returns></svc:OpResponse>`, or an empty
/// `<svc:OpResponse/>` for the operations whose WSDL output message has no part.
pub fn response(operation: &str, returns: Option<&str>) -> String {
    let service = Service::of(operation).unwrap_or(Service::Schedule);
    let element = format!("{}:{operation}Response", service.prefix());
    let xmlns = format!("xmlns:{}", service.prefix());
    let mut w = Writer::new();
    w.raw(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
        .open("soap:Envelope", &[("xmlns:soap", SOAP_NS)])
        .open("soap:Header", &[])
        .text_element("vendor", "Cybozu")
        .text_element("product", "Cybozu Office")
        .text_element("version", "10.6.0")
        .text_element("apiversion", "1.0.0")
        .close("soap:Header")
        .open("soap:Body", &[]);
    match returns {
        Some(inner) => {
            w.open(&element, &[(&xmlns, service.namespace())])
                .open("returns", &[])
                .raw(inner)
                .close("returns")
                .close(&element);
        }
        None => {
            w.empty(&element, &[(&xmlns, service.namespace())]);
        }
    }
    w.close("soap:Body").close("soap:Envelope");
    w.finish()
}

/// A `soap:Fault` as Office sends it: the details as children of `Detail`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fault {
    /// The numeric code, e.g. `19108`; kept as text because servers pad or prefix it.
    pub code: String,
    pub reason: String,
    pub diagnosis: String,
    pub cause: String,
    pub counter_measure: String,
}

impl Fault {
    pub fn new(code: u32, reason: &str, diagnosis: &str) -> Self {
        Self {
            code: code.to_string(),
            reason: reason.to_string(),
            diagnosis: diagnosis.to_string(),
            cause: String::new(),
            counter_measure: String::new(),
        }
    }

    /// The code as a number, when it is one.
    pub fn number(&self) -> Option<u32> {
        self.code
            .trim()
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    }

    pub fn to_envelope(&self) -> String {
        let mut w = Writer::new();
        w.raw(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
            .open("soap:Envelope", &[("xmlns:soap", SOAP_NS)])
            .open("soap:Body", &[])
            .open("soap:Fault", &[])
            .open("soap:Code", &[])
            .text_element("soap:Value", "soap:Receiver")
            .close("soap:Code")
            .open("soap:Reason", &[])
            .open("soap:Text", &[("xml:lang", "ja-JP")])
            .text(&self.reason)
            .close("soap:Text")
            .close("soap:Reason")
            .open("soap:Detail", &[])
            .text_element("code", &self.code)
            .text_element("diagnosis", &self.diagnosis)
            .text_element("cause", &self.cause)
            .text_element("counter_measure", &self.counter_measure)
            .close("soap:Detail")
            .close("soap:Fault")
            .close("soap:Body")
            .close("soap:Envelope");
        w.finish()
    }

    /// Reads a `Fault` element: details as children of `Detail`, or the WSDL's attribute form.
    pub fn from_xml(fault: Node<'_, '_>) -> Self {
        let reason = descendant(fault, "Reason")
            .and_then(|r| descendant(r, "Text"))
            .map(text)
            .unwrap_or_default();
        let detail = descendant(fault, "Detail");
        let field = |name: &str| -> String {
            let Some(detail) = detail else {
                return String::new();
            };
            if let Some(node) = child(detail, name) {
                return text(node).trim().to_string();
            }
            descendant(detail, "fault")
                .and_then(|f| attr(f, name))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        Self {
            code: field("code"),
            reason: reason.trim().to_string(),
            diagnosis: field("diagnosis"),
            cause: field("cause"),
            counter_measure: field("counter_measure"),
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fault {}", self.code)?;
        for part in [&self.reason, &self.diagnosis, &self.cause] {
            if !part.is_empty() {
                write!(f, ": {part}")?;
            }
        }
        Ok(())
    }
}

/// What the body of a reply held.
pub enum Reply<'a, 'i> {
    /// The `returns` element, or `None` for an empty response.
    Returns(Option<Node<'a, 'i>>),
    Fault(Fault),
}

/// Finds the reply to `operation` in a parsed envelope.
pub fn read_reply<'a, 'i>(
    doc: &'a xml::Document<'i>,
    operation: &str,
) -> Result<Reply<'a, 'i>, String> {
    let envelope = doc.root_element();
    if envelope.tag_name().name() != "Envelope" {
        return Err(format!(
            "the root element is <{}>, not a SOAP Envelope",
            envelope.tag_name().name()
        ));
    }
    let body = child(envelope, "Body").ok_or("the envelope has no Body")?;
    let first = xml::elements(body).next().ok_or("the Body is empty")?;
    let name = first.tag_name().name();
    if name == "Fault" {
        return Ok(Reply::Fault(Fault::from_xml(first)));
    }
    let expected = format!("{operation}Response");
    if name != expected {
        return Err(format!("expected <{expected}>, found <{name}>"));
    }
    Ok(Reply::Returns(child(first, "returns")))
}

/// The request side, as the simulator reads it.
pub struct Request<'a, 'i> {
    pub operation: String,
    pub login: String,
    pub password: String,
    pub expires: Option<String>,
    /// The unqualified `<parameters>` element.
    pub parameters: Option<Node<'a, 'i>>,
}

/// Reads a request envelope: the operation from the body element (the `Action` header must agree).
pub fn read_request<'a, 'i>(doc: &'a xml::Document<'i>) -> Result<Request<'a, 'i>, String> {
    let envelope = doc.root_element();
    if envelope.tag_name().name() != "Envelope" {
        return Err("the root element is not a SOAP Envelope".into());
    }
    let header = child(envelope, "Header");
    let body = child(envelope, "Body").ok_or("the envelope has no Body")?;
    let call = xml::elements(body).next().ok_or("the Body is empty")?;
    let operation = call.tag_name().name().to_string();
    let header_text = |name: &str| header.and_then(|h| descendant(h, name)).map(text);
    if let Some(action) = header_text("Action") {
        if action.trim() != operation {
            return Err(format!(
                "the Action header names {} but the body calls {operation}",
                action.trim()
            ));
        }
    }
    Ok(Request {
        operation,
        login: header_text("Username").unwrap_or_default(),
        password: header_text("Password").unwrap_or_default(),
        expires: header_text("Expires"),
        parameters: child(call, "parameters"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_action_security_and_timestamp() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T01:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let params = Parameters {
            attrs: vec![("start", "2026-11-01T00:00:00Z".into())],
            body: String::new(),
        };
        let envelope = request("ScheduleGetEvents", "takahashi", "p&ss<", now, &params);
        let doc = xml::parse(&envelope).expect("parses");
        let req = read_request(&doc).expect("reads");
        assert_eq!(req.operation, "ScheduleGetEvents");
        assert_eq!(req.login, "takahashi");
        assert_eq!(req.password, "p&ss<");
        assert_eq!(req.expires.as_deref(), Some("2026-11-25T02:00:00Z"));
        let parameters = req.parameters.expect("parameters");
        assert!(parameters.tag_name().namespace().unwrap_or("").is_empty());
        assert_eq!(attr(parameters, "start"), Some("2026-11-01T00:00:00Z"));
    }

    #[test]
    fn faults_round_trip_and_accept_the_attribute_form() {
        let fault = Fault::new(19108, "ログインに失敗しました", "パスワードが違います");
        let text_form = fault.to_envelope();
        let doc = xml::parse(&text_form).expect("parses");
        match read_reply(&doc, "UtilGetLoginUserId") {
            Ok(Reply::Fault(read)) => assert_eq!(read, fault),
            _ => panic!("expected a fault"),
        }
        let attribute_form = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Detail><fault code="17" diagnosis="busy" cause="" counter_measure=""/></s:Detail></s:Fault></s:Body></s:Envelope>"#;
        let doc = xml::parse(attribute_form).expect("parses");
        match read_reply(&doc, "ScheduleGetEvents") {
            Ok(Reply::Fault(read)) => assert_eq!(read.number(), Some(17)),
            _ => panic!("expected a fault"),
        }
    }

    #[test]
    fn a_reply_to_another_operation_is_refused() {
        let text_form = response("ScheduleGetEvents", Some(""));
        let doc = xml::parse(&text_form).expect("parses");
        assert!(read_reply(&doc, "ScheduleAddEvents").is_err());
        assert!(matches!(
            read_reply(&doc, "ScheduleGetEvents"),
            Ok(Reply::Returns(Some(_)))
        ));
    }
}
