//! Instructions per lookup, counted by callgrind (load-independent, unlike
//! wall-clock figures on a shared machine): 101,000 lookups of the
//! benchmarks' performance profile on the 1M table, inside `measured`.
//!
//! ```sh
//! cargo build --release --example lookup-instructions
//! TM_LATENCY_1M=target/latency-1m.csv valgrind --tool=callgrind \
//!     --toggle-collect='*measured*' target/release/examples/lookup-instructions
//! ```
//! Instructions per lookup = the "Collected" total / 101,000.
use std::hint::black_box;
use std::net::IpAddr;
use trafficmgr::{Engine, Query};
#[path = "../tests/support/perf14.rs"]
mod perf14;

#[inline(never)]
fn measured(e: &Engine, cl: &[IpAddr], n: usize) -> usize {
    let mut s = 0;
    for i in 0..n {
        let q = Query {
            name: b"www.tm.example",
            qtype: 1,
            client: Some(cl[i & 4095]),
            ecs: None,
        };
        s += black_box(e.lookup(&q, |a, _| a.records.len()).unwrap());
    }
    s
}

fn main() {
    let table = std::env::var("TM_LATENCY_1M").unwrap();
    let e = Engine::from_toml(&perf14::config(&table, ""), None).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let cl: Vec<IpAddr> = (0..4096)
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
        .collect();
    measured(&e, &cl, 1000); // warm: stripe assigned, caches
    println!("{}", measured(&e, &cl, 100_000));
}
