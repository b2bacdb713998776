//! # trafficmgr
//!
//! DNS-based global traffic management as a library that DNS servers load.
//! A TOML file of zones, profiles and endpoints (see `docs/CONFIG.md`) is
//! parsed, validated and compiled into an immutable [`snapshot::Snapshot`]
//! held in an `ArcSwap`; each query loads it once and picks an answer with
//! no lock, no I/O and no allocation ([`query`]).
//!
//! Modules: [`config`] (TOML → validated model), [`snapshot`] (compiled
//! form), [`routing`] (one file per method), [`geo`] (prefix tables, regions,
//! distances), [`health`] (status words), [`answer`] (records and wire
//! format), [`engine`] (the Rust API), [`pdns`] (the PowerDNS remote-backend
//! protocol), `ffi` (the C ABI, `tm_*`).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod answer;
pub mod config;
pub mod engine;
pub mod geo;
pub mod health;
pub mod log;
pub mod name;
pub mod pdns;
pub mod query;
pub mod routing;
pub mod snapshot;

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
