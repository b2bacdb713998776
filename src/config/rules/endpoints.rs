//! `[[profile.endpoint]]`: what an endpoint answers (a target, addresses
//! or a nested profile), where it is, its priority and weight, its
//! geographic codes and subnets, and its probe overrides.

use super::dns_names::{normalized, valid_dns_name};
use super::monitor::{check_expect_body, check_header, check_probe_path, expected_status};
use super::{Locator, in_range, index, join, key};
use crate::config::error::{ConfigError, Seg};
use crate::config::model::{
    EndpointCfg, EndpointKind, GeoCode, ProbeOverrides, ProbeProtocol, Routing,
};
use crate::config::{RawEndpoint, RawProbe, RawProfile};
use crate::geo::builtin;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

/// What an endpoint is checked against: its profile's routing, the other
/// profiles (for nesting) and the regions.
pub(super) struct EndpointScope<'a> {
    /// The profile's routing method.
    pub(super) routing: Routing,
    /// This profile's full name.
    pub(super) my_fqdn: &'a str,
    /// Every profile's full name → its position.
    pub(super) by_fqdn: &'a HashMap<String, usize>,
    /// The profile's zone (a nested `profile` may be named relative to it).
    pub(super) my_zone: &'a str,
    /// Region name → index.
    pub(super) regions: &'a HashMap<String, usize>,
    /// The profile monitor's protocol (None: not monitored).
    pub(super) protocol: Option<ProbeProtocol>,
}

/// The endpoints of profile `base`: each valid, names and priorities unique.
pub(super) fn endpoints(
    loc: &Locator,
    base: &[Seg],
    rp: &RawProfile,
    scope: &EndpointScope,
) -> Result<Vec<EndpointCfg>, ConfigError> {
    let mut endpoints: Vec<EndpointCfg> = Vec::new();
    let mut priorities: HashMap<u16, usize> = HashMap::new();
    for (ei, re) in rp.endpoint.iter().enumerate() {
        let eb = join(base, &[key("endpoint"), index(ei)]);
        let ep = endpoint(loc, &eb, ei, re, scope)?;
        if endpoints.iter().any(|x| x.name == ep.name) {
            return Err(loc.error(
                &join(&eb, &[key("name")]),
                format!("endpoint `{}` is defined twice in this profile", ep.name),
            ));
        }
        if let Some(prev) = priorities.insert(ep.priority, ei) {
            return Err(loc.error(&join(&eb, &[key("priority")]), format!(
                "priority {} is already used by endpoint[{prev}]; priorities are unique within a profile (the default is the position in the list)",
                ep.priority
            )));
        }
        endpoints.push(ep);
    }
    Ok(endpoints)
}

/// Endpoint `ei` at key path `eb`.
fn endpoint(
    loc: &Locator,
    eb: &[Seg],
    ei: usize,
    re: &RawEndpoint,
    scope: &EndpointScope,
) -> Result<EndpointCfg, ConfigError> {
    check_name(loc, eb, &re.name)?;
    let kind = kind(loc, eb, re, scope)?;
    let location = location(loc, eb, re.location.as_deref(), scope.regions)?;
    check_routing_needs(loc, eb, scope.routing, &kind, location)?;
    let priority = match re.priority {
        Some(n) => in_range(loc, &join(eb, &[key("priority")]), n, 1, 1000)? as u16,
        None => {
            if ei >= 1000 {
                return Err(loc.error(
                    &join(eb, &[key("name")]),
                    "more than 1000 endpoints in one profile",
                ));
            }
            (ei + 1) as u16
        }
    };
    let weight = match re.weight {
        Some(n) => in_range(loc, &join(eb, &[key("weight")]), n, 0, 1000)? as u32,
        None => 1,
    };
    let geo = geo_codes(loc, eb, re.geo.as_deref().unwrap_or_default())?;
    if scope.routing == Routing::Geographic && geo.is_empty() {
        return Err(loc.error(
            &join(eb, &[key("name")]),
            "geographic routing needs a `geo` list on every endpoint",
        ));
    }
    let subnets = subnets(loc, eb, re.subnets.as_deref().unwrap_or_default())?;
    let probe = match &re.probe {
        Some(pr) => probe_overrides(loc, eb, pr, scope.protocol)?,
        None => ProbeOverrides::default(),
    };
    Ok(EndpointCfg {
        name: re.name.clone(),
        kind,
        location,
        priority,
        weight,
        enabled: re.enabled.unwrap_or(true),
        always_serve: re.always_serve.unwrap_or(false),
        geo,
        subnets,
        probe,
    })
}

/// An endpoint name: 1 to 63 letters, digits, `-`, `_` or `.`.
fn check_name(loc: &Locator, eb: &[Seg], name: &str) -> Result<(), ConfigError> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(loc.error(
            &join(eb, &[key("name")]),
            format!(
                "`{name}` is not an endpoint name; use 1 to 63 letters, digits, `-`, `_` or `.`"
            ),
        ));
    }
    Ok(())
}

