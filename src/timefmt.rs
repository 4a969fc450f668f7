//! The two timestamp texts the standards require: STIX (milliseconds, `Z`) and TAXII
//! (exactly microseconds, `Z`).

use jiff::Timestamp;
use jiff::tz::Offset;

/// `2026-12-03T10:00:00.123Z`.
pub fn stix_timestamp(at: Timestamp) -> String {
    format_utc(at, 3)
}

/// `2026-12-03T10:00:00.123456Z`.
pub fn taxii_timestamp(at: Timestamp) -> String {
    format_utc(at, 6)
}

/// Fixed-width UTC text with `digits` fraction digits, written digit by digit: every
/// published object carries several of these, and a first cycle renders millions
/// (`strftime` was a visible share of its profile). Years outside 0–9999 cannot occur in
/// jiff's range except negative ones, which no cleaned input produces; they print as 0000.
fn format_utc(at: Timestamp, digits: u32) -> String {
    let dt = Offset::UTC.to_datetime(at);
    let mut out = String::with_capacity(27);
    push_digits(&mut out, u32::try_from(dt.year()).unwrap_or(0), 4);
    out.push('-');
    push_digits(&mut out, dt.month().unsigned_abs().into(), 2);
    out.push('-');
    push_digits(&mut out, dt.day().unsigned_abs().into(), 2);
    out.push('T');
    push_digits(&mut out, dt.hour().unsigned_abs().into(), 2);
    out.push(':');
    push_digits(&mut out, dt.minute().unsigned_abs().into(), 2);
    out.push(':');
    push_digits(&mut out, dt.second().unsigned_abs().into(), 2);
    out.push('.');
    let fraction = dt.subsec_nanosecond().unsigned_abs() / 10u32.pow(9 - digits);
    push_digits(&mut out, fraction, digits);
    out.push('Z');
    out
}

fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
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
        let before_epoch: Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        assert_eq!(stix_timestamp(before_epoch), "1969-12-31T23:59:59.500Z");
        let last: Timestamp = "9999-12-30T12:00:00.999999999Z".parse().unwrap();
        assert_eq!(taxii_timestamp(last), "9999-12-30T12:00:00.999999Z");
        assert_eq!(
            stix_timestamp(Timestamp::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn digit_writer_agrees_with_strftime() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let micros = (x % 253_402_000_000_000_000) as i64 - 62_135_000_000_000_000;
            let at = Timestamp::from_microsecond(micros).unwrap();
            let whole = at.strftime("%Y-%m-%dT%H:%M:%S");
            let fraction = at.as_microsecond().rem_euclid(1_000_000);
            assert_eq!(taxii_timestamp(at), format!("{whole}.{fraction:06}Z"));
            assert_eq!(
                stix_timestamp(at),
                format!("{whole}.{:03}Z", fraction / 1000)
            );
        }
    }
}
