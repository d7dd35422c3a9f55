use super::*;

const DEFAULT_INI: &[u8] = include_bytes!("../../ini/dncs.ini");

fn ini_path() -> &'static Path {
    Path::new("/srv/cbag/dncs/bin/dncs.ini")
}

fn parse(text: &str) -> Config {
    Config::from_bytes(text.as_bytes(), ini_path()).expect("valid ini")
}

fn parse_error(text: &str) -> ConfigError {
    Config::from_bytes(text.as_bytes(), ini_path()).expect_err("invalid ini")
}

fn entry(config: &Config, key: &str) -> String {
    config
        .effective_entries()
        .into_iter()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("{key} is not listed"))
}

#[test]
fn every_default() {
    let config = parse("");
    assert_eq!(config.ini_path, ini_path());
    assert_eq!(config.cybozu_url, None);
    assert_eq!(config.cybozu_parallel, 2);
    assert_eq!(config.callback_scheme, CallbackScheme::Https);
    assert_eq!(config.google_auth_mode, AuthMode::Relay);
    assert_eq!(config.google_client_id, None);
    assert_eq!(config.google_client_secret, None);
    assert_eq!(config.google_redirect_uri, None);
    assert_eq!(config.legacy_google_client_id, None);
    assert_eq!(config.legacy_google_client_secret, None);
    assert_eq!(
        config.google_auth_url,
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(
        config.google_token_url,
        "https://oauth2.googleapis.com/token"
    );
    assert_eq!(
        config.google_api_base,
        "https://www.googleapis.com/calendar/v3"
    );
    assert_eq!(config.sync_past_days, 30);
    assert_eq!(config.sync_future_days, 180);
    assert_eq!(config.sync_interval_minutes, 5);
    assert_eq!(config.sync_threads, 4);
    assert_eq!(config.conflict, Conflict::Cybozu);
    assert!(!config.inbound_public);
    assert_eq!(config.timezone, Tz::Asia__Tokyo);
    assert_eq!(config.data_dir, PathBuf::from("/srv/cbag/dncs/bin/../data"));
    assert_eq!(config.proxy, None);
    assert_eq!(config.http_connect_timeout, Duration::from_secs(10));
    assert_eq!(config.http_timeout, Duration::from_secs(60));
    assert_eq!(config.log_level, LevelFilter::Info);
    assert_eq!(config.log_months, 6);
    assert_eq!(config.backup_days, 30);
    assert_eq!(
        config.backup_time,
        NaiveTime::from_hms_opt(0, 0, 0).expect("valid")
    );
    assert_eq!(config.lang, Lang::Ja);
    assert_eq!(config.max_users, 0);
    assert!(config.warnings.is_empty());
}

#[test]
fn the_shipped_ini_parses_to_the_defaults_without_warnings() {
    let shipped = Config::from_bytes(DEFAULT_INI, ini_path()).expect("shipped ini is valid");
    assert_eq!(shipped.warnings, Vec::<String>::new());
    let mut expected = parse("");
    expected.cybozu_url = Some("http://localhost/cgi-bin/cbag/ag.cgi".to_owned());
    assert_eq!(shipped, expected);
}

#[test]
fn the_shipped_ini_documents_every_key_in_order() {
    let text = std::str::from_utf8(DEFAULT_INI).expect("shipped ini is UTF-8");
    let mut rest = text;
    for key in KEYS {
        let at = rest
            .find(&format!("{key}="))
            .unwrap_or_else(|| panic!("{key} is missing or out of order in ini/dncs.ini"));
        rest = &rest[at..];
    }
}

#[test]
fn empty_values_mean_the_default() {
    let text: String = KEYS.iter().map(|key| format!("{key}=\n")).collect();
    assert_eq!(parse(&text), parse(""));
    assert_eq!(parse("SYNC_THREADS=\"\"\n"), parse(""));
}

#[test]
fn every_key_is_read() {
    let config = parse(
        "CYBOZU_URL=http://cybozu.local/scripts/cbag/ag.exe\n\
         CYBOZU_PARALLEL=3\n\
         CALLBACK_SCHEME=HTTP\n\
         GOOGLE_AUTH_MODE=direct\n\
         GOOGLE_CLIENT_ID=id.apps.googleusercontent.com\n\
         GOOGLE_CLIENT_SECRET=GOCSPX-secret\n\
         GOOGLE_REDIRECT_URI=https://cybozu.example.com/dncs\n\
         LEGACY_GOOGLE_CLIENT_ID=legacy-id\n\
         LEGACY_GOOGLE_CLIENT_SECRET=legacy-secret\n\
         GOOGLE_AUTH_URL=http://127.0.0.1:9000/auth\n\
         GOOGLE_TOKEN_URL=http://127.0.0.1:9000/token\n\
         GOOGLE_API_BASE=http://127.0.0.1:9000/calendar/v3/\n\
         SYNC_PAST_DAYS=0\n\
         SYNC_FUTURE_DAYS=365\n\
         SYNC_INTERVAL=15\n\
         SYNC_THREADS=8\n\
         CONFLICT=newer\n\
         INBOUND_PUBLIC=yes\n\
         TIMEZONE=UTC\n\
         DATA_DIR=/var/lib/dncs\n\
         PROXY=http://proxy.local:3128\n\
         HTTP_CONNECT_TIMEOUT=5\n\
         HTTP_TIMEOUT=120\n\
         LOG_LEVEL=DEBUG\n\
         LOG_MONTHS=12\n\
         BACKUP_DAYS=0\n\
         BACKUP_TIME=03:30\n\
         LANG=en\n\
         MAX_USERS=50\n",
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let defaults = parse("").effective_entries();
    for ((key, value), (_, default)) in config.effective_entries().into_iter().zip(defaults) {
        assert_ne!(value, default, "{key} kept its default");
    }
    assert_eq!(
        config.cybozu_url().ok(),
        Some("http://cybozu.local/scripts/cbag/ag.exe")
    );
    assert_eq!(config.google_api_base, "http://127.0.0.1:9000/calendar/v3");
    assert_eq!(config.sync_past_days, 0);
    assert_eq!(
        config.backup_time,
        NaiveTime::from_hms_opt(3, 30, 0).expect("valid")
    );
    assert_eq!(config.log_level, LevelFilter::Debug);
    assert_eq!(config.callback_scheme, CallbackScheme::Http);
}

#[test]
fn effective_entries_list_every_key_in_order() {
    let names: Vec<&str> = parse("")
        .effective_entries()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(names, KEYS);
}

#[test]
fn a_notepad_file_with_bom_crlf_sections_and_comments_reads() {
    let text = "\u{FEFF}; サイボウズ連携\r\n[cybozu]\r\n  CYBOZU_URL = http://localhost/cgi-bin/cbag/ag.cgi\r\n\r\n\
                # comment\r\n[sync]\r\nSYNC_THREADS=8\r\n";
    let config = parse(text);
    assert_eq!(
        config.cybozu_url.as_deref(),
        Some("http://localhost/cgi-bin/cbag/ag.cgi")
    );
    assert_eq!(config.sync_threads, 8);
    assert!(config.warnings.is_empty());
}

#[test]
fn a_shift_jis_file_reads() {
    let text = "; サイボウズ Office との連携設定\r\n\
                [operations]\r\n\
                ; データの保存先 (表計算ソフトのフォルダーの隣)\r\n\
                DATA_DIR=D:\\サイボウズ\\表\\データ\r\n\
                ; 画面の言語\r\n\
                LANG=en\r\n";
    let (bytes, _, had_errors) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!had_errors);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the test needs non-UTF-8 bytes"
    );
    let config = Config::from_bytes(&bytes, ini_path()).expect("valid ini");
    assert_eq!(config.data_dir, PathBuf::from("D:\\サイボウズ\\表\\データ"));
    assert_eq!(config.lang, Lang::En);
}

