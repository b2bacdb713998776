//! Built-in location data, compiled into the library so the engine needs no
//! data file at run time: Azure region coordinates (Azure's published
//! location list) and country centroids with continents (derived from the
//! `world-countries` package, ODbL 1.0; see `src/geo/data/`).

use std::sync::OnceLock;

/// A built-in region.
#[derive(Debug, Clone)]
pub struct BuiltinRegion {
    /// Lowercase name, e.g. `eastus`.
    pub name: &'static str,
    /// Degrees.
    pub lat: f64,
    /// Degrees.
    pub lon: f64,
}

/// A country: code, continent, centroid.
#[derive(Debug, Clone)]
pub struct Country {
    /// ISO 3166-1 alpha-2, uppercase.
    pub code: [u8; 2],
    /// Continent code: AF AN AS EU NA OC SA.
    pub continent: [u8; 2],
    /// Centroid latitude, degrees.
    pub lat: f64,
    /// Centroid longitude, degrees.
    pub lon: f64,
}

/// The seven continent codes used by geographic routing.
pub(crate) const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// The continent codes, by the index `GeoInfo::continent` holds.
pub fn continents() -> &'static [&'static str; 7] {
    &CONTINENTS
}

const REGIONS_CSV: &str = include_str!("data/regions.csv");
const COUNTRIES_CSV: &str = include_str!("data/countries.csv");

/// Every built-in region (the rows of `data/regions.csv`).
pub fn regions() -> &'static [BuiltinRegion] {
    static R: OnceLock<Vec<BuiltinRegion>> = OnceLock::new();
    R.get_or_init(|| {
        REGIONS_CSV
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                let name = f.next()?.trim();
                let lat = f.next()?.trim().parse().ok()?;
                let lon = f.next()?.trim().parse().ok()?;
                Some(BuiltinRegion { name, lat, lon })
            })
            .collect()
    })
}

/// Every country with its continent and centroid, sorted by code.
pub fn countries() -> &'static [Country] {
    static C: OnceLock<Vec<Country>> = OnceLock::new();
    C.get_or_init(|| {
        let mut v: Vec<Country> = COUNTRIES_CSV
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                let code = f.next()?.trim().as_bytes();
                let cont = f.next()?.trim().as_bytes();
                let lat = f.next()?.trim().parse().ok()?;
                let lon = f.next()?.trim().parse().ok()?;
                if code.len() != 2 || cont.len() != 2 {
                    return None;
                }
                Some(Country {
                    code: [code[0], code[1]],
                    continent: [cont[0], cont[1]],
                    lat,
                    lon,
                })
            })
            .collect();
        v.sort_by_key(|c| c.code);
        v
    })
}

/// Index of a country by its (case-insensitive) code.
pub fn country_index(code: &str) -> Option<usize> {
    let b = code.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let key = [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()];
    countries().binary_search_by_key(&key, |c| c.code).ok()
}

/// A country by its (case-insensitive) code.
pub fn country(code: &str) -> Option<&'static Country> {
    country_index(code).map(|i| &countries()[i])
}

/// Whether `code` (uppercase) is one of [`CONTINENTS`].
pub fn is_continent(code: &str) -> bool {
    CONTINENTS.contains(&code)
}

/// Index of a continent code in [`CONTINENTS`].
pub fn continent_index(code: &[u8]) -> Option<usize> {
    CONTINENTS
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shared_region_is_built_in() {
        let shared = include_str!("data/regions.csv");
        assert_eq!(regions().len(), shared.lines().count() - 1);
        assert!(regions().iter().any(|r| r.name == "eastus"));
        assert!(regions().iter().any(|r| r.name == "westeurope"));
    }

    #[test]
    fn countries_and_continents() {
        assert!(countries().len() >= 249);
        let gb = country("gb").unwrap();
        assert_eq!(&gb.continent, b"EU");
        assert_eq!(&country("AU").unwrap().continent, b"OC");
        assert!(country("XX").is_none());
        assert_eq!(continent_index(b"na"), Some(4));
    }
}
