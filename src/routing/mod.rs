//! Routing: which endpoint(s) of a profile answer a client (docs/ROUTING.md). One
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
//! Online = enabled and not Degraded (forced down, or so probed; an
//! `always_serve` endpoint is Degraded only when forced down); a nested
//! endpoint is online when forced up, or, not forced, when its child has at
//! least `min_children` online endpoints.
//!
//! After the method: spill-over ([`decide`], docs/ROUTING.md, "Spill-over")
//! and whether the answer is unsteady ([`Unsteady`], "Health-aware TTL").
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

mod geographic;
mod multivalue;
mod performance;
mod priority;
mod subnet;
mod trace;
mod weighted;

pub use trace::{Figure, NoTrace, Note, Rule, ScopeWhy, Trace};

use crate::config::{AllDown, Routing};
use crate::health::{AdminState, FAILING, Forced, Mask, MonitorStatus, NO_LOAD};

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
pub(crate) const MAX_PICKS: usize = crate::answer::MAX_PARTS;

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

/// Why an answer gets the profile's `ttl_unstable` instead of its `ttl`
/// (docs/ROUTING.md, "Health-aware TTL"): something it depends on is moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsteady {
    /// No endpoint is online: the profile answers fail-open.
    FailOpen,
    /// This endpoint of the answer failed its last probe(s), fewer in a row
    /// than `tolerated_failures`.
    Failing(u32),
    /// This endpoint of the profile is Degraded and passing probes, fewer
    /// in a row than `recovery_successes`.
    Recovering(u32),
    /// This endpoint's load is at or above `spill_start`: its clients are
    /// spilling over.
    Spilling(u32),
}

/// A profile's decision in full: the pick, the ECS scope it depended on,
/// and whether it is unsteady.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// What was chosen.
    pub pick: Pick,
    /// The ECS scope prefix the decision depended on.
    pub scope: u8,
    /// Why the answer's TTL is `ttl_unstable`, if it is.
    pub unsteady: Option<Unsteady>,
}

impl Decision {
    fn of((pick, scope): (Pick, u8)) -> Decision {
        Decision {
            pick,
            scope,
            unsteady: None,
        }
    }
}

/// The hash key of a client's /24 (IPv4, also IPv4-mapped) or /56 (IPv6),
/// and that prefix length in the address's own family: what affinity,
/// spill-over and region sharing hash, so one client subnet always lands
/// the same way and the ECS scope covers the hashed bits (an IPv4-mapped
/// IPv6 address: /120, its 96-bit prefix and the /24). No address: key 0,
/// scope 0.
#[inline]
pub(crate) fn subnet_key(client: &Client) -> (u64, u8) {
    match client.addr {
        None => (0, 0),
        Some(IpAddr::V4(a)) => (u64::from(u32::from(a) & 0xffff_ff00), 24),
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => (u64::from(u32::from(v4) & 0xffff_ff00), 120),
            None => (((u128::from(a) >> 72) as u64) ^ 0x6_0000_0000_0000, 56),
        },
    }
}

/// A uniform number in (0, 1) from a subnet key, an endpoint's index in
/// its profile and a salt (one per use, so the draws are independent).
#[inline]
pub(crate) fn unit(key: u64, index: u32, salt: u64) -> f64 {
    let h = weighted::splitmix(key ^ weighted::splitmix(u64::from(index) ^ salt));
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// Weighted rendezvous score of endpoint `index` for subnet `key`: the
/// highest score wins, each endpoint with probability weight / total.
#[inline]
pub(crate) fn rendezvous(key: u64, index: u32, salt: u64, weight: u32) -> f64 {
    f64::from(weight) / -unit(key, index, salt).ln()
}

/// Most endpoints one client spills through in one decision.
const MAX_SPILL_HOPS: usize = 8;

/// Salt of the spill-over draw.
const SPILL_SALT: u64 = 0x5B11_1A0E_C0FF_EE11;

/// Which endpoints may be chosen (docs/ROUTING.md, "Which endpoints may be chosen"): a bit per endpoint of the
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
        return snap.health.status(id) != MonitorStatus::Degraded
            || (h.always_serve && snap.health.forced(id) != Forced::Down);
    }
    // A forced state (the admin-state file's up/down) wins over the children.
    match snap.health.forced(id) {
        Forced::Up => true,
        Forced::Down => false,
        Forced::None => nested_online(snap, h.child, h.min_children, depth),
    }
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

