//! Logging: the rotating log file keeps whole lines, rotates at the configured size and keeps
//! the configured number of backups; a failed authentication is audited without the key.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use abuseipdb_ioc::config::Secret;
use abuseipdb_ioc::publish::logging::RotatingFile;
use common::app::{TestApp, http_client};

#[test]
fn log_file_rotates_at_size_and_keeps_backups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ioc.log");
    let mut file = RotatingFile::open(&path, 1000, 3);
    let line = format!("{}\n", "x".repeat(99)); // 100 bytes
    for _ in 0..100 {
        file.write_all(line.as_bytes()).unwrap();
    }
    file.flush().unwrap();

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ioc.log", "ioc.log.1", "ioc.log.2", "ioc.log.3"]);
    for name in &names {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(text.len() <= 1000, "{name} is {} bytes", text.len());
        assert!(
            text.lines().all(|l| l.len() == 99),
            "{name} holds a cut line"
        );
    }
    let full = std::fs::read_to_string(dir.path().join("ioc.log.1")).unwrap();
    assert_eq!(full.len(), 1000);
}

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn failed_authentication_is_audited_without_the_key() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let t = TestApp::with(|s| s.http.api_keys = vec![Secret::new("the-real-key")]);
    let base = t.serve().await;
    let presented = "s3cr3t-presented-key-123";
    for path in ["/api/v1/stats", "/api/v1/refresh"] {
        let response = http_client()
            .post(format!("{base}{path}"))
            .bearer_auth(presented)
            .send()
            .await
            .unwrap();
        assert!(response.status() == 401 || response.status() == 405);
    }
    let response = http_client()
        .get(format!("{base}/api/v1/stats"))
        .header("x-api-key", presented)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("authentication failed"), "{logs}");
    assert!(logs.contains("\"target\":\"audit\""), "{logs}");
    assert!(
        !logs.contains(presented),
        "the presented key leaked: {logs}"
    );
    assert!(!logs.contains("the-real-key"), "the configured key leaked");
}
