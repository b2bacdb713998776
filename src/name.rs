//! Query names in canonical form, on the stack: what every entry (wire,
//! text, C, DLZ) turns a name into before it is looked up.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

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
        let text = name;
        let name = name.strip_suffix(b".").unwrap_or(name);
        if name.len() > 253 {
            // Escapes make the text longer than the name it spells.
            return match text.contains(&b'\\') {
                true => self.set_escaped(text),
                false => Err(NameError::NameTooLong),
            };
        }
        if name.is_empty() {
            return Ok(());
        }
        let mut label = 0usize;
        let mut odd = false;
        for (d, &b) in self.buf.iter_mut().zip(name) {
            if b == b'\\' {
                // Rare: decode label by label from the start.
                return self.set_escaped(text);
            }
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

    /// The name's proper suffixes that begin at a label boundary, longest
    /// first (`a.b.c` → `b.c`, `c`). A dot inside a label is no boundary:
    /// the search starts past the last such dot.
    #[inline]
    pub fn parent_suffixes(&self) -> impl Iterator<Item = &[u8]> {
        let b = self.as_bytes();
        b.iter()
            .enumerate()
            .skip(self.suffix_from)
            .filter(|(_, c)| **c == b'.')
            .filter_map(move |(i, _)| b.get(i + 1..))
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
            self.push_octet(b'.');
        }
        for &b in label {
            if b == b'.' || !(0x21..0x7f).contains(&b) {
                self.odd = true;
            }
            self.push_octet(b.to_ascii_lowercase());
            if b == b'.' {
                self.suffix_from = self.len;
            }
        }
        Ok(())
    }

    /// Appends one octet (the callers have checked the room: at most 253).
    #[inline]
    fn push_octet(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// The canonical bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Writes `name.` (with the trailing dot) into `out`, returning its length.
    pub fn write_fqdn(&self, out: &mut [u8; 256]) -> usize {
        let n = self.len.min(out.len() - 1);
        let (head, tail) = out.split_at_mut(n);
        head.copy_from_slice(self.as_bytes().get(..n).unwrap_or_default());
        if let Some(dot) = tail.first_mut() {
            *dot = b'.';
        }
        n + 1
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(n: &str) -> Result<NameBuf, NameError> {
        NameBuf::from_text(n.as_bytes())
    }

    #[test]
    fn canonical_form() {
        assert_eq!(text("WWW.Example.").unwrap().as_bytes(), b"www.example");
        assert_eq!(text(".").unwrap().as_bytes(), b"");
        assert!(text("a.b").unwrap().is_plain());
        assert_eq!(text("a..b").err(), Some(NameError::EmptyLabel));
        assert_eq!(text(&"x".repeat(64)).err(), Some(NameError::LabelTooLong));
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(text(&long).err(), Some(NameError::NameTooLong));
    }

    /// `\.` is a dot inside a label; `\DDD` any octet; suffixes start only
    /// at real boundaries.
    #[test]
    fn escapes_and_label_boundaries() {
        let n = text("a\\.b.c.d").unwrap();
        assert_eq!(n.as_bytes(), b"a.b.c.d");
        assert!(!n.is_plain());
        let tails: Vec<&[u8]> = n.parent_suffixes().collect();
        assert_eq!(tails, vec![&b"c.d"[..], &b"d"[..]]);
        let n = text("\\065bc.d").unwrap();
        assert_eq!(n.as_bytes(), b"abc.d");
        assert!(n.is_plain());
        for bad in ["a\\", "a\\2", "a\\256", "a\\25x"] {
            assert_eq!(text(bad).err(), Some(NameError::BadEscape), "{bad}");
        }
        let plain = text("x.y.z").unwrap();
        let tails: Vec<&[u8]> = plain.parent_suffixes().collect();
        assert_eq!(tails, vec![&b"y.z"[..], &b"z"[..]]);
    }

    #[test]
    fn wire_labels() {
        let mut n = NameBuf::root();
        n.push_label(b"A.B").unwrap();
        n.push_label(b"tm").unwrap();
        assert_eq!(n.as_bytes(), b"a.b.tm");
        assert_eq!(n.parent_suffixes().collect::<Vec<_>>(), vec![&b"tm"[..]]);
        let mut out = [0u8; 256];
        let len = text("a.b").unwrap().write_fqdn(&mut out);
        assert_eq!(&out[..len], b"a.b.");
    }
}
