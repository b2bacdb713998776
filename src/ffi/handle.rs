//! The one place where raw pointers from C become Rust values: the engine
//! handle, versioned structs, byte and string arguments, outputs and error
//! buffers. Every entry point goes through these helpers, so each rule of
//! the C API (README "C API conventions") is written once:
//!
//! - a handle is a `Box<tm_engine>` made by [`into_handle`], borrowed with
//!   [`engine_ref`] (NULL → `TM_RESULT_NULL_ARGUMENT`) and freed once with
//!   [`free_handle`];
//! - a struct that starts with `struct_size` is read with [`read_versioned`],
//!   which reads the size alone first and refuses a struct older than ours;
//! - strings and byte ranges come as pointer + length ([`str_arg`],
//!   [`bytes_arg`], [`bytes_or_empty`], [`buf_mut`]);
//! - outputs are checked on entry ([`Out`]) and written only on success;
//!   text goes into caller buffers NUL-terminated ([`ErrBuf`],
//!   [`string_out`]).
//!
//! Each `unsafe fn` here states what its caller must guarantee; the entry
//! points pass that on to the host in their own `# Safety` sections.

use super::tm_result;
use crate::config::ConfigError;
use crate::engine::Engine;
use std::ffi::c_char;
use std::ptr::NonNull;

/// An engine: one configuration, its snapshot and its health state.
pub struct tm_engine {
    engine: Engine,
}

impl tm_engine {
    /// The engine behind a handle (for the C API's unit tests).
    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Moves `engine` to the heap and hands out the pointer C holds. The
/// pointer owns the engine until [`free_handle`] takes it back.
pub(crate) fn into_handle(engine: Engine) -> *mut tm_engine {
    Box::into_raw(Box::new(tm_engine { engine }))
}

/// [`into_handle`], as a pointer known not to be NULL.
pub(crate) fn into_live_handle(engine: Engine) -> NonNull<tm_engine> {
    NonNull::from(Box::leak(Box::new(tm_engine { engine })))
}

/// Borrows the engine behind a handle; NULL is `TM_RESULT_NULL_ARGUMENT`.
///
/// # Safety
/// `handle` is NULL or came from [`into_handle`] and has not been freed;
/// it stays live for `'a` (the C side promises no `tm_engine_free` while
/// a call on the engine runs).
pub(crate) unsafe fn engine_ref<'a>(handle: *const tm_engine) -> Result<&'a Engine, tm_result> {
    // SAFETY: NULL or live, per this function's contract.
    match unsafe { handle.as_ref() } {
        Some(h) => Ok(&h.engine),
        None => Err(tm_result::NullArgument),
    }
}

/// The engine behind a handle known to be live (not NULL).
///
/// # Safety
/// `handle` came from [`into_handle`] and is not freed during `'a`.
pub(crate) unsafe fn engine_of<'a>(handle: NonNull<tm_engine>) -> &'a Engine {
    // SAFETY: live, per this function's contract.
    unsafe { &handle.as_ref().engine }
}

/// Takes back a handle from [`into_handle`] and drops the engine (which
/// stops and joins its threads). NULL does nothing.
///
/// # Safety
/// `handle` is NULL or came from [`into_handle`], has not been freed, and
/// nothing else uses it during or after this call.
pub(crate) unsafe fn free_handle(handle: *mut tm_engine) {
    if !handle.is_null() {
        // SAFETY: made by Box::into_raw in into_handle; the caller gives up
        // its only owner.
        drop(unsafe { Box::from_raw(handle) });
    }
}

/// A C struct whose first field is `struct_size: u32`, the size the host
/// compiled it with; fields may be added at the end in later versions.
///
/// # Safety
/// Implement only for `#[repr(C)]`, `Copy` structs whose first field is
/// `struct_size: u32` (the [`versioned!`] macro checks it at compile time).
pub(crate) unsafe trait Versioned: Copy {}

/// Implements [`Versioned`], checking at compile time that `struct_size`
/// is a `u32` at offset 0.
macro_rules! versioned {
    ($($t:ty),+ $(,)?) => {$(
        const _: () = assert!(std::mem::offset_of!($t, struct_size) == 0);
        // SAFETY: #[repr(C)] with `struct_size: u32` first (checked above
        // for the offset; the field's type is checked by the next line).
        unsafe impl $crate::ffi::handle::Versioned for $t {}
        const _: fn(&$t) -> u32 = |s| s.struct_size;
    )+};
}
pub(crate) use versioned;

/// Reads a versioned struct: NULL is `TM_RESULT_NULL_ARGUMENT`; a
/// `struct_size` smaller than ours is `TM_RESULT_STRUCT_TOO_SMALL` (and
/// then only the size was read). Larger structs from newer hosts are fine:
/// the fields we know are read, the rest ignored.
///
/// # Safety
/// `p` is NULL or points at a readable struct of at least `struct_size`
/// bytes (alignment is not required).
pub(crate) unsafe fn read_versioned<T: Versioned>(p: *const T) -> Result<T, tm_result> {
    if p.is_null() {
        return Err(tm_result::NullArgument);
    }
    // SAFETY: non-NULL; `struct_size` is a u32 at offset 0 (Versioned).
    let size = unsafe { p.cast::<u32>().read_unaligned() } as usize;
    if size < std::mem::size_of::<T>() {
        return Err(tm_result::StructTooSmall);
    }
    // SAFETY: the host says `size` bytes are readable, which covers T.
    Ok(unsafe { p.read_unaligned() })
}

/// Borrows `len` bytes at `ptr`; NULL stands for no bytes and is allowed
/// only with `len == 0`. A length over `isize::MAX` is `TM_RESULT_BAD_LENGTH`.
///
/// # Safety
/// `ptr` is NULL or points at `len` bytes readable for `'a`.
pub(crate) unsafe fn bytes_or_empty<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], tm_result> {
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
    // SAFETY: non-NULL, `len` readable bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `len` bytes at `ptr`, which must not be NULL (even with `len == 0`).
///
/// # Safety
/// As [`bytes_or_empty`].
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], tm_result> {
    if ptr.is_null() {
        return Err(tm_result::NullArgument);
    }
    // SAFETY: forwarded contract.
    unsafe { bytes_or_empty(ptr, len) }
}

