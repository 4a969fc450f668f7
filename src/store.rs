//! The state store: one redb file in the data directory holding the published snapshot, the
//! enrichment caches, budgets and cycle history, with a moka cache of hot responses in front.
//!
//! The snapshot is only ever changed by [`Store::publish`], in one write transaction; every
//! reader sees a committed snapshot, never a partial one. redb calls block, so async callers
//! run them with `tokio::task::spawn_blocking`.

pub mod codec;
pub mod record;
pub mod tables;
pub mod writer;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::ioc::{Collection, IocKey, KeySet};
use record::StoredRecord;
use tables::{IndexValue, RecordPrefix};
pub use writer::{
    EnrichmentBytes, Fingerprint, Outcome, PublishParams, PublishReport, Render, SnapshotCounts,
    StaticObject, Version, Writer,
};

/// How many finished cycles are kept for stats and the status page.
const CYCLE_HISTORY: usize = 50;

/// Upper bound of the hot response cache, in bytes. It holds the pages consumers poll
/// again and again (the tail of a collection, the status map); a whole-collection walk
/// passes through it without needing it. With [`REDB_CACHE_BYTES`] it is most of what the
/// process holds beyond its working set, and both are sized so that serving a million
/// objects while walking them stays under 300 MB (see `bench/taxii.sh`).
const HOT_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// redb's page cache (read cache and the write transaction's buffer). A cycle's per-row
/// lookups touch the small prefix table, which fits; larger tables are read through the
/// operating system's page cache.
const REDB_CACHE_BYTES: usize = 96 * 1024 * 1024;

/// Hot responses expire even without a new snapshot, bounding staleness of anything they
/// embed besides snapshot data.
const HOT_CACHE_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state file: {0}")]
    Redb(#[from] redb::Error),
    #[error("state file {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("encoding a stored value failed: {0}")]
    Encode(String),
    #[error("the state file was written by an incompatible version (format {found})")]
    Format { found: u32 },
    #[error("{0}")]
    Aborted(String),
}

macro_rules! redb_errors {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(err: $ty) -> Self {
                StoreError::Redb(err.into())
            }
        }
    )*};
}
redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Metadata of the published snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Increases by one with every publication.
    pub generation: u64,
    pub built_at: Option<Timestamp>,
    pub cycle_duration_ms: u64,
    pub counts: SnapshotCounts,
    /// Addresses not published because they fall in `EXCLUDE_CIDRS`.
    pub excluded: u64,
    /// The newest `date_added` of each collection (µs), for empty-page TAXII headers.
    pub last_added: [u64; 2],
}

/// One finished (or failed) cycle, as the history keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CycleSummary {
    pub started_at: Option<Timestamp>,
    pub duration_ms: u64,
    pub trigger: String,
    /// `None` when the cycle published; else why it did not.
    pub error: Option<String>,
    pub rows_read: u64,
    pub rows_accepted: u64,
    /// Skipped rows by reason (see `source::clean`).
    pub skipped: BTreeMap<String, u64>,
    /// Repaired rows by repair.
    pub repaired: BTreeMap<String, u64>,
    pub blacklist_entries: u64,
    pub excluded: u64,
    pub duplicates: u64,
    pub published: PublishReport,
    pub indicators: u64,
    pub geolocated: u64,
    /// Free-form figures from enrichment (budget used, lookups sent, …).
    pub notes: BTreeMap<String, String>,
}

/// The store handle; cheap to clone through `Arc`.
pub struct Store {
    db: Database,
    generation: AtomicU64,
    snapshot: RwLock<Arc<SnapshotMeta>>,
    hot: moka::sync::Cache<(u64, String), Bytes>,
}

