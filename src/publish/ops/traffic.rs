//! Recent API traffic for `/api/v1/stats`: a ring of per-minute buckets covering the last
//! hour (requests, errors, total response time), fed by [`observe`], which also records the
//! Prometheus request metrics.
//!
//! Invariant: a bucket belongs to exactly one minute; a bucket found holding an older minute
//! is reset before it is counted into, so the ring never mixes hours.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::clock::SharedClock;

const MINUTES: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    minute: i64,
    requests: u64,
    errors: u64,
    micros: u64,
}

/// The last hour of requests, per minute of the app's clock.
pub struct Traffic {
    clock: SharedClock,
    buckets: Mutex<[Bucket; MINUTES]>,
}

/// The last hour's figures as `/api/v1/stats` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficSummary {
    pub requests_last_hour: u64,
    /// Mean response time in milliseconds; `None` without requests.
    pub average_response_ms: Option<f64>,
    /// Share of responses with status ≥ 400.
    pub error_rate: Option<f64>,
}

impl Traffic {
    pub fn new(clock: SharedClock) -> Traffic {
        Traffic {
            clock,
            buckets: Mutex::new([Bucket::default(); MINUTES]),
        }
    }

    fn minute(&self) -> i64 {
        self.clock.now().as_second().div_euclid(60)
    }

    /// Counts one finished request.
    pub fn record(&self, micros: u64, error: bool) {
        let minute = self.minute();
        let mut buckets = self.buckets.lock().expect("traffic lock");
        let bucket = &mut buckets[minute.rem_euclid(MINUTES as i64) as usize];
        if bucket.minute != minute {
            *bucket = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        bucket.requests += 1;
        bucket.errors += u64::from(error);
        bucket.micros += micros;
    }

    /// Sums the buckets of the last 60 minutes, the current one included.
    pub fn summary(&self) -> TrafficSummary {
        let now = self.minute();
        let buckets = self.buckets.lock().expect("traffic lock");
        let recent = buckets
            .iter()
            .filter(|b| b.requests > 0 && now - b.minute < MINUTES as i64 && b.minute <= now);
        let (requests, errors, micros) = recent.fold((0, 0, 0), |(r, e, m), b| {
            (r + b.requests, e + b.errors, m + b.micros)
        });
        let per_request = |x: f64| (requests > 0).then(|| x / requests as f64);
        TrafficSummary {
            requests_last_hour: requests,
            average_response_ms: per_request(micros as f64 / 1000.0),
            error_rate: per_request(errors as f64),
        }
    }
}

/// The client's address for logs, or `unknown` when the server runs without connect info.
pub fn client(request: &Request) -> String {
    client_of(request.extensions())
}

fn client_of(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

/// Extractor of the client's address for audit lines; never fails.
pub struct Client(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        Ok(Client(client_of(&parts.extensions)))
    }
}

/// Middleware: times every request, counts it in the ring and in the Prometheus metrics
/// under its route template (never the raw path, which would make labels unbounded).
pub async fn observe(
    State(ops): State<Arc<super::OpsState>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    ops.traffic.record(
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        status.as_u16() >= 400,
    );
    super::metrics::record_request(route, method.as_str(), status.as_u16(), elapsed);
    tracing::debug!(%method, status = status.as_u16(), elapsed_ms = elapsed.as_millis() as u64, "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use jiff::SignedDuration;

    #[test]
    fn keeps_one_hour_of_minutes() {
        let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
        let traffic = Traffic::new(Arc::new(clock.clone()));
        traffic.record(2000, false);
        traffic.record(4000, true);
        let summary = traffic.summary();
        assert_eq!(summary.requests_last_hour, 2);
        assert_eq!(summary.average_response_ms, Some(3.0));
        assert_eq!(summary.error_rate, Some(0.5));

        clock.advance(SignedDuration::from_mins(59));
        traffic.record(1000, false);
        assert_eq!(traffic.summary().requests_last_hour, 3);

        clock.advance(SignedDuration::from_mins(1));
        assert_eq!(traffic.summary().requests_last_hour, 1);
        clock.advance(SignedDuration::from_mins(60));
        assert_eq!(traffic.summary().average_response_ms, None);
    }
}
