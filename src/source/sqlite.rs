//! The embedded source: `reported_ips` in a SQLite file in the data directory.
//!
//! This module owns that file. It is created on first start, so the appliance works without
//! any PostgreSQL, and it is the one source the appliance writes to: the CLI adds rows with
//! [`EmbeddedSource::report`] and [`EmbeddedSource::import_csv`]. Reading applies the same
//! cleaning rules as PostgreSQL, because the file may be edited by hand and hold anything
//! (SQLite does not enforce column types).
//!
//! Timestamps are stored as RFC 3339 text. Reading also accepts SQLite's own
//! `YYYY-MM-DD HH:MM:SS` (UTC, what `CURRENT_TIMESTAMP` writes) and integer Unix seconds.
//! Every call opens its own connection: the file is in WAL mode, so the CLI can write while
//! the server reads.

use std::fmt::Display;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::clean::{self, MAX_REPORT_ID_CHARS, Rules};
use super::{LocalRow, RawRow, RowTally, SkipReason, SourceCheck, SourceError};
use super::{address, categories};

const SCHEMA: &str = "PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS reported_ips (
    ip_address TEXT PRIMARY KEY,
    reported_at TEXT NOT NULL,
    report_id TEXT,
    categories TEXT,
    confidence INTEGER,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP
);";

const SELECT: &str = "SELECT ip_address, reported_at, report_id, categories, confidence, \
                      created_at FROM reported_ips";

/// A later report of a known address replaces its time, confidence and categories; the
/// creation time stays, and the report id only changes when a new one is given.
const UPSERT: &str = "INSERT INTO reported_ips
    (ip_address, reported_at, report_id, categories, confidence, created_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT (ip_address) DO UPDATE SET
        reported_at = excluded.reported_at,
        confidence = excluded.confidence,
        categories = excluded.categories,
        report_id = coalesce(excluded.report_id, reported_ips.report_id)";

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many rejected CSV lines are kept with their reason.
pub const MAX_IMPORT_ERRORS: usize = 20;

/// The embedded `reported_ips` table.
#[derive(Debug, Clone)]
pub struct EmbeddedSource {
    path: PathBuf,
}

/// What [`EmbeddedSource::import_csv`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportTally {
    /// Lines written (inserted or updated).
    pub imported: u64,
    /// Lines refused.
    pub rejected: u64,
    /// The first [`MAX_IMPORT_ERRORS`] refused lines: (line number, reason).
    pub errors: Vec<(u64, String)>,
}

/// One validated row to write.
struct Entry {
    addr: IpAddr,
    reported_at: Timestamp,
    confidence: Option<i64>,
    /// Normalised JSON array of ids and tags.
    categories: String,
    report_id: Option<String>,
}

