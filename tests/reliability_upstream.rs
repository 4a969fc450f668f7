//! AbuseIPDB and every web geolocation provider failing in every way a real upstream
//! does: hanging past the timeout, 5xx, 429 with `Retry-After`, 401, malformed JSON,
//! bodies cut short of their `Content-Length`, bodies larger than the client's cap, and
//! connections closed without an answer. In each case the cycles complete, no indicator is
//! lost (the stored blacklist stays), nothing half-parsed is published, retries stay
//! bounded, private addresses never leave, and nothing panics.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use abuseipdb_ioc::config::{GeoProviderKind, Secret};
use abuseipdb_ioc::health::Status;
use abuseipdb_ioc::ioc::Collection;
use common::app::TestApp;
use common::fault_http::{Behaviour, FaultServer};
use jiff::SignedDuration;

static PANICS: AtomicU64 = AtomicU64::new(0);

/// Counts panics on any thread (spawned tasks swallow theirs otherwise).
fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

const LOCAL: usize = 20;
const BLACKLISTED: [&str; 3] = ["5.188.10.1", "5.188.10.2", "2a0b:4340::66"];
const PRIVATE: [&str; 2] = ["10.9.8.7", "fd00::42"];

fn blacklist_body() -> String {
    let data: Vec<String> = BLACKLISTED
        .iter()
        .map(|ip| {
            format!(
                r#"{{"ipAddress":"{ip}","countryCode":"NL","abuseConfidenceScore":100,"lastReportedAt":"2026-12-01T10:00:00+00:00"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"meta":{{"generatedAt":"2026-12-01T11:00:00+00:00"}},"data":[{}]}}"#,
        data.join(",")
    )
}

fn blacklist_ok() -> Behaviour {
    Behaviour::json(200, &blacklist_body())
        .with_header("x-ratelimit-limit", "100")
        .with_header("x-ratelimit-remaining", "99")
}

/// The app under test: AbuseIPDB and the three web providers all on fault servers.
fn build(abuse: &FaultServer, geo: &FaultServer) -> TestApp {
    let app = TestApp::with(|s| {
        s.abuseipdb.api_key = Some(Secret::new("upstream-key-should-not-leak"));
        s.abuseipdb.base_url = format!("{}/api/v2", abuse.base);
        s.abuseipdb.timeout = Duration::from_millis(500);
        s.abuseipdb.blacklist_daily_limit = 100;
        s.abuseipdb.blacklist_cache_ttl = Duration::from_secs(60);
        s.geo.providers = vec![
            GeoProviderKind::IpApi,
            GeoProviderKind::IpWhois,
            GeoProviderKind::GeoJs,
        ];
        s.geo.ipapi_base_url = geo.base.clone();
        s.geo.ipwhois_base_url = geo.base.clone();
        s.geo.geojs_base_url = geo.base.clone();
        s.geo.request_delay = Duration::from_millis(5);
        s.geo.timeout = Duration::from_millis(500);
    });
    for i in 0..LOCAL {
        app.report(&format!("81.2.{}.{}", i / 100, i % 100 + 1), 90);
    }
    for ip in PRIVATE {
        app.report(ip, 90);
    }
    app
}

/// Waits for the background AbuseIPDB checks and geolocation runs a cycle started.
async fn settle(app: &TestApp) {
    let work = async {
        if let Some(service) = &app.app.abuseipdb {
            service.background_settled().await;
        }
        if let Some(geo) = &app.app.geo {
            geo.wait_idle().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .expect("background enrichment ends in bounded time");
}

fn indicator_ids(app: &TestApp) -> Vec<String> {
    let mut ids: Vec<String> = app
        .indicators(Collection::All)
        .iter()
        .filter(|o| o["revoked"] != true)
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// The scenario every fault runs through.
async fn survives(fault: Behaviour, name: &str) -> (TestApp, FaultServer, FaultServer) {
    count_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let abuse = FaultServer::start(fault.clone()).await;
    abuse.set_for("/api/v2/blacklist", blacklist_ok());
    let geo = FaultServer::start(fault.clone()).await;
    let app = build(&abuse, &geo);

    // A first good blacklist, while /check and geolocation already fail.
    let first = app.cycle().await;
    assert_eq!(first.rows_read, (LOCAL + PRIVATE.len()) as u64, "{name}");
    settle(&app).await;
    let expected = LOCAL + PRIVATE.len() + BLACKLISTED.len();
    let baseline = indicator_ids(&app);
    assert_eq!(baseline.len(), expected, "{name}: {:?}", first.notes);

    // Now everything fails, cycle after cycle.
    abuse.set(fault);
    let mut calls = Vec::new();
    for round in 0..3 {
        app.clock.advance(SignedDuration::from_hours(2));
        let summary = tokio::time::timeout(Duration::from_secs(30), app.cycle())
            .await
            .unwrap_or_else(|_| panic!("{name}: cycle {round} stalled"));
        assert_eq!(summary.error, None, "{name}");
        settle(&app).await;
        assert_eq!(
            indicator_ids(&app),
            baseline,
            "{name}: round {round} lost IOCs"
        );
        calls.push((abuse.requests(), geo.requests()));
    }
    println!("{name}: (abuseipdb, geo) requests after each round: {calls:?}");

    // Nothing half-parsed was published.
    for object in app.indicators(Collection::All) {
        assert!(
            object.get("x_elastic_geo_point").is_none(),
            "{name}: {object}"
        );
    }
    // Bounded retries: per cycle at most one blacklist fetch and one failed /check,
    // and at most two failed requests per geolocation provider.
    let (abuse_calls, geo_calls) = calls[2];
    assert!(
        abuse_calls <= 1 + 4 * 2,
        "{name}: {abuse_calls} AbuseIPDB calls"
    );
    assert!(
        geo_calls <= 4 * 3 * 2,
        "{name}: {geo_calls} geolocation calls"
    );
    // Private addresses never left the appliance.
    for path in abuse.paths().iter().chain(geo.paths().iter()) {
        for ip in PRIVATE {
            let encoded = ip.replace(':', "%3A");
            assert!(
                !path.contains(ip) && !path.contains(&encoded),
                "{name}: {path}"
            );
        }
    }
    let health = app.app.health.get("abuseipdb").unwrap();
    assert_eq!(health.status, Status::Degraded, "{name}: {health:?}");
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        panics_before,
        "{name}: a task panicked"
    );
    (app, abuse, geo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeouts() {
    survives(Behaviour::Hang, "timeout").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_server_errors() {
    survives(Behaviour::json(500, r#"{"errors":[]}"#), "500").await;
    survives(Behaviour::json(503, "<html>maintenance</html>"), "503").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rate_limited_with_retry_after_stops_calling() {
    let fault = Behaviour::json(
        429,
        r#"{"errors":[{"detail":"Daily rate limit","status":429}]}"#,
    )
    .with_header("retry-after", "86400")
    .with_header("x-ratelimit-remaining", "0");
    let (_app, abuse, geo) = survives(fault, "429").await;
    // After the first 429 of each endpoint, AbuseIPDB is not called again that day:
    // one good blacklist, one refused /check (cycle 0), one refused blacklist (cycle 1).
    assert!(abuse.requests() <= 3, "{:?}", abuse.paths());
    // A paused provider is not asked again while its Retry-After runs (one 429 each).
    assert!(geo.requests() <= 3 * 2, "{:?}", geo.paths());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_rejects_the_key() {
    let body = r#"{"errors":[{"detail":"Authentication failed.","status":401}]}"#;
    let (app, abuse, _geo) = survives(Behaviour::json(401, body), "401").await;
    // A rejected key stops every AbuseIPDB call until the key changes.
    assert!(abuse.requests() <= 2, "{:?}", abuse.paths());
    let health = app.app.health.get("abuseipdb").unwrap();
    assert!(health.detail.contains("key"), "{health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_malformed_json() {
    survives(Behaviour::json(200, r#"{"data": ["#), "malformed").await;
    survives(
        Behaviour::json(200, r#"{"data": {"ipAddress": 7}}"#),
        "wrong shape",
    )
    .await;
    survives(Behaviour::json(200, "null"), "null").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_truncated_bodies() {
    let fault = Behaviour::Truncated {
        declared: 4096,
        body: br#"{"meta":{"generatedAt":"2026-12-01T11:00:00+00:00"},"data":[{"ipAddress":"#
            .to_vec(),
    };
    survives(fault, "truncated").await;
    survives(Behaviour::Close, "closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_huge_bodies() {
    // Larger than both caps: 64 MiB for the blacklist, 1 MiB for the others.
    let bytes = abuseipdb_ioc::enrich::abuseipdb::client::MAX_BLACKLIST_BYTES + 1024 * 1024;
    survives(Behaviour::Huge { bytes }, "huge").await;
}
