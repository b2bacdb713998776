//! A real Prometheus (Debian's `prometheus`, `/usr/bin/prometheus`) for
//! tests: started on a free 127.0.0.1 port with a temporary config (one
//! job, `trafficmgr`, scraping the given targets every `scrape_interval`)
//! and a temporary TSDB; its output goes to `prometheus.log` in its folder.
//! Read back through its HTTP API (`/api/v1/query`, `/api/v1/targets`).
//! Dropping it stops it by PID: SIGTERM, then SIGKILL after 10 s.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = "/usr/bin/prometheus";

/// A series' labels (`__name__` included when Prometheus returns it).
pub type Labels = BTreeMap<String, String>;

/// One scrape target as `/api/v1/targets` reports it.
#[derive(Debug, Clone)]
pub struct Target {
    pub scrape_url: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    pub last_error: String,
    pub labels: Labels,
}

pub struct Prometheus {
    child: Child,
    /// Where its HTTP API (and its own /metrics) listens.
    pub addr: SocketAddr,
    pub dir: PathBuf,
    agent: ureq::Agent,
}

/// A loopback address with a TCP port free right now.
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A Prometheus duration: whole milliseconds (`1000ms`).
fn duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            // Loopback only: never through a proxy from the environment.
            .proxy(None)
            .build(),
    )
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port scraping `targets` (their
    /// `/metrics`) every `scrape_interval`, and waits until it is ready.
    pub fn start(targets: &[SocketAddr], scrape_interval: Duration) -> Prometheus {
        // A port found free may be taken before Prometheus binds it: retry.
        let mut last = String::new();
        for _ in 0..3 {
            match Prometheus::try_start_at(free_addr(), targets, scrape_interval) {
                Ok(p) => return p,
                Err(e) => last = e,
            }
        }
        panic!("prometheus did not start: {last}");
    }

    /// As [`Prometheus::start`], listening on `listen` (so that a test can
    /// name Prometheus's own address among the targets).
    pub fn start_at(
        listen: SocketAddr,
        targets: &[SocketAddr],
        scrape_interval: Duration,
    ) -> Prometheus {
        match Prometheus::try_start_at(listen, targets, scrape_interval) {
            Ok(p) => p,
            Err(e) => panic!("prometheus did not start: {e}"),
        }
    }

    fn try_start_at(
        listen: SocketAddr,
        targets: &[SocketAddr],
        scrape_interval: Duration,
    ) -> Result<Prometheus, String> {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} missing: install Debian's prometheus (scripts/install-deps.sh)"
        );
        let dir = super::fresh_dir(&format!("prometheus-{}", listen.port()));
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let iv = duration(scrape_interval);
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: {iv}\n  scrape_timeout: {iv}\n  evaluation_interval: {iv}\n\
                 scrape_configs:\n  - job_name: trafficmgr\n    scrape_interval: {iv}\n    scrape_timeout: {iv}\n    \
                 static_configs:\n      - targets: [{list}]\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(BINARY)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("{BINARY}: {e}"))?;
        let mut p = Prometheus {
            child,
            addr: listen,
            dir,
            agent: agent(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = p.child.try_wait() {
                return Err(format!("it exited with {st}:\n{}", p.log()));
            }
            if p.get("/-/ready").is_ok_and(|(code, _)| code == 200) {
                return Ok(p);
            }
            if Instant::now() > deadline {
                return Err(format!("not ready within 30 s:\n{}", p.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What Prometheus wrote (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// GET `path` on Prometheus's listener: status and body.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        self.get_query(path, &[])
    }

    fn get_query(&self, path: &str, query: &[(&str, &str)]) -> Result<(u16, String), String> {
        let mut req = self.agent.get(format!("http://{}{path}", self.addr));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let mut resp = req.call().map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((code, body))
    }

    /// The `data` of a successful API answer; panics with Prometheus's
    /// error otherwise.
    fn api(&self, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let (code, body) = self
            .get_query(path, query)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()));
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: {code}: not JSON ({e}): {body}"));
        assert_eq!(
            v["status"], "success",
            "GET {path} {query:?}: {code}: {body}"
        );
        v["data"].clone()
    }

    /// An instant query (`/api/v1/query`): each series' labels and value
    /// (a scalar result is one entry with no labels).
    pub fn query(&self, promql: &str) -> Vec<(Labels, f64)> {
        let data = self.api("/api/v1/query", &[("query", promql)]);
        let value = |v: &serde_json::Value| -> f64 {
            let s = v[1]
                .as_str()
                .unwrap_or_else(|| panic!("{promql}: a sample without a value: {v}"));
            // Prometheus writes NaN and the infinities as Go does.
            match s {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                _ => s
                    .parse()
                    .unwrap_or_else(|e| panic!("{promql}: value {s:?}: {e}")),
            }
        };
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .unwrap_or_else(|| panic!("{promql}: {data}"))
                .iter()
                .map(|s| {
                    let labels = s["metric"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                                .collect()
                        })
                        .unwrap_or_default();
                    (labels, value(&s["value"]))
                })
                .collect(),
            Some("scalar") => vec![(Labels::new(), value(&data["result"]))],
            other => panic!("{promql}: result type {other:?} (use an instant vector): {data}"),
        }
    }

    /// Polls `promql` every 200 ms until one of its samples satisfies
    /// `pred`, and returns that value; panics, with the last result and
    /// Prometheus's targets, when `deadline` passes first.
    pub fn wait_for_value(
        &self,
        promql: &str,
        pred: impl Fn(f64) -> bool,
        deadline: Duration,
    ) -> f64 {
        let until = Instant::now() + deadline;
        loop {
            let got = self.query(promql);
            if let Some((_, v)) = got.iter().find(|(_, v)| pred(*v)) {
                return *v;
            }
            if Instant::now() > until {
                panic!(
                    "{promql}: no sample as wanted within {deadline:?}; last: {got:?}; targets: {:?}",
                    self.targets_up()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The active scrape targets and their health (`/api/v1/targets`).
    pub fn targets_up(&self) -> Vec<Target> {
        let data = self.api("/api/v1/targets", &[("state", "active")]);
        data["activeTargets"]
            .as_array()
            .unwrap_or_else(|| panic!("targets: {data}"))
            .iter()
            .map(|t| Target {
                scrape_url: t["scrapeUrl"].as_str().unwrap_or("").to_string(),
                health: t["health"].as_str().unwrap_or("").to_string(),
                last_error: t["lastError"].as_str().unwrap_or("").to_string(),
                labels: t["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's PID (not yet reaped: we wait below).
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        // The TSDB can be large; the config and log stay for inspection.
        let _ = std::fs::remove_dir_all(self.dir.join("data"));
    }
}
