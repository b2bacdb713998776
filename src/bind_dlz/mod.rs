//! BIND 9's DLZ "dlopen" module ABI (DLZ_DLOPEN_VERSION 3), exported by the
//! same `libtrafficmgr.so`, so that `named` loads it with one stanza:
//!
//! ```text
//! dlz "trafficmgr" { database "dlopen /usr/lib/bind/libtrafficmgr.so /etc/bind/trafficmgr.toml"; };
//! ```
//!
//! Our own declarations of the ABI, written from BIND 9.18's
//! `dlz_minimal.h` and `dlz_dlopen_driver.c` (see `docs/HOSTS.md`). Notes:
//! - `dlz_create` is variadic in C; stable Rust cannot define a variadic
//!   function, so it is defined with a fixed arity: 4 named parameters and
//!   the 9 pointer-sized variadic ones named passes (4 name/function pairs
//!   and a NULL). On x86-64 SysV and AArch64 Linux, pointer-sized variadic
//!   arguments travel exactly like named ones. Not portable to Apple arm64.
//! - `dlz_lookup` gets no query type: it returns every record of the name
//!   (BIND picks by type), so a profile's answer is routed as for ANY.
//! - The client is BIND's `sourceip` callback, or the EDNS Client Subnet
//!   from clientinfo v3 (9.18.1 and later); BIND cannot take a scope from a
//!   module, so ECS replies carry scope /0.
//! - One engine per config file in the process: on `rndc reload` named
//!   creates the new instance before it destroys the old, and the new one
//!   takes the running engine (through `crate::ffi::shared`) and has it
//!   re-read the file, so health, probe threads and counters carry on and
//!   only one set of threads ever runs. The last `dlz_destroy` of a file
//!   stops and joins the engine's threads.
//! - Every entry point runs inside the panic boundary and returns
//!   `ISC_R_FAILURE` (or NOTFOUND for lookups) rather than unwinding into named.

use crate::engine::{Engine, LogFn, LogLevel, Query};
use crate::ffi::boundary;
use crate::ffi::shared::{Opened, SharedEngine};
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

type IscResult = c_uint;
const ISC_R_SUCCESS: IscResult = 0;
const ISC_R_NOTFOUND: IscResult = 23;
const ISC_R_FAILURE: IscResult = 25;

const DLZ_DLOPEN_VERSION: c_int = 3;
const DNS_SDLZFLAG_THREADSAFE: c_uint = 0x1;

/// `log(level, fmt, ...)`: level −1 info, −2 notice, −3 warning, −4 error, > 0 debug.
type LogCb = unsafe extern "C" fn(level: c_int, fmt: *const c_char, ...);
/// `putrr(lookup, type, ttl, rdata)`.
type PutRr = unsafe extern "C" fn(
    lookup: *mut c_void,
    rtype: *const c_char,
    ttl: u32,
    data: *const c_char,
) -> IscResult;
/// `putnamedrr(allnodes, name, type, ttl, rdata)` (zone transfers; unused).
type PutNamedRr = unsafe extern "C" fn(
    allnodes: *mut c_void,
    name: *const c_char,
    rtype: *const c_char,
    ttl: u32,
    data: *const c_char,
) -> IscResult;

/// `dns_clientinfomethods_t` (version 2, age 1 in 9.18).
#[repr(C)]
struct ClientInfoMethods {
    version: u16,
    age: u16,
    sourceip: Option<
        unsafe extern "C" fn(client: *mut ClientInfo, addrp: *mut *const SockAddrHead) -> IscResult,
    >,
}

/// `dns_clientinfo_t` (version 3 carries the ECS of the query).
#[repr(C)]
struct ClientInfo {
    version: u16,
    data: *mut c_void,
    dbversion: *mut c_void,
    ecs: DnsEcs,
}

/// `dns_ecs_t`: `isc_netaddr_t` then source and scope prefix lengths.
#[repr(C)]
struct DnsEcs {
    family: c_uint,
    addr: [u8; 108],
    zone: u32,
    source: u8,
    scope: u8,
}

/// The first member of `isc_sockaddr_t`: a `struct sockaddr` union.
#[repr(C)]
struct SockAddrHead {
    family: u16,
    port: u16,
    /// sockaddr_in: 4 address bytes; sockaddr_in6: flowinfo (4) then 16 address bytes.
    rest: [u8; 24],
}

struct Instance {
    engine: Held,
    putrr: PutRr,
    _putnamedrr: Option<PutNamedRr>,
    /// The `dlz` stanza's name and named's log, for `dlz_destroy`'s line.
    name: String,
    log: Option<BindLog>,
}

