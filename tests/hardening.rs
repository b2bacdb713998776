//! Regression tests for the field-hardening defects (issue 11) that live in
//! the library itself: names compared label by label, no amplification over
//! UDP, minimal ANY, the DO bit, well-formed replies into any buffer, the
//! ECS prefix checked on every path, the file watch's settling interval,
//! and a maintenance loop that survives a panic. Each test failed on the
//! code before its fix. `docs/ROBUSTNESS.md` lists them in its matrix.

mod common;
use common::backend::{Backend, Mode};
use common::*;
use hickory_proto::op::{Edns, Message, Query as HQuery, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use trafficmgr::engine::Fault;
use trafficmgr::{Engine, Query, QueryError, Rcode};

/// A query message; `udp` is the EDNS payload size (None: no EDNS).
fn query_msg(name: Name, t: RecordType, udp: Option<u16>, dnssec_ok: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x4242;
    m.add_query(HQuery::query(name, t));
    if let Some(size) = udp {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

fn ask_wire(e: &Engine, q: &[u8], tcp: bool) -> (usize, Message) {
    let mut out = vec![0u8; 65535];
    let n = e
        .answer_message(q, Some("192.0.2.7".parse().unwrap()), tcp, &mut out)
        .unwrap();
    (n, Message::from_vec(&out[..n]).unwrap())
}

/// Defect 4: `a\.trafficmanager.example` (a label that holds a dot) was
/// matched on text dots, and the writer aimed a compression pointer into
/// the middle of that label ("bad label type").
#[test]
fn a_dot_inside_a_label_is_not_a_label_boundary() {
    let e = Engine::from_toml(&basic_text(), Some(&data("."))).unwrap();
    // Labels ["a.tm", "example"]: not under tm.example at all.
    let name = Name::from_labels(vec![&b"a.tm"[..], &b"example"[..]]).unwrap();
    let (_, m) = ask_wire(
        &e,
        &query_msg(name, RecordType::A, Some(1232), false),
        false,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // Labels ["x.y", "tm", "example"]: under tm.example, a name that does not
    // exist; the SOA's owner is the zone, decoded from the reply.
    let name = Name::from_labels(vec![&b"x.y"[..], &b"tm"[..], &b"example"[..]]).unwrap();
    let (_, m) = ask_wire(
        &e,
        &query_msg(name, RecordType::A, Some(1232), false),
        false,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].name.to_ascii(), "tm.example.");
    // Labels ["prio.tm", "example"] spell a profile's name in text, but are not it.
    let name = Name::from_labels(vec![&b"prio.tm"[..], &b"example"[..]]).unwrap();
    let (_, m) = ask_wire(&e, &query_msg(name, RecordType::A, None, false), false);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // The same in presentation form through the Rust API: `\.` is a dot in a label.
    let a = ask(&e, "a\\.tm.example", 1, Some("192.0.2.7"), None);
    assert_eq!(a.rcode, Rcode::Refused);
    let a = ask(&e, "prio\\.tm.example", 1, Some("192.0.2.7"), None);
    assert_eq!(a.rcode, Rcode::Refused);
    let a = ask(&e, "x\\.y.tm.example", 1, Some("192.0.2.7"), None);
    assert_eq!(a.rcode, Rcode::NxDomain);
    // \DDD escapes name octets; a plain profile name still answers.
    let a = ask(&e, "\\112rio.tm.example", 1, Some("192.0.2.7"), None);
    assert_eq!(a.rcode, Rcode::NoError);
    assert!(!e.is_zone("tm\\.example"));
    assert!(e.is_zone("tm.example."));
    for bad in ["a\\", "a\\25", "a\\256.tm.example"] {
        let q = Query {
            name: bad.as_bytes(),
            qtype: 1,
            client: None,
            ecs: None,
        };
        assert!(e.lookup(&q, |_, _| ()).is_err(), "{bad}");
    }
}

/// A zone whose NS set is 40 long names: 2,952 octets of reply to a
/// 39-octet question before the fix.
fn amplifier() -> Engine {
    let ns: Vec<String> = (0..40)
        .map(|i| format!("\"nameserver-number-{i:02}.a-rather-long-provider-name.example\""))
        .collect();
    let cfg = format!(
        "[[zone]]\nname = \"tm.example\"\nnameservers = [{}]\n\
         [[profile]]\nname = \"both\"\nrouting = \"priority\"\n\
         [[profile.endpoint]]\nname = \"x\"\naddresses = [\"192.0.2.1\", \"2001:db8::1\"]\n",
        ns.join(", ")
    );
    Engine::from_toml(&cfg, None).unwrap()
}

/// Defect 6 (library part): UDP replies never exceed min(client's EDNS
/// size, 1232); ANY gets one RRset (RFC 8482).
#[test]
fn udp_replies_never_exceed_1232_octets_and_any_is_minimal() {
    let e = amplifier();
    let apex = Name::from_ascii("tm.example.").unwrap();
    for udp in [
        None,
        Some(512),
        Some(1232),
        Some(1400),
        Some(4096),
        Some(65535),
    ] {
        for t in [RecordType::NS, RecordType::ANY] {
            let q = query_msg(apex.clone(), t, udp, false);
            let (n, m) = ask_wire(&e, &q, false);
            let cap = udp.map_or(512, |u| usize::from(u).clamp(512, 1232));
            assert!(n <= cap, "{t:?} with EDNS {udp:?}: {n} octets > {cap}");
            if t == RecordType::NS {
                assert!(m.metadata.truncation, "40 NS names never fit: TC");
            } else {
                // ANY at the apex: the SOA alone.
                assert!(!m.metadata.truncation);
                assert_eq!(m.answers.len(), 1);
                assert_eq!(m.answers[0].record_type(), RecordType::SOA);
            }
        }
    }
    // Over TCP the whole NS set comes back.
    let (_, m) = ask_wire(
        &e,
        &query_msg(apex, RecordType::NS, Some(4096), false),
        true,
    );
    assert_eq!(m.answers.len(), 40);
    // ANY at an address profile: the A RRset only, not A and AAAA.
    let q = query_msg(
        Name::from_ascii("both.tm.example.").unwrap(),
        RecordType::ANY,
        Some(1232),
        false,
    );
    let (_, m) = ask_wire(&e, &q, false);
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, vec![RecordType::A]);
    // The record API (BIND's DLZ asks ANY for every record) still gets both.
    let a = ask(&e, "both.tm.example", 255, None, None);
    assert_eq!(a.answer.len(), 2);
}

/// Defect 13: RFC 3225 §3, the DO bit of the query is copied into the reply.
#[test]
fn the_do_bit_is_copied() {
    let e = Engine::from_toml(&basic_text(), Some(&data("."))).unwrap();
    for (name, t) in [
        ("prio.tm.example.", RecordType::A),
        ("nothing.tm.example.", RecordType::A),
        ("tm.example.", RecordType::SOA),
        ("other.example.", RecordType::A),
    ] {
        for dnssec_ok in [false, true] {
            let q = query_msg(Name::from_ascii(name).unwrap(), t, Some(1232), dnssec_ok);
            let (_, m) = ask_wire(&e, &q, false);
            let edns = m.edns.as_ref().expect("OPT in the reply");
            assert_eq!(edns.flags().dnssec_ok, dnssec_ok, "{name}");
        }
    }
}

/// Defect 8: into a buffer of any size, the reply is a well-formed message
/// (that a real parser reads, with as many records as its counts say) or an
/// error — never a partial OPT record after ARCOUNT 0.
#[test]
fn every_buffer_size_gives_a_whole_message_or_an_error() {
    let e = Engine::from_toml(&basic_text(), Some(&data("."))).unwrap();
    let mut cases = Vec::new();
    for (name, t) in [
        ("perf.tm.example.", RecordType::A),
        ("prio.tm.example.", RecordType::AAAA),
        ("nothing.tm.example.", RecordType::A),
        ("tm.example.", RecordType::NS),
    ] {
        let n = Name::from_ascii(name).unwrap();
        cases.push(query_msg(n.clone(), t, None, false));
        cases.push(query_msg(n.clone(), t, Some(1232), true));
        // With ECS: the OPT record is longest.
        let mut m = Message::from_vec(&query_msg(n, t, Some(1232), false)).unwrap();
        m.edns
            .as_mut()
            .unwrap()
            .options_mut()
            .insert(EdnsOption::Subnet("2001:db8:1:2::/64".parse().unwrap()));
        cases.push(m.to_vec().unwrap());
    }
    for q in &cases {
        let full = ask_wire(&e, q, true).0;
        for tcp in [false, true] {
            for len in 0..=full + 4 {
                let mut out = vec![0xAAu8; len];
                let Ok(n) = e.answer_message(q, None, tcp, &mut out) else {
                    continue;
                };
                assert!(n <= len);
                let m = Message::from_vec(&out[..n])
                    .unwrap_or_else(|err| panic!("buffer {len}: not a message: {err}"));
                let mut d = BinDecoder::new(&out[..n]);
                Message::read(&mut d).unwrap();
                assert!(d.is_empty(), "buffer {len}: trailing octets");
                let query_edns = Message::from_vec(q).unwrap().edns.is_some();
                assert_eq!(m.edns.is_some(), query_edns, "buffer {len}: OPT lost");
                // The same through the in-place entry (the dnsdist path).
                let mut inplace = vec![0u8; len.max(q.len())];
                inplace[..q.len()].copy_from_slice(q);
                inplace.truncate(len.max(q.len()));
                if len >= q.len() {
                    let n2 = e
                        .answer_in_place(&mut inplace[..len], q.len(), None, tcp)
                        .unwrap();
                    assert_eq!(&inplace[..n2], &out[..n], "in place, buffer {len}");
                }
            }
        }
    }
}

/// Defect 8: a TCP query longer than 4 KB (EDNS padding) is answered in
/// place, as the header promises up to 65,535 octets.
#[test]
fn a_long_tcp_query_is_answered_in_place() {
    let e = Engine::from_toml(&basic_text(), Some(&data("."))).unwrap();
    let mut q = query_msg(
        Name::from_ascii("prio.tm.example.").unwrap(),
        RecordType::A,
        Some(1232),
        false,
    );
    // Append a 5,000-octet padding option (code 12) to the OPT record.
    let pad = 5000usize;
    let rdlen_at = q.len() - 2;
    q[rdlen_at..].copy_from_slice(&((pad + 4) as u16).to_be_bytes());
    q.extend_from_slice(&12u16.to_be_bytes());
    q.extend_from_slice(&(pad as u16).to_be_bytes());
    q.extend(std::iter::repeat_n(0u8, pad));
    assert!(q.len() > 5000);
    let mut buf = vec![0u8; 65535];
    buf[..q.len()].copy_from_slice(&q);
    let n = e.answer_in_place(&mut buf, q.len(), None, true).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.metadata.id, 0x4242);
}

/// Defect 10: the ECS prefix is checked against its family where every
/// path goes through (the Rust API did not check; the PowerDNS adapter
/// passed `1.2.3.4/99` on).
#[test]
fn ecs_prefix_longer_than_its_family_is_refused_on_every_path() {
    let e = Engine::from_toml(&basic_text(), Some(&data("."))).unwrap();
    for (addr, prefix, ok) in [
        ("1.2.3.4", 99u8, false),
        ("1.2.3.4", 33, false),
        ("1.2.3.4", 32, true),
        ("2001:db8::", 129, false),
        ("2001:db8::", 255, false),
        ("2001:db8::", 128, true),
        ("1.2.3.4", 0, true),
    ] {
        let q = Query {
            name: b"perf.tm.example",
            qtype: 1,
            client: Some("192.0.2.1".parse::<IpAddr>().unwrap()),
            ecs: Some((addr.parse().unwrap(), prefix)),
        };
        let r = e.lookup(&q, |a, _| a.scope_prefix);
        if ok {
            let scope = r.unwrap();
            assert!(scope <= prefix.max(32), "{addr}/{prefix}: scope {scope}");
        } else {
            assert_eq!(r, Err(QueryError::BadEcsPrefix), "{addr}/{prefix}");
        }
    }
}

/// Defect 3: the file watch reloaded half-written files. A writer rewrites
/// the config in place and pauses at a `[[profile]]` boundary for 0.75 s —
/// longer than three of the watch's checks (every `watch_interval` / 4) and
/// three quarters of a `watch_interval`, with 0.25 s to spare for a loaded
/// machine — four times over (the old watch, checking once a second, read
/// such a pause with a chance of 3 in 4 each time); the last profile
/// must never answer NXDOMAIN meanwhile, and the finished file must load.
#[test]
fn the_file_watch_never_reads_a_writer_that_pauses_mid_file() {
    let dir = fresh_dir("settle");
    let path = dir.join("tm.toml");
    let body = |ttl: u32| {
        let head = format!(
            "[engine]\nwatch_interval = \"1s\"\n\
             [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"first\"\nrouting = \"priority\"\nttl = {ttl}\n\
             [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\n"
        );
        let tail = "[[profile]]\nname = \"last\"\nrouting = \"priority\"\n\
             [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\n";
        (head, tail.to_string())
    };
    let (h, t) = body(10);
    std::fs::write(&path, format!("{h}{t}")).unwrap();
    let e = Engine::from_file(&path).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut bad = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if ask(&e, "last.tm.example", 1, None, None).rcode != Rcode::NoError {
                    bad += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            bad
        });
        for round in 1..=4u32 {
            use std::io::Write;
            let (h, t) = body(10 + round);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            f.write_all(h.as_bytes()).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(750));
            f.write_all(t.as_bytes()).unwrap();
            drop(f);
            // The finished file is loaded within two intervals.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let a = ask(&e, "first.tm.example", 1, None, None);
                if a.answer.first().map(|r| r.1) == Some(10 + round) {
                    break;
                }
                assert!(Instant::now() < deadline, "round {round}: never reloaded");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let bad = watcher.join().unwrap();
        assert_eq!(bad, 0, "the half-written file was served {bad} times");
    });
    assert_eq!(e.reload_stats().failed, 0);
}

