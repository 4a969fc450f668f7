//! The refresh worker: a cycle at start (unless `AUTO_START_PROCESSING` is off), then one
//! every `IOC_PROCESSING_INTERVAL`, until shutdown. Cycles never overlap: the pipeline
//! refuses a second one while one runs.

use std::sync::Arc;

use tokio::sync::watch;

use super::Pipeline;

/// Runs until `shutdown` turns true. A cycle in progress at shutdown is abandoned with its
/// transaction uncommitted, which leaves the previous snapshot intact.
pub async fn run(pipeline: Arc<Pipeline>, mut shutdown: watch::Receiver<bool>) {
    let interval = pipeline.settings.cycle.interval;
    if pipeline.settings.cycle.auto_start {
        cycle_until_shutdown(&pipeline, "start", &mut shutdown).await;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        cycle_until_shutdown(&pipeline, "schedule", &mut shutdown).await;
    }
}

async fn cycle_until_shutdown(
    pipeline: &Pipeline,
    trigger: &str,
    shutdown: &mut watch::Receiver<bool>,
) {
    tokio::select! {
        result = pipeline.run(trigger) => {
            if let Err(super::CycleError::AlreadyRunning { since }) = result {
                tracing::debug!(%since, "scheduled cycle skipped: one is already running");
            }
        }
        _ = shutdown.changed() => {
            tracing::info!("shutdown during a refresh cycle; the previous snapshot stays published");
        }
    }
}
