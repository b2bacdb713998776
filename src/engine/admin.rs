//! The operator's overrides, as the engine applies them: two layers kept
//! apart by endpoint name, off the query path, and combined into the health
//! words of the current snapshot (and of every new snapshot before its swap).
//!
//! - the **API layer**: `Engine::set_admin_state` / `tm_engine_set_admin_state`
//!   (an admin state per endpoint, until set back to `None`);
//! - the **file layer**: the admin-state file (`[engine] admin_state`,
//!   [`crate::admin_file`]): an admin state and a forced monitor state per
//!   endpoint, by `AdminFile::resolve`.
//!
//! Precedence (docs/OPERATIONS.md, "The admin-state file"): the admin state
//! is the API layer's while it sets one, else the file's, else none (the
//! config's `enabled`); the monitor state is the file's `up`/`down` if any,
//! else the verdict of the probes or `set_monitor_status` (kept in the word
//! underneath, see `health`).
//!
//! The file is checked with the config, four times per `watch_interval`,
//! and a change is loaded once two checks in a row have seen the file the
//! same (so within half an interval, the issue's "within one watch
//! interval", where the config waits a whole interval): the file is small,
//! `trafficmgr drain` and its kin replace it atomically, and a writer that
//! pauses for less than a quarter interval is still never read half-way. It
//! is applied without a reload. A file that cannot be read or parsed changes nothing: the
//! previous entries stay, the error is logged once per change of the file,
//! counted, and shown in the status report.

use super::Inner;
use super::reload::now_unix;
use super::watch::{Stamp, stamp};
use crate::admin_file::{self, AdminFile, Setting};
use crate::config::ConfigError;
use crate::health::{ADMIN_BITS, AdminState, FORCED_BITS, Forced};
use crate::log::LogLevel;
use crate::snapshot::Snapshot;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Keys that match no endpoint logged one by one when a file is applied;
/// beyond, one line gives their number.
const MAX_UNMATCHED_LOGGED: usize = 10;

/// Both layers. Locked only while the engine's writer lock is held, or
/// alone (never the other way round).
#[derive(Debug, Default)]
pub(crate) struct AdminLayers {
    /// API overrides: profile full name → endpoint name → state (never `None`).
    api: HashMap<Box<str>, HashMap<Box<str>, AdminState>>,
    /// The admin-state file.
    file: FileLayer,
}

/// The admin-state file as last loaded, and the watch's view of it.
#[derive(Debug, Default)]
struct FileLayer {
    /// `[engine] admin_state` of the current configuration.
    path: Option<PathBuf>,
    /// The last file that loaded (a broken one does not replace it).
    file: AdminFile,
    /// When it loaded (Unix seconds).
    loaded_at: Option<u64>,
    /// Why the file as it is now is not applied, with when.
    error: Option<(String, u64)>,
    /// Files that failed to load, since the engine started.
    errors: u64,
    /// Keys of `file` that match no endpoint of the current snapshot.
    unmatched: Vec<String>,
    /// (mtime, size, inode) of the file when last read, and whether it was.
    stamp: Stamp,
    read: bool,
    /// A change seen but not yet loaded, with when it was first seen.
    pending: Option<(Stamp, Instant)>,
    last_check: Option<Instant>,
}

/// What the status report shows of the layers.
#[derive(Debug, Default, Clone)]
pub(crate) struct AdminReport {
    pub(crate) path: Option<String>,
    pub(crate) loaded_at: Option<u64>,
    pub(crate) entries: usize,
    pub(crate) error: Option<String>,
    pub(crate) error_at: Option<u64>,
    pub(crate) errors: u64,
    pub(crate) unmatched: Vec<String>,
    /// (profile full name, endpoint) of every API override.
    pub(crate) api: Vec<(String, String)>,
}

impl AdminReport {
    /// Whether endpoint `endpoint` of profile `fqdn` has an API override.
    pub(crate) fn has_api_override(&self, fqdn: &str, endpoint: &str) -> bool {
        self.api.iter().any(|(p, e)| p == fqdn && e == endpoint)
    }
}

