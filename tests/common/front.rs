//! The embedded front (`trafficmgr serve`) as a real process on a loopback
//! port, for the system tests of `tests/front_*.rs`.

use hickory_proto::op::{Message, Query as HQuery};
use hickory_proto::rr::{Name, RecordType};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `trafficmgr` binary (cargo builds it, for this profile, before the
/// integration tests): the front is its `serve` subcommand.
pub fn serve_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trafficmgr"))
}

pub struct Front {
    pub child: Child,
    pub port: u16,
}

impl Front {
    pub fn start(config: &Path) -> Front {
        Front::start_with(config, &[])
    }

    /// Starts the front on a free 127.0.0.1 port with 2 UDP threads and
    /// `extra` options, and waits until it answers.
    pub fn start_with(config: &Path, extra: &[&str]) -> Front {
        let port = super::dns::free_port();
        let mut cmd = Command::new(serve_bin());
        cmd.args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--threads",
            "2",
        ])
        .args(extra);
        Front::spawn(cmd, port)
    }

    /// Runs `cmd` (which must serve 127.0.0.1:`port`, and be the server's
    /// own process, e.g. a script that `exec`s it) and waits until it
    /// answers.
    pub fn spawn(mut cmd: Command, port: u16) -> Front {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let f = Front { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while hickory_ask(port, "tm.example", RecordType::SOA).is_none() {
            assert!(Instant::now() < deadline, "the front did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        f
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's PID.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// SIGTERM, then the time the process took to exit (successfully);
    /// fails if it has not within `bound`.
    pub fn stop_within(&mut self, bound: Duration) -> Duration {
        self.signal(libc::SIGTERM);
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "serve exited with {st}");
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < bound,
                "serve did not stop within {bound:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn stop(mut self) {
        self.stop_within(Duration::from_secs(10));
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hickory_ask(port: u16, name: &str, t: RecordType) -> Option<Message> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.add_query(HQuery::query(Name::from_ascii(name).ok()?, t));
    s.send_to(&m.to_vec().ok()?, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    let r = Message::from_vec(&buf[..n]).ok()?;
    (r.metadata.id == 4242).then_some(r)
}
