//! The command line: `serve` (default), `preprocess`, `check-config`, `report`, `import`,
//! `export`.
//! Each command returns the process exit code; `main` only parses and dispatches.

use std::path::PathBuf;
use std::sync::Arc;

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
    let app = match App::build(settings, clock()) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("cannot open the data directory: {err}");
            eprintln!(
                "(if a server is running on this data directory, use its POST /api/v1/refresh)"
            );
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
