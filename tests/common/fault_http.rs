//! A deliberately broken HTTP/1.1 server on `127.0.0.1:0`, written on raw TCP so it can do
//! what a well-behaved framework cannot: hang, cut a body short of its `Content-Length`,
//! or stream more bytes than any client should accept. Behaviours are chosen per path
//! prefix; every request is counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server answers a request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A complete answer.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Announces `declared` bytes, sends `body` (shorter) and closes the connection.
    Truncated { declared: usize, body: Vec<u8> },
    /// A 200 that streams `bytes` bytes of JSON-ish filler.
    Huge { bytes: usize },
    /// Reads the request and never answers (until the test ends).
    Hang,
    /// Closes the connection without a word.
    Close,
}

impl Behaviour {
    pub fn json(status: u16, body: &str) -> Behaviour {
        Behaviour::Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Behaviour {
        if let Behaviour::Reply { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

struct Rules {
    by_prefix: Vec<(String, Behaviour)>,
    default: Behaviour,
}

pub struct FaultServer {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    requests: Arc<AtomicU64>,
    paths: Arc<Mutex<Vec<String>>>,
    rules: Arc<Mutex<Rules>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultServer {
    pub async fn start(default: Behaviour) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicU64::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let rules = Arc::new(Mutex::new(Rules {
            by_prefix: Vec::new(),
            default,
        }));
        let (r, p, ru) = (requests.clone(), paths.clone(), rules.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (r, p, ru) = (r.clone(), p.clone(), ru.clone());
                tokio::spawn(async move {
                    let _ = answer(stream, &r, &p, &ru).await;
                });
            }
        });
        FaultServer {
            base,
            requests,
            paths,
            rules,
            task,
        }
    }

    /// Sets the behaviour for every path.
    pub fn set(&self, behaviour: Behaviour) {
        let mut rules = self.rules.lock().unwrap();
        rules.by_prefix.clear();
        rules.default = behaviour;
    }

    /// Sets the behaviour for paths starting with `prefix` (first match wins).
    pub fn set_for(&self, prefix: &str, behaviour: Behaviour) {
        let mut rules = self.rules.lock().unwrap();
        rules.by_prefix.retain(|(p, _)| p != prefix);
        rules.by_prefix.push((prefix.into(), behaviour));
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Every request path (with query) received, in order.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

async fn answer(
    mut stream: TcpStream,
    requests: &AtomicU64,
    paths: &Mutex<Vec<String>>,
    rules: &Mutex<Rules>,
) -> std::io::Result<()> {
    let Some(path) = read_request(&mut stream).await? else {
        return Ok(());
    };
    requests.fetch_add(1, Ordering::SeqCst);
    paths.lock().unwrap().push(path.clone());
    let behaviour = {
        let rules = rules.lock().unwrap();
        rules
            .by_prefix
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map_or_else(|| rules.default.clone(), |(_, b)| b.clone())
    };
    match behaviour {
        Behaviour::Reply {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
        }
        Behaviour::Truncated { declared, body } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
        }
        Behaviour::Huge { bytes } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {bytes}\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(b"[").await?;
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 1;
            while sent < bytes {
                let n = chunk.len().min(bytes - sent);
                stream.write_all(&chunk[..n]).await?;
                sent += n;
            }
        }
        Behaviour::Hang => tokio::time::sleep(Duration::from_secs(120)).await,
        Behaviour::Close => {}
    }
    stream.shutdown().await
}

/// Reads one request (head and any `Content-Length` body); returns its target.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
    Ok(Some(target))
}
