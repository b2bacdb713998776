//! DNS wire format: a query parser and a response writer that work in the
//! caller's buffers, with no allocation. Record data was encoded by
//! hickory-proto when the snapshot was compiled; here we only copy.
//!
//! Owner names are compression pointers: answers point at the question
//! name (offset 12), authority records at the zone's suffix of it.
//! Responses that do not fit the client's limit (512 without EDNS, else the
//! smaller of the client's EDNS payload size and ours, 1232; the buffer for
//! TCP) are sent with TC and no records, so a reply over UDP is never larger
//! than what we advertise: no amplification. `ANY` is answered minimally
//! (RFC 8482): one RRset, the first the query path found.

use super::{Answer, Rcode};
use crate::answer::records::rtype;
use crate::name::NameBuf;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Our advertised EDNS UDP payload size, and the largest UDP response we
/// write whatever the client advertises (the DNS flag day 2020 figure).
pub(crate) const EDNS_PAYLOAD: u16 = 1232;
/// Largest UDP response we write, whatever the client advertises.
pub(crate) const MAX_UDP: usize = EDNS_PAYLOAD as usize;

/// EDNS Client Subnet as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsOption {
    /// 1 = IPv4, 2 = IPv6.
    pub family: u16,
    /// Source prefix length.
    pub source: u8,
    /// Address bytes (the first `ceil(source/8)` are meaningful).
    pub addr: [u8; 16],
}

impl EcsOption {
    /// The address, zero-padded.
    pub fn ip(&self) -> IpAddr {
        if self.family == 1 {
            IpAddr::V4(Ipv4Addr::new(
                self.addr[0],
                self.addr[1],
                self.addr[2],
                self.addr[3],
            ))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.addr))
        }
    }

    fn addr_len(&self) -> usize {
        usize::from(self.source).div_ceil(8)
    }
}

/// A parsed query (borrowing the packet).
#[derive(Clone)]
pub struct WireQuery<'q> {
    /// Message id.
    pub id: u16,
    /// Opcode.
    pub opcode: u8,
    /// RD flag.
    pub rd: bool,
    /// CD flag.
    pub cd: bool,
    /// Canonical name.
    pub name: NameBuf,
    /// Wire length of the question name.
    pub qname_wire_len: usize,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// The question section bytes (name, type, class).
    pub question: &'q [u8],
    /// EDNS: present?
    pub edns: bool,
    /// EDNS version.
    pub edns_version: u8,
    /// EDNS UDP payload size.
    pub udp_size: u16,
    /// DO bit.
    pub dnssec_ok: bool,
    /// Client subnet.
    pub ecs: Option<EcsOption>,
    /// The query asked for the name server's identifier (EDNS NSID, RFC 5001).
    pub nsid: bool,
}

/// What could not be answered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than a header, or a response (QR set): drop it silently.
    Drop,
    /// The output buffer cannot hold even a header-only reply.
    BufferTooSmall,
}

/// Outcome of parsing: a query, or a reply to send without routing.
#[allow(clippy::large_enum_variant)] // lives on the stack for one query; boxing would allocate
pub enum Parsed<'q> {
    /// A well-formed query.
    Query(WireQuery<'q>),
    /// Reply at once with this rcode (question echoed when `question` is set).
    Error {
        /// Message id.
        id: u16,
        /// Opcode.
        opcode: u8,
        /// RD.
        rd: bool,
        /// Rcode.
        rcode: Rcode,
        /// Question bytes to echo (may be empty).
        question: &'q [u8],
    },
}

/// Longest question section: a 255-octet name, type and class.
pub(crate) const MAX_QUESTION: usize = 255 + 4;

