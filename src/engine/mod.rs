//! The engine: a snapshot cell (`ArcSwap`), the writer lock that serialises
//! reloads and health writes, the host's log hook, and the engine's own
//! maintenance loop (file watch, reaping, probes). Queries load the
//! snapshot once and never see the writer lock.
//!
//! - [`reload`]: the one path by which a new configuration becomes current;
//! - [`watch`]: the file watch that triggers it;
//! - [`maintenance`]: the engine's thread, which runs the watch, reaps old
//!   snapshots and drives the probe service (`health::service`);
//! - [`admin`]: the operator's overrides (API calls and the admin-state
//!   file), kept apart and combined into the health words;
//! - [`status`]: the status report, which reads all of the above;
//! - [`metrics`]: answer counts across reloads and the Prometheus page;
//! - [`control`]: the control listener (`tm-ctl`) that serves them.

mod admin;
mod control;
mod fleet;
mod maintenance;
mod metrics;
mod reload;
mod status;
mod watch;

pub use reload::ReloadStats;

use crate::answer::Answer;
use crate::answer::wire::{self, Parsed, WireError};
use crate::config::ConfigError;
use crate::health::service::{Board, Prober};
use crate::health::{AdminState, MonitorStatus};
pub use crate::log::{LogFn, LogLevel};
use crate::query::{self, NameBuf, NameError};
use crate::routing::Client;
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use maintenance::{Maintenance, MaintenanceStats};
use parking_lot::Mutex;
use reload::build;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use watch::WatchState;

/// One query through the Rust API.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Query name in presentation form; case and trailing dot do not matter.
    pub name: &'a [u8],
    /// Numeric query type (1 = A, 28 = AAAA, 255 = ANY, …).
    pub qtype: u16,
    /// The address the query came from.
    pub client: Option<IpAddr>,
    /// EDNS Client Subnet (address, source prefix length), if the query carried one.
    pub ecs: Option<(IpAddr, u8)>,
}

/// Why a query could not be looked up at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// The query name is malformed.
    Name(NameError),
    /// The ECS source prefix is longer than its address family allows
    /// (over 32 for IPv4, over 128 for IPv6).
    BadEcsPrefix,
}

impl From<NameError> for QueryError {
    fn from(e: NameError) -> Self {
        QueryError::Name(e)
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Name(e) => write!(f, "bad query name: {e:?}"),
            QueryError::BadEcsPrefix => f.write_str("ECS source prefix too long for its family"),
        }
    }
}

impl std::error::Error for QueryError {}

/// Where the engine's configuration comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    File(PathBuf),
    Text(String, Option<PathBuf>),
}

/// What the engine shares with its maintenance thread.
pub(crate) struct Inner {
    cell: ArcSwap<Snapshot>,
    writer: Mutex<Source>,
    log: Option<LogFn>,
    /// Bumped after every swap (Release), read by the maintenance loop (Acquire).
    generation: AtomicU64,
    /// The probe service's report.
    board: Arc<std::sync::Mutex<Board>>,
    /// The maintenance loop's own report.
    maintenance: std::sync::Mutex<MaintenanceStats>,
    /// Reload counters and the last error.
    pub(crate) reloads: std::sync::Mutex<ReloadStats>,
    /// Retired snapshots, dropped by the maintenance thread once no reader holds them.
    graveyard: std::sync::Mutex<Vec<Arc<Snapshot>>>,
    /// What the file watch last saw.
    watch: std::sync::Mutex<WatchState>,
    /// The admin layers (API overrides, the admin-state file). Taken after
    /// `writer` when both are held.
    admin: Mutex<admin::AdminLayers>,
    /// Test-only fault injection ([`Engine::inject_fault`]): a `Fault` bit set.
    fault: std::sync::atomic::AtomicU32,
    /// Counts of reaped snapshots, by name (`metrics`).
    totals: std::sync::Mutex<metrics::Totals>,
    /// The control listener's state, for the status report.
    control: std::sync::Mutex<control::ControlState>,
    /// When the maintenance loop last finished a turn (ms since `started`).
    heartbeat: AtomicU64,
    /// When the engine started (the heartbeat's origin).
    started: Instant,
    /// The fleet's state, for the status report and the metrics.
    fleet: std::sync::Mutex<fleet::FleetReport>,
}

