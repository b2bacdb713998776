//! `tm_engine_*`: create, free, reload, look up, answer wire queries, set
//! health. The engine handle is a `Box<tm_engine>`: one owner, freed by
//! `tm_engine_free`; every other call takes `const tm_engine *` and may run
//! concurrently with any call except `tm_engine_free`.

use super::{boundary, bytes, install_panic_hook, str_arg, tm_result, write_errbuf};
use crate::answer::records::type_name_c;
use crate::answer::wire::WireError;
use crate::engine::QueryError;
use crate::engine::{Engine, LogFn, LogLevel, Query};
use crate::health::{AdminState, MonitorStatus};
use crate::query::NameError;
use std::ffi::{c_char, c_void};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Size of an error buffer that holds any message in full.
#[allow(dead_code)] // exported to C through the header
pub const TM_ERRBUF_SIZE: usize = 1024;

/// No address.
pub const TM_FAMILY_NONE: u32 = 0;
/// IPv4: the first 4 bytes of `tm_address.bytes`.
pub const TM_FAMILY_IPV4: u32 = 4;
/// IPv6: all 16 bytes of `tm_address.bytes`.
pub const TM_FAMILY_IPV6: u32 = 6;

/// `tm_wire_request.transport`: UDP (size limit 512 or the EDNS payload size).
pub const TM_TRANSPORT_UDP: u32 = 0;
/// `tm_wire_request.transport`: TCP (size limit: the buffer, at most 65535).
pub const TM_TRANSPORT_TCP: u32 = 1;

/// `tm_record.section`: answer section (owner: the query name).
pub const TM_SECTION_ANSWER: u32 = 1;
/// `tm_record.section`: authority section (owner: the zone apex).
pub const TM_SECTION_AUTHORITY: u32 = 2;

/// `tm_lookup_info.flags`: the name is in one of our zones.
pub const TM_LOOKUP_AUTHORITATIVE: u32 = 1;
/// `tm_lookup_info.flags`: the name is under none of our zones (rcode REFUSED);
/// a host with other data should look there.
pub const TM_LOOKUP_NOT_OURS: u32 = 2;

/// Monitor status for `tm_engine_set_monitor_status`: no result yet (served).
pub const TM_STATUS_CHECKING: u32 = 0;
/// Monitor status: probes pass.
pub const TM_STATUS_ONLINE: u32 = 1;
/// Monitor status: probes fail (not served unless every endpoint is degraded).
pub const TM_STATUS_DEGRADED: u32 = 2;

/// Log levels passed to `tm_log_fn`.
pub const TM_LOG_ERROR: u32 = 1;
/// Warning.
pub const TM_LOG_WARN: u32 = 2;
/// Information.
pub const TM_LOG_INFO: u32 = 3;
/// Debugging.
pub const TM_LOG_DEBUG: u32 = 4;

/// An IP address: `family` is `TM_FAMILY_NONE`, `TM_FAMILY_IPV4` or
/// `TM_FAMILY_IPV6`; `bytes` in network order.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tm_address {
    /// `TM_FAMILY_*`.
    pub family: u32,
    /// Address bytes (4 used for IPv4).
    pub bytes: [u8; 16],
}

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

/// One query for `tm_engine_lookup`. Start with `struct_size = sizeof(tm_query)`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tm_query {
    /// `sizeof(tm_query)` as the host compiled it.
    pub struct_size: u32,
    /// Query type (1 = A, 28 = AAAA, 255 = ANY, …).
    pub qtype: u16,
    /// EDNS Client Subnet source prefix length; 0 = no ECS.
    pub ecs_source_prefix: u8,
    /// Query name, presentation form (case and trailing dot do not matter); not NUL-terminated.
    pub qname: *const c_char,
    /// Octets at `qname`.
    pub qname_len: usize,
    /// The address the query came from (`TM_FAMILY_NONE` if unknown).
    pub client: tm_address,
    /// ECS address (used when `ecs_source_prefix > 0`).
    pub ecs: tm_address,
}

