//! Routing: which endpoint(s) of a profile answer a client (SPEC §3). One
//! file per method; this file holds what they share — the candidate rule of
//! §3.1 and the dispatch. No allocation, no lock: health is read from the
//! snapshot's atomic words.
//!
//! Candidate rule (per profile), as a truth table:
//!
//! | profile enabled | any enabled | any online | all_down    | candidates            |
//! |-----------------|-------------|------------|-------------|-----------------------|
//! | no              | –           | –          | –           | none → NXDOMAIN       |
//! | yes             | no          | –          | –           | none → NXDOMAIN       |
//! | yes             | yes         | yes        | –           | the online endpoints  |
//! | yes             | yes         | no         | fail-open   | every enabled one     |
//! | yes             | yes         | no         | fail-closed | none → NODATA         |
//!
//! Online = enabled and not Degraded; a nested endpoint is online when its
//! child has at least `min_children` online endpoints.

mod geographic;
mod multivalue;
mod performance;
mod priority;
mod subnet;
mod weighted;

use crate::config::{AllDown, Routing};
use crate::health::MonitorStatus;
use crate::snapshot::{Profile, Snapshot};
use std::net::IpAddr;

/// The client as routing sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client {
    /// The address decisions use (ECS address if given, else the peer).
    pub addr: Option<IpAddr>,
    /// Bits of `addr` that are meaningful (ECS source prefix, or 32/128).
    pub source_prefix: u8,
}

/// What a profile decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// One endpoint.
    One(u32),
    /// Several endpoints (multivalue), in order.
    Many([u32; 8], u8),
    /// No answer of this profile (NODATA).
    NoData,
    /// The profile answers NXDOMAIN.
    NxDomain,
}

/// Which endpoints may be chosen (SPEC §3.1): a bit per endpoint of the
/// profile, computed once per query (profiles of more than 64 endpoints
/// ask the health words again for the rest).
#[derive(Debug, Clone, Copy)]
pub struct Candidates<'a> {
    snap: &'a Snapshot,
    first: u32,
    mask: u64,
    only_online: bool,
    depth: u32,
}

impl Candidates<'_> {
    /// Whether endpoint `id` may be chosen.
    #[inline]
    pub fn ok(&self, id: u32) -> bool {
        let i = id.wrapping_sub(self.first);
        if i < 64 {
            return self.mask & (1u64 << i) != 0;
        }
        let Some(h) = self.snap.hot.get(id as usize) else {
            return false;
        };
        h.enabled && (!self.only_online || online(self.snap, id, self.depth))
    }
}

/// Whether endpoint `id` is online (enabled, not degraded; nested: enough online children).
#[inline]
pub fn online(snap: &Snapshot, id: u32, depth: u32) -> bool {
    let Some(h) = snap.hot.get(id as usize) else {
        return false;
    };
    if !h.enabled {
        return false;
    }
    if !h.nested {
        return snap.health.status(id) != MonitorStatus::Degraded;
    }
    nested_online(snap, h.child, h.min_children, depth)
}

#[inline(never)]
fn nested_online(snap: &Snapshot, child: u32, min_children: u32, depth: u32) -> bool {
    let Some(cp) = snap.profiles.get(child as usize) else {
        return false;
    };
    if !cp.enabled || depth > 10 {
        return false;
    }
    let mut n = 0;
    for cid in cp.endpoint_ids() {
        if online(snap, cid, depth + 1) {
            n += 1;
            if n >= min_children {
                return true;
            }
        }
    }
    false
}

/// Decides for profile `p`. Returns the pick and the ECS scope it depended on.
pub fn route(snap: &Snapshot, p: &Profile, client: &Client, depth: u32) -> (Pick, u8) {
    if !p.enabled || depth > 10 {
        return (Pick::NxDomain, 0);
    }
    // Enabled and online bits of the first 64 endpoints: one pass over the
    // health words; nested endpoints ask their children.
    let enabled = p.enabled_mask;
    let mut on = enabled & !p.nested_mask & !snap.health.degraded_mask(p.id);
    let mut nested = enabled & p.nested_mask;
    while nested != 0 {
        let i = nested.trailing_zeros();
        nested &= nested - 1;
        if online(snap, p.first + i, depth) {
            on |= 1 << i;
        }
    }
    let mut any_enabled = enabled != 0;
    let mut any_online = on != 0;
    // Beyond 64 endpoints (rare): ask each word.
    if p.count > 64 {
        for id in p.first + 64..p.first + p.count {
            if snap.hot.get(id as usize).is_some_and(|h| h.enabled) {
                any_enabled = true;
                if online(snap, id, depth) {
                    any_online = true;
                    break;
                }
            }
        }
    }
    if !any_enabled {
        return (Pick::NxDomain, 0);
    }
    if !any_online && p.all_down == AllDown::FailClosed && p.routing != Routing::Geographic {
        return (Pick::NoData, 0);
    }
    let c = Candidates {
        snap,
        first: p.first,
        mask: if any_online { on } else { enabled },
        only_online: any_online,
        depth,
    };
    match p.routing {
        Routing::Priority => priority::choose(snap, p, &c),
        Routing::Weighted => weighted::choose(snap, p, &c, client),
        Routing::Performance => performance::choose(snap, p, &c, client),
        Routing::Geographic => geographic::choose(snap, p, client),
        Routing::Multivalue => multivalue::choose(snap, p, &c),
        Routing::Subnet => subnet::choose(snap, p, client),
    }
}
