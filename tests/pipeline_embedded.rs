//! The refresh cycle over the embedded source: publication, unchanged re-runs, revocation,
//! spellings, the high-confidence collection, expiry and retention.

mod common;

use abuseipdb_ioc::ioc::{Collection, IocKey};
use common::app::TestApp;
use jiff::SignedDuration;

fn key(ip: &str) -> IocKey {
    IocKey::of(ip.parse().unwrap())
}

#[tokio::test]
async fn a_reported_address_is_published_with_its_confidence() {
    let t = TestApp::new();
    t.report("203.0.113.7", 90);
    let summary = t.cycle().await;
    assert_eq!((summary.rows_read, summary.rows_accepted), (1, 1));
    assert_eq!(summary.published.new, 1);

    let record = t.app.store.record(key("203.0.113.7")).unwrap().unwrap();
    assert_eq!(record.facts.confidence, 90);
    let all = t.indicators(Collection::All);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["pattern"], "[ipv4-addr:value = '203.0.113.7']");
    assert_eq!(all[0]["confidence"], 90);
    assert_eq!(all[0]["id"], key("203.0.113.7").stix_id());
    assert_eq!(t.indicators(Collection::High).len(), 1);

    let ids: Vec<String> = t
        .objects(Collection::All)
        .into_iter()
        .map(|o| o.1)
        .collect();
    assert!(ids.iter().any(|id| id.starts_with("identity--")));
    assert!(ids.iter().any(|id| id.starts_with("marking-definition--")));
}

#[tokio::test]
async fn an_unchanged_rerun_changes_no_version_and_no_date_added() {
    let t = TestApp::new();
    for i in 1..=50 {
        t.report(&format!("198.51.100.{i}"), 40 + i);
    }
    t.cycle().await;
    let before = t.objects(Collection::All);
    let high_before = t.objects(Collection::High);

    t.clock.advance(SignedDuration::from_mins(5));
    let summary = t.cycle().await;
    assert_eq!(summary.published.unchanged, 50);
    assert_eq!((summary.published.new, summary.published.changed), (0, 0));
    assert_eq!(t.objects(Collection::All), before);
    assert_eq!(t.objects(Collection::High), high_before);
}

#[tokio::test]
async fn date_added_is_unique_and_increasing_and_changes_come_last() {
    let t = TestApp::new();
    for i in 1..=20 {
        t.report(&format!("192.0.2.{i}"), 90);
    }
    t.cycle().await;
    t.clock.advance(SignedDuration::from_mins(5));
    t.report("192.0.2.3", 95);
    let summary = t.cycle().await;
    assert_eq!(
        (summary.published.changed, summary.published.unchanged),
        (1, 19)
    );

    let objects = t.objects(Collection::All);
    let added: Vec<u64> = objects.iter().map(|o| o.0).collect();
    assert!(added.windows(2).all(|w| w[0] < w[1]), "{added:?}");
    let last: serde_json::Value = serde_json::from_slice(&objects.last().unwrap().4).unwrap();
    assert_eq!(last["pattern"], "[ipv4-addr:value = '192.0.2.3']");
    assert_eq!(last["confidence"], 95);
    assert_ne!(last["modified"], last["created"]);
}

#[tokio::test]
async fn a_deleted_row_is_published_once_more_as_revoked_then_purged() {
    let t = TestApp::new();
    t.report("203.0.113.10", 90);
    t.report("203.0.113.11", 90);
    t.cycle().await;

    t.sql("DELETE FROM reported_ips WHERE ip_address = '203.0.113.10'");
    t.clock.advance(SignedDuration::from_mins(5));
    let summary = t.cycle().await;
    assert_eq!(summary.published.revoked, 2, "revoked in both collections");
    let revoked: Vec<_> = t
        .indicators(Collection::All)
        .into_iter()
        .filter(|o| o["revoked"] == true)
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["pattern"], "[ipv4-addr:value = '203.0.113.10']");
    assert_eq!(t.app.store.snapshot().counts.revoked, 1);
    assert_eq!(t.app.store.snapshot().counts.indicators, 1);

    t.clock.advance(SignedDuration::from_hours(8 * 24));
    t.report("203.0.113.11", 90);
    let summary = t.cycle().await;
    assert_eq!(summary.published.purged, 2);
    assert_eq!(t.indicators(Collection::All).len(), 1);
    assert!(t.app.store.record(key("203.0.113.10")).unwrap().is_none());
}

