//! The typed values of `dncs.ini`: the choice enums, the proxy, and the checks that turn one written
//! value into one of them (each check returns the reason shown to the administrator when it fails).

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveTime;
use chrono_tz::Tz;
use log::LevelFilter;

/// Shown in place of every secret on the admin screen and in error messages.
pub const MASK: &str = "********";

/// Defines a key whose value is one word from a fixed list, matched without regard to case.
macro_rules! choice {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl $name {
            /// Every value, in the order the ini documents them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word written in `dncs.ini`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value for `text` (any case), or the reason shown when it is none of them.
            pub(crate) fn parse(text: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|choice| choice.as_str().eq_ignore_ascii_case(text))
                    .ok_or_else(|| {
                        let words: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
                        format!("must be one of: {}", words.join(", "))
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice! {
    /// `CALLBACK_SCHEME`: the scheme of the absolute URL the OAuth flow returns to.
    CallbackScheme { Http = "http", Https = "https" }
}

choice! {
    /// `GOOGLE_AUTH_MODE`: how Google's redirect reaches the CGI.
    AuthMode {
        /// Through a public https relay page that forwards to the CGI.
        Relay = "relay",
        /// Straight to the CGI's own https URL, registered at Google.
        Direct = "direct",
    }
}

choice! {
    /// `CONFLICT`: who wins when both sides changed the same event since the last sync.
    Conflict {
        Cybozu = "cybozu",
        /// Google Calendar or CalDAV.
        Remote = "remote",
        /// The side changed last.
        Newer = "newer",
    }
}

choice! {
    /// `LANG`: the language of the screens, and of the sentences a sync pass writes to 同期履歴.
    Lang { Ja = "ja", En = "en" }
}

impl Lang {
    /// `japanese` or `english`, whichever this language is: for the few sentences made outside
    /// the screens' catalog, such as those of 同期履歴, which hold what happened in them.
    pub fn pick<T>(self, japanese: T, english: T) -> T {
        match self {
            Lang::Ja => japanese,
            Lang::En => english,
        }
    }
}

choice! {
    /// The scheme of a `PROXY` URL.
    ProxyScheme { Http = "http", Https = "https", Socks5 = "socks5" }
}

impl ProxyScheme {
    /// The port a proxy listens on when the URL names none, as curl and ureq assume.
    pub fn default_port(self) -> u16 {
        match self {
            ProxyScheme::Http => 80,
            ProxyScheme::Https => 443,
            ProxyScheme::Socks5 => 1080,
        }
    }
}

/// `PROXY`: the one proxy for every outbound call. Environment proxies are never used, since a CGI
/// receives `HTTP_PROXY` from any client that sends a `Proxy:` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub scheme: ProxyScheme,
    /// Without brackets, also for IPv6.
    pub host: String,
    pub port: u16,
    /// As written, percent-encoding included (the HTTP client decodes it).
    pub username: Option<String>,
    /// As written, percent-encoding included.
    pub password: Option<String>,
}

impl Proxy {
    /// The full URL with credentials and port, for the HTTP client.
    pub fn url(&self) -> String {
        let mut url = format!("{}://", self.scheme);
        if let Some(username) = &self.username {
            url.push_str(username);
            if let Some(password) = &self.password {
                url.push(':');
                url.push_str(password);
            }
            url.push('@');
        }
        if self.host.contains(':') {
            url.push_str(&format!("[{}]:{}", self.host, self.port));
        } else {
            url.push_str(&format!("{}:{}", self.host, self.port));
        }
        url
    }

    /// The URL with the password replaced by [`MASK`], for screens and logs.
    pub fn masked_url(&self) -> String {
        mask_url_password(&self.url())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked_url())
    }
}

/// Replaces the password in `scheme://user:password@host…` with [`MASK`]; any other text is returned
/// unchanged. Works on text that failed to parse too, so that an error message never shows a password.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:{MASK}@{host}{tail}"),
        None => url.to_owned(),
    }
}

/// For a value that failed to parse, where [`mask_url_password`] cannot tell the parts apart
/// (`admin:pw@proxy:8080` without a scheme, a password holding `/`): whatever lies between the
/// first `:` after any `scheme://` and the last `@` is taken for a password and masked.
pub fn mask_password_loosely(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (&text[..scheme.len() + 3], rest),
        None => ("", text),
    };
    let Some(at) = rest.rfind('@') else {
        return text.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}{user}:{MASK}{}", &rest[at..]),
        None => text.to_owned(),
    }
}

pub(crate) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err("must be true or false (also yes/no, on/off, 1/0)".to_owned()),
    }
}

/// A checker for a whole number in `min..=max`.
pub(crate) fn whole_number(min: u32, max: u32) -> impl Fn(&str) -> Result<u32, String> {
    move |text| {
        text.parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                if max == u32::MAX {
                    format!("not a whole number from {min} up")
                } else {
                    format!("not a whole number between {min} and {max}")
                }
            })
    }
}

