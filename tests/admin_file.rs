//! The admin-state file (`[engine] admin_state`), applied by a real engine
//! built from a config file, with real HTTP backends behind its probes:
//! edits made with `trafficmgr::admin_file::edit` move the answers within a
//! few watch intervals, without a reload; `up`/`down` override the probes;
//! a broken file changes nothing and says why; restarts and reloads start
//! from the file; the order with the Rust API is the documented one.

mod common;
use common::backend::{Backend, Mode};
use common::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trafficmgr::admin_file::{self, Setting};
use trafficmgr::health::{AdminState, MonitorStatus};
use trafficmgr::{Engine, LogLevel, Rcode};

/// One test at a time: each measures how long an edit takes to apply.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bound on an edit reaching the answers: half a watch interval (1 s)
/// to be seen twice the same (docs/OPERATIONS.md), and generous slack for
/// a loaded machine.
const APPLY_SECS: u64 = 6;

/// Three real backends (one per `app` endpoint) and the folder of the
/// config (`tm.toml`) and of the admin file (`admin.toml`).
struct Setup {
    dir: PathBuf,
    backends: Vec<Backend>,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir = fresh_dir(&format!("admin-{tag}"));
        let backends = (0..3).map(|_| Backend::start(Mode::Status(200))).collect();
        let s = Setup { dir, backends };
        s.write_config("");
        s
    }

    fn config(&self) -> PathBuf {
        self.dir.join("tm.toml")
    }

    fn admin(&self) -> PathBuf {
        self.dir.join("admin.toml")
    }

    /// `app`: priority eu-west (192.0.2.1), eu-north (.2), us-east (.3,
    /// disabled by config), each probed on its own backend; `first_app` is
    /// put before them. `web`: unmonitored, a (.11) then b (.12).
    fn write_config(&self, first_app: &str) {
        let [b1, b2, b3] = [0, 1, 2].map(|i| self.backends[i].port);
        let text = format!(
            "[engine]\nwatch_interval = \"1s\"\nadmin_state = \"admin.toml\"\n\
             [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 5\n\
             [profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 0\n\
             {first_app}\
             [[profile.endpoint]]\nname = \"eu-west\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\", port = {b1} }}\n\
             [[profile.endpoint]]\nname = \"eu-north\"\naddresses = [\"192.0.2.2\"]\nprobe = {{ host = \"127.0.0.1\", port = {b2} }}\n\
             [[profile.endpoint]]\nname = \"us-east\"\naddresses = [\"192.0.2.3\"]\nenabled = false\nprobe = {{ host = \"127.0.0.1\", port = {b3} }}\n\
             [[profile]]\nname = \"web\"\nrouting = \"priority\"\n\
             [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.11\"]\n\
             [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.12\"]\n"
        );
        write_replacing(&self.config(), &text);
    }

    fn set(&self, key: &str, s: Setting) {
        admin_file::edit(&self.admin(), |f| f.set(key, s)).unwrap();
    }

    fn restore(&self, key: &str) {
        assert!(admin_file::edit(&self.admin(), |f| Ok(f.remove(key))).unwrap());
    }
}

