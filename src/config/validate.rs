//! Validation: every rule of SPEC §2, turning the raw serde model into a
//! [`Config`] in which nothing can be found wrong later.

use super::error::{ConfigError, ConfigWarning, Seg, format_path, line_col, locate};
use super::model::*;
use super::{Origin, RawConfig, RawEndpoint, RawMonitor, RawProfile};
use crate::geo::builtin;
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

struct V<'a> {
    src: &'a str,
    origin: &'a Origin,
}

impl V<'_> {
    fn err(&self, segs: &[Seg], message: impl Into<String>) -> ConfigError {
        let (line, col) = locate(self.src, segs)
            .map(|o| line_col(self.src, o))
            .unwrap_or((0, 0));
        ConfigError {
            file: self.origin.file.clone(),
            line,
            col,
            path: format_path(segs),
            message: message.into(),
        }
    }
}

fn p(parts: &[Seg], more: &[Seg]) -> Vec<Seg> {
    let mut v = parts.to_vec();
    v.extend_from_slice(more);
    v
}
fn k(s: &str) -> Seg {
    Seg::Key(s.to_string())
}
fn i(n: usize) -> Seg {
    Seg::Index(n)
}

/// Checks a DNS name in presentation form (no trailing dot expected, one is
/// tolerated): labels of 1..=63 octets, at most 255 octets in wire form,
/// letters, digits, `-` and `_` only.
pub fn valid_dns_name(name: &str) -> Result<(), String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() {
        return Err("an empty name is not a valid DNS name".into());
    }
    if n.len() + 2 > 255 {
        return Err(format!(
            "`{name}` is {} octets in wire form; at most 255 are allowed",
            n.len() + 2
        ));
    }
    for label in n.split('.') {
        if label.is_empty() {
            return Err(format!("`{name}` has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "`{name}` has a label of {} octets; at most 63 are allowed",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "`{name}` contains `{c}`; DNS names here use letters, digits, `-` and `_`"
            ));
        }
    }
    Ok(())
}

fn norm_name(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// Parses `"500ms"`, `"10s"`, `"5m"`, `"1h"`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; expected a whole number and a unit, e.g. \"500ms\", \"10s\", \"5m\", \"1h\""))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(format!(
                "`{s}` is not a duration: the unit `{}` is not one of ms, s, m, h (e.g. \"10s\")",
                unit.trim()
            ));
        }
    };
    Ok(d)
}

fn range_i64(v: &V, segs: &[Seg], x: i64, lo: i64, hi: i64) -> Result<i64, ConfigError> {
    if x < lo || x > hi {
        Err(v.err(segs, format!("{x} is out of range {lo}..={hi}")))
    } else {
        Ok(x)
    }
}

