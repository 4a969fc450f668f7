//! One refresh cycle: stream the local source, merge each row with the stored AbuseIPDB and
//! geolocation data, score it, and publish everything as one snapshot.
//!
//! Three stages run at once, joined by bounded channels of row batches, so memory holds a
//! few batches, not the table: an async task reads the source, a read-ahead thread
//! ([`super::readahead`]) looks up what is stored about each row's key, and one blocking
//! thread writes the snapshot. A row whose local facts and enrichment are unchanged is
//! settled from its stored prefix without touching the enrichment tables.
//!
//! The cycle commits only when the source was read to the end: a failed read leaves the
//! previous snapshot exactly as it was.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot};

use super::readahead::{Prepared, ReadAhead};
use super::score::final_confidence;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::health::{HealthBoard, Status};
use crate::ioc::{BlacklistEntry, ExternalFacts, IocFacts, IocKey, KeyMap, LocalFacts, Location};
use crate::source::address::is_public;
use crate::source::clean::Rules;
use crate::source::{LocalRow, LocalSource, RowTally, SourceError};
use crate::stix::Renderer;
use crate::store::tables::{RecordPrefix, Stamped, enrichment, flags};
use crate::store::{
    CycleSummary, EnrichmentBytes, Fingerprint, PublishParams, Store, StoreError, Writer,
};

/// Most geolocation candidates handed on per cycle; the rest wait for the next one.
const MAX_GEO_CANDIDATES: usize = 100_000;

/// Most `/check` candidates handed on per cycle (the daily budget is far smaller).
const MAX_CHECK_CANDIDATES: usize = 5_000;

/// Work for the enrichment modules, found while publishing.
#[derive(Debug, Default, Clone)]
pub struct Candidates {
    /// Public addresses without any geolocation cache entry.
    pub geo: Vec<IpAddr>,
    /// Local public addresses without a `/check` answer, most recently reported first.
    pub check: Vec<IpAddr>,
}

/// Enrichment that takes part in every cycle (AbuseIPDB, geolocation).
pub trait Enricher: Send + Sync {
    /// Runs before the source is read, e.g. to refresh the blacklist. Returns figures for
    /// the cycle log; failures are reported there and never stop the cycle.
    fn before_cycle(&self, now: Timestamp) -> BoxFuture<'_, BTreeMap<String, String>>;

    /// Receives the addresses that lack enrichment after a publication.
    fn after_publish(&self, candidates: &Candidates);
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("a refresh cycle is already running (started {since})")]
    AlreadyRunning { since: Timestamp },
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("the cycle task stopped unexpectedly: {0}")]
    Task(String),
}

/// Everything a cycle needs; shared by the worker, the API and the CLI.
pub struct Pipeline {
    pub settings: Arc<Settings>,
    pub store: Arc<Store>,
    pub source: Arc<LocalSource>,
    pub clock: SharedClock,
    pub renderer: Renderer,
    pub enrichers: Vec<Arc<dyn Enricher>>,
    pub health: Arc<HealthBoard>,
    running: std::sync::Mutex<Option<Timestamp>>,
}

impl Pipeline {
    pub fn new(
        settings: Arc<Settings>,
        store: Arc<Store>,
        source: Arc<LocalSource>,
        clock: SharedClock,
        health: Arc<HealthBoard>,
    ) -> Pipeline {
        let renderer = Renderer::new(&settings.stix, settings.cycle.validity_days);
        Pipeline {
            settings,
            store,
            source,
            clock,
            renderer,
            enrichers: Vec::new(),
            health,
            running: std::sync::Mutex::new(None),
        }
    }

    /// When the running cycle started, if one is running.
    pub fn running_since(&self) -> Option<Timestamp> {
        *self.running.lock().expect("running lock")
    }

    /// Runs one cycle unless one is already running. The outcome (published or failed) is
    /// recorded in the cycle history and logged on one line.
    ///
    /// # Errors
    /// [`CycleError::AlreadyRunning`], or why the cycle did not publish.
    pub async fn run(&self, trigger: &str) -> Result<CycleSummary, CycleError> {
        let started = self.claim()?;
        self.run_claimed(started, trigger).await
    }

