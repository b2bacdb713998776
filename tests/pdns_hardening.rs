//! The PowerDNS adapter (`examples/powerdns/pdns_remote.rs`) against a
//! hostile client on its socket and an unlucky operator: an endless line,
//! silent and dripping clients, more clients than descriptors, a thread
//! that cannot be created, a file or a live socket at `--socket`, the
//! umask. The abuse goes straight to the adapter's socket; where it
//! matters, a real `pdns_server` checks that PowerDNS keeps being served.

mod common;
use common::dns::{dig_raw, free_port};
use common::pdns::*;
use common::*;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

/// The tests start daemons and count memory: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("adapter.log")).unwrap_or_default()
}

/// A `/proc/PID/status` figure in kB (`VmRSS`, `VmHWM`, `VmSize`).
fn proc_kb(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

const LOOKUP: &str = r#"{"method":"lookup","parameters":{"qname":"prio.tm.example","qtype":"ANY","remote":"192.0.2.1","local":"127.0.0.1","real-remote":"192.0.2.1/32","zone-id":-1}}"#;

#[test]
fn endless_line_is_refused_with_bounded_memory() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-line");
    let cfg = basic_in(&dir);
    let (adapter, sock) = start_adapter(&dir, &cfg);
    let pid = adapter.pid();
    let mut warm = Client::connect(&sock);
    assert!(warm.init());
    assert!(
        warm.ask(LOOKUP)
            .unwrap()
            .contains("primary.contoso.example")
    );
    let before = proc_kb(pid, "VmHWM");
    // 200 MiB without a newline, streamed in 1 MiB writes until the adapter
    // stops taking them.
    let mut c = Client::connect(&sock);
    c.w.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    while sent < 200 << 20 {
        if c.w.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let reply = c.line();
    let after = proc_kb(pid, "VmHWM");
    assert!(
        after < before + 32 * 1024,
        "the adapter's peak RSS grew from {before} kB to {after} kB on a {sent}-byte line"
    );
    let reply = reply.expect("an error reply to the long line");
    assert!(
        reply.contains("\"result\":false") && reply.contains("longer than"),
        "{reply}"
    );
    assert!(
        c.closed_within(5),
        "the connection is closed after the error"
    );
    assert!(sent < 200 << 20, "the adapter took all {sent} bytes");
    // The other connection and new ones are served.
    assert!(
        warm.ask(LOOKUP)
            .unwrap()
            .contains("primary.contoso.example")
    );
    assert!(Client::connect(&sock).init());
}

#[test]
fn silent_and_dripping_clients_are_closed() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-slow");
    let cfg = basic_in(&dir);
    let (mut adapter, sock) = start_adapter_with(&dir, &cfg, &["--request-timeout", "1"]);
    // Connects and says nothing.
    let mut silent = Client::connect(&sock);
    // Says `initialize`, then keeps sending a request a byte at a time.
    let mut drip = Client::connect(&sock);
    assert!(drip.init());
    // Says `initialize` and waits, as PowerDNS's quiet backend threads do.
    let mut quiet = Client::connect(&sock);
    assert!(quiet.init());
    let t = std::time::Instant::now();
    let mut dripped = 0;
    while t.elapsed() < Duration::from_secs(5) {
        if drip.w.write_all(b" ").is_err() {
            break;
        }
        dripped += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        drip.closed_within(1),
        "a request dripping for {dripped} writes is still open"
    );
    assert!(silent.closed_within(1), "a silent connection is still open");
    // Between requests a connection is not timed out by --request-timeout.
    assert!(
        quiet
            .ask(LOOKUP)
            .unwrap()
            .contains("primary.contoso.example")
    );
    let log = log_of(&dir);
    assert!(log.contains("no complete request within"), "{log}");
    assert!(adapter.alive());

    // With --idle-timeout, a connection with no request for that long is closed.
    let _ = adapter.stop(5);
    let (_adapter, sock) = start_adapter_with(&dir, &cfg, &["--idle-timeout", "1"]);
    let mut idle = Client::connect(&sock);
    assert!(idle.init());
    assert!(idle.closed_within(5), "an idle connection is still open");
    assert!(log_of(&dir).contains("idle for"), "{}", log_of(&dir));
}

