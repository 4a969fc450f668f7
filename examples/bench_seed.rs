//! Seeds a data directory for `bench/cycle.sh` with what a running appliance holds before a
//! refresh cycle: a geolocation cache entry for every public address (as if the offline
//! database had answered) and an AbuseIPDB blacklist, half of whose addresses are also in
//! the source rows. Both are written through the library's own writers, so the cycle reads
//! them exactly as it reads real ones.
//!
//! ```sh
//! DATA_DIR=/tmp/bench cargo run --release --example bench_seed -- bench/out/rows.csv 10000
//! ```
//!
//! The input holds one address per line, or CSV rows whose first column is the address (what
//! `bench/gen_rows.py` writes); a line whose first field is not an address the source would
//! accept is skipped. The data directory comes from the same configuration the appliance
//! reads (`DATA_DIR`, `.env`). Locations, scores and the blacklist's own addresses derive
//! from the address or its index only, so two runs over one input seed the same entries; only
//! the fetch and report times follow the clock.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abuseipdb_ioc::config::{ConfigSources, Settings};
use abuseipdb_ioc::enrich::abuseipdb::blacklist::{self, Applied};
use abuseipdb_ioc::enrich::abuseipdb::client::{BlacklistBody, BlacklistItem, BlacklistMeta};
use abuseipdb_ioc::enrich::geo::cache::Cache;
use abuseipdb_ioc::ioc::Location;
use abuseipdb_ioc::source::address::{is_public, normalise};
use abuseipdb_ioc::store::Store;
use anyhow::{Context, bail};
use jiff::Timestamp;

/// Geolocation answers written per transaction.
const GEO_BATCH: usize = 10_000;

/// Blacklist size when none is given: the issue's setup.
const DEFAULT_BLACKLIST: usize = 10_000;

/// A city the seeded locations cluster around, with networks that announce addresses there.
struct Place {
    country_code: &'static str,
    country: &'static str,
    region: &'static str,
    city: &'static str,
    latitude: f64,
    longitude: f64,
    networks: &'static [(u32, &'static str)],
}

const fn place(
    (country_code, country): (&'static str, &'static str),
    (region, city): (&'static str, &'static str),
    (latitude, longitude): (f64, f64),
    networks: &'static [(u32, &'static str)],
) -> Place {
    Place {
        country_code,
        country,
        region,
        city,
        latitude,
        longitude,
        networks,
    }
}

/// Where abusive traffic is commonly reported from: hosting hubs and large access networks.
const PLACES: &[Place] = &[
    place(
        ("US", "United States"),
        ("Virginia", "Ashburn"),
        (39.0438, -77.4874),
        &[(14618, "Amazon.com, Inc."), (396982, "Google LLC")],
    ),
    place(
        ("US", "United States"),
        ("California", "Santa Clara"),
        (37.3541, -121.9552),
        &[
            (14061, "DigitalOcean, LLC"),
            (7922, "Comcast Cable Communications, LLC"),
        ],
    ),
    place(
        ("US", "United States"),
        ("New York", "Buffalo"),
        (42.8864, -78.8784),
        &[(36352, "ColoCrossing")],
    ),
    place(
        ("DE", "Germany"),
        ("Hesse", "Frankfurt am Main"),
        (50.1109, 8.6821),
        &[
            (24940, "Hetzner Online GmbH"),
            (3320, "Deutsche Telekom AG"),
        ],
    ),
    place(
        ("DE", "Germany"),
        ("Bavaria", "Nuremberg"),
        (49.4521, 11.0767),
        &[(51167, "Contabo GmbH")],
    ),
    place(
        ("NL", "Netherlands"),
        ("North Holland", "Amsterdam"),
        (52.3676, 4.9041),
        &[(9009, "M247 Europe SRL"), (202425, "IP Volume inc")],
    ),
    place(
        ("FR", "France"),
        ("Hauts-de-France", "Roubaix"),
        (50.6942, 3.1746),
        &[(16276, "OVH SAS")],
    ),
    place(
        ("GB", "United Kingdom"),
        ("England", "London"),
        (51.5072, -0.1276),
        &[
            (2856, "British Telecommunications PLC"),
            (20473, "The Constant Company, LLC"),
        ],
    ),
    place(
        ("RU", "Russia"),
        ("Moscow", "Moscow"),
        (55.7558, 37.6173),
        &[(12389, "PJSC Rostelecom"), (8359, "MTS PJSC")],
    ),
    place(
        ("CN", "China"),
        ("Beijing", "Beijing"),
        (39.9042, 116.4074),
        &[
            (4808, "China Unicom Beijing Province Network"),
            (37963, "Hangzhou Alibaba"),
        ],
    ),
    place(
        ("CN", "China"),
        ("Guangdong", "Guangzhou"),
        (23.1291, 113.2644),
        &[
            (4134, "Chinanet"),
            (45090, "Shenzhen Tencent Computer Systems"),
        ],
    ),
    place(
        ("BR", "Brazil"),
        ("Sao Paulo", "Sao Paulo"),
        (-23.5558, -46.6396),
        &[
            (28573, "Claro NXT Telecomunicacoes Ltda"),
            (26599, "Telefonica Brasil S.A"),
        ],
    ),
    place(
        ("IN", "India"),
        ("Maharashtra", "Mumbai"),
        (19.0760, 72.8777),
        &[
            (9829, "Bharat Sanchar Nigam Limited"),
            (55836, "Reliance Jio Infocomm"),
        ],
    ),
    place(
        ("SG", "Singapore"),
        ("Singapore", "Singapore"),
        (1.3521, 103.8198),
        &[(14061, "DigitalOcean, LLC"), (16509, "Amazon.com, Inc.")],
    ),
    place(
        ("VN", "Vietnam"),
        ("Hanoi", "Hanoi"),
        (21.0278, 105.8342),
        &[(45899, "VNPT Corp"), (7552, "Viettel Group")],
    ),
    place(
        ("KR", "South Korea"),
        ("Seoul", "Seoul"),
        (37.5665, 126.9780),
        &[(4766, "Korea Telecom"), (9318, "SK Broadband Co Ltd")],
    ),
    place(
        ("ID", "Indonesia"),
        ("Jakarta", "Jakarta"),
        (-6.2088, 106.8456),
        &[(7713, "PT Telekomunikasi Indonesia")],
    ),
    place(
        ("IR", "Iran"),
        ("Tehran", "Tehran"),
        (35.6892, 51.3890),
        &[(58224, "Iran Telecommunication Company PJS")],
    ),
    place(
        ("UA", "Ukraine"),
        ("Kyiv City", "Kyiv"),
        (50.4501, 30.5234),
        &[(15895, "Kyivstar PJSC")],
    ),
    place(
        ("ZA", "South Africa"),
        ("Gauteng", "Johannesburg"),
        (-26.2041, 28.0473),
        &[(37611, "Afrihost SP")],
    ),
];

