//! The committed header is what cbindgen makes of the sources now, and its
//! version macros match Cargo.toml.

use std::path::PathBuf;

#[test]
fn committed_header_is_fresh() {
    let fresh =
        std::fs::read_to_string(PathBuf::from(env!("OUT_DIR")).join("trafficmgr.h")).unwrap();
    let committed = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/trafficmgr.h"),
    )
    .unwrap();
    assert!(
        fresh == committed,
        "include/trafficmgr.h is stale: run `cargo build` outside CI and commit the header"
    );
}

#[test]
fn version_macros_match_cargo() {
    let h = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/trafficmgr.h"),
    )
    .unwrap();
    let get = |m: &str| {
        h.lines()
            .find_map(|l| l.strip_prefix(&format!("#define {m} ")))
            .unwrap_or_else(|| panic!("{m} missing"))
            .trim()
            .to_string()
    };
    assert_eq!(get("TM_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MAJOR"));
    assert_eq!(get("TM_VERSION_MINOR"), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(get("TM_VERSION_PATCH"), env!("CARGO_PKG_VERSION_PATCH"));
    assert_eq!(
        get("TM_VERSION_STRING"),
        format!("\"{}\"", env!("CARGO_PKG_VERSION"))
    );
    let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap();
    let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
    let abi = if major == 0 { minor } else { major * 1000 };
    assert_eq!(get("TM_ABI_VERSION"), abi.to_string());
    // Only our names are exported.
    for l in h.lines().filter(|l| l.starts_with("#define ")) {
        let name = l.split_whitespace().nth(1).unwrap();
        assert!(
            name.starts_with("TM_") || name == "TRAFFICMGR_H",
            "foreign macro {name}"
        );
    }
    for sym in [
        "tm_engine_new",
        "tm_engine_new_from_string",
        "tm_engine_free",
        "tm_engine_lookup",
        "tm_engine_answer",
        "tm_engine_reload",
        "tm_engine_set_monitor_status",
        "tm_result_str",
        "tm_version",
        "tm_abi_version",
    ] {
        assert!(
            h.contains(&format!(" {sym}(")) || h.contains(&format!("*{sym}(")),
            "{sym} missing from the header"
        );
    }
}
