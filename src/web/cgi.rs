//! CGI/1.1 as Apache and IIS speak it: a [`Request`] read from the environment and a bounded body, a
//! [`Response`] written as CGI headers (with the security headers every screen needs), and the
//! [`Cookie`] the screens set.
//!
//! The environment comes in as a lookup function and the body as a reader, so that tests drive the
//! parsing with plain maps and byte slices instead of the process environment.

use std::io::{self, Read, Write};

/// The largest request body accepted by default. The screens' forms are a few hundred bytes; a limit
/// keeps a hostile client from making the CGI buffer whatever it sends.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Why a request could not be read. Each maps to a 4xx status through [`RequestError::status`].
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// `length` is `CONTENT_LENGTH` as sent: a run of digits too long for any integer type is
    /// still a size, only a hopelessly large one.
    #[error("the request body of {length} bytes is larger than the limit of {limit} bytes")]
    TooLarge { length: String, limit: usize },

    /// `CONTENT_LENGTH` is missing on a POST or is not a whole number; `value` is what was sent
    /// (empty when missing).
    #[error("CONTENT_LENGTH is missing or not a number: \"{value}\"")]
    BadLength { value: String },

    /// A POST body in another encoding than the screens' forms use (`multipart/form-data`, JSON):
    /// read as a form it would look like one without its fields, and fail as a forged one.
    #[error("the request body is \"{content_type}\"; the forms of dncs send application/x-www-form-urlencoded")]
    UnsupportedType { content_type: String },

    #[error("the request body ended after {received} of {expected} bytes")]
    Truncated { expected: usize, received: usize },

    #[error("the Host header \"{host}\" contains characters a host name cannot have")]
    BadHost { host: String },

    /// Neither `HTTP_HOST` nor `SERVER_NAME` was given, so no absolute URL can be built.
    #[error("the request names no host (no Host header and no SERVER_NAME)")]
    MissingHost,

    #[error("the request body could not be read: {0}")]
    Io(#[from] io::Error),
}

impl RequestError {
    /// The HTTP status that answers this error.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::TooLarge { .. } => 413,
            RequestError::UnsupportedType { .. } => 415,
            RequestError::BadLength { value } if value.is_empty() => 411,
            _ => 400,
        }
    }
}

/// `REQUEST_METHOD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    /// Answered like GET, without the body (see [`Response::write_cgi_head`]).
    Head,
    Post,
    Other(String),
}

impl Method {
    fn parse(text: &str) -> Method {
        match text {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            other => Method::Other(other.to_owned()),
        }
    }
}

/// One CGI request, checked: the host is a plausible host name and the body was read whole.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// `QUERY_STRING`, decoded, in order; repeated names are kept.
    pub query: Vec<(String, String)>,
    /// The fields of an `application/x-www-form-urlencoded` POST body, decoded, in order.
    pub form: Vec<(String, String)>,
    /// `HTTP_COOKIE`, in the order the browser sent them (the most specific path first).
    pub cookies: Vec<(String, String)>,
    /// `HTTP_HOST` (or `SERVER_NAME` without one), checked by [`check_host`].
    pub host: Option<String>,
    /// `SCRIPT_NAME`: the URL path of the CGI, e.g. `/cgi-bin/cbag/dncs/bin/dncs.cgi`.
    pub script_name: String,
    pub remote_addr: Option<String>,
    /// Reached over https (`HTTPS` is `on` or `1`; IIS sets `off` for plain http).
    pub secure: bool,
}

