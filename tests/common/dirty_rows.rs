//! A corpus of dirty `reported_ips` rows, each with the outcome the cleaning rules promise:
//! the canonical address it is published as, or the reason it is skipped. Rows fit the
//! PostgreSQL column limits (`varchar(45)`, `varchar(255)`, valid `jsonb`) unless listed
//! in [`embedded_only`], which only the untyped SQLite columns can hold.

use std::collections::BTreeSet;

use super::app::TestApp;

#[derive(Debug, Clone)]
pub enum Expect {
    /// Published under this canonical address text.
    Accepted(&'static str),
    /// Skipped and counted under this reason.
    Skipped(&'static str),
    /// Accepted, but last reported so long ago that its validity ended: never published.
    Expired(&'static str),
}

#[derive(Debug, Clone)]
pub struct Dirty {
    pub ip: Option<String>,
    /// RFC 3339, `infinity` or `-infinity` (PostgreSQL); `None` only in the embedded source.
    pub reported_at: Option<String>,
    pub report_id: Option<String>,
    /// Text stored in `categories` (JSON for PostgreSQL).
    pub categories: Option<String>,
    pub confidence: Option<i64>,
    pub expect: Expect,
}

fn row(ip: &str, expect: Expect) -> Dirty {
    Dirty {
        ip: Some(ip.to_string()),
        reported_at: Some("2026-11-30T10:00:00Z".into()),
        report_id: None,
        categories: Some("[18, 22]".into()),
        confidence: Some(90),
        expect,
    }
}

fn nested(depth: usize) -> String {
    format!("{}4{}", "[".repeat(depth), "]".repeat(depth))
}

fn huge_array() -> String {
    let items: Vec<String> = (0..5000)
        .map(|i| match i % 4 {
            0 => (i % 30).to_string(),
            1 => format!("\"tag {i}\""),
            2 => format!("{{\"id\": {}}}", i % 25),
            _ => "null".into(),
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Rows both sources can hold.
pub fn corpus() -> Vec<Dirty> {
    use Expect::{Accepted as A, Skipped as S};
    let mut rows = vec![
        row("45.1.1.1", A("45.1.1.1")),
        row(" 45.1.1.1 ", A("45.1.1.1")),
        row("45.1.1.1/32", A("45.1.1.1")),
        row("::ffff:45.1.1.1", A("45.1.1.1")),
        row("::FFFF:45.1.1.1/128", A("45.1.1.1")),
        row("\t45.1.1.2\r\n", A("45.1.1.2")),
        row("2001:DB8:0:0:0:0:0:1", A("2001:db8::1")),
        row("2001:db8::1", A("2001:db8::1")),
        row("2001:0db8:0000:0000:0000:0000:0000:0001", A("2001:db8::1")),
        row("2A00:1450:4001:0:0:0:0:200E", A("2a00:1450:4001::200e")),
        row("10.20.30.40", A("10.20.30.40")),
        row("0.0.0.0", A("0.0.0.0")),
        row("255.255.255.255", A("255.255.255.255")),
        row(&"x".repeat(45), S("invalid_address")),
        row("45.1\u{7}.1.3", S("invalid_address")),
        row("1' OR '1'='1", S("invalid_address")),
        row(
            "45.1.1.4'; DROP TABLE reported_ips;--",
            S("invalid_address"),
        ),
        row(
            "\u{664}\u{665}.\u{661}.\u{661}.\u{665}",
            S("invalid_address"),
        ),
        row(
            "\u{ff14}\u{ff15}.\u{ff11}.\u{ff11}.\u{ff16}",
            S("invalid_address"),
        ),
        row("45.1.1.\u{0967}", S("invalid_address")),
        row("NaN", S("invalid_address")),
        row("Infinity", S("invalid_address")),
        row("-1", S("invalid_address")),
        row("1e10", S("invalid_address")),
        row("045.001.001.007", S("invalid_address")),
        row("45.1.1", S("invalid_address")),
        row("45.1.1.256", S("invalid_address")),
        row("fe80::1%eth0", S("invalid_address")),
        row("45.1.1.9/33", S("invalid_address")),
        row("45.1.1.9/abc", S("invalid_address")),
        row("10.0.0.0/8", S("network")),
        row("2001:db8::/32", S("network")),
        row("", S("empty_address")),
        row("   ", S("empty_address")),
        row("\u{a0}45.1.1.10\u{3000}", A("45.1.1.10")),
        row("<script>alert(1)</script>", S("invalid_address")),
        row("${jndi:ldap://x/a}", S("invalid_address")),
    ];
    // Odd but usable values in the other columns.
    let odd = [
        (
            "45.2.0.1",
            Some("infinity"),
            None,
            Some(nested(200)),
            Some(-5),
        ),
        (
            "45.2.0.2",
            Some("-infinity"),
            None,
            Some(huge_array()),
            Some(1000),
        ),
        (
            "45.2.0.3",
            None,
            Some("r".repeat(255)),
            Some("\"NaN\"".into()),
            None,
        ),
        (
            "45.2.0.4",
            None,
            Some("id\u{1}\u{7f}with\ncontrols".into()),
            Some("{\"id\": \"NaN\"}".into()),
            Some(i64::from(i32::MAX)),
        ),
        (
            "45.2.0.5",
            None,
            Some("'; DELETE FROM reported_ips; --".into()),
            Some("[1e300, -0, 23.0, \"4,15\", true, {}]".into()),
            Some(i64::from(i32::MIN)),
        ),
        ("45.2.0.6", None, None, Some("null".into()), Some(0)),
        (
            "45.2.0.7",
            None,
            Some(String::new()),
            Some("{\"id\": {\"id\": {\"id\": 4}}}".into()),
            Some(100),
        ),
        (
            "45.2.0.8",
            None,
            None,
            Some(format!("[\"{}\"]", "\u{202e}evil\u{200b}".repeat(40))),
            Some(50),
        ),
    ];
    for (ip, at, report_id, categories, confidence) in odd {
        let expect = if at == Some("-infinity") {
            Expect::Expired(ip)
        } else {
            Expect::Accepted(ip)
        };
        let mut r = row(ip, expect);
        if let Some(at) = at {
            r.reported_at = Some(at.into());
        }
        r.report_id = report_id;
        r.categories = categories;
        r.confidence = confidence;
        rows.push(r);
    }
    rows
}

/// Rows only the embedded (untyped) source can hold.
pub fn embedded_only() -> Vec<Dirty> {
    use Expect::{Accepted as A, Skipped as S};
    let mut long = row(&"1".repeat(10_000), S("too_long"));
    long.report_id = Some("r".repeat(100_000));
    let mut bad_time = row("45.3.0.2", S("missing_reported_at"));
    bad_time.reported_at = Some("yesterday".into());
    let mut not_json = row("45.3.0.3", A("45.3.0.3"));
    not_json.categories = Some("{{{{ not json".into());
    let mut long_report = row("45.3.0.4", A("45.3.0.4"));
    long_report.report_id = Some("é".repeat(10_000));
    let mut deep = row("45.3.0.5", A("45.3.0.5"));
    deep.categories = Some(nested(100_000));
    let nul = row("45.3.0.6\u{0}", S("invalid_address"));
    let null_ip = Dirty {
        ip: None,
        ..row("", S("empty_address"))
    };
    vec![long, bad_time, not_json, long_report, deep, nul, null_ip]
}

/// The canonical addresses a cycle must publish for `rows`.
pub fn expected_addresses(rows: &[Dirty]) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|r| match r.expect {
            Expect::Accepted(a) => Some(a.to_string()),
            Expect::Skipped(_) | Expect::Expired(_) => None,
        })
        .collect()
}

/// Skips by reason that `rows` must produce.
pub fn expected_skips(rows: &[Dirty]) -> std::collections::BTreeMap<String, u64> {
    let mut skips = std::collections::BTreeMap::new();
    for r in rows {
        if let Expect::Skipped(reason) = r.expect {
            *skips.entry(reason.to_string()).or_default() += 1;
        }
    }
    skips
}

/// The address in a published indicator's pattern.
pub fn pattern_address(object: &serde_json::Value) -> String {
    let pattern = object["pattern"].as_str().unwrap();
    let start = pattern.find('\'').unwrap() + 1;
    let end = pattern.rfind('\'').unwrap();
    pattern[start..end].to_string()
}

/// Every row read is accepted or skipped for its expected reason; the published
/// indicators are exactly the distinct valid addresses.
pub fn check_corpus(app: &TestApp, corpus: &[Dirty], summary: &abuseipdb_ioc::store::CycleSummary) {
    let skipped: u64 = summary.skipped.values().sum();
    assert_eq!(summary.rows_read, corpus.len() as u64);
    assert_eq!(
        summary.rows_accepted + skipped,
        summary.rows_read,
        "{summary:?}"
    );
    let accepted = corpus
        .iter()
        .filter(|r| matches!(r.expect, Expect::Accepted(_) | Expect::Expired(_)))
        .count() as u64;
    assert_eq!(summary.rows_accepted, accepted, "{summary:?}");
    assert_eq!(summary.skipped, expected_skips(corpus));
    let published: std::collections::BTreeSet<String> = app
        .indicators(abuseipdb_ioc::ioc::Collection::All)
        .iter()
        .map(pattern_address)
        .collect();
    assert_eq!(published, expected_addresses(corpus));
    assert_eq!(summary.indicators, published.len() as u64);
    println!(
        "read {} accepted {} skipped {:?} repaired {:?} published {}",
        summary.rows_read,
        summary.rows_accepted,
        summary.skipped,
        summary.repaired,
        published.len()
    );
}
