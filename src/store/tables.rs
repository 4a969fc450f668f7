//! The redb tables and the byte layouts of their values. Every table of the appliance is
//! defined here, so the whole on-disk format can be read in one place.
//!
//! Layout changes must stay readable by older files or bump [`FORMAT_VERSION`].

use jiff::Timestamp;
use redb::TableDefinition;

use crate::ioc::{Collection, IocKey};

/// Stored in `meta` under `format`. Format 1 files are upgraded at open (see
/// `Store::open`); a file with any other version is refused.
pub const FORMAT_VERSION: u32 = 2;

/// Record number → [`RecordPrefix`] bytes followed by the record in the binary layout of
/// `store::codec`. Numbers are handed out in increasing order and never change while the
/// record lives, so the first cycle appends to this table instead of inserting at random
/// places (random inserts rewrote each page several times and dominated that cycle).
pub const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("ioc_records");

/// IOC key (as `IocKey::ordinal`) → [`RecordPrefix`] alone, which also names the record
/// number. The same bytes head every `RECORDS` value; this small table is what a cycle
/// reads for every row ("unchanged?") and sweeps in full, so those reads stay in the page
/// cache. Values are byte slices, not arrays: redb decodes arrays element by element.
pub const PREFIXES: TableDefinition<u128, &[u8]> = TableDefinition::new("ioc_prefixes");

/// IOC keys whose enrichment (blacklist, `/check` answer, geolocation) was written since the
/// last publication. A cycle reads and empties it in its own transaction; a row whose local
/// facts and enrichment are both unchanged is then settled from its prefix alone.
pub const ENRICHED: TableDefinition<[u8; 16], ()> = TableDefinition::new("enriched_since_cycle");

/// Format 1 tables, read once by the upgrade and then deleted.
pub const V1_RECORDS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("records");
pub const V1_PREFIXES: TableDefinition<[u8; 16], [u8; 20]> =
    TableDefinition::new("record_prefixes");

/// (collection code, `date_added` in µs) → [`IndexValue`] bytes. The TAXII collections are
/// range scans over this table: keys are unique and strictly increasing per collection.
pub const OBJECTS: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("objects");

/// STIX id UUID of a later listing episode → the IOC key that owns it. Episode 0 ids equal
/// their key and have no row here.
pub const EPISODE_IDS: TableDefinition<[u8; 16], [u8; 16]> = TableDefinition::new("episode_ids");

/// Small named values: snapshot metadata, per-collection `date_added` high-water marks,
/// static objects, budgets. JSON values.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// AbuseIPDB blacklist: IOC key → [`Stamped`] JSON of `enrich::abuseipdb::BlacklistEntry`.
pub const BLACKLIST: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("blacklist");

/// AbuseIPDB `/check` answers: IOC key → [`Stamped`] JSON of `ioc::ExternalFacts`.
pub const CHECKS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("abuseipdb_checks");

/// Geolocation cache: IOC key → [`Stamped`] JSON of `Option<ioc::Location>` (`null` is a
/// negative answer, kept for a shorter time).
pub const GEO: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("geo_cache");

pub const META_FORMAT: &str = "format";
pub const META_SNAPSHOT: &str = "snapshot";
pub const META_CYCLES: &str = "cycles";

pub fn meta_last_added(collection: Collection) -> String {
    format!("last_added:{}", collection.alias())
}

pub fn meta_static(collection: Collection) -> String {
    format!("static:{}", collection.alias())
}

/// Flags of [`RecordPrefix::flags`].
pub mod flags {
    /// The local source reported the address.
    pub const LOCAL: u8 = 1;
    /// AbuseIPDB reported the address.
    pub const EXTERNAL: u8 = 2;
    /// The record has a non-revoked object in the `all` collection.
    pub const ACTIVE: u8 = 4;
    /// The record has a non-revoked object in the high-confidence collection.
    pub const HIGH: u8 = 8;
    /// The record has a location.
    pub const GEO: u8 = 16;
    /// The address came from more than one spelling in the source.
    pub const MULTI: u8 = 32;
    /// The address is public (may be sent to upstream APIs).
    pub const PUBLIC: u8 = 128;
    /// The record holds a revoked object (kept until the retention ends).
    pub const REVOKED: u8 = 64;
}

