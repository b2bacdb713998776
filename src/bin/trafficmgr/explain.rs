//! `trafficmgr explain CONFIG NAME [--type T] [--client IP] [--ecs PREFIX] [--json]`.

use crate::status::table;
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use trafficmgr::explain::Explanation;
use trafficmgr::health::{AdminState, MonitorStatus};
use trafficmgr::snapshot::Snapshot;

/// Show how the engine answers one query, with the query path's own code:
/// where the name falls (zone, profile), the routing method, each endpoint
/// with its state, weight, priority and what the method read of it (latency
/// figure, distance, matched prefix or code), the chosen endpoint(s), the
/// ECS scope and why, and the records.
///
/// Health comes from the config alone: no probe runs, so probed endpoints
/// are CheckingEndpoint (which answers as online) and admin overrides are
/// not applied; unless `--control` names a running engine, whose endpoint
/// states and admin overrides are then used.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The configuration file (TOML)
    pub config: PathBuf,
    /// The query name (trailing dot optional)
    pub name: String,
    /// The query type: a name (A, AAAA, CNAME, ANY, SOA, NS, ...) or a number
    #[arg(long = "type", short = 't', default_value = "A", value_parser = qtype)]
    pub qtype: u16,
    /// The address the query comes from (the resolver's)
    #[arg(long, value_name = "IP")]
    pub client: Option<IpAddr>,
    /// An EDNS Client Subnet option, ADDRESS/LENGTH (it wins over --client when its length is above 0)
    #[arg(long, value_name = "PREFIX", value_parser = ecs)]
    pub ecs: Option<(IpAddr, u8)>,
    /// Use the endpoint states and admin overrides of a running engine
    /// (its control listener, HOST:PORT) instead of the config's
    #[arg(long, value_name = "ADDR")]
    pub control: Option<String>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

/// Writes a running engine's endpoint states (its status report) into
/// `snap`'s health words, by profile and endpoint name. Nested endpoints
/// are left alone: their state follows their children's. Returns how many
/// endpoints were found in both.
pub fn apply_live(snap: &Snapshot, status: &Value) -> Result<usize, String> {
    let profiles = status["profiles"]
        .as_array()
        .ok_or("not a trafficmgr status: no `profiles` list")?;
    let mut n = 0;
    for p in profiles {
        let Some(pname) = p["name"].as_str() else {
            continue;
        };
        for e in p["endpoints"].as_array().into_iter().flatten() {
            let Some(id) = e["name"]
                .as_str()
                .and_then(|en| snap.find_endpoint(pname, en))
            else {
                continue;
            };
            n += 1;
            let admin = match e["admin"].as_str() {
                Some("enabled") => AdminState::Enabled,
                Some("disabled") => AdminState::Disabled,
                Some("drain") => AdminState::Drain,
                _ => AdminState::None,
            };
            snap.health.set_admin(id, admin);
            let nested = snap.hot.get(id as usize).is_some_and(|h| h.nested);
            let status = match e["status"].as_str() {
                Some("Online") => Some(MonitorStatus::Online),
                Some("Degraded") => Some(MonitorStatus::Degraded),
                Some("CheckingEndpoint") => Some(MonitorStatus::CheckingEndpoint),
                _ => None,
            };
            if let (false, Some(s)) = (nested, status) {
                snap.health.set_status(id, s);
            }
        }
    }
    Ok(n)
}

const TYPES: [(&str, u16); 12] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
    ("DS", 43),
    ("HTTPS", 65),
    ("ANY", 255),
];

fn qtype(s: &str) -> Result<u16, String> {
    let up = s.to_ascii_uppercase();
    if let Some((_, n)) = TYPES.iter().find(|(t, _)| *t == up) {
        return Ok(*n);
    }
    up.strip_prefix("TYPE")
        .unwrap_or(&up)
        .parse()
        .map_err(|_| format!("`{s}`: not a query type (A, AAAA, ANY, ... or a number)"))
}

