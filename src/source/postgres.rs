//! The team's PostgreSQL table, read-only and streamed.
//!
//! This module owns the connection to the team's database and the one query that reads
//! `reported_ips`. Every read runs in a `READ ONLY` transaction, so even a role that could
//! write never does; a role with only `SELECT` on the table is enough. Rows are fetched as a
//! stream and pushed on in bounded batches, so memory never grows with the table.
//!
//! Timestamps travel as microseconds since the epoch (`int8`), which needs no timestamp codec
//! and keeps `infinity` readable: `+infinity` becomes the latest instant (and is then clamped
//! to now by the cleaning rules), `-infinity` the earliest.

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::TryStreamExt;
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row, Transaction};
use tokio::sync::mpsc;

use super::clean::{self, Rules};
use super::{LocalRow, RawRow, RowTally, SourceCheck, SourceError};
use crate::config::PostgresSettings;

/// How long a cycle waits for a connection before it reports the server unreachable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The columns the appliance reads, in the order the query selects them.
pub const COLUMNS: [&str; 6] = [
    "ip_address",
    "reported_at",
    "report_id",
    "categories",
    "confidence",
    "created_at",
];

/// SQLSTATE codes told apart in error messages.
const UNDEFINED_COLUMN: &str = "42703";
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// A `reported_ips` table in PostgreSQL.
pub struct PgSource {
    /// Boxed: the options are large and only read once, when the pool is made.
    options: Box<PgConnectOptions>,
    pool_size: u32,
    /// Created on first use, inside the runtime (sqlx spawns its pool maintenance there).
    pool: OnceLock<PgPool>,
    /// The table as configured (`name` or `schema.name`), for messages.
    table: String,
    /// The same, quoted for SQL.
    quoted_table: String,
    /// `postgresql://user@host:port/db`, without the password.
    target: String,
    /// Texts that must never appear in a message: the password and the full URL.
    secrets: Vec<String>,
}

impl PgSource {
    /// Prepares the connection; nothing is opened until the first [`PgSource::stream`] or
    /// [`PgSource::check`], so an unreachable server does not stop the appliance starting.
    ///
    /// `table` must already be validated as `name` or `schema.name` (configuration does this).
    ///
    /// # Errors
    /// [`SourceError::Connect`] when `DATABASE_URL` is not a usable PostgreSQL URL.
    pub fn new(settings: &PostgresSettings, table: &str) -> Result<PgSource, SourceError> {
        let secrets = secrets_of(settings);
        let options = connect_options(settings).map_err(|err| SourceError::Connect {
            target: "DATABASE_URL".into(),
            reason: redact(&err.to_string(), &secrets),
        })?;
        let target = describe_options(&options);
        Ok(PgSource {
            options: Box::new(options),
            pool_size: settings.pool_size.max(1),
            pool: OnceLock::new(),
            table: table.to_string(),
            quoted_table: quote_table(table),
            target,
            secrets,
        })
    }

    /// Streams every row, cleaned, in batches of at most `batch_size` into `tx`.
    ///
    /// # Errors
    /// [`SourceError::Connect`] or [`SourceError::Query`] when the server fails;
    /// [`SourceError::Cancelled`] when the receiver is dropped. A dirty row is never an error.
    pub async fn stream(
        &self,
        rules: Rules,
        batch_size: usize,
        tx: mpsc::Sender<Vec<LocalRow>>,
    ) -> Result<RowTally, SourceError> {
        let mut txn = self.begin_read_only().await?;
        let tally = self
            .read_all(&mut txn, rules, batch_size.max(1), &tx)
            .await?;
        if let Err(err) = txn.rollback().await {
            tracing::debug!(error = %err, "ending the read-only transaction failed");
        }
        Ok(tally)
    }

