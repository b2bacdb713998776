//! `[[region]]`: the built-in regions, with the config's additions and
//! overrides.

use super::{Locator, index, join, key};
use crate::config::RawRegion;
use crate::config::error::ConfigError;
use crate::config::model::RegionCfg;
use crate::geo::builtin;
use std::collections::{HashMap, HashSet};

/// The built-in regions, then each `[[region]]` (overriding a built-in one
/// of the same name, or added after them).
pub(super) fn regions(loc: &Locator, raw: &[RawRegion]) -> Result<Vec<RegionCfg>, ConfigError> {
    let mut regions: Vec<RegionCfg> = builtin::regions()
        .iter()
        .map(|r| RegionCfg {
            name: r.name.to_string(),
            lat: r.lat,
            lon: r.lon,
        })
        .collect();
    let mut seen = HashSet::new();
    for (ri, r) in raw.iter().enumerate() {
        let region = region(loc, ri, r, &mut seen)?;
        if let Some(existing) = regions.iter_mut().find(|x| x.name == region.name) {
            existing.lat = region.lat;
            existing.lon = region.lon;
        } else {
            regions.push(region);
        }
    }
    Ok(regions)
}

/// One `[[region]]`: a name not seen before in the file, a latitude and a
/// longitude in range.
fn region(
    loc: &Locator,
    ri: usize,
    r: &RawRegion,
    seen: &mut HashSet<String>,
) -> Result<RegionCfg, ConfigError> {
    let base = [key("region"), index(ri)];
    let name = r.name.to_ascii_lowercase();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(loc.error(
            &join(&base, &[key("name")]),
            format!(
                "`{}` is not a region name; use letters, digits, `-` and `_`",
                r.name
            ),
        ));
    }
    if !seen.insert(name.clone()) {
        return Err(loc.error(
            &join(&base, &[key("name")]),
            format!("region `{name}` is defined twice"),
        ));
    }
    if !(-90.0..=90.0).contains(&r.lat) {
        return Err(loc.error(
            &join(&base, &[key("lat")]),
            format!("{} is out of range -90..=90", r.lat),
        ));
    }
    if !(-180.0..=180.0).contains(&r.lon) {
        return Err(loc.error(
            &join(&base, &[key("lon")]),
            format!("{} is out of range -180..=180", r.lon),
        ));
    }
    Ok(RegionCfg {
        name,
        lat: r.lat,
        lon: r.lon,
    })
}

/// Region name → index into `regions`.
pub(super) fn index_by_name(regions: &[RegionCfg]) -> HashMap<String, usize> {
    regions
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), i))
        .collect()
}
