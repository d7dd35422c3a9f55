//! Simulators of the servers this product talks to but that cannot be reached from a test
//! machine: Cybozu Office (`cybozu`) and Google (`google`: OAuth and Calendar API v3). They speak
//! the real wire formats over real loopback HTTP.

pub mod cybozu;
pub mod google;

use std::io::Cursor;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What a handler answers; the server sends it.
pub type Reply = tiny_http::Response<Cursor<Vec<u8>>>;

/// A small threaded HTTP server that stops when dropped.
pub struct Server {
    http: Arc<tiny_http::Server>,
    address: SocketAddr,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Listens on `address` (e.g. `127.0.0.1:0`) and hands each request to `handle` on one of
    /// `threads` workers, then sends its reply. `name` (e.g. "cybozu simulator") begins the log
    /// lines and the answer to a request whose handler panicked.
    pub fn start(
        name: &'static str,
        address: &str,
        threads: usize,
        handle: impl Fn(&mut tiny_http::Request) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let http = tiny_http::Server::http(address).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, e.to_string())
        })?;
        let address = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("the simulator is not on an IP socket"))?;
        let http = Arc::new(http);
        let handle = Arc::new(handle);
        let workers = (0..threads.max(1))
            .map(|_| {
                let (http, handle) = (http.clone(), handle.clone());
                std::thread::spawn(move || {
                    // `recv` fails once `unblock` is called on drop.
                    while let Ok(mut request) = http.recv() {
                        // A panic answers its own request and leaves the worker serving: a few
                        // bad requests would otherwise take the whole simulator down.
                        let reply =
                            std::panic::catch_unwind(AssertUnwindSafe(|| handle(&mut request)))
                                .unwrap_or_else(|payload| panicked(name, &*payload));
                        if let Err(e) = request.respond(reply) {
                            log::debug!("{name}: could not send a reply: {e}");
                        }
                    }
                })
            })
            .collect();
        Ok(Self {
            http,
            address,
            workers,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until the process ends (the `dncs-dev` simulators).
    pub fn wait(mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// The 500 for a request whose handler panicked; the panic hook has written where to stderr.
fn panicked(name: &str, payload: &(dyn std::any::Any + Send)) -> Reply {
    let detail = crate::panics::message(payload).unwrap_or("a panic without a message");
    log::warn!("{name}: a handler panicked: {detail}");
    let mut reply = tiny_http::Response::from_string(format!(
        "the {name} failed on this request (a panic: {detail})\n"
    ))
    .with_status_code(500);
    if let Ok(header) =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/plain; charset=utf-8"[..])
    {
        reply.add_header(header);
    }
    reply
}

impl Drop for Server {
    fn drop(&mut self) {
        for _ in &self.workers {
            self.http.unblock();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::Server;

    /// The status line and the body of a GET of `path`.
    fn get(server: &Server, path: &str) -> (String, String) {
        let mut stream = std::net::TcpStream::connect(server.address()).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, body.to_string())
    }

    #[test]
    fn a_handler_that_panics_answers_500_and_the_server_keeps_serving() {
        // One worker: were a panic to end it, the request after the first panic would hang.
        let server = Server::start("test simulator", "127.0.0.1:0", 1, |request| {
            if request.url() == "/bad" {
                panic!("no such record");
            }
            tiny_http::Response::from_string("fine")
        })
        .expect("server");
        for _ in 0..3 {
            let (status, body) = get(&server, "/bad");
            assert!(status.contains(" 500 "), "{status}");
            assert!(
                body.contains("the test simulator failed on this request"),
                "{body}"
            );
            assert!(body.contains("no such record"), "{body}");
        }
        let (status, body) = get(&server, "/good");
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(body, "fine");
    }
}
