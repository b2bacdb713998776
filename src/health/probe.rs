//! One probe: HTTP/HTTPS with ureq, TCP with a plain connect, DNS with one
//! query over UDP (over TCP when the answer comes truncated). `timeout` is a
//! hard bound on the whole probe (connect, headers and, with `expect_body`,
//! the first 5,120 octets of the body; otherwise the body is never read).
//! Redirects are not followed: a 3xx counts as the status it is (a failure
//! unless `expected_status` lists it). Probes run on the monitor's worker
//! threads, never on a query thread.
//!
//! A DNS probe waits for its answer in the same slices of at most 100 ms as
//! a connect (below), so a stop request is seen as promptly; an answer whose
//! ID, flags or question do not match the query is ignored, as a resolver
//! would, and the wait goes on until the deadline.
//!
//! Every probe kind connects with [`connect`]: one non-blocking `connect(2)`
//! per address that lasts until the probe's deadline (the kernel retransmits
//! the SYN as it would for any connect), polled in slices of at most 100 ms
//! so that a stop request (`tm_engine_free`) is seen within 100 ms. A
//! target's handshake may thus take as long as the probe's `timeout`. The
//! next resolved address is tried only after an immediate refusal
//! (`ECONNREFUSED`, unreachable), never after a timeout. HTTP and HTTPS
//! probes use the same connect through a ureq connector of ours (TLS is then
//! ureq's rustls layer over it), and names are resolved on the probe thread
//! itself (ureq's default resolver would start a detached thread per probe).

use crate::config::{DnsCheck, ProbeProtocol};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, RustlsConnector,
    ShutdownHandle, Transport,
};

/// Where and how to probe one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// Protocol.
    pub protocol: ProbeProtocol,
    /// Address or DNS name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// HTTP path.
    pub path: String,
    /// Host header (None = the URL's host).
    pub host_header: Option<String>,
    /// Other headers.
    pub headers: Vec<(String, String)>,
    /// Hard deadline of the whole probe.
    pub timeout: Duration,
    /// Accepted statuses, inclusive ranges.
    pub expected: Vec<(u16, u16)>,
    /// Check certificates (https).
    pub verify_tls: bool,
    /// Text the first 5,120 octets of the body must contain (http/https).
    pub expect_body: Option<String>,
    /// The query and accepted answers (dns).
    pub dns: Option<DnsCheck>,
    /// The response header that reports the endpoint's load (http/https).
    pub load_header: Option<String>,
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Passed?
    pub ok: bool,
    /// `HTTP 200`, `TCP connected`, or the error.
    pub detail: String,
    /// Time the probe took.
    pub rtt: Duration,
    /// The load reported, in thousandths: `None` when the monitor reads no
    /// load, `Some(NO_LOAD)` when the response did not report one.
    pub load: Option<u32>,
}

/// How long a connect in progress waits before it looks at the stop flag
/// again.
const SLICE: Duration = Duration::from_millis(100);

/// Longest connect or probe budget honoured (a deadline never overflows).
const MAX_BUDGET: Duration = Duration::from_secs(86_400);

/// The HTTP clients of one monitor: with and without certificate checks.
/// `shutdown` interrupts every request in flight, connecting or not (used by
/// `tm_engine_free`): a connect in progress within 100 ms, a request on an
/// open connection at once.
#[derive(Debug, Clone)]
pub struct Clients {
    verify: ureq::Agent,
    no_verify: ureq::Agent,
    stop: Arc<AtomicBool>,
}

fn agent(verify: bool, stop: Arc<AtomicBool>) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(!verify)
        .build();
    let config = ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .max_response_header_size(16 * 1024)
        .user_agent(concat!(
            "trafficmgr/",
            env!("CARGO_PKG_VERSION"),
            " health probe"
        ))
        .tls_config(tls)
        .build();
    let connector = ProbeConnector { stop }.chain(RustlsConnector::default());
    ureq::Agent::with_parts(config, connector, ProbeResolver)
}

/// An HTTP client for the engine's other requests (the fleet's etcd
/// calls): the probes' connector and resolver, so that `stop` (polled
/// while connecting) and the agent's `shutdown` interrupt a request in
/// flight, and `timeout` bounds each request as a whole.
pub fn stoppable_agent(
    tls: ureq::tls::TlsConfig,
    stop: Arc<AtomicBool>,
    timeout: Duration,
    user_agent: &str,
) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .max_idle_connections(4)
        .max_idle_connections_per_host(1)
        .max_response_header_size(16 * 1024)
        .timeout_global(Some(timeout))
        .user_agent(user_agent)
        .tls_config(tls)
        .build();
    let connector = ProbeConnector { stop }.chain(RustlsConnector::default());
    ureq::Agent::with_parts(config, connector, ProbeResolver)
}

