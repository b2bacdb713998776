//! `[engine]`: the watch interval, the probe workers, the data-file paths
//! and the admin-state file's path.

use super::{Locator, in_range, key, parse_duration};
use crate::config::error::ConfigError;
use crate::config::model::EngineSettings;
use crate::config::{Origin, RawEngine};
use std::net::SocketAddr;
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
    let control = control(loc, raw)?;
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
        control,
        fleet: None,
    })
}

/// `control`: an `IP:port` with a port, on loopback unless `control_public`
/// says otherwise (the listener serves the status of every endpoint and
/// has no authentication).
fn control(loc: &Locator, raw: &RawEngine) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(text) = &raw.control else {
        return Ok(None);
    };
    let at = [key("engine"), key("control")];
    let addr: SocketAddr = text.parse().map_err(|_| {
        loc.error(
            &at,
            format!(
                "`{text}` is not an address and port such as \"127.0.0.1:9153\" or \"[::1]:9153\""
            ),
        )
    })?;
    if addr.port() == 0 {
        return Err(loc.error(&at, "port 0: give the port to listen on"));
    }
    if !addr.ip().is_loopback() && raw.control_public != Some(true) {
        return Err(loc.error(
            &at,
            format!(
                "{} is not a loopback address: the control listener has no authentication; \
                 set `control_public = true` to listen there anyway",
                addr.ip()
            ),
        ));
    }
    Ok(Some(addr))
}