/// Faults a test can inject into an engine's own threads, to show that the
/// engine survives them. Each fires once.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Fault {
    /// The next turn of the maintenance loop panics.
    MaintenancePanic = 1,
    /// The next reload panics while building the snapshot.
    ReloadPanic = 2,
    /// Stopping the engine's threads takes two extra seconds (as when a
    /// probe is stuck where it cannot be interrupted).
    SlowStop = 4,
}

/// The text of a caught panic.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

impl Inner {
    /// Fires `f` if a test armed it (once): panics, or sleeps for `SlowStop`.
    pub(crate) fn fault_point(&self, f: Fault) {
        let bit = f as u32;
        if self.fault.load(Ordering::Relaxed) & bit == 0 {
            return;
        }
        if self.fault.fetch_and(!bit, Ordering::AcqRel) & bit == 0 {
            return;
        }
        match f {
            Fault::SlowStop => std::thread::sleep(Duration::from_secs(2)),
            _ => panic!("injected fault: {f:?}"),
        }
    }

    pub(crate) fn log(&self, level: LogLevel, msg: &str) {
        if let Some(f) = &self.log {
            f(level, msg);
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.cell.load_full()
    }

    pub(crate) fn generation(&self) -> u64 {
        // Acquire pairs with the Release in `Engine::reload`.
        self.generation.load(Ordering::Acquire)
    }

    /// Writes one endpoint's health word in the current snapshot, found by
    /// name, under the writer lock: the one way every writer (admin and
    /// monitor calls, the probe service) changes health without a reload.
    pub(crate) fn write_health(
        &self,
        profile: &str,
        endpoint: &str,
        write: impl FnOnce(&crate::health::HealthTable, u32),
    ) -> Result<(), String> {
        let _w = self.writer.lock();
        let snap = self.cell.load();
        let id = snap
            .find_endpoint(profile, endpoint)
            .ok_or_else(|| format!("no endpoint `{endpoint}` in profile `{profile}`"))?;
        write(&snap.health, id);
        Ok(())
    }

    /// The status report as JSON.
    pub(crate) fn status_json(&self) -> String {
        let counts = self.counts();
        let snap = self.cell.load_full();
        let reloads = self.reload_stats();
        let maintenance = self.maintenance_stats();
        let admin = self.admin_report();
        let control = self
            .control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let fleet = crate::fleet::lock(&self.fleet).clone();
        let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        status::render(
            &snap,
            &board,
            &reloads,
            &maintenance,
            &admin,
            &counts,
            &control,
            &fleet,
        )
    }

    /// Why `/healthz` says 503: the maintenance loop has not finished a
    /// turn for [`STALL`] (it runs the watch, the probes and the reaping),
    /// or probes cannot run. `None` = healthy (a snapshot always serves).
    pub(crate) fn health_problem(&self) -> Option<String> {
        let beat = Duration::from_millis(self.heartbeat.load(Ordering::Relaxed));
        let since = self.started.elapsed().saturating_sub(beat);
        if since > STALL {
            return Some(format!(
                "the maintenance loop has not finished a turn for {} s",
                since.as_secs()
            ));
        }
        self.maintenance_stats()
            .error
            .map(|e| format!("maintenance: {e}"))
    }

    /// Called by the maintenance loop after each turn.
    pub(crate) fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.heartbeat.store(ms, Ordering::Relaxed);
    }
}

/// How long the maintenance loop may go without finishing a turn before
/// `/healthz` fails (a reload of a big latency table takes about a second).
const STALL: Duration = Duration::from_secs(30);