/// Writes a temporary file and renames it over `path` (as editors and
/// config management do).
fn write_replacing(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The log lines an engine wrote.
type Lines = Arc<Mutex<Vec<(LogLevel, String)>>>;

fn engine(s: &Setup) -> (Engine, Lines) {
    let lines: Lines = Arc::default();
    let l = lines.clone();
    let e = Engine::from_file_with_log(
        s.config(),
        Some(Box::new(move |lv, m| {
            l.lock().unwrap().push((lv, m.to_string()));
        })),
    )
    .unwrap();
    (e, lines)
}

/// The first address `name` answers with ("" for none), and the rcode.
fn first(e: &Engine, name: &str) -> String {
    let o = ask(e, name, 1, Some("198.51.100.7"), None);
    o.answer.first().map(|a| a.2.clone()).unwrap_or_default()
}

/// Waits (within `APPLY_SECS`) until `name` answers `want` first; returns
/// how long that took.
fn moves_to(e: &Engine, name: &str, want: &str) -> Duration {
    let t0 = Instant::now();
    wait_for(APPLY_SECS, &format!("{name} → {want}"), || {
        first(e, name) == want
    });
    t0.elapsed()
}

/// `name` keeps answering `want` for `secs` (several watch intervals and
/// probe rounds).
fn stays(e: &Engine, name: &str, want: &str, secs: f64) {
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        assert_eq!(first(e, name), want, "{name} after {:?}", t0.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ep(e: &Engine, profile: &str, endpoint: &str) -> serde_json::Value {
    ep_status(e, &format!("{profile}.tm.example"), endpoint)
}

#[test]
fn drain_disable_enable_globs_and_restore_move_answers() {
    let _serial = serial();
    let s = Setup::new("drain");
    let (e, _log) = engine(&s);
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.1");

    // drain: the answer fails over to the next by priority; the endpoint
    // is still probed and shows its probe result.
    s.set("app/eu-west", Setting::Drain);
    let took = moves_to(&e, "app.tm.example", "192.0.2.2");
    println!(
        "drain applied after {:.2} s (watch_interval 1 s)",
        took.as_secs_f64()
    );
    let w = ep(&e, "app", "eu-west");
    assert_eq!(w["admin"], "drain", "{w}");
    assert_eq!(w["admin_source"], "file", "{w}");
    assert_eq!(w["serving"], false, "{w}");
    assert_eq!(w["status"], "Online", "{w}");
    let probes = w["probe"]["probes"].as_u64().unwrap();
    wait_for(5, "still probed while drained", || {
        ep(&e, "app", "eu-west")["probe"]["probes"]
            .as_u64()
            .unwrap()
            > probes
    });
    // No reload happened: the edit was applied to the running snapshot.
    assert_eq!(e.reload_stats().ok, 0);

    // disabled: not served, not probed.
    s.set("app/eu-west", Setting::Disabled);
    wait_for(APPLY_SECS, "disabled", || {
        ep(&e, "app", "eu-west")["status"] == "Disabled"
    });
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.2");

    // restore: the key removed, the config applies again.
    s.restore("app/eu-west");
    moves_to(&e, "app.tm.example", "192.0.2.1");
    assert_eq!(ep(&e, "app", "eu-west")["admin"], "none");

    // A glob: every eu-* endpoint disabled, and us-east is disabled by the
    // config: no enabled endpoint, NXDOMAIN.
    s.set("app/eu-*", Setting::Disabled);
    wait_for(APPLY_SECS, "NXDOMAIN", || {
        ask(&e, "app.tm.example", 1, None, None).rcode == Rcode::NxDomain
    });
    // enabled: served although the config says enabled = false.
    s.set("*/us-east", Setting::Enabled);
    moves_to(&e, "app.tm.example", "192.0.2.3");
    let u = ep(&e, "app", "us-east");
    assert_eq!(u["admin"], "enabled", "{u}");
    assert_eq!(u["enabled"], false, "{u}");
    // ... and probed: it gets a probe result.
    wait_for(5, "us-east probed", || {
        ep(&e, "app", "us-east")["probe"]["last_result"] == "HTTP 200"
    });
    // The more specific key wins over the glob.
    s.set("app/eu-north", Setting::Enabled);
    moves_to(&e, "app.tm.example", "192.0.2.2");
    let st = status(&e);
    assert_eq!(st["admin_file"]["entries"], 3, "{st}");
    assert_eq!(st["admin_file"]["error"], serde_json::Value::Null, "{st}");
    assert!(
        st["admin_file"]["path"]
            .as_str()
            .unwrap()
            .ends_with("admin.toml")
    );
}

#[test]
fn down_and_up_override_the_probes() {
    let _serial = serial();
    let s = Setup::new("updown");
    let (e, _log) = engine(&s);
    assert!(e.wait_ready(Duration::from_secs(10)));
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.1");

    // down: a healthy endpoint is taken out though its probes pass.
    s.set("app/eu-west", Setting::Down);
    moves_to(&e, "app.tm.example", "192.0.2.2");
    let w = ep(&e, "app", "eu-west");
    assert_eq!(w["status"], "Degraded", "{w}");
    assert_eq!(w["forced"], "down", "{w}");
    assert_eq!(w["monitor_status"], "Online", "{w}");
    assert_eq!(w["probe"]["last_result"], "HTTP 200", "{w}");
    // Probe results keep coming (a probe's write never clears the forced
    // state): several rounds later, still out.
    let probes = w["probe"]["probes"].as_u64().unwrap();
    wait_for(5, "more probes", || {
        ep(&e, "app", "eu-west")["probe"]["probes"]
            .as_u64()
            .unwrap()
            >= probes + 2
    });
    stays(&e, "app.tm.example", "192.0.2.2", 1.5);

    // up: served although its real probe fails.
    s.set("app/eu-west", Setting::Up);
    moves_to(&e, "app.tm.example", "192.0.2.1");
    s.backends[0].set(Mode::Status(503));
    wait_for(5, "probe verdict Degraded", || {
        ep(&e, "app", "eu-west")["monitor_status"] == "Degraded"
    });
    let w = ep(&e, "app", "eu-west");
    assert_eq!(w["status"], "Online", "{w}");
    assert_eq!(w["forced"], "up", "{w}");
    assert_eq!(w["probe"]["last_result"], "HTTP 503", "{w}");
    stays(&e, "app.tm.example", "192.0.2.1", 2.5);

    // restore: the probe verdict counts again.
    s.restore("app/eu-west");
    moves_to(&e, "app.tm.example", "192.0.2.2");
    let w = ep(&e, "app", "eu-west");
    assert_eq!(w["status"], "Degraded", "{w}");
    assert_eq!(w["forced"], serde_json::Value::Null, "{w}");
}

#[test]
fn a_broken_file_keeps_the_previous_state_and_says_why() {
    let _serial = serial();
    let s = Setup::new("broken");
    let (e, log) = engine(&s);
    s.set("app/eu-west", Setting::Drain);
    moves_to(&e, "app.tm.example", "192.0.2.2");
    let errors_logged = |log: &Lines| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(lv, m)| *lv == LogLevel::Error && m.contains("admin-state file"))
            .map(|(_, m)| m.clone())
            .collect::<Vec<_>>()
    };

    // A bad value at line 2, column 18: nothing changes.
    write_replacing(
        &s.admin(),
        "\"app/eu-west\" = \"drain\"\n\"app/eu-north\" = \"drian\"\n",
    );
    wait_for(APPLY_SECS, "the error in the status", || {
        status(&e)["admin_file"]["error"].is_string()
    });
    let st = status(&e);
    let err = st["admin_file"]["error"].as_str().unwrap();
    assert!(err.contains("admin.toml:2:18: app/eu-north:"), "{err}");
    assert_eq!(st["admin_file"]["errors"], 1, "{st}");
    assert_eq!(st["admin_file"]["entries"], 1, "the previous file: {st}");
    assert!(st["admin_file"]["error_at"].as_u64().unwrap() > 1_700_000_000);
    // The previous state stays, over several watch intervals; the error is
    // logged once for this version of the file.
    stays(&e, "app.tm.example", "192.0.2.2", 3.0);
    let logged = errors_logged(&log);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("admin.toml:2:18"), "{logged:?}");
    assert_eq!(status(&e)["admin_file"]["errors"], 1);

    // A syntax error (a half-written file): also nothing, also said.
    write_replacing(&s.admin(), "\"app/eu-west\" = \"drain\"\n\"app/eu-");
    wait_for(APPLY_SECS, "the second error", || {
        errors_logged(&log).len() == 2
    });
    assert!(
        errors_logged(&log)[1].contains("admin.toml:2:"),
        "{:?}",
        errors_logged(&log)
    );
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.2");
    // A bad key.
    write_replacing(&s.admin(), "\"eu-west\" = \"drain\"\n");
    wait_for(APPLY_SECS, "the third error", || {
        errors_logged(&log).len() == 3
    });
    assert!(errors_logged(&log)[2].contains("admin.toml:1:1: eu-west:"));
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.2");
    assert_eq!(status(&e)["admin_file"]["errors"], 3);
    // The metrics say so too.
    let m = e.metrics_text();
    for line in [
        "trafficmgr_admin_file_ok 0\n",
        "trafficmgr_admin_file_errors_total 3\n",
        "trafficmgr_admin_file_entries 1\n",
    ] {
        assert!(m.contains(line), "no {line:?} in\n{m}");
    }

    // Fixed: applied, the error cleared.
    write_replacing(&s.admin(), "\"app/eu-north\" = \"drain\"\n");
    moves_to(&e, "app.tm.example", "192.0.2.1");
    let st = status(&e);
    assert_eq!(st["admin_file"]["error"], serde_json::Value::Null, "{st}");
    assert_eq!(ep(&e, "app", "eu-north")["admin"], "drain");
    assert!(e.metrics_text().contains("trafficmgr_admin_file_ok 1\n"));

    // Removed: no overrides.
    std::fs::remove_file(s.admin()).unwrap();
    wait_for(APPLY_SECS, "no overrides", || {
        ep(&e, "app", "eu-north")["admin"] == "none"
    });
    assert_eq!(status(&e)["admin_file"]["entries"], 0);
}

