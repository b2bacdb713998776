//! Answer counts across reloads, and `/metrics` (docs/OPERATIONS.md,
//! "Metrics and the status page").
//!
//! Each snapshot owns a fresh counter block (`crate::counters`) that the
//! query path counts into with no lock. A count is never lost or counted
//! twice across reloads:
//!
//! - A reload swaps the new snapshot in and pushes the old one into the
//!   graveyard *under the graveyard lock*, so whoever holds that lock sees
//!   every snapshot that may still be counted into either as the current
//!   one or in the graveyard, never in neither.
//! - The maintenance loop reaps a retired snapshot once no reader holds it
//!   (`Arc::try_unwrap`, which synchronises with every reader's last
//!   release, so every increment made through it is visible), and folds
//!   its block's sums into [`Totals`] keyed by name — (profile, endpoint),
//!   profile, zone — under the graveyard lock, then the totals lock.
//! - A scrape takes the same two locks and sums: the totals, the block of
//!   the current snapshot and the blocks of the not-yet-reaped ones.
//!
//! Names no longer in the current configuration are dropped from the
//! totals when their last snapshot is reaped (their series end; one that
//! comes back starts from zero, which Prometheus reads as a counter reset).

use super::Inner;
use super::status::{STATES, endpoint_state};
use crate::counters::RESPONSES;
use crate::health::service::{Board, Durations};
use crate::routing;
use crate::snapshot::Snapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};

/// Counts by name: what the reaped snapshots had counted (and, for a
/// scrape, the live ones added).
#[derive(Debug, Default, Clone)]
pub(crate) struct Totals {
    /// (profile, endpoint) → answers that carried the endpoint's records.
    pub(crate) answers: HashMap<(Box<str>, Box<str>), u64>,
    /// profile → responses by [`Response`] kind.
    pub(crate) responses: HashMap<Box<str>, [u64; 3]>,
    /// zone → responses for names that are not profiles.
    pub(crate) zones: HashMap<Box<str>, [u64; 3]>,
    /// Queries under none of our zones.
    pub(crate) not_ours: u64,
}

impl Totals {
    /// Adds a snapshot's counts.
    fn add(&mut self, snap: &Snapshot) {
        let c = &snap.counters;
        for (id, e) in snap.endpoints.iter().enumerate() {
            let Some(p) = snap.profiles.get(e.profile as usize) else {
                continue;
            };
            let n = c.answers(id as u32);
            *self
                .answers
                .entry((p.fqdn.clone(), e.name.clone()))
                .or_default() += n;
        }
        for (pi, p) in snap.profiles.iter().enumerate() {
            let r = self.responses.entry(p.fqdn.clone()).or_default();
            for k in RESPONSES {
                r[k as usize] += c.profile_responses(pi as u32, k);
            }
        }
        for (zi, z) in snap.zones.iter().enumerate() {
            let r = self.zones.entry(z.name.clone()).or_default();
            for k in RESPONSES {
                r[k as usize] += c.zone_responses(zi as u32, k);
            }
        }
        self.not_ours += c.not_ours_count();
    }

    /// Forgets names that `current` no longer has.
    fn prune(&mut self, current: &Snapshot) {
        self.answers
            .retain(|(p, e), _| current.find_endpoint(p, e).is_some());
        self.responses
            .retain(|p, _| current.profile_id(p).is_some());
        self.zones
            .retain(|z, _| current.zones.iter().any(|q| q.name == *z));
    }
}

