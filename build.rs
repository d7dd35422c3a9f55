//! Three build steps for the `dncs` CGI (README, "Performance"): the templates get their words,
//! and on Linux the program is linked at a fixed address with the code a page view runs laid out
//! first.
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
//!
//! **Hot code first.** The functions a page view runs are spread over the program's 5 MB of code,
//! among the Google, CalDAV and sync code it never runs, and each page of code a process touches
//! first costs it a page fault. `src/bin/dncs-hot-code.txt` names them (as section names, hashes
//! left out so that a new compiler or dependency does not make them stale); a linker script made
//! from it gathers them at the start of the code. A name that no longer matches only costs that
//! function its place; `DNCS_BENCH_HOT_CODE=1 cargo bench --bench cgi` writes the list anew.
//! `DNCS_HOT_CODE=0` at build time leaves the layout to the linker, for a linker that takes no
//! `INSERT` script (mold, gold).

use std::fmt::Write as _;
use std::path::Path;

include!("src/web/catalog.rs");
include!("src/web/localize.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=html");
    println!("cargo:rerun-if-changed=src/web/catalog.rs");
    println!("cargo:rerun-if-changed=src/web/localize.rs");
    println!("cargo:rerun-if-changed=src/bin/dncs-hot-code.txt");
    println!("cargo:rerun-if-env-changed=DNCS_PIE");
    println!("cargo:rerun-if-env-changed=DNCS_HOT_CODE");
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
    // ELF linkers (GNU ld, lld) read the script; the Windows (PE) link keeps its own layout.
    let hot_code = std::env::var_os("DNCS_HOT_CODE").is_none_or(|v| v != "0");
    if target_os == "linux" && hot_code {
        let script = write_hot_code_script();
        println!("cargo:rustc-link-arg-bin=dncs=-T");
        println!("cargo:rustc-link-arg-bin=dncs={}", script.display());
    }
}

/// `$OUT_DIR/hot-code.ld`: an output section `.text.hot` of the listed functions' sections, put
/// before `.text` (`INSERT` keeps the linker's own script for everything else).
fn write_hot_code_script() -> std::path::PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
    let list = Path::new(&manifest).join("src/bin/dncs-hot-code.txt");
    let text = std::fs::read_to_string(&list)
        .unwrap_or_else(|e| panic!("{} cannot be read: {e}", list.display()));
    let mut script = String::from("SECTIONS\n{\n  .text.hot :\n  {\n");
    for name in text.lines().map(str::trim) {
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if !is_section_pattern(name) {
            println!(
                "cargo:warning=src/bin/dncs-hot-code.txt: `{name}` is not a section name; skipped"
            );
            continue;
        }
        // `#[cold]` functions (a vector's growth, say) sit in `.text.unlikely.*`.
        let _ = writeln!(script, "    *(.text.{name} .text.unlikely.{name})");
    }
    script.push_str("  }\n}\nINSERT BEFORE .text;\n");
    let path =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("hot-code.ld");
    std::fs::write(&path, script).expect("the hot code script is written");
    path
}

/// A symbol name as it appears in a section name, `*` standing for a left-out hash: nothing a
/// linker script would read as syntax.
fn is_section_pattern(name: &str) -> bool {
    name.chars().any(|c| c != '*')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$' | '*'))
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
