//! The HTTP client for AbuseIPDB API v2: builds the two requests the appliance makes
//! (`/blacklist`, `/check`), reads bounded bodies and turns every answer into either typed
//! data plus the rate-limit headers, or an [`AbuseIpDbError`].
//!
//! The client knows nothing about budgets: callers count a call before they send it. The
//! API key travels only in the `Key` header, marked sensitive, and is never logged.

use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::config::{AbuseIpDbSettings, Secret};

/// The blacklist of a paid plan can hold 500,000 entries of ~150 bytes; 64 MiB is ample.
pub const MAX_BLACKLIST_BYTES: usize = 64 * 1024 * 1024;

/// A `/check` answer without `verbose` is well under a kilobyte.
pub const MAX_CHECK_BYTES: usize = 1024 * 1024;

/// How far back `/check` counts reports.
const MAX_AGE_IN_DAYS: &str = "90";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AbuseIpDbError {
    #[error("AbuseIPDB rejected the API key (HTTP {status}): {detail}")]
    BadKey { status: u16, detail: String },
    #[error("AbuseIPDB rate limit (HTTP 429, remaining {:?}): {detail}", rate.remaining)]
    RateLimited { rate: RateHeaders, detail: String },
    #[error("AbuseIPDB server error (HTTP {status}): {detail}")]
    Server { status: u16, detail: String },
    #[error("AbuseIPDB did not answer within {seconds} s")]
    Timeout { seconds: u64 },
    #[error("AbuseIPDB could not be reached: {0}")]
    Transport(String),
    #[error("AbuseIPDB answered with a malformed body: {0}")]
    Malformed(String),
    #[error("AbuseIPDB answered with more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("AbuseIPDB answered HTTP {status}: {detail}")]
    Status { status: u16, detail: String },
    #[error("the AbuseIPDB base URL is not usable: {0}")]
    BaseUrl(String),
    #[error("state store: {0}")]
    Store(String),
}

impl AbuseIpDbError {
    /// Failures that say nothing about the upstream's health (a refused input) do not
    /// start a back-off; every other failure does.
    pub fn backs_off(&self) -> bool {
        !matches!(
            self,
            AbuseIpDbError::Status { .. } | AbuseIpDbError::BaseUrl(_) | AbuseIpDbError::Store(_)
        )
    }
}

/// The rate-limit headers AbuseIPDB sends with its answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset`, epoch seconds.
    pub reset: Option<Timestamp>,
    /// `Retry-After`, seconds.
    pub retry_after: Option<u64>,
}

/// A successful answer with the headers that came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    pub data: T,
    pub rate: RateHeaders,
}

