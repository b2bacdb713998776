//! Endpoint health as the query path sees it: one packed `AtomicU32` word
//! per endpoint, indexed by endpoint id (gdnsd's sttl idea). Queries read
//! with `Acquire`; writers (the probe thread, admin calls, tests) store with
//! `Release` while holding the engine's writer lock.
//!
//! Word layout (bits): `0..2` the monitor's verdict ([`MonitorStatus`]: the
//! probes', or `set_monitor_status`); `2..4` the effective admin override
//! ([`AdminState`]); `4..6` a forced monitor state ([`Forced`], the
//! admin-state file's `up`/`down`), which wins over the verdict; bit `6`
//! [`FAILING`]: the last probe failed but fewer than `tolerated_failures`
//! in a row have (the verdict still stands); bit `7` [`RECOVERING`]: the
//! verdict is Degraded and probes pass, fewer than `recovery_successes` in a
//! row so far (both written by the probe service, read for `ttl_unstable`);
//! the rest is reserved. [`HealthTable::status`] is the effective status (forced, else
//! the verdict). Per profile, four summary bitmasks of its first 64
//! endpoints (effectively degraded, admin-disabled, drained, admin-enabled)
//! are kept in step by the writers, so a query reads four words per profile
//! instead of one per endpoint.

// The probe and the probe service: the engine's, public only for the
// project's own tests.
#[doc(hidden)]
pub mod probe;
#[doc(hidden)]
pub mod service;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// An operator's override of an endpoint, set at run time without a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum AdminState {
    /// Follow the configuration.
    None = 0,
    /// Served (and probed) even if the config says `enabled = false`.
    Enabled = 1,
    /// Not served, not probed (status Disabled).
    Disabled = 2,
    /// No new answers, still probed (status shows the probe result).
    Drain = 3,
}

impl AdminState {
    /// Decodes the admin bits of a word.
    #[inline]
    pub fn from_word(w: u32) -> AdminState {
        match (w >> 2) & 0b11 {
            1 => AdminState::Enabled,
            2 => AdminState::Disabled,
            3 => AdminState::Drain,
            _ => AdminState::None,
        }
    }

    /// The name used in the status JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::None => "none",
            AdminState::Enabled => "enabled",
            AdminState::Disabled => "disabled",
            AdminState::Drain => "drain",
        }
    }
}

/// The bits of a health word that hold the monitor's verdict.
pub(crate) const STATUS_BITS: u32 = 0b11;
/// The bits of a health word that hold the admin override.
pub(crate) const ADMIN_BITS: u32 = 0b11 << 2;
/// The bits of a health word that hold the forced monitor state.
pub(crate) const FORCED_BITS: u32 = 0b11 << 4;
/// Bit of a health word: recent probe failures, fewer than tolerated.
pub(crate) const FAILING: u32 = 1 << 6;
/// Bit of a health word: Degraded, passing probes, not yet enough to recover.
pub(crate) const RECOVERING: u32 = 1 << 7;
/// Both bits that say an endpoint's health is moving.
pub(crate) const UNSTEADY_BITS: u32 = FAILING | RECOVERING;

/// No load known (the load table's value when nothing reported one).
pub(crate) const NO_LOAD: u32 = u32::MAX;

/// A monitor state forced by the operator (the admin-state file's `up` and
/// `down`): it wins over the probes' verdict, which is still kept and
/// reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Forced {
    /// Not forced: the verdict counts.
    None = 0,
    /// Forced Online.
    Up = 1,
    /// Forced Degraded.
    Down = 2,
}

impl Forced {
    /// Decodes the forced bits of a word.
    #[inline]
    pub fn from_word(w: u32) -> Forced {
        match (w >> 4) & 0b11 {
            1 => Forced::Up,
            2 => Forced::Down,
            _ => Forced::None,
        }
    }

    /// The name used in the status JSON and the admin-state file (`None`
    /// has none).
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Forced::None => None,
            Forced::Up => Some("up"),
            Forced::Down => Some("down"),
        }
    }
}

/// Which per-profile summary mask.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub enum Mask {
    /// Effective monitor status Degraded (forced down, or the verdict when
    /// not forced).
    Degraded = 0,
    /// Admin Disabled.
    Disabled = 1,
    /// Admin Drain.
    Drain = 2,
    /// Admin Enabled.
    Forced = 3,
    /// Recent probe failures, fewer than tolerated ([`FAILING`]).
    Failing = 4,
    /// Passing probes after Degraded, fewer than needed ([`RECOVERING`]).
    Recovering = 5,
}

/// Number of summary masks per profile.
const MASKS: usize = 6;

/// What the monitor last concluded about an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MonitorStatus {
    /// No probe result yet; the endpoint is served (Azure's "CheckingEndpoint").
    CheckingEndpoint = 0,
    /// Probes pass.
    Online = 1,
    /// Probes fail beyond the tolerated count; not served unless every endpoint is.
    Degraded = 2,
}

