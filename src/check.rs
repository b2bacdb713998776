//! `trafficmgr check`: a config file and every data file it names, loaded
//! exactly as an engine loads them (the one build path of
//! `engine/reload.rs`: parse, validate, compile), with no thread started;
//! and a summary of what it holds.
//!
//! Validation stops at the first error: a failed check names one error
//! (`file:line:col: key path: message`, as [`ConfigError`] displays it).

use crate::config::{ConfigError, Routing};
use crate::snapshot::{Snapshot, Target};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One data file the config names.
#[derive(Debug, Clone, Serialize)]
pub struct DataFile {
    /// The config key that names it (`engine.latency_table`, `engine.geoip_db`).
    pub key: String,
    /// Its path, as resolved against the config's folder.
    pub path: PathBuf,
    /// Its size in octets.
    pub bytes: u64,
    /// Entries read: prefixes (rows) of a latency table, networks of a GeoIP database.
    pub entries: usize,
    /// Latency table: its region columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<usize>,
}

/// What a config holds, once loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The config file.
    pub config: PathBuf,
    /// Zone names.
    pub zones: Vec<String>,
    /// Profiles in all.
    pub profiles: usize,
    /// Profiles by routing method (method name → count).
    pub profiles_by_method: BTreeMap<String, usize>,
    /// Endpoints in all.
    pub endpoints: usize,
    /// Endpoints whose health is probed (those of monitored profiles, but nested ones).
    pub probed_endpoints: usize,
    /// Endpoints that point to another profile.
    pub nested_endpoints: usize,
    /// Prefixes of subnet-routing profiles, in all.
    pub subnet_prefixes: usize,
    /// Regions (built-in and configured).
    pub regions: usize,
    /// The data files the config names.
    pub data_files: Vec<DataFile>,
    /// Warnings: the config loads and works, but probably not as meant.
    pub warnings: Vec<String>,
}

/// Loads `path` and its data files as an engine would: the snapshot a new
/// engine would start from (every endpoint's health as configured: probed
/// endpoints are `CheckingEndpoint`). Starts no thread.
pub fn load(path: &Path) -> Result<Snapshot, ConfigError> {
    crate::engine::build_file(path)
}

/// Checks `path`: [`load`], then the summary of what it holds.
pub fn check_file(path: &Path) -> Result<Report, ConfigError> {
    let snap = load(path)?;
    Ok(report(path, &snap))
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The summary of a loaded snapshot.
pub fn report(path: &Path, snap: &Snapshot) -> Report {
    let mut by_method: BTreeMap<String, usize> = BTreeMap::new();
    for p in snap.profiles.iter() {
        *by_method.entry(p.routing.as_str().to_string()).or_default() += 1;
    }
    let mut probed = 0;
    let mut nested = 0;
    let mut subnet_prefixes = 0;
    for p in snap.profiles.iter() {
        if p.routing == Routing::Subnet {
            subnet_prefixes += p.subnets.len();
        }
        for id in p.endpoint_ids() {
            let Some(e) = snap.endpoints.get(id as usize) else {
                continue;
            };
            if matches!(e.target, Target::Nested { .. }) {
                nested += 1;
            } else if p.monitor.is_some() {
                probed += 1;
            }
        }
    }
    let mut data_files = Vec::new();
    if let (Some(p), Some(t)) = (&snap.settings.latency_table, &snap.latency) {
        data_files.push(DataFile {
            key: "engine.latency_table".into(),
            path: p.clone(),
            bytes: size(p),
            entries: t.len(),
            regions: Some(t.columns.len()),
        });
    }
    if let (Some(p), Some(g)) = (&snap.settings.geoip_db, &snap.geo) {
        data_files.push(DataFile {
            key: "engine.geoip_db".into(),
            path: p.clone(),
            bytes: size(p),
            entries: g.len(),
            regions: None,
        });
    }
    let mut warnings: Vec<String> = snap.warnings().map(str::to_string).collect();
    // The admin-state file is not part of the config (a broken one does
    // not stop an engine: it starts without its overrides), but an
    // operator checking before a start wants to know.
    if let Some(p) = &snap.settings.admin_state
        && let Err(e) = crate::admin_file::AdminFile::read(p)
    {
        warnings.push(format!(
            "the admin-state file does not load (an engine would start without its overrides, and keep the previous ones on a change): {e}"
        ));
    }
    Report {
        config: path.to_path_buf(),
        zones: snap.zones.iter().map(|z| z.name.to_string()).collect(),
        profiles: snap.profiles.len(),
        profiles_by_method: by_method,
        endpoints: snap.endpoints.len(),
        probed_endpoints: probed,
        nested_endpoints: nested,
        subnet_prefixes,
        regions: snap.regions.len(),
        data_files,
        warnings,
    }
}