    /// Starts a cycle in the background; returns its start time, or the running cycle's.
    ///
    /// # Errors
    /// [`CycleError::AlreadyRunning`] with the running cycle's start time.
    pub fn start(self: &Arc<Self>, trigger: &str) -> Result<Timestamp, CycleError> {
        let started = self.claim()?;
        let pipeline = self.clone();
        let trigger = trigger.to_string();
        tokio::spawn(async move {
            let _ = pipeline.run_claimed(started, &trigger).await;
        });
        Ok(started)
    }

    fn claim(&self) -> Result<Timestamp, CycleError> {
        let started = self.clock.now();
        let mut running = self.running.lock().expect("running lock");
        if let Some(since) = *running {
            return Err(CycleError::AlreadyRunning { since });
        }
        *running = Some(started);
        Ok(started)
    }

    async fn run_claimed(
        &self,
        started: Timestamp,
        trigger: &str,
    ) -> Result<CycleSummary, CycleError> {
        let _reset = ResetOnDrop(&self.running);
        let clock = Instant::now();
        let mut summary = CycleSummary {
            started_at: Some(started),
            trigger: trigger.to_string(),
            ..CycleSummary::default()
        };
        for enricher in &self.enrichers {
            summary.notes.extend(enricher.before_cycle(started).await);
        }
        let result = self.publish(started, &mut summary).await;
        summary.duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(candidates) => {
                let _ = self.store.set_cycle_duration(summary.duration_ms);
                for enricher in &self.enrichers {
                    enricher.after_publish(candidates);
                }
                log_cycle(&summary);
                self.health.set(
                    "source",
                    Status::Ok,
                    self.source.describe(),
                    self.clock.now(),
                );
            }
            Err(err) => {
                summary.error = Some(err.to_string());
                self.health.set(
                    "source",
                    Status::Degraded,
                    format!("last cycle failed: {err}"),
                    self.clock.now(),
                );
                tracing::warn!(trigger, error = %err, duration_ms = summary.duration_ms, "refresh cycle failed; the previous snapshot is still served");
            }
        }
        record_metrics(&summary);
        if let Err(err) = self.store.push_cycle(&summary) {
            tracing::warn!(error = %err, "could not record the cycle in the history");
        }
        result.map(|_| summary)
    }

    async fn publish(
        &self,
        now: Timestamp,
        summary: &mut CycleSummary,
    ) -> Result<Candidates, CycleError> {
        let (tx, rx) = mpsc::channel::<Vec<LocalRow>>(4);
        let (done_tx, done_rx) = oneshot::channel();
        let rules = Rules {
            now,
            default_confidence: self.settings.scoring.default_local_confidence,
        };
        let source = self.source.clone();
        let batch = self.settings.cycle.batch_size.max(1000);
        tokio::spawn(async move {
            let result = source.stream(rules, batch, tx).await;
            let _ = done_tx.send(result);
        });

        let job = CycleJob::new(&self.settings, now, self.store.clone());
        let store = self.store.clone();
        let renderer = self.renderer.clone();
        let statics = renderer.static_objects();
        let params = job.params;
        let handle = tokio::task::spawn_blocking(move || {
            let mut job = job;
            let outcome = store.publish(params, &renderer, &statics, is_public, |w| {
                job.fill(w, rx, done_rx)
            });
            (job, outcome)
        });
        let (job, outcome) = handle.await.map_err(|e| CycleError::Task(e.to_string()))?;
        summary.rows_read = job.tally.read;
        summary.rows_accepted = job.tally.accepted;
        summary.skipped = job
            .tally
            .skipped
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect();
        summary.repaired = job
            .tally
            .repaired
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect();
        summary.duplicates = job.duplicates;
        summary.blacklist_entries = job.blacklist_entries;
        summary.excluded = job.excluded;
        if let Some(err) = job.source_error {
            return Err(CycleError::Source(err));
        }
        let (report, meta) = outcome?;
        summary.published = report;
        summary.indicators = meta.counts.indicators;
        summary.geolocated = meta.counts.geolocated;
        Ok(job.candidates)
    }
}

struct ResetOnDrop<'a>(&'a std::sync::Mutex<Option<Timestamp>>);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.0.lock() {
            *running = None;
        }
    }
}

/// Cycle counts and durations for `/metrics` (no-ops until a recorder is installed).
fn record_metrics(s: &CycleSummary) {
    let outcome = if s.error.is_none() {
        "published"
    } else {
        "failed"
    };
    metrics::counter!("abuseipdb_ioc_cycles_total", "outcome" => outcome).increment(1);
    metrics::histogram!("abuseipdb_ioc_cycle_duration_seconds", "outcome" => outcome)
        .record(s.duration_ms as f64 / 1000.0);
}

