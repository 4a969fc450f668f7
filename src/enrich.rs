//! Enrichment: what the appliance learns about an address from the internet. Both modules
//! keep their answers in the store's tables (`store::tables::{BLACKLIST, CHECKS, GEO}`) and
//! take part in every cycle through the `pipeline::Enricher` trait.

pub mod abuseipdb;
pub mod geo;