/// Flags of [`RecordPrefix::enrichment`]: which enrichment entries existed when the record
/// was last computed (entries are only added or replaced, and every write is noted in
/// `ENRICHED`, so these stay true until the next full computation).
pub mod enrichment {
    /// A geolocation cache entry, positive or negative.
    pub const GEO: u8 = 1;
    /// A `/check` answer.
    pub const CHECK: u8 = 2;
}

/// The fixed-size head of a record value: enough to decide "unchanged" and to count the
/// snapshot without decoding the record that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordPrefix {
    /// Fingerprint of everything that shapes the published objects.
    pub hash: u64,
    /// Fingerprint of the settings and the local facts alone (0: unknown, compute fully).
    pub local_hash: u64,
    /// The earliest instant something must happen to the record (expiry, purge), in µs.
    pub deadline_us: i64,
    /// The record's key in `RECORDS`.
    pub number: u64,
    pub flags: u8,
    /// [`enrichment`] flags.
    pub enrichment: u8,
    pub confidence: u8,
    /// ISO country code letters, or zeros.
    pub country: [u8; 2],
}

impl RecordPrefix {
    pub const LEN: usize = 37;

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hash.to_le_bytes());
        out.extend_from_slice(&self.local_hash.to_le_bytes());
        out.extend_from_slice(&self.deadline_us.to_le_bytes());
        out.extend_from_slice(&self.number.to_le_bytes());
        out.push(self.flags);
        out.push(self.enrichment);
        out.push(self.confidence);
        out.extend_from_slice(&self.country);
    }

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = Vec::with_capacity(Self::LEN);
        self.encode(&mut out);
        out.try_into().expect("the prefix encodes to LEN bytes")
    }

    /// The prefix at the head of `bytes`; `None` when they are too short (a damaged value).
    pub fn read(bytes: &[u8]) -> Option<RecordPrefix> {
        RecordPrefix::split(bytes).map(|(prefix, _)| prefix)
    }

    /// Splits a stored value into its prefix and JSON body; `None` for a damaged value.
    pub fn split(value: &[u8]) -> Option<(RecordPrefix, &[u8])> {
        if value.len() < Self::LEN {
            return None;
        }
        let (head, body) = value.split_at(Self::LEN);
        let word = |at: usize| -> Option<[u8; 8]> { head[at..at + 8].try_into().ok() };
        let prefix = RecordPrefix {
            hash: u64::from_le_bytes(word(0)?),
            local_hash: u64::from_le_bytes(word(8)?),
            deadline_us: i64::from_le_bytes(word(16)?),
            number: u64::from_le_bytes(word(24)?),
            flags: head[32],
            enrichment: head[33],
            confidence: head[34],
            country: [head[35], head[36]],
        };
        Some((prefix, body))
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn country_code(&self) -> Option<&str> {
        if self.country == [0, 0] {
            return None;
        }
        std::str::from_utf8(&self.country).ok()
    }
}

/// First byte of an `OBJECTS` value that only points at the identical object of the `all`
/// collection (`date_added` u64 LE follows). A high-confidence indicator is usually the very
/// same version as in `all`; storing it once halves the snapshot's size and write time.
/// Object ids are far shorter than 255 bytes, so the tag never starts a real value.
pub const REFERENCE_TAG: u8 = 0xff;

pub fn encode_reference(all_added: u64) -> [u8; 9] {
    let mut out = [REFERENCE_TAG; 9];
    out[1..].copy_from_slice(&all_added.to_le_bytes());
    out
}

