//! `trafficmgr serve`: the embedded default front, a small multi-threaded
//! UDP + TCP DNS server over the engine's public Rust API, so trafficmgr
//! can be tried, shown and tested with `dig` and no other DNS server.
//!
//! ```text
//! trafficmgr serve --config FILE --listen 127.0.0.1:5353 [--listen [::1]:5353] [--threads N] [options]
//! cargo run --release --example serve -- --config FILE --listen ADDR   (the same, as an example)
//! ```
//!
//! `--help` lists the options: TCP limits (connection cap, initial / idle /
//! message deadlines) and response-rate limiting for UDP (off by default).
//! Logs to stderr. SIGHUP reloads the config; SIGTERM and SIGINT stop it
//! within a second whatever clients do (every thread joined, exit status 0).

pub mod rrl;
pub mod tcp;
pub mod udp;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use trafficmgr::{Engine, LogLevel};

// Set by the signal handler, which can reach nothing else.
static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// The front's options (BIND's names in brackets). DUR is seconds ("2",
/// "0.5") or with a unit ("500ms", "2s"). A later option wins over an
/// earlier one.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "SIGHUP reloads the config; SIGTERM/SIGINT stop the server within a second."
)]
pub struct ServeArgs {
    /// trafficmgr TOML configuration
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// UDP and TCP address to serve (repeatable; default 127.0.0.1:5353)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// UDP threads per address, each with its own socket (SO_REUSEPORT: the
    /// kernel spreads clients over them) taking up to 32 queued queries per
    /// system call (default: CPUs, at least 2)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,

    /// TCP: open connections at most; one more closes the idlest (the oldest
    /// last complete query) [tcp-clients] (default 256)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1 << 20), help_heading = "TCP (never rate-limited)")]
    pub tcp_clients: Option<u64>,
    /// TCP: a new connection must start its first query within DUR
    /// [tcp-initial-timeout] (default 10s)
    #[arg(long, value_name = "DUR", value_parser = duration, help_heading = "TCP (never rate-limited)")]
    pub tcp_initial_timeout: Option<Duration>,
    /// TCP: and its next query within DUR of a reply [tcp-idle-timeout] (default 10s)
    #[arg(long, value_name = "DUR", value_parser = duration, help_heading = "TCP (never rate-limited)")]
    pub tcp_idle_timeout: Option<Duration>,
    /// TCP: a query must be complete within DUR of its first octet, a reply
    /// written within DUR (default 5s)
    #[arg(long, value_name = "DUR", value_parser = duration, help_heading = "TCP (never rate-limited)")]
    pub tcp_message_timeout: Option<Duration>,

    /// Answers per second per client netblock and (qname, qtype)
    /// [responses-per-second] (0 = off, max 1000)
    #[arg(long, value_name = "N", value_parser = rate, help_heading = RRL)]
    pub rrl_responses_per_second: Option<u32>,
    /// NODATA replies (default: responses-per-second)
    #[arg(long, value_name = "N", value_parser = rate, help_heading = RRL)]
    pub rrl_nodata_per_second: Option<u32>,
    /// NXDOMAIN replies, counted per zone (default: responses-per-second)
    #[arg(long, value_name = "N", value_parser = rate, help_heading = RRL)]
    pub rrl_nxdomains_per_second: Option<u32>,
    /// REFUSED/FORMERR/... replies, all together (default: responses-per-second)
    #[arg(long, value_name = "N", value_parser = rate, help_heading = RRL)]
    pub rrl_errors_per_second: Option<u32>,
    /// Averaging window in seconds, 1-3600 [window] (default 15)
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=i64::from(rrl::MAX_WINDOW)), help_heading = RRL)]
    pub rrl_window: Option<u32>,
    /// Every Nth limited reply is sent truncated (TC=1) so real clients retry
    /// over TCP; 0 = never, 1 = always, max 10 [slip] (default 2)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=i64::from(rrl::MAX_SLIP)), help_heading = RRL)]
    pub rrl_slip: Option<u32>,
    /// Client netblock, IPv4 [ipv4-prefix-length] (default 24)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=32), help_heading = RRL)]
    pub rrl_ipv4_prefix_length: Option<u8>,
    /// Client netblock, IPv6 [ipv6-prefix-length] (default 56)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=128), help_heading = RRL)]
    pub rrl_ipv6_prefix_length: Option<u8>,
    /// Accounts kept (fixed memory, least recently used evicted)
    /// [max-table-size] (default 20000)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1 << 24), help_heading = RRL)]
    pub rrl_max_table_size: Option<u64>,
}

const RRL: &str = "UDP response-rate limiting, BIND's rate-limit { } (off unless a rate is given)";

/// DUR: seconds ("2", "0.5") or with a unit ("500ms", "2s"), above 0 and at most a day.
fn duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: not a duration (\"2\", \"0.5\", \"500ms\", \"2s\")"))?;
    if v.is_finite() && v > 0.0 && v * scale <= 86_400.0 {
        Ok(Duration::from_secs_f64(v * scale))
    } else {
        Err(format!("`{s}`: not above 0 and at most a day"))
    }
}

fn rate(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|n| *n <= rrl::MAX_RATE)
        .ok_or_else(|| format!("`{s}`: not a rate 0..={}", rrl::MAX_RATE))
}