#[test]
fn a_restarted_engine_starts_with_the_file_state() {
    let _serial = serial();
    let s = Setup::new("restart");
    s.set("app/eu-west", Setting::Drain);
    s.set("web/a", Setting::Down);
    let (e, _log) = engine(&s);
    // The first query, before any probe result or watch turn.
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.2");
    assert_eq!(first(&e, "web.tm.example"), "192.0.2.12");
    // Changed while it runs, then dropped and recreated on the same files.
    s.restore("app/eu-west");
    s.set("app/eu-*", Setting::Disabled);
    s.set("app/us-east", Setting::Enabled);
    moves_to(&e, "app.tm.example", "192.0.2.3");
    drop(e);
    let (e, _log) = engine(&s);
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.3");
    assert_eq!(first(&e, "web.tm.example"), "192.0.2.12");
    // A broken file at start: no overrides, and the error shown.
    write_replacing(&s.admin(), "\"app/eu-west\" = ");
    drop(e);
    let (e, log) = engine(&s);
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.1");
    assert!(
        status(&e)["admin_file"]["error"]
            .as_str()
            .unwrap()
            .contains("admin.toml:1:")
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|(lv, m)| *lv == LogLevel::Error && m.contains("admin.toml:1:"))
    );
}

#[test]
fn a_reload_applies_the_file_to_new_endpoints_from_their_first_query() {
    let _serial = serial();
    let s = Setup::new("reload");
    s.set("app/new-*", Setting::Drain);
    let (e, log) = engine(&s);
    // A key that matches nothing is said, not an error.
    let st = status(&e);
    assert_eq!(
        st["admin_file"]["unmatched"],
        serde_json::json!(["app/new-*"]),
        "{st}"
    );
    assert_eq!(st["admin_file"]["error"], serde_json::Value::Null);
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|(lv, m)| *lv == LogLevel::Warn
                && m.contains("admin.toml:")
                && m.contains("`app/new-*` matches no endpoint"))
    );

    // Queries all along while the watch reloads a config with a new first
    // endpoint that the glob drains: it never answers.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let e = Arc::new(e);
    let hammer = {
        let (e, stop, seen) = (e.clone(), stop.clone(), seen.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let a = first(&e, "app.tm.example");
                seen.lock().unwrap().insert(a);
            }
        })
    };
    s.write_config(
        "[[profile.endpoint]]\nname = \"new-1\"\naddresses = [\"192.0.2.9\"]\nprobe = { host = \"127.0.0.1\", port = 9 }\n",
    );
    wait_for(APPLY_SECS, "the reload", || e.reload_stats().ok == 1);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hammer.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.contains("192.0.2.9"),
        "the drained new endpoint answered: {seen:?}"
    );
    assert!(seen.contains("192.0.2.1"), "{seen:?}");
    let n = ep(&e, "app", "new-1");
    assert_eq!(n["admin"], "drain", "{n}");
    assert_eq!(status(&e)["admin_file"]["unmatched"], serde_json::json!([]));

    // The same through an explicit reload: the first query after it.
    s.set("app/new-*", Setting::Down);
    wait_for(APPLY_SECS, "forced down", || {
        ep(&e, "app", "new-1")["forced"] == "down"
    });
    s.write_config(
        "[[profile.endpoint]]\nname = \"new-2\"\naddresses = [\"192.0.2.10\"]\nprobe = { host = \"127.0.0.1\", port = 9 }\n\
         [[profile.endpoint]]\nname = \"new-1\"\naddresses = [\"192.0.2.9\"]\nprobe = { host = \"127.0.0.1\", port = 9 }\n",
    );
    e.reload().unwrap();
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.1");
    assert_eq!(ep(&e, "app", "new-2")["forced"], "down");
}

