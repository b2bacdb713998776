//! What a probe checks beyond the connection, against real HTTP servers on
//! loopback: an endpoint's own monitor settings (`probe = { headers, path,
//! port, host, expected_status, expect_body }` over the profile's), which
//! change its probe target's identity (its state resets then, and only
//! then); and `expect_body`, looked for in the first 5,120 octets of the
//! body, read bounded in size and time.

mod common;
use common::backend::{Backend, Mode};
use common::*;
use std::time::{Duration, Instant};
use trafficmgr::Engine;

const ZONE: &str = "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n";
const FAST: &str = "interval = \"1s\"\ntimeout = \"800ms\"\ntolerated_failures = 0";

/// A priority profile `p` with `monitor` and one endpoint per
/// `(name, port, probe fields)`.
fn cfg(monitor: &str, eps: &[(&str, u16, &str)]) -> String {
    let mut c = format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n[profile.monitor]\n{FAST}\n{monitor}\n"
    );
    for (name, port, probe) in eps {
        c.push_str(&format!(
            "[[profile.endpoint]]\nname = \"{name}\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {port}{probe} }}\n"
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

fn last_result(e: &Engine, ep: &str) -> String {
    ep_status(e, "p.tm.example", ep)["probe"]["last_result"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// One test at a time: they share the two cores with probes on timers.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The value of header `name` in a request head, if sent.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[test]
fn endpoint_headers_path_port_host_and_statuses_override_the_profiles() {
    let _s = serial();
    let ok = Backend::start(Mode::Status(200));
    let maint = Backend::start(Mode::Status(503));
    let e = Engine::from_toml(
        &cfg(
            "path = \"/profile\"\nexpected_status = [\"200\"]\nheaders = { \"X-Who\" = \"profile\", \"X-Keep\" = \"kept\", Host = \"profile.example\" }",
            &[
                // Its own port and path, a header replacing the profile's
                // (by name, whatever the case), its own Host, another header.
                (
                    "own",
                    ok.port,
                    ", path = \"/own\", headers = { \"x-who\" = \"endpoint\", Host = \"own.example\", \"X-More\" = \"1\" }",
                ),
                // 503 accepted here only.
                ("maint-ok", maint.port, ", expected_status = [\"503\", \"200-299\"]"),
                // The profile's statuses: 503 fails.
                ("maint-bad", maint.port, ""),
            ],
        ),
        None,
    )
    .unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(state(&e, "own"), "Online");
    assert_eq!(
        state(&e, "maint-ok"),
        "Online",
        "{}",
        last_result(&e, "maint-ok")
    );
    assert_eq!(last_result(&e, "maint-ok"), "HTTP 503");
    assert_eq!(state(&e, "maint-bad"), "Degraded");
    let heads = ok.heads.lock().unwrap().clone();
    let h = heads.first().expect("the backend was probed");
    assert!(h.starts_with("GET /own "), "{h}");
    assert_eq!(header(h, "x-who").as_deref(), Some("endpoint"), "{h}");
    assert_eq!(
        h.matches("X-Who").count() + h.matches("x-who").count(),
        1,
        "{h}"
    );
    assert_eq!(header(h, "x-keep").as_deref(), Some("kept"), "{h}");
    assert_eq!(header(h, "x-more").as_deref(), Some("1"), "{h}");
    assert_eq!(header(h, "host").as_deref(), Some("own.example"), "{h}");
    let heads = maint.heads.lock().unwrap().clone();
    assert!(
        heads.iter().all(|h| h.starts_with("GET /profile ")
            && header(h, "host").as_deref() == Some("profile.example")
            && header(h, "x-who").as_deref() == Some("profile")),
        "{heads:?}"
    );
    // The status report shows each endpoint's own target.
    let t = ep_status(&e, "p.tm.example", "own")["probe"]["target"].clone();
    assert_eq!(t, format!("http://127.0.0.1:{}/own", ok.port));
}

#[test]
fn a_changed_override_resets_that_endpoint_only() {
    let _s = serial();
    let b = Backend::start(Mode::Status(200));
    let dir = fresh_dir("probe-override-reset");
    let file = dir.join("tm.toml");
    let write = |a_probe: &str| {
        std::fs::write(
            &file,
            cfg(
                "",
                &[("a", b.port, a_probe), ("b", b.port, ", path = \"/b\"")],
            ),
        )
        .unwrap();
    };
    write(", path = \"/a\"");
    let e = Engine::from_file(&file).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(state(&e, "a"), "Online");
    assert_eq!(state(&e, "b"), "Online");
    let since = |ep: &str| {
        ep_status(&e, "p.tm.example", ep)["probe"]["since"]
            .as_f64()
            .unwrap()
    };
    let (a0, b0) = (since("a"), since("b"));
    // Same settings written again (another order of keys): nothing resets.
    std::thread::sleep(Duration::from_millis(50));
    write(", path = \"/a\"");
    e.reload().unwrap();
    assert_eq!((since("a"), since("b")), (a0, b0));
    // a now only accepts 418: its target is a new one, checked afresh.
    write(", path = \"/a\", expected_status = [\"418\"]");
    e.reload().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(&e, "a") != "Degraded" {
        assert!(Instant::now() < deadline, "a stayed {}", state(&e, "a"));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(since("a") > a0);
    assert_eq!(since("b"), b0, "b's settings did not change");
    assert_eq!(state(&e, "b"), "Online");
}

#[test]
fn expect_body_in_the_first_5120_octets() {
    let _s = serial();
    let found = Backend::start(Mode::Body {
        status: 200,
        pad: 100,
        text: "status: ready",
    });
    // The text ends exactly at octet 5,120: found.
    let edge = Backend::start(Mode::Body {
        status: 200,
        pad: 5120 - "ready".len(),
        text: "ready",
    });
    // One octet further: not read, so not found.
    let beyond = Backend::start(Mode::Body {
        status: 200,
        pad: 5120 - "ready".len() + 1,
        text: "ready",
    });
    let other = Backend::start(Mode::Body {
        status: 200,
        pad: 0,
        text: "status: draining",
    });
    // A matching body with a status not accepted still fails on the status.
    let bad_status = Backend::start(Mode::Body {
        status: 500,
        pad: 0,
        text: "ready",
    });
    let endless = Backend::start(Mode::EndlessBody);
    let stalled = Backend::start(Mode::StalledBody);
    // The endpoint's own expect_body replaces the profile's.
    let own = Backend::start(Mode::Body {
        status: 200,
        pad: 0,
        text: "draining",
    });
    let e = Engine::from_toml(
        &cfg(
            "expect_body = \"ready\"",
            &[
                ("found", found.port, ""),
                ("edge", edge.port, ""),
                ("beyond", beyond.port, ""),
                ("other", other.port, ""),
                ("bad-status", bad_status.port, ""),
                ("endless", endless.port, ""),
                ("stalled", stalled.port, ""),
                ("own", own.port, ", expect_body = \"draining\""),
            ],
        ),
        None,
    )
    .unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    for ep in ["found", "edge", "own"] {
        assert_eq!(state(&e, ep), "Online", "{ep}: {}", last_result(&e, ep));
        assert_eq!(last_result(&e, ep), "HTTP 200, body matched");
    }
    for (ep, read) in [("beyond", 5120), ("other", 16), ("endless", 5120)] {
        assert_eq!(state(&e, ep), "Degraded", "{ep}");
        assert_eq!(
            last_result(&e, ep),
            format!("HTTP 200, body did not contain \"ready\" (first {read} octets read)"),
            "{ep}"
        );
    }
    assert_eq!(state(&e, "bad-status"), "Degraded");
    assert_eq!(last_result(&e, "bad-status"), "HTTP 500");
    // A body that never comes is bounded by the probe's timeout.
    assert_eq!(state(&e, "stalled"), "Degraded");
    let r = last_result(&e, "stalled");
    assert!(r.starts_with("HTTP 200, body: "), "{r}");
    let rtt = ep_status(&e, "p.tm.example", "stalled")["probe"]["rtt_ms"]
        .as_f64()
        .unwrap();
    assert!((700.0..5000.0).contains(&rtt), "{rtt} ms");
}

/// `free` (drop) stays prompt while a probe waits for a body that never
/// comes.
#[test]
fn drop_is_prompt_while_a_body_stalls() {
    let _s = serial();
    let stalled = Backend::start(Mode::StalledBody);
    let text = format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n[profile.monitor]\ninterval = \"60s\"\ntimeout = \"50s\"\nexpect_body = \"ready\"\n\
         [[profile.endpoint]]\nname = \"a\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {} }}\n",
        stalled.port
    );
    let e = Engine::from_toml(&text, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stalled.requests() == 0 {
        assert!(Instant::now() < deadline, "never probed");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    drop(e);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn new_probe_fields_are_checked_at_load() {
    // (monitor lines, endpoint probe fields, key path, line, column, message part)
    let cases: &[(&str, &str, &str, usize, usize, &str)] = &[
        (
            "expect_body = \"\"",
            "",
            "profile[0].monitor.expect_body",
            10,
            1,
            "1 to 5120 octets",
        ),
        (
            "protocol = \"tcp\"\nexpect_body = \"ok\"",
            "",
            "profile[0].monitor.expect_body",
            11,
            1,
            "http and https probes only",
        ),
        (
            "protocol = \"tcp\"",
            ", headers = { X = \"1\" }",
            "profile[0].endpoint[0].probe.headers",
            14,
            22,
            "http and https monitors only",
        ),
        (
            "",
            ", headers = { \"X A\" = \"1\" }",
            "profile[0].endpoint[0].probe.headers.X A",
            14,
            34,
            "not a valid header name",
        ),
        (
            "",
            ", expected_status = [\"200\", \"99\"]",
            "profile[0].endpoint[0].probe.expected_status[1]",
            14,
            48,
            "not a status or range",
        ),
        (
            "",
            ", expect_body = \"\"",
            "profile[0].endpoint[0].probe.expect_body",
            14,
            22,
            "1 to 5120 octets",
        ),
        (
            "query_name = \"www.example\"",
            "",
            "profile[0].monitor.query_name",
            10,
            1,
            "dns probes only",
        ),
    ];
    for (monitor, probe, path, line, col, msg) in cases {
        let text = format!(
            "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n[profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\n{monitor}\n\
             [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ port = 80{probe} }}\n"
        );
        let err = Engine::from_toml(&text, None).expect_err(&text);
        assert_eq!(err.path, *path, "{err}\n---\n{text}");
        assert_eq!((err.line, err.col), (*line, *col), "{err}\n---\n{text}");
        assert!(err.message.contains(msg), "{err}\n---\n{text}");
    }
}
