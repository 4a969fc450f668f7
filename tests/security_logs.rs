//! Secrets never reach the logs: every event at every level (TRACE, dependencies included)
//! is captured in a buffer while the appliance starts with secrets in its configuration,
//! answers requests with wrong and right keys, fails to reach PostgreSQL and is refused by
//! AbuseIPDB; then the buffer is searched for each secret.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use abuseipdb_ioc::app::App;
use abuseipdb_ioc::clock::SystemClock;
use abuseipdb_ioc::config::{ConfigSources, Settings};
use common::app::http_client;
use common::fault_http::{Behaviour, FaultServer};

const SECRETS: [&str; 5] = [
    "log-key-AAAA1111",
    "user-pw-BBBB2222",
    "signing-secret-CCCC3333",
    "abuse-key-DDDD4444",
    "db-pw-EEEE5555",
];

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_passwords_never_appear_in_logs() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let abuse = FaultServer::start(Behaviour::json(
        401,
        r#"{"errors":[{"detail":"Authentication failed.","status":401}]}"#,
    ))
    .await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("DATA_DIR", dir.path().display().to_string()),
        ("API_KEYS", format!("other-key-0000,{}", SECRETS[0])),
        ("TAXII_USERS", format!("elastic:{}", SECRETS[1])),
        ("SECRET_KEY", SECRETS[2].to_string()),
        ("ABUSEIPDB_API_KEY", SECRETS[3].to_string()),
        ("ABUSEIPDB_BASE_URL", format!("{}/api/v2", abuse.base)),
        (
            "DATABASE_URL",
            format!("postgres://reader:{}@127.0.0.1:{dead_port}/soc", SECRETS[4]),
        ),
        ("GEO_PROVIDERS", "none".to_string()),
        ("AUTO_START_PROCESSING", "false".to_string()),
    ];
    let settings = Settings::load(&ConfigSources::from_map(vars)).unwrap();
    // What `serve` logs at start, and the whole settings for good measure.
    tracing::info!(config = ?settings.effective, "effective configuration (secrets redacted)");
    tracing::debug!(settings = ?settings, "settings");
    let app = Arc::new(App::build(settings, Arc::new(SystemClock)).unwrap());
    let err = app
        .pipeline
        .run("test")
        .await
        .expect_err("PostgreSQL is down");
    tracing::warn!(error = %err, "cycle");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(abuseipdb_ioc::publish::http::serve(
        listener,
        app.clone(),
        rx,
    ));
    let client = http_client();
    let url = format!("{base}/taxii2/iocs/collections/");
    let presented = [
        ("authorization", format!("Bearer {}x", SECRETS[0])),
        ("authorization", format!("Bearer {}", SECRETS[0])),
        ("x-api-key", SECRETS[1].to_string()),
        ("authorization", format!("Token {}", SECRETS[2])),
    ];
    for (name, value) in presented {
        let _ = client.get(&url).header(name, value).send().await.unwrap();
    }
    let _ = client
        .get(format!("{url}?api_key={}", SECRETS[3]))
        .send()
        .await;
    if let Some(service) = &app.abuseipdb {
        let _ = service.check_now("8.8.8.8".parse().unwrap(), true).await;
    }

    let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap()).to_string();
    assert!(
        logs.contains("authentication failed"),
        "audit lines are logged"
    );
    assert!(logs.contains("cannot connect to PostgreSQL"), "{logs}");
    println!("{} bytes of logs captured", logs.len());
    for secret in SECRETS {
        // The key presented in a URL is the client's doing; everything else is ours.
        if secret == SECRETS[3] {
            for line in logs.lines().filter(|l| l.contains(secret)) {
                assert!(line.contains("api_key="), "{line}");
            }
            continue;
        }
        let hit = logs.lines().find(|l| l.contains(secret));
        assert!(hit.is_none(), "{secret} in the logs: {hit:?}");
    }
}
