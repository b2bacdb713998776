//! Issue #15 through the Rust API: health-aware TTL (`ttl_unstable`),
//! load-aware spill-over, weight 0 = standby, `always_serve`, and
//! performance routing sharing a region by weight (docs/ROUTING.md).

mod common;
use common::backend::{Backend, Mode};
use common::*;
use std::collections::HashMap;
use std::time::Duration;
use trafficmgr::health::AdminState;
use trafficmgr::{Engine, MonitorStatus};

const A: u16 = 1;
const ZONE: &str = "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n";

fn engine(profiles: &str) -> Engine {
    Engine::from_toml(&format!("{ZONE}{profiles}"), None).unwrap()
}

/// (rdata, ttl) of the single answer.
fn answer(e: &Engine, name: &str, client: Option<&str>) -> (String, u32) {
    let o = ask(e, name, A, client, None);
    assert_eq!(o.answer.len(), 1, "{name}: {o:?}");
    (o.answer[0].2.clone(), o.answer[0].1)
}

/// How many of `n` client /24s under `base` (`10`: 10.x.y.0/24;
/// `14.139`: 14.139.x.0/24, n ≤ 256) each answer gets.
fn spread(e: &Engine, name: &str, n: u32, base: &str) -> HashMap<String, u32> {
    let mut got = HashMap::new();
    for i in 0..n {
        let c = if base.contains('.') {
            format!("{base}.{i}.9")
        } else {
            format!("{base}.{}.{}.9", i / 200, i % 200)
        };
        *got.entry(answer(e, name, Some(&c)).0).or_insert(0) += 1;
    }
    got
}

const PRIO_SPILL: &str = "[[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 300\n\
    ttl_unstable = 15\nspill_start = 0.5\nspill_full = 1.0\n\
    [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\n\
    [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\n";

/// Between spill_start and spill_full a growing share of client /24s moves
/// to the next endpoint, each /24 always the same way, with an ECS scope
/// covering the /24; at spill_full all move; below spill_start none; the
/// answers while spilling carry ttl_unstable.
#[test]
fn priority_spills_by_client_subnet() {
    let e = engine(PRIO_SPILL);
    let app = "app.tm.example";
    assert_eq!(
        spread(&e, app, 400, "10"),
        HashMap::from([("192.0.2.1".into(), 400)])
    );
    assert_eq!(answer(&e, app, Some("10.0.0.1")).1, 300);
    e.set_load("app", "a", Some(0.4)).unwrap();
    assert_eq!(spread(&e, app, 400, "10")["192.0.2.1"], 400);
    assert_eq!(answer(&e, app, Some("10.0.0.1")).1, 300);
    // Load 0.75: half way from start to full: about half the /24s move.
    e.set_load("app", "a", Some(0.75)).unwrap();
    let s = spread(&e, app, 400, "10");
    let moved = s.get("192.0.2.2").copied().unwrap_or(0);
    assert!((140..=260).contains(&moved), "{s:?}");
    // A /24 always lands the same way, whatever host in it asks.
    for i in 0..20u32 {
        let first = answer(&e, app, Some(&format!("10.7.{i}.1"))).0;
        for h in [2, 77, 254] {
            assert_eq!(answer(&e, app, Some(&format!("10.7.{i}.{h}"))).0, first);
        }
    }
    let o = ask(&e, app, A, Some("127.0.0.1"), Some(("10.7.3.0", 24)));
    assert_eq!((o.scope, o.answer[0].1), (24, 15), "{o:?}");
    // More load, more clients moved, and the ones moved before stay moved.
    let before: Vec<String> = (0..100)
        .map(|i| answer(&e, app, Some(&format!("10.9.{i}.1"))).0)
        .collect();
    e.set_load("app", "a", Some(0.9)).unwrap();
    let s2 = spread(&e, app, 400, "10");
    assert!(s2.get("192.0.2.2").copied().unwrap_or(0) > moved, "{s2:?}");
    for (i, b) in before.iter().enumerate() {
        if b == "192.0.2.2" {
            assert_eq!(answer(&e, app, Some(&format!("10.9.{i}.1"))).0, *b);
        }
    }
    // Full: every client moves.
    e.set_load("app", "a", Some(1.0)).unwrap();
    assert_eq!(
        spread(&e, app, 400, "10"),
        HashMap::from([("192.0.2.2".into(), 400)])
    );
    // b full too (and more): no room anywhere: nobody moves — the clients
    // stay on a rather than piling onto b (loads count up to spill_full).
    e.set_load("app", "b", Some(2.0)).unwrap();
    assert_eq!(
        spread(&e, app, 400, "10"),
        HashMap::from([("192.0.2.1".into(), 400)])
    );
    // Cleared: back to a, steady TTL.
    e.set_load("app", "a", None).unwrap();
    e.set_load("app", "b", None).unwrap();
    assert_eq!(answer(&e, app, Some("10.1.1.1")), ("192.0.2.1".into(), 300));
    assert!(ep_status(&e, "app.tm.example", "a")["load"].is_null());
}

