//! Geographic: the endpoint whose `geo` list holds the most specific code
//! containing the client's country (country, then continent, then WORLD).
//! A degraded endpoint that matches is still answered (as Azure does); a
//! disabled one is not. Nothing matches → NODATA.

use super::{Client, Figure, Note, Pick, ScopeWhy, Trace};
use crate::config::GeoCode;
use crate::geo::builtin;
use crate::snapshot::{Profile, Snapshot};

pub(super) fn choose<T: Trace>(
    snap: &Snapshot,
    p: &Profile,
    client: &Client,
    skip: u64,
    t: &mut T,
) -> (Pick, u8) {
    let info = match (client.addr, &snap.geo) {
        (Some(a), Some(g)) => g.lookup(a),
        _ => None,
    };
    let (country, continent, scope, why) = match info {
        Some((i, plen)) => {
            let c = builtin::countries().get(i.country as usize).map(|c| c.code);
            let k = builtin::CONTINENTS
                .get(i.continent as usize)
                .and_then(|s| s.as_bytes().first_chunk::<2>().copied());
            t.note(Note::Country {
                country: c,
                continent: k,
                prefix: plen,
            });
            (c, k, plen, ScopeWhy::GeoIpNetwork)
        }
        None => {
            t.note(Note::NoGeoIp);
            (
                None,
                None,
                client.source_prefix.min(24),
                ScopeWhy::UnknownClient,
            )
        }
    };
    t.note(Note::Scope(scope, why));
    // 0 = country, 1 = continent, 2 = WORLD.
    let mut best: Option<(u8, u32)> = None;
    for id in p.endpoint_ids() {
        let Some(e) = snap.endpoints.get(id as usize) else {
            continue;
        };
        // `skip`: endpoints spill-over moved this client away from.
        if !super::servable(snap, id) || skip & 1u64.checked_shl(id - p.first).unwrap_or(0) != 0 {
            t.figure(id, Figure::Skipped);
            continue;
        }
        for g in e.geo.iter() {
            let rank = match g {
                GeoCode::Country(c) if Some(*c) == country => 0,
                GeoCode::Continent(c) if Some(*c) == continent => 1,
                GeoCode::World => 2,
                _ => continue,
            };
            t.figure(id, Figure::GeoMatch { code: *g, rank });
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
