//! Multivalue: the candidates in priority order (their addresses are capped
//! at `max_answers` per family when the answer is built).

use super::{Candidates, Pick};
use crate::snapshot::{Profile, Snapshot};

pub(super) fn choose(_snap: &Snapshot, p: &Profile, c: &Candidates<'_>) -> (Pick, u8) {
    let mut ids = [0u32; 8];
    let mut n = 0usize;
    for &id in p.by_priority.iter() {
        if n >= ids.len() || n >= usize::from(p.max_answers) {
            break;
        }
        if c.ok(id) {
            ids[n] = id;
            n += 1;
        }
    }
    if n == 0 {
        (Pick::NoData, 0)
    } else {
        (Pick::Many(ids, n as u8), 0)
    }
}
