//! Writes a synthetic latency table (the CSV of docs/CONFIG.md, "Latency
//! table") of the size and shape of a real Internet-wide one: by default
//! about 1,000,000 IPv4 and IPv6 prefixes × 14 regions. Deterministic: the
//! same arguments give the same bytes.
//!
//! ```text
//! cargo run --release --example make-latency-table -- OUT.csv [--ipv6]
//!     [--seed S] [--regions eastus,westeurope,...|all] [--scale F]
//! ```
//!
//! No real data goes in. Prefixes come from splitting the public unicast
//! space (IPv4 `1/8`–`223/8`; IPv6 the RIR blocks under `2000::/3`) at
//! random until each prefix length has the number of rows the public RIR
//! delegation statistics give it (IPv4 peaks at /24, IPv6 at /32, /48 and
//! /64; the histogram is `V4_ROWS` and `V6_ROWS` below, about 493,000 and
//! 517,000 rows). Each block belongs to a continent (one per IPv4 /8 or
//! IPv6 RIR block) and each row to a country of it, mostly its parent's.
//! A row's figure for a region is the engine's own distance model between
//! the country's centroid and the region (`trafficmgr::geo::distance`,
//! `rtt_ms = 2 + 2 * km * 1.5 / 200`): a model, not measurements.
//!
//! `tests/latency_1m.rs` includes this file as a module and calls
//! [`generate`]; `make latency-1m` runs it as a program.

#![allow(dead_code)]

use std::io::Write;
use trafficmgr::geo::builtin;
use trafficmgr::geo::distance::{estimated_rtt_ms, great_circle_km};

/// The regions of the default table (the 14-region performance profile).
pub const DEFAULT_REGIONS: [&str; 14] = include!("default-regions.in");

/// IPv4 rows per prefix length, /8 to /32.
const V4_ROWS: [u32; 25] = [
    16, 10, 58, 174, 421, 749, 1505, 2863, 7587, 4289, 6819, 12615, 16257, 23368, 60401, 48453,
    99345, 10203, 15056, 20782, 32069, 47942, 34471, 18497, 29696,
];

/// IPv6 rows per prefix length, /16 to /128 (a few hundred each past /64).
const V6_ROWS: [u32; 113] = [
    1, 1, 1, 3, 27, 11, 33, 15, 72, 20, 39, 60, 255, 15620, 1137, 1351, 32876, 1463, 1789, 2108,
    4897, 3021, 3886, 4137, 12927, 3902, 6400, 7901, 12747, 11240, 10243, 13121, 33536, 4753, 6183,
    7111, 10463, 10434, 13854, 9020, 12004, 8486, 9308, 10993, 14898, 18156, 27848, 38946, 87965,
    499, 498, 500, 499, 500, 502, 500, 502, 506, 506, 505, 506, 506, 505, 506, 506, 507, 507, 507,
    507, 507, 507, 507, 506, 507, 505, 505, 507, 510, 514, 515, 529, 512, 511, 512, 514, 513, 514,
    501, 501, 514, 507, 533, 527, 600, 977, 2493, 5519, 420, 419, 422, 420, 419, 421, 424, 441,
    394, 399, 397, 477, 665, 1155, 2207, 249,
];

/// Options of one table.
#[derive(Debug, Clone)]
pub struct Options {
    pub ipv6: bool,
    pub seed: u64,
    pub regions: Vec<String>,
    /// Multiplies every row count (1.0 = about 1M rows with IPv6).
    pub scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ipv6: true,
            seed: 1,
            regions: DEFAULT_REGIONS.iter().map(|s| s.to_string()).collect(),
            scale: 1.0,
        }
    }
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
struct Node {
    bits: u128,
    country: u16,
}

/// One family: split `roots` (prefixes of length `root_len`, each with a
/// continent) until every length has its target count of rows.
#[allow(clippy::too_many_arguments)]
fn family(
    rng: &mut Rng,
    width: u32,
    root_len: u32,
    roots: &[(u128, usize)],
    first_len: u32,
    targets: &[u32],
    scale: f64,
    by_continent: &[Vec<u16>],
    out: &mut Vec<(u128, u32, u16)>,
) {
    let target = |len: u32| -> u64 {
        len.checked_sub(first_len)
            .and_then(|i| targets.get(i as usize))
            .map_or(0, |&t| (f64::from(t) * scale).round() as u64)
    };
    let mut level: Vec<(Node, usize)> = roots
        .iter()
        .map(|&(bits, cont)| {
            let cs = &by_continent[cont];
            let country = cs[rng.below(cs.len() as u64) as usize];
            (Node { bits, country }, cont)
        })
        .collect();
    for len in root_len..=width {
        let n = level.len() as u64;
        if n == 0 {
            break;
        }
        let rows = target(len).min(n);
        let after: u64 = (len + 1..=width).map(target).sum();
        let splits = if len == width {
            0
        } else {
            (n - rows).min(after.div_ceil(2))
        };
        let (p_row, p_split) = (rows as f64 / n as f64, splits as f64 / n as f64);
        let mut next = Vec::with_capacity((2 * splits) as usize);
        for (node, cont) in level {
            let u = rng.unit();
            if u < p_row {
                out.push((node.bits, len, node.country));
            } else if u < p_row + p_split {
                let half = 1u128 << (width - len - 1);
                for bits in [node.bits, node.bits | half] {
                    let country = if rng.below(4) == 0 {
                        let cs = &by_continent[cont];
                        cs[rng.below(cs.len() as u64) as usize]
                    } else {
                        node.country
                    };
                    next.push((Node { bits, country }, cont));
                }
            }
        }
        level = next;
    }
}