fn log_cycle(s: &CycleSummary) {
    let skipped: u64 = s.skipped.values().sum();
    let repaired: u64 = s.repaired.values().sum();
    tracing::info!(
        trigger = %s.trigger,
        rows_read = s.rows_read,
        rows_accepted = s.rows_accepted,
        skipped,
        skipped_by_reason = ?s.skipped,
        repaired,
        duplicates = s.duplicates,
        excluded = s.excluded,
        blacklist_entries = s.blacklist_entries,
        new = s.published.new,
        changed = s.published.changed,
        unchanged = s.published.unchanged,
        revoked = s.published.revoked,
        expired = s.published.expired,
        purged = s.published.purged,
        indicators = s.indicators,
        geolocated = s.geolocated,
        notes = ?s.notes,
        duration_ms = s.duration_ms,
        "refresh cycle published"
    );
}

/// The blocking half of a cycle: consumes row batches and fills the snapshot writer.
struct CycleJob {
    store: Arc<Store>,
    params: PublishParams,
    settings_hash: u64,
    scoring: crate::config::ScoringSettings,
    exclude: Vec<IpNet>,
    tally: RowTally,
    source_error: Option<SourceError>,
    duplicates: u64,
    excluded: u64,
    blacklist_entries: u64,
    candidates: Candidates,
    check_queue: Vec<(Timestamp, IpAddr)>,
}

impl CycleJob {
    fn new(settings: &Settings, now: Timestamp, store: Arc<Store>) -> CycleJob {
        CycleJob {
            store,
            params: PublishParams {
                now,
                high_threshold: settings.scoring.high_threshold,
                validity: SignedDuration::from_hours(24 * i64::from(settings.cycle.validity_days)),
                retention: SignedDuration::from_hours(
                    24 * i64::from(settings.cycle.revoked_retention_days),
                ),
            },
            settings_hash: settings_fingerprint(settings),
            scoring: settings.scoring,
            exclude: settings.cycle.exclude.clone(),
            tally: RowTally::default(),
            source_error: None,
            duplicates: 0,
            excluded: 0,
            blacklist_entries: 0,
            candidates: Candidates::default(),
            check_queue: Vec::new(),
        }
    }

    fn fill(
        &mut self,
        w: &mut Writer<'_>,
        rx: mpsc::Receiver<Vec<LocalRow>>,
        done: oneshot::Receiver<Result<RowTally, SourceError>>,
    ) -> Result<u64, StoreError> {
        let mut deferred: KeyMap<Vec<LocalRow>> = KeyMap::default();
        self.excluded += self.consume(w, rx, &mut deferred)?;
        match done.blocking_recv() {
            Ok(Ok(tally)) => self.tally = tally,
            Ok(Err(err)) => {
                let reason = err.to_string();
                self.source_error = Some(err);
                return Err(StoreError::Aborted(reason));
            }
            Err(_) => {
                return Err(StoreError::Aborted(
                    "the source task ended without a result".into(),
                ));
            }
        }
        self.refuse_empty_read(w)?;
        for (key, rows) in deferred {
            self.merged(w, key, rows)?;
        }
        self.blacklist_only(w)?;
        self.finish_candidates();
        Ok(self.excluded)
    }

    /// An empty read of a source that used to have rows is far more likely a broken view,
    /// a permission change or a truncated replica than the end of all attacks; revoking the
    /// whole feed on it would be the worst outcome, so the cycle stops instead.
    fn refuse_empty_read(&self, w: &Writer<'_>) -> Result<(), StoreError> {
        if self.tally.accepted > 0 {
            return Ok(());
        }
        let published = w.unseen_local()?;
        if published == 0 {
            return Ok(());
        }
        Err(StoreError::Aborted(format!(
            "the source returned no usable rows while {published} local indicators are published; keeping the snapshot"
        )))
    }

