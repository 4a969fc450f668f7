//! Configuration: every setting the appliance reads, loaded once, validated once, and handed
//! down as typed values.
//!
//! Sources, lowest priority first: built-in defaults, a TOML file (`--config`, else
//! `/etc/abuseipdb-ioc/config.toml` when it exists), a `.env` file, then the process
//! environment. Names are the upper-case variable names of the original Python tool
//! (`POSTGRES_HOST`, `LOCAL_CONFIDENCE_WEIGHT`, …); the TOML file may spell them in lower case.
//! The environment is passed in as a map so tests never touch the real process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use figment::value::Value;
use ipnet::IpNet;

/// Where the TOML file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/abuseipdb-ioc/config.toml";

/// Variables of the original tool that mean nothing here; accepted with a warning.
const IGNORED: &[&str] = &[
    "REDIS_URL",
    "API_WORKERS",
    "POSTGRES_MAX_OVERFLOW",
    "POSTGRES_ADMIN_USER",
    "POSTGRES_ADMIN_PASSWORD",
];

/// Variables whose values are secrets: never printed, never logged.
const SECRETS: &[&str] = &[
    "DATABASE_URL",
    "POSTGRES_PASSWORD",
    "ABUSEIPDB_API_KEY",
    "API_KEYS",
    "TAXII_USERS",
    "SECRET_KEY",
];

/// Every variable this module reads, in the order `check-config` prints them.
pub const KNOWN: &[&str] = &[
    "DATA_DIR",
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_POOL_SIZE",
    "SOURCE_TABLE",
    "LOCAL_CONFIDENCE_WEIGHT",
    "EXTERNAL_CONFIDENCE_WEIGHT",
    "MINIMUM_FINAL_CONFIDENCE",
    "LOCAL_CONFIDENCE_BOOST",
    "HIGH_CONFIDENCE_THRESHOLD",
    "DEFAULT_LOCAL_CONFIDENCE",
    "AUTO_START_PROCESSING",
    "IOC_PROCESSING_INTERVAL",
    "BATCH_SIZE",
    "PREPROCESSING_TTL",
    "IOC_VALIDITY_DAYS",
    "REVOKED_RETENTION_DAYS",
    "EXCLUDE_CIDRS",
    "ABUSEIPDB_API_KEY",
    "ABUSEIPDB_BASE_URL",
    "ABUSEIPDB_DAILY_LIMIT",
    "ABUSEIPDB_CHECK_DAILY_LIMIT",
    "ABUSEIPDB_CHECK_RESERVE",
    "ABUSEIPDB_BLACKLIST_CACHE_TTL",
    "ABUSEIPDB_CHECK_CACHE_TTL",
    "ABUSEIPDB_CONFIDENCE_MINIMUM",
    "ABUSEIPDB_BLACKLIST_LIMIT",
    "ABUSEIPDB_TIMEOUT",
    "GEO_PROVIDERS",
    "GEO_MMDB_PATH",
    "IPAPI_BASE_URL",
    "IPWHOIS_BASE_URL",
    "GEOJS_BASE_URL",
    "GEO_REQUEST_DELAY",
    "GEO_CACHE_TTL",
    "GEO_NEGATIVE_CACHE_TTL",
    "GEO_TIMEOUT",
    "TLP",
    "ORG_NAME",
    "TAXII_DEFAULT_LIMIT",
    "TAXII_MAX_LIMIT",
    "TAXII_EMPTY_OBJECTS_LIST",
    "API_HOST",
    "API_PORT",
    "API_KEYS",
    "TAXII_USERS",
    "SECRET_KEY",
    "API_RATE_LIMIT",
    "CORS_ORIGINS",
    "MAX_BODY_BYTES",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "LOG_FILE",
    "LOG_MAX_SIZE",
    "LOG_BACKUP_COUNT",
];

