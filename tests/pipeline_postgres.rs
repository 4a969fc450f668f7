//! The whole cycle against a real PostgreSQL through a role that may only `SELECT`.

mod common;

use std::sync::Arc;

use abuseipdb_ioc::app::App;
use abuseipdb_ioc::clock::ManualClock;
use abuseipdb_ioc::config::Secret;
use abuseipdb_ioc::ioc::{Collection, IocKey};
use common::app::{start_time, test_settings};
use sqlx::{Connection, Executor, Row};

const ROWS: &str = "
INSERT INTO reported_ips (ip_address, reported_at, report_id, categories, confidence) VALUES
 ('203.0.113.1', '2026-12-01T10:00:00Z', 'R-1', '[18, 22]', 90),
 ('198.51.100.2', '2026-12-01T09:00:00Z', NULL, '[\"14\"]', 60),
 (' 192.0.2.3', '2026-12-01T08:00:00Z', NULL, '[{\"id\": 4}]', -5),
 ('2001:DB8::4', '2026-12-01T07:00:00Z', NULL, NULL, NULL),
 ('::ffff:192.0.2.5', '2026-12-01T06:00:00Z', NULL, '\"ssh\"', 250),
 ('10.0.0.0/8', '2026-12-01T06:00:00Z', NULL, NULL, 90),
 ('garbage', '2026-12-01T06:00:00Z', NULL, NULL, 90),
 ('192.0.2.7', '2027-06-01T00:00:00Z', NULL, '[[1,[2]], {\"x\": 1}, 99]', 80)";

async fn checksum(conn: &mut sqlx::PgConnection) -> String {
    let row = conn
        .fetch_one("SELECT md5(string_agg(t::text, ',' ORDER BY ip_address)) FROM reported_ips t")
        .await
        .unwrap();
    row.get::<String, _>(0)
}

#[tokio::test]
async fn a_select_only_role_publishes_every_valid_row_and_writes_nothing() {
    let pg = common::pg::cluster().await;
    let db = pg.create_database().await;
    pg.create_reported_ips(&db).await;
    let mut admin = pg.admin(&db).await;
    admin.execute(ROWS).await.unwrap();
    let before = checksum(&mut admin).await;
    let readonly_url = pg.create_readonly_role(&db).await;

    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    let mut pg_settings = abuseipdb_ioc::config::Settings::load(
        &abuseipdb_ioc::config::ConfigSources::from_map([("DATABASE_URL", readonly_url.as_str())]),
    )
    .unwrap()
    .source
    .postgres
    .unwrap();
    pg_settings.url = Some(Secret::new(readonly_url.clone()));
    settings.source.postgres = Some(pg_settings);
    let clock = ManualClock::new(start_time());
    let app = App::build(settings, Arc::new(clock)).unwrap();

    let summary = app.pipeline.run("test").await.unwrap();
    assert_eq!(summary.rows_read, 8);
    assert_eq!(summary.rows_accepted, 6);
    assert_eq!(summary.skipped.get("network"), Some(&1));
    assert_eq!(summary.skipped.get("invalid_address"), Some(&1));
    assert_eq!(summary.repaired.get("confidence_negative"), Some(&1));
    assert_eq!(summary.repaired.get("confidence_above_100"), Some(&1));
    assert_eq!(summary.repaired.get("confidence_missing"), Some(&1));
    assert_eq!(summary.repaired.get("reported_at_future"), Some(&1));
    assert_eq!(summary.repaired.get("ipv4_mapped"), Some(&1));
    assert_eq!(app.store.snapshot().counts.indicators, 6);

    let mapped = app
        .store
        .record(IocKey::of("192.0.2.5".parse().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(mapped.facts.local.as_ref().unwrap().confidence, 100);
    let v6 = app
        .store
        .record(IocKey::of("2001:db8::4".parse().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(
        v6.facts.confidence, 85,
        "NULL confidence defaults to 75, boosted to 85"
    );
    let future = app
        .store
        .record(IocKey::of("192.0.2.7".parse().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(future.facts.last_seen, start_time());

    let second = app.pipeline.run("test").await.unwrap();
    assert_eq!(second.published.unchanged, 6);
    assert_eq!(
        checksum(&mut admin).await,
        before,
        "the source table is unchanged"
    );

    let mut readonly = sqlx::PgConnection::connect(&readonly_url).await.unwrap();
    let write = readonly
        .execute("INSERT INTO reported_ips (ip_address, reported_at) VALUES ('1.1.1.1', now())")
        .await;
    assert!(
        write.is_err(),
        "the role used by the appliance cannot write"
    );
    let objects = app.store.snapshot().counts.indicators;
    assert_eq!(objects, 6);
    let _ = Collection::All;
}

#[tokio::test]
async fn an_unreachable_database_fails_the_cycle_and_keeps_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    let mut pg_settings =
        abuseipdb_ioc::config::Settings::load(&abuseipdb_ioc::config::ConfigSources::from_map([
            ("POSTGRES_HOST", "127.0.0.1"),
            ("POSTGRES_PORT", "1"),
        ]))
        .unwrap()
        .source
        .postgres
        .unwrap();
    pg_settings.password = Some(Secret::new("hunter2-secret"));
    settings.source.postgres = Some(pg_settings);
    let app = App::build(settings, Arc::new(ManualClock::new(start_time()))).unwrap();
    let err = app.pipeline.run("test").await.unwrap_err().to_string();
    assert!(!err.contains("hunter2-secret"), "{err}");
    let state = app.health.get("source").unwrap();
    assert_eq!(state.status, abuseipdb_ioc::health::Status::Degraded);
    assert_eq!(app.store.snapshot().generation, 0);
}
