//! PostgreSQL source (read-only, streamed). (Stub: being written.)

use tokio::sync::mpsc;

use super::clean::Rules;
use super::{LocalRow, RowTally, SourceCheck, SourceError};
use crate::config::PostgresSettings;

pub struct PgSource {}

impl PgSource {
    pub fn new(settings: &PostgresSettings, table: &str) -> Result<PgSource, SourceError> {
        let _ = (settings, table);
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
