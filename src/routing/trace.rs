//! The observer of a decision: what `trafficmgr explain` shows. The methods
//! call it at each step with what they read (no second implementation of
//! routing exists); the query path passes [`NoTrace`], whose methods are
//! empty and inlined, so the calls and the values built for them vanish
//! when monomorphised (`tests/no_alloc.rs`, `cargo bench --bench lookup`).

use super::{Candidates, Pick};
use crate::config::GeoCode;
use crate::snapshot::{Profile, Snapshot};

/// The candidate rule's outcome for one profile (routing/mod.rs, the truth table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The profile is disabled: NXDOMAIN.
    ProfileDisabled,
    /// Nested profiles deeper than 10 levels: NXDOMAIN.
    TooDeep,
    /// No endpoint is enabled: NXDOMAIN.
    NoneEnabled,
    /// Every enabled endpoint is drained: NODATA.
    AllDrained,
    /// None online and the profile fails closed: NODATA.
    AllDownFailClosed,
    /// The candidates are the online endpoints.
    Online,
    /// None online, fail-open: every enabled, undrained endpoint is a candidate.
    AllDownFailOpen,
}

/// What a method read of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    /// Passed over: not a candidate (or, for geographic and subnet routing,
    /// not servable).
    Skipped,
    /// A candidate looked at in priority order (priority, multivalue).
    InOrder,
    /// Weighted draw: its weight among the candidates' total.
    Weight {
        /// Its weight.
        weight: u32,
        /// The candidates' total.
        total: u64,
    },
    /// Weighted with client-subnet affinity: its rendezvous score (highest wins).
    Score(f64),
    /// Performance: the latency table's figure for the client's row.
    RttTable(u32),
    /// Performance: estimated from the great-circle distance to its region.
    RttDistance {
        /// Estimated round trip, ms.
        ms: u32,
        /// Distance, km.
        km: f64,
    },
    /// Performance: nothing known (no figure, no location).
    RttUnknown,
    /// Geographic: one of its codes contains the client (0 country,
    /// 1 continent, 2 WORLD).
    GeoMatch {
        /// The code that matched.
        code: GeoCode,
        /// 0 country, 1 continent, 2 WORLD (lower wins).
        rank: u8,
    },
    /// Subnet: its prefix is the longest that holds the client.
    SubnetMatch(u8),
    /// Subnet: the catch-all endpoint (no `subnets`).
    SubnetDefault,
}

/// Why the ECS scope is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeWhy {
    /// The answer does not depend on the client's address.
    NotClientDependent,
    /// The prefix length of the latency table's row the decision used.
    LatencyRow,
    /// The prefix length of the GeoIP network the decision used.
    GeoIpNetwork,
    /// Nothing known of the client: its source prefix, at most /24.
    UnknownClient,
    /// Affinity hashes the client's /24 (IPv4) or /56 (IPv6).
    AffinitySubnet,
    /// The longest prefix holding the client, widened to stay clear of
    /// longer prefixes of other endpoints.
    SubnetPrefix,
    /// The catch-all (or nothing) answered: the client's source prefix.
    SourcePrefix,
    /// Spill-over hashes the client's /24 (IPv4) or /56 (IPv6).
    SpillSubnet,
    /// Performance: several endpoints tie (one region); the client's /24
    /// (/56) picks one by weight.
    SharedRegion,
}

/// Something a method looked up about the client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Note {
    /// Latency table: the client's row and its prefix length.
    LatencyRow(u8),
    /// Latency table: no row holds the client (or no table, no address).
    NoLatencyRow,
    /// GeoIP: the client's location and the network's prefix length.
    Location {
        /// Degrees.
        lat: f64,
        /// Degrees.
        lon: f64,
        /// Prefix length of the GeoIP network.
        prefix: u8,
    },
    /// GeoIP: the client's country and continent, and the network's prefix length.
    Country {
        /// ISO code, if known.
        country: Option<[u8; 2]>,
        /// Continent code, if known.
        continent: Option<[u8; 2]>,
        /// Prefix length of the GeoIP network.
        prefix: u8,
    },
    /// GeoIP: nothing known of the client (no database, no address, no network).
    NoGeoIp,
    /// Performance: no candidate had a figure; the first by priority answers.
    NoFigures,
    /// Weighted: the random draw `r` in `0..total`.
    Draw {
        /// The draw.
        r: u64,
        /// The candidates' total weight.
        total: u64,
    },
    /// The ECS scope of this profile's decision, and why.
    Scope(u8, ScopeWhy),
    /// Spill-over: endpoint `id` has load `load` (thousandths) at or above
    /// `spill_start`; `share` (thousandths) of its clients move, this
    /// client among them or not.
    Spill {
        /// The loaded endpoint.
        id: u32,
        /// Its load, thousandths.
        load: u32,
        /// Share of its clients moved, thousandths.
        share: u32,
        /// Whether this client moves.
        moved: bool,
    },
    /// Spill-over: no endpoint with room to move to; the client goes to the
    /// least loaded endpoint it passed through.
    SpillNowhere,
    /// Weighted: no candidate has a weight above 0; the standby endpoints
    /// (weight 0) share the answer equally.
    Standby,
    /// Performance: `ties` candidates share the lowest round-trip time.
    Shared {
        /// How many.
        ties: u32,
    },
    /// The answer is unsteady: its TTL is `ttl_unstable` (the second field).
    Unsteady(super::Unsteady, u32),
}

/// Observes a decision. Every method has an empty default, so an observer
/// implements only what it wants.
pub trait Trace {
    /// A profile's decision begins (nested profiles: once per level).
    #[inline(always)]
    fn profile(&mut self, _snap: &Snapshot, _p: &Profile, _depth: u32) {}
    /// The candidate rule decided the profile's answer outright.
    #[inline(always)]
    fn rule(&mut self, _rule: Rule) {}
    /// The candidate rule let the method choose among `c`.
    #[inline(always)]
    fn candidates(&mut self, _c: &Candidates<'_>, _rule: Rule) {}
    /// What the method read of endpoint `id`.
    #[inline(always)]
    fn figure(&mut self, _id: u32, _f: Figure) {}
    /// What the method looked up about the client.
    #[inline(always)]
    fn note(&mut self, _n: Note) {}
    /// The profile's pick and the ECS scope it depended on.
    #[inline(always)]
    fn chose(&mut self, _p: &Profile, _pick: &Pick, _scope: u8) {}
}

/// The query path's observer: sees nothing, costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrace;

impl Trace for NoTrace {
    #[inline(always)]
    fn profile(&mut self, _: &Snapshot, _: &Profile, _: u32) {}
    #[inline(always)]
    fn rule(&mut self, _: Rule) {}
    #[inline(always)]
    fn candidates(&mut self, _: &Candidates<'_>, _: Rule) {}
    #[inline(always)]
    fn figure(&mut self, _: u32, _: Figure) {}
    #[inline(always)]
    fn note(&mut self, _: Note) {}
    #[inline(always)]
    fn chose(&mut self, _: &Profile, _: &Pick, _: u8) {}
}
