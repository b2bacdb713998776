//! An engine's life as the host sees it: `tm_engine_new`,
//! `tm_engine_new_from_string`, `tm_engine_free`, `tm_engine_reload` and
//! `tm_engine_last_reload_error`, with the host hooks (`tm_host`) given at
//! creation. The handle has one owner, who frees it with `tm_engine_free`;
//! every other call takes `const tm_engine *` and may run concurrently with
//! any call except `tm_engine_free`.

use super::handle::{
    ErrBuf, Out, engine_ref, free_handle, into_handle, opt_str_arg, read_versioned, str_arg,
    string_out, tm_engine, versioned,
};
use super::{boundary, entry, install_panic_hook, tm_result};
use crate::engine::{Engine, LogFn, LogLevel};
use std::ffi::{c_char, c_void};
use std::path::Path;

/// Size of an error buffer that holds any message in full.
#[allow(dead_code)] // exported to C through the header
pub const TM_ERRBUF_SIZE: usize = 1024;

/// Log levels passed to `tm_log_fn`.
pub const TM_LOG_ERROR: u32 = 1;
/// Warning.
pub const TM_LOG_WARN: u32 = 2;
/// Information.
pub const TM_LOG_INFO: u32 = 3;
/// Debugging.
pub const TM_LOG_DEBUG: u32 = 4;

/// The host's log hook: `level` is `TM_LOG_*`; `msg` is NUL-terminated and
/// valid during the call only; `msg_len` excludes the NUL. May be called
/// from any thread the library runs on (creation, reload, probe threads).
pub type tm_log_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, level: u32, msg: *const c_char, msg_len: usize),
>;

/// Host hooks, given at creation. Start with `struct_size = sizeof(tm_host)`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tm_host {
    /// `sizeof(tm_host)` as the host compiled it.
    pub struct_size: u32,
    /// Passed back to every hook.
    pub userdata: *mut c_void,
    /// Log hook; NULL = no logging.
    pub log: tm_log_fn,
}

versioned!(tm_host);

struct HostLog {
    userdata: *mut c_void,
    f: unsafe extern "C" fn(*mut c_void, u32, *const c_char, usize),
}
// SAFETY: the host promises its log hook and userdata may be used from any thread (documented on tm_host).
unsafe impl Send for HostLog {}
// SAFETY: as above.
unsafe impl Sync for HostLog {}

impl HostLog {
    fn emit(&self, level: LogLevel, msg: &str) {
        let mut s = Vec::with_capacity(msg.len() + 1);
        s.extend(msg.bytes().filter(|b| *b != 0));
        let len = s.len();
        s.push(0);
        let level = match level {
            LogLevel::Error => TM_LOG_ERROR,
            LogLevel::Warn => TM_LOG_WARN,
            LogLevel::Info => TM_LOG_INFO,
            LogLevel::Debug => TM_LOG_DEBUG,
        };
        // SAFETY: the host's hook, with a NUL-terminated buffer valid for the call.
        unsafe { (self.f)(self.userdata, level, s.as_ptr().cast(), len) };
    }
}

/// The log hook of an optional `tm_host` (NULL: no logging).
///
/// # Safety
/// `host` is NULL or points at a readable `tm_host` of at least its
/// `struct_size` bytes, whose hook and userdata may be used from any
/// thread until the engine is freed.
unsafe fn host_log(host: *const tm_host) -> Result<Option<LogFn>, tm_result> {
    // SAFETY: forwarded contract.
    Ok(unsafe { keyed_host_log(host) }?.map(|(_, log)| log))
}

/// What identifies one host log hook: its function and its userdata.
pub(super) type HookKey = (usize, usize);

/// As [`host_log`], with the hook's key, so a shared engine can tell its
/// holders' hooks apart.
///
/// # Safety
/// As [`host_log`], until the hook is taken back.
pub(super) unsafe fn keyed_host_log(
    host: *const tm_host,
) -> Result<Option<(HookKey, LogFn)>, tm_result> {
    if host.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    let h = unsafe { read_versioned(host) }?;
    Ok(h.log.map(|f| {
        let key = (f as usize, h.userdata as usize);
        let hl = HostLog {
            userdata: h.userdata,
            f,
        };
        (
            key,
            Box::new(move |level: LogLevel, msg: &str| hl.emit(level, msg)) as LogFn,
        )
    }))
}

/// The key of an optional `tm_host`'s log hook (NULL or no hook: none).
///
/// # Safety
/// `host` is NULL or points at a readable `tm_host` of its `struct_size`.
pub(super) unsafe fn host_key(host: *const tm_host) -> Result<Option<HookKey>, tm_result> {
    if host.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    let h = unsafe { read_versioned(host) }?;
    Ok(h.log.map(|f| (f as usize, h.userdata as usize)))
}

