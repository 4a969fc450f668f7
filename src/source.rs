//! Local sources: where the team's own attack records come from, and the rules that turn each
//! dirty row into a clean [`LocalRow`] or a counted rejection.
//!
//! Two sources share one interface: the team's PostgreSQL table (read-only, streamed in a
//! read-only transaction) and an embedded SQLite file in the data directory that the CLI can
//! write to. A source pushes batches of clean rows into a bounded channel, so memory never
//! grows with the table; it returns a [`RowTally`] with every skip and repair counted by reason.

pub mod address;
pub mod categories;
pub mod clean;
pub mod postgres;
pub mod sqlite;

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::ioc::LocalFacts;

pub use clean::{Repair, SkipReason};

/// One row of `reported_ips` as stored, before any cleaning. Every column may be odd.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRow {
    pub ip_address: Option<String>,
    pub reported_at: Option<Timestamp>,
    pub report_id: Option<String>,
    /// The `categories` column as JSON text (whatever JSON it holds).
    pub categories: Option<String>,
    pub confidence: Option<i64>,
    pub created_at: Option<Timestamp>,
}

/// A usable row: a normalised address, its key and its cleaned facts. The key is computed
/// here, on the reading side, so the cycle's busier threads do not hash addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRow {
    pub addr: IpAddr,
    /// `IocKey::of(addr)`.
    pub key: crate::ioc::IocKey,
    pub facts: LocalFacts,
}

/// What one pass over a source saw: rows read, accepted, skipped and repaired by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RowTally {
    pub read: u64,
    pub accepted: u64,
    pub skipped: BTreeMap<SkipReason, u64>,
    pub repaired: BTreeMap<Repair, u64>,
}

impl RowTally {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn add_skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    pub fn add_repair(&mut self, repair: Repair) {
        *self.repaired.entry(repair).or_default() += 1;
    }

    /// `invalid_address=3 cidr=1`, for the one log line per cycle.
    pub fn skipped_summary(&self) -> String {
        summary(self.skipped.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    pub fn repaired_summary(&self) -> String {
        summary(self.repaired.iter().map(|(k, v)| (k.as_str(), *v)))
    }
}

fn summary<'a>(items: impl Iterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = items.map(|(k, v)| format!("{k}={v}")).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("reading table {table} failed: {reason}")]
    Query { table: String, reason: String },
    #[error("table {table} lacks column {column} (or the role cannot read it)")]
    MissingColumn { table: String, column: String },
    #[error("embedded source {path}: {reason}")]
    Embedded { path: String, reason: String },
    #[error("the cycle stopped reading (receiver closed)")]
    Cancelled,
    #[error("{0}")]
    Invalid(String),
}

/// What `check-config` and health report about a source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCheck {
    pub kind: &'static str,
    pub target: String,
    pub rows: u64,
}

/// The configured local source.
pub enum LocalSource {
    Postgres(postgres::PgSource),
    Embedded(sqlite::EmbeddedSource),
}

impl LocalSource {
    /// PostgreSQL when configured, else the embedded SQLite file (created on first use).
    /// Opening PostgreSQL is lazy: an unreachable server is reported by the first cycle, not
    /// here, so the appliance still starts and serves its last snapshot.
    ///
    /// # Errors
    /// [`SourceError::Embedded`] when the SQLite file cannot be created or opened.
    pub fn open(settings: &Settings) -> Result<LocalSource, SourceError> {
        match &settings.source.postgres {
            Some(pg) => Ok(LocalSource::Postgres(postgres::PgSource::new(
                pg,
                &settings.source.table,
            )?)),
            None => Ok(LocalSource::Embedded(sqlite::EmbeddedSource::open(
                &settings.sqlite_path(),
            )?)),
        }
    }

    /// Streams every row, cleaned, in batches of at most `batch_size` into `tx`.
    ///
    /// # Errors
    /// Connection or query failures; a dirty row is never an error, it is counted.
    pub async fn stream(
        &self,
        rules: clean::Rules,
        batch_size: usize,
        tx: mpsc::Sender<Vec<LocalRow>>,
    ) -> Result<RowTally, SourceError> {
        match self {
            LocalSource::Postgres(pg) => pg.stream(rules, batch_size, tx).await,
            LocalSource::Embedded(db) => db.stream(rules, batch_size, tx).await,
        }
    }

    /// A read-only probe: connects, checks the columns, counts rows.
    ///
    /// # Errors
    /// As [`LocalSource::stream`], plus [`SourceError::MissingColumn`].
    pub async fn check(&self) -> Result<SourceCheck, SourceError> {
        match self {
            LocalSource::Postgres(pg) => pg.check().await,
            LocalSource::Embedded(db) => db.check().await,
        }
    }

    /// Where the rows come from, without secrets.
    pub fn describe(&self) -> String {
        match self {
            LocalSource::Postgres(pg) => pg.describe(),
            LocalSource::Embedded(db) => db.describe(),
        }
    }
}
