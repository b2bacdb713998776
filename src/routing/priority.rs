//! Priority: the candidate with the lowest `priority` number.

use super::{Candidates, Pick};
use crate::snapshot::{Profile, Snapshot};

pub(super) fn choose(_snap: &Snapshot, p: &Profile, c: &Candidates<'_>) -> (Pick, u8) {
    match p.by_priority.iter().map(|s| s.id).find(|id| c.ok(*id)) {
        Some(id) => (Pick::One(id), 0),
        None => (Pick::NoData, 0),
    }
}
