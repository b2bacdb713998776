//! Hostile and corrupt data files (issue 11, defect 2): a GeoIP database
//! whose search tree is cyclic or an exploding DAG, truncated or garbage
//! MMDBs, and malformed latency tables are rejected promptly with an error
//! naming the problem, by the loaders and by an engine reload (which keeps
//! serving the old snapshot). Every load runs on a thread with a generous
//! deadline, so a regression fails the test instead of hanging the suite.
//!
//! `TM_WRITE_CORPUS=<dir>` also writes the generated files there (the fuzz
//! seeds under `fuzz/corpus/mmdb` and `fuzz/corpus/latency_csv` came from it).

mod common;
#[path = "support/mmdb_writer.rs"]
mod mmdb_writer;
use common::*;
use mmdb_writer::{V, enc};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use trafficmgr::Engine;
use trafficmgr::geo::{GeoTable, LatencyTable};

const DEADLINE: Duration = Duration::from_secs(5);

/// Runs `f` on a thread; fails the test if it is not done within [`DEADLINE`].
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(v) => v,
        Err(_) => panic!("{what}: not done within {DEADLINE:?} (hang)"),
    }
}

// ---------------------------------------------------------------- MMDB writer

const MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

fn metadata(node_count: u32, record_size: u16, ip_version: u16) -> Vec<u8> {
    let mut out = Vec::new();
    enc(
        &V::Map(vec![
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_700_000_000)),
            ("database_type", V::Str("hostile")),
            ("description", V::Map(vec![("en", V::Str("hostile"))])),
            ("ip_version", V::U16(ip_version)),
            ("languages", V::Arr(vec![V::Str("en")])),
            ("node_count", V::U32(node_count)),
            ("record_size", V::U16(record_size)),
        ]),
        &mut out,
    );
    out
}

