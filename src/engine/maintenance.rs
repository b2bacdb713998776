//! The engine's maintenance loop: one thread per engine (`tm-maint`),
//! started with it and stopped and joined by its drop (`tm_engine_free`,
//! `dlz_destroy`). Each turn it runs the file watch (the config's and the
//! admin-state file's), reaps retired
//! snapshots, hands the probe service ([`Prober`]) the targets of a new
//! configuration, sends the probes that are due, and publishes the status
//! changes that come back into the current snapshot's health words.
//!
//! Health crosses a reload by one mechanism: the new snapshot is compiled
//! with the health words of the old one, by endpoint identity (profile and
//! endpoint name). The prober keeps its own per-target state across the
//! same reload; it reports a reset (CheckingEndpoint) only for a target
//! that is new or whose probe settings changed, and every status it
//! reports is written by name into the snapshot that is current then,
//! under the writer lock — never by an id taken from another snapshot.
//!
//! A panic in a turn is caught, logged and counted, and the loop goes on.

use super::control::Control;
use super::fleet::{FleetLink, FleetReport, lease_ttl};
use super::{Fault, Inner, panic_message};
use crate::health::service::{ProbeTarget, Prober, Signal, Stopper, Transition};
use crate::health::{AdminState, MonitorStatus};
use crate::log::LogLevel;
use crate::snapshot::{Snapshot, Target};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

/// What the status report shows of the loop itself.
#[derive(Debug, Default, Clone)]
pub(crate) struct MaintenanceStats {
    /// Panics caught (and survived).
    pub(crate) panics: u64,
    /// The last of them.
    pub(crate) last_panic: Option<String>,
    /// Why probes cannot run (no probe thread could be started).
    pub(crate) error: Option<String>,
}

/// The running loop; dropping it stops and joins it (and the probe pool).
pub(crate) struct Maintenance {
    stop: Arc<AtomicBool>,
    probes: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    /// Starts the loop with its probe service.
    pub(crate) fn start(inner: Arc<Inner>, prober: Prober) -> std::io::Result<Maintenance> {
        let stop = Arc::new(AtomicBool::new(false));
        let probes = prober.stopper();
        let turns = Turns {
            inner,
            prober,
            stop: stop.clone(),
            generation: u64::MAX,
            control: None,
            fleet: None,
            fleet_failed: None,
            fleet_instance: crate::fleet::instance_id(),
            trimmed: u64::MAX,
        };
        let thread = std::thread::Builder::new()
            .name("tm-maint".into())
            .spawn(move || turns.run())?;
        Ok(Maintenance {
            stop,
            probes,
            thread: Some(thread),
        })
    }