/// What the endpoint answers: exactly one of `target`, `addresses` or
/// `profile`; `min_children` with `profile` only.
fn kind(
    loc: &Locator,
    eb: &[Seg],
    re: &RawEndpoint,
    scope: &EndpointScope,
) -> Result<EndpointKind, ConfigError> {
    let given = [
        re.target.is_some(),
        re.addresses.is_some(),
        re.profile.is_some(),
    ];
    if given.iter().filter(|x| **x).count() != 1 {
        return Err(loc.error(
            &join(eb, &[key("name")]),
            "exactly one of `target`, `addresses` or `profile` must be given",
        ));
    }
    let kind = if let Some(t) = &re.target {
        valid_dns_name(t).map_err(|m| loc.error(&join(eb, &[key("target")]), m))?;
        if normalized(t) == scope.my_fqdn {
            return Err(loc.error(
                &join(eb, &[key("target")]),
                format!("`{t}` is this profile's own name: a CNAME to itself never resolves"),
            ));
        }
        EndpointKind::Target(normalized(t))
    } else if let Some(addrs) = &re.addresses {
        EndpointKind::Addresses(addresses(loc, eb, addrs)?)
    } else {
        nested(loc, eb, re, scope)?
    };
    if re.min_children.is_some() && !matches!(kind, EndpointKind::Nested { .. }) {
        return Err(loc.error(
            &join(eb, &[key("min_children")]),
            "min_children applies to nested (`profile = …`) endpoints only",
        ));
    }
    Ok(kind)
}

/// `addresses`: at least one, each a unicast IPv4 or IPv6 address (not
/// unspecified, multicast or broadcast: a client could not reach it), none
/// twice.
fn addresses(loc: &Locator, eb: &[Seg], addrs: &[String]) -> Result<Vec<IpAddr>, ConfigError> {
    if addrs.is_empty() {
        return Err(loc.error(
            &join(eb, &[key("addresses")]),
            "at least one address is needed",
        ));
    }
    let mut out = Vec::new();
    for (ai, a) in addrs.iter().enumerate() {
        let ip: IpAddr = a.parse().map_err(|_| {
            loc.error(
                &join(eb, &[key("addresses"), index(ai)]),
                format!("`{a}` is not an IPv4 or IPv6 address"),
            )
        })?;
        let unusable = ip.is_unspecified()
            || ip.is_multicast()
            || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        if unusable {
            return Err(loc.error(
                &join(eb, &[key("addresses"), index(ai)]),
                format!("{ip} is not a unicast address a client could reach"),
            ));
        }
        if out.contains(&ip) {
            return Err(loc.error(
                &join(eb, &[key("addresses"), index(ai)]),
                format!("{ip} is listed twice"),
            ));
        }
        out.push(ip);
    }
    Ok(out)
}

/// `profile = …`: a defined profile, by full name or relative to this
/// profile's zone, with `min_children` (default 1).
fn nested(
    loc: &Locator,
    eb: &[Seg],
    re: &RawEndpoint,
    scope: &EndpointScope,
) -> Result<EndpointKind, ConfigError> {
    let child = normalized(re.profile.as_deref().unwrap_or(""));
    let full = format!("{child}.{}", scope.my_zone);
    let idx = scope
        .by_fqdn
        .get(&child)
        .or_else(|| scope.by_fqdn.get(&full))
        .copied()
        .ok_or_else(|| {
            loc.error(
                &join(eb, &[key("profile")]),
                format!("profile `{child}` is not defined"),
            )
        })?;
    let min_children = match re.min_children {
        Some(n) => in_range(loc, &join(eb, &[key("min_children")]), n, 1, 1000)? as u32,
        None => 1,
    };
    Ok(EndpointKind::Nested {
        profile: idx,
        min_children,
    })
}

/// `location`: a known region, as an index.
fn location(
    loc: &Locator,
    eb: &[Seg],
    location: Option<&str>,
    regions: &HashMap<String, usize>,
) -> Result<Option<usize>, ConfigError> {
    let Some(l) = location else { return Ok(None) };
    let ln = l.to_ascii_lowercase();
    Ok(Some(*regions.get(&ln).ok_or_else(|| {
        loc.error(&join(eb, &[key("location")]), format!(
            "`{l}` is not a known region; add it with [[region]] (name, lat, lon) or use a built-in name such as eastus or westeurope"
        ))
    })?))
}

