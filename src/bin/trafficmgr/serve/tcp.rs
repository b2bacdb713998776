//! DNS over TCP for the front: one thread, non-blocking sockets, `poll(2)`.
//!
//! - Framing: each connection keeps the octets it has received; a query is
//!   taken once its 2-octet length and all its octets are in, however the
//!   client split them into segments. Several queries in one segment are
//!   answered in order.
//! - Deadlines (as BIND's `tcp-initial-timeout` / `tcp-idle-timeout`): a
//!   new connection must start its first query within the initial timeout,
//!   a connection must start its next query within the idle timeout of its
//!   last reply, and a query, once its first octet is in, must be complete
//!   within the message timeout — so does a reply to be written. A
//!   connection past its deadline is closed, whatever it is sending.
//! - A cap on connections (BIND's `tcp-clients`): a connection beyond it
//!   closes the idlest one first (the one whose last complete query, or
//!   whose accept, is oldest), so a crowd of idle or trickling connections
//!   cannot lock an honest client out.
//! - While a reply waits to be written, no more queries are read from that
//!   connection (the client's own sending stalls, not the front).
//! - The loop wakes at least every 100 ms and stops when `stop` is set.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use trafficmgr::Engine;

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_clients: usize,
    pub initial_timeout: Duration,
    pub idle_timeout: Duration,
    pub message_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_clients: 256,
            initial_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            message_timeout: Duration::from_secs(5),
        }
    }
}

const TICK: Duration = Duration::from_millis(100);
const READ_CHUNK: usize = 16 * 1024;
/// Octets kept allocated per connection between queries.
const KEEP: usize = 4096;

struct Conn {
    s: TcpStream,
    peer: SocketAddr,
    /// Received octets not yet consumed.
    inbuf: Vec<u8>,
    /// Reply octets not yet written, and how many of them are.
    out: Vec<u8>,
    out_done: usize,
    /// When the connection last became ready for a new query (accept or a
    /// reply fully written), and whether it ever completed one.
    ready_at: Instant,
    answered: bool,
    /// When the first octet of the query being received arrived.
    msg_start: Option<Instant>,
    /// When the reply being written was queued.
    write_start: Option<Instant>,
    /// The last time a query completed (or the accept): the idlest is shed.
    progress: Instant,
    eof: bool,
}

impl Conn {
    fn deadline(&self, t: &Settings) -> Instant {
        if let Some(w) = self.write_start {
            w + t.message_timeout
        } else if let Some(m) = self.msg_start {
            m + t.message_timeout
        } else if self.answered {
            self.ready_at + t.idle_timeout
        } else {
            self.ready_at + t.initial_timeout
        }
    }
}

pub fn serve(listeners: Vec<TcpListener>, engine: &Engine, t: &Settings, stop: &AtomicBool) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut rbuf = vec![0u8; READ_CHUNK];
    let mut scratch = vec![0u8; 2 + 65535];
    let mut accept_pause = None::<Instant>;
    let nl = listeners.len();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        // Close what is past its deadline.
        conns.retain(|c| c.deadline(t) > now);
        let accepting = accept_pause.is_none_or(|p| now >= p);
        if accepting {
            accept_pause = None;
        }
        fds.clear();
        for l in &listeners {
            fds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: if accepting { libc::POLLIN } else { 0 },
                revents: 0,
            });
        }
        let mut wake = now + TICK;
        for c in &conns {
            let events = if c.out_done < c.out.len() {
                libc::POLLOUT
            } else if c.eof {
                0
            } else {
                libc::POLLIN
            };
            fds.push(libc::pollfd {
                fd: c.s.as_raw_fd(),
                events,
                revents: 0,
            });
            wake = wake.min(c.deadline(t));
        }
        let ms = wake.saturating_duration_since(now).as_millis().min(100) as libc::c_int;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            continue; // timeout, or EINTR from a signal
        }
        let now = Instant::now();
        // Connections first (their indexes match `fds`), then accepts.
        let mut fi = nl;
        conns.retain_mut(|c| {
            let re = fds[fi].revents;
            fi += 1;
            if re == 0 {
                true
            } else if re & (libc::POLLERR | libc::POLLNVAL) != 0 {
                false
            } else {
                service(c, engine, &mut rbuf, &mut scratch, now, re)
            }
        });
        for (li, l) in listeners.iter().enumerate() {
            if fds[li].revents & libc::POLLIN == 0 {
                continue;
            }
            for _ in 0..64 {
                match l.accept() {
                    Ok((s, peer)) => {
                        if s.set_nonblocking(true).is_err() {
                            continue;
                        }
                        if conns.len() >= t.max_clients.max(1) {
                            shed_idlest(&mut conns);
                        }
                        conns.push(Conn {
                            s,
                            peer,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            out_done: 0,
                            ready_at: now,
                            answered: false,
                            msg_start: None,
                            write_start: None,
                            progress: now,
                            eof: false,
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        // Out of descriptors or similar: make room and stop
                        // accepting for a moment rather than spin.
                        shed_idlest(&mut conns);
                        accept_pause = Some(now + Duration::from_millis(50));
                        break;
                    }
                }
            }
        }
    }
}

