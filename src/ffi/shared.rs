//! Engines shared by path within one process, for hosts whose threads
//! cannot hand each other a pointer: dnsdist's `LuaFFIPerThreadAction` runs
//! one Lua state per thread, and each state opens the engine by its config
//! path. The first open creates it; later opens of the same path get the
//! same engine; it is freed (threads joined) when the last holder releases
//! it. This registry is the library's one piece of process-wide state, and
//! it is empty unless these two calls are used.

use super::engine::config_invalid;
use super::engine::tm_engine;
use super::{boundary, install_panic_hook, str_arg, tm_result};
use crate::engine::Engine;
use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::Mutex;

struct Entry {
    engine: *mut tm_engine,
    holders: usize,
}
// SAFETY: the engine is Sync; it is freed only after it has left the
// registry (under its lock), by the one caller that removed it.
unsafe impl Send for Entry {}

static SHARED: Mutex<Option<HashMap<String, Entry>>> = Mutex::new(None);

/// Opens the engine for the config file at `config_path`, shared by every
/// caller in the process that opens the same path (the first call creates it
/// and starts its threads).
///
/// **Ownership:** each successful call must be matched by one
/// `tm_engine_release_shared`; never pass a shared engine to `tm_engine_free`.
/// On failure `*engine_out` is untouched and `errbuf` says why.
/// **NULL:** `config_path` and `engine_out` must not be NULL.
/// **Threads:** safe from any thread.
/// **Returns:** as `tm_engine_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_open_shared(
    config_path: *const c_char,
    config_path_len: usize,
    errbuf: *mut c_char,
    errbuf_len: usize,
    engine_out: *mut *const tm_engine,
) -> tm_result {
    boundary(tm_result::Panic, || {
        install_panic_hook();
        if engine_out.is_null() {
            return tm_result::NullArgument;
        }
        // SAFETY: pointer + length from the caller.
        let path = match unsafe { str_arg(config_path, config_path_len) } {
            Ok(p) => p,
            Err(e) => return e,
        };
        let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        if let Some(entry) = map.get_mut(path) {
            entry.holders += 1;
            // SAFETY: non-NULL output.
            unsafe { *engine_out = entry.engine };
            return tm_result::Ok;
        }
        match Engine::from_file(path) {
            Ok(engine) => {
                let raw = Box::into_raw(Box::new(tm_engine::from_engine(engine)));
                map.insert(
                    path.to_string(),
                    Entry {
                        engine: raw,
                        holders: 1,
                    },
                );
                // SAFETY: non-NULL output.
                unsafe { *engine_out = raw };
                tm_result::Ok
            }
            Err(e) => {
                // SAFETY: forwarded contract.
                unsafe { config_invalid(&e, errbuf, errbuf_len) }
            }
        }
    })
}

/// Releases one hold on a shared engine; the last release stops and joins
/// its threads and frees it.
///
/// **NULL:** calling with NULL is fine.
/// **Threads:** safe from any thread; the caller must not use the engine afterwards.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NOT_FOUND` (not a shared engine), `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_release_shared(engine: *const tm_engine) -> tm_result {
    boundary(tm_result::Panic, || {
        if engine.is_null() {
            return tm_result::Ok;
        }
        let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let Some(map) = guard.as_mut() else {
            return tm_result::NotFound;
        };
        let Some(key) = map
            .iter()
            .find(|(_, v)| std::ptr::eq(v.engine, engine))
            .map(|(k, _)| k.clone())
        else {
            return tm_result::NotFound;
        };
        let last = map.get_mut(&key).map(|e| {
            e.holders -= 1;
            e.holders == 0
        });
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
        if let Some(e) = unlinked {
            // SAFETY: created by Box::into_raw above; no holder is left and
            // the registry no longer hands it out.
            drop(unsafe { Box::from_raw(e.engine) });
        }
        tm_result::Ok
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
}
