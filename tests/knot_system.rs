//! Knot DNS loads trafficmgr as a query module (mod-trafficmgr,
//! `knot/trafficmgr_knot.c`, built by `make knot-module` against the
//! installed libknot-dev headers): a real `knotd` on a loopback port with a
//! temporary directory, queried with `dig` over UDP and TCP; answers
//! compared with the Rust API's, with the client address (`-b`), ECS
//! (`+subnet`) and the scope the decision used; several configs and zones in
//! one knotd (one engine per config file); health failover with a real HTTP
//! backend; a live config change; `knotc reload` keeping exactly one set of
//! threads; a clean stop.

mod common;
use common::dns::{BASIC_ROWS, Compare, DigOut, assert_host_matches, dig_raw, free_port};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
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

/// Builds the module beside the library of this test build (the same
/// recipe `make build` runs) and returns its path.
fn module() -> PathBuf {
    let out = target_dir();
    let st = Command::new("make")
        .args([
            "--no-print-directory",
            "-s",
            "-C",
            env!("CARGO_MANIFEST_DIR"),
        ])
        .arg("knot-module")
        .arg(format!("OUTDIR={}", out.display()))
        .status()
        .expect("make is installed");
    assert!(
        st.success(),
        "make knot-module failed (libknot-dev installed?)"
    );
    out.join("trafficmgr_knot.so")
}

/// One Knot zone served through mod-trafficmgr: (zone, module id, config).
type ZoneSpec<'a> = (&'a str, &'a str, &'a Path);

struct Knot {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// How [`Knot::start_with`] runs knotd besides its zones.
#[derive(Default)]
struct Opts<'a> {
    /// Records the first zone holds besides SOA and NS.
    extra: &'a str,
    /// Also listen on ::1 (same port).
    ipv6: bool,
    /// Lines added to every zone's entry (4 spaces of indent each).
    zone_conf: &'a str,
}

impl Knot {
    /// Starts `knotd` on a free loopback port with a zone per `zones`
    /// entry, each holding the SOA and NS the config's engine gives for its
    /// apex (plus `extra` records for the first zone).
    fn start(dir: &Path, zones: &[ZoneSpec], extra: &str) -> Knot {
        Knot::start_with(
            dir,
            zones,
            Opts {
                extra,
                ..Opts::default()
            },
        )
    }

