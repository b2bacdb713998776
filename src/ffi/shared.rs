//! Engines shared by path within one process, for hosts whose instances
//! cannot hand each other a pointer: dnsdist's `LuaFFIPerThreadAction` runs
//! one Lua state per thread, and each state opens the engine by its config
//! path; BIND's DLZ driver creates a new instance on every `rndc reload`
//! before it destroys the old one (`bind_dlz`). The first open creates the
//! engine; later opens of the same file get the same engine; it is freed
//! (threads joined) when the last holder releases it. This registry is the
//! library's one piece of process-wide state, and it is empty unless it is
//! used.
//!
//! The key is the file's canonical path (`realpath`: `./x.toml`, a symlink
//! to it and its absolute path are one engine); a path that cannot be
//! resolved (a missing file) is its own key, and its open fails anyway. The
//! engine reads the file by the path its first opener gave.
//!
//! Logging: an engine built here logs to the newest live holder's log hook
//! ([`open`]'s `log`); a holder's hook is detached before its release
//! returns, so it is never called afterwards.
//!
//! Its lock is held only to look entries up and change them: an engine is
//! built (config and data files read, threads started) and freed (threads
//! joined) outside it, so one slow open or release never holds up another
//! path's. Opens of a path that is being built wait for that build.

use super::handle::{ErrBuf, Out, engine_of, free_handle, into_live_handle, str_arg, tm_engine};
use super::{entry, install_panic_hook, tm_result};
use crate::config::ConfigError;
use crate::engine::{Engine, LogFn, LogLevel};
use std::collections::HashMap;
use std::ffi::c_char;
use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The log hooks of one shared engine's holders; the engine's own hook
/// writes to the newest. A hook is called under this lock, so
/// [`LogRelay::detach`] waits for a call in progress: once it returns, that
/// hook is never called again.
#[derive(Default)]
struct LogRelay {
    sinks: Mutex<(u64, Vec<(u64, LogFn)>)>,
}

impl LogRelay {
    fn lock(&self) -> MutexGuard<'_, (u64, Vec<(u64, LogFn)>)> {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, level: LogLevel, msg: &str) {
        let g = self.lock();
        if let Some((_, f)) = g.1.last() {
            f(level, msg);
        }
    }

    fn attach(&self, f: LogFn) -> u64 {
        let mut g = self.lock();
        g.0 += 1;
        let id = g.0;
        g.1.push((id, f));
        id
    }

    fn detach(&self, id: u64) {
        self.lock().1.retain(|(i, _)| *i != id);
    }
}

enum Entry {
    /// One caller is building the engine, outside the lock.
    Loading,
    /// Built and shared.
    Ready {
        engine: NonNull<tm_engine>,
        relay: Arc<LogRelay>,
        holders: usize,
    },
}
// SAFETY: the engine is Sync; it is freed only after it has left the
// registry (under its lock), by the one caller that removed it.
unsafe impl Send for Entry {}

type Registry = Option<HashMap<String, Entry>>;

static SHARED: Mutex<Registry> = Mutex::new(None);
/// Signalled whenever a build ends (ready or failed).
static BUILT: Condvar = Condvar::new();

fn registry() -> MutexGuard<'static, Registry> {
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registry key of a config path: its canonical form, or the path as
/// given when it cannot be resolved.
fn key_of(path: &str) -> String {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
        .unwrap_or_else(|| path.to_string())
}

/// Removes a path's `Loading` entry unless the build finished (also when it
/// panicked), and wakes whoever waits for it.
struct Building<'a> {
    key: &'a str,
    done: bool,
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut g = registry();
            if let Some(map) = g.as_mut()
                && matches!(map.get(self.key), Some(Entry::Loading))
            {
                map.remove(self.key);
                if map.is_empty() {
                    *g = None;
                }
            }
        }
        BUILT.notify_all();
    }
}

