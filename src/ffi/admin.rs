//! Operating an engine: monitor status and admin overrides of one endpoint
//! (`tm_engine_set_monitor_status`, `tm_engine_set_admin_state`), waiting
//! for the first probe results (`tm_engine_wait_ready`) and the status
//! report (`tm_engine_status_json`).

use super::handle::{engine_ref, str_arg, string_out, tm_engine};
use super::{entry, tm_result};
use crate::engine::Engine;
use crate::health::{AdminState, MonitorStatus};
use std::ffi::c_char;
use std::time::Duration;

/// Monitor status for `tm_engine_set_monitor_status`: no result yet (served).
pub const TM_STATUS_CHECKING: u32 = 0;
/// Monitor status: probes pass.
pub const TM_STATUS_ONLINE: u32 = 1;
/// Monitor status: probes fail (not served unless every endpoint is degraded).
pub const TM_STATUS_DEGRADED: u32 = 2;

/// Admin state for `tm_engine_set_admin_state`: clear the override (the
/// admin-state file's state applies, else the configuration).
pub const TM_ADMIN_NONE: u32 = 0;
/// Admin state: served (and probed) even if the config disables it.
pub const TM_ADMIN_ENABLED: u32 = 1;
/// Admin state: not served, not probed (status Disabled).
pub const TM_ADMIN_DISABLED: u32 = 2;
/// Admin state: no new answers, still probed.
pub const TM_ADMIN_DRAIN: u32 = 3;

/// The engine and the (profile, endpoint) names of a per-endpoint call.
///
/// # Safety
/// `engine` is NULL or a live handle; each string is NULL or its length's
/// readable bytes, for `'a`.
unsafe fn endpoint_args<'a>(
    engine: *const tm_engine,
    profile: *const c_char,
    profile_len: usize,
    endpoint: *const c_char,
    endpoint_len: usize,
) -> Result<(&'a Engine, &'a str, &'a str), tm_result> {
    // SAFETY: forwarded contract.
    unsafe {
        Ok((
            engine_ref(engine)?,
            str_arg(profile, profile_len)?,
            str_arg(endpoint, endpoint_len)?,
        ))
    }
}

/// Sets the monitor status of one endpoint (`TM_STATUS_*`), as an external
/// monitor or a test would. Takes effect for the next query. A verdict like
/// a probe's: the next probe result replaces it, and the admin-state file's
/// `up`/`down` win over it.
///
/// `profile` is the profile's name or full DNS name; both strings are
/// pointer + length UTF-8.
///
/// **Ownership:** borrows everything; nothing is kept after the call.
/// **NULL:** no pointer may be NULL.
/// **Threads:** safe concurrently with lookups.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_INVALID_UTF8`,
/// `TM_RESULT_NOT_FOUND`, `TM_RESULT_BAD_VALUE`, `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle; `profile` and `endpoint` are NULL or
/// point at `profile_len` and `endpoint_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_set_monitor_status(
    engine: *const tm_engine,
    profile: *const c_char,
    profile_len: usize,
    endpoint: *const c_char,
    endpoint_len: usize,
    status: u32,
) -> tm_result {
    entry(|| {
        // SAFETY: the caller's pointers, per this function's contract.
        let (e, p, ep) =
            unsafe { endpoint_args(engine, profile, profile_len, endpoint, endpoint_len) }?;
        let s = match status {
            TM_STATUS_CHECKING => MonitorStatus::CheckingEndpoint,
            TM_STATUS_ONLINE => MonitorStatus::Online,
            TM_STATUS_DEGRADED => MonitorStatus::Degraded,
            _ => return Err(tm_result::BadValue),
        };
        e.set_monitor_status(p, ep, s)
            .map_err(|_| tm_result::NotFound)
    })
}

