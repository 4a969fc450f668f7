//! Property-based fuzzing of every parser that reads outside input: address text, the
//! `categories` column, TAXII `next` tokens and query strings, and CSV imports.
//!
//! Case counts are fixed (see `cases`) so the run time in CI is bounded; raise them with
//! `PROPTEST_CASES=100000 cargo test --test fuzz_inputs` for a longer hunt.

use std::io::Cursor as IoCursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use abuseipdb_ioc::publish::taxii::query::{Filters, Params};
use abuseipdb_ioc::publish::taxii::token::{self, Cursor, Endpoint};
use abuseipdb_ioc::source::address::{classify, is_public, normalise};
use abuseipdb_ioc::source::categories::{self, MAX_ID, MAX_TAG_CHARS, MAX_TAGS};
use abuseipdb_ioc::source::sqlite::EmbeddedSource;
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// === addresses ===

/// Non-public ranges written out independently of the code under test.
const NON_PUBLIC_V4: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

const NON_PUBLIC_V6: &[(u128, u8)] = &[
    (0, 128),
    (1, 128),
    (0xfc00 << 112, 7),
    (0xfe80 << 112, 10),
    (0xff00 << 112, 8),
    (0x2001_0db8 << 96, 32),
];

fn in_v4_range(base: [u8; 4], prefix: u8, noise: u32) -> Ipv4Addr {
    let host_bits = 32 - u32::from(prefix);
    let mask = if host_bits == 32 {
        u32::MAX
    } else {
        (1u32 << host_bits) - 1
    };
    Ipv4Addr::from(u32::from(Ipv4Addr::from(base)) | (noise & mask))
}

fn in_v6_range(base: u128, prefix: u8, noise: u128) -> Ipv6Addr {
    let host_bits = 128 - u32::from(prefix);
    let mask = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    Ipv6Addr::from(base | (noise & mask))
}

fn non_public() -> impl Strategy<Value = IpAddr> {
    let v4 = (0..NON_PUBLIC_V4.len(), any::<u32>()).prop_map(|(i, noise)| {
        let (base, prefix) = NON_PUBLIC_V4[i];
        IpAddr::V4(in_v4_range(base, prefix, noise))
    });
    let v6 = (0..NON_PUBLIC_V6.len(), any::<u128>()).prop_map(|(i, noise)| {
        let (base, prefix) = NON_PUBLIC_V6[i];
        IpAddr::V6(in_v6_range(base, prefix, noise))
    });
    // An IPv4-mapped spelling of a private IPv4 address is just as private.
    let mapped = (0..NON_PUBLIC_V4.len(), any::<u32>()).prop_map(|(i, noise)| {
        let (base, prefix) = NON_PUBLIC_V4[i];
        IpAddr::V6(in_v4_range(base, prefix, noise).to_ipv6_mapped())
    });
    prop_oneof![v4, v6, mapped]
}

fn any_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        non_public(),
    ]
}

/// Spellings the cleaning rules promise to accept for `addr`.
fn spelling(addr: IpAddr, style: u8) -> String {
    let text = addr.to_string();
    match (addr, style % 5) {
        (_, 0) => text,
        (_, 1) => format!("  {text}\t"),
        (IpAddr::V4(_), 2) => format!("{text}/32"),
        (IpAddr::V6(_), 2) => format!("{text}/128"),
        (IpAddr::V6(v6), 3) => {
            let s = v6.segments();
            format!(
                "{:04X}:{:04X}:{:04X}:{:04X}:{:04X}:{:04X}:{:04X}:{:04X}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            )
        }
        (IpAddr::V4(v4), 4) => format!("::ffff:{v4}"),
        _ => text.to_uppercase(),
    }
}

fn address_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F:./% \\t\\n]{0,60}",
        (any_address(), any::<u8>()).prop_map(|(a, s)| spelling(a, s)),
        // Unicode digits that look like ASCII ones (fullwidth, Arabic-Indic, Devanagari).
        "[0-9\u{ff10}-\u{ff19}\u{0660}-\u{0669}\u{0966}-\u{096f}.]{7,15}",
    ]
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn normalise_is_idempotent_and_reparses(text in address_text()) {
        if let Ok((addr, _repairs)) = normalise(&text) {
            let canonical = addr.to_string();
            prop_assert_eq!(canonical.parse::<IpAddr>().unwrap(), addr);
            let (again, repairs) = normalise(&canonical).expect("canonical text is accepted");
            prop_assert_eq!(again, addr);
            prop_assert!(repairs.is_empty(), "canonical text needed repairs: {repairs:?}");
            prop_assert!(canonical.is_ascii());
            // classify never panics and agrees with is_public.
            prop_assert_eq!(classify(addr) == "public", is_public(addr));
        }
    }

    #[test]
    fn every_accepted_spelling_names_the_same_address(addr in any_address(), style in any::<u8>()) {
        let text = spelling(addr, style);
        let (found, _) = normalise(&text).expect("a documented spelling is accepted");
        let expected = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn non_public_addresses_are_never_public(addr in non_public()) {
        prop_assert!(!is_public(addr), "{addr} ({}) judged public", classify(addr));
        if let Ok((normalised, _)) = normalise(&addr.to_string()) {
            prop_assert!(!is_public(normalised));
        }
    }

    #[test]
    fn homoglyph_digits_are_never_accepted(
        text in "[0-9]{1,3}\\.[\u{ff10}-\u{ff19}\u{0660}-\u{0669}]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
    ) {
        prop_assert!(normalise(&text).is_err(), "{text:?} was accepted");
    }
}

