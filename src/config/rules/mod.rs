//! The rules of docs/CONFIG.md, turning the raw serde model into a [`Config`] in
//! which nothing can be found wrong later. [`validate`] runs them in file
//! order: `[engine]`, `[[region]]`, `[[zone]]`, the profile names, each
//! `[[profile]]` with its monitor and endpoints, then the rules across
//! profiles (nesting) and the warnings. The first broken rule is the error.
//!
//! Each file checks one part: [`engine`], [`regions`], [`zones`],
//! [`profiles`] (names, settings, method-specific claims), [`endpoints`],
//! [`monitor`] (with probe paths and headers), [`nesting`], [`secrets`]
//! (the secret-header warnings), [`dns_names`]. This file holds the driver
//! and what every rule uses: [`Locator`] (an error at a key path, with line
//! and column), the key-path builders and the number and duration parsers.

mod dns_names;
mod endpoints;
mod engine;
mod fleet;
mod monitor;
mod nesting;
mod profiles;
mod regions;
mod secrets;
mod zones;

pub use dns_names::valid_dns_name;
pub(crate) use monitor::{BODY_WINDOW, RCODE_NAMES};
pub use secrets::is_secret_header;

use super::error::{ConfigError, Seg, format_path, line_col, locate};
use super::model::Config;
use super::{Origin, RawConfig};
use std::time::Duration;

/// Checks every rule of `raw` (parsed from `src`, which came from
/// `origin`) and returns the validated model, or the first error.
pub(crate) fn validate(raw: RawConfig, src: &str, origin: &Origin) -> Result<Config, ConfigError> {
    let loc = Locator { src, origin };
    let mut engine = engine::settings(&loc, &raw.engine, origin)?;
    engine.fleet = match &raw.fleet {
        Some(f) => Some(fleet::settings(&loc, f, origin)?),
        None => None,
    };
    let regions = regions::regions(&loc, &raw.region)?;
    let region_index = regions::index_by_name(&regions);
    let zones = zones::zones(&loc, &raw.zone)?;
    let names = profiles::names(&loc, &raw.profile, &zones)?;
    let profiles = raw
        .profile
        .iter()
        .enumerate()
        .map(|(pi, rp)| profiles::profile(&loc, pi, rp, &names, &region_index))
        .collect::<Result<Vec<_>, _>>()?;
    nesting::check(&loc, &profiles)?;
    if let Some(f) = &engine.fleet {
        fleet::check_probe_hosts(&loc, f, &profiles)?;
    }
    let warnings = secrets::secret_header_warnings(&loc, &profiles);
    Ok(Config {
        engine,
        regions,
        zones,
        profiles,
        warnings,
    })
}

/// Makes errors that point into the config text: the key path, and the
/// line and column of the deepest part of it the text has.
struct Locator<'a> {
    src: &'a str,
    origin: &'a Origin,
}

impl Locator<'_> {
    /// An error (or warning) at key path `at`.
    fn error(&self, at: &[Seg], message: impl Into<String>) -> ConfigError {
        let (line, col) = locate(self.src, at)
            .map(|o| line_col(self.src, o))
            .unwrap_or((0, 0));
        ConfigError {
            file: self.origin.file.clone(),
            line,
            col,
            path: format_path(at),
            message: message.into(),
        }
    }
}

/// `base` followed by `more`: `join(&[key("zone"), index(0)], &[key("ttl")])`
/// is `zone[0].ttl`.
fn join(base: &[Seg], more: &[Seg]) -> Vec<Seg> {
    let mut v = base.to_vec();
    v.extend_from_slice(more);
    v
}

/// A key-path step naming a key.
fn key(name: &str) -> Seg {
    Seg::Key(name.to_string())
}

/// A key-path step naming an array item.
fn index(n: usize) -> Seg {
    Seg::Index(n)
}

/// `x` if it is in `lo ..= hi`, else an error at `at`.
fn in_range(loc: &Locator, at: &[Seg], x: i64, lo: i64, hi: i64) -> Result<i64, ConfigError> {
    if x < lo || x > hi {
        Err(loc.error(at, format!("{x} is out of range {lo}..={hi}")))
    } else {
        Ok(x)
    }
}

/// Parses `"500ms"`, `"10s"`, `"5m"`, `"1h"`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; expected a whole number and a unit, e.g. \"500ms\", \"10s\", \"5m\", \"1h\""))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(format!(
                "`{s}` is not a duration: the unit `{}` is not one of ms, s, m, h (e.g. \"10s\")",
                unit.trim()
            ));
        }
    };
    Ok(d)
}

/// User text quoted for a message, control characters escaped.
fn shown(s: &str) -> String {
    format!("`{}`", s.escape_debug())
}
