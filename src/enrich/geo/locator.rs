//! The locator: one run over a list of addresses. Cache first, then the providers in the
//! configured order; what one provider cannot answer (failure, pause, unknown) goes to the
//! next. Answers are cached with the provider's name, one write transaction per request.
//!
//! An address becomes a negative entry only when every provider was asked and none knew it;
//! an address some provider could not be asked about (down, paused, out of time) gets no
//! entry and comes back as a candidate in a later cycle.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::cache::Cache;
use super::provider::{Failure, Provider};
use crate::clock::SharedClock;
use crate::ioc::Location;
use crate::source::address::is_public;

/// A provider that failed this many requests in a row is not asked again in the run.
const MAX_FAILURES_IN_A_ROW: u32 = 2;

/// What one or more runs did, for the cycle log and health.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    pub runs: u64,
    pub cache_hits: u64,
    /// Requests sent, per provider.
    pub requests: BTreeMap<&'static str, u64>,
    /// Requests that failed (not counting pauses), per provider.
    pub failures: BTreeMap<&'static str, u64>,
    /// Providers found paused during the run.
    pub paused: BTreeSet<&'static str>,
    pub located: u64,
    pub unknown: u64,
    /// Addresses left for a later run (providers down or paused, time or work bound).
    pub deferred: u64,
}

impl RunReport {
    pub fn merge(&mut self, other: RunReport) {
        self.runs += other.runs;
        self.cache_hits += other.cache_hits;
        for (name, n) in other.requests {
            *self.requests.entry(name).or_default() += n;
        }
        for (name, n) in other.failures {
            *self.failures.entry(name).or_default() += n;
        }
        self.paused.extend(other.paused);
        self.located += other.located;
        self.unknown += other.unknown;
        self.deferred += other.deferred;
    }
}

/// Bounds of one run, so a run ends in reasonable time whatever the providers do.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_addresses: usize,
    pub max_duration: Duration,
}

pub struct Locator {
    providers: Vec<Arc<dyn Provider>>,
    cache: Cache,
    clock: SharedClock,
    bounds: Bounds,
}

/// The working state of one run.
struct Run {
    pending: Vec<IpAddr>,
    /// Addresses some provider could not be asked about.
    inconclusive: HashSet<IpAddr>,
    deadline: Instant,
    report: RunReport,
}

impl Locator {
    pub fn new(
        providers: Vec<Arc<dyn Provider>>,
        cache: Cache,
        clock: SharedClock,
        bounds: Bounds,
    ) -> Locator {
        Locator {
            providers,
            cache,
            clock,
            bounds,
        }
    }

    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Locates what the cache does not know among `addrs`.
    pub async fn run(&self, addrs: Vec<IpAddr>) -> RunReport {
        let mut seen = HashSet::new();
        let addrs: Vec<IpAddr> = addrs
            .into_iter()
            .filter(|addr| is_public(*addr) && seen.insert(*addr))
            .collect();
        let mut run = Run {
            pending: Vec::new(),
            inconclusive: HashSet::new(),
            deadline: Instant::now() + self.bounds.max_duration,
            report: RunReport {
                runs: 1,
                ..RunReport::default()
            },
        };
        let (mut todo, hits) = self.missing(addrs).await;
        run.report.cache_hits = hits;
        if todo.len() > self.bounds.max_addresses {
            run.report.deferred += (todo.len() - self.bounds.max_addresses) as u64;
            todo.truncate(self.bounds.max_addresses);
        }
        run.pending = todo;
        for provider in &self.providers {
            if run.pending.is_empty() {
                break;
            }
            self.ask(provider.as_ref(), &mut run).await;
        }
        self.finish(run).await
    }

