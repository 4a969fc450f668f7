//! The binary layout of a stored record (the bytes after the prefix in `RECORDS`).
//!
//! A record was JSON until format 2; the binary form is about a third of the size and needs
//! no field names or number parsing, which matters when a first cycle writes a million of
//! them. The layout is positional and little-endian:
//!
//! ```text
//! key [16] · address (4 | 6, then 4 or 16 bytes) · confidence u8 · first_seen · last_seen
//! local?    confidence u8 · categories (u8 count, ids) · tags (u16 count, strings)
//!           · report_id str? · reported_at · created_at
//! external? score u8 · on_blacklist u8 · country_code str? · isp str? · usage_type str?
//!           · domain str? · total_reports u32? · last_reported_at time?
//! location? latitude f64 · longitude f64 · country_code str? · country_name str? · city str?
//!           · region str? · asn u32? · isp str? · provider str
//! episode u32 · created · modified · spellings u32
//! entries   u8 count, each: collection u8 · episode u32 · date_added u64 · modified · revoked u8
//! ```
//!
//! `x?` is a presence byte (0 or 1) then `x`; a string is a u32 length then UTF-8 bytes; a
//! time is i64 seconds then i32 nanoseconds (as jiff splits it), so every timestamp round-trips exactly (the
//! rendered objects of a record must not change just because it was stored and read back).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use jiff::Timestamp;

use super::record::{Entry, StoredRecord};
use crate::ioc::{Collection, ExternalFacts, IocFacts, IocKey, LocalFacts, Location};

/// Appends the binary form of `record` (whose key is `key`) to `out`.
pub fn encode(key: IocKey, record: &StoredRecord, out: &mut Vec<u8>) {
    let mut w = Out(out);
    w.0.extend_from_slice(&key.0);
    facts(&mut w, &record.facts);
    w.u32(record.episode);
    w.time(record.created);
    w.time(record.modified);
    w.u32(record.spellings);
    let count = u8::try_from(record.entries.len()).expect("a record holds at most 4 entries");
    w.u8(count);
    for entry in &record.entries {
        w.u8(entry.collection.code());
        w.u32(entry.episode);
        w.u64(entry.date_added_us);
        w.time(entry.modified);
        w.u8(u8::from(entry.revoked));
    }
}

/// Decodes a record written by [`encode`]; `None` for damaged bytes.
pub fn decode(bytes: &[u8]) -> Option<(IocKey, StoredRecord)> {
    let mut r = In(bytes);
    let key = IocKey(r.take(16)?.try_into().ok()?);
    let facts = read_facts(&mut r)?;
    let episode = r.u32()?;
    let created = r.time()?;
    let modified = r.time()?;
    let spellings = r.u32()?;
    let count = r.u8()?;
    let mut entries = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        entries.push(Entry {
            collection: Collection::from_code(r.u8()?)?,
            episode: r.u32()?,
            date_added_us: r.u64()?,
            modified: r.time()?,
            revoked: r.u8()? != 0,
        });
    }
    let record = StoredRecord {
        facts,
        episode,
        created,
        modified,
        spellings,
        entries,
    };
    Some((key, record))
}

fn facts(w: &mut Out<'_>, f: &IocFacts) {
    match f.addr {
        IpAddr::V4(v4) => {
            w.u8(4);
            w.0.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            w.u8(6);
            w.0.extend_from_slice(&v6.octets());
        }
    }
    w.u8(f.confidence);
    w.time(f.first_seen);
    w.time(f.last_seen);
    w.option(f.local.as_ref(), local);
    w.option(f.external.as_ref(), external);
    w.option(f.location.as_ref(), location);
}

fn local(w: &mut Out<'_>, l: &LocalFacts) {
    w.u8(l.confidence);
    // Category ids are 1–23 after cleaning, so the count always fits.
    w.u8(u8::try_from(l.categories.len()).unwrap_or(u8::MAX));
    w.0.extend_from_slice(&l.categories[..l.categories.len().min(255)]);
    let tags = l.tags.len().min(usize::from(u16::MAX));
    w.0.extend_from_slice(&(tags as u16).to_le_bytes());
    for tag in &l.tags[..tags] {
        w.str(tag);
    }
    w.option(l.report_id.as_ref(), |w, id| w.str(id));
    w.time(l.reported_at);
    w.time(l.created_at);
}

fn external(w: &mut Out<'_>, e: &ExternalFacts) {
    w.u8(e.score);
    w.u8(u8::from(e.on_blacklist));
    for text in [&e.country_code, &e.isp, &e.usage_type, &e.domain] {
        w.option(text.as_ref(), |w, s| w.str(s));
    }
    w.option(e.total_reports.as_ref(), |w, n| w.u32(*n));
    w.option(e.last_reported_at.as_ref(), |w, t| w.time(*t));
}

fn location(w: &mut Out<'_>, l: &Location) {
    w.0.extend_from_slice(&l.latitude.to_le_bytes());
    w.0.extend_from_slice(&l.longitude.to_le_bytes());
    for text in [&l.country_code, &l.country_name, &l.city, &l.region] {
        w.option(text.as_ref(), |w, s| w.str(s));
    }
    w.option(l.asn.as_ref(), |w, n| w.u32(*n));
    w.option(l.isp.as_ref(), |w, s| w.str(s));
    w.str(&l.provider);
}

fn read_facts(r: &mut In<'_>) -> Option<IocFacts> {
    let addr = match r.u8()? {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(r.take(4)?).ok()?)),
        6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(r.take(16)?).ok()?)),
        _ => return None,
    };
    Some(IocFacts {
        addr,
        confidence: r.u8()?,
        first_seen: r.time()?,
        last_seen: r.time()?,
        local: r.option(read_local)?,
        external: r.option(read_external)?,
        location: r.option(read_location)?,
    })
}

