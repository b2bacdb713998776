//! Every routing method of docs/ROUTING.md beyond priority/weighted/performance,
//! nested profiles (§3.3), weighted affinity, and the ECS scope each one
//! answers with.

mod common;
use common::*;
use std::collections::HashMap;
use trafficmgr::{Engine, MonitorStatus, Rcode};

fn methods() -> Engine {
    Engine::from_file(data("methods.toml")).unwrap()
}

fn texts(o: &Owned) -> Vec<String> {
    o.answer.iter().map(|a| a.2.clone()).collect()
}

#[test]
fn multivalue_caps_orders_and_fails_over() {
    let e = methods();
    let o = ask(&e, "mv.tm.example", 1, None, None);
    assert_eq!(texts(&o), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert!(o.answer.iter().all(|a| a.0 == "A" && a.1 == 30));
    let o = ask(&e, "mv.tm.example", 28, None, None);
    assert_eq!(texts(&o), ["2001:db8::1", "2001:db8::3", "2001:db8::4"]);
    e.set_monitor_status("mv", "m1", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(
        texts(&ask(&e, "mv.tm.example", 1, None, None)),
        ["192.0.2.2", "192.0.2.3", "192.0.2.33"]
    );
    let any = ask(&e, "mv.tm.example", 255, None, None);
    assert_eq!(
        texts(&any),
        [
            "192.0.2.2",
            "192.0.2.3",
            "192.0.2.33",
            "2001:db8::3",
            "2001:db8::4"
        ]
    );
    for m in ["m1", "m2", "m3", "m4"] {
        e.set_monitor_status("mv", m, MonitorStatus::Degraded)
            .unwrap();
    }
    // Fail open: as though all were online.
    assert_eq!(
        texts(&ask(&e, "mv.tm.example", 1, None, None)),
        ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    );
}

#[test]
fn subnet_longest_prefix_catch_all_and_scope() {
    let e = methods();
    let a = |client: &str| ask(&e, "sub.tm.example", 1, Some(client), None);
    assert_eq!(texts(&a("10.9.9.9")), ["ten.example."]);
    assert_eq!(texts(&a("10.1.2.3")), ["ten-one.example."]);
    assert_eq!(texts(&a("2001:db8:10::7")), ["ten-one.example."]);
    assert_eq!(texts(&a("192.0.2.1")), ["rest.example."]);
    assert_eq!(texts(&a("2001:db8:11::1")), ["rest.example."]);
    // Scope: the matched prefix, narrowed where a more specific one splits it.
    let o = ask(
        &e,
        "sub.tm.example",
        1,
        Some("127.0.0.1"),
        Some(("10.1.0.0", 24)),
    );
    assert_eq!((texts(&o)[0].as_str(), o.scope), ("ten-one.example.", 16));
    let o = ask(
        &e,
        "sub.tm.example",
        1,
        Some("127.0.0.1"),
        Some(("10.200.0.0", 24)),
    );
    assert_eq!((texts(&o)[0].as_str(), o.scope), ("ten.example.", 9));
    let o = ask(
        &e,
        "sub.tm.example",
        1,
        Some("127.0.0.1"),
        Some(("192.0.2.0", 24)),
    );
    assert_eq!((texts(&o)[0].as_str(), o.scope), ("rest.example.", 24));
    // No catch-all: NODATA.
    let o = ask(&e, "sub-strict.tm.example", 1, Some("192.0.2.1"), None);
    assert_eq!((o.rcode, o.answer.len()), (Rcode::NoError, 0));
    assert_eq!(
        texts(&ask(
            &e,
            "sub-strict.tm.example",
            1,
            Some("198.51.100.1"),
            None
        )),
        ["only.example."]
    );
}

#[test]
fn weighted_affinity_is_consistent_and_follows_weights() {
    let e = methods();
    let mut per: HashMap<String, usize> = HashMap::new();
    let mut pick = HashMap::new();
    for i in 0..4000u32 {
        let net = format!("{}.{}.{}", 20 + (i >> 16) % 200, (i >> 8) & 255, i & 255);
        let client = format!("{net}.7");
        let o = ask(&e, "aff.tm.example", 1, Some(&client), None);
        let t = texts(&o)[0].clone();
        assert_eq!(o.scope, 24);
        // The same /24 (another host, and through ECS) gets the same endpoint.
        let other = format!("{net}.200");
        assert_eq!(
            texts(&ask(&e, "aff.tm.example", 1, Some(&other), None))[0],
            t
        );
        *per.entry(t.clone()).or_default() += 1;
        pick.insert(client, t);
    }
    // Weights 1:1:2.
    let share = |n: &str| per.get(n).copied().unwrap_or(0) as f64 / 4000.0;
    assert!((0.21..0.29).contains(&share("w1.example.")), "{per:?}");
    assert!((0.21..0.29).contains(&share("w2.example.")), "{per:?}");
    assert!((0.45..0.55).contains(&share("w3.example.")), "{per:?}");
    // w1 goes down: only w1's clients move.
    e.set_monitor_status("aff", "w1", MonitorStatus::Degraded)
        .unwrap();
    for (client, before) in &pick {
        let now = texts(&ask(&e, "aff.tm.example", 1, Some(client), None))[0].clone();
        if before != "w1.example." {
            assert_eq!(&now, before, "{client} moved");
        } else {
            assert_ne!(now, "w1.example.");
        }
    }
    // IPv6 clients hash by /56.
    let a = texts(&ask(
        &e,
        "aff.tm.example",
        1,
        Some("2001:db8:1:100::1"),
        None,
    ))[0]
        .clone();
    let b = texts(&ask(
        &e,
        "aff.tm.example",
        1,
        Some("2001:db8:1:1ff::9"),
        None,
    ))[0]
        .clone();
    assert_eq!(a, b);
    assert_eq!(
        ask(&e, "aff.tm.example", 1, Some("2001:db8:1:100::1"), None).scope,
        56
    );
}

#[test]
fn nested_profiles_follow_their_children() {
    let e = methods();
    assert_eq!(
        texts(&ask(&e, "parent.tm.example", 1, None, None)),
        ["eu1.example."]
    );
    // The child answers through the parent's name.
    e.set_monitor_status("eu", "eu1", MonitorStatus::Degraded)
        .unwrap();
    // min_children = 2: one child endpoint down makes "to-eu" degraded.
    assert_eq!(
        texts(&ask(&e, "parent.tm.example", 1, None, None)),
        ["us1.example."]
    );
    assert_eq!(
        ep_status(&e, "parent.tm.example", "to-eu")["status"],
        "Degraded"
    );
    assert_eq!(
        ep_status(&e, "parent.tm.example", "to-us")["status"],
        "Online"
    );
    e.set_monitor_status("eu", "eu1", MonitorStatus::Online)
        .unwrap();
    assert_eq!(
        texts(&ask(&e, "parent.tm.example", 1, None, None)),
        ["eu1.example."]
    );
    // The child itself keeps answering at its own name.
    assert_eq!(
        texts(&ask(&e, "us.tm.example", 1, None, None)),
        ["us1.example."]
    );
}

#[test]
fn geographic_by_country_continent_and_world() {
    let cfg = format!(
        "[engine]\ngeoip_db = \"{}\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"geo\"\nrouting = \"geographic\"\n\
         [[profile.endpoint]]\nname = \"us\"\ntarget = \"us.example\"\ngeo = [\"US\", \"CA\"]\n\
         [[profile.endpoint]]\nname = \"europe\"\ntarget = \"europe.example\"\ngeo = [\"EU\"]\n\
         [[profile.endpoint]]\nname = \"gb\"\ntarget = \"gb.example\"\ngeo = [\"GB\"]\nenabled = false\n\
         [[profile.endpoint]]\nname = \"world\"\ntarget = \"world.example\"\ngeo = [\"WORLD\"]\n\
         [[profile]]\nname = \"geo-strict\"\nrouting = \"geographic\"\n\
         [[profile.endpoint]]\nname = \"us\"\ntarget = \"us.example\"\ngeo = [\"NA\"]\n",
        data("geo-sample.mmdb").display()
    );
    let e = Engine::from_toml(&cfg, None).unwrap();
    let a = |c: &str| texts(&ask(&e, "geo.tm.example", 1, Some(c), None));
    assert_eq!(a("8.8.8.8"), ["us.example."]);
    // GB's own endpoint is disabled: the continent's answers.
    assert_eq!(a("81.2.69.160"), ["europe.example."]);
    assert_eq!(a("1.1.1.1"), ["world.example."]);
    assert_eq!(a("2001:4860:4860::8888"), ["us.example."]);
    // A degraded endpoint that matches is still answered (as Azure).
    e.set_monitor_status("geo", "us", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(a("8.8.8.8"), ["us.example."]);
    // By ECS, with the GeoIP network's prefix as the scope.
    let o = ask(
        &e,
        "geo.tm.example",
        1,
        Some("127.0.0.1"),
        Some(("81.2.69.0", 24)),
    );
    assert_eq!(texts(&o), ["europe.example."]);
    assert!(o.scope > 0 && o.scope <= 24, "{}", o.scope);
    // Nothing matches: NODATA.
    let o = ask(&e, "geo-strict.tm.example", 1, Some("1.1.1.1"), None);
    assert_eq!((o.rcode, o.answer.len()), (Rcode::NoError, 0));
    assert_eq!(
        texts(&ask(&e, "geo-strict.tm.example", 1, Some("8.8.8.8"), None)),
        ["us.example."]
    );
}

#[test]
fn performance_parent_over_priority_and_weighted_children() {
    let cfg = "[engine]\nlatency_table = \"latency.csv\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
        [[profile]]\nname = \"top\"\nrouting = \"performance\"\n\
        [[profile.endpoint]]\nname = \"us\"\nprofile = \"us-pool\"\nlocation = \"eastus\"\n\
        [[profile.endpoint]]\nname = \"eu\"\nprofile = \"eu-pool\"\nlocation = \"westeurope\"\n\
        [[profile]]\nname = \"us-pool\"\nrouting = \"priority\"\n\
        [[profile.endpoint]]\nname = \"a\"\ntarget = \"us-a.example\"\n[[profile.endpoint]]\nname = \"b\"\ntarget = \"us-b.example\"\n\
        [[profile]]\nname = \"eu-pool\"\nrouting = \"weighted\"\n\
        [[profile.endpoint]]\nname = \"a\"\ntarget = \"eu-a.example\"\n";
    let e = Engine::from_toml(cfg, Some(&data(""))).unwrap();
    assert_eq!(
        texts(&ask(&e, "top.tm.example", 1, Some("127.0.0.2"), None)),
        ["us-a.example."]
    );
    assert_eq!(
        texts(&ask(&e, "top.tm.example", 1, Some("127.0.0.1"), None)),
        ["eu-a.example."]
    );
    e.set_monitor_status("us-pool", "a", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(
        texts(&ask(&e, "top.tm.example", 1, Some("127.0.0.2"), None)),
        ["us-b.example."]
    );
    e.set_monitor_status("us-pool", "b", MonitorStatus::Degraded)
        .unwrap();
    // The whole US pool is down: the parent moves to the next best region.
    assert_eq!(
        texts(&ask(&e, "top.tm.example", 1, Some("127.0.0.2"), None)),
        ["eu-a.example."]
    );
}

/// A nested two-level profile fails over when the child's endpoints go down
/// (real HTTP probes), and comes back when they recover.
#[test]
fn nested_failover_with_real_probes() {
    use common::backend::{Backend, Mode};
    let a1 = Backend::start(Mode::Status(200));
    let a2 = Backend::start(Mode::Status(200));
    let b1 = Backend::start(Mode::Status(200));
    let mon = "[profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 0\n";
    let cfg = format!(
        "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"app\"\nrouting = \"priority\"\n\
         [[profile.endpoint]]\nname = \"primary-site\"\nprofile = \"site-a\"\n\
         [[profile.endpoint]]\nname = \"backup-site\"\nprofile = \"site-b\"\n\
         [[profile]]\nname = \"site-a\"\nrouting = \"weighted\"\n{mon}\
         [[profile.endpoint]]\nname = \"a1\"\naddresses = [\"192.0.2.11\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n\
         [[profile.endpoint]]\nname = \"a2\"\naddresses = [\"192.0.2.12\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n\
         [[profile]]\nname = \"site-b\"\nrouting = \"priority\"\n{mon}\
         [[profile.endpoint]]\nname = \"b1\"\naddresses = [\"192.0.2.21\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n",
        a1.port, a2.port, b1.port
    );
    let e = Engine::from_toml(&cfg, None).unwrap();
    assert!(e.wait_ready(std::time::Duration::from_secs(10)));
    let site = |e: &Engine| texts(&ask(e, "app.tm.example", 1, None, None))[0].clone();
    assert!(site(&e).starts_with("192.0.2.1"), "{}", site(&e));
    a1.set(Mode::Status(500));
    // One child endpoint down: the child still has one online, so site A serves a2.
    wait_for(10, "a1 degraded", || {
        ep_status(&e, "site-a.tm.example", "a1")["status"] == "Degraded"
    });
    for _ in 0..50 {
        assert_eq!(site(&e), "192.0.2.12");
    }
    a2.set(Mode::Status(500));
    wait_for(10, "failover to site B", || site(&e) == "192.0.2.21");
    assert_eq!(
        ep_status(&e, "app.tm.example", "primary-site")["status"],
        "Degraded"
    );
    a2.set(Mode::Status(200));
    wait_for(10, "back to site A", || site(&e) == "192.0.2.12");
    assert_eq!(
        ep_status(&e, "app.tm.example", "primary-site")["status"],
        "Online"
    );
}

#[test]
fn wire_ecs_scope_per_method() {
    use hickory_proto::op::{Edns, Message, Query as HQ};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
    use hickory_proto::rr::{Name, RecordType};
    let e = methods();
    let scope = |name: &str, ecs: (&str, u8)| {
        let mut m = Message::query();
        m.add_query(HQ::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let mut ed = Edns::new();
        ed.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                ecs.0.parse().unwrap(),
                ecs.1,
                0,
            )));
        m.edns = Some(ed);
        let mut out = [0u8; 1232];
        let n = e
            .answer_message(
                &m.to_vec().unwrap(),
                Some("127.0.0.1".parse().unwrap()),
                false,
                &mut out,
            )
            .unwrap();
        let r = Message::from_vec(&out[..n]).unwrap();
        match r.edns.unwrap().option(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => (r.answers[0].data.to_string(), s.scope_prefix()),
            _ => panic!("no ECS echoed"),
        }
    };
    assert_eq!(
        scope("sub.tm.example", ("10.1.2.0", 24)),
        ("ten-one.example.".into(), 16)
    );
    assert_eq!(scope("aff.tm.example", ("198.51.100.0", 24)).1, 24);
    assert_eq!(scope("mv.tm.example", ("198.51.100.0", 24)).1, 0);
    assert_eq!(scope("parent.tm.example", ("198.51.100.0", 24)).1, 0);
}
