//! A test appliance: a temporary data directory, a manual clock, the embedded source and
//! the real HTTP server on `127.0.0.1:0`.

use std::ops::ControlFlow;
use std::sync::Arc;

use abuseipdb_ioc::app::App;
use abuseipdb_ioc::clock::ManualClock;
use abuseipdb_ioc::config::Settings;
use abuseipdb_ioc::ioc::Collection;
use abuseipdb_ioc::source::sqlite::EmbeddedSource;
use abuseipdb_ioc::store::tables::IndexValue;
use jiff::Timestamp;
use tokio::sync::watch;

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub app: Arc<App>,
}

/// Settings for tests: no geolocation, no AbuseIPDB, no automatic cycles, no per-client rate
/// limit (load tests send far more than 600 requests a minute from one address; the rate
/// limit has its own test).
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::for_data_dir(dir);
    settings.geo.providers.clear();
    settings.cycle.auto_start = false;
    settings.http.rate_limit_per_minute = 0;
    settings
}

pub fn start_time() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(dir.path());
        adjust(&mut settings);
        let clock = ManualClock::new(start_time());
        let app = Arc::new(App::build(settings, Arc::new(clock.clone())).unwrap());
        TestApp { dir, clock, app }
    }

    /// Reopens the same data directory, as after a restart.
    ///
    /// Tasks that worked for the old App (an HTTP handler finishing its response after the
    /// server stopped) can hold it a moment longer, and with it the state file's lock; the
    /// reopen waits for that lock (up to 10 s) instead of failing on a busy machine.
    pub fn restart(self) -> TestApp {
        let TestApp { dir, clock, app } = self;
        let settings = (*app.settings).clone();
        drop(app);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let app = loop {
            match App::build(settings.clone(), Arc::new(clock.clone())) {
                Ok(app) => break app,
                Err(err)
                    if err.to_string().contains("already open")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(err) => panic!("reopening the data directory: {err}"),
            }
        };
        TestApp {
            dir,
            clock,
            app: Arc::new(app),
        }
    }

    pub fn embedded(&self) -> EmbeddedSource {
        EmbeddedSource::open(&self.app.settings.sqlite_path()).unwrap()
    }

    pub fn report(&self, ip: &str, confidence: i64) {
        self.embedded()
            .report(ip, Some(confidence), &[18, 22], None, self.clock_now())
            .unwrap();
    }

    pub fn clock_now(&self) -> Timestamp {
        use abuseipdb_ioc::clock::Clock;
        self.clock.now()
    }

    /// Raw SQL on the embedded source, for rows the CLI would refuse.
    pub fn sql(&self, statement: &str) {
        let conn = rusqlite::Connection::open(self.app.settings.sqlite_path()).unwrap();
        conn.execute_batch(statement).unwrap();
    }

    pub async fn cycle(&self) -> abuseipdb_ioc::store::CycleSummary {
        self.app.pipeline.run("test").await.unwrap()
    }

    /// Every object of a collection: (date_added, id, version, revoked, bytes).
    pub fn objects(&self, collection: Collection) -> Vec<(u64, String, String, bool, Vec<u8>)> {
        let mut out = Vec::new();
        self.app
            .store
            .scan(collection, None, |added, v: IndexValue<'_>| {
                out.push((
                    added,
                    v.id.to_string(),
                    v.version.to_string(),
                    v.revoked,
                    v.object.to_vec(),
                ));
                ControlFlow::Continue(())
            })
            .unwrap();
        out
    }

    /// Indicator objects only, parsed.
    pub fn indicators(&self, collection: Collection) -> Vec<serde_json::Value> {
        self.objects(collection)
            .into_iter()
            .filter(|o| o.1.starts_with("indicator--"))
            .map(|o| serde_json::from_slice(&o.4).unwrap())
            .collect()
    }

    /// Serves the real router on 127.0.0.1:0; returns the base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_tx, rx) = watch::channel(false);
        let app = self.app.clone();
        tokio::spawn(async move {
            let _keep = _tx;
            abuseipdb_ioc::publish::http::serve(listener, app, rx)
                .await
                .unwrap();
        });
        format!("http://{addr}")
    }
}

pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}
