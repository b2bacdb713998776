//! dnsdist fronts trafficmgr through its Lua FFI (`examples/dnsdist/
//! dnsdist.conf` loading `share/trafficmgr/dnsdist.lua`, per-thread action,
//! one shared engine): a real `dnsdist`
//! on a loopback port, answers compared with the Rust API's (with AA, our
//! TTLs, and the ECS scope the decision used), other names passed to a
//! backend, a health failover and a live config change.

mod common;
use common::dns::{
    BASIC_ROWS, Compare, assert_host_matches, dig_raw, free_port, padded_query, tcp_exchange,
};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use trafficmgr::Engine;

fn target_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The embedded front as dnsdist's backend for other zones.
fn backend_front(dir: &Path) -> (Proc, u16) {
    let cfg = dir.join("other.toml");
    std::fs::write(&cfg, "[[zone]]\nname = \"other.example\"\nnameservers = [\"ns.other.example\"]\n[[profile]]\nname = \"www\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"from-backend.example\"\n").unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_trafficmgr"))
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(20, "backend front", || {
        dig_raw(port, "other.example", "SOA", &[]).0 == "NOERROR"
    });
    (Proc(child), port)
}

fn start_dnsdist(dir: &Path, config: &Path, zones: &[&str], backend: u16) -> (Proc, u16) {
    let port = free_port();
    let zl: Vec<String> = zones.iter().map(|z| format!("\"{z}.\"")).collect();
    // The glue as installed (share/trafficmgr/dnsdist.lua, checked against
    // this header's ABI) and the example dnsdist.conf that loads it, with
    // this test's ports, paths and zones.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let glue = std::fs::read_to_string(root.join("share/trafficmgr/dnsdist.lua"))
        .unwrap()
        .replace("local TM_ABI = 1\n", &format!("local TM_ABI = {}\n", abi()));
    let glue_path = dir.join("dnsdist.lua");
    std::fs::write(&glue_path, glue).unwrap();
    let conf = std::fs::read_to_string(root.join("examples/dnsdist/dnsdist.conf"))
        .unwrap()
        .replace("127.0.0.1:5300", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:5301", &format!("127.0.0.1:{backend}"))
        .replace(
            "/usr/share/trafficmgr/dnsdist.lua",
            &glue_path.display().to_string(),
        )
        .replace(
            "trafficmgr{\n",
            &format!(
                "trafficmgr{{\n  lib = \"{}\",\n",
                target_dir().join("libtrafficmgr.so").display()
            ),
        )
        .replace(
            "/etc/trafficmgr/trafficmgr.toml",
            &config.display().to_string(),
        )
        .replace(
            "{\"trafficmanager.example.\"}",
            &format!("{{{}}}", zl.join(", ")),
        );
    assert!(conf.contains("lib = ") && conf.contains(&glue_path.display().to_string()));
    let path = dir.join("dnsdist.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("dnsdist")
        .args(["--supervised", "--disable-syslog", "-C"])
        .arg(&path)
        .stdout(Stdio::from(
            std::fs::File::create(dir.join("dnsdist.log")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("dnsdist.err")).unwrap(),
        ))
        .spawn()
        .expect("dnsdist is installed");
    wait_for(20, "dnsdist answering", || {
        dig_raw(port, zones[0], "SOA", &[]).0 == "NOERROR"
    });
    (Proc(child), port)
}

fn abi() -> u32 {
    let h = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/trafficmgr.h"),
    )
    .unwrap();
    h.lines()
        .find_map(|l| l.strip_prefix("#define TM_ABI_VERSION "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn dnsdist_answers_like_the_rust_api_with_ecs_scope() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("dnsdist-answers");
    let cfg = basic_in(&dir);
    let (_backend, bport) = backend_front(&dir);
    let (_dd, port) = start_dnsdist(&dir, &cfg, &["tm.example"], bport);
    let engine = Engine::from_file(&cfg).unwrap();
    let table = BASIC_ROWS;
    assert_host_matches(
        port,
        &engine,
        table,
        Compare {
            bind_source: false,
            sorted: false,
            scope: true,
        },
    );
    // The ECS scope BIND cannot give: /24 for the latency row's /24.
    assert_eq!(
        dig_raw(port, "perf.tm.example", "A", &["+subnet=203.0.113.0/24"])
            .4
            .as_deref(),
        Some("203.0.113.0/24/24")
    );
    // Other names go to the backend.
    assert_eq!(
        dig_raw(port, "www.other.example", "A", &[]).2[0].2,
        "from-backend.example."
    );
    // A label holding a dot: a well-formed reply (dig parses it), NXDOMAIN
    // under the zone, the SOA owned by the zone itself.
    let d = dig_raw(port, "x\\.y.tm.example", "A", &[]);
    assert_eq!(d.0, "NXDOMAIN");
    // A TCP query over 4 KB is answered, not cut at 4096 octets.
    let q = padded_query("prio.tm.example.", hickory_proto::rr::RecordType::A, 5048);
    let reply = hickory_proto::op::Message::from_vec(&tcp_exchange(port, &q)).unwrap();
    assert_eq!(reply.metadata.id, 0x4242);
    assert_eq!(
        reply.metadata.response_code,
        hickory_proto::op::ResponseCode::NoError
    );
    assert_eq!(reply.answers.len(), 1);
    assert!(reply.metadata.authoritative);
}

#[test]
fn dnsdist_failover_and_live_change() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("dnsdist-life");
    let f = Failover::new(&dir);
    let (_backend, bport) = backend_front(&dir);
    let (_dd, port) = start_dnsdist(&dir, &f.config, &["tm.example"], bport);
    f.exercise(port, "dnsdist");
    f.exercise_admin(port, "dnsdist");
}
