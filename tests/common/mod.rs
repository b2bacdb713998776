//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod backend;
pub mod dns;
pub mod front;
pub mod pdns;
pub mod prometheus;

use std::net::IpAddr;
use std::path::PathBuf;
use trafficmgr::{Engine, Query, Rcode};

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A fresh, empty folder for one test: `tm-<tag>-<pid>` in the temp dir.
pub fn fresh_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `tests/data/basic.toml` with its latency-table path made absolute, so a
/// copy works from any folder.
pub fn basic_text() -> String {
    std::fs::read_to_string(data("basic.toml"))
        .unwrap()
        .replace(
            "\"latency.csv\"",
            &format!("\"{}\"", data("latency.csv").display()),
        )
}

/// Writes [`basic_text`] to `dir/tm.toml` and returns its path.
pub fn basic_in(dir: &std::path::Path) -> PathBuf {
    let p = dir.join("tm.toml");
    std::fs::write(&p, basic_text()).unwrap();
    p
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub rcode: Rcode,
    pub aa: bool,
    pub answer: Vec<(String, u32, String)>,
    pub authority: Vec<(String, u32, String)>,
    pub scope: u8,
}

pub fn ask(
    e: &Engine,
    name: &str,
    qtype: u16,
    client: Option<&str>,
    ecs: Option<(&str, u8)>,
) -> Owned {
    let q = Query {
        name: name.as_bytes(),
        qtype,
        client: client.map(|c| c.parse::<IpAddr>().unwrap()),
        ecs: ecs.map(|(a, p)| (a.parse().unwrap(), p)),
    };
    e.lookup(&q, |a, _| Owned {
        rcode: a.rcode,
        aa: a.authoritative,
        answer: a
            .records
            .iter()
            .map(|r| {
                (
                    trafficmgr::answer::records::type_name(r.rtype).to_string(),
                    // What every host writes: the record's TTL, capped by
                    // `ttl_unstable` while the answer's inputs move.
                    a.ttl(r),
                    r.text().to_string(),
                )
            })
            .collect(),
        authority: a
            .authority
            .iter()
            .map(|r| {
                (
                    trafficmgr::answer::records::type_name(r.rtype).to_string(),
                    r.ttl,
                    r.text().to_string(),
                )
            })
            .collect(),
        scope: a.scope_prefix,
    })
    .unwrap()
}

/// The single answer's rdata text.
pub fn one(
    e: &Engine,
    name: &str,
    qtype: u16,
    client: Option<&str>,
    ecs: Option<(&str, u8)>,
) -> String {
    let o = ask(e, name, qtype, client, ecs);
    assert_eq!(o.answer.len(), 1, "{name}: {o:?}");
    o.answer[0].2.clone()
}

/// The parsed status report.
pub fn status(e: &Engine) -> serde_json::Value {
    serde_json::from_str(&e.status_json()).unwrap()
}

/// The status entry of one endpoint.
pub fn ep_status(e: &Engine, profile: &str, endpoint: &str) -> serde_json::Value {
    let s = status(e);
    for p in s["profiles"].as_array().unwrap() {
        if p["name"] == profile {
            for ep in p["endpoints"].as_array().unwrap() {
                if ep["name"] == endpoint {
                    return ep.clone();
                }
            }
        }
    }
    panic!("no {profile}/{endpoint} in {s}");
}

/// Polls `f` every 20 ms until it holds or `secs` pass.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The life-cycle check every host test makes: two real HTTP backends, a
/// config (`failover_config`) watched by the engine inside the host.
pub struct Failover {
    pub primary: backend::Backend,
    pub secondary: backend::Backend,
    pub config: PathBuf,
}

impl Failover {
    /// Starts the backends and writes `dir/tm.toml` (`www` → before.example).
    pub fn new(dir: &std::path::Path) -> Failover {
        let primary = backend::Backend::start(backend::Mode::Status(200));
        let secondary = backend::Backend::start(backend::Mode::Status(200));
        let config = dir.join("tm.toml");
        let f = Failover {
            primary,
            secondary,
            config,
        };
        f.write("before.example");
        f
    }

    fn write(&self, www_target: &str) {
        std::fs::write(
            &self.config,
            failover_config(self.primary.port, self.secondary.port, www_target),
        )
        .unwrap();
    }

