//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz, nightly), shared
//! with `tests/fuzz_corpus.rs`, which replays every corpus file on stable
//! Rust inside `make test`. Each takes arbitrary bytes, must never panic on
//! its own account, and checks what it can of the result: a reply is a
//! whole DNS message that hickory-proto decodes, never over 1,232 octets
//! over UDP, and the in-place entry agrees with the copying one.
//!
//! Not part of the API: hidden from the docs, free to change.

use crate::config::{self, Origin};
use crate::engine::Engine;
use crate::snapshot::{Snapshot, SourceInfo};
use hickory_proto::op::Message;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every routing method, a nested profile, several zones, and no data file,
/// so the targets need nothing beside them (`fuzz/engine.toml`).
pub const CONFIG: &str = include_str!("../fuzz/engine.toml");

/// An engine serving [`CONFIG`].
pub fn engine() -> Engine {
    match Engine::from_toml(CONFIG, None) {
        Ok(e) => e,
        Err(e) => panic!("the fuzzing config does not load: {e}"),
    }
}

/// The peer a target uses, chosen by two bits of its selector octet.
fn peer(sel: u8) -> Option<IpAddr> {
    match (sel >> 1) & 3 {
        0 => None,
        1 => Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
        2 => Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
        _ => Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1))),
    }
}

/// Checks a reply: a whole message, nothing after it, the query's id.
fn check_reply(query: &[u8], reply: &[u8], tcp: bool) {
    let mut d = BinDecoder::new(reply);
    if let Err(e) = Message::read(&mut d) {
        panic!("reply does not decode: {e}: {reply:02x?}");
    }
    assert!(d.is_empty(), "octets after the reply: {reply:02x?}");
    assert!(reply.len() >= 12 && query.len() >= 2 && reply[..2] == query[..2]);
    if !tcp {
        assert!(reply.len() <= 1232, "UDP reply of {} octets", reply.len());
    }
}

/// The wire entry (`tm_engine_answer`, `answer_message`, and the in-place
/// form dnsdist uses). Octet 0 selects UDP/TCP, the peer and the size of
/// the output buffer; the rest is the query.
pub fn wire(engine: &Engine, data: &[u8]) {
    let Some((&sel, query)) = data.split_first() else {
        return;
    };
    let tcp = sel & 1 == 1;
    let peer = peer(sel);
    let cap = if sel & 8 == 0 {
        65535
    } else {
        usize::from(sel >> 4) * 40
    };
    let mut out = vec![0u8; cap];
    let r = engine.answer_message(query, peer, tcp, &mut out);
    if let Ok(n) = r {
        assert!(n <= cap);
        check_reply(query, &out[..n], tcp);
    }
    // In place: a reply as good in a buffer of the same room (the bytes
    // may differ: a weighted draw without a client is random).
    let room = cap.max(query.len());
    let mut buf = vec![0u8; room];
    buf[..query.len()].copy_from_slice(query);
    let r2 = engine.answer_in_place(&mut buf, query.len(), peer, tcp);
    if room == cap {
        assert_eq!(r.is_ok(), r2.is_ok(), "in place differs: {r:?} {r2:?}");
    }
    if let Ok(n2) = r2 {
        check_reply(query, &buf[..n2], tcp);
    }
}

/// The config loader: TOML text through parsing, validation and
/// compilation, as a reload does (no data files: a fuzzed path could name
/// any file on the machine).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = config::load_str(text, &Origin::string(None)) else {
        return;
    };
    if cfg.engine.geoip_db.is_some() || cfg.engine.latency_table.is_some() {
        return;
    }
    let info = SourceInfo {
        path: None,
        hash: 0,
        loaded_at: 0,
    };
    let _ = Snapshot::compile(&cfg, info, None);
}

pub use crate::bind_dlz::FuzzInstance as DlzInstance;

/// A DLZ instance serving [`CONFIG`], as `dlz_create` makes one.
pub fn dlz_instance() -> DlzInstance {
    DlzInstance::new(engine())
}

/// BIND's `dlz_findzonedb` and `dlz_lookup` with an arbitrary zone, name
/// and client info (version, source address, ECS).
pub fn dlz(inst: &DlzInstance, data: &[u8]) {
    crate::bind_dlz::fuzz_lookup(inst, data)
}
