//! BIND 9 loads libtrafficmgr.so as a DLZ module: a real `named -g` on a
//! loopback port, with a static zone beside two `dlz` stanzas, queried with
//! `dig` over UDP and TCP; answers compared with the Rust API's; client
//! address (`-b`) and ECS (`+subnet`) reach the module; health failover with
//! a real HTTP backend; a live config change picked up inside named;
//! SIGHUP re-creating the instances without leaking threads; the
//! admin-state file applied inside named; a clean stop.

mod common;
use common::dns::{BASIC_ROWS, Compare, DigOut, assert_host_matches, dig_raw, free_port};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trafficmgr::Engine;

fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("libtrafficmgr.so")
}

struct Named {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Named {
    fn start(dir: &Path, dlz: &[(&str, &Path)]) -> Named {
        std::fs::write(
            dir.join("static.zone"),
            "$TTL 300\n@ IN SOA ns.static.example. host.static.example. 1 3600 600 86400 300\n@ IN NS ns.static.example.\nns IN A 192.0.2.53\nwww IN A 192.0.2.80\n",
        )
        .unwrap();
        let mut body = format!(
            "zone \"static.example\" {{ type primary; file \"{}/static.zone\"; }};\n",
            dir.display()
        );
        for (name, cfg) in dlz {
            body.push_str(&dlz_stanza(name, cfg));
        }
        let n = Named::start_with(dir, &body);
        wait_for(30, "named answering", || {
            dig(n.port, "www.static.example", "A", &[]).0 == "NOERROR"
        });
        n
    }

    /// named with `body` (zones, dlz stanzas or views) after the options;
    /// returns once it listens.
    fn start_with(dir: &Path, body: &str) -> Named {
        let port = free_port();
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  recursion no;\n  minimal-responses yes;\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n}};\ncontrols {{ }};\n{body}",
            d = dir.display()
        );
        std::fs::write(dir.join("named.conf"), conf).unwrap();
        let mut cmd = Command::new("/usr/sbin/named");
        cmd.arg("-g")
            .arg("-c")
            .arg(dir.join("named.conf"))
            .args(["-n", "2"]);
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            cmd.args(["-u", "root"]);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("named.log")).unwrap(),
            ))
            .spawn()
            .expect("named (Debian's bind9) is installed");
        let n = Named {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        wait_for(30, "named running", || {
            n.log().lines().any(|l| l.ends_with(" running"))
        });
        n
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Threads of named whose name is ours (`tm-maint`, `tm-probe-N`).
    fn our_threads(&self, prefix: &str) -> usize {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return 0;
        };
        rd.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    /// The thread ids of named's threads whose name starts with `prefix`.
    fn tids(&self, prefix: &str) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return Vec::new();
        };
        let mut v: Vec<String> = rd
            .filter_map(|t| {
                let t = t.ok()?;
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                comm.starts_with(prefix)
                    .then(|| t.file_name().to_string_lossy().to_string())
            })
            .collect();
        v.sort();
        v
    }

    /// Sends SIGHUP (what `rndc reload` does) and waits until named says
    /// how its reload ended; true when it succeeded.
    fn reload(&self) -> bool {
        let done = |log: &str| {
            log.matches("reloading configuration succeeded").count()
                + log.matches("reloading configuration failed").count()
        };
        let before = done(&self.log());
        // SAFETY: kill(2) on our own child's PID.
        unsafe { libc::kill(self.pid(), libc::SIGHUP) };
        wait_for(20, "named's reload", || done(&self.log()) > before);
        let log = self.log();
        let tail = &log[log
            .rmatch_indices("reloading configuration ")
            .next()
            .map(|(i, _)| i)
            .unwrap_or(0)..];
        tail.starts_with("reloading configuration succeeded")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }

    fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child's PID.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "named exited with {st}\n{}", self.log());
                break;
            }
            assert!(Instant::now() < deadline, "named did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        if let Some(mut so) = self.child.stdout.take() {
            use std::io::Read;
            let _ = so.read_to_string(&mut out);
        }
        assert!(out.is_empty(), "something wrote to named's stdout: {out}");
        self.log()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dlz_stanza(name: &str, cfg: &Path) -> String {
    format!(
        "dlz \"{name}\" {{ database \"dlopen {} {}\"; }};\n",
        lib_path().display(),
        cfg.display()
    )
}

