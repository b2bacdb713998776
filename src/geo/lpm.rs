//! Longest-prefix match over IPv4 and IPv6, flattened at build time into
//! sorted, disjoint intervals: a lookup is one binary search over a plain
//! array, with no allocation and no pointer chasing. Nested prefixes are
//! resolved while flattening (the most specific wins), so the table answers
//! exactly what a trie would. Values are `u32` ids into a side table.
//!
//! Memory per interval: 4 + 4 + 1 bytes (IPv4) or 16 + 4 + 1 (IPv6); a table
//! of N prefixes has at most 2N + 1 intervals. A 16-bit first-level index
//! narrows each IPv4 search to one /16.

use std::net::IpAddr;

const NO_VALUE: u32 = u32::MAX;

/// One value and the length of the prefix it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The value id given at build time.
    pub value: u32,
    /// Prefix length of the matching entry (the ECS scope it justifies).
    pub prefix_len: u8,
}

#[derive(Debug, Default)]
struct Family<T> {
    starts: Vec<T>,
    values: Vec<u32>,
    plens: Vec<u8>,
}

/// Largest value id a table holds (ids are packed with the prefix length).
pub(crate) const MAX_VALUE: u32 = (1 << 24) - 2;
const PACKED_NONE: u32 = (1 << 24) - 1;

/// Searchable form of one family: starts, `value | plen << 24` per
/// interval, and, for a family of more than [`INDEX_MIN`] intervals, a
/// first-level index on the top 16 bits.
#[derive(Debug, Default)]
struct Packed<T> {
    starts: Box<[T]>,
    entries: Box<[u32]>,
    /// `index[i]` = first interval whose start's top 16 bits are ≥ i
    /// (65537 entries, 256 KiB), or empty: a small family is searched
    /// whole, and most tables are small (a subnet profile's handful of
    /// prefixes; every profile of another method has an empty table).
    index: Box<[u32]>,
}

/// Fewest intervals of a family that get a first-level index: below it a
/// binary search over the whole family takes at most 8 steps in 4 KiB.
const INDEX_MIN: usize = 1024;

/// An immutable longest-prefix-match table. One pointer wide: an empty
/// table (every profile but a subnet one has one) allocates nothing.
#[derive(Debug, Default)]
pub struct PrefixTable(Option<Box<Tables>>);

/// Both families of a non-empty table.
#[derive(Debug, Default)]
struct Tables {
    v4: Packed<u32>,
    v6: Packed<u128>,
    len: usize,
}

/// Builds a [`PrefixTable`] from (prefix, value) pairs.
#[derive(Debug, Default)]
pub struct PrefixTableBuilder {
    v4: Vec<(u32, u8, u32)>,
    v6: Vec<(u128, u8, u32)>,
}

/// The same prefix was added twice (the first such prefix, and how many).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    /// One duplicated prefix.
    pub example: (IpAddr, u8),
    /// Number of extra entries.
    pub count: usize,
}

