//! The compiled, immutable form of one configuration. Parts link to each
//! other by index (`ProfileId`, `EndpointId`, `RegionId` are `u32`), so one
//! `Arc<Snapshot>` owns everything. Everything fallible or expensive
//! (encoding records, reading data files, building prefix tables) happens in
//! [`Snapshot::compile`]; after it, nothing at query time can find the
//! configuration wrong.

use crate::answer::records::{self, Rec};
use crate::config::{AllDown, Config, ConfigError, EndpointKind, GeoCode, MonitorCfg, Routing};
use crate::geo::lpm::{PrefixTable, PrefixTableBuilder};
use crate::geo::{GeoTable, LatencyTable};
use crate::health::HealthTable;
use std::collections::HashMap;
use std::path::PathBuf;

/// No id.
pub const NONE: u32 = u32::MAX;

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

/// How an endpoint answers.
#[derive(Debug)]
pub enum EpAnswer {
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
    pub answer: EpAnswer,
    /// Region id or [`NONE`].
    pub region: u32,
    /// 1 ..= 1000.
    pub priority: u16,
    /// 1 ..= 1000.
    pub weight: u32,
    /// Configured state.
    pub enabled: bool,
    /// Geographic codes.
    pub geo: Box<[GeoCode]>,
    /// Where probes go (for the health monitor).
    pub probe_target: Option<String>,
    /// Probe port override.
    pub probe_port: Option<u16>,
    /// Probe path override.
    pub probe_path: Option<String>,
}

