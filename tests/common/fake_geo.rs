//! Local fakes of the three web geolocation providers (ip-api.com, ipwho.is, GeoJS), on
//! `127.0.0.1:0`. Each serves the documented shapes, enforces its provider's real limits
//! with the real headers, can be switched to fail, and counts every request and address.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abuseipdb_ioc::source::address::classify;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// How a fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Normal = 0,
    /// HTTP 500 for everything.
    Down = 1,
    /// Waits 5 s before answering.
    Slow = 2,
    /// HTTP 200 with a broken JSON body.
    Malformed = 3,
}

/// Shared state of one fake: fault mode, limits, counters and the addresses it was sent.
#[derive(Debug)]
pub struct FakeState {
    mode: AtomicU8,
    /// Requests allowed per window on the single (or only) endpoint.
    pub single_limit: AtomicU32,
    /// Requests allowed per window on the batch endpoint.
    pub batch_limit: AtomicU32,
    pub single_requests: AtomicU64,
    pub batch_requests: AtomicU64,
    /// Requests refused with 429.
    pub refused: AtomicU64,
    window: Mutex<Window>,
    seen: Mutex<Vec<String>>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    single: u32,
    batch: u32,
}

const WINDOW: Duration = Duration::from_secs(60);

impl FakeState {
    fn new(single_limit: u32, batch_limit: u32) -> FakeState {
        FakeState {
            mode: AtomicU8::new(Mode::Normal as u8),
            single_limit: AtomicU32::new(single_limit),
            batch_limit: AtomicU32::new(batch_limit),
            single_requests: AtomicU64::new(0),
            batch_requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            window: Mutex::new(Window {
                start: None,
                single: 0,
                batch: 0,
            }),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            1 => Mode::Down,
            2 => Mode::Slow,
            3 => Mode::Malformed,
            _ => Mode::Normal,
        }
    }

    /// Every address text received, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub fn requests(&self) -> u64 {
        self.single_requests.load(Ordering::SeqCst) + self.batch_requests.load(Ordering::SeqCst)
    }

    fn note(&self, addrs: impl IntoIterator<Item = String>) {
        self.seen.lock().unwrap().extend(addrs);
    }

    /// Counts a request in the window: `Ok(remaining)` or `Err(seconds to reset)`.
    fn take(&self, batch: bool) -> Result<(u32, u64), u64> {
        let mut w = self.window.lock().unwrap();
        let now = Instant::now();
        let start = *w.start.get_or_insert(now);
        if now.duration_since(start) >= WINDOW {
            *w = Window {
                start: Some(now),
                single: 0,
                batch: 0,
            };
        }
        let ttl = (WINDOW.saturating_sub(now.duration_since(w.start.unwrap()))).as_secs() + 1;
        let (used, limit) = if batch {
            (&mut w.batch, self.batch_limit.load(Ordering::SeqCst))
        } else {
            (&mut w.single, self.single_limit.load(Ordering::SeqCst))
        };
        if *used >= limit {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(ttl);
        }
        *used += 1;
        Ok((limit - *used, ttl))
    }

    /// The fault of the current mode, if any.
    async fn fault(&self) -> Option<Response> {
        match self.mode() {
            Mode::Normal => None,
            Mode::Down => Some((StatusCode::INTERNAL_SERVER_ERROR, "down").into_response()),
            Mode::Slow => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                None
            }
            Mode::Malformed => Some((StatusCode::OK, "{\"status\":\"succ").into_response()),
        }
    }
}

/// A running fake.
pub struct Fake {
    pub base: String,
    pub state: Arc<FakeState>,
}

async fn serve(router: Router, state: Arc<FakeState>) -> Fake {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Fake {
        base: format!("http://{addr}"),
        state,
    }
}

/// A made-up but stable location for a public address.
pub fn place(addr: IpAddr) -> (f64, f64) {
    let seed = match addr {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => (u128::from(v6) >> 64) as u32,
    };
    let lat = f64::from(seed % 170) - 85.0 + 0.25;
    let lon = f64::from((seed / 170) % 350) - 175.0 + 0.5;
    (lat, lon)
}

