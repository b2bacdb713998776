//! Weighted: a candidate drawn with probability weight / sum of candidate
//! weights. With `affinity = "client-subnet"` the draw is a weighted
//! rendezvous hash of the client's /24 (IPv4) or /56 (IPv6), so a client
//! keeps its endpoint while the candidates stay the same, and only the
//! clients of an endpoint that leaves move.
//!
//! Weight 0 = standby: such an endpoint is answered only when no
//! candidate has a weight above 0 (every weighted endpoint is down); then
//! the standby candidates share the answer equally.
//!
//! The random source is a per-thread xorshift state: no lock, no syscall.

use super::{Candidates, Client, Figure, Note, Pick, ScopeWhy, Trace, rendezvous, subnet_key};
use crate::snapshot::{Profile, Snapshot};
use std::cell::Cell;

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

pub(super) fn splitmix(mut z: u64) -> u64 {
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

/// Whether no candidate has a weight above 0 (then weight 0 counts as 1).
#[inline]
fn standby(snap: &Snapshot, p: &Profile, c: &Candidates<'_>) -> bool {
    !p.endpoint_ids()
        .any(|id| c.ok(id) && snap.hot.get(id as usize).is_some_and(|h| h.weight > 0))
}

/// The weight endpoint `id` draws with: its own, or 1 for a standby
/// endpoint when only standby endpoints are candidates.
#[inline]
fn weight(snap: &Snapshot, id: u32, standby: bool) -> u32 {
    let w = snap.hot.get(id as usize).map(|h| h.weight).unwrap_or(0);
    if standby { w.max(1) } else { w }
}

pub(super) fn choose<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    client: &Client,
    t: &mut T,
) -> (Pick, u8) {
    let standby = standby(snap, p, c);
    if standby {
        t.note(Note::Standby);
    }
    if p.affinity_subnet && client.addr.is_some() {
        return affinity(snap, p, c, client, standby, t);
    }
    t.note(Note::Scope(0, ScopeWhy::NotClientDependent));
    let mut total: u64 = 0;
    for id in p.endpoint_ids() {
        if c.ok(id) {
            total += u64::from(weight(snap, id, standby));
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
        let w = u64::from(weight(snap, id, standby));
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
    client: &Client,
    standby: bool,
    t: &mut T,
) -> (Pick, u8) {
    let (key, scope) = subnet_key(client);
    let mut best: Option<(f64, u32)> = None;
    for id in p.endpoint_ids() {
        if !c.ok(id) {
            t.figure(id, Figure::Skipped);
            continue;
        }
        // Weighted rendezvous: score = w / -ln(u), u uniform in (0, 1).
        let score = rendezvous(key, id - p.first, 0xA5A5_5A5A, weight(snap, id, standby));
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