/// Whether [`open`] built the engine or joined a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// This open read the file and started the engine.
    Built,
    /// The engine was already running (opened by another holder); the file
    /// was not read again.
    Joined,
}

/// One hold on a shared engine, from [`open`]. Dropping it releases the
/// hold (the last one stops and frees the engine) and then detaches its log
/// hook: once the drop returns, neither the engine nor the hook is used on
/// its behalf.
pub(crate) struct SharedEngine {
    handle: NonNull<tm_engine>,
    relay: Arc<LogRelay>,
    sink: Option<u64>,
}

// SAFETY: the engine is Sync and stays alive while this hold exists (the
// registry frees it only after the last release); the relay is Sync.
unsafe impl Send for SharedEngine {}
// SAFETY: as above.
unsafe impl Sync for SharedEngine {}

impl SharedEngine {
    /// The engine.
    pub(crate) fn engine(&self) -> &Engine {
        // SAFETY: made by into_handle and held: not freed before our release.
        unsafe { engine_of(self.handle) }
    }

    /// Gives up the hold without releasing it, for a C caller that will
    /// release it with `tm_engine_release_shared`. Its log hook (if any) is
    /// detached now.
    fn into_raw(self) -> *mut tm_engine {
        let this = std::mem::ManuallyDrop::new(self);
        if let Some(id) = this.sink {
            this.relay.detach(id);
        }
        // SAFETY: read once out of a ManuallyDrop that is never used again.
        drop(unsafe { std::ptr::read(&this.relay) });
        this.handle.as_ptr()
    }
}

impl SharedEngine {
    /// Releases the hold now (as dropping it does) and says how many
    /// holders the engine has left: 0 when this was the last, and the
    /// engine is stopped, its threads joined, and freed.
    pub(crate) fn close(self) -> usize {
        let mut this = std::mem::ManuallyDrop::new(self);
        let left = this.finish();
        // SAFETY: read once out of a ManuallyDrop that is never used again.
        drop(unsafe { std::ptr::read(&this.relay) });
        left
    }

    fn finish(&mut self) -> usize {
        // Released first, so that a last release's stop still logs through
        // this hook; detached before the caller returns.
        let left = release(self.handle.as_ptr()).unwrap_or(0);
        if let Some(id) = self.sink {
            self.relay.detach(id);
        }
        left
    }
}