impl MonitorStatus {
    /// Decodes the verdict bits of a word (what the monitor concluded,
    /// whatever is forced).
    #[inline]
    pub fn from_word(w: u32) -> MonitorStatus {
        match w & 0b11 {
            1 => MonitorStatus::Online,
            2 => MonitorStatus::Degraded,
            _ => MonitorStatus::CheckingEndpoint,
        }
    }

    /// The effective status of a word: the forced state if any, else the
    /// verdict.
    #[inline]
    pub fn effective(w: u32) -> MonitorStatus {
        match Forced::from_word(w) {
            Forced::Up => MonitorStatus::Online,
            Forced::Down => MonitorStatus::Degraded,
            Forced::None => MonitorStatus::from_word(w),
        }
    }

    /// Azure's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorStatus::CheckingEndpoint => "CheckingEndpoint",
            MonitorStatus::Online => "Online",
            MonitorStatus::Degraded => "Degraded",
        }
    }
}

/// The health words of one snapshot, and per profile its summary masks.
#[derive(Debug, Default)]
pub struct HealthTable {
    words: Box<[AtomicU32]>,
    /// Per endpoint: its load in thousandths (1000 = 1.0), or [`NO_LOAD`].
    loads: Box<[AtomicU32]>,
    /// Per profile: the masks of [`Mask`], bit i for endpoint `first + i`.
    masks: Box<[[AtomicU64; MASKS]]>,
    /// Per endpoint: (profile, index in the profile).
    owner: Box<[(u32, u32)]>,
}

impl HealthTable {
    /// All CheckingEndpoint. `owner[id]` is (profile, index in the profile)
    /// of each endpoint; `profiles` is the number of profiles.
    pub fn new(owner: Vec<(u32, u32)>, profiles: usize) -> HealthTable {
        HealthTable {
            words: (0..owner.len()).map(|_| AtomicU32::new(0)).collect(),
            loads: (0..owner.len()).map(|_| AtomicU32::new(NO_LOAD)).collect(),
            masks: (0..profiles)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            owner: owner.into(),
        }
    }

    /// The effective monitor status of endpoint `id`: the forced state if
    /// any, else the verdict (CheckingEndpoint if out of range).
    #[inline]
    pub fn status(&self, id: u32) -> MonitorStatus {
        // Acquire pairs with the Release in `set_word`.
        MonitorStatus::effective(
            self.words
                .get(id as usize)
                .map(|w| w.load(Ordering::Acquire))
                .unwrap_or(0),
        )
    }

    /// The monitor's verdict on endpoint `id` (probes or
    /// `set_monitor_status`), whatever is forced.
    #[inline]
    pub fn verdict(&self, id: u32) -> MonitorStatus {
        // Acquire pairs with the Release in `set_word`.
        MonitorStatus::from_word(
            self.words
                .get(id as usize)
                .map(|w| w.load(Ordering::Acquire))
                .unwrap_or(0),
        )
    }

    /// The forced monitor state of endpoint `id`.
    #[inline]
    pub fn forced(&self, id: u32) -> Forced {
        // Acquire pairs with the Release in `set_word`.
        Forced::from_word(
            self.words
                .get(id as usize)
                .map(|w| w.load(Ordering::Acquire))
                .unwrap_or(0),
        )
    }

    /// The admin state of endpoint `id`.
    #[inline]
    pub fn admin(&self, id: u32) -> AdminState {
        // Acquire pairs with the Release in `set_word`.
        AdminState::from_word(
            self.words
                .get(id as usize)
                .map(|w| w.load(Ordering::Acquire))
                .unwrap_or(0),
        )
    }

    /// One summary mask of `profile`.
    #[inline]
    pub fn mask(&self, profile: u32, which: Mask) -> u64 {
        // Acquire pairs with the Release in `set_word`.
        self.masks
            .get(profile as usize)
            .map(|m| m[which as usize].load(Ordering::Acquire))
            .unwrap_or(0)
    }

