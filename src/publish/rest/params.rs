//! Query parameters of the REST listing and export endpoints: parsing and validation into
//! typed filters. The CLI `export` command feeds its flags through the same parser, so both
//! accept exactly the same values and report the same messages.

use jiff::Timestamp;

use crate::ioc::{Collection, Sources};
use crate::publish::api_error::ApiError;

/// Default and largest page of `GET /api/v1/indicators`.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// Which address family an export keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    V4,
    V6,
    #[default]
    Both,
}

impl Family {
    pub fn keeps(self, addr: std::net::IpAddr) -> bool {
        match self {
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
            Family::Both => true,
        }
    }
}

/// `source=`: `local` and `abuseipdb` keep addresses that source reported (alone or with the
/// other); `both` keeps addresses both reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFilter {
    Local,
    Abuseipdb,
    Both,
}

impl SourceFilter {
    pub fn keeps(self, sources: Sources) -> bool {
        match self {
            SourceFilter::Local => sources != Sources::Abuseipdb,
            SourceFilter::Abuseipdb => sources != Sources::Local,
            SourceFilter::Both => sources == Sources::Both,
        }
    }
}

/// Which records a listing or export keeps. Every field narrows; the default keeps every
/// active indicator of the `all` collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// `None` is the `all` collection.
    pub collection: Option<Collection>,
    pub min_confidence: u8,
    pub family: Family,
    pub source: Option<SourceFilter>,
    /// Upper-case ISO letters.
    pub country: Option<String>,
    /// Keeps records modified strictly after this instant.
    pub since: Option<Timestamp>,
    /// Keeps records with AbuseIPDB facts.
    pub enriched: bool,
}

impl Selection {
    pub fn collection(&self) -> Collection {
        self.collection.unwrap_or(Collection::All)
    }
}

/// A page request of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub selection: Selection,
    pub after: Option<u64>,
    pub limit: usize,
}

/// Options of the firewall feeds on top of the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedOptions {
    pub aggregate: bool,
    pub max_entries: Option<usize>,
}

const LISTING_KEYS: &[&str] = &[
    "min_confidence",
    "source",
    "country",
    "since",
    "limit",
    "cursor",
    "collection",
    "family",
];
const EXPORT_KEYS: &[&str] = &["min_confidence", "collection", "family"];
const FEED_KEYS: &[&str] = &[
    "min_confidence",
    "collection",
    "family",
    "aggregate",
    "max_entries",
];

/// Parses the parameters of `GET /api/v1/indicators`.
///
/// # Errors
/// A 400 [`ApiError`] naming the parameter and the value it refused.
pub fn page(pairs: &[(String, String)]) -> Result<Page, ApiError> {
    only(pairs, LISTING_KEYS)?;
    let mut page = Page {
        selection: selection(pairs)?,
        after: None,
        limit: DEFAULT_LIMIT,
    };
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => page.limit = number(key, value, 1, MAX_LIMIT as u64)? as usize,
            "cursor" => page.after = Some(parse_cursor(value)?),
            _ => {}
        }
    }
    Ok(page)
}

/// Parses the parameters of the data exports (`/stix`, `/json`, `/csv`, `/plain`).
///
/// # Errors
/// A 400 [`ApiError`] naming the parameter and the value it refused.
pub fn export(pairs: &[(String, String)]) -> Result<Selection, ApiError> {
    only(pairs, EXPORT_KEYS)?;
    selection(pairs)
}

/// Parses the parameters of the firewall feeds.
///
/// # Errors
/// A 400 [`ApiError`] naming the parameter and the value it refused.
pub fn feed(pairs: &[(String, String)]) -> Result<(Selection, FeedOptions), ApiError> {
    only(pairs, FEED_KEYS)?;
    let mut options = FeedOptions::default();
    for (key, value) in pairs {
        match key.as_str() {
            "aggregate" => options.aggregate = boolean(key, value)?,
            "max_entries" => options.max_entries = Some(number(key, value, 1, u64::MAX)? as usize),
            _ => {}
        }
    }
    Ok((selection(pairs)?, options))
}

/// The filters every endpoint shares; parameters it does not know are left to the caller.
fn selection(pairs: &[(String, String)]) -> Result<Selection, ApiError> {
    let mut selection = Selection::default();
    for (key, value) in pairs {
        match key.as_str() {
            "min_confidence" => selection.min_confidence = number(key, value, 0, 100)? as u8,
            "source" => selection.source = Some(source(value)?),
            "country" => selection.country = Some(country(value)?),
            "since" => selection.since = Some(since(value)?),
            "collection" => selection.collection = Some(collection(value)?),
            "family" => selection.family = family(value)?,
            _ => {}
        }
    }
    Ok(selection)
}

