//! The PowerDNS **remote backend** protocol: one JSON request line in, one
//! JSON reply line out, answered from an [`Engine`].
//!
//! This is the part of the PowerDNS adapter (`examples/powerdns/pdns_remote.rs`)
//! that reads what a client sent, so it lives here where it can be fuzzed
//! ([`fuzz_pdns_request`]) and reused. The socket, its limits and its
//! threads stay with the adapter.
//!
//! Methods: `initialize` → `true`; `lookup` → the records routed for
//! `real-remote` (the ECS subnet PowerDNS saw, else the remote address)
//! with `scopeMask` = the ECS scope the decision used; `getAllDomains` →
//! our zones; any other method → `false`. A request that is not JSON, not
//! an object with a `method`, or a `lookup` without `qname`/`qtype` gets
//! `{"result":false,"log":[…]}`. Nothing here panics on any input.
//!
//! Unlike [`Engine::lookup`] itself, this allocates (it builds JSON): it is
//! the adapter's path, not the host query path.

use crate::answer::Rcode;
use crate::answer::records::type_name;
use crate::engine::{Engine, Query};
use serde_json::{Value, json};
use std::net::IpAddr;

/// `{"result":false,"log":[msg]}` — the reply to a request we refuse.
pub fn error_reply(msg: &str) -> String {
    json!({"result": false, "log": [msg]}).to_string()
}

/// Answers one request line (without its newline; surrounding whitespace
/// is ignored) and returns the reply line (without a newline).
pub fn reply(engine: &Engine, line: &[u8]) -> String {
    let Ok(req) = serde_json::from_slice::<Value>(line) else {
        return error_reply("malformed request: not JSON");
    };
    let params = &req["parameters"];
    match req["method"].as_str() {
        Some("initialize") => json!({"result": true}).to_string(),
        Some("lookup") => lookup(engine, params).to_string(),
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
            json!({"result": zones}).to_string()
        }
        Some(_) => json!({"result": false}).to_string(),
        None => error_reply("malformed request: no method"),
    }
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