/// A database from raw search-tree records (24-bit), a data section and
/// metadata; records are numbers as stored (`node_count` = empty,
/// `node_count + 16 + offset` = data).
fn raw_mmdb(nodes: &[(u32, u32)], data: &[u8], ip_version: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for &(l, r) in nodes {
        out.extend_from_slice(&l.to_be_bytes()[1..]);
        out.extend_from_slice(&r.to_be_bytes()[1..]);
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(data);
    out.extend_from_slice(MARKER);
    out.extend_from_slice(&metadata(nodes.len() as u32, 24, ip_version));
    out
}

fn fr_record() -> Vec<u8> {
    let mut d = Vec::new();
    enc(&V::Map(vec![("country_code", V::Str("FR"))]), &mut d);
    d
}

/// A valid IPv6 database: 2001:db8::/32 → FR, nothing else.
fn valid_mmdb() -> Vec<u8> {
    chain_mmdb(0x2001_0db8 << 96, 128, 32)
}

/// A database whose only network is the `plen`-bit prefix of `prefix`
/// (left-aligned in `width` bits), mapped to FR.
fn chain_mmdb(prefix: u128, width: u32, plen: u32) -> Vec<u8> {
    let n = plen;
    let data = n + 16;
    let nodes: Vec<(u32, u32)> = (0..plen)
        .map(|d| {
            let next = if d + 1 == plen { data } else { d + 1 };
            if (prefix >> (width - 1 - d)) & 1 == 1 {
                (n, next)
            } else {
                (next, n)
            }
        })
        .collect();
    raw_mmdb(&nodes, &fr_record(), if width == 32 { 4 } else { 6 })
}

/// The 1,008-octet database of the report: the root points to itself (on
/// the right), and on its left is a chain of 60 nodes that each point to the
/// next on both sides. A depth-first walk with only a depth limit goes left
/// first and meets 2^59 paths that all end within 128 bits before it ever
/// follows the cycle. Unreachable filler nodes bring the file to 1,008 octets.
fn cyclic_mmdb() -> Vec<u8> {
    let meta_len = metadata(0, 24, 6).len();
    let rec = fr_record();
    let fixed = 16 + MARKER.len() + meta_len;
    let n = ((1008 - fixed - rec.len()) / 6) as u32;
    let mut nodes = vec![(1, 0)];
    for i in 1..60u32 {
        nodes.push((i + 1, i + 1));
    }
    nodes.push((n, n));
    nodes.resize(n as usize, (n, n));
    let pad = 1008 - fixed - 6 * n as usize;
    let mut data = rec;
    data.resize(pad, 0);
    let db = raw_mmdb(&nodes, &data, 6);
    assert_eq!(db.len(), 1008);
    db
}

/// A DAG without cycles whose shared nodes make 2^100 paths: node i has
/// node i + 1 on both sides; node 99 has data on both sides.
fn dag_mmdb() -> Vec<u8> {
    let n = 100u32;
    let data = n + 16;
    let nodes: Vec<(u32, u32)> = (0..n)
        .map(|i| {
            if i + 1 == n {
                (data, data)
            } else {
                (i + 1, i + 1)
            }
        })
        .collect();
    raw_mmdb(&nodes, &fr_record(), 6)
}

/// A straight chain of 200 distinct nodes: deeper than the 128 bits of an address.
fn deep_mmdb() -> Vec<u8> {
    let n = 200u32;
    let nodes: Vec<(u32, u32)> = (0..n)
        .map(|i| (if i + 1 == n { n } else { i + 1 }, n))
        .collect();
    raw_mmdb(&nodes, &fr_record(), 6)
}

/// A record pointing past the data section.
fn wild_pointer_mmdb() -> Vec<u8> {
    let n = 1u32;
    raw_mmdb(&[(n + 16 + 5000, n)], &fr_record(), 6)
}

/// A data record that is a map nested 10,000 deep (each value a map).
fn nested_mmdb() -> Vec<u8> {
    let mut data = Vec::new();
    for _ in 0..10_000 {
        data.push((7 << 5) | 1); // map of 1 entry
        data.extend_from_slice(&[(2 << 5) | 1, b'k']);
    }
    data.push(7 << 5); // an empty map
    raw_mmdb(&[(1 + 16, 1)], &data, 6)
}

/// Records claiming sizes far beyond the file (a 16 MB string, a map of 16 M entries).
fn oversized_mmdb() -> Vec<u8> {
    let mut data = Vec::new();
    data.push((7 << 5) | 2);
    data.extend_from_slice(&[(2 << 5) | 31, 0xff, 0xff, 0xff]);
    data.push((7 << 5) | 31);
    data.extend_from_slice(&[0xff, 0xff, 0xff]);
    raw_mmdb(&[(1 + 16, 1 + 16 + 5)], &data, 6)
}

/// Many distinct records that all point at one huge shared `country` map,
/// so a decoder without a work budget reads the map once per record
/// (32,768 × 60,000 steps from 740 kB).
fn overlapping_records_mmdb() -> Vec<u8> {
    let entries = 60_000usize;
    let mut data = vec![(7 << 5) | 30];
    data.extend_from_slice(&((entries - 285) as u16).to_be_bytes());
    for _ in 0..entries {
        data.extend_from_slice(&[(2 << 5) | 1, b'k', 5 << 5]);
    }
    let records_at = data.len();
    let depth = 15u32;
    let leaves = 1usize << depth;
    for _ in 0..leaves {
        data.push((7 << 5) | 1);
        enc(&V::Str("country"), &mut data);
        data.extend_from_slice(&[1 << 5, 0]); // pointer to offset 0
    }
    let inner = (1u32 << depth) - 1;
    let n = inner;
    let child = |c: u32| {
        if c < inner {
            c
        } else {
            n + 16 + (records_at + (c - inner) as usize * 11) as u32
        }
    };
    let nodes: Vec<(u32, u32)> = (0..inner)
        .map(|i| (child(2 * i + 1), child(2 * i + 2)))
        .collect();
    raw_mmdb(&nodes, &data, 6)
}

fn bad_metadata_mmdbs() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // No marker at all.
    out.push(("no metadata", vec![0u8; 1000]));
    // record_size 20.
    let mut db = valid_mmdb();
    let at = db.windows(MARKER.len()).rposition(|w| w == MARKER).unwrap() + MARKER.len();
    db.truncate(at);
    let mut m = Vec::new();
    enc(
        &V::Map(vec![
            ("binary_format_major_version", V::U16(2)),
            ("ip_version", V::U16(6)),
            ("node_count", V::U32(32)),
            ("record_size", V::U16(20)),
        ]),
        &mut m,
    );
    db.extend_from_slice(&m);
    out.push(("record size", db));
    // node_count far beyond the file.
    let mut db = valid_mmdb();
    let at = db.windows(MARKER.len()).rposition(|w| w == MARKER).unwrap() + MARKER.len();
    db.truncate(at);
    db.extend_from_slice(&metadata(u32::MAX, 24, 6));
    out.push(("node count", db));
    // Metadata that is a map nested without end.
    let mut db = valid_mmdb();
    db.truncate(at);
    for _ in 0..5000 {
        db.push((7 << 5) | 1);
        db.extend_from_slice(&[(2 << 5) | 1, b'k']);
    }
    out.push(("nested metadata", db));
    out
}

fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every hostile MMDB with a name and a word its error must contain.
fn hostile_mmdbs() -> Vec<(String, Vec<u8>, &'static str)> {
    let mut v: Vec<(String, Vec<u8>, &'static str)> = vec![
        ("cyclic".into(), cyclic_mmdb(), "cycle"),
        ("dag".into(), dag_mmdb(), "twice"),
        ("deep".into(), deep_mmdb(), "deeper"),
        ("wild-pointer".into(), wild_pointer_mmdb(), "data section"),
        ("nested".into(), nested_mmdb(), "nested"),
        ("oversized".into(), oversized_mmdb(), "past the end"),
        ("overlapping".into(), overlapping_records_mmdb(), "overlap"),
    ];
    for (name, db) in bad_metadata_mmdbs() {
        v.push((name.replace(' ', "-"), db, "metadata"));
    }
    let valid = valid_mmdb();
    for cut in [10, valid.len() / 2, valid.len() - 5] {
        v.push((format!("truncated-{cut}"), valid[..cut].to_vec(), ""));
    }
    for seed in 1..=4u64 {
        let mut g = garbage(seed, 4000);
        if seed % 2 == 0 {
            // Garbage with valid-looking metadata at the end.
            g.extend_from_slice(MARKER);
            g.extend_from_slice(&metadata(600, 24, 6));
        }
        v.push((format!("garbage-{seed}"), g, ""));
    }
    v
}

/// Writes a seed for the fuzzers when `TM_WRITE_CORPUS` is set (files
/// under 64 KiB only: fuzzers work on small inputs).
fn write_corpus(sub: &str, name: &str, bytes: &[u8]) {
    if bytes.len() > 64 << 10 {
        return;
    }
    if let Some(dir) = std::env::var_os("TM_WRITE_CORPUS") {
        let d = Path::new(&dir).join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    }
}

// ---------------------------------------------------------------- MMDB tests

#[test]
fn the_valid_generated_database_loads() {
    let g = GeoTable::from_bytes(&valid_mmdb(), "valid.mmdb").unwrap();
    let (info, plen) = g.lookup("2001:db8::1".parse().unwrap()).unwrap();
    assert_eq!(plen, 32);
    assert_eq!(
        &trafficmgr::geo::builtin::countries()[info.country as usize].code,
        b"FR"
    );
    assert!(g.lookup("2001:db9::1".parse().unwrap()).is_none());
    write_corpus("mmdb", "valid-v6.mmdb", &valid_mmdb());

    // An IPv4 database (ip_version 4, a 32-bit tree).
    let v4 = chain_mmdb(0xc000_0200, 32, 24);
    let g = GeoTable::from_bytes(&v4, "v4.mmdb").unwrap();
    assert_eq!(g.lookup("192.0.2.77".parse().unwrap()).unwrap().1, 24);
    assert!(g.lookup("192.0.3.1".parse().unwrap()).is_none());
    assert!(g.lookup("2001:db8::1".parse().unwrap()).is_none());
    write_corpus("mmdb", "valid-v4.mmdb", &v4);
}

#[test]
fn the_cyclic_1008_octet_database_is_rejected_promptly() {
    let d = fresh_dir("hostile-cyclic");
    let p = d.join("cyclic.mmdb");
    std::fs::write(&p, cyclic_mmdb()).unwrap();
    let e = bounded("loading the cyclic MMDB", move || GeoTable::load(&p))
        .expect_err("a cyclic search tree must be rejected");
    assert!(e.to_string().contains("cycle"), "{e}");
    assert!(e.to_string().contains("cyclic.mmdb"), "{e}");
}

