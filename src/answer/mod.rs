//! Answers as the query path produces them: borrowed views into the
//! snapshot, built without allocation. [`wire`] turns one into a DNS
//! message; the C API hands its records to a callback.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

pub mod records;
pub mod wire;

pub use records::Rec;

/// A zone as answers carry it: its names and the records of its apex that
/// negative answers and the apex itself are made of.
#[derive(Debug)]
pub struct Zone {
    /// Lowercase, no trailing dot.
    pub name: Box<str>,
    /// With trailing dot (presentation owner).
    pub owner: Box<str>,
    /// The SOA record.
    pub soa: Rec,
    /// The NS records.
    pub ns: Box<[Rec]>,
}

/// Response codes we produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rcode {
    /// Success (possibly NODATA: no answer records).
    NoError = 0,
    /// Malformed query.
    FormErr = 1,
    /// Server failure.
    ServFail = 2,
    /// The name does not exist.
    NxDomain = 3,
    /// Opcode not implemented.
    NotImp = 4,
    /// Not ours (the name is under none of our zones).
    Refused = 5,
}

/// Most addresses of one family a multivalue answer carries (the
/// configuration's `max_answers` is at most this).
pub(crate) const MAX_ANSWERS: usize = 8;

/// Most record slices one answer can gather.
pub(crate) const MAX_PARTS: usize = 16;

// A multivalue answer to ANY takes at most one slice per address of each
// family (`max_answers` of each), and the apex's ANY two (SOA, NS): raising
// MAX_ANSWERS past what the slices hold fails the build.
const _: () = assert!(MAX_PARTS >= 2 * MAX_ANSWERS && MAX_PARTS >= 2);

/// A list of records as slices of the snapshot; no allocation.
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    parts: [&'a [Rec]; MAX_PARTS],
    n: usize,
}

impl Default for Records<'_> {
    fn default() -> Self {
        Records {
            parts: [&[]; MAX_PARTS],
            n: 0,
        }
    }
}

impl<'a> Records<'a> {
    /// Appends a slice (ignored when full or empty).
    #[inline]
    pub fn push(&mut self, s: &'a [Rec]) {
        if s.is_empty() {
            return;
        }
        if let Some(slot) = self.parts.get_mut(self.n) {
            *slot = s;
            self.n += 1;
        }
    }

    /// Appends one record.
    #[inline]
    pub fn push_one(&mut self, r: &'a Rec) {
        self.push(std::slice::from_ref(r));
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a Rec> + '_ {
        self.parts.iter().take(self.n).flat_map(|s| s.iter())
    }

    /// Forgets the records (keeps the storage).
    #[inline]
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.parts.iter().take(self.n).map(|s| s.len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// The outcome of one query.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// Response code.
    pub rcode: Rcode,
    /// Whether we are authoritative (the name is in one of our zones).
    pub authoritative: bool,
    /// The answer section's records (owner: the query name).
    pub records: Records<'a>,
    /// Authority section (owner: the zone apex).
    pub authority: Records<'a>,
    /// The zone the name is in.
    pub zone: Option<&'a Zone>,
    /// ECS scope prefix the decision depended on.
    pub scope_prefix: u8,
    /// Highest TTL of the answer section's records (`u32::MAX`: none):
    /// the profile's `ttl_unstable` while what the answer depends on moves.
    /// Every output path writes [`Answer::ttl`], never `Rec::ttl` itself.
    pub ttl_cap: u32,
}

/// [`Answer::ttl_cap`] when the answer is steady.
pub(crate) const NO_TTL_CAP: u32 = u32::MAX;

impl<'a> Default for Answer<'a> {
    fn default() -> Self {
        Answer::not_ours()
    }
}

impl<'a> Answer<'a> {
    /// The TTL to write for record `r` of the answer section: its own,
    /// capped by [`Answer::ttl_cap`].
    #[inline]
    pub fn ttl(&self, r: &Rec) -> u32 {
        r.ttl.min(self.ttl_cap)
    }

    /// Makes this answer "not ours" in place.
    #[inline]
    pub fn set_not_ours(&mut self) {
        self.ttl_cap = NO_TTL_CAP;
        self.rcode = Rcode::Refused;
        self.authoritative = false;
        self.records.clear();
        self.authority.clear();
        self.zone = None;
        self.scope_prefix = 0;
    }

    /// Makes this a negative answer (NXDOMAIN or NODATA) with the zone's SOA, in place.
    #[inline]
    pub fn set_negative(&mut self, zone: &'a Zone, rcode: Rcode, scope_prefix: u8) {
        self.rcode = rcode;
        self.authoritative = true;
        self.records.clear();
        self.authority.clear();
        self.authority.push_one(&zone.soa);
        self.zone = Some(zone);
        self.scope_prefix = scope_prefix;
    }

    /// Makes this a positive answer whose records are already in `self.records`.
    #[inline]
    pub fn set_positive(&mut self, zone: &'a Zone, scope_prefix: u8) {
        self.rcode = Rcode::NoError;
        self.authoritative = true;
        self.authority.clear();
        self.zone = Some(zone);
        self.scope_prefix = scope_prefix;
    }

    /// Not ours: REFUSED on the wire, "not found" for hosts with other data.
    pub fn not_ours() -> Answer<'a> {
        Answer {
            rcode: Rcode::Refused,
            authoritative: false,
            records: Records::default(),
            authority: Records::default(),
            zone: None,
            scope_prefix: 0,
            ttl_cap: NO_TTL_CAP,
        }
    }
}
