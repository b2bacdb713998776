//! The control listener (`[engine] control = "127.0.0.1:9153"`): `/metrics`
//! (Prometheus), `/status` (the status JSON), `/healthz` and `/` (the
//! status page), served by the engine's own thread, `tm-ctl`, inside
//! whatever host loaded the library.
//!
//! A small HTTP/1.1 server of our own on std's `TcpListener`, with
//! `httparse` for the request head: one thread, non-blocking sockets and
//! `poll(2)`, so no client can hold the thread: a request head is capped
//! at [`MAX_REQUEST`] octets and must arrive within [`READ_DEADLINE`], the
//! reply must be taken within [`WRITE_DEADLINE`], at most
//! [`MAX_CONNECTIONS`] are open (a new one closes the oldest that has not
//! sent its request yet, or else the oldest of all), the replies held at
//! once add up to at most [`MAX_REPLY_OCTETS`] (clients that ask and never
//! read lose the oldest replies first), and every reply ends the connection
//! (`Connection: close`). A request that comes with the client's EOF (a
//! half-close) is answered. The thread looks at its stop flag at least
//! every 100 ms and before each reply it builds, so the engine's drop joins
//! it within that bound plus one reply's work whatever the clients do; out
//! of descriptors, it leaves the listener alone for a tick rather than spin. (A server crate with its own thread pool or async runtime
//! could not promise that inside someone else's process.)
//!
//! The thread is started by the maintenance loop when the configuration
//! has `control`, and stopped by it when a reload removes it or the
//! engine is dropped. It follows the current snapshot's address: a reload
//! that moves it rebinds; an address in use (another engine in the
//! process still holds it: BIND creates the new DLZ instance before it
//! destroys the old) is tried again every second, logged once, and shown
//! in the status report (`control`). std's listener sets `SO_REUSEADDR`
//! (a port in TIME_WAIT binds at once) and not `SO_REUSEPORT` (two engines
//! never split the scrapes between them silently).

use super::Inner;
use crate::log::LogLevel;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most octets of a request head.
pub(crate) const MAX_REQUEST: usize = 8192;
/// Open connections at most.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Most octets of replies held at once, over all connections (one reply
/// is always kept, however big).
pub(crate) const MAX_REPLY_OCTETS: usize = 32 << 20;
/// Time a client has to send its request head.
pub(crate) const READ_DEADLINE: Duration = Duration::from_secs(5);
/// Time a client has to take the whole reply.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Longest wait between two looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// Time between two tries of an address that could not be bound.
const RETRY: Duration = Duration::from_secs(1);

/// What the status report shows of the listener.
#[derive(Debug, Clone, Default)]
pub(crate) struct ControlState {
    /// The configured address.
    pub(crate) address: Option<SocketAddr>,
    /// Whether it is bound and accepting.
    pub(crate) listening: bool,
    /// Why not, when it is not.
    pub(crate) error: Option<String>,
}

/// The running listener thread; stopping joins it.
pub(crate) struct Control {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Control {
    /// Starts `tm-ctl`.
    pub(crate) fn start(inner: Arc<Inner>) -> std::io::Result<Control> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tm-ctl".into())
            .spawn(move || Server::new(inner, flag).run())?;
        Ok(Control {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops and joins the thread (within [`TICK`] plus one request's work).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// The request head so far, then the reply.
    buf: Vec<u8>,
    /// Octets of the reply written so far (`Some` once replying).
    written: Option<usize>,
    deadline: Instant,
    accepted: Instant,
}

struct Server {
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
    listener: Option<(SocketAddr, TcpListener)>,
    /// The address that failed, when, and the error logged for it.
    failed: Option<(SocketAddr, Instant, String)>,
    conns: Vec<Conn>,
    /// Most octets of replies held at once ([`MAX_REPLY_OCTETS`]).
    reply_budget: usize,
    /// Until when the listener is left alone after `accept` failed for
    /// want of descriptors.
    accept_paused: Option<Instant>,
}

impl Server {
    fn new(inner: Arc<Inner>, stop: Arc<AtomicBool>) -> Server {
        Server {
            inner,
            stop,
            listener: None,
            failed: None,
            conns: Vec::new(),
            reply_budget: MAX_REPLY_OCTETS,
            accept_paused: None,
        }
    }

    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.turn()));
            if let Err(p) = turn {
                self.inner.log(
                    LogLevel::Error,
                    &format!(
                        "internal error in the control listener (it goes on): {}",
                        super::panic_message(&*p)
                    ),
                );
                self.conns.clear();
                std::thread::sleep(TICK);
            }
        }
        self.set_state(|s| s.listening = false);
    }

