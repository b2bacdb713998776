//! One probe: HTTP/HTTPS with ureq, TCP with a plain connect. `timeout` is a
//! hard bound on the whole probe (connect + headers; the body is never read).
//! Redirects are not followed: a 3xx counts as the status it is (a failure
//! unless `expected_status` lists it). Probes run on the monitor's worker
//! threads, never on a query thread.

use crate::config::ProbeProtocol;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
}

/// The HTTP clients of one monitor: with and without certificate checks.
/// `shutdown` interrupts every request in flight (used by `tm_engine_free`).
#[derive(Debug, Clone)]
pub struct Clients {
    verify: ureq::Agent,
    no_verify: ureq::Agent,
}

fn agent(verify: bool) -> ureq::Agent {
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
    ureq::Agent::new_with_config(config)
}

impl Clients {
    /// New clients.
    pub fn new() -> Clients {
        Clients {
            verify: agent(true),
            no_verify: agent(false),
        }
    }

    /// Interrupts every request in flight; later requests fail at once.
    pub fn shutdown(&self) {
        self.verify.clone().shutdown();
        self.no_verify.clone().shutdown();
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

/// Runs one probe. `stop` aborts a TCP connect in progress.
pub fn run(spec: &ProbeSpec, clients: &Clients, stop: &AtomicBool) -> ProbeResult {
    let start = Instant::now();
    let (ok, detail) = match spec.protocol {
        ProbeProtocol::Tcp => tcp(spec, stop, start),
        ProbeProtocol::Http | ProbeProtocol::Https => http(spec, clients),
    };
    ProbeResult {
        ok,
        detail,
        rtt: start.elapsed(),
    }
}

fn http(spec: &ProbeSpec, clients: &Clients) -> (bool, String) {
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
    let req = req
        .config()
        .timeout_global(Some(spec.timeout))
        .timeout_connect(Some(spec.timeout))
        .build();
    match req.call() {
        Ok(resp) => {
            let code = resp.status().as_u16();
            // The body is not read: dropping the response closes the connection.
            drop(resp);
            let ok = spec.expected.iter().any(|(a, b)| (*a..=*b).contains(&code));
            (ok, format!("HTTP {code}"))
        }
        Err(e) => (false, e.to_string()),
    }
}

fn tcp(spec: &ProbeSpec, stop: &AtomicBool, start: Instant) -> (bool, String) {
    let addrs: Vec<SocketAddr> = match spec.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, spec.port)],
        Err(_) => match (spec.host.as_str(), spec.port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => return (false, format!("cannot resolve {}: {e}", spec.host)),
        },
    };
    let Some(addr) = addrs.first().copied() else {
        return (false, format!("cannot resolve {}: no address", spec.host));
    };
    let deadline = start + spec.timeout;
    // Connect in slices so that a stop request is seen within 100 ms.
    loop {
        if stop.load(Ordering::Relaxed) {
            return (false, "stopped".into());
        }
        let now = Instant::now();
        if now >= deadline {
            return (false, "connect timed out".into());
        }
        let slice = (deadline - now).min(Duration::from_millis(100));
        match TcpStream::connect_timeout(&addr, slice) {
            Ok(s) => {
                drop(s);
                return (true, "TCP connected".into());
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                continue;
            }
            Err(e) => return (false, format!("connect: {e}")),
        }
    }
}