// === categories ===

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-5i64..30).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[0-9, ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("id|name|[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check_categories(text: Option<&str>) -> Result<(), TestCaseError> {
    let (ids, tags, _repairs) = categories::parse(text);
    prop_assert!(ids.iter().all(|id| (1..=MAX_ID).contains(id)), "{ids:?}");
    prop_assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "not sorted/unique: {ids:?}"
    );
    prop_assert!(
        tags.windows(2).all(|w| w[0] < w[1]),
        "not sorted/unique: {tags:?}"
    );
    prop_assert!(tags.len() <= MAX_TAGS);
    for tag in &tags {
        prop_assert!(
            !tag.is_empty() && tag.chars().count() <= MAX_TAG_CHARS,
            "{tag:?}"
        );
        prop_assert!(!tag.chars().any(char::is_control), "{tag:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn categories_from_any_json_are_clean(value in json_value()) {
        check_categories(Some(&value.to_string()))?;
    }

    #[test]
    fn categories_from_any_text_are_clean(text in any::<String>()) {
        check_categories(Some(&text))?;
    }

    #[test]
    fn deeply_nested_categories_never_overflow(depth in 1usize..5000) {
        let text = format!("{}4{}", "[".repeat(depth), "]".repeat(depth));
        check_categories(Some(&text))?;
    }
}

// === TAXII next tokens ===

const KEY: &[u8] = b"fuzz-signing-key-0123456789abcdef";

fn cursor() -> impl Strategy<Value = Cursor> {
    let endpoint = prop_oneof![
        Just(Endpoint::Objects),
        Just(Endpoint::Manifest),
        Just(Endpoint::Object),
        Just(Endpoint::Versions),
    ];
    (0u8..2, endpoint, any::<u64>(), 1u64..20_000, "[a-z]{0,5}").prop_map(|(c, e, a, l, kind)| {
        Cursor {
            c,
            e,
            o: None,
            f: Filters {
                types: if kind.is_empty() { vec![] } else { vec![kind] },
                ..Filters::default()
            },
            a,
            l,
        }
    })
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn arbitrary_text_never_opens_as_a_token(text in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,50}",
    ]) {
        prop_assert!(token::open(KEY, &text).is_err());
    }

    #[test]
    fn any_bit_flip_breaks_a_valid_token(c in cursor(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let good = token::mint(KEY, &c);
        prop_assert_eq!(token::open(KEY, &good), Ok(c.clone()));
        let mut bytes = good.clone().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(flipped) = String::from_utf8(bytes) {
            prop_assert!(token::open(KEY, &flipped).is_err(), "flip at {i} bit {bit} accepted");
        }
        prop_assert!(token::open(b"another-key-entirely-0123456789", &good).is_err());
        for cut in [1, good.len() / 2, good.len() - 1] {
            prop_assert!(token::open(KEY, &good[..cut]).is_err());
        }
    }
}

// === TAXII query strings ===

