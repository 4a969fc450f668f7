//! The embedded SQLite source: the CLI writers (`report`, `import`) and reading back.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use abuseipdb_ioc::source::clean::Rules;
use abuseipdb_ioc::source::sqlite::EmbeddedSource;
use abuseipdb_ioc::source::{LocalRow, Repair, RowTally, SkipReason, SourceError};
use jiff::Timestamp;
use tokio::sync::mpsc;

const NOW: &str = "2026-03-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn rules() -> Rules {
    Rules {
        now: now(),
        default_confidence: 75,
    }
}

/// A source in a fresh directory (a nested one, to show it is created).
fn fresh() -> (tempfile::TempDir, PathBuf, EmbeddedSource) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/nested/reported_ips.sqlite3");
    let source = EmbeddedSource::open(&path).unwrap();
    (dir, path, source)
}

async fn stream_all(source: &EmbeddedSource, batch_size: usize) -> (Vec<LocalRow>, RowTally) {
    let (tx, mut rx) = mpsc::channel::<Vec<LocalRow>>(2);
    let receiver = tokio::spawn(async move {
        let mut rows = Vec::new();
        while let Some(batch) = rx.recv().await {
            assert!(batch.len() <= batch_size);
            rows.extend(batch);
        }
        rows
    });
    let tally = source.stream(rules(), batch_size, tx).await.unwrap();
    let mut rows = receiver.await.unwrap();
    rows.sort_by_key(|row| row.addr);
    (rows, tally)
}

fn by_addr(rows: &[LocalRow]) -> BTreeMap<String, &LocalRow> {
    rows.iter().map(|row| (row.addr.to_string(), row)).collect()
}

#[tokio::test]
async fn reported_and_imported_rows_stream_back() {
    let (_dir, path, source) = fresh();
    assert!(path.exists());
    assert_eq!(
        source.describe(),
        format!("embedded sqlite {}", path.display())
    );

    let at: Timestamp = "2026-02-10T08:00:00Z".parse().unwrap();
    let addr = source
        .report(" 2001:DB8::5 ", Some(90), &[22, 18], Some("case-7"), at)
        .unwrap();
    assert_eq!(addr, "2001:db8::5".parse::<IpAddr>().unwrap());
    source
        .report("::ffff:192.0.2.8", None, &[], None, at)
        .unwrap();

    let csv = "ip_address,reported_at,confidence,categories,report_id\n\
               198.51.100.1,2026-02-01T00:00:00Z,85,\"18,22\",ticket-1\n\
               198.51.100.2,,,[4],\n\
               198.51.100.3\n";
    let tally = source.import_csv(csv.as_bytes(), now()).unwrap();
    assert_eq!((tally.imported, tally.rejected), (3, 0), "{tally:?}");

    let (rows, tally) = stream_all(&source, 2).await;
    assert_eq!((tally.read, tally.accepted), (5, 5));
    assert_eq!(
        tally.repaired,
        BTreeMap::from([(Repair::ConfidenceMissing, 3)]),
        "NULL confidence is the only thing left to repair"
    );
    assert_eq!(source.check().await.unwrap().rows, 5);

    let rows = by_addr(&rows);
    let reported = &rows["2001:db8::5"].facts;
    assert_eq!(
        (reported.confidence, reported.categories.clone()),
        (90, vec![18, 22])
    );
    assert_eq!(reported.report_id.as_deref(), Some("case-7"));
    assert_eq!((reported.reported_at, reported.created_at), (at, at));
    assert_eq!(rows["192.0.2.8"].facts.confidence, 75);

    let imported = &rows["198.51.100.1"].facts;
    assert_eq!(imported.categories, vec![18, 22]);
    assert_eq!(imported.confidence, 85);
    assert_eq!(imported.report_id.as_deref(), Some("ticket-1"));
    assert_eq!(
        imported.reported_at,
        "2026-02-01T00:00:00Z".parse().unwrap()
    );
    assert_eq!(imported.created_at, now());
    assert_eq!(rows["198.51.100.2"].facts.categories, vec![4]);
    assert_eq!(rows["198.51.100.3"].facts.reported_at, now());
}

#[tokio::test]
async fn a_later_report_updates_the_row() {
    let (_dir, _path, source) = fresh();
    let first: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let second: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
    source
        .report("203.0.113.4", Some(60), &[4], Some("first"), first)
        .unwrap();
    source
        .report("203.0.113.4/32", Some(95), &[18], None, second)
        .unwrap();

    let (rows, _) = stream_all(&source, 10).await;
    assert_eq!(rows.len(), 1);
    let facts = &rows[0].facts;
    assert_eq!((facts.confidence, facts.categories.clone()), (95, vec![18]));
    assert_eq!((facts.reported_at, facts.created_at), (second, first));
    assert_eq!(
        facts.report_id.as_deref(),
        Some("first"),
        "kept when none is given"
    );

    let csv = "ip_address,confidence,report_id\n203.0.113.4,40,from-csv\n203.0.113.4,41,\n";
    assert_eq!(
        source.import_csv(csv.as_bytes(), now()).unwrap().imported,
        2
    );
    let (rows, _) = stream_all(&source, 10).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].facts.confidence, 41,
        "the last line of the file wins"
    );
    assert_eq!(rows[0].facts.report_id.as_deref(), Some("from-csv"));
}

#[test]
fn report_refuses_what_is_not_one_address_or_in_range() {
    let (_dir, _path, source) = fresh();
    let refused = [
        source.report("10.0.0.0/8", None, &[], None, now()),
        source.report("not-an-ip", None, &[], None, now()),
        source.report("", None, &[], None, now()),
        source.report("192.0.2.1", Some(101), &[], None, now()),
        source.report("192.0.2.1", Some(-1), &[], None, now()),
        source.report("192.0.2.1", None, &[24], None, now()),
        source.report("192.0.2.1", None, &[], Some("a\nb"), now()),
    ];
    for result in refused {
        assert!(matches!(result, Err(SourceError::Invalid(_))), "{result:?}");
    }
    let network = source
        .report("10.0.0.0/8", None, &[], None, now())
        .unwrap_err();
    assert!(network.to_string().contains("network"), "{network}");
}

