//! Wiring: opens the store and the source, builds the pipeline and the shared state the
//! HTTP layer reads. Used by `serve`, the CLI commands and the tests alike.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;

use crate::clock::SharedClock;
use crate::config::{Secret, Settings};
use crate::enrich::{abuseipdb, geo};
use crate::health::HealthBoard;
use crate::pipeline::Pipeline;
use crate::source::{LocalSource, SourceError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("secret key file {path}: {reason}")]
    SecretKey { path: String, reason: String },
}

/// Everything a running appliance shares between its tasks.
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Arc<Store>,
    pub pipeline: Arc<Pipeline>,
    pub health: Arc<HealthBoard>,
    /// AbuseIPDB, unless in local-only mode.
    pub abuseipdb: Option<Arc<abuseipdb::Service>>,
    /// Geolocation, unless `GEO_PROVIDERS=none`.
    pub geo: Option<Arc<geo::GeoService>>,
    pub clock: SharedClock,
    pub started_at: Timestamp,
    /// Signs TAXII `next` tokens.
    pub token_key: Secret,
}

impl App {
    /// Opens the state file and the source and wires the pipeline.
    ///
    /// # Errors
    /// When the state file or the embedded source cannot be opened, or the secret key file
    /// cannot be read or created.
    pub fn build(settings: Settings, clock: SharedClock) -> Result<App, AppError> {
        let settings = Arc::new(settings);
        let store = Arc::new(Store::open(&settings.redb_path())?);
        let source = Arc::new(LocalSource::open(&settings)?);
        let health = Arc::new(HealthBoard::default());
        let token_key = match &settings.http.secret_key {
            Some(key) => key.clone(),
            None => load_or_create_key(&settings.data_dir.join("secret.key"))?,
        };
        let mut pipeline = Pipeline::new(
            settings.clone(),
            store.clone(),
            source,
            clock.clone(),
            health.clone(),
        );
        let abuseipdb = abuseipdb::service(&settings, &store, &health, &clock);
        let geo = geo::service(&settings, &store, &health, &clock);
        pipeline
            .enrichers
            .extend(abuseipdb.clone().map(abuseipdb::hook));
        if let Some(geo) = &geo {
            pipeline.enrichers.push(geo.clone());
        }
        let pipeline = Arc::new(pipeline);
        Ok(App {
            started_at: clock.now(),
            settings,
            store,
            pipeline,
            health,
            abuseipdb,
            geo,
            clock,
            token_key,
        })
    }

    /// The address the server listens on.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.settings.http.host, self.settings.http.port)
    }
}

/// Reads the generated signing key, or creates one (32 random bytes, hex, mode 0600).
fn load_or_create_key(path: &Path) -> Result<Secret, AppError> {
    let fail = |reason: String| AppError::SecretKey {
        path: path.display().to_string(),
        reason,
    };
    if let Ok(text) = std::fs::read_to_string(path) {
        let key = text.trim();
        if key.len() >= 32 {
            return Ok(Secret::new(key));
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| fail(e.to_string()))?;
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    write_private(path, &key).map_err(|e| fail(e.to_string()))?;
    Ok(Secret::new(key))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
