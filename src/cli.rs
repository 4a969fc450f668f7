//! The command line: `serve` (default), `preprocess`, `check-config`, `report`, `import`.
//! Each command returns the process exit code; `main` only parses and dispatches.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::app::App;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::source::LocalSource;
use crate::store::CycleSummary;

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
