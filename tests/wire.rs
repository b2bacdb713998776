//! The wire-format entry point, checked by decoding every reply with
//! hickory-proto: the fast writer must agree with the Rust API and with a
//! real DNS parser, for every answer shape, ECS, truncation and error path.

mod common;
use common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use std::net::IpAddr;
use trafficmgr::Engine;
use trafficmgr::answer::wire::WireError;

fn query(name: &str, t: RecordType, ecs: Option<(&str, u8)>, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x1234;
    m.metadata.recursion_desired = true;
    m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), t));
    if edns || ecs.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        if let Some((a, p)) = ecs {
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                a.parse().unwrap(),
                p,
                0,
            )));
        }
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

fn resolve(e: &Engine, q: &[u8], peer: &str, tcp: bool) -> Message {
    let mut out = vec![0u8; 65535];
    let n = e
        .answer_message(q, Some(peer.parse::<IpAddr>().unwrap()), tcp, &mut out)
        .unwrap();
    Message::from_vec(&out[..n]).unwrap()
}

fn scope_of(m: &Message) -> Option<(u8, u8)> {
    let e = m.edns.as_ref()?;
    match e.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some((s.source_prefix(), s.scope_prefix())),
        _ => None,
    }
}

#[test]
fn wire_agrees_with_the_rust_api_for_every_shape() {
    let e = Engine::from_file(data("basic.toml")).unwrap();
    type Case<'a> = (&'a str, RecordType, &'a str, Option<(&'a str, u8)>);
    let cases: &[Case] = &[
        ("prio.tm.example", RecordType::A, "192.0.2.1", None),
        ("prio.tm.example", RecordType::MX, "192.0.2.1", None),
        ("perf.tm.example", RecordType::A, "127.0.0.2", None),
        (
            "perf.tm.example",
            RecordType::AAAA,
            "127.0.0.1",
            Some(("203.0.113.0", 24)),
        ),
        (
            "perf.tm.example",
            RecordType::A,
            "127.0.0.1",
            Some(("2001:db8:1::", 48)),
        ),
        ("addrs.tm.example", RecordType::A, "192.0.2.1", None),
        ("addrs.tm.example", RecordType::AAAA, "192.0.2.1", None),
        ("deep.sub.tm.example", RecordType::ANY, "192.0.2.1", None),
        ("sub.tm.example", RecordType::A, "192.0.2.1", None),
        ("tm.example", RecordType::SOA, "192.0.2.1", None),
        ("tm.example", RecordType::NS, "192.0.2.1", None),
        ("tm.example", RecordType::ANY, "192.0.2.1", None),
        ("tm.example", RecordType::TXT, "192.0.2.1", None),
        ("nope.tm.example", RecordType::A, "192.0.2.1", None),
        ("off.tm.example", RecordType::A, "192.0.2.1", None),
        ("example.org", RecordType::A, "192.0.2.1", None),
    ];
    for &(name, t, peer, ecs) in cases {
        for edns in [false, true] {
            let m = resolve(&e, &query(name, t, ecs, edns), peer, false);
            let want = ask(&e, name, u16::from(t), Some(peer), ecs);
            let ctx = format!("{name} {t} {peer} {ecs:?} edns={edns}");
            assert_eq!(m.metadata.id, 0x1234);
            assert_eq!(m.metadata.message_type, MessageType::Response);
            assert!(m.metadata.recursion_desired);
            assert!(!m.metadata.recursion_available);
            assert_eq!(m.metadata.authoritative, want.aa, "{ctx}");
            assert_eq!(
                u16::from(m.metadata.response_code),
                want.rcode as u16,
                "{ctx}"
            );
            assert_eq!(m.queries.len(), 1);
            assert_eq!(m.queries[0].name().to_ascii().trim_end_matches('.'), name);
            let got: Vec<(String, u32, String)> = m
                .answers
                .iter()
                .map(|r| {
                    assert_eq!(r.name.to_ascii().trim_end_matches('.'), name, "{ctx}");
                    (r.record_type().to_string(), r.ttl, r.data.to_string())
                })
                .collect();
            // ANY on the wire is minimal (RFC 8482): the first RRset of what
            // the record API returns.
            let mut want_answer = want.answer.clone();
            if t == RecordType::ANY
                && let Some(first) = want_answer.first().map(|r| r.0.clone())
            {
                want_answer.retain(|r| r.0 == first);
            }
            assert_eq!(got, want_answer, "{ctx}");
            let auth: Vec<(String, u32, String)> = m
                .authorities
                .iter()
                .map(|r| {
                    assert_eq!(r.name.to_ascii(), "tm.example.", "{ctx}");
                    (r.record_type().to_string(), r.ttl, r.data.to_string())
                })
                .collect();
            assert_eq!(auth, want.authority, "{ctx}");
            let with_edns = edns || ecs.is_some();
            assert_eq!(m.edns.is_some(), with_edns, "{ctx}");
            if let Some((_, src)) = ecs {
                assert_eq!(scope_of(&m), Some((src, want.scope)), "{ctx}");
            } else {
                assert_eq!(scope_of(&m), None, "{ctx}");
            }
        }
    }
}