/// One traffic-manager engine. `Sync`: share it by reference among threads.
/// Dropping it stops and joins its threads (the maintenance loop and the
/// probe pool).
pub struct Engine {
    inner: Arc<Inner>,
    maintenance: Option<Maintenance>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut m) = self.maintenance.take() {
            m.stop();
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// Builds the snapshot of a config file exactly as [`Engine::from_file`]
/// and every reload do (the one build path), starting no thread:
/// `trafficmgr check` and `explain`.
pub(crate) fn build_file(path: &Path) -> Result<Snapshot, ConfigError> {
    build(&Source::File(path.to_path_buf()), None)
}

/// Clears the host bits of `addr` past `prefix`.
#[inline]
pub(crate) fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let p = u32::from(prefix.min(32));
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let p = u32::from(prefix.min(128));
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The client routing uses: the ECS subnet when it carries bits, else the
/// peer. Every path (Rust, C, DLZ, wire, adapters) goes through here, so this
/// is where an ECS prefix is checked against its family.
#[inline]
pub(crate) fn routing_client(
    peer: Option<IpAddr>,
    ecs: Option<(IpAddr, u8)>,
) -> Result<Client, QueryError> {
    Ok(match ecs {
        Some((a, p)) if p > 0 => {
            let max = if a.is_ipv4() { 32 } else { 128 };
            if p > max {
                return Err(QueryError::BadEcsPrefix);
            }
            Client {
                addr: Some(mask(a, p)),
                source_prefix: p,
            }
        }
        _ => Client {
            addr: peer,
            source_prefix: match peer {
                Some(IpAddr::V4(_)) => 32,
                Some(IpAddr::V6(_)) => 128,
                None => 0,
            },
        },
    })
}

impl Engine {
    /// Creates an engine from a config file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Engine, ConfigError> {
        Self::new(Source::File(path.as_ref().to_path_buf()), None)
    }

    /// Creates an engine from config text; relative data paths are taken from `base_dir` (default `.`).
    pub fn from_toml(text: &str, base_dir: Option<&Path>) -> Result<Engine, ConfigError> {
        Self::new(
            Source::Text(text.to_string(), base_dir.map(Path::to_path_buf)),
            None,
        )
    }

    /// Creates an engine from a file with a log hook.
    pub fn from_file_with_log(
        path: impl AsRef<Path>,
        log: Option<LogFn>,
    ) -> Result<Engine, ConfigError> {
        Self::new(Source::File(path.as_ref().to_path_buf()), log)
    }

    /// Creates an engine from text with a log hook.
    pub fn from_toml_with_log(
        text: &str,
        base_dir: Option<&Path>,
        log: Option<LogFn>,
    ) -> Result<Engine, ConfigError> {
        Self::new(
            Source::Text(text.to_string(), base_dir.map(Path::to_path_buf)),
            log,
        )
    }

    fn new(source: Source, log: Option<LogFn>) -> Result<Engine, ConfigError> {
        let snap = build(&source, None)?;
        let prober = Prober::new();
        let inner = Arc::new(Inner {
            cell: ArcSwap::from_pointee(snap),
            writer: Mutex::new(source),
            log,
            generation: AtomicU64::new(0),
            board: prober.board(),
            maintenance: std::sync::Mutex::new(MaintenanceStats::default()),
            reloads: std::sync::Mutex::new(ReloadStats::default()),
            graveyard: std::sync::Mutex::new(Vec::new()),
            watch: std::sync::Mutex::new(WatchState::default()),
            admin: Mutex::new(admin::AdminLayers::default()),
            fault: std::sync::atomic::AtomicU32::new(0),
            totals: std::sync::Mutex::new(metrics::Totals::default()),
            control: std::sync::Mutex::new(control::ControlState::default()),
            heartbeat: AtomicU64::new(0),
            started: Instant::now(),
            fleet: std::sync::Mutex::new(fleet::FleetReport::default()),
        });
        // The admin-state file, in the first snapshot before any query.
        inner.admin_start();
        if let Ok(mut w) = inner.watch.lock() {
            let source = inner.writer.lock();
            w.stamps = inner.stamps(&source);
        }
        let maintenance = match Maintenance::start(inner.clone(), prober) {
            Ok(m) => Some(m),
            Err(err) => {
                return Err(ConfigError::general(format!(
                    "cannot start the maintenance thread: {err}"
                )));
            }
        };
        let e = Engine { inner, maintenance };
        {
            let s = e.inner.cell.load();
            e.log(
                LogLevel::Info,
                &format!(
                    "trafficmgr {}: loaded {} zone(s), {} profile(s), {} endpoint(s)",
                    env!("CARGO_PKG_VERSION"),
                    s.zones.len(),
                    s.profiles.len(),
                    s.endpoints.len()
                ),
            );
            s.warnings().for_each(|w| e.log(LogLevel::Warn, w));
        }
        Ok(e)
    }

    pub(crate) fn log(&self, level: LogLevel, msg: &str) {
        self.inner.log(level, msg);
    }

    /// Answers one query; `f` sees the answer (borrowed from the snapshot)
    /// and the canonical query name. No allocation, no lock.
    #[inline]
    pub fn lookup<R>(
        &self,
        q: &Query<'_>,
        f: impl FnOnce(&Answer<'_>, &NameBuf) -> R,
    ) -> Result<R, QueryError> {
        let mut name = NameBuf::root();
        name.set_text(q.name)?;
        let client = routing_client(q.client, q.ecs)?;
        let snap = self.inner.cell.load();
        let mut a = Answer::not_ours();
        query::resolve(&snap, &name, q.qtype, &client, &mut a);
        Ok(f(&a, &name))
    }

    /// Answers a DNS query message into `out`; returns the reply's length.
    /// `peer` is the address the query came from; ECS in the query, when
    /// present, is used for the decision and echoed with its scope. No
    /// allocation, no lock.
    pub fn answer_message(
        &self,
        query: &[u8],
        peer: Option<IpAddr>,
        tcp: bool,
        out: &mut [u8],
    ) -> Result<usize, WireError> {
        let parsed = wire::parse(query)?;
        self.write_reply(parsed, peer, tcp, out)
    }

    /// As [`Engine::answer_message`], with the query in `buf[..query_len]`
    /// and the reply written over it (up to `buf.len()` octets). The
    /// question is kept on the stack meanwhile (at most 259 octets); the
    /// query may be as long as a TCP message (65,535 octets).
    pub fn answer_in_place(
        &self,
        buf: &mut [u8],
        query_len: usize,
        peer: Option<IpAddr>,
        tcp: bool,
    ) -> Result<usize, WireError> {
        let mut question = [0u8; wire::MAX_QUESTION];
        let parsed = {
            let query = buf.get(..query_len).ok_or(WireError::Drop)?;
            wire::parse(query)?.detach(&mut question)
        };
        self.write_reply(parsed, peer, tcp, buf)
    }

    fn write_reply(
        &self,
        parsed: Parsed<'_>,
        peer: Option<IpAddr>,
        tcp: bool,
        out: &mut [u8],
    ) -> Result<usize, WireError> {
        match parsed {
            Parsed::Error {
                id,
                opcode,
                rd,
                rcode,
                question,
            } => wire::write_error(id, opcode, rd, rcode, question, out),
            Parsed::Query(q) => {
                let snap = self.inner.cell.load();
                let mut a = Answer::not_ours();
                if q.qclass == 1 || q.qclass == 255 {
                    // The parser already refused (FORMERR) an ECS option whose
                    // prefix does not suit its family.
                    match routing_client(peer, q.ecs.map(|e| (e.ip(), e.source))) {
                        Ok(client) => query::resolve(&snap, &q.name, q.qtype, &client, &mut a),
                        Err(_) => {
                            return wire::write_error(
                                q.id,
                                q.opcode,
                                q.rd,
                                crate::answer::Rcode::FormErr,
                                q.question,
                                out,
                            );
                        }
                    }
                }
                // EDNS NSID (RFC 5001): the fleet node's name, when asked.
                let nsid = snap
                    .settings
                    .fleet
                    .as_ref()
                    .map_or(&[][..], |f| f.node.as_bytes());
                wire::write_answer_nsid(&q, &a, tcp, nsid, out)
            }
        }
    }

    /// Whether `name` (any case, trailing dot optional) is the apex of one of our zones.
    pub fn is_zone(&self, name: &str) -> bool {
        let mut n = NameBuf::root();
        if n.set_text(name.as_bytes()).is_err() || !n.is_plain() {
            return false;
        }
        let snap = self.inner.cell.load();
        matches!(
            snap.names.get(n.as_bytes()),
            Some(crate::snapshot::Node::Apex(_))
        )
    }

    /// The current snapshot (for the project's own tests; queries use
    /// their own load).
    #[doc(hidden)]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.cell.load_full()
    }

    /// Sets an endpoint's monitor status (tests, external monitors): a
    /// verdict like a probe's, which the next probe result replaces. A
    /// forced state of the admin-state file (`up`, `down`) wins over it.
    pub fn set_monitor_status(
        &self,
        profile: &str,
        endpoint: &str,
        status: MonitorStatus,
    ) -> Result<(), String> {
        self.inner
            .write_health(profile, endpoint, |h, id| h.set_status(id, status))
    }

    /// Sets an endpoint's load for spill-over: a fraction, 1.0 = full
    /// (clamped to 0 ..= 1000), or `None` to clear it (the endpoint never
    /// spills). A monitor with `load_header` replaces it with each probe's
    /// report.
    pub fn set_load(&self, profile: &str, endpoint: &str, load: Option<f64>) -> Result<(), String> {
        let milli = match load {
            Some(v) => crate::health::load_milli(v).ok_or("the load is not a number")?,
            None => crate::health::NO_LOAD,
        };
        self.inner
            .write_health(profile, endpoint, |h, id| h.set_load(id, milli))
    }

    /// Sets an operator override of an endpoint, at once and without a
    /// reload: `Enabled` serves it even if the config disables it,
    /// `Disabled` stops serving and probing it, `Drain` stops serving it but
    /// keeps probing, `None` clears this override (the admin-state file's
    /// state applies again, else the config). While set it wins over the
    /// admin-state file's admin state. Kept across reloads while the
    /// endpoint exists.
    pub fn set_admin_state(
        &self,
        profile: &str,
        endpoint: &str,
        state: AdminState,
    ) -> Result<(), String> {
        self.inner.set_api_admin(profile, endpoint, state)?;
        self.log(
            LogLevel::Info,
            &format!(
                "endpoint {profile}/{endpoint}: admin state {}",
                state.as_str()
            ),
        );
        Ok(())
    }

    /// Waits until every probed endpoint has its first probe result, or
    /// `timeout` passes. Returns whether health is known.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = self.inner.board.lock().map(|b| b.ready).unwrap_or(false)
                && self.inner.maintenance_stats().error.is_none();
            if ready {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The status report as JSON (see `docs/OPERATIONS.md`).
    pub fn status_json(&self) -> String {
        self.inner.status_json()
    }

    /// The `/metrics` page of the control listener (Prometheus text
    /// exposition; see `docs/OPERATIONS.md`), also without a listener.
    pub fn metrics_text(&self) -> String {
        self.inner.metrics_text()
    }

    /// Rebuilds the snapshot from the source (and the data files it names)
    /// and swaps it in; on error the current snapshot keeps serving, the
    /// error is logged and kept for the status report. Health carries over
    /// by endpoint identity. The same path as the file watch.
    pub fn reload(&self) -> Result<(), ConfigError> {
        self.inner.reload("requested")
    }

    /// Reload counters and the last reload error.
    pub fn reload_stats(&self) -> ReloadStats {
        self.inner.reload_stats()
    }

    /// Test-only: arms a fault in the engine's own threads (see [`Fault`]).
    #[doc(hidden)]
    pub fn inject_fault(&self, f: Fault) {
        self.inner.fault.fetch_or(f as u32, Ordering::AcqRel);
    }

    /// Panics caught (and survived) in the maintenance loop so far.
    pub fn maintenance_panics(&self) -> u64 {
        self.inner.maintenance_stats().panics
    }
}