/// The engine an instance answers from: the one shared by every instance
/// of the same config file in this named (`crate::ffi::shared`), or, for
/// the fuzz target, its own.
enum Held {
    Shared(SharedEngine),
    Own(Engine),
}

impl Instance {
    #[inline]
    fn engine(&self) -> &Engine {
        match &self.engine {
            Held::Shared(s) => s.engine(),
            Held::Own(e) => e,
        }
    }
}

// SAFETY: the callbacks are plain functions of named, callable from any of its threads.
unsafe impl Send for Instance {}
// SAFETY: as above; the engine is Sync.
unsafe impl Sync for Instance {}

#[derive(Clone, Copy)]
struct BindLog(LogCb);
// SAFETY: named's log function is thread-safe.
unsafe impl Send for BindLog {}
// SAFETY: as above.
unsafe impl Sync for BindLog {}

impl BindLog {
    fn emit(&self, level: LogLevel, msg: &str) {
        let lvl: c_int = match level {
            LogLevel::Error => -4,
            LogLevel::Warn => -3,
            LogLevel::Info => -1,
            LogLevel::Debug => 1,
        };
        let mut m: Vec<u8> = format!("trafficmgr: {msg}").into_bytes();
        m.retain(|b| *b != 0);
        m.push(0);
        // SAFETY: untrusted text goes as the "%s" argument, never as the format.
        unsafe { (self.0)(lvl, c"%s".as_ptr(), m.as_ptr() as *const c_char) };
    }
}

/// Reports the DLZ ABI version and that we are thread-safe.
///
/// **Ownership:** nothing is handed over.
/// **NULL:** `flags` may be NULL (then only the version is returned).
/// **Threads:** named calls it once per `dlz_create`, from its
/// configuration path (start-up, `rndc reload`/`reconfig`).
/// **Returns:** `DLZ_DLOPEN_VERSION` (3), with `DNS_SDLZFLAG_THREADSAFE`
/// ORed into `*flags`, so named calls lookups without a lock of its own.
///
/// # Safety
/// `flags` is NULL or points at a writable `unsigned int` (named passes one).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dlz_version(flags: *mut c_uint) -> c_int {
    boundary(DLZ_DLOPEN_VERSION, || {
        if !flags.is_null() {
            // SAFETY: non-NULL pointer from named.
            unsafe { *flags |= DNS_SDLZFLAG_THREADSAFE };
        }
        DLZ_DLOPEN_VERSION
    })
}

