//! Links from an earlier installation, so that an overwrite install keeps every user's Google link:
//! `dncs-sync import-legacy FILE` reads a CSV of login name, refresh token, calendar id, flow (and
//! optionally the Cybozu password), and each link is applied now or at the user's first login.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::store::{GoogleClient, LegacyLink, Provenance, Store, StoreError, Target, UserId};

/// One usable line of the CSV.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacyRow {
    pub line: usize,
    pub login_name: String,
    pub refresh_token: String,
    pub calendar_id: String,
    pub provenance: Provenance,
    /// The Cybozu password, when the old installation could export it.
    pub password: Option<String>,
}

impl std::fmt::Debug for LegacyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyRow")
            .field("line", &self.line)
            .field("login_name", &self.login_name)
            .field("calendar_id", &self.calendar_id)
            .field("provenance", &self.provenance)
            .finish_non_exhaustive()
    }
}

/// Reads the CSV: UTF-8 (BOM or not) or Shift_JIS, CRLF or LF, `#` comments, an optional header
/// line, fields optionally in double quotes. Bad lines are reported with their number and skipped.
pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<(Vec<LegacyRow>, Vec<String>), String> {
    let text = crate::config::decode_text(bytes, path).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = match split_fields(trimmed) {
            Ok(fields) => fields,
            Err(why) => {
                problems.push(format!("line {line}: {why}"));
                continue;
            }
        };
        if line == 1
            && fields
                .first()
                .is_some_and(|f| f.eq_ignore_ascii_case("login_name"))
        {
            continue;
        }
        match row_from(line, fields) {
            Ok(row) => rows.push(row),
            Err(why) => problems.push(format!("line {line}: {why}")),
        }
    }
    Ok((rows, problems))
}

fn row_from(line: usize, fields: Vec<String>) -> Result<LegacyRow, String> {
    if !(4..=5).contains(&fields.len()) {
        return Err(format!(
            "expected 4 or 5 fields (login name, refresh token, calendar id, flow[, password]), found {}",
            fields.len()
        ));
    }
    let mut fields = fields.into_iter();
    let mut next = || fields.next().unwrap_or_default();
    let login_name = next().trim().to_string();
    let refresh_token = next().trim().to_string();
    let calendar_id = next().trim().to_string();
    let flow = next().trim().to_ascii_lowercase();
    let password = Some(next()).filter(|p| !p.is_empty());
    if login_name.is_empty() {
        return Err("the login name is empty".into());
    }
    if refresh_token.is_empty() {
        return Err(format!("{login_name}: the refresh token is empty"));
    }
    let provenance = Provenance::parse(&flow)
        .ok_or_else(|| format!("{login_name}: flow {flow:?} is not oob, relay or direct"))?;
    Ok(LegacyRow {
        line,
        login_name,
        refresh_token,
        calendar_id,
        provenance,
        password,
    })
}

/// Splits one CSV line; a quoted field may hold commas and doubled quotes.
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if current.trim().is_empty() => {
                current.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut current)),
            (c, _) => current.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(current);
    Ok(fields)
}

/// The OAuth client a link's refresh token belongs to: an OOB token was issued by the old client,
/// which the administrator names `LEGACY_GOOGLE_CLIENT_ID` when a new client replaced it.
pub fn client_for(provenance: Provenance, config: &Config) -> GoogleClient {
    if provenance == Provenance::Oob && config.legacy_google_client_id.is_some() {
        GoogleClient::Legacy
    } else {
        GoogleClient::Current
    }
}

/// Gives a known user their imported link: the token, the calendar, and 同期 when they may sync.
pub fn apply(
    store: &Store,
    config: &Config,
    user_id: UserId,
    link: &LegacyLink,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    store.set_google_link(
        user_id,
        &link.refresh_token,
        link.provenance,
        client_for(link.provenance, config),
        now,
    )?;
    store.set_target_and_calendar(user_id, Target::Google, &link.calendar_id, now)?;
    if store.user_by_id(user_id)?.is_some_and(|u| u.enabled) {
        store.set_sync_on(user_id, true, now)?;
    }
    Ok(())
}

/// What happened to each line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Linked now (the user was known, or their password let us learn their Cybozu id).
    pub applied: Vec<String>,
    /// Kept until the user's first login.
    pub waiting: Vec<String>,
    /// Lines that could not be used, in words.
    pub problems: Vec<String>,
}