/// A profile's name as written in the config: its full name without the zone.
fn short_name(snap: &Snapshot, profile: u32) -> (&str, &str) {
    let Some(p) = snap.profiles.get(profile as usize) else {
        return ("", "");
    };
    let short = snap
        .zones
        .get(p.zone as usize)
        .and_then(|z| p.fqdn.strip_suffix(&*z.name))
        .and_then(|s| s.strip_suffix('.'))
        .unwrap_or(&p.fqdn);
    (short, &p.fqdn)
}

/// Writes the effective states into endpoint `id`'s word of `snap` (only
/// if it changes: the summary masks are not touched for nothing).
fn write_word(snap: &Snapshot, id: u32, admin: AdminState, forced: Forced) {
    let old = snap.health.word(id);
    let new = (old & !(ADMIN_BITS | FORCED_BITS)) | ((admin as u32) << 2) | ((forced as u32) << 4);
    if new != old {
        snap.health.set_word(id, new);
    }
}

impl AdminLayers {
    /// The effective (admin state, forced state) of endpoint `id` of `snap`.
    fn effective(&self, snap: &Snapshot, id: u32) -> (AdminState, Forced) {
        let Some(e) = snap.endpoints.get(id as usize) else {
            return (AdminState::None, Forced::None);
        };
        let (short, fqdn) = short_name(snap, e.profile);
        let r = self.file.file.resolve(short, fqdn, &e.name);
        self.combine(fqdn, &e.name, r)
    }

    /// The effective states of an endpoint from what the file resolves to
    /// for it and the API layer.
    fn combine(&self, fqdn: &str, name: &str, r: admin_file::Resolved) -> (AdminState, Forced) {
        let api = self.api.get(fqdn).and_then(|m| m.get(name)).copied();
        let admin = api.unwrap_or(match r.admin {
            Some(Setting::Drain) => AdminState::Drain,
            Some(Setting::Disabled) => AdminState::Disabled,
            Some(Setting::Enabled) => AdminState::Enabled,
            _ => AdminState::None,
        });
        let forced = match r.monitor {
            Some(Setting::Up) => Forced::Up,
            Some(Setting::Down) => Forced::Down,
            _ => Forced::None,
        };
        (admin, forced)
    }

    /// Writes the effective state of endpoint `id` into `snap`'s word (only
    /// if it changes: the summary masks are not touched for nothing).
    fn write(&self, snap: &Snapshot, id: u32) {
        let (admin, forced) = self.effective(snap, id);
        write_word(snap, id, admin, forced);
    }

    /// Writes every endpoint of `snap`; returns the keys of the file that
    /// match none of them. One pass over the profiles with the file's
    /// [`admin_file::Matcher`]: keys without globs are looked up, keys
    /// with globs tried per profile and then against its endpoints.
    fn apply(&self, snap: &Snapshot) -> Vec<String> {
        let entries = &self.file.file.entries;
        let m = self.file.file.matcher();
        let mut matched = vec![false; entries.len()];
        let mut done = vec![false; snap.endpoints.len()];
        for (pi, p) in snap.profiles.iter().enumerate() {
            let (short, fqdn) = short_name(snap, pi as u32);
            let pm = m.profile(short, fqdn);
            for id in p.endpoint_ids() {
                let Some(e) = snap.endpoints.get(id as usize) else {
                    continue;
                };
                let r = pm.resolve(&e.name, &mut matched);
                let (admin, forced) = self.combine(fqdn, &e.name, r);
                write_word(snap, id, admin, forced);
                if let Some(d) = done.get_mut(id as usize) {
                    *d = true;
                }
            }
        }
        // Endpoints no profile lists (none in a consistent snapshot).
        for (id, d) in done.iter().enumerate() {
            if !d {
                self.write(snap, id as u32);
            }
        }
        entries
            .iter()
            .zip(matched)
            .filter(|(_, m)| !m)
            .map(|(k, _)| k.pattern.clone())
            .collect()
    }