/// The `all` collection `date_added` a reference value points at.
pub fn decode_reference(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [REFERENCE_TAG, rest @ ..] if rest.len() == 8 => {
            Some(u64::from_le_bytes(rest.try_into().ok()?))
        }
        _ => None,
    }
}

/// One published object in a collection: its STIX id, version and pre-serialised bytes.
/// Layout: `id_len u8, id, version_len u8, version, revoked u8, object JSON`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexValue<'a> {
    pub id: &'a str,
    /// The STIX `modified` (ms, `Z`), which is the TAXII version.
    pub version: &'a str,
    pub revoked: bool,
    pub object: &'a [u8],
}

impl<'a> IndexValue<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.id.len() + self.version.len() + self.object.len() + 3);
        out.push(self.id.len() as u8);
        out.extend_from_slice(self.id.as_bytes());
        out.push(self.version.len() as u8);
        out.extend_from_slice(self.version.as_bytes());
        out.push(u8::from(self.revoked));
        out.extend_from_slice(self.object);
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Option<IndexValue<'a>> {
        if bytes.first() == Some(&REFERENCE_TAG) {
            return None;
        }
        let (id, rest) = take_short(bytes)?;
        let (version, rest) = take_short(rest)?;
        let (&revoked, object) = rest.split_first()?;
        Some(IndexValue {
            id,
            version,
            revoked: revoked != 0,
            object,
        })
    }
}

fn take_short(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let len = usize::from(len);
    if rest.len() < len {
        return None;
    }
    let (text, rest) = rest.split_at(len);
    Some((std::str::from_utf8(text).ok()?, rest))
}

/// An enrichment value with the time it was fetched: `fetched_at µs i64 LE` then JSON.
/// The JSON part alone feeds the record fingerprint, so re-fetching an identical answer
/// does not create a new indicator version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamped<'a> {
    pub fetched_at: Timestamp,
    pub payload: &'a [u8],
}

impl<'a> Stamped<'a> {
    pub fn encode(fetched_at: Timestamp, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        out.extend_from_slice(&fetched_at.as_microsecond().to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Option<Stamped<'a>> {
        if bytes.len() < 8 {
            return None;
        }
        let (head, payload) = bytes.split_at(8);
        let micros = i64::from_le_bytes(head.try_into().ok()?);
        let fetched_at = Timestamp::from_microsecond(micros).ok()?;
        Some(Stamped {
            fetched_at,
            payload,
        })
    }
}

/// Key bytes of an IOC key, for the tables keyed by it.
pub fn key_bytes(key: IocKey) -> [u8; 16] {
    key.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trips() {
        let prefix = RecordPrefix {
            hash: 0xdead_beef_0102_0304,
            local_hash: 7,
            deadline_us: -5,
            number: 1 << 40,
            flags: flags::LOCAL | flags::GEO,
            enrichment: enrichment::CHECK,
            confidence: 85,
            country: *b"NL",
        };
        let mut bytes = Vec::new();
        prefix.encode(&mut bytes);
        bytes.extend_from_slice(b"{}");
        let (back, body) = RecordPrefix::split(&bytes).unwrap();
        assert_eq!(back, prefix);
        assert_eq!(body, b"{}");
        assert_eq!(back.country_code(), Some("NL"));
        assert!(RecordPrefix::split(b"short").is_none());
    }

    #[test]
    fn index_value_round_trips() {
        let value = IndexValue {
            id: "indicator--6f1d2c2e-0000-5000-8000-000000000000",
            version: "2026-12-03T10:00:00.000Z",
            revoked: true,
            object: br#"{"type":"indicator"}"#,
        };
        assert_eq!(IndexValue::decode(&value.encode()), Some(value));
        assert_eq!(IndexValue::decode(&[40, b'x']), None);
    }

    #[test]
    fn stamped_round_trips() {
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let bytes = Stamped::encode(at, b"null");
        let back = Stamped::decode(&bytes).unwrap();
        assert_eq!((back.fetched_at, back.payload), (at, &b"null"[..]));
    }
}
