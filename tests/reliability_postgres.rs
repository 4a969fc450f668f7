//! PostgreSQL faults, with what users see: the server killed while a cycle streams a
//! 200 000-row table, unreachable while the appliance starts, and started again later. The
//! last snapshot keeps being served byte for byte, health says `degraded` with the reason,
//! and the next cycle after recovery publishes without rebuilding the app. Also: the dirty
//! row corpus through PostgreSQL, and a role that cannot read one column.

mod common;

use std::time::{Duration, Instant};

use abuseipdb_ioc::config::{ConfigSources, Settings};
use abuseipdb_ioc::ioc::Collection;
use common::app::{TestApp, http_client};
use common::dirty_rows;
use common::pg_stoppable::StoppableCluster;
use serde_json::Value;
use sqlx::{Executor, PgConnection};

const OBJECTS: &str = "/taxii2/iocs/collections/ioc-indicators/objects/";

use common::pg::REPORTED_IPS_DDL as CREATE;

/// A cluster with database `soc` holding an empty `reported_ips`.
async fn cluster() -> StoppableCluster {
    let cluster = tokio::task::spawn_blocking(StoppableCluster::start)
        .await
        .unwrap();
    let mut admin = cluster.admin("postgres").await;
    admin.execute("CREATE DATABASE soc").await.unwrap();
    cluster.admin("soc").await.execute(CREATE).await.unwrap();
    cluster
}

/// Rows `from..=to` of a generated table: distinct public IPv4 addresses.
async fn generate(conn: &mut PgConnection, from: u32, to: u32) {
    let sql = format!(
        "INSERT INTO reported_ips (ip_address, reported_at, report_id, categories, confidence)
         SELECT '81.' || (i >> 16) || '.' || ((i >> 8) & 255) || '.' || (i & 255),
                '2026-11-30T10:00:00Z', i::text, '[18, 22]', 90
         FROM generate_series({from}, {to}) AS i"
    );
    conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
}

fn pg_app(url: &str) -> TestApp {
    let url = url.to_string();
    TestApp::with(move |s| {
        let vars = [
            ("DATA_DIR", s.data_dir.display().to_string()),
            ("DATABASE_URL", url),
        ];
        s.source = Settings::load(&ConfigSources::from_map(vars))
            .unwrap()
            .source;
    })
}

async fn get_json(base: &str, path: &str) -> (u16, String, Value) {
    let response = http_client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap();
    (status, text, value)
}

