//! A small synchronous client of etcd v3's JSON gateway (grpc-gateway):
//! `POST /v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`,
//! `/v3/lease/grant`, `/v3/lease/keepalive`, `/v3/lease/revoke` and
//! `/v3/auth/authenticate`, with keys and values in base64 as the gateway
//! wants them and 64-bit numbers as JSON strings.
//!
//! Why not the `etcd-client` crate: it is gRPC over tonic and needs a tokio
//! runtime, which a library loaded into named, dnsdist or pdns_server must
//! not start (threads and signal handling it does not own). The gateway is
//! part of every etcd 3.x server, is plain HTTP/1.1 + JSON, and ureq (the
//! probes' client already) speaks it from the engine's own thread; the
//! agent shares the probes' connector, so `free` interrupts a request in
//! flight (`shutdown`) and every request has a deadline.
//!
//! Every call tries the current endpoint, then each other one once; the
//! one that answered becomes current. With `user`/`password`, a token from
//! `/v3/auth/authenticate` goes in the `Authorization` header and is
//! renewed once when etcd says it is no longer valid.

use crate::config::FleetSettings;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// An etcd error or a transport failure, as text for the log and status.
pub type EtcdResult<T> = Result<T, String>;

/// The gateway client.
pub(crate) struct Etcd {
    agent: ureq::Agent,
    urls: Vec<String>,
    current: usize,
    auth: Option<(String, String)>,
    token: Option<String>,
}

/// Reads a PEM file for the TLS settings.
fn read_pem(path: &std::path::Path) -> EtcdResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The TLS settings: etcd's CA (else the platform's web roots) and a
/// client certificate.
fn tls_config(s: &FleetSettings) -> EtcdResult<ureq::tls::TlsConfig> {
    use ureq::tls::{ClientCert, PemItem, RootCerts, TlsConfig, parse_pem};
    let mut b = TlsConfig::builder();
    if let Some(ca) = &s.ca_file {
        let pem = read_pem(ca)?;
        let certs: Vec<_> = parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!("no certificate in {}", ca.display()));
        }
        b = b.root_certs(RootCerts::new_with_certs(&certs));
    }
    if let Some((cert, key)) = &s.client_cert {
        let pem = read_pem(cert)?;
        let chain: Vec<_> = parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if chain.is_empty() {
            return Err(format!("no certificate in {}", cert.display()));
        }
        let kpem = read_pem(key)?;
        let key = parse_pem(&kpem)
            .find_map(|i| match i {
                Ok(PemItem::PrivateKey(k)) => Some(k),
                _ => None,
            })
            .ok_or_else(|| format!("no private key in {}", key.display()))?;
        b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(b.build())
}

impl Etcd {
    /// A client for `s.etcd`; `stop` interrupts connects in progress.
    pub(crate) fn new(s: &FleetSettings, stop: Arc<AtomicBool>) -> EtcdResult<Etcd> {
        let tls = tls_config(s)?;
        let agent = crate::health::probe::stoppable_agent(
            tls,
            stop,
            s.timeout,
            concat!("trafficmgr/", env!("CARGO_PKG_VERSION"), " fleet"),
        );
        Ok(Etcd {
            agent,
            urls: s.etcd.clone(),
            current: 0,
            auth: s.auth.clone(),
            token: None,
        })
    }

