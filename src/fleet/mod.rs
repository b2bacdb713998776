//! The fleet: health verdicts shared with the other servers of an NS set
//! through etcd v3 (docs/FLEET.md). This module is the engine's `tm-fleet`
//! thread and what it shares; the engine's maintenance loop decides what
//! to probe and what to publish from the [`View`] it keeps current.
//!
//! In etcd, under the configured prefix, each node writes under one lease
//! of its own (TTL about 3 × the probe interval, refreshed every third of
//! it), so that everything a dead node wrote vanishes with it:
//!
//! - `node/<node>`: the node is alive (the live node set);
//! - `verdict/<profile>/<endpoint>/<node>`: `online` or `degraded`, the
//!   node's own probe verdict on an endpoint it is one of the k probers of.
//!
//! The thread reads the whole prefix every `poll_interval` (one range
//! request; etcd's streaming watch would hold a response open that only a
//! shutdown could interrupt, and polling keeps the failure handling to one
//! place), writes the node's changed verdicts, and refreshes its lease.
//! Every request has a deadline (`timeout`) and is interrupted by `stop`.
//! While a request fails the view says `connected = false`, and the
//! engine falls back to probing everything itself.
//!
//! Which nodes probe an endpoint: rendezvous hashing ([`probers`]) over
//! the live node set — each node scores `hash(node, profile, endpoint)`
//! and the k highest probe it — so a node that joins or leaves moves only
//! the endpoints it gains or held.

mod etcd;

use crate::config::FleetSettings;
use crate::health::MonitorStatus;
use crate::log::LogLevel;
use etcd::{Etcd, Op, TXN_OPS};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// An endpoint's name across reloads: (profile's DNS name, endpoint name).
pub type Key = (String, String);

/// A log hook the thread can share.
pub type Log = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// What the fleet thread knows, shared with the engine.
#[derive(Debug, Clone)]
pub struct View {
    /// The last round with etcd (lease, writes, read) succeeded.
    pub connected: bool,
    /// When `connected` last changed.
    pub since: SystemTime,
    /// Why the last round failed.
    pub last_error: Option<String>,
    /// Live nodes (their `node/` keys exist), sorted; this node among them.
    pub nodes: Vec<String>,
    /// Every node's verdicts, by endpoint.
    pub verdicts: HashMap<Key, Vec<(String, MonitorStatus)>>,
    /// etcd's revision at the last read.
    pub revision: i64,
    /// When the last read of the prefix succeeded.
    pub polled_at: Option<Instant>,
    /// This node's lease, while it has one.
    pub lease: Option<i64>,
    /// The verdicts this node wants in etcd (set by the engine).
    pub mine: BTreeMap<Key, MonitorStatus>,
    /// Verdicts of this node written to etcd so far.
    pub written: usize,
    /// Reads of the prefix that succeeded.
    pub polls: u64,
    /// Rounds that failed.
    pub errors: u64,
    /// Times the node fell back to probing alone (connected → not).
    pub fallbacks: u64,
    /// Leases granted (1 + re-joins after a lost lease). A new lease
    /// clears `mine`: the engine gives its verdicts again, from fresh
    /// probes, once it has seen the new count.
    pub leases: u64,
}

impl View {
    /// Whether the view is current: the last round succeeded and the last
    /// read is less than `ttl` old. An older read may hold verdicts whose
    /// leases have expired since (the process was paused, or the thread
    /// is stuck on a slow etcd): not to be trusted.
    pub fn current(&self, ttl: Duration) -> bool {
        self.connected && self.polled_at.is_some_and(|t| t.elapsed() < ttl)
    }
}

impl Default for View {
    fn default() -> Self {
        View {
            connected: false,
            since: SystemTime::now(),
            last_error: None,
            nodes: Vec::new(),
            verdicts: HashMap::new(),
            revision: 0,
            polled_at: None,
            lease: None,
            mine: BTreeMap::new(),
            written: 0,
            polls: 0,
            errors: 0,
            fallbacks: 0,
            leases: 0,
        }
    }
}

