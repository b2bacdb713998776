//! The probe service: a schedule of probe targets and a fixed pool of at
//! most `probe_workers` probe threads. It knows nothing of snapshots or
//! engines: its owner (the engine's maintenance loop) hands it the targets
//! of a configuration ([`Prober::retarget`]), asks it each turn to send the
//! probes that are due ([`Prober::dispatch`]) and to collect results
//! ([`Prober::collect`]), and publishes the [`Transition`]s it returns.
//! [`Prober::stop`] interrupts probes in flight (ureq's agent shutdown and
//! the stop flag every connect polls) and joins the pool.
//!
//! Schedule: every target is probed right at start; after that, the i-th
//! of n targets is probed at `start + interval * i / n + k * interval`, so
//! probes are spread evenly over the interval. A target is never probed
//! twice at once, so one that hangs holds one worker for at most its
//! timeout and never delays another's probe.
//!
//! State machine (per target; anti-flap counters live only here):
//!
//! | status           | probe passes                        | probe fails                             |
//! |------------------|-------------------------------------|-----------------------------------------|
//! | CheckingEndpoint | Online                              | Degraded after tolerated_failures + 1   |
//! | Online           | Online                              | Degraded after tolerated_failures + 1   |
//! | Degraded         | Online after recovery_successes     | Degraded                                |
//!
//! What the status report shows of each target is kept in a [`Board`]
//! that the owner reads through [`Prober::board`].

use super::MonitorStatus;
use super::probe::{self, Clients, ProbeResult, ProbeSpec};
use crate::config::ProbeProtocol;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// A target's name: (profile's DNS name, endpoint name). It survives
/// reloads, where endpoint ids do not.
pub type Key = (String, String);

/// One endpoint to probe, as the owner describes it.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// Its name across reloads.
    pub key: Key,
    /// The owner's number for it in the current configuration, handed back
    /// to the `probed` predicate of [`Prober::dispatch`].
    pub id: u32,
    /// Where and how to probe.
    pub spec: ProbeSpec,
    /// Time between probes.
    pub interval: Duration,
    /// Failures in a row tolerated before Degraded.
    pub tolerated: u32,
    /// Successes in a row a Degraded target needs to be Online again.
    pub recovery: u32,
}

/// A change of a target's status, for the owner to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Which target.
    pub key: Key,
    /// Its new status.
    pub status: MonitorStatus,
    /// The probe result behind it (`HTTP 503`, `connect timed out`), or why
    /// the status was reset.
    pub detail: String,
}

/// What the probes say beyond the status, for the owner to write into the
/// health word and load table when it changes: whether the status is
/// moving ([`super::FAILING`] / [`super::RECOVERING`]) and the load the
/// endpoint reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Which target.
    pub key: Key,
    /// [`super::FAILING`], [`super::RECOVERING`] or neither.
    pub unsteady: u32,
    /// Load in thousandths ([`super::NO_LOAD`]: not reported); `None`: the
    /// monitor reads no load (leave what the admin API set).
    pub load: Option<u32>,
}

/// What the status report shows of one target's monitoring.
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
    /// Probes sent to this target.
    pub probes: u64,
    /// Probes that failed.
    pub failures: u64,
    /// Probes that passed.
    pub successes: u64,
    /// Where the probe goes (`http://192.0.2.1:80/`).
    pub target: String,
}

/// The service's report.
#[derive(Debug, Default)]
pub struct Board {
    /// Per target.
    pub eps: HashMap<Key, EpRecord>,
    /// Probes sent.
    pub probes_sent: u64,
    /// Probes failed.
    pub probes_failed: u64,
    /// Status changes.
    pub state_changes: u64,
    /// Every target probed now has had a first result.
    pub ready: bool,
    /// Durations of finished probes, per profile (its DNS name).
    pub durations: HashMap<String, Durations>,
}

