//! Engines shared by path within one process, for hosts whose instances
//! cannot hand each other a pointer: dnsdist's `LuaFFIPerThreadAction` runs
//! one Lua state per thread, and each state opens the engine by its config
//! path; BIND's DLZ driver (`bind_dlz`) and Knot's module create a reload's
//! new instances before they destroy the old ones. The first open creates
//! the engine; later opens of the same file get the same engine; it is
//! freed (threads joined) when the last holder releases it. This registry
//! is the library's one piece of process-wide state, and it is empty unless
//! it is used.
//!
//! The key is the file's canonical path (`realpath`: `./x.toml`, a symlink
//! to it and its absolute path are one engine); a path that cannot be
//! resolved (a missing file) is its own key, and its open fails anyway. The
//! engine reads the file by the path its first opener gave.
//!
//! Logging: an engine built here writes each line to the newest log hook
//! among its holders' ([`Sinks`]); a holder's hook is taken out by its
//! release, before the release returns, so it is never called afterwards.
//!
//! The Rust-level [`open`] / [`SharedEngine`] (dropping it releases) are
//! what `bind_dlz` uses; the C calls below are made of the same parts.
//!
//! Its lock is held only to look entries up and change them: an engine is
//! built (config and data files read, threads started) and freed (threads
//! joined) outside it, so one slow open or release never holds up another
//! path's. Opens of a path that is being built wait for that build.

use super::handle::{ErrBuf, Out, engine_of, free_handle, into_live_handle, str_arg, tm_engine};
use super::life::{HookKey, host_key, keyed_host_log, tm_host};
use super::{entry, install_panic_hook, tm_result};
use crate::config::ConfigError;
use crate::engine::{Engine, LogFn, LogLevel};
use std::collections::HashMap;
use std::ffi::c_char;
use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

enum Entry {
    /// One caller is building the engine, outside the lock.
    Loading,
    /// Built and shared.
    Ready {
        engine: NonNull<tm_engine>,
        holders: usize,
        sinks: Arc<Sinks>,
    },
}
// SAFETY: the engine is Sync; it is freed only after it has left the
// registry (under its lock), by the one caller that removed it.
unsafe impl Send for Entry {}

/// The log hooks the holders of one shared engine gave, oldest first. Each
/// line goes to the newest; a hook is called under this lock only, so once
/// its holder's release has taken it out, it is never called again.
///
/// A C host's hook is keyed by its function and userdata ([`HookKey`]); a
/// Rust holder's by `(0, n)`, `n` counted here (no function lives at 0).
#[derive(Default)]
struct Sinks(Mutex<(usize, Vec<(HookKey, LogFn)>)>);

impl Sinks {
    fn lock(&self) -> MutexGuard<'_, (usize, Vec<(HookKey, LogFn)>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, level: LogLevel, msg: &str) {
        if let Some((_, log)) = self.lock().1.last() {
            log(level, msg);
        }
    }

    fn push(&self, hook: (HookKey, LogFn)) {
        self.lock().1.push(hook);
    }

    /// Adds a Rust holder's hook under a key of its own.
    fn push_unique(&self, log: LogFn) -> HookKey {
        let mut g = self.lock();
        g.0 += 1;
        let key = (0, g.0);
        g.1.push((key, log));
        key
    }

    /// Takes out the newest hook with this key.
    fn remove(&self, key: HookKey) {
        let mut g = self.lock();
        if let Some(i) = g.1.iter().rposition(|(k, _)| *k == key) {
            drop(g.1.remove(i));
        }
    }

    fn clear(&self) {
        self.lock().1.clear();
    }
}

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

/// One hold on a shared engine, from [`open`]. Dropping it (or
/// [`SharedEngine::close`]) releases the hold, which takes its log hook
/// out; the last release stops and frees the engine, its last lines still
/// reaching this hook.
pub(crate) struct SharedEngine {
    handle: NonNull<tm_engine>,
    hook: Option<HookKey>,
    released: bool,
}

// SAFETY: the engine is Sync and stays alive while this hold exists (the
// registry frees it only after the last release).
unsafe impl Send for SharedEngine {}
// SAFETY: as above.
unsafe impl Sync for SharedEngine {}