/// Defect 11: a panic in the maintenance loop stopped probes and the file
/// watch for good. Now it is caught, logged, counted in the status, and the
/// loop goes on; a panic while building a reload is a failed reload.
#[test]
fn the_maintenance_loop_survives_a_panic() {
    let backend = Backend::start(Mode::Status(200));
    let dir = fresh_dir("panic");
    let path = dir.join("tm.toml");
    let cfg = |ttl: u32| {
        format!(
            "[engine]\nwatch_interval = \"200ms\"\n\
             [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"p\"\nrouting = \"priority\"\nttl = {ttl}\n\
             [profile.monitor]\nprotocol = \"http\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n\
             [[profile.endpoint]]\nname = \"a\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {} }}\n",
            backend.port
        )
    };
    std::fs::write(&path, cfg(10)).unwrap();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let l2 = logs.clone();
    let e = Engine::from_file_with_log(
        &path,
        Some(Box::new(move |_, m| l2.lock().unwrap().push(m.to_string()))),
    )
    .unwrap();
    assert!(e.wait_ready(Duration::from_secs(5)));
    e.inject_fault(Fault::MaintenancePanic);
    let deadline = Instant::now() + Duration::from_secs(5);
    while e.maintenance_panics() == 0 {
        assert!(Instant::now() < deadline, "the fault never fired");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status: serde_json::Value = serde_json::from_str(&e.status_json()).unwrap();
    assert_eq!(status["monitor"]["panics"], 1);
    assert!(
        status["monitor"]["last_panic"]
            .as_str()
            .unwrap()
            .contains("MaintenancePanic")
    );
    assert!(
        logs.lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("maintenance loop"))
    );
    // Probes go on: the backend keeps being asked.
    let before = backend.requests();
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.requests() <= before {
        assert!(Instant::now() < deadline, "probes stopped after the panic");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The file watch goes on.
    std::fs::write(&path, cfg(20)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ask(&e, "p.tm.example", 1, None, None).answer[0].1 != 20 {
        assert!(Instant::now() < deadline, "the file watch stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A panic while building a reload: a failed reload, the old config serves.
    e.inject_fault(Fault::ReloadPanic);
    let err = e.reload().unwrap_err();
    assert!(err.to_string().contains("internal error"), "{err}");
    assert_eq!(ask(&e, "p.tm.example", 1, None, None).answer[0].1, 20);
    assert!(e.reload().is_ok());
    drop(e);
}

/// A query built by hand: header flags word, question, and an optional OPT
/// record given as (payload size, version, flags word, option bytes).
fn raw_query(flags: u16, name: &[u8], qtype: u16, opt: Option<(u16, u8, u16, &[u8])>) -> Vec<u8> {
    let mut q = vec![0x12, 0x34];
    q.extend_from_slice(&flags.to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())]);
    for label in name.split(|b| *b == b'.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some((size, version, oflags, options)) = opt {
        q.push(0);
        q.extend_from_slice(&41u16.to_be_bytes());
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, version]);
        q.extend_from_slice(&oflags.to_be_bytes());
        q.extend_from_slice(&(options.len() as u16).to_be_bytes());
        q.extend_from_slice(options);
    }
    q
}

