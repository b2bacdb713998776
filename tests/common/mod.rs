//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use trafficmgr::{Engine, Query, Rcode};

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(name)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub rcode: Rcode,
    pub aa: bool,
    pub answer: Vec<(String, u32, String)>,
    pub authority: Vec<(String, u32, String)>,
    pub scope: u8,
}

pub fn ask(
    e: &Engine,
    name: &str,
    qtype: u16,
    client: Option<&str>,
    ecs: Option<(&str, u8)>,
) -> Owned {
    let q = Query {
        name: name.as_bytes(),
        qtype,
        client: client.map(|c| c.parse::<IpAddr>().unwrap()),
        ecs: ecs.map(|(a, p)| (a.parse().unwrap(), p)),
    };
    e.lookup(&q, |a, _| Owned {
        rcode: a.rcode,
        aa: a.authoritative,
        answer: a
            .answer
            .iter()
            .map(|r| {
                (
                    trafficmgr::answer::records::type_name(r.rtype).to_string(),
                    r.ttl,
                    r.text.to_string(),
                )
            })
            .collect(),
        authority: a
            .authority
            .iter()
            .map(|r| {
                (
                    trafficmgr::answer::records::type_name(r.rtype).to_string(),
                    r.ttl,
                    r.text.to_string(),
                )
            })
            .collect(),
        scope: a.scope_prefix,
    })
    .unwrap()
}

/// The single answer's rdata text.
pub fn one(
    e: &Engine,
    name: &str,
    qtype: u16,
    client: Option<&str>,
    ecs: Option<(&str, u8)>,
) -> String {
    let o = ask(e, name, qtype, client, ecs);
    assert_eq!(o.answer.len(), 1, "{name}: {o:?}");
    o.answer[0].2.clone()
}