pub(crate) fn validate(raw: RawConfig, src: &str, origin: &Origin) -> Result<Config, ConfigError> {
    let v = V { src, origin };

    // [engine]
    let e = &raw.engine;
    let watch_interval = match &e.watch_interval {
        Some(s) => parse_duration(s).map_err(|m| v.err(&[k("engine"), k("watch_interval")], m))?,
        None => Duration::from_secs(2),
    };
    let probe_workers = match e.probe_workers {
        Some(n) => range_i64(&v, &[k("engine"), k("probe_workers")], n, 1, 1024)? as u32,
        None => 16,
    };
    let resolve = |s: &str| {
        let pb = PathBuf::from(s);
        if pb.is_absolute() {
            pb
        } else {
            origin.base_dir.join(pb)
        }
    };
    let geoip_db = e.geoip_db.as_deref().map(resolve);
    let latency_table = e.latency_table.as_deref().map(resolve);
    for (key, val) in [
        ("geoip_db", &e.geoip_db),
        ("latency_table", &e.latency_table),
    ] {
        if val.as_deref() == Some("") {
            return Err(v.err(
                &[k("engine"), k(key)],
                "an empty path; leave the key out instead",
            ));
        }
    }

    // [[region]]
    let mut regions: Vec<RegionCfg> = builtin::regions()
        .iter()
        .map(|r| RegionCfg {
            name: r.name.to_string(),
            lat: r.lat,
            lon: r.lon,
        })
        .collect();
    let mut seen_cfg_regions = HashSet::new();
    for (ri, r) in raw.region.iter().enumerate() {
        let base = [k("region"), i(ri)];
        let name = r.name.to_ascii_lowercase();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(v.err(
                &p(&base, &[k("name")]),
                format!(
                    "`{}` is not a region name; use letters, digits, `-` and `_`",
                    r.name
                ),
            ));
        }
        if !seen_cfg_regions.insert(name.clone()) {
            return Err(v.err(
                &p(&base, &[k("name")]),
                format!("region `{name}` is defined twice"),
            ));
        }
        if !(-90.0..=90.0).contains(&r.lat) {
            return Err(v.err(
                &p(&base, &[k("lat")]),
                format!("{} is out of range -90..=90", r.lat),
            ));
        }
        if !(-180.0..=180.0).contains(&r.lon) {
            return Err(v.err(
                &p(&base, &[k("lon")]),
                format!("{} is out of range -180..=180", r.lon),
            ));
        }
        if let Some(existing) = regions.iter_mut().find(|x| x.name == name) {
            existing.lat = r.lat;
            existing.lon = r.lon;
        } else {
            regions.push(RegionCfg {
                name,
                lat: r.lat,
                lon: r.lon,
            });
        }
    }
    let region_index: HashMap<String, usize> = regions
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), i))
        .collect();

    // [[zone]]
    let mut zones: Vec<ZoneCfg> = Vec::new();
    for (zi, z) in raw.zone.iter().enumerate() {
        let base = [k("zone"), i(zi)];
        valid_dns_name(&z.name).map_err(|m| v.err(&p(&base, &[k("name")]), m))?;
        let name = norm_name(&z.name);
        if zones.iter().any(|x| x.name == name) {
            return Err(v.err(
                &p(&base, &[k("name")]),
                format!("zone `{name}` is defined twice"),
            ));
        }
        if z.nameservers.is_empty() {
            return Err(v.err(
                &p(&base, &[k("name")]),
                "a zone needs at least one entry in `nameservers` (its NS records)",
            ));
        }
        let mut nameservers = Vec::new();
        for (ni, ns) in z.nameservers.iter().enumerate() {
            valid_dns_name(ns).map_err(|m| v.err(&p(&base, &[k("nameservers"), i(ni)]), m))?;
            nameservers.push(norm_name(ns));
        }
        let hostmaster = match &z.hostmaster {
            Some(h) => {
                let h2 = h.replacen('@', ".", 1);
                valid_dns_name(&h2).map_err(|m| v.err(&p(&base, &[k("hostmaster")]), m))?;
                norm_name(&h2)
            }
            None => format!("hostmaster.{name}"),
        };
        let ttl = match z.ttl {
            Some(t) => range_i64(&v, &p(&base, &[k("ttl")]), t, 0, 2_147_483_647)? as u32,
            None => 300,
        };
        zones.push(ZoneCfg {
            name,
            nameservers,
            hostmaster,
            ttl,
        });
    }
    if zones.is_empty() {
        // An empty or truncated file must never replace a working config.
        return Err(v.err(
            &[],
            "no [[zone]] is defined; a configuration needs at least one zone (is the file empty or cut short?)",
        ));
    }

    // [[profile]]: first pass names, so nested references can be resolved.
    let mut fqdns: Vec<String> = Vec::new();
    let mut zone_of: Vec<usize> = Vec::new();
    for (pi, rp) in raw.profile.iter().enumerate() {
        let base = [k("profile"), i(pi)];
        let name = norm_name(&rp.name);
        valid_dns_name(&name).map_err(|m| v.err(&p(&base, &[k("name")]), m))?;
        let zi = match &rp.zone {
            Some(zn) => {
                let zn = norm_name(zn);
                zones.iter().position(|z| z.name == zn).ok_or_else(|| {
                    v.err(
                        &p(&base, &[k("zone")]),
                        format!("zone `{zn}` is not defined in any [[zone]]"),
                    )
                })?
            }
            None if zones.len() == 1 => 0,
            None => {
                return Err(v.err(
                    &p(&base, &[k("name")]),
                    format!("`zone` must be given: there are {} zones", zones.len()),
                ));
            }
        };
        let fqdn = format!("{name}.{}", zones[zi].name);
        valid_dns_name(&fqdn).map_err(|m| v.err(&p(&base, &[k("name")]), m))?;
        if fqdns.contains(&fqdn) {
            return Err(v.err(
                &p(&base, &[k("name")]),
                format!("profile `{fqdn}` is defined twice"),
            ));
        }
        // A profile name may not shadow another zone's apex.
        if zones.iter().any(|z| z.name == fqdn) {
            return Err(v.err(
                &p(&base, &[k("name")]),
                format!("`{fqdn}` is the apex of a zone"),
            ));
        }
        fqdns.push(fqdn);
        zone_of.push(zi);
    }

    let mut profiles = Vec::new();
    for (pi, rp) in raw.profile.iter().enumerate() {
        profiles.push(profile(&v, pi, rp, &fqdns, &zone_of, &region_index)?);
    }
    check_nesting(&v, &profiles)?;
    let warnings = secret_header_warnings(&v, &profiles);

    Ok(Config {
        engine: EngineSettings {
            watch_interval,
            probe_workers,
            geoip_db,
            latency_table,
        },
        regions,
        zones,
        profiles,
        warnings,
    })
}

