//! The PostgreSQL source against a real server: dirty rows, a read-only role, streaming in
//! bounded batches, and the read-only probe.

mod common;

use std::collections::BTreeMap;

use abuseipdb_ioc::config::{PostgresSettings, Secret};
use abuseipdb_ioc::ioc::LocalFacts;
use abuseipdb_ioc::source::clean::Rules;
use abuseipdb_ioc::source::postgres::PgSource;
use abuseipdb_ioc::source::{LocalRow, Repair, RowTally, SkipReason, SourceError};
use jiff::Timestamp;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::mpsc;

const NOW: &str = "2026-03-01T12:00:00Z";

fn rules() -> Rules {
    Rules {
        now: NOW.parse().unwrap(),
        default_confidence: 75,
    }
}

fn settings(url: &str) -> PostgresSettings {
    PostgresSettings {
        url: Some(Secret::new(url)),
        host: "unused".into(),
        port: 5432,
        database: "unused".into(),
        user: "unused".into(),
        password: None,
        pool_size: 2,
    }
}

/// Streams the whole table; returns the rows, the tally and the size of every batch.
async fn stream_all(source: &PgSource, batch_size: usize) -> (Vec<LocalRow>, RowTally, Vec<usize>) {
    let (tx, mut rx) = mpsc::channel::<Vec<LocalRow>>(4);
    let receiver = tokio::spawn(async move {
        let (mut rows, mut sizes) = (Vec::new(), Vec::new());
        while let Some(batch) = rx.recv().await {
            sizes.push(batch.len());
            rows.extend(batch);
        }
        (rows, sizes)
    });
    let tally = source.stream(rules(), batch_size, tx).await.unwrap();
    let (rows, sizes) = receiver.await.unwrap();
    (rows, tally, sizes)
}

