//! The streamed exports: STIX bundle, JSON, CSV and plain, with their filters and headers.

mod common;

use common::rest::{ACTIVE, Fixture, REVOKED, active_at_least, error_message};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn the_bundle_holds_identity_marking_and_active_indicators() {
    let f = Fixture::new().await;
    let response = f.get("/api/v1/indicators/stix").await;
    assert_eq!(response.status(), 200);
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert_eq!(disposition, "attachment; filename=\"iocs-2026-12-01.json\"");
    let bundle: serde_json::Value = response.json().await.unwrap();
    assert_eq!(bundle["type"], "bundle");
    let id = bundle["id"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id.strip_prefix("bundle--").unwrap()).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    let objects = bundle["objects"].as_array().unwrap();
    assert_eq!(objects[0]["type"], "identity");
    assert_eq!(objects[1]["type"], "marking-definition");
    let indicators: Vec<&serde_json::Value> = objects[2..].iter().collect();
    assert_eq!(indicators.len(), ACTIVE.len());
    for indicator in &indicators {
        assert_eq!(indicator["type"], "indicator");
        assert!(indicator.get("revoked").is_none(), "{indicator}");
        assert!(!indicator["pattern"].as_str().unwrap().contains(REVOKED));
        assert_eq!(indicator["created_by_ref"], objects[0]["id"]);
    }
    let (_, high) = f.json("/api/v1/indicators/stix?collection=high").await;
    assert_eq!(
        high["objects"].as_array().unwrap().len(),
        2 + active_at_least(80).len()
    );
}

#[tokio::test]
async fn csv_parses_with_a_header_and_one_row_per_indicator() {
    let f = Fixture::new().await;
    let response = f.get("/api/v1/indicators/csv?min_confidence=80").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..3], ["ip", "confidence", "sources"]);
    assert_eq!(header.last().unwrap(), "valid_until");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let ips = rows.iter().map(|r| r[0].to_string()).collect();
    assert_eq!(sorted(ips), active_at_least(80));
    let one = rows.iter().find(|r| &r[0] == "192.0.2.1").unwrap();
    assert_eq!((&one[1], &one[2], &one[5]), ("90", "local", "18;22"));
}

#[tokio::test]
async fn json_and_plain_list_the_same_addresses() {
    let f = Fixture::new().await;
    let (status, array) = f.json("/api/v1/indicators/json?family=v6").await;
    assert_eq!(status, 200);
    let ips: Vec<String> = array
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ip"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sorted(ips), ["2001:db8::1", "2001:db8::2"]);
    let (status, plain) = f.text("/api/v1/indicators/plain").await;
    assert_eq!(status, 200);
    let lines = plain.lines().map(String::from).collect();
    assert_eq!(sorted(lines), active_at_least(0));
    let (_, v4) = f
        .text("/api/v1/indicators/plain?family=v4&min_confidence=85")
        .await;
    assert_eq!(
        sorted(v4.lines().map(String::from).collect()),
        ["192.0.2.1", "192.0.2.2"]
    );
}

#[tokio::test]
async fn exports_refuse_bad_parameters() {
    let f = Fixture::new().await;
    for query in [
        "family=v5",
        "collection=nope",
        "min_confidence=-1",
        "aggregate=true",
    ] {
        let (status, body) = f.json(&format!("/api/v1/indicators/csv?{query}")).await;
        assert_eq!(status, 400, "{query}");
        error_message(400, &body);
    }
}

#[tokio::test]
async fn exports_are_gzipped_when_asked() {
    let f = Fixture::new().await;
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = raw
        .get(format!("{}/api/v1/indicators/plain", f.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
}
