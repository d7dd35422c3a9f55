//! The loose stage of reading `dncs.ini`: bytes to text, text to `KEY=VALUE` entries that remember their line.

use std::collections::HashMap;
use std::path::Path;

use super::ConfigError;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One `KEY=VALUE` line as written, before its value is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    /// Upper-cased, so that `sync_threads` and `SYNC_THREADS` are one key.
    pub key: String,
    /// Trimmed, with one pair of surrounding double quotes removed.
    pub value: String,
    /// 1-based, as an editor shows it.
    pub line: usize,
    /// The `[section]` above the line; keys are global, so this only helps messages.
    pub section: Option<String>,
}

/// A warning about the file, kept with its line so that all warnings can be listed in file order.
pub(crate) type LineWarning = (usize, String);

/// Turns the file's bytes into text.
///
/// Old installations were edited with Windows Notepad, so besides UTF-8 (with or without BOM) the file
/// may be Shift_JIS, or UTF-16 when Notepad's "Unicode" was chosen.
pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<String, ConfigError> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if let Some((encoding, bom_length)) = encoding_rs::Encoding::for_bom(bytes) {
        // Only UTF-16 can be left here, as the UTF-8 BOM is gone.
        return encoding
            .decode_without_bom_handling_and_without_replacement(&bytes[bom_length..])
            .map(|text| text.into_owned())
            .ok_or_else(|| encoding_error(path));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    encoding_rs::SHIFT_JIS
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.into_owned())
        .ok_or_else(|| encoding_error(path))
}

fn encoding_error(path: &Path) -> ConfigError {
    ConfigError::Encoding {
        path: path.to_path_buf(),
    }
}

/// Splits the text into entries, skipping blank lines, comments and section headers.
pub(crate) fn parse_lines(text: &str, path: &Path) -> Result<Vec<RawEntry>, ConfigError> {
    // A lone CR is a line break too (old Mac files, or a CRLF file pasted into an LF one), so that
    // line numbers agree with what an editor shows.
    let text = text.replace("\r\n", "\n");
    let mut section = None;
    let mut entries = Vec::new();
    for (index, line) in text.split(['\n', '\r']).enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_owned());
            continue;
        }
        let syntax_error = || ConfigError::Syntax {
            path: path.to_path_buf(),
            line: line_number,
            text: first_word(line).to_owned(),
        };
        let (key, value) = line.split_once('=').ok_or_else(syntax_error)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(syntax_error());
        }
        entries.push(RawEntry {
            key: key.to_ascii_uppercase(),
            value: unquote(value.trim()).to_owned(),
            line: line_number,
            section: section.clone(),
        });
    }
    Ok(entries)
}

/// The start of a line that is not `KEY=VALUE`, up to a blank, `:` or `=`: it names the key
/// meant, while the rest may be a password (`PROXY http://user:pw@proxy`) that an error page,
/// shown to anyone who opens the CGI, must not repeat.
fn first_word(line: &str) -> &str {
    let end = line
        .find(|c: char| c.is_whitespace() || c == ':' || c == '=')
        .unwrap_or(line.len());
    let word = &line[..end];
    match word.char_indices().nth(40) {
        Some((cut, _)) => &word[..cut],
        None => word,
    }
}

/// Removes one pair of surrounding double quotes. Nothing inside is escaped: `C:\dncs\data` must
/// reach the program as written.
fn unquote(value: &str) -> &str {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner,
        None => value,
    }
}

