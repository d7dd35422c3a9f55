//! The plain error page: self-contained HTML that needs no template, so that it still works when
//! `dncs.ini` or the `html/` folder is what is broken.

use crate::config::Lang;

use super::cgi::Response;

/// `text` safe to place in HTML text and in quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A page with `title` and `message` (both escaped here; line breaks in `message` are kept).
pub fn error_page(status: u16, title: &str, message: &str, lang: Lang) -> Response {
    let hint = match lang {
        Lang::Ja => "解決しない場合は、システム管理者にお問い合わせください。",
        Lang::En => "If this persists, please contact your system administrator.",
    };
    let page = format!(
        "<!DOCTYPE html>\n\
         <html lang=\"{lang}\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <title>{title}</title>\n\
         <style>\
         body{{font-family:sans-serif;margin:2em;color:#222}}\
         h1{{font-size:1.3em;border-bottom:2px solid #c33;padding-bottom:.3em}}\
         .message{{white-space:pre-wrap;background:#f6f6f6;padding:1em;border:1px solid #ddd}}\
         .status{{color:#777;font-size:.9em}}\
         </style>\n\
         </head>\n\
         <body>\n\
         <h1>{title}</h1>\n\
         <p class=\"message\">{message}</p>\n\
         <p>{hint}</p>\n\
         <p class=\"status\">HTTP {status} — dncs</p>\n\
         </body>\n\
         </html>\n",
        lang = lang.as_str(),
        title = escape_html(title),
        message = escape_html(message),
    );
    Response::html(status, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_html_covers_markup_ampersands_and_quotes() {
        assert_eq!(
            escape_html("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(escape_html("a & b &amp;"), "a &amp; b &amp;amp;");
        assert_eq!(
            escape_html("\"double\" 'single'"),
            "&quot;double&quot; &#39;single&#39;"
        );
        assert_eq!(escape_html("日本語 plain"), "日本語 plain");
        assert_eq!(escape_html(""), "");
    }

    #[test]
    fn the_page_escapes_title_and_message() {
        let response = error_page(400, "<b>title</b>", "x=\"<img src=x>\"", Lang::Ja);
        let body = String::from_utf8(response.body.clone()).expect("utf-8");
        assert!(body.contains("<title>&lt;b&gt;title&lt;/b&gt;</title>"));
        assert!(body.contains("x=&quot;&lt;img src=x&gt;&quot;"));
        assert!(!body.contains("<img"));
        assert!(body.contains("<html lang=\"ja\">"));
        assert!(body.contains("システム管理者"));
        assert_eq!(response.status, 400);
        assert_eq!(
            response.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
    }

    #[test]
    fn english_when_asked() {
        let body =
            String::from_utf8(error_page(404, "Not found", "", Lang::En).body).expect("utf-8");
        assert!(body.contains("<html lang=\"en\">"));
        assert!(body.contains("contact your system administrator"));
    }
}
