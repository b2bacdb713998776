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
        let port = free_port();
        std::fs::write(
            dir.join("static.zone"),
            "$TTL 300\n@ IN SOA ns.static.example. host.static.example. 1 3600 600 86400 300\n@ IN NS ns.static.example.\nns IN A 192.0.2.53\nwww IN A 192.0.2.80\n",
        )
        .unwrap();
        let mut conf = format!(
            "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  recursion no;\n  minimal-responses yes;\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n}};\ncontrols {{ }};\nzone \"static.example\" {{ type primary; file \"{d}/static.zone\"; }};\n",
            d = dir.display()
        );
        for (name, cfg) in dlz {
            conf.push_str(&format!(
                "dlz \"{name}\" {{ database \"dlopen {} {}\"; }};\n",
                lib_path().display(),
                cfg.display()
            ));
        }
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
        wait_for(30, "named answering", || {
            dig(port, "www.static.example", "A", &[]).0 == "NOERROR"
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