fn parse_routing(s: &str) -> Option<Routing> {
    Some(match s {
        "performance" => Routing::Performance,
        "priority" => Routing::Priority,
        "weighted" => Routing::Weighted,
        "geographic" => Routing::Geographic,
        "multivalue" => Routing::Multivalue,
        "subnet" => Routing::Subnet,
        _ => return None,
    })
}

fn profile(
    v: &V,
    pi: usize,
    rp: &RawProfile,
    fqdns: &[String],
    zone_of: &[usize],
    regions: &HashMap<String, usize>,
) -> Result<ProfileCfg, ConfigError> {
    let base = [k("profile"), i(pi)];
    let routing = parse_routing(&rp.routing).ok_or_else(|| {
        v.err(&p(&base, &[k("routing")]), format!(
            "`{}` is not a routing method; expected one of performance, priority, weighted, geographic, multivalue, subnet",
            rp.routing
        ))
    })?;
    let ttl = match rp.ttl {
        Some(t) => range_i64(v, &p(&base, &[k("ttl")]), t, 0, 2_147_483_647)? as u32,
        None => 60,
    };
    let max_answers = match rp.max_answers {
        Some(n) => range_i64(v, &p(&base, &[k("max_answers")]), n, 1, 8)? as u8,
        None => 3,
    };
    let all_down = match rp.all_down.as_deref() {
        None | Some("fail-open") => AllDown::FailOpen,
        Some("fail-closed") => AllDown::FailClosed,
        Some(o) => {
            return Err(v.err(
                &p(&base, &[k("all_down")]),
                format!("`{o}` is not an all_down policy; expected `fail-open` or `fail-closed`"),
            ));
        }
    };
    let affinity_subnet = match rp.affinity.as_deref() {
        None | Some("none") => false,
        Some("client-subnet") => true,
        Some(o) => {
            return Err(v.err(
                &p(&base, &[k("affinity")]),
                format!("`{o}` is not an affinity; expected `none` or `client-subnet`"),
            ));
        }
    };
    if affinity_subnet && routing != Routing::Weighted {
        return Err(v.err(
            &p(&base, &[k("affinity")]),
            "affinity applies to weighted routing only",
        ));
    }
    let monitor = match &rp.monitor {
        Some(m) => Some(monitor(v, &p(&base, &[k("monitor")]), m)?),
        None => None,
    };
    if rp.endpoint.is_empty() {
        return Err(v.err(
            &p(&base, &[k("name")]),
            "a profile needs at least one [[profile.endpoint]]",
        ));
    }

    let mut endpoints: Vec<EndpointCfg> = Vec::new();
    let mut priorities: HashMap<u16, usize> = HashMap::new();
    for (ei, re) in rp.endpoint.iter().enumerate() {
        let eb = p(&base, &[k("endpoint"), i(ei)]);
        let my_zone = fqdns[pi].get(norm_name(&rp.name).len() + 1..).unwrap_or("");
        let ep = endpoint(v, &eb, ei, re, routing, fqdns, my_zone, regions)?;
        if endpoints.iter().any(|x| x.name == ep.name) {
            return Err(v.err(
                &p(&eb, &[k("name")]),
                format!("endpoint `{}` is defined twice in this profile", ep.name),
            ));
        }
        if let Some(prev) = priorities.insert(ep.priority, ei) {
            return Err(v.err(&p(&eb, &[k("priority")]), format!(
                "priority {} is already used by endpoint[{prev}]; priorities are unique within a profile (the default is the position in the list)",
                ep.priority
            )));
        }
        endpoints.push(ep);
    }

    // Method-specific rules.
    match routing {
        Routing::Geographic => {
            let mut claimed: HashMap<GeoCode, usize> = HashMap::new();
            for (ei, ep) in endpoints.iter().enumerate() {
                for (gi, g) in ep.geo.iter().enumerate() {
                    if let Some(prev) = claimed.insert(*g, ei) {
                        return Err(v.err(
                            &p(&base, &[k("endpoint"), i(ei), k("geo"), i(gi)]),
                            format!(
                                "code `{}` is already claimed by endpoint[{prev}]",
                                geo_str(g)
                            ),
                        ));
                    }
                }
            }
        }
        Routing::Subnet => {
            let mut claimed: HashMap<IpNet, usize> = HashMap::new();
            let mut catch_all: Option<usize> = None;
            for (ei, ep) in endpoints.iter().enumerate() {
                if ep.subnets.is_empty() {
                    if let Some(prev) = catch_all {
                        return Err(v.err(&p(&base, &[k("endpoint"), i(ei), k("name")]), format!(
                            "endpoint[{prev}] already has no `subnets`; at most one endpoint may catch the rest"
                        )));
                    }
                    catch_all = Some(ei);
                }
                for (si, s) in ep.subnets.iter().enumerate() {
                    if let Some(prev) = claimed.insert(*s, ei) {
                        return Err(v.err(
                            &p(&base, &[k("endpoint"), i(ei), k("subnets"), i(si)]),
                            format!("prefix {s} is already claimed by endpoint[{prev}]"),
                        ));
                    }
                }
            }
        }
        _ => {}
    }

    Ok(ProfileCfg {
        name: norm_name(&rp.name),
        fqdn: fqdns[pi].clone(),
        zone: zone_of[pi],
        routing,
        ttl,
        enabled: rp.enabled.unwrap_or(true),
        max_answers,
        all_down,
        affinity_subnet,
        monitor,
        endpoints,
    })
}

