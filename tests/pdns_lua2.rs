//! PowerDNS Authoritative serves trafficmgr's zones in-process through the
//! lua2 backend and `share/trafficmgr/pdns-lua2.lua` (LuaJIT FFI into
//! `libtrafficmgr.so`): a real `pdns_server` with a bind-backend zone
//! beside it, queried with `dig`; answers compared with the Rust API's for
//! the client address (`dig -b`) and ECS (`+subnet`), with the scope the
//! decision used; a health failover and a live config change; a config
//! that does not load keeps PowerDNS from serving our zones.

mod common;
use common::dns::{dig_raw, free_port};
use common::pdns::Proc;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use trafficmgr::Engine;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn target_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `pdns_server` on 127.0.0.1:`port` with the lua2 backend running the
/// script as installed (the user's two-line file, then `dofile` of
/// `share/trafficmgr/pdns-lua2.lua`) for `config`, beside a bind-backend
/// zone `static.example`. With `zones`, the script gives PowerDNS's zone
/// cache our zones; without, the zone cache is off. Does not wait for it
/// to answer.
fn spawn_pdns_lua2(dir: &Path, config: &Path, zones: Option<&str>, port: u16) -> Proc {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        dir.join("tm.lua"),
        format!(
            "TRAFFICMGR = {{ config = {:?}, lib = {:?}{} }}\ndofile({:?})\n",
            config.display().to_string(),
            target_dir().join("libtrafficmgr.so").display().to_string(),
            zones
                .map(|z| format!(", zones = {{ {z:?} }}"))
                .unwrap_or_default(),
            root.join("share/trafficmgr/pdns-lua2.lua")
                .display()
                .to_string(),
        ),
    )
    .unwrap();
    common::pdns::write_static_zone(dir);
    // The settings the script's header asks for.
    std::fs::write(
        dir.join("pdns.conf"),
        format!(
            "launch=lua2,bind\nlua2-filename={}\nbind-config={}\nlocal-address=127.0.0.1\n\
             local-port={port}\nedns-subnet-processing=yes\ncache-ttl=0\nquery-cache-ttl=0\n\
             negquery-cache-ttl=0\nzone-cache-refresh-interval={}\nsecurity-poll-suffix=\n\
             socket-dir={}\nguardian=no\ndaemon=no\ndisable-syslog=yes\nwebserver=no\napi=no\n",
            dir.join("tm.lua").display(),
            dir.join("named.conf").display(),
            if zones.is_some() { 300 } else { 0 },
            dir.display()
        ),
    )
    .unwrap();
    let child = Command::new("pdns_server")
        .arg(format!("--config-dir={}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("pdns.log")).unwrap(),
        ))
        .spawn()
        .expect("pdns_server (pdns-server, pdns-backend-lua2) is installed");
    Proc(child)
}

/// As [`spawn_pdns_lua2`], once our zone's SOA is answered.
fn start_pdns_lua2(dir: &Path, config: &Path, zones: Option<&str>, port: u16) -> Proc {
    let mut p = spawn_pdns_lua2(dir, config, zones, port);
    wait_for(30, "pdns (lua2) answering", || {
        assert!(
            p.alive(),
            "pdns_server exited: {}",
            std::fs::read_to_string(dir.join("pdns.log")).unwrap_or_default()
        );
        dig_raw(port, "tm.example", "SOA", &[]).0 == "NOERROR"
    });
    p
}

#[test]
fn pdns_lua2_answers_like_the_rust_api() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("pdns-lua2-answers");
    let cfg = basic_in(&dir);
    let port = free_port();
    // Our zones in PowerDNS's zone cache (the recommended setup).
    let _pdns = start_pdns_lua2(&dir, &cfg, Some("tm.example"), port);
    let engine = Engine::from_file(&cfg).unwrap();
    common::pdns::assert_answer_table(port, &engine);
    // Types the engine never holds: the CNAME for a target endpoint, NODATA
    // for an address endpoint, as the Rust API answers them.
    for name in ["prio.tm.example", "addrs.tm.example"] {
        let want = ask(&engine, name, 15, Some("127.0.0.1"), None);
        let (rcode, _, answer, _, _) = dig_raw(port, name, "MX", &[]);
        assert_eq!(rcode, "NOERROR", "{name}");
        assert_eq!(answer, want.answer, "{name}");
    }
    assert_eq!(
        dig_raw(port, "addrs.tm.example", "MX", &[]).2.len(),
        0,
        "NODATA"
    );
}

#[test]
fn pdns_lua2_failover_and_live_change() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("pdns-lua2-life");
    let f = Failover::new(&dir);
    let port = free_port();
    // Without the zones: PowerDNS finds our zone by asking for SOAs.
    let _pdns = start_pdns_lua2(&dir, &f.config, None, port);
    f.exercise(port, "PowerDNS lua2");
    f.exercise_admin(port, "PowerDNS lua2");
}

/// A config that does not load: the script raises at load time, with the
/// engine's message (file:line:col) in PowerDNS's log, and our zones are
/// never served with wrong data.
#[test]
fn pdns_lua2_bad_config_is_refused_with_its_reason() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("pdns-lua2-bad");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[[zone]]\nname = \"tm.example\"\nnameservers = 7\n").unwrap();
    let port = free_port();
    let mut p = spawn_pdns_lua2(&dir, &cfg, Some("tm.example"), port);
    let log = dir.join("pdns.log");
    wait_for(30, "the error in pdns.log", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("bad.toml:3")
    });
    if p.alive() {
        // Still up (PowerDNS retries backends): never an answer of ours.
        let (rcode, _, answer, _, _) = dig_raw(port, "tm.example", "SOA", &[]);
        assert!(answer.is_empty(), "{rcode} {answer:?}");
    }
}
