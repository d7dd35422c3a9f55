//! The screens' words in Japanese (the default) and English (`LANG=en`), by key: written into the
//! templates when the program is built (`{{ t("key") }}`, see `build.rs`) and looked up by the
//! handlers. The state strings are a contract with users.

use crate::config::Lang;

/// The text for `key`; an unknown key shows itself, so a missing entry is visible, not blank.
pub fn text(lang: Lang, key: &str) -> &str {
    known_text(lang, key).unwrap_or(key)
}

fn known_text(lang: Lang, key: &str) -> Option<&'static str> {
    let found = CATALOG.binary_search_by(|(k, _, _)| (*k).cmp(key)).ok()?;
    Some(match (lang, CATALOG[found]) {
        (Lang::Ja, (_, ja, _)) => ja,
        (Lang::En, (_, _, en)) => en,
    })
}

/// `source` with its words written in as `build.rs` writes them, for the tests that compare the
/// templates it wrote with their sources.
#[cfg(test)]
pub(crate) fn localize_template(source: &str, lang: Lang) -> String {
    localize_template_with(source, |key| known_text(lang, key))
}

#[cfg(test)]
include!("localize.rs");

include!("catalog.rs");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_strings_are_exact() {
        assert_eq!(text(Lang::Ja, "state.running"), "同期中");
        assert_eq!(text(Lang::Ja, "state.running_now"), "同期中 – 同期処理中");
        assert_eq!(text(Lang::Ja, "state.stopped"), "停止中");
        assert_eq!(
            text(Lang::Ja, "state.disabled"),
            "管理者により無効とされています"
        );
        assert_eq!(text(Lang::Ja, "google.linked"), "認証済です");
        assert_eq!(text(Lang::Ja, "google.relink"), "認証済(再認証が必要です)");
        assert_eq!(text(Lang::Ja, "google.none"), "未認証");
        assert_eq!(text(Lang::Ja, "settings.sync_now"), "ただちに同期する");
    }

    #[test]
    fn keys_are_sorted_unique_and_english_is_complete() {
        for pair in CATALOG.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{} comes before {}",
                pair[1].0,
                pair[0].0
            );
        }
        assert!(CATALOG
            .iter()
            .all(|(_, ja, en)| !ja.is_empty() && !en.is_empty()));
    }

    #[test]
    fn localizing_a_template_writes_each_plain_call_as_escaped_text() {
        let source = r#"<h1>{{ t("nav.settings") }}</h1><p>{{ t("caldav.connected") }}</p>"#;
        assert_eq!(
            localize_template(source, Lang::En),
            "<h1>Sync settings</h1><p>Connected to the CalDAV calendar &quot;{name}&quot;.</p>"
        );
        assert_eq!(
            localize_template(source, Lang::Ja),
            "<h1>同期設定</h1><p>CalDAV カレンダー「{name}」に接続できました。</p>"
        );
    }

    #[test]
    fn localizing_leaves_every_other_use_of_t_a_call() {
        let source = concat!(
            r#"{{ last or t("settings.never") }}{{- t("nav.history") -}}"#,
            r#"{{ t("not a key") }}{{ t(""#,
        );
        assert_eq!(localize_template(source, Lang::Ja), source);
        assert!(holds_template_syntax("a {{ b }}"));
        assert!(!holds_template_syntax("{name}"));
    }

    #[test]
    fn unknown_keys_show_themselves() {
        assert_eq!(text(Lang::En, "no.such.key"), "no.such.key");
    }
}