#[test]
fn ecs_scope_and_source_echo() {
    let e = Engine::from_file(data("basic.toml")).unwrap();
    let m = resolve(
        &e,
        &query(
            "perf.tm.example",
            RecordType::A,
            Some(("203.0.113.0", 24)),
            true,
        ),
        "127.0.0.2",
        false,
    );
    assert_eq!(m.answers[0].data.to_string(), "asia.contoso.example.");
    assert_eq!(scope_of(&m), Some((24, 24)));
    // A longer source than the row: the scope is the row's /24.
    let m = resolve(
        &e,
        &query(
            "perf.tm.example",
            RecordType::A,
            Some(("198.51.100.77", 32)),
            true,
        ),
        "127.0.0.2",
        false,
    );
    assert_eq!(m.answers[0].data.to_string(), "eu.contoso.example.");
    assert_eq!(scope_of(&m), Some((32, 24)));
    // Priority does not depend on the client: scope 0.
    let m = resolve(
        &e,
        &query(
            "prio.tm.example",
            RecordType::A,
            Some(("198.51.100.0", 24)),
            true,
        ),
        "127.0.0.2",
        false,
    );
    assert_eq!(scope_of(&m), Some((24, 0)));
    // Source /0: the peer address decides.
    let m = resolve(
        &e,
        &query("perf.tm.example", RecordType::A, Some(("0.0.0.0", 0)), true),
        "127.0.0.3",
        false,
    );
    assert_eq!(m.answers[0].data.to_string(), "asia.contoso.example.");
}

#[test]
fn case_is_preserved_in_the_reply() {
    let e = Engine::from_file(data("basic.toml")).unwrap();
    let m = resolve(
        &e,
        &query("PrIo.Tm.ExAmPlE", RecordType::A, None, false),
        "127.0.0.1",
        false,
    );
    assert_eq!(m.queries[0].name().to_ascii(), "PrIo.Tm.ExAmPlE.");
    assert_eq!(m.answers[0].name.to_ascii(), "PrIo.Tm.ExAmPlE.");
    let m = resolve(
        &e,
        &query("NoPe.Tm.ExAmPlE", RecordType::A, None, false),
        "127.0.0.1",
        false,
    );
    assert_eq!(m.authorities[0].name.to_ascii(), "Tm.ExAmPlE.");
}

fn big_zone() -> Engine {
    let ns: Vec<String> = (0..15)
        .map(|i| format!("\"nameserver-number-{i:02}.some-long-provider-name.example\""))
        .collect();
    let cfg = format!(
        "[[zone]]\nname = \"tm.example\"\nnameservers = [{}]\n",
        ns.join(", ")
    );
    Engine::from_toml(&cfg, None).unwrap()
}

#[test]
fn too_big_for_udp_is_truncated_and_tcp_gets_it_all() {
    let e = big_zone();
    let m = resolve(
        &e,
        &query("tm.example", RecordType::NS, None, false),
        "127.0.0.1",
        false,
    );
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let m = resolve(
        &e,
        &query("tm.example", RecordType::NS, None, true),
        "127.0.0.1",
        false,
    );
    assert!(
        !m.metadata.truncation,
        "1232 octets of EDNS payload hold 15 NS records"
    );
    assert_eq!(m.answers.len(), 15);
    let m = resolve(
        &e,
        &query("tm.example", RecordType::NS, None, false),
        "127.0.0.1",
        true,
    );
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 15);
    // A small caller buffer truncates too; one too small for the question is an error.
    let q = query("tm.example", RecordType::NS, None, false);
    let mut small = [0u8; 100];
    let n = e.answer_message(&q, None, true, &mut small).unwrap();
    assert!(Message::from_vec(&small[..n]).unwrap().metadata.truncation);
    let mut tiny = [0u8; 20];
    assert_eq!(
        e.answer_message(&q, None, true, &mut tiny),
        Err(WireError::BufferTooSmall)
    );
}

