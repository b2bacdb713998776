//! `trafficmgr serve` as the `serve` example, so that
//! `cargo run --release --example serve -- --config FILE --listen ADDR`
//! keeps working: the same module as the binary's (src/bin/trafficmgr/serve/),
//! compiled in here; `--help` lists the options.

#[path = "../../src/bin/trafficmgr/serve/mod.rs"]
mod serve;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "serve",
    version,
    about = "The embedded DNS front (the same as `trafficmgr serve`)",
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    args: serve::ServeArgs,
}

fn main() {
    std::process::exit(serve::run(Cli::parse().args));
}
