//! Live reload: the file watch (in-place writes, write-then-rename, data
//! files), all-or-nothing swaps, errors kept for the status, health and
//! schedule carried over.

mod common;
use common::backend::{Backend, Mode};
use common::*;
use std::path::Path;
use std::time::Duration;
use trafficmgr::Engine;

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn base(target: &str, extra: &str) -> String {
    format!(
        "[engine]\nwatch_interval = \"100ms\"\nlatency_table = \"lat.csv\"\n{extra}\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"p\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"{target}\"\n\
         [[profile]]\nname = \"perf\"\nrouting = \"performance\"\n\
         [[profile.endpoint]]\nname = \"us\"\ntarget = \"us.example\"\nlocation = \"eastus\"\n\
         [[profile.endpoint]]\nname = \"eu\"\ntarget = \"eu.example\"\nlocation = \"westeurope\"\n"
    )
}

fn answer(e: &Engine, name: &str, client: Option<&str>) -> String {
    ask(e, name, 1, client, None)
        .answer
        .first()
        .map(|a| a.2.clone())
        .unwrap_or_default()
}

#[test]
fn watch_picks_up_writes_renames_and_data_files_and_bad_files_change_nothing() {
    let d = fresh_dir("reload-watch");
    let cfg = d.join("tm.toml");
    std::fs::write(
        d.join("lat.csv"),
        "prefix,eastus,westeurope\n198.51.100.0/24,10,50\n",
    )
    .unwrap();
    std::fs::write(&cfg, base("one.example", "")).unwrap();
    let e = Engine::from_file(&cfg).unwrap();
    assert_eq!(answer(&e, "p.tm.example", None), "one.example.");
    assert_eq!(
        answer(&e, "perf.tm.example", Some("198.51.100.1")),
        "us.example."
    );

    // In-place write.
    std::fs::write(&cfg, base("two.example", "")).unwrap();
    wait_for(10, "in-place write", || {
        answer(&e, "p.tm.example", None) == "two.example."
    });
    // Write to a temporary file, then rename over.
    write_atomic(&cfg, &base("three.example", ""));
    wait_for(10, "rename", || {
        answer(&e, "p.tm.example", None) == "three.example."
    });
    // A data file replaced.
    write_atomic(
        &d.join("lat.csv"),
        "prefix,eastus,westeurope\n198.51.100.0/24,50,10\n",
    );
    wait_for(10, "latency table", || {
        answer(&e, "perf.tm.example", Some("198.51.100.1")) == "eu.example."
    });
    let ok_before = e.reload_stats().ok;
    assert!(ok_before >= 3);

    // A syntax error, a validation error, a half-written file, a corrupt data
    // file: the old snapshot keeps serving, the error is kept, counted.
    let good = base("three.example", "");
    let bad = [
        good.replace("routing = \"priority\"", "routing = \"priority"),
        good.replace("name = \"a\"", "name = \"a\"\nweight = 5000"),
        good[..good.len() / 2].to_string(),
    ];
    for (i, text) in bad.iter().enumerate() {
        let failed = e.reload_stats().failed;
        std::fs::write(&cfg, text).unwrap();
        wait_for(10, "failed reload counted", || {
            e.reload_stats().failed > failed
        });
        assert_eq!(
            answer(&e, "p.tm.example", None),
            "three.example.",
            "bad file {i}"
        );
        let err = e.reload_stats().last_error.unwrap();
        assert!(err.starts_with(&cfg.display().to_string()), "{err}");
        let s = status(&e);
        assert_eq!(s["reloads"]["last_error"], err.as_str());
        assert!(s["reloads"]["failed"].as_u64().unwrap() >= (i + 1) as u64);
    }
    assert!(e.reload_stats().last_error.unwrap().contains(':'));
    std::fs::write(&cfg, &good).unwrap();
    std::fs::write(
        d.join("lat.csv"),
        "prefix,eastus,westeurope\n198.51.100.0/24,abc,10\n",
    )
    .unwrap();
    wait_for(10, "corrupt table refused", || {
        e.reload_stats()
            .last_error
            .as_deref()
            .is_some_and(|m| m.contains("lat.csv:2:"))
    });
    assert_eq!(
        answer(&e, "perf.tm.example", Some("198.51.100.1")),
        "eu.example."
    );
    // The next good version is picked up.
    std::fs::write(
        d.join("lat.csv"),
        "prefix,eastus,westeurope\n198.51.100.0/24,5,10\n",
    )
    .unwrap();
    wait_for(10, "good table", || {
        answer(&e, "perf.tm.example", Some("198.51.100.1")) == "us.example."
    });
    assert!(e.reload_stats().last_error.is_none());
    let s = status(&e);
    assert_eq!(s["config"]["path"], cfg.display().to_string());
    assert_eq!(s["config"]["hash"].as_str().unwrap().len(), 16);
    assert!(s["config"]["loaded_at"].as_u64().unwrap() > 1_700_000_000);
}