fn rcode_of(e: &Engine, q: &[u8]) -> ResponseCode {
    let mut out = [0u8; 512];
    let n = e.answer_message(q, None, false, &mut out).unwrap();
    Message::from_vec(&out[..n]).unwrap().metadata.response_code
}

#[test]
fn malformed_queries() {
    let e = Engine::from_file(data("basic.toml")).unwrap();
    let mut out = [0u8; 512];
    // Too short, or a response: dropped.
    assert_eq!(
        e.answer_message(&[0u8; 11], None, false, &mut out),
        Err(WireError::Drop)
    );
    let mut resp = query("prio.tm.example", RecordType::A, None, false);
    resp[2] |= 0x80;
    assert_eq!(
        e.answer_message(&resp, None, false, &mut out),
        Err(WireError::Drop)
    );
    // Two questions.
    let mut two = query("prio.tm.example", RecordType::A, None, false);
    two[5] = 2;
    assert_eq!(rcode_of(&e, &two), ResponseCode::FormErr);
    // Truncated question.
    let q = query("prio.tm.example", RecordType::A, None, false);
    assert_eq!(rcode_of(&e, &q[..q.len() - 3]), ResponseCode::FormErr);
    // A compression pointer in the question.
    let mut ptr = q[..12].to_vec();
    ptr.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
    assert_eq!(rcode_of(&e, &ptr), ResponseCode::FormErr);
    // ECS with scope set, with a wrong address length, with host bits past the source.
    for bad in [
        [0u8, 1, 24, 8, 203, 0, 113].to_vec(),
        vec![0, 1, 24, 0, 203, 0],
        vec![0, 1, 23, 0, 203, 0, 113],
        vec![0, 3, 8, 0, 1],
    ] {
        let mut m = Message::query();
        m.add_query(HQuery::query(
            Name::from_ascii("perf.tm.example").unwrap(),
            RecordType::A,
        ));
        let mut ed = Edns::new();
        ed.options_mut().insert(EdnsOption::Unknown(8, bad.clone()));
        m.edns = Some(ed);
        assert_eq!(
            rcode_of(&e, &m.to_vec().unwrap()),
            ResponseCode::FormErr,
            "{bad:?}"
        );
    }
    // Opcode STATUS: NOTIMP.
    let mut st = query("prio.tm.example", RecordType::A, None, false);
    st[2] = (st[2] & !0x78) | (2 << 3);
    assert_eq!(rcode_of(&e, &st), ResponseCode::NotImp);
    // Class CH: not ours.
    let mut ch = query("prio.tm.example", RecordType::A, None, false);
    let n = ch.len();
    ch[n - 1] = 3;
    assert_eq!(rcode_of(&e, &ch), ResponseCode::Refused);
    // EDNS version 1: BADVERS.
    let mut m = Message::query();
    m.add_query(HQuery::query(
        Name::from_ascii("prio.tm.example").unwrap(),
        RecordType::A,
    ));
    let mut ed = Edns::new();
    ed.set_version(1);
    m.edns = Some(ed);
    let mut out = [0u8; 512];
    let n = e
        .answer_message(&m.to_vec().unwrap(), None, false, &mut out)
        .unwrap();
    let r = Message::from_vec(&out[..n]).unwrap();
    assert_eq!(u16::from(r.metadata.response_code), 16, "BADVERS");
    assert!(r.answers.is_empty());
}

#[test]
fn random_garbage_never_panics() {
    let e = Engine::from_file(data("basic.toml")).unwrap();
    let base = query(
        "perf.tm.example",
        RecordType::A,
        Some(("203.0.113.0", 24)),
        true,
    );
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = [0u8; 512];
    for i in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut q = base.clone();
        let flips = 1 + (x % 4) as usize;
        for k in 0..flips {
            let pos = ((x >> (8 * k)) as usize) % q.len();
            q[pos] ^= (x >> (3 + k)) as u8 | 1;
        }
        if i % 7 == 0 {
            q.truncate((x as usize) % q.len());
        }
        if let Ok(n) =
            e.answer_message(&q, Some("127.0.0.1".parse().unwrap()), i % 2 == 0, &mut out)
        {
            // Whatever we send must parse.
            Message::from_vec(&out[..n])
                .unwrap_or_else(|err| panic!("reply to {q:?} does not parse: {err}"));
        }
    }
    let _ = OpCode::Query;
}
