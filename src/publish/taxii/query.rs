//! Parsing of the TAXII URL parameters (`limit`, `added_after`, `next`, `match[...]`) from
//! the raw query string. Done by hand because a duplicated parameter must be refused, which
//! a map-based extractor would hide by keeping one of the values.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A malformed query; always answered with 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("the parameter {0} is given more than once")]
    Repeated(String),
    #[error("limit must be a positive integer, got {0:?}")]
    Limit(String),
    #[error("added_after must be an RFC 3339 timestamp, got {0:?}")]
    AddedAfter(String),
    #[error("{param} has an empty value")]
    Empty { param: String },
    #[error("match[version] value {0:?} is not first, last, all or a timestamp")]
    Version(String),
    #[error("match[version]=all cannot be combined with other values")]
    VersionAll,
    #[error("the value {value:?} is repeated in {param}")]
    RepeatedValue { param: String, value: String },
    #[error("the query string is not valid percent-encoded UTF-8")]
    Encoding,
}

/// The `match[...]` filters, normalised (sorted, without duplicates) so equal filter sets
/// compare and serialise equally. An empty list means "no filter on that field".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Versions>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spec_versions: Vec<String>,
}

/// `match[version]`: keywords and exact `modified` instants (µs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    pub all: bool,
    pub first: bool,
    pub last: bool,
    pub at: Vec<i64>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// Whether an object passes. Each collection holds one version of each object, which
    /// is at once its first, last and only version.
    pub fn matches(&self, id: &str, version: &str) -> bool {
        let kind = id.split_once("--").map_or(id, |(kind, _)| kind);
        (self.ids.is_empty() || self.ids.iter().any(|i| i == id))
            && (self.types.is_empty() || self.types.iter().any(|t| t == kind))
            && self.versions.as_ref().is_none_or(|v| v.matches(version))
            && (self.spec_versions.is_empty() || self.spec_versions.iter().any(|s| s == "2.1"))
    }
}

impl Versions {
    fn matches(&self, version: &str) -> bool {
        if self.all || self.first || self.last {
            return true;
        }
        let at = version.parse::<Timestamp>().map(|t| t.as_microsecond());
        at.is_ok_and(|at| self.at.contains(&at))
    }
}

/// The parameters of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub limit: Option<u64>,
    /// `added_after` in µs since the epoch (negative instants read as 0).
    pub added_after: Option<u64>,
    pub next: Option<String>,
    pub filters: Filters,
}

impl Params {
    /// Parses a raw query string (without the `?`).
    ///
    /// # Errors
    /// [`QueryError`] for a malformed or repeated parameter.
    pub fn parse(raw: Option<&str>) -> Result<Params, QueryError> {
        let mut params = Params::default();
        let mut seen = BTreeSet::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            if !seen.insert(name.clone()) {
                return Err(QueryError::Repeated(name));
            }
            params.set(&name, value)?;
        }
        Ok(params)
    }

    fn set(&mut self, name: &str, value: String) -> Result<(), QueryError> {
        match name {
            "limit" => self.limit = Some(parse_limit(&value)?),
            "added_after" => self.added_after = Some(parse_added_after(&value)?),
            "next" => self.next = Some(non_empty(name, value)?),
            "match[id]" => self.filters.ids = list(name, &value)?,
            "match[type]" => self.filters.types = list(name, &value)?,
            "match[spec_version]" => self.filters.spec_versions = list(name, &value)?,
            "match[version]" => self.filters.versions = Some(parse_versions(&value)?),
            // Unknown parameters, `match[...]` fields included, are ignored (TAXII §3.4.1).
            _ => {}
        }
        Ok(())
    }
}

fn non_empty(name: &str, value: String) -> Result<String, QueryError> {
    if value.is_empty() {
        return Err(QueryError::Empty { param: name.into() });
    }
    Ok(value)
}

/// A positive integer; huge values are a valid request for "as many as allowed".
fn parse_limit(value: &str) -> Result<u64, QueryError> {
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    if !digits || value.bytes().all(|b| b == b'0') {
        return Err(QueryError::Limit(value.into()));
    }
    Ok(value.parse().unwrap_or(u64::MAX))
}

/// Lenient RFC 3339: 0–9 fraction digits, `Z` or a numeric offset. Sub-µs digits are
/// truncated, which keeps "strictly after" exact because `date_added` keys are whole µs.
pub fn parse_added_after(value: &str) -> Result<u64, QueryError> {
    let at: Timestamp = value
        .trim()
        .parse()
        .map_err(|_| QueryError::AddedAfter(value.into()))?;
    Ok(u64::try_from(at.as_microsecond()).unwrap_or(0))
}