    /// Stops the loop: probes in flight are interrupted at once, then the
    /// thread and the probe pool are joined.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.probes.stop();
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Turns {
    inner: Arc<Inner>,
    prober: Prober,
    stop: Arc<AtomicBool>,
    /// The snapshot generation whose targets the prober has.
    generation: u64,
    /// The control listener, while the configuration has one.
    control: Option<Control>,
    /// The fleet thread, while the configuration has a `[fleet]`.
    fleet: Option<FleetLink>,
    /// Settings with which the fleet thread could not start (not tried
    /// again until they change).
    fleet_failed: Option<(crate::config::FleetSettings, std::time::Duration)>,
    /// This engine's id in its fleet node key (the same across reloads).
    fleet_instance: String,
    /// The generation after which the allocator last gave memory back.
    trimmed: u64,
}

impl Turns {
    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.turn()));
            if let Err(p) = turn {
                self.inner.maintenance_panicked(&panic_message(&*p));
                // Start again from the snapshot, as after a reload.
                self.generation = u64::MAX;
            }
        }
        self.inner.fault_point(Fault::SlowStop);
        if let Some(mut f) = self.fleet.take() {
            f.stop();
        }
        if let Some(mut c) = self.control.take() {
            c.stop();
        }
        self.prober.stop();
    }

    /// Starts the control listener when the configuration has one, stops
    /// it when it no longer has (the listener follows the address itself).
    fn follow_control(&mut self, snap: &Snapshot) {
        match (snap.settings.control.is_some(), self.control.is_some()) {
            (true, false) => match Control::start(self.inner.clone()) {
                Ok(c) => self.control = Some(c),
                Err(e) => {
                    let msg = format!("cannot start the control listener's thread: {e}");
                    self.inner.log(LogLevel::Error, &msg);
                    if let Ok(mut g) = self.inner.control.lock() {
                        g.error = Some(msg);
                    }
                }
            },
            (false, true) => {
                if let Some(mut c) = self.control.take() {
                    c.stop();
                }
            }
            _ => {}
        }
    }

    /// Starts, restarts or stops the fleet thread as the configuration's
    /// `[fleet]` says.
    fn follow_fleet(&mut self, snap: &Snapshot) {
        let Some(s) = &snap.settings.fleet else {
            if let Some(mut f) = self.fleet.take() {
                f.stop();
                // Alone again: every target from fresh probes of its own.
                let keys: Vec<_> = self.prober.states().map(|(k, _, _)| k.clone()).collect();
                for k in &keys {
                    self.prober.reset(k);
                }
                *crate::fleet::lock(&self.inner.fleet) = FleetReport::default();
                self.inner
                    .log(LogLevel::Info, "fleet: left; probing every endpoint alone");
            }
            self.fleet_failed = None;
            return;
        };
        let ttl = lease_ttl(snap, s);
        if self.fleet.as_ref().is_some_and(|f| f.runs(s, ttl)) {
            return;
        }
        if self
            .fleet_failed
            .as_ref()
            .is_some_and(|(fs, t)| fs == s && *t == ttl)
        {
            return;
        }
        if let Some(mut f) = self.fleet.take() {
            f.stop();
        }
        match FleetLink::start(&self.inner, s, ttl, &self.fleet_instance) {
            Ok(f) => {
                self.fleet = Some(f);
                self.fleet_failed = None;
            }
            Err(e) => {
                let msg = format!("fleet: cannot start ({e}); probing every endpoint alone");
                self.inner.log(LogLevel::Error, &msg);
                *crate::fleet::lock(&self.inner.fleet) = FleetReport {
                    node: s.node.clone(),
                    error: Some(msg),
                    ..FleetReport::default()
                };
                self.fleet_failed = Some((s.clone(), ttl));
            }
        }
    }

    /// One turn: file watch, reaping, targets, probes sent and collected.
    fn turn(&mut self) {
        self.inner.fault_point(Fault::MaintenancePanic);
        self.inner.watch_tick();
        self.inner.admin_tick();
        self.inner.reap();
        // One snapshot for the whole turn, and the generation it is: the
        // prober's ids come from it, and `probed` reads it.
        let generation = self.inner.generation();
        let snap = self.inner.snapshot();
        if self.inner.generation() != generation {
            return; // a reload in between: next turn
        }
        if generation != self.generation {
            self.retarget(&snap, generation);
        }
        if generation != self.trimmed && self.inner.graveyard_is_empty() {
            self.trimmed = generation;
            release_free_memory();
        }
        self.follow_control(&snap);
        self.follow_fleet(&snap);
        // In a fleet, this node probes only its share (docs/FLEET.md).
        let plan = self
            .fleet
            .as_mut()
            .map(|f| f.plan(&snap, &mut self.prober, |id| probed(&snap, id)));
        let here = |id: u32| plan.as_ref().is_none_or(|p| p.here(id));
        let now = Instant::now();
        self.prober
            .dispatch(now, |id| probed(&snap, id) && here(id));
        let wait = self.prober.next_wait(now);
        let changes = self
            .prober
            .collect(wait, |id| probed(&snap, id) && here(id));
        match &mut self.fleet {
            Some(f) => f.publish(&self.inner, &snap, &self.prober, &changes),
            None => self.inner.publish(&changes),
        }
        self.inner.publish_signals(&self.prober.take_signals());
        drop(snap);
        self.inner.beat();
    }

    fn retarget(&mut self, snap: &Snapshot, generation: u64) {
        let targets = probe_targets(snap);
        let wanted = !targets.is_empty();
        let resets = self
            .prober
            .retarget(targets, snap.settings.probe_workers as usize);
        if wanted && self.prober.workers() == 0 {
            let msg = "cannot start any probe thread: endpoints are not probed";
            self.inner.log(LogLevel::Error, msg);
            self.inner
                .maintenance_stats_mut(|m| m.error = Some(msg.into()));
        }
        self.inner.publish(&resets);
        self.inner.publish_signals(&self.prober.take_signals());
        self.generation = generation;
    }
}

impl Inner {
    /// Writes what the probes say beyond the status (failing, recovering,
    /// the reported load) into the current snapshot, by endpoint name.
    pub(crate) fn publish_signals(&self, signals: &[Signal]) {
        for g in signals {
            // A target gone from the configuration meanwhile: nothing to write.
            let _ = self.write_health(&g.key.0, &g.key.1, |h, id| {
                h.set_unsteady(id, g.unsteady);
                if let Some(l) = g.load {
                    h.set_load(id, l);
                }
            });
        }
    }

    /// Writes status changes into the current snapshot, each by its
    /// endpoint's name, under the writer lock; logs the probe-driven ones.
    pub(crate) fn publish(&self, changes: &[Transition]) {
        if changes.is_empty() {
            return;
        }
        for t in changes {
            // A target gone from the configuration meanwhile: nothing to write.
            let _ = self.write_health(&t.key.0, &t.key.1, |h, id| h.set_status(id, t.status));
        }
        for t in changes {
            let level = match t.status {
                MonitorStatus::Degraded => LogLevel::Warn,
                MonitorStatus::Online => LogLevel::Info,
                MonitorStatus::CheckingEndpoint => continue,
            };
            self.log(
                level,
                &format!(
                    "endpoint {}/{} is {} ({})",
                    t.key.0,
                    t.key.1,
                    t.status.as_str(),
                    t.detail
                ),
            );
        }
    }

