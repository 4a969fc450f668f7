//! The cleaning rules: one function that turns a [`RawRow`] into a [`LocalRow`] or a
//! [`SkipReason`], recording every repair it made.
//!
//! Rows in `reported_ips` are written by other tools and are dirty in real life. Each rule
//! below either skips the row (it names no usable address or time), or repairs one field and
//! keeps the row; both are counted by reason in the [`RowTally`], so one bad row never aborts
//! a cycle and nothing is lost silently.
//!
//! | column | input | rule | counted as |
//! | --- | --- | --- | --- |
//! | `ip_address` | NULL, empty or only whitespace | skip | `empty_address` |
//! | `ip_address` | longer than 100 characters | skip | `too_long` |
//! | `ip_address` | unparsable, control characters, IPv6 zone id (`fe80::1%eth0`), IPv4 octet with leading zero | skip | `invalid_address` |
//! | `ip_address` | CIDR wider than one host (`10.0.0.0/8`) | skip | `network` |
//! | `ip_address` | surrounding whitespace | trimmed | `trimmed` |
//! | `ip_address` | host CIDR (`a.b.c.d/32`, `x/128`) | the address | `host_cidr` |
//! | `ip_address` | IPv4-mapped IPv6 (`::ffff:a.b.c.d`) | the IPv4 address | `ipv4_mapped` |
//! | `ip_address` | IPv6 not in canonical form (upper case, zero padding) | canonical lower-case text | `ipv6_canonicalised` |
//! | `reported_at` | NULL (or unreadable) | skip | `missing_reported_at` |
//! | `reported_at` | after now | clamped to now | `reported_at_future` |
//! | `created_at` | NULL (or unreadable) | `reported_at` | `created_at_missing` |
//! | `confidence` | NULL | `DEFAULT_LOCAL_CONFIDENCE` (75) | `confidence_missing` |
//! | `confidence` | below 0 | 0 | `confidence_negative` |
//! | `confidence` | above 100 | 100 | `confidence_above_100` |
//! | `categories` | NULL or JSON `null` | no categories | `categories_missing` |
//! | `categories` | not JSON | no categories | `categories_unparsable` |
//! | `categories` | ids 1–23 as numbers, digit strings, `{"id": n}`, a bare scalar, `"18,22"` | kept, sorted, unique | — |
//! | `categories` | other text | kept as tag: lower case, trimmed, no control characters, ≤ 64 characters, ≤ 20 tags | — |
//! | `categories` | id outside 1–23, float, bool, null element, nested array, object without id, tags beyond 20 | element dropped | `category_dropped` (each) |
//! | `report_id` | control characters or longer than 255 characters | removed / cut at 255 characters | `report_id_truncated` |
//! | `report_id` | empty text | no report id | — |
//! | any | a value the database driver cannot decode | skip | `unreadable` |
//!
//! Non-public addresses (private, loopback, documentation, …) are kept: the team saw them
//! attack. They are only never sent upstream (see [`super::address::is_public`]).

use jiff::Timestamp;
use serde::Serialize;

use super::{LocalRow, RawRow, RowTally, address, categories};
use crate::ioc::LocalFacts;

/// Longest report id kept, in characters (the column is `varchar(255)`).
pub const MAX_REPORT_ID_CHARS: usize = 255;

/// Inputs of the rules that come from configuration and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Rows reported after this instant are clamped to it.
    pub now: Timestamp,
    /// Confidence used when the column is NULL.
    pub default_confidence: u8,
}

/// Why a row was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    EmptyAddress,
    InvalidAddress,
    TooLong,
    Network,
    MissingReportedAt,
    /// The database driver could not decode a column of the row.
    Unreadable,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::EmptyAddress => "empty_address",
            SkipReason::InvalidAddress => "invalid_address",
            SkipReason::TooLong => "too_long",
            SkipReason::Network => "network",
            SkipReason::MissingReportedAt => "missing_reported_at",
            SkipReason::Unreadable => "unreadable",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repair made to a row that was still used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    Trimmed,
    HostCidr,
    Ipv4Mapped,
    Ipv6Canonicalised,
    ConfidenceMissing,
    ConfidenceNegative,
    #[serde(rename = "confidence_above_100")]
    ConfidenceAbove100,
    CategoriesMissing,
    CategoriesUnparsable,
    CategoryDropped,
    ReportedAtFuture,
    CreatedAtMissing,
    ReportIdTruncated,
}

