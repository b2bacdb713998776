//! The test harness for a real Prometheus (`tests/common/prometheus.rs`)
//! proven against the real thing: Prometheus scrapes its own /metrics as
//! job `trafficmgr`, and the harness reads `up` and Prometheus's own
//! counters back through the query API; the target list says it is up; a
//! wait for a value that never comes fails; dropping the harness stops the
//! process.

mod common;
use common::prometheus::{Prometheus, free_addr};
use std::time::Duration;

#[test]
fn prometheus_scrapes_itself_and_answers_queries() {
    let addr = free_addr();
    let p = Prometheus::start_at(addr, &[addr], Duration::from_secs(1));
    let up = p.wait_for_value(
        "up{job=\"trafficmgr\"}",
        |v| v == 1.0,
        Duration::from_secs(30),
    );
    assert_eq!(up, 1.0);
    let series = p.query("up{job=\"trafficmgr\"}");
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0].0["instance"], addr.to_string());
    assert_eq!(series[0].0["__name__"], "up");
    // A counter of Prometheus's own, scraped from its /metrics, read back
    // and seen to grow from one scrape to the next.
    let q = format!(
        "prometheus_http_requests_total{{job=\"trafficmgr\",instance=\"{addr}\",handler=\"/metrics\"}}"
    );
    let first = p.wait_for_value(&q, |v| v >= 1.0, Duration::from_secs(30));
    let later = p.wait_for_value(&q, |v| v > first, Duration::from_secs(30));
    assert!(later > first);
    // The target list agrees.
    let targets = p.targets_up();
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(targets[0].health, "up", "{targets:?}");
    assert_eq!(targets[0].scrape_url, format!("http://{addr}/metrics"));
    assert_eq!(targets[0].labels["job"], "trafficmgr");
    // A series that does not exist is an empty answer, not a made-up one.
    assert!(p.query("up{job=\"nothing-here\"}").is_empty());
    // A scalar comes back as one unlabelled value.
    assert_eq!(
        p.query("scalar(vector(42))"),
        vec![(Default::default(), 42.0)]
    );
    // wait_for_value fails when the value never comes.
    let missed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.wait_for_value(
            "up{job=\"trafficmgr\"}",
            |v| v == 7.0,
            Duration::from_millis(500),
        )
    }));
    assert!(
        missed.is_err(),
        "wait_for_value passed on an impossible value"
    );
    // Dropping the harness stops Prometheus (SIGTERM, by PID).
    let pid = p.pid();
    drop(p);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "prometheus (pid {pid}) still runs"
    );
}

/// A target that does not listen is reported down, with its error.
#[test]
fn a_target_that_does_not_listen_is_down() {
    let dead = free_addr();
    let p = Prometheus::start(&[dead], Duration::from_secs(1));
    p.wait_for_value(
        &format!("up{{job=\"trafficmgr\",instance=\"{dead}\"}}"),
        |v| v == 0.0,
        Duration::from_secs(30),
    );
    let t = p.targets_up();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].health, "down", "{t:?}");
    assert!(t[0].last_error.contains("refused"), "{t:?}");
}