/// Decides for profile `p`. Returns the pick and the ECS scope it depended
/// on ([`decide`] without whether it is unsteady).
#[cfg(test)]
pub fn route<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    client: &Client,
    depth: u32,
    t: &mut T,
) -> (Pick, u8) {
    let d = decide(snap, p, client, depth, t);
    (d.pick, d.scope)
}

/// Decides for profile `p`: the candidate rule, the method, spill-over,
/// and whether the answer is unsteady. `t` sees what the decision looked
/// at (`trafficmgr explain`); the query path passes [`NoTrace`], which
/// compiles to nothing.
pub fn decide<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    client: &Client,
    depth: u32,
    t: &mut T,
) -> Decision {
    if !p.enabled {
        t.rule(Rule::ProfileDisabled);
        return Decision::of((Pick::NxDomain, 0));
    }
    if depth > 10 {
        t.rule(Rule::TooDeep);
        return Decision::of((Pick::NxDomain, 0));
    }
    // Bits of the first 64 endpoints from the per-profile summary masks;
    // nested endpoints ask their children.
    let h = &snap.health;
    let enabled = (p.enabled_mask | h.mask(p.id, Mask::Forced)) & !h.mask(p.id, Mask::Disabled);
    let servable = enabled & !h.mask(p.id, Mask::Drain);
    let degraded = h.mask(p.id, Mask::Degraded);
    let mut on = servable & !p.nested_mask & !degraded;
    // `always_serve`: probes never take it out; forcing it down does.
    let mut back = servable & !p.nested_mask & p.always_mask & degraded;
    while back != 0 {
        let i = back.trailing_zeros();
        back &= back - 1;
        if h.forced(p.first + i) != Forced::Down {
            on |= 1 << i;
        }
    }
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
        t.rule(Rule::NoneEnabled);
        return Decision::of((Pick::NxDomain, 0));
    }
    // Every enabled endpoint drained: nothing to answer, but the name exists.
    if !any_servable && p.routing != Routing::Geographic {
        t.rule(Rule::AllDrained);
        return Decision::of((Pick::NoData, 0));
    }
    if !any_online && p.all_down == AllDown::FailClosed && p.routing != Routing::Geographic {
        t.rule(Rule::AllDownFailClosed);
        return Decision::of((Pick::NoData, 0));
    }
    let c = Candidates {
        snap,
        first: p.first,
        mask: if any_online { on } else { servable },
        only_online: any_online,
        depth,
    };
    t.candidates(
        &c,
        if any_online {
            Rule::Online
        } else {
            Rule::AllDownFailOpen
        },
    );
    let mut d = Decision::of(method(snap, p, &c, client, 0, t));
    if p.spill.is_some() {
        spill(snap, p, &c, client, &mut d, t);
    }
    if d.unsteady.is_none() {
        d.unsteady = unsteady(snap, p, &d.pick, any_online, servable);
    }
    if let Some(u) = d.unsteady {
        t.note(Note::Unsteady(u, p.ttl_unstable));
    }
    d
}

/// The profile's method over candidates `c` (geographic routing, which
/// reads no candidates, passes over the endpoints of `skip`: bit i for
/// endpoint `first + i`).
#[inline(always)]
fn method<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    client: &Client,
    skip: u64,
    t: &mut T,
) -> (Pick, u8) {
    match p.routing {
        Routing::Priority => priority::choose(snap, p, c, t),
        Routing::Weighted => weighted::choose(snap, p, c, client, t),
        Routing::Performance => performance::choose(snap, p, c, client, t),
        Routing::Geographic => geographic::choose(snap, p, client, skip, t),
        Routing::Multivalue => multivalue::choose(snap, p, c, t),
        Routing::Subnet => subnet::choose(snap, p, client, t),
    }
}

