//! The status page: the files under `assets/` embedded in the binary and served at `/`, and
//! `/api/v1/status`, the one JSON document the page draws. The page itself is public (it is
//! only a shell); the data endpoint asks for the same credentials as the REST API.

pub mod assets;
pub mod map;
pub mod report;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;

use crate::app::App;
use crate::publish::api_error;
use crate::publish::auth::{self, Guard};

/// The page, its files and its data endpoint, ready to merge into the server's router.
pub fn routes(app: &App) -> Router<Arc<App>> {
    let guard = Guard::new(&app.settings.http, api_error::render_auth);
    let data = Router::new()
        .route("/api/v1/status", get(report::handler))
        .layer(from_fn_with_state(guard, auth::require));
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::file))
        .merge(data)
}
