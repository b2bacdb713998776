//! `[profile.monitor]`: protocol, port, path, timing, accepted statuses
//! and headers, each as the probe will use it.

use super::{Locator, in_range, index, join, key, parse_duration, shown};
use crate::config::RawMonitor;
use crate::config::error::{ConfigError, Seg};
use crate::config::model::{MonitorCfg, ProbeProtocol};
use std::time::Duration;

/// The monitor at key path `mb`, with defaults applied.
pub(super) fn monitor(
    loc: &Locator,
    mb: &[Seg],
    m: &RawMonitor,
) -> Result<MonitorCfg, ConfigError> {
    let protocol = protocol(loc, mb, m.protocol.as_deref())?;
    let port = match m.port {
        Some(n) => in_range(loc, &join(mb, &[key("port")]), n, 1, 65535)? as u16,
        None if protocol == ProbeProtocol::Https => 443,
        None => 80,
    };
    let path = m.path.clone().unwrap_or_else(|| "/".to_string());
    check_probe_path(&path).map_err(|e| loc.error(&join(mb, &[key("path")]), e))?;
    let interval = interval(loc, mb, m.interval.as_deref())?;
    let timeout = timeout(loc, mb, m, interval)?;
    let tolerated_failures = match m.tolerated_failures {
        Some(n) => in_range(loc, &join(mb, &[key("tolerated_failures")]), n, 0, 9)? as u32,
        None => 3,
    };
    let recovery_successes = match m.recovery_successes {
        Some(n) => in_range(loc, &join(mb, &[key("recovery_successes")]), n, 1, 10)? as u32,
        None => 1,
    };
    let expected_status = expected_status(loc, mb, m.expected_status.as_deref())?;
    for (name, value) in &m.headers {
        check_header(name, value)
            .map_err(|e| loc.error(&join(mb, &[key("headers"), key(name)]), e))?;
    }
    let headers = m
        .headers
        .iter()
        .map(|(a, b)| (a.clone(), b.clone()))
        .collect();
    let load_header = match &m.load_header {
        Some(h) => {
            let at = join(mb, &[key("load_header")]);
            if protocol == ProbeProtocol::Tcp {
                return Err(loc.error(&at, "load_header needs an http or https monitor"));
            }
            if ureq::http::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(loc.error(
                    &at,
                    format!(
                        "{} is not a valid header name: one or more of the letters, digits and !#$%&'*+-.^_`|~",
                        shown(h)
                    ),
                ));
            }
            Some(h.clone())
        }
        None => None,
    };
    Ok(MonitorCfg {
        protocol,
        port,
        path,
        interval,
        timeout,
        tolerated_failures,
        expected_status,
        headers,
        verify_tls: m.verify_tls.unwrap_or(false),
        recovery_successes,
        load_header,
    })
}

/// `protocol`: http (the default), https or tcp, in either case.
fn protocol(loc: &Locator, mb: &[Seg], s: Option<&str>) -> Result<ProbeProtocol, ConfigError> {
    match s {
        None | Some("http") | Some("HTTP") => Ok(ProbeProtocol::Http),
        Some("https") | Some("HTTPS") => Ok(ProbeProtocol::Https),
        Some("tcp") | Some("TCP") => Ok(ProbeProtocol::Tcp),
        Some(o) => Err(loc.error(
            &join(mb, &[key("protocol")]),
            format!("`{o}` is not a protocol; expected http, https or tcp"),
        )),
    }
}

/// `interval`: 1 s ..= 1 h, default 30 s.
fn interval(loc: &Locator, mb: &[Seg], s: Option<&str>) -> Result<Duration, ConfigError> {
    let interval = match s {
        Some(s) => parse_duration(s).map_err(|e| loc.error(&join(mb, &[key("interval")]), e))?,
        None => Duration::from_secs(30),
    };
    if interval < Duration::from_secs(1) || interval > Duration::from_secs(3600) {
        return Err(loc.error(
            &join(mb, &[key("interval")]),
            format!("{} is out of range 1s..=1h", s.unwrap_or("")),
        ));
    }
    Ok(interval)
}

