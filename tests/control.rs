//! The control listener (`[engine] control`) with real parts: an engine
//! serving on a free loopback port, queries through the Rust API and the
//! wire entry points, `/metrics`, `/status`, `/healthz` and `/` read with
//! a real HTTP client (ureq), counts checked exactly, across reloads, a
//! reload that moves the port, two engines on one port, hostile clients,
//! and the listener's thread joined by the engine's drop.
//!
//! The tests take one lock: they count the process's `tm-ctl` threads.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use trafficmgr::Engine;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Profiles of every answer shape: priority, multivalue, a nested parent
/// and its child, a disabled one; `PORT` is the control port.
const CFG: &str = r#"
[engine]
control = "127.0.0.1:PORT"
watch_interval = "0s"

[[zone]]
name = "tm.example"
nameservers = ["ns1.tm.example"]
hostmaster = "hostmaster.tm.example"

[[profile]]
name = "app"
routing = "priority"

[[profile.endpoint]]
name = "primary"
target = "primary.example"
priority = 1

[[profile.endpoint]]
name = "backup_2.b"
target = "backup.example"
priority = 2

[[profile]]
name = "multi"
routing = "multivalue"

[[profile.endpoint]]
name = "a"
addresses = ["192.0.2.1"]

[[profile.endpoint]]
name = "b"
addresses = ["192.0.2.2", "2001:db8::2"]

[[profile]]
name = "child"
routing = "priority"

[[profile.endpoint]]
name = "c1"
addresses = ["192.0.2.31"]

[[profile]]
name = "parent"
routing = "priority"

[[profile.endpoint]]
name = "nest"
profile = "child"

[[profile]]
name = "off"
routing = "priority"
enabled = false

[[profile.endpoint]]
name = "x"
target = "x.example"
"#;

fn cfg(port: u16) -> String {
    CFG.replace("PORT", &port.to_string())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// GET `path` from the listener on `port`: (status, content type, body).
fn get(port: u16, path: &str) -> (u16, String, String) {
    let mut r = agent()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path} on {port}: {e}"));
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), ct, body)
}

fn try_get(port: u16, path: &str) -> Option<String> {
    let mut r = agent()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .call()
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.body_mut().read_to_string().ok()
}

/// The value of one sample: `name{labels} value`, labels as encoded.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let head = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&head))
        .map(|v| v.trim().parse().unwrap())
}

fn answers(text: &str, profile: &str, endpoint: &str) -> f64 {
    sample(
        text,
        "trafficmgr_answers_total",
        &format!("profile=\"{profile}\",endpoint=\"{endpoint}\""),
    )
    .unwrap_or_else(|| panic!("no answers sample for {profile}/{endpoint} in\n{text}"))
}

fn listening(e: &Engine) -> bool {
    status(e)["control"]["listening"] == true
}

fn wait_listening(e: &Engine, port: u16) {
    wait_for(10, "the control listener", || {
        listening(e) && try_get(port, "/healthz").is_some()
    });
}

/// Threads of this process named `name` (from /proc/self/task/*/comm).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == name)
        .count()
}

/// A DNS query message for `name`/`qtype`.
fn wire_query(name: &str, qtype: u16) -> Vec<u8> {
    use hickory_proto::op::{Message, Query as HQ};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::query();
    m.add_query(HQ::query(
        Name::from_ascii(name).unwrap(),
        RecordType::from(qtype),
    ));
    m.to_vec().unwrap()
}