// === ip-api ===

pub async fn ipapi() -> Fake {
    let state = Arc::new(FakeState::new(45, 15));
    let router = Router::new()
        .route("/json/{query}", get(ipapi_single))
        .route("/batch", post(ipapi_batch))
        .with_state(state.clone());
    serve(router, state).await
}

fn ipapi_item(query: &str) -> Value {
    let Ok(addr) = query.parse::<IpAddr>() else {
        return json!({"status": "fail", "message": "invalid query", "query": query});
    };
    match classify(addr) {
        "public" => {}
        "private" => return json!({"status": "fail", "message": "private range", "query": query}),
        _ => return json!({"status": "fail", "message": "reserved range", "query": query}),
    }
    let (lat, lon) = place(addr);
    json!({
        "status": "success", "country": "Canada", "countryCode": "CA", "region": "QC",
        "regionName": "Quebec", "city": "Montreal", "zip": "H3G", "lat": lat, "lon": lon,
        "timezone": "America/Toronto", "isp": "Le Groupe Videotron Ltee",
        "org": "Videotron Ltee", "as": "AS5769 Videotron Telecom Ltee", "query": query
    })
}

fn rate_headers(remaining: u32, ttl: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("X-Rl", HeaderValue::from(remaining));
    headers.insert("X-Ttl", HeaderValue::from(ttl));
    headers
}

fn too_many(ttl: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        rate_headers(0, ttl),
        "Too many requests",
    )
        .into_response()
}

async fn ipapi_single(State(s): State<Arc<FakeState>>, Path(query): Path<String>) -> Response {
    s.single_requests.fetch_add(1, Ordering::SeqCst);
    s.note([query.clone()]);
    if let Some(fault) = s.fault().await {
        return fault;
    }
    match s.take(false) {
        Ok((remaining, ttl)) => {
            (rate_headers(remaining, ttl), axum::Json(ipapi_item(&query))).into_response()
        }
        Err(ttl) => too_many(ttl),
    }
}

