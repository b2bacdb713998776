//! THE hot path: normalise the name → find its node → route → answer.
//! No allocation, no lock, no syscall, no formatting below this line; the
//! snapshot is passed in by the caller, which loaded it once.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use crate::answer::records::rtype;
use crate::answer::{Answer, Rcode};
use crate::counters::Response;
pub use crate::name::{NameBuf, NameError};
use crate::routing::{self, Client, NoTrace, Pick, Trace};
use crate::snapshot::{Node, Profile, Snapshot, Target, Zone};

/// Where a name falls.
enum Place<'a> {
    Node(Node),
    Under(u32, &'a Zone),
    NotOurs,
}

#[inline(always)]
fn place<'a>(snap: &'a Snapshot, name: &NameBuf) -> Place<'a> {
    if name.is_plain()
        && let Some(n) = snap.names.get(name.as_bytes())
    {
        return Place::Node(*n);
    }
    // The longest zone that is a proper suffix at a label boundary.
    for tail in name.parent_suffixes() {
        if tail.len() <= snap.max_zone_len
            && let Some(Node::Apex(z)) = snap.names.get(tail)
            && let Some(zone) = snap.zones.get(*z as usize)
        {
            return Place::Under(*z, zone);
        }
    }
    Place::NotOurs
}

/// Answers one query from `snap` into `out` (built in place: no copies of
/// the answer on the way up). `qtype` is the numeric type. Neither generic
/// nor `#[inline]`: compiled once, in this crate, with [`NoTrace`]
/// monomorphised away, as before the observer existed (a generic one would
/// be compiled into each caller's crate, calling `place` across crates).
pub fn resolve<'s>(
    snap: &'s Snapshot,
    name: &NameBuf,
    qtype: u16,
    client: &Client,
    out: &mut Answer<'s>,
) {
    let place = place(snap, name);
    let counted = Counted::of(&place);
    answer_place(snap, place, qtype, client, out, &mut NoTrace);
    counted.count(snap, out);
}

/// [`resolve`], with `t` seeing each step of the decision (`trafficmgr
/// explain`): the one implementation, which the query path runs with
/// [`NoTrace`]. Answers are counted in `snap` as on the query path; responses are not.
pub fn resolve_traced<'s, T: Trace>(
    snap: &'s Snapshot,
    name: &NameBuf,
    qtype: u16,
    client: &Client,
    out: &mut Answer<'s>,
    t: &mut T,
) {
    answer_place(snap, place(snap, name), qtype, client, out, t)
}

