//! Address text → canonical [`IpAddr`], and the table of non-public ranges.
//!
//! This module owns two decisions: which text in the `ip_address` column names exactly one
//! address (and which repairs that took), and which addresses may leave the appliance in a call
//! to an upstream API. Non-public addresses are still published (zero trust: the team saw them
//! attack); they are only never sent to AbuseIPDB or a geolocation provider.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::clean::{Repair, SkipReason};

/// Longer address text is rejected before any parsing; the longest real IPv6 text is 45.
pub const MAX_TEXT_CHARS: usize = 100;

/// Parses one `ip_address` value into its canonical address.
///
/// Accepted with a repair: surrounding whitespace, a host CIDR (`/32`, `/128`), an IPv4-mapped
/// IPv6 address (becomes IPv4), and IPv6 text in another case or zero-padding than the
/// canonical lower-case form. IPv4 text must already be canonical: octets with leading zeros
/// are ambiguous (octal in some tools) and are rejected.
///
/// # Errors
/// The [`SkipReason`] of text that names no single address: empty, too long, control
/// characters, a zone id, a network wider than one host, or anything unparsable.
pub fn normalise(text: &str) -> Result<(IpAddr, Vec<Repair>), SkipReason> {
    let mut repairs = Vec::new();
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        repairs.push(Repair::Trimmed);
    }
    if trimmed.is_empty() {
        return Err(SkipReason::EmptyAddress);
    }
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        return Err(SkipReason::TooLong);
    }
    if trimmed.chars().any(char::is_control) {
        return Err(SkipReason::InvalidAddress);
    }

    let address_text = strip_host_prefix(trimmed, &mut repairs)?;
    let addr: IpAddr = address_text
        .parse()
        .map_err(|_| SkipReason::InvalidAddress)?;
    Ok((canonical(addr, address_text, &mut repairs), repairs))
}

/// Removes a `/32` or `/128` suffix; any other prefix length names a network.
fn strip_host_prefix<'a>(text: &'a str, repairs: &mut Vec<Repair>) -> Result<&'a str, SkipReason> {
    let Some((address, prefix)) = text.split_once('/') else {
        return Ok(text);
    };
    let addr: IpAddr = address.parse().map_err(|_| SkipReason::InvalidAddress)?;
    let prefix: u8 = prefix.parse().map_err(|_| SkipReason::InvalidAddress)?;
    let host_prefix = if addr.is_ipv4() { 32 } else { 128 };
    match prefix.cmp(&host_prefix) {
        std::cmp::Ordering::Equal => {
            repairs.push(Repair::HostCidr);
            Ok(address)
        }
        std::cmp::Ordering::Less => Err(SkipReason::Network),
        std::cmp::Ordering::Greater => Err(SkipReason::InvalidAddress),
    }
}

/// Maps `::ffff:a.b.c.d` to IPv4 and notes when IPv6 text differed from its canonical form.
fn canonical(addr: IpAddr, text: &str, repairs: &mut Vec<Repair>) -> IpAddr {
    let IpAddr::V6(v6) = addr else {
        return addr;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        repairs.push(Repair::Ipv4Mapped);
        return IpAddr::V4(v4);
    }
    if v6.to_string() != text {
        repairs.push(Repair::Ipv6Canonicalised);
    }
    addr
}

/// The range kind of public addresses, as [`classify`] names it.
pub const PUBLIC: &str = "public";

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// IANA special-purpose IPv4 ranges, with the kind reported in logs and statistics.
const NON_PUBLIC_V4: [(Ipv4Net, &str); 15] = [
    (v4(0, 0, 0, 0, 8), "unspecified"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "cgnat"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "reserved"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "reserved"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "reserved"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// IANA special-purpose IPv6 ranges. `::ffff:0:0/96` stays listed for completeness, but
/// [`classify`] first maps such addresses to IPv4 and judges the embedded address.
const NON_PUBLIC_V6: [(Ipv6Net, &str); 15] = [
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), "reserved"),
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), "reserved"),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "reserved"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "reserved"),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), "reserved"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "reserved"),
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), "reserved"),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique-local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "private"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// True for addresses that may be sent to AbuseIPDB and geolocation providers.
pub fn is_public(addr: IpAddr) -> bool {
    classify(addr) == PUBLIC
}

/// Names the kind of range `addr` falls in (`private`, `loopback`, `cgnat`, `documentation`,
/// `multicast`, `link-local`, `unique-local`, `reserved`, `unspecified`), or [`PUBLIC`].
pub fn classify(addr: IpAddr) -> &'static str {
    let kind = match addr {
        IpAddr::V4(v4) => kind_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => kind_v4(v4),
            None => NON_PUBLIC_V6
                .iter()
                .find(|(net, _)| net.contains(&v6))
                .map(|(_, kind)| *kind),
        },
    };
    kind.unwrap_or(PUBLIC)
}

