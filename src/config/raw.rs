//! The raw model: the TOML file as serde reads it (`deny_unknown_fields`),
//! before any rule is checked, and [`parse`], which produces it.

use super::Origin;
use super::error::{ConfigError, line_col, locate, parse_path};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[engine]`: process-wide knobs of one engine.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEngine {
    /// How often the config and its data files are checked for change; default `"2s"`, `"0s"` = never.
    pub watch_interval: Option<String>,
    /// Most probes in flight at once; default 16, 1 ..= 1024.
    pub probe_workers: Option<i64>,
    /// MaxMind-format database: address → country, continent, location.
    pub geoip_db: Option<String>,
    /// Latency table CSV (docs/ROUTING.md, "Latency and location").
    pub latency_table: Option<String>,
    /// The admin-state file (docs/OPERATIONS.md, "The admin-state file").
    pub admin_state: Option<String>,
    /// Address (`IP:port`) of the control listener (metrics, status, page); off by default.
    pub control: Option<String>,
    /// Allows a `control` address that is not loopback.
    pub control_public: Option<bool>,
}

/// `[fleet]`: health verdicts shared with other servers through etcd
/// (docs/FLEET.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    /// etcd client URLs (`http://127.0.0.1:2379`, `https://…`); required.
    pub etcd: Option<Vec<String>>,
    /// This server's unique name in the fleet (also the EDNS NSID); default the host name.
    pub node: Option<String>,
    /// Key prefix in etcd; default `"/trafficmgr/"`.
    pub prefix: Option<String>,
    /// Nodes that probe each endpoint (k); 0 = every node; default 3.
    pub probers_per_endpoint: Option<i64>,
    /// The rule that turns verdicts into a state; default `"majority"`.
    pub healthy_when: Option<RawHealthyWhen>,
    /// Lease TTL of this node's verdicts; default 3 × the longest probe interval.
    pub lease_ttl: Option<String>,
    /// How often the shared verdicts are read; default `"500ms"`.
    pub poll_interval: Option<String>,
    /// Deadline of every etcd request; default `"1s"`.
    pub timeout: Option<String>,
    /// etcd user (authentication through `/v3/auth/authenticate`).
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// A file holding the user's password (first line).
    pub password_file: Option<String>,
    /// PEM file of the CA(s) that signed etcd's certificate (https).
    pub ca_file: Option<String>,
    /// PEM client certificate (chain) for etcd's client-certificate auth.
    pub cert_file: Option<String>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<String>,
    /// This node's own probe address per endpoint: `"PROFILE/ENDPOINT" = "host"`.
    #[serde(default)]
    pub probe_hosts: BTreeMap<String, String>,
}

/// `healthy_when`: `"majority"`, `"any"`, `"all"`, `{ at_least = N }` or
/// `{ fraction = F }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawHealthyWhen {
    /// `"majority"`, `"any"`, `"all"`.
    Word(String),
    /// `{ at_least = N }` or `{ fraction = F }`.
    Table(RawHealthyTable),
}

/// The table form of `healthy_when`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthyTable {
    /// At least this many nodes say online.
    pub at_least: Option<i64>,
    /// More than this fraction (0 ..< 1) of the verdicts say online.
    pub fraction: Option<f64>,
}

/// `[[region]]`: adds to or overrides the built-in regions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    /// Region name, compared without regard to case.
    pub name: String,
    /// Latitude in degrees, -90 ..= 90.
    pub lat: f64,
    /// Longitude in degrees, -180 ..= 180.
    pub lon: f64,
}

/// `[[zone]]`: a zone the engine is authoritative for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    /// The apex, e.g. `trafficmanager.example`.
    pub name: String,
    /// NS records of the apex; at least one. The first is the SOA MNAME.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// SOA RNAME (`hostmaster.example` or `hostmaster@example`); default `hostmaster.<zone>`.
    pub hostmaster: Option<String>,
    /// TTL of SOA/NS and of negative answers, seconds; default 300.
    pub ttl: Option<i64>,
}

/// `[profile.monitor]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    /// `http` (default), `https`, `tcp` or `dns`.
    pub protocol: Option<String>,
    /// Port; default 80 for http and tcp, 443 for https, 53 for dns.
    pub port: Option<i64>,
    /// Request path for http/https; default `/`.
    pub path: Option<String>,
    /// Time between probes of one endpoint; default `"30s"`, `1s ..= 1h`.
    pub interval: Option<String>,
    /// Probe deadline; default `"10s"` (capped below the interval), must be < interval.
    pub timeout: Option<String>,
    /// Consecutive failures tolerated; default 3, 0 ..= 9.
    pub tolerated_failures: Option<i64>,
    /// Accepted HTTP statuses (`"200-299"`, `"301"`); default `["200-299"]`.
    pub expected_status: Option<Vec<String>>,
    /// Extra request headers; `Host` defaults to the endpoint's name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Check TLS certificates (https); default false, as Azure.
    pub verify_tls: Option<bool>,
    /// Consecutive successes before a degraded endpoint is online again; default 1, 1 ..= 10.
    pub recovery_successes: Option<i64>,
    /// http/https: text the first 5,120 octets of the body must contain.
    pub expect_body: Option<String>,
    /// dns: the name asked (required for dns).
    pub query_name: Option<String>,
    /// dns: the record type asked; default `A`.
    pub query_type: Option<String>,
    /// dns: accepted response codes; default `["NOERROR"]`.
    pub expect_rcode: Option<Vec<String>>,
    /// dns: an answer record the response must hold (`192.0.2.1`, `www.example.com`).
    pub expect_answer: Option<String>,
    /// http/https: the response header that carries the endpoint's load
    /// (`0.73` or `73%`), for spill-over; default none.
    pub load_header: Option<String>,
}