/// One record handed to `tm_record_fn`. Pointers are valid during the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tm_record {
    /// `TM_SECTION_ANSWER` or `TM_SECTION_AUTHORITY`.
    pub section: u32,
    /// Type code.
    pub rtype: u16,
    /// Type mnemonic (`"CNAME"`), NUL-terminated, static.
    pub type_name: *const c_char,
    /// Owner name, absolute (`"www.tm.example."`), NUL-terminated.
    pub owner: *const c_char,
    /// Length of `owner` without the NUL.
    pub owner_len: usize,
    /// TTL in seconds.
    pub ttl: u32,
    /// RDATA in presentation form, names absolute, NUL-terminated (BIND's `putrr` takes it as is).
    pub rdata_text: *const c_char,
    /// Length of `rdata_text` without the NUL.
    pub rdata_text_len: usize,
    /// RDATA in wire form, names uncompressed.
    pub rdata_wire: *const u8,
    /// Octets at `rdata_wire`.
    pub rdata_wire_len: usize,
}

/// Receives records; return 0 to go on, anything else to stop (the lookup
/// then returns `TM_RESULT_CALLBACK_ABORTED`).
pub type tm_record_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, record: *const tm_record) -> i32>;

/// What a lookup concluded.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct tm_lookup_info {
    /// DNS RCODE: 0 NOERROR (NODATA when `answer_count` is 0), 3 NXDOMAIN, 5 REFUSED (not ours).
    pub rcode: u32,
    /// `TM_LOOKUP_*` bits.
    pub flags: u32,
    /// ECS scope prefix length the decision depended on.
    pub scope_prefix: u32,
    /// Records in the answer section.
    pub answer_count: u32,
    /// Records in the authority section.
    pub authority_count: u32,
}

/// A DNS message to answer with `tm_engine_answer`. Start with
/// `struct_size = sizeof(tm_wire_request)`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tm_wire_request {
    /// `sizeof(tm_wire_request)` as the host compiled it.
    pub struct_size: u32,
    /// `TM_TRANSPORT_UDP` or `TM_TRANSPORT_TCP`.
    pub transport: u32,
    /// The query message (no TCP length prefix).
    pub query: *const u8,
    /// Octets at `query`.
    pub query_len: usize,
    /// The address the query came from.
    pub client: tm_address,
}

/// An engine: one configuration, its snapshot and its health state.
pub struct tm_engine {
    engine: Engine,
}

impl tm_engine {
    pub(crate) fn from_engine(engine: Engine) -> tm_engine {
        tm_engine { engine }
    }

    /// The engine behind a handle (for the C API's unit tests).
    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

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

fn address(a: &tm_address) -> Result<Option<IpAddr>, tm_result> {
    match a.family {
        TM_FAMILY_NONE => Ok(None),
        TM_FAMILY_IPV4 => Ok(Some(IpAddr::V4(Ipv4Addr::new(
            a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3],
        )))),
        TM_FAMILY_IPV6 => Ok(Some(IpAddr::V6(Ipv6Addr::from(a.bytes)))),
        _ => Err(tm_result::UnknownFamily),
    }
}

unsafe fn host_log(host: *const tm_host) -> Result<Option<LogFn>, tm_result> {
    if host.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, the caller promises a readable tm_host; read only struct_size first.
    let size = unsafe { std::ptr::addr_of!((*host).struct_size).read_unaligned() } as usize;
    if size < std::mem::size_of::<tm_host>() {
        return Err(tm_result::StructTooSmall);
    }
    // SAFETY: the whole struct is covered by struct_size.
    let h = unsafe { host.read_unaligned() };
    Ok(h.log.map(|f| {
        let hl = HostLog {
            userdata: h.userdata,
            f,
        };
        Box::new(move |level: LogLevel, msg: &str| hl.emit(level, msg)) as LogFn
    }))
}

unsafe fn finish_new(
    r: Result<Engine, crate::ConfigError>,
    errbuf: *mut c_char,
    errbuf_len: usize,
    engine_out: *mut *mut tm_engine,
) -> tm_result {
    match r {
        Ok(engine) => {
            let b = Box::new(tm_engine { engine });
            // SAFETY: checked non-NULL by the caller of finish_new.
            unsafe { *engine_out = Box::into_raw(b) };
            tm_result::Ok
        }
        Err(e) => {
            // SAFETY: forwarded contract.
            unsafe { config_invalid(&e, errbuf, errbuf_len) }
        }
    }
}

