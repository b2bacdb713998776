//! A bounded reader for MaxMind DB files (the MMDB format, v2), reading only
//! what [`super::GeoTable`] needs. Everything it does is bounded by the size
//! of the file, whatever the file holds:
//!
//! - the search tree is walked once: every node is entered at most once (a
//!   node reached a second time means a cycle or a shared subtree, and the
//!   file is rejected), no path goes deeper than the address (128 or 32
//!   bits), and every record must point at a node, "empty" or inside the
//!   data section. So the walk takes at most `node_count` steps and yields at
//!   most `node_count + 1` networks. The only node allowed to be reached
//!   twice is the IPv4 subtree of an IPv6 database, which MaxMind's files
//!   alias under `::ffff:0:0/96` and `2002::/16`; it is entered once, at
//!   `::/96`, and its aliases are skipped.
//! - the data decoder checks every size against the end of its section,
//!   nests at most 32 (`MAX_DEPTH`) maps, arrays and pointers deep, refuses a
//!   pointer to a pointer, and counts its steps: decoding every record of a
//!   file takes at most 16 (`STEPS_PER_OCTET`) steps per octet of the file
//!   (real databases need about one), so records that overlap or share a
//!   huge value cannot make the load quadratic.
//! - metadata is looked for only in the last 128 KiB, as the format says.

/// The marker that starts the metadata section.
const MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// The metadata section is at most this large (format spec).
const MAX_METADATA: usize = 128 * 1024;
/// Deepest nesting of maps, arrays and pointers the decoder follows.
pub(crate) const MAX_DEPTH: u32 = 32;
/// Decoder steps allowed per octet of the file (plus a constant). Real
/// databases need about one (`geo-whois-asn-country.mmdb`: 0.0002).
pub(crate) const STEPS_PER_OCTET: u64 = 16;

/// One network of the database and the offset of its record in the data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The address: 128 bits (IPv6 databases) or 32 bits (IPv4 databases).
    pub bits: u128,
    /// Prefix length in the tree's address width.
    pub prefix_len: u8,
    /// Offset of the record in the data section.
    pub record: usize,
}

/// The fields of a record that [`super::GeoTable`] uses (any may be absent).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Fields<'a> {
    /// Top-level `country_code` (the flat layout).
    pub country_code: Option<&'a [u8]>,
    /// `country.iso_code`.
    pub country_iso: Option<&'a [u8]>,
    /// `registered_country.iso_code`.
    pub registered_iso: Option<&'a [u8]>,
    /// `continent.code`.
    pub continent: Option<&'a [u8]>,
    /// `location.latitude`.
    pub latitude: Option<f64>,
    /// `location.longitude`.
    pub longitude: Option<f64>,
}

/// A database whose metadata and layout have been checked.
#[derive(Debug)]
pub struct Mmdb<'a> {
    tree: &'a [u8],
    data: &'a [u8],
    node_count: usize,
    record_size: u16,
    file_len: usize,
    /// 4 or 6.
    pub ip_version: u16,
}

/// Parses the metadata and checks that the search tree and data section fit.
pub fn open(bytes: &[u8]) -> Result<Mmdb<'_>, String> {
    let tail = bytes.len().saturating_sub(MAX_METADATA + MARKER.len());
    let marker = bytes[tail..]
        .windows(MARKER.len())
        .rposition(|w| w == MARKER)
        .map(|p| p + tail)
        .ok_or_else(|| {
            "no MMDB metadata (the marker \\xAB\\xCD\\xEFMaxMind.com is not in the last 128 KiB): \
             not a MaxMind database, or truncated"
                .to_string()
        })?;
    let meta = &bytes[marker + MARKER.len()..];
    let mut d = Decoder::new(meta, "metadata", meta.len());
    let mut node_count = None;
    let mut record_size = None;
    let mut ip_version = None;
    let mut major = None;
    d.map_entries(0, 0, &mut |d, key, v| {
        let slot = match key {
            b"node_count" => &mut node_count,
            b"record_size" => &mut record_size,
            b"ip_version" => &mut ip_version,
            b"binary_format_major_version" => &mut major,
            _ => return Ok(()),
        };
        *slot = Some(d.uint(v).map_err(|e| {
            format!(
                "metadata field `{}`: {e}",
                String::from_utf8_lossy(key).escape_default()
            )
        })?);
        Ok(())
    })
    .map_err(|e| {
        if e.starts_with("metadata") {
            e
        } else {
            format!("metadata: {e}")
        }
    })?;
    let missing = |f: &str| format!("metadata: no `{f}`");
    let major = major.ok_or_else(|| missing("binary_format_major_version"))?;
    if major != 2 {
        return Err(format!(
            "metadata: binary_format_major_version is {major}; only version 2 is read"
        ));
    }
    let node_count = node_count.ok_or_else(|| missing("node_count"))?;
    let record_size = record_size.ok_or_else(|| missing("record_size"))?;
    let ip_version = ip_version.ok_or_else(|| missing("ip_version"))?;
    if !matches!(record_size, 24 | 28 | 32) {
        return Err(format!(
            "metadata: record_size is {record_size}; it must be 24, 28 or 32"
        ));
    }
    if !matches!(ip_version, 4 | 6) {
        return Err(format!(
            "metadata: ip_version is {ip_version}; it must be 4 or 6"
        ));
    }
    // The tree, a 16-octet separator and the data section come before the marker.
    let tree_len = u128::from(node_count) * u128::from(record_size) / 4;
    if node_count == 0 || tree_len + 16 > marker as u128 {
        return Err(format!(
            "metadata: node_count {node_count} does not fit the file \
             ({node_count} nodes of {} octets and a 16-octet separator; {marker} octets before the metadata)",
            record_size / 4
        ));
    }
    let tree_len = tree_len as usize;
    Ok(Mmdb {
        tree: &bytes[..tree_len],
        data: &bytes[tree_len + 16..marker],
        node_count: node_count as usize,
        record_size: record_size as u16,
        file_len: bytes.len(),
        ip_version: ip_version as u16,
    })
}