impl Store {
    /// Opens (or creates) the state file and loads the snapshot metadata, so the last
    /// snapshot is served at once after a restart.
    ///
    /// # Errors
    /// [`StoreError::Open`] with the path when the file cannot be opened or is damaged beyond
    /// redb's own repair; [`StoreError::Format`] for a file from an incompatible version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: parent.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let db = Database::builder()
            .set_cache_size(REDB_CACHE_BYTES)
            .create(path)
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let store = Store {
            db,
            generation: AtomicU64::new(0),
            snapshot: RwLock::new(Arc::new(SnapshotMeta::default())),
            hot: moka::sync::Cache::builder()
                .max_capacity(HOT_CACHE_BYTES)
                .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
                .time_to_live(HOT_CACHE_TTL)
                .build(),
        };
        store.initialise()?;
        Ok(store)
    }

    fn initialise(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let format = txn
                .open_table(tables::META)?
                .get(tables::META_FORMAT)?
                .and_then(|v| serde_json::from_slice::<u32>(v.value()).ok());
            match format {
                Some(1) => upgrade_from_v1(&txn)?,
                Some(found) if found != tables::FORMAT_VERSION => {
                    return Err(StoreError::Format { found });
                }
                _ => {}
            }
            let version = tables::FORMAT_VERSION.to_string();
            txn.open_table(tables::META)?
                .insert(tables::META_FORMAT, version.as_bytes())?;
            txn.open_table(tables::RECORDS)?;
            txn.open_table(tables::PREFIXES)?;
            txn.open_table(tables::ENRICHED)?;
            txn.open_table(tables::OBJECTS)?;
            txn.open_table(tables::EPISODE_IDS)?;
            txn.open_table(tables::BLACKLIST)?;
            txn.open_table(tables::CHECKS)?;
            txn.open_table(tables::GEO)?;
        }
        txn.commit()?;
        let meta: SnapshotMeta = self.meta_json(tables::META_SNAPSHOT)?.unwrap_or_default();
        self.generation.store(meta.generation, Ordering::SeqCst);
        *self.snapshot.write().expect("snapshot lock") = Arc::new(meta);
        Ok(())
    }

    /// The redb database, for enrichment modules that keep their own rows in the tables
    /// defined in [`tables`].
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Metadata of the published snapshot (default values before the first publication).
    pub fn snapshot(&self) -> Arc<SnapshotMeta> {
        self.snapshot.read().expect("snapshot lock").clone()
    }

    /// Increases with every publication; part of every hot-cache key.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Publishes one snapshot: opens the write transaction, lets `fill` upsert every IOC,
    /// sweeps, replaces the static objects, records `meta` and commits. When `fill` fails,
    /// nothing is written and the previous snapshot stays.
    ///
    /// # Errors
    /// Storage failures and the error returned by `fill`.
    pub fn publish<F>(
        &self,
        params: PublishParams,
        render: &dyn Render,
        statics: &[StaticObject],
        is_public: fn(std::net::IpAddr) -> bool,
        fill: F,
    ) -> Result<(PublishReport, SnapshotMeta), StoreError>
    where
        F: FnOnce(&mut Writer<'_>) -> Result<u64, StoreError>,
    {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let previous = self.snapshot();
        let enriched = take_enriched(&txn)?;
        let (report, meta) = {
            let tables = writer::Tables {
                records: txn.open_table(tables::RECORDS)?,
                prefixes: txn.open_table(tables::PREFIXES)?,
                objects: txn.open_table(tables::OBJECTS)?,
                episodes: txn.open_table(tables::EPISODE_IDS)?,
                blacklist: txn.open_table(tables::BLACKLIST)?,
                checks: txn.open_table(tables::CHECKS)?,
                geo: txn.open_table(tables::GEO)?,
            };
            let mut writer = Writer::new(
                tables,
                params,
                render,
                previous.last_added,
                enriched,
                is_public,
            )?;
            let excluded = fill(&mut writer)?;
            writer.sweep()?;
            let mut meta_table = txn.open_table(tables::META)?;
            for collection in Collection::EVERY {
                let key = tables::meta_static(collection);
                let before: Vec<(StaticObject, u64)> = meta_table
                    .get(key.as_str())?
                    .and_then(|v| serde_json::from_slice(v.value()).ok())
                    .unwrap_or_default();
                let after = writer.put_static(collection, &before, statics)?;
                let json =
                    serde_json::to_vec(&after).map_err(|e| StoreError::Encode(e.to_string()))?;
                meta_table.insert(key.as_str(), json.as_slice())?;
            }
            let (report, counts, last_added) = writer.finish();
            let meta = SnapshotMeta {
                generation: previous.generation + 1,
                built_at: Some(params.now),
                cycle_duration_ms: 0,
                counts,
                excluded,
                last_added,
            };
            (report, meta)
        };
        self.put_meta_in(&txn, tables::META_SNAPSHOT, &meta)?;
        txn.commit()?;
        self.generation.store(meta.generation, Ordering::SeqCst);
        *self.snapshot.write().expect("snapshot lock") = Arc::new(meta.clone());
        Ok((report, meta))
    }

    /// Read-only lookups in the committed state, for a cycle's read-ahead thread. Open it
    /// inside `publish`'s `fill` (after the write transaction began): it then sees exactly
    /// what the writer saw at its start, since no other write can commit meanwhile.
    ///
    /// # Errors
    /// Storage failures.
    pub fn lookahead(&self) -> Result<Lookahead, StoreError> {
        let txn = self.db.begin_read()?;
        let mut enriched = KeySet::default();
        for item in txn.open_table(tables::ENRICHED)?.iter()? {
            enriched.insert(IocKey(item?.0.value()));
        }
        Ok(Lookahead {
            prefixes: txn.open_table(tables::PREFIXES)?,
            blacklist: txn.open_table(tables::BLACKLIST)?,
            checks: txn.open_table(tables::CHECKS)?,
            geo: txn.open_table(tables::GEO)?,
            enriched,
            _txn: txn,
        })
    }

    /// Records the duration of the cycle that built the current snapshot.
    ///
    /// # Errors
    /// Storage failures.
    pub fn set_cycle_duration(&self, duration_ms: u64) -> Result<(), StoreError> {
        let mut meta = (*self.snapshot()).clone();
        meta.cycle_duration_ms = duration_ms;
        self.put_meta(tables::META_SNAPSHOT, &meta)?;
        *self.snapshot.write().expect("snapshot lock") = Arc::new(meta);
        Ok(())
    }

    /// Appends a cycle to the bounded history.
    ///
    /// # Errors
    /// Storage failures.
    pub fn push_cycle(&self, summary: &CycleSummary) -> Result<(), StoreError> {
        let mut cycles: Vec<CycleSummary> =
            self.meta_json(tables::META_CYCLES)?.unwrap_or_default();
        cycles.push(summary.clone());
        let excess = cycles.len().saturating_sub(CYCLE_HISTORY);
        cycles.drain(..excess);
        self.put_meta(tables::META_CYCLES, &cycles)
    }

    /// The kept cycles, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    pub fn cycles(&self) -> Result<Vec<CycleSummary>, StoreError> {
        Ok(self.meta_json(tables::META_CYCLES)?.unwrap_or_default())
    }

    /// Reads a JSON value from the `meta` table.
    ///
    /// # Errors
    /// Storage failures; an undecodable value reads as `None`.
    pub fn meta_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(tables::META)?;
        let value = table.get(key)?;
        Ok(value.and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    /// Writes a JSON value to the `meta` table in its own durable transaction.
    ///
    /// # Errors
    /// Storage failures.
    pub fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        self.put_meta_in(&txn, key, value)?;
        txn.commit()?;
        Ok(())
    }

    fn put_meta_in<T: Serialize>(
        &self,
        txn: &redb::WriteTransaction,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(value).map_err(|e| StoreError::Encode(e.to_string()))?;
        let mut table = txn.open_table(tables::META)?;
        table.insert(key, json.as_slice())?;
        Ok(())
    }

    /// Visits the objects of a collection in `date_added` order, starting after
    /// `after_us` (exclusive). `visit` returns `Break` to stop.
    ///
    /// # Errors
    /// Storage failures.
    pub fn scan(
        &self,
        collection: Collection,
        after_us: Option<u64>,
        mut visit: impl FnMut(u64, IndexValue<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(tables::OBJECTS)?;
        let code = collection.code();
        let start = after_us.map_or(0, |a| a.saturating_add(1));
        if after_us == Some(u64::MAX) {
            return Ok(());
        }
        for item in table.range((code, start)..=(code, u64::MAX))? {
            let (key, value) = item?;
            let target = match tables::decode_reference(value.value()) {
                Some(all_added) => table.get((Collection::All.code(), all_added))?,
                None => None,
            };
            let bytes = target.as_ref().map_or(value.value(), |t| t.value());
            let Some(decoded) = IndexValue::decode(bytes) else {
                continue;
            };
            if visit(key.value().1, decoded).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The objects of a collection whose STIX id is `stix_id`, with their `date_added`.
    /// Indicators are found through their record; static objects by a scan of the small
    /// static list.
    ///
    /// # Errors
    /// Storage failures.
    pub fn objects_by_id(
        &self,
        collection: Collection,
        stix_id: &str,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read()?;
        let objects = txn.open_table(tables::OBJECTS)?;
        let mut found = Vec::new();
        if let Some(uuid) = stix_id
            .strip_prefix("indicator--")
            .and_then(|u| uuid::Uuid::parse_str(u).ok())
        {
            let episodes = txn.open_table(tables::EPISODE_IDS)?;
            let key = episodes
                .get(*uuid.as_bytes())?
                .map(|v| v.value())
                .unwrap_or(*uuid.as_bytes());
            let record = read_record(&txn, IocKey(key))?;
            for entry in record.iter().flat_map(|r| r.entries.iter()) {
                if entry.collection != collection {
                    continue;
                }
                if let Some(bytes) = resolve(&objects, collection, entry.date_added_us)?
                    && IndexValue::decode(&bytes).is_some_and(|v| v.id == stix_id)
                {
                    found.push((entry.date_added_us, bytes));
                }
            }
        } else {
            let meta = txn.open_table(tables::META)?;
            let statics: Vec<(StaticObject, u64)> = meta
                .get(tables::meta_static(collection).as_str())?
                .and_then(|v| serde_json::from_slice(v.value()).ok())
                .unwrap_or_default();
            for (_, added) in statics.iter().filter(|(o, _)| o.id == stix_id) {
                if let Some(value) = objects.get((collection.code(), *added))? {
                    found.push((*added, value.value().to_vec()));
                }
            }
        }
        found.sort_by_key(|(added, _)| *added);
        Ok(found)
    }

    /// The stored record of a key.
    ///
    /// # Errors
    /// Storage failures.
    pub fn record(&self, key: IocKey) -> Result<Option<StoredRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        read_record(&txn, key)
    }

    /// Visits every stored record in record-number order (decoding each); `visit` returns
    /// `Break` to stop. For exports and REST listings, which read the whole snapshot anyway.
    ///
    /// # Errors
    /// Storage failures.
    pub fn for_each_record(
        &self,
        mut visit: impl FnMut(RecordPrefix, StoredRecord) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(tables::RECORDS)?;
        for item in table.iter()? {
            let (_, value) = item?;
            let Some((prefix, _)) = RecordPrefix::split(value.value()) else {
                continue;
            };
            let Some((_, record)) = writer::decode_record(value.value()) else {
                continue;
            };
            if visit(prefix, record).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Number of stored records (published, revoked-but-retained).
    ///
    /// # Errors
    /// Storage failures.
    pub fn record_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(tables::RECORDS)?;
        Ok(table.len()?)
    }

    /// A response cached for the current snapshot generation, built by `build` on a miss.
    ///
    /// # Errors
    /// The error of `build`.
    pub fn hot<E>(
        &self,
        key: String,
        build: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let full = (self.generation(), key);
        if let Some(hit) = self.hot.get(&full) {
            return Ok(hit);
        }
        let bytes = build()?;
        self.hot.insert(full, bytes.clone());
        Ok(bytes)
    }
}

/// The bytes of an object, following a reference to the `all` collection.
fn resolve(
    objects: &redb::ReadOnlyTable<(u8, u64), &'static [u8]>,
    collection: Collection,
    added: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(value) = objects.get((collection.code(), added))? else {
        return Ok(None);
    };
    match tables::decode_reference(value.value()) {
        Some(all_added) => Ok(objects
            .get((Collection::All.code(), all_added))?
            .map(|v| v.value().to_vec())),
        None => Ok(Some(value.value().to_vec())),
    }
}

/// Lookups a cycle makes for every source row, answered from the committed state by a
/// thread beside the writer (see [`Store::lookahead`]). For a key the cycle has not written
/// yet, the answers equal what the writer itself would read.
pub struct Lookahead {
    prefixes: redb::ReadOnlyTable<u128, &'static [u8]>,
    blacklist: redb::ReadOnlyTable<[u8; 16], &'static [u8]>,
    checks: redb::ReadOnlyTable<[u8; 16], &'static [u8]>,
    geo: redb::ReadOnlyTable<[u8; 16], &'static [u8]>,
    enriched: KeySet,
    _txn: redb::ReadTransaction,
}

impl Lookahead {
    /// # Errors
    /// Storage failures.
    pub fn prefix(&self, key: IocKey) -> Result<Option<RecordPrefix>, StoreError> {
        let value = self.prefixes.get(key.ordinal())?;
        Ok(value.and_then(|v| RecordPrefix::read(v.value())))
    }

    /// # Errors
    /// Storage failures.
    pub fn enrichment(&self, key: IocKey) -> Result<EnrichmentBytes, StoreError> {
        EnrichmentBytes::read(key, &self.blacklist, &self.checks, &self.geo)
    }

    /// Whether the enrichment of `key` was written since the last publication.
    pub fn enriched(&self, key: IocKey) -> bool {
        self.enriched.contains(&key)
    }
}

/// The record of `key` through its prefix, in one read transaction.
fn read_record(
    txn: &redb::ReadTransaction,
    key: IocKey,
) -> Result<Option<StoredRecord>, StoreError> {
    let prefixes = txn.open_table(tables::PREFIXES)?;
    let Some(prefix) = prefixes.get(key.ordinal())? else {
        return Ok(None);
    };
    let Some(number) = RecordPrefix::read(prefix.value()).map(|p| p.number) else {
        return Ok(None);
    };
    let records = txn.open_table(tables::RECORDS)?;
    let value = records.get(number)?;
    Ok(value
        .and_then(|v| writer::decode_record(v.value()))
        .map(|(_, r)| r))
}

/// Notes that the enrichment of `keys` was written, inside the caller's write transaction,
/// so the next cycle recomputes those records instead of settling them from their prefix.
/// Every writer of the `BLACKLIST`, `CHECKS` and `GEO` tables must call it.
///
/// # Errors
/// Storage failures.
pub fn note_enriched(
    txn: &redb::WriteTransaction,
    keys: impl IntoIterator<Item = [u8; 16]>,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(tables::ENRICHED)?;
    for key in keys {
        table.insert(key, ())?;
    }
    Ok(())
}

/// Reads and empties the enrichment notes, in the publishing transaction: a failed cycle
/// rolls the emptying back with everything else.
fn take_enriched(txn: &redb::WriteTransaction) -> Result<KeySet, StoreError> {
    let mut table = txn.open_table(tables::ENRICHED)?;
    let mut keys = KeySet::default();
    for item in table.iter()? {
        keys.insert(IocKey(item?.0.value()));
    }
    table.retain(|_, _| false)?;
    Ok(keys)
}

/// Rewrites a format 1 file: records were JSON keyed by IOC key, with a 20-byte prefix.
/// Every record keeps its objects, ids and versions; the shortcut fields the old prefix
/// lacked start unknown, so the first cycle after the upgrade recomputes every record once
/// (finding nothing changed).
fn upgrade_from_v1(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    {
        let old = txn.open_table(tables::V1_RECORDS)?;
        let mut records = txn.open_table(tables::RECORDS)?;
        let mut prefixes = txn.open_table(tables::PREFIXES)?;
        let mut number = 0;
        for item in old.iter()? {
            let (key, value) = item?;
            let key = IocKey(key.value());
            let Some((prefix, record)) = v1_record(value.value()) else {
                continue;
            };
            let prefix = RecordPrefix { number, ..prefix };
            let mut bytes = Vec::with_capacity(256);
            prefix.encode(&mut bytes);
            codec::encode(key, &record, &mut bytes);
            records.insert(number, bytes.as_slice())?;
            prefixes.insert(key.ordinal(), prefix.to_bytes().as_slice())?;
            number += 1;
        }
        tracing::info!(records = number, "state file upgraded from format 1");
    }
    txn.delete_table(tables::V1_RECORDS)?;
    txn.delete_table(tables::V1_PREFIXES)?;
    Ok(())
}

/// A format 1 value: hash u64, deadline i64, flags, confidence, country[2], then JSON.
fn v1_record(value: &[u8]) -> Option<(RecordPrefix, StoredRecord)> {
    let head = value.get(..20)?;
    let prefix = RecordPrefix {
        hash: u64::from_le_bytes(head[0..8].try_into().ok()?),
        deadline_us: i64::from_le_bytes(head[8..16].try_into().ok()?),
        flags: head[16],
        confidence: head[17],
        country: [head[18], head[19]],
        ..RecordPrefix::default()
    };
    let record = serde_json::from_slice(&value[20..]).ok()?;
    Some((prefix, record))
}
