//! Where clients are: the latency table (SPEC §4), the GeoIP database, the
//! built-in regions and countries, and distances. Tables are built once per
//! snapshot; lookups are pure reads with no allocation.

pub mod builtin;
pub mod distance;
pub mod lpm;

use crate::config::ConfigError;
use lpm::{Hit, PrefixTable, PrefixTableBuilder};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// Unknown round-trip time in a latency row.
pub const RTT_UNKNOWN: u16 = u16::MAX;

/// The latency table: client prefix → round-trip time per region column.
#[derive(Debug, Default)]
pub struct LatencyTable {
    /// Region name of each column (lowercase).
    pub columns: Vec<String>,
    /// Distinct rows, `columns.len()` cells each, flattened.
    cells: Vec<u16>,
    prefixes: PrefixTable,
    rows: usize,
    /// Problems that did not stop the load (duplicate prefixes).
    pub warnings: Vec<String>,
}

impl LatencyTable {
    /// The row for `addr`, and the prefix length it matched.
    #[inline]
    pub fn row(&self, addr: IpAddr) -> Option<(&[u16], u8)> {
        let Hit { value, prefix_len } = self.prefixes.lookup(addr)?;
        let n = self.columns.len();
        let start = (value as usize).checked_mul(n)?;
        Some((self.cells.get(start..start.checked_add(n)?)?, prefix_len))
    }

    /// Number of prefixes (rows in the file).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.prefixes.heap_bytes() + self.cells.capacity() * 2
    }

    /// Reads a latency CSV. `known_region` says whether a column name is a region.
    pub fn load(
        path: &Path,
        known_region: &dyn Fn(&str) -> bool,
    ) -> Result<LatencyTable, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            col: 0,
            path: "engine.latency_table".into(),
            message: format!("cannot read the latency table: {e}"),
        })?;
        Self::parse(&text, &file, known_region)
    }

    /// Parses latency CSV text; errors name `file`, line and column.
    pub fn parse(
        text: &str,
        file: &str,
        known_region: &dyn Fn(&str) -> bool,
    ) -> Result<LatencyTable, ConfigError> {
        let err = |line: usize, col: usize, message: String| ConfigError {
            file: file.to_string(),
            line,
            col,
            path: "engine.latency_table".into(),
            message,
        };
        let mut lines = text.lines().enumerate();
        let (_, header) = lines.next().ok_or_else(|| {
            err(
                1,
                1,
                "the file is empty; expected a header `prefix,<region>,…`".into(),
            )
        })?;
        let header = header.trim_end_matches('\r');
        let mut cols = header.split(',');
        if cols.next().map(str::trim) != Some("prefix") {
            return Err(err(
                1,
                1,
                "the header must start with `prefix`, then region names".into(),
            ));
        }
        let mut columns = Vec::new();
        let mut col = "prefix,".len() + 1;
        for c in cols {
            let name = c.trim().to_ascii_lowercase();
            if !known_region(&name) {
                return Err(err(
                    1,
                    col,
                    format!(
                        "column `{}` is not a known region; add it with [[region]]",
                        c.trim()
                    ),
                ));
            }
            if columns.contains(&name) {
                return Err(err(1, col, format!("region `{name}` has two columns")));
            }
            columns.push(name);
            col += c.len() + 1;
        }
        if columns.is_empty() {
            return Err(err(1, 1, "the header names no region".into()));
        }
        let n = columns.len();
        let mut cells: Vec<u16> = Vec::new();
        let mut distinct: HashMap<Vec<u16>, u32> = HashMap::new();
        let mut b = PrefixTableBuilder::new();
        let mut row = vec![RTT_UNKNOWN; n];
        let mut rows = 0usize;
        for (li, line) in lines {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let lineno = li + 1;
            let mut fields = line.split(',');
            let pfx = fields.next().unwrap_or("").trim();
            let (addr, plen) = parse_prefix(pfx).ok_or_else(|| {
                err(
                    lineno,
                    1,
                    format!("`{pfx}` is not an IPv4 or IPv6 prefix such as 203.0.113.0/24"),
                )
            })?;
            let mut col = pfx.len() + 2;
            let mut count = 0;
            for (ci, f) in fields.enumerate() {
                if ci >= n {
                    return Err(err(
                        lineno,
                        col,
                        format!("more cells than the header's {n} regions"),
                    ));
                }
                let t = f.trim();
                row[ci] = if t.is_empty() {
                    RTT_UNKNOWN
                } else {
                    match t.parse::<f64>() {
                        Ok(ms) if (0.0..65535.0).contains(&ms) => ms.round() as u16,
                        _ => {
                            return Err(err(
                                lineno,
                                col,
                                format!(
                                    "`{t}` is not a round-trip time in ms (0 ..= 65534, empty = unknown)"
                                ),
                            ));
                        }
                    }
                };
                col += f.len() + 1;
                count += 1;
            }
            if count != n {
                return Err(err(
                    lineno,
                    col,
                    format!("{count} cells; the header has {n} regions"),
                ));
            }
            let id = match distinct.get(&row) {
                Some(id) => *id,
                None if cells.len() / n > lpm::MAX_VALUE as usize => {
                    return Err(err(
                        lineno,
                        1,
                        format!("more than {} distinct rows", lpm::MAX_VALUE),
                    ));
                }
                None => {
                    let id = (cells.len() / n) as u32;
                    cells.extend_from_slice(&row);
                    distinct.insert(row.clone(), id);
                    id
                }
            };
            b.push(addr, plen, id);
            rows += 1;
        }
        let (prefixes, dup) = b.build_lenient();
        let mut warnings = Vec::new();
        if let Some(d) = dup {
            warnings.push(format!(
                "{file}: {} prefix(es) are listed more than once (e.g. {}/{}); the later row wins",
                d.count, d.example.0, d.example.1
            ));
        }
        cells.shrink_to_fit();
        Ok(LatencyTable {
            columns,
            cells,
            prefixes,
            rows,
            warnings,
        })
    }
}

fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: IpAddr = a.parse().ok()?;
    let plen: u8 = p.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if plen > max {
        return None;
    }
    Some((addr, plen))
}

/// What is known of a client's location.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoInfo {
    /// Index into [`builtin::countries`], or `u16::MAX`.
    pub country: u16,
    /// Index into [`builtin::CONTINENTS`], or `u8::MAX`.
    pub continent: u8,
    /// Latitude, NaN when unknown.
    pub lat: f32,
    /// Longitude, NaN when unknown.
    pub lon: f32,
}

impl GeoInfo {
    /// The location, if known.
    #[inline]
    pub fn location(&self) -> Option<(f64, f64)> {
        if self.lat.is_nan() || self.lon.is_nan() {
            None
        } else {
            Some((f64::from(self.lat), f64::from(self.lon)))
        }
    }
}

/// A GeoIP database compiled into a prefix table.
#[derive(Debug, Default)]
pub struct GeoTable {
    infos: Vec<GeoInfo>,
    prefixes: PrefixTable,
}

impl GeoTable {
    /// What is known of `addr`, and the prefix length that matched.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<(GeoInfo, u8)> {
        let h = self.prefixes.lookup(addr)?;
        Some((*self.infos.get(h.value as usize)?, h.prefix_len))
    }

    /// Number of networks read.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Whether no network was read.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Reads a MaxMind-format database in either layout: MaxMind's
    /// (`country.iso_code`, `continent.code`, `location.latitude/longitude`)
    /// or the flat one (`country_code`). Where the record has no location,
    /// the country's centroid is used.
    pub fn load(path: &Path) -> Result<GeoTable, ConfigError> {
        let file = path.display().to_string();
        let err = |m: String| ConfigError {
            file: file.clone(),
            line: 0,
            col: 0,
            path: "engine.geoip_db".into(),
            message: m,
        };
        let bytes =
            std::fs::read(path).map_err(|e| err(format!("cannot read the GeoIP database: {e}")))?;
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| err(format!("not a MaxMind database: {e}")))?;
        let mut by_offset: HashMap<usize, u32> = HashMap::new();
        let mut by_value: HashMap<(u16, u8, u32, u32), u32> = HashMap::new();
        let mut infos: Vec<GeoInfo> = Vec::new();
        let mut b = PrefixTableBuilder::new();
        let iter = reader
            .networks(maxminddb::WithinOptions::default())
            .map_err(|e| err(format!("cannot walk the GeoIP database: {e}")))?;
        for item in iter {
            let item = item.map_err(|e| err(format!("corrupt GeoIP database: {e}")))?;
            let net = item
                .network()
                .map_err(|e| err(format!("corrupt GeoIP database: {e}")))?;
            let id = match item.offset().and_then(|o| by_offset.get(&o).copied()) {
                Some(id) => id,
                None => {
                    let rec: Option<MmdbRecord<'_>> = item
                        .decode()
                        .map_err(|e| err(format!("corrupt GeoIP record for {net}: {e}")))?;
                    let info = rec.map(|r| r.info()).unwrap_or(GeoInfo {
                        country: u16::MAX,
                        continent: u8::MAX,
                        lat: f32::NAN,
                        lon: f32::NAN,
                    });
                    let key = (
                        info.country,
                        info.continent,
                        info.lat.to_bits(),
                        info.lon.to_bits(),
                    );
                    let id = *by_value.entry(key).or_insert_with(|| {
                        infos.push(info);
                        (infos.len() - 1) as u32
                    });
                    if let Some(o) = item.offset() {
                        by_offset.insert(o, id);
                    }
                    id
                }
            };
            let (addr, plen) = match net {
                ipnetwork::IpNetwork::V4(n) => (IpAddr::V4(n.ip()), n.prefix()),
                ipnetwork::IpNetwork::V6(n) => {
                    // IPv4 data in an IPv6 tree lives at ::/96.
                    let a = n.ip();
                    if n.prefix() >= 96 && u128::from(a) >> 32 == 0 {
                        (
                            IpAddr::V4(std::net::Ipv4Addr::from(u128::from(a) as u32)),
                            n.prefix() - 96,
                        )
                    } else {
                        (IpAddr::V6(a), n.prefix())
                    }
                }
            };
            b.push(addr, plen, id);
        }
        let prefixes = b
            .build(false)
            .map_err(|_| err("duplicate networks".into()))?;
        Ok(GeoTable { infos, prefixes })
    }
}

