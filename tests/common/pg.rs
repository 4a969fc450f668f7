//! A throwaway PostgreSQL cluster for integration tests.
//!
//! Unless `TEST_DATABASE_URL` names a server (whose role may create databases and roles), the
//! first test to ask starts a private cluster: `initdb` into a temporary directory, then
//! `postgres` on a free port of 127.0.0.1 with its socket in that directory. One cluster serves
//! the whole test binary, and every test gets its own database.
//!
//! The cluster lives in a `static`, which Rust never drops, so it cannot be stopped from a
//! destructor at exit. Instead `postgres` runs under a small shell watchdog that stops it and
//! removes the directory as soon as the test process is gone (or a `stop` file appears, which
//! is what `Drop` does for a cluster that is not the shared one).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;

const HOW_TO_GET_ONE: &str =
    "install the PostgreSQL server (apt-get install postgresql) or set TEST_DATABASE_URL";

/// `reported_ips` exactly as the specification describes it.
pub const REPORTED_IPS_DDL: &str = "CREATE TABLE reported_ips (
    ip_address varchar(45) PRIMARY KEY,
    reported_at timestamptz NOT NULL,
    report_id varchar(255),
    categories jsonb,
    confidence integer,
    created_at timestamptz DEFAULT now()
)";

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `postgres` in the background until the test process ($4) is gone or `$2/stop`
/// exists, then stops it and removes the directory. If `postgres` dies on its own, the
/// directory stays (with its log) and `$2/exited` tells the waiting test.
const WATCHDOG: &str = r#"
"$1/postgres" -D "$2/data" -k "$2" -p "$3" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off >"$2/log" 2>&1 &
pg=$!
while [ -d "/proc/$4" ] && [ ! -e "$2/stop" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.1; done
if kill -0 "$pg" 2>/dev/null; then
    kill -INT "$pg"; wait "$pg"; rm -rf "$2"
else
    touch "$2/exited"
fi
"#;

static SHARED: OnceCell<PgCluster> = OnceCell::const_new();

/// The cluster shared by every test of this binary, started on first use.
pub async fn cluster() -> &'static PgCluster {
    SHARED.get_or_init(PgCluster::start).await
}

/// A PostgreSQL server the tests may create databases and roles on.
pub struct PgCluster {
    /// `postgres://user[:password]@host:port`, no path.
    base: String,
    /// `?…` parameters of `TEST_DATABASE_URL`, or empty.
    params: String,
    /// The watchdog of a private cluster, and its directory.
    private: Option<(Child, PathBuf)>,
}

impl PgCluster {
    /// Uses `TEST_DATABASE_URL`, or starts a private cluster.
    pub async fn start() -> PgCluster {
        let cluster = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => PgCluster::external(&url),
            _ => tokio::task::spawn_blocking(PgCluster::private)
                .await
                .expect("starting PostgreSQL"),
        };
        cluster.wait_until_ready().await;
        cluster
    }

    fn external(url: &str) -> PgCluster {
        let (scheme, rest) = url.split_once("://").expect("TEST_DATABASE_URL is a URL");
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let params = rest.find('?').map_or("", |at| &rest[at..]);
        PgCluster {
            base: format!("{scheme}://{}", &rest[..authority_end]),
            params: params.to_string(),
            private: None,
        }
    }

    fn private() -> PgCluster {
        let bin = server_binaries().unwrap_or_else(|| panic!("{HOW_TO_GET_ONE}"));
        let as_root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("aioc-pg-")
            .tempdir()
            .expect("temporary directory")
            .keep();
        if as_root {
            checked(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir),
            );
        }

        let initdb = bin.join("initdb");
        let data = dir.join("data");
        let mut init = server_command(as_root, &initdb);
        init.arg("-D").arg(&data);
        init.args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        checked(&mut init);

        let port = free_port();
        let watchdog = server_command(as_root, Path::new("sh"))
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(&bin)
            .arg(&dir)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the PostgreSQL watchdog");
        PgCluster {
            base: format!("postgres://postgres@127.0.0.1:{port}"),
            params: String::new(),
            private: Some((watchdog, dir)),
        }
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match PgConnection::connect(&self.url("postgres")).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return;
                }
                Err(err) if Instant::now() > deadline => {
                    panic!(
                        "PostgreSQL did not accept connections: {err}\n{}",
                        self.log()
                    )
                }
                Err(_) if self.exited() => panic!("PostgreSQL stopped:\n{}", self.log()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn exited(&self) -> bool {
        self.private
            .as_ref()
            .is_some_and(|(_, dir)| dir.join("exited").exists())
    }

    fn log(&self) -> String {
        let Some((_, dir)) = &self.private else {
            return String::new();
        };
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    }

    /// A superuser URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("{}/{db}{}", self.base, self.params)
    }

    /// A URL for `db` as another role.
    pub fn url_as(&self, role: &str, password: &str, db: &str) -> String {
        let (scheme, authority) = self.base.split_once("://").expect("base is a URL");
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        format!("{scheme}://{role}:{password}@{host}/{db}{}", self.params)
    }

    /// A superuser connection to `db`.
    pub async fn admin(&self, db: &str) -> PgConnection {
        PgConnection::connect(&self.url(db))
            .await
            .expect("superuser connection")
    }

    /// A fresh, empty database for one test; returns its name.
    pub async fn create_database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = self.admin("postgres").await;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("CREATE DATABASE");
        name
    }

    /// Creates `reported_ips` in `db` exactly as the specification describes it.
    pub async fn create_reported_ips(&self, db: &str) {
        let mut conn = self.admin(db).await;
        conn.execute(REPORTED_IPS_DDL)
            .await
            .expect("CREATE TABLE reported_ips");
    }

    /// Creates a login role that may only read `reported_ips` in `db`; returns its URL.
    pub async fn create_readonly_role(&self, db: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (role, password) = (format!("ro_{id}"), format!("pw_{id}"));
        let mut conn = self.admin(db).await;
        let statements = [
            format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"),
            format!("GRANT CONNECT ON DATABASE {db} TO {role}"),
            format!("GRANT USAGE ON SCHEMA public TO {role}"),
            format!("GRANT SELECT ON reported_ips TO {role}"),
        ];
        for sql in statements {
            conn.execute(sqlx::AssertSqlSafe(sql))
                .await
                .expect("creating the read-only role");
        }
        self.url_as(&role, &password, db)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let Some((watchdog, dir)) = &mut self.private else {
            return;
        };
        let _ = std::fs::write(dir.join("stop"), b"");
        let _ = watchdog.wait();
    }
}

/// `pg_config --bindir` when it holds `initdb`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn server_binaries() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if let Some(bin) = from_pg_config.filter(|bin| bin.join("initdb").exists()) {
        return Some(bin);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|bin| version_of(bin));
    versions.pop()
}

fn version_of(bin: &Path) -> u32 {
    bin.parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// initdb and postgres refuse to run as root: run them as the `postgres` system user then.
fn server_command(as_root: bool, program: &Path) -> Command {
    if !as_root {
        return Command::new(program);
    }
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn checked(command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound address").port()
}