    async fn read_all(
        &self,
        txn: &mut Transaction<'static, Postgres>,
        rules: Rules,
        batch_size: usize,
        tx: &mpsc::Sender<Vec<LocalRow>>,
    ) -> Result<RowTally, SourceError> {
        let sql = AssertSqlSafe(self.select_sql());
        let mut rows = sqlx::query(sql).fetch(&mut **txn);
        let mut tally = RowTally::default();
        let mut batch = Vec::with_capacity(batch_size);
        while let Some(row) = rows.try_next().await.map_err(|err| self.query_error(err))? {
            let Ok(raw) = decode(&row) else {
                clean::count_unreadable(&mut tally);
                continue;
            };
            batch.extend(clean::clean_row(raw, &rules, &mut tally));
            if batch.len() >= batch_size {
                send(
                    tx,
                    std::mem::replace(&mut batch, Vec::with_capacity(batch_size)),
                )
                .await?;
            }
        }
        if !batch.is_empty() {
            send(tx, batch).await?;
        }
        Ok(tally)
    }

    /// Probes the table read-only: it must exist, be readable, and have every column.
    ///
    /// # Errors
    /// As [`PgSource::stream`], plus [`SourceError::MissingColumn`].
    pub async fn check(&self) -> Result<SourceCheck, SourceError> {
        let mut txn = self.begin_read_only().await?;
        let count_sql = AssertSqlSafe(format!("SELECT count(*) FROM {}", self.quoted_table));
        let rows: i64 = sqlx::query_scalar(count_sql)
            .fetch_one(&mut *txn)
            .await
            .map_err(|err| self.query_error(err))?;
        for column in COLUMNS {
            let probe = format!("SELECT \"{column}\" FROM {} LIMIT 0", self.quoted_table);
            if let Err(err) = sqlx::query(AssertSqlSafe(probe)).execute(&mut *txn).await {
                return Err(self.column_error(column, err));
            }
        }
        let _ = txn.rollback().await;
        Ok(SourceCheck {
            kind: "postgresql",
            target: self.describe(),
            rows: u64::try_from(rows).unwrap_or(0),
        })
    }

    /// `postgresql://user@host:port/db table=<t>`, never with the password.
    pub fn describe(&self) -> String {
        format!("{} table={}", self.target, self.table)
    }

    fn pool(&self) -> &PgPool {
        self.pool.get_or_init(|| {
            PgPoolOptions::new()
                .max_connections(self.pool_size)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with((*self.options).clone())
        })
    }

    async fn begin_read_only(&self) -> Result<Transaction<'static, Postgres>, SourceError> {
        self.pool()
            .begin_with("BEGIN READ ONLY")
            .await
            .map_err(|err| self.connect_error(err))
    }

    fn select_sql(&self) -> String {
        format!(
            "SELECT ip_address::text, {}, report_id::text, categories::text, \
             confidence::int8, {} FROM {}",
            micros("reported_at"),
            micros("created_at"),
            self.quoted_table
        )
    }

    fn connect_error(&self, err: sqlx::Error) -> SourceError {
        let mut reason = err.to_string();
        if matches!(err, sqlx::Error::PoolTimedOut) {
            reason.push_str(&format!(
                " after {} s (server unreachable or every connection busy)",
                ACQUIRE_TIMEOUT.as_secs()
            ));
        }
        SourceError::Connect {
            target: self.target.clone(),
            reason: redact(&reason, &self.secrets),
        }
    }

    fn query_error(&self, err: sqlx::Error) -> SourceError {
        SourceError::Query {
            table: self.table.clone(),
            reason: redact(&err.to_string(), &self.secrets),
        }
    }

    fn column_error(&self, column: &str, err: sqlx::Error) -> SourceError {
        match sqlstate(&err).as_deref() {
            Some(UNDEFINED_COLUMN | INSUFFICIENT_PRIVILEGE) => SourceError::MissingColumn {
                table: self.table.clone(),
                column: column.to_string(),
            },
            _ => self.query_error(err),
        }
    }
}

fn connect_options(settings: &PostgresSettings) -> Result<PgConnectOptions, sqlx::Error> {
    let options = match &settings.url {
        Some(url) => url.expose().parse()?,
        None => {
            let options = PgConnectOptions::new()
                .host(&settings.host)
                .port(settings.port)
                .database(&settings.database)
                .username(&settings.user);
            match &settings.password {
                Some(password) => options.password(password.expose()),
                None => options,
            }
        }
    };
    // The whole-table read of a large source always exceeds sqlx's one-second "slow
    // statement" threshold; that is expected here, and the cycle logs its own duration.
    let options = sqlx::ConnectOptions::disable_statement_logging(options);
    Ok(options.application_name("abuseipdb-ioc"))
}

