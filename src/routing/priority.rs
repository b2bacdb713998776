//! Priority: the candidate with the lowest `priority` number.

use super::{Candidates, Figure, Note, Pick, ScopeWhy, Trace};
use crate::snapshot::{Profile, Snapshot};

pub(super) fn choose<T: Trace>(
    _snap: &Snapshot,
    p: &Profile,
    c: &Candidates<'_>,
    t: &mut T,
) -> (Pick, u8) {
    t.note(Note::Scope(0, ScopeWhy::NotClientDependent));
    for id in p.by_priority.iter().map(|s| s.id) {
        if c.ok(id) {
            t.figure(id, Figure::InOrder);
            return (Pick::One(id), 0);
        }
        t.figure(id, Figure::Skipped);
    }
    (Pick::NoData, 0)
}