/// A configuration problem that stops the start. The message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: invalid value {value}: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// A value that must never be printed. `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the configuration comes from; built by `main`, or by tests with a plain map.
#[derive(Debug, Default, Clone)]
pub struct ConfigSources {
    /// An explicit TOML file (`--config`); it must exist.
    pub file: Option<PathBuf>,
    /// Variables from a `.env` file.
    pub dotenv: BTreeMap<String, String>,
    /// Variables from the process environment; they win over `.env`.
    pub env: BTreeMap<String, String>,
}

impl ConfigSources {
    /// Reads `.env` from the working directory and the process environment. Called before the
    /// async runtime starts; it only reads, it never sets variables.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        let dotenv = dotenvy::from_path_iter(".env")
            .map(|iter| iter.filter_map(Result::ok).collect())
            .unwrap_or_default();
        let env = std::env::vars().filter(|(key, _)| is_ours(key)).collect();
        ConfigSources { file, dotenv, env }
    }

    /// Only the environment map, for tests.
    pub fn from_map<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        ConfigSources {
            file: None,
            dotenv: BTreeMap::new(),
            env,
        }
    }
}

fn is_ours(key: &str) -> bool {
    KNOWN.contains(&key) || IGNORED.contains(&key)
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub source: SourceSettings,
    pub scoring: ScoringSettings,
    pub cycle: CycleSettings,
    pub abuseipdb: AbuseIpDbSettings,
    pub geo: GeoSettings,
    pub stix: StixSettings,
    pub taxii: TaxiiSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    /// Things worth a warning at start (ignored legacy variables, unknown file keys).
    pub warnings: Vec<String>,
    /// Every variable with its effective value, secrets redacted, for the start-up audit line
    /// and `check-config`.
    pub effective: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// `None` means the embedded SQLite source in the data directory.
    pub postgres: Option<PostgresSettings>,
    /// Table to read; validated as `name` or `schema.name`.
    pub table: String,
}

#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// A full URL (`DATABASE_URL`); when set, the `POSTGRES_*` parts below are ignored.
    pub url: Option<Secret>,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Option<Secret>,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoringSettings {
    pub local_weight: f64,
    pub external_weight: f64,
    pub minimum_final: u8,
    pub local_boost: u8,
    pub high_threshold: u8,
    /// Used when a local row has no confidence.
    pub default_local_confidence: u8,
}

