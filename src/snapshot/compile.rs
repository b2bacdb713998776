//! [`Snapshot::compile`]: a validated [`Config`] into a [`Snapshot`], in
//! named steps: the regions and the data tables read from files, the zones
//! and the name table, the profiles with their endpoints and records, the
//! routing view, and the health table with the words carried over from the
//! previous snapshot.

use super::{
    Endpoint, Hot, LatencyStamp, NO_ID, NameHash, Node, Ordered, Profile, Region, Snapshot,
    SourceInfo, Target, Zone,
};
use crate::answer::records;
use crate::config::{Config, ConfigError, EndpointCfg, EndpointKind, ProfileCfg, Routing};
use crate::counters::Counters;
use crate::geo::lpm::{PrefixTable, PrefixTableBuilder};
use crate::geo::{GeoTable, LatencyTable};
use crate::health::{HealthTable, STATUS_BITS, UNSTEADY_BITS};
use std::collections::HashMap;
use std::sync::Arc;

/// The name table: full lowercase name without trailing dot → node.
type Names = HashMap<Box<[u8]>, Node, NameHash>;

impl Snapshot {
    /// Compiles a validated config, reading its data files. Health words of
    /// endpoints that exist in `prev` (same profile and endpoint name) are
    /// carried over.
    pub fn compile(
        cfg: &Config,
        source: SourceInfo,
        prev: Option<&Snapshot>,
    ) -> Result<Snapshot, ConfigError> {
        let mut regions = regions(cfg);
        let (latency, latency_stamp) = latency_table(cfg, &mut regions, prev)?;
        let geo = geoip_table(cfg)?;
        let mut names = Names::default();
        let zones = zones(cfg, soa_serial(&source), &mut names)?;
        let max_zone_len = cfg.zones.iter().map(|z| z.name.len()).max().unwrap_or(0);
        let (profiles, endpoints) = profiles_and_endpoints(cfg, &regions)?;
        for (pi, p) in cfg.profiles.iter().enumerate() {
            names.insert(p.fqdn.as_bytes().into(), Node::Profile(pi as u32));
        }
        add_empty_non_terminals(cfg, &mut names);
        let hot = hot_view(&endpoints);
        let health = health_table(&profiles, &endpoints, prev);
        let counters = Counters::for_machine(endpoints.len(), profiles.len(), zones.len());
        Ok(Snapshot {
            zones: zones.into(),
            profiles: profiles.into(),
            endpoints: endpoints.into(),
            hot,
            regions: regions.into(),
            health,
            latency,
            latency_stamp,
            geo,
            names,
            max_zone_len,
            settings: cfg.engine.clone(),
            source,
            config_warnings: cfg.warnings.iter().map(|w| w.to_string()).collect(),
            counters,
        })
    }
}

/// A compile error: what could not be encoded, and why.
fn rec_err(what: &str, e: String) -> ConfigError {
    ConfigError::general(format!("{what}: {e}"))
}

/// The SOA serial comes from the config text, so every server loading the
/// same file answers the same SOA (we serve no transfers, so it need not grow).
fn soa_serial(source: &SourceInfo) -> u32 {
    (source.hash ^ (source.hash >> 32)) as u32
}

/// The config's regions, not yet tied to a latency-table column.
fn regions(cfg: &Config) -> Vec<Region> {
    cfg.regions
        .iter()
        .map(|r| Region {
            name: r.name.as_str().into(),
            lat: r.lat,
            lon: r.lon,
            latency_col: u16::MAX,
        })
        .collect()
}

/// The latency table, if the config names one; ties each region to its
/// column. The previous snapshot's table is taken again when it came from
/// the same path, the file's (mtime, size, inode) is unchanged and every
/// column is still a region: re-reading would give the same table.
fn latency_table(
    cfg: &Config,
    regions: &mut [Region],
    prev: Option<&Snapshot>,
) -> Result<(Option<Arc<LatencyTable>>, LatencyStamp), ConfigError> {
    let Some(p) = &cfg.engine.latency_table else {
        return Ok((None, None));
    };
    let known = |n: &str| regions.iter().any(|r| &*r.name == n);
    // Stamped before the read: a change made while reading is seen next time.
    let stamp = file_stamp(p).map(|s| (p.clone(), s));
    let reuse = prev.and_then(|s| match (&s.latency, &s.latency_stamp) {
        (Some(t), Some(old)) if stamp.as_ref() == Some(old) => Some(t.clone()),
        _ => None,
    });
    let t = match reuse {
        Some(t) if t.columns.iter().all(|c| known(c)) => t,
        _ => Arc::new(
            LatencyTable::load(p, &known)
                .map_err(|e| ConfigError::data_file("engine.latency_table", e))?,
        ),
    };
    for (ci, c) in t.columns.iter().enumerate() {
        if let Some(r) = regions.iter_mut().find(|r| &*r.name == c.as_str()) {
            r.latency_col = ci as u16;
        }
    }
    Ok((Some(t), stamp))
}