fn query_text() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("limit".to_string()),
        Just("added_after".to_string()),
        Just("next".to_string()),
        Just("match[id]".to_string()),
        Just("match[type]".to_string()),
        Just("match[version]".to_string()),
        Just("match[spec_version]".to_string()),
        "[a-z%\\[\\]]{0,12}",
    ];
    let value = prop_oneof![any::<String>(), "[0-9%A-Fa-f:.TZ+,-]{0,30}"];
    let pair = (name, value).prop_map(|(n, v)| format!("{n}={v}"));
    prop_oneof![
        any::<String>(),
        prop::collection::vec(pair, 0..8).prop_map(|pairs| pairs.join("&")),
    ]
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn query_parsing_never_panics(text in query_text()) {
        if let Ok(params) = Params::parse(Some(&text)) {
            prop_assert!(params.limit.is_none_or(|l| l > 0));
            prop_assert!(params.next.as_ref().is_none_or(|n| !n.is_empty()));
        }
    }

    #[test]
    fn a_repeated_parameter_is_always_refused(n in 1u64..u64::MAX, m in 1u64..1000) {
        let text = format!("limit={n}&limit={m}");
        prop_assert!(Params::parse(Some(&text)).is_err());
        prop_assert_eq!(Params::parse(Some(&format!("limit={n}"))).unwrap().limit, Some(n));
    }
}

// === CSV import ===

fn now() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

/// Data records the importer sees: the same reader settings, header excluded.
fn records_in(bytes: &[u8]) -> Option<u64> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    reader.headers().ok()?;
    Some(reader.records().count() as u64)
}

fn rows_in(dir: &std::path::Path) -> u64 {
    let conn = rusqlite::Connection::open(dir.join("source.sqlite")).unwrap();
    conn.query_row("SELECT count(*) FROM reported_ips", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as u64
}

fn csv_line() -> impl Strategy<Value = (String, bool)> {
    let good = (any::<u32>(), 0i64..=100)
        .prop_map(|(ip, conf)| (format!("{},{conf},\"18,22\"", Ipv4Addr::from(ip)), true));
    let bad = prop_oneof![
        "[^\\n\\r\"]{0,30}".prop_map(|junk| format!("{junk},50,")),
        any::<u32>().prop_map(|ip| format!("{}/8,50,", Ipv4Addr::from(ip))),
        (any::<u32>(), 101i64..100_000).prop_map(|(ip, c)| format!("{},{c},", Ipv4Addr::from(ip))),
    ]
    .prop_map(|line| (line, false));
    prop_oneof![3 => good, 1 => bad]
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn csv_import_of_arbitrary_bytes_never_panics(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            "[a-z_,\"\\n0-9.:]{0,300}".prop_map(String::into_bytes),
        ],
        header in prop::bool::ANY,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let source = EmbeddedSource::open(&dir.path().join("source.sqlite")).unwrap();
        let mut input = if header { b"ip_address,confidence\n".to_vec() } else { Vec::new() };
        input.extend(body);
        if let Ok(tally) = source.import_csv(IoCursor::new(&input), now()) {
            let records = records_in(&input).expect("the importer read a header");
            prop_assert_eq!(tally.imported + tally.rejected, records);
            prop_assert!(rows_in(dir.path()) <= tally.imported);
            prop_assert!(tally.errors.len() as u64 <= tally.rejected);
        }
    }

    #[test]
    fn csv_import_counts_add_up(lines in prop::collection::vec(csv_line(), 0..60)) {
        let dir = tempfile::tempdir().unwrap();
        let source = EmbeddedSource::open(&dir.path().join("source.sqlite")).unwrap();
        let mut input = String::from("ip_address,confidence,categories\n");
        for (line, _) in &lines {
            input.push_str(line);
            input.push('\n');
        }
        let tally = source.import_csv(IoCursor::new(input.as_bytes()), now()).unwrap();
        let good: Vec<&String> = lines.iter().filter(|(_, ok)| *ok).map(|(l, _)| l).collect();
        let distinct: std::collections::HashSet<&str> =
            good.iter().map(|l| l.split(',').next().unwrap()).collect();
        // A junk line can happen to be a valid address; never more than the generated lines.
        prop_assert!(tally.imported >= good.len() as u64);
        prop_assert_eq!(tally.imported + tally.rejected, lines.len() as u64);
        prop_assert!(rows_in(dir.path()) >= distinct.len() as u64);
        prop_assert!(rows_in(dir.path()) <= tally.imported);
    }
}
