//! Engines shared by path within one process, for hosts whose threads
//! cannot hand each other a pointer: dnsdist's `LuaFFIPerThreadAction` runs
//! one Lua state per thread, and each state opens the engine by its config
//! path. The first open creates it; later opens of the same path get the
//! same engine; it is freed (threads joined) when the last holder releases
//! it. This registry is the library's one piece of process-wide state, and
//! it is empty unless these two calls are used.

use super::handle::{ErrBuf, Out, free_handle, into_handle, str_arg, tm_engine};
use super::{entry, install_panic_hook, tm_result};
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
        let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        if let Some(entry) = map.get_mut(path) {
            entry.holders += 1;
            out.write(entry.engine);
            return Ok(());
        }
        let engine = Engine::from_file(path).map_err(|e| errbuf.config_invalid(&e))?;
        let handle = into_handle(engine);
        map.insert(
            path.to_string(),
            Entry {
                engine: handle,
                holders: 1,
            },
        );
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
        let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.as_mut().ok_or(tm_result::NotFound)?;
        let key = map
            .iter()
            .find(|(_, v)| std::ptr::eq(v.engine, engine))
            .map(|(k, _)| k.clone())
            .ok_or(tm_result::NotFound)?;
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
            // SAFETY: made by into_handle above; no holder is left and the
            // registry no longer hands it out.
            unsafe { free_handle(e.engine) };
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
}