/// Upper bounds (seconds) of the probe-duration histogram's buckets.
pub(crate) const DURATION_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A histogram of probe durations: a count per bucket of
/// [`Durations::bounds`] (not cumulative; the last counts those above
/// every bound), their sum and count.
#[derive(Debug, Clone, Default)]
pub struct Durations {
    /// Per bucket, then one for above the last bound.
    pub buckets: [u64; DURATION_BOUNDS.len() + 1],
    /// Sum of the durations, seconds.
    pub sum: f64,
    /// Probes.
    pub count: u64,
}

impl Durations {
    /// The buckets' upper bounds, seconds.
    pub fn bounds() -> &'static [f64] {
        &DURATION_BOUNDS
    }

    /// Adds one probe of `secs` seconds.
    pub fn observe(&mut self, secs: f64) {
        let i = DURATION_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(DURATION_BOUNDS.len());
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.sum += secs;
        self.count += 1;
    }
}

struct Job {
    slot: usize,
    generation: u64,
    key: Key,
    spec: ProbeSpec,
}

struct Done {
    slot: usize,
    generation: u64,
    key: Key,
    result: ProbeResult,
}

struct Slot {
    target: ProbeTarget,
    offset: Duration,
    base: Instant,
    next_due: Instant,
    in_flight: bool,
    fails: u32,
    succs: u32,
    status: MonitorStatus,
    probed: bool,
    /// The last [`Signal`] values handed out: (unsteady bits, load).
    sent: (u32, Option<u32>),
}

impl Slot {
    fn same_settings(&self, t: &ProbeTarget) -> bool {
        let s = &self.target;
        s.spec == t.spec
            && s.interval == t.interval
            && s.tolerated == t.tolerated
            && s.recovery == t.recovery
    }
}

/// The running service; dropping it stops and joins every probe thread.
pub struct Prober {
    stop: Arc<AtomicBool>,
    clients: Clients,
    slots: Vec<Slot>,
    /// Bumped by every retarget: results of older jobs only free their slot.
    generation: u64,
    job_tx: Option<Sender<Job>>,
    job_rx: Option<JobRx>,
    /// Probes in flight at most: `probe_workers` of the current
    /// configuration, and no more than there are targets.
    cap: usize,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    in_flight: usize,
    board: Arc<Mutex<Board>>,
    /// Signals not yet taken by the owner.
    signals: Vec<Signal>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("targets", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Locks a mutex whatever a panicking holder left behind.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The probe's destination as the status report shows it.
pub fn target_text(s: &ProbeSpec) -> String {
    let host = match s.host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(a)) => format!("[{a}]"),
        _ => s.host.clone(),
    };
    match s.protocol {
        ProbeProtocol::Tcp => format!("tcp://{host}:{}", s.port),
        ProbeProtocol::Dns => match &s.dns {
            Some(d) => format!(
                "dns://{host}:{}/{}. {}",
                s.port,
                d.name,
                hickory_proto::rr::RecordType::from(d.qtype)
            ),
            None => format!("dns://{host}:{}", s.port),
        },
        ProbeProtocol::Http => format!("http://{host}:{}{}", s.port, s.path),
        ProbeProtocol::Https => format!("https://{host}:{}{}", s.port, s.path),
    }
}

impl Prober {
    /// A service with no targets and no threads yet: the pool starts with
    /// the first targets.
    pub fn new() -> Prober {
        let (done_tx, done_rx) = mpsc::channel();
        Prober {
            stop: Arc::new(AtomicBool::new(false)),
            clients: Clients::new(),
            slots: Vec::new(),
            generation: 0,
            job_tx: None,
            job_rx: None,
            cap: 0,
            done_tx,
            done_rx,
            workers: Vec::new(),
            in_flight: 0,
            board: Arc::new(Mutex::new(Board::default())),
            signals: Vec::new(),
        }
    }

    /// The report, shared with whoever renders the status.
    pub fn board(&self) -> Arc<Mutex<Board>> {
        self.board.clone()
    }

