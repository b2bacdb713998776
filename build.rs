//! Generates `include/trafficmgr.h` with cbindgen (into OUT_DIR, then copied
//! to `include/` when the text changed, except under CI, where a stale
//! committed header must fail `tests/header.rs` instead of being fixed
//! silently), and derives the version and ABI constants from Cargo metadata.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=CI");

    let major: u32 = env::var("CARGO_PKG_VERSION_MAJOR")
        .unwrap()
        .parse()
        .unwrap();
    let minor: u32 = env::var("CARGO_PKG_VERSION_MINOR")
        .unwrap()
        .parse()
        .unwrap();
    let patch: u32 = env::var("CARGO_PKG_VERSION_PATCH")
        .unwrap()
        .parse()
        .unwrap();
    // Before 1.0 every minor may break the ABI; after, every major.
    let abi = if major == 0 { minor } else { major * 1000 };
    println!("cargo:rustc-env=TM_ABI_VERSION={abi}");
    // The shared object's SONAME follows the ABI version: `make install`
    // installs libtrafficmgr.so.<abi> (and the .so symlink for linking).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtrafficmgr.so.{abi}");

    let lock = fs::read_to_string(dir.join("Cargo.lock")).unwrap_or_default();
    let hickory = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"hickory-proto\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TM_HICKORY_VERSION={hickory}");

    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n#define TM_VERSION_MAJOR {major}\n#define TM_VERSION_MINOR {minor}\n#define TM_VERSION_PATCH {patch}\n#define TM_VERSION_STRING \"{major}.{minor}.{patch}\"\n#define TM_ABI_VERSION {abi}\n"
    ));
    let header = out.join("trafficmgr.h");
    match cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => {
            b.write_to_file(&header);
        }
        Err(e) => panic!("cbindgen: {e}"),
    }
    if env::var_os("CI").is_none() {
        let committed = dir.join("include/trafficmgr.h");
        let new = fs::read(&header).unwrap();
        if fs::read(&committed).ok().as_deref() != Some(&new[..]) {
            fs::create_dir_all(dir.join("include")).unwrap();
            fs::write(&committed, &new).unwrap();
        }
    }
}