impl PrefixTableBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a prefix; host bits are cleared. `value` must not be `u32::MAX`.
    pub fn push(&mut self, addr: IpAddr, prefix_len: u8, value: u32) {
        match addr {
            IpAddr::V4(a) => {
                let plen = prefix_len.min(32);
                let bits = u32::from(a) & mask32(plen);
                self.v4.push((bits, plen, value));
            }
            IpAddr::V6(a) => {
                let plen = prefix_len.min(128);
                let bits = u128::from(a) & mask128(plen);
                self.v6.push((bits, plen, value));
            }
        }
    }

    /// Number of prefixes added so far.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flattens into a table. With `reject_duplicates`, the same prefix twice is an error;
    /// otherwise the later one wins.
    pub fn build(self, reject_duplicates: bool) -> Result<PrefixTable, Duplicate> {
        let (t, dup) = self.build_lenient();
        match dup {
            Some(d) if reject_duplicates => Err(d),
            _ => Ok(t),
        }
    }

    /// Flattens into a table where a later duplicate wins, and reports the duplicates.
    pub fn build_lenient(mut self) -> (PrefixTable, Option<Duplicate>) {
        let len = self.len();
        let (v4, d4) = flatten(&mut self.v4, |s, p| s | !mask32(p));
        let (v6, d6) = flatten(&mut self.v6, |s, p| s | !mask128(p));
        let dup = match (d4, d6) {
            (None, None) => None,
            (a, b) => {
                let count = a.map(|x| x.1).unwrap_or(0) + b.map(|x| x.1).unwrap_or(0);
                let example = match (a, b) {
                    (Some((p, _)), _) => (IpAddr::V4(p.0.into()), p.1),
                    (None, Some((p, _))) => (IpAddr::V6(p.0.into()), p.1),
                    (None, None) => (IpAddr::V4(0.into()), 0),
                };
                Some(Duplicate { example, count })
            }
        };
        let v4 = pack(v4, |s| (s >> 16) as usize);
        let v6 = pack(v6, |s| (s >> 112) as usize);
        let t = if v4.starts.is_empty() && v6.starts.is_empty() {
            PrefixTable(None)
        } else {
            PrefixTable(Some(Box::new(Tables { v4, v6, len })))
        };
        (t, dup)
    }
}

fn mask32(plen: u8) -> u32 {
    if plen == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(plen.min(32)))
    }
}

fn mask128(plen: u8) -> u128 {
    if plen == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(plen.min(128)))
    }
}

trait Addr: Copy + Ord + Default {
    const MAX: Self;
    fn succ(self) -> Self;
}
impl Addr for u32 {
    const MAX: Self = u32::MAX;
    fn succ(self) -> Self {
        self.wrapping_add(1)
    }
}
impl Addr for u128 {
    const MAX: Self = u128::MAX;
    fn succ(self) -> Self {
        self.wrapping_add(1)
    }
}

fn pack<T: Addr>(f: Family<T>, hi16: impl Fn(T) -> usize) -> Packed<T> {
    if f.values.iter().all(|v| *v == NO_VALUE) {
        // No prefix of this family: nothing to search, nothing allocated.
        return Packed {
            starts: Box::default(),
            entries: Box::default(),
            index: Box::default(),
        };
    }
    let entries = f
        .values
        .iter()
        .zip(&f.plens)
        .map(|(v, p)| if *v == NO_VALUE || *v > MAX_VALUE { PACKED_NONE } else { *v } | u32::from(*p) << 24)
        .collect();
    let mut index = Vec::new();
    if f.starts.len() > INDEX_MIN {
        index.reserve_exact(65537);
        let mut pos = 0usize;
        for hi in 0..=65536usize {
            while pos < f.starts.len() && hi16(f.starts[pos]) < hi {
                pos += 1;
            }
            index.push(pos as u32);
        }
    }
    Packed {
        starts: f.starts.into(),
        entries,
        index: index.into(),
    }
}

/// Flattened family, and (first duplicate, number of duplicates).
type Flat<T> = (Family<T>, Option<((T, u8), usize)>);