/// (mtime in ns, size, inode) of a file, if it can be read.
fn file_stamp(p: &std::path::Path) -> Option<(i128, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.size(),
        m.ino(),
    ))
}

/// The GeoIP table, if the config names a database.
fn geoip_table(cfg: &Config) -> Result<Option<GeoTable>, ConfigError> {
    match &cfg.engine.geoip_db {
        Some(p) => GeoTable::load(p)
            .map(Some)
            .map_err(|e| ConfigError::data_file("engine.geoip_db", e)),
        None => Ok(None),
    }
}

/// The zones with their SOA and NS records; each apex goes in `names`.
fn zones(cfg: &Config, serial: u32, names: &mut Names) -> Result<Vec<Zone>, ConfigError> {
    let mut zones = Vec::new();
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
    }
    Ok(zones)
}

/// Every profile, and the endpoints of all of them grouped by profile.
fn profiles_and_endpoints(
    cfg: &Config,
    regions: &[Region],
) -> Result<(Vec<Profile>, Vec<Endpoint>), ConfigError> {
    let mut profiles = Vec::new();
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (pi, p) in cfg.profiles.iter().enumerate() {
        let first = endpoints.len() as u32;
        for (ei, e) in p.endpoints.iter().enumerate() {
            endpoints.push(endpoint(pi, ei, p, e)?);
        }
        let subnets = subnet_table(p, first)?;
        profiles.push(profile(pi, p, first, &endpoints, regions, subnets));
    }
    Ok((profiles, endpoints))
}

/// Endpoint `ei` of profile `pi`, its records encoded.
fn endpoint(
    pi: usize,
    ei: usize,
    p: &ProfileCfg,
    e: &EndpointCfg,
) -> Result<Endpoint, ConfigError> {
    let target = match &e.kind {
        EndpointKind::Target(t) => {
            Target::Cname(records::cname(t, p.ttl).map_err(|m| rec_err("CNAME", m))?)
        }
        EndpointKind::Addresses(addrs) => {
            let mut v4 = Vec::new();
            let mut v6 = Vec::new();
            for a in addrs {
                let r = records::address(*a, p.ttl).map_err(|m| rec_err("address", m))?;
                if a.is_ipv4() { v4.push(r) } else { v6.push(r) }
            }
            Target::Addresses {
                v4: v4.into(),
                v6: v6.into(),
            }
        }
        EndpointKind::Nested {
            profile,
            min_children,
        } => Target::Nested {
            child: *profile as u32,
            min_children: *min_children,
        },
    };
    // Only a monitored profile's endpoints are probed: the others keep no
    // copy of their address or target (a string each, 400,000 of them in
    // a large config).
    let probe_target = p.monitor.as_ref().and_then(|_| {
        e.probe.host.clone().or_else(|| match &e.kind {
            EndpointKind::Addresses(a) => a.first().map(|a| a.to_string()),
            EndpointKind::Target(t) => Some(t.clone()),
            EndpointKind::Nested { .. } => None,
        })
    });
    Ok(Endpoint {
        name: e.name.as_str().into(),
        profile: pi as u32,
        profile_index: ei as u32,
        target,
        region: e.location.map(|r| r as u32).unwrap_or(NO_ID),
        priority: e.priority,
        weight: e.weight,
        enabled: e.enabled,
        always_serve: e.always_serve,
        geo: e.geo.clone().into(),
        probe_target,
        probe: (!e.probe.is_empty()).then(|| Box::new(e.probe.clone())),
    })
}

/// Subnet routing: prefix → endpoint id, and the endpoint without
/// `subnets` ([`NO_ID`] if none, or for other methods, whose table is empty).
fn subnet_table(p: &ProfileCfg, first: u32) -> Result<(PrefixTable, u32), ConfigError> {
    let mut sub = PrefixTableBuilder::new();
    let mut subnet_default = NO_ID;
    if p.routing == Routing::Subnet {
        for (ei, e) in p.endpoints.iter().enumerate() {
            let id = first + ei as u32;
            if e.subnets.is_empty() {
                subnet_default = id;
            }
            for s in &e.subnets {
                sub.push(s.addr(), s.prefix_len(), id);
            }
        }
    }
    let subnets = sub
        .build(true)
        .map_err(|_| rec_err("subnets", "a prefix is claimed twice".into()))?;
    Ok((subnets, subnet_default))
}

