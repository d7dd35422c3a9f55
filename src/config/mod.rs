//! `dncs.ini`: finding it, reading it as administrators really write it (UTF-8 or Shift_JIS, CRLF,
//! comments, sections) and checking every key into a typed [`Config`] that the rest of dncs trusts.
//!
//! Reading is two-stage: [`raw`] turns bytes into `KEY=VALUE` entries that remember their line, then
//! [`Config::from_bytes`] checks each known key, so that every error names the file, the line and the key.

mod raw;
pub(crate) use raw::decode as decode_text;
mod value;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use log::LevelFilter;

use raw::{LineWarning, RawEntry};
pub use value::{
    mask_password_loosely, mask_url_password, AuthMode, CallbackScheme, Conflict, Lang, Proxy,
    ProxyScheme, MASK,
};
use value::{
    parse_base_url, parse_bool, parse_http_url, parse_log_level, parse_proxy, parse_time_of_day,
    parse_timezone, resolve_path, whole_number,
};

/// The environment variable that points every binary at another `dncs.ini`.
pub const INI_VAR: &str = "DNCS_INI";

/// The file looked for next to the running program.
pub const INI_FILE_NAME: &str = "dncs.ini";

/// Every key dncs reads, in the order of the default `ini/dncs.ini` and of the admin screen.
/// The names are a contract with existing installations.
pub const KEYS: &[&str] = &[
    "CYBOZU_URL",
    "CYBOZU_PARALLEL",
    "CALLBACK_SCHEME",
    "GOOGLE_AUTH_MODE",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "GOOGLE_REDIRECT_URI",
    "LEGACY_GOOGLE_CLIENT_ID",
    "LEGACY_GOOGLE_CLIENT_SECRET",
    "GOOGLE_AUTH_URL",
    "GOOGLE_TOKEN_URL",
    "GOOGLE_API_BASE",
    "SYNC_PAST_DAYS",
    "SYNC_FUTURE_DAYS",
    "SYNC_INTERVAL",
    "SYNC_THREADS",
    "CONFLICT",
    "INBOUND_PUBLIC",
    "TIMEZONE",
    "DATA_DIR",
    "PROXY",
    "HTTP_CONNECT_TIMEOUT",
    "HTTP_TIMEOUT",
    "LOG_LEVEL",
    "LOG_MONTHS",
    "BACKUP_DAYS",
    "BACKUP_TIME",
    "LANG",
    "MAX_USERS",
];

/// Why `dncs.ini` could not be used. The message is shown as is to administrators (on the CGI's error
/// page and on stderr), so it always names the file and, where there is one, the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: file not found (put dncs.ini next to the program or set {INI_VAR})", path.display())]
    NotFound { path: PathBuf },

    #[error("{}: cannot be read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: neither UTF-8 nor Shift_JIS text; save it as UTF-8", path.display())]
    Encoding { path: PathBuf },

    #[error("{} line {line}: expected KEY=VALUE; the line begins with \"{text}\"", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        /// The line's first word only: the rest may be a password.
        text: String,
    },

    #[error("{} line {line}: {key} = \"{value}\": {reason}", path.display())]
    BadValue {
        path: PathBuf,
        line: usize,
        key: String,
        /// As written, except that a password in a URL is masked.
        value: String,
        reason: String,
    },

    #[error("{key} is not set in {}", path.display())]
    Missing { path: PathBuf, key: String },
}