fn flatten<T: Addr>(items: &mut [(T, u8, u32)], last_of: impl Fn(T, u8) -> T) -> Flat<T> {
    // Parents before children: by start, then shorter prefix first; stable, so
    // a later duplicate comes after an earlier one.
    items.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = Family {
        starts: Vec::new(),
        values: Vec::new(),
        plens: Vec::new(),
    };
    let emit = |out: &mut Family<T>, at: T, v: Option<(u32, u8)>| {
        let (val, plen) = v.unwrap_or((NO_VALUE, 0));
        if out.starts.last() == Some(&at) {
            let n = out.starts.len() - 1;
            out.values[n] = val;
            out.plens[n] = plen;
        } else {
            out.starts.push(at);
            out.values.push(val);
            out.plens.push(plen);
        }
    };
    emit(&mut out, T::default(), None);
    // Stack of open prefixes: (last address, value, prefix length).
    let mut stack: Vec<(T, u32, u8)> = Vec::new();
    let mut prev: Option<(T, u8)> = None;
    let mut dup: Option<((T, u8), usize)> = None;
    for &(start, plen, value) in items.iter() {
        if prev == Some((start, plen)) {
            dup = Some(match dup {
                None => ((start, plen), 1),
                Some((first, n)) => (first, n + 1),
            });
            // Later wins: replace the open entry.
            if let Some(top) = stack.last_mut() {
                top.1 = value;
            }
            emit(&mut out, start, Some((value, plen)));
            continue;
        }
        prev = Some((start, plen));
        while let Some(&(end, _, _)) = stack.last() {
            if end >= start {
                break;
            }
            stack.pop();
            if end != T::MAX {
                emit(&mut out, end.succ(), stack.last().map(|t| (t.1, t.2)));
            }
        }
        emit(&mut out, start, Some((value, plen)));
        stack.push((last_of(start, plen), value, plen));
    }
    while let Some((end, _, _)) = stack.pop() {
        if end != T::MAX {
            emit(&mut out, end.succ(), stack.last().map(|t| (t.1, t.2)));
        }
    }
    // Merge neighbours that carry the same value and length (gaps, mostly).
    let mut merged = Family {
        starts: Vec::with_capacity(out.starts.len()),
        values: Vec::with_capacity(out.starts.len()),
        plens: Vec::with_capacity(out.starts.len()),
    };
    for i in 0..out.starts.len() {
        if merged.values.last() == Some(&out.values[i])
            && merged.plens.last() == Some(&out.plens[i])
            && out.values[i] == NO_VALUE
        {
            continue;
        }
        merged.starts.push(out.starts[i]);
        merged.values.push(out.values[i]);
        merged.plens.push(out.plens[i]);
    }
    merged.starts.shrink_to_fit();
    merged.values.shrink_to_fit();
    merged.plens.shrink_to_fit();
    (merged, dup)
}

// The lookup side runs on the query path: no indexing, no unwrap.
#[deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
impl PrefixTable {
    /// The most specific prefix containing `addr`. IPv4-mapped IPv6
    /// addresses are looked up as IPv4. No allocation.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<Hit> {
        let t = self.0.as_deref()?;
        match addr {
            IpAddr::V4(a) => t.lookup_v4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => t.lookup_v4(u32::from(v4)),
                None => t.lookup_v6(u128::from(a)),
            },
        }
    }

    /// Number of prefixes the table was built from.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |t| t.len)
    }

    /// Whether the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of heap the table uses.
    pub fn heap_bytes(&self) -> usize {
        let Some(t) = self.0.as_deref() else {
            return 0;
        };
        std::mem::size_of::<Tables>()
            + std::mem::size_of_val(&*t.v4.starts)
            + std::mem::size_of_val(&*t.v4.entries)
            + std::mem::size_of_val(&*t.v4.index)
            + std::mem::size_of_val(&*t.v6.starts)
            + std::mem::size_of_val(&*t.v6.entries)
            + std::mem::size_of_val(&*t.v6.index)
    }
}

// The lookup side runs on the query path: no indexing, no unwrap.
#[deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
impl Tables {
    #[inline]
    fn lookup_v4(&self, a: u32) -> Option<Hit> {
        let f = &self.v4;
        if f.starts.is_empty() {
            return None;
        }
        let i = find(&f.starts, &f.index, a, (a >> 16) as usize)?;
        let mut h = unpack(*f.entries.get(i)?)?;
        // Narrow the scope when more specific prefixes split this entry: the
        // shortest prefix of `a` that stays inside the interval.
        let start = *f.starts.get(i)?;
        let end = f
            .starts
            .get(i + 1)
            .map(|n| n.wrapping_sub(1))
            .unwrap_or(u32::MAX);
        while h.prefix_len < 32 {
            let m = mask32(h.prefix_len);
            if a & m >= start && (a & m) | !m <= end {
                break;
            }
            h.prefix_len += 1;
        }
        Some(h)
    }