/// Borrows a UTF-8 string given as pointer + length (no NUL needed); NULL
/// is `TM_RESULT_NULL_ARGUMENT`, bad UTF-8 `TM_RESULT_INVALID_UTF8`.
///
/// # Safety
/// As [`bytes_or_empty`].
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, tm_result> {
    // SAFETY: forwarded contract.
    let b = unsafe { bytes_arg(ptr.cast(), len) }?;
    std::str::from_utf8(b).map_err(|_| tm_result::InvalidUtf8)
}

/// As [`str_arg`], for an optional string: NULL is `None`.
///
/// # Safety
/// As [`bytes_or_empty`].
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    len: usize,
) -> Result<Option<&'a str>, tm_result> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { str_arg(ptr, len) }.map(Some)
}

/// Borrows a caller buffer of `len` writable bytes; NULL is
/// `TM_RESULT_NULL_ARGUMENT`, a length over `isize::MAX` `TM_RESULT_BAD_LENGTH`.
///
/// # Safety
/// `ptr` is NULL or points at `len` bytes writable for `'a`, which nothing
/// else reads or writes meanwhile.
pub(crate) unsafe fn buf_mut<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8], tm_result> {
    if ptr.is_null() {
        return Err(tm_result::NullArgument);
    }
    if len > isize::MAX as usize {
        return Err(tm_result::BadLength);
    }
    // SAFETY: non-NULL, `len` writable bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// An output pointer checked on entry, written (at most once) on success.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks a required output: NULL is `TM_RESULT_NULL_ARGUMENT`.
    ///
    /// # Safety
    /// `p` is NULL or points at a `T` the caller may overwrite (alignment
    /// is not required) until the entry point returns.
    pub(crate) unsafe fn new(p: *mut T) -> Result<Out<T>, tm_result> {
        NonNull::new(p).map(Out).ok_or(tm_result::NullArgument)
    }

    /// Checks an optional output: NULL is `None` (nothing will be written).
    ///
    /// # Safety
    /// As [`Out::new`].
    pub(crate) unsafe fn optional(p: *mut T) -> Option<Out<T>> {
        NonNull::new(p).map(Out)
    }

    /// Writes the output.
    pub(crate) fn write(self, v: T) {
        // SAFETY: non-NULL and writable, promised to `Out::new`.
        unsafe { self.0.as_ptr().write_unaligned(v) }
    }
}

/// A caller's error buffer: NULL or `len` writable bytes; messages go in
/// truncated (at a UTF-8 boundary) and always NUL-terminated.
pub(crate) struct ErrBuf {
    ptr: *mut c_char,
    len: usize,
}

