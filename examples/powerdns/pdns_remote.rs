//! `trafficmgr pdns-backend` as the `pdns-remote` example, so that
//! `cargo run --release --example pdns-remote -- --config FILE --socket PATH`
//! keeps working: the same module as the binary's
//! (src/bin/trafficmgr/pdns_backend.rs), compiled in here.

#[path = "../../src/bin/trafficmgr/pdns_backend.rs"]
mod pdns_backend;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "pdns-remote",
    version,
    about = "PowerDNS remote-backend adapter (the same as `trafficmgr pdns-backend`)",
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    args: pdns_backend::PdnsArgs,
}

fn main() {
    std::process::exit(pdns_backend::run(Cli::parse().args));
}