/// A NUL-terminated UTF-8 string from named; NULL or bad UTF-8 is `None`.
///
/// # Safety
/// `p` is NULL or points at a NUL-terminated string valid for `'a`.
unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: named passes NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// Creates one instance: `argv[1]` is the config file (the word after the
/// library path on the `database` line). The variadic tail is read as the
/// (name, function) pairs named passes: log, putrr, putnamedrr,
/// writeable_zone, then NULL.
///
/// Every instance of one config file in this named (a reload's new one, a
/// second view's) shares one engine (`crate::ffi::shared`, keyed by the
/// file's canonical path): the first builds it; a later one takes it and
/// has it re-read the file at once (what `rndc reload` means to an
/// operator). If that re-read fails, this `dlz_create` fails (named keeps
/// its previous configuration, whose instance goes on serving the previous
/// snapshot) and the error, with file:line:col, goes to named's log.
///
/// **Ownership:** on `ISC_R_SUCCESS`, `*dbdata` owns the instance (a hold
/// on the shared engine) until `dlz_destroy`; on failure it is left
/// untouched, nothing is held, and named's `log` says why.
/// **NULL:** `dbdata` and `argv` must not be NULL and `putrr` must be
/// passed; `dlzname` and the `log` pair may be missing.
/// **Threads:** named calls it from its configuration path (start-up,
/// `rndc reload`/`reconfig`); on a reload the new instance is created
/// before the old one is destroyed, and both may serve meanwhile.
/// **Lifetime:** `log` and `putrr` are kept and called until `dlz_destroy`
/// returns (`log` from the library's own threads too: the shared engine
/// logs through the newest live instance's `log`).
/// **Returns:** `ISC_R_SUCCESS` or `ISC_R_FAILURE` (also for a caught panic).
///
/// # Safety
/// Called by named with the arguments the DLZ dlopen driver passes:
/// `argv` holds `argc` NUL-terminated strings, the variadic tail is
/// (NUL-terminated name, function) pairs of the documented signatures
/// ending in NULL, and `dbdata` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dlz_create(
    dlzname: *const c_char,
    argc: c_uint,
    argv: *mut *mut c_char,
    dbdata: *mut *mut c_void,
    n1: *const c_char,
    f1: *const c_void,
    n2: *const c_char,
    f2: *const c_void,
    n3: *const c_char,
    f3: *const c_void,
    n4: *const c_char,
    f4: *const c_void,
    _end: *const c_void,
) -> IscResult {
    boundary(ISC_R_FAILURE, || {
        crate::ffi::install_panic_hook();
        let mut log: Option<BindLog> = None;
        let mut putrr: Option<PutRr> = None;
        let mut putnamedrr: Option<PutNamedRr> = None;
        for (n, f) in [(n1, f1), (n2, f2), (n3, f3), (n4, f4)] {
            if n.is_null() || f.is_null() {
                break;
            }
            // SAFETY: a NUL-terminated name from named's vararg list.
            // Each function pointer is named's, with the signature its name
            // documents in dlz_minimal.h.
            match unsafe { cstr(n) } {
                Some("log") => {
                    // SAFETY: named's `log`, as above.
                    log = Some(BindLog(unsafe {
                        std::mem::transmute::<*const c_void, LogCb>(f)
                    }))
                }
                Some("putrr") => {
                    // SAFETY: named's `putrr`, as above.
                    putrr = Some(unsafe { std::mem::transmute::<*const c_void, PutRr>(f) })
                }
                Some("putnamedrr") => {
                    // SAFETY: named's `putnamedrr`, as above.
                    putnamedrr =
                        Some(unsafe { std::mem::transmute::<*const c_void, PutNamedRr>(f) })
                }
                _ => {}
            }
        }
        // SAFETY: NUL-terminated or NULL.
        let name = unsafe { cstr(dlzname) }.unwrap_or("trafficmgr").to_string();
        let say = |level, msg: &str| {
            if let Some(l) = log {
                l.emit(level, msg);
            }
        };
        let (Some(putrr), false) = (putrr, dbdata.is_null()) else {
            say(
                LogLevel::Error,
                &format!(
                    "dlz {name}: named did not pass putrr; is this BIND 9 with DLZ dlopen version 3?"
                ),
            );
            return ISC_R_FAILURE;
        };
        if argc < 2 || argv.is_null() {
            say(
                LogLevel::Error,
                &format!(
                    "dlz {name}: the database line needs the config file: \"dlopen /usr/lib/bind/libtrafficmgr.so /etc/bind/trafficmgr.toml\""
                ),
            );
            return ISC_R_FAILURE;
        }
        // SAFETY: argv has argc entries.
        let Some(path) = (unsafe { cstr(*argv.add(1)) }) else {
            say(
                LogLevel::Error,
                &format!("dlz {name}: the config path is not valid UTF-8"),
            );
            return ISC_R_FAILURE;
        };
        let hook: Option<LogFn> =
            log.map(|l| Box::new(move |level: LogLevel, msg: &str| l.emit(level, msg)) as LogFn);
        // One engine per config file in this named: a reload's new instance
        // takes the running engine (health, counters and threads carry on)
        // and has it re-read the file now.
        let held = match crate::ffi::shared::open(path, hook) {
            Ok((held, Opened::Built)) => held,
            Ok((held, Opened::Joined)) => {
                // The engine logs the error itself (file:line:col), through
                // the newest instance's log: this one's.
                if held.engine().reload().is_err() {
                    say(
                        LogLevel::Error,
                        &format!(
                            "dlz {name}: not created: {path} did not load (error above); named keeps its previous configuration"
                        ),
                    );
                    // Our hold (and log hook) goes before we return.
                    drop(held);
                    return ISC_R_FAILURE;
                }
                held
            }
            Err(e) => {
                say(LogLevel::Error, &format!("dlz {name}: {e}"));
                return ISC_R_FAILURE;
            }
        };
        say(LogLevel::Info, &format!("dlz {name}: serving {path}"));
        let inst = Box::new(Instance {
            engine: Held::Shared(held),
            putrr,
            _putnamedrr: putnamedrr,
            name,
            log,
        });
        // SAFETY: non-NULL output from named.
        unsafe { *dbdata = Box::into_raw(inst) as *mut c_void };
        ISC_R_SUCCESS
    })
}

