//! The latency-table CSV reader.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trafficmgr::geo::fuzz_latency_csv(data);
});
