// Writing the words into a template, shared by `build.rs` (which does it to every template in
// `html/` when the program is built) and `i18n`'s tests: both take this file in with `include!`, so
// it uses nothing but `std`.

/// `source`, a template, with each `{{ t("key") }}` whose key `text` knows replaced by the key's
/// text, escaped as the template engine escapes a value for HTML, so that the page reads the same.
///
/// A CGI process compiles the templates it renders, and a page holds some forty such calls: as
/// plain text they are neither parsed nor called. Any other use of `t`, such as
/// `{{ a or t("key") }}`, an unknown key and a text that holds template syntax stay calls of the
/// `t` function the templates also get.
fn localize_template_with<'w>(source: &str, text: impl Fn(&str) -> Option<&'w str>) -> String {
    const OPEN: &str = "{{ t(\"";
    const CLOSE: &str = "\") }}";
    let mut localized = String::with_capacity(source.len() * 2);
    let mut rest = source;
    while let Some(brace) = rest.find('{') {
        let (before, from_brace) = rest.split_at(brace);
        localized.push_str(before);
        let call = from_brace.strip_prefix(OPEN).and_then(|after_open| {
            let key_length = after_open
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
                .count();
            let (key, after_key) = after_open.split_at(key_length);
            let after_call = after_key.strip_prefix(CLOSE)?;
            let words = text(key)?;
            (!holds_template_syntax(words)).then_some((words, after_call))
        });
        match call {
            Some((words, after_call)) => {
                push_html_escaped(&mut localized, words);
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

/// The characters the template engine's HTML auto-escaping replaces, with what it writes instead.
fn push_html_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '/' => out.push_str("&#x2f;"),
            c => out.push(c),
        }
    }
}
