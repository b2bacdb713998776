//! BIND's DLZ entry points with arbitrary names and client info.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static INSTANCE: OnceLock<trafficmgr::fuzzing::DlzInstance> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let inst = INSTANCE.get_or_init(trafficmgr::fuzzing::dlz_instance);
    trafficmgr::fuzzing::dlz(inst, data);
});