/// dig's answer with the answer section sorted (named orders RRsets freely).
fn dig(port: u16, name: &str, t: &str, extra: &[&str]) -> DigOut {
    let mut d = dig_raw(port, name, t, extra);
    d.2.sort();
    d
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn named_answers_like_the_rust_api() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-answers");
    let cfg = basic_in(&dir);
    let second = dir.join("second.toml");
    std::fs::write(&second, "[[zone]]\nname = \"second.example\"\nnameservers = [\"ns.second.example\"]\n[[profile]]\nname = \"www\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"second-target.example\"\n").unwrap();
    let named = Named::start(&dir, &[("tm", &cfg), ("second", &second)]);
    let engine = Engine::from_file(&cfg).unwrap();
    let table = BASIC_ROWS;
    // named orders RRsets freely; it answers ECS with scope /0 (checked below).
    assert_host_matches(
        named.port,
        &engine,
        table,
        Compare {
            bind_source: true,
            sorted: true,
            scope: false,
        },
    );
    // The second dlz stanza and the static zone work beside the first.
    assert_eq!(
        dig(named.port, "www.second.example", "A", &[]).2[0].2,
        "second-target.example."
    );
    assert_eq!(
        dig(named.port, "www.static.example", "A", &[]).2[0].2,
        "192.0.2.80"
    );
    // A name outside every zone: named's own answer (REFUSED, not ours).
    assert_eq!(dig(named.port, "www.example.org", "A", &[]).0, "REFUSED");
    // ECS reaches the module (clientinfo v3); named answers scope /0.
    let got = dig(
        named.port,
        "perf.tm.example",
        "A",
        &["-b", "127.0.0.2", "+subnet=203.0.113.0/24"],
    );
    assert_eq!(got.2[0].2, "asia.contoso.example.");
    assert_eq!(got.4.as_deref(), Some("203.0.113.0/24/0"));
    let log = named.stop();
    assert!(
        log.contains("trafficmgr: dlz tm: serving"),
        "our log lines go through named's log: {log}"
    );
    assert!(!log.contains("panicked"));
}

#[test]
fn failover_live_change_and_sighup_inside_named() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-life");
    let f = Failover::new(&dir);
    let named = Named::start(&dir, &[("tm", &f.config)]);
    // Health failover with a real backend, and back; a live config change,
    // picked up by the watch inside named.
    f.exercise(named.port, "named");
    let app = |n: &Named| {
        dig(n.port, "app.tm.example", "A", &[])
            .2
            .first()
            .map(|a| a.2.clone())
            .unwrap_or_default()
    };
    // One maintenance thread per instance.
    assert_eq!(named.our_threads("tm-maint"), 1);
    // SIGHUP: named creates a new instance, then destroys the old one.
    for _ in 0..3 {
        // SAFETY: kill(2) on our own child's PID.
        unsafe { libc::kill(named.pid(), libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(500));
        wait_for(10, "answers after SIGHUP", || app(&named) == "192.0.2.1");
    }
    wait_for(10, "old instances gone", || {
        named.our_threads("tm-maint") == 1
    });
    assert!(
        named.our_threads("tm-probe") <= 2,
        "probe threads left behind"
    );
    let log = named.stop();
    assert!(
        log.contains("configuration reloaded (file changed)"),
        "{log}"
    );
}

/// named calls dlz_lookup from its worker threads at once: a few seconds of
/// dnsperf load (4 clients, 2 named workers) lose nothing, and named still
/// answers right afterwards.
#[test]
fn concurrent_lookups_under_dnsperf() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-load");
    let cfg = basic_in(&dir);
    let named = Named::start(&dir, &[("tm", &cfg)]);
    let q = dir.join("queries");
    std::fs::write(&q, "prio.tm.example A\nperf.tm.example A\naddrs.tm.example A\nweighted.tm.example A\ndeep.sub.tm.example AAAA\nnope.tm.example A\n").unwrap();
    let out = Command::new("dnsperf")
        .args([
            "-s",
            "127.0.0.1",
            "-p",
            &named.port.to_string(),
            "-l",
            "3",
            "-c",
            "4",
            "-q",
            "100",
        ])
        .arg("-d")
        .arg(&q)
        .output()
        .expect("dnsperf is installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |label: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let (sent, completed, lost) = (
        field("Queries sent:"),
        field("Queries completed:"),
        field("Queries lost:"),
    );
    println!("dnsperf: {sent} sent, {completed} completed, {lost} lost");
    assert!(completed > 1000, "{text}");
    assert_eq!(lost, 0, "{text}");
    assert_eq!(
        dig(named.port, "prio.tm.example", "A", &[]).2[0].2,
        "primary.contoso.example."
    );
    named.stop();
}