    fn set_state(&self, f: impl FnOnce(&mut ControlState)) {
        let mut g = self.inner.control.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }

    /// Binds, rebinds or unbinds to follow the configuration.
    fn follow(&mut self) {
        let want = self.inner.cell.load().settings.control;
        if self.listener.as_ref().map(|l| l.0) == want && want.is_some() {
            return;
        }
        if let Some((old, _)) = self.listener.take() {
            self.inner
                .log(LogLevel::Info, &format!("control listener on {old} closed"));
        }
        let Some(addr) = want else {
            self.failed = None;
            self.set_state(|s| *s = ControlState::default());
            return;
        };
        let now = Instant::now();
        if let Some((a, at, _)) = &self.failed
            && *a == addr
            && now < *at + RETRY
        {
            return;
        }
        match bind(addr) {
            Ok(l) => {
                self.inner.log(
                    LogLevel::Info,
                    &format!("control listener on http://{addr}/ (metrics at /metrics)"),
                );
                self.listener = Some((addr, l));
                self.failed = None;
                self.set_state(|s| {
                    *s = ControlState {
                        address: Some(addr),
                        listening: true,
                        error: None,
                    }
                });
            }
            Err(e) => {
                let msg = format!("cannot listen on {addr}: {e}");
                let logged = self
                    .failed
                    .as_ref()
                    .is_some_and(|(a, _, m)| *a == addr && *m == msg);
                if !logged {
                    self.inner.log(
                        LogLevel::Warn,
                        &format!("control listener: {msg}; trying again every second"),
                    );
                }
                self.set_state(|s| {
                    *s = ControlState {
                        address: Some(addr),
                        listening: false,
                        error: Some(msg.clone()),
                    }
                });
                self.failed = Some((addr, now, msg));
            }
        }
    }

    /// One turn: follow the configuration, wait for the sockets (at most
    /// [`TICK`]), accept, read, reply, expire.
    fn turn(&mut self) {
        self.follow();
        self.wait();
        self.accept();
        self.step_all(Instant::now());
    }

    /// Moves every connection on.
    fn step_all(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.conns.len() && !self.stop.load(Ordering::SeqCst) {
            let (done, replied) = match self.conns.get_mut(i) {
                Some(c) => {
                    let reading = c.written.is_none();
                    let done = step(&self.inner, c, now);
                    (done, reading && c.written.is_some())
                }
                None => (true, false),
            };
            if done {
                self.conns.swap_remove(i);
            } else {
                i += 1;
                if replied {
                    // May close connections before i: they have been
                    // stepped this turn, or are stepped next turn.
                    self.within_budget();
                }
            }
        }
    }