/// Destroys an instance: releases its hold on the shared engine; the last
/// instance of a config file stops and joins the engine's threads before
/// returning.
///
/// **Ownership:** takes back the instance `dlz_create` stored in `*dbdata`.
/// **NULL:** `dbdata` may be NULL (nothing happens).
/// **Threads:** named calls it from its configuration path (a reload, or
/// shutdown), once per instance, when the view that used the instance is
/// released: no lookup on it is running or to come.
/// **Returns:** nothing; this instance's `log` and `putrr` are not called
/// after it returns (the engine, if other instances still hold it, logs
/// through theirs).
///
/// # Safety
/// `dbdata` is what `dlz_create` stored, or NULL, and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dlz_destroy(dbdata: *mut c_void) {
    boundary((), || {
        if dbdata.is_null() {
            return;
        }
        // SAFETY: created by Box::into_raw in dlz_create; named calls destroy once.
        let inst = *unsafe { Box::from_raw(dbdata as *mut Instance) };
        let Instance {
            engine, name, log, ..
        } = inst;
        let left = match engine {
            Held::Shared(held) => held.close(),
            Held::Own(engine) => {
                drop(engine);
                0
            }
        };
        if let Some(l) = log {
            l.emit(
                LogLevel::Info,
                &if left == 0 {
                    format!("dlz {name}: destroyed; it was the engine's last instance: engine stopped, threads joined")
                } else {
                    format!("dlz {name}: destroyed; the engine carries on for {left} other instance(s)")
                },
            );
        }
    })
}

/// The instance behind named's `dbdata`; NULL is `None`.
///
/// # Safety
/// `dbdata` is NULL or what `dlz_create` stored, not yet destroyed.
unsafe fn instance<'a>(dbdata: *mut c_void) -> Option<&'a Instance> {
    // SAFETY: what dlz_create stored (named passes it back), or NULL.
    unsafe { (dbdata as *const Instance).as_ref() }
}

/// Whether `name` is one of our zones (an exact apex).
///
/// **Ownership:** borrows everything; nothing is kept after the call.
/// **NULL:** a NULL `dbdata` or `name` is `ISC_R_NOTFOUND`; the methods and
/// client info are not used.
/// **Threads:** named calls it from all its worker threads at once (we set
/// `DNS_SDLZFLAG_THREADSAFE`), also during a reload.
/// **Returns:** `ISC_R_SUCCESS` for a zone apex of ours, else
/// `ISC_R_NOTFOUND` (also for a caught panic).
///
/// # Safety
/// Called by named with its own pointers: `dbdata` from `dlz_create` (or
/// NULL) and `name` NUL-terminated (or NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dlz_findzonedb(
    dbdata: *mut c_void,
    name: *const c_char,
    _methods: *mut c_void,
    _ci: *mut c_void,
) -> IscResult {
    boundary(ISC_R_NOTFOUND, || {
        // SAFETY: named's pointers.
        let (Some(inst), Some(name)) = (unsafe { instance(dbdata) }, unsafe { cstr(name) }) else {
            return ISC_R_NOTFOUND;
        };
        if inst.engine().is_zone(name) {
            ISC_R_SUCCESS
        } else {
            ISC_R_NOTFOUND
        }
    })
}

/// The query's client: ECS from clientinfo v3 when the query carried it,
/// else the source address.
///
/// # Safety
/// `methods` and `ci` are NULL or named's structures of the layout
/// declared above, valid during the call.
unsafe fn named_client(
    methods: *const ClientInfoMethods,
    ci: *mut ClientInfo,
) -> (Option<IpAddr>, Option<(IpAddr, u8)>) {
    if ci.is_null() {
        return (None, None);
    }
    // SAFETY: named's clientinfo; fields read per its version.
    let ci_ref = unsafe { &*ci };
    let mut ecs = None;
    if ci_ref.version >= 3 && ci_ref.ecs.source > 0 {
        let e = &ci_ref.ecs;
        ecs = match e.family as i32 {
            libc::AF_INET => Some((
                IpAddr::V4(Ipv4Addr::new(e.addr[0], e.addr[1], e.addr[2], e.addr[3])),
                e.source.min(32),
            )),
            libc::AF_INET6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&e.addr[..16]);
                Some((IpAddr::V6(Ipv6Addr::from(a)), e.source.min(128)))
            }
            _ => None,
        };
    }
    let mut peer = None;
    // SAFETY: methods is named's, or NULL.
    if let Some(m) = unsafe { methods.as_ref() }
        && m.version >= 1
        && let Some(f) = m.sourceip
    {
        let mut sa: *const SockAddrHead = std::ptr::null();
        // SAFETY: named's callback with its clientinfo.
        if unsafe { f(ci, &mut sa) } == ISC_R_SUCCESS && !sa.is_null() {
            // SAFETY: points at named's isc_sockaddr_t, whose first member is the sockaddr union.
            let h = unsafe { &*sa };
            peer = match i32::from(h.family) {
                libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                    h.rest[0], h.rest[1], h.rest[2], h.rest[3],
                ))),
                libc::AF_INET6 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&h.rest[4..20]);
                    Some(IpAddr::V6(Ipv6Addr::from(a)))
                }
                _ => None,
            };
        }
    }
    (peer, ecs)
}

