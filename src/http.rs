//! Outbound HTTP: the one configured ureq agent (rustls with the platform's roots, timeouts, the
//! proxy from `PROXY` and never from the environment), a retry helper with exponential backoff and
//! jitter, and a gate that bounds calls in flight across threads.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use rand::Rng;

use crate::config::{mask_url_password, Config};

/// What the agent needs from `dncs.ini`.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub connect_timeout: Duration,
    /// Whole-call limit: a server that trickles bytes must not hold a sync thread forever.
    pub call_timeout: Duration,
    /// `PROXY`, e.g. `http://user:pass@host:port`; `None` means a direct connection.
    pub proxy: Option<String>,
}

impl AgentSettings {
    /// The settings `dncs.ini` gives: `HTTP_CONNECT_TIMEOUT`, `HTTP_TIMEOUT` and `PROXY`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            connect_timeout: config.http_connect_timeout,
            call_timeout: config.http_timeout,
            proxy: config.proxy.as_ref().map(|p| p.url()),
        }
    }

    /// These settings with neither timeout longer than the given limits.
    pub fn limited_to(mut self, connect: Duration, call: Duration) -> Self {
        self.connect_timeout = self.connect_timeout.min(connect);
        self.call_timeout = self.call_timeout.min(call);
        self
    }
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
            proxy: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("PROXY {proxy:?} is not usable: {reason}")]
    BadProxy { proxy: String, reason: String },
}

/// Builds the agent every connector uses.
///
/// Environment proxies are deliberately ignored: under CGI, a client's `Proxy:` request header
/// arrives as `HTTP_PROXY`, so honouring the environment would let any visitor redirect our calls.
pub fn agent(settings: &AgentSettings) -> Result<ureq::Agent, HttpError> {
    let proxy = match settings.proxy.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(ureq::Proxy::new(text).map_err(|e| HttpError::BadProxy {
            proxy: mask_url_password(text),
            reason: e.to_string(),
        })?),
    };
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let config = ureq::Agent::config_builder()
        .proxy(proxy)
        .tls_config(tls)
        .timeout_connect(Some(settings.connect_timeout))
        .timeout_global(Some(settings.call_timeout))
        // Connectors read error bodies (SOAP faults, Google error JSON) themselves.
        .http_status_as_error(false)
        .user_agent(concat!("dncs/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(config.into())
}

/// How often and how patiently to retry a call that failed for a passing reason.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total tries, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(16),
        }
    }
}

impl RetryPolicy {
    /// For tests and simulators: the same logic with millisecond waits.
    pub fn quick() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    /// The wait before try number `attempt + 1` (attempt counts from 1): exponential with
    /// "full jitter", so that threads pressed back by the same busy server do not return in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        if ceiling_ms == 0 {
            return Duration::ZERO;
        }
        let half = ceiling_ms / 2;
        Duration::from_millis(half + rand::thread_rng().gen_range(0..=ceiling_ms - half))
    }
}

/// What a retried call reports: its result, and how many tries it took.
#[derive(Debug)]
pub struct Retried<T, E> {
    pub result: Result<T, E>,
    pub attempts: u32,
}

/// Calls `call` until it succeeds, fails for good (`is_transient` false), or the tries run out.
/// `server_delay` lets a call's error name its own wait (`Retry-After`).
pub fn retry<T, E>(
    policy: &RetryPolicy,
    is_transient: impl Fn(&E) -> bool,
    server_delay: impl Fn(&E) -> Option<Duration>,
    mut call: impl FnMut(u32) -> Result<T, E>,
) -> Retried<T, E> {
    let mut attempt = 1;
    loop {
        match call(attempt) {
            Ok(value) => {
                return Retried {
                    result: Ok(value),
                    attempts: attempt,
                }
            }
            Err(error) if attempt < policy.attempts.max(1) && is_transient(&error) => {
                let wait = server_delay(&error)
                    .map(|d| d.min(policy.max_delay))
                    .unwrap_or_else(|| policy.delay(attempt));
                log::debug!("transient failure on try {attempt}; retrying in {wait:?}");
                std::thread::sleep(wait);
                attempt += 1;
            }
            Err(error) => {
                return Retried {
                    result: Err(error),
                    attempts: attempt,
                }
            }
        }
    }
}

