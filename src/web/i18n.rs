//! The screens' words in Japanese (the default) and English (`LANG=en`), by key: written into the
//! templates as they load (`{{ t("key") }}`) and looked up by the handlers. The state strings are a
//! contract with users.

use std::fmt::Write as _;

use crate::config::Lang;

/// The text for `key`; an unknown key shows itself, so a missing entry is visible, not blank.
pub fn text(lang: Lang, key: &str) -> &str {
    match CATALOG.binary_search_by(|(k, _, _)| (*k).cmp(key)) {
        Ok(found) => match (lang, CATALOG[found]) {
            (Lang::Ja, (_, ja, _)) => ja,
            (Lang::En, (_, _, en)) => en,
        },
        Err(_) => key,
    }
}

/// `source`, a template, with each `{{ t("key") }}` replaced by the key's text, escaped as the
/// template engine would escape it, so the page reads the same.
///
/// The CGI compiles its templates anew in every process, and a page holds some forty such calls:
/// as plain text they are neither parsed nor called, which takes about a sixth off the work of a
/// request (README, "Performance"). Any other use of `t`, such as `{{ a or t("key") }}`, and a text
/// that holds template syntax stay calls of the `t` function the templates also get.
pub fn localize_template(source: &str, lang: Lang) -> String {
    const OPEN: &str = "{{ t(\"";
    const CLOSE: &str = "\") }}";
    let mut localized = String::with_capacity(source.len() * 2);
    let mut rest = source;
    // A search for one byte, then a look at what follows: cheaper than a substring search.
    while let Some(brace) = rest.find('{') {
        let (before, from_brace) = rest.split_at(brace);
        localized.push_str(before);
        let call = from_brace.strip_prefix(OPEN).and_then(|after_open| {
            let key_length = after_open
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
                .count();
            let (key, after_key) = after_open.split_at(key_length);
            let text = text(lang, key);
            let after_call = after_key.strip_prefix(CLOSE)?;
            (!key.is_empty() && !holds_template_syntax(text)).then_some((text, after_call))
        });
        match call {
            Some((text, after_call)) => {
                // Writing to a String cannot fail.
                let _ = write!(localized, "{}", minijinja::HtmlEscape(text));
                rest = after_call;
            }
            None => {
                localized.push('{');
                rest = &from_brace[1..];
            }
        }
    }
    localized.push_str(rest);
    localized
}

fn holds_template_syntax(text: &str) -> bool {
    text.as_bytes().windows(2).any(|pair| {
        matches!(
            pair,
            [b'{', b'{' | b'%' | b'#'] | [b'}' | b'%' | b'#', b'}']
        )
    })
}

