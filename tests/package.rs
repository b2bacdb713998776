//! The Debian package for real, on this machine (`make test-package`, which
//! builds it with `make deb` and passes its path as `TM_DEB`):
//!
//! 1. `dpkg -i`: the `trafficmgr` system user exists; the BIND module is a
//!    real file `/usr/lib/bind/libtrafficmgr.so` (Debian's AppArmor profile
//!    for named maps `/usr/lib/bind/*.so` only, and checks the resolved
//!    path); the library's SONAME is `libtrafficmgr.so.<ABI>` and the linker
//!    cache knows it; a C program builds with `pkg-config trafficmgr` and
//!    runs against it; the systemd units pass `systemd-analyze verify` (where
//!    systemd-analyze runs; it does in this container).
//! 2. Debian's own `named`, run as the service runs it (`-u bind`), on the
//!    stock `/etc/bind` tree with the `dlz` stanza added, answers the
//!    packaged sample configuration through `/usr/lib/bind/libtrafficmgr.so`
//!    (seen in the process's memory map). To stay off port 53 and off the
//!    rndc port of the machine's own named, the stock
//!    `named.conf.options` is copied with four lines added inside its
//!    `options { }` (`listen-on port <free port> { 127.0.0.1; }`, no IPv6
//!    listener, pid and key files in a scratch folder) and `controls { };`
//!    is added; `named.conf.local` and `named.conf.default-zones` are the
//!    stock files, and a stock zone (`localhost`) still answers beside ours.
//!    Debian's own `knotd`, as the `knot` user, loads the packaged Knot
//!    module from its module folder without a `module:` section and answers
//!    the same configuration through `mod-trafficmgr`.
//! 3. `dpkg -r` leaves nothing of the package but its conffiles; `dpkg -P`
//!    leaves nothing at all (not the user either).
//!
//! It changes the machine, so it runs only as root with `TM_DEB` set and
//! refuses to run when a `trafficmgr` package is already installed; it
//! purges the package at the end whatever happens. AppArmor is not enforcing
//! in this container (no `/sys/module/apparmor`), so the AppArmor rule is
//! checked by the path, not by the kernel.

