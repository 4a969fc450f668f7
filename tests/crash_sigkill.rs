//! SIGKILL during a refresh cycle: after a restart the state file opens and the served
//! snapshot is the last complete one, never a mix.

mod common;

use std::ops::ControlFlow;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use abuseipdb_ioc::ioc::Collection;
use abuseipdb_ioc::source::sqlite::EmbeddedSource;
use abuseipdb_ioc::store::Store;

const ROWS: u32 = 8_000;

fn preprocess(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_abuseipdb-ioc"));
    command
        .arg("preprocess")
        .env_clear()
        .env("DATA_DIR", dir)
        .env("GEO_PROVIDERS", "none")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// (generation, indicator count, every object's id and version).
fn snapshot(dir: &std::path::Path) -> (u64, u64, Vec<(String, String)>) {
    let store = Store::open(&dir.join("state.redb")).unwrap();
    let mut objects = Vec::new();
    store
        .scan(Collection::All, None, |_, v| {
            objects.push((v.id.to_string(), v.version.to_string()));
            ControlFlow::Continue(())
        })
        .unwrap();
    let meta = store.snapshot();
    (meta.generation, meta.counts.indicators, objects)
}

fn fill(dir: &std::path::Path, confidence: u32) {
    let source = EmbeddedSource::open(&dir.join("reported_ips.sqlite3")).unwrap();
    let mut csv = String::from("ip_address,confidence,categories\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "10.{}.{}.{},{confidence},18\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    let tally = source
        .import_csv(csv.as_bytes(), jiff::Timestamp::now())
        .unwrap();
    assert_eq!(tally.imported, u64::from(ROWS));
}

#[test]
fn sigkill_during_a_cycle_leaves_the_previous_snapshot_intact() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 90);
    assert!(preprocess(dir.path()).status().unwrap().success());
    let first = snapshot(dir.path());
    assert_eq!((first.0, first.1), (1, u64::from(ROWS)));

    let mut confidence = 90;
    let mut completed = first.clone();
    // Twenty kills spread over the cycle: before the source is read, while rows stream,
    // while the snapshot is written, around the commit, and after it.
    let delays = (0..20u64).map(|i| 10 + i * i * 9);
    for delay_ms in delays {
        confidence = if confidence == 90 { 91 } else { 90 };
        fill(dir.path(), confidence);
        let mut child = preprocess(dir.path()).spawn().unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(delay_ms) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::yield_now();
        }
        let _ = child.kill();
        let status = child.wait().unwrap();

        let after = snapshot(dir.path());
        assert_eq!(
            after.1,
            u64::from(ROWS),
            "a complete snapshot after kill at {delay_ms} ms"
        );
        if after.0 == completed.0 {
            assert_eq!(
                after.2, completed.2,
                "unchanged when the cycle did not commit"
            );
        } else {
            assert_eq!(
                after.0,
                completed.0 + 1,
                "exactly one new snapshot ({status:?})"
            );
            assert_ne!(after.2, completed.2);
        }
        completed = after;
    }
}
