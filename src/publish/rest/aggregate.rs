//! Turning the selected addresses into firewall entries: the `max_entries` cap (highest
//! scores first) and the optional merge into the fewest CIDR blocks.

use std::cmp::Reverse;
use std::net::IpAddr;

use ipnet::IpNet;

use super::params::FeedOptions;

/// One line of a firewall feed: a host or a network, with the score of a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedEntry {
    pub net: IpNet,
    /// `None` for merged networks, which stand for several scores.
    pub confidence: Option<u8>,
}

impl FeedEntry {
    /// A host is written as a bare address, a network in CIDR notation.
    pub fn text(&self) -> String {
        if self.net.prefix_len() == self.net.max_prefix_len() {
            self.net.addr().to_string()
        } else {
            self.net.to_string()
        }
    }

    pub fn is_ipv4(&self) -> bool {
        matches!(self.net, IpNet::V4(_))
    }
}

/// Applies the cap, then the aggregation; the result is sorted by address (IPv4 first), so
/// equal snapshots give byte-identical feeds.
///
/// The cap keeps the highest scores, ties broken by the lower address, and is applied before
/// aggregation: merging never lets a lower-scored address into a capped feed.
pub fn prepare(mut hosts: Vec<(IpAddr, u8)>, options: FeedOptions) -> Vec<FeedEntry> {
    if let Some(max) = options.max_entries
        && hosts.len() > max
    {
        hosts.sort_unstable_by_key(|&(addr, score)| (Reverse(score), addr));
        hosts.truncate(max);
    }
    if options.aggregate {
        return merge(&hosts);
    }
    hosts.sort_unstable_by_key(|&(addr, _)| addr);
    hosts
        .into_iter()
        .map(|(addr, score)| FeedEntry {
            net: IpNet::from(addr),
            confidence: Some(score),
        })
        .collect()
}

fn merge(hosts: &[(IpAddr, u8)]) -> Vec<FeedEntry> {
    let nets: Vec<IpNet> = hosts.iter().map(|&(addr, _)| IpNet::from(addr)).collect();
    let mut merged = IpNet::aggregate(&nets);
    merged.sort_unstable();
    merged
        .into_iter()
        .map(|net| FeedEntry {
            net,
            confidence: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(items: &[(&str, u8)]) -> Vec<(IpAddr, u8)> {
        items
            .iter()
            .map(|(a, s)| (a.parse().unwrap(), *s))
            .collect()
    }

    #[test]
    fn the_cap_keeps_the_highest_scores_with_ties_by_address() {
        let options = FeedOptions {
            aggregate: false,
            max_entries: Some(2),
        };
        let kept = prepare(
            hosts(&[
                ("10.0.0.9", 50),
                ("10.0.0.3", 90),
                ("10.0.0.2", 50),
                ("::1", 40),
            ]),
            options,
        );
        let texts: Vec<String> = kept.iter().map(FeedEntry::text).collect();
        assert_eq!(texts, ["10.0.0.2", "10.0.0.3"]);
    }

    #[test]
    fn neighbours_merge_into_blocks() {
        let options = FeedOptions {
            aggregate: true,
            max_entries: None,
        };
        let merged = prepare(
            hosts(&[
                ("192.0.2.0", 80),
                ("192.0.2.1", 80),
                ("192.0.2.2", 80),
                ("192.0.2.3", 80),
                ("192.0.2.9", 80),
                ("2001:db8::", 80),
                ("2001:db8::1", 80),
            ]),
            options,
        );
        let texts: Vec<String> = merged.iter().map(FeedEntry::text).collect();
        assert_eq!(texts, ["192.0.2.0/30", "192.0.2.9", "2001:db8::/127"]);
    }
}
