//! `GET /api/v1/indicators…` against the real server: shapes, filters, pagination, errors.

mod common;

use abuseipdb_ioc::config::Secret;
use common::rest::{ACTIVE, Fixture, REVOKED, active_at_least, error_message, ips};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn the_listing_shows_every_active_indicator_with_its_fields() {
    let f = Fixture::new().await;
    let (status, body) = f.json("/api/v1/indicators").await;
    assert_eq!(status, 200);
    assert_eq!(body["count"], ACTIVE.len());
    assert!(body["next"].is_null());
    assert_eq!(
        sorted(ips(&body)),
        active_at_least(0),
        "no revoked {REVOKED}"
    );
    let one = body["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["ip"] == "192.0.2.1")
        .unwrap();
    for field in [
        "id",
        "confidence",
        "sources",
        "local_confidence",
        "abuseipdb_confidence",
        "categories",
        "tags",
        "country_code",
        "country_name",
        "city",
        "latitude",
        "longitude",
        "asn",
        "isp",
        "first_seen",
        "last_seen",
        "valid_until",
        "modified",
        "high_confidence",
    ] {
        assert!(one.get(field).is_some(), "missing {field}: {one}");
    }
    assert_eq!(one["confidence"], 90);
    assert_eq!(one["sources"], "local");
    assert_eq!(one["categories"], serde_json::json!([18, 22]));
    assert_eq!(one["high_confidence"], true);
    assert!(one["id"].as_str().unwrap().starts_with("indicator--"));
}

#[tokio::test]
async fn filters_narrow_the_listing() {
    let f = Fixture::new().await;
    let (_, body) = f.json("/api/v1/indicators?min_confidence=80").await;
    assert_eq!(sorted(ips(&body)), active_at_least(80));
    let (_, body) = f.json("/api/v1/indicators?source=local").await;
    assert_eq!(body["count"], ACTIVE.len());
    let (_, body) = f.json("/api/v1/indicators?source=abuseipdb").await;
    assert_eq!(body["count"], 0);
    let (_, body) = f.json("/api/v1/indicators?country=nl").await;
    assert_eq!(body["count"], 0, "no geolocation in this fixture");
    let (_, body) = f
        .json("/api/v1/indicators?since=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(body["count"], ACTIVE.len());
    let (_, body) = f
        .json("/api/v1/indicators?since=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(body["count"], 0);
    let (_, body) = f.json("/api/v1/indicators/local").await;
    assert_eq!(body["count"], ACTIVE.len());
    let (_, body) = f.json("/api/v1/indicators/enriched").await;
    assert_eq!(body["count"], 0, "nothing came from AbuseIPDB");
}

#[tokio::test]
async fn cursor_pages_cover_everything_once() {
    let f = Fixture::new().await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/indicators?limit=2".to_string();
    loop {
        let (status, body) = f.json(&path).await;
        assert_eq!(status, 200);
        assert!(body["count"].as_u64().unwrap() <= 2);
        seen.extend(ips(&body));
        match body["next"].as_str() {
            Some(next) => path = format!("/api/v1/indicators?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), ACTIVE.len());
    assert_eq!(sorted(seen), active_at_least(0));
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_json_body() {
    let f = Fixture::new().await;
    for (query, names) in [
        ("min_confidence=101", "min_confidence"),
        ("min_confidence=abc", "min_confidence"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("source=cdn", "source"),
        ("country=NLD", "country"),
        ("since=yesterday", "since"),
        ("cursor=nothex", "cursor"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = f.json(&format!("/api/v1/indicators?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(error_message(400, &body).contains(names), "{query}: {body}");
    }
}

#[tokio::test]
async fn one_address_gives_its_record_or_a_clear_error() {
    let f = Fixture::new().await;
    let (status, body) = f.json("/api/v1/indicators/192.0.2.1").await;
    assert_eq!(status, 200);
    assert_eq!(body["ip"], "192.0.2.1");
    assert_eq!(body["revoked"], false);
    assert_eq!(body["stix"]["type"], "indicator");
    assert_eq!(body["stix"]["id"], body["id"]);
    assert!(!body["entries"].as_array().unwrap().is_empty());

    let (status, body) = f.json("/api/v1/indicators/2001:DB8::1").await;
    assert_eq!((status, body["ip"].as_str()), (200, Some("2001:db8::1")));

    let (status, body) = f.json(&format!("/api/v1/indicators/{REVOKED}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["revoked"], true);
    assert_eq!(body["stix"]["revoked"], true);

    let (status, body) = f.json("/api/v1/indicators/192.0.2.200").await;
    assert!(error_message(404, &body).contains("192.0.2.200"));
    assert_eq!(status, 404);

    let (status, body) = f.json("/api/v1/indicators/not-an-ip").await;
    assert_eq!(status, 400);
    assert!(error_message(400, &body).contains("not-an-ip"));
}

#[tokio::test]
async fn export_paths_are_not_taken_for_addresses() {
    let f = Fixture::new().await;
    for path in [
        "stix",
        "json",
        "csv",
        "plain",
        "local",
        "enriched",
        "firewall/paloalto",
    ] {
        let (status, _) = f.text(&format!("/api/v1/indicators/{path}")).await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, body) = f.json("/api/v1/indicators/firewall").await;
    assert_eq!(status, 404);
    assert!(error_message(404, &body).contains("nftables"));
}

#[tokio::test]
async fn a_key_is_required_when_keys_are_configured() {
    let f = Fixture::with(|s| s.http.api_keys = vec![Secret::new("rest-test-key")]).await;
    for path in [
        "/api/v1/indicators",
        "/api/v1/indicators/192.0.2.1",
        "/api/v1/indicators/csv",
    ] {
        let response = f.get(path).await;
        assert_eq!(response.status(), 401, "{path}");
        assert!(response.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = response.json().await.unwrap();
        error_message(401, &body);
    }
    let response = f
        .client
        .get(format!("{}/api/v1/indicators", f.base))
        .header("X-API-Key", "rest-test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
