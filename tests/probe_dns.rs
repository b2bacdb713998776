//! DNS probes (`protocol = "dns"`) against real DNS servers on loopback:
//! the embedded front (`trafficmgr serve`) over UDP, Debian's `named` for
//! an answer too large for UDP (truncated, asked again over TCP), a
//! black-holed port that never answers and a closed one; and `free` stays
//! prompt while a probe waits.

mod common;
use common::front::Front;
use common::*;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trafficmgr::Engine;

const ZONE: &str = "[[zone]]\nname = \"probe.example\"\nnameservers = [\"ns1.probe.example\"]\n";

/// A profile `name` probing 127.0.0.1:`port` with a dns monitor of `monitor`
/// lines (one endpoint, `e`).
fn profile(name: &str, monitor: &str, port: u16) -> String {
    format!(
        "[[profile]]\nname = \"{name}\"\nrouting = \"priority\"\n[profile.monitor]\nprotocol = \"dns\"\ninterval = \"2s\"\ntimeout = \"1s\"\ntolerated_failures = 0\n{monitor}\n\
         [[profile.endpoint]]\nname = \"e\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\", port = {port} }}\n"
    )
}

fn state(e: &Engine, p: &str) -> (String, String) {
    let s = ep_status(e, &format!("{p}.probe.example"), "e");
    (
        s["status"].as_str().unwrap().to_string(),
        s["probe"]["last_result"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// The front serving `www.tm.example` = 192.0.2.1 and 2001:db8::1.
fn front(dir: &Path) -> Front {
    let cfg = dir.join("front.toml");
    std::fs::write(
        &cfg,
        "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"www\"\nrouting = \"multivalue\"\n\
         [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\", \"2001:db8::1\"]\n",
    )
    .unwrap();
    Front::start(&cfg)
}

/// A UDP port that is bound and never answers.
fn black_hole() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn closed_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn dns_probes_against_the_embedded_front() {
    let dir = fresh_dir("probe-dns-front");
    let f = front(&dir);
    let hole = black_hole();
    let hole_port = hole.local_addr().unwrap().port();
    let closed = closed_udp_port();
    let mut text = ZONE.to_string();
    for (name, monitor, port) in [
        (
            "soa",
            "query_name = \"tm.example\"\nquery_type = \"SOA\"",
            f.port,
        ),
        (
            "addr",
            "query_name = \"www.tm.example.\"\nexpect_answer = \"192.0.2.1\"",
            f.port,
        ),
        (
            "v6",
            "query_name = \"WWW.tm.example\"\nquery_type = \"aaaa\"\nexpect_answer = \"2001:db8:0::1\"",
            f.port,
        ),
        (
            "wrong",
            "query_name = \"www.tm.example\"\nexpect_answer = \"192.0.2.99\"",
            f.port,
        ),
        ("nx", "query_name = \"nope.tm.example\"", f.port),
        (
            "nx-ok",
            "query_name = \"nope.tm.example\"\nexpect_rcode = [\"NXDOMAIN\", \"NOERROR\"]",
            f.port,
        ),
        (
            "refused",
            "query_name = \"elsewhere.example\"\nexpect_rcode = [\"REFUSED\"]",
            f.port,
        ),
        ("hole", "query_name = \"www.tm.example\"", hole_port),
        ("closed", "query_name = \"www.tm.example\"", closed),
    ] {
        text.push_str(&profile(name, monitor, port));
    }
    let e = Engine::from_toml(&text, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(15)));
    let s = |p| state(&e, p);
    assert_eq!(s("soa"), ("Online".into(), "DNS NOERROR, 1 answer".into()));
    assert_eq!(
        s("addr"),
        (
            "Online".into(),
            "DNS NOERROR, 1 answer, 192.0.2.1 among them".into()
        )
    );
    assert_eq!(s("v6").0, "Online", "{:?}", s("v6"));
    assert_eq!(
        s("wrong"),
        (
            "Degraded".into(),
            "DNS NOERROR, 1 answer: no answer is 192.0.2.99 (got 192.0.2.1)".into()
        )
    );
    assert_eq!(
        s("nx"),
        (
            "Degraded".into(),
            "DNS NXDOMAIN, 0 answers: response code not expected".into()
        )
    );
    assert_eq!(
        s("nx-ok"),
        ("Online".into(), "DNS NXDOMAIN, 0 answers".into())
    );
    assert_eq!(s("refused").0, "Online", "{:?}", s("refused"));
    assert_eq!(
        s("hole"),
        (
            "Degraded".into(),
            "DNS: no answer before the timeout".into()
        )
    );
    let (st, why) = s("closed");
    assert_eq!(st, "Degraded");
    assert!(why.contains("refused"), "{why}");
    // The report names what is asked.
    assert_eq!(
        ep_status(&e, "v6.probe.example", "e")["probe"]["target"],
        format!("dns://127.0.0.1:{}/www.tm.example. AAAA", f.port)
    );
    // The black hole was asked, and never answered.
    let mut buf = [0u8; 512];
    hole.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    assert!(hole.recv(&mut buf).is_ok(), "the probe sent its query");
    drop(e);
    f.stop();
}

/// Debian's named on a free loopback port (UDP and TCP), serving `zone`
/// as `big.example`.
struct Named(Child);

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn named(dir: &Path, port: u16) -> Named {
    let mut zone = String::from(
        "$TTL 300\n@ IN SOA ns.big.example. host.big.example. 1 3600 600 86400 300\n@ IN NS ns.big.example.\nns IN A 192.0.2.53\nwww IN A 192.0.2.80\n",
    );
    // About 1,800 octets of TXT: more than a UDP answer without EDNS holds.
    for i in 0..30 {
        zone.push_str(&format!(
            "big IN TXT \"record {i:02} of a set too large for 512 octets\"\n"
        ));
    }
    std::fs::write(dir.join("big.zone"), zone).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("named.conf"),
        format!(
            "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  recursion no;\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n}};\ncontrols {{ }};\nzone \"big.example\" {{ type primary; file \"{d}/big.zone\"; }};\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("/usr/sbin/named");
    cmd.arg("-g")
        .arg("-c")
        .arg(dir.join("named.conf"))
        .args(["-n", "1"]);
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        cmd.args(["-u", "root"]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("named.log")).unwrap(),
        ))
        .spawn()
        .expect("named (Debian's bind9) is installed");
    let n = Named(child);
    wait_for(30, "named answering", || {
        common::front::hickory_ask(port, "www.big.example", hickory_proto::rr::RecordType::A)
            .is_some()
    });
    n
}

#[test]
fn truncated_answers_are_asked_again_over_tcp() {
    let dir = fresh_dir("probe-dns-named");
    let port = common::dns::free_port();
    let _named = named(&dir, port);
    let mut text = ZONE.to_string();
    text.push_str(&profile(
        "big",
        "query_name = \"big.big.example\"\nquery_type = \"TXT\"\nexpect_answer = \"record 29 of a set too large for 512 octets\"",
        port,
    ));
    text.push_str(&profile(
        "small",
        "query_name = \"www.big.example\"\nexpect_answer = \"192.0.2.80\"",
        port,
    ));
    text.push_str(&profile(
        "ns",
        "query_name = \"big.example\"\nquery_type = \"NS\"\nexpect_answer = \"NS.big.example\"",
        port,
    ));
    let e = Engine::from_toml(&text, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(15)));
    assert_eq!(
        state(&e, "big"),
        (
            "Online".into(),
            "DNS NOERROR over TCP, 30 answers, record 29 of a set too large for 512 octets among them"
                .into()
        )
    );
    assert_eq!(
        state(&e, "small"),
        (
            "Online".into(),
            "DNS NOERROR, 1 answer, 192.0.2.80 among them".into()
        )
    );
    assert_eq!(state(&e, "ns").0, "Online", "{:?}", state(&e, "ns"));
}