/// The ECS scope covers the bits the spill hash used in the client's own
/// family: /24 of IPv4, /56 of IPv6, and /120 of an IPv4-mapped IPv6
/// subnet (::ffff:a.b.c.0/120, hashed by its /24; before, its scope was
/// /24 of the IPv6 family, which told resolvers the answer held for every
/// address under ::/24).
#[test]
fn spill_scope_covers_the_hashed_bits_in_the_clients_family() {
    let e = engine(PRIO_SPILL);
    e.set_load("app", "a", Some(0.75)).unwrap();
    let app = "app.tm.example";
    for (ecs, want) in [
        (("10.7.3.0", 24), 24),
        (("2001:db8:1:200::", 56), 56),
        (("::ffff:10.7.3.0", 120), 120),
    ] {
        let o = ask(&e, app, A, Some("127.0.0.1"), Some(ecs));
        assert_eq!(o.scope, want, "{ecs:?}: {o:?}");
    }
}

/// Spill-over in performance routing (to the next-best by round-trip
/// time) and in geographic routing (to the next-best matching code).
#[test]
fn performance_and_geographic_spill() {
    let cfg = format!(
        "[engine]\nlatency_table = \"{}\"\ngeoip_db = \"{}\"\n{ZONE}\
         [[profile]]\nname = \"perf\"\nrouting = \"performance\"\nspill_start = 0.8\nspill_full = 1.0\n\
         [[profile.endpoint]]\nname = \"eu\"\naddresses = [\"192.0.2.1\"]\nlocation = \"westeurope\"\n\
         [[profile.endpoint]]\nname = \"us\"\naddresses = [\"192.0.2.2\"]\nlocation = \"eastus\"\n\
         [[profile.endpoint]]\nname = \"asia\"\naddresses = [\"192.0.2.3\"]\nlocation = \"southeastasia\"\n\
         [[profile]]\nname = \"geo\"\nrouting = \"geographic\"\nspill_start = 0.8\nspill_full = 1.0\n\
         [[profile.endpoint]]\nname = \"in\"\naddresses = [\"192.0.2.11\"]\ngeo = [\"IN\"]\n\
         [[profile.endpoint]]\nname = \"asia\"\naddresses = [\"192.0.2.12\"]\ngeo = [\"AS\"]\n\
         [[profile.endpoint]]\nname = \"world\"\naddresses = [\"192.0.2.13\"]\ngeo = [\"WORLD\"]\n",
        data("latency.csv").display(),
        data("geo-sample.mmdb").display()
    );
    let e = Engine::from_toml(&cfg, None).unwrap();
    // 127/8: westeurope 20 ms, eastus 80, southeastasia 200.
    assert_eq!(spread(&e, "perf.tm.example", 300, "127")["192.0.2.1"], 300);
    e.set_load("perf", "eu", Some(0.9)).unwrap();
    let s = spread(&e, "perf.tm.example", 300, "127");
    assert!((100..=200).contains(&s["192.0.2.2"]), "{s:?}");
    assert_eq!(s.get("192.0.2.3"), None, "{s:?}");
    // eu full: all to us; us full too: on to asia.
    e.set_load("perf", "eu", Some(1.0)).unwrap();
    e.set_load("perf", "us", Some(1.0)).unwrap();
    assert_eq!(
        spread(&e, "perf.tm.example", 300, "127"),
        HashMap::from([("192.0.2.3".into(), 300)])
    );
    // Geographic: 14.139/16 is IN.
    assert_eq!(
        spread(&e, "geo.tm.example", 200, "14.139")["192.0.2.11"],
        200
    );
    e.set_load("geo", "in", Some(0.9)).unwrap();
    let s = spread(&e, "geo.tm.example", 200, "14.139");
    assert!((60..=140).contains(&s["192.0.2.12"]), "{s:?}");
    e.set_load("geo", "in", Some(1.5)).unwrap();
    e.set_load("geo", "asia", Some(1.0)).unwrap();
    assert_eq!(
        spread(&e, "geo.tm.example", 200, "14.139"),
        HashMap::from([("192.0.2.13".into(), 200)])
    );
}

