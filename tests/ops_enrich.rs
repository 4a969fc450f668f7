//! On-demand enrichment over the real HTTP server, against the local fakes of AbuseIPDB and
//! the geolocation providers: fetched, cached, refused for budget, not public, invalid, and
//! the 400/413 answers.

mod common;

use std::time::Duration;

use abuseipdb_ioc::config::{GeoProviderKind, Secret};
use common::app::{TestApp, http_client};
use common::fake_abuseipdb::FakeAbuseIpDb;
use common::fake_geo::{Fakes, place};
use serde_json::{Value, json};

const KEY: &str = "enrich-key";

async fn app(fake: &FakeAbuseIpDb, geo: &Fakes, check_limit: u32) -> TestApp {
    TestApp::with(|s| {
        s.http.api_keys = vec![Secret::new(KEY)];
        s.abuseipdb.api_key = Some(Secret::new(common::fake_abuseipdb::KEY));
        s.abuseipdb.base_url = fake.base_url.clone();
        s.abuseipdb.timeout = Duration::from_secs(2);
        s.abuseipdb.check_daily_limit = check_limit;
        s.geo.providers = vec![GeoProviderKind::IpApi];
        s.geo.ipapi_base_url = geo.ipapi.base.clone();
        s.geo.request_delay = Duration::from_millis(10);
    })
}

async fn post(url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = http_client().post(url).bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn single_address_is_fetched_then_cached() {
    let fake = FakeAbuseIpDb::start().await;
    fake.set_score("8.8.8.8", 77);
    let geo = Fakes::start().await;
    let t = app(&fake, &geo, 100).await;
    let base = t.serve().await;

    let (status, first) = post(&format!("{base}/api/v1/enrich/8.8.8.8"), None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["ip"], "8.8.8.8");
    assert_eq!(first["abuseipdb"]["status"], "fetched");
    assert_eq!(first["abuseipdb"]["facts"]["score"], 77);
    assert_eq!(first["geo"]["status"], "located");
    let (lat, _) = place("8.8.8.8".parse().unwrap());
    assert_eq!(first["geo"]["location"]["latitude"], lat);
    assert_eq!(fake.check_calls(), 1);

    t.clock.advance(jiff::SignedDuration::from_secs(5));
    let (_, second) = post(&format!("{base}/api/v1/enrich/8.8.8.8"), None).await;
    assert_eq!(second["abuseipdb"]["status"], "cached");
    assert_eq!(second["geo"]["status"], "cached");
    assert_eq!(fake.check_calls(), 1);
}

#[tokio::test]
async fn invalid_and_private_addresses() {
    let fake = FakeAbuseIpDb::start().await;
    let geo = Fakes::start().await;
    let t = app(&fake, &geo, 100).await;
    let base = t.serve().await;

    let (status, body) = post(&format!("{base}/api/v1/enrich/not-an-ip"), None).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not-an-ip")
    );

    let (status, body) = post(&format!("{base}/api/v1/enrich/10.1.2.3"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["abuseipdb"]["status"], "not_public");
    assert_eq!(body["geo"]["status"], "not_public");
    assert_eq!(fake.check_calls(), 0);
}

#[tokio::test]
async fn bulk_answers_per_address_and_refuses_beyond_budget() {
    let fake = FakeAbuseIpDb::start().await;
    let geo = Fakes::start().await;
    let t = app(&fake, &geo, 2).await;
    let base = t.serve().await;
    let url = format!("{base}/api/v1/enrich/bulk");

    let body = json!({"ips": ["8.8.8.8", "bogus", "1.1.1.1", "9.9.9.9", "192.168.0.1"]});
    let (status, answer) = post(&url, Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["abuseipdb"]["status"], "fetched");
    assert_eq!(results[1]["status"], "invalid");
    assert_eq!(results[1]["ip"], "bogus");
    assert_eq!(results[2]["abuseipdb"]["status"], "fetched");
    assert_eq!(results[3]["abuseipdb"]["status"], "refused");
    assert_eq!(results[3]["abuseipdb"]["refusal"]["reason"], "daily_limit");
    assert!(
        results[3]["abuseipdb"]["reason"]
            .as_str()
            .unwrap()
            .contains("2/2")
    );
    assert_eq!(results[3]["geo"]["status"], "located");
    assert_eq!(results[4]["abuseipdb"]["status"], "not_public");
    assert_eq!(fake.check_calls(), 2);

    // A bare array is accepted too.
    let (status, answer) = post(&url, Some(json!(["8.8.8.8"]))).await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"][0]["abuseipdb"]["status"], "cached");
}

#[tokio::test]
async fn bulk_rejects_bad_bodies() {
    let fake = FakeAbuseIpDb::start().await;
    let geo = Fakes::start().await;
    let t = app(&fake, &geo, 100).await;
    let base = t.serve().await;
    let url = format!("{base}/api/v1/enrich/bulk");

    let many: Vec<String> = (0..101)
        .map(|i| format!("8.8.{}.{}", i / 250, i % 250))
        .collect();
    let (status, body) = post(&url, Some(json!({"ips": many}))).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100")
    );

    let response = http_client()
        .post(&url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let (status, _) = post(&url, Some(json!({"addresses": []}))).await;
    assert_eq!(status, 400);
    assert_eq!(fake.check_calls(), 0);
}

#[tokio::test]
async fn local_only_mode_says_disabled() {
    let t = TestApp::with(|s| s.http.api_keys = vec![Secret::new(KEY)]);
    let base = t.serve().await;
    let (status, body) = post(&format!("{base}/api/v1/enrich/8.8.8.8"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["abuseipdb"]["status"], "disabled");
    assert_eq!(body["geo"]["status"], "disabled");
}
