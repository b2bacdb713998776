//! Whole DNS messages: `tm_engine_answer` writes the reply to a query
//! message into a buffer, `tm_engine_answer_in_place` over the query
//! itself. Both allocate nothing and take no lock.

use super::handle::{
    Out, buf_mut, bytes_arg, bytes_or_empty, engine_ref, read_versioned, tm_engine, versioned,
};
use super::lookup::tm_address;
use super::{entry, tm_result};
use crate::answer::wire::WireError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `tm_wire_request.transport`: UDP (size limit 512 or the EDNS payload size).
pub const TM_TRANSPORT_UDP: u32 = 0;
/// `tm_wire_request.transport`: TCP (size limit: the buffer, at most 65535).
pub const TM_TRANSPORT_TCP: u32 = 1;

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

versioned!(tm_wire_request);

/// The reply's length, or why there is none.
fn reply(r: Result<usize, WireError>, written: Out<usize>) -> Result<(), tm_result> {
    match r {
        Ok(n) => {
            written.write(n);
            Ok(())
        }
        Err(WireError::Drop) => Err(tm_result::NotAQuery),
        Err(WireError::BufferTooSmall) => Err(tm_result::BufferTooSmall),
    }
}

/// Answers a DNS query message: writes the complete response (header,
/// question, answer, authority, OPT with the ECS option echoed with its
/// scope) into `buf`. Names under none of our zones get REFUSED; malformed
/// queries get FORMERR; a response too large for the transport is sent
/// truncated (TC). Allocates nothing, takes no lock.
///
/// Over UDP the reply is at most the smaller of the query's EDNS payload
/// size and 1232 octets (512 without EDNS), else it is truncated (TC); ANY
/// gets one RRset (RFC 8482). The reply is always a whole message: when the
/// buffer cannot hold even the header, question and OPT record, nothing is
/// written and the call fails.
///
/// **Ownership:** borrows everything; nothing is kept after the call.
/// **NULL:** `engine`, `request`, `request->query`, `buf` and `written_out`
/// must not be NULL.
/// **Threads:** safe from any number of threads at once.
/// **Returns:** `TM_RESULT_OK` with `*written_out` set; `TM_RESULT_NOT_A_QUERY`
/// (send nothing); `TM_RESULT_BUFFER_TOO_SMALL` (use at least 512 octets);
/// `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_STRUCT_TOO_SMALL`,
/// `TM_RESULT_UNKNOWN_FAMILY`, `TM_RESULT_BAD_VALUE` (transport), `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle; `request` is NULL or a readable
/// `tm_wire_request` of its `struct_size`, whose `query` points at
/// `query_len` readable bytes; `buf` is NULL or `buf_len` writable bytes
/// not overlapping the query; `written_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_answer(
    engine: *const tm_engine,
    request: *const tm_wire_request,
    buf: *mut u8,
    buf_len: usize,
    written_out: *mut usize,
) -> tm_result {
    entry(|| {
        // SAFETY: the caller's pointers, per this function's contract.
        let (e, written) = unsafe { (engine_ref(engine)?, Out::new(written_out)?) };
        if buf.is_null() {
            return Err(tm_result::NullArgument);
        }
        // SAFETY: as above.
        let r = unsafe { read_versioned(request) }?;
        // SAFETY: as above.
        let query = unsafe { bytes_arg(r.query, r.query_len) }?;
        let tcp = match r.transport {
            TM_TRANSPORT_UDP => false,
            TM_TRANSPORT_TCP => true,
            _ => return Err(tm_result::BadValue),
        };
        let peer = r.client.ip()?;
        // SAFETY: as above.
        let out = unsafe { buf_mut(buf, buf_len) }?;
        reply(e.answer_message(query, peer, tcp, out), written)
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
/// **Ownership:** borrows everything; nothing is kept after the call.
/// **NULL:** `engine`, `buf` and `written_out` must not be NULL; `client`
/// may be NULL with `client_len` 0.
/// **Threads:** safe from any number of threads at once.
/// **Returns:** `TM_RESULT_OK` with `*written_out` (the reply's length);
/// `TM_RESULT_NOT_A_QUERY`, `TM_RESULT_BUFFER_TOO_SMALL`, `TM_RESULT_BAD_LENGTH`
/// (`query_len` > `buf_cap` or > 65535), `TM_RESULT_UNKNOWN_FAMILY`
/// (`client_len` not 0, 4 or 16), `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle; `buf` is NULL or `buf_cap` writable
/// bytes whose first `query_len` hold the query; `client` is NULL or
/// `client_len` readable bytes; `written_out` is NULL or writable.
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
    entry(|| {
        // SAFETY: the caller's pointers, per this function's contract.
        let (e, written) = unsafe { (engine_ref(engine)?, Out::new(written_out)?) };
        if buf.is_null() {
            return Err(tm_result::NullArgument);
        }
        if query_len > buf_cap || query_len > 65535 {
            return Err(tm_result::BadLength);
        }
        // SAFETY: as above; the query is the first `query_len` ≤ `buf_cap` bytes.
        let buf = unsafe { buf_mut(buf, buf_cap) }?;
        // SAFETY: as above.
        let peer = match unsafe { bytes_or_empty(client, client_len) }? {
            [] => None,
            &[a, b, c, d] => Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
            b => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(b).map_err(|_| tm_result::UnknownFamily)?,
            ))),
        };
        reply(e.answer_in_place(buf, query_len, peer, tcp != 0), written)
    })
}
