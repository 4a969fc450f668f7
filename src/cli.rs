//! The command line: `serve` (default), `preprocess`, `check-config`, `report`, `import`,
//! `stats`, `healthcheck`, `export`. Each command returns the process exit code; `main` only
//! parses and dispatches. `preprocess`, `stats` and `export` talk to a running server through
//! its API when it holds the data file, and open the data directory themselves otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::app::App;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::publish::rest::export::{self, ExportRequest, Format};
use crate::publish::rest::firewall::Feed;
use crate::publish::rest::params;
use crate::source::LocalSource;
use crate::store::{CycleSummary, Store};

#[derive(Debug, Parser)]
#[command(
    name = "abuseipdb-ioc",
    version,
    about = "Publishes your attack records as STIX 2.1 indicators over TAXII 2.1"
)]
pub struct Cli {
    /// TOML configuration file (default: /etc/abuseipdb-ioc/config.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server and the refresh worker (the default).
    Serve,
    /// Run one refresh cycle and print its figures.
    Preprocess,
    /// Validate the configuration and probe the source read-only.
    CheckConfig,
    /// Add or update an address in the embedded source.
    Report {
        /// The attacking address (IPv4 or IPv6).
        ip: String,
        /// Confidence 0–100.
        #[arg(long)]
        confidence: Option<i64>,
        /// AbuseIPDB category ids, comma-separated (e.g. 18,22).
        #[arg(long, value_delimiter = ',')]
        categories: Vec<u8>,
        /// Identifier of your own report.
        #[arg(long)]
        report_id: Option<String>,
    },
    /// Import a CSV file (header: ip_address[,reported_at,confidence,categories,report_id])
    /// into the embedded source.
    Import { file: PathBuf },
    /// Print the stats JSON, from the running server or from the data directory.
    Stats,
    /// Exit 0 when the server answers GET /health with 200, 1 otherwise.
    Healthcheck {
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Write an export or firewall feed of the published snapshot to stdout (reads the data
    /// directory, or asks the running server when it holds the data file).
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// json, csv, plain, stix, nftables, ipset, iptables, mikrotik or paloalto.
    #[arg(long)]
    pub format: String,
    /// v4, v6 or both.
    #[arg(long)]
    pub family: Option<String>,
    /// Keep indicators with at least this confidence (0–100).
    #[arg(long)]
    pub min_confidence: Option<String>,
    /// all or high (or a TAXII collection alias).
    #[arg(long)]
    pub collection: Option<String>,
    /// Merge addresses into the fewest CIDR blocks (firewall formats).
    #[arg(long)]
    pub aggregate: bool,
    /// Keep at most this many entries, highest scores first (firewall formats).
    #[arg(long)]
    pub max_entries: Option<String>,
}

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// Runs a command with loaded settings.
pub async fn run(command: Command, settings: Settings) -> i32 {
    match command {
        Command::Serve => serve(settings).await,
        Command::Preprocess => preprocess(settings).await,
        Command::CheckConfig => check_config(settings).await,
        Command::Report {
            ip,
            confidence,
            categories,
            report_id,
        } => report(settings, &ip, confidence, &categories, report_id.as_deref()),
        Command::Import { file } => import(settings, &file),
        Command::Export(args) => export(settings, &args).await,
        Command::Stats => stats(settings).await,
        Command::Healthcheck { timeout } => {
            healthcheck(&settings, Duration::from_secs(timeout)).await
        }
    }
}

async fn serve(settings: Settings) -> i32 {
    for warning in &settings.warnings {
        tracing::warn!(%warning, "configuration");
    }
    tracing::info!(config = ?settings.effective, "effective configuration (secrets redacted)");
    let app = match App::build(settings, clock()) {
        Ok(app) => Arc::new(app),
        Err(err) => {
            eprintln!("cannot start: {err}");
            return 1;
        }
    };
    if app.settings.http.api_keys.is_empty() && app.settings.http.taxii_users.is_empty() {
        tracing::warn!(
            "no API_KEYS or TAXII_USERS configured: data endpoints are open to anyone who can reach the port"
        );
    }
    let addr = app.listen_addr();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {addr}: {err}");
            return 1;
        }
    };
    tracing::info!(%addr, source = %app.pipeline.source.describe(), data_dir = %app.settings.data_dir.display(), "serving");
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(crate::pipeline::worker::run(
        app.pipeline.clone(),
        stop_rx.clone(),
    ));
    let server = tokio::spawn(crate::publish::http::serve(listener, app.clone(), stop_rx));
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = worker.await;
    match server.await {
        Ok(Ok(())) => 0,
        Ok(Err(err)) => {
            eprintln!("server error: {err}");
            1
        }
        Err(err) => {
            eprintln!("server task failed: {err}");
            1
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn preprocess(settings: Settings) -> i32 {
    match ask_refresh(&settings).await {
        Some(code) => code,
        None => preprocess_here(settings).await,
    }
}

/// Asks a running server to refresh; `None` when no server answers.
async fn ask_refresh(settings: &Settings) -> Option<i32> {
    let url = format!("{}/api/v1/refresh", local_base(settings));
    let request = authorised(http_client(Duration::from_secs(10)).post(&url), settings);
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) if err.is_connect() => return None,
        Err(err) => {
            eprintln!("the server at {url} did not answer properly: {err}");
            return Some(1);
        }
    };
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    Some(match status.as_u16() {
        202 => {
            println!(
                "asked the running server to refresh (cycle started at {})",
                body["started_at"].as_str().unwrap_or("?")
            );
            0
        }
        409 => {
            println!(
                "the running server is already refreshing: {}",
                error_message(&body)
            );
            0
        }
        401 | 403 if settings.http.api_keys.is_empty() => request_by_file(settings),
        _ => {
            eprintln!(
                "the running server refused the refresh ({status}): {}",
                error_message(&body)
            );
            1
        }
    })
}

/// Without an API key the HTTP refresh is refused; the worker also takes requests through a
/// file in the data directory.
fn request_by_file(settings: &Settings) -> i32 {
    match crate::pipeline::worker::request_refresh(&settings.data_dir) {
        Ok(()) => {
            println!(
                "asked the running server to refresh through {} (no API key is configured for POST /api/v1/refresh)",
                settings
                    .data_dir
                    .join(crate::pipeline::worker::REFRESH_REQUEST)
                    .display()
            );
            0
        }
        Err(err) => {
            eprintln!(
                "the running server needs an API key to refresh, and the request file could not be written: {err}"
            );
            1
        }
    }
}

async fn preprocess_here(settings: Settings) -> i32 {
    println!("no server answers; running the cycle on the data directory");
    let app = match App::build(settings, clock()) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("cannot open the data directory: {err}");
            return 1;
        }
    };
    match app.pipeline.run("cli").await {
        Ok(summary) => {
            print_summary(&summary, &app);
            0
        }
        Err(err) => {
            eprintln!("refresh cycle failed: {err}");
            1
        }
    }
}

