//! Configuration errors: every one names the file, the line and column, the
//! key path (`profile[1].endpoint[0].weight`) and what was expected.

use crate::geo::GeoError;
use std::fmt;

/// One configuration error, located in the source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the text came from (`<string>` for configs given as text).
    pub file: String,
    /// 1-based line, 0 when unknown (e.g. a missing file).
    pub line: usize,
    /// 1-based column (in characters), 0 when unknown.
    pub col: usize,
    /// Key path such as `profile[1].endpoint[0].weight`; empty for the whole file.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error tied to no place in the file (a record that cannot be
    /// encoded, a thread that cannot start, a panic while loading).
    pub(crate) fn general(message: String) -> ConfigError {
        ConfigError {
            file: String::new(),
            line: 0,
            col: 0,
            path: String::new(),
            message,
        }
    }

    /// A data file named by the config key `key` (`engine.geoip_db`,
    /// `engine.latency_table`) could not be read: the same file, line,
    /// column and message, at that key.
    pub(crate) fn data_file(key: &str, e: GeoError) -> ConfigError {
        ConfigError {
            file: e.file,
            line: e.line,
            col: e.col,
            path: key.to_string(),
            message: e.message,
        }
    }
}

/// A configuration warning: something that loads and works but is probably
/// not meant. Same shape and display as [`ConfigError`] (file, line,
/// column, key path, message).
pub type ConfigWarning = ConfigError;

/// Converts a byte offset in `src` into a 1-based (line, column).
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Formats a key path the way the docs show it: `profile[1].endpoint[0].weight`.
pub(crate) fn format_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Parses a key path back into segments (used to locate serde's paths).
pub(crate) fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(b) = rest.find('[') {
            if b > 0 {
                segs.push(Seg::Key(rest[..b].to_string()));
            }
            rest = &rest[b..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(end) = stripped.find(']') else { break };
                if let Ok(i) = stripped[..end].parse() {
                    segs.push(Seg::Index(i));
                }
                rest = &stripped[end + 1..];
            }
        } else if !rest.is_empty() && rest != "?" {
            segs.push(Seg::Key(rest.to_string()));
        }
    }
    segs
}

/// Finds the byte span of the deepest item of `segs` that exists in the
/// document (the key itself when the path ends on a key).
pub(crate) fn locate(src: &str, segs: &[Seg]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(src).ok()?;
    let mut best = None;
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                let t = match (table, value) {
                    (Some(t), _) => t,
                    (None, Some(DeValue::Table(t))) => t,
                    _ => break,
                };
                let Some((key, v)) = t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                else {
                    break;
                };
                best = Some(key.span().start);
                table = None;
                value = Some(v.get_ref());
            }
            Seg::Index(i) => {
                let Some(DeValue::Array(a)) = value else {
                    break;
                };
                let Some(item) = a.get(*i) else { break };
                best = Some(item.span().start);
                table = None;
                value = Some(item.get_ref());
            }
        }
    }
    best
}
