//! The Rust API end to end: every answer shape of docs/ANSWERS.md, the routing
//! methods of docs/ROUTING.md on fixtures, its health rules, config errors.

mod common;
use common::*;
use trafficmgr::{Engine, MonitorStatus, Rcode};

const A: u16 = 1;
const NS: u16 = 2;
const CNAME: u16 = 5;
const SOA: u16 = 6;
const MX: u16 = 15;
const TXT: u16 = 16;
const AAAA: u16 = 28;
const ANY: u16 = 255;

fn engine() -> Engine {
    Engine::from_file(data("basic.toml")).unwrap()
}

#[test]
fn cname_for_every_qtype_with_profile_ttl() {
    let e = engine();
    for t in [A, AAAA, CNAME, MX, TXT, ANY] {
        let o = ask(&e, "prio.tm.example", t, Some("192.0.2.99"), None);
        assert_eq!(o.rcode, Rcode::NoError);
        assert!(o.aa);
        assert_eq!(
            o.answer,
            vec![("CNAME".into(), 30, "primary.contoso.example.".into())],
            "qtype {t}"
        );
        assert!(o.authority.is_empty());
    }
}

#[test]
fn names_ignore_case_and_trailing_dot() {
    let e = engine();
    for n in ["PRIO.TM.EXAMPLE.", "Prio.Tm.Example", "prio.tm.example."] {
        assert_eq!(one(&e, n, A, None, None), "primary.contoso.example.");
    }
}

#[test]
fn addresses_by_family() {
    let e = engine();
    let o = ask(&e, "addrs.tm.example", A, None, None);
    assert_eq!(o.answer, vec![("A".into(), 60, "192.0.2.10".into())]);
    // Missing family and other types: NODATA with the SOA.
    for t in [AAAA, MX, TXT, CNAME] {
        let o = ask(&e, "addrs.tm.example", t, None, None);
        assert_eq!(o.rcode, Rcode::NoError);
        assert!(o.answer.is_empty());
        assert_eq!(o.authority.len(), 1);
        assert_eq!(o.authority[0].0, "SOA");
        assert_eq!(o.authority[0].1, 300);
    }
    let o = ask(&e, "deep.sub.tm.example", AAAA, None, None);
    assert_eq!(o.answer, vec![("AAAA".into(), 60, "2001:db8::a".into())]);
}

#[test]
fn any_gives_both_families() {
    let e = engine();
    e.set_monitor_status("weighted", "light", MonitorStatus::Degraded)
        .unwrap();
    let o = ask(&e, "weighted.tm.example", ANY, None, None);
    let types: Vec<_> = o.answer.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(types, vec!["A", "AAAA"]);
    assert!(o.answer.iter().all(|r| r.1 == 20));
}

#[test]
fn apex_soa_ns_and_nodata() {
    let e = engine();
    let o = ask(&e, "tm.example", SOA, None, None);
    assert_eq!(o.answer.len(), 1);
    assert_eq!(o.answer[0].0, "SOA");
    assert!(
        o.answer[0]
            .2
            .starts_with("ns1.tm.example. hostmaster.tm.example. "),
        "{}",
        o.answer[0].2
    );
    assert!(o.answer[0].2.ends_with(" 900 300 2419200 300"));
    let o = ask(&e, "tm.example.", NS, None, None);
    assert_eq!(
        o.answer.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
        vec!["ns1.tm.example.", "ns2.tm.example."]
    );
    assert!(o.answer.iter().all(|r| r.1 == 300));
    let o = ask(&e, "tm.example", ANY, None, None);
    assert_eq!(o.answer.len(), 3);
    let o = ask(&e, "tm.example", A, None, None);
    assert_eq!(
        (o.rcode, o.answer.len(), o.authority.len()),
        (Rcode::NoError, 0, 1)
    );
}

