//! `trafficmgr status --control ADDR [--json]`: a running engine's status
//! (the JSON of `Engine::status_json`, served at `/status` by its control
//! listener, `[engine] control`) as a table.

use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Show a running engine's status: each profile's endpoints with their
/// state, admin override, whether they are served, and their last probe.
/// The engine serves it on its control listener (`[engine] control` in the
/// config, e.g. 127.0.0.1:9153), inside named, dnsdist, pdns or the front.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The engine's control listener, HOST:PORT (`[engine] control`)
    #[arg(long, value_name = "ADDR")]
    pub control: String,
    /// Print the status JSON as the engine gives it
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the engine's answer
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,
}

/// Columns laid out with two spaces between them; the last is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s += c;
            } else {
                s += &format!("{c:<width$}  ", width = w[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

fn age(t: f64, now: f64) -> String {
    let d = (now - t).max(0.0);
    if d < 120.0 {
        format!("{d:.0}s ago")
    } else if d < 7200.0 {
        format!("{:.0}m ago", d / 60.0)
    } else {
        format!("{:.0}h ago", d / 3600.0)
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The status JSON as a person reads it; `now` (Unix seconds) dates the probes.
pub fn render(status: &Value, now: f64) -> Result<String, String> {
    let profiles = status["profiles"]
        .as_array()
        .ok_or("not a trafficmgr status: no `profiles` list")?;
    let mut s = String::new();
    s += &format!(
        "{}  config {} (hash {})\n",
        text(&status["version"]),
        text(&status["config"]["path"]),
        text(&status["config"]["hash"])
    );
    let r = &status["reloads"];
    s += &format!(
        "reloads: {} ok, {} failed",
        text(&r["ok"]),
        text(&r["failed"])
    );
    if !r["last_error"].is_null() {
        s += &format!("; last error: {}", text(&r["last_error"]));
    }
    s += "\n";
    let m = &status["monitor"];
    s += &format!(
        "monitor: {}, {} probes sent, {} failed, {} state changes\n",
        if m["ready"].as_bool() == Some(true) {
            "ready"
        } else {
            "not ready"
        },
        text(&m["probes_sent"]),
        text(&m["probes_failed"]),
        text(&m["state_changes"])
    );
    if let Some(ws) = status["config"]["warnings"].as_array() {
        for w in ws {
            s += &format!("warning: {}\n", text(w));
        }
    }
    let mut rows = Vec::new();
    for p in profiles {
        let pname = format!(
            "{} ({}, {})",
            text(&p["name"]),
            text(&p["routing"]),
            text(&p["status"])
        );
        for e in p["endpoints"].as_array().into_iter().flatten() {
            let probe = &e["probe"];
            let (last, result, rtt) = if probe.is_object() {
                (
                    probe["last_probe"]
                        .as_f64()
                        .map(|t| age(t, now))
                        .unwrap_or_else(|| "never".into()),
                    text(&probe["last_result"]),
                    probe["rtt_ms"]
                        .as_f64()
                        .map(|x| format!("{x:.1} ms"))
                        .unwrap_or_else(|| "-".into()),
                )
            } else {
                ("not probed".into(), "-".into(), "-".into())
            };
            rows.push(vec![
                pname.clone(),
                text(&e["name"]),
                text(&e["status"]),
                text(&e["admin"]),
                if e["serving"].as_bool() == Some(true) {
                    "yes".into()
                } else {
                    "no".into()
                },
                last,
                rtt,
                result,
            ]);
        }
    }
    s += &table(
        &[
            "PROFILE",
            "ENDPOINT",
            "STATE",
            "ADMIN",
            "SERVING",
            "LAST PROBE",
            "RTT",
            "RESULT",
        ],
        &rows,
    );
    Ok(s)
}

/// The body of `http://CONTROL/status`.
pub fn fetch(control: &str, timeout: Duration) -> Result<String, String> {
    let url = if control.starts_with("http://") {
        format!("{}/status", control.trim_end_matches('/'))
    } else {
        format!("http://{control}/status")
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut resp = agent.get(&url).call().map_err(|e| format!("{url}: {e}"))?;
    resp.body_mut()
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))
}

pub fn run(a: &StatusArgs) -> i32 {
    let timeout = Duration::try_from_secs_f64(a.timeout).unwrap_or(Duration::from_secs(5));
    let body = match fetch(&a.control, timeout) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("trafficmgr status: {e}");
            return 1;
        }
    };
    let v: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("trafficmgr status: the answer is not JSON: {e}");
            return 1;
        }
    };
    if a.json {
        println!("{v}");
        return 0;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    match render(&v, now) {
        Ok(s) => {
            print!("{s}");
            0
        }
        Err(e) => {
            eprintln!("trafficmgr status: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use trafficmgr::Engine;
    use trafficmgr::health::AdminState;

    /// The table of a real engine's status: a probed endpoint that answers,
    /// one that does not, a drained one and an unprobed profile.
    #[test]
    fn renders_a_real_engines_status() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let up = open.local_addr().unwrap().port();
        let down = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = format!(
            "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n\
             [[profile]]\nname = \"app\"\nrouting = \"priority\"\n\
             [profile.monitor]\nprotocol = \"tcp\"\nport = {up}\ninterval = \"2s\"\ntimeout = \"1s\"\ntolerated_failures = 0\n\
             [[profile.endpoint]]\nname = \"good\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\" }}\n\
             [[profile.endpoint]]\nname = \"bad\"\naddresses = [\"192.0.2.2\"]\nprobe = {{ host = \"127.0.0.1\", port = {down} }}\n\
             [[profile]]\nname = \"plain\"\nrouting = \"weighted\"\n\
             [[profile.endpoint]]\nname = \"x\"\ntarget = \"x.example\"\n"
        );
        let e = Engine::from_toml(&cfg, None).unwrap();
        assert!(e.wait_ready(Duration::from_secs(10)));
        e.set_admin_state("plain", "x", AdminState::Drain).unwrap();
        let v: Value = serde_json::from_str(&e.status_json()).unwrap();
        let last = v["profiles"][0]["endpoints"][0]["probe"]["last_probe"]
            .as_f64()
            .unwrap();
        let text = render(&v, last + 3.0).unwrap();
        println!("{text}");
        let row = |ep: &str| -> Vec<String> {
            let l = text
                .lines()
                .find(|l| l.split_whitespace().nth(3) == Some(ep))
                .unwrap_or_else(|| panic!("no row for {ep}:\n{text}"));
            l.split_whitespace().map(str::to_string).collect()
        };
        let head: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with("PROFILE"))
            .unwrap()
            .split("  ")
            .filter(|c| !c.is_empty())
            .map(str::trim)
            .collect();
        assert_eq!(
            head,
            [
                "PROFILE",
                "ENDPOINT",
                "STATE",
                "ADMIN",
                "SERVING",
                "LAST PROBE",
                "RTT",
                "RESULT"
            ]
        );
        let good = row("good");
        assert_eq!(good[..3], ["app.tm.example", "(priority,", "Online)"]);
        assert_eq!(good[4..9], ["Online", "none", "yes", "3s", "ago"]);
        assert_eq!(good[10], "ms");
        assert!(good[9].parse::<f64>().is_ok(), "{good:?}");
        let bad = row("bad");
        assert_eq!(bad[4..7], ["Degraded", "none", "yes"]);
        assert!(
            bad[10..].join(" ").to_lowercase().contains("refused"),
            "{bad:?}"
        );
        let x = row("x");
        assert_eq!(x[4..], ["Online", "drain", "no", "not", "probed", "-", "-"]);
        assert!(text.starts_with(&format!("trafficmgr/{}", env!("CARGO_PKG_VERSION"))));
        assert!(text.contains("monitor: ready"), "{text}");
        drop(open);
    }

    #[test]
    fn refuses_what_is_not_a_status() {
        assert!(render(&serde_json::json!({"hello": 1}), 0.0).is_err());
    }

    #[test]
    fn ages_read_as_a_person_would() {
        assert_eq!(age(100.0, 103.4), "3s ago");
        assert_eq!(age(0.0, 600.0), "10m ago");
        assert_eq!(age(0.0, 36_000.0), "10h ago");
        assert_eq!(age(10.0, 5.0), "0s ago");
    }
}
