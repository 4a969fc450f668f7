//! Geolocation: where each public address is, from an offline `.mmdb` file and three web
//! providers (ip-api.com, ipwho.is, GeoJS) asked in the configured order, cached in the
//! store's `GEO` table for weeks.
//!
//! This module owns the background run. A cycle never waits for geolocation: after each
//! publication [`GeoService`] starts one run (never two at once) over the addresses that lack
//! a cache entry plus a bounded number of expired entries, and the next cycle publishes what
//! it found. Submodules: one per provider, [`provider`] for what they share, [`cache`] for the
//! table and [`locator`] for the fallback order.

pub mod cache;
pub mod geojs;
pub mod ipapi;
pub mod ipwhois;
pub mod locator;
pub mod mmdb;
pub mod provider;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;

use self::cache::Cache;
use self::locator::{Bounds, Locator, RunReport};
use self::provider::Provider;
use crate::clock::SharedClock;
use crate::config::{GeoProviderKind, GeoSettings, Settings};
use crate::health::{HealthBoard, Status};
use crate::pipeline::{Candidates, Enricher};
use crate::store::Store;

/// Bounds of one background run: enough for a large first import at ip-api's batch rate,
/// short enough that a run never spans many cycles.
const RUN_BOUNDS: Bounds = Bounds {
    max_addresses: 10_000,
    max_duration: Duration::from_secs(600),
};

/// Most expired cache entries refreshed per run.
const MAX_STALE: usize = 1_000;

/// The geolocation service, or `None` (health "geo" disabled) when no provider is set.
pub fn service(
    settings: &Arc<Settings>,
    store: &Arc<Store>,
    health: &Arc<HealthBoard>,
    clock: &SharedClock,
) -> Option<Arc<GeoService>> {
    if settings.geo.providers.is_empty() {
        health.set(
            "geo",
            Status::Disabled,
            "GEO_PROVIDERS is none",
            clock.now(),
        );
        return None;
    }
    Some(Arc::new(GeoService::new(
        &settings.geo,
        store.clone(),
        health.clone(),
        clock.clone(),
    )))
}

/// Builds the configured providers; a `.mmdb` file that cannot be opened is left out and
/// reported in `problems`.
fn build_providers(geo: &GeoSettings, problems: &mut Vec<String>) -> Vec<Arc<dyn Provider>> {
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    for kind in &geo.providers {
        match kind {
            GeoProviderKind::Mmdb => match geo.mmdb_path.as_deref().map(mmdb::Mmdb::open) {
                Some(Ok(db)) => providers.push(Arc::new(db)),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "the offline geolocation database is not used");
                    problems.push(err.to_string());
                }
                None => problems.push("mmdb is listed but GEO_MMDB_PATH is not set".into()),
            },
            GeoProviderKind::IpApi => providers.push(Arc::new(ipapi::IpApi::new(
                &geo.ipapi_base_url,
                geo.request_delay,
                geo.timeout,
            ))),
            GeoProviderKind::IpWhois => providers.push(Arc::new(ipwhois::IpWhois::new(
                &geo.ipwhois_base_url,
                geo.request_delay,
                geo.timeout,
            ))),
            GeoProviderKind::GeoJs => providers.push(Arc::new(geojs::GeoJs::new(
                &geo.geojs_base_url,
                geo.request_delay,
                geo.timeout,
            ))),
        }
    }
    providers
}

/// Runs geolocation in the background and reports it to the cycle and to health.
pub struct GeoService {
    inner: Arc<Inner>,
}

struct Inner {
    locator: Locator,
    store: Arc<Store>,
    health: Arc<HealthBoard>,
    clock: SharedClock,
    /// Held for the whole of a run: at most one run at a time.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// Figures of the runs finished since the last cycle started.
    since_cycle: Mutex<RunReport>,
    /// Configuration problems found at start (an unreadable `.mmdb` file).
    problems: Vec<String>,
}

impl GeoService {
    pub fn new(
        geo: &GeoSettings,
        store: Arc<Store>,
        health: Arc<HealthBoard>,
        clock: SharedClock,
    ) -> GeoService {
        let mut problems = Vec::new();
        let providers = build_providers(geo, &mut problems);
        let cache = Cache::new(store.clone(), geo.cache_ttl, geo.negative_ttl);
        let locator = Locator::new(providers, cache, clock.clone(), RUN_BOUNDS);
        let inner = Inner {
            locator,
            store,
            health,
            clock,
            gate: Arc::new(tokio::sync::Mutex::new(())),
            since_cycle: Mutex::new(RunReport::default()),
            problems,
        };
        inner.report_health(&RunReport::default());
        GeoService {
            inner: Arc::new(inner),
        }
    }

    /// Runs geolocation over `addrs` now, after any running run, and returns its figures.
    pub async fn run_now(&self, addrs: Vec<IpAddr>) -> RunReport {
        let _running = self.inner.gate.lock().await;
        self.inner.run(addrs).await
    }

    /// Waits until no run is going (tests use it instead of sleeping).
    pub async fn wait_idle(&self) {
        let _running = self.inner.gate.lock().await;
    }

