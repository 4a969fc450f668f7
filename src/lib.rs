//! abuseipdb-ioc turns a security team's own attack records into STIX 2.1 indicators and
//! publishes them over TAXII 2.1, REST exports and firewall blocklists.
//!
//! Data flows through the modules in this order:
//! [`source`] (local rows) → [`enrich`] (AbuseIPDB, geolocation) → [`pipeline`] (scoring, the
//! refresh cycle) → [`store`] (the published snapshot in redb) → [`publish`] (TAXII, REST,
//! status page, metrics). [`config`] and [`clock`] are shared by all of them.
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod ioc;
pub mod source;
