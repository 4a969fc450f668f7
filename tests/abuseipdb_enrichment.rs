//! AbuseIPDB enrichment against the local fake: budgets that are never exceeded (also across
//! restarts), the UTC day boundary, pacing, 401 and 429, failed fetches, dual-source scores
//! and the background check reserve.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use abuseipdb_ioc::app::App;
use abuseipdb_ioc::clock::{Clock, ManualClock, SharedClock};
use abuseipdb_ioc::config::{AbuseIpDbSettings, Secret, Settings};
use abuseipdb_ioc::enrich::abuseipdb::budget::Refusal;
use abuseipdb_ioc::enrich::abuseipdb::{AbuseIpDbError, CheckOutcome, Service};
use abuseipdb_ioc::health::Status;
use abuseipdb_ioc::ioc::{Collection, IocFacts, IocKey, Sources};
use abuseipdb_ioc::source::LocalSource;
use common::fake_abuseipdb::{FakeAbuseIpDb, Fault};
use jiff::{SignedDuration, Timestamp};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn build(
    dir: &Path,
    url: &str,
    clock: &ManualClock,
    tweak: impl FnOnce(&mut AbuseIpDbSettings),
) -> App {
    let mut settings = Settings::for_data_dir(dir);
    settings.abuseipdb.api_key = Some(Secret::new(common::fake_abuseipdb::KEY));
    settings.abuseipdb.base_url = url.to_string();
    settings.abuseipdb.timeout = Duration::from_secs(1);
    settings.geo.providers = vec![];
    tweak(&mut settings.abuseipdb);
    let clock: SharedClock = Arc::new(clock.clone());
    App::build(settings, clock).unwrap()
}

fn service(app: &App) -> Arc<Service> {
    app.abuseipdb.clone().expect("the service is built")
}

fn report(app: &App, ip: &str, confidence: i64, when: Timestamp) {
    let LocalSource::Embedded(db) = &*app.pipeline.source else {
        panic!("tests use the embedded source");
    };
    db.report(ip, Some(confidence), &[18], None, when).unwrap();
}

fn facts(app: &App, ip: &str) -> Option<IocFacts> {
    let addr: IpAddr = ip.parse().unwrap();
    let record = app.store.record(IocKey::of(addr)).unwrap()?;
    record.active(Collection::All)?;
    Some(record.facts)
}

fn hour() -> SignedDuration {
    SignedDuration::from_hours(1)
}

/// A URL on which nothing listens: the call is counted, then fails to connect.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/api/v2")
}

#[tokio::test]
async fn blacklist_calls_are_paced_and_never_exceed_the_budget_across_restarts() {
    let fake = FakeAbuseIpDb::start().await;
    fake.set_entries(&[("5.188.10.179", 100)], "2026-03-01T00:00:00+00:00");
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T00:00:30Z"));
    let limit = |s: &mut AbuseIpDbSettings| {
        s.blacklist_daily_limit = 3;
        s.blacklist_cache_ttl = Duration::from_secs(60);
    };
    let mut app = build(dir.path(), &fake.base_url, &clock, limit);
    let mut seen = Vec::new();
    for hour_of_day in 0..24 {
        if hour_of_day % 5 == 4 {
            drop(app);
            app = build(dir.path(), &fake.base_url, &clock, limit);
        }
        let summary = app.pipeline.run("test").await.unwrap();
        assert!(
            summary.notes.contains_key("abuseipdb_budget"),
            "{summary:?}"
        );
        seen.push(fake.blacklist_calls());
        clock.advance(hour());
    }
    // 24 h / 3 = one call every 8 h: at 00:00, 08:00 and 16:00.
    assert_eq!(seen[0], 1);
    assert_eq!(seen[7], 1);
    assert_eq!(seen[8], 2);
    assert_eq!(seen[16], 3);
    assert_eq!(fake.blacklist_calls(), 3);
    let health = app.health.get("abuseipdb").unwrap();
    assert_eq!(health.status, Status::Ok, "{health:?}");
    assert_eq!(health.figures["blacklist_used"], 3);
    assert_eq!(health.figures["blacklist_limit"], 3);
    assert_eq!(health.figures["next_reset"], "2026-03-02T00:00:00Z");
}

#[tokio::test]
async fn a_counted_call_that_never_reached_the_server_stays_counted_after_a_restart() {
    let fake = FakeAbuseIpDb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T00:00:30Z"));
    let limit = |s: &mut AbuseIpDbSettings| s.blacklist_daily_limit = 2;
    let app = build(dir.path(), &dead_url().await, &clock, limit);
    app.pipeline.run("test").await.unwrap();
    drop(app);

    let app = build(dir.path(), &fake.base_url, &clock, limit);
    let (blacklist, _) = service(&app).budgets().await.unwrap();
    assert_eq!(blacklist.used, 1, "the count was committed before the send");
    for _ in 0..23 {
        clock.advance(hour());
        app.pipeline.run("test").await.unwrap();
    }
    assert_eq!(
        fake.blacklist_calls(),
        1,
        "only one call of the two was left"
    );
}