// --- talking to a running server ---

/// The server's own address: a wildcard listen address is reached through loopback.
fn local_base(settings: &Settings) -> String {
    let host = match settings.http.host {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        host => host,
    };
    format!("http://{}", SocketAddr::new(host, settings.http.port))
}

fn http_client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .unwrap_or_default()
}

/// Adds the first configured API key, if any.
fn authorised(request: reqwest::RequestBuilder, settings: &Settings) -> reqwest::RequestBuilder {
    match settings.http.api_keys.first() {
        Some(key) => request.bearer_auth(key.expose()),
        None => request,
    }
}

fn error_message(body: &serde_json::Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or("no error message")
        .to_string()
}

async fn healthcheck(settings: &Settings, timeout: Duration) -> i32 {
    let url = format!("{}/health", local_base(settings));
    match http_client(timeout).get(&url).send().await {
        Ok(response) if response.status().is_success() => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            println!("{url}: {}", body["status"].as_str().unwrap_or("ok"));
            0
        }
        Ok(response) => {
            println!("{url}: HTTP {}", response.status());
            1
        }
        Err(err) => {
            println!("{url}: no answer: {err}");
            1
        }
    }
}

async fn stats(settings: Settings) -> i32 {
    let url = format!("{}/api/v1/stats", local_base(&settings));
    let request = authorised(http_client(Duration::from_secs(10)).get(&url), &settings);
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if !status.is_success() {
                eprintln!(
                    "the running server refused ({status}): {}",
                    error_message(&body)
                );
                return 1;
            }
            print_json(&body)
        }
        Err(err) if err.is_connect() => stats_here(settings).await,
        Err(err) => {
            eprintln!("the server at {url} did not answer properly: {err}");
            1
        }
    }
}

