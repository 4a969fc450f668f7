//! Request limits the server puts in front of every route: per-client rate limiting
//! (`API_RATE_LIMIT` per minute per peer address), the request body cap (`MAX_BODY_BYTES`),
//! a query-string cap, and CORS (`CORS_ORIGINS`). Every refusal is an [`ApiError`] body.
//!
//! Known shortcoming: the rate limit keys on the peer address, so behind a reverse proxy all
//! clients share one quota; forwarded headers are deliberately not trusted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::HttpSettings;
use crate::publish::api_error::ApiError;

/// Longest accepted query string, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// The peer address, or `0.0.0.0` when the server runs without connect info (routers
/// driven directly in tests), so such requests share one quota instead of failing.
#[derive(Debug, Clone, Copy)]
pub struct PeerIp;

impl KeyExtractor for PeerIp {
    type Key = IpAddr;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        Ok(request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()))
    }
}

/// Puts the rate limiter around `router`'s routes, unless `API_RATE_LIMIT` is 0. A client
/// may send the whole minute's quota at once; the quota then refills evenly over the minute.
pub fn rate_limit<S>(router: Router<S>, per_minute: u32) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if per_minute == 0 {
        return router;
    }
    let period = Duration::from_secs(60) / per_minute;
    let config = GovernorConfigBuilder::default()
        .key_extractor(PeerIp)
        .period(period.max(Duration::from_nanos(1)))
        .burst_size(per_minute)
        .finish();
    match config {
        Some(config) => {
            router.layer(GovernorLayer::<_, _, Body>::new(config).error_handler(rate_limited))
        }
        None => router,
    }
}

fn rate_limited(err: GovernorError) -> Response {
    match err {
        GovernorError::TooManyRequests { wait_time, .. } => {
            // The limiter rounds down; a client told to wait 0 s would retry at once.
            ApiError::too_many_requests(wait_time.max(1)).into_response()
        }
        other => ApiError::internal(other).into_response(),
    }
}

/// Middleware: refuses over-long query strings (414) and bodies whose declared length is
/// over `max_body` (413) before any handler reads them. Bodies without a declared length
/// are capped while being read (`DefaultBodyLimit`).
pub async fn sizes(State(max_body): State<usize>, request: Request, next: Next) -> Response {
    let query = request.uri().query().map_or(0, str::len);
    if query > MAX_QUERY_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "query_too_long",
            format!("the query string is {query} bytes; at most {MAX_QUERY_BYTES} are accepted"),
        )
        .into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return ApiError::too_large(format!(
            "the request body is larger than MAX_BODY_BYTES ({max_body} bytes)"
        ))
        .into_response();
    }
    next.run(request).await
}

/// CORS for the configured origins (`*` allows any), or `None` when none are configured:
/// then no CORS header is ever sent and browsers keep their same-origin rule.
pub fn cors(http: &HttpSettings) -> Option<CorsLayer> {
    if http.cors_origins.is_empty() {
        return None;
    }
    let origin = if http.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list: Vec<HeaderValue> = http
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        AllowOrigin::list(list)
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("x-api-key"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .max_age(Duration::from_secs(3600)),
    )
}