#[tokio::test]
async fn the_check_budget_resets_at_utc_midnight() {
    let fake = FakeAbuseIpDb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T23:59:00Z"));
    let app = build(dir.path(), &fake.base_url, &clock, |s| {
        s.check_daily_limit = 2;
        s.check_reserve = 0;
    });
    let service = service(&app);
    for ip in ["45.33.32.1", "45.33.32.2"] {
        let outcome = service.check_now(ip.parse().unwrap(), false).await.unwrap();
        assert!(
            matches!(outcome, CheckOutcome::Fetched { .. }),
            "{outcome:?}"
        );
    }
    let outcome = service
        .check_now("45.33.32.3".parse().unwrap(), false)
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            CheckOutcome::Refused {
                refusal: Refusal::DailyLimit {
                    used: 2,
                    limit: 2,
                    ..
                },
                ..
            }
        ),
        "{outcome:?}"
    );
    let cached = service
        .check_now("45.33.32.1".parse().unwrap(), false)
        .await
        .unwrap();
    assert!(matches!(cached, CheckOutcome::Cached { .. }), "{cached:?}");

    clock.set(at("2026-03-02T00:00:00Z"));
    let outcome = service
        .check_now("45.33.32.3".parse().unwrap(), false)
        .await
        .unwrap();
    assert!(
        matches!(outcome, CheckOutcome::Fetched { .. }),
        "{outcome:?}"
    );
    assert_eq!(fake.check_calls(), 3);
}

#[tokio::test]
async fn a_rejected_key_stops_every_call_until_the_key_changes() {
    let fake = FakeAbuseIpDb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T00:00:30Z"));
    let wrong = |s: &mut AbuseIpDbSettings| s.api_key = Some(Secret::new("wrong"));
    let app = build(dir.path(), &fake.base_url, &clock, wrong);
    app.pipeline.run("test").await.unwrap();
    let health = app.health.get("abuseipdb").unwrap();
    assert_eq!(
        (health.status, health.detail.as_str()),
        (Status::Degraded, "API key rejected")
    );

    clock.advance(hour() * 10);
    app.pipeline.run("test").await.unwrap();
    let outcome = service(&app)
        .check_now("45.33.32.1".parse().unwrap(), true)
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        CheckOutcome::Refused {
            refusal: Refusal::KeyRejected,
            ..
        }
    ));
    assert_eq!((fake.blacklist_calls(), fake.check_calls()), (1, 0));
    drop(app);

    let app = build(dir.path(), &fake.base_url, &clock, |_| {});
    app.pipeline.run("test").await.unwrap();
    assert_eq!(fake.blacklist_calls(), 2, "a new key is tried");
    assert_eq!(app.health.get("abuseipdb").unwrap().status, Status::Ok);
}

