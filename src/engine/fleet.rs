//! The fleet in the maintenance loop (docs/FLEET.md): which endpoints this
//! node probes, which of its verdicts it shares, and what goes into the
//! health words — the fleet's decision by `healthy_when`, or this node's
//! own probes when etcd is away or an endpoint has too few verdicts.
//!
//! Each turn [`FleetLink::plan`] (before the probes are sent) reads the
//! fleet thread's view and marks every target *here* (probed by this node)
//! when etcd is unreachable, when this node is one of its k rendezvous
//! probers, or when the rule cannot decide from the verdicts there are. A
//! target that becomes *here* after a time it was not is reset
//! ([`Prober::reset`]), so that what this node says of it comes from fresh
//! probes only. [`FleetLink::publish`] (after the results are collected)
//! hands the fleet thread this node's verdicts on the targets it is a
//! prober of, and writes each target's state into its health word when it
//! changed: the fleet's decision if there is one, else this node's own
//! (not while it is still CheckingEndpoint after a reset: the word keeps
//! what it had). The query path reads the same words as always; a forced
//! `up`/`down` of the admin-state file still wins over whatever is written.

use super::Inner;
use crate::config::FleetSettings;
use crate::fleet::{Fleet, Key, View, default_ttl, lock, probers};
use crate::health::MonitorStatus;
use crate::health::service::{Prober, Transition};
use crate::log::LogLevel;
use crate::snapshot::Snapshot;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What the status report and the metrics show of the fleet.
#[derive(Debug, Clone, Default)]
pub(crate) struct FleetReport {
    /// `[fleet]` is configured and its thread runs.
    pub(crate) enabled: bool,
    /// This node's name.
    pub(crate) node: String,
    /// etcd answers.
    pub(crate) connected: bool,
    /// Since when `connected` has its value.
    pub(crate) since: Option<SystemTime>,
    /// Why etcd last failed.
    pub(crate) last_error: Option<String>,
    /// Why the thread could not start.
    pub(crate) error: Option<String>,
    /// Live nodes.
    pub(crate) nodes: Vec<String>,
    /// k (0 = every node).
    pub(crate) probers_per_endpoint: u32,
    /// The rule, as text.
    pub(crate) rule: String,
    /// Lease TTL.
    pub(crate) lease_ttl: Duration,
    /// Reads, failed rounds, fallbacks, leases granted.
    pub(crate) polls: u64,
    pub(crate) errors: u64,
    pub(crate) fallbacks: u64,
    pub(crate) leases: u64,
    /// Per endpoint.
    pub(crate) endpoints: BTreeMap<Key, EpFleet>,
}

/// One endpoint in the fleet.
#[derive(Debug, Clone, Default)]
pub(crate) struct EpFleet {
    /// Its k probers among the live nodes.
    pub(crate) probers: Vec<String>,
    /// The verdicts in etcd, by node.
    pub(crate) verdicts: Vec<(String, MonitorStatus)>,
    /// This node probes it now.
    pub(crate) here: bool,
    /// The fleet's decision, when the rule could make one.
    pub(crate) decision: Option<MonitorStatus>,
}

impl FleetReport {
    /// Whether the node probes everything itself now (etcd away).
    pub(crate) fn fallback(&self) -> bool {
        self.enabled && !self.connected
    }
}

/// The fleet thread and what the loop remembers between turns.
pub(crate) struct FleetLink {
    fleet: Fleet,
    view: Arc<Mutex<View>>,
    /// Targets probed here at the last plan.
    here: HashSet<Key>,
    /// Whether a plan was made (before it, everything is probed here).
    planned: bool,
    /// The fleet thread's lease count at the last plan: a new lease (a
    /// rejoin after the old one was lost) resets what is probed here.
    epoch: u64,
}

/// The ids (of the turn's snapshot) of the targets probed here.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    here: Vec<bool>,
}