/// The admin-state file inside named: `drain` written next to the config
/// moves dig's answer without a reload, `down` overrides a passing probe,
/// the state holds across SIGHUP (new instance, same file), and
/// `restore` brings the config's answer back.
#[test]
fn admin_file_drain_and_down_inside_named() {
    use trafficmgr::admin_file::{self, Setting};
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-admin");
    let f = Failover::new(&dir);
    let admin = f.admin_file();
    let named = Named::start(&dir, &[("tm", &f.config)]);
    let app = |n: &Named| {
        dig(n.port, "app.tm.example", "A", &[])
            .2
            .first()
            .map(|a| a.2.clone())
            .unwrap_or_default()
    };
    wait_for(10, "primary", || app(&named) == "192.0.2.1");
    admin_file::edit(&admin, |a| a.set("app/primary", Setting::Drain)).unwrap();
    let t0 = Instant::now();
    wait_for(5, "drain seen by dig", || app(&named) == "192.0.2.2");
    println!(
        "named: drain seen after {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    // Drain → down: still out, now as a forced state over a passing probe.
    admin_file::edit(&admin, |a| a.set("app/primary", Setting::Down)).unwrap();
    // A new instance (SIGHUP) starts from the file: never the primary.
    // SAFETY: kill(2) on our own child's PID.
    unsafe { libc::kill(named.pid(), libc::SIGHUP) };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        let a = app(&named);
        assert!(
            a == "192.0.2.2" || a.is_empty(),
            "answered {a:?} after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(app(&named), "192.0.2.2");
    admin_file::edit(&admin, |a| Ok(a.remove("app/primary"))).unwrap();
    wait_for(5, "restore seen by dig", || app(&named) == "192.0.2.1");
    let log = named.stop();
    assert!(log.contains("admin-state file"), "{log}");
    assert!(
        !log.contains("configuration reloaded (file changed)"),
        "the admin file must not reload the config: {log}"
    );
}

/// The first answer's rdata of `name` A, or "" (no answer, timeout).
fn first(port: u16, name: &str, extra: &[&str]) -> String {
    dig(port, name, "A", extra)
        .2
        .first()
        .map(|a| a.2.clone())
        .unwrap_or_default()
}

/// `rndc reload` creates the new DLZ instance before it destroys the old:
/// both now share one engine. Five reloads while two threads dig without
/// pause: never a second maintenance thread or probe set (sampled every
/// 5 ms), the same maintenance thread throughout (the same engine), every
/// dig answered right, each reload re-read the file; then named stops
/// cleanly (the last `dlz_destroy` joins the threads before named unloads
/// the library: a thread left behind would crash it at exit).
#[test]
fn reloads_keep_one_engine_while_dig_runs() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-reloads");
    let f = Failover::new(&dir);
    let named = Named::start(&dir, &[("tm", &f.config)]);
    let port = named.port;
    wait_for(10, "primary", || {
        first(port, "app.tm.example", &[]) == "192.0.2.1"
    });
    // Both endpoints probed: the probe pool is up.
    wait_for(10, "first probes", || {
        f.primary.requests() >= 1 && f.secondary.requests() >= 1
    });
    let maint = named.tids("tm-maint");
    assert_eq!(maint.len(), 1, "one maintenance thread: {maint:?}");
    let probes = named.tids("tm-probe").len();
    assert!(probes >= 1, "the app profile is probed");
    let stop = AtomicBool::new(false);
    let (peak_maint, peak_probes, digs) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let (mut m, mut p) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                m = m.max(named.our_threads("tm-maint"));
                p = p.max(named.our_threads("tm-probe"));
                std::thread::sleep(Duration::from_millis(5));
            }
            (m, p)
        });
        let diggers: Vec<_> = [
            ("app.tm.example", "192.0.2.1"),
            ("www.tm.example", "before.example."),
        ]
        .into_iter()
        .map(|(name, want)| {
            let stop = &stop;
            s.spawn(move || {
                let (mut n, mut bad) = (0usize, Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let got = first(port, name, &[]);
                    if got != want {
                        bad.push(format!("{name}: {got:?}"));
                    }
                    n += 1;
                }
                (n, bad)
            })
        })
        .collect();
        for i in 0..5 {
            assert!(named.reload(), "reload {i} failed:\n{}", named.log());
            // The old instance is destroyed a little after the reload.
            std::thread::sleep(Duration::from_millis(800));
        }
        stop.store(true, Ordering::SeqCst);
        let peaks = sampler.join().unwrap();
        let digs: Vec<(usize, Vec<String>)> =
            diggers.into_iter().map(|d| d.join().unwrap()).collect();
        (peaks.0, peaks.1, digs)
    });
    assert_eq!(peak_maint, 1, "a second engine ran during a reload");
    assert_eq!(
        peak_probes, probes,
        "a second probe set ran during a reload"
    );
    assert_eq!(named.tids("tm-maint"), maint, "the engine was replaced");
    for (n, bad) in &digs {
        assert!(*n >= 10, "too few digs: {n}");
        assert!(bad.is_empty(), "{} of {n} digs failed: {bad:?}", bad.len());
    }
    println!(
        "digs during 5 reloads: {:?}",
        digs.iter().map(|d| d.0).collect::<Vec<_>>()
    );
    assert_eq!(
        named
            .log()
            .matches("configuration reloaded (requested)")
            .count(),
        5,
        "each reload re-read the file"
    );
    let log = named.stop();
    // Each reload's old instance let go of the engine, which carried on;
    // the last instance's destroy, at named's stop, joined its threads.
    assert_eq!(
        log.matches("destroyed; the engine carries on for 1 other instance(s)")
            .count(),
        5,
        "{log}"
    );
    assert_eq!(
        log.matches("engine stopped, threads joined").count(),
        1,
        "{log}"
    );
}