impl EmbeddedSource {
    /// Opens the file, creating it, its directory and the table when missing.
    ///
    /// # Errors
    /// [`SourceError::Embedded`] when the directory or file cannot be created or opened.
    pub fn open(path: &Path) -> Result<EmbeddedSource, SourceError> {
        let source = EmbeddedSource {
            path: path.to_path_buf(),
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| source.error(err))?;
        }
        let conn = source.connect()?;
        conn.execute_batch(SCHEMA)
            .map_err(|err| source.error(err))?;
        Ok(source)
    }

    /// Streams every row, cleaned, in batches of at most `batch_size` into `tx`. The read
    /// runs on a blocking thread with its own connection.
    ///
    /// # Errors
    /// [`SourceError::Embedded`] when the file cannot be read; [`SourceError::Cancelled`]
    /// when the receiver is dropped. A dirty row is never an error.
    pub async fn stream(
        &self,
        rules: Rules,
        batch_size: usize,
        tx: mpsc::Sender<Vec<LocalRow>>,
    ) -> Result<RowTally, SourceError> {
        let reader = self.clone();
        tokio::task::spawn_blocking(move || reader.read_all(rules, batch_size.max(1), &tx))
            .await
            .map_err(|err| self.error(err))?
    }

    fn read_all(
        &self,
        rules: Rules,
        batch_size: usize,
        tx: &mpsc::Sender<Vec<LocalRow>>,
    ) -> Result<RowTally, SourceError> {
        let conn = self.connect()?;
        let mut stmt = conn.prepare(SELECT).map_err(|err| self.error(err))?;
        let mut rows = stmt.query([]).map_err(|err| self.error(err))?;
        let mut tally = RowTally::default();
        let mut batch = Vec::with_capacity(batch_size);
        while let Some(row) = rows.next().map_err(|err| self.error(err))? {
            let Ok(raw) = raw_row(row) else {
                clean::count_unreadable(&mut tally);
                continue;
            };
            batch.extend(clean::clean_row(raw, &rules, &mut tally));
            if batch.len() >= batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                tx.blocking_send(full).map_err(|_| SourceError::Cancelled)?;
            }
        }
        if !batch.is_empty() {
            tx.blocking_send(batch)
                .map_err(|_| SourceError::Cancelled)?;
        }
        Ok(tally)
    }

    /// Counts the rows.
    ///
    /// # Errors
    /// [`SourceError::Embedded`] when the file cannot be read.
    pub async fn check(&self) -> Result<SourceCheck, SourceError> {
        let reader = self.clone();
        let rows = tokio::task::spawn_blocking(move || reader.count())
            .await
            .map_err(|err| self.error(err))??;
        Ok(SourceCheck {
            kind: "embedded",
            target: self.describe(),
            rows,
        })
    }

    fn count(&self) -> Result<u64, SourceError> {
        let conn = self.connect()?;
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM reported_ips", [], |row| row.get(0))
            .map_err(|err| self.error(err))?;
        Ok(u64::try_from(rows).unwrap_or(0))
    }

    /// `embedded sqlite <path>`.
    pub fn describe(&self) -> String {
        format!("embedded sqlite {}", self.path.display())
    }

    /// Records one attack (the CLI's `report`). The address is normalised first; an existing
    /// row gets the new time, confidence and categories. Blocking.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for a network, an unparsable address, a confidence outside
    /// 0–100, a category outside 1–23 or an unusable report id; [`SourceError::Embedded`]
    /// when the file cannot be written.
    pub fn report(
        &self,
        ip: &str,
        confidence: Option<i64>,
        categories: &[u8],
        report_id: Option<&str>,
        at: Timestamp,
    ) -> Result<IpAddr, SourceError> {
        let entry = Entry {
            addr: parse_address(ip).map_err(SourceError::Invalid)?,
            reported_at: at,
            confidence: check_confidence(confidence).map_err(SourceError::Invalid)?,
            categories: category_ids_json(categories).map_err(SourceError::Invalid)?,
            report_id: check_report_id(report_id).map_err(SourceError::Invalid)?,
        };
        let conn = self.connect()?;
        upsert(&conn, &entry, at).map_err(|err| self.error(err))?;
        Ok(entry.addr)
    }

    /// Imports a CSV file (the CLI's `import`). The header row names the columns:
    /// `ip_address` (required), `reported_at` (RFC 3339, default `now`), `confidence`
    /// (0–100), `categories` (`18,22` or a JSON array) and `report_id`, in any order; other
    /// columns are ignored. Every line is validated; the good ones are written in one
    /// transaction and the bad ones counted with their line number and reason. Blocking.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] when the file has no `ip_address` column or cannot be read;
    /// [`SourceError::Embedded`] when the database cannot be written (nothing is written then).
    pub fn import_csv(
        &self,
        reader: impl std::io::Read,
        now: Timestamp,
    ) -> Result<ImportTally, SourceError> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let columns = Columns::find(&mut csv)?;

        let mut tally = ImportTally::default();
        let mut entries = Vec::new();
        for record in csv.records() {
            match record {
                Ok(record) => match columns.entry(&record, now) {
                    Ok(entry) => entries.push(entry),
                    Err(reason) => tally.reject(line_of(record.position()), reason),
                },
                Err(err) if matches!(err.kind(), csv::ErrorKind::Io(_)) => {
                    return Err(SourceError::Invalid(format!(
                        "reading the CSV file failed: {err}"
                    )));
                }
                Err(err) => tally.reject(line_of(err.position()), err.to_string()),
            }
        }
        self.write_all(&entries, now)?;
        tally.imported = entries.len() as u64;
        Ok(tally)
    }

    fn write_all(&self, entries: &[Entry], now: Timestamp) -> Result<(), SourceError> {
        let mut conn = self.connect()?;
        let txn = conn.transaction().map_err(|err| self.error(err))?;
        for entry in entries {
            upsert(&txn, entry, now).map_err(|err| self.error(err))?;
        }
        txn.commit().map_err(|err| self.error(err))
    }

    fn connect(&self) -> Result<Connection, SourceError> {
        let conn = Connection::open(&self.path).map_err(|err| self.error(err))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|err| self.error(err))?;
        Ok(conn)
    }

    fn error(&self, err: impl Display) -> SourceError {
        SourceError::Embedded {
            path: self.path.display().to_string(),
            reason: err.to_string(),
        }
    }
}

