//! ip-api.com: the single `GET /json/{ip}` and the batch `POST /batch` (up to 100 addresses,
//! one request against the 15/min window). Owns its two rate gates: the documented limits
//! (45/min single, 15/min batch), `GEO_REQUEST_DELAY` between requests, and the `X-Rl`/`X-Ttl`
//! headers, which pause an endpoint when the remaining count reaches 0.
//!
//! Failures ("private range", "invalid query") come back as HTTP 200 with `status: fail` and
//! are answers without data, not errors.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::provider::{
    Answers, BodyError, Failure, Gate, Provider, asn_from_text, client, ensure_public,
    header_number, read_body, text, usable,
};
use crate::ioc::Location;

/// Most addresses in one batch request (more gives HTTP 422).
pub const BATCH_LIMIT: usize = 100;
const SINGLE_PER_MINUTE: u32 = 45;
const BATCH_PER_MINUTE: u32 = 15;
/// `status` and `message` make failures unambiguous; `query` ties answers to addresses.
const FIELDS: &str = "status,message,country,countryCode,regionName,city,lat,lon,isp,as,query";
/// Pause after a 429 that carried no `X-Ttl`.
const DEFAULT_PAUSE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum IpApiError {
    #[error("ip-api request to {url} failed: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("ip-api {endpoint} is rate limited for {wait:?}")]
    RateLimited {
        endpoint: &'static str,
        wait: Duration,
    },
    #[error("ip-api {endpoint} answered HTTP {status}")]
    Status { endpoint: &'static str, status: u16 },
    #[error("ip-api {endpoint} body: {source}")]
    Body {
        endpoint: &'static str,
        source: BodyError,
    },
    #[error("ip-api {endpoint} answer is not the documented JSON: {source}")]
    Decode {
        endpoint: &'static str,
        source: serde_json::Error,
    },
    #[error("ip-api batch answered {got} items for {sent} addresses")]
    Count { sent: usize, got: usize },
    #[error("refusing to send the non-public address {0} to ip-api")]
    NotPublic(IpAddr),
}

impl From<IpApiError> for Failure {
    fn from(err: IpApiError) -> Failure {
        match err {
            IpApiError::RateLimited { wait, .. } => Failure::Paused { wait },
            other => Failure::Failed {
                reason: other.to_string(),
            },
        }
    }
}

/// One item of a single or batch answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    status: Option<String>,
    country: Option<String>,
    country_code: Option<String>,
    region_name: Option<String>,
    city: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    isp: Option<String>,
    #[serde(rename = "as")]
    autonomous_system: Option<String>,
}

impl Item {
    fn location(self) -> Option<Location> {
        if self.status.as_deref() == Some("fail") {
            return None;
        }
        let asn = self.autonomous_system.as_deref().and_then(asn_from_text);
        usable(Location {
            latitude: self.lat?,
            longitude: self.lon?,
            country_code: text(self.country_code),
            country_name: text(self.country),
            city: text(self.city),
            region: text(self.region_name),
            asn,
            isp: text(self.isp),
            provider: "ipapi".to_string(),
        })
    }
}

pub struct IpApi {
    base: String,
    http: reqwest::Client,
    single: Gate,
    batch: Gate,
}

impl IpApi {
    pub fn new(base: &str, delay: Duration, timeout: Duration) -> IpApi {
        let minute = Duration::from_secs(60);
        IpApi {
            base: base.trim_end_matches('/').to_string(),
            http: client(timeout),
            single: Gate::new(SINGLE_PER_MINUTE, minute, delay),
            batch: Gate::new(BATCH_PER_MINUTE, minute, delay),
        }
    }

    /// `GET /json/{ip}`.
    ///
    /// # Errors
    /// Transport, status, rate-limit and decoding failures.
    pub async fn single(&self, addr: IpAddr) -> Result<Option<Location>, IpApiError> {
        ensure_public(&[addr]).map_err(IpApiError::NotPublic)?;
        self.single
            .acquire()
            .await
            .map_err(|wait| IpApiError::RateLimited {
                endpoint: "json",
                wait,
            })?;
        let url = format!("{}/json/{addr}?fields={FIELDS}", self.base);
        let request = self.http.get(&url);
        let body = self.send(request, &url, "json", &self.single).await?;
        let item: Item = serde_json::from_slice(&body).map_err(|source| IpApiError::Decode {
            endpoint: "json",
            source,
        })?;
        Ok(item.location())
    }

