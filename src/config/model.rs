//! The validated configuration model: what [`super::load_str`] returns and
//! `snapshot::compile` reads. Every value here has passed every rule of
//! docs/CONFIG.md (see `rules`), with defaults applied.

use super::error::ConfigWarning;
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[engine]` with defaults applied.
    pub engine: EngineSettings,
    /// Regions: the built-in ones, then `[[region]]` additions and overrides.
    pub regions: Vec<RegionCfg>,
    /// `[[zone]]`.
    pub zones: Vec<ZoneCfg>,
    /// `[[profile]]`, in file order.
    pub profiles: Vec<ProfileCfg>,
    /// Things that work but are probably not meant (e.g. a secret header
    /// sent without TLS verification), located like errors. The engine logs
    /// each at warn level when it loads or reloads the config.
    pub warnings: Vec<ConfigWarning>,
}

/// `[engine]` with defaults applied and paths resolved.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Default 2 s; zero = never.
    pub watch_interval: Duration,
    /// Default 16.
    pub probe_workers: u32,
    /// Absolute or base-relative path.
    pub geoip_db: Option<PathBuf>,
    /// Absolute or base-relative path.
    pub latency_table: Option<PathBuf>,
    /// The admin-state file, absolute or base-relative (it need not exist).
    pub admin_state: Option<PathBuf>,
    /// The control listener's address (`/metrics`, `/status`, `/healthz`,
    /// the status page); `None` = off (the default).
    pub control: Option<std::net::SocketAddr>,
    /// `[fleet]`: verdicts shared through etcd; `None` = a server alone.
    pub fleet: Option<FleetSettings>,
}

/// `[fleet]` with defaults applied (docs/FLEET.md).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSettings {
    /// etcd client URLs, without a trailing slash.
    pub etcd: Vec<String>,
    /// This node's name (also the EDNS NSID).
    pub node: String,
    /// Key prefix, ending in `/`.
    pub prefix: String,
    /// Nodes that probe each endpoint; 0 = every node.
    pub probers_per_endpoint: u32,
    /// The rule that turns verdicts into a state.
    pub healthy_when: HealthyWhen,
    /// Lease TTL; `None` = 3 × the longest probe interval (at least 2 s).
    pub lease_ttl: Option<Duration>,
    /// How often the shared verdicts are read.
    pub poll_interval: Duration,
    /// Deadline of every etcd request.
    pub timeout: Duration,
    /// etcd user and password.
    pub auth: Option<(String, String)>,
    /// CA file (PEM), resolved.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), resolved.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// This node's probe address per `(profile, endpoint)`.
    pub probe_hosts: Vec<((String, String), String)>,
}

/// How an endpoint's verdicts become its state (`healthy_when`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HealthyWhen {
    /// More than half of the verdicts say online.
    Majority,
    /// At least one verdict says online.
    Any,
    /// Every verdict says online.
    All,
    /// At least N verdicts say online.
    AtLeast(u32),
    /// More than this fraction of the verdicts say online.
    Fraction(f64),
}

impl HealthyWhen {
    /// Online under this rule, given `online` of `total` verdicts; `None`
    /// when there are too few verdicts to decide (none at all, or fewer
    /// than `at_least`).
    pub fn decide(self, online: usize, total: usize) -> Option<bool> {
        if total == 0 {
            return None;
        }
        Some(match self {
            HealthyWhen::Majority => online * 2 > total,
            HealthyWhen::Any => online >= 1,
            HealthyWhen::All => online == total,
            HealthyWhen::AtLeast(n) => {
                if total < n as usize {
                    return None;
                }
                online >= n as usize
            }
            HealthyWhen::Fraction(f) => (online as f64) > f * total as f64,
        })
    }

    /// The rule as the status report shows it (`majority`, `at_least 2`).
    pub fn text(self) -> String {
        match self {
            HealthyWhen::Majority => "majority".into(),
            HealthyWhen::Any => "any".into(),
            HealthyWhen::All => "all".into(),
            HealthyWhen::AtLeast(n) => format!("at_least {n}"),
            HealthyWhen::Fraction(f) => format!("fraction {f}"),
        }
    }
}

/// One region.
#[derive(Debug, Clone)]
pub struct RegionCfg {
    /// Lowercase name.
    pub name: String,
    /// Degrees.
    pub lat: f64,
    /// Degrees.
    pub lon: f64,
}

/// One zone.
#[derive(Debug, Clone)]
pub struct ZoneCfg {
    /// Lowercase, no trailing dot.
    pub name: String,
    /// Fully qualified, lowercase, no trailing dot.
    pub nameservers: Vec<String>,
    /// RNAME as a DNS name, no trailing dot.
    pub hostmaster: String,
    /// Seconds.
    pub ttl: u32,
}

/// Routing methods (docs/ROUTING.md, "Methods").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Lowest round-trip time.
    Performance,
    /// Lowest priority number.
    Priority,
    /// Random by weight.
    Weighted,
    /// By client country/continent.
    Geographic,
    /// Several addresses.
    Multivalue,
    /// By client prefix.
    Subnet,
}

impl Routing {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::Performance => "performance",
            Routing::Priority => "priority",
            Routing::Weighted => "weighted",
            Routing::Geographic => "geographic",
            Routing::Multivalue => "multivalue",
            Routing::Subnet => "subnet",
        }
    }
}

/// What happens when every enabled endpoint is degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllDown {
    /// Answer as though all enabled endpoints were online (Azure).
    FailOpen,
    /// Answer NODATA.
    FailClosed,
}

/// Probe protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeProtocol {
    /// HTTP GET.
    Http,
    /// HTTPS GET.
    Https,
    /// TCP connect.
    Tcp,
    /// A DNS query (UDP, TCP when truncated).
    Dns,
}

/// What a DNS probe asks and what it accepts (`protocol = "dns"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    /// The name asked, fully qualified, without the trailing dot.
    pub name: String,
    /// The record type asked (its number; `A` = 1).
    pub qtype: u16,
    /// Accepted response codes (`NOERROR` = 0); at least one.
    pub rcodes: Vec<u16>,
    /// An answer record that must be present: an address compared as an
    /// address, anything else compared with the record's data as text
    /// (names without regard to case or the trailing dot).
    pub answer: Option<String>,
}