    /// Records a panic caught in the maintenance loop: logged, counted in
    /// the status, and the locks it may have poisoned made usable again.
    pub(crate) fn maintenance_panicked(&self, msg: &str) {
        self.log(
            LogLevel::Error,
            &format!("internal error in the maintenance loop (it goes on): {msg}"),
        );
        self.reloads.clear_poison();
        self.graveyard.clear_poison();
        self.totals.clear_poison();
        self.control.clear_poison();
        self.watch.clear_poison();
        self.maintenance_stats_mut(|m| {
            m.panics += 1;
            m.last_panic = Some(msg.to_string());
        });
    }

    pub(crate) fn maintenance_stats_mut(&self, f: impl FnOnce(&mut MaintenanceStats)) {
        let mut g = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }

    pub(crate) fn maintenance_stats(&self) -> MaintenanceStats {
        self.maintenance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Inner {
    /// Whether every retired snapshot has been freed.
    fn graveyard_is_empty(&self) -> bool {
        self.graveyard.lock().map(|g| g.is_empty()).unwrap_or(false)
    }
}

/// Hands the pages the allocator holds free back to the system, once per
/// snapshot, after the load or reload that made it and the reaping of the
/// one before: parsing and compiling a configuration leave free memory
/// between the snapshot's allocations (about 300 MB after loading 100,000
/// profiles, docs/PERFORMANCE.md "Many profiles") that glibc keeps
/// otherwise. Off the query path; glibc locks one arena at a time while
/// it walks it (about 50 ms for a 500 MB heap).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only returns free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The probe targets of a configuration: every endpoint of a monitored
/// profile that answers with records (nested endpoints follow their child).
fn probe_targets(snap: &Snapshot) -> Vec<ProbeTarget> {
    (0..snap.endpoints.len() as u32)
        .filter_map(|id| probe_target(snap, id))
        .collect()
}

fn probe_target(snap: &Snapshot, id: u32) -> Option<ProbeTarget> {
    let e = snap.endpoints.get(id as usize)?;
    let p = snap.profiles.get(e.profile as usize)?;
    let m = p.monitor.as_ref()?;
    if matches!(e.target, Target::Nested { .. }) {
        return None;
    }
    let mut host = e.probe_target.clone()?;
    let mut node_header = None;
    if let Some(f) = &snap.settings.fleet {
        // This node's own way to the endpoint, and its name for the
        // endpoint's logs (and the tests' count of probers).
        if let Some((_, h)) = f
            .probe_hosts
            .iter()
            .find(|(k, _)| *k.0 == *p.fqdn && *k.1 == *e.name)
        {
            host = h.clone();
        }
        node_header = Some(("X-Trafficmgr-Node".to_string(), f.node.clone()));
    }
    let ov = e.probe.as_deref();
    // The monitor's headers, each replaced by the endpoint's of the same
    // name, then the endpoint's others.
    let own: &[(String, String)] = ov.map(|o| o.headers.as_slice()).unwrap_or_default();
    let mut headers: Vec<(String, String)> = m
        .headers
        .iter()
        .filter(|(k, _)| !own.iter().any(|(o, _)| o.eq_ignore_ascii_case(k)))
        .chain(own.iter())
        .cloned()
        .collect();
    let host_header = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .or_else(|| match &e.target {
            Target::Cname(r) => Some(r.text().trim_end_matches('.').to_string()),
            _ => None,
        });
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case("host"));
    headers.extend(node_header);
    let spec = crate::health::probe::ProbeSpec {
        protocol: m.protocol,
        host,
        port: ov.and_then(|o| o.port).unwrap_or(m.port),
        path: ov
            .and_then(|o| o.path.clone())
            .unwrap_or_else(|| m.path.clone()),
        host_header,
        headers,
        timeout: m.timeout,
        expected: ov
            .and_then(|o| o.expected_status.clone())
            .unwrap_or_else(|| m.expected_status.clone()),
        verify_tls: m.verify_tls,
        expect_body: ov
            .and_then(|o| o.expect_body.clone())
            .or_else(|| m.expect_body.clone()),
        dns: m.dns.clone(),
        load_header: m.load_header.clone(),
    };
    Some(ProbeTarget {
        key: (p.fqdn.to_string(), e.name.to_string()),
        id,
        spec,
        interval: m.interval,
        tolerated: m.tolerated_failures,
        recovery: m.recovery_successes,
    })
}

/// Whether endpoint `id` is to be probed now (enabled by config or admin,
/// not admin-disabled, profile enabled).
fn probed(snap: &Snapshot, id: u32) -> bool {
    let Some(e) = snap.endpoints.get(id as usize) else {
        return false;
    };
    let Some(p) = snap.profiles.get(e.profile as usize) else {
        return false;
    };
    if !p.enabled {
        return false;
    }
    match snap.health.admin(id) {
        AdminState::Disabled => false,
        AdminState::Enabled => true,
        _ => e.enabled,
    }
}