/// Every endpoint full: no client moves (before, every client of the
/// profile piled onto the last endpoint), however many endpoints (more than
/// the 8 hops a client spills through); with room on one, they go there.
#[test]
fn all_full_nobody_moves() {
    let mut cfg = String::from(
        "[[profile]]\nname = \"p\"\nrouting = \"priority\"\nspill_start = 0.8\nspill_full = 1.0\n",
    );
    for i in 1..=12 {
        cfg += &format!("[[profile.endpoint]]\nname = \"e{i}\"\naddresses = [\"192.0.2.{i}\"]\n");
    }
    let e = engine(&cfg);
    for i in 1..=12 {
        e.set_load("p", &format!("e{i}"), Some(1.0)).unwrap();
    }
    assert_eq!(
        spread(&e, "p.tm.example", 200, "10"),
        HashMap::from([("192.0.2.1".into(), 200)])
    );
    // e3 has some room (0.9): the clients that e1 and e2 move go there or
    // stay on e3's way; none goes past it.
    e.set_load("p", "e3", Some(0.9)).unwrap();
    let s = spread(&e, "p.tm.example", 200, "10");
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s["192.0.2.3"], 200, "{s:?}");
}

/// Geographic spill-over never moves clients to a degraded endpoint while
/// another match is online (geographic routing answers a degraded match
/// of its own, but spilled clients are moved to a candidate).
#[test]
fn geographic_spill_skips_a_degraded_next_choice() {
    let cfg = format!(
        "[engine]\ngeoip_db = \"{}\"\n{ZONE}\
         [[profile]]\nname = \"geo\"\nrouting = \"geographic\"\nspill_start = 0.8\nspill_full = 1.0\n\
         [[profile.endpoint]]\nname = \"in\"\naddresses = [\"192.0.2.11\"]\ngeo = [\"IN\"]\n\
         [[profile.endpoint]]\nname = \"asia\"\naddresses = [\"192.0.2.12\"]\ngeo = [\"AS\"]\n\
         [[profile.endpoint]]\nname = \"world\"\naddresses = [\"192.0.2.13\"]\ngeo = [\"WORLD\"]\n",
        data("geo-sample.mmdb").display()
    );
    let e = Engine::from_toml(&cfg, None).unwrap();
    e.set_monitor_status("geo", "asia", MonitorStatus::Degraded)
        .unwrap();
    e.set_load("geo", "in", Some(1.0)).unwrap();
    assert_eq!(
        spread(&e, "geo.tm.example", 200, "14.139"),
        HashMap::from([("192.0.2.13".into(), 200)])
    );
}

