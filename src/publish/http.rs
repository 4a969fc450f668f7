//! The HTTP server: one router for every publisher, built by [`router`] so tests can serve
//! it on `127.0.0.1:0`, and [`serve`] which runs it until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

use crate::app::App;

/// Every route of the appliance.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(super::health::routes())
        .merge(super::taxii::routes(&app))
        .merge(super::status::routes(&app))
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