#[test]
fn the_api_override_wins_over_the_file_and_the_file_over_monitor_calls() {
    let _serial = serial();
    let s = Setup::new("api");
    let (e, _log) = engine(&s);
    s.set("app/eu-west", Setting::Drain);
    moves_to(&e, "app.tm.example", "192.0.2.2");
    // An API override, while set, wins over the file's admin state.
    e.set_admin_state("app", "eu-west", AdminState::Enabled)
        .unwrap();
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.1");
    assert_eq!(ep(&e, "app", "eu-west")["admin_source"], "api");
    // ... and across file edits of the same endpoint.
    s.set("app/eu-west", Setting::Disabled);
    wait_for(APPLY_SECS, "file applied", || {
        admin_file::AdminFile::read(&s.admin()).unwrap().entries[0].setting == Setting::Disabled
            && status(&e)["admin_file"]["loaded_at"].is_u64()
    });
    stays(&e, "app.tm.example", "192.0.2.1", 2.0);
    // Cleared: the file applies again, at once.
    e.set_admin_state("app", "eu-west", AdminState::None)
        .unwrap();
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.2");
    assert_eq!(ep(&e, "app", "eu-west")["admin"], "disabled");
    assert_eq!(ep(&e, "app", "eu-west")["admin_source"], "file");
    // Removing the key returns the endpoint to the API override.
    e.set_admin_state("app.tm.example", "eu-west", AdminState::Drain)
        .unwrap();
    s.restore("app/eu-west");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.2");
    assert_eq!(ep(&e, "app", "eu-west")["admin"], "drain");
    // An API override is kept across a reload.
    e.reload().unwrap();
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.2");
    e.set_admin_state("app", "eu-west", AdminState::None)
        .unwrap();
    assert_eq!(first(&e, "app.tm.example"), "192.0.2.1");

    // set_monitor_status is a verdict; the file's up/down wins over it.
    e.set_monitor_status("web", "a", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(first(&e, "web.tm.example"), "192.0.2.12");
    s.set("web/a", Setting::Up);
    moves_to(&e, "web.tm.example", "192.0.2.11");
    e.set_monitor_status("web", "a", MonitorStatus::Degraded)
        .unwrap();
    assert_eq!(first(&e, "web.tm.example"), "192.0.2.11");
    s.set("web/*", Setting::Down);
    s.restore("web/a");
    // Both forced down: fail open, first by priority.
    wait_for(APPLY_SECS, "both down", || {
        ep(&e, "web", "a")["status"] == "Degraded" && ep(&e, "web", "b")["status"] == "Degraded"
    });
    assert_eq!(first(&e, "web.tm.example"), "192.0.2.11");
    let b = ep(&e, "web", "b");
    assert_eq!(
        (&b["forced"], &b["monitor_status"]),
        (&"down".into(), &"Online".into()),
        "{b}"
    );
    // Restored: back to the monitor verdicts (a Degraded by the call).
    s.restore("web/*");
    moves_to(&e, "web.tm.example", "192.0.2.12");
}

/// Through the embedded front: `dig` sees the answer move after a drain.
#[test]
fn front_dig_answer_moves_on_drain() {
    let _serial = serial();
    let s = Setup::new("front");
    let front = common::front::Front::start(&s.config());
    let dig_first = || {
        common::dns::dig_raw(front.port, "app.tm.example", "A", &[])
            .2
            .first()
            .map(|a| a.2.clone())
            .unwrap_or_default()
    };
    wait_for(10, "primary", || dig_first() == "192.0.2.1");
    s.set("app/eu-west", Setting::Drain);
    let t0 = Instant::now();
    wait_for(APPLY_SECS, "dig sees the drain", || {
        dig_first() == "192.0.2.2"
    });
    println!(
        "front: drain seen by dig after {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    s.restore("app/eu-west");
    wait_for(APPLY_SECS, "dig sees the restore", || {
        dig_first() == "192.0.2.1"
    });
    drop(front);
}

/// A big admin file on a big config: 5000 endpoints, 100,000 keys
/// without globs (most of them stale) and 1000 with. It applies within a
/// few seconds, the drop after it is prompt, and the stale keys take a
/// dozen log lines, not one each. Before, each application tried every
/// key against every endpoint, twice (10^9 matches here: minutes with the
/// engine's writer lock held, `/metrics` and the drop waiting), and
/// logged 100,000 lines.
#[test]
fn a_file_of_100k_keys_applies_quickly_and_logs_little() {
    let _g = serial();
    let dir = fresh_dir("admin-100k");
    let mut cfg = String::from(
        "[engine]\nwatch_interval = \"1s\"\nadmin_state = \"admin.toml\"\n\
         [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n",
    );
    for p in 0..250 {
        cfg += &format!("[[profile]]\nname = \"p{p}\"\nrouting = \"priority\"\n");
        for e in 0..20 {
            cfg += &format!(
                "[[profile.endpoint]]\nname = \"ep-{e}\"\naddresses = [\"192.0.2.{}\"]\npriority = {}\n",
                e + 1,
                e + 1
            );
        }
    }
    std::fs::write(dir.join("tm.toml"), cfg).unwrap();
    let lines: Lines = Arc::default();
    let l = lines.clone();
    let e = Engine::from_file_with_log(
        dir.join("tm.toml"),
        Some(Box::new(move |lv, m| {
            l.lock().unwrap().push((lv, m.to_string()));
        })),
    )
    .unwrap();
    assert_eq!(first(&e, "p7.tm.example"), "192.0.2.1");
    // p7/ep-0 drained by a key without globs among 100,000 stale ones;
    // p8's first two by globs among 1000 (999 of them stale).
    let mut text = String::new();
    for i in 0..100_000 {
        text += &format!("\"gone{i}/ep-{}\" = \"drain\"\n", i % 20);
    }
    text += "\"P7.tm.example./EP-0\" = \"drain\"\n";
    for i in 0..999 {
        text += &format!("\"old{i}*/ep-*\" = \"disabled\"\n");
    }
    text += "\"p8/ep-?\" = \"drain\"\n";
    write_replacing(&dir.join("admin.toml"), &text);
    let t0 = Instant::now();
    wait_for(20, "the big admin file applied", || {
        status(&e)["admin_file"]["entries"] == 101_001 && first(&e, "p7.tm.example") == "192.0.2.2"
    });
    assert_eq!(first(&e, "p8.tm.example"), "192.0.2.11");
    println!("applied {:?} after the write", t0.elapsed());
    let st = status(&e);
    assert_eq!(
        st["admin_file"]["unmatched"].as_array().unwrap().len(),
        100_999
    );
    let stale_lines = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.contains("match no endpoint") || m.contains("matches no endpoint"))
        .count();
    assert!(stale_lines <= 11, "{stale_lines} log lines for stale keys");
    let t0 = Instant::now();
    drop(e);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}