/// Looks up `name` (relative to `zone`: `@` is the apex) and hands every
/// record to named's `putrr`. NOTFOUND when the name does not exist.
///
/// **Ownership:** borrows everything; nothing is kept after the call.
/// **NULL:** a NULL `zone`, `name` or `dbdata` is `ISC_R_NOTFOUND`;
/// `methods` and `clientinfo` may be NULL (named looks up `@` without them
/// for a negative answer's SOA): the client is then unknown.
/// **Threads:** named calls it from all its worker threads at once (we set
/// `DNS_SDLZFLAG_THREADSAFE`), also during a reload; it takes no lock and
/// allocates nothing.
/// **Lifetime:** the strings given to `putrr` are valid during that call only.
/// **Returns:** `ISC_R_SUCCESS`; `ISC_R_NOTFOUND` for a name that does not
/// exist or is not ours (also for a caught panic); `putrr`'s own failure
/// code when it refuses a record.
///
/// # Safety
/// Called by named with its own pointers: `zone` and `name`
/// NUL-terminated (or NULL), `dbdata` from `dlz_create` (or NULL),
/// `lookup` for `putrr`, `methods` and `clientinfo` named's structures of
/// the layout declared above (or NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dlz_lookup(
    zone: *const c_char,
    name: *const c_char,
    dbdata: *mut c_void,
    lookup: *mut c_void,
    methods: *mut c_void,
    clientinfo: *mut c_void,
) -> IscResult {
    boundary(ISC_R_NOTFOUND, || {
        // SAFETY: named's pointers.
        let (Some(inst), Some(zone), Some(name)) =
            (unsafe { instance(dbdata) }, unsafe { cstr(zone) }, unsafe {
                cstr(name)
            })
        else {
            return ISC_R_NOTFOUND;
        };
        // The full name on the stack: "<name>.<zone>" or the zone for "@".
        let mut buf = [0u8; 512];
        let full: &[u8] = if name == "@" {
            zone.as_bytes()
        } else {
            let (n, z) = (name.as_bytes(), zone.as_bytes());
            let len = n.len() + 1 + z.len();
            if len > buf.len() {
                return ISC_R_NOTFOUND;
            }
            buf[..n.len()].copy_from_slice(n);
            buf[n.len()] = b'.';
            buf[n.len() + 1..len].copy_from_slice(z);
            &buf[..len]
        };
        // SAFETY: named's methods and clientinfo, or NULL.
        let (peer, ecs) = unsafe {
            named_client(
                methods as *const ClientInfoMethods,
                clientinfo as *mut ClientInfo,
            )
        };
        let q = Query {
            name: full,
            qtype: 255,
            client: peer,
            ecs,
        };
        let r = inst.engine().lookup(&q, |a, _| {
            if a.rcode == crate::answer::Rcode::Refused || a.rcode == crate::answer::Rcode::NxDomain
            {
                return ISC_R_NOTFOUND;
            }
            for rec in a.records.iter() {
                let t = crate::answer::records::type_name_c(rec.rtype);
                // SAFETY: named's putrr with NUL-terminated strings valid for the call.
                let rc = unsafe {
                    (inst.putrr)(
                        lookup,
                        t.as_ptr() as *const c_char,
                        a.ttl(rec),
                        rec.text_c().as_ptr() as *const c_char,
                    )
                };
                if rc != ISC_R_SUCCESS {
                    return rc;
                }
            }
            ISC_R_SUCCESS
        });
        r.unwrap_or(ISC_R_NOTFOUND)
    })
}

/// An instance as `dlz_create` builds one, for the fuzz target of
/// `dlz_lookup` (`crate::fuzzing`).
#[doc(hidden)]
pub struct FuzzInstance(Box<Instance>);

