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