    /// Runs the read-ahead thread over the source rows and writes what it prepares.
    /// Returns the number of excluded rows.
    fn consume(
        &mut self,
        w: &mut Writer<'_>,
        rows: mpsc::Receiver<Vec<LocalRow>>,
        deferred: &mut KeyMap<Vec<LocalRow>>,
    ) -> Result<u64, StoreError> {
        let ahead = self.store.lookahead()?;
        let reader = ReadAhead {
            settings_hash: self.settings_hash,
            exclude: self.exclude.clone(),
        };
        let (out, prepared) = std::sync::mpsc::sync_channel::<Vec<Prepared>>(4);
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || reader.run(&ahead, rows, out));
            let written = self.write_prepared(w, &prepared, deferred);
            // Closing our end stops the read-ahead (and through it the source) early when
            // the writer failed.
            drop(prepared);
            let excluded = handle
                .join()
                .map_err(|_| StoreError::Aborted("the read-ahead thread panicked".into()))?;
            written?;
            excluded
        })
    }

    fn write_prepared(
        &mut self,
        w: &mut Writer<'_>,
        prepared: &std::sync::mpsc::Receiver<Vec<Prepared>>,
        deferred: &mut KeyMap<Vec<LocalRow>>,
    ) -> Result<(), StoreError> {
        while let Ok(batch) = prepared.recv() {
            for row in batch {
                self.row(w, row, deferred)?;
            }
        }
        Ok(())
    }

    fn row(
        &mut self,
        w: &mut Writer<'_>,
        row: Prepared,
        deferred: &mut KeyMap<Vec<LocalRow>>,
    ) -> Result<(), StoreError> {
        let key = row.key;
        let local = LocalRow {
            addr: row.addr,
            key,
            facts: row.local,
        };
        if let Some(rows) = deferred.get_mut(&key) {
            rows.push(local);
            self.duplicates += 1;
            return Ok(());
        }
        if w.seen_with(key, row.prefix.as_ref())? {
            self.duplicates += 1;
            return self.add_spelling(w, key, local);
        }
        if row.prefix.is_some_and(|p| p.has(flags::MULTI)) {
            deferred.insert(key, vec![local]);
            return Ok(());
        }
        self.publish_local(
            w,
            Pending {
                key,
                prefix: row.prefix,
                addr: local.addr,
                local: local.facts,
                spellings: 1,
                local_hash: row.local_hash,
                enrichment: row.enrichment,
            },
        )
    }

    /// One address's merged local facts, ready to publish.
    fn pending(
        &self,
        w: &Writer<'_>,
        key: IocKey,
        addr: IpAddr,
        local: LocalFacts,
        spellings: u32,
    ) -> Result<Pending, StoreError> {
        Ok(Pending {
            key,
            prefix: w.prefix(key)?,
            addr,
            local_hash: local_fingerprint(self.settings_hash, Some(&local)),
            local,
            spellings,
            enrichment: None,
        })
    }

    /// A second spelling of an address already published in this cycle: merge its row into
    /// the record's local facts.
    fn add_spelling(
        &mut self,
        w: &mut Writer<'_>,
        key: IocKey,
        row: LocalRow,
    ) -> Result<(), StoreError> {
        let Some(record) = w.record(key)? else {
            let pending = self.pending(w, key, row.addr, row.facts, 1)?;
            return self.publish_local(w, pending);
        };
        let merged = match record.facts.local {
            Some(local) => merge_local(local, row.facts),
            None => row.facts,
        };
        let pending = self.pending(w, key, row.addr, merged, record.spellings + 1)?;
        self.publish_local(w, pending)
    }

    /// Addresses that had several spellings last time are merged only once all their rows
    /// are in, so an unchanged set of rows yields an unchanged record.
    fn merged(
        &mut self,
        w: &mut Writer<'_>,
        key: IocKey,
        rows: Vec<LocalRow>,
    ) -> Result<(), StoreError> {
        let spellings = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(());
        };
        let addr = first.addr;
        let local = rows.fold(first.facts, |acc, row| merge_local(acc, row.facts));
        let pending = self.pending(w, key, addr, local, spellings)?;
        self.publish_local(w, pending)
    }

    /// Publishes one address's local facts. When they and the address's enrichment are
    /// unchanged since the last publication, the stored prefix settles it without reading
    /// the enrichment tables (the common case of every cycle after the first).
    fn publish_local(&mut self, w: &mut Writer<'_>, p: Pending) -> Result<(), StoreError> {
        if let Some(stored) = p.prefix
            && w.is_current(p.key, &stored, p.local_hash)
        {
            self.note_candidates(p.addr, &p.local, stored.enrichment);
            w.keep(&stored);
            return Ok(());
        }
        let enrichment = match p.enrichment {
            Some(read_ahead) => read_ahead,
            None => w.enrichment(p.key)?,
        };
        self.note_candidates(p.addr, &p.local, enrichment.flags());
        let print = Fingerprint {
            full: fingerprint(p.local_hash, &enrichment),
            local: p.local_hash,
            enrichment: enrichment.flags(),
        };
        let (scoring, now, addr, local) = (self.scoring, self.params.now, p.addr, p.local);
        w.upsert(p.key, p.prefix, print, p.spellings, || {
            build_facts(addr, Some(local), &enrichment, &scoring, now)
        })?;
        Ok(())
    }

    fn blacklist_only(&mut self, w: &mut Writer<'_>) -> Result<(), StoreError> {
        let mut pending = Vec::new();
        let mut total = 0;
        w.for_each_blacklisted(|key, bytes| {
            total += 1;
            if !w.seen(key)? {
                pending.push((key, bytes.to_vec()));
            }
            Ok(())
        })?;
        self.blacklist_entries = total;
        for (key, bytes) in pending {
            let Some(entry) = decode_blacklist(&bytes) else {
                continue;
            };
            if self.exclude.iter().any(|net| net.contains(&entry.addr)) {
                self.excluded += 1;
                continue;
            }
            let enrichment = w.enrichment(key)?;
            if enrichment.geo.is_none() && is_public(entry.addr) {
                self.candidates.geo.push(entry.addr);
            }
            let local_hash = local_fingerprint(self.settings_hash, None);
            let print = Fingerprint {
                full: fingerprint(local_hash, &enrichment),
                local: local_hash,
                enrichment: enrichment.flags(),
            };
            let scoring = self.scoring;
            let now = self.params.now;
            let prefix = w.prefix(key)?;
            w.upsert(key, prefix, print, 1, || {
                build_facts(entry.addr, None, &enrichment, &scoring, now)
            })?;
        }
        Ok(())
    }

    /// `present`: the [`enrichment`] flags of the values stored for `addr`.
    fn note_candidates(&mut self, addr: IpAddr, local: &LocalFacts, present: u8) {
        if !is_public(addr) {
            return;
        }
        let geo_missing = present & enrichment::GEO == 0;
        if geo_missing && self.candidates.geo.len() < MAX_GEO_CANDIDATES {
            self.candidates.geo.push(addr);
        }
        if present & enrichment::CHECK == 0 {
            self.check_queue.push((local.reported_at, addr));
            if self.check_queue.len() >= MAX_CHECK_CANDIDATES * 2 {
                self.trim_check_queue();
            }
        }
    }

    fn trim_check_queue(&mut self) {
        self.check_queue.sort_by(|a, b| b.cmp(a));
        self.check_queue.truncate(MAX_CHECK_CANDIDATES);
    }

    fn finish_candidates(&mut self) {
        self.trim_check_queue();
        self.candidates.check = self.check_queue.drain(..).map(|(_, addr)| addr).collect();
    }
}