/// `real-remote` as PowerDNS writes it — `203.0.113.0/24`, `2001:db8::/56`,
/// or a bare address — → (address, prefix length). The prefix is passed on
/// as written when it fits a `u8` (the engine bounds it by the family);
/// anything else (no address, a prefix that is not a number 0..=255) is
/// `None`, and the query is routed on `remote`.
pub fn parse_subnet(s: &str) -> Option<(IpAddr, u8)> {
    match s.split_once('/') {
        Some((a, p)) => {
            // `u8::from_str` takes a leading `+`; PowerDNS never writes one.
            if !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((a.parse().ok()?, p.parse().ok()?))
        }
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
        for rec in a.records.iter() {
            // A CNAME goes only to ANY/A/AAAA/CNAME questions: PowerDNS asks
            // SOA for zone discovery, and a CNAME there breaks it.
            let wanted =
                code == 255 || rec.rtype == code || (rec.rtype == 5 && matches!(code, 1 | 28 | 5));
            if wanted {
                out.push(json!({
                    "qtype": type_name(rec.rtype),
                    "qname": owner,
                    "content": rec.text(),
                    "ttl": a.ttl(rec),
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

/// The config [`fuzz_pdns_request`] answers from: the fuzz targets' own
/// (`fuzz/engine.toml`), no data file, no probes.
const FUZZ_CONFIG: &str = include_str!("../fuzz/engine.toml");

/// Fuzz entry point: `data` as one request line, answered by an engine
/// built once from a small embedded config. Never panics (a panic here is
/// the bug the fuzzer looks for). Not part of the API.
#[doc(hidden)]
pub fn fuzz_pdns_request(data: &[u8]) {
    // Test-only: one engine for the whole fuzz run.
    static ENGINE: std::sync::OnceLock<Option<Engine>> = std::sync::OnceLock::new();
    if let Some(engine) = ENGINE
        .get_or_init(|| Engine::from_toml(FUZZ_CONFIG, None).ok())
        .as_ref()
    {
        let _ = reply(engine, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        match Engine::from_toml(FUZZ_CONFIG, None) {
            Ok(e) => e,
            Err(e) => panic!("fuzz config: {e}"),
        }
    }

    #[test]
    fn subnets_as_powerdns_writes_them() {
        let v4: IpAddr = "1.2.3.4".parse().unwrap();
        let v6: IpAddr = "2001:db8::".parse().unwrap();
        assert_eq!(parse_subnet("1.2.3.4/24"), Some((v4, 24)));
        assert_eq!(parse_subnet("1.2.3.4"), Some((v4, 32)));
        assert_eq!(parse_subnet("2001:db8::/56"), Some((v6, 56)));
        assert_eq!(parse_subnet("2001:db8::"), Some((v6, 128)));
        // Out of range for the family: passed on, the engine bounds it.
        assert_eq!(parse_subnet("1.2.3.4/99"), Some((v4, 99)));
        assert_eq!(parse_subnet("2001:db8::/255"), Some((v6, 255)));
        for bad in [
            "1.2.3.4/256",
            "1.2.3.4/-1",
            "1.2.3.4/+8",
            "1.2.3.4/",
            "1.2.3.4/8/8",
            "/8",
            "",
            "x/8",
            "1.2.3.4/99999999999999999999999",
            "1.2.3.4/ 8",
        ] {
            assert_eq!(parse_subnet(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hostile_requests_get_replies() {
        let e = engine();
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let inputs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\xff\xfe".to_vec(),
            b"null".to_vec(),
            b"[]".to_vec(),
            b"{\"method\":1}".to_vec(),
            b"{\"method\":\"lookup\"}".to_vec(),
            b"{\"method\":\"lookup\",\"parameters\":[]}".to_vec(),
            b"{\"method\":\"lookup\",\"parameters\":{\"qname\":7,\"qtype\":\"A\"}}".to_vec(),
            deep.into_bytes(),
            format!(
                "{{\"method\":\"lookup\",\"parameters\":{{\"qname\":\"{}\",\"qtype\":\"A\"}}}}",
                "a.".repeat(5000)
            )
            .into_bytes(),
            b"{\"method\":\"lookup\",\"parameters\":{\"qname\":\"prio.tm.example\\u0000\",\"qtype\":\"ANY\"}}".to_vec(),
        ];
        for i in inputs {
            let r = reply(&e, &i);
            assert!(r.contains("\"result\":false"), "{r}");
            fuzz_pdns_request(&i);
        }
    }

    fn lookup_line(name: &str, qtype: &str, remote: &str, real: &str) -> String {
        json!({"method": "lookup", "parameters": {
            "qname": name, "qtype": qtype, "remote": remote,
            "local": "127.0.0.1", "real-remote": real, "zone-id": -1}})
        .to_string()
    }

    #[test]
    fn ecs_strings_never_misroute() {
        let e = engine();
        // In the subnet profile, 10/8 gets in.contoso.example, the rest out.
        let r = reply(
            &e,
            lookup_line("net.tm.example", "A", "127.0.0.1", "10.1.2.0/24").as_bytes(),
        );
        assert!(r.contains("in.contoso.example"), "{r}");
        let r = reply(
            &e,
            lookup_line("net.tm.example", "A", "10.9.9.9", "10.9.9.9/32").as_bytes(),
        );
        assert!(r.contains("in.contoso.example"), "{r}");
        // Unparseable real-remote: routed on remote.
        let r = reply(
            &e,
            lookup_line("net.tm.example", "A", "10.9.9.9", "10.9.9.9/300").as_bytes(),
        );
        assert!(r.contains("in.contoso.example"), "{r}");
        for real in [
            "1.2.3.4/99",
            "1.2.3.4/33",
            "1.2.3.4/0",
            "10.0.0.1/255",
            "::/0",
            "2001:db8:1::1/129",
            "2001:db8:1::1/255",
            "::ffff:10.0.0.1/120",
            "garbage",
        ] {
            for q in ["A", "AAAA", "ANY", "SOA", "CNAME", "MX"] {
                for name in ["net.tm.example", "w.tm.example", "prio.tm.example"] {
                    let r = reply(&e, lookup_line(name, q, "192.0.2.99", real).as_bytes());
                    assert!(r.starts_with("{\"result\":"), "{r}");
                }
            }
        }
    }
}
