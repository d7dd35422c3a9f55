//! The Cybozu Office connector: a typed client for the SOAP 連携API (`client`), its wire format
//! (`soap`), the schedule model (`model`) and repeat-rule expansion (`repeat`).

pub mod client;
pub mod model;
pub mod repeat;
pub mod soap;

pub use client::{Client, Credentials, RepeatScope, RepeatSplit};
pub use model::{
    ChangeKind, DateSpan, Event, EventType, Exclusion, Facility, ItemChange, ItemVersion, Member,
    Organization, Profiles, PublicType, RepeatCondition, RepeatInfo, RepeatKind, TimeSpan, User,
    When,
};
pub use soap::Fault;

/// Fault codes this product reacts to (DESIGN §4).
pub mod codes {
    /// 「データベースにアクセスが集中しています」: retry with backoff.
    pub const BUSY: u32 = 17;
    pub const NO_SUCH_EVENT: u32 = 501;
    pub const END_BEFORE_START: u32 = 10401;
    /// What Office 10.8 answers for a failed login instead of 19108.
    pub const LOGIN_FAILED_10_8: u32 = 10101;
    pub const FACILITY_DOUBLE_BOOKED: u32 = 14312;
    pub const NO_SUCH_API: u32 = 19103;
    pub const REQUEST_EXPIRED: u32 = 19104;
    pub const MISSING_PARAMETER: u32 = 19105;
    pub const BAD_VALUE: u32 = 19106;
    pub const LOGIN_FAILED: u32 = 19108;
}

/// What kind of refusal a fault is, for callers that react differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    NoSuchEvent,
    EndBeforeStart,
    FacilityDoubleBooked,
    NoSuchApi,
    RequestExpired,
    MissingParameter,
    BadValue,
    Other,
}

impl FaultKind {
    pub fn of(fault: &Fault) -> Self {
        match fault.number() {
            Some(codes::NO_SUCH_EVENT) => Self::NoSuchEvent,
            Some(codes::END_BEFORE_START) => Self::EndBeforeStart,
            Some(codes::FACILITY_DOUBLE_BOOKED) => Self::FacilityDoubleBooked,
            Some(codes::NO_SUCH_API) => Self::NoSuchApi,
            Some(codes::REQUEST_EXPIRED) => Self::RequestExpired,
            Some(codes::MISSING_PARAMETER) => Self::MissingParameter,
            Some(codes::BAD_VALUE) => Self::BadValue,
            _ => Self::Other,
        }
    }
}

/// Everything that can go wrong talking to Cybozu Office.
#[derive(Debug, thiserror::Error)]
pub enum CybozuError {
    #[error("Cybozu Office refused the login name or password (fault {code})")]
    LoginFailed { code: u32 },
    #[error("Cybozu Office stayed busy (fault 17, データベースにアクセスが集中しています) through {attempts} tries of {operation}")]
    Busy { operation: String, attempts: u32 },
    #[error("Cybozu Office refused {operation}: {fault}")]
    Fault {
        operation: String,
        kind: FaultKind,
        fault: Box<Fault>,
    },
    #[error("could not reach Cybozu Office at {url} for {operation}: {reason}")]
    Transport {
        operation: String,
        url: String,
        reason: String,
    },
    #[error("Cybozu Office answered {operation} with HTTP {status} and no SOAP reply: {snippet}")]
    Http {
        operation: String,
        status: u16,
        snippet: String,
    },
    #[error("Cybozu Office's reply to {operation} is malformed: {what}")]
    Malformed { operation: String, what: String },
}

impl CybozuError {
    pub fn fault_kind(&self) -> Option<FaultKind> {
        match self {
            Self::Fault { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub fn is_no_such_event(&self) -> bool {
        self.fault_kind() == Some(FaultKind::NoSuchEvent)
    }

    /// Whether the stored password no longer works: the user must log in again on the screen.
    pub fn is_login_failure(&self) -> bool {
        matches!(self, Self::LoginFailed { .. })
    }

    /// Whether Cybozu Office cannot serve any call now (not reached, busy through every retry,
    /// answering without SOAP), as opposed to refusing this one request.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Transport { .. } | Self::Busy { .. } | Self::Http { .. }
        )
    }
}