impl Clients {
    /// New clients.
    pub fn new() -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        Clients {
            verify: agent(true, stop.clone()),
            no_verify: agent(false, stop.clone()),
            stop,
        }
    }

    /// Interrupts every request in flight; later requests fail at once.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.verify.clone().shutdown();
        self.no_verify.clone().shutdown();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

impl Default for Clients {
    fn default() -> Self {
        Self::new()
    }
}

fn host_for_url(h: &str) -> String {
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V6(a)) => format!("[{a}]"),
        _ => h.to_string(),
    }
}

/// Runs one probe. `stop` (or [`Clients::shutdown`]) aborts it within
/// 100 ms while it connects.
pub fn run(spec: &ProbeSpec, clients: &Clients, stop: &AtomicBool) -> ProbeResult {
    let start = Instant::now();
    let mut load = None;
    let (ok, detail) = match spec.protocol {
        ProbeProtocol::Tcp => tcp(spec, start, &|| {
            stop.load(Ordering::Relaxed) || clients.stopped()
        }),
        ProbeProtocol::Http | ProbeProtocol::Https => http(spec, clients, &mut load),
        ProbeProtocol::Dns => dns(spec, start, &|| {
            stop.load(Ordering::Relaxed) || clients.stopped()
        }),
    };
    ProbeResult {
        ok,
        detail,
        rtt: start.elapsed(),
        load,
    }
}

/// The load a response reports in the monitor's `load_header` (`0.73`,
/// `73%`), in thousandths; `None` when the monitor reads no load,
/// `Some(NO_LOAD)` when the header is missing or not a number.
fn load_of(spec: &ProbeSpec, headers: &ureq::http::HeaderMap) -> Option<u32> {
    let name = spec.load_header.as_deref()?;
    Some(
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(super::parse_load)
            .unwrap_or(super::NO_LOAD),
    )
}

fn http(spec: &ProbeSpec, clients: &Clients, load: &mut Option<u32>) -> (bool, String) {
    let scheme = if spec.protocol == ProbeProtocol::Https {
        "https"
    } else {
        "http"
    };
    let url = format!(
        "{scheme}://{}:{}{}",
        host_for_url(&spec.host),
        spec.port,
        spec.path
    );
    let agent = if spec.verify_tls {
        &clients.verify
    } else {
        &clients.no_verify
    };
    let mut req = agent.get(&url);
    if let Some(h) = &spec.host_header {
        req = req.header("Host", h);
    }
    for (k, v) in &spec.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let timeout = spec.timeout.min(MAX_BUDGET);
    let req = req
        .config()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout))
        .build();
    match req.call() {
        Ok(resp) => {
            let code = resp.status().as_u16();
            *load = load_of(spec, resp.headers());
            let ok = spec.expected.iter().any(|(a, b)| (*a..=*b).contains(&code));
            let Some(want) = spec.expect_body.as_deref().filter(|_| ok) else {
                // The body is not read: dropping the response closes the
                // connection.
                return (ok, format!("HTTP {code}"));
            };
            // At most BODY_WINDOW octets, within the request's global
            // timeout (ureq applies it to the body as well).
            let mut body = Vec::with_capacity(BODY_WINDOW);
            let read = resp
                .into_body()
                .into_reader()
                .take(BODY_WINDOW as u64)
                .read_to_end(&mut body);
            if let Err(e) = read {
                return (false, format!("HTTP {code}, body: {e}"));
            }
            if contains(&body, want.as_bytes()) {
                (true, format!("HTTP {code}, body matched"))
            } else {
                (
                    false,
                    format!(
                        "HTTP {code}, body did not contain {:?} (first {} octets read)",
                        want,
                        body.len()
                    ),
                )
            }
        }
        Err(e) => (false, e.to_string()),
    }
}

