//! The floor of `benches/cgi.rs`: the least a Rust CGI can do — start, print a fixed page, exit.
//! Whatever the `dncs` CGI costs beyond this is dncs's own start-up and work.

use std::io::Write;

const PAGE: &str = "<!doctype html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">\
<title>同期設定</title></head><body><h1>同期設定</h1><p>停止中</p></body></html>\n";

fn main() {
    let mut stdout = std::io::stdout().lock();
    let _ = write!(
        stdout,
        "Status: 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{PAGE}",
        PAGE.len()
    );
    let _ = stdout.flush();
}