/// Spill-over (docs/ROUTING.md, "Spill-over"): while the chosen endpoint's
/// load is at or above `spill_start`, a share of its clients — growing
/// linearly to all of them at `spill_full` — is moved to the method's next
/// choice without it, the clients picked by a hash of their /24 (/56), so a
/// client does not flap and the ECS scope covers the hashed bits. The next
/// choice may spill in turn (at most [`MAX_SPILL_HOPS`]), only to a
/// candidate; with no room anywhere a client goes to the least loaded
/// endpoint it passed through, the first on a tie. Endpoints beyond the 64th of a profile
/// never spill.
fn spill<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    client: &Client,
    d: &mut Decision,
    t: &mut T,
) {
    let Some((start, full)) = p.spill else {
        return;
    };
    let (key, bits) = subnet_key(client);
    let mut skip = 0u64;
    // Where a client that finds no room goes: the endpoint it passed
    // through with the lowest load counted up to `spill_full` (the first on
    // a tie), so when every endpoint is full nobody moves, instead of every
    // client piling onto the last one.
    let mut least: Option<(u32, u32)> = None;
    let nowhere = |d: &mut Decision, least: Option<(u32, u32)>, t: &mut T| {
        t.note(Note::SpillNowhere);
        if let Some((_, id)) = least {
            d.pick = Pick::One(id);
        }
    };
    for _ in 0..MAX_SPILL_HOPS {
        let Pick::One(id) = d.pick else { return };
        let i = id.wrapping_sub(p.first);
        let load = snap.health.load(id);
        if load == NO_LOAD || load < start {
            return;
        }
        if i >= 64 {
            // Never spills; but a client spilled here goes back if it is
            // no less full than where the client has been.
            if least.is_some_and(|(l, _)| l <= load.min(full)) {
                nowhere(d, least, t);
            }
            return;
        }
        let counted = load.min(full);
        if least.is_none_or(|(l, _)| counted < l) {
            least = Some((counted, id));
        }
        d.unsteady = Some(Unsteady::Spilling(id));
        // Share in thousandths: 0 at spill_start, 1000 at spill_full.
        let share = (u64::from(load - start) * 1000 / u64::from(full - start)).min(1000) as u32;
        let moved = unit(key, i, SPILL_SALT) * 1000.0 < f64::from(share);
        if share < 1000 && bits > d.scope {
            d.scope = bits;
            t.note(Note::Scope(bits, ScopeWhy::SpillSubnet));
        }
        t.note(Note::Spill {
            id,
            load,
            share,
            moved,
        });
        if !moved {
            return;
        }
        skip |= 1 << i;
        // The method's next choice without the endpoints passed through;
        // only a candidate (geographic routing also answers a degraded
        // endpoint, which takes no spilled clients while some are online).
        let next = loop {
            let fewer = Candidates {
                mask: c.mask & !skip,
                ..*c
            };
            match method(snap, p, &fewer, client, skip, t) {
                (Pick::One(n), scope) if c.ok(n) => break Some((n, scope)),
                (Pick::One(n), _)
                    if n.wrapping_sub(p.first) < 64
                        && skip & (1 << n.wrapping_sub(p.first)) == 0 =>
                {
                    skip |= 1 << n.wrapping_sub(p.first);
                }
                _ => break None,
            }
        };
        match next {
            Some((n, scope)) => {
                d.pick = Pick::One(n);
                d.scope = d.scope.max(scope);
            }
            None => return nowhere(d, least, t),
        }
    }
    // Out of hops: the last choice, unless it is fuller than where the
    // client has been.
    if let Pick::One(id) = d.pick {
        let load = snap.health.load(id);
        if load != NO_LOAD && load >= start && least.is_some_and(|(l, _)| l <= load.min(full)) {
            nowhere(d, least, t);
        }
    }
}

/// Why the answer of `pick` is unsteady, if it is (the spill-over reason is
/// found by [`spill`]): the profile answers fail-open, an endpoint of the
/// answer is failing, or an endpoint of the profile (first 64) is recovering.
#[inline]
fn unsteady(
    snap: &Snapshot,
    p: &Profile,
    pick: &Pick,
    any_online: bool,
    servable: u64,
) -> Option<Unsteady> {
    if !any_online && !matches!(p.routing, Routing::Geographic | Routing::Subnet) {
        return Some(Unsteady::FailOpen);
    }
    let ids: &[u32] = match pick {
        Pick::One(id) => std::slice::from_ref(id),
        Pick::Many(ids, n) => ids.get(..usize::from(*n)).unwrap_or_default(),
        _ => &[],
    };
    for id in ids {
        if snap.health.unsteady(*id) & FAILING != 0 {
            return Some(Unsteady::Failing(*id));
        }
    }
    let rec = snap.health.mask(p.id, Mask::Recovering) & servable;
    (rec != 0).then(|| Unsteady::Recovering(p.first + rec.trailing_zeros()))
}

