//! The PowerDNS remote-backend adapter's request parser and dispatch.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trafficmgr::pdns::fuzz_pdns_request(data);
});
