//! The stored form of an IOC: its merged facts plus the publication history the store keeps
//! for it (listing episode, STIX `created`/`modified`, the objects it has in each collection).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ioc::{Collection, INDICATOR_NAMESPACE, IocFacts, IocKey};

/// One object of a record in one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub collection: Collection,
    /// Listing episode whose STIX id this object carries.
    pub episode: u32,
    /// TAXII `date_added`, µs since the epoch; the object's key in the collection.
    pub date_added_us: u64,
    /// STIX `modified` of this object.
    pub modified: Timestamp,
    pub revoked: bool,
}

/// An IOC as the store keeps it.
///
/// Invariants: at most one non-revoked entry per collection, and it belongs to the current
/// `episode`; `modified >= created`; a revoked entry is never made active again (STIX makes
/// revocation permanent), so an address that comes back after a revocation starts a new
/// episode with a new STIX id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub facts: IocFacts,
    pub episode: u32,
    /// STIX `created` of the current episode.
    pub created: Timestamp,
    /// Last content change in the current episode.
    pub modified: Timestamp,
    /// How many spellings of the address the source held (usually 1).
    pub spellings: u32,
    pub entries: Vec<Entry>,
}

impl StoredRecord {
    pub fn key(&self) -> IocKey {
        IocKey::of(self.facts.addr)
    }

    pub fn active(&self, collection: Collection) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.collection == collection && !e.revoked)
    }

    /// The STIX id UUID of an episode: the IOC key for episode 0, else a UUIDv5 over the
    /// address and the episode number.
    pub fn episode_uuid(&self, episode: u32) -> Uuid {
        episode_uuid(self.key(), &self.facts.addr.to_string(), episode)
    }

    pub fn stix_id(&self, episode: u32) -> String {
        format!("indicator--{}", self.episode_uuid(episode))
    }
}

pub fn episode_uuid(key: IocKey, addr: &str, episode: u32) -> Uuid {
    if episode == 0 {
        return key.uuid();
    }
    Uuid::new_v5(&INDICATOR_NAMESPACE, format!("{addr}#{episode}").as_bytes())
}

/// STIX timestamps carry milliseconds; versions must be strictly newer than the last.
pub fn next_version(now: Timestamp, previous: Option<Timestamp>) -> Timestamp {
    let now = truncate_ms(now);
    match previous {
        Some(prev) if prev >= now => prev
            .checked_add(jiff::SignedDuration::from_millis(1))
            .unwrap_or(prev),
        _ => now,
    }
}

pub fn truncate_ms(at: Timestamp) -> Timestamp {
    let ms = at.as_millisecond();
    Timestamp::from_millisecond(ms).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_always_move_forward_by_milliseconds() {
        let now = Timestamp::from_microsecond(1_700_000_000_123_456).unwrap();
        assert_eq!(
            next_version(now, None).as_microsecond(),
            1_700_000_000_123_000
        );
        let same = next_version(now, Some(truncate_ms(now)));
        assert_eq!(same.as_microsecond(), 1_700_000_000_124_000);
    }
}