/// Imports the rows. `learn_user` asks Cybozu Office for a login's user id and display name
/// with the exported password (a wrong password is a problem, not a failure of the import).
pub fn import(
    store: &Store,
    config: &Config,
    rows: &[LegacyRow],
    learn_user: impl Fn(&str, &str) -> Result<(UserId, String), String>,
    now: DateTime<Utc>,
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    for row in rows {
        let link = LegacyLink {
            login_name: row.login_name.clone(),
            refresh_token: row.refresh_token.clone(),
            calendar_id: row.calendar_id.clone(),
            provenance: row.provenance,
            imported_at: now,
        };
        let known = store.user_by_login(&row.login_name)?.map(|u| u.id);
        let user_id = match (known, &row.password) {
            (Some(id), _) => Some(id),
            (None, Some(password)) => match learn_user(&row.login_name, password) {
                Ok((id, display_name)) => {
                    store.upsert_user(id, &row.login_name, &display_name, now)?;
                    store.set_cybozu_password(id, password, now)?;
                    if crate::license::seat_available(store, config)? {
                        store.set_enabled(id, true, now)?;
                    }
                    Some(id)
                }
                Err(why) => {
                    report.problems.push(format!(
                        "line {}: {}: {why}; the link waits for the user's first login",
                        row.line, row.login_name
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        match user_id {
            Some(id) => {
                apply(store, config, id, &link, now)?;
                report.applied.push(row.login_name.clone());
            }
            None => {
                store.put_legacy_link(
                    &link.login_name,
                    &link.refresh_token,
                    &link.calendar_id,
                    link.provenance,
                    now,
                )?;
                report.waiting.push(row.login_name.clone());
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    fn parse(text: &str) -> (Vec<LegacyRow>, Vec<String>) {
        parse_csv(text.as_bytes(), Path::new("links.csv")).expect("decodes")
    }

    #[test]
    fn reads_headers_comments_quotes_and_crlf() {
        let (rows, problems) = parse(
            "\u{feff}login_name,refresh_token,calendar_id,flow\r\n# exported 2026-11\r\ntakahashi,1//tok-a,primary,oob\r\n\"sato\",\"1//tok,b\",\"sato@example.jp\",RELAY,\"pa\"\"ss\"\r\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].provenance, Provenance::Oob);
        assert_eq!(rows[1].refresh_token, "1//tok,b");
        assert_eq!(rows[1].provenance, Provenance::Relay);
        assert_eq!(rows[1].password.as_deref(), Some("pa\"ss"));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let (rows, problems) = parse(
            "a,XSECRETX,cal,oob\nb,,cal,oob\nc,XSECRETX,cal,magic\nd,XSECRETX\n\"e,XSECRETX,cal,oob\n",
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("line 2:"));
        assert!(problems[1].contains("magic"));
        assert!(
            !problems.iter().any(|p| p.contains("XSECRETX")),
            "tokens never printed"
        );
    }

    #[test]
    fn shift_jis_files_are_read() {
        let (bytes, _, _) =
            encoding_rs::SHIFT_JIS.encode("# 旧環境からの移行\ntakahashi,1//tok,primary,oob\n");
        let (rows, problems) = parse_csv(&bytes, Path::new("links.csv")).expect("decodes");
        assert!(problems.is_empty());
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn known_users_are_linked_now_and_others_wait() {
        let store = Store::open_in_memory(SecretKey::generate().expect("key")).expect("store");
        let config = Config::from_bytes(b"", Path::new("/tmp/dncs.ini")).expect("ini");
        let now = Utc::now();
        store
            .upsert_user(1, "takahashi", "高橋", now)
            .expect("user");
        store.set_enabled(1, true, now).expect("enable");
        let (rows, _) =
            parse("takahashi,1//a,primary,oob\nsato,1//b,sato@x,relay,secret\nito,1//c,,oob\n");
        let report = import(
            &store,
            &config,
            &rows,
            |login, password| {
                assert_eq!((login, password), ("sato", "secret"));
                Ok((2, "佐藤".into()))
            },
            now,
        )
        .expect("import");
        assert_eq!(report.applied, vec!["takahashi", "sato"]);
        assert_eq!(report.waiting, vec!["ito"]);
        let takahashi = store.user_by_id(1).expect("read").expect("user");
        assert!(takahashi.sync_on);
        assert!(takahashi.google.is_some_and(|g| g.asks_for_relink()));
        assert_eq!(
            store.google_refresh_token(2).expect("read").as_deref(),
            Some("1//b")
        );
        assert!(store.take_legacy_link("ito").expect("read").is_some());
    }
}
