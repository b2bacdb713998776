//! # trafficmgr
//!
//! DNS-based global traffic management as a library that DNS servers load.
//! A TOML file of zones, profiles and endpoints (see `docs/CONFIG.md`) is
//! parsed, validated and compiled into an immutable snapshot held in an
//! `ArcSwap`; each query loads it once and picks an answer with no lock, no
//! I/O and no allocation.
//!
//! The API: [`engine::Engine`] (create, look up, answer a message, reload,
//! operate), [`answer`] (what a lookup returns), [`name`], [`log`],
//! [`health`] (endpoint states), [`config`] (its errors and model),
//! [`pdns`] (the PowerDNS remote-backend protocol), [`check`] and
//! [`explain`] (what `trafficmgr check` and `explain` print). The C ABI (`tm_*`) and
//! BIND's DLZ ABI (`dlz_*`) are in the same library. The layers of the
//! code: README, "Architecture".

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

// The Rust API: what a host written in Rust calls.
pub mod admin_file;
pub mod answer;
pub mod check;
pub mod config;
pub mod engine;
pub mod explain;
pub mod health;
pub mod log;
pub mod name;
pub mod pdns;

// Internals, public only for the project's own tests, benchmarks and fuzz
// targets: no stability promise.
#[doc(hidden)]
pub mod geo;
#[doc(hidden)]
pub mod snapshot;

// The hot path, its counters and routing: reached only through `Engine`.
mod counters;
mod fleet;
mod query;
mod routing;

mod bind_dlz;
mod ffi;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod testutil;

pub use answer::{Answer, Rcode, Rec, Records};
pub use config::ConfigError;
pub use engine::{Engine, LogFn, LogLevel, Query, QueryError};
pub use health::MonitorStatus;
