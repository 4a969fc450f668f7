//! The `abuseipdb-ioc` binary: parses the command line, loads the configuration (reading
//! `.env` before the async runtime starts), sets up logging and runs the command.

use clap::Parser;

use abuseipdb_ioc::cli::{Cli, Command};
use abuseipdb_ioc::config::{ConfigSources, Settings};

fn main() {
    tune_allocator();
    let cli = Cli::parse();
    let sources = ConfigSources::from_process(cli.config.clone());
    let settings = match Settings::load(&sources) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("configuration error: {err}");
            std::process::exit(2);
        }
    };
    abuseipdb_ioc::publish::logging::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let code = runtime.block_on(abuseipdb_ioc::cli::run(command, settings));
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    std::process::exit(code);
}

/// glibc gives threads that allocate their own arenas and raises its mmap threshold after
/// large frees, so the ~1 MB page buffers the TAXII server builds on blocking threads stay
/// behind as free memory inside arenas. Serving a million objects (`bench/taxii.sh
/// 1000000`, two whole-collection walks) peaked at 310 MB RSS with glibc's defaults and at
/// 184 MB with these two settings; throughput did not change.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: `mallopt` only sets allocator parameters, and runs before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
