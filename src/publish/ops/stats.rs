//! `/api/v1/stats`: what the appliance holds and how it is doing, in one JSON document.
//! [`collect`] builds it from the app alone (the CLI uses it when no server runs); the
//! handler adds the recent API traffic, which only a running server knows.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::OpsState;
use super::traffic::TrafficSummary;
use crate::app::App;
use crate::enrich::abuseipdb::budget::{self, BudgetState};
use crate::publish::api_error::ApiError;
use crate::store::{CycleSummary, SnapshotMeta};
use crate::timefmt::stix_timestamp;

/// How many cycles the stats list, newest first.
const RECENT_CYCLES: usize = 10;
const TOP_COUNTRIES: usize = 10;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub generated_at: String,
    pub source: Value,
    pub abuseipdb: Value,
    pub refresh: Value,
    /// `None` when read from the data directory without a running server.
    pub api: Option<TrafficSummary>,
    pub process: Value,
}

/// `GET /api/v1/stats`.
pub async fn handler(
    State(app): State<Arc<App>>,
    Extension(ops): Extension<Arc<OpsState>>,
) -> Response {
    match collect(&app, Some(&ops)).await {
        Ok(stats) => axum::Json(stats).into_response(),
        Err(err) => err.into_response(),
    }
}

/// The stats of `app`; `ops` carries the running server's own counters.
///
/// # Errors
/// [`ApiError::internal`] when the cycle history cannot be read.
pub async fn collect(app: &Arc<App>, ops: Option<&OpsState>) -> Result<Stats, ApiError> {
    let store = app.store.clone();
    let cycles = tokio::task::spawn_blocking(move || store.cycles())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let meta = app.store.snapshot();
    Ok(Stats {
        generated_at: stix_timestamp(app.clock.now()),
        source: source(app, &meta),
        abuseipdb: abuseipdb(app, ops).await,
        refresh: refresh(app, &cycles),
        api: ops.map(|o| o.traffic.summary()),
        process: process(app),
    })
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn source(app: &App, meta: &SnapshotMeta) -> Value {
    let c = &meta.counts;
    let histogram: Vec<Value> = c
        .histogram
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let high = if i == 9 { 100 } else { i * 10 + 9 };
            json!({"range": format!("{}-{high}", i * 10), "count": n})
        })
        .collect();
    let mut countries: Vec<(&String, &u64)> = c.countries.iter().collect();
    countries.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<Value> = countries
        .into_iter()
        .take(TOP_COUNTRIES)
        .map(|(code, n)| json!({"country": code, "count": n}))
        .collect();
    json!({
        "indicators": c.indicators,
        "high_confidence": c.high_confidence,
        "local": c.local,
        "abuseipdb": c.abuseipdb,
        "both": c.both,
        "revoked": c.revoked,
        "excluded": meta.excluded,
        "public": c.public,
        "geolocated": c.geolocated,
        "geolocated_share": share(c.geolocated, c.public),
        "enriched_share": share(c.abuseipdb + c.both, c.indicators),
        "confidence_histogram": histogram,
        "top_countries": top,
        "snapshot": {
            "generation": meta.generation,
            "built_at": meta.built_at.map(stix_timestamp),
            "age_seconds": meta.built_at.map(|b| (app.clock.now() - b).as_secs()),
        },
    })
}

async fn abuseipdb(app: &App, ops: Option<&OpsState>) -> Value {
    let Some(service) = &app.abuseipdb else {
        return json!({"mode": "local-only"});
    };
    let s = &app.settings.abuseipdb;
    let reset = stix_timestamp(budget::next_reset(app.clock.now()));
    let budget = |state: &BudgetState, limit: u32| {
        json!({
            "used": state.used,
            "limit": limit,
            "reset": reset,
            "blocked_until": state.blocked_until.map(stix_timestamp),
        })
    };
    let budgets = match service.budgets().await {
        Ok((list, check)) => json!({
            "blacklist": budget(&list, s.blacklist_daily_limit),
            "check": budget(&check, s.check_daily_limit),
            "check_reserve": s.check_reserve,
        }),
        Err(err) => json!({"error": err.to_string()}),
    };
    let figures = app.health.get("abuseipdb").map(|c| c.figures);
    let figure = |name: &str| figures.as_ref().and_then(|f| f.get(name).cloned());
    json!({
        "mode": "enriched",
        "budget": budgets,
        "cache": {
            "blacklist_entries": figure("entries"),
            "blacklist_fetched_at": figure("last_fetch"),
            "on_demand_hit_rate": ops.and_then(OpsState::check_hit_rate),
        },
    })
}

fn refresh(app: &App, cycles: &[CycleSummary]) -> Value {
    let recent: Vec<Value> = cycles.iter().rev().take(RECENT_CYCLES).map(cycle).collect();
    let last = cycles.iter().rev().find(|c| c.error.is_none());
    json!({
        "last_refresh": last.and_then(|c| c.started_at).map(stix_timestamp),
        "running_since": app.pipeline.running_since().map(stix_timestamp),
        "interval_seconds": app.settings.cycle.snapshot_ttl.as_secs(),
        "cycles": recent,
    })
}

fn cycle(c: &CycleSummary) -> Value {
    json!({
        "started_at": c.started_at.map(stix_timestamp),
        "duration_ms": c.duration_ms,
        "trigger": c.trigger,
        "error": c.error,
        "rows_read": c.rows_read,
        "rows_accepted": c.rows_accepted,
        "skipped": c.skipped.values().sum::<u64>(),
        "duplicates": c.duplicates,
        "excluded": c.excluded,
        "indicators": c.indicators,
        "geolocated": c.geolocated,
        "published": c.published,
    })
}

fn process(app: &App) -> Value {
    let memory = memory().map(|(rss, peak)| json!({"rss_bytes": rss, "peak_rss_bytes": peak}));
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": stix_timestamp(app.started_at),
        "uptime_seconds": (app.clock.now() - app.started_at).as_secs(),
        "memory": memory,
        "cpu_seconds": cpu_seconds(),
    })
}

/// Resident and peak resident memory in bytes (`VmRSS`, `VmHWM`); Linux only.
fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|k| k * 1024)
    };
    Some((kib("VmRSS:")?, kib("VmHWM:")?))
}

/// User plus system CPU time of the process; Linux only. Assumes the usual 100 clock ticks
/// per second (reading the real value needs `sysconf`, which needs `unsafe` or a crate).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}