    /// The raw word of endpoint `id`.
    pub fn word(&self, id: u32) -> u32 {
        // Relaxed: used only by writers, who are serialised by the writer lock.
        self.words
            .get(id as usize)
            .map(|w| w.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Sets the raw word and the profile's summary bits. Writers hold the
    /// engine's writer lock, so the read-modify-writes of the masks do not race.
    pub fn set_word(&self, id: u32, word: u32) {
        let Some(w) = self.words.get(id as usize) else {
            return;
        };
        // Release pairs with the Acquire in `status` / `admin`.
        w.store(word, Ordering::Release);
        let Some(&(p, i)) = self.owner.get(id as usize) else {
            return;
        };
        let Some(m) = self.masks.get(p as usize) else {
            return;
        };
        if i >= 64 {
            return;
        }
        let bit = 1u64 << i;
        let admin = AdminState::from_word(word);
        let set = [
            MonitorStatus::effective(word) == MonitorStatus::Degraded,
            admin == AdminState::Disabled,
            admin == AdminState::Drain,
            admin == AdminState::Enabled,
            word & FAILING != 0,
            word & RECOVERING != 0,
        ];
        for (k, on) in set.iter().enumerate() {
            // Release pairs with the Acquire in `mask`.
            if *on {
                m[k].fetch_or(bit, Ordering::Release);
            } else {
                m[k].fetch_and(!bit, Ordering::Release);
            }
        }
    }

    /// Sets the monitor's verdict on endpoint `id`, keeping the other bits
    /// (a forced state stays and keeps winning).
    pub fn set_status(&self, id: u32, s: MonitorStatus) {
        let old = self.word(id);
        self.set_word(id, (old & !STATUS_BITS) | s as u32);
    }

    /// Sets the admin state of endpoint `id`, keeping the other bits.
    pub fn set_admin(&self, id: u32, a: AdminState) {
        let old = self.word(id);
        self.set_word(id, (old & !ADMIN_BITS) | ((a as u32) << 2));
    }

    /// Sets (or clears) the forced monitor state of endpoint `id`, keeping
    /// the other bits.
    pub fn set_forced(&self, id: u32, f: Forced) {
        let old = self.word(id);
        self.set_word(id, (old & !FORCED_BITS) | ((f as u32) << 4));
    }

    /// Sets the probe service's [`FAILING`] / [`RECOVERING`] bits of
    /// endpoint `id` (`bits` holds only those), keeping the others.
    pub fn set_unsteady(&self, id: u32, bits: u32) {
        let old = self.word(id);
        let new = (old & !UNSTEADY_BITS) | (bits & UNSTEADY_BITS);
        if new != old {
            self.set_word(id, new);
        }
    }

    /// Whether endpoint `id`'s health is moving: recent failures below the
    /// tolerated count, or recovering.
    #[inline]
    pub fn unsteady(&self, id: u32) -> u32 {
        // Acquire pairs with the Release in `set_word`.
        self.words
            .get(id as usize)
            .map(|w| w.load(Ordering::Acquire) & UNSTEADY_BITS)
            .unwrap_or(0)
    }

    /// The load of endpoint `id` in thousandths (1000 = 1.0), or
    /// [`NO_LOAD`] when none was reported.
    #[inline]
    pub fn load(&self, id: u32) -> u32 {
        // Relaxed: a lone value, read with no other data depending on it.
        self.loads
            .get(id as usize)
            .map(|w| w.load(Ordering::Relaxed))
            .unwrap_or(NO_LOAD)
    }

    /// Sets the load of endpoint `id` in thousandths, or [`NO_LOAD`].
    pub fn set_load(&self, id: u32, milli: u32) {
        if let Some(w) = self.loads.get(id as usize) {
            // Relaxed: see `load`.
            w.store(milli, Ordering::Relaxed);
        }
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there are no endpoints.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

pub use crate::config::load_milli;

/// Parses a reported load: a decimal fraction (`0.73`) or a percentage
/// (`73%`), surrounding blanks ignored.
pub fn parse_load(text: &str) -> Option<u32> {
    let t = text.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim_end(), 100.0),
        None => (t, 1.0),
    };
    load_milli(num.parse::<f64>().ok()? / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads parse as fractions or percentages and are clamped.
    #[test]
    fn loads_parse() {
        assert_eq!(parse_load(" 0.73 "), Some(730));
        assert_eq!(parse_load("73%"), Some(730));
        assert_eq!(parse_load("-1"), Some(0));
        assert_eq!(parse_load("1e9"), Some(1_000_000));
        assert_eq!(parse_load("high"), None);
        assert_eq!(parse_load("NaN"), None);
    }

    /// A forced state wins over the verdict in `status` and in the
    /// Degraded mask; the verdict is kept underneath and writing it does
    /// not clear what is forced.
    #[test]
    fn forced_state_wins_over_the_verdict_and_survives_its_writes() {
        let h = HealthTable::new(vec![(0, 0), (0, 1)], 1);
        h.set_status(0, MonitorStatus::Online);
        h.set_forced(0, Forced::Down);
        assert_eq!(h.status(0), MonitorStatus::Degraded);
        assert_eq!(h.verdict(0), MonitorStatus::Online);
        assert_eq!(h.mask(0, Mask::Degraded), 0b01);
        // A probe result arrives: stored, but the forced state stays.
        h.set_status(0, MonitorStatus::Online);
        h.set_admin(0, AdminState::Drain);
        assert_eq!(h.forced(0), Forced::Down);
        assert_eq!(h.status(0), MonitorStatus::Degraded);
        assert_eq!(h.mask(0, Mask::Degraded), 0b01);
        // Forced up over a failing verdict.
        h.set_status(1, MonitorStatus::Degraded);
        assert_eq!(h.mask(0, Mask::Degraded), 0b11);
        h.set_forced(1, Forced::Up);
        assert_eq!(h.status(1), MonitorStatus::Online);
        assert_eq!(h.mask(0, Mask::Degraded), 0b01);
        // Cleared: the verdict counts again.
        h.set_forced(0, Forced::None);
        h.set_forced(1, Forced::None);
        assert_eq!(h.status(0), MonitorStatus::Online);
        assert_eq!(h.status(1), MonitorStatus::Degraded);
        assert_eq!(h.mask(0, Mask::Degraded), 0b10);
        assert_eq!(h.admin(0), AdminState::Drain);
    }
}