/// Creates an engine from a TOML config file: parse, validate, compile.
///
/// `config_path` is `config_path_len` octets of UTF-8 (no NUL needed).
/// `host` may be NULL (no logging). On failure, `errbuf` (if not NULL)
/// receives a NUL-terminated message naming file:line:col and key path,
/// truncated to `errbuf_len` (`TM_ERRBUF_SIZE` always suffices).
///
/// **Ownership:** on `TM_RESULT_OK` the caller owns `*engine_out`; free it
/// with `tm_engine_free`. On failure `*engine_out` is left untouched.
/// **NULL:** `config_path` and `engine_out` must not be NULL.
/// **Threads:** safe from any thread.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_INVALID_UTF8`,
/// `TM_RESULT_STRUCT_TOO_SMALL`, `TM_RESULT_CONFIG_INVALID`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_new(
    config_path: *const c_char,
    config_path_len: usize,
    host: *const tm_host,
    errbuf: *mut c_char,
    errbuf_len: usize,
    engine_out: *mut *mut tm_engine,
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
        // SAFETY: checked inside.
        let log = match unsafe { host_log(host) } {
            Ok(l) => l,
            Err(e) => return e,
        };
        // SAFETY: checked above.
        unsafe {
            finish_new(
                Engine::from_file_with_log(Path::new(path), log),
                errbuf,
                errbuf_len,
                engine_out,
            )
        }
    })
}

/// Creates an engine from TOML text. Relative paths in it (latency table,
/// GeoIP database) are taken from `base_dir` (`base_dir_len` octets), or the
/// current directory when `base_dir` is NULL.
///
/// **Ownership:** as `tm_engine_new`. **NULL:** `toml` and `engine_out` must
/// not be NULL; `host`, `base_dir` and `errbuf` may be.
/// **Threads:** safe from any thread.
/// **Returns:** as `tm_engine_new`.
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
    boundary(tm_result::Panic, || {
        install_panic_hook();
        if engine_out.is_null() {
            return tm_result::NullArgument;
        }
        // SAFETY: pointer + length from the caller.
        let text = match unsafe { str_arg(toml, toml_len) } {
            Ok(t) => t,
            Err(e) => return e,
        };
        let base = if base_dir.is_null() {
            None
        } else {
            // SAFETY: pointer + length from the caller.
            match unsafe { str_arg(base_dir, base_dir_len) } {
                Ok(b) => Some(Path::new(b)),
                Err(e) => return e,
            }
        };
        // SAFETY: checked inside.
        let log = match unsafe { host_log(host) } {
            Ok(l) => l,
            Err(e) => return e,
        };
        // SAFETY: checked above.
        unsafe {
            finish_new(
                Engine::from_toml_with_log(text, base, log),
                errbuf,
                errbuf_len,
                engine_out,
            )
        }
    })
}

/// Frees an engine, after stopping and joining every thread it started.
///
/// **NULL:** calling with NULL is fine. Freeing twice is not.
/// **Threads:** no other call on this engine may be running or start.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_free(engine: *mut tm_engine) {
    boundary((), || {
        if !engine.is_null() {
            // SAFETY: created by Box::into_raw in tm_engine_new*; the caller gives up ownership.
            drop(unsafe { Box::from_raw(engine) });
        }
    })
}

/// Re-reads the configuration (and the data files it names) and swaps it in
/// atomically. On failure nothing changes: the previous configuration keeps
/// serving and `errbuf` says why.
///
/// **NULL:** `engine` must not be NULL; `errbuf` may be.
/// **Threads:** safe concurrently with lookups; reloads are serialised.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_CONFIG_INVALID`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_reload(
    engine: *const tm_engine,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: a live engine from tm_engine_new*, or NULL.
        let Some(e) = (unsafe { engine.as_ref() }) else {
            return tm_result::NullArgument;
        };
        match e.engine.reload() {
            Ok(()) => tm_result::Ok,
            Err(err) => {
                // SAFETY: forwarded contract.
                unsafe { config_invalid(&err, errbuf, errbuf_len) }
            }
        }
    })
}

