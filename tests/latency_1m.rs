//! Performance routing on the 1M-prefix latency table made by
//! `shared/tools/make-latency-table --ipv6`: the expected region for known
//! addresses of several continents (expectations computed from the CSV by a
//! separate scan), memory well under 100 MB, and no allocation per lookup
//! (a counting allocator in this test binary).

mod common;
use common::*;
use std::path::PathBuf;
use trafficmgr::{Engine, Query};

#[path = "support/perf14.rs"]
mod perf14;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs;

/// The table: `TM_LATENCY_1M`, else `target/latency-1m.csv`, made on first use.
pub fn table_1m() -> PathBuf {
    if let Ok(p) = std::env::var("TM_LATENCY_1M") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let p = target.join("latency-1m.csv");
    if !p.exists() {
        let tmp = target.join(format!("latency-1m.csv.{}", std::process::id()));
        let st = std::process::Command::new("python3")
            .arg(shared("tools/make-latency-table"))
            .arg(&tmp)
            .arg("--ipv6")
            .status()
            .expect("python3 runs make-latency-table");
        assert!(st.success());
        std::fs::rename(&tmp, &p).unwrap();
    }
    p
}

#[test]
fn performance_on_the_1m_table() {
    let table = table_1m();
    let cfg = perf14::config(&table.display().to_string(), "");
    let e = Engine::from_toml(&cfg, None).unwrap();
    let snap = e.snapshot();
    let lt = snap.latency.as_ref().unwrap();
    assert!(lt.len() > 1_000_000, "{} prefixes", lt.len());
    let mb = lt.heap_bytes() as f64 / 1e6;
    assert!(mb < 100.0, "latency table uses {mb:.1} MB");
    println!("latency table: {} prefixes, {mb:.1} MB", lt.len());
    drop(snap);

    // (client, region, prefix length of its row)
    let cases = [
        ("8.8.8.8", "centralus", 15),
        ("81.2.69.160", "northeurope", 18),
        ("1.1.1.1", "australiaeast", 24),
        ("200.160.2.3", "brazilsouth", 15),
        ("196.25.1.1", "southafricanorth", 15),
        ("133.1.1.1", "japaneast", 8),
        ("14.139.1.1", "centralindia", 16),
        ("5.62.60.1", "westeurope", 20),
        ("2001:4860:4860::8888", "centralus", 32),
        ("2a00:1450:4001::1", "northeurope", 29),
        ("2403:300::1", "southeastasia", 49),
        ("2001:12ff::1", "brazilsouth", 31),
    ];
    for (client, region, plen) in cases {
        let o = ask(&e, "www.tm.example", 1, Some(client), None);
        assert_eq!(o.answer[0].2, format!("{region}.example."), "{client}");
        assert_eq!(o.scope, plen, "{client}");
        // The same through ECS from another peer.
        let o = ask(
            &e,
            "www.tm.example",
            1,
            Some("127.0.0.1"),
            Some((client, if client.contains(':') { 56 } else { 24 })),
        );
        assert_eq!(o.answer[0].2, format!("{region}.example."), "ECS {client}");
    }

    // No allocation per lookup on the big table.
    let clients: Vec<std::net::IpAddr> = cases.iter().map(|c| c.0.parse().unwrap()).collect();
    let mut n = 0usize;
    let go = |n: &mut usize| {
        for c in &clients {
            let q = Query {
                name: b"www.tm.example",
                qtype: 1,
                client: Some(*c),
                ecs: None,
            };
            *n += e.lookup(&q, |a, _| a.records.len()).unwrap();
        }
    };
    go(&mut n);
    let before = allocs();
    for _ in 0..1000 {
        go(&mut n);
    }
    assert_eq!(allocs() - before, 0);
    assert_eq!(n, 1001 * clients.len());
}