/// Every counter, exactly, after queries through `lookup`,
/// `answer_message` and `answer_in_place`; the other pages.
#[test]
fn counts_are_exact_through_every_path() {
    let _g = serial();
    let port = free_port();
    let e = Engine::from_toml(&cfg(port), None).unwrap();
    wait_listening(&e, port);
    let (code, ct, text) = get(port, "/metrics");
    assert_eq!(code, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert_eq!(answers(&text, "app.tm.example", "primary"), 0.0);

    // Through the Rust API.
    for _ in 0..7 {
        one(&e, "app.tm.example", 1, Some("192.0.2.9"), None);
    }
    // Multivalue: A carries both endpoints; AAAA only b; MX neither (NODATA).
    ask(&e, "multi.tm.example", 1, None, None);
    ask(&e, "multi.tm.example", 1, None, None);
    ask(&e, "multi.tm.example", 28, None, None);
    assert!(
        ask(&e, "multi.tm.example", 15, None, None)
            .answer
            .is_empty()
    );
    // Nested: parent/nest and child/c1 both count; the child asked directly, c1 only.
    ask(&e, "parent.tm.example", 1, None, None);
    ask(&e, "child.tm.example", 1, None, None);
    // A disabled profile: NXDOMAIN.
    ask(&e, "off.tm.example", 1, None, None);
    // Zone names: apex SOA, apex A (NODATA), a name that does not exist.
    ask(&e, "tm.example", 6, None, None);
    ask(&e, "tm.example", 1, None, None);
    ask(&e, "nope.tm.example", 1, None, None);
    // Not ours.
    ask(&e, "example.org", 1, None, None);
    ask(&e, "example.org", 1, None, None);

    // Through the wire entry points.
    let mut out = [0u8; 4096];
    for _ in 0..3 {
        let q = wire_query("app.tm.example.", 1);
        assert!(e.answer_message(&q, None, false, &mut out).unwrap() > 0);
    }
    let q = wire_query("nope2.tm.example.", 1);
    e.answer_message(&q, None, false, &mut out).unwrap();
    let q = wire_query("APP.tm.example.", 1);
    out[..q.len()].copy_from_slice(&q);
    assert!(e.answer_in_place(&mut out, q.len(), None, false).unwrap() > 0);

    let (_, _, text) = get(port, "/metrics");
    assert_eq!(answers(&text, "app.tm.example", "primary"), 11.0, "{text}");
    assert_eq!(answers(&text, "app.tm.example", "backup_2.b"), 0.0);
    assert_eq!(answers(&text, "multi.tm.example", "a"), 2.0);
    assert_eq!(answers(&text, "multi.tm.example", "b"), 3.0);
    assert_eq!(answers(&text, "parent.tm.example", "nest"), 1.0);
    assert_eq!(answers(&text, "child.tm.example", "c1"), 2.0);
    let resp = |p: &str, rc: &str| {
        sample(
            &text,
            "trafficmgr_responses_total",
            &format!("profile=\"{p}\",rcode=\"{rc}\""),
        )
        .unwrap()
    };
    assert_eq!(resp("app.tm.example", "NOERROR"), 11.0);
    assert_eq!(resp("app.tm.example", "NXDOMAIN"), 0.0);
    assert_eq!(resp("multi.tm.example", "NOERROR"), 4.0);
    assert_eq!(
        sample(
            &text,
            "trafficmgr_nodata_responses_total",
            "profile=\"multi.tm.example\""
        ),
        Some(1.0)
    );
    assert_eq!(resp("parent.tm.example", "NOERROR"), 1.0);
    assert_eq!(resp("child.tm.example", "NOERROR"), 1.0);
    assert_eq!(resp("off.tm.example", "NXDOMAIN"), 1.0);
    let zone = |rc: &str| {
        sample(
            &text,
            "trafficmgr_zone_responses_total",
            &format!("zone=\"tm.example\",rcode=\"{rc}\""),
        )
        .unwrap()
    };
    assert_eq!(zone("NOERROR"), 2.0, "{text}");
    assert_eq!(zone("NXDOMAIN"), 2.0);
    assert_eq!(
        sample(
            &text,
            "trafficmgr_zone_nodata_responses_total",
            "zone=\"tm.example\""
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "trafficmgr_queries_not_ours_total", ""),
        Some(2.0)
    );
    // Health and configuration families.
    let up = |p: &str, ep: &str| {
        sample(
            &text,
            "trafficmgr_endpoint_up",
            &format!("profile=\"{p}\",endpoint=\"{ep}\""),
        )
        .unwrap()
    };
    assert_eq!(up("app.tm.example", "primary"), 1.0);
    assert_eq!(up("app.tm.example", "backup_2.b"), 1.0);
    assert_eq!(up("off.tm.example", "x"), 0.0);
    assert_eq!(
        sample(
            &text,
            "trafficmgr_endpoint_status",
            "profile=\"off.tm.example\",endpoint=\"x\",status=\"Inactive\""
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "trafficmgr_endpoint_status",
            "profile=\"off.tm.example\",endpoint=\"x\",status=\"Online\""
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "trafficmgr_reloads_total", "result=\"ok\""),
        Some(0.0)
    );
    assert_eq!(sample(&text, "trafficmgr_config_generation", ""), Some(0.0));
    assert!(
        sample(
            &text,
            "trafficmgr_last_reload_success_timestamp_seconds",
            ""
        )
        .unwrap()
            > 1.6e9
    );
    assert_eq!(
        sample(
            &text,
            "trafficmgr_build_info",
            &format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))
        ),
        Some(1.0)
    );
    assert!(text.contains("# TYPE trafficmgr_probe_duration_seconds histogram"));

    // A drain moves `up`; the status JSON has the same counts.
    e.set_admin_state("app", "primary", trafficmgr::health::AdminState::Drain)
        .unwrap();
    let (_, _, text) = get(port, "/metrics");
    assert_eq!(
        sample(
            &text,
            "trafficmgr_endpoint_up",
            "profile=\"app.tm.example\",endpoint=\"primary\""
        ),
        Some(0.0)
    );
    let (code, ct, body) = get(port, "/status");
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    let app = st["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "app.tm.example")
        .unwrap();
    assert_eq!(app["endpoints"][0]["answers"], 11);
    assert_eq!(app["endpoints"][0]["up"], false);
    assert_eq!(st["control"]["address"], format!("127.0.0.1:{port}"));

    // The other pages.
    assert_eq!(
        get(port, "/healthz"),
        (200, "text/plain".into(), "ok\n".into())
    );
    let (code, ct, page) = get(port, "/");
    assert_eq!(code, 200);
    assert_eq!(ct, "text/html; charset=utf-8");
    assert!(page.contains("fetch(\"/status\""));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );
    assert_eq!(get(port, "/nope").0, 404);
    assert_eq!(get(port, "/metrics?x=1").0, 200);
    let r = agent()
        .post(format!("http://127.0.0.1:{port}/metrics"))
        .send("x")
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers().get("allow").unwrap(), "GET, HEAD");
}