/// `probe = { host, port, path, headers, expected_status, expect_body }` on
/// an endpoint: its own monitor settings, the profile monitor's being the
/// defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    /// Address or name probed instead of the endpoint's own.
    pub host: Option<String>,
    /// Port instead of the monitor's.
    pub port: Option<i64>,
    /// Path instead of the monitor's.
    pub path: Option<String>,
    /// Headers added to the monitor's (one of the same name replaces it).
    pub headers: Option<BTreeMap<String, String>>,
    /// Accepted HTTP statuses instead of the monitor's.
    pub expected_status: Option<Vec<String>>,
    /// Body text instead of the monitor's `expect_body`.
    pub expect_body: Option<String>,
}

/// `[[profile.endpoint]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Unique within the profile.
    pub name: String,
    /// A DNS name, answered as CNAME.
    pub target: Option<String>,
    /// Addresses, answered as A/AAAA.
    pub addresses: Option<Vec<String>>,
    /// A nested profile (its name, or its full DNS name).
    pub profile: Option<String>,
    /// Nested only: online child endpoints needed for this endpoint to be online; default 1.
    pub min_children: Option<i64>,
    /// Region name; required for performance routing.
    pub location: Option<String>,
    /// 1 ..= 1000, unique in the profile; default: position in the list (1-based).
    pub priority: Option<i64>,
    /// 0 ..= 1000; default 1. Weighted routing: 0 = standby.
    pub weight: Option<i64>,
    /// Never taken out by probes (still probed and reported); default false.
    pub always_serve: Option<bool>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Geographic routing codes: countries, continents, `WORLD`.
    pub geo: Option<Vec<String>>,
    /// Subnet routing prefixes.
    pub subnets: Option<Vec<String>>,
    /// Per-endpoint probe overrides.
    pub probe: Option<RawProbe>,
}

/// `[[profile]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// Answers at `<name>.<zone>`.
    pub name: String,
    /// May be left out when there is one zone.
    pub zone: Option<String>,
    /// performance | priority | weighted | geographic | multivalue | subnet.
    pub routing: String,
    /// Answer TTL, 0 ..= 2147483647; default 60.
    pub ttl: Option<i64>,
    /// Answer TTL while what the answer depends on is moving; default
    /// 10 (or `ttl` if lower), at most `ttl`.
    pub ttl_unstable: Option<i64>,
    /// Load at which an endpoint's clients begin to spill over (e.g. 0.8).
    pub spill_start: Option<f64>,
    /// Load at which all of them have (e.g. 1.0); with `spill_start`.
    pub spill_full: Option<f64>,
    /// A disabled profile answers NXDOMAIN; default true.
    pub enabled: Option<bool>,
    /// Multivalue only, 1 ..= 8; default 3.
    pub max_answers: Option<i64>,
    /// `fail-open` (default) or `fail-closed`.
    pub all_down: Option<String>,
    /// Weighted only: `none` (default) or `client-subnet`.
    pub affinity: Option<String>,
    /// Health monitor; absent = endpoints always online.
    pub monitor: Option<RawMonitor>,
    /// The endpoints, in order.
    #[serde(default)]
    pub endpoint: Vec<RawEndpoint>,
}

/// The whole file as serde sees it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[engine]`.
    #[serde(default)]
    pub engine: RawEngine,
    /// `[fleet]`.
    pub fleet: Option<RawFleet>,
    /// `[[region]]`.
    #[serde(default)]
    pub region: Vec<RawRegion>,
    /// `[[zone]]`.
    #[serde(default)]
    pub zone: Vec<RawZone>,
    /// `[[profile]]`.
    #[serde(default)]
    pub profile: Vec<RawProfile>,
}

/// Parses TOML text into the raw model; errors carry line, column and key path.
pub fn parse(src: &str, origin: &Origin) -> Result<RawConfig, ConfigError> {
    if src.len() >= super::chunked::CHUNKED_MIN
        && let Some(raw) = super::chunked::parse(src)
    {
        return Ok(raw);
    }
    let de =
        toml::de::DeTable::parse(src).map_err(|e| toml_error(src, origin, &e, String::new()))?;
    let de = toml::de::Deserializer::from(de);
    serde_path_to_error::deserialize::<_, RawConfig>(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        toml_error(src, origin, e.inner(), path)
    })
}

/// The raw model of `src`, or `None` on any error (no location: the
/// caller that needs one parses again with [`parse`]).
pub(super) fn parse_quiet(src: &str) -> Option<RawConfig> {
    let de = toml::de::DeTable::parse(src).ok()?;
    RawConfig::deserialize(toml::de::Deserializer::from(de)).ok()
}

/// As [`parse_quiet`], and `None` also when the text has a top-level
/// `profile` key at all (even an empty one).
pub(super) fn parse_quiet_without_profiles(src: &str) -> Option<RawConfig> {
    let de = toml::de::DeTable::parse(src).ok()?;
    if de
        .get_ref()
        .iter()
        .any(|(k, _)| k.get_ref().as_ref() == "profile")
    {
        return None;
    }
    RawConfig::deserialize(toml::de::Deserializer::from(de)).ok()
}

fn toml_error(src: &str, origin: &Origin, e: &toml::de::Error, path: String) -> ConfigError {
    let offset = e
        .span()
        .map(|s| s.start)
        .or_else(|| locate(src, &parse_path(&path)));
    let (line, col) = offset.map(|o| line_col(src, o)).unwrap_or((0, 0));
    ConfigError {
        file: origin.file.clone(),
        line,
        col,
        path,
        message: e.message().trim().to_string(),
    }
}
