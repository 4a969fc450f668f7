//! `GET /api/v1/indicators` (with its `/local` and `/enriched` presets) and
//! `GET /api/v1/indicators/{ip}`: paginated JSON listings of the active indicators and the
//! full stored record of one address.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use jiff::SignedDuration;
use serde::Serialize;

use super::params::{self, Page, SourceFilter};
use super::snapshot::Snapshot;
use super::view::{DetailView, EntryView, IndicatorView};
use super::{blocking, pairs};
use crate::app::App;
use crate::config::Settings;
use crate::ioc::{Collection, IocKey};
use crate::publish::api_error::ApiError;
use crate::source::address;
use crate::store::record::StoredRecord;
use crate::store::{Store, StoreError};

/// One page of the listing.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub indicators: Vec<IndicatorView>,
    /// Cursor of the next page; `null` on the last one.
    pub next: Option<String>,
    pub count: usize,
}

/// The indicator validity period, as configured for the STIX objects.
pub fn validity(settings: &Settings) -> SignedDuration {
    SignedDuration::from_hours(24 * i64::from(settings.cycle.validity_days))
}

pub async fn all(
    State(app): State<Arc<App>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    listing(app, pairs(query)?, "all", |_| {}).await
}

pub async fn local(
    State(app): State<Arc<App>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    listing(app, pairs(query)?, "local", |page| {
        page.selection.source.get_or_insert(SourceFilter::Local);
    })
    .await
}

pub async fn enriched(
    State(app): State<Arc<App>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    listing(app, pairs(query)?, "enriched", |page| {
        page.selection.enriched = true;
    })
    .await
}

/// Pages are cached per snapshot generation under their normalised parameters.
async fn listing(
    app: Arc<App>,
    pairs: Vec<(String, String)>,
    preset_name: &str,
    preset: impl FnOnce(&mut Page),
) -> Result<Response, ApiError> {
    let mut page = params::page(&pairs)?;
    preset(&mut page);
    let cache_key = format!("rest:list:{preset_name}:{page:?}");
    let validity = validity(&app.settings);
    let body = blocking(move || {
        app.store
            .hot(cache_key, || listing_bytes(&app.store, &page, validity))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn listing_bytes(
    store: &Store,
    page: &Page,
    validity: SignedDuration,
) -> Result<Bytes, StoreError> {
    let listing = read_page(store, page, validity)?;
    serde_json::to_vec(&listing)
        .map(Bytes::from)
        .map_err(|e| StoreError::Encode(e.to_string()))
}

/// Reads one page; `next` is set only when another matching record exists.
///
/// # Errors
/// Storage failures.
pub fn read_page(
    store: &Store,
    page: &Page,
    validity: SignedDuration,
) -> Result<Listing, StoreError> {
    let snapshot = Snapshot::open(store)?;
    let mut indicators = Vec::with_capacity(page.limit.min(params::MAX_LIMIT));
    let mut last: Option<u64> = None;
    let mut more = false;
    snapshot.select(&page.selection, page.after, |selected| {
        if indicators.len() == page.limit {
            more = true;
            return Ok::<_, StoreError>(ControlFlow::Break(()));
        }
        last = Some(selected.number);
        indicators.push(IndicatorView::of(&selected, validity));
        Ok(ControlFlow::Continue(()))
    })?;
    let next = last.filter(|_| more).map(params::cursor);
    Ok(Listing {
        count: indicators.len(),
        indicators,
        next,
    })
}

pub async fn one(
    State(app): State<Arc<App>>,
    Path(text): Path<String>,
) -> Result<Response, ApiError> {
    let (addr, _) = address::normalise(&text)
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not an IP address")))?;
    let validity = validity(&app.settings);
    let detail = blocking(move || detail(&app.store, IocKey::of(addr), validity)).await?;
    match detail {
        Some(detail) => Ok(axum::Json(detail).into_response()),
        None => Err(ApiError::not_found(format!(
            "{addr} is not a published indicator"
        ))),
    }
}

/// The detail view of one key, revoked records included (they stay until purged).
///
/// # Errors
/// Storage failures.
pub fn detail(
    store: &Store,
    key: IocKey,
    validity: SignedDuration,
) -> Result<Option<DetailView>, StoreError> {
    let snapshot = Snapshot::open(store)?;
    let Some(record) = snapshot.record(key)? else {
        return Ok(None);
    };
    let shown = record
        .active(Collection::All)
        .or_else(|| latest_entry(&record))
        .cloned();
    let stix = match &shown {
        Some(entry) => snapshot
            .with_object(entry, |bytes| {
                Ok::<_, StoreError>(serde_json::from_slice(bytes).ok())
            })?
            .flatten(),
        None => None,
    };
    let id = shown.as_ref().map_or_else(
        || record.stix_id(record.episode),
        |e| record.stix_id(e.episode),
    );
    Ok(Some(DetailView {
        indicator: IndicatorView::build(&record, id, validity),
        revoked: record.active(Collection::All).is_none(),
        created: crate::timefmt::stix_timestamp(record.created),
        episode: record.episode,
        entries: record
            .entries
            .iter()
            .map(|e| EntryView::of(&record, e))
            .collect(),
        stix,
    }))
}

fn latest_entry(record: &StoredRecord) -> Option<&crate::store::record::Entry> {
    record
        .entries
        .iter()
        .filter(|e| e.collection == Collection::All)
        .max_by_key(|e| e.date_added_us)
}
