//! The health board: each component (source, AbuseIPDB, geolocation) reports its state here,
//! and `/health` reads it together with the snapshot age.

use std::collections::BTreeMap;
use std::sync::RwLock;

use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Degraded,
    Disabled,
}

/// One component's latest state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentState {
    pub status: Status,
    /// What is wrong or what mode the component is in, for people.
    pub detail: String,
    pub since: Timestamp,
    /// Component figures (budget used, limit, next reset, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub figures: BTreeMap<String, serde_json::Value>,
}

/// Shared, cheap to read, written by whoever learns something.
#[derive(Debug, Default)]
pub struct HealthBoard {
    components: RwLock<BTreeMap<&'static str, ComponentState>>,
}

impl HealthBoard {
    /// Sets a component's state; `since` moves only when the status changes.
    pub fn set(
        &self,
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        now: Timestamp,
    ) {
        let mut components = self.components.write().expect("health lock");
        let since = match components.get(name) {
            Some(old) if old.status == status => old.since,
            _ => now,
        };
        let figures = components
            .get(name)
            .map(|c| c.figures.clone())
            .unwrap_or_default();
        components.insert(
            name,
            ComponentState {
                status,
                detail: detail.into(),
                since,
                figures,
            },
        );
    }

    /// Replaces a component's figures, keeping its status.
    pub fn set_figures(&self, name: &'static str, figures: BTreeMap<String, serde_json::Value>) {
        let mut components = self.components.write().expect("health lock");
        if let Some(state) = components.get_mut(name) {
            state.figures = figures;
        }
    }

    pub fn get(&self, name: &str) -> Option<ComponentState> {
        self.components
            .read()
            .expect("health lock")
            .get(name)
            .cloned()
    }

    pub fn all(&self) -> BTreeMap<&'static str, ComponentState> {
        self.components.read().expect("health lock").clone()
    }
}
