//! Talking to real DNS servers from tests: free loopback ports and `dig`.
#![allow(dead_code)]

use std::process::Command;

/// A port free for both UDP and TCP on 127.0.0.1.
pub fn free_port() -> u16 {
    loop {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// What `dig` printed: status, AA, answers (type, ttl, rdata), authority
/// types, and the CLIENT-SUBNET line (`addr/source/scope`) if any.
pub type DigOut = (
    String,
    bool,
    Vec<(String, u32, String)>,
    Vec<String>,
    Option<String>,
);

/// Runs `dig @127.0.0.1 -p PORT NAME TYPE +norec …` and parses its output.
pub fn dig_raw(port: u16, name: &str, t: &str, extra: &[&str]) -> DigOut {
    dig_at("127.0.0.1", port, name, t, extra)
}

/// As [`dig_raw`], asking the server at `server` (`::1` for IPv6).
pub fn dig_at(server: &str, port: u16, name: &str, t: &str, extra: &[&str]) -> DigOut {
    let out = Command::new("dig")
        .args([
            &format!("@{server}"),
            "-p",
            &port.to_string(),
            name,
            t,
            "+norec",
            "+time=2",
            "+tries=2",
            "+noall",
            "+comments",
            "+answer",
            "+authority",
        ])
        .args(extra)
        .output()
        .expect("dig (bind9-dnsutils) is installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("?")
        .to_string();
    let aa = text
        .lines()
        .any(|l| l.contains("flags:") && l.split(';').nth(2).is_some_and(|f| f.contains(" aa")));
    let ecs = text
        .lines()
        .find_map(|l| l.strip_prefix("; CLIENT-SUBNET: "))
        .map(|s| s.trim().to_string());
    let (mut answers, mut authority) = (Vec::new(), Vec::new());
    let mut section = "";
    for l in text.lines() {
        if l.starts_with(";; ANSWER SECTION") {
            section = "an";
        } else if l.starts_with(";; AUTHORITY SECTION") {
            section = "ns";
        } else if !(l.starts_with(';') || l.trim().is_empty()) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 5 {
                match section {
                    "an" => {
                        answers.push((f[3].to_string(), f[1].parse().unwrap(), f[4..].join(" ")))
                    }
                    "ns" => authority.push(f[3].to_string()),
                    _ => {}
                }
            }
        }
    }
    (status, aa, answers, authority, ecs)
}

/// dig's name for our rcode.
pub fn rcode_name(r: trafficmgr::Rcode) -> &'static str {
    match r {
        trafficmgr::Rcode::NoError => "NOERROR",
        trafficmgr::Rcode::NxDomain => "NXDOMAIN",
        trafficmgr::Rcode::Refused => "REFUSED",
        trafficmgr::Rcode::FormErr => "FORMERR",
        trafficmgr::Rcode::ServFail => "SERVFAIL",
        trafficmgr::Rcode::NotImp => "NOTIMP",
    }
}

/// One row of a host comparison: name, dig type, qtype code, dig source
/// address (`-b`), ECS (address, source prefix).
pub type HostRow<'a> = (&'a str, &'a str, u16, &'a str, Option<(&'a str, u8)>);

/// Every answer shape of docs/ANSWERS.md on `tests/data/basic.toml`, with client
/// addresses mapped in its latency table (127.0.0.1/2/3) and ECS subnets:
/// the table all host tests (front, named, dnsdist, pdns) ask.
pub const BASIC_ROWS: &[HostRow] = &[
    ("prio.tm.example", "A", 1, "127.0.0.1", None),
    ("prio.tm.example", "MX", 15, "127.0.0.1", None),
    ("perf.tm.example", "A", 1, "127.0.0.1", None),
    ("perf.tm.example", "A", 1, "127.0.0.2", None),
    ("perf.tm.example", "AAAA", 28, "127.0.0.3", None),
    (
        "perf.tm.example",
        "A",
        1,
        "127.0.0.2",
        Some(("203.0.113.0", 24)),
    ),
    (
        "perf.tm.example",
        "A",
        1,
        "127.0.0.3",
        Some(("198.51.100.0", 24)),
    ),
    (
        "perf.tm.example",
        "A",
        1,
        "127.0.0.3",
        Some(("2001:db8:1::", 48)),
    ),
    (
        "perf.tm.example",
        "AAAA",
        28,
        "127.0.0.1",
        Some(("2001:db8:1::", 48)),
    ),
    ("addrs.tm.example", "A", 1, "127.0.0.1", None),
    ("addrs.tm.example", "AAAA", 28, "127.0.0.1", None),
    ("deep.sub.tm.example", "AAAA", 28, "127.0.0.1", None),
    ("sub.tm.example", "A", 1, "127.0.0.1", None),
    ("tm.example", "SOA", 6, "127.0.0.1", None),
    ("tm.example", "NS", 2, "127.0.0.1", None),
    ("tm.example", "TXT", 16, "127.0.0.1", None),
    ("nope.tm.example", "A", 1, "127.0.0.1", None),
    ("off.tm.example", "A", 1, "127.0.0.1", None),
    ("none-enabled.tm.example", "A", 1, "127.0.0.1", None),
];

/// How to compare a host's answers with the Rust API's.
#[derive(Clone, Copy)]
pub struct Compare {
    /// Send from the row's source address with `dig -b`.
    pub bind_source: bool,
    /// Compare answer records as sets (hosts that reorder RRsets).
    pub sorted: bool,
    /// Check the ECS scope of the reply against the decision's.
    pub scope: bool,
}

/// Asks the server on `port` with `dig`, over UDP and TCP, for every row and
/// asserts the reply equals the Rust API's answer for the same client:
/// rcode, AA, answer records, authority types, and (if asked) ECS scope.
pub fn assert_host_matches(port: u16, engine: &trafficmgr::Engine, rows: &[HostRow], how: Compare) {
    for &(name, t, qtype, src, ecs) in rows {
        let client = if how.bind_source { src } else { "127.0.0.1" };
        let want = super::ask(engine, name, qtype, Some(client), ecs);
        let mut want_answers = want.answer.clone();
        if how.sorted {
            want_answers.sort();
        }
        let subnet = ecs.map(|(a, p)| format!("+subnet={a}/{p}"));
        for tcp in [false, true] {
            let mut extra = Vec::new();
            if how.bind_source {
                extra.extend(["-b", src]);
            }
            if tcp {
                extra.push("+tcp");
            }
            if let Some(s) = &subnet {
                extra.push(s);
            }
            let mut got = dig_raw(port, name, t, &extra);
            if how.sorted {
                got.2.sort();
            }
            let ctx = format!("{name} {t} from {client} {ecs:?} tcp={tcp}: {got:?}");
            assert_eq!(got.0, rcode_name(want.rcode), "{ctx}");
            assert_eq!(got.1, want.aa, "{ctx}");
            assert_eq!(got.2, want_answers, "{ctx}");
            assert_eq!(
                got.3,
                want.authority
                    .iter()
                    .map(|a| a.0.clone())
                    .collect::<Vec<_>>(),
                "{ctx}"
            );
            if how.scope {
                let scope = got
                    .4
                    .as_ref()
                    .and_then(|s| s.rsplit('/').next()?.parse::<u8>().ok());
                assert_eq!(scope, ecs.map(|_| want.scope), "{ctx}");
            }
        }
    }
}

/// One query over TCP (two-octet length prefix) to 127.0.0.1:`port`; the reply.
pub fn tcp_exchange(port: u16, query: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut reply).unwrap();
    reply
}

/// `name` `qtype` as a query message with an OPT record whose padding
/// option makes the whole message `total` octets long.
pub fn padded_query(name: &str, qtype: hickory_proto::rr::RecordType, total: usize) -> Vec<u8> {
    use hickory_proto::op::{Edns, Message, Query};
    let mut m = Message::query();
    m.metadata.id = 0x4242;
    m.add_query(Query::query(
        hickory_proto::rr::Name::from_ascii(name).unwrap(),
        qtype,
    ));
    m.edns = Some(Edns::new());
    let mut q = m.to_vec().unwrap();
    let pad = total - q.len() - 4;
    let rdlen_at = q.len() - 2;
    q[rdlen_at..].copy_from_slice(&((pad + 4) as u16).to_be_bytes());
    q.extend_from_slice(&12u16.to_be_bytes());
    q.extend_from_slice(&(pad as u16).to_be_bytes());
    q.extend(std::iter::repeat_n(0u8, pad));
    q
}
