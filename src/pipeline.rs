//! The pipeline: merges local rows with AbuseIPDB and geolocation data, scores them, and
//! publishes the result as one snapshot per refresh cycle. [`worker`] runs cycles on a
//! schedule; [`cycle::Pipeline`] runs one on demand.

pub mod cycle;
pub mod readahead;
pub mod score;
pub mod worker;

pub use cycle::{Candidates, CycleError, Enricher, Pipeline};
