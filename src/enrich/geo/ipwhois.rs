//! ipwho.is (`GET {base}/{ip}`), single addresses only on the free plan. Owns its gate: the
//! documented 60 requests per minute, `GEO_REQUEST_DELAY` between requests, and the
//! `Retry-After` of a 429, which pauses this provider alone.
//!
//! `success: false` with HTTP 200 ("Reserved range", "Invalid IP address") is an answer
//! without data. The flat legacy ipwhois.app shape (top-level `asn: "AS15169"`, `org`, `isp`)
//! is read as well.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use super::provider::{
    Answers, BodyError, Failure, Gate, Provider, asn_from_text, client, ensure_public,
    header_number, read_body, text, usable,
};
use crate::ioc::Location;

const PER_MINUTE: u32 = 60;
/// Pause after a 429 without `Retry-After`.
const DEFAULT_PAUSE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum IpWhoisError {
    #[error("ipwhois request to {url} failed: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("ipwhois is rate limited for {0:?}")]
    RateLimited(Duration),
    #[error("ipwhois answered HTTP {0}")]
    Status(u16),
    #[error("ipwhois body: {0}")]
    Body(#[from] BodyError),
    #[error("ipwhois answer is not the documented JSON: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("refusing to send the non-public address {0} to ipwhois")]
    NotPublic(IpAddr),
}

impl From<IpWhoisError> for Failure {
    fn from(err: IpWhoisError) -> Failure {
        match err {
            IpWhoisError::RateLimited(wait) => Failure::Paused { wait },
            other => Failure::Failed {
                reason: other.to_string(),
            },
        }
    }
}

#[derive(Debug, Deserialize, Default)]
struct Connection {
    asn: Option<Value>,
    isp: Option<String>,
    org: Option<String>,
}

/// `success` is in every documented answer; a body without it is not an answer about the
/// address (a proxy page, another API), so it fails to decode instead of reading as
/// "unknown" and being cached as a negative result.
#[derive(Debug, Deserialize)]
struct Body {
    success: bool,
    country: Option<String>,
    country_code: Option<String>,
    city: Option<String>,
    region: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    connection: Option<Connection>,
    /// Legacy flat shape.
    asn: Option<Value>,
    isp: Option<String>,
    org: Option<String>,
}

/// `15169`, `"15169"` or `"AS15169"`.
fn asn(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => asn_from_text(s),
        _ => None,
    }
}

impl Body {
    fn location(self) -> Option<Location> {
        if !self.success {
            return None;
        }
        let conn = self.connection.unwrap_or_default();
        let asn = conn.asn.as_ref().or(self.asn.as_ref()).and_then(asn);
        let isp = text(conn.isp)
            .or(text(conn.org))
            .or(text(self.isp))
            .or(text(self.org));
        usable(Location {
            latitude: self.latitude?,
            longitude: self.longitude?,
            country_code: text(self.country_code),
            country_name: text(self.country),
            city: text(self.city),
            region: text(self.region),
            asn,
            isp,
            provider: "ipwhois".to_string(),
        })
    }
}

pub struct IpWhois {
    base: String,
    http: reqwest::Client,
    gate: Gate,
}

impl IpWhois {
    pub fn new(base: &str, delay: Duration, timeout: Duration) -> IpWhois {
        IpWhois {
            base: base.trim_end_matches('/').to_string(),
            http: client(timeout),
            gate: Gate::new(PER_MINUTE, Duration::from_secs(60), delay),
        }
    }

    /// `GET /{ip}`.
    ///
    /// # Errors
    /// Transport, status, rate-limit and decoding failures.
    pub async fn single(&self, addr: IpAddr) -> Result<Option<Location>, IpWhoisError> {
        ensure_public(&[addr]).map_err(IpWhoisError::NotPublic)?;
        self.gate
            .acquire()
            .await
            .map_err(IpWhoisError::RateLimited)?;
        let url = format!("{}/{addr}", self.base);
        let response =
            self.http
                .get(&url)
                .send()
                .await
                .map_err(|source| IpWhoisError::Request {
                    url: url.clone(),
                    source,
                })?;
        let status = response.status().as_u16();
        tracing::debug!(provider = "ipwhois", %addr, status, "geo request");
        if status == 429 {
            let wait =
                header_number(&response, "Retry-After").map_or(DEFAULT_PAUSE, Duration::from_secs);
            self.gate.pause(wait);
            return Err(IpWhoisError::RateLimited(wait));
        }
        if !(200..300).contains(&status) {
            return Err(IpWhoisError::Status(status));
        }
        let body: Body = serde_json::from_slice(&read_body(response).await?)?;
        Ok(body.location())
    }
}

impl Provider for IpWhois {
    fn name(&self) -> &'static str {
        "ipwhois"
    }

    fn batch_limit(&self) -> usize {
        1
    }

    fn paused_for(&self) -> Option<Duration> {
        self.gate.paused_for()
    }

    fn locate<'a>(&'a self, addrs: &'a [IpAddr]) -> BoxFuture<'a, Result<Answers, Failure>> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(addrs.len());
            for addr in addrs {
                answers.push(self.single(*addr).await?);
            }
            Ok(answers)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Option<Location> {
        serde_json::from_str::<Body>(json).unwrap().location()
    }

    #[test]
    fn current_shape() {
        let loc = parse(
            r#"{"ip":"8.8.4.4","success":true,"country":"United States","country_code":"US","region":"California","city":"Mountain View","latitude":37.38,"longitude":-122.08,"connection":{"asn":15169,"org":"Google LLC","isp":"Google LLC"},"timezone":{"id":"America/Los_Angeles"}}"#,
        )
        .unwrap();
        assert_eq!(loc.asn, Some(15169));
        assert_eq!(loc.isp.as_deref(), Some("Google LLC"));
    }

    #[test]
    fn legacy_flat_shape() {
        let loc = parse(
            r#"{"ip":"8.8.4.4","success":true,"country":"United States","country_code":"US","region":"New Jersey","city":"Newark","latitude":40.73,"longitude":-74.17,"asn":"AS15169","org":"Google LLC","isp":"Google LLC","timezone":"America/New_York"}"#,
        )
        .unwrap();
        assert_eq!(loc.asn, Some(15169));
        assert_eq!(loc.city.as_deref(), Some("Newark"));
    }

    #[test]
    fn failure_is_unknown() {
        assert!(parse(r#"{"ip":"10.0.0.1","success":false,"message":"Reserved range"}"#).is_none());
    }
}
