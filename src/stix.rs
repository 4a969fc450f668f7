//! STIX 2.1 rendering: the indicator of an IOC version, the producer identity and the TLP
//! marking definition. Objects are serialised once, at publish time, and served as bytes.
//!
//! Output is deterministic: fields are written in a fixed order and every list is sorted, so
//! equal inputs give byte-identical objects on every machine and after every restart.

use std::net::IpAddr;

use jiff::SignedDuration;
use serde::Serialize;
use uuid::Uuid;

use crate::config::{StixSettings, Tlp};
use crate::ioc::{INDICATOR_NAMESPACE, IocFacts, Location};
use crate::source::categories;
use crate::store::{Render, StaticObject, Version};
use crate::timefmt::stix_timestamp;

/// `created`/`modified` of the producer identity: a fixed instant, so the identity object
/// only changes when `ORG_NAME` does (which also changes its id).
const IDENTITY_CREATED: &str = "2025-01-01T00:00:00.000Z";

/// The STIX 2.1 predefined TLP marking definitions (STIX 2.1 §7.2.1.4).
const TLP_CREATED: &str = "2017-01-20T00:00:00.000Z";

/// Marking definition id and name of a TLP level.
pub fn tlp_marking(tlp: Tlp) -> (&'static str, &'static str, &'static str) {
    match tlp {
        Tlp::Clear => (
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
            "TLP:WHITE",
            "white",
        ),
        Tlp::Green => (
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            "TLP:GREEN",
            "green",
        ),
        Tlp::Amber => (
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
            "TLP:AMBER",
            "amber",
        ),
        Tlp::Red => (
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
            "TLP:RED",
            "red",
        ),
    }
}

/// Renders the objects of one configuration.
#[derive(Debug, Clone)]
pub struct Renderer {
    identity_id: String,
    org_name: String,
    tlp: Tlp,
    validity: SignedDuration,
}

impl Renderer {
    pub fn new(settings: &StixSettings, validity_days: u32) -> Renderer {
        let uuid = Uuid::new_v5(
            &INDICATOR_NAMESPACE,
            format!("identity:{}", settings.org_name).as_bytes(),
        );
        Renderer {
            identity_id: format!("identity--{uuid}"),
            org_name: settings.org_name.clone(),
            tlp: settings.tlp,
            validity: SignedDuration::from_hours(24 * i64::from(validity_days)),
        }
    }

    pub fn identity_id(&self) -> &str {
        &self.identity_id
    }

    /// The producer identity and the TLP marking, served in every collection.
    pub fn static_objects(&self) -> Vec<StaticObject> {
        vec![self.identity(), self.marking()]
    }

    fn identity(&self) -> StaticObject {
        let object = Identity {
            kind: "identity",
            spec_version: "2.1",
            id: &self.identity_id,
            created_by_ref: &self.identity_id,
            created: IDENTITY_CREATED,
            modified: IDENTITY_CREATED,
            name: &self.org_name,
            description: "Producer of the indicators in this feed: the team's own attack records merged with AbuseIPDB.",
            identity_class: "organization",
        };
        StaticObject {
            id: self.identity_id.clone(),
            version: IDENTITY_CREATED.into(),
            object: to_json(&object),
        }
    }

    fn marking(&self) -> StaticObject {
        let (id, name, level) = tlp_marking(self.tlp);
        let object = Marking {
            kind: "marking-definition",
            spec_version: "2.1",
            id,
            created: TLP_CREATED,
            definition_type: "tlp",
            name,
            definition: TlpDefinition { tlp: level },
        };
        StaticObject {
            id: id.into(),
            version: TLP_CREATED.into(),
            object: to_json(&object),
        }
    }