/// The checked contents of `dncs.ini`: every field holds a valid value (the default where the key is
/// absent or empty). Fields are public so that tests can adjust a loaded `Config`.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// The file read, for messages; relative paths in it were resolved against its folder.
    pub ini_path: PathBuf,
    /// `CYBOZU_URL`: the Cybozu CGI. Optional here so that the admin screens can open and say it is
    /// missing; code that talks to Cybozu calls [`Config::cybozu_url`].
    pub cybozu_url: Option<String>,
    /// `CYBOZU_PARALLEL` [2]: SOAP calls in flight at once across all threads.
    pub cybozu_parallel: usize,
    /// `CALLBACK_SCHEME` [https].
    pub callback_scheme: CallbackScheme,
    /// `GOOGLE_AUTH_MODE` [relay].
    pub google_auth_mode: AuthMode,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<String>,
    /// `GOOGLE_REDIRECT_URI`: the relay page or the CGI itself, as registered at Google.
    pub google_redirect_uri: Option<String>,
    /// The client that issued imported legacy (OOB) tokens, needed to refresh them.
    pub legacy_google_client_id: Option<String>,
    pub legacy_google_client_secret: Option<String>,
    pub google_auth_url: String,
    pub google_token_url: String,
    /// Without a trailing `/`.
    pub google_api_base: String,
    /// `SYNC_PAST_DAYS` [30]: days before today in the sync window.
    pub sync_past_days: u32,
    /// `SYNC_FUTURE_DAYS` [180]: days after today in the sync window.
    pub sync_future_days: u32,
    /// `SYNC_INTERVAL` [5]: minutes between full passes.
    pub sync_interval_minutes: u32,
    /// `SYNC_THREADS` [4]: users synced in parallel.
    pub sync_threads: usize,
    /// `CONFLICT` [cybozu].
    pub conflict: Conflict,
    /// `INBOUND_PUBLIC` [false]: events made on the phone arrive public in Cybozu.
    pub inbound_public: bool,
    /// `TIMEZONE` [Asia/Tokyo].
    pub timezone: Tz,
    /// `DATA_DIR` [../data], resolved against the ini's folder.
    pub data_dir: PathBuf,
    /// `PROXY`: none means direct connections (environment proxies are never used).
    pub proxy: Option<Proxy>,
    /// `HTTP_CONNECT_TIMEOUT` [10 s] for outbound calls (a dncs addition).
    pub http_connect_timeout: Duration,
    /// `HTTP_TIMEOUT` [60 s] for a whole outbound call (a dncs addition).
    pub http_timeout: Duration,
    /// `LOG_LEVEL` [info].
    pub log_level: LevelFilter,
    /// `LOG_MONTHS` [6]: months of logs kept.
    pub log_months: u32,
    /// `BACKUP_DAYS` [30]: days of daily backups kept; 0 turns backups off.
    pub backup_days: u32,
    /// `BACKUP_TIME` [00:00]: time of day of the daily backup.
    pub backup_time: NaiveTime,
    /// `LANG` [ja].
    pub lang: Lang,
    /// `MAX_USERS` [0]: licensed seats; 0 means unlimited.
    pub max_users: u32,
    /// Unknown and repeated keys, each naming the file and line; also logged when read.
    pub warnings: Vec<String>,
}