    /// Waits until a socket is ready or [`TICK`] passes.
    fn wait(&self) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.conns.len() + 1);
        let paused = self.accept_paused.is_some_and(|t| Instant::now() < t);
        if let Some((_, l)) = self.listener.as_ref().filter(|_| !paused) {
            fds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        for c in &self.conns {
            fds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events: if c.written.is_some() {
                    libc::POLLOUT
                } else {
                    libc::POLLIN
                },
                revents: 0,
            });
        }
        if fds.is_empty() {
            std::thread::sleep(TICK);
            return;
        }
        // SAFETY: `fds` is a live array of `fds.len()` pollfd structs that
        // poll only reads and writes within; the descriptors are ours.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                TICK.as_millis() as libc::c_int,
            );
        }
    }

    /// Takes every pending connection; over the cap, the oldest that has
    /// not sent its request yet is closed.
    fn accept(&mut self) {
        if self.accept_paused.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.accept_paused = None;
        // Each new connection may cost a reply's work: the stop flag is
        // looked at before each, so a flood of requests cannot hold the
        // engine's drop.
        while !self.stop.load(Ordering::SeqCst) {
            let Some((_, l)) = &self.listener else {
                return;
            };
            let stream = match l.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    // Out of descriptors (EMFILE, ENFILE, ENOBUFS): the
                    // listener stays readable, so poll would return at once
                    // and the thread spin; leave it out of poll for a tick.
                    self.accept_paused = Some(Instant::now() + TICK);
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let now = Instant::now();
            let mut c = Conn {
                stream,
                buf: Vec::new(),
                written: None,
                deadline: now + READ_DEADLINE,
                accepted: now,
            };
            // A scraper's request is usually there already: answer it
            // before any eviction can pick it.
            if step(&self.inner, &mut c, now) {
                continue;
            }
            if self.conns.len() >= MAX_CONNECTIONS {
                // The oldest still sending its request; if every one is
                // taking a reply, the oldest of those (it has had longest).
                let victim = self
                    .conns
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, c)| (c.written.is_some(), c.accepted))
                    .map(|(i, _)| i);
                if let Some(i) = victim {
                    self.conns.swap_remove(i);
                }
            }
            self.conns.push(c);
            self.within_budget();
        }
    }

    /// Closes the connections with the oldest replies until the replies
    /// held add up to at most `reply_budget` octets (one is kept whatever
    /// its size): clients that ask and never read cost the host
    /// at most that much memory, not [`MAX_CONNECTIONS`] pages.
    fn within_budget(&mut self) {
        loop {
            let (mut held, mut replies) = (0usize, 0usize);
            let mut oldest: Option<(usize, Instant)> = None;
            for (i, c) in self.conns.iter().enumerate() {
                if c.written.is_some() {
                    held += c.buf.len();
                    replies += 1;
                    if oldest.is_none_or(|(_, d)| c.deadline < d) {
                        oldest = Some((i, c.deadline));
                    }
                }
            }
            match oldest {
                Some((i, _)) if held > self.reply_budget && replies > 1 => {
                    self.conns.swap_remove(i);
                }
                _ => return,
            }
        }
    }
}

/// Moves one connection on; true when it is finished (and to be closed).
fn step(inner: &Inner, c: &mut Conn, now: Instant) -> bool {
    if now >= c.deadline {
        return true;
    }
    if c.written.is_none() {
        match read_head(inner, c) {
            Head::More => return false,
            Head::Closed => return true,
            Head::Reply(reply) => {
                c.buf = reply;
                c.written = Some(0);
                c.deadline = now + WRITE_DEADLINE;
            }
        }
    }
    let Some(mut w) = c.written else {
        return true;
    };
    while let Some(rest) = c.buf.get(w..).filter(|r| !r.is_empty()) {
        match c.stream.write(rest) {
            Ok(0) => return true,
            Ok(n) => w += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                c.written = Some(w);
                return false;
            }
            Err(_) => return true,
        }
    }
    let _ = c.stream.shutdown(std::net::Shutdown::Write);
    true
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

enum Head {
    More,
    Closed,
    Reply(Vec<u8>),
}

/// Reads what has come of the request head; the reply once it is whole
/// (or too big, or malformed).
fn read_head(inner: &Inner, c: &mut Conn) -> Head {
    let mut chunk = [0u8; 2048];
    loop {
        match c.stream.read(&mut chunk) {
            // The client is done sending: a whole request before its EOF
            // (HTTP/1.0 clients that half-close) is answered.
            Ok(0) if c.buf.is_empty() => return Head::Closed,
            Ok(0) => {
                return match parse(inner, &c.buf) {
                    Head::More => Head::Closed,
                    h => h,
                };
            }
            Ok(n) => {
                c.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if c.buf.len() > MAX_REQUEST {
                    return Head::Reply(reply(
                        431,
                        "Request Header Fields Too Large",
                        "text/plain",
                        b"request too large\n",
                        &[],
                        false,
                    ));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return Head::Closed,
        }
    }
    parse(inner, &c.buf)
}

/// The reply to the request head in `buf`, or `More` while it is partial.
fn parse(inner: &Inner, buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Head::More,
        Ok(httparse::Status::Complete(_)) => {
            let method = req.method.unwrap_or("");
            let path = req.path.unwrap_or("/");
            let host = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
                .map(|h| h.value);
            if let Some(host) = host
                && listening_on_loopback(inner)
                && !local_host(host)
            {
                return Head::Reply(reply(
                    403,
                    "Forbidden",
                    "text/plain",
                    b"a loopback control listener answers only Host: an IP address or localhost\n",
                    &[],
                    false,
                ));
            }
            Head::Reply(route(inner, method, path))
        }
        Err(httparse::Error::TooManyHeaders) => Head::Reply(reply(
            431,
            "Request Header Fields Too Large",
            "text/plain",
            b"too many headers\n",
            &[],
            false,
        )),
        Err(_) => Head::Reply(reply(
            400,
            "Bad Request",
            "text/plain",
            b"bad request\n",
            &[],
            false,
        )),
    }
}

/// Whether the listener is on a loopback address (the default). Only then
/// is the `Host` header checked: a browser on this machine can be led by a
/// hostile page to a name that resolves to 127.0.0.1 (DNS rebinding), and
/// the page would read `/status`; such a request names that host, not an
/// address or `localhost`. A listener made public (`control_public`) is
/// reached by names the operator chooses, and is not checked.
fn listening_on_loopback(inner: &Inner) -> bool {
    inner
        .control
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .address
        .is_none_or(|a| a.ip().is_loopback())
}

/// Whether a `Host` header names this machine by address or as
/// `localhost` (with or without a port).
fn local_host(value: &[u8]) -> bool {
    let Ok(v) = std::str::from_utf8(value) else {
        return false;
    };
    let v = v.trim();
    // `[::1]:9153`, `[::1]`, `127.0.0.1:9153`, `localhost:9153`.
    let host = if let Some(rest) = v.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, _)) => h,
            None => return false,
        }
    } else {
        v.rsplit_once(':').map_or(v, |(h, _)| h)
    };
    host.parse::<std::net::IpAddr>().is_ok()
        || host.eq_ignore_ascii_case("localhost")
        || host
            .get(host.len().saturating_sub(10)..)
            .is_some_and(|t| t.eq_ignore_ascii_case(".localhost"))
}