    /// The indicator object of one version.
    pub fn render_indicator(&self, v: &Version<'_>) -> String {
        let facts = v.facts;
        let addr = facts.addr.to_string();
        let valid_until = facts
            .last_seen
            .saturating_add(self.validity)
            .unwrap_or(facts.last_seen);
        let local_categories = facts
            .local
            .as_ref()
            .map(|l| l.categories.as_slice())
            .unwrap_or_default();
        let geo = facts.location.as_ref();
        let indicator = Indicator {
            kind: "indicator",
            spec_version: "2.1",
            id: v.stix_id,
            created_by_ref: &self.identity_id,
            created: stix_timestamp(v.created),
            modified: stix_timestamp(v.modified),
            name: format!("Malicious IP {addr}"),
            description: describe(facts),
            indicator_types: ["malicious-activity"],
            pattern: pattern(facts.addr),
            pattern_type: "stix",
            pattern_version: "2.1",
            valid_from: stix_timestamp(facts.first_seen),
            valid_until: stix_timestamp(
                valid_until.max(facts.first_seen + SignedDuration::from_millis(1)),
            ),
            revoked: v.revoked.then_some(true),
            kill_chain_phases: non_empty(kill_chain(local_categories)),
            labels: non_empty(labels(facts)),
            confidence: facts.confidence,
            external_references: references(facts, &addr),
            object_marking_refs: [tlp_marking(self.tlp).0],
            x_ioc_source: facts.sources().as_str(),
            x_ioc_local_confidence: facts.local.as_ref().map(|l| l.confidence),
            x_ioc_abuseipdb_confidence: facts.external.as_ref().map(|e| e.score),
            x_ioc_categories: non_empty(local_categories.to_vec()),
            x_ioc_abuseipdb_reports: facts.external.as_ref().and_then(|e| e.total_reports),
            x_ioc_abuseipdb_usage_type: facts
                .external
                .as_ref()
                .and_then(|e| e.usage_type.as_deref()),
            x_ioc_abuseipdb_last_reported: facts
                .external
                .as_ref()
                .and_then(|e| e.last_reported_at)
                .map(stix_timestamp),
            x_elastic_geo_coordinates: geo.map(LatLon::of),
            x_elastic_geo_location: geo.map(LatLon::of),
            x_elastic_geo_point: geo.map(|g| [g.longitude, g.latitude]),
            x_elastic_geo_country_name: geo.and_then(|g| g.country_name.as_deref()),
            x_elastic_geo_country_code: geo.and_then(|g| g.country_code.as_deref()),
            x_elastic_geo_city: geo.and_then(|g| g.city.as_deref()),
            x_ioc_geo_region: geo.and_then(|g| g.region.as_deref()),
            x_ioc_geo_asn: geo.and_then(|g| g.asn),
            x_ioc_geo_isp: geo
                .and_then(|g| g.isp.as_deref())
                .or_else(|| facts.external.as_ref().and_then(|e| e.isp.as_deref())),
            x_ioc_geo_provider: geo.map(|g| g.provider.as_str()),
        };
        to_json(&indicator)
    }
}

impl Render for Renderer {
    fn indicator(&self, version: &Version<'_>) -> Vec<u8> {
        self.render_indicator(version).into_bytes()
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("STIX objects contain only serialisable values")
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// `[ipv4-addr:value = '…']` exactly, the form Elastic's parser recognises.
pub fn pattern(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => format!("[ipv4-addr:value = '{v4}']"),
        IpAddr::V6(v6) => format!("[ipv6-addr:value = '{v6}']"),
    }
}

fn describe(facts: &IocFacts) -> String {
    let mut parts = Vec::new();
    if let Some(local) = &facts.local {
        parts.push(format!(
            "reported by the local detection (confidence {})",
            local.confidence
        ));
    }
    if let Some(external) = &facts.external {
        parts.push(format!(
            "listed by AbuseIPDB (abuse confidence {})",
            external.score
        ));
    }
    let mut text = format!("{} {}.", facts.addr, parts.join(" and "));
    let names: Vec<&str> = facts
        .local
        .iter()
        .flat_map(|l| l.categories.iter())
        .filter_map(|&id| categories::name(id))
        .collect();
    if !names.is_empty() {
        text.push_str(&format!(" Categories: {}.", names.join(", ")));
    }
    text
}

/// Category names as lower-case hyphenated labels, then the free-text tags; sorted.
fn labels(facts: &IocFacts) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    if let Some(local) = &facts.local {
        for &id in &local.categories {
            if let Some(name) = categories::name(id) {
                labels.push(name.to_ascii_lowercase().replace([' ', '/'], "-"));
            }
        }
        labels.extend(local.tags.iter().cloned());
    }
    labels.sort();
    labels.dedup();
    labels
}