impl Plan {
    /// Whether target `id` is probed by this node.
    pub(crate) fn here(&self, id: u32) -> bool {
        self.here.get(id as usize).copied().unwrap_or(true)
    }
}

/// The lease TTL of a configuration: `lease_ttl`, else 3 × its longest
/// probe interval (at least 2 s, and at least 3 × `poll_interval`: the
/// lease is refreshed from the polls).
pub(crate) fn lease_ttl(snap: &Snapshot, s: &FleetSettings) -> Duration {
    s.lease_ttl.unwrap_or_else(|| {
        default_ttl(
            snap.profiles
                .iter()
                .filter_map(|p| p.monitor.as_ref().map(|m| m.interval))
                .max()
                .unwrap_or(Duration::from_secs(30)),
        )
        .max(s.poll_interval * 3)
    })
}

impl FleetLink {
    /// Starts the fleet thread for `s`, as engine instance `instance`.
    pub(crate) fn start(
        inner: &Arc<Inner>,
        s: &FleetSettings,
        ttl: Duration,
        instance: &str,
    ) -> Result<FleetLink, String> {
        let log_inner = inner.clone();
        let log = Arc::new(move |l: LogLevel, m: &str| log_inner.log(l, m));
        let fleet = Fleet::start(s.clone(), ttl, instance.to_string(), log)?;
        Ok(FleetLink {
            view: fleet.view(),
            fleet,
            here: HashSet::new(),
            planned: false,
            epoch: 0,
        })
    }

    /// The settings and TTL it runs with.
    pub(crate) fn runs(&self, s: &FleetSettings, ttl: Duration) -> bool {
        &self.fleet.settings == s && self.fleet.ttl == ttl
    }

    /// Stops the fleet thread (the lease is revoked if etcd answers at once).
    pub(crate) fn stop(&mut self) {
        self.fleet.stop();
    }

    /// Marks the targets probed here this turn; resets those that come
    /// back after a time they were not. `probed` says whether a target is
    /// probed at all now (not admin-disabled on this node): one that is
    /// not is never *here*, so this node stops vouching for it — its last
    /// verdict is withdrawn from etcd — instead of sharing a verdict that
    /// no probe refreshes.
    pub(crate) fn plan(
        &mut self,
        snap: &Snapshot,
        prober: &mut Prober,
        probed: impl Fn(u32) -> bool,
    ) -> Plan {
        let s = &self.fleet.settings;
        let mut plan = Plan {
            here: vec![true; snap.endpoints.len()],
        };
        let mut here = HashSet::new();
        let mut resets = Vec::new();
        {
            let v = lock(&self.view);
            let connected = v.current(self.fleet.ttl);
            // A rejoin after the lease was lost (etcd away longer than the
            // TTL, or this process paused past it): what the probes here
            // found before may be long out of date and the fleet has moved
            // on; this node's verdicts come from fresh probes only.
            let rejoined = v.leases != self.epoch && self.epoch != 0;
            self.epoch = v.leases;
            for (key, id, _) in prober.states() {
                let h = probed(id)
                    && (!connected || {
                        let assigned = probers(key, &v.nodes, s.probers_per_endpoint)
                            .contains(&s.node.as_str());
                        assigned || decision(s, v.verdicts.get(key)).is_none()
                    });
                if let Some(slot) = plan.here.get_mut(id as usize) {
                    *slot = h;
                }
                if h {
                    if self.planned && (rejoined || !self.here.contains(key)) {
                        resets.push(key.clone());
                    }
                    here.insert(key.clone());
                }
            }
        }
        for k in &resets {
            prober.reset(k);
        }
        self.here = here;
        self.planned = true;
        plan
    }