/// Whether endpoint `id` of `p` may be chosen now, for some client (the
/// rule of [`route`], endpoint by endpoint; geographic and subnet routing
/// answer a servable endpoint whatever its health): the metrics' `up`.
/// Off the query path.
pub fn candidate(snap: &Snapshot, p: &Profile, id: u32) -> bool {
    if !p.enabled || !p.endpoint_ids().contains(&id) || !servable(snap, id) {
        return false;
    }
    if p.routing == Routing::Geographic {
        return true;
    }
    if !p.endpoint_ids().any(|i| online(snap, i, 0)) {
        return p.all_down != AllDown::FailClosed;
    }
    p.routing == Routing::Subnet || online(snap, id, 0)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::{client, snapshot};

    const PRIO: &str = "[[profile]]\nname = \"p\"\nrouting = \"priority\"\n\
        [[profile.endpoint]]\nname = \"a\"\ntarget = \"a.example\"\n\
        [[profile.endpoint]]\nname = \"b\"\ntarget = \"b.example\"\n\
        [[profile.endpoint]]\nname = \"c\"\ntarget = \"c.example\"\nenabled = false\n";

    fn pick(snap: &Snapshot, addr: Option<&str>) -> Pick {
        route(snap, &snap.profiles[0], &client(addr), 0, &mut NoTrace).0
    }

    /// The candidate rule's truth table, row by row.
    #[test]
    fn candidate_rule() {
        let s = snapshot(PRIO);
        // Every enabled endpoint online: the first by priority.
        assert_eq!(pick(&s, None), Pick::One(0));
        // The first degraded: the next online one.
        s.health.set_status(0, MonitorStatus::Degraded);
        assert_eq!(pick(&s, None), Pick::One(1));
        // None online, fail-open: as though all enabled were online
        // (the disabled one never is a candidate).
        s.health.set_status(1, MonitorStatus::Degraded);
        assert_eq!(pick(&s, None), Pick::One(0));
        // fail-closed: NODATA.
        let closed = snapshot(&PRIO.replace(
            "routing = \"priority\"\n",
            "routing = \"priority\"\nall_down = \"fail-closed\"\n",
        ));
        closed.health.set_status(0, MonitorStatus::Degraded);
        closed.health.set_status(1, MonitorStatus::Degraded);
        assert_eq!(pick(&closed, None), Pick::NoData);
        // No enabled endpoint: NXDOMAIN; a disabled profile likewise.
        s.health.set_admin(0, AdminState::Disabled);
        s.health.set_admin(1, AdminState::Disabled);
        assert_eq!(pick(&s, None), Pick::NxDomain);
        let off = snapshot(&PRIO.replace(
            "routing = \"priority\"\n",
            "routing = \"priority\"\nenabled = false\n",
        ));
        assert_eq!(pick(&off, None), Pick::NxDomain);
    }

    /// Admin overrides: Enabled serves a config-disabled endpoint, Drain
    /// stops serving it, Disabled stops serving and probing.
    #[test]
    fn admin_overrides() {
        let s = snapshot(PRIO);
        assert!(!enabled(&s, 2));
        s.health.set_admin(2, AdminState::Enabled);
        assert!(enabled(&s, 2) && servable(&s, 2));
        s.health.set_admin(0, AdminState::Drain);
        assert!(!servable(&s, 0));
        assert_eq!(pick(&s, None), Pick::One(1));
    }

    /// Forced states: `down` takes an online endpoint out, `up` keeps a
    /// degraded one in, and on a nested endpoint they replace what its
    /// child says.
    #[test]
    fn forced_states_win_over_verdicts_and_children() {
        let s = snapshot(PRIO);
        s.health.set_status(0, MonitorStatus::Online);
        s.health.set_forced(0, Forced::Down);
        assert_eq!(pick(&s, None), Pick::One(1));
        s.health.set_status(0, MonitorStatus::Degraded);
        s.health.set_forced(0, Forced::Up);
        assert_eq!(pick(&s, None), Pick::One(0));
        let n = snapshot(
            "[[profile]]\nname = \"parent\"\nrouting = \"priority\"\n\
             [[profile.endpoint]]\nname = \"kid\"\nprofile = \"child\"\n\
             [[profile.endpoint]]\nname = \"b\"\ntarget = \"b.example\"\n\
             [[profile]]\nname = \"child\"\nrouting = \"priority\"\n\
             [[profile.endpoint]]\nname = \"c\"\ntarget = \"c.example\"\n",
        );
        let kid = n.find_endpoint("parent", "kid").unwrap();
        let c = n.find_endpoint("child", "c").unwrap();
        let parent = |n: &Snapshot| route(n, &n.profiles[0], &client(None), 0, &mut NoTrace).0;
        assert_eq!(parent(&n), Pick::One(kid));
        n.health.set_forced(kid, Forced::Down);
        assert_eq!(parent(&n), Pick::One(kid + 1));
        n.health.set_forced(kid, Forced::None);
        n.health.set_status(c, MonitorStatus::Degraded);
        assert_eq!(parent(&n), Pick::One(kid + 1));
        n.health.set_forced(kid, Forced::Up);
        assert_eq!(parent(&n), Pick::One(kid));
    }

    /// Subnet routing: the longest prefix wins; the scope is the shortest
    /// prefix of the client's address on which the answer is the same
    /// (10.2.0.1 is under 10/8, but 10.2/15 is needed to stay clear of 10.1/16).
    #[test]
    fn subnet_longest_prefix_and_scope() {
        let s = snapshot(
            "[[profile]]\nname = \"n\"\nrouting = \"subnet\"\n\
             [[profile.endpoint]]\nname = \"wide\"\ntarget = \"w.example\"\nsubnets = [\"10.0.0.0/8\"]\n\
             [[profile.endpoint]]\nname = \"narrow\"\ntarget = \"n.example\"\nsubnets = [\"10.1.0.0/16\"]\n",
        );
        let p = &s.profiles[0];
        assert_eq!(
            route(&s, p, &client(Some("10.1.2.3")), 0, &mut NoTrace),
            (Pick::One(1), 16)
        );
        assert_eq!(
            route(&s, p, &client(Some("10.2.0.1")), 0, &mut NoTrace),
            (Pick::One(0), 15)
        );
        assert_eq!(
            route(&s, p, &client(Some("10.200.0.1")), 0, &mut NoTrace),
            (Pick::One(0), 9)
        );
    }

    /// Weighted with client-subnet affinity: one /24 always gets the same
    /// endpoint, and the draw follows the weights over many /24s.
    #[test]
    fn weighted_affinity_is_stable_and_follows_weights() {
        let s = snapshot(
            "[[profile]]\nname = \"w\"\nrouting = \"weighted\"\naffinity = \"client-subnet\"\n\
             [[profile.endpoint]]\nname = \"heavy\"\ntarget = \"h.example\"\nweight = 3\n\
             [[profile.endpoint]]\nname = \"light\"\ntarget = \"l.example\"\nweight = 1\n",
        );
        let p = &s.profiles[0];
        let first = route(&s, p, &client(Some("198.51.100.7")), 0, &mut NoTrace);
        for host in 0..=255u8 {
            let a = format!("198.51.100.{host}");
            assert_eq!(
                route(&s, p, &client(Some(&a)), 0, &mut NoTrace),
                first,
                "{a}"
            );
        }
        assert_eq!(first.1, 24);
        let heavy = (0..4000u32)
            .filter(|i| {
                let a = format!("10.{}.{}.1", i / 256, i % 256);
                route(&s, p, &client(Some(&a)), 0, &mut NoTrace).0 == Pick::One(0)
            })
            .count();
        assert!(
            (2700..3300).contains(&heavy),
            "{heavy} of 4000 on weight 3:1"
        );
    }

    /// Multivalue: every online endpoint, in priority order.
    #[test]
    fn multivalue_lists_online_endpoints_in_order() {
        let s = snapshot(
            "[[profile]]\nname = \"m\"\nrouting = \"multivalue\"\n\
             [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\n\
             [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\n\
             [[profile.endpoint]]\nname = \"c\"\naddresses = [\"192.0.2.3\"]\n",
        );
        s.health.set_status(1, MonitorStatus::Degraded);
        let Pick::Many(ids, n) = pick(&s, None) else {
            panic!("not a multivalue pick");
        };
        assert_eq!(&ids[..usize::from(n)], &[0, 2]);
    }
}
