//! Performance: the candidate whose region has the lowest round-trip time
//! from the client (docs/ROUTING.md, "Latency and location"). Per endpoint: the latency table's figure for
//! the client's row and the endpoint's region; else an estimate from the
//! great-circle distance between the client's location (GeoIP) and the
//! region; else unknown. Known beats unknown; the all-unknown case goes to
//! the lowest priority number.
//!
//! Several candidates of one region with the same lowest round-trip time
//! share its clients by `weight` (candidates of different regions that
//! happen to tie keep priority order): a weighted rendezvous hash of
//! the client's /24 (/56) picks one, so a client subnet keeps its endpoint
//! and the shares follow the weights (weight 0: only when every tied
//! endpoint has 0; then the first by priority).
//!
//! ECS scope: the prefix length of the latency row and/or GeoIP network the
//! decision used; 0 when nothing was known of the client; at least /24
//! (/56) when a tie was shared.

use super::{Candidates, Client, Figure, Note, Pick, ScopeWhy, Trace, rendezvous, subnet_key};
use crate::geo::RTT_UNKNOWN;
use crate::geo::distance::{estimated_rtt_ms, great_circle_km};
use crate::snapshot::{NO_ID, Profile, Snapshot};

pub(super) fn choose<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    client: &Client,
    t: &mut T,
) -> (Pick, u8) {
    let row = match (client.addr, &snap.latency) {
        (Some(a), Some(table)) => table.row(a),
        _ => None,
    };
    t.note(match row {
        Some((_, plen)) => Note::LatencyRow(plen),
        None => Note::NoLatencyRow,
    });
    // The GeoIP lookup is made only if some candidate's region has no
    // figure in the latency row (most queries never need it), and once.
    let geo = match (client.addr, &snap.geo) {
        (Some(a), Some(g)) => Some((a, g)),
        _ => None,
    };
    let mut loc: Option<((f64, f64), u8)> = None;
    let mut looked = false;
    let mut loc_plen = 0u8;
    let mut best: Option<(u32, Option<f64>, u32)> = None; // (rtt, share score once needed, id)
    let mut ties = 0u32;
    let (key, key_bits) = subnet_key(client);
    let mut first: Option<u32> = None;
    let mut used_row = false;
    let mut used_loc = false;
    let cells = row.map(|(c, _)| c).unwrap_or(&[]);
    for slot in p.by_priority.iter() {
        if !c.ok(slot.id) {
            t.figure(slot.id, Figure::Skipped);
            continue;
        }
        if first.is_none() {
            first = Some(slot.id);
        }
        let ms = cells.get(slot.col as usize).copied().unwrap_or(RTT_UNKNOWN);
        let rtt = if ms != RTT_UNKNOWN {
            used_row = true;
            t.figure(slot.id, Figure::RttTable(u32::from(ms)));
            u32::from(ms)
        } else if let Some((a, g)) = geo
            && !slot.lat.is_nan()
        {
            if !looked {
                looked = true;
                loc = g
                    .lookup(a)
                    .and_then(|(info, plen)| info.location().map(|l| (l, plen)));
                t.note(match loc {
                    Some(((lat, lon), prefix)) => Note::Location { lat, lon, prefix },
                    None => Note::NoGeoIp,
                });
            }
            let Some(((lat, lon), plen)) = loc else {
                t.figure(slot.id, Figure::RttUnknown);
                continue;
            };
            used_loc = true;
            loc_plen = plen;
            let km = great_circle_km(lat, lon, f64::from(slot.lat), f64::from(slot.lon));
            let ms = estimated_rtt_ms(km);
            t.figure(slot.id, Figure::RttDistance { ms, km });
            ms
        } else {
            t.figure(slot.id, Figure::RttUnknown);
            continue;
        };
        // The share score (a logarithm) is computed only when a tie within
        // a region needs it: most decisions have no tie.
        let score = |id: u32| {
            let w = snap.hot.get(id as usize).map(|h| h.weight).unwrap_or(0);
            rendezvous(key, id.wrapping_sub(p.first), 0x005E_ED0F_5EA7, w)
        };
        match best {
            Some((b, _, _)) if rtt > b => {}
            // Equal figures share only within one region (Azure's rule):
            // two regions that happen to measure the same keep priority order.
            Some((b, bs, bid)) if rtt == b => {
                let region = region_of(snap, slot.id);
                if region != NO_ID && region == region_of(snap, bid) {
                    ties += 1;
                    let bs = bs.unwrap_or_else(|| score(bid));
                    let s = score(slot.id);
                    best = Some(if s > bs {
                        (rtt, Some(s), slot.id)
                    } else {
                        (b, Some(bs), bid)
                    });
                }
            }
            _ => {
                best = Some((rtt, None, slot.id));
                ties = 1;
            }
        }
    }
    let mut scope = 0u8;
    let mut why = ScopeWhy::NotClientDependent;
    if used_row && let Some((_, plen)) = row {
        scope = scope.max(plen);
        why = ScopeWhy::LatencyRow;
    }
    if used_loc && loc_plen > scope {
        scope = loc_plen;
        why = ScopeWhy::GeoIpNetwork;
    }
    if ties > 1 {
        t.note(Note::Shared { ties });
        if key_bits > scope {
            scope = key_bits;
            why = ScopeWhy::SharedRegion;
        }
    }
    match (best, first) {
        (Some((_, _, id)), _) => {
            t.note(Note::Scope(scope, why));
            (Pick::One(id), scope)
        }
        (None, Some(id)) => {
            t.note(Note::NoFigures);
            t.note(Note::Scope(0, ScopeWhy::NotClientDependent));
            (Pick::One(id), 0)
        }
        (None, None) => (Pick::NoData, 0),
    }
}

/// The region of endpoint `id`, or [`NO_ID`].
#[inline]
fn region_of(snap: &Snapshot, id: u32) -> u32 {
    snap.endpoints.get(id as usize).map_or(NO_ID, |e| e.region)
}