/// Health lives in the one engine, so a reload keeps it: the primary,
/// Degraded by a real probe that times out (its backend never answers),
/// stays Degraded right after `rndc reload` and for the next two seconds.
/// A fresh engine would serve it (CheckingEndpoint) until its own first
/// probe timed out, 5 s later.
#[test]
fn health_survives_a_reload() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-health-reload");
    let primary = backend::Backend::start(backend::Mode::Hang);
    let secondary = backend::Backend::start(backend::Mode::Status(200));
    let cfg = dir.join("tm.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 5\n\
             [profile.monitor]\ninterval = \"10s\"\ntimeout = \"5s\"\ntolerated_failures = 0\n\
             [[profile.endpoint]]\nname = \"primary\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n\
             [[profile.endpoint]]\nname = \"secondary\"\naddresses = [\"192.0.2.2\"]\nprobe = {{ host = \"127.0.0.1\", port = {} }}\n",
            primary.port, secondary.port
        ),
    )
    .unwrap();
    let named = Named::start(&dir, &[("tm", &cfg)]);
    let port = named.port;
    wait_for(20, "the primary degraded by its probe", || {
        first(port, "app.tm.example", &[]) == "192.0.2.2"
    });
    assert!(primary.requests() >= 1, "the primary was probed");
    assert!(named.reload(), "{}", named.log());
    let until = Instant::now() + Duration::from_secs(2);
    let mut n = 0;
    while Instant::now() < until {
        let got = first(port, "app.tm.example", &[]);
        assert_eq!(
            got, "192.0.2.2",
            "after the reload (dig {n}): health was lost"
        );
        n += 1;
    }
    assert!(n >= 5, "{n}");
    named.stop();
}

