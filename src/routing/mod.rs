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
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

mod geographic;
mod multivalue;
mod performance;
mod priority;
mod subnet;
mod weighted;

use crate::config::{AllDown, Routing};
use crate::health::{AdminState, Mask, MonitorStatus};

use self::{enabled as enabled_fn, servable as servable_fn};
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

/// Most endpoints a multivalue pick names: as many as an answer has
/// record slices, so every address the answer can carry has its endpoint.
pub const MAX_PICKS: usize = crate::answer::MAX_PARTS;

/// What a profile decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// One endpoint.
    One(u32),
    /// Several endpoints (multivalue), in priority order (at most [`MAX_PICKS`]).
    Many([u32; MAX_PICKS], u8),
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
        if self.only_online {
            online(self.snap, id, self.depth)
        } else {
            servable(self.snap, id)
        }
    }
}

/// Enabled: by config or by an admin override, and not admin-disabled.
#[inline]
pub fn enabled(snap: &Snapshot, id: u32) -> bool {
    let Some(h) = snap.hot.get(id as usize) else {
        return false;
    };
    match snap.health.admin(id) {
        AdminState::Disabled => false,
        AdminState::Enabled => true,
        _ => h.enabled,
    }
}

/// Enabled and not drained: may be answered.
#[inline]
pub fn servable(snap: &Snapshot, id: u32) -> bool {
    enabled(snap, id) && snap.health.admin(id) != AdminState::Drain
}

/// Whether endpoint `id` is online (servable, not degraded; nested: enough online children).
#[inline]
pub fn online(snap: &Snapshot, id: u32, depth: u32) -> bool {
    let Some(h) = snap.hot.get(id as usize) else {
        return false;
    };
    if !servable(snap, id) {
        return false;
    }
    if !h.nested {
        return snap.health.status(id) != MonitorStatus::Degraded;
    }
    nested_online(snap, h.child, h.min_children, depth)
}

/// Counts of a child profile's endpoints: (online, checking) — for nested
/// endpoints and the status report.
pub fn child_counts(snap: &Snapshot, child: u32, depth: u32) -> (u32, u32) {
    let Some(cp) = snap.profiles.get(child as usize) else {
        return (0, 0);
    };
    if !cp.enabled || depth > 10 {
        return (0, 0);
    }
    let (mut on, mut checking) = (0, 0);
    for cid in cp.endpoint_ids() {
        if online(snap, cid, depth + 1) {
            on += 1;
            let nested = snap.hot.get(cid as usize).is_some_and(|h| h.nested);
            // Unmonitored endpoints are simply online; only probed ones can be "checking".
            if !nested
                && cp.monitor.is_some()
                && snap.health.status(cid) == MonitorStatus::CheckingEndpoint
            {
                checking += 1;
            }
        }
    }
    (on, checking)
}

#[inline(never)]
fn nested_online(snap: &Snapshot, child: u32, min_children: u32, depth: u32) -> bool {
    child_counts(snap, child, depth).0 >= min_children
}

/// Decides for profile `p`. Returns the pick and the ECS scope it depended on.
pub fn route(snap: &Snapshot, p: &Profile, client: &Client, depth: u32) -> (Pick, u8) {
    if !p.enabled || depth > 10 {
        return (Pick::NxDomain, 0);
    }
    // Bits of the first 64 endpoints from the per-profile summary masks;
    // nested endpoints ask their children.
    let h = &snap.health;
    let enabled = (p.enabled_mask | h.mask(p.id, Mask::Forced)) & !h.mask(p.id, Mask::Disabled);
    let servable = enabled & !h.mask(p.id, Mask::Drain);
    let mut on = servable & !p.nested_mask & !h.mask(p.id, Mask::Degraded);
    let mut nested = servable & p.nested_mask;
    while nested != 0 {
        let i = nested.trailing_zeros();
        nested &= nested - 1;
        if online(snap, p.first + i, depth) {
            on |= 1 << i;
        }
    }
    let mut any_enabled = enabled != 0;
    let mut any_servable = servable != 0;
    let mut any_online = on != 0;
    // Beyond 64 endpoints (rare): ask each word.
    if p.count > 64 {
        for id in p.first + 64..p.first + p.count {
            any_enabled |= enabled_fn(snap, id);
            any_servable |= servable_fn(snap, id);
            if online(snap, id, depth) {
                any_online = true;
                break;
            }
        }
    }
    if !any_enabled {
        return (Pick::NxDomain, 0);
    }
    // Every enabled endpoint drained: nothing to answer, but the name exists.
    if !any_servable && p.routing != Routing::Geographic {
        return (Pick::NoData, 0);
    }
    if !any_online && p.all_down == AllDown::FailClosed && p.routing != Routing::Geographic {
        return (Pick::NoData, 0);
    }
    let c = Candidates {
        snap,
        first: p.first,
        mask: if any_online { on } else { servable },
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
