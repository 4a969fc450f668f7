//! Reading the published snapshot for the REST API and exports: one redb read transaction
//! walks the records in record-number order (numbers never change while a record lives, so
//! they make stable keyset cursors), filters them by a [`Selection`] (cheap prefix checks
//! before decoding) and reaches each record's pre-serialised STIX object in the same
//! transaction, so a listing or an export never mixes two snapshots.
//!
//! Everything here blocks; async callers run it in `spawn_blocking`.

use std::ops::{Bound, ControlFlow};

use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable};

use super::params::Selection;
use crate::ioc::{Collection, IocKey};
use crate::store::record::{Entry, StoredRecord};
use crate::store::tables::{self, IndexValue, RecordPrefix, flags};
use crate::store::writer::decode_record;
use crate::store::{Store, StoreError};

/// A record that passed the selection, with its active entry in the selected collection.
pub struct Selected {
    /// The record number: the listing cursor.
    pub number: u64,
    pub key: IocKey,
    pub record: StoredRecord,
    pub entry: Entry,
}

impl Selected {
    pub fn stix_id(&self) -> String {
        self.record.stix_id(self.entry.episode)
    }

    pub fn high(&self) -> bool {
        self.record.active(Collection::High).is_some()
    }
}

/// One consistent view of the published snapshot.
pub struct Snapshot {
    records: ReadOnlyTable<u64, &'static [u8]>,
    prefixes: ReadOnlyTable<u128, &'static [u8]>,
    objects: ReadOnlyTable<(u8, u64), &'static [u8]>,
    _txn: ReadTransaction,
}

impl Snapshot {
    /// # Errors
    /// Storage failures.
    pub fn open(store: &Store) -> Result<Snapshot, StoreError> {
        let txn = store.db().begin_read()?;
        Ok(Snapshot {
            records: txn.open_table(tables::RECORDS)?,
            prefixes: txn.open_table(tables::PREFIXES)?,
            objects: txn.open_table(tables::OBJECTS)?,
            _txn: txn,
        })
    }

    /// Visits the records `selection` keeps, in record-number order, after number `after`.
    ///
    /// # Errors
    /// Storage failures and the error `visit` returns.
    pub fn select<E: From<StoreError>>(
        &self,
        selection: &Selection,
        after: Option<u64>,
        mut visit: impl FnMut(Selected) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        let start: Bound<u64> = after.map_or(Bound::Unbounded, Bound::Excluded);
        let range = self
            .records
            .range((start, Bound::<u64>::Unbounded))
            .map_err(StoreError::from)?;
        for item in range {
            let (number, value) = item.map_err(StoreError::from)?;
            let Some(selected) = keep(selection, number.value(), value.value()) else {
                continue;
            };
            if visit(selected)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The record of one key, active or not.
    ///
    /// # Errors
    /// Storage failures.
    pub fn record(&self, key: IocKey) -> Result<Option<StoredRecord>, StoreError> {
        let Some(prefix) = self.prefixes.get(key.ordinal())? else {
            return Ok(None);
        };
        let Some(number) = RecordPrefix::read(prefix.value()).map(|p| p.number) else {
            return Ok(None);
        };
        let value = self.records.get(number)?;
        Ok(value.and_then(|v| decode_record(v.value())).map(|(_, r)| r))
    }

    /// Calls `use_bytes` with the stored STIX object of an entry (absent after a purge).
    ///
    /// # Errors
    /// Storage failures and the error `use_bytes` returns.
    pub fn with_object<T, E: From<StoreError>>(
        &self,
        entry: &Entry,
        use_bytes: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Option<T>, E> {
        let key = (entry.collection.code(), entry.date_added_us);
        let Some(value) = self.objects.get(key).map_err(StoreError::from)? else {
            return Ok(None);
        };
        // A high-confidence object identical to its `all` version is stored as a reference.
        let target = match tables::decode_reference(value.value()) {
            Some(all_added) => self
                .objects
                .get((Collection::All.code(), all_added))
                .map_err(StoreError::from)?,
            None => None,
        };
        let bytes = target.as_ref().map_or(value.value(), |t| t.value());
        match IndexValue::decode(bytes) {
            Some(index) => use_bytes(index.object).map(Some),
            None => Ok(None),
        }
    }
}

/// Applies the selection: flags, confidence and country from the fixed-size prefix first,
/// the record body only for records that pass them.
fn keep(selection: &Selection, number: u64, value: &[u8]) -> Option<Selected> {
    let (prefix, _) = RecordPrefix::split(value)?;
    if !prefix_keeps(selection, &prefix) {
        return None;
    }
    let (key, record) = decode_record(value)?;
    let entry = record.active(selection.collection())?.clone();
    let facts = &record.facts;
    let kept = selection.family.keeps(facts.addr)
        && selection.source.is_none_or(|s| s.keeps(facts.sources()))
        && selection.since.is_none_or(|since| record.modified > since)
        && (!selection.enriched || facts.external.is_some())
        && selection
            .country
            .as_deref()
            .is_none_or(|c| country(&record).is_some_and(|r| r.eq_ignore_ascii_case(c)));
    kept.then_some(Selected {
        number,
        key,
        record,
        entry,
    })
}

fn prefix_keeps(selection: &Selection, prefix: &RecordPrefix) -> bool {
    let active = match selection.collection() {
        Collection::All => flags::ACTIVE,
        Collection::High => flags::HIGH,
    };
    prefix.has(active) && prefix.confidence >= selection.min_confidence
}

/// The country of a record: the geolocation's, else the one AbuseIPDB reported.
pub fn country(record: &StoredRecord) -> Option<&str> {
    record.facts.country_code()
}