/// The reply to a request: GET and HEAD only.
fn route(inner: &Inner, method: &str, target: &str) -> Vec<u8> {
    let head = method == "HEAD";
    if method != "GET" && !head {
        return reply(
            405,
            "Method Not Allowed",
            "text/plain",
            b"only GET and HEAD\n",
            &[("Allow", "GET, HEAD")],
            false,
        );
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    page(inner, path, head)
}

/// The reply to `GET path`.
fn page(inner: &Inner, path: &str, head: bool) -> Vec<u8> {
    match path {
        "/metrics" => reply(
            200,
            "OK",
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            inner.metrics_text().as_bytes(),
            &[],
            head,
        ),
        "/status" => reply(
            200,
            "OK",
            "application/json",
            inner.status_json().as_bytes(),
            &[],
            head,
        ),
        "/healthz" => match inner.health_problem() {
            None => reply(200, "OK", "text/plain", b"ok\n", &[], head),
            Some(why) => reply(
                503,
                "Service Unavailable",
                "text/plain",
                format!("{why}\n").as_bytes(),
                &[],
                head,
            ),
        },
        "/" | "/index.html" => reply(
            200,
            "OK",
            "text/html; charset=utf-8",
            STATUS_PAGE.as_bytes(),
            &[],
            head,
        ),
        _ => reply(404, "Not Found", "text/plain", b"not found\n", &[], head),
    }
}

/// The status page: one file, no external assets; its script polls `/status`.
const STATUS_PAGE: &str = include_str!("status_page.html");

/// A whole HTTP/1.1 reply that ends the connection.
fn reply(
    code: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
    head_only: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 256);
    let _ = write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A config of `n` endpoints (their series make `/metrics` about 0.8 KB each).
    fn engine(n: usize) -> crate::Engine {
        let mut t =
            String::from("[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n");
        for p in 0..n.div_ceil(20) {
            t += &format!("[[profile]]\nname = \"p{p}\"\nrouting = \"weighted\"\n");
            for e in 0..20.min(n - p * 20) {
                t += &format!(
                    "[[profile.endpoint]]\nname = \"endpoint-{p}-{e}\"\naddresses = [\"192.0.2.{}\"]\n",
                    e + 1
                );
            }
        }
        crate::Engine::from_toml(&t, None).unwrap()
    }

    /// A server of `e` on a loopback port of its own (not the config's:
    /// these tests drive its turns themselves, without `follow`).
    fn server(e: &crate::Engine) -> (Server, SocketAddr) {
        let mut s = Server::new(e.inner.clone(), Arc::new(AtomicBool::new(false)));
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        s.listener = Some((addr, l));
        (s, addr)
    }

    /// One turn without `follow`.
    fn drive(s: &mut Server) {
        s.wait();
        s.accept();
        s.step_all(Instant::now());
    }

    fn set_buf(fd: i32, opt: libc::c_int, n: libc::c_int) {
        // SAFETY: a live socket, an int option of the size given.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&n as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
    }

    /// A client that sends its request and then half-closes (HTTP/1.0
    /// over `nc -N`, `socat`, scripts) gets its reply: before, the EOF
    /// that came with the request closed the connection unanswered.
    #[test]
    fn a_half_closed_request_is_answered() {
        let e = engine(2);
        let (mut s, addr) = server(&e);
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..10 {
            drive(&mut s);
        }
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = String::new();
        let _ = c.read_to_string(&mut r);
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\nok\n"),
            "{r:?}"
        );
        // A partial head and then EOF: closed without a reply.
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /healthz HTTP/1.0\r\n").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..10 {
            drive(&mut s);
        }
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = String::new();
        let _ = c.read_to_string(&mut r);
        assert_eq!(r, "");
        assert!(s.conns.is_empty());
    }

    /// Clients that ask for `/metrics` and never read hold at most the
    /// reply budget of the host's memory (before: each held its whole
    /// reply until the write deadline, 64 × the page); the oldest replies
    /// are dropped first, and a new scraper still gets a whole page.
    #[test]
    fn replies_in_flight_stay_within_the_budget() {
        let e = engine(1000);
        let page = e.inner.metrics_text().len();
        assert!(page > 500_000, "{page}");
        let (mut s, addr) = server(&e);
        s.reply_budget = 3 * page + page / 2;
        let mut clients: Vec<TcpStream> = (0..12)
            .map(|_| {
                let c = TcpStream::connect(addr).unwrap();
                set_buf(c.as_raw_fd(), libc::SO_RCVBUF, 4096);
                c
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        drive(&mut s);
        assert_eq!(s.conns.len(), 12);
        // Small send buffers: no reply fits in the kernel's buffers.
        for c in &s.conns {
            set_buf(c.stream.as_raw_fd(), libc::SO_SNDBUF, 4096);
        }
        for c in &mut clients {
            c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..20 {
            drive(&mut s);
            if s.conns.iter().all(|c| c.written.is_some()) {
                break;
            }
        }
        let held: usize = s.conns.iter().map(|c| c.buf.len()).sum();
        assert!(
            held <= s.reply_budget,
            "{} replies in flight hold {held} octets (budget {})",
            s.conns.len(),
            s.reply_budget
        );
        assert_eq!(s.conns.len(), 3, "the three newest replies are kept");
        // A scraper that reads gets the whole page.
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        c.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            assert!(Instant::now() < deadline, "no whole reply");
            drive(&mut s);
            match c.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        let text = String::from_utf8(got).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        assert!(body.contains("trafficmgr_build_info"));
    }

    /// With the stop flag up, a turn builds no more replies, however many
    /// requests wait (before: the accept loop answered every pending
    /// connection first, a `/metrics` page each, so a flood of scrapes
    /// held the engine's drop for seconds).
    #[test]
    fn a_raised_stop_flag_ends_the_turn_before_more_work() {
        let e = engine(1000);
        let (mut s, addr) = server(&e);
        let mut clients: Vec<TcpStream> = (0..20)
            .map(|_| {
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
                c
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        s.stop.store(true, Ordering::SeqCst);
        s.accept();
        s.step_all(Instant::now());
        std::thread::sleep(Duration::from_millis(50));
        let answered = clients
            .iter_mut()
            .filter_map(|c| {
                c.set_nonblocking(true).unwrap();
                matches!(c.read(&mut [0u8; 64]), Ok(n) if n > 0).then_some(())
            })
            .count();
        assert_eq!(answered, 0, "replies built after the stop flag went up");
    }

    fn text(r: &[u8]) -> String {
        String::from_utf8_lossy(r).into_owned()
    }

    /// `/healthz`: 200 `ok`, or 503 with the reason when probes cannot run.
    #[test]
    fn healthz_says_why() {
        let e = crate::Engine::from_toml(
            "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n",
            None,
        )
        .unwrap();
        let ok = text(&page(&e.inner, "/healthz", false));
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("\r\n\r\nok\n"),
            "{ok}"
        );
        e.inner
            .maintenance_stats_mut(|m| m.error = Some("no probe thread".into()));
        let bad = text(&page(&e.inner, "/healthz", false));
        assert!(
            bad.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{bad}"
        );
        assert!(bad.ends_with("maintenance: no probe thread\n"), "{bad}");
    }
}