/// Stats from the data directory, for when no server runs (no API traffic figures).
async fn stats_here(settings: Settings) -> i32 {
    let app = match App::build(settings, clock()) {
        Ok(app) => Arc::new(app),
        Err(err) => {
            eprintln!("no server answers and the data directory cannot be opened: {err}");
            return 1;
        }
    };
    match crate::publish::ops::stats::collect(&app, None).await {
        Ok(stats) => print_json(&stats),
        Err(err) => {
            eprintln!("cannot read the stats: {err}");
            1
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> i32 {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(err) => {
            eprintln!("cannot print the stats: {err}");
            1
        }
    }
}

fn print_summary(s: &CycleSummary, app: &App) {
    let meta = app.store.snapshot();
    let counts = &meta.counts;
    let share = if counts.public == 0 {
        0.0
    } else {
        100.0 * counts.geolocated as f64 / counts.public as f64
    };
    let skipped: u64 = s.skipped.values().sum();
    println!("source:       {}", app.pipeline.source.describe());
    println!("rows read:    {}", s.rows_read);
    println!("processed:    {}", s.rows_accepted);
    println!("skipped:      {skipped}");
    for (reason, count) in &s.skipped {
        println!("  {reason}: {count}");
    }
    for (repair, count) in &s.repaired {
        println!("  repaired {repair}: {count}");
    }
    println!("duplicates:   {}", s.duplicates);
    println!("excluded:     {}", s.excluded);
    println!(
        "published:    {} indicators ({} high confidence)",
        counts.indicators, counts.high_confidence
    );
    println!(
        "  new {} / changed {} / unchanged {} / revoked {} / expired {}",
        s.published.new,
        s.published.changed,
        s.published.unchanged,
        s.published.revoked,
        s.published.expired
    );
    println!(
        "geolocated:   {} of {} public ({share:.1}%)",
        counts.geolocated, counts.public
    );
    println!("duration:     {} ms", s.duration_ms);
}

async fn check_config(settings: Settings) -> i32 {
    println!("configuration: valid");
    for (key, value) in &settings.effective {
        println!("  {key} = {value}");
    }
    for warning in &settings.warnings {
        println!("warning: {warning}");
    }
    let source = match LocalSource::open(&settings) {
        Ok(source) => source,
        Err(err) => {
            println!("source: FAILED: {err}");
            return 1;
        }
    };
    match source.check().await {
        Ok(check) => {
            println!(
                "source: ok ({} {}, {} rows, read-only probe)",
                check.kind, check.target, check.rows
            );
            0
        }
        Err(err) => {
            println!("source: FAILED: {err}");
            1
        }
    }
}

fn embedded(settings: &Settings) -> Result<crate::source::sqlite::EmbeddedSource, String> {
    if settings.source.postgres.is_some() {
        return Err("PostgreSQL is configured: it is only ever read; `report` and `import` write to the embedded source, which is used when no PostgreSQL is configured".into());
    }
    crate::source::sqlite::EmbeddedSource::open(&settings.sqlite_path()).map_err(|e| e.to_string())
}

fn report(
    settings: Settings,
    ip: &str,
    confidence: Option<i64>,
    categories: &[u8],
    report_id: Option<&str>,
) -> i32 {
    let source = match embedded(&settings) {
        Ok(source) => source,
        Err(err) => {
            eprintln!("{err}");
            return 2;
        }
    };
    match source.report(
        ip,
        confidence,
        categories,
        report_id,
        jiff::Timestamp::now(),
    ) {
        Ok(addr) => {
            println!("reported {addr}; it is published by the next refresh cycle");
            0
        }
        Err(err) => {
            eprintln!("cannot report {ip:?}: {err}");
            1
        }
    }
}

fn import(settings: Settings, file: &std::path::Path) -> i32 {
    let source = match embedded(&settings) {
        Ok(source) => source,
        Err(err) => {
            eprintln!("{err}");
            return 2;
        }
    };
    let reader = match std::fs::File::open(file) {
        Ok(reader) => reader,
        Err(err) => {
            eprintln!("cannot open {}: {err}", file.display());
            return 1;
        }
    };
    match source.import_csv(reader, jiff::Timestamp::now()) {
        Ok(tally) => {
            println!(
                "imported {} rows, rejected {}",
                tally.imported, tally.rejected
            );
            for (line, reason) in &tally.errors {
                println!("  line {line}: {reason}");
            }
            0
        }
        Err(err) => {
            eprintln!("import failed: {err}");
            1
        }
    }
}

/// The export's query parameters, as the HTTP API takes them.
fn export_pairs(args: &ExportArgs) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut push = |key: &str, value: Option<&String>| {
        if let Some(value) = value {
            pairs.push((key.to_string(), value.clone()));
        }
    };
    push("family", args.family.as_ref());
    push("min_confidence", args.min_confidence.as_ref());
    push("collection", args.collection.as_ref());
    push("max_entries", args.max_entries.as_ref());
    if args.aggregate {
        pairs.push(("aggregate".into(), "true".into()));
    }
    pairs
}

/// Validates the flags with the same parser as the HTTP API.
fn export_request(args: &ExportArgs) -> Result<(ExportRequest, Vec<(String, String)>), String> {
    let format = Format::find(&args.format).ok_or_else(|| {
        let data = Format::DATA.map(Format::name).join(", ");
        format!(
            "unknown format {:?}; available: {data}, {}",
            args.format,
            Feed::names()
        )
    })?;
    let pairs = export_pairs(args);
    let (selection, feed) = match format {
        Format::Feed(_) => params::feed(&pairs),
        _ => params::export(&pairs).map(|s| (s, params::FeedOptions::default())),
    }
    .map_err(|e| e.message)?;
    let request = ExportRequest {
        format,
        selection,
        feed,
    };
    Ok((request, pairs))
}

/// Exports from the data directory; when a running server holds its lock, the same export
/// comes from that server's API instead.
async fn export(settings: Settings, args: &ExportArgs) -> i32 {
    let (request, pairs) = match export_request(args) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("{}", err.replace("parameter", "option"));
            return 2;
        }
    };
    let store = match Store::open(&settings.redb_path()) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("data file busy or unreadable ({err}); asking the running server");
            return export_over_http(&settings, request.format, &pairs).await;
        }
    };
    let written = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        export::write(&store, &settings, &request, &mut out)
            .and_then(|()| std::io::Write::flush(&mut out).map_err(Into::into))
    })
    .await;
    match written {
        Ok(Ok(())) => 0,
        Ok(Err(err)) => {
            eprintln!("export failed: {err}");
            1
        }
        Err(err) => {
            eprintln!("export task failed: {err}");
            1
        }
    }
}

async fn export_over_http(settings: &Settings, format: Format, pairs: &[(String, String)]) -> i32 {
    match fetch_export(settings, format, pairs).await {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("export through the server failed: {err}");
            1
        }
    }
}

/// Streams the export of the running server at `API_HOST:API_PORT` to stdout, with the first
/// configured API key.
async fn fetch_export(
    settings: &Settings,
    format: Format,
    pairs: &[(String, String)],
) -> Result<(), String> {
    use std::io::Write;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let host = match settings.http.host {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    };
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let url = format!(
        "http://{host}:{}{}?{}",
        settings.http.port,
        format.path(),
        query.join("&")
    );
    let client = reqwest::Client::new();
    let mut request = client.get(&url);
    if let Some(key) = settings.http.api_keys.first() {
        request = request.bearer_auth(key.expose());
    }
    let mut response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!("{url}: {status}: {body}"));
    }
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        out.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}
