//! The `/check` answer cache: the `CHECKS` table (IOC key → stamped [`ExternalFacts`]).
//! An answer is fresh for `ABUSEIPDB_CHECK_CACHE_TTL`; stale answers stay usable by the
//! pipeline until a new one replaces them.

use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;
use redb::{ReadableDatabase, ReadableTable};

use super::blacklist::clamp_score;
use super::budget::plus_seconds;
use super::client::CheckData;
use crate::ioc::{ExternalFacts, IocKey};
use crate::store::tables::{CHECKS, Stamped, key_bytes};
use crate::store::{Store, StoreError};

/// A cached answer and when it was fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub facts: ExternalFacts,
    pub fetched_at: Timestamp,
}

impl Cached {
    pub fn is_fresh(&self, now: Timestamp, ttl: Duration) -> bool {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        plus_seconds(self.fetched_at, ttl) > now
    }
}

/// The cached answer for `addr` (already normalised), if any.
///
/// # Errors
/// Storage failures; an undecodable value reads as `None`.
pub fn get(store: &Store, addr: IpAddr) -> Result<Option<Cached>, StoreError> {
    let txn = store.db().begin_read()?;
    let table = txn.open_table(CHECKS)?;
    let Some(value) = table.get(key_bytes(IocKey::of(addr)))? else {
        return Ok(None);
    };
    let Some(stamped) = Stamped::decode(value.value()) else {
        return Ok(None);
    };
    let facts = serde_json::from_slice(stamped.payload).ok();
    Ok(facts.map(|facts| Cached {
        facts,
        fetched_at: stamped.fetched_at,
    }))
}

/// Stores an answer for `addr` fetched at `now`.
///
/// # Errors
/// Storage failures.
pub fn put(
    store: &Store,
    addr: IpAddr,
    facts: &ExternalFacts,
    now: Timestamp,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(facts).map_err(|e| StoreError::Encode(e.to_string()))?;
    let txn = store.db().begin_write()?;
    {
        let mut table = txn.open_table(CHECKS)?;
        let value = Stamped::encode(now, &json);
        let key = key_bytes(IocKey::of(addr));
        table.insert(key, value.as_slice())?;
        crate::store::note_enriched(&txn, [key])?;
    }
    txn.commit()?;
    Ok(())
}

/// The facts the appliance keeps from a `/check` answer. `on_blacklist` is decided by the
/// pipeline from the stored blacklist, not here.
pub fn facts(data: &CheckData) -> ExternalFacts {
    ExternalFacts {
        score: clamp_score(data.abuse_confidence_score),
        on_blacklist: false,
        country_code: data.country_code.clone(),
        isp: data.isp.clone(),
        usage_type: data.usage_type.clone(),
        domain: data.domain.clone(),
        total_reports: data
            .total_reports
            .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX)),
        last_reported_at: data
            .last_reported_at
            .as_deref()
            .and_then(|t| t.parse().ok()),
    }
}