/// Runs a per-endpoint call: checks the engine and the (profile, endpoint)
/// names, then applies `f`; "no such endpoint" becomes `TM_RESULT_NOT_FOUND`.
unsafe fn endpoint_call(
    engine: *const tm_engine,
    profile: *const c_char,
    profile_len: usize,
    endpoint: *const c_char,
    endpoint_len: usize,
    f: impl FnOnce(&Engine, &str, &str) -> Result<Result<(), String>, tm_result>,
) -> tm_result {
    // SAFETY: a live engine, or NULL.
    let Some(e) = (unsafe { engine.as_ref() }) else {
        return tm_result::NullArgument;
    };
    // SAFETY: pointer + length from the caller.
    let (p, ep) = match unsafe {
        (
            str_arg(profile, profile_len),
            str_arg(endpoint, endpoint_len),
        )
    } {
        (Ok(p), Ok(ep)) => (p, ep),
        (Err(x), _) | (_, Err(x)) => return x,
    };
    match f(&e.engine, p, ep) {
        Ok(Ok(())) => tm_result::Ok,
        Ok(Err(_)) => tm_result::NotFound,
        Err(r) => r,
    }
}

/// Writes a configuration error into `errbuf` and returns `TM_RESULT_CONFIG_INVALID`.
pub(crate) unsafe fn config_invalid(
    err: &crate::ConfigError,
    errbuf: *mut c_char,
    errbuf_len: usize,
) -> tm_result {
    // SAFETY: forwarded contract.
    unsafe { write_errbuf(errbuf, errbuf_len, &err.to_string()) };
    tm_result::ConfigInvalid
}

/// Copies `text` and a NUL into a caller buffer; `*written_out` is the
/// length without the NUL, also when the buffer is too small (snprintf's rule).
unsafe fn write_string_out(
    text: &str,
    buf: *mut c_char,
    buf_len: usize,
    written_out: *mut usize,
) -> tm_result {
    if buf.is_null() || written_out.is_null() {
        return tm_result::NullArgument;
    }
    // SAFETY: non-NULL output.
    unsafe { written_out.write_unaligned(text.len()) };
    if text.len() >= buf_len {
        return tm_result::BufferTooSmall;
    }
    // SAFETY: `buf_len` writable bytes; len + 1 ≤ buf_len.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    tm_result::Ok
}

fn name_error(e: QueryError) -> tm_result {
    match e {
        QueryError::Name(NameError::EmptyLabel | NameError::BadEscape) => tm_result::BadName,
        QueryError::Name(NameError::LabelTooLong) => tm_result::LabelTooLong,
        QueryError::Name(NameError::NameTooLong) => tm_result::NameTooLong,
        QueryError::BadEcsPrefix => tm_result::BadPrefix,
    }
}