/// Creates an engine from a TOML config file: parse, validate, compile.
///
/// `config_path` is `config_path_len` octets of UTF-8 (no NUL needed). On
/// failure, `errbuf` receives a NUL-terminated message naming
/// file:line:col and key path, truncated to `errbuf_len`
/// (`TM_ERRBUF_SIZE` always suffices).
///
/// **Ownership:** on `TM_RESULT_OK` the caller owns `*engine_out`; free it
/// with `tm_engine_free`. On failure `*engine_out` is left untouched.
/// **NULL:** `config_path` and `engine_out` must not be NULL; `host` may be
/// (no logging), and `errbuf` may be.
/// **Threads:** safe from any thread.
/// **Lifetime:** `host` is read during the call; its `log` hook and
/// `userdata` are kept and called (from any thread) until `tm_engine_free`
/// returns.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_INVALID_UTF8`,
/// `TM_RESULT_STRUCT_TOO_SMALL`, `TM_RESULT_CONFIG_INVALID`, `TM_RESULT_PANIC`.
///
/// # Safety
/// `config_path` points at `config_path_len` readable bytes; `host` is NULL
/// or a readable `tm_host` of its `struct_size`; `errbuf` is NULL or
/// `errbuf_len` writable bytes; `engine_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_new(
    config_path: *const c_char,
    config_path_len: usize,
    host: *const tm_host,
    errbuf: *mut c_char,
    errbuf_len: usize,
    engine_out: *mut *mut tm_engine,
) -> tm_result {
    entry(|| {
        install_panic_hook();
        // SAFETY: the caller's pointers, per this function's contract.
        let (out, path, log, errbuf) = unsafe {
            (
                Out::new(engine_out)?,
                str_arg(config_path, config_path_len)?,
                host_log(host)?,
                ErrBuf::new(errbuf, errbuf_len),
            )
        };
        let engine = Engine::from_file_with_log(Path::new(path), log)
            .map_err(|e| errbuf.config_invalid(&e))?;
        out.write(into_handle(engine));
        Ok(())
    })
}

/// Creates an engine from TOML text. Relative paths in it (latency table,
/// GeoIP database) are taken from `base_dir` (`base_dir_len` octets), or the
/// current directory when `base_dir` is NULL.
///
/// **Ownership:** as `tm_engine_new`.
/// **NULL:** `toml` and `engine_out` must not be NULL; `host`, `base_dir`
/// and `errbuf` may be.
/// **Threads:** safe from any thread.
/// **Lifetime:** as `tm_engine_new`.
/// **Returns:** as `tm_engine_new`.
///
/// # Safety
/// `toml` points at `toml_len` readable bytes; `base_dir` is NULL or
/// `base_dir_len` readable bytes; the rest as `tm_engine_new`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tm_engine_new_from_string(
    toml: *const c_char,
    toml_len: usize,
    base_dir: *const c_char,
    base_dir_len: usize,
    host: *const tm_host,
    errbuf: *mut c_char,
    errbuf_len: usize,
    engine_out: *mut *mut tm_engine,
) -> tm_result {
    entry(|| {
        install_panic_hook();
        // SAFETY: the caller's pointers, per this function's contract.
        let (out, text, base, log, errbuf) = unsafe {
            (
                Out::new(engine_out)?,
                str_arg(toml, toml_len)?,
                opt_str_arg(base_dir, base_dir_len)?,
                host_log(host)?,
                ErrBuf::new(errbuf, errbuf_len),
            )
        };
        let engine = Engine::from_toml_with_log(text, base.map(Path::new), log)
            .map_err(|e| errbuf.config_invalid(&e))?;
        out.write(into_handle(engine));
        Ok(())
    })
}

/// Frees an engine, after stopping and joining every thread it started.
///
/// **Ownership:** takes back the engine from `tm_engine_new*`; the handle
/// is invalid afterwards. Never pass a shared engine
/// (`tm_engine_open_shared`); release it instead.
/// **NULL:** calling with NULL is fine. Freeing twice is not.
/// **Threads:** no other call on this engine may be running or start.
/// **Returns:** nothing; the log hook is not called after it returns.
///
/// # Safety
/// `engine` is NULL or a handle from `tm_engine_new*` not yet freed, with
/// no call on it running or to come.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_free(engine: *mut tm_engine) {
    // SAFETY: per this function's contract.
    boundary((), || unsafe { free_handle(engine) })
}

/// Re-reads the configuration (and the data files it names) and swaps it in
/// atomically. On failure nothing changes: the previous configuration keeps
/// serving and `errbuf` says why.
///
/// **Ownership:** borrows `engine`.
/// **NULL:** `engine` must not be NULL; `errbuf` may be.
/// **Threads:** safe concurrently with lookups; reloads are serialised.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_CONFIG_INVALID`, `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle; `errbuf` is NULL or `errbuf_len`
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_reload(
    engine: *const tm_engine,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tm_result {
    entry(|| {
        // SAFETY: the caller's pointers, per this function's contract.
        let (e, errbuf) = unsafe { (engine_ref(engine)?, ErrBuf::new(errbuf, errbuf_len)) };
        e.reload().map_err(|err| errbuf.config_invalid(&err))
    })
}

/// Writes the last reload error (file:line:col, key path, what was
/// expected) as a NUL-terminated string into `buf` — empty when the last
/// reload succeeded or none failed yet. Reloads come from
/// `tm_engine_reload` and from the config-file watch.
///
/// **Ownership:** borrows `engine`; the text is copied into `buf`.
/// **NULL:** `engine`, `buf` and `written_out` must not be NULL.
/// **Threads:** safe from any thread.
/// **Returns:** `TM_RESULT_OK` with `*written_out` = length without the NUL;
/// `TM_RESULT_BUFFER_TOO_SMALL` with `*written_out` = the length needed;
/// `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle; `buf` is NULL or `buf_len` writable
/// bytes; `written_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_last_reload_error(
    engine: *const tm_engine,
    buf: *mut c_char,
    buf_len: usize,
    written_out: *mut usize,
) -> tm_result {
    entry(|| {
        // SAFETY: a live handle or NULL, per this function's contract.
        let e = unsafe { engine_ref(engine) }?;
        let msg = e.reload_stats().last_error.unwrap_or_default();
        // SAFETY: the caller's buffer and output.
        unsafe { string_out(&msg, buf, buf_len, written_out) }
    })
}