pub(crate) fn parse_log_level(text: &str) -> Result<LevelFilter, String> {
    text.parse::<LevelFilter>()
        .map_err(|_| "must be one of: off, error, warn, info, debug, trace".to_owned())
}

/// `HH:MM`, 24-hour.
pub(crate) fn parse_time_of_day(text: &str) -> Result<NaiveTime, String> {
    let well_formed = text.len() == 5 && text.as_bytes()[2] == b':';
    well_formed
        .then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| "not a time of day as HH:MM (00:00 to 23:59)".to_owned())
}

/// An IANA zone name; case is forgiven (`asia/tokyo`), since the ini is typed by hand.
pub(crate) fn parse_timezone(text: &str) -> Result<Tz, String> {
    text.parse::<Tz>()
        .ok()
        .or_else(|| {
            chrono_tz::TZ_VARIANTS
                .iter()
                .copied()
                .find(|zone| zone.name().eq_ignore_ascii_case(text))
        })
        .ok_or_else(|| "not a time zone name such as Asia/Tokyo".to_owned())
}

/// An absolute `http://` or `https://` URL with a host, kept as written.
pub(crate) fn parse_http_url(text: &str) -> Result<String, String> {
    let reason = || "not an http:// or https:// URL with a host".to_owned();
    let (scheme, rest) = text.split_once("://").ok_or_else(reason)?;
    if !["http", "https"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(reason());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL must not contain spaces".to_owned());
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    split_authority(&rest[..authority_end]).map_err(|_| reason())?;
    Ok(text.to_owned())
}

/// `GOOGLE_API_BASE` and the like: a URL that paths are appended to, so a trailing `/` is dropped.
pub(crate) fn parse_base_url(text: &str) -> Result<String, String> {
    parse_http_url(text).map(|url| url.trim_end_matches('/').to_owned())
}

pub(crate) fn parse_proxy(text: &str) -> Result<Proxy, String> {
    let reason = || "not a proxy URL such as http://user:pass@host:port (http, https or socks5)";
    let (scheme, rest) = text.split_once("://").ok_or_else(|| reason().to_owned())?;
    let scheme = ProxyScheme::parse(scheme).map_err(|_| reason().to_owned())?;
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a proxy URL must not contain spaces".to_owned());
    }
    // A trailing slash is harmless; a path is a mistake (the proxy would not see it).
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err("a proxy URL has no path: write scheme://host:port only".to_owned());
    }
    let parts = split_authority(authority).map_err(|why| format!("{}: {why}", reason()))?;
    let (username, password) = match parts.userinfo {
        None => (None, None),
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, password)) => (Some(user.to_owned()), Some(password.to_owned())),
            None => (Some(userinfo.to_owned()), None),
        },
    };
    Ok(Proxy {
        scheme,
        host: parts.host.to_owned(),
        port: parts.port.unwrap_or(scheme.default_port()),
        username,
        password,
    })
}

struct Authority<'a> {
    userinfo: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
}

/// Splits `user:pass@host:port` (the user part and the port being optional). The user part ends
/// at the last `@`, so an unencoded `@` in a password still works.
fn split_authority(authority: &str) -> Result<Authority<'_>, &'static str> {
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let (host, port_text) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("unclosed [ in the host")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or("junk after the host")?),
            ),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let bracketed = host_port.starts_with('[');
    let host_ok = !host.is_empty()
        && host.chars().all(|c| {
            c.is_alphanumeric()
                || matches!(c, '-' | '.' | '_')
                || (bracketed && matches!(c, ':' | '%'))
        });
    if !host_ok {
        return Err("no valid host");
    }
    let port = match port_text {
        None => None,
        Some(text) => Some(
            text.parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or("the port is not a number from 1 to 65535")?,
        ),
    };
    Ok(Authority {
        userinfo,
        host,
        port,
    })
}