    #[inline]
    fn lookup_v6(&self, a: u128) -> Option<Hit> {
        let f = &self.v6;
        if f.starts.is_empty() {
            return None;
        }
        let i = find(&f.starts, &f.index, a, (a >> 112) as usize)?;
        let mut h = unpack(*f.entries.get(i)?)?;
        let start = *f.starts.get(i)?;
        let end = f
            .starts
            .get(i + 1)
            .map(|n| n.wrapping_sub(1))
            .unwrap_or(u128::MAX);
        while h.prefix_len < 128 {
            let m = mask128(h.prefix_len);
            if a & m >= start && (a & m) | !m <= end {
                break;
            }
            h.prefix_len += 1;
        }
        Some(h)
    }
}

/// The interval holding `a`: the last whose start is ≤ `a`. The index, if
/// any, narrows the search to the intervals starting in `a`'s top-16-bit
/// block, plus the one that began before it.
#[inline]
#[deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
fn find<T: Copy + Ord>(starts: &[T], index: &[u32], a: T, hi: usize) -> Option<usize> {
    if index.is_empty() {
        return starts.partition_point(|s| *s <= a).checked_sub(1);
    }
    let lo = *index.get(hi)? as usize;
    let up = *index.get(hi + 1)? as usize;
    let slice = starts.get(lo..up)?;
    (lo + slice.partition_point(|s| *s <= a)).checked_sub(1)
}

