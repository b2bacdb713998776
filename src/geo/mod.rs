//! Where clients are: the latency table (docs/ROUTING.md, "Latency and location"), the GeoIP database, the
//! built-in regions and countries, and distances. Tables are built once per
//! snapshot; lookups are pure reads with no allocation.

pub mod builtin;
pub mod distance;
pub mod lpm;
pub mod mmdb;

use lpm::{Hit, PrefixTable, PrefixTableBuilder};
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

/// A data file that could not be read: the file, where in it (latency
/// tables), and what is wrong. Displayed as `file:line:col: message`
/// (`file: message` when the line is unknown or the file is binary). The
/// config layer names the key that pointed at the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoError {
    /// The file as its caller named it.
    pub file: String,
    /// 1-based line, 0 when unknown (a GeoIP database, a file not read).
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for GeoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for GeoError {}

/// Unknown round-trip time in a latency row.
pub(crate) const RTT_UNKNOWN: u16 = u16::MAX;

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
    #[deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
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

    /// Reads a latency CSV. `known_region` says whether a column name is a
    /// region. The path must be a regular file of at most
    /// 1 GiB.
    pub fn load(
        path: &Path,
        known_region: &dyn Fn(&str) -> bool,
    ) -> Result<LatencyTable, GeoError> {
        let bytes = read_data_file(path, MAX_LATENCY_CSV_BYTES, "latency table")?;
        Self::from_bytes(&bytes, &path.display().to_string(), known_region)
    }

    /// Parses latency CSV text; errors name `file`, line and column.
    pub fn parse(
        text: &str,
        file: &str,
        known_region: &dyn Fn(&str) -> bool,
    ) -> Result<LatencyTable, GeoError> {
        Self::from_bytes(text.as_bytes(), file, known_region)
    }

    /// Parses latency CSV bytes; errors name `file`, line and column. Time
    /// is linear in the input and memory bounded by it; the text an error
    /// quotes is cut to a few dozen characters.
    pub fn from_bytes(
        bytes: &[u8],
        file: &str,
        known_region: &dyn Fn(&str) -> bool,
    ) -> Result<LatencyTable, GeoError> {
        let at = At(file);
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut lines = bytes.split(|b| *b == b'\n').enumerate().map(|(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            std::str::from_utf8(l).map(|t| (i + 1, t)).map_err(|e| {
                at.err(
                    i + 1,
                    e.valid_up_to() + 1,
                    "the line is not valid UTF-8".into(),
                )
            })
        });
        let header = match lines.next() {
            Some(h) => h?.1,
            None => "",
        };
        let columns = header_columns(&at, header, known_region)?;
        let n = columns.len();
        let mut cells: Vec<u16> = Vec::new();
        let mut distinct: HashMap<Vec<u16>, u32> = HashMap::new();
        let mut b = PrefixTableBuilder::new();
        let mut row = vec![RTT_UNKNOWN; n];
        let mut rows = 0usize;
        for line in lines {
            let (lineno, line) = line?;
            if line.trim().is_empty() {
                continue;
            }
            let (addr, plen) = parse_row(&at, lineno, line, &mut row)?;
            let id = match distinct.get(&row) {
                Some(id) => *id,
                None if cells.len() / n > lpm::MAX_VALUE as usize => {
                    return Err(at.err(
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
        let warnings = dup
            .map(|d| duplicate_warning(bytes, file, &d))
            .into_iter()
            .collect();
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

/// Where a latency-table error is: the file, for [`GeoError`]s at a line
/// and column.
struct At<'a>(&'a str);

impl At<'_> {
    fn err(&self, line: usize, col: usize, message: String) -> GeoError {
        GeoError {
            file: self.0.to_string(),
            line,
            col,
            message,
        }
    }
}

/// The header `prefix,<region>,…`: the region columns, each a known region
/// and none twice.
fn header_columns(
    at: &At<'_>,
    header: &str,
    known_region: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, GeoError> {
    if header.trim().is_empty() {
        return Err(at.err(
            1,
            1,
            "the file is empty; expected a header `prefix,<region>,…`".into(),
        ));
    }
    let mut cols = header.split(',');
    if cols.next().map(str::trim) != Some("prefix") {
        return Err(at.err(
            1,
            1,
            "the header must start with `prefix`, then region names".into(),
        ));
    }
    let mut columns = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut col = "prefix,".len() + 1;
    for c in cols {
        let name = c.trim().to_ascii_lowercase();
        if !known_region(&name) {
            return Err(at.err(
                1,
                col,
                format!(
                    "column `{}` is not a known region; add it with [[region]]",
                    shown(c.trim())
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(at.err(1, col, format!("region `{}` has two columns", shown(&name))));
        }
        columns.push(name);
        col += c.len() + 1;
    }
    if columns.is_empty() {
        return Err(at.err(1, 1, "the header names no region".into()));
    }
    Ok(columns)
}

/// One data line: its prefix, and its cells into `row` (one per region,
/// empty = unknown).
fn parse_row(
    at: &At<'_>,
    lineno: usize,
    line: &str,
    row: &mut [u16],
) -> Result<(IpAddr, u8), GeoError> {
    let n = row.len();
    let mut fields = line.split(',');
    let pfx = fields.next().unwrap_or("").trim();
    let (addr, plen) = parse_prefix(pfx).ok_or_else(|| {
        at.err(
            lineno,
            1,
            format!(
                "`{}` is not an IPv4 or IPv6 prefix such as 203.0.113.0/24",
                shown(pfx)
            ),
        )
    })?;
    let mut col = pfx.len() + 2;
    let mut count = 0;
    for (cell, f) in fields.enumerate() {
        let Some(slot) = row.get_mut(cell) else {
            return Err(at.err(
                lineno,
                col,
                format!("more cells than the header's {n} regions"),
            ));
        };
        let t = f.trim();
        *slot = if t.is_empty() {
            RTT_UNKNOWN
        } else {
            match t.parse::<f64>() {
                Ok(ms) if (0.0..65535.0).contains(&ms) => ms.round() as u16,
                _ => {
                    return Err(at.err(
                        lineno,
                        col,
                        format!(
                            "`{}` is not a round-trip time in ms (0 ..= 65534, empty = unknown)",
                            shown(t)
                        ),
                    ));
                }
            }
        };
        col += f.len() + 1;
        count += 1;
    }
    if count != n {
        return Err(at.err(
            lineno,
            col,
            format!("{count} cells; the header has {n} regions"),
        ));
    }
    Ok((addr, plen))
}

/// The warning for prefixes listed twice, naming the two lines of the first
/// (rare: one more pass over the file).
fn duplicate_warning(bytes: &[u8], file: &str, d: &lpm::Duplicate) -> String {
    let (addr, plen) = d.example;
    let key = masked(addr, plen);
    let mut at = Vec::new();
    for (i, l) in bytes.split(|b| *b == b'\n').enumerate().skip(1) {
        let p = std::str::from_utf8(l)
            .ok()
            .and_then(|t| parse_prefix(t.split(',').next().unwrap_or("").trim()));
        if p.is_some_and(|(a, pl)| masked(a, pl) == key) {
            at.push(i + 1);
            if at.len() == 2 {
                break;
            }
        }
    }
    let (first, line) = (
        at.first().copied().unwrap_or(0),
        at.get(1).copied().unwrap_or(0),
    );
    format!(
        "{file}:{line}: prefix {addr}/{plen} is also on line {first}; the later row wins \
         ({} prefix(es) of the table are listed more than once)",
        d.count
    )
}

/// `s`, cut to 40 characters for an error message.
fn shown(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A prefix with its host bits cleared, as a comparable key.
fn masked(addr: IpAddr, plen: u8) -> (u128, u8, bool) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)) & lpm_mask(plen, 32), plen, false),
        IpAddr::V6(a) => (u128::from(a) & lpm_mask(plen, 128), plen, true),
    }
}

/// The mask of a `plen`-bit prefix in a `width`-bit address (as u128, low bits).
fn lpm_mask(plen: u8, width: u32) -> u128 {
    let plen = u32::from(plen).min(width);
    if plen == 0 {
        0
    } else {
        let all = u128::MAX >> (128 - width);
        all & !all.checked_shr(plen).unwrap_or(0)
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
    #[deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
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
    /// the country's centroid is used. The path must be a regular file of
    /// at most 4 GiB.
    pub fn load(path: &Path) -> Result<GeoTable, GeoError> {
        let bytes = read_data_file(path, MAX_MMDB_BYTES, "GeoIP database")?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Reads a database from its bytes; errors name `file`. Corrupt or
    /// hostile input (a cyclic or shared search tree, pointers out of
    /// range, sizes past the end, deep nesting, metadata missing) is an
    /// error, and the work is bounded by the input's size (see [`mmdb`]).
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<GeoTable, GeoError> {
        let err = |m: String| GeoError {
            file: file.to_string(),
            line: 0,
            col: 0,
            message: format!("corrupt GeoIP database: {m}"),
        };
        let db = mmdb::open(bytes).map_err(err)?;
        let networks = db.networks().map_err(err)?;
        let mut dec = db.decoder();
        let mut by_offset: HashMap<usize, u32> = HashMap::new();
        let mut by_value: HashMap<(u16, u8, u32, u32), u32> = HashMap::new();
        let mut infos: Vec<GeoInfo> = Vec::new();
        let mut b = PrefixTableBuilder::new();
        for net in networks {
            let (addr, plen) = if db.ip_version == 6 {
                // IPv4 data in an IPv6 tree lives at ::/96.
                if net.prefix_len >= 96 && net.bits >> 32 == 0 {
                    (
                        IpAddr::V4(std::net::Ipv4Addr::from(net.bits as u32)),
                        net.prefix_len - 96,
                    )
                } else {
                    (IpAddr::V6(net.bits.into()), net.prefix_len)
                }
            } else {
                (
                    IpAddr::V4(std::net::Ipv4Addr::from(net.bits as u32)),
                    net.prefix_len,
                )
            };
            let id = match by_offset.get(&net.record) {
                Some(id) => *id,
                None => {
                    let fields = dec
                        .record(net.record)
                        .map_err(|e| err(format!("the record of {addr}/{plen}: {e}")))?;
                    let info = info_of(&fields);
                    let key = (
                        info.country,
                        info.continent,
                        info.lat.to_bits(),
                        info.lon.to_bits(),
                    );
                    let next = infos.len() as u32;
                    let id = *by_value.entry(key).or_insert(next);
                    if id == next {
                        if next > lpm::MAX_VALUE {
                            return Err(err(format!(
                                "more than {} distinct locations",
                                lpm::MAX_VALUE
                            )));
                        }
                        infos.push(info);
                    }
                    by_offset.insert(net.record, id);
                    id
                }
            };
            b.push(addr, plen, id);
        }
        // The walk enters every node once, so no network comes twice.
        let (prefixes, _) = b.build_lenient();
        infos.shrink_to_fit();
        Ok(GeoTable { infos, prefixes })
    }
}

/// Largest GeoIP database read (32-bit records address at most 4 GiB).
pub(crate) const MAX_MMDB_BYTES: u64 = 4 << 30;
/// Largest latency table read.
pub(crate) const MAX_LATENCY_CSV_BYTES: u64 = 1 << 30;

/// Reads a data file named by the config: a regular file (not a device or
/// a FIFO, which could block or never end) of at most `max` octets.
/// Reads a file that must be a regular file of at most `max` octets. It is
/// opened without blocking and checked on the open descriptor, so a FIFO,
/// a device or a directory — or a file swapped for one after a check — is
/// refused, never read; the read stops at `max` + 1 octets.
pub(crate) fn read_data_file(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, GeoError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |message: String| GeoError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        message,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| err(format!("cannot read the {what}: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| err(format!("cannot read the {what}: {e}")))?;
    if !meta.is_file() {
        return Err(err(format!(
            "the {what} is not a regular file (a device, FIFO or directory is not read)"
        )));
    }
    let too_big = |n: u64| err(format!("the {what} is {n} octets; at most {max} are read"));
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read the {what}: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn info_of(f: &mmdb::Fields<'_>) -> GeoInfo {
    fn s(b: Option<&[u8]>) -> Option<&str> {
        b.and_then(|b| std::str::from_utf8(b).ok())
    }
    let cc = s(f.country_code)
        .or_else(|| s(f.country_iso))
        .or_else(|| s(f.registered_iso));
    let country = cc.and_then(builtin::country_index);
    let continent = f.continent.and_then(builtin::continent_index).or_else(|| {
        country.and_then(|i| builtin::continent_index(&builtin::countries()[i].continent))
    });
    let (mut lat, mut lon) = (f32::NAN, f32::NAN);
    if let (Some(a), Some(o)) = (f.latitude, f.longitude) {
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

/// Fuzz entry: loads `data` as a GeoIP database through the engine's code.
/// Never panics; the result is ignored.
#[doc(hidden)]
pub fn fuzz_mmdb(data: &[u8]) {
    if let Ok(t) = GeoTable::from_bytes(data, "fuzz.mmdb") {
        let _ = t.lookup(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
        let _ = t.lookup(IpAddr::V6(std::net::Ipv6Addr::new(
            0x2001, 0xdb8, 0, 0, 0, 0, 0, 1,
        )));
    }
}

/// Fuzz entry: parses `data` as a latency table whose columns may name any
/// built-in region. Never panics; the result is ignored.
#[doc(hidden)]
pub fn fuzz_latency_csv(data: &[u8]) {
    let known = |n: &str| builtin::regions().iter().any(|r| r.name == n);
    if let Ok(t) = LatencyTable::from_bytes(data, "fuzz.csv", &known) {
        let _ = t.row(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
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