fn main() -> anyhow::Result<()> {
    let (input, blacklist_size) = args()?;
    let settings = Settings::load(&ConfigSources::from_process(None))?;
    let store = Arc::new(Store::open(&settings.redb_path())?);
    let now = Timestamp::now();

    let source = read_addresses(&input)?;
    let (listed, in_source) = blacklisted(&source, blacklist_size);

    let cache = Cache::new(
        store.clone(),
        settings.geo.cache_ttl,
        settings.geo.negative_ttl,
    );
    let outside = &listed[in_source..];
    let located = seed_geo(&cache, source.iter().chain(outside).copied(), now)?;
    let applied = blacklist::apply(&store, &blacklist_body(&listed, now), now)?;
    report(source.len(), located, &applied, in_source);
    Ok(())
}

/// `INPUT [BLACKLIST_SIZE]`.
fn args() -> anyhow::Result<(PathBuf, usize)> {
    let mut args = std::env::args().skip(1);
    let Some(input) = args.next() else {
        bail!("usage: bench_seed ADDRESSES_FILE [BLACKLIST_SIZE (default {DEFAULT_BLACKLIST})]");
    };
    let size = match args.next() {
        Some(text) => text
            .parse()
            .with_context(|| format!("blacklist size {text:?}"))?,
        None => DEFAULT_BLACKLIST,
    };
    Ok((PathBuf::from(input), size))
}

/// The distinct addresses of the input, in input order, normalised as the source does (so
/// `::ffff:1.2.3.4` and ` 1.2.3.4 ` are the indicator `1.2.3.4`).
fn read_addresses(path: &Path) -> anyhow::Result<Vec<IpAddr>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut seen = HashSet::new();
    let mut addrs = Vec::new();
    for record in reader.byte_records() {
        let record = match record {
            Ok(record) => record,
            Err(err) if err.is_io_error() => return Err(err.into()),
            Err(_) => continue,
        };
        let field = record
            .get(0)
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        if let Ok((addr, _)) = normalise(&field)
            && seen.insert(addr)
        {
            addrs.push(addr);
        }
    }
    Ok(addrs)
}

/// `size` listed addresses: every k-th public source address for one half, addresses the
/// source does not hold for the other. Returns them, the source's first, with the number
/// taken from the source.
fn blacklisted(source: &[IpAddr], size: usize) -> (Vec<IpAddr>, usize) {
    let public: Vec<IpAddr> = source.iter().copied().filter(|a| is_public(*a)).collect();
    let shared = (size / 2).min(public.len());
    let stride = public.len().checked_div(shared).unwrap_or(1);
    let mut listed: Vec<IpAddr> = public
        .iter()
        .step_by(stride)
        .take(shared)
        .copied()
        .collect();

    let known: HashSet<IpAddr> = source.iter().copied().collect();
    let outside = (0u64..)
        .map(synthetic)
        .filter(|a| is_public(*a) && !known.contains(a))
        .take(size - shared);
    listed.extend(outside);
    (listed, shared)
}