    /// After a turn's probes: this node's verdicts to the fleet thread,
    /// each target's state into its health word, the report.
    pub(crate) fn publish(
        &mut self,
        inner: &Inner,
        snap: &Snapshot,
        prober: &Prober,
        changes: &[Transition],
    ) {
        let s = &self.fleet.settings;
        let details: HashMap<&Key, &str> = changes
            .iter()
            .map(|t| (&t.key, t.detail.as_str()))
            .collect();
        let mut writes: Vec<(Key, MonitorStatus, String)> = Vec::new();
        let mut report = FleetReport {
            enabled: true,
            node: s.node.clone(),
            probers_per_endpoint: s.probers_per_endpoint,
            rule: s.healthy_when.text(),
            lease_ttl: self.fleet.ttl,
            ..FleetReport::default()
        };
        let mut changed_mine = false;
        {
            let mut v = lock(&self.view);
            let connected = v.current(self.fleet.ttl);
            let mut mine = BTreeMap::new();
            for (key, id, local) in prober.states() {
                let here = self.here.contains(key);
                let list = v.verdicts.get(key);
                let decided = if connected { decision(s, list) } else { None };
                let probers_now: Vec<String> = if connected {
                    probers(key, &v.nodes, s.probers_per_endpoint)
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                } else {
                    Vec::new()
                };
                let assigned = probers_now.iter().any(|n| n == &s.node);
                if connected && assigned && here && local != MonitorStatus::CheckingEndpoint {
                    mine.insert(key.clone(), local);
                }
                let state =
                    decided.or((here && local != MonitorStatus::CheckingEndpoint).then_some(local));
                if let Some(st) = state
                    && snap.health.verdict(id) != st
                {
                    let why = match (decided, list) {
                        (Some(_), Some(l)) => format!(
                            "fleet: {} of {} verdicts online, rule {}",
                            l.iter()
                                .filter(|(_, x)| *x == MonitorStatus::Online)
                                .count(),
                            l.len(),
                            s.healthy_when.text()
                        ),
                        _ => format!(
                            "probed by this node{}: {}",
                            if connected { "" } else { ", etcd unreachable" },
                            details.get(key).copied().unwrap_or("")
                        ),
                    };
                    writes.push((key.clone(), st, why));
                }
                report.endpoints.insert(
                    key.clone(),
                    EpFleet {
                        probers: probers_now,
                        verdicts: list.cloned().unwrap_or_default(),
                        here,
                        decision: decided,
                    },
                );
            }
            // Not before the plan has seen a new lease (and reset what it
            // had to): the fleet thread cleared `mine` for it.
            if v.leases == self.epoch && v.mine != mine {
                v.mine = mine;
                changed_mine = true;
            }
            report.connected = connected;
            report.since = Some(v.since);
            report.last_error = v.last_error.clone();
            report.nodes = v.nodes.clone();
            report.polls = v.polls;
            report.errors = v.errors;
            report.fallbacks = v.fallbacks;
            report.leases = v.leases;
        }
        if changed_mine {
            self.fleet.wake();
        }
        for (key, st, why) in &writes {
            let _ = inner.write_health(&key.0, &key.1, |h, id| h.set_status(id, *st));
            let level = match st {
                MonitorStatus::Degraded => LogLevel::Warn,
                _ => LogLevel::Info,
            };
            inner.log(
                level,
                &format!("endpoint {}/{} is {} ({why})", key.0, key.1, st.as_str()),
            );
        }
        *lock(&inner.fleet) = report;
    }
}

/// The fleet's decision on one endpoint from its verdicts, or `None` when
/// the rule cannot decide (too few verdicts).
fn decision(
    s: &FleetSettings,
    list: Option<&Vec<(String, MonitorStatus)>>,
) -> Option<MonitorStatus> {
    let list = list?;
    let online = list
        .iter()
        .filter(|(_, x)| *x == MonitorStatus::Online)
        .count();
    s.healthy_when.decide(online, list.len()).map(|up| {
        if up {
            MonitorStatus::Online
        } else {
            MonitorStatus::Degraded
        }
    })
}
