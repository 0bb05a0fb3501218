//! authgate: a Pingora reverse proxy that serves an auth API and lets only verified users through to upstreams.
//!
//! The library exists for the `authgate` binary: it exposes the configuration
//! and the start-up that builds a server from it; everything else is internal.

pub mod admin;
pub mod config;
// Wrappers for the fuzz targets in fuzz/: under cargo-fuzz's `--cfg fuzzing`, and in unit
// tests so that clippy and `cargo test --lib` compile them.
#[cfg(any(fuzzing, test))]
pub mod fuzz_api;
pub mod import;
pub mod keygen;
pub mod routes_cli;
pub mod startup;

mod api;
mod auth;
mod browser;
mod domain;
mod edge;
mod error;
mod events;
mod metrics;
mod ops;
mod proxy;
mod run_dir;
mod shutdown;
mod store;
