//! The monitor: one scheduler thread owned by the engine and a fixed pool of
//! at most `probe_workers` probe threads, all started by engine creation and
//! stopped and joined by `tm_engine_free` (a stop flag; HTTP requests in
//! flight are interrupted through ureq's agent shutdown; TCP connects poll
//! the flag every 100 ms), so free returns within about 100 ms even while
//! probes hang. A name that the system resolver is still resolving is the
//! one thing that cannot be interrupted.
//!
//! Schedule: every probed endpoint is probed right at start; after that,
//! the i-th of the engine's n probed endpoints is probed at `start +
//! interval * i / n + k * interval`, so probes (a profile's, and all of
//! them) are spread evenly over the interval. An
//! endpoint is never probed twice at once, so one that hangs holds one
//! worker for at most its timeout and never delays another's probe.
//!
//! State machine (per endpoint; anti-flap counters live only here):
//!
//! | status           | probe passes                        | probe fails                             |
//! |------------------|-------------------------------------|-----------------------------------------|
//! | CheckingEndpoint | Online                              | Degraded after tolerated_failures + 1   |
//! | Online           | Online                              | Degraded after tolerated_failures + 1   |
//! | Degraded         | Online after recovery_successes     | Degraded                                |
//!
//! Results reach queries through the snapshot's health words (written under
//! the engine's writer lock); the status board is for `status_json`.

use super::probe::{self, Clients, ProbeResult, ProbeSpec};
use super::{AdminState, MonitorStatus};
use crate::config::ProbeProtocol;
use crate::engine::{Fault, Inner, LogLevel, panic_message};
use crate::snapshot::{EpAnswer, Snapshot};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// What the status report shows of one endpoint's monitoring.
#[derive(Debug, Clone)]
pub struct EpRecord {
    /// Current monitor status.
    pub status: MonitorStatus,
    /// When the status last changed.
    pub since: SystemTime,
    /// When the last probe finished.
    pub last_probe: Option<SystemTime>,
    /// `HTTP 200`, `TCP connected` or the error.
    pub last_result: Option<String>,
    /// Consecutive failures.
    pub fails: u32,
    /// Consecutive successes.
    pub succs: u32,
    /// Round-trip time of the last probe, ms.
    pub rtt_ms: Option<f64>,
    /// Probes sent to this endpoint.
    pub probes: u64,
    /// Probes that failed.
    pub failures: u64,
    /// Where the probe goes (`http://192.0.2.1:80/`).
    pub target: String,
}

/// The monitor's report, read by `status_json`.
#[derive(Debug, Default)]
pub struct Board {
    /// Per (profile fqdn, endpoint name).
    pub eps: HashMap<(String, String), EpRecord>,
    /// Probes sent.
    pub probes_sent: u64,
    /// Probes failed.
    pub probes_failed: u64,
    /// Status changes.
    pub state_changes: u64,
    /// Every probed endpoint has had a first result.
    pub ready: bool,
    /// Set if the scheduler thread died (it should not).
    pub scheduler_error: Option<String>,
    /// Panics caught (and survived) in the maintenance loop.
    pub panics: u64,
    /// The last of them.
    pub last_panic: Option<String>,
}

/// The running monitor; dropping it stops and joins every thread.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    clients: Clients,
    scheduler: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

impl Monitor {
    /// Starts the scheduler thread.
    pub(crate) fn start(inner: Arc<Inner>) -> std::io::Result<Monitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = Clients::new();
        let (s2, c2) = (stop.clone(), clients.clone());
        let scheduler = std::thread::Builder::new()
            .name("tm-monitor".into())
            .spawn(move || {
                let inner2 = inner.clone();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    Scheduler::new(inner, s2, c2).run()
                }));
                if let Err(p) = r {
                    let msg = panic_message(&*p);
                    inner2.log(LogLevel::Error, &format!("health monitor stopped: {msg}"));
                    if let Ok(mut b) = inner2.board.lock() {
                        b.scheduler_error = Some(msg);
                    }
                }
            })?;
        Ok(Monitor {
            stop,
            clients,
            scheduler: Some(scheduler),
        })
    }

    /// Stops and joins every thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.clients.shutdown();
        if let Some(h) = self.scheduler.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Job {
    slot: usize,
    generation: u64,
    key: (String, String),
    spec: ProbeSpec,
}

