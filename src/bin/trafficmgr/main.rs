//! `trafficmgr`: the operator's command. Checks a config, explains an
//! answer, shows a running engine's status, edits the admin-state file, and
//! runs the embedded DNS front and the PowerDNS adapter. `trafficmgr
//! --help` and `trafficmgr COMMAND --help` list the options;
//! docs/OPERATIONS.md, "The trafficmgr command", and trafficmgr(1) say more.
//!
//! Exit status: 0 done, 1 the work failed (a config error, an unreachable
//! engine, an admin file that does not parse), 2 a usage error.

mod admin;
mod check;
mod explain;
mod pdns_backend;
mod serve;
mod status;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "trafficmgr",
    version,
    about = "DNS-based global traffic management: check, explain, operate and serve",
    long_about = "DNS-based global traffic management: check a configuration, explain an \
answer, read a running engine's status, edit the admin-state file, and run the embedded DNS \
front or the PowerDNS adapter.\n\nExit status: 0 done, 1 the work failed, 2 a usage error.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Load a config and every data file it names exactly as the engine would; print a summary
    Check(check::CheckArgs),
    /// Show how the engine answers a query: zone, profile, candidates, choice, ECS scope, records
    Explain(explain::ExplainArgs),
    /// Show a running engine's endpoints as a table (from its control listener)
    Status(status::StatusArgs),
    /// Serve DNS over UDP and TCP (the embedded front)
    #[command(args_override_self = true)]
    Serve(serve::ServeArgs),
    /// Serve PowerDNS's remote backend on a unix socket
    #[command(name = "pdns-backend", args_override_self = true)]
    PdnsBackend(pdns_backend::PdnsArgs),
    /// Admin file: stop answering with the endpoints (still probed)
    Drain(admin::AdminArgs),
    /// Admin file: stop answering with and probing the endpoints
    Disable(admin::AdminArgs),
    /// Admin file: answer with the endpoints even if the config disables them
    Enable(admin::AdminArgs),
    /// Admin file: force the endpoints' monitor state Online, whatever probes say
    Up(admin::AdminArgs),
    /// Admin file: force the endpoints' monitor state Degraded, whatever probes say
    Down(admin::AdminArgs),
    /// Admin file: remove the key PATTERN (back to the config and the probes)
    Restore(admin::AdminArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Check(a) => check::run(&a),
        Cmd::Explain(a) => explain::run(&a),
        Cmd::Status(a) => status::run(&a),
        Cmd::Serve(a) => serve::run(a),
        Cmd::PdnsBackend(a) => pdns_backend::run(a),
        Cmd::Drain(a) => admin::run(&a, Some(admin::Setting::Drain)),
        Cmd::Disable(a) => admin::run(&a, Some(admin::Setting::Disabled)),
        Cmd::Enable(a) => admin::run(&a, Some(admin::Setting::Enabled)),
        Cmd::Up(a) => admin::run(&a, Some(admin::Setting::Up)),
        Cmd::Down(a) => admin::run(&a, Some(admin::Setting::Down)),
        Cmd::Restore(a) => admin::run(&a, None),
    };
    std::process::exit(code);
}
