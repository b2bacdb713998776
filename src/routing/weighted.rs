//! Weighted: a candidate drawn with probability weight / sum of candidate
//! weights. With `affinity = "client-subnet"` the draw is a weighted
//! rendezvous hash of the client's /24 (IPv4) or /56 (IPv6), so a client
//! keeps its endpoint while the candidates stay the same, and only the
//! clients of an endpoint that leaves move.
//!
//! The random source is a per-thread xorshift state: no lock, no syscall.

use super::{Candidates, Client, Figure, Note, Pick, ScopeWhy, Trace};
use crate::snapshot::{Profile, Snapshot};
use std::cell::Cell;
use std::net::IpAddr;

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A pseudo-random u64 from the calling thread's state.
pub(crate) fn next_random() -> u64 {
    RNG.with(|c| {
        let mut s = c.get();
        if s == 0 {
            // Seed from the address of this thread's state: distinct per thread.
            s = splitmix(c as *const Cell<u64> as u64) | 1;
        }
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        c.set(s);
        splitmix(s)
    })
}

pub(super) fn choose<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    client: &Client,
    t: &mut T,
) -> (Pick, u8) {
    if p.affinity_subnet
        && let Some(addr) = client.addr
    {
        return affinity(snap, p, c, addr, t);
    }
    t.note(Note::Scope(0, ScopeWhy::NotClientDependent));
    let mut total: u64 = 0;
    for id in p.endpoint_ids() {
        if c.ok(id) {
            total += u64::from(
                snap.endpoints
                    .get(id as usize)
                    .map(|e| e.weight)
                    .unwrap_or(0),
            );
        }
    }
    if total == 0 {
        return (Pick::NoData, 0);
    }
    let mut r = next_random() % total;
    t.note(Note::Draw { r, total });
    for id in p.endpoint_ids() {
        if !c.ok(id) {
            t.figure(id, Figure::Skipped);
            continue;
        }
        let w = u64::from(
            snap.endpoints
                .get(id as usize)
                .map(|e| e.weight)
                .unwrap_or(0),
        );
        t.figure(
            id,
            Figure::Weight {
                weight: w as u32,
                total,
            },
        );
        if r < w {
            return (Pick::One(id), 0);
        }
        r -= w;
    }
    (Pick::NoData, 0)
}

fn affinity<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    addr: IpAddr,
    t: &mut T,
) -> (Pick, u8) {
    let (key, scope) = match addr {
        IpAddr::V4(a) => (u64::from(u32::from(a) & 0xffff_ff00), 24),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (u64::from(u32::from(v4) & 0xffff_ff00), 24),
            None => (((u128::from(a) >> 72) as u64) ^ 0x6_0000_0000_0000, 56),
        },
    };
    let mut best: Option<(f64, u32)> = None;
    for id in p.endpoint_ids() {
        if !c.ok(id) {
            t.figure(id, Figure::Skipped);
            continue;
        }
        let Some(e) = snap.endpoints.get(id as usize) else {
            continue;
        };
        // Weighted rendezvous: score = w / -ln(u), u uniform in (0, 1).
        let h = splitmix(key ^ splitmix(u64::from(id - p.first) ^ 0xA5A5_5A5A));
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = f64::from(e.weight) / -u.ln();
        t.figure(id, Figure::Score(score));
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, id));
        }
    }
    match best {
        Some((_, id)) => {
            t.note(Note::Scope(scope, ScopeWhy::AffinitySubnet));
            (Pick::One(id), scope)
        }
        None => (Pick::NoData, 0),
    }
}