/// A counting gate: at most `limit` holders at once across threads (`CYBOZU_PARALLEL`).
#[derive(Debug)]
pub struct Gate {
    limit: usize,
    in_flight: Mutex<usize>,
    freed: Condvar,
}

impl Gate {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free place; the place is given back when the guard drops.
    pub fn enter(&self) -> GateGuard<'_> {
        let mut count = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        while *count >= self.limit {
            count = self.freed.wait(count).unwrap_or_else(|p| p.into_inner());
        }
        *count += 1;
        GateGuard { gate: self }
    }
}

pub struct GateGuard<'a> {
    gate: &'a Gate,
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let mut count = self
            .gate
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *count = count.saturating_sub(1);
        self.gate.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn limits_cut_longer_timeouts_and_keep_shorter_ones() {
        let settings = AgentSettings {
            connect_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(600),
            proxy: Some("http://proxy.example.jp:8080".into()),
        }
        .limited_to(Duration::from_secs(10), Duration::from_secs(15));
        assert_eq!(settings.connect_timeout, Duration::from_secs(3));
        assert_eq!(settings.call_timeout, Duration::from_secs(15));
        assert_eq!(
            settings.proxy.as_deref(),
            Some("http://proxy.example.jp:8080")
        );
    }

    #[test]
    fn delays_grow_and_stay_under_the_ceiling() {
        let policy = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let fourth = policy.delay(4);
            assert!(fourth >= Duration::from_millis(400) && fourth <= Duration::from_millis(800));
            assert!(policy.delay(30) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn retries_transient_failures_then_succeeds() {
        let outcome = retry(
            &RetryPolicy::quick(),
            |e: &&str| *e == "busy",
            |_| None,
            |attempt| {
                if attempt < 3 {
                    Err("busy")
                } else {
                    Ok(attempt)
                }
            },
        );
        assert_eq!(outcome.result, Ok(3));
        assert_eq!(outcome.attempts, 3);
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let outcome: Retried<(), &str> = retry(
            &RetryPolicy::quick(),
            |e| *e == "busy",
            |_| None,
            |_| Err("denied"),
        );
        assert_eq!(outcome.result, Err("denied"));
        assert_eq!(outcome.attempts, 1);
    }

    #[test]
    fn gives_up_after_the_last_attempt() {
        let outcome: Retried<(), &str> =
            retry(&RetryPolicy::quick(), |_| true, |_| None, |_| Err("busy"));
        assert_eq!(outcome.attempts, RetryPolicy::quick().attempts);
        assert!(outcome.result.is_err());
    }

    #[test]
    fn gate_bounds_concurrency() {
        let gate = Arc::new(Gate::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, inside, peak) = (gate.clone(), inside.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _guard = gate.enter();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn agent_rejects_a_broken_proxy_without_echoing_its_password() {
        let settings = AgentSettings {
            proxy: Some("http://bob:hunter2@[bad".into()),
            ..AgentSettings::default()
        };
        let err = agent(&settings).expect_err("broken proxy refused");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn settings_come_from_the_ini() {
        let ini = b"PROXY=http://carol:pw@proxy.example:3128\nHTTP_TIMEOUT=7\n";
        let config = Config::from_bytes(ini, std::path::Path::new("/tmp/dncs.ini")).expect("ini");
        let settings = AgentSettings::from_config(&config);
        assert_eq!(settings.call_timeout, Duration::from_secs(7));
        assert_eq!(
            settings.proxy.as_deref(),
            Some("http://carol:pw@proxy.example:3128")
        );
        let agent = agent(&settings).expect("agent");
        let proxy = agent.config().proxy().expect("proxy set from the ini");
        assert_eq!(proxy.host(), "proxy.example");
    }

    #[test]
    fn agent_ignores_environment_proxies() {
        // The CGI environment may carry HTTP_PROXY from a request header; it must not matter.
        let agent = agent(&AgentSettings::default()).expect("agent");
        assert!(agent.config().proxy().is_none());
    }
}