impl ImportTally {
    fn reject(&mut self, line: u64, reason: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_IMPORT_ERRORS {
            self.errors.push((line, reason));
        }
    }
}

/// Where each known column sits in the CSV records.
struct Columns {
    ip_address: usize,
    reported_at: Option<usize>,
    confidence: Option<usize>,
    categories: Option<usize>,
    report_id: Option<usize>,
}

impl Columns {
    fn find<R: std::io::Read>(csv: &mut csv::Reader<R>) -> Result<Columns, SourceError> {
        let header = csv
            .headers()
            .map_err(|err| SourceError::Invalid(format!("reading the CSV header failed: {err}")))?;
        let names: Vec<String> = header
            .iter()
            .map(|name| name.to_ascii_lowercase())
            .collect();
        let position = |wanted: &str| names.iter().position(|name| name == wanted);
        let Some(ip_address) = position("ip_address") else {
            return Err(SourceError::Invalid(format!(
                "the CSV file has no ip_address column (header: {:?}); expected a header row \
                 with ip_address and optionally reported_at, confidence, categories, report_id",
                names.join(",")
            )));
        };
        Ok(Columns {
            ip_address,
            reported_at: position("reported_at"),
            confidence: position("confidence"),
            categories: position("categories"),
            report_id: position("report_id"),
        })
    }

    fn entry(&self, record: &csv::StringRecord, now: Timestamp) -> Result<Entry, String> {
        let field = |index: Option<usize>| {
            index
                .and_then(|i| record.get(i))
                .filter(|text| !text.is_empty())
        };
        let confidence = match field(self.confidence) {
            None => None,
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|_| format!("confidence {text:?} is not a whole number"))?,
            ),
        };
        Ok(Entry {
            addr: parse_address(field(Some(self.ip_address)).unwrap_or(""))?,
            reported_at: field(self.reported_at).map_or(Ok(now), parse_reported_at)?,
            confidence: check_confidence(confidence)?,
            categories: field(self.categories).map_or(Ok("[]".into()), categories_json)?,
            report_id: check_report_id(field(self.report_id))?,
        })
    }
}

fn line_of(position: Option<&csv::Position>) -> u64 {
    position.map_or(0, csv::Position::line)
}

fn parse_address(text: &str) -> Result<IpAddr, String> {
    address::normalise(text)
        .map(|(addr, _)| addr)
        .map_err(|reason| {
            let problem = match reason {
                SkipReason::EmptyAddress => "is empty",
                SkipReason::TooLong => "is too long",
                SkipReason::Network => "is a network, not one address",
                _ => "is not an IP address",
            };
            format!("ip_address {text:?} {problem}")
        })
}

fn parse_reported_at(text: &str) -> Result<Timestamp, String> {
    text.parse()
        .map_err(|_| format!("reported_at {text:?} is not an RFC 3339 timestamp"))
}

fn check_confidence(confidence: Option<i64>) -> Result<Option<i64>, String> {
    match confidence {
        Some(value) if !(0..=100).contains(&value) => {
            Err(format!("confidence {value} is outside 0-100"))
        }
        _ => Ok(confidence),
    }
}

fn check_report_id(id: Option<&str>) -> Result<Option<String>, String> {
    let Some(id) = id else { return Ok(None) };
    if id.chars().count() > MAX_REPORT_ID_CHARS || id.chars().any(char::is_control) {
        return Err(format!(
            "report_id must be at most {MAX_REPORT_ID_CHARS} characters without control characters"
        ));
    }
    Ok((!id.is_empty()).then(|| id.to_string()))
}

fn category_ids_json(ids: &[u8]) -> Result<String, String> {
    match ids.iter().find(|id| categories::name(**id).is_none()) {
        Some(bad) => Err(format!(
            "category {bad} is not an AbuseIPDB category (1-23)"
        )),
        None => Ok(categories_array(ids, &[])),
    }
}

