//! `trafficmgr pdns-backend`: PowerDNS Authoritative → trafficmgr, an adapter for PowerDNS's standard
//! **remote backend** over a unix socket (one adapter process, one engine,
//! one set of health probes for the whole server, one thread per
//! connection). PowerDNS's pipe backend would run one coprocess — and so one
//! engine with its own probes — per backend instance (4 with the default 3
//! UDP distributors + TCP), which is why the remote backend is used.
//!
//! ```text
//! trafficmgr pdns-backend --config /etc/trafficmgr/trafficmgr.toml --socket /run/pdns/tm.sock \
//!     [--socket-group pdns] [--socket-mode 0660] [--max-connections 256] \
//!     [--request-timeout 10] [--idle-timeout 0] [--max-line 65536]
//! cargo run --release --example pdns-remote -- --config FILE --socket PATH   (the same, as an example)
//! ```
//!
//! pdns.conf: `launch=remote` (plus your other backends),
//! `remote-connection-string=unix:path=/run/pdns/tm.sock,timeout=2000`,
//! `edns-subnet-processing=yes`, and `cache-ttl=0`, `query-cache-ttl=0`,
//! `negquery-cache-ttl=0`, `zone-cache-refresh-interval=0` (PowerDNS's
//! caches are not per client). See examples/powerdns/pdns.conf.
//!
//! Protocol (in the library, `trafficmgr::pdns`): one JSON object per line
//! each way. Malformed requests get `{"result":false,"log":[…]}`; the
//! adapter never exits on a bad request or a dropped connection.
//!
//! Limits, against a hostile or broken client on the socket:
//! - a request line longer than `--max-line` bytes gets an error reply and
//!   the connection is closed (memory per connection is bounded by it);
//! - a connection that sends no complete request within `--request-timeout`
//!   seconds of connecting, or leaves a request line unfinished that long,
//!   is closed (PowerDNS sends `initialize` at once and each request in
//!   one write);
//! - a reply must be taken whole within `--request-timeout` of its first
//!   octet (whatever the number of writes it takes), else the connection
//!   is closed: a request/reply exchange lasts at most twice that;
//! - with `--idle-timeout` set, a connection with no request for that long
//!   is closed. Off by default: PowerDNS keeps one connection per backend
//!   thread open for good and answers SERVFAIL to the first query after
//!   the other side closed it (4.7.3, measured) — it does not retry;
//! - at most `--max-connections` at once (lowered to fit the descriptor
//!   limit): at the cap, a new connection replaces the one idle the longest,
//!   so PowerDNS reconnecting is never locked out by idle clients. A
//!   connection mid-request is not shed, unless its replies have piled up
//!   unread past the socket buffer (a write had to wait): PowerDNS reads
//!   each reply before its next request and never does that, so such a
//!   connection is shed first, even mid-reply, for good. Clients that
//!   pipeline requests and read replies in slices cannot hold the cap;
//! - a thread that cannot be created (thread or memory limit) closes that
//!   one connection, with a log line; the adapter goes on.
//!
//! The socket: the adapter refuses to start when `--socket` is served by a
//! live process (another instance) or is not a socket (it never deletes a
//! file it did not create); it removes a stale socket (nobody listening);
//! at exit it removes the socket only when it is still the one it created.
//! Mode `--socket-mode` (default 0660) whatever the umask, group
//! `--socket-group`. Logs go to stderr, one line each.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{BufRead, BufReader, ErrorKind};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trafficmgr::{Engine, LogLevel, pdns};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Default longest request line (bytes, newline excluded). PowerDNS's
/// requests are a few hundred bytes (a `lookup` carries one name of at
/// most 255 octets).
const DEFAULT_MAX_LINE: usize = 64 * 1024;
/// Descriptors kept free for everything but connections (listener, stdio,
/// config and data files, health probes' sockets).
const FD_RESERVE: u64 = 32;
/// A connection's thread's stack: JSON nesting is bounded (128) by serde_json.
const STACK: usize = 512 * 1024;
/// How often a blocked connection looks at the stop flag and its deadline.
const TICK: Duration = Duration::from_millis(250);

