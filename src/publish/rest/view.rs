//! The JSON shape of one indicator in the REST API: the listing object, shared by
//! `GET /api/v1/indicators`, the `/json` export and (extended) `GET /api/v1/indicators/{ip}`.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::snapshot::{self, Selected};
use crate::ioc::{Collection, IocFacts};
use crate::store::record::{Entry, StoredRecord};
use crate::timefmt::{stix_timestamp, taxii_from_micros};

/// One indicator as the listing shows it. Field order is the JSON order.
#[derive(Debug, Serialize)]
pub struct IndicatorView {
    pub ip: String,
    pub id: String,
    pub confidence: u8,
    pub sources: &'static str,
    pub local_confidence: Option<u8>,
    pub abuseipdb_confidence: Option<u8>,
    pub categories: Vec<u8>,
    pub tags: Vec<String>,
    pub country_code: Option<String>,
    pub country_name: Option<String>,
    pub city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub asn: Option<u32>,
    pub isp: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub valid_until: String,
    pub modified: String,
    pub high_confidence: bool,
}

impl IndicatorView {
    pub fn of(selected: &Selected, validity: SignedDuration) -> IndicatorView {
        IndicatorView::build(&selected.record, selected.stix_id(), validity)
    }

    /// `id` is the STIX id to show: the active entry's, or the latest one of a revoked record.
    pub fn build(record: &StoredRecord, id: String, validity: SignedDuration) -> IndicatorView {
        let facts = &record.facts;
        let local = facts.local.as_ref();
        let external = facts.external.as_ref();
        let geo = facts.location.as_ref();
        IndicatorView {
            ip: facts.addr.to_string(),
            id,
            confidence: facts.confidence,
            sources: facts.sources().as_str(),
            local_confidence: local.map(|l| l.confidence),
            abuseipdb_confidence: external.map(|e| e.score),
            categories: local.map(|l| l.categories.clone()).unwrap_or_default(),
            tags: local.map(|l| l.tags.clone()).unwrap_or_default(),
            country_code: snapshot::country(record).map(str::to_string),
            country_name: geo.and_then(|g| g.country_name.clone()),
            city: geo.and_then(|g| g.city.clone()),
            latitude: geo.map(|g| g.latitude),
            longitude: geo.map(|g| g.longitude),
            asn: geo.and_then(|g| g.asn),
            isp: geo
                .and_then(|g| g.isp.clone())
                .or_else(|| external.and_then(|e| e.isp.clone())),
            first_seen: stix_timestamp(facts.first_seen),
            last_seen: stix_timestamp(facts.last_seen),
            valid_until: stix_timestamp(valid_until(facts, validity)),
            modified: stix_timestamp(record.modified),
            high_confidence: record.active(Collection::High).is_some(),
        }
    }
}

/// The indicator's `valid_until`, computed as the STIX renderer does: the last evidence plus
/// the validity period, and always after `valid_from`.
pub fn valid_until(facts: &IocFacts, validity: SignedDuration) -> Timestamp {
    let until = facts
        .last_seen
        .saturating_add(validity)
        .unwrap_or(facts.last_seen);
    until.max(facts.first_seen + SignedDuration::from_millis(1))
}

/// One stored object of a record, for the detail view.
#[derive(Debug, Serialize)]
pub struct EntryView {
    pub collection: &'static str,
    pub id: String,
    pub date_added: String,
    pub modified: String,
    pub revoked: bool,
}

impl EntryView {
    pub fn of(record: &StoredRecord, entry: &Entry) -> EntryView {
        EntryView {
            collection: entry.collection.alias(),
            id: record.stix_id(entry.episode),
            date_added: taxii_from_micros(entry.date_added_us),
            modified: stix_timestamp(entry.modified),
            revoked: entry.revoked,
        }
    }
}

/// `GET /api/v1/indicators/{ip}`: the listing fields, the revocation state, every stored
/// entry and the current STIX object.
#[derive(Debug, Serialize)]
pub struct DetailView {
    #[serde(flatten)]
    pub indicator: IndicatorView,
    /// True when the record has no active object in the `all` collection.
    pub revoked: bool,
    pub created: String,
    pub episode: u32,
    pub entries: Vec<EntryView>,
    pub stix: Option<serde_json::Value>,
}
