//! The IOC record: what the appliance knows about one address, from every source, and the
//! stable key that names it everywhere (redb tables, STIX ids, TAXII object ids).
//!
//! Records are built by the pipeline, stored by the store and rendered by the publishers; no
//! other module invents its own shape for an IOC.

use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of the UUIDv5 indicator ids. Fixed forever: changing it would give every
/// indicator a new id and make consumers see the whole feed twice.
pub const INDICATOR_NAMESPACE: Uuid = Uuid::from_u128(0x6a0b_6f0e_53c4_4d8e_9f0c_2b1d_7e4a_91c5);

/// The stable identity of an IOC: the UUIDv5 of its canonical address text. It keys every
/// redb table and is the UUID part of the STIX indicator id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IocKey(pub [u8; 16]);

impl IocKey {
    /// The key of an already normalised address (see `source::address::normalise`).
    pub fn of(addr: IpAddr) -> IocKey {
        let uuid = Uuid::new_v5(&INDICATOR_NAMESPACE, addr.to_string().as_bytes());
        IocKey(*uuid.as_bytes())
    }

    /// The key as one big-endian integer: the same order as the bytes, and the key type
    /// of the tables a cycle reads for every row (integer comparisons are much cheaper
    /// than redb's element-wise comparison of byte arrays).
    pub fn ordinal(self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    pub fn from_ordinal(ordinal: u128) -> IocKey {
        IocKey(ordinal.to_be_bytes())
    }

    pub fn uuid(self) -> Uuid {
        Uuid::from_bytes(self.0)
    }

    /// `indicator--<uuid>`.
    pub fn stix_id(self) -> String {
        format!("indicator--{}", self.uuid())
    }

    /// Parses `indicator--<uuid>`; any other text is `None`.
    pub fn from_stix_id(id: &str) -> Option<IocKey> {
        let uuid = id.strip_prefix("indicator--")?;
        Uuid::parse_str(uuid).ok().map(|u| IocKey(*u.as_bytes()))
    }
}

/// Hashes an [`IocKey`] by its first eight bytes: keys are SHA-1 output, already uniform,
/// so the sets and maps a cycle keeps over every key need no further mixing.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
    }
}

pub type KeyHashing = std::hash::BuildHasherDefault<KeyHasher>;

/// A set of IOC keys (see [`KeyHasher`]).
pub type KeySet = std::collections::HashSet<IocKey, KeyHashing>;

/// A map keyed by IOC keys (see [`KeyHasher`]).
pub type KeyMap<V> = std::collections::HashMap<IocKey, V, KeyHashing>;

/// Which sources reported the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sources {
    Local,
    Abuseipdb,
    Both,
}

impl Sources {
    pub fn as_str(self) -> &'static str {
        match self {
            Sources::Local => "local",
            Sources::Abuseipdb => "abuseipdb",
            Sources::Both => "both",
        }
    }
}

/// What the local `reported_ips` table says about an address, after cleaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalFacts {
    /// 0–100 after clamping or defaulting.
    pub confidence: u8,
    /// AbuseIPDB category ids (1–23), sorted, without duplicates.
    pub categories: Vec<u8>,
    /// Free-text tags found in the categories column, sorted, without duplicates.
    pub tags: Vec<String>,
    pub report_id: Option<String>,
    pub reported_at: Timestamp,
    pub created_at: Timestamp,
}

/// What AbuseIPDB says about an address (blacklist entry and/or `/check` answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ExternalFacts {
    /// `abuseConfidenceScore`, 0–100.
    pub score: u8,
    pub on_blacklist: bool,
    pub country_code: Option<String>,
    pub isp: Option<String>,
    pub usage_type: Option<String>,
    pub domain: Option<String>,
    pub total_reports: Option<u32>,
    pub last_reported_at: Option<Timestamp>,
}

/// One AbuseIPDB blacklist entry as stored: the address (keys are one-way) and its facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlacklistEntry {
    pub addr: IpAddr,
    #[serde(flatten)]
    pub facts: ExternalFacts,
}

