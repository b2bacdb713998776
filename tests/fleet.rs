//! A fleet (`[fleet]`, docs/FLEET.md) with a real etcd (Debian's
//! `etcd-server`, on loopback with a temp data dir), real engines — in this
//! process through the Rust API, and as embedded fronts (separate
//! processes, killed for real) — and real HTTP backends that record which
//! node probed them (`X-Trafficmgr-Node`).
//!
//! Timing: probe interval 1 s, timeout 500 ms, tolerated_failures 1, lease
//! TTL 3 s, etcd polled every 200 ms. Bounds are generous deadlines, never
//! speed assertions.

mod common;
use common::backend::{Backend, Mode};
use common::dns::free_port;
use common::front::Front;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trafficmgr::Engine;

/// One test at a time: each runs three nodes and an etcd on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const ETCD: &str = "/usr/bin/etcd";
const TTL: Duration = Duration::from_secs(3);

/// A real etcd on free loopback ports; killed by PID on drop.
struct Etcd {
    child: Option<Child>,
    port: u16,
    peer: u16,
    dir: PathBuf,
}

impl Etcd {
    fn start(tag: &str) -> Etcd {
        assert!(
            Path::new(ETCD).exists(),
            "etcd is not installed: apt-get install etcd-server (scripts/install-deps.sh)"
        );
        let dir = fresh_dir(&format!("fleet-etcd-{tag}"));
        let mut e = Etcd {
            child: None,
            port: free_port(),
            peer: free_port(),
            dir,
        };
        e.run();
        e
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let child = Command::new(ETCD)
            .args([
                "--name",
                "t",
                "--data-dir",
                self.dir.join("data").to_str().unwrap(),
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
                "--initial-cluster",
                &format!("t={peer}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("etcd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.post("/v3/kv/range", r#"{"key":"AA=="}"#).is_none() {
            assert!(Instant::now() < deadline, "etcd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn post(&self, path: &str, body: &str) -> Option<Value> {
        post_json(&format!("{}{path}", self.url()), body, None)
    }

    /// SIGKILL by PID, and reaped.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn etcdctl(&self, args: &[&str]) -> String {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.url()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn post_json(url: &str, body: &str, token: Option<&str>) -> Option<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.post(url);
    if let Some(t) = token {
        r = r.header("Authorization", t);
    }
    let mut resp = r.send(body).ok()?;
    serde_json::from_str(&resp.body_mut().read_to_string().ok()?).ok()
}

/// The fleet's config: zone `tm.example`, profile `app` (priority), one
/// endpoint `eI` (192.0.2.(10+I)) per backend port; `fleet_extra` is added
/// to `[fleet]`.
fn config(
    node: &str,
    etcd: &str,
    prefix: &str,
    k: u32,
    ports: &[u16],
    fleet_extra: &str,
) -> String {
    let mut t = format!(
        "[fleet]\netcd = [\"{etcd}\"]\nnode = \"{node}\"\nprefix = \"{prefix}\"\n\
         probers_per_endpoint = {k}\nlease_ttl = \"3s\"\npoll_interval = \"200ms\"\ntimeout = \"500ms\"\n\
         {fleet_extra}\n\
         [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
         [[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 5\n\
         [profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\ntolerated_failures = 1\n"
    );
    for (i, p) in ports.iter().enumerate() {
        t += &format!(
            "[[profile.endpoint]]\nname = \"e{i}\"\naddresses = [\"192.0.2.{}\"]\n\
             probe = {{ host = \"127.0.0.1\", port = {p} }}\n",
            10 + i
        );
    }
    t
}

type Logs = Arc<Mutex<Vec<String>>>;

fn engine(text: &str) -> (Engine, Logs) {
    let logs: Logs = Arc::default();
    let l = logs.clone();
    let e = Engine::from_toml_with_log(
        text,
        None,
        Some(Box::new(move |_, m| l.lock().unwrap().push(m.to_string()))),
    )
    .unwrap();
    (e, logs)
}

fn status(e: &Engine) -> Value {
    serde_json::from_str(&e.status_json()).unwrap()
}

fn endpoint<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["profiles"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap()
}

/// The address `app.tm.example` answers with.
fn answer(e: &Engine) -> String {
    let o = ask(e, "app.tm.example", 1, Some("198.51.100.1"), None);
    o.answer.first().map(|a| a.2.clone()).unwrap_or_default()
}

/// Waits up to `secs` for `f`; the time it took, or a failure saying `what`.
fn within(secs: u64, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    loop {
        if f() {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "not within {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connected_with(e: &Engine, n: usize) -> bool {
    let s = status(e);
    s["fleet"]["connected"] == true && s["fleet"]["nodes"].as_array().map(Vec::len) == Some(n)
}

/// The nodes that probed each backend since `since`.
fn probers_since(backends: &[Backend], since: Instant) -> Vec<BTreeSet<String>> {
    backends
        .iter()
        .map(|b| {
            b.nodes
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, _)| *t >= since)
                .map(|(_, n)| n.clone())
                .collect()
        })
        .collect()
}

fn backends(n: usize) -> Vec<Backend> {
    (0..n).map(|_| Backend::start(Mode::Status(200))).collect()
}

fn ports(b: &[Backend]) -> Vec<u16> {
    b.iter().map(|b| b.port).collect()
}

/// Majority: ns3 cannot reach e0 (its own probe address for it fails), the
/// others can → every node keeps e0 online and answers with it. Then e0
/// fails for everyone → every node fails over to e1 within interval ×
/// (tolerated + 1) + timeout + one lease TTL.
#[test]
fn one_blind_node_is_outvoted_and_a_real_failure_moves_everyone() {
    let _s = serial();
    let etcd = Etcd::start("vote");
    let b = backends(2);
    let p = ports(&b);
    let nodes: Vec<(Engine, Logs)> = ["ns1", "ns2", "ns3"]
        .iter()
        .map(|n| {
            // ns3's own way to e0: the backend's port on 127.0.0.2, where
            // nothing listens (the backends bind 127.0.0.1 only).
            let extra = if *n == "ns3" {
                "probe_hosts = { \"app.tm.example/e0\" = \"127.0.0.2\" }"
            } else {
                ""
            };
            engine(&config(n, &etcd.url(), "/vote/", 3, &p, extra))
        })
        .collect();
    for (e, _) in &nodes {
        within(15, "three nodes connected", || connected_with(e, 3));
    }
    // ns3's own verdict on e0 is Degraded; the fleet's decision is Online.
    within(
        15,
        "ns3's degraded verdict in etcd, decision online everywhere",
        || {
            nodes.iter().all(|(e, _)| {
                let s = status(e);
                let e0 = endpoint(&s, "e0");
                e0["fleet"]["verdicts"]["ns3"] == "Degraded"
                    && e0["fleet"]["verdicts"]["ns1"] == "Online"
                    && e0["fleet"]["decision"] == "Online"
                    && e0["status"] == "Online"
            })
        },
    );
    // And it stays so, answered by all three.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        for (e, _) in &nodes {
            assert_eq!(answer(e), "192.0.2.10");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // ns3's own board says what its probe found.
    let s3 = status(&nodes[2].0);
    let r = endpoint(&s3, "e0")["probe"]["last_result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!r.starts_with("HTTP 200"), "ns3's probe of e0: {r}");

    // e0 fails for everyone.
    b[0].set(Mode::Status(503));
    let t0 = Instant::now();
    // interval (1 s) × (tolerated + 1) + timeout (rounded up) + lease TTL, and slack.
    let (interval, tolerated, timeout, slack) = (1, 1, 1, 3);
    let bound = interval * (tolerated + 1) + timeout + TTL.as_secs() + slack;
    for (e, _) in &nodes {
        within(bound, "every node fails over to e1", || {
            answer(e) == "192.0.2.11"
        });
    }
    let took = t0.elapsed();
    eprintln!("fail-over of all three nodes took {took:?} (bound {bound} s)");
    for (_, logs) in &nodes {
        assert!(
            logs.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("e0 is Degraded (fleet:")),
            "the log says the fleet decided"
        );
    }
}

/// 10 endpoints, 3 nodes, k = 2: each endpoint is probed by exactly 2
/// nodes — the two its rendezvous score picks — counted on the backends.
#[test]
fn each_endpoint_is_probed_by_exactly_k_nodes() {
    let _s = serial();
    let etcd = Etcd::start("k2");
    let b = backends(10);
    let p = ports(&b);
    let nodes: Vec<(Engine, Logs)> = ["ns1", "ns2", "ns3"]
        .iter()
        .map(|n| engine(&config(n, &etcd.url(), "/k2/", 2, &p, "")))
        .collect();
    for (e, _) in &nodes {
        within(15, "three nodes connected", || connected_with(e, 3));
    }
    // Let the start-up probes (everything, before the fleet was seen) pass.
    std::thread::sleep(Duration::from_secs(2));
    let since = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let seen = probers_since(&b, since);
    let s = status(&nodes[0].0);
    for (i, who) in seen.iter().enumerate() {
        let want: BTreeSet<String> = endpoint(&s, &format!("e{i}"))["fleet"]["probers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(who.len(), 2, "e{i} probed by {who:?}");
        assert_eq!(who, &want, "e{i}: probed by the nodes its score picks");
    }
    // Every node agrees on the probers, and on every endpoint's state.
    for (e, _) in &nodes[1..] {
        let o = status(e);
        for i in 0..10 {
            let n = format!("e{i}");
            assert_eq!(
                endpoint(&o, &n)["fleet"]["probers"],
                endpoint(&s, &n)["fleet"]["probers"]
            );
            assert_eq!(endpoint(&o, &n)["status"], "Online");
        }
    }
    // The metrics say so too.
    let m = nodes[0].0.metrics_text();
    assert!(m.contains("trafficmgr_fleet_connected 1"), "{m}");
    assert!(m.contains("trafficmgr_fleet_nodes 3"), "{m}");
    assert!(m.contains("trafficmgr_fleet_fallback 0"), "{m}");
    assert!(m.contains("trafficmgr_fleet_info{node=\"ns1\"} 1"), "{m}");
    assert!(
        m.contains(
            "trafficmgr_fleet_endpoint_probers{profile=\"app.tm.example\",endpoint=\"e0\"} 2"
        ),
        "{m}"
    );
}

fn dig_nsid(port: u16) -> (String, Option<String>) {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "app.tm.example",
            "A",
            "+norec",
            "+nsid",
            "+time=2",
            "+tries=2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let addr = text
        .lines()
        .find(|l| l.starts_with("app.tm.example.") && l.contains("\tA\t"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("")
        .to_string();
    // `; NSID: 6e 73 31 ("ns1")`
    let nsid = text
        .lines()
        .find_map(|l| l.strip_prefix("; NSID: "))
        .and_then(|l| l.split('"').nth(1))
        .map(str::to_string);
    (addr, nsid)
}

/// Three embedded fronts (real processes) with k = 2 over 10 endpoints:
/// `dig +nsid` gets each node's name; one front is killed (SIGKILL) →
/// within one lease TTL (and a poll, with slack) its endpoints are probed
/// by the others and nothing is left unprobed; DNS keeps answering.
#[test]
fn a_killed_node_is_replaced_and_nsid_names_each_node() {
    let _s = serial();
    let etcd = Etcd::start("kill");
    let b = backends(10);
    let p = ports(&b);
    let dir = fresh_dir("fleet-fronts");
    let mut fronts: Vec<Front> = ["ns1", "ns2", "ns3"]
        .iter()
        .map(|n| {
            let path = dir.join(format!("{n}.toml"));
            std::fs::write(&path, config(n, &etcd.url(), "/kill/", 2, &p, "")).unwrap();
            Front::start(&path)
        })
        .collect();
    for (i, f) in fronts.iter().enumerate() {
        let (addr, nsid) = dig_nsid(f.port);
        assert_eq!(addr, "192.0.2.10");
        assert_eq!(nsid.as_deref(), Some(format!("ns{}", i + 1).as_str()));
    }
    // Settled: every endpoint probed by exactly two nodes.
    within(20, "k = 2 probers per endpoint", || {
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(2500));
        probers_since(&b, since).iter().all(|s| s.len() == 2)
    });
    let before = {
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(2500));
        probers_since(&b, since)
    };
    let victims: Vec<usize> = (0..10).filter(|i| before[*i].contains("ns3")).collect();
    assert!(!victims.is_empty(), "ns3 probes some endpoints: {before:?}");
    // Kill ns3 for real.
    let killed = Instant::now();
    fronts[2].signal(libc::SIGKILL);
    let _ = fronts[2].child.wait();
    // Within one lease TTL (+ a poll and slack), every endpoint is probed
    // by two live nodes again.
    let took = within(TTL.as_secs() + 6, "ns3's endpoints taken over", || {
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(1200));
        probers_since(&b, since)
            .iter()
            .all(|s| s.len() == 2 && !s.contains("ns3"))
    });
    eprintln!(
        "take-over after SIGKILL: every endpoint probed by ns1 and ns2 {:?} after the kill",
        killed.elapsed().min(took + Duration::from_millis(1200))
    );
    // DNS never stopped.
    for f in &fronts[..2] {
        assert_eq!(dig_nsid(f.port).0, "192.0.2.10");
    }
    for f in fronts.drain(..2) {
        f.stop();
    }
}

/// etcd is killed: every node keeps answering, says it fell back (status,
/// metrics, log) and probes everything itself; when etcd is back, every
/// node rejoins and the probe load goes back to k per endpoint.
#[test]
fn etcd_down_means_fallback_and_back_means_rejoin() {
    let _s = serial();
    let mut etcd = Etcd::start("down");
    let b = backends(4);
    let p = ports(&b);
    let nodes: Vec<(Engine, Logs)> = ["ns1", "ns2", "ns3"]
        .iter()
        .map(|n| engine(&config(n, &etcd.url(), "/down/", 1, &p, "")))
        .collect();
    for (e, _) in &nodes {
        within(15, "three nodes connected", || connected_with(e, 3));
    }
    within(15, "one prober per endpoint", || {
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(2200));
        probers_since(&b, since).iter().all(|s| s.len() == 1)
    });
    etcd.kill();
    for (e, logs) in &nodes {
        within(10, "fallback", || {
            let s = status(e);
            s["fleet"]["connected"] == false && s["fleet"]["fallback"] == true
        });
        assert!(e.metrics_text().contains("trafficmgr_fleet_fallback 1"));
        assert!(
            logs.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("etcd unreachable")),
            "the log says so"
        );
        assert_eq!(answer(e), "192.0.2.10");
    }
    // Every node probes every endpoint itself.
    within(10, "every node probes everything", || {
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(2200));
        probers_since(&b, since).iter().all(|s| s.len() == 3)
    });
    // A failure is still seen, by each node alone.
    b[0].set(Mode::Status(503));
    for (e, _) in &nodes {
        within(10, "fail-over without etcd", || answer(e) == "192.0.2.11");
    }
    b[0].set(Mode::Status(200));
    for (e, _) in &nodes {
        within(10, "recovery without etcd", || answer(e) == "192.0.2.10");
    }
    // etcd returns (same data, same ports): everyone rejoins.
    etcd.run();
    for (e, _) in &nodes {
        within(15, "rejoined", || connected_with(e, 3));
        let s = status(e);
        assert_eq!(s["fleet"]["fallback"], false);
        assert!(s["fleet"]["fallbacks"].as_u64().unwrap() >= 1);
    }
    within(15, "one prober per endpoint again", || {
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(2200));
        probers_since(&b, since).iter().all(|s| s.len() == 1)
    });
}

/// `free` (drop) stays prompt: with etcd connected, and with an "etcd"
/// that accepts connections and never answers (every request hangs until
/// its deadline).
#[test]
fn drop_is_prompt_with_etcd_and_with_a_hung_one() {
    let _s = serial();
    let etcd = Etcd::start("drop");
    let b = backends(2);
    let p = ports(&b);
    let (e, _) = engine(&slow(&config("ns1", &etcd.url(), "/drop/", 0, &p, "")));
    within(15, "connected", || connected_with(&e, 1));
    let t0 = Instant::now();
    drop(e);
    let connected_drop = t0.elapsed();
    // A clean leave: the lease is revoked, the node key is gone at once.
    let r = etcd
        .post(
            "/v3/kv/range",
            &format!(r#"{{"key":"{}"}}"#, b64("/drop/node/ns1")),
        )
        .unwrap();
    assert!(r.get("kvs").is_none(), "node key left behind: {r}");

    // A black hole: accepts, reads, never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_url = format!("http://{}", hole.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let h2 = held.clone();
    std::thread::spawn(move || {
        for s in hole.incoming().flatten() {
            h2.lock().unwrap().push(s);
        }
    });
    let (e, _) = engine(&slow(&config("ns1", &hole_url, "/drop/", 0, &p, "")));
    within(5, "a request to the black hole in flight", || {
        !held.lock().unwrap().is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&e)["fleet"]["connected"], false);
    let t0 = Instant::now();
    drop(e);
    let hung_drop = t0.elapsed();
    eprintln!(
        "drop: {connected_drop:?} connected, {hung_drop:?} with etcd hung (request deadline 5 s)"
    );
    assert!(
        connected_drop < Duration::from_secs(1),
        "{connected_drop:?}"
    );
    assert!(hung_drop < Duration::from_secs(1), "{hung_drop:?}");
}

/// The fleet's request deadline raised to 5 s (the first `timeout` is `[fleet]`'s).
fn slow(config: &str) -> String {
    config.replacen("timeout = \"500ms\"", "timeout = \"5s\"", 1)
}

fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let d = s.as_bytes();
    let mut o = String::new();
    for c in d.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                o.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// etcd with authentication on: the right user and password join the
/// fleet (token from /v3/auth/authenticate); a wrong password falls back
/// and says why.
#[test]
fn user_and_password_authentication() {
    let _s = serial();
    let etcd = Etcd::start("auth");
    etcd.etcdctl(&["user", "add", "root:rootpw"]);
    etcd.etcdctl(&["user", "add", "tm:tmpw"]);
    etcd.etcdctl(&["role", "add", "tm"]);
    etcd.etcdctl(&[
        "role",
        "grant-permission",
        "tm",
        "--prefix=true",
        "readwrite",
        "/auth/",
    ]);
    etcd.etcdctl(&["user", "grant-role", "tm", "tm"]);
    etcd.etcdctl(&["auth", "enable"]);
    let b = backends(1);
    let p = ports(&b);
    let dir = fresh_dir("fleet-auth");
    std::fs::write(dir.join("pw"), "tmpw\n").unwrap();
    let good = config(
        "ns1",
        &etcd.url(),
        "/auth/",
        0,
        &p,
        &format!(
            "user = \"tm\"\npassword_file = \"{}\"",
            dir.join("pw").display()
        ),
    );
    let (e, _) = engine(&good);
    within(15, "connected with user and password", || {
        connected_with(&e, 1)
    });
    within(10, "its verdict written", || {
        endpoint(&status(&e), "e0")["fleet"]["verdicts"]["ns1"] == "Online"
    });
    let bad = config(
        "ns2",
        &etcd.url(),
        "/auth/",
        0,
        &p,
        "user = \"tm\"\npassword = \"wrong\"",
    );
    let (e2, logs) = engine(&bad);
    within(10, "refused", || {
        let s = status(&e2);
        s["fleet"]["fallback"] == true
            && s["fleet"]["last_error"]
                .as_str()
                .is_some_and(|m| m.contains("authentication failed"))
    });
    assert!(
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("etcd unreachable"))
    );
    assert_eq!(answer(&e2), "192.0.2.10");
    // Without credentials etcd refuses too (so the good case proves the token works).
    let none = config("ns3", &etcd.url(), "/auth/", 0, &p, "");
    let (e3, _) = engine(&none);
    within(10, "refused without a user", || {
        status(&e3)["fleet"]["last_error"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    });
    assert_eq!(status(&e3)["fleet"]["connected"], false);
    // Only the good node is in the fleet.
    let r = post_json(
        &format!("{}/v3/auth/authenticate", etcd.url()),
        r#"{"name":"root","password":"rootpw"}"#,
        None,
    )
    .unwrap();
    let token = r["token"].as_str().unwrap().to_string();
    let r = post_json(
        &format!("{}/v3/kv/range", etcd.url()),
        &format!(
            r#"{{"key":"{}","range_end":"{}"}}"#,
            b64("/auth/node/"),
            b64("/auth/node0")
        ),
        Some(&token),
    )
    .unwrap();
    assert_eq!(r["count"], "1", "{r}");
}

/// `healthy_when` shapes and `[fleet]` errors.
#[test]
fn fleet_config_shapes_and_errors() {
    let base = |extra: &str| {
        format!(
            "[fleet]\netcd = [\"http://127.0.0.1:1\"]\nnode = \"ns1\"\n{extra}\n\
             [[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"app\"\nrouting = \"priority\"\n\
             [[profile.endpoint]]\nname = \"e0\"\naddresses = [\"192.0.2.1\"]\n"
        )
    };
    for ok in [
        "healthy_when = \"majority\"",
        "healthy_when = \"any\"",
        "healthy_when = \"all\"",
        "healthy_when = { at_least = 2 }",
        "healthy_when = { fraction = 0.18 }",
        "probers_per_endpoint = 0",
        "probe_hosts = { \"app.tm.example/e0\" = \"10.0.0.1\" }",
    ] {
        Engine::from_toml(&base(ok), None).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, says) in [
        ("healthy_when = \"most\"", "not a rule"),
        ("healthy_when = { at_least = 4 }", "can never hold"),
        ("healthy_when = { fraction = 1.5 }", "not in 0 ..< 1"),
        (
            "healthy_when = { at_least = 1, fraction = 0.5 }",
            "exactly one",
        ),
        ("node = \"a/b\"", "not a node name"),
        (
            "probe_hosts = { \"app.tm.example/nope\" = \"10.0.0.1\" }",
            "no endpoint",
        ),
        ("user = \"u\"", "needs `password`"),
        ("cert_file = \"c.pem\"", "go together"),
        (
            "lease_ttl = \"3s\"\npoll_interval = \"2s\"",
            "a third of `lease_ttl`",
        ),
    ] {
        let text = base(bad).replace("node = \"ns1\"\nnode", "node");
        let e = Engine::from_toml(&text, None).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let e = Engine::from_toml(
        "[fleet]\nnode = \"x\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`etcd` is required"), "{e}");
}

/// An endpoint admin-disabled on one node only: that node stops probing
/// it, so it must stop vouching for it too. Two nodes, k = 0 (both probe
/// everything), rule `any`: ns1 disables e0; then e0 fails. ns2 must fail
/// over — a verdict ns1 kept from before it stopped probing (Online) must
/// not keep e0 up for the fleet.
#[test]
fn a_node_that_stops_probing_an_endpoint_stops_vouching_for_it() {
    let _s = serial();
    let etcd = Etcd::start("disabled");
    let b = backends(2);
    let p = ports(&b);
    let nodes: Vec<(Engine, Logs)> = ["ns1", "ns2"]
        .iter()
        .map(|n| {
            engine(&config(
                n,
                &etcd.url(),
                "/dis/",
                0,
                &p,
                "healthy_when = \"any\"",
            ))
        })
        .collect();
    for (e, _) in &nodes {
        within(15, "two nodes connected", || connected_with(e, 2));
    }
    within(15, "both verdicts on e0 online", || {
        let s = status(&nodes[1].0);
        let v = &endpoint(&s, "e0")["fleet"]["verdicts"];
        v["ns1"] == "Online" && v["ns2"] == "Online"
    });
    nodes[0]
        .0
        .set_admin_state(
            "app.tm.example",
            "e0",
            trafficmgr::health::AdminState::Disabled,
        )
        .unwrap();
    // ns1's verdict on e0 leaves etcd: it no longer probes it.
    within(10, "ns1's verdict on e0 withdrawn", || {
        let s = status(&nodes[1].0);
        endpoint(&s, "e0")["fleet"]["verdicts"].get("ns1").is_none()
    });
    b[0].set(Mode::Status(503));
    within(15, "ns2 fails over from e0", || {
        answer(&nodes[1].0) == "192.0.2.11"
    });
    assert_eq!(endpoint(&status(&nodes[1].0), "e0")["status"], "Degraded");
}

/// Two live nodes given the same name (a copied config): they would write
/// the same keys and overwrite each other's verdicts. The second one sees
/// the name taken, says so and probes alone, without touching the first
/// one's keys; it joins when the first one leaves.
#[test]
fn a_node_name_used_twice_is_refused_not_shared() {
    let _s = serial();
    let etcd = Etcd::start("dup");
    let b = backends(1);
    let p = ports(&b);
    let text = config("ns1", &etcd.url(), "/dup/", 0, &p, "");
    let (first, _) = engine(&text);
    within(15, "the first ns1 connected", || connected_with(&first, 1));
    let (second, logs) = engine(&text);
    within(10, "the second ns1 refused", || {
        let s = status(&second);
        s["fleet"]["fallback"] == true
            && s["fleet"]["last_error"]
                .as_str()
                .is_some_and(|m| m.contains("taken by another"))
    });
    assert!(
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("taken by another")),
        "the log says so"
    );
    // Stable: the first one stays in, the second stays out, for two TTLs.
    let t0 = Instant::now();
    while t0.elapsed() < 2 * TTL {
        assert!(connected_with(&first, 1), "{}", status(&first)["fleet"]);
        assert_eq!(status(&second)["fleet"]["connected"], false);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(answer(&second), "192.0.2.10");
    // The first one leaves: the second one takes the name.
    drop(first);
    within(TTL.as_secs() + 5, "the second ns1 joined", || {
        connected_with(&second, 1)
    });
}

/// A TCP proxy to `to` that holds every chunk the client sends for
/// `delay` before passing it on (each request of the fleet's client
/// arrives `delay` late: a slow or far etcd). Its threads end with the
/// test process.
fn slow_proxy(to: u16, delay: Duration) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            let (mut c2, mut s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut c = c;
                let mut s = s;
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    std::thread::sleep(delay);
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// A slow etcd (every request 150 ms late) and 30 endpoints to write: the
/// writes of one round take longer than the lease TTL (3 s). The lease
/// must be kept alive meanwhile: the node joins once and stays in, rather
/// than losing its lease in the middle of every round and falling back.
#[test]
fn a_slow_etcd_does_not_let_the_lease_lapse_mid_round() {
    let _s = serial();
    let etcd = Etcd::start("slow");
    let proxy = slow_proxy(etcd.port, Duration::from_millis(150));
    let b = backends(30);
    let p = ports(&b);
    let url = format!("http://127.0.0.1:{proxy}");
    let (e, logs) = engine(&config("ns1", &url, "/slow/", 0, &p, ""));
    within(30, "all 30 verdicts written", || {
        let s = status(&e);
        s["fleet"]["connected"] == true
            && (0..30)
                .all(|i| endpoint(&s, &format!("e{i}"))["fleet"]["verdicts"]["ns1"] == "Online")
    });
    let s = status(&e);
    assert_eq!(s["fleet"]["leases"], 1, "{}", s["fleet"]);
    assert_eq!(s["fleet"]["fallbacks"], 0, "{}", s["fleet"]);
    assert!(
        !logs.lock().unwrap().iter().any(|l| l.contains("lease")),
        "{:?}",
        logs.lock().unwrap()
    );
}

/// The only prober of e0 (k = 1, two fronts) is paused (SIGSTOP) for
/// longer than its lease TTL while e0 fails: the other node takes e0 over
/// and fails over. When the paused node resumes (SIGCONT), it rejoins and
/// is e0's prober again — and must not hand the fleet the verdict its
/// probes found before the pause (Online): the other node never goes back
/// to e0.
#[test]
fn a_node_paused_past_its_lease_does_not_bring_back_stale_verdicts() {
    let _s = serial();
    let etcd = Etcd::start("pause");
    let b = backends(2);
    let p = ports(&b);
    let dir = fresh_dir("fleet-pause");
    let fronts: Vec<Front> = ["ns1", "ns2"]
        .iter()
        .map(|n| {
            let path = dir.join(format!("{n}.toml"));
            // tolerated_failures 3: a stale Online would take the paused
            // node's own probes 4 s to correct, long enough to be seen.
            let text = config(n, &etcd.url(), "/pause/", 1, &p, "")
                .replace("tolerated_failures = 1", "tolerated_failures = 3");
            std::fs::write(&path, text).unwrap();
            Front::start(&path)
        })
        .collect();
    // Settled: e0 probed by one node only; which one is the hash's choice.
    let mut who = BTreeSet::new();
    within(20, "one prober of e0", || {
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(2500));
        who = probers_since(&b, since)[0].clone();
        who.len() == 1
    });
    let paused = usize::from(who.contains("ns2"));
    let other = &fronts[1 - paused];
    assert_eq!(dig_nsid(other.port).0, "192.0.2.10");
    fronts[paused].signal(libc::SIGSTOP);
    b[0].set(Mode::Status(503));
    // The other node sees the paused one gone (one TTL), probes e0 itself
    // and fails over.
    within(TTL.as_secs() + 12, "the other node fails over", || {
        dig_nsid(other.port).0 == "192.0.2.11"
    });
    // Well past the paused node's lease.
    std::thread::sleep(Duration::from_secs(1));
    fronts[paused].signal(libc::SIGCONT);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            dig_nsid(other.port).0,
            "192.0.2.11",
            "{:?} after SIGCONT the other node answers e0 again",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The resumed node is e0's prober again, with its own fresh verdict.
    within(10, "the resumed node probes e0 again", || {
        let since = Instant::now();
        std::thread::sleep(Duration::from_millis(1500));
        probers_since(&b, since)[0] == who
    });
    within(15, "the resumed node fails over too", || {
        dig_nsid(fronts[paused].port).0 == "192.0.2.11"
    });
}
