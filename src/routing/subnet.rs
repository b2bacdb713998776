//! Subnet: the endpoint whose `subnets` hold the longest prefix containing
//! the client; else the endpoint without `subnets`; else NODATA. As in
//! Route 53's IP-based routing, health does not move a client to another
//! subnet's endpoint. ECS scope: the matched prefix's length, or the
//! client's source prefix when the catch-all answered.

use super::{Client, Figure, Note, Pick, ScopeWhy, Trace};
use crate::snapshot::{NO_ID, Profile, Snapshot};

pub(super) fn choose<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    client: &Client,
    t: &mut T,
) -> (Pick, u8) {
    if let Some(a) = client.addr
        && let Some(hit) = p.subnets.lookup(a)
    {
        if super::servable(snap, hit.value) {
            t.figure(hit.value, Figure::SubnetMatch(hit.prefix_len));
            t.note(Note::Scope(hit.prefix_len, ScopeWhy::SubnetPrefix));
            return (Pick::One(hit.value), hit.prefix_len);
        }
        t.figure(hit.value, Figure::Skipped);
    }
    if p.subnet_default != NO_ID {
        if super::servable(snap, p.subnet_default) {
            t.figure(p.subnet_default, Figure::SubnetDefault);
            t.note(Note::Scope(client.source_prefix, ScopeWhy::SourcePrefix));
            return (Pick::One(p.subnet_default), client.source_prefix);
        }
        t.figure(p.subnet_default, Figure::Skipped);
    }
    t.note(Note::Scope(client.source_prefix, ScopeWhy::SourcePrefix));
    (Pick::NoData, client.source_prefix)
}
