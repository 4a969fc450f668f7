//! What every geolocation provider shares: the interface the locator drives, how a provider
//! says "not now", the per-provider rate gate, and the size-bounded HTTP reading.
//!
//! Invariant: a provider never sends a non-public address. The locator filters them out, and
//! every web provider checks again with [`ensure_public`] just before building a request.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::ioc::Location;
use crate::source::address::is_public;

/// Most bytes read from any provider response.
pub const MAX_BODY: usize = 1 << 20;

/// One answer per address asked, in the same order; `None` means the provider knows nothing
/// (no data, unknown, or no coordinates).
pub type Answers = Vec<Option<Location>>;

/// Why a provider gave no answers for a whole request.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The provider must not be asked for `wait` (429, exhausted window).
    Paused { wait: Duration },
    /// Down, slow, or an unreadable answer; the addresses go to the next provider.
    Failed { reason: String },
}

/// A geolocation provider as the locator sees it.
pub trait Provider: Send + Sync {
    /// Short name recorded in `Location::provider` (`mmdb`, `ipapi`, …).
    fn name(&self) -> &'static str;

    /// Most addresses one [`Provider::locate`] call takes.
    fn batch_limit(&self) -> usize;

    /// How long the provider is still paused, if it is.
    fn paused_for(&self) -> Option<Duration>;

    /// Locates `addrs` (all public, at most `batch_limit`).
    fn locate<'a>(&'a self, addrs: &'a [IpAddr]) -> BoxFuture<'a, Result<Answers, Failure>>;
}

/// Refuses to go on when a non-public address reached a provider.
pub fn ensure_public(addrs: &[IpAddr]) -> Result<(), IpAddr> {
    match addrs.iter().find(|addr| !is_public(**addr)) {
        Some(addr) => Err(*addr),
        None => Ok(()),
    }
}

/// A location is an answer only with usable coordinates.
pub fn usable(location: Location) -> Option<Location> {
    let valid = location.latitude.is_finite()
        && location.longitude.is_finite()
        && (-90.0..=90.0).contains(&location.latitude)
        && (-180.0..=180.0).contains(&location.longitude);
    valid.then_some(location)
}

/// Empty strings mean "unknown" in several providers' answers.
pub fn text(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// `AS15169 Google LLC` or `AS15169` → 15169.
pub fn asn_from_text(text: &str) -> Option<u32> {
    let digits = text.trim().strip_prefix("AS").unwrap_or(text.trim());
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

// === impl Gate ===

/// Client-side limits of one endpoint: at most `limit` requests per `window`, requests spaced
/// by `gap`, and pauses ordered by the provider (429, `X-Rl: 0`).
#[derive(Debug)]
pub struct Gate {
    limit: u32,
    window: Duration,
    gap: Duration,
    state: Mutex<GateState>,
}

#[derive(Debug)]
struct GateState {
    window_start: Option<Instant>,
    used: u32,
    paused_until: Option<Instant>,
    next_send: Option<Instant>,
}

impl Gate {
    pub fn new(limit: u32, window: Duration, gap: Duration) -> Gate {
        Gate {
            limit,
            window,
            gap,
            state: Mutex::new(GateState {
                window_start: None,
                used: 0,
                paused_until: None,
                next_send: None,
            }),
        }
    }

    /// Books one request. `Ok(delay)`: send after `delay`. `Err(wait)`: the endpoint is
    /// paused or its window is used up for `wait`.
    pub fn reserve(&self) -> Result<Duration, Duration> {
        let now = Instant::now();
        let mut s = self.state.lock().expect("gate lock");
        if let Some(until) = s.paused_until.filter(|until| *until > now) {
            return Err(until - now);
        }
        let start = *s.window_start.get_or_insert(now);
        if now.duration_since(start) >= self.window {
            s.window_start = Some(now);
            s.used = 0;
        }
        if s.used >= self.limit {
            let reset = s.window_start.unwrap_or(now) + self.window;
            return Err(reset.saturating_duration_since(now));
        }
        s.used += 1;
        let send_at = s.next_send.map_or(now, |next| next.max(now));
        s.next_send = Some(send_at + self.gap);
        Ok(send_at - now)
    }

    /// Stops requests for `wait` (never shortens a longer pause).
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut s = self.state.lock().expect("gate lock");
        s.paused_until = Some(s.paused_until.map_or(until, |old| old.max(until)));
    }

    /// Remaining pause ordered by the provider, if any.
    pub fn paused_for(&self) -> Option<Duration> {
        let now = Instant::now();
        let s = self.state.lock().expect("gate lock");
        s.paused_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Books a request and waits for its turn.
    pub async fn acquire(&self) -> Result<(), Duration> {
        let delay = self.reserve()?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }
}

// === HTTP helpers ===

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the body failed: {0}")]
    Read(#[from] reqwest::Error),
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
}

/// An HTTP client for one provider, with the configured timeout.
pub fn client(timeout: Duration) -> reqwest::Client {
    // The crate is built without a default TLS provider; the first caller installs ring.
    // A second installation attempt fails harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("abuseipdb-ioc/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Reads at most [`MAX_BODY`] bytes of a response.
pub async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A numeric header (`X-Rl`, `X-Ttl`, `Retry-After` in seconds).
pub fn header_number(response: &reqwest::Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_text_forms() {
        assert_eq!(asn_from_text("AS15169 Google LLC"), Some(15169));
        assert_eq!(asn_from_text("AS5769"), Some(5769));
        assert_eq!(asn_from_text(""), None);
    }

    #[test]
    fn coordinates_must_be_usable() {
        let mut loc = Location {
            latitude: 45.0,
            longitude: -73.0,
            ..Location::default()
        };
        assert!(usable(loc.clone()).is_some());
        loc.latitude = f64::NAN;
        assert!(usable(loc).is_none());
    }

    #[tokio::test]
    async fn gate_counts_its_window() {
        let gate = Gate::new(2, Duration::from_secs(60), Duration::ZERO);
        assert!(gate.reserve().is_ok());
        assert!(gate.reserve().is_ok());
        assert!(gate.reserve().is_err());
        gate.pause(Duration::from_secs(5));
        assert!(gate.paused_for().is_some());
    }
}
