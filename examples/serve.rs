//! The embedded default front: a small multi-threaded UDP + TCP DNS server
//! over the engine's public Rust API, so trafficmgr can be tried, shown and
//! tested with `dig` and no other DNS server.
//!
//! ```text
//! cargo run --release --example serve -- --config FILE --listen 127.0.0.1:5353 [--listen [::1]:5353] [--threads N]
//! ```
//!
//! Logs to stderr. SIGHUP reloads the config; SIGTERM and SIGINT stop it
//! cleanly (every thread joined, exit status 0).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use trafficmgr::{Engine, LogLevel};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);
const MAX_TCP_CONNS: usize = 256;

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

fn usage() -> ! {
    eprintln!("usage: serve --config FILE --listen ADDR:PORT [--listen ADDR:PORT …] [--threads N]");
    std::process::exit(2);
}

fn main() {
    let mut config = None;
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config = Some(args.next().unwrap_or_else(|| usage())),
            "--listen" => listen.push(
                args.next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage()),
            ),
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| usage())
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let Some(config) = config else { usage() };
    if listen.is_empty() {
        listen.push("127.0.0.1:5353".parse().unwrap());
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
    let mut handles = Vec::new();
    for addr in &listen {
        let udp = match UdpSocket::bind(addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("serve: cannot bind UDP {addr}: {e}");
                std::process::exit(1);
            }
        };
        udp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        for _ in 0..threads {
            let sock = udp.try_clone().unwrap();
            let eng = engine.clone();
            handles.push(std::thread::spawn(move || udp_loop(sock, eng)));
        }
        let tcp = match TcpListener::bind(addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("serve: cannot bind TCP {addr}: {e}");
                std::process::exit(1);
            }
        };
        tcp.set_nonblocking(true).unwrap();
        let eng = engine.clone();
        handles.push(std::thread::spawn(move || tcp_loop(tcp, eng)));
        eprintln!("serve: listening on {addr} (UDP with {threads} threads, TCP)");
    }
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
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
    eprintln!("serve: stopped");
}

fn udp_loop(sock: UdpSocket, engine: Arc<Engine>) {
    let mut q = [0u8; 4096];
    let mut out = [0u8; 4096];
    while !STOP.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut q) {
            Ok(x) => x,
            Err(_) => continue,
        };
        if let Ok(len) = engine.resolve_wire(&q[..n], Some(peer.ip()), false, &mut out) {
            let _ = sock.send_to(&out[..len], peer);
        }
    }
}

fn tcp_loop(listener: TcpListener, engine: Arc<Engine>) {
    let conns = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    while !STOP.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if conns.load(Ordering::Relaxed) >= MAX_TCP_CONNS {
                    continue; // dropped: too many connections
                }
                conns.fetch_add(1, Ordering::Relaxed);
                let eng = engine.clone();
                let c = conns.clone();
                workers.push(std::thread::spawn(move || {
                    tcp_conn(stream, peer, &eng);
                    c.fetch_sub(1, Ordering::Relaxed);
                }));
                workers.retain(|h| !h.is_finished());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

fn tcp_conn(mut s: TcpStream, peer: SocketAddr, engine: &Engine) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut idle = 0;
    let mut q = vec![0u8; 65535];
    let mut out = vec![0u8; 65537];
    loop {
        if STOP.load(Ordering::Relaxed) {
            return;
        }
        let mut len = [0u8; 2];
        match s.read_exact(&mut len) {
            Ok(()) => idle = 0,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                idle += 1;
                if idle > 50 {
                    return; // 10 s idle
                }
                continue;
            }
            Err(_) => return,
        }
        let n = usize::from(u16::from_be_bytes(len));
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.read_exact(&mut q[..n]).is_err() {
            return;
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        match engine.resolve_wire(&q[..n], Some(peer.ip()), true, &mut out[2..]) {
            Ok(rlen) => {
                out[..2].copy_from_slice(&(rlen as u16).to_be_bytes());
                if s.write_all(&out[..rlen + 2]).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}
