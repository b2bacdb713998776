//! `[[profile]]`: the names (a first pass over every profile, so nested
//! references resolve in any order), each profile's settings, and the
//! rules of geographic and subnet routing that span its endpoints.

use super::dns_names::{normalized, valid_dns_name};
use super::endpoints::{self, EndpointScope};
use super::{Locator, in_range, index, join, key, monitor};
use crate::config::RawProfile;
use crate::config::error::{ConfigError, Seg};
use crate::config::model::{AllDown, EndpointCfg, GeoCode, ProfileCfg, Routing, ZoneCfg};
use ipnet::IpNet;
use std::collections::HashMap;

/// The full name and zone of every profile, by position in the file.
pub(super) struct ProfileNames {
    /// `<name>.<zone>`, lowercase, no trailing dot.
    pub(super) fqdns: Vec<String>,
    /// Index into the zones.
    pub(super) zone_of: Vec<usize>,
    /// Full name → position (duplicates and nested references are found
    /// by a hash probe, not a scan: a config may have 1,000,000 profiles).
    pub(super) by_fqdn: HashMap<String, usize>,
}

/// First pass: each profile's full name, unique, valid, and not a zone apex.
pub(super) fn names(
    loc: &Locator,
    raw: &[RawProfile],
    zones: &[ZoneCfg],
) -> Result<ProfileNames, ConfigError> {
    let mut names = ProfileNames {
        fqdns: Vec::new(),
        zone_of: Vec::new(),
        by_fqdn: HashMap::with_capacity(raw.len()),
    };
    for (pi, rp) in raw.iter().enumerate() {
        let base = [key("profile"), index(pi)];
        let name = normalized(&rp.name);
        valid_dns_name(&name).map_err(|m| loc.error(&join(&base, &[key("name")]), m))?;
        let zi = zone_of(loc, &base, rp, zones)?;
        let fqdn = format!("{name}.{}", zones[zi].name);
        valid_dns_name(&fqdn).map_err(|m| loc.error(&join(&base, &[key("name")]), m))?;
        if names.by_fqdn.contains_key(&fqdn) {
            return Err(loc.error(
                &join(&base, &[key("name")]),
                format!("profile `{fqdn}` is defined twice"),
            ));
        }
        // A profile name may not shadow another zone's apex.
        if zones.iter().any(|z| z.name == fqdn) {
            return Err(loc.error(
                &join(&base, &[key("name")]),
                format!("`{fqdn}` is the apex of a zone"),
            ));
        }
        names.by_fqdn.insert(fqdn.clone(), pi);
        names.fqdns.push(fqdn);
        names.zone_of.push(zi);
    }
    Ok(names)
}

/// The zone a profile is in: the one it names, or the only one.
fn zone_of(
    loc: &Locator,
    base: &[Seg],
    rp: &RawProfile,
    zones: &[ZoneCfg],
) -> Result<usize, ConfigError> {
    match &rp.zone {
        Some(zn) => {
            let zn = normalized(zn);
            zones.iter().position(|z| z.name == zn).ok_or_else(|| {
                loc.error(
                    &join(base, &[key("zone")]),
                    format!("zone `{zn}` is not defined in any [[zone]]"),
                )
            })
        }
        None if zones.len() == 1 => Ok(0),
        None => Err(loc.error(
            &join(base, &[key("name")]),
            format!("`zone` must be given: there are {} zones", zones.len()),
        )),
    }
}

