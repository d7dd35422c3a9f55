//! Integration tests: the library and binaries against the simulators and real servers.

mod util;

// The Cybozu client against the simulated Office, over real HTTP.
mod cybozu_client;
// Misbehaving servers: quirks, faults and malformed replies.
mod cybozu_quirks;
// Every request and reply checked against the WSDL/XSD of a real Office 10.6.
mod cybozu_schema;
// dncs-sync, as an administrator runs it.
mod sync_cli;
// The dncs-dev binary.
mod dev_server;
// The dncs binary run as a CGI process.
mod cgi;
// The dncs binary under a real Apache httpd with mod_cgid (skipped when Apache is not installed).
#[cfg(unix)]
mod apache;
