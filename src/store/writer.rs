//! The snapshot writer: everything one refresh cycle changes, inside one redb write
//! transaction, so readers see the whole old snapshot or the whole new one.
//!
//! It owns the publication rules: an IOC whose fingerprint did not change keeps its
//! `modified` and `date_added`; a changed one gets a new version at the end of each of its
//! collections; an IOC whose local row disappeared is published once more as revoked; an
//! IOC that drops under the high-confidence threshold is revoked in that collection only;
//! revoked objects are purged after the retention period and expired ones leave at once.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use redb::{ReadableTable, Table};
use serde::Serialize;

use super::StoreError;
use super::codec;
use super::record::{Entry, StoredRecord, next_version, truncate_ms};
use super::tables::{IndexValue, RecordPrefix, enrichment, flags};
use crate::ioc::{Collection, IocFacts, IocKey, KeySet};

/// The records a cycle has upserted, as one bit per record number: a million records
/// take 125 KB, where a set of keys took tens of megabytes.
#[derive(Debug, Default)]
struct Seen(Vec<u64>);

impl Seen {
    fn insert(&mut self, number: u64) {
        let (word, bit) = Seen::position(number);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= bit;
    }

    fn contains(&self, number: u64) -> bool {
        let (word, bit) = Seen::position(number);
        self.0.get(word).is_some_and(|w| w & bit != 0)
    }

    fn position(number: u64) -> (usize, u64) {
        let word = usize::try_from(number / 64).expect("record numbers fit in memory");
        (word, 1 << (number % 64))
    }
}
use crate::timefmt::stix_timestamp;

/// Renders the STIX object of one version of an IOC. Implemented by `stix::Renderer`; the
/// store only keeps the bytes.
pub trait Render: Sync {
    fn indicator(&self, version: &Version<'_>) -> Vec<u8>;
}

/// One version of an indicator, as the renderer needs it.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    pub facts: &'a IocFacts,
    pub stix_id: &'a str,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub revoked: bool,
}

/// A non-indicator object served in a collection (producer identity, TLP marking).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StaticObject {
    pub id: String,
    pub version: String,
    pub object: String,
}

/// Rules of one publication, fixed for the whole cycle.
#[derive(Debug, Clone, Copy)]
pub struct PublishParams {
    pub now: Timestamp,
    pub high_threshold: u8,
    pub validity: SignedDuration,
    pub retention: SignedDuration,
}

/// What a cycle did to the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PublishReport {
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub revoked: u64,
    pub expired: u64,
    pub purged: u64,
}

/// Figures of the published snapshot, counted from every record's prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SnapshotCounts {
    /// Non-revoked indicators in the `all` collection.
    pub indicators: u64,
    pub high_confidence: u64,
    pub local: u64,
    pub abuseipdb: u64,
    pub both: u64,
    /// Records holding a revoked object that is still served.
    pub revoked: u64,
    pub geolocated: u64,
    /// Public indicators (the ones geolocation can know about).
    pub public: u64,
    /// Indicators per confidence decile: 0–9, 10–19, …, 90–100.
    pub histogram: [u64; 10],
    /// Indicators per country code.
    pub countries: BTreeMap<String, u64>,
}

impl SnapshotCounts {
    fn add(&mut self, prefix: &RecordPrefix) {
        if prefix.has(flags::REVOKED) {
            self.revoked += 1;
        }
        if !prefix.has(flags::ACTIVE) {
            return;
        }
        self.indicators += 1;
        self.high_confidence += u64::from(prefix.has(flags::HIGH));
        match (prefix.has(flags::LOCAL), prefix.has(flags::EXTERNAL)) {
            (true, true) => self.both += 1,
            (true, false) => self.local += 1,
            (false, true) => self.abuseipdb += 1,
            (false, false) => {}
        }
        self.public += u64::from(prefix.has(flags::PUBLIC));
        self.geolocated += u64::from(prefix.has(flags::GEO));
        self.histogram[usize::from(prefix.confidence.min(99) / 10)] += 1;
        if let Some(code) = prefix.country_code() {
            *self.countries.entry(code.to_string()).or_default() += 1;
        }
    }
}

