//! The 14-region performance profile used on the 1M-prefix latency table by
//! `tests/latency_1m.rs` and both benchmarks (included with `#[path]`).
#![allow(dead_code)]

/// The regions of `make-latency-table`'s default table.
pub const REGIONS: [&str; 14] = include!("../../tools/default-regions.in");

/// A config with zone `tm.example` and profile `www` (performance) with one
/// endpoint `<region>.example` per region, reading `table`.
pub fn config(table: &str, engine_extra: &str) -> String {
    let mut cfg = format!(
        "[engine]\n{engine_extra}\nlatency_table = \"{table}\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n[[profile]]\nname = \"www\"\nrouting = \"performance\"\n"
    );
    for r in REGIONS {
        cfg.push_str(&format!(
            "[[profile.endpoint]]\nname = \"{r}\"\ntarget = \"{r}.example\"\nlocation = \"{r}\"\n"
        ));
    }
    cfg
}