/// Queries from two threads while the config is reloaded ten times (and an
/// old snapshot is held across some of them): the counts equal the queries
/// made, exactly.
#[test]
fn counts_survive_reloads_exactly() {
    let _g = serial();
    let port = free_port();
    let dir = fresh_dir("control-reloads");
    let path = dir.join("tm.toml");
    std::fs::write(&path, cfg(port)).unwrap();
    let e = Engine::from_file(&path).unwrap();
    wait_listening(&e, port);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let counts = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    let mut out = [0u8; 1024];
                    let q = wire_query("app.tm.example.", 1);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if n.is_multiple_of(2) {
                            one(&e, "app.tm.example", 1, None, None);
                        } else {
                            e.answer_message(&q, None, false, &mut out).unwrap();
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut held = Vec::new();
        for i in 0..10 {
            std::thread::sleep(Duration::from_millis(60));
            // Alternate two texts (a comment changes the hash), so every
            // reload swaps a new snapshot in.
            std::fs::write(&path, format!("{}\n# {i}\n", cfg(port))).unwrap();
            e.reload().unwrap();
            if i % 3 == 0 {
                held.push(e.snapshot()); // a reader that outlives reloads
            }
            // Scrapes in between never go down.
            let t = get(port, "/metrics").2;
            let _ = answers(&t, "app.tm.example", "primary");
        }
        std::thread::sleep(Duration::from_millis(60));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        // Some retired snapshots are still held: the scrape counts them.
        let t = get(port, "/metrics").2;
        assert_eq!(answers(&t, "app.tm.example", "primary"), n as f64);
        drop(held);
        n
    });
    assert!(counts > 100, "{counts} queries");
    // Once the maintenance loop has reaped everything, the same counts.
    wait_for(5, "the graveyard to be reaped", || {
        let t = get(port, "/metrics").2;
        answers(&t, "app.tm.example", "primary") == counts as f64
            && sample(&t, "trafficmgr_reloads_total", "result=\"ok\"") == Some(10.0)
            && sample(&t, "trafficmgr_config_generation", "") == Some(10.0)
    });
    // A monotonic scrape sequence across more reloads with no queries.
    for i in 0..3 {
        std::fs::write(&path, format!("{}\n# again {i}\n", cfg(port))).unwrap();
        e.reload().unwrap();
        let t = get(port, "/metrics").2;
        assert_eq!(answers(&t, "app.tm.example", "primary"), counts as f64);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reload that changes `control` moves the listener; one that removes
/// it stops the thread; one that adds it back starts it again.
#[test]
fn a_reload_moves_the_port() {
    let _g = serial();
    let (p1, p2) = (free_port(), free_port());
    let dir = fresh_dir("control-move");
    let path = dir.join("tm.toml");
    std::fs::write(&path, cfg(p1)).unwrap();
    let e = Engine::from_file(&path).unwrap();
    wait_listening(&e, p1);
    one(&e, "app.tm.example", 1, None, None);
    std::fs::write(&path, cfg(p2)).unwrap();
    e.reload().unwrap();
    wait_for(5, "the listener on the new port", || {
        try_get(p2, "/healthz").is_some()
    });
    wait_for(5, "the old port to be closed", || {
        TcpStream::connect(("127.0.0.1", p1)).is_err()
    });
    let t = get(p2, "/metrics").2;
    assert_eq!(answers(&t, "app.tm.example", "primary"), 1.0);
    assert_eq!(status(&e)["control"]["address"], format!("127.0.0.1:{p2}"));
    // Off: the thread goes.
    std::fs::write(&path, cfg(p2).replace("control = ", "# control = ")).unwrap();
    e.reload().unwrap();
    wait_for(5, "tm-ctl to stop", || {
        TcpStream::connect(("127.0.0.1", p2)).is_err() && status(&e)["control"]["address"].is_null()
    });
    // On again.
    std::fs::write(&path, cfg(p1)).unwrap();
    e.reload().unwrap();
    wait_listening(&e, p1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two engines configured with one port (BIND creates the new DLZ
/// instance before it destroys the old): the second says why it does not
/// listen, and takes the port within a few seconds of the first's drop.
#[test]
fn a_second_engine_takes_the_port_when_the_first_lets_go() {
    let _g = serial();
    let port = free_port();
    let logs = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let first = Engine::from_toml(&cfg(port), None).unwrap();
    wait_listening(&first, port);
    let sink = logs.clone();
    let second = Engine::from_toml_with_log(
        &cfg(port),
        None,
        Some(Box::new(move |_, m: &str| {
            sink.lock().unwrap().push(m.to_string())
        })),
    )
    .unwrap();
    wait_for(5, "the second engine's bind error", || {
        status(&second)["control"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("in use"))
    });
    assert_eq!(status(&second)["control"]["listening"], false);
    one(&second, "app.tm.example", 1, None, None);
    // The first answers the scrapes meanwhile: its own counts (none).
    let t = get(port, "/metrics").2;
    assert_eq!(answers(&t, "app.tm.example", "primary"), 0.0);
    std::thread::sleep(Duration::from_millis(2500)); // a few retries
    let warned = logs
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains("cannot listen"))
        .count();
    assert_eq!(warned, 1, "logged once: {:?}", logs.lock().unwrap());
    let t0 = Instant::now();
    drop(first);
    wait_for(5, "the second engine on the port", || {
        try_get(port, "/metrics").is_some_and(|t| answers(&t, "app.tm.example", "primary") == 1.0)
    });
    eprintln!("the port changed hands in {:?}", t0.elapsed());
    assert!(listening(&second));
    assert!(status(&second)["control"]["error"].is_null());
}

/// Hostile clients: slow ones holding connections open, a 1 MB request,
/// hundreds of connections at once. Scrapes still come back within a few
/// seconds, and the drop joins tm-ctl promptly.
#[test]
fn hostile_clients_neither_block_scrapes_nor_delay_drop() {
    let _g = serial();
    let port = free_port();
    let before = threads_named("tm-ctl");
    let e = Engine::from_toml(&cfg(port), None).unwrap();
    wait_listening(&e, port);
    assert_eq!(threads_named("tm-ctl"), before + 1);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Slowloris: 100 connections that drip a partial request head.
    let mut slow: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    for s in &mut slow {
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ");
    }
    // A 1 MB request head: refused with 431 (or the connection is closed).
    let big = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        req.resize(1 << 20, b'a');
        let _ = s.write_all(&req);
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    });
    // Hundreds of connections that send nothing.
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(idle.len() > 200);
    // Scrapes still work, within a generous bound.
    for _ in 0..5 {
        let t0 = Instant::now();
        let (code, _, text) = get(port, "/metrics");
        assert_eq!(code, 200);
        assert!(text.contains("trafficmgr_build_info"));
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        for s in &mut slow {
            let _ = s.write_all(b"a");
        }
    }
    let reply = big.join().unwrap();
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{}",
        &reply[..reply.len().min(200)]
    );
    // The slow clients are cut off by the read deadline (5 s).
    std::thread::sleep(Duration::from_millis(5500));
    let mut s = TcpStream::connect(addr).unwrap();
    // (A new connection may evict the oldest; any that were kept are closed by now.)
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    let mut cut = 0;
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 16];
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            cut += 1;
        }
    }
    assert_eq!(cut, slow.len(), "every slow client was closed");
    // Drop with the hostile connections still open: prompt, and tm-ctl is gone.
    let more: Vec<TcpStream> = (0..50)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    let t0 = Instant::now();
    drop(e);
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "drop took {took:?}");
    assert_eq!(threads_named("tm-ctl"), before);
    assert!(TcpStream::connect(addr).is_err(), "the port is closed");
    drop((slow, idle, more));
}

