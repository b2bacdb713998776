//! `[engine]`: the watch interval, the probe workers, the data-file paths
//! and the admin-state file's path.

use super::{Locator, in_range, key, parse_duration};
use crate::config::error::ConfigError;
use crate::config::model::EngineSettings;
use crate::config::{Origin, RawEngine};
use std::path::PathBuf;
use std::time::Duration;

/// `[engine]` with defaults applied; relative paths are taken from the
/// config's folder.
pub(super) fn settings(
    loc: &Locator,
    raw: &RawEngine,
    origin: &Origin,
) -> Result<EngineSettings, ConfigError> {
    let watch_interval = match &raw.watch_interval {
        Some(s) => {
            parse_duration(s).map_err(|m| loc.error(&[key("engine"), key("watch_interval")], m))?
        }
        None => Duration::from_secs(2),
    };
    let probe_workers = match raw.probe_workers {
        Some(n) => in_range(loc, &[key("engine"), key("probe_workers")], n, 1, 1024)? as u32,
        None => 16,
    };
    for (name, val) in [
        ("geoip_db", &raw.geoip_db),
        ("latency_table", &raw.latency_table),
        ("admin_state", &raw.admin_state),
    ] {
        if val.as_deref() == Some("") {
            return Err(loc.error(
                &[key("engine"), key(name)],
                "an empty path; leave the key out instead",
            ));
        }
    }
    let resolve = |s: &str| {
        let pb = PathBuf::from(s);
        if pb.is_absolute() {
            pb
        } else {
            origin.base_dir.join(pb)
        }
    };
    Ok(EngineSettings {
        watch_interval,
        probe_workers,
        geoip_db: raw.geoip_db.as_deref().map(resolve),
        latency_table: raw.latency_table.as_deref().map(resolve),
        admin_state: raw.admin_state.as_deref().map(resolve),
    })
}