/// Lockheed Martin kill-chain phases implied by AbuseIPDB categories, in chain order.
fn kill_chain(categories: &[u8]) -> Vec<KillChainPhase> {
    const PHASES: [&str; 5] = [
        "reconnaissance",
        "delivery",
        "exploitation",
        "command-and-control",
        "actions-on-objectives",
    ];
    let phase_of = |id: u8| -> Option<usize> {
        match id {
            14 | 19 => Some(0),
            7 | 10 | 11 | 12 => Some(1),
            5 | 15 | 16 | 18 | 21 | 22 | 23 => Some(2),
            20 => Some(3),
            4 | 6 | 3 => Some(4),
            _ => None,
        }
    };
    let mut wanted = [false; 5];
    for &id in categories {
        if let Some(phase) = phase_of(id) {
            wanted[phase] = true;
        }
    }
    PHASES
        .iter()
        .zip(wanted)
        .filter(|(_, on)| *on)
        .map(|(name, _)| KillChainPhase {
            kill_chain_name: "lockheed-martin-cyber-kill-chain",
            phase_name: name,
        })
        .collect()
}

fn references(facts: &IocFacts, addr: &str) -> Vec<Reference> {
    let mut refs = vec![Reference {
        source_name: "abuseipdb",
        url: Some(format!("https://www.abuseipdb.com/check/{addr}")),
        external_id: None,
        description: Some("AbuseIPDB report page of the address".into()),
    }];
    if let Some(id) = facts.local.as_ref().and_then(|l| l.report_id.clone()) {
        refs.push(Reference {
            source_name: "local-detection",
            url: None,
            external_id: Some(id),
            description: Some("Identifier of the local report".into()),
        });
    }
    refs
}

#[derive(Serialize)]
struct Indicator<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: &'a str,
    created_by_ref: &'a str,
    created: String,
    modified: String,
    name: String,
    description: String,
    indicator_types: [&'static str; 1],
    pattern: String,
    pattern_type: &'static str,
    pattern_version: &'static str,
    valid_from: String,
    valid_until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kill_chain_phases: Option<Vec<KillChainPhase>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<String>>,
    confidence: u8,
    external_references: Vec<Reference>,
    object_marking_refs: [&'static str; 1],
    x_ioc_source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_local_confidence: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_abuseipdb_confidence: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_categories: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_abuseipdb_reports: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_abuseipdb_usage_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_abuseipdb_last_reported: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_elastic_geo_coordinates: Option<LatLon>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_elastic_geo_location: Option<LatLon>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_elastic_geo_point: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_elastic_geo_country_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_elastic_geo_country_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_elastic_geo_city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_geo_region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_geo_asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_geo_isp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_ioc_geo_provider: Option<&'a str>,
}

#[derive(Serialize)]
struct LatLon {
    lat: f64,
    lon: f64,
}

impl LatLon {
    fn of(location: &Location) -> LatLon {
        LatLon {
            lat: location.latitude,
            lon: location.longitude,
        }
    }
}

#[derive(Serialize)]
struct KillChainPhase {
    kill_chain_name: &'static str,
    phase_name: &'static str,
}

#[derive(Serialize)]
struct Reference {
    source_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Serialize)]
struct Identity<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: &'a str,
    created_by_ref: &'a str,
    created: &'static str,
    modified: &'static str,
    name: &'a str,
    description: &'static str,
    identity_class: &'static str,
}

#[derive(Serialize)]
struct Marking {
    #[serde(rename = "type")]
    kind: &'static str,
    spec_version: &'static str,
    id: &'static str,
    created: &'static str,
    definition_type: &'static str,
    name: &'static str,
    definition: TlpDefinition,
}

