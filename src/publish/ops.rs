//! The operations side of the REST API: `/api/v1/stats`, on-demand enrichment
//! (`/api/v1/enrich/…`), `/api/v1/refresh` and `/metrics`, plus the cross-cutting layers the
//! HTTP server puts around every route (rate limiting, size limits, CORS, request metrics).
//!
//! Authentication: reads (`stats`, `metrics`) need a key when keys are configured, like every
//! data endpoint. Writes (`enrich`, `refresh`) always need one: with no `API_KEYS` configured
//! they answer 403, because an open write endpoint would let anyone spend the AbuseIPDB
//! budget or keep the pipeline busy.

pub mod enrich;
pub mod limits;
pub mod metrics;
pub mod refresh;
pub mod stats;
pub mod traffic;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::App;
use crate::clock::SharedClock;
use crate::publish::api_error::{ApiError, render_auth};
use crate::publish::auth::{self, Guard};
use traffic::Traffic;

/// What the ops endpoints count while the server runs (lost at restart, by design: these
/// are recent-activity figures, not history).
pub struct OpsState {
    pub traffic: Traffic,
    /// On-demand AbuseIPDB checks answered from the cache, fetched and refused.
    pub checks_cached: AtomicU64,
    pub checks_fetched: AtomicU64,
    pub checks_refused: AtomicU64,
}

impl OpsState {
    pub fn new(clock: SharedClock) -> OpsState {
        OpsState {
            traffic: Traffic::new(clock),
            checks_cached: AtomicU64::new(0),
            checks_fetched: AtomicU64::new(0),
            checks_refused: AtomicU64::new(0),
        }
    }

    /// Share of on-demand checks answered from the cache; `None` before the first one.
    pub fn check_hit_rate(&self) -> Option<f64> {
        let cached = self.checks_cached.load(Ordering::Relaxed);
        let fetched = self.checks_fetched.load(Ordering::Relaxed);
        let total = cached + fetched;
        (total > 0).then(|| cached as f64 / total as f64)
    }
}

/// The ops routes with their authentication, ready to merge into the server's router.
/// `state` is shared with the server's request middleware, which feeds its traffic ring.
pub fn routes(app: &App, state: Arc<OpsState>) -> Router<Arc<App>> {
    let guard = Guard::new(&app.settings.http, render_auth);
    let reads = Router::new()
        .route("/api/v1/stats", get(stats::handler))
        .route("/metrics", get(metrics::handler))
        .layer(axum::Extension(state.clone()))
        .layer(from_fn_with_state(guard.clone(), auth::require));
    let writes = Router::new()
        .route("/api/v1/enrich/bulk", post(enrich::bulk))
        .route("/api/v1/enrich/{ip}", post(enrich::single))
        .route("/api/v1/refresh", post(refresh::handler))
        .layer(axum::Extension(state))
        .layer(from_fn_with_state(guard.clone(), auth::require))
        .layer(from_fn_with_state(guard, writes_configured));
    reads.merge(writes)
}

/// Refuses every write while no credential is configured (see the module docs).
async fn writes_configured(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if !guard.is_open() {
        return next.run(request).await;
    }
    tracing::warn!(
        target: "audit",
        client = %traffic::client(&request),
        path = request.uri().path(),
        "write refused: no API_KEYS configured"
    );
    ApiError::new(
        StatusCode::FORBIDDEN,
        "writes_disabled",
        "write endpoints always need an API key; configure API_KEYS and send one",
    )
    .into_response()
}