    /// A handle that interrupts the request in flight, if any (later
    /// ones fail at once), from another thread.
    pub(crate) fn shutdown_handle(&self) -> impl Fn() + Send + Sync + 'static {
        let agent = self.agent.clone();
        move || agent.clone().shutdown()
    }

    /// One POST to one endpoint: the JSON body, or why not.
    fn post(&self, url: &str, path: &str, body: &Value) -> EtcdResult<Value> {
        let mut req = self.agent.post(format!("{url}{path}"));
        if let Some(t) = &self.token {
            req = req.header("Authorization", t);
        }
        let mut resp = req
            .content_type("application/json")
            .send(body.to_string())
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| format!("{url}: HTTP {status}, not JSON from the gateway"))?;
        if let Some(msg) = v.get("error").and_then(Value::as_str) {
            return Err(format!("etcd: {msg}"));
        }
        if let Some(msg) = v.get("message").and_then(Value::as_str)
            && status != 200
        {
            return Err(format!("etcd: {msg}"));
        }
        if status != 200 {
            return Err(format!("{url}: HTTP {status}"));
        }
        Ok(v)
    }

    /// A call on the current endpoint, then on each other one; with auth,
    /// a token first and again once when etcd refuses it.
    fn call(&mut self, path: &str, body: Value) -> EtcdResult<Value> {
        let n = self.urls.len().max(1);
        let mut last = String::from("no etcd endpoint");
        for i in 0..n {
            let at = (self.current + i) % n;
            let Some(url) = self.urls.get(at).cloned() else {
                continue;
            };
            if self.auth.is_some() && self.token.is_none() {
                match self.authenticate(&url) {
                    Ok(()) => {}
                    Err(e) => {
                        last = e;
                        continue;
                    }
                }
            }
            let mut r = self.post(&url, path, &body);
            if self.auth.is_some()
                && matches!(&r, Err(e) if e.contains("token") || e.contains("auth"))
            {
                self.token = None;
                if self.authenticate(&url).is_ok() {
                    r = self.post(&url, path, &body);
                }
            }
            match r {
                Ok(v) => {
                    self.current = at;
                    return Ok(v);
                }
                // etcd answered: another endpoint would say the same.
                Err(e) if e.starts_with("etcd:") => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn authenticate(&mut self, url: &str) -> EtcdResult<()> {
        let Some((user, password)) = &self.auth else {
            return Ok(());
        };
        let body = json!({ "name": user, "password": password });
        self.token = None;
        let v = self.post(url, "/v3/auth/authenticate", &body)?;
        let token = v
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| "etcd: authentication gave no token".to_string())?;
        self.token = Some(token.to_string());
        Ok(())
    }

    /// A new lease of `ttl` seconds: its id.
    pub(crate) fn grant(&mut self, ttl: u64) -> EtcdResult<i64> {
        let v = self.call("/v3/lease/grant", json!({ "TTL": ttl.to_string() }))?;
        num(v.get("ID")).ok_or_else(|| "etcd: lease grant gave no ID".into())
    }

    /// Refreshes a lease: its TTL, 0 when it is gone (expired or revoked).
    pub(crate) fn keepalive(&mut self, id: i64) -> EtcdResult<i64> {
        let v = self.call("/v3/lease/keepalive", json!({ "ID": id.to_string() }))?;
        Ok(num(v.get("result").and_then(|r| r.get("TTL"))).unwrap_or(0))
    }

    /// Ends a lease and deletes its keys.
    pub(crate) fn revoke(&mut self, id: i64) -> EtcdResult<()> {
        self.call("/v3/lease/revoke", json!({ "ID": id.to_string() }))
            .map(|_| ())
    }

    /// Writes `key` = `value` under lease `lease`.
    pub(crate) fn put(&mut self, key: &str, value: &str, lease: i64) -> EtcdResult<()> {
        let body = json!({
            "key": b64(key.as_bytes()),
            "value": b64(value.as_bytes()),
            "lease": lease.to_string(),
        });
        self.call("/v3/kv/put", body).map(|_| ())
    }

    /// Writes and deletes in one request (a transaction without
    /// conditions): one round trip for a round's changes rather than one
    /// per key. At most [`TXN_OPS`] of them (etcd's `--max-txn-ops`
    /// default is 128).
    pub(crate) fn write(&mut self, ops: &[Op]) -> EtcdResult<()> {
        let success: Vec<Value> = ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value, lease } => json!({ "requestPut": {
                    "key": b64(key.as_bytes()),
                    "value": b64(value.as_bytes()),
                    "lease": lease.to_string(),
                }}),
                Op::Delete { key } => json!({ "requestDeleteRange": {
                    "key": b64(key.as_bytes()),
                }}),
            })
            .collect();
        self.call("/v3/kv/txn", json!({ "success": success }))
            .map(|_| ())
    }

    /// Every key under `prefix` with its value, and the store's revision.
    pub(crate) fn range_prefix(
        &mut self,
        prefix: &str,
    ) -> EtcdResult<(i64, Vec<(String, String)>)> {
        let body = json!({
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix.as_bytes())),
        });
        let v = self.call("/v3/kv/range", body)?;
        let rev = num(v.get("header").and_then(|h| h.get("revision"))).unwrap_or(0);
        let mut out = Vec::new();
        if let Some(kvs) = v.get("kvs").and_then(Value::as_array) {
            for kv in kvs {
                let k = kv.get("key").and_then(Value::as_str).and_then(unb64);
                let val = kv
                    .get("value")
                    .and_then(Value::as_str)
                    .map_or(Some(Vec::new()), unb64);
                if let (Some(k), Some(val)) = (k, val)
                    && let (Ok(k), Ok(val)) = (String::from_utf8(k), String::from_utf8(val))
                {
                    out.push((k, val));
                }
            }
        }
        Ok((rev, out))
    }
}

/// Most operations in one [`Etcd::write`].
pub(crate) const TXN_OPS: usize = 64;

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// `key` = `value` under lease `lease`.
    Put {
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// Lease id.
        lease: i64,
    },
    /// Deletes `key`.
    Delete {
        /// Key.
        key: String,
    },
}

/// An int64 as the gateway writes it (a string) or a plain number.
fn num(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The end of the range of keys that start with `p`: `p` with its last
/// byte below 0xff incremented (etcd's `clientv3.GetPrefixRangeEnd`).
fn prefix_end(p: &[u8]) -> Vec<u8> {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what the gateway reads and writes).
pub(crate) fn b64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(B64.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` when malformed.
pub(crate) fn unb64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_the_gateway() {
        assert_eq!(b64(b"/tm/a"), "L3RtL2E=");
        assert_eq!(b64(b"online"), "b25saW5l");
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"ab"), "YWI=");
        for n in 0..40u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(unb64(&b64(&v)).as_deref(), Some(&v[..]));
        }
        assert_eq!(unb64("L3RtL2E="), Some(b"/tm/a".to_vec()));
        assert_eq!(unb64("*"), None);
    }

    #[test]
    fn the_range_end_of_a_prefix() {
        assert_eq!(prefix_end(b"/tm/"), b"/tm0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
