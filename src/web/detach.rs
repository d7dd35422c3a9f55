//! Starting `dncs-sync run --user LOGIN` detached from the CGI, so that 「ただちに同期する」
//! returns at once while the pass runs on after the web server has reaped the CGI.

use std::io;
use std::process::{Command, Stdio};

/// Starts a pass for one user. An error means it could not be started (IIS may forbid leaving
/// its job object); the recorded request is then served by the next scheduled run.
pub fn start_sync_for(login: &str) -> io::Result<()> {
    let program = crate::dev::sibling_program("dncs-sync")
        .ok_or_else(|| io::Error::other("cannot tell where dncs-sync lives"))?;
    if !program.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is missing", program.display()),
        ));
    }
    let mut command = Command::new(program);
    command
        .args(["run", "--user", login])
        // The web server waits for the CGI's output to close: the child must not hold it.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    detach(&mut command);
    // The child is not waited for: it outlives this process by design.
    command.spawn().map(drop)
}

#[cfg(unix)]
fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // A process group of its own: signals aimed at the CGI's group (a web server's timeout) miss it.
    command.process_group(0);
}

#[cfg(windows)]
fn detach(command: &mut Command) {
    use std::os::windows::process::CommandExt;
    const DETACHED_PROCESS: u32 = 0x0000_0008;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    const CREATE_BREAKAWAY_FROM_JOB: u32 = 0x0100_0000;
    command.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_BREAKAWAY_FROM_JOB);
}

#[cfg(not(any(unix, windows)))]
fn detach(_command: &mut Command) {}
