//! The TAXII 2.1 endpoints under `/taxii2/`: discovery, the one API root `/taxii2/iocs/`,
//! status, collections, and the four object endpoints (served from
//! [`super::envelope`]). Paths are registered without the trailing slash; the server
//! trims it before routing, so both spellings reach the same handler without a redirect.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{MethodRouter, any, get};
use serde_json::{Value, json};

use super::envelope::{self, Page, PageRequest};
use super::error::TaxiiError;
use super::media::{STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE, taxii_response};
use super::query::Params;
use super::token::{self, Endpoint};
use crate::app::App;
use crate::ioc::Collection;

/// The API root, as listed by discovery.
pub const API_ROOT: &str = "/taxii2/iocs/";

const COLLECTION: &str = "/taxii2/iocs/collections/{collection}";

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/taxii2", only_get(get(discovery)))
        .route("/taxii2/iocs", only_get(get(api_root)))
        .route("/taxii2/iocs/status/{id}", only_get(get(status)))
        .route("/taxii2/iocs/collections", only_get(get(collections)))
        .route(COLLECTION, only_get(get(collection)))
        .route(
            &format!("{COLLECTION}/objects"),
            only_get(get(objects).post(read_only)),
        )
        .route(
            &format!("{COLLECTION}/objects/{{object}}"),
            only_get(get(object).delete(read_only)),
        )
        .route(
            &format!("{COLLECTION}/objects/{{object}}/versions"),
            only_get(get(versions)),
        )
        .route(&format!("{COLLECTION}/manifest"), only_get(get(manifest)))
        .route("/taxii2/{*rest}", any(unknown_path))
}

/// Other methods get a TAXII 405 rather than the framework's empty one.
fn only_get(router: MethodRouter<Arc<App>>) -> MethodRouter<Arc<App>> {
    router.fallback(|| async {
        TaxiiError::MethodNotAllowed("this TAXII endpoint only answers GET".into())
    })
}

async fn unknown_path() -> TaxiiError {
    TaxiiError::NotFound("no such TAXII resource".into())
}

async fn read_only() -> TaxiiError {
    TaxiiError::Forbidden("the collections of this server are read-only".into())
}

fn json_response(value: &Value) -> Response {
    taxii_response(StatusCode::OK, value.to_string().into())
}

async fn discovery() -> Response {
    json_response(&json!({
        "title": "abuseipdb-ioc TAXII server",
        "description": "IP indicators of compromise as STIX 2.1",
        "default": API_ROOT,
        "api_roots": [API_ROOT],
    }))
}

async fn api_root(State(app): State<Arc<App>>) -> Response {
    json_response(&json!({
        "title": "IOC indicators",
        "description": "Attacking IP addresses from local reports and AbuseIPDB",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": app.settings.http.max_body_bytes,
    }))
}

/// Nothing is ever added through this server, so no status resource exists.
async fn status(Path(id): Path<String>) -> TaxiiError {
    TaxiiError::NotFound(format!("no status {id}"))
}

async fn collections(State(app): State<Arc<App>>) -> Response {
    let mut list: Vec<Collection> = Collection::EVERY.to_vec();
    // Ordered by id, as the TAXII interoperability profile asks.
    list.sort_by_key(|c| c.id());
    let items: Vec<Value> = list.iter().map(|c| describe(&app, *c)).collect();
    json_response(&json!({ "collections": items }))
}

