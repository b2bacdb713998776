//! Geographic: the endpoint whose `geo` list holds the most specific code
//! containing the client's country (country, then continent, then WORLD).
//! A degraded endpoint that matches is still answered (as Azure does); a
//! disabled one is not. Nothing matches → NODATA.

use super::{Client, Pick};
use crate::config::GeoCode;
use crate::geo::builtin;
use crate::snapshot::{Profile, Snapshot};

pub(super) fn choose(snap: &Snapshot, p: &Profile, client: &Client) -> (Pick, u8) {
    let info = match (client.addr, &snap.geo) {
        (Some(a), Some(g)) => g.lookup(a),
        _ => None,
    };
    let (country, continent, scope) = match info {
        Some((i, plen)) => {
            let c = builtin::countries().get(i.country as usize).map(|c| c.code);
            let k = builtin::CONTINENTS
                .get(i.continent as usize)
                .and_then(|s| s.as_bytes().first_chunk::<2>().copied());
            (c, k, plen)
        }
        None => (None, None, client.source_prefix.min(24)),
    };
    // 0 = country, 1 = continent, 2 = WORLD.
    let mut best: Option<(u8, u32)> = None;
    for id in p.endpoint_ids() {
        let Some(e) = snap.endpoints.get(id as usize) else {
            continue;
        };
        if !super::servable(snap, id) {
            continue;
        }
        for g in e.geo.iter() {
            let rank = match g {
                GeoCode::Country(c) if Some(*c) == country => 0,
                GeoCode::Continent(c) if Some(*c) == continent => 1,
                GeoCode::World => 2,
                _ => continue,
            };
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, id));
            }
        }
    }
    match best {
        Some((_, id)) => (Pick::One(id), scope),
        None => (Pick::NoData, scope),
    }
}
