//! Links the `dncs` CGI as a position-dependent executable on Linux (README, "Performance").
//!
//! A CGI process lives for one request, and most of its start-up went to the dynamic loader
//! applying ~40,000 relocations to the position-independent binary (chiefly the time-zone tables),
//! copying 1.1 MB of pages per request. Linked at a fixed address, the binary needs none. Shared
//! libraries, heap and stack stay randomized; `DNCS_PIE=1` at build time keeps the usual PIE link
//! for an administrator who prefers full ASLR to the faster start.
//!
//! A static build (`install/build-release.sh`: `crt-static` with `relocation-model=static`) is
//! already position-dependent, and rustc links it with `-static`; adding `-no-pie` to rustc's
//! `-static-pie` instead would give a binary that cannot start, so a static build gets nothing here.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DNCS_PIE");
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
