//! The two timestamp texts the standards require: STIX (milliseconds, `Z`) and TAXII
//! (exactly microseconds, `Z`).

use jiff::Timestamp;

/// `2026-12-03T10:00:00.123Z`.
pub fn stix_timestamp(at: Timestamp) -> String {
    let millis = at.as_microsecond().rem_euclid(1_000_000) / 1000;
    format!("{}.{millis:03}Z", at.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// `2026-12-03T10:00:00.123456Z`.
pub fn taxii_timestamp(at: Timestamp) -> String {
    let micros = at.as_microsecond().rem_euclid(1_000_000);
    format!("{}.{micros:06}Z", at.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// TAXII text of a `date_added` key (µs since the epoch).
pub fn taxii_from_micros(micros: u64) -> String {
    let at = i64::try_from(micros)
        .ok()
        .and_then(|m| Timestamp::from_microsecond(m).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH);
    taxii_timestamp(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_standards() {
        let at: Timestamp = "2026-12-03T10:00:05.123456Z".parse().unwrap();
        assert_eq!(stix_timestamp(at), "2026-12-03T10:00:05.123Z");
        assert_eq!(taxii_timestamp(at), "2026-12-03T10:00:05.123456Z");
        assert_eq!(taxii_from_micros(0), "1970-01-01T00:00:00.000000Z");
        let whole: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(stix_timestamp(whole), "2026-01-01T00:00:00.000Z");
    }
}
