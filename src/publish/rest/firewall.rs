//! The firewall feeds: the same entries written as an nftables script, an `ipset restore`
//! file, iptables commands, a MikroTik RouterOS script and a Palo Alto external dynamic list.
//! Writers take any `io::Write`, so the HTTP feeds and `abuseipdb-ioc export` share them.
//!
//! Every feed replaces the previous one when loaded again: sets and lists are flushed before
//! the new entries are added, and creation is idempotent.

use std::io::{self, Write};

use super::aggregate::FeedEntry;
use super::params::Family;

/// nftables elements per `add element` statement, keeping lines of a large feed readable.
const NFT_CHUNK: usize = 512;

/// ipset's default `maxelem`; larger feeds get the next power of two.
const IPSET_MIN_MAXELEM: usize = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Nftables,
    Ipset,
    Iptables,
    Mikrotik,
    Paloalto,
}

impl Feed {
    pub const EVERY: [Feed; 5] = [
        Feed::Nftables,
        Feed::Ipset,
        Feed::Iptables,
        Feed::Mikrotik,
        Feed::Paloalto,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feed::Nftables => "nftables",
            Feed::Ipset => "ipset",
            Feed::Iptables => "iptables",
            Feed::Mikrotik => "mikrotik",
            Feed::Paloalto => "paloalto",
        }
    }

    pub fn find(name: &str) -> Option<Feed> {
        Feed::EVERY.into_iter().find(|f| f.name() == name)
    }

    pub fn names() -> String {
        Feed::EVERY.map(Feed::name).join(", ")
    }

    /// File extension of the download.
    pub fn extension(self) -> &'static str {
        match self {
            Feed::Nftables => "nft",
            Feed::Ipset => "ipset",
            Feed::Iptables => "sh",
            Feed::Mikrotik => "rsc",
            Feed::Paloalto => "txt",
        }
    }

    /// Writes the feed. `family` decides which halves (IPv4, IPv6) appear at all, so a
    /// `family=v4` feed does not touch the IPv6 set of the target.
    ///
    /// # Errors
    /// Errors of `out`.
    pub fn write(
        self,
        family: Family,
        entries: &[FeedEntry],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let halves = Halves::split(family, entries);
        match self {
            Feed::Nftables => nftables(&halves, out),
            Feed::Ipset => ipset(&halves, out),
            Feed::Iptables => iptables(&halves, out),
            Feed::Mikrotik => mikrotik(&halves, out),
            Feed::Paloalto => paloalto(&halves, out),
        }
    }
}

/// The IPv4 and IPv6 entries; `None` for a family the feed leaves out.
struct Halves<'a> {
    v4: Option<Vec<&'a FeedEntry>>,
    v6: Option<Vec<&'a FeedEntry>>,
}

impl<'a> Halves<'a> {
    fn split(family: Family, entries: &'a [FeedEntry]) -> Halves<'a> {
        let (v4, v6): (Vec<_>, Vec<_>) = entries.iter().partition(|e| e.is_ipv4());
        Halves {
            v4: (family != Family::V6).then_some(v4),
            v6: (family != Family::V4).then_some(v6),
        }
    }

    /// (suffix, entries) of each family present, IPv4 first.
    fn each(&self) -> impl Iterator<Item = (&'static str, &[&'a FeedEntry])> {
        [("v4", &self.v4), ("v6", &self.v6)]
            .into_iter()
            .filter_map(|(name, half)| half.as_deref().map(|h| (name, h)))
    }

    fn summary(&self) -> String {
        let count = |h: &Option<Vec<_>>| h.as_ref().map_or(0, Vec::len);
        format!(
            "{} IPv4 and {} IPv6 entries",
            count(&self.v4),
            count(&self.v6)
        )
    }
}

fn comment(entry: &FeedEntry) -> String {
    match entry.confidence {
        Some(score) => format!("abuseipdb-ioc confidence {score}"),
        None => "abuseipdb-ioc aggregated".to_string(),
    }
}

fn nftables(halves: &Halves<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "#!/usr/sbin/nft -f")?;
    writeln!(out, "# abuseipdb-ioc blocklist: {}", halves.summary())?;
    writeln!(
        out,
        "# Load with `nft -f`; loading again replaces the elements."
    )?;
    writeln!(
        out,
        "# Match in your own rules, e.g. `ip saddr @blocklist_v4 drop`."
    )?;
    writeln!(out, "table inet abuseipdb_ioc {{")?;
    for (family, _) in halves.each() {
        writeln!(out, "\tset blocklist_{family} {{")?;
        writeln!(out, "\t\ttype ip{family}_addr")?;
        writeln!(out, "\t\tflags interval")?;
        writeln!(out, "\t}}")?;
    }
    writeln!(out, "}}")?;
    for (family, entries) in halves.each() {
        writeln!(out, "flush set inet abuseipdb_ioc blocklist_{family}")?;
        for chunk in entries.chunks(NFT_CHUNK) {
            let elements: Vec<String> = chunk.iter().map(|e| e.text()).collect();
            writeln!(
                out,
                "add element inet abuseipdb_ioc blocklist_{family} {{ {} }}",
                elements.join(", ")
            )?;
        }
    }
    Ok(())
}

fn ipset(halves: &Halves<'_>, out: &mut dyn Write) -> io::Result<()> {
    for (family, entries) in halves.each() {
        let name = format!("abuseipdb-ioc-{family}");
        let inet = if family == "v4" { "inet" } else { "inet6" };
        let maxelem = entries.len().next_power_of_two().max(IPSET_MIN_MAXELEM);
        writeln!(
            out,
            "create {name} hash:net family {inet} maxelem {maxelem} -exist"
        )?;
        writeln!(out, "flush {name}")?;
        for entry in entries {
            writeln!(out, "add {name} {} -exist", entry.text())?;
        }
    }
    Ok(())
}

fn iptables(halves: &Halves<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "#!/bin/sh")?;
    writeln!(out, "# abuseipdb-ioc blocklist: {}", halves.summary())?;
    writeln!(
        out,
        "# Hook the chain once, e.g. `iptables -I INPUT -j ABUSEIPDB_IOC`."
    )?;
    for (family, entries) in halves.each() {
        let tool = if family == "v4" {
            "iptables"
        } else {
            "ip6tables"
        };
        writeln!(out, "{tool} -N ABUSEIPDB_IOC 2>/dev/null || true")?;
        writeln!(out, "{tool} -F ABUSEIPDB_IOC")?;
        for entry in entries {
            writeln!(out, "{tool} -A ABUSEIPDB_IOC -s {} -j DROP", entry.text())?;
        }
    }
    Ok(())
}

fn mikrotik(halves: &Halves<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "# abuseipdb-ioc blocklist: {}", halves.summary())?;
    writeln!(
        out,
        "# Import with `/import file-name=…`; the list is replaced."
    )?;
    for (family, entries) in halves.each() {
        let menu = if family == "v4" { "/ip" } else { "/ipv6" };
        writeln!(
            out,
            "{menu} firewall address-list remove [find list=abuseipdb-ioc]"
        )?;
        for entry in entries {
            writeln!(
                out,
                "{menu} firewall address-list add list=abuseipdb-ioc address={} comment=\"{}\"",
                entry.text(),
                comment(entry)
            )?;
        }
    }
    Ok(())
}

/// PAN-OS reads one address or CIDR per line and nothing else.
fn paloalto(halves: &Halves<'_>, out: &mut dyn Write) -> io::Result<()> {
    for (_, entries) in halves.each() {
        for entry in entries {
            writeln!(out, "{}", entry.text())?;
        }
    }
    Ok(())
}
