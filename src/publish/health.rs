//! `/health` and `/api/v1/health`: public liveness with each component's state and the
//! snapshot age. Always 200 while the process serves; `status` says `degraded` with the
//! reasons when something needs attention.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::app::App;
use crate::health::{ComponentState, Status};
use crate::timefmt::stix_timestamp;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/health", get(health))
}

#[derive(Debug, Serialize)]
pub struct HealthReport {
    pub status: Status,
    pub version: &'static str,
    pub uptime_seconds: i64,
    pub reasons: Vec<String>,
    pub snapshot: SnapshotHealth,
    pub components: BTreeMap<&'static str, ComponentState>,
}

#[derive(Debug, Serialize)]
pub struct SnapshotHealth {
    pub built_at: Option<String>,
    pub age_seconds: Option<i64>,
    pub ttl_seconds: u64,
    pub stale: bool,
    pub generation: u64,
    pub indicators: u64,
    pub high_confidence: u64,
    pub refresh_running_since: Option<String>,
}

async fn health(State(app): State<Arc<App>>) -> Json<HealthReport> {
    Json(report(&app))
}

/// The health report as `/health` serves it. Starts a refresh when the snapshot is stale.
pub fn report(app: &Arc<App>) -> HealthReport {
    let now = app.clock.now();
    let meta = app.store.snapshot();
    let ttl = app.settings.cycle.snapshot_ttl;
    let age = meta.built_at.map(|built| (now - built).as_secs());
    let stale = age.is_none_or(|a| a > ttl.as_secs() as i64);
    let running = app.pipeline.running_since();
    let mut reasons = Vec::new();
    match age {
        None => reasons.push("no snapshot has been published yet".to_string()),
        Some(a) if stale => {
            reasons.push(format!(
                "snapshot is {a} s old, older than PREPROCESSING_TTL ({} s)",
                ttl.as_secs()
            ));
        }
        _ => {}
    }
    if stale && running.is_none() && meta.built_at.is_some() {
        let _ = app.pipeline.start("stale");
    }
    let components = app.health.all();
    for (name, state) in &components {
        if state.status == Status::Degraded {
            reasons.push(format!("{name}: {}", state.detail));
        }
    }
    HealthReport {
        status: if reasons.is_empty() {
            Status::Ok
        } else {
            Status::Degraded
        },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: (now - app.started_at).as_secs(),
        reasons,
        snapshot: SnapshotHealth {
            built_at: meta.built_at.map(stix_timestamp),
            age_seconds: age,
            ttl_seconds: ttl.as_secs(),
            stale,
            generation: meta.generation,
            indicators: meta.counts.indicators,
            high_confidence: meta.counts.high_confidence,
            refresh_running_since: running.map(stix_timestamp),
        },
        components,
    }
}