/// Octets of a response body read to look for `expect_body`.
const BODY_WINDOW: usize = crate::config::BODY_WINDOW;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A DNS probe: the configured question over UDP to the first address that
/// does not refuse at once; over TCP to the same address when the answer
/// is truncated.
fn dns(spec: &ProbeSpec, start: Instant, stop: &dyn Fn() -> bool) -> (bool, String) {
    let Some(check) = &spec.dns else {
        return (false, "no DNS question configured".into());
    };
    let addrs = match resolve(&spec.host, spec.port) {
        Ok(a) => a,
        Err(e) => return (false, format!("cannot resolve {}: {e}", spec.host)),
    };
    let deadline = start + spec.timeout.min(MAX_BUDGET);
    let id = query_id();
    let query = match dns_query(check, id) {
        Ok(q) => q,
        Err(e) => return (false, e),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in &addrs {
        let r = dns_udp(*addr, &query, deadline, stop).and_then(|m| match m {
            Some(m) if m.metadata.truncation => {
                dns_tcp(*addr, &query, deadline, stop).map(|m| (m, " over TCP"))
            }
            Some(m) => Ok((m, "")),
            None => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")),
        });
        match r {
            Ok((m, how)) => return judge(check, &m, how),
            Err(e) if refused_at_once(&e) => last = e,
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    match last.kind() {
        io::ErrorKind::Interrupted => (false, "stopped".into()),
        io::ErrorKind::TimedOut => (false, "DNS: no answer before the timeout".into()),
        _ => (false, format!("DNS: {last}")),
    }
}

/// A query ID that an off-path sender cannot guess from the last one.
fn query_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() as u16
}

fn dns_query(check: &DnsCheck, id: u16) -> Result<Vec<u8>, String> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let name = Name::from_ascii(format!("{}.", check.name))
        .map_err(|e| format!("DNS: the name {:?}: {e}", check.name))?;
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = false;
    m.add_query(Query::query(name, RecordType::from(check.qtype)));
    m.to_vec()
        .map_err(|e| format!("DNS: cannot write the query: {e}"))
}

/// Whether `m` answers `query` (same ID, a response, the same question).
fn answers(m: &hickory_proto::op::Message, query: &[u8]) -> bool {
    use hickory_proto::op::{Message, MessageType};
    let Ok(q) = Message::from_vec(query) else {
        return false;
    };
    m.metadata.id == q.metadata.id
        && m.metadata.message_type == MessageType::Response
        && (m.queries.is_empty() && m.metadata.truncation || m.queries == q.queries)
}

/// One UDP exchange: the answer, or None at the deadline.
fn dns_udp(
    addr: SocketAddr,
    query: &[u8],
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> io::Result<Option<hickory_proto::op::Message>> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local)?;
    sock.connect(addr)?;
    sock.set_nonblocking(true)?;
    sock.send(query)?;
    let mut buf = vec![0u8; 65_535];
    loop {
        if !wait_readable(sock.as_raw_fd(), deadline, stop)? {
            return Ok(None);
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Ok(m) = hickory_proto::op::Message::from_vec(buf.get(..n).unwrap_or_default())
            && answers(&m, query)
        {
            return Ok(Some(m));
        }
    }
}

/// One TCP exchange (RFC 1035 4.2.2: a two-octet length before each
/// message), every wait in stop-polled slices until `deadline`.
fn dns_tcp(
    addr: SocketAddr,
    query: &[u8],
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> io::Result<hickory_proto::op::Message> {
    let s = connect_with(addr, deadline, stop)?;
    s.set_nonblocking(true)?;
    let len = u16::try_from(query.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(query);
    let mut sent = 0;
    while sent < out.len() {
        match (&s).write(out.get(sent..).unwrap_or_default()) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_fd(s.as_raw_fd(), libc::POLLOUT, deadline, stop)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut len = [0u8; 2];
    read_full(&s, &mut len, deadline, stop)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_full(&s, &mut msg, deadline, stop)?;
    let m = hickory_proto::op::Message::from_vec(&msg)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("over TCP: {e}")))?;
    if !answers(&m, query) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the answer over TCP does not match the query",
        ));
    }
    Ok(m)
}

fn read_full(
    s: &TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match (&*s).read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the TCP connection mid-answer",
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_fd(s.as_raw_fd(), libc::POLLIN, deadline, stop)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Waits for input on `fd`: true once there is some, false at the deadline.
fn wait_readable(fd: libc::c_int, deadline: Instant, stop: &dyn Fn() -> bool) -> io::Result<bool> {
    match wait_fd(fd, libc::POLLIN, deadline, stop) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
        Err(e) => Err(e),
    }
}

