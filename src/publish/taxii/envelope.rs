//! Page assembly for the four object endpoints: reads `limit + 1` matching entries of a
//! collection in `date_added` order, decides `more`, mints `next`, and writes the envelope,
//! manifest or versions body by concatenating stored bytes. Indicators are never decoded
//! or re-encoded here: their JSON was fixed when the snapshot was published.

use std::ops::ControlFlow;

use bytes::Bytes;
use serde_json::json;

use super::media::STIX_MEDIA_TYPE;
use super::query::Filters;
use super::token::{self, Cursor, Endpoint};
use crate::ioc::Collection;
use crate::store::tables::IndexValue;
use crate::store::{Store, StoreError};
use crate::timefmt::taxii_from_micros;

/// Length of a TAXII timestamp (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) for years 1000–9999.
const STAMP_LEN: usize = 27;

/// One normalised page request; equal requests give byte-equal pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub collection: Collection,
    pub endpoint: Endpoint,
    /// The object of the object and versions endpoints.
    pub object: Option<String>,
    pub filters: Filters,
    /// Deliver entries added strictly after this instant (µs).
    pub after: Option<u64>,
    pub limit: usize,
    /// Write `"objects": []` (or `"versions": []`) on empty pages.
    pub empty_list: bool,
}

/// A page and the values of its `X-TAXII-Date-Added-First` / `-Last` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub first: String,
    pub last: String,
    pub body: Bytes,
}

impl Page {
    /// Packs the page into one buffer for the hot cache: both header values (fixed width)
    /// then the body.
    pub fn pack(&self) -> Bytes {
        let mut out = Vec::with_capacity(2 * STAMP_LEN + self.body.len());
        out.extend_from_slice(self.first.as_bytes());
        out.extend_from_slice(self.last.as_bytes());
        out.extend_from_slice(&self.body);
        out.into()
    }

    /// The inverse of [`Page::pack`].
    pub fn unpack(packed: &Bytes) -> Option<Page> {
        let stamps = packed.get(..2 * STAMP_LEN)?;
        let text = std::str::from_utf8(stamps).ok()?;
        Some(Page {
            first: text[..STAMP_LEN].to_string(),
            last: text[STAMP_LEN..].to_string(),
            body: packed.slice(2 * STAMP_LEN..),
        })
    }
}

impl PageRequest {
    /// Key of the page in the store's hot cache (which adds the snapshot generation).
    pub fn cache_key(&self) -> String {
        format!("taxii:{self:?}")
    }

    fn keeps_objects(&self) -> bool {
        matches!(self.endpoint, Endpoint::Objects | Endpoint::Object)
    }
}

/// One delivered entry.
struct Hit {
    added: u64,
    id: String,
    version: String,
    /// The stored STIX JSON; left empty by endpoints that do not send objects.
    object: Vec<u8>,
}

/// Collects up to `limit + 1` matching entries: the extra one only says `more`.
struct Collector<'a> {
    request: &'a PageRequest,
    hits: Vec<Hit>,
}

impl Collector<'_> {
    fn offer(&mut self, added: u64, value: IndexValue<'_>) -> ControlFlow<()> {
        if self.request.after.is_some_and(|after| added <= after)
            || !self.request.filters.matches(value.id, value.version)
        {
            return ControlFlow::Continue(());
        }
        let object = if self.request.keeps_objects() {
            value.object.to_vec()
        } else {
            Vec::new()
        };
        self.hits.push(Hit {
            added,
            id: value.id.to_string(),
            version: value.version.to_string(),
            object,
        });
        if self.hits.len() > self.request.limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Builds a page; `Ok(None)` when the requested object is not in the collection.
/// `newest` is the collection's newest `date_added` (0 when empty), for the headers of an
/// empty page.
///
/// # Errors
/// Storage failures.
pub fn build(
    store: &Store,
    request: &PageRequest,
    key: &[u8],
    newest: u64,
) -> Result<Option<Page>, StoreError> {
    let Some(mut hits) = collect(store, request)? else {
        return Ok(None);
    };
    let more = hits.len() > request.limit;
    hits.truncate(request.limit);
    let next = more.then(|| next_token(request, key, &hits));
    let (first, last) = match (hits.first(), hits.last()) {
        (Some(first), Some(last)) => (
            taxii_from_micros(first.added),
            taxii_from_micros(last.added),
        ),
        _ => {
            // Empty page: echo the cursor so incremental clients keep their place.
            let stamp = taxii_from_micros(request.after.unwrap_or(newest));
            (stamp.clone(), stamp)
        }
    };
    let body = write_body(request, more, next.as_deref(), &hits);
    Ok(Some(Page { first, last, body }))
}

fn collect(store: &Store, request: &PageRequest) -> Result<Option<Vec<Hit>>, StoreError> {
    let mut collector = Collector {
        request,
        hits: Vec::new(),
    };
    match &request.object {
        None => {
            store.scan(request.collection, request.after, |added, value| {
                collector.offer(added, value)
            })?;
        }
        Some(id) => {
            let found = store.objects_by_id(request.collection, id)?;
            if found.is_empty() {
                return Ok(None);
            }
            for (added, bytes) in &found {
                let Some(value) = IndexValue::decode(bytes) else {
                    continue;
                };
                if collector.offer(*added, value).is_break() {
                    break;
                }
            }
        }
    }
    Ok(Some(collector.hits))
}

fn next_token(request: &PageRequest, key: &[u8], hits: &[Hit]) -> String {
    let cursor = Cursor {
        c: request.collection.code(),
        e: request.endpoint,
        o: request.object.clone(),
        f: request.filters.clone(),
        a: hits.last().map_or(0, |h| h.added),
        l: request.limit as u64,
    };
    token::mint(key, &cursor)
}

fn write_body(request: &PageRequest, more: bool, next: Option<&str>, hits: &[Hit]) -> Bytes {
    let mut out = Vec::with_capacity(64 + hits.iter().map(|h| h.object.len() + 1).sum::<usize>());
    out.extend_from_slice(if more {
        b"{\"more\":true"
    } else {
        b"{\"more\":false"
    });
    if let Some(next) = next {
        // Tokens are base64url and '.', so they need no JSON escaping.
        out.extend_from_slice(b",\"next\":\"");
        out.extend_from_slice(next.as_bytes());
        out.push(b'"');
    }
    if !hits.is_empty() || request.empty_list {
        let list = if request.endpoint == Endpoint::Versions {
            "versions"
        } else {
            "objects"
        };
        out.extend_from_slice(format!(",\"{list}\":[").as_bytes());
        for (i, hit) in hits.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_item(&mut out, request.endpoint, hit);
        }
        out.push(b']');
    }
    out.push(b'}');
    out.into()
}

fn write_item(out: &mut Vec<u8>, endpoint: Endpoint, hit: &Hit) {
    match endpoint {
        Endpoint::Objects | Endpoint::Object => out.extend_from_slice(&hit.object),
        Endpoint::Versions => {
            out.extend_from_slice(json!(hit.version).to_string().as_bytes());
        }
        Endpoint::Manifest => {
            let record = json!({
                "id": hit.id,
                "date_added": taxii_from_micros(hit.added),
                "version": hit.version,
                "media_type": STIX_MEDIA_TYPE,
            });
            out.extend_from_slice(record.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_pack_and_unpack() {
        let page = Page {
            first: taxii_from_micros(1),
            last: taxii_from_micros(2_000_000),
            body: Bytes::from_static(b"{\"more\":false}"),
        };
        assert_eq!(Page::unpack(&page.pack()), Some(page));
        assert_eq!(Page::unpack(&Bytes::from_static(b"short")), None);
    }
}
