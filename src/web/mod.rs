//! The CGI front: requests, responses, routes.
//!
//! [`handle`] turns the outcome of loading `dncs.ini` and of reading the request into one
//! [`Response`]; the `dncs` binary only gathers those two and prints the answer, so tests call
//! [`handle`] directly. Every failure becomes a page that says what went wrong, never an empty 500.

pub mod cgi;
pub mod error_page;

pub use cgi::{Cookie, Method, Request, RequestError, Response, DEFAULT_BODY_LIMIT};
pub use error_page::{error_page, escape_html};

use crate::config::{Config, ConfigError, Lang};

/// The answer to one request.
pub fn handle(
    config: Result<Config, ConfigError>,
    request: Result<Request, RequestError>,
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
    route(&config, &request)
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
        (_, Lang::Ja) => "不正なリクエストです",
        (_, Lang::En) => "Bad request",
    };
    error_page(status, title, &error.to_string(), lang)
}

fn route(config: &Config, request: &Request) -> Response {
    let lang = config.lang;
    if let Method::Other(method) = &request.method {
        return error_page(
            405,
            localized(lang, "許可されていないメソッドです", "Method not allowed"),
            method,
            lang,
        )
        .with_header("Allow", "GET, HEAD, POST");
    }
    match request.page().unwrap_or("") {
        "" => running_page(lang),
        unknown => {
            let message = match lang {
                Lang::Ja => format!("「{unknown}」というページはありません。"),
                Lang::En => format!("There is no page \"{unknown}\"."),
            };
            error_page(
                404,
                localized(lang, "ページが見つかりません", "Page not found"),
                &message,
                lang,
            )
        }
    }
}

/// The placeholder home page until the screens exist: proof that the CGI, its ini and the web server
/// work together, with nothing an outsider could use.
fn running_page(lang: Lang) -> Response {
    let (title, note) = match lang {
        Lang::Ja => (
            "dncs は動作しています",
            "設定ファイル dncs.ini を読み込みました。",
        ),
        Lang::En => ("dncs is running", "dncs.ini was read."),
    };
    Response::html(
        200,
        format!(
            "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n</head>\n\
             <body>\n<h1>{title}</h1>\n<p>{note}</p>\n<p>dncs {version}</p>\n</body>\n</html>\n",
            lang = lang.as_str(),
            version = escape_html(env!("CARGO_PKG_VERSION")),
        ),
    )
}

fn localized(lang: Lang, japanese: &'static str, english: &'static str) -> &'static str {
    match lang {
        Lang::Ja => japanese,
        Lang::En => english,
    }
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
    fn a_good_request_says_dncs_is_running() {
        let response = handle(config(""), request(""));
        assert_eq!(response.status, 200);
        assert!(body(&response).contains("dncs は動作しています"));
        let english = handle(config("LANG=en\n"), request(""));
        assert!(body(&english).contains("dncs is running"));
    }

    #[test]
    fn the_running_page_shows_no_secret() {
        let response = handle(
            config("GOOGLE_CLIENT_SECRET=s3cr3t\nCYBOZU_URL=http://intra/cgi-bin/ag.cgi\n"),
            request(""),
        );
        let text = body(&response);
        assert!(!text.contains("s3cr3t"));
        assert!(!text.contains("intra"));
        assert!(!text.contains("/srv/dncs"));
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
            length: 1 << 20,
            limit: DEFAULT_BODY_LIMIT,
        };
        let response = handle(config(""), Err(too_large));
        assert_eq!(response.status, 413);
        assert!(body(&response).contains("送信されたデータが大きすぎます"));
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
