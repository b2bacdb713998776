//! The wire entry: `answer_message` and the in-place form, UDP and TCP.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static ENGINE: OnceLock<trafficmgr::Engine> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let e = ENGINE.get_or_init(trafficmgr::fuzzing::engine);
    trafficmgr::fuzzing::wire(e, data);
});
