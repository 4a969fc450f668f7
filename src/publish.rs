//! Publishers: everything that serves the snapshot to the outside (HTTP router, health,
//! TAXII, REST exports, status page, metrics). They only read the store.

pub mod api_error;
pub mod auth;
pub mod health;
pub mod http;
pub mod logging;
pub mod ops;
pub mod rest;
pub mod status;
pub mod taxii;
