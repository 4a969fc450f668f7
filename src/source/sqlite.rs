//! Embedded SQLite source. (Stub: being written.)

use std::path::Path;

use tokio::sync::mpsc;

use super::clean::Rules;
use super::{LocalRow, RowTally, SourceCheck, SourceError};

pub struct EmbeddedSource {}

impl EmbeddedSource {
    pub fn open(path: &Path) -> Result<EmbeddedSource, SourceError> {
        let _ = path;
        todo!()
    }

    pub async fn stream(
        &self,
        rules: Rules,
        batch_size: usize,
        tx: mpsc::Sender<Vec<LocalRow>>,
    ) -> Result<RowTally, SourceError> {
        let _ = (rules, batch_size, tx);
        todo!()
    }

    pub async fn check(&self) -> Result<SourceCheck, SourceError> {
        todo!()
    }

    pub fn describe(&self) -> String {
        todo!()
    }
}

/// Outcome of a CSV import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportTally {
    pub imported: u64,
    pub rejected: u64,
    pub errors: Vec<(u64, String)>,
}

impl EmbeddedSource {
    pub fn report(
        &self,
        ip: &str,
        confidence: Option<i64>,
        categories: &[u8],
        report_id: Option<&str>,
        at: jiff::Timestamp,
    ) -> Result<std::net::IpAddr, SourceError> {
        let _ = (ip, confidence, categories, report_id, at);
        todo!()
    }

    pub fn import_csv(
        &self,
        reader: impl std::io::Read,
        now: jiff::Timestamp,
    ) -> Result<ImportTally, SourceError> {
        let _ = (reader, now);
        todo!()
    }
}