    async fn missing(&self, addrs: Vec<IpAddr>) -> (Vec<IpAddr>, u64) {
        let cache = self.cache.clone();
        let now = self.clock.now();
        let fallback = addrs.clone();
        match tokio::task::spawn_blocking(move || cache.missing(addrs, now)).await {
            Ok(Ok(found)) => found,
            other => {
                tracing::warn!(error = ?other.err(), "geolocation cache unreadable; looking everything up");
                (fallback, 0)
            }
        }
    }

    /// Asks one provider about every pending address, in its batch size.
    async fn ask(&self, provider: &dyn Provider, run: &mut Run) {
        let pending = std::mem::take(&mut run.pending);
        let mut chunks = pending.chunks(provider.batch_limit().max(1));
        let mut passed_on = Vec::new();
        let mut failures_in_a_row = 0;
        for chunk in chunks.by_ref() {
            if Instant::now() >= run.deadline {
                run.inconclusive.extend(chunk);
                passed_on.extend_from_slice(chunk);
                break;
            }
            match provider.locate(chunk).await {
                Ok(answers) => {
                    failures_in_a_row = 0;
                    *run.report.requests.entry(provider.name()).or_default() += 1;
                    let found = self.keep(chunk, answers, &mut passed_on).await;
                    run.report.located += found;
                }
                Err(failure) => {
                    failures_in_a_row += 1;
                    let paused = note_failure(provider.name(), &failure, &mut run.report);
                    let stop = paused || failures_in_a_row >= MAX_FAILURES_IN_A_ROW;
                    run.inconclusive.extend(chunk);
                    passed_on.extend_from_slice(chunk);
                    if stop {
                        break;
                    }
                }
            }
        }
        // What a paused provider never saw goes on to the next provider as well.
        for rest in chunks {
            run.inconclusive.extend(rest);
            passed_on.extend_from_slice(rest);
        }
        run.pending = passed_on;
    }

    /// Caches the located answers of one request; the others go to `passed_on`.
    async fn keep(
        &self,
        chunk: &[IpAddr],
        answers: Vec<Option<Location>>,
        passed_on: &mut Vec<IpAddr>,
    ) -> u64 {
        let mut located = Vec::new();
        for (addr, answer) in chunk.iter().zip(answers) {
            match answer {
                Some(location) => located.push((*addr, Some(location))),
                None => passed_on.push(*addr),
            }
        }
        let count = located.len() as u64;
        self.write(located).await;
        count
    }

    /// Caches negatives for addresses every provider was asked about.
    async fn finish(&self, mut run: Run) -> RunReport {
        let mut negatives = Vec::new();
        for addr in run.pending.drain(..) {
            if run.inconclusive.contains(&addr) {
                run.report.deferred += 1;
            } else {
                negatives.push((addr, None));
            }
        }
        run.report.unknown = negatives.len() as u64;
        self.write(negatives).await;
        for provider in &self.providers {
            if provider.paused_for().is_some() {
                run.report.paused.insert(provider.name());
            }
        }
        run.report
    }

    async fn write(&self, answers: Vec<(IpAddr, Option<Location>)>) {
        if answers.is_empty() {
            return;
        }
        let cache = self.cache.clone();
        let now = self.clock.now();
        let written = tokio::task::spawn_blocking(move || cache.write(&answers, now)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "geolocation results not cached"),
            Err(err) => tracing::warn!(error = %err, "geolocation cache writer stopped"),
        }
    }
}

/// Counts a failed request; true when the provider must not be asked again in this run.
fn note_failure(name: &'static str, failure: &Failure, report: &mut RunReport) -> bool {
    match failure {
        Failure::Paused { wait } => {
            tracing::debug!(
                provider = name,
                wait_ms = wait.as_millis() as u64,
                "geo provider paused"
            );
            report.paused.insert(name);
            true
        }
        Failure::Failed { reason } => {
            tracing::debug!(provider = name, reason = %reason, "geo request failed");
            *report.requests.entry(name).or_default() += 1;
            *report.failures.entry(name).or_default() += 1;
            false
        }
    }
}