#[test]
fn watch_interval_zero_never_reloads() {
    let d = fresh_dir("reload-nowatch");
    let cfg = d.join("tm.toml");
    std::fs::write(d.join("lat.csv"), "prefix,eastus\n").unwrap();
    std::fs::write(
        &cfg,
        base("one.example", "").replace("watch_interval = \"100ms\"", "watch_interval = \"0s\""),
    )
    .unwrap();
    let e = Engine::from_file(&cfg).unwrap();
    std::fs::write(
        &cfg,
        base("two.example", "").replace("watch_interval = \"100ms\"", "watch_interval = \"0s\""),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(answer(&e, "p.tm.example", None), "one.example.");
    e.reload().unwrap();
    assert_eq!(answer(&e, "p.tm.example", None), "two.example.");
}

fn monitored(eps: &[(&str, u16, &str)]) -> String {
    let mut c = "[engine]\nwatch_interval = \"0s\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n[[profile]]\nname = \"p\"\nrouting = \"priority\"\n".to_string();
    for (name, port, path) in eps {
        c.push_str(&format!(
            "[[profile.endpoint]]\nname = \"{name}\"\naddresses = [\"127.0.0.1\"]\nprobe = {{ port = {port}, path = \"{path}\" }}\n"
        ));
    }
    c.push_str(
        "[profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 0\n",
    );
    c
}

#[test]
fn health_and_schedule_carry_over() {
    let keep = Backend::start(Mode::Status(200));
    let gone = Backend::start(Mode::Status(200));
    let fresh = Backend::start(Mode::Status(200));
    let d = fresh_dir("reload-health");
    let cfg = d.join("tm.toml");
    std::fs::write(
        &cfg,
        monitored(&[
            ("keep", keep.port, "/"),
            ("gone", gone.port, "/"),
            ("change", keep.port, "/a"),
        ]),
    )
    .unwrap();
    let e = Engine::from_file(&cfg).unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    let probes_keep = ep_status(&e, "p.tm.example", "keep")["probe"]["probes"]
        .as_u64()
        .unwrap();
    let since_keep = ep_status(&e, "p.tm.example", "keep")["probe"]["since"]
        .as_f64()
        .unwrap();
    std::fs::write(
        &cfg,
        monitored(&[
            ("keep", keep.port, "/"),
            ("change", keep.port, "/b"),
            ("fresh", fresh.port, "/"),
        ]),
    )
    .unwrap();
    e.reload().unwrap();
    // Unchanged: same state, same counters (no restart of the schedule).
    let k = ep_status(&e, "p.tm.example", "keep");
    assert_eq!(k["status"], "Online");
    assert!(k["probe"]["probes"].as_u64().unwrap() >= probes_keep);
    assert_eq!(k["probe"]["since"].as_f64().unwrap(), since_keep);
    // New endpoint: probed at once.
    wait_for(5, "fresh probed", || fresh.requests() > 0);
    // Changed probe settings: starts over and is probed again.
    wait_for(5, "changed probed", || {
        keep.paths.lock().unwrap().iter().any(|p| p == "/b")
    });
    // Removed: no more probes.
    std::thread::sleep(Duration::from_millis(300));
    let n = gone.requests();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(gone.requests(), n, "a removed endpoint is still probed");
    assert!(e.wait_ready(Duration::from_secs(5)));
}
