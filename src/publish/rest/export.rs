//! Every export format, written record by record to any `io::Write` from one snapshot read:
//! the STIX 2.1 bundle (stored object bytes, never re-serialised), the JSON array of listing
//! objects, CSV, plain addresses, and the firewall feeds of [`super::firewall`]. The HTTP
//! exports stream it through [`super::stream`]; `abuseipdb-ioc export` writes it to stdout.
//!
//! Memory stays bounded by one record for the data formats. The firewall feeds hold every
//! selected address and score (about 32 bytes each) because the cap and the aggregation need
//! all of them before the first line.

use std::io::{self, Write};
use std::ops::ControlFlow;

use jiff::SignedDuration;

use super::aggregate;
use super::firewall::Feed;
use super::params::{FeedOptions, Selection};
use super::snapshot::{Selected, Snapshot};
use super::view::{IndicatorView, valid_until};
use crate::config::Settings;
use crate::stix::Renderer;
use crate::store::{Store, StoreError};
use crate::timefmt::stix_timestamp;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export failed: {0}")]
    Io(#[from] io::Error),
    #[error("writing the CSV export failed: {0}")]
    Csv(#[from] csv::Error),
}

/// Every format, by the name used in URLs and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Stix,
    Json,
    Csv,
    Plain,
    Feed(Feed),
}

impl Format {
    pub const DATA: [Format; 4] = [Format::Stix, Format::Json, Format::Csv, Format::Plain];

    pub fn name(self) -> &'static str {
        match self {
            Format::Stix => "stix",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Plain => "plain",
            Format::Feed(feed) => feed.name(),
        }
    }

    pub fn find(name: &str) -> Option<Format> {
        Format::DATA
            .into_iter()
            .find(|f| f.name() == name)
            .or_else(|| Feed::find(name).map(Format::Feed))
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Stix | Format::Json => "json",
            Format::Csv => "csv",
            Format::Plain => "txt",
            Format::Feed(feed) => feed.extension(),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Stix => "application/stix+json;version=2.1",
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Plain | Format::Feed(_) => "text/plain; charset=utf-8",
        }
    }

    /// The URL of the format under `/api/v1/indicators`.
    pub fn path(self) -> String {
        match self {
            Format::Feed(feed) => format!("/api/v1/indicators/firewall/{}", feed.name()),
            data => format!("/api/v1/indicators/{}", data.name()),
        }
    }
}

/// What to export: the format, the records, and for feeds the cap and aggregation.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub format: Format,
    pub selection: Selection,
    pub feed: FeedOptions,
}

/// Writes an export of the published snapshot.
///
/// # Errors
/// Storage failures and errors of `out` (a client that went away).
pub fn write(
    store: &Store,
    settings: &Settings,
    request: &ExportRequest,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let snapshot = Snapshot::open(store)?;
    let selection = &request.selection;
    let validity = super::indicators::validity(settings);
    match request.format {
        Format::Stix => stix(&snapshot, settings, selection, out),
        Format::Json => json(&snapshot, selection, validity, out),
        Format::Csv => csv(&snapshot, selection, validity, out),
        Format::Plain => plain(&snapshot, selection, out),
        Format::Feed(feed) => firewall(&snapshot, feed, request, out),
    }
}

fn each(
    snapshot: &Snapshot,
    selection: &Selection,
    mut visit: impl FnMut(Selected) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    snapshot.select(selection, None, |selected| {
        visit(selected).map(|()| ControlFlow::Continue(()))
    })
}

/// `{"type":"bundle","id":…,"objects":[identity, marking, indicators…]}`, the indicators
/// being the stored bytes of the selected collection's active objects.
fn stix(
    snapshot: &Snapshot,
    settings: &Settings,
    selection: &Selection,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let bundle_id = uuid::Uuid::new_v4();
    write!(
        out,
        r#"{{"type":"bundle","id":"bundle--{bundle_id}","objects":["#
    )?;
    let renderer = Renderer::new(&settings.stix, settings.cycle.validity_days);
    let statics = renderer.static_objects();
    for (i, object) in statics.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(object.object.as_bytes())?;
    }
    let mut first = statics.is_empty();
    each(snapshot, selection, |selected| {
        snapshot.with_object(&selected.entry, |bytes| {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            out.write_all(bytes).map_err(ExportError::from)
        })?;
        Ok(())
    })?;
    out.write_all(b"]}\n")?;
    Ok(())
}

fn json(
    snapshot: &Snapshot,
    selection: &Selection,
    validity: SignedDuration,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    out.write_all(b"[")?;
    let mut first = true;
    each(snapshot, selection, |selected| {
        if !first {
            out.write_all(b",\n")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, &IndicatorView::of(&selected, validity))
            .map_err(io::Error::from)?;
        Ok(())
    })?;
    out.write_all(b"]\n")?;
    Ok(())
}

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 13] = [
    "ip",
    "confidence",
    "sources",
    "local_confidence",
    "abuseipdb_confidence",
    "categories",
    "country_code",
    "city",
    "asn",
    "isp",
    "first_seen",
    "last_seen",
    "valid_until",
];

fn csv(
    snapshot: &Snapshot,
    selection: &Selection,
    validity: SignedDuration,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    each(snapshot, selection, |selected| {
        writer.write_record(csv_row(&selected, validity))?;
        Ok(())
    })?;
    writer.flush()?;
    Ok(())
}

fn csv_row(selected: &Selected, validity: SignedDuration) -> [String; 13] {
    let record = &selected.record;
    let facts = &record.facts;
    let text = |v: Option<String>| v.unwrap_or_default();
    let geo = facts.location.as_ref();
    let categories = facts.local.as_ref().map(|l| {
        let ids: Vec<String> = l.categories.iter().map(u8::to_string).collect();
        ids.join(";")
    });
    [
        facts.addr.to_string(),
        facts.confidence.to_string(),
        facts.sources().as_str().to_string(),
        text(facts.local.as_ref().map(|l| l.confidence.to_string())),
        text(facts.external.as_ref().map(|e| e.score.to_string())),
        text(categories),
        text(super::snapshot::country(record).map(str::to_string)),
        text(geo.and_then(|g| g.city.clone())),
        text(geo.and_then(|g| g.asn).map(|a| a.to_string())),
        text(
            geo.and_then(|g| g.isp.clone())
                .or_else(|| facts.external.as_ref().and_then(|e| e.isp.clone())),
        ),
        stix_timestamp(facts.first_seen),
        stix_timestamp(facts.last_seen),
        stix_timestamp(valid_until(facts, validity)),
    ]
}

fn plain(
    snapshot: &Snapshot,
    selection: &Selection,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    each(snapshot, selection, |selected| {
        writeln!(out, "{}", selected.record.facts.addr)?;
        Ok(())
    })
}

fn firewall(
    snapshot: &Snapshot,
    feed: Feed,
    request: &ExportRequest,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let mut hosts = Vec::new();
    each(snapshot, &request.selection, |selected| {
        hosts.push((selected.record.facts.addr, selected.record.facts.confidence));
        Ok(())
    })?;
    let entries = aggregate::prepare(hosts, request.feed);
    feed.write(request.selection.family, &entries, out)?;
    Ok(())
}