fn geo_str(g: &GeoCode) -> String {
    match g {
        GeoCode::Country(c) | GeoCode::Continent(c) => String::from_utf8_lossy(c).into_owned(),
        GeoCode::World => "WORLD".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn endpoint(
    v: &V,
    eb: &[Seg],
    ei: usize,
    re: &RawEndpoint,
    routing: Routing,
    fqdns: &[String],
    my_zone: &str,
    regions: &HashMap<String, usize>,
) -> Result<EndpointCfg, ConfigError> {
    let name = re.name.clone();
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(v.err(
            &p(eb, &[k("name")]),
            format!(
                "`{name}` is not an endpoint name; use 1 to 63 letters, digits, `-`, `_` or `.`"
            ),
        ));
    }
    let given = [
        re.target.is_some(),
        re.addresses.is_some(),
        re.profile.is_some(),
    ];
    if given.iter().filter(|x| **x).count() != 1 {
        return Err(v.err(
            &p(eb, &[k("name")]),
            "exactly one of `target`, `addresses` or `profile` must be given",
        ));
    }
    let kind = if let Some(t) = &re.target {
        valid_dns_name(t).map_err(|m| v.err(&p(eb, &[k("target")]), m))?;
        EndpointKind::Target(norm_name(t))
    } else if let Some(addrs) = &re.addresses {
        if addrs.is_empty() {
            return Err(v.err(&p(eb, &[k("addresses")]), "at least one address is needed"));
        }
        let mut out = Vec::new();
        for (ai, a) in addrs.iter().enumerate() {
            let ip: IpAddr = a.parse().map_err(|_| {
                v.err(
                    &p(eb, &[k("addresses"), i(ai)]),
                    format!("`{a}` is not an IPv4 or IPv6 address"),
                )
            })?;
            if out.contains(&ip) {
                return Err(v.err(
                    &p(eb, &[k("addresses"), i(ai)]),
                    format!("{ip} is listed twice"),
                ));
            }
            out.push(ip);
        }
        EndpointKind::Addresses(out)
    } else {
        let child = norm_name(re.profile.as_deref().unwrap_or(""));
        let full = format!("{child}.{my_zone}");
        let idx = fqdns
            .iter()
            .position(|f| *f == child)
            .or_else(|| fqdns.iter().position(|f| *f == full))
            .ok_or_else(|| {
                v.err(
                    &p(eb, &[k("profile")]),
                    format!("profile `{child}` is not defined"),
                )
            })?;
        let min_children = match re.min_children {
            Some(n) => range_i64(v, &p(eb, &[k("min_children")]), n, 1, 1000)? as u32,
            None => 1,
        };
        EndpointKind::Nested {
            profile: idx,
            min_children,
        }
    };
    if re.min_children.is_some() && !matches!(kind, EndpointKind::Nested { .. }) {
        return Err(v.err(
            &p(eb, &[k("min_children")]),
            "min_children applies to nested (`profile = …`) endpoints only",
        ));
    }

    let location = match &re.location {
        Some(l) => {
            let ln = l.to_ascii_lowercase();
            Some(*regions.get(&ln).ok_or_else(|| {
                v.err(&p(eb, &[k("location")]), format!(
                    "`{l}` is not a known region; add it with [[region]] (name, lat, lon) or use a built-in name such as eastus or westeurope"
                ))
            })?)
        }
        None => None,
    };
    if routing == Routing::Performance && location.is_none() {
        return Err(v.err(
            &p(eb, &[k("name")]),
            "performance routing needs a `location` on every endpoint",
        ));
    }
    if routing == Routing::Multivalue && !matches!(kind, EndpointKind::Addresses(_)) {
        return Err(v.err(
            &p(eb, &[k("name")]),
            "multivalue routing takes only `addresses` endpoints (no `target` or nested `profile`)",
        ));
    }
    let priority = match re.priority {
        Some(n) => range_i64(v, &p(eb, &[k("priority")]), n, 1, 1000)? as u16,
        None => {
            if ei >= 1000 {
                return Err(v.err(
                    &p(eb, &[k("name")]),
                    "more than 1000 endpoints in one profile",
                ));
            }
            (ei + 1) as u16
        }
    };
    let weight = match re.weight {
        Some(n) => range_i64(v, &p(eb, &[k("weight")]), n, 1, 1000)? as u32,
        None => 1,
    };
    let mut geo = Vec::new();
    for (gi, g) in re.geo.iter().flatten().enumerate() {
        let up = g.to_ascii_uppercase();
        let code = if up == "WORLD" {
            GeoCode::World
        } else if up.len() == 2 && builtin::is_continent(&up) {
            GeoCode::Continent([up.as_bytes()[0], up.as_bytes()[1]])
        } else if up.len() == 2 && builtin::country(&up).is_some() {
            GeoCode::Country([up.as_bytes()[0], up.as_bytes()[1]])
        } else {
            return Err(v.err(&p(eb, &[k("geo"), i(gi)]), format!(
                "`{g}` is not an ISO 3166-1 alpha-2 country, a continent code (AF AN AS EU NA OC SA) or WORLD"
            )));
        };
        if geo.contains(&code) {
            return Err(v.err(&p(eb, &[k("geo"), i(gi)]), format!("`{g}` is listed twice")));
        }
        geo.push(code);
    }
    if routing == Routing::Geographic && geo.is_empty() {
        return Err(v.err(
            &p(eb, &[k("name")]),
            "geographic routing needs a `geo` list on every endpoint",
        ));
    }
    let mut subnets = Vec::new();
    for (si, s) in re.subnets.iter().flatten().enumerate() {
        let net: IpNet = s.parse().map_err(|_| {
            v.err(
                &p(eb, &[k("subnets"), i(si)]),
                format!("`{s}` is not a CIDR prefix such as 198.51.100.0/24"),
            )
        })?;
        if net.trunc() != net {
            return Err(v.err(
                &p(eb, &[k("subnets"), i(si)]),
                format!("`{s}` has host bits set; did you mean {}?", net.trunc()),
            ));
        }
        if subnets.contains(&net) {
            return Err(v.err(
                &p(eb, &[k("subnets"), i(si)]),
                format!("{net} is listed twice"),
            ));
        }
        subnets.push(net);
    }
    let (mut probe_host, mut probe_port, mut probe_path) = (None, None, None);
    if let Some(pr) = &re.probe {
        if let Some(h) = &pr.host {
            if h.parse::<IpAddr>().is_err() {
                valid_dns_name(h).map_err(|m| v.err(&p(eb, &[k("probe"), k("host")]), m))?;
            }
            probe_host = Some(h.clone());
        }
        if let Some(port) = pr.port {
            probe_port =
                Some(range_i64(v, &p(eb, &[k("probe"), k("port")]), port, 1, 65535)? as u16);
        }
        if let Some(path) = &pr.path {
            check_probe_path(path).map_err(|e| v.err(&p(eb, &[k("probe"), k("path")]), e))?;
            probe_path = Some(path.clone());
        }
    }
    Ok(EndpointCfg {
        name,
        kind,
        location,
        priority,
        weight,
        enabled: re.enabled.unwrap_or(true),
        geo,
        subnets,
        probe_host,
        probe_port,
        probe_path,
    })
}

fn monitor(v: &V, mb: &[Seg], m: &RawMonitor) -> Result<MonitorCfg, ConfigError> {
    let protocol = match m.protocol.as_deref() {
        None | Some("http") | Some("HTTP") => ProbeProtocol::Http,
        Some("https") | Some("HTTPS") => ProbeProtocol::Https,
        Some("tcp") | Some("TCP") => ProbeProtocol::Tcp,
        Some(o) => {
            return Err(v.err(
                &p(mb, &[k("protocol")]),
                format!("`{o}` is not a protocol; expected http, https or tcp"),
            ));
        }
    };
    let port = match m.port {
        Some(n) => range_i64(v, &p(mb, &[k("port")]), n, 1, 65535)? as u16,
        None if protocol == ProbeProtocol::Https => 443,
        None => 80,
    };
    let path = m.path.clone().unwrap_or_else(|| "/".to_string());
    check_probe_path(&path).map_err(|e| v.err(&p(mb, &[k("path")]), e))?;
    let interval = match &m.interval {
        Some(s) => parse_duration(s).map_err(|e| v.err(&p(mb, &[k("interval")]), e))?,
        None => Duration::from_secs(30),
    };
    if interval < Duration::from_secs(1) || interval > Duration::from_secs(3600) {
        return Err(v.err(
            &p(mb, &[k("interval")]),
            format!(
                "{} is out of range 1s..=1h",
                m.interval.as_deref().unwrap_or("")
            ),
        ));
    }
    let timeout = match &m.timeout {
        Some(s) => {
            let t = parse_duration(s).map_err(|e| v.err(&p(mb, &[k("timeout")]), e))?;
            if t >= interval || t.is_zero() {
                return Err(v.err(
                    &p(mb, &[k("timeout")]),
                    format!(
                        "{s} must be more than 0 and less than the interval ({})",
                        m.interval.as_deref().unwrap_or("30s")
                    ),
                ));
            }
            t
        }
        // Azure's default is 10 s; keep it below the interval.
        None => Duration::from_secs(10).min(interval.mul_f64(0.9)),
    };
    let tolerated_failures = match m.tolerated_failures {
        Some(n) => range_i64(v, &p(mb, &[k("tolerated_failures")]), n, 0, 9)? as u32,
        None => 3,
    };
    let recovery_successes = match m.recovery_successes {
        Some(n) => range_i64(v, &p(mb, &[k("recovery_successes")]), n, 1, 10)? as u32,
        None => 1,
    };
    let mut expected_status = Vec::new();
    let list = m
        .expected_status
        .clone()
        .unwrap_or_else(|| vec!["200-299".to_string()]);
    if list.is_empty() {
        return Err(v.err(
            &p(mb, &[k("expected_status")]),
            "at least one status or range is needed",
        ));
    }
    for (si, s) in list.iter().enumerate() {
        let bad = || {
            v.err(
                &p(mb, &[k("expected_status"), i(si)]),
                format!(
                    "`{s}` is not a status or range such as \"200\" or \"200-299\" (100..=599)"
                ),
            )
        };
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u16>().map_err(|_| bad())?,
                b.trim().parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let x = s.trim().parse::<u16>().map_err(|_| bad())?;
                (x, x)
            }
        };
        if !(100..=599).contains(&a) || !(100..=599).contains(&b) || a > b {
            return Err(bad());
        }
        expected_status.push((a, b));
    }
    for (name, value) in &m.headers {
        check_header(name, value).map_err(|e| v.err(&p(mb, &[k("headers"), k(name)]), e))?;
    }
    let headers = m
        .headers
        .iter()
        .map(|(a, b)| (a.clone(), b.clone()))
        .collect();
    Ok(MonitorCfg {
        protocol,
        port,
        path,
        interval,
        timeout,
        tolerated_failures,
        expected_status,
        headers,
        verify_tls: m.verify_tls.unwrap_or(false),
        recovery_successes,
    })
}