#[tokio::test]
async fn a_rate_limit_blocks_calls_until_retry_after() {
    let fake = FakeAbuseIpDb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T01:00:00Z"));
    let app = build(dir.path(), &fake.base_url, &clock, |_| {});
    let service = service(&app);
    let addr: IpAddr = "45.33.32.1".parse().unwrap();
    fake.set_fault(Fault::RateLimited);
    let err = service.check_now(addr, false).await.unwrap_err();
    assert!(matches!(err, AbuseIpDbError::RateLimited { .. }), "{err:?}");

    fake.set_fault(Fault::None);
    clock.advance(hour() * 8);
    let outcome = service.check_now(addr, false).await.unwrap();
    assert!(
        matches!(
            outcome,
            CheckOutcome::Refused {
                refusal: Refusal::Upstream { .. },
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(fake.check_calls(), 1);

    clock.advance(hour());
    let outcome = service.check_now(addr, false).await.unwrap();
    assert!(
        matches!(outcome, CheckOutcome::Fetched { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn server_errors_back_off_and_a_failed_fetch_keeps_the_blacklist_published() {
    let fake = FakeAbuseIpDb::start().await;
    fake.set_entries(
        &[("5.188.10.179", 100), ("185.222.209.14", 75)],
        "2026-03-01T00:00:00+00:00",
    );
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T00:00:30Z"));
    let app = build(dir.path(), &fake.base_url, &clock, |_| {});
    app.pipeline.run("test").await.unwrap();
    let listed = facts(&app, "185.222.209.14").expect("blacklist-only IOC published");
    assert_eq!(
        (listed.sources(), listed.confidence),
        (Sources::Abuseipdb, 15)
    );
    assert_eq!(facts(&app, "5.188.10.179").unwrap().confidence, 20);

    fake.set_entries(&[("5.188.10.179", 100)], "2026-03-01T05:00:00+00:00");
    for fault in [
        Fault::ServerError,
        Fault::Slow(Duration::from_secs(2)),
        Fault::Malformed,
    ] {
        fake.set_fault(fault);
        clock.advance(hour() * 5);
        let summary = app.pipeline.run("test").await.unwrap();
        let note = &summary.notes["abuseipdb_blacklist"];
        assert!(
            note.starts_with("kept 2 entries (fetch failed"),
            "{fault:?}: {note}"
        );
        assert!(facts(&app, "185.222.209.14").is_some(), "{fault:?}");
        let health = app.health.get("abuseipdb").unwrap();
        assert_eq!(health.status, Status::Degraded, "{fault:?}");
        // Right after a failure the back-off refuses the next attempt without a call.
        let calls = fake.blacklist_calls();
        let (budget, _) = service(&app).budgets().await.unwrap();
        assert!(budget.backoff_until.unwrap() > clock.now());
        assert_eq!(fake.blacklist_calls(), calls);
    }
    assert_eq!(fake.blacklist_calls(), 4);
}

#[tokio::test]
async fn a_local_ioc_on_the_blacklist_is_published_once_as_dual_source() {
    let fake = FakeAbuseIpDb::start().await;
    fake.set_entries(
        &[
            ("5.188.10.179", 75),
            ("185.222.209.14", 90),
            ("191.96.249.183", 75),
        ],
        "2026-03-01T00:00:00+00:00",
    );
    fake.set_score("5.188.10.179", 75);
    fake.set_score("185.222.209.14", 90);
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T06:00:00Z"));
    let app = build(dir.path(), &fake.base_url, &clock, |_| {});
    report(&app, "5.188.10.179", 85, at("2026-03-01T05:00:00Z"));
    report(&app, "185.222.209.14", 60, at("2026-03-01T05:00:00Z"));

    app.pipeline.run("test").await.unwrap();
    let check = |ip: &str, score: u8| {
        let f = facts(&app, ip).unwrap();
        assert_eq!((f.sources(), f.confidence), (Sources::Both, score), "{ip}");
        assert!(f.external.as_ref().unwrap().on_blacklist);
    };
    check("5.188.10.179", 85);
    check("185.222.209.14", 66);
    let only = facts(&app, "191.96.249.183").unwrap();
    assert_eq!((only.sources(), only.confidence), (Sources::Abuseipdb, 15));
    assert_eq!(app.store.record_count().unwrap(), 3);

    // The background checks answer with the same scores; the next cycle adds their facts.
    service(&app).background_settled().await;
    clock.advance(SignedDuration::from_mins(5));
    app.pipeline.run("test").await.unwrap();
    check("5.188.10.179", 85);
    check("185.222.209.14", 66);
    let external = facts(&app, "185.222.209.14").unwrap().external.unwrap();
    assert_eq!(external.isp.as_deref(), Some("Example Cloud"));
    assert_eq!(external.total_reports, Some(12));
}

#[tokio::test]
async fn background_checks_leave_the_reserve_for_on_demand_use() {
    let fake = FakeAbuseIpDb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-01T06:00:00Z"));
    let app = build(dir.path(), &fake.base_url, &clock, |s| {
        s.check_daily_limit = 5;
        s.check_reserve = 2;
    });
    for n in 1..=6 {
        report(
            &app,
            &format!("45.33.32.{n}"),
            90,
            at("2026-03-01T05:00:00Z"),
        );
    }
    report(&app, "10.0.0.1", 90, at("2026-03-01T05:00:00Z"));
    app.pipeline.run("test").await.unwrap();
    let service = service(&app);
    service.background_settled().await;
    assert_eq!(fake.check_calls(), 3);

    clock.advance(hour());
    app.pipeline.run("test").await.unwrap();
    service.background_settled().await;
    assert_eq!(fake.check_calls(), 3, "the background share is used up");

    for n in 7..=8 {
        let addr = format!("45.33.32.{n}").parse().unwrap();
        let outcome = service.check_now(addr, false).await.unwrap();
        assert!(
            matches!(outcome, CheckOutcome::Fetched { .. }),
            "{outcome:?}"
        );
    }
    let outcome = service
        .check_now("45.33.32.9".parse().unwrap(), false)
        .await
        .unwrap();
    assert!(
        matches!(outcome, CheckOutcome::Refused { .. }),
        "{outcome:?}"
    );
    let outcome = service
        .check_now("10.0.0.1".parse().unwrap(), true)
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        CheckOutcome::Refused {
            refusal: Refusal::NotPublic,
            ..
        }
    ));
    assert_eq!(fake.check_calls(), 5);
    assert_eq!(
        app.health.get("abuseipdb").unwrap().figures["check_used"],
        5
    );
}

#[tokio::test]
async fn without_a_key_the_appliance_runs_local_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_data_dir(dir.path());
    settings.geo.providers = vec![];
    let clock: SharedClock = Arc::new(ManualClock::new(at("2026-03-01T06:00:00Z")));
    let app = App::build(settings, clock).unwrap();
    let health = app.health.get("abuseipdb").unwrap();
    assert_eq!(health.status, Status::Disabled);
    assert_eq!(health.detail, "local-only mode (no ABUSEIPDB_API_KEY)");
    assert!(app.abuseipdb.is_none());
}