impl Config {
    /// Where `dncs.ini` is: `DNCS_INI` when set, else next to the running program.
    pub fn locate() -> PathBuf {
        match std::env::var_os(INI_VAR) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            // Without a known program folder (rare), the working folder is the best remaining guess.
            _ => std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join(INI_FILE_NAME)))
                .unwrap_or_else(|| PathBuf::from(INI_FILE_NAME)),
        }
    }

    /// [`Config::locate`] then [`Config::load`]: what every binary does at start.
    pub fn locate_and_load() -> Result<Config, ConfigError> {
        Config::load(&Config::locate())
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // Made absolute first, so that DATA_DIR stays right if the working folder changes later.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ConfigError::NotFound { path: path.clone() },
            _ => ConfigError::Io {
                path: path.clone(),
                source,
            },
        })?;
        Config::from_bytes(&bytes, &path)
    }

    /// Checks the contents of an ini file; `path` names it in messages and anchors its relative paths.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Config, ConfigError> {
        let text = raw::decode(bytes, path)?;
        let entries = raw::parse_lines(&text, path)?;
        let (by_key, mut warnings) = raw::index_by_key(entries, path);
        warnings.extend(unknown_key_warnings(&by_key, path));
        warnings.sort();
        // Logged before the values are checked, so that a typo's warning is seen even when another
        // line's error stops the program.
        for (_, warning) in &warnings {
            log::warn!("{warning}");
        }
        let reader = Reader { path, by_key };
        let ini_dir = path.parent().unwrap_or(Path::new(""));
        Ok(Config {
            ini_path: path.to_path_buf(),
            cybozu_url: reader.optional("CYBOZU_URL", parse_http_url)?,
            cybozu_parallel: reader.number_or("CYBOZU_PARALLEL", 2, 1, 32)? as usize,
            callback_scheme: reader.value_or(
                "CALLBACK_SCHEME",
                CallbackScheme::Https,
                CallbackScheme::parse,
            )?,
            google_auth_mode: reader.value_or(
                "GOOGLE_AUTH_MODE",
                AuthMode::Relay,
                AuthMode::parse,
            )?,
            google_client_id: reader.text("GOOGLE_CLIENT_ID"),
            google_client_secret: reader.text("GOOGLE_CLIENT_SECRET"),
            google_redirect_uri: reader.optional("GOOGLE_REDIRECT_URI", parse_http_url)?,
            legacy_google_client_id: reader.text("LEGACY_GOOGLE_CLIENT_ID"),
            legacy_google_client_secret: reader.text("LEGACY_GOOGLE_CLIENT_SECRET"),
            google_auth_url: reader.value_or(
                "GOOGLE_AUTH_URL",
                "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
                parse_http_url,
            )?,
            google_token_url: reader.value_or(
                "GOOGLE_TOKEN_URL",
                "https://oauth2.googleapis.com/token".to_owned(),
                parse_http_url,
            )?,
            google_api_base: reader.value_or(
                "GOOGLE_API_BASE",
                "https://www.googleapis.com/calendar/v3".to_owned(),
                parse_base_url,
            )?,
            sync_past_days: reader.number_or("SYNC_PAST_DAYS", 30, 0, 3650)?,
            sync_future_days: reader.number_or("SYNC_FUTURE_DAYS", 180, 1, 3650)?,
            sync_interval_minutes: reader.number_or("SYNC_INTERVAL", 5, 1, 1440)?,
            sync_threads: reader.number_or("SYNC_THREADS", 4, 1, 64)? as usize,
            conflict: reader.value_or("CONFLICT", Conflict::Cybozu, Conflict::parse)?,
            inbound_public: reader.value_or("INBOUND_PUBLIC", false, parse_bool)?,
            timezone: reader.value_or("TIMEZONE", Tz::Asia__Tokyo, parse_timezone)?,
            data_dir: resolve_path(
                ini_dir,
                reader
                    .entry("DATA_DIR")
                    .map_or("../data", |e| e.value.as_str()),
            ),
            proxy: reader.optional("PROXY", parse_proxy)?,
            http_connect_timeout: seconds(reader.number_or("HTTP_CONNECT_TIMEOUT", 10, 1, 300)?),
            http_timeout: seconds(reader.number_or("HTTP_TIMEOUT", 60, 1, 3600)?),
            log_level: reader.value_or("LOG_LEVEL", LevelFilter::Info, parse_log_level)?,
            log_months: reader.number_or("LOG_MONTHS", 6, 1, 120)?,
            backup_days: reader.number_or("BACKUP_DAYS", 30, 0, 3650)?,
            backup_time: reader.value_or("BACKUP_TIME", NaiveTime::MIN, parse_time_of_day)?,
            lang: reader.value_or("LANG", Lang::Ja, Lang::parse)?,
            max_users: reader.number_or("MAX_USERS", 0, 0, u32::MAX)?,
            warnings: warnings.into_iter().map(|(_, warning)| warning).collect(),
        })
    }

    /// `CYBOZU_URL`, for code that cannot work without it.
    pub fn cybozu_url(&self) -> Result<&str, ConfigError> {
        self.cybozu_url
            .as_deref()
            .ok_or_else(|| ConfigError::Missing {
                path: self.ini_path.clone(),
                key: "CYBOZU_URL".to_owned(),
            })
    }

    /// Every key in [`KEYS`] order with its effective value, secrets masked, for the admin screen.
    /// An unset optional key shows as an empty string.
    pub fn effective_entries(&self) -> Vec<(&'static str, String)> {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let secret =
            |value: &Option<String>| value.as_ref().map(|_| MASK.to_owned()).unwrap_or_default();
        vec![
            ("CYBOZU_URL", text(&self.cybozu_url)),
            ("CYBOZU_PARALLEL", self.cybozu_parallel.to_string()),
            ("CALLBACK_SCHEME", self.callback_scheme.to_string()),
            ("GOOGLE_AUTH_MODE", self.google_auth_mode.to_string()),
            ("GOOGLE_CLIENT_ID", text(&self.google_client_id)),
            ("GOOGLE_CLIENT_SECRET", secret(&self.google_client_secret)),
            ("GOOGLE_REDIRECT_URI", text(&self.google_redirect_uri)),
            (
                "LEGACY_GOOGLE_CLIENT_ID",
                text(&self.legacy_google_client_id),
            ),
            (
                "LEGACY_GOOGLE_CLIENT_SECRET",
                secret(&self.legacy_google_client_secret),
            ),
            ("GOOGLE_AUTH_URL", self.google_auth_url.clone()),
            ("GOOGLE_TOKEN_URL", self.google_token_url.clone()),
            ("GOOGLE_API_BASE", self.google_api_base.clone()),
            ("SYNC_PAST_DAYS", self.sync_past_days.to_string()),
            ("SYNC_FUTURE_DAYS", self.sync_future_days.to_string()),
            ("SYNC_INTERVAL", self.sync_interval_minutes.to_string()),
            ("SYNC_THREADS", self.sync_threads.to_string()),
            ("CONFLICT", self.conflict.to_string()),
            ("INBOUND_PUBLIC", self.inbound_public.to_string()),
            ("TIMEZONE", self.timezone.name().to_owned()),
            ("DATA_DIR", self.data_dir.display().to_string()),
            (
                "PROXY",
                self.proxy
                    .as_ref()
                    .map(Proxy::masked_url)
                    .unwrap_or_default(),
            ),
            (
                "HTTP_CONNECT_TIMEOUT",
                self.http_connect_timeout.as_secs().to_string(),
            ),
            ("HTTP_TIMEOUT", self.http_timeout.as_secs().to_string()),
            ("LOG_LEVEL", self.log_level.as_str().to_ascii_lowercase()),
            ("LOG_MONTHS", self.log_months.to_string()),
            ("BACKUP_DAYS", self.backup_days.to_string()),
            ("BACKUP_TIME", self.backup_time.format("%H:%M").to_string()),
            ("LANG", self.lang.to_string()),
            ("MAX_USERS", self.max_users.to_string()),
        ]
    }
}

