//! Geolocation against local fakes of the web providers and a tiny mmdb built in the test:
//! batching, limits, fallback, pauses, the public-only rule and the cache.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use abuseipdb_ioc::clock::{SharedClock, SystemClock};
use abuseipdb_ioc::config::{GeoProviderKind, GeoSettings, Settings};
use abuseipdb_ioc::enrich::geo::GeoService;
use abuseipdb_ioc::health::HealthBoard;
use abuseipdb_ioc::ioc::{IocKey, Location};
use abuseipdb_ioc::source::address::is_public;
use abuseipdb_ioc::store::Store;
use abuseipdb_ioc::store::tables::{GEO, Stamped};
use common::fake_geo::{Fakes, Mode};
use redb::{ReadableDatabase, ReadableTable};
use serde::Serialize;

use GeoProviderKind::{GeoJs, IpApi, IpWhois, Mmdb};

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    fakes: Fakes,
    geo: GeoSettings,
}

async fn setup(providers: Vec<GeoProviderKind>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let fakes = Fakes::start().await;
    let mut geo = Settings::for_data_dir(dir.path()).geo;
    geo.providers = providers;
    geo.ipapi_base_url = fakes.ipapi.base.clone();
    geo.ipwhois_base_url = fakes.ipwhois.base.clone();
    geo.geojs_base_url = fakes.geojs.base.clone();
    geo.request_delay = Duration::from_millis(1);
    geo.timeout = Duration::from_secs(1);
    let store = Arc::new(Store::open(&dir.path().join("state.redb")).unwrap());
    Setup {
        _dir: dir,
        store,
        fakes,
        geo,
    }
}

impl Setup {
    fn service(&self) -> GeoService {
        let clock: SharedClock = Arc::new(SystemClock);
        GeoService::new(
            &self.geo,
            self.store.clone(),
            Arc::new(HealthBoard::default()),
            clock,
        )
    }

    /// The cache entry of `addr`: `None` = no entry, `Some(None)` = negative.
    fn cached(&self, addr: IpAddr) -> Option<Option<Location>> {
        let txn = self.store.db().begin_read().unwrap();
        let table = txn.open_table(GEO).ok()?;
        let value = table.get(IocKey::of(addr).0).unwrap()?;
        let stamped = Stamped::decode(value.value()).unwrap();
        Some(serde_json::from_slice(stamped.payload).unwrap())
    }
}

/// `n` distinct public IPv4 addresses in 11.0.0.0/8.
fn public_addrs(n: u32) -> Vec<IpAddr> {
    (0..n)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i * 7 + 1)))
        .collect()
}

#[tokio::test]
async fn thousand_addresses_use_ipapi_batches_then_the_cache() {
    let s = setup(vec![IpApi, IpWhois, GeoJs]).await;
    let service = s.service();
    let addrs = public_addrs(1000);

    let report = service.run_now(addrs.clone()).await;
    assert_eq!(report.located, 1000, "{report:?}");
    let ipapi = &s.fakes.ipapi.state;
    assert!(ipapi.batch_requests.load(Ordering::SeqCst) <= 10);
    assert_eq!(ipapi.single_requests.load(Ordering::SeqCst), 0);
    assert_eq!(
        s.fakes.ipwhois.state.requests() + s.fakes.geojs.state.requests(),
        0
    );
    assert_eq!(s.fakes.refused(), 0, "a provider limit was exceeded");
    let loc = s.cached(addrs[0]).unwrap().unwrap();
    assert_eq!(loc.provider, "ipapi");
    assert_eq!(loc.asn, Some(5769));

    let before = s.fakes.seen().len();
    let again = service.run_now(addrs).await;
    assert_eq!(again.cache_hits, 1000);
    assert!(again.requests.is_empty(), "{again:?}");
    assert_eq!(s.fakes.seen().len(), before);
}

#[tokio::test]
async fn ipapi_down_falls_through_to_ipwhois_and_geojs() {
    let s = setup(vec![IpApi, IpWhois, GeoJs]).await;
    s.fakes.ipapi.state.set_mode(Mode::Down);
    let addrs = public_addrs(150);

    let report = s.service().run_now(addrs.clone()).await;
    assert_eq!(report.located, 150, "{report:?}");
    assert_eq!(report.failures.get("ipapi"), Some(&2));
    // ipwho.is takes 60 a minute, one address per request; GeoJS the rest in multi requests.
    assert_eq!(
        s.fakes.ipwhois.state.single_requests.load(Ordering::SeqCst),
        60
    );
    assert!(s.fakes.geojs.state.batch_requests.load(Ordering::SeqCst) >= 2);
    assert_eq!(s.fakes.refused(), 0);
    let providers: Vec<String> = addrs
        .iter()
        .map(|a| s.cached(*a).unwrap().unwrap().provider)
        .collect();
    assert!(providers.iter().all(|p| p == "ipwhois" || p == "geojs"));
    assert_eq!(providers.iter().filter(|p| *p == "ipwhois").count(), 60);
}

#[tokio::test]
async fn malformed_and_slow_answers_fall_through() {
    let s = setup(vec![IpApi, GeoJs]).await;
    s.fakes.ipapi.state.set_mode(Mode::Malformed);
    let report = s.service().run_now(public_addrs(20)).await;
    assert_eq!(report.located, 20, "{report:?}");

    let s = setup(vec![IpWhois, GeoJs]).await;
    s.fakes.ipwhois.state.set_mode(Mode::Slow);
    let report = s.service().run_now(public_addrs(3)).await;
    assert_eq!(report.located, 3, "{report:?}");
    assert_eq!(report.failures.get("ipwhois"), Some(&2));
}

