//! Geolocation providers with fallback and a cache. (Stub: being written.)

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::health::HealthBoard;
use crate::pipeline::Enricher;
use crate::store::Store;

/// The geolocation enricher, or `None` when geolocation is off.
pub fn enricher(
    settings: &Arc<Settings>,
    store: &Arc<Store>,
    health: &Arc<HealthBoard>,
    clock: &SharedClock,
) -> Option<Arc<dyn Enricher>> {
    let _ = (settings, store, health, clock);
    None
}
