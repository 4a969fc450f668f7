//! `/api/v1/status`: everything the status page shows, in one document, so one request per
//! refresh draws the whole page. The health part is exactly `/health`'s report; the rest is
//! read from the snapshot metadata, the cycle history and the health figures. The map grid
//! reads every record, so it runs on the blocking pool and is cached per snapshot generation.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::map::{self, MapData};
use crate::app::App;
use crate::health::Status;
use crate::ioc::Collection;
use crate::publish::api_error::ApiError;
use crate::publish::health::{HealthReport, report as health_report};
use crate::store::{CycleSummary, PublishReport, SnapshotMeta};
use crate::timefmt::stix_timestamp;

/// Cycles and countries shown on the page.
const RECENT: usize = 10;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub health: HealthReport,
    pub snapshot: SnapshotAge,
    pub counts: Counts,
    pub abuseipdb: Budget,
    pub geo: Geo,
    /// Newest first.
    pub cycles: Vec<Cycle>,
    /// Busiest first.
    pub countries: Vec<(String, u64)>,
    /// Indicators per confidence decile: 0–9, 10–19, …, 90–100.
    pub histogram: [u64; 10],
    pub map: MapData,
    pub taxii: TaxiiUrls,
}

#[derive(Debug, Serialize)]
pub struct SnapshotAge {
    pub built_at: Option<String>,
    pub age_seconds: Option<i64>,
    pub ttl_seconds: u64,
    pub stale: bool,
}

#[derive(Debug, Serialize)]
pub struct Counts {
    pub all: u64,
    pub high: u64,
    pub local: u64,
    pub abuseipdb: u64,
    pub both: u64,
    pub revoked: u64,
    pub excluded: u64,
}

/// The AbuseIPDB daily budgets, or `mode: "local-only"` when no key is configured.
#[derive(Debug, Serialize)]
pub struct Budget {
    pub mode: &'static str,
    pub status: Option<Status>,
    pub blacklist_used: Option<Value>,
    pub blacklist_limit: Option<Value>,
    pub check_used: Option<Value>,
    pub check_limit: Option<Value>,
    pub next_reset: Option<Value>,
}