/// One address's local facts on their way to the writer, with what is known of its key.
struct Pending {
    key: IocKey,
    prefix: Option<RecordPrefix>,
    addr: IpAddr,
    local: LocalFacts,
    spellings: u32,
    local_hash: u64,
    /// Already read by the read-ahead, or `None` to read when needed.
    enrichment: Option<EnrichmentBytes>,
}

/// Two rows for one address: the strongest confidence, every category and tag, the latest
/// report time (with its report id) and the earliest creation time.
pub fn merge_local(a: LocalFacts, b: LocalFacts) -> LocalFacts {
    let (newer, older) = if b.reported_at > a.reported_at {
        (b, a)
    } else {
        (a, b)
    };
    let mut categories = newer.categories.clone();
    categories.extend(&older.categories);
    categories.sort_unstable();
    categories.dedup();
    let mut tags = newer.tags.clone();
    tags.extend(older.tags.iter().cloned());
    tags.sort();
    tags.dedup();
    LocalFacts {
        confidence: newer.confidence.max(older.confidence),
        categories,
        tags,
        report_id: newer.report_id.or(older.report_id),
        reported_at: newer.reported_at,
        created_at: newer.created_at.min(older.created_at),
    }
}

fn decode_blacklist(bytes: &[u8]) -> Option<BlacklistEntry> {
    let stamped = Stamped::decode(bytes)?;
    serde_json::from_slice(stamped.payload).ok()
}