impl Inner {
    fn lock_graveyard(&self) -> MutexGuard<'_, Vec<Arc<Snapshot>>> {
        self.graveyard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops retired snapshots that no reader holds any more (off the query
    /// path: a query thread never pays for freeing a big table), folding
    /// their counts into the totals first.
    pub(crate) fn reap(&self) {
        let mut freed = Vec::new();
        {
            let mut g = self.lock_graveyard();
            if g.iter().all(|s| Arc::strong_count(s) > 1) {
                return;
            }
            let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
            let mut kept = Vec::with_capacity(g.len());
            for s in g.drain(..) {
                if Arc::strong_count(&s) > 1 {
                    kept.push(s);
                    continue;
                }
                match Arc::try_unwrap(s) {
                    Ok(snap) => {
                        totals.add(&snap);
                        freed.push(snap);
                    }
                    Err(s) => kept.push(s),
                }
            }
            *g = kept;
            totals.prune(&self.cell.load());
        }
        // The snapshots (and their tables) are freed here, outside the locks.
        drop(freed);
    }

    /// Every count so far: the totals plus the live snapshots' blocks.
    pub(crate) fn counts(&self) -> Totals {
        let g = self.lock_graveyard();
        let mut t = self
            .totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        t.add(&self.cell.load());
        for s in g.iter() {
            t.add(s);
        }
        t
    }

    /// The `/metrics` page: Prometheus text exposition (format 0.0.4).
    pub(crate) fn metrics_text(&self) -> String {
        let counts = self.counts();
        let snap = self.snapshot();
        let reloads = self.reload_stats();
        let scrape = {
            let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
            Scrape::new(&snap, &board, counts, &reloads, self.generation())
        };
        let admin = self.admin_report();
        let fleet = crate::fleet::lock(&self.fleet).clone();
        let scrape = Scrape {
            fleet,
            admin_entries: admin.entries as u64,
            admin_ok: admin.error.is_none(),
            admin_errors: admin.errors,
            ..scrape
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(scrape));
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error leaves what was written.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// Everything one scrape shows, gathered under the locks and then encoded.
#[derive(Debug)]
struct Scrape {
    counts: Totals,
    /// (profile, endpoint, candidate now, status name).
    endpoints: Vec<(Box<str>, Box<str>, bool, &'static str)>,
    /// (profile, endpoint, successes, failures).
    probes: Vec<(String, String, u64, u64)>,
    durations: Vec<(String, Durations)>,
    reloads_ok: u64,
    reloads_failed: u64,
    generation: u64,
    loaded_at: u64,
    /// Keys of the admin-state file in force.
    admin_entries: u64,
    /// Whether the admin-state file last read well (or is absent or unset).
    admin_ok: bool,
    /// Reads of the admin-state file that failed.
    admin_errors: u64,
    /// The fleet's state.
    fleet: super::fleet::FleetReport,
}

impl Scrape {
    fn new(
        snap: &Snapshot,
        board: &Board,
        counts: Totals,
        reloads: &super::ReloadStats,
        generation: u64,
    ) -> Scrape {
        let mut endpoints = Vec::with_capacity(snap.endpoints.len());
        for p in snap.profiles.iter() {
            for id in p.endpoint_ids() {
                let Some(e) = snap.endpoints.get(id as usize) else {
                    continue;
                };
                endpoints.push((
                    p.fqdn.clone(),
                    e.name.clone(),
                    routing::candidate(snap, p, id),
                    endpoint_state(snap, board, id, false),
                ));
            }
        }
        let mut probes: Vec<_> = board
            .eps
            .iter()
            .map(|((p, e), r)| (p.clone(), e.clone(), r.successes, r.failures))
            .collect();
        probes.sort();
        let mut durations: Vec<_> = board
            .durations
            .iter()
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect();
        durations.sort_by(|a, b| a.0.cmp(&b.0));
        Scrape {
            counts,
            endpoints,
            probes,
            durations,
            reloads_ok: reloads.ok,
            admin_entries: 0,
            admin_ok: true,
            admin_errors: 0,
            fleet: Default::default(),
            reloads_failed: reloads.failed,
            generation,
            loaded_at: snap.source.loaded_at,
        }
    }
}

/// One family of counters.
fn counters<'a, L: prometheus_client::encoding::EncodeLabelSet + 'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One family of gauges.
fn gauges<L: prometheus_client::encoding::EncodeLabelSet, V>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error>
where
    V: prometheus_client::encoding::EncodeGaugeValue + std::fmt::Debug,
{
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn sorted<K: Ord + Clone, V: Copy>(m: &HashMap<K, V>) -> Vec<(K, V)> {
    let mut v: Vec<_> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.counts;
        counters(
            &mut enc,
            "trafficmgr_answers",
            "Answers that carried the endpoint's records (a nested endpoint counts in its parent profile, the child's endpoint in the child).",
            sorted(&c.answers)
                .into_iter()
                .map(|((p, e), n)| ([("profile", p), ("endpoint", e)], n)),
        )?;
        let responses = sorted(&c.responses);
        counters(
            &mut enc,
            "trafficmgr_responses",
            "Responses to queries for a profile's name, by DNS rcode (NOERROR includes NODATA).",
            responses.iter().flat_map(|(p, r)| {
                [
                    (
                        [("profile", p.clone()), ("rcode", "NOERROR".into())],
                        r[0] + r[1],
                    ),
                    ([("profile", p.clone()), ("rcode", "NXDOMAIN".into())], r[2]),
                ]
            }),
        )?;
        counters(
            &mut enc,
            "trafficmgr_nodata_responses",
            "NOERROR responses to queries for a profile's name without answer records (NODATA); part of trafficmgr_responses_total{rcode=\"NOERROR\"}.",
            responses
                .iter()
                .map(|(p, r)| ([("profile", p.clone())], r[1])),
        )?;
        let zones = sorted(&c.zones);
        counters(
            &mut enc,
            "trafficmgr_zone_responses",
            "Responses to queries for names of a zone that are not profiles (apex, empty non-terminals, names that do not exist), by DNS rcode (NOERROR includes NODATA).",
            zones.iter().flat_map(|(z, r)| {
                [
                    (
                        [("zone", z.clone()), ("rcode", "NOERROR".into())],
                        r[0] + r[1],
                    ),
                    ([("zone", z.clone()), ("rcode", "NXDOMAIN".into())], r[2]),
                ]
            }),
        )?;
        counters(
            &mut enc,
            "trafficmgr_zone_nodata_responses",
            "NOERROR responses without answer records for names of a zone that are not profiles; part of trafficmgr_zone_responses_total{rcode=\"NOERROR\"}.",
            zones.iter().map(|(z, r)| ([("zone", z.clone())], r[1])),
        )?;
        counters(
            &mut enc,
            "trafficmgr_queries_not_ours",
            "Queries for names under none of our zones (REFUSED, or left to the host's other data).",
            [([] as [(&str, &str); 0], c.not_ours)],
        )?;
        gauges(
            &mut enc,
            "trafficmgr_endpoint_up",
            "1 when the endpoint may be chosen now (a candidate: it gets traffic), else 0.",
            self.endpoints
                .iter()
                .map(|(p, e, up, _)| ([("profile", &**p), ("endpoint", &**e)], i64::from(*up))),
        )?;
        gauges(
            &mut enc,
            "trafficmgr_endpoint_status",
            "The endpoint's status as the status report names it: 1 for the current one, 0 for the others.",
            self.endpoints.iter().flat_map(|(p, e, _, state)| {
                STATES.iter().map(move |s| {
                    (
                        [("profile", &**p), ("endpoint", &**e), ("status", *s)],
                        i64::from(s == state),
                    )
                })
            }),
        )?;
        counters(
            &mut enc,
            "trafficmgr_probes",
            "Finished health probes by result (success, failure).",
            self.probes.iter().flat_map(|(p, e, ok, failed)| {
                [
                    (
                        [
                            ("profile", p.as_str()),
                            ("endpoint", e.as_str()),
                            ("result", "success"),
                        ],
                        *ok,
                    ),
                    (
                        [
                            ("profile", p.as_str()),
                            ("endpoint", e.as_str()),
                            ("result", "failure"),
                        ],
                        *failed,
                    ),
                ]
            }),
        )?;
        {
            let mut m = enc.encode_descriptor(
                "trafficmgr_probe_duration_seconds",
                "Duration of finished health probes (a failure's is until it failed), per profile.",
                None,
                MetricType::Histogram,
            )?;
            for (p, d) in &self.durations {
                let buckets: Vec<(f64, u64)> = Durations::bounds()
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(d.buckets.iter().copied())
                    .collect();
                m.encode_family(&[("profile", p.as_str())])?
                    .encode_histogram::<NoLabelSet>(d.sum, d.count, &buckets, None)?;
            }
        }
        counters(
            &mut enc,
            "trafficmgr_reloads",
            "Reloads of the configuration (explicit and by the file watch) by result (ok, failed); the first load is not one.",
            [
                ([("result", "ok")], self.reloads_ok),
                ([("result", "failed")], self.reloads_failed),
            ],
        )?;
        gauges(
            &mut enc,
            "trafficmgr_config_generation",
            "Configurations swapped in since the engine started (0 = the first).",
            [([] as [(&str, &str); 0], self.generation as i64)],
        )?;
        gauges(
            &mut enc,
            "trafficmgr_last_reload_success_timestamp_seconds",
            "When the configuration now serving was loaded (Unix seconds).",
            [([] as [(&str, &str); 0], self.loaded_at as i64)],
        )?;
        gauges(
            &mut enc,
            "trafficmgr_admin_file_ok",
            "1 when the admin-state file last read well (or is absent or not configured); 0 while a broken file is ignored and the previous state stays.",
            [([] as [(&str, &str); 0], i64::from(self.admin_ok))],
        )?;
        gauges(
            &mut enc,
            "trafficmgr_admin_file_entries",
            "Keys of the admin-state file in force.",
            [([] as [(&str, &str); 0], self.admin_entries as i64)],
        )?;
        counters(
            &mut enc,
            "trafficmgr_admin_file_errors",
            "Reads of the admin-state file that failed (syntax, bad key or value, unreadable).",
            [([] as [(&str, &str); 0], self.admin_errors)],
        )?;
        gauges(
            &mut enc,
            "trafficmgr_build_info",
            "Always 1; the library's version as a label.",
            [([("version", env!("CARGO_PKG_VERSION"))], 1i64)],
        )?;
        self.encode_fleet(&mut enc)
    }
}

impl Scrape {
    /// The `trafficmgr_fleet_*` families, only with `[fleet]`.
    fn encode_fleet(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let f = &self.fleet;
        if !f.enabled && f.error.is_none() {
            return Ok(());
        }
        let none = [] as [(&str, &str); 0];
        gauges(
            enc,
            "trafficmgr_fleet_info",
            "Always 1; this node's name in the fleet (and its EDNS NSID) as a label.",
            [([("node", f.node.clone())], 1i64)],
        )?;
        gauges(
            enc,
            "trafficmgr_fleet_connected",
            "1 while etcd answers and this node shares verdicts with the fleet.",
            [(none, i64::from(f.connected))],
        )?;
        gauges(
            enc,
            "trafficmgr_fleet_fallback",
            "1 while this node probes every endpoint itself and decides alone (etcd unreachable, or the fleet thread could not start).",
            [(none, i64::from(f.fallback() || f.error.is_some()))],
        )?;
        gauges(
            enc,
            "trafficmgr_fleet_nodes",
            "Live nodes of the fleet as this node last read them from etcd.",
            [(none, f.nodes.len() as i64)],
        )?;
        counters(
            enc,
            "trafficmgr_fleet_errors",
            "Rounds with etcd that failed (unreachable, timed out, refused).",
            [(none, f.errors)],
        )?;
        counters(
            enc,
            "trafficmgr_fleet_fallbacks",
            "Times this node lost etcd and fell back to probing everything itself.",
            [(none, f.fallbacks)],
        )?;
        gauges(
            enc,
            "trafficmgr_fleet_endpoint_probers",
            "Nodes that probe the endpoint (its k rendezvous probers among the live nodes).",
            f.endpoints.iter().map(|((p, e), x)| {
                (
                    [("profile", p.clone()), ("endpoint", e.clone())],
                    x.probers.len() as i64,
                )
            }),
        )?;
        gauges(
            enc,
            "trafficmgr_fleet_endpoint_probed_here",
            "1 when this node probes the endpoint now (one of its probers, too few verdicts, or fallback).",
            f.endpoints.iter().map(|((p, e), x)| {
                (
                    [("profile", p.clone()), ("endpoint", e.clone())],
                    i64::from(x.here),
                )
            }),
        )?;
        gauges(
            enc,
            "trafficmgr_fleet_endpoint_verdicts",
            "Verdicts on the endpoint in etcd, by what they say.",
            f.endpoints.iter().flat_map(|((p, e), x)| {
                [
                    ("online", crate::health::MonitorStatus::Online),
                    ("degraded", crate::health::MonitorStatus::Degraded),
                ]
                .map(|(want, st)| {
                    let n = x.verdicts.iter().filter(|(_, s)| *s == st).count();
                    (
                        [
                            ("profile", p.clone()),
                            ("endpoint", e.clone()),
                            ("verdict", want.to_string()),
                        ],
                        n as i64,
                    )
                })
            }),
        )?;
        Ok(())
    }
}