/// A probe path as the probe will send it: it must parse as the path and
/// query of a URL exactly as the HTTP client parses it (the `http` crate that
/// ureq uses), so a config that loads never fails every probe with "invalid
/// uri character".
fn check_probe_path(path: &str) -> Result<(), String> {
    use ureq::http::uri::{PathAndQuery, Uri};
    if !path.starts_with('/') {
        return Err(format!("{} must start with `/`", shown(path)));
    }
    if path.contains('#') {
        return Err(format!(
            "{} contains `#`, which starts a fragment that is never sent; write it as %23",
            shown(path)
        ));
    }
    let bad = || {
        format!(
            "{} is not a valid URL path and query: it contains a space, a control character or another character a URL cannot carry; percent-encode it (a space is %20)",
            shown(path)
        )
    };
    path.parse::<PathAndQuery>().map_err(|_| bad())?;
    format!("http://probe.invalid{path}")
        .parse::<Uri>()
        .map_err(|_| bad())?;
    Ok(())
}

/// A probe header as the probe will send it: the name an HTTP token, the
/// value free of CR, LF, NUL and other control characters (tab allowed),
/// both as the `http` crate parses them; a `Host` value also a valid
/// `host[:port]`.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    use ureq::http::header::{HeaderName, HeaderValue};
    use ureq::http::uri::Authority;
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!(
            "{} is not a valid header name: one or more of the letters, digits and !#$%&'*+-.^_`|~ (no spaces, colons or control characters)",
            shown(name)
        ));
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "the value {} contains a line break (CR or LF), NUL or another control character; a header value is one line of text",
            shown(value)
        ));
    }
    if name.eq_ignore_ascii_case("host")
        && (value.contains('@') || value.parse::<Authority>().is_err())
    {
        return Err(format!(
            "the value {} is not a host name or address with an optional port (`www.example.com`, `www.example.com:8080`)",
            shown(value)
        ));
    }
    Ok(())
}

