//! Multivalue: the first [`super::MAX_PICKS`] candidates in priority order; the answer takes
//! up to `max_answers` addresses of the asked family from them, in order
//! (an endpoint without that family is passed over).

use super::{Candidates, Figure, Note, Pick, ScopeWhy, Trace};
use crate::snapshot::{Profile, Snapshot};

pub(super) fn choose<T: Trace>(
    _snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    t: &mut T,
) -> (Pick, u8) {
    t.note(Note::Scope(0, ScopeWhy::NotClientDependent));
    let mut ids = [0u32; super::MAX_PICKS];
    let mut n = 0usize;
    for id in p.by_priority.iter().map(|s| s.id) {
        if c.ok(id) {
            let Some(slot) = ids.get_mut(n) else { break };
            t.figure(id, Figure::InOrder);
            *slot = id;
            n += 1;
        } else {
            t.figure(id, Figure::Skipped);
        }
    }
    if n == 0 {
        (Pick::NoData, 0)
    } else {
        (Pick::Many(ids, n as u8), 0)
    }
}
