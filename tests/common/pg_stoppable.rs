//! A private PostgreSQL server that a test may stop and start again on the same port and
//! data directory, to inject outages. Unlike the shared [`super::pg`] cluster it is driven
//! by `pg_ctl`, one per test; `Drop` stops it (immediate mode) and removes its directory.
//! Commits are synchronous: an immediate stop after `synchronous_commit=off` loses the last
//! transactions, which would turn a test's table empty behind its back.

use std::path::PathBuf;
use std::process::Command;

use sqlx::{Connection, PgConnection};

use super::pg::{free_port, is_root, server_binaries};

pub struct StoppableCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
}

impl StoppableCluster {
    /// `initdb` into a fresh directory and start the server.
    pub fn start() -> StoppableCluster {
        let bin = server_binaries().expect("install the PostgreSQL server binaries");
        let as_root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("aioc-pg-stop-")
            .tempdir()
            .unwrap()
            .keep();
        if as_root {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir));
        }
        let cluster = StoppableCluster {
            bin,
            port: free_port(),
            dir,
            as_root,
        };
        let mut init = cluster.command("initdb");
        init.arg("-D").arg(cluster.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(&mut init);
        cluster.resume();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if !self.as_root {
            return Command::new(path);
        }
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("start")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "30", "-o", &options]);
        run(&mut start);
    }

    /// Stops the server at once, as a crash or a pulled cable would (no shutdown checkpoint).
    pub fn kill(&self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w"]);
        run(&mut stop);
    }

    /// A superuser URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn url_as(&self, role: &str, password: &str, db: &str) -> String {
        format!("postgres://{role}:{password}@127.0.0.1:{}/{db}", self.port)
    }

    pub async fn admin(&self, db: &str) -> PgConnection {
        PgConnection::connect(&self.url(db)).await.unwrap()
    }
}

impl Drop for StoppableCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