/// Profile `pi`, whose endpoints are `endpoints[first..]`: its settings,
/// its priority order, its enabled and nested masks, and its subnet table
/// and catch-all endpoint.
fn profile(
    pi: usize,
    p: &ProfileCfg,
    first: u32,
    endpoints: &[Endpoint],
    regions: &[Region],
    (subnets, subnet_default): (PrefixTable, u32),
) -> Profile {
    let count = p.endpoints.len() as u32;
    let mask_of = |f: &dyn Fn(&Endpoint) -> bool| {
        (0..count.min(64))
            .filter(|i| f(&endpoints[(first + i) as usize]))
            .fold(0u64, |m, i| m | 1 << i)
    };
    Profile {
        id: pi as u32,
        fqdn: p.fqdn.as_str().into(),
        zone: p.zone as u32,
        routing: p.routing,
        ttl: p.ttl,
        ttl_unstable: p.ttl_unstable,
        spill: p.spill,
        enabled: p.enabled,
        max_answers: p.max_answers,
        all_down: p.all_down,
        affinity_subnet: p.affinity_subnet,
        monitor: p.monitor.clone().map(Box::new),
        first,
        count,
        by_priority: by_priority(first, count, endpoints, regions),
        enabled_mask: mask_of(&|e| e.enabled),
        nested_mask: mask_of(&|e| matches!(e.target, Target::Nested { .. })),
        always_mask: mask_of(&|e| e.always_serve),
        subnets,
        subnet_default,
    }
}

/// Endpoints `first .. first + count` sorted by priority, with what
/// performance routing reads of their regions.
fn by_priority(
    first: u32,
    count: u32,
    endpoints: &[Endpoint],
    regions: &[Region],
) -> Box<[Ordered]> {
    let mut ids: Vec<u32> = (first..first + count).collect();
    ids.sort_by_key(|id| endpoints[*id as usize].priority);
    ids.iter()
        .map(|id| {
            let r = regions.get(endpoints[*id as usize].region as usize);
            Ordered {
                id: *id,
                col: r.map(|r| r.latency_col).unwrap_or(u16::MAX),
                lat: r.map(|r| r.lat as f32).unwrap_or(f32::NAN),
                lon: r.map(|r| r.lon as f32).unwrap_or(f32::NAN),
            }
        })
        .collect()
}

/// Empty non-terminals: names between a profile and its zone apex.
fn add_empty_non_terminals(cfg: &Config, names: &mut Names) {
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
}

/// The routing view of the endpoints, same ids.
fn hot_view(endpoints: &[Endpoint]) -> Box<[Hot]> {
    endpoints
        .iter()
        .map(|e| {
            let (child, min_children, nested) = match e.target {
                Target::Nested {
                    child,
                    min_children,
                } => (child, min_children, true),
                _ => (NO_ID, 0, false),
            };
            Hot {
                enabled: e.enabled,
                nested,
                weight: e.weight,
                always_serve: e.always_serve,
                child,
                min_children,
            }
        })
        .collect()
}

/// A health word per endpoint, carried over from `prev` where the same
/// profile has an endpoint of the same name.
fn health_table(
    profiles: &[Profile],
    endpoints: &[Endpoint],
    prev: Option<&Snapshot>,
) -> HealthTable {
    let owner: Vec<(u32, u32)> = endpoints
        .iter()
        .map(|e| (e.profile, e.profile_index))
        .collect();
    let health = HealthTable::new(owner, profiles.len());
    if let Some(prev) = prev {
        carry_health(prev, profiles, endpoints, &health);
    }
    health
}