    /// Names of the providers in use, in order.
    pub fn providers(&self) -> Vec<&'static str> {
        self.inner
            .locator
            .providers()
            .iter()
            .map(|p| p.name())
            .collect()
    }

    /// Starts a background run unless one is going; the addresses of a skipped start are
    /// still candidates in the next cycle.
    fn start(&self, addrs: Vec<IpAddr>) {
        let Ok(running) = self.inner.gate.clone().try_lock_owned() else {
            tracing::debug!("a geolocation run is still going; not starting another");
            return;
        };
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let _running = running;
            inner.run(addrs).await;
        });
    }
}

impl Inner {
    /// One run; the caller holds `gate`.
    async fn run(&self, mut addrs: Vec<IpAddr>) -> RunReport {
        addrs.extend(self.stale().await);
        let report = self.locator.run(addrs).await;
        tracing::debug!(
            cache_hits = report.cache_hits,
            located = report.located,
            unknown = report.unknown,
            deferred = report.deferred,
            requests = ?report.requests,
            "geolocation run finished"
        );
        self.since_cycle
            .lock()
            .expect("geo figures lock")
            .merge(report.clone());
        report
    }

    async fn stale(&self) -> Vec<IpAddr> {
        let cache = self.locator.cache().clone();
        let now = self.clock.now();
        match tokio::task::spawn_blocking(move || cache.stale(now, MAX_STALE)).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "expired geolocation entries not found");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Health "geo" from the providers' current pauses and the last runs' figures.
    fn report_health(&self, report: &RunReport) {
        let providers = self.locator.providers();
        let paused: Vec<&str> = providers
            .iter()
            .filter(|p| p.paused_for().is_some())
            .map(|p| p.name())
            .collect();
        let requests: u64 = report.requests.values().sum();
        let failures: u64 = report.failures.values().sum();
        let (status, detail) = if providers.is_empty() {
            (
                Status::Degraded,
                format!("no usable provider: {}", self.problems.join("; ")),
            )
        } else if paused.len() == providers.len() {
            (
                Status::Degraded,
                "every geolocation provider is paused by its rate limit".into(),
            )
        } else if requests > 0 && failures == requests {
            (
                Status::Degraded,
                "every geolocation request of the last runs failed".into(),
            )
        } else if !self.problems.is_empty() {
            (Status::Degraded, self.problems.join("; "))
        } else {
            let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
            (Status::Ok, format!("providers: {}", names.join(", ")))
        };
        self.health.set("geo", status, detail, self.clock.now());
        self.health
            .set_figures("geo", self.health_figures(report, &paused));
    }

    fn health_figures(
        &self,
        report: &RunReport,
        paused: &[&str],
    ) -> BTreeMap<String, serde_json::Value> {
        let counts = self.store.snapshot().counts.clone();
        let share = if counts.public == 0 {
            0.0
        } else {
            counts.geolocated as f64 / counts.public as f64
        };
        let mut figures = BTreeMap::new();
        figures.insert("geolocated".into(), counts.geolocated.into());
        figures.insert("public".into(), counts.public.into());
        figures.insert("geolocated_share".into(), share.into());
        figures.insert("paused".into(), paused.into());
        if let Ok(serde_json::Value::Object(last)) = serde_json::to_value(report) {
            figures.insert("since_last_cycle".into(), serde_json::Value::Object(last));
        }
        figures
    }
}

/// Figures of the runs since the last cycle, as cycle-log notes.
fn notes(report: &RunReport, paused: &[&'static str]) -> BTreeMap<String, String> {
    let mut notes = BTreeMap::new();
    notes.insert("geo_runs".into(), report.runs.to_string());
    notes.insert("geo_cache_hits".into(), report.cache_hits.to_string());
    notes.insert("geo_located".into(), report.located.to_string());
    notes.insert("geo_unknown".into(), report.unknown.to_string());
    notes.insert("geo_deferred".into(), report.deferred.to_string());
    for (name, n) in &report.requests {
        notes.insert(format!("geo_requests_{name}"), n.to_string());
    }
    for (name, n) in &report.failures {
        notes.insert(format!("geo_failures_{name}"), n.to_string());
    }
    if !paused.is_empty() {
        notes.insert("geo_paused".into(), paused.join(","));
    }
    notes
}

impl Enricher for GeoService {
    fn before_cycle(&self, _now: Timestamp) -> BoxFuture<'_, BTreeMap<String, String>> {
        Box::pin(async move {
            let report = std::mem::take(&mut *self.inner.since_cycle.lock().expect("geo lock"));
            self.inner.report_health(&report);
            let mut paused: Vec<&'static str> = report.paused.iter().copied().collect();
            for provider in self.inner.locator.providers() {
                if provider.paused_for().is_some() && !paused.contains(&provider.name()) {
                    paused.push(provider.name());
                }
            }
            notes(&report, &paused)
        })
    }

    fn after_publish(&self, candidates: &Candidates) {
        self.start(candidates.geo.clone());
    }
}