impl Repair {
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::Trimmed => "trimmed",
            Repair::HostCidr => "host_cidr",
            Repair::Ipv4Mapped => "ipv4_mapped",
            Repair::Ipv6Canonicalised => "ipv6_canonicalised",
            Repair::ConfidenceMissing => "confidence_missing",
            Repair::ConfidenceNegative => "confidence_negative",
            Repair::ConfidenceAbove100 => "confidence_above_100",
            Repair::CategoriesMissing => "categories_missing",
            Repair::CategoriesUnparsable => "categories_unparsable",
            Repair::CategoryDropped => "category_dropped",
            Repair::ReportedAtFuture => "reported_at_future",
            Repair::CreatedAtMissing => "created_at_missing",
            Repair::ReportIdTruncated => "report_id_truncated",
        }
    }
}

/// Cleans one row, counting what happened in `tally`: `read` always, then `accepted` and the
/// row's repairs, or exactly one skip (repairs of a skipped row are not counted).
pub fn clean_row(raw: RawRow, rules: &Rules, tally: &mut RowTally) -> Option<LocalRow> {
    tally.read += 1;
    match clean(raw, rules) {
        Ok((row, repairs)) => {
            tally.accepted += 1;
            repairs
                .into_iter()
                .for_each(|repair| tally.add_repair(repair));
            Some(row)
        }
        Err(reason) => {
            tally.add_skip(reason);
            None
        }
    }
}

/// Counts a row that could not even be decoded into a [`RawRow`].
pub fn count_unreadable(tally: &mut RowTally) {
    tally.read += 1;
    tally.add_skip(SkipReason::Unreadable);
}

fn clean(raw: RawRow, rules: &Rules) -> Result<(LocalRow, Vec<Repair>), SkipReason> {
    let text = raw.ip_address.as_deref().ok_or(SkipReason::EmptyAddress)?;
    let (addr, mut repairs) = address::normalise(text)?;
    let reported_at = raw.reported_at.ok_or(SkipReason::MissingReportedAt)?;

    let reported_at = clamp_reported_at(reported_at, rules.now, &mut repairs);
    let created_at = raw.created_at.unwrap_or_else(|| {
        repairs.push(Repair::CreatedAtMissing);
        reported_at
    });
    let confidence = clean_confidence(raw.confidence, rules.default_confidence, &mut repairs);
    let (categories, tags, category_repairs) = categories::parse(raw.categories.as_deref());
    repairs.extend(category_repairs);
    let report_id = raw
        .report_id
        .and_then(|id| clean_report_id(&id, &mut repairs));

    let facts = LocalFacts {
        confidence,
        categories,
        tags,
        report_id,
        reported_at,
        created_at,
    };
    let key = crate::ioc::IocKey::of(addr);
    Ok((LocalRow { addr, key, facts }, repairs))
}

fn clamp_reported_at(at: Timestamp, now: Timestamp, repairs: &mut Vec<Repair>) -> Timestamp {
    if at > now {
        repairs.push(Repair::ReportedAtFuture);
        return now;
    }
    at
}

fn clean_confidence(value: Option<i64>, default: u8, repairs: &mut Vec<Repair>) -> u8 {
    let (confidence, repair) = match value {
        None => (default, Some(Repair::ConfidenceMissing)),
        Some(v) if v < 0 => (0, Some(Repair::ConfidenceNegative)),
        Some(v) if v > 100 => (100, Some(Repair::ConfidenceAbove100)),
        Some(v) => (u8::try_from(v).unwrap_or(100), None),
    };
    repairs.extend(repair);
    confidence
}

