//! Endpoint health as the query path sees it: one packed `AtomicU32` word
//! per endpoint, indexed by endpoint id (gdnsd's sttl idea). Queries read
//! with `Acquire`; writers (the probe thread, admin calls, tests) store with
//! `Release` while holding the engine's writer lock.
//!
//! Word layout (bits): `0..2` monitor status ([`MonitorStatus`]); the rest
//! is reserved for admin overrides and anti-flap state.

use std::sync::atomic::{AtomicU32, Ordering};

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

/// The health words of one snapshot.
#[derive(Debug, Default)]
pub struct HealthTable {
    words: Box<[AtomicU32]>,
}

impl HealthTable {
    /// `n` endpoints, all CheckingEndpoint.
    pub fn new(n: usize) -> HealthTable {
        HealthTable {
            words: (0..n).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The monitor status of endpoint `id` (CheckingEndpoint if out of range).
    #[inline]
    pub fn status(&self, id: u32) -> MonitorStatus {
        // Acquire pairs with the Release in `set_status`.
        MonitorStatus::from_word(
            self.words
                .get(id as usize)
                .map(|w| w.load(Ordering::Acquire))
                .unwrap_or(0),
        )
    }

    /// The raw word of endpoint `id`.
    pub fn word(&self, id: u32) -> u32 {
        // Relaxed: used only by writers, who are serialised by the writer lock.
        self.words
            .get(id as usize)
            .map(|w| w.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Sets the raw word (carrying health over a reload).
    pub fn set_word(&self, id: u32, word: u32) {
        if let Some(w) = self.words.get(id as usize) {
            // Release pairs with the Acquire in `status`.
            w.store(word, Ordering::Release);
        }
    }

    /// Sets the monitor status of endpoint `id`, keeping the other bits.
    pub fn set_status(&self, id: u32, s: MonitorStatus) {
        if let Some(w) = self.words.get(id as usize) {
            let old = w.load(Ordering::Relaxed);
            // Release pairs with the Acquire in `status`.
            w.store((old & !0b11) | s as u32, Ordering::Release);
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
