//! The TAXII 2.1 server against the real HTTP stack on `127.0.0.1:0`: resource shapes,
//! every error path, paging with `next`, incremental polling, tokens, gzip, restarts.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use abuseipdb_ioc::app::App;
use abuseipdb_ioc::clock::SystemClock;
use abuseipdb_ioc::config::{Secret, Settings};
use abuseipdb_ioc::ioc::Collection;
use abuseipdb_ioc::publish::http;
use abuseipdb_ioc::source::sqlite::EmbeddedSource;
use jiff::{SignedDuration, Timestamp};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const TAXII: &str = "application/taxii+json;version=2.1";
const KEY: &str = "test-key-0123456789";
const ALL: &str = "/taxii2/iocs/collections/ioc-indicators";
const HIGH: &str = "/taxii2/iocs/collections/high-confidence-iocs";

/// A running server over a data directory; dropping the directory ends the test's state.
struct Server {
    base: String,
    app: Arc<App>,
    client: reqwest::Client,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

fn settings(dir: &Path, keys: &[&str]) -> Settings {
    let mut settings = Settings::for_data_dir(dir);
    settings.cycle.auto_start = false;
    settings.geo.providers.clear();
    settings.abuseipdb.api_key = None;
    settings.http.api_keys = keys.iter().map(|k| Secret::new(*k)).collect();
    settings
}

fn address(i: usize) -> String {
    if i % 10 == 9 {
        format!("2a00:1450:{:x}::{:x}", i / 256 + 1, i % 256 + 1)
    } else {
        format!(
            "45.{}.{}.{}",
            10 + i / 60_000,
            (i / 250) % 240 + 1,
            i % 250 + 1
        )
    }
}

fn confidence(i: usize) -> i64 {
    40 + (i as i64 * 7) % 61
}

/// Reports `n` addresses with confidences 40–100 into the embedded source.
fn populate(settings: &Settings, n: usize) {
    let source = EmbeddedSource::open(&settings.sqlite_path()).unwrap();
    let at = Timestamp::now() - SignedDuration::from_hours(2);
    for i in 0..n {
        let report_id = format!("r-{i}");
        source
            .report(
                &address(i),
                Some(confidence(i)),
                &[18, 22],
                Some(&report_id),
                at,
            )
            .unwrap();
    }
}

async fn serve(settings: Settings) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = Arc::new(App::build(settings, Arc::new(SystemClock)).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(http::serve(listener, app.clone(), rx));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Server {
        base: format!("http://{addr}"),
        app,
        client,
        stop,
        task,
    }
}

/// A published server with `n` indicators.
async fn start(dir: &Path, n: usize, keys: &[&str]) -> Server {
    let settings = settings(dir, keys);
    populate(&settings, n);
    let server = serve(settings).await;
    server.app.pipeline.run("test").await.unwrap();
    server
}

impl Server {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, path: &str) -> (HeaderMap, Value) {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], TAXII, "{path}");
        (headers, response.json().await.unwrap())
    }

    /// Walks a paginated endpoint with `next` alone; returns every page's headers and body.
    async fn walk(&self, first: &str) -> Vec<(HeaderMap, Value)> {
        let mut pages = vec![self.json(first).await];
        let path = first.split('?').next().unwrap().to_string();
        loop {
            let last = &pages.last().unwrap().1;
            if last["more"] == false {
                assert!(last.get("next").is_none());
                return pages;
            }
            let next = last["next"].as_str().expect("next when more");
            pages.push(self.json(&format!("{path}?next={next}")).await);
        }
    }

    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
        drop(self.app);
    }
}

fn ids(pages: &[(HeaderMap, Value)]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|(_, body)| body["objects"].as_array().cloned().unwrap_or_default())
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

fn stamp(headers: &HeaderMap, name: &str) -> String {
    let value = headers[name].to_str().unwrap().to_string();
    let b = value.as_bytes();
    let ok = value.len() == 27
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[26] == b'Z'
        && b[20..26].iter().all(u8::is_ascii_digit);
    assert!(ok, "{name}: {value}");
    value
}

