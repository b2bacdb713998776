//! Replays every fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! function its cargo-fuzz target calls (`trafficmgr::fuzzing`), on stable
//! Rust: every input the fuzzers kept — the crashes they found included,
//! each fixed — must go through without a panic or a failed check.
//! `make fuzz` runs the fuzzers themselves (nightly).

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "{}: a corpus of {} inputs",
        dir.display(),
        files.len()
    );
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn replay(target: &str, f: impl Fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&bytes)));
        assert!(r.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn wire() {
    let e = trafficmgr::fuzzing::engine();
    replay("wire", |d| trafficmgr::fuzzing::wire(&e, d));
}

#[test]
fn config() {
    replay("config", trafficmgr::fuzzing::config);
}

#[test]
fn dlz() {
    let inst = trafficmgr::fuzzing::dlz_instance();
    replay("dlz", |d| trafficmgr::fuzzing::dlz(&inst, d));
}

#[test]
fn mmdb() {
    replay("mmdb", trafficmgr::geo::fuzz_mmdb);
}

#[test]
fn latency_csv() {
    replay("latency_csv", trafficmgr::geo::fuzz_latency_csv);
}

#[test]
fn pdns_request() {
    replay("pdns_request", trafficmgr::pdns::fuzz_pdns_request);
}