async fn collection(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, TaxiiError> {
    let collection = find(&name)?;
    Ok(json_response(&describe(&app, collection)))
}

fn describe(app: &App, collection: Collection) -> Value {
    let description = match collection {
        Collection::All => "Every published indicator".to_string(),
        Collection::High => format!(
            "Indicators with a confidence of at least {}",
            app.settings.scoring.high_threshold
        ),
    };
    json!({
        "id": collection.id(),
        "title": collection.title(),
        "description": description,
        "alias": collection.alias(),
        "can_read": true,
        "can_write": false,
        "media_types": [STIX_MEDIA_TYPE],
    })
}

fn find(name: &str) -> Result<Collection, TaxiiError> {
    Collection::find(name).ok_or_else(|| TaxiiError::NotFound(format!("no collection {name}")))
}

async fn objects(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, TaxiiError> {
    serve_page(app, &name, Endpoint::Objects, None, query).await
}

async fn manifest(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, TaxiiError> {
    serve_page(app, &name, Endpoint::Manifest, None, query).await
}

async fn object(
    State(app): State<Arc<App>>,
    Path((name, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, TaxiiError> {
    serve_page(app, &name, Endpoint::Object, Some(id), query).await
}

async fn versions(
    State(app): State<Arc<App>>,
    Path((name, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, TaxiiError> {
    serve_page(app, &name, Endpoint::Versions, Some(id), query).await
}

/// Parses the request, then reads the page off the async runtime (redb blocks).
async fn serve_page(
    app: Arc<App>,
    name: &str,
    endpoint: Endpoint,
    object: Option<String>,
    query: Option<String>,
) -> Result<Response, TaxiiError> {
    let collection = find(name)?;
    let params =
        Params::parse(query.as_deref()).map_err(|e| TaxiiError::BadRequest(e.to_string()))?;
    let request = page_request(&app, collection, endpoint, object, params)?;
    let page = tokio::task::spawn_blocking(move || load(&app, &request))
        .await
        .map_err(|e| TaxiiError::Internal(format!("page task failed: {e}")))??;
    Ok(page_response(page))
}

/// Turns the parameters into a normalised page request, continuing from `next` when given.
/// A token is only honoured for the collection, endpoint and object it was minted for, and
/// explicit filters beside it must be the token's own.
fn page_request(
    app: &App,
    collection: Collection,
    endpoint: Endpoint,
    object: Option<String>,
    params: Params,
) -> Result<PageRequest, TaxiiError> {
    let mut filters = params.filters;
    let mut after = params.added_after;
    let mut limit = params.limit;
    if let Some(next) = &params.next {
        let cursor = token::open(app.token_key.expose().as_bytes(), next)
            .map_err(|e| TaxiiError::BadRequest(e.to_string()))?;
        if cursor.c != collection.code() || cursor.e != endpoint || cursor.o != object {
            return Err(TaxiiError::BadRequest(
                "the next token belongs to another collection or endpoint".into(),
            ));
        }
        if !filters.is_empty() && filters != cursor.f {
            return Err(TaxiiError::BadRequest(
                "the match parameters contradict the next token".into(),
            ));
        }
        filters = cursor.f;
        after = Some(after.map_or(cursor.a, |a| a.max(cursor.a)));
        limit = limit.or(Some(cursor.l));
    }
    let taxii = &app.settings.taxii;
    let max = u64::from(taxii.max_limit.max(1));
    let limit = limit.unwrap_or(u64::from(taxii.default_limit)).min(max);
    Ok(PageRequest {
        collection,
        endpoint,
        object,
        filters,
        after,
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        empty_list: taxii.empty_objects_list,
    })
}

/// The page from the hot cache, built on a miss.
fn load(app: &App, request: &PageRequest) -> Result<Page, TaxiiError> {
    let newest = app.store.snapshot().last_added[usize::from(request.collection.code())];
    let key = app.token_key.expose().as_bytes();
    let packed = app.store.hot(request.cache_key(), || {
        match envelope::build(&app.store, request, key, newest) {
            Ok(Some(page)) => Ok(page.pack()),
            Ok(None) => Err(TaxiiError::NotFound(format!(
                "no object {} in collection {}",
                request.object.as_deref().unwrap_or_default(),
                request.collection.alias()
            ))),
            Err(err) => Err(TaxiiError::Internal(format!("reading the snapshot: {err}"))),
        }
    })?;
    Page::unpack(&packed).ok_or_else(|| TaxiiError::Internal("damaged cached page".into()))
}

fn page_response(page: Page) -> Response {
    let mut response = taxii_response(StatusCode::OK, page.body);
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-taxii-date-added-first", page.first),
        ("x-taxii-date-added-last", page.last),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
