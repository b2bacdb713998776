//! Records precomputed when a snapshot is compiled: the RDATA in wire form
//! (encoded by hickory-proto, names uncompressed so the bytes can be copied
//! into any message) and in presentation form (for BIND's `putrr` and the
//! text API). Per query nothing is encoded, only chosen and copied.

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use std::net::IpAddr;

/// DNS type codes used here.
pub mod rtype {
    /// A
    pub(crate) const A: u16 = 1;
    /// NS
    pub(crate) const NS: u16 = 2;
    /// CNAME
    pub(crate) const CNAME: u16 = 5;
    /// SOA
    pub(crate) const SOA: u16 = 6;
    /// AAAA
    pub(crate) const AAAA: u16 = 28;
    /// OPT
    pub(crate) const OPT: u16 = 41;
    /// ANY
    pub(crate) const ANY: u16 = 255;
}

/// The mnemonic of a type code, NUL-terminated, for C callers.
pub fn type_name_c(t: u16) -> &'static [u8] {
    match t {
        rtype::A => b"A\0",
        rtype::NS => b"NS\0",
        rtype::CNAME => b"CNAME\0",
        rtype::SOA => b"SOA\0",
        rtype::AAAA => b"AAAA\0",
        _ => b"TYPE\0",
    }
}

/// [`type_name_c`] without its NUL.
pub fn type_name(t: u16) -> &'static str {
    let c = type_name_c(t);
    std::str::from_utf8(c.get(..c.len() - 1).unwrap_or_default()).unwrap_or("TYPE")
}

/// One precomputed record (the owner is implied by the section: the query
/// name in the answer section, the zone apex in the authority section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    /// Type code.
    pub rtype: u16,
    /// TTL in seconds.
    pub ttl: u32,
    /// RDATA in wire form, names uncompressed.
    pub wire: Box<[u8]>,
    /// RDATA in presentation form, names absolute (trailing dot), followed
    /// by a NUL for C callers (BIND's `putrr`): stored once, read both ways.
    text_nul: Box<str>,
}

impl Rec {
    fn new(rtype: u16, ttl: u32, mut text: String, wire: Box<[u8]>) -> Rec {
        text.push('\0');
        Rec {
            rtype,
            ttl,
            wire,
            text_nul: text.into(),
        }
    }

    /// RDATA in presentation form.
    #[inline]
    pub fn text(&self) -> &str {
        self.text_nul
            .get(..self.text_nul.len() - 1)
            .unwrap_or_default()
    }

    /// The same, NUL-terminated.
    #[inline]
    pub fn text_c(&self) -> &[u8] {
        self.text_nul.as_bytes()
    }
}

fn name(s: &str) -> Result<Name, String> {
    let mut n = Name::from_ascii(s).map_err(|e| format!("`{s}`: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
}

fn encode(rdata: &RData) -> Result<Box<[u8]>, String> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    rdata.emit(&mut enc).map_err(|e| e.to_string())?;
    Ok(buf.into_boxed_slice())
}

fn fqdn_text(s: &str) -> String {
    if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// A CNAME record.
pub fn cname(target: &str, ttl: u32) -> Result<Rec, String> {
    let wire = encode(&RData::CNAME(CNAME(name(target)?)))?;
    Ok(Rec::new(rtype::CNAME, ttl, fqdn_text(target), wire))
}

/// An A or AAAA record.
pub fn address(ip: IpAddr, ttl: u32) -> Result<Rec, String> {
    let (rtype, rdata) = match ip {
        IpAddr::V4(a) => (rtype::A, RData::A(A(a))),
        IpAddr::V6(a) => (rtype::AAAA, RData::AAAA(AAAA(a))),
    };
    Ok(Rec::new(rtype, ttl, ip.to_string(), encode(&rdata)?))
}

/// An NS record.
pub fn ns(host: &str, ttl: u32) -> Result<Rec, String> {
    let wire = encode(&RData::NS(NS(name(host)?)))?;
    Ok(Rec::new(rtype::NS, ttl, fqdn_text(host), wire))
}

/// The SOA of a zone. Timers follow Azure Traffic Manager's SOA
/// (refresh 900, retry 300, expire 2419200); MINIMUM is the zone TTL.
pub fn soa(mname: &str, rname: &str, serial: u32, ttl: u32) -> Result<Rec, String> {
    let (refresh, retry, expire) = (900, 300, 2_419_200);
    let rdata = RData::SOA(SOA::new(
        name(mname)?,
        name(rname)?,
        serial,
        refresh,
        retry,
        expire,
        ttl,
    ));
    let text = format!(
        "{} {} {serial} {refresh} {retry} {expire} {ttl}",
        fqdn_text(mname),
        fqdn_text(rname)
    );
    Ok(Rec::new(rtype::SOA, ttl, text, encode(&rdata)?))
}