#[tokio::test]
async fn an_address_back_after_revocation_gets_a_new_indicator_id() {
    let t = TestApp::new();
    t.report("203.0.113.20", 90);
    t.report("203.0.113.21", 90);
    t.cycle().await;
    t.sql("DELETE FROM reported_ips WHERE ip_address = '203.0.113.20'");
    t.clock.advance(SignedDuration::from_mins(5));
    t.cycle().await;
    t.clock.advance(SignedDuration::from_mins(5));
    t.report("203.0.113.20", 90);
    t.cycle().await;

    let all = t.indicators(Collection::All);
    let for_addr: Vec<_> = all
        .iter()
        .filter(|o| o["pattern"] == "[ipv4-addr:value = '203.0.113.20']")
        .collect();
    assert_eq!(
        for_addr.len(),
        2,
        "the revoked version stays until its retention ends"
    );
    let revoked = for_addr.iter().find(|o| o["revoked"] == true).unwrap();
    let active = for_addr
        .iter()
        .find(|o| o.get("revoked").is_none())
        .unwrap();
    assert_eq!(revoked["id"], key("203.0.113.20").stix_id());
    assert_ne!(active["id"], revoked["id"]);

    let found = t
        .app
        .store
        .objects_by_id(Collection::All, active["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn leaving_the_high_confidence_collection_revokes_there_only() {
    let t = TestApp::new();
    t.report("198.51.100.30", 90);
    t.report("198.51.100.31", 90);
    t.cycle().await;
    t.clock.advance(SignedDuration::from_mins(5));
    t.report("198.51.100.30", 50);
    t.cycle().await;

    let high = t.indicators(Collection::High);
    let dropped = high
        .iter()
        .find(|o| o["pattern"] == "[ipv4-addr:value = '198.51.100.30']")
        .unwrap();
    assert_eq!(dropped["revoked"], true);
    let all = t.indicators(Collection::All);
    let kept = all
        .iter()
        .find(|o| o["pattern"] == "[ipv4-addr:value = '198.51.100.30']")
        .unwrap();
    assert!(kept.get("revoked").is_none());
    assert_eq!(kept["confidence"], 50);
    assert_eq!(t.app.store.snapshot().counts.high_confidence, 1);
}

#[tokio::test]
async fn spellings_of_one_address_make_one_indicator_and_stay_unchanged() {
    let t = TestApp::new();
    let at = "2026-12-01T10:00:00Z";
    t.sql(&format!(
        "INSERT INTO reported_ips (ip_address, reported_at, confidence, categories) VALUES
         ('203.0.113.50', '{at}', 60, '[18]'),
         (' 203.0.113.50 ', '2026-12-01T11:00:00Z', 80, '[22]'),
         ('::ffff:203.0.113.50', '{at}', 70, '[\"ssh-bruteforce\"]'),
         ('2001:DB8::1', '{at}', 90, NULL),
         ('2001:db8:0::1', '{at}', 91, NULL)"
    ));
    let summary = t.cycle().await;
    assert_eq!(summary.duplicates, 3);
    assert_eq!(summary.published.new, 2);
    let record = t.app.store.record(key("203.0.113.50")).unwrap().unwrap();
    let local = record.facts.local.as_ref().unwrap();
    assert_eq!(local.confidence, 80);
    assert_eq!(local.categories, vec![18, 22]);
    assert_eq!(local.tags, vec!["ssh-bruteforce".to_string()]);
    assert_eq!(record.spellings, 3);

    let before = t.objects(Collection::All);
    t.clock.advance(SignedDuration::from_mins(5));
    let summary = t.cycle().await;
    assert_eq!((summary.published.changed, summary.published.new), (0, 0));
    assert_eq!(t.objects(Collection::All), before);
}

#[tokio::test]
async fn expired_indicators_leave_the_collection() {
    let t = TestApp::new();
    t.report("192.0.2.60", 90);
    t.report("192.0.2.61", 90);
    t.cycle().await;
    t.clock.advance(SignedDuration::from_hours(24 * 20));
    t.report("192.0.2.61", 90);
    t.cycle().await;
    t.clock.advance(SignedDuration::from_hours(24 * 11));
    let summary = t.cycle().await;
    assert_eq!(summary.published.expired, 1);
    let all = t.indicators(Collection::All);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["pattern"], "[ipv4-addr:value = '192.0.2.61']");
}

#[tokio::test]
async fn an_empty_read_never_empties_the_feed() {
    let t = TestApp::new();
    t.report("192.0.2.70", 90);
    t.cycle().await;
    let before = t.objects(Collection::All);
    t.sql("DELETE FROM reported_ips");
    let err = t.app.pipeline.run("test").await.unwrap_err().to_string();
    assert!(err.contains("no usable rows"), "{err}");
    assert_eq!(t.objects(Collection::All), before);
    let cycles = t.app.store.cycles().unwrap();
    assert!(cycles.last().unwrap().error.is_some());
}

#[tokio::test]
async fn excluded_ranges_are_counted_not_published() {
    let t = TestApp::with(|s| s.cycle.exclude = vec!["10.0.0.0/8".parse().unwrap()]);
    t.report("10.1.2.3", 90);
    t.report("192.0.2.80", 90);
    let summary = t.cycle().await;
    assert_eq!(summary.excluded, 1);
    assert_eq!(t.indicators(Collection::All).len(), 1);
    assert_eq!(t.app.store.snapshot().excluded, 1);
}

#[tokio::test]
async fn dirty_rows_are_counted_by_reason_and_never_abort() {
    let t = TestApp::new();
    t.sql(
        "INSERT INTO reported_ips (ip_address, reported_at, confidence, categories) VALUES
         ('not-an-ip', '2026-12-01T10:00:00Z', 90, NULL),
         ('10.0.0.0/8', '2026-12-01T10:00:00Z', 90, NULL),
         ('192.0.2.90', '2026-12-01T10:00:00Z', 250, '{\"id\": 18}'),
         ('192.0.2.91', '2026-12-01T10:00:00Z', NULL, 'junk{')",
    );
    let summary = t.cycle().await;
    assert_eq!(summary.rows_read, 4);
    assert_eq!(summary.rows_accepted, 2);
    assert_eq!(summary.skipped.get("invalid_address"), Some(&1));
    assert_eq!(summary.skipped.get("network"), Some(&1));
    assert_eq!(summary.repaired.get("confidence_above_100"), Some(&1));
    assert_eq!(summary.repaired.get("confidence_missing"), Some(&1));
    let default = t.app.store.record(key("192.0.2.91")).unwrap().unwrap();
    assert_eq!(default.facts.local.unwrap().confidence, 75);
}

#[tokio::test]
async fn a_restart_serves_the_same_bytes_without_reprocessing() {
    let t = TestApp::new();
    for i in 1..=10 {
        t.report(&format!("203.0.113.{i}"), 90);
    }
    t.cycle().await;
    let before = t.objects(Collection::All);
    let generation = t.app.store.generation();
    let t = t.restart();
    assert_eq!(t.app.store.generation(), generation);
    assert_eq!(t.objects(Collection::All), before);
    assert_eq!(t.app.store.snapshot().counts.indicators, 10);
}

#[tokio::test]
async fn a_request_file_makes_the_worker_refresh() {
    let t = TestApp::new();
    t.report("198.51.100.99", 90);
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(abuseipdb_ioc::pipeline::worker::run(
        t.app.pipeline.clone(),
        stop_rx,
    ));
    abuseipdb_ioc::pipeline::worker::request_refresh(&t.app.settings.data_dir).unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while t.app.store.generation() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(t.app.store.generation(), 1, "the request was served once");
    assert_eq!(t.app.store.snapshot().counts.indicators, 1);
    let request = t
        .app
        .settings
        .data_dir
        .join(abuseipdb_ioc::pipeline::worker::REFRESH_REQUEST);
    assert!(!request.exists(), "the request is consumed");
}
