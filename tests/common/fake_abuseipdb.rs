//! A local fake of AbuseIPDB API v2 (`/api/v2/blacklist`, `/api/v2/check`) on
//! `127.0.0.1:0`: the documented bodies and headers, per-endpoint daily limits, a switchable
//! fault mode and counters of the calls it received.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const KEY: &str = "k";

/// What the fake answers instead of a normal response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Unauthorized,
    RateLimited,
    ServerError,
    /// Sleeps this long before answering.
    Slow(Duration),
    Malformed,
}

/// The fake's state; tests change it through [`FakeAbuseIpDb`].
pub struct FakeState {
    pub blacklist_calls: AtomicU32,
    pub check_calls: AtomicU32,
    pub blacklist_limit: AtomicU32,
    pub check_limit: AtomicU32,
    pub fault: Mutex<Fault>,
    /// `(address, score, country)` in blacklist order.
    pub entries: Mutex<Vec<(String, u8, String)>>,
    pub generated_at: Mutex<String>,
    /// `/check` scores by address; unknown addresses score 0.
    pub scores: Mutex<HashMap<String, u8>>,
    /// Calls answered (not refused) per endpoint today.
    used: Mutex<HashMap<&'static str, u32>>,
}

pub struct FakeAbuseIpDb {
    pub state: Arc<FakeState>,
    /// `http://127.0.0.1:<port>/api/v2`
    pub base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAbuseIpDb {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAbuseIpDb {
    pub async fn start() -> FakeAbuseIpDb {
        let state = Arc::new(FakeState {
            blacklist_calls: AtomicU32::new(0),
            check_calls: AtomicU32::new(0),
            blacklist_limit: AtomicU32::new(5),
            check_limit: AtomicU32::new(1000),
            fault: Mutex::new(Fault::None),
            entries: Mutex::new(Vec::new()),
            generated_at: Mutex::new("2026-03-01T00:00:00+00:00".into()),
            scores: Mutex::new(HashMap::new()),
            used: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/api/v2/blacklist", get(blacklist))
            .route("/api/v2/check", get(check))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAbuseIpDb {
            state,
            base_url: format!("http://{addr}/api/v2"),
            task,
        }
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = fault;
    }

    pub fn set_entries(&self, entries: &[(&str, u8)], generated_at: &str) {
        *self.state.entries.lock().unwrap() = entries
            .iter()
            .map(|(ip, score)| (ip.to_string(), *score, "NL".to_string()))
            .collect();
        *self.state.generated_at.lock().unwrap() = generated_at.to_string();
    }

    pub fn set_score(&self, ip: &str, score: u8) {
        self.state.scores.lock().unwrap().insert(ip.into(), score);
    }

    /// Starts the fake's own new day.
    pub fn new_day(&self) {
        self.state.used.lock().unwrap().clear();
    }

    pub fn blacklist_calls(&self) -> u32 {
        self.state.blacklist_calls.load(Ordering::SeqCst)
    }

    pub fn check_calls(&self) -> u32 {
        self.state.check_calls.load(Ordering::SeqCst)
    }
}

fn errors(status: StatusCode, detail: &str, headers: HeaderMap) -> Response {
    let body = json!({"errors": [{"detail": detail, "status": status.as_u16()}]});
    (status, headers, Json(body)).into_response()
}

/// Everything every endpoint does before its own answer: count, authenticate, apply the
/// fault and the daily limit. `Ok` carries the rate headers for the success answer.
async fn gate(
    state: &FakeState,
    endpoint: &'static str,
    request: &HeaderMap,
) -> Result<HeaderMap, Response> {
    let (calls, limit) = match endpoint {
        "blacklist" => (&state.blacklist_calls, &state.blacklist_limit),
        _ => (&state.check_calls, &state.check_limit),
    };
    calls.fetch_add(1, Ordering::SeqCst);
    let limit = limit.load(Ordering::SeqCst);
    let fault = *state.fault.lock().unwrap();
    if let Fault::Slow(pause) = fault {
        tokio::time::sleep(pause).await;
    }
    let key_ok = request.get("key").and_then(|v| v.to_str().ok()) == Some(KEY);
    if !key_ok || fault == Fault::Unauthorized {
        let detail = "Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.";
        return Err(errors(StatusCode::UNAUTHORIZED, detail, HeaderMap::new()));
    }
    let used = *state.used.lock().unwrap().get(endpoint).unwrap_or(&0);
    if used >= limit || fault == Fault::RateLimited {
        let mut headers = rate(limit, 0);
        headers.insert("retry-after", "29241".parse().unwrap());
        headers.insert("x-ratelimit-reset", "1545973200".parse().unwrap());
        let detail = format!(
            "Daily rate limit of {limit} requests exceeded for this endpoint. See headers for additional details."
        );
        return Err(errors(StatusCode::TOO_MANY_REQUESTS, &detail, headers));
    }
    if fault == Fault::ServerError {
        return Err(errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server Error",
            rate(limit, limit - used),
        ));
    }
    state.used.lock().unwrap().insert(endpoint, used + 1);
    Ok(rate(limit, limit - used - 1))
}

fn rate(limit: u32, remaining: u32) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-limit", limit.into());
    headers.insert("x-ratelimit-remaining", remaining.into());
    headers
}

fn malformed(state: &FakeState, headers: HeaderMap) -> Option<Response> {
    (*state.fault.lock().unwrap() == Fault::Malformed)
        .then(|| (StatusCode::OK, headers, "{\"data\": [").into_response())
}

async fn blacklist(State(state): State<Arc<FakeState>>, request: HeaderMap) -> Response {
    let headers = match gate(&state, "blacklist", &request).await {
        Ok(headers) => headers,
        Err(response) => return response,
    };
    if let Some(response) = malformed(&state, headers.clone()) {
        return response;
    }
    let data: Vec<Value> = state
        .entries
        .lock()
        .unwrap()
        .iter()
        .map(|(ip, score, country)| {
            json!({"ipAddress": ip, "countryCode": country, "abuseConfidenceScore": score,
                   "lastReportedAt": "2026-02-28T19:17:02+00:00"})
        })
        .collect();
    let generated = state.generated_at.lock().unwrap().clone();
    let body = json!({"meta": {"generatedAt": generated}, "data": data});
    (StatusCode::OK, headers, Json(body)).into_response()
}

async fn check(
    State(state): State<Arc<FakeState>>,
    Query(query): Query<HashMap<String, String>>,
    request: HeaderMap,
) -> Response {
    let headers = match gate(&state, "check", &request).await {
        Ok(headers) => headers,
        Err(response) => return response,
    };
    let Some(addr) = query
        .get("ipAddress")
        .and_then(|a| a.parse::<IpAddr>().ok())
    else {
        let detail = "The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888).";
        return errors(StatusCode::UNPROCESSABLE_ENTITY, detail, headers);
    };
    if let Some(response) = malformed(&state, headers.clone()) {
        return response;
    }
    let score = *state
        .scores
        .lock()
        .unwrap()
        .get(&addr.to_string())
        .unwrap_or(&0);
    let body = json!({"data": {
        "ipAddress": addr.to_string(), "isPublic": true, "ipVersion": if addr.is_ipv4() { 4 } else { 6 },
        "isWhitelisted": false, "abuseConfidenceScore": score, "countryCode": "CN",
        "usageType": "Data Center/Web Hosting/Transit", "isp": "Example Cloud", "domain": "example.net",
        "hostnames": [], "isTor": false, "totalReports": 12, "numDistinctUsers": 3,
        "lastReportedAt": "2026-02-28T20:55:14+00:00"
    }});
    (StatusCode::OK, headers, Json(body)).into_response()
}