    /// `POST /batch` with up to [`BATCH_LIMIT`] addresses.
    ///
    /// # Errors
    /// Transport, status, rate-limit and decoding failures, or an answer of the wrong length.
    pub async fn batch(&self, addrs: &[IpAddr]) -> Result<Answers, IpApiError> {
        ensure_public(addrs).map_err(IpApiError::NotPublic)?;
        self.batch
            .acquire()
            .await
            .map_err(|wait| IpApiError::RateLimited {
                endpoint: "batch",
                wait,
            })?;
        let url = format!("{}/batch?fields={FIELDS}", self.base);
        let queries: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        let request = self.http.post(&url).json(&queries);
        let body = self.send(request, &url, "batch", &self.batch).await?;
        let items: Vec<Item> =
            serde_json::from_slice(&body).map_err(|source| IpApiError::Decode {
                endpoint: "batch",
                source,
            })?;
        if items.len() != addrs.len() {
            return Err(IpApiError::Count {
                sent: addrs.len(),
                got: items.len(),
            });
        }
        Ok(items.into_iter().map(Item::location).collect())
    }

    /// Sends, applies the rate headers to `gate`, and returns the body of a 2xx answer.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        endpoint: &'static str,
        gate: &Gate,
    ) -> Result<Vec<u8>, IpApiError> {
        let response = request.send().await.map_err(|source| IpApiError::Request {
            url: url.to_string(),
            source,
        })?;
        let status = response.status().as_u16();
        let remaining = header_number(&response, "X-Rl");
        let ttl = header_number(&response, "X-Ttl").map(Duration::from_secs);
        tracing::debug!(
            provider = "ipapi",
            endpoint,
            status,
            ?remaining,
            ?ttl,
            "geo request"
        );
        if status == 429 {
            // The 429 body is undocumented and never parsed.
            let wait = ttl.unwrap_or(DEFAULT_PAUSE);
            gate.pause(wait);
            return Err(IpApiError::RateLimited { endpoint, wait });
        }
        if remaining == Some(0) {
            gate.pause(ttl.unwrap_or(DEFAULT_PAUSE));
        }
        if !(200..300).contains(&status) {
            return Err(IpApiError::Status { endpoint, status });
        }
        read_body(response)
            .await
            .map_err(|source| IpApiError::Body { endpoint, source })
    }
}

impl Provider for IpApi {
    fn name(&self) -> &'static str {
        "ipapi"
    }

    fn batch_limit(&self) -> usize {
        BATCH_LIMIT
    }

    fn paused_for(&self) -> Option<Duration> {
        // Paused only when neither endpoint can be used.
        let single = self.single.paused_for()?;
        let batch = self.batch.paused_for()?;
        Some(single.min(batch))
    }

    fn locate<'a>(&'a self, addrs: &'a [IpAddr]) -> BoxFuture<'a, Result<Answers, Failure>> {
        Box::pin(async move {
            match addrs {
                [one] => Ok(vec![self.single(*one).await?]),
                many => Ok(self.batch(many).await?),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_bodies_are_unknown() {
        let item: Item = serde_json::from_str(
            r#"{"status":"fail","message":"private range","query":"10.0.0.1"}"#,
        )
        .unwrap();
        assert!(item.location().is_none());
    }

    #[test]
    fn success_body_maps_every_field() {
        let body = r#"{"query":"24.48.0.1","status":"success","country":"Canada","countryCode":"CA","regionName":"Quebec","city":"Montreal","lat":45.4995,"lon":-73.5848,"isp":"Le Groupe Videotron Ltee","as":"AS5769 Videotron Telecom Ltee"}"#;
        let loc = serde_json::from_str::<Item>(body)
            .unwrap()
            .location()
            .unwrap();
        assert_eq!(loc.country_code.as_deref(), Some("CA"));
        assert_eq!(loc.asn, Some(5769));
        assert_eq!((loc.latitude, loc.longitude), (45.4995, -73.5848));
    }
}