async fn assert_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[CONTENT_TYPE], TAXII);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["http_status"], status.to_string());
    assert!(body["title"].is_string() && body["description"].is_string());
    body
}

#[tokio::test]
async fn discovery_root_and_collections_have_their_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 5, &[]).await;

    for path in ["/taxii2/", "/taxii2"] {
        let (_, body) = server.json(path).await;
        assert_eq!(body["api_roots"], serde_json::json!(["/taxii2/iocs/"]));
        assert_eq!(body["default"], "/taxii2/iocs/");
        assert!(body["title"].is_string());
    }
    let (_, root) = server.json("/taxii2/iocs/").await;
    assert_eq!(root["versions"], serde_json::json!([TAXII]));
    assert!(root["max_content_length"].as_u64().unwrap() > 0);

    let (_, list) = server.json("/taxii2/iocs/collections/").await;
    let list = list["collections"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert!(list[0]["id"].as_str() < list[1]["id"].as_str());
    for c in Collection::EVERY {
        let expected = list.iter().find(|e| e["id"] == c.id()).unwrap();
        assert_eq!(expected["alias"], c.alias());
        assert_eq!(expected["can_read"], true);
        assert_eq!(expected["can_write"], false);
        assert_eq!(
            expected["media_types"],
            serde_json::json!(["application/stix+json;version=2.1"])
        );
        for name in [c.id(), c.alias()] {
            for slash in ["", "/"] {
                let path = format!("/taxii2/iocs/collections/{name}{slash}");
                assert_eq!(&server.json(&path).await.1, expected);
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn every_error_path_answers_a_taxii_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 5, &[KEY]).await;
    let url = |p: &str| format!("{}{p}", server.base);
    let c = &server.client;

    let missing = c.get(url("/taxii2/")).send().await.unwrap();
    let challenge = missing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(challenge, r#"Basic realm="taxii", Bearer realm="taxii""#);
    assert_error(missing, 401).await;
    let wrong = c.get(url(ALL)).bearer_auth("nope").send().await.unwrap();
    assert_error(wrong, 401).await;
    let unknown_path = c.get(url("/taxii2/elsewhere/")).send().await.unwrap();
    assert_error(unknown_path, 401).await;

    for request in [
        c.get(url(ALL)).bearer_auth(KEY),
        c.get(url(ALL))
            .header("Authorization", format!("Token {KEY}")),
        c.get(url(ALL)).header("X-API-Key", KEY),
        c.get(url(ALL)).basic_auth("anyone", Some(KEY)),
    ] {
        assert_eq!(request.send().await.unwrap().status(), 200);
    }

    let accept = |value: &'static str| c.get(url(ALL)).bearer_auth(KEY).header("Accept", value);
    let refused = accept("application/taxii+json;version=2.0")
        .send()
        .await
        .unwrap();
    assert_error(refused, 406).await;
    for fine in [
        "application/taxii+json",
        "*/*",
        "application/json, text/plain, */*",
    ] {
        assert_eq!(accept(fine).send().await.unwrap().status(), 200, "{fine}");
    }
    let with_type = c
        .get(url(&format!("{ALL}/objects/")))
        .bearer_auth(KEY)
        .header("Content-Type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(with_type.status(), 200, "Content-Type is ignored on GET");

    let objects = format!("{ALL}/objects/");
    for query in [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "added_after=garbage",
        "added_after=2026-01-01T00:00:00Z&added_after=2026-01-02T00:00:00Z",
        "match[version]=all,last",
        "match[type]=indicator&match[type]=identity",
        "next=garbage",
    ] {
        let body = assert_error(server.get(&format!("{objects}?{query}")).await, 400).await;
        assert!(!body["description"].as_str().unwrap().is_empty(), "{query}");
    }
    let manifest_bad = server.get(&format!("{ALL}/manifest/?limit=0")).await;
    assert_error(manifest_bad, 400).await;

    for path in [
        "/taxii2/iocs/collections/nope/".to_string(),
        "/taxii2/iocs/collections/nope/objects/".to_string(),
        format!("{ALL}/objects/indicator--00000000-0000-5000-8000-000000000000/"),
        format!("{ALL}/objects/indicator--00000000-0000-5000-8000-000000000000/versions/"),
        "/taxii2/iocs/status/2d086da7-4bdc-4f91-900e-d77486753710/".to_string(),
        "/taxii2/other/".to_string(),
    ] {
        assert_error(server.get(&path).await, 404).await;
    }

    let post = c
        .post(url(&objects))
        .bearer_auth(KEY)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(post, 403).await;
    let (_, page) = server.json(&objects).await;
    let id = page["objects"][0]["id"].as_str().unwrap().to_string();
    let delete = c
        .delete(url(&format!("{objects}{id}/")))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_error(delete, 403).await;
    let put = c
        .put(url("/taxii2/"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_error(put, 405).await;
    server.shutdown().await;
}

#[tokio::test]
async fn paging_delivers_every_object_once_in_date_added_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 300, &[KEY]).await;
    let manifest = server.walk(&format!("{ALL}/manifest/?limit=10000")).await;
    assert_eq!(manifest.len(), 1);
    let records = manifest[0].1["objects"].as_array().unwrap().clone();
    let dates: Vec<&str> = records
        .iter()
        .map(|r| r["date_added"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] < w[1]), "ascending, unique");
    assert!(
        records
            .iter()
            .all(|r| r["media_type"] == "application/stix+json;version=2.1")
    );
    let expected: Vec<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        expected.len() >= 302,
        "indicators plus identity and marking"
    );

    for limit in [1, 7, 100] {
        let pages = server.walk(&format!("{ALL}/objects/?limit={limit}")).await;
        let got = ids(&pages);
        assert_eq!(got, expected, "limit {limit}: every object once, in order");
        let mut previous_last = String::new();
        for (headers, body) in &pages {
            let count = body["objects"].as_array().map_or(0, Vec::len);
            assert!(count <= limit);
            let (first, last) = (
                stamp(headers, "x-taxii-date-added-first"),
                stamp(headers, "x-taxii-date-added-last"),
            );
            assert!(first <= last && previous_last < first);
            previous_last = last;
        }
    }

    let with_filters = server
        .walk(&format!("{ALL}/manifest/?limit=50&match[type]=indicator"))
        .await;
    let first_next = with_filters[0].1["next"].as_str().unwrap();
    let again = format!("{ALL}/manifest/?limit=50&match[type]=indicator&next={first_next}");
    assert_eq!(server.json(&again).await.1, with_filters[1].1);
    let total: usize = with_filters
        .iter()
        .map(|(_, b)| b["objects"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(total, 300);
    server.shutdown().await;
}

#[tokio::test]
async fn incremental_polls_see_the_rest_nothing_then_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 120, &[KEY]).await;

    let (headers, first) = server.json(&format!("{ALL}/objects/?limit=100")).await;
    let cursor = stamp(&headers, "x-taxii-date-added-last");
    let rest = server
        .walk(&format!("{ALL}/objects/?added_after={cursor}&limit=1000"))
        .await;
    let all = server.walk(&format!("{ALL}/objects/?limit=1000")).await;
    let mut joined = ids(&[(headers.clone(), first)]);
    joined.extend(ids(&rest));
    assert_eq!(joined, ids(&all));

    let newest = stamp(&all[0].0, "x-taxii-date-added-last");
    let empty_path = format!("{ALL}/objects/?added_after={newest}");
    let (empty_headers, empty) = server.json(&empty_path).await;
    assert_eq!(empty, serde_json::json!({"more": false}));
    assert_eq!(stamp(&empty_headers, "x-taxii-date-added-first"), newest);
    assert_eq!(stamp(&empty_headers, "x-taxii-date-added-last"), newest);
    let seconds = &newest[..19];
    let lenient = server
        .json(&format!("{ALL}/manifest/?added_after={seconds}Z"))
        .await;
    let lenient_first = stamp(&lenient.0, "x-taxii-date-added-first");
    assert!(lenient_first.as_str() > format!("{seconds}.000000Z").as_str());

    let source = EmbeddedSource::open(&server.app.settings.sqlite_path()).unwrap();
    source
        .report(
            &address(3),
            Some(99),
            &[18, 22],
            Some("r-3"),
            Timestamp::now(),
        )
        .unwrap();
    server.app.pipeline.run("test").await.unwrap();
    let (changed_headers, changed) = server.json(&empty_path).await;
    let objects = changed["objects"].as_array().unwrap();
    let changed_id = ids(&[(changed_headers.clone(), changed.clone())]);
    let expected_id = format!(
        "indicator--{}",
        abuseipdb_ioc::ioc::IocKey::of(address(3).parse().unwrap()).uuid()
    );
    assert!(changed_id.contains(&expected_id), "{changed_id:?}");
    assert!(objects.iter().any(|o| o["confidence"] == 99));
    assert!(stamp(&changed_headers, "x-taxii-date-added-first") > newest);
    server.shutdown().await;
}

#[tokio::test]
async fn next_tokens_are_bound_to_their_query() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 40, &[KEY]).await;
    let (_, page) = server.json(&format!("{ALL}/objects/?limit=5")).await;
    let next = page["next"].as_str().unwrap().to_string();

    let (payload, signature) = next.split_once('.').unwrap();
    let mut flipped = payload.as_bytes().to_vec();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{signature}", String::from_utf8(flipped).unwrap());
    let truncated = &next[..next.len() - 4];
    for path in [
        format!("{ALL}/objects/?next={tampered}"),
        format!("{ALL}/objects/?next={truncated}"),
        format!("{HIGH}/objects/?next={next}"),
        format!("{ALL}/manifest/?next={next}"),
        format!("{ALL}/objects/?next={next}&match[type]=identity"),
    ] {
        assert_error(server.get(&path).await, 400).await;
    }
    let (_, filtered) = server
        .json(&format!("{ALL}/objects/?limit=5&match[type]=indicator"))
        .await;
    let filtered_next = filtered["next"].as_str().unwrap();
    let contradicting = format!("{ALL}/objects/?next={filtered_next}&match[type]=identity");
    assert_error(server.get(&contradicting).await, 400).await;
    let alone = server
        .json(&format!("{ALL}/objects/?next={filtered_next}"))
        .await;
    let along = server
        .json(&format!(
            "{ALL}/objects/?next={filtered_next}&match[type]=indicator"
        ))
        .await;
    assert_eq!(alone.1, along.1);
    server.shutdown().await;
}

