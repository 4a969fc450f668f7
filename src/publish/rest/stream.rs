//! Streaming a blocking writer as an HTTP body: the export runs in a blocking task and hands
//! 64 KiB chunks to the response through a bounded channel, so a feed of a million indicators
//! never sits in memory whole, and a client that goes away stops the export at its next chunk.

use std::io::{self, BufWriter, Write};

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Size of the chunks handed to the response.
const CHUNK: usize = 64 * 1024;

/// Chunks in flight between the export task and the connection.
const IN_FLIGHT: usize = 4;

type Chunk = Result<Bytes, io::Error>;

/// The sending half, as an `io::Write`; fails with `BrokenPipe` once the body is dropped.
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body fed by `produce`, run on the blocking pool. An error after the headers were sent
/// can only end the body early: the client sees a truncated transfer, and the log says why.
pub fn body<E: std::fmt::Display>(
    produce: impl FnOnce(&mut dyn Write) -> Result<(), E> + Send + 'static,
) -> Body {
    let (tx, rx) = mpsc::channel::<Chunk>(IN_FLIGHT);
    let failure = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = BufWriter::with_capacity(CHUNK, ChannelWriter { tx });
        let result = produce(&mut out).map_err(|e| e.to_string());
        let result = result.and_then(|()| out.flush().map_err(|e| e.to_string()));
        if let Err(error) = result {
            tracing::warn!(%error, "export stopped before its end");
            let _ = failure.blocking_send(Err(io::Error::other(error)));
        }
    });
    let mut rx = rx;
    // `poll_fn` rather than `unfold`: the compression layer may poll again after the end.
    let chunks = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Body::from_stream(chunks)
}