#[derive(Debug, Serialize)]
pub struct Geo {
    pub status: Option<Status>,
    pub geolocated: u64,
    pub public: u64,
    /// Geolocated share of the public indicators, 0–1; `None` without public indicators.
    pub share: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Cycle {
    pub started_at: Option<String>,
    pub duration_ms: u64,
    pub trigger: String,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub indicators: u64,
    pub published: PublishReport,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TaxiiUrls {
    /// Paste into Elastic's Custom Threat Intelligence integration.
    pub elastic: String,
    pub elastic_high_confidence: String,
    /// Paste into OpenCTI's TAXII feed.
    pub opencti: String,
}

pub async fn handler(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match build(app, &headers).await {
        Ok(report) => {
            let mut response = axum::Json(report).into_response();
            let no_store = HeaderValue::from_static("no-store");
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, no_store);
            response
        }
        Err(err) => err.into_response(),
    }
}

async fn build(app: Arc<App>, headers: &HeaderMap) -> Result<StatusReport, ApiError> {
    let (map, cycles) = tokio::task::spawn_blocking({
        let app = app.clone();
        move || read_store(&app)
    })
    .await
    .map_err(ApiError::internal)??;
    let health = health_report(&app);
    let meta = app.store.snapshot();
    Ok(StatusReport {
        snapshot: snapshot_age(&health),
        counts: counts(&meta),
        abuseipdb: budget(&health),
        geo: geo(&health, &meta),
        cycles: recent_cycles(cycles),
        countries: top_countries(&meta),
        histogram: meta.counts.histogram,
        map,
        taxii: taxii_urls(&origin(headers)),
        health,
    })
}

/// The map (cached per generation) and the cycle history. Blocking.
fn read_store(app: &App) -> Result<(MapData, Vec<CycleSummary>), ApiError> {
    let bytes = app.store.hot("status:map".to_string(), || {
        let map = map::build(&app.store).map_err(ApiError::internal)?;
        let json = serde_json::to_vec(&map).map_err(ApiError::internal)?;
        Ok::<_, ApiError>(Bytes::from(json))
    })?;
    let map = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    let cycles = app.store.cycles().map_err(ApiError::internal)?;
    Ok((map, cycles))
}

fn snapshot_age(health: &HealthReport) -> SnapshotAge {
    let s = &health.snapshot;
    SnapshotAge {
        built_at: s.built_at.clone(),
        age_seconds: s.age_seconds,
        ttl_seconds: s.ttl_seconds,
        stale: s.stale,
    }
}

fn counts(meta: &SnapshotMeta) -> Counts {
    let c = &meta.counts;
    Counts {
        all: c.indicators,
        high: c.high_confidence,
        local: c.local,
        abuseipdb: c.abuseipdb,
        both: c.both,
        revoked: c.revoked,
        excluded: meta.excluded,
    }
}

fn budget(health: &HealthReport) -> Budget {
    let component = health.components.get("abuseipdb");
    let status = component.map(|c| c.status);
    let figure = |name: &str| component.and_then(|c| c.figures.get(name).cloned());
    let local_only = matches!(status, None | Some(Status::Disabled));
    Budget {
        mode: if local_only {
            "local-only"
        } else {
            "abuseipdb"
        },
        status,
        blacklist_used: figure("blacklist_used"),
        blacklist_limit: figure("blacklist_limit"),
        check_used: figure("check_used"),
        check_limit: figure("check_limit"),
        next_reset: figure("next_reset"),
    }
}

fn geo(health: &HealthReport, meta: &SnapshotMeta) -> Geo {
    let (geolocated, public) = (meta.counts.geolocated, meta.counts.public);
    Geo {
        status: health.components.get("geo").map(|c| c.status),
        geolocated,
        public,
        share: (public > 0).then(|| geolocated as f64 / public as f64),
    }
}

fn recent_cycles(cycles: Vec<CycleSummary>) -> Vec<Cycle> {
    cycles
        .into_iter()
        .rev()
        .take(RECENT)
        .map(|c| Cycle {
            started_at: c.started_at.map(stix_timestamp),
            duration_ms: c.duration_ms,
            trigger: c.trigger,
            rows_read: c.rows_read,
            rows_accepted: c.rows_accepted,
            indicators: c.indicators,
            published: c.published,
            error: c.error,
        })
        .collect()
}

fn top_countries(meta: &SnapshotMeta) -> Vec<(String, u64)> {
    let mut countries: Vec<(String, u64)> = meta
        .counts
        .countries
        .iter()
        .map(|(code, n)| (code.clone(), *n))
        .collect();
    countries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    countries.truncate(RECENT);
    countries
}

/// `scheme://host[:port]` as the client reached us: `Host`, and `X-Forwarded-Proto` when a
/// TLS-terminating proxy sets it. Only used to print URLs on the page, never for access
/// decisions.
fn origin(headers: &HeaderMap) -> String {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let host = text(header::HOST).unwrap_or_else(|| "localhost:8000".to_string());
    let scheme = match text(header::HeaderName::from_static("x-forwarded-proto")).as_deref() {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

fn taxii_urls(origin: &str) -> TaxiiUrls {
    let objects =
        |c: Collection| format!("{origin}/taxii2/iocs/collections/{}/objects/", c.alias());
    TaxiiUrls {
        elastic: objects(Collection::All),
        elastic_high_confidence: objects(Collection::High),
        opencti: format!("{origin}/taxii2/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_host_and_the_forwarded_scheme() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("ioc.example:8443"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let urls = taxii_urls(&origin(&headers));
        assert_eq!(
            urls.elastic,
            "https://ioc.example:8443/taxii2/iocs/collections/ioc-indicators/objects/"
        );
        assert_eq!(urls.opencti, "https://ioc.example:8443/taxii2/");
    }
}