impl Request {
    /// Reads a request from CGI variables (`vars` looks one up) and the body.
    ///
    /// The body is read only when its announced length is within `limit`, and then exactly that
    /// many bytes, since a CGI's standard input need not end where the body does.
    pub fn from_env(
        vars: impl Fn(&str) -> Option<String>,
        body: &mut dyn Read,
        limit: usize,
    ) -> Result<Request, RequestError> {
        let method = Method::parse(vars("REQUEST_METHOD").as_deref().unwrap_or("GET"));
        let host = match vars("HTTP_HOST").filter(|host| !host.is_empty()) {
            Some(host) => Some(check_host(&host)?),
            // HTTP/1.0 clients may send no Host; the server's own name is then the best answer.
            None => vars("SERVER_NAME")
                .filter(|name| !name.is_empty())
                .map(|name| check_host(&name))
                .transpose()?,
        };
        let body_bytes = read_body(&method, vars("CONTENT_LENGTH"), body, limit)?;
        let content_type = vars("CONTENT_TYPE").unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        let is_form = media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded");
        let form = match method {
            Method::Post if is_form => parse_urlencoded(&String::from_utf8_lossy(&body_bytes)),
            // An empty POST carries no fields whatever its type; it fails as a form without a token.
            Method::Post if !body_bytes.is_empty() => {
                return Err(RequestError::UnsupportedType { content_type });
            }
            _ => Vec::new(),
        };
        Ok(Request {
            method,
            query: parse_urlencoded(&vars("QUERY_STRING").unwrap_or_default()),
            form,
            cookies: parse_cookies(&vars("HTTP_COOKIE").unwrap_or_default()),
            host,
            script_name: vars("SCRIPT_NAME").unwrap_or_default(),
            remote_addr: vars("REMOTE_ADDR").filter(|addr| !addr.is_empty()),
            secure: vars("HTTPS")
                .is_some_and(|https| https.eq_ignore_ascii_case("on") || https.trim() == "1"),
        })
    }

    /// The first query parameter called `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// The first form field called `name`.
    pub fn form(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    /// The first cookie called `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        first(&self.cookies, name)
    }

    /// The screen asked for: the `page` query parameter.
    pub fn page(&self) -> Option<&str> {
        self.query("page")
    }

    /// The folder of the CGI's URL, ending in `/`: the path of every cookie dncs sets, so that other
    /// applications on the same server never receive them. Percent-encoded where needed.
    pub fn script_folder(&self) -> String {
        let folder = match self.script_name.rfind('/') {
            Some(slash) => &self.script_name[..=slash],
            None => "/",
        };
        let folder = if folder.starts_with('/') {
            folder.to_owned()
        } else {
            format!("/{folder}")
        };
        encode_path(&folder)
    }

    /// The absolute URL of the CGI (for the OAuth callback), from `scheme` (`http` or `https`), the
    /// host and `SCRIPT_NAME`.
    pub fn script_url(&self, scheme: &str) -> Result<String, RequestError> {
        let host = self.host.as_deref().ok_or(RequestError::MissingHost)?;
        // Checked again because the field is public and may have been set after parsing.
        let host = check_host(host)?;
        let path = if self.script_name.starts_with('/') {
            self.script_name.clone()
        } else {
            format!("/{}", self.script_name)
        };
        Ok(format!("{scheme}://{host}{}", encode_path(&path)))
    }
}

/// `host` when it has only the characters of a host name, an IP address or a port
/// (`[A-Za-z0-9.:-[]]`); anything else could smuggle a path or another host into URLs built from it.
pub fn check_host(host: &str) -> Result<String, RequestError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']');
    if host.is_empty() || host.len() > 255 || !host.chars().all(allowed) {
        return Err(RequestError::BadHost {
            host: host.to_owned(),
        });
    }
    Ok(host.to_owned())
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The body, bounded by `limit`. A POST must announce its length; other methods without one have none.
fn read_body(
    method: &Method,
    content_length: Option<String>,
    body: &mut dyn Read,
    limit: usize,
) -> Result<Vec<u8>, RequestError> {
    let announced = content_length.as_deref().map(str::trim).unwrap_or("");
    if announced.is_empty() {
        return match method {
            Method::Post => Err(RequestError::BadLength {
                value: String::new(),
            }),
            _ => Ok(Vec::new()),
        };
    }
    if !announced.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestError::BadLength {
            value: announced.to_owned(),
        });
    }
    let length = match announced.parse::<u64>() {
        Ok(length) if length <= limit as u64 => length,
        // Too many digits for a u64 is a body too large as well, not a malformed header.
        _ => {
            return Err(RequestError::TooLarge {
                length: announced.to_owned(),
                limit,
            })
        }
    };
    // Within `limit`, so it fits a usize.
    let expected = length as usize;
    let mut bytes = Vec::with_capacity(expected);
    body.take(length).read_to_end(&mut bytes)?;
    if bytes.len() < expected {
        return Err(RequestError::Truncated {
            expected,
            received: bytes.len(),
        });
    }
    Ok(bytes)
}

