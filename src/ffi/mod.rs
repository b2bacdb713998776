//! The C ABI: every `tm_*` symbol, grouped by what the host sees:
//! [`life`] (create, free, reload), [`lookup`] (records for a name),
//! [`wire`] (whole DNS replies), [`admin`] (health overrides, readiness,
//! status), [`shared`] (engines shared by path), [`result`] and
//! [`version`]. Pointers become Rust values in [`handle`] only.
//!
//! Rules (see README "C API conventions"): every entry point runs inside
//! [`boundary`] (through [`entry`] when it returns a `tm_result`) so no
//! panic reaches the host; every pointer is checked before use; strings
//! come in as pointer + length; outputs are written only on success.
//! `unsafe` lives here and in `bind_dlz` only.
//!
//! Every export's doc has the same parts in the same order: what it does,
//! then **Ownership**, **NULL**, **Threads**, **Lifetime** (where a pointer
//! is kept or handed back), **Returns**, and a `# Safety` section for
//! `unsafe` ones; cbindgen copies them into `include/trafficmgr.h`.

#![allow(non_camel_case_types)]

// In the order the header shows them (cbindgen follows this order).
pub mod handle;
pub mod life;
pub mod lookup;
// Whole DNS messages.
pub mod wire;
// Health overrides and status.
pub mod admin;
// Codes, shared engines, versions.
pub mod result;
pub mod shared;
pub mod version;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

pub use result::tm_result;

thread_local! {
    /// Depth of `boundary` calls on this thread: panics inside are ours.
    static IN_BOUNDARY: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// Installs, once per process, a panic hook that keeps panics raised inside
/// our entry points off the host's stderr and hands every other panic to the
/// hook that was there before (chained, so the host's own hook still runs).
pub(crate) fn install_panic_hook() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_BOUNDARY.with(|c| c.get()) == 0 {
                prev(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into `on_panic`.
#[inline]
pub fn boundary<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    IN_BOUNDARY.with(|c| c.set(c.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_BOUNDARY.with(|c| c.set(c.get().saturating_sub(1)));
    r.unwrap_or(on_panic)
}

/// Runs the body of an entry point that returns a `tm_result` inside
/// [`boundary`]: `Ok(())` is `TM_RESULT_OK`, `Err(code)` is `code`, so the
/// body can use `?` on the [`handle`] helpers.
#[inline]
pub(crate) fn entry(f: impl FnOnce() -> Result<(), tm_result>) -> tm_result {
    boundary(tm_result::Panic, || match f() {
        Ok(()) => tm_result::Ok,
        Err(code) => code,
    })
}