/// A comma-separated OR list, sorted and checked for repeats.
fn list(name: &str, value: &str) -> Result<Vec<String>, QueryError> {
    let mut items = Vec::new();
    for item in value.split(',') {
        if item.is_empty() {
            return Err(QueryError::Empty { param: name.into() });
        }
        items.push(item.to_string());
    }
    items.sort();
    if let Some(pair) = items.windows(2).find(|w| w[0] == w[1]) {
        return Err(QueryError::RepeatedValue {
            param: name.into(),
            value: pair[0].clone(),
        });
    }
    Ok(items)
}

fn parse_versions(value: &str) -> Result<Versions, QueryError> {
    let items = list("match[version]", value)?;
    let mut versions = Versions::default();
    for item in &items {
        match item.as_str() {
            "all" => versions.all = true,
            "first" => versions.first = true,
            "last" => versions.last = true,
            text => {
                let at: Timestamp = text.parse().map_err(|_| QueryError::Version(text.into()))?;
                versions.at.push(at.as_microsecond());
            }
        }
    }
    if versions.all && items.len() > 1 {
        return Err(QueryError::VersionAll);
    }
    versions.at.sort_unstable();
    versions.at.dedup();
    Ok(versions)
}

/// Percent-decoding. `+` stays `+` (RFC 3986 queries), so an unencoded `+01:00` offset in
/// `added_after` still means an offset.
fn decode(text: &str) -> Result<String, QueryError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(QueryError::Encoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| QueryError::Encoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| QueryError::Encoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| QueryError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Params, QueryError> {
        Params::parse(Some(q))
    }

    #[test]
    fn limits() {
        assert_eq!(parse("limit=7").unwrap().limit, Some(7));
        assert_eq!(
            parse("limit=99999999999999999999999").unwrap().limit,
            Some(u64::MAX)
        );
        for bad in [
            "limit=0",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=1.5",
            "limit=00",
        ] {
            assert!(matches!(parse(bad), Err(QueryError::Limit(_))), "{bad}");
        }
    }

    #[test]
    fn added_after_is_lenient_but_not_sloppy() {
        let base = parse("added_after=2026-01-01T00:00:00Z").unwrap();
        let micros = base.added_after.unwrap();
        for same in [
            "added_after=2026-01-01T00:00:00.000000Z",
            "added_after=2026-01-01T01:00:00%2B01:00",
            "added_after=2026-01-01T01:00:00+01:00",
            "added_after=2026-01-01T00:00:00.000000000Z",
        ] {
            assert_eq!(parse(same).unwrap().added_after, Some(micros), "{same}");
        }
        let fine = parse("added_after=2026-01-01T00:00:00.1234567Z").unwrap();
        assert_eq!(fine.added_after, Some(micros + 123_456));
        assert!(matches!(
            parse("added_after=yesterday"),
            Err(QueryError::AddedAfter(_))
        ));
        assert!(matches!(
            parse("added_after=2026-01-01T00:00:00Z&added_after=2026-01-02T00:00:00Z"),
            Err(QueryError::Repeated(_))
        ));
    }

    #[test]
    fn match_filters() {
        let p = parse("match[type]=indicator,identity&match[version]=last&match[foo]=x").unwrap();
        assert_eq!(p.filters.types, vec!["identity", "indicator"]);
        assert!(
            p.filters
                .matches("indicator--1", "2026-01-01T00:00:00.000Z")
        );
        assert!(!p.filters.matches("marking-definition--1", "x"));
        assert_eq!(
            parse("match[version]=all,last"),
            Err(QueryError::VersionAll)
        );
        assert!(parse("match[version]=someday").is_err());
        assert!(parse("match[id]=a,a").is_err());
        assert!(parse("match[id]=a&match[id]=b").is_err());
        let at = parse("match[version]=2026-01-01T00:00:00.000Z").unwrap();
        assert!(
            at.filters
                .matches("indicator--1", "2026-01-01T00:00:00.000Z")
        );
        assert!(
            !at.filters
                .matches("indicator--1", "2026-01-01T00:00:00.001Z")
        );
        let spec = parse("match[spec_version]=2.0").unwrap();
        assert!(
            !spec
                .filters
                .matches("indicator--1", "2026-01-01T00:00:00.000Z")
        );
    }
}