impl FuzzInstance {
    /// Wraps `engine` with a `putrr` that checks what it is handed.
    pub fn new(engine: Engine) -> FuzzInstance {
        FuzzInstance(Box::new(Instance {
            engine: Held::Own(engine),
            putrr: fuzz_putrr,
            _putnamedrr: None,
            name: "fuzz".to_string(),
            log: None,
        }))
    }
}

/// The fuzz target's `putrr`: checks the strings and counts the records.
///
/// # Safety
/// `rtype` and `data` are NUL-terminated; `lookup` points at a `u32`.
unsafe extern "C" fn fuzz_putrr(
    lookup: *mut c_void,
    rtype: *const c_char,
    _ttl: u32,
    data: *const c_char,
) -> IscResult {
    assert!(!rtype.is_null() && !data.is_null());
    // SAFETY: NUL-terminated strings from our snapshot.
    let (t, d) = unsafe { (CStr::from_ptr(rtype), CStr::from_ptr(data)) };
    assert!(!t.to_bytes().is_empty() && !d.to_bytes().is_empty());
    // SAFETY: the fuzz target's counter.
    unsafe { *(lookup as *mut u32) += 1 };
    ISC_R_SUCCESS
}

/// The fuzz target's `sourceip`: the address is the clientinfo's `data`.
///
/// # Safety
/// `client` is a live `ClientInfo` whose `data` is NULL or a
/// `SockAddrHead`; `addrp` is writable.
unsafe extern "C" fn fuzz_sourceip(
    client: *mut ClientInfo,
    addrp: *mut *const SockAddrHead,
) -> IscResult {
    // SAFETY: the fuzz target's clientinfo, whose `data` is a SockAddrHead or NULL.
    let ci = unsafe { &*client };
    if ci.data.is_null() {
        return ISC_R_NOTFOUND;
    }
    // SAFETY: valid output pointer from dlz_lookup.
    unsafe { *addrp = ci.data as *const SockAddrHead };
    ISC_R_SUCCESS
}

/// `dlz_findzonedb` and `dlz_lookup` as named calls them, with the zone,
/// name, client info version, source address and ECS taken from `data`:
/// `[version, ecs family, ecs source, peer family, 16 address octets,
/// zone NUL name]`.
#[doc(hidden)]
pub fn fuzz_lookup(inst: &FuzzInstance, data: &[u8]) {
    let at = |i: usize| data.get(i).copied().unwrap_or(0);
    let mut addr = [0u8; 16];
    for (k, b) in addr.iter_mut().enumerate() {
        *b = at(4 + k);
    }
    let family = |sel: u8| match sel % 3 {
        0 => libc::AF_INET,
        1 => libc::AF_INET6,
        _ => i32::from(sel),
    };
    let mut ecs_addr = [0u8; 108];
    ecs_addr[..16].copy_from_slice(&addr);
    let mut sa = SockAddrHead {
        family: family(at(3)) as u16,
        port: 53,
        rest: [0; 24],
    };
    sa.rest[..4].copy_from_slice(&addr[..4]);
    sa.rest[4..20].copy_from_slice(&addr);
    let mut ci = ClientInfo {
        version: u16::from(at(0) % 4),
        data: if at(3) == 255 {
            std::ptr::null_mut()
        } else {
            (&mut sa as *mut SockAddrHead).cast()
        },
        dbversion: std::ptr::null_mut(),
        ecs: DnsEcs {
            family: family(at(1)) as c_uint,
            addr: ecs_addr,
            zone: 0,
            source: at(2),
            scope: 0,
        },
    };
    let methods = ClientInfoMethods {
        version: 2,
        age: 1,
        sourceip: Some(fuzz_sourceip),
    };
    let rest = data.get(20..).unwrap_or_default();
    let (zone, name) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b"@"[..]),
    };
    let name = name.split(|b| *b == 0).next().unwrap_or_default();
    let (Ok(zone), Ok(name)) = (std::ffi::CString::new(zone), std::ffi::CString::new(name)) else {
        return;
    };
    let dbdata = (&*inst.0 as *const Instance).cast_mut().cast::<c_void>();
    let mut count = 0u32;
    // SAFETY: valid instance, NUL-terminated strings, live method and
    // clientinfo structures of the layout named uses.
    unsafe {
        dlz_findzonedb(
            dbdata,
            zone.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        dlz_lookup(
            zone.as_ptr(),
            name.as_ptr(),
            dbdata,
            (&mut count as *mut u32).cast(),
            (&methods as *const ClientInfoMethods).cast_mut().cast(),
            (&mut ci as *mut ClientInfo).cast(),
        );
    }
}