/// What the candidate rule and weighted routing read of an endpoint, packed
/// in 16 octets (the full [`Endpoint`] is only read once the choice is made).
#[derive(Debug, Clone, Copy, Default)]
pub struct Hot {
    /// Configured state.
    pub enabled: bool,
    /// A nested-profile endpoint.
    pub nested: bool,
    /// 1 ..= 1000.
    pub weight: u32,
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
    /// Disabled profiles answer NXDOMAIN.
    pub enabled: bool,
    /// Multivalue cap.
    pub max_answers: u8,
    /// All-down policy.
    pub all_down: AllDown,
    /// Weighted: consistent hash by client subnet.
    pub affinity_subnet: bool,
    /// Monitor settings (None = always online).
    pub monitor: Option<MonitorCfg>,
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
    /// Subnet routing: prefix → endpoint id.
    pub subnets: PrefixTable,
    /// Subnet routing: the endpoint without `subnets`, or [`NONE`].
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
    /// Latency table.
    pub latency: Option<LatencyTable>,
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

fn rec_err(what: &str, e: String) -> ConfigError {
    ConfigError {
        file: String::new(),
        line: 0,
        col: 0,
        path: String::new(),
        message: format!("{what}: {e}"),
    }
}

impl Snapshot {
    /// Compiles a validated config, reading its data files. Health words of
    /// endpoints that exist in `prev` (same profile and endpoint name) are
    /// carried over.
    pub fn compile(
        cfg: &Config,
        source: SourceInfo,
        prev: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigError> {
        // The SOA serial comes from the config text, so every server loading the
        // same file answers the same SOA (we serve no transfers, so it need not grow).
        let serial = (source.hash ^ (source.hash >> 32)) as u32;

        let mut regions: Vec<Region> = cfg
            .regions
            .iter()
            .map(|r| Region {
                name: r.name.as_str().into(),
                lat: r.lat,
                lon: r.lon,
                latency_col: u16::MAX,
            })
            .collect();
        let latency = match &cfg.engine.latency_table {
            Some(p) => {
                let t = LatencyTable::load(p, &|n| regions.iter().any(|r| &*r.name == n))?;
                for (ci, c) in t.columns.iter().enumerate() {
                    if let Some(r) = regions.iter_mut().find(|r| &*r.name == c.as_str()) {
                        r.latency_col = ci as u16;
                    }
                }
                Some(t)
            }
            None => None,
        };
        let geo = match &cfg.engine.geoip_db {
            Some(p) => Some(GeoTable::load(p)?),
            None => None,
        };

        let mut zones = Vec::new();
        let mut names: HashMap<Box<[u8]>, Node, NameHash> = HashMap::default();
        let mut max_zone_len = 0;
        for (zi, z) in cfg.zones.iter().enumerate() {
            let soa = records::soa(&z.nameservers[0], &z.hostmaster, serial, z.ttl)
                .map_err(|e| rec_err("SOA", e))?;
            let ns = z
                .nameservers
                .iter()
                .map(|n| records::ns(n, z.ttl))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| rec_err("NS", e))?;
            zones.push(Zone {
                name: z.name.as_str().into(),
                owner: format!("{}.", z.name).into(),
                soa,
                ns: ns.into(),
            });
            names.insert(z.name.as_bytes().into(), Node::Apex(zi as u32));
            max_zone_len = max_zone_len.max(z.name.len());
        }

        let mut profiles = Vec::new();
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for (pi, p) in cfg.profiles.iter().enumerate() {
            let first = endpoints.len() as u32;
            let mut sub = PrefixTableBuilder::new();
            let mut subnet_default = NONE;
            for (ei, e) in p.endpoints.iter().enumerate() {
                let id = first + ei as u32;
                let answer = match &e.kind {
                    EndpointKind::Target(t) => {
                        EpAnswer::Cname(records::cname(t, p.ttl).map_err(|m| rec_err("CNAME", m))?)
                    }
                    EndpointKind::Addresses(addrs) => {
                        let mut v4 = Vec::new();
                        let mut v6 = Vec::new();
                        for a in addrs {
                            let r =
                                records::address(*a, p.ttl).map_err(|m| rec_err("address", m))?;
                            if a.is_ipv4() { v4.push(r) } else { v6.push(r) }
                        }
                        EpAnswer::Addresses {
                            v4: v4.into(),
                            v6: v6.into(),
                        }
                    }
                    EndpointKind::Nested {
                        profile,
                        min_children,
                    } => EpAnswer::Nested {
                        child: *profile as u32,
                        min_children: *min_children,
                    },
                };
                if p.routing == Routing::Subnet {
                    if e.subnets.is_empty() {
                        subnet_default = id;
                    }
                    for s in &e.subnets {
                        sub.push(s.addr(), s.prefix_len(), id);
                    }
                }
                let probe_target = e.probe_host.clone().or_else(|| match &e.kind {
                    EndpointKind::Addresses(a) => a.first().map(|a| a.to_string()),
                    EndpointKind::Target(t) => Some(t.clone()),
                    EndpointKind::Nested { .. } => None,
                });
                endpoints.push(Endpoint {
                    name: e.name.as_str().into(),
                    profile: pi as u32,
                    profile_index: ei as u32,
                    answer,
                    region: e.location.map(|r| r as u32).unwrap_or(NONE),
                    priority: e.priority,
                    weight: e.weight,
                    enabled: e.enabled,
                    geo: e.geo.clone().into(),
                    probe_target,
                    probe_port: e.probe_port,
                    probe_path: e.probe_path.clone(),
                });
            }
            let count = p.endpoints.len() as u32;
            let mut by_priority: Vec<u32> = (first..first + count).collect();
            by_priority.sort_by_key(|id| endpoints[*id as usize].priority);
            let subnets = sub
                .build(true)
                .map_err(|_| rec_err("subnets", "a prefix is claimed twice".into()))?;
            profiles.push(Profile {
                id: pi as u32,
                fqdn: p.fqdn.as_str().into(),
                zone: p.zone as u32,
                routing: p.routing,
                ttl: p.ttl,
                enabled: p.enabled,
                max_answers: p.max_answers,
                all_down: p.all_down,
                affinity_subnet: p.affinity_subnet,
                monitor: p.monitor.clone(),
                first,
                count,
                by_priority: by_priority
                    .iter()
                    .map(|id| {
                        let r = regions.get(endpoints[*id as usize].region as usize);
                        Ordered {
                            id: *id,
                            col: r.map(|r| r.latency_col).unwrap_or(u16::MAX),
                            lat: r.map(|r| r.lat as f32).unwrap_or(f32::NAN),
                            lon: r.map(|r| r.lon as f32).unwrap_or(f32::NAN),
                        }
                    })
                    .collect(),
                enabled_mask: (0..count.min(64))
                    .filter(|i| endpoints[(first + i) as usize].enabled)
                    .fold(0u64, |m, i| m | 1 << i),
                nested_mask: (0..count.min(64))
                    .filter(|i| {
                        matches!(
                            endpoints[(first + i) as usize].answer,
                            EpAnswer::Nested { .. }
                        )
                    })
                    .fold(0u64, |m, i| m | 1 << i),
                subnets,
                subnet_default,
            });
            names.insert(p.fqdn.as_bytes().into(), Node::Profile(pi as u32));
        }
        // Empty non-terminals: names between a profile and its zone apex.
        for p in cfg.profiles.iter() {
            let zone = &cfg.zones[p.zone].name;
            let mut rest = p.fqdn.as_str();
            while let Some((_, tail)) = rest.split_once('.') {
                if tail.len() <= zone.len() {
                    break;
                }
                names
                    .entry(tail.as_bytes().into())
                    .or_insert(Node::Empty(p.zone as u32));
                rest = tail;
            }
        }

        let hot: Box<[Hot]> = endpoints
            .iter()
            .map(|e| {
                let (child, min_children, nested) = match e.answer {
                    EpAnswer::Nested {
                        child,
                        min_children,
                    } => (child, min_children, true),
                    _ => (NONE, 0, false),
                };
                Hot {
                    enabled: e.enabled,
                    nested,
                    weight: e.weight,
                    child,
                    min_children,
                }
            })
            .collect();
        let owner: Vec<(u32, u32)> = endpoints
            .iter()
            .map(|e| (e.profile, e.profile_index))
            .collect();
        let health = HealthTable::new(owner, profiles.len());
        if let Some(prev) = prev {
            carry_health(prev, &profiles, &endpoints, &health);
        }
        Ok(Snapshot {
            zones: zones.into(),
            profiles: profiles.into(),
            endpoints: endpoints.into(),
            hot,
            regions: regions.into(),
            health,
            latency,
            geo,
            names,
            max_zone_len,
            settings: cfg.engine.clone(),
            source,
            config_warnings: cfg.warnings.iter().map(|w| w.to_string()).collect(),
        })
    }

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

