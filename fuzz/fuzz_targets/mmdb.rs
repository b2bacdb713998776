//! The GeoIP database loader (MMDB), as the engine reads one.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trafficmgr::geo::fuzz_mmdb(data);
});