/// Locks a mutex whatever a panicking holder left behind.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// FNV-1a, 64 bits: stable across builds and machines (nodes of one fleet
/// may run different builds; `std`'s hasher promises no such thing).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator no name holds, so ("ab","c") ≠ ("a","bc").
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finalizer spreads FNV's weak low bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The nodes that probe endpoint `key`: the `k` of `nodes` with the
/// highest rendezvous score (all of them when `k` is 0 or at least their
/// number), best first.
pub fn probers<'a>(key: &Key, nodes: &'a [String], k: u32) -> Vec<&'a str> {
    let mut scored: Vec<(u64, &str)> = nodes
        .iter()
        .map(|n| {
            (
                fnv1a(&[n.as_bytes(), key.0.as_bytes(), key.1.as_bytes()]),
                n.as_str(),
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let take = if k == 0 { scored.len() } else { k as usize };
    scored.into_iter().take(take).map(|(_, n)| n).collect()
}

/// A fresh instance id for one engine (random: std's `RandomState` is
/// seeded from the OS), written into the node key so that a second live
/// node given the same name is told apart from this one.
pub fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    format!("{:016x}", h.finish())
}

/// The instance id in a node key's value, if any.
fn instance_of(value: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(value).ok()?;
    v.get("instance")?.as_str().map(str::to_string)
}

/// The error of a node whose name another live node holds.
fn name_taken(node: &str, other: Option<&str>) -> String {
    format!(
        "node name {node} is taken by another live node (instance {}): give each node its own `node`; this one probes alone until that node's key is gone",
        other.unwrap_or("unknown")
    )
}

/// The lease TTL when `lease_ttl` is not set: 3 × the longest probe
/// interval, at least 2 s (etcd's own minimum is about 1.5 s).
pub fn default_ttl(longest_interval: Duration) -> Duration {
    (longest_interval * 3).max(Duration::from_secs(2))
}

/// The running `tm-fleet` thread; [`Fleet::stop`] (or drop) ends it.
pub struct Fleet {
    view: Arc<Mutex<View>>,
    stop: Arc<AtomicBool>,
    leave: Arc<AtomicBool>,
    agent_stop: Arc<dyn Fn() + Send + Sync>,
    thread: Option<JoinHandle<()>>,
    /// The settings it runs with (the engine restarts it when they change).
    pub settings: FleetSettings,
    /// Its lease TTL.
    pub ttl: Duration,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("node", &self.settings.node)
            .finish_non_exhaustive()
    }
}

/// How long `stop` lets the thread revoke its lease (a clean leave: the
/// others take its endpoints over at once) before interrupting it.
const LEAVE_GRACE: Duration = Duration::from_millis(200);

impl Fleet {
    /// Starts the thread. `instance` tells this engine apart from another
    /// live node that has the same name ([`instance_id`]; the same across
    /// restarts of the thread by reloads). Fails when the TLS files cannot
    /// be read or no thread can be started.
    pub fn start(
        settings: FleetSettings,
        ttl: Duration,
        instance: String,
        log: Log,
    ) -> Result<Fleet, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let leave = Arc::new(AtomicBool::new(false));
        let client = Etcd::new(&settings, stop.clone())?;
        let view = Arc::new(Mutex::new(View::default()));
        let agent_stop: Arc<dyn Fn() + Send + Sync> = Arc::new(client.shutdown_handle());
        let mut round = Rounds {
            etcd: client,
            view: view.clone(),
            settings: settings.clone(),
            ttl,
            instance,
            log,
            stop: stop.clone(),
            leave: leave.clone(),
            lease: None,
            last_keepalive: Instant::now(),
            written: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("tm-fleet".into())
            .spawn(move || round.run())
            .map_err(|e| format!("cannot start the fleet thread: {e}"))?;
        Ok(Fleet {
            view,
            stop,
            leave,
            agent_stop,
            thread: Some(thread),
            settings,
            ttl,
        })
    }

    /// The shared view.
    pub fn view(&self) -> Arc<Mutex<View>> {
        self.view.clone()
    }

    /// Asks the thread to write changed verdicts now rather than at its
    /// next round.
    pub fn wake(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }

    /// Stops the thread: it revokes its lease if etcd answers within
    /// [`LEAVE_GRACE`], else its request is interrupted; then it is joined.
    pub fn stop(&mut self) {
        let Some(t) = self.thread.take() else {
            return;
        };
        self.leave.store(true, Ordering::SeqCst);
        t.thread().unpark();
        let deadline = Instant::now() + LEAVE_GRACE;
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop.store(true, Ordering::SeqCst);
        (self.agent_stop)();
        t.thread().unpark();
        let _ = t.join();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's state.
struct Rounds {
    etcd: Etcd,
    view: Arc<Mutex<View>>,
    settings: FleetSettings,
    ttl: Duration,
    /// This engine's instance id, in its node key.
    instance: String,
    log: Log,
    stop: Arc<AtomicBool>,
    leave: Arc<AtomicBool>,
    lease: Option<i64>,
    last_keepalive: Instant,
    /// This node's verdicts as written to etcd.
    written: HashMap<Key, MonitorStatus>,
}

fn status_text(s: MonitorStatus) -> &'static str {
    match s {
        MonitorStatus::Online => "online",
        MonitorStatus::Degraded => "degraded",
        MonitorStatus::CheckingEndpoint => "checking",
    }
}

impl Rounds {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.leave.load(Ordering::SeqCst)
    }

