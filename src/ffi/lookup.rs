//! `tm_engine_lookup`: the records for one name, handed to the host one by
//! one (`tm_record`), and what the lookup concluded (`tm_lookup_info`).
//! Allocates nothing, takes no lock.

use super::handle::{Out, engine_ref, read_versioned, str_arg, tm_engine, versioned};
use super::{entry, tm_result};
use crate::answer::records::type_name_c;
use crate::answer::{Answer, Rcode, Rec};
use crate::engine::{Query, QueryError};
use crate::query::{NameBuf, NameError};
use std::ffi::{c_char, c_void};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// No address.
pub const TM_FAMILY_NONE: u32 = 0;
/// IPv4: the first 4 bytes of `tm_address.bytes`.
pub const TM_FAMILY_IPV4: u32 = 4;
/// IPv6: all 16 bytes of `tm_address.bytes`.
pub const TM_FAMILY_IPV6: u32 = 6;

/// `tm_record.section`: answer section (owner: the query name).
pub const TM_SECTION_ANSWER: u32 = 1;
/// `tm_record.section`: authority section (owner: the zone apex).
pub const TM_SECTION_AUTHORITY: u32 = 2;

/// `tm_lookup_info.flags`: the name is in one of our zones.
pub const TM_LOOKUP_AUTHORITATIVE: u32 = 1;
/// `tm_lookup_info.flags`: the name is under none of our zones (rcode REFUSED);
/// a host with other data should look there.
pub const TM_LOOKUP_NOT_OURS: u32 = 2;

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

impl tm_address {
    /// The address, `None` for `TM_FAMILY_NONE`; other families are
    /// `TM_RESULT_UNKNOWN_FAMILY`.
    pub(crate) fn ip(&self) -> Result<Option<IpAddr>, tm_result> {
        let b = self.bytes;
        match self.family {
            TM_FAMILY_NONE => Ok(None),
            TM_FAMILY_IPV4 => Ok(Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))),
            TM_FAMILY_IPV6 => Ok(Some(IpAddr::V6(Ipv6Addr::from(b)))),
            _ => Err(tm_result::UnknownFamily),
        }
    }
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

versioned!(tm_query);

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

impl tm_lookup_info {
    fn of(a: &Answer<'_>) -> tm_lookup_info {
        let mut flags = 0;
        if a.authoritative {
            flags |= TM_LOOKUP_AUTHORITATIVE;
        }
        if a.rcode == Rcode::Refused {
            flags |= TM_LOOKUP_NOT_OURS;
        }
        tm_lookup_info {
            rcode: a.rcode as u32,
            flags,
            scope_prefix: u32::from(a.scope_prefix),
            answer_count: a.records.len() as u32,
            authority_count: a.authority.len() as u32,
        }
    }
}

/// The engine's query for a `tm_query`: name checked for UTF-8, addresses
/// for their family (the ECS prefix against it by the engine).
///
/// # Safety
/// `q.qname` is NULL or points at `q.qname_len` bytes readable for `'a`.
unsafe fn query_of<'a>(q: &tm_query) -> Result<Query<'a>, tm_result> {
    // SAFETY: forwarded contract.
    let name = unsafe { str_arg(q.qname, q.qname_len) }?.as_bytes();
    let client = q.client.ip()?;
    let ecs = match q.ecs_source_prefix {
        0 => None,
        prefix => Some((q.ecs.ip()?.ok_or(tm_result::UnknownFamily)?, prefix)),
    };
    Ok(Query {
        name,
        qtype: q.qtype,
        client,
        ecs,
    })
}

fn name_error(e: QueryError) -> tm_result {
    match e {
        QueryError::Name(NameError::EmptyLabel | NameError::BadEscape) => tm_result::BadName,
        QueryError::Name(NameError::LabelTooLong) => tm_result::LabelTooLong,
        QueryError::Name(NameError::NameTooLong) => tm_result::NameTooLong,
        QueryError::BadEcsPrefix => tm_result::BadPrefix,
    }
}

/// The host's record callback and its userdata.
struct Sink {
    f: unsafe extern "C" fn(*mut c_void, *const tm_record) -> i32,
    userdata: *mut c_void,
}

