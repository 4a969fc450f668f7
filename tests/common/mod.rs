//! Fixtures shared by the integration tests. Each test binary uses only some of them.
#![allow(dead_code)]

pub mod app;
pub mod dirty_rows;
pub mod fake_abuseipdb;
pub mod fake_geo;
pub mod fault_http;
pub mod pg;
pub mod pg_stoppable;
pub mod rest;