/// The checks of ISC's EDNS compliance tester (ednscomp), which passed
/// before this issue and are kept as a test: plain, EDNS 0, EDNS 1
/// (BADVERS), unknown EDNS flags and options (not echoed), EDNS 1 with an
/// option, the header's Z bit, DO, TCP, case preserved, NOTIFY → NOTIMP.
#[test]
fn isc_edns_compliance_checks() {
    let e = Engine::from_toml(&basic_text(), Some(&data("."))).unwrap();
    let name = b"Tm.ExAmPlE";
    let soa = 6u16;
    let reply = |q: &[u8], tcp: bool| -> (Vec<u8>, Message) {
        let mut out = vec![0u8; 4096];
        let n = e.answer_message(q, None, tcp, &mut out).unwrap();
        out.truncate(n);
        let m = Message::from_vec(&out).unwrap();
        (out, m)
    };
    // plain: no OPT in, none out.
    let (_, m) = reply(&raw_query(0, name, soa, None), false);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.edns.is_none());
    assert_eq!(m.answers.len(), 1);
    // edns: version 0 back.
    let (_, m) = reply(&raw_query(0, name, soa, Some((4096, 0, 0, &[]))), false);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.edns.as_ref().unwrap().version(), 0);
    // edns1: BADVERS, version 0, no answer.
    let (_, m) = reply(&raw_query(0, name, soa, Some((4096, 1, 0, &[]))), false);
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    assert_eq!(m.edns.as_ref().unwrap().version(), 0);
    assert!(m.answers.is_empty());
    // ednsflags: an unknown flag is not echoed (the OPT TTL's low flag bits are 0).
    let (wire, m) = reply(
        &raw_query(0, name, soa, Some((4096, 0, 0x0080, &[]))),
        false,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        &wire[wire.len() - 4..wire.len() - 2],
        &[0, 0],
        "flags echoed"
    );
    // ednsopt: an unknown option is not echoed.
    let (_, m) = reply(
        &raw_query(0, name, soa, Some((4096, 0, 0, &[0, 100, 0, 0]))),
        false,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.edns.as_ref().unwrap().options().as_ref().is_empty());
    // edns1opt: BADVERS.
    let (_, m) = reply(
        &raw_query(0, name, soa, Some((4096, 1, 0, &[0, 100, 0, 0]))),
        false,
    );
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    // do: DO echoed.
    let (_, m) = reply(
        &raw_query(0, name, soa, Some((4096, 0, 0x8000, &[]))),
        false,
    );
    assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
    // zflag: the header's Z bit in the query; the reply has it clear.
    let (wire, m) = reply(&raw_query(0x0040, name, soa, None), false);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(wire[3] & 0x40, 0, "Z bit echoed");
    // ednstcp: the same over TCP.
    let (_, m) = reply(&raw_query(0, name, soa, Some((4096, 0, 0, &[]))), true);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.edns.is_some());
    // case: the question comes back as asked.
    assert_eq!(m.queries[0].name().to_ascii(), "Tm.ExAmPlE.");
    // NOTIFY (opcode 4): NOTIMP.
    let (_, m) = reply(&raw_query(4 << 11, name, soa, None), false);
    assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
}

