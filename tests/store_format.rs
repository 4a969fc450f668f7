//! The state file across versions and the shortcuts a cycle takes through it: a format 1
//! file is upgraded in place without re-versioning anything, and enrichment written between
//! cycles reaches the next cycle even though the local rows did not change.

mod common;

use std::sync::Arc;
use std::time::Duration;

use abuseipdb_ioc::app::App;
use abuseipdb_ioc::enrich::geo::cache::Cache;
use abuseipdb_ioc::ioc::{Collection, IocKey, Location};
use abuseipdb_ioc::store::tables::{self, RecordPrefix};
use abuseipdb_ioc::store::writer::decode_record;
use common::app::TestApp;
use jiff::SignedDuration;
use redb::{ReadableTable, TableDefinition};

const V1_RECORDS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("records");

fn key(ip: &str) -> IocKey {
    IocKey::of(ip.parse().unwrap())
}

/// Rewrites a format 2 file the way format 1 stored it: records as a 20-byte prefix (hash,
/// deadline, flags, confidence, country) and JSON, keyed by IOC key.
fn downgrade_to_v1(path: &std::path::Path) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let records = txn.open_table(tables::RECORDS).unwrap();
        let mut old = txn.open_table(V1_RECORDS).unwrap();
        for item in records.iter().unwrap() {
            let (_, value) = item.unwrap();
            let prefix = RecordPrefix::read(value.value()).unwrap();
            let (key, record) = decode_record(value.value()).unwrap();
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&prefix.hash.to_le_bytes());
            bytes.extend_from_slice(&prefix.deadline_us.to_le_bytes());
            bytes.extend_from_slice(&[prefix.flags, prefix.confidence]);
            bytes.extend_from_slice(&prefix.country);
            bytes.extend_from_slice(&serde_json::to_vec(&record).unwrap());
            old.insert(key.0, bytes.as_slice()).unwrap();
        }
        txn.open_table(tables::META)
            .unwrap()
            .insert(tables::META_FORMAT, b"1".as_slice())
            .unwrap();
    }
    txn.delete_table(tables::RECORDS).unwrap();
    txn.delete_table(tables::PREFIXES).unwrap();
    txn.commit().unwrap();
}

#[tokio::test]
async fn a_format_1_file_is_upgraded_and_nothing_is_republished() {
    let t = TestApp::new();
    for i in 1..=40 {
        t.report(&format!("198.51.100.{i}"), 30 + i);
    }
    t.report("2001:db8::1", 95);
    t.cycle().await;
    let all = t.objects(Collection::All);
    let high = t.objects(Collection::High);

    let TestApp { dir, clock, app } = t;
    let settings = (*app.settings).clone();
    drop(app);
    downgrade_to_v1(&settings.redb_path());
    let app = Arc::new(App::build(settings, Arc::new(clock.clone())).unwrap());
    let t = TestApp { dir, clock, app };

    let record = t.app.store.record(key("198.51.100.7")).unwrap().unwrap();
    assert_eq!(record.facts.confidence, 37);
    assert_eq!(t.app.store.record_count().unwrap(), 41);

    t.clock.advance(SignedDuration::from_mins(5));
    let summary = t.cycle().await;
    assert_eq!(summary.published.unchanged, 41);
    assert_eq!((summary.published.new, summary.published.changed), (0, 0));
    assert_eq!(t.objects(Collection::All), all);
    assert_eq!(t.objects(Collection::High), high);

    t.report("198.51.100.200", 90);
    t.clock.advance(SignedDuration::from_mins(5));
    let summary = t.cycle().await;
    assert_eq!(
        (summary.published.new, summary.published.unchanged),
        (1, 41)
    );
}

fn amsterdam() -> Location {
    Location {
        latitude: 52.37,
        longitude: 4.89,
        country_code: Some("NL".into()),
        country_name: Some("Netherlands".into()),
        city: Some("Amsterdam".into()),
        region: None,
        asn: Some(64_500),
        isp: Some("Example BV".into()),
        provider: "mmdb".into(),
    }
}

#[tokio::test]
async fn geolocation_written_between_cycles_republishes_an_unchanged_row() {
    let t = TestApp::new();
    t.report("203.0.113.7", 90);
    t.report("203.0.113.8", 90);
    t.cycle().await;
    let before = t.indicators(Collection::All);
    assert!(before.iter().all(|o| o.get("x_elastic_geo_city").is_none()));

    let day = Duration::from_secs(86_400);
    let cache = Cache::new(t.app.store.clone(), day, day);
    let located = [("203.0.113.7".parse().unwrap(), Some(amsterdam()))];
    cache.write(&located, t.clock_now()).unwrap();
    t.clock.advance(SignedDuration::from_mins(5));
    let summary = t.cycle().await;
    assert_eq!(
        (summary.published.changed, summary.published.unchanged),
        (1, 1)
    );
    let after = t.indicators(Collection::All);
    let moved = after
        .iter()
        .find(|o| o["pattern"] == "[ipv4-addr:value = '203.0.113.7']")
        .unwrap();
    assert_eq!(moved["x_elastic_geo_city"], "Amsterdam");
    assert_eq!(summary.geolocated, 1);

    // Written again with the same answer: noted, recomputed, found unchanged.
    cache.write(&located, t.clock_now()).unwrap();
    t.clock.advance(SignedDuration::from_mins(5));
    let summary = t.cycle().await;
    assert_eq!(summary.published.unchanged, 2);
    assert_eq!(t.indicators(Collection::All), after);
}

#[tokio::test]
async fn a_failed_cycle_keeps_the_enrichment_notes_for_the_next_one() {
    let t = TestApp::new();
    t.report("203.0.113.9", 90);
    t.cycle().await;

    let day = Duration::from_secs(86_400);
    let cache = Cache::new(t.app.store.clone(), day, day);
    let located = [("203.0.113.9".parse().unwrap(), Some(amsterdam()))];
    cache.write(&located, t.clock_now()).unwrap();
    // An empty read while indicators are published is refused: the cycle fails. The same
    // rows then come back unchanged, so only the kept note can explain a new version.
    t.sql("CREATE TABLE saved AS SELECT * FROM reported_ips");
    t.sql("DELETE FROM reported_ips");
    t.clock.advance(SignedDuration::from_mins(5));
    assert!(t.app.pipeline.run("test").await.is_err());

    t.sql("INSERT INTO reported_ips SELECT * FROM saved");
    t.clock.advance(SignedDuration::from_mins(5));
    let summary = t.cycle().await;
    assert_eq!(summary.published.changed, 1);
    assert_eq!(summary.geolocated, 1);
}