/// Answers one query: the records go to `record_fn` (answer section first,
/// then authority), the outcome to `*info_out`. Allocates nothing, takes no
/// lock.
///
/// **NULL:** `engine`, `query` and `query->qname` must not be NULL;
/// `record_fn` may be NULL (counts only); `info_out` may be NULL.
/// **Lifetime:** record pointers are valid during the callback only.
/// **Threads:** safe from any number of threads at once.
/// **Returns:** `TM_RESULT_OK` (also for NXDOMAIN, NODATA and not-ours: see
/// `info_out->rcode`), `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_STRUCT_TOO_SMALL`,
/// `TM_RESULT_INVALID_UTF8`, `TM_RESULT_BAD_NAME`, `TM_RESULT_LABEL_TOO_LONG`,
/// `TM_RESULT_NAME_TOO_LONG`, `TM_RESULT_UNKNOWN_FAMILY`, `TM_RESULT_BAD_PREFIX`,
/// `TM_RESULT_CALLBACK_ABORTED`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_lookup(
    engine: *const tm_engine,
    query: *const tm_query,
    record_fn: tm_record_fn,
    userdata: *mut c_void,
    info_out: *mut tm_lookup_info,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: a live engine, or NULL.
        let Some(e) = (unsafe { engine.as_ref() }) else {
            return tm_result::NullArgument;
        };
        if query.is_null() {
            return tm_result::NullArgument;
        }
        // SAFETY: non-NULL; read struct_size before the rest.
        let size = unsafe { std::ptr::addr_of!((*query).struct_size).read_unaligned() } as usize;
        if size < std::mem::size_of::<tm_query>() {
            return tm_result::StructTooSmall;
        }
        // SAFETY: covered by struct_size.
        let q = unsafe { query.read_unaligned() };
        // SAFETY: pointer + length from the caller.
        let name = match unsafe { bytes(q.qname.cast(), q.qname_len) } {
            Ok(n) if !q.qname.is_null() => n,
            Ok(_) => return tm_result::NullArgument,
            Err(e) => return e,
        };
        if std::str::from_utf8(name).is_err() {
            return tm_result::InvalidUtf8;
        }
        let client = match address(&q.client) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let ecs = if q.ecs_source_prefix > 0 {
            match address(&q.ecs) {
                // The prefix is checked against the family by the engine.
                Ok(Some(a)) => Some((a, q.ecs_source_prefix)),
                Ok(None) => return tm_result::UnknownFamily,
                Err(e) => return e,
            }
        } else {
            None
        };
        let rq = Query {
            name,
            qtype: q.qtype,
            client,
            ecs,
        };
        let r = e.engine.lookup(&rq, |a, canon| {
            let mut info = tm_lookup_info {
                rcode: a.rcode as u32,
                flags: if a.authoritative {
                    TM_LOOKUP_AUTHORITATIVE
                } else {
                    0
                } | if a.rcode == crate::Rcode::Refused {
                    TM_LOOKUP_NOT_OURS
                } else {
                    0
                },
                scope_prefix: u32::from(a.scope_prefix),
                answer_count: a.answer.len() as u32,
                authority_count: a.authority.len() as u32,
            };
            if let Some(cb) = record_fn {
                let mut owner = [0u8; 256];
                let olen = canon.write_fqdn(&mut owner);
                // NUL after the dot (olen ≤ 254 < 256).
                if let Some(b) = owner.get_mut(olen) {
                    *b = 0;
                }
                let emit =
                    |section: u32, owner: *const c_char, owner_len: usize, r: &crate::Rec| {
                        let rec = tm_record {
                            section,
                            rtype: r.rtype,
                            type_name: type_name_c(r.rtype).as_ptr().cast(),
                            owner,
                            owner_len,
                            ttl: r.ttl,
                            rdata_text: r.text_c.as_ptr().cast(),
                            rdata_text_len: r.text.len(),
                            rdata_wire: r.wire.as_ptr(),
                            rdata_wire_len: r.wire.len(),
                        };
                        // SAFETY: the host's callback with a record valid for the call.
                        unsafe { cb(userdata, &rec) }
                    };
                for r in a.answer.iter() {
                    if emit(TM_SECTION_ANSWER, owner.as_ptr().cast(), olen, r) != 0 {
                        return Err(info);
                    }
                }
                if let Some(z) = a.zone {
                    // Zone owner with NUL: stored as `name.` — build on the stack.
                    let mut zo = [0u8; 256];
                    let zl = z.owner.len().min(254);
                    zo[..zl].copy_from_slice(&z.owner.as_bytes()[..zl]);
                    for r in a.authority.iter() {
                        if emit(TM_SECTION_AUTHORITY, zo.as_ptr().cast(), zl, r) != 0 {
                            return Err(info);
                        }
                    }
                }
            }
            info.flags |= 0;
            Ok(info)
        });
        match r {
            Err(e) => name_error(e),
            Ok(Err(info)) => {
                if !info_out.is_null() {
                    // SAFETY: non-NULL output from the caller.
                    unsafe { info_out.write_unaligned(info) };
                }
                tm_result::CallbackAborted
            }
            Ok(Ok(info)) => {
                if !info_out.is_null() {
                    // SAFETY: non-NULL output from the caller.
                    unsafe { info_out.write_unaligned(info) };
                }
                tm_result::Ok
            }
        }
    })
}