/// Weight 0 is a standby: never answered while an endpoint with a weight
/// above 0 is a candidate, answered (shared equally) when none is.
#[test]
fn weight_zero_is_standby() {
    let e = engine(
        "[[profile]]\nname = \"w\"\nrouting = \"weighted\"\n\
         [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\nweight = 3\n\
         [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\nweight = 1\n\
         [[profile.endpoint]]\nname = \"s1\"\naddresses = [\"192.0.2.8\"]\nweight = 0\n\
         [[profile.endpoint]]\nname = \"s2\"\naddresses = [\"192.0.2.9\"]\nweight = 0\n",
    );
    let count = |e: &Engine| {
        let mut m: HashMap<String, u32> = HashMap::new();
        for _ in 0..400 {
            *m.entry(answer(e, "w.tm.example", None).0).or_insert(0) += 1;
        }
        m
    };
    let m = count(&e);
    assert_eq!(
        m.get("192.0.2.8").copied().unwrap_or(0) + m.get("192.0.2.9").copied().unwrap_or(0),
        0,
        "{m:?}"
    );
    e.set_monitor_status("w", "a", MonitorStatus::Degraded)
        .unwrap();
    let m = count(&e);
    assert_eq!(m.get("192.0.2.2"), Some(&400), "{m:?}");
    e.set_monitor_status("w", "b", MonitorStatus::Degraded)
        .unwrap();
    let m = count(&e);
    assert!(m["192.0.2.8"] > 100 && m["192.0.2.9"] > 100, "{m:?}");
    assert_eq!(m.len(), 2, "{m:?}");
    // Every endpoint down: fail-open answers as though all were up, so the
    // weighted ones again.
    e.set_monitor_status("w", "s1", MonitorStatus::Degraded)
        .unwrap();
    e.set_monitor_status("w", "s2", MonitorStatus::Degraded)
        .unwrap();
    let m = count(&e);
    assert!(
        !m.contains_key("192.0.2.8") && !m.contains_key("192.0.2.9"),
        "{m:?}"
    );
}