    fn run(&mut self) {
        while !self.stopping() {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.round()))
                .unwrap_or_else(|_| Err("internal error in the fleet thread".into()));
            self.record(r);
            let until = Instant::now() + self.settings.poll_interval;
            while !self.stopping() {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                std::thread::park_timeout(until - now);
                // A wake from the engine: changed verdicts to write now.
                if !self.stopping() && self.has_changes() {
                    break;
                }
            }
        }
        if self.leave.load(Ordering::SeqCst)
            && !self.stop.load(Ordering::SeqCst)
            && let Some(id) = self.lease.take()
        {
            // A clean leave: the others see this node gone at once.
            let _ = self.etcd.revoke(id);
        }
    }

    fn has_changes(&self) -> bool {
        let v = lock(&self.view);
        v.mine.len() != self.written.len()
            || v.mine.iter().any(|(k, s)| self.written.get(k) != Some(s))
    }

    fn record(&mut self, r: Result<(), String>) {
        let mut v = lock(&self.view);
        v.lease = self.lease;
        v.written = self.written.len();
        match r {
            Ok(()) => {
                if !v.connected {
                    v.connected = true;
                    v.since = SystemTime::now();
                    v.last_error = None;
                    drop(v);
                    (self.log)(
                        LogLevel::Info,
                        &format!(
                            "fleet: node {} connected to etcd; endpoints are probed by {} node(s) each",
                            self.settings.node,
                            match self.settings.probers_per_endpoint {
                                0 => "every".to_string(),
                                k => k.to_string(),
                            }
                        ),
                    );
                } else {
                    v.last_error = None;
                }
            }
            Err(e) => {
                if self.stopping() {
                    return;
                }
                v.errors += 1;
                let was = v.connected;
                v.last_error = Some(e.clone());
                if was || v.polls == 0 && v.errors == 1 {
                    v.connected = false;
                    v.since = SystemTime::now();
                    if was {
                        v.fallbacks += 1;
                    }
                    drop(v);
                    if e.contains("is taken by another live node") {
                        (self.log)(LogLevel::Error, &format!("fleet: {e}"));
                    } else {
                        (self.log)(
                            LogLevel::Warn,
                            &format!(
                                "fleet: etcd unreachable ({e}); node {} probes every endpoint itself until it is back",
                                self.settings.node
                            ),
                        );
                    }
                }
            }
        }
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.settings.prefix)
    }

    /// The lease, refreshed when a third of its TTL has passed since the
    /// last refresh (also between the writes of a long round, so that a
    /// slow etcd does not let it lapse mid-round); a new one (and the node
    /// key) when there is none or it expired.
    fn keep_lease(&mut self) -> Result<i64, String> {
        let ttl_s = self.ttl.as_secs().max(2);
        match self.lease {
            Some(id) if self.last_keepalive.elapsed() >= self.ttl / 3 => {
                let left = self.etcd.keepalive(id)?;
                self.last_keepalive = Instant::now();
                if left > 0 {
                    Ok(id)
                } else {
                    (self.log)(
                        LogLevel::Warn,
                        &format!(
                            "fleet: node {}'s lease expired; joining again",
                            self.settings.node
                        ),
                    );
                    self.lease = None;
                    self.join(ttl_s)
                }
            }
            Some(id) => Ok(id),
            None => self.join(ttl_s),
        }
    }

    /// One round: lease, own verdicts, read of the prefix.
    fn round(&mut self) -> Result<(), String> {
        self.keep_lease()?;
        // Own verdicts: write what changed, delete what is no longer ours,
        // in transactions of up to TXN_OPS operations.
        let mine = lock(&self.view).mine.clone();
        let mut changes: Vec<(Key, Option<MonitorStatus>)> = mine
            .iter()
            .filter(|(k, s)| self.written.get(*k) != Some(*s))
            .map(|(k, s)| (k.clone(), Some(*s)))
            .collect();
        changes.extend(
            self.written
                .keys()
                .filter(|k| !mine.contains_key(*k))
                .map(|k| (k.clone(), None)),
        );
        for batch in changes.chunks(TXN_OPS) {
            // (After a new lease, the batches before this one are written
            // again next round: joining cleared `written`.)
            let id = self.keep_lease()?;
            let ops: Vec<Op> = batch
                .iter()
                .map(|(k, s)| {
                    let key = self.key(&format!("verdict/{}/{}/{}", k.0, k.1, self.settings.node));
                    match s {
                        Some(s) => Op::Put {
                            key,
                            value: status_text(*s).to_string(),
                            lease: id,
                        },
                        None => Op::Delete { key },
                    }
                })
                .collect();
            if let Err(e) = self.etcd.write(&ops) {
                if e.contains("lease not found") {
                    // etcd lost it (restarted without its data): join
                    // again at once rather than at the next keepalive.
                    self.lease = None;
                }
                return Err(e);
            }
            for (k, s) in batch {
                match s {
                    Some(s) => self.written.insert(k.clone(), *s),
                    None => self.written.remove(k),
                };
            }
        }
        // Everyone's state.
        let (rev, kvs) = self.etcd.range_prefix(&self.settings.prefix)?;
        let mut nodes = Vec::new();
        let mut verdicts: HashMap<Key, Vec<(String, MonitorStatus)>> = HashMap::new();
        let mut holder = None;
        for (k, val) in &kvs {
            // Only keys under the prefix (a confused gateway or proxy
            // could answer others).
            let Some(rest) = k.strip_prefix(self.settings.prefix.as_str()) else {
                continue;
            };
            if let Some(n) = rest.strip_prefix("node/") {
                if n == self.settings.node {
                    holder = Some(instance_of(val));
                }
                nodes.push(n.to_string());
            } else if let Some(v) = rest.strip_prefix("verdict/")
                && let Some((profile, tail)) = v.split_once('/')
                && let Some((endpoint, node)) = tail.rsplit_once('/')
            {
                let s = match val.as_str() {
                    "online" => MonitorStatus::Online,
                    "degraded" => MonitorStatus::Degraded,
                    _ => continue,
                };
                verdicts
                    .entry((profile.to_string(), endpoint.to_string()))
                    .or_default()
                    .push((node.to_string(), s));
            }
        }
        match holder {
            None => {
                // Our node key is gone (deleted by hand, etcd's data lost,
                // or the lease lapsed between keepalives): join again next
                // round.
                self.lease = None;
                return Err(format!(
                    "node {}'s key is missing from etcd",
                    self.settings.node
                ));
            }
            Some(i) if i.as_deref() != Some(self.instance.as_str()) => {
                // Another live node wrote our name after we did (both
                // joined at once): step back, and take our keys along.
                return Err(self.step_back(i.as_deref()));
            }
            Some(_) => {}
        }
        nodes.sort();
        nodes.dedup();
        // Verdicts only count from live nodes.
        for list in verdicts.values_mut() {
            list.retain(|(n, _)| nodes.binary_search(n).is_ok());
        }
        let mut v = lock(&self.view);
        v.nodes = nodes;
        v.verdicts = verdicts;
        v.revision = rev;
        v.polled_at = Some(Instant::now());
        v.polls += 1;
        Ok(())
    }

    /// Leaves the fleet because another live node holds this node's name:
    /// the lease is revoked (what was written under it goes), nothing is
    /// written until the name is free. The error to report.
    fn step_back(&mut self, other: Option<&str>) -> String {
        if let Some(id) = self.lease.take() {
            let _ = self.etcd.revoke(id);
        }
        self.written.clear();
        name_taken(&self.settings.node, other)
    }

    /// A new lease, the node key under it; the verdicts are written anew.
    /// Not while another live node holds the name.
    fn join(&mut self, ttl_s: u64) -> Result<i64, String> {
        let node_key = self.key(&format!("node/{}", self.settings.node));
        let (_, held) = self.etcd.range_prefix(&node_key)?;
        if let Some((_, val)) = held.iter().find(|(k, _)| *k == node_key) {
            let other = instance_of(val);
            if other.as_deref() != Some(self.instance.as_str()) {
                return Err(self.step_back(other.as_deref()));
            }
        }
        let id = self.etcd.grant(ttl_s)?;
        self.lease = Some(id);
        self.last_keepalive = Instant::now();
        self.written.clear();
        {
            // What the engine wanted written under the old lease may be
            // long out of date (this process was paused past the TTL):
            // nothing is written until it gives its verdicts again.
            let mut v = lock(&self.view);
            v.leases += 1;
            v.mine.clear();
        }
        let body = serde_json::json!({
            "node": self.settings.node,
            "version": env!("CARGO_PKG_VERSION"),
            "instance": self.instance,
        })
        .to_string();
        self.etcd.put(&node_key, &body, id)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Key {
        ("www.example".into(), format!("ep{i}"))
    }

    #[test]
    fn rendezvous_picks_k_and_moves_only_the_leavers_share() {
        let all: Vec<String> = (1..=5).map(|i| format!("ns{i}")).collect();
        let without: Vec<String> = all.iter().filter(|n| *n != "ns3").cloned().collect();
        let mut load: HashMap<&str, usize> = HashMap::new();
        for i in 0..1000 {
            let k = key(i);
            let before = probers(&k, &all, 2);
            assert_eq!(before.len(), 2);
            for n in &before {
                *load.entry(n).or_default() += 1;
            }
            let after = probers(&k, &without, 2);
            if !before.contains(&"ns3") {
                assert_eq!(before, after, "an endpoint ns3 did not probe moved");
            } else {
                let kept: Vec<_> = before.iter().filter(|n| **n != "ns3").collect();
                assert!(kept.iter().all(|n| after.contains(n)));
            }
        }
        // 2000 assignments over 5 nodes: each near 400.
        for (n, c) in &load {
            assert!((300..500).contains(c), "{n} probes {c} endpoints");
        }
        assert_eq!(probers(&key(1), &all, 0).len(), 5);
        assert_eq!(probers(&key(1), &all, 9).len(), 5);
    }

    #[test]
    fn the_hash_is_stable() {
        // Nodes of one fleet may run different builds: the score must not
        // change. The value is computed by an independent Python version
        // of the same definition (FNV-1a 64 with 0xff separators, then
        // splitmix64's finalizer).
        assert_eq!(
            fnv1a(&[b"ns1", b"www.example", b"east"]),
            0xbe8d_629e_6840_c0a7
        );
    }

    #[test]
    fn the_rules() {
        use crate::config::HealthyWhen as H;
        assert_eq!(H::Majority.decide(2, 3), Some(true));
        assert_eq!(H::Majority.decide(1, 2), Some(false));
        assert_eq!(H::Majority.decide(0, 0), None);
        assert_eq!(H::Any.decide(1, 3), Some(true));
        assert_eq!(H::All.decide(2, 3), Some(false));
        assert_eq!(H::AtLeast(2).decide(2, 3), Some(true));
        assert_eq!(H::AtLeast(2).decide(1, 3), Some(false));
        assert_eq!(H::AtLeast(2).decide(1, 1), None);
        assert_eq!(H::Fraction(0.18).decide(1, 5), Some(true));
        assert_eq!(H::Fraction(0.18).decide(0, 5), Some(false));
        assert_eq!(H::Fraction(0.5).decide(1, 2), Some(false));
    }
}