/// Answers a DNS query message: writes the complete response (header,
/// question, answer, authority, OPT with the ECS option echoed with its
/// scope) into `buf`. Names under none of our zones get REFUSED; malformed
/// queries get FORMERR; a response too large for the transport is sent
/// truncated (TC). Allocates nothing, takes no lock.
///
/// **NULL:** `engine`, `request`, `request->query`, `buf` and `written_out`
/// must not be NULL.
/// **Threads:** safe from any number of threads at once.
/// Over UDP the reply is at most the smaller of the query's EDNS payload
/// size and 1232 octets (512 without EDNS), else it is truncated (TC); ANY
/// gets one RRset (RFC 8482). The reply is always a whole message: when the
/// buffer cannot hold even the header, question and OPT record, nothing is
/// written and the call fails.
///
/// **Returns:** `TM_RESULT_OK` with `*written_out` set; `TM_RESULT_NOT_A_QUERY`
/// (send nothing); `TM_RESULT_BUFFER_TOO_SMALL` (use at least 512 octets);
/// `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_STRUCT_TOO_SMALL`,
/// `TM_RESULT_UNKNOWN_FAMILY`, `TM_RESULT_BAD_VALUE` (transport), `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_answer(
    engine: *const tm_engine,
    request: *const tm_wire_request,
    buf: *mut u8,
    buf_len: usize,
    written_out: *mut usize,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: a live engine, or NULL.
        let Some(e) = (unsafe { engine.as_ref() }) else {
            return tm_result::NullArgument;
        };
        if request.is_null() || buf.is_null() || written_out.is_null() {
            return tm_result::NullArgument;
        }
        // SAFETY: non-NULL; read struct_size first.
        let size = unsafe { std::ptr::addr_of!((*request).struct_size).read_unaligned() } as usize;
        if size < std::mem::size_of::<tm_wire_request>() {
            return tm_result::StructTooSmall;
        }
        // SAFETY: covered by struct_size.
        let r = unsafe { request.read_unaligned() };
        if r.query.is_null() {
            return tm_result::NullArgument;
        }
        // SAFETY: pointer + length from the caller.
        let q = match unsafe { bytes(r.query, r.query_len) } {
            Ok(q) => q,
            Err(e) => return e,
        };
        let tcp = match r.transport {
            TM_TRANSPORT_UDP => false,
            TM_TRANSPORT_TCP => true,
            _ => return tm_result::BadValue,
        };
        let peer = match address(&r.client) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if buf_len > isize::MAX as usize {
            return tm_result::BadLength;
        }
        // SAFETY: the caller promises `buf_len` writable bytes at `buf`.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, buf_len) };
        match e.engine.resolve_wire(q, peer, tcp, out) {
            Ok(n) => {
                // SAFETY: non-NULL output.
                unsafe { written_out.write_unaligned(n) };
                tm_result::Ok
            }
            Err(WireError::Drop) => tm_result::NotAQuery,
            Err(WireError::BufferTooSmall) => tm_result::BufferTooSmall,
        }
    })
}

/// Sets the monitor status of one endpoint (`TM_STATUS_*`), as an external
/// monitor or a test would. Takes effect for the next query.
///
/// `profile` is the profile's name or full DNS name; both strings are
/// pointer + length UTF-8.
///
/// **NULL:** no pointer may be NULL.
/// **Threads:** safe concurrently with lookups.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_INVALID_UTF8`,
/// `TM_RESULT_NOT_FOUND`, `TM_RESULT_BAD_VALUE`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_set_monitor_status(
    engine: *const tm_engine,
    profile: *const c_char,
    profile_len: usize,
    endpoint: *const c_char,
    endpoint_len: usize,
    status: u32,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: the caller's pointers, checked inside.
        unsafe {
            endpoint_call(
                engine,
                profile,
                profile_len,
                endpoint,
                endpoint_len,
                |e, p, ep| {
                    let s = match status {
                        TM_STATUS_CHECKING => MonitorStatus::CheckingEndpoint,
                        TM_STATUS_ONLINE => MonitorStatus::Online,
                        TM_STATUS_DEGRADED => MonitorStatus::Degraded,
                        _ => return Err(tm_result::BadValue),
                    };
                    Ok(e.set_monitor_status(p, ep, s))
                },
            )
        }
    })
}