struct Done {
    slot: usize,
    generation: u64,
    key: (String, String),
    result: ProbeResult,
}

struct Slot {
    key: (String, String),
    id: u32,
    spec: ProbeSpec,
    interval: Duration,
    tolerated: u32,
    recovery: u32,
    offset: Duration,
    base: Instant,
    next_due: Instant,
    in_flight: bool,
    fails: u32,
    succs: u32,
    status: MonitorStatus,
    probed: bool,
}

struct Scheduler {
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
    clients: Clients,
    slots: Vec<Slot>,
    generation: u64,
    job_tx: Option<Sender<Job>>,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    in_flight: usize,
}

fn probe_spec(snap: &Snapshot, id: u32) -> Option<(ProbeSpec, Duration, u32, u32)> {
    let e = snap.endpoints.get(id as usize)?;
    let p = snap.profiles.get(e.profile as usize)?;
    let m = p.monitor.as_ref()?;
    if matches!(e.answer, EpAnswer::Nested { .. }) {
        return None;
    }
    let host = e.probe_target.clone()?;
    let host_header = m
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .or_else(|| match &e.answer {
            EpAnswer::Cname(r) => Some(r.text.trim_end_matches('.').to_string()),
            _ => None,
        });
    let spec = ProbeSpec {
        protocol: m.protocol,
        host,
        port: e.probe_port.unwrap_or(m.port),
        path: e.probe_path.clone().unwrap_or_else(|| m.path.clone()),
        host_header,
        headers: m
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
            .cloned()
            .collect(),
        timeout: m.timeout,
        expected: m.expected_status.clone(),
        verify_tls: m.verify_tls,
    };
    Some((spec, m.interval, m.tolerated_failures, m.recovery_successes))
}

fn target_text(s: &ProbeSpec) -> String {
    let host = match s.host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(a)) => format!("[{a}]"),
        _ => s.host.clone(),
    };
    match s.protocol {
        ProbeProtocol::Tcp => format!("tcp://{host}:{}", s.port),
        ProbeProtocol::Http => format!("http://{host}:{}{}", s.port, s.path),
        ProbeProtocol::Https => format!("https://{host}:{}{}", s.port, s.path),
    }
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

impl Scheduler {
    fn new(inner: Arc<Inner>, stop: Arc<AtomicBool>, clients: Clients) -> Scheduler {
        let (done_tx, done_rx) = mpsc::channel();
        Scheduler {
            inner,
            stop,
            clients,
            slots: Vec::new(),
            generation: u64::MAX,
            job_tx: None,
            done_tx,
            done_rx,
            workers: Vec::new(),
            in_flight: 0,
        }
    }