#[tokio::test]
async fn object_versions_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 20, &[KEY]).await;
    let (_, page) = server
        .json(&format!("{ALL}/objects/?match[type]=indicator&limit=1"))
        .await;
    let object = page["objects"][0].clone();
    let id = object["id"].as_str().unwrap();
    let modified = object["modified"].as_str().unwrap();

    let (headers, single) = server.json(&format!("{ALL}/objects/{id}/")).await;
    assert_eq!(single["objects"], serde_json::json!([object]));
    assert_eq!(single["more"], false);
    stamp(&headers, "x-taxii-date-added-first");
    let (headers, versions) = server.json(&format!("{ALL}/objects/{id}/versions")).await;
    assert_eq!(
        versions,
        serde_json::json!({"more": false, "versions": [modified]})
    );
    stamp(&headers, "x-taxii-date-added-last");
    for query in [
        "match[version]=first",
        "match[version]=all",
        &format!("match[version]={modified}"),
    ] {
        let (_, found) = server.json(&format!("{ALL}/objects/{id}/?{query}")).await;
        assert_eq!(found["objects"][0]["id"], id, "{query}");
    }
    let (_, none) = server
        .json(&format!(
            "{ALL}/objects/{id}/?match[version]=2001-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(none, serde_json::json!({"more": false}));

    let (_, identity) = server
        .json(&format!("{ALL}/objects/?match[type]=identity"))
        .await;
    let list = identity["objects"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["type"], "identity");
    let (_, by_id) = server
        .json(&format!("{ALL}/manifest/?match[id]={id}"))
        .await;
    assert_eq!(by_id["objects"].as_array().unwrap().len(), 1);
    let (_, other_spec) = server
        .json(&format!("{ALL}/objects/?match[spec_version]=2.0"))
        .await;
    assert_eq!(other_spec, serde_json::json!({"more": false}));
    let (_, unknown) = server
        .json(&format!("{ALL}/objects/?match[color]=red&limit=2"))
        .await;
    assert_eq!(unknown["objects"].as_array().unwrap().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn collections_hold_their_indicators_and_the_static_objects() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 150, &[KEY]).await;
    let threshold = server.app.settings.scoring.high_threshold;
    let objects = |pages: &[(HeaderMap, Value)]| -> Vec<Value> {
        pages
            .iter()
            .flat_map(|(_, b)| b["objects"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let all = objects(&server.walk(&format!("{ALL}/objects/")).await);
    let high = objects(&server.walk(&format!("{HIGH}/objects/")).await);
    for list in [&all, &high] {
        assert_eq!(list.iter().filter(|o| o["type"] == "identity").count(), 1);
        assert_eq!(
            list.iter()
                .filter(|o| o["type"] == "marking-definition")
                .count(),
            1
        );
    }
    let confident = |list: &[Value]| -> HashSet<String> {
        list.iter()
            .filter(|o| o["type"] == "indicator")
            .filter(|o| o["confidence"].as_u64().unwrap() >= u64::from(threshold))
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    let high_indicators = high.iter().filter(|o| o["type"] == "indicator").count();
    assert!(high_indicators > 0 && high_indicators < 150);
    assert_eq!(
        confident(&high).len(),
        high_indicators,
        "only confident ones"
    );
    assert_eq!(confident(&all), confident(&high));
    server.shutdown().await;
}

#[tokio::test]
async fn gzip_when_accepted_and_limits_are_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), &[]);
    settings.taxii.max_limit = 25;
    settings.taxii.empty_objects_list = true;
    populate(&settings, 60);
    let server = serve(settings).await;
    server.app.pipeline.run("test").await.unwrap();

    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = raw
        .get(format!("{}{ALL}/objects/", server.base))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()[CONTENT_TYPE], TAXII);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);

    let (_, page) = server.json(&format!("{ALL}/objects/?limit=1000")).await;
    assert_eq!(page["objects"].as_array().unwrap().len(), 25);
    assert_eq!(page["more"], true);
    let (_, empty) = server
        .json(&format!("{ALL}/objects/?added_after=2999-01-01T00:00:00Z"))
        .await;
    assert_eq!(empty, serde_json::json!({"more": false, "objects": []}));
    server.shutdown().await;
}

#[tokio::test]
async fn objects_are_byte_identical_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 80, &[KEY]).await;
    let mut before = Vec::new();
    for collection in [ALL, HIGH] {
        let path = format!("{collection}/objects/?limit=1000");
        before.push(server.get(&path).await.bytes().await.unwrap());
    }
    server.shutdown().await;

    let server = serve(settings(dir.path(), &[KEY])).await;
    for (collection, expected) in [ALL, HIGH].into_iter().zip(&before) {
        let path = format!("{collection}/objects/?limit=1000");
        assert_eq!(&server.get(&path).await.bytes().await.unwrap(), expected);
    }
    server.app.pipeline.run("again").await.unwrap();
    for (collection, expected) in [ALL, HIGH].into_iter().zip(&before) {
        let path = format!("{collection}/objects/?limit=1000");
        assert_eq!(&server.get(&path).await.bytes().await.unwrap(), expected);
    }
    server.shutdown().await;
}