#[tokio::test]
async fn a_429_pauses_only_that_provider() {
    let s = setup(vec![IpApi, GeoJs]).await;
    s.fakes.ipapi.state.batch_limit.store(0, Ordering::SeqCst);
    let service = s.service();

    let first = service.run_now(public_addrs(300)).await;
    assert_eq!(first.located, 300, "{first:?}");
    assert!(first.paused.contains("ipapi"));
    assert!(!first.paused.contains("geojs"));
    assert_eq!(s.fakes.ipapi.state.refused.load(Ordering::SeqCst), 1);

    let more: Vec<IpAddr> = public_addrs(600).split_off(300);
    let second = service.run_now(more).await;
    assert_eq!(second.located, 300);
    assert_eq!(
        s.fakes.ipapi.state.requests(),
        1,
        "paused ip-api was asked again"
    );
    assert!(s.fakes.geojs.state.requests() >= 12);
}

#[tokio::test]
async fn non_public_addresses_are_never_sent() {
    let s = setup(vec![IpApi, IpWhois, GeoJs]).await;
    let private: Vec<IpAddr> = [
        "10.0.0.1",
        "192.168.1.1",
        "172.16.5.5",
        "127.0.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "240.0.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "2001:db8::1",
        "ff02::1",
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect();
    let service = s.service();

    let report = service.run_now(private.clone()).await;
    assert!(report.requests.is_empty(), "{report:?}");
    assert_eq!(s.fakes.seen().len(), 0);

    let mut mixed = private.clone();
    mixed.extend(public_addrs(5));
    s.fakes.ipapi.state.set_mode(Mode::Down);
    let report = service.run_now(mixed).await;
    assert_eq!(report.located, 5);
    let seen = s.fakes.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|t| is_public(t.parse().unwrap())),
        "{seen:?}"
    );
    assert!(private.iter().all(|a| s.cached(*a).is_none()));
}

#[derive(Serialize)]
struct Names {
    en: &'static str,
}

#[derive(Serialize)]
struct Named {
    names: Names,
}

#[derive(Serialize)]
struct Country {
    iso_code: &'static str,
    names: Names,
}

#[derive(Serialize)]
struct Point {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct CityRecord {
    country: Country,
    city: Named,
    subdivisions: Vec<Named>,
    location: Point,
}

/// A GeoIP2-City-shaped database knowing only 1.1.1.0/24 (Sydney).
fn tiny_mmdb(path: &std::path::Path) {
    let record = CityRecord {
        country: Country {
            iso_code: "AU",
            names: Names { en: "Australia" },
        },
        city: Named {
            names: Names { en: "Sydney" },
        },
        subdivisions: vec![Named {
            names: Names {
                en: "New South Wales",
            },
        }],
        location: Point {
            latitude: -33.8688,
            longitude: 151.2093,
        },
    };
    let mut writer = mmdb_writer::Writer::new("GeoLite2-City");
    writer
        .insert("1.1.1.0/24".parse::<ipnet::IpNet>().unwrap(), &record)
        .unwrap();
    std::fs::write(path, writer.to_bytes().unwrap()).unwrap();
}

#[tokio::test]
async fn mmdb_answers_what_it_knows_and_web_providers_get_the_rest() {
    let mut s = setup(vec![Mmdb, IpApi, IpWhois, GeoJs]).await;
    let path = s._dir.path().join("tiny.mmdb");
    tiny_mmdb(&path);
    s.geo.mmdb_path = Some(path);
    let known: Vec<IpAddr> = ["1.1.1.1", "1.1.1.77"]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    let other: IpAddr = "8.8.8.8".parse().unwrap();
    let mut addrs = known.clone();
    addrs.push(other);

    let service = s.service();
    assert_eq!(service.providers(), ["mmdb", "ipapi", "ipwhois", "geojs"]);
    let report = service.run_now(addrs).await;
    assert_eq!(report.located, 3, "{report:?}");
    assert_eq!(s.fakes.seen(), ["8.8.8.8"]);
    let sydney = s.cached(known[0]).unwrap().unwrap();
    assert_eq!(sydney.provider, "mmdb");
    assert_eq!(sydney.country_code.as_deref(), Some("AU"));
    assert_eq!(sydney.country_name.as_deref(), Some("Australia"));
    assert_eq!(sydney.city.as_deref(), Some("Sydney"));
    assert_eq!(sydney.region.as_deref(), Some("New South Wales"));
    assert_eq!((sydney.latitude, sydney.longitude), (-33.8688, 151.2093));
    assert_eq!(s.cached(other).unwrap().unwrap().provider, "ipapi");
}

#[tokio::test]
async fn unknown_is_cached_as_negative_but_a_failure_is_not() {
    let mut s = setup(vec![Mmdb]).await;
    let path = s._dir.path().join("tiny.mmdb");
    tiny_mmdb(&path);
    s.geo.mmdb_path = Some(path);
    let addr: IpAddr = "8.8.8.8".parse().unwrap();
    let report = s.service().run_now(vec![addr]).await;
    assert_eq!(report.unknown, 1, "{report:?}");
    assert_eq!(s.cached(addr), Some(None));

    let s = setup(vec![IpApi]).await;
    s.fakes.ipapi.state.set_mode(Mode::Down);
    let report = s.service().run_now(vec![addr]).await;
    assert_eq!(report.deferred, 1);
    assert!(
        s.cached(addr).is_none(),
        "a failure must not be cached as unknown"
    );
}
