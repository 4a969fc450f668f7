//! End to end: rows in the embedded source → a cycle publishes without location → the
//! background geolocation run fills the cache → the next cycle publishes the six
//! `x_elastic_geo_*` properties.

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use abuseipdb_ioc::app::App;
use abuseipdb_ioc::clock::{SharedClock, SystemClock};
use abuseipdb_ioc::config::{GeoProviderKind, Settings};
use abuseipdb_ioc::enrich::geo;
use abuseipdb_ioc::health::Status;
use abuseipdb_ioc::ioc::Collection;
use abuseipdb_ioc::source::sqlite::EmbeddedSource;
use common::fake_geo::{Fakes, place};
use serde_json::Value;

/// The published indicator objects, by pattern.
fn indicators(app: &App) -> Vec<Value> {
    let mut found = Vec::new();
    app.store
        .scan(Collection::All, None, |_, value| {
            let object: Value = serde_json::from_slice(value.object).unwrap();
            if object["type"] == "indicator" {
                found.push(object);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    found
}

#[tokio::test]
async fn published_indicator_carries_the_six_geo_properties() {
    let dir = tempfile::tempdir().unwrap();
    let fakes = Fakes::start().await;
    let mut settings = Settings::for_data_dir(dir.path());
    settings.geo.providers = vec![GeoProviderKind::IpApi, GeoProviderKind::GeoJs];
    settings.geo.ipapi_base_url = fakes.ipapi.base.clone();
    settings.geo.geojs_base_url = fakes.geojs.base.clone();
    settings.geo.request_delay = Duration::from_millis(10);
    let clock: SharedClock = Arc::new(SystemClock);
    let source = EmbeddedSource::open(&settings.sqlite_path()).unwrap();
    for ip in ["8.8.8.8", "9.9.9.9", "10.1.2.3"] {
        source
            .report(ip, Some(90), &[18], None, clock.now())
            .unwrap();
    }

    let app = App::build(settings, clock).unwrap();
    // The app's geolocation service, to await its background run.
    let service = app.geo.clone().unwrap();

    app.pipeline.run("test").await.unwrap();
    assert!(
        indicators(&app)
            .iter()
            .all(|o| o.get("x_elastic_geo_point").is_none())
    );
    service.wait_idle().await;

    let second = app.pipeline.run("test").await.unwrap();
    assert_eq!(
        second.notes.get("geo_located").map(String::as_str),
        Some("2")
    );
    assert_eq!(second.geolocated, 2);
    let objects = indicators(&app);
    let google = objects
        .iter()
        .find(|o| o["pattern"] == "[ipv4-addr:value = '8.8.8.8']")
        .unwrap();
    let (lat, lon) = place("8.8.8.8".parse().unwrap());
    assert_eq!(google["x_elastic_geo_point"], serde_json::json!([lon, lat]));
    let lat_lon = serde_json::json!({"lat": lat, "lon": lon});
    assert_eq!(google["x_elastic_geo_coordinates"], lat_lon);
    assert_eq!(google["x_elastic_geo_location"], lat_lon);
    assert_eq!(google["x_elastic_geo_country_code"], "CA");
    assert_eq!(google["x_elastic_geo_country_name"], "Canada");
    assert_eq!(google["x_elastic_geo_city"], "Montreal");
    let private = objects
        .iter()
        .find(|o| o["pattern"] == "[ipv4-addr:value = '10.1.2.3']")
        .unwrap();
    assert!(private.get("x_elastic_geo_point").is_none());
    assert!(fakes.seen().iter().all(|ip| ip != "10.1.2.3"));

    let health = app.health.get("geo").unwrap();
    assert_eq!(health.status, Status::Ok);
    service.wait_idle().await;
    app.pipeline.run("test").await.unwrap();
    let health = app.health.get("geo").unwrap();
    assert!(health.figures.contains_key("geolocated_share"));
    let share = health.figures["geolocated_share"].as_f64().unwrap();
    assert!((share - 1.0).abs() < 1e-9, "{share}");
}

#[tokio::test]
async fn providers_none_disables_geolocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_data_dir(dir.path());
    settings.geo.providers = Vec::new();
    let app = App::build(settings, Arc::new(SystemClock)).unwrap();
    assert_eq!(app.health.get("geo").unwrap().status, Status::Disabled);
    assert!(geo::service(&app.settings, &app.store, &app.health, &app.clock).is_none());
}
