//! Answer counters of one snapshot, counted on the query path with no lock,
//! no allocation, no syscall and no cache line that every query thread
//! writes (docs/OPERATIONS.md, "Metrics and the status page").
//!
//! Layout: one block per snapshot, stripe-major. A block holds `stripes`
//! copies (a power of two, at most [`MAX_STRIPES`]) of one array of `u64`
//! counters (the *slots*): first one per endpoint (answers that carried
//! the endpoint's records), then three per profile and three per zone (the
//! responses of [`Response`]), then one for queries under none of our
//! zones. Each stripe starts on its own 128-octet line (two cache lines,
//! so the adjacent-line prefetcher does not pair two stripes either). A
//! thread counts into one stripe only: its index is assigned once per
//! thread, round robin from the block it first counts in, and kept in a
//! `const`-initialised thread-local (no lazy initialisation, no
//! destructor, nothing allocated). Two threads write the same line only
//! when they share a stripe, that is when more threads count at once than
//! there are stripes; even then the increments are atomic, so nothing is
//! lost. A scrape sums the stripes of a slot (relaxed loads: a sum is
//! exact for every increment that happened before it).
//!
//! Memory: 8 octets × stripes per slot. With stripes = the number of CPUs
//! rounded up to a power of two, at most 8: a profile of 4 endpoints costs
//! (4 + 3) × 8 × stripes octets, 14 × stripes octets per endpoint (28 on a
//! 2-CPU machine, 112 with 8 stripes).
//!
//! Counts across reloads are the engine's business (`engine::metrics`):
//! each snapshot has a fresh block, and a retired snapshot's block is
//! folded into the engine's totals when no reader holds the snapshot.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Most stripes of a block (see the module doc for the memory it costs).
pub(crate) const MAX_STRIPES: usize = 8;

/// Counters per 128-octet line.
const PER_LINE: usize = 16;

/// What a response of a profile or a zone was; one slot each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// NOERROR with records in the answer section.
    Answer = 0,
    /// NOERROR without (NODATA).
    NoData = 1,
    /// NXDOMAIN.
    NxDomain = 2,
}

/// Every kind of [`Response`], in slot order.
pub(crate) const RESPONSES: [Response; 3] =
    [Response::Answer, Response::NoData, Response::NxDomain];

/// Two cache lines of counters.
#[repr(C, align(128))]
struct Line([AtomicU64; PER_LINE]);

thread_local! {
    /// This thread's stripe, or `u32::MAX` before its first count.
    static STRIPE: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// One snapshot's counters.
pub struct Counters {
    lines: Box<[Line]>,
    /// Lines per stripe.
    per_stripe: usize,
    /// `stripes - 1` (stripes is a power of two).
    stripe_mask: u32,
    endpoints: usize,
    profiles: usize,
    zones: usize,
    /// The next stripe a thread new to counting takes.
    next: AtomicU32,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("stripes", &self.stripes())
            .field("slots", &self.slots())
            .finish_non_exhaustive()
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters::new(0, 0, 0, 1)
    }
}

impl Counters {
    /// A zeroed block for `endpoints`, `profiles` and `zones`, with
    /// `stripes` rounded up to a power of two in 1 ..= [`MAX_STRIPES`].
    pub fn new(endpoints: usize, profiles: usize, zones: usize, stripes: usize) -> Counters {
        let stripes = stripes.clamp(1, MAX_STRIPES).next_power_of_two();
        let slots = endpoints + 3 * profiles + 3 * zones + 1;
        let per_stripe = slots.div_ceil(PER_LINE);
        Counters {
            lines: (0..per_stripe * stripes)
                .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            per_stripe,
            stripe_mask: stripes as u32 - 1,
            endpoints,
            profiles,
            zones,
            next: AtomicU32::new(0),
        }
    }

    /// A block sized for this machine: one stripe per CPU (a power of two,
    /// at most [`MAX_STRIPES`]).
    pub fn for_machine(endpoints: usize, profiles: usize, zones: usize) -> Counters {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Counters::new(endpoints, profiles, zones, cpus)
    }

    /// Stripes of the block.
    pub fn stripes(&self) -> usize {
        self.stripe_mask as usize + 1
    }

    /// Counters per stripe.
    pub fn slots(&self) -> usize {
        self.endpoints + 3 * self.profiles + 3 * self.zones + 1
    }