/// Polls (bounded) until the cycle's query is running in the server.
async fn wait_for_streaming(cluster: &StoppableCluster) {
    let mut admin = cluster.admin("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'abuseipdb-ioc' AND query LIKE 'SELECT ip_address%'
               AND state = 'active'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if active > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cycle never started streaming"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn assert_degraded(health: &Value, needle: &str) {
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["components"]["source"]["status"], "degraded",
        "{health}"
    );
    let detail = health["components"]["source"]["detail"].as_str().unwrap();
    assert!(detail.contains(needle), "{detail}");
    let reasons = health["reasons"].to_string();
    assert!(reasons.contains("source: last cycle failed"), "{reasons}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_cycle_keeps_the_snapshot_and_recovers_without_restart() {
    let cluster = cluster().await;
    let mut admin = cluster.admin("soc").await;
    generate(&mut admin, 1, 2_000).await;
    drop(admin);
    let app = pg_app(&cluster.url("soc"));
    let first = app.cycle().await;
    assert_eq!(first.indicators, 2_000);
    let base = app.serve().await;
    let (_, page_before, _) = get_json(&base, &format!("{OBJECTS}?limit=50")).await;
    let objects_before = app.objects(Collection::All);

    // The table grows to 200 000 rows; the server dies while the cycle streams them.
    // (A small published baseline keeps the test fast; the stream is what matters.)
    let mut admin = cluster.admin("soc").await;
    generate(&mut admin, 2_001, 200_000).await;
    drop(admin);
    let pipeline = app.app.pipeline.clone();
    let cycle = tokio::spawn(async move { pipeline.run("test").await });
    wait_for_streaming(&cluster).await;
    tokio::task::block_in_place(|| cluster.kill());
    let failed = tokio::time::timeout(Duration::from_secs(60), cycle)
        .await
        .expect("the cycle ends")
        .unwrap()
        .expect_err("a cycle that lost its source must not publish");
    println!("killed mid-stream: {failed}");
    assert_eq!(
        app.objects(Collection::All),
        objects_before,
        "snapshot changed"
    );
    let (status, page_after, _) = get_json(&base, &format!("{OBJECTS}?limit=50")).await;
    assert_eq!(status, 200);
    assert_eq!(page_after, page_before, "served objects changed");
    let (_, _, health) = get_json(&base, "/health").await;
    assert_degraded(&health, "");
    assert_eq!(health["snapshot"]["indicators"], 2_000);

    // While it is down, a cycle fails on connecting, in bounded time, and says so.
    let started = Instant::now();
    let down = app
        .app
        .pipeline
        .run("test")
        .await
        .expect_err("server is down");
    println!("down: {down} after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(20));
    let (_, _, health) = get_json(&base, "/health").await;
    assert_degraded(
        &health,
        "cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1",
    );
    let (_, page_down, _) = get_json(&base, &format!("{OBJECTS}?limit=50")).await;
    assert_eq!(page_down, page_before);

    // Back up (with 5 of the new rows kept): the same app publishes again.
    tokio::task::block_in_place(|| cluster.resume());
    let mut admin = cluster.admin("soc").await;
    admin
        .execute("DELETE FROM reported_ips WHERE report_id::int > 2005")
        .await
        .unwrap();
    drop(admin);
    let recovered = app.app.pipeline.run("test").await.expect("recovered");
    assert_eq!(recovered.rows_read, 2_005);
    assert_eq!(recovered.published.new, 5);
    assert_eq!(recovered.published.unchanged, 2_000);
    let (_, _, health) = get_json(&base, "/health").await;
    assert_eq!(health["components"]["source"]["status"], "ok", "{health}");
    assert_eq!(health["snapshot"]["indicators"], 2_005);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_at_start_serves_the_last_snapshot_until_it_returns() {
    let cluster = cluster().await;
    let mut admin = cluster.admin("soc").await;
    generate(&mut admin, 1, 500).await;
    drop(admin);
    let app = pg_app(&cluster.url("soc"));
    app.cycle().await;
    let objects_before = app.objects(Collection::All);

    // The appliance restarts while the server is down.
    tokio::task::block_in_place(|| cluster.kill());
    let app = app.restart();
    let base = app.serve().await;
    let (status, _, page) = get_json(&base, &format!("{OBJECTS}?limit=1000")).await;
    assert_eq!(status, 200);
    assert_eq!(page["objects"].as_array().unwrap().len(), 502);
    let err = app.app.pipeline.run("start").await.expect_err("down");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    let (_, _, health) = get_json(&base, "/health").await;
    assert_degraded(&health, "cannot connect to PostgreSQL");
    assert_eq!(app.objects(Collection::All), objects_before);

    tokio::task::block_in_place(|| cluster.resume());
    let summary = app.app.pipeline.run("schedule").await.expect("recovered");
    assert_eq!(summary.published.unchanged, 500);
    assert_eq!(
        app.objects(Collection::All),
        objects_before,
        "nothing re-versioned"
    );
    let (_, _, health) = get_json(&base, "/health").await;
    assert_eq!(health["components"]["source"]["status"], "ok", "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_select_on_one_column_fails_clearly_and_writes_nothing() {
    let cluster = cluster().await;
    let mut admin = cluster.admin("soc").await;
    generate(&mut admin, 1, 50).await;
    for sql in [
        "CREATE ROLE partial LOGIN PASSWORD 'partial-pw-7'",
        "GRANT USAGE ON SCHEMA public TO partial",
        "GRANT SELECT (ip_address, reported_at, report_id, categories, created_at)
            ON reported_ips TO partial",
    ] {
        admin.execute(sql).await.unwrap();
    }
    drop(admin);
    let app = pg_app(&cluster.url_as("partial", "partial-pw-7", "soc"));
    let err = app
        .app
        .pipeline
        .run("test")
        .await
        .expect_err("confidence is not readable");
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("reported_ips"), "{text}");
    assert!(text.contains("permission denied"), "{text}");
    assert!(!text.contains("partial-pw-7"), "{text}");
    let check = app
        .app
        .pipeline
        .source
        .check()
        .await
        .expect_err("probe fails");
    assert_eq!(
        check.to_string(),
        "table reported_ips lacks column confidence (or the role cannot read it)"
    );
    assert!(
        app.objects(Collection::All).is_empty(),
        "something was published"
    );
    assert_eq!(app.app.store.snapshot().generation, 0);
    let health = app.app.health.get("source").unwrap();
    assert!(health.detail.contains("permission denied"), "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_rows_in_postgres_are_each_handled_and_counted() {
    let cluster = cluster().await;
    let mut admin = cluster.admin("soc").await;
    let corpus = dirty_rows::corpus();
    for row in &corpus {
        sqlx::query(
            "INSERT INTO reported_ips (ip_address, reported_at, report_id, categories, confidence)
             VALUES ($1, $2::timestamptz, $3, $4::jsonb, $5::int)",
        )
        .bind(&row.ip)
        .bind(&row.reported_at)
        .bind(&row.report_id)
        .bind(&row.categories)
        .bind(row.confidence)
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{row:?}: {e}"));
    }
    drop(admin);
    let app = pg_app(&cluster.url("soc"));
    let summary = app.cycle().await;
    dirty_rows::check_corpus(&app, &corpus, &summary);
}