    /// Drops the API overrides of endpoints `snap` does not have (as the
    /// health words did before the layers were kept apart: an override is
    /// kept across reloads by endpoint identity).
    fn prune(&mut self, snap: &Snapshot) {
        self.api.retain(|fqdn, m| {
            m.retain(|name, _| snap.find_endpoint(fqdn, name).is_some());
            !m.is_empty()
        });
    }
}

impl Inner {
    /// Takes the result of reading the file (`stamp` as it was before the
    /// read): a good file replaces the entries, a bad one keeps them. Logs
    /// what happened (once per read, that is once per change of the file).
    fn take_file(
        &self,
        l: &mut AdminLayers,
        path: &Path,
        result: Result<AdminFile, ConfigError>,
        stamp: Stamp,
    ) {
        l.file.stamp = stamp;
        l.file.read = true;
        l.file.pending = None;
        match result {
            Ok(f) => {
                let msg = if stamp.is_none() {
                    format!(
                        "admin-state file {}: not there, no overrides",
                        path.display()
                    )
                } else {
                    format!(
                        "admin-state file {}: loaded, {} key(s)",
                        path.display(),
                        f.entries.len()
                    )
                };
                self.log(LogLevel::Info, &msg);
                l.file.file = f;
                l.file.loaded_at = Some(now_unix());
                l.file.error = None;
            }
            Err(e) => {
                l.file.errors += 1;
                self.log(
                    LogLevel::Error,
                    &format!("admin-state file not applied; the previous admin state stays: {e}"),
                );
                l.file.error = Some((e.to_string(), now_unix()));
            }
        }
    }

    /// Applies the layers to `snap` and logs the keys that match nothing,
    /// when that list changes.
    fn apply_layers(&self, l: &mut AdminLayers, snap: &Snapshot) {
        let unmatched = l.apply(snap);
        if unmatched != l.file.unmatched {
            let known: std::collections::HashSet<&String> = l.file.unmatched.iter().collect();
            let new: Vec<&String> = unmatched.iter().filter(|k| !known.contains(k)).collect();
            // One line per key, up to a few: a file of thousands of stale
            // keys must not flood the host's log.
            if new.len() > MAX_UNMATCHED_LOGGED {
                let path = l
                    .file
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                self.log(
                    LogLevel::Warn,
                    &format!(
                        "admin-state file {path}: {} more key(s) match no endpoint (the status report lists them all, admin_file.unmatched)",
                        new.len() - MAX_UNMATCHED_LOGGED
                    ),
                );
            }
            for k in new.into_iter().take(MAX_UNMATCHED_LOGGED) {
                let line = l
                    .file
                    .file
                    .entries
                    .iter()
                    .find(|e| &e.pattern == k)
                    .map(|e| e.line)
                    .unwrap_or(0);
                let path = l
                    .file
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                self.log(
                    LogLevel::Warn,
                    &format!("admin-state file {path}:{line}: `{k}` matches no endpoint"),
                );
            }
            l.file.unmatched = unmatched;
        }
    }

    /// At the engine's start, before any query: reads the file the
    /// configuration names and applies it to the first snapshot.
    pub(crate) fn admin_start(&self) {
        let _w = self.writer.lock();
        let snap = self.cell.load_full();
        let mut l = self.admin.lock();
        l.file.path = snap.settings.admin_state.clone();
        if let Some(p) = l.file.path.clone() {
            let st = stamp(&p);
            self.take_file(&mut l, &p, AdminFile::read(&p), st);
        }
        self.apply_layers(&mut l, &snap);
    }

    /// During a reload (writer lock held), before `next` is swapped in:
    /// brings the file layer to `next`'s `admin_state` (reading the file if
    /// the path changed, or if the watch is off, so an explicit reload
    /// picks up an edit), drops API overrides of endpoints that are gone,
    /// and writes the layers into `next`'s health words, so its first
    /// query sees them.
    pub(crate) fn admin_into_new(&self, next: &Snapshot) {
        let mut l = self.admin.lock();
        let want = next.settings.admin_state.clone();
        if want != l.file.path {
            l.file.path = want.clone();
            l.file.pending = None;
            l.file.read = false;
            if want.is_none() {
                l.file.file = AdminFile::default();
                l.file.error = None;
                l.file.loaded_at = None;
            }
        }
        if let Some(p) = want {
            let st = stamp(&p);
            let stale =
                !l.file.read || (next.settings.watch_interval.is_zero() && st != l.file.stamp);
            if stale {
                self.take_file(&mut l, &p, AdminFile::read(&p), st);
            }
        }
        l.prune(next);
        self.apply_layers(&mut l, next);
    }