impl Parsed<'_> {
    /// The same outcome with its question copied into `store`, so the
    /// packet it came from may be overwritten by the reply.
    pub fn detach<'s>(self, store: &'s mut [u8; MAX_QUESTION]) -> Parsed<'s> {
        fn keep<'s>(q: &[u8], store: &'s mut [u8; MAX_QUESTION]) -> &'s [u8] {
            let n = q.len().min(MAX_QUESTION);
            let (head, _) = store.split_at_mut(n);
            head.copy_from_slice(q.get(..n).unwrap_or_default());
            head
        }
        match self {
            Parsed::Error {
                id,
                opcode,
                rd,
                rcode,
                question,
            } => Parsed::Error {
                id,
                opcode,
                rd,
                rcode,
                question: keep(question, store),
            },
            Parsed::Query(q) => Parsed::Query(WireQuery {
                question: keep(q.question, store),
                id: q.id,
                opcode: q.opcode,
                rd: q.rd,
                cd: q.cd,
                name: q.name,
                qname_wire_len: q.qname_wire_len,
                qtype: q.qtype,
                qclass: q.qclass,
                edns: q.edns,
                edns_version: q.edns_version,
                udp_size: q.udp_size,
                dnssec_ok: q.dnssec_ok,
                ecs: q.ecs,
                nsid: q.nsid,
            }),
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Skips a (possibly compressed) name; returns the offset after it.
fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *b.get(i)?;
        if len == 0 {
            return Some(i + 1);
        }
        if len & 0xC0 == 0xC0 {
            b.get(i + 1)?;
            return Some(i + 2);
        }
        if len & 0xC0 != 0 {
            return None;
        }
        i += 1 + usize::from(len);
    }
    None
}

/// Parses a query packet.
pub fn parse(b: &[u8]) -> Result<Parsed<'_>, WireError> {
    let (Some(id), Some(flags)) = (u16_at(b, 0), u16_at(b, 2)) else {
        return Err(WireError::Drop);
    };
    if b.len() < 12 || flags & 0x8000 != 0 {
        return Err(WireError::Drop);
    }
    let opcode = ((flags >> 11) & 0xF) as u8;
    let rd = flags & 0x0100 != 0;
    let cd = flags & 0x0010 != 0;
    let count = |at| u16_at(b, at).unwrap_or(0);
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    let refuse = |rcode, question| {
        Ok(Parsed::Error {
            id,
            opcode,
            rd,
            rcode,
            question,
        })
    };
    if qd != 1 {
        let rcode = if opcode != 0 {
            Rcode::NotImp
        } else {
            Rcode::FormErr
        };
        return refuse(rcode, &[]);
    }
    // Built in place: the 256-octet name is never copied.
    let mut q = WireQuery {
        id,
        opcode,
        rd,
        cd,
        name: NameBuf::root(),
        qname_wire_len: 0,
        qtype: 0,
        qclass: 0,
        question: &[],
        edns: false,
        edns_version: 0,
        udp_size: 512,
        dnssec_ok: false,
        ecs: None,
        nsid: false,
    };
    let Some(end) = question(b, &mut q) else {
        return refuse(Rcode::FormErr, &[]);
    };
    let question = b.get(12..end).unwrap_or_default();
    if opcode != 0 {
        return refuse(Rcode::NotImp, question);
    }
    q.question = question;
    let after = skip_records(b, end, u32::from(an) + u32::from(ns));
    match after.and_then(|i| additional(b, i, ar, &mut q)) {
        Some(()) => Ok(Parsed::Query(q)),
        None => refuse(Rcode::FormErr, question),
    }
}

