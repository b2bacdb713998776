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
//! Protocol: one JSON object per line each way. `lookup` gets the answer
//! routed for `real-remote` (the ECS subnet when the query carried one,
//! else the remote address) and returns records with `scopeMask` = the ECS
//! scope the decision used. Malformed requests get `{"result":false,
//! "log":[…]}`; the adapter never exits on a bad request or a dropped
//! connection. Logs go to stderr, one line each, in PowerDNS's manner.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use trafficmgr::answer::records::type_name;
use trafficmgr::{Engine, LogLevel, Query, Rcode};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn qtype_code(t: &str) -> Option<u16> {
    Some(match t {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "AAAA" => 28,
        "ANY" => 255,
        _ => return None,
    })
}

/// `203.0.113.0/24` or `192.0.2.7` → (address, prefix length).
fn parse_subnet(s: &str) -> Option<(IpAddr, u8)> {
    match s.split_once('/') {
        Some((a, p)) => Some((a.parse().ok()?, p.parse().ok()?)),
        None => {
            let a: IpAddr = s.parse().ok()?;
            Some((a, if a.is_ipv4() { 32 } else { 128 }))
        }
    }
}

fn lookup(engine: &Engine, p: &Value) -> Value {
    let (Some(qname), Some(qtype)) = (p["qname"].as_str(), p["qtype"].as_str()) else {
        return json!({"result": false, "log": ["lookup without qname or qtype"]});
    };
    let remote = p["remote"].as_str().and_then(|r| r.parse::<IpAddr>().ok());
    // real-remote is the ECS subnet, or remote/32 (/128) when there was none.
    let ecs = p["real-remote"]
        .as_str()
        .and_then(parse_subnet)
        .filter(|(a, plen)| {
            let full = if a.is_ipv4() { 32 } else { 128 };
            Some(*a) != remote || *plen != full
        });
    let Some(code) = qtype_code(qtype) else {
        // Types we never hold (MX, TXT, …): no records.
        return json!({"result": false});
    };
    let q = Query {
        name: qname.as_bytes(),
        qtype: 255,
        client: remote,
        ecs,
    };
    let r = engine.lookup(&q, |a, _| {
        if a.rcode == Rcode::Refused || a.rcode == Rcode::NxDomain {
            return None;
        }
        let owner = if qname.ends_with('.') {
            qname.to_string()
        } else {
            format!("{qname}.")
        };
        let mut out = Vec::new();
        for rec in a.answer.iter() {
            // A CNAME goes only to ANY/A/AAAA/CNAME questions: PowerDNS asks
            // SOA for zone discovery, and a CNAME there breaks it.
            let wanted =
                code == 255 || rec.rtype == code || (rec.rtype == 5 && matches!(code, 1 | 28 | 5));
            if wanted {
                out.push(json!({
                    "qtype": type_name(rec.rtype),
                    "qname": owner,
                    "content": &*rec.text,
                    "ttl": rec.ttl,
                    "auth": 1,
                    "scopeMask": a.scope_prefix,
                }));
            }
        }
        Some(out)
    });
    match r {
        Ok(Some(recs)) if !recs.is_empty() => json!({"result": recs}),
        _ => json!({"result": false}),
    }
}

fn handle(engine: &Engine, line: &str) -> Value {
    let Ok(req) = serde_json::from_str::<Value>(line) else {
        return json!({"result": false, "log": ["malformed request: not JSON"]});
    };
    let params = &req["parameters"];
    match req["method"].as_str() {
        Some("initialize") => json!({"result": true}),
        Some("lookup") => lookup(engine, params),
        Some("getAllDomains") => {
            let snap = engine.snapshot();
            let zones: Vec<Value> = snap
                .zones
                .iter()
                .enumerate()
                .map(
                    |(i, z)| json!({"id": i + 1, "zone": &*z.owner, "kind": "native", "serial": 1}),
                )
                .collect();
            json!({"result": zones})
        }
        Some(_) => json!({"result": false}),
        None => json!({"result": false, "log": ["malformed request: no method"]}),
    }
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
                let mut reply = handle(&engine, line.trim()).to_string();
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
