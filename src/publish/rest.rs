//! The REST API over the published snapshot: indicator listings (`/api/v1/indicators…`),
//! streamed exports (STIX bundle, JSON, CSV, plain) and firewall feeds. Owns the routes,
//! their query parameters and the export formats; reads only the store, never the source
//! database, and runs every redb read on the blocking pool.
//!
//! Layers, outermost first: gzip, authentication (401 with an [`ApiError`] body), handlers.

pub mod aggregate;
pub mod export;
pub mod firewall;
pub mod indicators;
pub mod params;
pub mod snapshot;
pub mod stream;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;

use crate::app::App;
use crate::publish::api_error::{self, ApiError};
use crate::publish::auth::{self, Guard};
use crate::store::StoreError;
use export::{ExportRequest, Format};
use firewall::Feed;

/// The REST routes with their layers, ready to merge into the server's router.
///
/// Fixed segments (`stix`, `csv`, `firewall`, …) win over `{ip}` in the router, so no
/// address lookup ever sees them.
pub fn routes(app: &App) -> Router<Arc<App>> {
    let guard = Guard::new(&app.settings.http, api_error::render_auth);
    Router::new()
        .route("/api/v1/indicators", get(indicators::all))
        .route("/api/v1/indicators/local", get(indicators::local))
        .route("/api/v1/indicators/enriched", get(indicators::enriched))
        .route("/api/v1/indicators/stix", get(data_export::<0>))
        .route("/api/v1/indicators/json", get(data_export::<1>))
        .route("/api/v1/indicators/csv", get(data_export::<2>))
        .route("/api/v1/indicators/plain", get(data_export::<3>))
        .route("/api/v1/indicators/firewall", get(no_feed))
        .route("/api/v1/indicators/firewall/{format}", get(feed))
        .route("/api/v1/indicators/{ip}", get(indicators::one))
        .layer(from_fn_with_state(guard, auth::require))
        .layer(CompressionLayer::new().gzip(true))
}

/// The query pairs, or a 400 naming what could not be decoded.
fn pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))
}

/// Runs a store read on the blocking pool; failures become a logged 500.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(read).await {
        Ok(result) => result.map_err(ApiError::internal),
        Err(join) => Err(ApiError::internal(join)),
    }
}

/// The data exports, one handler per position in [`Format::DATA`].
async fn data_export<const N: usize>(
    State(app): State<Arc<App>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let request = ExportRequest {
        format: Format::DATA[N],
        selection: params::export(&pairs(query)?)?,
        feed: params::FeedOptions::default(),
    };
    Ok(streamed(app, request))
}

async fn feed(
    State(app): State<Arc<App>>,
    Path(format): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let feed = Feed::find(&format).ok_or_else(|| unknown_feed(&format))?;
    let (selection, options) = params::feed(&pairs(query)?)?;
    let request = ExportRequest {
        format: Format::Feed(feed),
        selection,
        feed: options,
    };
    Ok(streamed(app, request))
}

async fn no_feed() -> ApiError {
    unknown_feed("")
}

fn unknown_feed(format: &str) -> ApiError {
    ApiError::not_found(format!(
        "no firewall format {format:?}; available: {}",
        Feed::names()
    ))
}

/// The streamed download, named `iocs-<date>.<ext>` after today's date.
fn streamed(app: Arc<App>, request: ExportRequest) -> Response {
    let date = app.clock.now().strftime("%Y-%m-%d").to_string();
    let format = request.format;
    let disposition = format!(
        "attachment; filename=\"iocs-{date}.{}\"",
        format.extension()
    );
    let body = stream::body(move |out| export::write(&app.store, &app.settings, &request, out));
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}