/// A broken file at `rndc reload`: the running engine tries it, keeps its
/// configuration and says why (file:line:col) in named's log; named's
/// reload fails and it keeps answering from the previous configuration.
/// Once fixed, the next reload reads it (the watch is off here, so only the
/// reload can), in the same engine.
#[test]
fn a_broken_file_at_reload_keeps_the_running_config() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-broken-reload");
    let good = basic_text().replacen("[engine]\n", "[engine]\nwatch_interval = \"0s\"\n", 1);
    assert!(good.contains("watch_interval = \"0s\""));
    let cfg = dir.join("tm.toml");
    std::fs::write(&cfg, &good).unwrap();
    let named = Named::start(&dir, &[("tm", &cfg)]);
    let port = named.port;
    assert_eq!(
        first(port, "prio.tm.example", &[]),
        "primary.contoso.example."
    );
    let maint = named.tids("tm-maint");
    let changed = good.replace("primary.contoso.example", "changed.contoso.example");
    let broken = format!("{changed}\n[[profile]]\nname = 5\n");
    let line = broken.lines().count();
    std::fs::write(&cfg, &broken).unwrap();
    assert!(!named.reload(), "named took a broken file");
    let log = named.log();
    let want = format!(
        "reload failed (requested); the previous configuration keeps serving: {}:{line}:8: profile[",
        cfg.display()
    );
    assert!(log.contains(&want), "no `{want}` in:\n{log}");
    assert!(log.contains("trafficmgr: dlz tm: not created"), "{log}");
    assert_eq!(
        first(port, "prio.tm.example", &[]),
        "primary.contoso.example.",
        "the previous configuration keeps answering"
    );
    std::fs::write(&cfg, &changed).unwrap();
    assert!(named.reload(), "{}", named.log());
    assert_eq!(
        first(port, "prio.tm.example", &[]),
        "changed.contoso.example."
    );
    assert_eq!(named.tids("tm-maint"), maint, "the engine was replaced");
    // The failed dlz_create let go of its hold: at named's stop the last
    // instance's destroy stops the engine.
    let log = named.stop();
    assert_eq!(
        log.matches("engine stopped, threads joined").count(),
        1,
        "{log}"
    );
}

/// Two views whose `dlz` stanzas name the same file (through a symlink and
/// a `.` in the path) share one engine: one maintenance thread, both views
/// answer, and a reload keeps it.
#[test]
fn two_views_naming_one_file_share_one_engine() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-views");
    let cfg = basic_in(&dir);
    let link = dir.join("link.toml");
    std::os::unix::fs::symlink(&cfg, &link).unwrap();
    let dotted = dir.join(".").join("tm.toml");
    let body = format!(
        "view \"two\" {{\n match-clients {{ 127.0.0.2; }};\n {}}};\nview \"rest\" {{\n match-clients {{ any; }};\n {}}};\n",
        dlz_stanza("tm-two", &link),
        dlz_stanza("tm-rest", &dotted)
    );
    let named = Named::start_with(&dir, &body);
    let port = named.port;
    wait_for(20, "answers", || {
        first(port, "prio.tm.example", &[]) == "primary.contoso.example."
    });
    assert_eq!(
        first(port, "prio.tm.example", &["-b", "127.0.0.2"]),
        "primary.contoso.example."
    );
    let maint = named.tids("tm-maint");
    assert_eq!(maint.len(), 1, "one engine for one file: {maint:?}");
    assert!(named.reload(), "{}", named.log());
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(named.tids("tm-maint"), maint);
    assert_eq!(
        first(port, "prio.tm.example", &["-b", "127.0.0.2"]),
        "primary.contoso.example."
    );
    let log = named.stop();
    assert_eq!(
        log.matches("engine stopped, threads joined").count(),
        1,
        "{log}"
    );
}

