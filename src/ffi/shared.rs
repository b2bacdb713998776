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
// SAFETY: the engine is Sync and only freed under the registry's lock.
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
        if last == Some(true)
            && let Some(e) = map.remove(&key)
        {
            // SAFETY: created by Box::into_raw above; no holder is left.
            drop(unsafe { Box::from_raw(e.engine) });
        }
        if map.is_empty() {
            // Nothing shared any more: free the registry itself too.
            *guard = None;
        }
        tm_result::Ok
    })
}