/// Found by the hostile review: the probe pool was sized once, for the
/// first configuration, and never grew. Started with one probed endpoint
/// and reloaded to eight whose probes hang for their whole timeout, one
/// thread needed eight timeouts per round; the pool now follows the
/// configuration, so every endpoint has its first result within about one.
#[test]
fn the_probe_pool_grows_with_a_reload() {
    let hang = Backend::start(Mode::Hang);
    let cfg = |n: usize| {
        let mut c = String::from(
            "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"p\"\nrouting = \"priority\"\n\
             [profile.monitor]\nprotocol = \"http\"\ninterval = \"10s\"\ntimeout = \"1s\"\n",
        );
        for i in 0..n {
            c.push_str(&format!(
                "[[profile.endpoint]]\nname = \"e{i}\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {} }}\n",
                hang.port
            ));
        }
        c
    };
    let dir = fresh_dir("pool");
    let path = dir.join("tm.toml");
    std::fs::write(&path, cfg(1)).unwrap();
    let e = Engine::from_file(&path).unwrap();
    assert!(e.wait_ready(Duration::from_secs(5)));
    std::fs::write(&path, cfg(8)).unwrap();
    e.reload().unwrap();
    // Eight hanging probes of 1 s: one thread needs 8 s, eight need 1 s.
    std::thread::sleep(Duration::from_millis(2500));
    let status: serde_json::Value = serde_json::from_str(&e.status_json()).unwrap();
    let probed = status["profiles"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ep| !ep["probe"]["last_probe"].is_null())
        .count();
    assert_eq!(
        probed, 8,
        "{probed} of 8 endpoints probed 2.5 s after the reload"
    );
}

