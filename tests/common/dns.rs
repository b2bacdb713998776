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
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
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