/// Sets the load of one endpoint, for spill-over (`spill_start`,
/// `spill_full`): a fraction, 1.0 = full (`0.73`), clamped to 0 ..= 1000; a
/// negative value clears it (no load known: the endpoint never spills).
/// Takes effect for the next query. A monitor with `load_header` replaces
/// it with each probe's report.
///
/// **Ownership:** borrows everything; nothing is kept after the call.
/// **NULL:** no pointer may be NULL.
/// **Threads:** safe concurrently with lookups.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_INVALID_UTF8`,
/// `TM_RESULT_NOT_FOUND`, `TM_RESULT_BAD_VALUE` (NaN or infinite), `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle; `profile` and `endpoint` are NULL or
/// point at `profile_len` and `endpoint_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_set_load(
    engine: *const tm_engine,
    profile: *const c_char,
    profile_len: usize,
    endpoint: *const c_char,
    endpoint_len: usize,
    load: f64,
) -> tm_result {
    entry(|| {
        // SAFETY: the caller's pointers, per this function's contract.
        let (e, p, ep) =
            unsafe { endpoint_args(engine, profile, profile_len, endpoint, endpoint_len) }?;
        if !load.is_finite() {
            return Err(tm_result::BadValue);
        }
        e.set_load(p, ep, (load >= 0.0).then_some(load))
            .map_err(|_| tm_result::NotFound)
    })
}

/// Overrides an endpoint at run time, without a reload: `TM_ADMIN_ENABLED`,
/// `TM_ADMIN_DISABLED`, `TM_ADMIN_DRAIN`, or `TM_ADMIN_NONE` to clear the
/// override. While set it wins over the admin-state file's admin state;
/// cleared, the file's state applies again, else the config. Shown in the
/// status report; kept across reloads.
///
/// **Ownership:** borrows everything; nothing is kept after the call.
/// **NULL:** no pointer may be NULL.
/// **Threads:** safe concurrently with lookups.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_INVALID_UTF8`,
/// `TM_RESULT_NOT_FOUND`, `TM_RESULT_BAD_VALUE`, `TM_RESULT_PANIC`.
///
/// # Safety
/// As `tm_engine_set_monitor_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_set_admin_state(
    engine: *const tm_engine,
    profile: *const c_char,
    profile_len: usize,
    endpoint: *const c_char,
    endpoint_len: usize,
    state: u32,
) -> tm_result {
    entry(|| {
        // SAFETY: the caller's pointers, per this function's contract.
        let (e, p, ep) =
            unsafe { endpoint_args(engine, profile, profile_len, endpoint, endpoint_len) }?;
        let s = match state {
            TM_ADMIN_NONE => AdminState::None,
            TM_ADMIN_ENABLED => AdminState::Enabled,
            TM_ADMIN_DISABLED => AdminState::Disabled,
            TM_ADMIN_DRAIN => AdminState::Drain,
            _ => return Err(tm_result::BadValue),
        };
        e.set_admin_state(p, ep, s).map_err(|_| tm_result::NotFound)
    })
}

/// Waits until every probed endpoint has its first probe result (so a host
/// may hold answers until health is known), or `timeout_ms` passes.
///
/// **Ownership:** borrows `engine`.
/// **NULL:** `engine` must not be NULL.
/// **Threads:** safe from any thread; blocks the caller only.
/// **Returns:** `TM_RESULT_OK` when ready, `TM_RESULT_TIMEOUT`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_wait_ready(
    engine: *const tm_engine,
    timeout_ms: u32,
) -> tm_result {
    entry(|| {
        // SAFETY: a live handle or NULL, per this function's contract.
        let e = unsafe { engine_ref(engine) }?;
        if e.wait_ready(Duration::from_millis(u64::from(timeout_ms))) {
            Ok(())
        } else {
            Err(tm_result::Timeout)
        }
    })
}

/// Writes the status report — every profile and endpoint with its state,
/// admin override, last probe and counters; see docs/OPERATIONS.md — as
/// NUL-terminated JSON into `buf`.
///
/// **Ownership:** borrows `engine`; the report is copied into `buf`.
/// **NULL:** `engine`, `buf` and `written_out` must not be NULL.
/// **Threads:** safe concurrently with lookups (it reads the monitor's
/// board under the monitor's lock, never the query path's data).
/// **Returns:** `TM_RESULT_OK` with `*written_out` = length without the NUL;
/// `TM_RESULT_BUFFER_TOO_SMALL` with `*written_out` = the length needed
/// without the NUL (the one output written on failure, as snprintf does);
/// `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle; `buf` is NULL or `buf_len` writable
/// bytes; `written_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_status_json(
    engine: *const tm_engine,
    buf: *mut c_char,
    buf_len: usize,
    written_out: *mut usize,
) -> tm_result {
    entry(|| {
        // SAFETY: a live handle or NULL, per this function's contract.
        let e = unsafe { engine_ref(engine) }?;
        // SAFETY: the caller's buffer and output.
        unsafe { string_out(&e.status_json(), buf, buf_len, written_out) }
    })
}
