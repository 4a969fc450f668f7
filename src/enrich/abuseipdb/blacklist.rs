//! The stored AbuseIPDB blacklist: the `BLACKLIST` table (IOC key → stamped
//! [`BlacklistEntry`]) and its summary in `meta` (`abuseipdb:blacklist`).
//!
//! Invariant: the table only ever changes as a whole, in one write transaction, and only
//! after a complete, parsed answer. A failed or refused fetch leaves the last good list in
//! place, so its IOCs stay published; entries that leave the list age out by validity.

use std::collections::BTreeMap;

use jiff::Timestamp;
use redb::Durability;
use serde::{Deserialize, Serialize};

use super::client::{BlacklistBody, BlacklistItem};
use crate::ioc::{BlacklistEntry, ExternalFacts, IocKey};
use crate::source::address::normalise;
use crate::store::tables::{BLACKLIST, META, Stamped, key_bytes};
use crate::store::{Store, StoreError};

const META_BLACKLIST: &str = "abuseipdb:blacklist";

/// What the appliance knows about its stored blacklist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistState {
    /// `meta.generatedAt` of the stored list, as AbuseIPDB wrote it.
    pub generated_at: Option<String>,
    /// When the last successful fetch answered (even an unchanged list).
    pub fetched_at: Option<Timestamp>,
    pub entries: u64,
}

/// The result of applying one fetched list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// False when `generatedAt` matched the stored list and nothing was rewritten.
    pub rewritten: bool,
    pub entries: u64,
    /// Entries not stored, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// The stored summary (default before the first fetch).
///
/// # Errors
/// Storage failures.
pub fn state(store: &Store) -> Result<BlacklistState, StoreError> {
    Ok(store.meta_json(META_BLACKLIST)?.unwrap_or_default())
}

/// Replaces the stored list with `body` fetched at `now`, unless its `generatedAt` is the
/// stored one; either way the fetch time is recorded.
///
/// # Errors
/// Storage failures (nothing is changed then).
pub fn apply(store: &Store, body: &BlacklistBody, now: Timestamp) -> Result<Applied, StoreError> {
    let previous = state(store)?;
    let unchanged = body.meta.generated_at.is_some()
        && body.meta.generated_at == previous.generated_at
        && previous.fetched_at.is_some();
    if unchanged {
        let next = BlacklistState {
            fetched_at: Some(now),
            ..previous
        };
        store.put_meta(META_BLACKLIST, &next)?;
        let entries = next.entries;
        return Ok(Applied {
            rewritten: false,
            entries,
            skipped: BTreeMap::new(),
        });
    }
    replace(store, body, now)
}

fn replace(store: &Store, body: &BlacklistBody, now: Timestamp) -> Result<Applied, StoreError> {
    let (rows, skipped) = entries(&body.data, now)?;
    let mut txn = store.db().begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut table = txn.open_table(BLACKLIST)?;
        let mut touched = Vec::with_capacity(rows.len());
        table.retain(|key, _| {
            touched.push(key);
            false
        })?;
        for (key, value) in &rows {
            table.insert(key, value.as_slice())?;
        }
        touched.extend(rows.keys().copied());
        crate::store::note_enriched(&txn, touched)?;
        let summary = BlacklistState {
            generated_at: body.meta.generated_at.clone(),
            fetched_at: Some(now),
            entries: rows.len() as u64,
        };
        let json = serde_json::to_vec(&summary).map_err(|e| StoreError::Encode(e.to_string()))?;
        txn.open_table(META)?
            .insert(META_BLACKLIST, json.as_slice())?;
    }
    txn.commit()?;
    Ok(Applied {
        rewritten: true,
        entries: rows.len() as u64,
        skipped,
    })
}

type Rows = BTreeMap<[u8; 16], Vec<u8>>;

/// Encodes the usable items; the same address twice keeps its first (highest-scored) item.
fn entries(
    items: &[BlacklistItem],
    now: Timestamp,
) -> Result<(Rows, BTreeMap<String, u64>), StoreError> {
    let mut rows = Rows::new();
    let mut skipped = BTreeMap::new();
    for item in items {
        let entry = match entry(item) {
            Ok(entry) => entry,
            Err(reason) => {
                *skipped.entry(reason.to_string()).or_insert(0) += 1;
                continue;
            }
        };
        let key = key_bytes(IocKey::of(entry.addr));
        if rows.contains_key(&key) {
            *skipped.entry("duplicate".to_string()).or_insert(0) += 1;
            continue;
        }
        let json = serde_json::to_vec(&entry).map_err(|e| StoreError::Encode(e.to_string()))?;
        rows.insert(key, Stamped::encode(now, &json));
    }
    Ok((rows, skipped))
}

fn entry(item: &BlacklistItem) -> Result<BlacklistEntry, &'static str> {
    let (addr, _) = normalise(&item.ip_address).map_err(|reason| reason.as_str())?;
    let last_reported_at = item
        .last_reported_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok());
    Ok(BlacklistEntry {
        addr,
        facts: ExternalFacts {
            score: clamp_score(item.abuse_confidence_score),
            on_blacklist: true,
            country_code: item.country_code.clone(),
            last_reported_at,
            ..ExternalFacts::default()
        },
    })
}

/// AbuseIPDB scores are 0–100; anything else is clamped rather than trusted.
pub fn clamp_score(score: i64) -> u8 {
    u8::try_from(score.clamp(0, 100)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ip: &str, score: i64) -> BlacklistItem {
        BlacklistItem {
            ip_address: ip.into(),
            country_code: Some("NL".into()),
            abuse_confidence_score: score,
            last_reported_at: Some("2020-09-24T19:17:02+00:00".into()),
        }
    }

    #[test]
    fn bad_and_duplicate_items_are_skipped_with_a_reason() {
        let now: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
        let items = [
            item("5.188.10.179", 100),
            item("::ffff:5.188.10.179", 90),
            item("not an ip", 100),
            item("185.222.209.14", 250),
        ];
        let (rows, skipped) = entries(&items, now).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(skipped.get("duplicate"), Some(&1));
        assert_eq!(skipped.values().sum::<u64>(), 2);
        let stored = rows
            .get(&key_bytes(IocKey::of("185.222.209.14".parse().unwrap())))
            .unwrap();
        let entry: BlacklistEntry =
            serde_json::from_slice(Stamped::decode(stored).unwrap().payload).unwrap();
        assert_eq!(entry.facts.score, 100);
    }
}
