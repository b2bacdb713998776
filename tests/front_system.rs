//! System test of the embedded front (`trafficmgr serve`): a real process on a
//! loopback port, queried with `dig` (UDP and TCP, `-b` source addresses,
//! `+subnet`) and with a hickory-proto client. Every answer must equal the
//! Rust API's for the same client: "same answers everywhere" as one
//! assertion. Also: SIGHUP reload of a changed file, clean exit on SIGTERM.

mod common;
use common::dns::{BASIC_ROWS, Compare, assert_host_matches, dig_raw, rcode_name};
use common::front::{Front, hickory_ask};
use common::*;
use hickory_proto::op::{Message, Query as HQuery};
use hickory_proto::rr::{Name, RecordType};
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use trafficmgr::Engine;

/// The tests of this file run one at a time: each starts a server and
/// measures what a client sees, and the load test would skew the others.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// (rcode, aa, answers as (type, ttl, rdata), authority types, ECS scope)
type Dig = (
    String,
    bool,
    Vec<(String, u32, String)>,
    Vec<String>,
    Option<u8>,
);

fn dig(port: u16, name: &str, t: &str, extra: &[&str]) -> Dig {
    let (status, aa, answers, authority, ecs) = dig_raw(port, name, t, extra);
    let scope = ecs.and_then(|s| s.rsplit('/').next()?.trim().parse().ok());
    (status, aa, answers, authority, scope)
}

#[test]
fn front_answers_like_the_rust_api() {
    let _serial = serial();
    let config = data("basic.toml");
    let front = Front::start(&config);
    let engine = Engine::from_file(&config).unwrap();
    // (name, type, dig source address, ECS)
    // The shared table, and a name under none of our zones (REFUSED, no AA).
    let mut table = BASIC_ROWS.to_vec();
    table.push(("www.example.org", "A", 1, "127.0.0.1", None));
    assert_host_matches(
        front.port,
        &engine,
        &table,
        Compare {
            bind_source: true,
            sorted: false,
            scope: true,
        },
    );
    // A hickory client agrees too.
    let m = hickory_ask(front.port, "PRIO.tm.example", RecordType::A).unwrap();
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers[0].data.to_string(), "primary.contoso.example.");
    front.stop();
}

#[test]
fn sighup_reloads_a_changed_file_and_a_bad_file_changes_nothing() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("tm-front-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tm.toml");
    let base = basic_text();
    std::fs::write(&path, &base).unwrap();
    let front = Front::start(&path);
    assert_eq!(
        dig(front.port, "prio.tm.example", "A", &[]).2[0].2,
        "primary.contoso.example."
    );
    std::fs::write(
        &path,
        base.replace("primary.contoso.example", "moved.contoso.example"),
    )
    .unwrap();
    front.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while dig(front.port, "prio.tm.example", "A", &[]).2[0].2 != "moved.contoso.example." {
        assert!(Instant::now() < deadline, "reload not seen");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(&path, "this is [not toml").unwrap();
    front.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        dig(front.port, "prio.tm.example", "A", &[]).2[0].2,
        "moved.contoso.example."
    );
    front.stop();
}

