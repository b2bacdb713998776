//! Subnet: the endpoint whose `subnets` hold the longest prefix containing
//! the client; else the endpoint without `subnets`; else NODATA. As in
//! Route 53's IP-based routing, health does not move a client to another
//! subnet's endpoint. ECS scope: the matched prefix's length, or the
//! client's source prefix when the catch-all answered.

use super::{Client, Pick};
use crate::snapshot::{NO_ID, Profile, Snapshot};

pub(super) fn choose(snap: &Snapshot, p: &Profile, client: &Client) -> (Pick, u8) {
    if let Some(a) = client.addr
        && let Some(hit) = p.subnets.lookup(a)
        && super::servable(snap, hit.value)
    {
        return (Pick::One(hit.value), hit.prefix_len);
    }
    if p.subnet_default != NO_ID && super::servable(snap, p.subnet_default) {
        return (Pick::One(p.subnet_default), client.source_prefix);
    }
    (Pick::NoData, client.source_prefix)
}
