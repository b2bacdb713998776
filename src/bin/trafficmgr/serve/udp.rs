//! The front's UDP path, as gdnsd does it: one socket per thread, all bound
//! to the same address with `SO_REUSEPORT` (the kernel spreads clients over
//! them by a hash of their address and port, so threads share no socket
//! queue and no lock), and datagrams taken and sent in batches
//! (`recvmmsg`/`sendmmsg`: one system call for every datagram waiting, not
//! two per query).

use super::{STOP, TICK, client_ip, rrl};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Instant;
use trafficmgr::Engine;

/// The largest UDP payload (over IPv6 without jumbograms; 65,507 over
/// IPv4): a query is read whole, never cut to a smaller buffer. Each slot
/// of a batch has that much address space; only what datagrams fill is
/// ever touched (the pages come zeroed from the kernel on first write).
const MAX_UDP: usize = 65_535;

/// Datagrams taken (and replies sent) per system call at most.
pub const BATCH: usize = 32;

/// Reply buffer per slot (the engine caps UDP replies well below it).
const OUT: usize = 4096;

/// `n` UDP sockets bound to `addr` with `SO_REUSEPORT` (port 0: the port the
/// first one got), each with a receive timeout of [`TICK`] so its thread
/// sees a stop request.
pub fn bind_group(addr: SocketAddr, n: usize) -> io::Result<Vec<UdpSocket>> {
    let mut addr = addr;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let s = bind_reuseport(addr)?;
        addr = s.local_addr()?;
        s.set_read_timeout(Some(TICK))?;
        out.push(s);
    }
    Ok(out)
}

fn bind_reuseport(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // No IPV6_V6ONLY: as std binds (and as the TCP listener is bound), the
    // system's default decides whether [::] also takes IPv4.
    let (sa, len) = to_sockaddr(addr);
    // SAFETY: `sa` is a sockaddr_storage holding a sockaddr of `len` octets.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UdpSocket::from(fd))
}

fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            (ss, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            (ss, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// The peer's address, from what the kernel wrote into a slot.
fn peer_ip(ss: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family says so).
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(
                sin.sin_addr.s_addr.to_ne_bytes(),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family says so).
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// One thread's loop over its own socket: take every datagram waiting (up
/// to `batch`, blocking for the first at most one [`TICK`]), answer each,
/// send the replies in one call. Returns when [`STOP`] is set.
pub fn serve(
    sock: UdpSocket,
    engine: &Engine,
    rrl: Option<&rrl::Rrl>,
    start: Instant,
    batch: usize,
) {
    let batch = batch.max(1);
    let fd = sock.as_raw_fd();
    // Allocated once per thread, before the first query; the pointers in
    // the headers below point into these and never move.
    let mut qbuf = vec![0u8; MAX_UDP * batch].into_boxed_slice();
    let mut obuf = vec![0u8; OUT * batch].into_boxed_slice();
    let mut names: Vec<libc::sockaddr_storage> = (0..batch)
        // SAFETY: all-zero is a valid sockaddr_storage.
        .map(|_| unsafe { zeroed() })
        .collect();
    let mut qiov: Vec<libc::iovec> = (0..batch)
        .map(|i| libc::iovec {
            iov_base: qbuf[i * MAX_UDP..].as_mut_ptr().cast(),
            iov_len: MAX_UDP,
        })
        .collect();
    let mut oiov: Vec<libc::iovec> = (0..batch)
        .map(|i| libc::iovec {
            iov_base: obuf[i * OUT..].as_mut_ptr().cast(),
            iov_len: 0,
        })
        .collect();
    // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths);
    // every header is filled before each call that reads it.
    let mut rmsg: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { zeroed() }).collect();
    // SAFETY: as above.
    let mut smsg: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { zeroed() }).collect();
    while !STOP.load(Ordering::Relaxed) {
        for i in 0..batch {
            let h = &mut rmsg[i].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut qiov[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            rmsg[i].msg_len = 0;
        }
        // SAFETY: `rmsg` holds `batch` headers whose name and iovec pointers
        // point into buffers of this function that outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                rmsg.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue; // the receive timeout (a tick), or an error: look at STOP again
        }
        let mut out_n = 0usize;
        let now = rrl.map(|_| start.elapsed().as_secs() as u32);
        for i in 0..n as usize {
            let qlen = rmsg[i].msg_len as usize;
            let Some(ip) = peer_ip(&names[i]) else {
                continue;
            };
            let q = &qbuf[i * MAX_UDP..i * MAX_UDP + qlen];
            let out = &mut obuf[out_n * OUT..(out_n + 1) * OUT];
            let Ok(mut len) = engine.answer_message(q, Some(ip), false, out) else {
                continue;
            };
            if let (Some(rrl), Some(now)) = (rrl, now) {
                // The account is by netblock: the port does not matter.
                match rrl.check(client_ip(SocketAddr::new(ip, 0)), &out[..len], now) {
                    rrl::Verdict::Send => {}
                    rrl::Verdict::Drop => continue,
                    rrl::Verdict::Slip => len = rrl::truncate(out, len),
                }
            }
            oiov[out_n].iov_len = len;
            let h = &mut smsg[out_n].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = rmsg[i].msg_hdr.msg_namelen;
            h.msg_iov = &mut oiov[out_n];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            out_n += 1;
        }
        let mut sent = 0usize;
        while sent < out_n {
            // SAFETY: `smsg[sent..out_n]` are headers filled above whose
            // pointers point into this function's live buffers.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    smsg[sent..].as_mut_ptr(),
                    (out_n - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                // This reply cannot be sent (the peer's address refused, the
                // buffer full): drop it, as a lost datagram, and go on.
                sent += 1;
            } else {
                sent += r as usize;
            }
        }
    }
}
