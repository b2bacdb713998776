//! THE hot path: normalise the name → find its node → route → answer.
//! No allocation, no lock, no syscall, no formatting below this line; the
//! snapshot is passed in by the caller, which loaded it once.

use crate::answer::records::rtype;
use crate::answer::{Answer, Rcode, Records};
use crate::routing::{self, Client, Pick};
use crate::snapshot::{EpAnswer, Node, Profile, Snapshot, Zone};

/// A query name in canonical form: lowercase ASCII, no trailing dot, at
/// most 253 octets, labels of 1..=63 octets. Lives on the stack.
#[derive(Clone)]
pub struct NameBuf {
    buf: [u8; 256],
    len: usize,
    /// A label held a `.` or a byte outside printable ASCII: such a name
    /// cannot be one of ours exactly, but may be under one of our zones.
    odd: bool,
}

/// Why a name was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Empty label (`a..b`) or empty name.
    EmptyLabel,
    /// A label over 63 octets.
    LabelTooLong,
    /// Over 255 octets in wire form.
    NameTooLong,
}

impl NameBuf {
    /// The root name (empty).
    pub fn root() -> NameBuf {
        NameBuf {
            buf: [0; 256],
            len: 0,
            odd: false,
        }
    }

    /// From presentation form (`WWW.Example.` or `www.example`).
    pub fn from_text(name: &[u8]) -> Result<NameBuf, NameError> {
        let name = name.strip_suffix(b".").unwrap_or(name);
        let mut n = NameBuf::root();
        if name.is_empty() {
            return Ok(n);
        }
        if name.len() > 253 {
            return Err(NameError::NameTooLong);
        }
        let dst = &mut n.buf[..name.len()];
        dst.copy_from_slice(name);
        dst.make_ascii_lowercase();
        n.odd = dst.iter().any(|&b| !(0x21..0x7f).contains(&b));
        let mut start = 0usize;
        for (i, &b) in dst.iter().enumerate() {
            if b == b'.' {
                match i - start {
                    0 => return Err(NameError::EmptyLabel),
                    1..=63 => {}
                    _ => return Err(NameError::LabelTooLong),
                }
                start = i + 1;
            }
        }
        match name.len() - start {
            0 => return Err(NameError::EmptyLabel),
            1..=63 => {}
            _ => return Err(NameError::LabelTooLong),
        }
        n.len = name.len();
        Ok(n)
    }

    /// Appends one wire-format label (used by the wire parser).
    pub(crate) fn push_label(&mut self, label: &[u8]) -> Result<(), NameError> {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong);
        }
        let dot = usize::from(self.len > 0);
        if self.len + dot + label.len() > 253 {
            return Err(NameError::NameTooLong);
        }
        if dot == 1 {
            self.buf[self.len] = b'.';
            self.len += 1;
        }
        for &b in label {
            if b == b'.' || !(0x21..0x7f).contains(&b) {
                self.odd = true;
            }
            self.buf[self.len] = b.to_ascii_lowercase();
            self.len += 1;
        }
        Ok(())
    }

    /// The canonical bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Writes `name.` (with the trailing dot) into `out`, returning its length.
    pub fn write_fqdn(&self, out: &mut [u8; 256]) -> usize {
        out[..self.len].copy_from_slice(self.as_bytes());
        out[self.len] = b'.';
        self.len + 1
    }
}

/// Where a name falls.
enum Place<'a> {
    Node(Node),
    Under(&'a Zone),
    NotOurs,
}

fn place<'a>(snap: &'a Snapshot, name: &NameBuf) -> Place<'a> {
    let b = name.as_bytes();
    if !name.odd
        && let Some(n) = snap.names.get(b)
    {
        return Place::Node(*n);
    }
    // The longest zone that is a proper suffix at a label boundary.
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'.' {
            let tail = &b[i + 1..];
            if tail.len() <= snap.max_zone_len
                && let Some(Node::Apex(z)) = snap.names.get(tail)
                && let Some(zone) = snap.zones.get(*z as usize)
            {
                return Place::Under(zone);
            }
        }
        i += 1;
    }
    Place::NotOurs
}

