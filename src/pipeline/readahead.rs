//! The read-ahead stage of a cycle: a thread between the source and the snapshot writer
//! that names each row's IOC key and reads what the writer will need about it (stored
//! prefix, and the enrichment values when the prefix alone cannot settle the row).
//!
//! The writer is the one thread that must do everything in order; every lookup moved here
//! runs on the other core. The answers come from a read transaction opened after the write
//! transaction began, so for any key the cycle has not written yet they equal what the
//! writer would read itself. Keys it has written (a second spelling of an address) are
//! recognised by the writer, which then reads them again.

use std::net::IpAddr;
use std::sync::mpsc::SyncSender;

use ipnet::IpNet;
use tokio::sync::mpsc;

use super::cycle::local_fingerprint;
use crate::ioc::{IocKey, LocalFacts};
use crate::source::LocalRow;
use crate::store::tables::RecordPrefix;
use crate::store::{EnrichmentBytes, Lookahead, StoreError};

/// A source row with its key and what the committed state says about that key.
pub struct Prepared {
    pub addr: IpAddr,
    pub local: LocalFacts,
    pub key: IocKey,
    pub prefix: Option<RecordPrefix>,
    /// [`local_fingerprint`] of this row's facts.
    pub local_hash: u64,
    /// Read only when the prefix cannot settle the row by itself.
    pub enrichment: Option<EnrichmentBytes>,
}

/// The rules the read-ahead applies before the writer sees a row.
pub struct ReadAhead {
    pub settings_hash: u64,
    pub exclude: Vec<IpNet>,
}

impl ReadAhead {
    /// Prepares every batch from `rows` and hands it to `out`, until the source ends or the
    /// writer stops listening. Returns how many rows `EXCLUDE_NETWORKS` dropped.
    ///
    /// # Errors
    /// Storage failures.
    pub fn run(
        &self,
        ahead: &Lookahead,
        mut rows: mpsc::Receiver<Vec<LocalRow>>,
        out: SyncSender<Vec<Prepared>>,
    ) -> Result<u64, StoreError> {
        let mut excluded = 0;
        while let Some(mut batch) = rows.blocking_recv() {
            let before = batch.len();
            batch.retain(|row| !self.exclude.iter().any(|net| net.contains(&row.addr)));
            excluded += (before - batch.len()) as u64;
            let prepared = batch
                .into_iter()
                .map(|row| self.prepare(ahead, row))
                .collect::<Result<Vec<_>, _>>()?;
            if out.send(prepared).is_err() {
                break;
            }
        }
        Ok(excluded)
    }

    fn prepare(&self, ahead: &Lookahead, row: LocalRow) -> Result<Prepared, StoreError> {
        let key = row.key;
        let prefix = ahead.prefix(key)?;
        let local_hash = local_fingerprint(self.settings_hash, Some(&row.facts));
        let settles = prefix.is_some_and(|p| p.local_hash == local_hash) && !ahead.enriched(key);
        let enrichment = if settles {
            None
        } else {
            Some(ahead.enrichment(key)?)
        };
        Ok(Prepared {
            addr: row.addr,
            local: row.facts,
            key,
            prefix,
            local_hash,
            enrichment,
        })
    }
}
