//! The screens' words in Japanese (the default) and English (`LANG=en`), looked up by key from the
//! templates (`{{ t("key") }}`) and the handlers. The state strings are a contract with users.

use crate::config::Lang;

/// The text for `key`; an unknown key shows itself, so a missing entry is visible, not blank.
pub fn text(lang: Lang, key: &str) -> &str {
    match CATALOG.iter().find(|(k, _, _)| *k == key) {
        Some((_, ja, en)) => match lang {
            Lang::Ja => ja,
            Lang::En => en,
        },
        None => key,
    }
}

/// (key, 日本語, English)
const CATALOG: &[(&str, &str, &str)] = &[
    ("app.name", "Cybozu Office カレンダー同期", "Cybozu Office calendar sync"),
    ("nav.settings", "同期設定", "Sync settings"),
    ("nav.history", "同期履歴", "Sync history"),
    ("nav.logout", "ログアウト", "Log out"),
    ("nav.admin_license", "ライセンス管理", "License"),
    ("nav.admin_users", "ユーザー設定", "Users"),
    ("nav.admin_ini", "設定ファイル", "Configuration"),
    // Login
    ("login.title", "ログイン", "Log in"),
    ("login.intro", "サイボウズ Office のログイン名とパスワードでログインしてください。", "Log in with your Cybozu Office login name and password."),
    ("login.name", "ログイン名", "Login name"),
    ("login.password", "パスワード", "Password"),
    ("login.submit", "ログイン", "Log in"),
    ("login.failed", "ログイン名またはパスワードが正しくありません。", "The login name or password is not correct."),
    ("login.throttled", "ログインの失敗が続いたため、しばらくログインできません。15分ほど待ってから、もう一度お試しください。", "Too many failed logins. Please wait about 15 minutes and try again."),
    ("login.unreachable", "サイボウズ Office に接続できません。しばらくしてからもう一度お試しください。問題が続く場合は管理者に連絡してください。", "Cybozu Office cannot be reached. Please try again later, and tell your administrator if it continues."),
    ("login.admin_link", "管理者の方はこちら", "Administrators"),
    ("session.expired", "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。", "You were logged out after a period of inactivity. Please log in again."),
    ("csrf.failed", "画面の有効期限が切れたか、不正な送信です。画面を開き直してから、もう一度操作してください。", "This page has expired or the form was not sent from it. Open the page again and retry."),
    // Settings
    ("settings.title", "同期設定", "Sync settings"),
    ("settings.state", "状態", "State"),
    ("state.running", "同期中", "Syncing"),
    ("state.running_now", "同期中 – 同期処理中", "Syncing – a pass is running"),
    ("state.stopped", "停止中", "Stopped"),
    ("state.disabled", "管理者により無効とされています", "Disabled by the administrator"),
    ("settings.sync_now", "ただちに同期する", "Sync now"),
    ("settings.sync_started", "同期を開始しました。", "A sync pass has started."),
    ("settings.sync_queued", "同期をすぐに開始できなかったため、次の定期実行（1分以内）で同期します。", "The sync could not be started at once; the next scheduled run (within a minute) will do it."),
    ("settings.target", "同期対象", "Sync with"),
    ("target.google", "Googleカレンダー", "Google Calendar"),
    ("target.caldav", "CalDAV", "CalDAV"),
    ("settings.sync_on", "同期状態", "Sync"),
    ("sync_on.on", "同期", "On"),
    ("sync_on.off", "停止", "Off"),
    ("settings.not_permitted", "管理者により利用が許可されていないため、同期を開始できません。", "The administrator has not permitted you to sync."),
    ("settings.calendar_id", "カレンダーID", "Calendar ID"),
    ("settings.calendar_id_hint", "空欄の場合はメインのカレンダー（primary）と同期します。", "Leave empty to sync with your main calendar (primary)."),
    ("settings.calendar_warning", "カレンダーIDまたは同期対象を変更すると、それまでの同期情報は失われ新規に同期し直します。", "Changing the calendar ID or the sync target drops the sync information; everything is synced anew."),
    ("settings.sync_info_dropped", "それまでの同期情報は失われ新規に同期し直します。", "The earlier sync information was dropped; everything will be synced anew."),
    ("settings.google_auth", "Google認証", "Google authorization"),
    ("google.none", "未認証", "Not authorized"),
    ("google.linked", "認証済です", "Authorized"),
    ("google.relink", "認証済(再認証が必要です)", "Authorized (please authorize again)"),
    ("google.button", "認証", "Authorize"),
    ("google.linked_now", "Google の認証が完了しました。", "Google authorization is complete."),
    ("google.not_configured", "Google の OAuth クライアント（GOOGLE_CLIENT_ID、GOOGLE_CLIENT_SECRET）が dncs.ini に設定されていません。管理者に連絡してください。", "The Google OAuth client (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET) is not set in dncs.ini. Please tell your administrator."),
    ("google.no_relay", "GOOGLE_AUTH_MODE=relay ですが、中継ページの URL（GOOGLE_REDIRECT_URI）が dncs.ini に設定されていません。管理者に連絡してください。", "GOOGLE_AUTH_MODE=relay, but the relay page (GOOGLE_REDIRECT_URI) is not set in dncs.ini. Please tell your administrator."),
    ("google.foreign_session", "認証を始めたときのログインが見つかりません。同期設定画面にログインし直し、もう一度「認証」を押してください。", "The login that started the authorization was not found. Log in to the settings again and press Authorize once more."),
    ("google.bad_state", "この認証の応答は無効です（使用済み、別のブラウザーで開始された、または改ざんされています）。何も保存していません。同期設定画面から、もう一度「認証」を押してください。", "This authorization answer is not valid (already used, started in another browser, or altered). Nothing was saved. Press Authorize again on the settings page."),
    ("google.expired", "認証の有効期限（10分）が切れました。何も保存していません。同期設定画面から、もう一度「認証」を押してください。", "The authorization took longer than 10 minutes. Nothing was saved. Press Authorize again on the settings page."),
    ("google.access_denied", "Google での許可が拒否されました。カレンダーを同期するには、もう一度「認証」を押し、Google の画面で「許可」を選んでください。", "Access was denied at Google. To sync your calendar, press Authorize again and choose Allow on Google's page."),
    ("google.admin_policy_enforced", "Google Workspace の管理者が、このアプリによるカレンダーへのアクセスを制限しています。社内の Google 管理者に、このアプリの許可を依頼してください。", "Your Google Workspace administrator restricts this app's access to calendars. Ask your Google administrator to allow the app."),
    ("google.org_internal", "この OAuth クライアントは別の組織の内部向けに設定されているため、あなたのアカウントでは使えません。dncs の管理者に Google クライアントの設定を確認してもらってください。", "This OAuth client is limited to another organisation's users. Ask the dncs administrator to check the Google client settings."),
    ("google.refused", "Google が認証を完了しませんでした。もう一度「認証」を押してください。", "Google did not complete the authorization. Press Authorize again."),
    ("google.invalid_grant", "認証コードが無効か期限切れです。同期設定画面から、もう一度「認証」を押してください。", "The authorization code is invalid or has expired. Press Authorize again on the settings page."),
    ("google.invalid_client", "Google が OAuth クライアントを拒否しました。dncs.ini の GOOGLE_CLIENT_ID と GOOGLE_CLIENT_SECRET を管理者に確認してもらってください。", "Google refused the OAuth client. Ask the administrator to check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET in dncs.ini."),
    ("google.exchange_failed", "Google との通信に失敗しました。しばらくしてから、もう一度「認証」を押してください。", "Talking to Google failed. Press Authorize again a little later."),
    ("settings.caldav_url", "CalDAV URL", "CalDAV URL"),
    ("settings.caldav_user", "CalDAV ユーザー名", "CalDAV user name"),
    ("settings.caldav_password", "CalDAV パスワード", "CalDAV password"),
    ("settings.caldav_password_hint", "変更する場合のみ入力してください。保存されたパスワードは表示されません。", "Fill in only to change it. A stored password is never shown."),
    ("settings.caldav_password_stored", "パスワードは保存されています。", "A password is stored."),
    ("settings.save", "保存", "Save"),
    ("caldav.connected", "CalDAV カレンダー「{name}」に接続できました。", "Connected to the CalDAV calendar \"{name}\"."),
    ("caldav.unauthorized", "CalDAV サーバーがユーザー名またはパスワードを受け付けませんでした。入力を確認してください。設定は保存していません。", "The CalDAV server refused the user name or password. Please check them; nothing was saved."),
    ("caldav.no_calendar", "この URL ではカレンダーが見つかりませんでした。カレンダーまたはサーバーの URL を確認してください。設定は保存していません。", "No calendar was found at this URL. Please check the calendar or server URL; nothing was saved."),
    ("caldav.unreachable", "CalDAV サーバーに接続できませんでした。URL を確認してください。設定は保存していません。", "The CalDAV server could not be reached. Please check the URL; nothing was saved."),
    ("settings.saved", "設定を保存しました。", "The settings were saved."),
    ("settings.bad_url", "CalDAV URL は http:// または https:// で始まる URL を入力してください。", "The CalDAV URL must start with http:// or https://."),
    ("settings.last_pass", "最終同期", "Last pass"),
    ("settings.last_error", "前回のエラー", "Last error"),
    ("settings.never", "まだ同期していません", "Not synced yet"),
    // History
    ("history.title", "同期履歴", "Sync history"),
    ("history.empty", "同期履歴はまだありません。", "No sync history yet."),
    ("history.time", "日時", "Time"),
    ("history.to_remote", "カレンダーへ", "To the calendar"),
    ("history.to_cybozu", "サイボウズへ", "To Cybozu"),
    ("history.counts", "追加 {created} / 変更 {updated} / 削除 {deleted}", "added {created} / changed {updated} / deleted {deleted}"),
    ("history.adopted", "対応付け", "Paired"),
    ("history.conflicts", "競合", "Conflicts"),
    ("history.errors", "エラー", "Errors"),
    ("history.newer", "新しい履歴", "Newer"),
    ("history.older", "古い履歴", "Older"),
    ("history.of", "{name} さんの同期履歴", "Sync history of {name}"),
    // Admin
    ("admin.login_title", "管理者ログイン", "Administrator login"),
    ("admin.password", "管理者パスワード", "Administrator password"),
    ("admin.no_password", "管理者パスワードが設定されていません。サーバーで dncs-sync admin-password を実行して設定してください。", "No administrator password is set. Run dncs-sync admin-password on the server to set one."),
    ("admin.failed", "パスワードが正しくありません。", "The password is not correct."),
    ("admin.only", "このページは管理者のみが利用できます。", "This page is for administrators only."),
    ("license.title", "ライセンス管理", "License"),
    ("license.version", "ご利用中のバージョン", "Version in use"),
    ("license.seats", "利用ユーザー数", "Users enabled"),
    ("license.unlimited", "無制限", "unlimited"),
    ("license.last_run", "定期実行（dncs-sync run）", "Scheduled run (dncs-sync run)"),
    ("license.never_run", "まだ実行されていません", "not run yet"),
    ("license.schedule_silent", "dncs-sync run が 10 分以上起動されていません。同期は行われず、すぐに開始できなかった「ただちに同期する」も実行されません。cron またはタスク スケジューラで毎分実行されるよう設定してください（install/cron.txt、install/task-scheduler.txt）。", "dncs-sync run has not been started for 10 minutes or more: nothing is synced, and a 「ただちに同期する」 that could not start at once is never served. Have cron or the Task Scheduler run it every minute (install/cron.txt, install/task-scheduler.txt)."),
    ("license.over", "ライセンス数を超えるユーザーが有効になっていたため、すべてのユーザーを無効・停止にしました。連携情報とカレンダーIDは保持されています。ユーザー設定で利用するユーザーを有効にしてください。", "More users were enabled than the license allows, so every user was disabled and stopped. Links and calendar IDs are kept. Enable the users who should sync under Users."),
    ("users.title", "ユーザー設定", "Users"),
    ("users.login", "ログイン名", "Login name"),
    ("users.name", "名前", "Name"),
    ("users.status", "利用ステータス", "Status"),
    ("users.enabled", "有効", "Enabled"),
    ("users.disabled", "無効", "Disabled"),
    ("users.target", "同期対象", "Target"),
    ("users.link", "連携状態", "Link"),
    ("users.last_pass", "最終同期", "Last pass"),
    ("users.last_error", "エラー", "Error"),
    ("users.enable", "選択したユーザーを有効にする", "Enable selected"),
    ("users.disable", "選択したユーザーを無効にする", "Disable selected"),
    ("users.none", "まだユーザーがいません。ユーザーが一度ログインすると表示されます。", "No users yet. Users appear after their first login."),
    ("users.over_license", "ライセンス数を超えるため、有効にできません。", "That would exceed the licensed number of users."),
    ("users.updated", "利用ステータスを変更しました。", "The status was changed."),
    ("ini.title", "設定ファイル（dncs.ini）", "Configuration (dncs.ini)"),
    ("ini.hint", "現在有効な値です。秘密の値は伏せています。変更はサーバー上の dncs.ini を編集してください。", "The values in effect; secrets are masked. Edit dncs.ini on the server to change them."),
    ("common.back", "戻る", "Back"),
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
    fn keys_are_unique_and_english_is_complete() {
        let mut keys: Vec<_> = CATALOG.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), before, "a key appears twice");
        assert!(CATALOG
            .iter()
            .all(|(_, ja, en)| !ja.is_empty() && !en.is_empty()));
    }

    #[test]
    fn unknown_keys_show_themselves() {
        assert_eq!(text(Lang::En, "no.such.key"), "no.such.key");
    }
}
