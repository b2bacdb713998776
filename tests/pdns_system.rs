//! PowerDNS Authoritative serves trafficmgr's zones through the remote
//! backend adapter (`examples/powerdns/pdns_remote.rs`): a real
//! `pdns_server` with a bind-backend zone beside it, queried with `dig`;
//! answers compared with the Rust API's; client address and ECS with the
//! scope the decision used; restarts of PowerDNS, malformed requests,
//! a health failover and a live config change.

mod common;
use common::dns::{dig_raw, free_port};
use common::pdns::{start_adapter, start_pdns};
use common::*;
use std::io::{BufRead, BufReader, Write};
use trafficmgr::Engine;

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn pdns_answers_like_the_rust_api() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("pdns-answers");
    let cfg = basic_in(&dir);
    let (_adapter, sock) = start_adapter(&dir, &cfg);
    let port = free_port();
    let mut pdns = start_pdns(&dir, &sock, port);
    let engine = Engine::from_file(&cfg).unwrap();
    common::pdns::assert_answer_table(port, &engine);
    // Malformed requests get an error, and the adapter lives on.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(b"this is not json\n{\"method\":\"lookup\",\"parameters\":{}}\n{\"method\":\"initialize\",\"parameters\":{}}\n").unwrap();
    let mut r = BufReader::new(s);
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        lines.push(l);
    }
    assert!(
        lines[0].contains("\"result\":false") && lines[0].contains("malformed"),
        "{lines:?}"
    );
    assert!(lines[1].contains("\"result\":false"), "{lines:?}");
    assert!(lines[2].contains("\"result\":true"), "{lines:?}");
    // PowerDNS restarts: the adapter serves the new one.
    let _ = pdns.0.kill();
    let _ = pdns.0.wait();
    let _pdns2 = start_pdns(&dir, &sock, port);
    assert_eq!(
        dig_raw(port, "prio.tm.example", "A", &[]).2[0].2,
        "primary.contoso.example."
    );
}

#[test]
fn pdns_failover_and_live_change() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("pdns-life");
    let f = Failover::new(&dir);
    let (_adapter, sock) = start_adapter(&dir, &f.config);
    let port = free_port();
    let _pdns = start_pdns(&dir, &sock, port);
    f.exercise(port, "PowerDNS");
    f.exercise_admin(port, "PowerDNS");
}