/// Found by the hostile review (a sibling of the data-file defect): the
/// config file itself was read with no check, so a config swapped for a
/// FIFO hung the reload (and the maintenance thread, and free) for good,
/// and one linked to /dev/zero was read until memory ran out. It must be a
/// regular file of at most 1 GiB, checked on the open descriptor.
#[test]
fn a_config_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = fresh_dir("cfg-fifo");
    let path = dir.join("tm.toml");
    std::fs::write(&path, basic_text()).unwrap();
    let e = std::sync::Arc::new(Engine::from_file(&path).unwrap());
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for target in [fifo.as_path(), std::path::Path::new("/dev/zero")] {
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(target, &path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let e2 = e.clone();
        // Detached: a hanging reload must fail the test, not hang it.
        std::thread::spawn(move || {
            let r = e2.reload().map_err(|x| x.to_string());
            drop(e2); // before the answer: the test then holds the only reference
            let _ = tx.send(r);
        });
        let r = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("reload of {} hangs", target.display()));
        let err = r.unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        assert_eq!(
            ask(&e, "prio.tm.example", 1, None, None).rcode,
            Rcode::NoError
        );
    }
    let t = Instant::now();
    drop(std::sync::Arc::into_inner(e).unwrap());
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// Found by the hostile review: an endpoint address no client could reach
/// (unspecified, multicast, broadcast) was accepted.
#[test]
fn endpoint_addresses_must_be_unicast() {
    for bad in ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255"] {
        let cfg = format!(
            "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"p\"\nrouting = \"priority\"\n\
             [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\", \"{bad}\"]\n"
        );
        let err = Engine::from_toml(&cfg, None).unwrap_err().to_string();
        assert!(
            err.contains("profile[0].endpoint[0].addresses[1]") && err.contains("unicast"),
            "{bad}: {err}"
        );
        assert!(err.starts_with("<string>:9:27:"), "{bad}: {err}");
    }
}