impl SharedEngine {
    /// The engine.
    pub(crate) fn engine(&self) -> &Engine {
        // SAFETY: made by into_live_handle and held: not freed before our release.
        unsafe { engine_of(self.handle) }
    }

    /// Releases the hold now (as dropping it does) and says how many
    /// holders the engine has left: 0 when this was the last, and the
    /// engine is stopped, its threads joined, and freed.
    pub(crate) fn close(mut self) -> usize {
        self.released = true;
        release(self.handle.as_ptr(), self.hook).unwrap_or(0)
    }

    /// Gives up the hold without releasing it, for a C caller that will
    /// release it (and its hook) with `tm_engine_release_shared[_host]`.
    fn into_raw(mut self) -> *const tm_engine {
        self.released = true;
        self.handle.as_ptr()
    }
}

impl Drop for SharedEngine {
    fn drop(&mut self) {
        if !self.released {
            let _ = release(self.handle.as_ptr(), self.hook);
        }
    }
}

/// Opens the engine for the config file at `path`, shared by every holder
/// in the process that opens the same file (by canonical path): the first
/// open builds it and starts its threads; a later one joins it. `log` (a
/// Rust hook) becomes the newest of the engine's hooks for as long as the
/// hold lasts. On failure nothing is held.
pub(crate) fn open(path: &str, log: Option<LogFn>) -> Result<(SharedEngine, Opened), ConfigError> {
    open_keyed(path, log.map(Hook::Unique))
}

/// A holder's log hook: a C host's (keyed by function and userdata) or a
/// Rust holder's (keyed by the sinks).
enum Hook {
    Host(HookKey, LogFn),
    Unique(LogFn),
}

impl Hook {
    fn attach(self, sinks: &Sinks) -> HookKey {
        match self {
            Hook::Host(k, f) => {
                sinks.push((k, f));
                k
            }
            Hook::Unique(f) => sinks.push_unique(f),
        }
    }
}