impl Default for ScoringSettings {
    fn default() -> Self {
        ScoringSettings {
            local_weight: 0.8,
            external_weight: 0.2,
            minimum_final: 85,
            local_boost: 10,
            high_threshold: 80,
            default_local_confidence: 75,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CycleSettings {
    pub auto_start: bool,
    pub interval: Duration,
    pub batch_size: usize,
    /// Freshness limit of the published snapshot (`PREPROCESSING_TTL`).
    pub snapshot_ttl: Duration,
    pub validity_days: u32,
    pub revoked_retention_days: u32,
    pub exclude: Vec<IpNet>,
}

#[derive(Debug, Clone)]
pub struct AbuseIpDbSettings {
    pub api_key: Option<Secret>,
    pub base_url: String,
    pub blacklist_daily_limit: u32,
    pub check_daily_limit: u32,
    /// Part of the check budget kept for on-demand enrichment.
    pub check_reserve: u32,
    pub blacklist_cache_ttl: Duration,
    pub check_cache_ttl: Duration,
    pub confidence_minimum: u8,
    pub blacklist_limit: u32,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoProviderKind {
    Mmdb,
    IpApi,
    IpWhois,
    GeoJs,
}

impl GeoProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GeoProviderKind::Mmdb => "mmdb",
            GeoProviderKind::IpApi => "ipapi",
            GeoProviderKind::IpWhois => "ipwhois",
            GeoProviderKind::GeoJs => "geojs",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GeoSettings {
    /// Providers in the order they are asked; empty means geolocation is off.
    pub providers: Vec<GeoProviderKind>,
    pub mmdb_path: Option<PathBuf>,
    pub ipapi_base_url: String,
    pub ipwhois_base_url: String,
    pub geojs_base_url: String,
    pub request_delay: Duration,
    pub cache_ttl: Duration,
    pub negative_ttl: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    Red,
}

#[derive(Debug, Clone)]
pub struct StixSettings {
    pub tlp: Tlp,
    pub org_name: String,
}

#[derive(Debug, Clone)]
pub struct TaxiiSettings {
    pub default_limit: u32,
    pub max_limit: u32,
    /// Emit `"objects": []` on empty envelopes for consumers that need the key.
    pub empty_objects_list: bool,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    pub api_keys: Vec<Secret>,
    pub taxii_users: Vec<(String, Secret)>,
    /// Signs TAXII `next` tokens; generated and kept in the data directory when unset.
    pub secret_key: Option<Secret>,
    /// Requests per minute per client address; 0 turns rate limiting off.
    pub rate_limit_per_minute: u32,
    pub cors_origins: Vec<String>,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub file: Option<PathBuf>,
    pub max_size: u64,
    pub backup_count: usize,
}

impl Settings {
    /// Loads, merges and validates. The first invalid value stops with its variable's name.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable and the rejected value (secrets redacted).
    pub fn load(sources: &ConfigSources) -> Result<Settings, ConfigError> {
        let mut warnings = Vec::new();
        let vars = merge(sources, &mut warnings)?;
        let reader = Reader { vars: &vars };
        let mut settings = reader.settings()?;
        for key in IGNORED {
            if vars.contains_key(*key) {
                warnings.push(format!(
                    "{key} is set but not used by this version; ignored"
                ));
            }
        }
        settings.warnings.extend(warnings);
        settings.effective = effective(&vars);
        Ok(settings)
    }

    /// Defaults only, with the data directory given; what tests start from.
    pub fn for_data_dir(dir: &Path) -> Settings {
        let dir = dir.display().to_string();
        Settings::load(&ConfigSources::from_map([("DATA_DIR", dir)]))
            .expect("the defaults are valid")
    }

    pub fn redb_path(&self) -> PathBuf {
        self.data_dir.join("state.redb")
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("reported_ips.sqlite3")
    }
}

fn merge(
    sources: &ConfigSources,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let file = sources.file.clone().or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG_PATH);
        default.exists().then_some(default)
    });
    let mut vars = BTreeMap::new();
    if let Some(path) = &file {
        for (key, value) in read_file(path)? {
            if is_ours(&key) {
                vars.insert(key, value);
            } else {
                warnings.push(format!(
                    "unknown setting {key} in {}; ignored",
                    path.display()
                ));
            }
        }
    }
    // Later layers win: `.env` over the file, the environment over `.env`.
    for layer in [&sources.dotenv, &sources.env] {
        for (key, value) in layer {
            let key = key.to_ascii_uppercase();
            if is_ours(&key) {
                vars.insert(key, value.clone());
            }
        }
    }
    Ok(vars)
}

/// The TOML file as upper-case names and text values.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    if !path.exists() {
        return Err(ConfigError::File {
            path: path.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    let raw: BTreeMap<String, Value> =
        Figment::from(Toml::file(path))
            .extract()
            .map_err(|err| ConfigError::File {
                path: path.to_path_buf(),
                reason: err.to_string(),
            })?;
    Ok(raw
        .into_iter()
        .map(|(key, value)| (key.to_ascii_uppercase(), value_text(&value)))
        .collect())
}

/// TOML values of any type become the text an environment variable would hold.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(_, s) => s.clone(),
        Value::Char(_, c) => c.to_string(),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => match n.to_f64() {
            Some(f) if n.to_i128().is_none() => f.to_string(),
            _ => n.to_i128().map(|i| i.to_string()).unwrap_or_default(),
        },
        Value::Array(_, items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
        Value::Dict(..) | Value::Empty(..) => String::new(),
    }
}

fn effective(vars: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    KNOWN
        .iter()
        .filter_map(|key| {
            let value = vars.get(*key)?;
            let shown = if SECRETS.contains(key) {
                "*** (set)".to_string()
            } else {
                value.clone()
            };
            Some((*key, shown))
        })
        .collect()
}

/// Typed access to the merged variables with defaults and named errors.
struct Reader<'a> {
    vars: &'a BTreeMap<String, String>,
}