#[test]
fn quoted_values_are_unquoted() {
    let config = parse("GOOGLE_CLIENT_SECRET=\" has spaces \"\nLANG=\"en\"\n");
    assert_eq!(config.google_client_secret.as_deref(), Some(" has spaces "));
    assert_eq!(config.lang, Lang::En);
}

#[test]
fn windows_backslash_paths_are_kept_verbatim() {
    assert_eq!(
        parse("DATA_DIR=C:\\dncs\\data\n").data_dir,
        PathBuf::from("C:\\dncs\\data")
    );
    assert_eq!(
        parse("DATA_DIR=\"C:\\Program Files\\dncs\\new\"\n").data_dir,
        PathBuf::from("C:\\Program Files\\dncs\\new")
    );
    assert_eq!(
        parse("DATA_DIR=\\\\fileserver\\dncs\n").data_dir,
        PathBuf::from("\\\\fileserver\\dncs")
    );
}

#[test]
fn a_relative_data_dir_is_resolved_against_the_ini_folder() {
    assert_eq!(
        parse("DATA_DIR=data\n").data_dir,
        PathBuf::from("/srv/cbag/dncs/bin/data")
    );
    assert_eq!(
        parse("DATA_DIR=/var/lib/dncs\n").data_dir,
        PathBuf::from("/var/lib/dncs")
    );
}