fn describe_options(options: &PgConnectOptions) -> String {
    format!(
        "postgresql://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username())
    )
}

fn secrets_of(settings: &PostgresSettings) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some(url) = &settings.url {
        secrets.push(url.expose().to_string());
        secrets.extend(url_password(url.expose()).map(str::to_string));
    }
    secrets.extend(settings.password.as_ref().map(|p| p.expose().to_string()));
    secrets.retain(|s| !s.is_empty());
    secrets
}

/// The password part of `scheme://user:password@host/…`, if any.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, password)| password)
}

fn redact(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

/// `schema.name` → `"schema"."name"`. Configuration only admits letters, digits and `_`, so
/// no part contains a quote.
fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(|part| format!("\"{part}\""))
        .collect::<Vec<_>>()
        .join(".")
}

/// A `timestamptz` column as epoch microseconds, with `±infinity` at the ends of `int8`.
fn micros(column: &str) -> String {
    format!(
        "CASE WHEN isfinite({column}) THEN (extract(epoch FROM {column}) * 1000000)::int8 \
         WHEN {column} > 'epoch' THEN {max} WHEN {column} < 'epoch' THEN {min} END",
        max = i64::MAX,
        min = i64::MIN,
    )
}

fn decode(row: &PgRow) -> Result<RawRow, sqlx::Error> {
    Ok(RawRow {
        ip_address: row.try_get(0)?,
        reported_at: row.try_get::<Option<i64>, _>(1)?.map(timestamp),
        report_id: row.try_get(2)?,
        categories: row.try_get(3)?,
        confidence: row.try_get(4)?,
        created_at: row.try_get::<Option<i64>, _>(5)?.map(timestamp),
    })
}

/// Microseconds → timestamp, saturating at the ends of the range `jiff` supports.
fn timestamp(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(if micros > 0 {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()?
        .code()
        .map(|code| code.into_owned())
}

async fn send(tx: &mpsc::Sender<Vec<LocalRow>>, batch: Vec<LocalRow>) -> Result<(), SourceError> {
    tx.send(batch).await.map_err(|_| SourceError::Cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn settings(url: Option<&str>) -> PostgresSettings {
        PostgresSettings {
            url: url.map(Secret::new),
            host: "db.internal".into(),
            port: 5433,
            database: "soc".into(),
            user: "reader".into(),
            password: Some(Secret::new("s3cret-pw")),
            pool_size: 2,
        }
    }

    #[test]
    fn describe_never_shows_the_password() {
        let source = PgSource::new(&settings(None), "reported_ips").unwrap();
        assert_eq!(
            source.describe(),
            "postgresql://reader@db.internal:5433/soc table=reported_ips"
        );

        let url = "postgres://ro:url-pw@10.0.0.5:6543/attacks?sslmode=prefer";
        let source = PgSource::new(&settings(Some(url)), "soc.reported_ips").unwrap();
        assert_eq!(
            source.describe(),
            "postgresql://ro@10.0.0.5:6543/attacks table=soc.reported_ips"
        );
    }

    #[test]
    fn secrets_are_redacted_from_messages() {
        let secrets = secrets_of(&settings(Some("postgres://ro:url-pw@h/db")));
        let text = redact(
            "bad url postgres://ro:url-pw@h/db and s3cret-pw, url-pw",
            &secrets,
        );
        assert_eq!(text, "bad url *** and ***, ***");
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("postgres://u:p@ss@h:1/db?x=y"), Some("p@ss"));
    }

    #[test]
    fn tables_are_quoted_part_by_part() {
        assert_eq!(quote_table("reported_ips"), "\"reported_ips\"");
        assert_eq!(quote_table("soc.Reported"), "\"soc\".\"Reported\"");
    }

    #[test]
    fn microseconds_saturate() {
        assert_eq!(timestamp(0), Timestamp::UNIX_EPOCH);
        assert_eq!(timestamp(i64::MAX), Timestamp::MAX);
        assert_eq!(timestamp(i64::MIN), Timestamp::MIN);
    }
}
