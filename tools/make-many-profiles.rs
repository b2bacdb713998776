//! Writes a large configuration for the memory and compile benchmarks of
//! docs/PERFORMANCE.md ("Many profiles"): `N` profiles of 4 endpoints
//! each in zone `tm.example`, methods mixed by position — `i % 4 == 0`
//! subnet (10 prefixes over the first three endpoints, the fourth the
//! catch-all), `1` performance (4 of the 14 regions of the latency table,
//! which every performance profile shares), `2` weighted, `3` priority,
//! geographic or multivalue in turn. Deterministic: the same arguments
//! give the same bytes.
//!
//! ```text
//! cargo run --release --example make-many-profiles -- OUT.toml N [LATENCY_TABLE]
//! ```
//!
//! Without a latency table the performance profiles answer by distance
//! (every region has coordinates). `tests/many_profiles.rs` includes this
//! file as a module and checks the answers of every method against
//! [`expected`]; `benches/profiles.rs` and `tests/latency_1m.rs` use
//! [`config`].

#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The regions of the default latency table (tools/default-regions.in).
pub const REGIONS: [&str; 14] = include!("default-regions.in");

/// Geographic routing codes, one per endpoint of a geographic profile.
const GEO: [&str; 4] = ["EU", "NA", "AS", "WORLD"];

/// What profile `i` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `subnet`, prefixes from [`subnet_prefix`].
    Subnet,
    /// `performance`, regions from [`regions_of`].
    Performance,
    /// `weighted`, weights 1, 2, 3, 4.
    Weighted,
    /// `priority`: the first endpoint answers.
    Priority,
    /// `geographic`, codes [`GEO`].
    Geographic,
    /// `multivalue`, addresses only.
    Multivalue,
}

/// The routing method of profile `i`.
pub fn kind(i: usize) -> Kind {
    match i % 4 {
        0 => Kind::Subnet,
        1 => Kind::Performance,
        2 => Kind::Weighted,
        _ => match (i / 4) % 3 {
            0 => Kind::Priority,
            1 => Kind::Geographic,
            _ => Kind::Multivalue,
        },
    }
}

/// The name of profile `i` (under zone `tm.example`).
pub fn name(i: usize) -> String {
    format!("p{i}")
}

/// Endpoint `e`'s IPv4 address in profile `i`: unique per (profile, endpoint).
pub fn address(i: usize, e: usize) -> Ipv4Addr {
    let n = (i as u32).wrapping_mul(4).wrapping_add(e as u32);
    Ipv4Addr::from(0x6400_0000u32.wrapping_add(n) | 0x0100_0000)
}

/// Prefix `k` (0..10) of subnet profile `i`: a /24 in 10.0.0.0/8, or a /20
/// in 172.16.0.0/12 for k = 9 (so prefix lengths vary). Within one profile
/// they never repeat; across profiles they may (every profile has its own table).
pub fn subnet_prefix(i: usize, k: usize) -> (Ipv4Addr, u8) {
    if k == 9 {
        let x = (i as u32 % 256) << 12;
        (Ipv4Addr::from(0xac10_0000u32 | x), 20)
    } else {
        let x = ((i as u32).wrapping_mul(9).wrapping_add(k as u32) & 0xffff) << 8;
        (Ipv4Addr::from(0x0a00_0000u32 | x), 24)
    }
}

/// The endpoint of a subnet profile that claims prefix `k`.
pub fn subnet_owner(k: usize) -> usize {
    k % 3
}

/// The 4 regions of performance profile `i`.
pub fn regions_of(i: usize) -> [usize; 4] {
    let b = i % REGIONS.len();
    [
        b,
        (b + 3) % REGIONS.len(),
        (b + 7) % REGIONS.len(),
        (b + 10) % REGIONS.len(),
    ]
}

/// The configuration: `n` profiles, reading `latency_table` if given.
pub fn config(n: usize, latency_table: Option<&str>) -> String {
    let mut s = String::with_capacity(n * 420 + 256);
    s.push_str("[engine]\nwatch_interval = \"0s\"\n");
    if let Some(t) = latency_table {
        let _ = writeln!(s, "latency_table = \"{t}\"");
    }
    s.push_str("[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n");
    for i in 0..n {
        profile(&mut s, i);
    }
    s
}

fn profile(s: &mut String, i: usize) {
    let k = kind(i);
    let routing = match k {
        Kind::Subnet => "subnet",
        Kind::Performance => "performance",
        Kind::Weighted => "weighted",
        Kind::Priority => "priority",
        Kind::Geographic => "geographic",
        Kind::Multivalue => "multivalue",
    };
    let _ = write!(
        s,
        "[[profile]]\nname = \"{}\"\nrouting = \"{routing}\"\n",
        name(i)
    );
    for e in 0..4 {
        let _ = write!(s, "[[profile.endpoint]]\nname = \"e{e}\"\n");
        // Odd endpoints of non-multivalue profiles answer CNAME, the rest A.
        if e % 2 == 1 && k != Kind::Multivalue {
            let _ = writeln!(s, "target = \"e{e}.{}.example\"", name(i));
        } else {
            let _ = writeln!(s, "addresses = [\"{}\"]", address(i, e));
        }
        match k {
            Kind::Subnet if e < 3 => {
                s.push_str("subnets = [");
                for p in (0..10).filter(|p| subnet_owner(*p) == e) {
                    let (a, l) = subnet_prefix(i, p);
                    let _ = write!(s, "\"{a}/{l}\", ");
                }
                s.push_str("]\n");
            }
            Kind::Performance => {
                let _ = writeln!(s, "location = \"{}\"", REGIONS[regions_of(i)[e]]);
            }
            Kind::Weighted => {
                let _ = writeln!(s, "weight = {}", e + 1);
            }
            Kind::Geographic => {
                let _ = writeln!(s, "geo = [\"{}\"]", GEO[e]);
            }
            _ => {}
        }
    }
}

/// What profile `i` answers for an A query from `client` when every
/// endpoint is online, where the method makes that certain: the endpoint
/// index, or `None` where it depends on a draw (weighted), on the latency
/// table (performance) or on GeoIP data (geographic).
pub fn expected(i: usize, client: Ipv4Addr) -> Option<usize> {
    match kind(i) {
        Kind::Subnet => {
            let c = u32::from(client);
            let mut best: Option<(u8, usize)> = None;
            for k in 0..10 {
                let (a, l) = subnet_prefix(i, k);
                let m = u32::MAX << (32 - u32::from(l));
                if c & m == u32::from(a) && best.is_none_or(|b| l > b.0) {
                    best = Some((l, subnet_owner(k)));
                }
            }
            Some(best.map_or(3, |b| b.1))
        }
        Kind::Priority => Some(0),
        _ => None,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(out), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: make-many-profiles OUT.toml N [LATENCY_TABLE]");
        std::process::exit(2);
    };
    let text = config(n, args.get(2).map(String::as_str));
    if let Err(e) = std::fs::write(out, text) {
        eprintln!("{out}: {e}");
        std::process::exit(1);
    }
}
