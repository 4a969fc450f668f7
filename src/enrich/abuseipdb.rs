//! AbuseIPDB: the blacklist and `/check` answers, fetched within daily budgets that are never
//! exceeded, and kept in the store for the pipeline to merge with local IOCs.
//!
//! This module owns the `BLACKLIST` and `CHECKS` tables, the `budget:*` and `abuseipdb:*`
//! values in `meta`, and the "abuseipdb" health component. [`Service`] does the work;
//! [`enricher`] plugs it into every cycle (blacklist refresh before the source is read,
//! background `/check`s after publication) and registers it so that other parts of the
//! appliance (the REST API) can reach it through [`service`] with the app's store.
//!
//! Every call is counted and committed in [`budget`] before it is sent. Background
//! `/check`s may use `ABUSEIPDB_CHECK_DAILY_LIMIT − ABUSEIPDB_CHECK_RESERVE` calls a day;
//! [`Service::check_now`] may use the whole limit.
//!
//! Known shortcoming: a background check task that is still running when the app shuts
//! down is simply dropped; the calls it counted but did not make are lost from the day's
//! budget (by design, never added to it).

pub mod blacklist;
pub mod budget;
pub mod checks;
pub mod client;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::config::{AbuseIpDbSettings, Secret, Settings};
use crate::health::{HealthBoard, Status};
use crate::ioc::ExternalFacts;
use crate::pipeline::{Candidates, Enricher};
use crate::source::address::is_public;
use crate::store::{Store, StoreError};
use blacklist::BlacklistState;
use budget::{BudgetState, Endpoint, Refusal, Rules};
pub use checks::Cached;
pub use client::{AbuseIpDbClient, AbuseIpDbError};

const HEALTH: &str = "abuseipdb";

/// What [`Service::check_now`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// A fresh cached answer; no call was made.
    Cached {
        facts: ExternalFacts,
        fetched_at: Timestamp,
    },
    /// A new answer, now cached.
    Fetched { facts: ExternalFacts },
    /// No call was allowed; the stale cached answer, if any, comes along.
    Refused {
        refusal: Refusal,
        cached: Option<ExternalFacts>,
    },
}

/// The AbuseIPDB service, or `None` in local-only mode (no API key).
pub fn service(
    settings: &Arc<Settings>,
    store: &Arc<Store>,
    health: &Arc<HealthBoard>,
    clock: &SharedClock,
) -> Option<Arc<Service>> {
    let now = clock.now();
    let Some(key) = settings.abuseipdb.api_key.clone() else {
        let detail = "local-only mode (no ABUSEIPDB_API_KEY)";
        health.set(HEALTH, Status::Disabled, detail, now);
        return None;
    };
    let service = match Service::new(&settings.abuseipdb, key, store, health, clock) {
        Ok(service) => Arc::new(service),
        Err(err) => {
            tracing::error!(error = %err, "AbuseIPDB enrichment is off");
            health.set(HEALTH, Status::Degraded, err.to_string(), now);
            return None;
        }
    };
    service.publish_health(now);
    Some(service)
}

/// The service's part in every refresh cycle.
pub fn hook(service: Arc<Service>) -> Arc<dyn Enricher> {
    Arc::new(CycleHook(service))
}

// === impl Service ===

/// AbuseIPDB with its budgets, caches and health reporting.
pub struct Service {
    settings: AbuseIpDbSettings,
    client: AbuseIpDbClient,
    key_print: String,
    store: Arc<Store>,
    health: Arc<HealthBoard>,
    clock: SharedClock,
    /// The running background check task; at most one at a time.
    background: Mutex<Option<JoinHandle<()>>>,
    /// Why the last blacklist fetch failed, until one succeeds.
    problem: Mutex<Option<String>>,
}

impl Service {
    /// # Errors
    /// [`AbuseIpDbError::Transport`] when the HTTP client cannot be built.
    pub fn new(
        settings: &AbuseIpDbSettings,
        key: Secret,
        store: &Arc<Store>,
        health: &Arc<HealthBoard>,
        clock: &SharedClock,
    ) -> Result<Service, AbuseIpDbError> {
        let key_print = budget::fingerprint(key.expose());
        Ok(Service {
            client: AbuseIpDbClient::new(settings, key)?,
            settings: settings.clone(),
            key_print,
            store: store.clone(),
            health: health.clone(),
            clock: clock.clone(),
            background: Mutex::new(None),
            problem: Mutex::new(None),
        })
    }

    fn blacklist_rules(&self) -> Rules {
        Rules {
            limit: self.settings.blacklist_daily_limit,
            paced: true,
            min_interval: self.settings.blacklist_cache_ttl,
        }
    }

