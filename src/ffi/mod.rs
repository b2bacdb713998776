//! The C ABI: every `tm_*` symbol. Rules (see README "C API conventions"):
//! every entry point runs inside [`boundary`] so no panic reaches the host;
//! every pointer is checked before use; strings come in as pointer + length;
//! outputs are written only on success. `unsafe` lives here and in
//! `bind_dlz` only.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

pub mod engine;
pub mod result;
pub mod shared;
pub mod version;

use std::cell::Cell;
use std::ffi::c_char;
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

/// Borrows `len` bytes at `ptr`; NULL is allowed only with `len == 0`.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], tm_result> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(tm_result::NullArgument)
        };
    }
    if len > isize::MAX as usize {
        return Err(tm_result::BadLength);
    }
    // SAFETY: the caller promises `ptr` points at `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows a UTF-8 string given as pointer + length.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, tm_result> {
    if ptr.is_null() {
        return Err(tm_result::NullArgument);
    }
    // SAFETY: forwarded contract.
    let b = unsafe { bytes(ptr.cast(), len) }?;
    std::str::from_utf8(b).map_err(|_| tm_result::InvalidUtf8)
}

/// Copies `msg` into a caller buffer, truncated and always NUL-terminated.
pub(crate) unsafe fn write_errbuf(errbuf: *mut c_char, errbuf_len: usize, msg: &str) {
    if errbuf.is_null() || errbuf_len == 0 {
        return;
    }
    let mut n = msg.len().min(errbuf_len - 1);
    while n > 0 && !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: the caller promises `errbuf` holds `errbuf_len` writable bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), errbuf.cast::<u8>(), n);
        *errbuf.add(n) = 0;
    }
}