/// The JSON blacklist body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlacklistBody {
    pub meta: BlacklistMeta,
    pub data: Vec<BlacklistItem>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistMeta {
    pub generated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistItem {
    pub ip_address: String,
    pub country_code: Option<String>,
    pub abuse_confidence_score: i64,
    pub last_reported_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckBody {
    data: CheckData,
}

/// The `data` object of a non-verbose `/check` answer (the fields the appliance keeps).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckData {
    pub ip_address: String,
    pub is_public: Option<bool>,
    pub abuse_confidence_score: i64,
    pub country_code: Option<String>,
    pub usage_type: Option<String>,
    pub isp: Option<String>,
    pub domain: Option<String>,
    pub total_reports: Option<i64>,
    pub last_reported_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    detail: String,
}

/// One configured connection to AbuseIPDB.
#[derive(Clone)]
pub struct AbuseIpDbClient {
    http: Client,
    base: String,
    key: Secret,
    timeout: Duration,
}

impl std::fmt::Debug for AbuseIpDbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbuseIpDbClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AbuseIpDbClient {
    /// A client for `settings.base_url` with `settings.timeout` per request.
    ///
    /// # Errors
    /// [`AbuseIpDbError::Transport`] when the HTTP client cannot be built.
    pub fn new(settings: &AbuseIpDbSettings, key: Secret) -> Result<Self, AbuseIpDbError> {
        // Another module may have installed the provider already; either way one is there.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("abuseipdb-ioc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AbuseIpDbError::Transport(e.to_string()))?;
        Ok(AbuseIpDbClient {
            http,
            base: settings.base_url.trim_end_matches('/').to_string(),
            key,
            timeout: settings.timeout,
        })
    }

    /// `GET /blacklist?confidenceMinimum=…&limit=…`.
    ///
    /// # Errors
    /// Every [`AbuseIpDbError`] but `Store`.
    pub async fn blacklist(
        &self,
        confidence_minimum: u8,
        limit: u32,
    ) -> Result<Reply<BlacklistBody>, AbuseIpDbError> {
        let url = self.url(
            "blacklist",
            &[
                ("confidenceMinimum", confidence_minimum.to_string()),
                ("limit", limit.to_string()),
            ],
        )?;
        let (bytes, rate) = self.get(url, MAX_BLACKLIST_BYTES).await?;
        let data = serde_json::from_slice(&bytes)
            .map_err(|e| AbuseIpDbError::Malformed(format!("blacklist: {e}")))?;
        Ok(Reply { data, rate })
    }

    /// `GET /check?ipAddress=…&maxAgeInDays=90`.
    ///
    /// # Errors
    /// Every [`AbuseIpDbError`] but `Store`.
    pub async fn check(&self, addr: IpAddr) -> Result<Reply<CheckData>, AbuseIpDbError> {
        let url = self.url(
            "check",
            &[
                ("ipAddress", addr.to_string()),
                ("maxAgeInDays", MAX_AGE_IN_DAYS.to_string()),
            ],
        )?;
        let (bytes, rate) = self.get(url, MAX_CHECK_BYTES).await?;
        let body: CheckBody = serde_json::from_slice(&bytes)
            .map_err(|e| AbuseIpDbError::Malformed(format!("check {addr}: {e}")))?;
        Ok(Reply {
            data: body.data,
            rate,
        })
    }

    fn url(&self, endpoint: &str, query: &[(&str, String)]) -> Result<Url, AbuseIpDbError> {
        let mut url = Url::parse(&format!("{}/{endpoint}", self.base))
            .map_err(|e| AbuseIpDbError::BaseUrl(e.to_string()))?;
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        Ok(url)
    }

    async fn get(&self, url: Url, max: usize) -> Result<(Vec<u8>, RateHeaders), AbuseIpDbError> {
        let mut key = HeaderValue::from_str(self.key.expose())
            .map_err(|_| AbuseIpDbError::BaseUrl("the API key is not a valid header".into()))?;
        key.set_sensitive(true);
        tracing::debug!(path = url.path(), "AbuseIPDB request");
        let response = self
            .http
            .get(url)
            .header("Key", key)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        let rate = rate_headers(response.headers());
        let body = read_bounded(response, max, self).await?;
        if status.is_success() {
            return Ok((body, rate));
        }
        Err(status_error(status, &rate, &body))
    }

    fn transport(&self, err: &reqwest::Error) -> AbuseIpDbError {
        if err.is_timeout() {
            return AbuseIpDbError::Timeout {
                seconds: self.timeout.as_secs(),
            };
        }
        // The error text holds the URL, which holds no secret (the key is a header).
        AbuseIpDbError::Transport(err.to_string())
    }
}

/// Reads at most `max` bytes; a longer body is an error, never a truncated parse.
async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
    client: &AbuseIpDbClient,
) -> Result<Vec<u8>, AbuseIpDbError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(AbuseIpDbError::TooLarge { limit: max });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| client.transport(&e))? {
        if body.len() + chunk.len() > max {
            return Err(AbuseIpDbError::TooLarge { limit: max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Parses `X-RateLimit-Limit/Remaining/Reset` and `Retry-After` (seconds form only; the
/// HTTP-date form is not used by AbuseIPDB and reads as absent).
pub fn rate_headers(headers: &HeaderMap) -> RateHeaders {
    let to_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    RateHeaders {
        limit: header_number(headers, "x-ratelimit-limit").map(to_u32),
        remaining: header_number(headers, "x-ratelimit-remaining").map(to_u32),
        reset: header_number(headers, "x-ratelimit-reset")
            .and_then(|s| Timestamp::from_second(i64::try_from(s).ok()?).ok()),
        retry_after: header_number(headers, RETRY_AFTER.as_str()),
    }
}

/// The first `errors[].detail`, or a short excerpt of a body that is not the error envelope.
fn error_detail(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) if !parsed.errors.is_empty() => parsed
            .errors
            .into_iter()
            .map(|e| e.detail)
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

fn status_error(status: StatusCode, rate: &RateHeaders, body: &[u8]) -> AbuseIpDbError {
    let detail = error_detail(body);
    let code = status.as_u16();
    match code {
        401 | 403 => AbuseIpDbError::BadKey {
            status: code,
            detail,
        },
        429 => AbuseIpDbError::RateLimited {
            rate: *rate,
            detail,
        },
        500..=599 => AbuseIpDbError::Server {
            status: code,
            detail,
        },
        _ => AbuseIpDbError::Status {
            status: code,
            detail,
        },
    }
}

/// When a 429 allows the next call: the later of `Retry-After` and `X-RateLimit-Reset`;
/// one minute when neither is given.
pub fn retry_until(rate: &RateHeaders, now: Timestamp) -> Timestamp {
    let after = rate
        .retry_after
        .map(|s| super::budget::plus_seconds(now, i64::try_from(s).unwrap_or(i64::MAX)));
    match (after, rate.reset) {
        (Some(a), Some(r)) => a.max(r),
        (Some(a), None) => a,
        (None, Some(r)) => r,
        (None, None) => super::budget::plus_seconds(now, 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_their_detail() {
        let body = br#"{"errors":[{"detail":"Authentication failed.","status":401}]}"#;
        let err = status_error(StatusCode::UNAUTHORIZED, &RateHeaders::default(), body);
        assert!(
            matches!(err, AbuseIpDbError::BadKey { status: 401, ref detail } if detail == "Authentication failed.")
        );
        let err = status_error(StatusCode::BAD_GATEWAY, &RateHeaders::default(), b"<html>");
        assert!(matches!(err, AbuseIpDbError::Server { status: 502, .. }));
    }

    #[test]
    fn retry_takes_the_later_of_both_headers() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let rate = RateHeaders {
            retry_after: Some(100),
            reset: Some(Timestamp::from_second(1_000_050).unwrap()),
            ..RateHeaders::default()
        };
        assert_eq!(retry_until(&rate, now).as_second(), 1_000_100);
        let none = RateHeaders::default();
        assert_eq!(retry_until(&none, now).as_second(), 1_000_060);
    }
}
