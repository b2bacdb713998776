//! Reload with the 1M-prefix latency table, and lookup latency percentiles
//! while reloads run versus idle. A plain program (not criterion: it needs
//! per-lookup percentiles): `make bench` runs it and prints a table for
//! docs/PERFORMANCE.md. Each lookup is timed with two `Instant::now()`
//! calls, whose own cost (about 20–40 ns here) is included in every figure.

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use trafficmgr::{Engine, Query};

#[path = "../tests/support/perf14.rs"]
mod perf14;

fn percentiles(mut v: Vec<u32>) -> (u32, u32, u32) {
    v.sort_unstable();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    (p(0.5), p(0.99), p(0.999))
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // cargo test --benches / criterion's list: nothing to do
    }
    let table = std::env::var("TM_LATENCY_1M").unwrap_or_else(|_| "target/latency-1m.csv".into());
    let table = std::fs::canonicalize(&table)
        .unwrap_or_else(|_| table.into())
        .display()
        .to_string();
    let dir = std::env::temp_dir().join(format!("tm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tm.toml");
    let cfg = perf14::config(&table, "watch_interval = \"0s\"");
    std::fs::write(&path, cfg).unwrap();
    let e = Engine::from_file(&path).expect("run `make latency-1m` first");

    let mut reloads = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        e.reload().unwrap();
        reloads.push(t.elapsed());
    }
    reloads.sort();
    println!(
        "reload with the 1M-prefix table: median {:.0} ms, max {:.0} ms (5 reloads)",
        reloads[2].as_secs_f64() * 1e3,
        reloads[4].as_secs_f64() * 1e3
    );

    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let clients: Vec<IpAddr> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            IpAddr::V4(std::net::Ipv4Addr::from((x >> 16) as u32))
        })
        .collect();
    let run = |n: usize| -> Vec<u32> {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let q = Query {
                name: b"www.tm.example",
                qtype: 1,
                client: Some(clients[i & 4095]),
                ecs: None,
            };
            let t = Instant::now();
            black_box(e.lookup(&q, |a, _| a.records.len()).unwrap());
            v.push(t.elapsed().as_nanos() as u32);
        }
        v
    };
    run(100_000);
    let idle = percentiles(run(15_000_000));
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let busy = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                e.reload().unwrap();
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        // Wait for the first reload to be under way, then measure.
        std::thread::sleep(Duration::from_millis(50));
        let r = run(15_000_000);
        stop.store(true, Ordering::SeqCst);
        r
    });
    let busy = percentiles(busy);
    println!("lookups (ns)            p50    p99  p99.9");
    println!(
        "idle                 {:6} {:6} {:6}",
        idle.0, idle.1, idle.2
    );
    println!(
        "reloads running      {:6} {:6} {:6}   ({} reloads during the run)",
        busy.0,
        busy.1,
        busy.2,
        count.load(Ordering::SeqCst)
    );
}