#[derive(Serialize)]
struct TlpDefinition {
    tlp: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ioc::{ExternalFacts, LocalFacts};
    use jiff::Timestamp;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn facts() -> IocFacts {
        IocFacts {
            addr: "203.0.113.7".parse().unwrap(),
            local: Some(LocalFacts {
                confidence: 90,
                categories: vec![18, 22],
                tags: vec!["honeypot".into()],
                report_id: Some("R-1".into()),
                reported_at: at("2026-12-01T10:00:00Z"),
                created_at: at("2026-11-30T10:00:00Z"),
            }),
            external: Some(ExternalFacts {
                score: 100,
                on_blacklist: true,
                ..ExternalFacts::default()
            }),
            location: Some(Location {
                latitude: 52.37,
                longitude: 4.9,
                country_code: Some("NL".into()),
                country_name: Some("Netherlands".into()),
                city: Some("Amsterdam".into()),
                provider: "ipapi".into(),
                ..Location::default()
            }),
            confidence: 92,
            first_seen: at("2026-11-30T10:00:00Z"),
            last_seen: at("2026-12-01T10:00:00Z"),
        }
    }

    fn render(revoked: bool) -> serde_json::Value {
        let renderer = Renderer::new(
            &StixSettings {
                tlp: Tlp::Green,
                org_name: "SOC".into(),
            },
            30,
        );
        let facts = facts();
        let text = renderer.render_indicator(&Version {
            facts: &facts,
            stix_id: "indicator--11111111-1111-5111-8111-111111111111",
            created: at("2026-12-02T00:00:00.5Z"),
            modified: at("2026-12-02T00:00:01Z"),
            revoked,
        });
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn indicator_has_the_required_shape() {
        let v = render(false);
        assert_eq!(v["type"], "indicator");
        assert_eq!(v["spec_version"], "2.1");
        assert_eq!(v["pattern"], "[ipv4-addr:value = '203.0.113.7']");
        assert_eq!(v["pattern_type"], "stix");
        assert_eq!(v["pattern_version"], "2.1");
        assert_eq!(v["created"], "2026-12-02T00:00:00.500Z");
        assert_eq!(v["modified"], "2026-12-02T00:00:01.000Z");
        assert_eq!(v["valid_from"], "2026-11-30T10:00:00.000Z");
        assert_eq!(v["valid_until"], "2026-12-31T10:00:00.000Z");
        assert_eq!(v["confidence"], 92);
        assert_eq!(
            v["labels"],
            serde_json::json!(["brute-force", "honeypot", "ssh"])
        );
        assert_eq!(
            v["object_marking_refs"][0],
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
        );
        assert_eq!(v["x_ioc_source"], "both");
        assert_eq!(v["x_elastic_geo_point"], serde_json::json!([4.9, 52.37]));
        assert_eq!(
            v["x_elastic_geo_location"],
            serde_json::json!({"lat": 52.37, "lon": 4.9})
        );
        assert_eq!(
            v["x_elastic_geo_coordinates"],
            serde_json::json!({"lat": 52.37, "lon": 4.9})
        );
        assert_eq!(v["x_elastic_geo_country_code"], "NL");
        assert_eq!(v["x_elastic_geo_country_name"], "Netherlands");
        assert_eq!(v["x_elastic_geo_city"], "Amsterdam");
        assert_eq!(v["kill_chain_phases"][0]["phase_name"], "exploitation");
        assert_eq!(v["external_references"][1]["external_id"], "R-1");
        assert!(v.get("revoked").is_none());
        assert_eq!(render(true)["revoked"], true);
    }

    #[test]
    fn ipv6_patterns_are_compressed_lower_case() {
        assert_eq!(
            pattern("2001:DB8:0:0::1".parse().unwrap()),
            "[ipv6-addr:value = '2001:db8::1']"
        );
    }

    #[test]
    fn static_objects_are_fixed() {
        let renderer = Renderer::new(
            &StixSettings {
                tlp: Tlp::Clear,
                org_name: "SOC".into(),
            },
            30,
        );
        let objects = renderer.static_objects();
        assert!(objects[0].id.starts_with("identity--"));
        assert_eq!(
            objects[1].id,
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
        );
        assert!(
            objects[1]
                .object
                .contains(r#""definition":{"tlp":"white"}"#)
        );
        assert_eq!(objects, renderer.static_objects());
    }
}
