//! Multivalue: the first [`super::MAX_PICKS`] candidates in priority order; the answer takes
//! up to `max_answers` addresses of the asked family from them, in order
//! (an endpoint without that family is passed over).

use super::{Candidates, Pick};
use crate::snapshot::{Profile, Snapshot};

pub(super) fn choose(_snap: &Snapshot, p: &Profile, c: &Candidates<'_>) -> (Pick, u8) {
    let mut ids = [0u32; super::MAX_PICKS];
    let mut n = 0usize;
    for id in p.by_priority.iter().map(|s| s.id) {
        if c.ok(id) {
            let Some(slot) = ids.get_mut(n) else { break };
            *slot = id;
            n += 1;
        }
    }
    if n == 0 {
        (Pick::NoData, 0)
    } else {
        (Pick::Many(ids, n as u8), 0)
    }
}
