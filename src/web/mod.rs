//! The CGI front: requests, responses, routes.
//!
//! [`handle`] turns the outcome of loading `dncs.ini` and of reading the request into one
//! [`Response`]; the `dncs` binary only gathers those two and prints the answer (through
//! [`handle_then_exit`]), so tests call [`handle`] directly. Every failure becomes a page that says
//! what went wrong, never an empty 500.

pub mod admin;
pub mod app;
pub mod cgi;
pub mod detach;
pub mod error_page;
pub mod google_link;
pub mod i18n;
pub mod user;

pub use cgi::{Cookie, Method, Request, RequestError, Response, DEFAULT_BODY_LIMIT};
pub use error_page::{error_page, escape_html};

use crate::config::{Config, ConfigError, Lang};

/// The answer to one request.
pub fn handle(
    config: Result<Config, ConfigError>,
    request: Result<Request, RequestError>,
) -> Response {
    answer(config, request, Teardown::Close)
}

/// [`handle`] for a process that exits once the answer is written, as the CGI does: a database
/// connection that has only read is left to the exit instead of being closed.
///
/// Such a close changes nothing on disk (a reader's close keeps the WAL files, see
/// [`Store::keep_wal_on_close`](crate::store::Store::keep_wal_on_close)), but it frees the parsed
/// schema object by object and unlocks, unmaps and closes the files one system call at a time:
/// about 3 % of a page view, which the exit does at once. A connection that wrote is closed as
/// usual, since its close checkpoints the WAL.
pub fn handle_then_exit(
    config: Result<Config, ConfigError>,
    request: Result<Request, RequestError>,
) -> Response {
    answer(config, request, Teardown::LeaveToExit)
}

/// What becomes of a request's database connection once the answer is made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Teardown {
    Close,
    /// Leave a connection that has only read to the process's exit.
    LeaveToExit,
}

fn answer(
    config: Result<Config, ConfigError>,
    request: Result<Request, RequestError>,
    teardown: Teardown,
) -> Response {
    // The ini comes first: without it nothing works, and its message is what the administrator needs.
    let config = match config {
        Ok(config) => config,
        Err(error) => return config_error_page(&error),
    };
    let lang = config.lang;
    let request = match request {
        Ok(request) => request,
        Err(error) => return request_error_page(&error, lang),
    };
    route(&config, &request, teardown)
}

/// The page shown when the CGI itself failed unexpectedly (a panic caught by the binary).
pub fn internal_error_page() -> Response {
    error_page(
        500,
        "内部エラーが発生しました",
        "dncs はこの要求に応答できませんでした。詳細は Web サーバーのエラーログにあります。",
        Lang::Ja,
    )
}

fn config_error_page(error: &ConfigError) -> Response {
    // The language is in the ini that could not be read, so the default one.
    error_page(
        500,
        "設定ファイル dncs.ini に誤りがあります",
        &error.to_string(),
        Lang::Ja,
    )
}

fn request_error_page(error: &RequestError, lang: Lang) -> Response {
    let status = error.status();
    let title = match (status, lang) {
        (413, Lang::Ja) => "送信されたデータが大きすぎます",
        (413, Lang::En) => "The data sent is too large",
        (415, Lang::Ja) => "この形式のデータは受け付けません",
        (415, Lang::En) => "This kind of data is not accepted",
        (_, Lang::Ja) => "不正なリクエストです",
        (_, Lang::En) => "Bad request",
    };
    error_page(status, title, &explain_request_error(error, lang), lang)
}

/// What was wrong with the request, in the screens' language.
fn explain_request_error(error: &RequestError, lang: Lang) -> String {
    if lang == Lang::En {
        return error.to_string();
    }
    match error {
        RequestError::TooLarge { length, limit } => {
            format!("送信されたデータ（{length} バイト）が上限の {limit} バイトを超えています。")
        }
        RequestError::BadLength { value } => {
            format!("CONTENT_LENGTH がないか、数値ではありません（\"{value}\"）。")
        }
        RequestError::UnsupportedType { content_type } => format!(
            "送信されたデータの形式（{content_type}）は受け付けません。dncs の画面は \
             application/x-www-form-urlencoded で送信します。"
        ),
        RequestError::Truncated { expected, received } => format!(
            "送信されたデータが途中で終わっています（{expected} バイトのうち {received} バイト）。"
        ),
        RequestError::BadHost { host } => {
            format!("Host ヘッダー「{host}」に、ホスト名に使えない文字が含まれています。")
        }
        RequestError::MissingHost => {
            "リクエストにホスト名がありません（Host ヘッダーも SERVER_NAME もありません）。".into()
        }
        RequestError::Io(e) => format!("送信されたデータを読み取れませんでした（{e}）。"),
    }
}