/// Control characters removed, cut to [`MAX_REPORT_ID_CHARS`] characters; `None` when empty.
fn clean_report_id(id: &str, repairs: &mut Vec<Repair>) -> Option<String> {
    let cleaned: String = id
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REPORT_ID_CHARS)
        .collect();
    if cleaned != id {
        repairs.push(Repair::ReportIdTruncated);
    }
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-03-01T12:00:00Z";

    fn rules() -> Rules {
        Rules {
            now: NOW.parse().unwrap(),
            default_confidence: 75,
        }
    }

    fn raw(ip: &str) -> RawRow {
        RawRow {
            ip_address: Some(ip.into()),
            reported_at: Some("2026-02-01T00:00:00Z".parse().unwrap()),
            report_id: Some("r-1".into()),
            categories: Some("[18]".into()),
            confidence: Some(90),
            created_at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        }
    }

    /// Cleans one row and returns it with the repairs counted for it.
    fn run(row: RawRow) -> (Option<LocalRow>, RowTally) {
        let mut tally = RowTally::default();
        let clean = clean_row(row, &rules(), &mut tally);
        assert_eq!(tally.read, 1);
        assert_eq!(tally.accepted + tally.skipped_total(), 1);
        (clean, tally)
    }

    fn repaired(row: RawRow) -> (LocalRow, Vec<Repair>) {
        let (clean, tally) = run(row);
        let repairs = tally.repaired.keys().copied().collect();
        (clean.expect("row accepted"), repairs)
    }

    fn skipped(row: RawRow) -> SkipReason {
        let (clean, tally) = run(row);
        assert!(clean.is_none());
        *tally.skipped.keys().next().unwrap()
    }

    #[test]
    fn a_clean_row_passes_unchanged() {
        let (row, repairs) = repaired(raw("198.51.100.7"));
        assert!(repairs.is_empty());
        assert_eq!(row.addr.to_string(), "198.51.100.7");
        assert_eq!(row.facts.confidence, 90);
        assert_eq!(row.facts.categories, vec![18]);
        assert_eq!(row.facts.report_id.as_deref(), Some("r-1"));
        assert_eq!(
            row.facts.created_at,
            "2026-01-01T00:00:00Z".parse().unwrap()
        );
    }

    #[test]
    fn address_rules_skip_or_repair() {
        assert_eq!(
            skipped(RawRow {
                ip_address: None,
                ..raw("")
            }),
            SkipReason::EmptyAddress
        );
        assert_eq!(skipped(raw(" ")), SkipReason::EmptyAddress);
        assert_eq!(skipped(raw(&"9".repeat(101))), SkipReason::TooLong);
        assert_eq!(skipped(raw("fe80::1%eth0")), SkipReason::InvalidAddress);
        assert_eq!(skipped(raw("10.0.0.0/8")), SkipReason::Network);
        assert_eq!(repaired(raw(" 8.8.8.8 ")).1, vec![Repair::Trimmed]);
        assert_eq!(repaired(raw("8.8.8.8/32")).1, vec![Repair::HostCidr]);
        assert_eq!(repaired(raw("::ffff:8.8.8.8")).1, vec![Repair::Ipv4Mapped]);
        let (row, repairs) = repaired(raw("2001:DB8::1"));
        assert_eq!(
            (row.addr.to_string(), repairs),
            ("2001:db8::1".into(), vec![Repair::Ipv6Canonicalised])
        );
    }

    #[test]
    fn non_public_addresses_are_kept() {
        assert_eq!(repaired(raw("10.1.2.3")).0.addr.to_string(), "10.1.2.3");
    }

    #[test]
    fn reported_at_is_required_and_clamped() {
        let missing = RawRow {
            reported_at: None,
            ..raw("8.8.8.8")
        };
        assert_eq!(skipped(missing), SkipReason::MissingReportedAt);

        let future = RawRow {
            reported_at: Some("2030-01-01T00:00:00Z".parse().unwrap()),
            ..raw("8.8.8.8")
        };
        let (row, repairs) = repaired(future);
        assert_eq!(row.facts.reported_at, rules().now);
        assert_eq!(repairs, vec![Repair::ReportedAtFuture]);
    }

    #[test]
    fn created_at_defaults_to_reported_at() {
        let row = RawRow {
            created_at: None,
            ..raw("8.8.8.8")
        };
        let (row, repairs) = repaired(row);
        assert_eq!(row.facts.created_at, row.facts.reported_at);
        assert_eq!(repairs, vec![Repair::CreatedAtMissing]);
    }

    #[test]
    fn confidence_is_defaulted_and_clamped() {
        let cases = [
            (None, 75, Some(Repair::ConfidenceMissing)),
            (Some(-5), 0, Some(Repair::ConfidenceNegative)),
            (Some(250), 100, Some(Repair::ConfidenceAbove100)),
            (Some(i64::MAX), 100, Some(Repair::ConfidenceAbove100)),
            (Some(0), 0, None),
            (Some(100), 100, None),
        ];
        for (input, expected, repair) in cases {
            let (row, repairs) = repaired(RawRow {
                confidence: input,
                ..raw("8.8.8.8")
            });
            assert_eq!(row.facts.confidence, expected, "{input:?}");
            assert_eq!(repairs, Vec::from_iter(repair), "{input:?}");
        }
    }

    #[test]
    fn categories_follow_their_module() {
        let (row, repairs) = repaired(RawRow {
            categories: None,
            ..raw("8.8.8.8")
        });
        assert!(row.facts.categories.is_empty());
        assert_eq!(repairs, vec![Repair::CategoriesMissing]);

        let bad_json = RawRow {
            categories: Some("{oops".into()),
            ..raw("8.8.8.8")
        };
        assert_eq!(repaired(bad_json).1, vec![Repair::CategoriesUnparsable]);

        let mixed = RawRow {
            categories: Some(r#"["SSH", 4, 99, 99]"#.into()),
            ..raw("8.8.8.8")
        };
        let (row, _) = repaired(mixed.clone());
        assert_eq!(
            (row.facts.categories, row.facts.tags),
            (vec![4], vec!["ssh".to_string()])
        );
        let (_, tally) = run(mixed);
        assert_eq!(tally.repaired.get(&Repair::CategoryDropped), Some(&2));
    }

    #[test]
    fn report_ids_are_cleaned_and_cut() {
        let long = RawRow {
            report_id: Some("é".repeat(300)),
            ..raw("8.8.8.8")
        };
        let (row, repairs) = repaired(long);
        assert_eq!(row.facts.report_id, Some("é".repeat(MAX_REPORT_ID_CHARS)));
        assert_eq!(repairs, vec![Repair::ReportIdTruncated]);

        let control = RawRow {
            report_id: Some("ab\u{0}c\n".into()),
            ..raw("8.8.8.8")
        };
        let (row, repairs) = repaired(control);
        assert_eq!(row.facts.report_id.as_deref(), Some("abc"));
        assert_eq!(repairs, vec![Repair::ReportIdTruncated]);

        let empty = RawRow {
            report_id: Some(String::new()),
            ..raw("8.8.8.8")
        };
        assert_eq!(repaired(empty).0.facts.report_id, None);
    }

    #[test]
    fn repairs_of_skipped_rows_are_not_counted() {
        let row = RawRow {
            confidence: None,
            reported_at: None,
            ..raw(" 8.8.8.8 ")
        };
        let (_, tally) = run(row);
        assert!(tally.repaired.is_empty());
    }

    #[test]
    fn tallies_add_up_over_many_rows() {
        let mut tally = RowTally::default();
        for ip in ["8.8.8.8", "bad", "1.1.1.1/24", " 9.9.9.9"] {
            clean_row(raw(ip), &rules(), &mut tally);
        }
        count_unreadable(&mut tally);
        assert_eq!(
            (tally.read, tally.accepted, tally.skipped_total()),
            (5, 2, 3)
        );
        assert_eq!(
            tally.skipped_summary(),
            "invalid_address=1 network=1 unreadable=1"
        );
        assert_eq!(tally.repaired_summary(), "trimmed=1");
    }

    #[test]
    fn names_are_snake_case_in_json_too() {
        let json = serde_json::to_string(&[Repair::ConfidenceAbove100, Repair::Ipv6Canonicalised])
            .unwrap();
        assert_eq!(json, r#"["confidence_above_100","ipv6_canonicalised"]"#);
        assert_eq!(
            serde_json::to_string(&SkipReason::MissingReportedAt).unwrap(),
            r#""missing_reported_at""#
        );
    }
}