fn open_keyed(path: &str, hook: Option<Hook>) -> Result<(SharedEngine, Opened), ConfigError> {
    let key = key_of(path);
    let mut guard = registry();
    loop {
        let map = guard.get_or_insert_with(HashMap::new);
        match map.get_mut(&key) {
            Some(Entry::Ready {
                engine,
                holders,
                sinks,
            }) => {
                *holders += 1;
                // Attached under the registry lock, as the release takes
                // it out: a racing last release cannot miss it.
                let hook = hook.map(|h| h.attach(sinks));
                let held = SharedEngine {
                    handle: *engine,
                    hook,
                    released: false,
                };
                return Ok((held, Opened::Joined));
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
    let sinks = Arc::new(Sinks::default());
    let hook = hook.map(|h| h.attach(&sinks));
    let log = {
        let sinks = Arc::clone(&sinks);
        Box::new(move |level: LogLevel, msg: &str| sinks.emit(level, msg)) as LogFn
    };
    // Built from the absolute path: a host that changes its working
    // directory later (knotd and named daemonise to `/`) keeps watching
    // the same file.
    let abs = std::path::absolute(path).unwrap_or_else(|_| std::path::PathBuf::from(path));
    let engine = Engine::from_file_with_log(&abs, Some(log))?;
    let handle = into_live_handle(engine);
    let mut guard = registry();
    guard.get_or_insert_with(HashMap::new).insert(
        key.clone(),
        Entry::Ready {
            engine: handle,
            holders: 1,
            sinks,
        },
    );
    building.done = true;
    drop(guard);
    drop(building);
    let held = SharedEngine {
        handle,
        hook,
        released: false,
    };
    Ok((held, Opened::Built))
}

/// Releases one hold on the shared engine `engine`, taking the hold's log
/// hook (`hook`) out; the last release stops and joins the engine's
/// threads (outside the registry's lock; its last lines still reach that
/// hook) and frees it. Returns the holders left (0: freed); `NotFound`
/// when `engine` is not a shared engine.
fn release(engine: *const tm_engine, hook: Option<HookKey>) -> Result<usize, tm_result> {
    let mut guard = registry();
    let map = guard.as_mut().ok_or(tm_result::NotFound)?;
    let key = map
        .iter()
        .find(|(_, v)| matches!(v, Entry::Ready { engine: e, .. } if std::ptr::eq(e.as_ptr(), engine)))
        .map(|(k, _)| k.clone())
        .ok_or(tm_result::NotFound)?;
    let left = match map.get_mut(&key) {
        Some(Entry::Ready { holders, sinks, .. }) => {
            *holders -= 1;
            if *holders > 0
                && let Some(k) = hook
            {
                // Out now, under the sinks' lock: no line reaches this
                // hook once the call returns.
                sinks.remove(k);
            }
            *holders
        }
        _ => return Err(tm_result::NotFound),
    };
    let unlinked = if left == 0 { map.remove(&key) } else { None };
    if map.is_empty() {
        // Nothing shared any more: free the registry itself too.
        *guard = None;
    }
    // Free outside the lock: stopping the engine joins its threads, which
    // may take a while, and must not hold up other engines' opens and
    // releases.
    drop(guard);
    if let Some(Entry::Ready { engine, sinks, .. }) = unlinked {
        // SAFETY: made by into_live_handle in open_keyed; no holder is left
        // and the registry no longer hands it out. Its last lines go to the
        // last holder's hook, still valid during this call.
        unsafe { free_handle(engine.as_ptr()) };
        sinks.clear();
    }
    Ok(left)
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
    // SAFETY: the same contract, without a host.
    unsafe {
        tm_engine_open_shared_host(
            config_path,
            config_path_len,
            std::ptr::null(),
            errbuf,
            errbuf_len,
            engine_out,
        )
    }
}

/// As `tm_engine_open_shared`, for a host whose log the shared engine
/// should write to (Knot DNS: one module instance per zone, each with its
/// own log context): the `host`'s log hook joins the engine's for as long
/// as this hold lasts. Each line goes to the newest hook among the holds
/// still open, once; when the holder whose hook that is releases, the
/// next newest takes over.
///
/// **Ownership:** as `tm_engine_open_shared`; release this hold with
/// `tm_engine_release_shared_host` and the same `host`.
/// **NULL:** `config_path` and `engine_out` must not be NULL; `host` may be
/// (no hook: as `tm_engine_open_shared`), and `errbuf` may be.
/// **Threads:** safe from any thread.
/// **Lifetime:** `host` is read during the call; its `log` hook and
/// `userdata` are kept and may be called (from any thread) until the
/// matching `tm_engine_release_shared_host` returns, never after.
/// **Returns:** as `tm_engine_new`.
///
/// # Safety
/// As `tm_engine_open_shared`; `host` is NULL or a readable `tm_host` of
/// its `struct_size`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_open_shared_host(
    config_path: *const c_char,
    config_path_len: usize,
    host: *const tm_host,
    errbuf: *mut c_char,
    errbuf_len: usize,
    engine_out: *mut *const tm_engine,
) -> tm_result {
    entry(|| {
        install_panic_hook();
        // SAFETY: the caller's pointers, per this function's contract.
        let (out, path, hook, errbuf) = unsafe {
            (
                Out::new(engine_out)?,
                str_arg(config_path, config_path_len)?,
                keyed_host_log(host)?,
                ErrBuf::new(errbuf, errbuf_len),
            )
        };
        let (held, _) = open_keyed(path, hook.map(|(k, f)| Hook::Host(k, f)))
            .map_err(|e| errbuf.config_invalid(&e))?;
        out.write(held.into_raw());
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
    // SAFETY: the same contract, without a host.
    unsafe { tm_engine_release_shared_host(engine, std::ptr::null()) }
}

/// Releases one hold from `tm_engine_open_shared_host`, taking that hold's
/// log hook out of the engine's; the last release stops and joins the
/// engine's threads (its last lines still reach this hook) and frees it.
///
/// **Ownership:** gives back the hold; `host` is the one given to the open
/// (its `log` and `userdata` identify the hook).
/// **NULL:** calling with a NULL `engine` is fine; `host` may be NULL (a
/// hold opened without a hook).
/// **Threads:** safe from any thread; the caller must not use the engine
/// afterwards, and no call of the caller's on it may still be running.
/// **Lifetime:** when it returns, the hook is not called any more.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NOT_FOUND` (not a shared engine),
/// `TM_RESULT_STRUCT_TOO_SMALL`, `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or any pointer (only compared with the registry's
/// handles); `host` is NULL or a readable `tm_host` of its `struct_size`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_release_shared_host(
    engine: *const tm_engine,
    host: *const tm_host,
) -> tm_result {
    entry(|| {
        if engine.is_null() {
            return Ok(());
        }
        // SAFETY: the caller's pointer, per this function's contract.
        let hook = unsafe { host_key(host) }?;
        release(engine, hook).map(|_| ())
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

    /// A log hook that records the lines it gets, tagged with its name.
    ///
    /// # Safety
    /// `ud` is a live `(&str, Mutex<Vec<String>>)`; `msg` is `len` readable bytes.
    unsafe extern "C" fn record(
        ud: *mut std::ffi::c_void,
        _level: u32,
        msg: *const c_char,
        len: usize,
    ) {
        // SAFETY: userdata is a live (&str, Mutex<Vec<String>>) of the test.
        let (tag, lines) = unsafe { &*(ud as *const (&str, Mutex<Vec<String>>)) };
        // SAFETY: msg is len readable bytes (the library's contract).
        let text = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
        lines
            .lock()
            .unwrap()
            .push(format!("{tag}: {}", String::from_utf8_lossy(text)));
    }

    fn open_host(path: &str, host: &tm_host) -> *const tm_engine {
        let mut out: *const tm_engine = std::ptr::null();
        // SAFETY: valid pointers and lengths.
        let r = unsafe {
            tm_engine_open_shared_host(
                path.as_ptr().cast(),
                path.len(),
                host,
                std::ptr::null_mut(),
                0,
                &mut out,
            )
        };
        assert_eq!(r, tm_result::Ok);
        out
    }

    /// A shared engine writes each line to the newest holder's log hook,
    /// once; a released holder's hook is never called again, and the last
    /// holder still gets the engine's lines until its release returns.
    #[test]
    fn shared_engine_logs_to_the_newest_holder() {
        use crate::ffi::life::tm_engine_reload;
        let dir = std::env::temp_dir().join(format!("tm-registry-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = config(&dir, "log.toml");
        let a: (&str, Mutex<Vec<String>>) = ("a", Mutex::new(Vec::new()));
        let b: (&str, Mutex<Vec<String>>) = ("b", Mutex::new(Vec::new()));
        let host = |ud: &(&str, Mutex<Vec<String>>)| tm_host {
            struct_size: std::mem::size_of::<tm_host>() as u32,
            userdata: ud as *const _ as *mut std::ffi::c_void,
            log: Some(record),
        };
        let (ha, hb) = (host(&a), host(&b));
        let ea = open_host(&path, &ha);
        let eb = open_host(&path, &hb);
        assert!(std::ptr::eq(ea, eb), "one engine per path");
        let reload = |e| {
            // SAFETY: a live shared handle; no error buffer.
            let r = unsafe { tm_engine_reload(e, std::ptr::null_mut(), 0) };
            assert_eq!(r, tm_result::Ok);
        };
        let count = |x: &(&str, Mutex<Vec<String>>)| x.1.lock().unwrap().len();
        // The build's lines (its config warnings) went to a, the only hook then.
        let built = count(&a);
        assert!(built > 0, "the creator's hook gets the build's lines");
        assert_eq!(count(&b), 0);
        reload(ea);
        assert_eq!(
            (count(&a), count(&b)),
            (built, 1),
            "the newest holder's hook"
        );
        assert_eq!(
            // SAFETY: b's hold, with b's host.
            unsafe { tm_engine_release_shared_host(eb, &hb) },
            tm_result::Ok
        );
        reload(ea);
        assert_eq!(
            (count(&a), count(&b)),
            (built + 1, 1),
            "b is out, a takes over"
        );
        assert!(a.1.lock().unwrap()[built].contains("configuration reloaded"));
        assert_eq!(
            // SAFETY: a's hold, the last.
            unsafe { tm_engine_release_shared_host(ea, &ha) },
            tm_result::Ok
        );
        // Freed: a new open builds a new engine, and nothing reaches a or b.
        let (before_a, before_b) = (count(&a), count(&b));
        let e = open(&path);
        reload(e);
        // SAFETY: the one hold.
        assert_eq!(unsafe { tm_engine_release_shared(e) }, tm_result::Ok);
        assert_eq!((count(&a), count(&b)), (before_a, before_b));
        let _ = std::fs::remove_dir_all(&dir);
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
        let dir = std::env::temp_dir().join(format!("tm-registry-hooks-{}", std::process::id()));
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