/// Whether an upsert changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    New,
    Changed,
    Expired,
}

pub(super) struct Tables<'t> {
    pub records: Table<'t, u64, &'static [u8]>,
    pub prefixes: Table<'t, u128, &'static [u8]>,
    pub objects: Table<'t, (u8, u64), &'static [u8]>,
    pub episodes: Table<'t, [u8; 16], [u8; 16]>,
    pub blacklist: Table<'t, [u8; 16], &'static [u8]>,
    pub checks: Table<'t, [u8; 16], &'static [u8]>,
    pub geo: Table<'t, [u8; 16], &'static [u8]>,
}

/// Writes one snapshot. Created by `Store::publish`, which commits it.
pub struct Writer<'t> {
    pub(super) tables: Tables<'t>,
    params: PublishParams,
    render: &'t dyn Render,
    seen: Seen,
    /// Keys whose enrichment was written since the last publication.
    enriched: KeySet,
    /// Next free record number.
    next_number: u64,
    /// Next free `date_added` per collection (µs).
    next_added: [u64; 2],
    report: PublishReport,
    counts: SnapshotCounts,
    is_public: fn(std::net::IpAddr) -> bool,
}

/// Raw enrichment values of one address, as stored (see `tables::Stamped`).
#[derive(Debug, Default, Clone)]
pub struct EnrichmentBytes {
    pub blacklist: Option<Vec<u8>>,
    pub check: Option<Vec<u8>>,
    pub geo: Option<Vec<u8>>,
}

impl EnrichmentBytes {
    /// The values of `key` in the blacklist, `/check` and geolocation tables, from a read
    /// or a write transaction.
    ///
    /// # Errors
    /// Storage failures.
    pub fn read<T: ReadableTable<[u8; 16], &'static [u8]>>(
        key: IocKey,
        blacklist: &T,
        checks: &T,
        geo: &T,
    ) -> Result<EnrichmentBytes, StoreError> {
        let get = |table: &T| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(table.get(key.0)?.map(|v| v.value().to_vec()))
        };
        Ok(EnrichmentBytes {
            blacklist: get(blacklist)?,
            check: get(checks)?,
            geo: get(geo)?,
        })
    }

    /// The [`enrichment`] flags of these values.
    pub fn flags(&self) -> u8 {
        let mut bits = 0;
        if self.geo.is_some() {
            bits |= enrichment::GEO;
        }
        if self.check.is_some() {
            bits |= enrichment::CHECK;
        }
        bits
    }
}

/// What decides whether an IOC must be republished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Everything that shapes the published objects.
    pub full: u64,
    /// The settings and the local facts alone.
    pub local: u64,
    /// [`enrichment`] flags of the values `full` was computed from.
    pub enrichment: u8,
}

