//! Performance: the candidate whose region has the lowest round-trip time
//! from the client (SPEC §4). Per endpoint: the latency table's figure for
//! the client's row and the endpoint's region; else an estimate from the
//! great-circle distance between the client's location (GeoIP) and the
//! region; else unknown. Known beats unknown; ties and the all-unknown case
//! go to the lower priority number (we walk in priority order and keep the
//! first minimum).
//!
//! ECS scope: the prefix length of the latency row and/or GeoIP network the
//! decision used; 0 when nothing was known of the client.

use super::{Candidates, Client, Pick};
use crate::geo::RTT_UNKNOWN;
use crate::geo::distance::{estimated_rtt_ms, great_circle_km};
use crate::snapshot::{Profile, Snapshot};

pub(super) fn choose(
    snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    client: &Client,
) -> (Pick, u8) {
    let row = match (client.addr, &snap.latency) {
        (Some(a), Some(t)) => t.row(a),
        _ => None,
    };
    let loc = match (client.addr, &snap.geo) {
        (Some(a), Some(g)) => g
            .lookup(a)
            .and_then(|(info, plen)| info.location().map(|l| (l, plen))),
        _ => None,
    };
    let mut best: Option<(u32, u32)> = None; // (rtt, id)
    let mut first: Option<u32> = None;
    let mut used_row = false;
    let mut used_loc = false;
    for &id in p.by_priority.iter() {
        if !c.ok(id) {
            continue;
        }
        if first.is_none() {
            first = Some(id);
        }
        let Some(h) = snap.hot.get(id as usize) else {
            continue;
        };
        if !h.has_region {
            continue;
        }
        let mut rtt = None;
        if let Some((cells, _)) = row
            && let Some(&ms) = cells.get(h.latency_col as usize)
            && ms != RTT_UNKNOWN
        {
            rtt = Some(u32::from(ms));
            used_row = true;
        }
        if rtt.is_none()
            && let Some(((lat, lon), _)) = loc
        {
            rtt = Some(estimated_rtt_ms(great_circle_km(
                lat,
                lon,
                f64::from(h.lat),
                f64::from(h.lon),
            )));
            used_loc = true;
        }
        if let Some(ms) = rtt
            && best.is_none_or(|(b, _)| ms < b)
        {
            best = Some((ms, id));
        }
    }
    let mut scope = 0u8;
    if used_row && let Some((_, plen)) = row {
        scope = scope.max(plen);
    }
    if used_loc && let Some((_, plen)) = loc {
        scope = scope.max(plen);
    }
    match (best, first) {
        (Some((_, id)), _) => (Pick::One(id), scope),
        (None, Some(id)) => (Pick::One(id), 0),
        (None, None) => (Pick::NoData, 0),
    }
}