/// Unknown parameters are refused: a misspelt filter would otherwise silently widen a
/// blocklist.
fn only(pairs: &[(String, String)], known: &[&str]) -> Result<(), ApiError> {
    match pairs.iter().find(|(key, _)| !known.contains(&key.as_str())) {
        None => Ok(()),
        Some((key, _)) => Err(ApiError::bad_request(format!(
            "unknown parameter {key:?}; this endpoint accepts {}",
            known.join(", ")
        ))),
    }
}

fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{key} must be a whole number from {min} to {max}, not {value:?}"
            ))
        })
}

fn boolean(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{key} must be true or false, not {value:?}"
        ))),
    }
}

fn source(value: &str) -> Result<SourceFilter, ApiError> {
    match value {
        "local" => Ok(SourceFilter::Local),
        "abuseipdb" => Ok(SourceFilter::Abuseipdb),
        "both" => Ok(SourceFilter::Both),
        _ => Err(ApiError::bad_request(format!(
            "source must be local, abuseipdb or both, not {value:?}"
        ))),
    }
}

fn country(value: &str) -> Result<String, ApiError> {
    if value.len() == 2 && value.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(value.to_ascii_uppercase());
    }
    Err(ApiError::bad_request(format!(
        "country must be a two-letter ISO code, not {value:?}"
    )))
}

fn since(value: &str) -> Result<Timestamp, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "since must be an RFC 3339 timestamp such as 2026-12-01T00:00:00Z, not {value:?}"
        ))
    })
}

fn collection(value: &str) -> Result<Collection, ApiError> {
    match value {
        "all" => Ok(Collection::All),
        "high" => Ok(Collection::High),
        other => Collection::find(other).ok_or_else(|| {
            ApiError::bad_request(format!(
                "collection must be all, high, {} or {}, not {value:?}",
                Collection::All.alias(),
                Collection::High.alias()
            ))
        }),
    }
}

fn family(value: &str) -> Result<Family, ApiError> {
    match value {
        "v4" | "ipv4" => Ok(Family::V4),
        "v6" | "ipv6" => Ok(Family::V6),
        "both" => Ok(Family::Both),
        _ => Err(ApiError::bad_request(format!(
            "family must be v4, v6 or both, not {value:?}"
        ))),
    }
}

/// The opaque cursor: 16 hex digits of the last record number of the previous page.
pub fn cursor(number: u64) -> String {
    format!("{number:016x}")
}

fn parse_cursor(value: &str) -> Result<u64, ApiError> {
    let invalid = || ApiError::bad_request(format!("cursor {value:?} is not a cursor of this API"));
    if value.len() != 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    u64::from_str_radix(value, 16).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let page = page(&pairs(&[("cursor", &cursor(0x1234))])).unwrap();
        assert_eq!(page.after, Some(0x1234));
        assert_eq!(cursor(0x1234), "0000000000001234");
        assert!(super::page(&pairs(&[("cursor", "zz")])).is_err());
        assert!(super::page(&pairs(&[("cursor", &"g".repeat(16))])).is_err());
        assert!(super::page(&pairs(&[("cursor", "+000000000001234")])).is_err());
    }

    #[test]
    fn values_are_validated() {
        let page = page(&pairs(&[("country", "nl"), ("min_confidence", "80")])).unwrap();
        assert_eq!(page.selection.country.as_deref(), Some("NL"));
        assert_eq!(page.selection.min_confidence, 80);
        for bad in [
            ("min_confidence", "101"),
            ("limit", "0"),
            ("limit", "1001"),
            ("source", "x"),
            ("country", "NLD"),
            ("since", "yesterday"),
            ("bogus", "1"),
        ] {
            assert!(super::page(&pairs(&[bad])).is_err(), "{bad:?}");
        }
        let (selection, options) = feed(&pairs(&[
            ("collection", "high-confidence-iocs"),
            ("aggregate", "true"),
        ]))
        .unwrap();
        assert_eq!(selection.collection, Some(Collection::High));
        assert!(options.aggregate);
        assert!(export(&pairs(&[("aggregate", "true")])).is_err());
    }
}
