//! The compiled, immutable form of one configuration. Parts link to each
//! other by index (`ProfileId`, `EndpointId`, `RegionId` are `u32`), so one
//! `Arc<Snapshot>` owns everything. Everything fallible or expensive
//! (encoding records, reading data files, building prefix tables) happens in
//! [`Snapshot::compile`] (in `compile.rs`); after it, nothing at query time
//! can find the configuration wrong.

mod compile;

use crate::answer::records::Rec;
use crate::config::{AllDown, GeoCode, MonitorCfg, Routing};
use crate::geo::lpm::PrefixTable;
use crate::geo::{GeoTable, LatencyTable};
use crate::health::HealthTable;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A data file's path and (mtime in ns, size, inode) when it was read.
pub(crate) type LatencyStamp = Option<(PathBuf, (i128, u64, u64))>;

/// No id.
pub(crate) const NO_ID: u32 = u32::MAX;

pub use crate::answer::Zone;

/// What a name in the table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// A zone apex.
    Apex(u32),
    /// A profile.
    Profile(u32),
    /// An empty non-terminal between the apex and a profile (NODATA).
    Empty(u32),
}

/// What an endpoint points clients to: a name (CNAME), addresses, or a
/// nested profile.
#[derive(Debug)]
pub enum Target {
    /// CNAME.
    Cname(Rec),
    /// A and AAAA records.
    Addresses {
        /// A records.
        v4: Box<[Rec]>,
        /// AAAA records.
        v6: Box<[Rec]>,
    },
    /// A nested profile.
    Nested {
        /// Child profile id.
        child: u32,
        /// Online child endpoints needed.
        min_children: u32,
    },
}

/// One endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// Name in its profile.
    pub name: Box<str>,
    /// Owning profile.
    pub profile: u32,
    /// Position in the profile.
    pub profile_index: u32,
    /// What it answers.
    pub target: Target,
    /// Region id or [`NO_ID`].
    pub region: u32,
    /// 1 ..= 1000.
    pub priority: u16,
    /// 0 ..= 1000 (weighted: 0 = standby).
    pub weight: u32,
    /// Configured state.
    pub enabled: bool,
    /// Never taken out by probes (still probed and reported).
    pub always_serve: bool,
    /// Geographic codes.
    pub geo: Box<[GeoCode]>,
    /// Where probes go (for the health monitor; `None` in a profile
    /// without a monitor).
    pub probe_target: Option<String>,
    /// The endpoint's own monitor settings (`probe = { … }`); None when it
    /// has none beyond a host.
    pub probe: Option<Box<crate::config::ProbeOverrides>>,
}

/// What the candidate rule and weighted routing read of an endpoint, packed
/// in 16 octets (the full [`Endpoint`] is only read once the choice is made).
#[derive(Debug, Clone, Copy, Default)]
pub struct Hot {
    /// Configured state.
    pub enabled: bool,
    /// A nested-profile endpoint.
    pub nested: bool,
    /// 0 ..= 1000.
    pub weight: u32,
    /// Never taken out by probes.
    pub always_serve: bool,
    /// Nested: child profile id.
    pub child: u32,
    /// Nested: online children needed.
    pub min_children: u32,
}

/// One endpoint in its profile's priority order, with what performance
/// routing reads of its region.
#[derive(Debug, Clone, Copy)]
pub struct Ordered {
    /// Endpoint id.
    pub id: u32,
    /// Latency-table column of its region, or `u16::MAX`.
    pub col: u16,
    /// Region latitude (NaN without a region).
    pub lat: f32,
    /// Region longitude.
    pub lon: f32,
}

/// One profile.
#[derive(Debug)]
pub struct Profile {
    /// This profile's id.
    pub id: u32,
    /// Full name, lowercase, no trailing dot.
    pub fqdn: Box<str>,
    /// Zone id.
    pub zone: u32,
    /// Routing method.
    pub routing: Routing,
    /// Answer TTL.
    pub ttl: u32,
    /// Answer TTL while the answer's inputs move (≤ `ttl`).
    pub ttl_unstable: u32,
    /// Spill-over loads in thousandths: (start, full).
    pub spill: Option<(u32, u32)>,
    /// Disabled profiles answer NXDOMAIN.
    pub enabled: bool,
    /// Multivalue cap.
    pub max_answers: u8,
    /// All-down policy.
    pub all_down: AllDown,
    /// Weighted: consistent hash by client subnet.
    pub affinity_subnet: bool,
    /// Monitor settings (None = always online); boxed, as most profiles
    /// of a large config have none.
    pub monitor: Option<Box<MonitorCfg>>,
    /// First endpoint id.
    pub first: u32,
    /// Number of endpoints.
    pub count: u32,
    /// The endpoints sorted by priority (priority, multivalue and
    /// performance routing walk this order).
    pub by_priority: Box<[Ordered]>,
    /// Bit i: endpoint `first + i` is enabled (first 64 endpoints).
    pub enabled_mask: u64,
    /// Bit i: endpoint `first + i` is a nested profile (first 64 endpoints).
    pub nested_mask: u64,
    /// Bit i: endpoint `first + i` is `always_serve` (first 64 endpoints).
    pub always_mask: u64,
    /// Subnet routing: prefix → endpoint id.
    pub subnets: PrefixTable,
    /// Subnet routing: the endpoint without `subnets`, or [`NO_ID`].
    pub subnet_default: u32,
}