impl<'t> Writer<'t> {
    pub(super) fn new(
        tables: Tables<'t>,
        params: PublishParams,
        render: &'t dyn Render,
        last_added: [u64; 2],
        enriched: KeySet,
        is_public: fn(std::net::IpAddr) -> bool,
    ) -> Result<Writer<'t>, StoreError> {
        let now_us = params.now.as_microsecond().max(0) as u64;
        let next_added = last_added.map(|last| now_us.max(last + 1));
        let next_number = tables.records.last()?.map_or(0, |(k, _)| k.value() + 1);
        Ok(Writer {
            tables,
            params,
            render,
            seen: Seen::default(),
            enriched,
            next_number,
            next_added,
            report: PublishReport::default(),
            counts: SnapshotCounts::default(),
            is_public,
        })
    }

    pub fn now(&self) -> Timestamp {
        self.params.now
    }

    /// True once the key was upserted in this cycle (a second spelling of an address).
    ///
    /// # Errors
    /// Storage failures.
    pub fn seen(&self, key: IocKey) -> Result<bool, StoreError> {
        Ok(self
            .prefix(key)?
            .is_some_and(|p| self.seen.contains(p.number)))
    }

    /// [`Writer::seen`] for a key whose committed prefix the caller read (through
    /// `Store::lookahead`): record numbers never change, so only a key that had no record
    /// must be looked up again (it may have been created earlier in this cycle).
    ///
    /// # Errors
    /// Storage failures.
    pub fn seen_with(
        &self,
        key: IocKey,
        committed: Option<&RecordPrefix>,
    ) -> Result<bool, StoreError> {
        match committed {
            Some(prefix) => Ok(self.seen.contains(prefix.number)),
            None => self.seen(key),
        }
    }

    /// The stored prefix of a key, without decoding the record.
    ///
    /// # Errors
    /// Storage failures.
    pub fn prefix(&self, key: IocKey) -> Result<Option<RecordPrefix>, StoreError> {
        let value = self.tables.prefixes.get(key.ordinal())?;
        Ok(value.and_then(|v| RecordPrefix::read(v.value())))
    }

    /// The stored record of a key.
    ///
    /// # Errors
    /// Storage failures; an undecodable record reads as absent.
    pub fn record(&self, key: IocKey) -> Result<Option<StoredRecord>, StoreError> {
        let Some(prefix) = self.prefix(key)? else {
            return Ok(None);
        };
        self.record_at(prefix.number)
    }

    fn record_at(&self, number: u64) -> Result<Option<StoredRecord>, StoreError> {
        let value = self.tables.records.get(number)?;
        Ok(value.and_then(|v| decode_record(v.value())).map(|(_, r)| r))
    }

    /// True when the stored objects of `key` are still exactly right without reading its
    /// enrichment: same local facts and settings (`local_hash`), no enrichment written
    /// since the last publication, nothing due, and still published.
    pub fn is_current(&self, key: IocKey, prefix: &RecordPrefix, local_hash: u64) -> bool {
        local_hash != 0
            && prefix.local_hash == local_hash
            && prefix.deadline_us > self.params.now.as_microsecond()
            && prefix.has(flags::ACTIVE)
            && !self.enriched.contains(&key)
    }

    /// Records the record of `prefix` as seen and unchanged (after [`Writer::is_current`]).
    pub fn keep(&mut self, prefix: &RecordPrefix) {
        self.seen.insert(prefix.number);
        self.report.unchanged += 1;
    }

    /// The enrichment values stored for a key.
    ///
    /// # Errors
    /// Storage failures.
    pub fn enrichment(&self, key: IocKey) -> Result<EnrichmentBytes, StoreError> {
        let t = &self.tables;
        EnrichmentBytes::read(key, &t.blacklist, &t.checks, &t.geo)
    }

    /// Calls `f` with every blacklist entry (key, stamped bytes) in key order.
    ///
    /// # Errors
    /// Storage failures, or the first error of `f`.
    pub fn for_each_blacklisted(
        &self,
        mut f: impl FnMut(IocKey, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.tables.blacklist.iter()? {
            let (key, value) = item?;
            f(IocKey(key.value()), value.value())?;
        }
        Ok(())
    }

    /// Publishes the facts of one address unless its fingerprint is unchanged. `stored` is
    /// the key's prefix as read by the caller; `build` is only called when the record must
    /// be rewritten.
    ///
    /// # Errors
    /// Storage failures.
    pub fn upsert(
        &mut self,
        key: IocKey,
        stored: Option<RecordPrefix>,
        print: Fingerprint,
        spellings: u32,
        build: impl FnOnce() -> IocFacts,
    ) -> Result<Outcome, StoreError> {
        let now_us = self.params.now.as_microsecond();
        if let Some(prefix) = stored
            && prefix.hash == print.full
            && prefix.deadline_us > now_us
            && prefix.has(flags::ACTIVE)
        {
            self.seen.insert(prefix.number);
            self.refresh_prefix(key, prefix, print)?;
            self.report.unchanged += 1;
            return Ok(Outcome::Unchanged);
        }
        let old = match stored {
            Some(prefix) => self.record_at(prefix.number)?,
            None => None,
        };
        let old = stored.zip(old);
        self.apply(key, old, print, spellings, build())
    }

    /// An unchanged record whose shortcut fields are out of date (first cycle after an
    /// upgrade, or enrichment rewritten with the same values) gets them updated, so the
    /// next cycle can settle it from the prefix alone. The copy heading the `RECORDS`
    /// value is left as it was: only `PREFIXES` is read for these fields.
    fn refresh_prefix(
        &mut self,
        key: IocKey,
        prefix: RecordPrefix,
        print: Fingerprint,
    ) -> Result<(), StoreError> {
        if prefix.local_hash == print.local && prefix.enrichment == print.enrichment {
            return Ok(());
        }
        let updated = RecordPrefix {
            local_hash: print.local,
            enrichment: print.enrichment,
            ..prefix
        };
        let bytes = updated.to_bytes();
        self.tables
            .prefixes
            .insert(key.ordinal(), bytes.as_slice())?;
        Ok(())
    }

    fn apply(
        &mut self,
        key: IocKey,
        old: Option<(RecordPrefix, StoredRecord)>,
        print: Fingerprint,
        spellings: u32,
        facts: IocFacts,
    ) -> Result<Outcome, StoreError> {
        let old_hash = old.as_ref().map(|(p, _)| p.hash);
        let number = old.as_ref().map(|(p, _)| p.number);
        let old = old.map(|(_, record)| record);
        let valid_until = facts
            .last_seen
            .saturating_add(self.params.validity)
            .unwrap_or(facts.last_seen);
        if valid_until <= self.params.now {
            if let (Some(old), Some(number)) = (old, number) {
                self.purge(key, number, &old)?;
            }
            self.report.expired += 1;
            return Ok(Outcome::Expired);
        }

        let is_new = old.is_none();
        let mut record = old.unwrap_or_else(|| StoredRecord {
            facts: facts.clone(),
            episode: 0,
            created: truncate_ms(self.params.now),
            modified: truncate_ms(self.params.now),
            spellings,
            entries: Vec::new(),
        });
        self.purge_retained(&mut record)?;

        let want_high = facts.confidence >= self.params.high_threshold;
        let new_episode = self.needs_new_episode(&record, want_high);
        if new_episode {
            self.revoke_active(&mut record)?;
            record.episode += 1;
            record.created = truncate_ms(self.params.now);
        }
        let content_changed = old_hash != Some(print.full) || new_episode || is_new;
        if content_changed && !is_new {
            record.modified =
                next_version(self.params.now, Some(record.modified)).max(record.created);
        }
        record.facts = facts;
        record.spellings = spellings;

        self.ensure_active(&mut record, Collection::All, content_changed)?;
        if want_high {
            self.ensure_active(&mut record, Collection::High, content_changed)?;
        } else {
            self.revoke_in(&mut record, Collection::High)?;
        }
        let number = self.write_record(key, number, &record, print)?;
        self.seen.insert(number);
        if is_new {
            self.report.new += 1;
            Ok(Outcome::New)
        } else {
            self.report.changed += 1;
            Ok(Outcome::Changed)
        }
    }

    /// A collection the IOC belongs to holds a revoked object of the current episode: that
    /// STIX id is finished, so the IOC needs a new one.
    fn needs_new_episode(&self, record: &StoredRecord, want_high: bool) -> bool {
        record.entries.iter().any(|e| {
            e.episode == record.episode
                && e.revoked
                && (e.collection == Collection::All
                    || (want_high && e.collection == Collection::High))
        })
    }

    fn ensure_active(
        &mut self,
        record: &mut StoredRecord,
        collection: Collection,
        changed: bool,
    ) -> Result<(), StoreError> {
        let position = record
            .entries
            .iter()
            .position(|e| e.collection == collection && !e.revoked);
        if let Some(index) = position {
            if !changed {
                return Ok(());
            }
            let old = record.entries.remove(index);
            self.remove_object(&old)?;
        }
        let entry = Entry {
            collection,
            episode: record.episode,
            date_added_us: self.take_added(collection),
            modified: record.modified,
            revoked: false,
        };
        self.insert_object(record, &entry, record.created)?;
        record.entries.push(entry);
        Ok(())
    }

    fn revoke_in(
        &mut self,
        record: &mut StoredRecord,
        collection: Collection,
    ) -> Result<(), StoreError> {
        let Some(index) = record
            .entries
            .iter()
            .position(|e| e.collection == collection && !e.revoked)
        else {
            return Ok(());
        };
        let old = record.entries.remove(index);
        self.remove_object(&old)?;
        let entry = Entry {
            collection,
            episode: old.episode,
            date_added_us: self.take_added(collection),
            modified: next_version(self.params.now, Some(old.modified)),
            revoked: true,
        };
        self.insert_object(record, &entry, record.created)?;
        record.entries.push(entry);
        self.report.revoked += 1;
        Ok(())
    }

    fn revoke_active(&mut self, record: &mut StoredRecord) -> Result<(), StoreError> {
        for collection in Collection::EVERY {
            self.revoke_in(record, collection)?;
        }
        Ok(())
    }

    /// Drops revoked objects whose retention ended.
    fn purge_retained(&mut self, record: &mut StoredRecord) -> Result<(), StoreError> {
        let limit = self
            .params
            .now
            .saturating_sub(self.params.retention)
            .unwrap_or(self.params.now);
        let (gone, kept): (Vec<Entry>, Vec<Entry>) = record
            .entries
            .drain(..)
            .partition(|e| e.revoked && e.modified <= limit);
        record.entries = kept;
        for entry in &gone {
            self.remove_object(entry)?;
            self.forget_episode(record, entry.episode)?;
            self.report.purged += 1;
        }
        Ok(())
    }

    fn purge(&mut self, key: IocKey, number: u64, record: &StoredRecord) -> Result<(), StoreError> {
        for entry in &record.entries {
            self.remove_object(entry)?;
            self.forget_episode(record, entry.episode)?;
        }
        self.remove_record(key, number)?;
        Ok(())
    }

    fn forget_episode(&mut self, record: &StoredRecord, episode: u32) -> Result<(), StoreError> {
        let still_used =
            record.episode == episode || record.entries.iter().any(|e| e.episode == episode);
        if episode > 0 && !still_used {
            let uuid = record.episode_uuid(episode);
            self.tables.episodes.remove(*uuid.as_bytes())?;
        }
        Ok(())
    }

    fn take_added(&mut self, collection: Collection) -> u64 {
        let slot = &mut self.next_added[usize::from(collection.code())];
        let value = *slot;
        *slot += 1;
        value
    }

    fn insert_object(
        &mut self,
        record: &StoredRecord,
        entry: &Entry,
        created: Timestamp,
    ) -> Result<(), StoreError> {
        if entry.episode > 0 {
            let uuid = record.episode_uuid(entry.episode);
            self.tables
                .episodes
                .insert(*uuid.as_bytes(), record.key().0)?;
        }
        let key = (entry.collection.code(), entry.date_added_us);
        if let Some(all) = same_object_in_all(record, entry) {
            let reference = super::tables::encode_reference(all);
            self.tables.objects.insert(key, reference.as_slice())?;
            return Ok(());
        }
        let stix_id = record.stix_id(entry.episode);
        let object = self.render.indicator(&Version {
            facts: &record.facts,
            stix_id: &stix_id,
            created,
            modified: entry.modified,
            revoked: entry.revoked,
        });
        let version = stix_timestamp(entry.modified);
        let value = IndexValue {
            id: &stix_id,
            version: &version,
            revoked: entry.revoked,
            object: &object,
        };
        self.tables.objects.insert(key, value.encode().as_slice())?;
        Ok(())
    }

    fn remove_object(&mut self, entry: &Entry) -> Result<(), StoreError> {
        self.tables
            .objects
            .remove((entry.collection.code(), entry.date_added_us))?;
        Ok(())
    }

    fn remove_record(&mut self, key: IocKey, number: u64) -> Result<(), StoreError> {
        self.tables.records.remove(number)?;
        self.tables.prefixes.remove(key.ordinal())?;
        Ok(())
    }

    /// Writes a record under its number, or under the next free one for a new record;
    /// returns the number.
    fn write_record(
        &mut self,
        key: IocKey,
        number: Option<u64>,
        record: &StoredRecord,
        print: Fingerprint,
    ) -> Result<u64, StoreError> {
        let number = number.unwrap_or_else(|| {
            self.next_number += 1;
            self.next_number - 1
        });
        let prefix = self.prefix_of(record, number, print);
        let mut value = Vec::with_capacity(256);
        prefix.encode(&mut value);
        codec::encode(key, record, &mut value);
        self.tables.records.insert(number, value.as_slice())?;
        let bytes = prefix.to_bytes();
        self.tables
            .prefixes
            .insert(key.ordinal(), bytes.as_slice())?;
        Ok(number)
    }

    fn prefix_of(&self, record: &StoredRecord, number: u64, print: Fingerprint) -> RecordPrefix {
        let facts = &record.facts;
        let mut bits = 0;
        let mut set = |cond: bool, flag: u8| {
            if cond {
                bits |= flag;
            }
        };
        set(facts.local.is_some(), flags::LOCAL);
        set(facts.external.is_some(), flags::EXTERNAL);
        set(record.active(Collection::All).is_some(), flags::ACTIVE);
        set(record.active(Collection::High).is_some(), flags::HIGH);
        set(facts.location.is_some(), flags::GEO);
        set(record.spellings > 1, flags::MULTI);
        set(record.entries.iter().any(|e| e.revoked), flags::REVOKED);
        set((self.is_public)(facts.addr), flags::PUBLIC);
        RecordPrefix {
            hash: print.full,
            local_hash: print.local,
            deadline_us: self.deadline(record),
            number,
            flags: bits,
            enrichment: print.enrichment,
            confidence: facts.confidence,
            country: country_bytes(facts),
        }
    }

    /// The first instant at which the record must be looked at again without new input.
    fn deadline(&self, record: &StoredRecord) -> i64 {
        let validity = record
            .facts
            .last_seen
            .saturating_add(self.params.validity)
            .unwrap_or(record.facts.last_seen);
        let mut deadline = if record.entries.iter().any(|e| !e.revoked) {
            validity.as_microsecond()
        } else {
            i64::MAX
        };
        for entry in record.entries.iter().filter(|e| e.revoked) {
            let purge_at = entry
                .modified
                .saturating_add(self.params.retention)
                .unwrap_or(entry.modified);
            deadline = deadline.min(purge_at.as_microsecond());
        }
        deadline
    }

    /// After every source row and blacklist entry: revokes IOCs whose local row is gone,
    /// applies expiry and retention to the rest, and counts the snapshot.
    ///
    /// # Errors
    /// Storage failures.
    pub fn sweep(&mut self) -> Result<(), StoreError> {
        let now_us = self.params.now.as_microsecond();
        let mut work = Vec::new();
        let mut damaged = Vec::new();
        for item in self.tables.prefixes.iter()? {
            let (key, value) = item?;
            let key = IocKey::from_ordinal(key.value());
            let Some(prefix) = RecordPrefix::read(value.value()) else {
                damaged.push(key);
                continue;
            };
            let orphaned = !self.seen.contains(prefix.number)
                && prefix.has(flags::LOCAL)
                && prefix.has(flags::ACTIVE);
            if orphaned || prefix.deadline_us <= now_us {
                work.push((key, prefix));
            } else {
                self.counts.add(&prefix);
            }
        }
        for (key, prefix) in work {
            self.settle(key, prefix)?;
        }
        for key in damaged {
            tracing::warn!(key = %key.uuid(), "dropping a damaged record prefix");
            self.tables.prefixes.remove(key.ordinal())?;
        }
        Ok(())
    }

    fn settle(&mut self, key: IocKey, prefix: RecordPrefix) -> Result<(), StoreError> {
        let Some(mut record) = self.record_at(prefix.number)? else {
            self.remove_record(key, prefix.number)?;
            return Ok(());
        };
        let valid_until = record
            .facts
            .last_seen
            .saturating_add(self.params.validity)
            .unwrap_or(record.facts.last_seen);
        if valid_until <= self.params.now && record.entries.iter().any(|e| !e.revoked) {
            self.purge(key, prefix.number, &record)?;
            self.report.expired += 1;
            return Ok(());
        }
        if !self.seen.contains(prefix.number) && prefix.has(flags::LOCAL) {
            self.revoke_active(&mut record)?;
        }
        self.purge_retained(&mut record)?;
        if record.entries.is_empty() {
            self.remove_record(key, prefix.number)?;
            return Ok(());
        }
        let print = Fingerprint {
            full: prefix.hash,
            local: prefix.local_hash,
            enrichment: prefix.enrichment,
        };
        self.write_record(key, Some(prefix.number), &record, print)?;
        let new_prefix = self.prefix_of(&record, prefix.number, print);
        self.counts.add(&new_prefix);
        Ok(())
    }

    /// Makes `objects` the static objects of a collection, replacing the previous set.
    /// Unchanged objects keep their `date_added`.
    ///
    /// # Errors
    /// Storage failures.
    pub(super) fn put_static(
        &mut self,
        collection: Collection,
        previous: &[(StaticObject, u64)],
        objects: &[StaticObject],
    ) -> Result<Vec<(StaticObject, u64)>, StoreError> {
        let mut result = Vec::new();
        for (old, added) in previous {
            if !objects.contains(old) {
                self.tables.objects.remove((collection.code(), *added))?;
            }
        }
        for object in objects {
            if let Some((_, added)) = previous.iter().find(|(o, _)| o == object) {
                result.push((object.clone(), *added));
                continue;
            }
            let added = self.take_added(collection);
            let value = IndexValue {
                id: &object.id,
                version: &object.version,
                revoked: false,
                object: object.object.as_bytes(),
            };
            self.tables
                .objects
                .insert((collection.code(), added), value.encode().as_slice())?;
            result.push((object.clone(), added));
        }
        Ok(result)
    }

    pub(super) fn finish(self) -> (PublishReport, SnapshotCounts, [u64; 2]) {
        let last = self.next_added.map(|next| next - 1);
        (self.report, self.counts, last)
    }

    /// Counts every key in the records table that this cycle did not see and that holds
    /// local evidence; used to refuse publishing an accidental empty read of the source.
    pub fn unseen_local(&self) -> Result<u64, StoreError> {
        let mut count = 0;
        for item in self.tables.prefixes.iter()? {
            let (_, value) = item?;
            let Some(prefix) = RecordPrefix::read(value.value()) else {
                continue;
            };
            if self.seen.contains(prefix.number) {
                continue;
            }
            if prefix.has(flags::LOCAL) && prefix.has(flags::ACTIVE) {
                count += 1;
            }
        }
        Ok(count)
    }
}

/// The `date_added` of the `all` object that has exactly the bytes `entry` would get: the
/// same episode and version, active in both. Invariant kept by `apply`: the two entries are
/// always replaced together, so a reference never outlives its target.
fn same_object_in_all(record: &StoredRecord, entry: &Entry) -> Option<u64> {
    if entry.collection != Collection::High || entry.revoked {
        return None;
    }
    record
        .active(Collection::All)
        .filter(|all| all.episode == entry.episode && all.modified == entry.modified)
        .map(|all| all.date_added_us)
}

fn country_bytes(facts: &IocFacts) -> [u8; 2] {
    let code = facts.country_code();
    match code.map(str::as_bytes) {
        Some([a, b]) if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            [a.to_ascii_uppercase(), b.to_ascii_uppercase()]
        }
        _ => [0, 0],
    }
}

/// Decodes a `RECORDS` value (prefix, then the binary record) into its key and record.
pub fn decode_record(value: &[u8]) -> Option<(IocKey, StoredRecord)> {
    let (_, body) = RecordPrefix::split(value)?;
    codec::decode(body)
}
