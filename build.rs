//! Two build steps for the `dncs` CGI (README, "Performance"): the templates get their words, and
//! on Linux the program is linked at a fixed address.
//!
//! **Localized templates.** Every template in `html/` is written out once per language with each
//! `{{ t("key") }}` replaced by its text from `src/web/catalog.rs` (`src/web/localize.rs` says how),
//! into `$OUT_DIR/localized_templates.rs`, which `web::app` takes in. A CGI process compiles the
//! templates it renders; done at run time, the writing-in took a twentieth of a page view.
//!
//! **Position-dependent link.** A CGI process lives for one request, and most of its start-up went
//! to the dynamic loader applying ~40,000 relocations to the position-independent binary (chiefly
//! the time-zone tables), copying 1.1 MB of pages per request. Linked at a fixed address, the
//! binary needs none. Shared libraries, heap and stack stay randomized; `DNCS_PIE=1` at build time
//! keeps the usual PIE link for an administrator who prefers full ASLR to the faster start.
//!
//! A static build (`install/build-release.sh`: `crt-static` with `relocation-model=static`) is
//! already position-dependent, and rustc links it with `-static`; adding `-no-pie` to rustc's
//! `-static-pie` instead would give a binary that cannot start, so a static build gets nothing here.

use std::fmt::Write as _;
use std::path::Path;

include!("src/web/catalog.rs");
include!("src/web/localize.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=html");
    println!("cargo:rerun-if-changed=src/web/catalog.rs");
    println!("cargo:rerun-if-changed=src/web/localize.rs");
    println!("cargo:rerun-if-env-changed=DNCS_PIE");
    write_localized_templates();

    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let wants_pie = std::env::var_os("DNCS_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    let static_crt = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .unwrap_or_default()
        .split(',')
        .any(|feature| feature == "crt-static");
    if target_os == "linux" && !wants_pie && !static_crt {
        println!("cargo:rustc-link-arg-bin=dncs=-no-pie");
    }
}

/// `JA` and `EN`: (file name, localized source) of every `html/*.html`, by name.
fn write_localized_templates() {
    let html = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("html");
    let mut templates: Vec<(String, String)> = std::fs::read_dir(&html)
        .expect("the html folder is readable")
        .map(|entry| entry.expect("the html folder lists").path())
        .filter(|path| path.extension().is_some_and(|e| e == "html"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()));
            (name, source)
        })
        .collect();
    templates.sort();
    let mut out = String::new();
    for (constant, column) in [("JA", 1), ("EN", 2)] {
        let _ = writeln!(out, "pub const {constant}: &[(&str, &str)] = &[");
        for (name, source) in &templates {
            let localized = localize_template_with(source, |key| words(key, column));
            let _ = writeln!(out, "    ({name:?}, {localized:?}),");
        }
        out.push_str("];\n");
    }
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join("localized_templates.rs"), out)
        .expect("the localized templates are written");
}

/// The text of `key` in the catalog's `column` (1 Japanese, 2 English).
fn words(key: &str, column: usize) -> Option<&'static str> {
    let (_, ja, en) = CATALOG.iter().find(|(k, _, _)| *k == key)?;
    Some(if column == 1 { ja } else { en })
}
