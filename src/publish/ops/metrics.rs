//! `/metrics` in the Prometheus text format. Request counters and latency histograms are
//! recorded as requests finish (see [`super::traffic::observe`]), cycle counts and durations
//! by the pipeline; everything that is a state rather than an event (indicator counts,
//! snapshot age, AbuseIPDB budgets, geolocation figures) is set as a gauge at scrape time.
//!
//! The recorder is process-wide (the `metrics` facade has one global recorder), installed
//! once; several apps in one process (tests) share it, and each scrape sets the gauges from
//! the app that serves it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::App;
use crate::enrich::abuseipdb::budget::BudgetState;
use crate::store::SnapshotMeta;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets (seconds) for every `*_duration_seconds` metric: from fast API answers
/// to long refresh cycles.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder on first use and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), BUCKETS)
            .expect("the bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(err) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %err, "another metrics recorder is installed; /metrics stays empty");
        }
        handle
    })
}

/// Counts one finished request under its route template.
pub fn record_request(route: String, method: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("route", route),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    counter!("http_requests_total", &labels).increment(1);
    histogram!("http_request_duration_seconds", &labels[..2]).record(elapsed.as_secs_f64());
}

/// `GET /metrics`.
pub async fn handler(State(app): State<Arc<App>>) -> impl IntoResponse {
    let handle = handle();
    let budgets = match &app.abuseipdb {
        Some(service) => service.budgets().await.ok(),
        None => None,
    };
    set_snapshot_gauges(&app, &app.store.snapshot());
    set_budget_gauges(&app, budgets.as_ref());
    set_geo_gauges(&app);
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render())
}

fn set_snapshot_gauges(app: &App, meta: &SnapshotMeta) {
    let c = &meta.counts;
    let kinds = [
        ("all", c.indicators),
        ("high_confidence", c.high_confidence),
        ("local", c.local),
        ("abuseipdb", c.abuseipdb),
        ("both", c.both),
        ("revoked", c.revoked),
        ("geolocated", c.geolocated),
    ];
    for (kind, value) in kinds {
        gauge!("abuseipdb_ioc_indicators", "kind" => kind).set(value as f64);
    }
    gauge!("abuseipdb_ioc_excluded").set(meta.excluded as f64);
    gauge!("abuseipdb_ioc_snapshot_generation").set(meta.generation as f64);
    let age = meta
        .built_at
        .map_or(-1.0, |built| (app.clock.now() - built).as_secs_f64());
    gauge!("abuseipdb_ioc_snapshot_age_seconds").set(age);
    let running = app.pipeline.running_since().is_some();
    gauge!("abuseipdb_ioc_cycle_running").set(f64::from(u8::from(running)));
    gauge!("abuseipdb_ioc_uptime_seconds").set((app.clock.now() - app.started_at).as_secs_f64());
}

fn set_budget_gauges(app: &App, budgets: Option<&(BudgetState, BudgetState)>) {
    let enabled = app.abuseipdb.is_some();
    gauge!("abuseipdb_ioc_abuseipdb_enabled").set(f64::from(u8::from(enabled)));
    let Some((blacklist, check)) = budgets else {
        return;
    };
    let s = &app.settings.abuseipdb;
    let now = app.clock.now();
    for (endpoint, state, limit) in [
        ("blacklist", blacklist, s.blacklist_daily_limit),
        ("check", check, s.check_daily_limit),
    ] {
        gauge!("abuseipdb_ioc_abuseipdb_budget_used", "endpoint" => endpoint)
            .set(f64::from(state.used));
        gauge!("abuseipdb_ioc_abuseipdb_budget_limit", "endpoint" => endpoint)
            .set(f64::from(limit));
        let blocked = state.blocked_until.is_some_and(|until| until > now);
        gauge!("abuseipdb_ioc_abuseipdb_blocked", "endpoint" => endpoint)
            .set(f64::from(u8::from(blocked)));
    }
}

/// Geolocation figures from the "geo" health component (runs since the last cycle).
fn set_geo_gauges(app: &App) {
    let Some(geo) = app.health.get("geo") else {
        return;
    };
    let figure = |name: &str| geo.figures.get(name).and_then(serde_json::Value::as_f64);
    if let Some(share) = figure("geolocated_share") {
        gauge!("abuseipdb_ioc_geo_geolocated_share").set(share);
    }
    let last = geo.figures.get("since_last_cycle");
    for name in ["cache_hits", "located", "unknown", "deferred"] {
        if let Some(value) = last.and_then(|l| l.get(name)).and_then(|v| v.as_f64()) {
            gauge!("abuseipdb_ioc_geo_since_last_cycle", "figure" => name).set(value);
        }
    }
}