/// Failover a client sees: the primary's backend stops, and `dig` answers
/// the secondary within interval × (tolerated_failures + 1) + timeout; the
/// backend comes back and so does the answer.
#[test]
fn dig_sees_failover_and_recovery() {
    let _serial = serial();
    use common::backend::{Backend, Mode};
    let primary = Backend::start(Mode::Status(200));
    let secondary = Backend::start(Mode::Status(200));
    let (interval, tolerated, timeout) = (1.0f64, 1u32, 0.5f64);
    let cfg = format!(
        "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n[[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 5\n\
         [profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = {tolerated}\n\
         [[profile.endpoint]]\nname = \"primary\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n\
         [[profile.endpoint]]\nname = \"secondary\"\naddresses = [\"192.0.2.2\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n",
        primary.port, secondary.port
    );
    let dir = std::env::temp_dir().join(format!("tm-failover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tm.toml");
    std::fs::write(&path, cfg).unwrap();
    let front = Front::start(&path);
    let answer = |port| {
        dig(port, "app.tm.example", "A", &[])
            .2
            .first()
            .map(|a| a.2.clone())
            .unwrap_or_default()
    };
    wait_for(10, "primary answered", || answer(front.port) == "192.0.2.1");
    // Let the primary pass a few probes, then stop it as a process would.
    std::thread::sleep(Duration::from_millis(1500));
    primary.set(Mode::Reset);
    let t0 = Instant::now();
    wait_for(15, "failover", || answer(front.port) == "192.0.2.2");
    let down = t0.elapsed().as_secs_f64();
    let bound = interval * f64::from(tolerated + 1) + timeout;
    println!("failover seen by dig after {down:.2} s (bound {bound:.1} s)");
    assert!(
        down <= bound + 0.5,
        "failover took {down:.2} s, bound {bound:.1} s"
    );
    primary.set(Mode::Status(200));
    let t1 = Instant::now();
    wait_for(15, "recovery", || answer(front.port) == "192.0.2.1");
    let up = t1.elapsed().as_secs_f64();
    println!(
        "recovery seen by dig after {up:.2} s (bound {:.1} s)",
        interval + timeout
    );
    assert!(up <= interval + timeout + 0.5, "recovery took {up:.2} s");
    drop(secondary);
    front.stop();
}

/// The embedded front under a query loop from this (second) process while
/// its config file is rewritten 50 times (watch and SIGHUP both): no query
/// fails, every answer is one of the two valid ones.
#[test]
fn rewrites_under_load_lose_nothing() {
    let _serial = serial();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = std::env::temp_dir().join(format!("tm-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tm.toml");
    let text = |t: &str| {
        format!(
            "[engine]\nwatch_interval = \"50ms\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"www\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"{t}\"\n"
        )
    };
    std::fs::write(&path, text("blue.example")).unwrap();
    let front = Front::start(&path);
    let port = front.port;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, wrong, lost) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (stop, ok, wrong, lost) = (stop.clone(), ok.clone(), wrong.clone(), lost.clone());
        threads.push(std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut id: u16 = 0;
            let mut buf = [0u8; 1024];
            while !stop.load(Ordering::SeqCst) {
                id = id.wrapping_add(1);
                let mut m = Message::query();
                m.metadata.id = id;
                m.add_query(HQuery::query(
                    Name::from_ascii("www.tm.example").unwrap(),
                    RecordType::A,
                ));
                s.send_to(&m.to_vec().unwrap(), ("127.0.0.1", port))
                    .unwrap();
                let r = loop {
                    match s.recv_from(&mut buf) {
                        Ok((n, _)) => match Message::from_vec(&buf[..n]) {
                            Ok(r) if r.metadata.id == id => break Some(r),
                            Ok(_) => continue,
                            Err(_) => break None,
                        },
                        Err(_) => break None,
                    }
                };
                match r {
                    Some(r) => {
                        let a = r
                            .answers
                            .first()
                            .map(|a| a.data.to_string())
                            .unwrap_or_default();
                        if a == "blue.example." || a == "green.example." {
                            ok.fetch_add(1, Ordering::SeqCst);
                        } else {
                            wrong.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    None => {
                        lost.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    for i in 0..50 {
        let t = if i % 2 == 0 {
            "green.example"
        } else {
            "blue.example"
        };
        if i % 2 == 0 {
            std::fs::write(&path, text(t)).unwrap();
        } else {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text(t)).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
        if i % 5 == 0 {
            front.signal(libc::SIGHUP);
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let (ok, wrong, lost) = (
        ok.load(Ordering::SeqCst),
        wrong.load(Ordering::SeqCst),
        lost.load(Ordering::SeqCst),
    );
    println!("{ok} queries answered during 50 rewrites, {wrong} wrong, {lost} lost");
    assert!(ok > 100);
    assert_eq!((wrong, lost), (0, 0));
    front.stop();
}

/// The routing methods through the front with `dig +subnet`, answers equal
/// to the Rust API's, scopes included.
#[test]
fn methods_through_the_front() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("tm-methods-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tm.toml");
    let cfg = format!(
        "{}\n[[profile]]\nname = \"geo\"\nrouting = \"geographic\"\n\
         [[profile.endpoint]]\nname = \"us\"\ntarget = \"us.example\"\ngeo = [\"US\"]\n\
         [[profile.endpoint]]\nname = \"eu\"\ntarget = \"eu.example\"\ngeo = [\"EU\"]\n\
         [engine]\ngeoip_db = \"{}\"\n",
        std::fs::read_to_string(data("methods.toml")).unwrap(),
        data("geo-sample.mmdb").display()
    );
    std::fs::write(&path, cfg).unwrap();
    let front = Front::start(&path);
    let engine = Engine::from_file(&path).unwrap();
    let cases: &[(&str, &str, (&str, u8))] = &[
        ("sub.tm.example", "A", ("10.1.0.0", 24)),
        ("sub.tm.example", "A", ("10.200.0.0", 16)),
        ("sub.tm.example", "AAAA", ("2001:db8:10::", 56)),
        ("sub.tm.example", "A", ("192.0.2.0", 24)),
        ("sub-strict.tm.example", "A", ("192.0.2.0", 24)),
        ("mv.tm.example", "A", ("192.0.2.0", 24)),
        ("mv.tm.example", "AAAA", ("192.0.2.0", 24)),
        ("aff.tm.example", "A", ("198.51.100.0", 24)),
        ("parent.tm.example", "A", ("198.51.100.0", 24)),
        ("geo.tm.example", "A", ("8.8.8.0", 24)),
        ("geo.tm.example", "A", ("81.2.69.0", 24)),
        ("geo.tm.example", "A", ("1.1.1.0", 24)),
    ];
    for &(name, t, (a, p)) in cases {
        let want = ask(
            &engine,
            name,
            if t == "A" { 1 } else { 28 },
            Some("127.0.0.1"),
            Some((a, p)),
        );
        let got = dig(front.port, name, t, &[&format!("+subnet={a}/{p}")]);
        let ctx = format!("{name} {t} +subnet={a}/{p}: {got:?}");
        assert_eq!(got.0, rcode_name(want.rcode), "{ctx}");
        assert_eq!(got.2, want.answer, "{ctx}");
        assert_eq!(got.4, Some(want.scope), "{ctx}");
    }
    front.stop();
}

/// Issue #15 seen with `dig` on a real front: the answer's TTL moves with
/// health (ttl while steady, ttl_unstable while the primary fails below
/// tolerated_failures, while it recovers, and while clients spill over from
/// a backend that reports its load with `X-Load`), and spill-over moves a
/// share of client /24s (`+subnet`) with the ECS scope covering the /24.
#[test]
fn dig_sees_ttls_move_with_health_and_load() {
    let _serial = serial();
    use common::backend::{Backend, Mode};
    let primary = Backend::start(Mode::Status(200));
    let secondary = Backend::start(Mode::Status(200));
    let cfg = format!(
        "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 300\nttl_unstable = 10\n\
         spill_start = 0.5\nspill_full = 1.0\n\
         [profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 2\nrecovery_successes = 2\n\
         load_header = \"X-Load\"\n\
         [[profile.endpoint]]\nname = \"primary\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n\
         [[profile.endpoint]]\nname = \"secondary\"\naddresses = [\"192.0.2.2\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n",
        primary.port, secondary.port
    );
    let dir = fresh_dir("front-ttl");
    let path = dir.join("tm.toml");
    std::fs::write(&path, cfg).unwrap();
    let front = Front::start(&path);
    let port = front.port;
    let seen = |extra: &[&str]| {
        let d = dig(port, "app.tm.example", "A", extra);
        let (a, ttl) = d.2.first().map(|a| (a.2.clone(), a.1)).unwrap_or_default();
        (a, ttl, d.4)
    };
    let t0 = Instant::now();
    let mut timeline: Vec<(f64, String, u32)> = Vec::new();
    let mut until = |what: &str, want: (&str, u32), secs: u64| {
        wait_for(secs, what, || {
            let (a, ttl, _) = seen(&[]);
            if timeline.last().is_none_or(|l| l.1 != a || l.2 != ttl) {
                timeline.push((t0.elapsed().as_secs_f64(), a.clone(), ttl));
            }
            (a.as_str(), ttl) == want
        });
    };
    until("steady", ("192.0.2.1", 300), 10);
    primary.set(Mode::Status(503));
    until("failing: short TTL", ("192.0.2.1", 10), 10);
    until("failed over: steady", ("192.0.2.2", 300), 10);
    primary.set(Mode::Status(200));
    until("recovering: short TTL", ("192.0.2.2", 10), 10);
    until("recovered", ("192.0.2.1", 300), 10);
    for (t, a, ttl) in &timeline {
        println!("dig at {t:5.2} s: {a} TTL {ttl}");
    }
    // Load reported by the backend: 0.75 is half way to spill_full.
    primary.set_load(Some("0.75"));
    wait_for(10, "spilling", || seen(&["+subnet=10.0.0.0/24"]).1 == 10);
    let mut moved = 0;
    for i in 0..100 {
        let (a, ttl, scope) = seen(&[&format!("+subnet=10.1.{i}.0/24")]);
        assert_eq!((ttl, scope), (10, Some(24)), "{a}");
        if a == "192.0.2.2" {
            moved += 1;
        }
    }
    println!("load 0.75: {moved} of 100 client /24s moved to the secondary");
    assert!((25..=75).contains(&moved), "{moved}");
    primary.set_load(Some("100%"));
    wait_for(10, "all spilled", || {
        (0..20).all(|i| seen(&[&format!("+subnet=10.2.{i}.0/24")]).0 == "192.0.2.2")
    });
    primary.set_load(None);
    wait_for(10, "load gone", || {
        seen(&[]).0 == "192.0.2.1" && seen(&[]).1 == 300
    });
    front.stop();
}

/// UDP sockets bound to 127.0.0.1:`port` in this network namespace, from
/// the kernel's own table.
fn udp_sockets_on(port: u16) -> usize {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
        .count()
}

/// The UDP path as gdnsd does it: `--threads 6` gives 6 sockets on the one
/// port (SO_REUSEPORT, one per thread, in the kernel's table), which answer
/// a few seconds of dnsperf load (8 clients, so spread over several
/// sockets) with every query completed and the expected response codes;
/// the answers stay right afterwards, and SIGTERM stops every thread within
/// a second.
#[test]
fn many_udp_threads_share_the_port_and_answer_under_dnsperf() {
    let _serial = serial();
    let config = data("basic.toml");
    let mut front = Front::start_with(&config, &["--threads", "6"]);
    assert_eq!(udp_sockets_on(front.port), 6, "one UDP socket per thread");
    let engine = Engine::from_file(&config).unwrap();
    let dir = std::env::temp_dir().join(format!("tm-front-perf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let q = dir.join("queries");
    // 5 names that answer NOERROR, one NXDOMAIN.
    std::fs::write(&q, "prio.tm.example A\nperf.tm.example A\naddrs.tm.example A\nweighted.tm.example A\ndeep.sub.tm.example AAAA\nnope.tm.example A\n").unwrap();
    let out = std::process::Command::new("dnsperf")
        .args(["-s", "127.0.0.1", "-p", &front.port.to_string()])
        .args(["-l", "3", "-c", "8", "-q", "100", "-d"])
        .arg(&q)
        .output()
        .expect("dnsperf is installed (scripts/install-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |label: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let (sent, completed, lost) = (
        field("Queries sent:"),
        field("Queries completed:"),
        field("Queries lost:"),
    );
    println!("dnsperf: {sent} sent, {completed} completed, {lost} lost");
    assert!(completed > 1000 && completed != u64::MAX, "{text}");
    assert_eq!(lost, 0, "{text}");
    // dnsperf's "Response codes:" line: NOERROR for 5 names in 6, NXDOMAIN
    // for the other, nothing else.
    let codes = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Response codes:"))
        .unwrap_or_default()
        .to_string();
    let count = |code: &str| -> u64 {
        let words: Vec<&str> = codes.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[0] == code)
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(0)
    };
    let (noerror, nxdomain) = (count("NOERROR"), count("NXDOMAIN"));
    assert_eq!(
        noerror + nxdomain,
        completed,
        "other response codes: {codes}"
    );
    // dnsperf sends the file's lines in turn: one query in 6 is nope.tm.example.
    assert!(
        (nxdomain * 6).abs_diff(completed) <= 60,
        "{nxdomain} NXDOMAIN of {completed}: {codes}"
    );
    // Still the Rust API's answers, on every socket.
    let mut table = BASIC_ROWS.to_vec();
    table.push(("www.example.org", "A", 1, "127.0.0.1", None));
    assert_host_matches(
        front.port,
        &engine,
        &table,
        Compare {
            bind_source: true,
            sorted: false,
            scope: true,
        },
    );
    let took = front.stop_within(Duration::from_secs(5));
    assert!(
        took < Duration::from_secs(1),
        "6 UDP threads stopped in {took:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// SO_REUSEPORT must not let a second front silently share the first one's
/// address: it fails to start (the TCP listener is bound first, without
/// the option), and the first keeps answering on every socket.
#[test]
fn a_second_front_on_the_same_address_fails_to_start() {
    let _serial = serial();
    let config = data("basic.toml");
    let front = Front::start_with(&config, &["--threads", "3"]);
    let out = std::process::Command::new(common::front::serve_bin())
        .args(["serve", "--config", config.to_str().unwrap()])
        .args([
            "--listen",
            &format!("127.0.0.1:{}", front.port),
            "--threads",
            "3",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot bind TCP"), "{err}");
    assert_eq!(
        udp_sockets_on(front.port),
        3,
        "no socket of the second front left"
    );
    for _ in 0..20 {
        let m = hickory_ask(front.port, "prio.tm.example", RecordType::A).expect("an answer");
        assert_eq!(m.answers.len(), 1);
    }
    front.stop();
}