    /// Against the host on `port` (which serves `self.config`): the primary
    /// is answered; its backend fails and `dig` sees the secondary; it
    /// recovers and the answer comes back; a live edit of the file is picked
    /// up. Returns the failover time in seconds.
    pub fn exercise(&self, port: u16, host: &str) -> f64 {
        let first = |name: &str| {
            dns::dig_raw(port, name, "A", &[])
                .2
                .first()
                .map(|a| a.2.clone())
                .unwrap_or_default()
        };
        wait_for(10, "primary", || first("app.tm.example") == "192.0.2.1");
        self.primary.set(backend::Mode::Status(503));
        let t0 = std::time::Instant::now();
        wait_for(10, "failover", || first("app.tm.example") == "192.0.2.2");
        let secs = t0.elapsed().as_secs_f64();
        println!("failover through {host} after {secs:.2} s");
        self.primary.set(backend::Mode::Status(200));
        wait_for(10, "recovery", || first("app.tm.example") == "192.0.2.1");
        self.write("after.example");
        wait_for(10, "live change", || {
            first("www.tm.example") == "after.example."
        });
        secs
    }
}

impl Failover {
    /// The admin-state file the config names (`admin.toml` beside it; absent
    /// at first, which is no override).
    pub fn admin_file(&self) -> PathBuf {
        self.config.with_file_name("admin.toml")
    }

    /// Against the host on `port`: `trafficmgr drain`-style edits of the
    /// admin-state file move `dig`'s answer without a reload — drain, down
    /// (over a passing probe), up (over a failing probe), restore — each
    /// within a few watch intervals.
    pub fn exercise_admin(&self, port: u16, host: &str) {
        use trafficmgr::admin_file::{self, Setting};
        let first = || {
            dns::dig_raw(port, "app.tm.example", "A", &[])
                .2
                .first()
                .map(|a| a.2.clone())
                .unwrap_or_default()
        };
        let admin = self.admin_file();
        let set = |s: Setting| admin_file::edit(&admin, |a| a.set("app/prim*", s)).unwrap();
        wait_for(10, "primary", || first() == "192.0.2.1");
        set(Setting::Drain);
        let t0 = std::time::Instant::now();
        wait_for(5, "drain", || first() == "192.0.2.2");
        println!(
            "drain through {host} seen after {:.2} s",
            t0.elapsed().as_secs_f64()
        );
        // Down over a probe that passes: still out.
        set(Setting::Down);
        std::thread::sleep(std::time::Duration::from_millis(600));
        assert_eq!(
            first(),
            "192.0.2.2",
            "{host}: down must keep the primary out"
        );
        // Up over a probe that fails: served.
        self.primary.set(backend::Mode::Status(503));
        set(Setting::Up);
        wait_for(5, "up", || first() == "192.0.2.1");
        for _ in 0..6 {
            std::thread::sleep(std::time::Duration::from_millis(500));
            assert_eq!(
                first(),
                "192.0.2.1",
                "{host}: up must outlast failing probes"
            );
        }
        // Restore: the failing probe's verdict counts again.
        admin_file::edit(&admin, |a| Ok(a.remove("app/prim*"))).unwrap();
        wait_for(5, "restore", || first() == "192.0.2.2");
        self.primary.set(backend::Mode::Status(200));
        wait_for(10, "recovery", || first() == "192.0.2.1");
    }
}

/// A config for host life-cycle tests: `app` (priority, probed every 1 s:
/// `primary` 192.0.2.1 and `secondary` 192.0.2.2 on the given backend
/// ports) and `www` (a CNAME to `www_target`), watched every 200 ms.
fn failover_config(primary: u16, secondary: u16, www_target: &str) -> String {
    format!(
        "[engine]\nwatch_interval = \"200ms\"\nadmin_state = \"admin.toml\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 5\n[profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 0\n\
         [[profile.endpoint]]\nname = \"primary\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\", port = {primary} }}\n\
         [[profile.endpoint]]\nname = \"secondary\"\naddresses = [\"192.0.2.2\"]\nprobe = {{ host = \"127.0.0.1\", port = {secondary} }}\n\
         [[profile]]\nname = \"www\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\ntarget = \"{www_target}\"\n"
    )
}
