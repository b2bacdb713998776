//! `[profile.monitor]`: protocol, port, path, timing, accepted statuses
//! and headers, each as the probe will use it.

use super::{Locator, in_range, index, join, key, parse_duration, shown};
use crate::config::RawMonitor;
use crate::config::error::{ConfigError, Seg};
use crate::config::model::{DnsCheck, MonitorCfg, ProbeProtocol};
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
        None if protocol == ProbeProtocol::Dns => 53,
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
    let expect_body = match &m.expect_body {
        Some(t) => {
            let at = join(mb, &[key("expect_body")]);
            check_expect_body(protocol, t).map_err(|e| loc.error(&at, e))?;
            Some(t.clone())
        }
        None => None,
    };
    let dns = dns_check(loc, mb, m, protocol)?;
    let load_header = match &m.load_header {
        Some(h) => {
            let at = join(mb, &[key("load_header")]);
            if !matches!(protocol, ProbeProtocol::Http | ProbeProtocol::Https) {
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
        expect_body,
        dns,
        load_header,
    })
}

/// Most octets of a response body a probe reads to find `expect_body`
/// (Route 53's limit).
pub(crate) const BODY_WINDOW: usize = 5120;

/// `expect_body`: http/https only, 1 to 5,120 octets.
pub(super) fn check_expect_body(protocol: ProbeProtocol, t: &str) -> Result<(), String> {
    if !matches!(protocol, ProbeProtocol::Http | ProbeProtocol::Https) {
        return Err("expect_body applies to http and https probes only".into());
    }
    if t.is_empty() || t.len() > BODY_WINDOW {
        return Err(format!(
            "{} must be 1 to {BODY_WINDOW} octets: only the first {BODY_WINDOW} octets of the body are read",
            shown(t)
        ));
    }
    Ok(())
}

/// The DNS probe's query and accepted answers: `query_name` required with
/// `protocol = "dns"`, and none of the dns keys with another protocol.
fn dns_check(
    loc: &Locator,
    mb: &[Seg],
    m: &RawMonitor,
    protocol: ProbeProtocol,
) -> Result<Option<DnsCheck>, ConfigError> {
    if protocol != ProbeProtocol::Dns {
        let set = [
            ("query_name", m.query_name.is_some()),
            ("query_type", m.query_type.is_some()),
            ("expect_rcode", m.expect_rcode.is_some()),
            ("expect_answer", m.expect_answer.is_some()),
        ];
        if let Some((k, _)) = set.iter().find(|(_, s)| *s) {
            return Err(loc.error(
                &join(mb, &[key(k)]),
                format!("{k} applies to dns probes only (protocol = \"dns\")"),
            ));
        }
        return Ok(None);
    }
    let Some(name) = &m.query_name else {
        return Err(loc.error(
            &join(mb, &[key("protocol")]),
            "a dns probe needs `query_name`, the name it asks the endpoint",
        ));
    };
    let name = name.trim_end_matches('.');
    let name = if name.is_empty() {
        String::new()
    } else {
        super::dns_names::valid_dns_name(name)
            .map_err(|e| loc.error(&join(mb, &[key("query_name")]), e))?;
        name.to_ascii_lowercase()
    };
    let qtype = match &m.query_type {
        None => 1,
        Some(t) => {
            use std::str::FromStr;
            let rt = hickory_proto::rr::RecordType::from_str(&t.to_ascii_uppercase())
                .ok()
                .filter(|rt| !matches!(rt, hickory_proto::rr::RecordType::Unknown(_)));
            match rt {
                Some(rt) => u16::from(rt),
                None => {
                    return Err(loc.error(
                        &join(mb, &[key("query_type")]),
                        format!(
                            "{} is not a record type such as A, AAAA, CNAME, MX, NS, SOA, SRV or TXT",
                            shown(t)
                        ),
                    ));
                }
            }
        }
    };
    let default = ["NOERROR".to_string()];
    let list = m.expect_rcode.as_deref().unwrap_or(&default);
    if list.is_empty() {
        return Err(loc.error(
            &join(mb, &[key("expect_rcode")]),
            "at least one response code is needed",
        ));
    }
    let mut rcodes = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let code = rcode(r).ok_or_else(|| {
            loc.error(
                &join(mb, &[key("expect_rcode"), index(i)]),
                format!(
                    "{} is not a response code: NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH, NOTZONE or a number 0..=4095",
                    shown(r)
                ),
            )
        })?;
        rcodes.push(code);
    }
    let answer = match &m.expect_answer {
        Some(a) if a.trim().is_empty() || a.len() > 1024 => {
            return Err(loc.error(
                &join(mb, &[key("expect_answer")]),
                "expect_answer must be the text of one record's data, 1 to 1024 octets",
            ));
        }
        Some(a) => Some(a.trim().to_string()),
        None => None,
    };
    Ok(Some(DnsCheck {
        name,
        qtype,
        rcodes,
        answer,
    }))
}

/// The mnemonics of response codes 0 ..= 10 (RFC 1035, 2136).
pub(crate) const RCODE_NAMES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];

/// A response code by its mnemonic (any case) or number.
fn rcode(s: &str) -> Option<u16> {
    let s = s.trim();
    if let Some(i) = RCODE_NAMES.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Some(i as u16);
    }
    s.parse::<u16>().ok().filter(|n| *n <= 4095)
}

/// `protocol`: http (the default), https, tcp or dns, in either case.
fn protocol(loc: &Locator, mb: &[Seg], s: Option<&str>) -> Result<ProbeProtocol, ConfigError> {
    match s {
        None | Some("http") | Some("HTTP") => Ok(ProbeProtocol::Http),
        Some("https") | Some("HTTPS") => Ok(ProbeProtocol::Https),
        Some("tcp") | Some("TCP") => Ok(ProbeProtocol::Tcp),
        Some("dns") | Some("DNS") => Ok(ProbeProtocol::Dns),
        Some(o) => Err(loc.error(
            &join(mb, &[key("protocol")]),
            format!("`{o}` is not a protocol; expected http, https, tcp or dns"),
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
pub(super) fn expected_status(
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
pub(super) fn check_header(name: &str, value: &str) -> Result<(), String> {
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
