//! abuseipdb-ioc turns a security team's own attack records into STIX 2.1 indicators and
//! publishes them over TAXII 2.1, REST exports and firewall blocklists.
//!
//! Data flows through the modules in this order:
//! [`source`] (local rows) → [`pipeline`] (merging with AbuseIPDB and geolocation data,
//! scoring, the refresh cycle) → [`store`] (the published snapshot in redb) → [`publish`]
//! (TAXII, REST, status page, metrics). [`stix`] renders objects at publish time;
//! [`config`], [`clock`] and [`health`] are shared by all; [`app`] wires them together.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod enrich;
pub mod health;
pub mod ioc;
pub mod pipeline;
pub mod publish;
pub mod source;
pub mod stix;
pub mod store;
pub mod timefmt;