#[test]
fn hostile_databases_are_rejected_promptly_with_a_named_problem() {
    for (name, db, word) in hostile_mmdbs() {
        write_corpus("mmdb", &format!("{name}.mmdb"), &db);
        let n = name.clone();
        let r = bounded(&format!("loading {name}"), move || {
            GeoTable::from_bytes(&db, &format!("{n}.mmdb")).map(|g| g.len())
        });
        let e = match r {
            Ok(len) => panic!("{name}: accepted ({len} networks)"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(&format!("{name}.mmdb")), "{name}: {e}");
        assert!(e.contains(word), "{name}: `{e}` should name `{word}`");
    }
}

#[test]
fn the_fuzz_entry_survives_every_hostile_database() {
    for (name, db, _) in hostile_mmdbs() {
        bounded(&format!("fuzz_mmdb({name})"), move || {
            trafficmgr::geo::fuzz_mmdb(&db)
        });
    }
    // Every truncation and single-octet corruption of a valid database
    // (one deadline per position).
    let valid = std::sync::Arc::new(valid_mmdb());
    for i in 0..valid.len() {
        let valid = valid.clone();
        bounded(&format!("fuzz_mmdb(mutations at {i})"), move || {
            trafficmgr::geo::fuzz_mmdb(&valid[..i]);
            for x in [0x00u8, 0xff, 0x80, 0x1f] {
                let mut m = valid.to_vec();
                m[i] ^= x;
                trafficmgr::geo::fuzz_mmdb(&m);
            }
        });
    }
}

#[test]
fn special_files_are_refused_not_read() {
    for p in ["/dev/zero", "/dev/urandom"] {
        let e = bounded(p, move || GeoTable::load(Path::new(p)))
            .expect_err("a device is not a database");
        assert!(e.to_string().contains("regular file"), "{e}");
        let e = bounded(p, move || {
            LatencyTable::load(Path::new(p), &|_| true).map(|t| t.len())
        })
        .expect_err("a device is not a table");
        assert!(e.to_string().contains("regular file"), "{e}");
    }
}

// --------------------------------------------------------- latency-table tests

fn known(n: &str) -> bool {
    trafficmgr::geo::builtin::regions()
        .iter()
        .any(|r| r.name == n)
}

fn hostile_csvs() -> Vec<(&'static str, Vec<u8>, (usize, &'static str))> {
    let mut wide = b"prefix".to_vec();
    for _ in 0..200_000 {
        wide.extend_from_slice(b",eastus");
    }
    wide.push(b'\n');
    let mut many_cells = b"prefix,eastus\n10.0.0.0/8".to_vec();
    for _ in 0..200_000 {
        many_cells.extend_from_slice(b",1");
    }
    let mut long_cell = b"prefix,eastus\n10.0.0.0/8,".to_vec();
    long_cell.extend(std::iter::repeat_n(b'9', 1_000_000));
    vec![
        (
            "nan",
            b"prefix,eastus\n10.0.0.0/8,NaN\n".to_vec(),
            (2, "NaN"),
        ),
        (
            "negative",
            b"prefix,eastus\n10.0.0.0/8,-1\n".to_vec(),
            (2, "-1"),
        ),
        (
            "huge",
            b"prefix,eastus\n10.0.0.0/8,1e300\n".to_vec(),
            (2, "1e300"),
        ),
        (
            "inf",
            b"prefix,eastus\n10.0.0.0/8,inf\n".to_vec(),
            (2, "inf"),
        ),
        (
            "utf8",
            b"prefix,eastus\n10.0.0.0/8,1\n10.1.0.0/16,\xff\xfe\n".to_vec(),
            (3, "UTF-8"),
        ),
        ("utf8-header", b"prefix,east\xc3\n".to_vec(), (1, "UTF-8")),
        ("wide-header", wide, (1, "two columns")),
        ("many-cells", many_cells, (2, "more cells")),
        ("long-cell", long_cell, (2, "round-trip")),
        (
            "region",
            b"prefix,eastus,atlantis\n".to_vec(),
            (1, "atlantis"),
        ),
        (
            "short-row",
            b"prefix,eastus,westeurope\n10.0.0.0/8,1\n".to_vec(),
            (2, "1 cells"),
        ),
        (
            "bad-prefix",
            b"prefix,eastus\n10.0.0.0/40,1\n".to_vec(),
            (2, "prefix"),
        ),
        ("empty", Vec::new(), (1, "empty")),
        ("no-header", b"10.0.0.0/8,1\n".to_vec(), (1, "header")),
        ("nul", b"prefix,eastus\n\0\0\0\n".to_vec(), (2, "prefix")),
    ]
}

