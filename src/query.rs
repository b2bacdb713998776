//! THE hot path: normalise the name → find its node → route → answer.
//! No allocation, no lock, no syscall, no formatting below this line; the
//! snapshot is passed in by the caller, which loaded it once.

use crate::answer::records::rtype;
use crate::answer::{Answer, Rcode};
use crate::routing::{self, Client, Pick};
use crate::snapshot::{EpAnswer, Node, Profile, Snapshot, Zone};

/// A query name in canonical form: lowercase ASCII, no trailing dot, at
/// most 253 octets, labels of 1..=63 octets. Lives on the stack.
///
/// Labels are joined by `.`; a label may itself hold a `.` octet (wire
/// form, or `\.` in presentation form). Such a dot is not a label boundary:
/// the position of the last one is kept, and every comparison of a suffix
/// starts after it, so names are compared label by label.
#[derive(Clone)]
pub struct NameBuf {
    buf: [u8; 256],
    len: usize,
    /// A label held a `.` or a byte outside printable ASCII: such a name
    /// cannot be one of ours exactly, but may be under one of our zones.
    odd: bool,
    /// Offset in `buf` just past the last `.` that is inside a label (0 if
    /// none): no label boundary before it may be taken as a suffix start.
    suffix_from: usize,
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
    /// A `\` escape in presentation form that is cut short or over `\255`.
    BadEscape,
}

impl NameBuf {
    /// The root name (empty).
    pub fn root() -> NameBuf {
        NameBuf {
            buf: [0; 256],
            len: 0,
            odd: false,
            suffix_from: 0,
        }
    }

    /// From presentation form (`WWW.Example.` or `www.example`), in one pass.
    #[inline]
    pub fn from_text(name: &[u8]) -> Result<NameBuf, NameError> {
        let mut n = NameBuf::root();
        n.set_text(name)?;
        Ok(n)
    }

    /// Replaces the name with `name` in presentation form, in place (no
    /// copy of the 256-octet buffer on the way back). `\.`, `\\` and `\DDD`
    /// escapes are read as RFC 1035 §5.1 says.
    #[inline]
    pub fn set_text(&mut self, name: &[u8]) -> Result<(), NameError> {
        self.len = 0;
        self.odd = false;
        self.suffix_from = 0;
        if name.contains(&b'\\') {
            return self.set_escaped(name);
        }
        let name = name.strip_suffix(b".").unwrap_or(name);
        if name.len() > 253 {
            return Err(NameError::NameTooLong);
        }
        if name.is_empty() {
            return Ok(());
        }
        let mut label = 0usize;
        let mut odd = false;
        for (d, &b) in self.buf.iter_mut().zip(name) {
            if b == b'.' {
                if label == 0 {
                    return Err(NameError::EmptyLabel);
                }
                label = 0;
            } else {
                label += 1;
            }
            odd |= !(0x21..0x7f).contains(&b);
            *d = b.to_ascii_lowercase();
        }
        if label == 0 {
            return Err(NameError::EmptyLabel);
        }
        // Label lengths: checked only when a label could be long.
        if name.len() > 63 {
            let mut start = 0;
            for (i, &b) in name.iter().enumerate() {
                if b == b'.' {
                    if i - start > 63 {
                        return Err(NameError::LabelTooLong);
                    }
                    start = i + 1;
                }
            }
            if name.len() - start > 63 {
                return Err(NameError::LabelTooLong);
            }
        }
        self.odd = odd;
        self.len = name.len();
        Ok(())
    }

    /// The slow path of [`NameBuf::set_text`]: a name with `\` escapes,
    /// decoded label by label.
    #[cold]
    fn set_escaped(&mut self, name: &[u8]) -> Result<(), NameError> {
        let mut label = [0u8; 63];
        let mut n = 0usize;
        let mut i = 0usize;
        while let Some(&b) = name.get(i) {
            let byte = match b {
                b'.' => {
                    if n == 0 {
                        return Err(NameError::EmptyLabel);
                    }
                    self.push_label(label.get(..n).unwrap_or_default())?;
                    n = 0;
                    i += 1;
                    continue;
                }
                b'\\' => match name.get(i + 1..i + 4) {
                    Some(d) if d.iter().all(u8::is_ascii_digit) => {
                        let v = d.iter().fold(0u16, |acc, c| acc * 10 + u16::from(c - b'0'));
                        i += 4;
                        u8::try_from(v).map_err(|_| NameError::BadEscape)?
                    }
                    _ => {
                        let x = *name.get(i + 1).ok_or(NameError::BadEscape)?;
                        if x.is_ascii_digit() {
                            return Err(NameError::BadEscape);
                        }
                        i += 2;
                        x
                    }
                },
                _ => {
                    i += 1;
                    b
                }
            };
            let slot = label.get_mut(n).ok_or(NameError::LabelTooLong)?;
            *slot = byte;
            n += 1;
        }
        if n > 0 {
            self.push_label(label.get(..n).unwrap_or_default())?;
        }
        Ok(())
    }