    /// Asks every probe in flight to stop (from any thread, through the
    /// handle [`Prober::stopper`] gives), without waiting.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: self.stop.clone(),
            clients: self.clients.clone(),
        }
    }

    /// Takes the targets of a (new) configuration. A target whose key and
    /// settings are unchanged keeps its state and schedule; a new one, or
    /// one whose settings changed, starts CheckingEndpoint and is probed at
    /// once — those are returned as transitions for the owner to publish.
    /// `workers` caps the probes in flight: the pool grows to
    /// min(`workers`, targets) threads when a configuration needs more, and
    /// never sends more than that many probes at once when it needs fewer.
    pub fn retarget(&mut self, targets: Vec<ProbeTarget>, workers: usize) -> Vec<Transition> {
        self.generation = self.generation.wrapping_add(1);
        let mut old: HashMap<Key, Slot> = self
            .slots
            .drain(..)
            .map(|s| (s.target.key.clone(), s))
            .collect();
        let total = targets.len().max(1);
        let now = Instant::now();
        let mut reset = Vec::new();
        let mut slots = Vec::with_capacity(targets.len());
        for (rank, t) in targets.into_iter().enumerate() {
            let offset = t.interval.mul_f64(rank as f64 / total as f64);
            match old.remove(&t.key) {
                Some(mut s) if s.same_settings(&t) => {
                    s.target = t;
                    s.offset = offset;
                    slots.push(s);
                }
                prev => {
                    self.signals.push(Signal {
                        key: t.key.clone(),
                        unsteady: 0,
                        load: None,
                    });
                    reset.push(Transition {
                        key: t.key.clone(),
                        status: MonitorStatus::CheckingEndpoint,
                        detail: if prev.is_some() {
                            "probe settings changed".into()
                        } else {
                            "new endpoint".into()
                        },
                    });
                    slots.push(Slot {
                        in_flight: prev.as_ref().is_some_and(|s| s.in_flight),
                        target: t,
                        offset,
                        base: now,
                        next_due: now,
                        fails: 0,
                        succs: 0,
                        status: MonitorStatus::CheckingEndpoint,
                        probed: false,
                        sent: (0, None),
                    });
                }
            }
        }
        self.cap = workers.min(slots.len());
        if self.workers.len() < self.cap {
            self.grow_pool(self.cap);
        }
        // `in_flight` counts jobs sent and not yet finished, whether their
        // target is still here or not: every finish takes one off.
        {
            let mut b = lock(&self.board);
            b.eps
                .retain(|k, _| slots.iter().any(|s| &s.target.key == k));
            b.durations
                .retain(|p, _| slots.iter().any(|s| &s.target.key.0 == p));
            for s in &slots {
                let text = target_text(&s.target.spec);
                let r = b
                    .eps
                    .entry(s.target.key.clone())
                    .or_insert_with(|| EpRecord {
                        status: s.status,
                        since: SystemTime::now(),
                        last_probe: None,
                        last_result: None,
                        fails: 0,
                        succs: 0,
                        rtt_ms: None,
                        probes: 0,
                        failures: 0,
                        successes: 0,
                        target: text.clone(),
                    });
                r.target = text;
                if r.status != s.status {
                    r.since = SystemTime::now();
                }
                r.status = s.status;
            }
        }
        self.slots = slots;
        reset
    }

    /// Starts probe threads until there are `n` (the job queue is made
    /// with the first).
    fn grow_pool(&mut self, n: usize) {
        let job_rx = match &self.job_rx {
            Some(rx) => rx.clone(),
            None => {
                let (tx, rx) = mpsc::channel::<Job>();
                let rx = Arc::new(Mutex::new(rx));
                self.job_tx = Some(tx);
                self.job_rx = Some(rx.clone());
                rx
            }
        };
        for i in self.workers.len()..n {
            let rx = job_rx.clone();
            let tx = self.done_tx.clone();
            let stop = self.stop.clone();
            let clients = self.clients.clone();
            let h = std::thread::Builder::new()
                .name(format!("tm-probe-{i}"))
                .spawn(move || worker(&rx, &tx, &stop, &clients));
            match h {
                Ok(h) => self.workers.push(h),
                Err(_) => break,
            }
        }
    }

    /// Every target: its key, the owner's id for it, and its status.
    pub fn states(&self) -> impl Iterator<Item = (&Key, u32, MonitorStatus)> {
        self.slots
            .iter()
            .map(|s| (&s.target.key, s.target.id, s.status))
    }

    /// Forgets what the probes of `key` found (status CheckingEndpoint,
    /// anti-flap counters zero) and probes it at once: for a target that
    /// was not probed for a while (in a fleet, another node probed it), so
    /// that its next status comes from fresh probes only.
    pub fn reset(&mut self, key: &Key) {
        let now = Instant::now();
        let Some(s) = self.slots.iter_mut().find(|s| &s.target.key == key) else {
            return;
        };
        s.status = MonitorStatus::CheckingEndpoint;
        s.fails = 0;
        s.succs = 0;
        s.probed = false;
        if s.sent.0 != 0 {
            s.sent.0 = 0;
            self.signals.push(Signal {
                key: key.clone(),
                unsteady: 0,
                load: None,
            });
        }
        s.base = now;
        s.offset = Duration::ZERO;
        if !s.in_flight {
            s.next_due = now;
        }
        if let Some(r) = lock(&self.board).eps.get_mut(key) {
            r.status = MonitorStatus::CheckingEndpoint;
            r.since = SystemTime::now();
            r.fails = 0;
            r.succs = 0;
        }
    }

    /// The [`Signal`]s since the last call, oldest first.
    pub fn take_signals(&mut self) -> Vec<Signal> {
        std::mem::take(&mut self.signals)
    }

    /// Probe threads running (0 if none could be started).
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Sends the probes that are due, most overdue first, as far as free
    /// workers allow. `probed(id)` says whether a target is to be probed now
    /// (an admin override may say no without a reload).
    pub fn dispatch(&mut self, now: Instant, probed: impl Fn(u32) -> bool) {
        let cap = self.cap.min(self.workers.len());
        let Some(tx) = self.job_tx.clone() else {
            return;
        };
        let mut due: Vec<usize> = (0..self.slots.len())
            .filter(|i| {
                self.slots
                    .get(*i)
                    .is_some_and(|s| !s.in_flight && s.next_due <= now)
            })
            .collect();
        due.sort_by_key(|i| self.slots.get(*i).map(|s| s.next_due));
        for i in due {
            if self.in_flight >= cap {
                break;
            }
            let Some(s) = self.slots.get_mut(i) else {
                continue;
            };
            if !probed(s.target.id) {
                // Not probed now (disabled); look again in a while.
                s.next_due = now + s.target.interval.min(Duration::from_secs(1));
                continue;
            }
            let job = Job {
                slot: i,
                generation: self.generation,
                key: s.target.key.clone(),
                spec: s.target.spec.clone(),
            };
            if tx.send(job).is_ok() {
                s.in_flight = true;
                self.in_flight += 1;
                let mut b = lock(&self.board);
                b.probes_sent += 1;
                if let Some(r) = b.eps.get_mut(&s.target.key) {
                    r.probes += 1;
                }
            }
        }
    }

    /// How long the owner may wait before the next probe falls due (at
    /// most 100 ms, so it also looks at its other duties).
    pub fn next_wait(&self, now: Instant) -> Duration {
        self.slots
            .iter()
            .filter(|s| !s.in_flight)
            .map(|s| s.next_due.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_millis(100))
            .clamp(Duration::from_millis(1), Duration::from_millis(100))
    }

    /// Waits up to `wait` for results and takes every one that has come;
    /// returns the status changes they made.
    pub fn collect(&mut self, wait: Duration, probed: impl Fn(u32) -> bool) -> Vec<Transition> {
        let mut out = Vec::new();
        match self.done_rx.recv_timeout(wait) {
            Ok(d) => {
                out.extend(self.finish(d));
                while let Ok(d) = self.done_rx.try_recv() {
                    out.extend(self.finish(d));
                }
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
        self.update_ready(probed);
        out
    }

    fn finish(&mut self, d: Done) -> Option<Transition> {
        self.in_flight = self.in_flight.saturating_sub(1);
        if d.generation != self.generation {
            // A result from before a retarget: the settings may have
            // changed, so it only frees the slot.
            if let Some(s) = self.slots.iter_mut().find(|s| s.target.key == d.key) {
                s.in_flight = false;
            }
            return None;
        }
        let s = self.slots.get_mut(d.slot)?;
        s.in_flight = false;
        let now = Instant::now();
        // Next probe: keep the target's phase in the interval.
        let interval = s.target.interval;
        let mut next = if s.probed {
            s.next_due + interval
        } else {
            s.base + s.offset + interval
        };
        while next <= now {
            next += interval;
        }
        s.next_due = next;
        s.probed = true;
        let before = s.status;
        if d.result.ok {
            s.fails = 0;
            s.succs = s.succs.saturating_add(1);
            if before != MonitorStatus::Degraded || s.succs >= s.target.recovery {
                s.status = MonitorStatus::Online;
            }
        } else {
            s.succs = 0;
            s.fails = s.fails.saturating_add(1);
            if s.fails > s.target.tolerated {
                s.status = MonitorStatus::Degraded;
            }
        }
        let changed = s.status != before;
        let (status, fails, succs) = (s.status, s.fails, s.succs);
        let unsteady = match status {
            MonitorStatus::Degraded if succs > 0 => super::RECOVERING,
            MonitorStatus::Degraded => 0,
            _ if fails > 0 => super::FAILING,
            _ => 0,
        };
        let sent = (unsteady, d.result.load.or(s.sent.1));
        if sent != s.sent {
            s.sent = sent;
            self.signals.push(Signal {
                key: d.key.clone(),
                unsteady,
                load: d.result.load,
            });
        }
        {
            let mut b = lock(&self.board);
            if !d.result.ok {
                b.probes_failed += 1;
            }
            if changed {
                b.state_changes += 1;
            }
            b.durations
                .entry(d.key.0.clone())
                .or_default()
                .observe(d.result.rtt.as_secs_f64());
            if let Some(r) = b.eps.get_mut(&d.key) {
                if changed || r.last_probe.is_none() {
                    r.since = SystemTime::now();
                }
                r.status = status;
                r.last_probe = Some(SystemTime::now());
                r.last_result = Some(d.result.detail.clone());
                r.fails = fails;
                r.succs = succs;
                r.rtt_ms = Some(d.result.rtt.as_secs_f64() * 1000.0);
                if d.result.ok {
                    r.successes += 1;
                } else {
                    r.failures += 1;
                }
            }
        }
        changed.then_some(Transition {
            key: d.key,
            status,
            detail: d.result.detail,
        })
    }

    fn update_ready(&self, probed: impl Fn(u32) -> bool) {
        let ready = self.slots.iter().all(|s| s.probed || !probed(s.target.id));
        lock(&self.board).ready = ready;
    }

    /// Stops and joins every probe thread (probes in flight are interrupted).
    pub fn stop(&mut self) {
        self.stopper().stop();
        self.job_tx = None;
        self.job_rx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Default for Prober {
    fn default() -> Self {
        Prober::new()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Interrupts a [`Prober`]'s probes from another thread.
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    clients: Clients,
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper").finish_non_exhaustive()
    }
}

impl Stopper {
    /// Sets the stop flag and shuts the HTTP clients down.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.clients.shutdown();
    }

    /// Whether a stop was asked for.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

type JobRx = Arc<Mutex<Receiver<Job>>>;

/// One probe thread: takes jobs until the queue closes or a stop is asked.
fn worker(rx: &JobRx, tx: &Sender<Done>, stop: &AtomicBool, clients: &Clients) {
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let job = lock(rx).recv_timeout(Duration::from_millis(100));
        match job {
            Ok(job) => {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    probe::run(&job.spec, clients, stop)
                }))
                .unwrap_or_else(|_| ProbeResult {
                    ok: false,
                    detail: "internal error in probe".into(),
                    rtt: Duration::ZERO,
                    load: None,
                });
                let done = Done {
                    slot: job.slot,
                    generation: job.generation,
                    key: job.key,
                    result,
                };
                if tx.send(done).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