fn ecs(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: not ADDRESS/LENGTH"))?;
    let addr: IpAddr = a.parse().map_err(|_| format!("`{a}`: not an address"))?;
    let len: u8 = l.parse().map_err(|_| format!("`{l}`: not a length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("/{len}: longer than the family allows (/{max})"));
    }
    Ok((addr, len))
}

/// The explanation a person reads.
pub fn render(x: &Explanation) -> String {
    let mut s = format!("query: {} {}", x.name, x.qtype);
    if let Some(c) = x.client {
        s += &format!(" from {c}");
    }
    if let Some(e) = &x.ecs {
        s += &format!(" with ECS {e}");
    }
    s += "\n";
    match x.routing_address {
        Some(a) => s += &format!("routing address: {a}/{}\n", x.source_prefix),
        None => s += "routing address: none (no client, no ECS)\n",
    }
    s += &format!("name: {}\n", x.place);
    if let Some(z) = &x.zone {
        s += &format!("zone: {z}\n");
    }
    for d in &x.decisions {
        let ind = "  ".repeat(d.depth as usize);
        s += &format!(
            "{ind}profile {} (routing {}, {}{})\n",
            d.profile,
            d.routing,
            d.all_down,
            if d.depth > 0 { ", nested" } else { "" }
        );
        s += &format!("{ind}  rule: {}\n", d.rule);
        for c in &d.client {
            s += &format!("{ind}  client: {c}\n");
        }
        let rows: Vec<Vec<String>> = d
            .endpoints
            .iter()
            .map(|e| {
                let figures: Vec<&str> = e
                    .figures
                    .iter()
                    .filter_map(|f| f["text"].as_str())
                    .collect();
                vec![
                    if e.chosen { "*".into() } else { " ".into() },
                    e.name.clone(),
                    e.state.clone(),
                    e.admin.clone(),
                    match e.candidate {
                        Some(true) => "yes".into(),
                        Some(false) => "no".into(),
                        None => "-".into(),
                    },
                    e.priority.to_string(),
                    e.weight.to_string(),
                    e.region.clone().unwrap_or_else(|| "-".into()),
                    if figures.is_empty() {
                        "-".into()
                    } else {
                        figures.join("; ")
                    },
                    e.target.clone(),
                ]
            })
            .collect();
        for line in table(
            &[
                "",
                "ENDPOINT",
                "STATE",
                "ADMIN",
                "CANDIDATE",
                "PRIORITY",
                "WEIGHT",
                "REGION",
                "FIGURE",
                "TARGET",
            ],
            &rows,
        )
        .lines()
        {
            s += &format!("{ind}  {line}\n");
        }
        let chosen = if d.chosen.is_empty() {
            d.outcome.clone()
        } else {
            d.chosen.join(", ")
        };
        s += &format!(
            "{ind}  chose: {chosen} (ECS scope /{}: {})\n",
            d.scope, d.scope_why
        );
        if !d.ttl.is_empty() {
            s += &format!("{ind}  ttl: {}\n", d.ttl);
        }
    }
    s += &format!(
        "answer: {}, ECS scope /{} ({})\n",
        x.rcode, x.scope, x.scope_why
    );
    for r in &x.records {
        s += &format!("  {r}\n");
    }
    if !x.authority.is_empty() {
        s += "authority:\n";
        for r in &x.authority {
            s += &format!("  {r}\n");
        }
    }
    s
}

pub fn run(a: &ExplainArgs) -> i32 {
    let snap = match trafficmgr::check::load(&a.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    if let Some(c) = &a.control {
        let live = crate::status::fetch(c, Duration::from_secs(5))
            .and_then(|b| serde_json::from_str::<Value>(&b).map_err(|e| e.to_string()))
            .and_then(|v| apply_live(&snap, &v));
        if let Err(e) = live {
            eprintln!("trafficmgr explain: --control {c}: {e}");
            return 1;
        }
    }
    let q = trafficmgr::Query {
        name: a.name.as_bytes(),
        qtype: a.qtype,
        client: a.client,
        ecs: a.ecs,
    };
    match trafficmgr::explain::explain(&snap, &q) {
        Ok(x) => {
            if a.json {
                println!("{}", serde_json::to_value(&x).unwrap_or_default());
            } else {
                print!("{}", render(&x));
            }
            0
        }
        Err(e) => {
            eprintln!("trafficmgr explain: {e}");
            1
        }
    }
}