/// A probe waiting for an answer that never comes (timeout 50 s) does not
/// hold up `free`.
#[test]
fn drop_is_prompt_while_a_dns_probe_waits() {
    let hole = black_hole();
    let text = format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n[profile.monitor]\nprotocol = \"dns\"\nquery_name = \"www.tm.example\"\ninterval = \"60s\"\ntimeout = \"50s\"\n\
         [[profile.endpoint]]\nname = \"e\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {} }}\n",
        hole.local_addr().unwrap().port()
    );
    let e = Engine::from_toml(&text, None).unwrap();
    let mut buf = [0u8; 512];
    hole.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    hole.recv(&mut buf).expect("the probe sent its query");
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    drop(e);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn dns_monitor_settings_are_checked_at_load() {
    // (monitor lines, key path, line, message part)
    let cases: &[(&str, &str, usize, &str)] = &[
        ("", "profile[0].monitor.protocol", 8, "needs `query_name`"),
        (
            "query_name = \"a..b\"",
            "profile[0].monitor.query_name",
            11,
            "empty label",
        ),
        (
            "query_name = \"a.example\"\nquery_type = \"BOGUS\"",
            "profile[0].monitor.query_type",
            12,
            "not a record type",
        ),
        (
            "query_name = \"a.example\"\nexpect_rcode = [\"NOERROR\", \"OK\"]",
            "profile[0].monitor.expect_rcode[1]",
            12,
            "not a response code",
        ),
        (
            "query_name = \"a.example\"\nexpect_rcode = []",
            "profile[0].monitor.expect_rcode",
            12,
            "at least one",
        ),
        (
            "query_name = \"a.example\"\nexpect_answer = \" \"",
            "profile[0].monitor.expect_answer",
            12,
            "1 to 1024 octets",
        ),
        (
            "query_name = \"a.example\"\nexpect_body = \"x\"",
            "profile[0].monitor.expect_body",
            12,
            "http and https probes only",
        ),
    ];
    for (monitor, path, line, msg) in cases {
        let text = format!(
            "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n[profile.monitor]\nprotocol = \"dns\"\ninterval = \"2s\"\ntimeout = \"1s\"\n{monitor}\n\
             [[profile.endpoint]]\nname = \"e\"\naddresses = [\"192.0.2.1\"]\n"
        );
        let err = Engine::from_toml(&text, None).expect_err(&text);
        assert_eq!(err.path, *path, "{err}\n---\n{text}");
        assert_eq!(err.line, *line, "{err}\n---\n{text}");
        assert!(err.message.contains(msg), "{err}\n---\n{text}");
        assert!(
            err.to_string().starts_with(&format!("<string>:{line}:")),
            "{err}"
        );
    }
}

