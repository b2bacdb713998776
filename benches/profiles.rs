//! Many profiles: the config of `tools/make-many-profiles.rs` (by default
//! 100,000 profiles × 4 endpoints, methods mixed, the performance quarter
//! sharing the 1M-prefix latency table `TM_LATENCY_1M`). Prints the time to
//! load it, the resident memory of the engine holding it, a reload's time
//! and peak, then runs a criterion benchmark of `Engine::lookup` over all
//! the profiles. Figures go to docs/PERFORMANCE.md ("Many profiles").
//!
//! ```text
//! TM_LATENCY_1M=target/latency-1m.csv cargo bench --bench profiles
//! TM_PROFILES=1000000 cargo bench --bench profiles -- --memory-only
//! ```
//!
//! Memory is read from `/proc/self/status`: `VmRSS` (resident now) and
//! `VmHWM` (the peak, reset before each step by writing 5 to
//! `/proc/self/clear_refs`). Resident memory includes what the allocator
//! keeps after freeing, so it is what a host process would really hold.

use criterion::Criterion;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use trafficmgr::{Engine, Query};

#[path = "../tools/make-many-profiles.rs"]
mod gen_profiles;

/// The system allocator, counting the octets live on the heap (what the
/// engine holds, apart from what the allocator keeps after frees).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n.wrapping_sub(l.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Live heap in MiB.
fn live() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

/// (VmRSS, VmHWM) in MiB.
fn mem() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return; // cargo test --benches / criterion's list: nothing to do
    }
    let memory_only = args.iter().any(|a| a == "--memory-only");
    let n: usize = std::env::var("TM_PROFILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let table = std::env::var("TM_LATENCY_1M").unwrap_or_else(|_| "target/latency-1m.csv".into());
    let table = std::fs::canonicalize(&table).map(|p| p.display().to_string());
    let table = match &table {
        Ok(t) => Some(t.as_str()),
        Err(_) => {
            eprintln!("no latency table (make latency-1m): performance profiles use distances");
            None
        }
    };
    let dir = std::env::temp_dir().join(format!("tm-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tm.toml");
    {
        let text = gen_profiles::config(n, table);
        println!(
            "config: {n} profiles × 4 endpoints, {:.1} MB of TOML",
            text.len() as f64 / 1e6
        );
        std::fs::write(&path, text).unwrap();
    }
    let (base, _) = mem();
    let heap_base = live();
    reset_peak();
    let t = Instant::now();
    let e = Engine::from_file(&path).expect("the generated config loads");
    let load = t.elapsed();
    let (_, load_peak) = mem();
    // The maintenance thread frees what the build left behind; let it run.
    std::thread::sleep(Duration::from_millis(300));
    let (steady, _) = mem();
    println!(
        "load: {:.2} s; resident before {base:.0} MiB, peak while loading {load_peak:.0} MiB, \
         steady {steady:.0} MiB (engine: {:.0} MiB resident, {:.0} MiB live heap)",
        load.as_secs_f64(),
        steady - base,
        live() - heap_base
    );
    for _ in 0..2 {
        reset_peak();
        let t = Instant::now();
        e.reload().expect("reload");
        let took = t.elapsed();
        let (_, peak) = mem();
        std::thread::sleep(Duration::from_millis(1500));
        let (after, _) = mem();
        println!(
            "reload: {:.2} s; peak {peak:.0} MiB ({:.2} × steady), resident after {after:.0} MiB",
            took.as_secs_f64(),
            (peak - base) / (steady - base)
        );
    }
    {
        // The phases of a load, timed apart (each frees what it made).
        let h0 = live();
        let t = Instant::now();
        let (cfg, text) = trafficmgr::config::load_file(&path).expect("the generated config loads");
        let parsed = t.elapsed();
        let h1 = live();
        let t = Instant::now();
        let info = trafficmgr::snapshot::SourceInfo {
            path: None,
            hash: trafficmgr::snapshot::fnv1a(text.as_bytes()),
            loaded_at: 0,
        };
        let snap = trafficmgr::snapshot::Snapshot::compile(&cfg, info, None).expect("compiles");
        let compiled = t.elapsed();
        let h2 = live();
        println!(
            "live heap: config text {:.0} MiB + validated config {:.0} MiB; snapshot {:.0} MiB",
            text.len() as f64 / 1048576.0,
            h1 - h0 - text.len() as f64 / 1048576.0,
            h2 - h1
        );
        let t = Instant::now();
        drop((snap, cfg, text));
        println!(
            "phases: read, parse and validate {:.2} s; compile {:.2} s; free {:.2} s",
            parsed.as_secs_f64(),
            compiled.as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    if memory_only {
        return;
    }

    // Two workloads: queries spread uniformly over all the profiles (every
    // lookup misses the caches: the name table, the profile, its endpoints,
    // records, health and counters are somewhere in 150 MB), and queries
    // for a hot set of 64 profiles of every method (as real traffic,
    // where a few names take most queries) — both with clients that hit the
    // subnet prefixes a third of the time.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut queries = |spread: usize| -> Vec<(Vec<u8>, IpAddr)> {
        (0..65536)
            .map(|_| {
                let i = (next() % spread as u64) as usize * (n / spread);
                let name = format!("{}.tm.example", gen_profiles::name(i)).into_bytes();
                let r = next();
                let client = if r % 3 == 0 {
                    let (a, _) = gen_profiles::subnet_prefix(i, (r >> 8) as usize % 10);
                    IpAddr::V4(Ipv4Addr::from(u32::from(a) | (r >> 32) as u32 & 0xff))
                } else {
                    IpAddr::V4(Ipv4Addr::from((r >> 16) as u32))
                };
                (name, client)
            })
            .collect()
    };
    let uniform = queries(n);
    // 64 profiles n/64 apart: 16 of each of the four method groups.
    let hot = queries(64);
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));
    let mut g = c.benchmark_group("profiles_100k");
    for (label, queries) in [
        ("lookup_hot_64_profiles", &hot),
        ("lookup_uniform_all_profiles", &uniform),
    ] {
        g.bench_function(label, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) & 65535;
                let (name, client) = &queries[i];
                let q = Query {
                    name,
                    qtype: 1,
                    client: Some(*client),
                    ecs: None,
                };
                black_box(e.lookup(&q, |a, _| a.records.len()).unwrap())
            })
        });
    }
    g.finish();
    c.final_summary();
}