#[derive(serde::Deserialize)]
struct MmdbNamed<'a> {
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct MmdbLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(serde::Deserialize)]
struct MmdbRecord<'a> {
    #[serde(borrow)]
    country_code: Option<&'a str>,
    #[serde(borrow)]
    country: Option<MmdbNamed<'a>>,
    #[serde(borrow)]
    registered_country: Option<MmdbNamed<'a>>,
    #[serde(borrow)]
    continent: Option<MmdbNamed<'a>>,
    location: Option<MmdbLocation>,
}

impl MmdbRecord<'_> {
    fn info(&self) -> GeoInfo {
        let cc = self
            .country_code
            .or_else(|| self.country.as_ref().and_then(|c| c.iso_code))
            .or_else(|| self.registered_country.as_ref().and_then(|c| c.iso_code));
        let country = cc.and_then(builtin::country_index);
        let continent = self
            .continent
            .as_ref()
            .and_then(|c| c.code)
            .and_then(|c| builtin::continent_index(c.as_bytes()))
            .or_else(|| {
                country.and_then(|i| builtin::continent_index(&builtin::countries()[i].continent))
            });
        let (mut lat, mut lon) = (f32::NAN, f32::NAN);
        if let Some(l) = &self.location
            && let (Some(a), Some(o)) = (l.latitude, l.longitude)
        {
            lat = a as f32;
            lon = o as f32;
        }
        if lat.is_nan()
            && let Some(i) = country
        {
            let c = &builtin::countries()[i];
            lat = c.lat as f32;
            lon = c.lon as f32;
        }
        GeoInfo {
            country: country.map(|i| i as u16).unwrap_or(u16::MAX),
            continent: continent.map(|i| i as u8).unwrap_or(u8::MAX),
            lat,
            lon,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_csv() {
        let t = LatencyTable::parse(
            "prefix,eastus,westeurope,southeastasia\n203.0.113.0/24,95,12,180\n2001:db8:1::/48,,20,\n\n",
            "t.csv",
            &|n| ["eastus", "westeurope", "southeastasia"].contains(&n),
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        let (row, plen) = t.row("203.0.113.9".parse().unwrap()).unwrap();
        assert_eq!((row, plen), (&[95u16, 12, 180][..], 24));
        let (row, _) = t.row("2001:db8:1::1".parse().unwrap()).unwrap();
        assert_eq!(row, &[RTT_UNKNOWN, 20, RTT_UNKNOWN][..]);
        assert!(t.row("198.51.100.1".parse().unwrap()).is_none());
    }

    #[test]
    fn latency_csv_errors_are_located() {
        let known = |n: &str| n == "eastus";
        let e = LatencyTable::parse(
            "prefix,eastus\n10.0.0.0/8,5\n10.0.0.0/33,5\n",
            "x.csv",
            &known,
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (3, 1));
        let e =
            LatencyTable::parse("prefix,eastus\n10.0.0.0/8,abc\n", "x.csv", &known).unwrap_err();
        assert_eq!((e.line, e.col), (2, 12), "{e}");
        let e = LatencyTable::parse("prefix,mars\n", "x.csv", &known).unwrap_err();
        assert!(e.message.contains("mars"));
        let e =
            LatencyTable::parse("prefix,eastus\n10.0.0.0/8,1,2\n", "x.csv", &known).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
