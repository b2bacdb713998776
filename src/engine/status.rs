//! The status report (JSON), built on demand off the query path from the
//! snapshot and the monitor's board. Format: `docs/OPERATIONS.md`.

use super::ReloadStats;
use super::admin::AdminReport;
use super::control::ControlState;
use super::fleet::FleetReport;
use super::maintenance::MaintenanceStats;
use super::metrics::Totals;
use crate::health::service::Board;
use crate::health::{AdminState, Forced, MonitorStatus};
use crate::routing;
use crate::snapshot::{Snapshot, Target};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

/// Every name [`endpoint_state`] gives (the one-hot metric's values).
pub(crate) const STATES: [&str; 6] = [
    "Online",
    "CheckingEndpoint",
    "Degraded",
    "Disabled",
    "Inactive",
    "Stopped",
];

/// Azure's name for a monitor status.
fn monitor_name(s: MonitorStatus) -> &'static str {
    match s {
        MonitorStatus::CheckingEndpoint => "CheckingEndpoint",
        MonitorStatus::Online => "Online",
        MonitorStatus::Degraded => "Degraded",
    }
}

/// Azure's name for the endpoint's state: the effective one, or with
/// `verdict`, what the monitor (probes, `set_monitor_status`, a nested
/// endpoint's children) concluded whatever is forced.
pub(crate) fn endpoint_state(
    snap: &Snapshot,
    board: &Board,
    id: u32,
    verdict: bool,
) -> &'static str {
    let Some(e) = snap.endpoints.get(id as usize) else {
        return "Stopped";
    };
    let Some(p) = snap.profiles.get(e.profile as usize) else {
        return "Stopped";
    };
    if !p.enabled {
        return "Inactive";
    }
    if !routing::enabled(snap, id) {
        return "Disabled";
    }
    if let Target::Nested {
        child,
        min_children,
    } = e.target
    {
        let Some(cp) = snap.profiles.get(child as usize) else {
            return "Stopped";
        };
        let any_enabled = cp.endpoint_ids().any(|c| routing::enabled(snap, c));
        if !cp.enabled || !any_enabled {
            return "Stopped";
        }
        match snap.health.forced(id) {
            Forced::Up if !verdict => return "Online",
            Forced::Down if !verdict => return "Degraded",
            _ => {}
        }
        let (online, checking) = routing::child_counts(snap, child, 0);
        return if online >= min_children {
            if online - checking >= min_children {
                "Online"
            } else {
                "CheckingEndpoint"
            }
        } else {
            "Degraded"
        };
    }
    match snap.health.forced(id) {
        Forced::Up if !verdict => return "Online",
        Forced::Down if !verdict => return "Degraded",
        _ => {}
    }
    if p.monitor.is_none() || snap.settings.fleet.is_some() {
        // In a fleet the health word holds the fleet's decision, not what
        // this node's own probes (the board) say.
        return match snap.health.verdict(id) {
            MonitorStatus::Degraded => "Degraded",
            MonitorStatus::CheckingEndpoint if p.monitor.is_some() => "CheckingEndpoint",
            _ => "Online",
        };
    }
    let key = (p.fqdn.to_string(), e.name.to_string());
    monitor_name(
        board
            .eps
            .get(&key)
            .map(|r| r.status)
            .unwrap_or(snap.health.verdict(id)),
    )
}

/// The `fleet` object: `null` without `[fleet]`.
fn fleet_json(f: &FleetReport) -> Value {
    if !f.enabled && f.error.is_none() {
        return Value::Null;
    }
    json!({
        "node": f.node,
        "connected": f.connected,
        "fallback": f.fallback() || f.error.is_some(),
        "since": f.since.map(unix),
        "last_error": f.last_error,
        "error": f.error,
        "nodes": f.nodes,
        "probers_per_endpoint": f.probers_per_endpoint,
        "healthy_when": f.rule,
        "lease_ttl_s": f.lease_ttl.as_secs_f64(),
        "polls": f.polls,
        "errors": f.errors,
        "fallbacks": f.fallbacks,
        "leases": f.leases,
    })
}

