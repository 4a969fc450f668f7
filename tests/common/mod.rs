//! Fixtures shared by the integration tests. Each test binary uses only some of them.
#![allow(dead_code)]

pub mod fake_geo;
pub mod pg;