/// (key, 日本語, English), sorted by key (a lookup is a binary search; the keys' prefixes group
/// them by screen).
const CATALOG: &[(&str, &str, &str)] = &[
    ("admin.failed", "パスワードが正しくありません。", "The password is not correct."),
    ("admin.login_title", "管理者ログイン", "Administrator login"),
    ("admin.no_password", "管理者パスワードがまだ設定されていないため、管理者ログインはできません。サーバーで次のコマンドを実行し、新しいパスワードを 1 行入力してください（Linux では Web サーバーのアカウントで実行します）。設定した後、このページを開き直してください。", "No administrator password has been set yet, so the administrator cannot log in. On the server, run the command below and type the new password on one line (on Linux it runs as the web server's account). Then open this page again."),
    ("admin.only", "このページは管理者のみが利用できます。", "This page is for administrators only."),
    ("admin.password", "管理者パスワード", "Administrator password"),
    ("app.name", "Cybozu Office カレンダー同期", "Cybozu Office calendar sync"),
    ("caldav.connected", "CalDAV カレンダー「{name}」に接続できました。", "Connected to the CalDAV calendar \"{name}\"."),
    ("caldav.no_calendar", "この URL ではカレンダーが見つかりませんでした。カレンダーまたはサーバーの URL を確認してください。設定は保存していません。", "No calendar was found at this URL. Please check the calendar or server URL; nothing was saved."),
    ("caldav.unauthorized", "CalDAV サーバーがユーザー名またはパスワードを受け付けませんでした。入力を確認してください。設定は保存していません。", "The CalDAV server refused the user name or password. Please check them; nothing was saved."),
    ("caldav.unreachable", "CalDAV サーバーに接続できませんでした。URL を確認してください。設定は保存していません。", "The CalDAV server could not be reached. Please check the URL; nothing was saved."),
    ("common.back", "戻る", "Back"),
    ("csrf.failed", "画面の有効期限が切れたか、不正な送信です。画面を開き直してから、もう一度操作してください。", "This page has expired or the form was not sent from it. Open the page again and retry."),
    ("google.access_denied", "Google での許可が拒否されました。カレンダーを同期するには、もう一度「認証」を押し、Google の画面で「許可」を選んでください。", "Access was denied at Google. To sync your calendar, press Authorize again and choose Allow on Google's page."),
    ("google.admin_policy_enforced", "Google Workspace の管理者が、このアプリによるカレンダーへのアクセスを制限しています。社内の Google 管理者に、このアプリの許可を依頼してください。", "Your Google Workspace administrator restricts this app's access to calendars. Ask your Google administrator to allow the app."),
    ("google.bad_state", "この認証の応答は無効です（使用済み、別のブラウザーで開始された、または改ざんされています）。何も保存していません。同期設定画面から、もう一度「認証」を押してください。", "This authorization answer is not valid (already used, started in another browser, or altered). Nothing was saved. Press Authorize again on the settings page."),
    ("google.button", "認証", "Authorize"),
    ("google.exchange_failed", "Google との通信に失敗しました。しばらくしてから、もう一度「認証」を押してください。", "Talking to Google failed. Press Authorize again a little later."),
    ("google.expired", "認証の有効期限（10分）が切れました。何も保存していません。同期設定画面から、もう一度「認証」を押してください。", "The authorization took longer than 10 minutes. Nothing was saved. Press Authorize again on the settings page."),
    ("google.foreign_session", "認証を始めたときのログインが見つかりません。同期設定画面にログインし直し、もう一度「認証」を押してください。", "The login that started the authorization was not found. Log in to the settings again and press Authorize once more."),
    ("google.invalid_client", "Google が OAuth クライアントを拒否しました。dncs.ini の GOOGLE_CLIENT_ID と GOOGLE_CLIENT_SECRET を管理者に確認してもらってください。", "Google refused the OAuth client. Ask the administrator to check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET in dncs.ini."),
    ("google.invalid_grant", "認証コードが無効か期限切れです。同期設定画面から、もう一度「認証」を押してください。", "The authorization code is invalid or has expired. Press Authorize again on the settings page."),
    ("google.linked", "認証済です", "Authorized"),
    ("google.linked_now", "Google の認証が完了しました。", "Google authorization is complete."),
    ("google.no_relay", "GOOGLE_AUTH_MODE=relay ですが、中継ページの URL（GOOGLE_REDIRECT_URI）が dncs.ini に設定されていません。管理者に連絡してください。", "GOOGLE_AUTH_MODE=relay, but the relay page (GOOGLE_REDIRECT_URI) is not set in dncs.ini. Please tell your administrator."),
    ("google.none", "未認証", "Not authorized"),
    ("google.not_configured", "Google の OAuth クライアント（GOOGLE_CLIENT_ID、GOOGLE_CLIENT_SECRET）が dncs.ini に設定されていません。管理者に連絡してください。", "The Google OAuth client (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET) is not set in dncs.ini. Please tell your administrator."),
    ("google.org_internal", "この OAuth クライアントは別の組織の内部向けに設定されているため、あなたのアカウントでは使えません。dncs の管理者に Google クライアントの設定を確認してもらってください。", "This OAuth client is limited to another organisation's users. Ask the dncs administrator to check the Google client settings."),
    ("google.refused", "Google が認証を完了しませんでした。もう一度「認証」を押してください。", "Google did not complete the authorization. Press Authorize again."),
    ("google.relink", "認証済(再認証が必要です)", "Authorized (please authorize again)"),
    ("history.adopted", "対応付け", "Paired"),
    ("history.conflicts", "競合", "Conflicts"),
    ("history.counts", "追加 {created} / 変更 {updated} / 削除 {deleted}", "added {created} / changed {updated} / deleted {deleted}"),
    ("history.empty", "同期履歴はまだありません。", "No sync history yet."),
    ("history.errors", "エラー", "Errors"),
    ("history.newer", "新しい履歴", "Newer"),
    ("history.of", "{name} さんの同期履歴", "Sync history of {name}"),
    ("history.older", "古い履歴", "Older"),
    ("history.time", "日時", "Time"),
    ("history.title", "同期履歴", "Sync history"),
    ("history.to_cybozu", "サイボウズへ", "To Cybozu"),
    ("history.to_remote", "カレンダーへ", "To the calendar"),
    ("ini.hint", "現在有効な値です。秘密の値は伏せています。変更はサーバー上の dncs.ini を編集してください。", "The values in effect; secrets are masked. Edit dncs.ini on the server to change them."),
    ("ini.title", "設定ファイル（dncs.ini）", "Configuration (dncs.ini)"),
    ("license.last_run", "定期実行（dncs-sync run）", "Scheduled run (dncs-sync run)"),
    ("license.never_run", "まだ実行されていません", "not run yet"),
    ("license.over", "ライセンス数を超えるユーザーが有効になっていたため、すべてのユーザーを無効・停止にしました。連携情報とカレンダーIDは保持されています。ユーザー設定で利用するユーザーを有効にしてください。", "More users were enabled than the license allows, so every user was disabled and stopped. Links and calendar IDs are kept. Enable the users who should sync under Users."),
    ("license.schedule_silent", "dncs-sync run が 10 分以上起動されていません。同期は行われず、すぐに開始できなかった「ただちに同期する」も実行されません。cron またはタスク スケジューラで毎分実行されるよう設定してください（install/cron.txt、install/task-scheduler.txt）。", "dncs-sync run has not been started for 10 minutes or more: nothing is synced, and a 「ただちに同期する」 that could not start at once is never served. Have cron or the Task Scheduler run it every minute (install/cron.txt, install/task-scheduler.txt)."),
    ("license.seats", "利用ユーザー数", "Users enabled"),
    ("license.title", "ライセンス管理", "License"),
    ("license.unlimited", "無制限", "unlimited"),
    ("license.version", "ご利用中のバージョン", "Version in use"),
    ("login.admin_link", "管理者の方はこちら", "Administrators"),
    ("login.failed", "ログイン名またはパスワードが正しくありません。", "The login name or password is not correct."),
    ("login.intro", "サイボウズ Office のログイン名とパスワードでログインしてください。", "Log in with your Cybozu Office login name and password."),
    ("login.name", "ログイン名", "Login name"),
    ("login.password", "パスワード", "Password"),
    ("login.submit", "ログイン", "Log in"),
    ("login.throttled", "ログインの失敗が続いたため、しばらくログインできません。15分ほど待ってから、もう一度お試しください。", "Too many failed logins. Please wait about 15 minutes and try again."),
    ("login.title", "ログイン", "Log in"),
    ("login.unreachable", "サイボウズ Office に接続できません。しばらくしてからもう一度お試しください。問題が続く場合は管理者に連絡してください。", "Cybozu Office cannot be reached. Please try again later, and tell your administrator if it continues."),
    ("nav.admin_ini", "設定ファイル", "Configuration"),
    ("nav.admin_license", "ライセンス管理", "License"),
    ("nav.admin_users", "ユーザー設定", "Users"),
    ("nav.history", "同期履歴", "Sync history"),
    ("nav.logout", "ログアウト", "Log out"),
    ("nav.settings", "同期設定", "Sync settings"),
    ("session.expired", "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。", "You were logged out after a period of inactivity. Please log in again."),
    ("settings.bad_url", "CalDAV URL は http:// または https:// で始まる URL を入力してください。", "The CalDAV URL must start with http:// or https://."),
    ("settings.caldav_password", "CalDAV パスワード", "CalDAV password"),
    ("settings.caldav_password_again", "CalDAV URL のサーバーが変わったため、CalDAV パスワードをもう一度入力してください。保存されたパスワードは、入力されたサーバーにだけ送ります。", "The CalDAV URL names another server: enter the CalDAV password again. A stored password is sent only to the server it was entered for."),
    ("settings.caldav_password_hint", "変更する場合のみ入力してください。保存されたパスワードは表示されません。", "Fill in only to change it. A stored password is never shown."),
    ("settings.caldav_password_stored", "パスワードは保存されています。", "A password is stored."),
    ("settings.caldav_url", "CalDAV URL", "CalDAV URL"),
    ("settings.caldav_url_missing", "CalDAV と同期するには CalDAV URL を入力してください。", "Fill in the CalDAV URL to sync with CalDAV."),
    ("settings.caldav_user", "CalDAV ユーザー名", "CalDAV user name"),
    ("settings.calendar_id", "カレンダーID", "Calendar ID"),
    ("settings.calendar_id_hint", "空欄の場合はメインのカレンダー（primary）と同期します。", "Leave empty to sync with your main calendar (primary)."),
    ("settings.calendar_warning", "カレンダーIDまたは同期対象を変更すると、それまでの同期情報は失われ新規に同期し直します。", "Changing the calendar ID or the sync target drops the sync information; everything is synced anew."),
    ("settings.google_auth", "Google認証", "Google authorization"),
    ("settings.last_error", "前回のエラー", "Last error"),
    ("settings.last_pass", "最終同期", "Last pass"),
    ("settings.never", "まだ同期していません", "Not synced yet"),
    ("settings.not_permitted", "管理者により利用が許可されていないため、同期を開始できません。", "The administrator has not permitted you to sync."),
    ("settings.paused_caldav", "CalDAV URL とパスワードが揃っていないため、同期していません。下の CalDAV の欄を入力して保存してください。", "Not syncing: the CalDAV URL and password are not both set. Fill them in below and save."),
    ("settings.paused_cybozu", "サイボウズ Office のパスワードが保存されていないため、同期していません。ログアウトしてログインし直してください。", "Not syncing: no Cybozu Office password is stored. Log out and log in again."),
    ("settings.paused_google_not_configured", "Google カレンダーとの連携が dncs.ini に設定されていないため（GOOGLE_CLIENT_ID と GOOGLE_CLIENT_SECRET）、同期していません。システム管理者に連絡してください。", "Not syncing: Google Calendar linking is not set up in dncs.ini (GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET). Contact your administrator."),
    ("settings.paused_google_relink", "Google カレンダーとの連携が取り消されているため、同期していません。「認証」を押して連携し直してください。", "Not syncing: the link to Google Calendar was revoked. Press Authorize to link it again."),
    ("settings.paused_google_unlinked", "Google カレンダーと連携していないため、同期していません。「認証」を押して連携してください。", "Not syncing: Google Calendar is not linked yet. Press Authorize to link it."),
    ("settings.save", "保存", "Save"),
    ("settings.saved", "設定を保存しました。", "The settings were saved."),
    ("settings.state", "状態", "State"),
    ("settings.sync_info_dropped", "それまでの同期情報は失われ新規に同期し直します。", "The earlier sync information was dropped; everything will be synced anew."),
    ("settings.sync_now", "ただちに同期する", "Sync now"),
    ("settings.sync_on", "同期状態", "Sync"),
    ("settings.sync_queued", "同期をすぐに開始できなかったため、次の定期実行（1分以内）で同期します。", "The sync could not be started at once; the next scheduled run (within a minute) will do it."),
    ("settings.sync_started", "同期を開始しました。", "A sync pass has started."),
    ("settings.target", "同期対象", "Sync with"),
    ("settings.title", "同期設定", "Sync settings"),
    ("settings.too_long", "入力が長すぎます。カレンダーID、CalDAV URL、CalDAV ユーザー名は 2048 文字までです。", "Too long: the calendar ID, the CalDAV URL and the CalDAV user name take up to 2048 characters."),
    ("state.disabled", "管理者により無効とされています", "Disabled by the administrator"),
    ("state.running", "同期中", "Syncing"),
    ("state.running_now", "同期中 – 同期処理中", "Syncing – a pass is running"),
    ("state.stopped", "停止中", "Stopped"),
    ("sync_on.off", "停止", "Off"),
    ("sync_on.on", "同期", "On"),
    ("target.caldav", "CalDAV", "CalDAV"),
    ("target.google", "Googleカレンダー", "Google Calendar"),
    ("user.only", "管理者としてログインしています。利用者の画面は、ログアウトしてから利用者としてログインすると開けます。", "You are logged in as the administrator. Log out and log in as a user to open the user's screens."),
    ("users.bad_action", "操作（有効にする・無効にする）が指定されていないため、何も変更していません。画面のボタンから操作してください。", "No action (enable or disable) was sent, so nothing was changed. Use the buttons on the page."),
    ("users.bad_id", "表示するユーザーの指定（user=）が正しくありません。ユーザー設定の一覧からユーザーを選んでください。", "The user to show (user=) is missing or not a user ID. Choose a user from the list under Users."),
    ("users.disable", "選択したユーザーを無効にする", "Disable selected"),
    ("users.disabled", "無効", "Disabled"),
    ("users.enable", "選択したユーザーを有効にする", "Enable selected"),
    ("users.enabled", "有効", "Enabled"),
    ("users.last_error", "エラー", "Error"),
    ("users.last_pass", "最終同期", "Last pass"),
    ("users.link", "連携状態", "Link"),
    ("users.login", "ログイン名", "Login name"),
    ("users.name", "名前", "Name"),
    ("users.none", "まだユーザーがいません。ユーザーが一度ログインすると表示されます。", "No users yet. Users appear after their first login."),
    ("users.none_selected", "ユーザーが選択されていないため、何も変更していません。変更するユーザーにチェックを付けてから押してください。", "No user was selected, so nothing was changed. Tick the users to change, then press the button."),
    ("users.not_found", "ID {id} のユーザーは見つかりません。ユーザー設定の一覧からユーザーを選んでください。", "There is no user with ID {id}. Choose a user from the list under Users."),
    ("users.over_license", "ライセンス数を超えるため、有効にできません。", "That would exceed the licensed number of users."),
    ("users.status", "利用ステータス", "Status"),
    ("users.target", "同期対象", "Target"),
    ("users.title", "ユーザー設定", "Users"),
    ("users.unchanged", "選択したユーザーはすでにその利用ステータスのため、何も変更していません。", "The selected users already have that status; nothing was changed."),
    ("users.updated", "利用ステータスを変更しました。", "The status was changed."),
];

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