#[inline]
fn unpack(e: u32) -> Option<Hit> {
    let value = e & PACKED_NONE;
    if value == PACKED_NONE {
        return None;
    }
    Some(Hit {
        value,
        prefix_len: (e >> 24) as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(prefixes: &[(&str, u32)]) -> PrefixTable {
        let mut b = PrefixTableBuilder::new();
        for (p, v) in prefixes {
            let n: ipnet::IpNet = p.parse().unwrap();
            b.push(n.addr(), n.prefix_len(), *v);
        }
        b.build(true).unwrap()
    }

    fn q(t: &PrefixTable, a: &str) -> Option<(u32, u8)> {
        t.lookup(a.parse().unwrap())
            .map(|h| (h.value, h.prefix_len))
    }

    #[test]
    fn nested_prefixes_most_specific_wins() {
        let tab = t(&[
            ("10.0.0.0/8", 1),
            ("10.1.0.0/16", 2),
            ("10.1.2.0/24", 3),
            ("10.200.0.0/16", 4),
            ("0.0.0.0/0", 9),
        ]);
        assert_eq!(q(&tab, "10.1.2.3"), Some((3, 24)));
        // 10.1.0.0/16 is split by 10.1.2.0/24: the scope narrows to what is uniform.
        assert_eq!(q(&tab, "10.1.3.3"), Some((2, 24)));
        assert_eq!(q(&tab, "10.1.0.3"), Some((2, 23)));
        assert_eq!(q(&tab, "10.1.128.3"), Some((2, 17)));
        assert_eq!(q(&tab, "10.2.0.0"), Some((1, 15)));
        assert_eq!(q(&tab, "10.200.255.255"), Some((4, 16)));
        assert_eq!(q(&tab, "10.201.0.0"), Some((1, 16)));
        assert_eq!(q(&tab, "11.0.0.0"), Some((9, 8)));
        assert_eq!(q(&tab, "255.255.255.255"), Some((9, 1)));
        assert_eq!(q(&tab, "::ffff:10.1.2.3"), Some((3, 24)));
    }

    #[test]
    fn gaps_and_edges() {
        let tab = t(&[
            ("192.0.2.0/24", 1),
            ("255.255.255.255/32", 2),
            ("2001:db8::/32", 3),
            ("2001:db8:1::/48", 4),
            ("::/128", 5),
        ]);
        assert_eq!(q(&tab, "192.0.1.255"), None);
        assert_eq!(q(&tab, "192.0.2.0"), Some((1, 24)));
        assert_eq!(q(&tab, "192.0.2.255"), Some((1, 24)));
        assert_eq!(q(&tab, "192.0.3.0"), None);
        assert_eq!(q(&tab, "255.255.255.255"), Some((2, 32)));
        assert_eq!(q(&tab, "255.255.255.254"), None);
        assert_eq!(q(&tab, "2001:db8:1::5"), Some((4, 48)));
        assert_eq!(q(&tab, "2001:db8:2::5"), Some((3, 47)));
        assert_eq!(q(&tab, "2001:db9::"), None);
        assert_eq!(q(&tab, "::"), Some((5, 128)));
        assert_eq!(q(&tab, "::1"), None);
    }

    #[test]
    fn duplicates() {
        let mut b = PrefixTableBuilder::new();
        b.push("10.0.0.0".parse().unwrap(), 8, 1);
        b.push("10.0.0.0".parse().unwrap(), 8, 2);
        let d = b.build(true).unwrap_err();
        assert_eq!((d.example, d.count), (("10.0.0.0".parse().unwrap(), 8), 1));
        let mut b = PrefixTableBuilder::new();
        b.push("10.0.0.0".parse().unwrap(), 8, 1);
        b.push("10.0.0.0".parse().unwrap(), 8, 2);
        assert_eq!(
            b.build(false)
                .unwrap()
                .lookup("10.9.9.9".parse().unwrap())
                .unwrap()
                .value,
            2
        );
    }

    /// Without a prefix a family allocates nothing; a table of a few
    /// prefixes has no first-level index (a subnet profile's table costs
    /// what its intervals do, not 512 KiB).
    #[test]
    fn small_tables_are_small() {
        let empty = PrefixTableBuilder::new().build(true).unwrap();
        assert_eq!(empty.heap_bytes(), 0);
        assert_eq!(empty.lookup("10.0.0.1".parse().unwrap()), None);
        assert_eq!(empty.lookup("2001:db8::1".parse().unwrap()), None);
        let tab = t(&[("10.0.0.0/8", 1), ("10.1.0.0/16", 2)]);
        assert!(tab.heap_bytes() < 256, "{}", tab.heap_bytes());
        assert_eq!(q(&tab, "10.1.0.1"), Some((2, 16)));
        assert_eq!(q(&tab, "2001:db8::1"), None);
    }

    #[test]
    fn matches_a_naive_scan() {
        // Above INDEX_MIN intervals (indexed) and below (searched whole).
        naive_scan(2000);
        naive_scan(40);
    }

    fn naive_scan(prefixes: u32) {
        // Pseudo-random nested prefixes checked against a linear scan.
        let mut x: u64 = 0x1234_5678_9abc_def0;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut list = Vec::new();
        let mut b = PrefixTableBuilder::new();
        for v in 0..prefixes {
            let plen = 8 + (next() % 17) as u8;
            let a = (next() as u32 & 0x0fff_ffff) & mask32(plen);
            if list.iter().any(|&(s, p, _)| s == a && p == plen) {
                continue;
            }
            list.push((a, plen, v));
            b.push(IpAddr::V4(a.into()), plen, v);
        }
        let tab = b.build(true).unwrap();
        for _ in 0..20000 {
            let a = next() as u32 & 0x0fff_ffff;
            let want = list
                .iter()
                .filter(|&&(s, p, _)| a & mask32(p) == s)
                .max_by_key(|&&(_, p, _)| p)
                .map(|&(_, p, v)| (v, p));
            let got = tab
                .lookup(IpAddr::V4(a.into()))
                .map(|h| (h.value, h.prefix_len));
            assert_eq!(got.map(|g| g.0), want.map(|w| w.0));
            if let (Some(g), Some(w)) = (got, want) {
                assert!(g.1 >= w.1);
                // Every address in the scope prefix must get the same answer.
                let m = mask32(g.1);
                for probe in [a & m, (a & m) | !m] {
                    let other = list
                        .iter()
                        .filter(|&&(s, p, _)| probe & mask32(p) == s)
                        .max_by_key(|&&(_, p, _)| p)
                        .map(|&(_, _, v)| v);
                    assert_eq!(other, Some(g.0));
                }
            }
        }
    }
}