/// Renders the whole report.
#[allow(clippy::too_many_arguments)] // one argument per part of the report
pub(crate) fn render(
    snap: &Snapshot,
    board: &Board,
    reloads: &ReloadStats,
    maintenance: &MaintenanceStats,
    admin_layers: &AdminReport,
    counts: &Totals,
    control: &ControlState,
    fleet: &FleetReport,
) -> String {
    let mut profiles = Vec::new();
    for p in snap.profiles.iter() {
        let mut eps = Vec::new();
        let mut states = Vec::new();
        for id in p.endpoint_ids() {
            let e = &snap.endpoints[id as usize];
            let state = endpoint_state(snap, board, id, false);
            states.push(state);
            let admin = snap.health.admin(id);
            let admin_source = if admin_layers.has_api_override(&p.fqdn, &e.name) {
                Some("api")
            } else if admin != AdminState::None {
                Some("file")
            } else {
                None
            };
            let rec = board.eps.get(&(p.fqdn.to_string(), e.name.to_string()));
            let mut o = json!({
                "name": &*e.name,
                "status": state,
                "admin": admin.as_str(),
                "admin_source": admin_source,
                "forced": snap.health.forced(id).as_str(),
                "monitor_status": endpoint_state(snap, board, id, true),
                "enabled": e.enabled,
                "serving": routing::servable(snap, id) && admin != AdminState::Drain,
                "up": routing::candidate(snap, p, id),
                "priority": e.priority,
                "weight": e.weight,
                "always_serve": e.always_serve,
                "load": match snap.health.load(id) {
                    crate::health::NO_LOAD => Value::Null,
                    l => json!(f64::from(l) / 1000.0),
                },
                "unsteady": match snap.health.unsteady(id) {
                    crate::health::FAILING => Some("failing"),
                    crate::health::RECOVERING => Some("recovering"),
                    _ => None,
                },
                "answers": counts.answers.get(&(p.fqdn.clone(), e.name.clone())).copied().unwrap_or(0),
            });
            if let Some(r) = rec {
                o["probe"] = json!({
                    "target": r.target,
                    "since": unix(r.since),
                    "last_probe": r.last_probe.map(unix),
                    "last_result": r.last_result,
                    "consecutive_failures": r.fails,
                    "consecutive_successes": r.succs,
                    "rtt_ms": r.rtt_ms.map(|x| (x * 1000.0).round() / 1000.0),
                    "probes": r.probes,
                    "failures": r.failures,
                });
            }
            if let Some(f) = fleet
                .endpoints
                .get(&(p.fqdn.to_string(), e.name.to_string()))
            {
                o["fleet"] = json!({
                    "probers": f.probers,
                    "probed_here": f.here,
                    "verdicts": f.verdicts.iter().map(|(n, s)| (n.clone(), Value::from(s.as_str()))).collect::<serde_json::Map<_, _>>(),
                    "decision": f.decision.map(|s| s.as_str()),
                });
            }
            eps.push(o);
        }
        let status = if !p.enabled {
            "Disabled"
        } else if states.iter().all(|s| *s == "Disabled") {
            "Inactive"
        } else if states.contains(&"Online") {
            "Online"
        } else if states.contains(&"CheckingEndpoint") {
            "CheckingEndpoints"
        } else {
            "Degraded"
        };
        profiles.push(json!({
            "name": &*p.fqdn,
            "routing": p.routing.as_str(),
            "status": status,
            "monitored": p.monitor.is_some(),
            "ttl": p.ttl,
            "ttl_unstable": p.ttl_unstable,
            "spill": p.spill.map(|(a, b)| json!({"start": f64::from(a) / 1000.0, "full": f64::from(b) / 1000.0})),
            "endpoints": eps,
        }));
    }
    let v: Value = json!({
        "version": concat!("trafficmgr/", env!("CARGO_PKG_VERSION")),
        "config": {
            "path": snap.source.path.as_ref().map(|p| p.display().to_string()),
            "hash": format!("{:016x}", snap.source.hash),
            "loaded_at": snap.source.loaded_at,
            "warnings": snap.warnings().collect::<Vec<_>>(),
        },
        "reloads": {
            "ok": reloads.ok,
            "failed": reloads.failed,
            "last_error": reloads.last_error,
            "last_error_at": reloads.last_error_at,
            "last_attempt_at": reloads.last_attempt_at,
        },
        "monitor": {
            "ready": board.ready,
            "probes_sent": board.probes_sent,
            "probes_failed": board.probes_failed,
            "state_changes": board.state_changes,
            "error": maintenance.error,
            "panics": maintenance.panics,
            "last_panic": maintenance.last_panic,
        },
        "admin_file": {
            "path": admin_layers.path,
            "loaded_at": admin_layers.loaded_at,
            "entries": admin_layers.entries,
            "error": admin_layers.error,
            "error_at": admin_layers.error_at,
            "errors": admin_layers.errors,
            "unmatched": admin_layers.unmatched,
        },
        "control": {
            "address": control.address.map(|a| a.to_string()),
            "listening": control.listening,
            "error": control.error,
        },
        "fleet": fleet_json(fleet),
        "profiles": profiles,
    });
    v.to_string()
}
