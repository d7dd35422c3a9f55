//! A simulated Cybozu Office 連携API over real HTTP: the same SOAP 1.2 envelopes and faults as a
//! real server, a company to act on, and switchable misbehaviour (busy faults, control
//! characters, per-occurrence repeats, fault status codes, latency, raw replies).

pub mod company;
pub mod seed;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;

pub use company::{Account, Company};

use crate::cybozu::model::parse_datetime;
use crate::cybozu::soap::{self, Service};
use crate::cybozu::{codes, Fault};
use crate::sim::{self, Server};
use crate::xml;

/// Largest request body the simulator reads.
const MAX_REQUEST_BYTES: u64 = 16 * 1024 * 1024;

/// How the simulator misbehaves; every switch is off by default.
#[derive(Debug, Clone)]
pub struct Quirks {
    /// Answer fault 17 (busy) to the next this many calls.
    pub busy_next: u32,
    /// Put raw control characters into the text attributes of replies.
    pub control_chars: bool,
    /// List a repeat series once per occurrence in `ScheduleGetEvents`.
    pub repeat_per_occurrence: bool,
    /// HTTP status of a fault: 500 as the SOAP binding says, or 200 as some servers send.
    pub fault_status: u16,
    /// Send faults as `text/xml` instead of `application/soap+xml`.
    pub fault_as_text_xml: bool,
    /// Wait this long before answering.
    pub latency: Duration,
    /// The code a failed login answers: 19108, or 10101 as Office 10.8 does.
    pub login_failed_code: u32,
    /// Answer the next calls with these bodies verbatim (status, body), for malformed replies.
    pub raw_replies: Vec<(u16, String)>,
    /// Answer the next call of an operation with this fault code.
    pub fail_next: Vec<(String, u32)>,
}

impl Default for Quirks {
    fn default() -> Self {
        Self {
            busy_next: 0,
            control_chars: false,
            repeat_per_occurrence: false,
            fault_status: 500,
            fault_as_text_xml: false,
            latency: Duration::ZERO,
            login_failed_code: codes::LOGIN_FAILED,
            raw_replies: Vec::new(),
            fail_next: Vec::new(),
        }
    }
}

/// One request and its answer, kept when recording is on (tests check them against the schemas).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub operation: String,
    pub request: String,
    pub status: u16,
    pub response: String,
}

#[derive(Default)]
struct Shared {
    company: Mutex<Company>,
    quirks: Mutex<Quirks>,
    journal: Mutex<Journal>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

#[derive(Default)]
struct Journal {
    recording: bool,
    calls: Vec<String>,
    exchanges: Vec<Exchange>,
}

/// A running simulator; it stops when dropped.
pub struct CybozuSim {
    shared: Arc<Shared>,
    server: Server,
}

/// The path the simulator serves, like a real installation's CGI.
pub const CGI_PATH: &str = "/cgi-bin/cbag/ag.cgi";

impl CybozuSim {
    /// Starts on a free loopback port.
    pub fn start(company: Company) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", company)
    }

    pub fn start_on(address: &str, company: Company) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            company: Mutex::new(company),
            ..Shared::default()
        });
        let handler_shared = shared.clone();
        let server = Server::start("cybozu simulator", address, 4, move |request| {
            handle(&handler_shared, request)
        })?;
        Ok(Self { shared, server })
    }

    /// `CYBOZU_URL` for this simulator.
    pub fn url(&self) -> String {
        format!("http://{}{CGI_PATH}", self.server.address())
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.server.address()
    }

    /// The company, to inspect or to change as a browser user would.
    pub fn company(&self) -> MutexGuard<'_, Company> {
        lock(&self.shared.company)
    }

    /// The quirk switches.
    pub fn quirks(&self) -> MutexGuard<'_, Quirks> {
        lock(&self.shared.quirks)
    }

    /// Keeps every request and reply from now on.
    pub fn record(&self, on: bool) {
        lock(&self.shared.journal).recording = on;
    }

    /// The exchanges recorded so far, emptied.
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut lock(&self.shared.journal).exchanges)
    }

    /// The most requests the simulator has had in hand at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Serves until the process ends.
    pub fn serve_forever(self) {
        self.server.wait();
    }

    /// The operations called so far, in order, emptied.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.shared.journal).calls)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An answer before it is sent.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
}

const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";

fn handle(shared: &Shared, request: &mut tiny_http::Request) -> sim::Reply {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let reply = serve(shared, request);
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    reply
}

fn serve(shared: &Shared, request: &mut tiny_http::Request) -> sim::Reply {
    let mut raw = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut raw);
    let page = page_of(request.url());
    let answer = match (request.method(), read) {
        (tiny_http::Method::Post, Ok(_)) => answer(shared, page.as_deref(), &raw),
        (tiny_http::Method::Post, Err(e)) => Answer {
            status: 400,
            content_type: "text/plain; charset=utf-8",
            body: format!("could not read the request: {e}"),
        },
        _ => Answer {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: "<html><body>サイボウズ Office (simulator): POST SOAP requests to ?page=PApiSchedule, PApiBase or PApiUtil.</body></html>".into(),
        },
    };
    let latency = lock(&shared.quirks).latency;
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    let header =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], answer.content_type.as_bytes());
    let mut response =
        tiny_http::Response::from_string(answer.body).with_status_code(answer.status);
    if let Ok(header) = header {
        response.add_header(header);
    }
    response
}

