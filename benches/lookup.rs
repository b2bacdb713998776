//! `lookup` on the 1M-prefix latency table (performance routing over 14
//! regions), from 1 and 2 threads, plus the wire entry point. The table is
//! `TM_LATENCY_1M` (made by `make latency-1m`). Figures go to
//! docs/PERFORMANCE.md with the command that produced them.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use trafficmgr::{Engine, Query};

#[path = "../tests/support/perf14.rs"]
mod perf14;

fn engine() -> Engine {
    let table = std::env::var("TM_LATENCY_1M").unwrap_or_else(|_| "target/latency-1m.csv".into());
    let cfg = perf14::config(&table, "");
    Engine::from_toml(&cfg, None).expect("run `make latency-1m` first")
}

/// Client addresses spread over the whole space (most hit a table row).
fn clients(n: usize) -> Vec<IpAddr> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 4 == 3 {
                IpAddr::V6(std::net::Ipv6Addr::from(
                    ((0x2001_0000u128 | (x as u128 & 0x0fff_ffff)) << 96) | x as u128,
                ))
            } else {
                IpAddr::V4(std::net::Ipv4Addr::from((x >> 16) as u32))
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let e = engine();
    let cl = clients(4096);
    let mut g = c.benchmark_group("lookup_1m");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("performance_1_thread", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) & 4095;
            let q = Query {
                name: b"www.tm.example",
                qtype: 1,
                client: Some(cl[i]),
                ecs: None,
            };
            black_box(e.lookup(&q, |a, _| a.records.len()).unwrap())
        })
    });
    g.bench_function("performance_2_threads", |b| {
        // Time per lookup with two threads looking up at once (each does `iters`).
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2 {
                    let (e, cl) = (&e, &cl);
                    s.spawn(move || {
                        let mut i = t * 2048;
                        for _ in 0..iters {
                            i = (i + 1) & 4095;
                            let q = Query {
                                name: b"www.tm.example",
                                qtype: 1,
                                client: Some(cl[i]),
                                ecs: None,
                            };
                            black_box(e.lookup(&q, |a, _| a.records.len()).unwrap());
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    let v4: Vec<IpAddr> = cl.iter().copied().filter(|a| a.is_ipv4()).collect();
    let v6: Vec<IpAddr> = cl.iter().copied().filter(|a| a.is_ipv6()).collect();
    for (name, set) in [
        ("performance_ipv4_only", &v4),
        ("performance_ipv6_only", &v6),
    ] {
        g.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % set.len();
                let q = Query {
                    name: b"www.tm.example",
                    qtype: 1,
                    client: Some(set[i]),
                    ecs: None,
                };
                black_box(e.lookup(&q, |a, _| a.records.len()).unwrap())
            })
        });
    }
    g.bench_function("no_client_1_thread", |b| {
        b.iter(|| {
            let q = Query {
                name: b"www.tm.example",
                qtype: 1,
                client: None,
                ecs: None,
            };
            black_box(e.lookup(&q, |a, _| a.records.len()).unwrap())
        })
    });
    let wire: Vec<u8> = {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["www", "tm", "example"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    };
    g.bench_function("wire_1_thread", |b| {
        let mut out = [0u8; 512];
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(
                e.answer_message(&wire, Some(cl[i]), false, &mut out)
                    .unwrap(),
            )
        })
    });
    g.finish();
}

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile_1m");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("engine_from_1m_table", |b| b.iter(|| black_box(engine())));
    g.finish();
}

criterion_group!(benches, bench, compile);
criterion_main!(benches);