    fn check_rules(&self, on_demand: bool) -> Rules {
        let s = &self.settings;
        let limit = if on_demand {
            s.check_daily_limit
        } else {
            s.check_daily_limit.saturating_sub(s.check_reserve)
        };
        Rules {
            limit,
            paced: false,
            min_interval: Duration::ZERO,
        }
    }

    /// Runs a store operation on the blocking pool.
    async fn blocking<T, F>(&self, work: F) -> Result<T, AbuseIpDbError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| AbuseIpDbError::Store(e.to_string()))?
            .map_err(|e| AbuseIpDbError::Store(e.to_string()))
    }

    /// Counts one call (durably) or says why none is allowed.
    async fn reserve(
        &self,
        endpoint: Endpoint,
        rules: Rules,
    ) -> Result<Result<BudgetState, Refusal>, AbuseIpDbError> {
        let now = self.clock.now();
        let print = self.key_print.clone();
        self.blocking(move |s| budget::reserve(s, endpoint, now, rules, &print))
            .await
    }

    /// Records what a sent call taught about the upstream: its remaining count, a wait it
    /// asked for, a rejected key, or a failure that starts a back-off.
    async fn settle(
        &self,
        endpoint: Endpoint,
        outcome: Result<client::RateHeaders, &AbuseIpDbError>,
    ) {
        let now = self.clock.now();
        let print = self.key_print.clone();
        let result = match outcome {
            Ok(rate) => {
                let change =
                    move |b: &mut BudgetState| b.succeeded(now, rate.remaining, rate.reset);
                self.blocking(move |s| budget::update(s, endpoint, now, change).map(drop))
                    .await
            }
            Err(AbuseIpDbError::BadKey { status, .. }) => {
                tracing::warn!(
                    status,
                    "AbuseIPDB rejected the API key; no calls until it changes"
                );
                self.blocking(move |s| budget::reject_key(s, &print)).await
            }
            Err(err) if err.backs_off() => {
                let upstream = match err {
                    AbuseIpDbError::RateLimited { rate, .. } => {
                        Some(client::retry_until(rate, now))
                    }
                    _ => None,
                };
                let change = move |b: &mut BudgetState| b.failed(now, upstream);
                self.blocking(move |s| budget::update(s, endpoint, now, change).map(drop))
                    .await
            }
            Err(_) => Ok(()),
        };
        if let Err(err) = result {
            tracing::warn!(endpoint = endpoint.as_str(), error = %err, "could not record an AbuseIPDB call outcome");
        }
    }

    // --- blacklist ---

    /// Refreshes the blacklist when it is due and the budget allows; returns the figures
    /// for the cycle log. Never fails: the stored list stays on every problem.
    pub async fn before_cycle(&self, now: Timestamp) -> BTreeMap<String, String> {
        let outcome = self.refresh_blacklist(now).await;
        let mut notes = BTreeMap::new();
        notes.insert("abuseipdb_blacklist".to_string(), outcome);
        if let Ok((blacklist, check)) = self.budgets().await {
            let note = self.budget_note(&blacklist, &check);
            notes.insert("abuseipdb_budget".to_string(), note);
        }
        self.publish_health(self.clock.now());
        notes
    }

    fn blacklist_due(&self, state: &BlacklistState, now: Timestamp) -> bool {
        let ttl = i64::try_from(self.settings.blacklist_cache_ttl.as_secs()).unwrap_or(i64::MAX);
        state
            .fetched_at
            .is_none_or(|at| budget::plus_seconds(at, ttl) <= now)
    }

    async fn refresh_blacklist(&self, now: Timestamp) -> String {
        let state = match self.blocking(blacklist::state).await {
            Ok(state) => state,
            Err(err) => return format!("kept the stored list (its state is unreadable: {err})"),
        };
        if !self.blacklist_due(&state, now) {
            return format!("kept {} entries (fresh)", state.entries);
        }
        match self
            .reserve(Endpoint::Blacklist, self.blacklist_rules())
            .await
        {
            Ok(Ok(_)) => self.fetch_blacklist(&state).await,
            Ok(Err(refusal)) => format!("kept {} entries ({refusal})", state.entries),
            Err(err) => format!("kept {} entries ({err})", state.entries),
        }
    }

    async fn fetch_blacklist(&self, previous: &BlacklistState) -> String {
        let settings = &self.settings;
        let result = self
            .client
            .blacklist(settings.confidence_minimum, settings.blacklist_limit)
            .await;
        self.settle(Endpoint::Blacklist, result.as_ref().map(|r| r.rate))
            .await;
        let body = match result {
            Ok(reply) => reply.data,
            Err(err) => {
                tracing::warn!(error = %err, kept = previous.entries, "AbuseIPDB blacklist fetch failed; the stored list stays");
                self.set_problem(Some(format!("blacklist fetch failed: {err}")));
                return format!("kept {} entries (fetch failed: {err})", previous.entries);
            }
        };
        let now = self.clock.now();
        match self
            .blocking(move |s| blacklist::apply(s, &body, now))
            .await
        {
            Ok(applied) => {
                self.set_problem(None);
                describe_applied(&applied)
            }
            Err(err) => {
                self.set_problem(Some(format!("blacklist not stored: {err}")));
                format!("kept {} entries (not stored: {err})", previous.entries)
            }
        }
    }

    fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().expect("problem lock") = problem;
    }

    // --- checks ---

    /// Starts one background task that `/check`s the candidates (most recent first) within
    /// the background share of the check budget, unless one is still running.
    pub fn after_publish(self: &Arc<Self>, candidates: &Candidates) {
        let mut slot = self.background.lock().expect("background lock");
        if slot.as_ref().is_some_and(|task| !task.is_finished()) {
            tracing::debug!("AbuseIPDB background checks still running; skipping this round");
            return;
        }
        let share = usize::try_from(self.check_rules(false).limit).unwrap_or(usize::MAX);
        let addrs: Vec<IpAddr> = candidates
            .check
            .iter()
            .copied()
            .filter(|a| is_public(*a))
            .take(share)
            .collect();
        if addrs.is_empty() {
            return;
        }
        let service = self.clone();
        *slot = Some(tokio::spawn(async move {
            service.background_checks(addrs).await;
        }));
    }

    /// Waits for the running background task, if any (tests and shutdown use it).
    pub async fn background_settled(&self) {
        let task = self.background.lock().expect("background lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    async fn background_checks(&self, addrs: Vec<IpAddr>) {
        let (mut fetched, mut cached) = (0u32, 0u32);
        let mut stopped = None;
        for addr in addrs {
            if self.fresh(addr).await.is_some() {
                cached += 1;
                continue;
            }
            match self.call_check(addr, self.check_rules(false)).await {
                Ok(Ok(_)) => fetched += 1,
                Ok(Err(refusal)) => {
                    stopped = Some(refusal.to_string());
                    break;
                }
                Err(err) if err.backs_off() || matches!(err, AbuseIpDbError::BadKey { .. }) => {
                    stopped = Some(err.to_string());
                    break;
                }
                Err(err) => tracing::debug!(%addr, error = %err, "AbuseIPDB check refused"),
            }
        }
        tracing::info!(fetched, cached, stopped = ?stopped, "AbuseIPDB background checks done");
        self.publish_health(self.clock.now());
    }

    async fn fresh(&self, addr: IpAddr) -> Option<Cached> {
        let cached = self.blocking(move |s| checks::get(s, addr)).await.ok()??;
        let now = self.clock.now();
        cached
            .is_fresh(now, self.settings.check_cache_ttl)
            .then_some(cached)
    }

    /// Counts, sends and caches one `/check`.
    async fn call_check(
        &self,
        addr: IpAddr,
        rules: Rules,
    ) -> Result<Result<ExternalFacts, Refusal>, AbuseIpDbError> {
        if let Err(refusal) = self.reserve(Endpoint::Check, rules).await? {
            return Ok(Err(refusal));
        }
        let result = self.client.check(addr).await;
        self.settle(Endpoint::Check, result.as_ref().map(|r| r.rate))
            .await;
        let facts = checks::facts(&result?.data);
        let now = self.clock.now();
        let stored = facts.clone();
        self.blocking(move |s| checks::put(s, addr, &stored, now))
            .await?;
        Ok(Ok(facts))
    }

    /// Checks one address now, for on-demand enrichment: a fresh cached answer unless
    /// `force`, else a call within the full daily check budget.
    ///
    /// # Errors
    /// A failed call ([`AbuseIpDbError`]); a refused call is `Ok(CheckOutcome::Refused)`.
    pub async fn check_now(
        &self,
        addr: IpAddr,
        force: bool,
    ) -> Result<CheckOutcome, AbuseIpDbError> {
        let addr = addr.to_canonical();
        let cached = self.blocking(move |s| checks::get(s, addr)).await?;
        let now = self.clock.now();
        if let Some(c) = cached
            .as_ref()
            .filter(|c| !force && c.is_fresh(now, self.settings.check_cache_ttl))
        {
            let (facts, fetched_at) = (c.facts.clone(), c.fetched_at);
            return Ok(CheckOutcome::Cached { facts, fetched_at });
        }
        let refused = |refusal| CheckOutcome::Refused {
            refusal,
            cached: cached.clone().map(|c| c.facts),
        };
        if !is_public(addr) {
            return Ok(refused(Refusal::NotPublic));
        }
        let outcome = match self.call_check(addr, self.check_rules(true)).await? {
            Ok(facts) => CheckOutcome::Fetched { facts },
            Err(refusal) => refused(refusal),
        };
        self.publish_health(self.clock.now());
        Ok(outcome)
    }

    // --- health and figures ---

    /// Both budgets as of now.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn budgets(&self) -> Result<(BudgetState, BudgetState), AbuseIpDbError> {
        let now = self.clock.now();
        self.blocking(move |s| {
            Ok((
                budget::load(s, Endpoint::Blacklist, now)?,
                budget::load(s, Endpoint::Check, now)?,
            ))
        })
        .await
    }

    fn budget_note(&self, blacklist: &BudgetState, check: &BudgetState) -> String {
        let s = &self.settings;
        format!(
            "blacklist {}/{}, check {}/{} ({} for background), next reset {}",
            blacklist.used,
            s.blacklist_daily_limit,
            check.used,
            s.check_daily_limit,
            self.check_rules(false).limit,
            budget::next_reset(self.clock.now()),
        )
    }

    /// Sets the "abuseipdb" health component from the stored budgets and blacklist.
    /// Blocking (small reads); async callers accept that for a few reads per cycle.
    pub fn publish_health(&self, now: Timestamp) {
        let read = || -> Result<_, StoreError> {
            Ok((
                budget::load(&self.store, Endpoint::Blacklist, now)?,
                budget::load(&self.store, Endpoint::Check, now)?,
                blacklist::state(&self.store)?,
                budget::key_rejected(&self.store, &self.key_print)?,
            ))
        };
        let (list_budget, check_budget, list, rejected) = match read() {
            Ok(values) => values,
            Err(err) => {
                let detail = format!("state unreadable: {err}");
                self.health.set(HEALTH, Status::Degraded, detail, now);
                return;
            }
        };
        let problem = self.problem.lock().expect("problem lock").clone();
        let (status, detail) = match (rejected, problem) {
            (true, _) => (Status::Degraded, "API key rejected".to_string()),
            (false, Some(problem)) => (Status::Degraded, problem),
            (false, None) => (Status::Ok, format!("blacklist of {} entries", list.entries)),
        };
        self.health.set(HEALTH, status, detail, now);
        let figures = self.figures(&list_budget, &check_budget, &list, now);
        self.health.set_figures(HEALTH, figures);
    }

    fn figures(
        &self,
        list_budget: &BudgetState,
        check_budget: &BudgetState,
        list: &BlacklistState,
        now: Timestamp,
    ) -> BTreeMap<String, serde_json::Value> {
        use serde_json::json;
        let s = &self.settings;
        let at = |t: Option<Timestamp>| t.map(|t| t.to_string());
        BTreeMap::from([
            ("blacklist_used".into(), json!(list_budget.used)),
            ("blacklist_limit".into(), json!(s.blacklist_daily_limit)),
            ("check_used".into(), json!(check_budget.used)),
            ("check_limit".into(), json!(s.check_daily_limit)),
            ("check_reserve".into(), json!(s.check_reserve)),
            (
                "next_reset".into(),
                json!(budget::next_reset(now).to_string()),
            ),
            ("last_fetch".into(), json!(at(list.fetched_at))),
            ("generated_at".into(), json!(list.generated_at)),
            ("entries".into(), json!(list.entries)),
            (
                "blocked_until".into(),
                json!(at(list_budget
                    .blocked_until
                    .max(check_budget.blocked_until))),
            ),
        ])
    }
}

fn describe_applied(applied: &blacklist::Applied) -> String {
    if !applied.rewritten {
        return format!(
            "unchanged since the last fetch; kept {} entries",
            applied.entries
        );
    }
    let skipped: u64 = applied.skipped.values().sum();
    if skipped == 0 {
        return format!("fetched {} entries", applied.entries);
    }
    format!(
        "fetched {} entries, skipped {skipped} ({:?})",
        applied.entries, applied.skipped
    )
}

// === impl CycleHook ===

/// The service as the pipeline sees it.
struct CycleHook(Arc<Service>);

impl Enricher for CycleHook {
    fn before_cycle(&self, now: Timestamp) -> BoxFuture<'_, BTreeMap<String, String>> {
        Box::pin(self.0.before_cycle(now))
    }

    fn after_publish(&self, candidates: &Candidates) {
        self.0.after_publish(candidates);
    }
}