/// `18,22`, `ssh` or a JSON array → the normalised JSON array; any unusable entry refuses
/// the line rather than silently dropping part of what the operator wrote.
fn categories_json(text: &str) -> Result<String, String> {
    let json = if text.starts_with(['[', '{']) {
        text.to_string()
    } else {
        Value::String(text.to_string()).to_string()
    };
    let (ids, tags, repairs) = categories::parse(Some(&json));
    if !repairs.is_empty() {
        return Err(format!(
            "categories {text:?}: expected AbuseIPDB ids 1-23 or tags (such as 18,22)"
        ));
    }
    Ok(categories_array(&ids, &tags))
}

fn categories_array(ids: &[u8], tags: &[String]) -> String {
    let ids = ids.iter().map(|id| Value::from(*id));
    let tags = tags.iter().map(|tag| Value::from(tag.as_str()));
    Value::Array(ids.chain(tags).collect()).to_string()
}

fn upsert(conn: &Connection, entry: &Entry, created_at: Timestamp) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(UPSERT)?;
    stmt.execute((
        entry.addr.to_string(),
        entry.reported_at.to_string(),
        entry.report_id.as_deref(),
        entry.categories.as_str(),
        entry.confidence,
        created_at.to_string(),
    ))?;
    Ok(())
}

fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        ip_address: text_of(row.get_ref(0)?),
        reported_at: time_of(row.get_ref(1)?),
        report_id: text_of(row.get_ref(2)?),
        categories: text_of(row.get_ref(3)?),
        confidence: int_of(row.get_ref(4)?),
        created_at: time_of(row.get_ref(5)?),
    })
}

/// Any stored value as text; SQLite columns hold whatever type was written.
fn text_of(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// An integer, a real (rounded, saturating) or integer text; anything else counts as NULL.
fn int_of(value: ValueRef<'_>) -> Option<i64> {
    match value {
        ValueRef::Integer(i) => Some(i),
        // `as` saturates at the ends of i64, which the clamping rules then handle.
        ValueRef::Real(f) if f.is_finite() => Some(f.round() as i64),
        ValueRef::Text(text) => std::str::from_utf8(text).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// RFC 3339 text, SQLite's `YYYY-MM-DD HH:MM:SS` (UTC) or Unix seconds.
fn time_of(value: ValueRef<'_>) -> Option<Timestamp> {
    if let ValueRef::Integer(seconds) = value {
        return Timestamp::from_second(seconds).ok();
    }
    let text = text_of(value)?;
    let text = text.trim();
    text.parse::<Timestamp>().ok().or_else(|| {
        let civil: DateTime = text.parse().ok()?;
        TimeZone::UTC.to_timestamp(civil).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_read_in_every_stored_form() {
        let at: Timestamp = "2026-02-03T04:05:06Z".parse().unwrap();
        assert_eq!(time_of(ValueRef::Text(b"2026-02-03T04:05:06Z")), Some(at));
        assert_eq!(
            time_of(ValueRef::Text(b"2026-02-03T05:05:06+01:00")),
            Some(at)
        );
        assert_eq!(time_of(ValueRef::Text(b"2026-02-03 04:05:06")), Some(at));
        assert_eq!(time_of(ValueRef::Integer(at.as_second())), Some(at));
        assert_eq!(time_of(ValueRef::Text(b"yesterday")), None);
        assert_eq!(time_of(ValueRef::Null), None);
    }

    #[test]
    fn confidence_is_read_from_any_numeric_form() {
        assert_eq!(int_of(ValueRef::Integer(90)), Some(90));
        assert_eq!(int_of(ValueRef::Real(89.6)), Some(90));
        assert_eq!(int_of(ValueRef::Real(f64::NAN)), None);
        assert_eq!(int_of(ValueRef::Text(b" 42 ")), Some(42));
        assert_eq!(int_of(ValueRef::Text(b"high")), None);
    }

    #[test]
    fn csv_categories_are_normalised_or_refused() {
        assert_eq!(categories_json("22,18").unwrap(), "[18,22]");
        assert_eq!(categories_json("[4, \"SSH\"]").unwrap(), r#"[4,"ssh"]"#);
        assert_eq!(categories_json("honeypot").unwrap(), r#"["honeypot"]"#);
        assert!(categories_json("18,99").is_err());
        assert!(categories_json("[1,").is_err());
    }
}