/// Answers one query from `snap`. `qtype` is the numeric type.
pub fn answer<'s>(snap: &'s Snapshot, name: &NameBuf, qtype: u16, client: &Client) -> Answer<'s> {
    match place(snap, name) {
        Place::NotOurs => Answer::not_ours(),
        Place::Under(zone) => Answer::negative(zone, Rcode::NxDomain, 0),
        Place::Node(Node::Empty(z)) => match snap.zones.get(z as usize) {
            Some(zone) => Answer::negative(zone, Rcode::NoError, 0),
            None => Answer::not_ours(),
        },
        Place::Node(Node::Apex(z)) => {
            let Some(zone) = snap.zones.get(z as usize) else {
                return Answer::not_ours();
            };
            let mut recs = Records::default();
            match qtype {
                rtype::SOA => recs.push_one(&zone.soa),
                rtype::NS => recs.push(&zone.ns),
                rtype::ANY => {
                    recs.push_one(&zone.soa);
                    recs.push(&zone.ns);
                }
                _ => return Answer::negative(zone, Rcode::NoError, 0),
            }
            Answer::positive(zone, recs, 0)
        }
        Place::Node(Node::Profile(p)) => {
            let Some(profile) = snap.profiles.get(p as usize) else {
                return Answer::not_ours();
            };
            let Some(zone) = snap.zones.get(profile.zone as usize) else {
                return Answer::not_ours();
            };
            profile_answer(snap, zone, profile, qtype, client, 0)
        }
    }
}

fn profile_answer<'s>(
    snap: &'s Snapshot,
    zone: &'s Zone,
    profile: &'s Profile,
    qtype: u16,
    client: &Client,
    depth: u32,
) -> Answer<'s> {
    let (pick, scope) = routing::route(snap, profile, client, depth);
    let mut recs = Records::default();
    match pick {
        Pick::NxDomain => return Answer::negative(zone, Rcode::NxDomain, scope),
        Pick::NoData => return Answer::negative(zone, Rcode::NoError, scope),
        Pick::One(id) => {
            let Some(e) = snap.endpoints.get(id as usize) else {
                return Answer::negative(zone, Rcode::NoError, scope);
            };
            match &e.answer {
                EpAnswer::Cname(r) => recs.push_one(r),
                EpAnswer::Addresses { v4, v6 } => {
                    if matches!(qtype, rtype::A | rtype::ANY) {
                        recs.push(v4);
                    }
                    if matches!(qtype, rtype::AAAA | rtype::ANY) {
                        recs.push(v6);
                    }
                }
                EpAnswer::Nested { child, .. } => {
                    let Some(cp) = snap.profiles.get(*child as usize) else {
                        return Answer::negative(zone, Rcode::NoError, scope);
                    };
                    let mut a = profile_answer(snap, zone, cp, qtype, client, depth + 1);
                    // A child's NXDOMAIN is not the parent's: the parent name exists.
                    if a.rcode == Rcode::NxDomain {
                        a.rcode = Rcode::NoError;
                    }
                    a.scope_prefix = a.scope_prefix.max(scope);
                    return a;
                }
            }
        }
        Pick::Many(ids, n) => {
            let cap = usize::from(profile.max_answers);
            let (mut n4, mut n6) = (0usize, 0usize);
            for id in ids.iter().take(usize::from(n)) {
                let Some(EpAnswer::Addresses { v4, v6 }) =
                    snap.endpoints.get(*id as usize).map(|e| &e.answer)
                else {
                    continue;
                };
                if matches!(qtype, rtype::A | rtype::ANY) && n4 < cap {
                    let take = v4.len().min(cap - n4);
                    recs.push(&v4[..take]);
                    n4 += take;
                }
                if matches!(qtype, rtype::AAAA | rtype::ANY) && n6 < cap {
                    let take = v6.len().min(cap - n6);
                    recs.push(&v6[..take]);
                    n6 += take;
                }
            }
        }
    }
    if recs.is_empty() {
        return Answer::negative(zone, Rcode::NoError, scope);
    }
    Answer::positive(zone, recs, scope)
}