/// Admin state for `tm_engine_set_admin_state`: follow the configuration.
pub const TM_ADMIN_NONE: u32 = 0;
/// Admin state: served (and probed) even if the config disables it.
pub const TM_ADMIN_ENABLED: u32 = 1;
/// Admin state: not served, not probed (status Disabled).
pub const TM_ADMIN_DISABLED: u32 = 2;
/// Admin state: no new answers, still probed.
pub const TM_ADMIN_DRAIN: u32 = 3;

/// Overrides an endpoint at run time, without a reload: `TM_ADMIN_ENABLED`,
/// `TM_ADMIN_DISABLED`, `TM_ADMIN_DRAIN`, or `TM_ADMIN_NONE` to follow the
/// config again. Shown in the status report; kept across reloads.
///
/// **NULL:** no pointer may be NULL.
/// **Threads:** safe concurrently with lookups.
/// **Returns:** `TM_RESULT_OK`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_INVALID_UTF8`,
/// `TM_RESULT_NOT_FOUND`, `TM_RESULT_BAD_VALUE`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_set_admin_state(
    engine: *const tm_engine,
    profile: *const c_char,
    profile_len: usize,
    endpoint: *const c_char,
    endpoint_len: usize,
    state: u32,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: the caller's pointers, checked inside.
        unsafe {
            endpoint_call(
                engine,
                profile,
                profile_len,
                endpoint,
                endpoint_len,
                |e, p, ep| {
                    let s = match state {
                        TM_ADMIN_NONE => AdminState::None,
                        TM_ADMIN_ENABLED => AdminState::Enabled,
                        TM_ADMIN_DISABLED => AdminState::Disabled,
                        TM_ADMIN_DRAIN => AdminState::Drain,
                        _ => return Err(tm_result::BadValue),
                    };
                    Ok(e.set_admin_state(p, ep, s))
                },
            )
        }
    })
}

/// Waits until every probed endpoint has its first probe result (so a host
/// may hold answers until health is known), or `timeout_ms` passes.
///
/// **NULL:** `engine` must not be NULL.
/// **Threads:** safe from any thread; blocks the caller only.
/// **Returns:** `TM_RESULT_OK` when ready, `TM_RESULT_TIMEOUT`, `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_wait_ready(
    engine: *const tm_engine,
    timeout_ms: u32,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: a live engine, or NULL.
        let Some(e) = (unsafe { engine.as_ref() }) else {
            return tm_result::NullArgument;
        };
        if e.engine
            .wait_ready(std::time::Duration::from_millis(u64::from(timeout_ms)))
        {
            tm_result::Ok
        } else {
            tm_result::Timeout
        }
    })
}

/// Writes the status report — every profile and endpoint with its state,
/// admin override, last probe and counters; see docs/OPERATIONS.md — as
/// NUL-terminated JSON into `buf`.
///
/// **NULL:** `engine`, `buf` and `written_out` must not be NULL.
/// **Threads:** safe concurrently with lookups (it reads the monitor's
/// board under the monitor's lock, never the query path's data).
/// **Returns:** `TM_RESULT_OK` with `*written_out` = length without the NUL;
/// `TM_RESULT_BUFFER_TOO_SMALL` with `*written_out` = the length needed
/// without the NUL (the one output written on failure, as snprintf does);
/// `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_status_json(
    engine: *const tm_engine,
    buf: *mut c_char,
    buf_len: usize,
    written_out: *mut usize,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: a live engine, or NULL.
        let Some(e) = (unsafe { engine.as_ref() }) else {
            return tm_result::NullArgument;
        };
        // SAFETY: the caller's buffer and output.
        unsafe { write_string_out(&e.engine.status_json(), buf, buf_len, written_out) }
    })
}