/// The trap of issue 17: a real Prometheus scrapes the control listener of
/// the engine inside a real named (every 1 s) while named is reloaded five
/// times and a side thread GETs /metrics every 100 ms. The listener belongs
/// to the one engine the instances share, so it never goes away: no gap
/// between successful GETs longer than one scrape interval, `up` stayed 1
/// in Prometheus, and the answer counts of known `dig` queries, read back
/// through Prometheus's query API, carry on across the reloads.
#[test]
fn prometheus_scrapes_named_across_reloads() {
    use common::prometheus::{Prometheus, free_addr};
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("bind-prometheus");
    let ctl = free_addr();
    let cfg = dir.join("tm.toml");
    std::fs::write(
        &cfg,
        basic_text().replacen("[engine]\n", &format!("[engine]\ncontrol = \"{ctl}\"\n"), 1),
    )
    .unwrap();
    let named = Named::start(&dir, &[("tm", &cfg)]);
    let port = named.port;
    // One GET of /metrics: true for a 200 with our exposition.
    let get = || -> bool {
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&ctl, Duration::from_secs(1)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.starts_with("HTTP/1.1 200") && body.contains("trafficmgr_answers_total")
    };
    wait_for(10, "the control listener", get);
    let prom = Prometheus::start(&[ctl], Duration::from_secs(1));
    prom.wait_for_value(
        "up{job=\"trafficmgr\"}",
        |v| v == 1.0,
        Duration::from_secs(30),
    );
    let prio = "trafficmgr_answers_total{job=\"trafficmgr\",profile=\"prio.tm.example\",endpoint=\"primary\"}";
    let addrs = "trafficmgr_answers_total{job=\"trafficmgr\",profile=\"addrs.tm.example\",endpoint=\"v4only\"}";
    // Known queries: 7 for prio (its primary), 4 for addrs.
    for _ in 0..7 {
        assert_eq!(
            first(port, "prio.tm.example", &[]),
            "primary.contoso.example."
        );
    }
    for _ in 0..4 {
        assert!(!first(port, "addrs.tm.example", &[]).is_empty());
    }
    prom.wait_for_value(prio, |v| v == 7.0, Duration::from_secs(30));
    prom.wait_for_value(addrs, |v| v == 4.0, Duration::from_secs(30));
    // Five reloads, two prio queries after each, under scraping.
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let gets = std::thread::scope(|s| {
        let side = s.spawn(|| {
            let mut log = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                log.push((Instant::now(), get()));
                std::thread::sleep(Duration::from_millis(100));
            }
            log.push((Instant::now(), get()));
            log
        });
        for i in 0..5 {
            assert!(named.reload(), "reload {i}:\n{}", named.log());
            for _ in 0..2 {
                assert_eq!(
                    first(port, "prio.tm.example", &[]),
                    "primary.contoso.example."
                );
            }
            std::thread::sleep(Duration::from_millis(1200));
        }
        stop.store(true, Ordering::SeqCst);
        side.join().unwrap()
    });
    let window = started.elapsed();
    let failed = gets.iter().filter(|(_, ok)| !ok).count();
    let mut last_ok = started;
    let mut worst = Duration::ZERO;
    for (at, ok) in &gets {
        if *ok {
            worst = worst.max(at.duration_since(last_ok));
            last_ok = *at;
        }
    }
    worst = worst.max(gets.last().unwrap().0.duration_since(last_ok));
    println!(
        "{} GETs of /metrics over {window:?} across 5 reloads: {failed} failed, longest gap between successes {worst:?}",
        gets.len()
    );
    assert!(
        worst <= Duration::from_secs(1),
        "/metrics was away for {worst:?} ({failed} of {} GETs failed)",
        gets.len()
    );
    // Prometheus saw it up at every scrape of the window, and scraped.
    prom.wait_for_value(prio, |v| v == 17.0, Duration::from_secs(30));
    let secs = started.elapsed().as_secs() + 1;
    let min_up = prom.query(&format!("min_over_time(up{{job=\"trafficmgr\"}}[{secs}s])"));
    assert_eq!(min_up.len(), 1, "{min_up:?}");
    assert_eq!(min_up[0].1, 1.0, "a scrape failed during the reloads");
    let scrapes = prom.query(&format!(
        "count_over_time(up{{job=\"trafficmgr\"}}[{secs}s])"
    ));
    assert!(
        scrapes[0].1 >= (secs / 2) as f64,
        "too few scrapes in {secs} s: {scrapes:?}"
    );
    assert_eq!(
        prom.query(addrs)[0].1,
        4.0,
        "the counts carry on across reloads"
    );
    prom.wait_for_value(
        "trafficmgr_reloads_total{job=\"trafficmgr\",result=\"ok\"}",
        |v| v == 5.0,
        Duration::from_secs(30),
    );
    drop(prom);
    named.stop();
}
