//! The `healthcheck` command against a served app and against nothing, and `stats` and
//! `preprocess` falling back to the data directory when no server answers.

mod common;

use std::process::Command;

use common::app::TestApp;

fn cli(dir: &std::path::Path, port: u16, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_abuseipdb-ioc"))
        .args(args)
        .env_clear()
        .env("DATA_DIR", dir)
        .env("API_HOST", "0.0.0.0")
        .env("API_PORT", port.to_string())
        .env("GEO_PROVIDERS", "none")
        .output()
        .unwrap()
}

fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exit_codes() {
    let t = TestApp::new();
    let base = t.serve().await;
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let served = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || cli(&dir, port, &["healthcheck", "--timeout", "3"])
    })
    .await
    .unwrap();
    assert_eq!(served.status.code(), Some(0), "{served:?}");

    let nothing = cli(dir.path(), free_port(), &["healthcheck", "--timeout", "1"]);
    assert_eq!(nothing.status.code(), Some(1), "{nothing:?}");
}

#[test]
fn stats_and_preprocess_work_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pre = cli(dir.path(), port, &["preprocess"]);
    let out = String::from_utf8_lossy(&pre.stdout);
    assert_eq!(pre.status.code(), Some(0), "{pre:?}");
    assert!(
        out.contains("running the cycle on the data directory"),
        "{out}"
    );

    let stats = cli(dir.path(), port, &["stats"]);
    assert_eq!(stats.status.code(), Some(0), "{stats:?}");
    let body: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(body["source"]["indicators"], 0);
    assert!(body["api"].is_null());
    assert_eq!(body["refresh"]["cycles"][0]["trigger"], "cli");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preprocess_asks_the_running_server() {
    let t = TestApp::with(|s| s.http.api_keys = vec![abuseipdb_ioc::config::Secret::new("k9")]);
    let base = t.serve().await;
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            Command::new(env!("CARGO_BIN_EXE_abuseipdb-ioc"))
                .arg("preprocess")
                .env_clear()
                .env("DATA_DIR", &dir)
                .env("API_PORT", port.to_string())
                .env("API_KEYS", "k9")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text.contains("asked the running server to refresh"),
        "{text}"
    );
}