/// `[profile.monitor]` with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorCfg {
    /// Protocol.
    pub protocol: ProbeProtocol,
    /// Port.
    pub port: u16,
    /// Path (http/https).
    pub path: String,
    /// Interval between probes of one endpoint.
    pub interval: Duration,
    /// Probe deadline.
    pub timeout: Duration,
    /// Consecutive failures tolerated.
    pub tolerated_failures: u32,
    /// Accepted status ranges, inclusive.
    pub expected_status: Vec<(u16, u16)>,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Verify TLS certificates.
    pub verify_tls: bool,
    /// Successes needed to come back.
    pub recovery_successes: u32,
    /// Text the first 5,120 octets of the response body must contain
    /// (http/https).
    pub expect_body: Option<String>,
    /// The query and its accepted answers (dns only).
    pub dns: Option<DnsCheck>,
    /// The response header carrying the endpoint's load (http/https).
    pub load_header: Option<String>,
}

/// An endpoint's own monitor settings (`probe = { … }`), each replacing the
/// profile monitor's; `headers` are merged by name (the endpoint's win).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeOverrides {
    /// Address or name probed instead of the endpoint's own.
    pub host: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Path (http/https).
    pub path: Option<String>,
    /// Headers added to (or replacing, by name) the monitor's.
    pub headers: Vec<(String, String)>,
    /// Accepted status ranges.
    pub expected_status: Option<Vec<(u16, u16)>>,
    /// Body text to find.
    pub expect_body: Option<String>,
}

impl ProbeOverrides {
    /// Nothing overridden.
    pub fn is_empty(&self) -> bool {
        *self == ProbeOverrides::default()
    }
}

/// A geographic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeoCode {
    /// ISO 3166-1 alpha-2, uppercase.
    Country([u8; 2]),
    /// AF AN AS EU NA OC SA.
    Continent([u8; 2]),
    /// Everything.
    World,
}

/// What an endpoint answers with.
#[derive(Debug, Clone)]
pub enum EndpointKind {
    /// CNAME to this name (lowercase, no trailing dot).
    Target(String),
    /// A/AAAA records.
    Addresses(Vec<IpAddr>),
    /// A nested profile (index into `Config::profiles`).
    Nested {
        /// Child profile index.
        profile: usize,
        /// Online child endpoints needed.
        min_children: u32,
    },
}

/// One endpoint, validated.
#[derive(Debug, Clone)]
pub struct EndpointCfg {
    /// Name, unique in the profile.
    pub name: String,
    /// Target, addresses or nested profile.
    pub kind: EndpointKind,
    /// Index into `Config::regions`.
    pub location: Option<usize>,
    /// 1 ..= 1000, unique in the profile.
    pub priority: u16,
    /// 0 ..= 1000 (weighted: 0 = standby).
    pub weight: u32,
    /// Configured state.
    pub enabled: bool,
    /// Never taken out by probes.
    pub always_serve: bool,
    /// Geographic codes.
    pub geo: Vec<GeoCode>,
    /// Subnet prefixes (host bits clear).
    pub subnets: Vec<IpNet>,
    /// The endpoint's own monitor settings.
    pub probe: ProbeOverrides,
}

/// One profile, validated.
#[derive(Debug, Clone)]
pub struct ProfileCfg {
    /// The name as written (lowercase).
    pub name: String,
    /// `<name>.<zone>`, lowercase, no trailing dot.
    pub fqdn: String,
    /// Index into `Config::zones`.
    pub zone: usize,
    /// Routing method.
    pub routing: Routing,
    /// Answer TTL.
    pub ttl: u32,
    /// Answer TTL while the answer's inputs move (≤ `ttl`).
    pub ttl_unstable: u32,
    /// Spill-over loads in thousandths: (start, full), start < full.
    pub spill: Option<(u32, u32)>,
    /// Disabled profiles answer NXDOMAIN.
    pub enabled: bool,
    /// Multivalue answer cap.
    pub max_answers: u8,
    /// All-down policy.
    pub all_down: AllDown,
    /// Weighted affinity by client subnet.
    pub affinity_subnet: bool,
    /// Monitor; None = not probed.
    pub monitor: Option<MonitorCfg>,
    /// Endpoints in file order.
    pub endpoints: Vec<EndpointCfg>,
}

/// Highest load kept, in thousandths (1000.0).
const MAX_LOAD: u32 = 1_000_000;

/// A load as a fraction (0.73; 1.0 = full) into thousandths, clamped to
/// `0 ..= 1000.0`; `None` if not a finite number.
pub fn load_milli(v: f64) -> Option<u32> {
    if !v.is_finite() {
        return None;
    }
    Some((v.clamp(0.0, f64::from(MAX_LOAD) / 1000.0) * 1000.0).round() as u32)
}
