//! The geolocation cache in the store's `GEO` table: which addresses still need a lookup,
//! which entries have expired, and writing a batch of answers in one transaction.
//!
//! A positive entry lives `cache_ttl`, a negative one (`null`) `negative_ttl`. An expired
//! entry stays readable until its replacement is written, so an indicator never loses its
//! location between two lookups. All methods block; callers run them in `spawn_blocking`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use redb::{ReadableDatabase, ReadableTable};

use crate::ioc::{IocKey, Location};
use crate::store::tables::{GEO, Stamped, key_bytes};
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct Cache {
    store: Arc<Store>,
    cache_ttl: SignedDuration,
    negative_ttl: SignedDuration,
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

impl Cache {
    pub fn new(store: Arc<Store>, cache_ttl: Duration, negative_ttl: Duration) -> Cache {
        Cache {
            store,
            cache_ttl: signed(cache_ttl),
            negative_ttl: signed(negative_ttl),
        }
    }

    /// True when a stored value is past its time to live.
    fn expired(&self, value: &[u8], now: Timestamp) -> bool {
        let Some(stamped) = Stamped::decode(value) else {
            return true;
        };
        let ttl = if stamped.payload == b"null" {
            self.negative_ttl
        } else {
            self.cache_ttl
        };
        stamped
            .fetched_at
            .saturating_add(ttl)
            .is_ok_and(|until| until <= now)
    }

    /// Splits `addrs` into those that need a lookup and the number answered by the cache.
    ///
    /// # Errors
    /// Storage failures.
    pub fn missing(
        &self,
        addrs: Vec<IpAddr>,
        now: Timestamp,
    ) -> Result<(Vec<IpAddr>, u64), StoreError> {
        let txn = self.store.db().begin_read()?;
        let table = match txn.open_table(GEO) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok((addrs, 0)),
            Err(err) => return Err(err.into()),
        };
        let mut todo = Vec::new();
        let mut hits = 0;
        for addr in addrs {
            match table.get(key_bytes(IocKey::of(addr)))? {
                Some(value) if !self.expired(value.value(), now) => hits += 1,
                _ => todo.push(addr),
            }
        }
        Ok((todo, hits))
    }

    /// Up to `max` addresses whose entry has expired, found through their stored record
    /// (cache keys are one-way). Entries without a record belong to addresses that left the
    /// feed and are not refreshed.
    ///
    /// # Errors
    /// Storage failures.
    pub fn stale(&self, now: Timestamp, max: usize) -> Result<Vec<IpAddr>, StoreError> {
        let mut keys = Vec::new();
        {
            let txn = self.store.db().begin_read()?;
            let table = match txn.open_table(GEO) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(err) => return Err(err.into()),
            };
            for item in table.iter()? {
                let (key, value) = item?;
                if self.expired(value.value(), now) {
                    keys.push(IocKey(key.value()));
                    if keys.len() >= max {
                        break;
                    }
                }
            }
        }
        let mut addrs = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(record) = self.store.record(key)? {
                addrs.push(record.facts.addr);
            }
        }
        Ok(addrs)
    }

    /// Writes answers (`None` = negative) in one write transaction.
    ///
    /// # Errors
    /// Storage failures; nothing is written then.
    pub fn write(
        &self,
        answers: &[(IpAddr, Option<Location>)],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if answers.is_empty() {
            return Ok(());
        }
        let txn = self.store.db().begin_write()?;
        {
            let mut table = txn.open_table(GEO)?;
            let mut keys = Vec::with_capacity(answers.len());
            for (addr, location) in answers {
                let json = serde_json::to_vec(location).unwrap_or_else(|_| b"null".to_vec());
                let value = Stamped::encode(now, &json);
                let key = key_bytes(IocKey::of(*addr));
                table.insert(key, value.as_slice())?;
                keys.push(key);
            }
            crate::store::note_enriched(&txn, keys)?;
        }
        txn.commit()?;
        Ok(())
    }
}