    /// Called by the maintenance loop every turn: the admin-state file's
    /// watch, on the config watch's cadence; a change seen the same by two
    /// checks in a row is loaded and applied to the current snapshot
    /// without a reload.
    pub(crate) fn admin_tick(&self) {
        let interval = self.cell.load().settings.watch_interval;
        if interval.is_zero() {
            return;
        }
        let now = Instant::now();
        let cadence = (interval / 4).max(Duration::from_millis(10));
        let path = {
            let mut l = self.admin.lock();
            if l.file
                .last_check
                .is_some_and(|t| now.duration_since(t) < cadence)
            {
                return;
            }
            l.file.last_check = Some(now);
            match l.file.path.clone() {
                Some(p) => p,
                None => return,
            }
        };
        let current = stamp(&path);
        let due = {
            let mut l = self.admin.lock();
            if l.file.path.as_deref() != Some(path.as_path()) {
                return; // a reload switched files meanwhile
            }
            if l.file.read && current == l.file.stamp {
                l.file.pending = None;
                false
            } else {
                match l.file.pending {
                    // Unchanged over one check: loaded (see the module doc).
                    Some((seen, since)) if seen == current => now.duration_since(since) >= cadence,
                    _ => {
                        l.file.pending = Some((current, now));
                        false
                    }
                }
            }
        };
        if !due {
            return;
        }
        // Read off every lock; the stamp taken before the read is what the
        // watch compares with next, so a change made meanwhile is seen.
        let result = AdminFile::read(&path);
        let _w = self.writer.lock();
        let snap = self.cell.load_full();
        let mut l = self.admin.lock();
        if l.file.path.as_deref() != Some(path.as_path()) {
            return;
        }
        self.take_file(&mut l, &path, result, current);
        self.apply_layers(&mut l, &snap);
    }

    /// The API layer: sets (or with `None` clears) the override of one
    /// endpoint and writes its effective state at once.
    pub(crate) fn set_api_admin(
        &self,
        profile: &str,
        endpoint: &str,
        state: AdminState,
    ) -> Result<(), String> {
        let _w = self.writer.lock();
        let snap = self.cell.load_full();
        let id = snap
            .find_endpoint(profile, endpoint)
            .ok_or_else(|| format!("no endpoint `{endpoint}` in profile `{profile}`"))?;
        let Some(e) = snap.endpoints.get(id as usize) else {
            return Err(format!("no endpoint `{endpoint}` in profile `{profile}`"));
        };
        let (_, fqdn) = short_name(&snap, e.profile);
        let mut l = self.admin.lock();
        if state == AdminState::None {
            if let Some(m) = l.api.get_mut(fqdn) {
                m.remove(&*e.name);
                if m.is_empty() {
                    l.api.remove(fqdn);
                }
            }
        } else {
            l.api
                .entry(fqdn.into())
                .or_default()
                .insert(e.name.clone(), state);
        }
        l.write(&snap, id);
        Ok(())
    }

    /// What the status report shows of the layers.
    pub(crate) fn admin_report(&self) -> AdminReport {
        let l = self.admin.lock();
        AdminReport {
            path: l.file.path.as_ref().map(|p| p.display().to_string()),
            loaded_at: l.file.loaded_at,
            entries: l.file.file.entries.len(),
            error: l.file.error.as_ref().map(|e| e.0.clone()),
            error_at: l.file.error.as_ref().map(|e| e.1),
            errors: l.file.errors,
            unmatched: l.file.unmatched.clone(),
            api: l
                .api
                .iter()
                .flat_map(|(p, m)| m.keys().map(|e| (p.to_string(), e.to_string())))
                .collect(),
        }
    }
}