/// The adapter's options.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "pdns.conf: launch=remote, remote-connection-string=unix:path=SOCKET,timeout=2000, \
edns-subnet-processing=yes, and the caches off (see examples/powerdns/pdns.conf). SIGTERM/SIGINT stop it."
)]
pub struct PdnsArgs {
    /// trafficmgr TOML configuration
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The unix socket PowerDNS's remote backend connects to
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// Group of the socket (name or number)
    #[arg(long = "socket-group", value_name = "NAME|GID")]
    pub group: Option<String>,
    /// Mode of the socket, octal, whatever the umask
    #[arg(long = "socket-mode", value_name = "OCTAL", default_value = "0660", value_parser = octal_mode)]
    pub mode: u32,
    /// Connections at once at most (lowered to fit the descriptor limit); at
    /// the cap a new one replaces the one idle the longest
    #[arg(long = "max-connections", value_name = "N", default_value_t = 256, value_parser = at_least_one)]
    pub max_conns: usize,
    /// Seconds a request (or a reply) may take before the connection is closed
    #[arg(long = "request-timeout", value_name = "SECONDS", default_value = "10", value_parser = seconds_above_zero)]
    pub request: Duration,
    /// Seconds without a request before a connection is closed (0: off)
    #[arg(long = "idle-timeout", value_name = "SECONDS", default_value = "0", value_parser = seconds_or_zero)]
    pub idle: Duration,
    /// Longest request line, in bytes (at least 1024)
    #[arg(long = "max-line", value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE, value_parser = max_line)]
    pub max_line: usize,
}

fn seconds(v: &str, zero_ok: bool) -> Result<Duration, String> {
    v.parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && (*s > 0.0 || zero_ok && *s == 0.0) && *s <= 1e9)
        .map(Duration::from_secs_f64)
        .ok_or(format!("{v}: not a number of seconds"))
}

fn seconds_above_zero(v: &str) -> Result<Duration, String> {
    seconds(v, false)
}

fn seconds_or_zero(v: &str) -> Result<Duration, String> {
    seconds(v, true)
}

fn octal_mode(v: &str) -> Result<u32, String> {
    u32::from_str_radix(v, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or(format!("{v}: not an octal mode 0..0777"))
}

fn at_least_one(v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or(format!("{v}: not a number >= 1"))
}

fn max_line(v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| *n >= 1024)
        .ok_or(format!("{v}: not a number >= 1024"))
}

/// One open connection, as the acceptor sees it.
struct Conn {
    stream: Arc<UnixStream>,
    /// Milliseconds since `Shared::epoch` of the last complete request
    /// (or of the accept).
    last: Arc<AtomicU64>,
    /// Handling a request right now (not shed then, unless `stalled`).
    busy: Arc<AtomicBool>,
    /// A write to it had to wait: its replies piled up unread past the
    /// socket buffer (PowerDNS never does that). Shed first, busy or not.
    stalled: Arc<AtomicBool>,
    /// Shed: shut down, its thread not yet gone.
    closing: bool,
}

struct Shared {
    engine: Engine,
    conns: Mutex<HashMap<u64, Conn>>,
    epoch: Instant,
    request: Duration,
    idle: Option<Duration>,
    max_line: usize,
    /// Lines about clients (start of the window, lines in it, suppressed).
    noted: Mutex<(Instant, u32, u64)>,
}

/// Lines about clients per `NOTE_WINDOW`, beyond which they are counted.
const NOTE_BURST: u32 = 20;
const NOTE_WINDOW: Duration = Duration::from_secs(10);