#[test]
fn each_bad_value_names_its_line_and_key() {
    let cases = [
        ("CALLBACK_SCHEME=ftp", "must be one of: http, https"),
        (
            "CYBOZU_URL=localhost/cgi-bin/cbag/ag.cgi",
            "not an http:// or https:// URL",
        ),
        ("GOOGLE_AUTH_MODE=oob", "must be one of: relay, direct"),
        (
            "GOOGLE_REDIRECT_URI=urn:ietf:wg:oauth:2.0:oob",
            "not an http:// or https:// URL",
        ),
        (
            "GOOGLE_AUTH_URL=accounts.google.com",
            "not an http:// or https:// URL",
        ),
        ("GOOGLE_TOKEN_URL=http://", "not an http:// or https:// URL"),
        (
            "GOOGLE_API_BASE=www.googleapis.com",
            "not an http:// or https:// URL",
        ),
        ("SYNC_PAST_DAYS=-1", "between 0 and 3650"),
        ("SYNC_FUTURE_DAYS=0", "between 1 and 3650"),
        ("SYNC_THREADS=many", "not a whole number between 1 and 64"),
        ("SYNC_THREADS=65", "between 1 and 64"),
        ("CYBOZU_PARALLEL=33", "between 1 and 32"),
        ("SYNC_INTERVAL=1441", "between 1 and 1440"),
        ("CONFLICT=phone", "must be one of: cybozu, remote, newer"),
        ("INBOUND_PUBLIC=maybe", "must be true or false"),
        ("TIMEZONE=JST+9", "not a time zone name"),
        ("PROXY=proxy.local:8080", "not a proxy URL"),
        ("PROXY=http://proxy.local:80800", "port"),
        (
            "LOG_LEVEL=verbose",
            "must be one of: off, error, warn, info, debug, trace",
        ),
        ("LOG_MONTHS=0", "between 1 and 120"),
        ("BACKUP_DAYS=3651", "between 0 and 3650"),
        ("BACKUP_TIME=25:00", "HH:MM"),
        ("LANG=fr", "must be one of: ja, en"),
        ("MAX_USERS=unlimited", "not a whole number"),
        ("HTTP_CONNECT_TIMEOUT=301", "between 1 and 300"),
        ("HTTP_TIMEOUT=0", "between 1 and 3600"),
    ];
    for (line, expected_reason) in cases {
        let (expected_key, expected_value) = line.split_once('=').expect("test line has =");
        let error = parse_error(&format!("; comment\nLANG=ja\n  {line}  \n"));
        match error {
            ConfigError::BadValue {
                path,
                line,
                key,
                value,
                reason,
            } => {
                assert_eq!(path, ini_path(), "{expected_key}");
                assert_eq!(line, 3, "{expected_key}");
                assert_eq!(key, expected_key);
                assert_eq!(value, expected_value);
                assert!(reason.contains(expected_reason), "{expected_key}: {reason}");
            }
            other => panic!("{expected_key}: unexpected {other:?}"),
        }
    }
}

#[test]
fn a_bad_value_message_names_file_line_and_key() {
    let text = format!("{}SYNC_THREADS=many\n", "\n".repeat(11));
    assert_eq!(
        parse_error(&text).to_string(),
        "/srv/cbag/dncs/bin/dncs.ini line 12: SYNC_THREADS = \"many\": not a whole number between 1 and 64"
    );
}

#[test]
fn a_bad_proxy_never_shows_its_password() {
    let message = parse_error("PROXY=http://me:hunter2@proxy:port\n").to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains("http://me:********@proxy:port"),
        "{message}"
    );
}

