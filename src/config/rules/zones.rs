//! `[[zone]]`: the apexes the engine answers for, their NS and SOA.

use super::dns_names::{normalized, valid_dns_name};
use super::{Locator, in_range, index, join, key};
use crate::config::RawZone;
use crate::config::error::ConfigError;
use crate::config::model::ZoneCfg;

/// Every `[[zone]]`; at least one is needed.
pub(super) fn zones(loc: &Locator, raw: &[RawZone]) -> Result<Vec<ZoneCfg>, ConfigError> {
    let mut zones: Vec<ZoneCfg> = Vec::new();
    for (zi, z) in raw.iter().enumerate() {
        let zone = zone(loc, zi, z, &zones)?;
        zones.push(zone);
    }
    if zones.is_empty() {
        // An empty or truncated file must never replace a working config.
        return Err(loc.error(
            &[],
            "no [[zone]] is defined; a configuration needs at least one zone (is the file empty or cut short?)",
        ));
    }
    Ok(zones)
}

/// One `[[zone]]`, not defined before (in `earlier`).
fn zone(
    loc: &Locator,
    zi: usize,
    z: &RawZone,
    earlier: &[ZoneCfg],
) -> Result<ZoneCfg, ConfigError> {
    let base = [key("zone"), index(zi)];
    valid_dns_name(&z.name).map_err(|m| loc.error(&join(&base, &[key("name")]), m))?;
    let name = normalized(&z.name);
    if earlier.iter().any(|x| x.name == name) {
        return Err(loc.error(
            &join(&base, &[key("name")]),
            format!("zone `{name}` is defined twice"),
        ));
    }
    if z.nameservers.is_empty() {
        return Err(loc.error(
            &join(&base, &[key("name")]),
            "a zone needs at least one entry in `nameservers` (its NS records)",
        ));
    }
    let mut nameservers = Vec::new();
    for (ni, ns) in z.nameservers.iter().enumerate() {
        valid_dns_name(ns)
            .map_err(|m| loc.error(&join(&base, &[key("nameservers"), index(ni)]), m))?;
        nameservers.push(normalized(ns));
    }
    let hostmaster = match &z.hostmaster {
        Some(h) => {
            let h2 = h.replacen('@', ".", 1);
            valid_dns_name(&h2).map_err(|m| loc.error(&join(&base, &[key("hostmaster")]), m))?;
            normalized(&h2)
        }
        None => format!("hostmaster.{name}"),
    };
    let ttl = match z.ttl {
        Some(t) => in_range(loc, &join(&base, &[key("ttl")]), t, 0, 2_147_483_647)? as u32,
        None => 300,
    };
    Ok(ZoneCfg {
        name,
        nameservers,
        hostmaster,
        ttl,
    })
}