/// Polls `fd` for `events` in slices of at most [`SLICE`], reading `stop`
/// between them: Ok once ready, `TimedOut` at the deadline, `Interrupted`
/// once stopped.
fn wait_fd(
    fd: libc::c_int,
    events: libc::c_short,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> io::Result<()> {
    loop {
        if stop() {
            return Err(stopped());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        let ms = (deadline - now)
            .min(SLICE)
            .as_micros()
            .div_ceil(1000)
            .clamp(1, 1000) as libc::c_int;
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            return Ok(());
        }
    }
}

/// Healthy when the response code is accepted and, with `answer`, one
/// answer record holds it.
fn judge(check: &DnsCheck, m: &hickory_proto::op::Message, how: &str) -> (bool, String) {
    let rcode = m.metadata.response_code;
    let code = u16::from(rcode);
    let name = crate::config::RCODE_NAMES
        .get(usize::from(code))
        .map(|n| n.to_string())
        .unwrap_or_else(|| format!("RCODE {code}"));
    let n = m.answers.len();
    let head = format!(
        "DNS {name}{how}, {n} answer{}",
        if n == 1 { "" } else { "s" }
    );
    if !check.rcodes.contains(&code) {
        return (false, format!("{head}: response code not expected"));
    }
    let Some(want) = &check.answer else {
        return (true, head);
    };
    if m.answers.iter().any(|r| rdata_matches(&r.data, want)) {
        return (true, format!("{head}, {want} among them"));
    }
    let seen: Vec<String> = m
        .answers
        .iter()
        .take(3)
        .map(|r| clip(r.data.to_string()))
        .collect();
    (
        false,
        format!(
            "{head}: no answer is {want} (got {})",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        ),
    )
}

/// Longest text of one answer's data quoted in a probe result: the
/// endpoint's answer may be tens of kilobytes (one TXT record), which the
/// status report and the log would otherwise carry on every state change.
const CLIP: usize = 64;

/// `s`, cut to [`CLIP`] octets (at a character boundary) and marked `…`.
fn clip(mut s: String) -> String {
    if s.len() > CLIP {
        let mut end = CLIP;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Whether an answer's data is `want`: addresses as addresses, names
/// without regard to case or a trailing dot, text strings without quotes.
fn rdata_matches(r: &hickory_proto::rr::RData, want: &str) -> bool {
    use hickory_proto::rr::RData;
    let want_ip = want.parse::<IpAddr>().ok();
    match r {
        RData::A(a) => want_ip == Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => want_ip == Some(IpAddr::V6(a.0)),
        other => {
            let norm = |s: &str| {
                s.trim()
                    .trim_matches('"')
                    .trim_end_matches('.')
                    .to_ascii_lowercase()
            };
            norm(&other.to_string()) == norm(want)
        }
    }
}

fn tcp(spec: &ProbeSpec, start: Instant, stop: &dyn Fn() -> bool) -> (bool, String) {
    let addrs = match resolve(&spec.host, spec.port) {
        Ok(a) => a,
        Err(e) => return (false, format!("cannot resolve {}: {e}", spec.host)),
    };
    let deadline = start + spec.timeout.min(MAX_BUDGET);
    match connect_any(&addrs, deadline, stop) {
        Ok(s) => {
            drop(s);
            (true, "TCP connected".into())
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => (false, "stopped".into()),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => (false, "connect timed out".into()),
        Err(e) => (false, format!("connect: {e}")),
    }
}

/// The addresses of `host` (an address literal or a name, resolved here on
/// the calling thread by the system resolver).
fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no address"));
    }
    Ok(addrs)
}

/// Whether a connect failed at once for this address only (the next
/// resolved address may still work): nothing was waited for.
fn refused_at_once(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
    )
}

/// [`connect`] to the first of `addrs` that does not refuse at once.
fn connect_any(
    addrs: &[SocketAddr],
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match connect_with(*addr, deadline, stop) {
            Ok(s) => return Ok(s),
            Err(e) if refused_at_once(&e) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// One TCP connect to `addr` that lasts until `deadline`: a non-blocking
/// `connect(2)` (the kernel retransmits the SYN as for any connect; no new
/// handshake is ever started), polled in slices of at most 100 ms, between
/// which `stop` is read. Returns a blocking stream once connected; an error
/// of kind `TimedOut` at the deadline and of kind `Interrupted` ("stopped")
/// once `stop` is set.
pub fn connect(addr: SocketAddr, deadline: Instant, stop: &AtomicBool) -> io::Result<TcpStream> {
    connect_with(addr, deadline, &|| stop.load(Ordering::Relaxed))
}

fn connect_with(
    addr: SocketAddr,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> io::Result<TcpStream> {
    if stop() {
        return Err(stopped());
    }
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns; `OwnedFd`
    // closes it on every path from here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = RawAddr::from(addr);
    let (ptr, len) = raw.as_ptr_len();
    // SAFETY: `ptr` points to a sockaddr of `len` bytes that lives in `raw`
    // for the duration of the call.
    let r = unsafe { libc::connect(fd.as_raw_fd(), ptr, len) };
    if r != 0 {
        let e = io::Error::last_os_error();
        // EINTR: the connect goes on in the background, as for EINPROGRESS.
        if !matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) {
            return Err(e);
        }
        wait_connected(&fd, deadline, stop)?;
    }
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "stopped")
}

/// Waits for the connect in progress on `fd` to finish, in slices of at
/// most [`SLICE`], and returns its outcome (`SO_ERROR`).
fn wait_connected(fd: &OwnedFd, deadline: Instant, stop: &dyn Fn() -> bool) -> io::Result<()> {
    loop {
        if stop() {
            return Err(stopped());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        let slice = (deadline - now).min(SLICE);
        // Round up so a last slice under 1 ms does not spin.
        let ms = slice.as_micros().div_ceil(1000).clamp(1, 1000) as libc::c_int;
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            continue;
        }
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err` and `len` are valid for writes of the sizes given.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
        return Ok(());
    }
}

/// A socket address in the C layout `connect(2)` takes.
enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl From<SocketAddr> for RawAddr {
    fn from(a: SocketAddr) -> RawAddr {
        match a {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_in is plain old data; all zeroes is valid.
                let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                s.sin_family = libc::AF_INET as libc::sa_family_t;
                s.sin_port = a.port().to_be();
                s.sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                };
                RawAddr::V4(s)
            }
            SocketAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is plain old data; all zeroes is valid.
                let mut s: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                s.sin6_port = a.port().to_be();
                s.sin6_flowinfo = a.flowinfo();
                s.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                s.sin6_scope_id = a.scope_id();
                RawAddr::V6(s)
            }
        }
    }
}

impl RawAddr {
    fn as_ptr_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            RawAddr::V4(s) => (
                (s as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            RawAddr::V6(s) => (
                (s as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}

/// ureq's first connector for probes: opens the TCP connection with
/// [`connect_any`] (one connect, the whole budget, the stop flag polled),
/// instead of ureq's blocking `connect_timeout` that `shutdown` cannot
/// interrupt.
#[derive(Debug)]
struct ProbeConnector {
    stop: Arc<AtomicBool>,
}

impl Connector<()> for ProbeConnector {
    type Out = ProbeTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<ProbeTransport>, ureq::Error> {
        let budget = if details.timeout.after.is_not_happening() {
            MAX_BUDGET
        } else {
            (*details.timeout.after).min(MAX_BUDGET)
        };
        let deadline = Instant::now() + budget;
        let stop = &self.stop;
        let addrs: Vec<SocketAddr> = details.addrs.iter().copied().collect();
        let stream = match connect_any(&addrs, deadline, &|| stop.load(Ordering::Relaxed)) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(ureq::Error::Timeout(details.timeout.reason));
            }
            Err(e) => return Err(ureq::Error::Io(e)),
        };
        // Latency of a probe request matters more than packet count.
        stream.set_nodelay(true)?;
        let stream = Arc::new(stream);
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(ProbeTransport { stream, buffers }))
    }
}

/// A connected probe socket as ureq's transport (plain TCP; TLS is layered
/// over it by ureq's rustls connector).
struct ProbeTransport {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
}

impl std::fmt::Debug for ProbeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// The socket timeout for one read or write: `None` = none; an expired
/// budget is ureq's timeout error.
fn io_limit(t: &NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if t.after.is_not_happening() {
        return Ok(None);
    }
    if t.after.is_zero() {
        return Err(ureq::Error::Timeout(t.reason));
    }
    Ok(Some(*t.after))
}

fn io_error(e: io::Error, t: &NextTimeout) -> ureq::Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ureq::Error::Timeout(t.reason),
        _ => ureq::Error::Io(e),
    }
}

impl Transport for ProbeTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let t = timeout.for_write();
        self.stream.set_write_timeout(io_limit(&t)?)?;
        let output = &self.buffers.output()[..amount];
        (&*self.stream)
            .write_all(output)
            .map_err(|e| io_error(e, &t))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let t = timeout.for_read();
        self.stream.set_read_timeout(io_limit(&t)?)?;
        let input = self.buffers.input_append_buf();
        let n = loop {
            match (&*self.stream).read(input) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r.map_err(|e| io_error(e, &t))?,
            }
        };
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open = nothing to read yet and no EOF or error.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut b = [0u8; 1];
        let open =
            matches!(self.stream.peek(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && open
    }
}

/// Resolves the probe URL's host on the probe thread: an address literal
/// as is, a name by the system resolver (ureq's default resolver starts a
/// detached thread per lookup, which `free` could not join).
#[derive(Debug)]
struct ProbeResolver;

impl Resolver for ProbeResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mut out = self.empty();
        for a in resolve(host, port)? {
            if out.try_push(a).is_err() {
                break;
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}