fn page_of(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "page")
        .map(|(_, value)| value.to_string())
}

fn answer(shared: &Shared, page: Option<&str>, raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let cleaned = xml::clean(&text);
    let (operation, result) = match xml::parse(&cleaned) {
        Ok(doc) => match soap::read_request(&doc) {
            Ok(request) => {
                let operation = request.operation.clone();
                (operation, dispatch(shared, page, &request))
            }
            Err(what) => (
                String::new(),
                Err(company::bad_value("envelope", &what).into()),
            ),
        },
        Err(e) => (
            String::new(),
            Err(company::bad_value("XML", &e.to_string()).into()),
        ),
    };
    let quirks = lock(&shared.quirks).clone();
    let answer = match result {
        Ok(body) => Answer {
            status: 200,
            content_type: SOAP_CONTENT_TYPE,
            body: if quirks.control_chars {
                sprinkle_controls(&body)
            } else {
                body
            },
        },
        Err(Reply::Raw(status, body)) => Answer {
            status,
            content_type: SOAP_CONTENT_TYPE,
            body,
        },
        Err(Reply::Fault(fault)) => Answer {
            status: quirks.fault_status,
            content_type: if quirks.fault_as_text_xml {
                "text/xml; charset=utf-8"
            } else {
                SOAP_CONTENT_TYPE
            },
            body: fault.to_envelope(),
        },
    };
    let mut journal = lock(&shared.journal);
    journal.calls.push(operation.clone());
    if journal.recording {
        journal.exchanges.push(Exchange {
            operation,
            request: text.into_owned(),
            status: answer.status,
            response: answer.body.clone(),
        });
    }
    answer
}

enum Reply {
    Fault(Fault),
    Raw(u16, String),
}

impl From<Fault> for Reply {
    fn from(fault: Fault) -> Self {
        Self::Fault(fault)
    }
}

fn dispatch(
    shared: &Shared,
    page: Option<&str>,
    request: &soap::Request<'_, '_>,
) -> Result<String, Reply> {
    {
        let mut quirks = lock(&shared.quirks);
        if !quirks.raw_replies.is_empty() {
            let (status, body) = quirks.raw_replies.remove(0);
            return Err(Reply::Raw(status, body));
        }
        if quirks.busy_next > 0 {
            quirks.busy_next -= 1;
            return Err(Fault::new(
                codes::BUSY,
                "データベースにアクセスが集中しています。",
                "しばらく待ってから再度実行してください。",
            )
            .into());
        }
        if let Some(pos) = quirks
            .fail_next
            .iter()
            .position(|(op, _)| *op == request.operation)
        {
            let (_, code) = quirks.fail_next.remove(pos);
            return Err(Fault::new(
                code,
                "シミュレータが指定された障害を返しました。",
                "injected",
            )
            .into());
        }
    }
    let operation = request.operation.as_str();
    let service = Service::of(operation);
    if service.is_none() || service != page.and_then(Service::from_page) {
        return Err(Fault::new(
            codes::NO_SUCH_API,
            "指定されたAPIは存在しません。",
            &format!("{operation} is not served at page={}", page.unwrap_or("")),
        )
        .into());
    }
    if let Some(expires) = &request.expires {
        match parse_datetime(expires) {
            Ok(at) if at < Utc::now() => {
                return Err(Fault::new(
                    codes::REQUEST_EXPIRED,
                    "リクエストの有効期限が切れています。",
                    "Timestamp/Expires is in the past",
                )
                .into())
            }
            Ok(_) => {}
            Err(_) => return Err(company::bad_value("Timestamp/Expires", expires).into()),
        }
    }
    let login_failed_code = lock(&shared.quirks).login_failed_code;
    let mut company = lock(&shared.company);
    let user_id = match company.account_by_login(&request.login) {
        Some(account) if account.password == request.password => account.user.id,
        _ => {
            return Err(Fault::new(
                login_failed_code,
                "ログインに失敗しました。",
                "ログイン名またはパスワードが正しくありません。",
            )
            .into())
        }
    };
    let repeat_per_occurrence = lock(&shared.quirks).repeat_per_occurrence;
    let returns = if operation == "ScheduleGetEvents" && repeat_per_occurrence {
        per_occurrence_events(&company, user_id, request)?
    } else {
        company.perform(operation, user_id, request.parameters)?
    };
    Ok(soap::response(operation, returns.as_deref()))
}

fn per_occurrence_events(
    company: &Company,
    user_id: u64,
    request: &soap::Request<'_, '_>,
) -> Result<Option<String>, Reply> {
    let params = request
        .parameters
        .ok_or_else(|| company::missing("parameters"))?;
    let read = |name: &str| -> Result<chrono::DateTime<Utc>, Fault> {
        let text = xml::attr(params, name).ok_or_else(|| company::missing(name))?;
        parse_datetime(text).map_err(|_| company::bad_value(name, text))
    };
    let (start, end) = (read("start")?, read("end")?);
    let events: Vec<_> = company
        .window_events(user_id, start, end)
        .into_iter()
        .flat_map(|e| company::expand_occurrences(e, start, end))
        .collect();
    Ok(Some(company::events_xml(&events)))
}

/// Puts a raw control character after the opening quote of each text attribute.
fn sprinkle_controls(body: &str) -> String {
    let mut out = body.to_string();
    for attribute in ["detail=\"", "description=\"", "name=\""] {
        out = out.replace(attribute, &format!("{attribute}\u{1}\u{b}"));
    }
    out
}