impl ErrBuf {
    /// Takes an error buffer argument; NULL or a zero length means "no buffer".
    ///
    /// # Safety
    /// `ptr` is NULL or points at `len` bytes the caller may overwrite
    /// until the entry point returns.
    pub(crate) unsafe fn new(ptr: *mut c_char, len: usize) -> ErrBuf {
        ErrBuf { ptr, len }
    }

    /// Copies `msg` in, truncated, with a NUL.
    pub(crate) fn write(&self, msg: &str) {
        if self.ptr.is_null() || self.len == 0 {
            return;
        }
        let mut n = msg.len().min(self.len - 1);
        while n > 0 && !msg.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: `len` writable bytes (ErrBuf::new), n + 1 ≤ len.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), self.ptr.cast::<u8>(), n);
            *self.ptr.add(n) = 0;
        }
    }

    /// Writes a configuration error and gives `TM_RESULT_CONFIG_INVALID`.
    pub(crate) fn config_invalid(&self, err: &ConfigError) -> tm_result {
        self.write(&err.to_string());
        tm_result::ConfigInvalid
    }
}

/// Copies `text` and a NUL into a caller buffer. `*written_out` is the
/// length without the NUL, also when the buffer is too small
/// (`TM_RESULT_BUFFER_TOO_SMALL`; snprintf's rule, the one output written
/// on failure).
///
/// # Safety
/// `buf` is NULL or points at `buf_len` writable bytes; `written_out` is
/// NULL or points at a writable `size_t`.
pub(crate) unsafe fn string_out(
    text: &str,
    buf: *mut c_char,
    buf_len: usize,
    written_out: *mut usize,
) -> Result<(), tm_result> {
    // SAFETY: forwarded contract.
    let written = unsafe { Out::new(written_out) }?;
    if buf.is_null() {
        return Err(tm_result::NullArgument);
    }
    written.write(text.len());
    if text.len() >= buf_len {
        return Err(tm_result::BufferTooSmall);
    }
    // SAFETY: `buf_len` writable bytes, of which we take text.len() + 1.
    let dst = unsafe { buf_mut(buf.cast(), text.len() + 1) }?;
    if let Some((nul, body)) = dst.split_last_mut() {
        body.copy_from_slice(text.as_bytes());
        *nul = 0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::lookup::tm_query;

    fn query(struct_size: u32) -> tm_query {
        let none = crate::ffi::lookup::tm_address {
            family: 0,
            bytes: [0; 16],
        };
        tm_query {
            struct_size,
            qtype: 1,
            ecs_source_prefix: 0,
            qname: std::ptr::null(),
            qname_len: 0,
            client: none,
            ecs: none,
        }
    }

    #[test]
    fn read_versioned_checks_null_and_size() {
        let full = query(std::mem::size_of::<tm_query>() as u32);
        let small = query(8);
        // SAFETY: NULL, or live structs of the full size.
        unsafe {
            assert_eq!(
                read_versioned::<tm_query>(std::ptr::null()).err(),
                Some(tm_result::NullArgument)
            );
            assert_eq!(
                read_versioned(&small).err(),
                Some(tm_result::StructTooSmall)
            );
            assert_eq!(read_versioned(&full).map(|q| q.qtype), Ok(1));
        }
    }

    #[test]
    fn string_out_follows_snprintf() {
        let mut buf = [0x55 as c_char; 6];
        let mut written = 0usize;
        // SAFETY: a live buffer of buf.len() bytes and a live output.
        let r = unsafe { string_out("hello!", buf.as_mut_ptr(), buf.len(), &mut written) };
        assert_eq!((r, written), (Err(tm_result::BufferTooSmall), 6));
        assert_eq!(buf[0], 0x55, "nothing but the length is written on failure");
        // SAFETY: as above.
        let r = unsafe { string_out("hello", buf.as_mut_ptr(), buf.len(), &mut written) };
        assert_eq!((r, written), (Ok(()), 5));
        assert_eq!(buf.map(|c| c as u8), *b"hello\0");
    }

    #[test]
    fn errbuf_truncates_at_a_char_boundary_with_a_nul() {
        let mut buf = [0x55 as c_char; 4];
        // SAFETY: a live buffer of buf.len() bytes.
        let e = unsafe { ErrBuf::new(buf.as_mut_ptr(), buf.len()) };
        e.write("aé€");
        assert_eq!(buf.map(|c| c as u8)[..4], *b"a\xc3\xa9\0");
        // SAFETY: NULL is "no buffer".
        unsafe { ErrBuf::new(std::ptr::null_mut(), 10) }.write("ignored");
    }
}
