//! The file watch: the config file and the data files it names are
//! checked four times per `watch_interval`; a change is loaded once the
//! files have stayed exactly so for a whole interval.

use super::{Inner, Source};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// (mtime in ns, size, inode) of one watched file; None if it cannot be read.
pub(crate) type Stamp = Option<(i128, u64, u64)>;

#[derive(Debug, Default)]
pub(crate) struct WatchState {
    pub(crate) stamps: Vec<(PathBuf, Stamp)>,
    pub(crate) last_check: Option<Instant>,
    /// A change not yet loaded, with when it was first seen: it is loaded
    /// once the files have stayed exactly so for a whole `watch_interval`
    /// (a writer may be mid-way; any further change restarts the wait).
    pub(crate) pending: Option<(Vec<(PathBuf, Stamp)>, Instant)>,
}

pub(crate) fn stamp(p: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.size(),
        m.ino(),
    ))
}

impl Inner {
    /// The files a reload reads: the config file (if any) and the data
    /// files the current configuration names.
    pub(crate) fn watched_files(&self, source: &Source) -> Vec<PathBuf> {
        let snap = self.cell.load();
        let mut v = Vec::new();
        if let Source::File(p) = source {
            v.push(p.clone());
        }
        v.extend(snap.settings.latency_table.iter().cloned());
        v.extend(snap.settings.geoip_db.iter().cloned());
        v
    }

    pub(crate) fn stamps(&self, source: &Source) -> Vec<(PathBuf, Stamp)> {
        self.watched_files(source)
            .into_iter()
            .map(|p| {
                let s = stamp(&p);
                (p, s)
            })
            .collect()
    }

    /// Called by the maintenance loop on every turn: four times per
    /// `watch_interval`, compares the watched files' (mtime, size, inode)
    /// with what the last reload saw. A change is loaded once the files have
    /// stayed exactly so for a whole `watch_interval` since it was first
    /// seen, so a writer that pauses for less than that is never read
    /// half-way (in-place writes and write-then-rename alike).
    pub(crate) fn watch_tick(&self) {
        let interval = self.cell.load().settings.watch_interval;
        if interval.is_zero() {
            return;
        }
        let now = Instant::now();
        let cadence = (interval / 4).max(Duration::from_millis(10));
        {
            let Ok(mut w) = self.watch.lock() else { return };
            if w.last_check
                .is_some_and(|t| now.duration_since(t) < cadence)
            {
                return;
            }
            w.last_check = Some(now);
        }
        let current = {
            let source = self.writer.lock();
            self.stamps(&source)
        };
        let due = {
            let Ok(mut w) = self.watch.lock() else { return };
            if w.stamps == current {
                w.pending = None;
                false
            } else {
                match &w.pending {
                    Some((seen, since)) if *seen == current => {
                        now.duration_since(*since) >= interval
                    }
                    _ => {
                        w.pending = Some((current, now));
                        false
                    }
                }
            }
        };
        if due {
            let _ = self.reload("file changed");
        }
    }
}
