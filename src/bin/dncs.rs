//! `dncs` (`dncs.cgi` / `dncs.exe`): the CGI launched by Apache or IIS for each request. It gathers
//! the request and `dncs.ini`, lets [`dncs::web::handle_then_exit`] answer, and prints the answer.

use std::io::{self, Write};
use std::panic;
use std::process::ExitCode;

use dncs::config::Config;
use dncs::web::{self, Request, DEFAULT_BODY_LIMIT};

fn main() -> ExitCode {
    // The last resort: a bug still answers a readable 500 page instead of an empty one. The default
    // panic hook has already written the details to stderr, which the web server logs.
    let response = panic::catch_unwind(|| {
        let request = Request::from_env(
            // A variable that is not UTF-8 is read lossily rather than treated as absent.
            |name| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned()),
            &mut io::stdin().lock(),
            DEFAULT_BODY_LIMIT,
        );
        let config = Config::locate_and_load();
        match &config {
            // What goes wrong behind a page (Cybozu Office not answering, a pass that cannot be
            // started) is logged with the scheduled runs: IIS keeps no CGI's stderr.
            Ok(config) => dncs::logfile::init_on_first_record(
                &config.data_dir,
                config.log_level,
                dncs::clock::now(),
            ),
            Err(error) => eprintln!("dncs: {error}"),
        }
        web::handle_then_exit(config, request)
    })
    .unwrap_or_else(|_| web::internal_error_page());

    let mut stdout = io::stdout().lock();
    let is_head = std::env::var_os("REQUEST_METHOD").is_some_and(|method| method == "HEAD");
    let written = if is_head {
        response.write_cgi_head(&mut stdout)
    } else {
        response.write_cgi(&mut stdout)
    };
    match written.and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // The client went away; nothing is left to tell it.
        Err(_) => ExitCode::FAILURE,
    }
}