#[test]
fn nxdomain_under_zone_and_not_ours_outside() {
    let e = engine();
    for n in ["nope.tm.example", "x.prio.tm.example", "a.b.c.tm.example"] {
        let o = ask(&e, n, A, None, None);
        assert_eq!(o.rcode, Rcode::NxDomain, "{n}");
        assert!(o.aa);
        assert_eq!(o.authority[0].0, "SOA");
    }
    // Empty non-terminal: exists, no data.
    let o = ask(&e, "sub.tm.example", A, None, None);
    assert_eq!((o.rcode, o.answer.len()), (Rcode::NoError, 0));
    for n in [
        "example",
        "other.example",
        "tm.example.org",
        "xtm.example",
        ".",
    ] {
        let o = ask(&e, n, A, None, None);
        assert_eq!(o.rcode, Rcode::Refused, "{n}");
        assert!(!o.aa);
    }
}

#[test]
fn bad_names_are_errors() {
    let e = engine();
    let long_label = format!("{}.tm.example", "a".repeat(64));
    let long_name = format!("{}tm.example", "abcdefghi.".repeat(26));
    for n in [
        long_label.as_str(),
        long_name.as_str(),
        "a..tm.example",
        "..",
    ] {
        let q = trafficmgr::Query {
            name: n.as_bytes(),
            qtype: 1,
            client: None,
            ecs: None,
        };
        assert!(e.lookup(&q, |_, _| ()).is_err(), "{n}");
    }
}

#[test]
fn disabled_profile_and_no_enabled_endpoint_are_nxdomain() {
    let e = engine();
    assert_eq!(
        ask(&e, "off.tm.example", A, None, None).rcode,
        Rcode::NxDomain
    );
    assert_eq!(
        ask(&e, "none-enabled.tm.example", A, None, None).rcode,
        Rcode::NxDomain
    );
}

