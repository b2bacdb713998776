//! Endpoint health as the query path sees it: one packed `AtomicU32` word
//! per endpoint, indexed by endpoint id (gdnsd's sttl idea). Queries read
//! with `Acquire`; writers (the probe thread, admin calls, tests) store with
//! `Release` while holding the engine's writer lock.
//!
//! Word layout (bits): `0..2` monitor status ([`MonitorStatus`]); the rest
//! is reserved for admin overrides and anti-flap state.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

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
    /// Decodes the status bits of a word.
    #[inline]
    pub fn from_word(w: u32) -> MonitorStatus {
        match w & 0b11 {
            1 => MonitorStatus::Online,
            2 => MonitorStatus::Degraded,
            _ => MonitorStatus::CheckingEndpoint,
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

/// The health words of one snapshot, and per profile a summary bitmask of
/// its degraded endpoints (the first 64), kept in step by the writers so a
/// query reads one word per profile instead of one per endpoint.
#[derive(Debug, Default)]
pub struct HealthTable {
    words: Box<[AtomicU32]>,
    /// Per profile: bit i set when endpoint `first + i` is Degraded.
    masks: Box<[AtomicU64]>,
    /// Per endpoint: (profile, index in the profile).
    owner: Box<[(u32, u32)]>,
}

impl HealthTable {
    /// All CheckingEndpoint. `owner[id]` is (profile, index in the profile)
    /// of each endpoint; `profiles` is the number of profiles.
    pub fn new(owner: Vec<(u32, u32)>, profiles: usize) -> HealthTable {
        HealthTable {
            words: (0..owner.len()).map(|_| AtomicU32::new(0)).collect(),
            masks: (0..profiles).map(|_| AtomicU64::new(0)).collect(),
            owner: owner.into(),
        }
    }

    /// The monitor status of endpoint `id` (CheckingEndpoint if out of range).
    #[inline]
    pub fn status(&self, id: u32) -> MonitorStatus {
        // Acquire pairs with the Release in `set_word`.
        MonitorStatus::from_word(
            self.words
                .get(id as usize)
                .map(|w| w.load(Ordering::Acquire))
                .unwrap_or(0),
        )
    }

    /// Bit i set when endpoint i (< 64) of `profile` is Degraded.
    #[inline]
    pub fn degraded_mask(&self, profile: u32) -> u64 {
        // Acquire pairs with the Release in `set_word`.
        self.masks
            .get(profile as usize)
            .map(|m| m.load(Ordering::Acquire))
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

    /// Sets the raw word (and the profile's summary bit). Writers hold the
    /// engine's writer lock, so the read-modify-write of the mask is not racy.
    pub fn set_word(&self, id: u32, word: u32) {
        let Some(w) = self.words.get(id as usize) else {
            return;
        };
        // Release pairs with the Acquire in `status`.
        w.store(word, Ordering::Release);
        if let Some(&(p, i)) = self.owner.get(id as usize)
            && i < 64
            && let Some(m) = self.masks.get(p as usize)
        {
            let bit = 1u64 << i;
            if MonitorStatus::from_word(word) == MonitorStatus::Degraded {
                // Release pairs with the Acquire in `degraded_mask`.
                m.fetch_or(bit, Ordering::Release);
            } else {
                m.fetch_and(!bit, Ordering::Release);
            }
        }
    }

    /// Sets the monitor status of endpoint `id`, keeping the other bits.
    pub fn set_status(&self, id: u32, s: MonitorStatus) {
        let old = self.word(id);
        self.set_word(id, (old & !0b11) | s as u32);
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
