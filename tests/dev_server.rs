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

    let envelope = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Header>
 <Action soap:mustUnderstand="1" xmlns="http://schemas.xmlsoap.org/ws/2003/03/addressing">UtilGetLoginUserId</Action>
 <Security soap:mustUnderstand="1" xmlns="http://schemas.xmlsoap.org/ws/2002/12/secext"><UsernameToken>
  <Username>sato</Username><Password>sato</Password></UsernameToken></Security>
</soap:Header><soap:Body><UtilGetLoginUserId xmlns="http://wsdl.cybozu.co.jp/util_api/2008"><parameters xmlns=""/></UtilGetLoginUserId></soap:Body>
</soap:Envelope>"#;
    let mut response = crate::util::agent()
        .post(&format!("{url}?page=PApiUtil"))
        .header(
            "Content-Type",
            "application/soap+xml; charset=utf-8; action=\"UtilGetLoginUserId\"",
        )
        .send(envelope)
        .expect("the simulator answers");
    assert_eq!(response.status().as_u16(), 200);
    let body = response.body_mut().read_to_string().expect("body");
    assert!(body.contains("<user_id>2</user_id>"), "{body}");
}