#[test]
fn priority_failover_and_fail_open() {
    let e = engine();
    assert_eq!(
        one(&e, "prio.tm.example", A, None, None),
        "primary.contoso.example."
    );
    e.set_monitor_status("prio", "primary", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(
        one(&e, "prio.tm.example", A, None, None),
        "secondary.contoso.example."
    );
    e.set_monitor_status("prio", "secondary", MonitorStatus::Degraded)
        .unwrap();
    // Every enabled endpoint degraded: fail open, as though all were online.
    assert_eq!(
        one(&e, "prio.tm.example", A, None, None),
        "primary.contoso.example."
    );
    e.set_monitor_status("prio.tm.example", "primary", MonitorStatus::Online)
        .unwrap();
    assert_eq!(
        one(&e, "prio.tm.example", A, None, None),
        "primary.contoso.example."
    );
    assert!(
        e.set_monitor_status("prio", "nope", MonitorStatus::Online)
            .is_err()
    );
}

#[test]
fn fail_closed_answers_nodata() {
    let e = engine();
    assert_eq!(
        one(&e, "closed.tm.example", A, None, None),
        "a.closed.example."
    );
    e.set_monitor_status("closed", "a", MonitorStatus::Degraded)
        .unwrap();
    let o = ask(&e, "closed.tm.example", A, None, None);
    assert_eq!(
        (o.rcode, o.answer.len(), o.authority.len()),
        (Rcode::NoError, 0, 1)
    );
    e.set_monitor_status("closed", "a", MonitorStatus::CheckingEndpoint)
        .unwrap();
    assert_eq!(
        one(&e, "closed.tm.example", A, None, None),
        "a.closed.example."
    );
}

#[test]
fn weighted_follows_weights_and_health() {
    let e = engine();
    let mut heavy = 0;
    let n = 20000;
    for _ in 0..n {
        if one(&e, "weighted.tm.example", A, None, None) == "192.0.2.1" {
            heavy += 1;
        }
    }
    // Expected 3/4; 20000 draws put 5 sigma at about ±1.5%.
    let share = heavy as f64 / n as f64;
    assert!((0.72..0.78).contains(&share), "heavy share {share}");
    e.set_monitor_status("weighted", "heavy", MonitorStatus::Degraded)
        .unwrap();
    for _ in 0..200 {
        assert_eq!(one(&e, "weighted.tm.example", A, None, None), "192.0.2.2");
    }
}

#[test]
fn performance_by_latency_table_and_ecs() {
    let e = engine();
    // 127.0.0.0/8 row: westeurope 20 is best.
    assert_eq!(
        one(&e, "perf.tm.example", A, Some("127.0.0.1"), None),
        "eu.contoso.example."
    );
    assert_eq!(
        one(&e, "perf.tm.example", A, Some("127.0.0.2"), None),
        "us.contoso.example."
    );
    assert_eq!(
        one(&e, "perf.tm.example", A, Some("127.0.0.3"), None),
        "asia.contoso.example."
    );
    // ECS wins over the peer address, and the scope is the row's prefix.
    let o = ask(
        &e,
        "perf.tm.example",
        A,
        Some("127.0.0.2"),
        Some(("203.0.113.0", 24)),
    );
    assert_eq!(o.answer[0].2, "asia.contoso.example.");
    assert_eq!(o.scope, 24);
    let o = ask(
        &e,
        "perf.tm.example",
        AAAA,
        Some("127.0.0.2"),
        Some(("2001:db8:1::", 48)),
    );
    assert_eq!(o.answer[0].2, "eu.contoso.example.");
    // The best one degraded: next best by RTT.
    e.set_monitor_status("perf", "eu", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(
        one(&e, "perf.tm.example", A, Some("127.0.0.1"), None),
        "us.contoso.example."
    );
    // Nothing known of the client: lowest priority number.
    e.set_monitor_status("perf", "eu", MonitorStatus::Online)
        .unwrap();
    let o = ask(&e, "perf.tm.example", A, Some("192.0.2.77"), None);
    assert_eq!(o.answer[0].2, "us.contoso.example.");
    assert_eq!(o.scope, 0);
    let o = ask(&e, "perf.tm.example", A, None, None);
    assert_eq!(o.answer[0].2, "us.contoso.example.");
}

#[test]
fn performance_falls_back_to_distance_with_geoip() {
    let dir = fresh_dir("engine-geoip");
    let cfg = format!(
        r#"
[engine]
geoip_db = "{}"
[[zone]]
name = "tm.example"
nameservers = ["ns1.tm.example"]
[[profile]]
name = "perf"
routing = "performance"
[[profile.endpoint]]
name = "us"
target = "us.example"
location = "eastus"
[[profile.endpoint]]
name = "eu"
target = "eu.example"
location = "westeurope"
[[profile.endpoint]]
name = "au"
target = "au.example"
location = "australiaeast"
[[profile.endpoint]]
name = "paris"
target = "paris.example"
location = "onprem-paris"
enabled = false
[[region]]
name = "onprem-paris"
lat = 48.86
lon = 2.35
"#,
        data("geo-sample.mmdb").display()
    );
    let e = Engine::from_toml(&cfg, Some(&dir)).unwrap();
    assert_eq!(
        one(&e, "perf.tm.example", A, Some("8.8.8.8"), None),
        "us.example."
    );
    assert_eq!(
        one(&e, "perf.tm.example", A, Some("81.2.69.160"), None),
        "eu.example."
    );
    assert_eq!(
        one(&e, "perf.tm.example", A, Some("1.1.1.1"), None),
        "au.example."
    );
    let o = ask(
        &e,
        "perf.tm.example",
        A,
        Some("127.0.0.1"),
        Some(("81.2.69.0", 24)),
    );
    assert_eq!(o.answer[0].2, "eu.example.");
    assert!(o.scope > 0 && o.scope <= 24, "scope {}", o.scope);
}

#[test]
fn reload_keeps_health_and_bad_config_changes_nothing() {
    let d = fresh_dir("engine-reload");
    let path = d.join("tm.toml");
    let base = basic_text();
    std::fs::write(&path, &base).unwrap();
    let e = Engine::from_file(&path).unwrap();
    e.set_monitor_status("prio", "primary", MonitorStatus::Degraded)
        .unwrap();
    std::fs::write(&path, base.replace("ttl = 30\n", "ttl = 31\n")).unwrap();
    e.reload().unwrap();
    let o = ask(&e, "prio.tm.example", A, None, None);
    assert_eq!(
        o.answer,
        vec![("CNAME".into(), 31, "secondary.contoso.example.".into())]
    );
    std::fs::write(&path, base.replace("ttl = 30\n", "ttl = -1\n")).unwrap();
    let err = e.reload().unwrap_err();
    assert_eq!(err.path, "profile[0].ttl");
    assert_eq!(ask(&e, "prio.tm.example", A, None, None).answer[0].1, 31);
}

fn cfg_err(text: &str) -> trafficmgr::ConfigError {
    Engine::from_toml(text, Some(&data(""))).unwrap_err()
}

const ZONE: &str = "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n";

#[test]
fn config_errors_name_line_col_and_path() {
    let e = cfg_err(&format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.example\"\n[[profile.endpoint]]\nname = \"b\"\ntarget = \"b.example\"\nweight = 1001\n"
    ));
    assert_eq!(e.path, "profile[0].endpoint[1].weight");
    assert_eq!((e.line, e.col), (13, 1));
    assert_eq!(e.message, "1001 is out of range 0..=1000");
    assert_eq!(
        e.to_string(),
        "<string>:13:1: profile[0].endpoint[1].weight: 1001 is out of range 0..=1000"
    );

    let e = cfg_err(&format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\ncolour = \"red\"\n"
    ));
    assert!(e.message.contains("unknown field `colour`"), "{e}");
    assert_eq!(e.line, 7);
    assert!(e.path.starts_with("profile[0]"), "{e}");

    let e = cfg_err("[[zone]\nname = 1\n");
    assert_eq!(e.line, 1, "{e}");

    let e = cfg_err(&format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\nttl = \"x\"\n"
    ));
    assert_eq!(e.path, "profile[0].ttl", "{e}");
    assert_eq!(e.line, 7);
}

