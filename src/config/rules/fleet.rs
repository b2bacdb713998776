//! `[fleet]`: the etcd endpoints, the node's name, k, the rule, the lease
//! and request timing, authentication and TLS files, per-node probe hosts
//! (docs/FLEET.md).

use super::{Locator, in_range, key, parse_duration, shown};
use crate::config::error::{ConfigError, Seg};
use crate::config::model::{FleetSettings, HealthyWhen, ProfileCfg};
use crate::config::{Origin, RawFleet, RawHealthyWhen};
use std::path::PathBuf;
use std::time::Duration;

fn at(k: &str) -> Vec<Seg> {
    vec![key("fleet"), key(k)]
}

/// `[fleet]` with defaults applied; relative file paths are taken from the
/// config's folder.
pub(super) fn settings(
    loc: &Locator,
    raw: &RawFleet,
    origin: &Origin,
) -> Result<FleetSettings, ConfigError> {
    let etcd = match &raw.etcd {
        Some(v) if !v.is_empty() => v,
        _ => {
            return Err(loc.error(
                &[key("fleet")],
                "`etcd` is required: the client URLs of the etcd cluster, e.g. [\"http://127.0.0.1:2379\"]",
            ));
        }
    };
    let mut urls = Vec::new();
    for u in etcd {
        let ok = (u.starts_with("http://") || u.starts_with("https://"))
            && u.split("://").nth(1).is_some_and(|rest| {
                !rest.is_empty() && !rest.contains(|c: char| c.is_whitespace() || c == '?')
            });
        if !ok {
            return Err(loc.error(
                &at("etcd"),
                format!(
                    "{} is not an http:// or https:// URL such as \"http://127.0.0.1:2379\"",
                    shown(u)
                ),
            ));
        }
        urls.push(u.trim_end_matches('/').to_string());
    }
    let node = match &raw.node {
        Some(n) => n.clone(),
        None => host_name().ok_or_else(|| {
            loc.error(
                &[key("fleet")],
                "`node` is not set and the host name cannot be read: name this server",
            )
        })?,
    };
    if node.is_empty()
        || node.len() > 63
        || !node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(loc.error(
            &at("node"),
            format!(
                "{} is not a node name: 1 to 63 letters, digits, `-`, `_` or `.`",
                shown(&node)
            ),
        ));
    }
    let mut prefix = raw
        .prefix
        .clone()
        .unwrap_or_else(|| "/trafficmgr/".to_string());
    if prefix.is_empty() || prefix.contains(char::is_control) {
        return Err(loc.error(
            &at("prefix"),
            "an empty prefix or one with control characters",
        ));
    }
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    let probers_per_endpoint = match raw.probers_per_endpoint {
        Some(n) => in_range(loc, &at("probers_per_endpoint"), n, 0, 1000)? as u32,
        None => 3,
    };
    let healthy_when = match &raw.healthy_when {
        None => HealthyWhen::Majority,
        Some(RawHealthyWhen::Word(w)) => match w.as_str() {
            "majority" => HealthyWhen::Majority,
            "any" => HealthyWhen::Any,
            "all" => HealthyWhen::All,
            _ => {
                return Err(loc.error(
                    &at("healthy_when"),
                    format!(
                        "{} is not a rule: \"majority\", \"any\", \"all\", {{ at_least = N }} or {{ fraction = 0.18 }}",
                        shown(w)
                    ),
                ));
            }
        },
        Some(RawHealthyWhen::Table(t)) => match (t.at_least, t.fraction) {
            (Some(n), None) => {
                let n = in_range(loc, &at("healthy_when"), n, 1, 1000)? as u32;
                if probers_per_endpoint != 0 && n > probers_per_endpoint {
                    return Err(loc.error(
                        &at("healthy_when"),
                        format!(
                            "at_least = {n} can never hold with probers_per_endpoint = {probers_per_endpoint}"
                        ),
                    ));
                }
                HealthyWhen::AtLeast(n)
            }
            (None, Some(f)) if (0.0..1.0).contains(&f) => HealthyWhen::Fraction(f),
            (None, Some(f)) => {
                return Err(loc.error(
                    &at("healthy_when"),
                    format!("fraction = {f} is not in 0 ..< 1 (e.g. 0.18: more than 18 %)"),
                ));
            }
            _ => {
                return Err(loc.error(
                    &at("healthy_when"),
                    "give exactly one of `at_least` and `fraction`",
                ));
            }
        },
    };
    let duration =
        |name: &str, v: &Option<String>, default: Option<Duration>, min: Duration| match v {
            None => Ok(default),
            Some(s) => {
                let d = parse_duration(s).map_err(|m| loc.error(&at(name), m))?;
                if d < min {
                    return Err(loc.error(
                        &at(name),
                        format!("{} is shorter than {} ms", shown(s), min.as_millis()),
                    ));
                }
                Ok(Some(d))
            }
        };
    let lease_ttl = duration("lease_ttl", &raw.lease_ttl, None, Duration::from_secs(2))?;
    let poll_interval = duration(
        "poll_interval",
        &raw.poll_interval,
        Some(Duration::from_millis(500)),
        Duration::from_millis(50),
    )?
    .unwrap_or(Duration::from_millis(500));
    if let Some(ttl) = lease_ttl
        && poll_interval * 3 > ttl
    {
        // The lease is refreshed from the polling rounds, and a read
        // older than the TTL is not trusted: a poll must come well within
        // it.
        return Err(loc.error(
            &at("poll_interval"),
            format!(
                "poll_interval = {} ms is more than a third of `lease_ttl` ({} ms): the lease would lapse between polls",
                poll_interval.as_millis(),
                ttl.as_millis()
            ),
        ));
    }
    let timeout = duration(
        "timeout",
        &raw.timeout,
        Some(Duration::from_secs(1)),
        Duration::from_millis(50),
    )?
    .unwrap_or(Duration::from_secs(1));
    let resolve = |s: &str| {
        let pb = PathBuf::from(s);
        if pb.is_absolute() {
            pb
        } else {
            origin.base_dir.join(pb)
        }
    };
    let password = match (&raw.password, &raw.password_file) {
        (Some(_), Some(_)) => {
            return Err(loc.error(
                &at("password_file"),
                "give `password` or `password_file`, not both",
            ));
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(f)) => {
            let path = resolve(f);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                loc.error(
                    &at("password_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Some(text.lines().next().unwrap_or_default().to_string())
        }
        (None, None) => None,
    };
    let auth = match (&raw.user, password) {
        (Some(u), Some(p)) => Some((u.clone(), p)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(loc.error(&at("user"), "a `user` needs `password` or `password_file`"));
        }
        (None, Some(_)) => {
            return Err(loc.error(&at("user"), "a password without `user`"));
        }
    };
    let client_cert = match (&raw.cert_file, &raw.key_file) {
        (Some(c), Some(k)) => Some((resolve(c), resolve(k))),
        (None, None) => None,
        _ => {
            return Err(loc.error(&at("cert_file"), "`cert_file` and `key_file` go together"));
        }
    };
    let mut probe_hosts = Vec::new();
    for (k, host) in &raw.probe_hosts {
        let Some((p, e)) = k.rsplit_once('/') else {
            return Err(loc.error(
                &[key("fleet"), key("probe_hosts"), key(k)],
                format!("{} is not `PROFILE/ENDPOINT`", shown(k)),
            ));
        };
        if host.is_empty() {
            return Err(loc.error(
                &[key("fleet"), key("probe_hosts"), key(k)],
                "an empty probe host",
            ));
        }
        let p = p.trim_end_matches('.').to_ascii_lowercase();
        probe_hosts.push(((p, e.to_string()), host.clone()));
    }
    Ok(FleetSettings {
        etcd: urls,
        node,
        prefix,
        probers_per_endpoint,
        healthy_when,
        lease_ttl,
        poll_interval,
        timeout,
        auth,
        ca_file: raw.ca_file.as_deref().map(resolve),
        client_cert,
        probe_hosts,
    })
}

/// Every `probe_hosts` key names an endpoint of the configuration.
pub(super) fn check_probe_hosts(
    loc: &Locator,
    fleet: &FleetSettings,
    profiles: &[ProfileCfg],
) -> Result<(), ConfigError> {
    for ((p, e), _) in &fleet.probe_hosts {
        let found = profiles
            .iter()
            .any(|pc| &pc.fqdn == p && pc.endpoints.iter().any(|ec| &ec.name == e));
        if !found {
            let k = format!("{p}/{e}");
            return Err(loc.error(
                &[key("fleet"), key("probe_hosts")],
                format!("no endpoint {} in the configuration", shown(&k)),
            ));
        }
    }
    Ok(())
}

/// The host name (`gethostname(2)`), up to its first dot.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(buf.get(..end)?).ok()?;
    let short = name.split('.').next().unwrap_or(name);
    (!short.is_empty()).then(|| short.to_string())
}