async fn ipapi_batch(State(s): State<Arc<FakeState>>, body: Bytes) -> Response {
    s.batch_requests.fetch_add(1, Ordering::SeqCst);
    let Ok(entries) = serde_json::from_slice::<Vec<Value>>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad body").into_response();
    };
    let queries: Vec<String> = entries
        .iter()
        .map(|e| match e {
            Value::String(s) => s.clone(),
            other => other["query"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    s.note(queries.clone());
    if let Some(fault) = s.fault().await {
        return fault;
    }
    if queries.len() > 100 {
        return (StatusCode::UNPROCESSABLE_ENTITY, "too many").into_response();
    }
    match s.take(true) {
        Ok((remaining, ttl)) => {
            let items: Vec<Value> = queries.iter().map(|q| ipapi_item(q)).collect();
            (rate_headers(remaining, ttl), axum::Json(items)).into_response()
        }
        Err(ttl) => too_many(ttl),
    }
}

// === ipwho.is ===

pub async fn ipwhois() -> Fake {
    let state = Arc::new(FakeState::new(60, 0));
    let router = Router::new()
        .route("/{ip}", get(ipwhois_single))
        .with_state(state.clone());
    serve(router, state).await
}

fn ipwhois_body(query: &str) -> Value {
    let Ok(addr) = query.parse::<IpAddr>() else {
        return json!({"ip": query, "success": false, "message": "Invalid IP address"});
    };
    if classify(addr) != "public" {
        return json!({"ip": query, "success": false, "message": "Reserved range"});
    }
    let (lat, lon) = place(addr);
    json!({
        "ip": query, "success": true, "type": "IPv4", "continent": "Europe",
        "continent_code": "EU", "country": "Netherlands", "country_code": "NL",
        "region": "North Holland", "region_code": "NH", "city": "Amsterdam",
        "latitude": lat, "longitude": lon, "is_eu": true,
        "connection": {"asn": 1136, "org": "KPN B.V.", "isp": "KPN B.V.", "domain": "kpn.com"},
        "timezone": {"id": "Europe/Amsterdam", "abbr": "CET", "is_dst": false, "offset": 3600}
    })
}

async fn ipwhois_single(State(s): State<Arc<FakeState>>, Path(ip): Path<String>) -> Response {
    s.single_requests.fetch_add(1, Ordering::SeqCst);
    s.note([ip.clone()]);
    if let Some(fault) = s.fault().await {
        return fault;
    }
    match s.take(false) {
        Ok(_) => axum::Json(ipwhois_body(&ip)).into_response(),
        Err(ttl) => {
            let mut headers = HeaderMap::new();
            headers.insert("Retry-After", HeaderValue::from(ttl));
            let body = json!({"success": false, "message": "Rate limit exceeded"});
            (StatusCode::TOO_MANY_REQUESTS, headers, axum::Json(body)).into_response()
        }
    }
}

// === GeoJS ===

pub async fn geojs() -> Fake {
    // No documented limits: the window is effectively unlimited.
    let state = Arc::new(FakeState::new(u32::MAX, u32::MAX));
    let router = Router::new()
        .route("/v1/ip/geo.json", get(geojs_multi))
        .route("/v1/ip/geo/{file}", get(geojs_single))
        .with_state(state.clone());
    serve(router, state).await
}

fn geojs_item(query: &str) -> Value {
    let unknown = json!({
        "area_code": "0", "asn": 64512, "ip": query, "latitude": "nil", "longitude": "nil",
        "organization": "AS64512 Unknown", "organization_name": "Unknown"
    });
    let Ok(addr) = query.parse::<IpAddr>() else {
        return unknown;
    };
    if classify(addr) != "public" {
        return unknown;
    }
    let (lat, lon) = place(addr);
    json!({
        "accuracy": 20, "area_code": "0", "asn": 15169, "city": "Mountain View",
        "continent_code": "NA", "country": "United States", "country_code": "US",
        "country_code3": "USA", "ip": query, "latitude": lat.to_string(),
        "longitude": lon.to_string(), "organization": "AS15169 Google LLC",
        "organization_name": "Google LLC", "region": "California",
        "timezone": "America/Los_Angeles"
    })
}

const OPENRESTY_404: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n";

async fn geojs_single(State(s): State<Arc<FakeState>>, Path(file): Path<String>) -> Response {
    s.single_requests.fetch_add(1, Ordering::SeqCst);
    let ip = file.strip_suffix(".json").unwrap_or(&file).to_string();
    s.note([ip.clone()]);
    if let Some(fault) = s.fault().await {
        return fault;
    }
    if !file.ends_with(".json") || ip.parse::<IpAddr>().is_err() {
        return (StatusCode::NOT_FOUND, OPENRESTY_404).into_response();
    }
    axum::Json(geojs_item(&ip)).into_response()
}

async fn geojs_multi(
    State(s): State<Arc<FakeState>>,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Response {
    s.batch_requests.fetch_add(1, Ordering::SeqCst);
    let list: Vec<String> = params
        .get("ip")
        .map(|ips| ips.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    s.note(list.clone());
    if let Some(fault) = s.fault().await {
        return fault;
    }
    let items: Vec<Value> = list.iter().map(|ip| geojs_item(ip)).collect();
    axum::Json(items).into_response()
}

/// The three fakes together.
pub struct Fakes {
    pub ipapi: Fake,
    pub ipwhois: Fake,
    pub geojs: Fake,
}

impl Fakes {
    pub async fn start() -> Fakes {
        Fakes {
            ipapi: ipapi().await,
            ipwhois: ipwhois().await,
            geojs: geojs().await,
        }
    }

    /// Every address any fake was sent.
    pub fn seen(&self) -> Vec<String> {
        let mut all = self.ipapi.state.seen();
        all.extend(self.ipwhois.state.seen());
        all.extend(self.geojs.state.seen());
        all
    }

    pub fn refused(&self) -> u64 {
        [&self.ipapi, &self.ipwhois, &self.geojs]
            .iter()
            .map(|f| f.state.refused.load(Ordering::SeqCst))
            .sum()
    }
}