/// Reads the question at offset 12 into `q` (name from uncompressed
/// labels, type, class); returns the offset after it.
fn question(b: &[u8], q: &mut WireQuery) -> Option<usize> {
    let name = &mut q.name;
    let mut i = 12;
    loop {
        let len = *b.get(i)?;
        if len == 0 {
            i += 1;
            break;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        let label = b.get(i + 1..i + 1 + usize::from(len))?;
        name.push_label(label).ok()?;
        i += 1 + usize::from(len);
    }
    q.qname_wire_len = i - 12;
    q.qtype = u16_at(b, i)?;
    q.qclass = u16_at(b, i + 2)?;
    Some(i + 4)
}

/// Skips `n` answer and authority records from offset `i`; an OPT record
/// there is malformed (it belongs only in the additional section: RFC 6891
/// §6.1.1).
fn skip_records(b: &[u8], mut i: usize, n: u32) -> Option<usize> {
    for _ in 0..n {
        let j = skip_name(b, i)?;
        let (t, rdlen) = (u16_at(b, j)?, u16_at(b, j + 8)?);
        if t == rtype::OPT {
            return None;
        }
        i = j + 10 + usize::from(rdlen);
        if i > b.len() {
            return None;
        }
    }
    Some(i)
}

/// Reads `n` additional records from offset `i` into `q`: EDNS from the
/// one OPT record (owned by the root), others skipped.
fn additional(b: &[u8], mut i: usize, n: u16, q: &mut WireQuery) -> Option<()> {
    for _ in 0..n {
        let j = skip_name(b, i)?;
        let (t, class) = (u16_at(b, j)?, u16_at(b, j + 2)?);
        let (ttl_hi, ttl_lo, rdlen) = (u16_at(b, j + 4)?, u16_at(b, j + 6)?, u16_at(b, j + 8)?);
        let rd_end = j + 10 + usize::from(rdlen);
        let rdata = b.get(j + 10..rd_end)?;
        if t == rtype::OPT {
            if q.edns || b.get(i) != Some(&0) {
                return None;
            }
            q.edns = true;
            q.udp_size = class.max(512);
            q.edns_version = (ttl_hi & 0xFF) as u8;
            q.dnssec_ok = ttl_lo & 0x8000 != 0;
            edns_options(rdata, q)?;
        }
        i = rd_end;
    }
    Some(())
}

/// The options of the OPT record: ECS (at most one, RFC 7871 §7.1.1) is
/// kept, others skipped; the options must fill RDATA exactly.
fn edns_options(rdata: &[u8], q: &mut WireQuery) -> Option<()> {
    let mut k = 0;
    while let (Some(code), Some(olen)) = (u16_at(rdata, k), u16_at(rdata, k + 2)) {
        let olen = usize::from(olen);
        let opt = rdata.get(k + 4..k + 4 + olen)?;
        if code == 8 {
            if q.ecs.is_some() {
                return None;
            }
            q.ecs = Some(parse_ecs(opt)?);
        } else if code == 3 {
            // NSID: empty in queries (RFC 5001 §2.3); any payload is ignored.
            q.nsid = true;
        }
        k += 4 + olen;
    }
    (k == rdata.len()).then_some(())
}

/// RFC 7871 §6 and §7.1.1: family 1 or 2, source within the family, scope 0
/// in queries, exactly ceil(source/8) address octets, no bits set past source.
fn parse_ecs(opt: &[u8]) -> Option<EcsOption> {
    let (&[f0, f1, source, scope], addr) = opt.split_first_chunk::<4>()?;
    let family = u16::from_be_bytes([f0, f1]);
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source > max || scope != 0 {
        return None;
    }
    let n = usize::from(source).div_ceil(8);
    if addr.len() != n {
        return None;
    }
    let mut a = [0u8; 16];
    a.get_mut(..n)?.copy_from_slice(addr);
    if !source.is_multiple_of(8) {
        let mask = 0xFFu8 >> (source % 8);
        if addr.last().is_some_and(|last| last & mask != 0) {
            return None;
        }
    }
    Some(EcsOption {
        family,
        source,
        addr: a,
    })
}

struct W<'b> {
    buf: &'b mut [u8],
    pos: usize,
    limit: usize,
}

impl W<'_> {
    #[inline]
    fn put(&mut self, data: &[u8]) -> bool {
        let end = self.pos + data.len();
        if end > self.limit {
            return false;
        }
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(data);
                self.pos = end;
                true
            }
            None => false,
        }
    }
    #[inline]
    fn u16(&mut self, v: u16) -> bool {
        self.put(&v.to_be_bytes())
    }
    #[inline]
    fn u32(&mut self, v: u32) -> bool {
        self.put(&v.to_be_bytes())
    }
}

#[allow(clippy::too_many_arguments)]
fn header(
    w: &mut W,
    id: u16,
    opcode: u8,
    aa: bool,
    tc: bool,
    rd: bool,
    cd: bool,
    rcode: u8,
    counts: [u16; 4],
) -> bool {
    let mut flags: u16 = 0x8000 | (u16::from(opcode & 0xF) << 11) | u16::from(rcode & 0xF);
    if aa {
        flags |= 0x0400;
    }
    if tc {
        flags |= 0x0200;
    }
    if rd {
        flags |= 0x0100;
    }
    if cd {
        flags |= 0x0010;
    }
    let save = w.pos;
    w.pos = 0;
    let ok = w.u16(id) && w.u16(flags) && counts.iter().all(|c| w.u16(*c));
    w.pos = save.max(w.pos);
    ok
}

/// Writes a reply for a query that could not be routed (FORMERR, NOTIMP…).
pub fn write_error(
    id: u16,
    opcode: u8,
    rd: bool,
    rcode: Rcode,
    question: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    let limit = out.len().min(65535);
    let mut w = W {
        buf: out,
        pos: 12,
        limit,
    };
    let qd = u16::from(!question.is_empty());
    if !w.put(question) {
        w.pos = 12;
        if !header(
            &mut w,
            id,
            opcode,
            false,
            false,
            rd,
            false,
            rcode as u8,
            [0; 4],
        ) {
            return Err(WireError::BufferTooSmall);
        }
        return Ok(12);
    }
    if !header(
        &mut w,
        id,
        opcode,
        false,
        false,
        rd,
        false,
        rcode as u8,
        [qd, 0, 0, 0],
    ) {
        return Err(WireError::BufferTooSmall);
    }
    Ok(w.pos)
}

