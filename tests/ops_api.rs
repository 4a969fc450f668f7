//! The operations endpoints over the real HTTP server: stats, refresh, write authentication,
//! rate limiting, CORS, size limits, request ids and `/metrics`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use abuseipdb_ioc::config::Secret;
use common::app::{TestApp, http_client};
use common::fake_abuseipdb::{FakeAbuseIpDb, Fault};
use serde_json::{Value, json};

const KEY: &str = "ops-test-key";

fn with_key() -> TestApp {
    TestApp::with(|s| s.http.api_keys = vec![Secret::new(KEY)])
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = http_client()
        .get(url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn stats_match_the_snapshot() {
    let t = with_key();
    t.report("8.8.8.8", 95);
    t.report("9.9.9.9", 40);
    t.report("203.0.113.9", 80);
    t.cycle().await;
    let base = t.serve().await;

    let (status, body) = get_json(&format!("{base}/api/v1/stats")).await;
    assert_eq!(status, 200, "{body}");
    let meta = t.app.store.snapshot();
    let source = &body["source"];
    assert_eq!(source["indicators"], meta.counts.indicators);
    assert_eq!(source["indicators"], 3);
    assert_eq!(source["high_confidence"], meta.counts.high_confidence);
    assert_eq!(source["local"], meta.counts.local);
    assert_eq!(source["abuseipdb"], 0);
    assert_eq!(source["revoked"], meta.counts.revoked);
    assert_eq!(source["excluded"], meta.excluded);
    let histogram: Vec<u64> = source["confidence_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(histogram, meta.counts.histogram.to_vec());
    assert_eq!(source["confidence_histogram"][9]["range"], "90-100");
    assert_eq!(body["abuseipdb"]["mode"], "local-only");

    let cycles = body["refresh"]["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0]["indicators"], 3);
    assert_eq!(cycles[0]["trigger"], "test");
    assert!(body["refresh"]["last_refresh"].is_string());
    assert!(body["api"]["requests_last_hour"].is_u64());
    assert!(body["process"]["uptime_seconds"].is_i64());
    if cfg!(target_os = "linux") {
        assert!(body["process"]["memory"]["rss_bytes"].as_u64().unwrap() > 0);
        assert!(body["process"]["cpu_seconds"].as_f64().is_some());
    }

    // The request just made is counted.
    let (_, again) = get_json(&format!("{base}/api/v1/stats")).await;
    assert!(again["api"]["requests_last_hour"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn stats_need_a_key_when_keys_are_configured() {
    let t = with_key();
    let base = t.serve().await;
    let response = http_client()
        .get(format!("{base}/api/v1/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn stats_show_the_abuseipdb_budget() {
    let fake = FakeAbuseIpDb::start().await;
    let t = TestApp::with(|s| {
        s.abuseipdb.api_key = Some(Secret::new(common::fake_abuseipdb::KEY));
        s.abuseipdb.base_url = fake.base_url.clone();
        s.abuseipdb.check_daily_limit = 7;
    });
    let base = t.serve().await;
    let (_, body) = get_json(&format!("{base}/api/v1/stats")).await;
    let budget = &body["abuseipdb"]["budget"];
    assert_eq!(body["abuseipdb"]["mode"], "enriched");
    assert_eq!(budget["check"]["limit"], 7);
    assert_eq!(budget["check"]["used"], 0);
    assert_eq!(budget["check"]["reset"], "2026-12-02T00:00:00.000Z");
}

#[tokio::test]
async fn refresh_is_accepted_then_conflicts_while_running() {
    // A slow AbuseIPDB blacklist keeps the cycle running long enough to see the 409.
    let fake = FakeAbuseIpDb::start().await;
    fake.set_fault(Fault::Slow(Duration::from_secs(2)));
    let t = TestApp::with(|s| {
        s.http.api_keys = vec![Secret::new(KEY)];
        s.abuseipdb.api_key = Some(Secret::new(common::fake_abuseipdb::KEY));
        s.abuseipdb.base_url = fake.base_url.clone();
        s.abuseipdb.timeout = Duration::from_secs(5);
    });
    let base = t.serve().await;
    let client = http_client();
    let url = format!("{base}/api/v1/refresh");

    let first = client.post(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(first.status(), 202);
    let started: Value = first.json().await.unwrap();
    assert_eq!(started["started_at"], "2026-12-01T12:00:00.000Z");

    let second = client.post(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(second.status(), 409);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("2026-12-01T12:00:00.000Z"), "{message}");
}

#[tokio::test]
async fn writes_without_a_key_are_refused() {
    let t = with_key();
    let base = t.serve().await;
    let client = http_client();
    for path in [
        "/api/v1/refresh",
        "/api/v1/enrich/8.8.8.8",
        "/api/v1/enrich/bulk",
    ] {
        let response = client.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["status"], 401);
    }
}

#[tokio::test]
async fn writes_are_forbidden_when_no_key_is_configured() {
    let t = TestApp::new();
    let base = t.serve().await;
    let response = http_client()
        .post(format!("{base}/api/v1/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "writes_disabled");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API_KEYS")
    );
    assert!(t.app.pipeline.running_since().is_none());
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_and_spares_health() {
    let t = TestApp::with(|s| s.http.rate_limit_per_minute = 3);
    let base = t.serve().await;
    let client = http_client();
    for _ in 0..3 {
        let ok = client
            .get(format!("{base}/api/v1/stats"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
    let limited = client
        .get(format!("{base}/api/v1/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    for _ in 0..5 {
        let health = client.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
}

#[tokio::test]
async fn cors_headers_only_when_configured() {
    let plain = TestApp::new();
    let base = plain.serve().await;
    let response = http_client()
        .get(format!("{base}/api/v1/stats"))
        .header("origin", "https://soc.example")
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let t = TestApp::with(|s| s.http.cors_origins = vec!["https://soc.example".into()]);
    let base = t.serve().await;
    let allowed = http_client()
        .get(format!("{base}/api/v1/stats"))
        .header("origin", "https://soc.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://soc.example"
    );
    let preflight = http_client()
        .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/refresh"))
        .header("origin", "https://soc.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let other = http_client()
        .get(format!("{base}/api/v1/stats"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn oversized_bodies_and_queries_get_json_errors() {
    let t = TestApp::with(|s| {
        s.http.api_keys = vec![Secret::new(KEY)];
        s.http.max_body_bytes = 1024;
    });
    let base = t.serve().await;
    let client = http_client();
    let big = json!({"ips": vec!["8.8.8.8"; 200]});
    let response = client
        .post(format!("{base}/api/v1/enrich/bulk"))
        .bearer_auth(KEY)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_BODY_BYTES")
    );

    let long = "a".repeat(9000);
    let response = client
        .get(format!("{base}/api/v1/stats?x={long}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 414);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "query_too_long");
}

#[tokio::test]
async fn request_ids_are_generated_or_echoed() {
    let t = TestApp::new();
    let base = t.serve().await;
    let client = http_client();
    let generated = client.get(format!("{base}/health")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    let echoed = client
        .get(format!("{base}/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn json_responses_are_gzipped_on_request() {
    let t = TestApp::new();
    for i in 0..20 {
        t.report(&format!("8.8.4.{i}"), 90);
    }
    t.cycle().await;
    let base = t.serve().await;
    // A client that leaves the body compressed, so the header stays visible.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = raw
        .get(format!("{base}/api/v1/stats"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

/// One parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A small parser of the Prometheus text format: every line is a comment (`# HELP`,
/// `# TYPE`), blank, or `name{label="value",…} value`.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
            None => (series, BTreeMap::new()),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        samples.push((name.to_string(), labels, value));
    }
    samples
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("label name");
        let end = after.find('"').expect("closing quote");
        labels.insert(name.to_string(), after[..end].to_string());
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

#[tokio::test]
async fn metrics_parse_and_name_the_expected_series() {
    let t = with_key();
    t.report("8.8.8.8", 95);
    t.cycle().await;
    let base = t.serve().await;
    let client = http_client();
    client
        .get(format!("{base}/api/v1/stats"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let unauthorised = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(unauthorised.status(), 401);

    let response = client
        .get(format!("{base}/metrics"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let samples = parse_prometheus(&response.text().await.unwrap());
    let names: std::collections::BTreeSet<&str> = samples.iter().map(|s| s.0.as_str()).collect();
    for expected in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_count",
        "abuseipdb_ioc_cycles_total",
        "abuseipdb_ioc_cycle_duration_seconds_bucket",
        "abuseipdb_ioc_indicators",
        "abuseipdb_ioc_snapshot_age_seconds",
        "abuseipdb_ioc_abuseipdb_enabled",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    let stats = samples
        .iter()
        .find(|(name, labels, _)| {
            name == "http_requests_total"
                && labels.get("route").map(String::as_str) == Some("/api/v1/stats")
                && labels.get("status").map(String::as_str) == Some("200")
        })
        .expect("the stats request is counted under its route");
    assert!(stats.2 >= 1.0);
    assert!(
        samples
            .iter()
            .all(|(_, labels, _)| labels.get("route").is_none_or(|r| !r.contains("8.8.8.8"))),
        "routes are templates, never raw paths"
    );
}
