//! Engines shared by path within one process, for hosts whose threads
//! cannot hand each other a pointer: dnsdist's `LuaFFIPerThreadAction` runs
//! one Lua state per thread, and each state opens the engine by its config
//! path. The first open creates it; later opens of the same path get the
//! same engine; it is freed (threads joined) when the last holder releases
//! it. This registry is the library's one piece of process-wide state, and
//! it is empty unless these two calls are used.
//!
//! Its lock is held only to look entries up and change them: an engine is
//! built (config and data files read, threads started) and freed (threads
//! joined) outside it, so one slow open or release never holds up another
//! path's. Opens of a path that is being built wait for that build.

use super::handle::{ErrBuf, Out, free_handle, into_handle, str_arg, tm_engine};
use super::{entry, install_panic_hook, tm_result};
use crate::engine::Engine;
use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::{Condvar, Mutex, MutexGuard};

enum Entry {
    /// One caller is building the engine, outside the lock.
    Loading,
    /// Built and shared.
    Ready {
        engine: *mut tm_engine,
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

/// Removes a path's `Loading` entry unless the build finished (also when it
/// panicked), and wakes whoever waits for it.
struct Building<'a> {
    path: &'a str,
    done: bool,
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut g = registry();
            if let Some(map) = g.as_mut()
                && matches!(map.get(self.path), Some(Entry::Loading))
            {
                map.remove(self.path);
                if map.is_empty() {
                    *g = None;
                }
            }
        }
        BUILT.notify_all();
    }
}

/// Opens the engine for the config file at `config_path`, shared by every
/// caller in the process that opens the same path (the first call creates it
/// and starts its threads).
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
        let mut guard = registry();
        loop {
            let map = guard.get_or_insert_with(HashMap::new);
            match map.get_mut(path) {
                Some(Entry::Ready { engine, holders }) => {
                    *holders += 1;
                    out.write(*engine);
                    return Ok(());
                }
                // Another caller builds this one: wait for it.
                Some(Entry::Loading) => {
                    guard = BUILT.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                None => {
                    map.insert(path.to_string(), Entry::Loading);
                    break;
                }
            }
        }
        drop(guard);
        // Built outside the lock: reading the files and starting the
        // threads may take long, and must not hold up other paths.
        let mut building = Building { path, done: false };
        let engine = Engine::from_file(path).map_err(|e| errbuf.config_invalid(&e))?;
        let handle = into_handle(engine);
        let mut guard = registry();
        guard.get_or_insert_with(HashMap::new).insert(
            path.to_string(),
            Entry::Ready {
                engine: handle,
                holders: 1,
            },
        );
        building.done = true;
        drop(guard);
        drop(building);
        out.write(handle);
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
        let mut guard = registry();
        let map = guard.as_mut().ok_or(tm_result::NotFound)?;
        let key = map
            .iter()
            .find(|(_, v)| matches!(v, Entry::Ready { engine: e, .. } if std::ptr::eq(*e, engine)))
            .map(|(k, _)| k.clone())
            .ok_or(tm_result::NotFound)?;
        let last = match map.get_mut(&key) {
            Some(Entry::Ready { holders, .. }) => {
                *holders -= 1;
                Some(*holders == 0)
            }
            _ => None,
        };
        let unlinked = if last == Some(true) {
            map.remove(&key)
        } else {
            None
        };
        if map.is_empty() {
            // Nothing shared any more: free the registry itself too.
            *guard = None;
        }
        // Free outside the lock: stopping the engine joins its threads,
        // which may take a while, and must not hold up other engines'
        // opens and releases.
        drop(guard);
        if let Some(Entry::Ready { engine, .. }) = unlinked {
            // SAFETY: made by into_handle above; no holder is left and the
            // registry no longer hands it out.
            unsafe { free_handle(engine) };
        }
        Ok(())
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