fn kind_v4(addr: Ipv4Addr) -> Option<&'static str> {
    NON_PUBLIC_V4
        .iter()
        .find(|(net, _)| net.contains(&addr))
        .map(|(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (String, Vec<Repair>) {
        let (addr, repairs) = normalise(text).unwrap();
        (addr.to_string(), repairs)
    }

    fn skip(text: &str) -> SkipReason {
        normalise(text).unwrap_err()
    }

    #[test]
    fn canonical_text_needs_no_repair() {
        assert_eq!(ok("198.51.100.7"), ("198.51.100.7".into(), vec![]));
        assert_eq!(ok("2001:db8::1"), ("2001:db8::1".into(), vec![]));
    }

    #[test]
    fn whitespace_is_trimmed() {
        assert_eq!(
            ok(" 8.8.8.8\t\n"),
            ("8.8.8.8".into(), vec![Repair::Trimmed])
        );
    }

    #[test]
    fn host_cidrs_become_addresses() {
        assert_eq!(ok("8.8.8.8/32"), ("8.8.8.8".into(), vec![Repair::HostCidr]));
        assert_eq!(
            ok("2001:db8::1/128"),
            ("2001:db8::1".into(), vec![Repair::HostCidr])
        );
    }

    #[test]
    fn wider_cidrs_are_networks() {
        assert_eq!(skip("10.0.0.0/8"), SkipReason::Network);
        assert_eq!(skip("10.0.0.1/31"), SkipReason::Network);
        assert_eq!(skip("2001:db8::/64"), SkipReason::Network);
        assert_eq!(skip("10.0.0.1/33"), SkipReason::InvalidAddress);
        assert_eq!(skip("10.0.0.1/x"), SkipReason::InvalidAddress);
        assert_eq!(skip("nope/32"), SkipReason::InvalidAddress);
    }

    #[test]
    fn mapped_ipv6_becomes_ipv4() {
        assert_eq!(
            ok("::ffff:192.0.2.44"),
            ("192.0.2.44".into(), vec![Repair::Ipv4Mapped])
        );
        assert_eq!(
            ok("::FFFF:c000:22c"),
            ("192.0.2.44".into(), vec![Repair::Ipv4Mapped])
        );
        let (addr, repairs) = ok(" ::ffff:1.2.3.4/128 ");
        assert_eq!(addr, "1.2.3.4");
        assert_eq!(
            repairs,
            vec![Repair::Trimmed, Repair::HostCidr, Repair::Ipv4Mapped]
        );
    }

    #[test]
    fn ipv6_is_canonicalised() {
        let canonicalised = vec![Repair::Ipv6Canonicalised];
        assert_eq!(
            ok("2001:DB8::1"),
            ("2001:db8::1".into(), canonicalised.clone())
        );
        assert_eq!(
            ok("2001:0db8:0000:0000:0000:0000:0000:0001"),
            ("2001:db8::1".into(), canonicalised)
        );
    }

    #[test]
    fn garbage_is_rejected_by_reason() {
        assert_eq!(skip(""), SkipReason::EmptyAddress);
        assert_eq!(skip("   "), SkipReason::EmptyAddress);
        assert_eq!(skip(&"1".repeat(101)), SkipReason::TooLong);
        assert_eq!(skip("8.8.\u{7}8.8"), SkipReason::InvalidAddress);
        assert_eq!(skip("fe80::1%eth0"), SkipReason::InvalidAddress);
        assert_eq!(skip("not-an-ip"), SkipReason::InvalidAddress);
        assert_eq!(skip("256.1.1.1"), SkipReason::InvalidAddress);
        assert_eq!(skip("010.1.1.1"), SkipReason::InvalidAddress);
        assert_eq!(skip("1.2.3"), SkipReason::InvalidAddress);
    }

    #[test]
    fn ranges_are_classified() {
        let cases = [
            ("8.8.8.8", "public"),
            ("10.1.2.3", "private"),
            ("172.31.255.255", "private"),
            ("172.32.0.1", "public"),
            ("100.64.0.1", "cgnat"),
            ("127.0.0.1", "loopback"),
            ("169.254.1.1", "link-local"),
            ("192.0.2.1", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.19.255.255", "reserved"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:8.8.8.8", "public"),
            ("64:ff9b::808:808", "reserved"),
            ("2001::1", "reserved"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2002::1", "reserved"),
            ("fd00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "private"),
            ("ff02::1", "multicast"),
            ("2606:4700::1111", "public"),
            ("2a00:1450::1", "public"),
        ];
        for (text, kind) in cases {
            let addr: IpAddr = text.parse().unwrap();
            assert_eq!(classify(addr), kind, "{text}");
            assert_eq!(is_public(addr), kind == "public", "{text}");
        }
    }
}