#[test]
fn at_the_connection_cap_the_idlest_is_shed() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-cap");
    let cfg = basic_in(&dir);
    let (mut adapter, sock) = start_adapter_with(&dir, &cfg, &["--max-connections", "4"]);
    let mut cs: Vec<Client> = (0..4)
        .map(|_| {
            let mut c = Client::connect(&sock);
            assert!(c.init());
            std::thread::sleep(Duration::from_millis(50));
            c
        })
        .collect();
    // Client 0 is the oldest, but it asks again: 1 is now the idlest.
    assert!(cs[0].ask(LOOKUP).is_some());
    std::thread::sleep(Duration::from_millis(50));
    let mut fifth = Client::connect(&sock);
    assert!(fifth.init(), "a new connection at the cap is served");
    assert!(cs[1].closed_within(5), "the idlest connection was not shed");
    for i in [0, 2, 3] {
        assert!(
            cs[i].ask(LOOKUP).is_some(),
            "connection {i} was shed instead"
        );
    }
    assert!(fifth.ask(LOOKUP).is_some());
    assert!(adapter.alive());
    assert!(log_of(&dir).contains("at the connection limit"));
    cs.clear();
}

/// 80 idle clients against an adapter with 64 descriptors: PowerDNS, started
/// after them, is still served.
#[test]
fn idle_clients_cannot_lock_out_pdns() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-nofile");
    let cfg = basic_in(&dir);
    let sock = dir.join("tm.sock");
    let mut cmd = adapter_cmd(&cfg, &sock, &[], &dir.join("adapter.log"));
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let rl = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut adapter = spawn_adapter(cmd, &sock);
    let mut idle: Vec<UnixStream> = Vec::new();
    for _ in 0..80 {
        let mut s = UnixStream::connect(&sock).unwrap();
        let _ = s.write_all(b"{\"method\":\"initialize\",\"parameters\":{}}\n");
        idle.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let port = free_port();
    let _pdns = start_pdns(&dir, &sock, port);
    for _ in 0..8 {
        let got = dig_raw(port, "prio.tm.example", "A", &[]);
        assert_eq!(got.0, "NOERROR", "{got:?}\n{}", log_of(&dir));
        assert_eq!(got.2[0].2, "primary.contoso.example.");
    }
    assert!(adapter.alive());
    drop(idle);
}

/// PowerDNS's connections are quiet between queries: the adapter's timeouts
/// must not close them (PowerDNS answers SERVFAIL to the first query on a
/// connection the other side closed).
#[test]
fn pdns_quiet_connections_survive_the_timeouts() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-quiet");
    let cfg = basic_in(&dir);
    let (_adapter, sock) = start_adapter_with(&dir, &cfg, &["--request-timeout", "1"]);
    let port = free_port();
    let _pdns = start_pdns(&dir, &sock, port);
    for round in 0..2 {
        for _ in 0..6 {
            let got = dig_raw(port, "prio.tm.example", "A", &[]);
            assert_eq!(got.0, "NOERROR", "round {round}: {got:?}");
        }
        std::thread::sleep(Duration::from_millis(2500));
    }
}