#[test]
fn bad_csv_lines_are_counted_with_their_line_numbers() {
    let (_dir, _path, source) = fresh();
    let csv = "Report_ID, IP_Address ,confidence,categories,reported_at,note\n\
               r1,198.51.100.10,80,18,2026-02-01T00:00:00Z,extra columns are ignored\n\
               r2,10.0.0.0/8,80,18,,\n\
               r3,999.1.1.1,80,18,,\n\
               r4,198.51.100.11,150,18,,\n\
               r5,198.51.100.12,high,18,,\n\
               r6,198.51.100.13,80,\"18,99\",,\n\
               r7,198.51.100.14,80,18,yesterday,\n\
               r8\n\
               r9,198.51.100.15,80,\"[18, \"\"ssh\"\"]\",2026-02-01T10:00:00+02:00\n";
    let tally = source.import_csv(csv.as_bytes(), now()).unwrap();

    assert_eq!((tally.imported, tally.rejected), (2, 7), "{tally:?}");
    let lines: Vec<u64> = tally.errors.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9]);
    let reasons: Vec<&str> = tally
        .errors
        .iter()
        .map(|(_, reason)| reason.as_str())
        .collect();
    let expected = [
        "is a network",
        "is not an IP address",
        "outside 0-100",
        "not a whole number",
        "categories \"18,99\"",
        "not an RFC 3339 timestamp",
        "ip_address \"\" is empty",
    ];
    for (reason, want) in reasons.iter().zip(expected) {
        assert!(reason.contains(want), "{reason:?} should contain {want:?}");
    }
    assert_eq!(source_count(&source), 2);
}

#[test]
fn only_the_first_errors_are_kept() {
    let (_dir, _path, source) = fresh();
    let mut csv = String::from("ip_address\n");
    for i in 0..30 {
        csv.push_str(&format!("bad-{i}\n"));
    }
    csv.push_str("198.51.100.1\n");
    let tally = source.import_csv(csv.as_bytes(), now()).unwrap();
    assert_eq!(
        (tally.imported, tally.rejected, tally.errors.len()),
        (1, 30, 20)
    );
    assert_eq!(tally.errors[0].0, 2);
}

#[test]
fn a_csv_without_an_address_column_is_refused() {
    let (_dir, _path, source) = fresh();
    let err = source
        .import_csv("ip,confidence\n1.2.3.4,80\n".as_bytes(), now())
        .unwrap_err();
    assert!(matches!(err, SourceError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("no ip_address column"), "{err}");
    assert!(source.import_csv("".as_bytes(), now()).is_err());
    assert_eq!(source_count(&source), 0);
}

#[tokio::test]
async fn hand_made_files_follow_the_cleaning_rules() {
    // A file made by hand (or by an older tool) keeps its own, looser table: SQLite enforces
    // neither NOT NULL here nor any column type.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reported_ips.sqlite3");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE reported_ips (ip_address, reported_at, report_id, categories, confidence,
            created_at);
         INSERT INTO reported_ips VALUES
            ('192.0.2.1', '2026-02-01T00:00:00Z', NULL, 'not json', 'high', NULL),
            ('192.0.2.2', '2026-02-01 00:00:00', 7, '[18]', 250.4, 1767225600),
            ('192.0.2.3', 'sometime', NULL, '[18]', 80, NULL),
            ('192.0.2.4', NULL, NULL, '[18]', 80, NULL),
            ('{}', '2026-02-01T00:00:00Z', NULL, '[18]', 80, NULL),
            (NULL, '2026-02-01T00:00:00Z', NULL, '[18]', 80, NULL);",
        "9".repeat(101)
    ))
    .unwrap();
    drop(conn);
    let source = EmbeddedSource::open(&path).unwrap();

    let (rows, tally) = stream_all(&source, 10).await;

    let skipped = BTreeMap::from([
        (SkipReason::EmptyAddress, 1),
        (SkipReason::TooLong, 1),
        (SkipReason::MissingReportedAt, 2),
    ]);
    assert_eq!(tally.skipped, skipped);
    assert_eq!((tally.read, tally.accepted), (6, 2));
    let repaired = BTreeMap::from([
        (Repair::CategoriesUnparsable, 1),
        (Repair::ConfidenceMissing, 1),
        (Repair::ConfidenceAbove100, 1),
        (Repair::CreatedAtMissing, 1),
    ]);
    assert_eq!(tally.repaired, repaired);

    let rows = by_addr(&rows);
    let first = &rows["192.0.2.1"].facts;
    assert_eq!((first.confidence, first.categories.len()), (75, 0));
    let second = &rows["192.0.2.2"].facts;
    assert_eq!(
        (second.confidence, second.report_id.as_deref()),
        (100, Some("7"))
    );
    assert_eq!(second.reported_at, "2026-02-01T00:00:00Z".parse().unwrap());
    assert_eq!(second.created_at, "2026-01-01T00:00:00Z".parse().unwrap());
}

#[test]
fn reopening_keeps_the_rows() {
    let (_dir, path, source) = fresh();
    source
        .report("192.0.2.9", Some(80), &[14], None, now())
        .unwrap();
    drop(source);
    let again = EmbeddedSource::open(&path).unwrap();
    assert_eq!(source_count(&again), 1);
}

fn source_count(source: &EmbeddedSource) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(source.check()).unwrap().rows
}
