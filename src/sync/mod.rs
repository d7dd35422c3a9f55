//! The sync engine: Cybozu Office ↔ Google Calendar or CalDAV, planned and then applied.
//! (In progress: the pieces below are used by the engine as it is built.)

pub mod backup;
pub mod caldav;
pub mod convert;
pub mod engine;
pub mod google;
pub mod icalendar;
pub mod overrides;
pub mod plan;
pub mod rrule;
pub mod run;