/// The config rules: loopback only unless `control_public`; an address
/// with a port; errors located as every config error.
#[test]
fn control_addresses_are_validated() {
    let _g = serial();
    let err = |text: &str| Engine::from_toml(text, None).unwrap_err().to_string();
    let public = cfg(9153).replace("127.0.0.1:9153", "0.0.0.0:9153");
    let m = err(&public);
    assert!(m.contains("engine.control"), "{m}");
    assert!(m.contains(":3:"), "line of the key: {m}");
    assert!(m.contains("control_public"), "{m}");
    let m = err(&cfg(9153).replace("127.0.0.1:9153", "localhost"));
    assert!(
        m.contains("engine.control") && m.contains("not an address"),
        "{m}"
    );
    let m = err(&cfg(9153).replace("127.0.0.1:9153", "127.0.0.1:0"));
    assert!(m.contains("port 0"), "{m}");
    // Said explicitly: accepted (on a free port of every address).
    let port = free_port();
    let ok = cfg(port).replace(
        &format!("control = \"127.0.0.1:{port}\""),
        &format!("control = \"0.0.0.0:{port}\"\ncontrol_public = true"),
    );
    let e = Engine::from_toml(&ok, None).unwrap();
    wait_listening(&e, port);
    // IPv6 loopback too.
    let port6 = free_port();
    let v6 = cfg(0).replace("127.0.0.1:0", &format!("[::1]:{port6}"));
    if TcpListener::bind(("::1", 0)).is_ok() {
        let e6 = Engine::from_toml(&v6, None).unwrap();
        wait_for(10, "the IPv6 listener", || listening(&e6));
        let mut s = TcpStream::connect(("::1", port6)).unwrap();
        s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        assert!(r.ends_with("\r\n\r\nok\n"), "{r}");
    }
}