impl Reader<'_> {
    fn raw(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn invalid(&self, var: &'static str, reason: impl Into<String>) -> ConfigError {
        let value = match self.vars.get(var) {
            Some(_) if SECRETS.contains(&var) => "(secret)".to_string(),
            Some(v) => format!("{v:?}"),
            None => "(unset)".to_string(),
        };
        ConfigError::Invalid {
            var,
            value,
            reason: reason.into(),
        }
    }

    fn string(&self, var: &'static str, default: &str) -> String {
        self.raw(var).unwrap_or(default).to_string()
    }

    fn optional(&self, var: &'static str) -> Option<String> {
        self.raw(var).map(str::to_string)
    }

    fn parse<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.raw(var) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|e: T::Err| self.invalid(var, e.to_string())),
        }
    }

    fn ranged<T>(&self, var: &'static str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
        T::Err: fmt::Display,
    {
        let value = self.parse(var, default)?;
        if value < min || value > max {
            return Err(self.invalid(var, format!("must be between {min} and {max}")));
        }
        Ok(value)
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(var).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(_) => Err(self.invalid(var, "expected true or false")),
        }
    }

    /// Whole seconds, at least `min`.
    fn seconds(&self, var: &'static str, default: u64, min: u64) -> Result<Duration, ConfigError> {
        let value: u64 = self.parse(var, default)?;
        if value < min {
            return Err(self.invalid(var, format!("must be at least {min} second(s)")));
        }
        Ok(Duration::from_secs(value))
    }

    /// Fractional seconds, zero allowed.
    fn fractional_seconds(&self, var: &'static str, default: f64) -> Result<Duration, ConfigError> {
        let value: f64 = self.parse(var, default)?;
        if !value.is_finite() || !(0.0..=3600.0).contains(&value) {
            return Err(self.invalid(var, "must be between 0 and 3600 seconds"));
        }
        Ok(Duration::from_secs_f64(value))
    }

    fn list(&self, var: &'static str) -> Vec<String> {
        self.raw(var)
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn url(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let url = self.string(var, default);
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(self.invalid(var, "must start with http:// or https://"));
        }
        Ok(url.trim_end_matches('/').to_string())
    }

    fn settings(&self) -> Result<Settings, ConfigError> {
        Ok(Settings {
            data_dir: PathBuf::from(self.string("DATA_DIR", "./data")),
            source: self.source()?,
            scoring: self.scoring()?,
            cycle: self.cycle()?,
            abuseipdb: self.abuseipdb()?,
            geo: self.geo()?,
            stix: self.stix()?,
            taxii: self.taxii()?,
            http: self.http()?,
            log: self.log()?,
            warnings: Vec::new(),
            effective: Vec::new(),
        })
    }

    fn source(&self) -> Result<SourceSettings, ConfigError> {
        let table = self.string("SOURCE_TABLE", "reported_ips");
        if !valid_table_name(&table) {
            return Err(self.invalid(
                "SOURCE_TABLE",
                "expected name or schema.name (letters, digits, _)",
            ));
        }
        let url = self.optional("DATABASE_URL").map(Secret::new);
        if let Some(url) = &url {
            let text = url.expose();
            if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
                return Err(self.invalid(
                    "DATABASE_URL",
                    "must start with postgres:// or postgresql://",
                ));
            }
        }
        let configured = url.is_some() || self.raw("POSTGRES_HOST").is_some();
        let postgres = configured
            .then(|| -> Result<PostgresSettings, ConfigError> {
                Ok(PostgresSettings {
                    url,
                    host: self.string("POSTGRES_HOST", "localhost"),
                    port: self.ranged("POSTGRES_PORT", 5432, 1, 65535)?,
                    database: self.string("POSTGRES_DB", "postgres"),
                    user: self.string("POSTGRES_USER", "postgres"),
                    password: self.optional("POSTGRES_PASSWORD").map(Secret::new),
                    pool_size: self.ranged("POSTGRES_POOL_SIZE", 4, 1, 100)?,
                })
            })
            .transpose()?;
        Ok(SourceSettings { postgres, table })
    }

    fn scoring(&self) -> Result<ScoringSettings, ConfigError> {
        let local_weight: f64 = self.ranged("LOCAL_CONFIDENCE_WEIGHT", 0.8, 0.0, 1.0)?;
        let external_weight = self.ranged("EXTERNAL_CONFIDENCE_WEIGHT", 0.2, 0.0, 1.0)?;
        if (local_weight + external_weight - 1.0).abs() > 1e-6 {
            return Err(self.invalid(
                "EXTERNAL_CONFIDENCE_WEIGHT",
                format!("LOCAL_CONFIDENCE_WEIGHT ({local_weight}) + EXTERNAL_CONFIDENCE_WEIGHT ({external_weight}) must sum to 1"),
            ));
        }
        Ok(ScoringSettings {
            local_weight,
            external_weight,
            minimum_final: self.ranged("MINIMUM_FINAL_CONFIDENCE", 85, 0, 100)?,
            local_boost: self.ranged("LOCAL_CONFIDENCE_BOOST", 10, 0, 100)?,
            high_threshold: self.ranged("HIGH_CONFIDENCE_THRESHOLD", 80, 0, 100)?,
            default_local_confidence: self.ranged("DEFAULT_LOCAL_CONFIDENCE", 75, 0, 100)?,
        })
    }

    fn cycle(&self) -> Result<CycleSettings, ConfigError> {
        let mut exclude = Vec::new();
        for item in self.list("EXCLUDE_CIDRS") {
            let net = parse_net(&item).ok_or_else(|| {
                self.invalid(
                    "EXCLUDE_CIDRS",
                    format!("{item:?} is not a CIDR or address"),
                )
            })?;
            exclude.push(net);
        }
        Ok(CycleSettings {
            auto_start: self.flag("AUTO_START_PROCESSING", true)?,
            interval: self.seconds("IOC_PROCESSING_INTERVAL", 300, 1)?,
            batch_size: self.ranged("BATCH_SIZE", 100, 1, 100_000)?,
            snapshot_ttl: self.seconds("PREPROCESSING_TTL", 600, 1)?,
            validity_days: self.ranged("IOC_VALIDITY_DAYS", 30, 1, 3650)?,
            revoked_retention_days: self.ranged("REVOKED_RETENTION_DAYS", 7, 0, 3650)?,
            exclude,
        })
    }

    fn abuseipdb(&self) -> Result<AbuseIpDbSettings, ConfigError> {
        let check_daily_limit = self.ranged("ABUSEIPDB_CHECK_DAILY_LIMIT", 1000, 0, 1_000_000)?;
        let check_reserve = self.ranged(
            "ABUSEIPDB_CHECK_RESERVE",
            check_daily_limit / 5,
            0,
            1_000_000,
        )?;
        if check_reserve > check_daily_limit {
            return Err(self.invalid(
                "ABUSEIPDB_CHECK_RESERVE",
                "cannot exceed ABUSEIPDB_CHECK_DAILY_LIMIT",
            ));
        }
        Ok(AbuseIpDbSettings {
            api_key: self.optional("ABUSEIPDB_API_KEY").map(Secret::new),
            base_url: self.url("ABUSEIPDB_BASE_URL", "https://api.abuseipdb.com/api/v2")?,
            blacklist_daily_limit: self.ranged("ABUSEIPDB_DAILY_LIMIT", 5, 0, 100_000)?,
            check_daily_limit,
            check_reserve,
            blacklist_cache_ttl: self.seconds("ABUSEIPDB_BLACKLIST_CACHE_TTL", 3600, 60)?,
            check_cache_ttl: self.seconds("ABUSEIPDB_CHECK_CACHE_TTL", 86_400, 60)?,
            confidence_minimum: self.ranged("ABUSEIPDB_CONFIDENCE_MINIMUM", 50, 25, 100)?,
            blacklist_limit: self.ranged("ABUSEIPDB_BLACKLIST_LIMIT", 10_000, 1, 10_000_000)?,
            timeout: self.seconds("ABUSEIPDB_TIMEOUT", 30, 1)?,
        })
    }

    fn geo(&self) -> Result<GeoSettings, ConfigError> {
        let mmdb_path = self.optional("GEO_MMDB_PATH").map(PathBuf::from);
        let providers = match self.raw("GEO_PROVIDERS") {
            None => {
                let mut list = vec![
                    GeoProviderKind::IpApi,
                    GeoProviderKind::IpWhois,
                    GeoProviderKind::GeoJs,
                ];
                if mmdb_path.is_some() {
                    list.insert(0, GeoProviderKind::Mmdb);
                }
                list
            }
            Some(text) if text.eq_ignore_ascii_case("none") => Vec::new(),
            Some(_) => self.provider_list(mmdb_path.is_some())?,
        };
        Ok(GeoSettings {
            providers,
            mmdb_path,
            ipapi_base_url: self.url("IPAPI_BASE_URL", "http://ip-api.com")?,
            ipwhois_base_url: self.url("IPWHOIS_BASE_URL", "https://ipwho.is")?,
            geojs_base_url: self.url("GEOJS_BASE_URL", "https://get.geojs.io")?,
            request_delay: self.fractional_seconds("GEO_REQUEST_DELAY", 1.0)?,
            cache_ttl: self.seconds("GEO_CACHE_TTL", 30 * 86_400, 60)?,
            negative_ttl: self.seconds("GEO_NEGATIVE_CACHE_TTL", 86_400, 60)?,
            timeout: self.seconds("GEO_TIMEOUT", 10, 1)?,
        })
    }

    fn provider_list(&self, have_mmdb: bool) -> Result<Vec<GeoProviderKind>, ConfigError> {
        let mut providers = Vec::new();
        for name in self.list("GEO_PROVIDERS") {
            let kind = match name.to_ascii_lowercase().as_str() {
                "mmdb" => GeoProviderKind::Mmdb,
                "ipapi" | "ip-api" => GeoProviderKind::IpApi,
                "ipwhois" | "ipwho.is" => GeoProviderKind::IpWhois,
                "geojs" => GeoProviderKind::GeoJs,
                other => {
                    return Err(self.invalid(
                        "GEO_PROVIDERS",
                        format!("unknown provider {other:?} (mmdb, ipapi, ipwhois, geojs, none)"),
                    ));
                }
            };
            if kind == GeoProviderKind::Mmdb && !have_mmdb {
                continue;
            }
            if !providers.contains(&kind) {
                providers.push(kind);
            }
        }
        Ok(providers)
    }

    fn stix(&self) -> Result<StixSettings, ConfigError> {
        let tlp = match self
            .string("TLP", "green")
            .to_ascii_lowercase()
            .trim_start_matches("tlp:")
        {
            "clear" | "white" => Tlp::Clear,
            "green" => Tlp::Green,
            "amber" => Tlp::Amber,
            "red" => Tlp::Red,
            _ => return Err(self.invalid("TLP", "expected clear, green, amber or red")),
        };
        let org_name = self.string("ORG_NAME", "abuseipdb-ioc");
        if org_name.chars().count() > 200 {
            return Err(self.invalid("ORG_NAME", "at most 200 characters"));
        }
        Ok(StixSettings { tlp, org_name })
    }

    fn taxii(&self) -> Result<TaxiiSettings, ConfigError> {
        let max_limit = self.ranged("TAXII_MAX_LIMIT", 10_000, 1, 100_000)?;
        let default_limit = self.ranged("TAXII_DEFAULT_LIMIT", 1000, 1, 100_000)?;
        if default_limit > max_limit {
            return Err(self.invalid(
                "TAXII_DEFAULT_LIMIT",
                format!("cannot exceed TAXII_MAX_LIMIT ({max_limit})"),
            ));
        }
        Ok(TaxiiSettings {
            default_limit,
            max_limit,
            empty_objects_list: self.flag("TAXII_EMPTY_OBJECTS_LIST", false)?,
        })
    }

    fn http(&self) -> Result<HttpSettings, ConfigError> {
        let mut taxii_users = Vec::new();
        for pair in self.list("TAXII_USERS") {
            let Some((user, password)) = pair.split_once(':') else {
                return Err(self.invalid(
                    "TAXII_USERS",
                    "expected user:password pairs separated by commas",
                ));
            };
            if user.is_empty() || password.is_empty() {
                return Err(self.invalid("TAXII_USERS", "user and password must not be empty"));
            }
            taxii_users.push((user.to_string(), Secret::new(password)));
        }
        let secret_key = self.optional("SECRET_KEY").map(Secret::new);
        if secret_key
            .as_ref()
            .is_some_and(|key| key.expose().len() < 16)
        {
            return Err(self.invalid("SECRET_KEY", "must be at least 16 characters"));
        }
        Ok(HttpSettings {
            host: self.parse("API_HOST", IpAddr::from([127, 0, 0, 1]))?,
            port: self.parse("API_PORT", 8000)?,
            api_keys: self.list("API_KEYS").into_iter().map(Secret::new).collect(),
            taxii_users,
            secret_key,
            rate_limit_per_minute: self.ranged("API_RATE_LIMIT", 600, 0, 1_000_000)?,
            cors_origins: self.list("CORS_ORIGINS"),
            max_body_bytes: self.ranged("MAX_BODY_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024)?,
        })
    }

    fn log(&self) -> Result<LogSettings, ConfigError> {
        let format = match self
            .string("LOG_FORMAT", "text")
            .to_ascii_lowercase()
            .as_str()
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(self.invalid("LOG_FORMAT", "expected text or json")),
        };
        let level = self.string("LOG_LEVEL", "info").to_ascii_lowercase();
        let level = match level.as_str() {
            "warning" => "warn".to_string(),
            "critical" => "error".to_string(),
            "trace" | "debug" | "info" | "warn" | "error" => level,
            _ => {
                return Err(self.invalid("LOG_LEVEL", "expected trace, debug, info, warn or error"));
            }
        };
        let max_size = match self.raw("LOG_MAX_SIZE") {
            None => 10 * 1024 * 1024,
            Some(text) => parse_size(text).ok_or_else(|| {
                self.invalid(
                    "LOG_MAX_SIZE",
                    "expected a size such as 10MB, 512KB or 1048576",
                )
            })?,
        };
        Ok(LogSettings {
            format,
            level,
            file: self.optional("LOG_FILE").map(PathBuf::from),
            max_size,
            backup_count: self.ranged("LOG_BACKUP_COUNT", 5, 0, 1000)?,
        })
    }
}