/// The `i`-th made-up listed address: nine in ten IPv4, the rest IPv6.
fn synthetic(i: u64) -> IpAddr {
    let h = mix(i ^ 0x5eed);
    if i % 10 == 9 {
        let [a, b, c, d] = [h, h >> 16, h >> 32, h >> 48].map(|x| (x & 0xffff) as u16);
        return IpAddr::V6(Ipv6Addr::new(0x2400 | (a & 0x0fff), b, c, d, 0, 0, 0, 1));
    }
    let [a, b, c, d, ..] = h.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(a.max(1), b, c, d))
}

/// Writes a located answer for every public address, in batches of [`GEO_BATCH`]. Returns
/// the number written.
fn seed_geo(
    cache: &Cache,
    addrs: impl Iterator<Item = IpAddr>,
    now: Timestamp,
) -> anyhow::Result<usize> {
    let mut batch = Vec::with_capacity(GEO_BATCH);
    let mut written = 0;
    for addr in addrs.filter(|a| is_public(*a)) {
        batch.push((addr, Some(location(addr))));
        if batch.len() == GEO_BATCH {
            written += flush(cache, &mut batch, now)?;
        }
    }
    written += flush(cache, &mut batch, now)?;
    Ok(written)
}

fn flush(
    cache: &Cache,
    batch: &mut Vec<(IpAddr, Option<Location>)>,
    now: Timestamp,
) -> anyhow::Result<usize> {
    cache
        .write(batch, now)
        .context("writing geolocation answers")?;
    let written = batch.len();
    batch.clear();
    Ok(written)
}

/// A plausible offline-database answer for `addr`: one of [`PLACES`], one of its networks,
/// and coordinates within about 25 km of the city.
fn location(addr: IpAddr) -> Location {
    let h = hash(addr);
    let place = &PLACES[(h % PLACES.len() as u64) as usize];
    let (asn, isp) = place.networks[((h >> 8) % place.networks.len() as u64) as usize];
    Location {
        latitude: round4(place.latitude + offset(h >> 16)),
        longitude: round4(place.longitude + offset(h >> 32)),
        country_code: Some(place.country_code.to_string()),
        country_name: Some(place.country.to_string()),
        city: Some(place.city.to_string()),
        region: Some(place.region.to_string()),
        asn: Some(asn),
        isp: Some(isp.to_string()),
        provider: "mmdb".to_string(),
    }
}

/// −0.25 … +0.25 degrees from 16 bits of a hash.
fn offset(bits: u64) -> f64 {
    f64::from((bits & 0xffff) as u16) / f64::from(u16::MAX) * 0.5 - 0.25
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The list as AbuseIPDB sends it: highest scores first, `generatedAt` set.
fn blacklist_body(listed: &[IpAddr], now: Timestamp) -> BlacklistBody {
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let mut data: Vec<BlacklistItem> = listed.iter().map(|a| item(*a, now)).collect();
    data.sort_by_key(|item| std::cmp::Reverse(item.abuse_confidence_score));
    BlacklistBody {
        meta: BlacklistMeta {
            generated_at: Some(now.to_string()),
        },
        data,
    }
}

/// Score 75–100, last reported within the past three days, country as geolocated.
fn item(addr: IpAddr, now: Timestamp) -> BlacklistItem {
    let h = mix(hash(addr));
    let ago = (h >> 8) % (3 * 86_400);
    let reported = Timestamp::from_second(now.as_second() - ago as i64).unwrap_or(now);
    BlacklistItem {
        ip_address: addr.to_string(),
        country_code: location(addr).country_code,
        abuse_confidence_score: 75 + (h % 26) as i64,
        last_reported_at: Some(reported.to_string()),
    }
}

/// One line for `bench/cycle.sh`. A list entry the library refused, or a list it kept because
/// the stored one has the same `generatedAt` (a second seed within the same second), is
/// worth a warning: the stored list is then not the one asked for.
fn report(source: usize, located: usize, applied: &Applied, shared: usize) {
    if !applied.rewritten {
        eprintln!("the stored blacklist has the same generatedAt and was kept as it was");
    }
    if !applied.skipped.is_empty() {
        eprintln!("blacklist entries skipped: {:?}", applied.skipped);
    }
    println!(
        "{source} source addresses; geo cache {located} entries; \
         blacklist {} entries, {shared} of them in the source",
        applied.entries,
    );
}

/// A stable 64-bit hash of an address (independent of the std hasher's seed).
fn hash(addr: IpAddr) -> u64 {
    let bits = match addr {
        IpAddr::V4(v4) => u128::from(v4.to_bits()),
        IpAddr::V6(v6) => v6.to_bits(),
    };
    mix(mix(bits as u64) ^ (bits >> 64) as u64)
}

/// The splitmix64 finaliser: every input bit reaches every output bit.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