/// Indexes the entries by key. A key set twice keeps its later value, as most ini readers do, but the
/// administrator is told, since the earlier line was probably meant to count.
pub(crate) fn index_by_key(
    entries: Vec<RawEntry>,
    path: &Path,
) -> (HashMap<String, RawEntry>, Vec<LineWarning>) {
    let mut by_key: HashMap<String, RawEntry> = HashMap::new();
    let mut warnings = Vec::new();
    for entry in entries {
        let line = entry.line;
        if let Some(earlier) = by_key.insert(entry.key.clone(), entry) {
            warnings.push((
                line,
                format!(
                    "{} line {line}: {} is set again; the value on line {} is ignored",
                    path.display(),
                    earlier.key,
                    earlier.line
                ),
            ));
        }
    }
    (by_key, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("/srv/dncs/bin/dncs.ini")
    }

    fn entries(text: &str) -> Vec<RawEntry> {
        parse_lines(text, path()).expect("parses")
    }

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        entries(text)
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    fn pair(key: &str, value: &str, line: usize) -> (String, String, usize) {
        (key.to_owned(), value.to_owned(), line)
    }

    #[test]
    fn utf8_bom_is_stripped() {
        let text = decode(b"\xEF\xBB\xBFLANG=en\n", path()).expect("decodes");
        assert_eq!(text, "LANG=en\n");
        assert_eq!(pairs(&text), vec![pair("LANG", "en", 1)]);
    }

    #[test]
    fn shift_jis_is_decoded_when_not_utf8() {
        let (bytes, _, had_errors) =
            encoding_rs::SHIFT_JIS.encode("; 日本語\nDATA_DIR=C:\\表\\データ\n");
        assert!(!had_errors);
        assert!(std::str::from_utf8(&bytes).is_err());
        let text = decode(&bytes, path()).expect("decodes");
        assert_eq!(pairs(&text), vec![pair("DATA_DIR", "C:\\表\\データ", 2)]);
    }

    #[test]
    fn utf16_from_notepad_is_decoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "LANG=en\r\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(decode(&bytes, path()).expect("decodes"), "LANG=en\r\n");
    }

    #[test]
    fn bytes_that_are_neither_utf8_nor_shift_jis_are_an_encoding_error() {
        let error = decode(b"LANG=\x82\xFF\n", path()).expect_err("malformed");
        assert!(matches!(error, ConfigError::Encoding { .. }), "{error}");
    }

    #[test]
    fn crlf_lf_and_lone_cr_all_end_lines() {
        assert_eq!(
            pairs("A=1\r\nB=2\nC=3\rD=4\r\n"),
            vec![
                pair("A", "1", 1),
                pair("B", "2", 2),
                pair("C", "3", 3),
                pair("D", "4", 4)
            ]
        );
    }

    #[test]
    fn semicolon_and_hash_comments_are_skipped() {
        assert_eq!(
            pairs("; comment\n# comment\n  ; indented comment\nA=1\n"),
            vec![pair("A", "1", 4)]
        );
    }

    #[test]
    fn sections_are_remembered_but_keys_stay_global() {
        let found = entries("A=1\n[google]\nB=2\n[ sync ]\nC=3\n");
        let sections: Vec<_> = found.iter().map(|e| e.section.as_deref()).collect();
        assert_eq!(sections, vec![None, Some("google"), Some("sync")]);
        assert_eq!(found[1].key, "B");
    }

    #[test]
    fn indented_lines_and_spaces_around_equals_are_trimmed() {
        assert_eq!(
            pairs("   SYNC_THREADS =  8  \n\tLANG\t=\ten\n"),
            vec![pair("SYNC_THREADS", "8", 1), pair("LANG", "en", 2)]
        );
    }

    #[test]
    fn keys_are_case_insensitive() {
        assert_eq!(
            pairs("sync_Threads=8\n"),
            vec![pair("SYNC_THREADS", "8", 1)]
        );
    }

    #[test]
    fn quoted_values_lose_one_pair_of_quotes_and_keep_inner_spaces() {
        assert_eq!(
            pairs("A=\" x \"\nB=\"\"\nC=\"unbalanced\nD=say \"hi\"\n"),
            vec![
                pair("A", " x ", 1),
                pair("B", "", 2),
                pair("C", "\"unbalanced", 3),
                pair("D", "say \"hi\"", 4)
            ]
        );
    }

    #[test]
    fn backslashes_and_later_equals_signs_are_kept_verbatim() {
        assert_eq!(
            pairs("DATA_DIR=C:\\dncs\\data\nQ=\"\\\\server\\share\\n\"\nU=a=b\n"),
            vec![
                pair("DATA_DIR", "C:\\dncs\\data", 1),
                pair("Q", "\\\\server\\share\\n", 2),
                pair("U", "a=b", 3)
            ]
        );
    }

    #[test]
    fn a_line_without_equals_is_a_syntax_error_with_its_line() {
        let error = parse_lines("A=1\n\nSYNC_THREADS 8\n", path()).expect_err("no =");
        match &error {
            ConfigError::Syntax { line, text, .. } => {
                assert_eq!(*line, 3);
                assert_eq!(text, "SYNC_THREADS");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            "/srv/dncs/bin/dncs.ini line 3: expected KEY=VALUE; the line begins with \"SYNC_THREADS\""
        );
    }

    #[test]
    fn a_syntax_error_does_not_repeat_what_may_be_a_password() {
        for (line, shown) in [
            ("PROXY http://admin:S3cret@proxy:8080", "PROXY"),
            (
                "GOOGLE_CLIENT_SECRET: GOCSPX-abcdef",
                "GOOGLE_CLIENT_SECRET",
            ),
            ("S3cretAlone", "S3cretAlone"),
        ] {
            let error = parse_lines(line, path()).expect_err("no =");
            let message = error.to_string();
            assert!(message.contains(&format!("\"{shown}\"")), "{message}");
            for secret in ["S3cret@", "GOCSPX"] {
                assert!(!message.contains(secret), "{message}");
            }
        }
    }

    #[test]
    fn an_empty_key_is_a_syntax_error() {
        let error = parse_lines("=8\n", path()).expect_err("no key");
        assert!(matches!(error, ConfigError::Syntax { line: 1, .. }));
    }

    #[test]
    fn a_repeated_key_keeps_the_later_value_and_warns() {
        let (by_key, warnings) = index_by_key(entries("A=1\nB=2\na=3\n"), path());
        assert_eq!(by_key["A"].value, "3");
        assert_eq!(by_key["A"].line, 3);
        assert_eq!(
            warnings,
            vec![(
                3,
                "/srv/dncs/bin/dncs.ini line 3: A is set again; the value on line 1 is ignored"
                    .to_owned()
            )]
        );
    }
}