impl Shared {
    /// Logs a line about a client, at most `NOTE_BURST` per `NOTE_WINDOW`
    /// (a client cycling connections must not flood the log).
    fn note(&self, msg: std::fmt::Arguments<'_>) {
        let mut n = self.noted.lock().unwrap_or_else(|e| e.into_inner());
        if n.0.elapsed() >= NOTE_WINDOW {
            if n.2 > 0 {
                eprintln!("pdns-backend: {} more such lines not shown", n.2);
            }
            *n = (Instant::now(), 0, 0);
        }
        if n.1 < NOTE_BURST {
            n.1 += 1;
            eprintln!("pdns-backend: {msg}");
        } else {
            n.2 += 1;
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections not being shed.
    fn live(&self) -> usize {
        self.conns().values().filter(|c| !c.closing).count()
    }

    /// Closes a stalled connection (the longest idle of them), else the
    /// connection idle the longest (not one mid-request); false when there
    /// is none.
    fn shed_idlest(&self) -> bool {
        let now = self.now_ms();
        let mut conns = self.conns();
        let victim = conns
            .iter_mut()
            .filter(|(_, c)| {
                !c.closing && (c.stalled.load(Ordering::Acquire) || !c.busy.load(Ordering::Acquire))
            })
            .min_by_key(|(_, c)| {
                (
                    !c.stalled.load(Ordering::Acquire),
                    c.last.load(Ordering::Acquire),
                )
            });
        match victim {
            Some((id, c)) => {
                let idle = now.saturating_sub(c.last.load(Ordering::Acquire));
                let why = if c.stalled.load(Ordering::Acquire) {
                    "its replies piled up unread"
                } else {
                    "idle the longest"
                };
                self.note(format_args!(
                    "at the connection limit: closing connection {id} ({why}; last request {idle} ms ago)"
                ));
                // Its thread sees EOF and leaves (removing the entry).
                c.closing = true;
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                true
            }
            None => false,
        }
    }
}

/// Why a reply was not written whole.
enum WriteFail {
    /// Not taken whole by the deadline.
    Late,
    /// The stop flag.
    Stop,
    /// Closed, reset or shed.
    Gone,
}

/// Writes `data` whole by `deadline` (one deadline for all the writes it
/// takes, not one per write), waking every `TICK` for the stop flag. Sets
/// `stalled` when a write has to wait.
fn write_by(
    stream: &UnixStream,
    mut data: &[u8],
    deadline: Instant,
    stalled: &AtomicBool,
) -> Result<(), WriteFail> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    while !data.is_empty() {
        // SAFETY: send from a live buffer of the given length on our descriptor.
        let n = unsafe {
            libc::send(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            data = &data[n as usize..];
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            ErrorKind::Interrupted => continue,
            ErrorKind::WouldBlock => {}
            _ => return Err(WriteFail::Gone),
        }
        stalled.store(true, Ordering::Release);
        if STOP.load(Ordering::Relaxed) {
            return Err(WriteFail::Stop);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(WriteFail::Late);
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        let ms = left.min(TICK).as_millis().max(1) as libc::c_int;
        // SAFETY: poll on one pollfd we own.
        unsafe { libc::poll(&mut p, 1, ms) };
    }
    Ok(())
}

/// Per-connection flags shared with the acceptor.
struct Flags<'a> {
    last: &'a AtomicU64,
    busy: &'a AtomicBool,
    stalled: &'a AtomicBool,
}

/// Reads request lines (at most `max_line` bytes each) and answers them
/// until EOF, an error, a timeout or the stop flag.
fn serve(id: u64, stream: &UnixStream, sh: &Shared, f: Flags<'_>) {
    let Flags {
        last,
        busy,
        stalled,
    } = f;
    let tick = [Some(TICK), Some(sh.request), sh.idle]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(TICK);
    let _ = stream.set_read_timeout(Some(tick));
    let mut reader = BufReader::with_capacity(8192, stream);
    let mut line: Vec<u8> = Vec::new();
    let request_ms = sh.request.as_millis() as u64;
    let idle_ms = sh.idle.map(|d| d.as_millis() as u64);
    // When the line being read began (or the connection, before its first request).
    let mut started = Some(sh.now_ms());
    while !STOP.load(Ordering::Relaxed) {
        let now = sh.now_ms();
        if started.is_some_and(|t| now.saturating_sub(t) >= request_ms) {
            sh.note(format_args!(
                "connection {id}: no complete request within {:?}, closing",
                sh.request
            ));
            return;
        }
        if idle_ms.is_some_and(|i| now.saturating_sub(last.load(Ordering::Acquire)) >= i) {
            sh.note(format_args!(
                "connection {id}: idle for {:?}, closing",
                sh.idle.unwrap_or_default()
            ));
            return;
        }
        let buf = match reader.fill_buf() {
            Ok([]) => return, // closed by the client (or shed)
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        started.get_or_insert(now);
        let (take, complete) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if line.len() + take > sh.max_line {
            sh.note(format_args!(
                "connection {id}: request longer than {} bytes, closing",
                sh.max_line
            ));
            let mut r =
                pdns::error_reply(&format!("request line longer than {} bytes", sh.max_line));
            r.push('\n');
            let _ = write_by(stream, r.as_bytes(), Instant::now() + sh.request, stalled);
            return;
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(if complete { take + 1 } else { take });
        if !complete {
            continue;
        }
        busy.store(true, Ordering::Release);
        last.store(sh.now_ms(), Ordering::Release);
        let mut reply = pdns::reply(&sh.engine, line.trim_ascii());
        reply.push('\n');
        let wrote = write_by(
            stream,
            reply.as_bytes(),
            Instant::now() + sh.request,
            stalled,
        );
        last.store(sh.now_ms(), Ordering::Release);
        busy.store(false, Ordering::Release);
        started = None;
        line.clear();
        if line.capacity() > 16384 {
            line.shrink_to(4096);
        }
        match wrote {
            Ok(()) => {}
            Err(WriteFail::Late) => {
                sh.note(format_args!(
                    "connection {id}: reply not taken within {:?}, closing",
                    sh.request
                ));
                return;
            }
            Err(WriteFail::Stop | WriteFail::Gone) => return,
        }
    }
}

/// The descriptor limit's share for connections.
fn connection_cap(wanted: usize) -> usize {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0
        || rl.rlim_cur == libc::RLIM_INFINITY
    {
        return wanted;
    }
    let fit = rl.rlim_cur.saturating_sub(FD_RESERVE).max(1);
    wanted.min(usize::try_from(fit).unwrap_or(usize::MAX))
}

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{}: NUL in path", p.display()))
}

fn group_id(name: &str) -> Result<libc::gid_t, String> {
    if let Ok(n) = name.parse::<libc::gid_t>() {
        return Ok(n);
    }
    let c = CString::new(name).map_err(|_| format!("--socket-group {name}: bad name"))?;
    // SAFETY: `group` is plain data; all zeroes is a valid value.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0u8; 16384];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are to live buffers of the given sizes.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        )
    };
    if rc != 0 || out.is_null() {
        return Err(format!("--socket-group {name}: no such group"));
    }
    Ok(grp.gr_gid)
}

/// Holds an exclusive `flock` on the socket's directory while we look at,
/// remove or create the socket, so two instances starting together cannot
/// both decide a socket is stale.
struct DirLock {
    _dir: std::fs::File,
}
impl DirLock {
    fn take(sock: &Path) -> Option<DirLock> {
        let dir = match sock.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let f = std::fs::File::open(dir).ok()?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own.
        (unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0).then_some(DirLock { _dir: f })
    }
}

/// What is at the socket path before we bind.
fn clear_path(sock: &Path) -> Result<(), String> {
    let shown = sock.display();
    let meta = match std::fs::symlink_metadata(sock) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{shown} exists and is not a socket; not starting (and not touching it)"
        ));
    }
    match UnixStream::connect(sock) {
        Ok(_) => Err(format!(
            "{shown}: another process is serving on this socket (another pdns-backend?); not starting"
        )),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            // Stale: nobody listens. Remove it if it is still that one.
            match std::fs::symlink_metadata(sock) {
                Ok(m) if m.dev() == meta.dev() && m.ino() == meta.ino() => {
                    std::fs::remove_file(sock)
                        .map_err(|e| format!("{shown}: cannot remove stale socket: {e}"))?;
                    eprintln!("pdns-backend: removed stale socket {shown}");
                    Ok(())
                }
                _ => Err(format!("{shown} changed while starting; not starting")),
            }
        }
        Err(e) => Err(format!(
            "{shown}: cannot tell whether it is in use ({e}); not starting"
        )),
    }
}

