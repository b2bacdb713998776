//! The embedded default front: a small multi-threaded UDP + TCP DNS server
//! over the engine's public Rust API, so trafficmgr can be tried, shown and
//! tested with `dig` and no other DNS server.
//!
//! ```text
//! cargo run --release --example serve -- --config FILE --listen 127.0.0.1:5353 [--listen [::1]:5353] [--threads N] [options]
//! ```
//!
//! `--help` lists the options: TCP limits (connection cap, initial / idle /
//! message deadlines) and response-rate limiting for UDP (off by default).
//! Logs to stderr. SIGHUP reloads the config; SIGTERM and SIGINT stop it
//! within a second whatever clients do (every thread joined, exit status 0).

mod rrl;
mod tcp;

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
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

const HELP: &str = "\
usage: serve --config FILE [--listen ADDR:PORT]... [options]

  --config FILE               trafficmgr TOML configuration (required)
  --listen ADDR:PORT          UDP and TCP address to serve (repeatable;
                              default 127.0.0.1:5353)
  --threads N                 UDP threads per address (default: CPUs, at least 2)

TCP (never rate-limited; BIND's names in brackets):
  --tcp-clients N             open connections at most; one more closes the
                              idlest (the oldest last complete query) [tcp-clients]
                              (default 256)
  --tcp-initial-timeout DUR   a new connection must start its first query
                              within DUR [tcp-initial-timeout] (default 10s)
  --tcp-idle-timeout DUR      and its next query within DUR of a reply
                              [tcp-idle-timeout] (default 10s)
  --tcp-message-timeout DUR   a query must be complete within DUR of its first
                              octet, a reply written within DUR (default 5s)

UDP response-rate limiting, BIND's rate-limit { } (off unless a rate is given):
  --rrl-responses-per-second N  answers per second per client netblock and
                              (qname, qtype) [responses-per-second] (0 = off, max 1000)
  --rrl-nodata-per-second N   NODATA replies (default: responses-per-second)
  --rrl-nxdomains-per-second N  NXDOMAIN replies, counted per zone
                              (default: responses-per-second)
  --rrl-errors-per-second N   REFUSED/FORMERR/... replies, all together
                              (default: responses-per-second)
  --rrl-window SECS           averaging window, 1-3600 [window] (default 15)
  --rrl-slip N                every Nth limited reply is sent truncated (TC=1) so
                              real clients retry over TCP; 0 = never, 1 = always,
                              max 10 [slip] (default 2)
  --rrl-ipv4-prefix-length N  client netblock, IPv4 [ipv4-prefix-length] (default 24)
  --rrl-ipv6-prefix-length N  client netblock, IPv6 [ipv6-prefix-length] (default 56)
  --rrl-max-table-size N      accounts kept (fixed memory, least recently used
                              evicted) [max-table-size] (default 20000)

DUR is seconds (\"2\", \"0.5\") or with a unit (\"500ms\", \"2s\").
SIGHUP reloads the config; SIGTERM/SIGINT stop the server within a second.
";

fn usage() -> ! {
    eprint!("{HELP}");
    std::process::exit(2);
}

fn duration(s: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v > 0.0 && v * scale <= 86_400.0).then(|| Duration::from_secs_f64(v * scale))
}

fn main() {
    let mut config = None;
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let mut tcp = tcp::Settings::default();
    let mut rrl = rrl::Settings::default();
    let mut rrl_rates: [Option<u32>; 4] = [None; 4];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            print!("{HELP}");
            return;
        }
        let v = args.next().unwrap_or_else(|| usage());
        let num = |max: u64| v.parse::<u64>().ok().filter(|n| *n <= max);
        let ok = match a.as_str() {
            "--config" => {
                config = Some(v.clone());
                true
            }
            "--listen" => v.parse().map(|a| listen.push(a)).is_ok(),
            "--threads" => num(1024)
                .filter(|n| *n > 0)
                .map(|n| threads = n as usize)
                .is_some(),
            "--tcp-clients" => num(1 << 20)
                .filter(|n| *n > 0)
                .map(|n| tcp.max_clients = n as usize)
                .is_some(),
            "--tcp-initial-timeout" => duration(&v).map(|d| tcp.initial_timeout = d).is_some(),
            "--tcp-idle-timeout" => duration(&v).map(|d| tcp.idle_timeout = d).is_some(),
            "--tcp-message-timeout" => duration(&v).map(|d| tcp.message_timeout = d).is_some(),
            "--rrl-responses-per-second" => rate(&mut rrl_rates[rrl::ANSWER], num),
            "--rrl-nodata-per-second" => rate(&mut rrl_rates[rrl::NODATA], num),
            "--rrl-nxdomains-per-second" => rate(&mut rrl_rates[rrl::NXDOMAIN], num),
            "--rrl-errors-per-second" => rate(&mut rrl_rates[rrl::ERROR], num),
            "--rrl-window" => num(u64::from(rrl::MAX_WINDOW))
                .filter(|n| *n > 0)
                .map(|n| rrl.window = n as u32)
                .is_some(),
            "--rrl-slip" => num(u64::from(rrl::MAX_SLIP))
                .map(|n| rrl.slip = n as u32)
                .is_some(),
            "--rrl-ipv4-prefix-length" => num(32).map(|n| rrl.ipv4_prefix = n as u8).is_some(),
            "--rrl-ipv6-prefix-length" => num(128).map(|n| rrl.ipv6_prefix = n as u8).is_some(),
            "--rrl-max-table-size" => num(1 << 24)
                .filter(|n| *n > 0)
                .map(|n| rrl.max_table_size = n as usize)
                .is_some(),
            _ => false,
        };
        if !ok {
            eprintln!("serve: bad option or value: {a} {v}");
            usage();
        }
    }
    let Some(config) = config else { usage() };
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
            std::process::exit(1);
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
        let udp =
            UdpSocket::bind(addr).unwrap_or_else(|e| fail(&format!("cannot bind UDP {addr}: {e}")));
        let tl = TcpListener::bind(addr)
            .unwrap_or_else(|e| fail(&format!("cannot bind TCP {addr}: {e}")));
        if udp.set_read_timeout(Some(TICK)).is_err() || tl.set_nonblocking(true).is_err() {
            fail(&format!("cannot set up the sockets of {addr}"));
        }
        for _ in 0..threads {
            let sock = udp
                .try_clone()
                .unwrap_or_else(|e| fail(&format!("UDP socket {addr}: {e}")));
            let (eng, lim) = (engine.clone(), limiter.clone());
            handles.push(std::thread::spawn(move || {
                udp_loop(sock, &eng, lim.as_deref(), start)
            }));
        }
        listeners.push(tl);
        eprintln!("serve: listening on {addr} (UDP with {threads} threads, TCP)");
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
}

