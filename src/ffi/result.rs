//! Result codes of the C API. Grouped by area, never renumbered; retired
//! codes stay as comments.

use std::ffi::c_char;

/// The result of every fallible `tm_*` call. `TM_RESULT_OK` is 0.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tm_result {
    /// Success.
    Ok = 0,
    // 100..: bad arguments.
    /// A required pointer was NULL.
    NullArgument = 100,
    /// A string was not valid UTF-8.
    InvalidUtf8 = 101,
    /// A name is longer than 255 octets in wire form.
    NameTooLong = 102,
    /// A label of a name is longer than 63 octets.
    LabelTooLong = 103,
    /// A name has an empty label (`a..b`).
    BadName = 104,
    /// An address family other than `TM_FAMILY_NONE`, `TM_FAMILY_IPV4`, `TM_FAMILY_IPV6`.
    UnknownFamily = 105,
    /// A prefix length beyond the family's bits.
    BadPrefix = 106,
    /// `struct_size` is smaller than the fields this version requires.
    StructTooSmall = 107,
    /// The output buffer is too small.
    BufferTooSmall = 108,
    /// No such profile or endpoint.
    NotFound = 109,
    /// A value outside its range (e.g. an unknown status).
    BadValue = 110,
    /// A length too large to be real.
    BadLength = 111,
    // 200..: configuration.
    /// The configuration (or a data file it names) is invalid; see errbuf.
    ConfigInvalid = 200,
    // 300..: wire format.
    /// Not a DNS query (too short, or a response): drop it, send nothing.
    NotAQuery = 300,
    // 900..: runtime.
    /// A panic was caught at the boundary; the call had no effect.
    Panic = 900,
    /// The record callback asked to stop.
    CallbackAborted = 901,
    /// The time given ran out (e.g. `tm_engine_wait_ready`).
    Timeout = 902,
}

impl tm_result {
    pub(crate) fn text(code: u32) -> &'static [u8] {
        match code {
            0 => b"ok\0",
            100 => b"a required pointer was NULL\0",
            101 => b"a string is not valid UTF-8\0",
            102 => b"a name is longer than 255 octets\0",
            103 => b"a label is longer than 63 octets\0",
            104 => b"a name has an empty label\0",
            105 => b"unknown address family\0",
            106 => b"prefix length out of range for the family\0",
            107 => b"struct_size is too small for this version\0",
            108 => b"the output buffer is too small\0",
            109 => b"no such profile or endpoint\0",
            110 => b"value out of range\0",
            111 => b"length out of range\0",
            200 => b"the configuration is invalid\0",
            300 => b"not a DNS query; drop it\0",
            900 => b"internal error (panic caught)\0",
            901 => b"the record callback stopped the lookup\0",
            902 => b"timed out\0",
            _ => b"unknown result code\0",
        }
    }
}

/// The static meaning of a result code (unknown codes get a generic text).
///
/// **Ownership:** the string is the library's; never free it.
/// **NULL:** never returns NULL.
/// **Threads:** safe from any thread.
/// **Lifetime:** static: valid as long as the library is loaded.
/// **Returns:** a NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn tm_result_str(result: u32) -> *const c_char {
    tm_result::text(result).as_ptr().cast()
}