/// Profile `pi`: its settings, monitor and endpoints.
pub(super) fn profile(
    loc: &Locator,
    pi: usize,
    rp: &RawProfile,
    names: &ProfileNames,
    regions: &HashMap<String, usize>,
) -> Result<ProfileCfg, ConfigError> {
    let base = [key("profile"), index(pi)];
    let routing = routing(loc, &base, &rp.routing)?;
    let ttl = match rp.ttl {
        Some(t) => in_range(loc, &join(&base, &[key("ttl")]), t, 0, 2_147_483_647)? as u32,
        None => 60,
    };
    let ttl_unstable = match rp.ttl_unstable {
        Some(t) => {
            let at = join(&base, &[key("ttl_unstable")]);
            let t = in_range(loc, &at, t, 0, 2_147_483_647)? as u32;
            if t > ttl {
                return Err(loc.error(
                    &at,
                    format!("ttl_unstable ({t}) must not be above ttl ({ttl})"),
                ));
            }
            t
        }
        None => ttl.min(10),
    };
    let spill = spill(loc, &base, rp, routing)?;
    let max_answers = match rp.max_answers {
        Some(n) => in_range(
            loc,
            &join(&base, &[key("max_answers")]),
            n,
            1,
            crate::answer::MAX_ANSWERS as i64,
        )? as u8,
        None => 3,
    };
    let all_down = all_down(loc, &base, rp.all_down.as_deref())?;
    let affinity_subnet = affinity_subnet(loc, &base, rp.affinity.as_deref(), routing)?;
    let monitor = match &rp.monitor {
        Some(m) => Some(monitor::monitor(loc, &join(&base, &[key("monitor")]), m)?),
        None => None,
    };
    if rp.endpoint.is_empty() {
        return Err(loc.error(
            &join(&base, &[key("name")]),
            "a profile needs at least one [[profile.endpoint]]",
        ));
    }
    let scope = EndpointScope {
        routing,
        my_fqdn: &names.fqdns[pi],
        by_fqdn: &names.by_fqdn,
        my_zone: names.fqdns[pi]
            .get(normalized(&rp.name).len() + 1..)
            .unwrap_or(""),
        regions,
        protocol: monitor.as_ref().map(|m| m.protocol),
    };
    let endpoints = endpoints::endpoints(loc, &base, rp, &scope)?;
    match routing {
        Routing::Geographic => check_geo_claims(loc, &base, &endpoints)?,
        Routing::Subnet => check_subnet_claims(loc, &base, &endpoints)?,
        _ => {}
    }
    Ok(ProfileCfg {
        name: normalized(&rp.name),
        fqdn: names.fqdns[pi].clone(),
        zone: names.zone_of[pi],
        routing,
        ttl,
        ttl_unstable,
        spill,
        enabled: rp.enabled.unwrap_or(true),
        max_answers,
        all_down,
        affinity_subnet,
        monitor,
        endpoints,
    })
}

/// `spill_start` and `spill_full`: loads (fractions, 1.0 = full) in
/// `0 ..= 1000`, given together, start below full, for performance,
/// priority and geographic routing; in thousandths.
fn spill(
    loc: &Locator,
    base: &[Seg],
    rp: &RawProfile,
    routing: Routing,
) -> Result<Option<(u32, u32)>, ConfigError> {
    let one = |name: &str, v: f64| -> Result<u32, ConfigError> {
        let at = join(base, &[key(name)]);
        if !(0.0..=1000.0).contains(&v) {
            return Err(loc.error(
                &at,
                format!("{name} is a load (1.0 = full) from 0 to 1000; {v} is not"),
            ));
        }
        crate::config::load_milli(v).ok_or_else(|| loc.error(&at, "not a number"))
    };
    let (start, full) = match (rp.spill_start, rp.spill_full) {
        (None, None) => return Ok(None),
        (Some(s), Some(f)) => (one("spill_start", s)?, one("spill_full", f)?),
        (Some(_), None) => {
            return Err(loc.error(
                &join(base, &[key("spill_start")]),
                "spill_start needs spill_full (the load at which every client has moved)",
            ));
        }
        (None, Some(_)) => {
            return Err(loc.error(
                &join(base, &[key("spill_full")]),
                "spill_full needs spill_start (the load at which clients begin to move)",
            ));
        }
    };
    if start >= full {
        return Err(loc.error(
            &join(base, &[key("spill_full")]),
            "spill_full must be above spill_start",
        ));
    }
    if !matches!(
        routing,
        Routing::Performance | Routing::Priority | Routing::Geographic
    ) {
        return Err(loc.error(
            &join(base, &[key("spill_start")]),
            format!(
                "spill-over applies to performance, priority and geographic routing, not {}",
                routing.as_str()
            ),
        ));
    }
    Ok(Some((start, full)))
}