#[test]
fn hostile_latency_tables_are_rejected_promptly_with_file_and_line() {
    for (name, csv, (line, word)) in hostile_csvs() {
        write_corpus("latency_csv", &format!("{name}.csv"), &csv);
        let r = bounded(&format!("parsing {name}"), move || {
            LatencyTable::from_bytes(&csv, "t.csv", &known).map(|t| t.len())
        });
        let e = match r {
            Ok(n) => panic!("{name}: accepted ({n} rows)"),
            Err(e) => e,
        };
        assert_eq!(e.line, line, "{name}: {e}");
        assert!(e.to_string().contains("t.csv"), "{name}: {e}");
        assert!(
            e.message.contains(word),
            "{name}: `{e}` should name `{word}`"
        );
        assert!(e.message.len() < 300, "{name}: message too long: {e}");
    }
    write_corpus(
        "latency_csv",
        "valid.csv",
        &std::fs::read(data("latency.csv")).unwrap(),
    );
}

#[test]
fn duplicate_prefixes_are_a_warning_with_both_lines() {
    let t = LatencyTable::from_bytes(
        b"prefix,eastus\n10.0.0.0/8,1\n10.0.0.0/16,2\n10.0.0.0/8,3\n",
        "t.csv",
        &known,
    )
    .unwrap();
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(t.warnings[0].contains("t.csv:4"), "{:?}", t.warnings);
    assert!(t.warnings[0].contains("line 2"), "{:?}", t.warnings);
    assert_eq!(t.row("10.9.9.9".parse().unwrap()).unwrap().0, &[3]);
}

#[test]
fn the_latency_fuzz_entry_survives_hostile_tables() {
    for (name, csv, _) in hostile_csvs() {
        bounded(&format!("fuzz_latency_csv({name})"), move || {
            trafficmgr::geo::fuzz_latency_csv(&csv)
        });
    }
    for seed in 1..=8u64 {
        let g = garbage(seed, 5000);
        bounded("fuzz_latency_csv(garbage)", move || {
            trafficmgr::geo::fuzz_latency_csv(&g)
        });
    }
}

// ------------------------------------------------------------- engine reload

fn cfg(geoip: &Path) -> String {
    format!(
        "[engine]\nwatch_interval = \"0s\"\ngeoip_db = \"{}\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"g\"\nrouting = \"geographic\"\n\
         [[profile.endpoint]]\nname = \"fr\"\ntarget = \"fr.example\"\ngeo = [\"FR\"]\n\
         [[profile.endpoint]]\nname = \"world\"\ntarget = \"world.example\"\ngeo = [\"WORLD\"]\n",
        geoip.display()
    )
}

fn answer(e: &Engine) -> String {
    ask(e, "g.tm.example", 1, Some("2001:db8::7"), None)
        .answer
        .first()
        .map(|a| a.2.clone())
        .unwrap_or_default()
}

#[test]
fn an_engine_reload_onto_a_cyclic_database_fails_fast_and_keeps_serving() {
    let d = fresh_dir("hostile-reload");
    let good = d.join("good.mmdb");
    std::fs::write(&good, valid_mmdb()).unwrap();
    let bad = d.join("cyclic.mmdb");
    std::fs::write(&bad, cyclic_mmdb()).unwrap();
    let conf = d.join("tm.toml");
    std::fs::write(&conf, cfg(&good)).unwrap();
    let e = std::sync::Arc::new(Engine::from_file(&conf).unwrap());
    assert_eq!(answer(&e), "fr.example.");

    std::fs::write(&conf, cfg(&bad)).unwrap();
    let e2 = e.clone();
    let err = bounded("reloading onto the cyclic MMDB", move || e2.reload())
        .expect_err("the reload must fail");
    assert!(err.to_string().contains("cycle"), "{err}");
    assert_eq!(answer(&e), "fr.example.", "the old snapshot keeps serving");
    assert!(
        e.reload_stats()
            .last_error
            .as_deref()
            .is_some_and(|m| m.contains("cycle")),
        "{:?}",
        e.reload_stats().last_error
    );
    // Dropping the engine (stops and joins its threads) returns promptly.
    bounded("dropping the engine", move || drop(e));
}
