//! Helpers for the unit tests beside the code: a compiled snapshot from
//! config text, and the client shapes routing sees.

use crate::config::{self, Origin};
use crate::routing::Client;
use crate::snapshot::{Snapshot, SourceInfo};
use std::net::IpAddr;

/// One zone, `tm.example`, then `profiles` (TOML `[[profile]]` tables).
pub(crate) fn snapshot(profiles: &str) -> Snapshot {
    let text =
        format!("[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n{profiles}");
    let cfg = match config::load_str(&text, &Origin::string(None)) {
        Ok(c) => c,
        Err(e) => panic!("test config: {e}\n{text}"),
    };
    let info = SourceInfo {
        path: None,
        hash: 0,
        loaded_at: 0,
    };
    match Snapshot::compile(&cfg, info, None) {
        Ok(s) => s,
        Err(e) => panic!("test config: {e}"),
    }
}

/// A client at `addr` (its full length), or none.
pub(crate) fn client(addr: Option<&str>) -> Client {
    match addr.map(|a| a.parse::<IpAddr>()) {
        Some(Ok(a)) => Client {
            addr: Some(a),
            source_prefix: if a.is_ipv4() { 32 } else { 128 },
        },
        _ => Client::default(),
    }
}