/// Where an address is, as one provider answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub asn: Option<u32>,
    pub isp: Option<String>,
    /// Which provider answered (`mmdb`, `ipapi`, `ipwhois`, `geojs`).
    pub provider: String,
}

/// Everything the pipeline merged for one address in one cycle: the input of scoring and
/// rendering. Two equal inputs always give byte-identical STIX objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IocFacts {
    pub addr: IpAddr,
    pub local: Option<LocalFacts>,
    pub external: Option<ExternalFacts>,
    pub location: Option<Location>,
    /// Final confidence (see `pipeline::score`).
    pub confidence: u8,
    /// Earliest evidence: the local row's `created_at`/`reported_at`, or AbuseIPDB's report
    /// time for external-only IOCs.
    pub first_seen: Timestamp,
    /// Latest evidence; `valid_until` is this plus the validity period.
    pub last_seen: Timestamp,
}

impl IocFacts {
    /// The country: the geolocation's, else the one AbuseIPDB reported.
    pub fn country_code(&self) -> Option<&str> {
        let located = self
            .location
            .as_ref()
            .and_then(|l| l.country_code.as_deref());
        located.or_else(|| {
            self.external
                .as_ref()
                .and_then(|e| e.country_code.as_deref())
        })
    }

    pub fn sources(&self) -> Sources {
        match (self.local.is_some(), self.external.is_some()) {
            (true, true) => Sources::Both,
            (false, true) => Sources::Abuseipdb,
            _ => Sources::Local,
        }
    }
}

/// The two TAXII collections. Their numbers are part of redb keys: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Collection {
    All = 0,
    High = 1,
}

impl Collection {
    pub const EVERY: [Collection; 2] = [Collection::All, Collection::High];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// The collection of a stored [`Collection::code`].
    pub fn from_code(code: u8) -> Option<Collection> {
        Collection::EVERY.into_iter().find(|c| c.code() == code)
    }

    /// Fixed TAXII collection id (a UUIDv4, as TAXII requires).
    pub fn id(self) -> &'static str {
        match self {
            Collection::All => "3f7e1c52-9b1a-4c6e-8d2f-5a4b6c7d8e90",
            Collection::High => "8c2d4e6f-1a3b-4c5d-9e7f-0a1b2c3d4e5f",
        }
    }

    pub fn alias(self) -> &'static str {
        match self {
            Collection::All => "ioc-indicators",
            Collection::High => "high-confidence-iocs",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Collection::All => "All IOC indicators",
            Collection::High => "High-confidence IOC indicators",
        }
    }

    /// Looks a collection up by id or alias.
    pub fn find(id_or_alias: &str) -> Option<Collection> {
        Collection::EVERY
            .into_iter()
            .find(|c| c.id() == id_or_alias || c.alias() == id_or_alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_round_trip() {
        let key = IocKey::of("203.0.113.7".parse().unwrap());
        assert_eq!(key, IocKey::of("203.0.113.7".parse().unwrap()));
        assert_ne!(key, IocKey::of("203.0.113.8".parse().unwrap()));
        assert_eq!(IocKey::from_stix_id(&key.stix_id()), Some(key));
        assert_eq!(key.uuid().get_version_num(), 5);
        assert!(IocKey::from_stix_id("identity--x").is_none());
    }

    #[test]
    fn collections_are_found_by_id_and_alias() {
        assert_eq!(Collection::find("ioc-indicators"), Some(Collection::All));
        assert_eq!(
            Collection::find(Collection::High.id()),
            Some(Collection::High)
        );
        assert_eq!(Collection::find("nope"), None);
        assert_eq!(
            Uuid::parse_str(Collection::All.id())
                .unwrap()
                .get_version_num(),
            4
        );
        assert_eq!(
            Uuid::parse_str(Collection::High.id())
                .unwrap()
                .get_version_num(),
            4
        );
    }
}
