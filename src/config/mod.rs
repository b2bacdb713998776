//! Configuration: TOML text → raw serde model → validated [`Config`].
//!
//! Three visible steps: [`parse`] (serde, `deny_unknown_fields`; the raw
//! model in `raw.rs`), then `rules::validate` (every rule of docs/CONFIG.md, with
//! file:line:col and key path), giving the model of `model.rs`, and later
//! `snapshot::compile`. Nothing here runs on the query path.

mod chunked;
mod error;
mod model;
mod raw;
mod rules;

pub(crate) use error::line_col;
pub use error::{ConfigError, ConfigWarning};
pub use model::{
    AllDown, Config, DnsCheck, EndpointCfg, EndpointKind, EngineSettings, FleetSettings, GeoCode,
    HealthyWhen, MonitorCfg, ProbeOverrides, ProbeProtocol, ProfileCfg, RegionCfg, Routing,
    ZoneCfg, load_milli,
};
pub(crate) use raw::{
    RawConfig, RawEndpoint, RawEngine, RawFleet, RawHealthyWhen, RawMonitor, RawProbe, RawProfile,
    RawRegion, RawZone, parse,
};
pub(crate) use rules::{BODY_WINDOW, RCODE_NAMES};
pub use rules::{is_secret_header, valid_dns_name};

use std::path::{Path, PathBuf};

/// Where a configuration came from: relative data paths are resolved
/// against `base_dir`, errors name `file`.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The config file, if the text came from one.
    pub path: Option<PathBuf>,
    /// The folder relative paths are taken from.
    pub base_dir: PathBuf,
    /// How errors name the source (the path, or `<string>`).
    pub file: String,
}

impl Origin {
    /// The origin of a file at `path`.
    pub fn file(path: &Path) -> Origin {
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Origin {
            path: Some(path.to_path_buf()),
            base_dir,
            file: path.display().to_string(),
        }
    }

    /// The origin of text given directly, with relative paths taken from `base_dir`.
    pub fn string(base_dir: Option<&Path>) -> Origin {
        Origin {
            path: None,
            base_dir: base_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            file: "<string>".to_string(),
        }
    }
}

/// Parses and validates a configuration file.
pub fn load_file(path: &Path) -> Result<(Config, String), ConfigError> {
    let origin = Origin::file(path);
    let fail = |message: String| ConfigError {
        file: origin.file.clone(),
        line: 0,
        col: 0,
        path: String::new(),
        message,
    };
    // A regular file of at most MAX_CONFIG octets: a FIFO, a device or a
    // runaway file must never hang or exhaust the host.
    let bytes =
        crate::geo::read_data_file(path, MAX_CONFIG, "config file").map_err(|e| fail(e.message))?;
    let src =
        String::from_utf8(bytes).map_err(|e| fail(format!("the config file is not UTF-8: {e}")))?;
    let cfg = load_str(&src, &origin)?;
    Ok((cfg, src))
}

/// Largest config file read: 1 GiB, as for a latency table (100,000
/// profiles of 4 endpoints take about 40 MB of TOML, 1,000,000 about 400 MB;
/// docs/PERFORMANCE.md, "Many profiles").
pub(crate) const MAX_CONFIG: u64 = 1 << 30;

/// Parses and validates configuration text.
pub fn load_str(src: &str, origin: &Origin) -> Result<Config, ConfigError> {
    let raw = parse(src, origin)?;
    rules::validate(raw, src, origin)
}