/// RLIMIT_AS lowered on the running adapter (with `prlimit(2)`) to just
/// above what it maps: the next connection's thread cannot get a stack.
/// That connection is closed, the adapter logs it and goes on serving.
#[test]
fn a_thread_that_cannot_start_does_not_kill_the_adapter() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-spawn");
    let cfg = basic_in(&dir);
    let (mut adapter, sock) = start_adapter(&dir, &cfg);
    let pid = adapter.pid();
    // Connections held open, so that glibc's cache of exited threads'
    // stacks is used up and a new thread needs a new mapping.
    let mut held: Vec<Client> = (0..4)
        .map(|_| {
            let mut c = Client::connect(&sock);
            assert!(c.init());
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let set_as = |bytes: u64| {
        let rl = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: prlimit on our own child, with a valid struct.
        let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_AS, &rl, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    };
    let mut refused = false;
    for _ in 0..10 {
        set_as(proc_kb(pid, "VmSize") * 1024 + 64 * 1024);
        let mut c = Client::connect(&sock);
        if !c.init() {
            refused = true;
            break;
        }
        held.push(c);
    }
    set_as(libc::RLIM_INFINITY);
    assert!(refused, "no thread creation failed under RLIMIT_AS");
    assert!(adapter.alive(), "the adapter died:\n{}", log_of(&dir));
    wait_for(5, "the log line", || {
        log_of(&dir).contains("cannot start a thread")
    });
    assert!(Client::connect(&sock).init());
    assert!(held[0].ask(LOOKUP).unwrap().contains("primary"));
}

#[test]
fn a_file_at_the_socket_path_is_refused_and_kept() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-file");
    let cfg = basic_in(&dir);
    let sock = dir.join("tm.sock");
    std::fs::write(&sock, "precious\n").unwrap();
    let mut p = Proc(
        adapter_cmd(&cfg, &sock, &[], &dir.join("adapter.log"))
            .spawn()
            .unwrap(),
    );
    let st = p.wait(10);
    assert!(!st.success(), "{st:?}");
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "precious\n");
    assert!(log_of(&dir).contains("not a socket"), "{}", log_of(&dir));
    // A symlink (even to a live socket) is not a socket either.
    let real = dir.join("real.sock");
    let _l = UnixListener::bind(&real).unwrap();
    std::fs::remove_file(&sock).unwrap();
    std::os::unix::fs::symlink(&real, &sock).unwrap();
    let mut p = Proc(
        adapter_cmd(&cfg, &sock, &[], &dir.join("adapter.log"))
            .spawn()
            .unwrap(),
    );
    assert!(!p.wait(10).success());
    assert!(std::fs::symlink_metadata(&sock).unwrap().is_symlink());
    assert!(std::fs::metadata(&real).unwrap().file_type().is_socket());
}

#[test]
fn a_live_socket_is_not_stolen_and_a_stale_one_is_replaced() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-live");
    let cfg = basic_in(&dir);
    let (mut first, sock) = start_adapter(&dir, &cfg);
    let ino = std::fs::metadata(&sock).unwrap().ino();
    let mut c = Client::connect(&sock);
    assert!(c.init());
    let log2 = dir.join("second.log");
    let mut second = Proc(adapter_cmd(&cfg, &sock, &[], &log2).spawn().unwrap());
    let st = second.wait(10);
    assert!(!st.success(), "{st:?}");
    let msg = std::fs::read_to_string(&log2).unwrap();
    assert!(msg.contains("another process is serving"), "{msg}");
    assert_eq!(std::fs::metadata(&sock).unwrap().ino(), ino);
    assert!(first.alive());
    assert!(c.ask(LOOKUP).unwrap().contains("primary"));
    assert!(Client::connect(&sock).init());

    // At exit the first removes its own socket…
    assert!(first.stop(10).success());
    assert!(!sock.exists());
    // …and a stale one (nobody listening) is replaced.
    drop(UnixListener::bind(&sock).unwrap());
    assert!(UnixStream::connect(&sock).is_err());
    let (mut third, _) = start_adapter(&dir, &cfg);
    assert!(Client::connect(&sock).init());
    assert!(log_of(&dir).contains("removed stale socket"));

    // A socket put there by someone else meanwhile is left alone at exit.
    std::fs::remove_file(&sock).unwrap();
    let other = UnixListener::bind(&sock).unwrap();
    let other_ino = std::fs::metadata(&sock).unwrap().ino();
    assert!(third.stop(10).success());
    assert_eq!(std::fs::metadata(&sock).unwrap().ino(), other_ino);
    drop(other);
}