/// `timeout`: more than zero and less than the interval; default 10 s,
/// capped below the interval.
fn timeout(
    loc: &Locator,
    mb: &[Seg],
    m: &RawMonitor,
    interval: Duration,
) -> Result<Duration, ConfigError> {
    let Some(s) = &m.timeout else {
        // Azure's default is 10 s; keep it below the interval.
        return Ok(Duration::from_secs(10).min(interval.mul_f64(0.9)));
    };
    let t = parse_duration(s).map_err(|e| loc.error(&join(mb, &[key("timeout")]), e))?;
    if t >= interval || t.is_zero() {
        return Err(loc.error(
            &join(mb, &[key("timeout")]),
            format!(
                "{s} must be more than 0 and less than the interval ({})",
                m.interval.as_deref().unwrap_or("30s")
            ),
        ));
    }
    Ok(t)
}

/// `expected_status`: at least one status or inclusive range in
/// 100 ..= 599; default `["200-299"]`.
fn expected_status(
    loc: &Locator,
    mb: &[Seg],
    list: Option<&[String]>,
) -> Result<Vec<(u16, u16)>, ConfigError> {
    let default = ["200-299".to_string()];
    let list = list.unwrap_or(&default);
    if list.is_empty() {
        return Err(loc.error(
            &join(mb, &[key("expected_status")]),
            "at least one status or range is needed",
        ));
    }
    let mut out = Vec::new();
    for (si, s) in list.iter().enumerate() {
        let range = status_range(s).ok_or_else(|| {
            loc.error(
                &join(mb, &[key("expected_status"), index(si)]),
                format!(
                    "`{s}` is not a status or range such as \"200\" or \"200-299\" (100..=599)"
                ),
            )
        })?;
        out.push(range);
    }
    Ok(out)
}

/// `"200"` or `"200-299"` as an inclusive range within 100 ..= 599.
fn status_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
        None => {
            let x = s.trim().parse::<u16>().ok()?;
            (x, x)
        }
    };
    if !(100..=599).contains(&a) || !(100..=599).contains(&b) || a > b {
        return None;
    }
    Some((a, b))
}

/// A probe path as the probe will send it: it must parse as the path and
/// query of a URL exactly as the HTTP client parses it (the `http` crate that
/// ureq uses), so a config that loads never fails every probe with "invalid
/// uri character".
pub(super) fn check_probe_path(path: &str) -> Result<(), String> {
    use ureq::http::uri::{PathAndQuery, Uri};
    if !path.starts_with('/') {
        return Err(format!("{} must start with `/`", shown(path)));
    }
    if path.contains('#') {
        return Err(format!(
            "{} contains `#`, which starts a fragment that is never sent; write it as %23",
            shown(path)
        ));
    }
    let bad = || {
        format!(
            "{} is not a valid URL path and query: it contains a space, a control character or another character a URL cannot carry; percent-encode it (a space is %20)",
            shown(path)
        )
    };
    path.parse::<PathAndQuery>().map_err(|_| bad())?;
    format!("http://probe.invalid{path}")
        .parse::<Uri>()
        .map_err(|_| bad())?;
    Ok(())
}

/// A probe header as the probe will send it: the name an HTTP token, the
/// value free of CR, LF, NUL and other control characters (tab allowed),
/// both as the `http` crate parses them; a `Host` value also a valid
/// `host[:port]`.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    use ureq::http::header::{HeaderName, HeaderValue};
    use ureq::http::uri::Authority;
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!(
            "{} is not a valid header name: one or more of the letters, digits and !#$%&'*+-.^_`|~ (no spaces, colons or control characters)",
            shown(name)
        ));
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "the value {} contains a line break (CR or LF), NUL or another control character; a header value is one line of text",
            shown(value)
        ));
    }
    if name.eq_ignore_ascii_case("host")
        && (value.contains('@') || value.parse::<Authority>().is_err())
    {
        return Err(format!(
            "the value {} is not a host name or address with an optional port (`www.example.com`, `www.example.com:8080`)",
            shown(value)
        ));
    }
    Ok(())
}
