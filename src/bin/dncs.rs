//! `dncs` (`dncs.cgi` / `dncs.exe`): the CGI launched by Apache or IIS for each request. It gathers
//! the request and `dncs.ini`, lets [`dncs::web::handle_then_exit`] answer, and prints the answer.
//!
//! On Linux the C library calls this program's `main` directly (`no_main`): see [`linux_start`].

// Linux only: its start-up is the one that reads `/proc/self/maps`; Windows keeps Rust's `main`.
#![cfg_attr(target_os = "linux", no_main)]

use std::io::{self, Write};
use std::panic;

use dncs::config::Config;
use dncs::web::{self, Request, DEFAULT_BODY_LIMIT};

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    if answer_request() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Answers the request on stdin and in the environment; false when the answer could not be written.
fn answer_request() -> bool {
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
    // An error means the client went away; nothing is left to tell it.
    written.and_then(|()| stdout.flush()).is_ok()
}

/// The entry point on Linux, without Rust's runtime start-up.
///
/// Before a Rust `main`, the standard library finds the main thread's stack by reading
/// `/proc/self/maps` (to name a stack overflow in its message) and sets up a signal stack for
/// it: 50 µs in a trivial program, and a page view here takes 70 µs less without it (README,
/// "Performance"). The CGI keeps the two things of that start-up it relies on, done here: the
/// standard descriptors are open, and a client that goes away gives a write error, not
/// `SIGPIPE`. What it gives up: a stack overflow ends the process with `SIGSEGV` and no
/// message, as it would in C; the web server still logs the failed request. Arguments and the
/// environment are read as before (the C library hands them to the standard library at load
/// time), and the answer is flushed before `main` returns.
#[cfg(target_os = "linux")]
mod linux_start {
    use std::ffi::{c_char, c_int};

    #[no_mangle]
    extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
        keep_standard_descriptors_open();
        // SAFETY: setting a signal's disposition to "ignore" runs no code of ours in a handler.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        if super::answer_request() {
            0
        } else {
            1
        }
    }

    /// Opens `/dev/null` on any of stdin, stdout and stderr that is closed, as the standard
    /// library does, so that no file the CGI opens (the log) takes stdout's place and gets the page.
    fn keep_standard_descriptors_open() {
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        // SAFETY: `fds` is a valid array of three pollfd, and a zero timeout never blocks.
        let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
        for pollfd in fds {
            let closed = if polled >= 0 {
                pollfd.revents & libc::POLLNVAL != 0
            } else {
                // SAFETY: F_GETFD only reads the descriptor's flags.
                let flags = unsafe { libc::fcntl(pollfd.fd, libc::F_GETFD) };
                flags == -1
            };
            if closed {
                // Open gives the lowest free descriptor, which is this one: the lower ones are open.
                // SAFETY: a NUL-terminated path and plain flags.
                unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            }
        }
    }
}