/// `a=1&b=x+y` pairs, percent-decoded with `+` as a space. A pair without `=` has an empty value;
/// pairs with an empty name carry nothing a screen could ask for and are dropped. Control
/// characters other than tab and line breaks are dropped too: no form sends them, and a NUL or
/// an escape would otherwise reach a page, the database, Cybozu Office or the calendar.
pub fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    let decode = |text: &str| -> String {
        let mut decoded = percent_decode(text);
        decoded.retain(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'));
        decoded
    };
    text.split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name);
            (!name.is_empty()).then(|| (name, decode(value)))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+`; a `%` not followed by two hex digits stays as it is, and bytes that
/// are not UTF-8 become U+FFFD, so that no input can fail.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let escaped = bytes
                    .get(index + 1..index + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    // from_str_radix accepts a leading '+', which is no hex digit.
                    .filter(|_| bytes[index + 1] != b'+');
                match escaped {
                    Some(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            other => decoded.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// `HTTP_COOKIE` (`a=1; b="two"`): names and values trimmed, one pair of surrounding double quotes
/// removed (RFC 6265 allows them). Values are not percent-decoded: dncs sets only values that need no
/// encoding.
pub fn parse_cookies(header: &str) -> Vec<(String, String)> {
    header
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.trim();
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|inner| inner.strip_suffix('"'))
                .unwrap_or(value);
            (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Percent-encodes every byte of a URL path except unreserved characters and `/`, so that the path
/// is safe in a URL and in a cookie's `Path` attribute (a `;` there would end the attribute).
fn encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A cookie as dncs sets it: `HttpOnly` and `SameSite=Lax` always, `Secure` over https, and a path
/// limited to the CGI's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub secure: bool,
    /// Seconds; none makes a session cookie, gone when the browser closes.
    pub max_age: Option<u64>,
}

impl Cookie {
    /// A session cookie for the answer to `request`.
    pub fn new(name: &str, value: &str, request: &Request) -> Cookie {
        Cookie {
            name: name.to_owned(),
            value: value.to_owned(),
            path: request.script_folder(),
            secure: request.secure,
            max_age: None,
        }
    }

    /// A cookie that tells the browser to forget `name`.
    pub fn removal(name: &str, request: &Request) -> Cookie {
        Cookie::new(name, "", request).with_max_age(0)
    }

    pub fn with_max_age(mut self, seconds: u64) -> Cookie {
        self.max_age = Some(seconds);
        self
    }

    /// The `Set-Cookie` header value. Characters a cookie name or value cannot hold are dropped, so
    /// that no value can add attributes of its own.
    pub fn header_value(&self) -> String {
        let name: String = self.name.chars().filter(|&c| is_token_char(c)).collect();
        let value: String = self
            .value
            .chars()
            .filter(|&c| c.is_ascii_graphic() && !matches!(c, '"' | ',' | ';' | '\\'))
            .collect();
        let mut header = format!("{name}={value}; Path={}", self.path);
        if let Some(seconds) = self.max_age {
            header.push_str(&format!("; Max-Age={seconds}"));
            if seconds == 0 {
                // For browsers that know only Expires.
                header.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
            }
        }
        if self.secure {
            header.push_str("; Secure");
        }
        header.push_str("; HttpOnly; SameSite=Lax");
        header
    }
}

/// RFC 9110 token characters: what a header or cookie name may hold.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Headers added to every answer unless the response sets its own.
const DEFAULT_HEADERS: &[(&str, &str)] = &[
    // Screens show personal schedules and tokens: never keep them in a shared cache.
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
];

/// An answer, written to standard output by [`Response::write_cgi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// In the order written; `Content-Length` is always computed from the body instead.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An HTML page in UTF-8.
    pub fn html(status: u16, body: impl Into<String>) -> Response {
        Response::with_type(status, "text/html; charset=utf-8", body.into().into_bytes())
    }

    /// Plain UTF-8 text.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::with_type(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    /// 303 See Other: after a POST the browser follows it with a GET, so a reload never resubmits.
    pub fn redirect(location: &str) -> Response {
        Response::text(303, "").with_header("Location", location)
    }

    fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body,
        }
    }

    /// Adds a header; one already set under that name (any case) is replaced.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a `Set-Cookie` header; several cookies make several headers.
    pub fn with_cookie(mut self, cookie: Cookie) -> Response {
        self.headers
            .push(("Set-Cookie".to_owned(), cookie.header_value()));
        self
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Writes the CGI answer: `Status:`, the headers, the defaults, the length, a blank line and the
    /// body. Lines end in CRLF on every platform. CR, LF and other control characters are removed from
    /// header values, so that no value can start a header or a body of its own (response splitting).
    pub fn write_cgi(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_cgi_answer(out, true)
    }

    /// The answer to a HEAD request: the same head, the GET's length, no body (RFC 3875 §4.3.2:
    /// the script must not send one).
    pub fn write_cgi_head(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_cgi_answer(out, false)
    }

    fn write_cgi_answer(&self, out: &mut dyn Write, with_body: bool) -> io::Result<()> {
        let mut head = format!("Status: {} {}\r\n", self.status, reason_phrase(self.status));
        for (name, value) in &self.headers {
            let name: String = name.chars().filter(|&c| is_token_char(c)).collect();
            if name.is_empty() || name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            head.push_str(&format!("{name}: {}\r\n", header_safe(value)));
        }
        for (name, value) in DEFAULT_HEADERS {
            if self.header(name).is_none() {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        // One write for the whole answer where it ends in a newline (stdout is line-buffered):
        // one system call, and one wake-up of the web server reading it.
        let mut answer = head.into_bytes();
        if with_body {
            answer.extend_from_slice(&self.body);
        }
        out.write_all(&answer)?;
        out.flush()
    }
}

/// `value` without control characters (tab aside).
fn header_safe(value: &str) -> String {
    value
        .chars()
        .filter(|&c| c == '\t' || !c.is_control())
        .collect()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        move |name| map.get(name).map(|value| value.to_string())
    }

    fn get(pairs: &[(&str, &str)]) -> Request {
        Request::from_env(env(pairs), &mut io::empty(), DEFAULT_BODY_LIMIT).expect("request")
    }

    fn post(pairs: &[(&str, &str)], body: &[u8]) -> Result<Request, RequestError> {
        Request::from_env(env(pairs), &mut &body[..], DEFAULT_BODY_LIMIT)
    }

    fn written(response: &Response) -> String {
        let mut out = Vec::new();
        response.write_cgi(&mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn percent_decoding_edge_cases() {
        assert_eq!(percent_decode("%E3%81%82"), "あ");
        assert_eq!(percent_decode("%e3%81%82"), "あ");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%+1"), "% 1");
        assert_eq!(percent_decode("a+b%2Bc"), "a b+c");
        // A lone lead byte of a multi-byte character.
        assert_eq!(percent_decode("%E3x"), "\u{FFFD}x");
        assert_eq!(percent_decode("%FF%FE"), "\u{FFFD}\u{FFFD}");
        assert_eq!(percent_decode("%00"), "\0");
        assert_eq!(percent_decode("あ"), "あ");
    }

    #[test]
    fn urlencoded_values_lose_control_characters_but_keep_line_breaks() {
        let pairs = parse_urlencoded("page=login%00&note=a%0D%0Ab%09c%1B%5B31m%C2%85d");
        assert_eq!(
            pairs,
            vec![
                ("page".to_string(), "login".to_string()),
                ("note".to_string(), "a\r\nb\tc[31md".to_string()),
            ]
        );
    }

    #[test]
    fn urlencoded_pairs_keep_order_and_repeats_and_drop_empty_names() {
        let pairs = parse_urlencoded("a=1&&b&=orphan&a=2&c=x%3Dy=z");
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("a".into(), "2".into()),
                ("c".into(), "x=y=z".into()),
            ]
        );
        assert!(parse_urlencoded("").is_empty());
    }

    #[test]
    fn request_reads_the_cgi_variables() {
        let request = get(&[
            ("REQUEST_METHOD", "GET"),
            (
                "QUERY_STRING",
                "page=user&page=admin&name=%E5%B1%B1%E7%94%B0+%E5%A4%AA%E9%83%8E",
            ),
            ("HTTP_HOST", "cybozu.example.co.jp:8080"),
            ("SCRIPT_NAME", "/cgi-bin/cbag/dncs/bin/dncs.cgi"),
            ("REMOTE_ADDR", "192.0.2.7"),
            ("HTTPS", "off"),
        ]);
        assert_eq!(request.method, Method::Get);
        // The first of repeated names wins, everywhere.
        assert_eq!(request.page(), Some("user"));
        assert_eq!(request.query("name"), Some("山田 太郎"));
        assert_eq!(request.query("missing"), None);
        assert_eq!(request.host.as_deref(), Some("cybozu.example.co.jp:8080"));
        assert_eq!(request.remote_addr.as_deref(), Some("192.0.2.7"));
        assert!(!request.secure, "IIS sets HTTPS=off over http");
        assert!(request.form.is_empty());
    }

    #[test]
    fn https_is_on_or_1() {
        for (value, secure) in [("on", true), ("ON", true), ("1", true), ("off", false)] {
            assert_eq!(get(&[("HTTPS", value)]).secure, secure, "HTTPS={value}");
        }
        assert!(!get(&[]).secure);
    }

    #[test]
    fn other_methods_are_kept() {
        assert_eq!(get(&[("REQUEST_METHOD", "HEAD")]).method, Method::Head);
        assert_eq!(
            get(&[("REQUEST_METHOD", "PUT")]).method,
            Method::Other("PUT".into())
        );
        assert_eq!(get(&[]).method, Method::Get);
    }

    #[test]
    fn form_post_is_read_to_its_length_exactly() {
        let body = b"login=sato&password=a%26b+c&extra";
        let vars = [
            ("REQUEST_METHOD", "POST"),
            (
                "CONTENT_TYPE",
                "application/x-www-form-urlencoded; charset=UTF-8",
            ),
            ("CONTENT_LENGTH", "28"),
        ];
        let mut reader = &body[..];
        let request = Request::from_env(env(&vars), &mut reader, DEFAULT_BODY_LIMIT).expect("ok");
        assert_eq!(request.form("login"), Some("sato"));
        assert_eq!(request.form("password"), Some("a&b c"));
        assert_eq!(request.form("extra"), None, "beyond CONTENT_LENGTH");
        assert_eq!(reader, b"extra", "nothing past the body is consumed");
    }

    #[test]
    fn a_post_of_another_type_is_refused() {
        let vars = [
            ("REQUEST_METHOD", "POST"),
            ("CONTENT_TYPE", "multipart/form-data; boundary=x"),
            ("CONTENT_LENGTH", "3"),
        ];
        let refused = post(&vars, b"a=1").unwrap_err();
        assert_eq!(refused.status(), 415);
        assert!(
            refused.to_string().contains("multipart/form-data"),
            "{refused}"
        );
        let untyped = [("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "3")];
        assert_eq!(post(&untyped, b"a=1").unwrap_err().status(), 415);
        let empty = [("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "0")];
        assert!(post(&empty, b"").expect("an empty POST").form.is_empty());
        let typed = [
            ("REQUEST_METHOD", "POST"),
            (
                "CONTENT_TYPE",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            ),
            ("CONTENT_LENGTH", "3"),
        ];
        assert_eq!(post(&typed, b"a=1").expect("a form").form("a"), Some("1"));
    }

    #[test]
    fn body_limits() {
        let form = ("CONTENT_TYPE", "application/x-www-form-urlencoded");
        let too_large = post(
            &[
                ("REQUEST_METHOD", "POST"),
                form,
                ("CONTENT_LENGTH", "65537"),
            ],
            b"",
        );
        assert!(matches!(
            too_large,
            Err(RequestError::TooLarge {
                ref length,
                limit: DEFAULT_BODY_LIMIT
            }) if length == "65537"
        ));
        let huge = post(
            &[
                ("REQUEST_METHOD", "POST"),
                ("CONTENT_LENGTH", "99999999999999999999"),
            ],
            b"",
        );
        assert!(
            matches!(huge, Err(RequestError::TooLarge { .. })),
            "{huge:?}"
        );
        let exact = vec![b'a'; DEFAULT_BODY_LIMIT];
        let at_limit = post(
            &[
                ("REQUEST_METHOD", "POST"),
                form,
                ("CONTENT_LENGTH", "65536"),
            ],
            &exact,
        );
        assert!(at_limit.is_ok());

        for garbled in ["", "-1", "+5", "12abc", "0x10"] {
            let result = post(
                &[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", garbled)],
                b"",
            );
            assert!(
                matches!(result, Err(RequestError::BadLength { .. })),
                "{garbled:?}: {result:?}"
            );
        }
        let missing = post(&[("REQUEST_METHOD", "POST")], b"").unwrap_err();
        assert_eq!(missing.status(), 411);

        let truncated = post(
            &[("REQUEST_METHOD", "POST"), form, ("CONTENT_LENGTH", "10")],
            b"a=1",
        );
        assert!(matches!(
            truncated,
            Err(RequestError::Truncated {
                expected: 10,
                received: 3
            })
        ));
        // A GET without a length has no body; IIS sends CONTENT_LENGTH=0.
        assert!(post(&[("CONTENT_LENGTH", "0")], b"").is_ok());
    }

    #[test]
    fn the_limit_is_checked_before_reading() {
        struct Unreadable;
        impl Read for Unreadable {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("the body must not be read");
            }
        }
        let vars = [("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "100")];
        let result = Request::from_env(env(&vars), &mut Unreadable, 10);
        assert_eq!(result.unwrap_err().status(), 413);
    }

    #[test]
    fn cookies_with_spaces_and_quotes() {
        let request = get(&[(
            "HTTP_COOKIE",
            "  dncs_session = abc123 ;theme=\"dark\"; empty=; =noname; flag; dncs_session=second",
        )]);
        assert_eq!(request.cookie("dncs_session"), Some("abc123"));
        assert_eq!(request.cookie("theme"), Some("dark"));
        assert_eq!(request.cookie("empty"), Some(""));
        assert_eq!(request.cookie("flag"), None);
        assert_eq!(request.cookies.len(), 4);
        assert!(get(&[("HTTP_COOKIE", "")]).cookies.is_empty());
    }

    #[test]
    fn a_bad_host_is_refused() {
        for host in [
            "evil.example/path",
            "a b",
            "host\r\nX: y",
            "user@host",
            "h?q",
        ] {
            let result = Request::from_env(
                env(&[("HTTP_HOST", host)]),
                &mut io::empty(),
                DEFAULT_BODY_LIMIT,
            );
            assert!(
                matches!(result, Err(RequestError::BadHost { .. })),
                "{host:?}"
            );
        }
        for host in [
            "localhost",
            "[::1]:8443",
            "cybozu-01.example.jp",
            "192.0.2.1:80",
        ] {
            assert_eq!(get(&[("HTTP_HOST", host)]).host.as_deref(), Some(host));
        }
    }

    #[test]
    fn script_url() {
        let request = get(&[
            ("HTTP_HOST", "cybozu.example.jp"),
            ("SCRIPT_NAME", "/cgi-bin/cbag/dncs/bin/dncs.cgi"),
        ]);
        assert_eq!(
            request.script_url("https").expect("url"),
            "https://cybozu.example.jp/cgi-bin/cbag/dncs/bin/dncs.cgi"
        );
        let iis = get(&[
            ("SERVER_NAME", "intranet"),
            ("SCRIPT_NAME", "/scripts/cbag/dncs/bin/dncs.exe"),
        ]);
        assert_eq!(
            iis.script_url("http").expect("url"),
            "http://intranet/scripts/cbag/dncs/bin/dncs.exe"
        );
        let spaced = get(&[("HTTP_HOST", "h"), ("SCRIPT_NAME", "/サ bin/dncs.cgi")]);
        assert_eq!(
            spaced.script_url("http").expect("url"),
            "http://h/%E3%82%B5%20bin/dncs.cgi"
        );
        assert!(matches!(
            get(&[]).script_url("https"),
            Err(RequestError::MissingHost)
        ));
        let mut tampered = request.clone();
        tampered.host = Some("evil/".into());
        assert!(matches!(
            tampered.script_url("https"),
            Err(RequestError::BadHost { .. })
        ));
    }

    #[test]
    fn cookie_attributes_over_http_and_https() {
        let script = ("SCRIPT_NAME", "/cgi-bin/cbag/dncs/bin/dncs.cgi");
        let http = get(&[script]);
        assert_eq!(
            Cookie::new("dncs_session", "abc", &http).header_value(),
            "dncs_session=abc; Path=/cgi-bin/cbag/dncs/bin/; HttpOnly; SameSite=Lax"
        );
        let https = get(&[script, ("HTTPS", "on")]);
        assert_eq!(
            Cookie::new("dncs_session", "abc", &https)
                .with_max_age(3600)
                .header_value(),
            "dncs_session=abc; Path=/cgi-bin/cbag/dncs/bin/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            Cookie::removal("dncs_session", &https).header_value(),
            "dncs_session=; Path=/cgi-bin/cbag/dncs/bin/; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=Lax"
        );
        assert_eq!(get(&[]).script_folder(), "/");
        assert_eq!(get(&[("SCRIPT_NAME", "dncs.cgi")]).script_folder(), "/");
    }

    #[test]
    fn a_cookie_value_cannot_add_attributes() {
        let request = get(&[("SCRIPT_NAME", "/a;b/dncs.cgi")]);
        let header = Cookie::new("na me;", "v; Domain=evil\r\n", &request).header_value();
        assert_eq!(
            header,
            "name=vDomain=evil; Path=/a%3Bb/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn write_cgi_writes_status_headers_defaults_and_length() {
        let response = Response::html(200, "<p>はい</p>").with_header("X-Test", "1");
        assert_eq!(
            written(&response),
            "Status: 200 OK\r\n\
             Content-Type: text/html; charset=utf-8\r\n\
             X-Test: 1\r\n\
             Cache-Control: no-store\r\n\
             X-Content-Type-Options: nosniff\r\n\
             X-Frame-Options: DENY\r\n\
             Referrer-Policy: same-origin\r\n\
             Content-Length: 13\r\n\
             \r\n\
             <p>はい</p>"
        );
    }

    #[test]
    fn a_head_answer_has_the_length_of_the_body_it_leaves_out() {
        let response = Response::html(200, "<p>はい</p>");
        let mut out = Vec::new();
        response.write_cgi_head(&mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.ends_with("Content-Length: 13\r\n\r\n"), "{text}");
    }

    #[test]
    fn header_values_lose_cr_and_lf() {
        let response = Response::redirect("/x\r\nSet-Cookie: evil=1\r\n\r\n<script>")
            .with_header("Bad\r\nName", "a\nb\rc\0d\te")
            .with_header("Content-Length", "999");
        let text = written(&response);
        assert!(text.starts_with("Status: 303 See Other\r\n"));
        assert!(text.contains("Location: /xSet-Cookie: evil=1<script>\r\n"));
        assert!(text.contains("BadName: abcd\te\r\n"));
        assert!(text.contains("Content-Length: 0\r\n"));
        assert!(!text.contains("999"));
        assert_eq!(text.matches("\r\n\r\n").count(), 1);
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn own_headers_replace_the_defaults() {
        let response = Response::text(200, "x").with_header("cache-control", "max-age=60");
        let text = written(&response);
        assert!(text.contains("cache-control: max-age=60\r\n"));
        assert!(!text.contains("no-store"));
    }

    #[test]
    fn cookies_become_set_cookie_headers() {
        let request = get(&[("SCRIPT_NAME", "/dncs.cgi")]);
        let response = Response::redirect("/dncs.cgi").with_cookie(Cookie::new("a", "b", &request));
        assert_eq!(
            response.header("set-cookie"),
            Some("a=b; Path=/; HttpOnly; SameSite=Lax")
        );
        assert_eq!(response.status, 303);
    }
}
