//! Logging set-up: text or JSON lines at `LOG_LEVEL` (overridable with `RUST_LOG`) on
//! stderr and, with `LOG_FILE`, also in a file rotated by size: when the next line would
//! take the file past `LOG_MAX_SIZE` the file becomes `<file>.1` (older ones shift up) and
//! at most `LOG_BACKUP_COUNT` rotated files are kept.
//!
//! Audit events use the target `audit` (authentication failures, enrichments, refreshes);
//! filter on it to get the audit trail alone. No secret is ever a field of any event.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber; a second call is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn,hyper=warn", settings.level)));
    let (writer, to_file) = match &settings.file {
        Some(path) => {
            let file = RotatingFile::open(path, settings.max_size, settings.backup_count);
            let both = std::io::stderr.and(Mutex::new(file));
            (BoxMakeWriter::new(both), true)
        }
        None => (BoxMakeWriter::new(std::io::stderr), false),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!to_file)
        .with_writer(writer);
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A log file rotated by size that never splits a write: the subscriber writes one event
/// per call, so every line stays whole in one file. A single event longer than the limit
/// is cut by the underlying byte limit.
pub struct RotatingFile {
    inner: FileRotate<AppendCount>,
    written: u64,
    max_size: u64,
}

impl RotatingFile {
    /// Opens (appending) or creates `path`. `max_size` 0 is read as 1 byte.
    pub fn open(path: &Path, max_size: u64, backups: usize) -> RotatingFile {
        let max_size = max_size.max(1);
        let limit = usize::try_from(max_size).unwrap_or(usize::MAX);
        let inner = FileRotate::new(
            path,
            AppendCount::new(backups),
            ContentLimit::Bytes(limit),
            Compression::None,
            None,
        );
        let written = std::fs::metadata(path).map_or(0, |m| m.len());
        RotatingFile {
            inner,
            written,
            max_size,
        }
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let len = buf.len() as u64;
        if self.written > 0 && self.written + len > self.max_size {
            self.inner.rotate()?;
            self.written = 0;
        }
        self.inner.write_all(buf)?;
        // A line longer than the limit was cut by the inner limit; only its tail remains.
        self.written = if len > self.max_size {
            len % self.max_size
        } else {
            self.written + len
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
