//! On-demand enrichment: `POST /api/v1/enrich/{ip}` and `POST /api/v1/enrich/bulk` run an
//! AbuseIPDB `/check` and geolocation for the given addresses now, within the daily budget,
//! and answer per address what was done, what came from a cache and what was refused.
//!
//! The answers land in the same caches the pipeline reads, so the next cycle publishes them.
//! Per address: `abuseipdb.status` is `fetched`, `cached`, `refused` (budget, backoff or a
//! rejected key; `reason` says which), `failed` (the call failed), `disabled` (local-only
//! mode) or `not_public`; `geo.status` is `located`, `cached`, `unknown` (no provider knows
//! it), `deferred` (providers paused or down; retried by a later run), `disabled` or
//! `not_public`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use redb::{ReadableDatabase, ReadableTable};
use serde::Deserialize;
use serde_json::{Value, json};

use super::OpsState;
use super::traffic::Client;
use crate::app::App;
use crate::enrich::abuseipdb::CheckOutcome;
use crate::ioc::{IocKey, Location};
use crate::publish::api_error::ApiError;
use crate::source::address::is_public;
use crate::store::tables::{GEO, Stamped, key_bytes};
use crate::store::{Store, StoreError};

/// Most addresses one bulk request may carry.
pub const BULK_MAX: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct Options {
    /// Skip a fresh cached AbuseIPDB answer and spend a call.
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/enrich/{ip}`.
pub async fn single(
    State(app): State<Arc<App>>,
    Extension(ops): Extension<Arc<OpsState>>,
    Client(client): Client,
    Path(text): Path<String>,
    Query(options): Query<Options>,
) -> Result<Response, ApiError> {
    let addr = parse(&text).map_err(ApiError::bad_request)?;
    tracing::info!(target: "audit", client = %client, ip = %addr, force = options.force, "enrich");
    let mut answers = enrich(&app, &ops, &[addr], options.force).await?;
    Ok(axum::Json(answers.remove(0)).into_response())
}

/// `POST /api/v1/enrich/bulk` with `{"ips": [...]}` or a bare array.
pub async fn bulk(
    State(app): State<Arc<App>>,
    Extension(ops): Extension<Arc<OpsState>>,
    Client(client): Client,
    Query(options): Query<Options>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| ApiError::new(r.status(), "invalid_body", r.body_text()))?;
    let items = bulk_items(&body)?;
    let parsed: Vec<Result<IpAddr, String>> = items
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| "not a string".into())
                .and_then(parse)
        })
        .collect();
    let valid: Vec<IpAddr> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().copied())
        .collect();
    tracing::info!(
        target: "audit",
        client = %client,
        requested = items.len(),
        valid = valid.len(),
        force = options.force,
        "bulk enrich"
    );
    let mut answers = enrich(&app, &ops, &valid, options.force).await?.into_iter();
    let results: Vec<Value> = items
        .iter()
        .zip(parsed)
        .map(|(item, p)| match p {
            Ok(_) => answers.next().unwrap_or(Value::Null),
            Err(error) => json!({"ip": item, "status": "invalid", "error": error}),
        })
        .collect();
    Ok(axum::Json(json!({"results": results})).into_response())
}

/// The address list of a bulk body: an array, or an object with an `ips` array.
fn bulk_items(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("ips") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(ApiError::bad_request(
                    "expected {\"ips\": [...]} or an array",
                ));
            }
        },
        _ => {
            return Err(ApiError::bad_request(
                "expected {\"ips\": [...]} or an array",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("the address list is empty"));
    }
    if items.len() > BULK_MAX {
        return Err(ApiError::too_large(format!(
            "at most {BULK_MAX} addresses per request; got {}",
            items.len()
        )));
    }
    Ok(items)
}

fn parse(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse::<IpAddr>()
        .map(|a| a.to_canonical())
        .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 address"))
}

/// Enriches `addrs` (valid addresses) and answers one object per address, in order.
async fn enrich(
    app: &Arc<App>,
    ops: &OpsState,
    addrs: &[IpAddr],
    force: bool,
) -> Result<Vec<Value>, ApiError> {
    let geo = geolocate(app, addrs).await?;
    let mut answers = Vec::with_capacity(addrs.len());
    for (addr, geo) in addrs.iter().zip(geo) {
        let abuseipdb = check(app, ops, *addr, force).await;
        answers.push(json!({"ip": addr.to_string(), "abuseipdb": abuseipdb, "geo": geo}));
    }
    Ok(answers)
}

async fn check(app: &App, ops: &OpsState, addr: IpAddr, force: bool) -> Value {
    let Some(service) = &app.abuseipdb else {
        return json!({"status": "disabled", "reason": "local-only mode (no ABUSEIPDB_API_KEY)"});
    };
    if !is_public(addr) {
        return json!({"status": "not_public"});
    }
    match service.check_now(addr, force).await {
        Ok(CheckOutcome::Fetched { facts }) => {
            ops.checks_fetched.fetch_add(1, Ordering::Relaxed);
            json!({"status": "fetched", "facts": facts})
        }
        Ok(CheckOutcome::Cached { facts, fetched_at }) => {
            ops.checks_cached.fetch_add(1, Ordering::Relaxed);
            json!({"status": "cached", "facts": facts, "fetched_at": fetched_at.to_string()})
        }
        Ok(CheckOutcome::Refused { refusal, cached }) => {
            ops.checks_refused.fetch_add(1, Ordering::Relaxed);
            json!({"status": "refused", "reason": refusal.to_string(), "refusal": refusal, "facts": cached})
        }
        Err(err) => json!({"status": "failed", "reason": err.to_string()}),
    }
}

/// One cache entry: when it was written and the location (`None`: no provider knows it).
type GeoEntry = (Timestamp, Option<Location>);

/// Geolocates the public addresses in one run and reads back the cache entries; an entry
/// written by this run is `located`/`unknown`, an older one `cached`.
async fn geolocate(app: &Arc<App>, addrs: &[IpAddr]) -> Result<Vec<Value>, ApiError> {
    let Some(service) = &app.geo else {
        return Ok(vec![json!({"status": "disabled"}); addrs.len()]);
    };
    let public: Vec<IpAddr> = addrs.iter().copied().filter(|a| is_public(*a)).collect();
    let before = geo_entries(&app.store, &public).await?;
    if !public.is_empty() {
        service.run_now(public.clone()).await;
    }
    let after = geo_entries(&app.store, &public).await?;
    let mut found = public.iter().zip(before.into_iter().zip(after));
    Ok(addrs
        .iter()
        .map(|addr| {
            if !is_public(*addr) {
                return json!({"status": "not_public"});
            }
            let (_, (before, after)) = found.next().expect("one entry per public address");
            geo_answer(before, after)
        })
        .collect())
}

fn geo_answer(before: Option<GeoEntry>, after: Option<GeoEntry>) -> Value {
    let Some((at, location)) = after else {
        return json!({"status": "deferred"});
    };
    let fresh = before.is_none_or(|(then, _)| then != at);
    let status = match (fresh, &location) {
        (false, _) => "cached",
        (true, Some(_)) => "located",
        (true, None) => "unknown",
    };
    json!({"status": status, "location": location, "fetched_at": at.to_string()})
}

async fn geo_entries(
    store: &Arc<Store>,
    addrs: &[IpAddr],
) -> Result<Vec<Option<GeoEntry>>, ApiError> {
    let store = store.clone();
    let addrs = addrs.to_vec();
    tokio::task::spawn_blocking(move || read_geo(&store, &addrs))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

fn read_geo(store: &Store, addrs: &[IpAddr]) -> Result<Vec<Option<GeoEntry>>, StoreError> {
    let txn = store.db().begin_read()?;
    let table = txn.open_table(GEO)?;
    let mut entries = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let entry = table.get(key_bytes(IocKey::of(*addr)))?.and_then(|value| {
            let stamped = Stamped::decode(value.value())?;
            let location = serde_json::from_slice(stamped.payload).unwrap_or(None);
            Some((stamped.fetched_at, location))
        });
        entries.push(entry);
    }
    Ok(entries)
}