const DIRTY_ROWS: &str = r#"
INSERT INTO reported_ips (ip_address, reported_at, report_id, categories, confidence, created_at)
VALUES
    ('198.51.100.7', '2026-02-01T00:00:00Z', 'case-1', '[22, 18]', 90, '2026-01-01T00:00:00Z'),
    ('  203.0.113.5 ', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('203.0.113.9/32', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('2001:DB8:0:0:0:0:0:1', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('::ffff:192.0.2.44', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('10.0.0.0/8', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('not-an-ip', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('fe80::1%eth0', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('   ', '2026-02-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('192.0.2.10', '2026-02-01T00:00:00Z', NULL, '[4]', NULL, '2026-01-01T00:00:00Z'),
    ('192.0.2.11', '2026-02-01T00:00:00Z', NULL, '[4]', -5, '2026-01-01T00:00:00Z'),
    ('192.0.2.12', '2026-02-01T00:00:00Z', NULL, '[4]', 250, '2026-01-01T00:00:00Z'),
    ('192.0.2.13', '2026-02-01T00:00:00Z', NULL, NULL, 80, '2026-01-01T00:00:00Z'),
    ('192.0.2.14', '2026-02-01T00:00:00Z', NULL,
        '["18", {"id": 4}, {"id": "22"}, " SSH-Scanner ", 99, null, true, 1.5, [1]]',
        80, '2026-01-01T00:00:00Z'),
    ('192.0.2.15', '2026-02-01T00:00:00Z', NULL, '"18,22"', 80, '2026-01-01T00:00:00Z'),
    ('192.0.2.16', '2999-01-01T00:00:00Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('192.0.2.17', 'infinity', NULL, '[4]', 80, '2026-01-01T00:00:00Z'),
    ('192.0.2.18', '2026-02-01T00:00:00Z', NULL, '[4]', 80, NULL),
    ('192.0.2.19', '2026-02-01T00:00:00Z', E'abc\001def', '[4]', 80, '2026-01-01T00:00:00Z'),
    ('10.9.8.7', '2026-02-01T00:00:00.123456Z', NULL, '[4]', 80, '2026-01-01T00:00:00Z')
"#;

/// The row most dirty rows turn into once repaired; each expected row changes one thing.
fn expected(addr: &str, change: impl FnOnce(&mut LocalFacts)) -> LocalRow {
    let mut facts = LocalFacts {
        confidence: 80,
        categories: vec![4],
        tags: vec![],
        report_id: None,
        reported_at: "2026-02-01T00:00:00Z".parse().unwrap(),
        created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
    };
    change(&mut facts);
    let addr = addr.parse().unwrap();
    LocalRow {
        addr,
        key: abuseipdb_ioc::ioc::IocKey::of(addr),
        facts,
    }
}

fn expected_rows() -> Vec<LocalRow> {
    let now: Timestamp = NOW.parse().unwrap();
    let mut rows = vec![
        expected("198.51.100.7", |f| {
            f.confidence = 90;
            f.categories = vec![18, 22];
            f.report_id = Some("case-1".into());
        }),
        expected("203.0.113.5", |_| {}),
        expected("203.0.113.9", |_| {}),
        expected("2001:db8::1", |_| {}),
        expected("192.0.2.44", |_| {}),
        expected("192.0.2.10", |f| f.confidence = 75),
        expected("192.0.2.11", |f| f.confidence = 0),
        expected("192.0.2.12", |f| f.confidence = 100),
        expected("192.0.2.13", |f| f.categories = vec![]),
        expected("192.0.2.14", |f| {
            f.categories = vec![4, 18, 22];
            f.tags = vec!["ssh-scanner".into()];
        }),
        expected("192.0.2.15", |f| f.categories = vec![18, 22]),
        expected("192.0.2.16", |f| f.reported_at = now),
        expected("192.0.2.17", |f| f.reported_at = now),
        expected("192.0.2.18", |f| f.created_at = f.reported_at),
        expected("192.0.2.19", |f| f.report_id = Some("abcdef".into())),
        expected("10.9.8.7", |f| {
            f.reported_at = "2026-02-01T00:00:00.123456Z".parse().unwrap();
        }),
    ];
    rows.sort_by_key(|row| row.addr);
    rows
}

#[tokio::test]
async fn dirty_rows_are_cleaned_and_counted_through_a_read_only_role() {
    let pg = common::pg::cluster().await;
    let db = pg.create_database().await;
    pg.create_reported_ips(&db).await;
    pg.admin(&db).await.execute(DIRTY_ROWS).await.unwrap();
    let reader_url = pg.create_readonly_role(&db).await;

    let source = PgSource::new(&settings(&reader_url), "reported_ips").unwrap();
    let (mut rows, tally, _) = stream_all(&source, 3).await;
    rows.sort_by_key(|row| row.addr);

    assert_eq!(rows, expected_rows());
    let skipped = BTreeMap::from([
        (SkipReason::EmptyAddress, 2),
        (SkipReason::InvalidAddress, 2),
        (SkipReason::Network, 1),
    ]);
    let repaired = BTreeMap::from([
        (Repair::Trimmed, 1),
        (Repair::HostCidr, 1),
        (Repair::Ipv4Mapped, 1),
        (Repair::Ipv6Canonicalised, 1),
        (Repair::ConfidenceMissing, 1),
        (Repair::ConfidenceNegative, 1),
        (Repair::ConfidenceAbove100, 1),
        (Repair::CategoriesMissing, 1),
        (Repair::CategoryDropped, 5),
        (Repair::ReportedAtFuture, 2),
        (Repair::CreatedAtMissing, 1),
        (Repair::ReportIdTruncated, 1),
    ]);
    let want = RowTally {
        read: 21,
        accepted: 16,
        skipped,
        repaired,
    };
    assert_eq!(tally, want);
}

#[tokio::test]
async fn the_read_only_role_cannot_write() {
    let pg = common::pg::cluster().await;
    let db = pg.create_database().await;
    pg.create_reported_ips(&db).await;
    let reader_url = pg.create_readonly_role(&db).await;

    let mut reader = PgConnection::connect(&reader_url).await.unwrap();
    let writes = [
        "INSERT INTO reported_ips (ip_address, reported_at) VALUES ('192.0.2.1', now())",
        "UPDATE reported_ips SET confidence = 1",
        "DELETE FROM reported_ips",
        "CREATE TABLE intruder (x int)",
    ];
    for sql in writes {
        let err = reader.execute(sql).await.unwrap_err();
        let code = err.as_database_error().and_then(|e| e.code()).unwrap();
        assert_eq!(code, "42501", "{sql}: {err}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reported_ips")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_large_table_streams_in_bounded_batches() {
    let pg = common::pg::cluster().await;
    let db = pg.create_database().await;
    pg.create_reported_ips(&db).await;
    let fill = "INSERT INTO reported_ips (ip_address, reported_at, categories, confidence)
        SELECT format('10.%s.%s.%s', i / 65536, (i / 256) % 256, i % 256),
               '2026-02-01T00:00:00Z', '[18]', 80
        FROM generate_series(1, 50000) AS i";
    pg.admin(&db).await.execute(fill).await.unwrap();
    let reader_url = pg.create_readonly_role(&db).await;
    let source = PgSource::new(&settings(&reader_url), "reported_ips").unwrap();

    let (rows, tally, sizes) = stream_all(&source, 1000).await;

    assert!(
        sizes.iter().all(|size| (1..=1000).contains(size)),
        "{sizes:?}"
    );
    assert_eq!(sizes.iter().sum::<usize>(), 50_000);
    assert_eq!(rows.len(), 50_000);
    assert_eq!(
        (tally.read, tally.accepted, tally.skipped_total()),
        (50_000, 50_000, 0)
    );
    assert_eq!(tally.repaired, BTreeMap::new());
}

#[tokio::test]
async fn a_closed_receiver_stops_the_stream() {
    let pg = common::pg::cluster().await;
    let db = pg.create_database().await;
    pg.create_reported_ips(&db).await;
    let fill = "INSERT INTO reported_ips (ip_address, reported_at)
        SELECT format('10.0.%s.%s', i / 256, i % 256), now() FROM generate_series(1, 5000) AS i";
    pg.admin(&db).await.execute(fill).await.unwrap();
    let source = PgSource::new(&settings(&pg.url(&db)), "reported_ips").unwrap();

    let (tx, mut rx) = mpsc::channel::<Vec<LocalRow>>(1);
    let receiver = tokio::spawn(async move { rx.recv().await.map(|batch| batch.len()) });
    let result = source.stream(rules(), 100, tx).await;

    assert!(matches!(result, Err(SourceError::Cancelled)), "{result:?}");
    assert_eq!(receiver.await.unwrap(), Some(100));
}

#[tokio::test]
async fn check_counts_rows_and_names_a_missing_column() {
    let pg = common::pg::cluster().await;
    let db = pg.create_database().await;
    pg.create_reported_ips(&db).await;
    let mut admin = pg.admin(&db).await;
    admin.execute(DIRTY_ROWS).await.unwrap();
    admin
        .execute(
            "CREATE TABLE no_confidence (
                ip_address varchar(45) PRIMARY KEY,
                reported_at timestamptz NOT NULL,
                report_id varchar(255),
                categories jsonb,
                created_at timestamptz DEFAULT now()
            )",
        )
        .await
        .unwrap();
    let reader_url = pg.create_readonly_role(&db).await;

    let source = PgSource::new(&settings(&reader_url), "public.reported_ips").unwrap();
    let check = source.check().await.unwrap();
    assert_eq!((check.kind, check.rows), ("postgresql", 21));
    assert!(
        check.target.ends_with("table=public.reported_ips"),
        "{}",
        check.target
    );

    let source = PgSource::new(&settings(&pg.url(&db)), "no_confidence").unwrap();
    match source.check().await {
        Err(SourceError::MissingColumn { table, column }) => {
            assert_eq!(
                (table.as_str(), column.as_str()),
                ("no_confidence", "confidence")
            );
        }
        other => panic!("expected a missing column, got {other:?}"),
    }

    let source = PgSource::new(&settings(&reader_url), "no_such_table").unwrap();
    let err = source.check().await.unwrap_err();
    assert!(matches!(err, SourceError::Query { .. }), "{err}");
    assert!(err.to_string().contains("no_such_table"), "{err}");
}

#[tokio::test]
async fn connection_errors_never_show_the_password() {
    let pg = common::pg::cluster().await;
    let url = pg.url_as("postgres", "hunter2-secret", "no_such_database");
    let source = PgSource::new(&settings(&url), "reported_ips").unwrap();
    assert!(
        !source.describe().contains("hunter2"),
        "{}",
        source.describe()
    );

    let (tx, _rx) = mpsc::channel(1);
    let err = source.stream(rules(), 10, tx).await.unwrap_err();

    let text = err.to_string();
    assert!(matches!(err, SourceError::Connect { .. }), "{text}");
    assert!(text.contains("no_such_database"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
