//! The HTTP server: one router for every publisher, built by [`router`] so tests can serve
//! it on `127.0.0.1:0`, and [`serve`] which runs it until shutdown.
//!
//! Cross-cutting layers, outermost first: request id (`x-request-id`, generated when the
//! client sent none, echoed on the response), CORS (only when `CORS_ORIGINS` is set), gzip,
//! request metrics and the traffic ring, size limits (query string, `MAX_BODY_BYTES`), and
//! per-client rate limiting on every route except `/health` and `/api/v1/health`, so
//! container health checks never trip it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::from_fn_with_state;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Layer;
use tower_http::compression::CompressionLayer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use super::ops::{self, OpsState, limits, traffic};
use crate::app::App;

/// Every route of the appliance, with the cross-cutting layers.
pub fn router(app: Arc<App>) -> Router {
    let http = &app.settings.http;
    let state = Arc::new(OpsState::new(app.clock.clone()));
    ops::metrics::handle();
    let limited = Router::new()
        .merge(super::taxii::routes(&app))
        .merge(super::rest::routes(&app))
        .merge(ops::routes(&app, state.clone()))
        .merge(super::status::routes(&app));
    let router = Router::new()
        .merge(super::health::routes())
        .merge(limits::rate_limit(limited, http.rate_limit_per_minute))
        .layer(from_fn_with_state(http.max_body_bytes, limits::sizes))
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(from_fn_with_state(state, traffic::observe))
        .layer(CompressionLayer::new().gzip(true));
    let router = match limits::cors(http) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(app)
}

/// The router behind trailing-slash normalisation: `/taxii2/` and `/taxii2` reach the same
/// handler without a redirect (some TAXII clients drop credentials on redirects).
pub fn service(app: Arc<App>) -> NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router(app))
}

/// Serves until `shutdown` turns true, then lets in-flight requests finish.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let service = service(app);
    let make =
        axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(service);
    axum::serve(listener, make)
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}