impl<'a> Mmdb<'a> {
    /// Both records of `node` (which must be < node_count).
    fn node(&self, node: usize) -> (usize, usize) {
        let rs = usize::from(self.record_size);
        let at = node * rs / 4;
        let b = |i: usize| usize::from(self.tree.get(at + i).copied().unwrap_or(0));
        match rs {
            24 => (b(0) << 16 | b(1) << 8 | b(2), b(3) << 16 | b(4) << 8 | b(5)),
            28 => (
                (b(3) & 0xf0) << 20 | b(0) << 16 | b(1) << 8 | b(2),
                (b(3) & 0x0f) << 24 | b(4) << 16 | b(5) << 8 | b(6),
            ),
            _ => (
                b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3),
                b(4) << 24 | b(5) << 16 | b(6) << 8 | b(7),
            ),
        }
    }

    /// Every network that has a record, in address order. See the module
    /// documentation for the bounds.
    pub fn networks(&self) -> Result<Vec<Network>, String> {
        let n = self.node_count;
        let width: u32 = if self.ip_version == 6 { 128 } else { 32 };
        // The IPv4 subtree of an IPv6 database: the node at ::/96.
        let mut ipv4_start = usize::MAX;
        if width == 128 {
            let mut node = 0;
            for _ in 0..96 {
                if node >= n {
                    break;
                }
                node = self.node(node).0;
            }
            if node < n {
                ipv4_start = node;
            }
        }
        let mut seen = vec![0u64; n.div_ceil(64)];
        let mut mark = |node: usize| -> bool {
            let (w, b) = (node / 64, 1u64 << (node % 64));
            match seen.get_mut(w) {
                Some(x) if *x & b == 0 => {
                    *x |= b;
                    true
                }
                _ => false,
            }
        };
        mark(0);
        let mut out = Vec::new();
        // (node, address bits left-aligned in `width`, depth)
        let mut stack: Vec<(usize, u128, u32)> = vec![(0, 0, 0)];
        while let Some((node, bits, depth)) = stack.pop() {
            let (l, r) = self.node(node);
            // Push right first so the left side comes out first.
            for (side, rec) in [(1u128, r), (0, l)] {
                let cdepth = depth + 1;
                let cbits = bits | side << (width - cdepth);
                if rec < n {
                    if rec == ipv4_start && width == 128 && cbits > u128::from(u32::MAX) {
                        continue; // an alias of the IPv4 subtree
                    }
                    if cdepth >= width {
                        return Err(format!(
                            "the search tree is deeper than the {width} bits of an address \
                             (node {node} at bit {depth} points to node {rec})"
                        ));
                    }
                    if !mark(rec) {
                        return Err(format!(
                            "search tree node {rec} is reached twice (from node {node} at bit {depth}): \
                             the tree has a cycle or shares a subtree"
                        ));
                    }
                    stack.push((rec, cbits, cdepth));
                } else if rec > n {
                    let off = rec - n;
                    if off < 16 || off - 16 >= self.data.len() {
                        return Err(format!(
                            "search tree node {node} points outside the data section \
                             (record {rec}; {} nodes, {} octets of data)",
                            n,
                            self.data.len()
                        ));
                    }
                    out.push(Network {
                        bits: cbits,
                        prefix_len: cdepth as u8,
                        record: off - 16,
                    });
                }
            }
        }
        Ok(out)
    }

    /// A decoder over the data section; share it across records so the
    /// step budget covers the whole load.
    pub fn decoder(&self) -> Decoder<'a> {
        Decoder::new(self.data, "data section", self.file_len)
    }
}

