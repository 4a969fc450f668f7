//! The status page in a real headless Chromium, driven through chromedriver's W3C WebDriver
//! HTTP API: the figures on screen equal `/api/v1/status`, the map has one circle per grid
//! cell, and the stale banner appears once the snapshot outlives `PREPROCESSING_TTL`.
//! Screenshots go to `target/test-output/`.
//!
//! Without Chromium the test prints a note and passes, unless `CI` is set: then a missing
//! browser fails it (`tests/browser/run.sh` installs the packages first).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use abuseipdb_ioc::ioc::Location;
use abuseipdb_ioc::store::tables::{GEO, Stamped};
use base64::Engine;
use common::app::{TestApp, http_client};
use jiff::SignedDuration;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";

/// Addresses of the known snapshot: (address, confidence, latitude, longitude, country).
/// Two Californian and two Paris addresses share a grid cell each: 8 located, 6 cells.
/// Latitude, longitude and country of a seeded location.
type Place = (f64, f64, &'static str);

const SEEDS: &[(&str, i64, Option<Place>)] = &[
    ("8.8.8.8", 95, Some((37.4, -122.1, "US"))),
    ("8.8.4.4", 90, Some((37.6, -122.4, "US"))),
    ("1.1.1.1", 60, Some((-33.9, 151.2, "AU"))),
    ("9.9.9.9", 85, Some((48.85, 2.35, "FR"))),
    ("149.112.112.112", 40, Some((48.86, 2.34, "FR"))),
    ("77.88.8.8", 75, Some((55.75, 37.6, "RU"))),
    ("200.160.0.8", 30, Some((-23.5, -46.6, "BR"))),
    ("41.63.0.1", 100, Some((-1.3, 36.8, "KE"))),
    ("203.0.113.9", 55, None),
    ("10.1.2.3", 99, None),
];

fn wanted_in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes geolocation cache entries as the geolocation run would, then runs two cycles.
async fn known_snapshot() -> TestApp {
    let t = TestApp::new();
    for (ip, confidence, _) in SEEDS {
        t.report(ip, *confidence);
    }
    t.cycle().await;
    seed_locations(&t);
    t.cycle().await;
    t
}

fn seed_locations(t: &TestApp) {
    let txn = t.app.store.db().begin_write().unwrap();
    {
        let mut table = txn.open_table(GEO).unwrap();
        for (ip, _, place) in SEEDS {
            let Some((latitude, longitude, country)) = place else {
                continue;
            };
            let location = Location {
                latitude: *latitude,
                longitude: *longitude,
                country_code: Some(country.to_string()),
                provider: "test".into(),
                ..Location::default()
            };
            let json = serde_json::to_vec(&Some(location)).unwrap();
            let key = abuseipdb_ioc::ioc::IocKey::of(ip.parse().unwrap());
            let value = Stamped::encode(t.clock_now(), &json);
            table.insert(key.0, value.as_slice()).unwrap();
            // Like every writer of the enrichment tables, note the key for the next cycle.
            abuseipdb_ioc::store::note_enriched(&txn, [key.0]).unwrap();
        }
    }
    txn.commit().unwrap();
}

// === a minimal WebDriver client ===

struct Driver {
    process: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Driver {
    async fn start(profile: &Path) -> Driver {
        let port = free_port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = http_client();
        let mut driver = Driver {
            process,
            base,
            session: String::new(),
            http,
        };
        driver.wait_ready().await;
        driver.session = driver.new_session(profile).await;
        driver
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let status = self.http.get(format!("{}/status", self.base)).send().await;
            if status.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer within 20 s");
    }

    async fn new_session(&self, profile: &Path) -> String {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let answer = self.call("POST", "/session", capabilities).await;
        answer["sessionId"].as_str().unwrap().to_string()
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self.http.post(url).json(&body),
            "DELETE" => self.http.delete(url),
            _ => self.http.get(url),
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            answer["value"].get("error").is_none(),
            "WebDriver {method} {path}: {answer}"
        );
        answer["value"].clone()
    }

    async fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body).await
    }

    async fn open(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }))
            .await;
    }

    async fn resize(&self, width: u32, height: u32) {
        let rect = json!({"width": width, "height": height});
        self.session_call("POST", "/window/rect", rect).await;
    }

    async fn run(&self, script: &str) -> Value {
        let body = json!({"script": script, "args": []});
        self.session_call("POST", "/execute/sync", body).await
    }

    /// Polls `script` until it returns something truthy; panics after `limit`.
    async fn wait_for(&self, what: &str, script: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.run(script).await;
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            if Instant::now() > deadline {
                let page = self.run("return document.documentElement.outerHTML").await;
                panic!("timed out waiting for {what}; the page: {page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, path: &Path) {
        let encoded = self.session_call("GET", "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    async fn quit(&self) {
        self.session_call("DELETE", "", Value::Null).await;
    }
}

// === the test ===

/// The text of every `data-field` element, by field name.
const READ_FIELDS: &str = "const out = {}; \
    for (const el of document.querySelectorAll('[data-field]')) \
    out[el.dataset.field] = el.textContent; return out;";

const READ_CIRCLES: &str = "return [...document.querySelectorAll('#points circle')] \
    .map(c => Number(c.getAttribute('data-count')));";

fn number(text: &Value) -> u64 {
    let digits: String = text
        .as_str()
        .unwrap()
        .chars()
        .filter(|c| *c != ',')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {text}"))
}

async fn api_status(base: &str) -> Value {
    let url = format!("{base}/api/v1/status");
    http_client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn assert_counts_match(fields: &Value, api: &Value) {
    for name in [
        "all",
        "high",
        "local",
        "abuseipdb",
        "both",
        "revoked",
        "excluded",
    ] {
        let shown = number(&fields[format!("counts.{name}")]);
        assert_eq!(
            shown,
            api["counts"][name].as_u64().unwrap(),
            "counts.{name}"
        );
    }
    assert_eq!(
        number(&fields["geo.geolocated"]),
        api["geo"]["geolocated"].as_u64().unwrap()
    );
    assert_eq!(
        number(&fields["geo.public"]),
        api["geo"]["public"].as_u64().unwrap()
    );
    assert_eq!(fields["taxii.elastic"], api["taxii"]["elastic"]);
    assert_eq!(fields["taxii.opencti"], api["taxii"]["opencti"]);
}

fn assert_map_matches(circles: &Value, api: &Value) {
    let points = api["map"]["points"].as_array().unwrap();
    let counts: Vec<u64> = circles
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), points.len(), "one circle per grid cell");
    let expected: Vec<u64> = points.iter().map(|p| p[2].as_u64().unwrap()).collect();
    assert_eq!(counts, expected);
}

fn browser_available() -> bool {
    let driver = Command::new(CHROMEDRIVER).arg("--version").output();
    Path::new(CHROMIUM).exists() && driver.is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_the_api_figures_the_map_and_the_stale_banner() {
    if !browser_available() {
        assert!(
            !wanted_in_ci(),
            "CI is set but {CHROMIUM} or chromedriver is missing"
        );
        eprintln!("note: Chromium or chromedriver not installed; browser test skipped");
        return;
    }
    let t = known_snapshot().await;
    let base = t.serve().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(profile.path()).await;
    driver.resize(1280, 2000).await;
    driver.open(&format!("{base}/#refresh=1")).await;

    let ready = "const el = document.querySelector('[data-field=\"counts.all\"]'); \
        return el && el.textContent";
    driver
        .wait_for("the figures", ready, Duration::from_secs(20))
        .await;
    let outline = "return document.getElementById('land').getAttribute('d').length > 1000";
    driver
        .wait_for("the world outline", outline, Duration::from_secs(10))
        .await;
    let api = api_status(&base).await;
    assert_eq!(api["counts"]["all"], 10);
    assert_eq!(api["map"]["located"], 8);
    assert_eq!(api["map"]["points"].as_array().unwrap().len(), 6);

    let fields = driver.run(READ_FIELDS).await;
    assert_counts_match(&fields, &api);
    assert_map_matches(&driver.run(READ_CIRCLES).await, &api);
    let banner = "return document.getElementById('banner').hidden";
    assert_eq!(
        driver.run(banner).await,
        json!(true),
        "no banner while fresh"
    );
    let out = output_dir();
    driver.screenshot(&out.join("status.png")).await;
    driver.resize(390, 2400).await;
    driver.screenshot(&out.join("status-phone.png")).await;
    driver.resize(1280, 2000).await;

    let ttl = t.app.settings.cycle.snapshot_ttl.as_secs() as i64;
    t.clock.advance(SignedDuration::from_secs(ttl + 60));
    let stale = "const b = document.getElementById('banner'); \
        return !b.hidden && b.dataset.kind === 'stale' && b.textContent";
    let text = driver
        .wait_for("the stale banner", stale, Duration::from_secs(15))
        .await;
    assert!(text.as_str().unwrap().contains("stale"), "{text}");
    driver.screenshot(&out.join("status-stale.png")).await;
    driver.quit().await;
}