/// What the routing method needs of every endpoint: a location for
/// performance, addresses for multivalue.
fn check_routing_needs(
    loc: &Locator,
    eb: &[Seg],
    routing: Routing,
    kind: &EndpointKind,
    location: Option<usize>,
) -> Result<(), ConfigError> {
    if routing == Routing::Performance && location.is_none() {
        return Err(loc.error(
            &join(eb, &[key("name")]),
            "performance routing needs a `location` on every endpoint",
        ));
    }
    if routing == Routing::Multivalue && !matches!(kind, EndpointKind::Addresses(_)) {
        return Err(loc.error(
            &join(eb, &[key("name")]),
            "multivalue routing takes only `addresses` endpoints (no `target` or nested `profile`)",
        ));
    }
    Ok(())
}

/// `geo`: countries, continents or `WORLD`, none twice.
fn geo_codes(loc: &Locator, eb: &[Seg], codes: &[String]) -> Result<Vec<GeoCode>, ConfigError> {
    let mut geo = Vec::new();
    for (gi, g) in codes.iter().enumerate() {
        let up = g.to_ascii_uppercase();
        let code = if up == "WORLD" {
            GeoCode::World
        } else if up.len() == 2 && builtin::is_continent(&up) {
            GeoCode::Continent([up.as_bytes()[0], up.as_bytes()[1]])
        } else if up.len() == 2 && builtin::country(&up).is_some() {
            GeoCode::Country([up.as_bytes()[0], up.as_bytes()[1]])
        } else {
            return Err(loc.error(&join(eb, &[key("geo"), index(gi)]), format!(
                "`{g}` is not an ISO 3166-1 alpha-2 country, a continent code (AF AN AS EU NA OC SA) or WORLD"
            )));
        };
        if geo.contains(&code) {
            return Err(loc.error(
                &join(eb, &[key("geo"), index(gi)]),
                format!("`{g}` is listed twice"),
            ));
        }
        geo.push(code);
    }
    Ok(geo)
}

/// `subnets`: CIDR prefixes with no host bits set, none twice.
fn subnets(loc: &Locator, eb: &[Seg], prefixes: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    let mut subnets = Vec::new();
    for (si, s) in prefixes.iter().enumerate() {
        let at = join(eb, &[key("subnets"), index(si)]);
        let net: IpNet = s.parse().map_err(|_| {
            loc.error(
                &at,
                format!("`{s}` is not a CIDR prefix such as 198.51.100.0/24"),
            )
        })?;
        if net.trunc() != net {
            return Err(loc.error(
                &at,
                format!("`{s}` has host bits set; did you mean {}?", net.trunc()),
            ));
        }
        if subnets.contains(&net) {
            return Err(loc.error(&at, format!("{net} is listed twice")));
        }
        subnets.push(net);
    }
    Ok(subnets)
}

/// `probe = { host, port, path, headers, expected_status, expect_body }`:
/// a host that is an address or a DNS name, a port in range, a path,
/// headers and statuses the probe can send and read, each checked as the
/// monitor's own; the HTTP-only ones refused under a tcp or dns monitor.
fn probe_overrides(
    loc: &Locator,
    eb: &[Seg],
    pr: &RawProbe,
    protocol: Option<ProbeProtocol>,
) -> Result<ProbeOverrides, ConfigError> {
    let mut out = ProbeOverrides::default();
    let at = |k: &str| join(eb, &[key("probe"), key(k)]);
    if let Some(h) = &pr.host {
        if h.parse::<IpAddr>().is_err() {
            valid_dns_name(h).map_err(|m| loc.error(&at("host"), m))?;
        }
        out.host = Some(h.clone());
    }
    if let Some(port) = pr.port {
        out.port = Some(in_range(loc, &at("port"), port, 1, 65535)? as u16);
    }
    if let Some(path) = &pr.path {
        check_probe_path(path).map_err(|e| loc.error(&at("path"), e))?;
        out.path = Some(path.clone());
    }
    let http_only = |k: &str| -> Result<(), ConfigError> {
        match protocol {
            Some(ProbeProtocol::Tcp | ProbeProtocol::Dns) => Err(loc.error(
                &at(k),
                format!("probe.{k} applies to http and https monitors only"),
            )),
            _ => Ok(()),
        }
    };
    if let Some(headers) = &pr.headers {
        http_only("headers")?;
        for (name, value) in headers {
            check_header(name, value)
                .map_err(|e| loc.error(&join(eb, &[key("probe"), key("headers"), key(name)]), e))?;
            out.headers.push((name.clone(), value.clone()));
        }
    }
    if let Some(list) = &pr.expected_status {
        http_only("expected_status")?;
        out.expected_status = Some(expected_status(
            loc,
            &join(eb, &[key("probe")]),
            Some(list),
        )?);
    }
    if let Some(t) = &pr.expect_body {
        http_only("expect_body")?;
        check_expect_body(protocol.unwrap_or(ProbeProtocol::Http), t)
            .map_err(|e| loc.error(&at("expect_body"), e))?;
        out.expect_body = Some(t.clone());
    }
    Ok(out)
}
