//! GeoJS: `GET /v1/ip/geo/{ip}.json` (one object) and `GET /v1/ip/geo.json?ip=a,b,c` (an
//! array in request order). No limits are documented; the gate still spaces requests by
//! `GEO_REQUEST_DELAY` and keeps a modest per-minute ceiling out of courtesy.
//!
//! Unknown addresses come back as HTTP 200 with `"latitude": "nil"`, `asn: 64512` and no
//! `country_code`; all of those mean "no data".

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::provider::{
    Answers, BodyError, Failure, Gate, Provider, client, ensure_public, read_body, text, usable,
};
use crate::ioc::Location;

/// Addresses per multi request; keeps the query string short.
pub const BATCH_LIMIT: usize = 50;
const PER_MINUTE: u32 = 60;
/// The placeholder ASN of unknown addresses.
const UNKNOWN_ASN: u32 = 64512;

#[derive(Debug, thiserror::Error)]
pub enum GeoJsError {
    #[error("geojs request to {url} failed: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("geojs is rate limited for {0:?}")]
    RateLimited(Duration),
    #[error("geojs answered HTTP {0}")]
    Status(u16),
    #[error("geojs body: {0}")]
    Body(#[from] BodyError),
    #[error("geojs answer is not the documented JSON: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("geojs answered {got} items for {sent} addresses")]
    Count { sent: usize, got: usize },
    #[error("refusing to send the non-public address {0} to geojs")]
    NotPublic(IpAddr),
}

impl From<GeoJsError> for Failure {
    fn from(err: GeoJsError) -> Failure {
        match err {
            GeoJsError::RateLimited(wait) => Failure::Paused { wait },
            other => Failure::Failed {
                reason: other.to_string(),
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct Item {
    country_code: Option<String>,
    country: Option<String>,
    city: Option<String>,
    region: Option<String>,
    /// Strings for historic reasons; `"nil"` when unknown.
    latitude: Option<String>,
    longitude: Option<String>,
    asn: Option<u32>,
    organization_name: Option<String>,
}

fn coordinate(value: Option<&str>) -> Option<f64> {
    value?.trim().parse().ok()
}

impl Item {
    fn location(self) -> Option<Location> {
        let country_code = text(self.country_code)?;
        let isp = text(self.organization_name).filter(|name| name != "Unknown");
        usable(Location {
            latitude: coordinate(self.latitude.as_deref())?,
            longitude: coordinate(self.longitude.as_deref())?,
            country_code: Some(country_code),
            country_name: text(self.country),
            city: text(self.city),
            region: text(self.region),
            asn: self.asn.filter(|asn| *asn != UNKNOWN_ASN),
            isp,
            provider: "geojs".to_string(),
        })
    }
}

pub struct GeoJs {
    base: String,
    http: reqwest::Client,
    gate: Gate,
}

impl GeoJs {
    pub fn new(base: &str, delay: Duration, timeout: Duration) -> GeoJs {
        GeoJs {
            base: base.trim_end_matches('/').to_string(),
            http: client(timeout),
            gate: Gate::new(PER_MINUTE, Duration::from_secs(60), delay),
        }
    }

    /// The single form for one address, the multi form for more.
    ///
    /// # Errors
    /// Transport, status and decoding failures, or an answer of the wrong length.
    pub async fn lookup(&self, addrs: &[IpAddr]) -> Result<Answers, GeoJsError> {
        ensure_public(addrs).map_err(GeoJsError::NotPublic)?;
        self.gate.acquire().await.map_err(GeoJsError::RateLimited)?;
        let url = match addrs {
            [one] => format!("{}/v1/ip/geo/{one}.json", self.base),
            many => {
                let list: Vec<String> = many.iter().map(IpAddr::to_string).collect();
                format!("{}/v1/ip/geo.json?ip={}", self.base, list.join(","))
            }
        };
        let body = self.get(&url, addrs.len()).await?;
        let items: Vec<Item> = if addrs.len() == 1 {
            vec![serde_json::from_slice(&body)?]
        } else {
            serde_json::from_slice(&body)?
        };
        if items.len() != addrs.len() {
            return Err(GeoJsError::Count {
                sent: addrs.len(),
                got: items.len(),
            });
        }
        Ok(items.into_iter().map(Item::location).collect())
    }

    async fn get(&self, url: &str, count: usize) -> Result<Vec<u8>, GeoJsError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|source| GeoJsError::Request {
                url: url.to_string(),
                source,
            })?;
        let status = response.status().as_u16();
        tracing::debug!(provider = "geojs", count, status, "geo request");
        if status == 429 {
            let wait = super::provider::header_number(&response, "Retry-After")
                .map_or(Duration::from_secs(60), Duration::from_secs);
            self.gate.pause(wait);
            return Err(GeoJsError::RateLimited(wait));
        }
        if !(200..300).contains(&status) {
            return Err(GeoJsError::Status(status));
        }
        Ok(read_body(response).await?)
    }
}

impl Provider for GeoJs {
    fn name(&self) -> &'static str {
        "geojs"
    }

    fn batch_limit(&self) -> usize {
        BATCH_LIMIT
    }

    fn paused_for(&self) -> Option<Duration> {
        self.gate.paused_for()
    }

    fn locate<'a>(&'a self, addrs: &'a [IpAddr]) -> BoxFuture<'a, Result<Answers, Failure>> {
        Box::pin(async move { Ok(self.lookup(addrs).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Option<Location> {
        serde_json::from_str::<Item>(json).unwrap().location()
    }

    #[test]
    fn string_coordinates() {
        let loc = parse(r#"{"accuracy":1000,"area_code":"0","asn":15169,"continent_code":"NA","country":"United States","country_code":"US","country_code3":"USA","ip":"8.8.8.8","latitude":"37.751","longitude":"-97.822","organization":"AS15169 Google LLC","organization_name":"Google LLC","timezone":"America\/Chicago"}"#).unwrap();
        assert_eq!((loc.latitude, loc.longitude), (37.751, -97.822));
        assert_eq!(loc.asn, Some(15169));
    }

    #[test]
    fn nil_and_missing_country_are_unknown() {
        assert!(parse(r#"{"area_code":"0","asn":64512,"ip":"192.0.2.1","latitude":"nil","longitude":"nil","organization":"AS64512 Unknown","organization_name":"Unknown"}"#).is_none());
        assert!(parse(r#"{"country_code":"US","latitude":"nil","longitude":"1"}"#).is_none());
    }
}