/// User text quoted for a message, control characters escaped.
fn shown(s: &str) -> String {
    format!("`{}`", s.escape_debug())
}

/// Whether a probe header probably carries a credential: `Authorization`,
/// `Proxy-Authorization`, `Cookie`, or a name containing `token`, `key`,
/// `secret` or `auth` (any case).
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "cookie"
        || ["auth", "token", "key", "secret"]
            .iter()
            .any(|w| n.contains(w))
}

/// One warning per secret-looking header of a monitor that sends it where
/// it can be read or captured: over plain HTTP, or over HTTPS without
/// certificate verification (`verify_tls = false`, the default). Names the
/// profile and the endpoints probed with it.
fn secret_header_warnings(v: &V, profiles: &[ProfileCfg]) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    for (pi, prof) in profiles.iter().enumerate() {
        let Some(m) = &prof.monitor else { continue };
        let how = match (m.protocol, m.verify_tls) {
            (ProbeProtocol::Http, _) => "in clear text over HTTP",
            (ProbeProtocol::Https, false) => {
                "over HTTPS without certificate verification (verify_tls = false): anyone on the path can impersonate the endpoint and read it"
            }
            _ => continue,
        };
        let probed: Vec<&str> = prof
            .endpoints
            .iter()
            .filter(|e| !matches!(e.kind, EndpointKind::Nested { .. }))
            .map(|e| e.name.as_str())
            .collect();
        if probed.is_empty() {
            continue;
        }
        let mut names = probed
            .iter()
            .take(5)
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if probed.len() > 5 {
            names.push_str(&format!(" and {} more", probed.len() - 5));
        }
        for (h, _) in &m.headers {
            if !is_secret_header(h) {
                continue;
            }
            out.push(v.err(
                &[k("profile"), i(pi), k("monitor"), k("headers"), k(h)],
                format!(
                    "header {} looks like a secret and is sent to endpoint(s) {names} of profile `{}` {how}; use https with verify_tls = true",
                    shown(h),
                    prof.fqdn
                ),
            ));
        }
    }
    out
}