    /// Finds an endpoint by profile (full name or short name) and endpoint name.
    pub fn find_endpoint(&self, profile: &str, endpoint: &str) -> Option<u32> {
        let pn = profile
            .strip_suffix('.')
            .unwrap_or(profile)
            .to_ascii_lowercase();
        let pid = self
            .profiles
            .iter()
            .position(|p| *p.fqdn == *pn)
            .or_else(|| {
                let mut it = self.profiles.iter().enumerate().filter(|(_, p)| {
                    p.fqdn.strip_prefix(pn.as_str()).is_some_and(|r| {
                        r.starts_with('.') && r[1..] == *self.zones[p.zone as usize].name
                    })
                });
                let first = it.next().map(|x| x.0);
                if it.next().is_some() { None } else { first }
            })?;
        let p = &self.profiles[pid];
        p.endpoint_ids()
            .find(|id| &*self.endpoints[*id as usize].name == endpoint)
    }
}

fn carry_health(
    prev: &Snapshot,
    profiles: &[Profile],
    endpoints: &[Endpoint],
    health: &HealthTable,
) {
    let mut old: HashMap<(&str, &str), u32> = HashMap::new();
    for (id, e) in prev.endpoints.iter().enumerate() {
        old.insert(
            (&prev.profiles[e.profile as usize].fqdn, &e.name),
            id as u32,
        );
    }
    for (id, e) in endpoints.iter().enumerate() {
        if let Some(oid) = old.get(&(&*profiles[e.profile as usize].fqdn, &*e.name)) {
            health.set_word(id as u32, prev.health.word(*oid));
        }
    }
}
