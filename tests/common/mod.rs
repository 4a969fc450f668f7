//! Fixtures shared by the integration tests. Each test binary uses only some of them.
#![allow(dead_code)]

pub mod app;
pub mod fake_abuseipdb;
pub mod fake_geo;
pub mod pg;
pub mod fault_http;