/// Nested profiles: no cycles, depth ≤ 10.
fn check_nesting(v: &V, profiles: &[ProfileCfg]) -> Result<(), ConfigError> {
    fn depth(
        v: &V,
        profiles: &[ProfileCfg],
        pi: usize,
        stack: &mut Vec<usize>,
        memo: &mut HashMap<usize, usize>,
    ) -> Result<usize, ConfigError> {
        if let Some(d) = memo.get(&pi) {
            return Ok(*d);
        }
        if stack.contains(&pi) {
            let names: Vec<&str> = stack
                .iter()
                .chain(std::iter::once(&pi))
                .map(|x| profiles[*x].fqdn.as_str())
                .collect();
            return Err(v.err(
                &[k("profile"), i(stack[0]), k("name")],
                format!("nested profiles form a cycle: {}", names.join(" -> ")),
            ));
        }
        stack.push(pi);
        let mut d = 1;
        for (ei, ep) in profiles[pi].endpoints.iter().enumerate() {
            if let EndpointKind::Nested { profile, .. } = ep.kind {
                let cd = depth(v, profiles, profile, stack, memo)? + 1;
                if cd > 10 {
                    return Err(v.err(
                        &[k("profile"), i(pi), k("endpoint"), i(ei), k("profile")],
                        "profiles are nested more than 10 deep",
                    ));
                }
                d = d.max(cd);
            }
        }
        stack.pop();
        memo.insert(pi, d);
        Ok(d)
    }
    let mut memo = HashMap::new();
    for pi in 0..profiles.len() {
        depth(v, profiles, pi, &mut Vec::new(), &mut memo)?;
    }
    Ok(())
}