    /// Whether every `.` is a label boundary and every octet printable
    /// ASCII: only such a name can be one of the configuration's names.
    #[inline]
    pub fn is_plain(&self) -> bool {
        !self.odd
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
            if b == b'.' {
                self.suffix_from = self.len;
            }
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
    // The longest zone that is a proper suffix at a label boundary: a dot
    // inside a label is no boundary, so the search starts past the last one.
    let mut i = name.suffix_from;
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

/// Answers one query from `snap` into `out` (built in place: no copies of
/// the answer on the way up). `qtype` is the numeric type.
pub fn answer<'s>(
    snap: &'s Snapshot,
    name: &NameBuf,
    qtype: u16,
    client: &Client,
    out: &mut Answer<'s>,
) {
    match place(snap, name) {
        Place::NotOurs => out.set_not_ours(),
        Place::Under(zone) => out.set_negative(zone, Rcode::NxDomain, 0),
        Place::Node(Node::Empty(z)) => match snap.zones.get(z as usize) {
            Some(zone) => out.set_negative(zone, Rcode::NoError, 0),
            None => out.set_not_ours(),
        },
        Place::Node(Node::Apex(z)) => {
            let Some(zone) = snap.zones.get(z as usize) else {
                return out.set_not_ours();
            };
            out.answer.clear();
            match qtype {
                rtype::SOA => out.answer.push_one(&zone.soa),
                rtype::NS => out.answer.push(&zone.ns),
                rtype::ANY => {
                    out.answer.push_one(&zone.soa);
                    out.answer.push(&zone.ns);
                }
                _ => return out.set_negative(zone, Rcode::NoError, 0),
            }
            out.set_positive(zone, 0)
        }
        Place::Node(Node::Profile(p)) => {
            let Some(profile) = snap.profiles.get(p as usize) else {
                return out.set_not_ours();
            };
            let Some(zone) = snap.zones.get(profile.zone as usize) else {
                return out.set_not_ours();
            };
            profile_answer(snap, zone, profile, qtype, client, 0, out)
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
    out: &mut Answer<'s>,
) {
    let (pick, scope) = routing::route(snap, profile, client, depth);
    out.answer.clear();
    match pick {
        Pick::NxDomain => return out.set_negative(zone, Rcode::NxDomain, scope),
        Pick::NoData => return out.set_negative(zone, Rcode::NoError, scope),
        Pick::One(id) => {
            let Some(e) = snap.endpoints.get(id as usize) else {
                return out.set_negative(zone, Rcode::NoError, scope);
            };
            match &e.answer {
                EpAnswer::Cname(r) => out.answer.push_one(r),
                EpAnswer::Addresses { v4, v6 } => {
                    if matches!(qtype, rtype::A | rtype::ANY) {
                        out.answer.push(v4);
                    }
                    if matches!(qtype, rtype::AAAA | rtype::ANY) {
                        out.answer.push(v6);
                    }
                }
                EpAnswer::Nested { child, .. } => {
                    let Some(cp) = snap.profiles.get(*child as usize) else {
                        return out.set_negative(zone, Rcode::NoError, scope);
                    };
                    profile_answer(snap, zone, cp, qtype, client, depth + 1, out);
                    // A child's NXDOMAIN is not the parent's: the parent name exists.
                    if out.rcode == Rcode::NxDomain {
                        out.rcode = Rcode::NoError;
                    }
                    out.scope_prefix = out.scope_prefix.max(scope);
                    return;
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
                    out.answer.push(&v4[..take]);
                    n4 += take;
                }
                if matches!(qtype, rtype::AAAA | rtype::ANY) && n6 < cap {
                    let take = v6.len().min(cap - n6);
                    out.answer.push(&v6[..take]);
                    n6 += take;
                }
            }
        }
    }
    if out.answer.is_empty() {
        return out.set_negative(zone, Rcode::NoError, scope);
    }
    out.set_positive(zone, scope)
}
