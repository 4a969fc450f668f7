//! The cleaning rules: one function that turns a [`RawRow`] into a [`LocalRow`] or a
//! [`SkipReason`], recording every repair it made. (Stub: being written.)

use jiff::Timestamp;
use serde::Serialize;

use super::{LocalRow, RawRow, RowTally};

/// Inputs of the rules that come from configuration and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Rows reported after this instant are clamped to it.
    pub now: Timestamp,
    /// Confidence used when the column is NULL.
    pub default_confidence: u8,
}

/// Why a row was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    EmptyAddress,
    InvalidAddress,
    Network,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::EmptyAddress => "empty_address",
            SkipReason::InvalidAddress => "invalid_address",
            SkipReason::Network => "network",
        }
    }
}

/// A repair made to a row that was still used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Repair {
    Trimmed,
}

impl Repair {
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::Trimmed => "trimmed",
        }
    }
}

/// Cleans one row, counting what happened in `tally`.
pub fn clean_row(raw: RawRow, rules: &Rules, tally: &mut RowTally) -> Option<LocalRow> {
    let _ = (raw, rules, tally);
    todo!()
}
