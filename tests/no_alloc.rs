//! The query path allocates nothing: a counting global allocator (in this
//! test binary only) counts the calling thread's allocations around
//! lookups of every routing method and answer shape, through the Rust API
//! and the wire entry point.

mod common;
use common::*;
use std::net::IpAddr;
use trafficmgr::{Engine, Query};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs;

#[test]
fn lookups_do_not_allocate() {
    check("", "", |_| {});
}

/// The same with spill-over in progress (loads set: some clients move,
/// the answers are unsteady and carry `ttl_unstable`), a standby endpoint
/// and two endpoints of performance routing sharing a region.
#[test]
fn lookups_spilling_and_sharing_do_not_allocate() {
    check("", "spill_start = 0.5\nspill_full = 1.0\n", |e| {
        e.set_load("prio", "primary", Some(0.75)).unwrap();
        e.set_load("perf", "eu", Some(0.9)).unwrap();
        e.set_load("perf", "us", Some(2.0)).unwrap();
    });
}

/// The same with overrides of the admin-state file in the health words:
/// forced states (down, up) and admin states (drain, disabled).
#[test]
fn lookups_with_forced_and_admin_states_do_not_allocate() {
    let dir = fresh_dir("no-alloc-admin");
    let admin = dir.join("admin.toml");
    std::fs::write(
        &admin,
        "\"prio/*\" = \"down\"\n\"perf/*\" = \"up\"\n\"weighted/*\" = \"drain\"\n\"addrs/*\" = \"disabled\"\n\"deep.sub/*\" = \"down\"\n",
    )
    .unwrap();
    check(
        &format!("admin_state = \"{}\"\n", admin.display()),
        "",
        |_| {},
    );
}

/// `engine_extra`: more `[engine]` keys; `spill`: keys added to the
/// priority and performance profiles (which then also get a second
/// endpoint in westeurope, and the weighted one a standby); `prepare`:
/// what to set on the engine before counting.
fn check(engine_extra: &str, spill: &str, prepare: impl Fn(&Engine)) {
    let mut cfg = std::fs::read_to_string(data("basic.toml")).unwrap();
    if !spill.is_empty() {
        cfg = cfg
            .replace("ttl = 30\n", &format!("ttl = 30\n{spill}"))
            .replace(
                "routing = \"performance\"\nttl = 60\n",
                &format!(
                    "routing = \"performance\"\nttl = 60\n{spill}\
                     [[profile.endpoint]]\nname = \"eu2\"\ntarget = \"eu2.contoso.example\"\nlocation = \"westeurope\"\nweight = 3\n"
                ),
            )
            .replace(
                "routing = \"weighted\"\nttl = 20\n",
                "routing = \"weighted\"\nttl = 20\n\
                 [[profile.endpoint]]\nname = \"standby\"\ntarget = \"standby.contoso.example\"\nweight = 0\n",
            );
    }
    let cfg = cfg.replace(
        "latency_table = \"latency.csv\"",
        &format!(
            "latency_table = \"latency.csv\"\ngeoip_db = \"{}\"\n{engine_extra}",
            data("geo-sample.mmdb").display()
        ),
    );
    let e = Engine::from_toml(&cfg, Some(&data(""))).unwrap();
    prepare(&e);
    if !spill.is_empty() {
        let st: serde_json::Value = serde_json::from_str(&e.status_json()).unwrap();
        assert_eq!(st["profiles"][0]["spill"]["start"], 0.5, "{st}");
    }
    if !engine_extra.is_empty() {
        let st: serde_json::Value = serde_json::from_str(&e.status_json()).unwrap();
        assert_eq!(st["admin_file"]["entries"], 5, "{st}");
        assert_eq!(st["admin_file"]["unmatched"], serde_json::json!([]), "{st}");
    }
    let names: &[(&str, u16)] = &[
        ("perf.tm.example", 1),
        ("PERF.tm.example.", 28),
        ("prio.tm.example", 1),
        ("weighted.tm.example", 255),
        ("addrs.tm.example", 28),
        ("tm.example", 6),
        ("tm.example", 2),
        ("nope.tm.example", 1),
        ("sub.tm.example", 1),
        ("example.org", 1),
    ];
    let clients: [Option<IpAddr>; 5] = [
        Some("127.0.0.2".parse().unwrap()),
        Some("8.8.8.8".parse().unwrap()),
        Some("2001:db8:1::1".parse().unwrap()),
        Some("81.2.69.160".parse().unwrap()),
        None,
    ];
    let queries: Vec<Vec<u8>> = names
        .iter()
        .map(|(n, t)| {
            use hickory_proto::op::{Edns, Message, Query as HQ};
            use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
            use hickory_proto::rr::{Name, RecordType};
            let mut m = Message::query();
            m.add_query(HQ::query(
                Name::from_ascii(n).unwrap(),
                RecordType::from(*t),
            ));
            let mut ed = Edns::new();
            ed.options_mut()
                .insert(EdnsOption::Subnet(ClientSubnet::new(
                    "203.0.113.0".parse().unwrap(),
                    24,
                    0,
                )));
            m.edns = Some(ed);
            m.to_vec().unwrap()
        })
        .collect();
    let mut out = [0u8; 4096];
    let mut sink = 0usize;
    let run = |sink: &mut usize, out: &mut [u8; 4096]| {
        for (n, t) in names {
            for c in clients {
                for ecs in [None, Some(("198.51.100.0".parse().unwrap(), 24u8))] {
                    let q = Query {
                        name: n.as_bytes(),
                        qtype: *t,
                        client: c,
                        ecs,
                    };
                    *sink += e
                        .lookup(&q, |a, _| {
                            a.records.len() + a.authority.len() + a.scope_prefix as usize
                        })
                        .unwrap();
                }
            }
        }
        for q in &queries {
            *sink += e
                .answer_message(q, Some("127.0.0.1".parse().unwrap()), false, out)
                .unwrap();
        }
    };
    // Warm up: arc-swap's per-thread slot and our RNG are set up on first use.
    run(&mut sink, &mut out);
    let before = allocs();
    for _ in 0..1000 {
        run(&mut sink, &mut out);
    }
    let after = allocs();
    assert!(sink > 0);
    assert_eq!(
        after - before,
        0,
        "the query path allocated {} times",
        after - before
    );
    // The counter works: a reload allocates.
    e.reload().unwrap();
    assert!(allocs() > after);
}
