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
//! sent its request yet, or else the oldest of all), and every reply ends the connection
//! (`Connection: close`). The thread looks at its stop flag at least every
//! 100 ms, so the engine's drop joins it within that bound whatever the
//! clients do. (A server crate with its own thread pool or async runtime
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
}

impl Server {
    fn new(inner: Arc<Inner>, stop: Arc<AtomicBool>) -> Server {
        Server {
            inner,
            stop,
            listener: None,
            failed: None,
            conns: Vec::new(),
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
        let now = Instant::now();
        let mut i = 0;
        while i < self.conns.len() {
            let done = match self.conns.get_mut(i) {
                Some(c) => step(&self.inner, c, now),
                None => true,
            };
            if done {
                self.conns.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Waits until a socket is ready or [`TICK`] passes.
    fn wait(&self) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.conns.len() + 1);
        if let Some((_, l)) = &self.listener {
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
        let Some((_, l)) = &self.listener else {
            return;
        };
        loop {
            let stream = match l.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return, // WouldBlock, or out of descriptors: next turn
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
            Ok(0) => return Head::Closed,
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
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&c.buf) {
        Ok(httparse::Status::Partial) => Head::More,
        Ok(httparse::Status::Complete(_)) => {
            let method = req.method.unwrap_or("");
            let path = req.path.unwrap_or("/");
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
mod tests {
    use super::*;

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