fn shed_idlest(conns: &mut Vec<Conn>) {
    if let Some((i, _)) = conns.iter().enumerate().min_by_key(|(_, c)| c.progress) {
        conns.swap_remove(i);
    }
}

/// Handles readiness on one connection. `false`: close it.
fn service(
    c: &mut Conn,
    engine: &Engine,
    rbuf: &mut [u8],
    scratch: &mut [u8],
    now: Instant,
    revents: libc::c_short,
) -> bool {
    if c.out_done < c.out.len() {
        if !flush(c, now) {
            return false;
        }
        if c.out_done < c.out.len() {
            return true;
        }
    } else if revents & (libc::POLLIN | libc::POLLHUP) != 0 && !c.eof {
        // Read what is there (bounded per round, for fairness).
        let mut total = 0;
        while total < 4 * READ_CHUNK {
            match c.s.read(rbuf) {
                Ok(0) => {
                    c.eof = true;
                    break;
                }
                Ok(n) => {
                    if c.inbuf.is_empty() && c.msg_start.is_none() {
                        c.msg_start = Some(now);
                    }
                    c.inbuf.extend_from_slice(&rbuf[..n]);
                    total += n;
                    if n < rbuf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }
    if !answer_queued(c, engine, scratch, now) {
        return false;
    }
    // A client that closed its side is done once its replies are out.
    !(c.eof && c.out_done >= c.out.len())
}

/// Answers the complete queries in `c.inbuf`, in order, until one reply
/// cannot be written at once. `false`: close the connection.
fn answer_queued(c: &mut Conn, engine: &Engine, scratch: &mut [u8], now: Instant) -> bool {
    let mut pos = 0;
    let ok = loop {
        if c.out_done < c.out.len() {
            break true;
        }
        let rest = &c.inbuf[pos..];
        if rest.len() < 2 {
            break true;
        }
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + n {
            break true;
        }
        let q = &rest[2..2 + n];
        pos += 2 + n;
        c.progress = now;
        let Ok(len) = engine.answer_message(q, Some(c.peer.ip()), true, &mut scratch[2..]) else {
            break false;
        };
        let Ok(l16) = u16::try_from(len) else {
            break false;
        };
        scratch[..2].copy_from_slice(&l16.to_be_bytes());
        c.out.clear();
        c.out.extend_from_slice(&scratch[..2 + len]);
        c.out_done = 0;
        c.write_start = Some(now);
        if !flush(c, now) {
            break false;
        }
    };
    if pos > 0 {
        c.inbuf.drain(..pos);
    }
    // The query now in progress, if any, started with these octets.
    if c.inbuf.is_empty() {
        c.msg_start = None;
        if c.inbuf.capacity() > KEEP {
            c.inbuf.shrink_to(KEEP);
        }
    } else if pos > 0 {
        c.msg_start = Some(now);
    }
    ok
}

/// Writes what it can of the pending reply. `false`: close the connection.
fn flush(c: &mut Conn, now: Instant) -> bool {
    while c.out_done < c.out.len() {
        match c.s.write(&c.out[c.out_done..]) {
            Ok(0) => return false,
            Ok(n) => c.out_done += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    c.out.clear();
    c.out_done = 0;
    if c.out.capacity() > KEEP {
        c.out.shrink_to(KEEP);
    }
    c.write_start = None;
    c.ready_at = now;
    c.answered = true;
    true
}