/// Runs the front until SIGTERM/SIGINT; returns the exit status.
pub fn run(a: ServeArgs) -> i32 {
    let config = a.config.display().to_string();
    let mut listen = a.listen.clone();
    let threads = a.threads.map(|n| n as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2)
    });
    let mut tcp = tcp::Settings::default();
    if let Some(n) = a.tcp_clients {
        tcp.max_clients = n as usize;
    }
    if let Some(d) = a.tcp_initial_timeout {
        tcp.initial_timeout = d;
    }
    if let Some(d) = a.tcp_idle_timeout {
        tcp.idle_timeout = d;
    }
    if let Some(d) = a.tcp_message_timeout {
        tcp.message_timeout = d;
    }
    let mut rrl = rrl::Settings::default();
    if let Some(n) = a.rrl_window {
        rrl.window = n;
    }
    if let Some(n) = a.rrl_slip {
        rrl.slip = n;
    }
    if let Some(n) = a.rrl_ipv4_prefix_length {
        rrl.ipv4_prefix = n;
    }
    if let Some(n) = a.rrl_ipv6_prefix_length {
        rrl.ipv6_prefix = n;
    }
    if let Some(n) = a.rrl_max_table_size {
        rrl.max_table_size = n as usize;
    }
    let mut rrl_rates: [Option<u32>; 4] = [None; 4];
    rrl_rates[rrl::ANSWER] = a.rrl_responses_per_second;
    rrl_rates[rrl::NODATA] = a.rrl_nodata_per_second;
    rrl_rates[rrl::NXDOMAIN] = a.rrl_nxdomains_per_second;
    rrl_rates[rrl::ERROR] = a.rrl_errors_per_second;
    if listen.is_empty() {
        listen.push(SocketAddr::from(([127, 0, 0, 1], 5353)));
    }
    // BIND: the other rates default to responses-per-second.
    let base = rrl_rates[rrl::ANSWER].unwrap_or(0);
    for (r, given) in rrl.rates.iter_mut().zip(rrl_rates) {
        *r = given.unwrap_or(base);
    }
    let log: trafficmgr::LogFn = Box::new(|level, msg| {
        let l = match level {
            LogLevel::Error => "error",
            LogLevel::Warn => "warning",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        };
        eprintln!("trafficmgr: {l}: {msg}");
    });
    let engine = match Engine::from_file_with_log(&config, Some(log)) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("serve: {e}");
            return 1;
        }
    };
    // SAFETY: installing async-signal-safe handlers that only store atomics.
    unsafe {
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(s, on_signal as *const () as libc::sighandler_t);
        }
    }
    let limiter = rrl.enabled().then(|| Arc::new(rrl::Rrl::new(rrl.clone())));
    let start = Instant::now();
    let mut handles = Vec::new();
    let mut listeners = Vec::new();
    for addr in &listen {
        // TCP first, without SO_REUSEPORT: a second server started on the
        // same address fails here instead of silently sharing the UDP port.
        let tl = TcpListener::bind(addr)
            .unwrap_or_else(|e| fail(&format!("cannot bind TCP {addr}: {e}")));
        if tl.set_nonblocking(true).is_err() {
            fail(&format!("cannot set up the TCP socket of {addr}"));
        }
        let udp_addr = tl.local_addr().unwrap_or(*addr);
        let socks = udp::bind_group(udp_addr, threads)
            .unwrap_or_else(|e| fail(&format!("cannot bind UDP {addr}: {e}")));
        for sock in socks {
            let (eng, lim) = (engine.clone(), limiter.clone());
            handles.push(std::thread::spawn(move || {
                udp::serve(sock, &eng, lim.as_deref(), start, udp::BATCH)
            }));
        }
        listeners.push(tl);
        eprintln!("serve: listening on {udp_addr} (UDP with {threads} threads, TCP)");
    }
    {
        let eng = engine.clone();
        let t = tcp.clone();
        handles.push(std::thread::spawn(move || {
            tcp::serve(listeners, &eng, &t, &STOP)
        }));
    }
    eprintln!(
        "serve: TCP at most {} connections, timeouts initial {:?} idle {:?} message {:?}",
        tcp.max_clients, tcp.initial_timeout, tcp.idle_timeout, tcp.message_timeout
    );
    if let Some(l) = &limiter {
        eprintln!(
            "serve: rate limit {:?}/s (answers, nodata, nxdomain, errors) per /{} and /{}, window {} s, slip {}, {} accounts",
            rrl.rates,
            rrl.ipv4_prefix,
            rrl.ipv6_prefix,
            rrl.window,
            rrl.slip,
            l.capacity()
        );
    }
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        if RELOAD.swap(false, Ordering::SeqCst) {
            match engine.reload() {
                Ok(()) => eprintln!("serve: reloaded {config}"),
                Err(e) => eprintln!("serve: reload failed, still serving the previous config: {e}"),
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if let Some(l) = &limiter {
        eprintln!(
            "serve: rate limit dropped {} and truncated {} replies",
            l.dropped.load(Ordering::Relaxed),
            l.slipped.load(Ordering::Relaxed)
        );
    }
    eprintln!("serve: stopped");
    0
}

const TICK: Duration = Duration::from_millis(100);

fn fail(msg: &str) -> ! {
    eprintln!("serve: {msg}");
    std::process::exit(1);
}

fn client_ip(peer: SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
        ip => ip,
    }
}
