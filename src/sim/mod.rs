//! Simulators of the servers this product talks to but that cannot be reached from a test
//! machine: Cybozu Office (`cybozu`) and Google (`google`: OAuth and Calendar API v3). They speak
//! the real wire formats over real loopback HTTP.

pub mod cybozu;
pub mod google;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A small threaded HTTP server that stops when dropped.
pub struct Server {
    http: Arc<tiny_http::Server>,
    address: SocketAddr,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Listens on `address` (e.g. `127.0.0.1:0`) and hands each request to `handle` on one of
    /// `threads` workers.
    pub fn start(
        address: &str,
        threads: usize,
        handle: impl Fn(tiny_http::Request) + Send + Sync + 'static,
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
                    while let Ok(request) = http.recv() {
                        handle(request);
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