impl Drop for SharedEngine {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Opens the engine for the config file at `path`, shared by every holder
/// in the process that opens the same file (by canonical path): the first
/// open builds it (with `log` as its log hook, through the relay) and
/// starts its threads; a later one joins it and adds `log` as the newest
/// hook. On failure nothing is held.
pub(crate) fn open(path: &str, log: Option<LogFn>) -> Result<(SharedEngine, Opened), ConfigError> {
    let key = key_of(path);
    let mut guard = registry();
    loop {
        let map = guard.get_or_insert_with(HashMap::new);
        match map.get_mut(&key) {
            Some(Entry::Ready {
                engine,
                relay,
                holders,
            }) => {
                *holders += 1;
                let (handle, relay) = (*engine, relay.clone());
                drop(guard);
                let sink = log.map(|f| relay.attach(f));
                return Ok((
                    SharedEngine {
                        handle,
                        relay,
                        sink,
                    },
                    Opened::Joined,
                ));
            }
            // Another caller builds this one: wait for it.
            Some(Entry::Loading) => {
                guard = BUILT.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            None => {
                map.insert(key.clone(), Entry::Loading);
                break;
            }
        }
    }
    drop(guard);
    // Built outside the lock: reading the files and starting the threads
    // may take long, and must not hold up other paths.
    let mut building = Building {
        key: &key,
        done: false,
    };
    let relay = Arc::new(LogRelay::default());
    let sink = log.map(|f| relay.attach(f));
    let hook: LogFn = {
        let relay = relay.clone();
        Box::new(move |level: LogLevel, msg: &str| relay.emit(level, msg))
    };
    let engine = Engine::from_file_with_log(path, Some(hook))?;
    let handle = into_live_handle(engine);
    let mut guard = registry();
    guard.get_or_insert_with(HashMap::new).insert(
        key.clone(),
        Entry::Ready {
            engine: handle,
            relay: relay.clone(),
            holders: 1,
        },
    );
    building.done = true;
    drop(guard);
    drop(building);
    Ok((
        SharedEngine {
            handle,
            relay,
            sink,
        },
        Opened::Built,
    ))
}

/// Releases one hold on the shared engine `engine`; the last release stops
/// and joins its threads and frees it (outside the registry's lock).
/// Returns the holders left (0: freed); `NotFound` when `engine` is not a
/// shared engine.
fn release(engine: *const tm_engine) -> Result<usize, tm_result> {
    let mut guard = registry();
    let map = guard.as_mut().ok_or(tm_result::NotFound)?;
    let key = map
        .iter()
        .find(|(_, v)| matches!(v, Entry::Ready { engine: e, .. } if std::ptr::eq(e.as_ptr(), engine)))
        .map(|(k, _)| k.clone())
        .ok_or(tm_result::NotFound)?;
    let left = match map.get_mut(&key) {
        Some(Entry::Ready { holders, .. }) => {
            *holders -= 1;
            Some(*holders)
        }
        _ => None,
    };
    let unlinked = if left == Some(0) {
        map.remove(&key)
    } else {
        None
    };
    if map.is_empty() {
        // Nothing shared any more: free the registry itself too.
        *guard = None;
    }
    // Free outside the lock: stopping the engine joins its threads, which
    // may take a while, and must not hold up other engines' opens and
    // releases.
    drop(guard);
    if let Some(Entry::Ready { engine, .. }) = unlinked {
        // SAFETY: made by into_handle in `open`; no holder is left and the
        // registry no longer hands it out.
        unsafe { free_handle(engine.as_ptr()) };
    }
    Ok(left.unwrap_or(0))
}

/// Opens the engine for the config file at `config_path`, shared by every
/// caller in the process that opens the same file (the first call creates
/// it and starts its threads; later calls get the same engine and do not
/// read the file again). The file is recognised by its canonical path
/// (`realpath`), so a relative path, a symlink and the absolute path of one
/// file are one engine. BIND's DLZ instances of a file share its engine
/// with these callers.
///
/// **Ownership:** each successful call must be matched by one
/// `tm_engine_release_shared`; never pass a shared engine to `tm_engine_free`.
/// On failure `*engine_out` is untouched and `errbuf` says why.
/// **NULL:** `config_path` and `engine_out` must not be NULL; `errbuf` may be.
/// **Threads:** safe from any thread.
/// **Lifetime:** `*engine_out` stays valid until the caller's matching
/// `tm_engine_release_shared` (other holders' releases do not end it).
/// **Returns:** as `tm_engine_new`.
///
/// # Safety
/// `config_path` points at `config_path_len` readable bytes; `errbuf` is
/// NULL or `errbuf_len` writable bytes; `engine_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_open_shared(
    config_path: *const c_char,
    config_path_len: usize,
    errbuf: *mut c_char,
    errbuf_len: usize,
    engine_out: *mut *const tm_engine,
) -> tm_result {
    entry(|| {
        install_panic_hook();
        // SAFETY: the caller's pointers, per this function's contract.
        let (out, path, errbuf) = unsafe {
            (
                Out::new(engine_out)?,
                str_arg(config_path, config_path_len)?,
                ErrBuf::new(errbuf, errbuf_len),
            )
        };
        let (hold, _) = open(path, None).map_err(|e| errbuf.config_invalid(&e))?;
        out.write(hold.into_raw());
        Ok(())
    })
}

/// Releases one hold on a shared engine; the last release stops and joins
/// its threads and frees it.
///
/// **Ownership:** gives back the hold one `tm_engine_open_shared` gave.
/// **NULL:** calling with NULL is fine.
/// **Threads:** safe from any thread; the caller must not use the engine
/// afterwards, and no call of the caller's on it may still be running.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NOT_FOUND` (not a shared engine), `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or any pointer (it is only compared with the registry's
/// handles, never dereferenced unless found there).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_release_shared(engine: *const tm_engine) -> tm_result {
    entry(|| {
        if engine.is_null() {
            return Ok(());
        }
        release(engine).map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Fault;
    use std::time::{Duration, Instant};

    fn config(dir: &std::path::Path, name: &str) -> String {
        let p = dir.join(name);
        std::fs::write(
            &p,
            "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n",
        )
        .unwrap();
        p.display().to_string()
    }

    fn open(path: &str) -> *const tm_engine {
        let mut out: *const tm_engine = std::ptr::null();
        let mut err = [0 as c_char; 256];
        // SAFETY: valid pointers and lengths.
        let r = unsafe {
            tm_engine_open_shared(
                path.as_ptr().cast(),
                path.len(),
                err.as_mut_ptr(),
                256,
                &mut out,
            )
        };
        assert_eq!(r, tm_result::Ok);
        out
    }

    /// `./x.toml`, a symlink to it and `dir/sub/../x.toml` are one file:
    /// one engine (the key is the canonical path); a second open joins it
    /// and does not build another.
    #[test]
    fn one_engine_per_file_whatever_the_spelling() {
        let dir = std::env::temp_dir().join(format!("tm-registry-key-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let real = config(&dir, "x.toml");
        let link = dir.join("link.toml");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let dotted = dir.join("sub/../x.toml").display().to_string();
        let (a, how_a) = open_rust(&real, None);
        let (b, how_b) = open_rust(link.to_str().unwrap(), None);
        let (c, how_c) = open_rust(&dotted, None);
        assert_eq!(how_a, Opened::Built);
        assert_eq!((how_b, how_c), (Opened::Joined, Opened::Joined));
        assert!(std::ptr::eq(a.engine(), b.engine()));
        assert!(std::ptr::eq(a.engine(), c.engine()));
        // The C API joins the same engine too.
        let h = open(&real);
        assert!(std::ptr::eq(
            // SAFETY: a live handle from the registry.
            unsafe { engine_of(NonNull::new(h.cast_mut()).unwrap()) },
            a.engine()
        ));
        // SAFETY: the C hold taken above.
        assert_eq!(unsafe { tm_engine_release_shared(h) }, tm_result::Ok);
        // Each release says how many holders are left; the last frees it.
        assert_eq!(c.close(), 2);
        assert_eq!(b.close(), 1);
        assert_eq!(a.close(), 0);
        assert!(
            registry()
                .as_ref()
                .is_none_or(|m| !m.contains_key(&key_of(&real)))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn open_rust(path: &str, log: Option<LogFn>) -> (SharedEngine, Opened) {
        match super::open(path, log) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    /// The shared engine logs through the newest live holder's hook; once a
    /// holder is dropped its hook is never called again (BIND: a destroyed
    /// instance's `log` must not be used), and the engine's lines go to the
    /// remaining holder's.
    #[test]
    fn a_released_holders_log_hook_is_never_called_again() {
        use std::sync::Mutex as M;
        let dir = std::env::temp_dir().join(format!("tm-registry-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = config(&dir, "x.toml");
        let lines = Arc::new(M::new(Vec::<(char, String)>::new()));
        let hook = |who: char| -> LogFn {
            let lines = lines.clone();
            Box::new(move |_l: LogLevel, m: &str| lines.lock().unwrap().push((who, m.to_string())))
        };
        let (a, _) = open_rust(&path, Some(hook('a')));
        assert!(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|(w, m)| *w == 'a' && m.contains("loaded")),
            "the first holder's hook gets the engine's start-up lines"
        );
        let (b, how) = open_rust(&path, Some(hook('b')));
        assert_eq!(how, Opened::Joined);
        lines.lock().unwrap().clear();
        a.engine().reload().unwrap();
        assert_eq!(
            lines
                .lock()
                .unwrap()
                .iter()
                .map(|(w, _)| *w)
                .collect::<Vec<_>>(),
            vec!['b'],
            "the newest holder's hook, once"
        );
        drop(b);
        lines.lock().unwrap().clear();
        a.engine().reload().unwrap();
        let seen = lines.lock().unwrap().clone();
        assert!(seen.iter().all(|(w, _)| *w == 'a'), "{seen:?}");
        assert!(!seen.is_empty());
        drop(a);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Defect 12: releasing the last hold on an engine joined its threads
    /// under the process-wide lock, so one slow stop (a stuck probe) held up
    /// every other open and release. Engine A's stop is made to take 2 s;
    /// meanwhile engine B is opened and released at once.
    #[test]
    fn a_slow_free_does_not_block_other_engines() {
        let dir = std::env::temp_dir().join(format!("tm-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (pa, pb) = (config(&dir, "a.toml"), config(&dir, "b.toml"));
        let a = open(&pa) as usize;
        // SAFETY: a live engine handle from the registry.
        unsafe { &*(a as *const tm_engine) }
            .engine()
            .inject_fault(Fault::SlowStop);
        let releaser = std::thread::spawn(move || {
            let t = Instant::now();
            // SAFETY: the one hold on A.
            let r = unsafe { tm_engine_release_shared(a as *const tm_engine) };
            assert_eq!(r, tm_result::Ok);
            t.elapsed()
        });
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let b = open(&pb);
        // SAFETY: the one hold on B.
        assert_eq!(unsafe { tm_engine_release_shared(b) }, tm_result::Ok);
        let took = t.elapsed();
        let slow = releaser.join().unwrap();
        assert!(slow >= Duration::from_secs(2), "the fault did not fire");
        assert!(
            took < Duration::from_secs(1),
            "open + release of B waited for A's stop: {took:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Found by the hostile review (a sibling of the defect above): an open
    /// built its engine under the registry lock, so one slow open (a big
    /// data file) held up every open and release of every other path. Here
    /// A's open reads a 400,000-row latency table; B, opened meanwhile,
    /// does not wait for it.
    #[test]
    fn a_slow_open_does_not_block_other_engines() {
        use std::fmt::Write as _;
        let dir = std::env::temp_dir().join(format!("tm-registry-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut csv = String::from("prefix,eastus\n");
        for i in 0..400_000u32 {
            let _ = writeln!(
                csv,
                "{}.{}.{}.0/24,{}",
                1 + i / 65536,
                (i / 256) % 256,
                i % 256,
                i % 300
            );
        }
        std::fs::write(dir.join("big.csv"), csv).unwrap();
        let pa = dir.join("a.toml");
        std::fs::write(
            &pa,
            "[engine]\nlatency_table = \"big.csv\"\n\
             [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n",
        )
        .unwrap();
        let pa = pa.display().to_string();
        let pb = config(&dir, "b.toml");
        let opener = std::thread::spawn(move || {
            let t = Instant::now();
            let a = open(&pa) as usize;
            (t.elapsed(), a)
        });
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        let b = open(&pb);
        // SAFETY: the one hold on B.
        let r = unsafe { tm_engine_release_shared(b) };
        assert_eq!(r, tm_result::Ok);
        let took = t.elapsed();
        let (slow, a) = opener.join().unwrap();
        // SAFETY: the one hold on A.
        let r = unsafe { tm_engine_release_shared(a as *const tm_engine) };
        assert_eq!(r, tm_result::Ok);
        assert!(
            slow >= Duration::from_millis(300),
            "A's open was not slow: {slow:?}"
        );
        assert!(
            took * 3 < slow,
            "B waited for A's open: {took:?} of {slow:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