impl Profile {
    /// Ids of this profile's endpoints, in file order.
    pub fn endpoint_ids(&self) -> std::ops::Range<u32> {
        self.first..self.first + self.count
    }
}

/// A region.
#[derive(Debug, Clone)]
pub struct Region {
    /// Lowercase name.
    pub name: Box<str>,
    /// Degrees.
    pub lat: f64,
    /// Degrees.
    pub lon: f64,
    /// Column in the latency table, or `u16::MAX`.
    pub latency_col: u16,
}

/// Where the snapshot came from.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    /// Config file, if any.
    pub path: Option<PathBuf>,
    /// FNV-1a 64 of the config text.
    pub hash: u64,
    /// Unix seconds at compile.
    pub loaded_at: u64,
}

/// The compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Zones.
    pub zones: Box<[Zone]>,
    /// Profiles.
    pub profiles: Box<[Profile]>,
    /// Endpoints of all profiles, grouped by profile.
    pub endpoints: Box<[Endpoint]>,
    /// The routing view of `endpoints`, same ids.
    pub hot: Box<[Hot]>,
    /// Regions (built-in and configured).
    pub regions: Box<[Region]>,
    /// Health word per endpoint.
    pub health: HealthTable,
    /// Latency table, shared with the snapshot before when its file has
    /// not changed (a reload neither re-reads nor holds it twice).
    pub latency: Option<Arc<LatencyTable>>,
    /// The latency file's (mtime, size, inode) when it was read.
    pub(crate) latency_stamp: LatencyStamp,
    /// GeoIP table.
    pub geo: Option<GeoTable>,
    /// Names: full lowercase name without trailing dot → node.
    pub names: HashMap<Box<[u8]>, Node, NameHash>,
    /// Longest zone name in octets.
    pub max_zone_len: usize,
    /// Engine settings of this config.
    pub settings: crate::config::EngineSettings,
    /// Source.
    pub source: SourceInfo,
    /// The config's warnings (`file:line:col: path: message`).
    pub config_warnings: Box<[String]>,
    /// Answer counters of this snapshot (`crate::counters`).
    pub(crate) counters: crate::counters::Counters,
}

/// The hasher of the name table: a multiply-rotate hash over 8 octets at a
/// time (in the manner of FxHash). The keys come from the config, so hash
/// flooding is not a concern; query names only look up.
#[derive(Debug, Clone, Copy, Default)]
pub struct NameHash;

/// State of [`NameHash`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NameHasher(u64);

impl std::hash::BuildHasher for NameHash {
    type Hasher = NameHasher;
    fn build_hasher(&self) -> NameHasher {
        NameHasher(0)
    }
}

impl std::hash::Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let mut tail = [0u8; 8];
        let r = chunks.remainder();
        tail[..r.len()].copy_from_slice(r);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(tail) ^ ((r.len() as u64) << 56))
            .wrapping_mul(K);
        self.0 = h;
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Spread the high bits down: hashbrown uses the top 7 bits as tags.
        self.0 ^ (self.0 >> 29)
    }
}

/// FNV-1a, 64 bits: a stable content hash for the status.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Snapshot {
    /// Warnings of the config (e.g. a secret header sent without TLS
    /// verification), then from compiling (e.g. duplicate prefixes in the
    /// latency table).
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.config_warnings.iter().map(String::as_str).chain(
            self.latency
                .iter()
                .flat_map(|l| l.warnings.iter().map(String::as_str)),
        )
    }

    /// Finds an endpoint by profile (full name or short name) and endpoint
    /// name. Hash probes in the name table (one per zone for a short name),
    /// not a scan: the metrics and the admin layers call it for every
    /// endpoint they keep.
    pub fn find_endpoint(&self, profile: &str, endpoint: &str) -> Option<u32> {
        let pn = profile
            .strip_suffix('.')
            .unwrap_or(profile)
            .to_ascii_lowercase();
        let pid = self.profile_id(&pn).or_else(|| {
            let mut it = self.zones.iter().enumerate().filter_map(|(zi, z)| {
                let full = format!("{pn}.{}", z.name);
                self.profile_id(&full)
                    .filter(|p| self.profiles[*p as usize].zone as usize == zi)
            });
            let first = it.next();
            if it.next().is_some() { None } else { first }
        })?;
        let p = &self.profiles[pid as usize];
        p.endpoint_ids()
            .find(|id| &*self.endpoints[*id as usize].name == endpoint)
    }

    /// The profile of a full name (lowercase, no trailing dot): one hash probe.
    pub(crate) fn profile_id(&self, fqdn: &str) -> Option<u32> {
        match self.names.get(fqdn.as_bytes()) {
            Some(Node::Profile(p)) => Some(*p),
            _ => None,
        }
    }
}