#[test]
fn socket_mode_and_group_whatever_the_umask() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-mode");
    let cfg = basic_in(&dir);
    let sock = dir.join("tm.sock");
    let group = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] != "0").then(|| (f[0].to_string(), f[2].parse::<u32>().unwrap()))
        })
        .expect("a group other than root in /etc/group");
    let cases: [(u32, &[&str], u32, Option<u32>); 4] = [
        (0o000, &[], 0o660, None),
        (0o077, &[], 0o660, None),
        (0o022, &["--socket-mode", "0600"], 0o600, None),
        (0o000, &["--socket-group", &group.0], 0o660, Some(group.1)),
    ];
    for (umask, extra, want, gid) in cases {
        let mut cmd = adapter_cmd(&cfg, &sock, extra, &dir.join("adapter.log"));
        // SAFETY: umask only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(umask);
                Ok(())
            });
        }
        let mut p = spawn_adapter(cmd, &sock);
        let m = std::fs::metadata(&sock).unwrap();
        assert_eq!(
            m.permissions().mode() & 0o7777,
            want,
            "umask {umask:o} {extra:?}: mode {:o}",
            m.permissions().mode() & 0o7777
        );
        if let Some(g) = gid {
            assert_eq!(m.gid(), g, "{extra:?}");
        }
        assert!(p.stop(10).success());
    }
    // A bad mode or an unknown group: refused before anything is created.
    for extra in [
        &["--socket-mode", "0888"][..],
        &["--socket-group", "no-such-group-here"][..],
    ] {
        let mut p = Proc(
            adapter_cmd(&cfg, &sock, extra, &dir.join("adapter.log"))
                .spawn()
                .unwrap(),
        );
        assert!(!p.wait(10).success(), "{extra:?}");
        assert!(!sock.exists());
    }
}

/// A hostage: a connection that pipelines requests until both directions
/// are full, so the adapter's writes wait on it.
fn hostage(sock: &Path) -> UnixStream {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_nonblocking(true).unwrap();
    let batch = format!("{LOOKUP}\n").repeat(50);
    let t = std::time::Instant::now();
    let mut blocked_since: Option<std::time::Instant> = None;
    while t.elapsed() < Duration::from_secs(5) {
        match s.write(batch.as_bytes()) {
            Ok(_) => blocked_since = None,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let b = *blocked_since.get_or_insert_with(std::time::Instant::now);
                if b.elapsed() > Duration::from_millis(300) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("hostage: {e}"),
        }
    }
    s
}

/// F4: clients that pipeline requests and read their replies in slices keep
/// the adapter's writes moving (no single write ever times out), so they
/// looked "busy" forever: never shed, and every newcomer was refused. A
/// connection whose replies piled up past the socket buffer can be shed
/// like an idle one (before any idle one), so an honest client gets in.
#[test]
fn clients_reading_replies_in_slices_cannot_hold_the_cap() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-hostage");
    let cfg = basic_in(&dir);
    let (mut adapter, sock) = start_adapter_with(&dir, &cfg, &["--max-connections", "2"]);
    let hostages: Vec<UnixStream> = (0..2).map(|_| hostage(&sock)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut hs: Vec<UnixStream> = hostages.iter().map(|h| h.try_clone().unwrap()).collect();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            let more = format!("{LOOKUP}\n").repeat(40);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for h in &mut hs {
                    let _ = std::io::Read::read(h, &mut buf);
                    let _ = h.write(more.as_bytes());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    // An honest client gets in at once; held open, it is idle, yet the next
    // newcomer sheds the other hostage, not it.
    let mut first = Client::connect(&sock);
    assert!(first.init(), "refused while hostages hold the cap");
    let mut second = Client::connect(&sock);
    assert!(second.init(), "refused while a hostage holds a slot");
    assert!(
        first.ask(LOOKUP).is_some_and(|r| r.contains("primary")),
        "the idle honest client was shed instead of a hostage"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
    assert!(adapter.alive());
    let log = log_of(&dir);
    assert!(!log.contains("all busy"), "{log}");
    drop(hostages);
}

/// F4: a reply must be taken whole within --request-timeout of its first
/// octet (the old 10 s applied to each write call): a client that stops
/// reading is closed then, and its slot is free.
#[test]
fn a_reply_not_taken_in_time_closes_the_connection() {
    let _s = serial();
    let dir = fresh_dir("pdns-h-reply");
    let cfg = basic_in(&dir);
    let (mut adapter, sock) = start_adapter_with(&dir, &cfg, &["--request-timeout", "1"]);
    let mut h = hostage(&sock);
    // Once the adapter has closed it, our requests are dropped and a write fails.
    let t = std::time::Instant::now();
    let mut closed = false;
    while t.elapsed() < Duration::from_secs(5) {
        match h.write(b"\n") {
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                closed = true;
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let log = log_of(&dir);
    assert!(
        closed,
        "a client not reading its reply is still open\n{log}"
    );
    assert!(log.contains("reply not taken within"), "{log}");
    assert!(adapter.alive());
    assert!(Client::connect(&sock).init());
}