/// Copies the health word of each endpoint that `prev` has too (the one
/// mechanism by which health crosses a reload). The admin override and the
/// forced monitor state always carry (the engine then writes its admin
/// layers over them before the swap); the monitor's verdict only while the
/// profile stays monitored, or stays unmonitored: a probe's verdict must not
/// outlive the monitor that made it, nor a status set from outside become a
/// probe's.
fn carry_health(
    prev: &Snapshot,
    profiles: &[Profile],
    endpoints: &[Endpoint],
    health: &HealthTable,
) {
    let mut old: HashMap<(&str, &str), (u32, bool)> = HashMap::new();
    for (id, e) in prev.endpoints.iter().enumerate() {
        let p = &prev.profiles[e.profile as usize];
        old.insert((&p.fqdn, &e.name), (id as u32, p.monitor.is_some()));
    }
    for (id, e) in endpoints.iter().enumerate() {
        let p = &profiles[e.profile as usize];
        if let Some(&(oid, was_monitored)) = old.get(&(&*p.fqdn, &*e.name)) {
            let word = prev.health.word(oid);
            let word = if was_monitored == p.monitor.is_some() {
                word
            } else {
                word & !(STATUS_BITS | UNSTEADY_BITS)
            };
            health.set_word(id as u32, word);
            health.set_load(id as u32, prev.health.load(oid));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::health::{AdminState, Forced, MonitorStatus};
    use crate::snapshot::{Node, SourceInfo};
    use crate::testutil::snapshot;

    const CFG: &str = "[[profile]]\nname = \"app.eu\"\nrouting = \"priority\"\n\
        [[profile.endpoint]]\nname = \"a\"\ntarget = \"a.example\"\n\
        [[profile.endpoint]]\nname = \"b\"\ntarget = \"b.example\"\n";

    /// The name table: the apex, each profile, and the empty non-terminals
    /// between a multi-label profile and its apex.
    #[test]
    fn names_table() {
        let s = snapshot(CFG);
        assert!(matches!(
            s.names.get(&b"tm.example"[..]),
            Some(Node::Apex(0))
        ));
        assert!(matches!(
            s.names.get(&b"app.eu.tm.example"[..]),
            Some(Node::Profile(0))
        ));
        assert!(matches!(
            s.names.get(&b"eu.tm.example"[..]),
            Some(Node::Empty(0))
        ));
        assert!(!s.names.contains_key(&b"a.tm.example"[..]));
        assert_eq!(s.find_endpoint("app.eu", "b"), Some(1));
        assert_eq!(s.find_endpoint("app.eu.tm.example", "a"), Some(0));
        assert_eq!(s.find_endpoint("app.eu", "c"), None);
    }

    /// Health carries over a recompile by endpoint identity (profile and
    /// endpoint name), whatever the ids become; new endpoints start fresh.
    #[test]
    fn health_carries_by_identity() {
        let old = snapshot(CFG);
        old.health.set_status(1, MonitorStatus::Degraded);
        old.health.set_admin(0, AdminState::Drain);
        old.health.set_forced(0, Forced::Down);
        // Reordered, with a new endpoint first.
        let text = "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"app.eu\"\nrouting = \"priority\"\n\
             [[profile.endpoint]]\nname = \"new\"\ntarget = \"n.example\"\n\
             [[profile.endpoint]]\nname = \"b\"\ntarget = \"b.example\"\n\
             [[profile.endpoint]]\nname = \"a\"\ntarget = \"a.example\"\n";
        let cfg = crate::config::load_str(text, &crate::config::Origin::string(None)).unwrap();
        let info = SourceInfo {
            path: None,
            hash: 0,
            loaded_at: 0,
        };
        let new = super::Snapshot::compile(&cfg, info, Some(&old)).unwrap();
        let id = |n: &str| new.find_endpoint("app.eu", n).unwrap();
        assert_eq!(new.health.status(id("b")), MonitorStatus::Degraded);
        assert_eq!(new.health.admin(id("a")), AdminState::Drain);
        // The forced state carries, with the verdict under it.
        assert_eq!(new.health.forced(id("a")), Forced::Down);
        assert_eq!(new.health.status(id("a")), MonitorStatus::Degraded);
        assert_eq!(new.health.verdict(id("a")), MonitorStatus::CheckingEndpoint);
        assert_eq!(
            new.health.status(id("new")),
            MonitorStatus::CheckingEndpoint
        );
        assert_eq!(new.health.admin(id("new")), AdminState::None);
    }

    /// A reload shares the latency table of the snapshot before while its
    /// file is unchanged, and reads it again once it changes.
    #[test]
    fn latency_table_shared_while_unchanged() {
        let dir = std::env::temp_dir().join(format!("tm-lat-share-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("lat.csv");
        std::fs::write(&csv, "prefix,eastus,westeurope\n192.0.2.0/24,10,90\n").unwrap();
        let text = "[engine]\nlatency_table = \"lat.csv\"\n\
             [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"www\"\nrouting = \"performance\"\n\
             [[profile.endpoint]]\nname = \"us\"\ntarget = \"us.example\"\nlocation = \"eastus\"\n\
             [[profile.endpoint]]\nname = \"eu\"\ntarget = \"eu.example\"\nlocation = \"westeurope\"\n";
        let origin = crate::config::Origin::string(Some(&dir));
        let compile = |prev: Option<&super::Snapshot>| {
            let cfg = crate::config::load_str(text, &origin).unwrap();
            super::Snapshot::compile(&cfg, SourceInfo::default(), prev).unwrap()
        };
        let a = compile(None);
        let b = compile(Some(&a));
        let (ta, tb) = (a.latency.as_ref().unwrap(), b.latency.as_ref().unwrap());
        assert!(std::sync::Arc::ptr_eq(ta, tb));
        std::fs::write(
            &csv,
            "prefix,eastus,westeurope\n192.0.2.0/24,95,5\n198.51.100.0/24,1,2\n",
        )
        .unwrap();
        let c = compile(Some(&b));
        let tc = c.latency.as_ref().unwrap();
        assert!(!std::sync::Arc::ptr_eq(tb, tc));
        assert_eq!(tc.len(), 2);
        assert_eq!(tc.row("192.0.2.1".parse().unwrap()).unwrap().0, [95, 5]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
