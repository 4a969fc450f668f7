//! The dirty-row corpus through the embedded source, and a data directory that stops
//! accepting writes (read-only state file, full disk): the cycle fails with a clear error
//! and the appliance keeps serving the snapshot it has.

mod common;

use std::path::Path;
use std::process::Command;

use abuseipdb_ioc::ioc::Collection;
use common::app::{TestApp, http_client};
use common::dirty_rows;
use serde_json::Value;
use tokio::task::JoinHandle;

const OBJECTS: &str = "/taxii2/iocs/collections/ioc-indicators/objects/";

fn embedded_time(at: &Option<String>) -> Option<String> {
    match at.as_deref() {
        Some("infinity") => Some("2999-01-01T00:00:00Z".into()),
        Some("-infinity") => Some("0001-01-01T00:00:00Z".into()),
        other => other.map(str::to_string),
    }
}

#[tokio::test]
async fn dirty_rows_in_the_embedded_source_are_each_handled_and_counted() {
    let app = TestApp::new();
    let mut corpus = dirty_rows::corpus();
    corpus.extend(dirty_rows::embedded_only());
    // The embedded table is created on first open; write the rows around the CLI's checks.
    drop(app.embedded());
    let conn = rusqlite::Connection::open(app.app.settings.sqlite_path()).unwrap();
    for (i, row) in corpus.iter().enumerate() {
        // The primary key is the text itself; NULL keys are allowed by SQLite.
        conn.execute(
            "INSERT INTO reported_ips (ip_address, reported_at, report_id, categories, confidence)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                row.ip,
                embedded_time(&row.reported_at),
                row.report_id,
                row.categories,
                row.confidence
            ],
        )
        .unwrap_or_else(|e| panic!("row {i} {row:?}: {e}"));
    }
    drop(conn);
    let summary = app.cycle().await;
    dirty_rows::check_corpus(&app, &corpus, &summary);
    // A second pass over the same rows changes nothing.
    let again = app.cycle().await;
    assert_eq!(
        again.published.new + again.published.changed,
        0,
        "{again:?}"
    );
}

async fn get(base: &str, path: &str) -> (u16, String) {
    let response = http_client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Serves `app` until the returned sender says stop.
async fn serve(app: &TestApp) -> (String, tokio::sync::watch::Sender<bool>, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let state = app.app.clone();
    let task = tokio::spawn(async move {
        abuseipdb_ioc::publish::http::serve(listener, state, rx)
            .await
            .unwrap();
    });
    (base, stop, task)
}

/// Publishes, breaks writing with `break_it`, and checks what users see; `mend` undoes it.
///
/// redb refuses every write after an I/O error until the file is reopened
/// (`PreviousIo`), so after the mend the process keeps serving but only a restart
/// publishes again; this test pins that behaviour down.
async fn keeps_serving_when_writes_fail(
    app: TestApp,
    break_it: impl FnOnce(),
    mend: impl FnOnce(),
) {
    for i in 0..50 {
        app.report(&format!("45.7.0.{}", i + 1), 90);
    }
    app.cycle().await;
    let (base, stop, server) = serve(&app).await;
    let (_, before) = get(&base, &format!("{OBJECTS}?limit=20")).await;
    let objects_before = app.objects(Collection::All);

    for i in 0..50 {
        app.report(&format!("45.8.0.{}", i + 1), 95);
    }
    break_it();
    let err = app
        .app
        .pipeline
        .run("test")
        .await
        .expect_err("cannot write");
    let text = err.to_string();
    println!("write failure: {text}");
    let clear = [
        "Operation not permitted",
        "No space left",
        "disk I/O error",
        "full",
    ];
    assert!(clear.iter().any(|c| text.contains(c)), "{text}");
    assert_served(&base, &before).await;

    mend();
    match app.app.pipeline.run("test").await {
        Ok(summary) => assert_eq!(summary.indicators, 100),
        Err(err) => {
            let text = err.to_string();
            println!("after the mend, without restart: {text}");
            assert!(text.contains("re-open"), "{text}");
            assert_served(&base, &before).await;
        }
    }
    assert!(app.objects(Collection::All).len() >= objects_before.len());
    stop.send(true).unwrap();
    server.await.unwrap();

    let app = app.restart();
    let summary = app
        .app
        .pipeline
        .run("test")
        .await
        .expect("writable after a restart");
    assert_eq!(summary.indicators, 100);
}

async fn assert_served(base: &str, before: &str) {
    let (status, after) = get(base, &format!("{OBJECTS}?limit=20")).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, before, "served objects changed");
    let (status, health) = get(base, "/health").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["reasons"].to_string().contains("last cycle failed"),
        "{health}"
    );
    assert_eq!(health["snapshot"]["indicators"], 50);
}

fn run(program: &str, args: &[&str], path: &Path) -> bool {
    Command::new(program)
        .args(args)
        .arg(path)
        .output()
        .is_ok_and(|out| out.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_that_cannot_be_written_fails_the_cycle_and_keeps_serving() {
    let app = TestApp::new();
    let redb = app.app.settings.redb_path();
    if is_root() {
        // Root ignores permissions; an immutable file refuses even root.
        if !run("chattr", &["+i"], &redb) {
            println!("note: chattr +i is not available here; test skipped");
            return;
        }
        run("chattr", &["-i"], &redb);
        let break_it = || assert!(run("chattr", &["+i"], &redb));
        let mend = || assert!(run("chattr", &["-i"], &redb));
        keeps_serving_when_writes_fail(app, break_it, mend).await;
    } else {
        use std::os::unix::fs::PermissionsExt;
        let set = |mode| std::fs::set_permissions(&redb, std::fs::Permissions::from_mode(mode));
        let break_it = || set(0o400).unwrap();
        let mend = || set(0o600).unwrap();
        keeps_serving_when_writes_fail(app, break_it, mend).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_cycle_and_keeps_serving() {
    let mount = tempfile::tempdir().unwrap();
    if !is_root()
        || !run(
            "mount",
            &["-t", "tmpfs", "-o", "size=24m", "tmpfs"],
            mount.path(),
        )
    {
        println!("note: cannot mount a small tmpfs here (needs root); test skipped");
        return;
    }
    let data = mount.path().join("data");
    let app = TestApp::with(|s| {
        *s = common::app::test_settings(&data);
    });
    let filler = mount.path().join("filler");
    let fill = || {
        // Writes until the file system is full.
        let _ = std::fs::write(&filler, vec![0u8; 64 * 1024 * 1024]);
    };
    let free = || std::fs::remove_file(&filler).unwrap();
    keeps_serving_when_writes_fail(app, fill, free).await;
    assert!(run("umount", &["-l"], mount.path()));
}