/// Masked like the admin screen, so that a `{:?}` in a log never leaks a secret.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Config");
        out.field("ini_path", &self.ini_path);
        for (key, value) in self.effective_entries() {
            out.field(key, &value);
        }
        out.field("warnings", &self.warnings).finish()
    }
}

fn seconds(count: u32) -> Duration {
    Duration::from_secs(u64::from(count))
}

/// The checked stage's view of the raw entries.
struct Reader<'a> {
    path: &'a Path,
    by_key: HashMap<String, RawEntry>,
}

impl Reader<'_> {
    /// The entry for `key`, unless it is absent or empty: an empty value means "the default".
    fn entry(&self, key: &str) -> Option<&RawEntry> {
        self.by_key.get(key).filter(|entry| !entry.value.is_empty())
    }

    /// A free-text value (a client id or secret), not checked.
    fn text(&self, key: &str) -> Option<String> {
        self.entry(key).map(|entry| entry.value.clone())
    }

    fn optional<T>(
        &self,
        key: &str,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.entry(key)
            .map(|entry| {
                check(&entry.value).map_err(|reason| ConfigError::BadValue {
                    path: self.path.to_path_buf(),
                    line: entry.line,
                    key: entry.key.clone(),
                    // A bad PROXY or URL may still carry a real password.
                    value: mask_password_loosely(&entry.value),
                    reason,
                })
            })
            .transpose()
    }

    fn value_or<T>(
        &self,
        key: &str,
        default: T,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        Ok(self.optional(key, check)?.unwrap_or(default))
    }

    fn number_or(&self, key: &str, default: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
        self.value_or(key, default, whole_number(min, max))
    }
}

/// A warning for each key dncs does not read, with a guess when it looks like a misspelt known key,
/// since a misspelt key otherwise silently leaves the default in force.
fn unknown_key_warnings(by_key: &HashMap<String, RawEntry>, path: &Path) -> Vec<LineWarning> {
    by_key
        .values()
        .filter(|entry| !KEYS.contains(&entry.key.as_str()))
        .map(|entry| {
            let mut warning = format!(
                "{} line {}: unknown key {}",
                path.display(),
                entry.line,
                entry.key
            );
            if let Some(section) = &entry.section {
                warning.push_str(&format!(" in [{section}]"));
            }
            warning.push_str(" is ignored");
            if let Some(guess) = closest_key(&entry.key) {
                warning.push_str(&format!(" (did you mean {guess}?)"));
            }
            (entry.line, warning)
        })
        .collect()
}

fn closest_key(unknown: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|key| (edit_distance(unknown, key), *key))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, key)| key)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests;