/// `routing = "…"`: one of the six methods.
fn routing(loc: &Locator, base: &[Seg], s: &str) -> Result<Routing, ConfigError> {
    Ok(match s {
        "performance" => Routing::Performance,
        "priority" => Routing::Priority,
        "weighted" => Routing::Weighted,
        "geographic" => Routing::Geographic,
        "multivalue" => Routing::Multivalue,
        "subnet" => Routing::Subnet,
        _ => {
            return Err(loc.error(&join(base, &[key("routing")]), format!(
                "`{s}` is not a routing method; expected one of performance, priority, weighted, geographic, multivalue, subnet"
            )));
        }
    })
}

/// `all_down = "fail-open" | "fail-closed"`.
fn all_down(loc: &Locator, base: &[Seg], s: Option<&str>) -> Result<AllDown, ConfigError> {
    match s {
        None | Some("fail-open") => Ok(AllDown::FailOpen),
        Some("fail-closed") => Ok(AllDown::FailClosed),
        Some(o) => Err(loc.error(
            &join(base, &[key("all_down")]),
            format!("`{o}` is not an all_down policy; expected `fail-open` or `fail-closed`"),
        )),
    }
}

/// `affinity = "none" | "client-subnet"`, the latter for weighted routing only.
fn affinity_subnet(
    loc: &Locator,
    base: &[Seg],
    s: Option<&str>,
    routing: Routing,
) -> Result<bool, ConfigError> {
    let subnet = match s {
        None | Some("none") => false,
        Some("client-subnet") => true,
        Some(o) => {
            return Err(loc.error(
                &join(base, &[key("affinity")]),
                format!("`{o}` is not an affinity; expected `none` or `client-subnet`"),
            ));
        }
    };
    if subnet && routing != Routing::Weighted {
        return Err(loc.error(
            &join(base, &[key("affinity")]),
            "affinity applies to weighted routing only",
        ));
    }
    Ok(subnet)
}

/// Geographic routing: no code is claimed by two endpoints.
fn check_geo_claims(
    loc: &Locator,
    base: &[Seg],
    endpoints: &[EndpointCfg],
) -> Result<(), ConfigError> {
    let mut claimed: HashMap<GeoCode, usize> = HashMap::new();
    for (ei, ep) in endpoints.iter().enumerate() {
        for (gi, g) in ep.geo.iter().enumerate() {
            if let Some(prev) = claimed.insert(*g, ei) {
                return Err(loc.error(
                    &join(base, &[key("endpoint"), index(ei), key("geo"), index(gi)]),
                    format!(
                        "code `{}` is already claimed by endpoint[{prev}]",
                        geo_code_text(g)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Subnet routing: no prefix is claimed by two endpoints, and at most one
/// endpoint (the one without `subnets`) catches the rest.
fn check_subnet_claims(
    loc: &Locator,
    base: &[Seg],
    endpoints: &[EndpointCfg],
) -> Result<(), ConfigError> {
    let mut claimed: HashMap<IpNet, usize> = HashMap::new();
    let mut catch_all: Option<usize> = None;
    for (ei, ep) in endpoints.iter().enumerate() {
        if ep.subnets.is_empty() {
            if let Some(prev) = catch_all {
                return Err(loc.error(&join(base, &[key("endpoint"), index(ei), key("name")]), format!(
                    "endpoint[{prev}] already has no `subnets`; at most one endpoint may catch the rest"
                )));
            }
            catch_all = Some(ei);
        }
        for (si, s) in ep.subnets.iter().enumerate() {
            if let Some(prev) = claimed.insert(*s, ei) {
                return Err(loc.error(
                    &join(
                        base,
                        &[key("endpoint"), index(ei), key("subnets"), index(si)],
                    ),
                    format!("prefix {s} is already claimed by endpoint[{prev}]"),
                ));
            }
        }
    }
    Ok(())
}

/// A geographic code as the config writes it.
fn geo_code_text(g: &GeoCode) -> String {
    match g {
        GeoCode::Country(c) | GeoCode::Continent(c) => String::from_utf8_lossy(c).into_owned(),
        GeoCode::World => "WORLD".into(),
    }
}