#[test]
fn config_validation_rules() {
    let ep = |body: &str| format!("{ZONE}[[profile]]\nname = \"p\"\n{body}");
    let cases: &[(String, &str, &str)] = &[
        (
            format!("{ZONE}[[zone]]\nname = \"TM.example.\"\nnameservers = [\"ns\"]\n"),
            "zone[1].name",
            "defined twice",
        ),
        (
            ep(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n[[profile]]\nname = \"P\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n",
            ),
            "profile[1].name",
            "defined twice",
        ),
        (
            ep(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"b.x\"\n",
            ),
            "profile[0].endpoint[1].name",
            "defined twice",
        ),
        (
            ep("zone = \"other.example\"\nrouting = \"priority\"\n"),
            "profile[0].zone",
            "not defined",
        ),
        (
            ep("routing = \"performance\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n"),
            "profile[0].endpoint[0].name",
            "location",
        ),
        (
            ep(
                "routing = \"performance\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\nlocation = \"mars\"\n",
            ),
            "profile[0].endpoint[0].location",
            "not a known region",
        ),
        (
            ep("routing = \"multivalue\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n"),
            "profile[0].endpoint[0].name",
            "multivalue",
        ),
        (
            ep(
                "routing = \"subnet\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\nsubnets = [\"10.0.0.0/8\"]\n[[profile.endpoint]]\nname = \"b\"\ntarget = \"b.x\"\nsubnets = [\"10.0.0.0/8\"]\n",
            ),
            "profile[0].endpoint[1].subnets[0]",
            "already claimed",
        ),
        (
            ep(
                "routing = \"subnet\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n[[profile.endpoint]]\nname = \"b\"\ntarget = \"b.x\"\n",
            ),
            "profile[0].endpoint[1].name",
            "at most one",
        ),
        (
            ep(
                "routing = \"geographic\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\ngeo = [\"FR\", \"EU\"]\n[[profile.endpoint]]\nname = \"b\"\ntarget = \"b.x\"\ngeo = [\"fr\"]\n",
            ),
            "profile[0].endpoint[1].geo[0]",
            "already claimed",
        ),
        (
            ep(
                "routing = \"geographic\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\ngeo = [\"XX\"]\n",
            ),
            "profile[0].endpoint[0].geo[0]",
            "not an ISO",
        ),
        (
            ep(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\nprofile = \"q\"\n[[profile]]\nname = \"q\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"b\"\nprofile = \"p\"\n",
            ),
            "profile[0].name",
            "cycle",
        ),
        (
            ep("routing = \"priority\"\nttl = 2147483648\n"),
            "profile[0].ttl",
            "out of range",
        ),
        (
            ep("routing = \"multivalue\"\nmax_answers = 9\n"),
            "profile[0].max_answers",
            "out of range",
        ),
        (
            ep(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\npriority = 0\n",
            ),
            "profile[0].endpoint[0].priority",
            "out of range",
        ),
        (
            ep(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n[[profile.endpoint]]\nname = \"b\"\ntarget = \"b.x\"\npriority = 1\n",
            ),
            "profile[0].endpoint[1].priority",
            "already used",
        ),
        (
            ep(&format!(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"{}.x\"\n",
                "a".repeat(64)
            )),
            "profile[0].endpoint[0].target",
            "63",
        ),
        (
            ep(&format!(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"{}x\"\n",
                "abcdefghij.".repeat(24)
            )),
            "profile[0].endpoint[0].target",
            "255",
        ),
        (
            ep(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\naddresses = [\"192.0.2.1\"]\n",
            ),
            "profile[0].endpoint[0].name",
            "exactly one",
        ),
        (
            ep(
                "routing = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.300\"]\n",
            ),
            "profile[0].endpoint[0].addresses[0]",
            "not an IPv4",
        ),
        (
            ep(
                "routing = \"priority\"\n[profile.monitor]\ninterval = \"10s\"\ntimeout = \"10s\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n",
            ),
            "profile[0].monitor.timeout",
            "less than the interval",
        ),
        (
            ep(
                "routing = \"priority\"\n[profile.monitor]\ntolerated_failures = 10\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n",
            ),
            "profile[0].monitor.tolerated_failures",
            "out of range",
        ),
        (
            ep(
                "routing = \"priority\"\n[profile.monitor]\ninterval = \"2h\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n",
            ),
            "profile[0].monitor.interval",
            "1s..=1h",
        ),
        (
            ep(
                "routing = \"priority\"\n[profile.monitor]\nexpected_status = [\"200-2x9\"]\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\n",
            ),
            "profile[0].monitor.expected_status[0]",
            "not a status",
        ),
        (
            ep("routing = \"fastest\"\n"),
            "profile[0].routing",
            "not a routing method",
        ),
        (
            ep(
                "routing = \"subnet\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"a.x\"\nsubnets = [\"10.0.0.1/8\"]\n",
            ),
            "profile[0].endpoint[0].subnets[0]",
            "host bits",
        ),
        (
            format!("[engine]\nwatch_interval = \"5 parsecs\"\n{ZONE}"),
            "engine.watch_interval",
            "not a duration",
        ),
        (
            format!("[engine]\nlatency_table = \"missing.csv\"\n{ZONE}"),
            "engine.latency_table",
            "cannot read",
        ),
    ];
    for (text, path, msg) in cases {
        let e = cfg_err(text);
        assert_eq!(e.path, *path, "{e}\n---\n{text}");
        assert!(e.message.contains(msg), "{e}\n---\n{text}");
        if *path != "engine.latency_table" && !path.is_empty() {
            assert!(e.line > 0, "{e}");
        }
    }
}

#[test]
fn profiles_with_more_than_64_endpoints() {
    let mut cfg = format!("{ZONE}[[profile]]\nname = \"big\"\nrouting = \"priority\"\n");
    for i in 0..70 {
        cfg.push_str(&format!(
            "[[profile.endpoint]]\nname = \"e{i}\"\ntarget = \"e{i}.example\"\n"
        ));
    }
    let e = Engine::from_toml(&cfg, None).unwrap();
    assert_eq!(one(&e, "big.tm.example", A, None, None), "e0.example.");
    for i in 0..66 {
        e.set_monitor_status("big", &format!("e{i}"), MonitorStatus::Degraded)
            .unwrap();
    }
    assert_eq!(one(&e, "big.tm.example", A, None, None), "e66.example.");
    for i in 66..70 {
        e.set_monitor_status("big", &format!("e{i}"), MonitorStatus::Degraded)
            .unwrap();
    }
    // All degraded: fail open to the first.
    assert_eq!(one(&e, "big.tm.example", A, None, None), "e0.example.");
    e.set_monitor_status("big", "e69", MonitorStatus::Online)
        .unwrap();
    assert_eq!(one(&e, "big.tm.example", A, None, None), "e69.example.");
    e.set_monitor_status("big", "e3", MonitorStatus::CheckingEndpoint)
        .unwrap();
    assert_eq!(one(&e, "big.tm.example", A, None, None), "e3.example.");
}
