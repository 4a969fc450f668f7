//! The refresh worker: a cycle at start (unless `AUTO_START_PROCESSING` is off), then one
//! every `IOC_PROCESSING_INTERVAL`, plus one whenever the file `DATA_DIR/refresh.request`
//! appears, until shutdown. Cycles never overlap: the pipeline refuses a second one while
//! one runs.
//!
//! The request file lets the local CLI (`preprocess`) ask a running server for a refresh
//! when no API key is configured (the HTTP refresh endpoint always needs one): whoever may
//! write to the data directory may ask, which is the same trust as running the CLI there.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Pipeline;

/// Name of the request file in the data directory.
pub const REFRESH_REQUEST: &str = "refresh.request";

/// How often the request file is looked for.
const REQUEST_POLL: Duration = Duration::from_secs(1);

/// Runs until `shutdown` turns true. A cycle in progress at shutdown is abandoned with its
/// transaction uncommitted, which leaves the previous snapshot intact.
pub async fn run(pipeline: Arc<Pipeline>, mut shutdown: watch::Receiver<bool>) {
    let interval = pipeline.settings.cycle.interval;
    let request = pipeline.settings.data_dir.join(REFRESH_REQUEST);
    if pipeline.settings.cycle.auto_start {
        cycle_until_shutdown(&pipeline, "start", &mut shutdown).await;
    }
    let mut next = Instant::now() + interval;
    loop {
        let wait = REQUEST_POLL.min(next.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if take_request(&request) {
            cycle_until_shutdown(&pipeline, "request", &mut shutdown).await;
        } else if Instant::now() >= next {
            next = Instant::now() + interval;
            cycle_until_shutdown(&pipeline, "schedule", &mut shutdown).await;
        }
    }
}

/// Consumes a pending request; true when there was one.
fn take_request(path: &Path) -> bool {
    std::fs::remove_file(path).is_ok()
}

/// Leaves a refresh request for the server running on this data directory.
///
/// # Errors
/// When the file cannot be written.
pub fn request_refresh(data_dir: &Path) -> std::io::Result<()> {
    std::fs::write(data_dir.join(REFRESH_REQUEST), b"")
}

async fn cycle_until_shutdown(
    pipeline: &Pipeline,
    trigger: &str,
    shutdown: &mut watch::Receiver<bool>,
) {
    tokio::select! {
        result = pipeline.run(trigger) => {
            if let Err(super::CycleError::AlreadyRunning { since }) = result {
                tracing::debug!(%since, "cycle skipped: one is already running");
            }
        }
        _ = shutdown.changed() => {
            tracing::info!("shutdown during a refresh cycle; the previous snapshot stays published");
        }
    }
}