/// Writes the OPT record, or nothing at all (the position is restored when
/// it does not fit).
fn opt_record(w: &mut W, q: &WireQuery, ext_rcode: u8, scope: u8, nsid: &[u8]) -> bool {
    let start = w.pos;
    let ok = opt_record_parts(w, q, ext_rcode, scope, nsid);
    if !ok {
        w.pos = start;
    }
    ok
}

fn opt_record_parts(w: &mut W, q: &WireQuery, ext_rcode: u8, scope: u8, nsid: &[u8]) -> bool {
    // Owner root, type OPT, class = our payload, TTL = ext-rcode/version/flags;
    // the DO bit is copied from the query (RFC 3225 §3).
    let flags = if q.dnssec_ok { 0x80 } else { 0 };
    // NSID when asked and we have a name (at most 255 octets are sent).
    let nsid = if q.nsid {
        nsid.get(..nsid.len().min(255)).unwrap_or_default()
    } else {
        &[]
    };
    let nsid_len = if nsid.is_empty() { 0 } else { 4 + nsid.len() };
    let ecs_len = q.ecs.map_or(0, |e| 4 + 4 + e.addr_len());
    let head = w.put(&[0])
        && w.u16(rtype::OPT)
        && w.u16(EDNS_PAYLOAD)
        && w.put(&[ext_rcode, 0, flags, 0])
        && w.u16((ecs_len + nsid_len) as u16);
    let ecs_ok = match q.ecs {
        None => true,
        Some(ecs) => {
            let alen = ecs.addr_len();
            let max = if ecs.family == 1 { 32 } else { 128 };
            let scope = scope.min(max);
            w.u16(8)
                && w.u16((4 + alen) as u16)
                && w.u16(ecs.family)
                && w.put(&[ecs.source, scope])
                && w.put(ecs.addr.get(..alen).unwrap_or_default())
        }
    };
    let nsid_ok = nsid.is_empty() || (w.u16(3) && w.u16(nsid.len() as u16) && w.put(nsid));
    head && ecs_ok && nsid_ok
}

/// Writes the response to `q` carrying `a` into `out`. `tcp` lifts the
/// size limit to the buffer (at most 65535).
pub fn write_answer(
    q: &WireQuery,
    a: &Answer,
    tcp: bool,
    out: &mut [u8],
) -> Result<usize, WireError> {
    write_answer_nsid(q, a, tcp, &[], out)
}

