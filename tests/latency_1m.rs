//! Performance routing on the 1M-prefix latency table made by the project's
//! generator (`tools/make-latency-table.rs`, included here as a module): for
//! known addresses of every RIR block and a few thousand drawn ones, the
//! region and scope the engine answers are those a separate scan of the CSV
//! gives (longest prefix, then the first region of least figure); memory
//! well under 100 MB, and no allocation per lookup (a counting allocator in
//! this test binary).

mod common;
use common::*;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use trafficmgr::{Engine, Query};

#[path = "support/perf14.rs"]
mod perf14;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs;

#[path = "../tools/make-latency-table.rs"]
mod make_latency_table;

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
        let mut f = std::fs::File::create(&tmp).unwrap();
        make_latency_table::generate(&mut f, &make_latency_table::Options::default()).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }
    p
}

/// The separate scan: prefix -> index of the first region of least figure.
fn scan(path: &std::path::Path) -> HashMap<ipnet::IpNet, usize> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').skip(1).collect();
    assert_eq!(header, perf14::REGIONS);
    lines
        .map(|l| {
            let mut f = l.split(',');
            let net: ipnet::IpNet = f.next().unwrap().parse().unwrap();
            let ms: Vec<u32> = f.map(|x| x.parse().unwrap()).collect();
            let min = *ms.iter().min().unwrap();
            (net, ms.iter().position(|&m| m == min).unwrap())
        })
        .collect()
}

/// Longest prefix of `rows` holding `ip`: (region index, prefix length).
fn expect(rows: &HashMap<ipnet::IpNet, usize>, ip: IpAddr) -> Option<(usize, u8)> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (0..=max).rev().find_map(|len| {
        let net = ipnet::IpNet::new(ip, len).unwrap().trunc();
        rows.get(&net).map(|&r| (r, len))
    })
}

#[test]
fn the_generator_is_deterministic() {
    let o = make_latency_table::Options {
        scale: 0.01,
        ..Default::default()
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let n = make_latency_table::generate(&mut a, &o).unwrap();
    make_latency_table::generate(&mut b, &o).unwrap();
    assert!(a == b);
    assert!((9_000..11_000).contains(&n), "{n} rows");
    let other = make_latency_table::Options { seed: 2, ..o };
    let mut c = Vec::new();
    make_latency_table::generate(&mut c, &other).unwrap();
    assert!(a != c);
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

    // Known addresses of every RIR block, and drawn ones.
    let rows = scan(&table);
    let mut probes: Vec<IpAddr> = [
        "8.8.8.8",
        "81.2.69.160",
        "1.1.1.1",
        "200.160.2.3",
        "196.25.1.1",
        "133.1.1.1",
        "14.139.1.1",
        "5.62.60.1",
        "2001:4860:4860::8888",
        "2a00:1450:4001::1",
        "2403:300::1",
        "2001:12ff::1",
        "2600:1f18::1",
        "2800:3f0:4001::1",
        "2c0f:fb50::1",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..3000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        probes.push(if i % 2 == 0 {
            IpAddr::V4(std::net::Ipv4Addr::from(x as u32))
        } else {
            let block = [0x200u128, 0x240, 0x260, 0x280, 0x2a0, 0x2c0][(x >> 40) as usize % 6];
            IpAddr::V6(std::net::Ipv6Addr::from(
                (block << 116) | (u128::from(x) << 52) | u128::from(x >> 20),
            ))
        });
    }
    let mut hits = 0;
    for &client in &probes {
        let Some((region, plen)) = expect(&rows, client) else {
            continue;
        };
        hits += 1;
        let want = format!("{}.example.", perf14::REGIONS[region]);
        let o = ask(&e, "www.tm.example", 1, Some(&client.to_string()), None);
        assert_eq!(o.answer[0].2, want, "{client}");
        assert_eq!(o.scope, plen, "{client}");
        // The same through ECS from another peer.
        let ecs = if client.is_ipv4() {
            24.min(plen.max(8))
        } else {
            56.min(plen.max(8))
        };
        let net = ipnet::IpNet::new(client, ecs).unwrap().trunc();
        if expect(&rows, net.network()) == Some((region, plen)) {
            let o = ask(
                &e,
                "www.tm.example",
                1,
                Some("127.0.0.1"),
                Some((&net.network().to_string(), ecs)),
            );
            assert_eq!(o.answer[0].2, want, "ECS {net}");
        }
    }
    assert!(hits > 1000, "{hits} of {} probes hit a row", probes.len());

    // No allocation per lookup on the big table.
    let clients: Vec<IpAddr> = probes
        .iter()
        .copied()
        .filter(|c| expect(&rows, *c).is_some())
        .take(16)
        .collect();
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