#[test]
fn a_line_without_equals_is_a_syntax_error() {
    match parse_error("LANG=ja\n[sync]\nSYNC_THREADS\n") {
        ConfigError::Syntax { line, text, .. } => {
            assert_eq!(line, 3);
            assert_eq!(text, "SYNC_THREADS");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_unknown_key_is_a_warning_not_an_error() {
    let config = parse("LANG=en\n[sync]\nSYNC_THREAD=8\nCOLOR=blue\n");
    assert_eq!(
        config.warnings,
        vec![
            "/srv/cbag/dncs/bin/dncs.ini line 3: unknown key SYNC_THREAD in [sync] is ignored \
             (did you mean SYNC_THREADS?)"
                .to_owned(),
            "/srv/cbag/dncs/bin/dncs.ini line 4: unknown key COLOR in [sync] is ignored".to_owned(),
        ]
    );
    assert_eq!(config.sync_threads, 4);
    assert_eq!(config.lang, Lang::En);
}

#[test]
fn a_repeated_key_keeps_the_later_value_with_a_warning() {
    let config = parse("SYNC_THREADS=2\nLANG=en\nsync_threads=16\n");
    assert_eq!(config.sync_threads, 16);
    assert_eq!(
        config.warnings,
        vec!["/srv/cbag/dncs/bin/dncs.ini line 3: SYNC_THREADS is set again; the value on line 1 is ignored"
            .to_owned()]
    );
}

#[test]
fn only_the_later_of_two_values_is_checked() {
    assert_eq!(parse("SYNC_THREADS=many\nSYNC_THREADS=8\n").sync_threads, 8);
}

#[test]
fn secrets_are_masked_in_effective_entries_and_debug() {
    let config = parse(
        "GOOGLE_CLIENT_ID=visible-id\nGOOGLE_CLIENT_SECRET=top-secret\n\
         LEGACY_GOOGLE_CLIENT_SECRET=old-secret\nPROXY=http://me:hunter2@proxy.local:8080\n",
    );
    assert_eq!(entry(&config, "GOOGLE_CLIENT_ID"), "visible-id");
    assert_eq!(entry(&config, "GOOGLE_CLIENT_SECRET"), "********");
    assert_eq!(entry(&config, "LEGACY_GOOGLE_CLIENT_SECRET"), "********");
    assert_eq!(
        entry(&config, "PROXY"),
        "http://me:********@proxy.local:8080"
    );
    let debug = format!("{config:?}");
    for secret in ["top-secret", "old-secret", "hunter2"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert_eq!(
        config.proxy.as_ref().map(Proxy::url).as_deref(),
        Some("http://me:hunter2@proxy.local:8080")
    );

    let unset = parse("");
    assert_eq!(entry(&unset, "GOOGLE_CLIENT_SECRET"), "");
    assert_eq!(entry(&unset, "PROXY"), "");
}

#[test]
fn a_missing_cybozu_url_is_a_clear_error_when_needed() {
    let message = parse("")
        .cybozu_url()
        .map(str::to_owned)
        .expect_err("unset")
        .to_string();
    assert_eq!(
        message,
        "CYBOZU_URL is not set in /srv/cbag/dncs/bin/dncs.ini"
    );
}

#[test]
fn load_reads_a_file_and_resolves_against_its_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let ini = bin.join("dncs.ini");
    std::fs::write(&ini, "DATA_DIR=../data\r\n").expect("write ini");
    let config = Config::load(&ini).expect("loads");
    assert_eq!(config.data_dir, bin.join("../data"));
    assert_eq!(config.ini_path, ini);
}

#[test]
fn load_tells_a_missing_file_from_an_unreadable_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("dncs.ini");
    assert!(matches!(
        Config::load(&missing),
        Err(ConfigError::NotFound { .. })
    ));
    // A folder where the file should be cannot be read as one.
    assert!(matches!(
        Config::load(dir.path()),
        Err(ConfigError::Io { .. })
    ));
}

#[test]
fn locate_honours_dncs_ini() {
    // The only test touching DNCS_INI, so no other test can observe it while it is changed.
    let saved = std::env::var_os(INI_VAR);
    std::env::set_var(INI_VAR, "/etc/dncs/custom.ini");
    let pinned = Config::locate();
    std::env::remove_var(INI_VAR);
    let beside_program = Config::locate();
    if let Some(value) = saved {
        std::env::set_var(INI_VAR, value);
    }
    assert_eq!(pinned, PathBuf::from("/etc/dncs/custom.ini"));
    let exe = std::env::current_exe().expect("test binary path");
    assert_eq!(beside_program, exe.with_file_name(INI_FILE_NAME));
}

#[test]
fn garbage_never_panics() {
    let samples: [&[u8]; 7] = [
        b"\xFF\xFE\x00",
        b"\xFE\xFF\xD8",
        b"[",
        b"]=[",
        b"=\n",
        b"\"=\"\nPROXY=\"\n",
        b"PROXY=http://[::1\nBACKUP_TIME=\xE3\x81\x82:\xE3\x81\x82\n",
    ];
    for bytes in samples {
        let _ = Config::from_bytes(bytes, ini_path());
    }
}