fn read_local(r: &mut In<'_>) -> Option<LocalFacts> {
    let confidence = r.u8()?;
    let count = usize::from(r.u8()?);
    let categories = r.take(count)?.to_vec();
    let tags = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
    let tags = (0..tags).map(|_| r.string()).collect::<Option<Vec<_>>>()?;
    Some(LocalFacts {
        confidence,
        categories,
        tags,
        report_id: r.option(In::string)?,
        reported_at: r.time()?,
        created_at: r.time()?,
    })
}

fn read_external(r: &mut In<'_>) -> Option<ExternalFacts> {
    Some(ExternalFacts {
        score: r.u8()?,
        on_blacklist: r.u8()? != 0,
        country_code: r.option(In::string)?,
        isp: r.option(In::string)?,
        usage_type: r.option(In::string)?,
        domain: r.option(In::string)?,
        total_reports: r.option(In::u32)?,
        last_reported_at: r.option(In::time)?,
    })
}

fn read_location(r: &mut In<'_>) -> Option<Location> {
    Some(Location {
        latitude: f64::from_le_bytes(r.take(8)?.try_into().ok()?),
        longitude: f64::from_le_bytes(r.take(8)?.try_into().ok()?),
        country_code: r.option(In::string)?,
        country_name: r.option(In::string)?,
        city: r.option(In::string)?,
        region: r.option(In::string)?,
        asn: r.option(In::u32)?,
        isp: r.option(In::string)?,
        provider: r.string()?,
    })
}

struct Out<'a>(&'a mut Vec<u8>);

impl Out<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn time(&mut self, t: Timestamp) {
        self.0.extend_from_slice(&t.as_second().to_le_bytes());
        self.0
            .extend_from_slice(&t.subsec_nanosecond().to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(s.as_bytes());
    }

    fn option<T: ?Sized>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match value {
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
            None => self.u8(0),
        }
    }
}

struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn time(&mut self) -> Option<Timestamp> {
        let seconds = i64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let nanos = i32::from_le_bytes(self.take(4)?.try_into().ok()?);
        Timestamp::new(seconds, nanos).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.u32()?).ok()?;
        Some(std::str::from_utf8(self.take(len)?).ok()?.to_string())
    }

    /// A presence byte then, when 1, a value; the outer `None` means damaged bytes.
    fn option<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            1 => read(self).map(Some),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn full_record() -> StoredRecord {
        StoredRecord {
            facts: IocFacts {
                addr: "2001:db8::7".parse().unwrap(),
                local: Some(LocalFacts {
                    confidence: 90,
                    categories: vec![14, 18, 22],
                    tags: vec!["ssh".into(), "brute force ✓".into()],
                    report_id: Some("r-1".into()),
                    reported_at: at("2026-12-01T10:00:00.123456789Z"),
                    created_at: at("2026-11-30T00:00:00Z"),
                }),
                external: Some(ExternalFacts {
                    score: 77,
                    on_blacklist: true,
                    country_code: Some("NL".into()),
                    isp: None,
                    usage_type: Some("Data Center".into()),
                    domain: Some("example.net".into()),
                    total_reports: Some(12),
                    last_reported_at: Some(at("1969-12-31T23:59:59.5Z")),
                }),
                location: Some(Location {
                    latitude: 52.37,
                    longitude: -4.89,
                    country_code: Some("NL".into()),
                    country_name: Some("Netherlands".into()),
                    city: None,
                    region: Some("North Holland".into()),
                    asn: Some(64_500),
                    isp: Some("Example BV".into()),
                    provider: "ipapi".into(),
                }),
                confidence: 88,
                first_seen: at("2026-11-30T00:00:00Z"),
                last_seen: at("2026-12-01T10:00:00.123Z"),
            },
            episode: 2,
            created: at("2026-12-01T10:00:00.123Z"),
            modified: at("2026-12-02T10:00:00.124Z"),
            spellings: 3,
            entries: vec![
                Entry {
                    collection: Collection::All,
                    episode: 2,
                    date_added_us: 1_700_000_000_000_001,
                    modified: at("2026-12-02T10:00:00.124Z"),
                    revoked: false,
                },
                Entry {
                    collection: Collection::High,
                    episode: 1,
                    date_added_us: u64::MAX,
                    modified: at("2026-12-01T09:00:00Z"),
                    revoked: true,
                },
            ],
        }
    }

    #[test]
    fn every_field_round_trips_exactly() {
        let record = full_record();
        let key = IocKey::of(record.facts.addr);
        let mut bytes = Vec::new();
        encode(key, &record, &mut bytes);
        assert_eq!(decode(&bytes), Some((key, record)));
    }

    #[test]
    fn a_bare_external_record_round_trips_and_is_small() {
        let mut record = full_record();
        record.facts.addr = "192.0.2.1".parse().unwrap();
        record.facts.local = None;
        record.facts.location = None;
        record.entries.truncate(1);
        let key = IocKey::of(record.facts.addr);
        let mut bytes = Vec::new();
        encode(key, &record, &mut bytes);
        assert!(bytes.len() < 200, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes), Some((key, record)));
    }

    #[test]
    fn damaged_bytes_decode_to_none() {
        let record = full_record();
        let mut bytes = Vec::new();
        encode(IocKey::of(record.facts.addr), &record, &mut bytes);
        for cut in [0, 16, 17, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        bytes[16] = 5;
        assert_eq!(decode(&bytes), None);
    }
}