/// `HEAD` gives the headers only; garbage gets 400.
#[test]
fn head_and_bad_requests() {
    let _g = serial();
    let port = free_port();
    let e = Engine::from_toml(&cfg(port), None).unwrap();
    wait_listening(&e, port);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"HEAD /status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(
        r.contains("Content-Length: ") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    // Garbage: 400.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"\x01\x02 nonsense\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
}

/// DNS rebinding: a hostile web page in a browser on this machine makes a
/// name of its own resolve to 127.0.0.1 and reads the page through it. The
/// loopback listener answers only requests that name it by address or as
/// localhost; a request without Host (HTTP/1.0) is answered.
#[test]
fn a_loopback_listener_refuses_foreign_host_names() {
    let _g = serial();
    let port = free_port();
    let e = Engine::from_toml(&cfg(port), None).unwrap();
    wait_listening(&e, port);
    let ask = |head: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(format!("GET /status HTTP/1.1\r\n{head}\r\n").as_bytes())
            .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r.lines().next().unwrap_or("").to_string()
    };
    for host in [
        "Host: attacker.example\r\n".to_string(),
        "Host: attacker.example:80\r\n".to_string(),
        format!("Host: rebind.attacker.example:{port}\r\n"),
        "Host: localhost.attacker.example\r\n".to_string(),
    ] {
        assert_eq!(ask(&host), "HTTP/1.1 403 Forbidden", "{host}");
    }
    for host in [
        format!("Host: 127.0.0.1:{port}\r\n"),
        "Host: 127.0.0.1\r\n".to_string(),
        format!("Host: localhost:{port}\r\n"),
        "Host: [::1]:9153\r\n".to_string(),
        "Host: metrics.localhost\r\n".to_string(),
        String::new(),
    ] {
        assert_eq!(ask(&host), "HTTP/1.1 200 OK", "{host:?}");
    }
}