fn route(config: &Config, request: &Request, teardown: Teardown) -> Response {
    let lang = config.lang;
    if let Method::Other(method) = &request.method {
        return error_page(
            405,
            lang.pick("許可されていないメソッドです", "Method not allowed"),
            method,
            lang,
        )
        .with_header("Allow", "GET, HEAD, POST");
    }
    let page = request.page().unwrap_or("");
    let handler: fn(&mut app::App<'_>) -> Response = match page {
        "css" => return stylesheet(),
        "" => front,
        "login" => user::login,
        "logout" => user::logout,
        "settings" => user::settings,
        "sync_now" => user::sync_now,
        "history" => user::history,
        "google_auth" => google_link::authorize,
        google_link::CALLBACK_PAGE => google_link::callback,
        "admin_login" => admin::login,
        "admin" => admin::license_page,
        "admin_users" => admin::users,
        "admin_history" => admin::history,
        "admin_ini" => admin::ini,
        unknown => {
            let message = match lang {
                Lang::Ja => format!("「{unknown}」というページはありません。"),
                Lang::En => format!("There is no page \"{unknown}\"."),
            };
            return error_page(
                404,
                lang.pick("ページが見つかりません", "Page not found"),
                &message,
                lang,
            );
        }
    };
    match app::App::open(config, request) {
        Ok(mut app) => {
            let response = handler(&mut app);
            if teardown == Teardown::LeaveToExit && app.store.has_only_read() {
                std::mem::forget(app);
            }
            response
        }
        Err(page) => page,
    }
}

/// The front page: a user's settings, the administrator's license page, or the login.
fn front(app: &mut app::App<'_>) -> Response {
    if app.is_admin() {
        Response::redirect(&app.page_url("admin"))
    } else if app.user_id().is_some() {
        Response::redirect(&app.page_url("settings"))
    } else {
        user::login(app)
    }
}

/// The stylesheet, served by the CGI itself so that an install needs no static file mapping.
fn stylesheet() -> Response {
    Response::text(200, app::STYLESHEET)
        .with_header("Content-Type", "text/css; charset=utf-8")
        .with_header(
            "Cache-Control",
            &format!("public, max-age={}", app::STYLESHEET_MAX_AGE.as_secs()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(ini: &str) -> Result<Config, ConfigError> {
        Config::from_bytes(ini.as_bytes(), Path::new("/srv/dncs/bin/dncs.ini"))
    }

    fn request(query: &str) -> Result<Request, RequestError> {
        let query = query.to_owned();
        Request::from_env(
            move |name| match name {
                "QUERY_STRING" => Some(query.clone()),
                "REQUEST_METHOD" => Some("GET".into()),
                _ => None,
            },
            &mut std::io::empty(),
            DEFAULT_BODY_LIMIT,
        )
    }

    fn body(response: &Response) -> String {
        String::from_utf8(response.body.clone()).expect("utf-8")
    }

    #[test]
    fn the_stylesheet_needs_no_database() {
        let response = handle(config(""), request("page=css"));
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("Content-Type"),
            Some("text/css; charset=utf-8")
        );
    }

    #[test]
    fn a_broken_ini_is_a_500_page_naming_line_and_key() {
        let response = handle(config("\n\nSYNC_THREADS=many\n"), request(""));
        assert_eq!(response.status, 500);
        let text = body(&response);
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("SYNC_THREADS"));
        assert!(text.contains("dncs.ini"));
    }

    #[test]
    fn request_errors_answer_their_status() {
        let too_large = RequestError::TooLarge {
            length: "1048576".into(),
            limit: DEFAULT_BODY_LIMIT,
        };
        let response = handle(config(""), Err(too_large));
        assert_eq!(response.status, 413);
        assert!(body(&response).contains("送信されたデータが大きすぎます"));
        assert!(
            body(&response).contains("（1048576 バイト）が上限の 65536 バイトを超えています"),
            "the detail is in the page's language too: {}",
            body(&response)
        );
        let truncated = || RequestError::Truncated {
            expected: 26,
            received: 25,
        };
        let response = handle(config(""), Err(truncated()));
        assert!(body(&response).contains("26 バイトのうち 25 バイト"));
        let response = handle(config("LANG=en"), Err(truncated()));
        assert!(body(&response).contains("ended after 25 of 26 bytes"));
        let bad_host = RequestError::BadHost {
            host: "<evil>".into(),
        };
        let response = handle(config("LANG=en"), Err(bad_host));
        assert_eq!(response.status, 400);
        assert!(body(&response).contains("&lt;evil&gt;"));
    }

    #[test]
    fn unknown_pages_are_404_and_escaped() {
        let response = handle(
            config(""),
            request("page=%3Cscript%3Ealert(1)%3C/script%3E"),
        );
        assert_eq!(response.status, 404);
        let text = body(&response);
        assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!text.contains("<script>"));
    }

    #[test]
    fn other_methods_are_405() {
        let request = Request::from_env(
            |name| (name == "REQUEST_METHOD").then(|| "DELETE".to_owned()),
            &mut std::io::empty(),
            DEFAULT_BODY_LIMIT,
        );
        let response = handle(config(""), request);
        assert_eq!(response.status, 405);
        assert_eq!(response.header("Allow"), Some("GET, HEAD, POST"));
    }
}
