//! The TAXII 2.1 server: read-only, two collections, one API root. Owns the protocol (routes,
//! media types, query parameters, `next` tokens, envelopes, errors); the data comes from the
//! published snapshot in the store and is never re-serialised on the way out.
//!
//! Layers, outermost first: gzip, the TAXII `Content-Type` on every response,
//! authentication (401 with a TAXII error body), Accept negotiation (406), the handlers.

pub mod envelope;
pub mod error;
pub mod media;
pub mod query;
pub mod routes;
pub mod token;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::compression::CompressionLayer;

use crate::app::App;
use crate::publish::auth::{self, Guard};

/// The TAXII routes with their layers, ready to merge into the server's router.
pub fn routes(app: &App) -> Router<Arc<App>> {
    let guard = Guard::new(&app.settings.http, error::render_auth);
    routes::router()
        .layer(from_fn(media::negotiate))
        .layer(from_fn_with_state(guard, auth::require))
        .layer(from_fn(media::stamp_content_type))
        .layer(CompressionLayer::new().gzip(true))
}