#[inline(always)]
fn answer_place<'s, T: Trace>(
    snap: &'s Snapshot,
    place: Place<'s>,
    qtype: u16,
    client: &Client,
    out: &mut Answer<'s>,
    t: &mut T,
) {
    out.ttl_cap = crate::answer::NO_TTL_CAP;
    match place {
        Place::NotOurs => out.set_not_ours(),
        Place::Under(_, zone) => out.set_negative(zone, Rcode::NxDomain, 0),
        Place::Node(Node::Empty(z)) => match snap.zones.get(z as usize) {
            Some(zone) => out.set_negative(zone, Rcode::NoError, 0),
            None => out.set_not_ours(),
        },
        Place::Node(Node::Apex(z)) => {
            let Some(zone) = snap.zones.get(z as usize) else {
                return out.set_not_ours();
            };
            out.records.clear();
            match qtype {
                rtype::SOA => out.records.push_one(&zone.soa),
                rtype::NS => out.records.push(&zone.ns),
                rtype::ANY => {
                    out.records.push_one(&zone.soa);
                    out.records.push(&zone.ns);
                }
                _ => return out.set_negative(zone, Rcode::NoError, 0),
            }
            out.set_positive(zone, 0)
        }
        Place::Node(Node::Profile(p)) => {
            let Some(profile) = snap.profiles.get(p as usize) else {
                return out.set_not_ours();
            };
            let Some(zone) = snap.zones.get(profile.zone as usize) else {
                return out.set_not_ours();
            };
            profile_answer(snap, zone, profile, qtype, client, 0, out, t)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn profile_answer<'s, T: Trace>(
    snap: &'s Snapshot,
    zone: &'s Zone,
    profile: &'s Profile,
    qtype: u16,
    client: &Client,
    depth: u32,
    out: &mut Answer<'s>,
    t: &mut T,
) {
    t.profile(snap, profile, depth);
    let d = routing::decide(snap, profile, client, depth, t);
    let (pick, scope) = (d.pick, d.scope);
    if d.unsteady.is_some() {
        // Nested levels: the lowest cap of any unsteady level.
        out.ttl_cap = out.ttl_cap.min(profile.ttl_unstable);
    }
    t.chose(profile, &pick, scope);
    out.records.clear();
    match pick {
        Pick::NxDomain => return out.set_negative(zone, Rcode::NxDomain, scope),
        Pick::NoData => return out.set_negative(zone, Rcode::NoError, scope),
        Pick::One(id) => {
            let Some(e) = snap.endpoints.get(id as usize) else {
                return out.set_negative(zone, Rcode::NoError, scope);
            };
            match &e.target {
                Target::Cname(r) => out.records.push_one(r),
                Target::Addresses { v4, v6 } => {
                    if matches!(qtype, rtype::A | rtype::ANY) {
                        out.records.push(v4);
                    }
                    if matches!(qtype, rtype::AAAA | rtype::ANY) {
                        out.records.push(v6);
                    }
                }
                Target::Nested { child, .. } => {
                    let Some(cp) = snap.profiles.get(*child as usize) else {
                        return out.set_negative(zone, Rcode::NoError, scope);
                    };
                    profile_answer(snap, zone, cp, qtype, client, depth + 1, out, t);
                    if !out.records.is_empty() {
                        snap.counters.answer(id);
                    }
                    // A child's NXDOMAIN is not the parent's: the parent name exists.
                    if out.rcode == Rcode::NxDomain {
                        out.rcode = Rcode::NoError;
                    }
                    out.scope_prefix = out.scope_prefix.max(scope);
                    return;
                }
            }
        }
        Pick::Many(ids, n) => {
            let cap = usize::from(profile.max_answers);
            let (mut n4, mut n6) = (0usize, 0usize);
            for id in ids.iter().take(usize::from(n)) {
                let Some(Target::Addresses { v4, v6 }) =
                    snap.endpoints.get(*id as usize).map(|e| &e.target)
                else {
                    continue;
                };
                let before = out.records.len();
                if matches!(qtype, rtype::A | rtype::ANY) && n4 < cap {
                    let take = v4.len().min(cap - n4);
                    out.records.push(v4.get(..take).unwrap_or_default());
                    n4 += take;
                }
                if matches!(qtype, rtype::AAAA | rtype::ANY) && n6 < cap {
                    let take = v6.len().min(cap - n6);
                    out.records.push(v6.get(..take).unwrap_or_default());
                    n6 += take;
                }
                if out.records.len() > before {
                    snap.counters.answer(*id);
                }
            }
        }
    }
    if out.records.is_empty() {
        return out.set_negative(zone, Rcode::NoError, scope);
    }
    if let Pick::One(id) = pick {
        snap.counters.answer(id);
    }
    out.set_positive(zone, scope)
}

/// Whose counter a response goes to (`crate::counters`).
#[derive(Clone, Copy)]
enum Counted {
    Profile(u32),
    Zone(u32),
    NotOurs,
}

impl Counted {
    fn of(place: &Place<'_>) -> Counted {
        match *place {
            Place::Node(Node::Profile(p)) => Counted::Profile(p),
            Place::Node(Node::Apex(z) | Node::Empty(z)) | Place::Under(z, _) => Counted::Zone(z),
            Place::NotOurs => Counted::NotOurs,
        }
    }

    #[inline]
    fn count(self, snap: &Snapshot, out: &Answer<'_>) {
        let r = match out.rcode {
            Rcode::NxDomain => Response::NxDomain,
            Rcode::NoError if out.records.is_empty() => Response::NoData,
            Rcode::NoError => Response::Answer,
            // A place that was ours but answers "not ours" (cannot happen
            // with a consistent snapshot) counts as not ours.
            _ => return snap.counters.not_ours(),
        };
        match self {
            Counted::Profile(p) => snap.counters.profile_response(p, r),
            Counted::Zone(z) => snap.counters.zone_response(z, r),
            Counted::NotOurs => snap.counters.not_ours(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::{client, snapshot};

    fn ask(snap: &Snapshot, name: &str, qtype: u16) -> (Rcode, Vec<u16>, usize) {
        let mut a = Answer::not_ours();
        resolve(
            snap,
            &NameBuf::from_text(name.as_bytes()).unwrap(),
            qtype,
            &client(Some("192.0.2.1")),
            &mut a,
        );
        (
            a.rcode,
            a.records.iter().map(|r| r.rtype).collect(),
            a.authority.len(),
        )
    }

    const CFG: &str = "[[profile]]\nname = \"app.eu\"\nrouting = \"priority\"\n\
        [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\", \"2001:db8::1\"]\n\
        [[profile]]\nname = \"child\"\nrouting = \"priority\"\nenabled = false\n\
        [[profile.endpoint]]\nname = \"x\"\ntarget = \"x.example\"\n\
        [[profile]]\nname = \"parent\"\nrouting = \"priority\"\n\
        [[profile.endpoint]]\nname = \"n\"\nprofile = \"child\"\n";

    /// Every place a name can fall, and what it answers.
    #[test]
    fn every_place_of_a_name() {
        let s = snapshot(CFG);
        assert_eq!(
            ask(&s, "tm.example", rtype::SOA),
            (Rcode::NoError, vec![rtype::SOA], 0)
        );
        assert_eq!(
            ask(&s, "tm.example", rtype::NS),
            (Rcode::NoError, vec![rtype::NS], 0)
        );
        assert_eq!(
            ask(&s, "tm.example", rtype::ANY),
            (Rcode::NoError, vec![rtype::SOA, rtype::NS], 0)
        );
        assert_eq!(ask(&s, "tm.example", rtype::A), (Rcode::NoError, vec![], 1));
        assert_eq!(
            ask(&s, "app.eu.tm.example", rtype::A),
            (Rcode::NoError, vec![rtype::A], 0)
        );
        assert_eq!(
            ask(&s, "app.eu.tm.example", rtype::AAAA),
            (Rcode::NoError, vec![rtype::AAAA], 0)
        );
        // The empty non-terminal between a profile and its apex: NODATA.
        assert_eq!(
            ask(&s, "eu.tm.example", rtype::A),
            (Rcode::NoError, vec![], 1)
        );
        assert_eq!(
            ask(&s, "nope.tm.example", rtype::A),
            (Rcode::NxDomain, vec![], 1)
        );
        assert_eq!(
            ask(&s, "other.example", rtype::A),
            (Rcode::Refused, vec![], 0)
        );
        // A label holding a dot is not a profile's name.
        assert_eq!(
            ask(&s, "app\\.eu.tm.example", rtype::A),
            (Rcode::NxDomain, vec![], 1)
        );
    }

    /// A nested child's NXDOMAIN is the parent's NODATA: the parent exists.
    #[test]
    fn a_nested_childs_nxdomain_is_the_parents_nodata() {
        let s = snapshot(CFG);
        assert_eq!(
            ask(&s, "child.tm.example", rtype::A),
            (Rcode::NxDomain, vec![], 1)
        );
        assert_eq!(
            ask(&s, "parent.tm.example", rtype::A),
            (Rcode::NoError, vec![], 1)
        );
    }
}