/// Binds the socket with mode `mode` and group `gid` (never wider, even
/// for a moment); returns it and the (dev, inode) it was created with.
fn bind(
    sock: &Path,
    mode: u32,
    gid: Option<libc::gid_t>,
) -> Result<(UnixListener, (u64, u64)), String> {
    let shown = sock.display();
    // SAFETY: umask only swaps the process's mask; we restore it.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(sock);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let l = l.map_err(|e| format!("cannot listen on {shown}: {e}"))?;
    let meta = std::fs::symlink_metadata(sock).map_err(|e| format!("{shown}: {e}"))?;
    let id = (meta.dev(), meta.ino());
    let c = cstr(sock)?;
    let fail = |what: &str| {
        let e = std::io::Error::last_os_error();
        let _ = std::fs::remove_file(sock);
        Err(format!("{shown}: cannot {what}: {e}"))
    };
    if let Some(g) = gid {
        // SAFETY: NUL-terminated path; -1 keeps the owner.
        if unsafe {
            libc::fchownat(
                libc::AT_FDCWD,
                c.as_ptr(),
                u32::MAX,
                g,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        } != 0
        {
            return fail("set its group");
        }
    }
    // SAFETY: NUL-terminated path.
    if unsafe { libc::fchmodat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return fail("set its mode");
    }
    Ok((l, id))
}

/// Removes the socket at exit when it is still the one we created.
fn remove_own(sock: &Path, id: (u64, u64)) {
    let _lock = DirLock::take(sock);
    match std::fs::symlink_metadata(sock) {
        Ok(m) if (m.dev(), m.ino()) == id => {
            let _ = std::fs::remove_file(sock);
        }
        Ok(_) => eprintln!(
            "pdns-backend: {} is no longer our socket; leaving it",
            sock.display()
        ),
        Err(_) => {}
    }
}

/// Runs the adapter until SIGTERM/SIGINT; returns the exit status.
pub fn run(o: PdnsArgs) -> i32 {
    let idle = (!o.idle.is_zero()).then_some(o.idle);
    let gid = match o.group.as_deref().map(group_id).transpose() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("pdns-backend: {e}");
            return 2;
        }
    };
    let log: trafficmgr::LogFn = Box::new(|level, msg| {
        let l = match level {
            LogLevel::Error => "Error",
            LogLevel::Warn => "Warning",
            LogLevel::Info => "Info",
            LogLevel::Debug => "Debug",
        };
        eprintln!("trafficmgr {l}: {msg}");
    });
    let engine = match Engine::from_file_with_log(&o.config, Some(log)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("pdns-backend: {e}");
            return 1;
        }
    };
    let sock = o.socket.clone();
    let (listener, sock_id) = {
        let _lock = DirLock::take(&sock);
        match clear_path(&sock).and_then(|()| bind(&sock, o.mode, gid)) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("pdns-backend: {e}");
                return 1;
            }
        }
    };
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("pdns-backend: {e}");
        remove_own(&sock, sock_id);
        return 1;
    }
    // SAFETY: handlers that only store an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let cap = connection_cap(o.max_conns);
    eprintln!(
        "pdns-backend: serving {} on {} (mode {:o}; at most {cap} connections; request timeout {:?}; idle timeout {}; lines up to {} bytes)",
        o.config.display(),
        sock.display(),
        o.mode,
        o.request,
        idle.map_or("off".to_string(), |d| format!("{d:?}")),
        o.max_line
    );
    let shared = Arc::new(Shared {
        engine,
        conns: Mutex::new(HashMap::new()),
        epoch: Instant::now(),
        request: o.request,
        idle,
        max_line: o.max_line,
        noted: Mutex::new((Instant::now(), 0, 0)),
    });
    let mut workers: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    while !STOP.load(Ordering::SeqCst) {
        workers.retain(|h| !h.is_finished());
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                // EMFILE/ENFILE/ENOMEM…: make room if we can, and say so now and then.
                shared.note(format_args!("accept: {e}"));
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    shared.shed_idlest();
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if shared.live() >= cap && !shared.shed_idlest() {
            // Every connection is mid-request (and taking its replies): this
            // one waits its turn elsewhere.
            shared.note(format_args!(
                "at the connection limit ({cap}), all busy: refused a connection"
            ));
            continue;
        }
        let _ = stream.set_nonblocking(false);
        next_id += 1;
        let id = next_id;
        let stream = Arc::new(stream);
        let last = Arc::new(AtomicU64::new(shared.now_ms()));
        let busy = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        shared.conns().insert(
            id,
            Conn {
                stream: stream.clone(),
                last: last.clone(),
                busy: busy.clone(),
                stalled: stalled.clone(),
                closing: false,
            },
        );
        let sh = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("pdns-conn-{id}"))
            .stack_size(STACK)
            .spawn(move || {
                let f = Flags {
                    last: &last,
                    busy: &busy,
                    stalled: &stalled,
                };
                serve(id, &stream, &sh, f);
                sh.conns().remove(&id);
            });
        match spawned {
            Ok(h) => workers.push(h),
            Err(e) => {
                // The closure (and its stream) is dropped with the error.
                if let Some(c) = shared.conns().remove(&id) {
                    let _ = c.stream.shutdown(std::net::Shutdown::Both);
                }
                shared.note(format_args!(
                    "cannot start a thread for connection {id}: {e}; closed it"
                ));
            }
        }
    }
    for c in shared.conns().values() {
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
    }
    for w in workers {
        let _ = w.join();
    }
    remove_own(&sock, sock_id);
    eprintln!("pdns-backend: stopped");
    0
}