/// Writes the last reload error (file:line:col, key path, what was
/// expected) as a NUL-terminated string into `buf` — empty when the last
/// reload succeeded or none failed yet. Reloads come from
/// `tm_engine_reload` and from the config-file watch.
///
/// **NULL:** `engine`, `buf` and `written_out` must not be NULL.
/// **Threads:** safe from any thread.
/// **Returns:** `TM_RESULT_OK` with `*written_out` = length without the NUL;
/// `TM_RESULT_BUFFER_TOO_SMALL` with `*written_out` = the length needed;
/// `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_last_reload_error(
    engine: *const tm_engine,
    buf: *mut c_char,
    buf_len: usize,
    written_out: *mut usize,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: a live engine, or NULL.
        let Some(e) = (unsafe { engine.as_ref() }) else {
            return tm_result::NullArgument;
        };
        let msg = e.engine.reload_stats().last_error.unwrap_or_default();
        // SAFETY: the caller's buffer and output.
        unsafe { write_string_out(&msg, buf, buf_len, written_out) }
    })
}

/// Answers the DNS query held in `buf` in place: `query_len` octets of
/// query, `buf_cap` octets of room; the reply overwrites the query. Made for
/// dnsdist's Lua FFI (the packet buffer of `dnsdist_ffi_dnsquestion_get_header`
/// after `dnsdist_ffi_dnsquestion_set_size(dq, cap)`), where the library
/// writes the whole reply: header, question, answer, authority, OPT with the
/// ECS option echoed with the scope the decision used. `client` is the raw
/// address `dnsdist_ffi_dnsquestion_get_remoteaddr` gives (4 or 16 octets).
/// The query may be a whole TCP message (up to 65,535 octets); only its
/// question is kept aside while the reply is written. Size limits and
/// failures as `tm_engine_answer`.
///
/// **NULL:** `engine`, `buf` and `written_out` must not be NULL; `client`
/// may be NULL with `client_len` 0.
/// **Threads:** safe from any number of threads at once.
/// **Returns:** `TM_RESULT_OK` with `*written_out` (the reply's length);
/// `TM_RESULT_NOT_A_QUERY`, `TM_RESULT_BUFFER_TOO_SMALL`, `TM_RESULT_BAD_LENGTH`
/// (`query_len` > `buf_cap` or > 65535), `TM_RESULT_UNKNOWN_FAMILY`
/// (`client_len` not 0, 4 or 16), `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_PANIC`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_answer_in_place(
    engine: *const tm_engine,
    buf: *mut u8,
    query_len: usize,
    buf_cap: usize,
    client: *const u8,
    client_len: usize,
    tcp: u32,
    written_out: *mut usize,
) -> tm_result {
    boundary(tm_result::Panic, || {
        // SAFETY: a live engine, or NULL.
        let Some(e) = (unsafe { engine.as_ref() }) else {
            return tm_result::NullArgument;
        };
        if buf.is_null() || written_out.is_null() {
            return tm_result::NullArgument;
        }
        if query_len > buf_cap || query_len > 65535 || buf_cap > isize::MAX as usize {
            return tm_result::BadLength;
        }
        // SAFETY: pointer + length from the caller.
        let peer = match unsafe { bytes(client, client_len) } {
            Ok([]) => None,
            Ok(b) if b.len() == 4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            Ok(b) if b.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Some(IpAddr::V6(Ipv6Addr::from(a)))
            }
            Ok(_) => return tm_result::UnknownFamily,
            Err(r) => return r,
        };
        // SAFETY: the caller promises `buf_cap` writable bytes at `buf`, of
        // which the first `query_len` (≤ `buf_cap`) hold the query.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, buf_cap) };
        match e.engine.resolve_in_place(out, query_len, peer, tcp != 0) {
            Ok(n) => {
                // SAFETY: non-NULL output.
                unsafe { written_out.write_unaligned(n) };
                tm_result::Ok
            }
            Err(WireError::Drop) => tm_result::NotAQuery,
            Err(WireError::BufferTooSmall) => tm_result::BufferTooSmall,
        }
    })
}
