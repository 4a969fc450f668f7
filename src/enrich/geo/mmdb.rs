//! The offline `.mmdb` provider (MaxMind GeoLite2 City or DB-IP City Lite, GeoIP2 City
//! shape). The file is read into memory once at start; lookups never leave the machine, so
//! there is no rate gate and the locator asks it first.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::future::BoxFuture;
use maxminddb::{Reader, geoip2};

use super::provider::{Answers, Failure, Provider, usable};
use crate::ioc::Location;

#[derive(Debug, thiserror::Error)]
pub enum MmdbError {
    #[error("cannot open the geolocation database {path}: {source}")]
    Open {
        path: String,
        source: maxminddb::MaxMindDbError,
    },
    #[error("geolocation database lookup of {addr} failed: {source}")]
    Lookup {
        addr: IpAddr,
        source: maxminddb::MaxMindDbError,
    },
}

pub struct Mmdb {
    reader: Reader<Vec<u8>>,
}

impl Mmdb {
    /// Reads the whole file.
    ///
    /// # Errors
    /// [`MmdbError::Open`] when the file is missing or not an mmdb database.
    pub fn open(path: &Path) -> Result<Mmdb, MmdbError> {
        let reader = Reader::open_readfile(path).map_err(|source| MmdbError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Mmdb { reader })
    }

    /// A database already in memory (tests build one).
    ///
    /// # Errors
    /// [`MmdbError::Open`] when the bytes are not an mmdb database.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Mmdb, MmdbError> {
        let reader = Reader::from_source(bytes).map_err(|source| MmdbError::Open {
            path: "<memory>".to_string(),
            source,
        })?;
        Ok(Mmdb { reader })
    }

    /// The location the file holds for `addr`; `None` when it has no record or the record
    /// has no coordinates.
    ///
    /// # Errors
    /// [`MmdbError::Lookup`] for a damaged record.
    pub fn lookup(&self, addr: IpAddr) -> Result<Option<Location>, MmdbError> {
        let fail = |source| MmdbError::Lookup { addr, source };
        let result = self.reader.lookup(addr).map_err(fail)?;
        let Some(city) = result.decode::<geoip2::City<'_>>().map_err(fail)? else {
            return Ok(None);
        };
        let owned = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        let (Some(latitude), Some(longitude)) = (city.location.latitude, city.location.longitude)
        else {
            return Ok(None);
        };
        Ok(usable(Location {
            latitude,
            longitude,
            country_code: owned(city.country.iso_code),
            country_name: owned(city.country.names.english),
            city: owned(city.city.names.english),
            region: owned(city.subdivisions.first().and_then(|s| s.names.english)),
            asn: None,
            isp: None,
            provider: "mmdb".to_string(),
        }))
    }
}

impl Provider for Mmdb {
    fn name(&self) -> &'static str {
        "mmdb"
    }

    fn batch_limit(&self) -> usize {
        1000
    }

    fn paused_for(&self) -> Option<Duration> {
        None
    }

    fn locate<'a>(&'a self, addrs: &'a [IpAddr]) -> BoxFuture<'a, Result<Answers, Failure>> {
        // In-memory lookups take microseconds; a damaged record only loses that address.
        Box::pin(async move {
            Ok(addrs
                .iter()
                .map(|addr| {
                    self.lookup(*addr).unwrap_or_else(|err| {
                        tracing::debug!(error = %err, "mmdb record unreadable");
                        None
                    })
                })
                .collect())
        })
    }
}
