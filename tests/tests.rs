//! Integration tests: the library and binaries against the simulators and real servers.

mod util;
// The CGI harness: an install folder beside the Cybozu simulator and a cookie-keeping browser.
mod harness;

// The Cybozu client against the simulated Office, over real HTTP.
mod cybozu_client;
// Misbehaving servers: quirks, faults and malformed replies.
mod cybozu_quirks;
// Every request and reply checked against the WSDL/XSD of a real Office 10.6.
mod cybozu_schema;
// The Google connector (Calendar API v3, token endpoint, consent) against the simulated Google.
mod google_client;
// Every event JSON and query parameter both ways checked against Google's discovery document.
mod google_schema;
// dncs-sync, as an administrator runs it.
mod sync_cli;
// The sync engine against the Cybozu simulator and an in-memory calendar.
mod sync_engine;
// dncs-sync run end to end: the real binary between the Cybozu and Google simulators.
mod sync_google;
// The dncs-dev binary.
mod dev_server;
// The dncs binary run as a CGI process.
mod cgi;
// Every screen and form of the dncs CGI, as a browser and an administrator use them.
mod screens;
// The dncs binary under a real Apache httpd with mod_cgid (skipped when Apache is not installed).
#[cfg(unix)]
mod apache;
// Google account linking (認証) through the CGI, the Google simulator and the relay page.
mod google_link;
// The CalDAV servers the tests start (Radicale, Xandikos), and an install folder syncing with one.
mod caldav_harness;
// The CalDAV client against a real Radicale (skipped when Radicale is not installed).
mod caldav_client;
// dncs-sync run end to end between the Cybozu simulator and a real Radicale and Xandikos: the
// Google scenarios again with a CalDAV target (each skipped when its server is not installed).
mod sync_caldav;
// One day of a repeating event changed or deleted on its own by another CalDAV client
// (RECURRENCE-ID overrides, EXDATEs), end to end against the same three servers.
mod sync_caldav_overrides;
// The web server files of install/ an administrator is given.
mod install_files;