    /// As [`Knot::start`], with the options. knotd runs in `dir`, so a
    /// relative config path is taken from there; a config that does not
    /// load gets a zone with a placeholder SOA and NS.
    fn start_with(dir: &Path, zones: &[ZoneSpec], opts: Opts) -> Knot {
        let port = free_port();
        let mut mods = String::new();
        let mut seen = Vec::new();
        let mut zone_list = String::new();
        for (i, (zone, id, cfg)) in zones.iter().enumerate() {
            if !seen.contains(id) {
                seen.push(*id);
                mods.push_str(&format!("  - id: {id}\n    config: {}\n", cfg.display()));
            }
            let mut text = format!("$ORIGIN {zone}.\n");
            match Engine::from_file(dir.join(cfg)) {
                Ok(engine) => {
                    for t in [6, 2] {
                        for (ty, ttl, rdata) in ask(&engine, zone, t, None, None).answer {
                            text.push_str(&format!("@ {ttl} IN {ty} {rdata}\n"));
                        }
                    }
                }
                Err(_) => text.push_str(&format!(
                    "@ 300 IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n@ 300 IN NS ns1.{zone}.\n"
                )),
            }
            if i == 0 {
                text.push_str(opts.extra);
            }
            std::fs::write(dir.join(format!("{zone}.zone")), text).unwrap();
            zone_list.push_str(&format!(
                "  - domain: {zone}\n    file: {}/{zone}.zone\n    module: mod-trafficmgr/{id}\n{}",
                dir.display(),
                opts.zone_conf,
            ));
        }
        let listen = if opts.ipv6 {
            format!("[ 127.0.0.1@{port}, ::1@{port} ]")
        } else {
            format!("127.0.0.1@{port}")
        };
        let conf = format!(
            "server:\n    rundir: {d}\n    listen: {listen}\n    edns-client-subnet: on\n    \
             udp-workers: 2\n    tcp-workers: 2\n    background-workers: 1\n\
             database:\n    storage: {d}\n\
             log:\n  - target: stderr\n    any: info\n\
             module:\n  - id: mod-trafficmgr\n    file: {m}\n\
             mod-trafficmgr:\n{mods}\
             template:\n  - id: default\n    storage: {d}\n    zonefile-sync: -1\n    journal-content: none\n\
             zone:\n{zone_list}",
            d = dir.display(),
            m = module().display(),
        );
        std::fs::write(dir.join("knot.conf"), conf).unwrap();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(dir.join("knot.conf"))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("knotd.log")).unwrap(),
            ))
            .spawn()
            .expect("knotd (Debian's knot) is installed");
        let k = Knot {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let first = zones[0].0;
        wait_for(30, "knotd answering", || {
            dig_raw(port, first, "SOA", &[]).0 == "NOERROR"
        });
        k
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Threads of knotd whose name starts with `prefix` (`tm-maint`: one
    /// per engine; `tm-probe-N`).
    fn our_threads(&self, prefix: &str) -> usize {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return 0;
        };
        rd.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    /// Runs `knotc` with the words of `cmd`; it must succeed.
    fn knotc(&self, cmd: &str) {
        let out = Command::new("knotc")
            .arg("-c")
            .arg(self.dir.join("knot.conf"))
            .args(cmd.split_whitespace())
            .output()
            .expect("knotc (Debian's knot) is installed");
        assert!(
            out.status.success(),
            "knotc {cmd}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("knotd.log")).unwrap_or_default()
    }

    /// SIGTERM; knotd must exit 0 within 20 s. Returns its log.
    fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child's PID.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "knotd exited with {st}\n{}", self.log());
                break;
            }
            assert!(Instant::now() < deadline, "knotd did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dig(port: u16, name: &str, t: &str, extra: &[&str]) -> DigOut {
    let mut d = dig_raw(port, name, t, extra);
    d.2.sort();
    d
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Records the first zone holds besides SOA and NS: a name the config does
/// not have, a profile name that answers NODATA for some types, and a
/// profile name that answers for every type.
const ZONE_EXTRA: &str = "static 300 IN A 192.0.2.99\naddrs 300 IN TXT \"from the zone\"\nprio 300 IN TXT \"hidden by the module\"\n";

#[test]
fn knot_answers_like_the_rust_api() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("knot-answers");
    let cfg = basic_in(&dir);
    // A second config with two zones, both Knot zones using it.
    let second = dir.join("second.toml");
    std::fs::write(&second, "[[zone]]\nname = \"second.example\"\nnameservers = [\"ns.second.example\"]\n[[zone]]\nname = \"third.example\"\nnameservers = [\"ns.third.example\"]\n[[profile]]\nname = \"www\"\nzone = \"second.example\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"second-target.example\"\n[[profile]]\nname = \"www\"\nzone = \"third.example\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"third-target.example\"\n").unwrap();
    let knot = Knot::start(
        &dir,
        &[
            ("tm.example", "tm", &cfg),
            ("second.example", "second", &second),
            ("third.example", "second", &second),
        ],
        ZONE_EXTRA,
    );
    let engine = Engine::from_file(&cfg).unwrap();
    // Every row of the answer table, UDP and TCP, from the row's source
    // address, with its ECS and the scope the decision used.
    assert_host_matches(
        knot.port,
        &engine,
        BASIC_ROWS,
        Compare {
            bind_source: true,
            sorted: true,
            scope: true,
        },
    );
    // The scope is the decision's, written back through qdata->ecs.
    let got = dig(
        knot.port,
        "perf.tm.example",
        "A",
        &["-b", "127.0.0.2", "+subnet=203.0.113.0/24"],
    );
    assert_eq!(got.2[0].2, "asia.contoso.example.");
    let want = ask(
        &engine,
        "perf.tm.example",
        1,
        Some("127.0.0.2"),
        Some(("203.0.113.0", 24)),
    );
    assert!(want.scope > 0, "the decision depends on the subnet");
    assert_eq!(
        got.4.as_deref(),
        Some(format!("203.0.113.0/24/{}", want.scope).as_str())
    );
    // Names the zone has: below the apex, a name the config does not have
    // is the zone's; a profile answering NODATA leaves the zone's records
    // for that type; a profile with an answer hides the zone's.
    assert_eq!(
        dig(knot.port, "static.tm.example", "A", &[]).2,
        vec![("A".to_string(), 300, "192.0.2.99".to_string())]
    );
    assert_eq!(
        dig(knot.port, "addrs.tm.example", "TXT", &[]).2,
        vec![("TXT".to_string(), 300, "\"from the zone\"".to_string())]
    );
    assert_eq!(
        dig(knot.port, "prio.tm.example", "TXT", &[]).2,
        vec![(
            "CNAME".to_string(),
            30,
            "primary.contoso.example.".to_string()
        )]
    );
    // Several configs in one knotd; two zones share one engine.
    assert_eq!(
        dig(knot.port, "www.second.example", "A", &[]).2[0].2,
        "second-target.example."
    );
    assert_eq!(
        dig(knot.port, "www.third.example", "A", &[]).2[0].2,
        "third-target.example."
    );
    assert_eq!(
        knot.our_threads("tm-maint"),
        2,
        "one engine per config file"
    );
    // A name under no zone of knotd: Knot's own REFUSED.
    assert_eq!(dig(knot.port, "www.example.org", "A", &[]).0, "REFUSED");
    let log = knot.stop();
    assert!(
        log.contains("module 'mod-trafficmgr/tm', serving"),
        "the module's lines go to Knot's log: {log}"
    );
    assert!(
        log.contains("module 'mod-trafficmgr/tm', trafficmgr"),
        "the engine's own lines go to Knot's log: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn failover_live_change_and_knotc_reload_inside_knotd() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("knot-life");
    let f = Failover::new(&dir);
    let knot = Knot::start(&dir, &[("tm.example", "tm", &f.config)], "");
    // Health failover with a real backend, and back; a live config change,
    // picked up by the engine's watch inside knotd.
    f.exercise(knot.port, "knotd");
    f.exercise_admin(knot.port, "knotd");
    let app = |k: &Knot| {
        dig(k.port, "app.tm.example", "A", &[])
            .2
            .first()
            .map(|a| a.2.clone())
            .unwrap_or_default()
    };
    assert_eq!(knot.our_threads("tm-maint"), 1);
    let probes = knot.our_threads("tm-probe");
    assert!(probes >= 1, "the engine probes inside knotd");
    // knotc reload: Knot creates the new module instances, then drops the
    // old; they hold the same engine (shared by path), so exactly one set
    // of threads is left and health is kept: with the primary down, the
    // answer right after each reload is still the secondary (a new engine
    // would serve the primary until its first probe failed: the primary
    // hangs, so a first probe takes the whole 500 ms timeout).
    f.primary.set(common::backend::Mode::Hang);
    wait_for(10, "failover before the reloads", || {
        app(&knot) == "192.0.2.2"
    });
    for _ in 0..3 {
        knot.knotc("reload");
        assert_eq!(app(&knot), "192.0.2.2", "health kept across knotc reload");
    }
    wait_for(10, "one set of threads", || {
        knot.our_threads("tm-maint") == 1 && knot.our_threads("tm-probe") == probes
    });
    // After the reloads the engine still follows its backends.
    f.primary.set(common::backend::Mode::Status(200));
    wait_for(10, "recovery after reloads", || app(&knot) == "192.0.2.1");
    let log = knot.stop();
    assert!(
        log.contains("configuration reloaded (file changed)"),
        "{log}"
    );
    assert_eq!(
        log.matches("module 'mod-trafficmgr/tm', serving").count(),
        4,
        "one instance at start and one per knotc reload: {log}"
    );
}

/// Hostile review: queries of class ANY are answered as class IN (as
/// Knot answers its zone, and as the library's wire front does), and an
/// IPv6 resolver that sends ECS 0.0.0.0/0 (a source prefix of 0: "do not
/// use my clients' address") gets an answer whose scope fits the option's
/// family. Before: `perf` of class ANY was Knot's NXDOMAIN, and the /0
/// option came back FORMERR (the decision on ::1 had scope 56, which Knot
/// refuses to write into an IPv4 option). Also: a 253-octet name, and a
/// label holding a dot that spells a profile's name.
#[test]
fn hostile_queries_class_any_v6_resolver_with_ecs_zero_and_odd_names() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("knot-hostile");
    let cfg = basic_in(&dir);
    let aff = dir.join("aff.toml");
    std::fs::write(
        &aff,
        "[[zone]]\nname = \"aff.example\"\nnameservers = [\"ns1.aff.example\"]\n\
         [[profile]]\nname = \"w\"\nrouting = \"weighted\"\naffinity = \"client-subnet\"\n\
         [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\n\
         [[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\n",
    )
    .unwrap();
    let knot = Knot::start_with(
        &dir,
        &[("tm.example", "tm", &cfg), ("aff.example", "aff", &aff)],
        Opts {
            ipv6: true,
            ..Opts::default()
        },
    );
    for (name, t) in [
        ("prio.tm.example", "A"),
        ("perf.tm.example", "A"),
        // (Not a weighted profile: its draw is random, two digs may differ.)
        ("addrs.tm.example", "ANY"),
        ("addrs.tm.example", "TXT"),
        ("deep.sub.tm.example", "AAAA"),
        ("nothing.tm.example", "A"),
    ] {
        let class_in = dig(knot.port, name, t, &[]);
        let class_any = dig(knot.port, name, t, &["-c", "ANY"]);
        assert_eq!(class_any, class_in, "{name} {t} of class ANY");
    }
    assert_eq!(
        dig(knot.port, "perf.tm.example", "A", &["-c", "ANY"]).0,
        "NOERROR"
    );
    // Class CH is not ours (Knot refuses it, as for its own zones).
    assert_eq!(
        dig(knot.port, "prio.tm.example", "A", &["-c", "CH"]).0,
        "REFUSED"
    );

    // An IPv6 resolver with ECS 0.0.0.0/0: the decision is on ::1 (the
    // library's rule for a source prefix of 0); the scope, 56 for that
    // IPv6 address, is capped to the option's family (32), as the
    // library's wire front caps it.
    let engine = Engine::from_file(&aff).unwrap();
    let want = ask(
        &engine,
        "w.aff.example",
        1,
        Some("::1"),
        Some(("0.0.0.0", 0)),
    );
    assert_eq!(want.scope, 56, "the decision on ::1 has an IPv6 scope");
    let mut got = common::dns::dig_at(
        "::1",
        knot.port,
        "w.aff.example",
        "A",
        &["+subnet=0.0.0.0/0"],
    );
    got.2.sort();
    assert_eq!(got.0, "NOERROR", "{got:?}");
    assert_eq!(got.2, want.answer);
    assert_eq!(got.4.as_deref(), Some("0.0.0.0/0/32"));
    // The same from IPv4 with an IPv6 /0 option: a scope that fits.
    let got = dig(knot.port, "w.aff.example", "A", &["+subnet=::/0"]);
    assert_eq!(got.0, "NOERROR");
    assert_eq!(got.4.as_deref(), Some("::/0/24"));

    // A 253-octet name under the zone: Knot's NXDOMAIN with the SOA.
    let label = "a".repeat(63);
    let long = format!("{label}.{label}.{label}.{}.tm.example", "b".repeat(50));
    assert_eq!(long.len(), 253);
    let got = dig(knot.port, &long, "A", &[]);
    assert_eq!(
        (got.0.as_str(), got.1, got.3.clone()),
        ("NXDOMAIN", true, vec!["SOA".to_string()])
    );
    // One label "deep.sub" is not the profile deep.sub; nor is a label
    // with a NUL octet the profile prio.
    assert_eq!(
        dig(knot.port, "deep\\.sub.tm.example", "AAAA", &[]).0,
        "NXDOMAIN"
    );
    assert_eq!(
        dig(knot.port, "pr\\000io.tm.example", "A", &[]).0,
        "NXDOMAIN"
    );
    let log = knot.stop();
    assert!(!log.contains("panicked"), "{log}");
}

/// Hostile review (an unlucky operator): a config file that does not load
/// when knotd starts. Before, the module was left out of the zone and Knot
/// answered every name of the config NXDOMAIN, with AA, which resolvers
/// cache for the SOA's negative TTL; now the names the zone does not have
/// are SERVFAIL (resolvers try the other servers and cache nothing for
/// long), the zone's own names and apex are served, the log says why, and
/// `knotc reload` once the file is fixed serves it. A TOML broken later
/// (the file watch refuses it) and a `knotc reload` then keep the running
/// config.
#[test]
fn a_config_that_does_not_load_answers_servfail_not_nxdomain() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("knot-noconf");
    let cfg = dir.join("tm.toml");
    let knot = Knot::start_with(
        &dir,
        &[("tm.example", "tm", &cfg)],
        Opts {
            extra: "static 300 IN A 192.0.2.99\n",
            ..Opts::default()
        },
    );
    assert_eq!(dig(knot.port, "tm.example", "SOA", &[]).0, "NOERROR");
    assert_eq!(
        dig(knot.port, "static.tm.example", "A", &[]).2,
        vec![("A".to_string(), 300, "192.0.2.99".to_string())]
    );
    for name in ["prio.tm.example", "nothing.tm.example"] {
        let got = dig(knot.port, name, "A", &[]);
        assert_eq!(got.0, "SERVFAIL", "{name}: {got:?}");
    }
    let log = knot.log();
    assert!(log.contains("cannot read the config file"), "{log}");
    assert!(log.contains("answering SERVFAIL"), "{log}");

    // Fixed, then `knotc reload`: served.
    std::fs::write(&cfg, basic_text()).unwrap();
    knot.knotc("reload");
    wait_for(10, "served after the fix", || {
        dig(knot.port, "prio.tm.example", "A", &[])
            .2
            .first()
            .map(|a| a.2.clone())
            == Some("primary.contoso.example.".to_string())
    });
    assert_eq!(dig(knot.port, "nothing.tm.example", "A", &[]).0, "NXDOMAIN");

    // Broken while running: the watch refuses it and keeps the config; a
    // `knotc reload` keeps the same engine (and so that config).
    let mut text = basic_text();
    text.push_str("\n[[profile]\n");
    std::fs::write(&cfg, text).unwrap();
    wait_for(10, "the watch refusing the broken file", || {
        knot.log()
            .contains("the previous configuration keeps serving")
    });
    knot.knotc("reload");
    assert_eq!(
        dig(knot.port, "prio.tm.example", "A", &[]).2[0].2,
        "primary.contoso.example."
    );
    knot.knotc("zone-reload tm.example");
    assert_eq!(
        dig(knot.port, "prio.tm.example", "A", &[]).2[0].2,
        "primary.contoso.example."
    );
    assert_eq!(knot.our_threads("tm-maint"), 1);
    let log = knot.stop();
    assert!(!log.contains("panicked"), "{log}");
}

/// Hostile review: one config file named two ways (`./tm.toml` from
/// knotd's working directory, and its absolute path) by two
/// `mod-trafficmgr` entries is one engine, as the README says ("one engine
/// per config file"). Before: two engines, two sets of probes and watches.
#[test]
fn one_engine_per_config_file_however_its_path_is_spelled() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("knot-spelling");
    let cfg = basic_in(&dir);
    let knot = Knot::start(
        &dir,
        &[
            ("tm.example", "abs", &cfg),
            ("other.example", "rel", Path::new("./tm.toml")),
        ],
        "",
    );
    assert_eq!(
        dig(knot.port, "prio.tm.example", "A", &[]).2[0].2,
        "primary.contoso.example."
    );
    assert_eq!(knot.our_threads("tm-maint"), 1, "one engine for tm.toml");
    let log = knot.stop();
    assert!(
        log.contains("module 'mod-trafficmgr/rel', the config path ./tm.toml is relative"),
        "{log}"
    );
    assert!(!log.contains("the zone is signed"), "unsigned zones: {log}");
}

/// Hostile review (an unlucky operator): a signed zone (`dnssec-signing:
/// on`). The module's answers carry no RRSIG, and the zone's NSEC chain,
/// built from the zone file, proves that the config's names do not exist,
/// so validating resolvers fail them (and may synthesize NXDOMAIN from the
/// cached NSEC records). knotd serves on, and the module says so in the
/// log at load; before, nothing did.
#[test]
fn a_signed_zone_is_named_in_the_log() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("knot-signed");
    let cfg = basic_in(&dir);
    let knot = Knot::start_with(
        &dir,
        &[("tm.example", "tm", &cfg)],
        Opts {
            zone_conf: "    dnssec-signing: on\n    journal-content: changes\n",
            ..Opts::default()
        },
    );
    let got = dig(knot.port, "prio.tm.example", "A", &["+dnssec"]);
    assert_eq!(got.2[0].2, "primary.contoso.example.");
    let log = knot.stop();
    assert!(
        log.contains("module 'mod-trafficmgr/tm', the zone is signed (dnssec-signing: on)"),
        "{log}"
    );
}