/// As [`write_answer`], with `nsid` (the server's identifier, e.g. its
/// node name in a fleet) in the OPT record when the query asked for it
/// (RFC 5001); an empty `nsid` adds nothing.
pub fn write_answer_nsid(
    q: &WireQuery,
    a: &Answer,
    tcp: bool,
    nsid: &[u8],
    out: &mut [u8],
) -> Result<usize, WireError> {
    let limit = if tcp {
        out.len().min(65535)
    } else {
        let want = if q.edns {
            usize::from(q.udp_size).clamp(512, MAX_UDP)
        } else {
            512
        };
        out.len().min(want)
    };
    let base = 12 + q.question.len();
    if limit < base {
        return Err(WireError::BufferTooSmall);
    }
    let badvers = q.edns && q.edns_version > 0;
    let mut w = W {
        buf: out,
        pos: 12,
        limit,
    };
    w.put(q.question);
    let (rcode, ext) = if badvers {
        (0u8, 1u8)
    } else {
        (a.rcode as u8, 0u8)
    };
    let mut an = 0u16;
    let mut ns = 0u16;
    let mut fits = true;
    if !badvers {
        // RFC 8482: ANY gets one RRset (the first one's type), never all.
        let any_type = match q.qtype {
            rtype::ANY => a.records.iter().next().map(|r| r.rtype),
            _ => None,
        };
        for r in a.records.iter() {
            if any_type.is_some_and(|t| t != r.rtype) {
                continue;
            }
            fits = w.u16(0xC00C)
                && w.u16(r.rtype)
                && w.u16(1)
                && w.u32(a.ttl(r))
                && w.u16(r.wire.len() as u16)
                && w.put(&r.wire);
            if !fits {
                break;
            }
            an += 1;
        }
        if fits && let Some(zone) = a.zone {
            // The zone apex is a suffix of the question name (matched at a label boundary).
            let zone_wire = zone.name.len() + 2;
            let ptr = 12 + q.qname_wire_len.saturating_sub(zone_wire);
            let owner = 0xC000 | (ptr as u16 & 0x3FFF);
            for r in a.authority.iter() {
                fits = w.u16(owner)
                    && w.u16(r.rtype)
                    && w.u16(1)
                    && w.u32(r.ttl)
                    && w.u16(r.wire.len() as u16)
                    && w.put(&r.wire);
                if !fits {
                    break;
                }
                ns += 1;
            }
        }
    }
    let mut tc = false;
    if !fits {
        tc = true;
        an = 0;
        ns = 0;
        w.pos = base;
    }
    let mut ar = 0u16;
    if q.edns {
        if !opt_record(&mut w, q, ext, a.scope_prefix, nsid) {
            // No room for OPT after the records: truncate instead.
            tc = true;
            an = 0;
            ns = 0;
            w.pos = base;
            if !opt_record(&mut w, q, ext, a.scope_prefix, nsid) {
                // Not even the question and OPT fit: no well-formed reply.
                return Err(WireError::BufferTooSmall);
            }
        }
        ar = 1;
    }
    let aa = a.authoritative && !badvers;
    header(
        &mut w,
        q.id,
        q.opcode,
        aa,
        tc,
        q.rd,
        q.cd,
        rcode,
        [1, an, ns, ar],
    );
    Ok(w.pos)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `tm.example A` with the given header flags word and extra octets
    /// (an additional record) after the question.
    fn packet(flags: u16, arcount: u16, extra: &[u8]) -> Vec<u8> {
        let mut q = vec![0xAB, 0xCD];
        q.extend_from_slice(&flags.to_be_bytes());
        q.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
        q.extend_from_slice(&arcount.to_be_bytes());
        q.extend_from_slice(b"\x02tm\x07example\x00\x00\x01\x00\x01");
        q.extend_from_slice(extra);
        q
    }

    fn opt(options: &[u8]) -> Vec<u8> {
        let mut o = vec![0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0];
        o.extend_from_slice(&(options.len() as u16).to_be_bytes());
        o.extend_from_slice(options);
        o
    }

    fn rcode_of(p: &[u8]) -> Option<Rcode> {
        match parse(p) {
            Ok(Parsed::Error { rcode, .. }) => Some(rcode),
            Ok(Parsed::Query(_)) => None,
            Err(_) => Some(Rcode::Refused),
        }
    }

    #[test]
    fn what_is_dropped_and_what_is_refused() {
        assert_eq!(parse(&[0; 11]).err(), Some(WireError::Drop));
        assert_eq!(parse(&packet(0x8000, 0, &[])).err(), Some(WireError::Drop));
        assert_eq!(rcode_of(&packet(0, 0, &[])), None);
        assert_eq!(rcode_of(&packet(4 << 11, 0, &[])), Some(Rcode::NotImp));
        let mut no_question = packet(0, 0, &[]);
        no_question[5] = 0;
        assert_eq!(rcode_of(&no_question), Some(Rcode::FormErr));
        assert_eq!(rcode_of(&packet(0, 1, &[])), Some(Rcode::FormErr));
        assert_eq!(rcode_of(&packet(0, 1, &opt(&[]))), None);
        let mut two = opt(&[]);
        two.extend(opt(&[]));
        assert_eq!(rcode_of(&packet(0, 2, &two)), Some(Rcode::FormErr));
    }

    /// RFC 7871 §7.1.1, row by row: family, source, scope, address length,
    /// bits past the prefix.
    #[test]
    fn ecs_option_rules() {
        let ecs = |body: &[u8]| {
            let mut o = vec![0, 8];
            o.extend_from_slice(&(body.len() as u16).to_be_bytes());
            o.extend_from_slice(body);
            rcode_of(&packet(0, 1, &opt(&o)))
        };
        assert_eq!(ecs(&[0, 1, 24, 0, 203, 0, 113]), None);
        assert_eq!(ecs(&[0, 2, 48, 0, 0x20, 1, 0x0d, 0xb8, 0, 1]), None);
        assert_eq!(ecs(&[0, 1, 0, 0]), None);
        assert_eq!(ecs(&[0, 3, 24, 0, 1, 2, 3]), Some(Rcode::FormErr));
        assert_eq!(ecs(&[0, 1, 33, 0, 1, 2, 3, 4, 5]), Some(Rcode::FormErr));
        assert_eq!(ecs(&[0, 1, 24, 8, 203, 0, 113]), Some(Rcode::FormErr));
        assert_eq!(ecs(&[0, 1, 24, 0, 203, 0]), Some(Rcode::FormErr));
        assert_eq!(ecs(&[0, 1, 23, 0, 203, 0, 113]), Some(Rcode::FormErr));
        assert_eq!(ecs(&[0, 1]), Some(Rcode::FormErr));
        // Two ECS options: FORMERR (found by the hostile review).
        let one = [0, 8, 0, 7, 0, 1, 24, 0, 203, 0, 113];
        let two = [one, one].concat();
        assert_eq!(rcode_of(&packet(0, 1, &opt(&one))), None);
        assert_eq!(rcode_of(&packet(0, 1, &opt(&two))), Some(Rcode::FormErr));
    }

    /// An OPT record in the answer section: FORMERR (found by the review).
    #[test]
    fn opt_outside_the_additional_section_is_formerr() {
        let mut p = packet(0, 0, &opt(&[]));
        p[7] = 1; // ANCOUNT 1, ARCOUNT 0: the OPT sits in the answer section
        assert_eq!(rcode_of(&p), Some(Rcode::FormErr));
    }

    /// NSID (RFC 5001) is sent when the query asks and the server has a
    /// name, beside ECS in the same OPT record.
    #[test]
    fn nsid_when_asked_and_named_with_ecs_beside_it() {
        let a = Answer::not_ours();
        // NSID asked, with an ECS option: both in the reply's OPT.
        let mut opts = vec![0, 3, 0, 0];
        opts.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0, 203, 0, 113]);
        let p = packet(0, 1, &opt(&opts));
        let Ok(Parsed::Query(q)) = parse(&p) else {
            panic!("not a query");
        };
        assert!(q.nsid);
        let mut out = vec![0u8; 512];
        let n = write_answer_nsid(&q, &a, false, b"ns1", &mut out).unwrap();
        let rdata = &out[n - (11 + 7)..n];
        assert_eq!(&out[n - 20..n - 18], &[0, 18], "RDLENGTH: ECS 11 + NSID 7");
        assert_eq!(&rdata[11..], &[0, 3, 0, 3, b'n', b's', b'1']);
        // No name: no NSID option, the same reply as write_answer.
        let mut plain = vec![0u8; 512];
        let m = write_answer(&q, &a, false, &mut plain).unwrap();
        assert_eq!(write_answer_nsid(&q, &a, false, b"", &mut out), Ok(m));
        assert_eq!(out[..m], plain[..m]);
        // Not asked: not sent.
        let p = packet(0, 1, &opt(&[]));
        let Ok(Parsed::Query(q)) = parse(&p) else {
            panic!("not a query");
        };
        assert!(!q.nsid);
        let m = write_answer(&q, &a, false, &mut plain).unwrap();
        assert_eq!(write_answer_nsid(&q, &a, false, b"ns1", &mut out), Ok(m));
    }

    /// The OPT record goes in whole or not at all; a buffer that cannot hold
    /// question and OPT is an error.
    #[test]
    fn opt_is_written_whole_or_not_at_all() {
        let p = packet(0, 1, &opt(&[]));
        let Ok(Parsed::Query(q)) = parse(&p) else {
            panic!("not a query");
        };
        let a = Answer::not_ours();
        let question_end = 12 + q.question.len();
        for len in 0..question_end + 11 {
            let mut out = vec![0u8; len];
            assert_eq!(
                write_answer(&q, &a, false, &mut out),
                Err(WireError::BufferTooSmall),
                "{len}"
            );
        }
        let mut out = vec![0u8; question_end + 11];
        assert_eq!(write_answer(&q, &a, false, &mut out), Ok(question_end + 11));
        assert_eq!(out[11], 1, "ARCOUNT");
    }

    /// A detached query keeps its question when the packet is overwritten.
    #[test]
    fn detach_keeps_the_question() {
        let mut p = packet(0, 0, &[]);
        let mut store = [0u8; MAX_QUESTION];
        let parsed = parse(&p).unwrap().detach(&mut store);
        p.fill(0);
        let Parsed::Query(q) = parsed else {
            panic!("not a query");
        };
        assert_eq!(q.question, b"\x02tm\x07example\x00\x00\x01\x00\x01");
        assert_eq!(q.name.as_bytes(), b"tm.example");
    }
}