mod common;
use common::dns::{dig_raw, free_port};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let o = run(cmd, args);
    assert!(
        o.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Kills named (or knotd) and purges the package, whatever happened.
struct Cleanup {
    named: Option<Child>,
    installed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.named.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.installed {
            let _ = run("dpkg", &["--purge", "trafficmgr"]);
        }
    }
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

#[test]
fn the_package_installs_serves_through_stock_named_and_uninstalls_cleanly() {
    let Some(deb) = std::env::var_os("TM_DEB").map(PathBuf::from) else {
        eprintln!(
            "skipped: TM_DEB is not set (make test-package builds the package and runs this)"
        );
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: installing a package needs root");
        return;
    }
    let deb = deb.canonicalize().expect("TM_DEB names the package");
    assert!(
        !run("dpkg-query", &["-W", "-f=${Status}", "trafficmgr"])
            .stdout
            .starts_with(b"install ok"),
        "a trafficmgr package is already installed here; this test will not touch it"
    );

    // What the package holds, and what of it existed before (shared folders).
    let listing = ok("dpkg-deb", &["--contents", deb.to_str().unwrap()]);
    let paths: Vec<PathBuf> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| PathBuf::from(p.trim_start_matches('.').trim_end_matches('/')))
        .filter(|p| p.as_os_str().len() > 1)
        .collect();
    let conffiles: Vec<PathBuf> = ok("dpkg-deb", &["--info", deb.to_str().unwrap(), "conffiles"])
        .lines()
        .map(PathBuf::from)
        .collect();
    assert!(conffiles.contains(&PathBuf::from("/etc/trafficmgr/trafficmgr.toml")));
    let new_paths: Vec<&PathBuf> = paths.iter().filter(|p| !exists(p)).collect();
    assert!(new_paths.len() > 20, "{new_paths:?}");

    let mut guard = Cleanup {
        named: None,
        installed: true,
    };
    ok("dpkg", &["--install", deb.to_str().unwrap()]);

    // 1. What the package put in place.
    assert!(ok("getent", &["passwd", "trafficmgr"]).contains("/usr/sbin/nologin"));
    let module = Path::new("/usr/lib/bind/libtrafficmgr.so");
    assert!(
        std::fs::symlink_metadata(module)
            .unwrap()
            .file_type()
            .is_file(),
        "the BIND module must be a real file under /usr/lib/bind"
    );
    let abi: u32 =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/trafficmgr.h"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("#define TM_ABI_VERSION "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    let soname = format!("libtrafficmgr.so.{abi}");
    assert!(ok("readelf", &["-d", module.to_str().unwrap()]).contains(&format!("[{soname}]")));
    assert!(
        ok("ldconfig", &["-p"]).contains(&soname),
        "ldconfig knows {soname}"
    );
    // The one command, which the units run (trafficmgr serve / pdns-backend).
    assert!(Path::new("/usr/bin/trafficmgr").exists());
    let v = ok("/usr/bin/trafficmgr", &["--version"]);
    assert_eq!(
        v.trim(),
        format!("trafficmgr {}", env!("CARGO_PKG_VERSION"))
    );
    let checked = ok(
        "/usr/bin/trafficmgr",
        &["check", "/usr/share/trafficmgr/examples/demo.toml"],
    );
    assert!(checked.contains(": OK"), "{checked}");
    assert!(Path::new("/usr/share/trafficmgr/dnsdist.lua").exists());
    // A C program builds against the installed header and pkg-config file,
    // records the SONAME, and runs against the installed library.
    if run("pkg-config", &["--version"]).status.success() {
        let dir = fresh_dir("package-c");
        std::fs::write(
            dir.join("v.c"),
            "#include <stdio.h>\n#include <trafficmgr.h>\nint main(void) {\n\
             printf(\"%s %u\\n\", tm_version(), (unsigned)tm_abi_version());\n\
             return tm_abi_version() == TM_ABI_VERSION ? 0 : 1;\n}\n",
        )
        .unwrap();
        let flags = ok("pkg-config", &["--cflags", "--libs", "trafficmgr"]);
        let exe = dir.join("v");
        let mut args = vec![
            dir.join("v.c").display().to_string(),
            "-o".into(),
            exe.display().to_string(),
        ];
        args.extend(flags.split_whitespace().map(str::to_string));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok("cc", &args);
        assert!(ok("readelf", &["-d", exe.to_str().unwrap()]).contains(&format!("[{soname}]")));
        assert!(ok(exe.to_str().unwrap(), &[]).starts_with("trafficmgr/"));
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("pkg-config is not installed: the C build against the package is not checked");
    }
    let units = [
        "/lib/systemd/system/trafficmgr-serve.service",
        "/lib/systemd/system/trafficmgr-pdns-remote.service",
    ];
    if run("systemd-analyze", &["--version"]).status.success() {
        let o = run("systemd-analyze", &["verify", units[0], units[1]]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && !err.contains("trafficmgr"),
            "systemd-analyze verify: {err}"
        );
        println!("systemd-analyze verify: both units clean");
    } else {
        println!("systemd-analyze does not run here: units not verified");
    }

    // 2. Stock named, as the bind user, with the dlz stanza.
    let dir = fresh_dir("package-named");
    let bind_uid = ok("id", &["-u", "bind"]).trim().parse::<u32>().unwrap();
    let bind_gid = ok("id", &["-g", "bind"]).trim().parse::<u32>().unwrap();
    std::os::unix::fs::chown(&dir, Some(bind_uid), Some(bind_gid)).unwrap();
    let port = free_port();
    let stock_options = std::fs::read_to_string("/etc/bind/named.conf.options").unwrap();
    let end = stock_options.rfind("};").expect("options { ... };");
    let options = format!(
        "{}\t// added by tests/package.rs: a loopback test port, files in a scratch folder\n\
         \tlisten-on port {port} {{ 127.0.0.1; }};\n\tlisten-on-v6 {{ none; }};\n\
         \tpid-file \"{d}/named.pid\";\n\tsession-keyfile \"{d}/session.key\";\n\
         \tmanaged-keys-directory \"{d}\";\n{}",
        &stock_options[..end],
        &stock_options[end..],
        d = dir.display()
    );
    std::fs::write(dir.join("named.conf.options"), options).unwrap();
    let stock = std::fs::read_to_string("/etc/bind/named.conf").unwrap();
    assert!(stock.contains("include \"/etc/bind/named.conf.options\";"));
    let conf = format!(
        "{}\ncontrols {{ }};\n\
         dlz \"trafficmgr\" {{\n    database \"dlopen /usr/lib/bind/libtrafficmgr.so /etc/trafficmgr/trafficmgr.toml\";\n}};\n",
        stock.replace(
            "include \"/etc/bind/named.conf.options\";",
            &format!("include \"{}/named.conf.options\";", dir.display())
        )
    );
    let conf_path = dir.join("named.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let log = std::fs::File::create(dir.join("named.log")).unwrap();
    let child = Command::new("/usr/sbin/named")
        .args(["-g", "-u", "bind", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("named (bind9) is installed");
    let pid = child.id();
    guard.named = Some(child);
    let name = "contoso.trafficmanager.example";
    let started = std::time::Instant::now();
    while dig_raw(port, name, "A", &[]).0 != "NOERROR" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "named did not answer within 60 s:\n{}",
            std::fs::read_to_string(dir.join("named.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, aa, answer, _, _) = dig_raw(port, name, "A", &[]);
    assert_eq!(status, "NOERROR");
    assert!(aa, "authoritative answer");
    assert_eq!(
        answer,
        [(
            "CNAME".to_string(),
            60,
            "contoso-primary.cloudapp.example.".to_string()
        )]
    );
    let (status, _, _, auth, _) = dig_raw(port, "nope.trafficmanager.example", "A", &[]);
    assert_eq!(
        (status.as_str(), auth),
        ("NXDOMAIN", vec!["SOA".to_string()])
    );
    // The stock tree's own zones answer beside ours.
    let (status, _, answer, _, _) = dig_raw(port, "localhost", "A", &[]);
    assert_eq!(status, "NOERROR");
    assert_eq!(answer[0].2, "127.0.0.1");
    // named runs as bind and has mapped the packaged module.
    let proc_status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = proc_status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == bind_uid.to_string()),
        "{uid_line}"
    );
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(maps.contains("/usr/lib/bind/libtrafficmgr.so"));
    let mut named = guard.named.take().unwrap();
    // SAFETY: a signal to the named this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    wait_for(20, "named to stop", || named.try_wait().unwrap().is_some());
    let named_log = std::fs::read_to_string(dir.join("named.log")).unwrap();
    assert!(named_log.contains("trafficmgr"), "{named_log}");
    let _ = std::fs::remove_dir_all(&dir);

    // 2b. Debian's knotd, as the knot user, loads the packaged module from
    // its own module folder (no `module:` section) and answers the sample
    // configuration through it.
    let knot_module = paths
        .iter()
        .find(|p| p.ends_with("trafficmgr.so") && p.to_string_lossy().contains("/knot/"))
        .expect("the package ships the Knot module")
        .clone();
    let dir = fresh_dir("package-knot");
    let knot_uid = ok("id", &["-u", "knot"]).trim().parse::<u32>().unwrap();
    let knot_gid = ok("id", &["-g", "knot"]).trim().parse::<u32>().unwrap();
    std::os::unix::fs::chown(&dir, Some(knot_uid), Some(knot_gid)).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("tm.zone"),
        "$ORIGIN trafficmanager.example.\n@ 300 IN SOA ns1.trafficmanager.example. hostmaster.trafficmanager.example. 1 900 300 2419200 300\n@ 300 IN NS ns1.trafficmanager.example.\n",
    )
    .unwrap();
    let conf_path = dir.join("knot.conf");
    std::fs::write(
        &conf_path,
        format!(
            "server:\n    rundir: {d}\n    user: knot:knot\n    listen: 127.0.0.1@{port}\n    edns-client-subnet: on\n\
             database:\n    storage: {d}\n\
             log:\n  - target: stderr\n    any: info\n\
             mod-trafficmgr:\n  - id: default\n    config: /etc/trafficmgr/trafficmgr.toml\n\
             template:\n  - id: default\n    storage: {d}\n    zonefile-sync: -1\n    journal-content: none\n\
             zone:\n  - domain: trafficmanager.example\n    file: {d}/tm.zone\n    module: mod-trafficmgr/default\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("knotd.log")).unwrap();
    let knotd = Command::new("knotd")
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("knotd (knot) is installed");
    let pid = knotd.id();
    guard.named = Some(knotd);
    let started = std::time::Instant::now();
    while dig_raw(port, name, "A", &[]).0 != "NOERROR" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "knotd did not answer within 60 s:\n{}",
            std::fs::read_to_string(dir.join("knotd.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, aa, answer, _, _) = dig_raw(port, name, "A", &[]);
    assert_eq!((status.as_str(), aa), ("NOERROR", true));
    assert_eq!(
        answer,
        [(
            "CNAME".to_string(),
            60,
            "contoso-primary.cloudapp.example.".to_string()
        )]
    );
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        maps.contains(knot_module.to_str().unwrap()),
        "knotd mapped {}",
        knot_module.display()
    );
    let mut knotd = guard.named.take().unwrap();
    // SAFETY: a signal to the knotd this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    wait_for(20, "knotd to stop", || knotd.try_wait().unwrap().is_some());
    let knot_log = std::fs::read_to_string(dir.join("knotd.log")).unwrap();
    assert!(
        knot_log.contains("module 'mod-trafficmgr/default', serving"),
        "{knot_log}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // 3. Remove: only the conffiles stay.
    ok("dpkg", &["--remove", "trafficmgr"]);
    assert_eq!(
        ok("dpkg-query", &["-W", "-f=${Status}", "trafficmgr"]),
        "deinstall ok config-files"
    );
    for p in &new_paths {
        let keep = conffiles.contains(p) || conffiles.iter().any(|c| c.starts_with(p));
        assert_eq!(exists(p), keep, "after dpkg -r: {}", p.display());
    }
    // Purge: nothing at all.
    ok("dpkg", &["--purge", "trafficmgr"]);
    guard.installed = false;
    for p in &new_paths {
        assert!(!exists(p), "after dpkg -P: {} is left", p.display());
    }
    assert!(!run("getent", &["passwd", "trafficmgr"]).status.success());
    assert!(!run("getent", &["group", "trafficmgr"]).status.success());
    assert!(!run("dpkg-query", &["-W", "trafficmgr"]).status.success());
}