fn decode_check(bytes: &[u8]) -> Option<ExternalFacts> {
    let stamped = Stamped::decode(bytes)?;
    serde_json::from_slice(stamped.payload).ok()
}

fn decode_geo(bytes: &[u8]) -> Option<Location> {
    let stamped = Stamped::decode(bytes)?;
    serde_json::from_slice::<Option<Location>>(stamped.payload)
        .ok()
        .flatten()
}

/// Merges one address's evidence into the facts that are scored and rendered.
pub fn build_facts(
    addr: IpAddr,
    local: Option<LocalFacts>,
    enrichment: &EnrichmentBytes,
    scoring: &crate::config::ScoringSettings,
    now: Timestamp,
) -> IocFacts {
    let listed = enrichment.blacklist.as_deref().and_then(decode_blacklist);
    let listed_at = enrichment
        .blacklist
        .as_deref()
        .and_then(Stamped::decode)
        .map(|s| s.fetched_at);
    let external = match enrichment.check.as_deref().and_then(decode_check) {
        Some(mut checked) => {
            checked.on_blacklist = listed.is_some();
            Some(checked)
        }
        None => listed.map(|entry| entry.facts),
    };
    let location = enrichment.geo.as_deref().and_then(decode_geo);
    let confidence = final_confidence(
        local.as_ref().map(|l| l.confidence),
        external.as_ref().map(|e| e.score),
        scoring,
    );
    let external_seen = external
        .as_ref()
        .and_then(|e| e.last_reported_at)
        .or(listed_at);
    let (first_seen, last_seen) = match &local {
        Some(l) => {
            let first = l.created_at.min(l.reported_at);
            let last = external_seen.map_or(l.reported_at, |e| e.max(l.reported_at).min(now));
            (first, last)
        }
        None => {
            let seen = external_seen.unwrap_or(now).min(now);
            (seen, seen)
        }
    };
    IocFacts {
        addr,
        local,
        external,
        location,
        confidence,
        first_seen: first_seen.min(last_seen),
        last_seen,
    }
}

/// FNV-1a, 64 bits: a fingerprint that is stable across builds and platforms (unlike the
/// std hasher), so an upgrade does not re-version every indicator.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Fingerprint of the settings and an IOC's local facts: the state of the full
/// [`fingerprint`] before the enrichment values are added to it.
pub fn local_fingerprint(settings_hash: u64, local: Option<&LocalFacts>) -> u64 {
    let mut h = Fnv::default();
    h.write_u64(settings_hash);
    match local {
        Some(l) => {
            h.write_u8(1);
            h.write_u8(l.confidence);
            h.write(&l.categories);
            h.write_u8(0xff);
            for tag in &l.tags {
                h.write(tag.as_bytes());
                h.write_u8(0xff);
            }
            match &l.report_id {
                Some(id) => {
                    h.write_u8(1);
                    h.write(id.as_bytes());
                }
                None => h.write_u8(0),
            }
            h.write_i64(l.reported_at.as_microsecond());
            h.write_i64(l.created_at.as_microsecond());
        }
        None => h.write_u8(0),
    }
    h.finish()
}

/// Fingerprint of everything that shapes an IOC's published objects: the local fingerprint
/// continued with the enrichment values. (Continuing the FNV state keeps the value equal
/// to what one pass over settings, local facts and enrichment gives, as stored by earlier
/// versions.)
fn fingerprint(local_hash: u64, e: &EnrichmentBytes) -> u64 {
    let mut h = Fnv(local_hash);
    for value in [&e.blacklist, &e.check, &e.geo] {
        match value.as_deref().and_then(Stamped::decode) {
            Some(stamped) => {
                h.write_u8(1);
                h.write(stamped.payload);
                h.write_u8(0xff);
            }
            None => h.write_u8(0),
        }
    }
    h.finish()
}

/// Fingerprint of the settings that shape every object; changing one re-versions the feed.
fn settings_fingerprint(settings: &Settings) -> u64 {
    let mut h = Fnv::default();
    let s = &settings.scoring;
    format!(
        "{:?}|{}|{}|{}|{}|{}|{}|{}|{}",
        settings.stix.tlp,
        settings.stix.org_name,
        settings.cycle.validity_days,
        s.high_threshold,
        s.local_weight,
        s.external_weight,
        s.minimum_final,
        s.local_boost,
        crate::store::tables::FORMAT_VERSION,
    )
    .hash(&mut h);
    h.finish()
}