/// Resolves a path from the ini against the ini's folder. Windows absolute forms (`C:\…`, `C:/…`,
/// `\\server\share`) are kept as written on every platform, so a file copied from a Windows server
/// reads the same and tests of it run anywhere.
pub(crate) fn resolve_path(ini_dir: &Path, text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let windows_drive = bytes.len() >= 3
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && matches!(bytes[2], b'\\' | b'/');
    let windows_unc = text.starts_with("\\\\");
    if windows_drive || windows_unc || Path::new(text).is_absolute() {
        PathBuf::from(text)
    } else {
        ini_dir.join(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_ignore_case_and_list_the_words_when_wrong() {
        assert_eq!(Conflict::parse("Newer"), Ok(Conflict::Newer));
        assert_eq!(
            Conflict::parse("phone"),
            Err("must be one of: cybozu, remote, newer".to_owned())
        );
    }

    #[test]
    fn booleans_accept_the_usual_words() {
        for yes in ["true", "YES", "On", "1"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["false", "No", "OFF", "0"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        assert!(parse_bool("2").is_err());
    }

    #[test]
    fn whole_numbers_are_range_checked() {
        let check = whole_number(1, 64);
        assert_eq!(check("64"), Ok(64));
        assert!(check("0").is_err());
        assert!(check("65").is_err());
        assert!(check("-1").is_err());
        assert!(check("4.5").is_err());
        assert!(check("99999999999999").is_err());
    }

    #[test]
    fn times_of_day_are_hh_mm() {
        assert_eq!(
            parse_time_of_day("03:30"),
            Ok(NaiveTime::from_hms_opt(3, 30, 0).expect("valid"))
        );
        for bad in [
            "3:30",
            "24:00",
            "03:60",
            "03:30:00",
            "noon",
            "ab:cd",
            "０３:３0",
        ] {
            assert!(parse_time_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_forgive_case() {
        assert_eq!(parse_timezone("Asia/Tokyo"), Ok(Tz::Asia__Tokyo));
        assert_eq!(parse_timezone("asia/tokyo"), Ok(Tz::Asia__Tokyo));
        assert_eq!(parse_timezone("UTC"), Ok(Tz::UTC));
        assert!(parse_timezone("Tokyo").is_err());
    }

    #[test]
    fn urls_need_http_and_a_host() {
        assert!(parse_http_url("http://localhost/cgi-bin/cbag/ag.cgi").is_ok());
        assert!(parse_http_url("HTTPS://example.com:8443/x?y=1").is_ok());
        assert!(parse_http_url("http://[::1]:8080/").is_ok());
        for bad in [
            "localhost/ag.cgi",
            "ftp://host/",
            "http://",
            "http:///x",
            "http://a b/",
            "http://h:99999/",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_base_url("http://sim/calendar/v3/"),
            Ok("http://sim/calendar/v3".to_owned())
        );
    }

    #[test]
    fn proxies_parse_with_credentials_and_default_ports() {
        let proxy = parse_proxy("http://user:p@ss:w@proxy.local:8080").expect("valid");
        assert_eq!(proxy.scheme, ProxyScheme::Http);
        assert_eq!(proxy.host, "proxy.local");
        assert_eq!(proxy.port, 8080);
        assert_eq!(proxy.username.as_deref(), Some("user"));
        assert_eq!(proxy.password.as_deref(), Some("p@ss:w"));
        assert_eq!(proxy.url(), "http://user:p@ss:w@proxy.local:8080");
        assert_eq!(proxy.masked_url(), "http://user:********@proxy.local:8080");
        assert_eq!(
            format!("{proxy:?}"),
            "http://user:********@proxy.local:8080"
        );

        assert_eq!(
            parse_proxy("socks5://10.0.0.1").expect("valid").url(),
            "socks5://10.0.0.1:1080"
        );
        assert_eq!(
            parse_proxy("HTTPS://[::1]:3128/").expect("valid").url(),
            "https://[::1]:3128"
        );
        for bad in [
            "proxy:8080",
            "ftp://proxy:21",
            "http://proxy:port",
            "http://:8080",
            "http://proxy:8080/path",
        ] {
            assert!(parse_proxy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loose_masking_hides_passwords_of_values_that_do_not_parse() {
        for (text, masked) in [
            ("admin:S3cretPass@proxy:8080", "admin:********@proxy:8080"),
            (
                "http://admin:S3cret/x@proxy:8080",
                "http://admin:********@proxy:8080",
            ),
            (
                "http://u:secret@proxy:bad/x",
                "http://u:********@proxy:bad/x",
            ),
            ("proxy:8080", "proxy:8080"),
            ("http://user@proxy", "http://user@proxy"),
        ] {
            assert_eq!(mask_password_loosely(text), masked, "{text}");
        }
    }

    #[test]
    fn masking_leaves_urls_without_a_password_alone() {
        assert_eq!(mask_url_password("http://proxy:8080"), "http://proxy:8080");
        assert_eq!(
            mask_url_password("http://user@proxy:8080"),
            "http://user@proxy:8080"
        );
        assert_eq!(mask_url_password("not a url"), "not a url");
        assert_eq!(
            mask_url_password("http://u:secret@proxy:bad/x"),
            "http://u:********@proxy:bad/x"
        );
    }

    #[test]
    fn windows_absolute_paths_are_kept_on_every_platform() {
        let dir = Path::new("/srv/dncs/bin");
        assert_eq!(
            resolve_path(dir, "C:\\dncs\\data"),
            PathBuf::from("C:\\dncs\\data")
        );
        assert_eq!(
            resolve_path(dir, "d:/dncs/data"),
            PathBuf::from("d:/dncs/data")
        );
        assert_eq!(
            resolve_path(dir, "\\\\nas\\dncs"),
            PathBuf::from("\\\\nas\\dncs")
        );
        assert_eq!(resolve_path(dir, "/var/dncs"), PathBuf::from("/var/dncs"));
        assert_eq!(
            resolve_path(dir, "../data"),
            PathBuf::from("/srv/dncs/bin/../data")
        );
    }
}