/// `always_serve`: a Degraded verdict does not take the endpoint out (the
/// status still shows Degraded, and `up`); forcing it down does.
#[test]
fn always_serve_stays_in_but_is_reported() {
    let e = engine(
        "[[profile]]\nname = \"p\"\nrouting = \"priority\"\n\
         [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\nalways_serve = true\n\
         [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\n",
    );
    e.set_monitor_status("p", "a", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(answer(&e, "p.tm.example", None).0, "192.0.2.1");
    let st = ep_status(&e, "p.tm.example", "a");
    assert_eq!(st["status"], "Degraded", "{st}");
    assert_eq!(
        (st["always_serve"].as_bool(), st["up"].as_bool()),
        (Some(true), Some(true))
    );
    // An operator's `down` (the admin-state file) still wins.
    let dir = fresh_dir("always-serve");
    let admin = dir.join("admin.toml");
    std::fs::write(&admin, "\"p/a\" = \"down\"\n").unwrap();
    let cfg = format!(
        "[engine]\nadmin_state = \"{}\"\nwatch_interval = \"200ms\"\n{ZONE}\
         [[profile]]\nname = \"p\"\nrouting = \"priority\"\n\
         [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\nalways_serve = true\n\
         [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\n",
        admin.display()
    );
    let e = Engine::from_toml(&cfg, None).unwrap();
    wait_for(5, "forced down", || {
        answer(&e, "p.tm.example", None).0 == "192.0.2.2"
    });
}

/// Performance: endpoints of one region tie and share its clients by
/// weight, a client /24 always the same one, scope at least /24.
#[test]
fn performance_shares_a_region_by_weight() {
    let cfg = format!(
        "[engine]\nlatency_table = \"{}\"\n{ZONE}\
         [[profile]]\nname = \"perf\"\nrouting = \"performance\"\n\
         [[profile.endpoint]]\nname = \"eu1\"\naddresses = [\"192.0.2.1\"]\nlocation = \"westeurope\"\nweight = 3\n\
         [[profile.endpoint]]\nname = \"eu2\"\naddresses = [\"192.0.2.2\"]\nlocation = \"westeurope\"\nweight = 1\n\
         [[profile.endpoint]]\nname = \"us\"\naddresses = [\"192.0.2.3\"]\nlocation = \"eastus\"\n",
        data("latency.csv").display()
    );
    let e = Engine::from_toml(&cfg, None).unwrap();
    let s = spread(&e, "perf.tm.example", 800, "127");
    assert_eq!(s.get("192.0.2.3"), None, "{s:?}");
    assert!((520..=680).contains(&s["192.0.2.1"]), "{s:?}");
    for i in 0..20u32 {
        let first = answer(&e, "perf.tm.example", Some(&format!("127.3.{i}.1"))).0;
        assert_eq!(
            answer(&e, "perf.tm.example", Some(&format!("127.3.{i}.200"))).0,
            first
        );
    }
    let o = ask(
        &e,
        "perf.tm.example",
        A,
        Some("127.0.0.1"),
        Some(("127.5.5.0", 24)),
    );
    assert_eq!(o.scope, 24, "{o:?}");
    // One of them down: the other takes the whole region.
    e.set_monitor_status("perf", "eu1", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(spread(&e, "perf.tm.example", 100, "127")["192.0.2.2"], 100);
}

/// Health-aware TTL with real probes: `ttl` while steady; `ttl_unstable`
/// while the answered endpoint fails below `tolerated_failures`, while
/// another recovers, when the profile answers fail-open, and while
/// spilling.
#[test]
fn ttl_follows_what_moves() {
    let a = Backend::start(Mode::Status(200));
    let b = Backend::start(Mode::Status(200));
    let cfg = format!(
        "{ZONE}[[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 300\nttl_unstable = 10\n\
         spill_start = 0.5\nspill_full = 1.0\n\
         [profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 2\nrecovery_successes = 2\n\
         load_header = \"X-Load\"\n\
         [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n\
         [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n",
        a.port, b.port
    );
    let e = Engine::from_toml(&cfg, None).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    let app = "app.tm.example";
    assert_eq!(answer(&e, app, None), ("192.0.2.1".into(), 300));
    // a fails once: still answered (tolerated), but with the short TTL.
    a.set(Mode::Status(500));
    wait_for(10, "a failing", || {
        answer(&e, app, None) == ("192.0.2.1".into(), 10)
    });
    assert_eq!(ep_status(&e, app, "a")["unsteady"], "failing");
    // Beyond tolerated: b answers, steady (a is down and not recovering).
    wait_for(10, "a degraded", || {
        answer(&e, app, None) == ("192.0.2.2".into(), 300)
    });
    // a passes again: recovering, b still answers, short TTL.
    a.set(Mode::Status(200));
    wait_for(10, "a recovering", || {
        answer(&e, app, None) == ("192.0.2.2".into(), 10)
    });
    assert_eq!(ep_status(&e, app, "a")["unsteady"], "recovering");
    wait_for(10, "a back", || {
        answer(&e, app, None) == ("192.0.2.1".into(), 300)
    });
    // a reports load through its probe answers: spill-over, short TTL.
    a.set_load(Some("75%"));
    wait_for(10, "a's load read", || {
        ep_status(&e, app, "a")["load"] == 0.75
    });
    assert_eq!(answer(&e, app, Some("10.0.0.1")).1, 10);
    let s = spread(&e, app, 300, "10");
    assert!((90..=210).contains(&s["192.0.2.2"]), "{s:?}");
    a.set_load(Some("0.1"));
    wait_for(10, "a's load falls", || {
        answer(&e, app, Some("10.0.0.1")) == ("192.0.2.1".into(), 300)
    });
    // Both down: fail-open answers a, with the short TTL.
    a.set(Mode::Status(500));
    b.set(Mode::Status(500));
    wait_for(15, "fail-open", || {
        ep_status(&e, app, "a")["status"] == "Degraded"
            && ep_status(&e, app, "b")["status"] == "Degraded"
    });
    assert_eq!(answer(&e, app, None), ("192.0.2.1".into(), 10));
}

/// Nested: the child's unsteadiness caps the parent's answer too.
#[test]
fn nested_child_unsteady_caps_the_answer() {
    let e = engine(
        "[[profile]]\nname = \"top\"\nrouting = \"priority\"\nttl = 120\nttl_unstable = 20\n\
         [[profile.endpoint]]\nname = \"kid\"\nprofile = \"child\"\n\
         [[profile]]\nname = \"child\"\nrouting = \"priority\"\nttl = 300\nttl_unstable = 5\n\
         [[profile.endpoint]]\nname = \"c1\"\naddresses = [\"192.0.2.1\"]\n",
    );
    assert_eq!(
        answer(&e, "top.tm.example", None),
        ("192.0.2.1".into(), 300)
    );
    e.set_monitor_status("child", "c1", MonitorStatus::Degraded)
        .unwrap();
    // The child answers fail-open: its ttl_unstable.
    assert_eq!(answer(&e, "top.tm.example", None).1, 5);
}

fn cfg_err(text: &str) -> trafficmgr::ConfigError {
    Engine::from_toml(text, None).unwrap_err()
}

/// The new keys are validated with file:line:col and key path.
#[test]
fn new_keys_are_validated_with_location() {
    let p = |extra: &str, ep: &str| {
        format!(
            "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\nttl = 30\n{extra}\
             [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\n{ep}"
        )
    };
    let cases: &[(String, &str, usize, &str)] = &[
        (
            p("ttl_unstable = 40\n", ""),
            "profile[0].ttl_unstable",
            8,
            "must not be above ttl (30)",
        ),
        (
            p("spill_start = 0.8\n", ""),
            "profile[0].spill_start",
            8,
            "needs spill_full",
        ),
        (
            p("spill_full = 0.8\n", ""),
            "profile[0].spill_full",
            8,
            "needs spill_start",
        ),
        (
            p("spill_start = 0.9\nspill_full = 0.8\n", ""),
            "profile[0].spill_full",
            9,
            "must be above spill_start",
        ),
        (
            p("spill_start = -1.0\nspill_full = 0.8\n", ""),
            "profile[0].spill_start",
            8,
            "from 0 to 1000",
        ),
        (
            p("", "weight = -1\n"),
            "profile[0].endpoint[0].weight",
            11,
            "out of range 0..=1000",
        ),
        (
            p("", "always_serve = \"yes\"\n"),
            "profile[0].endpoint[0].always_serve",
            11,
            "",
        ),
        (
            p(
                "[profile.monitor]\nprotocol = \"tcp\"\nload_header = \"X-Load\"\n",
                "",
            ),
            "profile[0].monitor.load_header",
            10,
            "needs an http or https monitor",
        ),
        (
            p("[profile.monitor]\nload_header = \"X Load\"\n", ""),
            "profile[0].monitor.load_header",
            9,
            "not a valid header name",
        ),
    ];
    for (text, path, line, msg) in cases {
        let e = cfg_err(text);
        assert_eq!((e.path.as_str(), e.line), (*path, *line), "{e}\n{text}");
        assert!(e.message.contains(msg), "{e}");
        assert!(e.col >= 1, "{e}");
    }
    // Spill-over only where there is a next-best endpoint of the same method.
    let e = cfg_err(&p("", "").replace(
        "routing = \"priority\"\nttl = 30\n",
        "routing = \"weighted\"\nspill_start = 0.5\nspill_full = 1.0\n",
    ));
    assert_eq!(e.path, "profile[0].spill_start", "{e}");
    assert!(e.message.contains("not weighted"), "{e}");
}

/// A profile of 100 endpoints (beyond the 64 of the summary masks) with
/// spill-over, always_serve and admin drain: every endpoint down and full,
/// the always_serve ones answer, and nobody moves off the first of them
/// (before, clients spilled through e10…e60 and piled onto e70, the first
/// endpoint beyond the 64th, which never spills); drain still wins over
/// always_serve; nothing panics.
#[test]
fn hundred_endpoints_spill_and_always_serve() {
    let mut cfg = String::from(
        "[[profile]]\nname = \"p\"\nrouting = \"priority\"\nspill_start = 0.8\nspill_full = 1.0\n",
    );
    for i in 1..=100 {
        let extra = if i % 10 == 0 {
            "always_serve = true\n"
        } else {
            ""
        };
        cfg += &format!(
            "[[profile.endpoint]]\nname = \"e{i}\"\naddresses = [\"10.9.{}.{}\"]\n{extra}",
            i / 100,
            i % 100
        );
    }
    let e = engine(&cfg);
    for i in 1..=100 {
        e.set_load("p", &format!("e{i}"), Some(1.0)).unwrap();
        e.set_monitor_status("p", &format!("e{i}"), MonitorStatus::Degraded)
            .unwrap();
    }
    assert_eq!(
        spread(&e, "p.tm.example", 50, "10"),
        HashMap::from([("10.9.0.10".into(), 50)])
    );
    for i in 1..=70 {
        e.set_admin_state("p", &format!("e{i}"), AdminState::Drain)
            .unwrap();
    }
    assert_eq!(
        spread(&e, "p.tm.example", 50, "10"),
        HashMap::from([("10.9.0.80".into(), 50)])
    );
    // Beyond the 64th an endpoint never spills, whatever its load.
    e.set_load("p", "e80", Some(0.9)).unwrap();
    assert_eq!(
        spread(&e, "p.tm.example", 50, "10"),
        HashMap::from([("10.9.0.80".into(), 50)])
    );
}
