//! Warnings for probe headers that look like credentials and are sent
//! where they can be read or captured.

use super::{Locator, index, key, shown};
use crate::config::error::ConfigWarning;
use crate::config::model::{EndpointKind, ProbeProtocol, ProfileCfg};

/// Whether a probe header probably carries a credential: `Authorization`,
/// `Proxy-Authorization`, `Cookie`, or a name containing `token`, `key`,
/// `secret` or `auth` (any case).
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "cookie"
        || ["auth", "token", "key", "secret"]
            .iter()
            .any(|w| n.contains(w))
}

/// One warning per secret-looking header of a monitor that sends it where
/// it can be read or captured: over plain HTTP, or over HTTPS without
/// certificate verification (`verify_tls = false`, the default). Names the
/// profile and the endpoints probed with it.
pub(super) fn secret_header_warnings(loc: &Locator, profiles: &[ProfileCfg]) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    for (pi, prof) in profiles.iter().enumerate() {
        let Some(m) = &prof.monitor else { continue };
        let how = match (m.protocol, m.verify_tls) {
            (ProbeProtocol::Http, _) => "in clear text over HTTP",
            (ProbeProtocol::Https, false) => {
                "over HTTPS without certificate verification (verify_tls = false): anyone on the path can impersonate the endpoint and read it"
            }
            _ => continue,
        };
        let Some(names) = probed_endpoint_names(prof) else {
            continue;
        };
        for (h, _) in &m.headers {
            if !is_secret_header(h) {
                continue;
            }
            out.push(loc.error(
                &[key("profile"), index(pi), key("monitor"), key("headers"), key(h)],
                format!(
                    "header {} looks like a secret and is sent to endpoint(s) {names} of profile `{}` {how}; use https with verify_tls = true",
                    shown(h),
                    prof.fqdn
                ),
            ));
        }
    }
    out
}

/// The probed (not nested) endpoints of `prof`, the first five by name and
/// a count of the rest; None when none is probed.
fn probed_endpoint_names(prof: &ProfileCfg) -> Option<String> {
    let probed: Vec<&str> = prof
        .endpoints
        .iter()
        .filter(|e| !matches!(e.kind, EndpointKind::Nested { .. }))
        .map(|e| e.name.as_str())
        .collect();
    if probed.is_empty() {
        return None;
    }
    let mut names = probed
        .iter()
        .take(5)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if probed.len() > 5 {
        names.push_str(&format!(" and {} more", probed.len() - 5));
    }
    Some(names)
}