/// Writes the table to `out`; returns the number of prefixes.
pub fn generate(out: &mut dyn Write, o: &Options) -> std::io::Result<usize> {
    let regions: Vec<&builtin::BuiltinRegion> = o
        .regions
        .iter()
        .map(|r| {
            builtin::regions()
                .iter()
                .find(|b| b.name == r)
                .ok_or_else(|| std::io::Error::other(format!("unknown region {r:?}")))
        })
        .collect::<Result<_, _>>()?;
    let countries = builtin::countries();
    let mut by_continent: Vec<Vec<u16>> = vec![Vec::new(); builtin::continents().len()];
    for (i, c) in countries.iter().enumerate() {
        if let Some(k) = builtin::continent_index(&c.continent) {
            by_continent[k].push(i as u16);
        }
    }
    let cont = |c: &str| builtin::continent_index(c.as_bytes()).unwrap_or(0);
    let mut rng = Rng(o.seed ^ 0x7472_6166_6669_636d);

    // IPv4: every /8 of 1-223 but 10 and 127, with a continent each (about
    // the RIRs' shares of the space).
    let weighted = [
        ("NA", 30u64),
        ("EU", 27),
        ("AS", 27),
        ("SA", 6),
        ("AF", 4),
        ("OC", 6),
    ];
    let total: u64 = weighted.iter().map(|w| w.1).sum();
    let mut roots4 = Vec::new();
    for a in 1u128..=223 {
        if a == 10 || a == 127 {
            continue;
        }
        let mut pick = rng.below(total);
        let mut k = 0;
        while pick >= weighted[k].1 {
            pick -= weighted[k].1;
            k += 1;
        }
        roots4.push((a << 24, cont(weighted[k].0)));
    }
    let mut v4 = Vec::new();
    family(
        &mut rng,
        32,
        8,
        &roots4,
        8,
        &V4_ROWS,
        o.scale,
        &by_continent,
        &mut v4,
    );
    v4.sort_unstable_by_key(|r| r.0);

    // IPv6: the RIR blocks (/12), 2001::/12 shared by all.
    let mut v6 = Vec::new();
    if o.ipv6 {
        let roots6: Vec<(u128, usize)> = [
            (0x200, "EU"),
            (0x240, "AS"),
            (0x260, "NA"),
            (0x280, "SA"),
            (0x2a0, "EU"),
            (0x2c0, "AF"),
        ]
        .iter()
        .map(|&(b, c)| ((b as u128) << 116, cont(c)))
        .collect();
        family(
            &mut rng,
            128,
            12,
            &roots6,
            16,
            &V6_ROWS,
            o.scale,
            &by_continent,
            &mut v6,
        );
        v6.sort_unstable_by_key(|r| r.0);
    }

    // One line of figures per country, made once.
    let mut cells: Vec<Option<String>> = vec![None; countries.len()];
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    write!(w, "prefix")?;
    for r in &o.regions {
        write!(w, ",{r}")?;
    }
    writeln!(w)?;
    let mut line = |w: &mut dyn Write, c: u16| -> std::io::Result<()> {
        let s = cells[c as usize].get_or_insert_with(|| {
            let k = &countries[c as usize];
            regions
                .iter()
                .map(|r| {
                    format!(
                        ",{}",
                        estimated_rtt_ms(great_circle_km(k.lat, k.lon, r.lat, r.lon))
                    )
                })
                .collect()
        });
        writeln!(w, "{s}")
    };
    for &(bits, len, c) in &v4 {
        write!(w, "{}/{len}", std::net::Ipv4Addr::from(bits as u32))?;
        line(&mut w, c)?;
    }
    for &(bits, len, c) in &v6 {
        write!(w, "{}/{len}", std::net::Ipv6Addr::from(bits))?;
        line(&mut w, c)?;
    }
    w.flush()?;
    Ok(v4.len() + v6.len())
}

fn usage() -> ! {
    eprintln!(
        "usage: make-latency-table OUT.csv [--ipv6] [--seed S] [--regions a,b,...|all] [--scale F]"
    );
    std::process::exit(2)
}

fn main() {
    let mut o = Options {
        ipv6: false,
        ..Options::default()
    };
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ipv6" => o.ipv6 = true,
            "--seed" => {
                o.seed = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--scale" => {
                o.scale = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--regions" => {
                let v = args.next().unwrap_or_else(|| usage());
                o.regions = if v == "all" {
                    builtin::regions()
                        .iter()
                        .map(|r| r.name.to_string())
                        .collect()
                } else {
                    v.split(',').map(str::to_string).collect()
                };
            }
            _ if a.starts_with('-') || out.is_some() => usage(),
            _ => out = Some(a),
        }
    }
    let Some(out) = out else { usage() };
    let res = std::fs::File::create(&out).and_then(|mut f| generate(&mut f, &o));
    match res {
        Ok(n) => println!("{out}: {n} prefixes x {} regions", o.regions.len()),
        Err(e) => {
            eprintln!("make-latency-table: {out}: {e}");
            std::process::exit(1)
        }
    }
}
