//! `/health` over the real HTTP server: component states, snapshot age and staleness.

mod common;

use common::app::{TestApp, http_client};
use jiff::SignedDuration;

#[tokio::test]
async fn health_reports_components_and_snapshot_age() {
    let t = TestApp::new();
    t.report("203.0.113.7", 90);
    let base = t.serve().await;
    let client = http_client();

    let before: serde_json::Value = client
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["status"], "degraded");
    assert_eq!(before["reasons"][0], "no snapshot has been published yet");

    t.cycle().await;
    t.clock.advance(SignedDuration::from_secs(30));
    let response = client
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["snapshot"]["age_seconds"], 30);
    assert_eq!(body["snapshot"]["ttl_seconds"], 600);
    assert_eq!(body["snapshot"]["indicators"], 1);
    assert_eq!(body["components"]["source"]["status"], "ok");

    t.clock.advance(SignedDuration::from_secs(700));
    let stale: serde_json::Value = client
        .get(format!("{base}/health/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stale["status"], "degraded");
    assert_eq!(stale["snapshot"]["stale"], true);
    let reason = stale["reasons"][0].as_str().unwrap();
    assert!(reason.contains("older than PREPROCESSING_TTL"), "{reason}");
    assert_eq!(
        stale["snapshot"]["indicators"], 1,
        "a stale snapshot is still served"
    );
}
