//! Reloads: the one path by which a new configuration becomes current —
//! build and validate a whole snapshot off the query path, carry health
//! over, then swap; a failure changes nothing and is kept for the status.
//! Old snapshots go to the graveyard, reaped by `engine::metrics`.

use super::{Fault, Inner, Source, panic_message};
use crate::config::{self, ConfigError, Origin};
use crate::log::LogLevel;
use crate::snapshot::{Snapshot, SourceInfo, fnv1a};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// Reload counters, shown in the status report.
#[derive(Debug, Default, Clone)]
pub struct ReloadStats {
    /// Successful reloads.
    pub ok: u64,
    /// Failed reloads.
    pub failed: u64,
    /// The last failure's message (file:line:col, key path), cleared by a success.
    pub last_error: Option<String>,
    /// When it failed (Unix seconds).
    pub last_error_at: Option<u64>,
    /// When the last reload was tried (Unix seconds).
    pub last_attempt_at: Option<u64>,
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn build(source: &Source, prev: Option<&Snapshot>) -> Result<Snapshot, ConfigError> {
    let (cfg, text, path) = match source {
        Source::File(p) => {
            let (cfg, text) = config::load_file(p)?;
            (cfg, text, Some(p.clone()))
        }
        Source::Text(t, base) => (
            config::load_str(t, &Origin::string(base.as_deref()))?,
            t.clone(),
            None,
        ),
    };
    let info = SourceInfo {
        path,
        hash: fnv1a(text.as_bytes()),
        loaded_at: now_unix(),
    };
    Snapshot::compile(&cfg, info, prev)
}

impl Inner {
    /// The one reload path (explicit calls and the file watch): build and
    /// validate a whole new snapshot off the query path, then swap it in.
    pub(crate) fn reload(&self, why: &str) -> Result<(), ConfigError> {
        let source = self.writer.lock();
        // The watch's view of the files as they are before they are read: a
        // change made while the build reads them is seen by the next check.
        let before = self.stamps(&source);
        let cur = self.cell.load_full();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.fault_point(Fault::ReloadPanic);
            build(&source, Some(&cur))
        }))
        .unwrap_or_else(|p| {
            Err(ConfigError::general(format!(
                "internal error while loading: {}",
                panic_message(&*p)
            )))
        });
        drop(cur);
        let now = now_unix();
        let outcome = match result {
            Ok(next) => {
                next.warnings().for_each(|w| self.log(LogLevel::Warn, w));
                // Not ready until the maintenance loop has looked at the new
                // targets (wait_ready must not see the old answer).
                if let Ok(mut b) = self.board.lock() {
                    b.ready = false;
                }
                // The admin layers into the new words before the swap: a new
                // endpoint that a key of the admin-state file matches is
                // drained (or forced) from its first query.
                self.admin_into_new(&next);
                {
                    // Swapped and buried under the graveyard lock, so a
                    // scrape never misses the old snapshot's counts
                    // (engine::metrics).
                    let mut g = self.graveyard.lock().unwrap_or_else(|e| e.into_inner());
                    let old = self.cell.swap(Arc::new(next));
                    g.push(old);
                }
                // Release pairs with the Acquire in `Inner::generation`.
                self.generation.fetch_add(1, Ordering::Release);
                if let Ok(mut r) = self.reloads.lock() {
                    r.ok += 1;
                    r.last_error = None;
                    r.last_error_at = None;
                    r.last_attempt_at = Some(now);
                }
                self.log(LogLevel::Info, &format!("configuration reloaded ({why})"));
                Ok(())
            }
            Err(e) => {
                if let Ok(mut r) = self.reloads.lock() {
                    r.failed += 1;
                    r.last_error = Some(e.to_string());
                    r.last_error_at = Some(now);
                    r.last_attempt_at = Some(now);
                }
                self.log(
                    LogLevel::Error,
                    &format!(
                        "reload failed ({why}); the previous configuration keeps serving: {e}"
                    ),
                );
                Err(e)
            }
        };
        // What the watch compares against from now on: each file as it was
        // before the build read it (files the new config names for the
        // first time, as they are now).
        let stamps = self
            .watched_files(&source)
            .into_iter()
            .map(|p| match before.iter().find(|(q, _)| q == &p) {
                Some((_, st)) => (p, *st),
                None => {
                    let st = super::watch::stamp(&p);
                    (p, st)
                }
            })
            .collect();
        drop(source);
        if let Ok(mut w) = self.watch.lock() {
            w.stamps = stamps;
            w.pending = None;
        }
        outcome
    }

    /// Reload counters.
    pub(crate) fn reload_stats(&self) -> ReloadStats {
        self.reloads.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
