//! Fixtures of the REST tests: a served appliance with a known set of indicators, one of
//! them revoked, and small request helpers.

use super::app::{TestApp, http_client};

/// Active addresses of [`Fixture`] and their confidence; `high` are ≥ 80 (the default
/// threshold).
pub const ACTIVE: [(&str, i64); 6] = [
    ("192.0.2.1", 90),
    ("192.0.2.2", 85),
    ("192.0.2.3", 60),
    ("198.51.100.7", 40),
    ("2001:db8::1", 95),
    ("2001:db8::2", 70),
];

/// Published once, then deleted from the source: revoked in the current snapshot.
pub const REVOKED: &str = "203.0.113.66";

pub struct Fixture {
    pub t: TestApp,
    pub base: String,
    pub client: reqwest::Client,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut abuseipdb_ioc::config::Settings)) -> Fixture {
        let t = TestApp::with(adjust);
        for (ip, confidence) in ACTIVE {
            t.report(ip, confidence);
        }
        t.report(REVOKED, 88);
        t.cycle().await;
        t.clock.advance(jiff::SignedDuration::from_mins(5));
        t.sql(&format!(
            "DELETE FROM reported_ips WHERE ip_address = '{REVOKED}'"
        ));
        t.cycle().await;
        let base = t.serve().await;
        Fixture {
            t,
            base,
            client: http_client(),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// Status and JSON body.
    pub async fn json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        (status, value)
    }

    /// Status and text body.
    pub async fn text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// Asserts the `ApiError` body shape and returns its message.
pub fn error_message(status: u16, body: &serde_json::Value) -> String {
    assert_eq!(body["error"]["status"], status, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

/// The addresses of a listing page, in order.
pub fn ips(body: &serde_json::Value) -> Vec<String> {
    body["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ip"].as_str().unwrap().to_string())
        .collect()
}

/// `ACTIVE` addresses with at least `min` confidence, sorted.
pub fn active_at_least(min: i64) -> Vec<String> {
    let mut ips: Vec<String> = ACTIVE
        .iter()
        .filter(|(_, c)| *c >= min)
        .map(|(ip, _)| ip.to_string())
        .collect();
    ips.sort();
    ips
}