impl Sink {
    /// Hands every record of `a` to the host, answer section first; false
    /// when the host asked to stop. Owners are built on the stack with a NUL.
    fn all(&self, a: &Answer<'_>, qname: &NameBuf) -> bool {
        let mut owner = [0u8; 256];
        let len = qname.write_fqdn(&mut owner);
        // NUL after the dot (len ≤ 254 < 256).
        if let Some(b) = owner.get_mut(len) {
            *b = 0;
        }
        if !self.section(TM_SECTION_ANSWER, &owner, len, a.ttl_cap, a.records.iter()) {
            return false;
        }
        let Some(z) = a.zone else {
            return true;
        };
        // The zone owner is stored as `name.`; the zeroed rest is its NUL.
        let mut owner = [0u8; 256];
        let len = z.owner.len().min(254);
        owner[..len].copy_from_slice(&z.owner.as_bytes()[..len]);
        self.section(
            TM_SECTION_AUTHORITY,
            &owner,
            len,
            crate::answer::NO_TTL_CAP,
            a.authority.iter(),
        )
    }

    fn section<'r>(
        &self,
        section: u32,
        owner: &[u8; 256],
        owner_len: usize,
        ttl_cap: u32,
        mut records: impl Iterator<Item = &'r Rec>,
    ) -> bool {
        records.all(|r| {
            let rec = tm_record {
                section,
                rtype: r.rtype,
                type_name: type_name_c(r.rtype).as_ptr().cast(),
                owner: owner.as_ptr().cast(),
                owner_len,
                ttl: r.ttl.min(ttl_cap),
                rdata_text: r.text_c().as_ptr().cast(),
                rdata_text_len: r.text().len(),
                rdata_wire: r.wire.as_ptr(),
                rdata_wire_len: r.wire.len(),
            };
            // SAFETY: the host's callback, with a record valid for the call.
            unsafe { (self.f)(self.userdata, &rec) == 0 }
        })
    }
}

/// Answers one query: the records go to `record_fn` (answer section first,
/// then authority), the outcome to `*info_out`. Allocates nothing, takes no
/// lock.
///
/// **Ownership:** borrows everything; nothing is kept after the call.
/// **NULL:** `engine`, `query` and `query->qname` must not be NULL;
/// `record_fn` may be NULL (counts only); `info_out` may be NULL.
/// **Threads:** safe from any number of threads at once.
/// **Lifetime:** record pointers are valid during the callback only.
/// **Returns:** `TM_RESULT_OK` (also for NXDOMAIN, NODATA and not-ours: see
/// `info_out->rcode`), `TM_RESULT_NULL_ARGUMENT`, `TM_RESULT_STRUCT_TOO_SMALL`,
/// `TM_RESULT_INVALID_UTF8`, `TM_RESULT_BAD_NAME`, `TM_RESULT_LABEL_TOO_LONG`,
/// `TM_RESULT_NAME_TOO_LONG`, `TM_RESULT_UNKNOWN_FAMILY`, `TM_RESULT_BAD_PREFIX`,
/// `TM_RESULT_CALLBACK_ABORTED` (`*info_out` still written), `TM_RESULT_PANIC`.
///
/// # Safety
/// `engine` is NULL or a live handle; `query` is NULL or a readable
/// `tm_query` of its `struct_size`, whose `qname` points at `qname_len`
/// readable bytes; `record_fn` is callable with `userdata`; `info_out` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tm_engine_lookup(
    engine: *const tm_engine,
    query: *const tm_query,
    record_fn: tm_record_fn,
    userdata: *mut c_void,
    info_out: *mut tm_lookup_info,
) -> tm_result {
    entry(|| {
        // SAFETY: the caller's pointers, per this function's contract.
        let (e, q, info_out) = unsafe {
            let e = engine_ref(engine)?;
            let q = read_versioned(query)?;
            (e, query_of(&q)?, Out::optional(info_out))
        };
        let sink = record_fn.map(|f| Sink { f, userdata });
        let (info, complete) = e
            .lookup(&q, |a, qname| {
                let complete = sink.as_ref().is_none_or(|s| s.all(a, qname));
                (tm_lookup_info::of(a), complete)
            })
            .map_err(name_error)?;
        if let Some(out) = info_out {
            out.write(info);
        }
        if complete {
            Ok(())
        } else {
            Err(tm_result::CallbackAborted)
        }
    })
}
