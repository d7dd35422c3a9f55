//! dncs: two-way sync of Cybozu Office schedules with Google Calendar or CalDAV.
//!
//! The library holds everything; the binaries in `src/bin/` only parse arguments and call it.
//! Dependencies point one way: `web` and `sync` use the connectors (`cybozu`, `google`, `caldav`),
//! connectors never use `web` or `sync`.
pub mod caldav;
pub mod clock;
pub mod config;
pub mod cybozu;
pub mod dev;
pub mod google;
pub mod hash;
pub mod http;
pub mod ical;
pub mod legacy;
pub mod license;
pub mod logfile;
pub mod panics;
pub mod password;
pub mod secret;
pub mod sim;
pub mod store;
pub mod sync;
pub mod web;
pub mod xml;
