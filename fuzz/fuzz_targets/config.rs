//! The config loader: TOML text → validated model → compiled snapshot.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trafficmgr::fuzzing::config(data);
});
