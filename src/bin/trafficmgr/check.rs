//! `trafficmgr check CONFIG [--json]`.

use serde_json::json;
use std::path::PathBuf;
use trafficmgr::ConfigError;
use trafficmgr::check::Report;

/// Load a config and every data file it names exactly as the engine would
/// (parse, validate, compile; no thread, no probe). Exit 0 with a summary
/// (warnings included), or 1 with the error as `file:line:col: key path:
/// message`. Validation stops at the first error, so one error is shown.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file (TOML)
    pub config: PathBuf,
    /// Print one JSON object (`{"ok": true, ...}` or `{"ok": false, "errors": [...]}`)
    #[arg(long)]
    pub json: bool,
}

/// A config error as JSON: its parts and the line a person reads.
pub fn error_json(e: &ConfigError) -> serde_json::Value {
    json!({
        "file": e.file,
        "line": e.line,
        "col": e.col,
        "path": e.path,
        "message": e.message,
        "text": e.to_string(),
    })
}

/// The summary a person reads.
pub fn render(r: &Report) -> String {
    let mut s = format!("{}: OK\n", r.config.display());
    s += &format!("zones: {} ({})\n", r.zones.len(), r.zones.join(", "));
    let methods: Vec<String> = r
        .profiles_by_method
        .iter()
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    s += &format!("profiles: {} ({})\n", r.profiles, methods.join(", "));
    s += &format!(
        "endpoints: {} ({} probed, {} nested)\n",
        r.endpoints, r.probed_endpoints, r.nested_endpoints
    );
    if r.subnet_prefixes > 0 {
        s += &format!("subnet prefixes: {}\n", r.subnet_prefixes);
    }
    s += &format!("regions: {}\n", r.regions);
    if r.data_files.is_empty() {
        s += "data files: none\n";
    } else {
        s += "data files:\n";
        for f in &r.data_files {
            let what = match f.regions {
                Some(n) => format!("{} prefixes, {n} regions", f.entries),
                None => format!("{} networks", f.entries),
            };
            s += &format!(
                "  {}: {} ({} bytes, {what})\n",
                f.key,
                f.path.display(),
                f.bytes
            );
        }
    }
    for w in &r.warnings {
        s += &format!("warning: {w}\n");
    }
    s
}

pub fn run(a: &CheckArgs) -> i32 {
    match trafficmgr::check::check_file(&a.config) {
        Ok(r) => {
            if a.json {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["ok"] = json!(true);
                println!("{v}");
            } else {
                print!("{}", render(&r));
            }
            0
        }
        Err(e) => {
            if a.json {
                println!(
                    "{}",
                    json!({"ok": false, "config": a.config, "errors": [error_json(&e)]})
                );
            } else {
                eprintln!("{e}");
            }
            1
        }
    }
}