const TICK: Duration = Duration::from_millis(100);

fn fail(msg: &str) -> ! {
    eprintln!("serve: {msg}");
    std::process::exit(1);
}

fn rate(slot: &mut Option<u32>, num: impl Fn(u64) -> Option<u64>) -> bool {
    num(u64::from(rrl::MAX_RATE))
        .map(|n| *slot = Some(n as u32))
        .is_some()
}

/// The largest UDP payload (over IPv6 without jumbograms; 65,507 over
/// IPv4): a query is read whole, never cut to a smaller buffer.
const MAX_UDP: usize = 65_535;

fn udp_loop(sock: UdpSocket, engine: &Engine, rrl: Option<&rrl::Rrl>, start: Instant) {
    // Allocated once per thread, before the first query.
    let mut q = vec![0u8; MAX_UDP].into_boxed_slice();
    let mut out = [0u8; 4096];
    while !STOP.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut q) {
            Ok(x) => x,
            Err(_) => continue,
        };
        let Ok(mut len) = engine.answer_message(&q[..n], Some(peer.ip()), false, &mut out) else {
            continue;
        };
        if let Some(rrl) = rrl {
            let now = start.elapsed().as_secs() as u32;
            match rrl.check(client_ip(peer), &out[..len], now) {
                rrl::Verdict::Send => {}
                rrl::Verdict::Drop => continue,
                rrl::Verdict::Slip => len = rrl::truncate(&mut out, len),
            }
        }
        let _ = sock.send_to(&out[..len], peer);
    }
}

fn client_ip(peer: SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
        ip => ip,
    }
}