/// Found by the architecture review: a probe's verdict outlived its
/// monitor. An endpoint Degraded by probes stayed Degraded for good once
/// the profile's `[profile.monitor]` was removed (unprobed endpoints are
/// always online). The admin override still carries.
#[test]
fn a_removed_monitor_takes_its_verdict_with_it() {
    let dir = fresh_dir("monitor-removed");
    let path = dir.join("tm.toml");
    let closed = common::dns::free_port();
    let body = |monitor: bool| {
        format!(
            "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"p\"\nrouting = \"priority\"\nall_down = \"fail-closed\"\n{}\
             [[profile.endpoint]]\nname = \"a\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {closed} }}\n",
            if monitor {
                "[profile.monitor]\nprotocol = \"tcp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 0\n"
            } else {
                ""
            }
        )
    };
    std::fs::write(&path, body(true)).unwrap();
    let e = Engine::from_file(&path).unwrap();
    assert!(e.wait_ready(Duration::from_secs(5)));
    // fail-closed with its one endpoint Degraded: NODATA.
    assert!(ask(&e, "p.tm.example", 1, None, None).answer.is_empty());
    std::fs::write(&path, body(false)).unwrap();
    e.reload().unwrap();
    assert_eq!(ask(&e, "p.tm.example", 1, None, None).answer.len(), 1);
    let ep = ep_status(&e, "p.tm.example", "a");
    assert_eq!(ep["status"], "Online", "{ep}");
}

/// Found by the hostile review: a CNAME target equal to the profile's own
/// name (a loop no resolver can follow) was accepted.
#[test]
fn a_target_that_is_the_profile_itself_is_refused() {
    for target in ["p.tm.example", "P.TM.Example."] {
        let cfg = format!(
            "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"p\"\nrouting = \"priority\"\n\
             [[profile.endpoint]]\nname = \"a\"\ntarget = \"{target}\"\n"
        );
        let err = Engine::from_toml(&cfg, None).unwrap_err().to_string();
        assert!(
            err.contains("profile[0].endpoint[0].target") && err.contains("own name"),
            "{target}: {err}"
        );
    }
    // Another profile's name is a fine target (a CNAME chain we answer too).
    let cfg = "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
               [[profile]]\nname = \"p\"\nrouting = \"priority\"\n\
               [[profile.endpoint]]\nname = \"a\"\ntarget = \"q.tm.example\"\n\
               [[profile]]\nname = \"q\"\nrouting = \"priority\"\n\
               [[profile.endpoint]]\nname = \"b\"\ntarget = \"b.example\"\n";
    assert!(Engine::from_toml(cfg, None).is_ok());
}
