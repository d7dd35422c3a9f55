//! `dncs-dev cybozu-sim` started as a user would, answering a SOAP request over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn cybozu_sim_answers_util_get_login_user_id() {
    let child = Command::new(env!("CARGO_BIN_EXE_dncs-dev"))
        .args(["cybozu-sim", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dncs-dev starts");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("text");
    let url = first
        .split("CYBOZU_URL=")
        .nth(1)
        .expect("the URL is printed")
        .trim()
        .to_string();
    let rest: Vec<String> = lines.take(3).map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("takahashi")),
        "demo logins printed: {rest:?}"
    );

    // The same request the README shows with curl.
    let envelope = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/util-get-login-user-id.xml"
    ))
    .expect("fixture");
    let mut response = crate::util::agent()
        .post(&format!("{url}?page=PApiUtil"))
        .header(
            "Content-Type",
            "application/soap+xml; charset=utf-8; action=\"UtilGetLoginUserId\"",
        )
        .send(envelope.as_str())
        .expect("the simulator answers");
    assert_eq!(response.status().as_u16(), 200);
    let body = response.body_mut().read_to_string().expect("body");
    assert!(body.contains("<user_id>1</user_id>"), "{body}");
}