/// One decoded control header.
#[derive(Debug, Clone, Copy)]
enum Head {
    /// Target offset, position after the pointer.
    Pointer(usize, usize),
    /// Type, payload start, payload end (scalars).
    Scalar(u8, usize, usize),
    /// Entry count, first entry.
    Map(usize, usize),
    /// Element count, first element.
    Array(usize, usize),
}

/// What [`Decoder::map_entries`] calls for each entry: (decoder, key, value offset).
type EntryFn<'f, 'a> = dyn FnMut(&mut Decoder<'a>, &'a [u8], usize) -> Result<(), String> + 'f;

/// A decoder over one section (data or metadata) with a step budget.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    what: &'static str,
    steps: u64,
    limit: u64,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf` allowed [`STEPS_PER_OCTET`] steps per octet of `budget_len`.
    fn new(buf: &'a [u8], what: &'static str, budget_len: usize) -> Self {
        Decoder {
            buf,
            what,
            steps: 0,
            limit: (budget_len as u64)
                .saturating_mul(STEPS_PER_OCTET)
                .saturating_add(4096),
        }
    }

    fn octet(&self, at: usize) -> Result<usize, String> {
        self.buf.get(at).map(|b| usize::from(*b)).ok_or_else(|| {
            format!(
                "a value at offset {at} runs past the end of the {}",
                self.what
            )
        })
    }

    fn be(&self, at: usize, len: usize) -> Result<usize, String> {
        let mut v = 0usize;
        for i in 0..len {
            v = v << 8 | self.octet(at + i)?;
        }
        Ok(v)
    }

    /// Reads the control octet(s) at `at`, counting one step.
    fn head(&mut self, at: usize) -> Result<Head, String> {
        self.steps += 1;
        if self.steps > self.limit {
            return Err(format!(
                "decoding the {} takes more than {STEPS_PER_OCTET} steps per octet of the file: \
                 its records overlap or share huge values (corrupt or hostile file)",
                self.what
            ));
        }
        let c = self.octet(at)?;
        let mut p = at + 1;
        let mut ty = (c >> 5) as u8;
        if ty == 1 {
            let ss = (c >> 3) & 3;
            let v = c & 7;
            let target = match ss {
                0 => (v << 8 | self.be(p, 1)?, 1),
                1 => ((v << 16 | self.be(p, 2)?) + 2048, 2),
                2 => ((v << 24 | self.be(p, 3)?) + 526_336, 3),
                _ => (self.be(p, 4)?, 4),
            };
            return Ok(Head::Pointer(target.0, p + target.1));
        }
        if ty == 0 {
            ty = 7u8.saturating_add(self.octet(p)? as u8);
            p += 1;
        }
        let mut size = c & 0x1f;
        if size >= 29 {
            let extra = size - 28;
            let v = self.be(p, extra)?;
            size = [29, 285, 65_821][extra - 1] + v;
            p += extra;
        }
        let left = self.buf.len().saturating_sub(p);
        match ty {
            7 | 11 => {
                // Every entry or element takes at least one octet.
                let items = if ty == 7 {
                    size.saturating_mul(2)
                } else {
                    size
                };
                if items > left {
                    return Err(format!(
                        "a {} of {size} entries at offset {at} runs past the end of the {}",
                        if ty == 7 { "map" } else { "array" },
                        self.what
                    ));
                }
                Ok(if ty == 7 {
                    Head::Map(size, p)
                } else {
                    Head::Array(size, p)
                })
            }
            2 | 3 | 4 | 5 | 6 | 8 | 9 | 10 | 14 | 15 => {
                let size_ok = match ty {
                    3 => size == 8,
                    15 => size == 4,
                    5 => size <= 2,
                    6 | 8 => size <= 4,
                    9 => size <= 8,
                    10 => size <= 16,
                    14 => size <= 1,
                    _ => true,
                };
                if !size_ok {
                    return Err(format!(
                        "a value of type {ty} at offset {at} has the impossible size {size} in the {}",
                        self.what
                    ));
                }
                // A boolean's size is its value; it has no payload.
                let len = if ty == 14 { 0 } else { size };
                if len > left {
                    return Err(format!(
                        "a value of {len} octets at offset {at} runs past the end of the {}",
                        self.what
                    ));
                }
                Ok(Head::Scalar(ty, p, p + len))
            }
            _ => Err(format!(
                "unknown value type {ty} at offset {at} in the {}",
                self.what
            )),
        }
    }

    /// The end of the value at `at`, without following pointers.
    fn skip(&mut self, at: usize, depth: u32) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        match self.head(at)? {
            Head::Pointer(_, end) => Ok(end),
            Head::Scalar(_, _, end) => Ok(end),
            Head::Map(n, mut p) => {
                for _ in 0..n.saturating_mul(2) {
                    p = self.skip(p, depth + 1)?;
                }
                Ok(p)
            }
            Head::Array(n, mut p) => {
                for _ in 0..n {
                    p = self.skip(p, depth + 1)?;
                }
                Ok(p)
            }
        }
    }

    fn too_deep(&self, at: usize) -> String {
        format!(
            "values nested more than {MAX_DEPTH} deep at offset {at} in the {}",
            self.what
        )
    }

    /// The header of the value at `at`, following one pointer.
    fn resolve(&mut self, at: usize) -> Result<Head, String> {
        match self.head(at)? {
            Head::Pointer(t, _) => match self.head(t)? {
                Head::Pointer(..) => Err(format!(
                    "a pointer at offset {at} points to another pointer in the {}",
                    self.what
                )),
                h => Ok(h),
            },
            h => Ok(h),
        }
    }

    /// Calls `f(self, key, value offset)` for each entry of the map at `at`
    /// (following a pointer to it); keys must be strings.
    fn map_entries(
        &mut self,
        at: usize,
        depth: u32,
        f: &mut EntryFn<'_, 'a>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        let Head::Map(n, mut p) = self.resolve(at)? else {
            return Err(format!(
                "the value at offset {at} of the {} is not a map",
                self.what
            ));
        };
        for _ in 0..n {
            let key = match self.resolve(p)? {
                Head::Scalar(2, s, e) => self.buf.get(s..e).unwrap_or_default(),
                _ => {
                    return Err(format!(
                        "a map key at offset {p} of the {} is not a string",
                        self.what
                    ));
                }
            };
            let v = self.skip(p, depth + 1)?;
            f(self, key, v)?;
            p = self.skip(v, depth + 1)?;
        }
        Ok(())
    }

    /// An unsigned integer (any width up to 64 bits).
    fn uint(&mut self, at: usize) -> Result<u64, String> {
        match self.resolve(at)? {
            Head::Scalar(5 | 6 | 9, s, e) => Ok(self.be(s, e - s)? as u64),
            Head::Scalar(10, s, e) if e - s <= 8 => Ok(self.be(s, e - s)? as u64),
            _ => Err("not an unsigned integer".into()),
        }
    }

    /// A string, or None for any other type.
    fn string(&mut self, at: usize) -> Result<Option<&'a [u8]>, String> {
        Ok(match self.resolve(at)? {
            Head::Scalar(2, s, e) => self.buf.get(s..e),
            _ => None,
        })
    }

    /// A double or float, or None for any other type.
    fn float(&mut self, at: usize) -> Result<Option<f64>, String> {
        Ok(match self.resolve(at)? {
            Head::Scalar(3, s, _) => Some(f64::from_bits(self.be(s, 8)? as u64)),
            Head::Scalar(15, s, _) => Some(f64::from(f32::from_bits(self.be(s, 4)? as u32))),
            _ => None,
        })
    }

    /// The fields of the record (a map) at `at` in the data section.
    pub fn record(&mut self, at: usize) -> Result<Fields<'a>, String> {
        let mut f = Fields::default();
        self.map_entries(at, 0, &mut |d, key, v| {
            match key {
                b"country_code" => f.country_code = d.string(v)?,
                b"country" | b"registered_country" | b"continent" => {
                    let want: &[u8] = if key == b"continent" {
                        b"code"
                    } else {
                        b"iso_code"
                    };
                    let mut code = None;
                    if matches!(d.resolve(v)?, Head::Map(..)) {
                        d.map_entries(v, 1, &mut |d, k, v| {
                            if k == want {
                                code = d.string(v)?;
                            }
                            Ok(())
                        })?;
                    }
                    match key {
                        b"country" => f.country_iso = code,
                        b"registered_country" => f.registered_iso = code,
                        _ => f.continent = code,
                    }
                }
                b"location" => {
                    if matches!(d.resolve(v)?, Head::Map(..)) {
                        d.map_entries(v, 1, &mut |d, k, v| {
                            match k {
                                b"latitude" => f.latitude = d.float(v)?,
                                b"longitude" => f.longitude = d.float(v)?,
                                _ => {}
                            }
                            Ok(())
                        })?;
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(f)
    }
}
