//! Versions: the library's, and the ABI number hosts must match.

use std::ffi::c_char;

const VERSION: &str = concat!(
    "trafficmgr/",
    env!("CARGO_PKG_VERSION"),
    " hickory-proto/",
    env!("TM_HICKORY_VERSION"),
    "\0"
);

/// The ABI version this library was built with (`TM_ABI_VERSION` in the header).
pub const ABI_VERSION: u32 = {
    match u32::from_str_radix(env!("TM_ABI_VERSION"), 10) {
        Ok(v) => v,
        Err(_) => 0,
    }
};

/// The library's version string, e.g. `trafficmgr/0.1.0 hickory-proto/0.26.3`.
///
/// **Ownership:** the string is the library's; never free it.
/// **NULL:** never returns NULL.
/// **Threads:** safe from any thread.
/// **Lifetime:** static: valid as long as the library is loaded.
/// **Returns:** a NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn tm_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The ABI version the library was built with. A host compiled against the
/// header compares it with `TM_ABI_VERSION` and refuses to run on mismatch.
///
/// **Ownership:** nothing is handed over.
/// **NULL:** no pointers.
/// **Threads:** safe from any thread.
/// **Returns:** the ABI version, e.g. `TM_ABI_VERSION`.
#[unsafe(no_mangle)]
pub extern "C" fn tm_abi_version() -> u32 {
    ABI_VERSION
}