fn valid_table_name(name: &str) -> bool {
    let part = |p: &str| {
        let mut chars = p.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && p.len() <= 63
    };
    match name.split_once('.') {
        Some((schema, table)) => part(schema) && part(table),
        None => part(name),
    }
}

/// A CIDR, or a bare address taken as a host network.
fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .map(|net| net.trunc())
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `10MB`, `512KB`, `1GB`, `1048576` (bytes); units are powers of 1024.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_uppercase();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1024,
        "M" | "MB" | "MIB" => 1024 * 1024,
        "G" | "GB" | "GIB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(factor).filter(|size| *size > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(&ConfigSources::from_map(vars.iter().copied()))
    }

    #[test]
    fn defaults_match_the_specification() {
        let s = load(&[]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert!(s.source.postgres.is_none());
        assert_eq!(s.source.table, "reported_ips");
        assert_eq!(s.scoring, ScoringSettings::default());
        assert_eq!(s.cycle.interval, Duration::from_secs(300));
        assert_eq!(s.cycle.snapshot_ttl, Duration::from_secs(600));
        assert_eq!(s.cycle.batch_size, 100);
        assert_eq!(s.abuseipdb.blacklist_daily_limit, 5);
        assert_eq!(s.abuseipdb.check_daily_limit, 1000);
        assert_eq!(s.abuseipdb.confidence_minimum, 50);
        assert_eq!(s.http.port, 8000);
        assert_eq!(s.http.host.to_string(), "127.0.0.1");
        assert_eq!(s.taxii.default_limit, 1000);
        assert_eq!(s.taxii.max_limit, 10_000);
        assert_eq!(s.stix.tlp, Tlp::Green);
        assert_eq!(s.log.max_size, 10 * 1024 * 1024);
        assert_eq!(
            s.geo.providers,
            vec![
                GeoProviderKind::IpApi,
                GeoProviderKind::IpWhois,
                GeoProviderKind::GeoJs
            ]
        );
    }

    #[test]
    fn weights_must_sum_to_one() {
        let err = load(&[("LOCAL_CONFIDENCE_WEIGHT", "0.7")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("EXTERNAL_CONFIDENCE_WEIGHT"), "{err}");
        assert!(err.contains("0.7"), "{err}");
        assert!(
            load(&[
                ("LOCAL_CONFIDENCE_WEIGHT", "0.7"),
                ("EXTERNAL_CONFIDENCE_WEIGHT", "0.3")
            ])
            .is_ok()
        );
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases = [
            ("MINIMUM_FINAL_CONFIDENCE", "101"),
            ("HIGH_CONFIDENCE_THRESHOLD", "-1"),
            ("IOC_PROCESSING_INTERVAL", "0"),
            ("EXCLUDE_CIDRS", "10.0.0.0/8,not-a-net"),
            ("API_PORT", "http"),
            ("TLP", "purple"),
            ("LOG_MAX_SIZE", "ten"),
            ("GEO_PROVIDERS", "ipapi,maxmind-online"),
            ("SOURCE_TABLE", "reported_ips; drop table x"),
            ("AUTO_START_PROCESSING", "maybe"),
            ("TAXII_DEFAULT_LIMIT", "20000"),
        ];
        for (var, value) in cases {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}={value} gave {err}");
        }
    }

    #[test]
    fn secrets_are_never_shown() {
        let err = load(&[("SECRET_KEY", "short")]).unwrap_err().to_string();
        assert!(!err.contains("short"), "{err}");
        let s = load(&[("ABUSEIPDB_API_KEY", "abc123secret"), ("API_KEYS", "k1,k2")]).unwrap();
        let shown = format!("{:?} {:?}", s.effective, s.abuseipdb);
        assert!(
            !shown.contains("abc123secret") && !shown.contains("k1"),
            "{shown}"
        );
        assert_eq!(s.http.api_keys.len(), 2);
    }

    #[test]
    fn redis_url_is_accepted_with_a_warning() {
        let s = load(&[("REDIS_URL", "redis://localhost:6379/0")]).unwrap();
        assert!(s.warnings.iter().any(|w| w.contains("REDIS_URL")));
    }

    #[test]
    fn environment_wins_over_dotenv_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "api_port = 9000\nbatch_size = 50\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let sources = ConfigSources {
            file: Some(file),
            dotenv: [("BATCH_SIZE".to_string(), "60".to_string())].into(),
            env: [("LOG_LEVEL".to_string(), "warning".to_string())].into(),
        };
        let s = Settings::load(&sources).unwrap();
        assert_eq!(s.http.port, 9000);
        assert_eq!(s.cycle.batch_size, 60);
        assert_eq!(s.log.level, "warn");
    }

    #[test]
    fn postgres_is_configured_by_url_or_host() {
        let s = load(&[("POSTGRES_HOST", "db"), ("POSTGRES_PASSWORD", "pw")]).unwrap();
        let pg = s.source.postgres.unwrap();
        assert_eq!((pg.host.as_str(), pg.port), ("db", 5432));
        let err = load(&[("DATABASE_URL", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("DATABASE_URL") && !err.contains("mysql"),
            "{err}"
        );
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("10MB"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("512kb"), Some(512 * 1024));
        assert_eq!(parse_size("2048"), Some(2048));
        assert_eq!(parse_size("0"), None);
    }
}
