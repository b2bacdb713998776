//! `trafficmgr drain|disable|enable|up|down|restore PATTERN --admin-file FILE`:
//! edits the admin-state file (format, globs and the atomic edit are the
//! library's `admin_file`); the engine applies it within a watch interval.

use std::path::PathBuf;
pub use trafficmgr::admin_file::Setting;
use trafficmgr::admin_file::{self, AdminFile};

/// Sets (or, with `restore`, removes) the key PATTERN in the admin-state
/// file, atomically (a temporary file, fsync, rename, fsync of the folder):
/// engines watching it apply it within one watch interval, no reload. A key
/// holds one setting; when several keys match an endpoint, the most specific
/// wins (docs/OPERATIONS.md, "The admin-state file"). A file that does not
/// parse is left as it is (exit 1); a bad pattern is a usage error (exit 2).
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// PROFILE/ENDPOINT: the profile's name (short or full) and the
    /// endpoint's; `*` and `?` glob in either half (quote them: 'app/*', '*/eu-*')
    #[arg(value_name = "PATTERN", value_parser = pattern)]
    pub pattern: String,
    /// The admin-state file (`[engine] admin_state` of the config); made if missing
    #[arg(long, value_name = "FILE")]
    pub admin_file: PathBuf,
    /// Check the pattern against this config first: refuse one that names no
    /// endpoint, and list the endpoints it names with their overrides after the edit
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn pattern(s: &str) -> Result<String, String> {
    admin_file::check_pattern(s).map(|()| s.to_string())
}

/// The endpoints of the config `pattern` names: (short profile name, full name, endpoint).
fn named(snap: &trafficmgr::snapshot::Snapshot, pattern: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in snap.profiles.iter() {
        let zone = snap
            .zones
            .get(p.zone as usize)
            .map(|z| &*z.name)
            .unwrap_or("");
        let short = p
            .fqdn
            .strip_suffix(zone)
            .and_then(|s| s.strip_suffix('.'))
            .unwrap_or(&p.fqdn)
            .to_string();
        for id in p.endpoint_ids() {
            let Some(e) = snap.endpoints.get(id as usize) else {
                continue;
            };
            if admin_file::matches(pattern, &short, &p.fqdn, &e.name) {
                out.push((short.clone(), p.fqdn.to_string(), e.name.to_string()));
            }
        }
    }
    out
}

/// The keys of `f` other than `pattern` that match the endpoint `pattern`
/// names, when it names one literally (no globs).
fn covering(f: &AdminFile, pattern: &str) -> Vec<(String, Setting)> {
    let Some((p, e)) = pattern.split_once('/') else {
        return Vec::new();
    };
    if pattern.contains(['*', '?']) {
        return Vec::new();
    }
    f.entries
        .iter()
        .filter(|k| k.pattern != pattern && admin_file::matches(&k.pattern, p, p, e))
        .map(|k| (k.pattern.clone(), k.setting))
        .collect()
}

pub fn run(a: &AdminArgs, setting: Option<Setting>) -> i32 {
    let targets = match &a.config {
        None => None,
        Some(c) => match trafficmgr::check::load(c) {
            Ok(snap) => {
                let t = named(&snap, &a.pattern);
                if t.is_empty() {
                    eprintln!(
                        "trafficmgr: {} names no endpoint of {}; {} left as it is",
                        a.pattern,
                        c.display(),
                        a.admin_file.display()
                    );
                    return 1;
                }
                Some(t)
            }
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        },
    };
    // The keys left that still match what the pattern names literally
    // (a `restore` of one endpoint that a glob still drains).
    let mut still: Vec<(String, Setting)> = Vec::new();
    let edited = admin_file::edit(&a.admin_file, |f: &mut AdminFile| {
        let r = match setting {
            Some(s) => f.set(&a.pattern, s).map(|()| true),
            None => Ok(f.remove(&a.pattern)),
        }?;
        still = covering(f, &a.pattern);
        Ok(r)
    });
    let file = a.admin_file.display();
    match (edited, setting) {
        (Err(e), _) => {
            eprintln!("trafficmgr: {e}; {file} left as it is");
            return 1;
        }
        (Ok(_), Some(s)) => println!("{file}: \"{}\" = \"{}\"", a.pattern, s.as_str()),
        (Ok(true), None) => println!("{file}: removed \"{}\"", a.pattern),
        (Ok(false), None) => println!(
            "{file}: no key \"{}\" (keys are removed as written); nothing to restore",
            a.pattern
        ),
    }
    if setting.is_none() {
        for (k, v) in &still {
            eprintln!(
                "trafficmgr: note: \"{k}\" = \"{}\" still applies to {}",
                v.as_str(),
                a.pattern
            );
        }
    }
    if targets.is_none() && setting.is_some() {
        eprintln!(
            "trafficmgr: note: {} was not checked against a config (give --config FILE \
             to refuse a pattern that names no endpoint); a running engine logs a key \
             that matches nothing and lists it in its status (admin_file.unmatched)",
            a.pattern
        );
    }
    if let Some(t) = targets {
        let f = match AdminFile::read(&a.admin_file) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("trafficmgr: {e}");
                return 1;
            }
        };
        for (short, fqdn, ep) in t {
            let r = f.resolve(&short, &fqdn, &ep);
            println!(
                "  {fqdn}/{ep}: admin {}, monitor {}",
                r.admin.map_or("as configured", Setting::as_str),
                r.monitor.map_or("from probes", Setting::as_str)
            );
        }
    }
    0
}
