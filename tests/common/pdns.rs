//! The PowerDNS adapter (`examples/powerdns/pdns_remote.rs`) and a real
//! `pdns_server` in front of it, for the PowerDNS tests.

use super::dns::dig_raw;
use super::wait_for;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits (at most `secs`) for it to exit; its status.
    pub fn stop(&mut self, secs: u64) -> std::process::ExitStatus {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        self.wait(secs)
    }

    /// Waits (at most `secs`) for it to exit on its own; its status.
    pub fn wait(&mut self, secs: u64) -> std::process::ExitStatus {
        let mut st = None;
        wait_for(secs, "process exit", || {
            st = self.0.try_wait().unwrap();
            st.is_some()
        });
        st.unwrap()
    }
}

/// The `trafficmgr` binary (cargo builds it, for this profile, before the
/// integration tests): the adapter is its `pdns-backend` subcommand.
pub fn adapter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trafficmgr"))
}

/// The adapter's command line for `config` on `sock`, plus `extra` flags;
/// stderr to `log`.
pub fn adapter_cmd(config: &Path, sock: &Path, extra: &[&str], log: &Path) -> Command {
    let mut c = Command::new(adapter_bin());
    c.args([
        "pdns-backend",
        "--config",
        config.to_str().unwrap(),
        "--socket",
        sock.to_str().unwrap(),
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::from(std::fs::File::create(log).unwrap()));
    c
}

/// Starts `c` and waits until its socket answers.
pub fn spawn_adapter(mut c: Command, sock: &Path) -> Proc {
    let mut p = Proc(c.spawn().unwrap());
    wait_for(20, "adapter socket", || {
        assert!(p.alive(), "the adapter exited");
        UnixStream::connect(sock).is_ok()
    });
    p
}

/// The adapter on `dir/tm.sock` with `extra` flags; its log is `dir/adapter.log`.
pub fn start_adapter_with(dir: &Path, config: &Path, extra: &[&str]) -> (Proc, PathBuf) {
    let sock = dir.join("tm.sock");
    let c = adapter_cmd(config, &sock, extra, &dir.join("adapter.log"));
    (spawn_adapter(c, &sock), sock)
}

/// The adapter with its default limits.
pub fn start_adapter(dir: &Path, config: &Path) -> (Proc, PathBuf) {
    start_adapter_with(dir, config, &[])
}

/// `pdns_server` with `examples/powerdns/pdns.conf`, the remote backend on
/// `sock` and a bind-backend zone `static.example`, on 127.0.0.1:`port`.
pub fn start_pdns(dir: &Path, sock: &Path, port: u16) -> Proc {
    write_static_zone(dir);
    let conf = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/powerdns/pdns.conf"),
    )
    .unwrap()
    .replace("/run/trafficmgr/pdns.sock", &sock.display().to_string())
    .replace(
        "/etc/powerdns/named.conf",
        &dir.join("named.conf").display().to_string(),
    )
    .replace("local-port=53", &format!("local-port={port}"))
    .replace(
        "socket-dir=/run/pdns",
        &format!("socket-dir={}", dir.display()),
    );
    std::fs::write(dir.join("pdns.conf"), conf).unwrap();
    let child = Command::new("pdns_server")
        .arg(format!("--config-dir={}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("pdns.log")).unwrap(),
        ))
        .spawn()
        .expect("pdns_server (pdns-server, pdns-backend-remote) is installed");
    let p = Proc(child);
    wait_for(30, "pdns answering", || {
        dig_raw(port, "tm.example", "SOA", &[]).0 == "NOERROR"
    });
    p
}

/// A client of the adapter's socket.
pub struct Client {
    pub r: BufReader<UnixStream>,
    pub w: UnixStream,
}

impl Client {
    /// Connects (replies are awaited at most 10 s).
    pub fn connect(sock: &Path) -> Client {
        let s = UnixStream::connect(sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    /// Sends one line and reads the reply line (None: closed or no reply).
    pub fn ask(&mut self, line: &str) -> Option<String> {
        self.w.write_all(format!("{line}\n").as_bytes()).ok()?;
        self.line()
    }

    /// `initialize`; whether it got `true`.
    pub fn init(&mut self) -> bool {
        self.ask(r#"{"method":"initialize","parameters":{}}"#)
            .is_some_and(|r| r.contains("\"result\":true"))
    }

    /// The next reply line (None: closed, an error or no reply in 10 s).
    pub fn line(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(n) if n > 0 => Some(l),
            _ => None,
        }
    }

    /// Whether the adapter closes this connection within `secs` (EOF or a
    /// reset; any line read meanwhile is ignored).
    pub fn closed_within(&mut self, secs: u64) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        self.r
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            match std::io::Read::read(&mut self.r, &mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// The bind-backend zone `static.example` every pdns of the tests serves
/// beside trafficmgr: `dir/static.zone` and the `dir/named.conf` naming it.
pub fn write_static_zone(dir: &Path) {
    std::fs::write(
        dir.join("static.zone"),
        "$TTL 300\n@ IN SOA ns.static.example. host.static.example. 1 3600 600 86400 300\n@ IN NS ns.static.example.\nns IN A 192.0.2.53\nwww IN A 192.0.2.80\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("named.conf"),
        format!(
            "zone \"static.example\" {{ type master; file \"{}\"; }};\n",
            dir.join("static.zone").display()
        ),
    )
    .unwrap();
}

/// A pdns on `port` serving basic.toml (through either backend) answers as
/// `engine` does — but NXDOMAIN for the empty non-terminal `sub.tm.example`,
/// since pdns asks the backend for the name only (documented) — and its
/// bind-backend zone keeps working beside ours.
pub fn assert_answer_table(port: u16, engine: &trafficmgr::Engine) {
    use super::dns::{BASIC_ROWS, Compare, HostRow, assert_host_matches, dig_raw};
    let table: Vec<HostRow> = BASIC_ROWS
        .iter()
        .copied()
        .filter(|r| r.0 != "sub.tm.example")
        .collect();
    assert_host_matches(
        port,
        engine,
        &table,
        Compare {
            bind_source: true,
            sorted: true,
            scope: true,
        },
    );
    assert_eq!(
        dig_raw(port, "www.static.example", "A", &[]).2[0].2,
        "192.0.2.80"
    );
}