/// A hostile DNS server on loopback: to each query it sends 50 (empty)
/// answers with a wrong ID, one with the right ID from another port, and then
/// (`answer_at_all`) a real answer of one TXT record of 60,000 octets.
/// Returns its port; it runs until the test process ends.
fn hostile(answer_at_all: bool) -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                return;
            };
            let q = &buf[..n];
            // The answer: the query with QR set, ANCOUNT 1, one TXT record
            // (owner: a pointer to the question) of 240 strings × 250 octets.
            let mut r = q.to_vec();
            r[2] |= 0x80;
            r[6..8].copy_from_slice(&1u16.to_be_bytes());
            let mut rdata = Vec::new();
            for _ in 0..240 {
                rdata.push(250u8);
                rdata.extend(std::iter::repeat_n(b'z', 250));
            }
            r.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            r.extend_from_slice(&rdata);
            // (Small, so the flood does not fill the probe's receive buffer.)
            let mut wrong = q.to_vec();
            wrong[2] |= 0x80;
            for i in 0..50u16 {
                let id = u16::from_be_bytes([q[0], q[1]]).wrapping_add(1 + i);
                wrong[0..2].copy_from_slice(&id.to_be_bytes());
                let _ = s.send_to(&wrong, from);
            }
            let _ = other.send_to(&r, from);
            if answer_at_all {
                let _ = s.send_to(&r, from);
            }
        }
    });
    port
}

/// Answers with a wrong ID or from another port are ignored (the probe
/// waits until its timeout); a huge answer that does not match
/// `expect_answer` fails with a result of bounded length (before, the
/// status and the log line carried ~60,000 octets of the endpoint's TXT).
#[test]
fn hostile_dns_server() {
    let silent = hostile(false);
    let huge = hostile(true);
    let text = format!(
        "{ZONE}{}{}",
        profile(
            "silent",
            "query_name = \"x.example\"\nquery_type = \"TXT\"",
            silent
        ),
        profile(
            "huge",
            "query_name = \"x.example\"\nquery_type = \"TXT\"\nexpect_answer = \"ok\"",
            huge
        ),
    );
    let e = Engine::from_toml(&text, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    let (status, result) = state(&e, "silent");
    assert_eq!(
        (status.as_str(), result.as_str()),
        ("Degraded", "DNS: no answer before the timeout")
    );
    let (status, result) = state(&e, "huge");
    assert_eq!(status, "Degraded", "{}", &result[..result.len().min(300)]);
    assert!(
        result.starts_with("DNS NOERROR, 1 answer: no answer is ok (got "),
        "{}",
        &result[..result.len().min(300)]
    );
    assert!(result.len() <= 400, "{} octets", result.len());
}
