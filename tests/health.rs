//! Health monitoring against real servers on loopback: the probe thread,
//! every probe outcome, the state machine, admin overrides, the status
//! report, and the answers a client then gets.

mod common;
use common::backend::{Backend, Mode};
use common::*;
use std::time::{Duration, Instant};
use trafficmgr::Engine;
use trafficmgr::health::AdminState;

const ZONE: &str = "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n";

/// A priority profile `p` probing one backend per endpoint.
fn cfg(monitor: &str, eps: &[(&str, u16)], extra: &str) -> String {
    let mut c = format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n{extra}\n[profile.monitor]\n{monitor}\n"
    );
    for (name, port) in eps {
        c.push_str(&format!(
            "[[profile.endpoint]]\nname = \"{name}\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {port} }}\n"
        ));
    }
    c
}

fn state(e: &Engine, ep: &str) -> String {
    ep_status(e, "p.tm.example", ep)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn probe(e: &Engine, ep: &str) -> serde_json::Value {
    ep_status(e, "p.tm.example", ep)["probe"].clone()
}

/// One test at a time: several measure schedules and timeouts.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const FAST: &str = "interval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 0";

#[test]
fn ok_500_refused_and_ready() {
    let _serial = serial();
    let good = Backend::start(Mode::Status(200));
    let bad = Backend::start(Mode::Status(500));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Engine::from_toml(
        &cfg(
            FAST,
            &[("good", good.port), ("bad", bad.port), ("closed", closed)],
            "",
        ),
        None,
    )
    .unwrap();
    assert!(
        e.wait_ready(Duration::from_secs(10)),
        "first results within the timeout"
    );
    assert_eq!(state(&e, "good"), "Online");
    assert_eq!(probe(&e, "good")["last_result"], "HTTP 200");
    assert_eq!(state(&e, "bad"), "Degraded");
    assert_eq!(probe(&e, "bad")["last_result"], "HTTP 500");
    assert_eq!(state(&e, "closed"), "Degraded");
    assert!(
        probe(&e, "closed")["last_result"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{}",
        probe(&e, "closed")
    );
    let s = status(&e);
    assert_eq!(s["monitor"]["ready"], true);
    assert!(s["monitor"]["probes_sent"].as_u64().unwrap() >= 3);
    assert!(s["monitor"]["probes_failed"].as_u64().unwrap() >= 2);
    assert!(probe(&e, "good")["rtt_ms"].as_f64().unwrap() >= 0.0);
    assert!(probe(&e, "good")["last_probe"].as_f64().unwrap() > 1.7e9);
    assert_eq!(s["profiles"][0]["status"], "Online");
}

#[test]
fn degraded_exactly_after_tolerated_plus_one_failures() {
    let _serial = serial();
    let b = Backend::start(Mode::Status(200));
    let mon = "interval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 2";
    let e = Engine::from_toml(&cfg(mon, &[("a", b.port), ("spare", b.port)], ""), None).unwrap();
    wait_for(10, "online", || state(&e, "a") == "Online");
    b.set(Mode::Status(500));
    let mut seen = Vec::new();
    wait_for(15, "degraded", || {
        // One report: counters and state from the same moment.
        let ep = ep_status(&e, "p.tm.example", "a");
        let f = ep["probe"]["consecutive_failures"].as_u64().unwrap();
        let st = ep["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&(f, st.clone())) {
            seen.push((f, st.clone()));
        }
        st == "Degraded"
    });
    // Every observation: Online with 0..=2 failures, Degraded from the 3rd.
    for (f, st) in &seen {
        assert_eq!(st == "Degraded", *f >= 3, "{seen:?}");
    }
    assert!(
        seen.iter().any(|(f, _)| *f == 2),
        "saw the tolerated failures: {seen:?}"
    );
}

#[test]
fn hang_endless_body_reset_redirect_and_status_ranges() {
    let _serial = serial();
    let hang = Backend::start(Mode::Hang);
    let endless = Backend::start(Mode::EndlessBody);
    let reset = Backend::start(Mode::Reset);
    let moved = Backend::start(Mode::Status(301));
    let nocontent = Backend::start(Mode::Status(204));
    let e = Engine::from_toml(
        &cfg(
            FAST,
            &[
                ("hang", hang.port),
                ("endless", endless.port),
                ("reset", reset.port),
                ("moved", moved.port),
                ("nocontent", nocontent.port),
            ],
            "",
        ),
        None,
    )
    .unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    // Accept-then-hang: fails at the timeout.
    assert_eq!(state(&e, "hang"), "Degraded");
    let p = probe(&e, "hang");
    assert!(
        p["last_result"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("timeout"),
        "{p}"
    );
    let rtt = p["rtt_ms"].as_f64().unwrap();
    assert!(
        (450.0..2000.0).contains(&rtt),
        "a hung probe ends at its 500 ms timeout, took {rtt} ms"
    );
    // Headers then a never-ending body: the status decides, the body is not read.
    assert_eq!(state(&e, "endless"), "Online");
    assert_eq!(probe(&e, "endless")["last_result"], "HTTP 200");
    // TCP reset.
    assert_eq!(state(&e, "reset"), "Degraded");
    // 301: a failure, and not followed.
    assert_eq!(state(&e, "moved"), "Degraded");
    assert_eq!(probe(&e, "moved")["last_result"], "HTTP 301");
    assert!(
        moved.paths.lock().unwrap().iter().all(|p| p == "/"),
        "the redirect was followed"
    );
    assert_eq!(state(&e, "nocontent"), "Online");

    // A status range that takes 301 and 200-204.
    let mon = format!("{FAST}\nexpected_status = [\"200-204\", \"301\"]");
    let e = Engine::from_toml(
        &cfg(
            &mon,
            &[
                ("moved", moved.port),
                ("nocontent", nocontent.port),
                ("hang", hang.port),
            ],
            "",
        ),
        None,
    )
    .unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(state(&e, "moved"), "Online");
    assert_eq!(state(&e, "nocontent"), "Online");
}

#[test]
fn host_header_path_and_custom_headers() {
    let _serial = serial();
    let b = Backend::start(Mode::Status(200));
    let c = format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n[profile.monitor]\n{FAST}\npath = \"/health\"\n\
         [[profile.endpoint]]\nname = \"named\"\ntarget = \"www.contoso.example\"\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n\
         [[profile]]\nname = \"q\"\nrouting = \"priority\"\n[profile.monitor]\n{FAST}\nheaders = {{ Host = \"custom.example\" }}\n\
         [[profile.endpoint]]\nname = \"x\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {}, path = \"/override\" }}\n",
        b.port, b.port
    );
    let e = Engine::from_toml(&c, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    let hosts = b.hosts.lock().unwrap().clone();
    assert!(
        hosts.iter().any(|h| h == "www.contoso.example"),
        "Host defaults to the target name: {hosts:?}"
    );
    assert!(
        hosts.iter().any(|h| h == "custom.example"),
        "custom Host header: {hosts:?}"
    );
    let paths = b.paths.lock().unwrap().clone();
    assert!(
        paths.contains(&"/health".to_string()) && paths.contains(&"/override".to_string()),
        "{paths:?}"
    );
}

#[test]
fn tcp_probes() {
    let _serial = serial();
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mon = format!("protocol = \"tcp\"\n{FAST}");
    let e = Engine::from_toml(
        &cfg(
            &mon,
            &[
                ("open", open.local_addr().unwrap().port()),
                ("closed", closed),
            ],
            "",
        ),
        None,
    )
    .unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(state(&e, "open"), "Online");
    assert_eq!(probe(&e, "open")["last_result"], "TCP connected");
    assert_eq!(state(&e, "closed"), "Degraded");
}

struct TlsServer(std::process::Child);
impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn https_self_signed_with_and_without_verification() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("tm-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(st.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _srv = TlsServer(
        std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &port.to_string()])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(10, "s_server listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let off = format!("protocol = \"https\"\n{FAST}\nverify_tls = false");
    let e = Engine::from_toml(&cfg(&off, &[("tls", port)], ""), None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(state(&e, "tls"), "Online", "{}", probe(&e, "tls"));
    let on = format!("protocol = \"https\"\n{FAST}\nverify_tls = true");
    let e = Engine::from_toml(&cfg(&on, &[("tls", port)], ""), None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(state(&e, "tls"), "Degraded");
    let r = probe(&e, "tls")["last_result"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        r.contains("certificate") || r.contains("tls") || r.contains("unknown"),
        "{r}"
    );
}

#[test]
fn recovery_needs_recovery_successes_in_a_row() {
    let _serial = serial();
    let b = Backend::start(Mode::Status(500));
    let mon =
        "interval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 0\nrecovery_successes = 2";
    let e = Engine::from_toml(&cfg(mon, &[("a", b.port)], ""), None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(state(&e, "a"), "Degraded");
    b.set(Mode::Status(200));
    let mut seen = Vec::new();
    wait_for(15, "recovery", || {
        let ep = ep_status(&e, "p.tm.example", "a");
        let s = ep["probe"]["consecutive_successes"].as_u64().unwrap();
        let st = ep["status"].as_str().unwrap().to_string();
        seen.push((s, st.clone()));
        st == "Online"
    });
    for (s, st) in &seen {
        assert_eq!(st == "Online", *s >= 2, "{seen:?}");
    }
    assert!(
        seen.iter().any(|(s, st)| *s == 1 && st == "Degraded"),
        "one success is not enough: {seen:?}"
    );
}

#[test]
fn answers_follow_probes_fail_open_and_fail_closed() {
    let _serial = serial();
    let a = Backend::start(Mode::Status(200));
    let b = Backend::start(Mode::Status(200));
    let mut c = cfg(FAST, &[("a", a.port), ("b", b.port)], "");
    c = c.replacen(
        "addresses = [\"127.0.0.1\"]",
        "addresses = [\"192.0.2.1\"]",
        1,
    );
    c = c.replacen(
        "addresses = [\"127.0.0.1\"]",
        "addresses = [\"192.0.2.2\"]",
        1,
    );
    c = c.replace("probe = { port", "probe = { host = \"127.0.0.1\", port");
    let closed = c.replace(
        "routing = \"priority\"\n",
        "routing = \"priority\"\nall_down = \"fail-closed\"\n",
    );
    let e = Engine::from_toml(&c, None).unwrap();
    let ec = Engine::from_toml(&closed, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)) && ec.wait_ready(Duration::from_secs(10)));
    assert_eq!(one(&e, "p.tm.example", 1, None, None), "192.0.2.1");
    a.set(Mode::Status(503));
    wait_for(10, "failover", || {
        ask(&e, "p.tm.example", 1, None, None)
            .answer
            .first()
            .map(|r| r.2.as_str())
            == Some("192.0.2.2")
    });
    b.set(Mode::Status(503));
    // Both degraded: fail open answers the first again; fail closed answers NODATA.
    wait_for(10, "all down", || {
        state(&e, "b") == "Degraded"
            && state(&ec, "a") == "Degraded"
            && state(&ec, "b") == "Degraded"
    });
    assert_eq!(one(&e, "p.tm.example", 1, None, None), "192.0.2.1");
    let o = ask(&ec, "p.tm.example", 1, None, None);
    assert!(
        o.answer.is_empty() && o.rcode == trafficmgr::Rcode::NoError,
        "{o:?}"
    );
    assert_eq!(status(&e)["profiles"][0]["status"], "Degraded");
    a.set(Mode::Status(200));
    wait_for(10, "recovery", || {
        ask(&ec, "p.tm.example", 1, None, None)
            .answer
            .first()
            .map(|r| r.2.as_str())
            == Some("192.0.2.1")
    });
}

#[test]
fn admin_overrides() {
    let _serial = serial();
    let a = Backend::start(Mode::Status(200));
    let b = Backend::start(Mode::Status(200));
    let mut c = cfg(FAST, &[("a", a.port), ("b", b.port)], "");
    c = c.replacen(
        "addresses = [\"127.0.0.1\"]",
        "addresses = [\"192.0.2.1\"]",
        1,
    );
    c = c.replacen(
        "addresses = [\"127.0.0.1\"]",
        "addresses = [\"192.0.2.2\"]\nenabled = false",
        1,
    );
    let c = c.replace("probe = { port", "probe = { host = \"127.0.0.1\", port");
    let e = Engine::from_toml(&c, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(state(&e, "b"), "Disabled");
    assert_eq!(b.requests(), 0, "a disabled endpoint is not probed");
    // Drain: no answers, still probed.
    e.set_admin_state("p", "a", AdminState::Drain).unwrap();
    let o = ask(&e, "p.tm.example", 1, None, None);
    assert!(
        o.answer.is_empty() && o.rcode == trafficmgr::Rcode::NoError,
        "{o:?}"
    );
    let before = a.requests();
    wait_for(10, "probes go on while drained", || a.requests() > before);
    assert_eq!(ep_status(&e, "p.tm.example", "a")["admin"], "drain");
    // Force-enable the config-disabled one: served and probed.
    e.set_admin_state("p", "b", AdminState::Enabled).unwrap();
    assert_eq!(one(&e, "p.tm.example", 1, None, None), "192.0.2.2");
    wait_for(10, "b probed", || b.requests() > 0);
    // Disable: not served; back to none: served again.
    e.set_admin_state("p", "b", AdminState::Disabled).unwrap();
    e.set_admin_state("p", "a", AdminState::None).unwrap();
    assert_eq!(one(&e, "p.tm.example", 1, None, None), "192.0.2.1");
    assert_eq!(state(&e, "b"), "Disabled");
    assert!(e.set_admin_state("p", "zz", AdminState::Drain).is_err());
}

#[test]
fn two_hundred_endpoints_keep_their_schedule_while_twenty_hang() {
    let _serial = serial();
    let good = Backend::start(Mode::Status(200));
    let hang = Backend::start(Mode::Hang);
    let mut c = format!("[engine]\nprobe_workers = 16\n{ZONE}");
    for pi in 0..10 {
        c.push_str(&format!("[[profile]]\nname = \"p{pi}\"\nrouting = \"priority\"\n[profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 0\n"));
        for ei in 0..20 {
            let port = if ei < 2 { hang.port } else { good.port };
            c.push_str(&format!("[[profile.endpoint]]\nname = \"e{ei}\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {port} }}\n"));
        }
    }
    let e = Engine::from_toml(&c, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let s = status(&e);
    let elapsed = t0.elapsed().as_secs_f64();
    let mut min_probes = u64::MAX;
    for p in s["profiles"].as_array().unwrap() {
        for ep in p["endpoints"].as_array().unwrap() {
            let name = ep["name"].as_str().unwrap();
            let n = ep["probe"]["probes"].as_u64().unwrap();
            if name == "e0" || name == "e1" {
                assert_eq!(ep["status"], "Degraded");
            } else {
                assert_eq!(ep["status"], "Online", "{ep}");
                min_probes = min_probes.min(n);
            }
        }
    }
    // At a 1 s interval, every healthy endpoint was probed about once per
    // second despite 20 probes hanging for their whole timeout each time.
    assert!(
        min_probes as f64 >= elapsed - 1.0,
        "slowest healthy endpoint had {min_probes} probes in {elapsed:.1} s"
    );
    // The probes of a profile are spread over the interval: the hits after
    // the first round do not all fall in one 200 ms window of the second.
    let hits = good.hits.lock().unwrap().clone();
    let late: Vec<f64> = hits
        .iter()
        .filter(|t| **t > t0)
        .map(|t| (t.duration_since(t0).as_secs_f64() * 1000.0) % 1000.0)
        .collect();
    let buckets: std::collections::HashSet<u64> =
        late.iter().map(|ms| (*ms as u64) / 200).collect();
    assert!(buckets.len() >= 4, "probes bunched in {buckets:?}");
}

#[test]
fn inactive_and_stopped_states() {
    let _serial = serial();
    let b = Backend::start(Mode::Status(200));
    let c = format!(
        "{ZONE}[[profile]]\nname = \"off\"\nrouting = \"priority\"\nenabled = false\n[profile.monitor]\n{FAST}\n\
         [[profile.endpoint]]\nname = \"x\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {port} }}\n\
         [[profile]]\nname = \"parent\"\nrouting = \"priority\"\n\
         [[profile.endpoint]]\nname = \"to-off\"\nprofile = \"off\"\n\
         [[profile.endpoint]]\nname = \"to-child\"\nprofile = \"child\"\n\
         [[profile]]\nname = \"child\"\nrouting = \"priority\"\n[profile.monitor]\n{FAST}\n\
         [[profile.endpoint]]\nname = \"y\"\naddresses = [\"192.0.2.9\"]\nprobe = {{ host = \"127.0.0.1\", port = {port} }}\n",
        port = b.port
    );
    let e = Engine::from_toml(&c, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(ep_status(&e, "off.tm.example", "x")["status"], "Inactive");
    assert!(
        ep_status(&e, "off.tm.example", "x")["probe"]["probes"]
            .as_u64()
            .unwrap_or(0)
            == 0,
        "an inactive profile is not probed"
    );
    assert_eq!(
        ep_status(&e, "parent.tm.example", "to-off")["status"],
        "Stopped"
    );
    assert_eq!(
        ep_status(&e, "parent.tm.example", "to-child")["status"],
        "Online"
    );
    let s = status(&e);
    let off = s["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "off.tm.example")
        .unwrap()
        .clone();
    assert_eq!(off["status"], "Disabled");
    // The parent skips the stopped child and answers the child's answer.
    assert_eq!(one(&e, "parent.tm.example", 1, None, None), "192.0.2.9");
}