    /// The maintenance loop: turns until stopped. A panic in a turn is
    /// caught, logged and counted, and the loop goes on (with its probe
    /// slots rebuilt from the snapshot, as after a reload).
    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.turn()));
            if let Err(p) = turn {
                self.inner.maintenance_panicked(&panic_message(&*p));
                self.generation = u64::MAX;
            }
        }
        // Stop: close the job queue, interrupt probes, join the pool.
        self.job_tx = None;
        self.clients.shutdown();
        self.inner.fault_point(Fault::SlowStop);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    /// One turn: file watch, reaping, probe scheduling and results.
    fn turn(&mut self) {
        self.inner.fault_point(Fault::MaintenancePanic);
        self.inner.watch_tick();
        self.inner.reap();
        let generation = self.inner.generation();
        if generation != self.generation {
            self.rebuild(generation);
        }
        let now = Instant::now();
        self.dispatch(now);
        let wait = self
            .slots
            .iter()
            .filter(|s| !s.in_flight)
            .map(|s| s.next_due.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_millis(100))
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        match self.done_rx.recv_timeout(wait) {
            Ok(d) => {
                self.finish(d);
                while let Ok(d) = self.done_rx.try_recv() {
                    self.finish(d);
                }
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
    }

    /// (Re)builds the slot list from the current snapshot, keeping the state
    /// of endpoints whose identity and probe settings are unchanged.
    fn rebuild(&mut self, generation: u64) {
        let snap = self.inner.snapshot();
        let mut old: HashMap<(String, String), Slot> =
            self.slots.drain(..).map(|s| (s.key.clone(), s)).collect();
        let total = (0..snap.endpoints.len() as u32)
            .filter(|id| probe_spec(&snap, *id).is_some())
            .count()
            .max(1);
        let mut rank = 0usize;
        let now = Instant::now();
        let mut slots = Vec::new();
        for (id, e) in snap.endpoints.iter().enumerate() {
            let id = id as u32;
            let Some((spec, interval, tolerated, recovery)) = probe_spec(&snap, id) else {
                continue;
            };
            let p = &snap.profiles[e.profile as usize];
            let key = (p.fqdn.to_string(), e.name.to_string());
            let offset = interval.mul_f64(rank as f64 / total as f64);
            rank += 1;
            match old.remove(&key) {
                Some(mut s)
                    if s.spec == spec
                        && s.interval == interval
                        && s.tolerated == tolerated
                        && s.recovery == recovery =>
                {
                    s.id = id;
                    s.offset = offset;
                    slots.push(s);
                }
                prev => {
                    let busy = prev.as_ref().is_some_and(|s| s.in_flight);
                    slots.push(Slot {
                        key,
                        id,
                        spec,
                        interval,
                        tolerated,
                        recovery,
                        offset,
                        base: now,
                        next_due: now,
                        in_flight: busy,
                        fails: 0,
                        succs: 0,
                        status: MonitorStatus::CheckingEndpoint,
                        probed: false,
                    });
                }
            }
        }
        // Publish the monitor's view into the new snapshot.
        {
            let _w = self.inner.writer_lock();
            let cur = self.inner.snapshot();
            for s in &slots {
                if cur.endpoints.get(s.id as usize).is_some() {
                    cur.health.set_status(s.id, s.status);
                }
            }
        }
        let workers = snap.settings.probe_workers as usize;
        if !slots.is_empty() && self.workers.is_empty() {
            self.spawn_pool(workers.min(slots.len()).max(1));
        }
        self.in_flight = slots.iter().filter(|s| s.in_flight).count();
        if let Ok(mut b) = self.inner.board.lock() {
            b.eps.retain(|k, _| slots.iter().any(|s| &s.key == k));
            for s in &slots {
                b.eps.entry(s.key.clone()).or_insert_with(|| EpRecord {
                    status: s.status,
                    since: SystemTime::now(),
                    last_probe: None,
                    last_result: None,
                    fails: 0,
                    succs: 0,
                    rtt_ms: None,
                    probes: 0,
                    failures: 0,
                    target: target_text(&s.spec),
                });
                if let Some(r) = b.eps.get_mut(&s.key) {
                    r.target = target_text(&s.spec);
                }
            }
        }
        self.slots = slots;
        self.generation = generation;
        self.update_ready();
    }

    fn spawn_pool(&mut self, n: usize) {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for i in 0..n {
            let rx = job_rx.clone();
            let tx = self.done_tx.clone();
            let stop = self.stop.clone();
            let clients = self.clients.clone();
            let h = std::thread::Builder::new()
                .name(format!("tm-probe-{i}"))
                .spawn(move || {
                    loop {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let job = {
                            let Ok(rx) = rx.lock() else { return };
                            rx.recv_timeout(Duration::from_millis(100))
                        };
                        match job {
                            Ok(job) => {
                                let result =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        probe::run(&job.spec, &clients, &stop)
                                    }))
                                    .unwrap_or_else(|_| {
                                        ProbeResult {
                                            ok: false,
                                            detail: "internal error in probe".into(),
                                            rtt: Duration::ZERO,
                                        }
                                    });
                                if tx
                                    .send(Done {
                                        slot: job.slot,
                                        generation: job.generation,
                                        key: job.key,
                                        result,
                                    })
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                });
            match h {
                Ok(h) => self.workers.push(h),
                Err(e) => self.inner.log(
                    LogLevel::Error,
                    &format!("cannot start a probe thread: {e}"),
                ),
            }
        }
        self.job_tx = Some(job_tx);
    }

    fn dispatch(&mut self, now: Instant) {
        let cap = self.workers.len();
        if cap == 0 {
            return;
        }
        let snap = self.inner.snapshot();
        let Some(tx) = self.job_tx.clone() else {
            return;
        };
        // Most overdue first.
        let mut due: Vec<usize> = (0..self.slots.len())
            .filter(|i| !self.slots[*i].in_flight && self.slots[*i].next_due <= now)
            .collect();
        due.sort_by_key(|i| self.slots[*i].next_due);
        for i in due {
            if self.in_flight >= cap {
                break;
            }
            let s = &mut self.slots[i];
            if !probed(&snap, s.id) {
                // Not probed now (disabled); look again in a while.
                s.next_due = now + s.interval.min(Duration::from_secs(1));
                continue;
            }
            if tx
                .send(Job {
                    slot: i,
                    generation: self.generation,
                    key: s.key.clone(),
                    spec: s.spec.clone(),
                })
                .is_ok()
            {
                s.in_flight = true;
                self.in_flight += 1;
                if let Ok(mut b) = self.inner.board.lock() {
                    b.probes_sent += 1;
                    if let Some(r) = b.eps.get_mut(&s.key) {
                        r.probes += 1;
                    }
                }
            }
        }
    }

    fn finish(&mut self, d: Done) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if d.generation != self.generation {
            // A result from before a reload: the probe settings may have
            // changed, so it only frees the slot.
            if let Some(s) = self.slots.iter_mut().find(|s| s.key == d.key) {
                s.in_flight = false;
            }
            return;
        }
        let Some(s) = self.slots.get_mut(d.slot) else {
            return;
        };
        s.in_flight = false;
        let now = Instant::now();
        // Next probe: keep the endpoint's phase in the interval.
        let mut next = if s.probed {
            s.next_due + s.interval
        } else {
            s.base + s.offset + s.interval
        };
        while next <= now {
            next += s.interval;
        }
        s.next_due = next;
        s.probed = true;
        let before = s.status;
        if d.result.ok {
            s.fails = 0;
            s.succs = s.succs.saturating_add(1);
            if before != MonitorStatus::Degraded || s.succs >= s.recovery {
                s.status = MonitorStatus::Online;
            }
        } else {
            s.succs = 0;
            s.fails = s.fails.saturating_add(1);
            if s.fails > s.tolerated {
                s.status = MonitorStatus::Degraded;
            }
        }
        let changed = s.status != before;
        let (key, id, status, fails, succs) = (s.key.clone(), s.id, s.status, s.fails, s.succs);
        if changed {
            let _w = self.inner.writer_lock();
            let cur = self.inner.snapshot();
            if self.inner.generation() == self.generation {
                cur.health.set_status(id, status);
            }
        }
        if let Ok(mut b) = self.inner.board.lock() {
            if !d.result.ok {
                b.probes_failed += 1;
            }
            if changed {
                b.state_changes += 1;
            }
            if let Some(r) = b.eps.get_mut(&key) {
                if changed || r.last_probe.is_none() {
                    r.since = SystemTime::now();
                }
                r.status = status;
                r.last_probe = Some(SystemTime::now());
                r.last_result = Some(d.result.detail.clone());
                r.fails = fails;
                r.succs = succs;
                r.rtt_ms = Some(d.result.rtt.as_secs_f64() * 1000.0);
                if !d.result.ok {
                    r.failures += 1;
                }
            }
        }
        if changed {
            self.inner.log(
                if status == MonitorStatus::Degraded {
                    LogLevel::Warn
                } else {
                    LogLevel::Info
                },
                &format!(
                    "endpoint {}/{} is {} ({})",
                    key.0,
                    key.1,
                    status.as_str(),
                    d.result.detail
                ),
            );
        }
        self.update_ready();
    }

    fn update_ready(&self) {
        let snap = self.inner.snapshot();
        let ready = self.slots.iter().all(|s| s.probed || !probed(&snap, s.id));
        if let Ok(mut b) = self.inner.board.lock() {
            b.ready = ready;
        }
    }
}