    /// Octets the block holds.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.lines)
    }

    /// Adds one to `slot` in this thread's stripe.
    #[inline]
    fn bump(&self, slot: usize) {
        let stripe = STRIPE.with(|s| {
            let v = s.get();
            if v != u32::MAX {
                return v;
            }
            // Once per thread: Relaxed, only spreads threads over stripes.
            let v = self.next.fetch_add(1, Ordering::Relaxed) % MAX_STRIPES as u32;
            s.set(v);
            v
        }) & self.stripe_mask;
        let line = stripe as usize * self.per_stripe + slot / PER_LINE;
        if let Some(l) = self.lines.get(line)
            && let Some(c) = l.0.get(slot % PER_LINE)
        {
            // Relaxed: a counter orders nothing; the reader sums later.
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sums `slot` over the stripes.
    fn sum(&self, slot: usize) -> u64 {
        (0..self.stripes())
            .filter_map(|s| {
                self.lines
                    .get(s * self.per_stripe + slot / PER_LINE)
                    .and_then(|l| l.0.get(slot % PER_LINE))
            })
            .map(|c| c.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// Counts an answer that carried endpoint `id`'s records.
    #[inline]
    pub fn answer(&self, id: u32) {
        if (id as usize) < self.endpoints {
            self.bump(id as usize);
        }
    }

    /// Counts a response to a query for profile `p`.
    #[inline]
    pub fn profile_response(&self, p: u32, r: Response) {
        if (p as usize) < self.profiles {
            self.bump(self.endpoints + 3 * p as usize + r as usize);
        }
    }

    /// Counts a response to a query for a name of zone `z` that is not a
    /// profile (the apex, an empty non-terminal, a name that does not exist).
    #[inline]
    pub fn zone_response(&self, z: u32, r: Response) {
        if (z as usize) < self.zones {
            self.bump(self.endpoints + 3 * self.profiles + 3 * z as usize + r as usize);
        }
    }

    /// Counts a query under none of our zones.
    #[inline]
    pub fn not_ours(&self) {
        self.bump(self.endpoints + 3 * self.profiles + 3 * self.zones);
    }

    /// Answers that carried endpoint `id`'s records so far.
    pub fn answers(&self, id: u32) -> u64 {
        if (id as usize) < self.endpoints {
            self.sum(id as usize)
        } else {
            0
        }
    }

    /// Responses of kind `r` to queries for profile `p` so far.
    pub fn profile_responses(&self, p: u32, r: Response) -> u64 {
        if (p as usize) < self.profiles {
            self.sum(self.endpoints + 3 * p as usize + r as usize)
        } else {
            0
        }
    }

    /// Responses of kind `r` for names of zone `z` that are not profiles.
    pub fn zone_responses(&self, z: u32, r: Response) -> u64 {
        if (z as usize) < self.zones {
            self.sum(self.endpoints + 3 * self.profiles + 3 * z as usize + r as usize)
        } else {
            0
        }
    }

    /// Queries under none of our zones so far.
    pub fn not_ours_count(&self) -> u64 {
        self.sum(self.endpoints + 3 * self.profiles + 3 * self.zones)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of slot counts on its own, from many threads at once
    /// (more threads than stripes), and nothing is lost.
    #[test]
    fn counts_are_exact_from_many_threads() {
        let c = Counters::new(5, 2, 1, 4);
        assert_eq!(c.stripes(), 4);
        std::thread::scope(|s| {
            for t in 0..10u32 {
                let c = &c;
                s.spawn(move || {
                    for _ in 0..1000 {
                        c.answer(t % 5);
                        c.profile_response(t % 2, Response::NoData);
                        c.zone_response(0, Response::NxDomain);
                        c.not_ours();
                    }
                });
            }
        });
        for e in 0..5 {
            assert_eq!(c.answers(e), 2000);
        }
        assert_eq!(c.profile_responses(0, Response::NoData), 5000);
        assert_eq!(c.profile_responses(1, Response::NoData), 5000);
        assert_eq!(c.profile_responses(1, Response::Answer), 0);
        assert_eq!(c.zone_responses(0, Response::NxDomain), 10_000);
        assert_eq!(c.zone_responses(0, Response::Answer), 0);
        assert_eq!(c.not_ours_count(), 10_000);
        // Out-of-range ids count nothing and read zero.
        c.answer(5);
        c.profile_response(2, Response::Answer);
        c.zone_response(1, Response::Answer);
        assert_eq!(c.answers(5), 0);
        assert_eq!(c.not_ours_count(), 10_000);
    }

    /// Stripes are a power of two in 1..=MAX_STRIPES, each on its own
    /// 128-octet lines.
    #[test]
    fn stripes_and_memory() {
        assert_eq!(Counters::new(1, 0, 0, 0).stripes(), 1);
        assert_eq!(Counters::new(1, 0, 0, 3).stripes(), 4);
        assert_eq!(Counters::new(1, 0, 0, 100).stripes(), MAX_STRIPES);
        // 400 endpoints + 100 profiles × 3 + 1 zone × 3 + 1 = 704 slots = 44 lines a stripe.
        let c = Counters::new(400, 100, 1, 2);
        assert_eq!(c.slots(), 704);
        assert_eq!(c.bytes(), 2 * 44 * 128);
        assert_eq!(c.lines.as_ptr() as usize % 128, 0);
    }
}
