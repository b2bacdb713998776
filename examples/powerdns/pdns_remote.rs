//! PowerDNS Authoritative → trafficmgr: an adapter for PowerDNS's standard
//! **remote backend** over a unix socket (one adapter process, one engine,
//! one set of health probes for the whole server, one thread per
//! connection). PowerDNS's pipe backend would run one coprocess — and so one
//! engine with its own probes — per backend instance (4 with the default 3
//! UDP distributors + TCP), which is why the remote backend is used.
//!
//! ```text
//! cargo run --release --example pdns-remote -- --config /etc/trafficmgr.toml --socket /run/pdns-tm.sock
//! ```
//!
//! pdns.conf: `launch=remote` (plus your other backends),
//! `remote-connection-string=unix:path=/run/pdns-tm.sock,timeout=2000`,
//! `edns-subnet-processing=yes`, and `cache-ttl=0`, `query-cache-ttl=0`,
//! `negquery-cache-ttl=0`, `zone-cache-refresh-interval=0` (PowerDNS's
//! caches are not per client). See examples/powerdns/pdns.conf.
//!
//! Protocol (in the library, `trafficmgr::pdns`): one JSON object per line each way. `lookup` gets the answer
//! routed for `real-remote` (the ECS subnet when the query carried one,
//! else the remote address) and returns records with `scopeMask` = the ECS
//! scope the decision used. Malformed requests get `{"result":false,
//! "log":[…]}`; the adapter never exits on a bad request or a dropped
//! connection. Logs go to stderr, one line each, in PowerDNS's manner.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use trafficmgr::{Engine, LogLevel, pdns};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn serve(stream: UnixStream, engine: Arc<Engine>) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !STOP.load(Ordering::Relaxed) {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return, // PowerDNS closed the connection
            Ok(_) => {
                let mut reply = pdns::reply(&engine, line.trim().as_bytes());
                reply.push('\n');
                if writer.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
    }
}

fn main() {
    let mut config = None;
    let mut socket = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => config = args.next(),
            "--socket" => socket = args.next(),
            _ => {
                eprintln!("usage: pdns-remote --config FILE --socket PATH");
                std::process::exit(2);
            }
        }
    }
    let (Some(config), Some(socket)) = (config, socket) else {
        eprintln!("usage: pdns-remote --config FILE --socket PATH");
        std::process::exit(2);
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
    let engine = match Engine::from_file_with_log(&config, Some(log)) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("pdns-remote: {e}");
            std::process::exit(1);
        }
    };
    let _ = std::fs::remove_file(&socket);
    let listener = match UnixListener::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pdns-remote: cannot listen on {socket}: {e}");
            std::process::exit(1);
        }
    };
    listener.set_nonblocking(true).unwrap();
    // SAFETY: handlers that only store an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    eprintln!("pdns-remote: serving {config} on {socket}");
    let mut workers = Vec::new();
    while !STOP.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                let e = engine.clone();
                workers.push(std::thread::spawn(move || serve(s, e)));
                workers.retain(|h| !h.is_finished());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    for w in workers {
        let _ = w.join();
    }
    let _ = std::fs::remove_file(&socket);
    eprintln!("pdns-remote: stopped");
}
