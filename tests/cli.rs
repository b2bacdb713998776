//! The `trafficmgr` command as a process: `check` on good and broken
//! configs (output and exit status), `explain` for every routing method
//! compared with what `Engine::lookup` answers for the same query, `status`
//! against a running engine's own control listener, the
//! admin-state file commands, and `--help` of every subcommand.

mod common;

use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use trafficmgr::admin_file::{AdminFile, Setting};
use trafficmgr::{Engine, Query};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trafficmgr"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo.toml")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---- check ---------------------------------------------------------------

#[test]
fn check_summarises_the_demo_config() {
    let o = run(&["check", s(&demo())]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    println!("{text}");
    assert!(text.contains("demo.toml: OK"), "{text}");
    assert!(text.contains("zones: 1 (trafficmanager.example)"), "{text}");
    assert!(
        text.contains("profiles: 4 (performance 1, priority 2, weighted 1)"),
        "{text}"
    );
    assert!(text.contains("endpoints: 9 (2 probed, 0 nested)"), "{text}");
    let csv = demo().with_file_name("demo-latency.csv");
    let size = std::fs::metadata(&csv).unwrap().len();
    assert!(
        text.contains(&format!(
            "engine.latency_table: {} ({size} bytes, 5 prefixes, 3 regions)",
            csv.display()
        )),
        "{text}"
    );
    assert!(!text.contains("warning"), "{text}");
}

#[test]
fn check_json_is_one_object_with_the_same_figures() {
    let o = run(&["check", s(&demo()), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["zones"], serde_json::json!(["trafficmanager.example"]));
    assert_eq!(v["profiles"], 4);
    assert_eq!(v["profiles_by_method"]["priority"], 2);
    assert_eq!(v["endpoints"], 9);
    assert_eq!(v["probed_endpoints"], 2);
    let f = &v["data_files"][0];
    assert_eq!(f["key"], "engine.latency_table");
    assert_eq!(f["entries"], 5);
    assert_eq!(f["regions"], 3);
    // The test fixtures: the subnet prefixes and the GeoIP database are counted.
    let o = run(&["check", s(&data("methods.toml")), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["profiles_by_method"]["subnet"], 2);
    assert_eq!(v["subnet_prefixes"], 4);
    assert!(v["nested_endpoints"].as_u64().unwrap() >= 2);
    let dir = fresh_dir("cli-check-geo");
    let cfg = geo_config(&dir);
    let o = run(&["check", s(&cfg), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    let f = &v["data_files"][0];
    assert_eq!(f["key"], "engine.geoip_db");
    assert_eq!(
        f["bytes"],
        std::fs::metadata(data("geo-sample.mmdb")).unwrap().len()
    );
    assert!(f["entries"].as_u64().unwrap() >= 10, "{f}");
    let o = run(&["check", s(&data("basic.toml"))]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[test]
fn check_prints_warnings_and_still_succeeds() {
    let dir = fresh_dir("cli-check-warn");
    let cfg = dir.join("tm.toml");
    std::fs::write(
        &cfg,
        "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"app\"\nrouting = \"priority\"\n\
         [profile.monitor]\nprotocol = \"https\"\nheaders = { Authorization = \"Bearer x\" }\n\
         [[profile.endpoint]]\nname = \"primary\"\ntarget = \"primary.example\"\n",
    )
    .unwrap();
    let o = run(&["check", s(&cfg)]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains(&format!(
            "warning: {}:9:",
            cfg.display()
        )) && text.contains("profile[0].monitor.headers.Authorization: header `Authorization` looks like a secret"),
        "{text}"
    );
    let o = run(&["check", s(&cfg), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v}");
}

const GOOD: &str = "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
    [[profile]]\nname = \"app\"\nrouting = \"priority\"\n\
    [[profile.endpoint]]\nname = \"a\"\ntarget = \"a.example\"\n";

/// Each class of error: exit 1, one line `file:line:col: key path: message`
/// on stderr, and the same parts in `--json`.
#[test]
fn check_names_each_error_with_file_line_col_and_key_path() {
    let dir = fresh_dir("cli-check-bad");
    let cases: [(&str, String, &str, usize, usize, &str); 4] = [
        (
            "syntax",
            GOOD.replace("[[profile]]\n", "[[profile]\n"),
            "",
            4,
            0,
            "",
        ),
        (
            "unknown-key",
            GOOD.replace(
                "routing = \"priority\"\n",
                "routing = \"priority\"\ncolour = 1\n",
            ),
            "profile[0].colour",
            7,
            1,
            "unknown field `colour`",
        ),
        (
            "bad-value",
            GOOD.replace(
                "target = \"a.example\"\n",
                "target = \"a.example\"\nweight = 1001\n",
            ),
            "profile[0].endpoint[0].weight",
            10,
            1,
            "out of range 0..=1000",
        ),
        (
            "missing-data-file",
            format!("[engine]\nlatency_table = \"nope.csv\"\n{GOOD}"),
            "engine.latency_table",
            0,
            0,
            "cannot read the latency table",
        ),
    ];
    for (tag, text, path, line, col, msg) in cases {
        let cfg = dir.join(format!("{tag}.toml"));
        std::fs::write(&cfg, &text).unwrap();
        let o = run(&["check", s(&cfg)]);
        let e = err(&o);
        println!("{tag}: {e}");
        assert_eq!(o.status.code(), Some(1), "{tag}: {e}");
        assert!(out(&o).is_empty(), "{tag}");
        assert_eq!(e.lines().count(), 1, "{tag}: {e}");
        // The engine's own error, word for word.
        let engine_err = Engine::from_file(&cfg).unwrap_err();
        assert_eq!(e.trim_end(), engine_err.to_string(), "{tag}");
        let o = run(&["check", s(&cfg), "--json"]);
        assert_eq!(o.status.code(), Some(1), "{tag}");
        let v: Value = serde_json::from_str(&out(&o)).unwrap();
        assert_eq!(v["ok"], false);
        let j = &v["errors"][0];
        assert_eq!(j["text"], engine_err.to_string());
        assert_eq!(j["path"], path, "{tag}: {j}");
        if tag == "missing-data-file" {
            assert!(j["file"].as_str().unwrap().ends_with("nope.csv"), "{j}");
            assert!(e.contains(": engine.latency_table: "), "{e}");
        } else {
            assert_eq!(j["file"], cfg.display().to_string(), "{tag}");
            assert!(
                e.starts_with(&format!("{}:{}:", cfg.display(), j["line"])),
                "{tag}: {e}"
            );
        }
        if line > 0 {
            assert_eq!(j["line"], line, "{tag}: {j}");
        }
        if col > 0 {
            assert_eq!(j["col"], col, "{tag}: {j}");
        }
        assert!(j["message"].as_str().unwrap().contains(msg), "{tag}: {j}");
    }
    // A missing config file.
    let o = run(&["check", s(&dir.join("absent.toml"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("absent.toml"), "{}", err(&o));
}

// ---- explain -------------------------------------------------------------

fn geo_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("geo.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ngeoip_db = \"{}\"\n\
             [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"geo\"\nrouting = \"geographic\"\n\
             [[profile.endpoint]]\nname = \"gb\"\ntarget = \"gb.example\"\ngeo = [\"GB\"]\n\
             [[profile.endpoint]]\nname = \"europe\"\ntarget = \"europe.example\"\ngeo = [\"EU\"]\n\
             [[profile.endpoint]]\nname = \"world\"\ntarget = \"world.example\"\ngeo = [\"WORLD\"]\n\
             [[profile]]\nname = \"near\"\nrouting = \"performance\"\n\
             [[profile.endpoint]]\nname = \"us\"\ntarget = \"us.example\"\nlocation = \"eastus\"\n\
             [[profile.endpoint]]\nname = \"eu\"\ntarget = \"eu.example\"\nlocation = \"westeurope\"\n",
            data("geo-sample.mmdb").display()
        ),
    )
    .unwrap();
    cfg
}

/// `explain --json` for one query.
fn explain(cfg: &Path, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["explain", s(cfg), name, "--json"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", err(&o));
    serde_json::from_str(&out(&o)).unwrap()
}

/// What the engine answers for the same query, as explain prints records.
fn engine_answer(
    e: &Engine,
    name: &str,
    qtype: u16,
    client: Option<&str>,
    ecs: Option<(&str, u8)>,
) -> (Vec<String>, u8) {
    let q = Query {
        name: name.as_bytes(),
        qtype,
        client: client.map(|c| c.parse().unwrap()),
        ecs: ecs.map(|(a, p)| (a.parse().unwrap(), p)),
    };
    e.lookup(&q, |a, n| {
        let owner = format!("{}.", String::from_utf8_lossy(n.as_bytes()));
        (
            a.records
                .iter()
                .map(|r| {
                    format!(
                        "{owner} {} IN {} {}",
                        // What the hosts write: capped by ttl_unstable while unsteady.
                        a.ttl(r),
                        trafficmgr::answer::records::type_name(r.rtype),
                        r.text()
                    )
                })
                .collect(),
            a.scope_prefix,
        )
    })
    .unwrap()
}

/// Explains the query and checks that its records and scope are the engine's.
fn same_as_engine(
    cfg: &Path,
    e: &Engine,
    name: &str,
    qtype: (&str, u16),
    client: Option<&str>,
    ecs: Option<(&str, u8)>,
) -> Value {
    let mut extra = vec!["--type".to_string(), qtype.0.to_string()];
    if let Some(c) = client {
        extra.extend(["--client".to_string(), c.to_string()]);
    }
    if let Some((a, p)) = ecs {
        extra.extend(["--ecs".to_string(), format!("{a}/{p}")]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let x = explain(cfg, name, &extra);
    let (records, scope) = engine_answer(e, name, qtype.1, client, ecs);
    assert!(!records.is_empty(), "{name}: the engine answers nothing");
    let got: Vec<String> = x["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, records, "{name} {extra:?}: {x}");
    assert_eq!(x["scope"], scope, "{name} {extra:?}: {x}");
    x
}

fn chosen(x: &Value, depth: usize) -> Vec<String> {
    x["decisions"][depth]["chosen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn endpoint<'a>(x: &'a Value, depth: usize, name: &str) -> &'a Value {
    x["decisions"][depth]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap()
}

#[test]
fn explain_priority_and_multivalue_agree_with_the_engine() {
    let basic = data("basic.toml");
    let e = Engine::from_file(&basic).unwrap();
    let x = same_as_engine(&basic, &e, "prio.tm.example", ("A", 1), None, None);
    assert_eq!(x["zone"], "tm.example.");
    assert_eq!(x["decisions"][0]["profile"], "prio.tm.example.");
    assert_eq!(x["decisions"][0]["routing"], "priority");
    assert_eq!(chosen(&x, 0), ["primary"]);
    assert_eq!(endpoint(&x, 0, "primary")["candidate"], true);
    assert_eq!(endpoint(&x, 0, "secondary")["priority"], 2);
    assert_eq!(x["scope"], 0);

    let methods = data("methods.toml");
    let e = Engine::from_file(&methods).unwrap();
    for t in [("A", 1), ("AAAA", 28), ("ANY", 255)] {
        let x = same_as_engine(&methods, &e, "mv.tm.example", t, None, None);
        assert_eq!(x["decisions"][0]["outcome"], "endpoints");
        assert_eq!(chosen(&x, 0), ["m1", "m2", "m3", "m4"], "{t:?}");
    }
}

#[test]
fn explain_weighted_with_affinity_agrees_with_the_engine() {
    let methods = data("methods.toml");
    let e = Engine::from_file(&methods).unwrap();
    for c in ["198.51.100.7", "203.0.113.9", "10.9.8.7", "2001:db8:77::1"] {
        let x = same_as_engine(&methods, &e, "aff.tm.example", ("A", 1), Some(c), None);
        let ch = chosen(&x, 0);
        assert_eq!(ch.len(), 1);
        let ep = endpoint(&x, 0, &ch[0]);
        assert_eq!(ep["figures"][0]["kind"], "affinity_score", "{x}");
        assert!(x["scope_why"].as_str().unwrap().contains("affinity"), "{x}");
    }
}

#[test]
fn explain_performance_shows_latency_figures_and_the_scope() {
    let cfg = demo();
    let e = Engine::from_file(&cfg).unwrap();
    for (client, ecs) in [
        (Some("198.51.100.7"), None),
        (Some("127.0.0.1"), Some(("203.0.113.0", 24))),
        (None, Some(("192.0.2.0", 24))),
        (None, Some(("2001:db8:1::", 48))),
    ] {
        let x = same_as_engine(
            &cfg,
            &e,
            "contoso.trafficmanager.example",
            ("A", 1),
            client,
            ecs,
        );
        let d = &x["decisions"][0];
        assert_eq!(d["routing"], "performance");
        // The chosen endpoint has the lowest figure of the three.
        let ms = |n: &str| endpoint(&x, 0, n)["figures"][0]["rtt_ms"].as_u64().unwrap();
        let best = chosen(&x, 0)[0].clone();
        for n in ["us", "eu", "asia"] {
            assert_eq!(endpoint(&x, 0, n)["figures"][0]["source"], "latency_table");
            assert!(ms(&best) <= ms(n), "{x}");
        }
        assert!(
            x["scope_why"].as_str().unwrap().contains("latency table"),
            "{x}"
        );
    }
    // The text form names the figures and the choice.
    let o = run(&[
        "explain",
        s(&cfg),
        "contoso.trafficmanager.example",
        "--ecs",
        "203.0.113.0/24",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = out(&o);
    println!("{text}");
    assert!(text.contains("ms (latency table)"), "{text}");
    assert!(text.contains("chose: "), "{text}");
    assert!(
        text.contains("contoso.trafficmanager.example. 60 IN CNAME contoso-"),
        "{text}"
    );
}

#[test]
fn explain_geographic_and_distance_agree_with_the_engine() {
    let dir = fresh_dir("cli-explain-geo");
    let cfg = geo_config(&dir);
    let e = Engine::from_file(&cfg).unwrap();
    // 81.2.69.160 is GB; 5.62.60.1 is DE (Europe); 8.8.8.8 is US (WORLD).
    for (client, want, level) in [
        ("81.2.69.160", "gb", "country"),
        ("5.62.60.1", "europe", "continent"),
        ("8.8.8.8", "world", "world"),
    ] {
        let x = same_as_engine(&cfg, &e, "geo.tm.example", ("A", 1), Some(client), None);
        assert_eq!(chosen(&x, 0), [want], "{x}");
        assert_eq!(endpoint(&x, 0, want)["figures"][0]["level"], level, "{x}");
        assert!(
            x["decisions"][0]["client"][0]
                .as_str()
                .unwrap()
                .starts_with("GeoIP: country"),
            "{x}"
        );
    }
    // Performance without a latency table: the distance estimate.
    let x = same_as_engine(
        &cfg,
        &e,
        "near.tm.example",
        ("A", 1),
        Some("81.2.69.160"),
        None,
    );
    assert_eq!(chosen(&x, 0), ["eu"]);
    let f = &endpoint(&x, 0, "eu")["figures"][0];
    assert_eq!(f["source"], "distance");
    assert!(f["km"].as_f64().unwrap() > 0.0, "{f}");
}

#[test]
fn explain_subnet_with_client_and_ecs_agrees_with_the_engine() {
    let methods = data("methods.toml");
    let e = Engine::from_file(&methods).unwrap();
    let x = same_as_engine(
        &methods,
        &e,
        "sub.tm.example",
        ("A", 1),
        Some("10.1.2.3"),
        None,
    );
    assert_eq!(chosen(&x, 0), ["ten-one"]);
    assert_eq!(
        endpoint(&x, 0, "ten-one")["figures"][0]["prefix"],
        "10.1.0.0/16"
    );
    // ECS wins over the client address.
    let x = same_as_engine(
        &methods,
        &e,
        "sub.tm.example",
        ("A", 1),
        Some("10.1.2.3"),
        Some(("10.200.0.0", 16)),
    );
    assert_eq!(chosen(&x, 0), ["ten"]);
    assert_eq!(x["routing_address"], "10.200.0.0");
    assert_eq!(x["source_prefix"], 16);
    // The catch-all.
    let x = same_as_engine(
        &methods,
        &e,
        "sub.tm.example",
        ("A", 1),
        Some("192.0.2.1"),
        None,
    );
    assert_eq!(chosen(&x, 0), ["rest"]);
    assert_eq!(
        endpoint(&x, 0, "rest")["figures"][0]["kind"],
        "subnet_default"
    );
    assert!(
        x["scope_why"].as_str().unwrap().contains("catch-all"),
        "{x}"
    );
}

#[test]
fn explain_nested_shows_each_level() {
    let methods = data("methods.toml");
    let e = Engine::from_file(&methods).unwrap();
    let x = same_as_engine(&methods, &e, "parent.tm.example", ("A", 1), None, None);
    let d = x["decisions"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{x}");
    assert_eq!(d[0]["profile"], "parent.tm.example.");
    assert_eq!(d[1]["profile"], "eu.tm.example.");
    assert_eq!(d[1]["depth"], 1);
    assert_eq!(chosen(&x, 0), ["to-eu"]);
    assert_eq!(chosen(&x, 1), ["eu1"]);
}

#[test]
fn explain_names_outside_profiles_and_bad_queries() {
    let basic = data("basic.toml");
    let x = explain(&basic, "tm.example", &["--type", "SOA"]);
    assert_eq!(x["place"], "the zone apex");
    assert_eq!(
        x["records"][0].as_str().unwrap().split(' ').nth(3),
        Some("SOA")
    );
    let x = explain(&basic, "nope.tm.example", &[]);
    assert_eq!(x["rcode"], "NXDOMAIN");
    assert_eq!(x["authority"].as_array().unwrap().len(), 1);
    let x = explain(&basic, "www.other.example", &[]);
    assert_eq!(x["rcode"], "REFUSED");
    // Usage errors: exit 2.
    for args in [
        &[
            "explain",
            s(&basic),
            "prio.tm.example",
            "--ecs",
            "10.0.0.0/33",
        ][..],
        &["explain", s(&basic), "prio.tm.example", "--type", "NOPE"][..],
        &["explain", s(&basic)][..],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }
    // A broken config: exit 1 with its error.
    let o = run(&["explain", "/nonexistent/tm.toml", "a.example"]);
    assert_eq!(o.status.code(), Some(1));
}

// ---- status --------------------------------------------------------------

/// `basic.toml` in an engine with its control listener on a free loopback
/// port: the `/status` that `status` and `explain --control` read is the
/// engine's own listener's. Returns the engine and `IP:port`.
fn engine_with_control() -> (Engine, String) {
    let port = common::dns::free_port();
    let addr = format!("127.0.0.1:{port}");
    let text = std::fs::read_to_string(data("basic.toml"))
        .unwrap()
        .replacen(
            "[engine]\n",
            &format!("[engine]\ncontrol = \"{addr}\"\n"),
            1,
        );
    let e = Engine::from_toml(&text, Some(&data("basic.toml").with_file_name(""))).unwrap();
    wait_for(10, "the control listener", || {
        status(&e)["control"]["listening"] == true
    });
    // The first maintenance turn done: the report no longer changes by itself.
    assert!(e.wait_ready(std::time::Duration::from_secs(10)));
    (e, addr)
}

#[test]
fn status_shows_a_running_engines_endpoints() {
    let (e, addr) = engine_with_control();
    e.set_admin_state("prio", "secondary", trafficmgr::health::AdminState::Drain)
        .unwrap();
    let o = run(&["status", "--control", &addr]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    println!("{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("prio.tm.example") && l.contains("secondary"))
        .unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &cols[3..7],
        ["secondary", "Online", "drain", "no"],
        "{line}"
    );
    let o = run(&["status", "--control", &addr, "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v, serde_json::from_str::<Value>(&e.status_json()).unwrap());
    // Nobody listening: exit 1, saying where it looked.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let o = run(&["status", "--control", &gone, "--timeout", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains(&gone), "{}", err(&o));
}

/// `explain --control`: the states of a running engine (its status report
/// over HTTP) decide, as they do in that engine.
#[test]
fn explain_takes_live_states_from_a_running_engine() {
    let basic = data("basic.toml");
    let (e, addr) = engine_with_control();
    e.set_monitor_status("prio", "primary", trafficmgr::MonitorStatus::Degraded)
        .unwrap();
    let x = explain(&basic, "prio.tm.example", &["--control", &addr]);
    assert_eq!(chosen(&x, 0), ["secondary"], "{x}");
    assert_eq!(endpoint(&x, 0, "primary")["state"], "Degraded");
    assert_eq!(endpoint(&x, 0, "primary")["candidate"], false);
    let (records, _) = engine_answer(&e, "prio.tm.example", 1, None, None);
    assert_eq!(x["records"], serde_json::json!(records));
    // Without it, the config's view: the primary.
    let x = explain(&basic, "prio.tm.example", &[]);
    assert_eq!(chosen(&x, 0), ["primary"]);
    // A drained endpoint, read back from the engine.
    e.set_admin_state("prio", "secondary", trafficmgr::health::AdminState::Drain)
        .unwrap();
    let x = explain(&basic, "prio.tm.example", &["--control", &addr]);
    assert_eq!(endpoint(&x, 0, "secondary")["state"], "Drained");
    assert_eq!(endpoint(&x, 0, "secondary")["admin"], "drain");
    let (records, _) = engine_answer(&e, "prio.tm.example", 1, None, None);
    assert_eq!(x["records"], serde_json::json!(records), "{x}");
    // Answering fail-open: the short TTL, and explain says why.
    assert_eq!(
        x["decisions"][0]["ttl"], "ttl_unstable 10 s: no endpoint is online (fail-open)",
        "{x}"
    );
}

// ---- the admin-state file --------------------------------------------------

fn admin(args: &[&str], file: &Path) -> Output {
    let mut a = args.to_vec();
    a.extend(["--admin-file", s(file)]);
    run(&a)
}

fn entries(file: &Path) -> Vec<(String, Setting)> {
    AdminFile::read(file)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| (e.pattern, e.setting))
        .collect()
}

#[test]
fn admin_commands_edit_the_file() {
    let dir = fresh_dir("cli-admin");
    let f = dir.join("admin.toml");
    for (cmd, pat, setting) in [
        ("drain", "app/*", Setting::Drain),
        ("disable", "*/eu-*", Setting::Disabled),
        ("enable", "app/canary", Setting::Enabled),
        ("up", "api.tm.example/fra", Setting::Up),
        ("down", "app/?x", Setting::Down),
    ] {
        let o = admin(&[cmd, pat], &f);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", err(&o));
        assert!(entries(&f).contains(&(pat.to_string(), setting)), "{cmd}");
    }
    assert_eq!(entries(&f).len(), 5);
    // A key holds one setting: `up` replaces `drain`.
    assert_eq!(admin(&["up", "app/*"], &f).status.code(), Some(0));
    assert!(entries(&f).contains(&("app/*".to_string(), Setting::Up)));
    assert_eq!(entries(&f).len(), 5);
    // restore removes the key as written.
    let o = admin(&["restore", "app/*"], &f);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("removed"), "{}", out(&o));
    assert!(!entries(&f).iter().any(|(p, _)| p == "app/*"));
    let o = admin(&["restore", "app/*"], &f);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("nothing to restore"), "{}", out(&o));
    assert_eq!(entries(&f).len(), 4);
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn admin_commands_refuse_bad_patterns_and_broken_files() {
    let dir = fresh_dir("cli-admin-bad");
    let f = dir.join("admin.toml");
    assert_eq!(admin(&["drain", "app/eu"], &f).status.code(), Some(0));
    let before = std::fs::read(&f).unwrap();
    // Bad patterns: usage errors (exit 2), the file untouched.
    for p in ["noslash", "a/b/c", "/eu", "app/", "app/e u"] {
        let o = admin(&["drain", p], &f);
        assert_eq!(o.status.code(), Some(2), "{p}: {}", err(&o));
        assert_eq!(std::fs::read(&f).unwrap(), before, "{p}");
    }
    // A broken file (a bad state, a syntax error) is never overwritten: exit 1.
    for broken in ["\"app/eu\" = \"sleeping\"\n", "\"app/eu\" = \n"] {
        std::fs::write(&f, broken).unwrap();
        let o = admin(&["disable", "app/x"], &f);
        assert_eq!(o.status.code(), Some(1), "{broken}: {}", err(&o));
        assert!(err(&o).contains(s(&f)), "{}", err(&o));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), broken);
    }
    // With --config, a pattern must name an endpoint; the result is shown.
    let g = dir.join("admin2.toml");
    let basic = data("basic.toml");
    let o = admin(&["drain", "nope/*", "--config", s(&basic)], &g);
    assert_eq!(o.status.code(), Some(1));
    assert!(!g.exists());
    let o = admin(&["drain", "prio/*", "--config", s(&basic)], &g);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("prio.tm.example/primary: admin drain, monitor from probes"),
        "{text}"
    );
    assert!(
        text.contains("prio.tm.example/secondary: admin drain"),
        "{text}"
    );
}

/// Thirty `trafficmgr drain` processes at once on one file, each its own
/// key: every key is there after (before, each read the file, added its
/// key and renamed its copy over the others': 6 of 30 were left).
#[test]
fn racing_admin_commands_lose_no_key() {
    let dir = fresh_dir("cli-admin-race");
    let f = dir.join("admin.toml");
    let children: Vec<_> = (0..30)
        .map(|i| {
            bin()
                .args(["drain", &format!("app/e{i}"), "--admin-file", s(&f)])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let keys = entries(&f);
    assert_eq!(keys.len(), 30, "{keys:?}");
    // Nothing but the file is left in the folder.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// An admin file that is a symbolic link (to a file kept elsewhere, or not
/// made yet): the edit goes to the file it points to and the link stays
/// (before, the rename replaced the link with a regular file and the
/// target never changed).
#[test]
fn admin_commands_follow_a_symlinked_file() {
    let dir = fresh_dir("cli-admin-link");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let target = dir.join("state/admin.toml");
    let link = dir.join("admin.toml");
    std::os::unix::fs::symlink("state/admin.toml", &link).unwrap();
    // Dangling at first: the target is made.
    let o = admin(&["drain", "app/eu"], &link);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        entries(&target),
        vec![("app/eu".to_string(), Setting::Drain)]
    );
    let o = admin(&["down", "app/us"], &link);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(entries(&target).len(), 2);
    assert_eq!(entries(&link), entries(&target));
}

/// The operator is told what an edit did not do: a pattern set without
/// `--config` was not checked against any endpoint, and a `restore` of
/// one endpoint that other keys (a glob) still cover leaves it covered
/// (before, both were silent: `drain app/typo` said only that the key was
/// set, and `restore app/eu` "removed" while `app/*` kept it drained).
#[test]
fn admin_commands_say_what_the_edit_does_not_do() {
    let dir = fresh_dir("cli-admin-notes");
    let f = dir.join("admin.toml");
    let o = admin(&["drain", "app/typo"], &f);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        err(&o).contains("app/typo was not checked against a config"),
        "{}",
        err(&o)
    );
    assert_eq!(admin(&["drain", "app/*"], &f).status.code(), Some(0));
    assert_eq!(admin(&["down", "*/eu"], &f).status.code(), Some(0));
    assert_eq!(admin(&["drain", "app/eu"], &f).status.code(), Some(0));
    let o = admin(&["restore", "app/eu"], &f);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("removed \"app/eu\""), "{}", out(&o));
    let e = err(&o);
    assert!(
        e.contains("\"app/*\" = \"drain\" still applies to app/eu")
            && e.contains("\"*/eu\" = \"down\" still applies to app/eu"),
        "{e}"
    );
    assert!(!e.contains("app/typo"), "{e}");
    // Nothing else covers it: no note.
    assert_eq!(admin(&["drain", "web/x"], &f).status.code(), Some(0));
    let o = admin(&["restore", "web/x"], &f);
    assert_eq!(o.status.code(), Some(0));
    assert!(!err(&o).contains("still applies"), "{}", err(&o));
}

/// `check` on a config whose admin-state file is broken: still exit 0 (an
/// engine starts with it, without its overrides) but a warning names the
/// file and the error; before, `check` said OK and nothing of it.
#[test]
fn check_warns_of_a_broken_admin_file() {
    let dir = fresh_dir("cli-check-admin");
    let text = basic_text().replacen("[engine]\n", "[engine]\nadmin_state = \"admin.toml\"\n", 1);
    assert!(
        text.contains("admin_state"),
        "basic.toml has an [engine] table"
    );
    let cfg = dir.join("tm.toml");
    std::fs::write(&cfg, text).unwrap();
    // Missing: no overrides, no warning.
    let o = run(&["check", s(&cfg)]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(!out(&o).contains("admin-state"), "{}", out(&o));
    std::fs::write(dir.join("admin.toml"), "\"app/x\" = ").unwrap();
    let o = run(&["check", s(&cfg)]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("warning: the admin-state file does not load")
            && text.contains("admin.toml:1:"),
        "{text}"
    );
    std::fs::remove_file(dir.join("admin.toml")).unwrap();
    std::fs::create_dir(dir.join("admin.toml")).unwrap();
    let o = run(&["check", s(&cfg), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert!(
        v["warnings"].to_string().contains("not a regular file"),
        "{v}"
    );
}

// ---- help and usage ----------------------------------------------------------

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "check",
        "explain",
        "status",
        "serve",
        "pdns-backend",
        "drain",
        "disable",
        "enable",
        "up",
        "down",
        "restore",
    ] {
        let o = run(&[sub, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{sub}");
        let text = out(&o);
        assert!(text.contains("Usage: trafficmgr "), "{sub}: {text}");
        assert!(text.lines().count() > 5, "{sub}: {text}");
    }
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("pdns-backend"));
    let o = run(&["--version"]);
    assert_eq!(
        out(&o).trim(),
        format!("trafficmgr {}", env!("CARGO_PKG_VERSION"))
    );
    // Usage errors exit 2.
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(run(&["check"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        run(&["serve", "--config", "x.toml", "--rrl-slip", "11"])
            .status
            .code(),
        Some(2)
    );
}