/// `n` endpoints in profiles of 20 (`/metrics` is about 0.8 KB an endpoint).
fn big_cfg(port: u16, n: usize) -> String {
    let mut t = format!(
        "[engine]\ncontrol = \"127.0.0.1:{port}\"\nwatch_interval = \"0s\"\n\n\
         [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n"
    );
    for p in 0..n.div_ceil(20) {
        t += &format!("[[profile]]\nname = \"p{p}\"\nrouting = \"weighted\"\n");
        for e in 0..20.min(n - p * 20) {
            t += &format!(
                "[[profile.endpoint]]\nname = \"endpoint-{p}-{e}\"\naddresses = [\"192.0.2.{}\"]\n",
                e + 1
            );
        }
    }
    t
}

/// A flood of `/metrics` requests from clients that never read, on a
/// config whose page takes a while to build: the drop still joins tm-ctl
/// within the bound. Before, the listener answered every pending
/// connection before it looked at its stop flag again: 150 such requests
/// held `tm_engine_free` (and `rndc reload`) for 15 s and more.
#[test]
fn a_flood_of_scrapes_does_not_delay_drop() {
    let _g = serial();
    let port = free_port();
    let before = threads_named("tm-ctl");
    let e = Engine::from_toml(&big_cfg(port, 3000), None).unwrap();
    wait_listening(&e, port);
    let flood = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..150 {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
                held.push(s);
            }
        }
        held
    });
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    drop(e);
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "drop took {took:?}");
    assert_eq!(threads_named("tm-ctl"), before);
    drop(flood.join().unwrap());
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// A host out of file descriptors (here `trafficmgr serve` with a limit of
/// 40, and 100 clients connected to its control listener): the listener
/// stays readable while accept fails, and before, tm-ctl polled and failed
/// in a loop, a CPU core's worth of spinning inside the host. Now it
/// leaves the listener out of poll for a tick after such a failure: the
/// process stays near idle, and it still answers once descriptors free up.
#[test]
fn out_of_descriptors_the_listener_does_not_spin() {
    use std::os::unix::process::CommandExt;
    let _g = serial();
    let dir = fresh_dir("ctl-emfile");
    let port = free_port();
    let dns = free_port();
    std::fs::write(dir.join("tm.toml"), cfg(port)).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_trafficmgr"));
    cmd.args(["serve", "--threads", "1", "--config"])
        .arg(dir.join("tm.toml"))
        .args(["--listen", &format!("127.0.0.1:{dns}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 40,
                rlim_max: 40,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_for(10, "the control listener", || {
        try_get(port, "/healthz").is_some()
    });
    let held: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(held.len() > 60, "{} connected", held.len());
    std::thread::sleep(Duration::from_millis(300));
    let c0 = cpu_seconds(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_seconds(child.id()) - c0;
    drop(held);
    // The idle connections are closed by the read deadline (5 s): then it serves again.
    wait_for(15, "a scrape after descriptors free up", || {
        try_get(port, "/healthz").is_some()
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        used < 0.25,
        "{used:.2} CPU seconds in 2 s with descriptors exhausted"
    );
}
