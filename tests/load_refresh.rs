//! Load during refresh: clients walk `…/ioc-indicators/objects/` page by page (following
//! `next`) while cycles run back to back, each changing a share of the rows. Every request
//! must succeed and every complete walk must hold the full feed: each indicator at least
//! once, and an id twice only when its version changed during the walk. Latency
//! percentiles are printed.
//!
//! `cargo test --test load_refresh` runs 10 s; the 60 s variant is
//! `cargo test --release --test load_refresh -- --ignored --nocapture`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::app::{TestApp, http_client};
use jiff::SignedDuration;
use serde_json::Value;

const OBJECTS: &str = "/taxii2/iocs/collections/ioc-indicators/objects/";
const ROWS: usize = 2_000;
/// Rows whose confidence changes every cycle.
const CHURN: usize = 400;
const CLIENTS: usize = 6;
const PAGE: usize = 250;
const MAX_REQUESTS: usize = 200_000;

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    walks: usize,
    cycles: usize,
}

fn ip(i: usize) -> String {
    format!("45.60.{}.{}", i / 250, i % 250 + 1)
}

/// One complete walk; `Err` for any failed request.
async fn walk(
    client: &reqwest::Client,
    base: &str,
    latencies: &mut Vec<Duration>,
) -> Result<Vec<(String, String)>, String> {
    let mut seen = Vec::new();
    let mut url = format!("{base}{OBJECTS}?limit={PAGE}");
    loop {
        let started = Instant::now();
        let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        latencies.push(started.elapsed());
        if status != 200 {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
        }
        let page: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        for object in page["objects"].as_array().into_iter().flatten() {
            if object["type"] == "indicator" {
                let id = object["id"].as_str().unwrap_or_default().to_string();
                let modified = object["modified"].as_str().unwrap_or_default().to_string();
                seen.push((id, modified));
            }
        }
        match page["next"].as_str() {
            Some(next) if page["more"] == true => {
                url = format!("{base}{OBJECTS}?next={next}");
            }
            _ => return Ok(seen),
        }
    }
}

/// Checks one walk: the whole feed, duplicates only across versions.
fn check_walk(seen: &[(String, String)]) -> Result<(), String> {
    let mut versions: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, modified) in seen {
        versions.entry(id).or_default().push(modified);
    }
    if versions.len() < ROWS {
        return Err(format!(
            "a walk saw {} of {ROWS} indicators",
            versions.len()
        ));
    }
    for (id, mods) in versions {
        let mut distinct = mods.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() != mods.len() {
            return Err(format!("{id} delivered twice in the same version"));
        }
    }
    Ok(())
}

async fn run(duration: Duration) {
    let app = TestApp::new();
    app.report(&ip(0), 90);
    let mut sql = String::from("BEGIN;");
    for i in 1..ROWS {
        sql.push_str(&format!(
            "INSERT INTO reported_ips (ip_address, reported_at, categories, confidence) \
             VALUES ('{}', '2026-12-01T11:00:00Z', '[18]', 90);",
            ip(i)
        ));
    }
    sql.push_str("COMMIT;");
    app.sql(&sql);
    assert_eq!(app.cycle().await.indicators, ROWS as u64);
    let base = app.serve().await;
    let deadline = Instant::now() + duration;
    let app = Arc::new(app);

    let refresher = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut cycles = 0;
            while Instant::now() < deadline {
                cycles += 1;
                let confidence = 80 + (cycles % 20);
                let churn = (cycles * 37) % (ROWS - CHURN);
                app.sql(&format!(
                    "UPDATE reported_ips SET confidence = {confidence} \
                     WHERE rowid > {churn} AND rowid <= {}",
                    churn + CHURN
                ));
                app.clock.advance(SignedDuration::from_secs(1));
                let summary = app.app.pipeline.run("load").await.expect("cycle");
                assert_eq!(summary.indicators, ROWS as u64);
            }
            cycles
        })
    };

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let base = base.clone();
        clients.push(tokio::spawn(async move {
            let client = http_client();
            let mut tally = Tally::default();
            while Instant::now() < deadline && tally.latencies.len() < MAX_REQUESTS / CLIENTS {
                match walk(&client, &base, &mut tally.latencies).await {
                    Ok(seen) => {
                        tally.walks += 1;
                        if let Err(err) = check_walk(&seen) {
                            tally.errors.push(err);
                        }
                    }
                    Err(err) => tally.errors.push(err),
                }
            }
            tally
        }));
    }

    let mut total = Tally::default();
    for client in clients {
        let tally = client.await.unwrap();
        total.latencies.extend(tally.latencies);
        total.errors.extend(tally.errors);
        total.walks += tally.walks;
    }
    total.cycles = refresher.await.unwrap();
    report(&mut total, duration);
    assert!(
        total.errors.is_empty(),
        "{:?}",
        &total.errors[..total.errors.len().min(5)]
    );
    assert!(total.cycles >= 2, "only {} cycles", total.cycles);
    assert!(total.walks >= CLIENTS, "only {} walks", total.walks);
}

fn report(total: &mut Tally, duration: Duration) {
    total.latencies.sort_unstable();
    let at = |q: f64| {
        let n = total.latencies.len();
        total.latencies[((n as f64 * q) as usize).min(n.saturating_sub(1))]
    };
    println!(
        "{:?}: {} requests, {} complete walks, {} cycles, {} errors; \
         latency p50 {:?} p90 {:?} p99 {:?} max {:?}",
        duration,
        total.latencies.len(),
        total.walks,
        total.cycles,
        total.errors.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        total.latencies.last().copied().unwrap_or_default(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_during_back_to_back_refresh_10s() {
    run(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "60 s; run with --ignored"]
async fn load_during_back_to_back_refresh_60s() {
    run(Duration::from_secs(60)).await;
}
