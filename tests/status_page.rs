//! The status page over HTTP: the embedded files with their content types and cache headers,
//! and `/api/v1/status` with and without configured credentials.

mod common;

use abuseipdb_ioc::config::Secret;
use common::app::{TestApp, http_client};
use serde_json::Value;

async fn get(url: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = http_client().get(url);
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    request.send().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

#[tokio::test]
async fn page_files_are_served_with_their_types_and_cache_headers() {
    let t = TestApp::new();
    let base = t.serve().await;
    let cases = [
        ("/", "text/html; charset=utf-8", "no-cache"),
        (
            "/assets/app.js",
            "text/javascript; charset=utf-8",
            "public, max-age=300",
        ),
        (
            "/assets/style.css",
            "text/css; charset=utf-8",
            "public, max-age=300",
        ),
        ("/assets/world.svg", "image/svg+xml", "public, max-age=300"),
    ];
    for (path, content_type, cache) in cases {
        let response = get(&format!("{base}{path}"), None).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "cache-control"), cache, "{path}");
        assert!(header(&response, "content-security-policy").contains("default-src 'none'"));
    }
    let missing = get(&format!("{base}/assets/nope.js"), None).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn an_unchanged_file_answers_not_modified() {
    let t = TestApp::new();
    let base = t.serve().await;
    let first = get(&format!("{base}/assets/app.js"), None).await;
    let etag = header(&first, "etag").to_string();
    let again = http_client()
        .get(format!("{base}/assets/app.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn status_reports_counts_cycles_and_urls() {
    let t = TestApp::new();
    for (ip, confidence) in [("8.8.8.8", 95), ("1.1.1.1", 40), ("10.0.0.1", 90)] {
        t.report(ip, confidence);
    }
    t.cycle().await;
    let base = t.serve().await;
    let response = get(&format!("{base}/api/v1/status"), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["counts"]["all"], 3);
    assert_eq!(report["counts"]["local"], 3);
    assert_eq!(report["snapshot"]["stale"], false);
    assert_eq!(report["abuseipdb"]["mode"], "local-only");
    assert_eq!(report["cycles"].as_array().unwrap().len(), 1);
    assert_eq!(report["health"]["status"], report["health"]["status"]);
    let histogram: u64 = report["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(histogram, 3);
    let host = base.trim_start_matches("http://");
    assert_eq!(
        report["taxii"]["elastic"],
        format!("http://{host}/taxii2/iocs/collections/ioc-indicators/objects/")
    );
    assert_eq!(report["taxii"]["opencti"], format!("http://{host}/taxii2/"));
}

#[tokio::test]
async fn status_needs_a_key_when_keys_are_configured_but_the_page_does_not() {
    let t = TestApp::with(|s| s.http.api_keys = vec![Secret::new("sesame-key")]);
    let base = t.serve().await;
    assert_eq!(get(&format!("{base}/"), None).await.status(), 200);
    let refused = get(&format!("{base}/api/v1/status"), None).await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = get(&format!("{base}/api/v1/status"), Some("nope")).await;
    assert_eq!(wrong.status(), 401);
    let accepted = get(&format!("{base}/api/v1/status"), Some("sesame-key")).await;
    assert_eq!(accepted.status(), 200);
}

#[tokio::test]
async fn the_page_and_its_data_answer_a_browser_accept_header() {
    let t = TestApp::new();
    let base = t.serve().await;
    for path in ["/", "/assets/app.js", "/api/v1/status"] {
        let response = http_client()
            .get(format!("{base}{path}"))
            .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}
